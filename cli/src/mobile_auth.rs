//! `imza mobile auth`: a relying party logs a citizen in by phone (random challenge signed by
//! the phone's authentication key, certificate validated with OCSP, identity printed), and the
//! relying-party options and exit codes `imza sign --mobile` shares.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use imza_core::clock::{Clock, FixedClock, SystemClock};
use imza_http::HttpClient;
use imza_mobile_sign::authentication::{authenticate, AuthenticatedCitizen, AuthenticationTrust};
use imza_mobile_sign::client::{ClientError, MssClient};
use imza_mobile_sign::http_client::ApiError;
use imza_mobile_sign::protocol::{
    check_national_id, normalize_phone_number, Language, SessionResult,
};

use crate::output::{
    input, print_json, read_certificate_file, read_crl_file, secret, CliResult, Failure,
};

/// Largest certificate or CRL file read.
const MAX_PKI_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// What `imza mobile auth --help` explains after the options.
const MANUAL: &str = "\
    The relying party (a government portal) asks the signature service at --mss-url, as \
    --rp-name with the API key in the environment variable --rp-key-env, to have the phone \
    registered for --phone and --national-id sign a fresh random 32-byte challenge (its \
    SHA-256) with the phone's authentication key. The verification code is printed on \
    standard error as `Verification code: NNNN`: the citizen checks that the phone shows the \
    same code before entering the PIN there.\n\
    \n\
    The answer is believed only after: the signature verifies over the challenge with the \
    certificate's key; the certificate has keyUsage digitalSignature (and clientAuth when it \
    has an extendedKeyUsage); it chains to a --trust root (issuing CAs from --untrusted, or \
    fetched from the certificate's caIssuers URL); every certificate below the root is not \
    revoked, by OCSP at its AIA URL (or a CRL from --crl or its distribution point) - no \
    answer means no login; and its subject's serialNumber is the personal code of \
    --national-id (PNOAZ-1AB2C3D for 1AB2C3D). Then the identity is printed: name, personal \
    code, certificate serial and issuer (JSON with --json).\n\
    \n\
    Exit status 0: authenticated. 1: refused - by the citizen (USER_REFUSED), the PIN \
    blocked (PIN_BLOCKED), a signature or certificate that is not accepted (revoked, no \
    path, no revocation answer, another person). 2: bad usage or input, an unknown phone or \
    identity (NOT_MOBILE_CLIENT), wrong relying-party credentials. 3: the service cannot be \
    reached, the phone is absent or did not answer (PHONE_ABSENT, TIMEOUT, DELIVERY_ERROR).\n\
    \n\
    Example:\n\
    \x20 RP_KEY=... imza mobile auth --phone +994501234567 --national-id 1AB2C3D --mss-url https://mss.gov.az --rp-name mygov.az --rp-key-env RP_KEY --trust root.pem";

/// Who asks the signature service, and whose phone: shared by `imza mobile auth` and
/// `imza sign --mobile`.
pub struct RelyingParty<'a> {
    pub mss_url: &'a str,
    pub rp_name: &'a str,
    pub rp_key_env: &'a str,
}

impl RelyingParty<'_> {
    /// The client, with the API key read from the environment (never printed).
    pub fn client(&self) -> Result<MssClient, Failure> {
        let key = secret(Some(self.rp_key_env), "relying party API key")?;
        MssClient::new(self.mss_url, self.rp_name, &key).map_err(client_failure)
    }
}

/// The phone number in E.164 and the national id, checked.
pub fn citizen(phone: &str, national_id: &str) -> Result<String, Failure> {
    let phone = normalize_phone_number(phone).map_err(|e| input(format!("--phone: {e}")))?;
    check_national_id(national_id).map_err(|e| input(format!("--national-id: {e}")))?;
    Ok(phone)
}

pub fn parse_language(s: &str) -> Result<Language, String> {
    s.parse()
        .map_err(|e: imza_mobile_sign::protocol::ProtocolError| e.problem)
}

/// Prints the verification code as relying parties show it, and what happens next.
pub fn show_code(code: &str) {
    eprintln!("Verification code: {code}");
    eprintln!("Waiting for the citizen to check the code on the phone and enter the PIN there...");
}

