//! BER-TLV as PIV uses it (ISO/IEC 7816-4 §5.2, NIST SP 800-73-4 part 2 §3): tags of one to three
//! bytes, definite lengths of at most three length bytes. Everything here reads untrusted APDU data,
//! so it returns errors instead of panicking and bounds how many elements it reads.

/// The most elements [`parse_all`] reads from one buffer: PIV templates have a handful.
pub const MAX_ELEMENTS: usize = 64;

/// Why a buffer is not the BER-TLV expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvError {
    /// The buffer ended inside a tag, a length or a value.
    Truncated,
    /// A tag longer than three bytes, an indefinite length or a length of more than three bytes.
    Unsupported,
    /// More than [`MAX_ELEMENTS`] elements.
    TooManyElements,
}

/// One element: its tag (the tag bytes read as a big-endian number, e.g. `0x5FC105`) and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u32,
    pub value: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and the bytes after it.
pub fn parse_one(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (&first, mut rest) = input.split_first().ok_or(TlvError::Truncated)?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // Subsequent tag bytes follow while bit 8 is set; PIV uses at most three tag bytes.
        for count in 1.. {
            let (&byte, after) = rest.split_first().ok_or(TlvError::Truncated)?;
            rest = after;
            tag = (tag << 8) | u32::from(byte);
            if byte & 0x80 == 0 {
                break;
            }
            if count >= 2 {
                return Err(TlvError::Unsupported);
            }
        }
    }
    let (&length_byte, mut rest) = rest.split_first().ok_or(TlvError::Truncated)?;
    let length = if length_byte < 0x80 {
        usize::from(length_byte)
    } else {
        let count = usize::from(length_byte & 0x7F);
        if count == 0 || count > 3 {
            return Err(TlvError::Unsupported);
        }
        let bytes = rest.get(..count).ok_or(TlvError::Truncated)?;
        rest = &rest[count..];
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let value = rest.get(..length).ok_or(TlvError::Truncated)?;
    Ok((Tlv { tag, value }, &rest[length..]))
}

/// Reads every element of `input` (a sequence of TLVs with nothing else around them).
pub fn parse_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut elements = Vec::new();
    while !input.is_empty() {
        if elements.len() == MAX_ELEMENTS {
            return Err(TlvError::TooManyElements);
        }
        let (element, rest) = parse_one(input)?;
        elements.push(element);
        input = rest;
    }
    Ok(elements)
}

/// Reads `input` as exactly one element with `tag` and returns its value.
pub fn parse_single(input: &[u8], tag: u32) -> Option<&[u8]> {
    match parse_one(input) {
        Ok((element, rest)) if element.tag == tag && rest.is_empty() => Some(element.value),
        _ => None,
    }
}

/// The value of the first element with `tag` among `elements`.
pub fn find<'a>(elements: &[Tlv<'a>], tag: u32) -> Option<&'a [u8]> {
    elements.iter().find(|e| e.tag == tag).map(|e| e.value)
}

/// Encodes one element. Values longer than 16 MiB cannot occur here (APDUs are at most 64 KiB).
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    let tag_bytes = tag.to_be_bytes();
    let skip = tag_bytes.iter().take(3).take_while(|&&b| b == 0).count();
    out.extend_from_slice(&tag_bytes[skip..]);
    let length = value.len();
    if length < 0x80 {
        out.push(length as u8);
    } else if length <= 0xFF {
        out.extend_from_slice(&[0x81, length as u8]);
    } else if length <= 0xFFFF {
        out.push(0x82);
        out.extend_from_slice(&(length as u16).to_be_bytes());
    } else {
        out.push(0x83);
        out.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_parses_one_two_and_three_byte_tags_with_long_lengths() {
        let long = vec![0xAB; 300];
        for (tag, value) in [
            (0x53u32, &b"x"[..]),
            (0x7F49, &long[..]),
            (0x5FC105, &long[..200]),
        ] {
            let encoded = encode(tag, value);
            let (element, rest) = parse_one(&encoded).unwrap();
            assert_eq!((element.tag, element.value), (tag, value));
            assert!(rest.is_empty());
        }
        assert_eq!(encode(0x5FC105, &[])[..4], [0x5F, 0xC1, 0x05, 0x00]);
        assert_eq!(encode(0x70, &long)[..4], [0x70, 0x82, 0x01, 0x2C]);
    }

    #[test]
    fn refuses_truncated_and_oversized_input_without_panicking() {
        assert_eq!(parse_one(&[]), Err(TlvError::Truncated));
        assert_eq!(parse_one(&[0x53]), Err(TlvError::Truncated));
        assert_eq!(parse_one(&[0x53, 0x05, 1, 2]), Err(TlvError::Truncated));
        assert_eq!(
            parse_one(&[0x53, 0x84, 0, 0, 0, 1]),
            Err(TlvError::Unsupported)
        );
        assert_eq!(parse_one(&[0x53, 0x80]), Err(TlvError::Unsupported));
        assert_eq!(
            parse_one(&[0x5F, 0xC1, 0x85, 0x01, 0]),
            Err(TlvError::Unsupported)
        );
        assert_eq!(parse_one(&[0x5F, 0xC1]), Err(TlvError::Truncated));
        assert_eq!(parse_one(&[0x53, 0x82, 0x01]), Err(TlvError::Truncated));
        let many: Vec<u8> = [0x80u8, 0x00].repeat(MAX_ELEMENTS + 1);
        assert_eq!(parse_all(&many), Err(TlvError::TooManyElements));
        // Every prefix of a valid encoding fails cleanly.
        let encoded = encode(0x7C, &[encode(0x82, &[]), encode(0x81, &[7; 40])].concat());
        for end in 0..encoded.len() {
            assert!(parse_one(&encoded[..end]).is_err());
        }
    }

    #[test]
    fn reads_a_template_and_finds_its_children_in_any_order() {
        let template = [encode(0x82, &[]), encode(0x81, b"hash")].concat();
        let children = parse_all(&template).unwrap();
        assert_eq!(find(&children, 0x81), Some(&b"hash"[..]));
        assert_eq!(find(&children, 0x82), Some(&[][..]));
        assert_eq!(find(&children, 0x85), None);
        assert_eq!(
            parse_single(&encode(0x7C, &template), 0x7C),
            Some(&template[..])
        );
        assert_eq!(
            parse_single(&[encode(0x7C, &[]), vec![0]].concat(), 0x7C),
            None
        );
    }
}
