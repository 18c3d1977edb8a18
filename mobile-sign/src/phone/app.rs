//! The phone app: long-polls the service's device API (`GET /mss/v1/device/pending`), shows
//! each request, checks it, asks for the PIN and answers (`POST /mss/v1/device/session/{id}`).
//!
//! Before anything is signed the app checks what the service sent: the hash has the length
//! of its `hashType`, and the verification code shown is the one computed from the hash
//! ([`verification_code`]) — a service lying about the code gets no signature, only
//! `DELIVERY_ERROR`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::{check_pin_format, PhoneError, Wallet, PIN_TRIES};
use crate::http_client::{ApiError, JsonClient};
use crate::protocol::{
    check_display_text, check_relying_party_name, decode_hash, encode_base64, verification_code,
    DeviceAnswer, PendingRequest, PendingRequests, ProtocolError, SessionResult, SessionStatus,
    MAX_LONG_POLL_MS,
};

/// How long one long poll asks the service to hold the request.
const LONG_POLL: Duration = Duration::from_secs(30);

/// Added to a long poll's own length for the HTTP exchange's timeout.
const HTTP_MARGIN: Duration = Duration::from_secs(10);

/// Timeout of an answer's POST.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Calls in a row that may fail for want of the service before the app gives up.
const MAX_ATTEMPTS: u32 = 6;

/// The first pause after a failed call; doubled after each, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(3);

/// The pause when the service keeps returning only requests already shown (ignored ones, say):
/// without it the app would poll in a tight loop.
const SEEN_PAUSE: Duration = Duration::from_millis(250);

/// How many shown sessions the app remembers, so as not to show one twice.
const SEEN_CAPACITY: usize = 1024;

/// Requests taken from one poll (the service lists a device's few running sessions).
const MAX_PER_POLL: usize = 64;

/// The longest session id the app puts in a URL.
const MAX_SESSION_ID_LEN: usize = 128;

/// What the citizen does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Enter the PIN and sign.
    Approve,
    /// Refuse: the answer is `USER_REFUSED`.
    Refuse,
    /// Show the request, never answer (the relying party then gets `TIMEOUT`).
    Ignore,
}

/// Where the PIN comes from.
pub enum PinEntry {
    /// Given once (an environment variable): tried once per run. A wrong one is not typed
    /// again — that would only spend the remaining tries and block the keys for good — so the
    /// request is refused and [`PhoneApp::run`] ends with [`PhoneError::PinRejected`].
    Value(Zeroizing<String>),
    /// Asked on the terminal. Not built in yet (it needs a no-echo terminal reader): use
    /// [`PinEntry::Ask`] with one; [`PhoneApp::new`] refuses this.
    Prompt,
    /// Asked through a function, given the request and, after a wrong PIN, the tries left.
    /// `None` is the citizen cancelling: the answer is `USER_REFUSED`.
    Ask(AskPin),
}

/// Asks for the PIN of a request; after a wrong PIN, given the tries left. `None`: cancelled.
pub type AskPin = Box<dyn FnMut(&PendingRequest, Option<u8>) -> Option<Zeroizing<String>> + Send>;

impl std::fmt::Debug for PinEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PinEntry::Value(_) => "Value(<redacted>)",
            PinEntry::Prompt => "Prompt",
            PinEntry::Ask(_) => "Ask(..)",
        })
    }
}

/// What the app reports to its screen, step by step. Never the PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneEvent {
    /// A request arrived: show the relying party, display text and verification code.
    Request(PendingRequest),
    /// The PIN was wrong; `tries_left` before the keys block.
    WrongPin { tries_left: u8 },
    /// The service took the answer; `result` is the session's result as it now stands (the
    /// service may turn a signature it cannot verify into `SIGNATURE_HASH_MISMATCH`).
    Answered {
        session_id: String,
        result: SessionResult,
    },
    /// The request is shown and left unanswered ([`Decision::Ignore`]).
    Ignored { session_id: String },
    /// The request is not signed because it is malformed or its verification code does not
    /// match its hash; answered `DELIVERY_ERROR` when its id allows.
    RequestRejected { session_id: String, reason: String },
    /// The key store failed (file unreadable, token gone); answered `DELIVERY_ERROR`.
    KeyStoreFailed { session_id: String, message: String },
    /// The service did not take the answer (409: the session is over already; 404).
    AnswerNotAccepted {
        session_id: String,
        status: u16,
        message: String,
    },
    /// A call to the service failed; the app tries again after `retry_in`.
    ServiceUnreachable {
        attempt: u32,
        message: String,
        retry_in: Duration,
    },
}

