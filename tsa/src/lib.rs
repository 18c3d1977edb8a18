//! imza-tsa: an RFC 3161 time-stamping authority and its client, and the authority's HTTP route.
//!
//! - [`TimeStampAuthority`] answers a DER `TimeStampReq` with a DER `TimeStampResp`: a token
//!   (CMS `SignedData` over `TSTInfo`, RFC 3161 §2.4.2, RFC 5816) signed with any
//!   [`imza_core::SigningKey`], or a refusal carrying the `PKIFailureInfo` that says why.
//! - [`build_request`], [`parse_response`] and [`verify_token`] are the client side
//!   (`imza ts request`, `imza ts verify`, and the signer's CAdES timestamps).
//! - [`http::stage`] serves a [`http::TsaService`] as `POST /tsa` (RFC 3161 §3.4) in Rocket.
//! - [`CommandClockCheck`] keeps the TSA from stamping while the host's clock is not in sync.

mod authority;
mod client;
mod clock_check;
mod command_clock_check;
mod error;
pub mod http;
mod imprint;
mod request;
mod response;
mod serial;
mod signed_data;
mod status;
mod token;
mod tst_info;
mod verify;

pub use authority::{accuracy_seconds, Outcome, TimeStampAuthority, TsaAnswer, TsaConfig};
pub use client::check_answers_request;
pub use clock_check::{ClockCheck, ClockFault, TrustSystemClock};
pub use command_clock_check::{ClockCommand, CommandClockCheck};
pub use error::{PathError, SystemFault, TsaError};
pub use imprint::{check_imprint_length, imprint_algorithm};
pub use request::{build_request, random_nonce, TimeStampRequest, MAX_REQUEST_BYTES};
pub use response::{parse_response, ParsedResponse, ParsedToken};
pub use serial::{int_hex, positive_int, unsigned_value, RandomSerials, SerialNumberSource};
pub use status::{FailureInfo, PkiStatus, PkiStatusInfo, TimeStampResp};
pub use tst_info::{GenTime, TstInfo};
pub use verify::{
    cms_signature_algorithm, verify_token, Expectations, OpenSslPathValidator, PathValidator,
    VerificationTime, VerifiedToken,
};
pub use x509_tsp::Accuracy;
