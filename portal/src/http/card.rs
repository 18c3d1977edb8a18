//! The ID-card login in the browser: the login page's part runs `/portal/assets/login-card.js`,
//! which asks the portal for a challenge (`POST /portal/login/card/nonce`), has `imza agent`
//! sign it over the page's origin with the card (through `/portal/assets/web-eid.js`), and
//! posts the Web eID token (`POST /portal/login/card`). Both POSTs carry the session's CSRF
//! token in the `X-CSRF-Token` header and answer JSON.
//!
//! The nonce is bound to the browser session in the store and taken out at the login POST,
//! whatever comes of it (single use); the token is checked by [`CardLogin`] over the portal's
//! **own** origin, so a token a look-alike site had made over its origin is refused.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode};
use serde_json::json;

use imza_http::answer::closing;
use imza_http::{content_type_is, read_body, BodyRefused};

use super::{
    blocking, current, failed, json, limit_login, script, with_cookie, work, ClientAddress, Portal,
};
use crate::card::CardLogin;
use crate::pages::{escape, Language};
use crate::session;
use crate::store::{LoginMethod, SessionCitizen, StoreError};
use crate::webeid::{AuthToken, ChallengeNonce, TokenError, MAX_TOKEN_BYTES};

/// The header carrying the CSRF token of the card login's requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The card login's configuration: how tokens are checked, and where the citizen's agent
/// listens (the login page's script calls it; the CSP's `connect-src` allows it).
pub struct CardLoginConfig {
    pub login: CardLogin,
    /// The agent's origin, `http://127.0.0.1:24843` by default.
    pub agent_origin: String,
}

/// The login page's card section: a button the script drives, and where it says how it went.
/// The script reads the CSRF token, the agent's origin and the language from `data-`
/// attributes (no inline script under the CSP).
pub(super) fn section(language: Language, csrf_token: &str, agent_origin: &str) -> String {
    format!(
        "<section id=\"card-login\" data-csrf=\"{csrf}\" data-agent=\"{agent}\" data-lang=\"{lang}\">\
         <h2>{title}</h2><p>{hint}</p>\
         <button type=\"button\" id=\"card-login-button\">{submit}</button>\
         <p id=\"card-message\" role=\"status\" aria-live=\"polite\"></p>\
         <script src=\"/portal/assets/web-eid.js\"></script>\
         <script src=\"/portal/assets/login-card.js\"></script></section>",
        csrf = escape(csrf_token),
        agent = escape(agent_origin),
        lang = language.pick("az", "en"),
        title = language.pick("Şəxsiyyət vəsiqəsi ilə", "With the ID card"),
        hint = language.pick(
            "Kartı oxuyucuya taxın; PIN kodu imza agentinin pəncərəsində soruşulacaq.",
            "Insert the card in the reader; the imza agent asks for the PIN in its own window."
        ),
        submit = language.pick("Kartla daxil ol", "Log in with the card"),
    )
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json(status, &json!({ "code": code, "message": message }))
}

fn csrf_refused(language: Language) -> Response<Body> {
    refusal(
        StatusCode::FORBIDDEN,
        "ERR_IMZA_CSRF",
        language.pick(
            "Səhifənin vaxtı keçib; səhifəni yeniləyin və yenidən cəhd edin.",
            "This page is out of date or not the portal's; reload it and try again.",
        ),
    )
}

fn not_configured() -> Response<Body> {
    refusal(
        StatusCode::NOT_FOUND,
        "ERR_IMZA_CARD_LOGIN_OFF",
        "the card login is not configured on this portal",
    )
}

/// The live anonymous session of a request carrying its CSRF token in [`CSRF_HEADER`], or the
/// refusal.
async fn anonymous_session(
    portal: &Arc<Portal>,
    headers: &HeaderMap,
    language: Language,
) -> Result<crate::store::Session, Response<Body>> {
    let session = match current(portal, headers).await {
        Ok(Some((session, _))) => session,
        Ok(None) => return Err(csrf_refused(language)),
        Err(e) => return Err(failed(e)),
    };
    let token = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if session.citizen.is_some() || !session::check_csrf(&session, token) {
        return Err(csrf_refused(language));
    }
    Ok(session)
}

/// `POST /portal/login/card/nonce`: a new challenge for this browser session (replacing one it
/// had), `{"challengeNonce": "…"}`.
pub(super) async fn nonce(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    language: Language,
) -> Response<Body> {
    if portal.card.is_none() {
        return not_configured();
    }
    let session = match anonymous_session(&portal, &headers, language).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let worker = Arc::clone(&portal);
    let issued = blocking(&portal, move || {
        let nonce = ChallengeNonce::generate(worker.clock.now())
            .map_err(|e| StoreError::Backend(format!("no random bytes: {e}")))?;
        worker
            .store
            .put_nonce(&session.id_sha256, nonce.as_str(), nonce.issued_at())?;
        Ok(nonce)
    })
    .await;
    match issued {
        Ok(nonce) => json(StatusCode::OK, &json!({ "challengeNonce": nonce.as_str() })),
        Err(e) => failed(e),
    }
}

