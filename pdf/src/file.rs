//! A PDF file read on demand (ISO 32000-1 §7.5): the cross-reference sections from the last
//! `startxref` back through `/Prev`, grouped into revisions by the `%%EOF` each one ends at,
//! and objects read by seeking to them — never the whole file in memory, so a 100 MB document
//! costs what its cross-reference and the objects asked for cost.
//!
//! Every read is bounded: cross-reference sections (count and entries), the bytes of one
//! object, decoded streams (a compression bomb stops at the limit), chains of references.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};

use flate2::read::ZlibDecoder;

use crate::error::PdfError;
use crate::object::{Dictionary, Object, ObjectId, Stream, StreamData};
use crate::parse::{IndirectObject, Parser};

/// Most cross-reference sections followed through `/Prev`.
pub const MAX_SECTIONS: usize = 4096;
/// Most entries in one cross-reference section.
pub const MAX_XREF_ENTRIES: u64 = 8_000_000;
/// Most bytes of one object's syntax (a stream's data aside).
pub const MAX_OBJECT_BYTES: usize = 8 << 20;
/// Most bytes a stream decodes to (cross-reference and object streams, and any stream read
/// for validation).
pub const MAX_DECODED_STREAM: usize = 64 << 20;
/// Most references followed to reach a direct object.
const MAX_REFERENCE_CHAIN: usize = 32;
/// Most bytes of syntax of the parsed objects a file keeps ([`PdfFile::object_at`]'s cache);
/// when full it starts again empty.
const PARSED_CACHE_BYTES: usize = 4 << 20;
/// Objects whose syntax is larger are parsed again when asked for again.
const MAX_CACHED_OBJECT_BYTES: usize = 256 << 10;

/// One cross-reference entry (§7.5.4, §7.5.8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XrefEntry {
    Free,
    InUse { offset: u64, generation: u16 },
    Compressed { stream: u32, index: u32 },
}

/// Whether a section is a classic table or a cross-reference stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XrefKind {
    Table,
    Stream,
}

/// One cross-reference section and the trailer that came with it.
#[derive(Clone, Debug)]
pub struct XrefSection {
    /// Where the section starts (what `startxref` or `/Prev` pointed at).
    pub offset: u64,
    pub kind: XrefKind,
    pub trailer: Dictionary,
    pub entries: BTreeMap<u32, XrefEntry>,
    /// Where the revision it closes ends: just after its `%%EOF` and the end of line after it.
    pub end: u64,
    /// Where `%%EOF` itself ends (a signed range may stop here or after the end of line).
    pub eof_end: u64,
}

/// A revision: the file up to `end`, described by every section ending there or before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision {
    pub end: u64,
    pub eof_end: u64,
}

/// A PDF opened for reading.
pub struct PdfFile<R> {
    reader: R,
    len: u64,
    /// Newest first, as the `/Prev` chain goes.
    sections: Vec<XrefSection>,
    revisions: Vec<Revision>,
    object_streams: HashMap<(u32, u64), Vec<u8>>,
    /// Indirect objects parsed, by offset: validation asks for the same ones again and again
    /// (a signature dictionary is read by the field walk, the change analysis of every later
    /// revision and its own checks). The file is append-only under a reader, so what is at an
    /// offset never changes; a stream's `/Length` is still resolved per revision.
    parsed: HashMap<u64, IndirectObject>,
    parsed_bytes: usize,
}

