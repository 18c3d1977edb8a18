//! OCSP over HTTP (RFC 6960 Appendix A.1, profiled by RFC 5019 / RFC 9919): Rocket routes for
//! `POST /ocsp` and `GET /ocsp/{base64 request}`, answered by an [`OcspService`], and the
//! [`OcspStage`] fairing that mounts them and runs the cache upkeep.
//!
//! Decisions:
//! - Every OCSP answer, error statuses included, is `200 OK` with
//!   `Content-Type: application/ocsp-response` (A.1.2): the status travels in the DER.
//!   HTTP errors are for what is not an OCSP request at all: a body over the request limit
//!   (413, refused from Content-Length before reading when it is declared), a GET path over
//!   [`MAX_GET_PATH_BYTES`] (414), another content type (415), an unreadable body (400).
//! - Cacheable answers (successful, no nonce) carry the RFC 5019 §6.2 headers: `Last-Modified`
//!   (thisUpdate), `Expires` (nextUpdate), `ETag` and `Cache-Control: max-age=N, public,
//!   no-transform, must-revalidate` with N never reaching past nextUpdate; GET honours
//!   `If-None-Match` with 304. Everything else is `Cache-Control: no-store`.
//! - The GET path is read from the raw request URI, not from Rocket's segments, which drop
//!   empty segments: base64 may contain `//`. It is percent-decoded (never `+` → space: `+`
//!   is a base64 letter) and accepted with or without `=` padding.
//! - A cache hit is answered on the async worker (a read lock and an `Arc` clone); a miss goes
//!   to the blocking pool, since the status source may wait on a database and signing takes
//!   CPU.
//! - Request bodies are never logged, nor anything else from here.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use base64ct::{Base64, Base64Unpadded, Encoding};
use rocket::data::{ByteUnit, Data};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Header, RawStr, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::tokio::task::spawn_blocking;
use rocket::tokio::time::{interval, MissedTickBehavior};
use rocket::{Build, Orbit, Rocket, Shutdown, State};

use crate::cache::SignedResponse;
use crate::OcspError;

/// The service the routes answer with, re-exported so a server wires everything from here.
pub use crate::service::{CacheConfig, HttpOcspAnswer, OcspService};

/// Longest GET path accepted after `/ocsp/`, percent-encoding included. A one-CertID
/// request with a nonce is ~250 base64 characters (RFC 5019 §5 expects GET for requests
/// under 255 bytes); 16 KiB leaves room for 100 CertIDs and stays below what HTTP servers
/// and proxies commonly pass.
pub const MAX_GET_PATH_BYTES: usize = 16 * 1024;

/// Where the routes are mounted, and the path segment GET requests follow.
const OCSP_SEGMENT: &str = "ocsp";

fn ocsp_response_type() -> ContentType {
    ContentType::new("application", "ocsp-response")
}

/// The headers the routes look at, taken raw from the request.
pub struct OcspRequestHead<'r> {
    /// The URI path exactly as received (percent-encoding and empty segments kept).
    raw_path: &'r str,
    content_type: Option<&'r str>,
    content_length: Option<&'r str>,
    if_none_match: Option<&'r str>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for OcspRequestHead<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let headers = request.headers();
        Outcome::Success(OcspRequestHead {
            raw_path: request.uri().path().as_str(),
            content_type: headers.get_one("Content-Type"),
            content_length: headers.get_one("Content-Length"),
            if_none_match: headers.get_one("If-None-Match"),
        })
    }
}

impl OcspRequestHead<'_> {
    /// `application/ocsp-request` (parameters ignored), or no Content-Type at all: some
    /// clients send none, and the body is checked as DER either way.
    fn content_type_accepted(&self) -> bool {
        match self.content_type {
            None => true,
            Some(raw) => ContentType::parse_flexible(raw)
                .is_some_and(|ct| ct.top() == "application" && ct.sub() == "ocsp-request"),
        }
    }

    fn declared_length(&self) -> Option<u64> {
        self.content_length.and_then(|v| v.trim().parse().ok())
    }
}

/// What a route sends back.
pub enum OcspReply {
    /// 200 with the DER OCSPResponse.
    Answer(HttpOcspAnswer),
    /// 304 for a GET whose If-None-Match names the answer's ETag.
    NotModified(HttpOcspAnswer),
    /// An HTTP error with a short plain-text reason: the request is not an OCSP request.
    Refused(Status, String),
}

/// The DER body, streamed from the shared response without a copy.
struct SharedDer(Arc<SignedResponse>);

impl AsRef<[u8]> for SharedDer {
    fn as_ref(&self) -> &[u8] {
        self.0.der()
    }
}

/// The RFC 5019 §6.2 headers of a cacheable answer, or `no-store`. `with_dates` adds
/// Last-Modified, which a 304 leaves out (RFC 9110 §15.4.5).
fn caching_headers(builder: &mut response::Builder<'_>, answer: &HttpOcspAnswer, with_dates: bool) {
    match (answer.freshness(), answer.max_age()) {
        (Some(freshness), Some(max_age)) => {
            builder.header(Header::new(
                "Cache-Control",
                format!("max-age={max_age}, public, no-transform, must-revalidate"),
            ));
            builder.header(Header::new("ETag", freshness.etag.clone()));
            builder.header(Header::new("Expires", freshness.expires.clone()));
            if with_dates {
                builder.header(Header::new(
                    "Last-Modified",
                    freshness.last_modified.clone(),
                ));
            }
        }
        _ => {
            builder.header(Header::new("Cache-Control", "no-store"));
        }
    }
}

