//! The portal's routes (axum, served by imza-http like every service): the login page, the
//! cabinet and logout here, and each login method in a module of its own with its part of the
//! login page ([`login_sections`]): `code` (access codes), `card` (the ID card through
//! `imza agent`, with its scripts under `/portal/assets/`), `phone` (the ASAN-style phone
//! login), `qr` (the QR login and the phone's side of it), and `wait`, the waiting page's
//! questions shared by the last two. The device-certificate login joins them as it is built.
//!
//! Every answer carries a strict Content-Security-Policy (everything from the portal itself,
//! no inline script or style, no framing; the pages may also `fetch` the citizen's agent on
//! loopback when the card login is on: [`Portal::content_security_policy`]), `nosniff`, no referrer and `no-store`. Every
//! state-changing request is a POST carrying the session's CSRF token; a form body is at most
//! [`MAX_FORM_BYTES`]. Store work runs on Tokio's blocking threads.

mod card;
mod code;
mod phone;
mod qr;
mod wait;

pub use card::{CardLoginConfig, CSRF_HEADER};

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY,
    SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, Uri};
use axum::routing::{get, post};
use axum::Router;
use percent_encoding::percent_decode_str;

use imza_core::clock::Clock;
use imza_http::{content_type_is, read_body, BodyRefused};

use crate::access_code::AccessCodePolicy;
use crate::pages::{self, Language};
use crate::phone::PhoneLogins;
use crate::session::{self, csrf_token, SessionPolicy, COOKIE_NAME};
use crate::store::{PortalStore, Session, StoreError};

/// Largest form body read.
pub const MAX_FORM_BYTES: usize = 4 * 1024;

/// What the pages may load: only the portal's own resources; no inline script or style.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The portal's state: its store, clock and policies.
pub struct Portal {
    pub store: Arc<dyn PortalStore>,
    pub clock: Arc<dyn Clock>,
    pub sessions: SessionPolicy,
    pub codes: AccessCodePolicy,
    /// The ID-card login, when configured (the portal's origin, trusted CAs, the agent's
    /// address).
    pub card: Option<CardLoginConfig>,
    /// The phone and QR logins; `None`: not offered.
    pub phone: Option<Arc<PhoneLogins>>,
}

impl Portal {
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
        .route("/portal/login/phone", post(phone::login))
        .route("/portal/login/qr", post(qr::start))
        .route("/portal/login/qr/image", get(qr::image))
        .route("/portal/login/wait", post(wait::wait))
        .route("/portal/assets/wait.js", get(wait::script))
        .route("/portal/qr/v1/scan", post(qr::scan))
        .route("/portal/qr/v1/answer", post(qr::answer_login))
        .route("/portal/cabinet", get(cabinet))
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

pub(crate) fn failed(e: StoreError) -> Response<Body> {
    eprintln!("portal: store: {e}");
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the portal cannot reach its records now; try again shortly",
    )
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

/// Runs blocking store work off the runtime's threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("the portal's worker failed: {e}")))?
}

/// The live session of the request, if any.
pub(crate) async fn current(
    portal: &Arc<Portal>,
    headers: &HeaderMap,
) -> Result<Option<(Session, String)>, StoreError> {
    let Some(cookie) = cookie_of(headers) else {
        return Ok(None);
    };
    let portal = Arc::clone(portal);
    blocking(move || {
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
    uri: Uri,
) -> Response<Body> {
    let language = Language::from_query(uri.query());
    match current(&portal, &headers).await {
        Ok(Some((session, _))) if session.citizen.is_some() => see_other("/portal/cabinet", None),
        Ok(Some((_, cookie))) => html(
            StatusCode::OK,
            pages::login(
                language,
                &login_sections(&portal, language, &csrf_token(&cookie)),
                None,
            ),
        ),
        Ok(None) => {
            let started = {
                let portal = Arc::clone(&portal);
                blocking(move || {
                    session::start(portal.store.as_ref(), portal.clock.now(), &portal.sessions)
                })
                .await
            };
            match started {
                Ok(made) => with_cookie(
                    html(
                        StatusCode::OK,
                        pages::login(
                            language,
                            &login_sections(&portal, language, &made.csrf_token),
                            None,
                        ),
                    ),
                    session::set_cookie(&made.cookie, &portal.sessions),
                ),
                Err(e) => failed(e),
            }
        }
        Err(e) => failed(e),
    }
}

/// The login page's parts, one per login method, in the order shown.
pub(crate) fn login_sections(portal: &Portal, language: Language, csrf_token: &str) -> Vec<String> {
    let mut sections = Vec::new();
    if let Some(card) = &portal.card {
        sections.push(card::section(language, csrf_token, &card.agent_origin));
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
        .map_err(|e| match e {
            BodyRefused::TooLarge { limit } => text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("a form is at most {limit} bytes"),
            ),
            _ => text(StatusCode::BAD_REQUEST, "the form could not be read"),
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
    uri: Uri,
) -> Response<Body> {
    let language = Language::from_query(uri.query());
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
    let history = {
        let portal = Arc::clone(&portal);
        blocking(move || portal.store.events(&personal_code, 100)).await
    };
    match history {
        Ok(history) => html(
            StatusCode::OK,
            pages::cabinet(language, &session, &csrf_token(&cookie), &history),
        ),
        Err(e) => failed(e),
    }
}

async fn logout(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let fields = match read_form(&headers, body).await {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let session = match current(&portal, &headers).await {
        Ok(Some((session, _))) => session,
        Ok(None) => return see_other("/portal", Some(session::clear_cookie())),
        Err(e) => return failed(e),
    };
    if !session::check_csrf(&session, field(&fields, "csrf")) {
        return forbidden();
    }
    let worker = Arc::clone(&portal);
    match blocking(move || session::log_out(worker.store.as_ref(), &session, worker.clock.now()))
        .await
    {
        Ok(()) | Err(StoreError::NotFound(_)) => {
            see_other("/portal", Some(session::clear_cookie()))
        }
        Err(e) => failed(e),
    }
}
