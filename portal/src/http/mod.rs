//! The portal's routes (axum, served by imza-http like every service): the login page, the
//! cabinet and logout here, and each login method in a module of its own with its part of the
//! login page ([`login_answer`]): `code` (access codes), `card` (the ID card through
//! `imza agent`, with its scripts under `/portal/assets/`), `device` (device certificates,
//! TLS client authentication), `phone` (the ASAN-style phone login), `qr` (the QR login and
//! the phone's side of it), and `wait`, the waiting page's questions shared by the last two.
//!
//! Every answer carries a strict Content-Security-Policy (everything from the portal itself,
//! no inline script or style, no framing; the pages may also `fetch` the citizen's agent on
//! loopback when the card login is on: [`Portal::content_security_policy`]), `nosniff`, no referrer and `no-store`. Every
//! state-changing request is a POST carrying the session's CSRF token; a form body is at most
//! [`MAX_FORM_BYTES`]. Store work and revocation checks run within the portal's
//! [`WorkLimit`] ([`blocking`]): bounded, and refused with 503 and `Retry-After` beyond. Every
//! login route takes a turn of the login rate limits ([`limit_login`], one line) before it
//! does any work.

mod card;
mod code;
mod device;
pub mod documents;
mod phone;
mod qr;
mod wait;

pub use card::{CardLoginConfig, CSRF_HEADER};

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION,
    REFERRER_POLICY, RETRY_AFTER, SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use percent_encoding::percent_decode_str;

use imza_core::clock::Clock;
use imza_http::admission::{WorkError, DEFAULT_MAX_WAIT};
use imza_http::answer::closing;
use imza_http::{content_type_is, read_body, BodyRefused, Overloaded, Shutdown, WorkLimit};

use crate::access_code::AccessCodePolicy;
use crate::device::DeviceLogin;
use crate::document::{self, DocumentError, DocumentReference, Sealer};
use crate::login_limits::{client_address, LoginLimitPolicy, LoginLimits};
use crate::notices::{self, Mailer, NoticeSources};
use crate::pages::{self, CabinetRecords, Language};
use crate::phone::PhoneLogins;
use crate::records::{merge_uses, CitizenRecords};
use crate::registry::CitizenRegistry;
use crate::session::{self, csrf_token, SessionPolicy, COOKIE_NAME};
use crate::store::{CheckChannel, DocumentKind, DocumentRecord, PortalStore, Session, StoreError};
use imza_signer::SignatureVerifier;

/// Most rows of each table of the cabinet.
const CABINET_ROWS: usize = 100;

/// Largest form body read.
pub const MAX_FORM_BYTES: usize = 4 * 1024;

/// What the pages may load: only the portal's own resources; no inline script or style.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The portal's state: its store, clock and policies, its bounded work, the login rate
/// limits, and the login methods configured.
pub struct Portal {
    pub store: Arc<dyn PortalStore>,
    pub clock: Arc<dyn Clock>,
    pub sessions: SessionPolicy,
    pub codes: AccessCodePolicy,
    /// The ID-card login, when configured (the portal's origin, trusted CAs, the agent's
    /// address).
    pub card: Option<CardLoginConfig>,
    /// Every blocking piece of work of the portal's routes (store, revocation checks) runs
    /// within this limit. `imza serve` gives it threads of its own.
    pub work: WorkLimit,
    /// The rate limits every login route takes a turn of ([`limit_login`]).
    pub login_limits: LoginLimits,
    /// The device-certificate login; `None`: not offered (its button is not shown).
    pub device: Option<Arc<DeviceLogin>>,
    /// The other services' records the cabinet shows (who used the citizen's certificates,
    /// their certificates); `None`: only the portal's own.
    pub records: Option<Arc<dyn CitizenRecords>>,
    /// The phone and QR logins; `None`: not offered.
    pub phone: Option<Arc<PhoneLogins>>,
    /// What the registries say of citizens (e-mail addresses for notices, the facts the
    /// documents state); `None`: no registry configured.
    pub registry: Option<Arc<dyn CitizenRegistry>>,
    /// Sends the expiry notices by mail; `None`: the cabinet only.
    pub mailer: Option<Arc<dyn Mailer>>,
    /// The agency that issues and seals documents; `None`: no documents are issued.
    pub sealer: Option<Arc<Sealer>>,
    /// Validates the files checked on the public pages; `None`: only the register is shown.
    pub verifier: Option<Arc<SignatureVerifier>>,
    /// Organisations whose systems check documents through the API, by key.
    pub checkers: Vec<documents::Checker>,
}

