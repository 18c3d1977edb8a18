//! The one error type of every store, whatever the engine: what went wrong in words an
//! operator can act on, never an engine's type, never a password.

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (a name, a serial, a CRL number that exists).
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// What was to be stored breaks a rule of the store (a malformed value).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A revocation lost to an earlier one: the certificate was already revoked.
    #[error("certificate {serial} is already revoked (since {revoked_at})")]
    AlreadyRevoked { serial: String, revoked_at: String },
    /// A stored value cannot be read back, or the database is damaged.
    #[error("the store's data is inconsistent: {0}")]
    Corrupt(String),
    /// The database was written by a newer imza.
    #[error(
        "{what} has schema version {found}, newer than this imza knows ({known}); use a newer imza"
    )]
    NewerSchema {
        what: &'static str,
        found: i64,
        known: i64,
    },
    /// The database cannot be reached or refused the login: nothing was read or written.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Backend(String),
}

/// Which integrity rule a refused write broke; the caller, who knows what the statement
/// meant, words the error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// PRIMARY KEY or UNIQUE.
    Unique,
    ForeignKey,
}
