//! The service's routes under `/mss/v1`, served by `imza serve` through [`routes`]:
//!
//! | route | who | answer |
//! | --- | --- | --- |
//! | `POST /mss/v1/certificate` | relying party | [`CertificateResponse`] |
//! | `POST /mss/v1/authentication`, `/signature` | relying party | [`SessionCreated`] |
//! | `GET /mss/v1/session/{id}?timeoutMs=N` | relying party | [`SessionStatus`] (long poll) |
//! | `GET /mss/v1/device/pending?timeoutMs=N` | device | [`PendingRequests`] (long poll) |
//! | `POST /mss/v1/device/session/{id}` | device | [`SessionStatus`] |
//!
//! Callers authenticate with HTTP Basic (RFC 7617): a relying party's name and API key, a
//! device's id and secret. Errors are one line of JSON, [`ErrorBody`]: 400 INVALID_REQUEST,
//! 401 UNAUTHORIZED (with `WWW-Authenticate: Basic realm="imza-mss"`), 404 NOT_FOUND, 408
//! REQUEST_TIMEOUT (a body sent too slowly), 409 CONFLICT, 413 BODY_TOO_LARGE (over
//! [`MAX_BODY_BYTES`]), 429 TOO_MANY_REQUESTS (with `Retry-After`: over a rate limit, or too
//! many sessions running for the phone), 503 UNAVAILABLE (with `Retry-After` when the
//! service's work queue is full). Bodies and credentials are never logged.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use imza_http::answer::{closing, retry_after_value};
use imza_http::{read_body, BodyRefused, Overloaded, Shutdown};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::protocol::{
    decode_base64, CertificateRequest, CertificateResponse, DeviceAnswer, ErrorBody,
    PendingRequests, SessionCreated, SessionKind, SessionRequest, SessionStatus, API_PREFIX,
    MAX_BODY_BYTES, MAX_LONG_POLL_MS,
};
use crate::service::{MobileService, ServiceError};
use crate::store::Device;

/// What a 401 asks for (the realm names the service).
const CHALLENGE: &str = "Basic realm=\"imza-mss\"";

/// The longest error message, in characters (clients read the first 200 of the body).
const MAX_MESSAGE_CHARS: usize = 150;

/// The longest `Authorization` header looked at (a relying-party name is at most 64
/// characters and a key 43; a device id 32 and a secret 43).
const MAX_AUTHORIZATION_CHARS: usize = 512;

/// The routes under `/mss/v1` (and JSON errors for anything else under it), answered by
/// `service`. Long polls answer at once when `shutdown` is cancelled, so that none holds a
/// stopping server up.
pub fn routes(service: Arc<MobileService>, shutdown: Shutdown) -> Router {
    let api = Router::new()
        .route("/certificate", post(certificate))
        .route("/authentication", post(authentication))
        .route("/signature", post(signature))
        .route("/session/{id}", get(session))
        .route("/device/pending", get(device_pending))
        .route("/device/session/{id}", post(device_answer))
        .fallback(fallback)
        .with_state(MssRoute { service, shutdown });
    Router::new().nest(API_PREFIX, api)
}

#[derive(Clone)]
struct MssRoute {
    service: Arc<MobileService>,
    shutdown: Shutdown,
}

/// Runs the service's clean-up every [`PURGE_EVERY`] until `shutdown` (besides at start, and
/// as sessions are created). Needs a Tokio runtime.
pub fn spawn_purge(service: Arc<MobileService>, shutdown: Shutdown) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(PURGE_EVERY) => {}
            }
            // A failure is tried again next time; expired sessions are settled when read
            // anyway.
            let _ = service.run(|s| s.purge_old_sessions()).await;
        }
    });
}

/// How often a running server deletes old sessions (besides at start, and as sessions are
/// created).
pub const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

