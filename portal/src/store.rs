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
    steps: &[
        (1, include_str!("store/migrations/sqlite/0001_initial.sql")),
        (
            2,
            include_str!("store/migrations/sqlite/0002_access_codes.sql"),
        ),
        (
            3,
            include_str!("store/migrations/sqlite/0003_pending_logins.sql"),
        ),
        (
            4,
            include_str!("store/migrations/sqlite/0004_documents_and_notices.sql"),
        ),
    ],
};

/// The portal's tables on PostgreSQL: the same version numbers name the same tables.
pub(crate) const SCHEMA_POSTGRES: Migrations = Migrations {
    what: "the portal tables",
    table: "portal_schema_migrations",
    steps: &[
        (
            1,
            include_str!("store/migrations/postgres/0001_initial.sql"),
        ),
        (
            2,
            include_str!("store/migrations/postgres/0002_access_codes.sql"),
        ),
        (
            3,
            include_str!("store/migrations/postgres/0003_pending_logins.sql"),
        ),
        (
            4,
            include_str!("store/migrations/postgres/0004_documents_and_notices.sql"),
        ),
    ],
};

/// The portal's tables as `imza store migrate` copies them (keep in step with the migrations).
pub const TABLES: TableSet = TableSet {
    sqlite: &SCHEMA_SQLITE,
    postgres: &SCHEMA_POSTGRES,
    version: 4,
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
        Table {
            name: "portal_access_codes",
            columns: &[
                Column::text("personal_code"),
                Column::bytes("code_id"),
                Column::bytes("code_scrypt"),
                Column::bytes("salt"),
                Column::bigint("issued_at"),
                Column::bigint("expires_at"),
                Column::integer("tries_left"),
                Column::bigint("locked_until"),
            ],
            order_by: &["personal_code"],
            identity: None,
        },
        Table {
            name: "portal_pending_logins",
            columns: &[
                Column::bytes("session_sha256"),
                Column::text("method"),
                Column::bigint("started_at"),
                Column::bytes("challenge"),
                Column::text("mss_session_id"),
                Column::text("national_id"),
                Column::text("verification_code"),
                Column::text("qr_token"),
                Column::bytes("qr_secret"),
                Column::text("approved_personal_code"),
                Column::text("approved_name"),
                Column::bigint("approved_at"),
            ],
            order_by: &["session_sha256"],
            identity: None,
        },
        Table {
            name: "portal_documents",
            columns: &[
                Column::text("reference"),
                Column::text("kind"),
                Column::text("issued_to"),
                Column::bigint("issued_at"),
                Column::bytes("pdf_sha256"),
                Column::bigint("withdrawn_at"),
                Column::text("withdrawal_reason"),
                Column::bytes("pdf"),
            ],
            order_by: &["reference"],
            identity: None,
        },
        Table {
            name: "portal_document_checks",
            columns: &[
                Column::bigint("seq"),
                Column::text("reference"),
                Column::bigint("checked_at"),
                Column::text("organisation"),
                Column::text("channel"),
            ],
            order_by: &["seq"],
            identity: Some("seq"),
        },
        Table {
            name: "portal_notices",
            columns: &[
                Column::text("certificate"),
                Column::integer("threshold_days"),
                Column::text("personal_code"),
                Column::text("profile"),
                Column::bigint("not_after"),
                Column::bigint("claimed_at"),
                Column::bigint("sent_at"),
                Column::text("emailed_to"),
            ],
            order_by: &["certificate", "threshold_days"],
            identity: None,
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

/// A citizen's one-time access code as kept: its scrypt hash, never the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessCode {
    pub personal_code: String,
    /// Random, names this issuance: a wrong try or a use counts against this code only, not
    /// one issued after it.
    pub code_id: [u8; 16],
    pub code_scrypt: Vec<u8>,
    pub salt: Vec<u8>,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub tries_left: u32,
    /// Wrong tries used up: no try is taken before this time.
    pub locked_until: Option<OffsetDateTime>,
}

/// A phone or QR login under way for a browser session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLogin {
    pub session_sha256: [u8; 32],
    pub started_at: OffsetDateTime,
    /// What the phone signs: the SHA-256 of a random challenge (phone login, sent through the
    /// signature service), or a random challenge the portal gives the phone that scanned the
    /// QR code.
    pub challenge: [u8; 32],
    pub kind: PendingKind,
}

