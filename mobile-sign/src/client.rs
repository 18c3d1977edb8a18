//! The relying party's client of the signature service: look up a citizen's signing
//! certificate, start an authentication or signature session, and long-poll it until the phone
//! has answered (the Mobile-ID REST flow: `POST /certificate`, `POST /authentication` or
//! `/signature`, `GET /session/{id}?timeoutMs=N`).
//!
//! Every request is checked here with the protocol's own rules before it is sent, and every
//! answer is checked before it is believed: a session id that could change the URL's path, a
//! COMPLETE answer without its result, base64 that does not decode, a "certificate" that is not
//! one. [`MssClient::wait`] survives a restart of the service (connection refused, 503) for a
//! bounded while, since sessions live in the service's store.

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use der::Decode;

use crate::http_client::{AnswerProblem, ApiError, JsonClient};
use crate::protocol::{
    check_national_id, check_phone_number, check_relying_party_name, check_session_request,
    decode_base64, CertificateRequest, CertificateResponse, CertificateResult, ProtocolError,
    SessionCreated, SessionKind, SessionRequest, SessionResult, SessionState, SessionStatus,
    MAX_LONG_POLL_MS,
};

/// How long a certificate query or a session start may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`MssClient::wait`] keeps retrying while the service cannot be reached (a restart
/// of `imza serve`), counted from the first failure of a run of failures.
pub const RESTART_PATIENCE: Duration = Duration::from_secs(60);

/// How much longer than the long poll the HTTP exchange may take (the service answers at the
/// end of the poll; this covers the network and a busy server).
const LONG_POLL_SLACK: Duration = Duration::from_secs(10);

/// Pause between retries while the service is unreachable, doubling from the first to the last.
const RETRY_PAUSE_FIRST: Duration = Duration::from_millis(200);
const RETRY_PAUSE_LAST: Duration = Duration::from_secs(2);

/// A round that comes back RUNNING sooner than this (a service that ignores `timeoutMs`) is
/// followed by a pause of this length, so that polling never becomes a busy loop.
const MIN_ROUND: Duration = Duration::from_millis(250);

/// Longest session id accepted from the service (imza's are 43 characters).
const MAX_SESSION_ID_CHARS: usize = 128;

/// Why a relying party's call gave no usable outcome.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A request that breaks the protocol's rules, caught before anything was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] ProtocolError),
    /// No registration for this phone number and identity.
    #[error("{phone_number} with national identity number {national_id} is not registered for mobile signature (NOT_FOUND)")]
    NotFound {
        phone_number: String,
        national_id: String,
    },
    /// Registered, but the signing certificate is revoked or expired.
    #[error("the mobile signature of {phone_number} ({national_id}) is not active: its signing certificate is revoked or expired (NOT_ACTIVE)")]
    NotActive {
        phone_number: String,
        national_id: String,
    },
    /// The session is complete and its result is not OK.
    #[error("{}", session_message(*.0))]
    Session(SessionResult),
    /// The session was still running when the caller's patience ran out.
    #[error("gave up waiting for session {session_id}: the phone has not answered yet")]
    GaveUp { session_id: String },
    /// The service could not be reached, refused the call, or answered something unreadable.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A signature that does not verify, or a session whose certificate is not the one asked for.
    #[error("the signature from the phone is not acceptable: {0}")]
    BadSignature(String),
    /// A certificate that cannot be used (not X.509, an unsupported key).
    #[error("unusable certificate: {0}")]
    BadCertificate(String),
    /// The certificate did not validate (no path to the trust anchors, revoked, no revocation
    /// answer, not an authentication certificate).
    #[error("the certificate is not accepted: {0}")]
    Validation(String),
    /// The certificate names another person than the one asked for.
    #[error("the certificate identifies {found}, not national identity number {expected}")]
    IdentityMismatch { expected: String, found: String },
}

