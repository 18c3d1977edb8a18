//! Rate limits on session creation: one budget per relying party (across all phones) and one
//! per relying party and phone number, so that a relying party flooding the service or one
//! phone spends its own budgets and nobody else's.
//!
//! Each budget is a token bucket kept as one time, GCRA's "theoretical arrival time" (ITU-T
//! I.371): a request at `now` is allowed while that time is at most `(burst - 1) × interval`
//! ahead of `now`, and moves it `interval` later. A budget whose time has passed is full and
//! is the same as no entry, so idle entries are dropped; the number of (relying party, phone)
//! entries is capped. The limits live in memory: each serving process enforces its own.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use imza_http::rate::nanos;
pub use imza_http::rate::RateLimit;

/// A refused request: which budget, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The relying party's budget across all phones.
    RelyingParty { retry_after: Duration },
    /// The relying party's budget for this phone number.
    Phone { retry_after: Duration },
    /// The limiter tracks as many (relying party, phone) pairs as it may; one expires within
    /// `retry_after`.
    Full { retry_after: Duration },
}

impl Refusal {
    pub fn retry_after(&self) -> Duration {
        match *self {
            Refusal::RelyingParty { retry_after }
            | Refusal::Phone { retry_after }
            | Refusal::Full { retry_after } => retry_after,
        }
    }
}

/// How often, at least, idle entries are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The shortest time between two sweeps (each visits every entry).
const MIN_SWEEP_GAP: Duration = Duration::from_secs(1);

/// The session-creation limits of one service.
#[derive(Debug)]
pub(crate) struct SessionLimiter {
    relying_party: RateLimit,
    phone: RateLimit,
    max_tracked: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Theoretical arrival time (Unix nanoseconds) per relying party. Only authenticated
    /// relying parties get here, so there are as many as are registered at most.
    parties: HashMap<String, i128>,
    /// The same per (relying party, phone number); at most `max_tracked`.
    phones: HashMap<(String, String), i128>,
    /// No entry of `phones` expires before this (as of the last sweep and insert since).
    earliest_expiry: i128,
    last_sweep: Option<i128>,
}

