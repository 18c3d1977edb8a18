//! Signature verification over DER inputs: a SubjectPublicKeyInfo, an AlgorithmIdentifier and
//! the signed bytes. Used for CSR proof of possession (RFC 2986 §3) and, later, path validation.

use openssl::pkey::{Id, PKey};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use spki::AlgorithmIdentifierOwned;

use crate::alg::{check_digest_length, DigestAlgorithm, RsaPssParams};
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
/// Supports RSA PKCS#1 v1.5 and PSS (SHA-256/384/512, under the parameters the algorithm
/// identifier declares: MGF1 hash and salt length), ECDSA with SHA-256/384/512 and Ed25519;
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
    check_digest_length(algorithm, digest)?;
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
        oids::SHA256_WITH_RSA => (expect(Id::RSA, "RSA").map(|_| md(Md::sha256()))?, None),
        oids::SHA384_WITH_RSA => (expect(Id::RSA, "RSA").map(|_| md(Md::sha384()))?, None),
        oids::SHA512_WITH_RSA => (expect(Id::RSA, "RSA").map(|_| md(Md::sha512()))?, None),
        oids::ECDSA_WITH_SHA256 => (expect(Id::EC, "EC").map(|_| md(Md::sha256()))?, None),
        oids::ECDSA_WITH_SHA384 => (expect(Id::EC, "EC").map(|_| md(Md::sha384()))?, None),
        oids::ECDSA_WITH_SHA512 => (expect(Id::EC, "EC").map(|_| md(Md::sha512()))?, None),
        oids::ED25519 => (expect(Id::ED25519, "Ed25519").map(|_| None)?, None),
        oids::SHA1_WITH_RSA if policy.accept_sha1 => {
            (expect(Id::RSA, "RSA").map(|_| md(Md::sha1()))?, None)
        }
        oids::RSASSA_PSS => {
            if key.id() != Id::RSA_PSS {
                expect(Id::RSA, "RSA")?;
            }
            let pss = PssParameters::of(algorithm)?;
            (Some(pss.digest), Some(pss))
        }
        other => return Err(CoreError::UnsupportedSignatureAlgorithm(other)),
    };
    let ok = match digest {
        Some(md) => {
            let mut verifier = Verifier::new(md, &key).map_err(CoreError::openssl)?;
            if let Some(pss) = &pss {
                // The salt length is checked exactly: a signature made with another salt
                // than its parameters declare does not verify (RFC 8017 §9.1.2 step 10).
                verifier
                    .set_rsa_padding(Padding::PKCS1_PSS)
                    .and_then(|_| verifier.set_rsa_mgf1_md(pss.mgf1_digest))
                    .and_then(|_| verifier.set_rsa_pss_saltlen(RsaPssSaltlen::custom(pss.salt)))
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

/// What verifying under RSASSA-PSS takes from its parameters (RFC 4055 §3.1): the message
/// digest, the MGF1 digest and the exact salt length.
struct PssParameters {
    digest: openssl::hash::MessageDigest,
    mgf1_digest: openssl::hash::MessageDigest,
    salt: i32,
}

impl PssParameters {
    /// Reads RSASSA-PSS-params with their DEFAULTs (SHA-1, MGF1-SHA-1, salt 20, trailer 1).
    /// A SHA-1 message digest, a mask generation function other than MGF1 or one over an
    /// unknown hash, and a trailer other than 1 are [`CoreError::UnsupportedSignatureParameters`];
    /// parameters that do not decode are [`CoreError::Malformed`].
    fn of(algorithm: &AlgorithmIdentifierOwned) -> Result<PssParameters, CoreError> {
        let unsupported = |detail: String| CoreError::UnsupportedSignatureParameters {
            algorithm: oids::RSASSA_PSS,
            detail,
        };
        // "The parameters MUST be present when used in the algorithm identifier associated
        // with a signature value" (RFC 4055 §3.1).
        let params = algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| CoreError::malformed("RSASSA-PSS parameters", "absent"))?
            .decode_as::<RsaPssParams>()
            .map_err(|e| CoreError::malformed("RSASSA-PSS parameters", e))?;
        let digest = match params.hash_algorithm.as_ref().map(|h| h.oid) {
            None | Some(oids::SHA1) => {
                return Err(unsupported("a SHA-1 message digest is not accepted".into()))
            }
            Some(oid) => pss_hash(&oid)
                .ok_or_else(|| unsupported(format!("message digest {oid} is not supported")))?,
        };
        // MGF1 over SHA-1 stays accepted: the mask needs no collision resistance.
        let mgf1_digest = match &params.mask_gen_algorithm {
            None => openssl::hash::MessageDigest::sha1(),
            Some(mgf) if mgf.oid == oids::MGF1 => {
                let hash = mgf
                    .parameters
                    .as_ref()
                    .ok_or_else(|| {
                        CoreError::malformed("RSASSA-PSS parameters", "MGF1 without its hash")
                    })?
                    .decode_as::<AlgorithmIdentifierOwned>()
                    .map_err(|e| CoreError::malformed("RSASSA-PSS parameters", e))?;
                match hash.oid {
                    oids::SHA1 => openssl::hash::MessageDigest::sha1(),
                    oid => pss_hash(&oid)
                        .ok_or_else(|| unsupported(format!("MGF1 over {oid} is not supported")))?,
                }
            }
            Some(other) => {
                return Err(unsupported(format!(
                    "mask generation function {} is not MGF1",
                    other.oid
                )))
            }
        };
        let salt = params.salt_length.unwrap_or(20);
        let salt = i32::try_from(salt).map_err(|_| {
            CoreError::malformed("RSASSA-PSS parameters", format!("salt length {salt}"))
        })?;
        match params.trailer_field.unwrap_or(1) {
            1 => {}
            other => {
                return Err(unsupported(format!(
                    "trailer field {other} (only 1 is defined)"
                )))
            }
        }
        Ok(PssParameters {
            digest,
            mgf1_digest,
            salt,
        })
    }
}

/// SHA-256/384/512 by their OIDs.
fn pss_hash(oid: &der::asn1::ObjectIdentifier) -> Option<openssl::hash::MessageDigest> {
    use openssl::hash::MessageDigest as Md;
    match *oid {
        oids::SHA256 => Some(Md::sha256()),
        oids::SHA384 => Some(Md::sha384()),
        oids::SHA512 => Some(Md::sha512()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::hash::MessageDigest;
    use openssl::pkey::Private;
    use openssl::sign::Signer;

    const MESSAGE: &[u8] = b"RSASSA-PSS under the parameters it declares";

    fn rsa_2048() -> PKey<Private> {
        PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
    }

    /// A PSS signature with SHA-256 and MGF1-SHA-256 and a salt of `salt`.
    fn pss_sign(key: &PKey<Private>, salt: RsaPssSaltlen) -> Vec<u8> {
        let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
        signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        signer.set_rsa_pss_saltlen(salt).unwrap();
        signer.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
        signer.update(MESSAGE).unwrap();
        signer.sign_to_vec().unwrap()
    }

    fn sha256() -> AlgorithmIdentifierOwned {
        DigestAlgorithm::Sha256.algorithm_identifier()
    }

    fn mgf1(hash: AlgorithmIdentifierOwned) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: oids::MGF1,
            parameters: Some(der::Any::encode_from(&hash).unwrap()),
        }
    }

    fn pss(params: RsaPssParams) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: oids::RSASSA_PSS,
            parameters: Some(der::Any::encode_from(&params).unwrap()),
        }
    }

    fn sha256_params(salt: Option<u32>) -> RsaPssParams {
        RsaPssParams {
            hash_algorithm: Some(sha256()),
            mask_gen_algorithm: Some(mgf1(sha256())),
            salt_length: salt,
            trailer_field: None,
        }
    }

    #[test]
    fn pss_signatures_verify_with_the_salt_length_their_parameters_declare() {
        let key = rsa_2048();
        let spki = key.public_key_to_der().unwrap();
        // openssl cms, pyHanko and endesive sign with the maximum salt: 256 - 32 - 2 bytes.
        for (salt, declared) in [
            (RsaPssSaltlen::MAXIMUM_LENGTH, Some(222)),
            (RsaPssSaltlen::DIGEST_LENGTH, Some(32)),
            (RsaPssSaltlen::custom(20), Some(20)),
            // saltLength absent: DEFAULT 20 (RFC 4055 §3.1).
            (RsaPssSaltlen::custom(20), None),
            (RsaPssSaltlen::custom(0), Some(0)),
        ] {
            let signature = pss_sign(&key, salt);
            verify_signature(&spki, &pss(sha256_params(declared)), MESSAGE, &signature)
                .unwrap_or_else(|e| panic!("salt {declared:?}: {e}"));
        }
    }

    #[test]
    fn pss_parameters_claiming_another_salt_than_used_do_not_verify() {
        let key = rsa_2048();
        let spki = key.public_key_to_der().unwrap();
        let signature = pss_sign(&key, RsaPssSaltlen::MAXIMUM_LENGTH);
        for declared in [Some(32), Some(20), None, Some(221)] {
            let e = verify_signature(&spki, &pss(sha256_params(declared)), MESSAGE, &signature)
                .unwrap_err();
            assert!(matches!(e, CoreError::BadSignature(_)), "{declared:?}: {e}");
        }
    }

    #[test]
    fn pss_with_another_mgf1_hash_than_declared_does_not_verify() {
        let key = rsa_2048();
        let spki = key.public_key_to_der().unwrap();
        let signature = pss_sign(&key, RsaPssSaltlen::DIGEST_LENGTH);
        let mut params = sha256_params(Some(32));
        params.mask_gen_algorithm = Some(mgf1(DigestAlgorithm::Sha512.algorithm_identifier()));
        let e = verify_signature(&spki, &pss(params), MESSAGE, &signature).unwrap_err();
        assert!(matches!(e, CoreError::BadSignature(_)), "{e}");
    }

    #[test]
    fn pss_parameters_imza_cannot_honour_are_unsupported_not_a_bad_signature() {
        let key = rsa_2048();
        let spki = key.public_key_to_der().unwrap();
        let signature = pss_sign(&key, RsaPssSaltlen::DIGEST_LENGTH);
        let trailer = RsaPssParams {
            trailer_field: Some(2),
            ..sha256_params(Some(32))
        };
        let not_mgf1 = RsaPssParams {
            mask_gen_algorithm: Some(AlgorithmIdentifierOwned {
                oid: oids::SHA256,
                parameters: None,
            }),
            ..sha256_params(Some(32))
        };
        let unknown_mgf1_hash = RsaPssParams {
            mask_gen_algorithm: Some(mgf1(AlgorithmIdentifierOwned {
                oid: oids::RSASSA_PSS,
                parameters: None,
            })),
            ..sha256_params(Some(32))
        };
        // hashAlgorithm absent: DEFAULT SHA-1, refused for the message digest.
        let sha1 = RsaPssParams {
            hash_algorithm: None,
            ..sha256_params(Some(32))
        };
        for (what, params) in [
            ("trailer 2", trailer),
            ("not MGF1", not_mgf1),
            ("unknown MGF1 hash", unknown_mgf1_hash),
            ("SHA-1", sha1),
        ] {
            let e = verify_signature(&spki, &pss(params), MESSAGE, &signature).unwrap_err();
            assert!(
                matches!(e, CoreError::UnsupportedSignatureParameters { .. }),
                "{what}: {e}"
            );
        }
    }

    #[test]
    fn imza_pss_algorithm_identifier_declares_mgf1_with_the_digest_and_a_digest_long_salt() {
        for digest in [
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ] {
            let params: RsaPssParams = crate::alg::rsa_pss_algorithm(digest)
                .parameters
                .unwrap()
                .decode_as()
                .unwrap();
            assert_eq!(params.hash_algorithm, Some(digest.algorithm_identifier()));
            assert_eq!(
                params.mask_gen_algorithm,
                Some(mgf1(digest.algorithm_identifier()))
            );
            assert_eq!(params.salt_length, u32::try_from(digest.output_len()).ok());
            assert_eq!(params.trailer_field, None);
        }
    }
}