impl<R: Read + Seek> PdfFile<R> {
    /// Reads the header and every cross-reference section. An encrypted file is refused.
    pub fn open(mut reader: R) -> Result<PdfFile<R>, PdfError> {
        let len = reader.seek(SeekFrom::End(0))?;
        let mut file = PdfFile {
            reader,
            len,
            sections: Vec::new(),
            revisions: Vec::new(),
            object_streams: HashMap::new(),
            parsed: HashMap::new(),
            parsed_bytes: 0,
        };
        let head = file.read_at(0, 1024)?;
        if !is_pdf(&head) {
            return Err(PdfError::structure("no %PDF- header: this is not a PDF"));
        }
        let start = file.last_startxref()?;
        let mut visited = HashSet::new();
        let mut next = Some(start);
        while let Some(offset) = next {
            if !visited.insert(offset) {
                return Err(PdfError::structure(format!(
                    "the cross-reference chain loops back to byte {offset}"
                )));
            }
            if file.sections.len() >= MAX_SECTIONS {
                return Err(PdfError::Limit {
                    what: format!("more than {MAX_SECTIONS} cross-reference sections"),
                });
            }
            let section = file.read_section(offset)?;
            next = match section.trailer.get("Prev") {
                None => None,
                Some(Object::Integer(prev)) if *prev >= 0 => Some(*prev as u64),
                Some(_) => return Err(PdfError::structure("a /Prev that is not an offset")),
            };
            if section.trailer.contains("Encrypt") {
                return Err(PdfError::Encrypted);
            }
            file.sections.push(section);
        }
        let mut ends: Vec<Revision> = file
            .sections
            .iter()
            .map(|s| Revision {
                end: s.end,
                eof_end: s.eof_end,
            })
            .collect();
        ends.sort_by_key(|r| r.end);
        ends.dedup_by_key(|r| r.end);
        file.revisions = ends;
        if file
            .trailer()
            .get("Root")
            .and_then(Object::as_reference)
            .is_none()
        {
            return Err(PdfError::structure(
                "the trailer has no /Root catalog reference",
            ));
        }
        Ok(file)
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The revisions, oldest first.
    pub fn revisions(&self) -> &[Revision] {
        &self.revisions
    }

    /// The cross-reference sections, newest first.
    pub fn sections(&self) -> &[XrefSection] {
        &self.sections
    }

    /// The newest trailer.
    pub fn trailer(&self) -> &Dictionary {
        &self.sections[0].trailer
    }

    /// The newest revision's trailer at revision `revision`.
    pub fn trailer_in(&self, revision: usize) -> Option<&Dictionary> {
        let end = self.revisions.get(revision)?.end;
        self.sections
            .iter()
            .find(|s| s.end <= end)
            .map(|s| &s.trailer)
    }

    /// The newest section (where an incremental update's `/Prev` points).
    pub fn newest_section(&self) -> &XrefSection {
        &self.sections[0]
    }

    /// The object numbers the sections of `revision` (and no earlier one) define or free.
    pub fn changed_in(&self, revision: usize) -> BTreeMap<u32, XrefEntry> {
        let mut changed = BTreeMap::new();
        let Some(end) = self.revisions.get(revision).map(|r| r.end) else {
            return changed;
        };
        // Oldest section first so that the newest entry for a number wins.
        for section in self.sections.iter().rev().filter(|s| s.end == end) {
            changed.extend(section.entries.iter().map(|(n, e)| (*n, *e)));
        }
        changed
    }

    /// The entry that defines object `number` as of `revision`.
    pub fn entry_in(&self, revision: usize, number: u32) -> Option<XrefEntry> {
        let end = self.revisions.get(revision)?.end;
        self.sections
            .iter()
            .filter(|s| s.end <= end)
            .find_map(|s| s.entries.get(&number).copied())
    }

    /// The newest revision's index.
    pub fn last_revision(&self) -> usize {
        self.revisions.len() - 1
    }

    /// Object `id` in the newest revision (`Null` when absent or freed, §7.3.10).
    pub fn object(&mut self, id: ObjectId) -> Result<Object, PdfError> {
        self.object_in(self.last_revision(), id)
    }

    /// Object `id` as it was in `revision`.
    pub fn object_in(&mut self, revision: usize, id: ObjectId) -> Result<Object, PdfError> {
        match self.entry_in(revision, id.number) {
            None | Some(XrefEntry::Free) => Ok(Object::Null),
            Some(XrefEntry::InUse { offset, generation }) => {
                if generation != id.generation {
                    return Ok(Object::Null);
                }
                self.object_at(offset, Some(id), revision)
            }
            Some(XrefEntry::Compressed { stream, index }) => {
                if id.generation != 0 {
                    return Ok(Object::Null);
                }
                self.compressed_object(revision, stream, index, id)
            }
        }
    }

    /// Follows references from `object` to a direct object, as of `revision`.
    pub fn resolve_in(&mut self, revision: usize, object: &Object) -> Result<Object, PdfError> {
        let mut current = object.clone();
        for _ in 0..MAX_REFERENCE_CHAIN {
            match current {
                Object::Reference(id) => current = self.object_in(revision, id)?,
                direct => return Ok(direct),
            }
        }
        Err(PdfError::Limit {
            what: format!("a chain of more than {MAX_REFERENCE_CHAIN} references"),
        })
    }

    /// [`PdfFile::resolve_in`] in the newest revision.
    pub fn resolve(&mut self, object: &Object) -> Result<Object, PdfError> {
        self.resolve_in(self.last_revision(), object)
    }

    /// The newest catalog (`/Root`).
    pub fn catalog(&mut self) -> Result<(ObjectId, Dictionary), PdfError> {
        self.catalog_in(self.last_revision())
    }

    /// The catalog as of `revision`.
    pub fn catalog_in(&mut self, revision: usize) -> Result<(ObjectId, Dictionary), PdfError> {
        let id = self
            .trailer_in(revision)
            .and_then(|t| t.get("Root"))
            .and_then(Object::as_reference)
            .ok_or_else(|| PdfError::structure("the trailer has no /Root catalog reference"))?;
        match self.object_in(revision, id)? {
            Object::Dictionary(catalog) => Ok((id, catalog)),
            _ => Err(PdfError::structure(format!(
                "the catalog {id} is not a dictionary"
            ))),
        }
    }

    /// A stream's data as stored (still encoded), at most `limit` bytes.
    pub fn raw_stream_data(&mut self, stream: &Stream, limit: usize) -> Result<Vec<u8>, PdfError> {
        match &stream.data {
            StreamData::Bytes(bytes) => {
                if bytes.len() > limit {
                    return Err(too_large(limit));
                }
                Ok(bytes.clone())
            }
            StreamData::InFile { offset, length } => {
                if *length > limit as u64 {
                    return Err(too_large(limit));
                }
                self.read_exact_at(*offset, *length as usize)
            }
        }
    }

    /// A stream's data decoded by its filters (none, or `FlateDecode` with PNG or TIFF
    /// predictors), at most `limit` bytes decoded.
    pub fn decoded_stream(&mut self, stream: &Stream, limit: usize) -> Result<Vec<u8>, PdfError> {
        let raw = self.raw_stream_data(stream, limit.max(1 << 20))?;
        decode(&stream.dictionary, raw, limit)
    }

    /// Copies bytes `[offset, offset + length)` of the file to `out`.
    pub fn copy_range(
        &mut self,
        offset: u64,
        length: u64,
        out: &mut dyn Write,
    ) -> Result<(), PdfError> {
        if offset.checked_add(length).is_none_or(|end| end > self.len) {
            return Err(PdfError::structure(
                "a byte range beyond the end of the file",
            ));
        }
        self.reader.seek(SeekFrom::Start(offset))?;
        let copied = std::io::copy(&mut (&mut self.reader).take(length), out)?;
        if copied != length {
            return Err(PdfError::structure("the file ended early"));
        }
        Ok(())
    }

    /// Reads up to `max` bytes at `offset` (fewer at the end of the file).
    pub fn read_at(&mut self, offset: u64, max: usize) -> Result<Vec<u8>, PdfError> {
        if offset >= self.len {
            return Ok(Vec::new());
        }
        let length = (self.len - offset).min(max as u64) as usize;
        self.read_exact_at(offset, length)
    }

    fn read_exact_at(&mut self, offset: u64, length: usize) -> Result<Vec<u8>, PdfError> {
        if offset
            .checked_add(length as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(PdfError::structure(format!(
                "{length} bytes at byte {offset} run past the end of the file"
            )));
        }
        self.reader.seek(SeekFrom::Start(offset))?;
        let mut buffer = vec![0; length];
        self.reader.read_exact(&mut buffer)?;
        Ok(buffer)
    }

    /// The offset the last `startxref` in the file's final 1,024 bytes gives.
    fn last_startxref(&mut self) -> Result<u64, PdfError> {
        let tail_start = self.len.saturating_sub(1024);
        let tail = self.read_at(tail_start, 1024)?;
        let at = rfind(&tail, b"startxref")
            .ok_or_else(|| PdfError::structure("no startxref near the end of the file"))?;
        let mut parser = Parser::at(&tail, at + b"startxref".len());
        let offset = parser
            .unsigned()
            .map_err(|_| PdfError::structure("startxref is not followed by an offset"))?;
        if offset >= self.len {
            return Err(PdfError::structure(format!(
                "startxref points at byte {offset}, past the end of the file"
            )));
        }
        Ok(offset)
    }

    /// Reads the bytes at `offset` with `read`, widening the window while the object runs past
    /// it, up to [`MAX_OBJECT_BYTES`].
    fn parse_at<T>(
        &mut self,
        offset: u64,
        mut read: impl FnMut(&mut Parser<'_>) -> Result<T, PdfError>,
    ) -> Result<(T, Vec<u8>, usize), PdfError> {
        let mut window = 4096usize;
        loop {
            let data = self.read_at(offset, window)?;
            let mut parser = Parser::new(&data);
            match read(&mut parser) {
                Ok(value) => {
                    let end = parser.position();
                    return Ok((value, data, end));
                }
                Err(PdfError::Syntax { .. })
                    if data.len() == window
                        && window < MAX_OBJECT_BYTES
                        && offset + (window as u64) < self.len =>
                {
                    window = (window * 4).min(MAX_OBJECT_BYTES);
                }
                Err(PdfError::Syntax { offset: at, what }) => {
                    return Err(PdfError::Syntax {
                        offset: offset + at,
                        what,
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The indirect object at `offset`; `expected`, when given, must be the id found there.
    fn object_at(
        &mut self,
        offset: u64,
        expected: Option<ObjectId>,
        revision: usize,
    ) -> Result<Object, PdfError> {
        let indirect = match self.parsed.get(&offset) {
            Some(parsed) => parsed.clone(),
            None => {
                let (indirect, _, end) = self.parse_at(offset, |p| p.indirect_object())?;
                if end <= MAX_CACHED_OBJECT_BYTES {
                    if self.parsed_bytes + end > PARSED_CACHE_BYTES {
                        self.parsed.clear();
                        self.parsed_bytes = 0;
                    }
                    self.parsed.insert(offset, indirect.clone());
                    self.parsed_bytes += end;
                }
                indirect
            }
        };
        if let Some(expected) = expected {
            if indirect.id != expected {
                return Err(PdfError::structure(format!(
                    "the cross-reference points {expected} at byte {offset}, where {} is",
                    indirect.id
                )));
            }
        }
        match (indirect.object, indirect.stream_data_start) {
            (Object::Dictionary(dictionary), Some(start)) => {
                let data_offset = offset + start as u64;
                let length = match dictionary.get("Length") {
                    Some(Object::Integer(n)) if *n >= 0 => *n as u64,
                    Some(Object::Reference(id)) if Some(*id) != expected => {
                        match self.object_in(revision, *id)? {
                            Object::Integer(n) if n >= 0 => n as u64,
                            _ => {
                                return Err(PdfError::structure(
                                    "a stream /Length that is not a length",
                                ))
                            }
                        }
                    }
                    _ => return Err(PdfError::structure("a stream without a usable /Length")),
                };
                self.check_stream_end(data_offset, length)?;
                Ok(Object::Stream(Stream {
                    dictionary,
                    data: StreamData::InFile {
                        offset: data_offset,
                        length,
                    },
                }))
            }
            (object, _) => Ok(object),
        }
    }

    /// §7.3.8.1: the data is followed by an optional end of line and `endstream`.
    fn check_stream_end(&mut self, data_offset: u64, length: u64) -> Result<(), PdfError> {
        let end = data_offset
            .checked_add(length)
            .filter(|end| *end <= self.len)
            .ok_or_else(|| PdfError::structure("a stream /Length runs past the end of the file"))?;
        let after = self.read_at(end, 32)?;
        let mut parser = Parser::new(&after);
        parser.expect_keyword(b"endstream").map_err(|_| {
            PdfError::structure(format!(
                "the stream at byte {data_offset} does not end where its /Length says"
            ))
        })
    }

    fn compressed_object(
        &mut self,
        revision: usize,
        stream_number: u32,
        index: u32,
        id: ObjectId,
    ) -> Result<Object, PdfError> {
        let Some(XrefEntry::InUse { offset, .. }) = self.entry_in(revision, stream_number) else {
            return Err(PdfError::structure(format!(
                "object {id} is in object stream {stream_number}, which is not in the file"
            )));
        };
        let key = (stream_number, offset);
        if !self.object_streams.contains_key(&key) {
            let Object::Stream(stream) =
                self.object_at(offset, Some(ObjectId::new(stream_number, 0)), revision)?
            else {
                return Err(PdfError::structure(format!(
                    "object stream {stream_number} is not a stream"
                )));
            };
            if !stream.dictionary.is_type("ObjStm") {
                return Err(PdfError::structure(format!(
                    "object {stream_number} is not an object stream"
                )));
            }
            let decoded = self.decoded_stream(&stream, MAX_DECODED_STREAM)?;
            let first = stream
                .dictionary
                .get("First")
                .and_then(Object::as_integer)
                .filter(|n| *n >= 0 && (*n as usize) <= decoded.len())
                .ok_or_else(|| PdfError::structure("an object stream without a usable /First"))?;
            let mut header = first.to_le_bytes().to_vec();
            header.extend_from_slice(&decoded);
            if self.object_streams.values().map(Vec::len).sum::<usize>() > MAX_DECODED_STREAM {
                self.object_streams.clear();
            }
            self.object_streams.insert(key, header);
        }
        let Some(stored) = self.object_streams.get(&key) else {
            return Err(PdfError::structure("object stream cache"));
        };
        let first = i64::from_le_bytes(stored[..8].try_into().unwrap_or_default()) as usize;
        let decoded = &stored[8..];
        let mut header = Parser::new(&decoded[..first]);
        let mut found = None;
        for i in 0..=index {
            let number = header.unsigned()?;
            let relative = header.unsigned()?;
            if i == index {
                found = Some((number, relative));
            }
        }
        let Some((number, relative)) = found else {
            return Err(PdfError::structure("object stream index"));
        };
        if number != u64::from(id.number) {
            return Err(PdfError::structure(format!(
                "object stream {stream_number} holds object {number} where {id} was expected"
            )));
        }
        let start = first
            .checked_add(relative as usize)
            .filter(|s| *s <= decoded.len())
            .ok_or_else(|| PdfError::structure("an object stream offset past its end"))?;
        Parser::at(decoded, start).object()
    }

    /// Reads the cross-reference section at `offset` (a table or a stream, with a hybrid
    /// file's `/XRefStm`), and the `startxref … %%EOF` that ends its revision.
    fn read_section(&mut self, offset: u64) -> Result<XrefSection, PdfError> {
        let head = self.read_at(offset, 16)?;
        let mut section = if Parser::new(&head).accept_keyword(b"xref") {
            self.read_table(offset)?
        } else {
            self.read_xref_stream(offset)?
        };
        if let Some(Object::Integer(stream_offset)) = section.trailer.get("XRefStm") {
            let stream_offset = u64::try_from(*stream_offset)
                .map_err(|_| PdfError::structure("a negative /XRefStm"))?;
            let hybrid = self.read_xref_stream(stream_offset)?;
            for (number, entry) in hybrid.entries {
                let slot = section.entries.entry(number).or_insert(XrefEntry::Free);
                if *slot == XrefEntry::Free {
                    *slot = entry;
                }
            }
        }
        Ok(section)
    }

    fn read_table(&mut self, offset: u64) -> Result<XrefSection, PdfError> {
        let mut entries = BTreeMap::new();
        let mut position = offset;
        let mut data = self.read_at(position, 1 << 16)?;
        let mut parser = Parser::new(&data);
        parser.expect_keyword(b"xref")?;
        let mut total = 0u64;
        loop {
            parser.skip_whitespace();
            if parser.remaining().starts_with(b"trailer") {
                break;
            }
            let first = parser.unsigned()?;
            let count = parser.unsigned()?;
            total += count;
            if total > MAX_XREF_ENTRIES {
                return Err(PdfError::Limit {
                    what: format!(
                        "a cross-reference table of more than {MAX_XREF_ENTRIES} entries"
                    ),
                });
            }
            parser.skip_whitespace();
            // Re-read so that the whole subsection (20 bytes an entry) is in the window.
            position += parser.position() as u64;
            data = self.read_at(position, (count as usize) * 20 + (1 << 16))?;
            parser = Parser::new(&data);
            for i in 0..count {
                let entry_offset = parser.unsigned()?;
                let generation = parser.unsigned()?;
                parser.skip_whitespace();
                let kind = parser.remaining().first().copied();
                let number = first + i;
                let number = u32::try_from(number)
                    .map_err(|_| PdfError::structure("an object number beyond 2^32"))?;
                let entry = match kind {
                    Some(b'n') => XrefEntry::InUse {
                        offset: entry_offset,
                        generation: u16::try_from(generation)
                            .map_err(|_| PdfError::structure("a generation number beyond 65535"))?,
                    },
                    Some(b'f') => XrefEntry::Free,
                    _ => {
                        return Err(PdfError::structure(
                            "a cross-reference entry neither n nor f",
                        ))
                    }
                };
                parser.accept_keyword(if kind == Some(b'n') { b"n" } else { b"f" });
                // §7.5.4: the first entry of a table is the head of the free list.
                if !(number == 0 && entry == XrefEntry::Free) {
                    entries.insert(number, entry);
                }
            }
            position += parser.position() as u64;
            data = self.read_at(position, 1 << 16)?;
            parser = Parser::new(&data);
        }
        parser.expect_keyword(b"trailer")?;
        let trailer_start = position + parser.position() as u64;
        let (trailer, _, end) = self.parse_at(trailer_start, |p| p.object())?;
        let Object::Dictionary(trailer) = trailer else {
            return Err(PdfError::structure("a trailer that is not a dictionary"));
        };
        let (end, eof_end) = self.revision_end(trailer_start + end as u64, offset)?;
        Ok(XrefSection {
            offset,
            kind: XrefKind::Table,
            trailer,
            entries,
            end,
            eof_end,
        })
    }

    fn read_xref_stream(&mut self, offset: u64) -> Result<XrefSection, PdfError> {
        let Object::Stream(stream) = self.object_at(offset, None, usize::MAX)? else {
            return Err(PdfError::structure(format!(
                "byte {offset} holds neither a cross-reference table nor a stream"
            )));
        };
        if !stream.dictionary.is_type("XRef") {
            return Err(PdfError::structure(format!(
                "the object at byte {offset} is not a cross-reference stream"
            )));
        }
        let dictionary = &stream.dictionary;
        let widths: Vec<usize> = dictionary
            .get("W")
            .and_then(Object::as_array)
            .map(|w| {
                w.iter()
                    .map(|n| {
                        n.as_integer()
                            .filter(|n| (0..=8).contains(n))
                            .map(|n| n as usize)
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .and_then(|w| w.filter(|w| w.len() == 3))
            .ok_or_else(|| PdfError::structure("a cross-reference stream without a usable /W"))?;
        let size = dictionary
            .get("Size")
            .and_then(Object::as_integer)
            .filter(|n| (0..=MAX_XREF_ENTRIES as i64).contains(n))
            .ok_or_else(|| {
                PdfError::structure("a cross-reference stream without a usable /Size")
            })?;
        let index: Vec<(u64, u64)> = match dictionary.get("Index").and_then(Object::as_array) {
            Some(pairs) => pairs
                .chunks(2)
                .map(|pair| match pair {
                    [Object::Integer(a), Object::Integer(b)] if *a >= 0 && *b >= 0 => {
                        Ok((*a as u64, *b as u64))
                    }
                    _ => Err(PdfError::structure("a malformed /Index")),
                })
                .collect::<Result<_, _>>()?,
            None => vec![(0, size as u64)],
        };
        let row: usize = widths.iter().sum();
        let total: u64 = index.iter().map(|(_, count)| count).sum();
        if total > MAX_XREF_ENTRIES || row == 0 {
            return Err(PdfError::Limit {
                what: "an oversized cross-reference stream".into(),
            });
        }
        // A PNG predictor adds one byte a row.
        let data = self.decoded_stream(&stream, (total as usize).saturating_mul(row + 1).max(1))?;
        let mut rows = data.chunks_exact(row);
        let mut entries = BTreeMap::new();
        for (first, count) in index {
            for number in first..first + count {
                let Some(fields) = rows.next() else {
                    return Err(PdfError::structure(
                        "a cross-reference stream shorter than its /Index",
                    ));
                };
                let field = |i: usize| -> u64 {
                    let start: usize = widths[..i].iter().sum();
                    fields[start..start + widths[i]]
                        .iter()
                        .fold(0u64, |v, b| (v << 8) | u64::from(*b))
                };
                // §7.5.8.3: a missing type field means type 1.
                let kind = if widths[0] == 0 { 1 } else { field(0) };
                let number = u32::try_from(number)
                    .map_err(|_| PdfError::structure("an object number beyond 2^32"))?;
                let entry = match kind {
                    0 => XrefEntry::Free,
                    1 => XrefEntry::InUse {
                        offset: field(1),
                        generation: u16::try_from(field(2)).unwrap_or(u16::MAX),
                    },
                    2 => XrefEntry::Compressed {
                        stream: u32::try_from(field(1)).map_err(|_| {
                            PdfError::structure("an object stream number beyond 2^32")
                        })?,
                        index: u32::try_from(field(2)).map_err(|_| {
                            PdfError::structure("an object stream index beyond 2^32")
                        })?,
                    },
                    // §7.5.8.3: other types are references to the null object.
                    _ => XrefEntry::Free,
                };
                if !(number == 0 && entry == XrefEntry::Free) {
                    entries.insert(number, entry);
                }
            }
        }
        let StreamData::InFile {
            offset: data_offset,
            length,
        } = stream.data
        else {
            return Err(PdfError::structure("cross-reference stream data"));
        };
        let after = self.read_at(data_offset + length, 64)?;
        let mut parser = Parser::new(&after);
        parser.expect_keyword(b"endstream")?;
        parser.expect_keyword(b"endobj")?;
        let (end, eof_end) =
            self.revision_end(data_offset + length + parser.position() as u64, offset)?;
        Ok(XrefSection {
            offset,
            kind: XrefKind::Stream,
            trailer: stream.dictionary,
            entries,
            end,
            eof_end,
        })
    }

    /// After a section's trailer: `startxref N %%EOF` (N the section's own offset), and the
    /// end of line after it. A file whose section is not closed that way is refused.
    fn revision_end(
        &mut self,
        after_trailer: u64,
        section_offset: u64,
    ) -> Result<(u64, u64), PdfError> {
        let tail = self.read_at(after_trailer, 256)?;
        let mut parser = Parser::new(&tail);
        let closed =
            parser.accept_keyword(b"startxref") && parser.unsigned().ok() == Some(section_offset);
        parser.skip_whitespace_only();
        if !closed || !parser.remaining().starts_with(b"%%EOF") {
            return Err(PdfError::structure(format!(
                "the cross-reference section at byte {section_offset} is not closed by \
                 'startxref {section_offset} %%EOF'"
            )));
        }
        let eof_end = after_trailer + parser.position() as u64 + 5;
        let rest = &tail[parser.position() + 5..];
        let eol = if rest.starts_with(b"\r\n") {
            2
        } else if rest.starts_with(b"\n") || rest.starts_with(b"\r") {
            1
        } else {
            0
        };
        Ok((eof_end + eol, eof_end))
    }
}

/// Whether `head` (a file's first 1,024 bytes) has the `%PDF-` header (§7.5.2; readers
/// accept it anywhere in the first 1,024 bytes).
pub fn is_pdf(head: &[u8]) -> bool {
    head[..head.len().min(1024)]
        .windows(5)
        .any(|w| w == b"%PDF-")
}

fn too_large(limit: usize) -> PdfError {
    PdfError::Limit {
        what: format!("a stream larger than {limit} bytes"),
    }
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Decodes `raw` by the filters `dictionary` names, at most `limit` bytes out.
pub(crate) fn decode(
    dictionary: &Dictionary,
    raw: Vec<u8>,
    limit: usize,
) -> Result<Vec<u8>, PdfError> {
    let filters: Vec<&[u8]> = match dictionary.get("Filter") {
        None => Vec::new(),
        Some(Object::Name(name)) => vec![name.as_bytes()],
        Some(Object::Array(names)) => names.iter().filter_map(Object::as_name).collect(),
        Some(_) => return Err(PdfError::structure("a /Filter that is not a name")),
    };
    let params = match dictionary.get("DecodeParms") {
        Some(Object::Dictionary(params)) => Some(params),
        Some(Object::Array(items)) => items.first().and_then(Object::as_dictionary),
        _ => None,
    };
    match filters.as_slice() {
        [] => {
            if raw.len() > limit {
                return Err(too_large(limit));
            }
            Ok(raw)
        }
        [b"FlateDecode"] => {
            let mut out = Vec::new();
            ZlibDecoder::new(raw.as_slice())
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    PdfError::structure(format!("a Flate stream that does not inflate: {e}"))
                })?;
            if out.len() > limit {
                return Err(PdfError::Limit {
                    what: format!("a stream that inflates beyond {limit} bytes"),
                });
            }
            match params {
                Some(params) => unpredict(params, out),
                None => Ok(out),
            }
        }
        other => Err(PdfError::Unsupported(format!(
            "stream filters {:?}",
            other
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect::<Vec<_>>()
        ))),
    }
}

/// §7.4.4.4: undoes PNG predictors (10–15) row by row; 1 is none. TIFF (2) is refused.
fn unpredict(params: &Dictionary, data: Vec<u8>) -> Result<Vec<u8>, PdfError> {
    let predictor = params
        .get("Predictor")
        .and_then(Object::as_integer)
        .unwrap_or(1);
    if predictor == 1 {
        return Ok(data);
    }
    if !(10..=15).contains(&predictor) {
        return Err(PdfError::Unsupported(format!("predictor {predictor}")));
    }
    let get = |key: &str, default: i64| {
        params
            .get(key)
            .and_then(Object::as_integer)
            .unwrap_or(default)
    };
    let (colors, bits, columns) = (
        get("Colors", 1),
        get("BitsPerComponent", 8),
        get("Columns", 1),
    );
    if !(1..=32).contains(&colors)
        || ![1, 2, 4, 8, 16].contains(&bits)
        || !(1..=1 << 20).contains(&columns)
    {
        return Err(PdfError::structure("unusable predictor parameters"));
    }
    let pixel = ((colors * bits + 7) / 8) as usize;
    let width = ((colors * bits * columns + 7) / 8) as usize;
    let mut out = Vec::with_capacity(data.len());
    let mut previous = vec![0u8; width];
    for chunk in data.chunks(width + 1) {
        if chunk.len() != width + 1 {
            return Err(PdfError::structure("a predicted stream with a partial row"));
        }
        let (kind, row) = (chunk[0], &chunk[1..]);
        let mut current = vec![0u8; width];
        for i in 0..width {
            let left = if i >= pixel { current[i - pixel] } else { 0 };
            let up = previous[i];
            let up_left = if i >= pixel { previous[i - pixel] } else { 0 };
            let predicted = match kind {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, up_left),
                _ => return Err(PdfError::structure("an unknown PNG predictor row type")),
            };
            current[i] = row[i].wrapping_add(predicted);
        }
        out.extend_from_slice(&current);
        previous = current;
    }
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}