/// What a login under way waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingKind {
    /// The signature service's authentication session.
    Phone {
        mss_session_id: String,
        national_id: String,
        verification_code: String,
    },
    /// A phone to scan the QR code and answer.
    Qr {
        /// Public: it is in every device link.
        token: String,
        /// Authenticates the device links; never leaves the server.
        secret: [u8; 32],
        /// Whom the phone's answer identified, once one was accepted.
        approved: Option<(SessionCitizen, OffsetDateTime)>,
    },
}

/// What a wrong try left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailedTry {
    /// Tries left before the lock-out.
    TriesLeft(u32),
    /// That was the last one: locked until then, with the tries back afterwards.
    Locked(OffsetDateTime),
}

/// The portal's records. Each method is atomic; what concurrent callers get is said per
/// method. Times are kept to the millisecond.
pub trait PortalStore: Send + Sync + std::fmt::Debug {
    /// Stores a new session. `Conflict` when its id is taken (nothing changes).
    ///
    /// Committed with the lighter durability of records a client repeats (as the signature
    /// service's sessions): it survives a crash of imza, and a power cut may lose the last
    /// moment's new sessions — their browsers load the login page again. The same holds for
    /// [`PortalStore::touch_session`]. Logins, logouts, nonces, codes and histories are
    /// committed in full.
    fn create_session(&self, session: &Session) -> Result<(), StoreError>;

    /// The session with this id, live or ended.
    fn session(&self, id_sha256: &[u8; 32]) -> Result<Option<Session>, StoreError>;

    /// Records a request of the live session at `at`. `NotFound` when no live session has
    /// this id.
    fn touch_session(&self, id_sha256: &[u8; 32], at: OffsetDateTime) -> Result<(), StoreError>;

    /// A login, in one transaction: the live anonymous session `old` ends at `event.at` (its
    /// nonce and login under way gone with it), the new session `new` (with its citizen: a
    /// new id, so a session id planted before login is worth nothing after it) is stored, and
    /// `event` appended to the citizen's history.
    /// `NotFound` when `old` is not live and anonymous, `Conflict` when `new`'s id is taken;
    /// either way nothing changes. Of concurrent logins on one session, exactly one succeeds.
    fn log_in(&self, old: &[u8; 32], new: &Session, event: &Event) -> Result<(), StoreError>;

    /// Ends the live session at `at` (logout, or a timeout seen), with its nonce and login
    /// under way, appending `event` to the citizen's history if given, in one transaction. `NotFound` when no live session has this
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

    /// Keeps `code` as its citizen's access code, replacing one they had.
    fn put_access_code(&self, code: &AccessCode) -> Result<(), StoreError>;

    /// The citizen's access code, if one is kept.
    fn access_code(&self, personal_code: &str) -> Result<Option<AccessCode>, StoreError>;

    /// Counts a wrong try against the code `code_id` of the citizen, at `now`: one try less;
    /// the last one locks them out until `now + lock` and gives the tries (`tries`) back for
    /// afterwards. `NotFound` when that code is not kept (used, or replaced) or is locked at
    /// `now`. Concurrent wrong tries each count once.
    fn record_wrong_try(
        &self,
        personal_code: &str,
        code_id: &[u8; 16],
        now: OffsetDateTime,
        tries: u32,
        lock: time::Duration,
    ) -> Result<FailedTry, StoreError>;

    /// Keeps `login` as its browser session's login under way, replacing one it had.
    /// `Conflict` when its QR token is another session's (nothing changes).
    fn put_pending_login(&self, login: &PendingLogin) -> Result<(), StoreError>;

    /// The browser session's login under way, if any.
    fn pending_login(&self, session_sha256: &[u8; 32]) -> Result<Option<PendingLogin>, StoreError>;

    /// The QR login whose token is `token`, if one is under way.
    fn qr_login(&self, token: &str) -> Result<Option<PendingLogin>, StoreError>;