#[derive(Args)]
#[command(after_long_help = MANUAL)]
pub struct MobileAuthArgs {
    /// The citizen's phone number, E.164 (`+994501234567`; spaces and dashes are dropped).
    #[arg(long)]
    phone: String,
    /// The citizen's national identity number (FIN), e.g. `1AB2C3D`.
    #[arg(long)]
    national_id: String,
    /// The signature service's base URL (`https://mss.gov.az`, `http://127.0.0.1:8080`).
    #[arg(long, value_name = "URL")]
    mss_url: String,
    /// The relying party's registered name (`imza mobile rp add`).
    #[arg(long, value_name = "NAME")]
    rp_name: String,
    /// Environment variable holding the relying party's API key.
    #[arg(long, value_name = "VAR")]
    rp_key_env: String,
    /// Text shown on the phone (at most 200 characters), e.g. `Log in to e-gov.az`.
    #[arg(long, value_name = "TEXT")]
    display_text: Option<String>,
    /// Language of the phone's texts: AZE, ENG, RUS or TUR.
    #[arg(long, value_name = "LANG", default_value = "AZE", value_parser = parse_language)]
    language: Language,
    /// A trusted root certificate (PEM or DER; a PEM file may hold several). Repeatable.
    #[arg(long = "trust", value_name = "FILE", required = true)]
    trust: Vec<PathBuf>,
    /// Issuing CA certificates paths may go through (PEM or DER). Not trusted. Repeatable.
    #[arg(long, value_name = "FILE")]
    untrusted: Vec<PathBuf>,
    /// CRLs (PEM or DER) to check revocation with besides OCSP. Repeatable.
    #[arg(long, value_name = "FILE")]
    crl: Vec<PathBuf>,
    /// Validate the certificate at this time, RFC 3339, instead of now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Give up on an OCSP responder, CRL or issuer URL after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
    /// Give up waiting for the phone after this many seconds (the service ends a session
    /// after 5 minutes by default).
    #[arg(long, value_name = "SECONDS", default_value_t = 330)]
    wait: u64,
    /// Print the identity as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: MobileAuthArgs) -> CliResult {
    let phone = citizen(&args.phone, &args.national_id)?;
    let clock: Arc<dyn Clock> = match &args.at {
        Some(text) => Arc::new(FixedClock(
            OffsetDateTime::parse(text.trim(), &Rfc3339)
                .map_err(|e| input(format!("--at {text:?} is not an RFC 3339 time: {e}")))?,
        )),
        None => Arc::new(SystemClock),
    };
    let mut anchors = Vec::new();
    for path in &args.trust {
        anchors.extend(read_certificate_file(path, "--trust", MAX_PKI_FILE_BYTES)?);
    }
    let fetcher = HttpClient {
        timeout: Duration::from_secs(args.timeout),
        ..HttpClient::default()
    };
    let mut trust = AuthenticationTrust::new(anchors, Box::new(fetcher.clone()), clock)
        .with_issuer_fetching(fetcher);
    for path in &args.untrusted {
        for cert in read_certificate_file(path, "--untrusted", MAX_PKI_FILE_BYTES)? {
            trust.add_intermediate(cert);
        }
    }
    for path in &args.crl {
        for crl in read_crl_file(path, "--crl", MAX_PKI_FILE_BYTES)? {
            trust.add_crl(crl);
        }
    }
    let client = RelyingParty {
        mss_url: &args.mss_url,
        rp_name: &args.rp_name,
        rp_key_env: &args.rp_key_env,
    }
    .client()?;
    let citizen = authenticate(
        &client,
        &phone,
        &args.national_id,
        args.language,
        args.display_text.clone(),
        &trust,
        Duration::from_secs(args.wait),
        &show_code,
    )
    .map_err(client_failure)?;
    if args.json {
        print_json(&identity_json(&citizen, &phone))
    } else {
        print!("{}", identity_text(&citizen));
        Ok(())
    }
}

fn identity_json(citizen: &AuthenticatedCitizen, phone: &str) -> serde_json::Value {
    json!({
        "authenticated": true,
        "name": citizen.name,
        "personalCode": citizen.personal_code,
        "nationalId": citizen.national_id,
        "country": citizen.country,
        "phoneNumber": phone,
        "certificateSerial": citizen.certificate_serial,
        "issuer": citizen.issuer,
        "certificate": imza_mobile_sign::protocol::encode_base64(&citizen.certificate),
    })
}

fn identity_text(citizen: &AuthenticatedCitizen) -> String {
    let mut out = format!("Authenticated: {}\n", citizen.name);
    out.push_str(&format!("  Personal code: {}\n", citizen.personal_code));
    if let Some(country) = &citizen.country {
        out.push_str(&format!("  Country:       {country}\n"));
    }
    out.push_str(&format!(
        "  Certificate:   serial {}, issued by {}\n",
        citizen.certificate_serial, citizen.issuer
    ));
    out
}

/// The exit code of a relying party's failure (see the manual above and `imza sign --help`).
pub fn client_failure(e: ClientError) -> Failure {
    let text = e.to_string();
    match &e {
        ClientError::InvalidRequest(_) | ClientError::NotFound { .. } => Failure::Input(text),
        ClientError::NotActive { .. } => Failure::Verdict(text),
        ClientError::Session(result) => match result {
            SessionResult::UserRefused
            | SessionResult::PinBlocked
            | SessionResult::SignatureHashMismatch => Failure::Verdict(text),
            SessionResult::NotMobileClient => Failure::Input(text),
            SessionResult::Ok
            | SessionResult::Timeout
            | SessionResult::PhoneAbsent
            | SessionResult::DeliveryError => Failure::Environment(text),
        },
        ClientError::BadSignature(_)
        | ClientError::Validation(_)
        | ClientError::IdentityMismatch { .. } => Failure::Verdict(text),
        ClientError::Api(ApiError::Refused {
            status: 400 | 401 | 404,
            ..
        }) => Failure::Input(text),
        ClientError::GaveUp { .. } | ClientError::Api(_) | ClientError::BadCertificate(_) => {
            Failure::Environment(text)
        }
    }
}
