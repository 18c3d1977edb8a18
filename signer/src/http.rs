//! `POST /verify`: validate a CMS / CAdES signature or a signed PDF (PAdES) over HTTP and
//! answer with the JSON [`ValidationReport`]. Mounted into `imza serve` through [`stage`].
//!
//! Request: a body of at most [`MAX_BODY_BYTES`] (48 MiB), either `Content-Type:
//! application/json`:
//!
//! ```json
//! { "signature": "<base64 of the DER signature>",
//!   "content":   "<base64 of the signed document, for a detached signature>" }
//! ```
//!
//! or `Content-Type: application/pdf` with the signed PDF itself (one report entry per
//! signature and document time-stamp, each with its `pdf` part).
//!
//! Answers:
//! - 200 with the report (`application/json`), whatever the verdict: a signature that does
//!   not validate is an answer, not an HTTP error; read `valid` and each `indication`;
//! - 400 `{"error": "..."}` for a body that is not such JSON, or base64 that does not decode;
//! - 413 `{"error": "..."}` for a body over the limit (refused by its Content-Length before it
//!   is read, or when reading passes the limit);
//! - 415 `{"error": "..."}` for another media type;
//! - 408 `{"error": "..."}` for a body sent slower than the server accepts;
//! - 503 `{"error": "..."}` with `Retry-After` when the validation queue is full or the
//!   request bodies held by all requests would pass the memory budget ([`VerifyLimits`]).
//!
//! Validation — JSON parsing and base64 decoding of large bodies included — runs on the
//! blocking pool within the service's own [`WorkLimit`]: its network fetches (revocation
//! data) wait there, never on the threads other services use.
//!
//! The service's trust anchors, extra certificates and CRLs and network setting are fixed
//! when it is built; "now" comes from its clock.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use axum::routing::post;
use axum::Router;
use base64ct::{Base64, Encoding};
use imza_core::clock::Clock;
use imza_http::admission::{WorkError, DEFAULT_MAX_WAIT};
use imza_http::answer::{closing, retry_after_value};
use imza_http::{content_type_is, read_body, BodyRefused, MemoryBudget, Overloaded, WorkLimit};
use serde::Deserialize;

use crate::{SignatureVerifier, ValidationReport, VerifyOptions};

/// The largest request body accepted: a 32 MiB document and its signature, base64-encoded.
pub const MAX_BODY_BYTES: usize = 48 * 1024 * 1024;

/// What `POST /verify` serves: one verifier (anchors, caches) and where "now" comes from.
pub struct VerifyService {
    verifier: SignatureVerifier,
    clock: Arc<dyn Clock>,
}

impl VerifyService {
    /// A service verifying under `options` (their `time` is ignored: `clock` gives "now"
    /// for each request).
    pub fn new(options: &VerifyOptions, clock: Arc<dyn Clock>) -> VerifyService {
        VerifyService {
            verifier: SignatureVerifier::new(options),
            clock,
        }
    }

    /// Validates one signature at the clock's "now".
    pub fn verify(&self, signature: &[u8], content: Option<&[u8]>) -> ValidationReport {
        self.verifier.verify(signature, content, self.clock.now())
    }

    /// Validates the signatures of the PDF `pdf` (PAdES).
    pub fn verify_pdf(&self, pdf: &[u8]) -> ValidationReport {
        crate::pades::verify_pdf_with(std::io::Cursor::new(pdf), &self.verifier, self.clock.now())
    }
}

/// How much `POST /verify` may do at once.
#[derive(Clone, Debug)]
pub struct VerifyLimits {
    /// Validations running at once, and waiting.
    pub work: WorkLimit,
    /// Request data (bodies and their decoded copies) all requests may hold together.
    pub memory: MemoryBudget,
}

impl Default for VerifyLimits {
    /// Two validations per core at once (one may be waiting on a fetch), 64
    /// waiting, and 512 MiB of request data in memory (ten 48 MiB requests with their
    /// decoded copies).
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        VerifyLimits {
            work: WorkLimit::new("signature validation", 2 * cores, 64, DEFAULT_MAX_WAIT),
            memory: MemoryBudget::new(512 * 1024 * 1024),
        }
    }
}

/// `POST /verify` answered by `service` within `limits`.
pub fn routes(service: Arc<VerifyService>, limits: VerifyLimits) -> Router {
    Router::new()
        .route("/verify", post(verify_post))
        .with_state(VerifyRoute { service, limits })
}

#[derive(Clone)]
struct VerifyRoute {
    service: Arc<VerifyService>,
    limits: VerifyLimits,
}

