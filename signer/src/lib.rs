//! imza-signer: CMS SignedData (RFC 5652) and CAdES (ETSI EN 319 122-1) signatures — made with
//! any [`imza_core::SigningKey`], raised from B-B to B-T, B-LT and B-LTA, and validated into a
//! report shaped like ETSI TS 119 102-2 — plus the `/verify` HTTP route.
//!
//! Signing side: [`sign`], [`augment`]. Validation side: [`verify`] → [`ValidationReport`].

mod archive;
pub(crate) mod attributes;
mod augment;
mod content;
mod credentials;
mod error;
pub mod http;
mod level;
pub mod pades;
mod report;
mod sign;
pub(crate) mod signed_data;
mod timestamp;
mod validation_data;
mod verify;
mod verify_paths;

pub use augment::{augment, certificates_of, level_of, AugmentOptions};
pub use content::{ContentDigests, MAX_KEPT_CONTENT_BYTES};
pub use credentials::{Credentials, MAX_CHAIN};
pub use error::{RevocationDataError, SignerError, TimestampError};
pub use level::Level;
pub use report::{
    ChainCertificate, Indication, PdfSignatureReport, RevisionChange, RevocationReport,
    SignatureReport, SignerReport, SubIndication, TimestampReport, ValidationReport,
};
pub use sign::{sign, SignOptions};
pub use timestamp::{HttpTimestamper, Timestamper};
pub use validation_data::ValidationDataSources;
pub use verify::{verify, verify_reader, SignatureVerifier, VerifyOptions};
