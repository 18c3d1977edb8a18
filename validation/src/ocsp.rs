//! OCSP client side (RFC 6960): building a request for a certificate, and accepting a
//! response only when its signature verifies, its signer is authorised for the issuer
//! (the CA itself or a delegated responder with id-kp-OCSPSigning issued by it, §4.2.2.2), and
//! it is fresh at the validation time.
//!
//! ```text
//! OCSPResponse ::= SEQUENCE {
//!     responseStatus      OCSPResponseStatus,
//!     responseBytes   [0] EXPLICIT ResponseBytes OPTIONAL }
//!
//! BasicOCSPResponse ::= SEQUENCE {
//!     tbsResponseData     ResponseData,
//!     signatureAlgorithm  AlgorithmIdentifier,
//!     signature           BIT STRING,
//!     certs           [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//! ```
//!
//! Freshness (RFC 6960 §4.2.2.1, §3.2 items 4-5): a SingleResponse speaks about the validation
//! time `t` when `thisUpdate − skew ≤ t ≤ nextUpdate + skew`, or when `thisUpdate > t` — a
//! response made after `t` that says "good" says the certificate was not revoked at `t`
//! either, and one that says "revoked at r" answers for `t` by comparing `r` with it. A
//! response **without nextUpdate** ("newer information is available all the time") is taken
//! to speak only for [`MAX_AGE_WITHOUT_NEXT_UPDATE`] after its thisUpdate.
//!
//! A delegated responder's certificate must be valid at `t`, or — for a response produced
//! after `t`, as when a signature made at `t` is validated with the response fetched for it
//! later (CAdES B-LT) — at the response's producedAt. Its own revocation status is not
//! checked (RFC 6960 §4.2.2.2.1 leaves that to the CA's id-pkix-ocsp-nocheck choice). Its RSA
//! key must be as long as the path's ([`crate::Strictness::min_rsa_modulus_bits`]): the
//! responder is judged here, outside the path validator.

use std::sync::Arc;

use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::AuthorityInfoAccessSyntax;
use x509_cert::ext::Extension;
use x509_ocsp::{
    CertStatus, OcspGeneralizedTime, OcspResponse, OcspResponseStatus, ResponderId, ResponseData,
    SingleResponse,
};

use imza_core::clock::{from_x509_time, rfc3339};
use imza_core::name::format_dn;
use imza_core::ocsp::{has_ocsp_signing, responder_key_hash, BasicOcspResponseRaw};
use imza_core::oids;
use imza_http::client::MAX_ANSWER_BYTES;

use crate::ocsp_request::{build_request, random_nonce, CertIdParts};
use crate::path_validation::short_rsa_key;
use crate::{Certificate, Fetcher, RevocationEvidence, Strictness, ValidationError};

/// Most SingleResponses looked through in one response.
pub(crate) const MAX_SINGLE_RESPONSES: usize = 1000;
/// Most certificates of a response's `certs` looked at when finding a delegated responder.
pub(crate) const MAX_RESPONSE_CERTS: usize = 16;
/// Most of the caller's OCSP responses looked at for one certificate.
pub(crate) const MAX_RESPONSES_EXAMINED: usize = 256;
/// Most AIA OCSP URLs asked for one certificate.
pub(crate) const MAX_OCSP_URLS: usize = 4;
/// Clock difference tolerated between the responder and the validation time.
pub(crate) const CLOCK_SKEW: Duration = Duration::minutes(5);
/// How long after its thisUpdate a response without nextUpdate is taken to be current.
pub(crate) const MAX_AGE_WITHOUT_NEXT_UPDATE: Duration = Duration::hours(1);

/// What OCSP says about one certificate at the validation time.
#[derive(Clone, Debug)]
pub(crate) enum OcspFinding {
    /// A usable response says good (or revoked only after the validation time).
    Good {
        revoked_later: Option<OffsetDateTime>,
        evidence: RevocationEvidence,
    },
    /// A usable response says revoked at or before the validation time.
    Revoked {
        at: OffsetDateTime,
        reason: Option<x509_cert::ext::pkix::CrlReason>,
    },
    /// No usable response: none given, none for this certificate, or each unusable for the
    /// reasons listed (bad signature, unauthorised signer, stale, unknown status, network).
    None {
        notes: Vec<String>,
        /// The first response refused only for its delegated responder's short RSA key.
        weak_responder: Option<WeakResponder>,
    },
}

/// A delegated responder that was authorised, but whose RSA key is shorter than the minimum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WeakResponder {
    pub responder: String,
    pub bits: usize,
    pub minimum: usize,
}

