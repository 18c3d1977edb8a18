//! Checking a response as a client does (RFC 6960 §3.2, §4.2.2.2): the signature, the signer's
//! chain to a trusted certificate, and the signer's authority over every CertID.
//!
//! This mirrors OpenSSL's `OCSP_basic_verify` so the two give the same verdicts:
//! 1. the signer is the certificate named by the ResponderID, among the response's `certs` and
//!    the certificates the caller supplies;
//! 2. the signature over ResponseData verifies with the signer's key;
//! 3. the signer chains (names and signatures, validity at `at`, at most
//!    [`MAX_CHAIN_LENGTH`] certificates) to a trusted certificate; a trusted certificate is an
//!    anchor wherever it sits and its own signature is not checked;
//! 4. for every SingleResponse, either the signer is the CA named by the CertID, or the
//!    signer's issuer is that CA and the signer carries id-kp-OCSPSigning (§4.2.2.2).
//!
//! It is not full RFC 5280 path validation (no policy, name constraint or revocation checks
//! on the responder's chain); `imza-validation` owns that.

use der::Encode;
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_ocsp::ResponderId;

use imza_core::clock::{from_x509_time, rfc3339};
use imza_core::name::format_dn;
use imza_core::ocsp::has_ocsp_signing;
use imza_core::verify::{verify_signature_with, SignaturePolicy};
use imza_core::CoreError;

use crate::cert_id::{responder_key_hash, IssuerFingerprints};
use crate::response::ParsedBasicResponse;
use crate::OcspError;

/// Longest signer chain followed, trusted certificate included.
pub const MAX_CHAIN_LENGTH: usize = 6;

/// What a response is checked against.
#[derive(Clone, Copy, Debug)]
pub struct VerifyOptions<'a> {
    /// Trust anchors: a response is good only if its signer chains to one of these.
    pub trusted: &'a [Certificate],
    /// Further certificates to find the signer and its issuers among (not trusted).
    pub untrusted: &'a [Certificate],
    /// The time certificate validity is checked at.
    pub at: OffsetDateTime,
    /// Accept sha1WithRSAEncryption signatures (old responses); off by default.
    pub accept_sha1_signatures: bool,
}

/// The outcome of a successful check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSigner {
    /// The certificate whose key signed the response.
    pub certificate: Certificate,
    /// True for a delegated responder, false when the CA signed itself.
    pub delegated: bool,
}

enum SignatureProblem {
    Unsupported(der::asn1::ObjectIdentifier),
    /// A known algorithm under parameters imza does not verify with (RSASSA-PSS with SHA-1,
    /// a mask other than MGF1, a trailer other than 1).
    UnsupportedParameters(der::asn1::ObjectIdentifier, String),
    Bad(String),
}

fn verify_signed(
    signer: &Certificate,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
    accept_sha1: bool,
) -> Result<(), SignatureProblem> {
    let spki = signer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| SignatureProblem::Bad(e.to_string()))?;
    let policy = SignaturePolicy { accept_sha1 };
    verify_signature_with(&spki, algorithm, message, signature, policy).map_err(|e| match e {
        CoreError::UnsupportedSignatureAlgorithm(oid) => SignatureProblem::Unsupported(oid),
        CoreError::UnsupportedSignatureParameters { algorithm, detail } => {
            SignatureProblem::UnsupportedParameters(algorithm, detail)
        }
        other => SignatureProblem::Bad(other.to_string()),
    })
}

/// A certificate's subject for messages.
fn subject(cert: &Certificate) -> String {
    format_dn(&cert.tbs_certificate.subject)
}

/// Checks the response signature with `signer`'s key, trusting nothing else.
pub fn check_signature(
    basic: &ParsedBasicResponse,
    signer: &Certificate,
    accept_sha1_signatures: bool,
) -> Result<(), OcspError> {
    verify_signed(
        signer,
        &basic.signature_algorithm,
        &basic.tbs_der,
        &basic.signature,
        accept_sha1_signatures,
    )
    .map_err(|problem| match problem {
        SignatureProblem::Unsupported(oid) => OcspError::UnsupportedSignatureAlgorithm { oid },
        SignatureProblem::UnsupportedParameters(oid, detail) => {
            OcspError::UnsupportedSignatureParameters { oid, detail }
        }
        SignatureProblem::Bad(reason) => OcspError::BadSignature {
            signer: subject(signer),
            reason,
        },
    })
}

fn names_responder(cert: &Certificate, id: &ResponderId) -> bool {
    match id {
        ResponderId::ByName(name) => &cert.tbs_certificate.subject == name,
        ResponderId::ByKey(hash) => responder_key_hash(cert).as_slice() == hash.as_bytes(),
    }
}