/// One line for a person; untrusted text (display text, messages from the service) is
/// quoted with its control characters escaped.
impl std::fmt::Display for PhoneEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PhoneEvent::Request(request) => {
                write!(
                    f,
                    "{} asks for your {}",
                    request.relying_party,
                    request.kind.name()
                )?;
                if let Some(text) = &request.display_text {
                    write!(f, " ({text:?})")?;
                }
                write!(f, ": verification code {}", request.verification_code)
            }
            PhoneEvent::WrongPin { tries_left } => write!(
                f,
                "wrong PIN: {tries_left} {} left",
                if *tries_left == 1 { "try" } else { "tries" }
            ),
            PhoneEvent::Answered { session_id, result } => {
                write!(f, "answered {session_id}: {result}")
            }
            PhoneEvent::Ignored { session_id } => write!(f, "request {session_id} left unanswered"),
            PhoneEvent::RequestRejected { session_id, reason } => {
                write!(f, "request {session_id} refused by the phone: {reason}")
            }
            PhoneEvent::KeyStoreFailed {
                session_id,
                message,
            } => write!(
                f,
                "request {session_id}: the key store failed ({message}); answered DELIVERY_ERROR"
            ),
            PhoneEvent::AnswerNotAccepted {
                session_id,
                status,
                message,
            } => write!(
                f,
                "the service did not take the answer to {session_id} (HTTP {status}): {:?}",
                truncate(message, 200)
            ),
            PhoneEvent::ServiceUnreachable {
                attempt,
                message,
                retry_in,
            } => write!(
                f,
                "the signature service cannot be reached (attempt {attempt}): {message}; trying \
                 again in {} ms",
                retry_in.as_millis()
            ),
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Requests shown (each once).
    pub requests: usize,
    /// Answers the service took.
    pub answered: usize,
    /// Requests left unanswered on purpose.
    pub ignored: usize,
    /// Answers the service did not take (the session was over, say).
    pub not_accepted: usize,
    /// The run ended because no request came for the idle time.
    pub ended_idle: bool,
}

/// The app of one registered phone.
pub struct PhoneApp {
    wallet: Wallet,
    decision: Decision,
    pin: PinEntry,
    client: JsonClient,
    /// Sessions already shown, oldest first.
    seen: VecDeque<String>,
    /// Set when the given PIN ([`PinEntry::Value`]) turned out wrong (or the keys blocked):
    /// the run ends with it once the request is answered.
    pin_rejected: Option<PhoneError>,
}

