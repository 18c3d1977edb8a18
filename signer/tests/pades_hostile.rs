//! Hostile input to PAdES validation: not a PDF, encrypted, a broken cross-reference, object
//! graphs 10,000 deep, compression bombs. Each is a FORMAT_FAILURE with words that say why,
//! reached by the reader's structural bounds (nesting, reference chains, tree depth, inflate
//! limits) — never a panic, a hang or memory without bound.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Cursor;
use std::process::Command;

use common::long_term::LongTermPki;
use imza_pdf::{Object, PdfFile};
use imza_signer::pades::{sign_pdf, verify_pdf, PadesOptions};
use imza_signer::{Indication, SubIndication, ValidationReport, VerifyOptions};
use imza_testdata::pdf::simple_pdf;
use time::OffsetDateTime;

fn verify(pdf: &[u8]) -> ValidationReport {
    let options = VerifyOptions::new(Vec::new(), OffsetDateTime::now_utc());
    verify_pdf(Cursor::new(pdf.to_vec()), &options)
}

fn signed(pki: &LongTermPki) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    sign_pdf(
        Cursor::new(simple_pdf(&["Hostile"], 0)),
        &mut out,
        &pki.credentials(),
        &PadesOptions::new(OffsetDateTime::now_utc()),
    )
    .unwrap();
    out.into_inner()
}

/// The report is one FORMAT_FAILURE whose error mentions `words`.
#[track_caller]
fn assert_format_failure(report: &ValidationReport, words: &str) {
    let json = serde_json::to_string_pretty(report).unwrap();
    assert!(!report.valid, "{json}");
    let failure = report
        .signatures
        .iter()
        .find(|s| s.sub_indication == Some(SubIndication::FORMAT_FAILURE))
        .unwrap_or_else(|| panic!("no FORMAT_FAILURE: {json}"));
    assert_eq!(failure.indication, Indication::TotalFailed);
    assert!(
        failure.errors.iter().any(|e| e.contains(words)),
        "{words:?} not in {:?}",
        failure.errors
    );
}

