//! The agent's HTTP face on the loopback interface, mirroring Web eID's JavaScript API:
//!
//! - `POST /v1/authenticate` `{"challengeNonce": "…"}` → a Web eID authentication token;
//! - `POST /v1/signing-certificate` `{}` → `{"certificate", "supportedSignatureAlgorithms"}`;
//! - `POST /v1/sign` `{"certificate", "hash", "hashFunction"}` → `{"signature",
//!   "signatureAlgorithm"}`;
//! - `OPTIONS` on each: the CORS preflight (Fetch standard §3.2.2), with Chromium's Private
//!   Network Access answer.
//!
//! Every request passes [`guard`] first: `Host` must name the agent's own loopback address
//! (DNS rebinding), and `Origin` — set by the browser, not by page script — must be exactly
//! one on the allow-list. Anything else is a 403 with an empty body and no CORS headers, so
//! the page learns nothing (not even whether a card is there), and the refusal is logged with
//! the origin only. Allowed answers name that one origin in `Access-Control-Allow-Origin`
//! (never `*`) with `Vary: Origin`. Bodies are JSON (`Content-Type: application/json`, which
//! also forces the browser's preflight) of at most [`MAX_BODY_BYTES`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN, VARY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use axum::middleware::{self, Next};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use imza_http::answer::closing;
use imza_http::{content_type_is, read_body, BodyRefused};

use crate::card::{AgentError, CardAccess};
use crate::origin::{shown, AllowList, LoopbackHosts};

/// Largest request body: a sign request carries a certificate (a few KiB in base64) and a
/// hash.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

const ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");

/// What the routes share.
pub struct Agent {
    pub allowed: AllowList,
    pub hosts: LoopbackHosts,
    pub card: CardAccess,
    /// Where refusals and served requests are logged (origins and outcomes only: no PIN,
    /// nonce, hash or certificate).
    pub log: Box<dyn Fn(&str) + Send + Sync>,
}

/// The origin a guarded request came from, for the handlers.
#[derive(Clone)]
struct AllowedOrigin(String);

/// The agent's routes.
pub fn routes(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/v1/authenticate", post(authenticate).options(preflight))
        .route(
            "/v1/signing-certificate",
            post(signing_certificate).options(preflight),
        )
        .route("/v1/sign", post(sign).options(preflight))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&agent), guard))
        .with_state(agent)
}

/// 403, nothing in it: no body, no CORS headers.
fn refused() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(one), None) => one.to_str().ok(),
        _ => None,
    }
}

