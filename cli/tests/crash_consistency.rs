//! Crash consistency kept by tests, on both store engines (issue 17 §4): `imza ca issue
//! --csr-dir`, `imza ca revoke` and `imza ca crl` killed with SIGKILL at moments that vary from
//! round to round, again and again; two processes issuing from one data directory at once.
//! Whatever happened, afterwards: `imza audit verify` passes, the engine's own integrity check
//! is clean (SQLite `PRAGMA integrity_check`; PostgreSQL: every index valid and ready), every
//! certificate file written is a certificate in the store, every certificate in the store has
//! its `ca.issue` audit entry and every revocation its `ca.revoke` one, every stored CRL its
//! `ca.crl` one, and a CRL file written is whole.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// Rows of `sql` on the test's store, one a line.
fn query(pki: &TestPki, sql: &str) -> String {
    match &pki.postgres {
        Some(pg) => pg.cluster.psql(&pg.database, sql),
        None => {
            let db = pki.data_dir().join("imza.db");
            let out = run("sqlite3", &[db.to_str().unwrap(), sql]);
            assert!(out.status.success(), "sqlite3: {}", stderr(&out));
            stdout(&out).trim_end().to_string()
        }
    }
}

fn lines(text: String) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `imza ARGS` started with the store's environment, output discarded.
fn spawn(pki: &TestPki, args: &[&str]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imza"));
    command
        .arg("--data-dir")
        .arg(pki.data_dir())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(pg) = &pki.postgres {
        command
            .env("IMZA_STORE", pg.url())
            .env("PGPASSWORD", pg.cluster.password());
    }
    command.spawn().expect("start imza")
}

