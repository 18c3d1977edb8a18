//! PAdES made by pyHanko, validated by imza and by pyHanko itself: the same verdict at every
//! level (B-B … B-LTA), for certifications (P1, P2) and approvals, several signatures on one
//! document, a document time-stamp alone, and documents signed by one tool and then the
//! other.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::long_term::LongTermPki;
use imza_signer::pades::{sign_pdf, verify_pdf, DocMdp, PadesOptions};
use imza_signer::{Indication, Level, ValidationReport, VerifyOptions};
use imza_testdata::pdf::simple_pdf;
use imza_testdata::pki::write_certificate;
use imza_testdata::tools::{pyhanko, qpdf_check, text, venv_tool};
use time::OffsetDateTime;

/// pyHanko's library where its CLI has no option: a certification with DocMDP P1 or P3 (the
/// CLI's `--certify` is always P2). Arguments: key cert chain in out field P.
const CERTIFY_SCRIPT: &str = r#"
import sys
from pyhanko.sign import signers, fields
from pyhanko.sign.fields import MDPPerm
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
key, cert, chain, inp, out, field, p = sys.argv[1:8]
signer = signers.SimpleSigner.load(key, cert, ca_chain_files=(chain,))
meta = signers.PdfSignatureMetadata(field_name=field, certify=True,
    docmdp_permissions=MDPPerm(int(p)), subfilter=fields.SigSeedSubFilter.PADES)
with open(inp, 'rb') as f, open(out, 'wb') as o:
    signers.sign_pdf(IncrementalPdfFileWriter(f), meta, signer=signer, output=o)
"#;

/// pyHanko's verdict on document time-stamps, which `sign validate` does not list (it walks
/// the regular signatures only). Arguments: file root. Prints `FIELD VALID|INVALID SUMMARY`.
const TIMESTAMP_VALIDATE_SCRIPT: &str = r#"
import sys
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_timestamp
from pyhanko.keys import load_cert_from_pemder
from pyhanko_certvalidator import ValidationContext
reader = PdfFileReader(open(sys.argv[1], 'rb'))
vc = ValidationContext(trust_roots=[load_cert_from_pemder(sys.argv[2])], allow_fetching=True)
for sig in reader.embedded_timestamp_signatures:
    status = validate_pdf_timestamp(sig, validation_context=vc)
    ok = status.intact and status.valid and status.trusted
    print(sig.field_name, 'VALID' if ok else 'INVALID', status.summary())
"#;

