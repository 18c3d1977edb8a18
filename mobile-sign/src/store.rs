//! The service's records in the CA store's SQLite file (`<data dir>/imza.db`): relying parties
//! with the SHA-256 of their API key, registered devices (phone number, national identity
//! number, SHA-256 of the device secret, the authentication and signing certificates and the
//! CA that issued each) and sessions ([`sessions`]).
//!
//! The tables are named `mss_*` and versioned in their own `mss_schema_migrations`, so the CA's
//! tables and its `schema_migrations` are never touched. Like the CA store the file is in WAL
//! mode with a busy timeout, and every write is one `BEGIN IMMEDIATE` transaction.
//!
//! Two connections: relying parties and devices are written through one with
//! `synchronous=FULL` (a registration that was answered survives a power cut), sessions
//! through one with `synchronous=NORMAL` (see [`MobileStore::open`] for why).

pub mod sessions;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use der::{Decode, Encode};
use rusqlite::{ffi, params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use imza_core::clock::from_x509_time;
use imza_core::KeyAlgorithm;

use crate::protocol::{check_national_id, check_phone_number, check_relying_party_name};
use crate::protocol::{SessionKind, SessionResult};

pub use sessions::{SessionCompletion, SessionRecord, Stored};

/// Migrations in order: (version, SQL), each applied once in its own transaction and recorded
/// in `mss_schema_migrations`. Never edit a released one; add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("store/migrations/0001_initial.sql")),
    (
        2,
        include_str!("store/migrations/0002_equal_work_and_short_lived_refusals.sql"),
    ),
    (
        3,
        include_str!("store/migrations/0003_session_sequence.sql"),
    ),
];

/// How long a writer waits for another connection's (or process's) write lock.
const BUSY_TIMEOUT: Duration = Duration::from_millis(10_000);

/// Random bytes in an API key or a device secret.
const SECRET_BYTES: usize = 32;

/// Random bytes in a device id or a session id (128 bits: unguessable).
const ID_BYTES: usize = 16;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (a relying-party name that exists).
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// What was to be stored breaks a rule (a name, a phone number, a certificate).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A stored value cannot be read back.
    #[error("the mobile signature tables are inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Backend(String),
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

/// A device to register.
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub phone_number: String,
    pub national_id: String,
    pub auth: RegisteredCertificate,
    pub sign: RegisteredCertificate,
}

/// A registered device (its secret is never kept).
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

/// What [`MobileStore::register_device`] gives back.
pub struct DeviceRegistration {
    pub device_id: String,
    /// Shown once (the phone keeps it); only its SHA-256 is stored.
    pub device_secret: Zeroizing<String>,
    /// The device this one replaced (same phone number), now deactivated: revoke its
    /// certificates.
    pub replaced: Option<Device>,
}

impl std::fmt::Debug for DeviceRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRegistration")
            .field("device_id", &self.device_id)
            .field("replaced", &self.replaced)
            .finish_non_exhaustive()
    }
}

