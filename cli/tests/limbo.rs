//! `imza cert limbo` on suites built here: all 249 NIST PKITS cases converted to the x509-limbo
//! format (policy inputs through the `imza_policy` extension), whose verdicts must equal what
//! imza-validation gives for the same cases called directly; and hand-made cases for what PKITS
//! does not exercise (peer names, EKU, max chain depth, a CRL revoking the leaf, bad input).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use der::asn1::ObjectIdentifier;
use imza_core::ext::{self, AltName};
use imza_core::key::software::SoftwareKey;
use imza_core::{oids, pem, KeyAlgorithm};
use imza_testdata::pki::{certificate_pem, crl_pem, leaf_extensions, revoked, TestCa};
use imza_validation::{Certificate, Crl, RevocationPolicy, ValidationOptions, Validator};
use serde_json::{json, Value};

/// The PKITS validation time (see the suite's README).
const PKITS_TIME: &str = "2011-04-15T00:00:00Z";

fn pkits_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testsuites/pkits");
    assert!(
        dir.join("cases.json").exists(),
        "PKITS is missing: expected {}/cases.json",
        dir.display()
    );
    dir
}

/// Runs `imza cert limbo` with `input` on its standard input (written from another thread,
/// so that a large suite cannot deadlock against the output).
fn limbo(input: Vec<u8>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imza"))
        .args(["cert", "limbo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run imza cert limbo");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait for imza");
    writer.join().expect("writer").expect("write the suite");
    out
}

/// Runs `imza cert limbo` on `suite` and returns its stdout as JSON (insisting on exit 0).
fn run_limbo(suite: &Value) -> Value {
    let out = limbo(serde_json::to_vec(suite).expect("suite JSON"));
    assert!(
        out.status.success(),
        "imza cert limbo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stderr).trim());
    serde_json::from_slice(&out.stdout).expect("results JSON")
}

/// Checks the results format (limbo's `LimboResult`) and returns id → (result, context).
fn results_by_id(results: &Value, suite: &Value) -> HashMap<String, (String, String)> {
    assert_eq!(results["version"], 1);
    assert_eq!(results["harness"], "imza");
    let list = results["results"].as_array().expect("results array");
    let cases = suite["testcases"].as_array().expect("testcases");
    assert_eq!(list.len(), cases.len(), "one result per testcase");
    let mut by_id = HashMap::new();
    for (result, case) in list.iter().zip(cases) {
        assert_eq!(result["id"], case["id"], "results in testcase order");
        let actual = result["actual_result"].as_str().expect("actual_result");
        assert!(
            ["SUCCESS", "FAILURE", "SKIPPED"].contains(&actual),
            "{result}"
        );
        let context = result["context"].as_str().expect("context string");
        by_id.insert(
            result["id"].as_str().expect("id").to_string(),
            (actual.to_string(), context.to_string()),
        );
    }
    by_id
}

// --- PKITS ---------------------------------------------------------------------------------

struct PkitsCase {
    id: String,
    limbo_id: String,
    chain: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    policies: Vec<String>,
    explicit: bool,
    inhibit_mapping: bool,
    inhibit_any: bool,
    expected_valid: bool,
}

fn pkits_cases() -> (Vec<u8>, Vec<PkitsCase>) {
    let dir = pkits_dir();
    let cases: Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).expect("cases.json"))
            .expect("cases.json is JSON");
    let oid_of = |name: &str| -> String {
        cases["policy_oids"][name]
            .as_str()
            .unwrap_or_else(|| panic!("unknown policy {name}"))
            .to_string()
    };
    let read = |sub: &str, name: &str| -> Vec<u8> {
        std::fs::read(dir.join(sub).join(name)).unwrap_or_else(|e| panic!("{sub}/{name}: {e}"))
    };
    let anchor = read("certs", "TrustAnchorRootCertificate.crt");
    let list = cases["cases"].as_array().expect("cases");
    assert_eq!(list.len(), 249);
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("list")
            .iter()
            .map(|s| s.as_str().expect("name").to_string())
            .collect()
    };
    let parsed = list
        .iter()
        .map(|case| {
            let id = case["id"].as_str().expect("id").to_string();
            // limbo ids start each component with a letter: "4.8.1#2" → "pkits::test-4.8.1-2".
            let limbo_id = format!("pkits::test-{}", id.replace('#', "-"));
            PkitsCase {
                chain: names(&case["chain"])
                    .iter()
                    .map(|n| read("certs", n))
                    .collect(),
                crls: names(&case["crls"])
                    .iter()
                    .map(|n| read("crls", n))
                    .collect(),
                policies: names(&case["initial_policy_set"])
                    .iter()
                    .map(|n| oid_of(n))
                    .collect(),
                explicit: case["initial_explicit_policy"].as_bool().expect("bool"),
                inhibit_mapping: case["initial_policy_mapping_inhibit"]
                    .as_bool()
                    .expect("bool"),
                inhibit_any: case["initial_inhibit_any_policy"].as_bool().expect("bool"),
                expected_valid: case["expected"] == "valid",
                id,
                limbo_id,
            }
        })
        .collect();
    (anchor, parsed)
}

