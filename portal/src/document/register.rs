//! The register of documents the portal issues (signed e-certificates, "e-arayış": residence,
//! employment, personal data): references, registration, withdrawal and the log of checks.
//!
//! A document's reference is what the paper shows (`7KQ2-M9XD-4PWA`, in its QR code too) and
//! what anyone types to check it: 60 bits from the CSPRNG in 12 Crockford base32 characters
//! (no I, L, O, U: nothing to misread), unguessable, so that the register cannot be walked.
//! It is made here, never in SQL; the store keeps the 12 characters without dashes and
//! refuses a duplicate, and [`register`] draws again on the rare collision.
//!
//! The integrator's "request a document" flow renders and seals the PDF and then calls
//! [`register`] with the bytes; the verification page calls [`record_check`] for each check.

use std::fmt;

use openssl::sha::sha256;
use time::OffsetDateTime;

use crate::store::{
    CheckChannel, DocumentCheck, DocumentKind, DocumentRecord, DocumentStatus, PortalStore,
    StoreError,
};

/// Characters of a reference.
pub const REFERENCE_CHARS: usize = 12;
/// Largest PDF registered (the store keeps it for download from any node).
pub const MAX_PDF_BYTES: usize = 10 * 1024 * 1024;
/// Longest withdrawal reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest organisation name recorded with a check, in characters.
pub const MAX_ORGANISATION_CHARS: usize = 200;
/// Draws of a fresh reference before giving up (a collision of 60 random bits is already
/// unheard of; several in a row means something else is wrong).
const REFERENCE_DRAWS: usize = 4;

/// A document's reference: 12 Crockford base32 characters, shown as `XXXX-XXXX-XXXX`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DocumentReference(String);

/// Why a reference typed or pasted is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a document reference (12 letters and digits, XXXX-XXXX-XXXX)")]
pub struct NotAReference(pub String);

impl DocumentReference {
    /// A fresh reference from the CSPRNG.
    pub fn generate() -> Result<DocumentReference, StoreError> {
        let mut bytes = [0u8; 8];
        openssl::rand::rand_bytes(&mut bytes)
            .map_err(|e| StoreError::Backend(format!("no random bytes: {e}")))?;
        let mut bits = u64::from_be_bytes(bytes);
        let mut text = String::with_capacity(REFERENCE_CHARS);
        for _ in 0..REFERENCE_CHARS {
            text.push(char::from(
                crate::access_code::ALPHABET[(bits & 31) as usize],
            ));
            bits >>= 5;
        }
        Ok(DocumentReference(text))
    }

    /// A reference as a person may type it: any case, with or without dashes or spaces, with
    /// Crockford's look-alikes (`O` for 0, `I` and `L` for 1). At most 32 characters read.
    pub fn parse(text: &str) -> Result<DocumentReference, NotAReference> {
        let refused = || NotAReference(text.chars().take(32).collect());
        if text.len() > 32 {
            return Err(refused());
        }
        let mut canonical = String::with_capacity(REFERENCE_CHARS);
        for c in text.chars() {
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c if c.is_ascii() && crate::access_code::ALPHABET.contains(&(c as u8)) => c,
                _ => return Err(refused()),
            };
            canonical.push(c);
        }
        if canonical.len() != REFERENCE_CHARS {
            return Err(refused());
        }
        Ok(DocumentReference(canonical))
    }

    /// The 12 characters without dashes, as the store keeps them.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocumentReference {
    /// `XXXX-XXXX-XXXX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", &self.0[..4], &self.0[4..8], &self.0[8..])
    }
}

/// Why a document was not registered, withdrawn or its check recorded.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the PDF is empty or larger than {MAX_PDF_BYTES} bytes")]
    PdfSize,
    #[error("a withdrawal needs a reason (at most {MAX_REASON_CHARS} characters, one line)")]
    Reason,
    #[error("an organisation name is at most {MAX_ORGANISATION_CHARS} characters, one line")]
    Organisation,
    #[error("no document has the reference {0}")]
    Unknown(DocumentReference),
    #[error("document {reference} was withdrawn already")]
    AlreadyWithdrawn { reference: DocumentReference },
    #[error(transparent)]
    Store(StoreError),
}

/// Registers the PDF `pdf`, issued to the citizen `issued_to` at `issued_at`, under a fresh
/// reference, and returns the register's record (its reference to print on the paper —
/// which is why a flow that prints the reference inside the PDF draws it first with
/// [`DocumentReference::generate`] and calls [`register_as`]).
pub fn register(
    store: &dyn PortalStore,
    kind: DocumentKind,
    issued_to: &str,
    issued_at: OffsetDateTime,
    pdf: &[u8],
) -> Result<DocumentRecord, DocumentError> {
    for _ in 0..REFERENCE_DRAWS {
        let reference = DocumentReference::generate().map_err(DocumentError::Store)?;
        match register_as(store, &reference, kind, issued_to, issued_at, pdf) {
            Err(DocumentError::Store(StoreError::Conflict(_))) => continue,
            done => return done,
        }
    }
    Err(DocumentError::Store(StoreError::Conflict(format!(
        "{REFERENCE_DRAWS} fresh references were all taken"
    ))))
}

