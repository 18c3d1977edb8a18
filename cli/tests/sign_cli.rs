//! `imza sign` as a process: B-B and B-T signatures from a key file, a PKCS#12 file and a
//! SoftHSM2 token, checked with `openssl cms -verify`; `--augment` from B to T; and the
//! refusals, each with exit status 2 and a message that says what to do.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

mod common;

use common::{pkcs11_args, sign_args};

use imza_core::key::pkcs11::{PinSource, Pkcs11Key};
use imza_core::key::software::SoftwareKey;
use imza_core::{oids, KeyAlgorithm};
use imza_testdata::pki::{leaf_extensions, signing_extensions, write_certificate, TestCa};
use imza_testdata::softhsm::{KeyLocation, SoftHsm};
use imza_testdata::tools::text;
use imza_testdata::tsa::LoopbackTsa;
use tempfile::TempDir;
use zeroize::Zeroizing;

const DOCUMENT: &[u8] = b"Mezuniyet arayisi\n\x00\xff binary too";
const SUBJECT: &str = "CN=Rashad Aliyev,SERIALNUMBER=PNOAZ-7654321,C=AZ";

/// Root → issuing CA → signer (P-256), as files: root.pem, chain.pem, signer.pem, signer.key,
/// and the document doc.txt.
struct Fixture {
    dir: TempDir,
    root: TestCa,
    issuing: TestCa,
    key: Arc<SoftwareKey>,
    cert: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = TestCa::root("CN=imza CLI Sign Root,O=imza,C=AZ", KeyAlgorithm::EcP256);
        let issuing = root.issuing_ca(
            "CN=imza CLI Sign Citizens CA,O=imza,C=AZ",
            KeyAlgorithm::EcP256,
            &[0x02],
        );
        let key = Arc::new(SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap());
        let cert = issuing.issue(SUBJECT, &[0x51], key.as_ref(), signing_extensions());
        let f = Fixture {
            dir,
            root,
            issuing,
            key,
            cert,
        };
        write_certificate(&f.path("root.pem"), &f.root.der);
        write_certificate(&f.path("chain.pem"), &f.issuing.der);
        write_certificate(&f.path("signer.pem"), &f.cert);
        f.key.save_pem(&f.path("signer.key")).unwrap();
        std::fs::write(f.path("doc.txt"), DOCUMENT).unwrap();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// `imza sign --in doc.txt --out OUT --key signer.key --cert signer.pem --chain chain.pem`
    /// followed by `extra`.
    fn sign(&self, out: &str, extra: &[&str]) -> Output {
        let (key, cert, chain) = (
            self.p("signer.key"),
            self.p("signer.pem"),
            self.p("chain.pem"),
        );
        let mut args = vec!["--key", &key, "--cert", &cert, "--chain", &chain];
        args.extend_from_slice(extra);
        self.sign_with(out, &args, &[])
    }

    /// `imza sign --in doc.txt --out OUT` followed by `args` (the signer), with `env`.
    fn sign_with(&self, out: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let (doc, out) = (self.p("doc.txt"), self.p(out));
        let mut all = strings(&["sign", "--in", &doc, "--out", &out]);
        all.extend(strings(args));
        imza(&all, env)
    }

    /// `openssl cms -verify` of `signature` (detached with doc.txt unless `attached`): the
    /// content it wrote out, or what it said.
    fn openssl_verify(&self, signature: &str, attached: bool) -> Result<Vec<u8>, String> {
        let out = self.p("openssl-out.bin");
        let sig = self.p(signature);
        let root = self.p("root.pem");
        let doc = self.p("doc.txt");
        let mut args = vec![
            "cms", "-verify", "-binary", "-inform", "DER", "-in", &sig, "-CAfile", &root,
            "-purpose", "any", "-out", &out,
        ];
        if !attached {
            args.extend(["-content", &doc]);
        }
        let result = Command::new("openssl").args(&args).output().unwrap();
        if result.status.success() {
            Ok(std::fs::read(&out).unwrap())
        } else {
            Err(text(&result))
        }
    }
}

