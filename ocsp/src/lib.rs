//! imza-ocsp: the OCSP responder core (RFC 6960, profiled by RFC 9919; nonce per RFC 9654)
//! with its HTTP routes and cache of pre-signed responses (RFC 5019), and the client-side
//! reading and checking of responses.
//!
//! - [`request`]: reading an OCSPRequest from untrusted bytes, within limits;
//! - [`status`]: the [`CertificateStatusSource`] trait the CA store implements;
//! - [`responder`]: the [`Responder`] that answers for each served CA with its delegated
//!   responder certificate and key;
//! - [`response`]: reading an OCSPResponse; [`verify`]: checking one as a client does;
//! - [`cert_id`]: CertID hashes and ResponderID key hashes;
//! - [`service`]: the [`OcspService`]: a responder behind the [`cache`] of signed responses,
//!   kept honest by polling the source's revision;
//! - [`http`]: the Rocket routes (`POST /ocsp`, `GET /ocsp/{base64}`) and the fairing that
//!   mounts them, [`http::stage`].

pub mod cache;
pub mod cert_id;
mod error;
mod extensions;
pub mod http;
pub mod request;
pub mod responder;
pub mod response;
pub mod service;
mod signing;
pub mod status;
pub mod verify;

pub use cert_id::CertIdHash;
pub use error::{OcspError, SourceError};
pub use extensions::MAX_EXTENSIONS;
pub use request::{parse_request, parse_request_with, ParsedRequest, RequestLimits};
pub use responder::{OcspAnswer, Responder, ResponderConfig, ServedCa};
pub use response::{parse_response, ParsedBasicResponse, ParsedResponse, SingleStatus};
pub use service::{CacheConfig, HttpOcspAnswer, OcspService, RefreshReport};
pub use status::{CertStatusInfo, CertificateStatusSource, IssuerId};
pub use verify::{check_signature, verify_response, VerifiedSigner, VerifyOptions};
pub use x509_ocsp::OcspResponseStatus as ResponseStatus;
