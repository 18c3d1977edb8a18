//! imza-testenv: the programs imza's tests run beside them, each in a private directory —
//! SoftHSM2 tokens ([`softhsm`]), a PostgreSQL cluster ([`postgres`]), a one-answer HTTP
//! server on loopback ([`http`]), and the independent tools the tests check imza against
//! ([`tools`]: openssl, pyHanko, qpdf, poppler, zbarimg).
//!
//! It depends on no imza crate. A library's own unit tests (`#[cfg(test)]` in its `src/`) are
//! built on a test copy of that library; a fixture crate that depended on the library would
//! bring in a second, normal copy, whose types are not the test copy's. So unit tests use this
//! crate and [`imza_testpki`](../imza_testpki/index.html) (which depends on imza-core alone),
//! and integration tests use imza-testdata, which re-exports both.

// A test-support crate: a fixture that cannot be set up panics, failing the test that asked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod http;
pub mod postgres;
pub mod softhsm;
pub mod tools;
