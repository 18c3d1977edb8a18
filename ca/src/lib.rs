//! imza-ca: the CA engine: certificate profiles ([`profile`]), CSR checks ([`csr`]),
//! issuance, revocation and CRLs ([`authority`]; partitioned CRLs in [`crl_shards`]), the
//! store ([`store`]), the data directory it lives in ([`data_dir`]) and the tamper-evident
//! audit log ([`audit`]).

pub mod audit;
pub mod authority;
pub mod crl_shards;
pub mod csr;
pub mod data_dir;
pub mod delegation;
mod error;
pub mod keyref;
pub mod profile;
pub mod services;
pub mod store;

pub use authority::{CertificateAuthority, InitCa, IssueOptions, IssueRequest, Pki};
pub use error::CaError;
pub use services::{EnsuredResponder, InitTsa, ServiceCertificate};
