//! imza's TSP parsers and verifier against the RFC 3161 vectors in
//! `../shared/testsuites/vectors/tsp/` (each suite a folder with a `cases.json` listing files,
//! facts and the `expected` verdict). Every case must be understood and agreed with.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imza_core::alg::DigestAlgorithm;
use imza_tsa::{
    parse_response, verify_token, Expectations, OpenSslPathValidator, ParsedToken,
    TimeStampRequest, TsaError, VerificationTime,
};
use serde_json::Value;
use time::macros::datetime;
use time::OffsetDateTime;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testsuites/vectors/tsp"
);

/// "Now" for cases without a validation time: fixed, so the verdicts do not drift with the
/// calendar (the chains of the `valid` cases run to 2033 and beyond).
const NOW: OffsetDateTime = datetime!(2026-11-21 00:00:00 UTC);

fn suites() -> Vec<PathBuf> {
    let root = Path::new(VECTORS);
    let entries = std::fs::read_dir(root).unwrap_or_else(|e| {
        panic!(
            "the TSP vectors are missing at {} ({e}); the repository is expected to be checked \
             out with ../shared beside it",
            root.display()
        )
    });
    let mut suites: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("cases.json").is_file())
        .collect();
    suites.sort();
    assert!(!suites.is_empty(), "no cases.json under {}", root.display());
    suites
}

/// The file a case input names: its first word, relative to the suite.
fn input_path(suite: &Path, value: &Value) -> PathBuf {
    suite.join(value.as_str().unwrap().split_whitespace().next().unwrap())
}

/// Every certificate in a PEM or DER file.
fn certificates(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    if bytes.first() == Some(&0x30) {
        return vec![bytes];
    }
    // OpenSSL's reader: some files have PEM lines longer than RFC 7468's 64 characters.
    openssl::x509::X509::stack_from_pem(&bytes)
        .unwrap()
        .iter()
        .map(|c| c.to_der().unwrap())
        .collect()
}

/// Upper-case hex of a fact written `123 (0xABC)`, `0xABC` or `123`, without leading zeros.
fn fact_hex(text: &str) -> String {
    let hex = match text.find("0x") {
        Some(i) => text[i + 2..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect::<String>(),
        None => format!("{:X}", text.trim().parse::<u128>().unwrap()),
    };
    hex.to_ascii_uppercase().trim_start_matches('0').to_string()
}

fn token_hex(hex: Option<String>) -> String {
    hex.unwrap_or_default()
        .trim_start_matches("0x")
        .trim_start_matches('0')
        .to_string()
}

fn accuracy_text(token: &ParsedToken) -> String {
    let part = |name: &str, v: Option<String>| match v {
        Some(v) => format!("{name}={v}"),
        None => format!("{name} absent"),
    };
    match &token.tst_info().accuracy {
        None => "absent".into(),
        Some(a) => [
            part("seconds", a.seconds.map(|s| s.to_string())),
            part("millis", a.millis.map(|s| s.to_string())),
            part("micros", a.micros.map(|s| s.to_string())),
        ]
        .join(", "),
    }
}

/// A fact as text: a string's own characters, anything else as JSON.
fn fact_text(value: &Value) -> String {
    value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string())
}

/// Checks a token against a case's facts; every fact key must be known.
fn check_token_facts(id: &str, token: &ParsedToken, facts: &BTreeMap<String, Value>) {
    for (key, value) in facts {
        let text = fact_text(value);
        match key.as_str() {
            "status" => {} // checked on the response
            "tst_version" => assert_eq!(value.as_u64(), Some(1), "{id}: version"),
            "policy" => assert_eq!(token.policy().to_string(), text, "{id}: policy"),
            "serial_number" => {
                if text.contains("-0x") || text.starts_with('-') {
                    assert!(token.serial_hex().starts_with('-'), "{id}: negative serial");
                }
                assert_eq!(
                    token_hex(Some(token.serial_hex().replace("-0x", "0x"))),
                    fact_hex(&text),
                    "{id}: serialNumber"
                );
            }
            "gen_time" => assert_eq!(
                imza_core::clock::rfc3339(token.gen_time()),
                text,
                "{id}: genTime"
            ),
            "accuracy" => assert_eq!(accuracy_text(token), text, "{id}: accuracy"),
            "ordering" => assert_eq!(
                Some(token.tst_info().ordering),
                value.as_bool(),
                "{id}: ordering"
            ),
            "nonce" => assert_eq!(token_hex(token.nonce_hex()), fact_hex(&text), "{id}: nonce"),
            "tsa_name" => assert_eq!(token.tsa_name().unwrap_or_default(), text, "{id}: tsa"),
            "hash_algorithm" => assert_eq!(
                token.imprint_algorithm().unwrap(),
                text.parse::<DigestAlgorithm>().unwrap(),
                "{id}: imprint algorithm"
            ),
            other => panic!("{id}: unknown response fact {other:?}"),
        }
    }
}

