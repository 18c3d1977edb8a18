//! The device-certificate login in a real browser: headless Chromium holding a mobile
//! authentication certificate (profile `device-auth`, issued by imza as PKCS#12 and imported
//! into the browser's NSS database) presents it to `imza serve`'s portal over HTTPS
//! (`--tls-client-cas`) and reaches the cabinet; once `imza ca revoke` has revoked it, the same
//! browser is refused with the reason (OCSP asked at every device login). OCSP comes from a
//! second `imza serve` on plain loopback HTTP, the URL in the certificates' AIA. Screenshots
//! are kept under `target/tmp/artefacts/device-browser/`.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use imza_testdata::browser::{Browser, ClientCertificate};

const SUBJECT: &str =
    "CN=Əliyev Günay Şəmsi oğlu,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-5ZK7T2Q,C=AZ";

#[test]
fn a_browser_with_a_device_certificate_logs_in_and_is_refused_once_it_is_revoked() {
    if !Browser::is_available() {
        panic!("Chromium, chromedriver, certutil or zbarimg missing: run scripts/setup.sh");
    }
    let ocsp_port = free_port();
    let pki = TestPki::with_root_and_citizens_at(&format!("http://127.0.0.1:{ocsp_port}"));
    let (p12, cert) = (pki.path("device.p12"), pki.path("device.pem"));
    pki.issue_p12(
        ("citizens", "device-auth", SUBJECT),
        &p12,
        &cert,
        ("DEVICE_P12_PASS", "device-pass"),
        &[],
    );
    let serial = pki
        .serials("citizens")
        .pop()
        .expect("the device certificate");
    let root = pki.ca_pem("root");

    let _services = Server::start_on(&pki, ocsp_port, &[]);
    let portal = Server::portal_asking_for_device_certificates(&pki);
    let base = portal.base.clone();

    let browser = Browser::start_with_client_certificate(
        &[root.as_path()],
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("artefacts/device-browser"),
        &ClientCertificate {
            pkcs12: p12.clone(),
            password: "device-pass".into(),
            site: base.clone(),
        },
    );
    browser.goto(&format!("{base}/portal?lang=eng"));
    browser.screenshot("login-page");
    browser.click("#device-certificate button[type=submit]");
    browser.wait_for_text("#name", "Əliyev Günay Şəmsi oğlu");
    assert!(browser.current_url().ends_with("/portal/cabinet"));
    assert!(browser
        .text("#method")
        .contains("mobil autentifikasiya sertifikatı"));
    browser.screenshot("cabinet-device-certificate");

    // Reported lost: revoked, and the next login with it is refused, saying why.
    browser.click("form[action='/portal/logout'] button");
    browser.wait_for_text("h1", "Vətəndaş portalına giriş");
    pki.ok(&revoke_args(
        "citizens",
        &serial,
        &["--reason", "keyCompromise"],
    ));
    browser.goto(&format!("{base}/portal"));
    browser.execute("document.getElementById('message')?.remove();", vec![]);
    browser.click("#device-certificate button[type=submit]");
    let said = browser.wait_for_text("#message", "Sertifikat qəbul edilmədi");
    assert!(said.contains("revoked"), "{said}");
    browser.screenshot("device-certificate-revoked");
    assert!(
        !browser.current_url().ends_with("/portal/cabinet"),
        "{said}"
    );
}
