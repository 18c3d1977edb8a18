//! The JSON-over-HTTP client both sides of the service use (the relying party's client and the
//! phone), on imza's one HTTP client ([`imza_http::HttpClient`]): HTTP Basic credentials
//! (RFC 7617) on every call, JSON bodies, and the service's [`ErrorBody`] read back into
//! [`ApiError::Refused`].

use std::time::Duration;

use imza_http::{HttpClient, HttpError, HttpMethod};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::protocol::{encode_base64, ErrorBody, API_PREFIX};

/// Largest answer read from the service (a session answer with a certificate is a few kB).
const MAX_ANSWER_BYTES: u64 = 256 * 1024;

/// Why a call to the service gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The service URL is not http(s).
    #[error("{base_url}: the service URL must start with http:// or https://")]
    NotHttp { base_url: String },
    /// A user name with a ':', which HTTP Basic cannot carry (RFC 7617 §2).
    #[error("the user name {user:?} must not contain ':' (HTTP Basic)")]
    ColonInUser { user: String },
    /// The service cannot be reached, the connection broke, or its answer was over the limit
    /// ([`HttpError`], with the URL and the cause).
    #[error("{0}")]
    Unreachable(#[source] HttpError),
    /// The service answered with an HTTP error and its [`ErrorBody`] (or what it said). `code`
    /// is the body's `error` (the service's codes are strings, and a proxy in front of it may
    /// answer anything: `HTTP_ERROR` when the body is not an [`ErrorBody`]).
    #[error("the signature service refused (HTTP {status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// The request could not be written as JSON.
    #[error("cannot encode the request: {0}")]
    Encode(#[source] serde_json::Error),
    /// A 200 answer that is not what was expected.
    #[error("the signature service answered something unreadable: {0}")]
    BadAnswer(#[source] AnswerProblem),
}

/// What is wrong with an answer of the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerProblem {
    /// Not the JSON expected (not JSON, or a field missing or of the wrong type).
    #[error("{url}: {source}")]
    NotJson {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    /// A field an answer with its result must carry is absent: `answer` (an OK session, say)
    /// without `field`.
    #[error("{answer} without its {field}")]
    Missing {
        answer: &'static str,
        field: &'static str,
    },
    /// `field` is not base64.
    #[error("the {field} is not base64: {source}")]
    NotBase64 {
        field: &'static str,
        #[source]
        source: base64ct::Error,
    },
    /// The certificate is not X.509 DER.
    #[error("the certificate is not X.509 DER: {0}")]
    NotCertificate(#[source] der::Error),
    /// A session id that cannot go into a URL path (at most the first 65 characters).
    #[error("session id {id:?} is not 1 to {max} characters A-Z, a-z, 0-9, '-', '_'")]
    BadSessionId { id: String, max: usize },
}

impl From<AnswerProblem> for ApiError {
    fn from(problem: AnswerProblem) -> ApiError {
        ApiError::BadAnswer(problem)
    }
}

/// A client for one service URL under one identity (a relying party or a device).
pub struct JsonClient {
    base_url: String,
    /// `Basic base64(user:secret)`; zeroized on drop.
    authorization: Zeroizing<String>,
}

impl std::fmt::Debug for JsonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl JsonClient {
    /// `base_url` is the server's root (`http://127.0.0.1:8080`); paths are under
    /// [`API_PREFIX`]. `user` and `secret` are the relying party's name and API key, or the
    /// device id and secret.
    pub fn new(base_url: &str, user: &str, secret: &str) -> Result<JsonClient, ApiError> {
        let lower = base_url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(ApiError::NotHttp {
                base_url: base_url.to_string(),
            });
        }
        if user.contains(':') {
            return Err(ApiError::ColonInUser {
                user: user.to_string(),
            });
        }
        let credentials = Zeroizing::new(format!("{user}:{secret}"));
        Ok(JsonClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            authorization: Zeroizing::new(format!(
                "Basic {}",
                encode_base64(credentials.as_bytes())
            )),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// GET `API_PREFIX + path` (with its query); `timeout` covers the whole exchange, so a
    /// long poll's must exceed the time the server holds it.
    pub fn get<T: DeserializeOwned>(&self, path: &str, timeout: Duration) -> Result<T, ApiError> {
        self.exchange(HttpMethod::Get, path, None, timeout)
    }

    /// POST `body` as JSON to `API_PREFIX + path`.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let json = serde_json::to_vec(body).map_err(ApiError::Encode)?;
        self.exchange(HttpMethod::Post, path, Some(&json), timeout)
    }

    fn exchange<T: DeserializeOwned>(
        &self,
        method: HttpMethod,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let url = format!("{}{API_PREFIX}{path}", self.base_url);
        let fetcher = HttpClient {
            timeout,
            max_bytes: MAX_ANSWER_BYTES,
        };
        let answer = fetcher.send(
            method,
            &url,
            &[("Authorization", self.authorization.as_str())],
            "application/json",
            body.map(|b| ("application/json", b)),
        );
        match answer {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| AnswerProblem::NotJson { url, source }.into()),
            Err(HttpError::Status { status, said, .. }) => {
                Err(match serde_json::from_str::<ErrorBody>(&said) {
                    Ok(body) => ApiError::Refused {
                        status,
                        code: body.error,
                        message: body.message,
                    },
                    Err(_) => ApiError::Refused {
                        status,
                        code: "HTTP_ERROR".into(),
                        message: said,
                    },
                })
            }
            Err(e) => Err(ApiError::Unreachable(e)),
        }
    }
}
