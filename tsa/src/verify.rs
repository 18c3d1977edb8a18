//! Verifying a time-stamp token (RFC 3161 §2.4.2, RFC 5652 §5.6, RFC 5816): the one
//! SignerInfo, found by its identifier (never by position or name), its signed attributes
//! (content type, message digest, ESS signing certificate), its signature, the signer's
//! time-stamping certificate and its path to a trust anchor; then what the caller expects
//! (the data or request stamped, nonce, policy, signer).
//!
//! Path validation goes through [`PathValidator`], so the signer can plug in imza's own RFC
//! 5280 validation; [`OpenSslPathValidator`] is the stand-alone default.

use const_oid::ObjectIdentifier;
use der::asn1::{Null, OctetStringRef};
use der::{Decode, Encode};
use imza_core::alg::DigestAlgorithm;
use imza_core::cms::{find_signer_certificate, CmsSigner, RawAttribute};
use imza_core::ess::{SigningCertificate, SigningCertificateV2};
use imza_core::oids;
use imza_core::verify::verify_signature;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509PurposeId, X509StoreContext, X509};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

use crate::authority::check_time_stamping_certificate;
use crate::imprint_algorithm;
use crate::response::{describe_general_name, ParsedToken};
use crate::serial::unsigned_value;
use crate::{PathError, TimeStampRequest, TsaError};

/// Most certificates a caller may add to those in the token.
const MAX_EXTRA_CERTIFICATES: usize = 64;

/// When the signer's certificate path must be valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerificationTime {
    /// At the token's own genTime: "was it valid when it was made?" (the time an archived
    /// token is judged at, its certificate long expired).
    GenTime,
    /// At a given instant, usually now.
    At(OffsetDateTime),
}

/// What the caller expects of the token; `None` fields are not checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expectations<'a> {
    /// The data that was stamped: hashed with the token's imprint algorithm and compared.
    pub data: Option<&'a [u8]>,
    /// The hash of the data that was stamped, made by the caller with the token's imprint
    /// algorithm (a large file hashed as it is read): compared with the imprint. Ignored when
    /// `data` is given.
    pub hashed_message: Option<&'a [u8]>,
    /// The request the token answers: same imprint, same nonce, same policy if one was asked.
    pub request: Option<&'a TimeStampRequest>,
    /// The nonce, as unsigned big-endian octets.
    pub nonce: Option<&'a [u8]>,
    /// The TSA policy, dotted-decimal (`0.4.0.2023.1.1`). Text rather than an OID type so
    /// that any expectation a user writes can be compared, even one no token could carry.
    pub policy: Option<&'a str>,
    /// The signer's subject as RFC 4514 text (`CN=Test TSA,O=local`): pins the TSA.
    pub signer_subject: Option<&'a str>,
}

/// Validates a certificate path from `signer` to a trust anchor at time `at`.
pub trait PathValidator {
    /// `untrusted` may hold the path's intermediates (and anything else); an error says why
    /// no valid path was found.
    fn validate(
        &self,
        signer: &[u8],
        untrusted: &[Vec<u8>],
        at: OffsetDateTime,
    ) -> Result<(), PathError>;
}

/// Path validation by OpenSSL's verifier with the timeStampSigning purpose.
pub struct OpenSslPathValidator {
    anchors: Vec<X509>,
}

