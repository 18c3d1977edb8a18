//! End-to-end tests of `imza ca ...` against the independent verifiers (openssl, pkilint,
//! sqlite3) the issue names.

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
    assert!(pki.ok(&["audit", "verify"]).contains("intact"));
}
