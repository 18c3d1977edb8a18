//! Signature verification over DER inputs: a SubjectPublicKeyInfo, an AlgorithmIdentifier and
//! the signed bytes. Used for CSR proof of possession (RFC 2986 §3) and, later, path validation.

use openssl::pkey::{Id, PKey};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use spki::AlgorithmIdentifierOwned;

use crate::key::DigestAlgorithm;
use crate::{oids, CoreError};

/// Which legacy algorithms a verification accepts besides the current ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignaturePolicy {
    /// Accept sha1WithRSAEncryption (RFC 3279 §2.2.1): only for checking old objects, such
    /// as OCSP responses from legacy responders, when the caller explicitly asks.
    pub accept_sha1: bool,
}

/// Verifies `signature` over `message` with the public key `spki_der` under `algorithm`.
///
/// Supports RSA PKCS#1 v1.5 and PSS (SHA-256/384/512), ECDSA with SHA-256/384/512 and Ed25519;
/// anything else is [`CoreError::UnsupportedSignatureAlgorithm`].
pub fn verify_signature(
    spki_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CoreError> {
    verify_signature_with(
        spki_der,
        algorithm,
        message,
        signature,
        SignaturePolicy::default(),
    )
}

/// Verifies `signature` over a digest computed elsewhere: ECDSA over `digest`, or RSA PKCS#1
/// v1.5 over the DigestInfo of `algorithm` (what [`crate::key::SigningKey::sign_digest`] makes).
/// The signature is checked against the key alone; `digest` must have `algorithm`'s length.
pub fn verify_digest(
    spki_der: &[u8],
    algorithm: DigestAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), CoreError> {
    crate::key::check_digest_length(algorithm, digest)?;
    let key =
        PKey::public_key_from_der(spki_der).map_err(|e| CoreError::malformed("public key", e))?;
    let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&key).map_err(CoreError::openssl)?;
    ctx.verify_init().map_err(CoreError::openssl)?;
    match key.id() {
        Id::EC => {}
        Id::RSA => ctx
            .set_rsa_padding(Padding::PKCS1)
            .and_then(|()| ctx.set_signature_md(algorithm.md()))
            .map_err(CoreError::openssl)?,
        other => {
            return Err(CoreError::UnsupportedKey(format!(
                "key type {other:?} for a signature over a digest"
            )))
        }
    }
    // OpenSSL reports a malformed signature as an error and a wrong one as `false`: both are
    // a signature that does not verify.
    match ctx.verify(digest, signature) {
        Ok(true) => Ok(()),
        Ok(false) => Err(CoreError::BadSignature(
            "the signature does not match the digest and the key".into(),
        )),
        Err(e) => Err(CoreError::BadSignature(format!(
            "the signature cannot be read: {e}"
        ))),
    }
}

/// [`verify_signature`] under an explicit [`SignaturePolicy`].
pub fn verify_signature_with(
    spki_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
    policy: SignaturePolicy,
) -> Result<(), CoreError> {
    if let Some(digest) = ecdsa_digest(&algorithm.oid) {
        return verify_ecdsa(spki_der, digest, message, signature);
    }
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
        oids::SHA1_WITH_RSA if policy.accept_sha1 => {
            (expect(Id::RSA, "RSA").map(|_| md(Md::sha1()))?, false)
        }
        oids::RSASSA_PSS => (Some(pss_digest(algorithm)?), true),
        other => return Err(CoreError::UnsupportedSignatureAlgorithm(other)),
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

fn ecdsa_digest(oid: &der::asn1::ObjectIdentifier) -> Option<DigestAlgorithm> {
    match *oid {
        oids::ECDSA_WITH_SHA256 => Some(DigestAlgorithm::Sha256),
        oids::ECDSA_WITH_SHA384 => Some(DigestAlgorithm::Sha384),
        oids::ECDSA_WITH_SHA512 => Some(DigestAlgorithm::Sha512),
        _ => None,
    }
}

/// ECDSA over the named curves of RFC 5480, through OpenSSL's EC_KEY/ECDSA_do_verify.
///
/// Going around the generic `d2i_PUBKEY` + `EVP_DigestVerify` path matters here: with OpenSSL
/// 3.0 its decoder and provider fetches cost several times the verification itself, and every
/// CSR of a batch is verified (proof of possession).
fn verify_ecdsa(
    spki_der: &[u8],
    digest: DigestAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CoreError> {
    use der::Decode;
    use openssl::bn::BigNumContext;
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    use openssl::ecdsa::EcdsaSig;
    use openssl::nid::Nid;

    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| CoreError::malformed("public key", e))?;
    if spki.algorithm.oid != oids::EC_PUBLIC_KEY {
        return Err(CoreError::BadSignature(
            "an ECDSA signature needs an EC key".into(),
        ));
    }
    let curve = spki
        .algorithm
        .parameters
        .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
        .ok_or_else(|| CoreError::malformed("public key", "EC key without a named curve"))?;
    let nid = match curve {
        oids::SECP256R1 => Nid::X9_62_PRIME256V1,
        oids::SECP384R1 => Nid::SECP384R1,
        oids::SECP521R1 => Nid::SECP521R1,
        other => {
            return Err(CoreError::BadSignature(format!(
                "unsupported EC curve {other}"
            )))
        }
    };
    let group = EcGroup::from_curve_name(nid).map_err(CoreError::openssl)?;
    let mut ctx = BigNumContext::new().map_err(CoreError::openssl)?;
    let point_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CoreError::malformed("public key", "BIT STRING with unused bits"))?;
    let point = EcPoint::from_bytes(&group, point_bytes, &mut ctx)
        .map_err(|e| CoreError::malformed("public key", e))?;
    let key = EcKey::from_public_key(&group, &point).map_err(CoreError::openssl)?;
    let sig = EcdsaSig::from_der(signature)
        .map_err(|_| CoreError::BadSignature("the ECDSA signature is not DER".into()))?;
    match sig.verify(&digest.digest(message), &key) {
        Ok(true) => Ok(()),
        _ => Err(CoreError::BadSignature(
            "the signature does not match the data".into(),
        )),
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
    /// Absent means SHA-1 (refused when verifying).
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    /// MGF1 ([`oids::MGF1`]) with its hash as parameters.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    pub salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub trailer_field: Option<u32>,
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
