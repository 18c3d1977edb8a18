//! What the fuzz targets share: one fixed "now" (so that a run is repeatable) and the framing
//! that turns one fuzz input into several messages.

use time::OffsetDateTime;

/// The validation time of every target: fixed, so that an input that crashed once crashes
/// again. 2025-06-01T00:00:00Z, inside the validity of most test vectors' certificates.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_748_736_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Splits `data` into messages, each a two-byte big-endian length and that many bytes (the
/// last one cut short where the input ends): how a target gets a card's successive answers.
pub fn frames(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let [hi, lo, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (frame, after) = rest.split_at(len);
        out.push(frame.to_vec());
        data = after;
    }
    out
}

