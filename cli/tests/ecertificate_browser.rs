//! Signed e-certificates end to end, in headless Chromium: a citizen logs in (access code),
//! asks for a residence statement, which the portal renders, certifies with the agency's
//! e-seal (the key on a SoftHSM2 token) at PAdES B-LTA with imza's own TSA and OCSP, and
//! registers; the PDF is downloaded, its first page rendered by `pdftoppm`, the QR code read
//! from the pixels by `zbarimg`, and its URL opened in the browser; the file, then a tampered
//! copy, is uploaded to the verification page; the agency withdraws it; the cabinet lists who
//! checked. pyHanko, pdfsig and qpdf check the sealed PDF too.
//!
//! Two `imza serve` processes on one store: the services (OCSP, TSA: the URLs the
//! certificates name) and the portal over HTTPS. Screenshots go to
//! `target/tmp/artefacts/ecertificate-browser/`.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use imza_core::key::pkcs11::{PinSource, Pkcs11Key};
use imza_core::KeyAlgorithm;
use imza_testdata::browser::{clean_up_after_this_process, decode_qr, Browser};
use imza_testdata::softhsm::{KeyLocation, SoftHsm};
use imza_testdata::tools::{pdfsig, pyhanko, qpdf_check, render_first_page, text};
use zeroize::Zeroizing;

const SEAL_SUBJECT: &str =
    "CN=ASAN Xidmət e-möhür,O=ASAN Xidmət,organizationIdentifier=NTRAZ-1403012345,C=AZ";

struct Lab {
    pki: TestPki,
    _hsm: SoftHsm,
    _services: Server,
    _portal: Server,
    /// `https://127.0.0.1:PORT`
    portal_base: String,
    root: PathBuf,
}

fn lab() -> Lab {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let pki = TestPki::with_root_and_citizens_at(&base);
    pki.ok(&["tsa", "init", "--ca", "citizens"]);

    // The agency's e-seal: a key generated on the token, certified under the org-seal profile.
    let hsm = SoftHsm::new();
    hsm.init_token("agency", "87654321", "seal-pin");
    std::env::set_var("SOFTHSM2_CONF", hsm.conf_path());
    let location = hsm.location("agency", "seal");
    let pin = PinSource::Value(Zeroizing::new("seal-pin".to_string()));
    let key = Pkcs11Key::generate(&location, KeyAlgorithm::EcP256, &pin).expect("seal key");
    let subject = imza_core::name::parse_dn(SEAL_SUBJECT).expect("subject");
    let csr = imza_core::csr::build_csr(&subject, &key).expect("CSR");
    std::fs::write(pki.path("seal.csr"), csr).unwrap();
    pki.issue(
        "citizens",
        "org-seal",
        &pki.path("seal.csr"),
        &pki.path("seal.pem"),
        &[],
    );
    std::fs::write(
        pki.path("citizens.toml"),
        imza_portal::registry::DEMO_CITIZENS,
    )
    .unwrap();
    let config = pki.path("portal.toml");
    std::fs::write(
        &config,
        format!(
            "[portal]\ncitizens = \"citizens.toml\"\n\
             [portal.seal]\nagency = \"ASAN Xidmət\"\ncertificate = \"seal.pem\"\n\
             chain = \"{}\"\npkcs11_module = \"{}\"\npkcs11_token = \"agency\"\n\
             pkcs11_key_label = \"seal\"\npkcs11_pin_env = \"SEAL_PIN\"\ntsa_url = \"{base}/tsa\"\n\
             [[portal.checkers]]\nname = \"Kapital Bank\"\napi_key_sha256 = \"{}\"\n",
            pki.ca_pem("citizens").display(),
            hsm.module_path().display(),
            hex::encode(openssl::sha::sha256(b"bank-key")),
        ),
    )
    .unwrap();

    let services = Server::start_on(&pki, port, &[]);
    let (chain, tls_key) = pki.tls_server_certificate("citizens");
    let softhsm_conf = hsm.conf_path().to_str().unwrap();
    let env = [("SOFTHSM2_CONF", softhsm_conf), ("SEAL_PIN", "seal-pin")];
    let config = ["--config", config.to_str().unwrap()];
    let portal = Server::portal(&pki, (&chain, &tls_key), &config, &env);
    clean_up_after_this_process(None, Some(&pki.data_dir().display().to_string()), &[]);
    let root = pki.ca_pem("root");
    Lab {
        pki,
        _hsm: hsm,
        _services: services,
        portal_base: portal.base.clone(),
        _portal: portal,
        root,
    }
}

/// `curl` of the portal trusting only the test root, with the browser's session cookie:
/// the response body.
fn download(lab: &Lab, path: &str, cookie: &str, out: &Path) {
    let result = run(
        "curl",
        &[
            "-sf",
            "--max-time",
            "20",
            "--cacert",
            lab.root.to_str().unwrap(),
            "-H",
            &format!("Cookie: __Host-imza-session={cookie}"),
            "-o",
            out.to_str().unwrap(),
            &format!("{}{path}", lab.portal_base),
        ],
    );
    assert!(result.status.success(), "curl {path}: {}", stderr(&result));
}

fn access_code(lab: &Lab, national_id: &str) -> String {
    lab.pki.portal_code(national_id)["code"]
        .as_str()
        .expect("code")
        .to_string()
}

