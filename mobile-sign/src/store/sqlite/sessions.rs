//! The sessions' statements on the sessions connection. Each change is one short statement or
//! one `BEGIN IMMEDIATE` transaction, and each completion is conditioned on the session still
//! running, so two answers racing cannot both complete it.

use imza_store::sqlite::{error as db_error, violated};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use crate::store::rows::{
    self, expiry_results, from_millis, millis, PurgeRound, SessionRow, SessionValues,
    SESSION_COLUMNS,
};
use crate::store::sessions::{SessionCompletion, SessionRecord, Stored};
use crate::store::StoreError;

/// Settles RUNNING sessions past their expiry, `condition` picking them (`…` in
/// `WHERE completed_at IS NULL AND …`): complete at their expiry, with the result of
/// [`expiry_results`] for the `delivered_at` the row has as it is written (`?2` never
/// delivered, `?3` delivered).
fn settle_expired(condition: &str) -> String {
    format!(
        "UPDATE mss_sessions SET completed_at = expires_at, \
         result = CASE WHEN delivered_at IS NULL THEN ?2 ELSE ?3 END \
         WHERE completed_at IS NULL AND {condition}"
    )
}

/// Inserts a session through `conn` (a connection or a transaction), numbered one past the
/// highest sequence number stored (read under the statement's write lock, from the unique
/// index on `seq`).
pub(super) fn insert(conn: &Connection, session: &SessionRecord) -> Result<(), StoreError> {
    let values = SessionValues::of(session);
    conn.prepare_cached(
        "INSERT INTO mss_sessions (session_id, relying_party, device_id, kind, hash, \
         hash_type, display_text, language, created_at, expires_at, delivered_at, \
         completed_at, result, signature, signature_algorithm, cert, seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
         (SELECT COALESCE(MAX(seq), 0) + 1 FROM mss_sessions))",
    )
    .map_err(db_error)?
    .execute(params![
        session.session_id,
        session.relying_party,
        session.device_id,
        values.kind,
        session.hash,
        values.hash_type,
        session.display_text,
        values.language,
        values.created_at,
        values.expires_at,
        values.delivered_at,
        values.completed_at,
        values.result,
        values.signature,
        values.signature_algorithm,
        values.cert,
    ])
    .map_err(|e| rows::session_insert_error(violated(&e), db_error(e), session))?;
    Ok(())
}

/// See [`crate::store::MobileStore::insert_session_within`].
pub(super) fn insert_within(
    conn: &mut Connection,
    session: &SessionRecord,
    max_running: u32,
    now: OffsetDateTime,
) -> Result<Stored, StoreError> {
    let (Some(device_id), None) = (&session.device_id, &session.completion) else {
        insert(conn, session)?;
        return Ok(Stored::Stored);
    };
    // Immediate: the count and the insert under one write lock, so that concurrent requests,
    // from this process or another on the same file, cannot together pass the cap.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    // A device's running sessions are few (this cap times the relying parties): the partial
    // index mss_sessions_device_running holds exactly them.
    let (running, first_expiry): (i64, Option<i64>) = tx
        .prepare_cached(
            "SELECT COUNT(*), MIN(expires_at) FROM mss_sessions \
             WHERE device_id = ?1 AND completed_at IS NULL AND expires_at > ?2 \
             AND relying_party = ?3",
        )
        .map_err(db_error)?
        .query_row(
            params![device_id, millis(now), session.relying_party],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(db_error)?;
    if running >= i64::from(max_running) {
        return Ok(Stored::TooManyRunning {
            running: u32::try_from(running).unwrap_or(u32::MAX),
            first_expiry: first_expiry
                .map(|ms| from_millis(ms, "expires_at"))
                .transpose()?
                .unwrap_or(now),
        });
    }
    insert(&tx, session)?;
    tx.commit().map_err(db_error)?;
    Ok(Stored::Stored)
}

/// See [`crate::store::MobileStore::session_at`].
pub(super) fn at(
    conn: &Connection,
    session_id: &str,
    now: OffsetDateTime,
) -> Result<Option<SessionRecord>, StoreError> {
    let Some(session) = select_session(conn, session_id)? else {
        return Ok(None);
    };
    if session.completion.is_some() || session.expires_at > now {
        // Only an expired one is written: a plain read takes no write lock.
        return Ok(Some(session));
    }
    let (absent, timeout) = expiry_results();
    conn.prepare_cached(&settle_expired("session_id = ?1"))
        .map_err(db_error)?
        .execute(params![session_id, absent, timeout])
        .map_err(db_error)?;
    // Re-read: an answer may have completed it between the two statements (another process
    // writing the same file).
    select_session(conn, session_id)?
        .ok_or_else(|| StoreError::Corrupt(format!("session {session_id} vanished while expiring")))
        .map(Some)
}

/// See [`crate::store::MobileStore::running_sessions`]. Ordered by `created_at`, then `seq`:
/// the partial index mss_sessions_device_running (migration 0003) holds them in that order.
pub(super) fn running(
    conn: &Connection,
    device_id: &str,
    now: OffsetDateTime,
    max: usize,
) -> Result<Vec<SessionRecord>, StoreError> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM mss_sessions \
             WHERE device_id = ?1 AND completed_at IS NULL AND expires_at > ?2 \
             ORDER BY created_at, seq LIMIT ?3"
        ))
        .map_err(db_error)?;
    let rows = statement
        .query_map(
            params![device_id, millis(now), rows::sql_limit(max)],
            session_row,
        )
        .map_err(db_error)?;
    rows.map(|r| r.map_err(db_error).and_then(|session| session))
        .collect()
}

