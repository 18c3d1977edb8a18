//! Sessions in the store: created RUNNING (or already COMPLETE with NOT_MOBILE_CLIENT),
//! delivered to the phone, completed once by the phone's answer or by their expiry. Each
//! change is one short statement or `BEGIN IMMEDIATE` transaction on the sessions connection,
//! and each is conditioned on the session still running, so two answers racing cannot both
//! complete it.

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use super::{db_error, from_millis, millis, MobileStore, StoreError};
use crate::protocol::{HashType, Language, SessionKind, SessionResult};

/// Every result, for reading the stored names back.
const RESULTS: [SessionResult; 8] = [
    SessionResult::Ok,
    SessionResult::UserRefused,
    SessionResult::Timeout,
    SessionResult::NotMobileClient,
    SessionResult::PhoneAbsent,
    SessionResult::SignatureHashMismatch,
    SessionResult::DeliveryError,
    SessionResult::PinBlocked,
];

const SESSION_COLUMNS: &str = "session_id, relying_party, device_id, kind, hash, hash_type, \
     display_text, language, created_at, expires_at, delivered_at, completed_at, result, \
     signature, signature_algorithm, cert";

/// The most running sessions of one device read to take turns among (far more than caps
/// allow: a bound on the read, not a rule).
const MAX_RUNNING_READ: i64 = 4096;

/// At most `limit` of `sessions` (oldest first) in turns across relying parties: every
/// relying party's oldest (oldest of those first), then every one's second oldest, and so on.
fn in_turns(sessions: Vec<SessionRecord>, limit: usize) -> Vec<SessionRecord> {
    let mut turn_of: Vec<(usize, usize)> = Vec::with_capacity(sessions.len());
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (index, session) in sessions.iter().enumerate() {
        let turn = seen.entry(session.relying_party.as_str()).or_insert(0);
        turn_of.push((*turn, index));
        *turn += 1;
    }
    // Stable: within a turn, the order they came in.
    turn_of.sort_by_key(|(turn, _)| *turn);
    let mut picked: Vec<Option<SessionRecord>> = sessions.into_iter().map(Some).collect();
    turn_of
        .into_iter()
        .take(limit)
        .filter_map(|(_, index)| picked[index].take())
        .collect()
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCompletion {
    pub result: SessionResult,
    pub completed_at: OffsetDateTime,
    /// With OK only: the verified signature, its Mobile-ID algorithm name
    /// (`SHA256WithECEncryption`) and the certificate it verified against.
    pub signature: Option<Vec<u8>>,
    pub signature_algorithm: Option<String>,
    pub cert: Option<Vec<u8>>,
}

impl SessionCompletion {
    /// A completion without a signature.
    pub fn without_signature(result: SessionResult, at: OffsetDateTime) -> SessionCompletion {
        SessionCompletion {
            result,
            completed_at: at,
            signature: None,
            signature_algorithm: None,
            cert: None,
        }
    }
}

/// A session: as created (`delivered_at` `None`; `completion` set only for one complete from
/// the start, NOT_MOBILE_CLIENT) and as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: String,
    pub relying_party: String,
    /// `None` for a session refused with NOT_MOBILE_CLIENT at creation.
    pub device_id: Option<String>,
    pub kind: SessionKind,
    pub hash: Vec<u8>,
    pub hash_type: HashType,
    pub display_text: Option<String>,
    pub language: Language,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// When the phone first fetched it.
    pub delivered_at: Option<OffsetDateTime>,
    /// `None` while RUNNING.
    pub completion: Option<SessionCompletion>,
}

/// What [`MobileStore::insert_session_within`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    Stored,
    /// Not stored: the relying party has `running` sessions running for the device already;
    /// the first of them expires at `first_expiry`.
    TooManyRunning {
        running: u32,
        first_expiry: OffsetDateTime,
    },
}

