//! `imza sign`: CMS / CAdES signatures (B-B to B-LTA) and PAdES signatures in PDFs
//! (`--pades`) with a key file, PKCS#12, PKCS#11 key, chip card or phone, and `imza sign
//! --augment` to raise an existing signature's (or signed PDF's) level.

use imza_core::alg::DigestAlgorithm;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::watched_fetch::{NetworkWatch, WatchedFetcher};
use clap::{ArgGroup, Args};
use imza_core::key::pkcs11::{PinSource, Pkcs11Key, Pkcs11Location, TokenSelector};
use imza_core::key::software::SoftwareKey;
use imza_core::SigningKey;
use imza_http::HttpClient;
use imza_mobile_sign::protocol::Language;
use imza_mobile_sign::remote_key::{LastFailure, MobileSigningKey};
use imza_signer::pades::{augment_pdf, sign_pdf, DocMdp, PadesOptions, Stamp};
use imza_signer::{
    augment, certificates_of, level_of, sign, AugmentOptions, Credentials, HttpTimestamper, Level,
    SignOptions, SignerError, ValidationDataSources,
};
use imza_smartcard::token::{CardKey, CardKeyRequest};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::mobile_auth::{citizen, client_failure, parse_language, show_code, RelyingParty};
use crate::output::{
    ensure_absent, input, read_certificate_ders, read_limited, write_new, write_new_with,
    CliResult, Failure, MAX_INPUT_BYTES,
};

/// Largest document signed, or signature augmented (an enveloping signature holds its
/// document): both are held in memory.
const MAX_DOCUMENT_BYTES: u64 = 256 * 1024 * 1024;

