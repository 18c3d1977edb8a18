//! The CA's durable state behind one trait: CAs, issued certificates, revocations, CRLs and the
//! audit log, on either engine of imza-store — SQLite ([`sqlite`], the embedded default) or
//! PostgreSQL ([`postgres`], shared by several nodes). The trait carries no engine's types;
//! [`open`] picks the engine from the store's URL.
//!
//! Every write that records a CA action takes the [`AuditEvent`] with it and appends it in the
//! same transaction, so the log and the state can never disagree.
//!
//! # Concurrency contract (both engines)
//! - Each method is atomic: on error nothing it was asked to write is visible, on success all
//!   of it is, durably, with its audit entries.
//! - Audit appends are serialised across every process on the store (SQLite: the file's write
//!   lock; PostgreSQL: a transaction-scoped advisory lock, the last lock a transaction takes),
//!   so the chain stays one line: entry `n + 1` always links entry `n`, whoever wrote either.
//! - Uniqueness is the database's: of two writers of one (CA, serial), one CA name or one CRL
//!   number, one commits and the other gets [`StoreError::Conflict`] and writes nothing.
//! - A revocation is one conditional update: of two concurrent revokers of one serial exactly
//!   one succeeds (and writes the one audit entry); the other gets
//!   [`StoreError::AlreadyRevoked`] and writes nothing.
//! - Order comes from sequences (CA creation, issuance), never from `MAX + 1` or a rowid; two
//!   issuers on two nodes never draw the same value.

pub mod postgres;
mod rows;
pub mod sqlite;

use imza_store::copy::{Column, Table, TableSet};
use imza_store::{Create, Migrations, StoreUrl, Violation};
use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;

use crate::audit::{AuditEntry, AuditEvent};
use crate::keyref::KeyReference;

pub use imza_store::StoreError;

/// The CA schema on SQLite. Never edit a released version; add the next to both engines.
pub(crate) const SCHEMA_SQLITE: Migrations = Migrations {
    what: "the CA store",
    table: "schema_migrations",
    steps: &[
        (1, include_str!("migrations/sqlite/0001_initial.sql")),
        (2, include_str!("migrations/sqlite/0002_services.sql")),
        (3, include_str!("migrations/sqlite/0003_sequences.sql")),
        (
            4,
            include_str!("migrations/sqlite/0004_service_requests.sql"),
        ),
        (5, include_str!("migrations/sqlite/0005_crl_shards.sql")),
        (
            6,
            include_str!("migrations/sqlite/0006_subject_serial_number.sql"),
        ),
    ],
};

/// The CA schema on PostgreSQL: version 3 is SQLite's 1 to 3 in one step, so a version
/// number names the same tables on both engines.
pub(crate) const SCHEMA_POSTGRES: Migrations = Migrations {
    what: "the CA store",
    table: "schema_migrations",
    steps: &[
        (3, include_str!("migrations/postgres/0003_initial.sql")),
        (
            4,
            include_str!("migrations/postgres/0004_service_requests.sql"),
        ),
        (5, include_str!("migrations/postgres/0005_crl_shards.sql")),
        (
            6,
            include_str!("migrations/postgres/0006_subject_serial_number.sql"),
        ),
    ],
};

