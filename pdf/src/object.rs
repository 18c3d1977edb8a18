//! The PDF object model (ISO 32000-1 §7.3): the eight basic types, indirect references and
//! streams, and their serialization. The parser ([`crate::parse`]) reads into it and the
//! writers ([`crate::incremental`], [`crate::build`]) write from it.

use std::io::{self, Write};

/// An indirect object's number and generation (§7.3.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub number: u32,
    pub generation: u16,
}

impl ObjectId {
    pub const fn new(number: u32, generation: u16) -> ObjectId {
        ObjectId { number, generation }
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} R", self.number, self.generation)
    }
}

/// A PDF object.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    Null,
    Boolean(bool),
    Integer(i64),
    Real(f64),
    String(PdfString),
    Name(Name),
    Array(Vec<Object>),
    Dictionary(Dictionary),
    Stream(Stream),
    Reference(ObjectId),
}

impl Object {
    pub fn name(name: &str) -> Object {
        Object::Name(Name::new(name))
    }

    pub fn as_name(&self) -> Option<&[u8]> {
        match self {
            Object::Name(name) => Some(name.as_bytes()),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Object::Integer(value) => Some(*value),
            _ => None,
        }
    }

    pub fn as_reference(&self) -> Option<ObjectId> {
        match self {
            Object::Reference(id) => Some(*id),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Object]> {
        match self {
            Object::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_dictionary(&self) -> Option<&Dictionary> {
        match self {
            Object::Dictionary(dictionary) => Some(dictionary),
            Object::Stream(stream) => Some(&stream.dictionary),
            _ => None,
        }
    }

    pub fn as_string(&self) -> Option<&PdfString> {
        match self {
            Object::String(string) => Some(string),
            _ => None,
        }
    }

    /// The object's type in words, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Null => "null",
            Object::Boolean(_) => "boolean",
            Object::Integer(_) => "integer",
            Object::Real(_) => "real",
            Object::String(_) => "string",
            Object::Name(_) => "name",
            Object::Array(_) => "array",
            Object::Dictionary(_) => "dictionary",
            Object::Stream(_) => "stream",
            Object::Reference(_) => "reference",
        }
    }

    /// Writes the object in PDF syntax.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Object::Null => out.write_all(b"null"),
            Object::Boolean(true) => out.write_all(b"true"),
            Object::Boolean(false) => out.write_all(b"false"),
            Object::Integer(value) => write!(out, "{value}"),
            Object::Real(value) => write_real(*value, out),
            Object::String(string) => string.write_to(out),
            Object::Name(name) => name.write_to(out),
            Object::Array(items) => {
                out.write_all(b"[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b" ")?;
                    }
                    item.write_to(out)?;
                }
                out.write_all(b"]")
            }
            Object::Dictionary(dictionary) => dictionary.write_to(out),
            Object::Stream(stream) => stream.write_to(out),
            Object::Reference(id) => write!(out, "{} {} R", id.number, id.generation),
        }
    }

    /// The object in PDF syntax.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }
}

impl From<i64> for Object {
    fn from(value: i64) -> Object {
        Object::Integer(value)
    }
}

impl From<ObjectId> for Object {
    fn from(id: ObjectId) -> Object {
        Object::Reference(id)
    }
}

impl From<Dictionary> for Object {
    fn from(dictionary: Dictionary) -> Object {
        Object::Dictionary(dictionary)
    }
}

impl From<Name> for Object {
    fn from(name: Name) -> Object {
        Object::Name(name)
    }
}

impl From<PdfString> for Object {
    fn from(string: PdfString) -> Object {
        Object::String(string)
    }
}

impl From<Vec<Object>> for Object {
    fn from(items: Vec<Object>) -> Object {
        Object::Array(items)
    }
}

/// Reals are written in fixed notation (§7.3.3: no exponents), at most five decimals.
fn write_real(value: f64, out: &mut dyn Write) -> io::Result<()> {
    if !value.is_finite() {
        return out.write_all(b"0");
    }
    let text = format!("{value:.5}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    out.write_all(if text == "-0" { b"0" } else { text.as_bytes() })
}

/// A name (§7.3.5), kept as its bytes after `#xx` decoding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Vec<u8>);

impl Name {
    pub fn new(name: &str) -> Name {
        Name(name.as_bytes().to_vec())
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Name {
        Name(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(b"/")?;
        for &byte in &self.0 {
            if (0x21..=0x7e).contains(&byte) && !is_delimiter(byte) && byte != b'#' {
                out.write_all(&[byte])?;
            } else {
                write!(out, "#{byte:02X}")?;
            }
        }
        Ok(())
    }
}

/// A string (§7.3.4), with the form it is written in: literal `(…)` or hexadecimal `<…>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdfString {
    pub bytes: Vec<u8>,
    pub hex: bool,
}

impl PdfString {
    pub fn literal(bytes: impl Into<Vec<u8>>) -> PdfString {
        PdfString {
            bytes: bytes.into(),
            hex: false,
        }
    }

    pub fn hex(bytes: impl Into<Vec<u8>>) -> PdfString {
        PdfString {
            bytes: bytes.into(),
            hex: true,
        }
    }

    /// A text string (§7.9.2.2): PDFDocEncoding when ASCII, else UTF-16BE with a BOM.
    pub fn text(text: &str) -> PdfString {
        if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return PdfString::literal(text.as_bytes());
        }
        let mut bytes = vec![0xfe, 0xff];
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_be_bytes());
        }
        PdfString::hex(bytes)
    }

    /// The string read as a text string: UTF-16BE with a BOM, UTF-8 with a BOM (PDF 2.0), or
    /// PDFDocEncoding taken as Latin-1 (its printable ASCII part is the same).
    pub fn to_text(&self) -> String {
        let bytes = &self.bytes;
        if let Some(utf16) = bytes.strip_prefix(&[0xfe, 0xff]) {
            let units: Vec<u16> = utf16
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            return String::from_utf16_lossy(&units);
        }
        if let Some(utf8) = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]) {
            return String::from_utf8_lossy(utf8).into_owned();
        }
        bytes.iter().map(|&b| char::from(b)).collect()
    }

    fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.hex {
            out.write_all(b"<")?;
            for byte in &self.bytes {
                write!(out, "{byte:02X}")?;
            }
            return out.write_all(b">");
        }
        out.write_all(b"(")?;
        for &byte in &self.bytes {
            match byte {
                b'(' | b')' | b'\\' => out.write_all(&[b'\\', byte])?,
                b'\n' => out.write_all(b"\\n")?,
                b'\r' => out.write_all(b"\\r")?,
                0x20..=0x7e => out.write_all(&[byte])?,
                _ => write!(out, "\\{byte:03o}")?,
            }
        }
        out.write_all(b")")
    }
}

