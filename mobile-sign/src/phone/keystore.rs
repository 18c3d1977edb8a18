//! The phone's key store: where its authentication and signing keys live, and how the PIN
//! unlocks them — `C_Login` on a PKCS#11 token, or the decryption of a PIN-encrypted PKCS#8
//! file (RFC 5958 §3, PBES2 with AES-256-CBC, RFC 8018 §6.2).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Sequence};
use imza_core::key::pkcs11::{PinSource, Pkcs11Key, Pkcs11Location};
use imza_core::key::software::{write_private_file, SoftwareKey};
use imza_core::{CoreError, KeyAlgorithm, SigningKey};
use openssl::pkey::PKey;
use openssl::symm::Cipher;
use serde::{Deserialize, Serialize};
use x509_cert::spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::protocol::SessionKind;

/// The phone's keys are EC P-256, as on ID cards and in Mobile-ID SIMs.
pub(super) const KEY_ALGORITHM: KeyAlgorithm = KeyAlgorithm::EcP256;

/// The largest key file read (an encrypted P-256 PKCS#8 is about 300 bytes).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// `id-PBES2` (RFC 8018 appendix A.4): the only scheme a key file may be encrypted with.
const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");

/// Where the phone's keys live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyStoreSpec {
    /// PIN-encrypted PKCS#8 files in the phone's directory (0600): the PIN decrypts them.
    File,
    /// A PKCS#11 token (SoftHSM2 in tests): the token's user PIN is the signing PIN.
    Pkcs11 {
        module: PathBuf,
        token_label: String,
    },
}

/// Where the keys are, as the wallet records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub(super) enum StoredKeys {
    /// File names inside the phone's directory.
    #[serde(rename = "file", rename_all = "camelCase")]
    File { auth_key: String, sign_key: String },
    #[serde(rename = "pkcs11", rename_all = "camelCase")]
    Pkcs11 {
        module: PathBuf,
        token_label: String,
        auth_key_label: String,
        sign_key_label: String,
    },
}

impl StoredKeys {
    /// Where `phone_number`'s keys go in the store `spec` names.
    pub(super) fn for_phone(spec: &KeyStoreSpec, phone_number: &str) -> StoredKeys {
        match spec {
            KeyStoreSpec::File => StoredKeys::File {
                auth_key: "auth-key.p8".into(),
                sign_key: "sign-key.p8".into(),
            },
            KeyStoreSpec::Pkcs11 {
                module,
                token_label,
            } => StoredKeys::Pkcs11 {
                module: module.clone(),
                token_label: token_label.clone(),
                auth_key_label: format!("imza-phone {phone_number} authentication"),
                sign_key_label: format!("imza-phone {phone_number} signature"),
            },
        }
    }

    /// Checks what a wallet file says: key file names are plain names inside the phone's
    /// directory, labels are not empty.
    pub(super) fn check(&self) -> Result<(), String> {
        match self {
            StoredKeys::File { auth_key, sign_key } => {
                for name in [auth_key, sign_key] {
                    let plain = !name.is_empty()
                        && name != "."
                        && name != ".."
                        && !name.contains('/')
                        && !name.contains('\0');
                    if !plain {
                        return Err(format!(
                            "key file name {name:?} is not a plain name inside the phone's directory"
                        ));
                    }
                }
            }
            StoredKeys::Pkcs11 {
                token_label,
                auth_key_label,
                sign_key_label,
                ..
            } => {
                if token_label.is_empty() || auth_key_label.is_empty() || sign_key_label.is_empty()
                {
                    return Err("a PKCS#11 token or key label is empty".into());
                }
            }
        }
        Ok(())
    }

    /// For messages: where the keys are (never secret).
    pub(super) fn describe(&self, dir: &Path) -> String {
        match self {
            StoredKeys::File { .. } => format!("PIN-encrypted key files in {}", dir.display()),
            StoredKeys::Pkcs11 {
                module,
                token_label,
                ..
            } => format!("PKCS#11 token {token_label:?} ({})", module.display()),
        }
    }

    fn pkcs11_location(&self, kind: SessionKind) -> Option<Pkcs11Location> {
        match self {
            StoredKeys::File { .. } => None,
            StoredKeys::Pkcs11 {
                module,
                token_label,
                auth_key_label,
                sign_key_label,
            } => Some(Pkcs11Location {
                module: module.clone(),
                token_label: token_label.clone(),
                key_label: match kind {
                    SessionKind::Authentication => auth_key_label.clone(),
                    SessionKind::Signature => sign_key_label.clone(),
                },
            }),
        }
    }

    fn file_path(&self, dir: &Path, kind: SessionKind) -> Option<PathBuf> {
        match self {
            StoredKeys::File { auth_key, sign_key } => Some(dir.join(match kind {
                SessionKind::Authentication => auth_key,
                SessionKind::Signature => sign_key,
            })),
            StoredKeys::Pkcs11 { .. } => None,
        }
    }

