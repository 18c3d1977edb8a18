//! `imza store migrate --to postgres://…`: the embedded store copied into an empty PostgreSQL
//! database, after which the CLI and `imza serve` on the database give the answers they gave
//! on the file — the demo's CA listings, audit chain, OCSP verdicts and mobile signature — and
//! new issuance, CAs and revocations continue after the copied ones. A database that is not
//! empty, a password on the command line, an unreachable server and a kill mid-copy leave
//! the target as it was. A real PostgreSQL cluster of this test binary's own
//! (`imza_testdata::postgres`), a database per test.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use imza_testdata::postgres::PgCluster;
use serde_json::Value;

/// The demo's CAs, phone, relying party and PIN (cli/src/demo.rs).
const DEMO_CAS: [&str; 5] = [
    "root",
    "citizens",
    "organisations",
    "infrastructure",
    "mobile",
];
const DEMO_PHONE: &str = "+994501234567";
const DEMO_FIN: &str = "5ZK7T2Q";
const DEMO_RP: &str = "mygov.az";
const DEMO_PIN: &str = "12345";

/// Every table the copy writes, in its order.
const TABLES: [&str; 17] = [
    "cas",
    "certificates",
    "crls",
    "audit",
    "services",
    "service_requests",
    "mss_relying_parties",
    "mss_devices",
    "mss_sessions",
    "portal_sessions",
    "portal_nonces",
    "portal_events",
    "portal_access_codes",
    "portal_pending_logins",
    "portal_documents",
    "portal_document_checks",
    "portal_notices",
];

/// `imza store migrate --to DATABASE EXTRA...` from `pki`'s embedded store, the password in
/// PGPASSWORD.
fn migrate(pki: &TestPki, database: &str, extra: &[&str]) -> Output {
    let cluster = PgCluster::shared();
    let to = cluster.url_without_password(database);
    let mut args = vec!["store", "migrate", "--to", to.as_str()];
    args.extend_from_slice(extra);
    pki.imza_env(&args, &[("PGPASSWORD", cluster.password())])
}

/// [`migrate`] with `--json`, insisting on success: what it printed.
fn migrate_ok(pki: &TestPki, database: &str) -> Value {
    let out = migrate(pki, database, &["--json"]);
    assert!(out.status.success(), "migrate failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("migrate --json prints JSON")
}

/// The same data directory (its keys), the store now the database.
fn moved_to(pki: TestPki, database: &str) -> TestPki {
    TestPki {
        dir: pki.dir,
        postgres: Some(PgStore {
            cluster: PgCluster::shared(),
            database: database.to_string(),
        }),
    }
}

/// A view of `database` alone (a data directory of its own), for snapshots.
fn database_view(database: &str) -> TestPki {
    TestPki {
        dir: tempfile::tempdir().expect("tempdir"),
        postgres: Some(PgStore {
            cluster: PgCluster::shared(),
            database: database.to_string(),
        }),
    }
}

fn tables_in(database: &str) -> String {
    PgCluster::shared().psql(
        database,
        "SELECT coalesce(string_agg(table_name, ' ' ORDER BY table_name COLLATE \"C\"), '') \
         FROM information_schema.tables WHERE table_schema = 'public'",
    )
}

fn one_line(said: &str) {
    assert_eq!(
        said.trim_end().lines().count(),
        1,
        "one line expected: {said}"
    );
}

/// What the CLI shows of a PKI: the CAs, every CA's certificates, the OCSP responders and TSA
/// units, the relying parties, and the audit chain's summary.
fn views(pki: &TestPki, cas: &[&str]) -> Vec<(String, String)> {
    let mut views = Vec::new();
    let mut show = |args: &[&str]| views.push((args.join(" "), pki.ok(args)));
    show(&["ca", "list", "--json"]);
    for ca in cas {
        show(&["ca", "list", "--ca", ca, "--json"]);
    }
    show(&["ocsp", "list", "--json"]);
    show(&["tsa", "list", "--json"]);
    show(&["mobile", "rp", "list", "--json"]);
    show(&["audit", "verify", "--json"]);
    views
}

/// Rows copied per table, from `migrate --json`.
fn copied(report: &Value) -> Vec<(String, u64)> {
    report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            (
                t["table"].as_str().expect("table").to_string(),
                t["rows"].as_u64().expect("rows"),
            )
        })
        .collect()
}

