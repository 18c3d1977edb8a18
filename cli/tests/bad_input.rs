//! Bad input gets exit code 2, a one-line reason, and leaves the store exactly as it was
//! (compared as a full sqlite3 dump plus the key directory, before and after).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

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

    // A CSR whose signature does not verify: flip one bit in the signature (its last byte).
    let mut der = std::fs::read(&good).unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let forged = pki.path("forged.csr");
    std::fs::write(&forged, &der).unwrap();
    // A CSR whose subject was altered after signing (signature valid over other bytes).
    let text = std::fs::read(&good).unwrap();
    let pos = text.windows(7).position(|w| w == b"PNOAZ-5").unwrap();
    let mut altered = text.clone();
    altered[pos + 6] = b'6';
    let altered_path = pki.path("altered.csr");
    std::fs::write(&altered_path, &altered).unwrap();
    // A garbage file; truncated DER.
    let garbage = pki.path("garbage.csr");
    std::fs::write(&garbage, b"\x00\x01garbage\xff").unwrap();
    let truncated = pki.path("truncated.csr");
    std::fs::write(&truncated, &std::fs::read(&good).unwrap()[..40]).unwrap();

    // (CSR, profile, CA, extra arguments, what the refusal says)
    let issue_cases: [(&std::path::Path, &str, &str, &[&str], &str); 9] = [
        (
            &forged,
            "citizen-sign",
            "citizens",
            &[],
            "proof of possession",
        ),
        (
            &altered_path,
            "citizen-sign",
            "citizens",
            &[],
            "proof of possession",
        ),
        (&garbage, "citizen-sign", "citizens", &[], "invalid CSR"),
        (&truncated, "citizen-sign", "citizens", &[], "invalid CSR"),
        // An unknown profile, an unknown CA.
        (
            &good,
            "no-such-profile",
            "citizens",
            &[],
            "no profile named \"no-such-profile\"",
        ),
        (
            &good,
            "citizen-sign",
            "no-such-ca",
            &[],
            "no CA named \"no-such-ca\"",
        ),
        // A request the profile does not allow: a citizen subject for the org-seal profile,
        // a DNS name for a citizen certificate, a validity beyond the profile's maximum.
        (
            &good,
            "org-seal",
            "citizens",
            &[],
            "profile org-seal refuses",
        ),
        (
            &good,
            "citizen-sign",
            "citizens",
            &["--san", "dns:evil.example"],
            "not allowed",
        ),
        (
            &good,
            "citizen-sign",
            "citizens",
            &["--validity-days", "4000"],
            "maximum",
        ),
    ];
    for (csr, profile, ca, extra, reason) in issue_cases {
        let mut args = issue_csr_args(ca, profile, csr, &out);
        args.extend_from_slice(extra);
        refused(&pki, &args, &[], reason);
    }

    // A duplicate `ca init`, a bad subject, a bad CA name.
    let init_cases = [
        (init_citizens_args(&[]), "already exists"),
        (init_root_args(&[]), "already exists"),
        (
            vec![
                "ca",
                "init",
                "--name",
                "x",
                "--subject",
                "CN=X,C=Azerbaijan",
            ],
            "at most 2",
        ),
        (
            vec![
                "ca",
                "init",
                "--name",
                "Bad Name",
                "--subject",
                ROOT_SUBJECT,
            ],
            "invalid CA name",
        ),
    ];
    for (args, reason) in init_cases {
        refused(&pki, &args, &[], reason);
    }

    // Revoking an unknown serial, a malformed one, with a future invalidity date.
    refused(
        &pki,
        &revoke_args("citizens", "0123456789ABCDEF", &[]),
        &[],
        "no certificate with serial 0123456789ABCDEF",
    );
    refused(
        &pki,
        &revoke_args("citizens", "xyz", &[]),
        &[],
        "not hexadecimal",
    );
    pki.issue("citizens", "citizen-sign", &good, &out, &[]);
    let serial = pki.serials("citizens").pop().unwrap();
    refused(
        &pki,
        &revoke_args(
            "citizens",
            &serial,
            &["--invalidity-date", "2999-01-01T00:00:00Z"],
        ),
        &[],
        "future",
    );
    pki.revoke("citizens", &serial, &[]);
    refused(
        &pki,
        &revoke_args("citizens", &serial, &[]),
        &[],
        "already revoked",
    );

    // The output file exists: refused before anything is issued.
    refused(
        &pki,
        &issue_csr_args("citizens", "citizen-sign", &good, &out),
        &[],
        "already exists",
    );
}

