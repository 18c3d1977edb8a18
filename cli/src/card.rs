//! `imza card`: the citizen's chip card. List readers, cards and what is on them, watch cards
//! come and go, enroll a card (key generated on it, CSR signed by it, certificate issued and
//! written back), unblock a locked PIN with the PUK.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;
use zeroize::Zeroizing;

use imza_ca::authority::DEFAULT_BACKDATE;
use imza_ca::csr::parse_csr;
use imza_ca::{IssueOptions, IssueRequest};
use imza_core::cert::serial_hex;
use imza_core::clock::rfc3339;
use imza_core::csr::build_csr;
use imza_core::key::pkcs11::{PinSource, TokenSelector};
use imza_core::name::parse_dn;
use imza_core::{pem, KeyAlgorithm};
use imza_smartcard::module::resolve_module;
use imza_smartcard::piv::{ManagementKey, ManagementKeyAlgorithm, PivCard, PivKey, PivSlot};
use imza_smartcard::reader::{list_readers, ReaderEvent, ReaderStatus, ReaderWatcher};
use imza_smartcard::token::{generate_on_token, list_tokens};
use imza_smartcard::CardError;

use crate::ca::{open_pki, parse_key_algorithm, Home};
use crate::output::{ensure_absent, print_json, secret, write_new, CliResult, Failure};

#[derive(Subcommand)]
pub enum CardCommand {
    /// Card readers (PC/SC), whether a card is in each and its ATR, and the tokens the PKCS#11
    /// module sees with their certificates (subject, serial, key usage, expiry, key pair).
    /// Needs no PIN.
    List(ListArgs),
    /// Print card insertions and removals (and readers plugged in or out) until interrupted.
    Watch(WatchArgs),
    /// Enroll a card: generate the key ON the card, have the card sign a CSR, issue the
    /// certificate from a CA in the data directory and write it back to the card.
    Enroll(Box<EnrollArgs>),
    /// Unblock a PIV card's PIN locked by wrong tries, with the PUK, setting a new PIN.
    Unblock(UnblockArgs),
}

/// Which PKCS#11 module to load.
#[derive(Args)]
pub struct ModuleArgs {
    /// The PKCS#11 module (a card vendor's, or SoftHSM2's). Default: $IMZA_PKCS11_MODULE,
    /// else OpenSC's opensc-pkcs11.so.
    #[arg(long = "pkcs11-module", value_name = "MODULE.so")]
    pkcs11_module: Option<PathBuf>,
}

