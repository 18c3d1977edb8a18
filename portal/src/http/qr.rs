//! The QR login (see [`crate::qr`]): the login page's button starts a QR login bound to the
//! browser session; its waiting page shows `/portal/login/qr/image`, the QR code of the device
//! link as it stands this second (a PNG made anew on every request, the script reloading it
//! each second). The phone that scanned it talks to the portal directly, as JSON without
//! cookies:
//!
//! 1. `POST /portal/qr/v1/scan` `{"link"}`: the link's auth code must be this login's and
//!    the link at most [`crate::qr::MAX_LINK_AGE_SECONDS`] old — a photographed QR used later gets
//!    nothing — and the answer is the portal's name, origin and the login's challenge;
//! 2. `POST /portal/qr/v1/answer` `{"link", "certificate", "signature"}`: the same link (its
//!    code again; at most [`ANSWER_WINDOW_SECONDS`] old, the citizen's time to enter the PIN),
//!    a signature over [`answer_digest`] of the portal's **own** origin, the token and the
//!    challenge, and a phone's authentication certificate that validates with OCSP. Then the
//!    login is approved, once; only the browser session that started it (whose cookie the
//!    waiting page polls with) is logged in.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use base64ct::{Base64, Encoding};
use serde::de::DeserializeOwned;

use imza_http::answer::closing;
use imza_http::{content_type_is, read_body, BodyRefused};

use super::{
    answer, current, failed, forbidden, html, json, limit_login, text, work, ClientAddress,
    LoginForm, Portal,
};
use crate::pages::{self, escape, Language, Waiting};
use crate::phone::PhoneLogins;
use crate::qr::{
    answer_digest, link_token, qr_png, PhoneAnswer, QrError, QrSession, ScanAnswer, ScanRequest,
    ANSWER_WINDOW_SECONDS, QR_LOGIN_LIFETIME_SECONDS,
};
use crate::session::csrf_token;
use crate::store::{LoginMethod, PendingKind, PendingLogin, SessionCitizen, StoreError};

/// Largest JSON body a phone may post (a certificate and a signature, base64).
pub const MAX_PHONE_BODY_BYTES: usize = 16 * 1024;

/// The login page's QR form: one button.
pub(super) fn section(language: Language, csrf_token: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/portal/login/qr{query}\" id=\"qr-login\">\
         <h2>{title}</h2>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">{submit}</button></form>",
        query = language.query(),
        title = language.pick("QR kod ilə", "With a QR code"),
        csrf = escape(csrf_token),
        submit = language.pick("QR kodu göstər", "Show the QR code"),
    )
}

/// The device link's `lang`.
fn link_language(language: Language) -> &'static str {
    language.pick("aze", "eng")
}

/// `POST /portal/login/qr`: starts a QR login for the browser session.
pub(super) async fn start(
    State(portal): State<Arc<Portal>>,
    language: Language,
    LoginForm {
        session, cookie, ..
    }: LoginForm,
) -> Response<Body> {
    if portal.phone.is_none() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "this portal does not offer the QR login",
        );
    }
    let worker = Arc::clone(&portal);
    let started = super::blocking(&portal, move || {
        let now = worker.clock.now();
        let qr = QrSession::start(now)
            .map_err(|e| StoreError::Backend(format!("no random bytes: {e}")))?;
        let mut challenge = [0u8; 32];
        openssl::rand::rand_bytes(&mut challenge)
            .map_err(|e| StoreError::Backend(format!("no random bytes: {e}")))?;
        worker.store.put_pending_login(&PendingLogin {
            session_sha256: session.id_sha256,
            started_at: now,
            challenge,
            kind: PendingKind::Qr {
                token: qr.token.clone(),
                secret: *qr.secret(),
                approved: None,
            },
        })
    })
    .await;
    match started {
        Ok(()) => html(
            StatusCode::OK,
            pages::waiting(
                language,
                &csrf_token(&cookie),
                Waiting::Qr {
                    image_url: &format!("/portal/login/qr/image{}", language.query()),
                },
            ),
        ),
        Err(e) => failed(e),
    }
}

