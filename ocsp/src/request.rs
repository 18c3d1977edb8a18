//! Reading an OCSPRequest (RFC 6960 §4.1) from untrusted bytes, within limits.
//!
//! ```text
//! OCSPRequest ::= SEQUENCE {
//!     tbsRequest              TBSRequest,
//!     optionalSignature   [0] EXPLICIT Signature OPTIONAL }
//!
//! TBSRequest ::= SEQUENCE {
//!     version             [0] EXPLICIT Version DEFAULT v1,
//!     requestorName       [1] EXPLICIT GeneralName OPTIONAL,
//!     requestList             SEQUENCE OF Request,
//!     requestExtensions   [2] EXPLICIT Extensions OPTIONAL }
//!
//! Request ::= SEQUENCE {
//!     reqCert                     CertID,
//!     singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
//! ```
//!
//! The body is bounded before decoding ([`RequestLimits::max_bytes`]), so every list inside is
//! bounded too; then the number of CertIDs and extensions is checked. DER decoding is strict
//! (definite lengths, minimal encodings, no trailing bytes) and follows the fixed schema, so
//! deep nesting cannot make it recurse. Only version v1 exists (§4.1.1): another version is
//! malformed. A request signature (§4.1.2) is noted but not checked: imza's answers are public.

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use x509_cert::ext::Extension;
use x509_ocsp::{CertId, OcspRequest, Request, TbsRequest};

use imza_core::oids;

use crate::cert_id::CertIdHash;
use crate::extensions::{check_extensions, find_nonce};
use crate::OcspError;

/// Largest request body accepted: a CertID is under 150 bytes, so 64 KiB is far beyond any
/// honest request (RFC 9919 §2.1 expects one CertID per request).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Most CertIDs answered in one request. RFC 6960 sets no limit and has no status for
/// "too many", so more is answered `malformedRequest`: the request is not one imza accepts.
pub const MAX_CERT_IDS: usize = 100;

/// Longest nonce accepted: RFC 9654 §2.1 (`Nonce ::= OCTET STRING(SIZE(1..128))`), which
/// raised RFC 8954's 32. Longer (or empty) nonces are answered `malformedRequest`.
pub const MAX_NONCE_OCTETS: usize = 128;

/// The bounds applied to an untrusted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    pub max_bytes: usize,
    pub max_cert_ids: usize,
    pub max_nonce_octets: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_bytes: MAX_REQUEST_BYTES,
            max_cert_ids: MAX_CERT_IDS,
            max_nonce_octets: MAX_NONCE_OCTETS,
        }
    }
}

/// One certificate asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedCert {
    /// The CertID as received; a response echoes it unchanged (RFC 6960 §4.2.1).
    pub cert_id: CertId,
    /// Its hash algorithm, `None` when imza does not support it.
    pub hash: Option<CertIdHash>,
}

/// A nonce (RFC 9654) found in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestNonce {
    /// The nonce octets (the content of the OCTET STRING).
    pub value: Vec<u8>,
    /// The extension as received, echoed into the response.
    pub extension: Extension,
}

/// What an OCSPRequest asks, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The CertIDs in request order (at least one, at most the limit).
    pub certs: Vec<RequestedCert>,
    pub nonce: Option<RequestNonce>,
    /// True when the request carried an optionalSignature (not verified).
    pub signed: bool,
    /// The OIDs of all requestExtensions, in order.
    pub extension_oids: Vec<ObjectIdentifier>,
}

/// Request extensions imza understands, so a client may mark them critical.
const UNDERSTOOD_REQUEST_EXTENSIONS: &[ObjectIdentifier] =
    &[oids::OCSP_NONCE, oids::OCSP_ACCEPTABLE_RESPONSES];

/// Parses `der` with the default [`RequestLimits`].
pub fn parse_request(der: &[u8]) -> Result<ParsedRequest, OcspError> {
    parse_request_with(der, &RequestLimits::default())
}

/// Parses and checks an OCSPRequest within `limits`.
pub fn parse_request_with(der: &[u8], limits: &RequestLimits) -> Result<ParsedRequest, OcspError> {
    if der.len() > limits.max_bytes {
        return Err(OcspError::RequestTooLarge {
            len: der.len(),
            limit: limits.max_bytes,
        });
    }
    let request = OcspRequest::from_der(der).map_err(|e| OcspError::malformed("request", e))?;
    let tbs = request.tbs_request;
    let count = tbs.request_list.len();
    if count == 0 {
        return Err(OcspError::NoCertIds);
    }
    if count > limits.max_cert_ids {
        return Err(OcspError::TooManyCertIds {
            count,
            limit: limits.max_cert_ids,
        });
    }
    let extensions = check_extensions(
        tbs.request_extensions.as_deref(),
        "request extensions",
        UNDERSTOOD_REQUEST_EXTENSIONS,
    )?;
    let nonce = find_nonce(extensions, limits.max_nonce_octets)?
        .map(|(value, extension)| RequestNonce { value, extension });
    let extension_oids = extensions.iter().map(|e| e.extn_id).collect();
    let mut certs = Vec::with_capacity(count);
    for single in tbs.request_list {
        check_extensions(
            single.single_request_extensions.as_deref(),
            "single request extensions",
            &[],
        )?;
        let hash = CertIdHash::from_oid(&single.req_cert.hash_algorithm.oid);
        certs.push(RequestedCert {
            cert_id: single.req_cert,
            hash,
        });
    }
    Ok(ParsedRequest {
        certs,
        nonce,
        signed: request.optional_signature.is_some(),
        extension_oids,
    })
}