/// The JSON body of `POST /verify`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    /// Base64 (standard alphabet, padded) of the DER signature.
    signature: String,
    /// Base64 of the signed content, for a detached signature.
    #[serde(default)]
    content: Option<String>,
}

/// A JSON answer with a status.
struct JsonAnswer(StatusCode, String);

impl JsonAnswer {
    fn error(status: StatusCode, text: impl Into<String>) -> JsonAnswer {
        let body = serde_json::json!({ "error": text.into() }).to_string();
        JsonAnswer(status, body)
    }

    fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Body::from(self.1));
        *response.status_mut() = self.0;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// 503 with `Retry-After`, in the route's JSON.
fn busy(full: &Overloaded) -> Response<Body> {
    let mut response =
        JsonAnswer::error(StatusCode::SERVICE_UNAVAILABLE, full.to_string()).into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, retry_after_value(full));
    response
}

fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, JsonAnswer> {
    // Line breaks are tolerated (some clients wrap base64); nothing else is.
    let compact: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    Base64::decode_vec(&compact).map_err(|e| {
        JsonAnswer::error(
            StatusCode::BAD_REQUEST,
            format!("\"{field}\" is not standard padded base64: {e}"),
        )
    })
}

/// `POST /verify`. Bodies are never logged.
async fn verify_post(
    State(route): State<VerifyRoute>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let pdf = content_type_is(&headers, "application/pdf") == Some(true);
    if !pdf && content_type_is(&headers, "application/json") != Some(true) {
        return closing(
            JsonAnswer::error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send Content-Type: application/json with {\"signature\": base64, \"content\": \
                 base64 (for a detached signature)}, or Content-Type: application/pdf with a \
                 signed PDF",
            )
            .into_response(),
        );
    }
    let memory = &route.limits.memory;
    let mut body = match read_body(body, &headers, MAX_BODY_BYTES, Some(memory)).await {
        Ok(body) => body,
        Err(BodyRefused::TooLarge { .. }) => {
            return closing(
                JsonAnswer::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("a /verify request is at most {MAX_BODY_BYTES} bytes"),
                )
                .into_response(),
            )
        }
        Err(BodyRefused::Overloaded(full)) => return closing(busy(&full)),
        Err(BodyRefused::TimedOut) => {
            return JsonAnswer::error(StatusCode::REQUEST_TIMEOUT, "the body arrived too slowly")
                .into_response()
        }
        Err(BodyRefused::Unreadable) => {
            return closing(
                JsonAnswer::error(StatusCode::BAD_REQUEST, "the body could not be read")
                    .into_response(),
            )
        }
    };
    // The parsed strings and the decoded bytes come to about twice the body again: held
    // against the same budget until the answer is written.
    // A PDF is validated as it is; JSON is decoded from base64 first.
    let decoded_size = if pdf {
        0
    } else {
        body.bytes.len().saturating_mul(2)
    };
    if let Err(full) = body.reserve_more(memory, decoded_size) {
        return busy(&full);
    }
    let service = Arc::clone(&route.service);
    let work = route.limits.work.run_blocking(move || {
        let (bytes, _reservation) = body.into_parts();
        if pdf {
            return report_answer(&service.verify_pdf(&bytes));
        }
        validate(&service, &bytes)
    });
    match work.await {
        Ok(answer) => answer.into_response(),
        Err(WorkError::Overloaded(full)) => busy(&full),
        Err(WorkError::Failed { .. }) => JsonAnswer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the validation did not complete",
        )
        .into_response(),
    }
}

/// Parses the request and validates: CPU work of milliseconds (and, for signatures whose
/// revocation data must be fetched, network waits), on the blocking pool.
fn validate(service: &VerifyService, body: &[u8]) -> JsonAnswer {
    let request: VerifyRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return JsonAnswer::error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not {{\"signature\": base64, \"content\": base64 (optional)}}: {e}"
                ),
            )
        }
    };
    let signature = match decode_base64("signature", &request.signature) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    drop(request.signature);
    let content = match request
        .content
        .as_deref()
        .map(|c| decode_base64("content", c))
    {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(answer)) => return answer,
    };
    report_answer(&service.verify(&signature, content.as_deref()))
}

fn report_answer(report: &ValidationReport) -> JsonAnswer {
    match serde_json::to_string(report) {
        Ok(json) => JsonAnswer(StatusCode::OK, json),
        Err(e) => JsonAnswer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the report could not be written: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_with_line_breaks_decodes_and_garbage_does_not() {
        assert_eq!(
            decode_base64("s", "aGVs\nbG8=").ok(),
            Some(b"hello".to_vec())
        );
        assert!(decode_base64("s", "not base64!").is_err());
    }
}
