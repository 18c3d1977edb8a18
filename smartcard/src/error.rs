//! Errors from readers, cards and tokens, worded for the citizen holding the card.

use imza_core::CoreError;

/// What can go wrong between imza and a card.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error(
        "the smart card service (pcscd) is not running; start it (`systemctl start pcscd.socket` \
         or `pcscd`) and try again"
    )]
    PcscdNotRunning,
    #[error("no card reader is attached; plug in a reader and try again")]
    NoReader,
    #[error("no card reader named {wanted:?}; attached readers: {attached}")]
    ReaderNotFound { wanted: String, attached: String },
    #[error("no card in reader {reader:?}; insert the card and try again")]
    NoCard { reader: String },
    #[error(
        "the card was removed from reader {reader:?} during {operation}; insert it and try again"
    )]
    CardRemoved { reader: String, operation: String },
    #[error("PC/SC: {0}")]
    Pcsc(String),
    #[error("the card in reader {reader:?} refused {operation}: status {sw:04X} ({meaning})")]
    CardStatus {
        reader: String,
        operation: String,
        sw: u16,
        meaning: String,
    },
    #[error("the card's answer to {operation} is malformed: {reason}")]
    BadResponse { operation: String, reason: String },
    #[error("the PIN is wrong: {tries_left} {} left before the PIN locks", if *tries_left == 1 { "try" } else { "tries" })]
    PinIncorrect { tries_left: u8 },
    #[error(
        "the PIN is locked after too many wrong tries; unblock it with the PUK \
         (`imza card unblock --reader R --puk-env VAR --new-pin-env VAR`) or at a registration office"
    )]
    PinLocked,
    #[error("the card refused the management key (wrong key, or the card uses another algorithm)")]
    ManagementKeyRejected,
    #[error("{0}")]
    ModuleNotFound(String),
    /// What is on the token does not fit the request (no signing certificate, several, a key
    /// that does not match its certificate).
    #[error("{0}")]
    Token(String),
    /// The PKCS#11 module or the token failed (listing slots, opening a session, reading
    /// objects): the device's fault, not the request's.
    #[error("{0}")]
    TokenFailed(String),
    // --- readers and PIV cards (reader.rs, piv.rs) ---
    #[error("{wanted:?} matches several readers: {matching}; give more of the name")]
    ReaderAmbiguous { wanted: String, matching: String },
    #[error("no card in any reader (attached: {readers}); insert the card and try again")]
    NoCardInAnyReader { readers: String },
    #[error("cards are in several readers ({readers}); choose one with --reader")]
    SeveralCards { readers: String },
    #[error("reader {reader:?} was unplugged during {operation}; plug it in and try again")]
    ReaderGone { reader: String, operation: String },
    #[error(
        "the card in reader {reader:?} does not answer; take it out and insert it again \
         (chip side first, contacts facing the right way)"
    )]
    CardUnresponsive { reader: String },
    #[error("the card in reader {reader:?} has no PIV application (SELECT answered {sw:04X})")]
    NotPivCard { reader: String, sw: u16 },
    #[error("the {what} must be {reason}; nothing was sent to the card")]
    PinFormat { what: &'static str, reason: String },
    #[error("the PUK is wrong: {tries_left} {} left before the PUK locks", if *tries_left == 1 { "try" } else { "tries" })]
    PukIncorrect { tries_left: u8 },
    #[error(
        "the PUK is locked after too many wrong tries; the PIN can no longer be unblocked with it \
         (a registration office can reset the card)"
    )]
    PukLocked,
    #[error("unknown PIV slot {input:?} (expected 9a, 9c, 9d or 9e)")]
    UnknownSlot { input: String },
    #[error("invalid management key: {reason}")]
    ManagementKeyFormat { reason: String },
    #[error(
        "the card in reader {reader:?} did not prove that it holds the management key (its answer \
         to imza's challenge is wrong): a faulty or counterfeit card"
    )]
    CardNotAuthenticated { reader: String },
    #[error(
        "the certificate in slot {slot} is stored compressed (gzip), which imza does not read"
    )]
    CompressedCertificate { slot: String },
    #[error("{0}")]
    Core(#[from] CoreError),
}
