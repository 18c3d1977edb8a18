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

/// A small tmpfs mounted for one test, unmounted when dropped (also when the test fails and
/// unwinds).
struct Tmpfs {
    at: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs of `size` (e.g. `16m`), or None with the reason when mounting is refused (not
    /// root, no mount privilege in this container).
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let at = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs refused: {}", stderr(&out).trim()));
        }
        Ok(Tmpfs { at })
    }

    fn path(&self) -> &Path {
        self.at.path()
    }

    /// Fills the filesystem with `filler` (returned: removing it frees the space again),
    /// leaving about `free` bytes.
    fn fill_leaving(&self, free: u64) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0xA5u8; 64 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // The last pages: byte by byte what a 64 KiB write could not take.
        while let Ok(1) = file.write(&[0xA5]) {}
        let full = file.metadata().unwrap().len();
        file.set_len(full.saturating_sub(free)).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a process still holding a file there must not keep the mount forever.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.at.path())
            .status();
    }
}

/// Every writing command whose store is on a full disk, or an all but full one, either does
/// its work whole or fails with exit 3 and one line, changing nothing: the store, the audit
/// chain and the files written are as before. On SQLite the data directory is on the tmpfs
/// and with no space at all every command fails.
#[test]
fn sqlite_on_a_full_disk_every_writing_command_fails_cleanly_and_changes_nothing() {
    let disk = match Tmpfs::mount("24m") {
        Ok(disk) => disk,
        Err(why) => {
            println!("SKIPPED: needs a tmpfs to fill: {why}");
            return;
        }
    };
    let pki = TestPki {
        dir: tempfile::tempdir_in(disk.path()).unwrap(),
        postgres: None,
    };
    on_a_full_disk(&pki, &disk, None);
}

/// The same on PostgreSQL: a cluster of the test's own whose directory is on the tmpfs (the
/// data directory with the keys and the files written stays off it). PostgreSQL writes into
/// pages and WAL segments it already has, so with no space left some commands still succeed;
/// those that need new space fail cleanly. A server that stopped (a PANIC on a write it
/// cannot make) is started again once the space is freed.
#[test]
fn postgresql_on_a_full_disk_every_writing_command_fails_cleanly_and_changes_nothing() {
    if !imza_testdata::postgres::PgCluster::is_available() {
        println!("SKIPPED: PostgreSQL's server binaries are not installed");
        return;
    }
    // Big enough for initdb (about 40 MiB with one 16 MiB WAL segment) and some growth.
    let disk = match Tmpfs::mount("96m") {
        Ok(disk) => disk,
        Err(why) => {
            println!("SKIPPED: needs a tmpfs to fill: {why}");
            return;
        }
    };
    // The server runs as the postgres user: it must be able to enter the mount.
    let opened = Command::new("chmod")
        .arg("755")
        .arg(disk.path())
        .status()
        .unwrap();
    assert!(opened.success());
    let cluster: &'static imza_testdata::postgres::PgCluster = Box::leak(Box::new(
        imza_testdata::postgres::PgCluster::start_in(disk.path()),
    ));
    // Stopped before the tmpfs is unmounted (guards drop in reverse order), also on failure.
    let _stopped = StopsServer(cluster);
    let pki = TestPki::on_cluster(cluster);
    on_a_full_disk(&pki, &disk, Some(cluster));
}

