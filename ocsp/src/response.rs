//! Reading an OCSPResponse (RFC 6960 §4.2.1): what a response says, checked for shape but not
//! for trust ([`crate::verify`] does that).
//!
//! ```text
//! OCSPResponse ::= SEQUENCE {
//!     responseStatus      OCSPResponseStatus,
//!     responseBytes   [0] EXPLICIT ResponseBytes OPTIONAL }
//!
//! ResponseBytes ::= SEQUENCE {
//!     responseType        OBJECT IDENTIFIER,
//!     response            OCTET STRING }
//!
//! BasicOCSPResponse ::= SEQUENCE {
//!     tbsResponseData     ResponseData,
//!     signatureAlgorithm  AlgorithmIdentifier,
//!     signature           BIT STRING,
//!     certs           [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//!
//! ResponseData ::= SEQUENCE {
//!     version             [0] EXPLICIT Version DEFAULT v1,
//!     responderID             ResponderID,
//!     producedAt              GeneralizedTime,
//!     responses               SEQUENCE OF SingleResponse,
//!     responseExtensions  [1] EXPLICIT Extensions OPTIONAL }
//!
//! SingleResponse ::= SEQUENCE {
//!     certID                  CertID,
//!     certStatus              CertStatus,
//!     thisUpdate              GeneralizedTime,
//!     nextUpdate          [0] EXPLICIT GeneralizedTime OPTIONAL,
//!     singleExtensions    [1] EXPLICIT Extensions OPTIONAL }
//! ```
//!
//! Refused: an undefined responseStatus, `successful` without responseBytes, an error status
//! with responseBytes (§2.3: error messages are not signed), a responseType other than
//! id-pkix-ocsp-basic, a ResponseData version other than v1, duplicate extensions and
//! critical extensions imza does not understand.

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::ext::Extension;
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, OcspResponseStatus,
    ResponderId,
};

use imza_core::oids;
use imza_http::client::MAX_ANSWER_BYTES;

use crate::cert_id::CertIdHash;
use crate::extensions::{check_extensions, find_nonce};
use crate::status::CertStatusInfo;
use crate::OcspError;

/// Most SingleResponses read from one response.
pub const MAX_SINGLE_RESPONSES: usize = 1000;
/// Most certificates read from one response's `certs`.
pub const MAX_RESPONSE_CERTS: usize = 16;

/// Response extensions imza understands (a nonce longer than RFC 9654's 128 octets is refused).
const UNDERSTOOD_RESPONSE_EXTENSIONS: &[ObjectIdentifier] = &[oids::OCSP_NONCE];
/// singleExtensions imza understands.
const UNDERSTOOD_SINGLE_EXTENSIONS: &[ObjectIdentifier] = &[oids::EXT_CRL_REASON];

/// An OCSPResponse: its status and, when successful, the basic response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedResponse {
    pub status: OcspResponseStatus,
    /// Present exactly when `status` is `successful`.
    pub basic: Option<ParsedBasicResponse>,
}

/// A BasicOCSPResponse, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedBasicResponse {
    /// The DER of ResponseData: the bytes the signature covers.
    pub tbs_der: Vec<u8>,
    pub responder_id: ResponderId,
    pub produced_at: OffsetDateTime,
    pub responses: Vec<SingleStatus>,
    /// The nonce octets, if the response carries a nonce.
    pub nonce: Option<Vec<u8>>,
    pub extensions: Vec<Extension>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: Vec<u8>,
    /// The certificates in `certs`, in order.
    pub certs: Vec<Certificate>,
}

/// One SingleResponse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleStatus {
    pub cert_id: CertId,
    /// The CertID's hash algorithm, `None` when imza does not support it.
    pub hash: Option<CertIdHash>,
    pub status: CertStatusInfo,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    pub extensions: Vec<Extension>,
}

/// The instant an OCSP GeneralizedTime stands for.
pub(crate) fn instant(t: &OcspGeneralizedTime) -> OffsetDateTime {
    let secs = i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Parses and checks an OCSPResponse.
pub fn parse_response(der: &[u8]) -> Result<ParsedResponse, OcspError> {
    if der.len() > MAX_ANSWER_BYTES {
        return Err(OcspError::ResponseTooLarge {
            len: der.len(),
            limit: MAX_ANSWER_BYTES,
        });
    }
    let response = OcspResponse::from_der(der).map_err(|e| OcspError::malformed("response", e))?;
    let status = response.response_status;
    let bytes = match (status, response.response_bytes) {
        (OcspResponseStatus::Successful, Some(bytes)) => bytes,
        (OcspResponseStatus::Successful, None) => return Err(OcspError::SuccessfulWithoutBody),
        (status, Some(_)) => return Err(OcspError::ErrorStatusWithBody { status }),
        (status, None) => {
            return Ok(ParsedResponse {
                status,
                basic: None,
            })
        }
    };
    if bytes.response_type != oids::OCSP_BASIC {
        return Err(OcspError::UnsupportedResponseType {
            oid: bytes.response_type,
        });
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|e| OcspError::malformed("BasicOCSPResponse", e))?;
    Ok(ParsedResponse {
        status,
        basic: Some(read_basic(basic)?),
    })
}

fn bounded(what: &'static str, count: usize, limit: usize) -> Result<(), OcspError> {
    if count > limit {
        return Err(OcspError::TooManyInResponse { what, count, limit });
    }
    Ok(())
}

fn read_basic(basic: BasicOcspResponse) -> Result<ParsedBasicResponse, OcspError> {
    let data = basic.tbs_response_data;
    bounded(
        "SingleResponses",
        data.responses.len(),
        MAX_SINGLE_RESPONSES,
    )?;
    let certs = basic.certs.unwrap_or_default();
    bounded("certificates", certs.len(), MAX_RESPONSE_CERTS)?;
    let tbs_der = data
        .to_der()
        .map_err(|e| OcspError::malformed("ResponseData", e))?;
    let extensions = check_extensions(
        data.response_extensions.as_deref(),
        "response extensions",
        UNDERSTOOD_RESPONSE_EXTENSIONS,
    )?
    .to_vec();
    let nonce = find_nonce(&extensions, crate::request::MAX_NONCE_OCTETS)?.map(|(value, _)| value);
    let mut responses = Vec::with_capacity(data.responses.len());
    for single in data.responses {
        let extensions = check_extensions(
            single.single_extensions.as_deref(),
            "single response extensions",
            UNDERSTOOD_SINGLE_EXTENSIONS,
        )?
        .to_vec();
        let status = match single.cert_status {
            CertStatus::Good(_) => CertStatusInfo::Good,
            CertStatus::Revoked(info) => CertStatusInfo::Revoked {
                at: instant(&info.revocation_time),
                reason: info.revocation_reason,
            },
            CertStatus::Unknown(_) => CertStatusInfo::Unknown,
        };
        responses.push(SingleStatus {
            hash: CertIdHash::from_oid(&single.cert_id.hash_algorithm.oid),
            cert_id: single.cert_id,
            status,
            this_update: instant(&single.this_update),
            next_update: single.next_update.as_ref().map(instant),
            extensions,
        });
    }
    let signature = basic
        .signature
        .as_bytes()
        .ok_or_else(|| OcspError::malformed("response signature", "BIT STRING with unused bits"))?
        .to_vec();
    Ok(ParsedBasicResponse {
        tbs_der,
        responder_id: data.responder_id,
        produced_at: instant(&data.produced_at),
        responses,
        nonce,
        extensions,
        signature_algorithm: basic.signature_algorithm,
        signature,
        certs,
    })
}