/// What `imza sign --help` explains after the options (the one-line summary is on the
/// `Sign` command in main.rs).
const MANUAL: &str = "\
    Signing: the document is hashed (SHA-256; SHA-384 with a P-384 key), the signed \
    attributes content-type, message-digest, signing-time and signing-certificate-v2 are \
    signed with the key, and the signature is written as DER CMS SignedData (`.p7s`) \
    carrying the signer's certificate and chain. The key comes from one of: a PEM key file \
    with --key and --cert; a PKCS#12 file with --p12 and --p12-pass-env; a chip card with \
    --card (key and certificate read from the card through PKCS#11: OpenSC's module unless \
    --pkcs11-module or IMZA_PKCS11_MODULE names another; choose the card with --reader, \
    --token or --token-serial when several are inserted, the certificate with --cert-id when \
    the card holds several signing ones; the PIN from --pin-env or asked without echo, again \
    before each signature if the card wants it); a PKCS#11 key chosen by label with \
    --pkcs11-module, --pkcs11-token, --pkcs11-key-label and --cert. It must be the key \
    --cert certifies. Or the citizen's phone with --mobile (mobile signature): the signing \
    certificate registered for --mobile and --national-id is fetched from the signature \
    service at --mss-url (as relying party --rp-name, API key in the environment variable \
    --rp-key-env), the hash of the signed attributes is sent to the phone, the verification \
    code is printed on standard error as `Verification code: NNNN` for the citizen to compare \
    with the phone's, and the phone's signature is checked against the certificate before it \
    is used.\n\
    \n\
    Levels: B (B-B, the default) is the signature alone. T adds a time-stamp on the \
    signature value from the TSA at --tsa. LT adds, after the time-stamp, the certificates \
    and revocation values (CRLs, OCSP responses) that validate the signer's and the TSA's \
    certificates, fetched now from the URLs in the certificates, so that the signature can \
    later be checked offline; it needs the roots those certificates chain to (--trust, or \
    self-signed certificates in --chain). LTA adds an archive time-stamp \
    (archive-time-stamp-v3) over all of it.\n\
    \n\
    PDF documents (--pades): the signature goes into the PDF itself as PAdES (ETSI EN 319 \
    142-1), written to --out as a new PDF; the original bytes are kept unchanged in front \
    and the signature is an incremental update: an invisible signature field whose \
    /ByteRange covers the whole file but the signature itself (SubFilter \
    ETSI.CAdES.detached, the signing time in /M). --certify P1|P2|P3 makes it the \
    document's certification (DocMDP: P1 no changes at all, P2 form filling and further \
    signatures, P3 also annotations); it must be the first signature. At T the CMS carries \
    a signature time-stamp; LT adds a document security store (/DSS: the certificates, \
    OCSP responses and CRLs that validate the signer and the TSA, with a /VRI entry) in a \
    further update; LTA adds a document time-stamp (/DocTimeStamp, ETSI.RFC3161) over all \
    of it. The signature is invisible unless --stamp X,Y,W,H puts a framed box on page \
    --stamp-page showing the signer's name, the time and --stamp-reference (DejaVu Sans, \
    embedded). The PDF is read as a stream and never held in memory whole. Encrypted PDFs \
    are refused.\n\
    \n\
    Augmenting (--augment SIG.p7s --level T|LT|LTA): adds what the level needs to an \
    existing signature without touching what was signed (the signed attributes and the \
    signature value keep their bytes). --level LTA on a B-LTA signature adds one more \
    archive time-stamp. Detached signatures need --content for LTA; when given, it is \
    checked against the signature. A signed PDF given to --augment is raised in a copy \
    written to --out: T adds a document time-stamp when a signature has no signature \
    time-stamp, LT a DSS for every signature and time-stamp, LTA a DSS and a new document \
    time-stamp (repeat it before the last time-stamp's certificate expires).\n\
    \n\
    --out is never overwritten. Exit status 0: written. 1: a certificate to be validated for \
    B-LT does not validate (revoked, no path to --trust, no revocation information); with \
    --mobile also: the citizen refused (USER_REFUSED), the PIN is blocked (PIN_BLOCKED), the \
    phone's signature does not verify (SIGNATURE_HASH_MISMATCH), the certificate is not \
    active. 2: bad usage or input (missing files, wrong key, wrong password, not a \
    signature; with --mobile: an unknown phone or identity, NOT_FOUND / NOT_MOBILE_CLIENT, \
    wrong relying-party credentials). 3: the TSA or a revocation server cannot be reached or \
    refuses, or the key or token fails; with --mobile: the service cannot be reached, the \
    phone is absent or did not answer in time (PHONE_ABSENT, TIMEOUT, DELIVERY_ERROR).\n\
    \n\
    Examples:\n\
    \x20 imza sign --in contract.pdf --out contract.pdf.p7s --key me.key --cert me.pem --chain ca.pem\n\
    \x20 imza sign --card --pin-env CARD_PIN --in contract.pdf --out contract.pdf.p7s --chain ca.pem --level T --tsa http://tsa.example.az/tsa\n\
    \x20 RP_KEY=... imza sign --mobile +994501234567 --national-id 1AB2C3D --mss-url https://mss.gov.az --rp-name mygov.az --rp-key-env RP_KEY --in contract.pdf --out contract.pdf.p7s --chain ca.pem --level T --tsa http://tsa.example.az/tsa\n\
    \x20 imza sign --in contract.pdf --out contract.p7s --p12 me.p12 --p12-pass-env P12_PASS --level T --tsa http://tsa.example.az/tsa\n\
    \x20 imza sign --augment contract.p7s --content contract.pdf --level LTA --tsa http://tsa.example.az/tsa --trust root.pem --out contract-lta.p7s\n\
    \x20 imza sign --pades --in statement.pdf --out statement-signed.pdf --key me.key --cert me.pem --chain ca.pem --level LTA --tsa http://tsa.example.az/tsa --trust root.pem\n\
    \x20 imza sign --pades --certify P1 --in diploma.pdf --out diploma-sealed.pdf --p12 seal.p12 --p12-pass-env P12_PASS --reason \"Diploma\"\n\
    \x20 imza sign --augment statement-signed.pdf --level LTA --tsa http://tsa.example.az/tsa --trust root.pem --out statement-lta.pdf";

