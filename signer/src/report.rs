//! The validation report: per signature an indication and sub-indication as ETSI EN 319 102-1
//! §5.1.3 names them, with what the verdict rests on (the signer, times, timestamps, the
//! validated chain and its revocation), shaped after ETSI TS 119 102-2's validation report.
//!
//! The JSON form (`serde_json::to_string(&report)`) is a contract for `imza verify --json` and
//! `POST /verify`; fields are only ever added:
//!
//! ```json
//! {
//!   "valid": true,                          // ≥ 1 signature and every one TOTAL_PASSED
//!   "validation_time": "2026-11-21T10:00:00Z",
//!   "signatures": [{
//!     "index": 0,                           // position among the SignerInfos
//!     "indication": "TOTAL_PASSED",         // | "INDETERMINATE" | "TOTAL_FAILED"
//!     "sub_indication": null,               // e.g. "HASH_FAILURE", "REVOKED_NO_POE"
//!     "level": "B-T",                       // B-B | B-T | B-LT | B-LTA | null (not CMS)
//!     "detached": true,
//!     "signer": { "subject": "CN=…", "common_name": "…", "personal_code": "PNOAZ-…",
//!                 "serial": "4D2A…", "issuer": "CN=…" },   // null when not found
//!     "digest_algorithm": "SHA-256",
//!     "signature_algorithm": "1.2.840.10045.4.3.2",
//!     "claimed_signing_time": "…",          // the signing-time attribute, null if absent
//!     "timestamps": [{ "kind": "signature", // | "archive"
//!                      "time": "…", "tsa": "CN=…", "serial": "0x…", "valid": true,
//!                      "indication": "TOTAL_PASSED", "sub_indication": null, "error": null }],
//!     "poe_time": "…",                      // earliest valid signature timestamp, else validation_time
//!     "chain": [{ "subject": "…", "serial": "…", "not_before": "…", "not_after": "…" }],
//!     "revocation": [{ "subject": "…", "serial": "…", "state": "good", // | "not_checked"
//!                      "source": "CRL",     // | "OCSP" | null
//!                      "this_update": "…", "next_update": "…", "produced_at": null,
//!                      "revoked_later": null, "note": null }],
//!     "errors": ["…"], "warnings": ["…"]
//!   }]
//! }
//! ```
//!
//! Times are RFC 3339 in UTC, whole seconds. Serial numbers are upper-case hex of the encoded
//! INTEGER content, as `imza ca` prints them.

use serde::Serialize;
use time::OffsetDateTime;

/// The main status of a signature (EN 319 102-1 §5.1.3, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    /// The signature passed every check.
    TotalPassed,
    /// Something in the signature is proven wrong (a hash, the cryptography, a revocation
    /// before the signature existed).
    TotalFailed,
    /// The available information is not enough to say either.
    Indeterminate,
}

impl Indication {
    pub fn name(self) -> &'static str {
        match self {
            Indication::TotalPassed => "TOTAL_PASSED",
            Indication::TotalFailed => "TOTAL_FAILED",
            Indication::Indeterminate => "INDETERMINATE",
        }
    }
}

