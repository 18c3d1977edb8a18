//! Where a CA's private key lives: a reference stored with the CA, never the key itself.

use std::path::{Path, PathBuf};

use imza_core::key::pkcs11::{PinSource, Pkcs11Key, Pkcs11Location};
use imza_core::key::software::SoftwareKey;
use imza_core::{CoreError, KeyAlgorithm, SigningKey};

/// A reference to a signing key, stored as JSON in the CA record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum KeyReference {
    /// A PKCS#8 PEM file, relative to the data directory, mode 0600.
    File { path: PathBuf },
    /// A key generated inside a PKCS#11 token. `pin_env` names the environment variable the
    /// PIN is read from when the key is used (else a no-echo prompt).
    Pkcs11 {
        #[serde(flatten)]
        location: Pkcs11Location,
        pin_env: Option<String>,
    },
}

/// How to reach a new CA's key, chosen by the operator at `ca init`.
#[derive(Clone)]
pub enum KeyBackend {
    /// A software key written under the data directory's `keys/`.
    Software,
    /// A key generated on this token.
    Pkcs11 {
        module: PathBuf,
        token_label: String,
        pin: PinSource,
    },
}

impl KeyReference {
    /// Opens the key. For PKCS#11, `pin` overrides the stored environment variable.
    pub fn open(
        &self,
        data_dir: &Path,
        pin: Option<&PinSource>,
    ) -> Result<Box<dyn SigningKey>, CoreError> {
        match self {
            KeyReference::File { path } => {
                Ok(Box::new(SoftwareKey::load_pem(&data_dir.join(path))?))
            }
            KeyReference::Pkcs11 { location, pin_env } => {
                let source = match (pin, pin_env) {
                    (Some(p), _) => p.clone(),
                    (None, Some(var)) => PinSource::Env(var.clone()),
                    (None, None) => PinSource::Prompt,
                };
                Ok(Box::new(Pkcs11Key::open(location, &source)?))
            }
        }
    }

    /// Creates a new key of `algorithm` in `backend`, labelled/named after the CA.
    pub fn generate(
        backend: &KeyBackend,
        ca_name: &str,
        algorithm: KeyAlgorithm,
        data_dir: &Path,
    ) -> Result<(KeyReference, Box<dyn SigningKey>), CoreError> {
        Self::generate_named(
            backend,
            ca_name,
            &format!("imza-ca-{ca_name}"),
            algorithm,
            data_dir,
        )
    }

    /// Creates a new key of `algorithm` in `backend`: the file `keys/{file_stem}.key.pem`
    /// (never overwritten) or the PKCS#11 object labelled `label`.
    pub fn generate_named(
        backend: &KeyBackend,
        file_stem: &str,
        label: &str,
        algorithm: KeyAlgorithm,
        data_dir: &Path,
    ) -> Result<(KeyReference, Box<dyn SigningKey>), CoreError> {
        match backend {
            KeyBackend::Software => {
                let relative = PathBuf::from("keys").join(format!("{file_stem}.key.pem"));
                let key = SoftwareKey::generate(algorithm)?;
                key.save_pem(&data_dir.join(&relative))?;
                Ok((KeyReference::File { path: relative }, Box::new(key)))
            }
            KeyBackend::Pkcs11 {
                module,
                token_label,
                pin,
            } => {
                let location = Pkcs11Location {
                    module: module.clone(),
                    token_label: token_label.clone(),
                    key_label: label.to_string(),
                };
                let key = Pkcs11Key::generate(&location, algorithm, pin)?;
                let pin_env = match pin {
                    PinSource::Env(var) => Some(var.clone()),
                    _ => None,
                };
                Ok((KeyReference::Pkcs11 { location, pin_env }, Box::new(key)))
            }
        }
    }

    /// Whether the key can be opened without anyone typing a PIN: a file, or a PKCS#11 key
    /// whose PIN variable is set in this process's environment. A server checks this before
    /// using a CA key on its own, rather than block on a prompt.
    pub fn opens_unattended(&self) -> bool {
        match self {
            KeyReference::File { .. } => true,
            KeyReference::Pkcs11 { pin_env, .. } => pin_env
                .as_ref()
                .is_some_and(|var| std::env::var_os(var).is_some()),
        }
    }

    /// Removes a software key file created by [`KeyReference::generate`] when the CA could not
    /// be recorded, so a failed `ca init` leaves nothing behind. PKCS#11 objects stay (the
    /// operator decides what to delete on an HSM).
    pub fn discard(&self, data_dir: &Path) {
        if let KeyReference::File { path } = self {
            let _ = std::fs::remove_file(data_dir.join(path));
        }
    }

    /// For listings: `file keys/root.key.pem` or `pkcs11 token "CA" key "imza-ca-root"`.
    pub fn describe(&self) -> String {
        match self {
            KeyReference::File { path } => format!("file {}", path.display()),
            KeyReference::Pkcs11 { location, .. } => format!(
                "pkcs11 token {:?} key {:?} ({})",
                location.token_label,
                location.key_label,
                location.module.display()
            ),
        }
    }
}
