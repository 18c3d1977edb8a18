//! The signature service's session engine: relying parties and devices authenticated against
//! the store, sessions created (or refused with NOT_MOBILE_CLIENT at once, as Mobile-ID
//! does), delivered to the phone, completed by its answer — a signature verified against the
//! registered certificate before anyone sees it — or by their expiry.
//!
//! The store is the truth; long polls wait on in-memory [`signals`] that only wake them early
//! and re-read the store after each wake-up, so a restart of the service loses no session.
//!
//! The methods that touch the store are synchronous and short (indexed lookups, one short
//! transaction, at most one signature verification); [`MobileService::run`] runs them on the
//! blocking pool, within the service's [`WorkLimit`], so that a store busy with another
//! process's write never stalls the async workers that carry the long polls, and a flood of
//! requests fills this service's queue and no other's.

mod limits;
mod signals;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use imza_core::clock::{rfc3339, Clock};
use imza_http::admission::{WorkError, DEFAULT_MAX_WAIT};
use imza_http::{Overloaded, WorkLimit};
use imza_ocsp::{CertStatusInfo, CertificateStatusSource, IssuerId};

use crate::protocol::{
    check_national_id, check_phone_number, check_session_request, decode_base64, encode_base64,
    signature_algorithm_name, verification_code, CertificateRequest, CertificateResponse,
    CertificateResult, DeviceAnswer, PendingRequest, PendingRequests, ProtocolError,
    SessionCreated, SessionKind, SessionRequest, SessionResult, SessionState, SessionStatus,
    SignatureValue, SESSION_LIFETIME,
};
use crate::store::sessions::pending_sessions;
use crate::store::{
    is_well_formed_id, random_id, CertificateDetails, Device, MobileStore, RegisteredCertificate,
    SessionCompletion, SessionRecord, StoreError, Stored,
};
pub use limits::RateLimit;
use limits::{Refusal, SessionLimiter};
use signals::{Signals, Topic};

/// How long complete sessions are kept before they are deleted (they hold personal data:
/// hashes and display texts). Sessions refused at creation with NOT_MOBILE_CLIENT are kept
/// only until their expiry: the relying party reads their result the way it reads any
/// session's, within its lifetime, and a flood of requests for unregistered numbers must not
/// pile up for a day.
pub const COMPLETE_SESSION_RETENTION: time::Duration = time::Duration::hours(24);

/// How often, at most, session creation also runs the clean-up (often enough that sessions
/// refused with NOT_MOBILE_CLIENT go soon after their expiry, under a flood too).
const PURGE_INTERVAL: time::Duration = time::Duration::minutes(1);

/// The longest a configured session lifetime is taken to be (sessions last minutes; a day
/// keeps the expiry arithmetic far from overflow).
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Rows per clean-up statement, and statements per clean-up.
const PURGE_BATCH: usize = 1_000;
const PURGE_MAX_BATCHES: usize = 100;

/// The most requests one pending answer carries.
pub const MAX_PENDING_REQUESTS: usize = 16;

/// A long poll re-reads the store at least this often, so that a change made by another
/// process (`imza mobile register` replacing a device ends its sessions) is seen without an
/// in-memory wake-up.
const RECHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Added to a session's remaining life when a long poll sleeps until it expires, so that the
/// read after the sleep finds it expired.
const EXPIRY_SLACK: Duration = Duration::from_millis(20);

/// The longest signature a device may send (an RSA-4096 signature is 512 bytes; DER ECDSA
/// P-384 at most 104).
const MAX_SIGNATURE_BYTES: usize = 1024;

