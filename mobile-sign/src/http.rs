//! The service's Rocket routes under `/mss/v1`, mounted by `imza serve` through [`stage`]:
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
//! 401 UNAUTHORIZED (with `WWW-Authenticate: Basic realm="imza-mss"`), 404 NOT_FOUND, 409
//! CONFLICT, 413 BODY_TOO_LARGE (over [`MAX_BODY_BYTES`]), 429 TOO_MANY_REQUESTS (with
//! `Retry-After` in whole seconds), 503 UNAVAILABLE. Bodies and credentials are never logged.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use rocket::data::ToByteUnit;
use rocket::fairing::AdHoc;
use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::response::{self, Responder};
use rocket::{Data, Request, Response, State};
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

/// The realm in `WWW-Authenticate`.
const REALM: &str = "imza-mss";

/// The longest error message, in characters (clients read the first 200 of the body).
const MAX_MESSAGE_CHARS: usize = 150;

/// The longest `Authorization` header looked at (a relying-party name is at most 64
/// characters and a key 43; a device id 32 and a secret 43).
const MAX_AUTHORIZATION_CHARS: usize = 512;

/// Manages `service`, mounts the routes (and JSON error catchers) under `/mss/v1`, and once
/// the server is up runs the service's clean-up every [`PURGE_EVERY`] until it shuts down.
pub fn stage(service: Arc<MobileService>) -> AdHoc {
    AdHoc::on_ignite(
        "imza mobile signature service (/mss/v1)",
        |rocket| async move {
            let cleaner = Arc::clone(&service);
            rocket
                .attach(AdHoc::on_liftoff(
                    "imza mobile signature clean-up",
                    move |rocket| {
                        let shutdown = rocket.shutdown();
                        Box::pin(async move {
                            rocket::tokio::spawn(purge_periodically(cleaner, shutdown));
                        })
                    },
                ))
                .manage(service)
                .mount(
                    API_PREFIX,
                    rocket::routes![
                        certificate,
                        authentication,
                        signature,
                        session,
                        device_pending,
                        device_answer
                    ],
                )
                .register(API_PREFIX, rocket::catchers![fallback])
        },
    )
}

/// How often a running server deletes old sessions (besides at start, and as sessions are
/// created).
pub const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

async fn purge_periodically(service: Arc<MobileService>, shutdown: rocket::Shutdown) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        rocket::tokio::select! {
            _ = &mut shutdown => return,
            _ = rocket::tokio::time::sleep(PURGE_EVERY) => {}
        }
        // A failure is tried again next time; expired sessions are settled when read anyway.
        let _ = service.run(|s| s.purge_old_sessions()).await;
    }
}

/// An answer: a JSON body and its status.
#[derive(Debug)]
struct ApiAnswer {
    status: Status,
    body: String,
    /// `Retry-After`, whole seconds (with 429).
    retry_after: Option<u64>,
}

