//! Several writers on one PostgreSQL store at once, through the real binary: two issuers of
//! 5,000 certificates each, two revokers of one serial, and an issuer killed with SIGKILL in
//! the middle of a batch, again and again. What must hold: no serial twice, the audit chain
//! intact and linear with one entry per certificate, exactly one revocation, nothing
//! half-written, and the re-run completes.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `imza ca issue --ca citizens --profile citizen-auth --csr-dir CSRS --out-dir OUT`, started.
fn spawn_batch(pki: &TestPki, csrs: &Path, out: &Path) -> Child {
    let pg = pki.postgres.as_ref().unwrap();
    Command::new(env!("CARGO_BIN_EXE_imza"))
        .arg("--data-dir")
        .arg(pki.data_dir())
        .args([
            "ca",
            "issue",
            "--ca",
            "citizens",
            "--profile",
            "citizen-auth",
        ])
        .arg("--csr-dir")
        .arg(csrs)
        .arg("--out-dir")
        .arg(out)
        .env("IMZA_STORE", pg.url())
        .env("PGPASSWORD", pg.cluster.password())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start imza")
}

fn psql(pki: &TestPki, sql: &str) -> String {
    let pg = pki.postgres.as_ref().unwrap();
    pg.cluster.psql(&pg.database, sql)
}

/// What must hold of the store whatever happened: the chain verifies, and the issued
/// certificates and the `ca.issue` audit entries name the same serials, once each.
fn check_store(pki: &TestPki) -> usize {
    let audit: serde_json::Value =
        serde_json::from_str(&pki.ok(&["audit", "verify", "--json"])).unwrap();
    assert_eq!(audit["ok"], true, "{audit}");
    let stored: Vec<String> = psql(
        pki,
        "SELECT serial FROM certificates WHERE ca = 'citizens' ORDER BY serial",
    )
    .lines()
    .map(str::to_string)
    .collect();
    let audited: Vec<String> = psql(
        pki,
        "SELECT details::json->>'serial' FROM audit \
         WHERE action = 'ca.issue' AND ca = 'citizens' ORDER BY 1",
    )
    .lines()
    .map(str::to_string)
    .collect();
    let unique: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a serial stored twice");
    assert_eq!(
        stored, audited,
        "certificates and their audit entries differ"
    );
    // The chain is one line: sequence numbers 1..n without a gap.
    let (count, max) = psql(pki, "SELECT count(*) || ' ' || max(seq) FROM audit")
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    assert_eq!(count, max, "the audit sequence has a gap or a fork");
    assert_eq!(audit["entries"].to_string(), count);
    stored.len()
}

fn citizens_pki() -> TestPki {
    let pki = TestPki::on_postgres();
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_citizens_args(&[]));
    pki
}

#[test]
fn two_issuers_of_5000_each_at_once_collide_on_nothing() {
    let pki = citizens_pki();
    let a = citizen_csrs(&pki, "a", 5_000, 0);
    let b = citizen_csrs(&pki, "b", 5_000, 5_000);
    let started = Instant::now();
    let issuers = [
        spawn_batch(&pki, &a, &pki.path("out-a")),
        spawn_batch(&pki, &b, &pki.path("out-b")),
    ];
    for issuer in issuers {
        let out = issuer.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "10,000 certificates by two issuers in {:?}",
        started.elapsed()
    );
    assert_eq!(check_store(&pki), 10_000);
    for out in ["out-a", "out-b"] {
        assert_eq!(std::fs::read_dir(pki.path(out)).unwrap().count(), 5_000);
    }
}

#[test]
fn two_revokers_of_one_serial_at_once_revoke_it_once() {
    let pki = citizens_pki();
    pki.issue_citizen("citizen-sign", "x");
    let serial = pki.serials("citizens").pop().unwrap();
    for round in 0..3 {
        let serial = if round == 0 {
            serial.clone()
        } else {
            pki.issue_citizen("citizen-sign", &format!("x{round}"));
            pki.serials("citizens").pop().unwrap()
        };
        let pg = pki.postgres.as_ref().unwrap();
        let revokers: Vec<Child> = (0..2)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_imza"))
                    .arg("--data-dir")
                    .arg(pki.data_dir())
                    .args(revoke_args("citizens", &serial, &[]))
                    .env("IMZA_STORE", pg.url())
                    .env("PGPASSWORD", pg.cluster.password())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outcomes: Vec<_> = revokers
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let won = outcomes.iter().filter(|o| o.status.success()).count();
        assert_eq!(won, 1, "{outcomes:?}");
        let lost = outcomes.iter().find(|o| !o.status.success()).unwrap();
        assert_eq!(lost.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&lost.stderr).contains("already revoked"));
        let entries = psql(
            &pki,
            &format!(
                "SELECT count(*) FROM audit WHERE action = 'ca.revoke' \
                 AND details::json->>'serial' = '{serial}'"
            ),
        );
        assert_eq!(entries, "1");
    }
    check_store(&pki);
}

#[test]
fn an_issuer_killed_mid_batch_leaves_nothing_half_written_and_the_rerun_completes() {
    let pki = citizens_pki();
    let csrs = citizen_csrs(&pki, "csrs", 3_000, 0);
    for round in 0..3 {
        let out = pki.path(&format!("killed-{round}"));
        let before: usize = psql(&pki, "SELECT count(*) FROM certificates")
            .parse()
            .unwrap();
        let mut issuer = spawn_batch(&pki, &csrs, &out);
        // Killed once the batch is committing (some of it in the store), before it ends.
        let started = Instant::now();
        loop {
            let now: usize = psql(&pki, "SELECT count(*) FROM certificates")
                .parse()
                .unwrap();
            if now > before || matches!(issuer.try_wait(), Ok(Some(_))) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the batch never committed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20 * round as u64));
        issuer.kill().unwrap();
        let status = issuer.wait().unwrap();
        let committed = check_store(&pki);
        println!("round {round}: killed ({status}), {committed} certificates in the store");
        // Every file that appeared is a whole certificate the store has.
        if out.exists() {
            for entry in std::fs::read_dir(&out).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".partial") {
                    continue; // never renamed into place: not a certificate
                }
                let serial = openssl_show("x509", &path, false, &["-serial", "-noout"]);
                let serial = serial.trim().trim_start_matches("serial=").to_string();
                assert_eq!(
                    psql(
                        &pki,
                        &format!("SELECT count(*) FROM certificates WHERE serial = '{serial}'")
                    ),
                    "1",
                    "{name}"
                );
            }
        }
    }
    // The re-run of the same batch into a fresh directory completes.
    let out = spawn_batch(&pki, &csrs, &pki.path("rerun"))
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(pki.path("rerun")).unwrap().count(), 3_000);
    check_store(&pki);
}