/// How the service runs. The defaults are safe for a public service; `imza serve` reads them
/// from its `[mobile]` section.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// How long a session waits for the phone's answer.
    pub session_lifetime: Duration,
    /// Store work running at once and waiting ([`MobileService::run`]); beyond it requests
    /// are answered 503 with `Retry-After`.
    pub work: WorkLimit,
    /// Session creations (`/authentication`, `/signature`) of one relying party, across all
    /// phone numbers. Default: 100 a second, 1,000 at once.
    pub relying_party_rate: RateLimit,
    /// Session creations of one relying party for one phone number: another relying party
    /// has its own budget for the same phone. Default: 10 a minute, 10 at once.
    pub phone_rate: RateLimit,
    /// RUNNING sessions one relying party may have for one phone number at once, counted in
    /// the store. Default: 2.
    pub max_running_per_phone: u32,
    /// The most (relying party, phone number) pairs the rate limiter tracks at once; a new
    /// pair over it waits until an idle one expires. Default: 100,000.
    pub max_tracked_phones: usize,
}

/// The defaults of [`ServiceConfig`].
pub const DEFAULT_RELYING_PARTY_RATE: RateLimit = RateLimit {
    burst: 1_000,
    interval: Duration::from_millis(10),
};
pub const DEFAULT_PHONE_RATE: RateLimit = RateLimit {
    burst: 10,
    interval: Duration::from_secs(6),
};
pub const DEFAULT_MAX_RUNNING_PER_PHONE: u32 = 2;
pub const DEFAULT_MAX_TRACKED_PHONES: usize = 100_000;

/// The largest [`ServiceConfig::max_tracked_phones`] (each entry holds a relying-party name,
/// a phone number and a time).
pub const MAX_TRACKED_PHONES: usize = 10_000_000;

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            session_lifetime: SESSION_LIFETIME,
            work: default_work_limit(),
            relying_party_rate: DEFAULT_RELYING_PARTY_RATE,
            phone_rate: DEFAULT_PHONE_RATE,
            max_running_per_phone: DEFAULT_MAX_RUNNING_PER_PHONE,
            max_tracked_phones: DEFAULT_MAX_TRACKED_PHONES,
        }
    }
}

/// A few store transactions per core at once (SQLite serialises writers anyway) and a
/// queue deep enough for a burst of a thousand sessions.
pub fn default_work_limit() -> WorkLimit {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    WorkLimit::new("mobile signature", 2 * cores, 4096, DEFAULT_MAX_WAIT)
}

impl ServiceConfig {
    /// Why this configuration cannot be used, if it cannot (one line, naming the setting).
    /// [`MobileService::new`] keeps whatever it is given within these bounds anyway.
    pub fn check(&self) -> Result<(), String> {
        self.relying_party_rate
            .check("the relying party rate limit")?;
        self.phone_rate.check("the phone rate limit")?;
        if self.max_running_per_phone == 0 {
            return Err("max_running_per_phone must be at least 1".into());
        }
        if !(1..=MAX_TRACKED_PHONES).contains(&self.max_tracked_phones) {
            return Err(format!(
                "max_tracked_phones must be 1 to {MAX_TRACKED_PHONES}"
            ));
        }
        Ok(())
    }
}

/// Why a request was not served; each maps to one HTTP status and error code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400 INVALID_REQUEST.
    #[error("{0}")]
    InvalidRequest(String),
    /// 401 UNAUTHORIZED: unknown name/device or wrong key/secret (one answer for both).
    #[error("{0}")]
    Unauthorized(String),
    /// 404 NOT_FOUND: unknown, or another party's or device's session (one answer for both).
    #[error("{0}")]
    NotFound(String),
    /// 409 CONFLICT: the session is complete or expired.
    #[error("{0}")]
    Conflict(String),
    /// 429 TOO_MANY_REQUESTS with `Retry-After: retry_after_seconds`: over a rate limit, or
    /// the relying party has as many sessions running for the phone as it may.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        /// Whole seconds, at least 1.
        retry_after_seconds: u64,
    },
    /// 503 UNAVAILABLE: the store (or the CA's status) failed.
    #[error("{0}")]
    Unavailable(String),
    /// 503 UNAVAILABLE with `Retry-After`: the service's work queue is full.
    #[error(transparent)]
    Busy(#[from] Overloaded),
}

