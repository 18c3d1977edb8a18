//! Encoding and signing responses (RFC 6960 §4.2.1): the signed BasicOCSPResponse wrapped in
//! an OCSPResponse, and the bare, unsigned error responses of §2.3.
//!
//! The signature is computed "on the hash of the DER encoding of ResponseData" by the
//! delegated responder's [`SigningKey`], whichever backend holds it.

use der::asn1::{AnyRef, BitStringRef, OctetString};
use der::{Decode, Encode};
use x509_ocsp::{OcspResponse, OcspResponseStatus, ResponseBytes, ResponseData};

use imza_core::ocsp::BasicOcspResponseRaw;
use imza_core::{oids, CoreError, SigningKey};

/// Signs `data` with `key` and returns the DER of the `successful` OCSPResponse carrying it,
/// with `certs` (DER certificates) in the BasicOCSPResponse.
pub(crate) fn sign_response(
    data: &ResponseData,
    key: &dyn SigningKey,
    certs: &[&[u8]],
) -> Result<Vec<u8>, CoreError> {
    let tbs = data.to_der().map_err(CoreError::der)?;
    let signature = key.sign(&tbs)?;
    let certs = certs
        .iter()
        .map(|der| AnyRef::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CoreError::der)?;
    let basic = BasicOcspResponseRaw {
        tbs_response_data: AnyRef::from_der(&tbs).map_err(CoreError::der)?,
        signature_algorithm: key.signature_algorithm(),
        signature: BitStringRef::from_bytes(&signature).map_err(CoreError::der)?,
        certs: (!certs.is_empty()).then_some(certs),
    };
    let response = OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: oids::OCSP_BASIC,
            response: OctetString::new(basic.to_der().map_err(CoreError::der)?)
                .map_err(CoreError::der)?,
        }),
    };
    response.to_der().map_err(CoreError::der)
}

/// The unsigned OCSPResponse carrying only an error status (RFC 6960 §2.3).
pub(crate) fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    let response = OcspResponse {
        response_status: status,
        response_bytes: None,
    };
    // `SEQUENCE { ENUMERATED status }` cannot fail to encode; the literal keeps this total.
    response
        .to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, status as u8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_are_five_bytes() {
        assert_eq!(
            error_response(OcspResponseStatus::Unauthorized),
            vec![0x30, 0x03, 0x0a, 0x01, 0x06]
        );
        assert_eq!(
            error_response(OcspResponseStatus::MalformedRequest),
            vec![0x30, 0x03, 0x0a, 0x01, 0x01]
        );
    }
}
