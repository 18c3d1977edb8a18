//! The attacks on PDF signatures of pdf-insecurity.org, built here on documents imza signed
//! (byte surgery, and incremental updates through imza-pdf), each detected with its own
//! finding and sub-indication: incremental saving, signature wrapping, universal signature
//! forgery, shadow attacks (hide, replace, hide-and-replace), DocMDP violations; and what a
//! signature must survive (DSS and document time-stamps after it).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Cursor;

use common::long_term::LongTermPki;
use imza_pdf::{Dictionary, IncrementalUpdate, Object, ObjectId, PdfFile, PdfString, Stream};
use imza_signer::pades::{augment_pdf, DocMdp};
use imza_signer::{Indication, Level, SignatureReport, SubIndication, ValidationReport};
use imza_testdata::pdf::simple_pdf;

/// simple_pdf's objects.
const PAGES: ObjectId = ObjectId::new(2, 0);
const PAGE: ObjectId = ObjectId::new(3, 0);
const CONTENT: ObjectId = ObjectId::new(4, 0);
const FONT: ObjectId = ObjectId::new(5, 0);

fn document() -> Vec<u8> {
    simple_pdf(&["Etibarname", "Mebleg: 100 AZN"], 0)
}

fn sign(pki: &LongTermPki, pdf: &[u8], level: Level, certification: Option<DocMdp>) -> Vec<u8> {
    pki.sign_pdf(pdf, level, certification)
}

fn verify(pki: &LongTermPki, pdf: &[u8]) -> ValidationReport {
    pki.verify_pdf(pdf, true)
}

/// `pdf` with one incremental update made by `edit`.
fn update(
    pdf: &[u8],
    edit: impl FnOnce(&mut PdfFile<Cursor<Vec<u8>>>, &mut IncrementalUpdate),
) -> Vec<u8> {
    let mut file = PdfFile::open(Cursor::new(pdf.to_vec())).unwrap();
    let mut update = IncrementalUpdate::new(&mut file).unwrap();
    edit(&mut file, &mut update);
    [pdf, &update.write().unwrap().bytes].concat()
}

fn dictionary(file: &mut PdfFile<Cursor<Vec<u8>>>, id: ObjectId) -> Dictionary {
    match file.object(id).unwrap() {
        Object::Dictionary(d) => d,
        other => panic!("{id} is a {}", other.kind()),
    }
}

fn content_stream(text: &str) -> Stream {
    Stream::new(Dictionary::new(), text.as_bytes().to_vec())
}

/// The signature report of the first signature (the one under attack).
fn first(report: &ValidationReport) -> &SignatureReport {
    &report.signatures[0]
}

#[track_caller]
fn assert_finding(
    report: &ValidationReport,
    index: usize,
    finding: &str,
    indication: Indication,
    sub: SubIndication,
) {
    let signature = &report.signatures[index];
    let json = serde_json::to_string_pretty(report).unwrap();
    assert!(!report.valid, "{json}");
    assert_eq!(
        signature.pdf.as_ref().and_then(|p| p.finding),
        Some(finding),
        "{json}"
    );
    assert_eq!(signature.indication, indication, "{json}");
    assert_eq!(signature.sub_indication, Some(sub), "{json}");
}

#[track_caller]
fn assert_changed_after_signing(report: &ValidationReport, mentions: &str) {
    assert_finding(
        report,
        0,
        "changed_after_signing",
        Indication::TotalFailed,
        SubIndication::HASH_FAILURE,
    );
    let pdf = first(report).pdf.as_ref().unwrap();
    assert_eq!(pdf.modification, "other");
    let last = pdf.later_revisions.last().unwrap();
    assert_eq!(last.kind, "other");
    assert!(!last.allowed);
    assert!(
        last.changes.iter().any(|c| c.contains(mentions)),
        "{mentions:?} not in {:?}",
        last.changes
    );
}

#[track_caller]
fn assert_beyond_permissions(report: &ValidationReport, index: usize, mentions: &str) {
    assert_finding(
        report,
        index,
        "changes_beyond_permissions",
        Indication::Indeterminate,
        SubIndication::SIG_CONSTRAINTS_FAILURE,
    );
    let pdf = report.signatures[index].pdf.as_ref().unwrap();
    let last = pdf.later_revisions.last().unwrap();
    assert!(!last.allowed);
    assert!(
        last.changes.iter().any(|c| c.contains(mentions)),
        "{mentions:?} not in {:?}",
        last.changes
    );
}

