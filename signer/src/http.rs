//! `POST /verify`: validate a CMS / CAdES signature over HTTP and answer with the JSON
//! [`ValidationReport`]. Mounted into `imza serve` through [`stage`].
//!
//! Request: `Content-Type: application/json`, a body of at most [`MAX_BODY_BYTES`] (48 MiB):
//!
//! ```json
//! { "signature": "<base64 of the DER signature>",
//!   "content":   "<base64 of the signed document, for a detached signature>" }
//! ```
//!
//! Answers:
//! - 200 with the report (`application/json`), whatever the verdict: a signature that does
//!   not validate is an answer, not an HTTP error; read `valid` and each `indication`;
//! - 400 `{"error": "..."}` for a body that is not such JSON, or base64 that does not decode;
//! - 413 `{"error": "..."}` for a body over the limit (refused by its Content-Length before it
//!   is read, or when reading passes the limit);
//! - 415 `{"error": "..."}` for another media type.
//!
//! The service's trust anchors, extra certificates and CRLs and network setting are fixed
//! when it is built; "now" comes from its clock.

use std::io::Cursor;
use std::sync::Arc;

use base64ct::{Base64, Encoding};
use imza_core::clock::Clock;
use imza_tsa::http::{read_limited_body, BodyRefused, DeclaredLength};
use rocket::fairing::AdHoc;
use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder};
use rocket::{Data, Request, Response, State};
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
}

/// Manages `service` and mounts `POST /verify` at `/`.
pub fn stage(service: Arc<VerifyService>) -> AdHoc {
    AdHoc::on_ignite("imza signature validation (/verify)", |rocket| async move {
        rocket
            .manage(service)
            .mount("/", rocket::routes![verify_post])
    })
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
struct JsonAnswer(Status, String);

impl JsonAnswer {
    fn error(status: Status, text: impl Into<String>) -> JsonAnswer {
        let body = serde_json::json!({ "error": text.into() }).to_string();
        JsonAnswer(status, body)
    }
}

impl<'r> Responder<'r, 'static> for JsonAnswer {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build()
            .status(self.0)
            .header(ContentType::JSON)
            .raw_header("Cache-Control", "no-store")
            .sized_body(self.1.len(), Cursor::new(self.1))
            .ok()
    }
}

fn is_json(content_type: Option<&ContentType>) -> bool {
    content_type.is_some_and(|ct| ct.top() == "application" && ct.sub() == "json")
}

fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, JsonAnswer> {
    // Line breaks are tolerated (some clients wrap base64); nothing else is.
    let compact: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    Base64::decode_vec(&compact).map_err(|e| {
        JsonAnswer::error(
            Status::BadRequest,
            format!("\"{field}\" is not standard padded base64: {e}"),
        )
    })
}

/// `POST /verify`. Bodies are never logged.
#[rocket::post("/verify", data = "<body>")]
async fn verify_post(
    content_type: Option<&ContentType>,
    declared: DeclaredLength,
    body: Data<'_>,
    service: &State<Arc<VerifyService>>,
) -> JsonAnswer {
    if !is_json(content_type) {
        return JsonAnswer::error(
            Status::UnsupportedMediaType,
            "send Content-Type: application/json with {\"signature\": base64, \"content\": \
             base64 (for a detached signature)}",
        );
    }
    let body = match read_limited_body(body, &declared, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(BodyRefused::TooLarge) => {
            return JsonAnswer::error(
                Status::PayloadTooLarge,
                format!("a /verify request is at most {MAX_BODY_BYTES} bytes"),
            )
        }
        Err(BodyRefused::Unreadable) => {
            return JsonAnswer::error(Status::BadRequest, "the body could not be read")
        }
    };
    let request: VerifyRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return JsonAnswer::error(
                Status::BadRequest,
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
    let content = match request
        .content
        .as_deref()
        .map(|c| decode_base64("content", c))
    {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(answer)) => return answer,
    };
    let service = Arc::clone(service.inner());
    // Path validation and signature checks are CPU work of milliseconds at most; they run on
    // the blocking pool so a large document's hashing never stalls the async workers.
    let report =
        rocket::tokio::task::spawn_blocking(move || service.verify(&signature, content.as_deref()))
            .await;
    match report {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(json) => JsonAnswer(Status::Ok, json),
            Err(e) => JsonAnswer::error(
                Status::InternalServerError,
                format!("the report could not be written: {e}"),
            ),
        },
        Err(_) => JsonAnswer::error(
            Status::InternalServerError,
            "the validation did not complete",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_is_accepted() {
        let parse = |s: &str| ContentType::parse_flexible(s);
        assert!(is_json(parse("application/json").as_ref()));
        assert!(is_json(parse("Application/JSON; charset=utf-8").as_ref()));
        assert!(!is_json(parse("application/octet-stream").as_ref()));
        assert!(!is_json(parse("text/plain").as_ref()));
        assert!(!is_json(None));
    }

    #[test]
    fn base64_with_line_breaks_decodes_and_garbage_does_not() {
        assert_eq!(
            decode_base64("s", "aGVs\nbG8=").ok(),
            Some(b"hello".to_vec())
        );
        assert!(decode_base64("s", "not base64!").is_err());
    }
}
