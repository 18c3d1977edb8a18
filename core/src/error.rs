//! Errors from imza-core, in words a user can act on.

use std::path::PathBuf;

/// Everything that can go wrong in the shared core: keys, names, encodings.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("unknown key algorithm {0:?} (expected one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096)")]
    UnknownKeyAlgorithm(String),
    #[error("unknown hash algorithm {0:?} (use sha256, sha384 or sha512)")]
    UnknownDigestAlgorithm(String),
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    #[error("cannot read key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("key file {path} already exists; refusing to overwrite it")]
    KeyFileExists { path: PathBuf },
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("unsupported signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(der::asn1::ObjectIdentifier),
    /// A known algorithm under parameters imza does not verify with (RSASSA-PSS with a
    /// SHA-1 message digest, a mask generation function other than MGF1, a trailer other
    /// than 1): a refusal, not a broken signature.
    #[error("unsupported parameters of signature algorithm {algorithm}: {detail}")]
    UnsupportedSignatureParameters {
        algorithm: der::asn1::ObjectIdentifier,
        detail: String,
    },
    #[error("signature does not verify: {0}")]
    BadSignature(String),
    #[error("invalid distinguished name {input:?}: {reason}")]
    InvalidName { input: String, reason: String },
    #[error("invalid {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("DER encoding failed: {0}")]
    Encoding(String),
    /// The module, the token or the device failed (cannot load or initialise the module, no
    /// token present, a session or signature that fails): the environment's fault.
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
    /// What is on the token rules out the request (a key label taken, several keys or tokens
    /// match, a key not allowed to sign, an expired PIN): the operator's to change.
    #[error("PKCS#11: {0}")]
    Pkcs11Refused(String),
    #[error("PKCS#11: the PIN was rejected by token {token:?}{tries_left}")]
    Pkcs11PinIncorrect { token: String, tries_left: String },
    #[error("PKCS#11: the user PIN of token {token:?} is locked")]
    Pkcs11PinLocked { token: String },
    #[error("PKCS#11: no token labelled {label:?} in module {module}")]
    Pkcs11TokenNotFound { label: String, module: String },
    #[error("PKCS#11: no private key labelled {label:?} on token {token:?}")]
    Pkcs11KeyNotFound { label: String, token: String },
    #[error("PIN not available: {0}")]
    PinUnavailable(String),
    #[error("openssl: {0}")]
    OpenSsl(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CoreError {
    pub fn openssl(e: openssl::error::ErrorStack) -> Self {
        CoreError::OpenSsl(e.to_string())
    }

    pub fn der(e: der::Error) -> Self {
        CoreError::Encoding(e.to_string())
    }

    pub fn malformed(what: &'static str, reason: impl ToString) -> Self {
        CoreError::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}