/// A dictionary (§7.3.7), keeping its keys in the order read or inserted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dictionary(Vec<(Name, Object)>);

impl Dictionary {
    pub fn new() -> Dictionary {
        Dictionary(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&Object> {
        self.0
            .iter()
            .find(|(name, _)| name.as_bytes() == key.as_bytes())
            .map(|(_, value)| value)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, replacing its value where it is already present.
    pub fn set(&mut self, key: &str, value: impl Into<Object>) {
        let value = value.into();
        match self
            .0
            .iter_mut()
            .find(|(name, _)| name.as_bytes() == key.as_bytes())
        {
            Some((_, slot)) => *slot = value,
            None => self.0.push((Name::new(key), value)),
        }
    }

    /// Inserts a key read from a file; a repeated key keeps its first value.
    pub(crate) fn insert_parsed(&mut self, key: Name, value: Object) {
        if !self.0.iter().any(|(name, _)| *name == key) {
            self.0.push((key, value));
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Object> {
        let index = self
            .0
            .iter()
            .position(|(name, _)| name.as_bytes() == key.as_bytes())?;
        Some(self.0.remove(index).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Name, &Object)> {
        self.0.iter().map(|(name, value)| (name, value))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key` when it is a name.
    pub fn name(&self, key: &str) -> Option<&[u8]> {
        self.get(key).and_then(Object::as_name)
    }

    /// Whether `/Type` is `type_name`.
    pub fn is_type(&self, type_name: &str) -> bool {
        self.name("Type") == Some(type_name.as_bytes())
    }

    fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(b"<<")?;
        for (name, value) in &self.0 {
            name.write_to(out)?;
            out.write_all(b" ")?;
            value.write_to(out)?;
        }
        out.write_all(b">>")
    }
}

/// A stream (§7.3.8): its dictionary and its data as stored (still encoded by its filters).
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    pub dictionary: Dictionary,
    pub data: StreamData,
}

/// Where a stream's data is: read into memory, or left in the file (large streams are never
/// read unless asked for).
#[derive(Clone, Debug, PartialEq)]
pub enum StreamData {
    Bytes(Vec<u8>),
    InFile { offset: u64, length: u64 },
}

impl Stream {
    /// A stream of `data` as is, with `/Length` set.
    pub fn new(mut dictionary: Dictionary, data: Vec<u8>) -> Stream {
        dictionary.set("Length", Object::Integer(data.len() as i64));
        Stream {
            dictionary,
            data: StreamData::Bytes(data),
        }
    }

    fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        let StreamData::Bytes(data) = &self.data else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a stream whose data is still in the file cannot be written",
            ));
        };
        let mut dictionary = self.dictionary.clone();
        dictionary.set("Length", Object::Integer(data.len() as i64));
        dictionary.write_to(out)?;
        out.write_all(b"\nstream\n")?;
        out.write_all(data)?;
        out.write_all(b"\nendstream")
    }
}

/// §7.2.2: the delimiter characters.
pub(crate) fn is_delimiter(byte: u8) -> bool {
    matches!(
        byte,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// §7.2.2: the white-space characters.
pub(crate) fn is_whitespace(byte: u8) -> bool {
    matches!(byte, 0 | b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_written_in_pdf_syntax() {
        let mut dictionary = Dictionary::new();
        dictionary.set("Type", Object::name("Sig"));
        dictionary.set("Name", Object::name("A b#"));
        dictionary.set("Reason", PdfString::literal("x (y) \\ z\n"));
        dictionary.set("Contents", PdfString::hex(vec![0, 0xab]));
        dictionary.set(
            "ByteRange",
            vec![Object::Integer(0), Object::Real(1.5), Object::Real(-2.0)],
        );
        dictionary.set("P", ObjectId::new(3, 0));
        assert_eq!(
            Object::Dictionary(dictionary).to_bytes(),
            b"<</Type /Sig/Name /A#20b#23/Reason (x \\(y\\) \\\\ z\\n)/Contents <00AB>\
              /ByteRange [0 1.5 -2]/P 3 0 R>>"
                .to_vec()
        );
    }

    #[test]
    fn text_strings_use_utf16_beyond_ascii() {
        let text = PdfString::text("Yaşayış yeri");
        assert!(text.hex);
        assert_eq!(&text.bytes[..2], &[0xfe, 0xff]);
        assert_eq!(text.to_text(), "Yaşayış yeri");
        assert_eq!(PdfString::text("Baku").bytes, b"Baku");
    }
}
