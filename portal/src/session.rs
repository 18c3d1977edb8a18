//! Browser sessions: what the cookie carries, how a request finds its session, and how login
//! and logout change it.
//!
//! - The cookie `__Host-imza-session` carries 256 random bits (base64url); it is `Secure`,
//!   `HttpOnly`, `SameSite=Strict`, `Path=/` and has no `Domain` (the `__Host-` prefix makes
//!   browsers insist on all that). The store keeps only its SHA-256, so a copy of the database
//!   yields no usable cookie.
//! - Every session has a CSRF token of its own that pages put in their forms; a
//!   state-changing request must bring it back ([`check_csrf`], constant time). It is derived
//!   from the cookie ([`csrf_token`]), so a page can be rendered with it on any request, and a
//!   site that cannot read the (HttpOnly) cookie cannot know it. Only its SHA-256 is kept.
//! - A login gives a **new** session id and token and ends the anonymous session in the same
//!   transaction, so a cookie planted before login is worth nothing after it.
//! - A session ends at logout, after [`SessionPolicy::idle`] without a request, or
//!   [`SessionPolicy::absolute`] after it began, whichever comes first.

use base64ct::{Base64UrlUnpadded, Encoding};
use time::{Duration, OffsetDateTime};

use crate::store::{
    Event, EventKind, PortalStore, PurgeCutoffs, Purged, Session, SessionCitizen, StoreError,
};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "__Host-imza-session";

const SECRET_BYTES: usize = 32;
/// Characters of a secret in base64url without padding.
const SECRET_CHARS: usize = 43;

/// A live session's last-seen time is written at most this often: the idle timeout is kept to
/// within this much, and a page's burst of requests costs one write, not one each.
pub const TOUCH_INTERVAL: Duration = Duration::seconds(30);

/// How long sessions last.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    /// Without a request for this long, a session ends. Default 15 minutes.
    pub idle: Duration,
    /// However active, a session ends this long after it began. Default 8 hours.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> SessionPolicy {
        SessionPolicy {
            idle: Duration::minutes(15),
            absolute: Duration::hours(8),
        }
    }
}

/// A session just made: the secrets to hand the browser (never stored) and what was stored.
#[derive(Clone)]
pub struct NewSession {
    /// The cookie's value.
    pub cookie: String,
    /// The CSRF token the session's pages carry.
    pub csrf_token: String,
    pub session: Session,
}

impl std::fmt::Debug for NewSession {
    /// Not the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

fn secret() -> Result<(String, [u8; 32]), StoreError> {
    let mut bytes = [0u8; SECRET_BYTES];
    openssl::rand::rand_bytes(&mut bytes)
        .map_err(|e| StoreError::Backend(format!("no random bytes: {e}")))?;
    let text = Base64UrlUnpadded::encode_string(&bytes);
    let hash = openssl::sha::sha256(text.as_bytes());
    Ok((text, hash))
}

/// The stored id of a cookie value, or `None` when it is not one this portal makes (nothing is
/// looked up for it).
pub fn cookie_id(cookie: &str) -> Option<[u8; 32]> {
    let well_formed = cookie.len() == SECRET_CHARS
        && cookie
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| openssl::sha::sha256(cookie.as_bytes()))
}