/// The service's tables in one SQLite file. `Send + Sync`: each connection is behind a mutex.
pub struct MobileStore {
    /// Relying parties and devices, `synchronous=FULL`.
    registry: Mutex<Connection>,
    /// Sessions, `synchronous=NORMAL`.
    sessions: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for MobileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MobileStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A relying party's key hash (`?1` the name) or the decoy (`?2`), and whether it was found:
/// one row either way, the hash read from the covering index (INDEXED BY: an error rather
/// than a silent visit to the table if the index were missing).
const RELYING_PARTY_KEY_HASH: &str = "SELECT api_key_sha256, 1 FROM mss_relying_parties \
     INDEXED BY mss_relying_parties_key WHERE name = ?1 UNION ALL SELECT ?2, 0 LIMIT 1";

/// An active device's secret hash (`?1` the id) or the decoy (`?2`), as
/// [`RELYING_PARTY_KEY_HASH`].
const DEVICE_SECRET_HASH: &str = "SELECT secret_sha256, 1 FROM mss_devices \
     INDEXED BY mss_devices_active_secret WHERE device_id = ?1 AND deactivated_at IS NULL \
     UNION ALL SELECT ?2, 0 LIMIT 1";

const DEVICE_COLUMNS: &str = "device_id, phone_number, national_id, auth_ca, auth_der, \
     sign_ca, sign_der, registered_at";

impl MobileStore {
    /// Opens (creating/migrating the mss_* tables in) the SQLite file at `path` — the CA
    /// store's imza.db.
    ///
    /// Sessions are written through their own connection with `synchronous=NORMAL`: in WAL
    /// mode that loses nothing when `imza serve` crashes or restarts (the WAL is in the OS's
    /// hands at each commit); only a power cut or an OS crash can lose the last commits, and a
    /// session is minutes of work a relying party repeats. It saves the fsync of each of the
    /// three to four writes of every session, which is what lets one machine carry a thousand
    /// sessions at once. Relying parties and devices keep `synchronous=FULL`: an API key or a
    /// device secret that was handed out must still work after a power cut.
    pub fn open(path: &Path) -> Result<MobileStore, StoreError> {
        let mut registry = connect(path, "FULL")?;
        migrate(&mut registry)?;
        let sessions = connect(path, "NORMAL")?;
        Ok(MobileStore {
            registry: Mutex::new(registry),
            sessions: Mutex::new(sessions),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn registry(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held dropped its `Transaction`, which rolled back: the
        // connection is usable.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sessions_connection(&self) -> MutexGuard<'_, Connection> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a relying party (name checked with `protocol::check_relying_party_name`);
    /// returns its new API key (32 random bytes, base64url without padding), shown once; only
    /// its SHA-256 is stored. Conflict if the name exists.
    pub fn add_relying_party(
        &self,
        name: &str,
        at: OffsetDateTime,
    ) -> Result<Zeroizing<String>, StoreError> {
        check_relying_party_name(name).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let key = random_secret()?;
        let hash = openssl::sha::sha256(key.as_bytes());
        let conn = self.registry();
        conn.execute(
            "INSERT INTO mss_relying_parties (name, api_key_sha256, created_at) \
             VALUES (?1, ?2, ?3)",
            params![name, &hash[..], millis(at)],
        )
        .map_err(|e| match violated_unique(&e) {
            true => StoreError::Conflict(format!("relying party {name}")),
            false => db_error(e),
        })?;
        Ok(key)
    }

    /// Every relying party, by name.
    pub fn relying_parties(&self) -> Result<Vec<RelyingParty>, StoreError> {
        let conn = self.registry();
        let mut statement = conn
            .prepare("SELECT name, created_at FROM mss_relying_parties ORDER BY name")
            .map_err(db_error)?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(db_error)?;
        rows.map(|row| {
            let (name, created_at) = row.map_err(db_error)?;
            Ok(RelyingParty {
                name,
                created_at: from_millis(created_at, "created_at")?,
            })
        })
        .collect()
    }

    /// The SHA-256 of a relying party's API key and `true`, or `decoy` and `false` for an
    /// unknown name. Both come from one statement that yields one row of the same shape
    /// either way, and the stored hash is read from the covering index
    /// `mss_relying_parties_key` (migration 2): a known name costs the same work as an unknown
    /// one, so the time of a 401 does not tell which names exist.
    pub fn relying_party_key_hash_or(
        &self,
        name: &str,
        decoy: &[u8; 32],
    ) -> Result<([u8; 32], bool), StoreError> {
        let conn = self.registry();
        secret_hash_or(&conn, RELYING_PARTY_KEY_HASH, name, decoy, "api_key_sha256")
    }

    /// Registers a device for `device.phone_number` and returns its new id and secret (secret
    /// shown once, SHA-256 stored). An active device of the same phone number is deactivated
    /// in the same transaction and returned in `replaced` (the CLI revokes its certificates).
    /// Its RUNNING sessions end with NOT_MOBILE_CLIENT.
    pub fn register_device(
        &self,
        device: &NewDevice,
        at: OffsetDateTime,
    ) -> Result<DeviceRegistration, StoreError> {
        check_phone_number(&device.phone_number).map_err(|e| StoreError::Invalid(e.to_string()))?;
        check_national_id(&device.national_id).map_err(|e| StoreError::Invalid(e.to_string()))?;
        for (which, cert) in [("authentication", &device.auth), ("signing", &device.sign)] {
            cert.details()
                .map_err(|e| StoreError::Invalid(format!("the {which} certificate: {e}")))?;
            if cert.ca.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "the {which} certificate has no issuing CA name"
                )));
            }
        }
        let device_id = random_id()?;
        let secret = random_secret()?;
        let secret_hash = openssl::sha::sha256(secret.as_bytes());
        let now = millis(at);

        let mut conn = self.registry();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let replaced = tx
            .query_row(
                &format!(
                    "SELECT {DEVICE_COLUMNS} FROM mss_devices \
                     WHERE phone_number = ?1 AND deactivated_at IS NULL"
                ),
                [&device.phone_number],
                device_row,
            )
            .optional()
            .map_err(db_error)?
            .transpose()?;
        if let Some(old) = &replaced {
            deactivate(&tx, &old.device_id, now)?;
        }
        tx.execute(
            "INSERT INTO mss_devices (device_id, phone_number, national_id, secret_sha256, \
             auth_ca, auth_der, sign_ca, sign_der, registered_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                device_id,
                device.phone_number,
                device.national_id,
                &secret_hash[..],
                device.auth.ca,
                device.auth.der,
                device.sign.ca,
                device.sign.der,
                now
            ],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        Ok(DeviceRegistration {
            device_id,
            device_secret: secret,
            replaced,
        })
    }