impl ModuleArgs {
    pub fn resolve(&self) -> Result<PathBuf, Failure> {
        module_path(self.pkcs11_module.as_deref())
    }
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    module: ModuleArgs,
    /// Print JSON: {"readers": [...], "tokens": [...]}.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct WatchArgs {
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Stop after this many events (default: run until interrupted).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

#[derive(Args)]
#[command(group(ArgGroup::new("card_choice").args(["reader", "token", "token_serial"]).multiple(false)))]
pub struct EnrollArgs {
    /// The reader holding the PIV card (its name, or a unique part of it). Without --reader,
    /// --token or --token-serial: the only reader with a card in it.
    #[arg(long, value_name = "READER")]
    reader: Option<String>,
    /// Enroll a PKCS#11 token (SoftHSM2, an HSM) chosen by label instead of a PIV card; the
    /// key is generated through --pkcs11-module.
    #[arg(long, value_name = "LABEL")]
    token: Option<String>,
    /// Like --token, choosing the token by serial number.
    #[arg(long, value_name = "SERIAL")]
    token_serial: Option<String>,
    #[command(flatten)]
    module: ModuleArgs,
    /// The issuing CA (in --data-dir).
    #[arg(long)]
    ca: String,
    /// Certificate profile, e.g. citizen-sign or citizen-auth (see `imza profile list`).
    #[arg(long)]
    profile: String,
    /// The card holder's name, RFC 4514, e.g. "CN=Əli Məmmədov,serialNumber=PNOAZ-1AB2C3D,C=AZ".
    #[arg(long)]
    subject: String,
    /// Environment variable holding the card's user PIN. Without it, the PIN is asked for
    /// without echo.
    #[arg(long, value_name = "VAR")]
    pin_env: Option<String>,
    /// The key to generate on the card.
    #[arg(long, value_parser = parse_key_algorithm, default_value = "ec-p256")]
    key: KeyAlgorithm,
    /// PIV slot: 9c (digital signature, PIN before every signature; the default), 9a
    /// (authentication), 9d (key management), 9e (card authentication).
    #[arg(long, default_value = "9c")]
    slot: PivSlot,
    /// Environment variable holding the PIV management key in hex (default: the PIV
    /// factory key 0102…08 ×3, 3DES). 48 hex digits are 3DES; use --mgm-key-aes for AES.
    #[arg(long, value_name = "VAR")]
    mgm_key_env: Option<String>,
    /// The management key in --mgm-key-env is AES (128, 192 or 256 bits by its length).
    #[arg(long, requires = "mgm_key_env")]
    mgm_key_aes: bool,
    /// Label for the key and certificate on a PKCS#11 token (default: the profile name).
    #[arg(long, value_name = "LABEL")]
    key_label: Option<String>,
    /// Environment variable holding the CA key's PKCS#11 PIN (overrides the one remembered
    /// at `ca init`).
    #[arg(long, value_name = "VAR")]
    ca_pin_env: Option<String>,
    /// Also write the issued certificate here (PEM). Never overwritten.
    #[arg(long, value_name = "CERT.pem")]
    out: Option<PathBuf>,
    /// Print what was enrolled as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct UnblockArgs {
    /// The reader holding the card (default: the only reader with a card in it).
    #[arg(long, value_name = "READER")]
    reader: Option<String>,
    /// Environment variable holding the PUK.
    #[arg(long, value_name = "VAR")]
    puk_env: String,
    /// Environment variable holding the new PIN (6 to 8 characters).
    #[arg(long, value_name = "VAR")]
    new_pin_env: String,
}

/// The PKCS#11 module's path: `explicit`, else $IMZA_PKCS11_MODULE, else OpenSC's. One named
/// (flag or environment) that does not exist is bad input (2); OpenSC's module not installed,
/// when none is named, is the environment (3).
pub fn module_path(explicit: Option<&Path>) -> Result<PathBuf, Failure> {
    resolve_module(explicit).map_err(|e| {
        let named = explicit.is_some()
            || std::env::var_os(imza_smartcard::module::MODULE_ENV).is_some_and(|v| !v.is_empty());
        match e {
            CardError::ModuleNotFound(_) if named => Failure::Input(e.to_string()),
            other => other.into(),
        }
    })
}

/// The exit code of a card failure ([`Failure`]'s rule): the service, the reader, the card's
/// presence and its answers are the environment (3); the reader or certificate named, the PIN,
/// the PUK, the management key and what the card holds are the operator's input (2).
impl From<CardError> for Failure {
    fn from(e: CardError) -> Self {
        match e {
            CardError::Core(core) => core.into(),
            CardError::PcscdNotRunning
            | CardError::NoReader
            | CardError::NoCard { .. }
            | CardError::NoCardInAnyReader { .. }
            | CardError::CardRemoved { .. }
            | CardError::ReaderGone { .. }
            | CardError::CardUnresponsive { .. }
            | CardError::Pcsc(_)
            | CardError::CardStatus { .. }
            | CardError::BadResponse { .. }
            | CardError::TokenFailed(_)
            | CardError::ModuleNotFound(_) => Failure::Environment(e.to_string()),
            CardError::ReaderNotFound { .. }
            | CardError::ReaderAmbiguous { .. }
            | CardError::SeveralCards { .. }
            | CardError::PinIncorrect { .. }
            | CardError::PinLocked
            | CardError::PinFormat { .. }
            | CardError::PukIncorrect { .. }
            | CardError::PukLocked
            | CardError::ManagementKeyRejected
            | CardError::ManagementKeyFormat { .. }
            | CardError::UnknownSlot { .. }
            | CardError::NotPivCard { .. }
            | CardError::CompressedCertificate { .. }
            | CardError::Token(_) => Failure::Input(e.to_string()),
            // A card that fails imza's challenge is a verdict on the card: not genuine.
            CardError::CardNotAuthenticated { .. } => Failure::Verdict(e.to_string()),
        }
    }
}

pub fn run(home: &Home, command: CardCommand) -> CliResult {
    match command {
        CardCommand::List(args) => list(&args),
        CardCommand::Watch(args) => watch(&args),
        CardCommand::Enroll(args) => enroll(home, &args),
        CardCommand::Unblock(args) => unblock(&args),
    }
}

fn list(args: &ListArgs) -> CliResult {
    let readers = list_readers();
    let module = args.module.resolve()?;
    let tokens = list_tokens(&module)?;
    if args.json {
        let readers_json = match &readers {
            Ok(readers) => json!(readers.iter().map(reader_json).collect::<Vec<_>>()),
            Err(_) => json!([]),
        };
        print_json(&json!({
            "readers": readers_json,
            "readers_error": readers.as_ref().err().map(ToString::to_string),
            "module": module.display().to_string(),
            "tokens": tokens,
        }))?;
    } else {
        match &readers {
            Ok(list) if list.is_empty() => println!("no card reader attached"),
            Ok(list) => {
                for reader in list {
                    match &reader.atr {
                        Some(atr) if reader.card_present => println!(
                            "reader {:?}: card present, ATR {}",
                            reader.name,
                            hex::encode_upper(atr)
                        ),
                        _ => println!("reader {:?}: no card", reader.name),
                    }
                }
            }
            Err(e) => println!("readers: {e}"),
        }
        if tokens.is_empty() {
            println!("no token in module {}", module.display());
        }
        for token in &tokens {
            let pin = if token.pin.locked {
                "PIN LOCKED"
            } else if token.pin.final_try {
                "PIN: final try left"
            } else if token.pin.count_low {
                "PIN: wrong PIN entered since the last login"
            } else {
                "PIN ok"
            };
            println!(
                "token {:?} in {:?} (serial {}, {} {}; {pin}{})",
                token.label,
                token.slot,
                token.serial,
                token.manufacturer,
                token.model,
                if token.pin.protected_authentication_path {
                    ", PIN pad"
                } else {
                    ""
                }
            );
            if token.certificates.is_empty() {
                println!("  no certificates");
            }
            for cert in &token.certificates {
                let key = match (cert.private_key, cert.public_key) {
                    (true, _) => "private key on the token",
                    (false, true) => "public key (private key shown after login)",
                    (false, false) => "no key pair visible",
                };
                println!(
                    "  certificate id {}: {}\n    serial {}, issuer {}\n    key usage {}, valid {} to {}; {key}",
                    cert.id,
                    cert.subject,
                    cert.serial,
                    cert.issuer,
                    if cert.key_usage.is_empty() {
                        "(any)".to_string()
                    } else {
                        cert.key_usage.join(", ")
                    },
                    cert.not_before,
                    cert.not_after,
                );
            }
        }
    }
    match readers {
        // Readers could not be listed, and the module showed nothing either (OpenSC sees no
        // card without PC/SC): fail with the reason. A module that needs no PC/SC (SoftHSM2, a
        // network HSM) still lists its tokens, and the readers line says what went wrong.
        Err(e) if tokens.is_empty() => Err(Failure::from(e)),
        _ => Ok(()),
    }
}

fn reader_json(reader: &ReaderStatus) -> serde_json::Value {
    json!({
        "name": reader.name,
        "card_present": reader.card_present,
        "atr": reader.atr.as_ref().map(hex::encode_upper),
    })
}

fn watch(args: &WatchArgs) -> CliResult {
    let mut watcher = ReaderWatcher::new()?;
    let mut out = std::io::stdout().lock();
    let now = || rfc3339(time::OffsetDateTime::now_utc());
    for reader in watcher.current() {
        let line = if args.json {
            json!({"time": now(), "event": "present", "reader": reader.name,
                   "card_present": reader.card_present,
                   "atr": reader.atr.as_ref().map(hex::encode_upper)})
            .to_string()
        } else if reader.card_present {
            format!(
                "{} reader {:?}: card present, ATR {}",
                now(),
                reader.name,
                reader
                    .atr
                    .as_ref()
                    .map(hex::encode_upper)
                    .unwrap_or_default()
            )
        } else {
            format!("{} reader {:?}: no card", now(), reader.name)
        };
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(stdout_failed)?;
    }
    let mut seen = 0u64;
    loop {
        for event in watcher.next_events(Duration::from_secs(1))? {
            let (kind, reader, atr) = match &event {
                ReaderEvent::CardInserted { reader, atr } => ("inserted", reader, Some(atr)),
                ReaderEvent::CardRemoved { reader } => ("removed", reader, None),
                ReaderEvent::ReaderAttached { reader } => ("reader-attached", reader, None),
                ReaderEvent::ReaderDetached { reader } => ("reader-detached", reader, None),
            };
            let line = if args.json {
                json!({"time": now(), "event": kind, "reader": reader,
                       "atr": atr.map(hex::encode_upper)})
                .to_string()
            } else {
                match atr {
                    Some(atr) => format!(
                        "{} card inserted in {reader:?}, ATR {}",
                        now(),
                        hex::encode_upper(atr)
                    ),
                    None if kind == "removed" => format!("{} card removed from {reader:?}", now()),
                    None => format!("{} {kind} {reader:?}", now()),
                }
            };
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(stdout_failed)?;
            seen += 1;
            if args.count.is_some_and(|count| seen >= count) {
                return Ok(());
            }
        }
    }
}

fn stdout_failed(e: std::io::Error) -> Failure {
    Failure::Internal(format!("cannot write to standard output: {e}"))
}

fn management_key(args: &EnrollArgs) -> Result<ManagementKey, Failure> {
    match &args.mgm_key_env {
        None => Ok(ManagementKey::default_3des()),
        Some(var) => {
            let hex = secret(Some(var), "PIV management key")?;
            let hex = hex.trim();
            let key = if args.mgm_key_aes {
                let algorithm = match hex.len() {
                    32 => ManagementKeyAlgorithm::Aes128,
                    64 => ManagementKeyAlgorithm::Aes256,
                    _ => ManagementKeyAlgorithm::Aes192,
                };
                ManagementKey::from_hex_with(algorithm, hex)
            } else {
                ManagementKey::from_hex(hex)
            };
            key.map_err(Failure::from)
        }
    }
}

fn enroll(home: &Home, args: &EnrollArgs) -> CliResult {
    if let Some(out) = &args.out {
        ensure_absent(out)?;
    }
    // Everything the CA will check is checked before the card is touched: a request the
    // profile refuses must not cost the citizen a new key on the card.
    let pki = open_pki(home)?;
    let profile = pki.profiles().get(&args.profile)?.clone();
    let subject = parse_dn(&args.subject)?;
    let options = IssueOptions {
        profile: &profile,
        validity_days: None,
        backdate: DEFAULT_BACKDATE,
    };
    let ca_pin = args.ca_pin_env.clone().map(PinSource::Env);
    let authority = pki.authority(&args.ca, ca_pin.as_ref())?;
    authority.check_can_issue(&options, pki.now())?;
    authority.check_request(
        &IssueRequest {
            subject: subject.clone(),
            public_key: Vec::new(),
            key_algorithm: args.key,
            alt_names: Vec::new(),
            asks_for_ca: false,
        },
        &options,
    )?;

    let pin = secret(args.pin_env.as_deref(), "card PIN")?;
    let enrolled = match (&args.token, &args.token_serial) {
        (None, None) => enroll_piv(args, &subject, pin, |csr| issue(&authority, &options, csr))?,
        (label, serial) => {
            let selector = match (label, serial) {
                (Some(label), _) => TokenSelector::Label(label.clone()),
                (None, Some(serial)) => TokenSelector::Serial(serial.clone()),
                (None, None) => TokenSelector::Only,
            };
            enroll_token(args, &selector, &subject, pin, |csr| {
                issue(&authority, &options, csr)
            })?
        }
    };
    if args.json {
        print_json(&json!({
            "serial": serial_hex(&enrolled.record.serial),
            "subject": enrolled.record.subject,
            "profile": enrolled.record.profile,
            "ca": enrolled.record.ca,
            "card": enrolled.card,
            "key": args.key.name(),
        }))
    } else {
        println!(
            "enrolled {} (serial {}, {}): {} key generated on {}, certificate written to it{}",
            enrolled.record.subject,
            serial_hex(&enrolled.record.serial),
            enrolled.record.profile,
            args.key,
            enrolled.card,
            args.out
                .as_ref()
                .map(|p| format!(" and to {}", p.display()))
                .unwrap_or_default()
        );
        Ok(())
    }
}

struct Enrolled {
    record: imza_ca::store::CertificateRecord,
    /// Where the key lives, for the citizen: "the card in reader …, slot 9C".
    card: String,
}

/// Issues the certificate for a CSR the card signed (its proof of possession is checked).
fn issue(
    authority: &imza_ca::authority::CertificateAuthority<'_>,
    options: &IssueOptions<'_>,
    csr: &[u8],
) -> Result<imza_ca::store::CertificateRecord, Failure> {
    let request = IssueRequest::from(parse_csr(csr)?);
    authority
        .issue(std::slice::from_ref(&request), options)?
        .pop()
        .ok_or_else(|| Failure::Internal("nothing was issued".into()))
}

/// Writes the issued certificate to --out (if asked) before the card: once issued it is in the
/// store, and a copy on disk survives a card pulled at the last step.
fn save_copy(args: &EnrollArgs, der: &[u8]) -> CliResult {
    match &args.out {
        Some(out) => write_new(out, pem::encode(pem::CERTIFICATE, der)?.as_bytes(), false),
        None => Ok(()),
    }
}

fn enroll_piv(
    args: &EnrollArgs,
    subject: &x509_cert::name::Name,
    pin: Zeroizing<String>,
    issue: impl FnOnce(&[u8]) -> Result<imza_ca::store::CertificateRecord, Failure>,
) -> Result<Enrolled, Failure> {
    let management = management_key(args)?;
    let mut card = PivCard::connect(args.reader.as_deref())?;
    let reader = card.reader().to_string();
    // The PIN first: a wrong one stops here, before a key is replaced.
    card.verify_pin(&pin)?;
    card.authenticate(&management)?;
    let spki = card.generate_key(args.slot, args.key)?;
    let key = PivKey::new(card, args.slot, spki, pin)?;
    let csr = build_csr(subject, &key)?;
    let record = issue(&csr)?;
    save_copy(args, &record.der)?;
    let mut card = key.into_card();
    card.authenticate(&management)
        .and_then(|()| card.write_certificate(args.slot, &record.der))
        .map_err(|e| {
            Failure::Internal(format!(
                "certificate {} was issued (it is in the store{}) but could not be written to \
                 the card: {e}; run the enrollment again or revoke it",
                serial_hex(&record.serial),
                args.out
                    .as_ref()
                    .map(|p| format!(" and in {}", p.display()))
                    .unwrap_or_default()
            ))
        })?;
    Ok(Enrolled {
        record,
        card: format!("the card in reader {reader:?}, slot {}", args.slot),
    })
}

fn enroll_token(
    args: &EnrollArgs,
    selector: &TokenSelector,
    subject: &x509_cert::name::Name,
    pin: Zeroizing<String>,
    issue: impl FnOnce(&[u8]) -> Result<imza_ca::store::CertificateRecord, Failure>,
) -> Result<Enrolled, Failure> {
    let module = args.module.resolve()?;
    let label = args
        .key_label
        .clone()
        .unwrap_or_else(|| args.profile.clone());
    let key = generate_on_token(&module, selector, &label, args.key, &PinSource::Value(pin))?;
    let csr = build_csr(subject, &key)?;
    let record = issue(&csr)?;
    save_copy(args, &record.der)?;
    key.store_certificate(&record.der, &label).map_err(|e| {
        Failure::Internal(format!(
            "certificate {} was issued (it is in the store) but could not be stored on the \
             token: {e}",
            serial_hex(&record.serial)
        ))
    })?;
    Ok(Enrolled {
        record,
        card: format!(
            "token {:?} ({}), key {:?}",
            key.location().token_label,
            module.display(),
            label
        ),
    })
}

fn unblock(args: &UnblockArgs) -> CliResult {
    let puk = secret(Some(&args.puk_env), "PUK")?;
    let new_pin = secret(Some(&args.new_pin_env), "new PIN")?;
    let mut card = PivCard::connect(args.reader.as_deref())?;
    card.unblock_pin(&puk, &new_pin)?;
    println!(
        "the PIN of the card in reader {:?} is unblocked and set to the new PIN",
        card.reader()
    );
    Ok(())
}
