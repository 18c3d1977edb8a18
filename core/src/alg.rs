//! imza's algorithm vocabulary: the key types it creates and uses ([`KeyAlgorithm`]), the
//! SHA-2 digests it signs, stamps and hashes with ([`DigestAlgorithm`], the one enum for them:
//! message digests, time-stamp imprints, mobile-signature hashes), the key family a signature
//! algorithm needs ([`PublicKeyKind`]) and the RSASSA-PSS parameters (RFC 4055 §3.1). Keys
//! ([`crate::key`]) and signature verification ([`crate::verify`]) both build on it.

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

/// The SHA-2 digests imza computes: for signing (CMS, certificates, a digest a phone signs),
/// for time-stamp imprints (RFC 3161 §2.4.1 with RFC 5816) and the mobile-signature hashes.
/// SHA-1 is not one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub const ALL: [DigestAlgorithm; 3] = [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ];

    /// `SHA-256`, `SHA-384`, `SHA-512` (FIPS 180-4's names), for messages.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha384 => "SHA-384",
            DigestAlgorithm::Sha512 => "SHA-512",
        }
    }

    /// `sha256`, `sha384`, `sha512`: the spelling of `openssl dgst -sha256` and of imza's
    /// `--digest` arguments.
    pub fn openssl_name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    /// The algorithm's OID (RFC 5754 §2).
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            DigestAlgorithm::Sha256 => oids::SHA256,
            DigestAlgorithm::Sha384 => oids::SHA384,
            DigestAlgorithm::Sha512 => oids::SHA512,
        }
    }

    /// Reads an AlgorithmIdentifier: a SHA-2 OID with parameters absent or NULL (RFC 5754 §2:
    /// receivers MUST accept both).
    pub fn from_identifier(
        id: &AlgorithmIdentifierOwned,
    ) -> Result<DigestAlgorithm, DigestIdentifierError> {
        let algorithm = DigestAlgorithm::from_oid(&id.oid)
            .ok_or(DigestIdentifierError::Unsupported { oid: id.oid })?;
        match &id.parameters {
            None => Ok(algorithm),
            Some(p) if p.decode_as::<der::asn1::Null>().is_ok() => Ok(algorithm),
            Some(_) => Err(DigestIdentifierError::Parameters {
                algorithm: algorithm.name(),
            }),
        }
    }

    /// The digest an OID names, `None` for SHA-1 and anything unknown.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<DigestAlgorithm> {
        DigestAlgorithm::ALL.into_iter().find(|d| d.oid() == *oid)
    }

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
        algorithm_id(self.oid(), false)
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

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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

/// Why an AlgorithmIdentifier is not one of the [`DigestAlgorithm`]s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestIdentifierError {
    /// SHA-1, or an OID that is no digest imza computes.
    #[error("hash algorithm {oid} is not accepted (use SHA-256, SHA-384 or SHA-512)")]
    Unsupported { oid: ObjectIdentifier },
    /// Parameters other than absent or NULL.
    #[error("hash algorithm {algorithm} must have absent or NULL parameters (RFC 5754 §2)")]
    Parameters { algorithm: &'static str },
}

impl FromStr for DigestAlgorithm {
    type Err = CoreError;

    /// `sha256`, `SHA-256`, `sha384`, `sha512` (the spellings of `openssl ts -query`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.replace('-', "").to_ascii_lowercase();
        DigestAlgorithm::ALL
            .into_iter()
            .find(|a| a.openssl_name() == wanted)
            .ok_or_else(|| CoreError::UnknownDigestAlgorithm(s.to_string()))
    }
}

/// `--digest sha256|sha384|sha512` on the command line.
#[cfg(feature = "clap")]
impl clap::ValueEnum for DigestAlgorithm {
    fn value_variants<'a>() -> &'a [Self] {
        &DigestAlgorithm::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.openssl_name()))
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
    let params = RsaPssParams {
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

/// The family of public key a signature needs or a SubjectPublicKeyInfo holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicKeyKind {
    Rsa,
    Ec,
    Ed25519,
}

