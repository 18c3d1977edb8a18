//! imza-signer: CMS SignedData (RFC 5652) and CAdES (ETSI EN 319 122-1) signatures — made with
//! any [`imza_core::SigningKey`], raised from B-B to B-T, B-LT and B-LTA, and validated into a
//! report shaped like ETSI TS 119 102-2 — plus the `/verify` HTTP route.
//!
//! Signing side: [`sign`], [`augment`]. Validation side: [`verify`] → [`ValidationReport`].

mod error;
mod level;

pub use error::SignerError;
pub use level::Level;
