//! One fetch layer for a process that validates for others (`POST /verify`), so that no
//! request can turn it into an amplifier:
//!
//! - CRLs (by URL) and OCSP responses (by responder URL and request, i.e. CertID) fetched
//!   from certificates' URLs are kept for as long as they say they hold and shared by every
//!   request; a CRL is kept parsed, so a large one is parsed once, not per validation;
//! - identical fetches in flight are made once: the other callers wait for that one's result,
//!   at most the fetch timeout;
//! - a failed fetch is remembered briefly, so an unreachable responder is not asked again by
//!   every request;
//! - outbound fetches are capped per request ([`FetchCacheConfig::per_request`]: all the
//!   validations of one request, through one [`RequestFetcher`]), and so is the time a request
//!   may spend fetching ([`FetchCacheConfig::per_request_time`]: sixteen unreachable
//!   responders in a row would otherwise hold it for sixteen timeouts), and the fetches in
//!   flight in the whole process ([`FetchCacheConfig::concurrent`]). Over a cap a fetch fails
//!   at once as a network error, never waits: the validation ends "revocation unknown" (a
//!   signature's TRY_LATER) with a note naming the cap.
//!
//! OCSP requests sent this way carry no nonce ([`Fetcher::ocsp_nonce`]): one answer serves
//! everyone asking about the certificate, its freshness judged by thisUpdate and nextUpdate
//! as every response check does (the RFC 5019 model of pre-produced responses).
//!
//! How long an answer is kept: until its nextUpdate (the earliest of a CRL answer's CRLs, or of
//! an OCSP response's SingleResponses), and at most [`FetchCacheConfig::max_ttl`]. An answer
//! that does not say until when it holds — no nextUpdate, or one already past, or an OCSP
//! answer that is not a successful response — and a failed fetch are kept
//! [`FetchCacheConfig::brief_ttl`]: long enough to spare the responder a request per
//! validation, short enough that a mended one is asked again soon. Answers are kept as fetched
//! and checked (signature, signer, freshness) at every use; expiry is judged by the cache's
//! clock, not by a validation's time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use imza_core::clock::Clock;
use imza_http::HttpClient;
use openssl::sha::sha256;
use time::OffsetDateTime;

use crate::{Crl, Fetcher, NetworkFailure, ValidationError};

/// How long a caller waits for an identical fetch in flight beyond the fetch timeout: the one
/// fetching may have started a moment before the waiter, or after it, and its own timeout
/// ends it.
const WAIT_MARGIN: Duration = Duration::from_secs(1);

/// The knobs of a [`FetchCache`]; [`Default`] gives the values `imza serve` starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchCacheConfig {
    /// For one outbound exchange (connecting, sending, reading the answer); also about how
    /// long a caller waits for an identical fetch in flight. Default 5 s.
    pub timeout: Duration,
    /// Largest answer read (a national CRL may be tens of MiB). Default 32 MiB.
    pub max_answer_bytes: u64,
    /// Most outbound fetches one request (one [`RequestFetcher`]: a `/verify` call, all its
    /// signers and time-stamps together) may start; cache hits and waits for a fetch in
    /// flight do not count. Default 16.
    pub per_request: usize,
    /// How long after it began a request may still start a fetch or wait for one in flight;
    /// with `timeout` it bounds the time a request spends on the network. Default 10 s.
    pub per_request_time: Duration,
    /// Most outbound fetches in flight in the whole process. Default 8.
    pub concurrent: usize,
    /// Longest an answer is kept, even when its nextUpdate is later. Default 1 hour.
    pub max_ttl: Duration,
    /// How long a failed fetch is remembered, and an answer that does not say until when it
    /// holds is kept. Default 30 s.
    pub brief_ttl: Duration,
    /// Most answers (and remembered failures) kept. Default 1,024.
    pub max_entries: usize,
    /// Most bytes of answers kept, counted as their DER (a parsed CRL takes a few times
    /// that); an answer larger than this is used but not kept. Default 128 MiB.
    pub max_bytes: u64,
}