/// The Host and Origin checks every request passes before anything else runs.
async fn guard(
    State(agent): State<Arc<Agent>>,
    mut request: Request,
    next: Next,
) -> Response<Body> {
    let headers = request.headers();
    let host = header(headers, &HOST).unwrap_or("");
    if !agent.hosts.accepts(host) {
        (agent.log)(&format!(
            "refused a request for host {:?}: the agent answers only as {}",
            shown(host),
            agent.hosts
        ));
        return refused();
    }
    let origin = match header(headers, &ORIGIN) {
        Some(origin) => origin,
        None => {
            (agent.log)("refused a request without an Origin header");
            return refused();
        }
    };
    let Some(origin) = agent.allowed.allows(origin).map(str::to_string) else {
        (agent.log)(&format!(
            "refused a request from origin {:?}: not on the allow-list",
            shown(origin)
        ));
        return refused();
    };
    request
        .extensions_mut()
        .insert(AllowedOrigin(origin.clone()));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&origin) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(VARY, HeaderValue::from_static("Origin"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The CORS preflight of an allowed origin (the guard refused the others): POST with a JSON
/// body, and Chromium's Private Network Access permission for a public page calling loopback.
async fn preflight() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type"),
    );
    headers.insert(ALLOW_PRIVATE_NETWORK, HeaderValue::from_static("true"));
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

async fn not_found() -> Response<Body> {
    json_answer(
        StatusCode::NOT_FOUND,
        &json!({"code": "ERR_WEBEID_NATIVE_INVALID_ARGUMENT", "message": "no such endpoint"}),
    )
}

fn json_answer(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn invalid(message: &str) -> Response<Body> {
    json_answer(
        StatusCode::BAD_REQUEST,
        &json!({"code": "ERR_WEBEID_NATIVE_INVALID_ARGUMENT", "message": message}),
    )
}

/// The request's JSON body as `T`, or the answer refusing it.
async fn read_json<T: DeserializeOwned>(request: Request) -> Result<T, Response<Body>> {
    let (parts, body) = request.into_parts();
    if content_type_is(&parts.headers, "application/json") != Some(true) {
        return Err(invalid("the body must be application/json"));
    }
    let body = read_body(body, &parts.headers, MAX_BODY_BYTES, None)
        .await
        // A body left unread closes the connection: the client cannot reuse it.
        .map_err(|e| {
            closing(match e {
                BodyRefused::TooLarge { limit } => json_answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &json!({"code": "ERR_WEBEID_NATIVE_INVALID_ARGUMENT",
                            "message": format!("a request is at most {limit} bytes")}),
                ),
                _ => invalid("the body could not be read"),
            })
        })?;
    serde_json::from_slice(&body.bytes).map_err(|e| invalid(&format!("malformed request: {e}")))
}

fn origin_of(request: &Request) -> String {
    request
        .extensions()
        .get::<AllowedOrigin>()
        .map(|o| o.0.clone())
        .unwrap_or_default()
}

/// Runs a card operation on a blocking thread and answers its JSON, logging the outcome.
async fn card_work<T: serde::Serialize + Send + 'static>(
    agent: Arc<Agent>,
    origin: String,
    what: &'static str,
    work: impl FnOnce(&CardAccess, &str) -> Result<T, AgentError> + Send + 'static,
) -> Response<Body> {
    let worker = Arc::clone(&agent);
    let for_origin = origin.clone();
    let outcome = tokio::task::spawn_blocking(move || work(&worker.card, &for_origin)).await;
    match outcome {
        Ok(Ok(answer)) => {
            (agent.log)(&format!("{what} for {origin:?}: done"));
            match serde_json::to_value(&answer) {
                Ok(value) => json_answer(StatusCode::OK, &value),
                Err(_) => json_answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"code": "ERR_WEBEID_NATIVE_FATAL", "message": "unencodable answer"}),
                ),
            }
        }
        Ok(Err(error)) => {
            (agent.log)(&format!("{what} for {origin:?}: {}", error.code()));
            let status = match &error {
                AgentError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
                AgentError::Pinentry(_) | AgentError::Card(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::CONFLICT,
            };
            let mut body = json!({"code": error.code(), "message": error.to_string()});
            if let Some(tries_left) = error.tries_left() {
                body["triesLeft"] = json!(tries_left);
            }
            json_answer(status, &body)
        }
        Err(_) => json_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"code": "ERR_WEBEID_NATIVE_FATAL", "message": "the agent's worker failed"}),
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthenticateRequest {
    challenge_nonce: String,
}