/// `pdf` with an incremental update of raw objects `(number, body)` and a cross-reference
/// table; `root` replaces the trailer's /Root when given. Raw, so that bodies imza-pdf
/// would never write (10,000 nested arrays) can be made.
fn append_raw(pdf: &[u8], objects: &[(u32, Vec<u8>)], root: Option<u32>) -> Vec<u8> {
    let file = PdfFile::open(Cursor::new(pdf.to_vec())).unwrap();
    let prev = file.newest_section().offset;
    let trailer = file.trailer().clone();
    let size = objects
        .iter()
        .map(|(n, _)| n + 1)
        .chain(
            trailer
                .get("Size")
                .and_then(Object::as_integer)
                .map(|n| n as u32),
        )
        .max()
        .unwrap();
    let root = match root {
        Some(n) => format!("{n} 0 R"),
        None => String::from_utf8(trailer.get("Root").unwrap().to_bytes()).unwrap(),
    };
    let mut out = pdf.to_vec();
    let mut offsets = Vec::new();
    for (number, body) in objects {
        offsets.push((*number, out.len()));
        out.extend_from_slice(format!("{number} 0 obj\n").as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(b"xref\n");
    for (number, offset) in offsets {
        out.extend_from_slice(format!("{number} 1\n{offset:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {size} /Root {root} /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n"
        )
        .as_bytes(),
    );
    out
}

/// The form's object number and body with `/Fields` replaced by `fields`.
fn form_with_fields(pdf: &[u8], fields: &str) -> (u32, Vec<u8>) {
    let mut file = PdfFile::open(Cursor::new(pdf.to_vec())).unwrap();
    let (_, catalog) = file.catalog().unwrap();
    let form_id = catalog.get("AcroForm").unwrap().as_reference().unwrap();
    let Object::Dictionary(mut form) = file.object(form_id).unwrap() else {
        panic!("form");
    };
    form.remove("Fields");
    let body = Object::Dictionary(form).to_bytes();
    let body = [
        &body[..body.len() - 2],
        format!("/Fields {fields} >>").as_bytes(),
    ]
    .concat();
    (form_id.number, body)
}

#[test]
fn not_a_pdf_and_an_encrypted_pdf_are_format_failures() {
    assert_format_failure(&verify(b"GIF89a not a document"), "not a PDF");
    assert_format_failure(&verify(b""), "not a PDF");
    assert_format_failure(&verify(b"%PDF-1.7\n"), "startxref");

    let pki = LongTermPki::new();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("signed.pdf");
    let encrypted = dir.path().join("encrypted.pdf");
    std::fs::write(&plain, signed(&pki)).unwrap();
    let status = Command::new("qpdf")
        .args(["--encrypt", "user", "owner", "256", "--"])
        .arg(&plain)
        .arg(&encrypted)
        .status()
        .expect("qpdf");
    assert!(status.success());
    assert_format_failure(&verify(&std::fs::read(&encrypted).unwrap()), "encrypted");
}

#[test]
fn a_broken_cross_reference_is_a_format_failure() {
    let pki = LongTermPki::new();
    let pdf = signed(&pki);

    // startxref pointing into the middle of an object.
    let at = pdf.len() - 40 + common::find(&pdf[pdf.len() - 40..], b"startxref");
    let mut broken = pdf[..at].to_vec();
    broken.extend_from_slice(b"startxref\n17\n%%EOF\n");
    assert_format_failure(
        &verify(&broken),
        "not a readable PDF: malformed PDF at byte",
    );

    // Every offset of the newest table moved by 3 bytes (the digits keep their width).
    let xref = common::find(&pdf[pdf.len() - 2000..], b"\nxref\n") + pdf.len() - 2000;
    let mut broken = pdf.clone();
    let table_end = xref + common::find(&pdf[xref..], b"trailer");
    let text = String::from_utf8(pdf[xref..table_end].to_vec()).unwrap();
    let shifted: String = text
        .lines()
        .map(|line| match line.split(' ').collect::<Vec<_>>()[..] {
            [offset, generation, "n\r"] | [offset, generation, "n"] if offset.len() == 10 => {
                format!(
                    "{:010} {generation} n\r",
                    offset.parse::<u64>().unwrap() + 3
                )
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        shifted.len(),
        text.len() - usize::from(text.ends_with('\n'))
    );
    broken[xref..xref + shifted.len()].copy_from_slice(shifted.as_bytes());
    let report = verify(&broken);
    assert_format_failure(&report, "not a readable PDF");
}

#[test]
fn object_graphs_ten_thousand_deep_are_refused_by_their_bounds() {
    let pki = LongTermPki::new();
    let pdf = signed(&pki);
    let first_new = 1000u32;
    let n = 10_000u32;

    // A chain of 10,000 fields, each the only kid of the one before.
    let (form, _) = form_with_fields(&pdf, "[]");
    let (_, body) = form_with_fields(&pdf, &format!("[{first_new} 0 R]"));
    let mut objects = vec![(form, body)];
    for i in 0..n {
        let number = first_new + i;
        let kids = if i + 1 < n {
            format!("/Kids [{} 0 R]", number + 1)
        } else {
            String::new()
        };
        objects.push((
            number,
            format!("<< /FT /Sig /T (f{i}) {kids} >>").into_bytes(),
        ));
    }
    assert_format_failure(
        &verify(&append_raw(&pdf, &objects, None)),
        "nested more than",
    );

    // 10,000 nested arrays as the form's /Fields.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (form, body) = form_with_fields(&pdf, &deep);
    assert_format_failure(
        &verify(&append_raw(&pdf, &[(form, body)], None)),
        "nested more than",
    );

    // A chain of 10,000 references as the form's /Fields.
    let (form, body) = form_with_fields(&pdf, &format!("{first_new} 0 R"));
    let mut objects = vec![(form, body)];
    for i in 0..n {
        objects.push((
            first_new + i,
            format!("{} 0 R", first_new + i + 1).into_bytes(),
        ));
    }
    assert_format_failure(
        &verify(&append_raw(&pdf, &objects, None)),
        "chain of more than",
    );

    // A page tree 10,000 deep replacing the document's: a change after signing, read within
    // bounds.
    let mut objects = Vec::new();
    let mut file = PdfFile::open(Cursor::new(pdf.clone())).unwrap();
    let (catalog_id, catalog) = file.catalog().unwrap();
    let mut catalog = catalog;
    catalog.set("Pages", imza_pdf::ObjectId::new(first_new, 0));
    objects.push((catalog_id.number, Object::Dictionary(catalog).to_bytes()));
    for i in 0..n {
        let number = first_new + i;
        let body = if i + 1 < n {
            format!("<< /Type /Pages /Kids [{} 0 R] /Count 1 >>", number + 1)
        } else {
            "<< /Type /Page /MediaBox [0 0 595 842] >>".into()
        };
        objects.push((number, body.into_bytes()));
    }
    let report = verify(&append_raw(&pdf, &objects, None));
    assert!(!report.valid);
    assert_eq!(
        report.signatures[0].pdf.as_ref().unwrap().finding,
        Some("changed_after_signing")
    );
}

/// A zlib stream that inflates to `mib` MiB of zeros from about a KiB per MiB: one block of a
/// MiB of zeros ended by a full flush (no reference back past it) repeated.
fn zlib_bomb(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut compress = Compress::new(Compression::best(), true);
    let mut head = Vec::with_capacity(1 << 16);
    compress
        .compress_vec(&zeros, &mut head, FlushCompress::Full)
        .unwrap();
    let mut block = Vec::with_capacity(1 << 16);
    compress
        .compress_vec(&zeros, &mut block, FlushCompress::Full)
        .unwrap();
    assert_eq!(compress.total_in(), 2 << 20, "the buffers were too small");
    let mut bomb = head;
    for _ in 1..mib {
        bomb.extend_from_slice(&block);
    }
    bomb
}

/// A PDF whose catalog is object 1 in object stream 2 (with `data` as the stream's bytes),
/// found through a cross-reference stream (object 3) whose own data is `xref_data` when
/// given.
fn object_stream_pdf(data: &[u8], xref_data: Option<&[u8]>) -> Vec<u8> {
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let objstm = pdf.len();
    pdf.extend_from_slice(
        format!(
            "2 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length {} >>\nstream\n",
            data.len()
        )
        .as_bytes(),
    );
    pdf.extend_from_slice(data);
    pdf.extend_from_slice(b"\nendstream\nendobj\n");
    let xref = pdf.len();
    // Rows (type, offset 4 bytes, generation/index 1 byte) for objects 0..=3.
    let mut rows = vec![0u8, 0, 0, 0, 0, 255];
    rows.extend_from_slice(&[2, 0, 0, 0, 2, 0]);
    rows.extend_from_slice(&[1]);
    rows.extend_from_slice(&(objstm as u32).to_be_bytes());
    rows.push(0);
    rows.extend_from_slice(&[1]);
    rows.extend_from_slice(&(xref as u32).to_be_bytes());
    rows.push(0);
    let (rows, filter) = match xref_data {
        Some(bomb) => (bomb.to_vec(), "/Filter /FlateDecode"),
        None => (rows, ""),
    };
    pdf.extend_from_slice(
        format!(
            "3 0 obj\n<< /Type /XRef /Size 4 /W [1 4 1] /Root 1 0 R {filter} /Length {} >>\nstream\n",
            rows.len()
        )
        .as_bytes(),
    );
    pdf.extend_from_slice(&rows);
    pdf.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xref}\n%%EOF\n").as_bytes());
    pdf
}

#[test]
fn compression_bombs_stop_at_the_inflate_limit() {
    // The structure is sound: the same file with a real object stream opens.
    let catalog = b"1 0 << /Type /Catalog >>";
    let mut compressed = Vec::new();
    {
        use std::io::Write;
        let mut encoder =
            flate2::write::ZlibEncoder::new(&mut compressed, flate2::Compression::default());
        encoder.write_all(catalog).unwrap();
        encoder.finish().unwrap();
    }
    let sound = object_stream_pdf(&compressed, None);
    let mut file = PdfFile::open(Cursor::new(sound.clone())).unwrap();
    assert!(file.catalog().is_ok());
    assert_format_failure(&verify(&sound), "no signature");

    // 4 GiB of zeros in the object stream that holds the catalog.
    let bomb = zlib_bomb(4096);
    assert!(bomb.len() < 8 << 20, "{}", bomb.len());
    assert_format_failure(&verify(&object_stream_pdf(&bomb, None)), "inflates beyond");

    // 512 MiB in the cross-reference stream itself (its limit is its rows' size), and 4 GiB
    // (whose compressed data is already beyond what such a stream may be).
    assert_format_failure(
        &verify(&object_stream_pdf(&compressed, Some(&zlib_bomb(512)))),
        "inflates beyond",
    );
    assert_format_failure(
        &verify(&object_stream_pdf(&compressed, Some(&bomb))),
        "a stream larger than",
    );
}