impl<'r> Responder<'r, 'static> for OcspReply {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut builder = Response::build();
        match self {
            OcspReply::Answer(answer) => {
                builder.status(Status::Ok).header(ocsp_response_type());
                caching_headers(&mut builder, &answer, true);
                let body = answer.body();
                builder.sized_body(body.der().len(), Cursor::new(SharedDer(body)));
            }
            OcspReply::NotModified(answer) => {
                builder.status(Status::NotModified);
                caching_headers(&mut builder, &answer, false);
            }
            OcspReply::Refused(status, text) => {
                builder
                    .status(status)
                    .header(ContentType::Plain)
                    .header(Header::new("Cache-Control", "no-store"))
                    .sized_body(text.len(), Cursor::new(text));
            }
        }
        builder.ok()
    }
}

/// Answers `request` from the cache, or live on the blocking pool.
async fn answer(service: &Arc<OcspService>, request: Vec<u8>) -> HttpOcspAnswer {
    match service.answer_cached(&request) {
        Ok(answer) => answer,
        Err(miss) => {
            let worker = Arc::clone(service);
            spawn_blocking(move || worker.answer_missed(&request, miss))
                .await
                .unwrap_or_else(|_| {
                    HttpOcspAnswer::refused(
                        OcspError::Panic("the task answering the request failed".into()),
                        service.now(),
                    )
                })
        }
    }
}

/// `POST /ocsp`: the DER OCSPRequest is the body (RFC 6960 A.1.1).
#[rocket::post("/ocsp", data = "<body>")]
pub async fn ocsp_post(
    service: &State<Arc<OcspService>>,
    head: OcspRequestHead<'_>,
    body: Data<'_>,
) -> OcspReply {
    if !head.content_type_accepted() {
        return OcspReply::Refused(
            Status::UnsupportedMediaType,
            "an OCSP request is sent as application/ocsp-request\n".into(),
        );
    }
    let limit = service.max_request_bytes();
    let too_large = || {
        OcspReply::Refused(
            Status::PayloadTooLarge,
            format!("an OCSP request is at most {limit} bytes\n"),
        )
    };
    if head.declared_length().is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    // At most `limit` bytes are read; whatever follows is left unread.
    let bytes = match body.open(ByteUnit::from(limit)).into_bytes().await {
        Ok(bytes) if bytes.is_complete() => bytes.into_inner(),
        Ok(_) => return too_large(),
        Err(_) => {
            return OcspReply::Refused(
                Status::BadRequest,
                "the request body could not be read\n".into(),
            )
        }
    };
    OcspReply::Answer(answer(service.inner(), bytes).await)
}

/// `GET /ocsp/{url-encoded base64 of the DER OCSPRequest}` (RFC 6960 A.1.1, RFC 5019 §5).
#[rocket::get("/ocsp/<_..>")]
pub async fn ocsp_get(service: &State<Arc<OcspService>>, head: OcspRequestHead<'_>) -> OcspReply {
    let encoded = get_request_part(head.raw_path);
    if encoded.len() > MAX_GET_PATH_BYTES {
        return OcspReply::Refused(
            Status::UriTooLong,
            format!(
                "a GET OCSP request path is at most {MAX_GET_PATH_BYTES} bytes; POST larger requests\n"
            ),
        );
    }
    let request = match decode_get_request(encoded) {
        Ok(request) => request,
        Err(problem) => {
            return OcspReply::Answer(HttpOcspAnswer::refused(problem, service.now()));
        }
    };
    let answer = answer(service.inner(), request).await;
    match (answer.etag(), head.if_none_match) {
        (Some(etag), Some(wanted)) if etag_matches(wanted, etag) => OcspReply::NotModified(answer),
        _ => OcspReply::Answer(answer),
    }
}

/// The part of a raw GET path after the `ocsp` segment, without the slashes that separate
/// them. A DER OCSPRequest starts with a SEQUENCE tag (0x30), so its base64 starts with `M`,
/// never `/`: leading slashes are separators (an AIA URL ending in `/` gives `/ocsp//M...`).
pub fn get_request_part(raw_path: &str) -> &str {
    let rest = raw_path.trim_start_matches('/');
    let rest = rest.strip_prefix(OCSP_SEGMENT).unwrap_or(rest);
    rest.trim_start_matches('/')
}

/// Percent-decodes and base64-decodes the request part of a GET path. Standard base64
/// (RFC 4648 §4), padded or not; anything else is a `malformedRequest`.
pub fn decode_get_request(encoded: &str) -> Result<Vec<u8>, OcspError> {
    let malformed = |reason: &str| OcspError::Malformed {
        what: "GET request path",
        reason: reason.to_string(),
    };
    let text = RawStr::new(encoded)
        .percent_decode()
        .map_err(|_| malformed("percent-decoding does not give text"))?;
    let decoded = if text.ends_with('=') {
        Base64::decode_vec(&text)
    } else {
        Base64Unpadded::decode_vec(&text)
    };
    decoded.map_err(|e| malformed(&format!("not base64 ({e})")))
}