    /// Deactivates a device (the CLI's rollback when something after registration fails);
    /// its RUNNING sessions end with NOT_MOBILE_CLIENT. NotFound when no active device has
    /// this id.
    pub fn deactivate_device(&self, device_id: &str) -> Result<(), StoreError> {
        self.deactivate_device_at(device_id, OffsetDateTime::now_utc())
    }

    /// [`MobileStore::deactivate_device`] at a given time.
    pub fn deactivate_device_at(
        &self,
        device_id: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.registry();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        if !deactivate(&tx, device_id, millis(at))? {
            return Err(StoreError::NotFound(format!("active device {device_id}")));
        }
        tx.commit().map_err(db_error)
    }

    /// The active device of a phone number.
    pub fn device_for_phone(&self, phone_number: &str) -> Result<Option<Device>, StoreError> {
        let conn = self.registry();
        conn.query_row(
            &format!(
                "SELECT {DEVICE_COLUMNS} FROM mss_devices \
                 WHERE phone_number = ?1 AND deactivated_at IS NULL"
            ),
            [phone_number],
            device_row,
        )
        .optional()
        .map_err(db_error)?
        .transpose()
    }

    /// A device by id, active or not.
    pub fn device(&self, device_id: &str) -> Result<Option<Device>, StoreError> {
        let conn = self.registry();
        conn.query_row(
            &format!("SELECT {DEVICE_COLUMNS} FROM mss_devices WHERE device_id = ?1"),
            [device_id],
            device_row,
        )
        .optional()
        .map_err(db_error)?
        .transpose()
    }

    /// The SHA-256 of an active device's secret and `true`, or `decoy` and `false` when no
    /// active device has this id; the same work either way, as
    /// [`MobileStore::relying_party_key_hash_or`] (index `mss_devices_active_secret`).
    pub fn active_device_secret_hash_or(
        &self,
        device_id: &str,
        decoy: &[u8; 32],
    ) -> Result<([u8; 32], bool), StoreError> {
        let conn = self.registry();
        secret_hash_or(&conn, DEVICE_SECRET_HASH, device_id, decoy, "secret_sha256")
    }