#[test]
fn a_residence_statement_is_issued_sealed_checked_by_qr_and_upload_and_withdrawn() {
    if !Browser::is_available() || !SoftHsm::is_available() {
        eprintln!("note: Chromium or SoftHSM2 is not installed; skipping");
        return;
    }
    let lab = lab();
    let artefacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artefacts/ecertificate-browser");
    let browser = Browser::start(&[lab.root.as_path()], &artefacts);
    browser.fresh(&format!("{}/portal", lab.portal_base));

    // Log in and ask for the statement.
    let code = access_code(&lab, "5ZK7T2Q");
    browser.goto(&format!("{}/portal", lab.portal_base));
    browser.fill("#access-code input[name=national_id]", "5ZK7T2Q");
    browser.fill("#access-code input[name=code]", &code);
    browser.click("#access-code button[type=submit]");
    browser.wait_for_text("#personal-code", "PNOAZ-5ZK7T2Q");
    browser.click("#request-residence");
    let listed = browser.wait_for_text("#documents", "Yaşayış yeri haqqında arayış");
    browser.screenshot("cabinet-with-document");
    let href = browser
        .execute(
            "return document.querySelector('#documents a').getAttribute('href');",
            vec![],
        )
        .as_str()
        .expect("a download link")
        .to_string();
    let cookie = browser
        .cookies()
        .into_iter()
        .find(|c| c.name == "__Host-imza-session")
        .expect("session cookie");
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("statement.pdf");
    download(&lab, &href, &cookie.value, &pdf);
    let sealed = std::fs::read(&pdf).unwrap();
    assert!(sealed.starts_with(b"%PDF-"), "{listed}");

    // Independent checkers: well formed, sealed, certified, B-LTA, trusted.
    qpdf_check(&pdf);
    let root = lab.root.to_str().unwrap();
    let py = text(&pyhanko(&[
        "sign",
        "validate",
        "--trust",
        root,
        "--trust-replace",
        pdf.to_str().unwrap(),
    ]));
    assert!(
        py.contains("Seal:") && py.contains("INTACT:TRUSTED"),
        "{py}"
    );
    let sig = text(&pdfsig(&pdf, None));
    assert!(sig.contains("Signature is Valid"), "{sig}");
    let verified = lab
        .pki
        .ok(&["verify", pdf.to_str().unwrap(), "--trust", root]);
    assert!(verified.contains("Level:         B-LTA"), "{verified}");
    assert!(verified.contains("DocMDP P1"), "{verified}");

    // The QR code on the rendered first page leads to the verification page.
    let page = dir.path().join("page.png");
    render_first_page(&pdf, 150, &page);
    let urls = decode_qr(&page);
    let url = urls
        .iter()
        .find(|u| u.contains("/d/"))
        .unwrap_or_else(|| panic!("no verification URL among {urls:?}"))
        .clone();
    let reference = url.rsplit('/').next().unwrap().to_string();
    let local = format!("{}/d/{reference}", lab.portal_base);
    assert!(url.ends_with(&format!("/d/{reference}")), "{url}");
    browser.goto(&local);
    browser.wait_for_text("#status", "Qüvvədədir");
    let sha = hex::encode(openssl::sha::sha256(&sealed));
    assert_eq!(browser.text("#sha256"), sha);
    assert!(browser.text("#issuer").contains("ASAN Xidmət"));
    assert!(
        !browser.source().contains("Günay"),
        "no citizen data on the public page"
    );
    browser.screenshot("verification-page");

    // Uploading the file: valid, the same as registered.
    browser.goto(&format!("{local}?lang=eng"));
    browser.fill("#upload input[type=file]", pdf.to_str().unwrap());
    browser.click("#upload button[type=submit]");
    let verdict = browser.wait_for_text("#verdict", "Valid");
    assert!(browser.has("#comparison.same"), "{verdict}");
    browser.screenshot("upload-valid");

    // A tampered copy: a byte of the signed part changed (the document information).
    let mut tampered = sealed.clone();
    let at = tampered
        .windows(4)
        .position(|w| w == b"imza")
        .expect("the producer");
    tampered[at] = b'I';
    let tampered_path = dir.path().join("tampered.pdf");
    std::fs::write(&tampered_path, &tampered).unwrap();
    browser.goto(&format!("{local}?lang=eng"));
    browser.fill("#upload input[type=file]", tampered_path.to_str().unwrap());
    browser.click("#upload button[type=submit]");
    let verdict = browser.wait_for_text("#verdict", "Not valid");
    assert!(verdict.contains("changed after it was signed"), "{verdict}");
    assert!(browser.has("#comparison.different"));
    browser.screenshot("upload-tampered");

    // An organisation's system asks through the API with its key.
    let status = run(
        "curl",
        &[
            "-s",
            "--cacert",
            root,
            "-H",
            "Authorization: Bearer bank-key",
            &format!("{local}/status"),
        ],
    );
    let answer: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(answer["status"], "valid", "{answer}");
    assert_eq!(answer["sha256"], sha.as_str());

    // Withdrawn by the agency: the page says so.
    lab.pki.ok(&[
        "portal",
        "document",
        "withdraw",
        &reference,
        "--reason",
        "səhv məlumat / wrong data",
    ]);
    browser.goto(&local);
    let withdrawn = browser.wait_for_text("#status", "Geri götürülüb");
    assert!(withdrawn.contains("səhv məlumat"), "{withdrawn}");
    browser.screenshot("withdrawn");

    // The citizen's cabinet lists who checked: the page views, the uploads and the bank.
    browser.goto(&format!("{}/portal/cabinet?lang=eng", lab.portal_base));
    let checks = browser.wait_for_text("#document-checks", "Kapital Bank");
    assert!(checks.contains("verification page"), "{checks}");
    assert!(checks.contains("file upload"), "{checks}");
    browser.screenshot("cabinet-checks");
}
