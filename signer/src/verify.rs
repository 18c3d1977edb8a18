//! Validating CMS / CAdES signatures (ETSI EN 319 102-1 §5, the basic and with-time
//! validation processes) into a [`ValidationReport`].
//!
//! For each SignerInfo: find the signing certificate (sid, and the ESS signing-certificate
//! binding when present), verify the signature over the signed attributes and the
//! message-digest against the content, verify the signature time-stamps (imprint = hash of
//! the signature value; the TSA's path and revocation through imza-validation), take the
//! earliest valid one's genTime as the proof-of-existence (POE) time, and validate the
//! signing certificate's path at that time with revocation required.
//!
//! Verdicts (EN 319 102-1 §5.1.3):
//! - input that is not a readable CMS SignedData: one signature entry, TOTAL_FAILED /
//!   FORMAT_FAILURE (with the decoder's words in `errors`); also when it has no SignerInfo;
//! - content that does not match the message-digest: TOTAL_FAILED / HASH_FAILURE; a detached
//!   signature verified without its content: INDETERMINATE / SIGNED_DATA_NOT_FOUND;
//! - a signature value that does not verify: TOTAL_FAILED / SIG_CRYPTO_FAILURE;
//! - the signing certificate revoked before a valid time-stamp's time: TOTAL_FAILED / REVOKED;
//!   revoked after it: TOTAL_PASSED, the revocation reported as `revoked_later`; revoked and no
//!   time-stamp: INDETERMINATE / REVOKED_NO_POE (a CA: REVOKED_CA_NO_POE);
//! - no path to an anchor: INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND; a certificate expired or
//!   not yet valid at the POE time: OUT_OF_BOUNDS_NO_POE; no usable revocation information:
//!   TRY_LATER; constraints or key usage: CHAIN_CONSTRAINTS_FAILURE; an algorithm not accepted:
//!   CRYPTO_CONSTRAINTS_FAILURE_NO_POE.
//!
//! A time-stamp that does not verify is reported with its own indication and ignored for the
//! POE (EN 319 102-1 §5.6.2.4: only time-stamps that pass give proof of existence).

use imza_tsa::imprint_algorithm;
use std::io::Read;
use std::sync::Arc;

use const_oid::ObjectIdentifier;
use der::Encode;
use imza_core::alg::DigestAlgorithm;
use imza_core::alg::PublicKeyKind;
use imza_core::clock::from_x509_time;
use imza_core::name::{attribute_values, format_dn};
use imza_core::{oids, CoreError};
use imza_tsa::{
    cms_signature_algorithm, verify_token, Expectations, ParsedToken, TsaError, VerificationTime,
};
use imza_validation::{
    Certificate, Crl, FetchCache, Fetcher, LocalRevocationSource, Purpose, RevocationEvidence,
    RevocationState, SignatureCache, Strictness, ValidatedPath,
};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;

use crate::attributes;
use crate::content::{Content, ContentDigests, MAX_KEPT_CONTENT_BYTES};
use crate::report::{
    time_text, ChainCertificate, Indication, RevocationReport, SignatureReport, SignerReport,
    SubIndication, TimestampReport, ValidationReport,
};
use crate::signed_data::{find_signer_certificate, CmsSignedData, CmsSigner, VALIDATING};
use crate::validation_data::{revocation_value, RevocationValue};
use crate::verify_paths::{
    Network, OnlineSources, PathChecker, PathFailure, PathFailureKind, SignatureMaterial,
    TsaPathValidator,
};
use crate::{Level, SignerError};

/// Most time-stamp tokens of one kind verified per signature; more are reported as ignored.
const MAX_TIMESTAMPS: usize = 8;

/// What a validation trusts and may use.
#[derive(Clone)]
pub struct VerifyOptions {
    /// The trust anchors every path (the signer's, each TSA's) must end at.
    pub trust_anchors: Vec<Certificate>,
    /// Certificates the signature may lack (intermediates, the signer's own): untrusted.
    pub extra_certificates: Vec<Certificate>,
    /// CRLs to use besides those in the signature.
    pub extra_crls: Vec<Crl>,
    /// Whether CRLs and OCSP responses may be fetched from the URLs in certificates (when
    /// what the signature carries and the issuer's records do not settle a status).
    pub network: bool,
    /// With `network`: fetch through this process-wide cache (answers shared across
    /// verifications and kept for their validity, identical fetches made once, at most
    /// `per_request` outbound fetches per [`SignatureVerifier::verify`] call and `concurrent`
    /// in the process; OCSP without nonces). `None`: each path validation fetches on its own,
    /// with OCSP nonces, nothing kept (the CLI's `--network`).
    pub fetch_cache: Option<Arc<FetchCache>>,
    /// With `network` and no `fetch_cache`: fetch through this (shared by every path
    /// validation) instead of a new HTTP client each time; e.g. one that notes network
    /// failures, as `imza verify --network` does to tell "unreachable" from "no".
    pub fetcher: Option<Arc<dyn Fetcher>>,
    /// The issuer's own records, asked before OCSP and CRLs for the certificates of the CAs
    /// they cover (`imza serve`: its CA store), network or not.
    pub local_revocation: Option<Arc<dyn LocalRevocationSource>>,
    /// The validation's "current time": a signature without a valid time-stamp is judged at
    /// it, and every time-stamp's TSA path is.
    pub time: OffsetDateTime,
    /// Verified certificate and CRL signatures to share with other validators of the
    /// process; `None`: the verifier keeps its own.
    pub signature_cache: Option<Arc<SignatureCache>>,
    /// The path validator's policy checks (anchor certificate, CA EKUs, RFC 5280 conformance,
    /// RSA key size) for the signer's and every TSA's path: all on by default.
    pub strictness: Strictness,
}

impl VerifyOptions {
    /// Trusting `trust_anchors`, nothing extra, no network, at `time`.
    pub fn new(trust_anchors: Vec<Certificate>, time: OffsetDateTime) -> VerifyOptions {
        VerifyOptions {
            trust_anchors,
            extra_certificates: Vec::new(),
            extra_crls: Vec::new(),
            network: false,
            fetch_cache: None,
            fetcher: None,
            local_revocation: None,
            time,
            signature_cache: None,
            strictness: Strictness::default(),
        }
    }
}

