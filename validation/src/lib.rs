//! imza-validation: RFC 5280 certification path building and validation (§6), with
//! revocation checking from CRLs (§6.3, full and delta, distribution points, indirect CRLs)
//! and OCSP (RFC 6960, client side).
//!
//! A [`Validator`] holds the trust anchors, an unordered pool of untrusted certificates and the
//! revocation material (CRLs, OCSP responses, and a [`Fetcher`] when the caller allows
//! network). [`Validator::validate`] builds candidate paths from a target certificate to an
//! anchor within a [`Budget`] and runs the §6.1 algorithm on each at the time given in
//! [`ValidationOptions`] — never the wall clock — until one passes.

mod certificate;
mod crl;
mod error;
mod fetch;
mod ocsp;
mod options;
mod peer_name;
mod revocation;
mod validator;

pub use certificate::{read_certificates, Certificate};
pub use crl::{read_crls, Crl};
pub use error::ValidationError;
pub use fetch::{Fetcher, HttpFetcher};
pub use options::{Budget, Purpose, RevocationPolicy, ValidationOptions};
pub use peer_name::{check_peer_name, PeerName};
pub use revocation::{RevocationEvidence, RevocationState, RevocationStatus};
pub use validator::{ValidatedPath, Validator};
