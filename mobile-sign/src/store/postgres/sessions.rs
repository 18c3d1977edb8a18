//! The sessions' statements on PostgreSQL. Each is one round trip (`query_typed` or
//! `execute_typed`: parsed unnamed, nothing prepared per call); each write that ends or marks a
//! session is conditioned on its state in its own `WHERE`, so that of concurrent writers the
//! first applied wins and the others change nothing (see the parent module).

use std::sync::LazyLock;

use postgres::types::Type;
use postgres::{GenericClient, Row, Transaction};
use time::OffsetDateTime;

use imza_store::postgres::{error as db_error, violated};

use super::{get, Param};
use crate::store::rows::{
    self, expiry_results, from_millis, millis, PurgeRound, SessionRow, SessionValues,
    SESSION_COLUMNS,
};
use crate::store::sessions::{SessionCompletion, SessionRecord, Stored};
use crate::store::StoreError;

/// The sixteen values of [`SESSION_COLUMNS`], `$1` to `$16`.
const SESSION_VALUES: &str =
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16";

/// Stores a session; its sequence number comes from the identity column.
static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!("INSERT INTO mss_sessions ({SESSION_COLUMNS}) VALUES ({SESSION_VALUES})")
});

/// Counts the relying party's (`$2`) running sessions of the device (`$3`) unexpired at `$17`,
/// and stores the session (`$1` to `$16`) only if they are fewer than `$18`; one row: the
/// count, the first expiry of those counted, and whether it was stored. The count and the
/// insert share one snapshot; the device's row lock, taken by an earlier statement, is what
/// keeps a concurrent creation from counting at the same time.
static INSERT_WITHIN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH running AS (SELECT COUNT(*) AS n, MIN(expires_at) AS first_expiry \
         FROM mss_sessions WHERE device_id = $3 AND completed_at IS NULL \
         AND expires_at > $17 AND relying_party = $2), \
         stored AS (INSERT INTO mss_sessions ({SESSION_COLUMNS}) \
         SELECT {SESSION_VALUES} FROM running WHERE n < $18 RETURNING 1) \
         SELECT n, first_expiry, EXISTS (SELECT 1 FROM stored) FROM running"
    )
});

static SELECT_ONE: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {SESSION_COLUMNS} FROM mss_sessions WHERE session_id = $1"));

/// Settles one RUNNING session (`$1`) at its expiry with the result for its `delivered_at`
/// as the row has it when the write applies (`$2` never delivered, `$3` delivered), and
/// returns it as stored; no row when it was no longer running.
static SETTLE_ONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE mss_sessions SET completed_at = expires_at, \
         result = CASE WHEN delivered_at IS NULL THEN $2 ELSE $3 END \
         WHERE session_id = $1 AND completed_at IS NULL RETURNING {SESSION_COLUMNS}"
    )
});

/// A device's (`$1`) running sessions unexpired at `$2`, oldest first, at most `$3`: what the
/// partial index `mss_sessions_device_running` holds, in its order.
static RUNNING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {SESSION_COLUMNS} FROM mss_sessions \
         WHERE device_id = $1 AND completed_at IS NULL AND expires_at > $2 \
         ORDER BY created_at, seq LIMIT $3"
    )
});

/// The session's values as `$1` to `$16` of [`SESSION_COLUMNS`].
fn session_params<'a>(
    session: &'a SessionRecord,
    values: &'a SessionValues<'a>,
) -> [Param<'a>; 16] {
    [
        (&session.session_id, Type::TEXT),
        (&session.relying_party, Type::TEXT),
        (&session.device_id, Type::TEXT),
        (&values.kind, Type::TEXT),
        (&session.hash, Type::BYTEA),
        (&values.hash_type, Type::TEXT),
        (&session.display_text, Type::TEXT),
        (&values.language, Type::TEXT),
        (&values.created_at, Type::INT8),
        (&values.expires_at, Type::INT8),
        (&values.delivered_at, Type::INT8),
        (&values.completed_at, Type::INT8),
        (&values.result, Type::TEXT),
        (&values.signature, Type::BYTEA),
        (&values.signature_algorithm, Type::TEXT),
        (&values.cert, Type::BYTEA),
    ]
}

/// See [`crate::store::MobileStore::insert_session`].
pub(super) fn insert(
    client: &mut impl GenericClient,
    session: &SessionRecord,
) -> Result<(), StoreError> {
    let values = SessionValues::of(session);
    client
        .execute_typed(&INSERT, &session_params(session, &values))
        .map_err(|e| rows::session_insert_error(violated(&e), db_error(e), session))?;
    Ok(())
}

