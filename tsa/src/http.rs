//! The TSA over HTTP (RFC 3161 §3.4): `POST /tsa` with a DER `TimeStampReq` of type
//! `application/timestamp-query`, answered with a DER `TimeStampResp` of type
//! `application/timestamp-reply`. Mounted into `imza serve` through [`stage`].
//!
//! Every request the route accepts gets HTTP 200 and a `TimeStampResp`, granted or a
//! rejection with its failInfo: RFC 3161 reports refusals inside the protocol, and a client
//! reads the reason there. HTTP errors are kept for what never reaches the TSA: a body of
//! the wrong type (415) or too large to be a request (413).

use std::io::Cursor;
use std::sync::{Arc, RwLock};

use imza_core::clock::Clock;
use rocket::data::ToByteUnit;
use rocket::fairing::AdHoc;
use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::response::{self, Responder};
use rocket::{Data, Request, Response, State};

use crate::authority::refuse;
use crate::{TimeStampAuthority, TsaAnswer, TsaError, MAX_REQUEST_BYTES};

/// RFC 3161 §3.4: the media types of a request and of a response.
pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";
pub const TIMESTAMP_REPLY: &str = "application/timestamp-reply";

/// What the HTTP route serves: the current authority and where "now" comes from.
///
/// The authority sits behind an `RwLock<Arc<_>>` so that [`TsaService::replace`] can put in
/// one with a new certificate (rotation) while requests are in flight: each request takes a
/// clone of the `Arc` and finishes with the authority it started with. The lock is held only
/// for that clone, never while signing. With no authority (none created yet, or its
/// certificate revoked: [`TsaService::withdraw`]) every request is refused with
/// `systemFailure` until [`TsaService::replace`] puts one in.
pub struct TsaService {
    authority: RwLock<Option<Arc<TimeStampAuthority>>>,
    clock: Arc<dyn Clock>,
}

impl TsaService {
    pub fn new(authority: TimeStampAuthority, clock: Arc<dyn Clock>) -> TsaService {
        TsaService {
            authority: RwLock::new(Some(Arc::new(authority))),
            clock,
        }
    }

    /// A service that refuses every request until [`TsaService::replace`] gives it an
    /// authority.
    pub fn unavailable(clock: Arc<dyn Clock>) -> TsaService {
        TsaService {
            authority: RwLock::new(None),
            clock,
        }
    }

    /// Serves `authority` from now on; returns the one it replaces. Requests already being
    /// answered finish with the old one.
    pub fn replace(&self, authority: TimeStampAuthority) -> Option<Arc<TimeStampAuthority>> {
        let mut current = self.authority.write().unwrap_or_else(|e| e.into_inner());
        current.replace(Arc::new(authority))
    }

    /// Stops stamping (the certificate was revoked, say); returns the authority withdrawn.
    pub fn withdraw(&self) -> Option<Arc<TimeStampAuthority>> {
        let mut current = self.authority.write().unwrap_or_else(|e| e.into_inner());
        current.take()
    }

    /// The authority serving now, if any.
    pub fn authority(&self) -> Option<Arc<TimeStampAuthority>> {
        self.authority
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Answers one DER request at the service clock's "now".
    ///
    /// Signing runs on the calling thread, an async worker when called from the route: a
    /// software P-256 signature takes tens of microseconds, less than handing the work to the
    /// blocking pool and back costs, and within what a worker may spend between awaits.
    pub fn respond(&self, request_der: &[u8]) -> TsaAnswer {
        match self.authority() {
            Some(authority) => authority.respond(request_der, self.clock.now()),
            None => refuse(TsaError::SystemFailure(
                "no time-stamping unit with a usable certificate".into(),
            )),
        }
    }
}

/// Manages `service` and mounts `POST /tsa` at `/`.
pub fn stage(service: Arc<TsaService>) -> AdHoc {
    AdHoc::on_ignite("imza TSA (RFC 3161 §3.4)", |rocket| async move {
        rocket.manage(service).mount("/", rocket::routes![tsa_post])
    })
}

/// The Content-Length a client declared, if any: lets an oversized request be refused
/// before a byte of its body is read. A request guard for [`read_limited_body`] (imza-signer's
/// `POST /verify` reads its body the same way).
pub struct DeclaredLength(pub Option<u64>);

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

/// Why a request body was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyRefused {
    /// Declared, or found while reading, to be longer than the limit.
    TooLarge,
    /// The connection failed while the body was read.
    Unreadable,
}