impl From<ProtocolError> for ServiceError {
    fn from(e: ProtocolError) -> Self {
        ServiceError::InvalidRequest(e.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::Unavailable(format!("the store failed: {e}"))
    }
}

/// The service: sessions over a [`MobileStore`], certificate status from the CA, time from a
/// clock. Shared by the HTTP routes as `Arc<MobileService>`.
pub struct MobileService {
    store: Arc<dyn MobileStore>,
    status: Arc<dyn CertificateStatusSource>,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    signals: Signals,
    limiter: SessionLimiter,
    last_purge: Mutex<Option<OffsetDateTime>>,
    /// Compared against when a name or device id is unknown, so that an unknown one takes as
    /// long as a wrong key.
    decoy_hash: [u8; 32],
}

impl std::fmt::Debug for MobileService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MobileService")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MobileService {
    /// A service over `store`. Sessions complete for more than a day are deleted now and then
    /// from time to time as sessions are created (a failure is tried again later).
    pub fn new(
        store: Arc<dyn MobileStore>,
        status: Arc<dyn CertificateStatusSource>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> MobileService {
        let limiter = SessionLimiter::new(
            config.relying_party_rate,
            config.phone_rate,
            config.max_tracked_phones.clamp(1, MAX_TRACKED_PHONES),
        );
        let service = MobileService {
            store,
            status,
            clock,
            config,
            signals: Signals::default(),
            limiter,
            last_purge: Mutex::new(None),
            decoy_hash: openssl::sha::sha256(b"imza-mss decoy"),
        };
        service.purge_if_due(service.clock.now());
        service
    }

    pub fn store(&self) -> &Arc<dyn MobileStore> {
        &self.store
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Runs store work on the blocking pool within the service's work limit (see the module
    /// comment).
    pub async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&MobileService) -> Result<T, ServiceError> + Send + 'static,
    {
        let service = Arc::clone(self);
        match self.config.work.run_blocking(move || work(&service)).await {
            Ok(result) => result,
            Err(WorkError::Overloaded(full)) => Err(ServiceError::Busy(full)),
            Err(e @ WorkError::Failed { .. }) => Err(ServiceError::Unavailable(e.to_string())),
        }
    }

    /// Checks a relying party's name and API key; returns the name. A known name with a wrong
    /// key and an unknown name do the same work: the store answers both with one row (the
    /// stored hash or the decoy), compared in constant time.
    pub fn authenticate_relying_party(
        &self,
        name: &str,
        key: &str,
    ) -> Result<String, ServiceError> {
        let (stored, known) = self
            .store
            .relying_party_key_hash_or(name, &self.decoy_hash)?;
        let presented = openssl::sha::sha256(key.as_bytes());
        if openssl::memcmp::eq(&presented, &stored) & known {
            Ok(name.to_string())
        } else {
            Err(ServiceError::Unauthorized(
                "unknown relying party or wrong API key".into(),
            ))
        }
    }

    /// Checks a device's id and secret; only an active device authenticates. A known id with
    /// a wrong secret and an unknown id do the same work (see
    /// [`MobileService::authenticate_relying_party`]); the device's record is read only once
    /// its secret matched.
    pub fn authenticate_device(
        &self,
        device_id: &str,
        secret: &str,
    ) -> Result<Device, ServiceError> {
        let refused = || ServiceError::Unauthorized("unknown device or wrong device secret".into());
        if !is_well_formed_id(device_id) {
            return Err(refused());
        }
        let (stored, known) = self
            .store
            .active_device_secret_hash_or(device_id, &self.decoy_hash)?;
        let presented = openssl::sha::sha256(secret.as_bytes());
        if !(openssl::memcmp::eq(&presented, &stored) & known) {
            return Err(refused());
        }
        // Deactivated between the two reads: refused like an unknown device.
        self.store.active_device(device_id)?.ok_or_else(refused)
    }

    /// `POST /certificate`: the signing certificate of the phone registered for this number and
    /// identity.
    pub fn certificate(
        &self,
        request: &CertificateRequest,
    ) -> Result<CertificateResponse, ServiceError> {
        check_phone_number(&request.phone_number)?;
        check_national_id(&request.national_identity_number)?;
        let Some(device) =
            self.registered_device(&request.phone_number, &request.national_identity_number)?
        else {
            return Ok(CertificateResponse {
                result: CertificateResult::NotFound,
                cert: None,
            });
        };
        Ok(match self.active_details(&device.sign, self.clock.now())? {
            Some(_) => CertificateResponse {
                result: CertificateResult::Ok,
                cert: Some(encode_base64(&device.sign.der)),
            },
            None => CertificateResponse {
                result: CertificateResult::NotActive,
                cert: None,
            },
        })
    }

    /// `POST /authentication` and `/signature`: a new session for `relying_party`, RUNNING, or
    /// COMPLETE with NOT_MOBILE_CLIENT when no active device with a good certificate of that
    /// kind answers for the number and identity. Refused with TOO_MANY_REQUESTS, before
    /// anything is stored, when the relying party is over its rate limits or has
    /// [`ServiceConfig::max_running_per_phone`] sessions running for the phone.
    pub fn start_session(
        &self,
        relying_party: &str,
        kind: SessionKind,
        request: &SessionRequest,
    ) -> Result<SessionCreated, ServiceError> {
        let hash = check_session_request(request)?;
        let now = self.clock.now();
        self.limiter
            .admit(relying_party, &request.phone_number, now)
            .map_err(rate_limited)?;
        let device =
            self.registered_device(&request.phone_number, &request.national_identity_number)?;
        let device = match device {
            Some(device) => self
                .active_details(device.certificate(kind), now)?
                .map(|_| device),
            None => None,
        };
        let lifetime = time::Duration::try_from(self.config.session_lifetime.min(MAX_LIFETIME))
            .unwrap_or(time::Duration::minutes(5));
        let session = SessionRecord {
            session_id: random_id()?,
            relying_party: relying_party.to_string(),
            device_id: device.as_ref().map(|d| d.device_id.clone()),
            kind,
            hash,
            hash_type: request.hash_type,
            display_text: request.display_text.clone(),
            language: request.language,
            created_at: now,
            expires_at: now.checked_add(lifetime).unwrap_or(now),
            delivered_at: None,
            completion: match device {
                Some(_) => None,
                None => Some(SessionCompletion::without_signature(
                    SessionResult::NotMobileClient,
                    now,
                )),
            },
        };
        let max_running = self.config.max_running_per_phone.max(1);
        if let Stored::TooManyRunning {
            running,
            first_expiry,
        } = self
            .store
            .insert_session_within(&session, max_running, now)?
        {
            return Err(ServiceError::TooManyRequests {
                message: format!(
                    "relying party {relying_party} has {running} sessions running for this \
                     phone number, at most {max_running}: wait for one to complete"
                ),
                retry_after_seconds: whole_seconds(
                    Duration::try_from(first_expiry - now).unwrap_or_default(),
                ),
            });
        }
        if let Some(device_id) = &session.device_id {
            self.signals.notify(&Topic::Device(device_id.clone()));
        }
        self.purge_if_due(now);
        Ok(SessionCreated {
            session_id: session.session_id,
        })
    }

    /// How many (relying party, phone number) pairs the rate limiter tracks now.
    pub fn rate_limited_phones(&self) -> usize {
        self.limiter.tracked_phones()
    }

    /// `GET /session/{id}` answered at once.
    pub fn session_status(
        &self,
        relying_party: &str,
        session_id: &str,
    ) -> Result<SessionStatus, ServiceError> {
        Ok(self.relying_party_session(relying_party, session_id)?.0)
    }

    /// `GET /session/{id}?timeoutMs=N`: waits up to `wait` (and no longer than the session
    /// lives) for the session to complete.
    pub async fn wait_session_status(
        self: &Arc<Self>,
        relying_party: &str,
        session_id: &str,
        wait: Duration,
    ) -> Result<SessionStatus, ServiceError> {
        let deadline = Instant::now() + wait;
        let mut subscription = self
            .signals
            .subscribe(Topic::Session(session_id.to_string()));
        // Bounded: every round but the last sleeps until a wake-up, the session's expiry or
        // the recheck interval, and the deadline ends it.
        loop {
            subscription.mark_seen();
            let (party, id) = (relying_party.to_string(), session_id.to_string());
            let (status, expires_at) = self
                .run(move |s| s.relying_party_session(&party, &id))
                .await?;
            let now = Instant::now();
            if status.state == SessionState::Complete || now >= deadline {
                return Ok(status);
            }
            let nap = (deadline - now)
                .min(self.until(expires_at) + EXPIRY_SLACK)
                .min(RECHECK_INTERVAL);
            let _ = tokio::time::timeout(nap, subscription.changed()).await;
        }
    }

    /// `GET /device/pending` answered at once: the RUNNING, unexpired sessions of `device`
    /// (at most [`MAX_PENDING_REQUESTS`]), taken in turns across relying parties, each one's
    /// oldest first, so every relying party with a request for the phone (up to
    /// [`MAX_PENDING_REQUESTS`] of them) has its oldest in every answer; now marked delivered.
    /// A session stays pending until answered or expired, so a phone that restarts sees it
    /// again.
    pub fn pending_requests(&self, device: &Device) -> Result<PendingRequests, ServiceError> {
        let sessions = pending_sessions(
            self.store.as_ref(),
            &device.device_id,
            self.clock.now(),
            MAX_PENDING_REQUESTS,
        )?;
        Ok(PendingRequests {
            requests: sessions.iter().map(pending_request).collect(),
        })
    }

    /// `GET /device/pending?timeoutMs=N`: waits up to `wait` for a request.
    pub async fn wait_pending_requests(
        self: &Arc<Self>,
        device: &Device,
        wait: Duration,
    ) -> Result<PendingRequests, ServiceError> {
        let deadline = Instant::now() + wait;
        let mut subscription = self
            .signals
            .subscribe(Topic::Device(device.device_id.clone()));
        loop {
            subscription.mark_seen();
            let for_device = device.clone();
            let pending = self.run(move |s| s.pending_requests(&for_device)).await?;
            let now = Instant::now();
            if !pending.requests.is_empty() || now >= deadline {
                return Ok(pending);
            }
            let nap = (deadline - now).min(RECHECK_INTERVAL);
            let _ = tokio::time::timeout(nap, subscription.changed()).await;
        }
    }

    /// `POST /device/session/{id}`: the phone's answer. A signature is verified against the
    /// registered certificate of the session's kind over the session's hash: OK if it holds,
    /// SIGNATURE_HASH_MISMATCH (and the signature kept from everyone) if not.
    pub fn answer(
        &self,
        device: &Device,
        session_id: &str,
        answer: &DeviceAnswer,
    ) -> Result<SessionStatus, ServiceError> {
        check_session_id(session_id)?;
        if !answer.result.is_device_answer() {
            return Err(ServiceError::InvalidRequest(format!(
                "result: a device answers OK, USER_REFUSED, PIN_BLOCKED or DELIVERY_ERROR, not {}",
                answer.result
            )));
        }
        match (answer.result, &answer.signature) {
            (SessionResult::Ok, None) => {
                return Err(ServiceError::InvalidRequest(
                    "signature: required with result OK".into(),
                ))
            }
            (result, Some(_)) if result != SessionResult::Ok => {
                return Err(ServiceError::InvalidRequest(format!(
                    "signature: only with result OK, not {result}"
                )))
            }
            _ => {}
        }
        let now = self.clock.now();
        let session = self
            .store
            .session_at(session_id, now)?
            .filter(|s| s.device_id.as_deref() == Some(device.device_id.as_str()))
            .ok_or_else(|| not_found(session_id))?;
        if let Some(completion) = &session.completion {
            return Err(already_complete(session_id, completion.result));
        }
        let completion = match &answer.signature {
            Some(signature) => verified(&session, device.certificate(session.kind), signature, now),
            None => SessionCompletion::without_signature(answer.result, now),
        };
        if !self.store.complete_session(session_id, &completion)? {
            // Another answer, or the expiry, came first.
            let result = self
                .store
                .session_at(session_id, now)?
                .and_then(|s| s.completion)
                .map_or(SessionResult::Timeout, |c| c.result);
            return Err(already_complete(session_id, result));
        }
        self.signals.notify(&Topic::Session(session_id.to_string()));
        Ok(status_of(&SessionRecord {
            completion: Some(completion),
            ..session
        }))
    }

    /// Ends sessions left running past their expiry, deletes those complete for more than
    /// [`COMPLETE_SESSION_RETENTION`] and those refused with NOT_MOBILE_CLIENT at creation
    /// once they expired; returns how many were deleted.
    pub fn purge_old_sessions(&self) -> Result<usize, ServiceError> {
        let now = self.clock.now();
        let deleted = self.store.purge_sessions(
            now,
            now - COMPLETE_SESSION_RETENTION,
            PURGE_BATCH,
            PURGE_MAX_BATCHES,
        )?;
        *self.last_purge.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        Ok(deleted)
    }

    fn purge_if_due(&self, now: OffsetDateTime) {
        let due = {
            let mut last = self.last_purge.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|at| now - at >= PURGE_INTERVAL || now < at);
            if due {
                // Claimed before the work, so concurrent requests do not all purge.
                *last = Some(now);
            }
            due
        };
        if due {
            // A failure is tried again at the next interval; sessions stay correct meanwhile
            // (an expired one is settled whenever it is read).
            let _ = self.purge_old_sessions();
        }
    }