/// What must hold of the store whatever happened.
fn assert_consistent(pki: &TestPki, written: &[PathBuf]) {
    let audit: serde_json::Value =
        serde_json::from_str(&pki.ok(&["audit", "verify", "--json"])).unwrap();
    assert_eq!(audit["ok"], true, "{audit}");
    let json = |field: &str| {
        if pki.postgres.is_some() {
            format!("(details::json->>'{field}')")
        } else {
            format!("json_extract(details, '$.{field}')")
        }
    };
    match &pki.postgres {
        None => assert_eq!(query(pki, "PRAGMA integrity_check"), "ok"),
        // PostgreSQL's own check of what the store relies on: every index valid and ready.
        Some(_) => assert_eq!(
            query(
                pki,
                "SELECT count(*) FROM pg_index WHERE NOT indisvalid OR NOT indisready"
            ),
            "0"
        ),
    }
    let issued = lines(query(
        pki,
        // The citizens CA's: the root's one certificate (the citizens CA's own) is recorded
        // by ca.init.
        "SELECT ca || ' ' || serial FROM certificates WHERE ca = 'citizens' ORDER BY 1",
    ));
    let audited = lines(query(
        pki,
        &format!(
            "SELECT ca || ' ' || {} FROM audit WHERE action = 'ca.issue' AND ca = 'citizens' \
             ORDER BY 1",
            json("serial")
        ),
    ));
    let unique: BTreeSet<&String> = issued.iter().collect();
    assert_eq!(unique.len(), issued.len(), "a serial stored twice");
    assert_eq!(
        issued, audited,
        "certificates and their ca.issue entries differ"
    );
    let revoked = lines(query(
        pki,
        "SELECT ca || ' ' || serial FROM certificates WHERE revoked_at IS NOT NULL ORDER BY 1",
    ));
    let revocations = lines(query(
        pki,
        &format!(
            "SELECT DISTINCT ca || ' ' || {} FROM audit WHERE action = 'ca.revoke' ORDER BY 1",
            json("serial")
        ),
    ));
    assert_eq!(
        revoked, revocations,
        "revocations and their ca.revoke entries differ"
    );
    let crls = lines(query(
        pki,
        "SELECT ca || ' ' || number FROM crls ORDER BY 1",
    ));
    let crl_entries = lines(query(
        pki,
        &format!(
            "SELECT ca || ' ' || {} FROM audit WHERE action = 'ca.crl' ORDER BY 1",
            json("number")
        ),
    ));
    assert_eq!(crls, crl_entries, "CRLs and their ca.crl entries differ");
    // Every file written: a whole certificate the store has, or a whole CRL.
    for path in written {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".partial") {
            continue; // never renamed into place
        }
        if name.ends_with(".crl") {
            let out = run("openssl", &["crl", "-in", path.to_str().unwrap(), "-noout"]);
            assert!(out.status.success(), "{name} is not a whole CRL");
            continue;
        }
        let serial = openssl_show("x509", path, false, &["-serial", "-noout"]);
        let serial = serial.trim().trim_start_matches("serial=").to_string();
        assert_eq!(
            query(
                pki,
                &format!("SELECT count(*) FROM certificates WHERE serial = '{serial}'")
            ),
            "1",
            "{name} is not in the store"
        );
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// `imza ca issue --ca citizens --profile citizen-auth --csr-dir CSRS --out-dir OUT`.
fn issue_args(csrs: &Path, out: &Path) -> Vec<String> {
    [
        "ca",
        "issue",
        "--ca",
        "citizens",
        "--profile",
        "citizen-auth",
        "--csr-dir",
        csrs.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]
    .map(str::to_string)
    .to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Kills `child` after `after` (or finds it already ended).
fn kill_after(mut child: Child, after: Duration) {
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
}

/// Rounds of issue, revoke and CRL runs, each killed at a moment that moves from round to
/// round (0 to ~120 ms in): through the start-up, the transactions and the file writes.
fn killed_again_and_again(pki: &TestPki) {
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_citizens_args(&[]));
    let batch = citizen_csrs(pki, "csrs", 200, 0);
    let mut written = Vec::new();
    for round in 0..18u64 {
        let at = Duration::from_millis((round * 37) % 130);
        let out = pki.path(&format!("issued-{round}"));
        let issuer = spawn(pki, &strs(&issue_args(&batch, &out)));
        kill_after(issuer, at);
        written.extend(files(&out));
        // Revoke one issued certificate, killed at its own moment.
        if let Some(serial) = lines(query(
            pki,
            "SELECT serial FROM certificates WHERE ca = 'citizens' AND revoked_at IS NULL \
             ORDER BY serial LIMIT 1",
        ))
        .first()
        {
            let revoker = spawn(
                pki,
                &[
                    "ca",
                    "revoke",
                    "--ca",
                    "citizens",
                    "--serial",
                    serial,
                    "--reason",
                    "superseded",
                ],
            );
            kill_after(revoker, at / 2);
        }
        let crl = pki.path(&format!("citizens-{round}.crl"));
        let signer = spawn(
            pki,
            &[
                "ca",
                "crl",
                "--ca",
                "citizens",
                "--out",
                crl.to_str().unwrap(),
            ],
        );
        kill_after(signer, at / 3);
        if crl.exists() {
            written.push(crl);
        }
        assert_consistent(pki, &written);
        println!(
            "round {round} (killed after {at:?}): {} certificates, {} revoked, {} CRLs",
            query(
                pki,
                "SELECT count(*) FROM certificates WHERE ca = 'citizens'"
            ),
            query(
                pki,
                "SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL"
            ),
            query(pki, "SELECT count(*) FROM crls WHERE ca = 'citizens'")
        );
    }
    // And the store still works: a batch issued to the end.
    let out = pki.path("after");
    let said = pki.ok(&strs(&issue_args(&batch, &out)));
    assert_eq!(files(&out).len(), 200, "{said}");
    written.extend(files(&out));
    assert_consistent(pki, &written);
}

#[test]
fn sqlite_issue_revoke_and_crl_killed_again_and_again_leave_a_consistent_store() {
    killed_again_and_again(&TestPki::new());
}

#[test]
fn postgresql_issue_revoke_and_crl_killed_again_and_again_leave_a_consistent_store() {
    killed_again_and_again(&TestPki::on_postgres());
}

/// Two processes issuing from one SQLite data directory at once: both succeed (one waits for
/// the other's transactions) or one fails cleanly; the store is whole either way.
#[test]
fn two_issuers_on_one_sqlite_data_directory_at_once() {
    let pki = TestPki::new();
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_citizens_args(&[]));
    let (a, b) = (
        citizen_csrs(&pki, "a", 300, 0),
        citizen_csrs(&pki, "b", 300, 300),
    );
    let issue = |csrs: &Path, out: &str| spawn(&pki, &strs(&issue_args(csrs, &pki.path(out))));
    let (mut first, mut second) = (issue(&a, "out-a"), issue(&b, "out-b"));
    let (x, y) = (first.wait().unwrap(), second.wait().unwrap());
    let mut written = files(&pki.path("out-a"));
    written.extend(files(&pki.path("out-b")));
    assert_consistent(&pki, &written);
    let stored: usize = query(
        &pki,
        "SELECT count(*) FROM certificates WHERE ca = 'citizens'",
    )
    .parse()
    .unwrap();
    let expected = [x, y]
        .iter()
        .map(|s| if s.success() { 300 } else { 0 })
        .sum::<usize>();
    assert!(
        x.success() || y.success(),
        "neither issuer finished: {x} {y}"
    );
    assert_eq!(stored, expected, "issuers {x} and {y}");
}
