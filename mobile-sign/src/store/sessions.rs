//! Sessions: created RUNNING (or already COMPLETE with NOT_MOBILE_CLIENT), delivered to the
//! phone, completed once by the phone's answer or by their expiry. The records the store
//! keeps, and the rules above it: which result an expired or orphaned session gets, and how a
//! phone's pending requests take turns across relying parties.

use std::collections::HashMap;

use imza_core::alg::DigestAlgorithm;
use time::OffsetDateTime;

use super::{MobileStore, StoreError};
use crate::protocol::{Language, SessionKind, SessionResult};

/// What the RUNNING sessions of a device end with when it is deactivated or replaced.
pub const RESULT_WHEN_DEACTIVATED: SessionResult = SessionResult::NotMobileClient;

/// The most running sessions of one device read to take turns among (far more than caps
/// allow: a bound on the read, not a rule).
const MAX_RUNNING_READ: usize = 4096;

/// What a session that expired RUNNING ends with: TIMEOUT when the phone fetched it (the
/// citizen saw it and did not answer), PHONE_ABSENT when it never did.
pub fn result_on_expiry(delivered: bool) -> SessionResult {
    if delivered {
        SessionResult::Timeout
    } else {
        SessionResult::PhoneAbsent
    }
}

/// The RUNNING, unexpired sessions of a device, at most `limit`, taken in turns across
/// relying parties: every relying party's oldest first (oldest of those first), then every
/// one's second oldest, and so on. A flood from one relying party thus cannot push another's
/// request out of the answer (as long as fewer than `limit` relying parties are waiting).
/// Those not fetched before are marked delivered at `now`.
pub fn pending_sessions(
    store: &dyn MobileStore,
    device_id: &str,
    now: OffsetDateTime,
    limit: usize,
) -> Result<Vec<SessionRecord>, StoreError> {
    // The device's running sessions are few (each relying party may have only a handful
    // running per phone): read them in the order they came and take turns here.
    let mut sessions = in_turns(
        store.running_sessions(device_id, now, MAX_RUNNING_READ)?,
        limit,
    );
    let undelivered: Vec<&str> = sessions
        .iter()
        .filter(|s| s.delivered_at.is_none())
        .map(|s| s.session_id.as_str())
        .collect();
    if !undelivered.is_empty() {
        store.mark_delivered(&undelivered, now)?;
        for session in sessions.iter_mut().filter(|s| s.delivered_at.is_none()) {
            session.delivered_at = Some(now);
        }
    }
    Ok(sessions)
}

/// At most `limit` of `sessions` (oldest first) in turns across relying parties: every
/// relying party's oldest (oldest of those first), then every one's second oldest, and so on.
fn in_turns(sessions: Vec<SessionRecord>, limit: usize) -> Vec<SessionRecord> {
    let mut turn_of: Vec<(usize, usize)> = Vec::with_capacity(sessions.len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
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
    pub hash_type: DigestAlgorithm,
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