/// `GET /portal/login/qr/image`: the QR code of the session's device link at this second.
pub(super) async fn image(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    language: Language,
) -> Response<Body> {
    let Some(logins) = portal.phone.clone() else {
        return text(
            StatusCode::NOT_FOUND,
            "this portal does not offer the QR login",
        );
    };
    let session = match current(&portal, &headers).await {
        Ok(Some((session, _))) => session,
        Ok(None) => return forbidden(),
        Err(e) => return failed(e),
    };
    let worker = Arc::clone(&portal);
    let pending = match super::blocking(&portal, move || {
        worker.store.pending_login(&session.id_sha256)
    })
    .await
    {
        Ok(pending) => pending,
        Err(e) => return failed(e),
    };
    let now = portal.clock.now();
    let Some(PendingLogin {
        started_at,
        kind: PendingKind::Qr { token, secret, .. },
        ..
    }) = pending
    else {
        return text(StatusCode::NOT_FOUND, "no QR login is under way");
    };
    if expired(started_at, now) {
        return text(StatusCode::NOT_FOUND, "the QR login expired; start again");
    }
    let link = QrSession::from_stored(token, secret, started_at).device_link(
        &logins.origin,
        link_language(language),
        now,
    );
    match qr_png(&link) {
        Ok(png) => {
            let mut response = answer(StatusCode::OK, Body::from(png));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
            response
        }
        Err(e) => {
            eprintln!("portal: QR image: {e}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the QR code could not be drawn",
            )
        }
    }
}

/// A refusal to the phone: `{"error": message}`.
fn refuse(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

/// Reads a phone's JSON body.
async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Response<Body>> {
    if content_type_is(headers, "application/json") != Some(true) {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a JSON body (application/json) is expected",
        ));
    }
    let body = read_body(body, headers, MAX_PHONE_BODY_BYTES, None)
        .await
        // A body left unread closes the connection: the client cannot reuse it.
        .map_err(|e| {
            closing(match e {
                BodyRefused::TooLarge { limit } => refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the body is at most {limit} bytes"),
                ),
                _ => refuse(StatusCode::BAD_REQUEST, "the body could not be read"),
            })
        })?;
    serde_json::from_slice(&body.bytes).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            &format!("not the JSON expected: {e}"),
        )
    })
}

/// A phone's message about a QR login (`/portal/qr/v1/…`), whatever it says: after the client
/// address's rate limit, read as `T` (with its link), and the login under way the link names.
async fn phone_message<T: DeserializeOwned + Linked>(
    portal: &Arc<Portal>,
    client: ClientAddress,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Arc<PhoneLogins>, T, PendingLogin, QrSession), Response<Body>> {
    limit_login(portal, client, None)?;
    let Some(logins) = portal.phone.clone() else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "this portal does not offer the QR login",
        ));
    };
    let message: T = read_json(headers, body).await?;
    let (login, qr) = login_of_link(portal, &logins, message.link()).await?;
    Ok((logins, message, login, qr))
}

/// A phone's message naming the device link it answers.
trait Linked {
    fn link(&self) -> &str;
}

impl Linked for ScanRequest {
    fn link(&self) -> &str {
        &self.link
    }
}

impl Linked for PhoneAnswer {
    fn link(&self) -> &str {
        &self.link
    }
}