/// What a person should read for a result that is not OK.
fn session_message(result: SessionResult) -> &'static str {
    match result {
        SessionResult::Ok => "the session ended OK",
        SessionResult::UserRefused => "the citizen refused the request on the phone (USER_REFUSED)",
        SessionResult::Timeout => {
            "the phone received the request but the citizen did not answer in time (TIMEOUT)"
        }
        SessionResult::NotMobileClient => {
            "this phone number and national identity number have no active mobile signature \
             (not registered, or the certificate is revoked or expired) (NOT_MOBILE_CLIENT)"
        }
        SessionResult::PhoneAbsent => {
            "the phone did not pick up the request in time: it is off or offline (PHONE_ABSENT)"
        }
        SessionResult::SignatureHashMismatch => {
            "the phone answered with a signature that does not verify against its registered \
             certificate (SIGNATURE_HASH_MISMATCH)"
        }
        SessionResult::DeliveryError => "the phone could not process the request (DELIVERY_ERROR)",
        SessionResult::PinBlocked => {
            "the PIN was entered wrongly too many times: the phone's keys are blocked (PIN_BLOCKED)"
        }
    }
}

/// A session the service reports COMPLETE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedSession {
    pub result: SessionResult,
    /// The signature (DER ECDSA-Sig-Value or PKCS#1 v1.5), with OK only.
    pub signature: Option<Vec<u8>>,
    /// The DER certificate whose key signed, with OK only.
    pub certificate: Option<Vec<u8>>,
}

impl CompletedSession {
    /// The signature and the certificate of an OK session; [`ClientError::Session`] for any
    /// other result. Neither is checked here (see [`crate::remote_key`] and
    /// [`crate::authentication`], which do).
    pub fn into_signature(self) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
        match (self.result, self.signature, self.certificate) {
            (SessionResult::Ok, Some(signature), Some(certificate)) => Ok((signature, certificate)),
            (SessionResult::Ok, _, _) => Err(ClientError::Api(
                AnswerProblem::Missing {
                    answer: "an OK session",
                    field: "signature and certificate",
                }
                .into(),
            )),
            (other, _, _) => Err(ClientError::Session(other)),
        }
    }
}

/// A relying party's client of one signature service.
pub struct MssClient {
    api: JsonClient,
    rp_name: String,
    request_timeout: Duration,
    restart_patience: Duration,
}

impl fmt::Debug for MssClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MssClient")
            .field("base_url", &self.api.base_url())
            .field("rp_name", &self.rp_name)
            .finish_non_exhaustive()
    }
}

impl MssClient {
    /// A client of the service at `base_url` (`http://127.0.0.1:8080`) for the relying party
    /// `rp_name` with its `api_key` (kept zeroized, sent only in the Authorization header).
    pub fn new(base_url: &str, rp_name: &str, api_key: &str) -> Result<MssClient, ClientError> {
        check_relying_party_name(rp_name)?;
        if api_key.is_empty() {
            return Err(ProtocolError::invalid("apiKey", "is empty").into());
        }
        Ok(MssClient {
            api: JsonClient::new(base_url, rp_name, api_key)?,
            rp_name: rp_name.to_string(),
            request_timeout: REQUEST_TIMEOUT,
            restart_patience: RESTART_PATIENCE,
        })
    }

    /// How long a certificate query or a session start may take (default [`REQUEST_TIMEOUT`]).
    pub fn with_request_timeout(mut self, timeout: Duration) -> MssClient {
        self.request_timeout = timeout;
        self
    }

    /// How long [`MssClient::wait`] retries while the service cannot be reached (default
    /// [`RESTART_PATIENCE`]).
    pub fn with_restart_patience(mut self, patience: Duration) -> MssClient {
        self.restart_patience = patience;
        self
    }

    pub fn base_url(&self) -> &str {
        self.api.base_url()
    }

    pub fn relying_party(&self) -> &str {
        &self.rp_name
    }

