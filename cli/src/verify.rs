//! `imza verify`: validate a CMS / CAdES signature and print the validation report
//! (ETSI EN 319 102-1 indications, TS 119 102-2 shaped). Exit 0 only when TOTAL_PASSED.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use imza_ca::Pki;
use imza_core::clock::{rfc3339, SystemClock};
use imza_signer::http::VerifyService;
use imza_signer::{verify, SignatureReport, ValidationReport, VerifyOptions};
use imza_validation::Certificate;

use crate::output::{
    input, read_certificate_file, read_crl_file, read_limited, CliResult, Failure,
};

/// Largest signature file read (a signature carrying its document included).
const MAX_SIGNATURE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest detached document read (hashed in memory).
const MAX_CONTENT_BYTES: u64 = 1024 * 1024 * 1024;
/// Largest certificate or CRL file read.
const MAX_PKI_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// What `imza verify --help` explains after the options (the one-line summary is on the
/// `Verify` command in main.rs).
const MANUAL: &str = "\
    Validates a signature: CMS SignedData (RFC 5652) or CAdES B-B, B-T, B-LT, B-LTA \
    (ETSI EN 319 122-1), detached (give the document with --content) or carrying its \
    document.\n\
    \n\
    For each signer the report gives an indication as ETSI EN 319 102-1 names them - \
    TOTAL_PASSED, INDETERMINATE or TOTAL_FAILED - with a sub-indication saying why: \
    HASH_FAILURE (the document is not the one signed), SIG_CRYPTO_FAILURE (the signature \
    value is wrong), NO_CERTIFICATE_CHAIN_FOUND (the signer does not chain to a --trust \
    root), REVOKED (revoked before a trusted time-stamp), REVOKED_NO_POE (revoked, and \
    nothing proves the signature is older), OUT_OF_BOUNDS_NO_POE (a certificate expired or \
    not yet valid), TRY_LATER (no revocation information), SIGNED_DATA_NOT_FOUND (a \
    detached signature without --content), FORMAT_FAILURE (not a signature). It also gives \
    the signer (name, personal code from the certificate's serialNumber attribute, \
    certificate serial), the claimed signing time, the time-stamps, the validated chain and \
    each certificate's revocation status.\n\
    \n\
    The certificate path is validated at the proof-of-existence time: the earliest valid \
    signature time-stamp's time, else the current time (--at). A certificate revoked after \
    a trusted time-stamp leaves the signature valid (the report says when it was revoked); \
    one revoked before it does not. Revocation information is required for every \
    certificate below the root: from the signature (B-LT), from --crl files, or fetched \
    with --network. Time-stamp authorities' certificates are checked the same way, at the \
    current time.\n\
    \n\
    Exit status 0: every signature is TOTAL_PASSED. 1: any other verdict (also a file that \
    is not a signature: TOTAL_FAILED FORMAT_FAILURE). 2: bad input (unreadable files, \
    certificates or CRLs that do not parse, bad arguments). 3: an internal failure.\n\
    \n\
    Examples:\n\
    \x20 imza verify contract.pdf.p7s --content contract.pdf --trust root.pem --crl citizens.crl\n\
    \x20 imza verify contract.p7s --trust root.pem --network --json\n\
    \x20 imza verify old.p7s --content old.pdf --trust root.pem --at 2027-01-01T00:00:00Z";