impl MobileStore {
    /// Stores a new session.
    pub fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        insert(&self.sessions_connection(), session)
    }

    /// Stores a new session unless it would be RUNNING and its relying party already has
    /// `max_running` sessions running (unexpired at `now`) for its device. Counted and
    /// inserted in one `BEGIN IMMEDIATE` transaction, so that concurrent requests, from this
    /// process or another on the same file, cannot together pass the cap.
    pub fn insert_session_within(
        &self,
        session: &SessionRecord,
        max_running: u32,
        now: OffsetDateTime,
    ) -> Result<Stored, StoreError> {
        let mut conn = self.sessions_connection();
        let (Some(device_id), None) = (&session.device_id, &session.completion) else {
            insert(&conn, session)?;
            return Ok(Stored::Stored);
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        // A device's running sessions are few (this cap times the relying parties): the
        // partial index mss_sessions_device_running holds exactly them.
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

    /// A session as it is at `now`: a RUNNING one past its expiry is completed first (TIMEOUT
    /// when the phone fetched it, PHONE_ABSENT when it never did) and that is stored.
    pub fn session_at(
        &self,
        session_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let conn = self.sessions_connection();
        let Some(mut session) = select_session(&conn, session_id)? else {
            return Ok(None);
        };
        if session.completion.is_none() && session.expires_at <= now {
            // Only an expired one is written: a plain read takes no write lock.
            let result = expiry_result(&session);
            conn.execute(
                "UPDATE mss_sessions SET completed_at = ?2, result = ?3 \
                 WHERE session_id = ?1 AND completed_at IS NULL",
                params![session_id, millis(session.expires_at), result.name()],
            )
            .map_err(db_error)?;
            // Re-read: an answer may have completed it between the two statements (another
            // process writing the same file).
            session = select_session(&conn, session_id)?.ok_or_else(|| {
                StoreError::Corrupt(format!("session {session_id} vanished while expiring"))
            })?;
        }
        Ok(Some(session))
    }

    /// The RUNNING, unexpired sessions of a device, at most `limit`, taken in turns across
    /// relying parties: every relying party's oldest first (oldest of those first), then every
    /// one's second oldest, and so on. A flood from one relying party thus cannot push another's
    /// request out of the answer (as long as fewer than `limit` relying parties are waiting).
    /// Those not fetched before are marked delivered at `now`.
    pub fn pending_sessions(
        &self,
        device_id: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut conn = self.sessions_connection();
        let now_ms = millis(now);
        let mut sessions = {
            // The device's running sessions are few (each relying party may have only a handful
            // running per phone): read them in the order they came and take turns here.
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM mss_sessions \
                     WHERE device_id = ?1 AND completed_at IS NULL AND expires_at > ?2 \
                     ORDER BY created_at, seq LIMIT ?3"
                ))
                .map_err(db_error)?;
            let rows = statement
                .query_map(params![device_id, now_ms, MAX_RUNNING_READ], session_row)
                .map_err(db_error)?;
            let running = rows
                .map(|r| r.map_err(db_error).and_then(|session| session))
                .collect::<Result<Vec<_>, StoreError>>()?;
            in_turns(running, limit)
        };
        if sessions.iter().any(|s| s.delivered_at.is_none()) {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            for session in sessions.iter_mut().filter(|s| s.delivered_at.is_none()) {
                tx.execute(
                    "UPDATE mss_sessions SET delivered_at = ?2 \
                     WHERE session_id = ?1 AND delivered_at IS NULL",
                    params![session.session_id, now_ms],
                )
                .map_err(db_error)?;
                session.delivered_at = Some(now);
            }
            tx.commit().map_err(db_error)?;
        }
        Ok(sessions)
    }

    /// Completes a RUNNING session that has not expired at `completion.completed_at`; false
    /// (nothing written) when it is complete already or expired.
    pub fn complete_session(
        &self,
        session_id: &str,
        completion: &SessionCompletion,
    ) -> Result<bool, StoreError> {
        let conn = self.sessions_connection();
        let at = millis(completion.completed_at);
        let changed = conn
            .execute(
                "UPDATE mss_sessions SET completed_at = ?2, result = ?3, signature = ?4, \
                 signature_algorithm = ?5, cert = ?6, delivered_at = COALESCE(delivered_at, ?2) \
                 WHERE session_id = ?1 AND completed_at IS NULL AND expires_at > ?2",
                params![
                    session_id,
                    at,
                    completion.result.name(),
                    completion.signature,
                    completion.signature_algorithm,
                    completion.cert,
                ],
            )
            .map_err(db_error)?;
        Ok(changed == 1)
    }

    /// Ends sessions left RUNNING past their expiry (nobody read them since), deletes the
    /// sessions complete before `complete_before` (they hold personal data: hashes and display
    /// texts) and those created complete without a device (NOT_MOBILE_CLIENT) that expired by
    /// `now`. Works in batches of `batch` rows, at most `max_batches` of each; returns how
    /// many were deleted.
    pub fn purge_sessions(
        &self,
        now: OffsetDateTime,
        complete_before: OffsetDateTime,
        batch: usize,
        max_batches: usize,
    ) -> Result<usize, StoreError> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let now_ms = millis(now);
        let mut deleted = 0;
        for _ in 0..max_batches {
            // Short transactions, the lock released between them, so live sessions are not held
            // up behind a large clean-up.
            let conn = self.sessions_connection();
            let ended = conn
                .execute(
                    "UPDATE mss_sessions SET completed_at = expires_at, \
                     result = CASE WHEN delivered_at IS NULL THEN ?2 ELSE ?3 END \
                     WHERE session_id IN (SELECT session_id FROM mss_sessions \
                         WHERE completed_at IS NULL AND expires_at <= ?1 LIMIT ?4)",
                    params![
                        now_ms,
                        SessionResult::PhoneAbsent.name(),
                        SessionResult::Timeout.name(),
                        batch
                    ],
                )
                .map_err(db_error)?;
            let removed = conn
                .execute(
                    "DELETE FROM mss_sessions WHERE session_id IN (SELECT session_id \
                         FROM mss_sessions \
                         WHERE completed_at IS NOT NULL AND completed_at < ?1 LIMIT ?2)",
                    params![millis(complete_before), batch],
                )
                .map_err(db_error)?;
            // Refused at creation (NOT_MOBILE_CLIENT, no device): gone once expired.
            let refused = conn
                .execute(
                    "DELETE FROM mss_sessions WHERE session_id IN (SELECT session_id \
                         FROM mss_sessions INDEXED BY mss_sessions_refused_expiry \
                         WHERE device_id IS NULL AND expires_at <= ?1 LIMIT ?2)",
                    params![now_ms, batch],
                )
                .map_err(db_error)?;
            deleted += removed + refused;
            if [ended, removed, refused]
                .iter()
                .all(|&n| (n as i64) < batch)
            {
                break;
            }
        }
        Ok(deleted)
    }
}

