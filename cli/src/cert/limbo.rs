//! `imza cert limbo`: the x509-limbo harness contract. A suite (limbo-schema.json) comes in on
//! stdin, one result per testcase goes out on stdout in limbo's results format
//! (`{"version": 1, "harness", "results": [{"id", "actual_result", "context"}]}`).
//!
//! Every testcase is judged on its own: malformed input in one is that testcase's FAILURE or
//! SKIPPED, never the end of the run (a panic inside validation is caught and reported as a
//! FAILURE naming it, so a bug shows up in the results instead of losing them).

use std::io::Read;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use der::asn1::ObjectIdentifier;
use der::Decode;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};

use imza_core::clock::parse_rfc3339;
use imza_core::oids;
use imza_validation::{
    check_peer_name, read_certificates, read_crls, Certificate, PeerName, RevocationPolicy,
    ValidationOptions, Validator,
};

use super::{PolicyInputs, StrictnessInputs};
use crate::output::{input, CliResult, Failure};

/// Largest suite read from stdin (limbo's own combined suite is a few tens of MiB).
pub const MAX_SUITE_BYTES: u64 = 256 * 1024 * 1024;

/// The harness name written into the results.
const HARNESS: &str = "imza";

/// Features whose testcases are skipped, and why.
const SKIPPED_FEATURES: &[(&str, &str)] = &[
    (
        "pedantic-public-suffix-wildcard",
        "imza has no public suffix list: wildcards are refused only directly over a TLD",
    ),
    (
        "pedantic-webpki-eku",
        "CA/Browser Forum extended key usage rules beyond RFC 5280 are not enforced",
    ),
    (
        "pedantic-webpki-subscriber-key",
        "CA/Browser Forum subscriber key rules beyond RFC 5280 are not enforced",
    ),
    (
        "no-cert-policies",
        "for validators that ignore certificate policies; imza processes them",
    ),
];

/// Features imza implements: their testcases are run.
const RUN_FEATURES: &[&str] = &[
    "has-policy-constraints",
    "has-cert-policies",
    "name-constraint-dn",
    "pedantic-serial-number",
    "max-chain-depth",
    "pedantic-rfc5280",
    "rfc5280-incompatible-with-webpki",
    "denial-of-service",
    "has-crl",
];

/// One limbo testcase, as far as imza reads it (limbo-schema.json `Testcase`).
#[derive(Deserialize)]
struct Testcase {
    /// Required by the schema; the result's id is read before the testcase is parsed, so a
    /// testcase that does not parse still gets its own id.
    #[allow(dead_code)]
    id: String,
    #[serde(default)]
    features: Vec<String>,
    validation_kind: String,
    trusted_certs: Vec<String>,
    untrusted_intermediates: Vec<String>,
    peer_certificate: String,
    #[serde(default)]
    validation_time: Option<String>,
    #[serde(default)]
    signature_algorithms: Vec<String>,
    #[serde(default)]
    key_usage: Vec<String>,
    #[serde(default)]
    extended_key_usage: Vec<String>,
    #[serde(default)]
    expected_peer_name: Option<LimboPeerName>,
    #[serde(default)]
    expected_peer_names: Vec<LimboPeerName>,
    #[serde(default)]
    max_chain_depth: Option<i64>,
    #[serde(default)]
    crls: Vec<String>,
    /// imza's extension: the RFC 5280 §6.1.1 policy inputs.
    #[serde(default)]
    imza_policy: Option<PolicyInputs>,
    /// imza's extension: the strict checks turned off (all on when absent).
    #[serde(default)]
    imza_strictness: Option<StrictnessInputs>,
}

/// limbo-schema.json `PeerName`.
#[derive(Deserialize)]
struct LimboPeerName {
    kind: String,
    value: String,
}

/// A testcase's outcome.
enum Outcome {
    Success(String),
    Failure(String),
    Skipped(String),
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Outcome::Success(_) => "SUCCESS",
            Outcome::Failure(_) => "FAILURE",
            Outcome::Skipped(_) => "SKIPPED",
        }
    }

    fn context(&self) -> &str {
        match self {
            Outcome::Success(c) | Outcome::Failure(c) | Outcome::Skipped(c) => c,
        }
    }
}