impl Portal {
    /// A portal on `store` with the default policies, no card or device login, and its work
    /// on Tokio's blocking pool ([`default_work_limit`]).
    pub fn new(store: Arc<dyn PortalStore>, clock: Arc<dyn Clock>) -> Portal {
        Portal {
            store,
            clock,
            sessions: SessionPolicy::default(),
            codes: AccessCodePolicy::default(),
            card: None,
            work: default_work_limit(),
            login_limits: LoginLimits::new(LoginLimitPolicy::default()),
            device: None,
            records: None,
            phone: None,
            registry: None,
            mailer: None,
            sealer: None,
            verifier: None,
            checkers: Vec::new(),
        }
    }

    /// Registers a document the portal issued to `issued_to` — the PDF as rendered and sealed
    /// — under a fresh reference ([`document::register`]), at the portal's clock. Blocking:
    /// call it within the portal's work ([`blocking`]) or a thread of the caller's.
    pub fn register_document(
        &self,
        kind: DocumentKind,
        issued_to: &str,
        pdf: &[u8],
    ) -> Result<DocumentRecord, DocumentError> {
        document::register(self.store.as_ref(), kind, issued_to, self.clock.now(), pdf)
    }

    /// Records one check of a registered document (the verification page, an upload, an
    /// organisation's API call), at the portal's clock: the citizen sees it under "Who
    /// checked my documents". Blocking, as [`Portal::register_document`].
    pub fn record_check(
        &self,
        reference: &DocumentReference,
        organisation: Option<&str>,
        channel: CheckChannel,
    ) -> Result<(), DocumentError> {
        document::record_check(
            self.store.as_ref(),
            reference,
            organisation,
            channel,
            self.clock.now(),
        )
    }

    /// [`CONTENT_SECURITY_POLICY_VALUE`], with the citizen's agent added to `connect-src`
    /// when the card login is on: the login page's script calls it, and nothing else.
    pub fn content_security_policy(&self) -> String {
        match &self.card {
            Some(card) => CONTENT_SECURITY_POLICY_VALUE.replace(
                "connect-src 'self'",
                &format!("connect-src 'self' {}", card.agent_origin),
            ),
            None => CONTENT_SECURITY_POLICY_VALUE.to_string(),
        }
    }
}

/// The portal's work limit for libraries and tests: 8 at once on Tokio's blocking pool, 256
/// waiting.
pub fn default_work_limit() -> WorkLimit {
    WorkLimit::new("portal", 8, 256, DEFAULT_MAX_WAIT)
}

/// The portal's routes under `/portal`.
pub fn routes(portal: Arc<Portal>) -> Router {
    let csp = HeaderValue::from_str(&portal.content_security_policy())
        .unwrap_or_else(|_| HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE));
    Router::new()
        .route("/portal", get(login_page))
        .route("/portal/login/code", post(code::login))
        .route("/portal/login/card/nonce", post(card::nonce))
        .route("/portal/login/card", post(card::login))
        .route("/portal/assets/web-eid.js", get(card::web_eid_js))
        .route("/portal/assets/login-card.js", get(card::login_card_js))
        .route("/portal/login/device", post(device::login))
        .route("/portal/login/phone", post(phone::login))
        .route("/portal/login/qr", post(qr::start))
        .route("/portal/login/qr/image", get(qr::image))
        .route("/portal/login/wait", post(wait::wait))
        .route("/portal/assets/wait.js", get(wait::wait_js))
        .route("/portal/qr/v1/scan", post(qr::scan))
        .route("/portal/qr/v1/answer", post(qr::answer_login))
        .route("/portal/cabinet", get(cabinet))
        .route("/portal/documents", post(documents::request))
        .route("/portal/documents/{reference}", get(download_document))
        .route("/d", get(documents::check).post(documents::check_upload))
        .route(
            "/d/{reference}",
            get(documents::document).post(documents::document_upload),
        )
        .route("/d/{reference}/status", get(documents::status))
        .route("/portal/logout", post(logout))
        .layer(axum::middleware::map_response(
            move |mut response: Response<Body>| {
                let csp = csp.clone();
                async move {
                    response.headers_mut().insert(CONTENT_SECURITY_POLICY, csp);
                    response
                }
            },
        ))
        .with_state(portal)
}