    /// Records that a phone's answer to the QR login `token` identified `citizen` at `at`.
    /// `NotFound` when no QR login with this token is under way unapproved (nothing changes):
    /// of concurrent approvals exactly one succeeds.
    fn approve_qr_login(
        &self,
        token: &str,
        citizen: &SessionCitizen,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Takes the browser session's login under way out: of concurrent callers exactly one
    /// gets it.
    fn take_pending_login(
        &self,
        session_sha256: &[u8; 32],
    ) -> Result<Option<PendingLogin>, StoreError>;

    /// Uses the code `code_id` of the citizen: removes it if it is kept, unexpired and not
    /// locked at `now`, and says whether it did. Of concurrent uses exactly one gets `true`.
    fn use_access_code(
        &self,
        personal_code: &str,
        code_id: &[u8; 16],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// The clean-up ([`PurgeCutoffs`]): deletes sessions ended, past their absolute timeout or
    /// idle too long, nonces too old or of sessions not live, and expired access codes (a used
    /// code is deleted when used). The citizens' histories stay.
    ///
    /// Not one transaction: rounds of at most `batch` rows per statement, each statement its
    /// own short transaction, at most `max_rounds` rounds, so logins are never held up behind
    /// a large clean-up. Concurrent purges may interleave; each row is deleted once, so their
    /// counts add up to the rows deleted. A live session is never deleted: a session a
    /// request is using when it passes its idle cut-off is ended anyway.
    fn purge(
        &self,
        cutoffs: &PurgeCutoffs,
        batch: usize,
        max_rounds: usize,
    ) -> Result<Purged, StoreError>;

    /// Registers a document issued to a citizen, with its PDF: one INSERT. `Conflict` when
    /// the reference is taken (nothing changes: the caller draws another reference).
    fn register_document(&self, document: &DocumentRecord, pdf: &[u8]) -> Result<(), StoreError>;

    /// The document with this reference (without its PDF).
    fn document(&self, reference: &str) -> Result<Option<DocumentRecord>, StoreError>;

    /// The PDF of the document with this reference, as registered.
    fn document_pdf(&self, reference: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// The documents issued to the citizen, newest first, at most `limit` (without PDFs).
    fn documents_of(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<DocumentRecord>, StoreError>;

    /// Withdraws the valid document `reference` at `at` for `reason`: one conditional UPDATE,
    /// so of concurrent withdrawals exactly one succeeds. `NotFound` for an unknown
    /// reference, `Conflict` for one withdrawn already; either way nothing changes. Returns
    /// the document as now withdrawn.
    fn withdraw_document(
        &self,
        reference: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<DocumentRecord, StoreError>;

    /// Records one check of a registered document. `NotFound` (nothing recorded) when no
    /// document has the reference. Concurrent checks are each recorded.
    fn record_check(&self, check: &DocumentCheck) -> Result<(), StoreError>;

    /// The checks of the documents issued to the citizen, newest first, at most `limit`.
    fn checks_of(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<DocumentCheck>, StoreError>;

    /// Claims the notice `(notice.certificate, notice.threshold_days)` for sending, at
    /// `notice.claimed_at`: "insert if absent" in one statement. `true`: this caller is to
    /// send it — the claim is new, or an earlier claim was never marked sent and is older
    /// than `lease` (its sender died). `false`: it is sent, or another caller holds a live
    /// claim. Of concurrent claimers (threads, processes, nodes on one database) at most one
    /// gets `true`.
    fn claim_notice(
        &self,
        notice: &ExpiryNotice,
        lease: time::Duration,
    ) -> Result<bool, StoreError>;

    /// Marks the claimed notice sent at `at` (`emailed_to`: the address mailed, `None`: the
    /// cabinet only). `NotFound` when there is no such claim, or it was marked already.
    fn mark_notice_sent(
        &self,
        certificate: &str,
        threshold_days: u32,
        at: OffsetDateTime,
        emailed_to: Option<&str>,
    ) -> Result<(), StoreError>;

    /// The citizen's notices (claimed, sent or not), newest first, at most `limit`.
    fn notices_of(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<ExpiryNotice>, StoreError>;
}

/// What a document states (an "e-arayış").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// Where the citizen is registered as living.
    Residence,
    /// Where the citizen works.
    Employment,
    /// The personal data the registries hold.
    PersonalData,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Residence => "residence",
            DocumentKind::Employment => "employment",
            DocumentKind::PersonalData => "personal_data",
        }
    }

    pub fn parse(text: &str) -> Option<DocumentKind> {
        [
            DocumentKind::Residence,
            DocumentKind::Employment,
            DocumentKind::PersonalData,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// Whether a registered document still holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocumentStatus {
    Valid,
    /// Withdrawn by the agency (a wrong statement, a court order), with why.
    Withdrawn {
        at: OffsetDateTime,
        reason: String,
    },
}

/// A registered document, as the register keeps it (its PDF apart: [`PortalStore::document_pdf`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentRecord {
    /// The document's reference in canonical form (12 Crockford base32 characters, no
    /// dashes; see [`crate::document::DocumentReference`]).
    pub reference: String,
    pub kind: DocumentKind,
    /// The personal code of the citizen it was issued to.
    pub issued_to: String,
    pub issued_at: OffsetDateTime,
    /// SHA-256 of the PDF as registered.
    pub pdf_sha256: [u8; 32],
    pub status: DocumentStatus,
}

/// How a document was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckChannel {
    /// The verification page opened with the reference (the QR code on the paper).
    Page,
    /// The PDF uploaded to the verification page.
    Upload,
    /// An organisation's system, through the API.
    Api,
}

impl CheckChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckChannel::Page => "page",
            CheckChannel::Upload => "upload",
            CheckChannel::Api => "api",
        }
    }

    pub fn parse(text: &str) -> Option<CheckChannel> {
        [CheckChannel::Page, CheckChannel::Upload, CheckChannel::Api]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

/// One verification of a registered document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentCheck {
    pub reference: String,
    pub checked_at: OffsetDateTime,
    /// The checking organisation, when it identified itself (its API key); `None`: anyone.
    pub organisation: Option<String>,
    pub channel: CheckChannel,
}

/// "Certificate X of citizen P expires in at most N days": sent once per (certificate,
/// threshold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryNotice {
    /// The certificate: its CA's name and serial, `citizens:1A2B…`.
    pub certificate: String,
    /// 60, 30 or 7.
    pub threshold_days: u32,
    pub personal_code: String,
    /// The certificate's profile (`citizen-sign`, …).
    pub profile: String,
    pub not_after: OffsetDateTime,
    /// When a sender claimed it (the latest claim).
    pub claimed_at: OffsetDateTime,
    /// When it was sent; `None` while a claim is under way (or its sender died).
    pub sent_at: Option<OffsetDateTime>,
    /// The address it was mailed to; `None`: the cabinet only (or not sent yet).
    pub emailed_to: Option<String>,
}

/// What [`PortalStore::purge`] removes: records no request can use any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgeCutoffs {
    /// Sessions ended (logout, login, a timeout seen), past their absolute timeout at this
    /// time, and access codes expired by it, go.
    pub now: OffsetDateTime,
    /// Sessions without a request since this time (the idle timeout) go.
    pub idle_before: OffsetDateTime,
    /// Nonces issued before this time (their lifetime) go, and so do nonces of sessions that
    /// are not live.
    pub nonces_before: OffsetDateTime,
}