impl OpenSslPathValidator {
    /// Trusts the given DER certificates as anchors.
    pub fn new(anchors: &[Vec<u8>]) -> Result<OpenSslPathValidator, TsaError> {
        let anchors = anchors
            .iter()
            .map(|der| {
                X509::from_der(der)
                    .map_err(|e| TsaError::BadCertificate(format!("trust anchor: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OpenSslPathValidator { anchors })
    }
}

impl PathValidator for OpenSslPathValidator {
    fn validate(
        &self,
        signer: &[u8],
        untrusted: &[Vec<u8>],
        at: OffsetDateTime,
    ) -> Result<(), PathError> {
        let mut builder = X509StoreBuilder::new()?;
        for anchor in &self.anchors {
            builder.add_cert(anchor.clone())?;
        }
        let mut param = X509VerifyParam::new()?;
        param.set_time(at.unix_timestamp());
        builder.set_param(&param)?;
        builder.set_purpose(X509PurposeId::TIMESTAMP_SIGN)?;
        let store = builder.build();
        let leaf = X509::from_der(signer)?;
        let mut chain = openssl::stack::Stack::new()?;
        for der in untrusted {
            chain.push(X509::from_der(der)?)?;
        }
        let mut context = X509StoreContext::new()?;
        let outcome = context.init(&store, &leaf, &chain, |c| {
            let ok = c.verify_cert()?;
            Ok((ok, c.error(), c.error_depth()))
        })?;
        match outcome {
            (true, ..) => Ok(()),
            (false, result, depth) => Err(PathError::OpenSslRefused { result, depth }),
        }
    }
}

/// What a successful verification established.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    /// DER of the TSA certificate that signed the token.
    pub signer_certificate: Vec<u8>,
    /// Its subject, RFC 4514 text.
    pub signer_subject: String,
    pub gen_time: OffsetDateTime,
    /// The instant the certificate path was validated at.
    pub validated_at: OffsetDateTime,
}

/// Verifies `token`: signature, attributes, signer certificate and path (at `at`), and the
/// caller's expectations. `extra_certificates` supplies the TSA certificate and intermediates
/// when the token does not carry them (certReq false).
pub fn verify_token(
    token: &ParsedToken,
    extra_certificates: &[Vec<u8>],
    paths: &dyn PathValidator,
    at: VerificationTime,
    expect: &Expectations<'_>,
) -> Result<VerifiedToken, TsaError> {
    let signers = &token.signed_data.signers;
    let [signer] = signers.as_slice() else {
        return Err(TsaError::SignerCount {
            count: signers.len(),
        });
    };
    let candidates: Vec<Vec<u8>> = token
        .certificates()
        .iter()
        .chain(extra_certificates.iter().take(MAX_EXTRA_CERTIFICATES))
        .cloned()
        .collect();
    let (signer_der, signer_cert) =
        find_signer_certificate(signer, candidates.iter().map(Vec::as_slice))
            .map(|(der, cert)| (der.to_vec(), cert))
            .ok_or_else(|| TsaError::SignerNotFound {
                sid: signer.describe_sid(),
            })?;
    let signed_attrs =
        signer
            .signed_attributes
            .as_deref()
            .ok_or_else(|| TsaError::SignedAttribute {
                attribute: "signedAttrs",
                problem: "absent; RFC 5652 §5.3 requires them when the content is not id-data"
                    .into(),
            })?;
    check_content_type(signed_attrs)?;
    check_message_digest(signed_attrs, signer, token.tst_info_der())?;
    check_signing_certificate(signed_attrs, &signer_der, &signer_cert)?;
    check_signature(signer, &signer_cert)?;
    check_time_stamping_certificate(&signer_cert)?;
    check_tsa_name(token, &signer_cert)?;
    check_expectations(token, &signer_cert, expect)?;

    let gen_time = token.gen_time();
    let validated_at = match at {
        VerificationTime::GenTime => gen_time,
        VerificationTime::At(t) => t,
    };
    paths
        .validate(&signer_der, &candidates, validated_at)
        .map_err(|source| TsaError::CertificatePath {
            subject: signer_cert.tbs_certificate.subject.to_string(),
            at: imza_core::clock::rfc3339(validated_at),
            source,
        })?;
    Ok(VerifiedToken {
        signer_subject: signer_cert.tbs_certificate.subject.to_string(),
        signer_certificate: signer_der,
        gen_time,
        validated_at,
    })
}

fn same_der(a: &impl Encode, b: &impl Encode) -> bool {
    matches!((a.to_der(), b.to_der()), (Ok(a), Ok(b)) if a == b)
}

/// The single value of a signed attribute that must occur once with one value
/// (RFC 5652 §11.1, §11.2).
fn single_value<'a>(
    attrs: &'a [RawAttribute],
    oid: ObjectIdentifier,
    attribute: &'static str,
) -> Result<&'a [u8], TsaError> {
    let problem = |p: &str| TsaError::SignedAttribute {
        attribute,
        problem: p.into(),
    };
    match all(attrs, oid).as_slice() {
        [] => Err(problem("missing")),
        [values] => match values {
            [value] => Ok(value.as_slice()),
            _ => Err(problem("must have exactly one value")),
        },
        _ => Err(problem("present more than once")),
    }
}

/// The values of every attribute of type `oid`, one entry per attribute instance.
fn all(attrs: &[RawAttribute], oid: ObjectIdentifier) -> Vec<&[Vec<u8>]> {
    attrs
        .iter()
        .filter(|a| a.oid == oid)
        .map(|a| a.values.as_slice())
        .collect()
}

fn check_content_type(attrs: &[RawAttribute]) -> Result<(), TsaError> {
    let value = single_value(attrs, oids::ATTR_CONTENT_TYPE, "content-type")?;
    match ObjectIdentifier::from_der(value) {
        Ok(oids::CT_TST_INFO) => Ok(()),
        Ok(other) => Err(TsaError::SignedAttribute {
            attribute: "content-type",
            problem: format!("{other} is not id-ct-TSTInfo"),
        }),
        Err(e) => Err(TsaError::SignedAttribute {
            attribute: "content-type",
            problem: e.to_string(),
        }),
    }
}

fn check_message_digest(
    attrs: &[RawAttribute],
    signer: &CmsSigner,
    tst_info_der: &[u8],
) -> Result<(), TsaError> {
    let problem = |p: String| TsaError::SignedAttribute {
        attribute: "message-digest",
        problem: p,
    };
    let value = single_value(attrs, oids::ATTR_MESSAGE_DIGEST, "message-digest")?;
    let digest = OctetStringRef::from_der(value).map_err(|e| problem(e.to_string()))?;
    let algorithm = imprint_algorithm(signer.digest_algorithm())
        .map_err(|e| problem(format!("digest algorithm: {e}")))?;
    if digest.as_bytes() == algorithm.digest(tst_info_der).as_slice() {
        Ok(())
    } else {
        Err(problem(format!(
            "does not match the {algorithm} of the TSTInfo"
        )))
    }
}

/// RFC 3161 §2.4.1 / RFC 5816: the first ESSCertID(v2) names the signer's certificate.
fn check_signing_certificate(
    attrs: &[RawAttribute],
    cert_der: &[u8],
    cert: &Certificate,
) -> Result<(), TsaError> {
    let v2 = all(attrs, oids::ATTR_SIGNING_CERTIFICATE_V2);
    let v1 = all(attrs, oids::ATTR_SIGNING_CERTIFICATE);
    if let Some(values) = v2.first() {
        let attribute = "signingCertificateV2";
        let problem = |p: String| TsaError::SignedAttribute {
            attribute,
            problem: p,
        };
        let [value] = values else {
            return Err(problem("must have exactly one value".into()));
        };
        let sc = SigningCertificateV2::from_der(value).map_err(|e| problem(e.to_string()))?;
        let id = sc
            .certs
            .first()
            .ok_or_else(|| problem("no ESSCertIDv2".into()))?;
        let algorithm = id
            .hash_algorithm()
            .map_err(|e| problem(format!("hash algorithm: {e}")))?;
        if id.cert_hash.as_bytes() != algorithm.digest(cert_der).as_slice() {
            return Err(problem(format!(
                "the {algorithm} certificate hash is not that of the signer's certificate"
            )));
        }
        return check_issuer_serial(id.issuer_serial.as_ref(), cert, attribute);
    }
    if let Some(values) = v1.first() {
        let attribute = "signingCertificate";
        let problem = |p: String| TsaError::SignedAttribute {
            attribute,
            problem: p,
        };
        let [value] = values else {
            return Err(problem("must have exactly one value".into()));
        };
        let sc = SigningCertificate::from_der(value).map_err(|e| problem(e.to_string()))?;
        let id = sc
            .certs
            .first()
            .ok_or_else(|| problem("no ESSCertID".into()))?;
        // ESSCertID is SHA-1 by definition (RFC 2634 §5.4.1); used here only to match a
        // certificate already identified by the SignerInfo, not as a security binding alone.
        if id.cert_hash.as_bytes() != openssl::sha::sha1(cert_der).as_slice() {
            return Err(problem(
                "the SHA-1 certificate hash is not that of the signer's certificate".into(),
            ));
        }
        return check_issuer_serial(id.issuer_serial.as_ref(), cert, attribute);
    }
    Err(TsaError::SignedAttribute {
        attribute: "signingCertificate",
        problem: "neither signingCertificate nor signingCertificateV2 is present \
                  (RFC 3161 §2.4.1, RFC 5816)"
            .into(),
    })
}

fn check_issuer_serial(
    issuer_serial: Option<&imza_core::ess::IssuerSerial>,
    cert: &Certificate,
    attribute: &'static str,
) -> Result<(), TsaError> {
    if issuer_serial.is_none_or(|is| is.names(cert)) {
        Ok(())
    } else {
        Err(TsaError::SignedAttribute {
            attribute,
            problem: "issuerSerial does not name the signer's certificate".into(),
        })
    }
}

/// The signature over the DER SET OF signed attributes (RFC 5652 §5.4).
fn check_signature(signer: &CmsSigner, cert: &Certificate) -> Result<(), TsaError> {
    let signed_attrs = signer
        .signed_attributes_der()?
        .ok_or_else(|| TsaError::BadSignature("no signed attributes".into()))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| TsaError::BadSignature(format!("signer public key: {e}")))?;
    // Read before: check_message_digest refuses a digest algorithm not accepted.
    let digest = imprint_algorithm(signer.digest_algorithm())
        .map_err(|e| TsaError::BadSignature(format!("digest algorithm: {e}")))?;
    let algorithm = cms_signature_algorithm(signer.signature_algorithm(), digest);
    verify_signature(&spki, &algorithm, &signed_attrs, signer.signature())
        .map_err(|e| TsaError::BadSignature(e.to_string()))
}

/// The algorithm a SignerInfo's signature is made with (RFC 5652 §5.3). CMS lets a
/// SignerInfo name only the key type (rsaEncryption, RFC 3370 §3.2; id-ecPublicKey in some
/// implementations) and put the hash in digestAlgorithm (`digest`): that is turned into the
/// combined algorithm; any other is returned as it is.
pub fn cms_signature_algorithm(
    signature_algorithm: &AlgorithmIdentifierOwned,
    digest: DigestAlgorithm,
) -> AlgorithmIdentifierOwned {
    let combined = |oid: ObjectIdentifier, null: bool| AlgorithmIdentifierOwned {
        oid,
        parameters: null.then(|| Null.into()),
    };
    match signature_algorithm.oid {
        oids::RSA_ENCRYPTION => match digest {
            DigestAlgorithm::Sha256 => combined(oids::SHA256_WITH_RSA, true),
            DigestAlgorithm::Sha384 => combined(oids::SHA384_WITH_RSA, true),
            DigestAlgorithm::Sha512 => combined(oids::SHA512_WITH_RSA, true),
        },
        oids::EC_PUBLIC_KEY => match digest {
            DigestAlgorithm::Sha256 => combined(oids::ECDSA_WITH_SHA256, false),
            DigestAlgorithm::Sha384 => combined(oids::ECDSA_WITH_SHA384, false),
            DigestAlgorithm::Sha512 => combined(oids::ECDSA_WITH_SHA512, false),
        },
        _ => signature_algorithm.clone(),
    }
}

/// RFC 3161 §2.4.2: a `tsa` name "MUST correspond to one of the subject names included in
/// the certificate that is to be used to verify the token".
fn check_tsa_name(token: &ParsedToken, cert: &Certificate) -> Result<(), TsaError> {
    let Some(name) = &token.tst_info().tsa else {
        return Ok(());
    };
    let tbs = &cert.tbs_certificate;
    let subject_matches = match name {
        GeneralName::DirectoryName(n) => same_der(n, &tbs.subject),
        _ => false,
    };
    let san_matches = || {
        tbs.extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id == oids::EXT_SUBJECT_ALT_NAME)
            .filter_map(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok())
            .any(|san| san.0.iter().any(|n| same_der(n, name)))
    };
    if subject_matches || san_matches() {
        Ok(())
    } else {
        Err(TsaError::TsaNameMismatch {
            tsa_name: describe_general_name(name),
            signer: tbs.subject.to_string(),
        })
    }
}

