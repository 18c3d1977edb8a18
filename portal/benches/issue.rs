//! E-certificates issued per second, end to end: the citizen's facts read, the statement
//! rendered, certified with the agency's e-seal at PAdES B-LTA (a signature time-stamp, a
//! DSS, a document time-stamp and its DSS) with imza's TSA and OCSP responder on loopback
//! HTTP, and registered in a SQLite file — on one thread, then on two sharing one sealer (the
//! 2-core figure); the seal key in software, and on SoftHSM2 when it is installed. Beside it,
//! in the same run, pyHanko (from the project's .venv) certifies the same rendered document at
//! B-LTA with the same TSA and OCSP, in one Python process. Target: ≥ 200 documents/s on 2
//! cores.
//!
//! `cargo bench -p imza-portal --bench issue`

// Benchmark code: a failed set-up panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use imza_core::clock::SystemClock;
use imza_core::key::pkcs11::{PinSource, Pkcs11Key};
use imza_core::key::software::SoftwareKey;
use imza_core::{ext, KeyAlgorithm, SigningKey};
use imza_ocsp::CertStatusInfo;
use imza_portal::document::{
    issue, render, DocumentKind, DocumentReference, Fact, Sealer, Statement,
};
use imza_portal::registry::TomlCitizenRegistry;
use imza_portal::store::sqlite::SqlitePortalStore;
use imza_signer::{Credentials, HttpTimestamper};
use imza_testdata::bench::measure;
use imza_testdata::ocsp::OcspResponder;
use imza_testdata::pki::{signing_extensions, tsa_extensions, TestCa};
use imza_testdata::softhsm::{KeyLocation, SoftHsm};
use imza_validation::{Certificate, FetchCache, FetchCacheConfig};
use time::OffsetDateTime;
use zeroize::Zeroizing;

const SEAL: &str = "CN=ASAN Xidmət e-möhür,O=ASAN Xidmət,C=AZ";
const ORIGIN: &str = "https://portal.gov.az";

/// pyHanko certifying `PDF` at B-LTA `N` times in one process: documents per second.
const PYHANKO: &str = r#"
import io, sys, time
from pyhanko.sign import signers, timestamps, fields
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.keys import load_cert_from_pemder
from pyhanko_certvalidator import ValidationContext
key, cert, root, tsa_url, pdf, n = sys.argv[1:7]
signer = signers.SimpleSigner.load(key, cert, key_passphrase=None)
vc = ValidationContext(trust_roots=[load_cert_from_pemder(root)], allow_fetching=True)
meta = PdfSignatureMetadata(field_name='Seal', subfilter=fields.SigSeedSubFilter.PADES,
    embed_validation_info=True, use_pades_lta=True, validation_context=vc, certify=True,
    docmdp_permissions=fields.MDPPerm.NO_CHANGES)
tsa = timestamps.HTTPTimeStamper(tsa_url)
data = open(pdf, 'rb').read()
def once():
    signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(data)), meta, signer=signer,
                     timestamper=tsa)
once()
n = int(n)
start = time.perf_counter()
for _ in range(n):
    once()
print(n / (time.perf_counter() - start))
"#;

