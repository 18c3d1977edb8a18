//! imza-core: the shared vocabulary of imza: keys ([`key`]), algorithms ([`alg`]), names ([`name`]),
//! DER/PEM ([`pem`]), CMS SignedData as received ([`cms`]), certificate and CRL building
//! ([`cert`], [`crl`]), signature verification ([`verify`]), the ESS signing-certificate
//! attributes ([`ess`]), what OCSP clients and responders
//! share ([`ocsp`]) and time ([`clock`]).

pub mod alg;
pub mod cert;
pub mod clock;
pub mod cms;
pub mod crl;
pub mod csr;
mod error;
pub mod ess;
pub mod ext;
pub mod key;
pub mod name;
pub mod ocsp;
pub mod oids;
pub mod pem;
pub mod verify;

pub use alg::{DigestAlgorithm, KeyAlgorithm};
pub use error::CoreError;
pub use key::SigningKey;
