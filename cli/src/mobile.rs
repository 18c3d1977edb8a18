//! `imza mobile` and `imza phone`: the mobile signature service's administration (relying
//! parties), a phone's registration at the registration office (keys made on the phone,
//! certified by the CA, the device registered with the service), the phone app, and a relying
//! party's authentication of a citizen.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;

use imza_ca::authority::DEFAULT_BACKDATE;
use imza_ca::csr::parse_csr;
use imza_ca::store::CertificateRecord;
use imza_ca::{IssueOptions, IssueRequest};
use imza_core::cert::serial_hex;
use imza_core::csr::build_csr;
use imza_core::key::pkcs11::PinSource;
use imza_core::name::parse_dn;
use imza_core::{KeyAlgorithm, SigningKey};
use imza_mobile_sign::phone::{
    default_phone_dir, Decision, KeyStoreSpec, PhoneApp, PhoneEnrollment, PhoneEvent, PinEntry,
    Wallet,
};
use imza_mobile_sign::protocol::{check_national_id, normalize_phone_number};
use imza_mobile_sign::store::{
    add_relying_party, register_device, MobileStore, NewDevice, RegisteredCertificate,
};
use x509_cert::ext::pkix::crl::CrlReason;

use crate::ca::{open_pki, Home};
use crate::output::{input, print_json, secret, store_failure, CliResult, Failure};

/// The relying-party and device registry of `imza serve`'s mobile signature service.
#[derive(Subcommand)]
pub enum MobileCommand {
    /// Relying parties: the services allowed to ask citizens' phones for signatures.
    #[command(subcommand)]
    Rp(RpCommand),
    /// Register a citizen's phone (at the registration office): the phone makes its
    /// authentication and signing keys (EC P-256, in a PKCS#11 token or in files encrypted
    /// under the signing PIN), the CA certifies them (profiles citizen-auth and citizen-sign),
    /// and the device is registered with the signature service in this data directory's store.
    /// Registering a phone number again replaces its device: the old certificates are revoked
    /// (superseded).
    Register(Box<RegisterArgs>),
    /// Authenticate a citizen by phone, as a relying party: a random challenge signed by the
    /// phone's authentication key, the certificate validated with OCSP, the identity printed.
    Auth(Box<crate::mobile_auth::MobileAuthArgs>),
}