impl Default for FetchCacheConfig {
    fn default() -> FetchCacheConfig {
        FetchCacheConfig {
            timeout: Duration::from_secs(5),
            max_answer_bytes: 32 * 1024 * 1024,
            per_request: 16,
            per_request_time: Duration::from_secs(10),
            concurrent: 8,
            max_ttl: Duration::from_secs(3600),
            brief_ttl: Duration::from_secs(30),
            max_entries: 1024,
            max_bytes: 128 * 1024 * 1024,
        }
    }
}

/// What a [`FetchCache`] has done since it was made, and holds now (for tests and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchCacheStats {
    /// Outbound fetches started.
    pub outbound: u64,
    /// Answers, and remembered failures, served from the cache.
    pub hits: u64,
    /// Callers that waited for an identical fetch in flight instead of making their own.
    pub coalesced: u64,
    /// Fetches refused because their request had made [`FetchCacheConfig::per_request`].
    pub refused_per_request: u64,
    /// Fetches refused because their request had spent [`FetchCacheConfig::per_request_time`].
    pub refused_request_time: u64,
    /// Fetches refused because [`FetchCacheConfig::concurrent`] were in flight.
    pub refused_concurrent: u64,
    /// Outbound fetches in flight now.
    pub in_flight: usize,
    /// Answers and remembered failures held now.
    pub entries: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// The process's shared fetch layer: a cache of fetched answers, the fetches in flight and
/// the caps. Make one per process and hand each request a [`RequestFetcher`] from
/// [`FetchCache::request`]. `Sync`.
pub struct FetchCache {
    config: FetchCacheConfig,
    clock: Arc<dyn Clock>,
    inner: Box<dyn Fetcher>,
    state: Mutex<State>,
}

impl std::fmt::Debug for FetchCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchCache")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What is fetched, as the cache knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Crl(String),
    /// The responder URL and the SHA-256 of the DER request: without a nonce the request is
    /// determined by the CertID it asks about.
    Ocsp(String, [u8; 32]),
}

impl Key {
    /// The URL fetched.
    fn url(&self) -> &str {
        match self {
            Key::Crl(url) | Key::Ocsp(url, _) => url,
        }
    }
}

/// A fetched answer, shared.
#[derive(Clone)]
enum Answer {
    Crls(Arc<[Arc<Crl>]>),
    Ocsp(Arc<Vec<u8>>),
}

/// An answer, or why there is none.
type Outcome = Result<Answer, ValidationError>;

struct Entry {
    outcome: Outcome,
    expires: OffsetDateTime,
    bytes: u64,
}

/// A fetch in flight, which callers asking for the same thing wait on.
#[derive(Default)]
struct Flight {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    flights: HashMap<Key, Arc<Flight>>,
    bytes: u64,
    in_flight: usize,
    stats: FetchCacheStats,
}

impl FetchCache {
    /// A cache fetching over HTTP ([`HttpClient`] with the config's timeout and answer
    /// limit), judging expiry by `clock`.
    pub fn new(config: FetchCacheConfig, clock: Arc<dyn Clock>) -> FetchCache {
        let http = HttpClient {
            timeout: config.timeout,
            max_bytes: config.max_answer_bytes,
        };
        FetchCache::with_fetcher(config, clock, Box::new(http))
    }

    /// A cache whose outbound fetches go through `inner` (another transport; a test's
    /// counting fetcher). `inner` is expected to end each fetch within the config's timeout.
    pub fn with_fetcher(
        config: FetchCacheConfig,
        clock: Arc<dyn Clock>,
        inner: Box<dyn Fetcher>,
    ) -> FetchCache {
        FetchCache {
            config,
            clock,
            inner,
            state: Mutex::new(State::default()),
        }
    }

