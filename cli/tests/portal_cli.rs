//! `imza portal code issue`: a one-time access code printed once, kept only as a hash, on the
//! embedded store and on PostgreSQL; bad input refused with exit 2 and nothing stored.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

fn issue(pki: &TestPki, national_id: &str) -> serde_json::Value {
    pki.portal_code(national_id)
}

fn looks_like_a_code(code: &str) -> bool {
    code.len() == 11
        && code.as_bytes()[5] == b'-'
        && code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c))
}

#[test]
fn a_code_is_printed_once_and_kept_only_as_a_hash() {
    let pki = TestPki::with_root_and_citizens();
    let issued = issue(&pki, "5ZK7T2Q");
    assert_eq!(issued["personal_code"], "PNOAZ-5ZK7T2Q");
    let code = issued["code"].as_str().unwrap();
    assert!(looks_like_a_code(code), "{code}");
    let dump = pki.snapshot();
    assert!(dump.contains("portal_access_codes"), "the table is made");
    assert!(
        !dump.contains(&code.replace('-', "")),
        "the code is not kept"
    );
    // A second code replaces the first: still one row.
    let again = issue(&pki, "5ZK7T2Q");
    assert_ne!(again["code"], issued["code"]);
    let rows = pki
        .snapshot()
        .lines()
        .filter(|l| l.starts_with("INSERT INTO portal_access_codes"))
        .count();
    assert_eq!(rows, 1);
    let text = pki.ok(&["portal", "code", "issue", "--national-id", "1AB2C3D"]);
    assert!(text.contains("access code for PNOAZ-1AB2C3D: "), "{text}");
}

#[test]
fn bad_national_ids_and_validities_are_refused_and_nothing_is_stored() {
    let pki = TestPki::with_root_and_citizens();
    // Not even the portal's tables are made for a refused command.
    let before = pki.snapshot();
    for bad in ["5zk7t2q", "5ZK7T2", "5ZK7T2QQ", "5ZK 7T2", ""] {
        let said = pki.exits(&["portal", "code", "issue", "--national-id", bad], &[], 2);
        assert!(said.contains("national id"), "{bad:?}: {said}");
    }
    pki.exits(
        &[
            "portal",
            "code",
            "issue",
            "--national-id",
            "5ZK7T2Q",
            "--valid-hours",
            "0",
        ],
        &[],
        2,
    );
    assert_eq!(pki.snapshot(), before);
    assert!(!before.contains("portal_"));
    // No store at all: refused, nothing made.
    let empty = TestPki::new();
    empty.exits(
        &["portal", "code", "issue", "--national-id", "5ZK7T2Q"],
        &[],
        2,
    );
    assert!(!empty.data_dir().join("imza.db").exists());
}

#[test]
fn codes_are_issued_on_postgres_too() {
    let pki = TestPki::on_postgres();
    pki.ok(&init_root_args(&[]));
    let issued = issue(&pki, "5ZK7T2Q");
    assert!(looks_like_a_code(issued["code"].as_str().unwrap()));
    let dump = pki.snapshot();
    assert!(
        dump.contains("== portal_access_codes\n(PNOAZ-5ZK7T2Q,"),
        "{dump}"
    );
    assert!(!dump.contains(&issued["code"].as_str().unwrap().replace('-', "")));
}

/// A document registered in the test PKI's store, as the portal's request flow registers it.
fn register_document(pki: &TestPki) -> imza_portal::store::DocumentRecord {
    let url = imza_store::StoreUrl::sqlite(&pki.data_dir().join("imza.db"));
    let store = imza_portal::store::open(&url).unwrap();
    imza_portal::document::register(
        store.as_ref(),
        imza_portal::store::DocumentKind::Residence,
        "PNOAZ-5ZK7T2Q",
        time::OffsetDateTime::now_utc(),
        b"%PDF-1.7 residence statement",
    )
    .unwrap()
}

#[test]
fn a_document_is_shown_and_withdrawn_once_with_its_reason() {
    let pki = TestPki::with_root_and_citizens();
    let document = register_document(&pki);
    let dashed = format!(
        "{}-{}-{}",
        &document.reference[..4],
        &document.reference[4..8],
        &document.reference[8..]
    );
    let shown = pki.ok(&["portal", "document", "show", &dashed.to_lowercase()]);
    assert!(
        shown.contains(&format!("reference   {dashed}"))
            && shown.contains("issued to   PNOAZ-5ZK7T2Q")
            && shown.contains("kind        residence")
            && shown.contains("status      valid"),
        "{shown}"
    );
    let json: serde_json::Value = serde_json::from_str(&pki.ok(&[
        "portal",
        "document",
        "show",
        &document.reference,
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["pdf_sha256"], hex::encode(document.pdf_sha256));
    assert_eq!(json["status"], "valid");

    let withdrawn = pki.ok(&[
        "portal",
        "document",
        "withdraw",
        &dashed,
        "--reason",
        "ünvan səhv göstərilib",
    ]);
    assert!(
        withdrawn.contains(&format!("withdrew document {dashed}"))
            && withdrawn.contains(": ünvan səhv göstərilib"),
        "{withdrawn}"
    );
    // A second withdrawal: refused in one line, the first reason kept.
    let again = pki.exits(
        &[
            "portal", "document", "withdraw", &dashed, "--reason", "again",
        ],
        &[],
        2,
    );
    assert!(again.contains("withdrawn already"), "{again}");
    assert_eq!(again.trim().lines().count(), 1, "{again}");
    let shown = pki.ok(&["portal", "document", "show", &dashed]);
    assert!(
        shown.contains("ünvan səhv göstərilib") && !shown.contains("again"),
        "{shown}"
    );
}

#[test]
fn unknown_and_malformed_references_and_empty_reasons_are_refused_with_exit_2() {
    let pki = TestPki::with_root_and_citizens();
    let document = register_document(&pki);
    let before = pki.snapshot();
    let unknown = pki.exits(
        &[
            "portal",
            "document",
            "withdraw",
            "ZZZZ-ZZZZ-ZZZZ",
            "--reason",
            "x",
        ],
        &[],
        2,
    );
    assert!(
        unknown.contains("no document has the reference ZZZZ-ZZZZ-ZZZZ"),
        "{unknown}"
    );
    assert_eq!(unknown.trim().lines().count(), 1, "{unknown}");
    pki.exits(&["portal", "document", "show", "ZZZZ-ZZZZ-ZZZZ"], &[], 2);
    let malformed = pki.exits(&["portal", "document", "show", "<script>"], &[], 2);
    assert!(
        malformed.contains("not a document reference"),
        "{malformed}"
    );
    let empty = pki.exits(
        &[
            "portal",
            "document",
            "withdraw",
            &document.reference,
            "--reason",
            " ",
        ],
        &[],
        2,
    );
    assert!(empty.contains("reason"), "{empty}");
    assert_eq!(pki.snapshot(), before, "nothing changed");
}