/// How often `imza serve` runs the portal's clean-up by default ([`spawn_purge`]).
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Runs the portal's clean-up ([`session::purge`]) at once and then every `every` until
/// `shutdown`, within the portal's work limit. Needs a Tokio runtime. A failure is noted and
/// tried again next time: nothing depends on a purge (an ended or timed-out session is
/// refused whether or not its row is still there).
pub fn spawn_purge(portal: Arc<Portal>, shutdown: Shutdown, every: std::time::Duration) {
    tokio::spawn(async move {
        loop {
            let worker = Arc::clone(&portal);
            let done = work(&portal, move || {
                session::purge(
                    worker.store.as_ref(),
                    worker.clock.now(),
                    &worker.sessions,
                    crate::webeid::NONCE_LIFETIME,
                )
            })
            .await;
            match done {
                Ok(Ok(purged)) if purged.total() > 0 => eprintln!(
                    "portal: purged {} sessions, {} nonces, {} access codes and {} logins under \
                     way no longer usable",
                    purged.sessions, purged.nonces, purged.access_codes, purged.pending_logins
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("portal: purge: {e}"),
                Err(_) => eprintln!("portal: purge: the portal is busy; trying again later"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

/// Runs the expiry notices ([`notices::run_round`]) at once and then every `every` until
/// `shutdown`, within the portal's work limit, when the portal reads the CA's records. A
/// failed round is noted and the next one tries again: the claims in the store keep each
/// notice to one.
pub fn spawn_notices(portal: Arc<Portal>, shutdown: Shutdown, every: std::time::Duration) {
    if portal.records.is_none() {
        return;
    }
    tokio::spawn(async move {
        loop {
            let worker = Arc::clone(&portal);
            let done = work(&portal, move || {
                let Some(records) = worker.records.as_deref() else {
                    return Ok(notices::NoticeRound::default());
                };
                notices::run_round(
                    &NoticeSources {
                        store: worker.store.as_ref(),
                        records,
                        registry: worker.registry.as_deref(),
                        mailer: worker.mailer.as_deref(),
                    },
                    worker.clock.now(),
                )
            })
            .await;
            match done {
                Ok(Ok(round)) if round.claimed > 0 => eprintln!(
                    "portal: expiry notices: {} sent by mail, {} in the cabinet only, {} to try \
                     again",
                    round.mailed, round.cabinet_only, round.failed
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("portal: expiry notices: {e}"),
                Err(_) => {
                    eprintln!("portal: expiry notices: the portal is busy; trying again later")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

/// An answer with the headers every portal answer carries.
pub(crate) fn answer(status: StatusCode, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "no-referrer"),
        (CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

pub(crate) fn html(status: StatusCode, page: String) -> Response<Body> {
    let mut response = answer(status, Body::from(page));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A JSON answer (to a page's script or a phone) with the portal's headers.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = answer(status, Body::from(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// One of the portal's own scripts (no CDN), under the CSP.
pub(crate) fn script(source: &'static str) -> Response<Body> {
    let mut response = answer(StatusCode::OK, Body::from(source));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    response
}

pub(crate) fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = answer(status, Body::from(format!("{message}\n")));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(crate) fn see_other(location: &'static str, cookie: Option<String>) -> Response<Body> {
    let mut response = answer(StatusCode::SEE_OTHER, Body::empty());
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static(location));
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

pub(crate) fn with_cookie(mut response: Response<Body>, cookie: String) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Why a route's blocking work gave no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The portal's work limit is full.
    Busy(Overloaded),
    /// The work panicked (a bug); the server carries on.
    Crashed,
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

/// 503: with `Retry-After` when the portal is busy; a store failure's details go to the
/// operator's log, not to the web.
pub(crate) fn failed(e: impl Into<Failure>) -> Response<Body> {
    match e.into() {
        Failure::Busy(full) => {
            let mut response = text(StatusCode::SERVICE_UNAVAILABLE, &full.to_string());
            response
                .headers_mut()
                .insert(RETRY_AFTER, imza_http::answer::retry_after_value(&full));
            response
        }
        Failure::Crashed => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request did not complete",
        ),
        Failure::Store(e) => {
            eprintln!("portal: store: {e}");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the portal cannot reach its records now; try again shortly",
            )
        }
    }
}

/// The session cookie's value, if the request has exactly one.
pub(crate) fn cookie_of(headers: &HeaderMap) -> Option<String> {
    let mut found = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_string());
    match (found.next(), found.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Runs blocking work (store, revocation checks) within the portal's [`WorkLimit`], off the
/// runtime's threads.
pub(crate) async fn work<T: Send + 'static>(
    portal: &Portal,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    portal.work.run_blocking(f).await.map_err(|e| match e {
        WorkError::Overloaded(full) => Failure::Busy(full),
        WorkError::Failed { .. } => Failure::Crashed,
    })
}

/// Runs blocking store work within the portal's [`WorkLimit`] ([`work`]).
pub(crate) async fn blocking<T: Send + 'static>(
    portal: &Portal,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Failure> {
    Ok(work(portal, f).await??)
}

/// The client a request came from, for the login rate limits: the TCP peer imza-http hands
/// every request (`ConnectInfo`), or, when the peer is one of the configured trusted proxies,
/// the address its `X-Forwarded-For` names ([`client_address`]). `None` when the request
/// carries no peer (routes driven in process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub Option<IpAddr>);

/// A page's language is the request's: `?lang=eng` in its URL, Azerbaijani otherwise
/// ([`Language::from_query`]).
impl<S: Send + Sync> FromRequestParts<S> for Language {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Language, Infallible> {
        Ok(Language::from_query(parts.uri.query()))
    }
}

impl FromRequestParts<Arc<Portal>> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        portal: &Arc<Portal>,
    ) -> Result<ClientAddress, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        let trusted = &portal.login_limits.policy().trusted_proxies;
        if trusted.is_empty() {
            return Ok(ClientAddress(peer));
        }
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .take(8)
            .collect();
        Ok(ClientAddress(client_address(peer, &forwarded, trusted)))
    }
}

/// Takes one login attempt of `client` for `identity` (a national id or personal code, when
/// the attempt names one) from the login rate limits, or gives the 429 to answer with. Every
/// login route calls it once per attempt, before any store, scrypt or OCSP work:
///
/// `if let Err(refused) = limit_login(&portal, client, Some(&national_id)) { return refused; }`
// The refusal is the answer itself, handed straight back to axum: boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn limit_login(
    portal: &Portal,
    client: ClientAddress,
    identity: Option<&str>,
) -> Result<(), Response<Body>> {
    let refused = match portal
        .login_limits
        .admit(client.0, identity, portal.clock.now())
    {
        Ok(()) => return Ok(()),
        Err(refused) => refused,
    };
    let wait = refused.retry_after_secs();
    let mut response = text(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("Giriş cəhdləri çoxdur; {wait} saniyədən sonra yenidən cəhd edin. / {refused}"),
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(wait));
    Err(response)
}

/// The live session of the request, if any.
pub(crate) async fn current(
    portal: &Arc<Portal>,
    headers: &HeaderMap,
) -> Result<Option<(Session, String)>, Failure> {
    let Some(cookie) = cookie_of(headers) else {
        return Ok(None);
    };
    let worker = Arc::clone(portal);
    blocking(portal, move || {
        let portal = worker;
        let now = portal.clock.now();
        Ok(
            session::current(portal.store.as_ref(), &cookie, now, &portal.sessions)?
                .map(|s| (s, cookie)),
        )
    })
    .await
}

async fn login_page(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    language: Language,
) -> Response<Body> {
    match current(&portal, &headers).await {
        Ok(Some((session, _))) if session.citizen.is_some() => see_other("/portal/cabinet", None),
        Ok(Some((_, cookie))) => login_answer(
            &portal,
            language,
            &csrf_token(&cookie),
            StatusCode::OK,
            None,
        ),
        Ok(None) => {
            let started = {
                let worker = Arc::clone(&portal);
                blocking(&portal, move || {
                    session::start(worker.store.as_ref(), worker.clock.now(), &worker.sessions)
                })
                .await
            };
            match started {
                Ok(made) => with_cookie(
                    login_answer(&portal, language, &made.csrf_token, StatusCode::OK, None),
                    session::set_cookie(&made.cookie, &portal.sessions),
                ),
                Err(e) => failed(e),
            }
        }
        Err(e) => failed(e),
    }
}

/// The login page for the browser session whose CSRF token is `csrf_token`, with `message`
/// (why a login was refused) above the methods.
pub(crate) fn login_answer(
    portal: &Portal,
    language: Language,
    csrf_token: &str,
    status: StatusCode,
    message: Option<&str>,
) -> Response<Body> {
    let sections = login_sections(portal, language, csrf_token);
    html(status, pages::login(language, &sections, message))
}

/// [`login_answer`] for a refused login of the browser session whose CSRF token is
/// `csrf_token`: the page again, with why above the methods.
pub(crate) fn refused_login(
    portal: &Portal,
    language: Language,
    csrf_token: String,
) -> impl Fn(StatusCode, String) -> Response<Body> + '_ {
    move |status, why| login_answer(portal, language, &csrf_token, status, Some(&why))
}

/// The login page's parts, one per login method, in the order shown.
fn login_sections(portal: &Portal, language: Language, csrf_token: &str) -> Vec<String> {
    let mut sections = Vec::new();
    if let Some(card) = &portal.card {
        sections.push(card::section(language, csrf_token, &card.agent_origin));
    }
    if portal.device.is_some() {
        sections.push(device::section(language, csrf_token));
    }
    if let Some(phone_logins) = &portal.phone {
        if phone_logins.mss.is_some() {
            sections.push(phone::section(language, csrf_token));
        }
        sections.push(qr::section(language, csrf_token));
    }
    sections.push(code::section(language, csrf_token));
    sections
}

/// A form body's fields (`application/x-www-form-urlencoded`), each name at most once.
pub(crate) fn form_fields(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the form is not UTF-8".to_string())?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|_| "the form is not UTF-8".to_string())
        };
        let (name, value) = (decode(name)?, decode(value)?);
        if fields.iter().any(|(n, _)| *n == name) {
            return Err(format!("the form has {name} twice"));
        }
        fields.push((name, value));
    }
    Ok(fields)
}

/// Reads a form posted by one of the portal's pages: its fields, or the answer refusing it.
pub(crate) async fn read_form(
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<(String, String)>, Response<Body>> {
    if content_type_is(headers, "application/x-www-form-urlencoded") != Some(true) {
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a form post is expected",
        ));
    }
    let body = read_body(body, headers, MAX_FORM_BYTES, None)
        .await
        // A body left unread closes the connection: the client cannot reuse it.
        .map_err(|e| {
            closing(match e {
                BodyRefused::TooLarge { limit } => text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("a form is at most {limit} bytes"),
                ),
                _ => text(StatusCode::BAD_REQUEST, "the form could not be read"),
            })
        })?;
    form_fields(&body.bytes).map_err(|e| text(StatusCode::BAD_REQUEST, &e))
}

pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The browser's live session before any login, when `csrf` is its CSRF token: the session
/// and its cookie; else the refusal ([`forbidden`], or the store's failure). What every login
/// form's route asks first.
pub(crate) async fn anonymous_session(
    portal: &Arc<Portal>,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(Session, String), Response<Body>> {
    let (session, cookie) = match current(portal, headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(forbidden()),
        Err(e) => return Err(failed(e)),
    };
    if session.citizen.is_some() || !session::check_csrf(&session, csrf) {
        return Err(forbidden());
    }
    Ok((session, cookie))
}

/// A posted login form that passed the login rate limits and belongs to the browser's
/// anonymous session, with its CSRF token checked: where the code, phone and QR logins start.
/// As an extractor it reads the form, takes one attempt from the login rate limits (for the
/// identity in its `national_id` field, when it has one) before any store work, and finds the
/// anonymous session; else its rejection is the answer refusing the request.
pub(crate) struct LoginForm {
    pub fields: Vec<(String, String)>,
    pub session: Session,
    pub cookie: String,
}

impl FromRequest<Arc<Portal>> for LoginForm {
    type Rejection = Response<Body>;

    async fn from_request(
        request: Request<Body>,
        portal: &Arc<Portal>,
    ) -> Result<LoginForm, Response<Body>> {
        let (mut parts, body) = request.into_parts();
        let Ok(client) = ClientAddress::from_request_parts(&mut parts, portal).await;
        let fields = read_form(&parts.headers, body).await?;
        let identity = fields
            .iter()
            .any(|(name, _)| name == "national_id")
            .then(|| field(&fields, "national_id"));
        limit_login(portal, client, identity)?;
        let (session, cookie) =
            anonymous_session(portal, &parts.headers, field(&fields, "csrf")).await?;
        Ok(LoginForm {
            fields,
            session,
            cookie,
        })
    }
}

/// A form posted by the browser's current session, its CSRF token checked: the form's fields
/// and the session, `None` when the browser has no session; else the answer refusing it (an
/// unreadable form, a wrong token). Where logout, the QR login's wait and document requests
/// start.
// The refusal is the answer itself, handed straight back to axum: boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub(crate) async fn session_form(
    portal: &Arc<Portal>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Option<(Vec<(String, String)>, Session)>, Response<Body>> {
    let fields = read_form(headers, body).await?;
    let Some((session, _)) = current(portal, headers).await.map_err(failed)? else {
        return Ok(None);
    };
    if !session::check_csrf(&session, field(&fields, "csrf")) {
        return Err(forbidden());
    }
    Ok(Some((fields, session)))
}

/// The refusal of a state-changing request without its session or CSRF token.
pub(crate) fn forbidden() -> Response<Body> {
    text(
        StatusCode::FORBIDDEN,
        "this form is out of date or not the portal's; reload the page and try again",
    )
}

async fn cabinet(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    language: Language,
) -> Response<Body> {
    let (session, cookie) = match current(&portal, &headers).await {
        Ok(Some(found)) if found.0.citizen.is_some() => found,
        Ok(_) => return see_other("/portal", None),
        Err(e) => return failed(e),
    };
    let personal_code = session
        .citizen
        .as_ref()
        .map(|c| c.personal_code.clone())
        .unwrap_or_default();
    // Only the session's own citizen's records: the personal code comes from the session.
    let worker = Arc::clone(&portal);
    let read = blocking(&portal, move || {
        let history = worker.store.events(&personal_code, CABINET_ROWS)?;
        let (uses, certificates) = match &worker.records {
            Some(records) => (
                records.certificate_uses(&personal_code, CABINET_ROWS)?,
                Some(records.certificates(&personal_code, CABINET_ROWS)?),
            ),
            None => (Vec::new(), None),
        };
        let uses = merge_uses(&history, uses, CABINET_ROWS);
        let documents = worker.store.documents_of(&personal_code, CABINET_ROWS)?;
        let checks = worker.store.checks_of(&personal_code, CABINET_ROWS)?;
        let notices = worker.store.notices_of(&personal_code, CABINET_ROWS)?;
        Ok((history, uses, certificates, (documents, checks, notices)))
    })
    .await;
    match read {
        Ok((history, uses, certificates, (documents, checks, notices))) => html(
            StatusCode::OK,
            pages::cabinet(
                language,
                &session,
                &csrf_token(&cookie),
                &CabinetRecords {
                    history: &history,
                    uses: &uses,
                    certificates: certificates.as_deref(),
                    now: portal.clock.now(),
                    documents: &documents,
                    checks: &checks,
                    notices: &notices,
                    issuing: portal.sealer.is_some() && portal.registry.is_some(),
                },
            ),
        ),
        Err(e) => failed(e),
    }
}

/// `GET /portal/documents/{reference}`: the PDF of a document, only to a session of the
/// citizen it was issued to, as an attachment; 404 for anything else — another citizen's
/// document is not told apart from none.
async fn download_document(
    State(portal): State<Arc<Portal>>,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Response<Body> {
    let not_found = || text(StatusCode::NOT_FOUND, "no such document");
    let Ok(reference) = DocumentReference::parse(&reference) else {
        return not_found();
    };
    let personal_code = match current(&portal, &headers).await {
        Ok(Some((session, _))) => match session.citizen {
            Some(citizen) => citizen.personal_code,
            None => return not_found(),
        },
        Ok(None) => return not_found(),
        Err(e) => return failed(e),
    };
    let worker = Arc::clone(&portal);
    let key = reference.as_str().to_string();
    let found = blocking(&portal, move || match worker.store.document(&key)? {
        Some(document) if document.issued_to == personal_code => worker.store.document_pdf(&key),
        _ => Ok(None),
    })
    .await;
    match found {
        Ok(Some(pdf)) => {
            let mut response = answer(StatusCode::OK, Body::from(pdf));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
            if let Ok(value) =
                HeaderValue::from_str(&format!("attachment; filename=\"{reference}.pdf\""))
            {
                headers.insert(CONTENT_DISPOSITION, value);
            }
            response
        }
        Ok(None) => not_found(),
        Err(e) => failed(e),
    }
}

async fn logout(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let session = match session_form(&portal, &headers, body).await {
        Ok(Some((_, session))) => session,
        Ok(None) => return see_other("/portal", Some(session::clear_cookie())),
        Err(refused) => return refused,
    };
    let worker = Arc::clone(&portal);
    match blocking(&portal, move || {
        session::log_out(worker.store.as_ref(), &session, worker.clock.now())
    })
    .await
    {
        Ok(()) | Err(Failure::Store(StoreError::NotFound(_))) => {
            see_other("/portal", Some(session::clear_cookie()))
        }
        Err(e) => failed(e),
    }
}