/// The sub-indications of EN 319 102-1 §5.1.3 (Tables 5 and 6), spelt as the standard does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum SubIndication {
    // With TOTAL_FAILED.
    /// The signature is not conformant to a supported format (not CMS, undecodable).
    FORMAT_FAILURE,
    /// A signed data object does not match its hash in the signature (message-digest).
    HASH_FAILURE,
    /// The signature value does not verify with the signer's public key.
    SIG_CRYPTO_FAILURE,
    /// The signing certificate was revoked before the signature's proof of existence.
    REVOKED,
    /// The signature was made (proven by a time-stamp) before its certificate was valid.
    NOT_YET_VALID,
    // With INDETERMINATE.
    /// The signed data is not available (a detached signature verified without its content).
    SIGNED_DATA_NOT_FOUND,
    /// The signing certificate is not in the signature nor among those supplied.
    NO_SIGNING_CERTIFICATE_FOUND,
    /// No path from the signing certificate to a trust anchor.
    NO_CERTIFICATE_CHAIN_FOUND,
    /// The signing certificate is revoked and there is no proof the signature existed before.
    REVOKED_NO_POE,
    /// A CA certificate on the path is revoked and there is no proof of existence before.
    REVOKED_CA_NO_POE,
    /// A certificate is expired or not yet valid and there is no proof of existence within
    /// its validity.
    OUT_OF_BOUNDS_NO_POE,
    /// Revocation information could not be found now; it may be later.
    TRY_LATER,
    /// The chain does not meet the constraints (basic constraints, key usage, names, policies).
    CHAIN_CONSTRAINTS_FAILURE,
    /// The chain failed for another reason (a bad certificate signature, malformed data, the
    /// path-building budget).
    CERTIFICATE_CHAIN_GENERAL_FAILURE,
    /// An algorithm is not accepted, and no proof of existence from when it was.
    CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
    /// The signature does not meet the constraints on signed attributes (a signing-certificate
    /// attribute that names another certificate, a wrong content-type).
    SIG_CONSTRAINTS_FAILURE,
}

impl SubIndication {
    /// The standard's name, as serialized.
    pub fn name(self) -> &'static str {
        use SubIndication::*;
        match self {
            FORMAT_FAILURE => "FORMAT_FAILURE",
            HASH_FAILURE => "HASH_FAILURE",
            SIG_CRYPTO_FAILURE => "SIG_CRYPTO_FAILURE",
            REVOKED => "REVOKED",
            NOT_YET_VALID => "NOT_YET_VALID",
            SIGNED_DATA_NOT_FOUND => "SIGNED_DATA_NOT_FOUND",
            NO_SIGNING_CERTIFICATE_FOUND => "NO_SIGNING_CERTIFICATE_FOUND",
            NO_CERTIFICATE_CHAIN_FOUND => "NO_CERTIFICATE_CHAIN_FOUND",
            REVOKED_NO_POE => "REVOKED_NO_POE",
            REVOKED_CA_NO_POE => "REVOKED_CA_NO_POE",
            OUT_OF_BOUNDS_NO_POE => "OUT_OF_BOUNDS_NO_POE",
            TRY_LATER => "TRY_LATER",
            CHAIN_CONSTRAINTS_FAILURE => "CHAIN_CONSTRAINTS_FAILURE",
            CERTIFICATE_CHAIN_GENERAL_FAILURE => "CERTIFICATE_CHAIN_GENERAL_FAILURE",
            CRYPTO_CONSTRAINTS_FAILURE_NO_POE => "CRYPTO_CONSTRAINTS_FAILURE_NO_POE",
            SIG_CONSTRAINTS_FAILURE => "SIG_CONSTRAINTS_FAILURE",
        }
    }

    /// The main indication this sub-indication goes with (EN 319 102-1 Tables 5 and 6).
    pub fn indication(self) -> Indication {
        use SubIndication::*;
        match self {
            FORMAT_FAILURE | HASH_FAILURE | SIG_CRYPTO_FAILURE | REVOKED | NOT_YET_VALID => {
                Indication::TotalFailed
            }
            _ => Indication::Indeterminate,
        }
    }
}

/// Everything verified in one document.
#[derive(Clone, Debug, Serialize)]
pub struct ValidationReport {
    /// True only when there is at least one signature and every one is TOTAL_PASSED.
    pub valid: bool,
    /// The "current time" of the validation (passed in, never read from the wall clock inside).
    #[serde(with = "rfc3339")]
    pub validation_time: OffsetDateTime,
    pub signatures: Vec<SignatureReport>,
}

impl ValidationReport {
    /// A report over `signatures`, with `valid` computed from them.
    pub fn new(validation_time: OffsetDateTime, signatures: Vec<SignatureReport>) -> Self {
        let valid = !signatures.is_empty()
            && signatures
                .iter()
                .all(|s| s.indication == Indication::TotalPassed);
        ValidationReport {
            valid,
            validation_time,
            signatures,
        }
    }
}