#[derive(Subcommand)]
pub enum RpCommand {
    /// Register a relying party. Prints `{"name": ..., "apiKey": ...}` once: only a hash of the
    /// key is stored, so keep it now. The party authenticates with HTTP Basic name:apiKey.
    Add {
        /// 1–64 characters a-z, 0-9, '-' and '.', e.g. `mygov.az`.
        #[arg(long)]
        name: String,
    },
    /// List the registered relying parties (names and registration times, never keys).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
#[command(group(ArgGroup::new("who").required(true).args(["subject", "given_name"])))]
pub struct RegisterArgs {
    /// The phone number, E.164 (`+994501234567`; spaces and dashes are dropped).
    #[arg(long)]
    phone: String,
    /// The citizen's national identity number (FIN), e.g. `1AB2C3D`. It becomes the
    /// certificates' serialNumber PNOAZ-<ID>.
    #[arg(long)]
    national_id: String,
    /// The citizen's given name (with --surname): the subject becomes
    /// `CN=GIVEN SURNAME, givenName=GIVEN, SN=SURNAME, serialNumber=PNOAZ-ID, C=AZ`.
    #[arg(long, requires = "surname")]
    given_name: Option<String>,
    #[arg(long, requires = "given_name")]
    surname: Option<String>,
    /// The whole subject DN instead of --given-name/--surname; its serialNumber must be
    /// PNOAZ-<national id>.
    #[arg(long, conflicts_with_all = ["given_name", "surname"])]
    subject: Option<String>,
    /// The issuing CA (e.g. `mobile`).
    #[arg(long)]
    ca: String,
    /// Environment variable holding the new signing PIN (4–12 digits). Without it the PIN is
    /// asked for on the terminal. It protects both keys and never leaves the phone.
    #[arg(long)]
    pin_env: Option<String>,
    /// The signature service the phone talks to (the `imza serve` of this data directory).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    mss_url: String,
    /// The phone's own directory (its wallet: certificates, device credentials, key files).
    /// Default: $IMZA_PHONE_HOME/PHONE, else ~/.local/share/imza/phones/PHONE.
    #[arg(long)]
    phone_dir: Option<PathBuf>,
    /// Keep the phone's keys on a PKCS#11 token (its secure element) instead of PIN-encrypted
    /// files: the module (e.g. SoftHSM2's libsofthsm2.so). The token's user PIN is the
    /// signing PIN.
    #[arg(long, requires = "token")]
    pkcs11_module: Option<PathBuf>,
    /// Label of that token.
    #[arg(long, requires = "pkcs11_module")]
    token: Option<String>,
    /// Environment variable with the PIN of the CA's key, when it is on a PKCS#11 token.
    #[arg(long)]
    ca_pin_env: Option<String>,
    #[arg(long)]
    json: bool,
}

/// `imza phone`: the citizen's phone, simulated on the command line.
#[derive(Subcommand)]
pub enum PhoneCommand {
    /// Run the phone app: wait for signature and authentication requests from the service,
    /// show who asks, the text and the verification code, and answer. With --approve the
    /// signing PIN is checked on the phone (3 wrong in a row block the keys: PIN_BLOCKED).
    Run(PhoneRunArgs),
    /// Log in to a portal by its QR code: given the device link the QR code holds, the phone
    /// asks the portal what it is (the link must be fresh: a QR code is refused a few seconds
    /// after it was shown), shows the portal's name and origin, asks for the PIN (--pin-env,
    /// or the terminal) and answers with its authentication certificate and a signature over
    /// the portal's origin, the login and its challenge. Exit status 0: the portal took the
    /// answer (the browser showing the QR code logs in); 1: the portal refused it (stale or
    /// foreign link, certificate not accepted); 2: bad input, wrong PIN, or refused here.
    Qr(PhoneQrArgs),
}

#[derive(Args)]
pub struct PhoneQrArgs {
    /// The device link read from the QR code (`https://portal.gov.az/qr/v1?...`).
    #[arg(long, value_name = "URL")]
    pub(crate) link: String,
    /// The phone number given at registration.
    #[arg(long)]
    pub(crate) phone: String,
    /// The phone's directory, if not the default (see `imza mobile register --phone-dir`).
    #[arg(long)]
    pub(crate) phone_dir: Option<PathBuf>,
    /// Environment variable holding the signing PIN; without it the PIN is asked for on the
    /// terminal.
    #[arg(long)]
    pub(crate) pin_env: Option<String>,
    /// Refuse: show who asks, sign nothing, tell the portal nothing.
    #[arg(long)]
    pub(crate) refuse: bool,
    /// One JSON object per step on standard output.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
#[command(group(ArgGroup::new("decision").required(true).args(["approve", "refuse", "ignore"])))]
pub struct PhoneRunArgs {
    /// The phone number given at registration.
    #[arg(long)]
    phone: String,
    /// The phone's directory, if not the default (see `imza mobile register --phone-dir`).
    #[arg(long)]
    phone_dir: Option<PathBuf>,
    /// Approve every request (after the PIN).
    #[arg(long)]
    approve: bool,
    /// Refuse every request (USER_REFUSED).
    #[arg(long)]
    refuse: bool,
    /// Show requests but never answer (the relying party gets TIMEOUT).
    #[arg(long)]
    ignore: bool,
    /// Environment variable holding the signing PIN; without it the PIN is asked for on the
    /// terminal for each request. A wrong PIN from the variable is tried once: that request is
    /// refused (USER_REFUSED) and the app stops with exit code 2, instead of spending the
    /// remaining tries on the same PIN.
    #[arg(long)]
    pin_env: Option<String>,
    /// Stop after this many requests.
    #[arg(long)]
    count: Option<usize>,
    /// Stop after this many seconds without a request.
    #[arg(long)]
    idle_exit: Option<u64>,
    /// One JSON object per event on standard output.
    #[arg(long)]
    json: bool,
}

pub fn run(home: &Home, command: MobileCommand) -> CliResult {
    match command {
        MobileCommand::Rp(RpCommand::Add { name }) => {
            let store = open_store(home)?;
            let key = add_relying_party(store.as_ref(), &name, time::OffsetDateTime::now_utc())
                .map_err(store_failure)?;
            print_json(&json!({ "name": name, "apiKey": key.as_str() }))
        }
        MobileCommand::Rp(RpCommand::List { json }) => {
            let store = open_store(home)?;
            let parties = store.relying_parties().map_err(store_failure)?;
            if json {
                print_json(&json!(parties
                    .iter()
                    .map(|p| json!({
                        "name": p.name,
                        "createdAt": imza_core::clock::rfc3339(p.created_at),
                    }))
                    .collect::<Vec<_>>()))
            } else {
                for p in &parties {
                    println!(
                        "{}  registered {}",
                        p.name,
                        imza_core::clock::rfc3339(p.created_at)
                    );
                }
                Ok(())
            }
        }
        MobileCommand::Register(args) => register(home, &args),
        MobileCommand::Auth(args) => crate::mobile_auth::run(*args),
    }
}

fn open_store(home: &Home) -> Result<Arc<dyn MobileStore>, Failure> {
    // The CA store is opened first: it refuses a missing store (the mobile tables live beside
    // the CA's, which only `imza ca init` creates) and migrates it.
    let _pki = open_pki(home)?;
    open_mobile_store(home)
}

/// The mobile signature tables in the store of `home`, on either engine; created there if
/// missing, so open the CA store first (it refuses a place without an imza store).
pub(crate) fn open_mobile_store(home: &Home) -> Result<Arc<dyn MobileStore>, Failure> {
    imza_mobile_sign::store::open(&home.store).map_err(store_failure)
}

/// The subject both certificates carry.
fn register_subject(args: &RegisterArgs) -> Result<String, Failure> {
    let serial = format!("PNOAZ-{}", args.national_id);
    match (&args.subject, &args.given_name, &args.surname) {
        (Some(subject), _, _) => {
            if !subject.contains(&format!("serialNumber={serial}")) {
                return Err(input(format!(
                    "--subject must carry serialNumber={serial} (the national identity number)"
                )));
            }
            Ok(subject.clone())
        }
        (None, Some(given), Some(surname)) => {
            for (flag, value) in [("--given-name", given), ("--surname", surname)] {
                if value.trim().is_empty() || value.contains([',', '=', '+', '\\', '"']) {
                    return Err(input(format!(
                        "{flag} must be a non-empty name without , = + \\ or \""
                    )));
                }
            }
            Ok(format!(
                "CN={given} {surname},givenName={given},SN={surname},serialNumber={serial},C=AZ"
            ))
        }
        _ => Err(input("give --given-name and --surname, or --subject")),
    }
}

/// The demo's phone (`imza demo`): registered like `imza mobile register` would, with its keys
/// in PIN-encrypted files under `dir`.
pub(crate) fn register_demo_phone(
    home: &Home,
    (phone, national_id, given_name, surname): (&str, &str, &str, &str),
    dir: &Path,
    pin: &str,
) -> CliResult {
    let args = RegisterArgs {
        phone: phone.to_string(),
        national_id: national_id.to_string(),
        given_name: Some(given_name.to_string()),
        surname: Some(surname.to_string()),
        subject: None,
        ca: "mobile".to_string(),
        pin_env: None,
        mss_url: "http://127.0.0.1:8080".to_string(),
        phone_dir: Some(dir.to_path_buf()),
        pkcs11_module: None,
        token: None,
        ca_pin_env: None,
        json: false,
    };
    register_with_pin(home, &args, None, pin)
}

fn register(home: &Home, args: &RegisterArgs) -> CliResult {
    // The PIN is read once the request is known to be acceptable.
    register_with_pin(home, args, args.pin_env.as_deref(), "")
}

/// Registers a phone; the PIN comes from `pin_env` (or the terminal) when `pin` is empty.
fn register_with_pin(
    home: &Home,
    args: &RegisterArgs,
    pin_env: Option<&str>,
    pin: &str,
) -> CliResult {
    let phone = normalize_phone_number(&args.phone).map_err(|e| input(e.to_string()))?;
    check_national_id(&args.national_id).map_err(|e| input(e.to_string()))?;
    let subject_text = register_subject(args)?;
    let subject = parse_dn(&subject_text)?;
    let dir = args
        .phone_dir
        .clone()
        .unwrap_or_else(|| default_phone_dir(&phone));

    // Everything the CA will check is checked before any key is made.
    let pki = open_pki(home)?;
    let store = open_mobile_store(home)?;
    let auth_profile = pki.profiles().get("citizen-auth")?.clone();
    let sign_profile = pki.profiles().get("citizen-sign")?.clone();
    let ca_pin = args.ca_pin_env.clone().map(PinSource::Env);
    let authority = pki.authority(&args.ca, ca_pin.as_ref())?;
    let options = |profile| IssueOptions {
        profile,
        validity_days: None,
        backdate: DEFAULT_BACKDATE,
    };
    for profile in [&auth_profile, &sign_profile] {
        authority.check_can_issue(&options(profile), pki.now())?;
        authority.check_request(
            &IssueRequest {
                subject: subject.clone(),
                public_key: Vec::new(),
                key_algorithm: KeyAlgorithm::EcP256,
                alt_names: Vec::new(),
                asks_for_ca: false,
            },
            &options(profile),
        )?;
    }
    let pin = if pin.is_empty() {
        secret(pin_env, "new signing PIN")?
    } else {
        zeroize::Zeroizing::new(pin.to_string())
    };
    let keys = match (&args.pkcs11_module, &args.token) {
        (Some(module), Some(label)) => KeyStoreSpec::Pkcs11 {
            module: module.clone(),
            token_label: label.clone(),
        },
        _ => KeyStoreSpec::File,
    };

    let enrollment = PhoneEnrollment::begin(&dir, &phone, &args.national_id, keys, &pin)
        .map_err(phone_failure)?;
    let issue = |profile, key: &dyn SigningKey| -> Result<CertificateRecord, Failure> {
        let csr = build_csr(&subject, key)?;
        let request = IssueRequest::from(parse_csr(&csr)?);
        authority
            .issue(std::slice::from_ref(&request), &options(profile))?
            .pop()
            .ok_or_else(|| Failure::Internal("nothing was issued".into()))
    };
    let mut issued: Vec<CertificateRecord> = Vec::new();
    let outcome = (|| {
        issued.push(issue(&auth_profile, enrollment.auth_key())?);
        issued.push(issue(&sign_profile, enrollment.sign_key())?);
        let (auth, sign) = (&issued[0], &issued[1]);
        let registration = register_device(
            store.as_ref(),
            &NewDevice {
                phone_number: phone.clone(),
                national_id: args.national_id.clone(),
                auth: RegisteredCertificate {
                    ca: auth.ca.clone(),
                    der: auth.der.clone(),
                },
                sign: RegisteredCertificate {
                    ca: sign.ca.clone(),
                    der: sign.der.clone(),
                },
            },
            pki.now(),
        )
        .map_err(store_failure)?;
        let chain = crate::serve::chain_below_root(&pki, &args.ca)?;
        let completed = enrollment.complete(
            &auth.der,
            &sign.der,
            &chain,
            &registration.device_id,
            &registration.device_secret,
            &args.mss_url,
        );
        if let Err(e) = completed {
            let _ =
                store.deactivate_device(&registration.device_id, time::OffsetDateTime::now_utc());
            return Err(phone_failure(e));
        }
        Ok(registration)
    })();

    let registration = match outcome {
        Ok(registration) => registration,
        Err(failure) => {
            // Certificates issued for keys that no phone keeps are withdrawn at once.
            for record in &issued {
                if let Err(e) = pki.revoke(
                    &record.ca,
                    &record.serial,
                    CrlReason::CessationOfOperation,
                    None,
                ) {
                    eprintln!(
                        "imza: certificate {} could not be revoked after the failed \
                         registration: {e}",
                        serial_hex(&record.serial)
                    );
                }
            }
            return Err(failure);
        }
    };
    let mut superseded = Vec::new();
    if let Some(old) = &registration.replaced {
        for cert in [&old.auth, &old.sign] {
            let serial = certificate_serial(&cert.der)?;
            match pki.revoke(&cert.ca, &serial, CrlReason::Superseded, None) {
                Ok(_) => superseded.push(serial_hex(&serial)),
                Err(imza_ca::CaError::Store(imza_ca::store::StoreError::AlreadyRevoked {
                    ..
                })) => {}
                Err(e) => eprintln!(
                    "imza: the replaced device's certificate {} could not be revoked: {e}",
                    serial_hex(&serial)
                ),
            }
        }
    }
    let (auth, sign) = (&issued[0], &issued[1]);
    if args.json {
        print_json(&json!({
            "phone": phone,
            "nationalId": args.national_id,
            "subject": auth.subject,
            "deviceId": registration.device_id,
            "authSerial": serial_hex(&auth.serial),
            "signSerial": serial_hex(&sign.serial),
            "ca": args.ca,
            "phoneDir": dir.display().to_string(),
            "mssUrl": args.mss_url,
            "supersededSerials": superseded,
        }))
    } else {
        println!(
            "registered {phone} for {}: authentication certificate {}, signing certificate {} \
             (CA {}); keys and wallet in {}; the phone talks to {}",
            auth.subject,
            serial_hex(&auth.serial),
            serial_hex(&sign.serial),
            args.ca,
            dir.display(),
            args.mss_url
        );
        if !superseded.is_empty() {
            println!(
                "the phone's previous device was replaced; its certificates {} are revoked \
                 (superseded)",
                superseded.join(", ")
            );
        }
        Ok(())
    }
}

fn certificate_serial(der: &[u8]) -> Result<Vec<u8>, Failure> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| Failure::Internal(format!("a registered certificate is unreadable: {e}")))?;
    Ok(cert.tbs_certificate.serial_number.as_bytes().to_vec())
}