fn imza(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imza"));
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run imza")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Asserts the exit status and returns everything printed.
fn exits(out: &Output, code: i32) -> String {
    let said = text(out);
    assert_eq!(out.status.code(), Some(code), "{said}");
    said
}

#[test]
fn key_file_signatures_detached_and_enveloping_are_accepted_by_openssl() {
    let f = Fixture::new();
    let said = exits(&f.sign("doc.p7s", &[]), 0);
    assert!(said.contains("as B-B (detached)"), "{said}");
    assert!(said.contains("CN=Rashad Aliyev"), "{said}");
    assert_eq!(f.openssl_verify("doc.p7s", false).unwrap(), DOCUMENT);

    exits(
        &f.sign("attached.p7s", &["--attached", "--level", "B-B"]),
        0,
    );
    assert_eq!(f.openssl_verify("attached.p7s", true).unwrap(), DOCUMENT);

    // --out is never overwritten.
    let before = std::fs::read(f.path("doc.p7s")).unwrap();
    let said = exits(&f.sign("doc.p7s", &[]), 2);
    assert!(said.contains("already exists"), "{said}");
    assert_eq!(std::fs::read(f.path("doc.p7s")).unwrap(), before);
}

#[test]
fn level_t_needs_a_tsa_and_with_one_openssl_accepts_the_signature() {
    let f = Fixture::new();
    let said = exits(&f.sign("t.p7s", &["--level", "T"]), 2);
    assert!(said.contains("--tsa"), "{said}");
    assert!(!f.path("t.p7s").exists());

    let tsa = LoopbackTsa::start();
    let said = exits(&f.sign("t.p7s", &["--level", "T", "--tsa", &tsa.url()]), 0);
    assert!(said.contains("as B-T"), "{said}");
    assert_eq!(f.openssl_verify("t.p7s", false).unwrap(), DOCUMENT);

    // A TSA that is not there: exit 3, the URL named, nothing written.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/tsa", listener.local_addr().unwrap());
    drop(listener);
    let said = exits(&f.sign("down.p7s", &["--level", "T", "--tsa", &url]), 3);
    assert!(said.contains(&url), "{said}");
    assert!(!f.path("down.p7s").exists());
}

#[test]
fn augment_raises_b_to_t_and_keeps_the_signature_value() {
    let f = Fixture::new();
    let tsa = LoopbackTsa::start();
    exits(&f.sign("b.p7s", &[]), 0);
    let b = std::fs::read(f.path("b.p7s")).unwrap();
    let url = tsa.url();
    let augment = |signature: &str, out: &str, extra: &[&str]| {
        let mut args = strings(&["sign", "--augment", &f.p(signature), "--out", &f.p(out)]);
        args.extend(strings(extra));
        imza(&args, &[])
    };
    // To B-T, claiming `content` is what was signed.
    let to_t = |out: &str, content: &str| {
        augment(
            "b.p7s",
            out,
            &["--level", "T", "--tsa", &url, "--content", &f.p(content)],
        )
    };
    let said = exits(&to_t("t.p7s", "doc.txt"), 0);
    assert!(said.contains("from B-B to B-T"), "{said}");
    let t = std::fs::read(f.path("t.p7s")).unwrap();
    assert!(t.len() > b.len() + 500, "no token added");
    // A B-B signature's DER ends with its signature value (the SignerInfo has no unsigned
    // attributes yet); the B-T one carries those bytes unchanged.
    let tail = &b[b.len() - 64..];
    assert!(t.windows(tail.len()).any(|w| w == tail));
    assert_eq!(f.openssl_verify("t.p7s", false).unwrap(), DOCUMENT);

    // Refusals: level B, the wrong content, no signature at all, and signing flags mixed in.
    let said = exits(
        &augment("b.p7s", "x.p7s", &["--level", "B", "--tsa", &url]),
        2,
    );
    assert!(said.contains("T, LT or LTA"), "{said}");
    std::fs::write(f.path("other.txt"), b"other").unwrap();
    let said = exits(&to_t("x.p7s", "other.txt"), 2);
    assert!(said.contains("not the signed content"), "{said}");
    std::fs::write(f.path("garbage.p7s"), b"0\x82garbage").unwrap();
    let said = exits(
        &augment("garbage.p7s", "x.p7s", &["--level", "T", "--tsa", &url]),
        2,
    );
    assert!(said.contains("not a CMS signature"), "{said}");
    exits(
        &augment(
            "b.p7s",
            "x.p7s",
            &["--level", "T", "--tsa", &url, "--attached"],
        ),
        2,
    );
    assert!(!f.path("x.p7s").exists());
}

#[test]
fn pkcs12_files_sign_with_the_password_from_the_environment() {
    let f = Fixture::new();
    let cert = openssl::x509::X509::from_der(&f.cert).unwrap();
    let mut chain = openssl::stack::Stack::new().unwrap();
    chain
        .push(openssl::x509::X509::from_der(&f.issuing.der).unwrap())
        .unwrap();
    let p12 = openssl::pkcs12::Pkcs12::builder()
        .name("signer")
        .pkey(f.key.pkey())
        .cert(&cert)
        .ca(chain)
        .build2("parol-123")
        .unwrap()
        .to_der()
        .unwrap();
    std::fs::write(f.path("signer.p12"), p12).unwrap();
    let p12 = f.p("signer.p12");
    let sign = |out: &str, env: &[(&str, &str)]| {
        f.sign_with(
            out,
            &["--p12", &p12, "--p12-pass-env", "SIGN_TEST_P12_PASS"],
            env,
        )
    };
    exits(&sign("p12.p7s", &[("SIGN_TEST_P12_PASS", "parol-123")]), 0);
    assert_eq!(f.openssl_verify("p12.p7s", false).unwrap(), DOCUMENT);

    let said = exits(&sign("wrong.p7s", &[("SIGN_TEST_P12_PASS", "nope")]), 2);
    assert!(said.contains("wrong password"), "{said}");
    let said = exits(&sign("unset.p7s", &[]), 2);
    assert!(said.contains("SIGN_TEST_P12_PASS"), "{said}");
}

#[test]
fn bad_keys_certificates_and_files_exit_2_with_the_reason() {
    let f = Fixture::new();
    // A key that is not the certificate's.
    SoftwareKey::generate(KeyAlgorithm::EcP256)
        .unwrap()
        .save_pem(&f.path("stray.key"))
        .unwrap();
    let (doc, x, stray, signer) = (
        f.p("doc.txt"),
        f.p("x.p7s"),
        f.p("stray.key"),
        f.p("signer.pem"),
    );
    let args = strings(&sign_args(&doc, &x, &stray, &signer, &[]));
    let said = exits(&imza(&args, &[]), 2);
    assert!(said.contains("not the one certified"), "{said}");

    // No such document; a certificate that is not one; no key at all; --key without --cert.
    let mut missing = args.clone();
    missing[2] = f.p("missing.txt");
    missing[6] = f.p("signer.key");
    let said = exits(&imza(&missing, &[]), 2);
    assert!(said.contains("missing.txt"), "{said}");
    let mut garbage_cert = args.clone();
    garbage_cert[6] = f.p("signer.key");
    garbage_cert[8] = f.p("doc.txt");
    exits(&imza(&garbage_cert, &[]), 2);
    // Without --key and --cert (the first five arguments: sign --in doc.txt --out x.p7s).
    exits(&imza(&args[..5], &[]), 2);
    let key_only = [&args[..5], &strings(&["--key", &f.p("signer.key")])].concat();
    exits(&imza(&key_only, &[]), 2);
    // An unknown level.
    let said = exits(&f.sign("x.p7s", &["--level", "Q"]), 2);
    assert!(said.contains("expected B, T, LT or LTA"), "{said}");
    // LT without anything to validate to: the chain holds no root.
    let tsa = LoopbackTsa::start();
    let said = exits(&f.sign("x.p7s", &["--level", "LT", "--tsa", &tsa.url()]), 2);
    assert!(said.contains("--trust"), "{said}");
    assert!(!f.path("x.p7s").exists());
}

#[test]
fn help_reads_like_a_manual() {
    let said = exits(&imza(&strings(&["sign", "--help"]), &[]), 0);
    for needle in [
        "Levels:",
        "--augment",
        "--p12-pass-env",
        "--pkcs11-key-label",
        "--trust",
        "Exit status",
        "never overwritten",
    ] {
        assert!(said.contains(needle), "--help lacks {needle}: {said}");
    }
}

fn softhsm() -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let hsm = SoftHsm::new();
        hsm.init_token("cli-signer", "87654321", "2468");
        std::env::set_var("SOFTHSM2_CONF", hsm.conf_path());
        hsm
    })
}

