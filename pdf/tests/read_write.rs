//! Reading PDFs and appending incremental updates, checked by qpdf.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;
use std::process::Command;

use imza_pdf::{IncrementalUpdate, Object, ObjectId, PdfError, PdfFile, PdfString, XrefKind};
use imza_testenv::tools::qpdf_check;

/// A one-page PDF with a classic cross-reference table, offsets computed.
fn minimal_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        "<< /Length 0 >>\nstream\n\nendstream",
    ];
    let mut pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(b"xref\n0 5\n0000000000 65535 f\r\n");
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n\r\n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    pdf
}

fn update(pdf: &[u8]) -> Vec<u8> {
    let mut file = PdfFile::open(Cursor::new(pdf.to_vec())).unwrap();
    let (catalog_id, mut catalog) = file.catalog().unwrap();
    let mut update = IncrementalUpdate::new(&mut file).unwrap();
    let info = update.add(Object::Dictionary({
        let mut d = imza_pdf::Dictionary::new();
        d.set("Title", PdfString::text("Yaşayış yeri haqqında arayış"));
        d
    }));
    catalog.set("Extra", info);
    update.set(catalog_id, catalog);
    let written = update.write().unwrap();
    [pdf, &written.bytes[..]].concat()
}

#[test]
fn an_update_to_a_table_file_is_read_back_as_a_second_revision_and_qpdf_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let original = minimal_pdf();
    let updated = update(&original);
    assert!(updated.starts_with(&original));
    let path = dir.path().join("updated.pdf");
    std::fs::write(&path, &updated).unwrap();
    qpdf_check(&path);

    let mut file = PdfFile::open(Cursor::new(updated)).unwrap();
    assert_eq!(file.revisions().len(), 2);
    assert_eq!(file.revisions()[0].end, original.len() as u64);
    let changed: Vec<u32> = file.changed_in(1).keys().copied().collect();
    assert_eq!(changed, vec![1, 5]);
    let (_, catalog) = file.catalog().unwrap();
    let extra = catalog.get("Extra").and_then(Object::as_reference).unwrap();
    let title = file.object(extra).unwrap();
    let title = title
        .as_dictionary()
        .unwrap()
        .get("Title")
        .unwrap()
        .as_string()
        .unwrap()
        .to_text();
    assert_eq!(title, "Yaşayış yeri haqqında arayış");
    let (_, old_catalog) = file.catalog_in(0).unwrap();
    assert!(!old_catalog.contains("Extra"));
    assert_eq!(
        file.object_in(0, ObjectId::new(5, 0)).unwrap(),
        Object::Null
    );
}

#[test]
fn an_update_to_a_file_with_object_and_xref_streams_is_an_xref_stream_and_qpdf_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.pdf");
    std::fs::write(&plain, minimal_pdf()).unwrap();
    let streams = dir.path().join("streams.pdf");
    let status = Command::new("qpdf")
        .args(["--object-streams=generate", "--compress-streams=y"])
        .arg(&plain)
        .arg(&streams)
        .status()
        .expect("qpdf");
    assert!(status.success());
    let original = std::fs::read(&streams).unwrap();
    let mut file = PdfFile::open(Cursor::new(original.clone())).unwrap();
    assert_eq!(file.newest_section().kind, XrefKind::Stream);
    let (_, catalog) = file.catalog().unwrap();
    let pages = file.resolve(catalog.get("Pages").unwrap()).unwrap();
    assert!(pages.as_dictionary().unwrap().is_type("Pages"));

    let updated = update(&original);
    let path = dir.path().join("updated.pdf");
    std::fs::write(&path, &updated).unwrap();
    qpdf_check(&path);
    let file = PdfFile::open(Cursor::new(updated)).unwrap();
    assert_eq!(file.newest_section().kind, XrefKind::Stream);
    assert_eq!(file.revisions().len(), 2);
}

#[test]
fn bad_files_get_clear_errors() {
    let good = minimal_pdf();
    let encrypted = String::from_utf8_lossy(&good)
        .replace("/Size 5 /Root 1 0 R", "/Size 5 /Root 1 0 R /Encrypt 9 0 R")
        .into_bytes();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not a PDF", b"hello world, this is text".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        (
            "startxref past the end",
            String::from_utf8_lossy(&good)
                .replace("startxref\n", "startxref\n9")
                .into_bytes(),
        ),
        ("encrypted", encrypted),
    ];
    for (name, bytes) in cases {
        match PdfFile::open(Cursor::new(bytes)) {
            Ok(_) => panic!("{name}: opened"),
            Err(e @ PdfError::Encrypted) => assert_eq!(name, "encrypted", "{e}"),
            Err(e) => assert!(!e.to_string().is_empty(), "{name}"),
        }
    }
}

#[test]
fn an_object_read_again_is_the_same_and_still_checked_against_its_entry() {
    let mut bad = minimal_pdf();
    let at = |pdf: &[u8], what: &[u8]| pdf.windows(what.len()).position(|w| w == what).unwrap();
    let page_at = at(&bad, b"3 0 obj");
    let contents_at = at(&bad, b"4 0 obj");
    // Object 4's entry points at object 3.
    let entry = at(&bad, format!("{contents_at:010} 00000 n").as_bytes());
    bad[entry..entry + 10].copy_from_slice(format!("{page_at:010}").as_bytes());
    let mut file = PdfFile::open(Cursor::new(bad)).unwrap();
    let page = file.object(ObjectId::new(3, 0)).unwrap();
    assert!(page.as_dictionary().unwrap().is_type("Page"));
    assert_eq!(file.object(ObjectId::new(3, 0)).unwrap(), page);
    match file.object(ObjectId::new(4, 0)) {
        Err(PdfError::Structure(why)) => assert!(why.contains("where 3 0 R is"), "{why}"),
        other => panic!("object 4 read from object 3's bytes: {other:?}"),
    }
}
