//! The TSA's check that its clock can be trusted before it stamps (RFC 3161 §2.2 and ETSI
//! EN 319 421 §7.7.2: a TSA must not issue tokens when its time is out of sync or unknown).
//!
//! The check is a hook: a chrony or NTP query, a comparison with a reference clock, or a test's
//! closure. A failing check refuses every request with `timeNotAvailable`, or `systemFailure`
//! when the check itself could not run.

use time::OffsetDateTime;

use crate::{SystemFault, TsaError};

/// Why the clock cannot be trusted now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockFault {
    /// The time source is lost or out of sync (answered with `timeNotAvailable`).
    Unsynchronised(String),
    /// The check could not be carried out (answered with `systemFailure`).
    CheckFailed(String),
}

impl From<ClockFault> for TsaError {
    fn from(fault: ClockFault) -> TsaError {
        match fault {
            ClockFault::Unsynchronised(why) => TsaError::TimeNotAvailable(why),
            ClockFault::CheckFailed(why) => {
                TsaError::SystemFailure(SystemFault::ClockCheckFailed(why))
            }
        }
    }
}

/// Says whether the TSA may stamp at `now`. Called once per request: keep it cheap (cache
/// the state of an NTP daemon rather than querying it each time).
pub trait ClockCheck: Send + Sync {
    fn check(&self, now: OffsetDateTime) -> Result<(), ClockFault>;
}

impl<F> ClockCheck for F
where
    F: Fn(OffsetDateTime) -> Result<(), ClockFault> + Send + Sync,
{
    fn check(&self, now: OffsetDateTime) -> Result<(), ClockFault> {
        self(now)
    }
}

/// Trusts the system clock without checking: for tests and demos, where no time source is
/// configured.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrustSystemClock;

impl ClockCheck for TrustSystemClock {
    fn check(&self, _now: OffsetDateTime) -> Result<(), ClockFault> {
        Ok(())
    }
}
