//! CAs whose keys live in SoftHSM2, end to end: the keys are generated on the token, the chain
//! verifies with openssl exactly like a software CA's, and a wrong PIN changes nothing.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use imza_testdata::softhsm::SoftHsm;

const USER_PIN: &str = "4321";

fn hsm_pki() -> (TestPki, SoftHsm) {
    let hsm = SoftHsm::new();
    hsm.init_token("AZ Root", "12345678", USER_PIN);
    hsm.init_token("AZ Citizens", "12345678", USER_PIN);
    (TestPki::new(), hsm)
}

fn env(hsm: &SoftHsm, pin: &'static str) -> Vec<(&'static str, String)> {
    vec![
        (
            "SOFTHSM2_CONF",
            hsm.conf_path().to_string_lossy().into_owned(),
        ),
        ("ROOT_PIN", pin.to_string()),
        ("CITIZENS_PIN", pin.to_string()),
    ]
}

fn with_env<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn softhsm_root_and_issuing_ca_chain_verifies_with_openssl() {
    let (pki, hsm) = hsm_pki();
    let module = hsm.module_path().to_string_lossy().into_owned();
    let e = env(&hsm, USER_PIN);
    let e = with_env(&e);
    let root_token = pkcs11_args(&module, "AZ Root", "ROOT_PIN");
    pki.ok_env(
        &init_root_args(
            &[
                &["--key", "ec-p384", "--base-url", BASE_URL][..],
                &root_token,
            ]
            .concat(),
        ),
        &e,
    );
    pki.ok_env(
        &init_citizens_args(&pkcs11_args(&module, "AZ Citizens", "CITIZENS_PIN")),
        &e,
    );
    // No key file was written: the keys are on the tokens.
    assert_eq!(
        std::fs::read_dir(pki.data_dir().join("keys"))
            .unwrap()
            .count(),
        0
    );
    let listed = pki.ok(&["ca", "list"]);
    assert!(listed.contains("pkcs11 token \"AZ Root\""), "{listed}");

    let csr = pki.csr("citizen", CITIZEN);
    let cert = pki.path("citizen.pem");
    pki.ok_env(&issue_csr_args("citizens", "citizen-sign", &csr, &cert), &e);
    let (root, citizens) = (pki.ca_pem("root"), pki.ca_pem("citizens"));
    let verify = openssl_verify(&root, &citizens, &cert, None);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );

    // Revocation and a CRL signed in the HSM, checked by openssl.
    let serial = pki.serials("citizens").pop().unwrap();
    pki.revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    let crl = pki.path("citizens.crl");
    pki.ok_env(
        &[
            "ca",
            "crl",
            "--ca",
            "citizens",
            "--out",
            crl.to_str().unwrap(),
        ],
        &e,
    );
    let check = openssl_verify(&root, &citizens, &cert, Some(&crl));
    assert!(!check.status.success());
    assert!(format!("{}{}", stdout(&check), stderr(&check)).contains("certificate revoked"));
    assert!(pki.ok(&["audit", "verify"]).contains("intact"));
}

#[test]
fn wrong_hsm_pin_exits_2_and_changes_nothing() {
    let (pki, hsm) = hsm_pki();
    let module = hsm.module_path().to_string_lossy().into_owned();
    let good = env(&hsm, USER_PIN);
    let good = with_env(&good);
    let bad = env(&hsm, "0000");
    let bad = with_env(&bad);

    // A wrong PIN at `ca init`: no CA, no key file. (The empty store is made first, so the
    // comparison is between two states of one store: a store command no longer makes one.)
    imza_ca::Pki::open_or_create(
        &pki.data_dir(),
        &imza_ca::Pki::default_store(&pki.data_dir()),
        std::sync::Arc::new(imza_core::clock::SystemClock),
    )
    .expect("empty store");
    let before = pki.snapshot();
    let root_token = pkcs11_args(&module, "AZ Root", "ROOT_PIN");
    let message = pki.exits(&init_root_args(&root_token), &bad, 2);
    assert!(message.contains("PIN"), "{message}");
    assert!(
        !message.contains("0000"),
        "the PIN must never be echoed: {message}"
    );
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    assert_eq!(pki.snapshot(), before);

    // A CA created with the right PIN, then used with a wrong one: nothing issued.
    pki.ok_env(
        &init_root_args(&[&["--base-url", BASE_URL][..], &root_token].concat()),
        &good,
    );
    let csr = pki.csr("tls", &[("C", "AZ"), ("O", "e-gov"), ("CN", "e-gov.az")]);
    let before = pki.snapshot();
    let tls = pki.path("tls.pem");
    let mut args = issue_csr_args("root", "tls-server", &csr, &tls);
    args.extend(["--san", "dns:e-gov.az"]);
    let message = pki.exits(&args, &bad, 2);
    assert!(message.contains("PIN"), "{message}");
    assert_eq!(pki.snapshot(), before);
    assert!(!pki.path("tls.pem").exists());
    // A PIN variable that is not set is refused the same way, naming the variable.
    let unset = [(
        "SOFTHSM2_CONF",
        hsm.conf_path().to_string_lossy().into_owned(),
    )];
    let unset = with_env(&unset);
    let r_crl = pki.path("r.crl");
    let message = pki.exits(
        &[
            "ca",
            "crl",
            "--ca",
            "root",
            "--out",
            r_crl.to_str().unwrap(),
            "--ca-pin-env",
            "NO_SUCH_PIN_VAR",
        ],
        &unset,
        2,
    );
    assert!(message.contains("NO_SUCH_PIN_VAR"), "{message}");
    assert_eq!(pki.snapshot(), before);
}