#[derive(Args)]
#[command(
    group(ArgGroup::new("key_source").args(["key", "p12", "pkcs11_key_label", "card", "mobile"]).multiple(false)),
    group(ArgGroup::new("card_choice").args(["reader", "token", "token_serial"]).multiple(false)),
    after_long_help = MANUAL
)]
pub struct SignArgs {
    /// The document to sign. Any bytes, any size up to 256 MiB (with --pades: a PDF of any
    /// size, read as a stream).
    #[arg(long = "in", value_name = "DOC", required_unless_present = "augment")]
    input: Option<PathBuf>,
    /// Where to write the signature (DER CMS, `.p7s`; with --pades, or when augmenting a PDF:
    /// the signed PDF). Never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Raise the level of this existing signature (DER CMS) or signed PDF instead of signing.
    #[arg(
        long,
        value_name = "SIG.p7s",
        conflicts_with_all = ["input", "key_source", "cert", "attached"],
        requires = "level"
    )]
    augment: Option<PathBuf>,
    /// For --augment of a detached signature: the signed document. Checked against the
    /// signature's message-digest; needed for --level LTA.
    #[arg(long, value_name = "DOC", requires = "augment")]
    content: Option<PathBuf>,
    /// The signer's private key, PEM (PKCS#8 or traditional RSA/EC), unencrypted.
    #[arg(long, value_name = "KEY.pem", requires = "cert")]
    key: Option<PathBuf>,
    /// The signer's certificate (PEM or DER), for --key and --pkcs11-*.
    #[arg(long, value_name = "CERT.pem")]
    cert: Option<PathBuf>,
    /// Certificates above the signer's (PEM, one or more; or one DER): the issuing CA first.
    /// Embedded in the signature; self-signed ones among them are also the trust anchors for
    /// --level LT/LTA when --trust is not given.
    #[arg(long, value_name = "CHAIN.pem")]
    chain: Option<PathBuf>,
    /// A PKCS#12 file holding the key, the certificate and the chain.
    #[arg(long, value_name = "FILE.p12", requires = "p12_pass_env")]
    p12: Option<PathBuf>,
    /// Environment variable holding the PKCS#12 password.
    #[arg(long, value_name = "VAR", requires = "p12")]
    p12_pass_env: Option<String>,
    /// Sign with a chip card (or another PKCS#11 token): the certificate and key are read from
    /// the card; the module is --pkcs11-module, else $IMZA_PKCS11_MODULE, else OpenSC's.
    #[arg(long)]
    card: bool,
    /// With --card: the reader holding the card (its name or a unique part of it). Default:
    /// the only token the module shows.
    #[arg(long, value_name = "READER", requires = "card")]
    reader: Option<String>,
    /// With --card: the token's label.
    #[arg(long, value_name = "LABEL", requires = "card")]
    token: Option<String>,
    /// With --card: the token's serial number.
    #[arg(long, value_name = "SERIAL", requires = "card")]
    token_serial: Option<String>,
    /// With --card: the CKA_ID (hex, as `imza card list` shows it) of the certificate to sign
    /// with. Default: the card's one signing certificate, nonRepudiation first.
    #[arg(long, value_name = "HEX", requires = "card")]
    cert_id: Option<String>,
    /// With --card: sign with RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys only).
    #[arg(long, requires = "card")]
    rsa_pss: bool,
    /// Environment variable holding the card's or token's user PIN. Without it the PIN is
    /// asked for without echo (or on the reader's PIN pad).
    #[arg(long, value_name = "VAR", alias = "pkcs11-pin-env")]
    pin_env: Option<String>,
    /// PKCS#11 module holding the key (e.g. /usr/lib/softhsm/libsofthsm2.so): with --card, or
    /// with --pkcs11-token, --pkcs11-key-label and --cert.
    #[arg(long, value_name = "MODULE.so")]
    pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token (card or HSM), for a key chosen by label.
    #[arg(long, value_name = "LABEL", requires_all = ["pkcs11_module", "pkcs11_key_label"])]
    pkcs11_token: Option<String>,
    /// Label of the private key on the token.
    #[arg(long, value_name = "LABEL", requires_all = ["pkcs11_module", "pkcs11_token", "cert"])]
    pkcs11_key_label: Option<String>,
    /// Sign with the citizen's phone (mobile signature): the phone number, E.164
    /// (`+994501234567`; spaces and dashes are dropped). Needs --national-id, --mss-url,
    /// --rp-name and --rp-key-env.
    #[arg(
        long,
        value_name = "PHONE",
        requires_all = ["national_id", "mss_url", "rp_name", "rp_key_env"]
    )]
    mobile: Option<String>,
    /// With --mobile: the citizen's national identity number (FIN), e.g. `1AB2C3D`.
    #[arg(long, value_name = "ID", requires = "mobile")]
    national_id: Option<String>,
    /// With --mobile: the signature service's base URL (`https://mss.gov.az`).
    #[arg(long, value_name = "URL", requires = "mobile")]
    mss_url: Option<String>,
    /// With --mobile: the relying party's registered name (`imza mobile rp add`).
    #[arg(long, value_name = "NAME", requires = "mobile")]
    rp_name: Option<String>,
    /// With --mobile: environment variable holding the relying party's API key.
    #[arg(long, value_name = "VAR", requires = "mobile")]
    rp_key_env: Option<String>,
    /// With --mobile: text shown on the phone, at most 200 characters (e.g. the document's
    /// title).
    #[arg(long, value_name = "TEXT", requires = "mobile")]
    display_text: Option<String>,
    /// With --mobile: language of the phone's texts: AZE (default), ENG, RUS or TUR.
    #[arg(long, value_name = "LANG", requires = "mobile", value_parser = parse_language)]
    language: Option<Language>,
    /// With --mobile: give up waiting for the phone after this many seconds (the service ends
    /// a session after 5 minutes by default).
    #[arg(
        long,
        value_name = "SECONDS",
        requires = "mobile",
        default_value_t = 330
    )]
    mobile_wait: u64,
    /// Put the document inside the signature (enveloping) instead of beside it (detached).
    #[arg(long)]
    attached: bool,
    /// Sign a PDF as PAdES: the signature goes into the PDF (an incremental update) and
    /// --out is the signed PDF.
    #[arg(long, conflicts_with_all = ["attached", "augment"])]
    pades: bool,
    /// With --pades: make the signature the document's certification with these DocMDP
    /// permissions: P1 no changes, P2 form filling and signatures, P3 also annotations.
    #[arg(long, value_name = "P1|P2|P3", requires = "pades", value_parser = parse_doc_mdp)]
    certify: Option<DocMdp>,
    /// With --pades: the signature field's name (default Signature1, Signature2, …).
    #[arg(long, value_name = "NAME", requires = "pades")]
    field: Option<String>,
    /// With --pades: why the document is signed (/Reason), shown by PDF readers.
    #[arg(long, value_name = "TEXT", requires = "pades")]
    reason: Option<String>,
    /// With --pades: where it is signed (/Location).
    #[arg(long, value_name = "TEXT", requires = "pades")]
    location: Option<String>,
    /// With --pades: a visible stamp instead of an invisible signature, in points from the
    /// page's lower left corner: X,Y,WIDTH,HEIGHT (e.g. 400,60,170,60). It shows the signer's
    /// name, the signing time (UTC) and --stamp-reference.
    #[arg(long, value_name = "X,Y,W,H", requires = "pades", value_parser = parse_rect)]
    stamp: Option<[f64; 4]>,
    /// With --stamp: the page it is on (1 for the first).
    #[arg(long, value_name = "N", requires = "stamp", default_value_t = 1)]
    stamp_page: usize,
    /// With --stamp: a reference shown on it (a document number, a case number).
    #[arg(long, value_name = "TEXT", requires = "stamp")]
    stamp_reference: Option<String>,
    /// The CAdES level to produce: B, T, LT or LTA (also written B-B, B-T, ...).
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    level: Option<Level>,
    /// The time-stamping authority's URL (RFC 3161 over HTTP), for levels T, LT and LTA.
    #[arg(long, value_name = "URL")]
    tsa: Option<String>,
    /// Trust anchors (PEM or DER; repeatable) that the signer's and the TSA's certificates are
    /// validated to for LT and LTA.
    #[arg(long, value_name = "ROOT.pem")]
    trust: Vec<PathBuf>,
    /// More certificates (PEM or DER; repeatable) paths may go through for LT and LTA, such as
    /// the TSA's issuing CA when its token does not carry it. Not trusted.
    #[arg(long, value_name = "CERTS.pem")]
    untrusted: Vec<PathBuf>,
    /// Give up on the TSA and revocation servers after this many seconds per exchange.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
    /// The message digest. Must be the one the key signs with (SHA-384 for P-384 keys, else
    /// SHA-256).
    #[arg(long, value_enum)]
    digest: Option<DigestAlgorithm>,
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
}

