//! imza's mobile signature ("ASAN İmza" style): a citizen signs or logs in with the phone.
//!
//! A relying party (a government service) asks the signature service (MSS) to have the phone
//! registered for a phone number and national identity number sign a hash. Its screen and the
//! phone show the same 4-digit verification code ([`protocol::verification_code`]); the
//! citizen checks it and enters the signing PIN on the phone, which signs with a key that
//! never leaves it; the service checks the signature against the registered certificate and
//! hands it to the relying party.
//!
//! - [`protocol`]: the JSON API both sides speak, and the rules they check alike;
//! - [`store`], [`service`], [`http`]: the service, its sessions and device registrations
//!   behind the [`store::MobileStore`] trait (SQLite by default), its Rocket routes (mounted by
//!   `imza serve`);
//! - [`phone`]: the phone side: its keys (PKCS#11 token or PIN-encrypted file), the PIN and its
//!   counter, the app that long-polls the service and answers;
//! - [`client`], [`remote_key`], [`authentication`]: the relying party's side: a client, a
//!   [`imza_core::key::SigningKey`] whose signatures come from the phone, and authentication
//!   with certificate validation.

pub mod authentication;
pub mod client;
pub mod http;
pub mod http_client;
pub mod phone;
pub mod protocol;
pub mod remote_key;
pub mod service;
pub mod store;
