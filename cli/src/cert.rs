//! `imza cert verify` (RFC 5280 path validation of one certificate) and `imza cert limbo`
//! (the x509-limbo harness contract), over imza-validation.

mod limbo;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use der::asn1::ObjectIdentifier;
use serde_json::{json, Value};
use time::OffsetDateTime;

use imza_core::clock::{from_x509_time, parse_rfc3339, rfc3339};
use imza_core::oids;
use imza_http::HttpClient;
use imza_validation::{
    Certificate, Purpose, RevocationEvidence, RevocationPolicy, RevocationState, Strictness,
    ValidatedPath, ValidationError, ValidationOptions, Validator, DEFAULT_MIN_RSA_MODULUS_BITS,
};

use crate::output::{
    input, print_json, read_certificate_file, read_crl_file, CliResult, Failure, MAX_INPUT_BYTES,
};
use crate::watched_fetch::{NetworkWatch, WatchedFetcher};

/// Largest CRL file read by `--crl` (a national CA's full CRL runs to tens of MiB).
pub const MAX_CRL_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Subcommand)]
pub enum CertCommand {
    /// Validate a certificate path (RFC 5280 §6) from LEAF to a trust anchor. Exit 0 valid, 1 invalid.
    ///
    /// A path is built from LEAF through the --untrusted certificates (in any order; several
    /// candidate paths are tried within a work budget) to one of the --trust anchors, and
    /// checked as RFC 5280 §6.1 says: signatures, validity at the validation time, basic
    /// constraints and path length, key usage, name constraints, certificate policies (with the
    /// four policy inputs below) and unknown critical extensions.
    ///
    /// Stricter than RFC 5280 asks of a verifier, by default (each a policy, with the flag that
    /// turns it off): the --trust certificate itself must be a valid CA certificate allowed to
    /// sign certificates, with no unknown critical extension, and its pathLenConstraint and
    /// policy extensions constrain the path (RFC 5937 §2) (--anchor-as-key); a CA's
    /// extendedKeyUsage limits what it certifies to its purposes (--no-ca-eku-constraint);
    /// certificates and CRLs must follow RFC 5280's rules for conforming CAs — key identifiers,
    /// extension criticality, positive serial numbers, CRL numbers (--allow-nonconforming);
    /// RSA keys, on the path and of a delegated OCSP responder, must have at least 2048 bits
    /// (--min-rsa-bits). Whatever the flags, the name
    /// constraints of a --trust certificate apply to the path (RFC 5937), a wildcard DNS name
    /// is judged as every name it stands for, and a malformed e-mail address is refused under
    /// e-mail name constraints.
    ///
    /// Revocation is checked for every certificate below the anchor when --crl or --ocsp is
    /// given, and then a certificate that no usable CRL or OCSP response covers fails the path.
    /// Without either, revocation is not checked and the output says so.
    ///
    /// Certificates and CRLs are read from PEM (any number of blocks) or DER files.
    ///
    /// Output: "VALID" or "INVALID: <reason>", then the path (subject, serial, validity end),
    /// the revocation finding per certificate and the user-constrained policy set. With
    /// --json, one object:
    ///
    ///   {"valid": bool, "error": string|null, "error_kind": string|null,
    ///    "validation_time": RFC 3339, "revocation_checked": bool,
    ///    "chain": [{"subject", "serial", "not_before", "not_after", "trust_anchor": bool}],
    ///    "revocation": [{"subject", "serial", "status": "good"|"not_checked",
    ///                    "revoked_later": RFC 3339|null, "why": string|null,
    ///                    "source": "crl"|"ocsp"|null, "this_update", "next_update"}],
    ///    "policies": [dotted OIDs]}
    ///
    /// "chain" runs from LEAF to the anchor and is empty when no path is valid; "revocation" has
    /// one entry per chain certificate except the anchor. error_kind is one of malformed,
    /// no_path, budget_exceeded, bad_signature, expired, not_yet_valid, revoked,
    /// revocation_unknown, constraint, purpose, unsupported_algorithm, network, trust_anchor,
    /// name_constraint, ca_extended_key_usage, nonconforming, nonconforming_crl, weak_key,
    /// other.
    ///
    /// Exit status 0: valid. 1: not valid (the reason is printed). 2: bad input (a file that
    /// cannot be read or holds no certificate, a bad --at or --policy). 3: the environment or
    /// imza failed: with --ocsp, a revocation status left unknown because a responder or a
    /// CRL distribution point could not be reached.
    #[command(verbatim_doc_comment)]
    Verify(VerifyArgs),
    /// Run an x509-limbo test suite read from stdin; write the results JSON to stdout.
    ///
    /// Reads a suite in the x509-limbo format (limbo-schema.json: {"version": 1, "testcases":
    /// [...]}) and writes limbo's results format:
    ///
    ///   {"version": 1, "harness": "imza",
    ///    "results": [{"id", "actual_result": "SUCCESS"|"FAILURE"|"SKIPPED", "context"}]}
    ///
    /// with one result per testcase, in order, and a summary on stderr. Each testcase is run as
    /// follows: trusted_certs are the trust anchors, untrusted_intermediates the pool,
    /// peer_certificate the target, validated at validation_time (now when absent).
    /// SERVER cases check expected_peer_name, CLIENT cases every expected_peer_names entry
    /// (DNS with RFC 6125 wildcards, IP, RFC822; the subject CN is never used). When the leaf
    /// has an extKeyUsage extension it must carry each extended_key_usage entry (or
    /// anyExtendedKeyUsage); when it has a keyUsage extension it must assert each key_usage
    /// bit. max_chain_depth is the most intermediate certificates allowed between the leaf and
    /// the anchor. A non-empty crls list makes revocation checking required against those
    /// CRLs; an empty one turns it off.
    ///
    /// SKIPPED (with the reason as context): a non-empty signature_algorithms (imza does not
    /// restrict algorithms per validation), a validation_kind other than SERVER or CLIENT, the
    /// features pedantic-public-suffix-wildcard (no public suffix list), pedantic-webpki-eku and
    /// pedantic-webpki-subscriber-key (CA/Browser Forum rules beyond RFC 5280), no-cert-policies
    /// (imza processes policies) and unknown features, and input that does not follow the
    /// schema. A testcase never stops the run: a certificate or CRL that does not parse is a
    /// FAILURE with the parse error as context.
    ///
    /// imza extension: an optional per-testcase object
    ///
    ///   "imza_policy": {"initial_policy_set": [dotted OIDs], "explicit_policy": bool,
    ///                   "inhibit_policy_mapping": bool, "inhibit_any_policy": bool}
    ///
    /// sets the RFC 5280 §6.1.1 policy inputs (user-initial-policy-set, empty meaning
    /// anyPolicy; initial-explicit-policy; initial-policy-mapping-inhibit;
    /// initial-any-policy-inhibit), which limbo's schema lacks and NIST PKITS needs; and
    ///
    ///   "imza_strictness": {"anchor_as_key": bool, "no_ca_eku_constraint": bool,
    ///                       "allow_nonconforming": bool, "min_rsa_bits": number}
    ///
    /// turns off the strict checks as `imza cert verify`'s flags of the same names do (all
    /// strict when absent).
    ///
    /// Exit status 0: the results were written (whatever the verdicts). 2: stdin is not a limbo
    /// suite (not JSON, version not 1, no testcases array) or larger than 256 MiB.
    #[command(verbatim_doc_comment)]
    Limbo,
}