fn hex_or_absent(v: Option<String>) -> String {
    v.unwrap_or_else(|| "absent".into())
}

fn check_expectations(
    token: &ParsedToken,
    cert: &Certificate,
    expect: &Expectations<'_>,
) -> Result<(), TsaError> {
    let tst = token.tst_info();
    let digest = match (expect.data, expect.hashed_message) {
        (Some(data), _) => Some(token.imprint_algorithm()?.digest(data)),
        (None, Some(hashed)) => Some(hashed.to_vec()),
        (None, None) => None,
    };
    if let Some(digest) = digest {
        if digest != token.hashed_message() {
            let algorithm = token.imprint_algorithm()?;
            return Err(TsaError::ImprintMismatch {
                expected: format!("{algorithm} {}", hex::encode(&digest)),
                found: format!("{algorithm} {}", hex::encode(token.hashed_message())),
            });
        }
    }
    if let Some(request) = expect.request {
        crate::client::check_answers_request(token, request)?;
    }
    if let Some(nonce) = expect.nonce {
        let wanted: Vec<u8> = nonce.iter().copied().skip_while(|b| *b == 0).collect();
        if tst.nonce.as_ref().and_then(unsigned_value) != Some(wanted.clone()) {
            return Err(TsaError::NonceMismatch {
                expected: format!("0x{}", hex::encode_upper(&wanted)),
                found: hex_or_absent(token.nonce_hex()),
            });
        }
    }
    if let Some(policy) = expect.policy {
        if policy.trim() != tst.policy.to_string() {
            return Err(TsaError::PolicyMismatch {
                expected: policy.trim().to_string(),
                found: tst.policy,
            });
        }
    }
    if let Some(subject) = expect.signer_subject {
        let found = cert.tbs_certificate.subject.to_string();
        if found != subject {
            return Err(TsaError::SignerNameMismatch {
                expected: subject.to_string(),
                found,
            });
        }
    }
    Ok(())
}
