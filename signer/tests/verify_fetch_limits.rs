//! A verifier with the process's fetch cache cannot be turned into an amplifier: a crafted
//! signature of 16 signers × 4 time-stamps, each signer's certificate naming its own OCSP
//! responder and CRL at a loopback server that counts requests, makes at most the per-request
//! cap of outbound fetches in one verification (the signers beyond it are TRY_LATER, saying
//! which cap), and 32 concurrent verifications of one signature fetch each answer once.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::{Arc, Barrier};

use cms::content_info::ContentInfo;
use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode};
use imza_core::alg::DigestAlgorithm;
use imza_core::clock::SystemClock;
use imza_core::key::software::SoftwareKey;
use imza_core::{ext, oids, KeyAlgorithm};
use imza_signer::{Indication, SignatureVerifier, SubIndication, ValidationReport, VerifyOptions};
use imza_testdata::loopback::{CountingServer as Server, Reply};
use imza_testdata::pki::{tsa_extensions, write_certificate, TestCa};
use imza_tsa::{build_request, parse_response};
use imza_validation::{Certificate, FetchCache, FetchCacheConfig};
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::KeyUsages;

const DOCUMENT: &[u8] = b"a document signed by many\n";
const SIGNERS: usize = 16;
const TIMESTAMPS: usize = 4;

/// A root, `signers` signers and a TSA, each naming its own `/ocsp/NAME` and `/crl/NAME` at
/// the server; the files openssl needs in a temp directory.
struct Crowd {
    dir: tempfile::TempDir,
    root: TestCa,
    tsa: imza_testdata::pki::ServiceCert,
    server: Server,
    signers: usize,
}