/// The PKI of these tests with its key material in files pyHanko reads.
struct Setup {
    pki: LongTermPki,
    dir: tempfile::TempDir,
    root: PathBuf,
    chain: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// One signature's verdict by pyHanko: its field and summary (`INTACT:TRUSTED,UNTOUCHED`,
/// `INTACT:TRUSTED,EXTENDED_WITH_LTA_UPDATES,ACCEPTABLE_MODIFICATIONS`, `INVALID` …).
#[derive(Debug)]
struct PyhankoVerdict {
    field: String,
    summary: String,
}

impl PyhankoVerdict {
    /// What pyHanko's `bottom_line` says: intact, trusted, and no illegal modification.
    fn valid(&self) -> bool {
        self.summary.starts_with("INTACT:TRUSTED") && !self.summary.contains("ILLEGAL")
    }
}

impl Setup {
    fn new() -> Setup {
        let pki = LongTermPki::new();
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let (root, chain, cert, key) = (
            path("root.pem"),
            path("chain.pem"),
            path("signer.pem"),
            path("signer.key"),
        );
        write_certificate(&root, &pki.root.der);
        write_certificate(&chain, &pki.issuing.der);
        write_certificate(&cert, &pki.signer_cert);
        // PKCS#8 PEM, unencrypted (`pemder --no-pass`).
        pki.signer_key.save_pem(&key).unwrap();
        std::fs::write(path("certify.py"), CERTIFY_SCRIPT).unwrap();
        std::fs::write(path("validate_timestamps.py"), TIMESTAMP_VALIDATE_SCRIPT).unwrap();
        Setup {
            pki,
            dir,
            root,
            chain,
            cert,
            key,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tsa_url(&self) -> &str {
        self.pki.timestamper.url()
    }

    fn write(&self, name: &str, pdf: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, pdf).unwrap();
        path
    }

    /// `pyhanko sign addsig FLAGS --field FIELD pemder …` over `input`; the signed file.
    fn pyhanko_sign(&self, name: &str, input: &[u8], field: &str, flags: &[&str]) -> Vec<u8> {
        let input = self.write(&format!("{name}-unsigned.pdf"), input);
        let output = self.path(&format!("{name}.pdf"));
        let mut args = vec!["sign", "addsig"];
        args.extend_from_slice(flags);
        let with_trust = flags
            .iter()
            .any(|f| *f == "--with-validation-info" || *f == "--use-pades-lta");
        if with_trust {
            args.extend(["--trust", path(&self.root), "--trust-replace"]);
        }
        args.extend([
            "--field",
            field,
            "pemder",
            "--key",
            path(&self.key),
            "--cert",
            path(&self.cert),
            "--chain",
            path(&self.chain),
            "--no-pass",
            path(&input),
            path(&output),
        ]);
        let result = pyhanko(&args);
        assert!(
            result.status.success(),
            "pyhanko {args:?}: {}",
            text(&result)
        );
        std::fs::read(output).unwrap()
    }

    /// A pyHanko certification with DocMDP `p` (1, 2 or 3), by its library.
    fn pyhanko_certify(&self, name: &str, input: &[u8], field: &str, p: u8) -> Vec<u8> {
        let input = self.write(&format!("{name}-unsigned.pdf"), input);
        let output = self.path(&format!("{name}.pdf"));
        let result = Command::new(venv_tool("python"))
            .env("PYTHONWARNINGS", "ignore")
            .arg(self.path("certify.py"))
            .args([&self.key, &self.cert, &self.chain, &input, &output])
            .args([field, &p.to_string()])
            .output()
            .unwrap();
        assert!(result.status.success(), "certify.py: {}", text(&result));
        std::fs::read(output).unwrap()
    }

    /// A pyHanko command over a file in place (`ltvfix`, `ltaupdate`) or into another
    /// (`timestamp`).
    fn pyhanko_run(&self, args: &[&str]) {
        let result = pyhanko(args);
        assert!(
            result.status.success(),
            "pyhanko {args:?}: {}",
            text(&result)
        );
    }

    /// pyHanko's verdict on every regular signature: `sign validate`, or `sign adesverify`.
    fn pyhanko_verdicts(&self, file: &Path, ades: bool) -> Vec<PyhankoVerdict> {
        let command = if ades { "adesverify" } else { "validate" };
        let output = pyhanko(&[
            "sign",
            command,
            "--trust",
            path(&self.root),
            "--trust-replace",
            path(file),
        ]);
        let out = text(&output);
        println!("pyhanko {command} {}:\n{out}", file.display());
        // `FIELD:FINGERPRINT:SUMMARY`, one line per signature.
        let verdicts: Vec<PyhankoVerdict> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (field, fingerprint, summary) = (parts.next()?, parts.next()?, parts.next()?);
                (fingerprint.len() == 64).then(|| PyhankoVerdict {
                    field: field.into(),
                    summary: summary.into(),
                })
            })
            .collect();
        assert!(
            !verdicts.is_empty(),
            "pyhanko {command} printed no verdict: {out}"
        );
        verdicts
    }

    /// pyHanko's verdict on the document time-stamps: `(field, valid)`.
    fn pyhanko_timestamp_verdicts(&self, file: &Path) -> Vec<(String, bool)> {
        let result = Command::new(venv_tool("python"))
            .env("PYTHONWARNINGS", "ignore")
            .arg(self.path("validate_timestamps.py"))
            .args([file, &self.root])
            .output()
            .unwrap();
        let out = text(&result);
        println!("pyhanko document time-stamps {}:\n{out}", file.display());
        assert!(result.status.success(), "validate_timestamps.py: {out}");
        String::from_utf8_lossy(&result.stdout)
            .lines()
            .filter_map(|line| {
                let mut words = line.split(' ');
                Some((words.next()?.to_string(), words.next()? == "VALID"))
            })
            .collect()
    }

    fn imza(&self, pdf: &[u8]) -> ValidationReport {
        let mut options = VerifyOptions::new(
            vec![imza_validation::Certificate::from_der(self.pki.root.der.clone()).unwrap()],
            OffsetDateTime::now_utc(),
        );
        options.network = true;
        let report = verify_pdf(Cursor::new(pdf.to_vec()), &options);
        println!("imza: {}", serde_json::to_string_pretty(&report).unwrap());
        report
    }