/// The OCSP status of `cert` (issued by `issuer`) at `time`, from the `responses` given and,
/// when `fetcher` is set, from the responder in `cert`'s AIA extension; a delegated
/// responder's RSA key is held to `strictness`.
///
/// Among the responses given, a usable "revoked" wins over a usable "good"; the responder is
/// asked only when no given response is usable. Errors are reserved for a `cert` or `issuer`
/// that cannot be encoded; everything about the responses ends up in the notes of
/// [`OcspFinding::None`].
pub(crate) fn ocsp_status(
    cert: &Certificate,
    issuer: &Certificate,
    responses: &[Arc<Vec<u8>>],
    fetcher: Option<&dyn Fetcher>,
    time: OffsetDateTime,
    strictness: &Strictness,
) -> Result<OcspFinding, ValidationError> {
    let parts = CertIdParts::of(cert, issuer)?;
    let check = ResponseCheck {
        parts: &parts,
        issuer,
        time,
        strictness,
    };
    let mut notes = Vec::new();
    let mut weak_responder = None;
    let mut good = None;
    let mut about_others = 0usize;
    for (i, der) in responses.iter().take(MAX_RESPONSES_EXAMINED).enumerate() {
        match check.response(der, None) {
            Ok(finding @ OcspFinding::Revoked { .. }) => return Ok(finding),
            Ok(finding) => {
                good.get_or_insert(finding);
            }
            Err(Problem::NotAbout) => about_others += 1,
            Err(Problem::Unusable(why)) => notes.push(format!("OCSP response {}: {why}", i + 1)),
            Err(Problem::WeakResponder { why, weak }) => {
                notes.push(format!("OCSP response {}: {why}", i + 1));
                weak_responder.get_or_insert(weak);
            }
        }
    }
    if let Some(good) = good {
        return Ok(good);
    }
    if responses.len() > MAX_RESPONSES_EXAMINED {
        notes.push(format!(
            "only the first {MAX_RESPONSES_EXAMINED} of {} OCSP responses were looked at",
            responses.len()
        ));
    }
    if about_others > 0 {
        notes.push(format!(
            "{about_others} OCSP response(s) given are about other certificates"
        ));
    }
    if let Some(fetcher) = fetcher {
        let urls = ocsp_urls(cert);
        if urls.is_empty() {
            notes.push("the certificate names no http OCSP responder (AIA)".into());
        }
        for url in urls.iter().take(MAX_OCSP_URLS) {
            match ask_responder(&check, cert, issuer, fetcher, url) {
                Ok(finding) => return Ok(finding),
                Err(Problem::WeakResponder { why, weak }) => {
                    notes.push(format!("OCSP responder {url}: {why}"));
                    weak_responder.get_or_insert(weak);
                }
                Err(Problem::Unusable(why)) => notes.push(format!("OCSP responder {url}: {why}")),
                Err(Problem::NotAbout) => notes.push(format!(
                    "OCSP responder {url}: the answer is not about this certificate"
                )),
            }
        }
    }
    if notes.is_empty() {
        notes.push("no OCSP response".into());
    }
    Ok(OcspFinding::None {
        notes,
        weak_responder,
    })
}

/// Sends a request to `url` — with a fresh nonce unless the fetcher shares answers across
/// validations ([`Fetcher::ocsp_nonce`]) — and checks the answer.
fn ask_responder(
    check: &ResponseCheck<'_>,
    cert: &Certificate,
    issuer: &Certificate,
    fetcher: &dyn Fetcher,
    url: &str,
) -> Result<OcspFinding, Problem> {
    let nonce = if fetcher.ocsp_nonce() {
        Some(random_nonce().map_err(|e| e.to_string())?)
    } else {
        None
    };
    let request = build_request(cert, issuer, nonce.as_deref()).map_err(|e| e.to_string())?;
    let answer = fetcher
        .post_ocsp(url, &request)
        .map_err(|e| e.to_string())?;
    check.response(&Arc::new(answer), nonce.as_deref())
}

/// The earliest nextUpdate among the SingleResponses of a successful basic OCSPResponse:
/// until when a cache may keep it. `None` when the response says no such thing (not a
/// successful basic response, undecodable, over the limits, or a SingleResponse without
/// nextUpdate). Nothing is verified here: a kept response is checked at every use.
pub(crate) fn response_next_update(der: &[u8]) -> Option<OffsetDateTime> {
    if der.len() > MAX_ANSWER_BYTES {
        return None;
    }
    let response = OcspResponse::from_der(der).ok()?;
    if response.response_status != OcspResponseStatus::Successful {
        return None;
    }
    let bytes = response.response_bytes?;
    if bytes.response_type != oids::OCSP_BASIC {
        return None;
    }
    let raw = BasicOcspResponseRaw::from_der(bytes.response.as_bytes()).ok()?;
    let data = ResponseData::from_der(&raw.tbs_response_data.to_der().ok()?).ok()?;
    if data.responses.len() > MAX_SINGLE_RESPONSES {
        return None;
    }
    data.responses
        .iter()
        .map(|single| single.next_update.as_ref().map(instant))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
}

/// The http:// and https:// OCSP responder URLs in `cert`'s authorityInfoAccess
/// (RFC 5280 §4.2.2.1), in order, without repeats.
pub(crate) fn ocsp_urls(cert: &Certificate) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    let extensions = cert.inner().tbs_certificate.extensions.iter().flatten();
    for extension in extensions.filter(|e| e.extn_id == oids::EXT_AUTHORITY_INFO_ACCESS) {
        let Ok(aia) = AuthorityInfoAccessSyntax::from_der(extension.extn_value.as_bytes()) else {
            continue;
        };
        for access in aia.0.iter().filter(|a| a.access_method == oids::AD_OCSP) {
            if let GeneralName::UniformResourceIdentifier(uri) = &access.access_location {
                let uri = uri.as_str();
                let lower = uri.to_ascii_lowercase();
                if (lower.starts_with("http://") || lower.starts_with("https://"))
                    && !urls.iter().any(|u| u == uri)
                    && urls.len() < MAX_OCSP_URLS
                {
                    urls.push(uri.to_string());
                }
            }
        }
    }
    urls
}