    /// An active device by id.
    pub fn active_device(&self, device_id: &str) -> Result<Option<Device>, StoreError> {
        let conn = self.registry();
        conn.query_row(
            &format!(
                "SELECT {DEVICE_COLUMNS} FROM mss_devices \
                 WHERE device_id = ?1 AND deactivated_at IS NULL"
            ),
            [device_id],
            device_row,
        )
        .optional()
        .map_err(db_error)?
        .transpose()
    }
}

/// Runs one of the `..._hash_or` statements: `?1` the name or id, `?2` the decoy; the row is
/// (hash, found).
fn secret_hash_or(
    conn: &Connection,
    sql: &str,
    key: &str,
    decoy: &[u8; 32],
    column: &str,
) -> Result<([u8; 32], bool), StoreError> {
    let (hash, found): (Vec<u8>, bool) = conn
        .prepare_cached(sql)
        .map_err(db_error)?
        .query_row(params![key, &decoy[..]], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .map_err(db_error)?;
    Ok((sha256_value(hash, column)?, found))
}

/// Deactivates an active device and ends its running sessions; false if it was not active.
fn deactivate(
    tx: &rusqlite::Transaction<'_>,
    device_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = tx
        .execute(
            "UPDATE mss_devices SET deactivated_at = ?2 \
             WHERE device_id = ?1 AND deactivated_at IS NULL",
            params![device_id, now],
        )
        .map_err(db_error)?;
    if changed == 0 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE mss_sessions SET completed_at = ?2, result = ?3 \
         WHERE device_id = ?1 AND completed_at IS NULL",
        params![device_id, now, SessionResult::NotMobileClient.name()],
    )
    .map_err(db_error)?;
    Ok(true)
}

/// Reads a device from the first eight columns of [`DEVICE_COLUMNS`]. The outer `Result` is
/// rusqlite's, the inner one a value that cannot be read back.
fn device_row(row: &Row<'_>) -> rusqlite::Result<Result<Device, StoreError>> {
    let registered_at: i64 = row.get(7)?;
    let device = Device {
        device_id: row.get(0)?,
        phone_number: row.get(1)?,
        national_id: row.get(2)?,
        auth: RegisteredCertificate {
            ca: row.get(3)?,
            der: row.get(4)?,
        },
        sign: RegisteredCertificate {
            ca: row.get(5)?,
            der: row.get(6)?,
        },
        registered_at: OffsetDateTime::UNIX_EPOCH,
    };
    Ok(
        from_millis(registered_at, "registered_at").map(|registered_at| Device {
            registered_at,
            ..device
        }),
    )
}

fn connect(path: &Path, synchronous: &str) -> Result<Connection, StoreError> {
    let opening = |e: rusqlite::Error| match db_error(e) {
        StoreError::Backend(m) => {
            StoreError::Backend(format!("cannot open {}: {m}", path.display()))
        }
        StoreError::Corrupt(m) => StoreError::Corrupt(format!("{}: {m}", path.display())),
        other => other,
    };
    let conn = Connection::open(path).map_err(opening)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(opening)?;
    // The first statement that reads the file: a file that is not a database fails here.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(opening)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "cannot open {}: the database refused WAL journal mode (it is in {mode} mode)",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", synchronous)
        .and_then(|()| conn.pragma_update(None, "foreign_keys", true))
        .map_err(opening)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS mss_schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(db_error)?;
    let newest_known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    for (version, sql) in MIGRATIONS {
        // Immediate: two processes opening a fresh file at once must not both apply it.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let newest_applied: Option<i64> = tx
            .query_row("SELECT MAX(version) FROM mss_schema_migrations", [], |r| {
                r.get(0)
            })
            .map_err(db_error)?;
        if let Some(applied) = newest_applied.filter(|v| *v > newest_known) {
            return Err(StoreError::Corrupt(format!(
                "the mobile signature tables have schema version {applied}, newer than this \
                 imza knows ({newest_known}); use a newer imza"
            )));
        }
        let done: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM mss_schema_migrations WHERE version = ?1)",
                [version],
                |r| r.get(0),
            )
            .map_err(db_error)?;
        if done {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| {
            StoreError::Backend(format!(
                "mobile signature schema migration {version} failed: {e}"
            ))
        })?;
        tx.execute(
            "INSERT INTO mss_schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, OffsetDateTime::now_utc().unix_timestamp()],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
    }
    Ok(())
}