/// The CA store's tables as `imza store migrate` copies them from SQLite to PostgreSQL
/// (imza-store's `copy`), each after the tables it refers to. Keep it in step with the
/// migrations: a copy refuses a store whose version, tables or columns differ from it.
pub const TABLES: TableSet = TableSet {
    sqlite: &SCHEMA_SQLITE,
    postgres: &SCHEMA_POSTGRES,
    version: 6,
    tables: &[
        Table {
            name: "cas",
            columns: &[
                Column::text("name"),
                Column::text("parent"),
                Column::bytes("certificate"),
                Column::text("key_ref"),
                Column::text("base_url"),
                Column::bigint("created_at"),
                Column::bigint("seq"),
                Column::integer("crl_shards"),
            ],
            // Creation order: a parent before its children.
            order_by: &["seq"],
            identity: Some("seq"),
        },
        Table {
            name: "certificates",
            columns: &[
                Column::text("ca"),
                Column::text("serial"),
                Column::text("subject"),
                Column::text("profile"),
                Column::bigint("not_before"),
                Column::bigint("not_after"),
                Column::bigint("issued_at"),
                Column::bytes("der"),
                Column::bigint("revoked_at"),
                Column::integer("reason"),
                Column::bigint("invalidity_date"),
                Column::bigint("id"),
                Column::integer("crl_shard"),
                Column::text("subject_serial_number"),
            ],
            order_by: &["ca", "serial"],
            identity: Some("id"),
        },
        Table {
            name: "crls",
            columns: &[
                Column::text("ca"),
                Column::bigint("number"),
                Column::bigint("this_update"),
                Column::bigint("next_update"),
                Column::bytes("der"),
                Column::integer("shard"),
            ],
            order_by: &["ca", "number"],
            identity: None,
        },
        Table {
            name: "audit",
            columns: &[
                Column::bigint("seq"),
                Column::text("at"),
                Column::text("action"),
                Column::text("ca"),
                Column::text("details"),
                Column::text("prev_hash"),
                Column::text("hash"),
            ],
            order_by: &["seq"],
            identity: None,
        },
        Table {
            name: "services",
            columns: &[
                Column::text("kind"),
                Column::text("name"),
                Column::text("ca"),
                Column::text("serial"),
                Column::text("key_ref"),
                Column::text("policy"),
                Column::bigint("created_at"),
                Column::bigint("id"),
                Column::text("node"),
            ],
            order_by: &["kind", "name", "serial"],
            identity: Some("id"),
        },
        Table {
            name: "service_requests",
            columns: &[
                Column::bigint("id"),
                Column::text("kind"),
                Column::text("name"),
                Column::text("ca"),
                Column::text("node"),
                Column::bytes("csr"),
                Column::text("key_ref"),
                Column::bigint("requested_at"),
                Column::text("certified_serial"),
                Column::text("refused"),
            ],
            order_by: &["id"],
            identity: Some("id"),
        },
    ],
    // PostgreSQL numbers CAs, certificates, services and requests with identity columns.
    sqlite_only: &["sequences"],
};

/// Opens the CA store at `url`. With [`Create::No`] a missing store (no SQLite file, or a
/// database without imza's tables) is `NotFound` and nothing is created.
pub fn open(url: &StoreUrl, create: Create) -> Result<Box<dyn CaStore>, StoreError> {
    Ok(match url {
        StoreUrl::Sqlite(path) => Box::new(sqlite::SqliteStore::open_with(path, create)?),
        StoreUrl::Postgres(url) => Box::new(postgres::PgStore::open(url, create)?),
    })
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
    /// How many shards the CA's CRL is partitioned into (`crate::crl_shards`); 0: one CRL.
    pub crl_shards: u32,
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
    /// The CRL shard its CRL distribution point names (`crate::crl_shards`); `None` for a
    /// certificate of a CA whose CRL is not partitioned.
    pub crl_shard: Option<u32>,
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
    /// The shard it covers; `None` for the one CRL of a CA that is not partitioned.
    pub shard: Option<u32>,
    /// Unique per CA: the shards of a CA draw on one sequence of numbers.
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
    /// The node whose data directory (or token) holds the key; `None` for the CA node's own.
    pub node: Option<String>,
}

/// A node's request for a service certificate: its CSR and where it keeps the key. The CA
/// side certifies it ([`CaStore::certify_service_request`]) or refuses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRequest {
    /// Set by the store (a sequence); 0 in a request not yet stored.
    pub id: u64,
    pub kind: ServiceKind,
    /// For OCSP the CA answered for; for a TSA the unit's name.
    pub name: String,
    /// The CA asked to certify.
    pub ca: String,
    pub node: String,
    /// PKCS#10, DER.
    pub csr: Vec<u8>,
    /// Where the node keeps the key, relative to its data directory.
    pub key: KeyReference,
    pub requested_at: OffsetDateTime,
}