/// A refused request.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<HeaderValue>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    fn busy(full: &Overloaded) -> ApiError {
        ApiError {
            retry_after: Some(retry_after_value(full)),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                full.to_string(),
            )
        }
    }

    fn into_response(self) -> Response<Body> {
        let body = ErrorBody {
            error: self.code.to_string(),
            message: shorten(&self.message),
        };
        // Serialising two strings cannot fail; the fallback keeps the answer JSON anyway.
        let text = serde_json::to_string(&body)
            .unwrap_or_else(|_| format!(r#"{{"error":"{}","message":""}}"#, self.code));
        let mut response = json_response(self.status, text);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        }
        if let Some(retry_after) = self.retry_after {
            response.headers_mut().insert(RETRY_AFTER, retry_after);
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::InvalidRequest(m) => ApiError::invalid(m),
            ServiceError::Unauthorized(m) => ApiError::unauthorized(m),
            ServiceError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", m),
            ServiceError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "CONFLICT", m),
            ServiceError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", m)
            }
            ServiceError::TooManyRequests {
                message,
                retry_after_seconds,
            } => ApiError {
                retry_after: Some(HeaderValue::from(retry_after_seconds.max(1))),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message)
            },
            ServiceError::Busy(full) => ApiError::busy(&full),
        }
    }
}

/// Cuts a message to [`MAX_MESSAGE_CHARS`] characters, on one line.
fn shorten(message: &str) -> String {
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= MAX_MESSAGE_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_MESSAGE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// A JSON body with `status`. Sessions and certificates are one caller's business: no shared
/// cache keeps them.
fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn reply<T: Serialize>(outcome: Result<T, ApiError>) -> Response<Body> {
    match outcome.and_then(|value| {
        serde_json::to_string(&value).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                format!("the answer could not be written: {e}"),
            )
        })
    }) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

/// `Authorization: Basic base64(user:secret)`, read strictly; `None` when absent, repeated or
/// malformed (all answer 401).
struct BasicCredentials(Option<(String, Zeroizing<String>)>);

impl BasicCredentials {
    fn from_headers(headers: &HeaderMap) -> BasicCredentials {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let credentials = match (values.next(), values.next()) {
            (Some(value), None) => value.to_str().ok().and_then(BasicCredentials::parse),
            _ => None,
        };
        BasicCredentials(credentials)
    }

    fn parse(header: &str) -> Option<(String, Zeroizing<String>)> {
        if header.len() > MAX_AUTHORIZATION_CHARS {
            return None;
        }
        let (scheme, token) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("Basic") {
            return None;
        }
        let decoded = Zeroizing::new(decode_base64(token).ok()?);
        let text = std::str::from_utf8(&decoded).ok()?;
        let (user, secret) = text.split_once(':')?;
        if user.is_empty() || secret.is_empty() {
            return None;
        }
        Some((user.to_string(), Zeroizing::new(secret.to_string())))
    }
}

/// `?timeoutMs=N`: how long a long poll may wait (none: answer at once), cut to
/// [`MAX_LONG_POLL_MS`]; `Err` when it is not a whole number (or given twice).
fn long_poll(query: Option<&str>) -> Result<Duration, String> {
    let mut values = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(name, _)| *name == "timeoutMs")
        .map(|(_, value)| value);
    match (values.next(), values.next()) {
        (None, _) => Ok(Duration::ZERO),
        (Some(text), None) => parse_timeout_ms(text),
        (Some(_), Some(_)) => Err(timeout_problem()),
    }
}

fn timeout_problem() -> String {
    format!(
        "timeoutMs: must be a whole number of milliseconds (at most {MAX_LONG_POLL_MS} is used)"
    )
}

fn parse_timeout_ms(text: &str) -> Result<Duration, String> {
    // Digits only (no sign, no spaces); more than 20 is no u64 and surely over the cap.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(timeout_problem());
    }
    let ms = if text.len() > 20 {
        MAX_LONG_POLL_MS
    } else {
        text.parse::<u64>().unwrap_or(MAX_LONG_POLL_MS)
    };
    Ok(Duration::from_millis(ms.min(MAX_LONG_POLL_MS)))
}

