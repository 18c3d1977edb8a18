//! imza-pdf: the PDF layer under PAdES and the e-certificates (ISO 32000-1).
//!
//! [`object`], the object model and its serialization; the bounded object parser; [`file`],
//! a PDF read on demand — cross-reference sections, revisions, objects, streams — within
//! limits; [`incremental`], updates appended without touching the bytes before; [`build`],
//! new documents from scratch (pages, text, lines, images, the file with its cross-reference
//! table), with [`font`], the TrueType fonts they embed as subsets (Type0, Identity-H,
//! /ToUnicode).

pub mod build;
pub mod date;
pub mod error;
pub mod file;
pub mod font;
pub mod incremental;
pub mod object;
pub(crate) mod parse;

pub use build::{
    BuildError, DocumentBuilder, DocumentInfo, FontId, GrayImage, ImageId, Page, PageSize, Rect,
};
pub use error::PdfError;
pub use file::{is_pdf, PdfFile, Revision, XrefEntry, XrefKind, XrefSection};
/// The compression level of the streams the writers deflate (flate2's).
pub use flate2::Compression;
pub use font::{standard_fonts, FontError, FontProgram, StandardFonts};
pub use incremental::{IncrementalUpdate, WrittenUpdate};
pub use object::{Dictionary, Name, Object, ObjectId, PdfString, Stream, StreamData};
pub use parse::{decode_hex, MAX_NESTING};