fn pkits_suite(anchor: &[u8], cases: &[PkitsCase]) -> Value {
    let crl_pem = |der: &Vec<u8>| pem::encode("X509 CRL", der).expect("CRL PEM");
    let testcases: Vec<Value> = cases
        .iter()
        .map(|case| {
            let (leaf, pool) = case.chain.split_last().expect("non-empty chain");
            json!({
                "id": case.limbo_id,
                "description": format!("NIST PKITS {}", case.id),
                "features": ["has-crl", "has-cert-policies", "has-policy-constraints"],
                "validation_kind": "CLIENT",
                "trusted_certs": [certificate_pem(anchor)],
                "untrusted_intermediates": pool.iter().map(|d| certificate_pem(d)).collect::<Vec<_>>(),
                "peer_certificate": certificate_pem(leaf),
                "validation_time": PKITS_TIME,
                "signature_algorithms": [],
                "key_usage": [],
                "extended_key_usage": [],
                "expected_result": if case.expected_valid { "SUCCESS" } else { "FAILURE" },
                "expected_peer_names": [],
                "crls": case.crls.iter().map(crl_pem).collect::<Vec<_>>(),
                // PKITS's CAs are not all conforming (non-critical policyConstraints): as
                // the PKITS test does, RFC 5280's rules for issuers are off.
                "imza_strictness": {"allow_nonconforming": true},
                "imza_policy": {
                    "initial_policy_set": case.policies,
                    "explicit_policy": case.explicit,
                    "inhibit_policy_mapping": case.inhibit_mapping,
                    "inhibit_any_policy": case.inhibit_any,
                },
            })
        })
        .collect();
    json!({"version": 1, "testcases": testcases})
}