#[derive(Args)]
#[command(after_long_help = MANUAL)]
pub struct VerifyArgs {
    /// The signature: DER (`.p7s`, as `imza sign` and `openssl cms -sign -outform DER` write
    /// it) or PEM (`-----BEGIN PKCS7-----` or `CMS`).
    #[arg(value_name = "SIGNATURE")]
    signature: PathBuf,
    /// The signed document, for a detached signature. Without it a detached signature is
    /// INDETERMINATE SIGNED_DATA_NOT_FOUND. Ignored (with a warning) for a signature that
    /// carries its document.
    #[arg(long, value_name = "FILE")]
    content: Option<PathBuf>,
    /// A trusted root certificate (PEM or DER; a PEM file may hold several). Repeat for more.
    /// Signers' and TSAs' certificates must chain to one of them.
    #[arg(long = "trust", value_name = "FILE", required = true)]
    trust: Vec<PathBuf>,
    /// More certificates to build paths from (intermediates, a signer certificate the
    /// signature does not carry), PEM or DER. Not trusted. Repeatable.
    #[arg(long, value_name = "FILE")]
    untrusted: Vec<PathBuf>,
    /// CRLs (PEM or DER) to check revocation with, besides those in the signature. Repeatable.
    #[arg(long, value_name = "FILE")]
    crl: Vec<PathBuf>,
    /// Fetch CRLs and OCSP responses from the URLs in the certificates (CRL distribution
    /// points, AIA OCSP) when the signature and --crl do not cover a certificate.
    #[arg(long)]
    network: bool,
    /// The validation's current time, RFC 3339 (e.g. 2026-11-21T10:00:00Z): a signature
    /// without a valid time-stamp is judged at it, and so are TSA certificates. Default: now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Print the report as JSON (the same document `POST /verify` answers with) instead of
    /// the summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: VerifyArgs) -> CliResult {
    let now = match &args.at {
        Some(text) => OffsetDateTime::parse(text.trim(), &Rfc3339)
            .map_err(|e| input(format!("--at {text:?} is not an RFC 3339 time: {e}")))?,
        None => OffsetDateTime::now_utc(),
    };
    let signature = read_signature(&args.signature)?;
    let content = args
        .content
        .as_deref()
        .map(|p| read_limited(p, MAX_CONTENT_BYTES, "--content"))
        .transpose()?;
    let mut trust_anchors = Vec::new();
    for path in &args.trust {
        trust_anchors.extend(read_certificate_file(path, "--trust", MAX_PKI_FILE_BYTES)?);
    }
    let mut options = VerifyOptions::new(trust_anchors, now);
    for path in &args.untrusted {
        options.extra_certificates.extend(read_certificate_file(
            path,
            "--untrusted",
            MAX_PKI_FILE_BYTES,
        )?);
    }
    for path in &args.crl {
        options
            .extra_crls
            .extend(read_crl_file(path, "--crl", MAX_PKI_FILE_BYTES)?);
    }
    options.network = args.network;

    let report = verify(&signature, content.as_deref(), &options);
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::Internal(format!("writing the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", summary(&report));
    }
    if report.valid {
        Ok(())
    } else {
        Err(Failure::Verdict(format!(
            "the signature is not valid: {}",
            verdicts(&report)
        )))
    }
}

/// DER as it is, or the first PEM block labelled PKCS7 or CMS.
fn read_signature(path: &Path) -> Result<Vec<u8>, Failure> {
    let bytes = read_limited(path, MAX_SIGNATURE_BYTES, "signature")?;
    if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(bytes);
    }
    let bad = |detail: String| input(format!("signature {}: {detail}", path.display()));
    let text =
        std::str::from_utf8(&bytes).map_err(|e| bad(format!("PEM that is not text: {e}")))?;
    imza_core::pem::all_blocks(text, "signature")
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .find(|(label, _)| label == "PKCS7" || label == "CMS")
        .map(|(_, der)| der)
        .ok_or_else(|| bad("no PEM block labelled PKCS7 or CMS".into()))
}

