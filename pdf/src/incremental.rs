//! Incremental updates (ISO 32000-1 §7.5.6): new and changed objects appended after the last
//! `%%EOF` with a cross-reference section of the same kind as the newest one (a table after a
//! table, a stream after a stream) whose `/Prev` points back — the bytes before are never
//! touched, which is what lets an earlier signature stay valid.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, Write};

use crate::error::PdfError;
use crate::file::{PdfFile, XrefKind};
use crate::object::{Dictionary, Object, ObjectId, PdfString, Stream};

/// The objects of one update, before they are written.
pub struct IncrementalUpdate {
    next_number: u32,
    objects: BTreeMap<u32, (ObjectId, Object)>,
    base_trailer: Dictionary,
    prev: u64,
    kind: XrefKind,
    base_len: u64,
    ends_with_eol: bool,
}

/// An update written out: its bytes (to append at the file's end) and where each object
/// starts within them.
pub struct WrittenUpdate {
    pub bytes: Vec<u8>,
    pub offsets: BTreeMap<ObjectId, usize>,
}

impl IncrementalUpdate {
    /// An empty update to `file`.
    pub fn new<R: Read + Seek>(file: &mut PdfFile<R>) -> Result<IncrementalUpdate, PdfError> {
        let newest = file.newest_section();
        let size = file
            .sections()
            .iter()
            .filter_map(|s| s.trailer.get("Size").and_then(Object::as_integer))
            .max()
            .unwrap_or(0);
        let next_number = u32::try_from(size)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| PdfError::structure("the trailer's /Size is not usable"))?;
        let (base_trailer, prev, kind) = (newest.trailer.clone(), newest.offset, newest.kind);
        let base_len = file.len();
        let last = file.read_at(base_len.saturating_sub(1), 1)?;
        Ok(IncrementalUpdate {
            next_number,
            objects: BTreeMap::new(),
            base_trailer,
            prev,
            kind,
            base_len,
            ends_with_eol: matches!(last.as_slice(), [b'\n'] | [b'\r']),
        })
    }

    /// Adds a new object and returns its id.
    pub fn add(&mut self, object: impl Into<Object>) -> ObjectId {
        let id = self.allocate();
        self.objects.insert(id.number, (id, object.into()));
        id
    }

    /// A new object number, for an object set later with [`IncrementalUpdate::set`].
    pub fn allocate(&mut self) -> ObjectId {
        let id = ObjectId::new(self.next_number, 0);
        self.next_number += 1;
        id
    }

    /// Sets object `id` (a new one from [`IncrementalUpdate::allocate`], or an existing one
    /// changed by this update).
    pub fn set(&mut self, id: ObjectId, object: impl Into<Object>) {
        self.objects.insert(id.number, (id, object.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Serializes the update, to be appended to the file it was made for.
    pub fn write(mut self) -> Result<WrittenUpdate, PdfError> {
        let mut bytes = Vec::new();
        if !self.ends_with_eol {
            bytes.push(b'\n');
        }
        let xref_id = (self.kind == XrefKind::Stream).then(|| self.allocate());
        let mut offsets = BTreeMap::new();
        for (id, object) in self.objects.values() {
            offsets.insert(*id, bytes.len());
            writeln!(bytes, "{} {} obj", id.number, id.generation)?;
            object.write_to(&mut bytes)?;
            bytes.extend_from_slice(b"\nendobj\n");
        }
        let xref_offset = self.base_len + bytes.len() as u64;
        let mut trailer = Dictionary::new();
        trailer.set("Size", Object::Integer(i64::from(self.next_number)));
        for key in ["Root", "Info"] {
            if let Some(value) = self.base_trailer.get(key) {
                trailer.set(key, value.clone());
            }
        }
        trailer.set("ID", self.id_pair());
        trailer.set("Prev", Object::Integer(self.prev as i64));
        let mut entries: Vec<(ObjectId, u64)> = offsets
            .iter()
            .map(|(id, at)| (*id, self.base_len + *at as u64))
            .collect();
        match xref_id {
            None => {
                bytes.extend_from_slice(b"xref\n");
                for run in runs(&entries) {
                    writeln!(bytes, "{} {}", run[0].0.number, run.len())?;
                    for (id, offset) in run {
                        write!(bytes, "{offset:010} {:05} n\r\n", id.generation)?;
                    }
                }
                bytes.extend_from_slice(b"trailer\n");
                Object::Dictionary(trailer).write_to(&mut bytes)?;
                bytes.push(b'\n');
            }
            Some(xref_id) => {
                entries.push((xref_id, xref_offset));
                let width = offset_width(xref_offset);
                let mut index = Vec::new();
                let mut rows = Vec::new();
                for run in runs(&entries) {
                    index.push(Object::Integer(i64::from(run[0].0.number)));
                    index.push(Object::Integer(run.len() as i64));
                    for (id, offset) in run {
                        rows.push(1u8);
                        rows.extend_from_slice(&offset.to_be_bytes()[8 - width..]);
                        rows.extend_from_slice(&id.generation.to_be_bytes());
                    }
                }
                trailer.set("Type", Object::name("XRef"));
                trailer.set(
                    "W",
                    vec![
                        Object::Integer(1),
                        Object::Integer(width as i64),
                        Object::Integer(2),
                    ],
                );
                trailer.set("Index", index);
                writeln!(bytes, "{} {} obj", xref_id.number, xref_id.generation)?;
                Object::Stream(Stream::new(trailer, rows)).write_to(&mut bytes)?;
                bytes.extend_from_slice(b"\nendobj\n");
            }
        }
        write!(bytes, "startxref\n{xref_offset}\n%%EOF\n")?;
        Ok(WrittenUpdate { bytes, offsets })
    }

    /// §14.4: the first identifier kept, the second new for this version.
    fn id_pair(&self) -> Object {
        let first = match self.base_trailer.get("ID").and_then(Object::as_array) {
            Some([Object::String(first), _]) => first.clone(),
            _ => PdfString::hex(self.fresh_id()),
        };
        Object::Array(vec![
            Object::String(first),
            Object::String(PdfString::hex(self.fresh_id())),
        ])
    }

    fn fresh_id(&self) -> Vec<u8> {
        let state = std::collections::hash_map::RandomState::new();
        let mut id = Vec::with_capacity(16);
        for half in 0..2u8 {
            let mut hasher = state.build_hasher();
            hasher.write_u8(half);
            hasher.write_u64(self.base_len);
            hasher.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default(),
            );
            id.extend_from_slice(&hasher.finish().to_be_bytes());
        }
        id
    }
}

/// Consecutive object numbers grouped into cross-reference subsections.
fn runs(entries: &[(ObjectId, u64)]) -> Vec<Vec<(ObjectId, u64)>> {
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|(id, _)| id.number);
    let mut runs: Vec<Vec<(ObjectId, u64)>> = Vec::new();
    for entry in sorted {
        match runs.last_mut() {
            Some(run)
                if run
                    .last()
                    .is_some_and(|(id, _)| id.number + 1 == entry.0.number) =>
            {
                run.push(entry)
            }
            _ => runs.push(vec![entry]),
        }
    }
    runs
}

/// Bytes needed for offsets up to `max`.
fn offset_width(max: u64) -> usize {
    ((64 - max.leading_zeros() as usize).div_ceil(8)).max(1)
}