/// An unsigned v1 OCSPRequest (§4.1.1) for `cert_ids`, with `extensions` as its
/// requestExtensions: what a client sends to a responder.
pub fn encode_request(
    cert_ids: Vec<CertId>,
    extensions: Option<Vec<Extension>>,
) -> Result<Vec<u8>, OcspError> {
    OcspRequest {
        tbs_request: TbsRequest {
            request_list: cert_ids
                .into_iter()
                .map(|req_cert| Request {
                    req_cert,
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions: extensions,
            ..Default::default()
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(|e| OcspError::malformed("request", e))
}

/// The nonce request extension (RFC 9654 §2.1), not critical: `value` as an OCTET STRING
/// inside extnValue.
pub fn nonce_extension(value: &[u8]) -> Result<Extension, OcspError> {
    let extn_value = OctetString::new(value)
        .and_then(|inner| inner.to_der())
        .and_then(OctetString::new)
        .map_err(|e| OcspError::malformed("nonce", e))?;
    Ok(Extension {
        extn_id: oids::OCSP_NONCE,
        critical: false,
        extn_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_cert::serial_number::SerialNumber;

    fn cert_id(serial: u8) -> CertId {
        CertId {
            hash_algorithm: CertIdHash::Sha1.algorithm_identifier(),
            issuer_name_hash: OctetString::new(vec![1u8; 20]).unwrap(),
            issuer_key_hash: OctetString::new(vec![2u8; 20]).unwrap(),
            serial_number: SerialNumber::new(&[serial]).unwrap(),
        }
    }

    fn request(n: usize, extensions: Option<Vec<Extension>>) -> Vec<u8> {
        let cert_ids = (0..n).map(|i| cert_id(i as u8 % 100 + 1)).collect();
        encode_request(cert_ids, extensions).unwrap()
    }

    fn nonce_ext(len: usize) -> Extension {
        nonce_extension(&vec![7u8; len]).unwrap()
    }

    #[test]
    fn request_with_nonce_parses_and_keeps_the_extension() {
        let parsed = parse_request(&request(2, Some(vec![nonce_ext(32)]))).unwrap();
        assert_eq!(parsed.certs.len(), 2);
        assert_eq!(parsed.certs[0].hash, Some(CertIdHash::Sha1));
        let nonce = parsed.nonce.unwrap();
        assert_eq!(nonce.value, vec![7u8; 32]);
        assert_eq!(nonce.extension, nonce_ext(32));
        assert_eq!(parsed.extension_oids, vec![oids::OCSP_NONCE]);
    }

    #[test]
    fn nonce_lengths_follow_rfc_9654() {
        assert!(parse_request(&request(1, Some(vec![nonce_ext(1)]))).is_ok());
        assert!(parse_request(&request(1, Some(vec![nonce_ext(128)]))).is_ok());
        assert!(matches!(
            parse_request(&request(1, Some(vec![nonce_ext(129)]))),
            Err(OcspError::NonceLength { len: 129, max: 128 })
        ));
        assert!(matches!(
            parse_request(&request(1, Some(vec![nonce_ext(0)]))),
            Err(OcspError::NonceLength { len: 0, max: 128 })
        ));
        let strict = RequestLimits {
            max_nonce_octets: 32,
            ..Default::default()
        };
        assert!(parse_request_with(&request(1, Some(vec![nonce_ext(33)])), &strict).is_err());
    }

    #[test]
    fn too_many_or_no_cert_ids_are_refused() {
        assert!(parse_request(&request(MAX_CERT_IDS, None)).is_ok());
        assert!(matches!(
            parse_request(&request(MAX_CERT_IDS + 1, None)),
            Err(OcspError::TooManyCertIds { count, limit: MAX_CERT_IDS }) if count == MAX_CERT_IDS + 1
        ));
        assert!(matches!(
            parse_request(&request(0, None)),
            Err(OcspError::NoCertIds)
        ));
    }

    #[test]
    fn duplicate_and_unknown_critical_extensions_are_refused() {
        let twice = request(1, Some(vec![nonce_ext(16), nonce_ext(16)]));
        assert!(matches!(
            parse_request(&twice),
            Err(OcspError::DuplicateExtension { .. })
        ));
        let critical = Extension {
            extn_id: ObjectIdentifier::new_unwrap("1.2.3.4"),
            critical: true,
            extn_value: OctetString::new(vec![5, 0]).unwrap(),
        };
        assert!(matches!(
            parse_request(&request(1, Some(vec![critical]))),
            Err(OcspError::UnsupportedCriticalExtension { .. })
        ));
    }

    #[test]
    fn oversize_and_trailing_bytes_are_refused() {
        let mut der = request(1, None);
        der.push(0);
        assert!(matches!(
            parse_request(&der),
            Err(OcspError::Malformed { .. })
        ));
        let big = vec![0x30; MAX_REQUEST_BYTES + 1];
        assert!(matches!(
            parse_request(&big),
            Err(OcspError::RequestTooLarge { .. })
        ));
    }
}