/// The QR login a phone's link names, and its device-link session.
async fn login_of_link(
    portal: &Arc<Portal>,
    logins: &PhoneLogins,
    link: &str,
) -> Result<(PendingLogin, QrSession), Response<Body>> {
    let token = link_token(link, &logins.origin)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, &e.to_string()))?;
    let worker = Arc::clone(portal);
    let found = super::blocking(portal, move || worker.store.qr_login(&token))
        .await
        .map_err(failed)?;
    let Some(login) = found else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "no QR login is under way for this code: it ended or was never started",
        ));
    };
    let PendingKind::Qr {
        token,
        secret,
        approved,
    } = &login.kind
    else {
        return Err(refuse(StatusCode::NOT_FOUND, "not a QR login"));
    };
    if approved.is_some() {
        return Err(refuse(
            StatusCode::CONFLICT,
            "this QR login was already answered by a phone",
        ));
    }
    let qr = QrSession::from_stored(token.clone(), *secret, login.started_at);
    Ok((login, qr))
}

fn link_refusal(e: QrError) -> Response<Body> {
    let status = match e {
        QrError::Malformed(_) => StatusCode::BAD_REQUEST,
        QrError::WrongCode | QrError::Stale { .. } => StatusCode::FORBIDDEN,
    };
    refuse(status, &e.to_string())
}

/// `POST /portal/qr/v1/scan`: a phone that scanned the QR code asks what it is for.
pub(super) async fn scan(
    State(portal): State<Arc<Portal>>,
    client: ClientAddress,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let (logins, request, login, qr) =
        match phone_message::<ScanRequest>(&portal, client, &headers, body).await {
            Ok(found) => found,
            Err(refused) => return refused,
        };
    if let Err(e) = qr.check_link(&request.link, &logins.origin, portal.clock.now()) {
        return link_refusal(e);
    }
    json(
        StatusCode::OK,
        &ScanAnswer {
            portal_name: logins.name.clone(),
            origin: logins.origin.clone(),
            challenge: Base64::encode_string(&login.challenge),
            answer_within_seconds: ANSWER_WINDOW_SECONDS,
        },
    )
}

/// `POST /portal/qr/v1/answer`: the phone's signed answer.
pub(super) async fn answer_login(
    State(portal): State<Arc<Portal>>,
    client: ClientAddress,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let (logins, request, login, qr) =
        match phone_message::<PhoneAnswer>(&portal, client, &headers, body).await {
            Ok(found) => found,
            Err(refused) => return refused,
        };
    if let Err(e) = qr.check_link_within(
        &request.link,
        &logins.origin,
        portal.clock.now(),
        ANSWER_WINDOW_SECONDS,
    ) {
        return link_refusal(e);
    }
    let (Ok(certificate), Ok(signature)) = (
        Base64::decode_vec(&request.certificate),
        Base64::decode_vec(&request.signature),
    ) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "certificate and signature must be base64",
        );
    };
    let digest = answer_digest(&logins.origin, &qr.token, &login.challenge);
    let worker = Arc::clone(&portal);
    let checked = work(&portal, move || {
        let citizen = match logins.check_qr_answer(certificate, &digest, &signature) {
            Ok(citizen) => citizen,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let approved = SessionCitizen {
            personal_code: citizen.personal_code,
            name: citizen.name,
            method: LoginMethod::Qr,
        };
        match worker
            .store
            .approve_qr_login(&qr.token, &approved, worker.clock.now())
        {
            Ok(()) => Ok(Ok(approved)),
            Err(StoreError::NotFound(_)) => Ok(Err(
                "this QR login was already answered, or it ended".to_string(),
            )),
            Err(e) => Err(e),
        }
    })
    .await;
    match checked {
        Ok(Ok(Ok(citizen))) => json(
            StatusCode::OK,
            &serde_json::json!({ "result": "OK", "name": citizen.name }),
        ),
        Ok(Ok(Err(why))) => refuse(
            StatusCode::FORBIDDEN,
            &format!("the login is refused: {why}"),
        ),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

/// Whether a QR login started at `started_at` is past its lifetime at `now`.
pub(super) fn expired(started_at: time::OffsetDateTime, now: time::OffsetDateTime) -> bool {
    (now - started_at).whole_seconds() > QR_LOGIN_LIFETIME_SECONDS
}