    /// The active device of the number whose registration carries this identity.
    fn registered_device(
        &self,
        phone_number: &str,
        national_id: &str,
    ) -> Result<Option<Device>, ServiceError> {
        Ok(self
            .store
            .device_for_phone(phone_number)?
            .filter(|d| d.national_id == national_id))
    }

    /// The certificate's details if it is within its validity at `now` and not revoked.
    fn active_details(
        &self,
        cert: &RegisteredCertificate,
        now: OffsetDateTime,
    ) -> Result<Option<CertificateDetails>, ServiceError> {
        // Checked at registration; a certificate unreadable now is simply not usable.
        let Ok(details) = cert.details() else {
            return Ok(None);
        };
        if now < details.not_before || now > details.not_after {
            return Ok(None);
        }
        // The CA's word on the certificate (the CLI answers it from the CA store).
        match self
            .status
            .status(&IssuerId::new(&cert.ca), &details.serial)
        {
            Ok(CertStatusInfo::Good | CertStatusInfo::Unknown) => Ok(Some(details)),
            Ok(CertStatusInfo::Revoked { .. }) => Ok(None),
            Err(e) => Err(ServiceError::Unavailable(format!(
                "the CA store cannot tell the certificate's status: {e}"
            ))),
        }
    }

    /// The session of `relying_party` with this id as it stands now, and when it expires.
    fn relying_party_session(
        &self,
        relying_party: &str,
        session_id: &str,
    ) -> Result<(SessionStatus, OffsetDateTime), ServiceError> {
        check_session_id(session_id)?;
        let session = self
            .store
            .session_at(session_id, self.clock.now())?
            .filter(|s| s.relying_party == relying_party)
            .ok_or_else(|| not_found(session_id))?;
        Ok((status_of(&session), session.expires_at))
    }