    /// Generates the key of `kind`, protected by `pin` (already checked to be 4–12 digits).
    /// Dropping the result without [`NewKey::keep`] removes it again.
    pub(super) fn generate(
        &self,
        dir: &Path,
        kind: SessionKind,
        pin: &str,
    ) -> Result<NewKey, String> {
        if let Some(path) = self.file_path(dir, kind) {
            let key = SoftwareKey::generate(KEY_ALGORITHM).map_err(|e| e.to_string())?;
            let encrypted = key
                .pkey()
                .private_key_to_pkcs8_passphrase(Cipher::aes_256_cbc(), pin.as_bytes())
                .map_err(|e| format!("cannot encrypt the new {} key: {e}", kind.name()))?;
            write_private_file(&path, &encrypted).map_err(|e| match e {
                CoreError::KeyFileExists { path } => format!(
                    "{} exists already (left by an earlier registration?); remove it first",
                    path.display()
                ),
                other => other.to_string(),
            })?;
            return Ok(NewKey {
                key: NewKeyKind::File { key, path },
                keep: false,
            });
        }
        let location = self
            .pkcs11_location(kind)
            .ok_or_else(|| "no key location".to_string())?;
        let pin = PinSource::Value(Zeroizing::new(pin.to_string()));
        let key = Pkcs11Key::generate(&location, KEY_ALGORITHM, &pin).map_err(|e| match e {
            CoreError::Pkcs11PinIncorrect { token, .. } => format!(
                "the PIN is not the user PIN of token {token:?}: with a token, the signing PIN is \
                 the token's user PIN"
            ),
            other => other.to_string(),
        })?;
        Ok(NewKey {
            key: NewKeyKind::Pkcs11(key),
            keep: false,
        })
    }

    /// Unlocks the key of `kind` with `pin` and checks it is the key `spki_der` (the
    /// certificate's public key) names.
    pub(super) fn open(
        &self,
        dir: &Path,
        kind: SessionKind,
        pin: &str,
        spki_der: &[u8],
    ) -> Result<Box<dyn SigningKey>, OpenError> {
        let key: Box<dyn SigningKey> = match self.file_path(dir, kind) {
            Some(path) => Box::new(open_file_key(&path, pin)?),
            None => {
                let location = self
                    .pkcs11_location(kind)
                    .ok_or_else(|| OpenError::Store("no key location".into()))?;
                let pin = PinSource::Value(Zeroizing::new(pin.to_string()));
                Box::new(Pkcs11Key::open(&location, &pin).map_err(|e| match e {
                    CoreError::Pkcs11PinIncorrect { .. } | CoreError::PinUnavailable(_) => {
                        OpenError::WrongPin
                    }
                    CoreError::Pkcs11PinLocked { .. } => OpenError::Locked,
                    other => OpenError::Store(other.to_string()),
                })?)
            }
        };
        let public = key
            .public_key_der()
            .map_err(|e| OpenError::Store(e.to_string()))?;
        if public != spki_der {
            // A wrong passphrase can, rarely, decrypt to another valid key; a token holds only
            // what it holds.
            return Err(match self {
                StoredKeys::File { .. } => OpenError::WrongPin,
                StoredKeys::Pkcs11 { .. } => OpenError::Store(format!(
                    "{} is not the key the {} certificate certifies",
                    key.describe(),
                    kind.name()
                )),
            });
        }
        Ok(key)
    }
}

/// Why a key did not open.
#[derive(Debug)]
pub(super) enum OpenError {
    /// The PIN did not unlock it.
    WrongPin,
    /// The token locked its PIN itself.
    Locked,
    /// The store failed (file unreadable, token gone); the PIN was not tested.
    Store(String),
}

/// `EncryptedPrivateKeyInfo` (RFC 5958 §3), read only to tell a damaged file from a wrong PIN:
///
/// ```text
/// EncryptedPrivateKeyInfo ::= SEQUENCE {
///   encryptionAlgorithm  EncryptionAlgorithmIdentifier,
///   encryptedData        EncryptedData }
/// EncryptedData ::= OCTET STRING
/// ```
#[derive(Sequence)]
struct EncryptedPrivateKeyInfo {
    encryption_algorithm: AlgorithmIdentifierOwned,
    encrypted_data: OctetString,
}

fn open_file_key(path: &Path, pin: &str) -> Result<SoftwareKey, OpenError> {
    let unreadable =
        |e: std::io::Error| OpenError::Store(format!("cannot read {}: {e}", path.display()));
    let file = File::open(path).map_err(unreadable)?;
    let mut der = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut der)
        .map_err(unreadable)?;
    if der.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(OpenError::Store(format!(
            "{} is larger than {MAX_KEY_FILE_BYTES} bytes: not a key file",
            path.display()
        )));
    }
    let info = EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| {
        OpenError::Store(format!(
            "{} is not an encrypted PKCS#8 key ({e})",
            path.display()
        ))
    })?;
    if info.encryption_algorithm.oid != PBES2 || info.encrypted_data.as_bytes().is_empty() {
        return Err(OpenError::Store(format!(
            "{} is not encrypted with PBES2 (algorithm {})",
            path.display(),
            info.encryption_algorithm.oid
        )));
    }
    // The file is intact: from here, a failure is the PIN's.
    let pkey = PKey::private_key_from_pkcs8_passphrase(&der, pin.as_bytes())
        .map_err(|_| OpenError::WrongPin)?;
    SoftwareKey::from_pkey(pkey, format!("phone key {}", path.display()))
        .map_err(|_| OpenError::WrongPin)
}

/// A key made by an enrollment that has not finished: removed again when dropped unless kept.
pub(super) struct NewKey {
    key: NewKeyKind,
    keep: bool,
}

enum NewKeyKind {
    File { key: SoftwareKey, path: PathBuf },
    Pkcs11(Pkcs11Key),
}

impl NewKey {
    pub(super) fn signing_key(&self) -> &dyn SigningKey {
        match &self.key {
            NewKeyKind::File { key, .. } => key,
            NewKeyKind::Pkcs11(key) => key,
        }
    }

    /// The enrollment finished: the key stays.
    pub(super) fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for NewKey {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Best effort: a token that failed is likely why the enrollment stopped.
        match &self.key {
            NewKeyKind::File { path, .. } => {
                let _ = std::fs::remove_file(path);
            }
            NewKeyKind::Pkcs11(key) => {
                let _ = key.destroy();
            }
        }
    }
}
