//! [`MobileStore`] in the CA store's SQLite file (`<data dir>/imza.db`), the embedded default.
//!
//! The tables are named `mss_*` and versioned in their own `mss_schema_migrations`, so the CA's
//! tables and its `schema_migrations` are never touched. The file is opened and migrated by
//! imza-store as the CA's is (WAL, a busy timeout, created mode 0600). Every write that reads before it writes is one `BEGIN IMMEDIATE`
//! transaction: SQLite's single writer lock, taken at its start, is what serialises the
//! writes the trait's contract asks to be serialised, across processes on the same file too.
//!
//! Two connections: relying parties and devices are written through one with
//! `synchronous=FULL` (a registration that was answered survives a power cut), sessions
//! through one with `synchronous=NORMAL` (see [`SqliteMobileStore::open`] for why).

mod sessions;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use imza_store::sqlite::{error as db_error, migrate, open, violated, write, Durability};
use imza_store::Create;
use rusqlite::{params, Connection, OptionalExtension, Row};
use time::OffsetDateTime;

use super::rows::{self, millis, DeviceRow, DEVICE_COLUMNS};
use super::sessions::{SessionCompletion, SessionRecord, Stored, RESULT_WHEN_DEACTIVATED};
use super::{Device, MobileStore, RelyingParty, StoreError, SCHEMA_SQLITE};

/// The service's tables in one SQLite file. `Send + Sync`: each connection is behind a mutex.
pub struct SqliteMobileStore {
    /// Relying parties and devices, `synchronous=FULL`.
    registry: Mutex<Connection>,
    /// Sessions, `synchronous=NORMAL`.
    sessions: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteMobileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteMobileStore")
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

impl SqliteMobileStore {
    /// Opens (creating the file if missing, creating or migrating the mss_* tables) the SQLite
    /// file at `path` — the CA store's imza.db.
    ///
    /// Sessions are written through their own connection with `synchronous=NORMAL`: in WAL
    /// mode that loses nothing when `imza serve` crashes or restarts (the WAL is in the OS's
    /// hands at each commit); only a power cut or an OS crash can lose the last commits, and a
    /// session is minutes of work a relying party repeats. It saves the fsync of each of the
    /// three to four writes of every session, which is what lets one machine carry a thousand
    /// sessions at once. Relying parties and devices keep `synchronous=FULL`: an API key or a
    /// device secret that was handed out must still work after a power cut.
    pub fn open(path: &Path) -> Result<SqliteMobileStore, StoreError> {
        let mut registry = open(path, Create::IfMissing, Durability::Full)?;
        migrate(&mut registry, &SCHEMA_SQLITE)?;
        let sessions = open(path, Create::IfMissing, Durability::Normal)?;
        Ok(SqliteMobileStore {
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

    /// A device by `condition` on [`DEVICE_COLUMNS`] (`?1` its one parameter).
    fn device_where(&self, condition: &str, value: &str) -> Result<Option<Device>, StoreError> {
        let conn = self.registry();
        let mut statement = conn
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM mss_devices WHERE {condition}"
            ))
            .map_err(db_error)?;
        statement
            .query_row([value], device_row)
            .optional()
            .map_err(db_error)?
            .transpose()
    }
}

impl MobileStore for SqliteMobileStore {
    fn insert_relying_party(
        &self,
        name: &str,
        api_key_sha256: &[u8; 32],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let conn = self.registry();
        conn.execute(
            "INSERT INTO mss_relying_parties (name, api_key_sha256, created_at) \
             VALUES (?1, ?2, ?3)",
            params![name, &api_key_sha256[..], millis(at)],
        )
        .map_err(|e| rows::relying_party_insert_error(violated(&e), db_error(e), name))?;
        Ok(())
    }