#[test]
fn a_pkcs11_key_signs_from_the_command_line() {
    if !SoftHsm::is_available() {
        eprintln!("note: SoftHSM2 is not installed; skipping");
        return;
    }
    let hsm = softhsm();
    let f = Fixture::new();
    let location = hsm.location("cli-signer", "citizen");
    let pin = PinSource::Value(Zeroizing::new("2468".to_string()));
    let key = Pkcs11Key::generate(&location, KeyAlgorithm::EcP256, &pin).unwrap();
    let cert = f.issuing.issue(SUBJECT, &[0x52], &key, leaf_extensions());
    write_certificate(&f.path("token.pem"), &cert);
    let conf = hsm.conf_path().to_str().unwrap().to_string();
    let module = hsm.module_path().to_str().unwrap().to_string();
    let sign = |out: &str, cert: &str, pin: &str| {
        let (cert, chain) = (f.p(cert), f.p("chain.pem"));
        let mut args = pkcs11_args(&module, "cli-signer", "SIGN_TEST_PIN").to_vec();
        args.extend([
            "--pkcs11-key-label",
            "citizen",
            "--cert",
            &cert,
            "--chain",
            &chain,
        ]);
        f.sign_with(
            out,
            &args,
            &[("SOFTHSM2_CONF", &conf), ("SIGN_TEST_PIN", pin)],
        )
    };
    exits(&sign("token.p7s", "token.pem", "2468"), 0);
    assert_eq!(f.openssl_verify("token.p7s", false).unwrap(), DOCUMENT);
    // The token's key with another certificate: refused before signing.
    let said = exits(&sign("mismatch.p7s", "signer.pem", "2468"), 2);
    assert!(said.contains("not the one certified"), "{said}");
    assert!(!Path::new(&f.p("mismatch.p7s")).exists());
}