fn parse_rect(s: &str) -> Result<[f64; 4], String> {
    let numbers: Vec<f64> = s
        .split(',')
        .map(|n| n.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{s:?}: expected X,Y,WIDTH,HEIGHT in points"))?;
    match numbers[..] {
        [x, y, w, h] if [x, y, w, h].iter().all(|n| n.is_finite() && *n >= 0.0) => Ok([x, y, w, h]),
        _ => Err(format!(
            "{s:?}: expected four non-negative numbers X,Y,WIDTH,HEIGHT"
        )),
    }
}

fn parse_doc_mdp(s: &str) -> Result<DocMdp, String> {
    match s.to_ascii_uppercase().trim_start_matches('P') {
        "1" => Ok(DocMdp::NoChanges),
        "2" => Ok(DocMdp::FormFilling),
        "3" => Ok(DocMdp::Annotations),
        _ => Err(format!("{s:?}: expected P1, P2 or P3")),
    }
}

pub fn run(args: SignArgs) -> CliResult {
    ensure_absent(&args.out)?;
    let level = args.level.unwrap_or(Level::B);
    if level >= Level::T && args.tsa.is_none() {
        return Err(input(format!(
            "--level {} needs a time-stamping authority: give its URL with --tsa",
            level_name(level)
        )));
    }
    if args.augment.is_some() && level == Level::B {
        return Err(input(
            "--augment raises a signature to T, LT or LTA: give --level T, LT or LTA",
        ));
    }
    let timestamper = args.tsa.as_ref().map(|url| {
        HttpTimestamper::new(url.clone()).with_timeout(Duration::from_secs(args.timeout))
    });
    let chain = match &args.chain {
        Some(path) => read_certificate_ders(path, "--chain")?,
        None => Vec::new(),
    };
    match &args.augment {
        Some(signature) => run_augment(&args, signature, level, timestamper.as_ref(), &chain),
        None => run_sign(&args, level, timestamper.as_ref(), chain),
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::B => "B",
        Level::T => "T",
        Level::LT => "LT",
        Level::LTA => "LTA",
    }
}

fn run_sign(
    args: &SignArgs,
    level: Level,
    timestamper: Option<&HttpTimestamper>,
    chain: Vec<Vec<u8>>,
) -> CliResult {
    let document_path = args
        .input
        .as_deref()
        .ok_or_else(|| input("give the document to sign with --in"))?;
    if args.pades {
        return run_sign_pdf(args, document_path, level, timestamper, chain);
    }
    let document = read_limited(document_path, MAX_DOCUMENT_BYTES, "--in")?;
    let (credentials, mobile_failure) = match &args.mobile {
        Some(phone) => {
            let (credentials, failure) = mobile_credentials(args, phone, chain)?;
            (credentials, Some(failure))
        }
        None => (credentials(args, chain)?, None),
    };
    let (sources, network) = validation_sources(args, level, credentials.chain(), &[])?;
    let options = SignOptions {
        attached: args.attached,
        level,
        digest: args.digest,
        signing_time: OffsetDateTime::now_utc(),
        augment: AugmentOptions {
            timestamper: timestamper.map(|t| t as &dyn imza_signer::Timestamper),
            validation: sources.as_ref(),
            archive_digest: None,
        },
    };
    let signature = sign(&document, &credentials, &options).map_err(|e| {
        // A phone's answer says more than the CoreError the key trait carries.
        match mobile_failure.as_ref().and_then(LastFailure::take) {
            Some(client_error) => client_failure(client_error),
            None => gathering_failure(e, &network),
        }
    })?;
    write_new(&args.out, &signature, false)?;
    println!(
        "signed {} ({} bytes) as {level} ({}) by {}; written to {}",
        document_path.display(),
        document.len(),
        if args.attached {
            "enveloping"
        } else {
            "detached"
        },
        credentials.subject(),
        args.out.display()
    );
    Ok(())
}

/// `--pades`: the PDF at `document_path` signed into a new PDF at --out.
fn run_sign_pdf(
    args: &SignArgs,
    document_path: &Path,
    level: Level,
    timestamper: Option<&HttpTimestamper>,
    chain: Vec<Vec<u8>>,
) -> CliResult {
    let document = open_pdf(document_path, "--in")?;
    let (credentials, mobile_failure) = match &args.mobile {
        Some(phone) => {
            let (credentials, failure) = mobile_credentials(args, phone, chain)?;
            (credentials, Some(failure))
        }
        None => (credentials(args, chain)?, None),
    };
    if args.digest.is_some() {
        return Err(input(
            "--digest is for CMS signatures; a PAdES signature hashes with the key's digest",
        ));
    }
    let (sources, network) = validation_sources(args, level, credentials.chain(), &[])?;
    let mut options = PadesOptions::new(OffsetDateTime::now_utc());
    options.level = level;
    options.certification = args.certify;
    options.field_name = args.field.clone();
    options.reason = args.reason.clone();
    options.location = args.location.clone();
    if let Some(rect) = args.stamp {
        if args.stamp_page == 0 {
            return Err(input("--stamp-page counts from 1"));
        }
        let mut lines = vec![
            format!("İmzalayan / Signed by: {}", credentials.name()),
            format!(
                "Vaxt / Time: {} UTC",
                imza_core::clock::rfc3339(options.signing_time)
                    .replace('T', " ")
                    .trim_end_matches('Z')
            ),
        ];
        if let Some(reference) = &args.stamp_reference {
            lines.push(format!("Nömrə / Reference: {reference}"));
        }
        options.stamp = Some(Stamp {
            page: args.stamp_page,
            rect,
            lines,
        });
    }
    options.augment = AugmentOptions {
        timestamper: timestamper.map(|t| t as &dyn imza_signer::Timestamper),
        validation: sources.as_ref(),
        archive_digest: None,
    };
    write_new_with(&args.out, false, |out| {
        sign_pdf(&document, out, &credentials, &options).map_err(|e| {
            match mobile_failure.as_ref().and_then(LastFailure::take) {
                Some(client_error) => client_failure(client_error),
                None => gathering_failure(e, &network),
            }
        })
    })?;
    println!(
        "signed {} as PAdES {level}{} by {}; written to {}",
        document_path.display(),
        match args.certify {
            Some(p) => format!(" (certification, DocMDP P{})", p as u8),
            None => String::new(),
        },
        credentials.subject(),
        args.out.display()
    );
    Ok(())
}

/// Opens `path` when it is a PDF (its `%PDF-` header), for `what`.
fn open_pdf(path: &Path, what: &str) -> Result<std::fs::File, Failure> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| input(format!("{what} {}: cannot read: {e}", path.display())))?;
    if !is_pdf_file(&mut file)? {
        return Err(input(format!(
            "{what} {} is not a PDF (no %PDF- header)",
            path.display()
        )));
    }
    Ok(file)
}