/// Rows per table of the embedded store, counted by sqlite3; a table not made yet (the
/// portal's, which the migration makes before it copies) has none.
fn sqlite_counts(pki: &TestPki) -> Vec<(String, u64)> {
    let db = pki.data_dir().join("imza.db");
    TABLES
        .iter()
        .map(|t| {
            let out = run(
                "sqlite3",
                &[db.to_str().unwrap(), &format!("SELECT count(*) FROM {t}")],
            );
            if !out.status.success() && stderr(&out).contains("no such table") {
                return (t.to_string(), 0);
            }
            (t.to_string(), stdout(&out).trim().parse().expect("a count"))
        })
        .collect()
}

/// A child process killed when dropped (also when a test fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl ocsp` for `cert` (issued by `issuer`) against `imza serve` at `base`.
fn ocsp_status(base: &str, demo: &Path, issuer: &str, cert: &str) -> String {
    let issuer = demo.join("ca").join(format!("{issuer}.pem"));
    let cert = demo.join("certs").join(format!("{cert}.pem"));
    let root = demo.join("ca/root.pem");
    common::openssl_ocsp(base, &issuer, &root, &cert, &[])
}

/// `imza serve --roles ocsp --node edge1`: a public node in a data directory of its own
/// (`edge/`) on the store at `store`. It makes its responder keys there and files requests
/// the CA side certifies.
fn edge_node(pki: &TestPki, store: &str) -> Server {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_imza"));
    command
        .arg("--data-dir")
        .arg(pki.path("edge"))
        .args([
            "serve", "--roles", "ocsp", "--node", "edge1", "--listen", &listen,
        ])
        .env("IMZA_STORE", store)
        .env("PGPASSWORD", PgCluster::shared().password());
    Server::spawn(command, &listen)
}

