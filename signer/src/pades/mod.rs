//! PAdES (ETSI EN 319 142-1): CAdES signatures inside PDF documents, at B-B, B-T, B-LT and
//! B-LTA, and their validation ([`verify_pdf`]) with the document's revisions examined for
//! what changed after each signature.

mod changes;
mod dss;
mod fields;
mod sign;
mod stamp;
mod verify;

use imza_pdf::{Dictionary, Object};

pub use sign::{augment_pdf, sign_pdf};
pub(crate) use stamp::appearance;
pub use verify::{verify_pdf, verify_pdf_with};

use crate::augment::AugmentOptions;
use crate::Level;
use time::OffsetDateTime;

/// The changes a certification allows after it (ISO 32000-1 §12.8.2.2.2, Table 254).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DocMdp {
    /// P1: no changes at all.
    NoChanges = 1,
    /// P2: filling in forms, instantiating page templates and signing.
    FormFilling = 2,
    /// P3: P2 and annotations.
    Annotations = 3,
}

impl DocMdp {
    pub fn from_p(p: i64) -> Option<DocMdp> {
        match p {
            1 => Some(DocMdp::NoChanges),
            2 => Some(DocMdp::FormFilling),
            3 => Some(DocMdp::Annotations),
            _ => None,
        }
    }
}

/// How to sign a PDF.
#[derive(Clone)]
pub struct PadesOptions<'a> {
    pub level: Level,
    /// The signing time claimed in `/M` (PAdES has no signing-time attribute in the CMS).
    pub signing_time: OffsetDateTime,
    /// A certification signature with these DocMDP permissions; `None`: an approval signature.
    pub certification: Option<DocMdp>,
    /// The signature field's name; `None`: `Signature1`, `Signature2`, … the first free one.
    pub field_name: Option<String>,
    /// `/Name`, `/Reason`, `/Location`, `/ContactInfo` of the signature dictionary.
    pub name: Option<String>,
    pub reason: Option<String>,
    pub location: Option<String>,
    pub contact: Option<String>,
    /// Bytes reserved for the CMS in `/Contents`; `None`: enough for the chain and a
    /// time-stamp.
    pub contents_size: Option<usize>,
    /// A visible stamp; `None`: an invisible signature (the default).
    pub stamp: Option<Stamp>,
    /// The TSA (B-T, B-LTA) and the sources of validation data (B-LT).
    pub augment: AugmentOptions<'a>,
}

impl PadesOptions<'_> {
    /// An invisible approval signature at B-B made at `signing_time`.
    pub fn new(signing_time: OffsetDateTime) -> PadesOptions<'static> {
        PadesOptions {
            level: Level::B,
            signing_time,
            certification: None,
            field_name: None,
            name: None,
            reason: None,
            location: None,
            contact: None,
            contents_size: None,
            stamp: None,
            augment: AugmentOptions::default(),
        }
    }
}

/// A visible signature stamp: a framed box on a page showing lines of text (the signer's
/// name, the time, a reference), in DejaVu Sans embedded as a subset.
#[derive(Clone, Debug, PartialEq)]
pub struct Stamp {
    /// The page, 1 for the first.
    pub page: usize,
    /// `[x, y, width, height]` in points from the page's lower left corner.
    pub rect: [f64; 4],
    pub lines: Vec<String>,
}

/// The DER element at the start of `bytes` (a `/Contents` string is padded with zeros after
/// it); all of `bytes` when its length does not read.
pub(crate) fn der_prefix(bytes: &[u8]) -> &[u8] {
    let length = match bytes.get(1).copied() {
        Some(n) if n < 0x80 => Some(2 + usize::from(n)),
        Some(n @ 0x81..=0x84) => {
            let count = usize::from(n & 0x7f);
            bytes.get(2..2 + count).map(|octets| {
                2 + count
                    + octets
                        .iter()
                        .fold(0usize, |v, b| (v << 8) | usize::from(*b))
            })
        }
        _ => None,
    };
    match length {
        Some(length) if length <= bytes.len() => &bytes[..length],
        _ => bytes,
    }
}

/// The catalog's `/Extensions` entry declaring ETSI's extension (ESIC) to PDF 1.7.
pub(crate) fn esic_extension() -> Dictionary {
    let mut esic = Dictionary::new();
    esic.set("BaseVersion", Object::name("1.7"));
    esic.set("ExtensionLevel", Object::Integer(1));
    let mut extensions = Dictionary::new();
    extensions.set("ESIC", esic);
    extensions
}