    /// The signing certificate registered for the phone number and identity (DER), or
    /// [`ClientError::NotFound`] / [`ClientError::NotActive`].
    pub fn certificate(
        &self,
        phone_number: &str,
        national_id: &str,
    ) -> Result<Vec<u8>, ClientError> {
        check_phone_number(phone_number)?;
        check_national_id(national_id)?;
        let request = CertificateRequest {
            phone_number: phone_number.to_string(),
            national_identity_number: national_id.to_string(),
        };
        let answer: CertificateResponse =
            self.api
                .post("/certificate", &request, self.request_timeout)?;
        match answer.result {
            CertificateResult::Ok => {
                let text = answer.cert.ok_or(AnswerProblem::Missing {
                    answer: "an OK certificate result",
                    field: "certificate",
                })?;
                decode_certificate(&text)
            }
            CertificateResult::NotFound => Err(ClientError::NotFound {
                phone_number: phone_number.to_string(),
                national_id: national_id.to_string(),
            }),
            CertificateResult::NotActive => Err(ClientError::NotActive {
                phone_number: phone_number.to_string(),
                national_id: national_id.to_string(),
            }),
        }
    }

    /// Starts a session of `kind` and returns its id. The request is checked with
    /// [`check_session_request`] first; nothing is sent when it breaks a rule.
    pub fn start(
        &self,
        kind: SessionKind,
        request: &SessionRequest,
    ) -> Result<String, ClientError> {
        check_session_request(request)?;
        let created: SessionCreated =
            self.api
                .post(&format!("/{}", kind.name()), request, self.request_timeout)?;
        check_session_id(&created.session_id)?;
        Ok(created.session_id)
    }

    /// Long-polls the session until it is COMPLETE or `give_up_after` has passed
    /// ([`ClientError::GaveUp`]). Each round asks the service to hold the poll up to
    /// [`MAX_LONG_POLL_MS`] (less near the end). While the service cannot be reached or says
    /// 503 (a restart), it retries with growing pauses for up to the restart patience.
    pub fn wait(
        &self,
        session_id: &str,
        give_up_after: Duration,
    ) -> Result<CompletedSession, ClientError> {
        check_session_id(session_id)?;
        let started = Instant::now();
        let deadline = started + give_up_after;
        let mut unreachable_since: Option<Instant> = None;
        let mut pause = RETRY_PAUSE_FIRST;
        // Each pass either waits for a long poll, pauses at least MIN_ROUND, or returns; the
        // deadline therefore bounds the loop.
        loop {
            let now = Instant::now();
            let remaining = deadline.saturating_duration_since(now);
            let poll_ms = u64::try_from(remaining.as_millis())
                .unwrap_or(u64::MAX)
                .min(MAX_LONG_POLL_MS);
            let path = format!("/session/{session_id}?timeoutMs={poll_ms}");
            let timeout = Duration::from_millis(poll_ms) + LONG_POLL_SLACK;
            match self.api.get::<SessionStatus>(&path, timeout) {
                Ok(status) => {
                    unreachable_since = None;
                    pause = RETRY_PAUSE_FIRST;
                    if let Some(done) = completed(status)? {
                        return Ok(done);
                    }
                    if Instant::now() >= deadline {
                        return Err(ClientError::GaveUp {
                            session_id: session_id.to_string(),
                        });
                    }
                    if now.elapsed() < MIN_ROUND {
                        thread::sleep(MIN_ROUND);
                    }
                }
                Err(e) if is_transient(&e) => {
                    let since = *unreachable_since.get_or_insert(now);
                    if since.elapsed() >= self.restart_patience {
                        return Err(ClientError::Api(e));
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ClientError::GaveUp {
                            session_id: session_id.to_string(),
                        });
                    }
                    thread::sleep(pause.min(left).max(Duration::from_millis(1)));
                    pause = (pause * 2).min(RETRY_PAUSE_LAST);
                }
                Err(e) => return Err(ClientError::Api(e)),
            }
        }
    }
}

