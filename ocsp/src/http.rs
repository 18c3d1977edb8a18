//! OCSP over HTTP (RFC 6960 Appendix A.1, profiled by RFC 5019 / RFC 9919): `POST /ocsp`
//! and `GET /ocsp/{base64 request}`, answered by an [`OcspService`] ([`routes`]), and the
//! cache upkeep that keeps it honest ([`start_upkeep`]).
//!
//! Decisions:
//! - Every OCSP answer, error statuses included, is `200 OK` with
//!   `Content-Type: application/ocsp-response` (A.1.2): the status travels in the DER.
//!   HTTP errors are for what is not an OCSP request at all: a body over the request limit
//!   (413, refused from Content-Length before reading when it is declared), a GET path over
//!   [`MAX_GET_PATH_BYTES`] (414), another content type (415), an unreadable body (400), a
//!   body sent too slowly (408) — and for a responder whose work queue is full (503 with
//!   `Retry-After`).
//! - Cacheable answers (successful, no nonce) carry the RFC 5019 §6.2 headers: `Last-Modified`
//!   (thisUpdate), `Expires` (nextUpdate), `ETag` and `Cache-Control: max-age=N, public,
//!   no-transform, must-revalidate` with N never reaching past nextUpdate; GET honours
//!   `If-None-Match` with 304. Everything else is `Cache-Control: no-store`.
//! - The GET path is read from the raw request URI, which keeps empty segments: base64 may
//!   contain `//`. It is percent-decoded (never `+` → space: `+` is a base64 letter) and
//!   accepted with or without `=` padding.
//! - A cache hit is answered on the async worker (a read lock and an `Arc` clone); a miss
//!   (and every nonce request) goes to the blocking pool within the responder's
//!   [`WorkLimit`], since the status source may wait on a database and signing takes CPU.
//! - The revision poll that drops the cache on a revocation runs on a thread of its own, so
//!   nothing the server is doing can delay it.
//! - Request bodies are never logged, nor anything else from here.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, EXPIRES, IF_NONE_MATCH, LAST_MODIFIED,
};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, Uri};
use axum::routing::get;
use axum::Router;
use base64ct::{Base64, Base64Unpadded, Encoding};
use imza_http::admission::{WorkError, DEFAULT_MAX_WAIT};
use imza_http::answer::{closing, overloaded, plain, refused_body};
use imza_http::{content_type_is, read_body, Shutdown, WorkLimit};

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

const OCSP_REQUEST: &str = "application/ocsp-request";
const OCSP_RESPONSE: &str = "application/ocsp-response";

/// The responder's default work limit for cache misses and nonce requests: two per core on
/// the blocking pool (the status source may wait on the store), a queue for a burst.
pub fn default_work_limit() -> WorkLimit {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    WorkLimit::new("OCSP", 2 * cores, 1024, DEFAULT_MAX_WAIT)
}

/// `POST /ocsp` and `GET /ocsp/…` answered by `service`; cache misses and nonce requests run
/// within `limit` (beyond its queue: 503 with `Retry-After`).
pub fn routes(service: Arc<OcspService>, limit: WorkLimit) -> Router {
    Router::new()
        .route("/ocsp", get(ocsp_get).post(ocsp_post))
        .route("/ocsp/", get(ocsp_get).post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .with_state(OcspRoute { service, limit })
}

#[derive(Clone)]
struct OcspRoute {
    service: Arc<OcspService>,
    limit: WorkLimit,
}

/// What a route sends back.
enum OcspReply {
    /// 200 with the DER OCSPResponse.
    Answer(HttpOcspAnswer),
    /// 304 for a GET whose If-None-Match names the answer's ETag.
    NotModified(HttpOcspAnswer),
    /// An HTTP error: the request is not an OCSP request, or the responder is full.
    Refused(Response<Body>),
}

/// The RFC 5019 §6.2 headers of a cacheable answer, or `no-store`. `with_dates` adds
/// Last-Modified, which a 304 leaves out (RFC 9110 §15.4.5).
fn caching_headers(headers: &mut HeaderMap, answer: &HttpOcspAnswer, with_dates: bool) {
    let value = |text: &str| HeaderValue::from_str(text).ok();
    match (answer.freshness(), answer.max_age()) {
        (Some(freshness), Some(max_age)) => {
            let control = format!("max-age={max_age}, public, no-transform, must-revalidate");
            let fields = [
                (CACHE_CONTROL, value(&control)),
                (ETAG, value(&freshness.etag)),
                (EXPIRES, value(&freshness.expires)),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    headers.insert(name, value);
                }
            }
            if with_dates {
                if let Some(value) = value(&freshness.last_modified) {
                    headers.insert(LAST_MODIFIED, value);
                }
            }
        }
        _ => {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

impl OcspReply {
    fn into_response(self) -> Response<Body> {
        match self {
            OcspReply::Answer(answer) => {
                let body = answer.body();
                let mut response =
                    Response::new(Body::from(bytes::Bytes::from_owner(SharedDer(body))));
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCSP_RESPONSE));
                caching_headers(headers, &answer, true);
                response
            }
            OcspReply::NotModified(answer) => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NOT_MODIFIED;
                caching_headers(response.headers_mut(), &answer, false);
                response
            }
            OcspReply::Refused(response) => response,
        }
    }
}