/// Root → citizens, their URLs at a free port (`http://127.0.0.1:PORT`), a TSA, and a
/// citizen's signing certificate in `citizen.p12` (password `p12-parol` in SIGN_TEST_P12):
/// (the PKI, the base URL, the port, the PKCS#12 file).
fn pki_with_a_citizen_and_a_tsa() -> (common::TestPki, String, u16, PathBuf) {
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let pki = common::TestPki::with_root_and_citizens_at(&base);
    let p12 = pki.path("citizen.p12");
    let cert = pki.path("citizen.pem");
    pki.issue_p12(
        (
            "citizens",
            "citizen-sign",
            "CN=Əli Əliyev,SN=Əliyev,GN=Əli,SERIALNUMBER=PNOAZ-5ZK7T2Q,C=AZ",
        ),
        &p12,
        &cert,
        ("SIGN_TEST_P12", "p12-parol"),
        &[],
    );
    pki.ok(&["tsa", "init", "--ca", "citizens"]);
    (pki, base, port, p12)
}

#[test]
fn b_lt_and_b_lta_with_ocsp_and_a_tsa_from_a_real_imza_serve() {
    let (pki, base, port, p12) = pki_with_a_citizen_and_a_tsa();
    let root = pki.ca_pem("root");
    let doc = pki.path("doc.txt");
    std::fs::write(&doc, DOCUMENT).unwrap();
    let serving = common::Server::start_on(&pki, port, &[]);

    let sign = |out: &str, level: &str| {
        let args = strings(&[
            "sign",
            "--in",
            doc.to_str().unwrap(),
            "--out",
            pki.path(out).to_str().unwrap(),
            "--p12",
            p12.to_str().unwrap(),
            "--p12-pass-env",
            "SIGN_TEST_P12",
            "--level",
            level,
            "--tsa",
            &format!("{base}/tsa"),
            "--trust",
            root.to_str().unwrap(),
        ]);
        imza(&args, &[("SIGN_TEST_P12", "p12-parol")])
    };
    let said = exits(&sign("lt.p7s", "LT"), 0);
    assert!(said.contains("as B-LT"), "{said}");
    let said = exits(&sign("lta.p7s", "LTA"), 0);
    assert!(said.contains("as B-LTA"), "{said}");
    let lt = std::fs::read(pki.path("lt.p7s")).unwrap();
    // OCSP responses go in as RevocationInfoChoice other [1] with id-ri-ocsp-response.
    let ri_ocsp = der::Encode::to_der(&oids::RI_OCSP_RESPONSE).unwrap();
    assert!(
        lt.windows(ri_ocsp.len()).any(|w| w == ri_ocsp),
        "no OCSP response embedded"
    );

    // With the server stopped, `imza verify` (network off) says TOTAL_PASSED for both.
    drop(serving);
    for name in ["lt.p7s", "lta.p7s"] {
        let args = strings(&[
            "verify",
            pki.path(name).to_str().unwrap(),
            "--content",
            doc.to_str().unwrap(),
            "--trust",
            root.to_str().unwrap(),
        ]);
        let said = exits(&imza(&args, &[]), 0);
        assert!(said.contains("TOTAL_PASSED"), "{name}: {said}");
    }
}

