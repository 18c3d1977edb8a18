//! PAdES made by imza, checked by tools imza was not built with: pyHanko (`sign validate`
//! and `sign adesverify`), poppler's `pdfsig` and `qpdf --check`; and imza's own verdicts.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::long_term::LongTermPki;
use imza_signer::pades::DocMdp;
use imza_signer::{Indication, Level};
use imza_testdata::pdf::simple_pdf;
use imza_testdata::tools::{pdfsig, pyhanko, qpdf_check, text};

fn document() -> Vec<u8> {
    simple_pdf(
        &["Yasayis yeri haqqinda arayis", "Reference: 7K3M-9QXD-2F4A"],
        0,
    )
}

/// pyHanko's summary line per signature (`sign validate --executive-summary` prints one word;
/// the pretty print says INTACT:TRUSTED,… per signature).
fn pyhanko_validate(dir: &Path, root: &Path, file: &Path, ades: bool) -> String {
    let command = if ades { "adesverify" } else { "validate" };
    let output = pyhanko(&[
        "sign",
        command,
        "--trust",
        root.to_str().unwrap(),
        "--trust-replace",
        file.to_str().unwrap(),
    ]);
    let _ = dir;
    text(&output)
}

fn nss_trusting(dir: &Path, root_pem: &Path) -> PathBuf {
    let nss = dir.join("nss");
    std::fs::create_dir_all(&nss).unwrap();
    let db = format!("sql:{}", nss.display());
    let status = Command::new("certutil")
        .args(["-N", "-d", &db, "--empty-password"])
        .status()
        .expect("certutil (libnss3-tools)");
    assert!(status.success());
    let status = Command::new("certutil")
        .args(["-A", "-d", &db, "-n", "imza-root", "-t", "C,C,C", "-i"])
        .arg(root_pem)
        .status()
        .unwrap();
    assert!(status.success());
    nss
}

#[test]
fn imza_pades_at_every_level_passes_pyhanko_pdfsig_qpdf_and_imza() {
    let pki = LongTermPki::new();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(
        &root,
        imza_core::pem::encode("CERTIFICATE", &pki.root.der).unwrap(),
    )
    .unwrap();
    let nss = nss_trusting(dir.path(), &root);
    let cases = [
        ("b", Level::B, None),
        ("t", Level::T, None),
        ("lt", Level::LT, None),
        ("lta", Level::LTA, None),
        ("lta-certified-p1", Level::LTA, Some(DocMdp::NoChanges)),
        ("t-certified-p2", Level::T, Some(DocMdp::FormFilling)),
    ];
    let mut signed_files = Vec::new();
    for (name, level, certification) in cases {
        let signed = pki.sign_pdf(&document(), level, certification);
        let file = dir.path().join(format!("{name}.pdf"));
        std::fs::write(&file, &signed).unwrap();
        qpdf_check(&file);
        let report = pki.verify_pdf(&signed, level < Level::LT);
        assert!(
            report.valid,
            "{name}: imza: {}",
            serde_json::to_string_pretty(&report).unwrap()
        );
        let first = &report.signatures[0];
        assert_eq!(first.indication, Indication::TotalPassed);
        assert_eq!(first.level, Some(level.name()), "{name}");
        let validated = pyhanko_validate(dir.path(), &root, &file, false);
        println!("{name}: pyhanko validate:\n{validated}");
        assert!(validated.contains("INTACT:TRUSTED"), "{name}: {validated}");
        let sig = text(&pdfsig(&file, Some(&nss)));
        println!("{name}: pdfsig:\n{sig}");
        assert!(sig.contains("Signature is Valid"), "{name}: {sig}");
        assert!(sig.contains("Certificate is Trusted"), "{name}: {sig}");
        signed_files.push((name, level, file));
    }

    // With the CRL server stopped, what B-LT and B-LTA embed is all there is.
    pki.stop_crl_server();
    for (name, level, file) in signed_files
        .iter()
        .filter(|(_, level, _)| *level >= Level::LT)
    {
        let signed = std::fs::read(file).unwrap();
        let report = pki.verify_pdf(&signed, false);
        assert!(
            report.valid,
            "{name}: imza offline: {}",
            serde_json::to_string_pretty(&report).unwrap()
        );
        let ades = pyhanko_validate(dir.path(), &root, file, true);
        println!("{name} ({level}): pyhanko adesverify offline:\n{ades}");
        assert!(ades.contains("INTACT:TRUSTED"), "{name}: {ades}");
    }
}
