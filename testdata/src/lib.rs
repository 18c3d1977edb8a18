//! imza-testdata: fixtures and harness pieces shared by imza's tests and benchmarks:
//! SoftHSM2 tokens in private directories ([`softhsm`]) and CSRs made with OpenSSL ([`csr`]).

pub mod csr;
pub mod softhsm;