/// Whether `file` starts like a PDF; leaves it at its start.
pub fn is_pdf_file(file: &mut std::fs::File) -> Result<bool, Failure> {
    use std::io::{Read, Seek};
    let mut head = Vec::new();
    (&mut *file)
        .take(1024)
        .read_to_end(&mut head)
        .and_then(|_| file.rewind())
        .map_err(|e| input(format!("cannot read: {e}")))?;
    Ok(imza_pdf::is_pdf(&head))
}

fn run_augment(
    args: &SignArgs,
    signature_path: &Path,
    level: Level,
    timestamper: Option<&HttpTimestamper>,
    chain: &[Vec<u8>],
) -> CliResult {
    let mut file = std::fs::File::open(signature_path).map_err(|e| {
        input(format!(
            "--augment {}: cannot read: {e}",
            signature_path.display()
        ))
    })?;
    if is_pdf_file(&mut file)? {
        return run_augment_pdf(args, signature_path, file, level, timestamper, chain);
    }
    let signature = read_limited(signature_path, MAX_DOCUMENT_BYTES, "--augment")?;
    let before = level_of(&signature).map_err(|e| {
        input(format!(
            "{} is not a CMS signature imza can augment: {e}",
            signature_path.display()
        ))
    })?;
    let content = args
        .content
        .as_deref()
        .map(|path| read_limited(path, MAX_DOCUMENT_BYTES, "--content"))
        .transpose()?;
    // The signature's own self-signed certificates may serve as anchors when --trust is absent.
    let embedded = embedded_self_signed(&signature);
    let (sources, network) = validation_sources(args, level, chain, &embedded)?;
    let options = AugmentOptions {
        timestamper: timestamper.map(|t| t as &dyn imza_signer::Timestamper),
        validation: sources.as_ref(),
        archive_digest: None,
    };
    let augmented = augment(&signature, content.as_deref(), level, &options)
        .map_err(|e| gathering_failure(e, &network))?;
    write_new(&args.out, &augmented, false)?;
    println!(
        "raised {} from {before} to {level}; written to {}",
        signature_path.display(),
        args.out.display()
    );
    Ok(())
}