fn check_request_facts(id: &str, request: &TimeStampRequest, facts: &BTreeMap<String, Value>) {
    for (key, value) in facts {
        let text = fact_text(value);
        match key.as_str() {
            "version" => assert_eq!(value.as_u64(), Some(1), "{id}: version"),
            "hash_algorithm" => assert_eq!(
                request.algorithm(),
                text.parse::<DigestAlgorithm>().unwrap(),
                "{id}: algorithm"
            ),
            "message" => {
                let message = text.trim_matches('"');
                assert_eq!(
                    request.hashed_message(),
                    request.algorithm().digest(message.as_bytes()),
                    "{id}: imprint of {message:?}"
                );
            }
            "hashed_message_prefix" => assert!(
                hex::encode(request.hashed_message()).starts_with(&text),
                "{id}: hashed message prefix"
            ),
            "nonce" => assert_eq!(
                token_hex(request.nonce_hex()),
                fact_hex(&text),
                "{id}: nonce"
            ),
            "cert_req" => assert_eq!(Some(request.cert_req()), value.as_bool(), "{id}: certReq"),
            "req_policy" => assert_eq!(
                request.policy().map(|p| p.to_string()),
                value.as_str().map(str::to_string),
                "{id}: reqPolicy"
            ),
            other => panic!("{id}: unknown request fact {other:?}"),
        }
    }
}

/// Verifies a token with a case's inputs; `pin` adds the expected TSA name when given.
fn verify_case(
    suite: &Path,
    token: &ParsedToken,
    inputs: &BTreeMap<String, Value>,
    at: VerificationTime,
    pin: bool,
) -> Result<(), TsaError> {
    let mut anchors = Vec::new();
    let mut untrusted = Vec::new();
    let mut message: Option<Vec<u8>> = None;
    let mut request = None;
    let mut nonce = None;
    let mut policy = None;
    let mut subject = None;
    for (key, value) in inputs {
        let text = value.as_str().unwrap_or_default();
        match key.as_str() {
            // A chain file lists the TSA certificate, intermediates and, last, the root.
            "chain" => {
                let mut certs = certificates(&input_path(suite, value));
                anchors.push(certs.pop().unwrap());
                untrusted.extend(certs);
            }
            "trust_anchor" => anchors.extend(certificates(&input_path(suite, value))),
            // Informational: the TSA certificate is in the chain file or the token, and the
            // intermediates are taken from the token.
            "tsa_certificate" | "intermediates" | "validation_time" => {}
            // `hello (sha512)`: the words before the note are the message.
            "message" => {
                let m = text.split(" (").next().unwrap();
                message = Some(m.as_bytes().to_vec());
            }
            "message_file" => message = Some(std::fs::read(input_path(suite, value)).unwrap()),
            "request" => {
                let der = std::fs::read(input_path(suite, value)).unwrap();
                request = Some(TimeStampRequest::from_der(&der).unwrap());
            }
            "expected_nonce" => nonce = Some(hex::decode(fact_hex(text)).unwrap()),
            "expected_policy" => policy = Some(text),
            "expected_tsa_common_name" => subject = Some(text.to_string()),
            other => panic!("unknown verify input {other:?}"),
        }
    }
    let paths = OpenSslPathValidator::new(&anchors)?;
    verify_token(
        token,
        &untrusted,
        &paths,
        at,
        &Expectations {
            data: message.as_deref(),
            request: request.as_ref(),
            nonce: nonce.as_deref(),
            policy,
            signer_subject: if pin { subject.as_deref() } else { None },
            hashed_message: None,
        },
    )
    .map(|_| ())
}

fn map(v: &Value, key: &str) -> BTreeMap<String, Value> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|o| o.clone().into_iter().collect())
        .unwrap_or_default()
}