    fn relying_parties(&self) -> Result<Vec<RelyingParty>, StoreError> {
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
                created_at: rows::from_millis(created_at, "created_at")?,
            })
        })
        .collect()
    }

    fn relying_party_key_hash_or(
        &self,
        name: &str,
        decoy: &[u8; 32],
    ) -> Result<([u8; 32], bool), StoreError> {
        let conn = self.registry();
        secret_hash_or(&conn, RELYING_PARTY_KEY_HASH, name, decoy, "api_key_sha256")
    }

    fn insert_device(
        &self,
        device: &Device,
        secret_sha256: &[u8; 32],
    ) -> Result<Option<Device>, StoreError> {
        let now = millis(device.registered_at);
        // Immediate: the write lock from the start, so that the read of the phone number's
        // active device and the writes are one serialised step across processes.
        write(&mut self.registry(), |tx| {
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
                deactivate(tx, &old.device_id, now)?;
            }
            tx.execute(
                "INSERT INTO mss_devices (device_id, phone_number, national_id, secret_sha256, \
             auth_ca, auth_der, sign_ca, sign_der, registered_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    device.device_id,
                    device.phone_number,
                    device.national_id,
                    &secret_sha256[..],
                    device.auth.ca,
                    device.auth.der,
                    device.sign.ca,
                    device.sign.der,
                    now
                ],
            )
            .map_err(|e| rows::device_insert_error(violated(&e), db_error(e), device))?;
            Ok(replaced)
        })
    }

    fn deactivate_device(&self, device_id: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        write(&mut self.registry(), |tx| {
            if !deactivate(tx, device_id, millis(at))? {
                return Err(StoreError::NotFound(format!("active device {device_id}")));
            }
            Ok(())
        })
    }

    fn device_for_phone(&self, phone_number: &str) -> Result<Option<Device>, StoreError> {
        self.device_where("phone_number = ?1 AND deactivated_at IS NULL", phone_number)
    }

    fn device(&self, device_id: &str) -> Result<Option<Device>, StoreError> {
        self.device_where("device_id = ?1", device_id)
    }

    fn active_device(&self, device_id: &str) -> Result<Option<Device>, StoreError> {
        self.device_where("device_id = ?1 AND deactivated_at IS NULL", device_id)
    }

    fn active_device_secret_hash_or(
        &self,
        device_id: &str,
        decoy: &[u8; 32],
    ) -> Result<([u8; 32], bool), StoreError> {
        let conn = self.registry();
        secret_hash_or(&conn, DEVICE_SECRET_HASH, device_id, decoy, "secret_sha256")
    }

    fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sessions::insert(&self.sessions_connection(), session)
    }

    fn insert_session_within(
        &self,
        session: &SessionRecord,
        max_running: u32,
        now: OffsetDateTime,
    ) -> Result<Stored, StoreError> {
        sessions::insert_within(&mut self.sessions_connection(), session, max_running, now)
    }

    fn session_at(
        &self,
        session_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        sessions::at(&self.sessions_connection(), session_id, now)
    }

    fn running_sessions(
        &self,
        device_id: &str,
        now: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        sessions::running(&self.sessions_connection(), device_id, now, max)
    }

    fn mark_delivered(&self, session_ids: &[&str], at: OffsetDateTime) -> Result<(), StoreError> {
        sessions::mark_delivered(&mut self.sessions_connection(), session_ids, at)
    }

    fn complete_session(
        &self,
        session_id: &str,
        completion: &SessionCompletion,
    ) -> Result<bool, StoreError> {
        sessions::complete(&self.sessions_connection(), session_id, completion)
    }

    fn sessions_of_national_id(
        &self,
        national_id: &str,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        sessions::of_national_id(&self.sessions_connection(), national_id, limit)
    }

    fn purge_sessions(
        &self,
        now: OffsetDateTime,
        complete_before: OffsetDateTime,
        batch: usize,
        max_batches: usize,
    ) -> Result<usize, StoreError> {
        let batch = rows::sql_limit(batch);
        let mut deleted = 0;
        for _ in 0..max_batches {
            // The lock is released between rounds, so live sessions are not held up behind a
            // large clean-up.
            let round =
                sessions::purge_round(&self.sessions_connection(), now, complete_before, batch)?;
            deleted += round.deleted;
            if !round.full {
                break;
            }
        }
        Ok(deleted)
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
    Ok((rows::sha256_value(hash, column)?, found))
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
        params![device_id, now, RESULT_WHEN_DEACTIVATED.name()],
    )
    .map_err(db_error)?;
    Ok(true)
}

