//! imza-pdf: the PDF layer under PAdES and the e-certificates (ISO 32000-1).
//!
//! [`object`], the object model and its serialization.

pub mod object;

pub use object::{Dictionary, Name, Object, ObjectId, PdfString, Stream, StreamData};
