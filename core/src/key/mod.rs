//! The one idea that holds imza together: anything that signs is a [`SigningKey`].
//!
//! A CA, an OCSP responder, a TSA and a citizen all hold something implementing this trait:
//! a software key ([`software`]), a PKCS#11 object in an HSM or on a card ([`pkcs11`]), or later
//! a remote key. Certificate, CRL, OCSP and CMS builders take `&dyn SigningKey` and never care which.

pub mod pkcs11;
pub mod software;

use std::fmt;
use std::str::FromStr;

use der::asn1::ObjectIdentifier;
use spki::AlgorithmIdentifierOwned;

use crate::oids;
use crate::CoreError;

/// Key types imza can create and use for CA, OCSP and TSA keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyAlgorithm {
    #[serde(rename = "ec-p256")]
    EcP256,
    #[serde(rename = "ec-p384")]
    EcP384,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    /// The name used on the command line and in stored records (`ec-p256`, `rsa-3072`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcP256 => "ec-p256",
            KeyAlgorithm::EcP384 => "ec-p384",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }

    pub fn is_ec(self) -> bool {
        matches!(self, KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384)
    }

    /// RSA modulus length in bits, `None` for EC keys.
    pub fn rsa_bits(self) -> Option<u32> {
        match self {
            KeyAlgorithm::Rsa2048 => Some(2048),
            KeyAlgorithm::Rsa3072 => Some(3072),
            KeyAlgorithm::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The named curve OID, `None` for RSA keys.
    pub fn curve_oid(self) -> Option<ObjectIdentifier> {
        match self {
            KeyAlgorithm::EcP256 => Some(oids::SECP256R1),
            KeyAlgorithm::EcP384 => Some(oids::SECP384R1),
            _ => None,
        }
    }

    /// The digest paired with this key: SHA-384 for P-384 (RFC 5480 §4), SHA-256 otherwise.
    pub fn digest(self) -> DigestAlgorithm {
        match self {
            KeyAlgorithm::EcP384 => DigestAlgorithm::Sha384,
            _ => DigestAlgorithm::Sha256,
        }
    }

    /// The X.509 signature algorithm this key signs with (RFC 5758 §3.2, RFC 4055 §5).
    ///
    /// ECDSA identifiers carry no parameters; RSA PKCS#1 v1.5 ones carry an explicit NULL.
    pub fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match (self.is_ec(), self.digest()) {
            (true, DigestAlgorithm::Sha384) => algorithm_id(oids::ECDSA_WITH_SHA384, false),
            (true, _) => algorithm_id(oids::ECDSA_WITH_SHA256, false),
            (false, _) => algorithm_id(oids::SHA256_WITH_RSA, true),
        }
    }
}

fn algorithm_id(oid: ObjectIdentifier, null_params: bool) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: null_params.then(|| der::asn1::Null.into()),
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| CoreError::UnknownKeyAlgorithm(s.to_string()))
    }
}

/// Message digests used when signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            DigestAlgorithm::Sha256 => openssl::sha::sha256(data).to_vec(),
            DigestAlgorithm::Sha384 => openssl::sha::sha384(data).to_vec(),
            DigestAlgorithm::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }

    /// Length of the digest in bytes.
    pub fn output_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 32,
            DigestAlgorithm::Sha384 => 48,
            DigestAlgorithm::Sha512 => 64,
        }
    }

    /// The digest's AlgorithmIdentifier, parameters absent (RFC 5754 §2).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        let oid = match self {
            DigestAlgorithm::Sha256 => oids::SHA256,
            DigestAlgorithm::Sha384 => oids::SHA384,
            DigestAlgorithm::Sha512 => oids::SHA512,
        };
        algorithm_id(oid, false)
    }

    pub fn message_digest(self) -> openssl::hash::MessageDigest {
        match self {
            DigestAlgorithm::Sha256 => openssl::hash::MessageDigest::sha256(),
            DigestAlgorithm::Sha384 => openssl::hash::MessageDigest::sha384(),
            DigestAlgorithm::Sha512 => openssl::hash::MessageDigest::sha512(),
        }
    }

    /// The digest for OpenSSL's `EVP_PKEY_CTX` calls (signing or verifying a given digest).
    pub fn md(self) -> &'static openssl::md::MdRef {
        match self {
            DigestAlgorithm::Sha256 => openssl::md::Md::sha256(),
            DigestAlgorithm::Sha384 => openssl::md::Md::sha384(),
            DigestAlgorithm::Sha512 => openssl::md::Md::sha512(),
        }
    }

    /// DER prefix of the PKCS#1 v1.5 DigestInfo for this digest (RFC 8017 §9.2, note 1).
    pub fn pkcs1_digest_info_prefix(self) -> &'static [u8] {
        match self {
            DigestAlgorithm::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            DigestAlgorithm::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            DigestAlgorithm::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// Something that can sign: a CA key, an OCSP or TSA key, a citizen's card.
///
/// `sign` takes the whole message (e.g. the DER of a TBSCertificate) and returns the signature
/// in the form X.509 and CMS carry it: a DER `ECDSA-Sig-Value` for ECDSA (RFC 3279 §2.2.3), the
/// raw PKCS#1 v1.5 signature for RSA. Backends that hash on the host do so inside `sign`.
pub trait SigningKey: Send + Sync {
    /// The key's type and size.
    fn algorithm(&self) -> KeyAlgorithm;

    /// The DER-encoded SubjectPublicKeyInfo of the key.
    fn public_key_der(&self) -> Result<Vec<u8>, CoreError>;

    /// Signs `message` with [`KeyAlgorithm::signature_algorithm`].
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreError>;

    /// Where the key lives, for messages and the audit log (never secret material).
    fn describe(&self) -> String;

    /// The AlgorithmIdentifier placed in certificates, CRLs and CMS next to the signature.
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        self.algorithm().signature_algorithm()
    }

    /// Signs a digest computed elsewhere (the mobile-signature flow: the relying party hashes,
    /// the phone signs the hash). `digest` is the output of `algorithm` over the message; the
    /// signature has the form [`SigningKey::sign`] returns: ECDSA over the digest, or PKCS#1
    /// v1.5 over the DigestInfo of `algorithm` (RFC 8017 §9.2).
    ///
    /// Keys that can only sign whole messages keep this default, which refuses.
    fn sign_digest(&self, algorithm: DigestAlgorithm, digest: &[u8]) -> Result<Vec<u8>, CoreError> {
        let _ = (algorithm, digest);
        Err(CoreError::Signing(format!(
            "{} cannot sign a digest computed elsewhere",
            self.describe()
        )))
    }
}