/// Why a response did not count.
enum Problem {
    /// Well formed, but no SingleResponse names this certificate.
    NotAbout,
    /// Cannot be relied on, with the reason.
    Unusable(String),
    /// Signed by an authorised delegated responder whose RSA key is too short (`why` says
    /// so, with what else was wrong with other candidate signers).
    WeakResponder { why: String, weak: WeakResponder },
}

impl From<String> for Problem {
    fn from(why: String) -> Problem {
        Problem::Unusable(why)
    }
}

/// What a response is checked against: the certificate (as CertID parts), its issuer, the
/// validation time, the strictness a delegated responder's key is held to.
struct ResponseCheck<'a> {
    parts: &'a CertIdParts<'a>,
    issuer: &'a Certificate,
    time: OffsetDateTime,
    strictness: &'a Strictness,
}

impl ResponseCheck<'_> {
    /// Checks one DER OCSPResponse. `nonce` is the one sent when the response answers our
    /// request: a response carrying another nonce is refused (one without a nonce is a
    /// pre-signed response and is judged by its times like any other).
    fn response(&self, der: &Arc<Vec<u8>>, nonce: Option<&[u8]>) -> Result<OcspFinding, Problem> {
        if der.len() > MAX_ANSWER_BYTES {
            return Err(
                format!("{} bytes, more than the {MAX_ANSWER_BYTES} read", der.len()).into(),
            );
        }
        let response =
            OcspResponse::from_der(der).map_err(|e| format!("not a DER OCSPResponse: {e}"))?;
        if response.response_status != OcspResponseStatus::Successful {
            return Err(format!(
                "the responder answered {} (RFC 6960 §2.3)",
                status_name(response.response_status)
            )
            .into());
        }
        let bytes = response
            .response_bytes
            .ok_or_else(|| "a successful response without responseBytes".to_string())?;
        if bytes.response_type != oids::OCSP_BASIC {
            return Err(format!(
                "response type {} is not id-pkix-ocsp-basic",
                bytes.response_type
            )
            .into());
        }
        let raw = BasicOcspResponseRaw::from_der(bytes.response.as_bytes())
            .map_err(|e| format!("malformed BasicOCSPResponse: {e}"))?;
        let tbs_der = raw
            .tbs_response_data
            .to_der()
            .map_err(|e| format!("malformed ResponseData: {e}"))?;
        let data =
            ResponseData::from_der(&tbs_der).map_err(|e| format!("malformed ResponseData: {e}"))?;
        if data.responses.len() > MAX_SINGLE_RESPONSES {
            return Err(format!(
                "{} SingleResponses, more than the {MAX_SINGLE_RESPONSES} looked through",
                data.responses.len()
            )
            .into());
        }
        let single = data
            .responses
            .iter()
            .find(|s| self.parts.matches(&s.cert_id))
            .ok_or(Problem::NotAbout)?;
        refuse_unknown_critical(data.response_extensions.as_deref(), &[oids::OCSP_NONCE])?;
        refuse_unknown_critical(single.single_extensions.as_deref(), &[])?;
        if let Some(sent) = nonce {
            if let Some(got) = data.nonce() {
                if got.0.as_bytes() != sent {
                    return Err(
                        "the response's nonce is not the one sent (a replayed answer?)"
                            .to_string()
                            .into(),
                    );
                }
            }
        }
        let produced_at = instant(&data.produced_at);
        let signature = raw
            .signature
            .as_bytes()
            .ok_or_else(|| "the signature BIT STRING has unused bits".to_string())?;
        self.check_signer(&data.responder_id, &raw, &tbs_der, signature, produced_at)?;
        self.judge(single, der, produced_at)
    }

    /// Finds who signed: the issuer itself when the ResponderID names it, otherwise a
    /// certificate of `certs` named by the ResponderID, whose key verifies the signature, that
    /// the issuer signed, with id-kp-OCSPSigning, valid when it matters (§4.2.2.2), and with an
    /// RSA key (if RSA) as long as the strictness asks.
    fn check_signer(
        &self,
        responder: &ResponderId,
        raw: &BasicOcspResponseRaw<'_>,
        tbs_der: &[u8],
        signature: &[u8],
        produced_at: OffsetDateTime,
    ) -> Result<(), Problem> {
        let issuer = self.issuer.inner();
        if names_responder(issuer, responder) {
            return verify_with(issuer, &raw.signature_algorithm, tbs_der, signature).map_err(
                |e| {
                    Problem::Unusable(format!(
                        "the signature does not verify with the key of the issuer {}: {e}",
                        self.issuer.subject_text()
                    ))
                },
            );
        }
        let mut problems = Vec::new();
        let mut weak = None;
        let certs = raw.certs.as_deref().unwrap_or_default();
        for any in certs.iter().take(MAX_RESPONSE_CERTS) {
            let Ok((der, candidate)) = any.to_der().and_then(|der| {
                x509_cert::Certificate::from_der(&der).map(|candidate| (der, candidate))
            }) else {
                problems.push("a certificate in the response does not decode".to_string());
                continue;
            };
            if !names_responder(&candidate, responder) {
                continue;
            }
            let name = format_dn(&candidate.tbs_certificate.subject);
            if let Err(e) = verify_with(&candidate, &raw.signature_algorithm, tbs_der, signature) {
                problems.push(format!(
                    "the signature does not verify with {name}'s key: {e}"
                ));
                continue;
            }
            if let Err(why) = self.authorised(&candidate, produced_at) {
                problems.push(format!("responder {name}: {why}"));
                continue;
            }
            let bits = match Certificate::from_der(der) {
                Ok(parsed) => short_rsa_key(&parsed, self.strictness),
                Err(e) => {
                    problems.push(format!("responder {name}: {e}"));
                    continue;
                }
            };
            let Some(bits) = bits else {
                return Ok(());
            };
            let minimum = self.strictness.min_rsa_modulus_bits;
            problems.push(format!(
                "responder {name}: its RSA key has {bits} bits; at least {minimum} bits are required"
            ));
            weak.get_or_insert(WeakResponder {
                responder: name,
                bits,
                minimum,
            });
        }
        if problems.is_empty() {
            return Err(Problem::Unusable(format!(
                "signed by {}, which is neither the issuer {} nor a responder certificate in the response",
                describe_responder(responder),
                self.issuer.subject_text()
            )));
        }
        let why = problems.join("; ");
        Err(match weak {
            Some(weak) => Problem::WeakResponder { why, weak },
            None => Problem::Unusable(why),
        })
    }

    /// RFC 6960 §4.2.2.2: a delegated responder's certificate is issued (and signed) by the
    /// CA that issued the certificate in question and carries id-kp-OCSPSigning.
    fn authorised(
        &self,
        responder: &x509_cert::Certificate,
        produced_at: OffsetDateTime,
    ) -> Result<(), String> {
        let issuer = self.issuer.inner();
        if responder.tbs_certificate.issuer != issuer.tbs_certificate.subject {
            return Err(format!(
                "issued by {}, not by the issuer {}",
                format_dn(&responder.tbs_certificate.issuer),
                self.issuer.subject_text()
            ));
        }
        let tbs = responder
            .tbs_certificate
            .to_der()
            .map_err(|e| format!("certificate does not encode: {e}"))?;
        let signature = responder
            .signature
            .as_bytes()
            .ok_or_else(|| "certificate signature has unused bits".to_string())?;
        verify_with(issuer, &responder.signature_algorithm, &tbs, signature).map_err(|e| {
            format!(
                "its certificate is not signed by the issuer {}: {e}",
                self.issuer.subject_text()
            )
        })?;
        if !has_ocsp_signing(responder) {
            return Err("its certificate lacks the id-kp-OCSPSigning extended key usage".into());
        }
        let validity = &responder.tbs_certificate.validity;
        let (not_before, not_after) = (
            from_x509_time(&validity.not_before),
            from_x509_time(&validity.not_after),
        );
        let valid_at = |t: OffsetDateTime| not_before <= t && t <= not_after;
        if valid_at(self.time) || (produced_at > self.time && valid_at(produced_at)) {
            Ok(())
        } else {
            Err(format!(
                "its certificate (valid {} to {}) is not valid at {}",
                rfc3339(not_before),
                rfc3339(not_after),
                rfc3339(self.time)
            ))
        }
    }

    /// The finding of a signed, authorised SingleResponse, when it is fresh at the time.
    fn judge(
        &self,
        single: &SingleResponse,
        der: &Arc<Vec<u8>>,
        produced_at: OffsetDateTime,
    ) -> Result<OcspFinding, Problem> {
        let this_update = instant(&single.this_update);
        let next_update = single.next_update.as_ref().map(instant);
        let t = self.time;
        let fresh = this_update > t
            || (this_update - CLOCK_SKEW <= t
                && t <= next_update.unwrap_or(this_update + MAX_AGE_WITHOUT_NEXT_UPDATE)
                    + CLOCK_SKEW);
        if !fresh {
            let until = match next_update {
                Some(next) => format!("nextUpdate {}", rfc3339(next)),
                None => format!(
                    "no nextUpdate, so taken as current for {} minutes",
                    MAX_AGE_WITHOUT_NEXT_UPDATE.whole_minutes()
                ),
            };
            return Err(format!(
                "not current at {}: thisUpdate {}, {until}",
                rfc3339(t),
                rfc3339(this_update)
            )
            .into());
        }
        let evidence = RevocationEvidence::Ocsp {
            der: Arc::clone(der),
            produced_at,
            this_update,
            next_update,
        };
        match &single.cert_status {
            CertStatus::Good(_) => Ok(OcspFinding::Good {
                revoked_later: None,
                evidence,
            }),
            CertStatus::Revoked(info) => {
                let at = instant(&info.revocation_time);
                if at > t {
                    Ok(OcspFinding::Good {
                        revoked_later: Some(at),
                        evidence,
                    })
                } else {
                    Ok(OcspFinding::Revoked {
                        at,
                        reason: info.revocation_reason,
                    })
                }
            }
            CertStatus::Unknown(_) => Err(Problem::Unusable(
                "the responder does not know the certificate (status unknown)".into(),
            )),
        }
    }
}

