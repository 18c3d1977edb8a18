//! The OCSP responder (RFC 6960 §2, profiled by RFC 9919): one request in, one DER
//! OCSPResponse out, for every CA it serves, each answered by that CA's delegated responder
//! certificate and key (§4.2.2.2). It never sees a CA private key.
//!
//! Decisions where the RFCs leave room:
//! - A request is answered for one CA. CertIDs of a CA not served, with a hash algorithm imza
//!   does not support, or of two different CAs in one request get `unauthorized` (§2.3): one
//!   BasicOCSPResponse is signed by one delegated responder, which clients accept only for its
//!   own CA, so a partial answer would fail verification anyway.
//! - Several CertIDs of one CA get one BasicOCSPResponse with one SingleResponse each, in
//!   request order, each CertID echoed as received.
//! - producedAt = thisUpdate = `now` (whole seconds); nextUpdate = now + validity, never past
//!   the responder certificate's notAfter.
//! - ResponderID is byKey: the SHA-1 KeyHash of §4.2.1, short and unaffected by renaming.
//! - revocationReason is included when known and not `unspecified` (as RFC 5280 §5.3.1 advises
//!   for CRLs, so both sources say the same).
//! - A nonce (RFC 9654) is echoed as a non-critical response extension; the answer says whether
//!   there was one, so the HTTP layer caches only nonce-less answers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use der::asn1::OctetString;
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::{CrlReason, ExtendedKeyUsage};
use x509_cert::Certificate;
use x509_ocsp::{
    CertStatus, OcspGeneralizedTime, OcspResponseStatus, ResponderId, ResponseData, RevokedInfo,
    SingleResponse, Version,
};

use imza_core::clock::{from_x509_time, generalized_time, rfc3339, whole_seconds};
use imza_core::{oids, SigningKey};

use crate::cert_id::{responder_key_hash, IssuerFingerprints};
use crate::request::{parse_request_with, ParsedRequest, RequestLimits, RequestedCert};
use crate::signing::{error_response, sign_response};
use crate::status::{CertStatusInfo, CertificateStatusSource, IssuerId};
use crate::OcspError;

/// How long a response stays fresh by default (nextUpdate − thisUpdate).
pub const DEFAULT_VALIDITY: Duration = Duration::hours(1);

/// One CA the responder answers for.
#[derive(Clone)]
pub struct ServedCa {
    pub issuer: IssuerId,
    /// The CA's certificate, DER.
    pub ca_certificate: Vec<u8>,
    /// The delegated responder's certificate, DER: issued by this CA, with the
    /// id-kp-OCSPSigning extended key usage (RFC 6960 §4.2.2.2) and, in imza's `ocsp`
    /// profile, id-pkix-ocsp-nocheck.
    pub responder_certificate: Vec<u8>,
    /// The delegated responder's key; its public key must be the certificate's.
    pub responder_key: Arc<dyn SigningKey>,
}

/// Responder settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponderConfig {
    /// nextUpdate − thisUpdate of every response.
    pub validity: Duration,
    pub limits: RequestLimits,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            validity: DEFAULT_VALIDITY,
            limits: RequestLimits::default(),
        }
    }
}

/// What the responder answered, with the facts the HTTP layer needs to cache and log it.
#[derive(Clone, Debug)]
pub struct OcspAnswer {
    /// The DER OCSPResponse to send (always well-formed, whatever the request was).
    pub der: Vec<u8>,
    pub status: OcspResponseStatus,
    /// True when the request carried a nonce: such an answer is for that request alone and
    /// must not be served from a cache. False when the request could not be read.
    pub has_nonce: bool,
    /// thisUpdate (= producedAt) of a successful answer.
    pub this_update: Option<OffsetDateTime>,
    /// nextUpdate of a successful answer: a cached copy is good until then.
    pub next_update: Option<OffsetDateTime>,
    /// The CA answered for, when the request got that far.
    pub issuer: Option<IssuerId>,
    /// Why the answer is not `successful`, for logs and metrics.
    pub problem: Option<OcspError>,
}

impl OcspAnswer {
    fn failed(problem: OcspError, has_nonce: bool, issuer: Option<IssuerId>) -> Self {
        let status = problem.response_status();
        OcspAnswer {
            der: error_response(status),
            status,
            has_nonce,
            this_update: None,
            next_update: None,
            issuer,
            problem: Some(problem),
        }
    }
}

/// A served CA, checked and with everything per-response precomputed.
struct CaResponder {
    issuer: IssuerId,
    fingerprints: IssuerFingerprints,
    responder_id: ResponderId,
    responder_certificate: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key: Arc<dyn SigningKey>,
}

/// The OCSP responder for a set of CAs.
pub struct Responder {
    cas: Vec<CaResponder>,
    config: ResponderConfig,
}

fn configuration(issuer: &IssuerId, reason: impl ToString) -> OcspError {
    OcspError::Configuration {
        issuer: issuer.to_string(),
        reason: reason.to_string(),
    }
}

