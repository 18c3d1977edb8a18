//! Time: a [`Clock`] passed in (never read deep inside, so tests fix it), and conversions
//! between `time::OffsetDateTime`, RFC 3339 text and X.509 `Time` (RFC 5280 §4.1.2.5:
//! UTCTime through 2049, GeneralizedTime from 2050, always whole seconds in UTC).

use der::asn1::{GeneralizedTime, UtcTime};
use der::DateTime;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_cert::time::Time;

use crate::CoreError;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock stopped at one instant, for tests and for re-running an operation "as of" a time.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

/// Truncates to whole seconds in UTC, the precision certificates and CRLs carry.
pub fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t)
}

fn der_date_time(t: OffsetDateTime) -> Result<DateTime, CoreError> {
    let secs = u64::try_from(whole_seconds(t).unix_timestamp())
        .map_err(|_| CoreError::malformed("time", "before 1970"))?;
    DateTime::from_unix_duration(std::time::Duration::from_secs(secs)).map_err(CoreError::der)
}

/// X.509 `Time` as RFC 5280 §4.1.2.5 requires: UTCTime through 2049, else GeneralizedTime.
pub fn x509_time(t: OffsetDateTime) -> Result<Time, CoreError> {
    let dt = der_date_time(t)?;
    if dt.year() < 2050 {
        Ok(Time::UtcTime(
            UtcTime::from_date_time(dt).map_err(CoreError::der)?,
        ))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

/// GeneralizedTime, e.g. for invalidityDate (RFC 5280 §5.3.2).
pub fn generalized_time(t: OffsetDateTime) -> Result<GeneralizedTime, CoreError> {
    Ok(GeneralizedTime::from_date_time(der_date_time(t)?))
}

/// The instant an X.509 `Time` stands for.
pub fn from_x509_time(t: &Time) -> OffsetDateTime {
    let secs = t.to_unix_duration().as_secs();
    OffsetDateTime::from_unix_timestamp(secs as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2026-11-21T10:00:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    whole_seconds(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Parses RFC 3339 text (`2026-11-21T10:00:00Z`, offsets allowed).
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, CoreError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(whole_seconds)
        .map_err(|e| CoreError::malformed("RFC 3339 time", format!("{s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates_before_2050_are_utctime_and_after_generalized() {
        assert!(matches!(
            x509_time(datetime!(2049-12-31 23:59:59 UTC)).unwrap(),
            Time::UtcTime(_)
        ));
        assert!(matches!(
            x509_time(datetime!(2050-01-01 0:00 UTC)).unwrap(),
            Time::GeneralTime(_)
        ));
        let t = datetime!(2026-11-21 10:00:00.5 UTC);
        assert_eq!(from_x509_time(&x509_time(t).unwrap()), whole_seconds(t));
    }

    #[test]
    fn rfc3339_round_trips() {
        let t = parse_rfc3339("2026-11-21T12:00:00+04:00").unwrap();
        assert_eq!(rfc3339(t), "2026-11-21T08:00:00Z");
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
