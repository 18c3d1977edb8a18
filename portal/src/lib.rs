//! imza-portal: the citizen portal — login with the ID card (through `imza agent` and a Web eID
//! authentication token), the ASAN-style phone signature, a QR code, a device certificate or
//! an access code, and the citizen's cabinet (see ARCHITECTURE.md, "The citizen portal").
//!
//! The parts: [`webeid`], the Web eID authentication token (`web-eid:1.0` / `web-eid:1.1`)
//! — challenge nonces, parsing with limits, the certificate checks before the chain, and the
//! signature over the portal's own origin and nonce — [`card`], the card login that puts them
//! in order with the chain and OCSP, [`device`], the device-certificate login (TLS client
//! authentication), [`store`], sessions, nonces, each citizen's history, access codes and the
//! phone and QR logins under way on SQLite or PostgreSQL, with their purge, [`session`], the
//! browser sessions above it (cookie, CSRF token, timeouts, a new id at login),
//! [`access_code`], one-time codes from a service centre, [`qr`], the QR login's device link,
//! its QR image and the phone's answer, [`phone`], the phone and QR logins' checks of the
//! phone's certificate, [`login_limits`], the rate limits every login takes a turn of,
//! [`records`], what the cabinet reads of the other services' records, and [`document`], the
//! signed e-certificates (e-arayış) — statements of residence, employment, personal data —
//! and their one-page PDF with the verification QR code; [`http`] and [`pages`]
//! serve the login page, the access-code, card (with `imza agent`, crate imza-agent, on the
//! citizen's computer; its scripts in `assets/`), device-certificate, phone and QR logins, the
//! cabinet and logout.

pub mod access_code;
pub mod card;
pub mod device;
pub mod document;
pub mod http;
pub mod login_limits;
pub mod notices;
pub mod pages;
pub mod phone;
pub mod qr;
pub mod records;
pub mod registry;
pub mod session;
pub mod store;
pub mod verification;
pub mod webeid;
