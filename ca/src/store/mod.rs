//! The CA's durable state behind one trait: CAs, issued certificates, revocations, CRLs and the
//! audit log. SQLite ([`sqlite`]) is the embedded default; the trait carries no SQLite types
//! so a PostgreSQL store can follow for multi-node deployments.
//!
//! Every write that records a CA action takes the [`AuditEvent`] with it and appends it in the
//! same transaction, so the log and the state can never disagree.

pub mod sqlite;

use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;

use crate::audit::{AuditEntry, AuditEvent};
use crate::keyref::KeyReference;

/// Errors from a store, independent of the database behind it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (a CA name, a serial, a CRL number).
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("certificate {serial} is already revoked (since {revoked_at})")]
    AlreadyRevoked { serial: String, revoked_at: String },
    #[error("the store's data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Backend(String),
}

/// A certificate authority as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaRecord {
    /// Short operator-chosen name (`root`, `citizens`); also used in URLs.
    pub name: String,
    /// The issuing CA's name; `None` for a self-signed root.
    pub parent: Option<String>,
    /// The CA's own certificate, DER.
    pub certificate: Vec<u8>,
    /// Where the CA's private key lives (never the key itself).
    pub key: KeyReference,
    /// Base of the URLs written into issued certificates (CDP, AIA).
    pub base_url: String,
    pub created_at: OffsetDateTime,
}

/// How a certificate was revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub revoked_at: OffsetDateTime,
    pub reason: CrlReason,
    pub invalidity_date: Option<OffsetDateTime>,
}

/// An issued certificate as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Name of the issuing CA.
    pub ca: String,
    /// Serial number, unsigned big-endian bytes.
    pub serial: Vec<u8>,
    /// Subject in RFC 4514 form.
    pub subject: String,
    pub profile: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub issued_at: OffsetDateTime,
    /// The certificate, DER.
    pub der: Vec<u8>,
    pub revocation: Option<Revocation>,
}

/// Which certificates a listing wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    All,
    /// Not revoked and not expired at `now`.
    Valid {
        now: OffsetDateTime,
    },
    Revoked,
    /// Not revoked, but past notAfter at `now`.
    Expired {
        now: OffsetDateTime,
    },
}

/// A signed CRL as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlRecord {
    pub ca: String,
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub der: Vec<u8>,
}

/// What the store says about one serial, for OCSP: the three answers of RFC 6960 §2.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Issued by the CA and not revoked (expired or not: the CA keeps the status).
    Issued,
    Revoked {
        at: OffsetDateTime,
        reason: CrlReason,
    },
    /// The CA never issued this serial.
    Unknown,
}

/// The kinds of service a CA certifies a key for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// A delegated OCSP responder of one CA (RFC 6960 §4.2.2.2).
    Ocsp,
    /// A time-stamping unit (RFC 3161).
    Tsa,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Ocsp => "ocsp",
            ServiceKind::Tsa => "tsa",
        }
    }
}

/// A certified service key: which certificate (issued by `ca`), and where its key lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRecord {
    pub kind: ServiceKind,
    /// For OCSP the CA it answers for; for a TSA the unit's name.
    pub name: String,
    pub ca: String,
    /// Serial of the service's certificate, unsigned big-endian bytes.
    pub serial: Vec<u8>,
    pub key: KeyReference,
    /// The TSA policy OID (dotted); `None` for OCSP responders.
    pub policy: Option<String>,
    pub created_at: OffsetDateTime,
}

/// The durable state of a PKI. Implementations must make each method atomic: on error,
/// nothing it was asked to write is visible.
pub trait CaStore: Send + Sync {
    /// Records a new CA and, for a subordinate CA, its certificate as issued by the parent.
    /// `Conflict` if the name is taken.
    fn create_ca(
        &self,
        ca: &CaRecord,
        issued_by_parent: Option<&CertificateRecord>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    fn ca(&self, name: &str) -> Result<Option<CaRecord>, StoreError>;

    /// All CAs, parents before children (by creation order).
    fn cas(&self) -> Result<Vec<CaRecord>, StoreError>;

    /// Records certificates and their audit events in one durable transaction.
    /// `Conflict` if any (ca, serial) already exists; then nothing is written.
    fn insert_certificates(
        &self,
        certificates: &[CertificateRecord],
        audits: &[AuditEvent],
    ) -> Result<(), StoreError>;

    fn certificate(&self, ca: &str, serial: &[u8])
        -> Result<Option<CertificateRecord>, StoreError>;

    /// Certificates of `ca` matching `filter`, in issuance order, at most `limit`.
    fn certificates(
        &self,
        ca: &str,
        filter: StatusFilter,
        limit: usize,
    ) -> Result<Vec<CertificateRecord>, StoreError>;

    /// Marks a certificate revoked. `NotFound` for an unknown serial, `AlreadyRevoked` if so.
    fn revoke(
        &self,
        ca: &str,
        serial: &[u8],
        revocation: &Revocation,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Every revoked certificate of `ca` (serial, time, reason, invalidity date), for a CRL.
    fn revoked(&self, ca: &str) -> Result<Vec<imza_core::crl::RevokedEntry>, StoreError>;

    /// The highest CRL number issued for `ca`, if any.
    fn last_crl_number(&self, ca: &str) -> Result<Option<u64>, StoreError>;

    /// Records a signed CRL. `Conflict` if that number exists for the CA.
    fn insert_crl(&self, crl: &CrlRecord, audit: &AuditEvent) -> Result<(), StoreError>;

    fn latest_crl(&self, ca: &str) -> Result<Option<CrlRecord>, StoreError>;

    /// Audit entries with `seq > after`, in order, at most `limit` (page through the log).
    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// The status of one serial, reading no more than OCSP needs (no DER).
    fn status(&self, ca: &str, serial: &[u8]) -> Result<CertificateStatus, StoreError>;

    /// The sequence number of the last audit entry (0 for an empty log). Every action that
    /// changes a certificate's status writes an entry, so a change of this number, in this
    /// process or another, is how a server learns that cached answers may be stale.
    fn audit_head(&self) -> Result<u64, StoreError>;

    /// Records a service's certificate and key reference, with their audit entries, in one
    /// durable transaction. `Conflict` if that serial exists; then nothing is written.
    fn insert_service(
        &self,
        service: &ServiceRecord,
        certificate: &CertificateRecord,
        audits: &[AuditEvent],
    ) -> Result<(), StoreError>;

    /// Services of `kind` (only those named `name`, if given) with their certificates, oldest
    /// first.
    fn services(
        &self,
        kind: ServiceKind,
        name: Option<&str>,
    ) -> Result<Vec<(ServiceRecord, CertificateRecord)>, StoreError>;
}
