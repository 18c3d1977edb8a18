//! PKCS#11 keys: a CA key generated inside an HSM (SoftHSM2 in tests) or a key on a chip card.
//!
//! (Being implemented: see the PKCS#11 task.)

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::{KeyAlgorithm, SigningKey};
use crate::CoreError;

/// Where a PKCS#11 key lives: the module, the token (by label; slot ids change) and the key label.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pkcs11Location {
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: String,
}

/// Where the user PIN comes from. The PIN itself is never logged, stored or echoed.
#[derive(Clone)]
pub enum PinSource {
    /// Read from this environment variable.
    Env(String),
    /// Ask on the terminal without echo.
    Prompt,
    /// Given directly (tests, or a caller that already asked).
    Value(Zeroizing<String>),
}

/// A private key object on a PKCS#11 token.
pub struct Pkcs11Key {
    location: Pkcs11Location,
    algorithm: KeyAlgorithm,
}

impl Pkcs11Key {
    /// Logs in and generates a new key pair on the token, labelled `location.key_label`.
    pub fn generate(
        location: &Pkcs11Location,
        algorithm: KeyAlgorithm,
        pin: &PinSource,
    ) -> Result<Self, CoreError> {
        let _ = (location, algorithm, pin);
        Err(CoreError::Pkcs11("not implemented yet".into()))
    }

    /// Logs in and finds the existing private key labelled `location.key_label`.
    pub fn open(location: &Pkcs11Location, pin: &PinSource) -> Result<Self, CoreError> {
        let _ = (location, pin);
        Err(CoreError::Pkcs11("not implemented yet".into()))
    }
}

impl SigningKey for Pkcs11Key {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> Result<Vec<u8>, CoreError> {
        Err(CoreError::Pkcs11("not implemented yet".into()))
    }

    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, CoreError> {
        Err(CoreError::Pkcs11("not implemented yet".into()))
    }

    fn describe(&self) -> String {
        format!(
            "PKCS#11 key {:?} on token {:?} ({})",
            self.location.key_label,
            self.location.token_label,
            self.location.module.display()
        )
    }
}