    /// imza signing `pdf` (an approval, or a certification) at `level`.
    fn imza_sign(&self, pdf: &[u8], level: Level, certification: Option<DocMdp>) -> Vec<u8> {
        self.pki.sign_pdf(pdf, level, certification)
    }

    /// pyHanko and imza agree on every signature of `file`: valid or not, field by field.
    /// Returns imza's report.
    fn agree(&self, file: &Path, ades: bool) -> ValidationReport {
        let pdf = std::fs::read(file).unwrap();
        let report = self.imza(&pdf);
        let verdicts = self.pyhanko_verdicts(file, ades);
        let signatures: Vec<_> = report
            .signatures
            .iter()
            .filter(|s| s.pdf.as_ref().is_some_and(|p| p.kind == "signature"))
            .collect();
        assert_eq!(signatures.len(), verdicts.len(), "{verdicts:?}");
        for verdict in &verdicts {
            let imza = signatures
                .iter()
                .find(|s| s.pdf.as_ref().unwrap().field == verdict.field)
                .unwrap_or_else(|| panic!("imza does not report field {}", verdict.field));
            assert_eq!(
                imza.indication == Indication::TotalPassed,
                verdict.valid(),
                "{}: imza {:?} {:?} {:?}, pyhanko {}",
                verdict.field,
                imza.indication,
                imza.sub_indication,
                imza.errors,
                verdict.summary
            );
        }
        report
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn document() -> Vec<u8> {
    simple_pdf(&["Is yeri haqqinda arayis", "Reference: 4QJ8-PX2M"], 0)
}

fn signature<'a>(report: &'a ValidationReport, field: &str) -> &'a imza_signer::SignatureReport {
    report
        .signatures
        .iter()
        .find(|s| s.pdf.as_ref().is_some_and(|p| p.field == field))
        .unwrap_or_else(|| panic!("no signature in field {field}"))
}

#[test]
fn pyhanko_pades_at_every_level_is_valid_for_both_at_the_level_made() {
    let setup = Setup::new();
    let tsa = setup.tsa_url().to_string();
    let cases: [(&str, Level, Vec<&str>); 4] = [
        ("b", Level::B, vec!["--use-pades"]),
        ("t", Level::T, vec!["--use-pades", "--timestamp-url", &tsa]),
        (
            "lt",
            Level::LT,
            vec![
                "--use-pades",
                "--timestamp-url",
                &tsa,
                "--with-validation-info",
            ],
        ),
        (
            "lta",
            Level::LTA,
            vec!["--use-pades-lta", "--timestamp-url", &tsa],
        ),
    ];
    for (name, level, flags) in cases {
        let signed = setup.pyhanko_sign(name, &document(), "Sig1", &flags);
        let file = setup.path(&format!("{name}.pdf"));
        qpdf_check(&file);
        let report = setup.agree(&file, false);
        setup.agree(&file, true);
        assert!(report.valid, "{name}");
        let sig = signature(&report, "Sig1");
        assert_eq!(sig.level, Some(level.name()), "{name}");
        let pdf = sig.pdf.as_ref().unwrap();
        assert_eq!(pdf.sub_filter.as_deref(), Some("ETSI.CAdES.detached"));
        assert_eq!(pdf.certification, None);
        if level == Level::LTA {
            let stamps = setup.pyhanko_timestamp_verdicts(&file);
            assert_eq!(stamps.len(), 1, "{stamps:?}");
            assert!(stamps[0].1, "pyhanko: {stamps:?}");
            assert!(report
                .signatures
                .iter()
                .any(|s| s.pdf.as_ref().unwrap().kind == "document_timestamp"
                    && s.indication == Indication::TotalPassed));
            assert_eq!(pdf.modification, "lta_updates");
        }
        let _ = signed;
    }
}

