//! imza-testdata: fixtures and harness pieces shared by imza's integration tests and
//! benchmarks: imza's HTTP services on a loopback port ([`loopback`]), CSRs made with OpenSSL
//! ([`csr`]), imza's TSA in process or on loopback ([`tsa`]), imza's OCSP responder on loopback
//! with statuses a test sets ([`ocsp`]), small PDFs to sign ([`pdf`]), benchmark timing
//! ([`bench`]), pcscd with virtual readers and a PIV card emulator ([`card`]), headless
//! Chromium over WebDriver for the portal's pages ([`browser`]), and a real SMTP server
//! (aiosmtpd) keeping what it receives ([`smtp`]).
//!
//! The test PKI ([`pki`]) is the crate imza-testpki; SoftHSM2 tokens ([`softhsm`]), the
//! PostgreSQL cluster ([`postgres`]) and the independent tools ([`tools`]: openssl, pyHanko,
//! qpdf, poppler, zbarimg) are imza-testenv's. They are re-exported here under the same names.
//! Those two depend on no imza crate above imza-core, so a library's own unit tests use them
//! directly without linking a second copy of the library (this crate depends on most of
//! imza); `tests/layering.rs` keeps it so.

// A test-support crate: a fixture that cannot be set up panics, failing the test that asked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bench;
pub mod browser;
pub mod card;
pub mod csr;
pub mod loopback;
pub mod ocsp;
pub mod pdf;
pub mod smtp;
pub mod tsa;

pub use imza_testenv::{postgres, tools};
pub use imza_testpki as pki;

/// SoftHSM2 tokens in a private directory ([`imza_testenv::softhsm`]), and where a key on
/// one of them lives as imza names it.
pub mod softhsm {
    use imza_core::key::pkcs11::Pkcs11Location;
    pub use imza_testenv::softhsm::*;

    /// A key's [`Pkcs11Location`] on a [`SoftHsm`] (kept out of imza-testenv, which depends
    /// on no imza crate).
    pub trait KeyLocation {
        /// Where a key labelled `key_label` on the token `token_label` lives.
        fn location(&self, token_label: &str, key_label: &str) -> Pkcs11Location;
    }

    impl KeyLocation for SoftHsm {
        fn location(&self, token_label: &str, key_label: &str) -> Pkcs11Location {
            Pkcs11Location {
                module: self.module_path().to_path_buf(),
                token_label: token_label.to_string(),
                key_label: key_label.to_string(),
            }
        }
    }
}