/// Checks that `served` is a delegated responder RFC 6960 §4.2.2.2 clients accept for its CA.
fn check_served(served: &ServedCa) -> Result<CaResponder, OcspError> {
    let issuer = &served.issuer;
    let ca = Certificate::from_der(&served.ca_certificate)
        .map_err(|e| configuration(issuer, format!("the CA certificate does not parse: {e}")))?;
    let responder = Certificate::from_der(&served.responder_certificate).map_err(|e| {
        configuration(
            issuer,
            format!("the responder certificate does not parse: {e}"),
        )
    })?;
    let tbs = &responder.tbs_certificate;
    if tbs.issuer != ca.tbs_certificate.subject {
        return Err(configuration(
            issuer,
            "the responder certificate was not issued by this CA (issuer name differs)",
        ));
    }
    let ca_spki = ca
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| configuration(issuer, e))?;
    let tbs_der = tbs.to_der().map_err(|e| configuration(issuer, e))?;
    let signature = responder.signature.as_bytes().unwrap_or_default();
    imza_core::verify::verify_signature(
        &ca_spki,
        &responder.signature_algorithm,
        &tbs_der,
        signature,
    )
    .map_err(|e| {
        configuration(
            issuer,
            format!("the responder certificate is not signed by this CA's key: {e}"),
        )
    })?;
    let has_ocsp_signing = tbs
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oids::EXT_EXTENDED_KEY_USAGE)
        .filter_map(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok())
        .any(|eku| eku.0.contains(&oids::KP_OCSP_SIGNING));
    if !has_ocsp_signing {
        return Err(configuration(
            issuer,
            "the responder certificate lacks the id-kp-OCSPSigning extended key usage (RFC 6960 §4.2.2.2)",
        ));
    }
    let key_spki = served
        .responder_key
        .public_key_der()
        .and_then(|der| {
            SubjectPublicKeyInfoOwned::from_der(&der)
                .map_err(|e| imza_core::CoreError::malformed("public key", e))
        })
        .map_err(|e| configuration(issuer, format!("cannot read the responder key: {e}")))?;
    if key_spki != tbs.subject_public_key_info {
        return Err(configuration(
            issuer,
            format!(
                "the responder key ({}) is not the key of the responder certificate",
                served.responder_key.describe()
            ),
        ));
    }
    let key_hash = OctetString::new(responder_key_hash(&responder).to_vec())
        .map_err(|e| configuration(issuer, e))?;
    Ok(CaResponder {
        issuer: issuer.clone(),
        fingerprints: IssuerFingerprints::of(&ca)?,
        responder_id: ResponderId::ByKey(key_hash),
        responder_certificate: served.responder_certificate.clone(),
        not_before: from_x509_time(&tbs.validity.not_before),
        not_after: from_x509_time(&tbs.validity.not_after),
        key: served.responder_key.clone(),
    })
}

impl Responder {
    /// A responder for `cas`, after checking each delegated responder: its certificate is
    /// issued and signed by the CA, carries id-kp-OCSPSigning, and matches its key.
    pub fn new(cas: Vec<ServedCa>, config: ResponderConfig) -> Result<Self, OcspError> {
        let mut checked: Vec<CaResponder> = Vec::with_capacity(cas.len());
        for served in &cas {
            if config.validity <= Duration::ZERO {
                return Err(configuration(
                    &served.issuer,
                    "the response validity must be positive",
                ));
            }
            let ca = check_served(served)?;
            if let Some(twin) = checked
                .iter()
                .find(|c| c.issuer == ca.issuer || c.fingerprints == ca.fingerprints)
            {
                return Err(configuration(
                    &ca.issuer,
                    format!("served twice (also as {})", twin.issuer),
                ));
            }
            checked.push(ca);
        }
        Ok(Responder {
            cas: checked,
            config,
        })
    }

    /// The CAs answered for.
    pub fn issuers(&self) -> impl Iterator<Item = &IssuerId> {
        self.cas.iter().map(|c| &c.issuer)
    }

    /// When the delegated responder certificate of `issuer` expires: renew it before then.
    pub fn responder_not_after(&self, issuer: &IssuerId) -> Option<OffsetDateTime> {
        self.cas
            .iter()
            .find(|c| &c.issuer == issuer)
            .map(|c| c.not_after)
    }

    pub fn config(&self) -> &ResponderConfig {
        &self.config
    }