/// How many records a purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub sessions: usize,
    pub nonces: usize,
    pub access_codes: usize,
    /// Phone and QR logins under way whose browser session is no longer live.
    pub pending_logins: usize,
}

impl Purged {
    pub fn total(&self) -> usize {
        self.sessions + self.nonces + self.access_codes + self.pending_logins
    }
}

/// The purge's statements (`{n}` a placeholder, as [`wrong_try_sql`]), each deleting at most
/// a batch: sessions with 1 now, 2 idle_before, 3 batch; nonces with 1 nonces_before,
/// 2 batch; access codes with 1 now, 2 batch. The sessions go first, so their nonces go in
/// the same round.
pub(crate) fn purge_sql(placeholder: &str) -> [String; 4] {
    let p = |n: u8| format!("{placeholder}{n}");
    [
        format!(
            "DELETE FROM portal_sessions WHERE id_sha256 IN (SELECT id_sha256 FROM \
             portal_sessions WHERE ended_at IS NOT NULL OR expires_at <= {now} \
             OR last_seen_at <= {idle} LIMIT {batch})",
            now = p(1),
            idle = p(2),
            batch = p(3),
        ),
        format!(
            "DELETE FROM portal_nonces WHERE session_sha256 IN (SELECT n.session_sha256 FROM \
             portal_nonces n WHERE n.issued_at <= {before} OR NOT EXISTS (SELECT 1 FROM \
             portal_sessions s WHERE s.id_sha256 = n.session_sha256 AND s.ended_at IS NULL) \
             LIMIT {batch})",
            before = p(1),
            batch = p(2),
        ),
        format!(
            "DELETE FROM portal_access_codes WHERE personal_code IN (SELECT personal_code FROM \
             portal_access_codes WHERE expires_at <= {now} LIMIT {batch})",
            now = p(1),
            batch = p(2),
        ),
        // A login under way goes with its session (one that timed out unseen, purged above).
        format!(
            "DELETE FROM portal_pending_logins WHERE session_sha256 IN (SELECT \
             l.session_sha256 FROM portal_pending_logins l WHERE NOT EXISTS (SELECT 1 FROM \
             portal_sessions s WHERE s.id_sha256 = l.session_sha256 AND s.ended_at IS NULL) \
             LIMIT {batch})",
            batch = p(1),
        ),
    ]
}