/// Maps a database error: damage and unreadable values are `Corrupt`, the rest `Backend`.
fn db_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
        {
            StoreError::Corrupt(e.to_string())
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(format!("unreadable value: {e}")),
        _ => StoreError::Backend(e.to_string()),
    }
}

fn violated_unique(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::ConstraintViolation
            && matches!(f.extended_code, ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE))
}

fn sha256_value(bytes: Vec<u8>, column: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("{column} has {} bytes, not 32", bytes.len())))
}

/// Unix milliseconds, the unit of every time column.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_millis(ms: i64, column: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| StoreError::Corrupt(format!("{column} {ms} is not a valid time")))
}

fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    openssl::rand::rand_bytes(&mut bytes)
        .map_err(|e| StoreError::Backend(format!("no random bytes from OpenSSL: {e}")))?;
    Ok(bytes)
}

/// A new API key or device secret: 32 random bytes, base64url without padding.
fn random_secret() -> Result<Zeroizing<String>, StoreError> {
    let bytes = random_bytes(SECRET_BYTES)?;
    Ok(Zeroizing::new(Base64UrlUnpadded::encode_string(&bytes)))
}

/// A new device or session id: 16 random bytes in lower-case hex (safe in a URL path and in
/// an HTTP Basic user name).
pub(crate) fn random_id() -> Result<String, StoreError> {
    Ok(hex::encode(random_bytes(ID_BYTES)?.as_slice()))
}