/// The demo's phone and relying party sign a document through `imza serve` at `base`: the
/// phone app approves one request, `imza sign --mobile` makes a CAdES B-T signature (the
/// server's TSA), and openssl verifies it against the demo's root.
fn demo_mobile_signature_verifies(pki: &TestPki, base: &str) {
    let demo = pki.data_dir().join("demo");
    // The demo registers its phone for a server on port 8080; this one listens elsewhere.
    let wallet_file = demo.join("phone/phone.json");
    let mut wallet: Value =
        serde_json::from_slice(&std::fs::read(&wallet_file).unwrap()).expect("wallet JSON");
    wallet["mssUrl"] = Value::String(base.to_string());
    std::fs::write(&wallet_file, serde_json::to_vec(&wallet).unwrap()).unwrap();

    let phone = Running(
        Command::new(env!("CARGO_BIN_EXE_imza"))
            .args(["phone", "run", "--phone", DEMO_PHONE, "--phone-dir"])
            .arg(demo.join("phone"))
            .args(["--approve", "--count", "1", "--pin-env", "PHONE_PIN"])
            .env("PHONE_PIN", DEMO_PIN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start imza phone run"),
    );
    let document = pki.path("document.txt");
    std::fs::write(
        &document,
        "e-arayış: the demo's phone signs after the move\n",
    )
    .unwrap();
    let signature = pki.path("document.p7s");
    let rp_key = std::fs::read_to_string(demo.join("mobile-rp.key")).unwrap();
    let tsa = format!("{base}/tsa");
    pki.ok_env(
        &[
            "sign",
            "--mobile",
            DEMO_PHONE,
            "--national-id",
            DEMO_FIN,
            "--mss-url",
            base,
            "--rp-name",
            DEMO_RP,
            "--rp-key-env",
            "RP_KEY",
            "--in",
            document.to_str().unwrap(),
            "--out",
            signature.to_str().unwrap(),
            "--chain",
            demo.join("ca/mobile.pem").to_str().unwrap(),
            "--level",
            "T",
            "--tsa",
            &tsa,
        ],
        &[("RP_KEY", rp_key.trim())],
    );
    drop(phone);
    let verified = openssl_cms_verify(
        &signature,
        &document,
        &demo.join("ca/root.pem"),
        &pki.path("document.out"),
    );
    assert!(
        stderr(&verified).contains("Verification successful"),
        "{}",
        stderr(&verified)
    );
}

#[test]
fn the_demo_moved_to_postgres_answers_as_before_and_carries_on() {
    let pki = TestPki::new();
    let started = Instant::now();
    pki.ok(&["demo"]);
    eprintln!("imza demo: {:.2} s", started.elapsed().as_secs_f64());
    // A public node files requests for responders of its own, still open at the move.
    let embedded = format!("sqlite:{}", pki.data_dir().join("imza.db").display());
    drop(edge_node(&pki, &embedded));
    let before = views(&pki, &DEMO_CAS);
    let counts = sqlite_counts(&pki);

    let database = PgCluster::shared().create_database();
    let started = Instant::now();
    let report = migrate_ok(&pki, &database);
    eprintln!(
        "imza store migrate of the demo: {:.2} s (copy {:.2} s): {}",
        started.elapsed().as_secs_f64(),
        report["copy_seconds"].as_f64().unwrap_or(0.0),
        report["tables"]
    );
    // Every table, in order, with the source's row count.
    assert_eq!(copied(&report), counts);
    let rows = |table: &str| counts.iter().find(|(t, _)| t == table).unwrap().1;
    assert_eq!(rows("cas"), 5);
    // mygov.az and the portal's own (its phone login).
    assert_eq!(rows("mss_relying_parties"), 2);
    assert_eq!(rows("mss_devices"), 1);
    assert!(rows("crls") >= 5 && rows("services") >= 6, "{counts:?}");
    assert_eq!(rows("service_requests"), 5);
    assert_eq!(report["audit"]["ok"], true);
    assert_eq!(report["audit"]["entries"].as_u64(), Some(rows("audit")));
    assert!(report["to"].as_str().unwrap().starts_with("postgres://"));

    // On the database the CLI says what it said on the file, audit summary included.
    let pki = moved_to(pki, &database);
    assert_eq!(views(&pki, &DEMO_CAS), before);
    assert!(!tables_in(&database).contains("sequences"));
    // The public node's requests, filed before the move, are certified after it.
    let certified = pki.ok(&["ocsp", "certify"]);
    assert_eq!(certified.matches(": certified").count(), 5, "{certified}");

    // imza serve on the database: the demo's OCSP verdicts, and the demo's phone signs.
    let port = free_port();
    let server = Server::start_on(&pki, port, &[]);
    let demo = pki.data_dir().join("demo");
    let good = ocsp_status(&server.base, &demo, "citizens", "gunay-sign");
    assert!(good.contains(": good"), "{good}");
    let revoked = ocsp_status(&server.base, &demo, "citizens", "rashad-sign-revoked");
    assert!(revoked.contains(": revoked"), "{revoked}");
    let seal = ocsp_status(&server.base, &demo, "organisations", "asan-seal");
    assert!(seal.contains(": good"), "{seal}");
    demo_mobile_signature_verifies(&pki, &server.base);
    drop(server);

    // The public node answers with its own responder (its keys never left its data
    // directory).
    let edge = edge_node(&pki, &PgCluster::shared().url_without_password(&database));
    let waiting = Instant::now();
    loop {
        let said = ocsp_status(&edge.base, &demo, "citizens", "gunay-sign");
        if said.contains(": good") {
            break;
        }
        assert!(waiting.elapsed() < Duration::from_secs(20), "{said}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(edge);

    // New certificates, CAs and revocations follow the copied ones (the sequences continue).
    let citizens_before = pki.serials("citizens");
    let cert = pki.issue_citizen("citizen-sign", "after-move");
    let citizens = pki.serials("citizens");
    assert_eq!(citizens.len(), citizens_before.len() + 1);
    assert_eq!(citizens[..citizens_before.len()], citizens_before[..]);
    let new_serial = citizens.last().unwrap().clone();
    pki.ok(&[
        "ca",
        "init",
        "--name",
        "regional",
        "--parent",
        "root",
        "--subject",
        "CN=AZ Regional CA,O=Milli Sertifikat Xidmətləri Mərkəzi,C=AZ",
    ]);
    let cas: Value = serde_json::from_str(&pki.ok(&["ca", "list", "--json"])).unwrap();
    let names: Vec<&str> = cas
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [&DEMO_CAS[..], &["regional"]].concat());
    pki.revoke("citizens", &new_serial, &["--reason", "keyCompromise"]);
    let shown: Value = serde_json::from_str(&pki.ok(&[
        "ca",
        "show",
        "--ca",
        "citizens",
        "--serial",
        &new_serial,
        "--json",
    ]))
    .unwrap();
    assert_eq!(shown["status"], "revoked", "{shown}");
    let crl = pki.path("citizens-after.crl");
    pki.crl("citizens", &crl);
    let verified = openssl_verify(
        &demo.join("ca/root.pem"),
        &demo.join("ca/citizens.pem"),
        &cert,
        Some(&crl),
    );
    let said = format!("{}{}", stdout(&verified), stderr(&verified));
    assert!(
        !verified.status.success() && said.contains("revoked"),
        "{said}"
    );
    let audit: Value = serde_json::from_str(&pki.ok(&["audit", "verify", "--json"])).unwrap();
    assert_eq!(audit["ok"], true);
    assert!(
        audit["entries"].as_u64().unwrap() > rows("audit"),
        "{audit}"
    );
}

#[test]
fn a_database_that_is_not_empty_is_refused_and_left_as_it_was() {
    let pki = TestPki::with_root_and_citizens();
    pki.issue_citizen("citizen-auth", "aysel");
    let cluster = PgCluster::shared();
    let database = cluster.create_database();
    migrate_ok(&pki, &database);
    let view = database_view(&database);
    let copied = view.snapshot();

    // Again into the same database, the password inside IMZA_STORE_TARGET (the environment:
    // allowed), none in PGPASSWORD.
    let out = pki.imza_env(
        &["store", "migrate"],
        &[("IMZA_STORE_TARGET", cluster.url(&database).as_str())],
    );
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    one_line(&said);
    assert!(
        said.contains("not empty") && said.contains("nothing was written"),
        "{said}"
    );
    assert!(!said.contains(cluster.password()), "{said}");
    assert_eq!(view.snapshot(), copied);

    // A database with a table of someone else's: refused, and nothing of imza's created.
    let other = cluster.create_database();
    cluster.psql(&other, "CREATE TABLE inventory (item TEXT)");
    let out = migrate(&pki, &other, &[]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("table inventory"), "{said}");
    assert_eq!(tables_in(&other), "inventory");
}

#[test]
fn bad_targets_sources_and_passwords_are_refused_in_one_line() {
    let cluster = PgCluster::shared();
    let pki = TestPki::with_root_and_citizens();
    let before = pki.snapshot();

    // Unreachable: exit 3, the password in no output.
    let port = free_port();
    let unreachable = format!("postgres://imza@127.0.0.1:{port}/pki");
    let started = Instant::now();
    let out = pki.imza_env(
        &["store", "migrate", "--to", &unreachable],
        &[("PGPASSWORD", "s3cr3t-pw")],
    );
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    one_line(&said);
    assert!(said.contains("unavailable"), "{said}");
    assert!(!said.contains("s3cr3t-pw"), "{said}");
    assert!(started.elapsed() < Duration::from_secs(15));

    // A password on the command line: refused before connecting, not echoed.
    let database = cluster.create_database();
    let with_password = cluster.url(&database);
    let without = cluster.url_without_password(&database);
    for (args, code, says) in [
        (vec!["--to", with_password.as_str()], 2, "ps"),
        (
            vec!["--to", "mysql://root:hunter2@db/pki"],
            2,
            "unknown store scheme",
        ),
        (
            vec!["--to", "sqlite:/tmp/elsewhere.db"],
            2,
            "into a PostgreSQL database",
        ),
        (
            vec!["--to", without.as_str(), "--store", without.as_str()],
            2,
            "copies the embedded store",
        ),
    ] {
        let mut all = vec!["store", "migrate"];
        all.extend(args);
        let out = pki.imza_env(&all, &[("PGPASSWORD", cluster.password())]);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{all:?}: {said}");
        one_line(&said);
        assert!(said.contains(says), "{all:?}: {said}");
        assert!(
            !said.contains(cluster.password()) && !said.contains("hunter2"),
            "{said}"
        );
    }
    assert_eq!(tables_in(&database), "");

    // No store where --data-dir points: refused as every command refuses it, nothing created.
    let empty = TestPki::new();
    let out = migrate(&empty, &database, &[]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("no imza store"), "{said}");
    assert!(!empty.data_dir().exists());
    assert_eq!(tables_in(&database), "");
    assert_eq!(pki.snapshot(), before);
}

/// A copy killed while it writes (a large table of sessions, mid-way) leaves the database
/// without a table, and the same command then copies everything.
#[test]
fn a_migration_killed_mid_copy_leaves_the_database_empty_and_can_be_run_again() {
    const SESSIONS: u64 = 300_000;
    let pki = TestPki::with_root_and_citizens();
    pki.ok(&["mobile", "rp", "add", "--name", DEMO_RP]);
    let db = pki.data_dir().join("imza.db");
    let filled = run(
        "sqlite3",
        &[
            db.to_str().unwrap(),
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SESSIONS}) \
                 INSERT INTO mss_sessions (session_id, relying_party, kind, hash, hash_type, \
                     language, created_at, expires_at, completed_at, result, seq) \
                 SELECT printf('%032x', i), '{DEMO_RP}', 'signature', randomblob(32), 'SHA256', \
                     'AZE', 1700000000000 + i, 1700000300000 + i, 1700000000000 + i, \
                     'NOT_MOBILE_CLIENT', i FROM n"
            ),
        ],
    );
    assert!(filled.status.success(), "{}", stderr(&filled));

    let cluster = PgCluster::shared();
    let database = cluster.create_database();
    let mut migrating = Running(
        Command::new(env!("CARGO_BIN_EXE_imza"))
            .arg("--data-dir")
            .arg(pki.data_dir())
            .args([
                "store",
                "migrate",
                "--to",
                &cluster.url_without_password(&database),
            ])
            .env("PGPASSWORD", cluster.password())
            .env_remove("IMZA_STORE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start imza store migrate"),
    );
    // Killed once it is writing sessions (its transaction open, other tables copied).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let writing = cluster.psql(
            &database,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state <> 'idle' AND query LIKE 'INSERT INTO \"mss_sessions\"%'",
        );
        if writing != "0" {
            break;
        }
        assert!(
            migrating.0.try_wait().expect("status").is_none(),
            "the copy ended before it was seen writing sessions"
        );
        assert!(Instant::now() < deadline, "the copy never wrote sessions");
        std::thread::sleep(Duration::from_millis(20));
    }
    migrating.0.kill().expect("kill");
    migrating.0.wait().expect("wait");
    // The server rolls back once it sees the connection gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.psql(
        &database,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid()",
    ) != "0"
    {
        assert!(
            Instant::now() < deadline,
            "the killed copy's session stayed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(tables_in(&database), "");

    let started = Instant::now();
    let report = migrate_ok(&pki, &database);
    eprintln!(
        "imza store migrate of {} rows: {:.2} s (copy {:.2} s)",
        copied(&report).iter().map(|(_, n)| n).sum::<u64>(),
        started.elapsed().as_secs_f64(),
        report["copy_seconds"].as_f64().unwrap_or(0.0)
    );
    assert_eq!(copied(&report), sqlite_counts(&pki));
    let on_postgres = cluster.psql(
        &database,
        "SELECT count(*), min(seq), max(seq) FROM mss_sessions",
    );
    assert_eq!(on_postgres, format!("{SESSIONS}|1|{SESSIONS}"));
}

/// The copy's audit chain is checked before it is committed: a store whose chain was altered
/// is not copied (exit 1, as `imza audit verify` says of it), and the database stays empty.
#[test]
fn a_store_whose_audit_chain_is_broken_is_not_copied() {
    let pki = TestPki::with_root_and_citizens();
    pki.issue_citizen("citizen-sign", "gunay");
    let db = pki.data_dir().join("imza.db");
    let altered = run(
        "sqlite3",
        &[
            db.to_str().unwrap(),
            "UPDATE audit SET details = '{\"altered\":true}' WHERE seq = 2",
        ],
    );
    assert!(altered.status.success(), "{}", stderr(&altered));
    pki.exits(&["audit", "verify"], &[], 1);

    let database = PgCluster::shared().create_database();
    let out = migrate(&pki, &database, &[]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    one_line(&said);
    assert!(
        said.contains("broken at entry 2") && said.contains("nothing was written"),
        "{said}"
    );
    assert_eq!(tables_in(&database), "");
}

/// The shard named in a certificate's CRL distribution point (`…/crl/citizens/N.crl`), and
/// its serial as openssl prints it.
fn shard_and_serial(cert: &Path) -> (String, String) {
    let cdp = openssl_x509(cert, &["-ext", "crlDistributionPoints"]);
    let shard = cdp
        .split("/crl/citizens/")
        .nth(1)
        .and_then(|rest| rest.split(".crl").next())
        .unwrap_or_else(|| panic!("no shard CDP: {cdp}"))
        .to_string();
    let serial = openssl_x509(cert, &["-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_string();
    (shard, serial)
}

fn openssl_x509(cert: &Path, extra: &[&str]) -> String {
    let mut args = vec!["x509", "-in", cert.to_str().unwrap(), "-noout"];
    args.extend_from_slice(extra);
    stdout(&run("openssl", &args))
}

/// The serials each shard CRL in `dir` lists, by shard.
fn listed_by_shard(dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut shards: Vec<(String, Vec<String>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let text = stdout(&run(
                "openssl",
                &[
                    "crl",
                    "-inform",
                    "DER",
                    "-in",
                    path.to_str().unwrap(),
                    "-noout",
                    "-text",
                ],
            ));
            let serials = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
                .map(str::to_string)
                .collect();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, serials)
        })
        .collect();
    shards.sort();
    shards
}

/// A CA whose CRL is partitioned moves with its partition: after the copy its new
/// certificates still name a shard, and the shards signed on the database list each revoked
/// certificate once, in the shard its distribution point names.
#[test]
fn a_partitioned_ca_moves_with_its_shards() {
    let pki = TestPki::new();
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_citizens_args(&["--crl-shards", "4"]));
    let certs: Vec<_> = (0..6)
        .map(|i| pki.issue_citizen("citizen-sign", &format!("citizen{i}")))
        .collect();
    let revoked: Vec<(String, String)> = certs[..2].iter().map(|c| shard_and_serial(c)).collect();
    for (_, serial) in &revoked {
        pki.revoke("citizens", serial, &["--reason", "keyCompromise"]);
    }
    pki.ok(&[
        "ca",
        "crl",
        "--ca",
        "citizens",
        "--der",
        "--out",
        pki.path("before").to_str().unwrap(),
    ]);

    let database = PgCluster::shared().create_database();
    migrate_ok(&pki, &database);
    let pki = moved_to(pki, &database);
    let after = pki.path("after");
    pki.ok(&[
        "ca",
        "crl",
        "--ca",
        "citizens",
        "--der",
        "--out",
        after.to_str().unwrap(),
    ]);
    let shards = listed_by_shard(&after);
    assert_eq!(shards.len(), 4, "{shards:?}");
    assert_eq!(shards, listed_by_shard(&pki.path("before")));
    for (shard, serial) in &revoked {
        let holders: Vec<&String> = shards
            .iter()
            .filter(|(_, listed)| listed.iter().any(|s| s.eq_ignore_ascii_case(serial)))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(holders, [shard], "{serial} in {shards:?}");
    }
    // Issued on the database: still partitioned.
    let new = pki.issue_citizen("citizen-sign", "after-the-move");
    let (shard, _) = shard_and_serial(&new);
    assert!(shard.parse::<u32>().unwrap() < 4, "{shard}");
}