/// The durable state of a PKI, under the concurrency contract of this module's docs.
pub trait CaStore: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `postgres`.
    fn engine(&self) -> &'static str;

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

    /// Marks a certificate revoked and appends `audit`, only if it was not revoked: of
    /// concurrent revokers exactly one succeeds. `NotFound` for an unknown serial,
    /// `AlreadyRevoked` if it was (then no audit entry is written).
    fn revoke(
        &self,
        ca: &str,
        serial: &[u8],
        revocation: &Revocation,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Every revoked certificate of `ca` (serial, time, reason, invalidity date), for a CRL.
    fn revoked(&self, ca: &str) -> Result<Vec<imza_core::crl::RevokedEntry>, StoreError>;

    /// The revoked certificates of `ca` in CRL shard `shard`, for that shard's CRL: one
    /// indexed range, so signing every shard reads each revoked row once.
    fn revoked_in_shard(
        &self,
        ca: &str,
        shard: u32,
    ) -> Result<Vec<imza_core::crl::RevokedEntry>, StoreError>;

    /// The highest CRL number issued for `ca` (any shard), if any.
    fn last_crl_number(&self, ca: &str) -> Result<Option<u64>, StoreError>;

    /// Records a signed CRL. `Conflict` if that number exists for the CA.
    fn insert_crl(&self, crl: &CrlRecord, audit: &AuditEvent) -> Result<(), StoreError>;

    /// Records signed CRLs (shards of one run) with their audit entries in one durable
    /// transaction. `Conflict` if any number exists for its CA; then nothing is written.
    fn insert_crls(&self, crls: &[CrlRecord], audits: &[AuditEvent]) -> Result<(), StoreError>;

    /// The latest (highest-numbered) CRL of `ca` that is not a shard's.
    fn latest_crl(&self, ca: &str) -> Result<Option<CrlRecord>, StoreError>;

    /// The latest CRL of shard `shard` of `ca`.
    fn latest_shard_crl(&self, ca: &str, shard: u32) -> Result<Option<CrlRecord>, StoreError>;

    /// For each shard `0 .. shards` of `ca`, the (thisUpdate, nextUpdate) of its latest CRL,
    /// `None` where it has none: what a CRL schedule needs, without reading any CRL's DER.
    fn shard_crl_validity(
        &self,
        ca: &str,
        shards: u32,
    ) -> Result<Vec<Option<(OffsetDateTime, OffsetDateTime)>>, StoreError>;

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

    /// Records a node's request for a service certificate, with its audit entry; returns its
    /// id. `Conflict` if that node has an open request for that service (then nothing is
    /// written): of concurrent requests one is recorded.
    fn insert_service_request(
        &self,
        request: &ServiceRequest,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError>;

    /// Requests neither certified nor refused, oldest first, at most `limit`.
    fn open_service_requests(&self, limit: usize) -> Result<Vec<ServiceRequest>, StoreError>;

    /// Records the certificate that answers request `id` (with `service` naming its node and
    /// key) and closes the request, in one transaction with `audits`. `Conflict` if the request
    /// is no longer open — of two CA nodes certifying at once, one records and the other
    /// writes nothing.
    fn certify_service_request(
        &self,
        id: u64,
        service: &ServiceRecord,
        certificate: &CertificateRecord,
        audits: &[AuditEvent],
    ) -> Result<(), StoreError>;

    /// Closes request `id` as refused (`reason`), with its audit entry. `Conflict` if it is no
    /// longer open.
    fn refuse_service_request(
        &self,
        id: u64,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Services of `kind` (only those named `name`, if given) with their certificates, oldest
    /// first.
    fn services(
        &self,
        kind: ServiceKind,
        name: Option<&str>,
    ) -> Result<Vec<(ServiceRecord, CertificateRecord)>, StoreError>;

    /// The certificates of every CA whose subject carries exactly the serialNumber
    /// `serial_number` (ETSI EN 319 412-1 §5.1.3: a citizen's personal code, `PNOAZ-5ZK7T2Q`),
    /// soonest to expire first, at most `limit`: the citizen portal's list of a citizen's
    /// certificates. A plain read of the index `certificates_of_subject_serial_number`
    /// (schema version 6; the column is written at issuance), the subject then checked
    /// exactly.
    fn certificates_of_subject_serial_number(
        &self,
        serial_number: &str,
        limit: usize,
    ) -> Result<Vec<CertificateRecord>, StoreError>;

    /// Certificates not revoked whose subject carries a serialNumber (a citizen's personal
    /// code: [`subject_serial_number_of`]) and whose notAfter is after `from` and at most
    /// `until`, in (notAfter, CA, serial) order, starting after `after` (the last one of the
    /// previous page), at most `limit`: the portal's expiry notices page through them. A plain
    /// read; rows whose subject turns out to carry no single serialNumber are returned too,
    /// so that a page is full exactly when more may follow.
    fn certificates_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
        after: Option<ExpiryCursor<'_>>,
        limit: usize,
    ) -> Result<Vec<CertificateRecord>, StoreError>;
}

/// Where [`CaStore::certificates_expiring`] goes on: after the certificate with this
/// notAfter, CA and serial.
#[derive(Clone, Copy, Debug)]
pub struct ExpiryCursor<'a> {
    pub not_after: OffsetDateTime,
    pub ca: &'a str,
    pub serial: &'a [u8],
}

