//! Software keys held by OpenSSL, stored as unencrypted PKCS#8 PEM files with mode 0600.
//!
//! For a demo or a test PKI. A production CA keeps its keys in an HSM ([`super::pkcs11`]).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Signer;
use zeroize::Zeroizing;

use super::{DigestAlgorithm, KeyAlgorithm, SigningKey};
use crate::CoreError;

/// Largest key file read: an RSA-16384 private key in PEM is about 12 KiB.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// A private key in memory, signing through OpenSSL.
pub struct SoftwareKey {
    pkey: PKey<Private>,
    algorithm: KeyAlgorithm,
    origin: String,
}

impl SoftwareKey {
    /// Generates a fresh key of the given type.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, CoreError> {
        let pkey = match (algorithm.rsa_bits(), algorithm) {
            (Some(bits), _) => PKey::from_rsa(Rsa::generate(bits).map_err(CoreError::openssl)?)
                .map_err(CoreError::openssl),
            (None, KeyAlgorithm::EcP384) => ec_key(Nid::SECP384R1),
            (None, _) => ec_key(Nid::X9_62_PRIME256V1),
        }?;
        Ok(SoftwareKey {
            pkey,
            algorithm,
            origin: "software key (in memory)".into(),
        })
    }

    /// Wraps an OpenSSL key, working out its [`KeyAlgorithm`].
    pub fn from_pkey(pkey: PKey<Private>, origin: impl Into<String>) -> Result<Self, CoreError> {
        let algorithm = key_algorithm_of(&pkey)?;
        Ok(SoftwareKey {
            pkey,
            algorithm,
            origin: origin.into(),
        })
    }

    /// Reads a PEM private key (PKCS#8, or traditional RSA/EC) of at most
    /// [`MAX_KEY_FILE_BYTES`] from `path`.
    pub fn load_pem(path: &Path) -> Result<Self, CoreError> {
        let unreadable = |reason: String| CoreError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
        // Room for the whole key up front: a growing buffer would leave copies of it behind.
        let mut pem = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_BYTES as usize + 1));
        // No further than the limit: `/dev/zero` or a pipe must not be read without end.
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut pem)
            .map_err(|e| unreadable(e.to_string()))?;
        if pem.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(unreadable(format!(
                "larger than {MAX_KEY_FILE_BYTES} bytes: not a key file"
            )));
        }
        let pkey = PKey::private_key_from_pem(&pem).map_err(|e| CoreError::KeyFile {
            path: path.to_path_buf(),
            reason: format!("not a PEM private key ({e})"),
        })?;
        Self::from_pkey(pkey, format!("software key {}", path.display()))
    }

    /// Writes the key as PKCS#8 PEM to a new file created with mode 0600.
    ///
    /// Refuses to overwrite: a CA key that silently replaced another would orphan a CA.
    pub fn save_pem(&self, path: &Path) -> Result<(), CoreError> {
        let pem = Zeroizing::new(
            self.pkey
                .private_key_to_pem_pkcs8()
                .map_err(CoreError::openssl)?,
        );
        write_private_file(path, &pem)
    }

    /// The OpenSSL key, for callers that need it (e.g. PKCS#12 export).
    pub fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }
}

/// Creates `path` with mode 0600 (failing if it exists) and writes `bytes` to it durably.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), CoreError> {
    let io = |source| CoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => CoreError::KeyFileExists {
                path: path.to_path_buf(),
            },
            _ => io(e),
        })?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

fn ec_key(nid: Nid) -> Result<PKey<Private>, CoreError> {
    let group = EcGroup::from_curve_name(nid).map_err(CoreError::openssl)?;
    let key = EcKey::generate(&group).map_err(CoreError::openssl)?;
    PKey::from_ec_key(key).map_err(CoreError::openssl)
}

fn key_algorithm_of(pkey: &PKey<Private>) -> Result<KeyAlgorithm, CoreError> {
    KeyAlgorithm::of_public_key(&pkey.public_key_to_der().map_err(CoreError::openssl)?)
}

impl SigningKey for SoftwareKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> Result<Vec<u8>, CoreError> {
        self.pkey.public_key_to_der().map_err(CoreError::openssl)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        let md = self.algorithm.digest().message_digest();
        let mut signer = Signer::new(md, &self.pkey).map_err(CoreError::openssl)?;
        signer.update(message).map_err(CoreError::openssl)?;
        signer.sign_to_vec().map_err(CoreError::openssl)
    }

    fn describe(&self) -> String {
        self.origin.clone()
    }

    fn sign_digest(&self, algorithm: DigestAlgorithm, digest: &[u8]) -> Result<Vec<u8>, CoreError> {
        crate::alg::check_digest_length(algorithm, digest)?;
        let mut ctx = PkeyCtx::new(&self.pkey).map_err(CoreError::openssl)?;
        ctx.sign_init().map_err(CoreError::openssl)?;
        if !self.algorithm.is_ec() {
            // With a signature digest set, OpenSSL wraps the digest in its DigestInfo and pads
            // (PKCS#1 v1.5), which is what a whole-message RSA signature holds.
            ctx.set_rsa_padding(Padding::PKCS1)
                .and_then(|()| ctx.set_signature_md(algorithm.md()))
                .map_err(CoreError::openssl)?;
        }
        let mut signature = Vec::new();
        ctx.sign_to_vec(digest, &mut signature)
            .map_err(CoreError::openssl)?;
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::verify_signature;

    #[test]
    fn generated_keys_sign_and_verify_for_every_algorithm() {
        for alg in [
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let key = SoftwareKey::generate(alg).unwrap();
            let sig = key.sign(b"message").unwrap();
            let spki = key.public_key_der().unwrap();
            verify_signature(&spki, &alg.signature_algorithm(), b"message", &sig).unwrap();
            assert!(verify_signature(&spki, &alg.signature_algorithm(), b"other", &sig).is_err());
        }
    }

    #[test]
    fn digest_signatures_verify_as_message_signatures_and_over_the_digest() {
        use crate::verify::verify_digest;
        for alg in [KeyAlgorithm::EcP256, KeyAlgorithm::Rsa2048] {
            let key = SoftwareKey::generate(alg).unwrap();
            let spki = key.public_key_der().unwrap();
            let digest = DigestAlgorithm::Sha256.digest(b"message");
            let sig = key.sign_digest(DigestAlgorithm::Sha256, &digest).unwrap();
            verify_signature(&spki, &alg.signature_algorithm(), b"message", &sig).unwrap();
            verify_digest(&spki, DigestAlgorithm::Sha256, &digest, &sig).unwrap();
            let other = DigestAlgorithm::Sha256.digest(b"other");
            assert!(verify_digest(&spki, DigestAlgorithm::Sha256, &other, &sig).is_err());
            assert!(verify_digest(&spki, DigestAlgorithm::Sha256, &digest, b"junk").is_err());
            assert!(key.sign_digest(DigestAlgorithm::Sha384, &digest).is_err());
        }
    }

    #[test]
    fn saved_key_is_mode_0600_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        key.save_pem(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            key.save_pem(&path),
            Err(CoreError::KeyFileExists { .. })
        ));
        let loaded = SoftwareKey::load_pem(&path).unwrap();
        assert_eq!(
            loaded.public_key_der().unwrap(),
            key.public_key_der().unwrap()
        );
    }
}
