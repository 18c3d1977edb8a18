//! Bad input gets exit code 2, a one-line reason, and leaves the store exactly as it was
//! (compared as a full sqlite3 dump plus the key directory, before and after).

mod common;

use common::*;

fn refused<S: AsRef<str>>(pki: &TestPki, args: &[S], env: &[(&str, &str)], reason: &str) {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let args = args.as_slice();
    let before = pki.snapshot();
    let out = pki.imza_env(args, env);
    let message = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "imza {args:?}: expected exit 2, got {:?}: {message}",
        out.status.code()
    );
    assert_eq!(
        message.trim_end().lines().count(),
        1,
        "one line expected: {message}"
    );
    assert!(
        message.contains(reason),
        "imza {args:?}: {message:?} should mention {reason:?}"
    );
    assert!(!message.contains("panicked"), "{message}");
    assert_eq!(pki.snapshot(), before, "imza {args:?} changed the store");
}

#[test]
fn bad_input_changes_nothing_and_exits_2() {
    let pki = TestPki::with_root_and_citizens();
    let good = pki.csr("good", CITIZEN);
    let out = pki.path("out.pem");
    let issue = |csr: &str, profile: &str, ca: &str| -> Vec<String> {
        [
            "ca",
            "issue",
            "--ca",
            ca,
            "--profile",
            profile,
            "--csr",
            csr,
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };

    // A CSR whose signature does not verify: flip one bit in the signature (its last byte).
    let mut der = std::fs::read(&good).unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let forged = pki.path("forged.csr");
    std::fs::write(&forged, &der).unwrap();
    let v = issue(forged.to_str().unwrap(), "citizen-sign", "citizens");
    refused(&pki, &v, &[], "proof of possession");

    // A CSR whose subject was altered after signing (signature valid over other bytes).
    let text = std::fs::read(&good).unwrap();
    let pos = text.windows(7).position(|w| w == b"PNOAZ-5").unwrap();
    let mut altered = text.clone();
    altered[pos + 6] = b'6';
    let altered_path = pki.path("altered.csr");
    std::fs::write(&altered_path, &altered).unwrap();
    let v = issue(altered_path.to_str().unwrap(), "citizen-sign", "citizens");
    refused(&pki, &v, &[], "proof of possession");

    // A garbage file.
    let garbage = pki.path("garbage.csr");
    std::fs::write(&garbage, b"\x00\x01garbage\xff").unwrap();
    let v = issue(garbage.to_str().unwrap(), "citizen-sign", "citizens");
    refused(&pki, &v, &[], "invalid CSR");
    // Truncated DER.
    let truncated = pki.path("truncated.csr");
    std::fs::write(&truncated, &std::fs::read(&good).unwrap()[..40]).unwrap();
    let v = issue(truncated.to_str().unwrap(), "citizen-sign", "citizens");
    refused(&pki, &v, &[], "invalid CSR");

    // An unknown profile, an unknown CA.
    let v = issue(good.to_str().unwrap(), "no-such-profile", "citizens");
    refused(&pki, &v, &[], "no profile named \"no-such-profile\"");
    let v = issue(good.to_str().unwrap(), "citizen-sign", "no-such-ca");
    refused(&pki, &v, &[], "no CA named \"no-such-ca\"");

    // A request the profile does not allow: a citizen subject for the org-seal profile,
    // a DNS name for a citizen certificate, a validity beyond the profile's maximum.
    let v = issue(good.to_str().unwrap(), "org-seal", "citizens");
    refused(&pki, &v, &[], "profile org-seal refuses");
    let mut v = issue(good.to_str().unwrap(), "citizen-sign", "citizens");
    v.extend(["--san".into(), "dns:evil.example".into()]);
    refused(&pki, &v, &[], "not allowed");
    let mut v = issue(good.to_str().unwrap(), "citizen-sign", "citizens");
    v.extend(["--validity-days".into(), "4000".into()]);
    refused(&pki, &v, &[], "maximum");

    // A duplicate `ca init`.
    refused(
        &pki,
        &[
            "ca",
            "init",
            "--name",
            "citizens",
            "--parent",
            "root",
            "--subject",
            CITIZENS_SUBJECT,
        ],
        &[],
        "already exists",
    );
    refused(
        &pki,
        &["ca", "init", "--name", "root", "--subject", ROOT_SUBJECT],
        &[],
        "already exists",
    );
    // A bad subject, a bad CA name.
    refused(
        &pki,
        &[
            "ca",
            "init",
            "--name",
            "x",
            "--subject",
            "CN=X,C=Azerbaijan",
        ],
        &[],
        "at most 2",
    );
    refused(
        &pki,
        &[
            "ca",
            "init",
            "--name",
            "Bad Name",
            "--subject",
            ROOT_SUBJECT,
        ],
        &[],
        "invalid CA name",
    );

    // Revoking an unknown serial, a malformed one, with a future invalidity date.
    refused(
        &pki,
        &[
            "ca",
            "revoke",
            "--ca",
            "citizens",
            "--serial",
            "0123456789ABCDEF",
        ],
        &[],
        "no certificate with serial 0123456789ABCDEF",
    );
    refused(
        &pki,
        &["ca", "revoke", "--ca", "citizens", "--serial", "xyz"],
        &[],
        "not hexadecimal",
    );
    pki.issue("citizens", "citizen-sign", &good, &out, &[]);
    let serial = pki.serials("citizens").pop().unwrap();
    refused(
        &pki,
        &[
            "ca",
            "revoke",
            "--ca",
            "citizens",
            "--serial",
            &serial,
            "--invalidity-date",
            "2999-01-01T00:00:00Z",
        ],
        &[],
        "future",
    );
    pki.revoke("citizens", &serial, &[]);
    refused(
        &pki,
        &["ca", "revoke", "--ca", "citizens", "--serial", &serial],
        &[],
        "already revoked",
    );

    // The output file exists: refused before anything is issued.
    let v = issue(good.to_str().unwrap(), "citizen-sign", "citizens");
    refused(&pki, &v, &[], "already exists");
}

#[test]
fn usage_errors_exit_2() {
    let pki = TestPki::new();
    let out = pki.imza(&["ca", "issue", "--ca", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = pki.imza(&[
        "ca",
        "init",
        "--name",
        "r",
        "--subject",
        "CN=R,O=X,C=AZ",
        "--key",
        "dsa-1024",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown key algorithm"));
}