/// The verdict on one SignerInfo and what it rests on.
#[derive(Clone, Debug, Serialize)]
pub struct SignatureReport {
    /// Position among the SignedData's SignerInfos (0 for a document that is not CMS).
    pub index: usize,
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    /// The CAdES baseline level the signature carries the structures of; `None` when the
    /// input is not a readable CMS signature.
    pub level: Option<&'static str>,
    /// True when the SignedData carries no content (eContent absent).
    pub detached: bool,
    pub signer: Option<SignerReport>,
    pub digest_algorithm: Option<String>,
    pub signature_algorithm: Option<String>,
    #[serde(with = "rfc3339_option")]
    pub claimed_signing_time: Option<OffsetDateTime>,
    pub timestamps: Vec<TimestampReport>,
    /// The proof-of-existence time the certificate path was validated at.
    #[serde(with = "rfc3339_option")]
    pub poe_time: Option<OffsetDateTime>,
    /// The validated path, signer first, trust anchor last; empty when none was validated.
    pub chain: Vec<ChainCertificate>,
    /// One entry per certificate of `chain` but the anchor.
    pub revocation: Vec<RevocationReport>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// For a signature in a PDF: its field, the revision it signs and what changed after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdf: Option<PdfSignatureReport>,
}

/// Where a PDF signature (or document time-stamp) sits and what the document's later
/// revisions changed (ETSI EN 319 142-1, ISO 32000-1 §12.8).
#[derive(Clone, Debug, Serialize)]
pub struct PdfSignatureReport {
    /// The signature field's fully qualified name.
    pub field: String,
    /// `signature` or `document_timestamp`.
    pub kind: &'static str,
    pub sub_filter: Option<String>,
    /// The revision the signature covers (1 is the original document).
    pub revision: usize,
    /// Whether the signature covers the whole file (no revision after it).
    pub covers_whole_document: bool,
    /// The DocMDP permission (1, 2, 3) when this signature certifies the document.
    pub certification: Option<u8>,
    /// The most the later revisions changed: `none`, `lta_updates` (DSS, document
    /// time-stamps), `form_filling` (also new signatures), `annotations`, `other`.
    pub modification: &'static str,
    pub later_revisions: Vec<RevisionChange>,
    /// What the PDF checks found wrong, as a code: `byte_range_malformed`,
    /// `contents_malformed`, `contents_not_in_gap`, `not_at_revision_end`,
    /// `signature_dictionary_replaced`, `unsupported_sub_filter`, `changed_after_signing`,
    /// `changes_beyond_permissions`; `null` when none.
    pub finding: Option<&'static str>,
}

/// What one revision after a signature changed.
#[derive(Clone, Debug, Serialize)]
pub struct RevisionChange {
    /// The revision (1 is the original document).
    pub revision: usize,
    /// `lta_updates`, `form_filling`, `annotations` or `other`.
    pub kind: &'static str,
    /// Whether the signature's permissions allow it.
    pub allowed: bool,
    /// What changed, in words.
    pub changes: Vec<String>,
}

impl SignatureReport {
    /// An empty report for SignerInfo `index`, passing until something says otherwise.
    pub fn new(index: usize) -> SignatureReport {
        SignatureReport {
            index,
            indication: Indication::TotalPassed,
            sub_indication: None,
            level: None,
            detached: false,
            signer: None,
            digest_algorithm: None,
            signature_algorithm: None,
            claimed_signing_time: None,
            timestamps: Vec::new(),
            poe_time: None,
            chain: Vec::new(),
            revocation: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            pdf: None,
        }
    }

    /// Records a failure: the first one decides the indication, each adds its words.
    pub fn fail(&mut self, sub: SubIndication, error: impl Into<String>) {
        if self.sub_indication.is_none() {
            self.indication = sub.indication();
            self.sub_indication = Some(sub);
        }
        self.errors.push(error.into());
    }

    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}

/// Who signed, from the signing certificate.
#[derive(Clone, Debug, Serialize)]
pub struct SignerReport {
    /// The subject, RFC 4514.
    pub subject: String,
    pub common_name: Option<String>,
    /// The subject's serialNumber attribute (2.5.4.5): the national personal code.
    pub personal_code: Option<String>,
    /// The certificate's serial number, hex.
    pub serial: String,
    pub issuer: String,
}

