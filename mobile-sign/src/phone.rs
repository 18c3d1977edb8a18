//! The phone side of the mobile signature: what a citizen's phone holds and does.
//!
//! - [`KeyStoreSpec`]: where its two keys (authentication and signing, EC P-256) live: a
//!   PKCS#11 token (SoftHSM2 in tests, a secure element in a real phone) or PIN-encrypted
//!   PKCS#8 files;
//! - [`PhoneEnrollment`], [`Wallet`]: registration makes the keys, gets them certified and
//!   writes the wallet (`phone.json`: certificates, device credentials, service URL, the PIN
//!   tries counter — never a private key or the PIN);
//! - [`PhoneApp`]: the app that long-polls the service for requests, shows them, checks the
//!   verification code against the hash, asks for the PIN and answers.
//!
//! The PIN is checked on the phone, by the key store itself (the token's `C_Login`, or the
//! decryption of the key file), and never leaves it. The phone keeps its own counter on top of
//! the store's: written before each check, reset after a right PIN; three wrong in a row
//! block the keys for good, as a SIM's PIN does.

mod app;
mod keystore;
mod wallet;

use std::path::{Path, PathBuf};

use imza_core::alg::DigestAlgorithm;

use crate::http_client::ApiError;
use crate::protocol::ProtocolError;

pub use app::{AskPin, Decision, PhoneApp, PhoneEvent, PinEntry, RunSummary};
pub use keystore::KeyStoreSpec;
pub use wallet::{PhoneEnrollment, Wallet, WALLET_FILE};

/// Wrong PINs in a row that block the phone's keys.
pub const PIN_TRIES: u8 = 3;

/// The PIN's length range, in digits.
pub const PIN_DIGITS: std::ops::RangeInclusive<usize> = 4..=12;

/// What went wrong on the phone. Messages never carry the PIN or a secret.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("the PIN must be {} to {} digits", PIN_DIGITS.start(), PIN_DIGITS.end())]
    PinFormat,
    #[error("wrong PIN: {tries_left} {} left before the phone's keys are blocked", if *tries_left == 1 { "try" } else { "tries" })]
    PinIncorrect { tries_left: u8 },
    #[error(
        "the PIN was entered wrongly {PIN_TRIES} times in a row: the phone's keys are blocked"
    )]
    PinBlocked,
    /// The PIN given to the app once (not typed per request) was wrong: it was tried once, the
    /// request refused, and the app stopped rather than spend the remaining tries on it.
    #[error("{}", pin_rejected_message(*.tries_left))]
    PinRejected { tries_left: u8 },
    #[error("{} already holds a phone wallet; remove the directory to register this phone again", .0.display())]
    WalletExists(PathBuf),
    #[error("no phone wallet in {}: register the phone first (imza mobile register)", .0.display())]
    NoWallet(PathBuf),
    #[error("phone key store: {0}")]
    KeyStore(String),
    #[error(transparent)]
    Service(#[from] ApiError),
    /// The wallet file is unreadable, malformed or inconsistent.
    #[error("phone wallet {}: {reason}", .path.display())]
    Wallet { path: PathBuf, reason: String },
    /// A certificate given at enrollment is unreadable or certifies another key.
    #[error("the {kind} certificate {reason}")]
    Certificate { kind: &'static str, reason: String },
    /// A phone number, national identity number or similar field breaks the protocol's rules.
    #[error(transparent)]
    Invalid(#[from] ProtocolError),
    #[error("a {} digest has {expected} bytes, not {actual}", crate::protocol::hash_type::name(*.hash_type))]
    DigestLength {
        hash_type: DigestAlgorithm,
        expected: usize,
        actual: usize,
    },
    /// The PIN could not be asked for (no terminal, say).
    #[error("PIN not available: {0}")]
    PinUnavailable(String),
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn pin_rejected_message(tries_left: u8) -> String {
    format!(
        "the given PIN is wrong ({tries_left} {} left before the phone's keys are blocked): the \
         request was refused and the PIN is not tried again",
        if tries_left == 1 { "try" } else { "tries" }
    )
}

impl PhoneError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PhoneError + '_ {
        move |source| PhoneError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `$IMZA_PHONE_HOME/<phone>` if set, else `$HOME/.local/share/imza/phones/<phone>` (relative
/// to the working directory when `HOME` is unset too).
///
/// Only `+` and digits of `phone_number` make the directory's name, so no input can point the
/// path elsewhere; [`PhoneEnrollment::begin`] checks the number itself.
pub fn default_phone_dir(phone_number: &str) -> PathBuf {
    let name: String = phone_number
        .chars()
        .filter(|c| *c == '+' || c.is_ascii_digit())
        .collect();
    let base = match std::env::var_os("IMZA_PHONE_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home),
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".local/share/imza/phones"),
    };
    base.join(name)
}

/// Checks the PIN's format: 4 to 12 ASCII digits.
pub fn check_pin_format(pin: &str) -> Result<(), PhoneError> {
    if PIN_DIGITS.contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PhoneError::PinFormat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_format_is_four_to_twelve_digits() {
        for good in ["1234", "000000", "123456789012"] {
            assert!(check_pin_format(good).is_ok(), "{good}");
        }
        for bad in ["", "123", "1234567890123", "12a4", "١٢٣٤", " 1234"] {
            assert!(
                matches!(check_pin_format(bad), Err(PhoneError::PinFormat)),
                "{bad}"
            );
        }
    }

    #[test]
    fn phone_dir_keeps_only_the_number() {
        let dir = default_phone_dir("+994/../../etc");
        assert!(dir.ends_with("+994"), "{}", dir.display());
        let dir = default_phone_dir("+994501234567");
        assert!(dir.ends_with("+994501234567"), "{}", dir.display());
    }
}
