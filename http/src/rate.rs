//! Rate limits as budgets (the generic cell rate algorithm): `burst` requests at once after a
//! quiet spell, then one more every `interval`. Each caller keeps a budget's time per key
//! (a relying party, a phone number, a citizen, a client address) in its own bounded table;
//! this is the arithmetic they share (the signature service's session limits, the portal's
//! login limits).

use std::time::Duration;

/// A budget: `burst` requests at once after a quiet spell, then one more every `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub interval: Duration,
}

/// The largest burst and the longest interval a [`RateLimit`] may have (larger ones are
/// configuration mistakes, and would take the arithmetic far from where it is exercised).
pub const MAX_BURST: u32 = 1_000_000;
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

impl RateLimit {
    /// `per_second` requests a second on average, `burst` at once.
    pub fn per_second(per_second: u32, burst: u32) -> RateLimit {
        RateLimit {
            burst,
            interval: Duration::from_secs(1) / per_second.max(1),
        }
    }

    /// `per_minute` requests a minute on average, `burst` at once.
    pub fn per_minute(per_minute: u32, burst: u32) -> RateLimit {
        RateLimit {
            burst,
            interval: Duration::from_secs(60) / per_minute.max(1),
        }
    }

    /// Why this limit cannot be used, if it cannot; `what` names it in the message.
    pub fn check(&self, what: &str) -> Result<(), String> {
        if !(1..=MAX_BURST).contains(&self.burst) {
            return Err(format!("{what}: the burst must be 1 to {MAX_BURST}"));
        }
        if self.interval.is_zero() || self.interval > MAX_INTERVAL {
            return Err(format!(
                "{what}: the rate must allow between one request a day and one a nanosecond"
            ));
        }
        Ok(())
    }

    fn interval_ns(&self) -> i128 {
        self.interval
            .clamp(Duration::from_nanos(1), MAX_INTERVAL)
            .as_nanos() as i128
    }

    /// How far ahead of now the theoretical arrival time may be for a request to pass.
    fn tolerance_ns(&self) -> i128 {
        i128::from(self.burst.clamp(1, MAX_BURST) - 1) * self.interval_ns()
    }

    /// The budget's time (nanoseconds since the epoch) brought within reach of `now`, and its
    /// time after a request at `now` or how long until one would pass (nanoseconds).
    pub fn take(&self, stored: Option<i128>, now: i128) -> (i128, Result<i128, i128>) {
        let tolerance = self.tolerance_ns();
        // Never further ahead than a request can put it: a clock stepped back does not lock
        // the budget out for the size of the step (the caller stores the clamped time).
        let arrival = stored
            .unwrap_or(now)
            .clamp(now, now + tolerance + self.interval_ns());
        let outcome = if arrival - now <= tolerance {
            Ok(arrival + self.interval_ns())
        } else {
            Err(arrival - now - tolerance)
        };
        (arrival, outcome)
    }
}

/// A wait in nanoseconds as a [`Duration`] (zero when negative).
pub fn nanos(wait: i128) -> Duration {
    Duration::from_nanos(u64::try_from(wait.max(0)).unwrap_or(u64::MAX))
}