/// Reads a device from [`DEVICE_COLUMNS`]. The outer `Result` is rusqlite's, the inner one
/// a value that cannot be read back.
fn device_row(row: &Row<'_>) -> rusqlite::Result<Result<Device, StoreError>> {
    Ok(DeviceRow {
        device_id: row.get(0)?,
        phone_number: row.get(1)?,
        national_id: row.get(2)?,
        auth_ca: row.get(3)?,
        auth_der: row.get(4)?,
        sign_ca: row.get(5)?,
        sign_der: row.get(6)?,
        registered_at: row.get(7)?,
    }
    .into_device())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::protocol::{Language, SessionKind};
    use crate::store::contract::Database;
    use crate::store::sessions::SessionRecord;
    use imza_core::alg::DigestAlgorithm;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);

    /// A fresh imza.db in a directory of its own, removed with it.
    struct SqliteDatabase {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    impl Database for SqliteDatabase {
        fn open(&self) -> Arc<dyn MobileStore> {
            Arc::new(SqliteMobileStore::open(&self.path).expect("open the store"))
        }
    }

    fn fresh() -> SqliteDatabase {
        let dir = tempfile::tempdir().expect("a tempdir");
        let path = dir.path().join("imza.db");
        SqliteDatabase { _dir: dir, path }
    }

    mod contract {
        crate::mobile_store_contract_tests!(super::fresh);
    }

    #[test]
    fn a_newer_schema_or_a_file_that_is_no_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imza.db");
        drop(SqliteMobileStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO mss_schema_migrations (version, applied_at) VALUES (99, 0)",
                [],
            )
            .unwrap();
        let newer = SqliteMobileStore::open(&path).unwrap_err();
        assert!(
            matches!(
                newer,
                StoreError::NewerSchema {
                    what: "the mobile signature tables",
                    found: 99,
                    known: 4
                }
            ),
            "{newer}"
        );

        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
        let error = SqliteMobileStore::open(&junk).unwrap_err();
        assert!(error.to_string().contains("junk.db"), "{error}");
    }

    #[test]
    fn registrations_are_written_with_full_sync_and_sessions_with_normal() {
        let database = fresh();
        let store = SqliteMobileStore::open(&database.path).unwrap();
        let synchronous = |conn: &Connection| -> i64 {
            conn.pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        // 2 is FULL, 1 NORMAL.
        assert_eq!(synchronous(&store.registry()), 2);
        assert_eq!(synchronous(&store.sessions_connection()), 1);
        let mode: String = store
            .sessions_connection()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
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
    fn authentication_reads_the_stored_hash_from_a_covering_index() {
        let database = fresh();
        let store = SqliteMobileStore::open(&database.path).unwrap();
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
        let database = fresh();
        // A file as an imza before migration 0003 left it, with sessions created in the same
        // millisecond in an order their ids do not sort in.
        let conn = Connection::open(&database.path).unwrap();
        conn.execute_batch(
            "CREATE TABLE mss_schema_migrations (version INTEGER PRIMARY KEY, \
             applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for (version, sql) in &SCHEMA_SQLITE.steps[..2] {
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

        let store = SqliteMobileStore::open(&database.path).unwrap();
        // A new one, created in the same millisecond, comes after them.
        store
            .insert_session(&SessionRecord {
                session_id: "a".into(),
                relying_party: "gov.az".into(),
                device_id: Some("d".into()),
                kind: SessionKind::Signature,
                hash: vec![7],
                hash_type: DigestAlgorithm::Sha256,
                display_text: None,
                language: Language::Aze,
                created_at: NOW,
                expires_at: NOW + time::Duration::minutes(5),
                delivered_at: None,
                completion: None,
            })
            .unwrap();
        let order: Vec<String> = store
            .running_sessions("d", NOW, 10)
            .unwrap()
            .into_iter()
            .map(|s| s.session_id)
            .collect();
        assert_eq!(order, ["m", "c", "x", "a"]);
    }
}
