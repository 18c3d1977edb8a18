//! imza-store: the one store layer under every crate that keeps state (the CA, the mobile
//! signature service, and the portal and document register to come).
//!
//! A store is opened from a URL ([`StoreUrl`]): `sqlite:PATH` is the embedded default (one
//! file, nothing to install), `postgres://…` the engine that several nodes share. This crate
//! owns what is the same for every store on an engine — opening and configuring a connection,
//! applying a crate's schema migrations once and refusing a schema newer than the binary, and
//! mapping the engine's errors into one [`StoreError`] — so each crate's store keeps only its
//! own SQL. The concurrency contract each store trait promises is written on the trait, in the
//! crate that owns it; both engines honour it and one contract test suite checks it.

pub mod copy;
pub mod error;
pub mod postgres;
pub mod sqlite;
pub mod url;

mod pgpass;

pub use error::{StoreError, Violation};
pub use url::{PostgresUrl, StoreUrl};

use time::OffsetDateTime;

/// Unix milliseconds, the unit of the time columns of the stores that keep sub-second times
/// (sessions and their history).
pub fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A time column in [`millis`] read back; `Corrupt` naming `column` when it is out of range.
pub fn from_millis(ms: i64, column: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| StoreError::Corrupt(format!("{column} {ms} is not a valid time")))
}

/// One crate's schema: the table that records which versions are applied, and the versions
/// in order. A version is applied once, in its own transaction; a released one is never
/// edited, the next is added.
#[derive(Clone, Copy, Debug)]
pub struct Migrations {
    /// What the tables hold, for messages ("the CA store").
    pub what: &'static str,
    /// The table recording applied versions (`schema_migrations`, `mss_schema_migrations`).
    pub table: &'static str,
    /// (version, SQL) in ascending order.
    pub steps: &'static [(i64, &'static str)],
}

impl Migrations {
    /// The newest version this binary knows.
    pub fn newest(&self) -> i64 {
        self.steps.last().map_or(0, |(v, _)| *v)
    }

    fn newer_schema(&self, found: i64) -> StoreError {
        StoreError::NewerSchema {
            what: self.what,
            found,
            known: self.newest(),
        }
    }
}

/// Whether opening may create a store that is not there yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// Only an existing store: a missing file, or a database without this schema, is
    /// [`StoreError::NotFound`] and nothing is created.
    No,
    /// Create the file or the schema if missing.
    IfMissing,
}
