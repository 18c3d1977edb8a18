//! `imza verify` as a process: signatures made by `openssl cms -sign` and by `imza sign`
//! (B-T with imza's TSA on loopback), the summary and `--json`, and the exit status — 0 only
//! when TOTAL_PASSED, 1 for any other verdict, 2 for bad input.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

mod common;

use imza_core::ext;
use imza_core::key::software::SoftwareKey;
use imza_core::KeyAlgorithm;
use imza_testdata::pki::{crl_pem, tsa_extensions, write_certificate, TestCa};
use imza_testdata::tools::text;
use imza_testdata::tsa::authority;
use serde_json::Value;
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::KeyUsages;

const DOCUMENT: &[u8] = b"Electronic certificate of residence, 2026.\n";
const PERSONAL_CODE: &str = "PNOAZ-7Q8W9E0";

/// A root, a signer and a TSA under it, as files: root.pem, signer.pem, signer.key, tsa.pem,
/// crl.pem (nobody revoked), doc.txt.
struct Fixture {
    dir: TempDir,
    root: TestCa,
    tsa: imza_testdata::pki::ServiceCert,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = TestCa::root("CN=imza CLI Verify Root,O=imza,C=AZ", KeyAlgorithm::EcP256);
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let signer = root.issue(
            &format!("CN=Məmmədova Aynur,serialNumber={PERSONAL_CODE},C=AZ"),
            &[0x21],
            &key,
            vec![ext::key_usage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation).unwrap()],
        );
        let tsa = root.issue_service(
            "CN=imza CLI Verify TSA,O=imza,C=AZ",
            &[0x31],
            KeyAlgorithm::EcP256,
            tsa_extensions(),
        );
        let f = Fixture { dir, root, tsa };
        write_certificate(&f.path("root.pem"), &f.root.der);
        write_certificate(&f.path("signer.pem"), &signer);
        key.save_pem(&f.path("signer.key")).unwrap();
        std::fs::write(f.path("doc.txt"), DOCUMENT).unwrap();
        let crl = f.crl(&[]);
        std::fs::write(f.path("crl.pem"), crl_pem(&crl)).unwrap();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// `imza verify SIGNATURE --content doc.txt --trust root.pem --crl crl.pem`, then `extra`.
    fn verify(&self, signature: &str, extra: &[&str]) -> Output {
        let (doc, root, crl) = (self.p("doc.txt"), self.p("root.pem"), self.p("crl.pem"));
        let base = [
            "verify",
            signature,
            "--content",
            &doc,
            "--trust",
            &root,
            "--crl",
            &crl,
        ];
        imza(&[&base[..], extra].concat())
    }

    /// A root CRL issued a minute ago listing `revoked` (serial, when), DER.
    fn crl(&self, revoked: &[(&[u8], OffsetDateTime)]) -> Vec<u8> {
        self.crl_issued(revoked, OffsetDateTime::now_utc())
    }

    /// A root CRL issued a minute before `now`, valid for a day, DER.
    fn crl_issued(&self, revoked_at: &[(&[u8], OffsetDateTime)], now: OffsetDateTime) -> Vec<u8> {
        self.root.crl_at(revoked_at, now)
    }

    /// `openssl cms -sign` of doc.txt into `out` (detached unless `attached`).
    fn openssl_sign(&self, out: &str, attached: bool) -> String {
        self.openssl_sign_file("doc.txt", out, attached)
    }

    /// `openssl cms -sign` of the file `input` into `out` (detached unless `attached`).
    fn openssl_sign_file(&self, input: &str, out: &str, attached: bool) -> String {
        let mut command = Command::new("openssl");
        command
            .args([
                "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
            ])
            .args([
                "-signer",
                &self.p("signer.pem"),
                "-inkey",
                &self.p("signer.key"),
            ])
            .args(["-in", &self.p(input), "-out", &self.p(out)]);
        if attached {
            command.arg("-nodetach");
        }
        let output = command.output().expect("openssl must be installed");
        assert!(output.status.success(), "{}", text(&output));
        self.p(out)
    }
}

fn imza(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imza"))
        .args(args)
        .output()
        .expect("run imza")
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(output)))
}