/// Reads a body of at most [`MAX_BODY_BYTES`] (413 over it). Read before the caller is
/// authenticated, so that a refusal never leaves an unread body behind (a server that answers
/// and closes with bytes unread makes the kernel reset the connection, and the client may
/// never see the answer); it is parsed only after.
async fn read_request_body(body: Body, headers: &HeaderMap) -> Result<Vec<u8>, ApiError> {
    match read_body(body, headers, MAX_BODY_BYTES as usize, None).await {
        Ok(body) => Ok(body.bytes.to_vec()),
        Err(BodyRefused::TooLarge { .. }) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            format!("a request body is at most {MAX_BODY_BYTES} bytes"),
        )),
        Err(BodyRefused::TimedOut) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            "the body arrived too slowly",
        )),
        Err(BodyRefused::Overloaded(full)) => Err(ApiError::busy(&full)),
        Err(BodyRefused::Unreadable) => Err(ApiError::invalid("the body could not be read")),
    }
}

/// Parses a JSON body: 400 for anything serde refuses, with what it says (the unknown or
/// missing field, the bad value).
fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("not a {what}: {e}")))
}

async fn relying_party(
    service: &Arc<MobileService>,
    credentials: BasicCredentials,
) -> Result<String, ApiError> {
    let Some((name, key)) = credentials.0 else {
        return Err(ApiError::unauthorized(
            "send Authorization: Basic base64(relying party name:API key)",
        ));
    };
    Ok(service
        .run(move |s| s.authenticate_relying_party(&name, &key))
        .await?)
}

async fn device(
    service: &Arc<MobileService>,
    credentials: BasicCredentials,
) -> Result<Device, ApiError> {
    let Some((id, secret)) = credentials.0 else {
        return Err(ApiError::unauthorized(
            "send Authorization: Basic base64(device id:device secret)",
        ));
    };
    Ok(service
        .run(move |s| s.authenticate_device(&id, &secret))
        .await?)
}

/// 413 and an unread body close the connection (see [`read_request_body`]).
fn closing_if_unread(response: Response<Body>) -> Response<Body> {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        closing(response)
    } else {
        response
    }
}

/// `POST /mss/v1/certificate`.
async fn certificate(
    State(route): State<MssRoute>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let service = &route.service;
    closing_if_unread(reply::<CertificateResponse>(
        async {
            let bytes = read_request_body(body, &headers).await?;
            relying_party(service, BasicCredentials::from_headers(&headers)).await?;
            let request: CertificateRequest = parse_json(&bytes, "certificate request")?;
            Ok(service.run(move |s| s.certificate(&request)).await?)
        }
        .await,
    ))
}

async fn start(
    kind: SessionKind,
    route: MssRoute,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let service = &route.service;
    closing_if_unread(reply::<SessionCreated>(
        async {
            let bytes = read_request_body(body, &headers).await?;
            let party = relying_party(service, BasicCredentials::from_headers(&headers)).await?;
            let request: SessionRequest = parse_json(&bytes, "session request")?;
            Ok(service
                .run(move |s| s.start_session(&party, kind, &request))
                .await?)
        }
        .await,
    ))
}

/// `POST /mss/v1/authentication`.
async fn authentication(
    State(route): State<MssRoute>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    start(SessionKind::Authentication, route, headers, body).await
}

/// `POST /mss/v1/signature`.
async fn signature(
    State(route): State<MssRoute>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    start(SessionKind::Signature, route, headers, body).await
}

