#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
//! One exit-code rule for every command (ARCHITECTURE.md, issue 17 §5): 0 success, 1 a "no"
//! verdict, 2 bad usage or bad input, 3 an internal or environment failure (the database, pcscd,
//! a PKCS#11 device, the network, the disk). A table over the command families `imza --help`
//! lists, one row a command line: each runs the real binary and must exit with its code, a
//! failure with exactly one line on stderr.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;

use common::*;
use imza_testdata::card::{CardLab, OPENSC_PKCS11_MODULE};
use imza_testdata::postgres::PgCluster;
use imza_testdata::tsa::LoopbackTsa;

/// Where a row runs.
#[derive(Clone, Copy, Debug)]
enum On {
    /// The fixture's data directory: root and citizens CAs, a citizen certificate, one revoked.
    Pki,
    /// A data directory that does not exist.
    Fresh,
    /// A copy of the fixture whose audit chain was altered.
    Tampered,
    /// The fixture, with the store on PostgreSQL at a closed loopback port (IMZA_STORE).
    PgDown,
    /// The fixture, with pcscd not reachable (PCSCLITE_CSOCK_NAME names no socket).
    NoPcscd,
    /// The fixture, with the test card lab's pcscd and its virtual readers running.
    Cards,
    /// A data directory that is a regular file.
    FileAsDir,
}

use On::*;