/// An overlay annotation covering the page with a white box (the "hide" shadow attack).
fn add_overlay(file: &mut PdfFile<Cursor<Vec<u8>>>, update: &mut IncrementalUpdate) {
    let mut appearance = Dictionary::new();
    appearance.set("Type", Object::name("XObject"));
    appearance.set("Subtype", Object::name("Form"));
    appearance.set("BBox", rect([0, 0, 595, 842]));
    let appearance = update.add(Object::Stream(Stream::new(
        appearance,
        b"1 g 0 0 595 842 re f".to_vec(),
    )));
    let mut ap = Dictionary::new();
    ap.set("N", appearance);
    let mut annotation = Dictionary::new();
    annotation.set("Type", Object::name("Annot"));
    annotation.set("Subtype", Object::name("Square"));
    annotation.set("Rect", rect([0, 0, 595, 842]));
    annotation.set("AP", ap);
    let annotation = update.add(annotation);
    let mut page = dictionary(file, PAGE);
    let mut annots = page
        .get("Annots")
        .and_then(Object::as_array)
        .map(<[Object]>::to_vec)
        .unwrap_or_default();
    annots.push(annotation.into());
    page.set("Annots", annots);
    update.set(PAGE, page);
}

fn rect(values: [i64; 4]) -> Object {
    values
        .iter()
        .map(|v| Object::Integer(*v))
        .collect::<Vec<_>>()
        .into()
}

/// Adds `field` to the form's `/Fields` (the form held in the catalog or as its own object).
fn add_to_form(
    file: &mut PdfFile<Cursor<Vec<u8>>>,
    update: &mut IncrementalUpdate,
    field: ObjectId,
) {
    let (catalog_id, mut catalog) = file.catalog().unwrap();
    let push = |form: &mut Dictionary| {
        let mut fields = form
            .get("Fields")
            .and_then(Object::as_array)
            .map(<[Object]>::to_vec)
            .unwrap_or_default();
        fields.push(field.into());
        form.set("Fields", fields);
    };
    match catalog.get("AcroForm").cloned() {
        Some(Object::Reference(form_id)) => {
            let mut form = dictionary(file, form_id);
            push(&mut form);
            update.set(form_id, form);
        }
        Some(Object::Dictionary(mut form)) => {
            push(&mut form);
            catalog.set("AcroForm", form);
            update.set(catalog_id, catalog);
        }
        _ => {
            let mut form = Dictionary::new();
            push(&mut form);
            let form = update.add(form);
            catalog.set("AcroForm", form);
            update.set(catalog_id, catalog);
        }
    }
}

/// simple_pdf with a text field ("Amount") on its page, to fill in after signing.
fn document_with_text_field() -> (Vec<u8>, ObjectId) {
    let mut field_id = None;
    let pdf = update(&document(), |file, update| {
        let mut field = Dictionary::new();
        field.set("FT", Object::name("Tx"));
        field.set("T", PdfString::text("Amount"));
        field.set("Type", Object::name("Annot"));
        field.set("Subtype", Object::name("Widget"));
        field.set("Rect", rect([72, 600, 300, 620]));
        field.set("P", PAGE);
        let id = update.add(field);
        field_id = Some(id);
        add_to_form(file, update, id);
        let mut page = dictionary(file, PAGE);
        page.set("Annots", vec![Object::from(id)]);
        update.set(PAGE, page);
    });
    (pdf, field_id.unwrap())
}

fn fill_in(pdf: &[u8], field_id: ObjectId) -> Vec<u8> {
    update(pdf, |file, update| {
        let mut field = dictionary(file, field_id);
        field.set("V", PdfString::text("999999 AZN"));
        update.set(field_id, field);
    })
}

// ---- Incremental saving attack ----