impl Crowd {
    fn new(signers: usize) -> Crowd {
        let root = TestCa::root("CN=Crowd Root,C=AZ", KeyAlgorithm::EcP256);
        let now = OffsetDateTime::now_utc();
        let crl = root.crl(
            &[],
            now - time::Duration::minutes(5),
            now + time::Duration::days(1),
        );
        // `/crl/...` gets the CRL, anything else 404.
        let server = Server::start(move |path, _| {
            if path.starts_with("/crl/") {
                Reply::Body(crl.clone())
            } else {
                Reply::Status(404)
            }
        });
        let urls = |name: &str| {
            vec![
                ext::authority_info_access(Some(&server.url(&format!("/ocsp/{name}"))), None)
                    .unwrap(),
                ext::crl_distribution_points(&server.url(&format!("/crl/{name}"))).unwrap(),
            ]
        };
        let dir = tempfile::tempdir().unwrap();
        for i in 0..signers {
            let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
            let mut extensions =
                vec![
                    ext::key_usage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation)
                        .unwrap(),
                ];
            extensions.extend(urls(&format!("signer{i}")));
            let der = root.issue(
                &format!("CN=Signer {i},C=AZ"),
                &[0x10, i as u8 + 1],
                &key,
                extensions,
            );
            write_certificate(&dir.path().join(format!("signer{i}.pem")), &der);
            key.save_pem(&dir.path().join(format!("signer{i}.key")))
                .unwrap();
        }
        let mut extensions = tsa_extensions();
        extensions.extend(urls("tsa"));
        let tsa = root.issue_service(
            "CN=Crowd TSA,C=AZ",
            &[0x7a],
            KeyAlgorithm::EcP256,
            extensions,
        );
        Crowd {
            dir,
            root,
            tsa,
            server,
            signers,
        }
    }

    /// `openssl cms -sign` with every signer (one SignerInfo each), detached, then
    /// [`TIMESTAMPS`] signature time-stamps on every SignerInfo.
    fn signature(&self) -> Vec<u8> {
        let dir = self.dir.path();
        let content = dir.join("content.bin");
        std::fs::write(&content, DOCUMENT).unwrap();
        let out = dir.join("signature.p7s");
        let mut command = Command::new("openssl");
        command.args([
            "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
        ]);
        for i in 0..self.signers {
            command
                .arg("-signer")
                .arg(dir.join(format!("signer{i}.pem")))
                .arg("-inkey")
                .arg(dir.join(format!("signer{i}.key")));
        }
        command.arg("-in").arg(&content).arg("-out").arg(&out);
        let output = command.output().expect("openssl must be installed");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.with_timestamps(&std::fs::read(&out).unwrap())
    }

    fn with_timestamps(&self, signature: &[u8]) -> Vec<u8> {
        let authority = imza_testdata::tsa::authority(&self.tsa.der, self.tsa.key.clone());
        let info = ContentInfo::from_der(signature).unwrap();
        let mut sd = info
            .content
            .decode_as::<cms::signed_data::SignedData>()
            .unwrap();
        let mut infos = sd.signer_infos.0.into_vec();
        let gen_time = OffsetDateTime::now_utc() - time::Duration::minutes(1);
        for info in &mut infos {
            let digest = DigestAlgorithm::Sha256.digest(info.signature.as_bytes());
            let tokens: Vec<Any> = (0..TIMESTAMPS)
                .map(|_| {
                    let request =
                        build_request(&digest, DigestAlgorithm::Sha256, None, true, None).unwrap();
                    let answer = authority.respond(&request, gen_time);
                    let token = parse_response(&answer.der).unwrap().into_token().unwrap();
                    Any::from_der(token.der()).unwrap()
                })
                .collect();
            info.unsigned_attrs = Some(
                SetOfVec::try_from(vec![Attribute {
                    oid: oids::ATTR_TIME_STAMP_TOKEN,
                    values: SetOfVec::try_from(tokens).unwrap(),
                }])
                .unwrap(),
            );
        }
        sd.signer_infos = cms::signed_data::SignerInfos(SetOfVec::try_from(infos).unwrap());
        ContentInfo {
            content_type: oids::CT_SIGNED_DATA,
            content: Any::encode_from(&sd).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    /// A verifier trusting the root, network on, through a fresh fetch cache with `config`.
    fn verifier(&self, config: FetchCacheConfig) -> (SignatureVerifier, Arc<FetchCache>) {
        let cache = Arc::new(FetchCache::new(config, Arc::new(SystemClock)));
        let mut options = VerifyOptions::new(
            vec![Certificate::from_der(self.root.der.clone()).unwrap()],
            OffsetDateTime::now_utc(),
        );
        options.network = true;
        options.fetch_cache = Some(Arc::clone(&cache));
        (SignatureVerifier::new(&options), cache)
    }
}

fn verify(verifier: &SignatureVerifier, signature: &[u8]) -> ValidationReport {
    verifier.verify(signature, Some(DOCUMENT), OffsetDateTime::now_utc())
}

/// (TOTAL_PASSED, TRY_LATER saying the per-request cap) among the report's signatures; any
/// other verdict fails the test.
fn tally(report: &ValidationReport) -> (usize, usize) {
    let (mut passed, mut capped) = (0, 0);
    for s in &report.signatures {
        match (s.indication, s.sub_indication) {
            (Indication::TotalPassed, None) => passed += 1,
            (Indication::Indeterminate, Some(SubIndication::TRY_LATER))
                if s.errors.iter().any(|e| e.contains("per-request cap")) =>
            {
                capped += 1
            }
            _ => panic!("unexpected verdict: {s:#?}"),
        }
    }
    (passed, capped)
}

#[test]
fn a_crafted_many_signer_many_timestamp_signature_makes_at_most_the_capped_fetches() {
    let crowd = Crowd::new(SIGNERS);
    let signature = crowd.signature();
    let (verifier, cache) = crowd.verifier(FetchCacheConfig::default());
    assert_eq!(cache.config().per_request, 16);

    let report = verify(&verifier, &signature);
    assert_eq!(report.signatures.len(), SIGNERS);
    let (passed, capped) = tally(&report);
    assert_eq!(passed + capped, SIGNERS);
    assert!(capped > 0, "{report:#?}");
    assert_eq!(crowd.server.total(), 16);
    assert_eq!(cache.stats().outbound, 16);
    // The TSA's certificate, the same in all 64 tokens, was asked about once.
    assert_eq!(crowd.server.count("/crl/tsa"), 1);
    assert_eq!(crowd.server.count("/ocsp/tsa"), 1);

    // The next verification uses what was fetched and adds at most the cap again.
    let report = verify(&verifier, &signature);
    assert!(crowd.server.total() <= 32);
    assert!(tally(&report).0 > passed, "{report:#?}");
}

#[test]
fn without_the_cap_the_same_signature_needs_every_signers_fetches() {
    // The comparison that shows the cap above is what bounds the fetches: the TSA's two and
    // each signer's OCSP (404) and CRL.
    let crowd = Crowd::new(SIGNERS);
    let signature = crowd.signature();
    let (verifier, _) = crowd.verifier(FetchCacheConfig {
        per_request: 1000,
        ..FetchCacheConfig::default()
    });
    let report = verify(&verifier, &signature);
    assert_eq!(tally(&report), (SIGNERS, 0));
    assert_eq!(crowd.server.total(), 2 + 2 * SIGNERS);
}

#[test]
fn thirty_two_concurrent_verifications_of_one_signature_fetch_each_answer_once() {
    let crowd = Crowd::new(1);
    let signature = Arc::new(crowd.signature());
    let (verifier, cache) = crowd.verifier(FetchCacheConfig::default());
    let verifier = Arc::new(verifier);
    let barrier = Arc::new(Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (verifier, signature, barrier) = (
                Arc::clone(&verifier),
                Arc::clone(&signature),
                Arc::clone(&barrier),
            );
            std::thread::spawn(move || {
                barrier.wait();
                verify(&verifier, &signature)
            })
        })
        .collect();
    for handle in handles {
        let report = handle.join().unwrap();
        assert!(report.valid, "{report:#?}");
    }
    // The signer's and the TSA's responder (404, remembered) and CRL: once each.
    for path in ["/ocsp/signer0", "/crl/signer0", "/ocsp/tsa", "/crl/tsa"] {
        assert_eq!(crowd.server.count(path), 1, "{path}");
    }
    assert_eq!(cache.stats().outbound, 4);
}