impl std::fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("trust_anchors", &self.trust_anchors.len())
            .field("extra_certificates", &self.extra_certificates.len())
            .field("extra_crls", &self.extra_crls.len())
            .field("network", &self.network)
            .field("fetch_cache", &self.fetch_cache)
            .field("fetcher", &self.fetcher.is_some())
            .field(
                "local_revocation",
                &self.local_revocation.as_ref().map(|l| l.name()),
            )
            .field("time", &self.time)
            .field("strictness", &self.strictness)
            .finish_non_exhaustive()
    }
}

/// A verifier built once from [`VerifyOptions`] and used for many signatures (`POST /verify`,
/// batch checks): it keeps the parsed anchors and a cache of validated paths, so signatures
/// from the same signer under the same CA cost a lookup for the chain. `Sync`.
pub struct SignatureVerifier {
    paths: PathChecker,
}

/// Validates `signature_der` (a DER `ContentInfo` of `SignedData`) with the content for a
/// detached signature, under `options`. Never panics; any input gives a report (see the
/// module documentation for the verdicts).
pub fn verify(
    signature_der: &[u8],
    detached_content: Option<&[u8]>,
    options: &VerifyOptions,
) -> ValidationReport {
    SignatureVerifier::new(options).verify(signature_der, detached_content, options.time)
}

/// [`verify`] with the detached content read from `content` as a stream, in bounded memory
/// ([`SignatureVerifier::verify_reader`]).
pub fn verify_reader(
    signature_der: &[u8],
    content: &mut dyn Read,
    options: &VerifyOptions,
) -> std::io::Result<ValidationReport> {
    SignatureVerifier::new(options).verify_reader(signature_der, content, options.time)
}

impl SignatureVerifier {
    /// A verifier with `options`' anchors, extra certificates and CRLs, network setting,
    /// fetch cache and local records (its `time` is not kept: each
    /// [`SignatureVerifier::verify`] call passes one).
    pub fn new(options: &VerifyOptions) -> SignatureVerifier {
        SignatureVerifier {
            paths: PathChecker::new(
                options.trust_anchors.clone(),
                options.extra_certificates.clone(),
                options.extra_crls.clone(),
                OnlineSources {
                    network: options.network,
                    fetch_cache: options.fetch_cache.clone(),
                    fetcher: options.fetcher.clone(),
                    local: options.local_revocation.clone(),
                },
                options.strictness,
                options.signature_cache.clone().unwrap_or_default(),
            ),
        }
    }

    /// Validates one signature document at the current time `now`.
    pub fn verify(
        &self,
        signature_der: &[u8],
        detached_content: Option<&[u8]>,
        now: OffsetDateTime,
    ) -> ValidationReport {
        match read_signature(signature_der) {
            Ok(read) => self.verify_read(
                &read,
                detached_content.map(Content::Bytes),
                now,
                &OuterMaterial::default(),
            ),
            Err(e) => unreadable(e, now),
        }
    }

    /// [`SignatureVerifier::verify`] with the detached content read from `content` as a
    /// stream: hashed in one pass with the digest algorithms the signature uses (every one
    /// supported when it has archive time-stamps), so memory stays bounded whatever the
    /// document's size. A SignerInfo without signed attributes signs the document itself: its
    /// bytes are kept for it up to [`MAX_KEPT_CONTENT_BYTES`], and beyond that it is
    /// INDETERMINATE / SIGNED_DATA_NOT_FOUND. A signature that does not parse is reported
    /// without reading `content`. Errors are `content`'s read errors.
    pub fn verify_reader(
        &self,
        signature_der: &[u8],
        content: &mut dyn Read,
        now: OffsetDateTime,
    ) -> std::io::Result<ValidationReport> {
        self.verify_streamed(signature_der, content, now, &OuterMaterial::default())
    }

    /// [`SignatureVerifier::verify_reader`] with what the signature's container holds beside
    /// the CMS (a PDF's DSS).
    pub(crate) fn verify_streamed(
        &self,
        signature_der: &[u8],
        content: &mut dyn Read,
        now: OffsetDateTime,
        outer: &OuterMaterial,
    ) -> std::io::Result<ValidationReport> {
        let read = match read_signature(signature_der) {
            Ok(read) => read,
            Err(e) => return Ok(unreadable(e, now)),
        };
        let (algorithms, keep) = content_needs(&read.signed_data);
        let digests = ContentDigests::read(content, &algorithms, keep)?;
        Ok(self.verify_read(&read, Some(Content::Digested(&digests)), now, outer))
    }

    /// A document time-stamp (a PDF's `/DocTimeStamp`): the RFC 3161 token `token_der` whose
    /// imprint must be `hashed` (made with `algorithm`, the token's own), its TSA's path
    /// validated at `now`, reported as one signature.
    pub(crate) fn verify_document_timestamp(
        &self,
        token_der: &[u8],
        hashed: &[u8],
        now: OffsetDateTime,
        outer: &OuterMaterial,
    ) -> SignatureReport {
        let mut report = SignatureReport::new(0);
        let certificates: Vec<Vec<u8>> = CmsSignedData::read(token_der, &VALIDATING)
            .map(|token| {
                token
                    .x509_certificates()
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect()
            })
            .unwrap_or_default();
        let certificates: Vec<Vec<u8>> = certificates
            .into_iter()
            .chain(outer.certificates.iter().cloned())
            .collect();
        let candidates: Vec<Vec<u8>> = certificates
            .iter()
            .cloned()
            .chain(self.paths.extra_certificates().map(<[u8]>::to_vec))
            .collect();
        let material =
            SignatureMaterial::new(certificates, &outer.crls, outer.ocsp_responses.clone());
        let signed_data = match CmsSignedData::read(token_der, &VALIDATING) {
            Ok(signed_data) => signed_data,
            Err(e) => {
                report.fail(
                    SubIndication::FORMAT_FAILURE,
                    format!("the document time-stamp is not a CMS SignedData: {e}"),
                );
                return report;
            }
        };
        let cx = Context {
            signed_data: &signed_data,
            content: None,
            detached_content: None,
            has_revocation_values: false,
            material: &material,
            candidates: &candidates,
            network: &self.paths.network(),
            now,
            outer_poe: outer.poe,
        };
        let tsa_time = outer.poe.map_or(now, |poe| poe.min(now));
        let (entry, time) = self.check_token(
            &cx,
            token_der,
            Some(Stamped::Hash(hashed)),
            "document",
            tsa_time,
        );
        report.indication = entry.indication;
        report.sub_indication = entry.sub_indication;
        if let Some(error) = &entry.error {
            report.errors.push(error.clone());
        }
        report.poe_time = time;
        report.timestamps.push(entry);
        report
    }