/// The table: expected exit code, where, and the command line: `{name}` a file or value of the
/// fixture, leading `VAR=value` words the environment.
const TABLE: &[(u8, On, &str)] = &[
    // --- ca ---
    (0, Pki, "ca list --ca citizens"),
    (2, Pki, "ca list --ca no-such-ca"),
    (2, Fresh, "ca list --ca citizens"),
    (2, Pki, "ca revoke --ca citizens --serial {revoked_serial}"),
    (2, Pki, "ca issue --ca citizens --profile citizen-sign --csr {garbage} --out {new}"),
    (2, Pki, "ca issue --ca citizens --profile citizen-sign --csr {missing} --out {new}"),
    (3, PgDown, "ca list --ca citizens"),
    (3, PgDown, "ca crl --ca citizens --out {new}"),
    // --- profile ---
    (0, Pki, "profile list"),
    (2, Pki, "profile show no-such-profile"),
    // --- audit ---
    (0, Pki, "audit verify"),
    (1, Tampered, "audit verify"),
    (2, Fresh, "audit verify"),
    (3, PgDown, "audit verify"),
    // --- tsa, ocsp (service units) ---
    (0, Pki, "tsa list"),
    (2, Pki, "tsa init --ca no-such-ca --name unit"),
    (3, PgDown, "tsa list"),
    (0, Pki, "ocsp list"),
    (2, Pki, "ocsp init --ca no-such-ca"),
    (3, PgDown, "ocsp list"),
    // --- ts (RFC 3161 client) ---
    (0, Pki, "ts request --url {tsa_url} --data {document} --out {new}"),
    (0, Pki, "ts verify --in {token} --data {document} --ca-file {tsa_root}"),
    (1, Pki, "ts verify --in {token} --data {other_document} --ca-file {tsa_root}"),
    (2, Pki, "ts verify --in {garbage} --data {document} --ca-file {tsa_root}"),
    (3, Pki, "ts request --url {closed_url}/tsa --data {document} --out {new}"),
    // --- cert ---
    (0, Pki, "cert verify {citizen} --trust {root} --untrusted {citizens}"),
    (1, Pki, "cert verify {revoked} --trust {root} --untrusted {citizens} --crl {crl} --crl {root_crl}"),
    (1, Pki, "cert verify {citizen} --trust {tsa_root} --untrusted {citizens}"),
    (2, Pki, "cert verify {garbage} --trust {root}"),
    (2, Pki, "cert verify {missing} --trust {root}"),
    (3, Pki, "cert verify {citizen} --trust {root} --untrusted {citizens} --ocsp --timeout 5"),
    // --- sign, verify ---
    (0, Pki, "sign --in {document} --out {new} --key {signer_key} --cert {citizen}"),
    (2, Pki, "sign --in {missing} --out {new} --key {signer_key} --cert {citizen}"),
    (2, Pki, "sign --in {document} --out {new} --key {garbage} --cert {citizen}"),
    (3, Pki, "sign --in {document} --out {new} --key {signer_key} --cert {citizen} --level T --tsa {closed_url}/tsa --timeout 5"),
    (3, Pki, "sign --in {document} --out {new} --key {signer_key} --cert {citizen} --chain {citizens} --level LT --tsa {tsa_url} --trust {root} --timeout 5"),
    (0, Pki, "verify {signature} --content {document} --trust {root} --untrusted {citizens} --crl {crl} --crl {root_crl}"),
    (1, Pki, "verify {signature} --content {other_document} --trust {root} --untrusted {citizens} --crl {crl} --crl {root_crl}"),
    (1, Pki, "verify {garbage} --content {document} --trust {root}"),
    (2, Pki, "verify {missing} --content {document} --trust {root}"),
    (2, Pki, "verify {signature} --content {document} --at yesterday"),
    (1, Pki, "verify {signature} --content {document} --trust {root} --untrusted {citizens}"),
    (3, Pki, "verify {signature} --content {document} --trust {root} --untrusted {citizens} --network"),
    (1, Pki, "verify {signature} --content {other_document} --trust {root} --untrusted {citizens} --network"),
    // --- card ---
    (0, Cards, "card list --pkcs11-module {opensc_module}"),
    (2, Cards, "card list --pkcs11-module {missing}"),
    (3, NoPcscd, "card list --pkcs11-module {opensc_module}"),
    (3, NoPcscd, "card watch"),
    (3, NoPcscd, "PUK=12345678 NEW_PIN=654321 card unblock --puk-env PUK --new-pin-env NEW_PIN"),
    (2, NoPcscd, "card unblock --puk-env UNSET_PUK --new-pin-env UNSET_PIN"),
    (2, Pki, "PIN=123456 sign --card --pkcs11-module {softhsm_module} --token no-such-token --pin-env PIN --in {document} --out {new}"),
    (3, Pki, "SOFTHSM2_CONF={missing} PIN=123456 sign --card --pkcs11-module {softhsm_module} --token t --pin-env PIN --in {document} --out {new}"),
    // --- mobile, phone ---
    (0, Pki, "mobile rp list"),
    (2, Pki, "mobile rp add --name {bad_name}"),
    (3, PgDown, "mobile rp list"),
    (0, Pki, "PHONE_PIN=24680 mobile register --phone +994501234568 --national-id 1AB2C3D --given-name Aysel --surname Məmmədova --ca mobile --pin-env PHONE_PIN --mss-url {closed_url} --phone-dir {new}"),
    (2, Pki, "PHONE_PIN=1 mobile register --phone +994501234569 --national-id 1AB2C3E --given-name Aysel --surname Məmmədova --ca mobile --pin-env PHONE_PIN --mss-url {closed_url} --phone-dir {new}"),
    (3, Pki, "RP_KEY=k mobile auth --phone +994501234567 --national-id 5ZK7T2Q --mss-url {closed_url} --rp-name bank --rp-key-env RP_KEY --trust {root}"),
    (2, Pki, "phone run --phone +994501234567 --phone-dir {missing} --approve"),
    // --- portal ---
    (0, Pki, "portal code issue --national-id 5ZK7T2Q"),
    (2, Pki, "portal code issue --national-id not-an-id"),
    (3, PgDown, "portal code issue --national-id 5ZK7T2Q"),
    // --- store ---
    (0, Pki, "PGPASSWORD={pg_password} store migrate --to {pg_url}"),
    (2, Pki, "store migrate --to mysql://imza@127.0.0.1/imza"),
    (3, Pki, "store migrate --to postgres://imza@127.0.0.1:{closed_port}/imza"),
    // --- demo ---
    (0, Fresh, "demo"),
    (2, FileAsDir, "demo"),
    (2, Pki, "demo --no-such-flag"),
    (3, PgDown, "demo"),
    // --- serve, agent (long-running: only their refusals to start) ---
    (2, Pki, "serve --listen 127.0.0.1:0 --config {missing}"),
    (3, Pki, "serve --listen 127.0.0.1:{busy_port}"),
    (3, PgDown, "serve --listen 127.0.0.1:0"),
    (2, Pki, "agent --allow-origin not-an-origin"),
    (2, Pki, "agent --listen 0.0.0.0:0 --allow-origin http://127.0.0.1:8000 --pkcs11-module {softhsm_module}"),
    (3, Pki, "agent --allow-origin http://127.0.0.1:8000 --pkcs11-module {garbage}"),
    (3, Pki, "agent --listen 127.0.0.1:{busy_port} --allow-origin http://127.0.0.1:8000 --pkcs11-module {softhsm_module}"),
];

