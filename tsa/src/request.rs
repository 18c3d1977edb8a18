//! Time-stamp requests (RFC 3161 §2.4.1): reading one with the checks every TSA makes, and
//! building one as a client (`imza ts request`).
//!
//! ```text
//! TimeStampReq ::= SEQUENCE  {
//!    version                      INTEGER  { v1(1) },
//!    messageImprint               MessageImprint,
//!      --a hash algorithm OID and the hash value of the data to be
//!      --time-stamped
//!    reqPolicy             TSAPolicyId              OPTIONAL,
//!    nonce                 INTEGER                  OPTIONAL,
//!    certReq               BOOLEAN                  DEFAULT FALSE,
//!    extensions            [0] IMPLICIT Extensions  OPTIONAL  }
//! ```

use const_oid::ObjectIdentifier;
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use imza_core::alg::DigestAlgorithm;
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion};

use crate::serial::{int_hex, positive_int};
use crate::{check_imprint_length, imprint_algorithm};
use crate::{SystemFault, TsaError};

/// The largest request read (a real one is about 100 bytes; extensions could add some).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A decoded `TimeStampReq` whose imprint uses an accepted algorithm with the right length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeStampRequest {
    request: TimeStampReq,
    algorithm: DigestAlgorithm,
}

impl TimeStampRequest {
    /// Reads a DER request: at most [`MAX_REQUEST_BYTES`], one complete `TimeStampReq` and
    /// nothing after it, version 1, a SHA-2 imprint of the right length.
    pub fn from_der(der: &[u8]) -> Result<TimeStampRequest, TsaError> {
        if der.len() > MAX_REQUEST_BYTES {
            return Err(TsaError::RequestTooLarge {
                size: der.len(),
                limit: MAX_REQUEST_BYTES,
            });
        }
        let request =
            TimeStampReq::from_der(der).map_err(|e| TsaError::MalformedRequest(e.to_string()))?;
        let imprint = &request.message_imprint;
        let algorithm = imprint_algorithm(&imprint.hash_algorithm)?;
        check_imprint_length(algorithm, imprint.hashed_message.as_bytes())?;
        Ok(TimeStampRequest { request, algorithm })
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The digest of the data to be stamped.
    pub fn hashed_message(&self) -> &[u8] {
        self.request.message_imprint.hashed_message.as_bytes()
    }

    /// The `MessageImprint` exactly as sent, which the token must repeat (RFC 3161 §2.4.2).
    pub fn message_imprint(&self) -> &MessageImprint {
        &self.request.message_imprint
    }

    pub fn policy(&self) -> Option<ObjectIdentifier> {
        self.request.req_policy
    }

    pub fn nonce(&self) -> Option<&Int> {
        self.request.nonce.as_ref()
    }

    /// The nonce as `0x...` hex, for messages.
    pub fn nonce_hex(&self) -> Option<String> {
        self.request.nonce.as_ref().map(int_hex)
    }

    pub fn cert_req(&self) -> bool {
        self.request.cert_req
    }

    /// The OIDs of the request's extensions (none are supported by imza's TSA).
    pub fn extension_oids(&self) -> Vec<ObjectIdentifier> {
        self.request
            .extensions
            .iter()
            .flatten()
            .map(|e| e.extn_id)
            .collect()
    }

    /// The request re-encoded (DER, so equal to the input it was read from).
    pub fn to_der(&self) -> Result<Vec<u8>, TsaError> {
        self.request
            .to_der()
            .map_err(|e| TsaError::der("TimeStampReq", e))
    }
}

/// Builds a DER `TimeStampReq` for `digest` (the hash of the data, made with `algorithm`).
///
/// `nonce` is read as an unsigned big-endian number (8 random octets are usual: see
/// [`random_nonce`]); `cert_req` asks the TSA to put its certificate in the token;
/// `policy` asks for a particular TSA policy.
pub fn build_request(
    digest: &[u8],
    algorithm: DigestAlgorithm,
    nonce: Option<&[u8]>,
    cert_req: bool,
    policy: Option<ObjectIdentifier>,
) -> Result<Vec<u8>, TsaError> {
    check_imprint_length(algorithm, digest)?;
    let request = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: algorithm.algorithm_identifier(),
            hashed_message: OctetString::new(digest)
                .map_err(|e| TsaError::der("message imprint", e))?,
        },
        req_policy: policy,
        nonce: nonce.map(positive_int).transpose()?,
        cert_req,
        extensions: None,
    };
    request
        .to_der()
        .map_err(|e| TsaError::der("TimeStampReq", e))
}

/// 8 random octets (64 bits, as `openssl ts -query` uses) for a request's nonce.
pub fn random_nonce() -> Result<Vec<u8>, TsaError> {
    let mut nonce = [0u8; 8];
    openssl::rand::rand_bytes(&mut nonce).map_err(|e| {
        TsaError::SystemFailure(SystemFault::Randomness {
            purpose: "nonce",
            source: Box::new(e),
        })
    })?;
    Ok(nonce.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use imza_core::oids;

    #[test]
    fn built_requests_read_back() {
        let digest = DigestAlgorithm::Sha384.digest(b"hello");
        let der = build_request(
            &digest,
            DigestAlgorithm::Sha384,
            Some(&[0xff, 0x01]),
            true,
            Some(oids::ETSI_NCP),
        )
        .unwrap();
        let request = TimeStampRequest::from_der(&der).unwrap();
        assert_eq!(request.algorithm(), DigestAlgorithm::Sha384);
        assert_eq!(request.hashed_message(), digest.as_slice());
        assert_eq!(request.nonce_hex().unwrap(), "0xFF01");
        assert!(request.cert_req());
        assert_eq!(request.policy(), Some(oids::ETSI_NCP));
        assert_eq!(request.to_der().unwrap(), der);
    }

    #[test]
    fn requests_with_bad_imprints_or_sizes_are_refused() {
        assert!(matches!(
            build_request(&[0; 20], DigestAlgorithm::Sha256, None, false, None),
            Err(TsaError::WrongImprintLength { .. })
        ));
        assert!(matches!(
            TimeStampRequest::from_der(&vec![0x30; MAX_REQUEST_BYTES + 1]),
            Err(TsaError::RequestTooLarge { .. })
        ));
        let good = build_request(&[7; 32], DigestAlgorithm::Sha256, None, false, None).unwrap();
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            TimeStampRequest::from_der(&trailing),
            Err(TsaError::MalformedRequest(_))
        ));
        for cut in 0..good.len() {
            assert!(TimeStampRequest::from_der(&good[..cut]).is_err());
        }
    }
}
