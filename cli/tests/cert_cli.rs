//! `imza cert verify` end to end: a test PKI's chain validated from PEM and DER files, with
//! the verdicts compared to `openssl verify` on the same files (valid, unknown anchor, not yet
//! valid, revoked by CRL), the --json shape, exit codes for bad input, and --network against a
//! real `imza serve` whose CAs put its OCSP URL into the certificates they issue.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{free_port, run, stderr, stdout, Server, TestPki};
use imza_core::crl::RevokedEntry;
use imza_core::key::software::SoftwareKey;
use imza_core::KeyAlgorithm;
use imza_testdata::pki::{crl_pem, leaf_extensions, write_certificate, TestCa};
use serde_json::Value;
use time::OffsetDateTime;

const LEAF_SERIAL: &[u8] = &[0x1e, 0xaf];

/// root → issuing CA → leaf, written as PEM (`root.pem`, `ca.pem`, `leaf.pem`) and DER
/// (`leaf.der`), with CRLs: `crls-good.pem` (both CAs' CRLs, nothing revoked) and
/// `crls-revoked.pem` (the issuing CA's CRL revoking the leaf), an unrelated root `other.pem`
/// and `twin.pem`, a root with the real root's name and another key.
struct Chain {
    dir: tempfile::TempDir,
    root: TestCa,
    ca: TestCa,
}

impl Chain {
    fn new() -> Chain {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = TestCa::root("CN=Verify Test Root,O=imza,C=AZ", KeyAlgorithm::EcP256);
        let ca = root.issuing_ca(
            "CN=Verify Test CA,O=imza,C=AZ",
            KeyAlgorithm::EcP256,
            &[0x02],
        );
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).expect("key");
        let leaf = ca.issue(
            "CN=Verify Test Leaf,C=AZ",
            LEAF_SERIAL,
            &key,
            leaf_extensions(),
        );
        let other = TestCa::root("CN=Another Root,O=imza,C=AZ", KeyAlgorithm::EcP256);
        let twin = TestCa::root("CN=Verify Test Root,O=imza,C=AZ", KeyAlgorithm::EcP256);
        let chain = Chain { dir, root, ca };
        write_certificate(&chain.path("root.pem"), &chain.root.der);
        write_certificate(&chain.path("ca.pem"), &chain.ca.der);
        write_certificate(&chain.path("leaf.pem"), &leaf);
        write_certificate(&chain.path("other.pem"), &other.der);
        write_certificate(&chain.path("twin.pem"), &twin.der);
        std::fs::write(chain.path("leaf.der"), &leaf).expect("write");
        std::fs::write(chain.path("root.der"), &chain.root.der).expect("write");
        let root_crl = crl(&chain.root, &[]);
        let good = crl(&chain.ca, &[]);
        let revoked = crl(
            &chain.ca,
            &[RevokedEntry {
                serial: LEAF_SERIAL.to_vec(),
                revoked_at: OffsetDateTime::now_utc() - time::Duration::hours(1),
                reason: Some(x509_cert::ext::pkix::CrlReason::KeyCompromise),
                invalidity_date: None,
            }],
        );
        std::fs::write(chain.path("crls-good.pem"), format!("{root_crl}{good}")).expect("write");
        std::fs::write(
            chain.path("crls-revoked.pem"),
            format!("{root_crl}{revoked}"),
        )
        .expect("write");
        chain
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().expect("utf-8 path").to_string()
    }

    /// `imza cert verify LEAF --trust TRUST --untrusted ca.pem EXTRA...`
    fn imza(&self, leaf: &str, trust: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "cert".to_string(),
            "verify".into(),
            self.p(leaf),
            "--trust".into(),
            self.p(trust),
            "--untrusted".into(),
            self.p("ca.pem"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Command::new(env!("CARGO_BIN_EXE_imza"))
            .args(&args)
            .output()
            .expect("run imza")
    }

    /// `openssl verify -CAfile TRUST -untrusted ca.pem EXTRA... leaf.pem`
    fn openssl(&self, trust: &str, extra: &[&str]) -> Output {
        let (ca_file, untrusted, leaf) = (self.p(trust), self.p("ca.pem"), self.p("leaf.pem"));
        let mut args = vec!["verify", "-CAfile", &ca_file, "-untrusted", &untrusted];
        args.extend_from_slice(extra);
        args.push(&leaf);
        run("openssl", &args)
    }
}

/// A CRL by `ca` listing `entries`, valid from an hour ago for a day, as PEM.
fn crl(ca: &TestCa, entries: &[RevokedEntry]) -> String {
    let now = OffsetDateTime::now_utc();
    crl_pem(&ca.crl(
        entries,
        now - time::Duration::hours(1),
        now + time::Duration::days(1),
    ))
}