#[test]
fn content_appended_after_the_signature_is_a_change_after_signing() {
    let pki = LongTermPki::new();
    let signed = sign(&pki, &document(), Level::B, None);
    assert!(verify(&pki, &signed).valid);

    // The page's content stream redefined in a new revision.
    let attacked = update(&signed, |_, update| {
        update.set(
            CONTENT,
            Object::Stream(content_stream(
                "BT /F1 12 Tf 72 770 Td (Mebleg: 100000 AZN) Tj ET",
            )),
        );
    });
    let report = verify(&pki, &attacked);
    assert_changed_after_signing(&report, "page content");
    assert!(!first(&report).pdf.as_ref().unwrap().covers_whole_document);

    // A new page added.
    let attacked = update(&signed, |file, update| {
        let content = update.add(Object::Stream(content_stream(
            "BT /F1 12 Tf 72 770 Td (Elave: 1000 AZN) Tj ET",
        )));
        let mut page = dictionary(file, PAGE);
        page.set("Contents", content);
        let new_page = update.add(page);
        let mut pages = dictionary(file, PAGES);
        pages.set("Kids", vec![Object::from(PAGE), new_page.into()]);
        pages.set("Count", Object::Integer(2));
        update.set(PAGES, pages);
    });
    let report = verify(&pki, &attacked);
    assert_changed_after_signing(&report, "Pages");
    let changes = &first(&report).pdf.as_ref().unwrap().later_revisions[0].changes;
    assert!(
        changes
            .iter()
            .any(|c| c.contains("Page") && c.contains("added")),
        "{changes:?}"
    );
}

// ---- Signature wrapping ----

/// Where the signature's `/ByteRange [..]` is (from `[` to `]`), and its four numbers.
fn byte_range(pdf: &[u8]) -> (std::ops::Range<usize>, [u64; 4]) {
    let at = common::find(pdf, b"/ByteRange [") + b"/ByteRange ".len();
    let end = at + pdf[at..].iter().position(|b| *b == b']').unwrap() + 1;
    let text = std::str::from_utf8(&pdf[at + 1..end - 1]).unwrap();
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (at..end, numbers.try_into().unwrap())
}

/// `pdf` with the signature's `/ByteRange` value rewritten in place (padded with spaces to
/// the same width, so that nothing else moves).
fn with_byte_range(pdf: &[u8], value: &str) -> Vec<u8> {
    let (slot, _) = byte_range(pdf);
    assert!(value.len() <= slot.len(), "{value} does not fit");
    let mut out = pdf.to_vec();
    out[slot.clone()].fill(b' ');
    out[slot.start..slot.start + value.len()].copy_from_slice(value.as_bytes());
    out
}

/// The signature dictionary's id (the value of the form's only field).
fn signature_value(file: &mut PdfFile<Cursor<Vec<u8>>>) -> ObjectId {
    let (_, catalog) = file.catalog().unwrap();
    let form = file.resolve(catalog.get("AcroForm").unwrap()).unwrap();
    let fields = file
        .resolve(form.as_dictionary().unwrap().get("Fields").unwrap())
        .unwrap();
    let field = fields.as_array().unwrap()[0].as_reference().unwrap();
    dictionary(file, field)
        .get("V")
        .unwrap()
        .as_reference()
        .unwrap()
}

#[test]
fn signature_wrapping_is_refused_before_anything_is_hashed() {
    let pki = LongTermPki::new();
    let signed = sign(&pki, &document(), Level::B, None);
    let (_, [_, b, c, d]) = byte_range(&signed);
    assert_eq!(c + d, signed.len() as u64);

    // The signed range stops short of the revision's end.
    let short = with_byte_range(&signed, &format!("[0 {b} {c} {}]", d - 40));
    assert_finding(
        &verify(&pki, &short),
        0,
        "not_at_revision_end",
        Indication::TotalFailed,
        SubIndication::FORMAT_FAILURE,
    );
    // The gap wider than /Contents.
    let wide = with_byte_range(&signed, &format!("[0 {} {c} {d}]", b - 1));
    assert_finding(
        &verify(&pki, &wide),
        0,
        "contents_not_in_gap",
        Indication::TotalFailed,
        SubIndication::FORMAT_FAILURE,
    );
    // The gap moved (same width) off the /Contents string.
    let moved = with_byte_range(&signed, &format!("[0 {} {} {}]", b - 3, c - 3, d + 3));
    assert_finding(
        &verify(&pki, &moved),
        0,
        "contents_not_in_gap",
        Indication::TotalFailed,
        SubIndication::FORMAT_FAILURE,
    );

    // The signature dictionary copied into a new revision (same object number): with its
    // ByteRange as signed, the dictionary the field shows is not the one signed …
    let copied = update(&signed, |file, update| {
        let value = signature_value(file);
        let mut dictionary = dictionary(file, value);
        dictionary.set("Reason", PdfString::text("wrapped"));
        update.set(value, dictionary);
    });
    assert_finding(
        &verify(&pki, &copied),
        0,
        "signature_dictionary_replaced",
        Indication::TotalFailed,
        SubIndication::FORMAT_FAILURE,
    );
    // … and with a ByteRange stretched over the new revision (the old /Contents still in its
    // gap), the dictionary lies after the gap it claims.
    let mut stretched = update(&signed, |file, update| {
        let value = signature_value(file);
        let mut dictionary = dictionary(file, value);
        dictionary.set("ByteRange", rect([0, b as i64, c as i64, 9_999_999_999]));
        update.set(value, dictionary);
    });
    let at = signed.len() + common::find(&stretched[signed.len()..], b"9999999999");
    let new_d = format!("{:<10}", stretched.len() as u64 - c);
    stretched[at..at + 10].copy_from_slice(new_d.as_bytes());
    assert_finding(
        &verify(&pki, &stretched),
        0,
        "contents_not_in_gap",
        Indication::TotalFailed,
        SubIndication::FORMAT_FAILURE,
    );
}

