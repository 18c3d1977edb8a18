//! Errors from the CA engine, in words an operator can act on.

use std::path::{Path, PathBuf};

use imza_core::CoreError;

use crate::audit::AuditBreak;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("no CA named {name:?} (known: {known})")]
    UnknownCa { name: String, known: String },
    /// A process without the CA role was asked to use a CA key.
    #[error(
        "this process does not hold CA keys (no ca role): CA {ca}'s key is used only on the CA \
         node (imza ca crl, imza serve --roles ca)"
    )]
    CaKeysNotHere { ca: String },
    #[error("a CA named {0:?} already exists")]
    CaExists(String),
    #[error("invalid CA name {0:?}: use 1 to 64 characters a-z, 0-9 and '-'")]
    InvalidCaName(String),
    #[error("no profile named {name:?} (available: {available})")]
    UnknownProfile { name: String, available: String },
    #[error("profile {name:?} is invalid: {reason}")]
    InvalidProfile { name: String, reason: String },
    #[error("profile {profile} refuses this request: {reason}")]
    ProfileViolation { profile: String, reason: String },
    #[error("invalid CSR: {0}")]
    BadCsr(String),
    #[error("CSR signature does not verify (no proof of possession of the private key): {0}")]
    ProofOfPossession(String),
    #[error("CA {ca} has no certificate with serial {serial}")]
    UnknownSerial { ca: String, serial: String },
    #[error("CA {ca} cannot issue: {reason}")]
    CaUnusable { ca: String, reason: String },
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    AuditBroken(#[from] AuditBreak),
    #[error(transparent)]
    Key(#[from] CoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data directory, or the store, does not exist (and was not created).
    #[error("no imza store at {store}")]
    NoStore { store: String },
    /// A directory of the PKI that its group or others may write to (mode in octal).
    #[error(
        "{} is writable by its group or by others (mode {mode:04o}): whoever can write there can \
         swap the store, a key or a profile; check what is in it, then chmod 700 it",
        .path.display()
    )]
    DirectoryWritableByOthers { path: PathBuf, mode: u32 },
    /// A directory of the PKI that belongs to another user than the one running imza.
    #[error(
        "{} belongs to user id {owner}, not to the user running imza ({user}): refusing a \
         directory another user controls",
        .path.display()
    )]
    DirectoryNotOwned {
        path: PathBuf,
        owner: u32,
        user: u32,
    },
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CaError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        CaError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
