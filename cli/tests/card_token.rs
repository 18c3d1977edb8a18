//! `imza card` and `imza sign --card` on SoftHSM2, the second token type: enroll (key generated
//! on the token, CSR signed by it, certificate issued and stored next to the key), list, sign,
//! verify with imza and openssl, revoke, verify again; also with the issuing CA's own key on
//! SoftHSM2, and RSA-PSS.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use imza_testdata::softhsm::SoftHsm;
use serde_json::Value;

const SO_PIN: &str = "12345678";
const CARD_PIN: &str = "2468";
const CITIZEN: &str = "CN=Əli Əliyev,SN=Əliyev,GN=Əli,SERIALNUMBER=PNOAZ-5ZK7T2Q,C=AZ";
const DOCUMENT: &[u8] = b"Arayis: the bearer lives in Baku.\n";

struct Fixture {
    pki: TestPki,
    hsm: SoftHsm,
    env: Vec<(&'static str, String)>,
}

impl Fixture {
    /// A root and citizens CA (software keys, or the citizens CA's key on the token "AZ
    /// Citizens" when `ca_on_hsm`), and a blank citizen token "citizen-card".
    fn new(ca_on_hsm: bool) -> Fixture {
        let hsm = SoftHsm::new();
        hsm.init_token("citizen-card", SO_PIN, CARD_PIN);
        hsm.init_token("AZ Citizens", SO_PIN, CARD_PIN);
        let env = vec![
            (
                "SOFTHSM2_CONF",
                hsm.conf_path().to_string_lossy().into_owned(),
            ),
            ("CARD_PIN", CARD_PIN.to_string()),
            ("CA_PIN", CARD_PIN.to_string()),
        ];
        let pki = TestPki::with_root_at(BASE_URL);
        let f = Fixture { pki, hsm, env };
        let module = f.module();
        if ca_on_hsm {
            f.ok(&init_citizens_args(&pkcs11_args(
                &module,
                "AZ Citizens",
                "CA_PIN",
            )));
        } else {
            f.ok(&init_citizens_args(&[]));
        }
        std::fs::write(f.path("doc.txt"), DOCUMENT).unwrap();
        f
    }