#[test]
fn pades_from_the_command_line_with_a_real_imza_serve_checked_by_pyhanko_and_offline_by_imza() {
    let (pki, base, port, p12) = pki_with_a_citizen_and_a_tsa();
    let root = pki.ca_pem("root");
    let doc = pki.path("statement.pdf");
    std::fs::write(
        &doc,
        imza_testdata::pdf::simple_pdf(&["Yasayis yeri haqqinda arayis"], 0),
    )
    .unwrap();
    let serving = common::Server::start_on(&pki, port, &[]);
    let tsa = format!("{base}/tsa");
    let p = |name: &str| pki.path(name).to_str().unwrap().to_string();
    let signer = [
        "--p12",
        p12.to_str().unwrap(),
        "--p12-pass-env",
        "SIGN_TEST_P12",
    ];
    let env = [("SIGN_TEST_P12", "p12-parol")];
    let run = |args: &[&str]| imza(&strings(args), &env);

    let mut b = vec!["sign", "--pades", "--in", doc.to_str().unwrap()];
    let out_b = p("b.pdf");
    b.extend(["--out", &out_b, "--reason", "Arayış"]);
    b.extend(signer);
    let said = exits(&run(&b), 0);
    assert!(said.contains("as PAdES B-B"), "{said}");

    let out_lta = p("sealed-lta.pdf");
    let root_text = root.to_str().unwrap().to_string();
    let mut lta = vec![
        "sign",
        "--pades",
        "--certify",
        "P1",
        "--in",
        doc.to_str().unwrap(),
    ];
    lta.extend([
        "--out", &out_lta, "--level", "LTA", "--tsa", &tsa, "--trust", &root_text,
    ]);
    lta.extend(signer);
    let said = exits(&run(&lta), 0);
    assert!(
        said.contains("as PAdES B-LTA (certification, DocMDP P1)"),
        "{said}"
    );

    // B-B raised to B-LTA in a copy; the original stays as it was.
    let before = std::fs::read(&out_b).unwrap();
    let out_raised = p("raised.pdf");
    let said = exits(
        &run(&[
            "sign",
            "--augment",
            &out_b,
            "--level",
            "LTA",
            "--tsa",
            &tsa,
            "--trust",
            &root_text,
            "--out",
            &out_raised,
        ]),
        0,
    );
    assert!(said.contains("to PAdES B-LTA"), "{said}");
    assert_eq!(std::fs::read(&out_b).unwrap(), before);
    let raised = std::fs::read(&out_raised).unwrap();
    assert!(raised.starts_with(&before), "an augmentation only appends");

    // POST /verify takes the PDF itself.
    let answer = serving.post("/verify", "application/pdf", &raised);
    let report: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["signatures"][0]["level"], "B-LTA", "{report}");
    assert_eq!(
        report["signatures"][1]["pdf"]["kind"], "document_timestamp",
        "{report}"
    );

    // pyHanko accepts them (fetching OCSP from the server: offline validation by pyHanko of
    // embedded data is shown in imza-signer's tests/pades.rs, with CRLs).
    for name in ["b.pdf", "sealed-lta.pdf", "raised.pdf"] {
        let py = text(&imza_testdata::tools::pyhanko(&[
            "sign",
            "validate",
            "--trust",
            &root_text,
            "--trust-replace",
            &p(name),
        ]));
        assert!(py.contains("INTACT:TRUSTED"), "{name}: pyhanko: {py}");
    }

    // With the server stopped, imza (network off) accepts the LTA documents.
    drop(serving);
    for name in ["sealed-lta.pdf", "raised.pdf"] {
        let said = exits(&run(&["verify", &p(name), "--trust", &root_text]), 0);
        assert!(said.contains("Level:         B-LTA"), "{name}: {said}");
        assert!(said.contains("PDF:"), "{name}: {said}");
        assert!(said.contains("Result: VALID ("), "{name}: {said}");
        assert!(
            said.contains("document time-stamp in field \"DocTimeStamp1\""),
            "{name}: {said}"
        );
        imza_testdata::tools::qpdf_check(&pki.path(name));
    }

    // A byte changed inside the signed range: exit 1, HASH_FAILURE.
    let mut tampered = raised.clone();
    let at = tampered.windows(8).position(|w| w == b"Yasayis ").unwrap();
    tampered[at] = b'Q';
    std::fs::write(pki.path("tampered.pdf"), &tampered).unwrap();
    let said = exits(
        &run(&["verify", &p("tampered.pdf"), "--trust", &root_text]),
        1,
    );
    assert!(said.contains("HASH_FAILURE"), "{said}");

    // Refusals: not a PDF, --content with a PDF, an existing --out.
    std::fs::write(pki.path("not.pdf"), b"plain text").unwrap();
    let mut bad = vec!["sign", "--pades", "--in"];
    let not_pdf = p("not.pdf");
    let out_x = p("x.pdf");
    bad.extend([not_pdf.as_str(), "--out", &out_x]);
    bad.extend(signer);
    let said = exits(&run(&bad), 2);
    assert!(said.contains("is not a PDF"), "{said}");
    let said = exits(
        &run(&[
            "verify",
            &p("raised.pdf"),
            "--content",
            &p("b.pdf"),
            "--trust",
            &root_text,
        ]),
        2,
    );
    assert!(said.contains("a PDF holds what it signs"), "{said}");
    assert!(!Path::new(&out_x).exists());
}

