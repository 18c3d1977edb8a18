//! The OCSP service behind the HTTP routes: a [`Responder`], the status source, a clock and
//! the [`OcspCache`] of pre-signed responses, put together as RFC 5019 §2.2 / RFC 9919
//! describe — nonce-less requests answered from the cache, requests with a nonce (RFC 9654)
//! signed live — plus the upkeep that keeps the cache honest:
//! - [`OcspService::poll_revision`], every [`CacheConfig::poll_interval`], drops the cache
//!   when the source's revision moves (a revocation or issuance, in any process), and keeps
//!   it while the source cannot be read;
//! - [`OcspService::refresh`], every [`CacheConfig::refresh_interval`], re-signs the entries
//!   in use before they go stale, so hot answers never expire under their clients.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration as StdDuration;

use time::OffsetDateTime;
use x509_ocsp::OcspResponseStatus;

use imza_core::clock::Clock;

use crate::cache::{
    CachedEntry, Freshness, Insertion, Lookup, OcspCache, SignedResponse, DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ENTRIES,
};
use crate::responder::{OcspAnswer, Responder};
use crate::signing::error_response;
use crate::status::{CertificateStatusSource, IssuerId};
use crate::OcspError;

/// Default time between two reads of the source revision: a revocation made by `imza ca
/// revoke` in another process reaches OCSP clients well within a second.
pub const DEFAULT_POLL_INTERVAL: StdDuration = StdDuration::from_millis(250);

/// Default time between two refresh passes over the cache.
pub const DEFAULT_REFRESH_INTERVAL: StdDuration = StdDuration::from_secs(60);

/// Requests larger than this are answered but not cached: RFC 9919 requests are one CertID
/// (~100 bytes), and big keys would let a few requests use much of the cache's memory.
pub const DEFAULT_MAX_CACHED_REQUEST_BYTES: usize = 4 * 1024;

/// How the cache is bounded and kept up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most responses kept; when full, new answers are sent but not kept (see [`OcspCache`]).
    pub max_entries: usize,
    /// Most memory the kept responses take ([`crate::cache::entry_bytes`]); likewise.
    pub max_bytes: usize,
    /// Largest request whose answer is kept.
    pub max_cached_request_bytes: usize,
    /// Time between two [`OcspService::poll_revision`] calls by the background task.
    pub poll_interval: StdDuration,
    /// Time between two [`OcspService::refresh`] passes by the background task.
    pub refresh_interval: StdDuration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
            max_cached_request_bytes: DEFAULT_MAX_CACHED_REQUEST_BYTES,
            poll_interval: DEFAULT_POLL_INTERVAL,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
        }
    }
}

/// An OCSP answer ready for HTTP: the DER body (shared with the cache, never copied) and what
/// the headers need.
#[derive(Clone, Debug)]
pub struct HttpOcspAnswer {
    response: Arc<SignedResponse>,
    /// When the answer was made or looked up: max-age counts from here.
    answered_at: OffsetDateTime,
    from_cache: bool,
    issuer: Option<IssuerId>,
    problem: Option<OcspError>,
}

impl HttpOcspAnswer {
    fn live(mut answer: OcspAnswer, now: OffsetDateTime) -> Self {
        let issuer = answer.issuer.take();
        let problem = answer.problem.take();
        HttpOcspAnswer {
            response: Arc::new(signed_response(answer, true)),
            answered_at: now,
            from_cache: false,
            issuer,
            problem,
        }
    }

    /// A bare error response (RFC 6960 §2.3) for a request that never reached the responder,
    /// such as a GET path that is not base64.
    pub fn refused(problem: OcspError, now: OffsetDateTime) -> Self {
        let status = problem.response_status();
        HttpOcspAnswer {
            response: Arc::new(SignedResponse::uncacheable(error_response(status), status)),
            answered_at: now,
            from_cache: false,
            issuer: None,
            problem: Some(problem),
        }
    }

    /// The DER OCSPResponse.
    pub fn der(&self) -> &[u8] {
        self.response.der()
    }

    /// The body as a shareable handle, for streaming without a copy.
    pub fn body(&self) -> Arc<SignedResponse> {
        Arc::clone(&self.response)
    }

    pub fn status(&self) -> OcspResponseStatus {
        self.response.status()
    }

    /// True for `successful` answers without a nonce: HTTP caches may keep them until
    /// nextUpdate (RFC 5019 §6); everything else is `no-store`.
    pub fn is_cacheable(&self) -> bool {
        self.response.freshness().is_some()
    }

    /// thisUpdate, nextUpdate and the HTTP validators of a cacheable answer.
    pub fn freshness(&self) -> Option<&Freshness> {
        self.response.freshness()
    }

    pub fn this_update(&self) -> Option<OffsetDateTime> {
        self.freshness().map(|f| f.this_update)
    }

