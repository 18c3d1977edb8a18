//! `imza verify`: validate a CMS / CAdES signature or the PAdES signatures of a PDF and
//! print the validation report (ETSI EN 319 102-1 indications, TS 119 102-2 shaped). Exit 0
//! only when every signature is TOTAL_PASSED.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use imza_ca::store::CertificateStatus;
use imza_ca::Pki;
use imza_core::clock::rfc3339;
use imza_http::HttpClient;
use imza_signer::{
    verify, verify_reader, Indication, SignatureReport, SubIndication, ValidationReport,
    VerifyOptions,
};
use imza_validation::{Certificate, FetchCache, LocalRevocationSource, LocalStatus};

use crate::output::{
    input, read_certificate_file, read_crl_file, read_limited, CliResult, Failure,
};
use crate::watched_fetch::{NetworkWatch, WatchedFetcher};

/// Largest signature file read (a signature carrying its document included).
const MAX_SIGNATURE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest detached document read. It is hashed as it is read, in bounded memory; the bound
/// only ends an endless input (`/dev/zero`, a pipe).
const MAX_CONTENT_BYTES: u64 = 16 * 1024 * 1024 * 1024;
/// Largest certificate or CRL file read.
const MAX_PKI_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// What `imza verify --help` explains after the options (the one-line summary is on the
/// `Verify` command in main.rs).
const MANUAL: &str = "\
    Validates a signature: CMS SignedData (RFC 5652) or CAdES B-B, B-T, B-LT, B-LTA \
    (ETSI EN 319 122-1), detached (give the document with --content) or carrying its \
    document; or a signed PDF (PAdES, ETSI EN 319 142-1): every signature and document \
    time-stamp in it, one entry each.\n\
    \n\
    For a PDF, each signature's /ByteRange must cover its whole revision but the signature \
    itself, from the first byte to the end of a revision, its gap exactly the signature's \
    /Contents (else FORMAT_FAILURE: forged or wrapped signatures); the validation data in \
    the document security store (/DSS) is used as if it were in the signature; and every \
    later revision is examined for what it changed. Only a DSS and document time-stamps \
    leave a signature untouched; new signatures and form filling are allowed unless a \
    certification forbids them (DocMDP P1), annotations only under P3. Anything else - new \
    or replaced page content, fonts, images, overlays, removed objects (incremental saving \
    and shadow attacks) - is TOTAL_FAILED HASH_FAILURE, and changes beyond what the \
    signature permits are INDETERMINATE SIG_CONSTRAINTS_FAILURE; the report lists each \
    later revision and what it changed.\n\
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
    certificates or CRLs that do not parse, bad arguments). 3: an internal or environment \
    failure (with --network: every signature short of TOTAL_PASSED is INDETERMINATE \
    TRY_LATER because a responder or CRL distribution point could not be reached; the \
    report is printed all the same).\n\
    \n\
    Examples:\n\
    \x20 imza verify contract.pdf.p7s --content contract.pdf --trust root.pem --crl citizens.crl\n\
    \x20 imza verify contract.p7s --trust root.pem --network --json\n\
    \x20 imza verify old.p7s --content old.pdf --trust root.pem --at 2027-01-01T00:00:00Z";

#[derive(Args)]
#[command(after_long_help = MANUAL)]
pub struct VerifyArgs {
    /// The signature: DER (`.p7s`, as `imza sign` and `openssl cms -sign -outform DER` write
    /// it) or PEM (`-----BEGIN PKCS7-----` or `CMS`); or a signed PDF (any size: read as a
    /// stream).
    #[arg(value_name = "SIGNATURE")]
    signature: PathBuf,
    /// The signed document, for a detached signature: hashed as it is read, so any size
    /// (up to 16 GiB) is verified in bounded memory. Without it a detached signature is
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
    #[command(flatten)]
    strictness: crate::cert::StrictnessInputs,
}

