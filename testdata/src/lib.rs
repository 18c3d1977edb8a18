//! imza-testdata: fixtures and harness pieces shared by imza's tests and benchmarks: a test PKI
//! of CAs, service certificates and leaves ([`pki`]), Rocket on a loopback port ([`loopback`]),
//! SoftHSM2 tokens in private directories ([`softhsm`]), CSRs made with OpenSSL ([`csr`]),
//! imza's TSA in process or on loopback ([`tsa`]), imza's OCSP responder on loopback with
//! statuses a test sets ([`ocsp`]), the `openssl` runner ([`tools`]),
//! benchmark timing ([`bench`]), a PostgreSQL cluster of its own ([`postgres`]), and pcscd with virtual readers and a PIV card emulator
//! ([`card`]), headless Chromium over WebDriver for the portal's pages ([`browser`]), and a real SMTP
//! server (aiosmtpd) keeping what it receives ([`smtp`]).

// A test-support crate: a fixture that cannot be set up panics, failing the test that asked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bench;
pub mod browser;
pub mod card;
pub mod csr;
pub mod loopback;
pub mod ocsp;
pub mod pdf;
pub mod pki;
pub mod postgres;
pub mod smtp;
pub mod softhsm;
pub mod tools;
pub mod tsa;
