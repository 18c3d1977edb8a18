//! imza's OCSP parsers and response checks against the public vectors in
//! `../shared/testsuites/vectors/ocsp/` (see its README): pyca/cryptography's parsing vectors
//! with `expected_parse` verdicts and facts, and OpenSSL's `OCSP_basic_verify` vectors with
//! valid/invalid verdicts. Every vector is run; every verdict must agree.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use imza_core::clock::parse_rfc3339;
use imza_core::crl::reason_name;
use imza_core::name::format_dn;
use imza_ocsp::{
    check_signature, parse_request, parse_response, verify_response, CertIdHash, CertStatusInfo,
    OcspError, ParsedBasicResponse, ResponseStatus, VerifyOptions,
};
use serde_json::Value;
use x509_cert::ext::Extension;
use x509_cert::Certificate;
use x509_ocsp::ResponderId;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testsuites/vectors/ocsp"
);

fn vectors(sub: &str) -> PathBuf {
    let dir = Path::new(VECTORS).join(sub);
    assert!(
        dir.is_dir(),
        "OCSP test vectors not found at {} : check out the shared test suites beside this \
         repository (../shared/testsuites/vectors/ocsp)",
        dir.display()
    );
    dir
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn certificates(path: &Path) -> Vec<Certificate> {
    let text = std::fs::read_to_string(path).unwrap();
    imza_core::pem::all_blocks(&text, "certificate")
        .unwrap()
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| Certificate::from_der(&der).unwrap())
        .collect()
}

/// Hex of an INTEGER's value as pyca prints it: lower case, no leading zeros.
fn serial_hex(bytes: &[u8]) -> String {
    let hex = hex::encode(bytes);
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

fn fact<'a>(v: &'a Value, key: &str) -> &'a Value {
    &v["facts"][key]
}

fn time_fact(v: &Value, key: &str) -> Option<time::OffsetDateTime> {
    fact(v, key).as_str().map(|s| parse_rfc3339(s).unwrap())
}

fn responder_id_text(id: &ResponderId) -> String {
    match id {
        ResponderId::ByKey(hash) => format!("byKey: {}", hex::encode(hash.as_bytes())),
        ResponderId::ByName(name) => format!("byName: {}", format_dn(name)),
    }
}

fn status_name(status: &CertStatusInfo) -> &'static str {
    match status {
        CertStatusInfo::Good => "GOOD",
        CertStatusInfo::Revoked { .. } => "REVOKED",
        CertStatusInfo::Unknown => "UNKNOWN",
    }
}

fn response_status_name(status: ResponseStatus) -> &'static str {
    match status {
        ResponseStatus::Successful => "SUCCESSFUL",
        ResponseStatus::MalformedRequest => "MALFORMED_REQUEST",
        ResponseStatus::InternalError => "INTERNAL_ERROR",
        ResponseStatus::TryLater => "TRY_LATER",
        ResponseStatus::SigRequired => "SIG_REQUIRED",
        ResponseStatus::Unauthorized => "UNAUTHORIZED",
    }
}

