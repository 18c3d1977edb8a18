//! The device-certificate login: the login page's button posts (with the CSRF token) to
//! `/portal/login/device` over the HTTPS connection on which the browser presented the
//! device's certificate; the route checks it ([`crate::device`]) and logs the citizen in with
//! a new session.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Response, StatusCode};

use imza_http::ClientCertificate;

use super::{
    anonymous_session, failed, field, forbidden, limit_login, read_form, refused_login, see_other,
    work, ClientAddress, Portal,
};
use crate::device::{DeviceLoginError, PresentedCertificate};
use crate::pages::{escape, Language};
use crate::session::{self, csrf_token};
use crate::store::{LoginMethod, SessionCitizen, StoreError};

/// The login page's device-certificate button.
pub(super) fn section(language: Language, csrf_token: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/portal/login/device{query}\" id=\"device-certificate\">\
         <h2>{title}</h2><p>{explain}</p>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">{submit}</button></form>",
        title = language.pick(
            "Mobil autentifikasiya sertifikatı ilə",
            "With a device certificate"
        ),
        explain = language.pick(
            "Telefonunuzda və ya planşetinizdə quraşdırılmış sertifikatla daxil olun.",
            "Log in with the mobile authentication certificate installed on this phone or tablet."
        ),
        query = language.query(),
        csrf = escape(csrf_token),
        submit = language.pick("Daxil ol", "Log in"),
    )
}

pub(super) async fn login(
    State(portal): State<Arc<Portal>>,
    client: ClientAddress,
    request: Request,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let language = Language::from_query(parts.uri.query());
    let fields = match read_form(&parts.headers, body).await {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let Some(device) = portal.device.clone() else {
        return super::text(
            StatusCode::NOT_FOUND,
            "this portal does not offer the device-certificate login",
        );
    };
    // Only the certificate of this TLS connection: never one named in a header.
    let presented = parts
        .extensions
        .get::<ClientCertificate>()
        .map(|ClientCertificate(der)| PresentedCertificate::read(der));
    let identity = match &presented {
        Some(Ok(p)) => Some(p.citizen.personal_code.clone()),
        _ => None,
    };
    if let Err(refused) = limit_login(&portal, client, identity.as_deref()) {
        return refused;
    }
    let (session, cookie) =
        match anonymous_session(&portal, &parts.headers, field(&fields, "csrf")).await {
            Ok(found) => found,
            Err(refused) => return refused,
        };
    let again = refused_login(&portal, language, csrf_token(&cookie));
    let presented = match presented {
        None => {
            return again(
                StatusCode::UNAUTHORIZED,
                said(&DeviceLoginError::NoCertificate, language),
            )
        }
        Some(Err(e)) => return again(StatusCode::BAD_REQUEST, said(&e, language)),
        Some(Ok(presented)) => presented,
    };
    let worker = Arc::clone(&portal);
    let outcome = work(&portal, move || {
        let citizen = match device.login(&presented) {
            Ok(citizen) => citizen,
            Err(refused) => return Ok(Err(refused)),
        };
        let citizen = SessionCitizen {
            personal_code: citizen.personal_code,
            name: citizen.name,
            method: LoginMethod::DeviceCertificate,
        };
        let now = worker.clock.now();
        session::log_in(
            worker.store.as_ref(),
            &session,
            citizen,
            now,
            &worker.sessions,
        )
        .map(Ok)
    })
    .await;
    match outcome {
        Ok(Ok(Ok(made))) => see_other(
            "/portal/cabinet",
            Some(session::set_cookie(&made.cookie, &portal.sessions)),
        ),
        // Said to the citizen, not logged: the reason names them (personal data).
        Ok(Ok(Err(refused))) => again(StatusCode::UNAUTHORIZED, said(&refused, language)),
        // The session was used by another login meanwhile.
        Ok(Err(StoreError::NotFound(_))) => forbidden(),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

/// What the citizen is told of a refused device login, in the page's language (the checks'
/// own reason, in English, follows on an Azerbaijani page).
fn said(e: &DeviceLoginError, language: Language) -> String {
    match (language, e) {
        (Language::Eng, e) => e.to_string(),
        (Language::Aze, DeviceLoginError::NoCertificate) => {
            "Cihaz sertifikatı təqdim edilməyib: mobil autentifikasiya sertifikatını bu cihazda \
             quraşdırın və brauzer soruşduqda onu seçin"
                .into()
        }
        (Language::Aze, e) => format!("Sertifikat qəbul edilmədi: {e}"),
    }
}