/// What the target certificate must be fit for.
#[derive(Clone, Copy, ValueEnum)]
pub enum PurposeArg {
    /// No key usage or extended key usage requirement.
    Any,
    /// Electronic signatures: keyUsage digitalSignature or nonRepudiation.
    Sign,
    /// Person authentication (portal login): digitalSignature; EKU clientAuth when present.
    Auth,
    /// TLS server: EKU serverAuth when present.
    Server,
    /// TLS client: EKU clientAuth when present.
    Client,
}

impl PurposeArg {
    fn purpose(self) -> Purpose {
        match self {
            PurposeArg::Any => Purpose::Any,
            PurposeArg::Sign => Purpose::Sign,
            PurposeArg::Auth => Purpose::Auth,
            PurposeArg::Server => Purpose::Server,
            PurposeArg::Client => Purpose::Client,
        }
    }
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The certificate to validate (PEM or DER). When the file holds several PEM
    /// certificates, the first is validated and the others join the --untrusted pool.
    #[arg(value_name = "LEAF")]
    leaf: PathBuf,
    /// Trust anchors (PEM or DER; repeat, or put several in one PEM file). An anchor is
    /// trusted for its name and key, whether self-signed or not (RFC 5280 §6.1.1 (d)).
    #[arg(long, value_name = "FILE", required = true)]
    trust: Vec<PathBuf>,
    /// Untrusted certificates to build the path from: intermediates, cross-certificates,
    /// CRL issuers (PEM or DER; repeat).
    #[arg(long, value_name = "FILE")]
    untrusted: Vec<PathBuf>,
    /// CRLs (full or delta; PEM or DER; repeat). Giving one turns revocation checking on:
    /// every certificate on the path must then be covered by a usable CRL or OCSP response.
    #[arg(long, value_name = "FILE")]
    crl: Vec<PathBuf>,
    /// Use the network: ask the OCSP responder named in each certificate's authority
    /// information access extension (HTTP POST), and fetch CRLs from its CRL distribution
    /// points (http:// only). Turns revocation checking on, as --crl does. (The same flag as
    /// `imza verify --network`; `--ocsp` is its old name.)
    #[arg(long, alias = "ocsp")]
    network: bool,
    /// Give up on one OCSP responder or CRL download after this many seconds (with --network).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
    /// Validate at this time instead of now (RFC 3339, e.g. 2026-03-01T12:00:00Z):
    /// certificate validity and revocation are judged at it; a revocation after it does not
    /// invalidate the path.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Acceptable certificate policy (dotted OID; repeat): the user-initial-policy-set
    /// (RFC 5280 §6.1.1 (c)). Without it any policy is acceptable (anyPolicy).
    #[arg(long, value_name = "OID")]
    policy: Vec<String>,
    /// Require a valid policy for the whole path (initial-explicit-policy, §6.1.1 (f)).
    #[arg(long)]
    explicit_policy: bool,
    /// Do not follow policy mappings (initial-policy-mapping-inhibit, §6.1.1 (e)).
    #[arg(long)]
    inhibit_policy_mapping: bool,
    /// Do not let anyPolicy in a certificate match a policy (initial-any-policy-inhibit,
    /// §6.1.1 (g)).
    #[arg(long)]
    inhibit_any_policy: bool,
    /// What LEAF must be fit for (keyUsage / extendedKeyUsage).
    #[arg(long, value_enum, default_value = "any")]
    purpose: PurposeArg,
    /// Print the result as one JSON object (also when the path is not valid); see above.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    strictness: StrictnessInputs,
}