/// Refuses a critical extension imza does not understand (RFC 5280 §4.2 rule, applied to
/// OCSP extensions, which RFC 6960 §4.4 defines the same way).
fn refuse_unknown_critical(
    extensions: Option<&[Extension]>,
    understood: &[der::asn1::ObjectIdentifier],
) -> Result<(), String> {
    match extensions
        .unwrap_or_default()
        .iter()
        .find(|e| e.critical && !understood.contains(&e.extn_id))
    {
        Some(e) => Err(format!("unknown critical extension {}", e.extn_id)),
        None => Ok(()),
    }
}

fn verify_with(
    signer: &x509_cert::Certificate,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let spki = signer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    imza_core::verify::verify_signature(&spki, algorithm, message, signature)
        .map_err(|e| e.to_string())
}

fn names_responder(cert: &x509_cert::Certificate, id: &ResponderId) -> bool {
    match id {
        ResponderId::ByName(name) => &cert.tbs_certificate.subject == name,
        // KeyHash: "SHA-1 hash of responder's public key (excluding the tag and length
        // fields)" (§4.2.1), i.e. of the BIT STRING value.
        ResponderId::ByKey(hash) => responder_key_hash(cert).as_slice() == hash.as_bytes(),
    }
}

fn describe_responder(id: &ResponderId) -> String {
    match id {
        ResponderId::ByName(name) => format!("responder {}", format_dn(name)),
        ResponderId::ByKey(hash) => format!(
            "the responder with key hash {}",
            hex::encode(hash.as_bytes())
        ),
    }
}