pub fn run() -> CliResult {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_SUITE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| input(format!("cannot read the suite from stdin: {e}")))?;
    if bytes.len() as u64 > MAX_SUITE_BYTES {
        return Err(input(format!(
            "the suite on stdin is larger than {MAX_SUITE_BYTES} bytes"
        )));
    }
    let suite: Value = serde_json::from_slice(&bytes)
        .map_err(|e| input(format!("stdin is not a JSON limbo suite: {e}")))?;
    drop(bytes);
    match suite.get("version").and_then(Value::as_i64) {
        Some(1) => {}
        other => {
            return Err(input(format!(
                "unsupported limbo suite version {other:?} (imza reads version 1)"
            )))
        }
    }
    let cases = suite
        .get("testcases")
        .and_then(Value::as_array)
        .ok_or_else(|| input("the suite has no \"testcases\" array"))?;
    let now = imza_core::clock::whole_seconds(OffsetDateTime::now_utc());
    let mut results = Vec::with_capacity(cases.len());
    let (mut success, mut failure, mut skipped, mut agree) = (0usize, 0usize, 0usize, 0usize);
    for (index, case) in cases.iter().enumerate() {
        let id = case
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("testcase-{}-without-id", index + 1));
        let outcome = catch_unwind(AssertUnwindSafe(|| judge(case, now))).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Outcome::Failure(format!("imza panicked on this testcase (a bug): {what}"))
        });
        match outcome {
            Outcome::Success(_) => success += 1,
            Outcome::Failure(_) => failure += 1,
            Outcome::Skipped(_) => skipped += 1,
        }
        if case.get("expected_result").and_then(Value::as_str) == Some(outcome.name()) {
            agree += 1;
        }
        results.push(json!({
            "id": id,
            "actual_result": outcome.name(),
            "context": outcome.context(),
        }));
    }
    let text = serde_json::to_string_pretty(&json!({
        "version": 1,
        "harness": HARNESS,
        "results": results,
    }))
    .map_err(|e| Failure::Internal(format!("cannot write the results: {e}")))?;
    println!("{text}");
    eprintln!(
        "imza cert limbo: {} testcases: {success} SUCCESS, {failure} FAILURE, {skipped} SKIPPED; \
         {agree} as expected",
        cases.len()
    );
    Ok(())
}

/// Runs one testcase (`now` stands in for an absent validation_time).
fn judge(case: &Value, now: OffsetDateTime) -> Outcome {
    let case = match Testcase::deserialize(case) {
        Ok(case) => case,
        Err(e) => {
            return Outcome::Skipped(format!(
                "the testcase does not follow the limbo schema: {e}"
            ))
        }
    };
    match prepare(&case, now) {
        Ok(prepared) => prepared.run(),
        Err(outcome) => outcome,
    }
}

/// A testcase read and checked, ready to validate.
struct Prepared {
    anchors: Vec<Certificate>,
    pool: Vec<Certificate>,
    leaf: Certificate,
    crls: Vec<imza_validation::Crl>,
    options: ValidationOptions,
    peer_names: Vec<PeerName>,
    key_usage: Vec<(String, KeyUsages)>,
    extended_key_usage: Vec<ObjectIdentifier>,
}