/// `--augment FILE.pdf`: the PDF copied to --out and raised there.
fn run_augment_pdf(
    args: &SignArgs,
    path: &Path,
    mut file: std::fs::File,
    level: Level,
    timestamper: Option<&HttpTimestamper>,
    chain: &[Vec<u8>],
) -> CliResult {
    if args.content.is_some() {
        return Err(input(
            "--content is for detached CMS signatures; a PDF holds what it signs",
        ));
    }
    let (sources, network) = validation_sources(args, level, chain, &[])?;
    let options = AugmentOptions {
        timestamper: timestamper.map(|t| t as &dyn imza_signer::Timestamper),
        validation: sources.as_ref(),
        archive_digest: None,
    };
    write_new_with(&args.out, false, |out| {
        std::io::copy(&mut file, out)
            .map_err(|e| input(format!("--augment {}: cannot read: {e}", path.display())))?;
        augment_pdf(out, level, &options).map_err(|e| gathering_failure(e, &network))
    })?;
    println!(
        "raised the signatures of {} to PAdES {level}; written to {}",
        path.display(),
        args.out.display()
    );
    Ok(())
}

/// The key, certificate and chain from --key/--cert, --p12 or --pkcs11-*.
fn credentials(args: &SignArgs, chain: Vec<Vec<u8>>) -> Result<Credentials, Failure> {
    if let Some(p12) = &args.p12 {
        let var = args.p12_pass_env.as_deref().unwrap_or_default();
        let password = Zeroizing::new(std::env::var(var).map_err(|_| {
            input(format!(
                "--p12-pass-env {var}: the environment variable is not set (or not UTF-8)"
            ))
        })?);
        let der = read_limited(p12, MAX_INPUT_BYTES, "--p12")?;
        let mut credentials = Credentials::from_pkcs12(&der, &password, &p12.display().to_string())
            .map_err(failure)?;
        // --chain adds to the chain the file carries.
        credentials.add_chain(chain).map_err(failure)?;
        return Ok(credentials);
    }
    if args.card {
        return card_credentials(args, chain);
    }
    let cert_path = args.cert.as_deref().ok_or_else(|| {
        input("give the signer's key: --key with --cert, --p12 with --p12-pass-env, or --pkcs11-module, --pkcs11-token, --pkcs11-key-label with --cert")
    })?;
    let certificate = read_certificate_ders(cert_path, "--cert")?;
    let [certificate] = <[Vec<u8>; 1]>::try_from(certificate).map_err(|found| {
        input(format!(
            "--cert {} holds {} certificates; give the signer's alone (the others go in --chain)",
            cert_path.display(),
            found.len()
        ))
    })?;
    let key: Box<dyn SigningKey> = match (&args.key, &args.pkcs11_module) {
        (Some(path), _) => Box::new(SoftwareKey::load_pem(path)?),
        (None, Some(module)) if args.pkcs11_key_label.is_some() => {
            let location = Pkcs11Location {
                module: module.clone(),
                token_label: args.pkcs11_token.clone().unwrap_or_default(),
                key_label: args.pkcs11_key_label.clone().unwrap_or_default(),
            };
            Box::new(Pkcs11Key::open(&location, &pin_source(args))?)
        }
        (None, _) => {
            return Err(input(
                "--cert needs the key that goes with it: --key KEY.pem or --pkcs11-module ...",
            ))
        }
    };
    Credentials::new(key, certificate, chain).map_err(failure)
}