/// A time-stamp found in the signature, and whether it was accepted.
#[derive(Clone, Debug, Serialize)]
pub struct TimestampReport {
    /// `signature` (id-aa-signatureTimeStampToken) or `archive` (archive-time-stamp-v3).
    pub kind: &'static str,
    #[serde(with = "rfc3339_option")]
    pub time: Option<OffsetDateTime>,
    /// The TSA: the token's tsa name, else its signer's subject.
    pub tsa: Option<String>,
    /// The token's serial number.
    pub serial: Option<String>,
    pub valid: bool,
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    pub error: Option<String>,
}

/// One certificate of the validated path.
#[derive(Clone, Debug, Serialize)]
pub struct ChainCertificate {
    pub subject: String,
    pub serial: String,
    #[serde(with = "rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "rfc3339")]
    pub not_after: OffsetDateTime,
}

/// The revocation finding for one certificate of the path.
#[derive(Clone, Debug, Serialize)]
pub struct RevocationReport {
    pub subject: String,
    pub serial: String,
    /// `good` (not revoked at the proof-of-existence time) or `not_checked`.
    pub state: &'static str,
    /// `CRL`, `OCSP`, or `LOCAL`: the issuer's own records, read by the validating server
    /// (`note` names them); `None` when not checked.
    pub source: Option<&'static str>,
    #[serde(with = "rfc3339_option")]
    pub this_update: Option<OffsetDateTime>,
    #[serde(with = "rfc3339_option")]
    pub next_update: Option<OffsetDateTime>,
    /// OCSP only.
    #[serde(with = "rfc3339_option")]
    pub produced_at: Option<OffsetDateTime>,
    /// When the certificate was revoked after the proof-of-existence time (the signature
    /// stays valid: it existed before).
    #[serde(with = "rfc3339_option")]
    pub revoked_later: Option<OffsetDateTime>,
    /// Why it was not checked; for a `LOCAL` finding, whose records it comes from.
    pub note: Option<String>,
}

/// RFC 3339 UTC, whole seconds.
pub(crate) fn time_text(t: OffsetDateTime) -> String {
    imza_core::clock::rfc3339(t)
}

mod rfc3339 {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::time_text(*t))
    }
}

mod rfc3339_option {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::time_text(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_decides_and_every_failure_is_listed() {
        let mut s = SignatureReport::new(0);
        s.fail(SubIndication::HASH_FAILURE, "digest differs");
        s.fail(SubIndication::TRY_LATER, "no CRL");
        assert_eq!(s.indication, Indication::TotalFailed);
        assert_eq!(s.sub_indication, Some(SubIndication::HASH_FAILURE));
        assert_eq!(s.errors.len(), 2);
    }

    #[test]
    fn report_is_valid_only_with_signatures_all_passed() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert!(!ValidationReport::new(now, vec![]).valid);
        assert!(ValidationReport::new(now, vec![SignatureReport::new(0)]).valid);
        let mut bad = SignatureReport::new(1);
        bad.fail(SubIndication::NO_CERTIFICATE_CHAIN_FOUND, "no path");
        assert!(!ValidationReport::new(now, vec![SignatureReport::new(0), bad]).valid);
    }

    #[test]
    fn json_uses_the_standard_names() {
        let mut s = SignatureReport::new(0);
        s.fail(SubIndication::REVOKED_NO_POE, "revoked");
        let report = ValidationReport::new(OffsetDateTime::UNIX_EPOCH, vec![s]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["valid"], false);
        assert_eq!(json["validation_time"], "1970-01-01T00:00:00Z");
        assert_eq!(json["signatures"][0]["indication"], "INDETERMINATE");
        assert_eq!(json["signatures"][0]["sub_indication"], "REVOKED_NO_POE");
        assert_eq!(json["signatures"][0]["poe_time"], serde_json::Value::Null);
        for sub in [SubIndication::HASH_FAILURE, SubIndication::TRY_LATER] {
            assert_eq!(serde_json::to_value(sub).unwrap(), sub.name());
        }
    }
}
