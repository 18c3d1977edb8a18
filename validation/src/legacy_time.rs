//! Dates before 1970 in certificates and CRLs. RFC 5280 §4.1.2.5.1 gives UTCTime years 1950
//! to 2049, but the pinned `der` 0.7 represents no time before the Unix epoch and refuses the
//! whole structure (PKITS 4.2.3 has a notBefore in 1950). Such a structure is decoded from a
//! copy in which every UTCTime or GeneralizedTime before 1970 reads 1970-01-01T00:00:00Z —
//! the same length, so every offset stays put, and for validation at any time from 1970 on
//! the verdict is the same ("before the validation time"). Signatures are always checked over
//! the original bytes.

use der::{Decode, Header, Reader, SliceReader, Tag};

/// Deepest nesting walked.
const MAX_DEPTH: usize = 32;

/// A copy of `der` with pre-1970 times replaced, or `None` when it has none.
pub(crate) fn clamp_pre_1970_times(der: &[u8]) -> Option<Vec<u8>> {
    let mut copy = der.to_vec();
    let mut changed = false;
    walk(&mut copy, 0, &mut changed).ok()?;
    changed.then_some(copy)
}

fn walk(buf: &mut [u8], depth: usize, changed: &mut bool) -> Result<(), der::Error> {
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = buf.get(pos..).ok_or(der::ErrorKind::Failed)?;
        let mut reader = SliceReader::new(rest)?;
        let header = Header::decode(&mut reader)?;
        let start = pos + usize::try_from(reader.position())?;
        let end = start + usize::try_from(header.length)?;
        let value = buf.get_mut(start..end).ok_or(der::ErrorKind::Failed)?;
        if header.tag.is_constructed() {
            if depth < MAX_DEPTH {
                walk(value, depth + 1, changed)?;
            }
        } else if header.tag == Tag::UtcTime && value.len() == 13 {
            if value
                .get(..2)
                .is_some_and(|y| y >= b"50".as_slice() && y <= b"69".as_slice())
            {
                value.copy_from_slice(b"700101000000Z");
                *changed = true;
            }
        } else if header.tag == Tag::GeneralizedTime
            && value.len() == 15
            && value.get(..4).is_some_and(|y| y < b"1970".as_slice())
        {
            value.copy_from_slice(b"19700101000000Z");
            *changed = true;
        }
        pos = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1950_utctime_reads_1970_and_later_ones_stay() {
        // SEQUENCE { UTCTime 500101120100Z, UTCTime 301231083000Z }
        let mut der = vec![0x30, 30, 0x17, 13];
        der.extend_from_slice(b"500101120100Z");
        der.extend_from_slice(&[0x17, 13]);
        der.extend_from_slice(b"301231083000Z");
        let clamped = clamp_pre_1970_times(&der).unwrap();
        assert_eq!(&clamped[4..17], b"700101000000Z");
        assert_eq!(&clamped[19..], b"301231083000Z");
        assert_eq!(clamp_pre_1970_times(&clamped), None);
    }
}
