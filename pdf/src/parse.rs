//! The object parser (ISO 32000-1 §7.2–§7.3) over bytes in memory, with limits: nesting depth,
//! string and name sizes, and nothing read past the buffer it is given. A stream's data is
//! never copied here: the parser stops after the `stream` keyword and says where the data
//! starts, and the file layer decides what to read.

use crate::error::PdfError;
use crate::object::{is_delimiter, is_whitespace, Dictionary, Name, Object, ObjectId, PdfString};

/// Deepest nesting of arrays and dictionaries accepted in one object.
pub const MAX_NESTING: usize = 64;

/// The parser's position in a buffer.
pub(crate) struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
}

/// An object read after `N G obj`, with where its stream data starts (just after the EOL
/// that follows `stream`) when it is a stream's dictionary.
#[derive(Clone)]
pub(crate) struct IndirectObject {
    pub id: ObjectId,
    pub object: Object,
    pub stream_data_start: Option<usize>,
}

impl<'a> Parser<'a> {
    pub fn new(data: &'a [u8]) -> Parser<'a> {
        Parser { data, pos: 0 }
    }

    pub fn at(data: &'a [u8], pos: usize) -> Parser<'a> {
        Parser { data, pos }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> &'a [u8] {
        &self.data[self.pos.min(self.data.len())..]
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn error(&self, what: impl Into<String>) -> PdfError {
        PdfError::Syntax {
            offset: self.pos as u64,
            what: what.into(),
        }
    }

    /// Skips white space and comments.
    pub fn skip_whitespace(&mut self) {
        while let Some(byte) = self.peek() {
            if is_whitespace(byte) {
                self.pos += 1;
            } else if byte == b'%' {
                while let Some(byte) = self.peek() {
                    if byte == b'\r' || byte == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// Skips white space only (a `%%EOF` marker is not skipped as a comment).
    pub fn skip_whitespace_only(&mut self) {
        while self.peek().is_some_and(is_whitespace) {
            self.pos += 1;
        }
    }

    /// A regular-character token (a keyword or a number), without consuming it.
    fn peek_token(&self) -> &'a [u8] {
        let rest = self.remaining();
        let end = rest
            .iter()
            .position(|&b| is_whitespace(b) || is_delimiter(b))
            .unwrap_or(rest.len());
        &rest[..end]
    }

    /// Consumes `keyword` (after white space) or fails.
    pub fn expect_keyword(&mut self, keyword: &[u8]) -> Result<(), PdfError> {
        self.skip_whitespace();
        if self.peek_token() == keyword {
            self.pos += keyword.len();
            Ok(())
        } else {
            Err(self.error(format!("expected '{}'", String::from_utf8_lossy(keyword))))
        }
    }

    /// Consumes `keyword` if it comes next.
    pub fn accept_keyword(&mut self, keyword: &[u8]) -> bool {
        self.skip_whitespace();
        if self.peek_token() == keyword {
            self.pos += keyword.len();
            true
        } else {
            false
        }
    }

    /// An unsigned integer token.
    pub fn unsigned(&mut self) -> Result<u64, PdfError> {
        self.skip_whitespace();
        let token = self.peek_token();
        if token.is_empty() || token.len() > 19 || !token.iter().all(u8::is_ascii_digit) {
            return Err(self.error("expected a non-negative integer"));
        }
        self.pos += token.len();
        Ok(token
            .iter()
            .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0')))
    }

    /// `N G obj` and the object after it; for a stream, the position its data starts at.
    pub fn indirect_object(&mut self) -> Result<IndirectObject, PdfError> {
        let number = self.unsigned()?;
        let generation = self.unsigned()?;
        let id = object_id(number, generation).ok_or_else(|| self.error("object number"))?;
        self.expect_keyword(b"obj")?;
        let object = self.object()?;
        self.skip_whitespace();
        if self.peek_token() == b"stream" {
            let Object::Dictionary(_) = object else {
                return Err(self.error("'stream' after something that is not a dictionary"));
            };
            self.pos += b"stream".len();
            // §7.3.8.1: the keyword is followed by CRLF or LF (a lone CR is tolerated).
            match (self.peek(), self.data.get(self.pos + 1).copied()) {
                (Some(b'\r'), Some(b'\n')) => self.pos += 2,
                (Some(b'\n'), _) | (Some(b'\r'), _) => self.pos += 1,
                _ => return Err(self.error("'stream' not followed by an end of line")),
            }
            return Ok(IndirectObject {
                id,
                object,
                stream_data_start: Some(self.pos),
            });
        }
        Ok(IndirectObject {
            id,
            object,
            stream_data_start: None,
        })
    }

    /// One direct object (a reference `N G R` is read as a reference).
    pub fn object(&mut self) -> Result<Object, PdfError> {
        self.object_at_depth(0)
    }

    fn object_at_depth(&mut self, depth: usize) -> Result<Object, PdfError> {
        if depth > MAX_NESTING {
            return Err(PdfError::Limit {
                what: format!("arrays and dictionaries nested more than {MAX_NESTING} deep"),
            });
        }
        self.skip_whitespace();
        let Some(byte) = self.peek() else {
            return Err(self.error("unexpected end of data"));
        };
        match byte {
            b'/' => {
                self.pos += 1;
                Ok(Object::Name(self.name()?))
            }
            b'(' => {
                self.pos += 1;
                Ok(Object::String(self.literal_string()?))
            }
            b'<' if self.data.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                Ok(Object::Dictionary(self.dictionary(depth)?))
            }
            b'<' => {
                self.pos += 1;
                Ok(Object::String(self.hex_string()?))
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_whitespace();
                    match self.peek() {
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Object::Array(items));
                        }
                        None => return Err(self.error("unterminated array")),
                        _ => items.push(self.object_at_depth(depth + 1)?),
                    }
                }
            }
            _ => self.keyword_or_number(),
        }
    }

    fn dictionary(&mut self, depth: usize) -> Result<Dictionary, PdfError> {
        let mut dictionary = Dictionary::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(b'>') if self.data.get(self.pos + 1) == Some(&b'>') => {
                    self.pos += 2;
                    return Ok(dictionary);
                }
                Some(b'/') => {
                    self.pos += 1;
                    let key = self.name()?;
                    let value = self.object_at_depth(depth + 1)?;
                    dictionary.insert_parsed(key, value);
                }
                None => return Err(self.error("unterminated dictionary")),
                _ => return Err(self.error("a dictionary key that is not a name")),
            }
        }
    }

    fn keyword_or_number(&mut self) -> Result<Object, PdfError> {
        let token = self.peek_token();
        match token {
            b"true" => {
                self.pos += 4;
                return Ok(Object::Boolean(true));
            }
            b"false" => {
                self.pos += 5;
                return Ok(Object::Boolean(false));
            }
            b"null" => {
                self.pos += 4;
                return Ok(Object::Null);
            }
            _ => {}
        }
        if token.is_empty() || token.len() > 32 {
            return Err(self.error("unexpected token"));
        }
        let text = std::str::from_utf8(token).map_err(|_| self.error("unexpected token"))?;
        if token.iter().all(u8::is_ascii_digit) {
            // Perhaps `N G R`.
            let start = self.pos;
            self.pos += token.len();
            if let Some(id) = self.reference_tail(text) {
                return Ok(Object::Reference(id));
            }
            self.pos = start + token.len();
            return text
                .parse::<i64>()
                .map(Object::Integer)
                .map_err(|_| self.error("integer out of range"));
        }
        self.pos += token.len();
        if let Ok(value) = text.parse::<i64>() {
            return Ok(Object::Integer(value));
        }
        // §7.3.3: reals are digits with one period and an optional sign; no exponents.
        let unsigned = text.trim_start_matches(['+', '-']);
        if !unsigned.is_empty()
            && unsigned.len() + 1 >= text.len()
            && unsigned.bytes().filter(|&b| b == b'.').count() == 1
            && unsigned.bytes().all(|b| b == b'.' || b.is_ascii_digit())
        {
            let value = text
                .trim_start_matches('+')
                .parse::<f64>()
                .or_else(|_| format!("{text}0").parse::<f64>())
                .map_err(|_| self.error("malformed number"))?;
            return Ok(Object::Real(value));
        }
        self.pos -= token.len();
        Err(self.error(format!("unexpected token '{}'", text)))
    }

    /// After an integer `number`: ` G R` makes it a reference; otherwise nothing is consumed.
    fn reference_tail(&mut self, number: &str) -> Option<ObjectId> {
        let start = self.pos;
        let generation = self.unsigned().ok();
        let reference = generation.filter(|_| self.accept_keyword(b"R"));
        match reference {
            Some(generation) => object_id(number.parse().ok()?, generation).or_else(|| {
                self.pos = start;
                None
            }),
            None => {
                self.pos = start;
                None
            }
        }
    }

    /// A name after its `/`, with `#xx` decoded (§7.3.5).
    fn name(&mut self) -> Result<Name, PdfError> {
        let mut bytes = Vec::new();
        while let Some(byte) = self.peek() {
            if is_whitespace(byte) || is_delimiter(byte) {
                break;
            }
            self.pos += 1;
            if byte == b'#' {
                let hex = self
                    .data
                    .get(self.pos..self.pos + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| self.error("a name with a bad #xx escape"))?;
                self.pos += 2;
                bytes.push(hex);
            } else {
                bytes.push(byte);
            }
            if bytes.len() > 127 * 4 {
                return Err(PdfError::Limit {
                    what: "a name longer than 508 bytes".into(),
                });
            }
        }
        Ok(Name::from_bytes(bytes))
    }

    /// A literal string after its `(` (§7.3.4.2).
    fn literal_string(&mut self) -> Result<PdfString, PdfError> {
        let mut bytes = Vec::new();
        let mut open = 1usize;
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            match byte {
                b'(' => {
                    open += 1;
                    bytes.push(byte);
                }
                b')' => {
                    open -= 1;
                    if open == 0 {
                        return Ok(PdfString::literal(bytes));
                    }
                    bytes.push(byte);
                }
                b'\\' => {
                    let Some(escaped) = self.peek() else {
                        return Err(self.error("unterminated string"));
                    };
                    self.pos += 1;
                    match escaped {
                        b'n' => bytes.push(b'\n'),
                        b'r' => bytes.push(b'\r'),
                        b't' => bytes.push(b'\t'),
                        b'b' => bytes.push(0x08),
                        b'f' => bytes.push(0x0c),
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut value = u32::from(escaped - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(digit @ b'0'..=b'7') => {
                                        self.pos += 1;
                                        value = value * 8 + u32::from(digit - b'0');
                                    }
                                    _ => break,
                                }
                            }
                            bytes.push((value & 0xff) as u8);
                        }
                        other => bytes.push(other),
                    }
                }
                _ => bytes.push(byte),
            }
        }
    }

    /// A hexadecimal string after its `<` (§7.3.4.3): white space ignored, an odd final digit
    /// taken as followed by 0.
    fn hex_string(&mut self) -> Result<PdfString, PdfError> {
        // The common case, digits alone up to `>` (a signature's /Contents: tens of kB),
        // decoded in one pass; whitespace or an odd count take the byte-by-byte way.
        let rest = &self.data[self.pos..];
        if let Some(end) = rest.iter().position(|b| *b == b'>') {
            let digits = &rest[..end];
            if let Some(bytes) = decode_hex(digits) {
                self.pos += end + 1;
                return Ok(PdfString::hex(bytes));
            }
        }
        let mut bytes = Vec::new();
        let mut high: Option<u8> = None;
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("unterminated hexadecimal string"));
            };
            self.pos += 1;
            if byte == b'>' {
                if let Some(high) = high {
                    bytes.push(high << 4);
                }
                return Ok(PdfString::hex(bytes));
            }
            if is_whitespace(byte) {
                continue;
            }
            let digit = hex_digit(byte)
                .ok_or_else(|| self.error("a non-hexadecimal digit in a hexadecimal string"))?;
            match high.take() {
                Some(high) => bytes.push(high << 4 | digit),
                None => high = Some(digit),
            }
        }
    }
}