// ---- Universal signature forgery ----

#[test]
fn universal_signature_forgery_variants_are_format_failures() {
    let pki = LongTermPki::new();
    let signed = sign(&pki, &document(), Level::B, None);
    let (_, [_, b, c, _]) = byte_range(&signed);
    let contents = (b as usize)..(c as usize);

    let rename = |from: &[u8], to: &[u8]| {
        let mut out = signed.clone();
        let at = common::find(&out, from);
        out[at..at + to.len()].copy_from_slice(to);
        out
    };
    let contents_as = |value: &[u8]| {
        let mut out = signed.clone();
        out[contents.clone()].fill(b' ');
        out[contents.start..contents.start + value.len()].copy_from_slice(value);
        out
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "no /ByteRange",
            rename(b"/ByteRange", b"/ByteRangX"),
            "byte_range_malformed",
        ),
        (
            "empty /ByteRange",
            with_byte_range(&signed, "[]"),
            "byte_range_malformed",
        ),
        (
            "three numbers",
            with_byte_range(&signed, "[0 10 20]"),
            "byte_range_malformed",
        ),
        (
            "five numbers",
            with_byte_range(&signed, &format!("[0 {b} {c} 10 20]")),
            "byte_range_malformed",
        ),
        (
            "negative",
            with_byte_range(&signed, &format!("[0 {b} {c} -5]")),
            "byte_range_malformed",
        ),
        (
            "not from 0",
            with_byte_range(&signed, &format!("[10 {b} {c} 20]")),
            "byte_range_malformed",
        ),
        (
            "past the end",
            with_byte_range(&signed, &format!("[0 {b} {c} 99999999]")),
            "byte_range_malformed",
        ),
        (
            "reals",
            with_byte_range(&signed, "[0.0 1.5 2 3]"),
            "byte_range_malformed",
        ),
        (
            "names",
            with_byte_range(&signed, "[/A /B /C /D]"),
            "byte_range_malformed",
        ),
        (
            "no /Contents",
            rename(b"/Contents <", b"/Contentz <"),
            "contents_malformed",
        ),
        ("empty /Contents", contents_as(b"<>"), "contents_malformed"),
        ("/Contents null", contents_as(b"null"), "contents_malformed"),
        (
            "/Contents a literal",
            contents_as(b"(abc)"),
            "contents_malformed",
        ),
    ];
    for (name, forged, finding) in cases {
        let report = verify(&pki, &forged);
        println!("{name}: {:?}", first(&report).errors);
        assert_finding(
            &report,
            0,
            finding,
            Indication::TotalFailed,
            SubIndication::FORMAT_FAILURE,
        );
        assert!(!first(&report).errors.is_empty(), "{name}");
    }
}

// ---- Shadow attacks ----

#[test]
fn shadow_hide_by_overlay_annotation_goes_beyond_an_approval() {
    let pki = LongTermPki::new();
    let signed = sign(&pki, &document(), Level::B, None);
    let attacked = update(&signed, add_overlay);
    let report = verify(&pki, &attacked);
    assert_beyond_permissions(&report, 0, "Square annotation");
    let pdf = first(&report).pdf.as_ref().unwrap();
    assert_eq!(pdf.modification, "annotations");
    assert_eq!(pdf.later_revisions[0].kind, "annotations");
}