/// Inserts a session through `conn` (a connection or a transaction), numbered one past the
/// highest sequence number stored (read under the statement's write lock, from the unique
/// index on `seq`).
fn insert(conn: &rusqlite::Connection, session: &SessionRecord) -> Result<(), StoreError> {
    let completion = session.completion.as_ref();
    conn.execute(
        "INSERT INTO mss_sessions (session_id, relying_party, device_id, kind, hash, \
         hash_type, display_text, language, created_at, expires_at, delivered_at, \
         completed_at, result, signature, signature_algorithm, cert, seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
         (SELECT COALESCE(MAX(seq), 0) + 1 FROM mss_sessions))",
        params![
            session.session_id,
            session.relying_party,
            session.device_id,
            session.kind.name(),
            session.hash,
            session.hash_type.name(),
            session.display_text,
            session.language.code(),
            millis(session.created_at),
            millis(session.expires_at),
            session.delivered_at.map(millis),
            completion.map(|c| millis(c.completed_at)),
            completion.map(|c| c.result.name()),
            completion.and_then(|c| c.signature.as_deref()),
            completion.and_then(|c| c.signature_algorithm.as_deref()),
            completion.and_then(|c| c.cert.as_deref()),
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

fn expiry_result(session: &SessionRecord) -> SessionResult {
    if session.delivered_at.is_some() {
        SessionResult::Timeout
    } else {
        SessionResult::PhoneAbsent
    }
}

fn select_session(
    conn: &rusqlite::Connection,
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
    let kind: String = row.get(3)?;
    let hash_type: String = row.get(5)?;
    let language: String = row.get(7)?;
    let created_at: i64 = row.get(8)?;
    let expires_at: i64 = row.get(9)?;
    let delivered_at: Option<i64> = row.get(10)?;
    let completed_at: Option<i64> = row.get(11)?;
    let result: Option<String> = row.get(12)?;
    let signature: Option<Vec<u8>> = row.get(13)?;
    let signature_algorithm: Option<String> = row.get(14)?;
    let cert: Option<Vec<u8>> = row.get(15)?;
    let session_id: String = row.get(0)?;
    let relying_party: String = row.get(1)?;
    let device_id: Option<String> = row.get(2)?;
    let hash: Vec<u8> = row.get(4)?;
    let display_text: Option<String> = row.get(6)?;
    Ok((|| {
        let completion = match (completed_at, result) {
            (None, None) => None,
            (Some(at), Some(result)) => Some(SessionCompletion {
                result: parse_result(&result)?,
                completed_at: from_millis(at, "completed_at")?,
                signature,
                signature_algorithm,
                cert,
            }),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "session {session_id} has a completion time without a result or the reverse"
                )))
            }
        };
        Ok(SessionRecord {
            kind: parse_kind(&kind)?,
            hash_type: parse_hash_type(&hash_type)?,
            language: language
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("unknown language {language:?}")))?,
            created_at: from_millis(created_at, "created_at")?,
            expires_at: from_millis(expires_at, "expires_at")?,
            delivered_at: delivered_at
                .map(|ms| from_millis(ms, "delivered_at"))
                .transpose()?,
            session_id,
            relying_party,
            device_id,
            hash,
            display_text,
            completion,
        })
    })())
}

fn parse_result(name: &str) -> Result<SessionResult, StoreError> {
    RESULTS
        .into_iter()
        .find(|r| r.name() == name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown session result {name:?}")))
}

fn parse_kind(name: &str) -> Result<SessionKind, StoreError> {
    [SessionKind::Authentication, SessionKind::Signature]
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown session kind {name:?}")))
}

fn parse_hash_type(name: &str) -> Result<HashType, StoreError> {
    [HashType::Sha256, HashType::Sha384, HashType::Sha512]
        .into_iter()
        .find(|h| h.name() == name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown hash type {name:?}")))
}