/// Why a token was refused, as the page is told: a code its script words, and the reason.
fn token_refused(error: &TokenError) -> Response<Body> {
    let (status, code) = match error {
        TokenError::Malformed(_) => (StatusCode::BAD_REQUEST, "ERR_IMZA_MALFORMED_TOKEN"),
        TokenError::NonceExpired => (StatusCode::BAD_REQUEST, "ERR_IMZA_CHALLENGE_EXPIRED"),
        TokenError::Signature | TokenError::Origin(_) => {
            (StatusCode::UNAUTHORIZED, "ERR_IMZA_TOKEN_SIGNATURE")
        }
        TokenError::CertificateTime { .. }
        | TokenError::NotForAuthentication(_)
        | TokenError::PolicyRefused { .. }
        | TokenError::SigningCertificate { .. }
        | TokenError::Chain(_) => (StatusCode::UNAUTHORIZED, "ERR_IMZA_CERTIFICATE_REFUSED"),
    };
    refusal(status, code, &error.to_string())
}

/// `POST /portal/login/card` with the Web eID token as JSON: logged in (a new session, the
/// login in the citizen's history) → `{"location": "/portal/cabinet"}` and the new cookie.
pub(super) async fn login(
    State(portal): State<Arc<Portal>>,
    client: ClientAddress,
    headers: HeaderMap,
    language: Language,
    body: Body,
) -> Response<Body> {
    if portal.card.is_none() {
        return not_configured();
    }
    // Who the token names is known only once it is checked: the client address's budget.
    if let Err(refused) = limit_login(&portal, client, None) {
        return refused;
    }
    if content_type_is(&headers, "application/json") != Some(true) {
        return closing(refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ERR_IMZA_MALFORMED_TOKEN",
            "the token must be posted as application/json",
        ));
    }
    // The (small, bounded) token is read before the session is judged, so that a refusal
    // reaches a client still writing it rather than a connection closed under it.
    let token = match read_body(body, &headers, MAX_TOKEN_BYTES, None).await {
        Ok(body) => body.bytes,
        // A body left unread closes the connection: the client cannot reuse it.
        Err(BodyRefused::TooLarge { limit }) => {
            return closing(refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ERR_IMZA_MALFORMED_TOKEN",
                &format!("a token is at most {limit} bytes"),
            ))
        }
        Err(_) => {
            return closing(refusal(
                StatusCode::BAD_REQUEST,
                "ERR_IMZA_MALFORMED_TOKEN",
                "the token could not be read",
            ))
        }
    };
    let session = match anonymous_session(&portal, &headers, language).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    // Malformed input changes nothing, not even the session's challenge.
    if let Err(e) = AuthToken::parse(&token) {
        return token_refused(&e);
    }
    let worker = Arc::clone(&portal);
    let outcome = work(&portal, move || {
        let store = worker.store.as_ref();
        let Some(config) = worker.card.as_ref() else {
            return Ok(Err(None));
        };
        // Taken out before anything is checked: one try per challenge, whatever comes of it.
        let Some((text, issued_at)) = store.take_nonce(&session.id_sha256)? else {
            return Ok(Err(None));
        };
        let nonce = ChallengeNonce::from_stored(text, issued_at);
        let logged_in = match config.login.login(&token, &nonce) {
            Ok(done) => done,
            Err(e) => return Ok(Err(Some(e))),
        };
        let citizen = SessionCitizen {
            personal_code: logged_in.citizen.personal_code,
            name: logged_in.citizen.name,
            method: LoginMethod::Card,
        };
        let made = session::log_in(
            store,
            &session,
            citizen,
            worker.clock.now(),
            &worker.sessions,
        )?;
        Ok::<_, StoreError>(Ok(made))
    })
    .await;
    match outcome {
        Ok(Ok(Ok(made))) => with_cookie(
            json(StatusCode::OK, &json!({ "location": "/portal/cabinet" })),
            session::set_cookie(&made.cookie, &portal.sessions),
        ),
        Ok(Ok(Err(Some(error)))) => token_refused(&error),
        Ok(Ok(Err(None))) => refusal(
            StatusCode::BAD_REQUEST,
            "ERR_IMZA_NO_CHALLENGE",
            language.pick(
                "Bu giriş üçün sorğu yoxdur və ya artıq istifadə olunub; yenidən cəhd edin.",
                "There is no challenge for this login, or it was used already; try again.",
            ),
        ),
        // The session was used by another login meanwhile.
        Ok(Err(StoreError::NotFound(_))) => csrf_refused(language),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

/// The card login's two scripts, served by the portal itself (no CDN), under the CSP.
pub(super) const WEB_EID_JS: &str = include_str!("../../assets/web-eid.js");
pub(super) const LOGIN_CARD_JS: &str = include_str!("../../assets/login-card.js");

pub(super) async fn web_eid_js() -> Response<Body> {
    script(WEB_EID_JS)
}

pub(super) async fn login_card_js() -> Response<Body> {
    script(LOGIN_CARD_JS)
}

impl CardLoginConfig {
    /// The configuration of logins checked by `login`, the page calling the agent at
    /// `agent_origin` (a loopback `http://` origin).
    pub fn new(login: CardLogin, agent_origin: &str) -> Result<CardLoginConfig, TokenError> {
        crate::webeid::check_origin(agent_origin)?;
        Ok(CardLoginConfig {
            login,
            agent_origin: agent_origin.to_string(),
        })
    }
}
