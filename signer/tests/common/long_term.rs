//! [`LongTermPki`]: a PKI whose certificates point at CRLs served on a loopback port, with
//! imza's TSA on another — for B-LT and B-LTA, CAdES and PAdES.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use imza_core::key::software::SoftwareKey;
use imza_core::{ext, oids, KeyAlgorithm};
use imza_signer::pades::{sign_pdf, verify_pdf, DocMdp, PadesOptions};
use imza_signer::{
    Credentials, HttpTimestamper, Level, SignOptions, ValidationDataSources, ValidationReport,
    VerifyOptions,
};
use imza_testdata::loopback::LoopbackServer;
use imza_testdata::pki::{ca_extensions, revoked, signing_extensions, tsa_extensions, TestCa};
use imza_tsa::{TimeStampAuthority, TsaConfig};
use time::{Duration, OffsetDateTime};

use super::SignerPki;

type Crls = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// root → issuing CA (CDP: root's CRL) → signer and TSA (CDP: the issuing CA's CRL), the
/// CRLs on a loopback server, and imza's TSA with that certificate on another.
pub struct LongTermPki {
    pub root: TestCa,
    pub issuing: TestCa,
    pub signer_key: Arc<SoftwareKey>,
    pub signer_cert: Vec<u8>,
    pub tsa_cert: Vec<u8>,
    pub crl_server: Mutex<Option<LoopbackServer>>,
    /// Kept so that the TSA serves as long as the PKI lives.
    _tsa_server: LoopbackServer,
    pub crl_fetches: Arc<Mutex<usize>>,
    pub timestamper: HttpTimestamper,
    pub sources: ValidationDataSources,
}

impl LongTermPki {
    pub fn new() -> LongTermPki {
        let crls: Crls = Arc::default();
        let crl_fetches = Arc::new(Mutex::new(0usize));
        let counter = crl_fetches.clone();
        let served = crls.clone();
        let crl = move |Path(name): Path<String>| {
            *counter.lock().unwrap() += 1;
            let found = served.lock().unwrap().get(&name).cloned();
            async move { found.ok_or(StatusCode::NOT_FOUND) }
        };
        let crl_server = LoopbackServer::launch(Router::new().route("/crl/{name}", get(crl)), 1);
        let root_url = crl_server.url("/crl/root.crl");
        let issuing_url = crl_server.url("/crl/issuing.crl");

        let root = TestCa::root("CN=imza LT Root,O=imza,C=AZ", KeyAlgorithm::EcP256);
        let issuing_key = Arc::new(SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap());
        let mut issuing_extensions = ca_extensions();
        issuing_extensions.push(ext::crl_distribution_points(&root_url).unwrap());
        let issuing_subject = "CN=imza LT Citizens CA,O=imza,C=AZ";
        let issuing = TestCa {
            subject: issuing_subject.into(),
            der: root.issue(
                issuing_subject,
                &[0x02],
                issuing_key.as_ref(),
                issuing_extensions,
            ),
            key: issuing_key,
            serial: vec![0x02],
        };
        let with_cdp = |mut extensions: Vec<x509_cert::ext::Extension>| {
            extensions.push(ext::crl_distribution_points(&issuing_url).unwrap());
            extensions
        };
        let signer_key = Arc::new(SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap());
        let signer_cert = issuing.issue(
            SignerPki::SUBJECT,
            &[0x33],
            signer_key.as_ref(),
            with_cdp(signing_extensions()),
        );
        let tsa_key = Arc::new(SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap());
        let tsa_cert = issuing.issue(
            "CN=imza LT TSA,O=imza,C=AZ",
            &[0x34],
            tsa_key.as_ref(),
            with_cdp(tsa_extensions()),
        );

        // The CRLs: the issuing CA's revokes someone else, the root's is empty.
        let now = OffsetDateTime::now_utc();
        let (this_update, next_update) = (now - Duration::minutes(5), now + Duration::days(7));
        let someone_else = revoked(&[0x7f], now - Duration::days(1));
        crls.lock()
            .unwrap()
            .insert("root.crl".into(), root.crl(&[], this_update, next_update));
        crls.lock().unwrap().insert(
            "issuing.crl".into(),
            issuing.crl(&[someone_else], this_update, next_update),
        );

        let authority = TimeStampAuthority::new(TsaConfig::new(
            tsa_cert.clone(),
            vec![issuing.der.clone()],
            tsa_key,
            oids::ETSI_BEST_PRACTICES_TS_POLICY,
        ))
        .unwrap();
        let tsa_server = imza_testdata::tsa::serve(authority, 2);
        let timestamper = HttpTimestamper::new(tsa_server.url("/tsa"));
        let sources = ValidationDataSources::new(vec![root.der.clone()]);
        LongTermPki {
            root,
            issuing,
            signer_key,
            signer_cert,
            tsa_cert,
            crl_server: Mutex::new(Some(crl_server)),
            _tsa_server: tsa_server,
            crl_fetches,
            timestamper,
            sources,
        }
    }

    pub fn credentials(&self) -> Credentials {
        let key = SoftwareKey::from_pkey(self.signer_key.pkey().clone(), "test signer").unwrap();
        Credentials::new(
            Box::new(key),
            self.signer_cert.clone(),
            vec![self.issuing.der.clone()],
        )
        .unwrap()
    }

    /// Signing at `level` now, detached, with the PKI's TSA and validation data sources.
    pub fn options(&self, level: Level) -> SignOptions<'_> {
        let mut options = SignOptions::new(OffsetDateTime::now_utc());
        options.level = level;
        options.augment.timestamper = Some(&self.timestamper);
        options.augment.validation = Some(&self.sources);
        options
    }

    /// Stops the CRL server: from now on no revocation data can be fetched.
    pub fn stop_crl_server(&self) {
        if let Some(server) = self.crl_server.lock().unwrap().take() {
            server.stop();
        }
    }

    pub fn crl_fetches(&self) -> usize {
        *self.crl_fetches.lock().unwrap()
    }

    /// `pdf` signed as PAdES (an approval, or a certification) at `level` now, with the
    /// PKI's TSA and validation data sources.
    pub fn sign_pdf(&self, pdf: &[u8], level: Level, certification: Option<DocMdp>) -> Vec<u8> {
        let mut options = PadesOptions::new(OffsetDateTime::now_utc());
        options.level = level;
        options.certification = certification;
        options.reason = Some("Arayış / statement".into());
        options.augment = self.options(level).augment;
        let mut out = std::io::Cursor::new(Vec::new());
        sign_pdf(
            std::io::Cursor::new(pdf.to_vec()),
            &mut out,
            &self.credentials(),
            &options,
        )
        .expect("PAdES signing");
        out.into_inner()
    }

    /// imza's verdict on `pdf` now, trusting the root; `network`: CRLs may be fetched.
    pub fn verify_pdf(&self, pdf: &[u8], network: bool) -> ValidationReport {
        let mut options = VerifyOptions::new(
            vec![imza_validation::Certificate::from_der(self.root.der.clone()).unwrap()],
            OffsetDateTime::now_utc(),
        );
        options.network = network;
        verify_pdf(std::io::Cursor::new(pdf.to_vec()), &options)
    }
}