    /// Real time until `at` by the service's clock (zero if past).
    fn until(&self, at: OffsetDateTime) -> Duration {
        Duration::try_from(at - self.clock.now()).unwrap_or(Duration::ZERO)
    }
}

/// The 429 for a request the rate limiter refused.
fn rate_limited(refusal: Refusal) -> ServiceError {
    let retry_after_seconds = whole_seconds(refusal.retry_after());
    let message = match refusal {
        Refusal::RelyingParty { .. } => format!(
            "too many sessions from this relying party: try again in {retry_after_seconds} s"
        ),
        Refusal::Phone { .. } => format!(
            "too many sessions from this relying party for this phone number: try again in \
             {retry_after_seconds} s"
        ),
        Refusal::Full { .. } => format!(
            "the service tracks as many phone numbers as it may: try again in \
             {retry_after_seconds} s"
        ),
    };
    ServiceError::TooManyRequests {
        message,
        retry_after_seconds,
    }
}

/// A wait as `Retry-After` gives it: whole seconds, rounded up, at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

fn check_session_id(session_id: &str) -> Result<(), ServiceError> {
    if is_well_formed_id(session_id) {
        Ok(())
    } else {
        Err(ServiceError::InvalidRequest(
            "session id: must be 32 lower-case hex digits".into(),
        ))
    }
}