/// The strict checks that are policies, not RFC 5280 rules for verifiers: all on unless
/// turned off, from `imza cert verify`'s flags or a limbo case's `imza_strictness` object.
#[derive(Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StrictnessInputs {
    /// Trust each --trust certificate as a name and a key only (RFC 5280 §6.1.1 (d)): do not
    /// check its validity, basicConstraints cA, keyUsage keyCertSign, extendedKeyUsage or
    /// critical extensions (checked by default, as WebPKI verifiers do), nor apply its
    /// pathLenConstraint, certificatePolicies, policyConstraints and inhibitAnyPolicy to the
    /// path (applied by default, RFC 5937 §2). Its name constraints apply either way (RFC 5937).
    #[arg(long)]
    #[serde(default)]
    pub anchor_as_key: bool,
    /// Let an extendedKeyUsage in a CA certificate not limit what the CA certifies. By default
    /// a CA whose extendedKeyUsage has neither the purpose the certificate is checked for
    /// (`cert verify --purpose`; signing and time-stamping for `imza verify`) nor
    /// anyExtendedKeyUsage cannot certify it (as Go, NSS and rustls-webpki nest EKUs).
    #[arg(long)]
    #[serde(default)]
    pub no_ca_eku_constraint: bool,
    /// Accept certificates and CRLs that break RFC 5280's rules for conforming CAs: a missing
    /// authority key identifier (or subject key identifier in a CA certificate), a critical
    /// key identifier or authorityInfoAccess, a non-critical policyConstraints, a non-critical
    /// subjectAltName with an empty subject, an empty extendedKeyUsage, name constraints or
    /// keyCertSign in an end-entity certificate, a zero or negative serial number, a CRL
    /// without a CRL number or with a critical one. Refused by default: the RFC binds the
    /// issuer, and a strict verifier refuses what a conforming CA could not have issued.
    /// For legacy PKIs (NIST PKITS has non-critical policyConstraints).
    #[arg(long)]
    #[serde(default)]
    pub allow_nonconforming: bool,
    /// The smallest RSA key, in bits, accepted anywhere on the path, the anchor included, and
    /// for a delegated OCSP responder (a policy after NIST SP 800-131A).
    #[arg(long, value_name = "BITS", default_value_t = DEFAULT_MIN_RSA_MODULUS_BITS)]
    #[serde(default = "default_min_rsa_bits")]
    pub min_rsa_bits: usize,
}

