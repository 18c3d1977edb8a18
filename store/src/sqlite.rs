//! The embedded engine: one SQLite file in WAL mode with a busy timeout, created mode 0600.
//! Every write transaction is `BEGIN IMMEDIATE`, so writers — threads or processes — are
//! serialised by the file lock and a reader never blocks them.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{ffi, params, Connection, ErrorCode, OpenFlags, TransactionBehavior};
use time::OffsetDateTime;

use crate::{Create, Migrations, StoreError, Violation};

/// Mode of a store file imza creates: certificates, the audit log and registrations are for
/// the user running imza only. SQLite gives the `-wal` and `-shm` files the store's mode.
const STORE_FILE_MODE: u32 = 0o600;

/// How long a writer waits for another connection's (or process's) write lock.
const BUSY_TIMEOUT: Duration = Duration::from_millis(10_000);

/// How durable a connection's commits are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a commit is on disk before it returns (survives a power cut).
    Full,
    /// `synchronous=NORMAL`: in WAL mode a commit survives a crash of the process, not of the
    /// machine; for short-lived records a client repeats (mobile signature sessions).
    Normal,
}

/// Opens the database file at `path` with WAL and a busy timeout. With [`Create::No`] a
/// missing file is `NotFound` and nothing is created.
pub fn open(path: &Path, create: Create, durability: Durability) -> Result<Connection, StoreError> {
    if create == Create::IfMissing {
        // Made here rather than by SQLite (0644), so all three files stay the user's.
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(STORE_FILE_MODE)
            .open(path);
        match created {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Backend(format!(
                    "cannot create {}: {e}",
                    path.display()
                )))
            }
        }
    }
    if std::fs::symlink_metadata(path).is_err() {
        return Err(StoreError::NotFound(format!(
            "no database at {}",
            path.display()
        )));
    }
    let opening = |e: rusqlite::Error| match error(e) {
        StoreError::Corrupt(m) => StoreError::Corrupt(format!("{}: {m}", path.display())),
        StoreError::Backend(m) => {
            StoreError::Backend(format!("cannot open {}: {m}", path.display()))
        }
        other => other,
    };
    let flags = OpenFlags::default().difference(OpenFlags::SQLITE_OPEN_CREATE);
    let conn = Connection::open_with_flags(path, flags).map_err(opening)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(opening)?;
    // Setting the journal mode is the first statement that reads the file, so a file that is
    // not a database is reported here.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(opening)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "cannot open {}: the database refused WAL journal mode (it is in {mode} mode)",
            path.display()
        )));
    }
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .and_then(|()| conn.pragma_update(None, "foreign_keys", true))
        .map_err(opening)?;
    Ok(conn)
}

/// Applies the versions of `migrations` not applied yet, each in its own immediate
/// transaction (two processes opening a fresh file at once do not both apply one). A schema
/// newer than the binary is refused before anything is touched.
pub fn migrate(conn: &mut Connection, migrations: &Migrations) -> Result<(), StoreError> {
    let table = migrations.table;
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )"
    ))
    .map_err(error)?;
    for (version, sql) in migrations.steps {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let newest_applied: Option<i64> = tx
            .query_row(&format!("SELECT MAX(version) FROM {table}"), [], |r| {
                r.get(0)
            })
            .map_err(error)?;
        if let Some(found) = newest_applied.filter(|v| *v > migrations.newest()) {
            return Err(migrations.newer_schema(found));
        }
        let done: bool = tx
            .query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE version = ?1)"),
                [version],
                |r| r.get(0),
            )
            .map_err(error)?;
        if done {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| {
            StoreError::Backend(format!(
                "{} schema migration {version} failed: {e}",
                migrations.what
            ))
        })?;
        tx.execute(
            &format!("INSERT INTO {table} (version, applied_at) VALUES (?1, ?2)"),
            params![version, OffsetDateTime::now_utc().unix_timestamp()],
        )
        .map_err(error)?;
        tx.commit().map_err(error)?;
    }
    Ok(())
}

/// Maps an SQLite error: damage and unreadable values are `Corrupt`, the rest `Backend`.
/// Constraint violations are worded by the caller, who knows the statement ([`violated`]).
pub fn error(e: rusqlite::Error) -> StoreError {
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

/// Runs `f` in one `BEGIN IMMEDIATE` transaction on `conn` and commits; on an error nothing of
/// it stays. IMMEDIATE takes SQLite's one writer lock at the start, so a write that reads
/// first is serialised with every other writer of the file, other processes' too.
pub fn write<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error)?;
    let value = f(&tx)?;
    tx.commit().map_err(error)?;
    Ok(value)
}

/// The integrity rule a refused statement broke, if that is why it was refused.
pub fn violated(e: &rusqlite::Error) -> Option<Violation> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            match f.extended_code {
                ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE => {
                    Some(Violation::Unique)
                }
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Some(Violation::ForeignKey),
                _ => None,
            }
        }
        _ => None,
    }
}