    /// Answers the DER OCSPRequest `request_der` as of `now`, asking `source` for status.
    ///
    /// Never panics and always returns a well-formed OCSPResponse: a malformed or oversized
    /// request gets `malformedRequest`, a CA not served `unauthorized`, an unreadable status
    /// source `tryLater`, a signing failure `internalError` (RFC 6960 §2.3). A panic inside a
    /// status source or key backend is caught and answered `internalError`.
    pub fn respond(
        &self,
        request_der: &[u8],
        now: OffsetDateTime,
        source: &dyn CertificateStatusSource,
    ) -> OcspAnswer {
        let answer = catch_unwind(AssertUnwindSafe(|| {
            match parse_request_with(request_der, &self.config.limits) {
                Ok(request) => self.respond_to(&request, now, source),
                Err(problem) => OcspAnswer::failed(problem, false, None),
            }
        }));
        answer.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            OcspAnswer::failed(OcspError::Panic(what), false, None)
        })
    }

    /// Answers an already parsed request (the HTTP layer may parse once to key its cache).
    pub fn respond_to(
        &self,
        request: &ParsedRequest,
        now: OffsetDateTime,
        source: &dyn CertificateStatusSource,
    ) -> OcspAnswer {
        let has_nonce = request.nonce.is_some();
        let ca = match self.issuer_of(&request.certs) {
            Ok(ca) => ca,
            Err(problem) => return OcspAnswer::failed(problem, has_nonce, None),
        };
        match self.answer(ca, request, now, source) {
            Ok(answer) => answer,
            Err(problem) => OcspAnswer::failed(problem, has_nonce, Some(ca.issuer.clone())),
        }
    }

    /// The one served CA every CertID of the request belongs to.
    fn issuer_of(&self, certs: &[RequestedCert]) -> Result<&CaResponder, OcspError> {
        let mut found: Option<&CaResponder> = None;
        for cert in certs {
            let id = &cert.cert_id;
            if cert.hash.is_none() {
                return Err(OcspError::UnsupportedHashAlgorithm {
                    oid: id.hash_algorithm.oid,
                });
            }
            let ca = self
                .cas
                .iter()
                .find(|ca| ca.fingerprints.matches(id))
                .ok_or_else(|| OcspError::IssuerNotServed {
                    hash: cert.hash.map_or("?", |h| h.name()),
                    name_hash: hex::encode(id.issuer_name_hash.as_bytes()),
                    key_hash: hex::encode(id.issuer_key_hash.as_bytes()),
                    serial: hex::encode_upper(id.serial_number.as_bytes()),
                })?;
            match found {
                Some(first) if first.issuer != ca.issuer => {
                    return Err(OcspError::MixedIssuers {
                        first: first.issuer.to_string(),
                        second: ca.issuer.to_string(),
                    })
                }
                _ => found = Some(ca),
            }
        }
        found.ok_or(OcspError::NoCertIds)
    }

    fn answer(
        &self,
        ca: &CaResponder,
        request: &ParsedRequest,
        now: OffsetDateTime,
        source: &dyn CertificateStatusSource,
    ) -> Result<OcspAnswer, OcspError> {
        let now = whole_seconds(now);
        if now < ca.not_before || now > ca.not_after {
            return Err(OcspError::ResponderCertificateNotValid {
                issuer: ca.issuer.to_string(),
                at: rfc3339(now),
                not_before: rfc3339(ca.not_before),
                not_after: rfc3339(ca.not_after),
            });
        }
        let next_update = now
            .checked_add(self.config.validity)
            .map_or(ca.not_after, |t| t.min(ca.not_after));
        let signing_failed = |reason: String| OcspError::Signing {
            issuer: ca.issuer.to_string(),
            reason,
        };
        let time = |t: OffsetDateTime| {
            generalized_time(t)
                .map(OcspGeneralizedTime)
                .map_err(|e| signing_failed(e.to_string()))
        };
        let this_update_time = time(now)?;
        let next_update_time = time(next_update)?;
        let mut responses = Vec::with_capacity(request.certs.len());
        for cert in &request.certs {
            let serial = cert.cert_id.serial_number.as_bytes();
            let cert_status = match source.status(&ca.issuer, serial)? {
                CertStatusInfo::Good => CertStatus::good(),
                CertStatusInfo::Unknown => CertStatus::unknown(),
                CertStatusInfo::Revoked { at, reason } => CertStatus::revoked(RevokedInfo {
                    revocation_time: time(at)?,
                    revocation_reason: reason.filter(|r| *r != CrlReason::Unspecified),
                }),
            };
            responses.push(SingleResponse {
                cert_id: cert.cert_id.clone(),
                cert_status,
                this_update: this_update_time,
                next_update: Some(next_update_time),
                single_extensions: None,
            });
        }
        let nonce = request.nonce.as_ref().map(|n| {
            let mut extension = n.extension.clone();
            // RFC 6960 §4.4: the critical flag SHOULD NOT be set on OCSP extensions.
            extension.critical = false;
            vec![extension]
        });
        let data = ResponseData {
            version: Version::V1,
            responder_id: ca.responder_id.clone(),
            produced_at: this_update_time,
            responses,
            response_extensions: nonce,
        };
        let der = sign_response(&data, ca.key.as_ref(), &[&ca.responder_certificate])
            .map_err(|e| signing_failed(e.to_string()))?;
        Ok(OcspAnswer {
            der,
            status: OcspResponseStatus::Successful,
            has_nonce: request.nonce.is_some(),
            this_update: Some(now),
            next_update: Some(next_update),
            issuer: Some(ca.issuer.clone()),
            problem: None,
        })
    }
}
