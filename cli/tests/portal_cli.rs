//! `imza portal code issue`: a one-time access code printed once, kept only as a hash, on the
//! embedded store and on PostgreSQL; bad input refused with exit 2 and nothing stored.

mod common;

use common::*;

fn issue(pki: &TestPki, national_id: &str) -> serde_json::Value {
    let out = pki.ok(&[
        "portal",
        "code",
        "issue",
        "--national-id",
        national_id,
        "--json",
    ]);
    serde_json::from_str(&out).expect("--json prints JSON")
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