/// Whether an If-None-Match value names `etag` (weak comparison, RFC 9110 §13.1.2).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.trim() == "*"
        || if_none_match
            .split(',')
            .map(|tag| tag.trim())
            .map(|tag| tag.strip_prefix("W/").unwrap_or(tag))
            .any(|tag| tag == etag)
}

/// The Rocket fairing of the OCSP service: on ignite it manages the [`OcspService`] and mounts
/// [`ocsp_post`] and [`ocsp_get`] at `/`; on liftoff it starts the cache upkeep on Rocket's
/// runtime — [`OcspService::poll_revision`] every `poll_interval` and
/// [`OcspService::refresh`] every `refresh_interval` — which stops when Rocket shuts down.
pub struct OcspStage {
    service: Arc<OcspService>,
}

/// The fairing to attach to serve OCSP: `rocket.attach(imza_ocsp::http::stage(service))`.
pub fn stage(service: Arc<OcspService>) -> OcspStage {
    OcspStage { service }
}

#[rocket::async_trait]
impl Fairing for OcspStage {
    fn info(&self) -> Info {
        Info {
            name: "imza OCSP responder",
            kind: Kind::Ignite | Kind::Liftoff,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> rocket::fairing::Result {
        Ok(rocket
            .manage(Arc::clone(&self.service))
            .mount("/", rocket::routes![ocsp_post, ocsp_get]))
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let config = *self.service.config();
        rocket::tokio::spawn(every(
            config.poll_interval,
            rocket.shutdown(),
            Arc::clone(&self.service),
            |service| {
                // A failure is kept for `last_poll_error` and has cleared the cache.
                let _ = service.poll_revision();
            },
        ));
        rocket::tokio::spawn(every(
            config.refresh_interval,
            rocket.shutdown(),
            Arc::clone(&self.service),
            |service| {
                service.refresh();
            },
        ));
    }
}

/// Runs `job` on the blocking pool every `period` (a slow run delays the next, never
/// overlaps it) until Rocket shuts down.
async fn every(
    period: StdDuration,
    shutdown: Shutdown,
    service: Arc<OcspService>,
    job: fn(&OcspService),
) {
    // `interval` refuses a zero period.
    let mut ticks = interval(period.max(StdDuration::from_millis(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        rocket::tokio::select! {
            _ = &mut shutdown => break,
            _ = ticks.tick() => {}
        }
        let worker = Arc::clone(&service);
        // A panicking job is reported by the JoinError and retried at the next tick.
        let _ = spawn_blocking(move || job(&worker)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_part_skips_the_ocsp_segment_and_separating_slashes() {
        assert_eq!(get_request_part("/ocsp/MEIw"), "MEIw");
        assert_eq!(get_request_part("/ocsp//MEIw"), "MEIw");
        assert_eq!(get_request_part("//ocsp/MEI//w%2B"), "MEI//w%2B");
        assert_eq!(get_request_part("/ocsp"), "");
        assert_eq!(get_request_part("/ocsp/"), "");
    }

    #[test]
    fn get_paths_decode_with_or_without_padding_and_encoding() {
        // "MAAA" "++++" "////" "AQ==": '+' and '/' are the letters URLs treat specially.
        let bytes = [0x30u8, 0, 0, 0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff, 0x01];
        let padded = Base64::encode_string(&bytes);
        assert!(padded.contains('+') && padded.contains('/') && padded.ends_with('='));
        assert_eq!(decode_get_request(&padded).unwrap(), bytes);
        assert_eq!(
            decode_get_request(padded.trim_end_matches('=')).unwrap(),
            bytes
        );
        let url_encoded = padded
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert_eq!(decode_get_request(&url_encoded).unwrap(), bytes);
        let lower = url_encoded.replace("%2B", "%2b").replace("%2F", "%2f");
        assert_eq!(decode_get_request(&lower).unwrap(), bytes);
    }

    #[test]
    fn undecodable_get_paths_are_malformed() {
        for bad in [
            "M!!!",
            "M E I w",
            "%ff%fe",
            "M",
            "MEIw=",
            "MEIw%3D%3D%3D",
            "-_-_",
        ] {
            let err = decode_get_request(bad).unwrap_err();
            assert_eq!(
                err.response_status(),
                x509_ocsp::OcspResponseStatus::MalformedRequest,
                "{bad}"
            );
        }
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let tag = "\"abc\"";
        assert!(etag_matches("\"abc\"", tag));
        assert!(etag_matches("W/\"abc\"", tag));
        assert!(etag_matches("\"x\", \"abc\"", tag));
        assert!(etag_matches(" * ", tag));
        assert!(!etag_matches("\"abcd\"", tag));
        assert!(!etag_matches("abc", tag));
        assert!(!etag_matches("", tag));
    }
}
