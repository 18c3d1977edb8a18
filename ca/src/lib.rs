//! imza-ca: the CA engine: certificate profiles ([`profile`]), issuance from CSRs
//! ([`csr`], [`authority`]), revocation and CRLs, the store ([`store`]) and the
//! tamper-evident audit log ([`audit`]).

pub mod audit;
pub mod keyref;
pub mod store;