fn output(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn a_valid_chain_is_valid_and_says_revocation_was_not_checked() {
    let chain = Chain::new();
    let out = chain.imza("leaf.pem", "root.pem", &[]);
    let text = output(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(text.contains("VALID"), "{text}");
    assert!(text.contains("CN=Verify Test Leaf"), "{text}");
    assert!(text.contains("(trust anchor)"), "{text}");
    assert!(text.contains("revocation not checked"), "{text}");
    assert!(text.contains("serial 1EAF"), "{text}");
    assert!(chain.openssl("root.pem", &[]).status.success());
}

#[test]
fn der_and_pem_inputs_give_the_same_verdict() {
    let chain = Chain::new();
    for (leaf, trust) in [
        ("leaf.der", "root.pem"),
        ("leaf.pem", "root.der"),
        ("leaf.der", "root.der"),
    ] {
        let out = chain.imza(leaf, trust, &[]);
        assert_eq!(code(&out), 0, "{leaf} {trust}: {}", output(&out));
    }
}

#[test]
fn an_unknown_trust_anchor_finds_no_path_like_openssl() {
    let chain = Chain::new();
    let out = chain.imza("leaf.pem", "other.pem", &[]);
    let text = output(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("INVALID"), "{text}");
    assert!(text.contains("no certification path"), "{text}");
    assert!(!chain.openssl("other.pem", &[]).status.success());

    // An anchor with the right name but another key does not verify the CA's signature.
    let out = chain.imza("leaf.pem", "twin.pem", &[]);
    let text = output(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("INVALID"), "{text}");
    assert!(!chain.openssl("twin.pem", &[]).status.success());
}

#[test]
fn before_not_before_is_not_yet_valid_like_openssl() {
    let chain = Chain::new();
    let before = OffsetDateTime::now_utc() - time::Duration::days(3);
    let at = imza_core::clock::rfc3339(before);
    let out = chain.imza("leaf.pem", "root.pem", &["--at", &at]);
    let text = output(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("not valid before"), "{text}");
    let epoch = before.unix_timestamp().to_string();
    assert!(!chain
        .openssl("root.pem", &["-attime", &epoch])
        .status
        .success());
}

#[test]
fn a_crl_revoking_the_leaf_makes_it_invalid_like_openssl() {
    let chain = Chain::new();
    let revoked = chain.p("crls-revoked.pem");
    let out = chain.imza("leaf.pem", "root.pem", &["--crl", &revoked]);
    let text = output(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("revoked"), "{text}");
    let openssl = chain.openssl("root.pem", &["-crl_check_all", "-CRLfile", &revoked]);
    assert!(!openssl.status.success(), "{}", output(&openssl));

    let good = chain.p("crls-good.pem");
    let out = chain.imza("leaf.pem", "root.pem", &["--crl", &good]);
    let text = output(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains("revocation:") && text.contains(": good"),
        "{text}"
    );
    let openssl = chain.openssl("root.pem", &["-crl_check_all", "-CRLfile", &good]);
    assert!(openssl.status.success(), "{}", output(&openssl));
}

#[test]
fn json_output_has_the_documented_shape() {
    let chain = Chain::new();
    let good = chain.p("crls-good.pem");
    let out = chain.imza("leaf.pem", "root.pem", &["--crl", &good, "--json"]);
    assert_eq!(code(&out), 0, "{}", output(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["valid"], true);
    assert!(v["error"].is_null() && v["error_kind"].is_null());
    assert_eq!(v["revocation_checked"], true);
    let path = v["chain"].as_array().expect("chain");
    assert_eq!(path.len(), 3);
    assert_eq!(path[0]["subject"], "CN=Verify Test Leaf,C=AZ");
    assert_eq!(path[0]["serial"], "1EAF");
    assert_eq!(path[2]["trust_anchor"], true);
    for cert in path {
        for key in ["not_before", "not_after"] {
            assert!(
                cert[key].as_str().is_some_and(|t| t.ends_with('Z')),
                "{cert}"
            );
        }
    }
    let revocation = v["revocation"].as_array().expect("revocation");
    assert_eq!(revocation.len(), 2);
    assert!(revocation
        .iter()
        .all(|r| r["status"] == "good" && r["source"] == "crl"));
    assert!(v["policies"].is_array());
    assert!(v["validation_time"].is_string());

    // Invalid: still one object, with the reason and its kind, and exit 1.
    let revoked = chain.p("crls-revoked.pem");
    let out = chain.imza("leaf.pem", "root.pem", &["--crl", &revoked, "--json"]);
    assert_eq!(code(&out), 1, "{}", output(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["valid"], false);
    assert_eq!(v["error_kind"], "revoked");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("revoked")),
        "{v}"
    );
    assert_eq!(v["chain"], serde_json::json!([]));
}

#[test]
fn bad_input_exits_2() {
    let chain = Chain::new();
    let missing = chain.imza("no-such.pem", "root.pem", &[]);
    assert_eq!(code(&missing), 2, "{}", output(&missing));
    assert!(output(&missing).contains("no-such.pem"));
    std::fs::write(chain.path("garbage.pem"), "not a certificate").expect("write");
    let garbage = chain.imza("garbage.pem", "root.pem", &[]);
    assert_eq!(code(&garbage), 2, "{}", output(&garbage));
    let bad_time = chain.imza("leaf.pem", "root.pem", &["--at", "yesterday"]);
    assert_eq!(code(&bad_time), 2, "{}", output(&bad_time));
    let bad_policy = chain.imza("leaf.pem", "root.pem", &["--policy", "not.an.oid"]);
    assert_eq!(code(&bad_policy), 2, "{}", output(&bad_policy));
    let bad_crl = chain.imza("leaf.pem", "root.pem", &["--crl", &chain.p("root.pem")]);
    assert_eq!(code(&bad_crl), 2, "{}", output(&bad_crl));
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_imza"))
        .args(["cert", "verify", "--help"])
        .output()
        .expect("run imza");
    let text = stdout(&out);
    for flag in [
        "--trust",
        "--untrusted",
        "--crl",
        "--network",
        "--at",
        "--policy",
        "--explicit-policy",
        "--inhibit-policy-mapping",
        "--inhibit-any-policy",
        "--purpose",
        "--json",
        "--anchor-as-key",
        "--no-ca-eku-constraint",
        "--allow-nonconforming",
        "--min-rsa-bits",
        "Exit status",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn ocsp_from_the_aia_of_a_served_pki_says_good_then_revoked() {
    let port = free_port();
    let pki = TestPki::with_root_and_citizens_at(&format!("http://127.0.0.1:{port}"));
    let alice = pki.issue_citizen("citizen-sign", "alice");
    let root = pki.ca_pem("root");
    let citizens = pki.ca_pem("citizens");
    let _server = Server::start_on(&pki, port, &[]);

    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_imza"))
            .args(["cert", "verify", s(&alice), "--trust", s(&root)])
            .args(["--untrusted", s(&citizens), "--network", "--json"])
            .output()
            .expect("run imza")
    };
    let out = verify();
    assert_eq!(code(&out), 0, "{}", output(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["revocation"][0]["status"], "good", "{v}");
    assert_eq!(v["revocation"][0]["source"], "ocsp", "{v}");

    let serial = pki.serials("citizens").into_iter().find(|serial| {
        let text = stdout(&run(
            "openssl",
            &["x509", "-in", s(&alice), "-noout", "-serial"],
        ));
        text.trim().ends_with(serial.as_str())
    });
    let serial = serial.expect("alice's serial");
    pki.revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    std::thread::sleep(Duration::from_millis(1500));
    let out = verify();
    assert_eq!(code(&out), 1, "{}", output(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["error_kind"], "revoked", "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("keyCompromise")),
        "{v}"
    );
    // The human form says so too.
    let out = Command::new(env!("CARGO_BIN_EXE_imza"))
        .args(["cert", "verify", s(&alice), "--trust", s(&root)])
        .args(["--untrusted", s(&citizens), "--network"])
        .output()
        .expect("run imza");
    assert_eq!(code(&out), 1);
    assert!(output(&out).contains("revoked"), "{}", output(&out));
}

/// `imza cert verify LEAF --trust ANCHOR [--untrusted CA] EXTRA... --json`: exit code and
/// error_kind.
fn verdict(
    dir: &Path,
    anchor: &[u8],
    ca: Option<&[u8]>,
    leaf: &[u8],
    extra: &[&str],
) -> (i32, Value) {
    write_certificate(&dir.join("anchor.pem"), anchor);
    write_certificate(&dir.join("leaf.pem"), leaf);
    let mut args = vec![
        "cert".to_string(),
        "verify".into(),
        s(&dir.join("leaf.pem")).into(),
        "--trust".into(),
        s(&dir.join("anchor.pem")).into(),
        "--json".into(),
    ];
    if let Some(ca) = ca {
        write_certificate(&dir.join("ca.pem"), ca);
        args.extend(["--untrusted".to_string(), s(&dir.join("ca.pem")).into()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let out = Command::new(env!("CARGO_BIN_EXE_imza"))
        .args(&args)
        .output()
        .expect("run imza");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    (code(&out), v)
}

/// A CA certificate issued by `issuer` with `extensions` (not the usual CA profile).
fn ca_with(issuer: &TestCa, subject: &str, extensions: Vec<x509_cert::ext::Extension>) -> TestCa {
    let key = std::sync::Arc::new(SoftwareKey::generate(KeyAlgorithm::EcP256).expect("key"));
    let der = issuer.issue(subject, &[0x21], key.as_ref(), extensions);
    TestCa {
        subject: subject.into(),
        key,
        serial: vec![0x21],
        der,
    }
}

#[test]
fn the_strict_checks_refuse_by_default_and_their_flags_turn_them_off() {
    use imza_core::{ext, oids};
    use imza_testdata::pki::ca_extensions;
    use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsages};

    let dir = tempfile::tempdir().expect("tempdir");
    let leaf_key = SoftwareKey::generate(KeyAlgorithm::EcP256).expect("key");
    let root = TestCa::root("CN=Strict CLI Root,O=imza,C=AZ", KeyAlgorithm::EcP256);

    // An anchor whose certificate is not a CA's.
    let not_ca = ca_with(
        &root,
        "CN=Not A CA,O=imza,C=AZ",
        vec![ext::key_usage(KeyUsages::KeyCertSign.into()).expect("keyUsage")],
    );
    let leaf = not_ca.issue("CN=Strict CLI Leaf", &[0x31], &leaf_key, leaf_extensions());
    let (exit, v) = verdict(dir.path(), &not_ca.der, None, &leaf, &[]);
    assert_eq!(
        (exit, v["error_kind"].as_str()),
        (1, Some("trust_anchor")),
        "{v}"
    );
    let (exit, v) = verdict(dir.path(), &not_ca.der, None, &leaf, &["--anchor-as-key"]);
    assert_eq!(exit, 0, "{v}");

    // A CA limited to e-mail protection, and a TLS server certificate under it.
    let mut extensions = ca_extensions();
    extensions.push(ext::extended_key_usage(&[oids::KP_EMAIL_PROTECTION], false).expect("EKU"));
    let email_ca = ca_with(&root, "CN=E-mail CA,O=imza,C=AZ", extensions);
    let mut server = leaf_extensions();
    server.push(ext::extended_key_usage(&[oids::KP_SERVER_AUTH], false).expect("EKU"));
    let leaf = email_ca.issue("CN=www.example.az", &[0x32], &leaf_key, server);
    let purpose = ["--purpose", "server"];
    let (exit, v) = verdict(dir.path(), &root.der, Some(&email_ca.der), &leaf, &purpose);
    assert_eq!(
        (exit, v["error_kind"].as_str()),
        (1, Some("ca_extended_key_usage")),
        "{v}"
    );
    let relaxed = ["--purpose", "server", "--no-ca-eku-constraint"];
    let (exit, v) = verdict(dir.path(), &root.der, Some(&email_ca.der), &leaf, &relaxed);
    assert_eq!(exit, 0, "{v}");

    // An empty extendedKeyUsage, which no conforming CA issues.
    let mut empty = leaf_extensions();
    empty.push(
        ext::extension(
            oids::EXT_EXTENDED_KEY_USAGE,
            false,
            &ExtendedKeyUsage(Vec::new()),
        )
        .expect("EKU"),
    );
    let leaf = root.issue("CN=Strict CLI Leaf", &[0x33], &leaf_key, empty);
    let (exit, v) = verdict(dir.path(), &root.der, None, &leaf, &[]);
    assert_eq!(
        (exit, v["error_kind"].as_str()),
        (1, Some("nonconforming")),
        "{v}"
    );
    let (exit, v) = verdict(
        dir.path(),
        &root.der,
        None,
        &leaf,
        &["--allow-nonconforming"],
    );
    assert_eq!(exit, 0, "{v}");

    // RSA-2048 passes the default and fails a 3072-bit minimum.
    let rsa_root = TestCa::root("CN=Strict CLI RSA Root,O=imza,C=AZ", KeyAlgorithm::Rsa2048);
    let leaf = rsa_root.issue("CN=Strict CLI Leaf", &[0x34], &leaf_key, leaf_extensions());
    let (exit, v) = verdict(dir.path(), &rsa_root.der, None, &leaf, &[]);
    assert_eq!(exit, 0, "{v}");
    let (exit, v) = verdict(
        dir.path(),
        &rsa_root.der,
        None,
        &leaf,
        &["--min-rsa-bits", "3072"],
    );
    assert_eq!(
        (exit, v["error_kind"].as_str()),
        (1, Some("weak_key")),
        "{v}"
    );
}
