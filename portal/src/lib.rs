//! imza-portal: the citizen portal — login with the ID card (through `imza agent` and a Web eID
//! authentication token), the ASAN-style phone signature, a QR code, a device certificate or
//! an access code, and the citizen's cabinet (see ARCHITECTURE.md, "The citizen portal").
//!
//! Built so far: [`webeid`], the Web eID authentication token (`web-eid:1.0` / `web-eid:1.1`)
//! — challenge nonces, parsing with limits, the certificate checks before the chain, and the
//! signature over the portal's own origin and nonce — [`card`], the card login that puts them
//! in order with the chain and OCSP, and [`store`], sessions, nonces and each citizen's history
//! on SQLite or PostgreSQL, [`session`], the browser sessions above it (cookie, CSRF token,
//! timeouts, a new id at login), [`access_code`], one-time codes from a service centre, and
//! [`qr`], the QR login's device link; [`http`] and [`pages`] serve the login page, the
//! access-code login, the cabinet and logout. The agent, the other logins' routes, HTTPS and
//! `imza serve --roles portal` come next.

pub mod access_code;
pub mod card;
pub mod device;
pub mod http;
pub mod login_limits;
pub mod pages;
pub mod qr;
pub mod session;
pub mod store;
pub mod webeid;