#[test]
fn every_tsp_vector_gets_its_expected_verdict() {
    let mut checked = 0;
    for suite in suites() {
        let cases: Value =
            serde_json::from_slice(&std::fs::read(suite.join("cases.json")).unwrap()).unwrap();
        let list = cases["cases"].as_array().unwrap();
        if let Some(count) = cases["count"].as_u64() {
            assert_eq!(list.len() as u64, count, "{}: case count", suite.display());
        }
        for case in list {
            let id = case["id"].as_str().unwrap();
            let file = std::fs::read(suite.join(case["file"].as_str().unwrap())).unwrap();
            let kind = case["kind"].as_str().unwrap();
            let expected = case["expected"].as_str().unwrap();
            let facts = map(case, "facts");
            let inputs = map(case, "inputs");
            match (kind, expected) {
                ("TimeStampReq", "parse-ok") => {
                    let request =
                        TimeStampRequest::from_der(&file).unwrap_or_else(|e| panic!("{id}: {e}"));
                    assert_eq!(request.to_der().unwrap(), file, "{id}: DER round trip");
                    check_request_facts(id, &request, &facts);
                }
                ("TimeStampResp", "parse-ok") => {
                    let response = parse_response(&file).unwrap_or_else(|e| panic!("{id}: {e}"));
                    if let Some(status) = facts.get("status").and_then(Value::as_str) {
                        assert!(status.starts_with(response.status.name()), "{id}: status");
                    }
                    let token = response.into_token().unwrap();
                    check_token_facts(id, &token, &facts);
                }
                ("verify", _) => {
                    let token = parse_response(&file)
                        .and_then(|r| r.into_token())
                        .unwrap_or_else(|e| panic!("{id}: {e}"));
                    check_token_facts(id, &token, &facts);
                    let at_now = VerificationTime::At(NOW);
                    match expected {
                        "valid" => {
                            verify_case(&suite, &token, &inputs, at_now, true)
                                .unwrap_or_else(|e| panic!("{id}: expected valid: {e}"));
                        }
                        "invalid" => {
                            let verdict = verify_case(&suite, &token, &inputs, at_now, true);
                            let error = verdict.expect_err(id);
                            println!("{id}: refused: {error}");
                            let fitting = match id {
                                _ if inputs.contains_key("expected_nonce") => {
                                    matches!(error, TsaError::NonceMismatch { .. })
                                }
                                _ if inputs.contains_key("expected_policy") => {
                                    matches!(error, TsaError::PolicyMismatch { .. })
                                }
                                _ if inputs.contains_key("request") => {
                                    matches!(error, TsaError::NonceMismatch { .. })
                                }
                                _ if id.contains("signature") => {
                                    matches!(error, TsaError::BadSignature(_))
                                }
                                _ if id.contains("message") => {
                                    matches!(error, TsaError::ImprintMismatch { .. })
                                }
                                _ => true,
                            };
                            assert!(fitting, "{id}: invalid, but for another reason: {error}");
                        }
                        "valid-at-gen-time" => {
                            verify_case(&suite, &token, &inputs, VerificationTime::GenTime, true)
                                .unwrap_or_else(|e| panic!("{id}: expected valid at genTime: {e}"));
                            let later = verify_case(&suite, &token, &inputs, at_now, true);
                            assert!(
                                matches!(later, Err(TsaError::CertificatePath { .. })),
                                "{id}: must fail path validation now: {later:?}"
                            );
                        }
                        "invalid-when-pinning-spoofed-name" => {
                            verify_case(&suite, &token, &inputs, at_now, false)
                                .unwrap_or_else(|e| panic!("{id}: unpinned must verify: {e}"));
                            let pinned = verify_case(&suite, &token, &inputs, at_now, true);
                            assert!(
                                matches!(pinned, Err(TsaError::SignerNameMismatch { .. })),
                                "{id}: pinning the spoofed name must fail: {pinned:?}"
                            );
                        }
                        other => panic!("{id}: unknown verdict {other:?}"),
                    }
                }
                (kind, expected) => panic!("{id}: unknown kind/verdict {kind}/{expected}"),
            }
            checked += 1;
            println!("{id}: {kind} {expected}: agreed");
        }
    }
    assert!(checked >= 18, "only {checked} cases checked");
}