/// The exit code of the simulated phone's failure ([`Failure`]'s rule): the signature service
/// unreachable or failing, the phone's key store or its disk failing is the environment (3);
/// a PIN, a wallet, a certificate or a field given is input (2).
pub(crate) fn phone_failure(e: imza_mobile_sign::phone::PhoneError) -> Failure {
    use imza_mobile_sign::http_client::ApiError;
    use imza_mobile_sign::phone::PhoneError;
    match e {
        PhoneError::Io { ref source, .. } => crate::output::io_class(source, e.to_string()),
        PhoneError::Service(ApiError::Refused { status, .. }) if status < 500 => {
            Failure::Input(e.to_string())
        }
        PhoneError::Service(_) | PhoneError::KeyStore(_) => Failure::Environment(e.to_string()),
        PhoneError::PinFormat
        | PhoneError::PinIncorrect { .. }
        | PhoneError::PinBlocked
        | PhoneError::PinRejected { .. }
        | PhoneError::WalletExists(_)
        | PhoneError::NoWallet(_)
        | PhoneError::Wallet { .. }
        | PhoneError::Certificate { .. }
        | PhoneError::Invalid(_)
        | PhoneError::DigestLength { .. }
        | PhoneError::PinUnavailable(_) => Failure::Input(e.to_string()),
    }
}