/// See [`crate::store::MobileStore::insert_session_within`]: a RUNNING session of `device_id`.
pub(super) fn insert_within(
    tx: &mut Transaction<'_>,
    device_id: &str,
    session: &SessionRecord,
    max_running: u32,
    now: OffsetDateTime,
) -> Result<Stored, StoreError> {
    // The device's row lock, in a statement before the count: a creation that waited for it
    // counts in a snapshot taken after the one before it committed.
    tx.execute_typed(
        "SELECT 1 FROM mss_devices WHERE device_id = $1 FOR NO KEY UPDATE",
        &[(&device_id, Type::TEXT)],
    )
    .map_err(db_error)?;
    let values = SessionValues::of(session);
    let (now_ms, max) = (millis(now), i64::from(max_running));
    let mut params = session_params(session, &values).to_vec();
    params.push((&now_ms, Type::INT8));
    params.push((&max, Type::INT8));
    let row = tx
        .query_typed_one(&INSERT_WITHIN, &params)
        .map_err(|e| rows::session_insert_error(violated(&e), db_error(e), session))?;
    if get::<bool>(&row, 2)? {
        return Ok(Stored::Stored);
    }
    let running: i64 = get(&row, 0)?;
    let first_expiry: Option<i64> = get(&row, 1)?;
    Ok(Stored::TooManyRunning {
        running: u32::try_from(running).unwrap_or(u32::MAX),
        first_expiry: first_expiry
            .map(|ms| from_millis(ms, "expires_at"))
            .transpose()?
            .unwrap_or(now),
    })
}

/// See [`crate::store::MobileStore::session_at`].
pub(super) fn at(
    client: &mut impl GenericClient,
    session_id: &str,
    now: OffsetDateTime,
) -> Result<Option<SessionRecord>, StoreError> {
    let Some(session) = select(client, session_id)? else {
        return Ok(None);
    };
    if session.completion.is_some() || session.expires_at > now {
        // Only an expired one is written: a plain read locks nothing.
        return Ok(Some(session));
    }
    let (absent, timeout) = expiry_results();
    let settled = client
        .query_typed(
            &SETTLE_ONE,
            &[
                (&session_id, Type::TEXT),
                (&absent, Type::TEXT),
                (&timeout, Type::TEXT),
            ],
        )
        .map_err(db_error)?;
    match settled.first() {
        Some(row) => session_from(row).map(Some),
        // An answer completed it first: read what it stored.
        None => select(client, session_id)?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("session {session_id} vanished while expiring"))
            })
            .map(Some),
    }
}

/// See [`crate::store::MobileStore::running_sessions`].
pub(super) fn running(
    client: &mut impl GenericClient,
    device_id: &str,
    now: OffsetDateTime,
    max: usize,
) -> Result<Vec<SessionRecord>, StoreError> {
    let (now, max) = (millis(now), rows::sql_limit(max));
    client
        .query_typed(
            &RUNNING,
            &[
                (&device_id, Type::TEXT),
                (&now, Type::INT8),
                (&max, Type::INT8),
            ],
        )
        .map_err(db_error)?
        .iter()
        .map(session_from)
        .collect()
}

/// See [`crate::store::MobileStore::sessions_of_national_id`].
pub(super) fn of_national_id(
    client: &mut impl GenericClient,
    national_id: &str,
    limit: usize,
) -> Result<Vec<SessionRecord>, StoreError> {
    let limit = rows::sql_limit(limit);
    client
        .query_typed(
            &format!(
                "SELECT {SESSION_COLUMNS} FROM mss_sessions WHERE device_id IN \
                 (SELECT device_id FROM mss_devices WHERE national_id = $1) \
                 ORDER BY seq DESC LIMIT $2"
            ),
            &[(&national_id, Type::TEXT), (&limit, Type::INT8)],
        )
        .map_err(db_error)?
        .iter()
        .map(session_from)
        .collect()
}

/// See [`crate::store::MobileStore::mark_delivered`]: one statement, the rows locked in
/// session-id order, each changed only if it was never delivered.
pub(super) fn mark_delivered(
    client: &mut impl GenericClient,
    session_ids: &[&str],
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let at = millis(at);
    client
        .execute_typed(
            "WITH picked AS MATERIALIZED (SELECT session_id FROM mss_sessions \
             WHERE session_id = ANY($1) AND delivered_at IS NULL \
             ORDER BY session_id FOR NO KEY UPDATE) \
             UPDATE mss_sessions s SET delivered_at = $2 FROM picked p \
             WHERE s.session_id = p.session_id AND s.delivered_at IS NULL",
            &[(&session_ids, Type::TEXT_ARRAY), (&at, Type::INT8)],
        )
        .map_err(db_error)?;
    Ok(())
}