#[test]
fn pyhanko_certifications_and_approvals_agree() {
    let setup = Setup::new();
    let tsa = setup.tsa_url().to_string();

    // Certified, P1 (the library) and P2 (the CLI's --certify), alone.
    for p in [1u8, 2] {
        let name = format!("certified-p{p}");
        let certified = if p == 1 {
            setup.pyhanko_certify(&name, &document(), "Cert", p)
        } else {
            setup.pyhanko_sign(&name, &document(), "Cert", &["--use-pades", "--certify"])
        };
        let report = setup.agree(&setup.write(&format!("{name}.pdf"), &certified), false);
        assert!(report.valid, "{name}");
        let cert = signature(&report, "Cert").pdf.as_ref().unwrap();
        assert_eq!(cert.certification, Some(p), "{name}");
        assert_eq!(cert.modification, "none");
    }

    // Two approvals, the second at B-T.
    let first = setup.pyhanko_sign("approval-1", &document(), "Sig1", &["--use-pades"]);
    let second = setup.pyhanko_sign(
        "approval-2",
        &first,
        "Sig2",
        &["--use-pades", "--timestamp-url", &tsa],
    );
    let report = setup.agree(&setup.path("approval-2.pdf"), false);
    assert!(report.valid);
    let sig1 = signature(&report, "Sig1");
    assert_eq!(sig1.level, Some("B-B"));
    let sig1_pdf = sig1.pdf.as_ref().unwrap();
    assert!(!sig1_pdf.covers_whole_document);
    assert_eq!(sig1_pdf.modification, "form_filling");
    assert!(sig1_pdf.later_revisions[0]
        .changes
        .iter()
        .any(|c| c.contains("a signature")));
    assert_eq!(signature(&report, "Sig2").level, Some("B-T"));
    let _ = second;

    // A P2 certification, then an approval: allowed.
    let certified = setup.pyhanko_sign("p2", &document(), "Cert", &["--use-pades", "--certify"]);
    setup.pyhanko_sign("p2-approved", &certified, "Sig2", &["--use-pades"]);
    let report = setup.agree(&setup.path("p2-approved.pdf"), false);
    assert!(report.valid);
    let cert = signature(&report, "Cert").pdf.as_ref().unwrap();
    assert_eq!(cert.certification, Some(2));
    assert_eq!(cert.modification, "form_filling");

    // A P1 certification: neither pyHanko nor imza signs it again (pades_attacks.rs adds
    // such a signature by hand and checks the verdict).
    let certified = setup.pyhanko_certify("p1", &document(), "Cert", 1);
    let refused = pyhanko(&[
        "sign",
        "addsig",
        "--use-pades",
        "--field",
        "Sig2",
        "pemder",
        "--key",
        path(&setup.key),
        "--cert",
        path(&setup.cert),
        "--chain",
        path(&setup.chain),
        "--no-pass",
        path(&setup.path("p1.pdf")),
        path(&setup.path("p1-refused.pdf")),
    ]);
    assert!(!refused.status.success(), "pyHanko signed a P1 document");
    let mut options = PadesOptions::new(OffsetDateTime::now_utc());
    options.field_name = Some("Sig2".into());
    let imza_refusal = sign_pdf(
        Cursor::new(certified.clone()),
        &mut Cursor::new(Vec::new()),
        &setup.pki.credentials(),
        &options,
    );
    assert!(imza_refusal.is_err(), "imza signed a P1 document");
}

#[test]
fn a_pyhanko_document_timestamp_alone_is_valid_for_both() {
    let setup = Setup::new();
    let input = setup.write("plain.pdf", &document());
    let output = setup.path("stamped.pdf");
    setup.pyhanko_run(&[
        "sign",
        "timestamp",
        "--timestamp-url",
        setup.tsa_url(),
        "--trust",
        path(&setup.root),
        "--trust-replace",
        path(&input),
        path(&output),
    ]);
    let stamped = std::fs::read(&output).unwrap();
    let stamps = setup.pyhanko_timestamp_verdicts(&output);
    assert_eq!(stamps.len(), 1);
    assert!(stamps[0].1, "pyhanko: {stamps:?}");
    let report = setup.imza(&stamped);
    assert!(report.valid);
    assert_eq!(report.signatures.len(), 1);
    let stamp = &report.signatures[0];
    assert_eq!(stamp.pdf.as_ref().unwrap().kind, "document_timestamp");
    assert_eq!(
        stamp.pdf.as_ref().unwrap().sub_filter.as_deref(),
        Some("ETSI.RFC3161")
    );
    // `sign timestamp` adds the TSA's validation data in a DSS after the time-stamp.
    let stamp_pdf = stamp.pdf.as_ref().unwrap();
    assert_eq!(stamp_pdf.revision, 2);
    assert!(!stamp_pdf.covers_whole_document);
    assert_eq!(stamp_pdf.modification, "lta_updates");
    assert!(stamp_pdf.later_revisions[0]
        .changes
        .iter()
        .any(|c| c.contains("DSS")));
    assert!(stamp.poe_time.is_some());
}