fn pin_source(args: &SignArgs) -> PinSource {
    args.pin_env
        .clone()
        .map(PinSource::Env)
        .unwrap_or(PinSource::Prompt)
}

/// The key and certificate from the card (--card), the chain from --chain.
fn card_credentials(args: &SignArgs, chain: Vec<Vec<u8>>) -> Result<Credentials, Failure> {
    if args.cert.is_some() || args.key.is_some() {
        return Err(input(
            "--card reads the certificate from the card: leave out --cert and --key",
        ));
    }
    let module = crate::card::module_path(args.pkcs11_module.as_deref())?;
    let token = match (&args.reader, &args.token, &args.token_serial) {
        (Some(reader), _, _) => TokenSelector::Reader(reader.clone()),
        (_, Some(label), _) => TokenSelector::Label(label.clone()),
        (_, _, Some(serial)) => TokenSelector::Serial(serial.clone()),
        _ => TokenSelector::Only,
    };
    let cert_id = args
        .cert_id
        .as_deref()
        .map(|id| {
            hex::decode(id.trim()).map_err(|e| input(format!("--cert-id {id:?} is not hex: {e}")))
        })
        .transpose()?;
    let request = CardKeyRequest {
        module: &module,
        token,
        cert_id,
        rsa_pss: args.rsa_pss,
    };
    let key = CardKey::open(&request, &pin_source(args))?;
    let certificate = key.certificate().to_vec();
    Credentials::new(Box::new(key), certificate, chain).map_err(failure)
}

