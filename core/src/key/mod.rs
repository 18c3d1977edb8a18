//! The one idea that holds imza together: anything that signs is a [`SigningKey`].
//!
//! A CA, an OCSP responder, a TSA and a citizen all hold something implementing this trait:
//! a software key ([`software`]), a PKCS#11 object in an HSM or on a card ([`pkcs11`]), or later
//! a remote key. Certificate, CRL, OCSP and CMS builders take `&dyn SigningKey` and never care which.

pub mod pkcs11;
pub mod software;

use spki::AlgorithmIdentifierOwned;

/// The types a [`SigningKey`] is described with, defined in [`crate::alg`].
pub use crate::alg::{DigestAlgorithm, KeyAlgorithm};
use crate::CoreError;

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

#[cfg(test)]
mod tests {
    use super::*;

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