    fn module(&self) -> String {
        self.hsm.module_path().to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.pki.path(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.pki.ok_env(args, &self.env())
    }

    fn exits(&self, args: &[&str], code: i32) -> String {
        self.pki.exits(args, &self.env(), code)
    }

    fn enroll(&self, key: &str, extra: &[&str]) -> String {
        let module = self.module();
        let out = self.p(&format!("enrolled-{key}.pem"));
        let mut args = card_enroll_args(
            &["--token", "citizen-card", "--pkcs11-module", &module],
            "citizen-sign",
            CITIZEN,
            &["--key", key, "--key-label", key, "--out", &out],
        );
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    /// `imza sign --card --token citizen-card --pkcs11-module MODULE --pin-env CARD_PIN --in DOC
    /// --out OUT EXTRA...`
    fn sign_args<'a>(
        doc: &'a str,
        out: &'a str,
        module: &'a str,
        extra: &[&'a str],
    ) -> Vec<&'a str> {
        let mut args = vec![
            "sign",
            "--card",
            "--token",
            "citizen-card",
            "--pkcs11-module",
            module,
            "--pin-env",
            "CARD_PIN",
            "--in",
            doc,
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        args
    }

    fn verify(&self, signature: &str) -> (i32, Value) {
        self.pki
            .verify_with_fresh_crls(Path::new(signature), &self.path("doc.txt"), &self.env())
    }
}

/// Enroll → list → sign → imza verify and openssl cms -verify → revoke → verify fails.
fn enroll_sign_verify_revoke(f: &Fixture, key: &str, sign_extra: &[&str]) {
    let said = f.enroll(key, &[]);
    assert!(
        said.contains("enrolled") && said.contains("citizen-card"),
        "{said}"
    );
    let module = f.module();

    // The token now holds the certificate, tied to its key pair by CKA_ID.
    let listed: Value =
        serde_json::from_str(&f.ok(&["card", "list", "--pkcs11-module", &module, "--json"]))
            .unwrap();
    let token = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "citizen-card")
        .unwrap_or_else(|| panic!("token missing: {listed}"));
    let certs = token["certificates"].as_array().unwrap();
    let cert = certs
        .iter()
        .find(|c| c["label"] == key)
        .unwrap_or_else(|| panic!("certificate {key} missing: {token}"));
    assert!(
        cert["subject"].as_str().unwrap().contains("PNOAZ-5ZK7T2Q"),
        "{cert}"
    );
    assert!(cert["public_key"].as_bool().unwrap(), "{cert}");
    assert!(
        cert["key_usage"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "nonRepudiation"),
        "{cert}"
    );
    // The certificate on the token is the one the CA issued (and wrote to --out).
    let enrolled = openssl_show(
        "x509",
        &f.path(&format!("enrolled-{key}.pem")),
        false,
        &["-serial"],
    );
    assert!(
        enrolled
            .to_lowercase()
            .contains(&cert["serial"].as_str().unwrap().to_lowercase()),
        "{enrolled} vs {cert}"
    );
    let id = cert["id"].as_str().unwrap().to_string();

    std::fs::write(f.path("root.pem"), f.ok(&["ca", "cert", "--ca", "root"])).unwrap();
    std::fs::write(
        f.path("citizens.pem"),
        f.ok(&["ca", "cert", "--ca", "citizens"]),
    )
    .unwrap();
    let (doc, sig, chain) = (
        f.p("doc.txt"),
        f.p(&format!("{key}.p7s")),
        f.p("citizens.pem"),
    );
    let mut args = Fixture::sign_args(&doc, &sig, &module, &["--chain", &chain, "--cert-id", &id]);
    args.extend_from_slice(sign_extra);
    let said = f.ok(&args);
    assert!(
        said.contains("signed") && said.contains("Əli Əliyev"),
        "{said}"
    );

    let (code, report) = f.verify(&sig);
    assert_eq!(first_indication(&report), "TOTAL_PASSED", "{report}");
    assert_eq!(code, 0);
    let openssl = openssl_cms_verify(
        Path::new(&sig),
        &f.path("doc.txt"),
        &f.path("root.pem"),
        &f.path("cms-out.bin"),
    );
    assert!(
        openssl.status.success() && stderr(&openssl).contains("Verification successful"),
        "{}",
        stderr(&openssl)
    );
    assert_eq!(std::fs::read(f.path("cms-out.bin")).unwrap(), DOCUMENT);

    // The card signs a PDF too (PAdES, invisible signature).
    let (statement, signed) = (f.p("statement.pdf"), f.p(&format!("{key}.pdf")));
    std::fs::write(&statement, imza_testdata::pdf::simple_pdf(&["Arayis"], 0)).unwrap();
    let mut args = Fixture::sign_args(
        &statement,
        &signed,
        &module,
        &["--pades", "--chain", &chain, "--cert-id", &id],
    );
    args.extend_from_slice(sign_extra);
    let said = f.ok(&args);
    assert!(said.contains("as PAdES B-B"), "{said}");
    let (code, report) = f.verify(&signed);
    assert_eq!(first_indication(&report), "TOTAL_PASSED", "{report}");
    assert_eq!(
        report["signatures"][0]["pdf"]["field"], "Signature1",
        "{report}"
    );
    assert_eq!(code, 0);

    let serial = cert["serial"].as_str().unwrap().to_string();
    f.pki
        .revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    let (code, report) = f.verify(&sig);
    assert_ne!(first_indication(&report), "TOTAL_PASSED", "{report}");
    assert_ne!(code, 0);
    assert!(report.to_string().contains("REVOKED"), "{report}");
}

#[test]
fn softhsm_token_enrolls_signs_verifies_and_fails_once_revoked() {
    if !SoftHsm::is_available() {
        eprintln!("note: SoftHSM2 is not installed; skipping");
        return;
    }
    enroll_sign_verify_revoke(&Fixture::new(false), "ec-p256", &[]);
}

#[test]
fn enrollment_by_a_ca_whose_issuing_key_is_on_softhsm() {
    if !SoftHsm::is_available() {
        eprintln!("note: SoftHSM2 is not installed; skipping");
        return;
    }
    let f = Fixture::new(true);
    let listed = f.ok(&["ca", "list"]);
    assert!(listed.contains("pkcs11 token \"AZ Citizens\""), "{listed}");
    enroll_sign_verify_revoke(&f, "ec-p256", &[]);
}

#[test]
fn rsa_key_on_the_token_signs_with_rsa_pss() {
    if !SoftHsm::is_available() {
        eprintln!("note: SoftHSM2 is not installed; skipping");
        return;
    }
    let f = Fixture::new(false);
    enroll_sign_verify_revoke(&f, "rsa-2048", &["--rsa-pss"]);
    // The signature really is RSASSA-PSS: openssl names the algorithm.
    let shown = stdout(&run(
        "openssl",
        &[
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "DER",
            "-in",
            &f.p("rsa-2048.p7s"),
        ],
    ));
    assert!(shown.contains("rsassaPss"), "{shown}");
}

#[test]
fn wrong_pin_and_missing_token_are_clear_and_sign_nothing() {
    if !SoftHsm::is_available() {
        eprintln!("note: SoftHSM2 is not installed; skipping");
        return;
    }
    let f = Fixture::new(false);
    f.enroll("ec-p256", &[]);
    let module = f.module();
    let (doc, sig) = (f.p("doc.txt"), f.p("wrong.p7s"));
    let mut args = Fixture::sign_args(&doc, &sig, &module, &[]);
    let said = f.pki.exits(
        &args,
        &[("SOFTHSM2_CONF", f.env[0].1.as_str()), ("CARD_PIN", "9999")],
        2,
    );
    assert!(said.contains("PIN was rejected"), "{said}");
    assert!(
        !said.contains("9999"),
        "the PIN must never be echoed: {said}"
    );
    assert!(!f.path("wrong.p7s").exists());

    args[3] = "no-such-card";
    let said = f.exits(&args, 2);
    assert!(said.contains("no-such-card"), "{said}");
    assert!(!f.path("wrong.p7s").exists());

    // A profile the CA refuses stops enrollment before a key is generated on the token.
    let said = f.exits(
        &card_enroll_args(
            &["--token", "citizen-card", "--pkcs11-module", &module],
            "no-such-profile",
            CITIZEN,
            &[],
        ),
        2,
    );
    assert!(said.contains("no-such-profile"), "{said}");
}