/// The phone's key (--mobile): the certificate registered for the phone number and identity,
/// fetched from the service, and a key that has the phone sign; the chain from --chain.
fn mobile_credentials(
    args: &SignArgs,
    phone: &str,
    chain: Vec<Vec<u8>>,
) -> Result<(Credentials, LastFailure), Failure> {
    if args.cert.is_some() || args.key.is_some() {
        return Err(input(
            "--mobile fetches the certificate from the signature service: leave out --cert and --key",
        ));
    }
    let national_id = args.national_id.as_deref().unwrap_or_default();
    let phone = citizen(phone, national_id)?;
    let client = RelyingParty {
        mss_url: args.mss_url.as_deref().unwrap_or_default(),
        rp_name: args.rp_name.as_deref().unwrap_or_default(),
        rp_key_env: args.rp_key_env.as_deref().unwrap_or_default(),
    }
    .client()?;
    let certificate = client
        .certificate(&phone, national_id)
        .map_err(client_failure)?;
    let key = MobileSigningKey::new(
        client,
        &phone,
        national_id,
        certificate.clone(),
        args.display_text.clone(),
        args.language.unwrap_or(Language::Aze),
        Box::new(show_code),
    )
    .map_err(client_failure)?
    .with_give_up_after(Duration::from_secs(args.mobile_wait));
    let failure = key.last_failure();
    let credentials = Credentials::new(Box::new(key), certificate, chain).map_err(self::failure)?;
    eprintln!(
        "Asking the phone {phone} to sign for {}",
        credentials.subject()
    );
    Ok((credentials, failure))
}

/// What B-LT data is gathered with, when `level` needs it: --trust, or the self-signed
/// certificates of --chain and of the signature.
fn validation_sources(
    args: &SignArgs,
    level: Level,
    chain: &[Vec<u8>],
    embedded: &[Vec<u8>],
) -> Result<(Option<ValidationDataSources>, NetworkWatch), Failure> {
    if level < Level::LT {
        return Ok((None, NetworkWatch::default()));
    }
    let mut anchors = Vec::new();
    for path in &args.trust {
        anchors.extend(read_certificate_ders(path, "--trust")?);
    }
    if anchors.is_empty() {
        anchors.extend(
            chain
                .iter()
                .chain(embedded)
                .filter(|der| is_self_signed(der))
                .cloned(),
        );
    }
    if anchors.is_empty() {
        return Err(input(format!(
            "--level {} validates the signer's and the TSA's certificates: give their roots with \
             --trust",
            level_name(level)
        )));
    }
    let mut certificates = chain.to_vec();
    for path in &args.untrusted {
        certificates.extend(read_certificate_ders(path, "--untrusted")?);
    }
    let timeout = Duration::from_secs(args.timeout);
    let (fetcher, network) = WatchedFetcher::new(HttpClient {
        timeout,
        ..HttpClient::default()
    });
    let sources = ValidationDataSources {
        trust_anchors: anchors,
        certificates,
        fetcher: Arc::new(fetcher),
        time: OffsetDateTime::now_utc(),
    };
    Ok((Some(sources), network))
}

fn is_self_signed(der: &[u8]) -> bool {
    openssl::x509::X509::from_der(der)
        .ok()
        .and_then(|cert| {
            let key = cert.public_key().ok()?;
            Some(
                cert.issued(&cert) == openssl::x509::X509VerifyResult::OK
                    && cert.verify(&key).unwrap_or(false),
            )
        })
        .unwrap_or(false)
}

/// The self-signed certificates a CMS signature carries (none when it cannot be read).
fn embedded_self_signed(signature: &[u8]) -> Vec<Vec<u8>> {
    certificates_of(signature)
        .unwrap_or_default()
        .into_iter()
        .filter(|der| is_self_signed(der))
        .collect()
}

/// The exit code of a signing failure after B-LT data was gathered through `network`: revocation
/// data missing because a fetch failed on the network is the environment's (3), not a verdict
/// on the certificates (1).
fn gathering_failure(e: SignerError, network: &NetworkWatch) -> Failure {
    match (&e, network.failure()) {
        (SignerError::Revocation(_), Some(why)) => {
            Failure::Environment(format!("{e} (the network failed: {why})"))
        }
        _ => failure(e),
    }
}

/// The exit code a signing failure gets (see the command's help).
fn failure(e: SignerError) -> Failure {
    match e {
        SignerError::Malformed { .. } | SignerError::Usage(_) | SignerError::Pdf(_) => {
            Failure::Input(e.to_string())
        }
        SignerError::Key(core) => Failure::from(core),
        SignerError::Revocation(_) => Failure::Verdict(e.to_string()),
        SignerError::Io(ref io) => crate::output::io_class(io, e.to_string()),
        SignerError::Network { .. } | SignerError::Timestamp { .. } => {
            Failure::Environment(e.to_string())
        }
        _ => Failure::Internal(e.to_string()),
    }
}