#[test]
fn usage_errors_exit_2() {
    let pki = TestPki::new();
    pki.exits(&["ca", "issue", "--ca", "x"], &[], 2);
    let message = pki.exits(
        &[
            "ca",
            "init",
            "--name",
            "r",
            "--subject",
            "CN=R,O=X,C=AZ",
            "--key",
            "dsa-1024",
        ],
        &[],
        2,
    );
    assert!(message.contains("unknown key algorithm"), "{message}");
}

/// Files read whole are read no further than a limit: an endless `/dev/zero` and a 100 MB file
/// are refused at once (exit 2, "larger than N bytes") instead of being read into memory, and
/// nothing changes.
#[test]
fn endless_and_huge_inputs_are_refused_quickly_and_change_nothing() {
    use std::time::{Duration, Instant};
    let pki = TestPki::with_root_and_citizens();
    let huge = pki.path("huge.csr");
    // Sparse: 100 MB that take no disk space, and read as zeros.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(100 * 1024 * 1024)
        .unwrap();
    let out = pki.path("out.pem");
    let document = pki.path("doc.txt");
    std::fs::write(&document, b"a document").unwrap();
    let citizens = pki.ca_pem("citizens");
    let (doc, cert, sig) = (
        document.to_str().unwrap(),
        citizens.to_str().unwrap(),
        pki.path("doc.p7s"),
    );
    let csr_dir = pki.path("csrs");
    std::fs::create_dir(&csr_dir).unwrap();
    std::fs::write(
        csr_dir.join("a.csr"),
        std::fs::read(pki.csr("a", CITIZEN)).unwrap(),
    )
    .unwrap();
    std::fs::hard_link(&huge, csr_dir.join("b.csr")).unwrap();
    let batch_out = pki.path("batch");

    let csr_limit = "larger than 65536 bytes";
    let mut cases: Vec<(Vec<String>, &str)> = Vec::new();
    let owned = |args: Vec<&str>| args.into_iter().map(str::to_string).collect::<Vec<_>>();
    for endless in ["/dev/zero", huge.to_str().unwrap()] {
        cases.push((
            owned(issue_csr_args(
                "citizens",
                "citizen-sign",
                Path::new(endless),
                &out,
            )),
            csr_limit,
        ));
        cases.push((
            owned(sign_args(doc, sig.to_str().unwrap(), endless, cert, &[])),
            "larger than 65536 bytes",
        ));
        cases.push((
            owned(vec![
                "sign",
                "--in",
                doc,
                "--out",
                sig.to_str().unwrap(),
                "--p12",
                endless,
                "--p12-pass-env",
                "P12_PASS",
            ]),
            "larger than 1048576 bytes",
        ));
        cases.push((
            owned(vec![
                "ts",
                "verify",
                "--in",
                endless,
                "--digest-hex",
                "00",
                "--ca-file",
                cert,
            ]),
            "larger than 1048576 bytes",
        ));
    }
    cases.push((
        owned(issue_args(
            "citizens",
            "citizen-sign",
            &[
                "--csr-dir",
                csr_dir.to_str().unwrap(),
                "--out-dir",
                batch_out.to_str().unwrap(),
            ],
        )),
        csr_limit,
    ));
    for (args, reason) in cases {
        let started = Instant::now();
        refused(&pki, &args, &[("P12_PASS", "pass1234")], reason);
        // Normally a few milliseconds; reading 100 MB, or /dev/zero until memory runs out,
        // takes far longer.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "imza {args:?} took {:?}",
            started.elapsed()
        );
    }
    for written in [&out, &sig, &batch_out] {
        assert!(!written.exists(), "{} was written", written.display());
    }
}