/// Reads a request body of at most `limit` bytes. A declared Content-Length over the limit is
/// refused before anything is read; otherwise at most the limit is read (then one byte is
/// peeked to tell "exactly the limit" from "more"), so the rest of a body sent without a
/// Content-Length is never read into memory.
pub async fn read_limited_body(
    body: Data<'_>,
    declared: &DeclaredLength,
    limit: usize,
) -> Result<Vec<u8>, BodyRefused> {
    if declared.0.is_some_and(|n| n > limit as u64) {
        return Err(BodyRefused::TooLarge);
    }
    let body = body
        .open(limit.bytes())
        .into_bytes()
        .await
        .map_err(|_| BodyRefused::Unreadable)?;
    if body.is_complete() {
        Ok(body.into_inner())
    } else {
        Err(BodyRefused::TooLarge)
    }
}

/// What the route sends back.
enum TsaHttpAnswer {
    /// HTTP 200 with a DER `TimeStampResp`.
    Reply(Vec<u8>),
    /// An HTTP error with a short plain-text body.
    Refused(Status, String),
}

impl<'r> Responder<'r, 'static> for TsaHttpAnswer {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        match self {
            TsaHttpAnswer::Reply(der) => Response::build()
                .status(Status::Ok)
                .raw_header("Content-Type", TIMESTAMP_REPLY)
                // A token answers one request (its nonce, its time): never a cached copy.
                .raw_header("Cache-Control", "no-store")
                .sized_body(der.len(), Cursor::new(der))
                .ok(),
            TsaHttpAnswer::Refused(status, text) => Response::build()
                .status(status)
                .header(ContentType::Plain)
                .sized_body(text.len(), Cursor::new(text))
                .ok(),
        }
    }
}

/// Whether `content_type` is `application/timestamp-query` (case-insensitive, parameters
/// ignored, as media types compare).
fn is_timestamp_query(content_type: Option<&ContentType>) -> bool {
    content_type.is_some_and(|ct| ct.top() == "application" && ct.sub() == "timestamp-query")
}

/// `POST /tsa`: one RFC 3161 request, one response. Bodies are never logged.
#[rocket::post("/tsa", data = "<body>")]
async fn tsa_post(
    content_type: Option<&ContentType>,
    declared: DeclaredLength,
    body: Data<'_>,
    service: &State<Arc<TsaService>>,
) -> TsaHttpAnswer {
    if !is_timestamp_query(content_type) {
        return TsaHttpAnswer::Refused(
            Status::UnsupportedMediaType,
            format!("send a DER TimeStampReq as Content-Type: {TIMESTAMP_QUERY} (RFC 3161 §3.4)\n"),
        );
    }
    match read_limited_body(body, &declared, MAX_REQUEST_BYTES).await {
        Ok(body) => TsaHttpAnswer::Reply(service.respond(&body).der),
        Err(BodyRefused::TooLarge) => TsaHttpAnswer::Refused(
            Status::PayloadTooLarge,
            format!("a time-stamp request is at most {MAX_REQUEST_BYTES} bytes\n"),
        ),
        Err(BodyRefused::Unreadable) => TsaHttpAnswer::Refused(
            Status::BadRequest,
            "the request body could not be read\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timestamp_query_is_accepted() {
        let parse = |s: &str| ContentType::parse_flexible(s);
        assert!(is_timestamp_query(
            parse("application/timestamp-query").as_ref()
        ));
        assert!(is_timestamp_query(
            parse("Application/TimeStamp-Query; x=y").as_ref()
        ));
        assert!(!is_timestamp_query(
            parse("application/timestamp-reply").as_ref()
        ));
        assert!(!is_timestamp_query(
            parse("application/octet-stream").as_ref()
        ));
        assert!(!is_timestamp_query(None));
    }
}