/// What imza-validation says for a PKITS case called directly, set up as the PKITS test does.
fn library_verdict(anchor: &[u8], case: &PkitsCase) -> Result<(), String> {
    let (leaf, pool) = case.chain.split_last().expect("non-empty chain");
    let anchor = Certificate::from_der(anchor.to_vec()).map_err(|e| e.to_string())?;
    let mut validator = Validator::new(vec![anchor]);
    for der in pool {
        validator.add_certificate(Certificate::from_der(der.clone()).map_err(|e| e.to_string())?);
    }
    for der in &case.crls {
        validator.add_crl(Crl::from_der(der.clone()).map_err(|e| e.to_string())?);
    }
    let time = imza_core::clock::parse_rfc3339(PKITS_TIME).expect("time");
    let mut options = ValidationOptions::at(time);
    options.revocation = RevocationPolicy::Require;
    options.strictness.require_rfc5280_conformance = false;
    options.initial_policy_set = case
        .policies
        .iter()
        .map(|p| ObjectIdentifier::new(p).expect("OID"))
        .collect();
    options.initial_explicit_policy = case.explicit;
    options.initial_policy_mapping_inhibit = case.inhibit_mapping;
    options.initial_any_policy_inhibit = case.inhibit_any;
    let target = Certificate::from_der(leaf.clone()).map_err(|e| e.to_string())?;
    validator
        .validate(&target, &options)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn pkits_as_a_limbo_suite_gives_the_library_verdicts() {
    let (anchor, cases) = pkits_cases();
    let suite = pkits_suite(&anchor, &cases);
    // Every id follows limbo's pattern.
    for case in &cases {
        let ok = case.limbo_id.split("::").all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && part.len() >= 2
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        });
        assert!(ok, "{} does not match the limbo id pattern", case.limbo_id);
    }
    let results = run_limbo(&suite);
    let by_id = results_by_id(&results, &suite);
    let mut differ = Vec::new();
    let mut agree_with_pkits = 0;
    let mut pkits_disagreements = Vec::new();
    for case in &cases {
        let (actual, context) = &by_id[&case.limbo_id];
        let library = library_verdict(&anchor, case);
        let expected = if library.is_ok() {
            "SUCCESS"
        } else {
            "FAILURE"
        };
        if actual != expected {
            differ.push(format!(
                "{}: limbo {actual} ({context}), library {library:?}",
                case.id
            ));
        }
        if (actual == "SUCCESS") == case.expected_valid {
            agree_with_pkits += 1;
        } else {
            pkits_disagreements.push(format!("{} ({actual}: {context})", case.id));
        }
    }
    println!(
        "imza cert limbo agrees with PKITS on {agree_with_pkits}/{} cases",
        cases.len()
    );
    for d in &pkits_disagreements {
        println!("  disagrees: {d}");
    }
    assert!(
        differ.is_empty(),
        "{} cases differ between `imza cert limbo` and the library:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

// --- hand-made cases -----------------------------------------------------------------------

/// A root, two intermediates under it, and leaves; every certificate as PEM.
struct HandMade {
    root: TestCa,
    ica1: TestCa,
    ica2: TestCa,
    /// Issued by the root: SAN *.example.az, 192.0.2.10, user@example.az; EKU serverAuth.
    leaf: Vec<u8>,
    /// Issued by ica2 (root → ica1 → ica2 → deep).
    deep: Vec<u8>,
}

const LEAF_SERIAL: &[u8] = &[0x4c, 0x01];

fn hand_made() -> HandMade {
    let root = TestCa::root("CN=Limbo Test Root", KeyAlgorithm::EcP256);
    let ica1 = root.issuing_ca("CN=Limbo Test ICA 1", KeyAlgorithm::EcP256, &[0x11]);
    let ica2 = ica1.issuing_ca("CN=Limbo Test ICA 2", KeyAlgorithm::EcP256, &[0x12]);
    let key = SoftwareKey::generate(KeyAlgorithm::EcP256).expect("key");
    let mut extensions = leaf_extensions();
    let names: Vec<AltName> = ["dns:*.example.az", "ip:192.0.2.10", "email:user@example.az"]
        .iter()
        .map(|n| n.parse().expect("alt name"))
        .collect();
    extensions.push(ext::subject_alt_name(&names, false).expect("SAN"));
    extensions.push(ext::extended_key_usage(&[oids::KP_SERVER_AUTH], false).expect("EKU"));
    let leaf = root.issue("CN=example.az", LEAF_SERIAL, &key, extensions);
    let deep = ica2.issue("CN=deep.example.az", &[0x4c, 0x02], &key, leaf_extensions());
    HandMade {
        root,
        ica1,
        ica2,
        leaf,
        deep,
    }
}

/// A CRL by `ca` revoking `serials` an hour ago, valid from two hours ago for a day, PEM.
fn revoking_crl(ca: &TestCa, serials: &[&[u8]]) -> String {
    let now = time::OffsetDateTime::now_utc();
    let entries: Vec<_> = serials
        .iter()
        .map(|serial| revoked(serial, now - time::Duration::hours(1)))
        .collect();
    crl_pem(&ca.crl(
        &entries,
        now - time::Duration::hours(2),
        now + time::Duration::days(1),
    ))
}

/// A SERVER testcase: the root trusted, `leaf` the peer, now, nothing else constrained.
fn case(id: &str, pki: &HandMade, leaf: &[u8]) -> Value {
    json!({
        "id": id,
        "description": id,
        "validation_kind": "SERVER",
        "trusted_certs": [certificate_pem(&pki.root.der)],
        "untrusted_intermediates": [],
        "peer_certificate": certificate_pem(leaf),
        "signature_algorithms": [],
        "key_usage": [],
        "extended_key_usage": [],
        "expected_result": "SUCCESS",
        "expected_peer_names": [],
    })
}

fn with(mut case: Value, key: &str, value: Value) -> Value {
    case[key] = value;
    case
}

/// `case` with each of `fields` set.
fn set(case: Value, fields: Vec<(&str, Value)>) -> Value {
    fields
        .into_iter()
        .fold(case, |case, (key, value)| with(case, key, value))
}

fn peer(kind: &str, value: &str) -> Value {
    json!({"kind": kind, "value": value})
}

#[test]
fn hand_made_cases_check_names_eku_depth_and_crls() {
    let pki = hand_made();
    let server = |id: &str, fields: Vec<(&str, Value)>| set(case(id, &pki, &pki.leaf), fields);
    let mut expectations: Vec<(Value, &str)> = Vec::new();
    for (id, kind, name, expected) in [
        ("dns-wildcard-match", "DNS", "www.example.az", "SUCCESS"),
        (
            "dns-wildcard-two-labels",
            "DNS",
            "a.b.example.az",
            "FAILURE",
        ),
        ("dns-wildcard-bare-domain", "DNS", "example.az", "FAILURE"),
        ("ip-match", "IP", "192.0.2.10", "SUCCESS"),
        ("ip-mismatch", "IP", "192.0.2.11", "FAILURE"),
    ] {
        let testcase = server(id, vec![("expected_peer_name", peer(kind, name))]);
        expectations.push((testcase, expected));
    }
    for (id, names, expected) in [
        (
            "rfc822-match",
            vec![peer("RFC822", "user@EXAMPLE.az")],
            "SUCCESS",
        ),
        (
            "rfc822-local-part-case",
            vec![peer("RFC822", "User@example.az")],
            "FAILURE",
        ),
        (
            "client-all-names-must-match",
            vec![peer("RFC822", "user@example.az"), peer("DNS", "other.az")],
            "FAILURE",
        ),
    ] {
        let fields = vec![
            ("validation_kind", json!("CLIENT")),
            ("expected_peer_names", json!(names)),
        ];
        expectations.push((server(id, fields), expected));
    }
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let any_policy = json!({"initial_policy_set": ["2.5.29.32.0"], "explicit_policy": false});
    #[rustfmt::skip]
    let one_field = [
        ("eku-match", "extended_key_usage", json!(["serverAuth"]), "SUCCESS"),
        ("eku-mismatch", "extended_key_usage", json!(["clientAuth"]), "FAILURE"),
        ("ku-match", "key_usage", json!(["digitalSignature"]), "SUCCESS"),
        ("ku-mismatch", "key_usage", json!(["keyEncipherment"]), "FAILURE"),
        ("crl-revokes-leaf", "crls", json!([revoking_crl(&pki.root, &[LEAF_SERIAL])]), "FAILURE"),
        ("crl-revokes-another", "crls", json!([revoking_crl(&pki.root, &[&[1, 2]])]), "SUCCESS"),
        ("garbage-peer", "peer_certificate", json!(garbage), "FAILURE"),
        ("signature-algorithms", "signature_algorithms", json!(["ECDSA_WITH_SHA256"]), "SKIPPED"),
        ("unknown-feature", "features", json!(["some-future-feature"]), "SKIPPED"),
        ("public-suffix", "features", json!(["pedantic-public-suffix-wildcard"]), "SKIPPED"),
        ("expired-at-validation-time", "validation_time", json!("2100-01-01T00:00:00+00:00"), "FAILURE"),
        ("policy-extension", "imza_policy", any_policy, "SUCCESS"),
    ];
    for (id, key, value, expected) in one_field {
        expectations.push((server(id, vec![(key, value)]), expected));
    }
    let deep_pool = json!([
        certificate_pem(&pki.ica1.der),
        certificate_pem(&pki.ica2.der)
    ]);
    for (depth, expected) in [(2, "SUCCESS"), (1, "FAILURE")] {
        let fields = vec![
            ("untrusted_intermediates", deep_pool.clone()),
            ("max_chain_depth", json!(depth)),
        ];
        let testcase = set(case(&format!("max-depth-{depth}"), &pki, &pki.deep), fields);
        expectations.push((testcase, expected));
    }
    expectations.push((json!({"id": "not-a-testcase"}), "SKIPPED"));
    let suite = json!({
        "version": 1,
        "testcases": expectations
            .iter()
            .map(|(c, expected)| match *expected {
                "SKIPPED" => c.clone(),
                verdict => with(c.clone(), "expected_result", json!(verdict)),
            })
            .collect::<Vec<_>>(),
    });
    let results = run_limbo(&suite);
    let by_id = results_by_id(&results, &suite);
    let mut wrong = Vec::new();
    for (case, expected) in &expectations {
        let id = case["id"].as_str().expect("id");
        let (actual, context) = &by_id[id];
        if actual != expected {
            wrong.push(format!("{id}: {actual} ({context}), expected {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let context = |id: &str| by_id[id].1.clone();
    assert!(
        context("crl-revokes-leaf").contains("revoked"),
        "{}",
        context("crl-revokes-leaf")
    );
    assert!(
        context("eku-mismatch").contains("1.3.6.1.5.5.7.3.2"),
        "{}",
        context("eku-mismatch")
    );
    assert!(context("unknown-feature").contains("some-future-feature"));
}

#[test]
fn a_suite_that_is_not_limbo_exits_2() {
    for input in [
        "not json",
        r#"{"version": 2, "testcases": []}"#,
        r#"{"version": 1}"#,
    ] {
        let out = limbo(input.as_bytes().to_vec());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{input}: {}",
            common::stderr(&out)
        );
    }
}
