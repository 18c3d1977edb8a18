//! The access-code login: a one-time code from a service centre and the national id, posted
//! from the login page's form (see [`crate::access_code`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Response, StatusCode};

use super::{failed, field, forbidden, refused_login, see_other, work, LoginForm, Portal};
use crate::access_code::{self, AccessCodeError};
use crate::pages::{escape, Language};
use crate::session::{self, csrf_token};
use crate::store::{LoginMethod, SessionCitizen, StoreError};

/// The login page's access-code form.
pub(super) fn section(language: Language, csrf_token: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/portal/login/code{query}\" id=\"access-code\">\
         <h2>{code_title}</h2>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>{id_label} <input name=\"national_id\" autocomplete=\"username\" maxlength=\"7\" required></label>\
         <label>{code_label} <input name=\"code\" autocomplete=\"one-time-code\" maxlength=\"16\" required></label>\
         <button type=\"submit\">{submit}</button></form>",
        code_title = language.pick("Giriş kodu ilə", "With an access code"),
        query = language.query(),
        csrf = escape(csrf_token),
        id_label = language.pick("FİN", "National id (FİN)"),
        code_label = language.pick("Kod", "Code"),
        submit = language.pick("Daxil ol", "Log in"),
    )
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
    let national_id = field(&fields, "national_id").to_string();
    let code = field(&fields, "code").to_string();
    let worker = Arc::clone(&portal);
    let outcome = work(&portal, move || {
        let now = worker.clock.now();
        let store = worker.store.as_ref();
        let personal_code = access_code::log_in(store, &national_id, &code, now, &worker.codes)?;
        let citizen = SessionCitizen {
            name: personal_code.clone(),
            personal_code,
            method: LoginMethod::AccessCode,
        };
        Ok::<_, AccessCodeError>(session::log_in(
            store,
            &session,
            citizen,
            now,
            &worker.sessions,
        )?)
    })
    .await;
    let again = refused_login(&portal, language, csrf_token(&cookie));
    match outcome {
        Ok(Ok(made)) => see_other(
            "/portal/cabinet",
            Some(session::set_cookie(&made.cookie, &portal.sessions)),
        ),
        Ok(Err(e @ AccessCodeError::Invalid(_))) => {
            again(StatusCode::BAD_REQUEST, said(&e, language))
        }
        Ok(Err(e @ (AccessCodeError::Refused { .. } | AccessCodeError::Locked { .. }))) => {
            again(StatusCode::UNAUTHORIZED, said(&e, language))
        }
        // The session was used by another login meanwhile.
        Ok(Err(AccessCodeError::Store(StoreError::NotFound(_)))) => forbidden(),
        Ok(Err(AccessCodeError::Store(e))) => failed(e),
        Err(e) => failed(e),
    }
}

/// What the citizen is told of a refused code, in the page's language.
fn said(e: &AccessCodeError, language: Language) -> String {
    match (language, e) {
        (Language::Eng, e) => e.to_string(),
        (Language::Aze, AccessCodeError::Invalid(_)) => {
            "FİN 7 simvoldur (A-Z, 0-9); kod XXXXX-XXXXX şəklində 10 hərf və rəqəmdir".into()
        }
        (Language::Aze, AccessCodeError::Refused { tries_left }) => format!(
            "Kod yanlışdır və ya artıq etibarlı deyil{}",
            tries_left
                .map(|n| format!(" ({n} cəhd qalıb)"))
                .unwrap_or_default()
        ),
        (Language::Aze, AccessCodeError::Locked { until }) => format!(
            "Həddən artıq yanlış kod daxil edilib; {} tarixindən sonra yenidən cəhd edin",
            imza_core::clock::rfc3339(*until)
        ),
        (Language::Aze, AccessCodeError::Store(_)) => e.to_string(),
    }
}
