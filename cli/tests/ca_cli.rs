//! End-to-end tests of `imza ca ...` against the independent verifiers (openssl, pkilint,
//! sqlite3) the issue names.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn root_citizens_citizen_sign_chain_verifies_with_openssl() {
    let pki = TestPki::with_root_and_citizens();
    let out = pki.issue_citizen("citizen-sign", "citizen");
    let (root, citizens) = (pki.ca_pem("root"), pki.ca_pem("citizens"));
    let verify = openssl_verify(&root, &citizens, &out, None);
    assert!(
        verify.status.success(),
        "openssl verify: {}{}",
        stdout(&verify),
        stderr(&verify)
    );
    assert!(stdout(&verify).contains(": OK"));
}

#[test]
fn utf8_subject_round_trips_through_openssl() {
    let pki = TestPki::with_root_and_citizens();
    let out = pki.issue_citizen("citizen-auth", "citizen");
    let shown = run(
        "openssl",
        &[
            "x509",
            "-in",
            out.to_str().unwrap(),
            "-noout",
            "-subject",
            "-nameopt",
            "utf8",
        ],
    );
    let subject = stdout(&shown);
    assert!(subject.contains("CN=Əliyev Günay Şəmsi oğlu"), "{subject}");
    assert!(subject.contains("SN=Əliyev"), "{subject}");
    // The issuer's organisation, from --subject on the command line, survives too.
    let issuer = stdout(&run(
        "openssl",
        &[
            "x509",
            "-in",
            out.to_str().unwrap(),
            "-noout",
            "-issuer",
            "-nameopt",
            "utf8",
        ],
    ));
    assert!(
        issuer.contains("O=Milli Sertifikat Xidmətləri Mərkəzi"),
        "{issuer}"
    );
    // And imza stores and lists it the same way.
    let listed = pki.ok(&["ca", "list", "--ca", "citizens"]);
    assert!(listed.contains("CN=Əliyev Günay Şəmsi oğlu"), "{listed}");
}

#[test]
fn revoked_certificate_fails_openssl_crl_check_and_crl_number_increases() {
    let pki = TestPki::with_root_and_citizens();
    let cert = pki.issue_citizen("citizen-sign", "citizen");
    let (root, citizens) = (pki.ca_pem("root"), pki.ca_pem("citizens"));
    let crl1 = pki.path("c1.crl");
    pki.crl("citizens", &crl1);
    let check = |crl: &std::path::Path| openssl_verify(&root, &citizens, &cert, Some(crl));
    let before = check(&crl1);
    assert!(
        before.status.success(),
        "not yet revoked: {}{}",
        stdout(&before),
        stderr(&before)
    );

    let serial = pki.serials("citizens").pop().unwrap();
    pki.revoke(
        "citizens",
        &serial,
        &[
            "--reason",
            "keyCompromise",
            "--invalidity-date",
            "2026-01-02T03:04:05Z",
        ],
    );
    let crl2 = pki.path("c2.crl");
    pki.crl("citizens", &crl2);
    let after = check(&crl2);
    assert!(!after.status.success());
    assert!(
        stdout(&after).contains("certificate revoked")
            || stderr(&after).contains("certificate revoked"),
        "{}{}",
        stdout(&after),
        stderr(&after)
    );

    let number = |crl: &std::path::Path| openssl_show("crl", crl, false, &["-crlnumber"]);
    assert_eq!(number(&crl1).trim(), "crlNumber=0x01");
    assert_eq!(number(&crl2).trim(), "crlNumber=0x02");
    let text = openssl_show("crl", &crl2, false, &["-text"]);
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("Invalidity Date"), "{text}");
    assert!(text.contains(&serial), "{text}");

    let shown: serde_json::Value = serde_json::from_str(&pki.ok(&[
        "ca", "show", "--ca", "citizens", "--serial", &serial, "--json",
    ]))
    .unwrap();
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["reason"], "keyCompromise");
    assert_eq!(shown["invalidity_date"], "2026-01-02T03:04:05Z");
    let revoked = pki.ok(&[
        "ca", "list", "--ca", "citizens", "--status", "revoked", "--json",
    ]);
    assert!(revoked.contains(&serial));
    assert_eq!(
        pki.ok(&["ca", "list", "--ca", "citizens", "--status", "valid", "--json"])
            .trim(),
        "[]"
    );
}

