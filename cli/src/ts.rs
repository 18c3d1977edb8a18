//! `imza ts`: the RFC 3161 client. `request` asks a TSA over HTTP (RFC 3161 §3.4) for a token
//! on a file's hash and keeps the reply only when it is granted and answers this request;
//! `verify` checks a token's signature, its TSA certificate path and the data it stamps.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use der::asn1::ObjectIdentifier;
use serde_json::{json, Value};

use imza_core::alg::DigestAlgorithm;
use imza_core::clock::rfc3339;
use imza_http::client::MAX_ANSWER_BYTES;
use imza_http::HttpClient;
use imza_tsa::http::{TIMESTAMP_QUERY, TIMESTAMP_REPLY};
use imza_tsa::{
    build_request, check_answers_request, parse_response, random_nonce, verify_token, Expectations,
    OpenSslPathValidator, ParsedToken, TimeStampRequest, TsaError, VerificationTime, VerifiedToken,
};

use crate::output::{
    ensure_absent, input, print_json, read_certificate_ders, read_limited, write_new, CliResult,
    Failure, MAX_INPUT_BYTES,
};

#[derive(Subcommand)]
pub enum TsCommand {
    /// Ask a time-stamping authority for a token on a file, over HTTP (RFC 3161 §3.4).
    ///
    /// Only the file's hash is sent. The request carries a random nonce and asks for the
    /// TSA's certificate unless told otherwise. The reply is saved (DER TimeStampResp, as
    /// `openssl ts -reply` writes it) only when it is granted and answers this request: the
    /// same hash, the same nonce, and the policy asked for. Check the token's signature and
    /// TSA certificate with `imza ts verify`.
    ///
    /// Exit status 0: granted and written. 1: refused (the TSA's status and reason are
    /// printed), or the reply does not answer this request; nothing is written. 2: bad input.
    /// 3: the TSA cannot be reached, or answers something other than a time-stamp response.
    Request(RequestArgs),
    /// Verify a time-stamp token: its signature, the TSA certificate (ESSCertIDv2, the
    /// timeStamping purpose, a path to a trusted root) and the data it stamps.
    ///
    /// The TSA certificate's revocation status is not checked (no CRL or OCSP is fetched).
    ///
    /// Exit status 0: valid. 1: not valid, with the reason. 2: the input cannot be read
    /// (no such file, not a time-stamp response or token, bad certificates).
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct RequestArgs {
    /// The file to time-stamp. It is hashed here; only the hash leaves this machine.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Hash algorithm for the message imprint.
    #[arg(long, value_enum, default_value = "sha256")]
    digest: DigestAlgorithm,
    /// Ask for this TSA policy (dotted OID, e.g. 0.4.0.2023.1.1). Without it the TSA uses its
    /// default; with it, a token under another policy is refused.
    #[arg(long, value_name = "OID")]
    policy: Option<String>,
    /// Send no nonce. The nonce (64 random bits) is what proves the reply was made for this
    /// request and not replayed; leave it on unless the TSA cannot handle it.
    #[arg(long)]
    no_nonce: bool,
    /// Do not ask the TSA to put its certificate in the token (certReq false). Verifying the
    /// token then needs the TSA certificate from elsewhere (`imza ts verify --untrusted`).
    #[arg(long)]
    no_cert: bool,
    /// The TSA's URL, e.g. http://tsa.example.az/tsa (https:// is checked against the
    /// system's trusted roots). Redirects are not followed.
    #[arg(long, value_name = "URL")]
    url: String,
    /// Where to write the TSA's reply (DER TimeStampResp, `.tsr`). Never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Also write the request sent (DER TimeStampReq, `.tsq`), as `openssl ts -query` would.
    /// Never overwritten.
    #[arg(long, value_name = "FILE")]
    query_out: Option<PathBuf>,
    /// Give up on the TSA after this many seconds (connecting, sending and reading).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

/// When the TSA certificate's path must be valid.
#[derive(Clone, Copy, ValueEnum)]
pub enum CheckTimeArg {
    /// At the token's genTime: "was the TSA certificate good when it stamped?" — the question
    /// for an archived token whose TSA certificate has since expired.
    GenTime,
    /// Now: for a token accepted today, refusing one whose TSA certificate has expired since.
    Now,
}

#[derive(Args)]
#[command(group(ArgGroup::new("stamped").required(true).args(["data", "digest_hex"])))]
pub struct VerifyArgs {
    /// The time-stamp: a DER TimeStampResp (`.tsr`, as `imza ts request` and `openssl ts
    /// -reply` write) or a bare DER TimeStampToken.
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// The file that was stamped; hashed with the token's algorithm and compared.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// The hash of what was stamped, in hex, instead of --data.
    #[arg(long, value_name = "HEX")]
    digest_hex: Option<String>,
    /// The trusted root (or roots), PEM or DER: the TSA certificate must chain to one.
    #[arg(long, value_name = "FILE")]
    ca_file: PathBuf,
    /// More certificates (PEM or DER) to build the path from: intermediates, and the TSA
    /// certificate itself when the token does not carry it. Not trusted.
    #[arg(long, value_name = "FILE")]
    untrusted: Option<PathBuf>,
    /// When the TSA certificate path must be valid.
    #[arg(long, value_enum, default_value = "gen-time")]
    check_time: CheckTimeArg,
    /// Print the result as JSON (also when the token is not valid).
    #[arg(long)]
    json: bool,
}

pub fn run(command: TsCommand) -> CliResult {
    match command {
        TsCommand::Request(args) => request(args),
        TsCommand::Verify(args) => verify(args),
    }
}

// --- imza ts request ----------------------------------------------------------------------

fn request(args: RequestArgs) -> CliResult {
    ensure_absent(&args.out)?;
    if let Some(query_out) = &args.query_out {
        ensure_absent(query_out)?;
        if *query_out == args.out {
            return Err(input("--out and --query-out name the same file"));
        }
    }
    let policy = args
        .policy
        .as_deref()
        .map(|p| {
            ObjectIdentifier::new(p.trim())
                .map_err(|e| input(format!("--policy {p:?} is not an OID: {e}")))
        })
        .transpose()?;
    let algorithm = args.digest;
    let digest = hash_file(&args.data, algorithm)?;
    let nonce = if args.no_nonce {
        None
    } else {
        Some(random_nonce().map_err(internal)?)
    };
    let query = build_request(&digest, algorithm, nonce.as_deref(), !args.no_cert, policy)
        .map_err(internal)?;
    if let Some(query_out) = &args.query_out {
        write_new(query_out, &query, false)?;
    }

    let reply = post_query(&args.url, &query, Duration::from_secs(args.timeout))?;
    let token = parse_response(&reply)
        .map_err(|e| Failure::Environment(format!("{}: {e}", args.url)))?
        .into_token()
        .map_err(|e| Failure::Verdict(e.to_string()))?;
    let sent = TimeStampRequest::from_der(&query).map_err(internal)?;
    check_answers_request(&token, &sent).map_err(|e| {
        Failure::Verdict(format!(
            "the reply from {} does not answer this request: {e}",
            args.url
        ))
    })?;
    write_new(&args.out, &reply, false)?;
    println!(
        "granted: genTime {}, serial {}, TSA {}; written to {}",
        rfc3339(token.gen_time()),
        token.serial_hex(),
        token
            .tsa_name()
            .unwrap_or_else(|| "not named in the token".into()),
        args.out.display()
    );
    Ok(())
}

/// POSTs `query` to `url` and returns the body of a 200 answer, read up to
/// [`MAX_ANSWER_BYTES`]. Anything else is an environment failure (exit 3).
fn post_query(url: &str, query: &[u8], timeout: Duration) -> Result<Vec<u8>, Failure> {
    let http = HttpClient {
        timeout,
        max_bytes: MAX_ANSWER_BYTES as u64,
    };
    http.post(url, TIMESTAMP_QUERY, TIMESTAMP_REPLY, query)
        .map_err(|e| Failure::Environment(format!("time-stamping authority: {e}")))
}

// --- imza ts verify -----------------------------------------------------------------------

fn verify(args: VerifyArgs) -> CliResult {
    let token = read_token(&args.input)?;
    let anchors = read_certificate_ders(&args.ca_file, "--ca-file")?;
    let untrusted = match &args.untrusted {
        Some(path) => read_certificate_ders(path, "--untrusted")?,
        None => Vec::new(),
    };
    let validator = OpenSslPathValidator::new(&anchors).map_err(|e| input(e.to_string()))?;
    // The file is hashed here, as it is read, with the token's own algorithm.
    let not_valid = |reason: String| -> CliResult {
        if args.json {
            print_json(&json!({ "valid": false, "reason": reason }))?;
        }
        Err(Failure::Verdict(format!("not valid: {reason}")))
    };
    let algorithm = match token.imprint_algorithm() {
        Ok(algorithm) => algorithm,
        Err(e) => return not_valid(e.to_string()),
    };
    let hashed_message = match (&args.data, &args.digest_hex) {
        (Some(path), _) => hash_file(path, algorithm)?,
        (None, Some(hex)) => {
            hex_decode(hex).ok_or_else(|| input(format!("--digest-hex {hex:?} is not hex")))?
        }
        (None, None) => return Err(input("give --data or --digest-hex")),
    };
    let at = match args.check_time {
        CheckTimeArg::GenTime => VerificationTime::GenTime,
        CheckTimeArg::Now => VerificationTime::At(time::OffsetDateTime::now_utc()),
    };
    let expect = Expectations {
        hashed_message: Some(&hashed_message),
        ..Expectations::default()
    };
    let verified = match verify_token(&token, &untrusted, &validator, at, &expect) {
        Ok(verified) => verified,
        Err(e) => return not_valid(e.to_string()),
    };
    if args.json {
        print_json(&token_json(&token, &verified, args.check_time))
    } else {
        print_summary(&token, &verified, args.check_time);
        Ok(())
    }
}

/// Reads a DER TimeStampResp (which must be granted) or a bare TimeStampToken.
fn read_token(path: &Path) -> Result<ParsedToken, Failure> {
    let der = read_limited(path, MAX_INPUT_BYTES, "--in")?;
    match parse_response(&der) {
        Ok(response) => response
            .into_token()
            .map_err(|e| Failure::Verdict(format!("{} holds no token: {e}", path.display()))),
        Err(as_response) => ParsedToken::from_der(&der).map_err(|as_token| {
            input(format!(
                "{} is not a DER time-stamp response ({as_response}) nor a token ({as_token})",
                path.display()
            ))
        }),
    }
}

fn check_time_name(at: CheckTimeArg) -> &'static str {
    match at {
        CheckTimeArg::GenTime => "genTime",
        CheckTimeArg::Now => "now",
    }
}

fn accuracy_text(token: &ParsedToken) -> Option<String> {
    let accuracy = token.tst_info().accuracy.as_ref()?;
    let micros = accuracy.seconds.unwrap_or(0) as f64 * 1e6
        + f64::from(accuracy.millis.unwrap_or(0)) * 1e3
        + f64::from(accuracy.micros.unwrap_or(0));
    Some(format!("{} s", micros / 1e6))
}

fn print_summary(token: &ParsedToken, verified: &VerifiedToken, at: CheckTimeArg) {
    let imprint = token
        .imprint_algorithm()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("valid time-stamp token");
    println!(
        "  genTime:   {}{}",
        rfc3339(token.gen_time()),
        accuracy_text(token)
            .map(|a| format!(" (accuracy ±{a})"))
            .unwrap_or_default()
    );
    println!(
        "  imprint:   {imprint} {}",
        hex::encode(token.hashed_message())
    );
    println!("  serial:    {}", token.serial_hex());
    println!("  policy:    {}", token.policy());
    if let Some(nonce) = token.nonce_hex() {
        println!("  nonce:     {nonce}");
    }
    println!("  signed by: {}", verified.signer_subject);
    if let Some(name) = token.tsa_name() {
        println!("  TSA name:  {name}");
    }
    println!(
        "  TSA certificate path valid at {} ({})",
        rfc3339(verified.validated_at),
        check_time_name(at)
    );
}

fn token_json(token: &ParsedToken, verified: &VerifiedToken, at: CheckTimeArg) -> Value {
    json!({
        "valid": true,
        "gen_time": rfc3339(token.gen_time()),
        "accuracy": accuracy_text(token),
        "hash_algorithm": token.imprint_algorithm().map(|a| a.to_string()).ok(),
        "hashed_message": hex::encode(token.hashed_message()),
        "serial": token.serial_hex(),
        "policy": token.policy().to_string(),
        "nonce": token.nonce_hex(),
        "tsa_name": token.tsa_name(),
        "signer_subject": verified.signer_subject,
        "validated_at": rfc3339(verified.validated_at),
        "checked_at": check_time_name(at),
    })
}

// --- shared --------------------------------------------------------------------------------

/// Hashes a file of any size in 64 KiB pieces.
fn hash_file(path: &Path, algorithm: DigestAlgorithm) -> Result<Vec<u8>, Failure> {
    let cannot = |e: std::io::Error| input(format!("cannot read {}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    let mut hasher = openssl::hash::Hasher::new(algorithm.message_digest())
        .map_err(|e| Failure::Internal(e.to_string()))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(cannot)?;
        if n == 0 {
            break;
        }
        hasher
            .update(&buf[..n])
            .map_err(|e| Failure::Internal(e.to_string()))?;
    }
    Ok(hasher
        .finish()
        .map_err(|e| Failure::Internal(e.to_string()))?
        .to_vec())
}

/// Hex of either case, colons and surrounding space allowed (`ab:cd`, as openssl prints).
fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
    hex::decode(digits).ok().filter(|d| !d.is_empty())
}

fn internal(e: TsaError) -> Failure {
    Failure::Internal(e.to_string())
}