fn check_request(v: &Value, der: &[u8]) -> Result<(), String> {
    let file = v["file"].as_str().unwrap();
    let expected = v["expected_parse"].as_str().unwrap();
    let parsed = parse_request(der);
    match expected {
        "error-on-extensions" => {
            return match parsed {
                Err(OcspError::DuplicateExtension { .. }) => Ok(()),
                other => Err(format!(
                    "expected a duplicate-extension error, got {other:?}"
                )),
            }
        }
        // RFC 6960 §4.1.1 defines only v1; imza's parser is the strict one the note allows.
        "see-note" => {
            return match parsed {
                Err(OcspError::Malformed { .. }) => Ok(()),
                other => Err(format!("imza refuses non-v1 requests, got {other:?}")),
            }
        }
        _ => {}
    }
    let parsed = parsed.map_err(|e| format!("must parse: {e}"))?;
    // Every CertID re-encodes to the bytes received, so a response echoes it exactly.
    for cert in &parsed.certs {
        let bytes = cert.cert_id.to_der().unwrap();
        if !der.windows(bytes.len()).any(|w| w == bytes.as_slice()) {
            return Err("a CertID does not re-encode to the bytes received".into());
        }
    }
    match expected {
        "ok-multi" => {
            if parsed.certs.len() != 2 {
                return Err(format!("expected 2 requests, got {}", parsed.certs.len()));
            }
            return Ok(());
        }
        "ok" | "error-on-hash-algorithm" => {}
        other => return Err(format!("unknown verdict {other}")),
    }
    let [cert] = parsed.certs.as_slice() else {
        return Err(format!("expected one CertID, got {}", parsed.certs.len()));
    };
    let id = &cert.cert_id;
    let want = |k: &str| fact(v, k).as_str().unwrap().to_string();
    let checks = [
        (
            "serial",
            serial_hex(id.serial_number.as_bytes()),
            want("serial_number_hex"),
        ),
        (
            "issuerNameHash",
            hex::encode(id.issuer_name_hash.as_bytes()),
            want("issuer_name_hash"),
        ),
        (
            "issuerKeyHash",
            hex::encode(id.issuer_key_hash.as_bytes()),
            want("issuer_key_hash"),
        ),
    ];
    for (what, got, want) in checks {
        if got != want {
            return Err(format!("{what}: got {got}, expected {want}"));
        }
    }
    match (expected, cert.hash) {
        ("ok", Some(CertIdHash::Sha1)) | ("error-on-hash-algorithm", None) => {}
        (_, hash) => return Err(format!("hash algorithm {hash:?} for verdict {expected}")),
    }
    match file {
        "req-sha1.der" => {
            let request = x509_ocsp::OcspRequest::from_der(der).unwrap();
            if request.to_der().unwrap() != der {
                return Err("does not re-encode byte-for-byte".into());
            }
        }
        "req-ext-nonce.der" => {
            let nonce = parsed.nonce.as_ref().map(|n| hex::encode(&n.value));
            if nonce.as_deref() != Some("7b805a1d3726b8b84f48d2f8bfd72dfd") {
                return Err(format!("nonce {nonce:?}"));
            }
        }
        "req-acceptable-responses.der"
            if parsed.extension_oids != [imza_core::oids::OCSP_ACCEPTABLE_RESPONSES] =>
        {
            return Err(format!("extensions {:?}", parsed.extension_oids));
        }
        "req-ext-unknown-oid.der"
            if parsed.extension_oids
                != [der::asn1::ObjectIdentifier::new_unwrap(
                    "1.3.6.1.5.5.7.48.1.2213",
                )]
                || parsed.nonce.is_some() =>
        {
            return Err(format!("extensions {:?}", parsed.extension_oids));
        }
        _ => {}
    }
    Ok(())
}

/// Extensions as `OID critical` items, in order, for comparing with a fact.
fn extension_list(extensions: &[Extension]) -> String {
    let items: Vec<String> = extensions
        .iter()
        .map(|e| format!("{} {}", e.extn_id, e.critical))
        .collect();
    format!("{items:?}")
}

/// The fact `key`, a list of `{"oid", "critical"}` objects, as [`extension_list`] writes it.
fn fact_extension_list(v: &Value, key: &str) -> String {
    let items: Vec<String> = fact(v, key)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["oid"].as_str().unwrap(), e["critical"]))
        .collect();
    format!("{items:?}")
}