impl PublicKeyKind {
    /// The key a signature algorithm needs. CMS SignerInfos may name the key type alone
    /// (rsaEncryption, id-ecPublicKey: RFC 3370 §3.2, RFC 5753 §7.1.3), which counts too.
    /// `None` for an algorithm outside these families (DSA, unknown OIDs).
    pub fn of_signature_algorithm(oid: &der::asn1::ObjectIdentifier) -> Option<PublicKeyKind> {
        match *oid {
            oids::RSA_ENCRYPTION
            | oids::SHA1_WITH_RSA
            | oids::SHA256_WITH_RSA
            | oids::SHA384_WITH_RSA
            | oids::SHA512_WITH_RSA
            | oids::RSASSA_PSS => Some(PublicKeyKind::Rsa),
            oids::EC_PUBLIC_KEY
            | oids::ECDSA_WITH_SHA256
            | oids::ECDSA_WITH_SHA384
            | oids::ECDSA_WITH_SHA512 => Some(PublicKeyKind::Ec),
            oids::ED25519 => Some(PublicKeyKind::Ed25519),
            _ => None,
        }
    }

    /// The key a SubjectPublicKeyInfo's algorithm OID holds (an id-RSASSA-PSS key is RSA).
    pub fn of_public_key(oid: &der::asn1::ObjectIdentifier) -> Option<PublicKeyKind> {
        match *oid {
            oids::RSA_ENCRYPTION | oids::RSASSA_PSS => Some(PublicKeyKind::Rsa),
            oids::EC_PUBLIC_KEY => Some(PublicKeyKind::Ec),
            oids::ED25519 => Some(PublicKeyKind::Ed25519),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PublicKeyKind::Rsa => "RSA",
            PublicKeyKind::Ec => "EC",
            PublicKeyKind::Ed25519 => "Ed25519",
        }
    }
}

/// RSASSA-PSS-params (RFC 4055 §3.1):
///
/// ```text
/// RSASSA-PSS-params  ::=  SEQUENCE  {
///    hashAlgorithm      [0] HashAlgorithm DEFAULT sha1Identifier,
///    maskGenAlgorithm   [1] MaskGenAlgorithm DEFAULT mgf1SHA1Identifier,
///    saltLength         [2] INTEGER DEFAULT 20,
///    trailerField       [3] INTEGER DEFAULT 1  }
/// ```
#[derive(Clone, Debug, der::Sequence)]
pub struct RsaPssParams {
    /// Absent means SHA-1 (refused as the message digest when verifying).
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    /// MGF1 ([`oids::MGF1`]) with its hash as parameters.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    /// Absent means 20 bytes; verification requires exactly this salt length.
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    pub salt_length: Option<u32>,
    /// Absent means 1 (the 0xbc trailer), the only one defined.
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub trailer_field: Option<u32>,
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
    fn digest_algorithms_are_found_by_their_oids() {
        for digest in DigestAlgorithm::ALL {
            assert_eq!(DigestAlgorithm::from_oid(&digest.oid()), Some(digest));
            assert_eq!(digest.algorithm_identifier().oid, digest.oid());
            assert_eq!(digest.digest(b"x").len(), digest.output_len());
        }
        assert_eq!(DigestAlgorithm::from_oid(&oids::SHA1), None);
        assert_eq!(DigestAlgorithm::Sha384.to_string(), "SHA-384");
        for (text, digest) in [
            ("sha256", DigestAlgorithm::Sha256),
            ("SHA-512", DigestAlgorithm::Sha512),
        ] {
            assert_eq!(text.parse::<DigestAlgorithm>().unwrap(), digest);
        }
        assert!("sha1".parse::<DigestAlgorithm>().is_err());
    }
}
