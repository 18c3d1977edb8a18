//! The hash algorithms a message imprint may use (RFC 3161 §2.4.1 `MessageImprint`, with the
//! SHA-2 family of RFC 5816's update): SHA-256, SHA-384 and SHA-512. SHA-1 and anything
//! unknown are refused with `badAlg`.

use std::fmt;

use const_oid::ObjectIdentifier;
use der::asn1::Null;
use der::Any;
use imza_core::key::DigestAlgorithm;
use imza_core::oids;
use spki::AlgorithmIdentifier;

use crate::TsaError;

/// A hash algorithm accepted in a `MessageImprint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImprintAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl ImprintAlgorithm {
    pub const ALL: [ImprintAlgorithm; 3] = [
        ImprintAlgorithm::Sha256,
        ImprintAlgorithm::Sha384,
        ImprintAlgorithm::Sha512,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ImprintAlgorithm::Sha256 => "SHA-256",
            ImprintAlgorithm::Sha384 => "SHA-384",
            ImprintAlgorithm::Sha512 => "SHA-512",
        }
    }

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            ImprintAlgorithm::Sha256 => oids::SHA256,
            ImprintAlgorithm::Sha384 => oids::SHA384,
            ImprintAlgorithm::Sha512 => oids::SHA512,
        }
    }

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<ImprintAlgorithm> {
        ImprintAlgorithm::ALL.into_iter().find(|a| a.oid() == *oid)
    }

    /// Digest length in octets.
    pub fn digest_len(self) -> usize {
        match self {
            ImprintAlgorithm::Sha256 => 32,
            ImprintAlgorithm::Sha384 => 48,
            ImprintAlgorithm::Sha512 => 64,
        }
    }

    pub fn digest_algorithm(self) -> DigestAlgorithm {
        match self {
            ImprintAlgorithm::Sha256 => DigestAlgorithm::Sha256,
            ImprintAlgorithm::Sha384 => DigestAlgorithm::Sha384,
            ImprintAlgorithm::Sha512 => DigestAlgorithm::Sha512,
        }
    }

    pub fn from_digest_algorithm(d: DigestAlgorithm) -> ImprintAlgorithm {
        match d {
            DigestAlgorithm::Sha256 => ImprintAlgorithm::Sha256,
            DigestAlgorithm::Sha384 => ImprintAlgorithm::Sha384,
            DigestAlgorithm::Sha512 => ImprintAlgorithm::Sha512,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        self.digest_algorithm().digest(data)
    }

    /// The AlgorithmIdentifier with absent parameters, as RFC 5754 §2 says to generate.
    pub fn algorithm_identifier(self) -> AlgorithmIdentifier<Any> {
        AlgorithmIdentifier {
            oid: self.oid(),
            parameters: None,
        }
    }

    /// Reads an AlgorithmIdentifier from a request or token: a SHA-2 OID with parameters
    /// absent or NULL (RFC 5754 §2: receivers MUST accept both).
    pub fn from_identifier(id: &AlgorithmIdentifier<Any>) -> Result<ImprintAlgorithm, TsaError> {
        let algorithm = ImprintAlgorithm::from_oid(&id.oid)
            .ok_or(TsaError::UnsupportedHashAlgorithm { oid: id.oid })?;
        match &id.parameters {
            None => Ok(algorithm),
            Some(p) if p.decode_as::<Null>().is_ok() => Ok(algorithm),
            Some(_) => Err(TsaError::HashParameters {
                algorithm: algorithm.name(),
            }),
        }
    }

    /// Checks that `digest` has this algorithm's length.
    pub fn check_length(self, digest: &[u8]) -> Result<(), TsaError> {
        if digest.len() == self.digest_len() {
            Ok(())
        } else {
            Err(TsaError::WrongImprintLength {
                algorithm: self.name(),
                expected: self.digest_len(),
                actual: digest.len(),
            })
        }
    }
}

impl fmt::Display for ImprintAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ImprintAlgorithm {
    type Err = TsaError;

    /// `sha256`, `SHA-256`, `sha384`, `sha512` (the spellings of `openssl ts -query`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.replace('-', "").to_ascii_lowercase();
        ImprintAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().replace('-', "").to_ascii_lowercase() == wanted)
            .ok_or_else(|| TsaError::UnknownHashName(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn sha2_identifiers_accept_absent_or_null_parameters_only() {
        for alg in ImprintAlgorithm::ALL {
            let mut id = alg.algorithm_identifier();
            assert_eq!(ImprintAlgorithm::from_identifier(&id).unwrap(), alg);
            id.parameters = Some(Any::encode_from(&Null).unwrap());
            assert_eq!(ImprintAlgorithm::from_identifier(&id).unwrap(), alg);
            id.parameters = Some(Any::encode_from(&5u8).unwrap());
            assert!(matches!(
                ImprintAlgorithm::from_identifier(&id),
                Err(TsaError::HashParameters { .. })
            ));
            assert_eq!(alg.digest(b"x").len(), alg.digest_len());
            assert_eq!(alg.name().parse::<ImprintAlgorithm>().unwrap(), alg);
        }
        let sha1 = AlgorithmIdentifier {
            oid: oids::SHA1,
            parameters: None,
        };
        assert!(matches!(
            ImprintAlgorithm::from_identifier(&sha1),
            Err(TsaError::UnsupportedHashAlgorithm { .. })
        ));
        // Absent parameters encode as the 13-octet SEQUENCE { OID } of RFC 5754.
        assert_eq!(
            ImprintAlgorithm::Sha256
                .algorithm_identifier()
                .to_der()
                .unwrap()
                .len(),
            13
        );
    }

    #[test]
    fn imprint_length_must_match_the_algorithm() {
        assert!(ImprintAlgorithm::Sha256.check_length(&[0; 32]).is_ok());
        assert!(matches!(
            ImprintAlgorithm::Sha512.check_length(&[0; 32]),
            Err(TsaError::WrongImprintLength {
                expected: 64,
                actual: 32,
                ..
            })
        ));
    }
}
