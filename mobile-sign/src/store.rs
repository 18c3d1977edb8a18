//! The service's durable records behind one trait, [`MobileStore`]: relying parties with the
//! SHA-256 of their API key, registered devices (phone number, national identity number,
//! SHA-256 of the device secret, the authentication and signing certificates and the CA that
//! issued each) and sessions ([`sessions`]).
//!
//! Two layers. Above the trait, [`registration`] and [`sessions`] hold the domain rules: what
//! a valid phone number, national identity number, relying-party name or certificate is, how
//! API keys, device secrets and ids are made, which result an expired session gets, how a
//! phone's pending requests take turns. The trait takes values already checked and already
//! made, and its implementations only store them: [`sqlite`], the embedded default, in the CA
//! store's `imza.db`, and [`postgres`], in the CA store's database, for several nodes; [`open`]
//! picks one from the store's URL. Both keep the same values the same way (`rows`). The
//! trait's doc comments state the concurrency contract each implementation keeps;
//! `store::contract` (built for tests and with the `contract-tests` feature) holds the tests
//! that check it, run against every engine.

pub mod postgres;
pub mod registration;
mod rows;
pub mod sessions;
pub mod sqlite;

#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;

use std::sync::Arc;

use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::Certificate;

use imza_core::clock::from_x509_time;
use imza_core::KeyAlgorithm;
use imza_store::copy::{Column, Table, TableSet};
use imza_store::{Create, Migrations, StoreUrl};

use crate::protocol::SessionKind;

pub use postgres::PgMobileStore;
pub use registration::{
    add_relying_party, is_well_formed_id, register_device, DeviceRegistration, NewDevice,
};
pub use sessions::{SessionCompletion, SessionRecord, Stored};
pub use sqlite::SqliteMobileStore;

pub(crate) use registration::random_id;

/// The one error of every imza store (Conflict, NotFound, Invalid, Corrupt, NewerSchema,
/// Unavailable, Backend). `Invalid` is raised by the checks above the trait, never by an
/// implementation.
pub use imza_store::StoreError;

/// The mobile signature tables on SQLite, recorded in their own `mss_schema_migrations` beside
/// the CA's tables. Never edit a released version; add the next to both engines.
pub(crate) const SCHEMA_SQLITE: Migrations = Migrations {
    what: "the mobile signature tables",
    table: "mss_schema_migrations",
    steps: &[
        (1, include_str!("store/migrations/sqlite/0001_initial.sql")),
        (
            2,
            include_str!("store/migrations/sqlite/0002_equal_work_and_short_lived_refusals.sql"),
        ),
        (
            3,
            include_str!("store/migrations/sqlite/0003_session_sequence.sql"),
        ),
        (
            4,
            include_str!("store/migrations/sqlite/0004_sessions_of_a_citizen.sql"),
        ),
    ],
};

/// The mobile signature tables on PostgreSQL: version 3 is SQLite's 1 to 3 in one step, so a
/// version number names the same tables on both engines.
pub(crate) const SCHEMA_POSTGRES: Migrations = Migrations {
    what: "the mobile signature tables",
    table: "mss_schema_migrations",
    steps: &[
        (
            3,
            include_str!("store/migrations/postgres/0003_initial.sql"),
        ),
        (
            4,
            include_str!("store/migrations/postgres/0004_sessions_of_a_citizen.sql"),
        ),
    ],
};

/// The mobile signature tables as `imza store migrate` copies them from SQLite to PostgreSQL
/// (imza-store's `copy`), each after the tables it refers to. Keep it in step with the
/// migrations: a copy refuses a store whose version, tables or columns differ from it.
pub const TABLES: TableSet = TableSet {
    sqlite: &SCHEMA_SQLITE,
    postgres: &SCHEMA_POSTGRES,
    version: 4,
    tables: &[
        Table {
            name: "mss_relying_parties",
            columns: &[
                Column::text("name"),
                Column::bytes("api_key_sha256"),
                Column::bigint("created_at"),
            ],
            order_by: &["name"],
            identity: None,
        },
        Table {
            name: "mss_devices",
            columns: &[
                Column::text("device_id"),
                Column::text("phone_number"),
                Column::text("national_id"),
                Column::bytes("secret_sha256"),
                Column::text("auth_ca"),
                Column::bytes("auth_der"),
                Column::text("sign_ca"),
                Column::bytes("sign_der"),
                Column::bigint("registered_at"),
                Column::bigint("deactivated_at"),
            ],
            order_by: &["device_id"],
            identity: None,
        },
        Table {
            name: "mss_sessions",
            columns: &[
                Column::text("session_id"),
                Column::text("relying_party"),
                Column::text("device_id"),
                Column::text("kind"),
                Column::bytes("hash"),
                Column::text("hash_type"),
                Column::text("display_text"),
                Column::text("language"),
                Column::bigint("created_at"),
                Column::bigint("expires_at"),
                Column::bigint("delivered_at"),
                Column::bigint("completed_at"),
                Column::text("result"),
                Column::bytes("signature"),
                Column::text("signature_algorithm"),
                Column::bytes("cert"),
                Column::bigint("seq"),
            ],
            // The order they were stored in (unique on SQLite).
            order_by: &["seq"],
            identity: Some("seq"),
        },
    ],
    sqlite_only: &[],
};

