//! The time-stamping tests' PKI: imza-testdata's root and TSA certificate (critical sole
//! timeStamping EKU, digitalSignature, PEM files in a temporary directory for `openssl ts`),
//! with the TSA this crate builds on them; a loopback server for it; and small runners.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use imza_core::{oids, KeyAlgorithm};
use imza_testdata::loopback::LoopbackServer;
use imza_testdata::pki::TsaPki;
use imza_tsa::http::{default_work_limit, routes, TsaService};
use imza_tsa::{TimeStampAuthority, TsaConfig};

pub const POLICY: const_oid::ObjectIdentifier = oids::ETSI_BEST_PRACTICES_TS_POLICY;

/// [`TsaPki`] (its root, TSA certificate and files, through `Deref`) and a TSA signing under
/// [`POLICY`] with its certificate and key.
pub struct TestPki(TsaPki);

impl TestPki {
    /// A root CA and a TSA certificate valid from a day ago for a year.
    pub fn new(tsa_algorithm: KeyAlgorithm) -> TestPki {
        TestPki(TsaPki::new(tsa_algorithm))
    }

    pub fn config(&self) -> TsaConfig {
        TsaConfig::new(
            self.tsa.der.clone(),
            Vec::new(),
            self.tsa.key.clone(),
            POLICY,
        )
    }

    pub fn authority(&self) -> TimeStampAuthority {
        TimeStampAuthority::new(self.config()).unwrap()
    }
}

impl Deref for TestPki {
    type Target = TsaPki;

    fn deref(&self) -> &TsaPki {
        &self.0
    }
}

/// `service`'s `POST /tsa` on a loopback port, on `worker_threads` threads.
pub fn serve(service: Arc<TsaService>, worker_threads: usize) -> LoopbackServer {
    LoopbackServer::launch(routes(service, default_work_limit()), worker_threads)
}

// The `openssl` runner and output reader are imza-testdata's.
#[allow(unused_imports)]
pub use imza_testdata::tools::{openssl, text};

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `len` reproducible pseudo-random bytes from `state` (xorshift64), which moves on, so
/// successive calls give fresh bytes and a failure reproduces.
pub fn noise(state: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *state as u8
        })
        .collect()
}
