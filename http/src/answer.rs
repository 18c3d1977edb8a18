//! Small answers every service shares: a plain-text error and the overload answer (503 with
//! `Retry-After`, RFC 9110 §10.2.3 / §15.6.4). Services with a JSON error format build their
//! body themselves and take the status and header from here.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, Response, StatusCode};

use crate::admission::Overloaded;
use crate::body::BodyRefused;

/// `status` with a one-line plain-text body, never cached.
pub fn plain(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    let mut text = text.into();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The `Retry-After` value for `overloaded`: whole seconds, at least 1.
pub fn retry_after_value(overloaded: &Overloaded) -> HeaderValue {
    HeaderValue::from(overloaded.retry_after.as_secs().max(1))
}

/// 503 with `Retry-After` and a line naming the service that is full.
pub fn overloaded(overloaded: &Overloaded) -> Response<Body> {
    let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, overloaded.to_string());
    response
        .headers_mut()
        .insert(RETRY_AFTER, retry_after_value(overloaded));
    response
}

/// Adds `Connection: close`: the connection is not reused after this answer (a body that
/// timed out or was refused unread leaves the stream in an unknown place).
pub fn closing(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The plain-text answer to a body that was not taken: 413 with `too_large` (the route's
/// own words for its limit), 408, 503 with `Retry-After`, or 400. A body left unread closes
/// the connection.
pub fn refused_body(refused: BodyRefused, too_large: &str) -> Response<Body> {
    match refused {
        BodyRefused::TooLarge { .. } => closing(plain(StatusCode::PAYLOAD_TOO_LARGE, too_large)),
        BodyRefused::TimedOut => plain(StatusCode::REQUEST_TIMEOUT, refused.to_string()),
        BodyRefused::Overloaded(full) => overloaded(&full),
        BodyRefused::Unreadable => closing(plain(StatusCode::BAD_REQUEST, refused.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_overload_answer_is_503_with_whole_seconds_to_wait() {
        let full = Overloaded {
            service: "verify",
            retry_after: Duration::from_millis(200),
        };
        let response = overloaded(&full);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        let full = Overloaded {
            service: "verify",
            retry_after: Duration::from_secs(7),
        };
        assert_eq!(retry_after_value(&full), "7");
    }
}