    fn verify_read(
        &self,
        read: &ReadSignature,
        detached_content: Option<Content<'_>>,
        now: OffsetDateTime,
        outer: &OuterMaterial,
    ) -> ValidationReport {
        let signed_data = &read.signed_data;
        if signed_data.signers.is_empty() {
            let mut report = SignatureReport::new(0);
            report.detached = signed_data.econtent().is_none();
            report.fail(
                SubIndication::FORMAT_FAILURE,
                "the SignedData has no SignerInfo: nothing is signed",
            );
            return ValidationReport::new(now, vec![report]);
        }
        let certificates: Vec<Vec<u8>> = signed_data
            .x509_certificates()
            .into_iter()
            .map(<[u8]>::to_vec)
            .chain(outer.certificates.iter().cloned())
            .collect();
        let candidates: Vec<Vec<u8>> = certificates
            .iter()
            .cloned()
            .chain(self.paths.extra_certificates().map(<[u8]>::to_vec))
            .collect();
        let (crls, ocsp_responses) = (&read.crls, &read.ocsp_responses);
        let all_crls: Vec<Vec<u8>> = crls.iter().chain(&outer.crls).cloned().collect();
        let all_ocsp: Vec<Vec<u8>> = ocsp_responses
            .iter()
            .chain(&outer.ocsp_responses)
            .cloned()
            .collect();
        let context = Context {
            signed_data,
            content: signed_data
                .econtent()
                .map(Content::Bytes)
                .or(detached_content),
            detached_content,
            has_revocation_values: !crls.is_empty() || !ocsp_responses.is_empty(),
            material: &SignatureMaterial::new(certificates, &all_crls, all_ocsp),
            candidates: &candidates,
            network: &self.paths.network(),
            now,
            outer_poe: outer.poe,
        };
        let reports = signed_data
            .signers
            .iter()
            .enumerate()
            .map(|(index, signer)| self.verify_signer(&context, index, signer))
            .collect();
        ValidationReport::new(now, reports)
    }