#[test]
fn shadow_hide_by_changing_an_xobject_is_a_change_after_signing() {
    let pki = LongTermPki::new();
    // A document whose page draws a form XObject.
    let mut xobject_id = None;
    let with_xobject = update(&document(), |file, update| {
        let mut form = Dictionary::new();
        form.set("Type", Object::name("XObject"));
        form.set("Subtype", Object::name("Form"));
        form.set("BBox", rect([0, 0, 595, 842]));
        let mut fonts = Dictionary::new();
        fonts.set("F1", FONT);
        let mut resources = Dictionary::new();
        resources.set("Font", fonts.clone());
        form.set("Resources", resources);
        let id = update.add(Object::Stream(Stream::new(
            form,
            b"BT /F1 12 Tf 72 700 Td (Shert: odenis 30 gun erzinde) Tj ET".to_vec(),
        )));
        xobject_id = Some(id);
        let mut xobjects = Dictionary::new();
        xobjects.set("X1", id);
        let mut resources = Dictionary::new();
        resources.set("Font", fonts);
        resources.set("XObject", xobjects);
        let mut page = dictionary(file, PAGE);
        page.set("Resources", resources);
        update.set(PAGE, page);
        update.set(
            CONTENT,
            Object::Stream(content_stream(
                "BT /F1 12 Tf 72 770 Td (Etibarname) Tj ET /X1 Do",
            )),
        );
    });
    let xobject_id = xobject_id.unwrap();
    let signed = sign(&pki, &with_xobject, Level::B, None);
    assert!(verify(&pki, &signed).valid);
    let attacked = update(&signed, |file, update| {
        let Object::Stream(old) = file.object(xobject_id).unwrap() else {
            panic!("not a stream");
        };
        let mut dictionary = old.dictionary.clone();
        dictionary.remove("Length");
        update.set(
            xobject_id,
            Object::Stream(Stream::new(dictionary, b"".to_vec())),
        );
    });
    assert_changed_after_signing(&verify(&pki, &attacked), "XObject");
}

#[test]
fn shadow_replace_of_a_font_or_content_stream_is_a_change_after_signing() {
    let pki = LongTermPki::new();
    let signed = sign(&pki, &document(), Level::B, None);
    let font = update(&signed, |_, update| {
        let mut courier = Dictionary::new();
        courier.set("Type", Object::name("Font"));
        courier.set("Subtype", Object::name("Type1"));
        courier.set("BaseFont", Object::name("Courier"));
        update.set(FONT, courier);
    });
    assert_changed_after_signing(&verify(&pki, &font), "Font");

    let content = update(&signed, |_, update| {
        update.set(
            CONTENT,
            Object::Stream(content_stream(
                "BT /F1 12 Tf 72 770 Td (Vekaletname legv) Tj ET",
            )),
        );
    });
    assert_changed_after_signing(&verify(&pki, &content), "page content");
}

#[test]
fn shadow_hide_and_replace_by_redefining_the_signed_pages_resources_is_a_change() {
    let pki = LongTermPki::new();
    let signed = sign(&pki, &document(), Level::B, None);
    let attacked = update(&signed, |file, update| {
        let mut other = Dictionary::new();
        other.set("Type", Object::name("Font"));
        other.set("Subtype", Object::name("Type1"));
        other.set("BaseFont", Object::name("Symbol"));
        let other = update.add(other);
        let mut fonts = Dictionary::new();
        fonts.set("F1", other);
        let mut resources = Dictionary::new();
        resources.set("Font", fonts);
        let mut page = dictionary(file, PAGE);
        page.set("Resources", resources);
        update.set(PAGE, page);
    });
    let report = verify(&pki, &attacked);
    assert_changed_after_signing(&report, "/Resources was changed");
}

// ---- DocMDP ----