    pub fn next_update(&self) -> Option<OffsetDateTime> {
        self.freshness().map(|f| f.next_update)
    }

    /// The quoted strong ETag of a cacheable answer.
    pub fn etag(&self) -> Option<&str> {
        self.freshness().map(|f| f.etag.as_str())
    }

    /// Seconds an HTTP cache may keep a cacheable answer: until nextUpdate, never past it.
    pub fn max_age(&self) -> Option<u64> {
        self.freshness().map(|f| f.max_age(self.answered_at))
    }

    pub fn answered_at(&self) -> OffsetDateTime {
        self.answered_at
    }

    /// True when the answer came from the cache, not from the responder.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// The CA answered for, when known (not for cache hits).
    pub fn issuer(&self) -> Option<&IssuerId> {
        self.issuer.as_ref()
    }

    /// Why the answer is not `successful`, for logs and metrics.
    pub fn problem(&self) -> Option<&OcspError> {
        self.problem.as_ref()
    }
}

/// The responder's answer as a response to send and perhaps keep: cacheable when it is
/// `successful`, nonce-less and dated (RFC 5019 §2.2). `served`: whether a client gets it now.
fn signed_response(answer: OcspAnswer, served: bool) -> SignedResponse {
    match (
        answer.status,
        answer.has_nonce,
        answer.this_update,
        answer.next_update,
    ) {
        (OcspResponseStatus::Successful, false, Some(this_update), Some(next_update)) => {
            SignedResponse::cacheable(answer.der, this_update, next_update, served)
        }
        _ => SignedResponse::uncacheable(answer.der, answer.status),
    }
}

/// A request the cache could not answer; pass it to [`OcspService::answer_missed`].
#[derive(Debug)]
#[must_use = "a miss is answered with OcspService::answer_missed"]
pub struct CacheMiss {
    /// The cache epoch noted before the responder is asked; `None` when the request is too
    /// big to be cached at all.
    epoch: Option<crate::cache::CacheEpoch>,
    now: OffsetDateTime,
}

/// What one [`OcspService::refresh`] pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Entries re-signed and put back.
    pub resigned: usize,
    /// Entries nobody asked for since they were signed, dropped instead of re-signed.
    pub dropped: usize,
    /// Entries whose re-signing did not give a cacheable answer (the store is down, say);
    /// they stay until nextUpdate, expired ones are dropped.
    pub failed: usize,
    /// Re-signed answers not put back because the cache was cleared meanwhile (the pass
    /// then stops: what it had not reached was cleared too).
    pub superseded: usize,
}

/// The OCSP responder with its response cache, shared by the HTTP routes and the upkeep tasks.
pub struct OcspService {
    /// Swapped whole by [`replace_responder`](Self::replace_responder); readers clone the `Arc`.
    responder: RwLock<Arc<Responder>>,
    source: Arc<dyn CertificateStatusSource>,
    clock: Arc<dyn Clock>,
    config: CacheConfig,
    cache: OcspCache,
    last_poll_error: Mutex<Option<OcspError>>,
    /// When the last revision poll ended, whatever its outcome (for `/health`: a poll that
    /// stopped completing is as bad as one that fails).
    last_poll_completed: Mutex<std::time::Instant>,
}

