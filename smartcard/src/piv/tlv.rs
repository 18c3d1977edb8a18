//! BER-TLV as the PIV card edge uses it (SP 800-73-4 part 2 §2.3, ISO/IEC 7816-4 §5.2 and
//! ISO/IEC 8825-1): tags of one to three bytes, definite lengths of at most three length bytes.
//!
//! Everything here reads card answers, which are untrusted: every length is checked against the
//! bytes actually present, no value is assumed, and the number of items read is capped.

use std::fmt;

/// More items than any PIV structure holds; a longer list is a hostile or broken answer.
const MAX_ITEMS: usize = 64;

/// One tag-length-value item, borrowing its value from the parsed buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag with its class and constructed bits, e.g. `0x7C`, `0x5FC105`, `0x7F49`.
    pub tag: u32,
    pub value: &'a [u8],
}

/// Why a buffer is not valid BER-TLV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlvError {
    /// The buffer ends inside a tag, a length or a value.
    Truncated {
        tag: Option<u32>,
        need: usize,
        have: usize,
    },
    /// Indefinite length (`80`) or a length in four or more bytes (`84` …), which PIV never uses.
    UnsupportedLength { first_byte: u8 },
    /// A tag longer than three bytes.
    TagTooLong,
    /// More than [`MAX_ITEMS`] items at one level.
    TooManyItems,
    /// A value too long to encode in three length bytes.
    ValueTooLong(usize),
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvError::Truncated {
                tag: Some(tag),
                need,
                have,
            } => write!(
                f,
                "TLV {tag:X} announces {need} bytes but only {have} follow"
            ),
            TlvError::Truncated {
                tag: None,
                need,
                have,
            } => {
                write!(f, "TLV header cut short: needs {need} bytes, {have} left")
            }
            TlvError::UnsupportedLength { first_byte } => {
                write!(f, "unsupported TLV length form {first_byte:02X}")
            }
            TlvError::TagTooLong => f.write_str("TLV tag longer than three bytes"),
            TlvError::TooManyItems => write!(f, "more than {MAX_ITEMS} TLV items"),
            TlvError::ValueTooLong(n) => write!(f, "a {n}-byte value does not fit a TLV"),
        }
    }
}

/// Reads one TLV from the front of `input`, returning it and the bytes after it.
pub fn parse_one(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (tag, rest) = parse_tag(input)?;
    let (len, rest) = parse_length(rest)?;
    if rest.len() < len {
        return Err(TlvError::Truncated {
            tag: Some(tag),
            need: len,
            have: rest.len(),
        });
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

/// Reads a whole buffer as a sequence of TLVs (one level: constructed values are not entered).
pub fn parse_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut items = Vec::new();
    while !input.is_empty() {
        if items.len() == MAX_ITEMS {
            return Err(TlvError::TooManyItems);
        }
        let (item, rest) = parse_one(input)?;
        items.push(item);
        input = rest;
    }
    Ok(items)
}

/// The value of the first item tagged `tag` in `input` (one level), or `None`.
pub fn find(input: &[u8], tag: u32) -> Result<Option<&[u8]>, TlvError> {
    Ok(parse_all(input)?
        .into_iter()
        .find(|t| t.tag == tag)
        .map(|t| t.value))
}

/// Reads `input` as exactly one TLV tagged `tag`, with nothing after it.
pub fn expect_single(input: &[u8], tag: u32) -> Result<&[u8], String> {
    let (item, rest) = parse_one(input).map_err(|e| e.to_string())?;
    if item.tag != tag {
        return Err(format!("expected tag {tag:X}, found {:X}", item.tag));
    }
    if !rest.is_empty() {
        return Err(format!("{} unexpected bytes after tag {tag:X}", rest.len()));
    }
    Ok(item.value)
}

fn parse_tag(input: &[u8]) -> Result<(u32, &[u8]), TlvError> {
    let Some((&first, mut rest)) = input.split_first() else {
        return Err(TlvError::Truncated {
            tag: None,
            need: 1,
            have: 0,
        });
    };
    let mut tag = u32::from(first);
    // Low five bits all set: the tag number continues in the next bytes, each with bit 8 set
    // except the last (ISO/IEC 8825-1 §8.1.2.4).
    if first & 0x1F == 0x1F {
        let mut bytes = 1;
        loop {
            let Some((&b, r)) = rest.split_first() else {
                return Err(TlvError::Truncated {
                    tag: None,
                    need: bytes + 1,
                    have: bytes,
                });
            };
            bytes += 1;
            if bytes > 3 {
                return Err(TlvError::TagTooLong);
            }
            tag = (tag << 8) | u32::from(b);
            rest = r;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    Ok((tag, rest))
}

fn parse_length(input: &[u8]) -> Result<(usize, &[u8]), TlvError> {
    let Some((&first, rest)) = input.split_first() else {
        return Err(TlvError::Truncated {
            tag: None,
            need: 1,
            have: 0,
        });
    };
    let count = match first {
        0x00..=0x7F => return Ok((usize::from(first), rest)),
        0x81 => 1,
        0x82 => 2,
        0x83 => 3,
        _ => return Err(TlvError::UnsupportedLength { first_byte: first }),
    };
    if rest.len() < count {
        return Err(TlvError::Truncated {
            tag: None,
            need: count,
            have: rest.len(),
        });
    }
    let (bytes, rest) = rest.split_at(count);
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok((len, rest))
}

/// Appends the TLV `tag`/`value` to `out` with the shortest definite length.
pub fn encode(tag: u32, value: &[u8], out: &mut Vec<u8>) -> Result<(), TlvError> {
    let tag_bytes = tag.to_be_bytes();
    let skip = tag_bytes.iter().take_while(|&&b| b == 0).count().min(3);
    out.extend_from_slice(tag_bytes.get(skip..).unwrap_or(&[0]));
    encode_length(value.len(), out)?;
    out.extend_from_slice(value);
    Ok(())
}

fn encode_length(len: usize, out: &mut Vec<u8>) -> Result<(), TlvError> {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        0x1_0000..=0xFF_FFFF => {
            out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8])
        }
        _ => return Err(TlvError::ValueTooLong(len)),
    }
    Ok(())
}