impl From<AnswerProblem> for ClientError {
    fn from(problem: AnswerProblem) -> ClientError {
        ClientError::Api(ApiError::BadAnswer(problem))
    }
}

/// Failures a restart of the service explains: no connection, a connection dropped, 503 while
/// its store is busy, or a proxy in front of it saying it is away (502, 504).
fn is_transient(e: &ApiError) -> bool {
    match e {
        ApiError::Unreachable(_) => true,
        ApiError::Refused { status, .. } => matches!(*status, 502..=504),
        ApiError::NotHttp { .. }
        | ApiError::ColonInUser { .. }
        | ApiError::Encode(_)
        | ApiError::BadAnswer(_) => false,
    }
}

/// A session id goes into the URL path: only the base64url alphabet, bounded length.
fn check_session_id(id: &str) -> Result<(), ClientError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_SESSION_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ClientError::Api(
            AnswerProblem::BadSessionId {
                id: id.chars().take(MAX_SESSION_ID_CHARS + 1).collect(),
                max: MAX_SESSION_ID_CHARS,
            }
            .into(),
        ))
    }
}

/// `Some` for a COMPLETE status, read and decoded; `None` while RUNNING.
fn completed(status: SessionStatus) -> Result<Option<CompletedSession>, ClientError> {
    if status.state == SessionState::Running {
        return Ok(None);
    }
    let result = status.result.ok_or(AnswerProblem::Missing {
        answer: "a COMPLETE session",
        field: "result",
    })?;
    if result != SessionResult::Ok {
        return Ok(Some(CompletedSession {
            result,
            signature: None,
            certificate: None,
        }));
    }
    let value = status
        .signature
        .ok_or(AnswerProblem::Missing {
            answer: "an OK session",
            field: "signature",
        })?
        .value;
    let signature = decode_base64(&value).map_err(|source| AnswerProblem::NotBase64 {
        field: "session's signature",
        source,
    })?;
    let cert = status.cert.ok_or(AnswerProblem::Missing {
        answer: "an OK session",
        field: "certificate",
    })?;
    Ok(Some(CompletedSession {
        result,
        signature: Some(signature),
        certificate: Some(decode_certificate(&cert)?),
    }))
}