async fn authenticate(State(agent): State<Arc<Agent>>, request: Request) -> Response<Body> {
    let origin = origin_of(&request);
    let asked: AuthenticateRequest = match read_json(request).await {
        Ok(asked) => asked,
        Err(refused) => return refused,
    };
    card_work(agent, origin, "authenticate", move |card, origin| {
        card.authenticate(origin, &asked.challenge_nonce)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

async fn signing_certificate(State(agent): State<Arc<Agent>>, request: Request) -> Response<Body> {
    let origin = origin_of(&request);
    if let Err(refused) = read_json::<Empty>(request).await {
        return refused;
    }
    card_work(agent, origin, "getSigningCertificate", |card, _| {
        card.signing_certificate()
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignRequest {
    certificate: String,
    hash: String,
    hash_function: String,
}

async fn sign(State(agent): State<Arc<Agent>>, request: Request) -> Response<Body> {
    let origin = origin_of(&request);
    let asked: SignRequest = match read_json(request).await {
        Ok(asked) => asked,
        Err(refused) => return refused,
    };
    card_work(agent, origin, "sign", move |card, origin| {
        card.sign(
            origin,
            &asked.certificate,
            &asked.hash,
            &asked.hash_function,
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    //! The guard without a card: every refusal happens before any card code runs (the card
    //! module here does not exist, so reaching it would answer a card error, never a 403).

    use super::*;
    use std::path::PathBuf;
    use std::sync::Mutex;
    use std::time::Duration;

    use axum::http::{Method, Request as HttpRequest};
    use imza_core::key::pkcs11::TokenSelector;
    use tower::ServiceExt;

    use crate::pinentry::Pinentry;

    type Log = Arc<Mutex<Vec<String>>>;

    fn agent(log: &Log) -> Arc<Agent> {
        let log = Arc::clone(log);
        Arc::new(Agent {
            allowed: AllowList::new(["https://portal.gov.az"]).unwrap(),
            hosts: LoopbackHosts::of("127.0.0.1:24843".parse().unwrap()),
            card: CardAccess::new(
                PathBuf::from("/nonexistent/pkcs11.so"),
                TokenSelector::Only,
                Pinentry::new(
                    &PathBuf::from("/nonexistent/pinentry"),
                    Duration::from_secs(1),
                ),
            ),
            log: Box::new(move |line| log.lock().unwrap().push(line.to_string())),
        })
    }

    fn call(log: &Log, host: &str, origin: Option<&str>, method: Method) -> Response<Body> {
        let mut builder = HttpRequest::builder()
            .method(method)
            .uri("/v1/signing-certificate")
            .header(HOST, host)
            .header(CONTENT_TYPE, "application/json");
        if let Some(origin) = origin {
            builder = builder.header(ORIGIN, origin);
        }
        let request = builder.body(Body::from("{}")).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(routes(agent(log)).oneshot(request))
            .unwrap()
    }

    fn body_of(response: Response<Body>) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap()
            .to_vec()
    }

    #[test]
    fn other_origins_hosts_and_originless_requests_get_an_empty_403() {
        let log = Log::default();
        for (host, origin) in [
            ("127.0.0.1:24843", Some("https://evil.example")),
            (
                "127.0.0.1:24843",
                Some("https://portal.gov.az.evil.example"),
            ),
            ("127.0.0.1:24843", Some("null")),
            ("127.0.0.1:24843", None),
            ("rebound.evil.example:24843", Some("https://portal.gov.az")),
        ] {
            for method in [Method::POST, Method::OPTIONS] {
                let response = call(&log, host, origin, method.clone());
                assert_eq!(
                    response.status(),
                    StatusCode::FORBIDDEN,
                    "{host} {origin:?}"
                );
                assert!(
                    response
                        .headers()
                        .get(ACCESS_CONTROL_ALLOW_ORIGIN)
                        .is_none(),
                    "{host} {origin:?}"
                );
                assert!(body_of(response).is_empty(), "{host} {origin:?} {method}");
            }
        }
        let logged = log.lock().unwrap().join("\n");
        assert!(
            logged.contains("\"https://evil.example\": not on the allow-list"),
            "{logged}"
        );
        assert!(logged.contains("without an Origin"), "{logged}");
        assert!(logged.contains("rebound.evil.example"), "{logged}");
    }

    #[test]
    fn an_allowed_origin_gets_its_own_origin_back_and_the_preflight() {
        let log = Log::default();
        let response = call(
            &log,
            "localhost:24843",
            Some("https://portal.gov.az"),
            Method::OPTIONS,
        );
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let headers = response.headers();
        assert_eq!(
            headers[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://portal.gov.az"
        );
        assert_eq!(headers[VARY], "Origin");
        assert_eq!(headers["access-control-allow-private-network"], "true");
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_HEADERS], "Content-Type");
        // Past the guard, the card code runs and its failure (here: no module) is told to
        // the allowed page.
        let response = call(
            &log,
            "127.0.0.1:24843",
            Some("https://portal.gov.az"),
            Method::POST,
        );
        assert_eq!(
            response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://portal.gov.az"
        );
        let body: serde_json::Value = serde_json::from_slice(&body_of(response)).unwrap();
        assert!(
            body["code"].as_str().is_some_and(|c| c.starts_with("ERR_")),
            "{body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("/nonexistent/pkcs11.so"),
            "{body}"
        );
    }
}