/// An access code row (personal_code, code_id, code_scrypt, salt, issued_at, expires_at,
/// tries_left, locked_until) read from either engine.
#[allow(clippy::too_many_arguments)]
pub(crate) fn access_code_from(
    personal_code: String,
    code_id: Vec<u8>,
    code_scrypt: Vec<u8>,
    salt: Vec<u8>,
    issued_at: i64,
    expires_at: i64,
    tries_left: i64,
    locked_until: Option<i64>,
) -> Result<AccessCode, StoreError> {
    use imza_store::from_millis;
    Ok(AccessCode {
        personal_code,
        code_id: <[u8; 16]>::try_from(code_id.as_slice())
            .map_err(|_| StoreError::Corrupt("code_id is not 16 bytes".into()))?,
        code_scrypt,
        salt,
        issued_at: from_millis(issued_at, "issued_at")?,
        expires_at: from_millis(expires_at, "expires_at")?,
        tries_left: u32::try_from(tries_left)
            .map_err(|_| StoreError::Corrupt(format!("tries_left {tries_left}")))?,
        locked_until: locked_until
            .map(|t| from_millis(t, "locked_until"))
            .transpose()?,
    })
}

/// A wrong try, as one UPDATE both engines run (`{n}` a placeholder: `?n` or `$n`): with
/// 1 personal_code, 2 code_id, 3 now, 4 the tries given back, 5 the lock's end. Returns the
/// new (tries_left, locked_until); a row locked at `now` is not touched.
pub(crate) fn wrong_try_sql(placeholder: &str) -> String {
    let p = |n: u8| format!("{placeholder}{n}");
    format!(
        "UPDATE portal_access_codes SET \
           tries_left = CASE WHEN tries_left <= 1 THEN {t} ELSE tries_left - 1 END, \
           locked_until = CASE WHEN tries_left <= 1 THEN {l} ELSE locked_until END \
         WHERE personal_code = {c} AND code_id = {i} \
           AND (locked_until IS NULL OR locked_until <= {n}) \
         RETURNING tries_left, locked_until",
        c = p(1),
        i = p(2),
        n = p(3),
        t = p(4),
        l = p(5),
    )
}