/// `digits` (an even number of hexadecimal digits, nothing else) decoded.
pub fn decode_hex(digits: &[u8]) -> Option<Vec<u8>> {
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        bytes.push(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?);
    }
    Some(bytes)
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn object_id(number: u64, generation: u64) -> Option<ObjectId> {
    Some(ObjectId::new(
        u32::try_from(number).ok()?,
        u16::try_from(generation).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<Object, PdfError> {
        Parser::new(text).object()
    }

    #[test]
    fn reads_every_basic_type() {
        let object = parse(
            b"<< /A 1 /B -2.5 /C .5 /D (a\\(b\\)\\101\\\nc) /E <41 4> /F [1 0 R 2 true null]\
              /G /N#41me /H << /I false >> >>",
        )
        .unwrap();
        let dictionary = object.as_dictionary().unwrap();
        assert_eq!(dictionary.get("A"), Some(&Object::Integer(1)));
        assert_eq!(dictionary.get("B"), Some(&Object::Real(-2.5)));
        assert_eq!(dictionary.get("C"), Some(&Object::Real(0.5)));
        assert_eq!(
            dictionary
                .get("D")
                .and_then(Object::as_string)
                .unwrap()
                .bytes,
            b"a(b)Ac"
        );
        assert_eq!(
            dictionary
                .get("E")
                .and_then(Object::as_string)
                .unwrap()
                .bytes,
            vec![0x41, 0x40]
        );
        assert_eq!(
            dictionary.get("F"),
            Some(&Object::Array(vec![
                Object::Reference(ObjectId::new(1, 0)),
                Object::Integer(2),
                Object::Boolean(true),
                Object::Null
            ]))
        );
        assert_eq!(dictionary.name("G"), Some(&b"NAme"[..]));
    }

    #[test]
    fn round_trips_what_it_writes() {
        let text = b"<</Type /Sig/Contents <00AB>/ByteRange [0 10 20 30]/M (D:2026)/R 4 0 R>>";
        assert_eq!(parse(text).unwrap().to_bytes(), text.to_vec());
    }

    #[test]
    fn hex_strings_read_alike_with_or_without_whitespace() {
        let bytes = |text: &[u8]| parse(text).unwrap().as_string().unwrap().bytes.clone();
        assert_eq!(bytes(b"<0aFf19>"), vec![0x0a, 0xff, 0x19]);
        assert_eq!(bytes(b"<0a F\nf 19>"), vec![0x0a, 0xff, 0x19]);
        assert_eq!(bytes(b"<0aF>"), vec![0x0a, 0xf0]);
        assert_eq!(bytes(b"<>"), Vec::<u8>::new());
        let mut parser = Parser::new(b"<0aff> 7");
        parser.object().unwrap();
        assert_eq!(parser.object().unwrap(), Object::Integer(7));
    }

    #[test]
    fn finds_where_stream_data_starts() {
        let text = b"7 0 obj\n<< /Length 3 >>\nstream\r\nabc\nendstream\nendobj";
        let indirect = Parser::new(text).indirect_object().unwrap();
        assert_eq!(indirect.id, ObjectId::new(7, 0));
        assert_eq!(&text[indirect.stream_data_start.unwrap()..][..3], b"abc");
    }

    #[test]
    fn refuses_deep_nesting_and_garbage_without_panicking() {
        let deep = [b"[".repeat(10_000), b"]".repeat(10_000)].concat();
        assert!(matches!(parse(&deep), Err(PdfError::Limit { .. })));
        for bad in [
            &b""[..],
            b"<<",
            b"(unterminated",
            b"<4G>",
            b"<< 1 2 >>",
            b"/#4",
            b"[1 2",
            b"1.2.3",
            b"99999999999999999999999",
            b"endobj",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