fn prepare(case: &Testcase, now: OffsetDateTime) -> Result<Prepared, Outcome> {
    let skip = |why: String| Outcome::Skipped(why);
    let fail = |why: String| Outcome::Failure(why);
    for feature in &case.features {
        if let Some((_, why)) = SKIPPED_FEATURES.iter().find(|(f, _)| f == feature) {
            return Err(skip(format!("feature {feature}: {why}")));
        }
        if !RUN_FEATURES.contains(&feature.as_str()) {
            return Err(skip(format!("unknown feature {feature}")));
        }
    }
    let server = match case.validation_kind.as_str() {
        "SERVER" => true,
        "CLIENT" => false,
        other => {
            return Err(skip(format!(
                "validation_kind {other} is not SERVER or CLIENT"
            )))
        }
    };
    if !case.signature_algorithms.is_empty() {
        return Err(skip(
            "signature_algorithms constraints are not supported: imza accepts its fixed set \
             (RSA PKCS#1 v1.5 and PSS with SHA-2, ECDSA P-256/384/521, Ed25519)"
                .into(),
        ));
    }
    let time = match &case.validation_time {
        Some(text) => parse_rfc3339(text).map_err(|e| skip(format!("validation_time: {e}")))?,
        None => now,
    };
    let key_usage = case
        .key_usage
        .iter()
        .map(|name| {
            key_usage_bit(name)
                .map(|bit| (name.clone(), bit))
                .ok_or_else(|| skip(format!("unknown key_usage {name}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let extended_key_usage = case
        .extended_key_usage
        .iter()
        .map(|name| eku_oid(name).ok_or_else(|| skip(format!("unknown extended_key_usage {name}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<&LimboPeerName> = if server {
        case.expected_peer_name.iter().collect()
    } else {
        case.expected_peer_names.iter().collect()
    };
    let peer_names = names
        .into_iter()
        .map(peer_name)
        .collect::<Result<Vec<_>, _>>()?;

    let mut options = ValidationOptions::at(time);
    options.revocation = if case.crls.is_empty() {
        RevocationPolicy::Off
    } else {
        RevocationPolicy::Require
    };
    if let Some(depth) = case.max_chain_depth {
        options.max_intermediates = Some(
            usize::try_from(depth)
                .map_err(|_| skip(format!("max_chain_depth {depth} is negative")))?,
        );
    }
    if let Some(strictness) = &case.imza_strictness {
        options.strictness = strictness.strictness();
    }
    if let Some(policy) = &case.imza_policy {
        policy
            .apply(&mut options)
            .map_err(|e| skip(format!("imza_policy: {e}")))?;
    }

    let certificates = |what: &str, pems: &[String]| -> Result<Vec<Certificate>, Outcome> {
        let mut all = Vec::new();
        for (i, pem) in pems.iter().enumerate() {
            let found = read_certificates(pem.as_bytes())
                .map_err(|e| fail(format!("{what} {}: {e}", i + 1)))?;
            if found.is_empty() {
                return Err(fail(format!("{what} {}: no PEM certificate", i + 1)));
            }
            all.extend(found);
        }
        Ok(all)
    };
    let anchors = certificates("trusted certificate", &case.trusted_certs)?;
    let pool = certificates("untrusted intermediate", &case.untrusted_intermediates)?;
    let leaf = certificates(
        "peer certificate",
        std::slice::from_ref(&case.peer_certificate),
    )?
    .into_iter()
    .next()
    .ok_or_else(|| fail("no peer certificate".into()))?;
    let mut crls = Vec::new();
    for (i, pem) in case.crls.iter().enumerate() {
        let found = read_crls(pem.as_bytes()).map_err(|e| fail(format!("CRL {}: {e}", i + 1)))?;
        if found.is_empty() {
            return Err(fail(format!("CRL {}: no PEM CRL", i + 1)));
        }
        crls.extend(found);
    }
    Ok(Prepared {
        anchors,
        pool,
        leaf,
        crls,
        options,
        peer_names,
        key_usage,
        extended_key_usage,
    })
}

impl Prepared {
    fn run(self) -> Outcome {
        let mut validator = Validator::new(self.anchors);
        for certificate in self.pool {
            validator.add_certificate(certificate);
        }
        for crl in self.crls {
            validator.add_crl(crl);
        }
        let path = match validator.validate(&self.leaf, &self.options) {
            Ok(path) => path,
            Err(e) => return Outcome::Failure(e.to_string()),
        };
        if let Err(why) = check_key_usage(&self.leaf, &self.key_usage) {
            return Outcome::Failure(why);
        }
        if let Err(why) = check_extended_key_usage(&self.leaf, &self.extended_key_usage) {
            return Outcome::Failure(why);
        }
        for name in &self.peer_names {
            if let Err(e) = check_peer_name(&self.leaf, name) {
                return Outcome::Failure(e.to_string());
            }
        }
        let chain: Vec<String> = path.chain.iter().map(|c| c.subject_text()).collect();
        Outcome::Success(format!("path: {}", chain.join(" <- ")))
    }
}

fn peer_name(name: &LimboPeerName) -> Result<PeerName, Outcome> {
    match name.kind.as_str() {
        "DNS" => Ok(PeerName::Dns(name.value.clone())),
        "RFC822" => Ok(PeerName::Email(name.value.clone())),
        "IP" => {
            name.value.parse::<IpAddr>().map(PeerName::Ip).map_err(|e| {
                Outcome::Failure(format!("expected IP peer name {:?}: {e}", name.value))
            })
        }
        other => Err(Outcome::Skipped(format!("unknown peer name kind {other}"))),
    }
}

/// limbo-schema.json `KeyUsage` names.
fn key_usage_bit(name: &str) -> Option<KeyUsages> {
    Some(match name {
        "digitalSignature" => KeyUsages::DigitalSignature,
        "contentCommitment" => KeyUsages::NonRepudiation,
        "keyEncipherment" => KeyUsages::KeyEncipherment,
        "dataEncipherment" => KeyUsages::DataEncipherment,
        "keyAgreement" => KeyUsages::KeyAgreement,
        "keyCertSign" => KeyUsages::KeyCertSign,
        "cRLSign" => KeyUsages::CRLSign,
        "encipherOnly" => KeyUsages::EncipherOnly,
        "decipherOnly" => KeyUsages::DecipherOnly,
        _ => return None,
    })
}

/// limbo-schema.json `KnownEKUs` names, or a dotted OID.
fn eku_oid(name: &str) -> Option<ObjectIdentifier> {
    Some(match name {
        "anyExtendedKeyUsage" => oids::KP_ANY,
        "serverAuth" => oids::KP_SERVER_AUTH,
        "clientAuth" => oids::KP_CLIENT_AUTH,
        "codeSigning" => oids::KP_CODE_SIGNING,
        "emailProtection" => oids::KP_EMAIL_PROTECTION,
        "timeStamping" => oids::KP_TIME_STAMPING,
        "OCSPSigning" => oids::KP_OCSP_SIGNING,
        other => return ObjectIdentifier::new(other).ok(),
    })
}

/// The single extension `oid` of `cert`, if present (two of them is an error).
fn extension<'c>(
    cert: &'c Certificate,
    oid: ObjectIdentifier,
    what: &str,
) -> Result<Option<&'c [u8]>, String> {
    let mut found = cert
        .inner()
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oid);
    let first = found.next();
    if found.next().is_some() {
        return Err(format!("the leaf has two {what} extensions"));
    }
    Ok(first.map(|e| e.extn_value.as_bytes()))
}

/// RFC 5280 §4.2.1.3: a leaf without keyUsage is not restricted; with it, every requested bit
/// must be asserted.
fn check_key_usage(leaf: &Certificate, wanted: &[(String, KeyUsages)]) -> Result<(), String> {
    if wanted.is_empty() {
        return Ok(());
    }
    let Some(value) = extension(leaf, oids::EXT_KEY_USAGE, "keyUsage")? else {
        return Ok(());
    };
    let usage = KeyUsage::from_der(value).map_err(|e| format!("the leaf's keyUsage: {e}"))?;
    match wanted.iter().find(|(_, bit)| !usage.0.contains(*bit)) {
        Some((name, _)) => Err(format!("the leaf's keyUsage does not assert {name}")),
        None => Ok(()),
    }
}

/// RFC 5280 §4.2.1.12: a leaf without extKeyUsage is not restricted; with it, each requested
/// purpose must be listed, or anyExtendedKeyUsage. Requesting anyExtendedKeyUsage itself
/// asks for nothing.
fn check_extended_key_usage(leaf: &Certificate, wanted: &[ObjectIdentifier]) -> Result<(), String> {
    if wanted.is_empty() {
        return Ok(());
    }
    let Some(value) = extension(leaf, oids::EXT_EXTENDED_KEY_USAGE, "extKeyUsage")? else {
        return Ok(());
    };
    let usage =
        ExtendedKeyUsage::from_der(value).map_err(|e| format!("the leaf's extKeyUsage: {e}"))?;
    let listed = |oid: &ObjectIdentifier| usage.0.contains(oid) || usage.0.contains(&oids::KP_ANY);
    match wanted
        .iter()
        .find(|oid| **oid != oids::KP_ANY && !listed(oid))
    {
        Some(oid) => Err(format!("the leaf's extKeyUsage does not include {oid}")),
        None => Ok(()),
    }
}