/// Base64 DER of an X.509 certificate, decoded and checked to parse.
fn decode_certificate(text: &str) -> Result<Vec<u8>, ClientError> {
    let der = decode_base64(text).map_err(|source| AnswerProblem::NotBase64 {
        field: "certificate",
        source,
    })?;
    x509_cert::Certificate::from_der(&der).map_err(AnswerProblem::NotCertificate)?;
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{encode_base64, Language};
    use imza_core::alg::DigestAlgorithm;

    fn request(hash_len: usize) -> SessionRequest {
        SessionRequest {
            phone_number: "+994501234567".into(),
            national_identity_number: "1AB2C3D".into(),
            hash: encode_base64(&vec![7u8; hash_len]),
            hash_type: DigestAlgorithm::Sha256,
            display_text: None,
            language: Language::Aze,
        }
    }

    /// A port nothing listens on (bound, then released).
    fn closed_port_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }

    #[test]
    fn bad_requests_are_refused_before_anything_is_sent() {
        let client = MssClient::new(&closed_port_url(), "portal.gov.az", "key").unwrap();
        let mut wrong = request(31);
        match client.start(SessionKind::Signature, &wrong) {
            Err(ClientError::InvalidRequest(e)) => assert_eq!(e.field, "hash"),
            other => panic!("{other:?}"),
        }
        wrong = request(32);
        wrong.phone_number = "0501234567".into();
        assert!(matches!(
            client.start(SessionKind::Signature, &wrong),
            Err(ClientError::InvalidRequest(_))
        ));
        assert!(matches!(
            client.certificate("+994501234567", "lower"),
            Err(ClientError::InvalidRequest(_))
        ));
        assert!(matches!(
            MssClient::new("ftp://x", "portal", "key"),
            Err(ClientError::Api(ApiError::NotHttp { base_url })) if base_url == "ftp://x"
        ));
        assert!(matches!(
            MssClient::new("http://x", "Portal:1", "key"),
            Err(ClientError::InvalidRequest(_))
        ));
        assert!(matches!(
            MssClient::new("http://x", "portal", ""),
            Err(ClientError::InvalidRequest(_))
        ));
    }

    #[test]
    fn session_ids_that_would_change_the_path_are_refused() {
        assert!(check_session_id("AbC-_09").is_ok());
        for bad in ["", "../admin", "a/b", "a?b", "a b", &"x".repeat(129)] {
            assert!(check_session_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_unreachable_service_is_retried_then_given_up_within_the_patience() {
        let client = MssClient::new(&closed_port_url(), "portal", "key")
            .unwrap()
            .with_restart_patience(Duration::from_millis(700));
        let started = Instant::now();
        match client.wait("abc", Duration::from_secs(30)) {
            Err(ClientError::Api(ApiError::Unreachable(e))) => {
                // The HTTP client's error is kept, with the URL and the cause.
                assert!(
                    matches!(&e, imza_http::HttpError::Unreachable { url, .. } if url.contains("/session/abc")),
                    "{e:?}"
                );
                let api = ApiError::Unreachable(e);
                let kept = std::error::Error::source(&api).unwrap();
                assert!(kept.source().is_some(), "{kept:?}");
            }
            other => panic!("{other:?}"),
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(700), "{took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
        // The caller's deadline ends it first when it is shorter.
        match client.wait("abc", Duration::from_millis(300)) {
            Err(ClientError::GaveUp { session_id }) => assert_eq!(session_id, "abc"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn complete_answers_are_read_and_checked() {
        let running = SessionStatus {
            state: SessionState::Running,
            result: None,
            signature: None,
            cert: None,
        };
        assert_eq!(completed(running.clone()).unwrap(), None);
        let refused = SessionStatus {
            state: SessionState::Complete,
            result: Some(SessionResult::UserRefused),
            ..running.clone()
        };
        let done = completed(refused).unwrap().unwrap();
        assert!(matches!(
            done.into_signature(),
            Err(ClientError::Session(SessionResult::UserRefused))
        ));
        let no_result = SessionStatus {
            state: SessionState::Complete,
            ..running.clone()
        };
        assert!(matches!(
            completed(no_result),
            Err(ClientError::Api(ApiError::BadAnswer(_)))
        ));
        let not_a_cert = SessionStatus {
            state: SessionState::Complete,
            result: Some(SessionResult::Ok),
            signature: Some(crate::protocol::SignatureValue {
                value: encode_base64(b"sig"),
                algorithm: "SHA256WithECEncryption".into(),
            }),
            cert: Some(encode_base64(b"not a certificate")),
        };
        assert!(matches!(
            completed(not_a_cert),
            Err(ClientError::Api(ApiError::BadAnswer(_)))
        ));
    }

    /// A one-connection-per-answer HTTP server on loopback that answers each request with the
    /// next of `answers` (status, JSON body) and records the request lines it saw.
    fn canned_server(
        answers: Vec<(u16, &'static str)>,
    ) -> (String, thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            for (status, body) in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                seen.push(line.trim_end().to_string());
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim_end().is_empty() {
                        break;
                    }
                    if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body_in = vec![0u8; length];
                std::io::Read::read_exact(&mut reader, &mut body_in).unwrap();
                let mut stream = reader.into_inner();
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
            seen
        });
        (url, handle)
    }

    #[test]
    fn wait_polls_through_running_and_a_busy_store_to_the_result() {
        let (url, server) = canned_server(vec![
            (200, r#"{"state":"RUNNING"}"#),
            (503, r#"{"error":"UNAVAILABLE","message":"store busy"}"#),
            (200, r#"{"state":"COMPLETE","result":"PIN_BLOCKED"}"#),
        ]);
        let client = MssClient::new(&url, "portal", "key").unwrap();
        let done = client.wait("s1", Duration::from_secs(300)).unwrap();
        assert_eq!(done.result, SessionResult::PinBlocked);
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(
            seen[0].starts_with("GET /mss/v1/session/s1?timeoutMs="),
            "{seen:?}"
        );
        // The first round asks for the longest poll the protocol allows.
        assert!(
            seen[0].contains(&format!("timeoutMs={MAX_LONG_POLL_MS} ")),
            "{seen:?}"
        );
    }

    #[test]
    fn a_session_of_another_party_is_not_found_at_once() {
        let (url, server) = canned_server(vec![(
            404,
            r#"{"error":"NOT_FOUND","message":"no such session"}"#,
        )]);
        let client = MssClient::new(&url, "portal", "key").unwrap();
        match client.wait("s1", Duration::from_secs(60)) {
            Err(ClientError::Api(ApiError::Refused { status, code, .. })) => {
                assert_eq!((status, code.as_str()), (404, "NOT_FOUND"))
            }
            other => panic!("{other:?}"),
        }
        server.join().unwrap();
    }

    #[test]
    fn certificate_results_map_to_errors() {
        let (url, server) = canned_server(vec![
            (200, r#"{"result":"NOT_FOUND"}"#),
            (200, r#"{"result":"NOT_ACTIVE"}"#),
            (200, r#"{"result":"OK"}"#),
            (200, r#"{"result":"OK","cert":"AAAA"}"#),
        ]);
        let client = MssClient::new(&url, "portal", "key").unwrap();
        let ask = || client.certificate("+994501234567", "1AB2C3D");
        assert!(matches!(ask(), Err(ClientError::NotFound { .. })));
        assert!(matches!(ask(), Err(ClientError::NotActive { .. })));
        assert!(matches!(
            ask(),
            Err(ClientError::Api(ApiError::BadAnswer(
                AnswerProblem::Missing {
                    field: "certificate",
                    ..
                }
            )))
        ));
        // "AAAA" is three zero bytes: base64, but no certificate.
        assert!(matches!(
            ask(),
            Err(ClientError::Api(ApiError::BadAnswer(
                AnswerProblem::NotCertificate(_)
            )))
        ));
        let seen = server.join().unwrap();
        assert!(
            seen.iter()
                .all(|l| l == "POST /mss/v1/certificate HTTP/1.1"),
            "{seen:?}"
        );
    }

    #[test]
    fn an_answer_that_is_not_json_keeps_the_url_and_the_parser_error() {
        let (url, server) = canned_server(vec![(200, "{\"state\": RUNNING}")]);
        let client = MssClient::new(&url, "portal", "key").unwrap();
        let err = client.wait("s1", Duration::from_secs(60)).unwrap_err();
        let ClientError::Api(ApiError::BadAnswer(AnswerProblem::NotJson { url: asked, source })) =
            &err
        else {
            panic!("{err:?}");
        };
        assert!(
            asked.starts_with(&format!("{url}/mss/v1/session/s1")),
            "{asked}"
        );
        assert_eq!((source.line(), source.column()), (1, 11), "{source}");
        assert!(err.to_string().contains(asked.as_str()), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn every_result_has_its_own_message() {
        let results = [
            SessionResult::UserRefused,
            SessionResult::Timeout,
            SessionResult::NotMobileClient,
            SessionResult::PhoneAbsent,
            SessionResult::SignatureHashMismatch,
            SessionResult::DeliveryError,
            SessionResult::PinBlocked,
        ];
        let messages: std::collections::HashSet<String> = results
            .iter()
            .map(|r| ClientError::Session(*r).to_string())
            .collect();
        assert_eq!(messages.len(), results.len());
        for r in results {
            assert!(ClientError::Session(r).to_string().contains(r.name()));
        }
    }
}
