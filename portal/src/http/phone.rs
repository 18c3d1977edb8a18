//! The ASAN-style phone login: phone number and national id posted from the login page's form;
//! the portal, as a relying party, starts an authentication session with the mobile signature
//! service (`imza_mobile_sign::authentication::start`), keeps it as the browser session's login
//! under way and shows the verification code on the waiting page, whose script then asks
//! `/portal/login/wait` ([`super::wait`]) until the phone has answered.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Response, StatusCode};

use imza_mobile_sign::authentication;
use imza_mobile_sign::client::ClientError;
use imza_mobile_sign::protocol::{check_national_id, normalize_phone_number};

use super::{failed, field, html, refused_login, work, LoginForm, Portal};
use crate::pages::{self, escape, Language, Waiting};
use crate::session::csrf_token;
use crate::store::{PendingKind, PendingLogin};

/// The login page's phone form.
pub(super) fn section(language: Language, csrf_token: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/portal/login/phone{query}\" id=\"phone-login\">\
         <h2>{title}</h2>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>{phone_label} <input name=\"phone\" type=\"tel\" autocomplete=\"tel\" maxlength=\"20\" placeholder=\"+994501234567\" required></label>\
         <label>{id_label} <input name=\"national_id\" autocomplete=\"username\" maxlength=\"7\" required></label>\
         <button type=\"submit\">{submit}</button></form>",
        query = language.query(),
        title = language.pick("ASAN İmza ilə", "With ASAN signature (phone)"),
        csrf = escape(csrf_token),
        phone_label = language.pick("Telefon nömrəsi", "Phone number"),
        id_label = language.pick("FİN", "National id (FİN)"),
        submit = language.pick("Daxil ol", "Log in"),
    )
}

/// `?lang=eng` for English pages, so the answers stay in the page's language.
pub(super) fn mss_language(language: Language) -> imza_mobile_sign::protocol::Language {
    match language {
        Language::Aze => imza_mobile_sign::protocol::Language::Aze,
        Language::Eng => imza_mobile_sign::protocol::Language::Eng,
    }
}

pub(super) async fn login(
    State(portal): State<Arc<Portal>>,
    language: Language,
    LoginForm {
        fields,
        session,
        cookie,
    }: LoginForm,
) -> Response<Body> {
    let csrf = csrf_token(&cookie);
    let again = refused_login(&portal, language, csrf.clone());
    let phone = match normalize_phone_number(field(&fields, "phone")) {
        Ok(phone) => phone,
        Err(e) => return again(StatusCode::BAD_REQUEST, format!("phone: {e}")),
    };
    let national_id = field(&fields, "national_id").to_string();
    if let Err(e) = check_national_id(&national_id) {
        return again(StatusCode::BAD_REQUEST, format!("national_id: {e}"));
    }
    let Some(logins) = portal.phone.clone().filter(|p| p.mss.is_some()) else {
        return again(
            StatusCode::SERVICE_UNAVAILABLE,
            language
                .pick(
                    "Bu portalda telefonla giriş hələ qurulmayıb.",
                    "This portal does not offer the phone login.",
                )
                .to_string(),
        );
    };
    let worker = Arc::clone(&portal);
    let display_text = format!("{} {}", language.pick("Giriş:", "Log in to"), logins.name);
    let started = work(&portal, move || {
        let Some(client) = logins.mss.as_ref() else {
            return Err(ClientError::Validation("no signature service".into()));
        };
        let pending = authentication::start(
            client,
            &phone,
            &national_id,
            mss_language(language),
            Some(display_text),
        )?;
        let login = PendingLogin {
            session_sha256: session.id_sha256,
            started_at: worker.clock.now(),
            challenge: pending.hash,
            kind: PendingKind::Phone {
                mss_session_id: pending.session_id.clone(),
                national_id: pending.national_id.clone(),
                verification_code: pending.verification_code.clone(),
            },
        };
        Ok(worker
            .store
            .put_pending_login(&login)
            .map(|()| pending.verification_code))
    })
    .await;
    match started {
        Ok(Ok(Ok(code))) => html(
            StatusCode::OK,
            pages::waiting(
                language,
                &csrf,
                Waiting::Phone {
                    verification_code: &code,
                },
            ),
        ),
        Ok(Ok(Err(e))) => failed(e),
        Ok(Err(e)) => {
            let (status, message) = refusal(&e);
            again(status, message)
        }
        Err(e) => failed(e),
    }
}

/// How a failed start is answered: the citizen's own mistake (not registered, a number the
/// service refuses) or the service's trouble.
fn refusal(e: &ClientError) -> (StatusCode, String) {
    match e {
        ClientError::InvalidRequest(_)
        | ClientError::NotFound { .. }
        | ClientError::NotActive { .. } => (StatusCode::BAD_REQUEST, e.to_string()),
        _ => {
            eprintln!("portal: phone login: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the mobile signature service cannot start the login now: {e}"),
            )
        }
    }
}