    /// The fetcher for one request (give it to every validator of that request): its fetches
    /// go through this cache and count against [`FetchCacheConfig::per_request`].
    pub fn request(self: &Arc<FetchCache>) -> RequestFetcher {
        RequestFetcher {
            cache: Arc::clone(self),
            share: Arc::new(Share {
                started: AtomicUsize::new(0),
                began: Instant::now(),
            }),
        }
    }

    pub fn config(&self) -> &FetchCacheConfig {
        &self.config
    }

    pub fn stats(&self) -> FetchCacheStats {
        let state = self.lock();
        FetchCacheStats {
            in_flight: state.in_flight,
            entries: state.entries.len(),
            bytes: state.bytes,
            ..state.stats
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The CRLs at `url`, for the request whose share of the caps is `share`.
    fn crls(&self, url: &str, share: &Share) -> Result<Arc<[Arc<Crl>]>, ValidationError> {
        let outcome = self.get(Key::Crl(url.to_string()), url, share, |inner| {
            match inner.crls(url) {
                Ok(crls) => {
                    // Kept until the earliest nextUpdate; a CRL without one: briefly.
                    let next_update = crls
                        .iter()
                        .map(|crl| crl.next_update)
                        .collect::<Option<Vec<_>>>()
                        .and_then(|times| times.into_iter().min());
                    (Ok(Answer::Crls(crls.into())), next_update)
                }
                Err(e) => (Err(e), None),
            }
        });
        match outcome? {
            Answer::Crls(crls) => Ok(crls),
            Answer::Ocsp(_) => Err(ValidationError::network(
                url,
                NetworkFailure::WrongKind {
                    asked: "CRLs",
                    held: "an OCSP response",
                },
            )),
        }
    }

    /// The answer of the responder at `url` to `request` (DER, without a nonce).
    fn ocsp(
        &self,
        url: &str,
        request: &[u8],
        share: &Share,
    ) -> Result<Arc<Vec<u8>>, ValidationError> {
        let key = Key::Ocsp(url.to_string(), sha256(request));
        let outcome = self.get(key, url, share, |inner| {
            match inner.post_ocsp(url, request) {
                Ok(der) => {
                    let next_update = crate::ocsp::response_next_update(&der);
                    (Ok(Answer::Ocsp(Arc::new(der))), next_update)
                }
                Err(e) => (Err(e), None),
            }
        });
        match outcome? {
            Answer::Ocsp(der) => Ok(der),
            Answer::Crls(_) => Err(ValidationError::network(
                url,
                NetworkFailure::WrongKind {
                    asked: "an OCSP response",
                    held: "CRLs",
                },
            )),
        }
    }

    /// The outcome for `key`: kept, or in flight (waited for), or fetched now with `fetch`
    /// (which also says the answer's nextUpdate) when the caps allow.
    fn get(
        &self,
        key: Key,
        url: &str,
        share: &Share,
        fetch: impl FnOnce(&dyn Fetcher) -> (Outcome, Option<OffsetDateTime>),
    ) -> Outcome {
        let now = self.clock.now();
        let flight = {
            let mut state = self.lock();
            if let Some(entry) = state.entries.get(&key) {
                if entry.expires > now {
                    let outcome = match &entry.outcome {
                        Ok(answer) => Ok(answer.clone()),
                        Err(ValidationError::Network { url, failure }) => {
                            Err(ValidationError::network(
                                url.clone(),
                                NetworkFailure::Remembered {
                                    failure: Box::new(failure.clone()),
                                    until: entry.expires,
                                },
                            ))
                        }
                        // An answer that came but was not usable (a CRL that does not
                        // parse) is the same error again.
                        Err(other) => Err(other.clone()),
                    };
                    state.stats.hits += 1;
                    return outcome;
                }
                if let Some(stale) = state.entries.remove(&key) {
                    state.bytes = state.bytes.saturating_sub(stale.bytes);
                }
            }
            if share.began.elapsed() >= self.config.per_request_time {
                state.stats.refused_request_time += 1;
                return Err(ValidationError::network(
                    url,
                    NetworkFailure::RequestTimeCap {
                        spent: self.config.per_request_time,
                    },
                ));
            }
            if let Some(flight) = state.flights.get(&key) {
                let flight = Arc::clone(flight);
                state.stats.coalesced += 1;
                drop(state);
                return self.wait(&flight, url);
            }
            if share.started.load(Ordering::SeqCst) >= self.config.per_request {
                state.stats.refused_per_request += 1;
                return Err(ValidationError::network(
                    url,
                    NetworkFailure::RequestFetchCap {
                        fetches: self.config.per_request,
                    },
                ));
            }
            if state.in_flight >= self.config.concurrent {
                state.stats.refused_concurrent += 1;
                return Err(ValidationError::network(
                    url,
                    NetworkFailure::ConcurrencyCap {
                        in_flight: self.config.concurrent,
                    },
                ));
            }
            share.started.fetch_add(1, Ordering::SeqCst);
            state.in_flight += 1;
            state.stats.outbound += 1;
            let flight = Arc::new(Flight::default());
            state.flights.insert(key.clone(), Arc::clone(&flight));
            flight
        };
        let mut lead = Lead {
            cache: self,
            key,
            flight,
            finished: false,
        };
        let (outcome, next_update) = fetch(self.inner.as_ref());
        lead.finish(outcome.clone(), next_update);
        outcome
    }

    /// Waits for the fetch of `flight` (of `url`) to end, at most the timeout and a margin.
    fn wait(&self, flight: &Flight, url: &str) -> Outcome {
        let limit = self.config.timeout.saturating_add(WAIT_MARGIN);
        // A timeout past what the clock can add is a day.
        let deadline = Instant::now()
            .checked_add(limit)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        let mut outcome = flight.outcome.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(done) = outcome.as_ref() {
                return done.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ValidationError::network(
                    url,
                    NetworkFailure::SharedFetchTimedOut { waited: limit },
                ));
            }
            outcome = flight
                .done
                .wait_timeout(outcome, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Until when `outcome`, whose answer says `next_update`, is kept from `now`.
    fn expiry(
        &self,
        now: OffsetDateTime,
        outcome: &Outcome,
        next_update: Option<OffsetDateTime>,
    ) -> OffsetDateTime {
        // A duration past what a date can hold is no bound.
        let after = |d: Duration| {
            time::Duration::try_from(d)
                .ok()
                .and_then(|d| now.checked_add(d))
        };
        match (outcome, next_update) {
            (Ok(_), Some(next)) if next > now => match after(self.config.max_ttl) {
                Some(cap) => next.min(cap),
                None => next,
            },
            _ => after(self.config.brief_ttl).unwrap_or(now),
        }
    }

    /// Keeps `outcome` under `key` when the bounds allow, making room by dropping what has
    /// expired, then what expires soonest.
    fn keep(&self, state: &mut State, key: Key, outcome: Outcome, expires: OffsetDateTime) {
        let bytes = match &outcome {
            Ok(Answer::Crls(crls)) => crls.iter().map(|c| c.der().len() as u64).sum(),
            Ok(Answer::Ocsp(der)) => der.len() as u64,
            // A failure is small; its message is about its size.
            Err(why) => why.to_string().len() as u64,
        };
        let (max_entries, max_bytes) = (self.config.max_entries, self.config.max_bytes);
        if max_entries == 0 || bytes > max_bytes {
            return;
        }
        let full =
            |state: &State| state.entries.len() >= max_entries || state.bytes + bytes > max_bytes;
        if full(state) {
            let now = self.clock.now();
            state.entries.retain(|_, entry| entry.expires > now);
            state.bytes = state.entries.values().map(|entry| entry.bytes).sum();
        }
        while full(state) {
            let Some(victim) = state
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.expires)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(gone) = state.entries.remove(&victim) {
                state.bytes = state.bytes.saturating_sub(gone.bytes);
            }
        }
        state.bytes += bytes;
        if let Some(replaced) = state.entries.insert(
            key,
            Entry {
                outcome,
                expires,
                bytes,
            },
        ) {
            state.bytes = state.bytes.saturating_sub(replaced.bytes);
        }
    }
}

/// The fetch this caller makes for everyone asking the same: when it ends (or unwinds), the
/// outcome is kept, the waiters are woken and the process-wide count goes down.
struct Lead<'a> {
    cache: &'a FetchCache,
    key: Key,
    flight: Arc<Flight>,
    finished: bool,
}

impl Lead<'_> {
    fn finish(&mut self, outcome: Outcome, next_update: Option<OffsetDateTime>) {
        self.finished = true;
        let cache = self.cache;
        {
            let mut state = cache.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            state.flights.remove(&self.key);
            let expires = cache.expiry(cache.clock.now(), &outcome, next_update);
            cache.keep(&mut state, self.key.clone(), outcome.clone(), expires);
        }
        *self
            .flight
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        self.flight.done.notify_all();
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let url = self.key.url().to_string();
            self.finish(
                Err(ValidationError::network(url, NetworkFailure::Incomplete)),
                None,
            );
        }
    }
}

