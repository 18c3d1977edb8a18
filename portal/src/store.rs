//! The portal's durable records behind one trait, [`PortalStore`]: browser sessions (only the
//! SHA-256 of the cookie's secret and of the CSRF token are kept), the login page's challenge
//! nonce of each session, and each citizen's history (logins with their method, logouts,
//! services used).
//!
//! The trait takes values already checked and already made (ids, hashes, times) and its
//! implementations only store them: [`sqlite`], in the CA store's `imza.db` (the embedded
//! default), and [`postgres`], in the CA store's database, for several nodes; [`open`] picks
//! one from the store's URL. The doc comments state the concurrency contract; `store::contract`
//! (built for tests and with the `contract-tests` feature) checks it on every engine.

pub mod postgres;
pub mod sqlite;

#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;

use std::sync::Arc;

use time::OffsetDateTime;

use imza_store::copy::{Column, Table, TableSet};
use imza_store::{Create, Migrations, StoreUrl};

pub use imza_store::StoreError;
pub use postgres::PgPortalStore;
pub use sqlite::SqlitePortalStore;

/// The portal's tables on SQLite, versioned in their own `portal_schema_migrations` beside the
/// CA's and the mobile signature service's. Never edit a released version; add the next to
/// both engines.
pub(crate) const SCHEMA_SQLITE: Migrations = Migrations {
    what: "the portal tables",
    table: "portal_schema_migrations",
    steps: &[(1, include_str!("store/migrations/sqlite/0001_initial.sql"))],
};

/// The portal's tables on PostgreSQL: the same version numbers name the same tables.
pub(crate) const SCHEMA_POSTGRES: Migrations = Migrations {
    what: "the portal tables",
    table: "portal_schema_migrations",
    steps: &[(
        1,
        include_str!("store/migrations/postgres/0001_initial.sql"),
    )],
};

/// The portal's tables as `imza store migrate` copies them (keep in step with the migrations).
pub const TABLES: TableSet = TableSet {
    sqlite: &SCHEMA_SQLITE,
    postgres: &SCHEMA_POSTGRES,
    version: 1,
    tables: &[
        Table {
            name: "portal_sessions",
            columns: &[
                Column::bytes("id_sha256"),
                Column::bytes("csrf_sha256"),
                Column::bigint("created_at"),
                Column::bigint("last_seen_at"),
                Column::bigint("expires_at"),
                Column::text("personal_code"),
                Column::text("name"),
                Column::text("method"),
                Column::bigint("ended_at"),
            ],
            order_by: &["id_sha256"],
            identity: None,
        },
        Table {
            name: "portal_nonces",
            columns: &[
                Column::bytes("session_sha256"),
                Column::text("nonce"),
                Column::bigint("issued_at"),
            ],
            order_by: &["session_sha256"],
            identity: None,
        },
        Table {
            name: "portal_events",
            columns: &[
                Column::bigint("seq"),
                Column::bigint("at"),
                Column::text("personal_code"),
                Column::text("kind"),
                Column::text("method"),
                Column::text("detail"),
            ],
            order_by: &["seq"],
            identity: Some("seq"),
        },
    ],
    sqlite_only: &[],
};

/// Opens the portal's tables of the store at `url`, creating them if missing (beside the CA
/// store's tables, in its file or database).
pub fn open(url: &StoreUrl) -> Result<Arc<dyn PortalStore>, StoreError> {
    Ok(match url {
        StoreUrl::Sqlite(path) => Arc::new(SqlitePortalStore::open(path)?),
        StoreUrl::Postgres(url) => Arc::new(PgPortalStore::open(url, Create::IfMissing)?),
    })
}

/// How a citizen logged in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginMethod {
    /// The ID card, through `imza agent` (a Web eID token).
    Card,
    /// The ASAN-style phone signature (phone number and national id).
    Phone,
    /// A QR code scanned with the phone app.
    Qr,
    /// A device ("mobile authentication") certificate, TLS client authentication.
    DeviceCertificate,
    /// A one-time access code from a service centre.
    AccessCode,
}

impl LoginMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMethod::Card => "card",
            LoginMethod::Phone => "phone",
            LoginMethod::Qr => "qr",
            LoginMethod::DeviceCertificate => "device-certificate",
            LoginMethod::AccessCode => "access-code",
        }
    }

    pub fn parse(text: &str) -> Option<LoginMethod> {
        [
            LoginMethod::Card,
            LoginMethod::Phone,
            LoginMethod::Qr,
            LoginMethod::DeviceCertificate,
            LoginMethod::AccessCode,
        ]
        .into_iter()
        .find(|m| m.as_str() == text)
    }
}

/// Who a logged-in session belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCitizen {
    /// The certificate's serialNumber (`PNOAZ-5ZK7T2Q`), the key of the citizen's history.
    pub personal_code: String,
    pub name: String,
    pub method: LoginMethod,
}

/// A browser session. The cookie carries a random secret; the store keeps its SHA-256 (a
/// stolen database yields no usable cookie), and the SHA-256 of the session's CSRF token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id_sha256: [u8; 32],
    pub csrf_sha256: [u8; 32],
    pub created_at: OffsetDateTime,
    /// The last request seen (the idle timeout counts from here).
    pub last_seen_at: OffsetDateTime,
    /// The absolute timeout.
    pub expires_at: OffsetDateTime,
    /// `None` before login.
    pub citizen: Option<SessionCitizen>,
    /// When it was ended (logout, or replaced at login); `None` while live.
    pub ended_at: Option<OffsetDateTime>,
}

