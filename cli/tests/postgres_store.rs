//! The CLI on a PostgreSQL store (`--store` / IMZA_STORE): the same commands and verdicts as
//! on the embedded store, the password kept out of command lines and messages, and every
//! refused command leaving the database as it was. A real PostgreSQL cluster of this test
//! binary's own (see `imza_testdata::postgres`), shared by its tests, a database each.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;
use imza_testdata::postgres::PgCluster;

/// Runs imza with `--data-dir` in a fresh directory and `args`, environment `env` only as
/// given (no IMZA_STORE unless passed).
fn imza_raw(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imza"));
    cmd.arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(args)
        .env_remove("IMZA_STORE")
        .env_remove("PGPASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run imza")
}

fn one_line(said: &str) {
    assert_eq!(
        said.trim_end().lines().count(),
        1,
        "one line expected: {said}"
    );
}

#[test]
fn a_pki_runs_on_postgres_from_init_to_revocation_and_crl() {
    let pki = TestPki::on_postgres_with_root_and_citizens();
    let cert = pki.issue_citizen("citizen-sign", "gunay");
    let serial = pki.serials("citizens").pop().expect("one certificate");

    // The CLI's verdicts are the embedded store's: revoke once, refuse twice (nothing changes).
    pki.revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    let before = pki.snapshot();
    let said = pki.exits(&revoke_args("citizens", &serial, &[]), &[], 2);
    assert!(said.contains("already revoked"), "{said}");
    assert_eq!(pki.snapshot(), before);

    // A CRL signed from the PostgreSQL store, checked by openssl.
    let crl = pki.path("citizens.crl");
    pki.crl("citizens", &crl);
    let out = openssl_verify(
        &pki.ca_pem("root"),
        &pki.ca_pem("citizens"),
        &cert,
        Some(&crl),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("revoked")
            || String::from_utf8_lossy(&out.stderr).contains("revoked"),
        "{out:?}"
    );
    let audit = pki.ok(&["audit", "verify"]);
    assert!(audit.contains("intact"), "{audit}");
    // Nothing of the store is in the data directory: only this machine's keys.
    assert!(!pki.data_dir().join("imza.db").exists());
}

#[test]
fn every_store_command_refuses_an_empty_database_and_creates_nothing() {
    let pki = TestPki::on_postgres();
    let pg = pki.postgres.as_ref().unwrap();
    let (csr, out, csr_dir) = (pki.path("a.csr"), pki.path("out"), pki.path("csrs"));
    std::fs::write(&csr, b"not read").unwrap();
    std::fs::create_dir(&csr_dir).unwrap();
    std::fs::write(csr_dir.join("b.csr"), b"not read").unwrap();
    for args in store_commands(
        out.to_str().unwrap(),
        csr.to_str().unwrap(),
        csr_dir.to_str().unwrap(),
    ) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let said = pki.exits(&args, &[("CARD_PIN", "123456"), ("PHONE_PIN", "24680")], 2);
        one_line(&said);
        assert!(
            said.contains("no imza store at postgres://"),
            "{args:?}: {said}"
        );
        assert!(!said.contains(pg.cluster.password()), "{said}");
        assert!(!out.exists(), "imza {args:?} wrote {}", out.display());
        assert!(
            !pki.data_dir().exists(),
            "imza {args:?} made the data directory"
        );
        let tables = pg.cluster.psql(
            &pg.database,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        );
        assert_eq!(tables, "0", "imza {args:?} created tables");
    }
}