/// Checks that `digest` has the length of `algorithm`'s output, before a key signs it.
pub fn check_digest_length(algorithm: DigestAlgorithm, digest: &[u8]) -> Result<(), CoreError> {
    if digest.len() == algorithm.output_len() {
        Ok(())
    } else {
        Err(CoreError::Signing(format!(
            "a {:?} digest has {} bytes, not {}",
            algorithm,
            algorithm.output_len(),
            digest.len()
        )))
    }
}

/// The RSASSA-PSS AlgorithmIdentifier (RFC 4055 §3.1) imza signs with: `digest`, MGF1 with
/// the same digest, a salt as long as the digest, the default trailer.
pub fn rsa_pss_algorithm(digest: DigestAlgorithm) -> AlgorithmIdentifierOwned {
    let params = crate::verify::RsaPssParams {
        hash_algorithm: Some(digest.algorithm_identifier()),
        mask_gen_algorithm: Some(AlgorithmIdentifierOwned {
            oid: oids::MGF1,
            parameters: der::Any::encode_from(&digest.algorithm_identifier()).ok(),
        }),
        salt_length: u32::try_from(digest.output_len()).ok(),
        trailer_field: None,
    };
    AlgorithmIdentifierOwned {
        oid: oids::RSASSA_PSS,
        parameters: der::Any::encode_from(&params).ok(),
    }
}

/// Converts a raw `r || s` ECDSA signature (PKCS#11 `CKM_ECDSA` output) to the DER
/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` of RFC 3279 §2.2.3.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, CoreError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(CoreError::Signing(format!(
            "raw ECDSA signature has odd or zero length {}",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let r = openssl::bn::BigNum::from_slice(r).map_err(CoreError::openssl)?;
    let s = openssl::bn::BigNum::from_slice(s).map_err(CoreError::openssl)?;
    let sig =
        openssl::ecdsa::EcdsaSig::from_private_components(r, s).map_err(CoreError::openssl)?;
    sig.to_der().map_err(CoreError::openssl)
}

impl KeyAlgorithm {
    /// The key type of a DER SubjectPublicKeyInfo, or `UnsupportedKey` for anything else.
    /// Read with `der` alone (RFC 5480 §2, RFC 3279 §2.3.1): no OpenSSL decoder on this path.
    pub fn of_public_key(spki_der: &[u8]) -> Result<KeyAlgorithm, CoreError> {
        use der::asn1::{ObjectIdentifier, UintRef};
        use der::{Decode, Sequence};

        /// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017 A.1.1)
        #[derive(Sequence)]
        struct RsaPublicKey<'a> {
            modulus: UintRef<'a>,
            public_exponent: UintRef<'a>,
        }

        let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
            .map_err(|e| CoreError::malformed("public key", e))?;
        match spki.algorithm.oid {
            oids::RSA_ENCRYPTION => {
                let bytes = spki.subject_public_key.as_bytes().ok_or_else(|| {
                    CoreError::malformed("public key", "BIT STRING with unused bits")
                })?;
                let rsa = RsaPublicKey::from_der(bytes)
                    .map_err(|e| CoreError::malformed("RSA public key", e))?;
                let modulus = rsa.modulus.as_bytes();
                let bits =
                    modulus.len() * 8 - modulus.first().map_or(0, |b| b.leading_zeros() as usize);
                match bits {
                    2048 => Ok(KeyAlgorithm::Rsa2048),
                    3072 => Ok(KeyAlgorithm::Rsa3072),
                    4096 => Ok(KeyAlgorithm::Rsa4096),
                    bits => Err(CoreError::UnsupportedKey(format!(
                        "RSA-{bits} (use 2048, 3072 or 4096 bits)"
                    ))),
                }
            }
            oids::EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                match curve {
                    Some(oids::SECP256R1) => Ok(KeyAlgorithm::EcP256),
                    Some(oids::SECP384R1) => Ok(KeyAlgorithm::EcP384),
                    Some(other) => Err(CoreError::UnsupportedKey(format!(
                        "EC curve {other} (use P-256 or P-384)"
                    ))),
                    None => Err(CoreError::UnsupportedKey(
                        "EC key without a named curve".into(),
                    )),
                }
            }
            other => Err(CoreError::UnsupportedKey(format!("key type {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_algorithm_names_round_trip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.name().parse::<KeyAlgorithm>().unwrap(), alg);
        }
        assert!("dsa-1024".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn raw_ecdsa_signature_becomes_der_sequence() {
        let mut raw = vec![0u8; 64];
        raw[31] = 1;
        raw[63] = 2;
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(der, vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]);
        assert!(ecdsa_raw_to_der(&raw[..63]).is_err());
    }
}