/// See [`crate::store::MobileStore::complete_session`].
pub(super) fn complete(
    client: &mut impl GenericClient,
    session_id: &str,
    completion: &SessionCompletion,
) -> Result<bool, StoreError> {
    let (at, result) = (millis(completion.completed_at), completion.result.name());
    let changed = client
        .execute_typed(
            "UPDATE mss_sessions SET completed_at = $2, result = $3, signature = $4, \
             signature_algorithm = $5, cert = $6, delivered_at = COALESCE(delivered_at, $2) \
             WHERE session_id = $1 AND completed_at IS NULL AND expires_at > $2",
            &[
                (&session_id, Type::TEXT),
                (&at, Type::INT8),
                (&result, Type::TEXT),
                (&completion.signature, Type::BYTEA),
                (&completion.signature_algorithm, Type::TEXT),
                (&completion.cert, Type::BYTEA),
            ],
        )
        .map_err(db_error)?;
    Ok(changed == 1)
}

/// One round of [`crate::store::MobileStore::purge_sessions`]: three statements of at most
/// `batch` rows each, each its own transaction. Each picks its rows `SKIP LOCKED`: concurrent
/// clean-ups take different rows instead of queueing for the same ones, and a row a live
/// request holds (a completion) is left for a later round.
pub(super) fn purge_round(
    client: &mut impl GenericClient,
    now: OffsetDateTime,
    complete_before: OffsetDateTime,
    batch: i64,
) -> Result<PurgeRound, StoreError> {
    let (now, complete_before) = (millis(now), millis(complete_before));
    let (absent, timeout) = expiry_results();
    let ended = client
        .execute_typed(
            "WITH picked AS MATERIALIZED (SELECT session_id FROM mss_sessions \
             WHERE completed_at IS NULL AND expires_at <= $1 \
             LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED) \
             UPDATE mss_sessions s SET completed_at = s.expires_at, \
             result = CASE WHEN s.delivered_at IS NULL THEN $2 ELSE $3 END \
             FROM picked p WHERE s.session_id = p.session_id AND s.completed_at IS NULL",
            &[
                (&now, Type::INT8),
                (&absent, Type::TEXT),
                (&timeout, Type::TEXT),
                (&batch, Type::INT8),
            ],
        )
        .map_err(db_error)?;
    let removed = client
        .execute_typed(
            "WITH picked AS MATERIALIZED (SELECT session_id FROM mss_sessions \
             WHERE completed_at IS NOT NULL AND completed_at < $1 \
             LIMIT $2 FOR UPDATE SKIP LOCKED) \
             DELETE FROM mss_sessions s USING picked p WHERE s.session_id = p.session_id",
            &[(&complete_before, Type::INT8), (&batch, Type::INT8)],
        )
        .map_err(db_error)?;
    // Refused at creation (NOT_MOBILE_CLIENT, no device): gone once expired.
    let refused = client
        .execute_typed(
            "WITH picked AS MATERIALIZED (SELECT session_id FROM mss_sessions \
             WHERE device_id IS NULL AND expires_at <= $1 \
             LIMIT $2 FOR UPDATE SKIP LOCKED) \
             DELETE FROM mss_sessions s USING picked p WHERE s.session_id = p.session_id",
            &[(&now, Type::INT8), (&batch, Type::INT8)],
        )
        .map_err(db_error)?;
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(PurgeRound {
        deleted: count(removed).saturating_add(count(refused)),
        full: [ended, removed, refused]
            .iter()
            .any(|&n| i64::try_from(n).unwrap_or(i64::MAX) >= batch),
    })
}

fn select(
    client: &mut impl GenericClient,
    session_id: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    client
        .query_typed(&SELECT_ONE, &[(&session_id, Type::TEXT)])
        .map_err(db_error)?
        .first()
        .map(session_from)
        .transpose()
}

/// Reads [`SESSION_COLUMNS`].
fn session_from(row: &Row) -> Result<SessionRecord, StoreError> {
    SessionRow {
        session_id: get(row, 0)?,
        relying_party: get(row, 1)?,
        device_id: get(row, 2)?,
        kind: get(row, 3)?,
        hash: get(row, 4)?,
        hash_type: get(row, 5)?,
        display_text: get(row, 6)?,
        language: get(row, 7)?,
        created_at: get(row, 8)?,
        expires_at: get(row, 9)?,
        delivered_at: get(row, 10)?,
        completed_at: get(row, 11)?,
        result: get(row, 12)?,
        signature: get(row, 13)?,
        signature_algorithm: get(row, 14)?,
        cert: get(row, 15)?,
    }
    .into_record()
}