/// The `Set-Cookie` value that gives the browser `cookie`, for as long as `policy` lets a
/// session last.
pub fn set_cookie(cookie: &str, policy: &SessionPolicy) -> String {
    format!(
        "{COOKIE_NAME}={cookie}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        policy.absolute.whole_seconds()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The CSRF token of the session whose cookie is `cookie`: base64url(SHA-256 of a label and
/// the cookie).
pub fn csrf_token(cookie: &str) -> String {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(b"imza-portal-csrf|");
    hasher.update(cookie.as_bytes());
    Base64UrlUnpadded::encode_string(&hasher.finish())
}

fn new_session(
    now: OffsetDateTime,
    policy: &SessionPolicy,
    citizen: Option<SessionCitizen>,
) -> Result<NewSession, StoreError> {
    let (cookie, id_sha256) = secret()?;
    let csrf_token = csrf_token(&cookie);
    let csrf_sha256 = openssl::sha::sha256(csrf_token.as_bytes());
    Ok(NewSession {
        cookie,
        csrf_token,
        session: Session {
            id_sha256,
            csrf_sha256,
            created_at: now,
            last_seen_at: now,
            expires_at: now + policy.absolute,
            citizen,
            ended_at: None,
        },
    })
}

/// Starts an anonymous session (a visitor of the login page).
pub fn start(
    store: &dyn PortalStore,
    now: OffsetDateTime,
    policy: &SessionPolicy,
) -> Result<NewSession, StoreError> {
    let made = new_session(now, policy, None)?;
    store.create_session(&made.session)?;
    Ok(made)
}

/// The live session `cookie` names at `now`, its request recorded; `None` when there is none:
/// a malformed cookie, an unknown or ended session, or one past its idle or absolute timeout
/// (which is ended now).
pub fn current(
    store: &dyn PortalStore,
    cookie: &str,
    now: OffsetDateTime,
    policy: &SessionPolicy,
) -> Result<Option<Session>, StoreError> {
    let Some(id) = cookie_id(cookie) else {
        return Ok(None);
    };
    let Some(mut session) = store.session(&id)? else {
        return Ok(None);
    };
    if session.ended_at.is_some() {
        return Ok(None);
    }
    if now >= session.expires_at || now - session.last_seen_at >= policy.idle {
        match store.end_session(&id, now, None) {
            // Ended meanwhile by another request: the same outcome.
            Ok(()) | Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    if now - session.last_seen_at >= TOUCH_INTERVAL {
        match store.touch_session(&id, now) {
            Ok(()) => {}
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    session.last_seen_at = session.last_seen_at.max(now);
    Ok(Some(session))
}

/// Whether `token` is `session`'s CSRF token (compared in constant time, as hashes).
pub fn check_csrf(session: &Session, token: &str) -> bool {
    let hash = openssl::sha::sha256(token.as_bytes());
    openssl::memcmp::eq(&hash, &session.csrf_sha256)
}

/// Logs `citizen` in on the anonymous session `old` (the live session the request came
/// with): a new session with new secrets, the old one ended and the login recorded in the
/// citizen's history, in one transaction. `NotFound` when `old` is not a live anonymous
/// session (used by another login meanwhile, or ended).
pub fn log_in(
    store: &dyn PortalStore,
    old: &Session,
    citizen: SessionCitizen,
    now: OffsetDateTime,
    policy: &SessionPolicy,
) -> Result<NewSession, StoreError> {
    let event = Event {
        at: now,
        personal_code: citizen.personal_code.clone(),
        kind: EventKind::Login,
        method: Some(citizen.method),
        detail: String::new(),
    };
    let made = new_session(now, policy, Some(citizen))?;
    store.log_in(&old.id_sha256, &made.session, &event)?;
    Ok(made)
}

/// Ends `session` (a logout), recording it in the citizen's history when one was logged in.
pub fn log_out(
    store: &dyn PortalStore,
    session: &Session,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let event = session.citizen.as_ref().map(|c| Event {
        at: now,
        personal_code: c.personal_code.clone(),
        kind: EventKind::Logout,
        method: Some(c.method),
        detail: String::new(),
    });
    store.end_session(&session.id_sha256, now, event.as_ref())
}

/// Rows a purge deletes per statement, and rounds at most per run ([`purge`]).
pub const PURGE_BATCH: usize = 1000;
pub const PURGE_MAX_ROUNDS: usize = 100;

/// The clean-up `imza serve` runs periodically: sessions ended, past their absolute timeout
/// or idle longer than `policy` allows, nonces older than `nonce_lifetime` or of sessions not
/// live, and expired access codes, in bounded rounds ([`PortalStore::purge`]). The histories
/// stay.
pub fn purge(
    store: &dyn PortalStore,
    now: OffsetDateTime,
    policy: &SessionPolicy,
    nonce_lifetime: Duration,
) -> Result<Purged, StoreError> {
    let cutoffs = PurgeCutoffs {
        now,
        idle_before: now - policy.idle,
        nonces_before: now - nonce_lifetime,
    };
    store.purge(&cutoffs, PURGE_BATCH, PURGE_MAX_ROUNDS)
}
