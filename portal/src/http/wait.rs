//! The waiting page's questions: `POST /portal/login/wait` (with the session's CSRF token, as
//! every state-changing request) tells how the browser session's phone or QR login stands, as
//! JSON, and completes it when the phone has answered — a new session id with the citizen
//! (`session::log_in`), so the cookie of the waiting page is worth nothing after. The script
//! that asks is `/portal/assets/wait.js`, a file of the portal's (the CSP allows no inline
//! script).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::json;

use imza_mobile_sign::authentication::{self, PendingAuthentication};
use imza_mobile_sign::client::ClientError;

use super::{failed, forbidden, json, script, session_form, work, Portal};
use crate::session;
use crate::store::{LoginMethod, PendingKind, PendingLogin, Session, SessionCitizen, StoreError};

/// The waiting page's script.
pub const WAIT_JS: &str = include_str!("../../assets/wait.js");

/// `GET /portal/assets/wait.js`.
pub(super) async fn wait_js() -> Response<Body> {
    script(WAIT_JS)
}

/// How a login under way stands.
enum Standing {
    Waiting,
    /// Logged in; the new session's cookie when this answer gives it.
    Done(Option<String>),
    Failed(String),
}

fn standing(state: Standing) -> Response<Body> {
    let (value, cookie) = match state {
        Standing::Waiting => (json!({ "state": "waiting" }), None),
        Standing::Done(cookie) => (
            json!({ "state": "done", "location": "/portal/cabinet" }),
            cookie,
        ),
        Standing::Failed(message) => (json!({ "state": "failed", "message": message }), None),
    };
    let mut response = json(StatusCode::OK, &value);
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

pub(super) async fn wait(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let session = match session_form(&portal, &headers, body).await {
        Ok(Some((_, session))) => session,
        Ok(None) => return forbidden(),
        Err(refused) => return refused,
    };
    if session.citizen.is_some() {
        // Logged in by an earlier question (whose answer carried the new cookie).
        return standing(Standing::Done(None));
    }
    let worker = Arc::clone(&portal);
    let outcome = work(&portal, move || advance(&worker, &session)).await;
    match outcome {
        Ok(Ok(state)) => standing(state),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

/// Looks at the session's login under way and moves it on: blocking (the signature service
/// is asked, the phone's certificate validated).
fn advance(portal: &Portal, session: &Session) -> Result<Standing, StoreError> {
    let store = portal.store.as_ref();
    let Some(pending) = store.pending_login(&session.id_sha256)? else {
        return Ok(Standing::Failed(
            "no phone or QR login is under way; start again from the login page".into(),
        ));
    };
    let now = portal.clock.now();
    let citizen = match &pending.kind {
        PendingKind::Phone {
            mss_session_id,
            national_id,
            verification_code,
        } => {
            let logins = portal.phone.as_ref();
            let (Some(logins), Some(client)) = (logins, logins.and_then(|l| l.mss.as_ref())) else {
                return Ok(Standing::Failed(
                    "this portal does not offer the phone login".into(),
                ));
            };
            let asked = PendingAuthentication {
                session_id: mss_session_id.clone(),
                hash: pending.challenge,
                verification_code: verification_code.clone(),
                national_id: national_id.clone(),
            };
            // Asked once (no long poll): the page asks again in a second.
            match authentication::finish(client, &asked, &logins.trust, Duration::ZERO) {
                Ok(citizen) => SessionCitizen {
                    personal_code: citizen.personal_code,
                    name: citizen.name,
                    method: LoginMethod::Phone,
                },
                Err(ClientError::GaveUp { .. }) => return Ok(Standing::Waiting),
                Err(e) => {
                    store.take_pending_login(&session.id_sha256)?;
                    return Ok(Standing::Failed(format!("the phone login failed: {e}")));
                }
            }
        }
        PendingKind::Qr { approved, .. } => match approved {
            Some((citizen, _)) => citizen.clone(),
            None if super::qr::expired(pending.started_at, now) => {
                store.take_pending_login(&session.id_sha256)?;
                return Ok(Standing::Failed(
                    "the QR code expired before a phone answered; start again".into(),
                ));
            }
            None => return Ok(Standing::Waiting),
        },
    };
    complete(portal, session, &pending, citizen)
}

/// Logs the citizen in on the session whose login under way is `pending`: taken out first,
/// so that of two questions at once exactly one logs in.
fn complete(
    portal: &Portal,
    session: &Session,
    pending: &PendingLogin,
    citizen: SessionCitizen,
) -> Result<Standing, StoreError> {
    let store = portal.store.as_ref();
    if store.take_pending_login(&pending.session_sha256)?.is_none() {
        return Ok(Standing::Waiting);
    }
    match session::log_in(
        store,
        session,
        citizen,
        portal.clock.now(),
        &portal.sessions,
    ) {
        Ok(made) => Ok(Standing::Done(Some(session::set_cookie(
            &made.cookie,
            &portal.sessions,
        )))),
        // The session was used by another login meanwhile.
        Err(StoreError::NotFound(_)) => Ok(Standing::Waiting),
        Err(e) => Err(e),
    }
}
