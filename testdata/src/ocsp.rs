//! imza's own OCSP responder on loopback for a test CA, answering from statuses a test sets:
//! what validation, the mobile signature client and the portal's logins check certificates
//! against in their tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use imza_core::clock::SystemClock;
use imza_core::KeyAlgorithm;
use imza_ocsp::http::{default_work_limit, routes};
use imza_ocsp::{
    CacheConfig, CertStatusInfo, CertificateStatusSource, IssuerId, OcspError, OcspService,
    Responder, ResponderConfig, ServedCa,
};

use crate::loopback::LoopbackServer;
use crate::pki::{ocsp_responder_extensions, TestCa};

/// Certificate statuses by serial for the OCSP responder; a serial not set is unknown.
#[derive(Default)]
pub struct Statuses {
    by_serial: Mutex<HashMap<Vec<u8>, CertStatusInfo>>,
    revision: AtomicU64,
}

impl Statuses {
    /// `serial`'s status from now on (the responder's cache is dropped).
    pub fn set(&self, serial: &[u8], status: CertStatusInfo) {
        self.by_serial
            .lock()
            .unwrap()
            .insert(serial.to_vec(), status);
        self.revision.fetch_add(1, Ordering::SeqCst);
    }
}

impl CertificateStatusSource for Statuses {
    fn status(&self, _: &IssuerId, serial: &[u8]) -> Result<CertStatusInfo, OcspError> {
        Ok(self
            .by_serial
            .lock()
            .unwrap()
            .get(serial)
            .copied()
            .unwrap_or(CertStatusInfo::Unknown))
    }

    fn revision(&self) -> Result<u64, OcspError> {
        Ok(self.revision.load(Ordering::SeqCst))
    }
}

/// imza's OCSP responder for a test CA, on loopback, with a delegated responder.
pub struct OcspResponder {
    pub statuses: Arc<Statuses>,
    /// Where it answers (`http://127.0.0.1:PORT/ocsp`): the AIA of the CA's certificates.
    pub url: String,
    _server: LoopbackServer,
}

impl OcspResponder {
    /// A responder for `ca` (a fresh P-256 delegated responder key), every status unknown.
    pub fn for_ca(ca: &TestCa) -> OcspResponder {
        let responder = ca.issue_service(
            "CN=imza Test Mobile CA OCSP,O=imza,C=AZ",
            &[0x7e, 1],
            KeyAlgorithm::EcP256,
            ocsp_responder_extensions(),
        );
        let served = ServedCa {
            issuer: IssuerId::new("mobile"),
            ca_certificate: ca.der.clone(),
            responder_certificate: responder.der,
            responder_key: responder.key,
        };
        let statuses = Arc::new(Statuses::default());
        let service = OcspService::new(
            Responder::new(vec![served], ResponderConfig::default()).unwrap(),
            Arc::clone(&statuses) as Arc<dyn CertificateStatusSource>,
            Arc::new(SystemClock),
            CacheConfig::default(),
        );
        let server = LoopbackServer::launch(routes(Arc::new(service), default_work_limit()), 1);
        OcspResponder {
            statuses,
            url: server.url("/ocsp"),
            _server: server,
        }
    }
}