/// What [`wrong_try_sql`] returned, given the lock's end it set when it locked.
pub(crate) fn failed_try(
    tries_left: i64,
    locked_until: Option<i64>,
    lock_end: OffsetDateTime,
) -> Result<FailedTry, StoreError> {
    if locked_until == Some(imza_store::millis(lock_end)) {
        return Ok(FailedTry::Locked(lock_end));
    }
    u32::try_from(tries_left)
        .map(FailedTry::TriesLeft)
        .map_err(|_| StoreError::Corrupt(format!("tries_left {tries_left}")))
}

/// Uses a code: one DELETE both engines run (`{n}` as in [`wrong_try_sql`]) with
/// 1 personal_code, 2 code_id, 3 now.
pub(crate) fn use_code_sql(placeholder: &str) -> String {
    let p = |n: u8| format!("{placeholder}{n}");
    format!(
        "DELETE FROM portal_access_codes WHERE personal_code = {c} AND code_id = {i} \
         AND expires_at > {n} AND (locked_until IS NULL OR locked_until <= {n})",
        c = p(1),
        i = p(2),
        n = p(3),
    )
}

/// Keeps a code, replacing the citizen's (`{n}` as in [`wrong_try_sql`]), columns in
/// [`ACCESS_CODE_COLUMNS`] order.
pub(crate) fn put_code_sql(placeholder: &str) -> String {
    let values: Vec<String> = (1..=8).map(|n| format!("{placeholder}{n}")).collect();
    format!(
        "INSERT INTO portal_access_codes ({ACCESS_CODE_COLUMNS}) VALUES ({}) \
         ON CONFLICT (personal_code) DO UPDATE SET code_id = excluded.code_id, \
         code_scrypt = excluded.code_scrypt, salt = excluded.salt, \
         issued_at = excluded.issued_at, expires_at = excluded.expires_at, \
         tries_left = excluded.tries_left, locked_until = excluded.locked_until",
        values.join(", ")
    )
}

/// The columns of an access code row, in [`access_code_from`]'s order.
pub(crate) const ACCESS_CODE_COLUMNS: &str = "personal_code, code_id, code_scrypt, salt, \
     issued_at, expires_at, tries_left, locked_until";

/// The columns of a pending login row, in [`PendingRow`]'s order.
pub(crate) const PENDING_COLUMNS: &str = "session_sha256, method, started_at, challenge, \
     mss_session_id, national_id, verification_code, qr_token, qr_secret, \
     approved_personal_code, approved_name, approved_at";

/// Keeps a pending login, replacing its session's (`{n}` as in [`wrong_try_sql`]), columns
/// in [`PENDING_COLUMNS`] order.
pub(crate) fn put_pending_sql(placeholder: &str) -> String {
    let values: Vec<String> = (1..=12).map(|n| format!("{placeholder}{n}")).collect();
    let updates: Vec<String> = PENDING_COLUMNS
        .split(',')
        .map(str::trim)
        .filter(|c| *c != "session_sha256")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO portal_pending_logins ({PENDING_COLUMNS}) VALUES ({}) \
         ON CONFLICT (session_sha256) DO UPDATE SET {}",
        values.join(", "),
        updates.join(", ")
    )
}

/// A pending login row, read from either engine.
pub(crate) struct PendingRow {
    pub session_sha256: Vec<u8>,
    pub method: String,
    pub started_at: i64,
    pub challenge: Vec<u8>,
    pub mss_session_id: Option<String>,
    pub national_id: Option<String>,
    pub verification_code: Option<String>,
    pub qr_token: Option<String>,
    pub qr_secret: Option<Vec<u8>>,
    pub approved_personal_code: Option<String>,
    pub approved_name: Option<String>,
    pub approved_at: Option<i64>,
}

/// The values a pending login is stored as, in [`PENDING_COLUMNS`] order.
pub(crate) struct PendingValues<'a> {
    pub method: &'static str,
    pub started_at: i64,
    pub mss_session_id: Option<&'a str>,
    pub national_id: Option<&'a str>,
    pub verification_code: Option<&'a str>,
    pub qr_token: Option<&'a str>,
    pub qr_secret: Option<&'a [u8]>,
    pub approved_personal_code: Option<&'a str>,
    pub approved_name: Option<&'a str>,
    pub approved_at: Option<i64>,
}