/// The wallet of `phone` in `dir` (or the default directory), checked to be that phone's.
fn open_wallet(phone: &str, dir: Option<&Path>) -> Result<Wallet, Failure> {
    let phone = normalize_phone_number(phone).map_err(|e| input(e.to_string()))?;
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_phone_dir(&phone));
    let wallet = Wallet::open(&dir).map_err(phone_failure)?;
    if wallet.phone_number() != phone {
        return Err(input(format!(
            "the wallet in {} belongs to {}, not {phone}",
            dir.display(),
            wallet.phone_number()
        )));
    }
    Ok(wallet)
}

pub fn run_phone(command: PhoneCommand) -> CliResult {
    let args = match command {
        PhoneCommand::Run(args) => args,
        PhoneCommand::Qr(args) => {
            return crate::phone_qr::run(
                &args,
                open_wallet(&args.phone, args.phone_dir.as_deref())?,
            )
        }
    };
    let wallet = open_wallet(&args.phone, args.phone_dir.as_deref())?;
    let decision = if args.approve {
        Decision::Approve
    } else if args.refuse {
        Decision::Refuse
    } else {
        Decision::Ignore
    };
    let pin = match (&decision, &args.pin_env) {
        (Decision::Approve, Some(var)) => PinEntry::Value(secret(Some(var), "signing PIN")?),
        // Asked on the terminal for each request (again after a wrong one); an unreadable
        // answer counts as the citizen cancelling (USER_REFUSED).
        (Decision::Approve, None) => {
            PinEntry::Ask(Box::new(|_, _| secret(None, "signing PIN").ok()))
        }
        _ => PinEntry::Prompt,
    };
    let mut app = PhoneApp::new(wallet, decision, pin).map_err(phone_failure)?;
    let json = args.json;
    let mut screen = |event: &PhoneEvent| show(event, json);
    app.run(
        args.count,
        args.idle_exit.map(Duration::from_secs),
        &mut screen,
    )
    .map_err(phone_failure)?;
    Ok(())
}