impl OcspService {
    /// A service answering with `responder` from `source`. The source's revision is read once
    /// here, so the cache starts out knowing it.
    pub fn new(
        responder: Responder,
        source: Arc<dyn CertificateStatusSource>,
        clock: Arc<dyn Clock>,
        config: CacheConfig,
    ) -> Self {
        let service = OcspService {
            responder: RwLock::new(Arc::new(responder)),
            source,
            clock,
            cache: OcspCache::new(config.max_entries, config.max_bytes),
            config,
            last_poll_error: Mutex::new(None),
            last_poll_completed: Mutex::new(std::time::Instant::now()),
        };
        // An error is kept for `last_poll_error`; the cache stays empty until a poll works.
        let _ = service.poll_revision();
        service
    }

    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The responder in use.
    pub fn responder(&self) -> Arc<Responder> {
        Arc::clone(&self.responder.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The cache, to inspect (its size, its source revision).
    pub fn cache(&self) -> &OcspCache {
        &self.cache
    }

    /// Largest request body the responder reads ([`crate::RequestLimits::max_bytes`]).
    pub fn max_request_bytes(&self) -> usize {
        self.responder().config().limits.max_bytes
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Answers the DER OCSPRequest `request_der`: from the cache when it holds a fresh
    /// response for exactly these bytes, else from the responder (which may block on the
    /// status source and signs). Never panics.
    pub fn answer(&self, request_der: &[u8]) -> HttpOcspAnswer {
        match self.answer_cached(request_der) {
            Ok(answer) => answer,
            Err(miss) => self.answer_missed(request_der, miss),
        }
    }

    /// The cached answer for `request_der`, without blocking or parsing: a read lock and a
    /// hash lookup. A nonce request always misses (only nonce-less answers are kept).
    pub fn answer_cached(&self, request_der: &[u8]) -> Result<HttpOcspAnswer, CacheMiss> {
        let now = self.clock.now();
        if request_der.len() > self.config.max_cached_request_bytes {
            return Err(CacheMiss { epoch: None, now });
        }
        match self.cache.lookup(request_der, now) {
            Lookup::Hit(response) => {
                response.mark_served();
                Ok(HttpOcspAnswer {
                    response,
                    answered_at: now,
                    from_cache: true,
                    issuer: None,
                    problem: None,
                })
            }
            Lookup::Miss(epoch) => Err(CacheMiss {
                epoch: Some(epoch),
                now,
            }),
        }
    }

    /// Answers `request_der` with the responder after [`answer_cached`](Self::answer_cached)
    /// missed, and caches the answer when it is cacheable and the cache was not cleared since
    /// the miss. Blocks on the status source and signs: call it off the async executor.
    pub fn answer_missed(&self, request_der: &[u8], miss: CacheMiss) -> HttpOcspAnswer {
        // The epoch in `miss` was noted before this read of the responder and before the
        // status source is asked: see `OcspCache` for why that order matters.
        let responder = self.responder();
        let answer = HttpOcspAnswer::live(
            responder.respond(request_der, miss.now, self.source.as_ref()),
            miss.now,
        );
        if let Some(epoch) = miss.epoch {
            if answer.is_cacheable() {
                self.cache
                    .insert(request_der, answer.body(), epoch, miss.now);
            }
        }
        answer
    }

    /// Reads the source's revision and clears the cache when it moved since the last poll.
    /// When the revision cannot be read the cache is kept (see [`OcspCache::observe_revision`])
    /// and the error returned, for `/health`. Returns whether it cleared.
    pub fn poll_revision(&self) -> Result<bool, OcspError> {
        let read = catch_unwind(AssertUnwindSafe(|| self.source.revision())).unwrap_or_else(|_| {
            Err(OcspError::Panic(
                "the status source panicked reading its revision".into(),
            ))
        });
        *self
            .last_poll_completed
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
        let mut last_error = self
            .last_poll_error
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match read {
            Ok(revision) => {
                *last_error = None;
                Ok(self.cache.observe_revision(Some(revision)))
            }
            Err(problem) => {
                self.cache.observe_revision(None);
                *last_error = Some(problem.clone());
                Err(problem)
            }
        }
    }

    /// How long ago the last revision poll ended (for `/health`: several intervals mean the
    /// poll is stuck, and a revocation may not reach the cache).
    pub fn since_last_poll(&self) -> StdDuration {
        self.last_poll_completed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Why the last revision poll failed, if it did (for `/health`).
    pub fn last_poll_error(&self) -> Option<OcspError> {
        self.last_poll_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-signs the cached responses with less than half the responder's validity left, so
    /// entries in use are replaced before HTTP caches and clients see them expire. An entry no
    /// client was sent since it was signed is dropped instead: the cache keeps the working set,
    /// not every question ever asked. Bounded by the cache size; blocks while signing.
    pub fn refresh(&self) -> RefreshReport {
        let now = self.clock.now();
        let margin = self.responder().config().validity / 2;
        // The epoch comes with the snapshot, before the responder that signs is read.
        let (epoch, due) = self.cache.due(now, margin);
        let responder = self.responder();
        let mut report = RefreshReport::default();
        for CachedEntry {
            request,
            response: old,
        } in due
        {
            if !old.was_served() {
                if self.cache.remove_if_same(&request, &old) {
                    report.dropped += 1;
                }
                continue;
            }
            let renewed = signed_response(
                responder.respond(&request, now, self.source.as_ref()),
                false,
            );
            if renewed.freshness().is_none() {
                report.failed += 1;
                if !old.is_fresh(now) {
                    self.cache.remove_if_same(&request, &old);
                }
                continue;
            }
            match self.cache.insert(&request, Arc::new(renewed), epoch, now) {
                Insertion::Inserted => report.resigned += 1,
                Insertion::StaleEpoch => {
                    // The cache was cleared: the rest of the snapshot is gone from it too, and
                    // re-signing it would only be refused the same way.
                    report.superseded += 1;
                    break;
                }
                Insertion::Full | Insertion::NotCacheable => report.failed += 1,
            }
        }
        report
    }

    /// Puts `responder` in place of the current one (its certificates were renewed, say) and
    /// clears the cache, so no response of the old responder is served from it any more.
    pub fn replace_responder(&self, responder: Responder) {
        // Stored before the clear: a request that read the old responder noted an epoch
        // that the clear then ends, so its answer cannot be inserted afterwards.
        *self.responder.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(responder);
        self.cache.clear();
    }
}