fn default_min_rsa_bits() -> usize {
    DEFAULT_MIN_RSA_MODULUS_BITS
}

impl StrictnessInputs {
    /// These choices, for the validator.
    pub(crate) fn strictness(&self) -> Strictness {
        Strictness {
            check_anchor_certificate: !self.anchor_as_key,
            ca_extended_key_usage_constrains_path: !self.no_ca_eku_constraint,
            require_rfc5280_conformance: !self.allow_nonconforming,
            min_rsa_modulus_bits: self.min_rsa_bits,
        }
    }
}

pub fn run(command: CertCommand) -> CliResult {
    match command {
        CertCommand::Verify(args) => verify(args),
        CertCommand::Limbo => limbo::run(),
    }
}

// --- imza cert verify ---------------------------------------------------------------------

fn verify(args: VerifyArgs) -> CliResult {
    let mut leaf_file = read_certificate_file(&args.leaf, "LEAF", MAX_INPUT_BYTES)?.into_iter();
    let leaf = leaf_file
        .next()
        .ok_or_else(|| input(format!("{}: no certificate in it", args.leaf.display())))?;
    let mut anchors = Vec::new();
    for path in &args.trust {
        anchors.extend(read_certificate_file(path, "--trust", MAX_INPUT_BYTES)?);
    }
    let mut validator = Validator::new(anchors);
    for certificate in leaf_file {
        validator.add_certificate(certificate);
    }
    for path in &args.untrusted {
        for certificate in read_certificate_file(path, "--untrusted", MAX_INPUT_BYTES)? {
            validator.add_certificate(certificate);
        }
    }
    for path in &args.crl {
        for crl in read_crl_file(path, "--crl", MAX_CRL_BYTES)? {
            validator.add_crl(crl);
        }
    }
    let time = match &args.at {
        Some(at) => parse_rfc3339(at).map_err(|e| input(format!("--at: {e}")))?,
        None => imza_core::clock::whole_seconds(OffsetDateTime::now_utc()),
    };
    let mut options = ValidationOptions::at(time);
    PolicyInputs {
        initial_policy_set: args.policy.clone(),
        explicit_policy: args.explicit_policy,
        inhibit_policy_mapping: args.inhibit_policy_mapping,
        inhibit_any_policy: args.inhibit_any_policy,
    }
    .apply(&mut options)
    .map_err(|e| input(format!("--policy: {e}")))?;
    options.purpose = args.purpose.purpose();
    options.strictness = args.strictness.strictness();
    let checked = args.network || !args.crl.is_empty();
    options.revocation = if checked {
        RevocationPolicy::Require
    } else {
        RevocationPolicy::Off
    };
    let mut network = None;
    if args.network {
        options.network = true;
        let (fetcher, watch) = WatchedFetcher::new(HttpClient {
            timeout: Duration::from_secs(args.timeout),
            ..HttpClient::default()
        });
        validator.set_fetcher(Box::new(fetcher));
        network = Some(watch);
    }

    let result = validator.validate(&leaf, &options);
    if args.json {
        print_json(&verdict_json(&result, time, checked))?;
    } else {
        print_verdict(&result, time, checked);
    }
    let unreachable = network.as_ref().and_then(NetworkWatch::failure);
    match (result, unreachable) {
        (Ok(_), _) => Ok(()),
        // No source settled the status because the network failed: no verdict can be given.
        (
            Err(e @ (ValidationError::RevocationUnknown { .. } | ValidationError::Network { .. })),
            Some(why),
        ) => Err(Failure::Environment(format!(
            "cannot check revocation: {why} ({e})"
        ))),
        (Err(e), _) => Err(Failure::Verdict(format!("not valid: {e}"))),
    }
}