/// Dark pixels of page 1 (rendered by poppler at 72 dpi, so one pixel a point) in the box
/// `[x, y, width, height]` (points from the lower left corner).
fn dark_pixels(pdf: &Path, [x, y, w, h]: [usize; 4]) -> usize {
    let out = Command::new("pdftoppm")
        .args(["-gray", "-r", "72", "-f", "1", "-l", "1"])
        .arg(pdf)
        .output()
        .expect("pdftoppm");
    assert!(out.status.success());
    // Binary PGM: "P5", width, height, maxval, then the pixels.
    let data = out.stdout;
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while data[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !data[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
    }
    let (width, height): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = &data[at + 1..];
    let mut dark = 0;
    for row in (height - y - h)..(height - y) {
        for column in x..x + w {
            if pixels[row * width + column] < 128 {
                dark += 1;
            }
        }
    }
    dark
}

#[test]
fn a_visible_stamp_is_drawn_where_asked_and_the_signature_stays_valid() {
    let f = Fixture::new();
    std::fs::write(
        f.path("doc.txt"),
        imza_testdata::pdf::simple_pdf(&["Diplom"], 0),
    )
    .unwrap();
    let said = exits(
        &f.sign(
            "stamped.pdf",
            &[
                "--pades",
                "--stamp",
                "350,60,200,60",
                "--stamp-reference",
                "7K3M-9QXD-2F4A",
            ],
        ),
        0,
    );
    assert!(said.contains("as PAdES B-B"), "{said}");
    let stamped = f.path("stamped.pdf");
    let area = [350, 60, 200, 60];
    assert_eq!(
        dark_pixels(&f.path("doc.txt"), area),
        0,
        "the page is blank there"
    );
    let dark = dark_pixels(&stamped, area);
    assert!(dark > 300, "the stamp's frame and text: {dark} dark pixels");
    assert_eq!(
        dark_pixels(&stamped, [50, 300, 200, 60]),
        0,
        "nothing elsewhere"
    );
    imza_testdata::tools::qpdf_check(&stamped);
    let root = f.p("root.pem");
    let verified = exits(
        &imza(
            &strings(&[
                "verify",
                stamped.to_str().unwrap(),
                "--trust",
                &root,
                "--untrusted",
                &f.p("chain.pem"),
            ]),
            &[],
        ),
        1,
    );
    // No revocation source for this fixture's CA: INDETERMINATE, but the signature itself
    // (hash and value) is sound.
    assert!(verified.contains("TRY_LATER"), "{verified}");
    let py = text(&imza_testdata::tools::pyhanko(&[
        "sign",
        "validate",
        "--no-revocation-check",
        "--trust",
        &root,
        "--trust-replace",
        stamped.to_str().unwrap(),
    ]));
    assert!(py.contains("INTACT:TRUSTED"), "{py}");
    // Off the page's size, a zero page and a malformed box are refused before signing.
    for (bad, needle) in [
        (vec!["--stamp", "1,2,3"], "X,Y,WIDTH,HEIGHT"),
        (
            vec!["--stamp", "10,10,100,40", "--stamp-page", "0"],
            "counts from 1",
        ),
        (
            vec!["--stamp", "10,10,100,40", "--stamp-page", "9"],
            "no page 9",
        ),
    ] {
        let mut args = vec!["--pades"];
        args.extend(bad);
        let said = exits(&f.sign("bad.pdf", &args), 2);
        assert!(said.contains(needle), "{said}");
    }
}