fn status_name(status: OcspResponseStatus) -> &'static str {
    match status {
        OcspResponseStatus::Successful => "successful",
        OcspResponseStatus::MalformedRequest => "malformedRequest",
        OcspResponseStatus::InternalError => "internalError",
        OcspResponseStatus::TryLater => "tryLater",
        OcspResponseStatus::SigRequired => "sigRequired",
        OcspResponseStatus::Unauthorized => "unauthorized",
    }
}

/// The instant an OCSP GeneralizedTime stands for.
fn instant(t: &OcspGeneralizedTime) -> OffsetDateTime {
    let secs = i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use der::asn1::{BitString, OctetString};
    use x509_cert::ext::pkix::CrlReason;
    use x509_ocsp::{BasicOcspResponse, OcspRequest, ResponseBytes, RevokedInfo, Version};

    use imza_core::clock::generalized_time;
    use imza_core::ext;
    use imza_core::key::software::SoftwareKey;
    use imza_core::{KeyAlgorithm, SigningKey};
    use imza_testpki::{leaf_extensions, ocsp_responder_extensions, TestCa};

    use super::*;
    use crate::ocsp_request::CertIdHash;
    use crate::NetworkFailure;

    const OCSP_URL: &str = "http://ocsp.test.invalid/ocsp";

    struct Pki {
        ca: TestCa,
        issuer: Certificate,
        leaf: Certificate,
    }

    fn pki() -> Pki {
        let ca = TestCa::root("CN=OCSP Client Test CA,C=AZ", KeyAlgorithm::EcP256);
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let mut extensions = leaf_extensions();
        extensions.push(ext::authority_info_access(Some(OCSP_URL), None).unwrap());
        let leaf = ca.issue("CN=Citizen", &[0x0a, 0x0b], &key, extensions);
        Pki {
            issuer: Certificate::from_der(ca.der.clone()).unwrap(),
            leaf: Certificate::from_der(leaf).unwrap(),
            ca,
        }
    }

    fn now() -> OffsetDateTime {
        imza_core::clock::whole_seconds(OffsetDateTime::now_utc())
    }

    /// What a test response says and who signs it.
    struct Spec<'a> {
        status: CertStatus,
        this_update: OffsetDateTime,
        next_update: Option<OffsetDateTime>,
        signer: &'a dyn SigningKey,
        responder_id: ResponderId,
        certs: Vec<Vec<u8>>,
        hash: CertIdHash,
        nonce: Option<Vec<u8>>,
    }

    impl<'a> Spec<'a> {
        /// "good" now, valid a day, signed by the CA itself (ResponderID byName).
        fn by_issuer(pki: &'a Pki) -> Spec<'a> {
            Spec {
                status: CertStatus::good(),
                this_update: now() - Duration::minutes(1),
                next_update: Some(now() + Duration::days(1)),
                signer: pki.ca.key.as_ref(),
                responder_id: ResponderId::ByName(pki.issuer.subject().clone()),
                certs: Vec::new(),
                hash: CertIdHash::Sha1,
                nonce: None,
            }
        }
    }

    fn gt(t: OffsetDateTime) -> OcspGeneralizedTime {
        OcspGeneralizedTime(generalized_time(t).unwrap())
    }

    fn response(pki: &Pki, spec: &Spec<'_>) -> Arc<Vec<u8>> {
        let cert_id = CertIdParts::of(&pki.leaf, &pki.issuer)
            .unwrap()
            .cert_id(spec.hash)
            .unwrap();
        let nonce_ext = spec.nonce.as_ref().map(|n| {
            vec![Extension {
                extn_id: oids::OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(
                    OctetString::new(n.clone()).unwrap().to_der().unwrap(),
                )
                .unwrap(),
            }]
        });
        let data = ResponseData {
            version: Version::V1,
            responder_id: spec.responder_id.clone(),
            produced_at: gt(now()),
            responses: vec![SingleResponse {
                cert_id,
                cert_status: spec.status,
                this_update: gt(spec.this_update),
                next_update: spec.next_update.map(gt),
                single_extensions: None,
            }],
            response_extensions: nonce_ext,
        };
        let signature = spec.signer.sign(&data.to_der().unwrap()).unwrap();
        let certs: Vec<x509_cert::Certificate> = spec
            .certs
            .iter()
            .map(|d| x509_cert::Certificate::from_der(d).unwrap())
            .collect();
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: spec.signer.signature_algorithm(),
            signature: BitString::from_bytes(&signature).unwrap(),
            certs: (!certs.is_empty()).then_some(certs),
        };
        let response = OcspResponse {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: oids::OCSP_BASIC,
                response: OctetString::new(basic.to_der().unwrap()).unwrap(),
            }),
        };
        Arc::new(response.to_der().unwrap())
    }

    fn status(pki: &Pki, responses: &[Arc<Vec<u8>>]) -> OcspFinding {
        ocsp_status(
            &pki.leaf,
            &pki.issuer,
            responses,
            None,
            now(),
            &Strictness::default(),
        )
        .unwrap()
    }

    fn notes(finding: OcspFinding) -> String {
        match finding {
            OcspFinding::None { notes, .. } => notes.join(" | "),
            other => panic!("expected no usable response, got {other:?}"),
        }
    }

    #[test]
    fn a_good_response_signed_by_the_issuer_is_good_with_the_whole_response_as_evidence() {
        let pki = pki();
        let der = response(&pki, &Spec::by_issuer(&pki));
        match status(&pki, &[Arc::clone(&der)]) {
            OcspFinding::Good {
                revoked_later: None,
                evidence,
            } => assert_eq!(evidence.der(), Some(der.as_slice())),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_sha256_cert_id_matches_too() {
        let pki = pki();
        let spec = Spec {
            hash: CertIdHash::Sha256,
            ..Spec::by_issuer(&pki)
        };
        assert!(matches!(
            status(&pki, &[response(&pki, &spec)]),
            OcspFinding::Good { .. }
        ));
    }

    #[test]
    fn a_delegated_responder_issued_by_the_ca_with_ocsp_signing_is_accepted_by_key_hash() {
        let pki = pki();
        let responder = pki.ca.issue_service(
            "CN=OCSP Responder",
            &[0x77],
            KeyAlgorithm::EcP256,
            ocsp_responder_extensions(),
        );
        let x509 = x509_cert::Certificate::from_der(&responder.der).unwrap();
        let key_hash = openssl::sha::sha1(
            x509.tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        );
        let spec = Spec {
            signer: responder.key.as_ref(),
            responder_id: ResponderId::ByKey(OctetString::new(key_hash.to_vec()).unwrap()),
            certs: vec![responder.der.clone()],
            ..Spec::by_issuer(&pki)
        };
        assert!(matches!(
            status(&pki, &[response(&pki, &spec)]),
            OcspFinding::Good { .. }
        ));
    }

    #[test]
    fn a_responder_without_ocsp_signing_or_from_another_ca_is_not_authorised() {
        let pki = pki();
        let plain = pki.ca.issue_service(
            "CN=Not A Responder",
            &[0x78],
            KeyAlgorithm::EcP256,
            leaf_extensions(),
        );
        let spec = Spec {
            signer: plain.key.as_ref(),
            responder_id: ResponderId::ByName(
                imza_core::name::parse_dn("CN=Not A Responder").unwrap(),
            ),
            certs: vec![plain.der.clone()],
            ..Spec::by_issuer(&pki)
        };
        let why = notes(status(&pki, &[response(&pki, &spec)]));
        assert!(why.contains("id-kp-OCSPSigning"), "{why}");

        // Same issuer name, another key: the responder certificate is not the issuer's.
        let twin = TestCa::root("CN=OCSP Client Test CA,C=AZ", KeyAlgorithm::EcP256);
        let foreign = twin.issue_service(
            "CN=OCSP Responder",
            &[0x79],
            KeyAlgorithm::EcP256,
            ocsp_responder_extensions(),
        );
        let spec = Spec {
            signer: foreign.key.as_ref(),
            responder_id: ResponderId::ByName(
                imza_core::name::parse_dn("CN=OCSP Responder").unwrap(),
            ),
            certs: vec![foreign.der.clone()],
            ..Spec::by_issuer(&pki)
        };
        let why = notes(status(&pki, &[response(&pki, &spec)]));
        assert!(why.contains("not signed by the issuer"), "{why}");

        // Signed by some key, naming a responder the response does not carry.
        let spec = Spec {
            signer: foreign.key.as_ref(),
            responder_id: ResponderId::ByName(imza_core::name::parse_dn("CN=Nobody").unwrap()),
            ..Spec::by_issuer(&pki)
        };
        let why = notes(status(&pki, &[response(&pki, &spec)]));
        assert!(why.contains("neither the issuer"), "{why}");
    }

    #[test]
    fn a_response_signed_with_another_key_or_altered_does_not_count() {
        let pki = pki();
        let stranger = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let spec = Spec {
            signer: &stranger,
            ..Spec::by_issuer(&pki)
        };
        let why = notes(status(&pki, &[response(&pki, &spec)]));
        assert!(why.contains("does not verify"), "{why}");

        // Flip a byte of the signature (the last bytes of the response are the signature).
        let mut der = response(&pki, &Spec::by_issuer(&pki)).as_ref().clone();
        let last = der.len() - 3;
        der[last] ^= 0x01;
        let why = notes(status(&pki, &[Arc::new(der)]));
        assert!(
            why.contains("does not verify") || why.contains("not a DER"),
            "{why}"
        );
    }

    #[test]
    fn revoked_before_the_time_is_revoked_and_after_it_is_good_revoked_later() {
        let pki = pki();
        let before = now() - Duration::hours(2);
        let spec = Spec {
            status: CertStatus::revoked(RevokedInfo {
                revocation_time: gt(before),
                revocation_reason: Some(CrlReason::KeyCompromise),
            }),
            ..Spec::by_issuer(&pki)
        };
        match status(&pki, &[response(&pki, &spec)]) {
            OcspFinding::Revoked { at, reason, .. } => {
                assert_eq!(at, before);
                assert_eq!(reason, Some(CrlReason::KeyCompromise));
            }
            other => panic!("{other:?}"),
        }
        // Validation at a time before the revocation: good, revoked later.
        let earlier = before - Duration::hours(1);
        match ocsp_status(
            &pki.leaf,
            &pki.issuer,
            &[response(&pki, &spec)],
            None,
            earlier,
            &Strictness::default(),
        )
        .unwrap()
        {
            OcspFinding::Good {
                revoked_later: Some(at),
                ..
            } => assert_eq!(at, before),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn revoked_wins_over_good_among_the_responses_given() {
        let pki = pki();
        let good = response(&pki, &Spec::by_issuer(&pki));
        let revoked = response(
            &pki,
            &Spec {
                status: CertStatus::revoked(RevokedInfo {
                    revocation_time: gt(now() - Duration::hours(1)),
                    revocation_reason: None,
                }),
                ..Spec::by_issuer(&pki)
            },
        );
        assert!(matches!(
            status(&pki, &[good, revoked]),
            OcspFinding::Revoked { reason: None, .. }
        ));
    }

    #[test]
    fn unknown_status_is_no_finding_with_a_note() {
        let pki = pki();
        let spec = Spec {
            status: CertStatus::unknown(),
            ..Spec::by_issuer(&pki)
        };
        let why = notes(status(&pki, &[response(&pki, &spec)]));
        assert!(why.contains("does not know"), "{why}");
    }

    #[test]
    fn freshness_follows_this_and_next_update() {
        let pki = pki();
        // Expired a day ago.
        let stale = Spec {
            this_update: now() - Duration::days(3),
            next_update: Some(now() - Duration::days(1)),
            ..Spec::by_issuer(&pki)
        };
        let why = notes(status(&pki, &[response(&pki, &stale)]));
        assert!(why.contains("not current"), "{why}");
        // Expired within the clock skew: still usable.
        let skewed = Spec {
            next_update: Some(now() - Duration::minutes(2)),
            this_update: now() - Duration::hours(1),
            ..Spec::by_issuer(&pki)
        };
        assert!(matches!(
            status(&pki, &[response(&pki, &skewed)]),
            OcspFinding::Good { .. }
        ));
        // Made after the validation time: speaks about it.
        let past = now() - Duration::days(30);
        let newer = response(&pki, &Spec::by_issuer(&pki));
        assert!(matches!(
            ocsp_status(
                &pki.leaf,
                &pki.issuer,
                &[newer],
                None,
                past,
                &Strictness::default()
            )
            .unwrap(),
            OcspFinding::Good { .. }
        ));
        // No nextUpdate: current for an hour after thisUpdate only.
        let open = Spec {
            next_update: None,
            this_update: now() - Duration::hours(3),
            ..Spec::by_issuer(&pki)
        };
        let why = notes(status(&pki, &[response(&pki, &open)]));
        assert!(why.contains("no nextUpdate"), "{why}");
        let recent = Spec {
            next_update: None,
            ..Spec::by_issuer(&pki)
        };
        assert!(matches!(
            status(&pki, &[response(&pki, &recent)]),
            OcspFinding::Good { .. }
        ));
    }

    #[test]
    fn responses_about_other_certificates_and_garbage_are_noted() {
        let other = pki();
        let pki = pki();
        let about_other = response(&other, &Spec::by_issuer(&other));
        let why = notes(status(
            &pki,
            &[about_other, Arc::new(vec![0x30, 0x03, 0x0a, 0x01])],
        ));
        assert!(why.contains("about other certificates"), "{why}");
        assert!(why.contains("OCSP response 2"), "{why}");
        let try_later = OcspResponse {
            response_status: OcspResponseStatus::TryLater,
            response_bytes: None,
        };
        let why = notes(status(&pki, &[Arc::new(try_later.to_der().unwrap())]));
        assert!(why.contains("tryLater"), "{why}");
    }

    type Answer = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, ValidationError> + Send + Sync>;

    #[test]
    fn truncated_or_altered_responses_never_count() {
        let pki = pki();
        let der = response(&pki, &Spec::by_issuer(&pki));
        for len in 0..der.len() {
            let cut = Arc::new(der[..len].to_vec());
            assert!(
                matches!(status(&pki, &[cut]), OcspFinding::None { .. }),
                "a response cut at {len} bytes counted"
            );
        }
        for i in 0..der.len() {
            for bit in [0x01, 0x80] {
                let mut altered = der.as_ref().clone();
                altered[i] ^= bit;
                assert!(
                    matches!(status(&pki, &[Arc::new(altered)]), OcspFinding::None { .. }),
                    "a response with byte {i} xor {bit:#x} counted"
                );
            }
        }
    }

    /// A responder in a box: answers every request with what `answer` makes of it.
    struct FakeResponder {
        answer: Answer,
        asked: Mutex<Vec<String>>,
    }

    impl Fetcher for FakeResponder {
        fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
            Err(ValidationError::network(url, NetworkFailure::status(404)))
        }

        fn post_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, ValidationError> {
            self.asked.lock().unwrap().push(url.to_string());
            (self.answer)(request)
        }
    }

    fn request_nonce(request: &[u8]) -> Vec<u8> {
        OcspRequest::from_der(request)
            .unwrap()
            .nonce()
            .unwrap()
            .0
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn the_aia_responder_is_asked_when_no_given_response_is_usable_and_its_nonce_checked() {
        let pki = Arc::new(pki());
        assert_eq!(ocsp_urls(&pki.leaf), vec![OCSP_URL.to_string()]);
        let echo = Arc::clone(&pki);
        let honest = FakeResponder {
            answer: Box::new(move |request| {
                let spec = Spec {
                    nonce: Some(request_nonce(request)),
                    ..Spec::by_issuer(&echo)
                };
                Ok(response(&echo, &spec).as_ref().clone())
            }),
            asked: Mutex::new(Vec::new()),
        };
        let stale = response(
            &pki,
            &Spec {
                this_update: now() - Duration::days(3),
                next_update: Some(now() - Duration::days(2)),
                ..Spec::by_issuer(&pki)
            },
        );
        let found = ocsp_status(
            &pki.leaf,
            &pki.issuer,
            &[stale],
            Some(&honest),
            now(),
            &Strictness::default(),
        )
        .unwrap();
        assert!(matches!(found, OcspFinding::Good { .. }), "{found:?}");
        assert_eq!(*honest.asked.lock().unwrap(), vec![OCSP_URL.to_string()]);

        // A usable response given: the responder is not asked.
        let given = response(&pki, &Spec::by_issuer(&pki));
        ocsp_status(
            &pki.leaf,
            &pki.issuer,
            &[given],
            Some(&honest),
            now(),
            &Strictness::default(),
        )
        .unwrap();
        assert_eq!(honest.asked.lock().unwrap().len(), 1);

        // A replayed answer carrying another nonce is refused.
        let replay = Arc::clone(&pki);
        let replaying = FakeResponder {
            answer: Box::new(move |_| {
                let spec = Spec {
                    nonce: Some(vec![1; 32]),
                    ..Spec::by_issuer(&replay)
                };
                Ok(response(&replay, &spec).as_ref().clone())
            }),
            asked: Mutex::new(Vec::new()),
        };
        let why = notes(
            ocsp_status(
                &pki.leaf,
                &pki.issuer,
                &[],
                Some(&replaying),
                now(),
                &Strictness::default(),
            )
            .unwrap(),
        );
        assert!(why.contains("nonce"), "{why}");

        // A responder that cannot be reached is a note naming the URL.
        let down = FakeResponder {
            answer: Box::new(|_| {
                Err(ValidationError::network(
                    OCSP_URL,
                    NetworkFailure::unreachable(std::io::ErrorKind::ConnectionRefused.into()),
                ))
            }),
            asked: Mutex::new(Vec::new()),
        };
        let why = notes(
            ocsp_status(
                &pki.leaf,
                &pki.issuer,
                &[],
                Some(&down),
                now(),
                &Strictness::default(),
            )
            .unwrap(),
        );
        assert!(
            why.contains(OCSP_URL) && why.contains("connection refused"),
            "{why}"
        );
    }
}