/// The DER body, shared with the cache without a copy.
struct SharedDer(Arc<crate::cache::SignedResponse>);

impl AsRef<[u8]> for SharedDer {
    fn as_ref(&self) -> &[u8] {
        self.0.der()
    }
}

/// Answers `request` from the cache, or live on the blocking pool within the work limit.
async fn answer(route: &OcspRoute, request: Vec<u8>) -> OcspReply {
    let service = &route.service;
    match service.answer_cached(&request) {
        Ok(answer) => OcspReply::Answer(answer),
        Err(miss) => {
            let worker = Arc::clone(service);
            match route
                .limit
                .run_blocking(move || worker.answer_missed(&request, miss))
                .await
            {
                Ok(answer) => OcspReply::Answer(answer),
                Err(WorkError::Overloaded(full)) => OcspReply::Refused(overloaded(&full)),
                Err(WorkError::Failed { .. }) => OcspReply::Answer(HttpOcspAnswer::refused(
                    OcspError::Panic("the task answering the request failed".into()),
                    service.now(),
                )),
            }
        }
    }
}

/// `POST /ocsp`: the DER OCSPRequest is the body (RFC 6960 A.1.1).
async fn ocsp_post(
    State(route): State<OcspRoute>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    // No Content-Type is accepted too: some clients send none, and the body is checked as
    // DER either way.
    if content_type_is(&headers, OCSP_REQUEST) == Some(false) {
        return closing(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "an OCSP request is sent as application/ocsp-request",
        ));
    }
    let limit = route.service.max_request_bytes();
    // At most `limit` bytes are read; whatever follows is left unread.
    let body = match read_body(body, &headers, limit, None).await {
        Ok(body) => body,
        Err(refused) => {
            return refused_body(
                refused,
                &format!("an OCSP request is at most {limit} bytes"),
            )
        }
    };
    answer(&route, body.bytes.to_vec()).await.into_response()
}

/// `GET /ocsp/{url-encoded base64 of the DER OCSPRequest}` (RFC 6960 A.1.1, RFC 5019 §5).
async fn ocsp_get(State(route): State<OcspRoute>, uri: Uri, headers: HeaderMap) -> Response<Body> {
    let encoded = get_request_part(uri.path());
    if encoded.len() > MAX_GET_PATH_BYTES {
        return plain(
            StatusCode::URI_TOO_LONG,
            format!(
                "a GET OCSP request path is at most {MAX_GET_PATH_BYTES} bytes; POST larger requests"
            ),
        );
    }
    let request = match decode_get_request(encoded) {
        Ok(request) => request,
        Err(problem) => {
            return OcspReply::Answer(HttpOcspAnswer::refused(problem, route.service.now()))
                .into_response();
        }
    };
    let if_none_match = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let reply = match answer(&route, request).await {
        OcspReply::Answer(answer) => match (answer.etag(), if_none_match.as_deref()) {
            (Some(etag), Some(wanted)) if etag_matches(wanted, etag) => {
                OcspReply::NotModified(answer)
            }
            _ => OcspReply::Answer(answer),
        },
        other => other,
    };
    reply.into_response()
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
    let text = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
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

/// Starts the cache upkeep on threads of its own, until `shutdown`:
/// [`OcspService::poll_revision`] every `poll_interval` — on a dedicated thread, so no load
/// on the server's workers or blocking pool can delay a revocation reaching the cache — and
/// [`OcspService::refresh`] every `refresh_interval`. A slow run delays the next, never
/// overlaps it; a panicking run is reported by nothing but its effect and retried next time.
pub fn start_upkeep(
    service: &Arc<OcspService>,
    shutdown: &Shutdown,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let config = *service.config();
    let poll = every(
        "ocsp-revision-poll",
        config.poll_interval,
        service,
        shutdown,
        |s| {
            // A failure is kept for `last_poll_error` and has cleared the cache.
            let _ = s.poll_revision();
        },
    )?;
    let refresh = every(
        "ocsp-cache-refresh",
        config.refresh_interval,
        service,
        shutdown,
        |s| {
            s.refresh();
        },
    )?;
    Ok(vec![poll, refresh])
}

/// Runs `job` every `period` on a thread named `name` until `shutdown`.
fn every(
    name: &str,
    period: StdDuration,
    service: &Arc<OcspService>,
    shutdown: &Shutdown,
    job: fn(&OcspService),
) -> std::io::Result<JoinHandle<()>> {
    let service = Arc::clone(service);
    let shutdown = shutdown.clone();
    // Sleeps are cut into slices so that a shutdown is seen within one.
    let slice = StdDuration::from_millis(100);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let period = period.max(StdDuration::from_millis(1));
            while !shutdown.is_cancelled() {
                let mut slept = StdDuration::ZERO;
                while slept < period && !shutdown.is_cancelled() {
                    let nap = slice.min(period - slept);
                    std::thread::sleep(nap);
                    slept += nap;
                }
                if shutdown.is_cancelled() {
                    break;
                }
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&service)));
            }
        })
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