/// A refused request.
#[derive(Debug)]
struct ApiError {
    status: Status,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: Status, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(Status::BadRequest, "INVALID_REQUEST", message)
    }

    fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(Status::Unauthorized, "UNAUTHORIZED", message)
    }

    fn answer(self) -> ApiAnswer {
        let body = ErrorBody {
            error: self.code.to_string(),
            message: shorten(&self.message),
        };
        ApiAnswer {
            status: self.status,
            retry_after: self.retry_after,
            // Serialising two strings cannot fail; the fallback keeps the answer JSON anyway.
            body: serde_json::to_string(&body)
                .unwrap_or_else(|_| format!(r#"{{"error":"{}","message":""}}"#, self.code)),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::InvalidRequest(m) => ApiError::invalid(m),
            ServiceError::Unauthorized(m) => ApiError::unauthorized(m),
            ServiceError::NotFound(m) => ApiError::new(Status::NotFound, "NOT_FOUND", m),
            ServiceError::Conflict(m) => ApiError::new(Status::Conflict, "CONFLICT", m),
            ServiceError::TooManyRequests {
                message,
                retry_after_seconds,
            } => ApiError {
                retry_after: Some(retry_after_seconds),
                ..ApiError::new(Status::TooManyRequests, "TOO_MANY_REQUESTS", message)
            },
            ServiceError::Unavailable(m) => {
                ApiError::new(Status::ServiceUnavailable, "UNAVAILABLE", m)
            }
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

impl<'r> Responder<'r, 'static> for ApiAnswer {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response
            .status(self.status)
            .header(ContentType::JSON)
            // Sessions and certificates are one caller's business: no shared cache keeps them.
            .raw_header("Cache-Control", "no-store");
        if self.status == Status::Unauthorized {
            response.raw_header("WWW-Authenticate", format!("Basic realm=\"{REALM}\""));
        }
        if let Some(seconds) = self.retry_after {
            response.raw_header("Retry-After", seconds.to_string());
        }
        response
            .sized_body(self.body.len(), Cursor::new(self.body))
            .ok()
    }
}

fn reply<T: Serialize>(outcome: Result<T, ApiError>) -> ApiAnswer {
    match outcome.and_then(|value| {
        serde_json::to_string(&value).map_err(|e| {
            ApiError::new(
                Status::InternalServerError,
                "INTERNAL",
                format!("the answer could not be written: {e}"),
            )
        })
    }) {
        Ok(body) => ApiAnswer {
            status: Status::Ok,
            body,
            retry_after: None,
        },
        Err(e) => e.answer(),
    }
}

/// `Authorization: Basic base64(user:secret)`, read strictly; `None` when absent or
/// malformed (both answer 401).
struct BasicCredentials(Option<(String, Zeroizing<String>)>);

impl BasicCredentials {
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

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BasicCredentials {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let mut headers = request.headers().get("Authorization");
        let credentials = match (headers.next(), headers.next()) {
            (Some(header), None) => BasicCredentials::parse(header),
            _ => None,
        };
        Outcome::Success(BasicCredentials(credentials))
    }
}

/// The Content-Length a client declared: a body declared too large is refused unread.
struct DeclaredLength(Option<u64>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for DeclaredLength {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let length = request
            .headers()
            .get_one("Content-Length")
            .and_then(|v| v.trim().parse().ok());
        Outcome::Success(DeclaredLength(length))
    }
}

/// `?timeoutMs=N`: how long a long poll may wait (none: answer at once), cut to
/// [`MAX_LONG_POLL_MS`]; `Err` when it is not a whole number.
struct LongPoll(Result<Duration, String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for LongPoll {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let wait = match request.query_value::<&str>("timeoutMs") {
            None => Ok(Duration::ZERO),
            Some(Ok(text)) => parse_timeout_ms(text),
            Some(Err(_)) => Err(timeout_problem()),
        };
        Outcome::Success(LongPoll(wait))
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
async fn read_body(body: Data<'_>, declared: &DeclaredLength) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            Status::PayloadTooLarge,
            "BODY_TOO_LARGE",
            format!("a request body is at most {MAX_BODY_BYTES} bytes"),
        )
    };
    if declared.0.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let bytes = body
        .open(MAX_BODY_BYTES.bytes())
        .into_bytes()
        .await
        .map_err(|e| ApiError::invalid(format!("the body could not be read: {e}")))?;
    if bytes.is_complete() {
        Ok(bytes.into_inner())
    } else {
        Err(too_large())
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

/// `POST /mss/v1/certificate`.
#[rocket::post("/certificate", data = "<body>")]
async fn certificate(
    credentials: BasicCredentials,
    declared: DeclaredLength,
    body: Data<'_>,
    service: &State<Arc<MobileService>>,
) -> ApiAnswer {
    let service = service.inner();
    reply::<CertificateResponse>(
        async {
            let bytes = read_body(body, &declared).await?;
            relying_party(service, credentials).await?;
            let request: CertificateRequest = parse_json(&bytes, "certificate request")?;
            Ok(service.run(move |s| s.certificate(&request)).await?)
        }
        .await,
    )
}

async fn start(
    kind: SessionKind,
    credentials: BasicCredentials,
    declared: DeclaredLength,
    body: Data<'_>,
    service: &Arc<MobileService>,
) -> ApiAnswer {
    reply::<SessionCreated>(
        async {
            let bytes = read_body(body, &declared).await?;
            let party = relying_party(service, credentials).await?;
            let request: SessionRequest = parse_json(&bytes, "session request")?;
            Ok(service
                .run(move |s| s.start_session(&party, kind, &request))
                .await?)
        }
        .await,
    )
}

/// `POST /mss/v1/authentication`.
#[rocket::post("/authentication", data = "<body>")]
async fn authentication(
    credentials: BasicCredentials,
    declared: DeclaredLength,
    body: Data<'_>,
    service: &State<Arc<MobileService>>,
) -> ApiAnswer {
    start(
        SessionKind::Authentication,
        credentials,
        declared,
        body,
        service.inner(),
    )
    .await
}

/// `POST /mss/v1/signature`.
#[rocket::post("/signature", data = "<body>")]
async fn signature(
    credentials: BasicCredentials,
    declared: DeclaredLength,
    body: Data<'_>,
    service: &State<Arc<MobileService>>,
) -> ApiAnswer {
    start(
        SessionKind::Signature,
        credentials,
        declared,
        body,
        service.inner(),
    )
    .await
}

/// `GET /mss/v1/session/{id}?timeoutMs=N`.
#[rocket::get("/session/<id>")]
async fn session(
    id: &str,
    wait: LongPoll,
    credentials: BasicCredentials,
    service: &State<Arc<MobileService>>,
    shutdown: rocket::Shutdown,
) -> ApiAnswer {
    let service = service.inner();
    reply::<SessionStatus>(
        async {
            let party = relying_party(service, credentials).await?;
            let wait = wait.0.map_err(ApiError::invalid)?;
            rocket::tokio::select! {
                status = service.wait_session_status(&party, id, wait) => Ok(status?),
                // The server is stopping: the session's state now, so that no long poll holds
                // the shutdown up (the client asks again after the restart).
                _ = shutdown => {
                    let id = id.to_string();
                    Ok(service.run(move |s| s.session_status(&party, &id)).await?)
                }
            }
        }
        .await,
    )
}

/// `GET /mss/v1/device/pending?timeoutMs=N`.
#[rocket::get("/device/pending")]
async fn device_pending(
    wait: LongPoll,
    credentials: BasicCredentials,
    service: &State<Arc<MobileService>>,
    shutdown: rocket::Shutdown,
) -> ApiAnswer {
    let service = service.inner();
    reply::<PendingRequests>(
        async {
            let device = device(service, credentials).await?;
            let wait = wait.0.map_err(ApiError::invalid)?;
            rocket::tokio::select! {
                pending = service.wait_pending_requests(&device, wait) => Ok(pending?),
                // The server is stopping: nothing now, as when the long poll runs out.
                _ = shutdown => Ok(PendingRequests { requests: Vec::new() }),
            }
        }
        .await,
    )
}

/// `POST /mss/v1/device/session/{id}`.
#[rocket::post("/device/session/<id>", data = "<body>")]
async fn device_answer(
    id: &str,
    credentials: BasicCredentials,
    declared: DeclaredLength,
    body: Data<'_>,
    service: &State<Arc<MobileService>>,
) -> ApiAnswer {
    let service = service.inner();
    let id = id.to_string();
    reply::<SessionStatus>(
        async {
            let bytes = read_body(body, &declared).await?;
            let device = device(service, credentials).await?;
            let answer: DeviceAnswer = parse_json(&bytes, "device answer")?;
            Ok(service
                .run(move |s| s.answer(&device, &id, &answer))
                .await?)
        }
        .await,
    )
}

/// Whatever Rocket itself refuses under `/mss/v1` (no such route, a malformed request)
/// answers with the same JSON error body.
#[rocket::catch(default)]
fn fallback(status: Status, _request: &Request<'_>) -> ApiAnswer {
    let (code, message) = match status.code {
        400 => ("INVALID_REQUEST", "the request is malformed"),
        401 => ("UNAUTHORIZED", "authentication required"),
        404 => ("NOT_FOUND", "no such route under /mss/v1"),
        413 => ("BODY_TOO_LARGE", "the request body is too large"),
        _ => ("UNAVAILABLE", "the service could not answer"),
    };
    let status = match status.code {
        400 | 401 | 404 | 413 => status,
        _ => Status::ServiceUnavailable,
    };
    ApiError::new(status, code, message).answer()
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