/// The fixture: a PKI whose certificates point at a closed loopback port (so revocation over
/// the network cannot be fetched), its files, and a loopback TSA.
struct Fixture {
    pki: TestPki,
    tampered: TestPki,
    files: HashMap<&'static str, String>,
    /// Held so that nothing else takes the port a row finds busy.
    _busy: TcpListener,
    _tsa: LoopbackTsa,
}

fn fixture() -> Fixture {
    let closed_port = free_port();
    let closed_url = format!("http://127.0.0.1:{closed_port}");
    let pki = TestPki::with_root_and_citizens_at(&closed_url);
    let tampered = TestPki::with_root_and_citizens();
    let db = tampered.data_dir().join("imza.db");
    let tamper = run(
        "sqlite3",
        &[
            db.to_str().unwrap(),
            "UPDATE audit SET details = replace(details, 'citizens', 'citizenz') WHERE seq = 2",
        ],
    );
    assert!(tamper.status.success(), "{}", stderr(&tamper));

    let path = |name: &str| pki.path(name).to_str().unwrap().to_string();
    let mut files: HashMap<&'static str, String> = HashMap::new();
    // A citizen certificate with its key, for signing.
    let key = imza_testdata::csr::p256_key();
    std::fs::write(
        pki.path("signer.key"),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    let csr = pki.path("signer.csr");
    std::fs::write(&csr, imza_testdata::csr::csr_der(&key, CITIZEN)).unwrap();
    let citizen = pki.path("citizen.pem");
    pki.issue("citizens", "citizen-sign", &csr, &citizen, &[]);
    let revoked = pki.issue_citizen("citizen-auth", "revoked");
    let serials = pki.serials("citizens");
    let revoked_serial = serials.last().unwrap().clone();
    pki.revoke("citizens", &revoked_serial, &[]);
    pki.crl("citizens", &pki.path("citizens.crl"));
    pki.crl("root", &pki.path("root.crl"));
    std::fs::write(pki.path("document.txt"), b"Mezuniyet arayisi\n").unwrap();
    std::fs::write(pki.path("other.txt"), b"Mezuniyet arayisi?\n").unwrap();
    std::fs::write(pki.path("garbage"), b"\x00\x01garbage\xff").unwrap();
    pki.ok(&sign_args(
        &path("document.txt"),
        &path("document.p7s"),
        &path("signer.key"),
        citizen.to_str().unwrap(),
        &[],
    ));
    let tsa = LoopbackTsa::start();
    pki.ok(&[
        "ts",
        "request",
        "--url",
        &tsa.url(),
        "--data",
        &path("document.txt"),
        "--out",
        &path("document.tsr"),
    ]);
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    pki.ok(&init_under_root_args(
        "mobile",
        "CN=AZ Mobile CA,O=Test,C=AZ",
        &[],
    ));
    let postgres = PgCluster::shared();

    files.insert("root", pki.ca_pem("root").to_str().unwrap().into());
    files.insert("citizens", pki.ca_pem("citizens").to_str().unwrap().into());
    files.insert("citizen", citizen.to_str().unwrap().into());
    files.insert("revoked", revoked.to_str().unwrap().into());
    files.insert("revoked_serial", revoked_serial);
    files.insert("crl", path("citizens.crl"));
    files.insert("root_crl", path("root.crl"));
    files.insert("signer_key", path("signer.key"));
    files.insert("document", path("document.txt"));
    files.insert("other_document", path("other.txt"));
    files.insert("signature", path("document.p7s"));
    files.insert("token", path("document.tsr"));
    files.insert("tsa_root", tsa.pki.ca_pem().to_str().unwrap().into());
    files.insert("tsa_url", tsa.url());
    files.insert("garbage", path("garbage"));
    files.insert("missing", path("missing"));
    files.insert("bad_name", "Bad Name!".into());
    files.insert("closed_port", closed_port.to_string());
    files.insert("closed_url", closed_url);
    files.insert("busy_port", busy.local_addr().unwrap().port().to_string());
    files.insert("softhsm_module", imza_testdata::softhsm::MODULE_PATH.into());
    files.insert("opensc_module", OPENSC_PKCS11_MODULE.into());
    files.insert(
        "pg_url",
        postgres.url_without_password(&postgres.create_database()),
    );
    files.insert("pg_password", postgres.password().into());
    Fixture {
        pki,
        tampered,
        files,
        _busy: busy,
        _tsa: tsa,
    }
}

/// `line`'s environment (its leading `VAR=value` words) and arguments, each `{name}` in them
/// replaced by the fixture's; `{new}` is a path not yet taken.
fn words(fixture: &Fixture, line: &str, row: usize) -> (Vec<(String, String)>, Vec<String>) {
    let mut values = fixture.files.clone();
    let new = fixture.pki.path(&format!("new-{row}"));
    values.insert("new", new.to_str().unwrap().to_string());
    let fill = |word: &str| {
        let mut word = word.to_string();
        while let Some(start) = word.find('{') {
            let end = start + word[start..].find('}').unwrap();
            let name = &word[start + 1..end];
            let value = values
                .get(name)
                .unwrap_or_else(|| panic!("no {{{name}}} in the fixture"));
            word.replace_range(start..=end, value);
        }
        word
    };
    let mut env = Vec::new();
    let mut args = Vec::new();
    for word in line.split_whitespace() {
        match word.split_once('=') {
            Some((var, value)) if args.is_empty() && !var.starts_with('-') => {
                env.push((var.to_string(), fill(value)));
            }
            _ => args.push(fill(word)),
        }
    }
    (env, args)
}

#[test]
fn every_command_follows_the_one_exit_code_rule() {
    let fixture = fixture();
    let fresh = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    for (row, (code, on, line)) in TABLE.iter().enumerate() {
        let (env, args) = words(&fixture, line, row);
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_imza"));
        let data_dir: PathBuf = match on {
            Fresh => fresh.path().join(format!("data-{row}")),
            Tampered => fixture.tampered.data_dir(),
            FileAsDir => PathBuf::from(&fixture.files["garbage"]),
            _ => fixture.pki.data_dir(),
        };
        command
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&args)
            .env_remove("IMZA_STORE")
            .env_remove("IMZA_PKCS11_MODULE")
            .stdin(std::process::Stdio::null());
        match on {
            PgDown => {
                let port = &fixture.files["closed_port"];
                command.env(
                    "IMZA_STORE",
                    format!("postgres://imza@127.0.0.1:{port}/imza"),
                );
            }
            NoPcscd => {
                command.env("PCSCLITE_CSOCK_NAME", fresh.path().join("no-pcscd.sock"));
            }
            Cards => {
                command.env("OPENSC_CONF", CardLab::shared().opensc_conf());
            }
            Pki | Fresh | Tampered | FileAsDir => {}
        }
        command.envs(env);
        let out = command.output().unwrap();
        let said = stderr(&out);
        let lines = said.trim_end().lines().count();
        let got = out.status.code();
        if got != Some(i32::from(*code)) || (*code != 0 && lines != 1) {
            wrong.push(format!(
                "row {row} ({on:?}) imza {line}: expected {code}, got {got:?} with {lines} \
                 stderr lines: {said}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} rows wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
