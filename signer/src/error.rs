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
    /// A timestamp could not be obtained from `tsa` (the TSA at its URL), or was not
    /// acceptable: `source` says why.
    #[error("timestamp: {tsa}: {source}")]
    Timestamp {
        tsa: String,
        #[source]
        source: TimestampError,
    },
    /// Revocation data for B-LT could not be gathered (boxed: a ValidationError is large).
    #[error(transparent)]
    Revocation(Box<RevocationDataError>),
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

/// A certificate B-LT needs revocation data for, `what` (its `subject`), did not validate
/// now with revocation required, for the reason `source` gives (a network failure,
/// revocation unknown, revoked, no path).
#[derive(Debug, thiserror::Error)]
#[error("revocation data: {what} ({subject}) did not validate: {source}")]
pub struct RevocationDataError {
    pub what: String,
    pub subject: String,
    #[source]
    pub source: imza_validation::ValidationError,
}

/// Why a time-stamping authority's token could not be had or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// The request could not be made, or the answer was refused or did not read.
    #[error("{0}")]
    Tsa(#[source] imza_tsa::TsaError),
    /// The token answers another request (its imprint, nonce or policy differs).
    #[error("the reply does not answer the request sent: {0}")]
    NotTheRequest(#[source] imza_tsa::TsaError),
    /// The token carries no certificate although the request set certReq.
    #[error("the token carries no certificate although certReq was set (RFC 3161 §2.4.1)")]
    NoCertificate,
    /// The token is not a SignedData an ats-hash-index-v3 can be added to (B-LTA).
    #[error("imza cannot carry an ats-hash-index-v3 in the token: {0}")]
    CannotCarryIndex(#[source] imza_core::cms::CmsError),
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