/// What an entry of a citizen's history records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Login,
    Logout,
    /// A service used (a document asked for, a page of the cabinet).
    Service,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Login => "login",
            EventKind::Logout => "logout",
            EventKind::Service => "service",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        [EventKind::Login, EventKind::Logout, EventKind::Service]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// One entry of a citizen's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: OffsetDateTime,
    pub personal_code: String,
    pub kind: EventKind,
    pub method: Option<LoginMethod>,
    /// What was done, in words (a service's name); empty for logins and logouts.
    pub detail: String,
}

/// The portal's records. Each method is atomic; what concurrent callers get is said per
/// method. Times are kept to the millisecond.
pub trait PortalStore: Send + Sync + std::fmt::Debug {
    /// Stores a new session. `Conflict` when its id is taken (nothing changes).
    fn create_session(&self, session: &Session) -> Result<(), StoreError>;

    /// The session with this id, live or ended.
    fn session(&self, id_sha256: &[u8; 32]) -> Result<Option<Session>, StoreError>;

    /// Records a request of the live session at `at`. `NotFound` when no live session has
    /// this id.
    fn touch_session(&self, id_sha256: &[u8; 32], at: OffsetDateTime) -> Result<(), StoreError>;

    /// A login, in one transaction: the live anonymous session `old` ends at `event.at`, the
    /// new session `new` (with its citizen: a new id, so a session id planted before login is
    /// worth nothing after it) is stored, and `event` appended to the citizen's history.
    /// `NotFound` when `old` is not live and anonymous, `Conflict` when `new`'s id is taken;
    /// either way nothing changes. Of concurrent logins on one session, exactly one succeeds.
    fn log_in(&self, old: &[u8; 32], new: &Session, event: &Event) -> Result<(), StoreError>;

    /// Ends the live session at `at` (logout, or a timeout seen), appending `event` to the
    /// citizen's history if given, in one transaction. `NotFound` when no live session has this
    /// id (nothing changes): of concurrent calls, exactly one ends it.
    fn end_session(
        &self,
        id_sha256: &[u8; 32],
        at: OffsetDateTime,
        event: Option<&Event>,
    ) -> Result<(), StoreError>;

    /// Keeps `nonce` as the login page's challenge for session `id_sha256`, replacing one it
    /// had.
    fn put_nonce(
        &self,
        id_sha256: &[u8; 32],
        nonce: &str,
        issued_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Takes the session's nonce out, with when it was issued: of concurrent callers exactly
    /// one gets it, and it is gone whatever the caller does with it.
    fn take_nonce(
        &self,
        id_sha256: &[u8; 32],
    ) -> Result<Option<(String, OffsetDateTime)>, StoreError>;

    /// Appends `event` to its citizen's history.
    fn record_event(&self, event: &Event) -> Result<(), StoreError>;

    /// The citizen's history, newest first (in the order recorded), at most `limit` entries.
    fn events(&self, personal_code: &str, limit: usize) -> Result<Vec<Event>, StoreError>;
}

/// What a stored session row means, read from either engine.
pub(crate) struct SessionRow {
    pub id_sha256: Vec<u8>,
    pub csrf_sha256: Vec<u8>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub personal_code: Option<String>,
    pub name: Option<String>,
    pub method: Option<String>,
    pub ended_at: Option<i64>,
}

/// The columns of [`SessionRow`], in its order.
pub(crate) const SESSION_COLUMNS: &str = "id_sha256, csrf_sha256, created_at, last_seen_at, \
     expires_at, personal_code, name, method, ended_at";

fn sha256_column(bytes: Vec<u8>, column: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("{column} has {} bytes, not 32", bytes.len())))
}

impl SessionRow {
    pub fn into_session(self) -> Result<Session, StoreError> {
        use imza_store::from_millis;
        let citizen = match (self.personal_code, self.name, self.method) {
            (Some(personal_code), Some(name), Some(method)) => Some(SessionCitizen {
                personal_code,
                name,
                method: LoginMethod::parse(&method).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown login method {method:?}"))
                })?,
            }),
            (None, None, None) => None,
            _ => {
                return Err(StoreError::Corrupt(
                    "a session's citizen is half set".into(),
                ))
            }
        };
        Ok(Session {
            id_sha256: sha256_column(self.id_sha256, "id_sha256")?,
            csrf_sha256: sha256_column(self.csrf_sha256, "csrf_sha256")?,
            created_at: from_millis(self.created_at, "created_at")?,
            last_seen_at: from_millis(self.last_seen_at, "last_seen_at")?,
            expires_at: from_millis(self.expires_at, "expires_at")?,
            citizen,
            ended_at: self
                .ended_at
                .map(|t| from_millis(t, "ended_at"))
                .transpose()?,
        })
    }
}

/// An event row (at, personal_code, kind, method, detail) read from either engine.
pub(crate) fn event_from(
    at: i64,
    personal_code: String,
    kind: String,
    method: Option<String>,
    detail: String,
) -> Result<Event, StoreError> {
    Ok(Event {
        at: imza_store::from_millis(at, "at")?,
        personal_code,
        kind: EventKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown event kind {kind:?}")))?,
        method: method
            .map(|m| {
                LoginMethod::parse(&m)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown login method {m:?}")))
            })
            .transpose()?,
        detail,
    })
}

/// A row limit as SQL takes it.
pub(crate) fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