/// One request's way to a [`FetchCache`]: a [`Fetcher`] (give a clone to each validator of the
/// request) whose outbound fetches count against the per-request cap. Its OCSP requests carry
/// no nonce.
#[derive(Clone)]
pub struct RequestFetcher {
    cache: Arc<FetchCache>,
    share: Arc<Share>,
}

/// What one request has used of its caps.
struct Share {
    /// Outbound fetches started.
    started: AtomicUsize,
    /// When the request began (its request fetcher was made).
    began: Instant,
}

impl RequestFetcher {
    /// Outbound fetches this request has started.
    pub fn outbound(&self) -> usize {
        self.share.started.load(Ordering::SeqCst)
    }

    /// The cache behind it.
    pub fn cache(&self) -> &Arc<FetchCache> {
        &self.cache
    }
}

impl std::fmt::Debug for RequestFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestFetcher")
            .field("outbound", &self.outbound())
            .finish_non_exhaustive()
    }
}

impl Fetcher for RequestFetcher {
    /// The DER of the one CRL at `url` (several come back as PEM).
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
        let crls = self.crls(url)?;
        match crls.as_slice() {
            [one] => Ok(one.der().to_vec()),
            many => {
                let mut pem = String::new();
                for crl in many {
                    pem.push_str(
                        &imza_core::pem::encode("X509 CRL", crl.der())
                            .map_err(|e| ValidationError::malformed("CRL", e))?,
                    );
                }
                Ok(pem.into_bytes())
            }
        }
    }

    fn post_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, ValidationError> {
        self.cache
            .ocsp(url, request, &self.share)
            .map(|der| der.as_ref().clone())
    }

    fn crls(&self, url: &str) -> Result<Vec<Arc<Crl>>, ValidationError> {
        self.cache.crls(url, &self.share).map(|crls| crls.to_vec())
    }

    fn ocsp_nonce(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use imza_core::clock::FixedClock;

    use super::*;

    /// Answers every OCSP request with `len` zero bytes (not a response: kept briefly) and
    /// counts the requests.
    struct Zeros {
        len: usize,
        asked: Arc<AtomicUsize>,
    }

    impl Fetcher for Zeros {
        fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
            Err(ValidationError::network(url, NetworkFailure::status(404)))
        }

        fn post_ocsp(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, ValidationError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(vec![0; self.len])
        }
    }

    fn zeros_cache(len: usize, config: FetchCacheConfig) -> (Arc<FetchCache>, Arc<AtomicUsize>) {
        let asked = Arc::new(AtomicUsize::new(0));
        let zeros = Zeros {
            len,
            asked: Arc::clone(&asked),
        };
        let clock = Arc::new(FixedClock(OffsetDateTime::UNIX_EPOCH));
        (
            Arc::new(FetchCache::with_fetcher(config, clock, Box::new(zeros))),
            asked,
        )
    }

    #[test]
    fn the_cache_holds_at_most_its_entries_and_bytes() {
        let config = FetchCacheConfig {
            max_entries: 2,
            per_request: 100,
            ..FetchCacheConfig::default()
        };
        let (cache, asked) = zeros_cache(10, config);
        let request = cache.request();
        for url in ["http://a/", "http://b/", "http://c/"] {
            request.post_ocsp(url, b"q").unwrap();
        }
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        assert_eq!((cache.stats().entries, cache.stats().bytes), (2, 20));

        let config = FetchCacheConfig {
            max_bytes: 100,
            per_request: 100,
            ..FetchCacheConfig::default()
        };
        let (cache, asked) = zeros_cache(60, config);
        let request = cache.request();
        request.post_ocsp("http://a/", b"q").unwrap();
        request.post_ocsp("http://b/", b"q").unwrap();
        assert_eq!((cache.stats().entries, cache.stats().bytes), (1, 60));
        request.post_ocsp("http://b/", b"q").unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 2, "b is the one kept");

        // An answer larger than the whole cache is used, not kept.
        let config = FetchCacheConfig {
            max_bytes: 100,
            ..FetchCacheConfig::default()
        };
        let (cache, asked) = zeros_cache(101, config);
        let request = cache.request();
        assert_eq!(request.post_ocsp("http://a/", b"q").unwrap().len(), 101);
        request.post_ocsp("http://a/", b"q").unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn the_same_request_to_another_responder_or_about_another_certificate_is_another_entry() {
        let (cache, asked) = zeros_cache(10, FetchCacheConfig::default());
        let request = cache.request();
        request.post_ocsp("http://a/", b"one").unwrap();
        request.post_ocsp("http://a/", b"one").unwrap();
        request.post_ocsp("http://a/", b"two").unwrap();
        request.post_ocsp("http://b/", b"one").unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        assert_eq!(request.outbound(), 3);
        assert!(!request.ocsp_nonce());
    }

    #[test]
    fn a_remembered_failure_and_a_cap_keep_their_facts() {
        let config = FetchCacheConfig {
            per_request: 1,
            ..FetchCacheConfig::default()
        };
        let (cache, _) = zeros_cache(10, config);
        let request = cache.request();
        let is_404 = |failure: &NetworkFailure| {
            matches!(failure, NetworkFailure::Status { status: 404, .. })
        };
        match request.crls("http://a/ca.crl") {
            Err(ValidationError::Network { url, failure }) => {
                assert_eq!(url, "http://a/ca.crl");
                assert!(is_404(&failure), "{failure:?}");
            }
            other => panic!("{other:?}"),
        }
        // Asked again: the 404 is remembered, with until when, and not fetched again.
        match request.crls("http://a/ca.crl") {
            Err(ValidationError::Network {
                url,
                failure: NetworkFailure::Remembered { failure, until },
            }) => {
                assert_eq!(url, "http://a/ca.crl");
                assert!(is_404(&failure), "{failure:?}");
                assert_eq!(
                    until,
                    OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(30)
                );
            }
            other => panic!("{other:?}"),
        }
        // Another URL: this request has made its one fetch.
        match request.post_ocsp("http://b/", b"q") {
            Err(ValidationError::Network {
                url,
                failure: NetworkFailure::RequestFetchCap { fetches: 1 },
            }) => assert_eq!(url, "http://b/"),
            other => panic!("{other:?}"),
        }
        assert_eq!(cache.stats().refused_per_request, 1);
    }
}
