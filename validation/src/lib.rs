//! imza-validation: RFC 5280 certification path building and validation (§6), with
//! revocation checking from CRLs (§6.3, full and delta, distribution points, indirect CRLs)
//! and OCSP (RFC 6960, client side).
//!
//! A [`Validator`] holds the trust anchors, an unordered pool of untrusted certificates and the
//! revocation material (CRLs, OCSP responses, a [`Fetcher`] when the caller allows network,
//! and a [`LocalRevocationSource`] when it runs beside the issuer's own records). A service
//! validating for others fetches through one [`FetchCache`]: answers shared and kept for their
//! validity, identical fetches made once, outbound fetches capped. [`Validator::validate`] builds candidate paths from a target certificate to an
//! anchor within a [`Budget`] and runs the §6.1 algorithm on each at the time given in
//! [`ValidationOptions`] — never the wall clock — until one passes.
//!
//! By default it is stricter than §6.1 asks: the trust anchor's certificate is checked and its
//! name constraints apply (RFC 5937), CA extendedKeyUsages nest, certificates and CRLs must
//! follow RFC 5280's rules for conforming CAs, and RSA keys need 2048 bits; each policy has
//! its switch in [`ValidationOptions`], and each refusal its [`ValidationError`] variant.

mod authentication;
mod budget;
mod certificate;
mod conformance;
mod crl;
mod crl_check;
mod error;
mod extensions;
mod fetch;
mod fetch_cache;
mod legacy_time;
mod local_revocation;
mod name;
mod name_constraints;
mod ocsp;
mod ocsp_request;
mod options;
mod path_builder;
mod path_validation;
mod peer_name;
mod policy;
mod purpose;
mod revocation;
mod signature;
mod validator;

pub use authentication::{AuthenticationTrust, MAX_ISSUER_FETCHES};
pub use certificate::{read_certificates, Certificate};
pub use crl::{read_crls, Crl};
pub use error::{
    AnchorProblem, BudgetLimit, ConstraintViolation, CrlViolation, NameConstraintViolation,
    NetworkFailure, PurposeProblem, Rfc5280Violation, ValidationError,
};
pub use fetch::{Fetcher, SharedFetcher};
pub use fetch_cache::{FetchCache, FetchCacheConfig, FetchCacheStats, RequestFetcher};
pub use local_revocation::{LocalRevocationSource, LocalStatus};
pub use options::{
    Budget, Purpose, RevocationPolicy, Strictness, ValidationOptions, DEFAULT_MIN_RSA_MODULUS_BITS,
};
pub use peer_name::{check_peer_name, PeerName};
pub use revocation::{RevocationEvidence, RevocationState, RevocationStatus};
pub use signature::{SignatureCache, DEFAULT_SIGNATURE_CACHE_ENTRIES};
pub use validator::{ValidatedPath, Validator};