/// The RFC 5280 §6.1.1 policy inputs, from `imza cert verify`'s flags or a limbo case's
/// `imza_policy` object.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyInputs {
    /// user-initial-policy-set (c), dotted OIDs; empty means anyPolicy.
    #[serde(default)]
    pub initial_policy_set: Vec<String>,
    /// initial-explicit-policy (f).
    #[serde(default)]
    pub explicit_policy: bool,
    /// initial-policy-mapping-inhibit (e).
    #[serde(default)]
    pub inhibit_policy_mapping: bool,
    /// initial-any-policy-inhibit (g).
    #[serde(default)]
    pub inhibit_any_policy: bool,
}

impl PolicyInputs {
    /// Sets these inputs in `options`; an OID that does not parse is the error.
    pub(crate) fn apply(&self, options: &mut ValidationOptions) -> Result<(), String> {
        options.initial_policy_set = self
            .initial_policy_set
            .iter()
            .map(|p| parse_oid(p))
            .collect::<Result<_, _>>()?;
        options.initial_explicit_policy = self.explicit_policy;
        options.initial_policy_mapping_inhibit = self.inhibit_policy_mapping;
        options.initial_any_policy_inhibit = self.inhibit_any_policy;
        Ok(())
    }
}

fn parse_oid(text: &str) -> Result<ObjectIdentifier, String> {
    ObjectIdentifier::new(text.trim()).map_err(|e| format!("{text:?} is not a dotted OID: {e}"))
}

/// A stable machine-readable name for each kind of failure.
pub(crate) fn error_kind(e: &ValidationError) -> &'static str {
    match e {
        ValidationError::Malformed { .. } => "malformed",
        ValidationError::NoPathFound { .. } => "no_path",
        ValidationError::BudgetExceeded { .. } => "budget_exceeded",
        ValidationError::BadSignature { .. } => "bad_signature",
        ValidationError::Expired { .. } => "expired",
        ValidationError::NotYetValid { .. } => "not_yet_valid",
        ValidationError::Revoked { .. } => "revoked",
        ValidationError::RevocationUnknown { .. } => "revocation_unknown",
        ValidationError::Constraint { .. } => "constraint",
        ValidationError::Purpose { .. } => "purpose",
        ValidationError::Unsupported(_) => "unsupported_algorithm",
        ValidationError::Network { .. } => "network",
        ValidationError::TrustAnchor { .. } => "trust_anchor",
        ValidationError::AnchorNameConstraints { .. } | ValidationError::NameConstraint { .. } => {
            "name_constraint"
        }
        ValidationError::CaExtendedKeyUsage { .. } => "ca_extended_key_usage",
        ValidationError::NonConforming { .. } => "nonconforming",
        ValidationError::NonConformingCrl { .. } => "nonconforming_crl",
        ValidationError::WeakRsaKey { .. } | ValidationError::WeakOcspResponderKey { .. } => {
            "weak_key"
        }
        _ => "other",
    }
}

fn serial_hex(cert: &Certificate) -> String {
    hex::encode_upper(cert.serial())
}

fn validity(cert: &Certificate) -> (OffsetDateTime, OffsetDateTime) {
    let validity = &cert.inner().tbs_certificate.validity;
    (
        from_x509_time(&validity.not_before),
        from_x509_time(&validity.not_after),
    )
}

fn policy_name(oid: &ObjectIdentifier) -> String {
    if *oid == oids::ANY_POLICY {
        "anyPolicy".into()
    } else {
        oid.to_string()
    }
}

/// (source, thisUpdate, nextUpdate) of a revocation finding's evidence.
fn evidence_facts(
    evidence: Option<&RevocationEvidence>,
) -> (Option<&'static str>, Option<String>, Option<String>) {
    match evidence {
        Some(RevocationEvidence::Crl {
            this_update,
            next_update,
            ..
        }) => (
            Some("crl"),
            Some(rfc3339(*this_update)),
            next_update.map(rfc3339),
        ),
        Some(RevocationEvidence::Ocsp {
            this_update,
            next_update,
            ..
        }) => (
            Some("ocsp"),
            Some(rfc3339(*this_update)),
            next_update.map(rfc3339),
        ),
        Some(RevocationEvidence::Local { .. }) => (Some("local"), None, None),
        None => (None, None, None),
    }
}