pub fn run(args: VerifyArgs) -> CliResult {
    let now = match &args.at {
        Some(text) => OffsetDateTime::parse(text.trim(), &Rfc3339)
            .map_err(|e| input(format!("--at {text:?} is not an RFC 3339 time: {e}")))?,
        None => OffsetDateTime::now_utc(),
    };
    let mut file = std::fs::File::open(&args.signature).map_err(|e| {
        input(format!(
            "signature {}: cannot read: {e}",
            args.signature.display()
        ))
    })?;
    let pdf = crate::sign::is_pdf_file(&mut file)?;
    if pdf && args.content.is_some() {
        return Err(input(
            "--content is for detached CMS signatures; a PDF holds what it signs",
        ));
    }
    let signature = if pdf {
        Vec::new()
    } else {
        read_signature(&args.signature)?
    };
    let content = args
        .content
        .as_deref()
        .map(|path| {
            std::fs::File::open(path)
                .map(|file| (path, file))
                .map_err(|e| input(format!("--content {}: cannot read: {e}", path.display())))
        })
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
    options.strictness = args.strictness.strictness();
    let mut network = None;
    if args.network {
        let (fetcher, watch) = WatchedFetcher::new(HttpClient::default());
        options.fetcher = Some(Arc::new(fetcher));
        network = Some(watch);
    }

    let report = match content {
        _ if pdf => imza_signer::pades::verify_pdf(std::io::BufReader::new(file), &options),
        Some((path, file)) => {
            let mut reader = Counted {
                inner: std::io::Read::take(file, MAX_CONTENT_BYTES + 1),
                read: 0,
            };
            let report = verify_reader(&signature, &mut reader, &options)
                .map_err(|e| input(format!("--content {}: cannot read: {e}", path.display())))?;
            if reader.read > MAX_CONTENT_BYTES {
                return Err(input(format!(
                    "--content {} is larger than {MAX_CONTENT_BYTES} bytes",
                    path.display()
                )));
            }
            report
        }
        None => verify(&signature, None, &options),
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::Internal(format!("writing the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", summary(&report));
    }
    if report.valid {
        return Ok(());
    }
    // Every signature short of valid waits only on revocation the network failed to bring:
    // the environment failed, no "no" was said.
    let unsettled = |s: &&SignatureReport| s.indication != Indication::TotalPassed;
    let only_try_later = report
        .signatures
        .iter()
        .filter(unsettled)
        .all(|s| s.sub_indication == Some(SubIndication::TRY_LATER));
    match network.as_ref().and_then(NetworkWatch::failure) {
        Some(why) if only_try_later => Err(Failure::Environment(format!(
            "cannot check revocation: {why} ({})",
            verdicts(&report)
        ))),
        _ => Err(Failure::Verdict(format!(
            "the signature is not valid: {}",
            verdicts(&report)
        ))),
    }
}

/// A reader that counts what passes through it.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
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
    if let Some(pdf) = &s.pdf {
        let what = match pdf.kind {
            "document_timestamp" => "document time-stamp",
            _ => "signature",
        };
        let certification = pdf
            .certification
            .map(|p| format!(", certifies the document (DocMDP P{p})"))
            .unwrap_or_default();
        line(
            "PDF:",
            format!(
                "{what} in field {:?}, covering revision {}{}{certification}",
                pdf.field,
                pdf.revision,
                if pdf.covers_whole_document {
                    " (the whole document)"
                } else {
                    ""
                }
            ),
        );
        for later in &pdf.later_revisions {
            line(
                "Later:",
                format!(
                    "revision {}: {} ({}){}",
                    later.revision,
                    later.kind.replace('_', " "),
                    later.changes.join("; "),
                    if later.allowed { "" } else { " - NOT ALLOWED" }
                ),
            );
        }
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

/// What `POST /verify` in `imza serve` validates with: the store's root CAs are the trust
/// anchors, the CAs below them the intermediates (CAs created after the server started are
/// picked up at its next start); the status of this PKI's own certificates comes from the
/// store itself ([`StoreRevocation`]: no HTTP request, not even to this server, and a
/// revocation counts at once); other certificates' from what the signature embeds, else from
/// their OCSP / CRL URLs through `fetch_cache` (shared, capped; keep a clone of it for its
/// [`FetchCache::stats`]).
pub fn serve_verify_options(pki: &Arc<Pki>, fetch_cache: Arc<FetchCache>) -> VerifyOptions {
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
    options.fetch_cache = Some(fetch_cache);
    options.local_revocation = Some(Arc::new(StoreRevocation::new(pki)));
    options
}

/// The CA store as the issuer's own records ([`LocalRevocationSource`]): a certificate whose
/// issuer is one of the store's CAs (the issuer certificate's bytes equal to the CA's) gets its
/// status from `store().status(ca, serial)` — what this server's OCSP responder would answer,
/// without asking it. The CAs are read once, when it is made.
pub struct StoreRevocation {
    pki: Arc<Pki>,
    /// SHA-256 of each CA certificate's DER → the CA's name.
    cas: HashMap<[u8; 32], String>,
}

impl StoreRevocation {
    pub fn new(pki: &Arc<Pki>) -> StoreRevocation {
        let cas = pki
            .store()
            .cas()
            .unwrap_or_default()
            .into_iter()
            .map(|ca| (openssl::sha::sha256(&ca.certificate), ca.name))
            .collect();
        StoreRevocation {
            pki: Arc::clone(pki),
            cas,
        }
    }
}

impl LocalRevocationSource for StoreRevocation {
    fn status(&self, cert: &Certificate, issuer: &Certificate) -> LocalStatus {
        let Some(ca) = self.cas.get(&openssl::sha::sha256(issuer.der())) else {
            return LocalStatus::NotMine;
        };
        match self.pki.store().status(ca, cert.serial()) {
            Ok(CertificateStatus::Issued) => LocalStatus::Good,
            Ok(CertificateStatus::Revoked { at, reason }) => LocalStatus::Revoked {
                at,
                reason: Some(reason),
            },
            Ok(CertificateStatus::Unknown) => LocalStatus::NoRecord,
            Err(e) => LocalStatus::Unavailable {
                reason: e.to_string(),
            },
        }
    }

    fn name(&self) -> String {
        "the CA store of this server".into()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use imza_ca::authority::DEFAULT_BACKDATE;
    use imza_ca::{InitCa, IssueOptions, IssueRequest};
    use imza_core::clock::{FixedClock, SystemClock};
    use imza_core::key::software::SoftwareKey;
    use imza_core::name::parse_dn;
    use imza_core::{KeyAlgorithm, SigningKey};
    use imza_signer::http::VerifyService;
    use imza_signer::{sign, Credentials, Indication, SignOptions, SubIndication};
    use imza_validation::{FetchCacheConfig, Fetcher, NetworkFailure, ValidationError};
    use x509_cert::ext::pkix::CrlReason;

    use super::*;

    /// Counts fetches and answers none.
    struct Counting(Arc<AtomicUsize>);

    impl Fetcher for Counting {
        fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(ValidationError::network(
                url,
                NetworkFailure::unreachable(std::io::Error::other("not in this test")),
            ))
        }

        fn post_ocsp(&self, url: &str, _: &[u8]) -> Result<Vec<u8>, ValidationError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(ValidationError::network(
                url,
                NetworkFailure::unreachable(std::io::Error::other("not in this test")),
            ))
        }
    }

    fn init(pki: &Pki, name: &str, parent: Option<&str>) {
        let subject = format!("CN=Verify Store Test {name},O=imza,C=AZ");
        pki.init_ca(InitCa {
            // Nothing listens there: every fetch would fail (and be counted).
            base_url: Some("http://127.0.0.1:9".into()),
            ..InitCa::new(name, &subject, parent)
        })
        .unwrap();
    }

    #[test]
    fn the_stores_own_certificates_are_checked_against_it_and_a_revocation_counts_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Arc::new(
            Pki::open_or_create(
                dir.path(),
                &Pki::default_store(dir.path()),
                Arc::new(SystemClock),
            )
            .unwrap(),
        );
        init(&pki, "root", None);
        init(&pki, "citizens", Some("root"));
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let request = IssueRequest {
            subject: parse_dn(
                "CN=Quliyeva Aysel,givenName=Aysel,SN=Quliyeva,serialNumber=PNOAZ-1234567,C=AZ",
            )
            .unwrap(),
            public_key: key.public_key_der().unwrap(),
            key_algorithm: KeyAlgorithm::EcP256,
            alt_names: Vec::new(),
            asks_for_ca: false,
        };
        let options = IssueOptions {
            profile: pki.profiles().get("citizen-sign").unwrap(),
            validity_days: None,
            backdate: DEFAULT_BACKDATE,
        };
        let record = pki
            .authority("citizens", None)
            .unwrap()
            .issue(&[request], &options)
            .unwrap()
            .remove(0);
        let credentials = Credentials::new(
            Box::new(key),
            record.der.clone(),
            vec![pki.ca("citizens").unwrap().certificate],
        )
        .unwrap();
        let document = b"a residence certificate\n";
        let signature = sign(
            document,
            &credentials,
            &SignOptions::new(OffsetDateTime::now_utc()),
        )
        .unwrap();

        let fetches = Arc::new(AtomicUsize::new(0));
        let cache = Arc::new(FetchCache::with_fetcher(
            FetchCacheConfig::default(),
            Arc::new(SystemClock),
            Box::new(Counting(Arc::clone(&fetches))),
        ));
        // One fixed "now", a minute ahead: both verifications ask the same question, so a
        // path result kept from the first would answer the second.
        let now = OffsetDateTime::now_utc() + time::Duration::minutes(1);
        let service = VerifyService::new(
            &serve_verify_options(&pki, cache),
            Arc::new(FixedClock(now)),
        );

        let report = service.verify(&signature, Some(document));
        assert!(report.valid, "{report:#?}");
        let revocation = &report.signatures[0].revocation;
        assert_eq!(revocation.len(), 2, "the citizen and the citizens CA");
        for entry in revocation {
            assert_eq!(entry.source, Some("LOCAL"), "{entry:?}");
            assert_eq!(
                entry.note.as_deref(),
                Some("from the CA store of this server")
            );
        }

        pki.revoke("citizens", &record.serial, CrlReason::KeyCompromise, None)
            .unwrap();
        let report = service.verify(&signature, Some(document));
        let s = &report.signatures[0];
        assert_eq!(
            (s.indication, s.sub_indication),
            (
                Indication::Indeterminate,
                Some(SubIndication::REVOKED_NO_POE)
            ),
            "{report:#?}"
        );
        assert!(
            s.errors.iter().any(|e| e.contains("keyCompromise")),
            "{s:#?}"
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 0);
    }
}