impl std::fmt::Debug for PhoneApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneApp")
            .field("wallet", &self.wallet)
            .field("decision", &self.decision)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl PhoneApp {
    /// An app for `wallet`, talking to the service URL with the device credentials it holds.
    pub fn new(wallet: Wallet, decision: Decision, pin: PinEntry) -> Result<PhoneApp, PhoneError> {
        if matches!(pin, PinEntry::Prompt) && decision == Decision::Approve {
            return Err(PhoneError::PinUnavailable(
                "asking for the PIN on the terminal is not built into the phone app; give the \
                 PIN in an environment variable"
                    .into(),
            ));
        }
        // A value that cannot be a PIN (a stray newline in a variable, say) would be "typed
        // again" until the keys block: refuse it before it costs a try.
        if let PinEntry::Value(pin) = &pin {
            check_pin_format(pin)?;
        }
        let client = JsonClient::new(wallet.mss_url(), wallet.device_id(), wallet.device_secret())?;
        Ok(PhoneApp {
            wallet,
            decision,
            pin,
            client,
            seen: VecDeque::new(),
            pin_rejected: None,
        })
    }

    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    /// Long-polls `GET /mss/v1/device/pending` and answers each request; returns after
    /// `max_requests` requests handled (`None`: runs until an error) or when `idle` passed with
    /// no request (`None`: never). Every step is reported to `screen`.
    ///
    /// Errors: the service unreachable for [`MAX_ATTEMPTS`] calls in a row, or refusing the
    /// device (401: its credentials are no longer registered); a given PIN
    /// ([`PinEntry::Value`]) that was wrong, once the request was answered
    /// ([`PhoneError::PinRejected`], or [`PhoneError::PinBlocked`] if that was the last try).
    pub fn run(
        &mut self,
        max_requests: Option<usize>,
        idle: Option<Duration>,
        screen: &mut dyn FnMut(&PhoneEvent),
    ) -> Result<RunSummary, PhoneError> {
        let mut summary = RunSummary::default();
        let mut last_request = Instant::now();
        loop {
            if max_requests.is_some_and(|max| summary.requests >= max) {
                return Ok(summary);
            }
            let wait = match idle {
                Some(idle) => match idle.checked_sub(last_request.elapsed()) {
                    Some(left) if !left.is_zero() => left.min(LONG_POLL),
                    _ => {
                        summary.ended_idle = true;
                        return Ok(summary);
                    }
                },
                None => LONG_POLL,
            };
            let pending = self.fetch_pending(wait, screen)?;
            let listed = !pending.requests.is_empty();
            let fresh: Vec<PendingRequest> = pending
                .requests
                .into_iter()
                .filter(|r| !self.seen.contains(&r.session_id))
                .take(MAX_PER_POLL)
                .collect();
            if fresh.is_empty() {
                if listed {
                    std::thread::sleep(SEEN_PAUSE.min(wait));
                }
                continue;
            }
            for request in fresh {
                if max_requests.is_some_and(|max| summary.requests >= max) {
                    break;
                }
                summary.requests += 1;
                last_request = Instant::now();
                self.handle(request, &mut summary, screen)?;
            }
        }
    }

    /// One request: shown, checked, decided, answered.
    fn handle(
        &mut self,
        request: PendingRequest,
        summary: &mut RunSummary,
        screen: &mut dyn FnMut(&PhoneEvent),
    ) -> Result<(), PhoneError> {
        self.remember(&request.session_id);
        if !is_plain_session_id(&request.session_id) {
            screen(&PhoneEvent::RequestRejected {
                session_id: shown(&request.session_id),
                reason: "the session id is not 1 to 128 letters, digits, '-' or '_'; it cannot \
                         be answered"
                    .into(),
            });
            return Ok(());
        }
        let session_id = request.session_id.clone();
        // What the screen will print must be what the protocol allows: a service must not make
        // the phone show anything but a plain text (no terminal control sequences).
        if let Err(e) = check_shown_fields(&request) {
            screen(&PhoneEvent::RequestRejected {
                session_id: session_id.clone(),
                reason: format!("{e}: not shown, not signed"),
            });
            let answer = DeviceAnswer {
                result: SessionResult::DeliveryError,
                signature: None,
            };
            return self.answer(&session_id, &answer, summary, screen);
        }
        screen(&PhoneEvent::Request(request.clone()));
        if self.decision == Decision::Ignore {
            summary.ignored += 1;
            screen(&PhoneEvent::Ignored { session_id });
            return Ok(());
        }
        let answer = self.decide(&request, screen);
        self.answer(&session_id, &answer, summary, screen)?;
        match self.pin_rejected.take() {
            Some(rejected) => Err(rejected),
            None => Ok(()),
        }
    }

    /// The answer to a request the app will answer.
    fn decide(
        &mut self,
        request: &PendingRequest,
        screen: &mut dyn FnMut(&PhoneEvent),
    ) -> DeviceAnswer {
        let session_id = request.session_id.clone();
        let plain = |result| DeviceAnswer {
            result,
            signature: None,
        };
        let digest = match decode_hash(&request.hash, request.hash_type) {
            Ok(digest) => digest,
            Err(e) => {
                screen(&PhoneEvent::RequestRejected {
                    session_id,
                    reason: e.to_string(),
                });
                return plain(SessionResult::DeliveryError);
            }
        };
        let expected = verification_code(&digest);
        if request.verification_code != expected {
            screen(&PhoneEvent::RequestRejected {
                session_id,
                reason: format!(
                    "the verification code sent ({:?}) is not the one of the hash ({expected}): \
                     not signed",
                    truncate(&request.verification_code, 16)
                ),
            });
            return plain(SessionResult::DeliveryError);
        }
        if self.wallet.pin_tries_left() == 0 {
            return plain(SessionResult::PinBlocked);
        }
        if self.decision == Decision::Refuse {
            return plain(SessionResult::UserRefused);
        }
        // Each pass spends a try or ends: bounded by the counter, and by this cap besides.
        let mut tries_left = None;
        for _ in 0..=PIN_TRIES {
            let Some(pin) = self.pin_for(request, tries_left) else {
                return plain(SessionResult::UserRefused);
            };
            match self
                .wallet
                .sign(request.kind, &pin, request.hash_type, &digest)
            {
                Ok(signature) => {
                    return DeviceAnswer {
                        result: SessionResult::Ok,
                        signature: Some(encode_base64(&signature)),
                    }
                }
                Err(PhoneError::PinIncorrect { tries_left: left }) => {
                    screen(&PhoneEvent::WrongPin { tries_left: left });
                    if matches!(self.pin, PinEntry::Value(_)) {
                        // The given PIN is not typed again. USER_REFUSED, not a result of its
                        // own: to the relying party a citizen who got the PIN wrong has not
                        // approved, as one who cancelled; how many tries the phone has left is
                        // the phone's business, not the relying party's. (PIN_BLOCKED is
                        // reserved for keys that are blocked; DELIVERY_ERROR would blame the
                        // service.)
                        self.pin_rejected = Some(PhoneError::PinRejected { tries_left: left });
                        return plain(SessionResult::UserRefused);
                    }
                    tries_left = Some(left);
                }
                Err(PhoneError::PinBlocked) => {
                    // The given PIN was wrong on the last try (or the keys were blocked
                    // meanwhile): it can sign nothing more, so the run ends here too.
                    if matches!(self.pin, PinEntry::Value(_)) {
                        self.pin_rejected = Some(PhoneError::PinBlocked);
                    }
                    return plain(SessionResult::PinBlocked);
                }
                Err(e) => {
                    screen(&PhoneEvent::KeyStoreFailed {
                        session_id,
                        message: e.to_string(),
                    });
                    return plain(SessionResult::DeliveryError);
                }
            }
        }
        plain(SessionResult::PinBlocked)
    }

    fn pin_for(
        &mut self,
        request: &PendingRequest,
        tries_left: Option<u8>,
    ) -> Option<Zeroizing<String>> {
        match &mut self.pin {
            PinEntry::Value(pin) => Some(pin.clone()),
            PinEntry::Ask(ask) => ask(request, tries_left),
            // Refused by `new` for an approving app, which alone asks.
            PinEntry::Prompt => None,
        }
    }

    fn answer(
        &mut self,
        session_id: &str,
        answer: &DeviceAnswer,
        summary: &mut RunSummary,
        screen: &mut dyn FnMut(&PhoneEvent),
    ) -> Result<(), PhoneError> {
        let path = format!("/device/session/{session_id}");
        let posted = self.with_retries(screen, |client| {
            client.post::<_, SessionStatus>(&path, answer, ANSWER_TIMEOUT)
        });
        match posted {
            Ok(status) => {
                summary.answered += 1;
                screen(&PhoneEvent::Answered {
                    session_id: session_id.to_string(),
                    result: status.result.unwrap_or(answer.result),
                });
                Ok(())
            }
            Err(ApiError::Refused {
                status, message, ..
            }) if status != 401 && (400..500).contains(&status) => {
                summary.not_accepted += 1;
                screen(&PhoneEvent::AnswerNotAccepted {
                    session_id: session_id.to_string(),
                    status,
                    message,
                });
                Ok(())
            }
            Err(e) => Err(PhoneError::Service(e)),
        }
    }

    fn fetch_pending(
        &mut self,
        wait: Duration,
        screen: &mut dyn FnMut(&PhoneEvent),
    ) -> Result<PendingRequests, PhoneError> {
        let millis = u64::try_from(wait.as_millis())
            .unwrap_or(u64::MAX)
            .min(MAX_LONG_POLL_MS);
        let path = format!("/device/pending?timeoutMs={millis}");
        let timeout = Duration::from_millis(millis) + HTTP_MARGIN;
        self.with_retries(screen, |client| {
            client.get::<PendingRequests>(&path, timeout)
        })
        .map_err(PhoneError::Service)
    }

    /// Runs `call`, again after a growing pause when the service is unreachable or
    /// unavailable (5xx), at most [`MAX_ATTEMPTS`] times.
    fn with_retries<T>(
        &self,
        screen: &mut dyn FnMut(&PhoneEvent),
        call: impl Fn(&JsonClient) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match call(&self.client) {
                Err(e) if is_transient(&e) && attempt < MAX_ATTEMPTS => {
                    screen(&PhoneEvent::ServiceUnreachable {
                        attempt,
                        message: e.to_string(),
                        retry_in: backoff,
                    });
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn remember(&mut self, session_id: &str) {
        if self.seen.len() >= SEEN_CAPACITY {
            self.seen.pop_front();
        }
        self.seen.push_back(session_id.to_string());
    }
}

fn is_transient(e: &ApiError) -> bool {
    match e {
        ApiError::Unreachable(_) => true,
        ApiError::Refused { status, .. } => *status >= 500,
        ApiError::NotHttp { .. }
        | ApiError::ColonInUser { .. }
        | ApiError::Encode(_)
        | ApiError::BadAnswer(_) => false,
    }
}

/// Checks the fields a screen prints: the display text and the relying party's name follow
/// the protocol's rules, the verification code and expiry time are short plain text.
fn check_shown_fields(request: &PendingRequest) -> Result<(), ProtocolError> {
    if let Some(text) = &request.display_text {
        check_display_text(text)?;
    }
    check_relying_party_name(&request.relying_party)
        .map_err(|e| ProtocolError::invalid("relyingParty", e.problem))?;
    let plain = |text: &str| text.len() <= 40 && !text.chars().any(char::is_control);
    if !plain(&request.verification_code) {
        return Err(ProtocolError::invalid(
            "verificationCode",
            "is not a short plain text",
        ));
    }
    if !plain(&request.expires_at) {
        return Err(ProtocolError::invalid(
            "expiresAt",
            "is not a short plain text",
        ));
    }
    Ok(())
}

/// Untrusted text made fit for a message: at most 128 characters, control characters escaped.
fn shown(text: &str) -> String {
    truncate(text, MAX_SESSION_ID_LEN)
        .escape_debug()
        .to_string()
}

/// A session id safe to put in a URL path as it is.
fn is_plain_session_id(id: &str) -> bool {
    (1..=MAX_SESSION_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// At most `max` characters of untrusted text, for a message.
fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_one_line_each() {
        assert_eq!(
            PhoneEvent::WrongPin { tries_left: 1 }.to_string(),
            "wrong PIN: 1 try left"
        );
        assert_eq!(
            PhoneEvent::Answered {
                session_id: "abc".into(),
                result: SessionResult::PinBlocked
            }
            .to_string(),
            "answered abc: PIN_BLOCKED"
        );
        let shown = PhoneEvent::AnswerNotAccepted {
            session_id: "abc".into(),
            status: 409,
            message: "over\nnow".into(),
        }
        .to_string();
        assert!(!shown.contains('\n') && shown.contains("409"), "{shown}");
    }

    #[test]
    fn only_plain_session_ids_go_into_urls() {
        assert!(is_plain_session_id("aB3-_x"));
        assert!(!is_plain_session_id(""));
        assert!(!is_plain_session_id("../pending"));
        assert!(!is_plain_session_id("a?b"));
        assert!(!is_plain_session_id(&"a".repeat(129)));
    }

    #[test]
    fn transient_failures_are_retried_and_refusals_are_not() {
        let down = imza_http::HttpError::Scheme { url: "x".into() };
        assert!(is_transient(&ApiError::Unreachable(down)));
        let refused = |status| ApiError::Refused {
            status,
            code: "X".into(),
            message: String::new(),
        };
        assert!(is_transient(&refused(503)));
        assert!(!is_transient(&refused(401)));
        assert!(!is_transient(&refused(409)));
    }
}