fn verdict_json(
    result: &Result<ValidatedPath, ValidationError>,
    time: OffsetDateTime,
    checked: bool,
) -> Value {
    let (chain, revocation, policies) = match result {
        Ok(path) => {
            let last = path.chain.len().saturating_sub(1);
            let chain: Vec<Value> = path
                .chain
                .iter()
                .enumerate()
                .map(|(i, cert)| {
                    let (not_before, not_after) = validity(cert);
                    json!({
                        "subject": cert.subject_text(),
                        "serial": serial_hex(cert),
                        "not_before": rfc3339(not_before),
                        "not_after": rfc3339(not_after),
                        "trust_anchor": i == last,
                    })
                })
                .collect();
            let revocation: Vec<Value> = path
                .revocation
                .iter()
                .map(|status| {
                    let (source, this_update, next_update) =
                        evidence_facts(status.evidence.as_ref());
                    let (state, revoked_later, why) = match &status.state {
                        RevocationState::Good { revoked_later } => {
                            ("good", revoked_later.map(rfc3339), None)
                        }
                        RevocationState::NotChecked { why } => {
                            ("not_checked", None, Some(why.clone()))
                        }
                    };
                    json!({
                        "subject": status.subject,
                        "serial": status.serial_hex,
                        "status": state,
                        "revoked_later": revoked_later,
                        "why": why,
                        "source": source,
                        "this_update": this_update,
                        "next_update": next_update,
                    })
                })
                .collect();
            let policies: Vec<String> = path
                .user_constrained_policy_set
                .iter()
                .map(|p| p.to_string())
                .collect();
            (chain, revocation, policies)
        }
        Err(_) => (Vec::new(), Vec::new(), Vec::new()),
    };
    let (error, kind) = match result {
        Ok(_) => (None, None),
        Err(e) => (Some(e.to_string()), Some(error_kind(e))),
    };
    json!({
        "valid": result.is_ok(),
        "error": error,
        "error_kind": kind,
        "validation_time": rfc3339(time),
        "revocation_checked": checked,
        "chain": chain,
        "revocation": revocation,
        "policies": policies,
    })
}

fn print_verdict(
    result: &Result<ValidatedPath, ValidationError>,
    time: OffsetDateTime,
    checked: bool,
) {
    let path = match result {
        Ok(path) => path,
        Err(e) => {
            println!("INVALID: {e}");
            println!("  validation time: {}", rfc3339(time));
            if !checked {
                println!("  revocation not checked (give --crl or --ocsp)");
            }
            return;
        }
    };
    println!("VALID at {}", rfc3339(time));
    println!("chain:");
    let last = path.chain.len().saturating_sub(1);
    for (i, cert) in path.chain.iter().enumerate() {
        let (_, not_after) = validity(cert);
        let anchor = if i == last { " (trust anchor)" } else { "" };
        println!("  {i}: {}{anchor}", cert.subject_text());
        println!(
            "     serial {}, not after {}",
            serial_hex(cert),
            rfc3339(not_after)
        );
    }
    if checked {
        println!("revocation:");
        for status in &path.revocation {
            let (source, this_update, next_update) = evidence_facts(status.evidence.as_ref());
            let state = match &status.state {
                RevocationState::Good {
                    revoked_later: None,
                } => "good".to_string(),
                RevocationState::Good {
                    revoked_later: Some(at),
                } => format!(
                    "good at the validation time (revoked later, at {})",
                    rfc3339(*at)
                ),
                RevocationState::NotChecked { why } => format!("not checked: {why}"),
            };
            let from = match (source, this_update) {
                (Some(source), Some(this_update)) => format!(
                    " ({} thisUpdate {this_update}{})",
                    source.to_uppercase(),
                    next_update
                        .map(|n| format!(", nextUpdate {n}"))
                        .unwrap_or_default()
                ),
                _ => String::new(),
            };
            println!("  {}: {state}{from}", status.subject);
        }
    } else {
        println!("revocation not checked (give --crl or --ocsp)");
    }
    let policies: Vec<String> = path
        .user_constrained_policy_set
        .iter()
        .map(policy_name)
        .collect();
    println!(
        "policies: {}",
        if policies.is_empty() {
            "none (no valid policy)".to_string()
        } else {
            policies.join(", ")
        }
    );
}