impl SessionLimiter {
    pub(crate) fn new(relying_party: RateLimit, phone: RateLimit, max_tracked: usize) -> Self {
        SessionLimiter {
            relying_party,
            phone,
            max_tracked: max_tracked.max(1),
            state: Mutex::new(State {
                parties: HashMap::new(),
                phones: HashMap::new(),
                earliest_expiry: i128::MAX,
                last_sweep: None,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change below is a single insert or retain: consistent whatever panicked.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one request from both budgets of `relying_party` for `phone` at `now`, or from
    /// neither and says which refused (the longer wait when both do).
    pub(crate) fn admit(
        &self,
        relying_party: &str,
        phone: &str,
        now: OffsetDateTime,
    ) -> Result<(), Refusal> {
        let now = now.unix_timestamp_nanos();
        let mut state = self.state();
        state.sweep_if_due(now, false);
        let key = (relying_party.to_string(), phone.to_string());
        let tracked = state.phones.get(&key).copied();
        if tracked.is_none() && state.phones.len() >= self.max_tracked {
            state.sweep_if_due(now, true);
            if state.phones.len() >= self.max_tracked {
                return Err(Refusal::Full {
                    retry_after: nanos(state.earliest_expiry - now),
                });
            }
        }
        let stored_party = state.parties.get(relying_party).copied();
        let (party_now, party) = self.relying_party.take(stored_party, now);
        let (pair_now, pair) = self.phone.take(tracked, now);
        if let (Ok(party), Ok(pair)) = (party, pair) {
            state.parties.insert(key.0.clone(), party);
            state.phones.insert(key, pair);
            state.earliest_expiry = state.earliest_expiry.min(pair);
            return Ok(());
        }
        // Refused: nothing taken, nothing new tracked; only times a clock step put out of
        // reach are brought back.
        if stored_party.is_some() {
            state.parties.insert(key.0.clone(), party_now);
        }
        if tracked.is_some() {
            state.phones.insert(key, pair_now);
            state.earliest_expiry = state.earliest_expiry.min(pair_now);
        }
        let party_wait = party.err().unwrap_or(0);
        let pair_wait = pair.err().unwrap_or(0);
        Err(if party_wait >= pair_wait {
            Refusal::RelyingParty {
                retry_after: nanos(party_wait),
            }
        } else {
            Refusal::Phone {
                retry_after: nanos(pair_wait),
            }
        })
    }

    /// How many (relying party, phone) pairs are tracked now.
    pub(crate) fn tracked_phones(&self) -> usize {
        self.state().phones.len()
    }
}

impl State {
    /// Drops the entries whose budget is full again: every [`SWEEP_EVERY`], or when `full`
    /// (the table is at its cap) and an entry may have expired; never twice within
    /// [`MIN_SWEEP_GAP`].
    fn sweep_if_due(&mut self, now: i128, full: bool) {
        let since = self.last_sweep.map(|at| now - at);
        let gap_kept = since.is_none_or(|s| s < 0 || s >= MIN_SWEEP_GAP.as_nanos() as i128);
        let periodic = since.is_none_or(|s| s < 0 || s >= SWEEP_EVERY.as_nanos() as i128);
        if !(gap_kept && (periodic || (full && now >= self.earliest_expiry))) {
            return;
        }
        self.parties.retain(|_, arrival| *arrival > now);
        self.phones.retain(|_, arrival| *arrival > now);
        self.earliest_expiry = self.phones.values().copied().min().unwrap_or(i128::MAX);
        self.last_sweep = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imza_http::rate::MAX_INTERVAL;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);

    fn at(ms: i64) -> OffsetDateTime {
        T0 + time::Duration::milliseconds(ms)
    }

    #[test]
    fn a_burst_passes_then_one_request_per_interval() {
        let limiter = SessionLimiter::new(
            RateLimit::per_second(10, 3),
            RateLimit::per_minute(600, 100),
            100,
        );
        for _ in 0..3 {
            limiter.admit("a", "+1", at(0)).unwrap();
        }
        let refused = limiter.admit("a", "+2", at(0)).unwrap_err();
        assert_eq!(
            refused,
            Refusal::RelyingParty {
                retry_after: Duration::from_millis(100)
            }
        );
        // Another relying party's budget is its own.
        limiter.admit("b", "+1", at(0)).unwrap();
        limiter.admit("a", "+2", at(100)).unwrap();
        assert!(limiter.admit("a", "+2", at(150)).is_err());
        limiter.admit("a", "+2", at(200)).unwrap();
        // A long quiet spell refills the burst, no more.
        for _ in 0..3 {
            limiter.admit("a", "+3", at(10_000)).unwrap();
        }
        assert!(limiter.admit("a", "+3", at(10_000)).is_err());
    }

    #[test]
    fn one_relying_party_flooding_a_phone_spends_only_its_own_budget_for_it() {
        let limiter = SessionLimiter::new(
            RateLimit::per_second(1000, 1000),
            RateLimit::per_minute(6, 2),
            100,
        );
        limiter.admit("flood", "+1", at(0)).unwrap();
        limiter.admit("flood", "+1", at(0)).unwrap();
        let refused = limiter.admit("flood", "+1", at(0)).unwrap_err();
        assert_eq!(
            refused,
            Refusal::Phone {
                retry_after: Duration::from_secs(10)
            }
        );
        // Refused requests take nothing: the relying party's budget is untouched by them.
        for _ in 0..100 {
            assert!(limiter.admit("flood", "+1", at(1)).is_err());
        }
        limiter.admit("other", "+1", at(1)).unwrap();
        limiter.admit("flood", "+2", at(1)).unwrap();
        limiter.admit("flood", "+1", at(10_000)).unwrap();
    }

    #[test]
    fn idle_entries_expire_and_the_table_is_capped() {
        let limiter = SessionLimiter::new(
            RateLimit::per_second(1_000_000, 1_000_000),
            RateLimit::per_second(1, 1),
            50,
        );
        for i in 0..50 {
            limiter.admit("a", &format!("+{i}"), at(0)).unwrap();
        }
        assert_eq!(limiter.tracked_phones(), 50);
        // Full: a new phone waits until the first entries expire (1 s); a tracked one is
        // limited by its own budget only.
        assert_eq!(
            limiter.admit("a", "+new", at(500)).unwrap_err(),
            Refusal::Full {
                retry_after: Duration::from_millis(500)
            }
        );
        assert_eq!(
            limiter.admit("a", "+0", at(500)).unwrap_err(),
            Refusal::Phone {
                retry_after: Duration::from_millis(500)
            }
        );
        limiter.admit("a", "+new", at(1_000)).unwrap();
        assert_eq!(limiter.tracked_phones(), 1);
        // Idle entries also go with the periodic sweep.
        limiter.admit("a", "+later", at(100_000)).unwrap();
        assert_eq!(limiter.tracked_phones(), 1);
    }

    #[test]
    fn a_clock_stepped_back_does_not_lock_a_budget_out() {
        let limiter =
            SessionLimiter::new(RateLimit::per_second(1, 1), RateLimit::per_second(1, 1), 10);
        limiter.admit("a", "+1", at(3_600_000)).unwrap();
        // An hour back: the wait is at most one interval, not an hour.
        let refused = limiter.admit("a", "+1", at(0)).unwrap_err();
        assert!(
            refused.retry_after() <= Duration::from_secs(1),
            "{refused:?}"
        );
        limiter.admit("a", "+1", at(1_000)).unwrap();
    }

    #[test]
    fn limits_outside_their_range_are_named() {
        assert!(RateLimit::per_second(100, 1000).check("x").is_ok());
        let zero_burst = RateLimit::per_second(1, 0)
            .check("relying party")
            .unwrap_err();
        assert!(zero_burst.starts_with("relying party: "), "{zero_burst}");
        let slow = RateLimit {
            burst: 1,
            interval: MAX_INTERVAL * 2,
        };
        assert!(slow.check("phone").is_err());
    }
}