/// Stops a test's own PostgreSQL server when dropped.
struct StopsServer(&'static imza_testdata::postgres::PgCluster);

impl Drop for StopsServer {
    fn drop(&mut self) {
        self.0.stop_server_now();
    }
}

/// Rounds of every writing command on `pki`, whose store is on `disk`, with the disk filled
/// leaving 0 to 320 KiB; `cluster` when the store is on PostgreSQL.
fn on_a_full_disk(
    pki: &TestPki,
    disk: &Tmpfs,
    cluster: Option<&imza_testdata::postgres::PgCluster>,
) {
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_citizens_args(&[]));
    // The inputs live off the full disk: only the commands' own writes meet it.
    let inputs = tempfile::tempdir().unwrap();
    let elsewhere = TestPki {
        dir: tempfile::tempdir_in(inputs.path()).unwrap(),
        postgres: None,
    };
    let batch = citizen_csrs(&elsewhere, "csrs", 20, 0);
    let one = elsewhere.csr("one", CITIZEN);
    let one = one.to_str().unwrap();
    // Certificates to revoke, one a round.
    for n in 0..6 {
        pki.issue(
            "citizens",
            "citizen-auth",
            Path::new(one),
            &pki.path(&format!("c{n}.pem")),
            &[],
        );
    }
    let mut serials = pki.serials("citizens");
    let sqlite = cluster.is_none();
    // The mobile signature and portal tables are made on first use, in a transaction of their
    // own: made here, so that a round compares rows, not the first use's new empty tables.
    pki.ok(&["mobile", "rp", "list"]);
    pki.portal_code("5ZK7T2Q");
    let out = pki.path("out");
    std::fs::create_dir(&out).unwrap();
    let at = |name: String| out.join(name).to_str().unwrap().to_string();
    // Each writing command, in round `r` (names unique per round).
    let writing = |r: usize, serial: &str| -> Vec<Vec<String>> {
        vec![
            strs(&issue_args(&batch, Path::new(&at(format!("batch-{r}")))))
                .iter()
                .map(|s| s.to_string())
                .collect(),
            words(&format!(
                "ca issue --ca citizens --profile citizen-auth --csr {one} --out {}",
                at(format!("single-{r}.pem"))
            )),
            words(&format!(
                "ca revoke --ca citizens --serial {serial} --reason superseded"
            )),
            words(&format!(
                "ca crl --ca citizens --out {}",
                at(format!("citizens-{r}.crl"))
            )),
            words(&format!(
                "ca init --name orgs-{r} --parent root --subject CN=Orgs{r},O=Test,C=AZ"
            )),
            words(&format!("tsa init --ca citizens --name unit-{r}")),
            words("ocsp init --ca citizens"),
            words(&format!("mobile rp add --name bank-{r}")),
            words("portal code issue --national-id 5ZK7T2Q"),
        ]
    };
    let mut wrong = Vec::new();
    let mut succeeded = BTreeSet::new();
    let mut failed_on_no_space = 0;
    // No space at all, then a little: enough to open the store, not always to write.
    for (round, slack_kib) in [0u64, 40, 80, 160, 320].into_iter().enumerate() {
        let serial = serials.pop().unwrap();
        for (i, args) in writing(round, &serial).iter().enumerate() {
            if succeeded.contains(&i) {
                continue;
            }
            // An empty write-ahead log, so that any write needs new space.
            if sqlite {
                assert_eq!(
                    query(pki, "PRAGMA wal_checkpoint(TRUNCATE)")
                        .split('|')
                        .next(),
                    Some("0")
                );
            }
            let before = pki.snapshot();
            let files_before = all_files(&out);
            let filler = disk.fill_leaving(slack_kib * 1024);
            let run = pki.imza(&strs(args));
            std::fs::remove_file(&filler).unwrap();
            if let Some(cluster) = cluster {
                if !cluster.is_running() {
                    println!("PostgreSQL stopped on the full disk: started again");
                    cluster.start_server();
                }
            }
            let said = stderr(&run);
            let what = format!("{slack_kib} KiB free: imza {}", args[..2].join(" "));
            println!("{what} -> {:?}: {}", run.status.code(), said.trim_end());
            match run.status.code() {
                Some(0) => {
                    succeeded.insert(i);
                    pki.ok(&["audit", "verify"]);
                }
                // A batch stores and audits its certificates first and then writes their
                // files: one stopped by the disk while writing keeps what it committed (the
                // message names how many lack a file), and every file written is whole and
                // in the store. Any other failure changes nothing.
                Some(3) if said.trim_end().lines().count() == 1 => {
                    failed_on_no_space += usize::from(slack_kib == 0);
                    let written: Vec<PathBuf> = all_files(&out)
                        .into_iter()
                        .filter(|f| !files_before.contains(f))
                        .collect();
                    if i == 0 {
                        assert_consistent(pki, &written);
                    } else if pki.snapshot() != before || !written.is_empty() {
                        wrong.push(format!("{what}: failed but changed the store or its files"));
                    }
                    pki.ok(&["audit", "verify"]);
                }
                code => wrong.push(format!("{what}: exit {code:?}: {said}")),
            }
            if round == 0 && sqlite && run.status.code() != Some(3) {
                wrong.push(format!(
                    "{what}: no space at all, yet exit {:?}",
                    run.status.code()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "on a full disk:\n{}", wrong.join("\n"));
    assert!(
        failed_on_no_space > 0,
        "no command failed with no space left: the disk was not full"
    );
    if sqlite {
        assert_eq!(query(pki, "PRAGMA integrity_check"), "ok");
    }
    // And the store works again.
    pki.issue(
        "citizens",
        "citizen-auth",
        Path::new(one),
        &pki.path("after.pem"),
        &[],
    );
    pki.ok(&["audit", "verify"]);
}

/// Every file under `dir`, in its subdirectories too.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in files(dir) {
        if path.is_dir() {
            found.extend(all_files(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}