#[test]
fn refused_commands_leave_the_postgres_store_as_it_was() {
    let pki = TestPki::on_postgres_with_root_and_citizens();
    pki.issue_citizen("citizen-auth", "aysel");
    let bad_csr = pki.path("bad.csr");
    std::fs::write(&bad_csr, b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n").unwrap();
    let out = pki.path("out.pem");
    let before = pki.snapshot();
    for (args, code) in [
        (init_citizens_args(&[]), 2),
        (revoke_args("citizens", "0BADC0DE", &[]), 2),
        (
            issue_args(
                "citizens",
                "citizen-sign",
                &[
                    "--csr",
                    bad_csr.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                ],
            ),
            2,
        ),
        (
            vec![
                "ca",
                "crl",
                "--ca",
                "nobody",
                "--out",
                out.to_str().unwrap(),
            ],
            2,
        ),
    ] {
        pki.exits(&args, &[], code);
        assert_eq!(pki.snapshot(), before, "imza {args:?} changed the store");
    }
}

#[test]
fn a_password_in_store_on_the_command_line_is_refused_and_not_echoed() {
    let cluster = PgCluster::shared();
    let db = cluster.create_database();
    let out = imza_raw(&["--store", &cluster.url(&db), "ca", "list"], &[]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    one_line(&said);
    assert!(said.contains("ps"), "{said}");
    assert!(!said.contains(cluster.password()), "{said}");
    assert!(!stdout(&out).contains(cluster.password()));
}

#[test]
fn an_unknown_store_scheme_is_bad_usage() {
    let out = imza_raw(
        &["--store", "mysql://root:hunter2@db/pki", "ca", "list"],
        &[],
    );
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    one_line(&said);
    assert!(said.contains("unknown store scheme"), "{said}");
    assert!(!said.contains("hunter2"), "{said}");
}

#[test]
fn an_unreachable_database_is_exit_3_in_one_line() {
    let port = free_port();
    let url = format!("postgres://imza@127.0.0.1:{port}/pki");
    let started = std::time::Instant::now();
    let out = imza_raw(
        &["--store", &url, "audit", "verify"],
        &[("PGPASSWORD", "s3cr3t-pw")],
    );
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    one_line(&said);
    assert!(said.contains("unavailable"), "{said}");
    assert!(!said.contains("s3cr3t-pw"), "{said}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn a_wrong_password_is_exit_3_and_in_no_output() {
    let cluster = PgCluster::shared();
    let db = cluster.create_database();
    let url = cluster.url_without_password(&db);
    // The password inside IMZA_STORE (the environment: allowed) is wrong.
    let with_password = format!(
        "postgres://imza:Wrong-Pass-5678@127.0.0.1:{}/{db}",
        cluster.port()
    );
    for env in [
        vec![
            ("PGPASSWORD", "Wrong-Pass-5678"),
            ("IMZA_STORE", url.as_str()),
        ],
        vec![("IMZA_STORE", with_password.as_str())],
    ] {
        let out = imza_raw(&["ca", "list"], &env);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{said}");
        one_line(&said);
        assert!(said.contains("password authentication failed"), "{said}");
        assert!(!said.contains("Wrong-Pass-5678"), "{said}");
        assert!(!stdout(&out).contains("Wrong-Pass-5678"));
    }
}

#[test]
fn a_schema_newer_than_the_binary_is_refused() {
    let pki = TestPki::on_postgres();
    pki.ok(&init_root_args(&[]));
    let pg = pki.postgres.as_ref().unwrap();
    pg.cluster.psql(
        &pg.database,
        "INSERT INTO schema_migrations VALUES (999, 0)",
    );
    let said = pki.exits(&["ca", "list"], &[], 3);
    one_line(&said);
    assert!(
        said.contains("999") && said.contains("newer imza"),
        "{said}"
    );
}

/// `imza serve` (all roles) on a PostgreSQL store: it starts, OCSP checked by openssl says
/// good, a revocation by `imza ca revoke` in another process is answered revoked within a
/// second, /verify and the mobile signature service are up, and SIGTERM stops it cleanly
/// (exit 0: the store's connections are closed off the runtime's threads).
#[test]
fn imza_serve_runs_on_postgres_and_sees_a_revocation_within_a_second() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let pki = TestPki::on_postgres();
    pki.ok(&init_root_args(&["--key", "ec-p384", "--base-url", &base]));
    pki.ok(&init_citizens_args(&["--base-url", &base]));
    let cert = pki.issue_citizen("citizen-sign", "gunay");
    let serial = pki.serials("citizens").pop().expect("one certificate");
    let mut server = Server::start_on(&pki, port, &[]);
    assert_eq!(server.get("/health").0, 200);
    assert_eq!(server.get("/crl/citizens.crl").0, 200);

    let (citizens, root) = (pki.ca_pem("citizens"), pki.ca_pem("root"));
    let ocsp =
        |extra: &[&str]| -> String { common::openssl_ocsp(&base, &citizens, &root, &cert, extra) };
    let said = ocsp(&[]);
    assert!(said.contains(": good"), "{said}");

    pki.revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    let revoked_at = std::time::Instant::now();
    loop {
        let said = ocsp(&[]);
        if said.contains(": revoked") {
            break;
        }
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_secs(1),
            "still not revoked after 1 s: {said}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The mobile signature service answers on this store too (an unknown relying party).
    let (status, _) = server.get("/mss/v1/session/00000000000000000000000000000000");
    assert!(status == 401 || status == 404, "{status}");

    let (code, took) = server.terminate();
    assert_eq!(code, Some(0), "exit after SIGTERM");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
}
