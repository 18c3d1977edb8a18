//! The cache of signed OCSP responses that nonce-less requests are served from (RFC 5019 §2.2
//! and §6, carried on by RFC 9919): a response is signed once and sent to every client asking
//! the same question until shortly before its nextUpdate. It is keyed by the DER request bytes,
//! so a hit needs no parsing.
//!
//! A cached `good` must never outlive a revocation by more than one poll of the status
//! source. Two rules give that:
//! - every clear starts a new [`CacheEpoch`]; the cache also remembers the source revision it
//!   was filled under and clears itself when [`OcspCache::observe_revision`] sees another one;
//! - a response is inserted only under the epoch noted *before* the responder was asked
//!   ([`Lookup::Miss`] carries it). An answer computed before a revocation then either lands
//!   before the clear that follows the revocation (and is removed by it) or is refused.
//!
//! One [`RwLock`] guards the map: a hit is a read lock, a hash of ~100 bytes and an `Arc`
//! clone, far below what HTTP costs per request, so sharding would buy nothing measurable on
//! the machines this runs on and would make the epoch rule harder to check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};
use x509_ocsp::OcspResponseStatus;

/// Default bound on the number of cached responses.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Default bound on the memory the cached entries take ([`entry_bytes`]): a delegated
/// responder's answer carries its certificate (~1 KiB an entry with the request and the
/// bookkeeping), so 100,000 entries alone would be ~120 MiB; 64 MiB keeps a public node
/// within ~150 MiB however many different certificates it is asked about.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// What one entry is taken to cost beyond its request and response bytes, an estimate: the
/// map slot, the shared response with its validators (three small strings), and the
/// allocator's rounding of each of those allocations.
const ENTRY_OVERHEAD_BYTES: usize = 320;

/// The memory one entry is counted as: request and response bytes plus a fixed overhead.
pub fn entry_bytes(request: &[u8], response: &SignedResponse) -> usize {
    request.len() + response.der.len() + ENTRY_OVERHEAD_BYTES
}

/// IMF-fixdate, the HTTP-date form senders must generate (RFC 9110 §5.6.7).
const HTTP_DATE: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// `Tue, 15 Nov 1994 08:12:31 GMT` (RFC 9110 §5.6.7), for `Last-Modified` and `Expires`.
pub fn http_date(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.format(HTTP_DATE)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 GMT".to_string())
}

/// What makes a response cacheable, with its HTTP validators computed once (RFC 5019 §6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freshness {
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// A strong entity tag, quoted: the first 16 bytes of the SHA-256 of the DER, in hex.
    pub etag: String,
    /// thisUpdate as an HTTP-date.
    pub last_modified: String,
    /// nextUpdate as an HTTP-date.
    pub expires: String,
}

impl Freshness {
    fn of(der: &[u8], this_update: OffsetDateTime, next_update: OffsetDateTime) -> Self {
        let digest = openssl::sha::sha256(der);
        Freshness {
            this_update,
            next_update,
            etag: format!("\"{}\"", hex::encode(&digest[..16])),
            last_modified: http_date(this_update),
            expires: http_date(next_update),
        }
    }

    /// Whole seconds from `now` to nextUpdate, rounded down and never negative, so
    /// `max-age` never reaches past nextUpdate (RFC 5019 §6.2).
    pub fn max_age(&self, now: OffsetDateTime) -> u64 {
        let left = self.next_update - now;
        u64::try_from(left.whole_seconds()).unwrap_or(0)
    }
}

/// One signed OCSPResponse, shared by the cache and every reply that sends it.
#[derive(Debug)]
pub struct SignedResponse {
    der: Vec<u8>,
    status: OcspResponseStatus,
    /// Present when the response may be cached: `successful` and without a nonce.
    freshness: Option<Freshness>,
    /// Whether a client was sent this response since it was signed: the refresh re-signs
    /// only entries that are in use.
    served: AtomicBool,
}

impl SignedResponse {
    /// A response that must not be cached (it answers a nonce, or is an error status).
    pub fn uncacheable(der: Vec<u8>, status: OcspResponseStatus) -> Self {
        SignedResponse {
            der,
            status,
            freshness: None,
            served: AtomicBool::new(true),
        }
    }