/// Registers the PDF under `reference` (drawn with [`DocumentReference::generate`] before the
/// PDF was made, since the PDF shows it). A taken reference is `Store(Conflict)`: draw another
/// and make the PDF again.
pub fn register_as(
    store: &dyn PortalStore,
    reference: &DocumentReference,
    kind: DocumentKind,
    issued_to: &str,
    issued_at: OffsetDateTime,
    pdf: &[u8],
) -> Result<DocumentRecord, DocumentError> {
    if pdf.is_empty() || pdf.len() > MAX_PDF_BYTES {
        return Err(DocumentError::PdfSize);
    }
    let record = DocumentRecord {
        reference: reference.as_str().to_string(),
        kind,
        issued_to: issued_to.to_string(),
        issued_at,
        pdf_sha256: sha256(pdf),
        status: DocumentStatus::Valid,
    };
    store
        .register_document(&record, pdf)
        .map_err(DocumentError::Store)?;
    Ok(record)
}

/// Withdraws a valid document for `reason` (required, one line): an unknown reference or a
/// second withdrawal changes nothing and says so.
pub fn withdraw(
    store: &dyn PortalStore,
    reference: &DocumentReference,
    reason: &str,
    at: OffsetDateTime,
) -> Result<DocumentRecord, DocumentError> {
    let reason = reason.trim();
    if reason.is_empty()
        || reason.chars().count() > MAX_REASON_CHARS
        || reason.chars().any(char::is_control)
    {
        return Err(DocumentError::Reason);
    }
    store
        .withdraw_document(reference.as_str(), at, reason)
        .map_err(|e| match e {
            StoreError::NotFound(_) => DocumentError::Unknown(reference.clone()),
            StoreError::Conflict(_) => DocumentError::AlreadyWithdrawn {
                reference: reference.clone(),
            },
            other => DocumentError::Store(other),
        })
}

/// Records that the document `reference` was checked at `at` through `channel`, by
/// `organisation` when it identified itself.
pub fn record_check(
    store: &dyn PortalStore,
    reference: &DocumentReference,
    organisation: Option<&str>,
    channel: CheckChannel,
    at: OffsetDateTime,
) -> Result<(), DocumentError> {
    let organisation = organisation.map(str::trim).filter(|o| !o.is_empty());
    if organisation.is_some_and(|o| {
        o.chars().count() > MAX_ORGANISATION_CHARS || o.chars().any(char::is_control)
    }) {
        return Err(DocumentError::Organisation);
    }
    store
        .record_check(&DocumentCheck {
            reference: reference.as_str().to_string(),
            checked_at: at,
            organisation: organisation.map(str::to_string),
            channel,
        })
        .map_err(|e| match e {
            StoreError::NotFound(_) => DocumentError::Unknown(reference.clone()),
            other => DocumentError::Store(other),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqlitePortalStore;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-07 10:00 UTC);

    #[test]
    fn a_reference_is_12_crockford_characters_shown_in_three_groups() {
        let reference = DocumentReference::generate().unwrap();
        assert_eq!(reference.as_str().len(), 12);
        assert!(reference
            .as_str()
            .bytes()
            .all(|b| crate::access_code::ALPHABET.contains(&b)));
        let shown = reference.to_string();
        assert_eq!(shown.len(), 14);
        assert_eq!(DocumentReference::parse(&shown).unwrap(), reference);
        let others: std::collections::HashSet<_> = (0..1000)
            .map(|_| DocumentReference::generate().unwrap())
            .collect();
        assert_eq!(others.len(), 1000);
    }

    #[test]
    fn a_typed_reference_is_read_as_meant_and_anything_else_refused() {
        let meant = DocumentReference::parse("7KQ2-M9XD-4PWA").unwrap();
        assert_eq!(DocumentReference::parse("7kq2 m9xd 4pwa").unwrap(), meant);
        assert_eq!(
            DocumentReference::parse("1O1O1O1O1O1O").unwrap(),
            DocumentReference::parse("lolololololo").unwrap()
        );
        for bad in [
            "",
            "7KQ2-M9XD-4PW",
            "7KQ2-M9XD-4PWAX",
            "7KQ2-M9XD-4PWU",
            "<script>",
            "Ə",
        ] {
            assert!(DocumentReference::parse(bad).is_err(), "{bad}");
        }
        assert!(DocumentReference::parse(&"A".repeat(10_000)).is_err());
    }

    #[test]
    fn registering_keeps_the_pdfs_hash_and_withdrawal_needs_a_reason_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap();
        let pdf = b"%PDF-1.7 residence";
        let record = register(&store, DocumentKind::Residence, "PNOAZ-5ZK7T2Q", NOW, pdf).unwrap();
        assert_eq!(record.pdf_sha256, sha256(pdf));
        let reference = DocumentReference::parse(&record.reference).unwrap();
        assert!(matches!(
            register(&store, DocumentKind::Residence, "PNOAZ-5ZK7T2Q", NOW, b""),
            Err(DocumentError::PdfSize)
        ));
        assert!(matches!(
            withdraw(&store, &reference, "  ", NOW),
            Err(DocumentError::Reason)
        ));
        withdraw(&store, &reference, "issued in error", NOW).unwrap();
        assert!(matches!(
            withdraw(&store, &reference, "again", NOW),
            Err(DocumentError::AlreadyWithdrawn { .. })
        ));
        let unknown = DocumentReference::parse("ZZZZ-ZZZZ-ZZZZ").unwrap();
        assert!(matches!(
            withdraw(&store, &unknown, "x", NOW),
            Err(DocumentError::Unknown(_))
        ));
        record_check(
            &store,
            &reference,
            Some(" Kapital Bank "),
            CheckChannel::Api,
            NOW,
        )
        .unwrap();
        assert!(matches!(
            record_check(&store, &unknown, None, CheckChannel::Page, NOW),
            Err(DocumentError::Unknown(_))
        ));
        let checks = store.checks_of("PNOAZ-5ZK7T2Q", 10).unwrap();
        assert_eq!(checks[0].organisation.as_deref(), Some("Kapital Bank"));
    }
}