#[test]
fn a_good_signature_exits_0_with_a_summary_and_a_json_report() {
    let f = Fixture::new();
    let sig = f.openssl_sign("doc.p7s", false);
    let out = f.verify(&sig, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Signature 1 of 1: TOTAL_PASSED"), "{said}");
    assert!(said.contains(PERSONAL_CODE), "{said}");
    assert!(said.contains("Result: VALID"), "{said}");

    let out = f.verify(&sig, &["--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["valid"], true);
    let s = &report["signatures"][0];
    assert_eq!(s["indication"], "TOTAL_PASSED");
    assert_eq!(s["level"], "B-B");
    assert_eq!(s["signer"]["personal_code"], PERSONAL_CODE);
    assert_eq!(s["chain"].as_array().map(Vec::len), Some(2));
    assert_eq!(s["revocation"][0]["source"], "CRL");

    // An attached signature needs no --content.
    let sig = f.openssl_sign("attached.p7s", true);
    let out = imza(&[
        "verify",
        &sig,
        "--trust",
        &f.p("root.pem"),
        "--crl",
        &f.p("crl.pem"),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

#[test]
fn the_validators_strict_checks_judge_signers_and_their_flags_relax_them() {
    let f = Fixture::new();
    // A signer certificate with serial number zero: no conforming CA issues one (RFC 5280
    // §4.1.2.2), so the strict default refuses its path; --allow-nonconforming accepts it.
    let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let zero = f.root.issue(
        &format!("CN=Məmmədova Aynur,serialNumber={PERSONAL_CODE},C=AZ"),
        &[0x00],
        &key,
        vec![ext::key_usage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation).unwrap()],
    );
    write_certificate(&f.path("signer.pem"), &zero);
    std::fs::remove_file(f.path("signer.key")).unwrap();
    key.save_pem(&f.path("signer.key")).unwrap();
    let sig = f.openssl_sign("zero.p7s", false);
    let out = f.verify(&sig, &["--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["signatures"][0]["indication"], "INDETERMINATE");
    assert_eq!(
        report["signatures"][0]["sub_indication"], "CHAIN_CONSTRAINTS_FAILURE",
        "{report}"
    );
    let out = f.verify(&sig, &["--json", "--allow-nonconforming"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(json(&out)["signatures"][0]["indication"], "TOTAL_PASSED");
}

#[test]
fn verdicts_other_than_total_passed_exit_1_and_name_the_sub_indication() {
    let f = Fixture::new();
    let sig = f.openssl_sign("doc.p7s", false);
    std::fs::write(f.path("other.txt"), b"another document").unwrap();
    let other_root = TestCa::root("CN=Somebody Else,O=x,C=AZ", KeyAlgorithm::EcP256);
    write_certificate(&f.path("other-root.pem"), &other_root.der);
    let garbage = f.path("garbage.p7s");
    std::fs::write(&garbage, b"this is not a signature").unwrap();
    let crl = f.p("crl.pem");
    let root = f.p("root.pem");
    let doc = f.p("doc.txt");
    let other = f.p("other.txt");
    let other_root_pem = f.p("other-root.pem");
    let three_days_ago = imza_core::clock::rfc3339(OffsetDateTime::now_utc() - Duration::days(3));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--content", &other, "--trust", &root, "--crl", &crl],
            "TOTAL_FAILED/HASH_FAILURE",
        ),
        (
            vec!["--content", &doc, "--trust", &other_root_pem, "--crl", &crl],
            "INDETERMINATE/NO_CERTIFICATE_CHAIN_FOUND",
        ),
        (
            vec!["--trust", &root, "--crl", &crl],
            "INDETERMINATE/SIGNED_DATA_NOT_FOUND",
        ),
        (
            vec!["--content", &doc, "--trust", &root],
            "INDETERMINATE/TRY_LATER",
        ),
        (
            // Three days ago the signer's certificate (valid from yesterday) was not yet valid.
            vec![
                "--content",
                &doc,
                "--trust",
                &root,
                "--crl",
                &crl,
                "--at",
                &three_days_ago,
            ],
            "INDETERMINATE/OUT_OF_BOUNDS_NO_POE",
        ),
    ];
    for (args, verdict) in cases {
        let out = imza(&[&["verify", sig.as_str()][..], &args].concat());
        assert_eq!(code(&out), 1, "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains(verdict),
            "{args:?} should say {verdict}: {said}"
        );
        assert!(said.contains("Result: NOT VALID"), "{said}");
    }
    // A file that is not a signature is a verdict too: TOTAL_FAILED FORMAT_FAILURE.
    let out = imza(&[
        "verify",
        garbage.to_str().unwrap(),
        "--trust",
        &root,
        "--json",
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(
        json(&out)["signatures"][0]["sub_indication"],
        "FORMAT_FAILURE"
    );
}

#[test]
fn a_revoked_signer_fails_before_its_timestamp_and_passes_after() {
    // imza sign --level T against imza's TSA on loopback, then imza verify with CRLs that
    // revoke the signer an hour before now (before the time-stamp) or in the future.
    let f = Fixture::new();
    let server = imza_testdata::tsa::serve(authority(&f.tsa.der, f.tsa.key.clone()), 1);
    let tsa_url = server.url("/tsa");
    let signed = imza(&common::sign_args(
        &f.p("doc.txt"),
        &f.p("doc-t.p7s"),
        &f.p("signer.key"),
        &f.p("signer.pem"),
        &["--level", "T", "--tsa", &tsa_url],
    ));
    server.stop();
    assert_eq!(code(&signed), 0, "{}", text(&signed));
    let now = OffsetDateTime::now_utc();
    // The CRL is issued (and the validation run) just after `at`.
    let verify_with = |revoked_at: OffsetDateTime, at: OffsetDateTime| {
        let crl = f.path("revoking.crl");
        std::fs::write(&crl, f.crl_issued(&[(&[0x21], revoked_at)], at)).unwrap();
        imza(&[
            "verify",
            &f.p("doc-t.p7s"),
            "--content",
            &f.p("doc.txt"),
            "--trust",
            &f.p("root.pem"),
            "--crl",
            crl.to_str().unwrap(),
            "--at",
            &imza_core::clock::rfc3339(at),
            "--json",
        ])
    };
    // Revoked an hour before the time-stamp: TOTAL_FAILED REVOKED.
    let out = verify_with(now - Duration::hours(1), now + Duration::minutes(1));
    assert_eq!(code(&out), 1, "{}", text(&out));
    let report = json(&out);
    assert_eq!(
        report["signatures"][0]["sub_indication"], "REVOKED",
        "{report:#}"
    );
    assert_eq!(report["signatures"][0]["level"], "B-T");
    // Revoked after the time-stamp (validated later still): TOTAL_PASSED, revoked_later said.
    let revoked_at = imza_core::clock::whole_seconds(now + Duration::minutes(2));
    let out = verify_with(revoked_at, now + Duration::minutes(3));
    assert_eq!(code(&out), 0, "{}", text(&out));
    let report = json(&out);
    let s = &report["signatures"][0];
    assert_eq!(s["indication"], "TOTAL_PASSED", "{report:#}");
    assert_eq!(
        s["revocation"][0]["revoked_later"],
        imza_core::clock::rfc3339(revoked_at)
    );
    assert_eq!(s["timestamps"][0]["valid"], true);
}

#[test]
fn bad_input_exits_2() {
    let f = Fixture::new();
    let sig = f.openssl_sign("doc.p7s", false);
    let root = f.p("root.pem");
    let missing = f.p("missing.p7s");
    for args in [
        vec!["verify", missing.as_str(), "--trust", &root],
        vec!["verify", &sig, "--trust", &f.p("doc.txt")],
        vec!["verify", &sig, "--trust", &root, "--crl", &f.p("doc.txt")],
        vec!["verify", &sig, "--trust", &root, "--content", &missing],
        vec!["verify", &sig, "--trust", &root, "--at", "yesterday"],
        vec!["verify", &sig],
        vec!["verify", &sig, "--trust", &root, "--no-such-flag"],
    ] {
        let out = imza(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty() || !text(&out).contains("TOTAL_PASSED"));
    }
}

#[test]
fn help_reads_like_a_manual() {
    let out = imza(&["verify", "--help"]);
    assert_eq!(code(&out), 0);
    let said = String::from_utf8_lossy(&out.stdout);
    for words in [
        "TOTAL_PASSED",
        "proof-of-existence",
        "Exit status",
        "--trust",
        "--content",
        "--crl",
        "--network",
        "--at",
        "--json",
    ] {
        assert!(
            said.contains(words),
            "--help should mention {words}: {said}"
        );
    }
}

/// `imza args` under `/usr/bin/time -v`: its output, and its peak resident set in KiB.
fn imza_measured(args: &[&str]) -> (Output, u64) {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_imza"))
        .args(args)
        .output()
        .expect("run imza under /usr/bin/time");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in: {stderr}"));
    (out, kib)
}

#[test]
fn a_large_detached_document_is_verified_in_bounded_memory() {
    // 400 MiB, sparse (quick to make, read as zeros) with a few bytes written through it.
    const SIZE: u64 = 400 * 1024 * 1024;
    let f = Fixture::new();
    let big = f.path("big.bin");
    let write_at = |offset: u64, bytes: &[u8]| {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(bytes).unwrap();
    };
    std::fs::File::create(&big).unwrap().set_len(SIZE).unwrap();
    for offset in [0, SIZE / 3, SIZE - 7] {
        write_at(offset, b"imza");
    }
    let sig = f.openssl_sign_file("big.bin", "big.p7s", false);
    let args = [
        "verify",
        &sig,
        "--content",
        &f.p("big.bin"),
        "--trust",
        &f.p("root.pem"),
        "--crl",
        &f.p("crl.pem"),
        "--json",
    ];
    let (out, peak_kib) = imza_measured(&args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(json(&out)["signatures"][0]["indication"], "TOTAL_PASSED");
    // The document is 400 MiB; what the verifier holds is its digests.
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB for a {SIZE}-byte document"
    );

    // One byte changed in the middle: the digest no longer matches.
    write_at(SIZE / 2, b"\x01");
    let (out, _) = imza_measured(&args);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["signatures"][0]["sub_indication"], "HASH_FAILURE");
}