    fn verify_signer(&self, cx: &Context<'_>, index: usize, signer: &CmsSigner) -> SignatureReport {
        let mut report = SignatureReport::new(index);
        report.detached = cx.signed_data.econtent().is_none();
        report.level = Some(structural_level(cx, signer).name());
        report.warnings.extend(cx.material.notes.iter().cloned());
        if cx.signed_data.econtent().is_some() && cx.detached_content.is_some() {
            report.warnings.push(
                "content was supplied for a signature that carries its own; the carried \
                 content was verified"
                    .into(),
            );
        }
        // Identification of the signing certificate (EN 319 102-1 §5.2.3).
        let Some((cert_der, cert)) =
            find_signer_certificate(signer, cx.candidates.iter().map(Vec::as_slice))
        else {
            report.fail(
                SubIndication::NO_SIGNING_CERTIFICATE_FOUND,
                format!(
                    "the signing certificate ({}) is neither in the signature nor among the \
                     certificates supplied",
                    signer.describe_sid()
                ),
            );
            return report;
        };
        report.signer = Some(signer_report(&cert));
        let digest = match imprint_algorithm(signer.digest_algorithm()) {
            Ok(d) => d,
            Err(e) => {
                report.fail(
                    SubIndication::CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
                    format!("digest algorithm: {e}"),
                );
                return report;
            }
        };
        report.digest_algorithm = Some(digest.name().into());
        let algorithm = match signature_algorithm(signer, digest, &cert) {
            Ok(a) => a,
            Err((sub_indication, e)) => {
                report.fail(sub_indication, e);
                return report;
            }
        };
        report.signature_algorithm = Some(algorithm_name(&algorithm.oid));

        match signer.signed_attributes_der() {
            Ok(Some(attrs_der)) => {
                if !self.check_signed_attributes(
                    cx,
                    signer,
                    &attrs_der,
                    cert_der,
                    &cert,
                    &algorithm,
                    digest,
                    &mut report,
                ) {
                    return report;
                }
            }
            Err(e) => {
                report.fail(SubIndication::FORMAT_FAILURE, e.to_string());
                return report;
            }
            Ok(None) => {
                report.warnings.push(
                    "no signed attributes: a plain CMS signature over the content, not a CAdES \
                     baseline signature (no signing time, no signing-certificate binding)"
                        .into(),
                );
                let Some(content) = cx.content else {
                    report.fail(
                        SubIndication::SIGNED_DATA_NOT_FOUND,
                        "the signature is detached and no content was given to verify it against",
                    );
                    return report;
                };
                let Some(content) = content.bytes() else {
                    report.fail(
                        SubIndication::SIGNED_DATA_NOT_FOUND,
                        format!(
                            "without signed attributes the signature is over the document \
                             itself, and a document read as a stream is kept only up to \
                             {MAX_KEPT_CONTENT_BYTES} bytes"
                        ),
                    );
                    return report;
                };
                if let Err(e) = check_signature(&cert, &algorithm, content, signer.signature()) {
                    report.fail(e.0, e.1);
                    return report;
                }
            }
        }

        // Signature time-stamps (EN 319 102-1 §5.6.2.4): proof of existence at genTime.
        // Archive time-stamps first: a valid one is when the signature time-stamps' TSA
        // certificates are judged (they may have expired or been revoked since).
        let archive_poe = match (
            self.check_archive_timestamps(cx, signer, &mut report),
            cx.outer_poe,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let tsa_time = archive_poe.unwrap_or(cx.now);
        let timestamps = self.check_timestamps(cx, signer, tsa_time, &mut report);
        let earliest = timestamps.iter().flatten().min().copied();
        let poe = earliest.unwrap_or(cx.now);
        report.poe_time = Some(poe);
        if let (Some(claimed), Some(ts)) = (report.claimed_signing_time, earliest) {
            if claimed > ts {
                report.warnings.push(format!(
                    "the claimed signing time {} is after the signature time-stamp {}",
                    time_text(claimed),
                    time_text(ts)
                ));
            }
        }

        // X.509 certificate validation (EN 319 102-1 §5.2.6) at the POE time.
        let path = self.paths.validate(
            cert_der,
            cx.material.certificates(),
            cx.material,
            cx.network,
            Purpose::Sign,
            poe,
        );
        match path {
            Ok(path) => record_path(&mut report, &path, poe, earliest.is_some()),
            Err(failure) => record_path_failure(&mut report, &failure, &cert, earliest, poe),
        }
        report
    }

    /// Checks the signed attributes (`attrs_der`: their DER SET OF), the signature over them
    /// and the message-digest. Returns false when a failure ends the validation of this signer.
    #[allow(clippy::too_many_arguments)]
    fn check_signed_attributes(
        &self,
        cx: &Context<'_>,
        signer: &CmsSigner,
        attrs_der: &[u8],
        cert_der: &[u8],
        cert: &x509_cert::Certificate,
        algorithm: &AlgorithmIdentifierOwned,
        digest: DigestAlgorithm,
        report: &mut SignatureReport,
    ) -> bool {
        match attributes::signing_time(signer) {
            Ok(Some(t)) => report.claimed_signing_time = Some(t),
            Ok(None) => report
                .warnings
                .push("no signing-time attribute: no claimed signing time".into()),
            Err(e) => report.warnings.push(e.to_string()),
        }
        // The signing-certificate binding (RFC 5035, EN 319 122-1 §5.2.2.3).
        match check_signing_certificate(signer, cert_der, cert) {
            Ok(true) => {}
            Ok(false) => report.warnings.push(
                "no signing-certificate(-v2) attribute: the signing certificate is bound only \
                 by the SignerInfo's identifier (not a CAdES baseline signature)"
                    .into(),
            ),
            Err(e) => {
                report.fail(SubIndication::NO_SIGNING_CERTIFICATE_FOUND, e);
                return false;
            }
        }
        // Cryptographic verification (§5.2.7): the signature over the DER SET OF attributes
        // first, so that a changed attribute reads as what it is.
        if let Err((sub, text)) = check_signature(cert, algorithm, attrs_der, signer.signature()) {
            report.fail(sub, text);
            return false;
        }
        let econtent_type = cx.signed_data.econtent_type();
        let content_type =
            required(attributes::content_type(signer), "content-type").and_then(|oid| {
                if oid == econtent_type {
                    Ok(())
                } else {
                    Err((
                        SubIndication::SIG_CONSTRAINTS_FAILURE,
                        format!(
                            "the content-type attribute says {oid} but the content is \
                             {econtent_type}"
                        ),
                    ))
                }
            });
        let expected = content_type
            .and_then(|()| required(attributes::message_digest(signer), "message-digest"));
        let expected = match expected {
            Ok(expected) => expected,
            Err((sub, text)) => {
                report.fail(sub, text);
                return false;
            }
        };
        let Some(content) = cx.content else {
            report.fail(
                SubIndication::SIGNED_DATA_NOT_FOUND,
                "the signature is detached and no content was given to verify it against",
            );
            return false;
        };
        let Some(actual) = content.digest(digest) else {
            report.fail(
                SubIndication::SIGNED_DATA_NOT_FOUND,
                format!("the content's {digest} was not taken when it was read"),
            );
            return false;
        };
        if actual != expected {
            report.fail(
                SubIndication::HASH_FAILURE,
                format!(
                    "the content's {digest} is {} but the signature's message-digest is {}",
                    hex::encode(&actual),
                    hex::encode(&expected)
                ),
            );
            return false;
        }
        if let (Some(given), Some(carried)) = (cx.detached_content, cx.signed_data.econtent()) {
            if !given.same_as(carried) {
                report.warnings.push(
                    "the content supplied differs from the content the signature carries".into(),
                );
            }
        }
        true
    }

    /// Verifies each signature time-stamp token; returns the genTime of each valid one
    /// (`None` for those that failed), reporting every one.
    fn check_timestamps(
        &self,
        cx: &Context<'_>,
        signer: &CmsSigner,
        tsa_time: OffsetDateTime,
        report: &mut SignatureReport,
    ) -> Vec<Option<OffsetDateTime>> {
        let tokens = signer.unsigned_values(oids::ATTR_TIME_STAMP_TOKEN);
        if tokens.len() > MAX_TIMESTAMPS {
            report.warnings.push(format!(
                "{} signature time-stamps; only the first {MAX_TIMESTAMPS} were verified",
                tokens.len()
            ));
        }
        let mut times = Vec::new();
        for token_der in tokens.into_iter().take(MAX_TIMESTAMPS) {
            let (entry, time) = self.check_token(
                cx,
                token_der,
                Some(Stamped::Data(signer.signature())),
                "signature",
                tsa_time,
            );
            if let Some(error) = &entry.error {
                report.warnings.push(format!(
                    "a signature time-stamp is not accepted and gives no proof of existence: {error}"
                ));
            }
            report.timestamps.push(entry);
            times.push(time);
        }
        times
    }

    /// Verifies each archive-time-stamp-v3 (EN 319 122-1 §5.5.3): its message imprint and
    /// hash index against the signature (imza's signing side computes them), then the token
    /// and its TSA's path at the current time. Returns the earliest valid one's genTime: a
    /// proof that everything it covers (the signature time-stamps and their TSAs'
    /// certificates included) existed then.
    fn check_archive_timestamps(
        &self,
        cx: &Context<'_>,
        signer: &CmsSigner,
        report: &mut SignatureReport,
    ) -> Option<OffsetDateTime> {
        if !signer.has_unsigned(oids::ATTR_ARCHIVE_TIME_STAMP_V3) {
            return None;
        }
        let checks =
            match attributes::check_archive_timestamps(cx.signed_data, signer, cx.detached_content)
            {
                Ok(checks) => checks,
                Err(e) => {
                    report.warnings.push(format!(
                    "the archive time-stamps cannot be read and give no proof of existence: {e}"
                ));
                    return None;
                }
            };
        let mut earliest: Option<OffsetDateTime> = None;
        for check in checks.into_iter().take(MAX_TIMESTAMPS) {
            let (entry, time) = match &check.outcome {
                Ok(()) => self.check_token(cx, check.archive.token.der(), None, "archive", cx.now),
                Err(why) => {
                    let token = &check.archive.token;
                    let entry = TimestampReport {
                        kind: "archive",
                        time: Some(token.gen_time()),
                        tsa: tsa_label(token),
                        serial: Some(token.serial_hex()),
                        valid: false,
                        indication: Indication::TotalFailed,
                        sub_indication: Some(SubIndication::HASH_FAILURE),
                        error: Some(format!("archive data: {why}")),
                    };
                    (entry, None)
                }
            };
            if let Some(error) = &entry.error {
                report.warnings.push(format!(
                    "an archive time-stamp is not accepted and gives no proof of existence: {error}"
                ));
            }
            report.timestamps.push(entry);
            if let Some(t) = time {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        }
        earliest
    }

    /// One token over `stamped` (`None`: its imprint was checked by the caller), its TSA's
    /// path validated at `tsa_time`: its report entry and, when valid, its genTime.
    fn check_token(
        &self,
        cx: &Context<'_>,
        token_der: &[u8],
        stamped: Option<Stamped<'_>>,
        kind: &'static str,
        tsa_time: OffsetDateTime,
    ) -> (TimestampReport, Option<OffsetDateTime>) {
        let mut entry = TimestampReport {
            kind,
            time: None,
            tsa: None,
            serial: None,
            valid: false,
            indication: Indication::TotalFailed,
            sub_indication: Some(SubIndication::FORMAT_FAILURE),
            error: None,
        };
        let token = match ParsedToken::from_der(token_der) {
            Ok(t) => t,
            Err(e) => {
                entry.error = Some(format!("unreadable time-stamp token: {e}"));
                return (entry, None);
            }
        };
        entry.time = Some(token.gen_time());
        entry.serial = Some(token.serial_hex());
        entry.tsa = tsa_label(&token);
        let paths = TsaPathValidator {
            checker: &self.paths,
            material: cx.material,
            network: cx.network,
            last: Default::default(),
        };
        let expect = match stamped {
            Some(Stamped::Data(data)) => Expectations {
                data: Some(data),
                ..Default::default()
            },
            Some(Stamped::Hash(hash)) => Expectations {
                hashed_message: Some(hash),
                ..Default::default()
            },
            None => Expectations::default(),
        };
        let verified = verify_token(
            &token,
            cx.candidates,
            &paths,
            VerificationTime::At(tsa_time),
            &expect,
        );
        match verified {
            Ok(v) => {
                if entry.tsa.is_none() {
                    entry.tsa = Some(v.signer_subject.clone());
                }
                if v.gen_time > cx.now {
                    entry.indication = Indication::Indeterminate;
                    entry.sub_indication = Some(SubIndication::OUT_OF_BOUNDS_NO_POE);
                    entry.error = Some(format!(
                        "the time-stamp's time {} is after the validation time {}",
                        time_text(v.gen_time),
                        time_text(cx.now)
                    ));
                    return (entry, None);
                }
                entry.valid = true;
                entry.indication = Indication::TotalPassed;
                entry.sub_indication = None;
                (entry, Some(v.gen_time))
            }
            Err(e) => {
                let sub = match (&e, paths.last.borrow().as_ref()) {
                    (TsaError::CertificatePath { .. }, Some(Err(failure))) => {
                        path_sub_indication(&failure.kind, None, false)
                    }
                    _ => token_sub_indication(&e),
                };
                entry.indication = sub.indication();
                entry.sub_indication = Some(sub);
                entry.error = Some(e.to_string());
                (entry, None)
            }
        }
    }
}

/// The token's TSA name: a directory name as RFC 4514 text, another kind as described.
fn tsa_label(token: &ParsedToken) -> Option<String> {
    token.tsa_name().map(|n| {
        n.strip_prefix("directoryName ")
            .map(str::to_string)
            .unwrap_or(n)
    })
}

/// What a time-stamp token stamps: data, or its hash under the token's imprint algorithm.
#[derive(Clone, Copy)]
enum Stamped<'a> {
    Data(&'a [u8]),
    Hash(&'a [u8]),
}

/// Validation material a signature's container holds beside the CMS (a PDF's DSS: untrusted
/// certificates, CRLs, OCSP responses) and a proof of existence it gives (the earliest valid
/// document time-stamp covering the signature).
#[derive(Clone, Debug, Default)]
pub(crate) struct OuterMaterial {
    pub(crate) certificates: Vec<Vec<u8>>,
    pub(crate) crls: Vec<Vec<u8>>,
    pub(crate) ocsp_responses: Vec<Vec<u8>>,
    pub(crate) poe: Option<OffsetDateTime>,
}

/// A signature read: its SignedData and the revocation values it carries.
struct ReadSignature {
    signed_data: CmsSignedData,
    crls: Vec<Vec<u8>>,
    ocsp_responses: Vec<Vec<u8>>,
}

/// Reads `signature_der`.
fn read_signature(signature_der: &[u8]) -> Result<ReadSignature, SignerError> {
    CmsSignedData::read(signature_der, &VALIDATING)
        .map_err(SignerError::from)
        .and_then(|signed_data| {
            let revocation = signed_data
                .crls
                .iter()
                .map(|element| revocation_value(element))
                .collect::<Result<Vec<_>, _>>()?;
            let mut crls = Vec::new();
            let mut ocsp_responses = Vec::new();
            for value in revocation {
                match value {
                    RevocationValue::Crl(der) => crls.push(der.to_vec()),
                    RevocationValue::OcspResponse(der) => ocsp_responses.push(der),
                    RevocationValue::Other => {}
                }
            }
            Ok(ReadSignature {
                signed_data,
                crls,
                ocsp_responses,
            })
        })
}

/// The report on a signature that is not a readable SignedData: one FORMAT_FAILURE entry.
fn unreadable(e: SignerError, now: OffsetDateTime) -> ValidationReport {
    let mut report = SignatureReport::new(0);
    report.fail(
        SubIndication::FORMAT_FAILURE,
        format!("not a CMS SignedData: {e}"),
    );
    ValidationReport::new(now, vec![report])
}

/// What a streamed content must be hashed with for `signed_data` — each SignerInfo's digest
/// algorithm, every supported one when an archive time-stamp (whose imprint algorithm is its
/// own) is present, SHA-256 at least (to compare with a carried content) — and whether its
/// bytes must be kept (a SignerInfo without signed attributes signs them).
fn content_needs(signed_data: &CmsSignedData) -> (Vec<DigestAlgorithm>, bool) {
    let mut algorithms = Vec::new();
    let mut keep = false;
    for signer in &signed_data.signers {
        if signer.has_unsigned(oids::ATTR_ARCHIVE_TIME_STAMP_V3) {
            algorithms.extend(DigestAlgorithm::ALL);
        }
        if let Ok(algorithm) = imprint_algorithm(signer.digest_algorithm()) {
            algorithms.push(algorithm);
        }
        keep |= matches!(signer.signed_attributes_der(), Ok(None));
    }
    if algorithms.is_empty() {
        algorithms.push(DigestAlgorithm::Sha256);
    }
    (algorithms, keep)
}

/// What every SignerInfo of one document shares.
struct Context<'a> {
    signed_data: &'a CmsSignedData,
    /// The content the message digests are checked against: the carried one, else the given.
    content: Option<Content<'a>>,
    detached_content: Option<Content<'a>>,
    /// Whether `SignedData.crls` holds CRLs or OCSP responses.
    has_revocation_values: bool,
    material: &'a SignatureMaterial,
    /// The signature's certificates, then the caller's: where signers and TSAs are looked for.
    candidates: &'a [Vec<u8>],
    /// The network of this call: all its signers and time-stamps share its fetch cap.
    network: &'a Network,
    now: OffsetDateTime,
    /// A proof of existence from outside the CMS (a PDF's document time-stamp).
    outer_poe: Option<OffsetDateTime>,
}

/// The baseline level whose structures the signature carries (EN 319 122-1 §6.3): a
/// signature time-stamp makes B-T; with revocation data, B-LT; with an archive time-stamp, B-LTA.
fn structural_level(cx: &Context<'_>, signer: &CmsSigner) -> Level {
    let has = |oid| signer.has_unsigned(oid);
    if !has(oids::ATTR_TIME_STAMP_TOKEN) {
        return Level::B;
    }
    let revocation = cx.has_revocation_values || has(oids::ATTR_REVOCATION_VALUES);
    match (revocation, has(oids::ATTR_ARCHIVE_TIME_STAMP_V3)) {
        (false, _) => Level::T,
        (true, false) => Level::LT,
        (true, true) => Level::LTA,
    }
}

fn signer_report(cert: &x509_cert::Certificate) -> SignerReport {
    let tbs = &cert.tbs_certificate;
    SignerReport {
        subject: format_dn(&tbs.subject),
        common_name: attribute_values(&tbs.subject, oids::AT_COMMON_NAME)
            .into_iter()
            .next(),
        personal_code: attribute_values(&tbs.subject, oids::AT_SERIAL_NUMBER)
            .into_iter()
            .next(),
        serial: hex::encode_upper(tbs.serial_number.as_bytes()),
        issuer: format_dn(&tbs.issuer),
    }
}

/// The ESS signing-certificate-v2 (or v1) attribute's first ESSCertID must be the signing
/// certificate's hash (and issuerSerial, when present). `Ok(false)`: no such attribute.
fn check_signing_certificate(
    signer: &CmsSigner,
    cert_der: &[u8],
    cert: &x509_cert::Certificate,
) -> Result<bool, String> {
    if let Some(sc) = attributes::signing_certificate_v2(signer).map_err(|e| e.to_string())? {
        let id = sc
            .certs
            .first()
            .ok_or("the signing-certificate-v2 attribute lists no certificate")?;
        let algorithm = id
            .hash_algorithm()
            .map_err(|e| format!("signing-certificate-v2 hash algorithm: {e}"))?;
        if id.cert_hash.as_bytes() != algorithm.digest(cert_der).as_slice() {
            return Err(format!(
                "the signing-certificate-v2 attribute's {algorithm} hash is not that of the \
                 certificate the SignerInfo names ({})",
                format_dn(&cert.tbs_certificate.subject)
            ));
        }
        check_issuer_serial(id.issuer_serial.as_ref(), cert)?;
        return Ok(true);
    }
    if let Some(sc) = attributes::signing_certificate_v1(signer).map_err(|e| e.to_string())? {
        let id = sc
            .certs
            .first()
            .ok_or("the signing-certificate attribute lists no certificate")?;
        // ESSCertID is SHA-1 by definition (RFC 2634 §5.4.1): a match of a certificate the
        // SignerInfo already names, not a security binding on its own.
        if id.cert_hash.as_bytes() != openssl::sha::sha1(cert_der).as_slice() {
            return Err(
                "the signing-certificate attribute's SHA-1 hash is not that of the signing \
                 certificate"
                    .into(),
            );
        }
        check_issuer_serial(id.issuer_serial.as_ref(), cert)?;
        return Ok(true);
    }
    Ok(false)
}

fn check_issuer_serial(
    issuer_serial: Option<&imza_core::ess::IssuerSerial>,
    cert: &x509_cert::Certificate,
) -> Result<(), String> {
    if issuer_serial.is_none_or(|is| is.names(cert)) {
        Ok(())
    } else {
        Err(
            "the signing-certificate attribute's issuerSerial does not name the signing \
             certificate"
                .into(),
        )
    }
}

/// The SignerInfo's signature algorithm, combined with `digest` where it names only the key
/// type (imza-tsa's [`cms_signature_algorithm`]); SHA-1 ones are refused, and one for another
/// kind of key than the signing certificate's is a format failure (a mislabelled SignerInfo,
/// reported with the OID the file carries, not the combined one).
fn signature_algorithm(
    signer: &CmsSigner,
    digest: DigestAlgorithm,
    cert: &x509_cert::Certificate,
) -> Result<AlgorithmIdentifierOwned, (SubIndication, String)> {
    let sig = signer.signature_algorithm();
    if matches!(sig.oid, oids::SHA1_WITH_RSA | oids::DSA_WITH_SHA1) {
        return Err((
            SubIndication::CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
            format!("signature algorithm {} (SHA-1) is not accepted", sig.oid),
        ));
    }
    let key_oid = &cert.tbs_certificate.subject_public_key_info.algorithm.oid;
    if let (Some(needs), Some(key)) = (
        PublicKeyKind::of_signature_algorithm(&sig.oid),
        PublicKeyKind::of_public_key(key_oid),
    ) {
        if needs != key {
            return Err((
                SubIndication::FORMAT_FAILURE,
                format!(
                    "the SignerInfo's signatureAlgorithm {} ({}) is for an {} key, but the \
                     signing certificate's key is {}: the algorithm does not match the key type",
                    algorithm_name(&sig.oid),
                    sig.oid,
                    needs.name(),
                    key.name()
                ),
            ));
        }
    }
    Ok(cms_signature_algorithm(sig, digest))
}

fn algorithm_name(oid: &ObjectIdentifier) -> String {
    match *oid {
        oids::SHA256_WITH_RSA => "sha256WithRSAEncryption".into(),
        oids::SHA384_WITH_RSA => "sha384WithRSAEncryption".into(),
        oids::SHA512_WITH_RSA => "sha512WithRSAEncryption".into(),
        oids::RSASSA_PSS => "RSASSA-PSS".into(),
        oids::RSA_ENCRYPTION => "rsaEncryption".into(),
        oids::EC_PUBLIC_KEY => "id-ecPublicKey".into(),
        oids::ECDSA_WITH_SHA256 => "ecdsa-with-SHA256".into(),
        oids::ECDSA_WITH_SHA384 => "ecdsa-with-SHA384".into(),
        oids::ECDSA_WITH_SHA512 => "ecdsa-with-SHA512".into(),
        oids::ED25519 => "Ed25519".into(),
        other => other.to_string(),
    }
}

/// A signed attribute RFC 5652 §5.3 requires: missing or unreadable is a format failure.
fn required<T>(
    found: Result<Option<T>, SignerError>,
    name: &str,
) -> Result<T, (SubIndication, String)> {
    match found {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err((
            SubIndication::FORMAT_FAILURE,
            format!("the {name} attribute is missing (RFC 5652 §5.3)"),
        )),
        Err(e) => Err((SubIndication::FORMAT_FAILURE, e.to_string())),
    }
}

/// The signature value over `message` with the certificate's key.
fn check_signature(
    cert: &x509_cert::Certificate,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), (SubIndication, String)> {
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| {
            (
                SubIndication::SIG_CRYPTO_FAILURE,
                format!("the signing certificate's public key: {e}"),
            )
        })?;
    imza_core::verify::verify_signature(&spki, algorithm, message, signature).map_err(|e| match e {
        CoreError::UnsupportedSignatureAlgorithm(oid) => (
            SubIndication::CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
            format!("signature algorithm {oid} is not supported"),
        ),
        CoreError::UnsupportedSignatureParameters { algorithm, detail } => (
            SubIndication::CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
            format!(
                "signature algorithm {} is not supported with these parameters: {detail}",
                algorithm_name(&algorithm)
            ),
        ),
        other => (
            SubIndication::SIG_CRYPTO_FAILURE,
            format!(
                "the signature value does not verify with the signing certificate's key: {other}"
            ),
        ),
    })
}

/// The sub-indication for a time-stamp token that failed for a reason of its own.
fn token_sub_indication(e: &TsaError) -> SubIndication {
    match e {
        TsaError::ImprintMismatch { .. } => SubIndication::HASH_FAILURE,
        TsaError::SignedAttribute {
            attribute: "message-digest",
            ..
        } => SubIndication::HASH_FAILURE,
        TsaError::BadSignature(_) => SubIndication::SIG_CRYPTO_FAILURE,
        TsaError::SignerNotFound { .. } => SubIndication::NO_SIGNING_CERTIFICATE_FOUND,
        TsaError::SignedAttribute { .. } | TsaError::TsaNameMismatch { .. } => {
            SubIndication::SIG_CONSTRAINTS_FAILURE
        }
        TsaError::NotTimeStampingCertificate { .. } => SubIndication::CHAIN_CONSTRAINTS_FAILURE,
        TsaError::UnsupportedHashAlgorithm { .. } => {
            SubIndication::CRYPTO_CONSTRAINTS_FAILURE_NO_POE
        }
        TsaError::CertificatePath { .. } => SubIndication::CERTIFICATE_CHAIN_GENERAL_FAILURE,
        _ => SubIndication::FORMAT_FAILURE,
    }
}

/// The sub-indication for a path failure. `revoked_signer` says whether a revocation is the
/// signing certificate's own; `poe_from_timestamp` whether the validation time is a
/// time-stamp's (a proof of existence) rather than the current time.
fn path_sub_indication(
    kind: &PathFailureKind,
    revoked_signer: Option<bool>,
    poe_from_timestamp: bool,
) -> SubIndication {
    match kind {
        PathFailureKind::NoPath => SubIndication::NO_CERTIFICATE_CHAIN_FOUND,
        PathFailureKind::Revoked { .. } => match (revoked_signer, poe_from_timestamp) {
            (Some(true), true) => SubIndication::REVOKED,
            (Some(true), false) => SubIndication::REVOKED_NO_POE,
            (None, _) => SubIndication::REVOKED_NO_POE,
            (Some(false), _) => SubIndication::REVOKED_CA_NO_POE,
        },
        PathFailureKind::Expired | PathFailureKind::NotYetValid => {
            SubIndication::OUT_OF_BOUNDS_NO_POE
        }
        PathFailureKind::RevocationUnknown => SubIndication::TRY_LATER,
        PathFailureKind::Constraint => SubIndication::CHAIN_CONSTRAINTS_FAILURE,
        PathFailureKind::Unsupported => SubIndication::CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
        PathFailureKind::General => SubIndication::CERTIFICATE_CHAIN_GENERAL_FAILURE,
    }
}

fn record_path_failure(
    report: &mut SignatureReport,
    failure: &PathFailure,
    cert: &x509_cert::Certificate,
    earliest_timestamp: Option<OffsetDateTime>,
    poe: OffsetDateTime,
) {
    let revoked_signer = match &failure.kind {
        PathFailureKind::Revoked { subject, .. } => {
            let own = &cert.tbs_certificate.subject;
            Some(*subject == format_dn(own) || *subject == own.to_string())
        }
        _ => None,
    };
    let sub = path_sub_indication(&failure.kind, revoked_signer, earliest_timestamp.is_some());
    let text = match (&failure.kind, sub) {
        (PathFailureKind::Revoked { revoked_at, .. }, SubIndication::REVOKED) => format!(
            "{}: revoked at {}, before the signature time-stamp's time {}",
            failure.error,
            time_text(*revoked_at),
            time_text(poe)
        ),
        (PathFailureKind::Revoked { .. }, _) => format!(
            "{}, and no time-stamp proves the signature existed before (validated at {})",
            failure.error,
            time_text(poe)
        ),
        _ => format!("certificate path at {}: {}", time_text(poe), failure.error),
    };
    report.fail(sub, text);
}

fn record_path(
    report: &mut SignatureReport,
    path: &ValidatedPath,
    poe: OffsetDateTime,
    poe_from_timestamp: bool,
) {
    report.chain = path
        .chain
        .iter()
        .map(|c| {
            let validity = &c.inner().tbs_certificate.validity;
            ChainCertificate {
                subject: c.subject_text(),
                serial: hex::encode_upper(c.serial()),
                not_before: from_x509_time(&validity.not_before),
                not_after: from_x509_time(&validity.not_after),
            }
        })
        .collect();
    for status in &path.revocation {
        let mut entry = RevocationReport {
            subject: status.subject.clone(),
            serial: status.serial_hex.clone(),
            state: "good",
            source: None,
            this_update: None,
            next_update: None,
            produced_at: None,
            revoked_later: None,
            note: None,
        };
        match &status.state {
            RevocationState::Good { revoked_later } => {
                entry.revoked_later = *revoked_later;
                if let Some(when) = revoked_later {
                    let whose = if poe_from_timestamp {
                        "after the signature time-stamp's time"
                    } else {
                        "after the validation time"
                    };
                    report.warnings.push(format!(
                        "{} was revoked at {}, {whose} {}: the signature stays valid",
                        status.subject,
                        time_text(*when),
                        time_text(poe)
                    ));
                }
            }
            RevocationState::NotChecked { why } => {
                entry.state = "not_checked";
                entry.note = Some(why.clone());
            }
        }
        match &status.evidence {
            Some(RevocationEvidence::Crl {
                this_update,
                next_update,
                ..
            }) => {
                entry.source = Some("CRL");
                entry.this_update = Some(*this_update);
                entry.next_update = *next_update;
            }
            Some(RevocationEvidence::Ocsp {
                produced_at,
                this_update,
                next_update,
                ..
            }) => {
                entry.source = Some("OCSP");
                entry.produced_at = Some(*produced_at);
                entry.this_update = Some(*this_update);
                entry.next_update = *next_update;
            }
            Some(RevocationEvidence::Local { source }) => {
                entry.source = Some("LOCAL");
                entry.note = Some(format!("from {source}"));
            }
            None => {}
        }
        report.revocation.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> VerifyOptions {
        VerifyOptions::new(Vec::new(), OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn not_cms_is_one_format_failure() {
        for input in [&b""[..], b"\x00", b"-----BEGIN PKCS7-----", &[0x30; 64]] {
            let report = verify(input, None, &options());
            assert!(!report.valid);
            let [s] = report.signatures.as_slice() else {
                panic!("one entry expected: {report:?}");
            };
            assert_eq!(s.indication, Indication::TotalFailed);
            assert_eq!(s.sub_indication, Some(SubIndication::FORMAT_FAILURE));
            assert!(!s.errors.is_empty());
        }
    }

    #[test]
    fn revocation_before_a_timestamp_fails_and_without_one_is_indeterminate() {
        let revoked = PathFailureKind::Revoked {
            subject: "CN=x".into(),
            revoked_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert_eq!(
            path_sub_indication(&revoked, Some(true), true),
            SubIndication::REVOKED
        );
        assert_eq!(
            path_sub_indication(&revoked, Some(true), false),
            SubIndication::REVOKED_NO_POE
        );
        assert_eq!(
            path_sub_indication(&revoked, Some(false), true),
            SubIndication::REVOKED_CA_NO_POE
        );
        assert_eq!(SubIndication::REVOKED.indication(), Indication::TotalFailed);
    }
}