/// `GET /mss/v1/session/{id}?timeoutMs=N`.
async fn session(
    State(route): State<MssRoute>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response<Body> {
    let service = &route.service;
    reply::<SessionStatus>(
        async {
            let party = relying_party(service, BasicCredentials::from_headers(&headers)).await?;
            let wait = long_poll(query.as_deref()).map_err(ApiError::invalid)?;
            tokio::select! {
                status = service.wait_session_status(&party, &id, wait) => Ok(status?),
                // The server is stopping: the session's state now, so that no long poll holds
                // the shutdown up (the client asks again after the restart).
                _ = route.shutdown.cancelled() => {
                    let id = id.clone();
                    Ok(service.run(move |s| s.session_status(&party, &id)).await?)
                }
            }
        }
        .await,
    )
}

/// `GET /mss/v1/device/pending?timeoutMs=N`.
async fn device_pending(
    State(route): State<MssRoute>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response<Body> {
    let service = &route.service;
    reply::<PendingRequests>(
        async {
            let device = device(service, BasicCredentials::from_headers(&headers)).await?;
            let wait = long_poll(query.as_deref()).map_err(ApiError::invalid)?;
            tokio::select! {
                pending = service.wait_pending_requests(&device, wait) => Ok(pending?),
                // The server is stopping: nothing now, as when the long poll runs out.
                _ = route.shutdown.cancelled() => Ok(PendingRequests { requests: Vec::new() }),
            }
        }
        .await,
    )
}

/// `POST /mss/v1/device/session/{id}`.
async fn device_answer(
    State(route): State<MssRoute>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let service = &route.service;
    closing_if_unread(reply::<SessionStatus>(
        async {
            let bytes = read_request_body(body, &headers).await?;
            let device = device(service, BasicCredentials::from_headers(&headers)).await?;
            let answer: DeviceAnswer = parse_json(&bytes, "device answer")?;
            Ok(service
                .run(move |s| s.answer(&device, &id, &answer))
                .await?)
        }
        .await,
    ))
}

/// Anything under `/mss/v1` that is no route answers with the same JSON error body.
async fn fallback() -> Response<Body> {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such route under /mss/v1",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode_base64;

    #[test]
    fn basic_credentials_are_read_strictly() {
        let header = |s: &str| format!("Basic {}", encode_base64(s.as_bytes()));
        let (user, secret) = BasicCredentials::parse(&header("gov.az:k3y:with:colons")).unwrap();
        assert_eq!(user, "gov.az");
        assert_eq!(secret.as_str(), "k3y:with:colons");
        assert!(BasicCredentials::parse(&header("no-colon")).is_none());
        assert!(BasicCredentials::parse(&header(":secret")).is_none());
        assert!(BasicCredentials::parse(&header("user:")).is_none());
        assert!(BasicCredentials::parse("Bearer abc").is_none());
        assert!(BasicCredentials::parse("Basic").is_none());
        assert!(BasicCredentials::parse("Basic not*base64").is_none());
        assert!(BasicCredentials::parse(&format!("Basic  {}", encode_base64(b"a:b"))).is_none());
        assert!(BasicCredentials::parse(&header(&"a".repeat(600))).is_none());
        // Not UTF-8.
        assert!(
            BasicCredentials::parse(&format!("Basic {}", encode_base64(&[0xff, b':', b'x'])))
                .is_none()
        );
    }

    #[test]
    fn the_long_poll_wait_comes_from_one_timeout_ms() {
        assert_eq!(long_poll(None), Ok(Duration::ZERO));
        assert_eq!(long_poll(Some("x=1")), Ok(Duration::ZERO));
        assert_eq!(
            long_poll(Some("timeoutMs=250")),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(
            long_poll(Some("a=b&timeoutMs=5")),
            Ok(Duration::from_millis(5))
        );
        assert!(long_poll(Some("timeoutMs")).is_err());
        assert!(long_poll(Some("timeoutMs=1&timeoutMs=2")).is_err());
        assert!(long_poll(Some("timeoutMs=%31")).is_err());
    }

    #[test]
    fn timeouts_are_whole_milliseconds_capped() {
        assert_eq!(parse_timeout_ms("0"), Ok(Duration::ZERO));
        assert_eq!(parse_timeout_ms("1500"), Ok(Duration::from_millis(1500)));
        let cap = Duration::from_millis(MAX_LONG_POLL_MS);
        assert_eq!(parse_timeout_ms("99999999"), Ok(cap));
        assert_eq!(parse_timeout_ms(&"9".repeat(400)), Ok(cap));
        for bad in ["", "-1", "1.5", "abc", " 5", "1e3"] {
            assert!(parse_timeout_ms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_are_short_and_on_one_line() {
        assert_eq!(shorten("a\nb"), "a b");
        let long = shorten(&"ə".repeat(400));
        assert_eq!(long.chars().count(), MAX_MESSAGE_CHARS);
        assert!(long.ends_with('…'));
    }
}
