//! A new document as independent PDF tools see it: `qpdf --check` finds nothing wrong,
//! `pdftotext` gives back the text drawn (Azerbaijani letters intact), `pdffonts` lists the
//! fonts as embedded subsets (the tools are run by `imza_testenv::tools`).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use imza_pdf::{DocumentBuilder, DocumentInfo, FontProgram, GrayImage, PageSize, Rect};
use imza_testenv::tools::{pdftotext, qpdf_check_clean};

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static DEJAVU_SANS_BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

const LINES: [&str; 3] = [
    "Yaşayış yeri haqqında arayış",
    "Əsgər Ğəniyev İsmayıl oğlu: Şuşa, Çənlibel, Ölməz, Ümid; ağıllı şüşə çörək",
    "Şəki şəhəri, Mirzə Fətəli Axundzadə küçəsi 12",
];

fn write_document(dir: &Path) -> std::path::PathBuf {
    let regular = FontProgram::parse(DEJAVU_SANS).unwrap();
    let bold = FontProgram::parse(DEJAVU_SANS_BOLD).unwrap();
    let mut builder = DocumentBuilder::new();
    let sans = builder.add_font(&regular);
    let sans_bold = builder.add_font(&bold);
    let checker = GrayImage::new(8, 8, 8, (0..64).map(|i| (i * 4) as u8).collect()).unwrap();
    let image = builder.add_image(checker);
    let mut page = builder.page(PageSize::A4);
    page.text_centered(sans_bold, 16.0, 297.6, 780.0, LINES[0])
        .unwrap();
    page.set_line_width(0.5);
    page.line(56.0, 770.0, 540.0, 770.0);
    page.text(sans, 11.0, 56.0, 740.0, LINES[1]).unwrap();
    page.set_fill_gray(0.3);
    page.text(sans, 11.0, 56.0, 720.0, LINES[2]).unwrap();
    page.set_fill_gray(0.0);
    page.stroke_rect(Rect {
        x: 56.0,
        y: 600.0,
        width: 100.0,
        height: 50.0,
    });
    page.image(
        image,
        Rect {
            x: 200.0,
            y: 600.0,
            width: 50.0,
            height: 50.0,
        },
    )
    .unwrap();
    page.finish();
    let file = builder
        .finish(&DocumentInfo {
            title: LINES[0].into(),
            created: time::OffsetDateTime::now_utc(),
            language: Some("az".into()),
        })
        .unwrap();
    assert!(file.len() < 60_000, "{} bytes", file.len());
    let path = dir.join("new.pdf");
    std::fs::write(&path, file).unwrap();
    path
}

#[test]
fn qpdf_finds_no_error_or_warning() {
    let dir = tempfile::tempdir().unwrap();
    qpdf_check_clean(&write_document(dir.path()));
}

#[test]
fn pdftotext_gives_back_the_azerbaijani_text() {
    let dir = tempfile::tempdir().unwrap();
    let text = pdftotext(&write_document(dir.path()));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines, LINES, "{text}");
    for letter in "əƏğĞıİşŞçÇöÖüÜ".chars() {
        assert!(text.contains(letter), "{letter} missing from {text}");
    }
}

#[test]
fn pdffonts_lists_embedded_subsets() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_document(dir.path());
    let output = Command::new("pdffonts").arg(&path).output().unwrap();
    assert!(output.status.success());
    let listing = String::from_utf8(output.stdout).unwrap();
    let fonts: Vec<&str> = listing.lines().skip(2).collect();
    assert_eq!(fonts.len(), 2, "{listing}");
    let mut names = Vec::new();
    for font in fonts {
        // name, type (two words), encoding, emb, sub, uni, object number and generation
        let columns: Vec<&str> = font.split_whitespace().collect();
        assert_eq!(columns.len(), 9, "{listing}");
        assert_eq!(
            columns[1..7],
            ["CID", "TrueType", "Identity-H", "yes", "yes", "yes"],
            "{listing}"
        );
        let (tag, name) = columns[0].split_once('+').unwrap();
        assert!(tag.len() == 6 && tag.bytes().all(|b| b.is_ascii_uppercase()));
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["DejaVuSans", "DejaVuSans-Bold"]);
}

/// The builder's file as the seal will meet it: imza's own reader opens it (one revision,
/// the page's content and the fonts' streams decode), and an incremental update on top of it
/// still passes qpdf.
#[test]
fn imza_reads_a_new_document_and_updates_it() {
    use std::io::Cursor;

    use imza_pdf::{IncrementalUpdate, Object, PdfFile, PdfString};

    let dir = tempfile::tempdir().unwrap();
    let path = write_document(dir.path());
    let original = std::fs::read(&path).unwrap();
    let mut file = PdfFile::open(Cursor::new(original.clone())).unwrap();
    assert_eq!(file.revisions().len(), 1);
    let (catalog_id, mut catalog) = file.catalog().unwrap();
    let pages = file.resolve(catalog.get("Pages").unwrap()).unwrap();
    let kids = pages.as_dictionary().unwrap().get("Kids").unwrap();
    let page = file.resolve(&kids.as_array().unwrap()[0]).unwrap();
    let contents = file
        .resolve(page.as_dictionary().unwrap().get("Contents").unwrap())
        .unwrap();
    let Object::Stream(contents) = contents else {
        panic!("no content stream");
    };
    let decoded = file.decoded_stream(&contents, 1 << 20).unwrap();
    assert!(decoded.starts_with(b"BT\n/F1 16 Tf\n"), "{decoded:?}");

    let mut update = IncrementalUpdate::new(&mut file).unwrap();
    let note = update.add(PdfString::text("möhür"));
    catalog.set("ImzaTest", note);
    update.set(catalog_id, catalog);
    let written = update.write().unwrap();
    let updated = [&original[..], &written.bytes[..]].concat();
    let file = PdfFile::open(Cursor::new(updated.clone())).unwrap();
    assert_eq!(file.revisions().len(), 2);
    let path = dir.path().join("updated.pdf");
    std::fs::write(&path, updated).unwrap();
    qpdf_check_clean(&path);
}