impl PendingLogin {
    pub(crate) fn values(&self) -> PendingValues<'_> {
        let mut values = PendingValues {
            method: "phone",
            started_at: imza_store::millis(self.started_at),
            mss_session_id: None,
            national_id: None,
            verification_code: None,
            qr_token: None,
            qr_secret: None,
            approved_personal_code: None,
            approved_name: None,
            approved_at: None,
        };
        match &self.kind {
            PendingKind::Phone {
                mss_session_id,
                national_id,
                verification_code,
            } => {
                values.mss_session_id = Some(mss_session_id);
                values.national_id = Some(national_id);
                values.verification_code = Some(verification_code);
            }
            PendingKind::Qr {
                token,
                secret,
                approved,
            } => {
                values.method = "qr";
                values.qr_token = Some(token);
                values.qr_secret = Some(&secret[..]);
                if let Some((citizen, at)) = approved {
                    values.approved_personal_code = Some(&citizen.personal_code);
                    values.approved_name = Some(&citizen.name);
                    values.approved_at = Some(imza_store::millis(*at));
                }
            }
        }
        values
    }
}

impl PendingRow {
    pub fn into_pending(self) -> Result<PendingLogin, StoreError> {
        use imza_store::from_millis;
        let half = |what: &str| StoreError::Corrupt(format!("a {what} login's row is half set"));
        let kind = match self.method.as_str() {
            "phone" => match (
                self.mss_session_id,
                self.national_id,
                self.verification_code,
            ) {
                (Some(mss_session_id), Some(national_id), Some(verification_code)) => {
                    PendingKind::Phone {
                        mss_session_id,
                        national_id,
                        verification_code,
                    }
                }
                _ => return Err(half("phone")),
            },
            "qr" => {
                let (Some(token), Some(secret)) = (self.qr_token, self.qr_secret) else {
                    return Err(half("QR"));
                };
                let approved = match (
                    self.approved_personal_code,
                    self.approved_name,
                    self.approved_at,
                ) {
                    (Some(personal_code), Some(name), Some(at)) => Some((
                        SessionCitizen {
                            personal_code,
                            name,
                            method: LoginMethod::Qr,
                        },
                        from_millis(at, "approved_at")?,
                    )),
                    (None, None, None) => None,
                    _ => return Err(half("QR")),
                };
                PendingKind::Qr {
                    token,
                    secret: sha256_column(secret, "qr_secret")?,
                    approved,
                }
            }
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown pending login method {other:?}"
                )))
            }
        };
        Ok(PendingLogin {
            session_sha256: sha256_column(self.session_sha256, "session_sha256")?,
            started_at: from_millis(self.started_at, "started_at")?,
            challenge: sha256_column(self.challenge, "challenge")?,
            kind,
        })
    }
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

/// The columns of a document row without its PDF, in [`document_from`]'s order.
pub(crate) const DOCUMENT_COLUMNS: &str =
    "reference, kind, issued_to, issued_at, pdf_sha256, withdrawn_at, withdrawal_reason";

/// A document row ([`DOCUMENT_COLUMNS`]) read from either engine.
pub(crate) fn document_from(
    reference: String,
    kind: String,
    issued_to: String,
    issued_at: i64,
    pdf_sha256: Vec<u8>,
    withdrawn_at: Option<i64>,
    withdrawal_reason: Option<String>,
) -> Result<DocumentRecord, StoreError> {
    use imza_store::from_millis;
    let status = match (withdrawn_at, withdrawal_reason) {
        (None, None) => DocumentStatus::Valid,
        (Some(at), Some(reason)) => DocumentStatus::Withdrawn {
            at: from_millis(at, "withdrawn_at")?,
            reason,
        },
        _ => {
            return Err(StoreError::Corrupt(
                "a document's withdrawal is half set".into(),
            ))
        }
    };
    Ok(DocumentRecord {
        kind: DocumentKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown document kind {kind:?}")))?,
        reference,
        issued_to,
        issued_at: from_millis(issued_at, "issued_at")?,
        pdf_sha256: sha256_column(pdf_sha256, "pdf_sha256")?,
        status,
    })
}