/// The statement of [`CaStore::certificates_expiring`] (`{p}1`… placeholders): 1 from,
/// 2 until, 3 limit, and with a cursor 4 notAfter, 5 CA, 6 serial (upper-case hex).
fn certificates_expiring_sql(placeholder: &str, with_cursor: bool) -> String {
    let p = |n: u8| format!("{placeholder}{n}");
    let cursor = if with_cursor {
        format!(
            "AND (not_after > {n} OR (not_after = {n} AND (ca > {c} OR (ca = {c} AND serial > {s})))) ",
            n = p(4),
            c = p(5),
            s = p(6)
        )
    } else {
        String::new()
    };
    format!(
        "SELECT {columns} FROM certificates WHERE revoked_at IS NULL \
         AND subject_serial_number IS NOT NULL AND not_after > {from} AND not_after <= {until} \
         {cursor}ORDER BY not_after, ca, serial LIMIT {limit}",
        columns = rows::CERTIFICATE_COLUMNS,
        from = p(1),
        until = p(2),
        limit = p(3),
    )
}

/// The serialNumber of a certificate's subject when it carries exactly one (a citizen's
/// personal code, `PNOAZ-5ZK7T2Q`).
pub fn subject_serial_number_of(record: &CertificateRecord) -> Option<String> {
    subject_serial_number(&record.subject)
}