#[test]
fn pyhanko_ltvfix_and_ltaupdate_raise_a_signature_and_keep_it_valid_for_both() {
    let setup = Setup::new();
    let tsa = setup.tsa_url().to_string();
    setup.pyhanko_sign(
        "raised",
        &document(),
        "Sig1",
        &["--use-pades", "--timestamp-url", &tsa],
    );
    let file = setup.path("raised.pdf");
    let trust = ["--trust", path(&setup.root), "--trust-replace"];
    let mut ltvfix = vec!["sign", "ltvfix", "--field", "Sig1"];
    ltvfix.extend(trust);
    ltvfix.push(path(&file));
    setup.pyhanko_run(&ltvfix);
    let report = setup.agree(&file, false);
    assert_eq!(signature(&report, "Sig1").level, Some("B-LT"));

    let mut ltaupdate = vec!["sign", "ltaupdate", "--timestamp-url", &tsa];
    ltaupdate.extend(trust);
    ltaupdate.push(path(&file));
    setup.pyhanko_run(&ltaupdate);
    let report = setup.agree(&file, true);
    assert!(report.valid);
    let sig = signature(&report, "Sig1");
    assert_eq!(sig.level, Some("B-LTA"));
    assert_eq!(sig.pdf.as_ref().unwrap().modification, "lta_updates");

    // ltaupdate again: a second document time-stamp over the first.
    setup.pyhanko_run(&ltaupdate);
    let report = setup.agree(&file, true);
    assert!(report.valid);
    let stamps = report
        .signatures
        .iter()
        .filter(|s| s.pdf.as_ref().unwrap().kind == "document_timestamp")
        .count();
    assert_eq!(stamps, 2);
    assert!(setup
        .pyhanko_timestamp_verdicts(&file)
        .iter()
        .all(|(_, valid)| *valid));
}

#[test]
fn imza_signs_after_pyhanko_and_pyhanko_after_imza_and_both_accept_the_result() {
    let setup = Setup::new();
    let tsa = setup.tsa_url().to_string();

    // pyHanko first (B-T), then imza (B-LT).
    let by_pyhanko = setup.pyhanko_sign(
        "pyhanko-first",
        &document(),
        "Sig1",
        &["--use-pades", "--timestamp-url", &tsa],
    );
    let both = setup.imza_sign(&by_pyhanko, Level::LT, None);
    let file = setup.write("then-imza.pdf", &both);
    qpdf_check(&file);
    let report = setup.agree(&file, false);
    assert!(report.valid);
    assert_eq!(report.signatures.len(), 2);
    let first = signature(&report, "Sig1").pdf.as_ref().unwrap();
    assert_eq!(first.modification, "form_filling");

    // imza first (a P2 certification at B-T), then pyHanko (an approval).
    let by_imza = setup.imza_sign(&document(), Level::T, Some(DocMdp::FormFilling));
    setup.pyhanko_sign("imza-first", &by_imza, "Sig2", &["--use-pades"]);
    let file = setup.path("imza-first.pdf");
    qpdf_check(&file);
    let report = setup.agree(&file, false);
    assert!(report.valid);
    let certification = report
        .signatures
        .iter()
        .find(|s| s.pdf.as_ref().unwrap().certification.is_some())
        .unwrap();
    assert_eq!(
        certification.pdf.as_ref().unwrap().modification,
        "form_filling"
    );

    // imza's B-LTA, then pyHanko's ltaupdate: still lta_updates only.
    let lta = setup.imza_sign(&document(), Level::LTA, None);
    let file = setup.write("imza-lta.pdf", &lta);
    let mut ltaupdate = vec!["sign", "ltaupdate", "--timestamp-url", &tsa];
    ltaupdate.extend(["--trust", path(&setup.root), "--trust-replace"]);
    ltaupdate.push(path(&file));
    setup.pyhanko_run(&ltaupdate);
    let report = setup.agree(&file, true);
    assert!(report.valid);
    let sig = report
        .signatures
        .iter()
        .find(|s| s.pdf.as_ref().unwrap().kind == "signature")
        .unwrap();
    assert_eq!(sig.level, Some("B-LTA"));
    assert_eq!(sig.pdf.as_ref().unwrap().modification, "lta_updates");
}