    /// A `successful`, nonce-less response valid from `this_update` to `next_update`.
    /// `served` says whether it is being sent to a client now (a refresh signs ahead of use).
    pub fn cacheable(
        der: Vec<u8>,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        served: bool,
    ) -> Self {
        let freshness = Freshness::of(&der, this_update, next_update);
        SignedResponse {
            der,
            status: OcspResponseStatus::Successful,
            freshness: Some(freshness),
            served: AtomicBool::new(served),
        }
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn status(&self) -> OcspResponseStatus {
        self.status
    }

    pub fn freshness(&self) -> Option<&Freshness> {
        self.freshness.as_ref()
    }

    /// True while `now` is before nextUpdate: the only time a cached copy may be sent.
    pub fn is_fresh(&self, now: OffsetDateTime) -> bool {
        self.freshness.as_ref().is_some_and(|f| now < f.next_update)
    }

    pub fn was_served(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }

    /// Notes a cache hit. Loads first, so a hot entry's cache line is written once per
    /// signing, not once per request.
    pub fn mark_served(&self) {
        if !self.served.load(Ordering::Relaxed) {
            self.served.store(true, Ordering::Relaxed);
        }
    }
}

impl AsRef<[u8]> for SignedResponse {
    fn as_ref(&self) -> &[u8] {
        &self.der
    }
}

/// A generation of the cache: it changes on every clear. Note it before asking the
/// responder and hand it back to [`OcspCache::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheEpoch(u64);

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// A response still fresh for exactly these request bytes.
    Hit(Arc<SignedResponse>),
    /// None: answer live, then insert under this epoch.
    Miss(CacheEpoch),
}

/// What became of an insertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insertion {
    Inserted,
    /// The cache was cleared since the epoch was noted: the answer may predate a revocation.
    StaleEpoch,
    /// The cache holds its maximum; the answer is sent but not kept.
    Full,
    /// The response is not cacheable (a nonce, an error status) or no longer fresh.
    NotCacheable,
}

/// One cached response and the request bytes it answers.
#[derive(Clone, Debug)]
pub struct CachedEntry {
    pub request: Box<[u8]>,
    pub response: Arc<SignedResponse>,
}

struct CacheState {
    epoch: u64,
    /// The source revision the entries were signed under; `None` before the first poll and
    /// after a failed one.
    source_revision: Option<u64>,
    entries: HashMap<Box<[u8]>, Arc<SignedResponse>>,
    /// The entries' [`entry_bytes`], summed.
    bytes: usize,
}

/// Signed responses keyed by request DER, bounded in entries and in bytes, cleared on every
/// source revision.
///
/// When full, new questions are answered live and not kept (nothing is evicted): the bound
/// exists for hostile request streams (every unknown serial is a successful, cacheable
/// answer), and evicting would let such a stream push out the responses honest clients use.
/// The refresh drops entries nobody asked for during half a validity period, so room comes
/// back by itself.
pub struct OcspCache {
    state: RwLock<CacheState>,
    max_entries: usize,
    max_bytes: usize,
}