fn describe_responder(id: &ResponderId) -> String {
    match id {
        ResponderId::ByName(name) => format!("byName {}", format_dn(name)),
        ResponderId::ByKey(hash) => format!("byKey {}", hex::encode(hash.as_bytes())),
    }
}

/// Verifies `basic` against `options` and returns who signed it.
pub fn verify_response(
    basic: &ParsedBasicResponse,
    options: &VerifyOptions<'_>,
) -> Result<VerifiedSigner, OcspError> {
    let pool: Vec<&Certificate> = basic
        .certs
        .iter()
        .chain(options.untrusted)
        .chain(options.trusted)
        .collect();
    let signer = find_signer(basic, &pool, options)?;
    let chain =
        build_chain(signer, &pool, options).map_err(|reason| OcspError::UntrustedSigner {
            signer: subject(signer),
            reason,
        })?;
    let own = IssuerFingerprints::of(signer)?;
    let parent = match chain.get(1) {
        Some(issuer) => Some(IssuerFingerprints::of(issuer)?),
        None => None,
    };
    let mut delegated = false;
    for single in &basic.responses {
        if own.matches(&single.cert_id) {
            continue;
        }
        let serial = hex::encode_upper(single.cert_id.serial_number.as_bytes());
        let unauthorized = |reason: &str| OcspError::UnauthorizedSigner {
            signer: subject(signer),
            serial: serial.clone(),
            reason: reason.into(),
        };
        match &parent {
            Some(issuer) if issuer.matches(&single.cert_id) => {
                if !has_ocsp_signing(signer) {
                    return Err(unauthorized(
                        "issued by the CA but without the id-kp-OCSPSigning extended key usage",
                    ));
                }
                delegated = true;
            }
            _ => {
                return Err(unauthorized(
                    "neither the CA named by the CertID nor a certificate it issued",
                ))
            }
        }
    }
    Ok(VerifiedSigner {
        certificate: signer.clone(),
        delegated,
    })
}

/// The certificate named by the ResponderID whose key verifies the signature.
fn find_signer<'c>(
    basic: &ParsedBasicResponse,
    pool: &[&'c Certificate],
    options: &VerifyOptions<'_>,
) -> Result<&'c Certificate, OcspError> {
    let mut last_problem = None;
    for cert in pool
        .iter()
        .copied()
        .filter(|c| names_responder(c, &basic.responder_id))
    {
        match check_signature(basic, cert, options.accept_sha1_signatures) {
            Ok(()) => return Ok(cert),
            Err(problem) => last_problem = Some(problem),
        }
    }
    Err(last_problem.unwrap_or_else(|| OcspError::SignerNotFound {
        responder: describe_responder(&basic.responder_id),
    }))
}

fn check_validity(cert: &Certificate, at: OffsetDateTime) -> Result<(), String> {
    let validity = &cert.tbs_certificate.validity;
    let (not_before, not_after) = (
        from_x509_time(&validity.not_before),
        from_x509_time(&validity.not_after),
    );
    if at < not_before || at > not_after {
        return Err(format!(
            "{} is not valid at {} (valid from {} to {})",
            subject(cert),
            rfc3339(at),
            rfc3339(not_before),
            rfc3339(not_after)
        ));
    }
    Ok(())
}

/// The chain from `signer` up to the first trusted certificate.
fn build_chain<'c>(
    signer: &'c Certificate,
    pool: &[&'c Certificate],
    options: &VerifyOptions<'_>,
) -> Result<Vec<&'c Certificate>, String> {
    let mut chain = vec![signer];
    let mut current = signer;
    while chain.len() <= MAX_CHAIN_LENGTH {
        check_validity(current, options.at)?;
        if options.trusted.contains(current) {
            return Ok(chain);
        }
        let tbs_der = current
            .tbs_certificate
            .to_der()
            .map_err(|e| e.to_string())?;
        let signature = current.signature.as_bytes().unwrap_or_default();
        let issuer = pool
            .iter()
            .copied()
            .filter(|c| c.tbs_certificate.subject == current.tbs_certificate.issuer)
            .filter(|c| !chain.contains(c))
            .find(|c| {
                verify_signed(
                    c,
                    &current.signature_algorithm,
                    &tbs_der,
                    signature,
                    options.accept_sha1_signatures,
                )
                .is_ok()
            })
            .ok_or_else(|| {
                format!(
                    "no known certificate named {} signed {}",
                    format_dn(&current.tbs_certificate.issuer),
                    subject(current)
                )
            })?;
        chain.push(issuer);
        current = issuer;
    }
    Err(format!(
        "no trusted certificate within {MAX_CHAIN_LENGTH} certificates"
    ))
}