/// The serialNumber of a stored subject (RFC 4514 text) when it carries exactly one: what the
/// `subject_serial_number` column holds.
fn subject_serial_number(subject: &str) -> Option<String> {
    let name = imza_core::name::parse_dn(subject).ok()?;
    let mut values =
        imza_core::name::attribute_values(&name, imza_core::oids::AT_SERIAL_NUMBER).into_iter();
    match (values.next(), values.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Whether the stored subject carries exactly one serialNumber, `serial_number` (the column of
/// a row migrated from before version 6 was cut from the text, so it is checked again).
fn has_subject_serial_number(record: &CertificateRecord, serial_number: &str) -> bool {
    subject_serial_number(&record.subject).as_deref() == Some(serial_number)
}

/// A shard count a caller asks about: at most [`crate::crl_shards::MAX_CRL_SHARDS`], so a
/// per-shard loop stays bounded whatever it is given.
fn check_shard_count(shards: u32) -> Result<(), StoreError> {
    if shards > crate::crl_shards::MAX_CRL_SHARDS {
        return Err(StoreError::Invalid(format!(
            "{shards} CRL shards: at most {}",
            crate::crl_shards::MAX_CRL_SHARDS
        )));
    }
    Ok(())
}

/// SQL condition (after `WHERE ca = …`) for a listing filter; `now` binds to `placeholder`.
fn filter_condition(filter: StatusFilter, placeholder: &str) -> (String, Option<i64>) {
    match filter {
        StatusFilter::All => (String::new(), None),
        StatusFilter::Revoked => ("AND revoked_at IS NOT NULL".into(), None),
        StatusFilter::Valid { now } => (
            format!("AND revoked_at IS NULL AND not_after >= {placeholder}"),
            Some(now.unix_timestamp()),
        ),
        StatusFilter::Expired { now } => (
            format!("AND revoked_at IS NULL AND not_after < {placeholder}"),
            Some(now.unix_timestamp()),
        ),
    }
}

/// The certificate columns prefixed with a table alias, for joins.
fn qualified_certificate_columns(alias: &str) -> String {
    rows::CERTIFICATE_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// (revoked_at, reason code, invalidity date) as stored.
fn revocation_values(r: &Revocation) -> (i64, i64, Option<i64>) {
    (
        r.revoked_at.unix_timestamp(),
        i64::from(imza_core::crl::reason_code(r.reason)),
        r.invalidity_date.map(|t| t.unix_timestamp()),
    )
}

/// Why a revocation changed no row: no such certificate, or revoked already (at `current`).
fn not_revoked(
    ca: &str,
    serial_hex: &str,
    current: Option<Option<i64>>,
) -> Result<StoreError, StoreError> {
    match current {
        None => Ok(StoreError::NotFound(format!(
            "certificate serial {serial_hex} of CA {ca}"
        ))),
        Some(Some(at)) => rows::already_revoked(serial_hex, at),
        Some(None) => Err(StoreError::Backend(format!(
            "certificate serial {serial_hex} of CA {ca} was neither revoked nor revocable"
        ))),
    }
}

fn certificate_insert_error(
    violation: Option<Violation>,
    other: StoreError,
    c: &CertificateRecord,
) -> StoreError {
    match violation {
        Some(Violation::Unique) => StoreError::Conflict(format!(
            "certificate serial {} already issued by CA {}",
            hex::encode_upper(&c.serial),
            c.ca
        )),
        Some(Violation::ForeignKey) => StoreError::NotFound(format!("CA {}", c.ca)),
        None => other,
    }
}

fn ca_insert_error(violation: Option<Violation>, other: StoreError, ca: &CaRecord) -> StoreError {
    match violation {
        Some(Violation::Unique) => StoreError::Conflict(format!("CA {} already exists", ca.name)),
        Some(Violation::ForeignKey) => StoreError::NotFound(format!(
            "parent CA {} of CA {}",
            ca.parent.as_deref().unwrap_or(""),
            ca.name
        )),
        None => other,
    }
}

fn crl_insert_error(
    violation: Option<Violation>,
    other: StoreError,
    crl: &CrlRecord,
) -> StoreError {
    match violation {
        Some(Violation::Unique) => {
            StoreError::Conflict(format!("CRL number {} of CA {} exists", crl.number, crl.ca))
        }
        Some(Violation::ForeignKey) => StoreError::NotFound(format!("CA {}", crl.ca)),
        None => other,
    }
}

fn service_insert_error(
    violation: Option<Violation>,
    other: StoreError,
    service: &ServiceRecord,
) -> StoreError {
    match violation {
        Some(Violation::Unique) => StoreError::Conflict(format!(
            "{} service {} with serial {}",
            service.kind.as_str(),
            service.name,
            hex::encode_upper(&service.serial)
        )),
        Some(Violation::ForeignKey) => StoreError::NotFound(format!("CA {}", service.ca)),
        None => other,
    }
}

/// Why closing a service request changed no row: there is none, or it is closed already.
fn request_not_open(id: u64) -> StoreError {
    StoreError::Conflict(format!(
        "service request {id} is not open (certified or refused already, or unknown)"
    ))
}

fn request_insert_error(
    violation: Option<Violation>,
    other: StoreError,
    request: &ServiceRequest,
) -> StoreError {
    match violation {
        Some(Violation::Unique) => StoreError::Conflict(format!(
            "node {} has an open {} request for {}",
            request.node,
            request.kind.as_str(),
            request.name
        )),
        Some(Violation::ForeignKey) => StoreError::NotFound(format!("CA {}", request.ca)),
        None => other,
    }
}
