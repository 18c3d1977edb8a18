//! What went wrong while signing, augmenting or reading a signature. (A signature that parses
//! but does not validate is not an error: it is a report with an indication.)

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// Input that does not parse as what it should be (CMS, certificate, PKCS#12).
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// Usage that cannot work (e.g. augmenting to LT without a timestamp, wrong key for the certificate).
    #[error("{0}")]
    Usage(String),
    /// The signing key failed.
    #[error("signing failed: {0}")]
    Key(#[from] imza_core::CoreError),
    /// A timestamp could not be obtained or was not acceptable.
    #[error("timestamp: {0}")]
    Timestamp(String),
    /// Revocation data for B-LT could not be gathered.
    #[error("revocation data: {0}")]
    Revocation(String),
    /// A PDF that cannot be read or written as asked.
    #[error("{0}")]
    Pdf(#[from] imza_pdf::PdfError),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Asking `service` (the time-stamping authority) over the network failed; the
    /// [`imza_http::HttpError`] names the URL and keeps the cause (an HTTP status as its
    /// number).
    #[error("network: {service}: {source}")]
    Network {
        service: &'static str,
        #[source]
        source: imza_http::HttpError,
    },
}

impl SignerError {
    pub fn malformed(what: &'static str, detail: impl std::fmt::Display) -> SignerError {
        SignerError::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}

/// A SignedData that does not read is malformed input; one that cannot take an addition is a
/// usage that cannot work.
impl From<imza_core::cms::CmsError> for SignerError {
    fn from(e: imza_core::cms::CmsError) -> SignerError {
        match e {
            imza_core::cms::CmsError::Malformed { what, detail } => {
                SignerError::Malformed { what, detail }
            }
            imza_core::cms::CmsError::Refused(why) => SignerError::Usage(why),
        }
    }
}