#[test]
fn a_p1_certification_refuses_a_later_signature_and_form_filling() {
    let pki = LongTermPki::new();
    let (with_field, field_id) = document_with_text_field();
    let certified = sign(&pki, &with_field, Level::B, Some(DocMdp::NoChanges));
    let report = verify(&pki, &certified);
    assert!(report.valid, "{report:?}");
    assert_eq!(first(&report).pdf.as_ref().unwrap().certification, Some(1));

    // Form filling.
    let report = verify(&pki, &fill_in(&certified, field_id));
    assert_beyond_permissions(&report, 0, "filled in");
    assert_eq!(
        first(&report).pdf.as_ref().unwrap().modification,
        "form_filling"
    );

    // A later (approval) signature, added by hand since imza refuses to sign a P1
    // document: the certification reports it; the forged signature itself is malformed.
    let signed_again = update(&certified, |file, update| {
        let mut value = Dictionary::new();
        value.set("Type", Object::name("Sig"));
        value.set("Filter", Object::name("Adobe.PPKLite"));
        value.set("SubFilter", Object::name("ETSI.CAdES.detached"));
        value.set("ByteRange", rect([0, 0, 0, 0]));
        value.set("Contents", PdfString::hex(vec![0u8; 8]));
        let value = update.add(value);
        let mut field = Dictionary::new();
        field.set("FT", Object::name("Sig"));
        field.set("T", PdfString::text("Late"));
        field.set("V", value);
        let field = update.add(field);
        add_to_form(file, update, field);
    });
    let report = verify(&pki, &signed_again);
    assert_beyond_permissions(&report, 0, "a signature");
    assert_eq!(report.signatures.len(), 2);
    assert_eq!(
        report.signatures[1].pdf.as_ref().unwrap().finding,
        Some("byte_range_malformed")
    );
}

#[test]
fn a_p2_certification_allows_form_filling_and_signing_but_not_annotations() {
    let pki = LongTermPki::new();
    let (with_field, field_id) = document_with_text_field();
    let certified = sign(&pki, &with_field, Level::B, Some(DocMdp::FormFilling));

    let filled = fill_in(&certified, field_id);
    let report = verify(&pki, &filled);
    assert!(
        report.valid,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    let pdf = first(&report).pdf.as_ref().unwrap();
    assert_eq!(pdf.modification, "form_filling");
    assert!(pdf.later_revisions[0].allowed);

    let approved = sign(&pki, &certified, Level::B, None);
    let report = verify(&pki, &approved);
    assert!(
        report.valid,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert_eq!(report.signatures.len(), 2);
    assert_eq!(
        first(&report).pdf.as_ref().unwrap().modification,
        "form_filling"
    );

    let annotated = update(&certified, add_overlay);
    let report = verify(&pki, &annotated);
    assert_beyond_permissions(&report, 0, "annotation");
}

// ---- What a signature must survive ----

#[test]
fn dss_and_document_timestamps_after_a_signature_keep_it_valid() {
    let pki = LongTermPki::new();
    let lta = sign(&pki, &document(), Level::LTA, None);
    let report = verify(&pki, &lta);
    assert!(
        report.valid,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    let pdf = first(&report).pdf.as_ref().unwrap();
    assert_eq!(pdf.modification, "lta_updates");
    assert!(pdf
        .later_revisions
        .iter()
        .all(|r| r.allowed && r.kind == "lta_updates"));
    let changes: Vec<&String> = pdf
        .later_revisions
        .iter()
        .flat_map(|r| &r.changes)
        .collect();
    assert!(changes.iter().any(|c| c.contains("DSS")), "{changes:?}");
    assert!(
        changes.iter().any(|c| c.contains("document time-stamp")),
        "{changes:?}"
    );

    // A B-B signature raised to LTA afterwards: a first document time-stamp stands for its
    // signature time-stamp (B-T), then the DSS (B-LT) and a second time-stamp over it (B-LTA);
    // raising it again renews the protection and stays B-LTA.
    let mut file = Cursor::new(sign(&pki, &document(), Level::B, None));
    let options = pki.options(Level::LTA);
    augment_pdf(&mut file, Level::LTA, &options.augment).unwrap();
    let report = verify(&pki, file.get_ref());
    assert!(
        report.valid,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert_eq!(first(&report).level, Some("B-LTA"));
    augment_pdf(&mut file, Level::LTA, &options.augment).unwrap();
    let report = verify(&pki, file.get_ref());
    assert!(
        report.valid,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert_eq!(first(&report).level, Some("B-LTA"));
    assert_eq!(
        first(&report).pdf.as_ref().unwrap().modification,
        "lta_updates"
    );
    // And an overlay after all that still shows.
    let attacked = update(file.get_ref(), add_overlay);
    assert_beyond_permissions(&verify(&pki, &attacked), 0, "annotation");
}
