//! NIST PKITS 1.0.1 ("Test Certificates 2011"): all 249 cases of
//! `shared/testsuites/pkits/cases.json`, run as its README says — time 2011-04-15T00:00:00Z,
//! `chain[:-1]` as the untrusted pool, `chain[-1]` as the target, every listed CRL,
//! revocation required, the four policy inputs of each case — and compared with the verdict
//! and the user-constrained-policy-set PKITS expects.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use der::asn1::ObjectIdentifier;
use imza_validation::{Certificate, Crl, RevocationPolicy, ValidationOptions, Validator};
use serde_json::Value;
use time::macros::datetime;

/// Cases where imza's verdict differs from PKITS, each with the reason (also in the README).
/// The test fails when the set of disagreements is not exactly this one, so a regression —
/// or a fix that is not recorded here — is noticed.
const KNOWN_DISAGREEMENTS: &[(&str, &str)] = &[];

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testsuites/pkits")
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a list, got {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn pkits_all_cases_agree_except_the_listed_ones() {
    let dir = suite_dir();
    let cases_path = dir.join("cases.json");
    assert!(
        cases_path.exists(),
        "the PKITS suite is missing at {} (it must be there: this test never skips)",
        cases_path.display()
    );
    let suite: Value = serde_json::from_slice(&read(cases_path)).expect("cases.json parses");
    let policy_oids = suite["policy_oids"].as_object().expect("policy_oids");
    let oid = |name: &str| -> ObjectIdentifier {
        let text = policy_oids
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("unknown policy name {name}"));
        ObjectIdentifier::new(text).expect("an OID")
    };
    let any_policy = oid("anyPolicy");
    let cases = suite["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 249, "cases.json lists 249 cases");

    let anchor = Certificate::from_der(read(dir.join("certs/TrustAnchorRootCertificate.crt")))
        .expect("the trust anchor parses");
    let mut agree = 0;
    let mut disagreements: Vec<String> = Vec::new();
    let mut policy_mismatches: Vec<String> = Vec::new();
    for case in cases {
        let id = case["id"].as_str().expect("id");
        let chain = strings(&case["chain"]);
        let (target_name, pool) = chain.split_last().expect("a chain");
        let mut validator = Validator::new(vec![anchor.clone()]);
        for name in pool {
            validator.add_certificate(
                Certificate::from_der(read(dir.join("certs").join(name)))
                    .unwrap_or_else(|e| panic!("{id}: {name}: {e}")),
            );
        }
        for name in strings(&case["crls"]) {
            validator.add_crl(
                Crl::from_der(read(dir.join("crls").join(&name)))
                    .unwrap_or_else(|e| panic!("{id}: {name}: {e}")),
            );
        }
        let target = Certificate::from_der(read(dir.join("certs").join(target_name)))
            .unwrap_or_else(|e| panic!("{id}: {target_name}: {e}"));
        let mut options = ValidationOptions::at(datetime!(2011-04-15 00:00:00 UTC));
        options.revocation = RevocationPolicy::Require;
        // Sixteen of PKITS's CAs carry a non-critical policyConstraints (RFC 5280 §4.2.1.11:
        // conforming CAs mark it critical) on paths PKITS expects valid: RFC 5280's rules
        // for issuers are off here, as for any legacy PKI. Its keys are RSA-2048 and DSA, its
        // anchor a proper CA certificate: every other strict check stays on.
        options.strictness.require_rfc5280_conformance = false;
        options.initial_policy_set = strings(&case["initial_policy_set"])
            .iter()
            .map(|p| oid(p))
            .filter(|p| *p != any_policy)
            .collect();
        options.initial_explicit_policy = case["initial_explicit_policy"].as_bool().unwrap();
        options.initial_policy_mapping_inhibit =
            case["initial_policy_mapping_inhibit"].as_bool().unwrap();
        options.initial_any_policy_inhibit = case["initial_inhibit_any_policy"].as_bool().unwrap();
        let expected_valid = case["expected"].as_str() == Some("valid");
        let outcome = validator.validate(&target, &options);
        let valid = outcome.is_ok();
        if std::env::var_os("PKITS_VERBOSE").is_some() {
            match &outcome {
                Ok(_) => println!("{id} valid"),
                Err(e) => println!("{id} invalid: {e}"),
            }
        }
        if valid == expected_valid {
            agree += 1;
        } else {
            let why = match &outcome {
                Ok(_) => "accepted".to_string(),
                Err(e) => format!("rejected: {e}"),
            };
            println!(
                "DISAGREE {id} {} (PKITS: {}): {why}",
                case["name"].as_str().unwrap_or_default(),
                case["expected"].as_str().unwrap_or_default()
            );
            disagreements.push(id.to_string());
        }
        if let Ok(path) = &outcome {
            let mut got: Vec<ObjectIdentifier> = path.user_constrained_policy_set.clone();
            let mut want: Vec<ObjectIdentifier> =
                strings(&case["expected_user_constrained_policy_set"])
                    .iter()
                    .map(|p| oid(p))
                    .collect();
            got.sort();
            want.sort();
            if expected_valid && got != want {
                println!(
                    "POLICY {id}: user-constrained-policy-set {got:?}, PKITS expects {want:?}"
                );
                policy_mismatches.push(id.to_string());
            }
        }
    }
    println!("PKITS: {agree}/{} cases agree", cases.len());
    let known: Vec<&str> = KNOWN_DISAGREEMENTS.iter().map(|(id, _)| *id).collect();
    assert!(agree >= 245, "only {agree}/249 PKITS cases agree");
    assert_eq!(
        disagreements, known,
        "the disagreements with PKITS are not the listed ones"
    );
    assert!(
        policy_mismatches.is_empty(),
        "user-constrained-policy-set differs in {policy_mismatches:?}"
    );
}
