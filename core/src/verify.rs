//! Signature verification over DER inputs: a SubjectPublicKeyInfo, an AlgorithmIdentifier and
//! the signed bytes. Used for CSR proof of possession (RFC 2986 §3) and, later, path validation.

use openssl::pkey::{Id, PKey};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use spki::AlgorithmIdentifierOwned;

use crate::{oids, CoreError};

/// Verifies `signature` over `message` with the public key `spki_der` under `algorithm`.
///
/// Supports RSA PKCS#1 v1.5 and PSS (SHA-256/384/512), ECDSA with SHA-256/384/512 and Ed25519.
pub fn verify_signature(
    spki_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CoreError> {
    let key =
        PKey::public_key_from_der(spki_der).map_err(|e| CoreError::malformed("public key", e))?;
    let oid = algorithm.oid;
    let expect = |id: Id, name: &str| {
        if key.id() == id {
            Ok(())
        } else {
            Err(CoreError::BadSignature(format!(
                "algorithm {oid} needs a {name} key"
            )))
        }
    };
    let md = |m: openssl::hash::MessageDigest| Some(m);
    use openssl::hash::MessageDigest as Md;
    let (digest, pss) = match oid {
        oids::SHA256_WITH_RSA => (expect(Id::RSA, "RSA").map(|_| md(Md::sha256()))?, false),
        oids::SHA384_WITH_RSA => (expect(Id::RSA, "RSA").map(|_| md(Md::sha384()))?, false),
        oids::SHA512_WITH_RSA => (expect(Id::RSA, "RSA").map(|_| md(Md::sha512()))?, false),
        oids::ECDSA_WITH_SHA256 => (expect(Id::EC, "EC").map(|_| md(Md::sha256()))?, false),
        oids::ECDSA_WITH_SHA384 => (expect(Id::EC, "EC").map(|_| md(Md::sha384()))?, false),
        oids::ECDSA_WITH_SHA512 => (expect(Id::EC, "EC").map(|_| md(Md::sha512()))?, false),
        oids::ED25519 => (expect(Id::ED25519, "Ed25519").map(|_| None)?, false),
        oids::RSASSA_PSS => (Some(pss_digest(algorithm)?), true),
        other => {
            return Err(CoreError::BadSignature(format!(
                "unsupported signature algorithm {other}"
            )))
        }
    };
    let ok = match digest {
        Some(md) => {
            let mut verifier = Verifier::new(md, &key).map_err(CoreError::openssl)?;
            if pss {
                verifier
                    .set_rsa_padding(Padding::PKCS1_PSS)
                    .and_then(|_| verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH))
                    .map_err(CoreError::openssl)?;
            }
            verifier.update(message).map_err(CoreError::openssl)?;
            verifier.verify(signature).unwrap_or(false)
        }
        None => Verifier::new_without_digest(&key)
            .and_then(|mut v| v.verify_oneshot(signature, message))
            .unwrap_or(false),
    };
    if ok {
        Ok(())
    } else {
        Err(CoreError::BadSignature(
            "the signature does not match the data".into(),
        ))
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
struct RsaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

/// The PSS hash; SHA-1 (the default when absent) is refused.
fn pss_digest(
    algorithm: &AlgorithmIdentifierOwned,
) -> Result<openssl::hash::MessageDigest, CoreError> {
    use openssl::hash::MessageDigest as Md;
    let params = algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| CoreError::BadSignature("RSASSA-PSS without parameters".into()))?;
    let params = params
        .decode_as::<RsaPssParams>()
        .map_err(|e| CoreError::malformed("RSASSA-PSS parameters", e))?;
    let hash = params
        .hash_algorithm
        .ok_or_else(|| CoreError::BadSignature("RSASSA-PSS with SHA-1 is not accepted".into()))?;
    match hash.oid {
        oids::SHA256 => Ok(Md::sha256()),
        oids::SHA384 => Ok(Md::sha384()),
        oids::SHA512 => Ok(Md::sha512()),
        other => Err(CoreError::BadSignature(format!(
            "RSASSA-PSS hash {other} not accepted"
        ))),
    }
}