/// `TOTAL_FAILED/HASH_FAILURE; INDETERMINATE/TRY_LATER` for the signatures that did not pass.
fn verdicts(report: &ValidationReport) -> String {
    if report.signatures.is_empty() {
        return "no signature".into();
    }
    report
        .signatures
        .iter()
        .filter(|s| !s.passed())
        .map(|s| match s.sub_indication {
            Some(sub) => format!("{}/{}", s.indication.name(), sub.name()),
            None => s.indication.name().to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The report for a person: one block per signature, then the result.
fn summary(report: &ValidationReport) -> String {
    let mut out = String::new();
    let count = report.signatures.len();
    for s in &report.signatures {
        out.push_str(&signature_summary(s, count));
        out.push('\n');
    }
    out.push_str(&format!(
        "Result: {} ({count} signature{}, validated at {})\n",
        if report.valid { "VALID" } else { "NOT VALID" },
        if count == 1 { "" } else { "s" },
        rfc3339(report.validation_time)
    ));
    out
}

fn signature_summary(s: &SignatureReport, count: usize) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("  {label:<15}{value}\n"));
    };
    let verdict = match s.sub_indication {
        Some(sub) => format!("{} / {}", s.indication.name(), sub.name()),
        None => s.indication.name().to_string(),
    };
    let mut head = format!("Signature {} of {count}: {verdict}\n", s.index + 1);
    if let Some(signer) = &s.signer {
        let name = signer.common_name.clone().unwrap_or(signer.subject.clone());
        let code = signer
            .personal_code
            .as_deref()
            .map(|c| format!(" (personal code {c})"))
            .unwrap_or_default();
        line("Signer:", format!("{name}{code}"));
        line("Subject:", signer.subject.clone());
        line(
            "Certificate:",
            format!("serial {}, issued by {}", signer.serial, signer.issuer),
        );
    }
    if let Some(level) = s.level {
        let form = if s.detached { "detached" } else { "attached" };
        line("Level:", format!("{level} ({form})"));
    }
    if let Some(t) = s.claimed_signing_time {
        line(
            "Claimed time:",
            format!("{} (as the signer says)", rfc3339(t)),
        );
    }
    for ts in &s.timestamps {
        let state = if ts.valid {
            "valid".to_string()
        } else {
            match ts.sub_indication {
                Some(sub) => format!("not accepted: {} / {}", ts.indication.name(), sub.name()),
                None => "not accepted".into(),
            }
        };
        line(
            "Time-stamp:",
            format!(
                "{} by {} ({}, {state})",
                ts.time.map(rfc3339).unwrap_or_else(|| "?".into()),
                ts.tsa.as_deref().unwrap_or("an unnamed TSA"),
                ts.kind
            ),
        );
    }
    if let Some(poe) = s.poe_time {
        let source = if s.timestamps.iter().any(|t| t.valid && t.time == Some(poe)) {
            "proof of existence from a time-stamp"
        } else {
            "no earlier proof of existence"
        };
        line("Validated at:", format!("{} ({source})", rfc3339(poe)));
    }
    if !s.chain.is_empty() {
        let chain: Vec<&str> = s.chain.iter().map(|c| c.subject.as_str()).collect();
        line("Chain:", chain.join(" <- "));
    }
    for r in &s.revocation {
        let source = match (r.source, r.this_update, r.produced_at) {
            (Some("OCSP"), _, Some(at)) => format!(" (OCSP produced at {})", rfc3339(at)),
            (Some("LOCAL"), _, _) => format!(" ({})", r.note.as_deref().unwrap_or("LOCAL")),
            (Some(src), Some(at), _) => format!(" ({src} of {})", rfc3339(at)),
            _ => String::new(),
        };
        let later = r
            .revoked_later
            .map(|t| format!(", revoked later at {}", rfc3339(t)))
            .unwrap_or_default();
        line(
            "Revocation:",
            format!("{}: {}{source}{later}", r.subject, r.state),
        );
    }
    for e in &s.errors {
        line("Error:", e.clone());
    }
    for w in &s.warnings {
        line("Warning:", w.clone());
    }
    head.push_str(&out);
    head
}

/// The service behind `POST /verify` in `imza serve`: the store's root CAs are the trust
/// anchors, the CAs below them the intermediates, and revocation information is fetched from
/// the URLs the certificates name (the server's own `/crl/` and `/ocsp` when their base URL
/// points at it). CAs created after the server started are picked up at its next start.
pub fn serve_service(pki: &Pki) -> Arc<VerifyService> {
    let mut anchors = Vec::new();
    let mut intermediates = Vec::new();
    // A store that cannot be read leaves no anchors: every answer then says
    // NO_CERTIFICATE_CHAIN_FOUND, and /health reports the store.
    for ca in pki.store().cas().unwrap_or_default() {
        let Ok(cert) = Certificate::from_der(ca.certificate) else {
            continue;
        };
        match ca.parent {
            None => anchors.push(cert),
            Some(_) => intermediates.push(cert),
        }
    }
    let mut options = VerifyOptions::new(anchors, OffsetDateTime::now_utc());
    options.extra_certificates = intermediates;
    options.network = true;
    Arc::new(VerifyService::new(&options, Arc::new(SystemClock)))
}