/// What the phone's screen shows, one line per event (a JSON object with --json). Flushed at
/// once: a relying party's test reads the verification code while the phone waits.
fn show(event: &PhoneEvent, json: bool) {
    use std::io::Write;
    let line = match event {
        PhoneEvent::Request(request) => {
            if json {
                json!({
                    "event": "request",
                    "sessionId": request.session_id,
                    "kind": request.kind.name(),
                    "relyingParty": request.relying_party,
                    "displayText": request.display_text,
                    "verificationCode": request.verification_code,
                })
                .to_string()
            } else {
                format!(
                    "{} asks for your {}{}: verification code {}",
                    request.relying_party,
                    request.kind.name(),
                    request
                        .display_text
                        .as_deref()
                        .map(|t| format!(" ({t:?})"))
                        .unwrap_or_default(),
                    request.verification_code
                )
            }
        }
        PhoneEvent::WrongPin { tries_left } => {
            if json {
                json!({ "event": "wrongPin", "triesLeft": tries_left }).to_string()
            } else {
                format!("wrong PIN, {tries_left} tries left")
            }
        }
        PhoneEvent::Answered { session_id, result } => {
            if json {
                json!({ "event": "answered", "sessionId": session_id, "result": result.name() })
                    .to_string()
            } else {
                format!("answered {}: {}", session_id, result.name())
            }
        }
        other => {
            if json {
                json!({ "event": "note", "text": format!("{other}") }).to_string()
            } else {
                format!("{other}")
            }
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