#[test]
fn tampered_audit_row_fails_verification_and_is_named() {
    let pki = TestPki::with_root_and_citizens();
    pki.issue_citizen("citizen-sign", "citizen");
    let serial = pki.serials("citizens").pop().unwrap();
    pki.revoke("citizens", &serial, &[]);
    let intact = pki.ok(&["audit", "verify"]);
    assert!(intact.contains("4 entries"), "{intact}");

    let db = pki.data_dir().join("imza.db");
    let tamper = run("sqlite3", &[db.to_str().unwrap(), "UPDATE audit SET details = replace(details, 'citizen-sign', 'citizen-auth') WHERE seq = 3"]);
    assert!(tamper.status.success(), "{}", stderr(&tamper));
    let out = pki.imza(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("entry 3"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
}

#[test]
fn batch_issues_every_csr_in_a_directory() {
    let pki = TestPki::with_root_and_citizens();
    let dir = pki.path("csrs");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..25 {
        let subject = imza_testdata::csr::citizen_subject(i);
        let pairs: Vec<(&str, &str)> = subject.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let key = imza_testdata::csr::p256_key();
        std::fs::write(
            dir.join(format!("{i:03}.csr")),
            imza_testdata::csr::csr_der(&key, &pairs),
        )
        .unwrap();
    }
    let batch = |out: &std::path::Path, code: i32| {
        let args = issue_args(
            "citizens",
            "citizen-sign",
            &[
                "--csr-dir",
                dir.to_str().unwrap(),
                "--out-dir",
                out.to_str().unwrap(),
            ],
        );
        pki.exits(&args, &[], code)
    };
    let out = pki.path("certs");
    batch(&out, 0);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 25);
    assert_eq!(pki.serials("citizens").len(), 25);
    let (root, citizens) = (pki.ca_pem("root"), pki.ca_pem("citizens"));
    let verify = openssl_verify(&root, &citizens, &out.join("007.pem"), None);
    assert!(verify.status.success());

    // One bad CSR refuses the whole batch: nothing more is issued or written.
    let before = pki.snapshot();
    std::fs::write(dir.join("999.csr"), b"not a CSR").unwrap();
    let out2 = pki.path("certs2");
    let refused = batch(&out2, 2);
    assert!(refused.contains("999.csr"), "{refused}");
    assert_eq!(pki.snapshot(), before);
    assert_eq!(std::fs::read_dir(&out2).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn new_key_is_delivered_in_a_pkcs12_that_openssl_opens() {
    let pki = TestPki::with_root_and_citizens();
    let (cert, p12) = (pki.path("seal.pem"), pki.path("seal.p12"));
    pki.issue_p12(
        (
            "citizens",
            "citizen-auth",
            "CN=Həsənov Elvin,givenName=Elvin,SN=Həsənov,serialNumber=PNOAZ-7QW3E4R,C=AZ",
        ),
        &p12,
        &cert,
        ("P12_PASS", "s3cret-pass"),
        &[],
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&p12).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let opened = run(
        "openssl",
        &[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-passin",
            "pass:s3cret-pass",
            "-nokeys",
            "-clcerts",
        ],
    );
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert!(stdout(&opened).contains("BEGIN CERTIFICATE"));
    let wrong = run(
        "openssl",
        &[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-passin",
            "pass:wrong",
            "-nokeys",
        ],
    );
    assert!(!wrong.status.success());
}

#[test]
fn software_ca_keys_are_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let pki = TestPki::with_root_and_citizens();
    for name in ["root", "citizens"] {
        let key = pki.data_dir().join("keys").join(format!("{name}.key.pem"));
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        std::fs::metadata(pki.data_dir().join("keys"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}

#[test]
fn demo_builds_a_verifiable_pki_and_is_idempotent() {
    let pki = TestPki::new();
    pki.ok(&["demo"]);
    let first = pki.snapshot();
    let again = pki.ok(&["demo"]);
    assert!(again.contains("nothing changed"), "{again}");
    assert_eq!(pki.snapshot(), first);
    let demo = pki.data_dir().join("demo");
    let verify = |cert: &str| {
        openssl_verify(
            &demo.join("ca/root.pem"),
            &demo.join("ca/citizens.pem"),
            &demo.join(cert),
            Some(&demo.join("crl/citizens.crl")),
        )
    };
    let ok = verify("certs/gunay-sign.pem");
    assert!(ok.status.success(), "{}", stdout(&ok));
    let revoked = verify("certs/rashad-sign-revoked.pem");
    assert!(!revoked.status.success());
    // imza's own validator, every strict check on, accepts what the demo CAs issued.
    let path = |p: &str| demo.join(p).to_str().expect("utf-8 path").to_string();
    for (cert, purpose) in [
        ("certs/gunay-sign.pem", "sign"),
        ("certs/gunay-auth.pem", "auth"),
        ("certs/asan-seal.pem", "sign"),
        ("certs/e-gov-tls.pem", "server"),
        ("certs/tsa.pem", "any"),
    ] {
        let mut args = vec![
            "cert",
            "verify",
            &path(cert),
            "--trust",
            &path("ca/root.pem"),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        for ca in ["citizens", "organisations", "infrastructure"] {
            args.extend(["--untrusted".into(), path(&format!("ca/{ca}.pem"))]);
            args.extend(["--crl".into(), path(&format!("crl/{ca}.crl"))]);
        }
        args.extend(["--crl".into(), path("crl/root.crl")]);
        args.extend(["--purpose".into(), purpose.into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(pki.ok(&args).starts_with("VALID"), "{cert}");
    }
    assert!(pki.ok(&["audit", "verify"]).contains("intact"));
}

/// `count` CSRs for test citizens 0.. in `dir` (created), named `00000.csr`, `00001.csr`, ...
fn write_csrs(dir: &std::path::Path, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let subject = imza_testdata::csr::citizen_subject(i);
        let pairs: Vec<(&str, &str)> = subject.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let key = imza_testdata::csr::p256_key();
        std::fs::write(
            dir.join(format!("{i:05}.csr")),
            imza_testdata::csr::csr_der(&key, &pairs),
        )
        .unwrap();
    }
}

/// `imza ca issue --ca citizens --profile citizen-sign --csr-dir CSRS --out-dir OUT`.
fn batch_args<'a>(csrs: &'a std::path::Path, out: &'a std::path::Path) -> Vec<&'a str> {
    issue_args(
        "citizens",
        "citizen-sign",
        &[
            "--csr-dir",
            csrs.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
        ],
    )
}

/// Every serial the citizens CA issued, as unpadded upper-case hex.
fn all_serials(pki: &TestPki) -> std::collections::HashSet<String> {
    let list: serde_json::Value = serde_json::from_str(&pki.ok(&[
        "ca", "list", "--ca", "citizens", "--limit", "1000000", "--json",
    ]))
    .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| unpadded(c["serial"].as_str().unwrap()))
        .collect()
}

fn unpadded(hex: &str) -> String {
    hex.replace(':', "")
        .to_uppercase()
        .trim_start_matches('0')
        .to_string()
}

/// What a batch left in `dir`: the certificate files under their final names, each checked to
/// be a whole certificate (returned as serials), and the names of any other files.
fn batch_output(dir: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let (mut serials, mut others) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".pem") && !name.starts_with('.') {
            let bytes = std::fs::read(entry.path()).unwrap();
            let cert = openssl::x509::X509::from_pem(&bytes)
                .unwrap_or_else(|e| panic!("{name} ({} bytes) is not whole: {e}", bytes.len()));
            let serial = cert.serial_number().to_bn().unwrap().to_hex_str().unwrap();
            serials.push(unpadded(&serial));
        } else {
            others.push(name);
        }
    }
    (serials, others)
}

#[test]
fn a_batch_with_two_csrs_for_one_output_file_is_refused_before_anything_is_issued() {
    let pki = TestPki::with_root_and_citizens();
    let csrs = pki.path("csrs");
    write_csrs(&csrs, 3);
    std::fs::copy(csrs.join("00001.csr"), csrs.join("00001.der")).unwrap();
    let before = pki.snapshot();
    let out = pki.path("out");
    let said = pki.exits(&batch_args(&csrs, &out), &[], 2);
    assert!(said.contains("would both be written to"), "{said}");
    assert_eq!(said.trim_end().lines().count(), 1, "{said}");
    assert_eq!(pki.snapshot(), before);
    assert!(!out.exists());
}

/// How to get a private mount namespace for a tmpfs: as root `unshare --mount`, else with a
/// user namespace; `None` when this system allows neither.
fn mount_namespace() -> Option<Vec<&'static str>> {
    [vec!["--mount"], vec!["--map-root-user", "--mount"]]
        .into_iter()
        .find(|flags| {
            std::process::Command::new("unshare")
                .args(flags)
                .args(["sh", "-c", "mount -t tmpfs -o size=4k none /mnt"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// A batch whose output directory fills up (a 16 KiB tmpfs: room for a few certificate files)
/// stops after its first chunk of 500: it says how many certificates the store has and how
/// many files were written, exits 3 (the system failed, not the input), and no file under a
/// final name is short or empty.
#[test]
fn a_batch_that_runs_out_of_disk_space_says_what_was_committed_and_leaves_no_partial_file() {
    let Some(namespace) = mount_namespace() else {
        eprintln!("SKIPPED: neither `unshare --mount` nor a user namespace is allowed here");
        return;
    };
    let pki = TestPki::with_root_and_citizens();
    let csrs = pki.path("csrs");
    write_csrs(&csrs, 600);
    let (out, saved) = (pki.path("out"), pki.path("saved"));
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(&saved).unwrap();
    // The tmpfs lives and dies with the namespace: what the batch left in it is copied out.
    let script = r#"mount -t tmpfs -o size=16k imza-full "$OUT" || exit 99
"$@"; code=$?
cp -a "$OUT"/. "$SAVED"/ && exit $code"#;
    let run = std::process::Command::new("unshare")
        .args(&namespace)
        .args([
            "sh",
            "-c",
            script,
            "sh",
            env!("CARGO_BIN_EXE_imza"),
            "--data-dir",
        ])
        .arg(pki.data_dir())
        .args(batch_args(&csrs, &out))
        .env("OUT", &out)
        .env("SAVED", &saved)
        .output()
        .unwrap();
    let said = stderr(&run);
    assert_eq!(run.status.code(), Some(3), "{said}");
    assert_eq!(said.trim_end().lines().count(), 1, "{said}");
    assert!(said.contains("No space left on device"), "{said}");
    let counts = batch_counts(&said);
    let (committed, total, written) = counts.unwrap_or_else(|| panic!("no counts in {said}"));
    assert_eq!((committed, total), (500, 600), "{said}");
    assert!(written < committed, "{said}");
    assert!(said.contains("imza ca list --ca citizens"), "{said}");

    let store = all_serials(&pki);
    assert_eq!(store.len(), 500, "the second chunk was issued");
    let (files, others) = batch_output(&saved);
    assert_eq!(files.len(), written, "{said}");
    assert!(others.is_empty(), "left behind: {others:?}");
    for serial in &files {
        assert!(
            store.contains(serial),
            "{serial} is written but not in the store"
        );
    }
}

/// (committed, total, written) from "... N of M certificates committed to the store, W
/// written to ...".
fn batch_counts(said: &str) -> Option<(usize, usize, usize)> {
    let rest = said.split("batch stopped: ").nth(1)?;
    let words: Vec<&str> = rest.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    // N of M certificates committed to the store W written to
    match words.as_slice() {
        [n, "of", m, "certificates", "committed", "to", "the", "store", w, "written", ..] => {
            Some((n.parse().ok()?, m.parse().ok()?, w.parse().ok()?))
        }
        _ => None,
    }
}

/// A batch killed (SIGKILL) while it writes leaves only whole certificates under final names,
/// each of them in the store; a file it was writing is at most a clearly named temporary one.
#[test]
fn a_batch_killed_part_way_leaves_only_whole_certificate_files() {
    use std::time::{Duration, Instant};
    let pki = TestPki::with_root_and_citizens();
    let csrs = pki.path("csrs");
    let total = 3000;
    write_csrs(&csrs, total);
    let out = pki.path("out");
    let mut batch = std::process::Command::new(env!("CARGO_BIN_EXE_imza"))
        .arg("--data-dir")
        .arg(pki.data_dir())
        .args(batch_args(&csrs, &out))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let first_written = std::fs::read_dir(&out).is_ok_and(|mut d| {
            d.any(|e| {
                e.is_ok_and(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.ends_with(".pem") && !name.starts_with('.')
                })
            })
        });
        if first_written {
            break;
        }
        assert!(batch.try_wait().unwrap().is_none(), "the batch ended first");
        assert!(Instant::now() < deadline, "no file was written");
        std::thread::sleep(Duration::from_millis(1));
    }
    batch.kill().unwrap();
    batch.wait().unwrap();

    let (files, others) = batch_output(&out);
    eprintln!(
        "killed with {} certificate files and {} other files written",
        files.len(),
        others.len()
    );
    assert!(
        !files.is_empty() && files.len() < total,
        "{} files",
        files.len()
    );
    for name in &others {
        // .00042.pem.XXXXXX.partial
        let temporary =
            name.starts_with('.') && name.contains(".pem.") && name.ends_with(".partial");
        assert!(temporary, "unexpected file {name}");
    }
    let store = all_serials(&pki);
    for serial in &files {
        assert!(
            store.contains(serial),
            "{serial} is written but not in the store"
        );
    }
}

/// An output file is written through a temporary twin; a name near the 255-byte limit still
/// fits (the twin's name is cut), and nothing but the certificate is left.
#[test]
fn a_certificate_with_a_name_near_the_length_limit_is_written_whole() {
    let pki = TestPki::with_root_and_citizens();
    let csr = pki.csr("long", CITIZEN);
    let dir = pki.path("out");
    std::fs::create_dir(&dir).unwrap();
    let out = dir.join(format!("{}.pem", "c".repeat(250)));
    pki.issue("citizens", "citizen-sign", &csr, &out, &[]);
    let (files, others) = batch_output(&dir);
    assert_eq!((files.len(), others.len()), (1, 0), "{others:?}");
}

/// The CRL distribution point URL a certificate (PEM) names.
fn crl_url(cert: &std::path::Path) -> String {
    let text = openssl_show("x509", cert, false, &["-ext", "crlDistributionPoints"]);
    let urls: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("URI:"))
        .collect();
    assert_eq!(urls.len(), 1, "{text}");
    urls[0].to_string()
}

/// A CA of 4 CRL shards: each certificate names its shard's CRL, which openssl, imza's own
/// validator and pkilint accept; the CRL of another shard is refused as out of scope by both
/// verifiers, never taken as "good".
#[test]
fn a_partitioned_cas_certificates_are_checked_against_their_own_shard_crl() {
    let pki = TestPki::with_root_at(BASE_URL);
    pki.ok(&init_citizens_args(&["--crl-shards", "4"]));
    // Certificates until two shards have one each (serials are random: one in four per try).
    let mut by_shard: std::collections::BTreeMap<String, std::path::PathBuf> = Default::default();
    for i in 0..64 {
        if by_shard.len() == 2 {
            break;
        }
        let cert = pki.issue_citizen("citizen-sign", &format!("c{i}"));
        let url = crl_url(&cert);
        let shard = url
            .strip_prefix(&format!("{BASE_URL}/crl/citizens/"))
            .and_then(|s| s.strip_suffix(".crl"))
            .unwrap_or_else(|| panic!("not a shard URL: {url}"))
            .to_string();
        by_shard.entry(shard).or_insert(cert);
    }
    let [(revoked_shard, revoked), (good_shard, good)]: [(String, std::path::PathBuf); 2] =
        by_shard.into_iter().collect::<Vec<_>>().try_into().unwrap();
    let serial = |cert: &std::path::Path| {
        openssl_show("x509", cert, false, &["-serial"])
            .trim()
            .trim_start_matches("serial=")
            .to_string()
    };
    pki.revoke(
        "citizens",
        &serial(&revoked),
        &["--reason", "keyCompromise"],
    );
    let dir = pki.path("shards");
    pki.crl("citizens", &dir);
    let root_crl = pki.path("root.crl");
    pki.crl("root", &root_crl);
    let shard_file = |shard: &str| dir.join(format!("{shard}.crl"));
    for shard in 0..4 {
        let crl = shard_file(&shard.to_string());
        let text = openssl_show("crl", &crl, false, &["-text"]);
        assert!(
            text.contains(&format!("URI:{BASE_URL}/crl/citizens/{shard}.crl")),
            "{text}"
        );
        assert_eq!(
            text.contains(&serial(&revoked)),
            shard.to_string() == revoked_shard,
            "shard {shard}: {text}"
        );
    }

    // openssl -crl_check: OK / revoked with the certificate's own shard CRL ...
    let (root, citizens) = (pki.ca_pem("root"), pki.ca_pem("citizens"));
    let said = |out: &std::process::Output| format!("{}{}", stdout(out), stderr(out));
    let ok = openssl_verify(&root, &citizens, &good, Some(&shard_file(&good_shard)));
    assert!(ok.status.success(), "{}", said(&ok));
    let out = openssl_verify(
        &root,
        &citizens,
        &revoked,
        Some(&shard_file(&revoked_shard)),
    );
    assert!(!out.status.success());
    assert!(said(&out).contains("certificate revoked"), "{}", said(&out));
    // ... and no verdict of good from another shard's CRL: openssl finds it out of scope.
    let out = openssl_verify(&root, &citizens, &revoked, Some(&shard_file(&good_shard)));
    assert!(!out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("different CRL scope"), "{}", said(&out));

    // imza's own validator, likewise.
    let verify = |cert: &std::path::Path, shard: &str| {
        pki.imza(&[
            "cert",
            "verify",
            cert.to_str().unwrap(),
            "--trust",
            root.to_str().unwrap(),
            "--untrusted",
            citizens.to_str().unwrap(),
            "--crl",
            shard_file(shard).to_str().unwrap(),
            "--crl",
            root_crl.to_str().unwrap(),
        ])
    };
    let out = verify(&good, &good_shard);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let out = verify(&revoked, &revoked_shard);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("was revoked"), "{}", said(&out));
    let out = verify(&revoked, &good_shard);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        said(&out).contains("is for another distribution point"),
        "{}",
        said(&out)
    );

    // pkilint: the shard CRL, and the certificate naming it.
    let lint = |tool: &str, args: &[&str], file: &std::path::Path| {
        let mut all = args.to_vec();
        all.push(file.to_str().unwrap());
        let out = run(&pkilint(tool), &all);
        assert!(
            out.status.success() && stdout(&out).trim().is_empty(),
            "{tool} {}: {}",
            file.display(),
            said(&out)
        );
    };
    for shard in [&revoked_shard, &good_shard] {
        lint(
            "lint_crl",
            &["lint", "-s", "WARNING", "-t", "CRL", "-p", "PKIX"],
            &shard_file(shard),
        );
    }
    lint("lint_pkix_cert", &["lint", "-s", "ERROR"], &revoked);
    lint(
        "lint_etsi_cert",
        &[
            "lint",
            "-s",
            "ERROR",
            "-t",
            "QCP-N-QSCD-NON-EIDAS-FINAL-CERTIFICATE",
        ],
        &revoked,
    );
}

#[test]
fn crl_shards_are_for_a_subordinate_ca_and_go_to_a_directory() {
    let pki = TestPki::new();
    let said = pki.exits(
        &init_root_args(&["--crl-shards", "8", "--base-url", BASE_URL]),
        &[],
        2,
    );
    assert!(said.contains("--parent"), "{said}");
    pki.ok(&init_root_args(&["--base-url", BASE_URL]));
    let said = pki.exits(&init_citizens_args(&["--crl-shards", "5000"]), &[], 2);
    assert!(said.contains("5000"), "{said}");
    pki.ok(&init_citizens_args(&["--crl-shards", "3"]));
    let listed: serde_json::Value =
        serde_json::from_str(&pki.ok(&["ca", "list", "--json"])).unwrap();
    assert_eq!(listed[1]["crl_shards"], 3);
    // A file where the shards' directory should be is refused, and left alone.
    let file = pki.path("in-the-way");
    std::fs::write(&file, b"keep").unwrap();
    let said = pki.exits(
        &[
            "ca",
            "crl",
            "--ca",
            "citizens",
            "--out",
            file.to_str().unwrap(),
        ],
        &[],
        2,
    );
    assert!(said.contains("directory"), "{said}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    let dir = pki.path("shards");
    pki.crl("citizens", &dir);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["0.crl", "1.crl", "2.crl"]);
}

/// RFC 5280 §4.2.1.3 and the CA/Browser Forum TLS baseline requirements §7.1.2.7.11: a TLS
/// server certificate for an RSA key carries keyEncipherment (TLS 1.2 RSA key exchange; NSS
/// refuses the certificate without it), one for an EC key digitalSignature alone.
#[test]
fn tls_server_rsa_key_gets_key_encipherment_and_ec_key_does_not() {
    let pki = TestPki::with_root_and_citizens();
    for (key, newkey) in [("rsa", "rsa:2048"), ("ec", "ec")] {
        let (key_path, csr, cert) = (
            pki.path(&format!("{key}.key")),
            pki.path(&format!("{key}.csr")),
            pki.path(&format!("{key}.pem")),
        );
        let mut args = vec!["req", "-new", "-newkey", newkey];
        if key == "ec" {
            args.extend(["-pkeyopt", "ec_paramgen_curve:P-256"]);
        }
        args.extend([
            "-nodes",
            "-keyout",
            key_path.to_str().expect("path"),
            "-subj",
            "/CN=e-gov.az/O=Test State/C=AZ",
            "-addext",
            "subjectAltName=DNS:e-gov.az",
            "-outform",
            "DER",
            "-out",
            csr.to_str().expect("path"),
        ]);
        let out = run("openssl", &args);
        assert!(out.status.success(), "{}", stderr(&out));
        pki.issue("citizens", "tls-server", &csr, &cert, &[]);
        let text = openssl_show("x509", &cert, false, &["-ext", "keyUsage"]);
        let usage = text.lines().last().unwrap_or_default().trim().to_string();
        let expected = match key {
            "rsa" => "Digital Signature, Key Encipherment",
            _ => "Digital Signature",
        };
        assert_eq!(usage, expected, "{key} key: {text}");

        let lint = run(
            &pkilint("lint_cabf_serverauth_cert"),
            &[
                "lint",
                "-t",
                "OV-FINAL-CERTIFICATE",
                "-s",
                "WARNING",
                cert.to_str().expect("path"),
            ],
        );
        let findings = format!("{}{}", stdout(&lint), stderr(&lint));
        assert!(
            !findings.to_ascii_lowercase().contains("key_usage"),
            "{key} key: CA/B keyUsage findings:\n{findings}"
        );
    }
}

/// The PIN of the CA key that signs has one flag name everywhere, `--ca-pin-env` (issue 17
/// §5); the old spellings `--pin-env` (ca issue, crl) and `--parent-pin-env` (ca
/// init) still work for one release, hidden from --help.
#[test]
fn the_signing_ca_pin_has_one_flag_name_and_the_old_ones_still_work() {
    let pki = TestPki::with_root_and_citizens();
    for command in [
        &["ca", "issue", "--help"][..],
        &["ca", "crl", "--help"],
        &["ca", "init", "--help"],
        &["tsa", "init", "--help"],
        &["ocsp", "certify", "--help"],
        &["card", "enroll", "--help"],
        &["mobile", "register", "--help"],
    ] {
        let help = pki.ok(command);
        assert!(help.contains("--ca-pin-env"), "{command:?}: {help}");
        // The old names are only mentioned (deprecated), never listed as options.
        assert!(!help.contains("--parent-pin-env <"), "{command:?}: {help}");
        // `--pin-env` is the holder's PIN (card, phone), never the CA's.
        if command[0] == "ca" {
            assert!(!help.contains("--pin-env <"), "{command:?}: {help}");
        }
    }
    // Software keys need no PIN: the variables are accepted and not read.
    for (n, flag) in ["--pin-env", "--ca-pin-env"].into_iter().enumerate() {
        let crl = pki.path(&format!("{n}.crl"));
        let args = format!("ca crl --ca citizens --out {} {flag} V", crl.display());
        pki.ok(&args.split(' ').collect::<Vec<_>>());
    }
    for (name, flag) in [("orgs", "--parent-pin-env"), ("orgs2", "--ca-pin-env")] {
        let subject = format!("CN={name},O=Test,C=AZ");
        pki.ok(&init_under_root_args(name, &subject, &[flag, "V"]));
    }
}
