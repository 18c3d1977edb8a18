//! Every built-in profile's certificate, and the CRL, checked by pkilint (not written here):
//! `lint_pkix_cert -s ERROR` for each, the ETSI linter for the four ETSI profiles with the
//! certificate types the issue names, and `lint_crl` for the CRL. Findings at WARNING level
//! and above are collected into the test output so the README list can be checked.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;

/// (profile, CA, subject, SANs, ETSI certificate type)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
);

const CASES: &[Case] = &[
    (
        "citizen-sign",
        "citizens",
        "CN=Əliyev Günay Şəmsi oğlu,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-5ZK7T2Q,C=AZ",
        &["email:gunay@mygov.az"],
        Some("QCP-N-QSCD-NON-EIDAS-FINAL-CERTIFICATE"),
    ),
    (
        "citizen-auth",
        "citizens",
        "CN=Əliyev Günay Şəmsi oğlu,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-5ZK7T2Q,C=AZ",
        &[],
        Some("NCP-NATURAL-PERSON-CERTIFICATE"),
    ),
    (
        "device-auth",
        "citizens",
        "CN=Əliyev Günay Şəmsi oğlu,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-5ZK7T2Q,C=AZ",
        &[],
        Some("NCP-NATURAL-PERSON-CERTIFICATE"),
    ),
    (
        "org-seal",
        "citizens",
        "CN=ASAN Xidmət e-möhür,O=ASAN Xidmət,organizationIdentifier=NTRAZ-1403012345,C=AZ",
        &[],
        Some("NCP-LEGAL-PERSON-CERTIFICATE"),
    ),
    (
        "tsa",
        "citizens",
        "CN=AZ Time-Stamping Authority,O=Milli Sertifikat Xidmətləri Mərkəzi,C=AZ",
        &[],
        None,
    ),
    (
        "ocsp",
        "citizens",
        "CN=AZ Citizens CA OCSP Responder,O=Milli Sertifikat Xidmətləri Mərkəzi,C=AZ",
        &[],
        None,
    ),
    (
        "tls-server",
        "citizens",
        "CN=e-gov.az,O=Milli Sertifikat Xidmətləri Mərkəzi,C=AZ",
        &["dns:e-gov.az", "dns:www.e-gov.az"],
        None,
    ),
];

fn lint(tool: &str, args: &[&str], file: &Path) -> (bool, String) {
    let mut all: Vec<&str> = args.to_vec();
    let f = file.to_str().unwrap();
    all.push(f);
    let out = run(&pkilint(tool), &all);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    (out.status.success(), text)
}

#[test]
fn every_profile_passes_pkilint_and_the_crl_passes_lint_crl() {
    let pki = TestPki::with_root_and_citizens();
    let mut failures = Vec::new();
    for (profile, ca, subject, sans, etsi) in CASES {
        let cert = pki.path(&format!("{profile}.pem"));
        let p12 = pki.path(&format!("{profile}.p12"));
        let sans: Vec<&str> = sans.iter().flat_map(|san| ["--san", san]).collect();
        pki.issue_p12(
            (ca, profile, subject),
            &p12,
            &cert,
            ("P", "test-pass"),
            &sans,
        );
        let (ok, text) = lint("lint_pkix_cert", &["lint", "-s", "ERROR"], &cert);
        if !ok {
            failures.push(format!("lint_pkix_cert {profile}: {text}"));
        }
        if let Some(t) = etsi {
            let (ok, text) = lint("lint_etsi_cert", &["lint", "-s", "ERROR", "-t", t], &cert);
            if !ok {
                failures.push(format!("lint_etsi_cert -t {t} {profile}: {text}"));
            }
        }
        let (_, warnings) = lint("lint_pkix_cert", &["lint", "-s", "WARNING"], &cert);
        if !warnings.trim().is_empty() {
            println!("WARNING-level findings for {profile}:\n{warnings}");
        }
    }
    // The subordinate CA certificate (profile sub-ca) as the root issued it.
    let sub = pki.ca_pem("citizens");
    let (ok, text) = lint("lint_pkix_cert", &["lint", "-s", "ERROR"], &sub);
    if !ok {
        failures.push(format!("lint_pkix_cert sub-ca: {text}"));
    }
    let root = pki.ca_pem("root");
    let (ok, text) = lint("lint_pkix_cert", &["lint", "-s", "ERROR"], &root);
    if !ok {
        failures.push(format!("lint_pkix_cert root: {text}"));
    }

    // A CRL with entries carrying reasons and an invalidity date.
    let serial = pki.serials("citizens").remove(0);
    pki.revoke(
        "citizens",
        &serial,
        &[
            "--reason",
            "keyCompromise",
            "--invalidity-date",
            "2026-01-01T00:00:00Z",
        ],
    );
    let serial = pki.serials("citizens").remove(1);
    pki.revoke("citizens", &serial, &["--reason", "superseded"]);
    let crl = pki.path("citizens.crl");
    pki.crl("citizens", &crl);
    let (ok, text) = lint(
        "lint_crl",
        &["lint", "-s", "ERROR", "-t", "CRL", "-p", "PKIX"],
        &crl,
    );
    if !ok {
        failures.push(format!("lint_crl: {text}"));
    }
    let (_, warnings) = lint(
        "lint_crl",
        &["lint", "-s", "WARNING", "-t", "CRL", "-p", "PKIX"],
        &crl,
    );
    if !warnings.trim().is_empty() {
        println!("WARNING-level findings for the CRL:\n{warnings}");
    }
    assert!(
        failures.is_empty(),
        "pkilint findings:\n{}",
        failures.join("\n")
    );
}