/// Opens the mobile signature tables of the store at `url`, creating them if missing: on
/// SQLite in the file at the path (created if missing, as [`SqliteMobileStore::open`]), on
/// PostgreSQL in the database, beside the CA store's tables ([`PgMobileStore`], its own pool
/// of connections). A caller that must not create a store where there is none opens the CA
/// store first, without creating it.
pub fn open(url: &StoreUrl) -> Result<Arc<dyn MobileStore>, StoreError> {
    Ok(match url {
        StoreUrl::Sqlite(path) => Arc::new(SqliteMobileStore::open(path)?),
        StoreUrl::Postgres(url) => Arc::new(PgMobileStore::open(url, Create::IfMissing)?),
    })
}

/// A registered relying party (its API key is never kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelyingParty {
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// A certificate of a device and the name of the CA (in the CA store) that issued it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredCertificate {
    pub ca: String,
    pub der: Vec<u8>,
}

/// What the service needs to know of a [`RegisteredCertificate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateDetails {
    /// The serial's bytes as the certificate carries them (what the CA store keys on).
    pub serial: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub key_algorithm: KeyAlgorithm,
}

impl RegisteredCertificate {
    /// Reads the serial, validity and public key (x509-cert; no OpenSSL parser on this path).
    pub fn details(&self) -> Result<CertificateDetails, String> {
        let cert = Certificate::from_der(&self.der)
            .map_err(|e| format!("the certificate is not DER X.509: {e}"))?;
        let tbs = &cert.tbs_certificate;
        let public_key = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| format!("the certificate's public key cannot be encoded: {e}"))?;
        let key_algorithm = KeyAlgorithm::of_public_key(&public_key)
            .map_err(|e| format!("the certificate's key: {e}"))?;
        Ok(CertificateDetails {
            serial: tbs.serial_number.as_bytes().to_vec(),
            not_before: from_x509_time(&tbs.validity.not_before),
            not_after: from_x509_time(&tbs.validity.not_after),
            public_key,
            key_algorithm,
        })
    }
}

/// A registered device (its secret is never kept), and a device as handed to
/// [`MobileStore::insert_device`]: id made, values checked (see [`register_device`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub device_id: String,
    pub phone_number: String,
    pub national_id: String,
    pub auth: RegisteredCertificate,
    pub sign: RegisteredCertificate,
    pub registered_at: OffsetDateTime,
}

impl Device {
    /// The certificate whose key answers sessions of `kind`.
    pub fn certificate(&self, kind: SessionKind) -> &RegisteredCertificate {
        match kind {
            SessionKind::Authentication => &self.auth,
            SessionKind::Signature => &self.sign,
        }
    }
}

