//! What can go wrong reading or writing a PDF.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PdfError {
    /// Bytes that are not PDF syntax where an object was expected.
    #[error("malformed PDF at byte {offset}: {what}")]
    Syntax { offset: u64, what: String },
    /// A PDF that is well formed as far as it was read, but not as a document must be (no
    /// header, a broken cross-reference, a missing catalog).
    #[error("not a well-formed PDF: {0}")]
    Structure(String),
    /// A limit on size, depth or count that keeps reading bounded.
    #[error("refused: {what}")]
    Limit { what: String },
    /// An encrypted document: neither signed nor validated.
    #[error(
        "the PDF is encrypted (/Encrypt in its trailer): encrypted documents are not supported"
    )]
    Encrypted,
    /// A feature the reader does not handle (a stream filter other than Flate, say).
    #[error("unsupported PDF feature: {0}")]
    Unsupported(String),
    #[error("reading the PDF: {0}")]
    Io(#[from] std::io::Error),
}

impl PdfError {
    pub(crate) fn structure(what: impl Into<String>) -> PdfError {
        PdfError::Structure(what.into())
    }
}
