//! `TSTInfo`, the content a time-stamp token signs (RFC 3161 §2.4.2), and its `genTime`.
//!
//! Mirrors `x509_tsp::TstInfo`, but with a `genTime` that reads fractional seconds: RFC 3161
//! allows them (`YYYYMMDDhhmmss[.s...]Z`) and real TSAs send them, while der 0.7's
//! `GeneralizedTime` accepts whole seconds only.

use std::fmt;

use const_oid::ObjectIdentifier;
use der::asn1::Int;
use der::{DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag, Writer};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::Extensions;
use x509_tsp::{Accuracy, MessageImprint, TspVersion};

/// ```text
/// TSTInfo ::= SEQUENCE  {
///    version                      INTEGER  { v1(1) },
///    policy                       TSAPolicyId,
///    messageImprint               MessageImprint,
///      -- MUST have the same value as the similar field in
///      -- TimeStampReq
///    serialNumber                 INTEGER,
///     -- Time-Stamping users MUST be ready to accommodate integers
///     -- up to 160 bits.
///    genTime                      GeneralizedTime,
///    accuracy                     Accuracy                 OPTIONAL,
///    ordering                     BOOLEAN             DEFAULT FALSE,
///    nonce                        INTEGER                  OPTIONAL,
///      -- MUST be present if the similar field was present
///      -- in TimeStampReq.  In that case it MUST have the same value.
///    tsa                          [0] GeneralName          OPTIONAL,
///    extensions                   [1] IMPLICIT Extensions   OPTIONAL  }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct TstInfo {
    pub version: TspVersion,
    pub policy: ObjectIdentifier,
    pub message_imprint: MessageImprint,
    pub serial_number: Int,
    pub gen_time: GenTime,
    #[asn1(optional = "true")]
    pub accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    pub ordering: bool,
    #[asn1(optional = "true")]
    pub nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// `genTime` (RFC 3161 §2.4.2): a GeneralizedTime in UTC, `Z` always present, fractional
/// seconds optional but without trailing zeros and without a bare decimal point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GenTime(OffsetDateTime);

/// `YYYYMMDDhhmmss` + `.` + up to 9 fraction digits + `Z`.
const MAX_GEN_TIME_LEN: usize = 14 + 1 + 9 + 1;

impl GenTime {
    /// `t` in UTC, keeping sub-second precision down to nanoseconds.
    pub fn new(t: OffsetDateTime) -> GenTime {
        GenTime(t.to_offset(time::UtcOffset::UTC))
    }

    /// `t` truncated to its whole second, the precision imza's TSA stamps with.
    ///
    /// Truncating, never rounding up, keeps genTime at or before the moment it stamps: a
    /// token can never claim a time later than a revocation, a validation or another token
    /// made after it within the same second, so proof-of-existence comparisons never run
    /// backwards; the accuracy of one second covers the fraction dropped. Whole seconds also
    /// keep tokens readable by parsers that reject fractions (der 0.7 among them).
    pub fn whole_second(t: OffsetDateTime) -> GenTime {
        GenTime(imza_core::clock::whole_seconds(t))
    }

    pub fn to_offset_date_time(self) -> OffsetDateTime {
        self.0
    }

    fn text(self) -> String {
        let t = self.0;
        let mut s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        let nanos = t.nanosecond();
        if nanos != 0 {
            let fraction = format!("{nanos:09}");
            s.push('.');
            s.push_str(fraction.trim_end_matches('0'));
        }
        s.push('Z');
        s
    }

    fn parse(text: &[u8]) -> Option<GenTime> {
        if text.len() < 15 || text.len() > MAX_GEN_TIME_LEN || text.last() != Some(&b'Z') {
            return None;
        }
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = text.get(range)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        let year = i32::try_from(digits(0..4)?).ok()?;
        let month = Month::try_from(u8::try_from(digits(4..6)?).ok()?).ok()?;
        let day = u8::try_from(digits(6..8)?).ok()?;
        let hour = u8::try_from(digits(8..10)?).ok()?;
        let minute = u8::try_from(digits(10..12)?).ok()?;
        let second = u8::try_from(digits(12..14)?).ok()?;
        let body = &text[14..text.len() - 1];
        let nanos = match body {
            [] => 0,
            [b'.', fraction @ ..] => {
                // X.690 §11.7.3: no trailing zeros, and no decimal point without digits.
                if fraction.is_empty() || fraction.last() == Some(&b'0') {
                    return None;
                }
                let value = digits(15..14 + body.len())?;
                value * 10u32.pow(9 - u32::try_from(fraction.len()).ok()?)
            }
            _ => return None,
        };
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
        Some(GenTime(PrimitiveDateTime::new(date, time).assume_utc()))
    }
}

impl fmt::Display for GenTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&imza_core::clock::rfc3339(self.0))?;
        if self.0.nanosecond() != 0 {
            write!(f, " (+{} ns)", self.0.nanosecond())?;
        }
        Ok(())
    }
}

impl FixedTag for GenTime {
    const TAG: Tag = Tag::GeneralizedTime;
}

impl<'a> DecodeValue<'a> for GenTime {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let len = usize::try_from(header.length)?;
        if len > MAX_GEN_TIME_LEN {
            return Err(Self::TAG.length_error());
        }
        let bytes = reader.read_slice(header.length)?;
        GenTime::parse(bytes).ok_or_else(|| Self::TAG.value_error())
    }
}

impl EncodeValue for GenTime {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.text().len())
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        let year = self.0.year();
        if !(0..=9999).contains(&year) {
            return Err(Self::TAG.value_error());
        }
        writer.write(self.text().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};
    use time::macros::datetime;

    fn decode(text: &str) -> der::Result<GenTime> {
        let mut der = vec![0x18, text.len() as u8];
        der.extend_from_slice(text.as_bytes());
        GenTime::from_der(&der)
    }

    #[test]
    fn gen_time_reads_whole_and_fractional_seconds() {
        assert_eq!(
            decode("20241008154032Z").unwrap().to_offset_date_time(),
            datetime!(2024-10-08 15:40:32 UTC)
        );
        assert_eq!(
            decode("20241008154032.25Z").unwrap().to_offset_date_time(),
            datetime!(2024-10-08 15:40:32.25 UTC)
        );
        for bad in [
            "20241008154032.250Z",
            "20241008154032.Z",
            "20241008154032",
            "2024100815403Z",
            "20241308154032Z",
            "2024100815403aZ",
            "20241008154032+0100",
            "20241008154032.1234567890Z",
        ] {
            assert!(decode(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn gen_time_round_trips() {
        for t in [
            datetime!(2026-11-21 10:00:00 UTC),
            datetime!(2026-11-21 10:00:00.5 UTC),
            datetime!(2026-11-21 10:00:00.000001 UTC),
        ] {
            let der = GenTime::new(t).to_der().unwrap();
            assert_eq!(GenTime::from_der(&der).unwrap().to_offset_date_time(), t);
        }
        assert_eq!(
            GenTime::whole_second(datetime!(2026-11-21 10:00:00.7 UTC))
                .to_der()
                .unwrap()[2..],
            *b"20261121100000Z"
        );
        assert_eq!(
            GenTime::whole_second(datetime!(2026-11-21 10:00:00.4 UTC))
                .to_der()
                .unwrap()[2..],
            *b"20261121100000Z"
        );
    }
}