/// The service's records. Shared between threads and requests as `Arc<dyn MobileStore>`.
///
/// Every method is atomic — on error, nothing it was asked to write is visible — except the two
/// that say they work in steps ([`MobileStore::session_at`], [`MobileStore::purge_sessions`]),
/// where each step is. "Serialised"
/// below means that implementations must apply the named writes one after another even when
/// they come from several processes (or nodes) on one database; each method says what must be
/// locked for that. The SQLite store gets it from its database-wide write lock (`BEGIN
/// IMMEDIATE`); a PostgreSQL store at READ COMMITTED needs the row or advisory locks named,
/// since a read followed by a write in one transaction does not by itself stop a concurrent
/// transaction from reading the same rows first.
///
/// Reads see committed state only and lock nothing. A record read may change right after
/// (a device deactivated, a session completed); every write that depends on a state is
/// conditioned on it in the write itself, so a caller acting on a stale read loses cleanly
/// (`Ok(false)`, `NotFound`, [`Stored::TooManyRunning`]) rather than overwriting a newer state.
///
/// Times are stored to the millisecond. Ordering never relies on an engine's hidden row
/// numbers: sessions carry an explicit sequence number (migration 0003).
pub trait MobileStore: Send + Sync + std::fmt::Debug {
    /// Stores a relying party with the SHA-256 of its API key (name already checked, key
    /// already made: [`add_relying_party`]). One insert. `Conflict` when the name exists:
    /// of concurrent inserts of one name exactly one succeeds and every other gets
    /// `Conflict` (the name is the table's unique key; PostgreSQL's second inserter waits for
    /// the first to commit and then fails on the key).
    fn insert_relying_party(
        &self,
        name: &str,
        api_key_sha256: &[u8; 32],
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Every relying party, ordered by name. A plain read.
    fn relying_parties(&self) -> Result<Vec<RelyingParty>, StoreError>;

    /// The SHA-256 of a relying party's API key and `true`, or `decoy` and `false` for an
    /// unknown name. A plain read that does the same work for a known and an unknown name —
    /// one statement, one row of the same shape either way, the hash read from an index that
    /// holds it (SQLite: the covering index `mss_relying_parties_key`; PostgreSQL: an index
    /// `INCLUDE (api_key_sha256)` read by an index-only scan) — so the time of a 401 does not
    /// tell which names exist.
    fn relying_party_key_hash_or(
        &self,
        name: &str,
        decoy: &[u8; 32],
    ) -> Result<([u8; 32], bool), StoreError>;

    /// Stores `device` (id already made, values already checked: [`register_device`]) as the
    /// active device of its phone number, with the SHA-256 of its secret. In the same
    /// transaction the phone number's active device, if any, is deactivated at
    /// `device.registered_at`, its RUNNING sessions end with
    /// [`sessions::RESULT_WHEN_DEACTIVATED`], and it is returned (the caller revokes its
    /// certificates).
    ///
    /// Serialised per phone number. Concurrent registrations of one number all succeed,
    /// applied one after another: exactly one device stays active (the last applied), and
    /// each of the others is returned as replaced by exactly one registration (the next one
    /// applied), so every replaced device's certificates are revoked once. The lock must cover
    /// the phone number even when it has no device yet: SQLite's write lock does; on
    /// PostgreSQL a `SELECT … FOR UPDATE` of the active row does not (it locks nothing for a
    /// first registration) — take `pg_advisory_xact_lock` on the number's hash first, or
    /// retry the transaction when the unique index on active phone numbers refuses the
    /// insert. `Conflict` (nothing written) when a device with this id exists.
    fn insert_device(
        &self,
        device: &Device,
        secret_sha256: &[u8; 32],
    ) -> Result<Option<Device>, StoreError>;

    /// Deactivates an active device at `at` and ends its RUNNING sessions with
    /// [`sessions::RESULT_WHEN_DEACTIVATED`], in one transaction (the CLI's rollback when
    /// something after registration fails). `NotFound` when no active device has this id.
    ///
    /// Serialised on the device's row (one conditional update: PostgreSQL's row lock
    /// re-checks the condition after a concurrent writer commits). Of concurrent
    /// deactivations of one device exactly one succeeds, the others get `NotFound`; one that
    /// comes after a registration replaced the device gets `NotFound` too.
    ///
    /// A session stored for the device by a request that read it active just before the
    /// deactivation is not ended by it: it runs until its expiry, unanswered (the device can
    /// no longer authenticate).
    fn deactivate_device(&self, device_id: &str, at: OffsetDateTime) -> Result<(), StoreError>;

    /// The active device of a phone number. A plain read.
    fn device_for_phone(&self, phone_number: &str) -> Result<Option<Device>, StoreError>;

    /// A device by id, active or not. A plain read.
    fn device(&self, device_id: &str) -> Result<Option<Device>, StoreError>;

    /// An active device by id. A plain read.
    fn active_device(&self, device_id: &str) -> Result<Option<Device>, StoreError>;

    /// The SHA-256 of an active device's secret and `true`, or `decoy` and `false` when no
    /// active device has this id: the same work either way, as
    /// [`MobileStore::relying_party_key_hash_or`] (SQLite: the covering index
    /// `mss_devices_active_secret`; PostgreSQL: the partial index of that name, `INCLUDE
    /// (secret_sha256)`).
    fn active_device_secret_hash_or(
        &self,
        device_id: &str,
        decoy: &[u8; 32],
    ) -> Result<([u8; 32], bool), StoreError>;

    /// Stores a new session as given (id already made), with the next sequence number. One
    /// insert. `Conflict` when the session id exists; refused (nothing written) when its
    /// relying party or device is not stored.
    fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// Stores a new session unless it would be RUNNING and its relying party already has
    /// `max_running` sessions running (unexpired at `now`) for its device; a session without
    /// a device or complete from the start is stored as [`MobileStore::insert_session`] does.
    ///
    /// The count and the insert are one transaction, serialised per device (SQLite: the
    /// write lock of `BEGIN IMMEDIATE`; PostgreSQL: a row lock on the device, `SELECT … FROM
    /// mss_devices WHERE device_id = $1 FOR NO KEY UPDATE`, before the count — a count at READ
    /// COMMITTED without it lets concurrent requests pass the cap together). Of concurrent
    /// requests when `n` places are free, exactly `n` are stored and every other gets
    /// [`Stored::TooManyRunning`].
    fn insert_session_within(
        &self,
        session: &SessionRecord,
        max_running: u32,
        now: OffsetDateTime,
    ) -> Result<Stored, StoreError>;

    /// A session as it is at `now`. A RUNNING one past its expiry is settled first, by one
    /// write conditioned on its still running: complete at its `expires_at` with
    /// [`sessions::result_on_expiry`] of the `delivered_at` the row has when the write applies
    /// (TIMEOUT when the phone fetched it, PHONE_ABSENT when it never did). The record
    /// returned is read after that write, so when a completion
    /// ([`MobileStore::complete_session`]) races the settlement, exactly one of them is
    /// stored and every caller gets that one. Reading a running, unexpired session writes
    /// nothing.
    fn session_at(
        &self,
        session_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// The RUNNING sessions of a device unexpired at `now` (`expires_at > now`), at most
    /// `max`, oldest first: by `created_at`, then in the order they were stored (their
    /// sequence number). A plain read; [`sessions::pending_sessions`] picks from it.
    fn running_sessions(
        &self,
        device_id: &str,
        now: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Marks these sessions delivered at `at`, each only if it never was (its first delivery
    /// time stays); ids not stored are skipped. One transaction; concurrent marks of one
    /// session are serialised on its row and the first applied wins.
    fn mark_delivered(&self, session_ids: &[&str], at: OffsetDateTime) -> Result<(), StoreError>;

    /// Completes a session that is RUNNING and not expired at `completion.completed_at`
    /// (marking it delivered then if it never was); `Ok(false)`, nothing written, when it is
    /// complete already or expired. One write conditioned on the session still running, as is
    /// every write that ends a session (an expiry settlement in [`MobileStore::session_at`] or
    /// [`MobileStore::purge_sessions`], a deactivation): of concurrent ones exactly one takes
    /// effect, and a completion that loses gets `Ok(false)`.
    fn complete_session(
        &self,
        session_id: &str,
        completion: &SessionCompletion,
    ) -> Result<bool, StoreError>;

    /// The clean-up: settles sessions left RUNNING past their expiry as
    /// [`MobileStore::session_at`] would, deletes the sessions complete before
    /// `complete_before` (they hold personal data: hashes and display texts) and those stored
    /// without a device (refused with NOT_MOBILE_CLIENT at creation) that expired by `now`.
    /// Returns how many were deleted.
    ///
    /// Not one transaction: rounds of at most `batch` rows per statement, each statement its
    /// own short transaction, at most `max_batches` rounds, so live sessions are never held up
    /// behind a large clean-up. Concurrent clean-ups may interleave; each row is deleted once,
    /// so their counts add up to the rows deleted. A settlement racing a completion is
    /// conditioned as in [`MobileStore::complete_session`].
    fn purge_sessions(
        &self,
        now: OffsetDateTime,
        complete_before: OffsetDateTime,
        batch: usize,
        max_batches: usize,
    ) -> Result<usize, StoreError>;

    /// The sessions of every device, active or not, registered with `national_id` — those
    /// its certificates answered or were asked to, whatever relying party asked — newest first
    /// (by sequence number), at most `limit`: the citizen portal's "who used my
    /// certificates". A plain read (indexes `mss_devices_of_national_id` and
    /// `mss_sessions_of_device`); sessions are as stored (one past its expiry and never
    /// settled reads as running). Purged sessions are gone from it.
    fn sessions_of_national_id(
        &self,
        national_id: &str,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn assert_send_sync<T: Send + Sync + ?Sized>() {}

    #[test]
    fn the_store_is_shared_between_threads_as_a_trait_object() {
        assert_send_sync::<dyn MobileStore>();
        assert_send_sync::<Arc<dyn MobileStore>>();
        assert_send_sync::<SqliteMobileStore>();
        assert_send_sync::<PgMobileStore>();
    }
}