fn main() {
    let root = TestCa::root("CN=Bench Root,O=imza,C=AZ", KeyAlgorithm::EcP256);
    let ocsp = OcspResponder::for_ca(&root);
    let with_ocsp = |mut extensions: Vec<x509_cert::ext::Extension>| {
        extensions.push(ext::authority_info_access(Some(&ocsp.url), None).unwrap());
        extensions
    };
    let tsa_key = Arc::new(SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap());
    let tsa_cert = root.issue(
        "CN=Bench TSA,O=imza,C=AZ",
        &[0x21],
        tsa_key.as_ref(),
        with_ocsp(tsa_extensions()),
    );
    let tsa = imza_testdata::tsa::serve(imza_testdata::tsa::authority(&tsa_cert, tsa_key), 2);
    let tsa_url = tsa.url("/tsa");
    let seal_key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let seal_cert = root.issue(SEAL, &[0x22], &seal_key, with_ocsp(signing_extensions()));
    for serial in [[0x21u8], [0x22]] {
        ocsp.statuses.set(&serial, CertStatusInfo::Good);
    }

    let dir = tempfile::tempdir().unwrap();
    let citizens = dir.path().join("citizens.toml");
    std::fs::write(&citizens, imza_portal::registry::DEMO_CITIZENS).unwrap();
    let registry = TomlCitizenRegistry::load(&citizens).unwrap();
    let store = SqlitePortalStore::open(&dir.path().join("portal.db")).unwrap();
    let fetch_cache = Arc::new(FetchCache::new(
        FetchCacheConfig::default(),
        Arc::new(SystemClock),
    ));
    let sealer = |key: Box<dyn SigningKey>| Sealer {
        agency: "ASAN Xidmət".into(),
        credentials: Credentials::new(key, seal_cert.clone(), Vec::new()).unwrap(),
        timestamper: HttpTimestamper::new(tsa_url.clone()),
        trust_anchors: vec![root.der.clone()],
        fetch_cache: Arc::clone(&fetch_cache),
        origin: ORIGIN.into(),
    };
    // Checked once: the benchmark measures documents that validate.
    let software = sealer(Box::new(
        SoftwareKey::from_pkey(seal_key.pkey().clone(), "seal").unwrap(),
    ));
    let run = |label: &str, sealer: &Sealer| {
        let (_, pdf) = issue(
            &store,
            &registry,
            sealer,
            "PNOAZ-5ZK7T2Q",
            DocumentKind::Residence,
            OffsetDateTime::now_utc(),
        )
        .expect("a document is issued");
        let options = imza_signer::VerifyOptions::new(
            vec![Certificate::from_der(root.der.clone()).unwrap()],
            OffsetDateTime::now_utc(),
        );
        let report = imza_signer::pades::verify_pdf(std::io::Cursor::new(&pdf), &options);
        assert!(report.valid, "the sealed document validates");
        assert_eq!(report.signatures[0].level, Some("B-LTA"));
        let once = || {
            issue(
                &store,
                &registry,
                sealer,
                "PNOAZ-5ZK7T2Q",
                DocumentKind::Residence,
                OffsetDateTime::now_utc(),
            )
            .expect("issue");
        };
        let span = Duration::from_secs(4);
        let one = measure(span, 10, once);
        let two: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| scope.spawn(|| measure(span, 10, once)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let two_total: f64 = two
            .iter()
            .map(|m| m.calls as f64 / m.wall.as_secs_f64())
            .sum();
        println!(
            "e-certificates issued ({label}): one thread {:>6.0}/s ({:.2} ms each), two threads \
             {:>6.0}/s; {} bytes each",
            one.calls as f64 / one.wall.as_secs_f64(),
            one.wall.as_secs_f64() * 1000.0 / one.calls as f64,
            two_total,
            pdf.len()
        );
        pdf
    };
    let sealed = run("seal key in software", &software);
    if SoftHsm::is_available() {
        let hsm = SoftHsm::new();
        hsm.init_token("agency", "87654321", "seal-pin");
        std::env::set_var("SOFTHSM2_CONF", hsm.conf_path());
        let location = hsm.location("agency", "seal");
        let pin = PinSource::Value(Zeroizing::new("seal-pin".to_string()));
        let key = Pkcs11Key::generate(&location, KeyAlgorithm::EcP256, &pin).unwrap();
        let hsm_cert = root.issue(SEAL, &[0x23], &key, with_ocsp(signing_extensions()));
        ocsp.statuses.set(&[0x23], CertStatusInfo::Good);
        let on_token = Sealer {
            credentials: Credentials::new(Box::new(key), hsm_cert, Vec::new()).unwrap(),
            ..sealer(Box::new(
                SoftwareKey::from_pkey(seal_key.pkey().clone(), "seal").unwrap(),
            ))
        };
        run("seal key on SoftHSM2", &on_token);
    }
    println!("(sealed document: {} bytes)", sealed.len());

    // Where the time goes: rendering alone, sealing alone, registering alone (one thread).
    let statement = Statement {
        agency: "ASAN Xidmət".into(),
        kind: DocumentKind::Residence,
        citizen_name: "Əliyev Günay Şəmsi oğlu".into(),
        personal_code: "PNOAZ-5ZK7T2Q".into(),
        facts: vec![Fact::residence_address("Bakı şəhəri, Nəsimi rayonu")],
        issued_at: OffsetDateTime::now_utc(),
        reference: DocumentReference::generate().unwrap(),
        origin: ORIGIN.into(),
    };
    let pdf = render(&statement).unwrap();
    let span = Duration::from_secs(2);
    let per = |m: imza_testdata::bench::Measured| m.wall.as_secs_f64() * 1000.0 / m.calls as f64;
    let rendering = measure(span, 10, || {
        render(&statement).unwrap();
    });
    let sealing = measure(span, 10, || {
        software.seal(&pdf, OffsetDateTime::now_utc()).unwrap();
    });
    let registering = measure(span, 10, || {
        imza_portal::document::register(
            &store,
            DocumentKind::Residence,
            "PNOAZ-5ZK7T2Q",
            OffsetDateTime::now_utc(),
            &sealed,
        )
        .unwrap();
    });
    println!(
        "one thread: rendering {:.2} ms, sealing at B-LTA {:.2} ms, registering (SQLite, \
         durable) {:.2} ms a document",
        per(rendering),
        per(sealing),
        per(registering)
    );

    // pyHanko on the same rendered document, same TSA and OCSP.
    let rendered = dir.path().join("statement.pdf");
    std::fs::write(&rendered, &pdf).unwrap();
    let pem = |name: &str, label: &str, der: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, imza_core::pem::encode(label, der).unwrap()).unwrap();
        path
    };
    let key_path = dir.path().join("seal.key");
    seal_key.save_pem(&key_path).unwrap();
    let cert_path = pem("seal.pem", "CERTIFICATE", &seal_cert);
    let root_path = pem("root.pem", "CERTIFICATE", &root.der);
    let script = dir.path().join("pyhanko_bench.py");
    std::fs::File::create(&script)
        .and_then(|mut f| f.write_all(PYHANKO.as_bytes()))
        .unwrap();
    let python = imza_testdata::tools::venv_tool("python");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args([&key_path, &cert_path, &root_path])
        .arg(&tsa_url)
        .arg(&rendered)
        .arg("20")
        .env("PYTHONWARNINGS", "ignore")
        .output();
    match out {
        Ok(out) if out.status.success() => println!(
            "pyHanko certifying the same document at B-LTA (same TSA and OCSP, one process): \
             {:>6.1}/s",
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .unwrap_or(0.0)
        ),
        Ok(out) => println!(
            "pyHanko did not run: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ),
        Err(e) => println!("pyHanko did not run ({}): {e}", python.display()),
    }
    drop(tsa);
}