/// `tag`/`value` as a new buffer.
pub fn tlv(tag: u32, value: &[u8]) -> Result<Vec<u8>, TlvError> {
    let mut out = Vec::with_capacity(value.len() + 8);
    encode(tag, value, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_long_and_multi_byte_tags() {
        let mut buf = Vec::new();
        encode(0x7F49, &[0x86, 0x01, 0x04], &mut buf).unwrap();
        encode(0x5FC105, &[0xAA; 300], &mut buf).unwrap();
        encode(0x53, &[], &mut buf).unwrap();
        let items = parse_all(&buf).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0],
            Tlv {
                tag: 0x7F49,
                value: &[0x86, 0x01, 0x04]
            }
        );
        assert_eq!(items[1].tag, 0x5FC105);
        assert_eq!(items[1].value.len(), 300);
        assert_eq!(&buf[6..12], &[0x5F, 0xC1, 0x05, 0x82, 0x01, 0x2C]);
        assert_eq!(
            items[2],
            Tlv {
                tag: 0x53,
                value: &[]
            }
        );
        assert_eq!(find(&buf, 0x53).unwrap(), Some(&[][..]));
        assert_eq!(find(&buf, 0x70).unwrap(), None);
    }

    #[test]
    fn length_forms_round_trip() {
        for len in [0usize, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x1_0000] {
            let value = vec![0x5A; len];
            let encoded = tlv(0x70, &value).unwrap();
            let (item, rest) = parse_one(&encoded).unwrap();
            assert_eq!((item.tag, item.value.len(), rest.len()), (0x70, len, 0));
        }
        assert_eq!(tlv(0x70, &[0; 2]).unwrap(), vec![0x70, 0x02, 0, 0]);
        assert_eq!(&tlv(0x70, &[0; 0x80]).unwrap()[..3], &[0x70, 0x81, 0x80]);
        assert_eq!(
            &tlv(0x70, &[0; 0x100]).unwrap()[..4],
            &[0x70, 0x82, 0x01, 0x00]
        );
    }

    #[test]
    fn truncated_inputs_are_errors_not_panics() {
        let good = tlv(0x7C, &[0x82, 0x03, 1, 2, 3]).unwrap();
        for cut in 0..good.len() {
            let r = parse_all(&good[..cut]);
            if cut == 0 {
                assert_eq!(r.unwrap(), vec![]);
            } else {
                assert!(
                    matches!(r, Err(TlvError::Truncated { .. })),
                    "cut {cut}: {r:?}"
                );
            }
        }
        // A multi-byte tag cut inside the tag, a long length cut inside the length.
        assert!(matches!(
            parse_one(&[0x5F]),
            Err(TlvError::Truncated { .. })
        ));
        assert!(matches!(
            parse_one(&[0x5F, 0xC1]),
            Err(TlvError::Truncated { .. })
        ));
        assert!(matches!(
            parse_one(&[0x53, 0x82, 0x01]),
            Err(TlvError::Truncated { .. })
        ));
    }

    #[test]
    fn huge_or_odd_lengths_are_refused() {
        // Announces 16 MiB with three bytes present.
        assert_eq!(
            parse_one(&[0x53, 0x83, 0xFF, 0xFF, 0xFF, 1, 2, 3]),
            Err(TlvError::Truncated {
                tag: Some(0x53),
                need: 0xFF_FFFF,
                have: 3
            })
        );
        assert_eq!(
            parse_one(&[0x53, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(TlvError::UnsupportedLength { first_byte: 0x84 })
        );
        assert_eq!(
            parse_one(&[0x53, 0x80, 0x00, 0x00]),
            Err(TlvError::UnsupportedLength { first_byte: 0x80 })
        );
        assert_eq!(
            parse_one(&[0x5F, 0xC1, 0x85, 0x05, 0x00]),
            Err(TlvError::TagTooLong)
        );
        assert_eq!(
            parse_one(&[0x53, 0xFF]),
            Err(TlvError::UnsupportedLength { first_byte: 0xFF })
        );
    }

    #[test]
    fn endless_item_lists_are_capped() {
        let many = [0x01u8, 0x00].repeat(MAX_ITEMS + 1);
        assert_eq!(parse_all(&many), Err(TlvError::TooManyItems));
        assert_eq!(parse_all(&many[..2 * MAX_ITEMS]).unwrap().len(), MAX_ITEMS);
    }

    #[test]
    fn expect_single_refuses_other_tags_and_trailing_bytes() {
        assert_eq!(expect_single(&[0x53, 0x01, 0xAA], 0x53).unwrap(), &[0xAA]);
        assert!(expect_single(&[0x54, 0x01, 0xAA], 0x53).is_err());
        assert!(expect_single(&[0x53, 0x01, 0xAA, 0x00], 0x53).is_err());
        assert!(expect_single(&[], 0x53).is_err());
    }
}