impl OcspCache {
    /// A cache of at most `max_entries` entries taking at most `max_bytes` ([`entry_bytes`]).
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        OcspCache {
            state: RwLock::new(CacheState {
                epoch: 0,
                source_revision: None,
                entries: HashMap::new(),
                bytes: 0,
            }),
            max_entries,
            max_bytes,
        }
    }

    /// A poisoned lock only means a panic elsewhere while holding it; every write leaves the
    /// state consistent (single assignments), so the data is still good to use.
    fn read(&self) -> RwLockReadGuard<'_, CacheState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, CacheState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The response for `request` if one is cached and fresh at `now`, else the epoch to
    /// insert the live answer under.
    pub fn lookup(&self, request: &[u8], now: OffsetDateTime) -> Lookup {
        let state = self.read();
        match state.entries.get(request) {
            Some(response) if response.is_fresh(now) => Lookup::Hit(Arc::clone(response)),
            _ => Lookup::Miss(CacheEpoch(state.epoch)),
        }
    }

    /// The current epoch.
    pub fn epoch(&self) -> CacheEpoch {
        CacheEpoch(self.read().epoch)
    }

    /// Keeps `response` for `request` if the cache was not cleared since `noted` was taken,
    /// the response is cacheable and fresh at `now`, and there is room in entries and bytes
    /// (replacing an entry for the same request always fits).
    pub fn insert(
        &self,
        request: &[u8],
        response: Arc<SignedResponse>,
        noted: CacheEpoch,
        now: OffsetDateTime,
    ) -> Insertion {
        if !response.is_fresh(now) {
            return Insertion::NotCacheable;
        }
        let mut state = self.write();
        // Checked under the write lock that `clear` also takes: a clear either happened before
        // (the epoch differs) or happens after and removes this entry.
        if state.epoch != noted.0 {
            return Insertion::StaleEpoch;
        }
        let cost = entry_bytes(request, &response);
        if let Some(slot) = state.entries.get_mut(request) {
            let old = entry_bytes(request, slot);
            *slot = response;
            state.bytes = state.bytes - old + cost;
            return Insertion::Inserted;
        }
        if state.entries.len() >= self.max_entries
            || state.bytes.saturating_add(cost) > self.max_bytes
        {
            return Insertion::Full;
        }
        state.entries.insert(request.into(), response);
        state.bytes += cost;
        Insertion::Inserted
    }

    /// Drops every entry and starts a new epoch.
    pub fn clear(&self) {
        let mut state = self.write();
        Self::clear_locked(&mut state);
    }

    fn clear_locked(state: &mut CacheState) {
        state.epoch = state.epoch.wrapping_add(1);
        // A fresh map: the old one's memory goes back too.
        state.entries = HashMap::new();
        state.bytes = 0;
    }

    /// Compares the source's `revision` with the one the entries were signed under and clears
    /// the cache when they differ (or none was known). `None` — the source could not be read
    /// (its database is restarting, say) — changes nothing: the answers already signed stay
    /// valid until their nextUpdate, as RFC 5019 caches anywhere keep them, and no revocation
    /// can be recorded where they are read from while it is away; when it is back, a revision
    /// that moved meanwhile clears the cache. Returns whether it cleared.
    pub fn observe_revision(&self, revision: Option<u64>) -> bool {
        let Some(revision) = revision else {
            return false;
        };
        let mut state = self.write();
        let same = state.source_revision == Some(revision);
        if !same {
            Self::clear_locked(&mut state);
            state.source_revision = Some(revision);
        }
        !same
    }

    /// The source revision the entries were signed under.
    pub fn source_revision(&self) -> Option<u64> {
        self.read().source_revision
    }

    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// The memory the entries are counted as ([`entry_bytes`]).
    pub fn bytes(&self) -> usize {
        self.read().bytes
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The entries with less than `margin` of freshness left at `now` (expired ones included),
    /// with the epoch to re-insert their re-signed responses under.
    pub fn due(&self, now: OffsetDateTime, margin: Duration) -> (CacheEpoch, Vec<CachedEntry>) {
        let state = self.read();
        let due = state
            .entries
            .iter()
            .filter(|(_, r)| r.freshness().is_none_or(|f| f.next_update - now < margin))
            .map(|(request, response)| CachedEntry {
                request: request.clone(),
                response: Arc::clone(response),
            })
            .collect();
        (CacheEpoch(state.epoch), due)
    }

    /// Removes the entry for `request` if it is still `response` (not replaced meanwhile).
    pub fn remove_if_same(&self, request: &[u8], response: &Arc<SignedResponse>) -> bool {
        let mut state = self.write();
        match state.entries.get(request) {
            Some(current) if Arc::ptr_eq(current, response) => {
                state.bytes -= entry_bytes(request, response);
                state.entries.remove(request);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-01 10:00:00 UTC);

    fn response(tag: u8, next_update: OffsetDateTime) -> Arc<SignedResponse> {
        Arc::new(SignedResponse::cacheable(
            vec![0x30, tag],
            T0,
            next_update,
            true,
        ))
    }

    fn hit(cache: &OcspCache, request: &[u8], now: OffsetDateTime) -> Option<Vec<u8>> {
        match cache.lookup(request, now) {
            Lookup::Hit(r) => Some(r.der().to_vec()),
            Lookup::Miss(_) => None,
        }
    }

    fn miss(cache: &OcspCache, request: &[u8]) -> CacheEpoch {
        match cache.lookup(request, T0) {
            Lookup::Miss(epoch) => epoch,
            Lookup::Hit(_) => panic!("unexpected hit"),
        }
    }

    #[test]
    fn an_answer_noted_before_a_clear_is_refused_after_it() {
        let cache = OcspCache::new(10, usize::MAX);
        let noted = miss(&cache, b"req");
        cache.clear();
        let next = T0 + Duration::hours(1);
        assert_eq!(
            cache.insert(b"req", response(1, next), noted, T0),
            Insertion::StaleEpoch
        );
        assert_eq!(hit(&cache, b"req", T0), None);
        // Under the new epoch the same answer is kept.
        let noted = miss(&cache, b"req");
        assert_eq!(
            cache.insert(b"req", response(1, next), noted, T0),
            Insertion::Inserted
        );
        assert_eq!(hit(&cache, b"req", T0), Some(vec![0x30, 1]));
    }

    #[test]
    fn a_new_source_revision_clears_and_an_unreadable_one_too() {
        let cache = OcspCache::new(10, usize::MAX);
        assert!(cache.observe_revision(Some(7)), "first revision seen");
        let next = T0 + Duration::hours(1);
        let noted = miss(&cache, b"req");
        cache.insert(b"req", response(1, next), noted, T0);
        assert!(!cache.observe_revision(Some(7)));
        assert_eq!(hit(&cache, b"req", T0), Some(vec![0x30, 1]));
        assert!(cache.observe_revision(Some(8)));
        assert_eq!(hit(&cache, b"req", T0), None);
        assert_eq!(cache.source_revision(), Some(8));

        let noted = miss(&cache, b"req");
        cache.insert(b"req", response(1, next), noted, T0);
        assert!(!cache.observe_revision(None), "store unreadable: kept");
        assert_eq!(hit(&cache, b"req", T0), Some(vec![0x30, 1]));
        assert!(!cache.observe_revision(Some(8)), "back, unchanged: kept");
        assert_eq!(hit(&cache, b"req", T0), Some(vec![0x30, 1]));
        assert!(!cache.observe_revision(None));
        assert!(
            cache.observe_revision(Some(9)),
            "back, moved meanwhile: cleared"
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_is_served_only_before_next_update() {
        let cache = OcspCache::new(10, usize::MAX);
        let next = T0 + Duration::minutes(5);
        let noted = miss(&cache, b"req");
        cache.insert(b"req", response(1, next), noted, T0);
        assert!(hit(&cache, b"req", next - Duration::seconds(1)).is_some());
        assert!(hit(&cache, b"req", next).is_none());
        // An already stale response is not inserted at all.
        let noted = miss(&cache, b"other");
        assert_eq!(
            cache.insert(b"other", response(2, next), noted, next),
            Insertion::NotCacheable
        );
    }

    #[test]
    fn uncacheable_responses_are_never_kept() {
        let cache = OcspCache::new(10, usize::MAX);
        let noted = miss(&cache, b"req");
        let error = Arc::new(SignedResponse::uncacheable(
            vec![0x30, 0x03, 0x0a, 0x01, 0x01],
            OcspResponseStatus::MalformedRequest,
        ));
        assert_eq!(
            cache.insert(b"req", error, noted, T0),
            Insertion::NotCacheable
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_keeps_what_it_has_and_still_replaces_entries() {
        let cache = OcspCache::new(2, usize::MAX);
        let next = T0 + Duration::hours(1);
        let epoch = cache.epoch();
        // (key, response number, what the insertion gives): the third key finds the cache
        // full, a known key is still replaced.
        for (key, n, expected) in [
            (b"a", 1, Insertion::Inserted),
            (b"b", 2, Insertion::Inserted),
            (b"c", 3, Insertion::Full),
            (b"a", 4, Insertion::Inserted),
        ] {
            let key: &[u8] = key;
            assert_eq!(
                cache.insert(key, response(n, next), epoch, T0),
                expected,
                "{key:?}"
            );
        }
        assert_eq!(hit(&cache, b"a", T0), Some(vec![0x30, 4]));
        assert_eq!(hit(&cache, b"b", T0), Some(vec![0x30, 2]));
        assert_eq!(hit(&cache, b"c", T0), None);
    }

    #[test]
    fn the_byte_bound_refuses_new_entries_and_frees_what_is_removed_or_replaced() {
        let next = T0 + Duration::hours(1);
        let one = entry_bytes(b"a", &response(1, next));
        let cache = OcspCache::new(100, 2 * one);
        let epoch = cache.epoch();
        let a = response(1, next);
        assert_eq!(
            cache.insert(b"a", Arc::clone(&a), epoch, T0),
            Insertion::Inserted
        );
        assert_eq!(
            cache.insert(b"b", response(2, next), epoch, T0),
            Insertion::Inserted
        );
        assert_eq!(cache.bytes(), 2 * one);
        assert_eq!(
            cache.insert(b"c", response(3, next), epoch, T0),
            Insertion::Full
        );
        // A replacement of the same size fits and keeps the count.
        let a2 = response(4, next);
        assert_eq!(
            cache.insert(b"a", Arc::clone(&a2), epoch, T0),
            Insertion::Inserted
        );
        assert_eq!(cache.bytes(), 2 * one);
        assert!(!cache.remove_if_same(b"a", &a), "replaced: not removed");
        assert!(cache.remove_if_same(b"a", &a2));
        assert_eq!(cache.bytes(), one);
        assert_eq!(
            cache.insert(b"c", response(3, next), epoch, T0),
            Insertion::Inserted
        );
        cache.clear();
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }

    #[test]
    fn due_lists_entries_under_the_margin_and_removal_spares_replaced_ones() {
        let cache = OcspCache::new(10, usize::MAX);
        let epoch = cache.epoch();
        let soon = response(1, T0 + Duration::minutes(10));
        let later = response(2, T0 + Duration::minutes(50));
        cache.insert(b"soon", Arc::clone(&soon), epoch, T0);
        cache.insert(b"later", later, epoch, T0);
        let (noted, due) = cache.due(T0, Duration::minutes(30));
        assert_eq!(noted, epoch);
        assert_eq!(due.len(), 1);
        assert_eq!(&*due[0].request, b"soon");
        // Replaced meanwhile: the removal leaves the new response alone.
        cache.insert(b"soon", response(3, T0 + Duration::hours(1)), epoch, T0);
        assert!(!cache.remove_if_same(b"soon", &soon));
        assert_eq!(hit(&cache, b"soon", T0), Some(vec![0x30, 3]));
    }

    #[test]
    fn max_age_never_reaches_past_next_update() {
        let r = response(1, T0 + Duration::seconds(100));
        let f = r.freshness().unwrap();
        assert_eq!(f.max_age(T0), 100);
        assert_eq!(f.max_age(T0 + Duration::milliseconds(500)), 99);
        assert_eq!(f.max_age(T0 + Duration::seconds(100)), 0);
        assert_eq!(f.max_age(T0 + Duration::days(1)), 0);
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        assert_eq!(
            http_date(datetime!(1994-11-06 08:49:37 UTC)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            http_date(datetime!(2026-03-01 14:00:00 +04:00)),
            "Sun, 01 Mar 2026 10:00:00 GMT"
        );
    }

    #[test]
    fn the_etag_is_a_quoted_digest_of_the_bytes() {
        let a = response(1, T0 + Duration::hours(1));
        let b = response(2, T0 + Duration::hours(1));
        let tag = &a.freshness().unwrap().etag;
        assert_eq!(tag.len(), 34);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert_ne!(tag, &b.freshness().unwrap().etag);
    }
}