/// See [`crate::store::MobileStore::sessions_of_national_id`].
pub(super) fn of_national_id(
    conn: &Connection,
    national_id: &str,
    limit: usize,
) -> Result<Vec<SessionRecord>, StoreError> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM mss_sessions WHERE device_id IN \
             (SELECT device_id FROM mss_devices WHERE national_id = ?1) \
             ORDER BY seq DESC LIMIT ?2"
        ))
        .map_err(db_error)?;
    let rows = statement
        .query_map(params![national_id, rows::sql_limit(limit)], session_row)
        .map_err(db_error)?;
    rows.map(|r| r.map_err(db_error).and_then(|session| session))
        .collect()
}

/// See [`crate::store::MobileStore::mark_delivered`].
pub(super) fn mark_delivered(
    conn: &mut Connection,
    session_ids: &[&str],
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    if session_ids.is_empty() {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    {
        let mut statement = tx
            .prepare_cached(
                "UPDATE mss_sessions SET delivered_at = ?2 \
                 WHERE session_id = ?1 AND delivered_at IS NULL",
            )
            .map_err(db_error)?;
        for session_id in session_ids {
            statement
                .execute(params![session_id, millis(at)])
                .map_err(db_error)?;
        }
    }
    tx.commit().map_err(db_error)
}

/// See [`crate::store::MobileStore::complete_session`].
pub(super) fn complete(
    conn: &Connection,
    session_id: &str,
    completion: &SessionCompletion,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE mss_sessions SET completed_at = ?2, result = ?3, signature = ?4, \
             signature_algorithm = ?5, cert = ?6, delivered_at = COALESCE(delivered_at, ?2) \
             WHERE session_id = ?1 AND completed_at IS NULL AND expires_at > ?2",
        )
        .map_err(db_error)?
        .execute(params![
            session_id,
            millis(completion.completed_at),
            completion.result.name(),
            completion.signature,
            completion.signature_algorithm,
            completion.cert,
        ])
        .map_err(db_error)?;
    Ok(changed == 1)
}

/// One round of [`crate::store::MobileStore::purge_sessions`]: three statements of at most
/// `batch` rows each, each its own transaction. Rows are picked by `session_id`, the key every
/// engine has.
pub(super) fn purge_round(
    conn: &Connection,
    now: OffsetDateTime,
    complete_before: OffsetDateTime,
    batch: i64,
) -> Result<PurgeRound, StoreError> {
    let now_ms = millis(now);
    let (absent, timeout) = expiry_results();
    let ended = conn
        .execute(
            &settle_expired(
                "session_id IN (SELECT session_id FROM mss_sessions \
                 WHERE completed_at IS NULL AND expires_at <= ?1 LIMIT ?4)",
            ),
            params![now_ms, absent, timeout, batch],
        )
        .map_err(db_error)?;
    let removed = conn
        .execute(
            "DELETE FROM mss_sessions WHERE session_id IN (SELECT session_id FROM mss_sessions \
             WHERE completed_at IS NOT NULL AND completed_at < ?1 LIMIT ?2)",
            params![millis(complete_before), batch],
        )
        .map_err(db_error)?;
    // Refused at creation (NOT_MOBILE_CLIENT, no device): gone once expired.
    let refused = conn
        .execute(
            "DELETE FROM mss_sessions WHERE session_id IN (SELECT session_id FROM mss_sessions \
             INDEXED BY mss_sessions_refused_expiry \
             WHERE device_id IS NULL AND expires_at <= ?1 LIMIT ?2)",
            params![now_ms, batch],
        )
        .map_err(db_error)?;
    Ok(PurgeRound {
        deleted: removed + refused,
        full: [ended, removed, refused]
            .iter()
            .any(|&n| i64::try_from(n).unwrap_or(i64::MAX) >= batch),
    })
}

fn select_session(
    conn: &Connection,
    session_id: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM mss_sessions WHERE session_id = ?1"
    ))
    .map_err(db_error)?
    .query_row([session_id], session_row)
    .optional()
    .map_err(db_error)?
    .transpose()
}

/// Reads [`SESSION_COLUMNS`]; the inner `Result` is a stored value that cannot be read back.
fn session_row(row: &Row<'_>) -> rusqlite::Result<Result<SessionRecord, StoreError>> {
    Ok(SessionRow {
        session_id: row.get(0)?,
        relying_party: row.get(1)?,
        device_id: row.get(2)?,
        kind: row.get(3)?,
        hash: row.get(4)?,
        hash_type: row.get(5)?,
        display_text: row.get(6)?,
        language: row.get(7)?,
        created_at: row.get(8)?,
        expires_at: row.get(9)?,
        delivered_at: row.get(10)?,
        completed_at: row.get(11)?,
        result: row.get(12)?,
        signature: row.get(13)?,
        signature_algorithm: row.get(14)?,
        cert: row.get(15)?,
    }
    .into_record())
}
