//! The hash algorithms a message imprint may use (RFC 3161 §2.4.1 `MessageImprint`, with the
//! SHA-2 family of RFC 5816's update): SHA-256, SHA-384 and SHA-512, imza's one
//! [`DigestAlgorithm`]. SHA-1 and anything unknown are refused with `badAlg`.

use der::Any;
use imza_core::alg::{DigestAlgorithm, DigestIdentifierError};
use spki::AlgorithmIdentifier;

use crate::TsaError;

/// Reads an AlgorithmIdentifier from a request or token: a SHA-2 OID with parameters absent
/// or NULL (RFC 5754 §2: receivers MUST accept both).
pub fn imprint_algorithm(id: &AlgorithmIdentifier<Any>) -> Result<DigestAlgorithm, TsaError> {
    DigestAlgorithm::from_identifier(id).map_err(|e| match e {
        DigestIdentifierError::Unsupported { oid } => TsaError::UnsupportedHashAlgorithm { oid },
        DigestIdentifierError::Parameters { algorithm } => TsaError::HashParameters { algorithm },
    })
}

/// Checks that `digest` has `algorithm`'s length.
pub fn check_imprint_length(algorithm: DigestAlgorithm, digest: &[u8]) -> Result<(), TsaError> {
    if digest.len() == algorithm.output_len() {
        Ok(())
    } else {
        Err(TsaError::WrongImprintLength {
            algorithm: algorithm.name(),
            expected: algorithm.output_len(),
            actual: digest.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::Null;
    use der::Encode;
    use imza_core::oids;

    #[test]
    fn sha2_identifiers_accept_absent_or_null_parameters_only() {
        for alg in DigestAlgorithm::ALL {
            let mut id = alg.algorithm_identifier();
            assert_eq!(imprint_algorithm(&id).unwrap(), alg);
            id.parameters = Some(Any::encode_from(&Null).unwrap());
            assert_eq!(imprint_algorithm(&id).unwrap(), alg);
            id.parameters = Some(Any::encode_from(&5u8).unwrap());
            assert!(matches!(
                imprint_algorithm(&id),
                Err(TsaError::HashParameters { .. })
            ));
        }
        let sha1 = AlgorithmIdentifier {
            oid: oids::SHA1,
            parameters: None,
        };
        assert!(matches!(
            imprint_algorithm(&sha1),
            Err(TsaError::UnsupportedHashAlgorithm { .. })
        ));
        // Absent parameters encode as the 13-octet SEQUENCE { OID } of RFC 5754.
        assert_eq!(
            DigestAlgorithm::Sha256
                .algorithm_identifier()
                .to_der()
                .unwrap()
                .len(),
            13
        );
    }

    #[test]
    fn imprint_length_must_match_the_algorithm() {
        assert!(check_imprint_length(DigestAlgorithm::Sha256, &[0; 32]).is_ok());
        assert!(matches!(
            check_imprint_length(DigestAlgorithm::Sha512, &[0; 32]),
            Err(TsaError::WrongImprintLength {
                expected: 64,
                actual: 32,
                ..
            })
        ));
    }
}