/// Whether `id` has the shape of the ids [`random_id`] makes (checked before any lookup).
pub fn is_well_formed_id(id: &str) -> bool {
    id.len() == ID_BYTES * 2 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{HashType, Language};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);

    fn assert_send_sync<T: Send + Sync>() {}

    fn session(id: &str, expires_at: OffsetDateTime) -> SessionRecord {
        SessionRecord {
            session_id: id.into(),
            relying_party: "gov.az".into(),
            device_id: None,
            kind: SessionKind::Signature,
            hash: vec![7; 32],
            hash_type: HashType::Sha256,
            display_text: Some("ünicode text".into()),
            language: Language::Aze,
            created_at: NOW,
            expires_at,
            delivered_at: None,
            completion: None,
        }
    }

    fn store() -> (tempfile::TempDir, MobileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = MobileStore::open(&dir.path().join("imza.db")).unwrap();
        store.add_relying_party("gov.az", NOW).unwrap();
        (dir, store)
    }

    #[test]
    fn the_store_is_shared_between_threads() {
        assert_send_sync::<MobileStore>();
    }

    #[test]
    fn a_session_completes_once_and_not_after_its_expiry() {
        let (_dir, store) = store();
        let expires = NOW + time::Duration::minutes(5);
        store.insert_session(&session("a", expires)).unwrap();
        store.insert_session(&session("b", expires)).unwrap();
        let refused = SessionCompletion::without_signature(SessionResult::UserRefused, NOW);
        assert!(store.complete_session("a", &refused).unwrap());
        let blocked = SessionCompletion::without_signature(SessionResult::PinBlocked, NOW);
        assert!(!store.complete_session("a", &blocked).unwrap());
        let a = store.session_at("a", NOW).unwrap().unwrap();
        assert_eq!(a.completion.unwrap().result, SessionResult::UserRefused);
        assert_eq!(a.display_text.as_deref(), Some("ünicode text"));
        let late = SessionCompletion::without_signature(SessionResult::UserRefused, expires);
        assert!(!store.complete_session("b", &late).unwrap());
        assert!(store.session_at("missing", NOW).unwrap().is_none());
    }

    #[test]
    fn expiry_is_settled_once_and_stored() {
        let (dir, store) = store();
        let expires = NOW + time::Duration::minutes(5);
        store.insert_session(&session("a", expires)).unwrap();
        store.insert_session(&session("b", expires)).unwrap();
        // "b" is fetched by its (absent from this test) device: mark it delivered by hand.
        store
            .sessions_connection()
            .execute(
                "UPDATE mss_sessions SET delivered_at = ?1 WHERE session_id = 'b'",
                [millis(NOW)],
            )
            .unwrap();
        let later = expires + time::Duration::seconds(1);
        let a = store.session_at("a", later).unwrap().unwrap();
        assert_eq!(
            a.completion.as_ref().unwrap().result,
            SessionResult::PhoneAbsent
        );
        assert_eq!(a.completion.unwrap().completed_at, expires);
        // Another store on the file (a restarted service) reads the stored verdict, even at
        // a time before the expiry.
        let reopened = MobileStore::open(&dir.path().join("imza.db")).unwrap();
        let a = reopened.session_at("a", NOW).unwrap().unwrap();
        assert_eq!(a.completion.unwrap().result, SessionResult::PhoneAbsent);
        let b = reopened.session_at("b", later).unwrap().unwrap();
        assert_eq!(b.completion.unwrap().result, SessionResult::Timeout);
    }

    #[test]
    fn purging_works_in_bounded_batches() {
        let (_dir, store) = store();
        for i in 0..25 {
            let mut s = session(&format!("s{i:02}"), NOW + time::Duration::minutes(5));
            s.completion = Some(SessionCompletion::without_signature(
                SessionResult::NotMobileClient,
                NOW,
            ));
            store.insert_session(&s).unwrap();
        }
        // Before the sessions expire, so that only their completion time counts.
        let later = NOW + time::Duration::minutes(1);
        // 2 batches of 10: 20 deleted, 5 left for the next round.
        assert_eq!(
            store
                .purge_sessions(later, NOW + time::Duration::seconds(1), 10, 2)
                .unwrap(),
            20
        );
        assert_eq!(
            store
                .purge_sessions(later, NOW + time::Duration::seconds(1), 10, 2)
                .unwrap(),
            5
        );
        // Sessions complete after the cut-off stay.
        store
            .insert_session(&session("young", NOW + time::Duration::minutes(5)))
            .unwrap();
        assert_eq!(store.purge_sessions(later, NOW, 10, 2).unwrap(), 0);
    }

    #[test]
    fn sessions_refused_at_creation_go_once_expired_not_a_day_later() {
        let (_dir, store) = store();
        let expires = NOW + time::Duration::minutes(5);
        for i in 0..3 {
            let mut s = session(&format!("r{i}"), expires);
            s.completion = Some(SessionCompletion::without_signature(
                SessionResult::NotMobileClient,
                NOW,
            ));
            store.insert_session(&s).unwrap();
        }
        let day_ago = NOW - time::Duration::days(1);
        let before = expires - time::Duration::seconds(1);
        assert_eq!(store.purge_sessions(before, day_ago, 10, 2).unwrap(), 0);
        assert!(store.session_at("r0", before).unwrap().is_some());
        assert_eq!(store.purge_sessions(expires, day_ago, 10, 2).unwrap(), 3);
        assert!(store.session_at("r0", expires).unwrap().is_none());
    }

    #[test]
    fn a_newer_schema_or_a_file_that_is_no_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imza.db");
        drop(MobileStore::open(&path).unwrap());
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO mss_schema_migrations (version, applied_at) VALUES (99, 0)",
                [],
            )
            .unwrap();
        let newer = MobileStore::open(&path).unwrap_err();
        assert!(
            matches!(newer, StoreError::Corrupt(ref m) if m.contains("99")),
            "{newer}"
        );

        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
        let error = MobileStore::open(&junk).unwrap_err();
        assert!(error.to_string().contains("junk.db"), "{error}");
    }

    #[test]
    fn registration_checks_what_it_stores() {
        let (_dir, store) = store();
        let junk = RegisteredCertificate {
            ca: "mobile".into(),
            der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
        };
        let device = NewDevice {
            phone_number: "+994501234567".into(),
            national_id: "1AB2C3D".into(),
            auth: junk.clone(),
            sign: junk,
        };
        let error = store.register_device(&device, NOW).unwrap_err();
        assert!(
            matches!(error, StoreError::Invalid(ref m) if m.contains("authentication")),
            "{error}"
        );
        let bad_phone = NewDevice {
            phone_number: "0501234567".into(),
            ..device
        };
        assert!(matches!(
            store.register_device(&bad_phone, NOW),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.deactivate_device_at("0123456789abcdef0123456789abcdef", NOW),
            Err(StoreError::NotFound(_))
        ));
    }

    /// What SQLite's planner does for a statement, one line per step.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = statement
            .query_map(params!["x", &[0u8; 32][..]], |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn authentication_reads_a_known_and_an_unknown_name_alike() {
        let (_dir, store) = store();
        let decoy = [0xd5; 32];
        let (stored, known) = store.relying_party_key_hash_or("gov.az", &decoy).unwrap();
        assert!(known);
        assert_ne!(stored, decoy);
        assert_eq!(
            store
                .relying_party_key_hash_or("nobody.az", &decoy)
                .unwrap(),
            (decoy, false)
        );
        assert_eq!(
            store
                .active_device_secret_hash_or("0123456789abcdef0123456789abcdef", &decoy)
                .unwrap(),
            (decoy, false)
        );
        // The stored hash comes from a covering index: no visit to the table for a known
        // name that an unknown one would not make.
        let conn = store.registry();
        let rp = plan(&conn, RELYING_PARTY_KEY_HASH);
        assert!(
            rp.contains("USING COVERING INDEX mss_relying_parties_key"),
            "{rp}"
        );
        let device = plan(&conn, DEVICE_SECRET_HASH);
        assert!(
            device.contains("USING COVERING INDEX mss_devices_active_secret"),
            "{device}"
        );
    }

    #[test]
    fn sessions_stored_before_the_sequence_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imza.db");
        // A file as an imza before migration 0003 left it, with sessions created in the same
        // millisecond in an order their ids do not sort in.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE mss_schema_migrations (version INTEGER PRIMARY KEY, \
             applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for (version, sql) in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO mss_schema_migrations VALUES (?1, 0)",
                [version],
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO mss_relying_parties VALUES ('gov.az', x'00', 0);
             INSERT INTO mss_devices (device_id, phone_number, national_id, secret_sha256, \
                 auth_ca, auth_der, sign_ca, sign_der, registered_at) \
                 VALUES ('d', '+994501234567', '1AB2C3D', x'00', 'ca', x'30', 'ca', x'30', 0);",
        )
        .unwrap();
        for id in ["m", "c", "x"] {
            conn.execute(
                "INSERT INTO mss_sessions (session_id, relying_party, device_id, kind, hash, \
                 hash_type, language, created_at, expires_at) \
                 VALUES (?1, 'gov.az', 'd', 'signature', x'07', 'SHA256', 'AZE', ?2, ?3)",
                params![id, millis(NOW), millis(NOW + time::Duration::minutes(5))],
            )
            .unwrap();
        }
        drop(conn);

        let store = MobileStore::open(&path).unwrap();
        // A new one, created in the same millisecond, comes after them.
        store
            .insert_session(&SessionRecord {
                device_id: Some("d".into()),
                ..session("a", NOW + time::Duration::minutes(5))
            })
            .unwrap();
        let order: Vec<String> = store
            .pending_sessions("d", NOW, 10)
            .unwrap()
            .into_iter()
            .map(|s| s.session_id)
            .collect();
        assert_eq!(order, ["m", "c", "x", "a"]);
    }

    #[test]
    fn ids_are_random_hex_and_checked_by_shape() {
        let a = random_id().unwrap();
        assert!(is_well_formed_id(&a));
        assert_ne!(a, random_id().unwrap());
        assert!(!is_well_formed_id("../../etc/passwd"));
        assert!(!is_well_formed_id(&a.to_uppercase()));
        assert!(!is_well_formed_id(&a[1..]));
    }
}