/// A check row (reference, checked_at, organisation, channel) read from either engine.
pub(crate) fn check_from(
    reference: String,
    checked_at: i64,
    organisation: Option<String>,
    channel: String,
) -> Result<DocumentCheck, StoreError> {
    Ok(DocumentCheck {
        reference,
        checked_at: imza_store::from_millis(checked_at, "checked_at")?,
        organisation,
        channel: CheckChannel::parse(&channel)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown check channel {channel:?}")))?,
    })
}

/// The columns of a notice row, in [`notice_from`]'s order.
pub(crate) const NOTICE_COLUMNS: &str = "certificate, threshold_days, personal_code, profile, \
     not_after, claimed_at, sent_at, emailed_to";

/// A notice row ([`NOTICE_COLUMNS`]) read from either engine.
#[allow(clippy::too_many_arguments)]
pub(crate) fn notice_from(
    certificate: String,
    threshold_days: i64,
    personal_code: String,
    profile: String,
    not_after: i64,
    claimed_at: i64,
    sent_at: Option<i64>,
    emailed_to: Option<String>,
) -> Result<ExpiryNotice, StoreError> {
    use imza_store::from_millis;
    Ok(ExpiryNotice {
        certificate,
        threshold_days: u32::try_from(threshold_days)
            .map_err(|_| StoreError::Corrupt(format!("threshold_days {threshold_days}")))?,
        personal_code,
        profile,
        not_after: from_millis(not_after, "not_after")?,
        claimed_at: from_millis(claimed_at, "claimed_at")?,
        sent_at: sent_at.map(|t| from_millis(t, "sent_at")).transpose()?,
        emailed_to,
    })
}

/// The claim of a notice, as one statement both engines run (`{n}` as in [`wrong_try_sql`]),
/// columns 1–6 as in [`NOTICE_COLUMNS`] (certificate … claimed_at), 7 the lease's cut-off:
/// a new row, or a row never marked sent whose claim is older than the cut-off taken over.
/// Returns a row when this caller holds the claim.
pub(crate) fn claim_notice_sql(placeholder: &str) -> String {
    let p = |n: u8| format!("{placeholder}{n}");
    format!(
        "INSERT INTO portal_notices (certificate, threshold_days, personal_code, profile, \
         not_after, claimed_at) VALUES ({}, {}, {}, {}, {}, {}) \
         ON CONFLICT (certificate, threshold_days) DO UPDATE SET claimed_at = excluded.claimed_at \
         WHERE portal_notices.sent_at IS NULL AND portal_notices.claimed_at <= {} \
         RETURNING 1",
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
    )
}

/// A withdrawal, as one statement both engines run: with 1 reference, 2 at, 3 reason.
pub(crate) fn withdraw_sql(placeholder: &str) -> String {
    let p = |n: u8| format!("{placeholder}{n}");
    format!(
        "UPDATE portal_documents SET withdrawn_at = {at}, withdrawal_reason = {reason} \
         WHERE reference = {reference} AND withdrawn_at IS NULL RETURNING {DOCUMENT_COLUMNS}",
        reference = p(1),
        at = p(2),
        reason = p(3),
    )
}

/// The checks of a citizen's documents, newest first: with 1 personal code, 2 limit.
pub(crate) fn checks_of_sql(placeholder: &str) -> String {
    format!(
        "SELECT c.reference, c.checked_at, c.organisation, c.channel \
         FROM portal_document_checks c JOIN portal_documents d ON d.reference = c.reference \
         WHERE d.issued_to = {placeholder}1 ORDER BY c.seq DESC LIMIT {placeholder}2"
    )
}

/// Why a withdrawal changed nothing: the document as it is, or none.
pub(crate) fn not_withdrawn(found: Option<DocumentRecord>) -> StoreError {
    match found {
        None => StoreError::NotFound("no document has this reference".into()),
        Some(DocumentRecord {
            status: DocumentStatus::Withdrawn { at, .. },
            ..
        }) => StoreError::Conflict(format!(
            "the document was withdrawn already, at {}",
            imza_core::clock::rfc3339(at)
        )),
        Some(_) => StoreError::Conflict("the document changed meanwhile".into()),
    }
}
