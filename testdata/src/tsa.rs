//! imza's own TSA for the tests that need time-stamps: a [`TimeStampAuthority`] over a
//! certificate and key (RFC 3161, ETSI best-practices policy), and the same behind
//! `POST /tsa` on a loopback port, as `imza serve` mounts it.

use std::sync::Arc;

use imza_core::clock::SystemClock;
use imza_core::key::software::SoftwareKey;
use imza_core::{oids, KeyAlgorithm};
use imza_tsa::http::{default_work_limit, routes, TsaService};
use imza_tsa::{TimeStampAuthority, TsaConfig};

use crate::loopback::LoopbackServer;
use crate::pki::TsaPki;

/// The TSA policy [`authority`] signs under.
pub const POLICY: const_oid::ObjectIdentifier = oids::ETSI_BEST_PRACTICES_TS_POLICY;

/// A TSA signing with `key` under [`POLICY`], its certificate `cert_der` (no chain).
pub fn authority(cert_der: &[u8], key: Arc<SoftwareKey>) -> TimeStampAuthority {
    TimeStampAuthority::new(TsaConfig::new(cert_der.to_vec(), Vec::new(), key, POLICY))
        .expect("a TSA over the test certificate")
}

/// `authority` behind `POST /tsa` on a loopback port, on `worker_threads` threads, with the
/// system clock.
pub fn serve(authority: TimeStampAuthority, worker_threads: usize) -> LoopbackServer {
    let service = Arc::new(TsaService::new(authority, Arc::new(SystemClock)));
    LoopbackServer::launch(routes(service, default_work_limit()), worker_threads)
}

/// A fresh [`TsaPki`] (P-256 TSA) and its TSA on a loopback port.
pub struct LoopbackTsa {
    pub pki: TsaPki,
    pub server: LoopbackServer,
}

impl LoopbackTsa {
    pub fn start() -> LoopbackTsa {
        let pki = TsaPki::new(KeyAlgorithm::EcP256);
        let server = serve(authority(&pki.tsa.der, pki.tsa.key.clone()), 2);
        LoopbackTsa { pki, server }
    }

    /// `http://127.0.0.1:PORT/tsa`.
    pub fn url(&self) -> String {
        self.server.url("/tsa")
    }
}
