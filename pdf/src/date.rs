//! Dates in PDF (ISO 32000-1 §7.9.4): `D:YYYYMMDDHHmmSSOHH'mm'`.

use time::OffsetDateTime;

/// `time` as a PDF date, with its offset.
pub fn pdf_date(time: OffsetDateTime) -> String {
    let offset = time.offset();
    let (hours, minutes, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}{sign}{:02}'{:02}'",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        hours.unsigned_abs(),
        minutes.unsigned_abs(),
    )
}

/// A PDF date (`D:YYYYMMDDHHmmSSOHH'mm'`, §7.9.4), as far as it goes.
pub fn parse_pdf_date(text: &str) -> Option<OffsetDateTime> {
    let text = text.strip_prefix("D:").unwrap_or(text);
    let digits =
        |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse::<u32>().ok());
    let year = digits(0..4)? as i32;
    let month = time::Month::try_from(digits(4..6).unwrap_or(1) as u8).ok()?;
    let day = digits(6..8).unwrap_or(1) as u8;
    let (hour, minute, second) = (
        digits(8..10).unwrap_or(0) as u8,
        digits(10..12).unwrap_or(0) as u8,
        digits(12..14).unwrap_or(0) as u8,
    );
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let local = date.with_hms(hour, minute, second).ok()?;
    let offset = match text.get(14..15) {
        Some(sign @ ("+" | "-")) => {
            let hours = digits(15..17).unwrap_or(0) as i8;
            let minutes = text
                .get(18..20)
                .and_then(|m| m.parse::<i8>().ok())
                .unwrap_or(0);
            let (hours, minutes) = if sign == "-" {
                (-hours, -minutes)
            } else {
                (hours, minutes)
            };
            time::UtcOffset::from_hms(hours, minutes, 0).ok()?
        }
        _ => time::UtcOffset::UTC,
    };
    Some(local.assume_offset(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_dates_carry_the_offset_and_read_back() {
        let time = time::macros::datetime!(2025-12-31 23:59:00 -03:30);
        assert_eq!(pdf_date(time), "D:20251231235900-03'30'");
        assert_eq!(parse_pdf_date(&pdf_date(time)), Some(time));
        assert_eq!(
            parse_pdf_date("D:2026"),
            Some(time::macros::datetime!(2026-01-01 00:00:00 UTC))
        );
        assert_eq!(parse_pdf_date("yesterday"), None);
    }
}