fn not_found(session_id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no session {session_id}"))
}

fn already_complete(session_id: &str, result: SessionResult) -> ServiceError {
    ServiceError::Conflict(format!(
        "session {session_id} is already complete ({result})"
    ))
}

/// The completion an OK answer with `signature` earns.
fn verified(
    session: &SessionRecord,
    cert: &RegisteredCertificate,
    signature: &str,
    now: OffsetDateTime,
) -> SessionCompletion {
    let mismatch = SessionCompletion::without_signature(SessionResult::SignatureHashMismatch, now);
    let Ok(signature) = decode_base64(signature) else {
        return mismatch;
    };
    if signature.is_empty() || signature.len() > MAX_SIGNATURE_BYTES {
        return mismatch;
    }
    let Ok(details) = cert.details() else {
        return mismatch;
    };
    let good = imza_core::verify::verify_digest(
        &details.public_key,
        session.hash_type,
        &session.hash,
        &signature,
    );
    if good.is_err() {
        return mismatch;
    }
    SessionCompletion {
        result: SessionResult::Ok,
        completed_at: now,
        signature_algorithm: Some(signature_algorithm_name(
            session.hash_type,
            details.key_algorithm.is_ec(),
        )),
        signature: Some(signature),
        cert: Some(cert.der.clone()),
    }
}

/// A session as the relying party (and the answering device) sees it.
fn status_of(session: &SessionRecord) -> SessionStatus {
    match &session.completion {
        None => SessionStatus {
            state: SessionState::Running,
            result: None,
            signature: None,
            cert: None,
        },
        Some(completion) => {
            let ok = completion.result == SessionResult::Ok;
            SessionStatus {
                state: SessionState::Complete,
                result: Some(completion.result),
                signature: match (&completion.signature, &completion.signature_algorithm) {
                    (Some(value), Some(algorithm)) if ok => Some(SignatureValue {
                        value: encode_base64(value),
                        algorithm: algorithm.clone(),
                    }),
                    _ => None,
                },
                cert: completion.cert.as_deref().filter(|_| ok).map(encode_base64),
            }
        }
    }
}

fn pending_request(session: &SessionRecord) -> PendingRequest {
    PendingRequest {
        session_id: session.session_id.clone(),
        kind: session.kind,
        relying_party: session.relying_party.clone(),
        display_text: session.display_text.clone(),
        language: session.language,
        hash: encode_base64(&session.hash),
        hash_type: session.hash_type,
        verification_code: verification_code(&session.hash),
        expires_at: rfc3339(session.expires_at),
    }
}