fn check_basic_facts(v: &Value, basic: &ParsedBasicResponse) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut expect = |what: &str, got: String, want: String| {
        if got != want {
            problems.push(format!("{what}: got {got:?}, expected {want:?}"));
        }
    };
    let s = |k: &str| fact(v, k).as_str().unwrap_or_default().to_string();
    expect(
        "signature algorithm",
        basic.signature_algorithm.oid.to_string(),
        s("signature_algorithm_oid"),
    );
    expect(
        "producedAt",
        format!("{:?}", Some(basic.produced_at)),
        format!("{:?}", time_fact(v, "produced_at")),
    );
    expect(
        "embedded certificates",
        basic.certs.len().to_string(),
        fact(v, "embedded_certificates").to_string(),
    );
    expect(
        "responder ID",
        responder_id_text(&basic.responder_id),
        s("responder_id"),
    );
    expect(
        "extensions",
        extension_list(&basic.extensions),
        fact_extension_list(v, "extensions"),
    );
    expect(
        "SingleResponses",
        basic.responses.len().to_string(),
        fact(v, "single_responses").to_string(),
    );
    if let [single] = basic.responses.as_slice() {
        expect(
            "certStatus",
            status_name(&single.status).into(),
            s("cert_status"),
        );
        expect(
            "serial",
            serial_hex(single.cert_id.serial_number.as_bytes()),
            s("serial_number_hex"),
        );
        expect(
            "CertID hash",
            match single.hash {
                Some(CertIdHash::Sha1) => "sha1".into(),
                Some(other) => other.name().into(),
                None => "(unsupported OID)".into(),
            },
            s("cert_id_hash"),
        );
        expect(
            "thisUpdate",
            format!("{:?}", Some(single.this_update)),
            format!("{:?}", time_fact(v, "this_update")),
        );
        expect(
            "nextUpdate",
            format!("{:?}", single.next_update),
            format!("{:?}", time_fact(v, "next_update")),
        );
        let (revoked_at, reason) = match single.status {
            CertStatusInfo::Revoked { at, reason } => (Some(at), reason.map(reason_name)),
            _ => (None, None),
        };
        expect(
            "revocationTime",
            format!("{revoked_at:?}"),
            format!("{:?}", time_fact(v, "revocation_time")),
        );
        expect(
            "revocationReason",
            format!("{reason:?}"),
            format!("{:?}", fact(v, "revocation_reason").as_str()),
        );
        expect(
            "singleExtensions",
            extension_list(&single.extensions),
            fact_extension_list(v, "single_extensions"),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// What the notes of `expected.json` say about signatures and special contents.
fn check_response_notes(
    dir: &Path,
    file: &str,
    der: &[u8],
    basic: &ParsedBasicResponse,
) -> Result<(), String> {
    let embedded = || -> Result<(), String> {
        let signer = basic.certs.first().ok_or("no embedded certificate")?;
        check_signature(basic, signer, false).map_err(|e| e.to_string())
    };
    match file {
        "resp-sha256.der" => {
            let trusted = certificates(&dir.join("letsencryptx3.pem"));
            let options = VerifyOptions {
                trusted: &trusted,
                untrusted: &[],
                at: basic.produced_at,
                accept_sha1_signatures: false,
            };
            let signer = verify_response(basic, &options).map_err(|e| e.to_string())?;
            if signer.delegated {
                return Err("the CA signs this response itself".into());
            }
        }
        "resp-invalid-signature-oid.der" => {
            let ca = certificates(&dir.join("letsencryptx3.pem"));
            match check_signature(basic, &ca[0], true) {
                Err(OcspError::UnsupportedSignatureAlgorithm { .. }) => {}
                other => return Err(format!("md2WithRSA must be refused, got {other:?}")),
            }
        }
        "resp-revoked-reason.der" => {
            embedded()?;
            let nonce = basic.nonce.as_ref().map(hex::encode);
            if nonce.as_deref() != Some("3595379f610383878972578fae99f722") {
                return Err(format!("nonce {nonce:?}"));
            }
        }
        "resp-delegate-unknown-cert.der" | "resp-sct-extension.der" => embedded()?,
        "ocsp-army.deps.mil-resp.der" => {
            embedded()?;
            let status_of = |req: &str| -> Result<Option<CertStatusInfo>, String> {
                let request = parse_request(&std::fs::read(dir.join(req)).unwrap())
                    .map_err(|e| e.to_string())?;
                let id = &request.certs[0].cert_id;
                Ok(basic
                    .responses
                    .iter()
                    .find(|s| &s.cert_id == id)
                    .map(|s| s.status))
            };
            if status_of("ocsp-army.valid-req.der")? != Some(CertStatusInfo::Good) {
                return Err("0x391ad must be GOOD".into());
            }
            let revoked = CertStatusInfo::Revoked {
                at: parse_rfc3339("2018-05-30T14:01:39Z").unwrap(),
                reason: Some(x509_cert::ext::pkix::CrlReason::CessationOfOperation),
            };
            if status_of("ocsp-army.revoked-req.der")? != Some(revoked) {
                return Err("0x391ae must be REVOKED (cessationOfOperation)".into());
            }
            if status_of("ocsp-army.inapplicable-req.der")?.is_some() {
                return Err("0x1 must be absent".into());
            }
        }
        "resp-unknown-extension.der" if embedded().is_ok() => {
            return Err("the TBS was changed: the signature must not verify".into());
        }
        "resp-revoked.der" => {
            let response = x509_ocsp::OcspResponse::from_der(der).unwrap();
            if response.to_der().unwrap() != der {
                return Err("does not re-encode byte-for-byte".into());
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_response(dir: &Path, v: &Value, der: &[u8]) -> Result<(), String> {
    let file = v["file"].as_str().unwrap();
    let parsed = parse_response(der);
    match v["expected_parse"].as_str().unwrap() {
        "error" => match parsed {
            Err(_) => Ok(()),
            Ok(p) => Err(format!("must be refused, parsed as {p:?}")),
        },
        // A ResponseData version other than v1 (RFC 6960 §4.2.1): imza refuses it; the note
        // allows that, and its signature would not verify anyway.
        "see-note" => match parsed {
            Err(OcspError::Malformed { .. }) => Ok(()),
            other => Err(format!("imza refuses non-v1 responses, got {other:?}")),
        },
        verdict @ ("ok" | "error-on-hash-algorithm") => {
            let parsed = parsed.map_err(|e| format!("must parse: {e}"))?;
            let status = response_status_name(parsed.status);
            if status != fact(v, "response_status").as_str().unwrap() {
                return Err(format!("status {status}"));
            }
            let Some(basic) = parsed.basic else {
                return if parsed.status == ResponseStatus::Successful {
                    Err("successful without a basic response".into())
                } else {
                    Ok(())
                };
            };
            check_basic_facts(v, &basic)?;
            if verdict == "error-on-hash-algorithm"
                && basic.responses.iter().any(|s| s.hash.is_some())
            {
                return Err("the CertID hash algorithm must be unsupported".into());
            }
            check_response_notes(dir, file, der, &basic)
        }
        other => Err(format!("unknown verdict {other}")),
    }
}

#[test]
fn pyca_parsing_vectors_agree_with_every_expected_verdict() {
    let dir = vectors("pyca");
    let expected = json(&dir.join("expected.json"));
    let cases = expected["vectors"].as_array().unwrap();
    let mut failures = Vec::new();
    for v in cases {
        let file = v["file"].as_str().unwrap();
        let der = std::fs::read(dir.join(file)).unwrap();
        let outcome = match v["kind"].as_str().unwrap() {
            "OCSPRequest" => check_request(v, &der),
            "OCSPResponse" => check_response(&dir, v, &der),
            kind => Err(format!("unknown kind {kind}")),
        };
        if let Err(problem) = outcome {
            failures.push(format!("{file}: {problem}"));
        }
    }
    // Every .der file in the folder has a verdict and was run.
    let listed: Vec<&str> = cases.iter().map(|v| v["file"].as_str().unwrap()).collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".der") && !listed.contains(&name.as_str()) {
            failures.push(format!("{name}: no expected verdict"));
        }
    }
    assert_eq!(cases.len(), 28, "the pyca set has 28 vectors");
    assert!(
        failures.is_empty(),
        "{} of {} pyca vectors disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn openssl_verification_vectors_agree_with_every_expected_verdict() {
    let dir = vectors("openssl");
    let expected = json(&dir.join("cases.json"));
    let at = parse_rfc3339(expected["validation_time"].as_str().unwrap()).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 54);
    let certs = |key: &str, case: &Value| -> Vec<Certificate> {
        case[key]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| certificates(&dir.join(f.as_str().unwrap())))
            .collect()
    };
    let mut failures = Vec::new();
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let text: String = std::fs::read_to_string(dir.join(case["response"].as_str().unwrap()))
            .unwrap()
            .split_whitespace()
            .collect();
        let der = openssl::base64::decode_block(&text).unwrap();
        let trusted = certs("trusted_certs", case);
        let untrusted = certs("untrusted_certs", case);
        let options = VerifyOptions {
            trusted: &trusted,
            untrusted: &untrusted,
            at,
            // These 2012 responses and certificates are all sha1WithRSAEncryption.
            accept_sha1_signatures: true,
        };
        let verdict = parse_response(&der).and_then(|r| {
            let basic = r.basic.ok_or(OcspError::SuccessfulWithoutBody)?;
            verify_response(&basic, &options)
        });
        let want_valid = case["expected"].as_str().unwrap() == "valid";
        match (&verdict, want_valid) {
            (Ok(_), true) | (Err(_), false) => {}
            (Ok(signer), false) => failures.push(format!(
                "{id}: expected invalid, imza accepted (signer {})",
                format_dn(&signer.certificate.tbs_certificate.subject)
            )),
            (Err(e), true) => failures.push(format!("{id}: expected valid, imza refused: {e}")),
        }
        if let (Ok(signer), true) = (&verdict, want_valid) {
            let delegated = case["responder_kind"].as_str().unwrap() == "delegated";
            if signer.delegated != delegated {
                failures.push(format!("{id}: delegated = {}", signer.delegated));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} OpenSSL vectors disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn sha1_signatures_are_refused_unless_asked_for() {
    let dir = vectors("openssl");
    let text: String = std::fs::read_to_string(dir.join("ND1.ors"))
        .unwrap()
        .split_whitespace()
        .collect();
    let der = openssl::base64::decode_block(&text).unwrap();
    let basic = parse_response(&der).unwrap().basic.unwrap();
    let trusted = certificates(&dir.join("ND1_Issuer_ICA.pem"));
    let options = VerifyOptions {
        trusted: &trusted,
        untrusted: &[],
        at: parse_rfc3339("2012-12-19T00:00:00Z").unwrap(),
        accept_sha1_signatures: false,
    };
    assert!(matches!(
        verify_response(&basic, &options),
        Err(OcspError::UnsupportedSignatureAlgorithm { .. })
    ));
}
