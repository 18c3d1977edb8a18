//! imza-smartcard: citizens' chip cards and other tokens as imza signing keys.
//!
//! Two roads lead to a card. PC/SC ([`reader`]) sees the readers, whether a card is in them and
//! its ATR, and reports insertions and removals; imza talks to a PIV card directly over it
//! ([`piv`]) to enroll: generate a key on the card, sign the CSR with it, write the issued
//! certificate back. PKCS#11 ([`token`]) is how everything signs afterwards: through OpenSC's
//! module (or a vendor's, or SoftHSM2), the same way any other application on a citizen's
//! machine would, and it yields an [`imza_core::key::SigningKey`] that CMS/CAdES, the CA and the
//! TSA take like any other key.

pub mod error;
pub mod module;
pub mod piv;
pub mod reader;
pub mod token;

pub use error::CardError;
