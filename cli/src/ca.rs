//! `imza ca ...`, `imza profile ...`, `imza audit ...`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use rayon::prelude::*;
use serde_json::{json, Value};
use time::Duration;
use zeroize::Zeroizing;

use imza_ca::authority::DEFAULT_BACKDATE;
use imza_ca::crl_shards::MAX_CRL_SHARDS;
use imza_ca::csr::parse_csr;
use imza_ca::keyref::KeyBackend;
use imza_ca::store::{CertificateRecord, StatusFilter};
use imza_ca::{CaError, InitCa, IssueOptions, IssueRequest, Pki};
use imza_core::cert::{parse_serial_hex, serial_hex};
use imza_core::clock::{parse_rfc3339, rfc3339, SystemClock};
use imza_core::crl::{parse_reason, reason_name};
use imza_core::ext::AltName;
use imza_core::key::pkcs11::PinSource;
use imza_core::key::software::SoftwareKey;
use imza_core::name::parse_dn;
use imza_core::{pem, KeyAlgorithm, SigningKey};
use imza_store::StoreUrl;

use crate::output::{
    self, ensure_absent, input, print_json, read_limited, sync_dir, write_new, write_replace,
    write_whole_many, CliResult, Failure, ReplacingFiles, MAX_CSR_BYTES,
};

/// Certificates committed per transaction in a batch: each commit is one fsync.
const BATCH_CHUNK: usize = 500;
/// Most CSR files one batch reads.
const MAX_BATCH_FILES: usize = 1_000_000;

#[derive(Subcommand)]
pub enum CaCommand {
    /// Create a CA: a self-signed root, or with --parent a subordinate issuing CA.
    ///
    /// The key is generated in software (written to DATA_DIR/keys/NAME.key.pem, mode 0600) or,
    /// with --pkcs11-module/--pkcs11-token, inside the token, where it never leaves.
    Init(InitArgs),
    /// Print a CA's certificate (PEM, or DER with --der) on stdout.
    Cert {
        /// The CA's name.
        #[arg(long)]
        ca: String,
        /// Write DER instead of PEM.
        #[arg(long)]
        der: bool,
    },
    /// Issue a certificate from a CSR, for a new key, or for a directory of CSRs.
    Issue(IssueArgs),
    /// Revoke a certificate; the next CRL lists it.
    Revoke {
        #[arg(long)]
        ca: String,
        /// Serial number in hex (as `imza ca list` prints it; colons and 0x allowed).
        #[arg(long)]
        serial: String,
        /// RFC 5280 reason code.
        #[arg(long, value_enum, default_value_t = ReasonArg::Unspecified)]
        reason: ReasonArg,
        /// When the key is known or suspected to have been compromised (RFC 3339).
        #[arg(long)]
        invalidity_date: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign a fresh CRL (CRL number + 1) over every revoked certificate of the CA; for a CA
    /// whose CRL is partitioned (`ca init --crl-shards`), a fresh CRL for every shard.
    Crl {
        #[arg(long)]
        ca: String,
        /// Where to write the CRL (replaced if it exists). For a partitioned CA a directory
        /// (created if missing) that gets one file per shard, SHARD.crl, each replaced: the
        /// layout `imza serve` publishes them in (/crl/NAME/SHARD.crl).
        #[arg(long)]
        out: PathBuf,
        /// Write DER instead of PEM.
        #[arg(long)]
        der: bool,
        /// Hours until nextUpdate.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=8784))]
        next_update_hours: u32,
        #[command(flatten)]
        pin: PinArgs,
    },
    /// List the CAs, or with --ca the certificates a CA issued.
    List {
        #[arg(long)]
        ca: Option<String>,
        /// Only certificates with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// At most this many certificates.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show one issued certificate: status, validity, revocation and the PEM.
    Show {
        #[arg(long)]
        ca: String,
        #[arg(long)]
        serial: String,
        #[arg(long)]
        json: bool,
    },
}

/// Where a new key (a CA's, a TSA unit's) is generated: software, or a PKCS#11 token.
#[derive(Args)]
pub(crate) struct NewKeyArgs {
    /// Key type.
    #[arg(long, default_value = "ec-p256", value_parser = parse_key_algorithm)]
    key: KeyAlgorithm,
    /// PKCS#11 module to generate the key in (e.g. /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long, requires = "pkcs11_token")]
    pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token.
    #[arg(long, requires = "pkcs11_module")]
    pkcs11_token: Option<String>,
    /// Environment variable holding the token's user PIN; it is remembered (the name, never
    /// the PIN) for later use of the key. Without it the PIN is asked for without echo.
    #[arg(long, requires = "pkcs11_module")]
    pkcs11_pin_env: Option<String>,
}

impl NewKeyArgs {
    pub(crate) fn into_parts(self) -> (KeyAlgorithm, KeyBackend) {
        let backend = match (self.pkcs11_module, self.pkcs11_token) {
            (Some(module), Some(token_label)) => KeyBackend::Pkcs11 {
                module,
                token_label,
                pin: self
                    .pkcs11_pin_env
                    .map(PinSource::Env)
                    .unwrap_or(PinSource::Prompt),
            },
            _ => KeyBackend::Software,
        };
        (self.key, backend)
    }
}

#[derive(Args)]
pub struct InitArgs {
    /// Short name of the CA (a-z, 0-9, '-'); used in URLs (/crl/NAME.crl, /ca/NAME.crt).
    #[arg(long)]
    name: String,
    /// Subject in RFC 4514 form, most specific first: "CN=AZ Root CA,O=...,C=AZ".
    #[arg(long)]
    subject: String,
    /// The issuing CA; without it a self-signed root is created.
    #[arg(long)]
    parent: Option<String>,
    #[command(flatten)]
    new_key: NewKeyArgs,
    /// Validity in days (defaults: root 7305, subordinate 3652).
    #[arg(long)]
    validity_days: Option<u32>,
    /// Base URL for the CRL, OCSP and CA-certificate URLs put into issued certificates
    /// (default: the parent's, or http://127.0.0.1:8080 for a root).
    #[arg(long)]
    base_url: Option<String>,
    /// Partition the CA's CRL into this many shards (RFC 5280 §5.2.5 issuing distribution
    /// points), for a CA of a national population: each certificate is put into one shard when
    /// it is issued and names that shard's CRL (BASE_URL/crl/NAME/SHARD.crl) as its CRL
    /// distribution point, so every CRL stays small. Fixed for the CA's life; only a
    /// subordinate CA. 0 or 1: one CRL.
    #[arg(
        long,
        default_value_t = 0,
        requires = "parent",
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_CRL_SHARDS))
    )]
    crl_shards: u32,
    /// Environment variable holding the PIN of the parent CA's key (the CA that signs), if
    /// it is in PKCS#11 and its remembered variable should not be used. (Formerly
    /// --parent-pin-env, still accepted until the next release.)
    #[arg(long = "ca-pin-env", alias = "parent-pin-env", value_name = "VAR")]
    parent_pin_env: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct IssueArgs {
    /// The issuing CA.
    #[arg(long)]
    ca: String,
    /// Certificate profile (see `imza profile list`).
    #[arg(long)]
    profile: String,
    /// A PKCS#10 request (PEM or DER); its signature must verify.
    #[arg(long, conflicts_with_all = ["subject", "csr_dir"], required_unless_present_any = ["subject", "csr_dir"])]
    csr: Option<PathBuf>,
    /// Subject for a key imza generates (with --new-key), RFC 4514 form.
    #[arg(long, requires_all = ["new_key", "p12_out", "p12_pass_env"], conflicts_with = "csr_dir")]
    subject: Option<String>,
    /// Generate the subject's key (ec-p256, ec-p384, rsa-2048, ...); delivered in --p12-out.
    #[arg(long, value_parser = parse_key_algorithm, requires = "subject")]
    new_key: Option<KeyAlgorithm>,
    /// PKCS#12 file for the new key, its certificate and chain (mode 0600).
    #[arg(long, requires = "subject")]
    p12_out: Option<PathBuf>,
    /// Environment variable holding the PKCS#12 password.
    #[arg(long, requires = "subject")]
    p12_pass_env: Option<String>,
    /// Issue for every CSR (*.csr, *.pem, *.der) in this directory.
    #[arg(long, requires = "out_dir")]
    csr_dir: Option<PathBuf>,
    /// Directory for the batch's certificates (NAME.pem per NAME.csr). Each file appears
    /// whole or not at all (written as .NAME.pem.XXXXXX.partial, synced, then renamed); if the
    /// batch stops part-way it says how many certificates the store has and how many files
    /// were written.
    #[arg(long, requires = "csr_dir")]
    out_dir: Option<PathBuf>,
    /// subjectAltName to include, `email:...`, `dns:...`, `ip:...` or `uri:...` (repeatable);
    /// the profile decides which kinds are allowed.
    #[arg(long)]
    san: Vec<String>,
    /// Validity in days (default: the profile's; at most its maximum).
    #[arg(long)]
    validity_days: Option<u32>,
    /// Seconds notBefore is set back to tolerate relying parties' clock skew.
    #[arg(long, default_value_t = DEFAULT_BACKDATE.whole_seconds() as u32, value_parser = clap::value_parser!(u32).range(0..=86400))]
    backdate_seconds: u32,
    /// Output file for the certificate (required unless --csr-dir).
    #[arg(long, required_unless_present = "csr_dir")]
    out: Option<PathBuf>,
    /// Write DER instead of PEM.
    #[arg(long)]
    der: bool,
    #[command(flatten)]
    pin: PinArgs,
    /// Print what was issued as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct PinArgs {
    /// Environment variable holding the CA key's PKCS#11 PIN (overrides the one remembered
    /// at `ca init`). (Formerly --pin-env, still accepted until the next release.)
    #[arg(long = "ca-pin-env", alias = "pin-env", value_name = "VAR")]
    pin_env: Option<String>,
}

impl PinArgs {
    fn source(&self) -> Option<PinSource> {
        self.pin_env.clone().map(PinSource::Env)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Valid,
    Revoked,
    Expired,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ReasonArg {
    #[value(name = "unspecified")]
    Unspecified,
    #[value(name = "keyCompromise")]
    KeyCompromise,
    #[value(name = "caCompromise")]
    CaCompromise,
    #[value(name = "affiliationChanged")]
    AffiliationChanged,
    #[value(name = "superseded")]
    Superseded,
    #[value(name = "cessationOfOperation")]
    CessationOfOperation,
    #[value(name = "certificateHold")]
    CertificateHold,
    #[value(name = "privilegeWithdrawn")]
    PrivilegeWithdrawn,
}

impl ReasonArg {
    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_else(|| "unspecified".into())
    }
}

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// List the profiles (built-in and overrides from DATA_DIR/profiles).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a profile as TOML (copy it to DATA_DIR/profiles/NAME.toml to override it).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit chain end to end; exit 1 naming the first broken entry.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn parse_key_algorithm(s: &str) -> Result<KeyAlgorithm, String> {
    s.parse().map_err(|e: imza_core::CoreError| e.to_string())
}

/// Where a command finds the PKI: the store, and this machine's data directory (keys,
/// profiles).
pub struct Home {
    pub data_dir: PathBuf,
    pub store: StoreUrl,
}

impl Home {
    /// From `--data-dir` and `--store` / IMZA_STORE (`store`; without it, the embedded store
    /// in the data directory). A password in a `--store` given on the command line is refused:
    /// `ps` shows every process's arguments to every user.
    pub fn new(
        data_dir: &Path,
        store: Option<&str>,
        on_command_line: bool,
    ) -> Result<Home, Failure> {
        let store = match store {
            None => Pki::default_store(data_dir),
            Some(text) => text
                .parse::<StoreUrl>()
                .map_err(|e| input(format!("--store: {e}")))?,
        };
        if on_command_line && store.has_password() {
            return Err(input(
                "--store: the URL carries a password, which `ps` would show to every user; \
                 put the URL in IMZA_STORE, or the password in PGPASSWORD or a password file \
                 (~/.pgpass, PGPASSFILE), and leave it out of --store",
            ));
        }
        Ok(Home {
            data_dir: data_dir.to_path_buf(),
            store,
        })
    }
}

/// The PKI of the existing store, for every command but those that create one: a missing store
/// is refused (exit 2) and nothing is created, so a mistyped `--data-dir` or `--store` cannot
/// pass for an empty PKI.
pub fn open_pki(home: &Home) -> Result<Pki, Failure> {
    Pki::open(&home.data_dir, &home.store, Arc::new(SystemClock)).map_err(|e| match e {
        CaError::NoStore { .. } => input(format!(
            "{e}: check --data-dir or IMZA_DATA_DIR and --store or IMZA_STORE, or create one \
             with imza ca init"
        )),
        other => other.into(),
    })
}

/// The PKI, its store created (SQLite file 0600, or imza's tables in an existing PostgreSQL
/// database) and its data directory (0700) if missing: for the commands that create a PKI,
/// `imza ca init` of a root and `imza demo`.
pub fn create_pki(home: &Home) -> Result<Pki, Failure> {
    Ok(Pki::open_or_create(
        &home.data_dir,
        &home.store,
        Arc::new(SystemClock),
    )?)
}

pub fn run(home: &Home, command: CaCommand) -> CliResult {
    let pki = match &command {
        // A root starts a PKI; a subordinate CA needs its parent's store.
        CaCommand::Init(args) if args.parent.is_none() => create_pki(home)?,
        _ => open_pki(home)?,
    };
    match command {
        CaCommand::Init(args) => init(&pki, args),
        CaCommand::Cert { ca, der } => {
            let record = pki.ca(&ca)?;
            emit_certificate(&record.certificate, der)
        }
        CaCommand::Issue(args) => issue(&pki, args),
        CaCommand::Revoke {
            ca,
            serial,
            reason,
            invalidity_date,
            json,
        } => {
            let serial = parse_serial_hex(&serial)?;
            let reason = parse_reason(&reason.name())?;
            let invalidity = invalidity_date.as_deref().map(parse_rfc3339).transpose()?;
            let record = pki.revoke(&ca, &serial, reason, invalidity)?;
            if json {
                print_json(&certificate_json(&record, pki.now()))
            } else {
                println!(
                    "revoked {} ({}) of CA {ca}: {}",
                    serial_hex(&serial),
                    record.subject,
                    reason_name(reason)
                );
                Ok(())
            }
        }
        CaCommand::Crl {
            ca,
            out,
            der,
            next_update_hours,
            pin,
        } => {
            let authority = pki.authority(&ca, pin.source().as_ref())?;
            let validity = Duration::hours(next_update_hours.into());
            if authority.record().crl_shards > 1 {
                return write_crl_shards(&authority, validity, &out, der);
            }
            // A bar only for long work (100,000+ entries), and only on a terminal.
            let mut bar: Option<indicatif::ProgressBar> = None;
            let signed = authority.sign_crl(validity, &mut |done, total| {
                if total >= 100_000 {
                    bar.get_or_insert_with(|| output::progress(total as u64, "CRL entries"))
                        .set_position(done as u64);
                }
            })?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let crl = &signed.record;
            write_replace(&out, &crl_bytes(&crl.der, der)?)?;
            eprintln!(
                "CRL number {} of CA {ca}: {} revoked, next update {}, written to {}",
                crl.number,
                signed.revoked,
                rfc3339(crl.next_update),
                out.display()
            );
            Ok(())
        }
        CaCommand::List { ca: None, json, .. } => list_cas(&pki, json),
        CaCommand::List {
            ca: Some(ca),
            status,
            limit,
            json,
        } => {
            let now = pki.now();
            let filter = match status {
                None => StatusFilter::All,
                Some(StatusArg::Valid) => StatusFilter::Valid { now },
                Some(StatusArg::Revoked) => StatusFilter::Revoked,
                Some(StatusArg::Expired) => StatusFilter::Expired { now },
            };
            let records = pki.list(&ca, filter, limit)?;
            if json {
                return print_json(&Value::Array(
                    records.iter().map(|r| certificate_json(r, now)).collect(),
                ));
            }
            println!(
                "{:<34} {:<8} {:<13} {:<21} SUBJECT",
                "SERIAL", "STATUS", "PROFILE", "NOT AFTER"
            );
            for r in &records {
                println!(
                    "{:<34} {:<8} {:<13} {:<21} {}",
                    serial_hex(&r.serial),
                    status_of(r, now),
                    r.profile,
                    rfc3339(r.not_after),
                    r.subject
                );
            }
            Ok(())
        }
        CaCommand::Show { ca, serial, json } => {
            let record = pki.certificate(&ca, &parse_serial_hex(&serial)?)?;
            let now = pki.now();
            let mut value = certificate_json(&record, now);
            value["pem"] = json!(pem::encode(pem::CERTIFICATE, &record.der)?);
            if json {
                return print_json(&value);
            }
            for key in [
                "ca",
                "serial",
                "subject",
                "profile",
                "status",
                "not_before",
                "not_after",
                "issued_at",
                "revoked_at",
                "reason",
                "invalidity_date",
            ] {
                if let Some(v) = value.get(key).filter(|v| !v.is_null()) {
                    println!(
                        "{key:<16} {}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    );
                }
            }
            print!("{}", value["pem"].as_str().unwrap_or_default());
            Ok(())
        }
    }
}

fn status_of(r: &CertificateRecord, now: time::OffsetDateTime) -> &'static str {
    match (&r.revocation, r.not_after < now) {
        (Some(_), _) => "revoked",
        (None, true) => "expired",
        (None, false) => "valid",
    }
}

/// A CRL as written: DER, or PEM.
fn crl_bytes(crl: &[u8], der: bool) -> Result<Vec<u8>, Failure> {
    Ok(if der {
        crl.to_vec()
    } else {
        pem::encode(pem::X509_CRL, crl)?.into_bytes()
    })
}

/// `imza ca crl` of a partitioned CA: every shard's CRL signed and stored, and written to
/// `dir/SHARD.crl` as it comes (one in memory at a time), all replacing the old files at once.
fn write_crl_shards(
    authority: &imza_ca::CertificateAuthority<'_>,
    validity: Duration,
    dir: &Path,
    der: bool,
) -> CliResult {
    std::fs::create_dir_all(dir).map_err(|e| {
        input(format!(
            "--out {}: a partitioned CA's CRLs go to a directory, which cannot be made: {e}",
            dir.display()
        ))
    })?;
    let mut files = ReplacingFiles::new(dir);
    let mut encoding: Result<(), Failure> = Ok(());
    let run = authority.sign_crls(validity, &mut |_, _| {}, &mut |signed| {
        let shard = signed.record.shard.unwrap_or_default();
        match crl_bytes(&signed.record.der, der) {
            Ok(bytes) => files.stage(dir.join(format!("{shard}.crl")), &bytes),
            Err(e) => {
                if encoding.is_ok() {
                    encoding = Err(e);
                }
            }
        }
    })?;
    encoding?;
    let written = files.commit()?;
    eprintln!(
        "CA {}: {} shard CRLs signed (numbers {} to {}), {} revoked in all, next update {}, \
         written to {} ({} files)",
        authority.record().name,
        run.crls,
        run.numbers.0,
        run.numbers.1,
        run.revoked,
        rfc3339(run.next_update),
        dir.display(),
        written.len()
    );
    Ok(())
}

fn certificate_json(r: &CertificateRecord, now: time::OffsetDateTime) -> Value {
    json!({
        "ca": r.ca,
        "serial": serial_hex(&r.serial),
        "subject": r.subject,
        "profile": r.profile,
        "status": status_of(r, now),
        "not_before": rfc3339(r.not_before),
        "not_after": rfc3339(r.not_after),
        "issued_at": rfc3339(r.issued_at),
        "revoked_at": r.revocation.map(|v| rfc3339(v.revoked_at)),
        "reason": r.revocation.map(|v| reason_name(v.reason)),
        "invalidity_date": r.revocation.and_then(|v| v.invalidity_date.map(rfc3339)),
        "crl_shard": r.crl_shard,
    })
}

fn emit_certificate(der: &[u8], as_der: bool) -> CliResult {
    use std::io::Write;
    let bytes = if as_der {
        der.to_vec()
    } else {
        pem::encode(pem::CERTIFICATE, der)?.into_bytes()
    };
    std::io::stdout()
        .write_all(&bytes)
        .map_err(|e| Failure::Internal(e.to_string()))
}

fn list_cas(pki: &Pki, json: bool) -> CliResult {
    let cas = pki.store().cas().map_err(CaError::from)?;
    let rows: Vec<Value> = cas
        .iter()
        .map(|ca| {
            let cert = imza_core::cert::parse_certificate(&ca.certificate).ok();
            json!({
                "name": ca.name,
                "parent": ca.parent,
                "subject": cert.as_ref().map(|c| imza_core::name::format_dn(&c.tbs_certificate.subject)),
                "not_after": cert.as_ref().map(|c| rfc3339(imza_core::clock::from_x509_time(&c.tbs_certificate.validity.not_after))),
                "key": ca.key.describe(),
                "base_url": ca.base_url,
                "crl_shards": ca.crl_shards,
            })
        })
        .collect();
    if json {
        return print_json(&Value::Array(rows));
    }
    println!(
        "{:<16} {:<16} {:<21} {:<40} SUBJECT",
        "NAME", "PARENT", "NOT AFTER", "KEY"
    );
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
        println!(
            "{:<16} {:<16} {:<21} {:<40} {}",
            s("name"),
            s("parent"),
            s("not_after"),
            s("key"),
            s("subject")
        );
    }
    Ok(())
}

fn init(pki: &Pki, args: InitArgs) -> CliResult {
    let (algorithm, backend) = args.new_key.into_parts();
    let record = pki.init_ca(InitCa {
        name: args.name,
        subject: args.subject,
        parent: args.parent,
        algorithm,
        validity_days: args.validity_days,
        base_url: args.base_url,
        backend,
        parent_pin: args.parent_pin_env.map(PinSource::Env),
        crl_shards: args.crl_shards,
    })?;
    if args.json {
        return print_json(
            &json!({ "name": record.name, "parent": record.parent, "key": record.key.describe(), "base_url": record.base_url, "crl_shards": record.crl_shards }),
        );
    }
    println!(
        "created CA {} ({}), key: {}",
        record.name,
        record
            .parent
            .as_deref()
            .map(|p| format!("issued by {p}"))
            .unwrap_or_else(|| "self-signed root".into()),
        record.key.describe()
    );
    Ok(())
}

fn parse_sans(sans: &[String]) -> Result<Vec<AltName>, Failure> {
    sans.iter()
        .map(|s| s.parse::<AltName>().map_err(Failure::from))
        .collect()
}

fn encode_cert(der: &[u8], as_der: bool) -> Result<Vec<u8>, Failure> {
    Ok(if as_der {
        der.to_vec()
    } else {
        pem::encode(pem::CERTIFICATE, der)?.into_bytes()
    })
}

fn issue(pki: &Pki, args: IssueArgs) -> CliResult {
    let profile = pki
        .profiles()
        .get(&args.profile)
        .map_err(Failure::from)?
        .clone();
    pki.ca(&args.ca)?;
    let extra_sans = parse_sans(&args.san)?;
    let options = IssueOptions {
        profile: &profile,
        validity_days: args.validity_days,
        backdate: Duration::seconds(args.backdate_seconds.into()),
    };
    if let (Some(dir), Some(out_dir)) = (&args.csr_dir, &args.out_dir) {
        return issue_batch(pki, &args, &options, dir, out_dir, &extra_sans);
    }
    let out = args.out.clone().ok_or_else(|| input("--out is required"))?;
    ensure_absent(&out)?;
    let (request, new_key) = if let Some(csr) = &args.csr {
        let mut request =
            IssueRequest::from(parse_csr(&read_limited(csr, MAX_CSR_BYTES, "--csr")?)?);
        request.alt_names.extend(extra_sans);
        (request, None)
    } else {
        let subject = parse_dn(args.subject.as_deref().unwrap_or_default())?;
        let algorithm = args
            .new_key
            .ok_or_else(|| input("--new-key is required with --subject"))?;
        let p12_out = args
            .p12_out
            .clone()
            .ok_or_else(|| input("--p12-out is required with --new-key"))?;
        ensure_absent(&p12_out)?;
        let var = args
            .p12_pass_env
            .clone()
            .ok_or_else(|| input("--p12-pass-env is required with --new-key"))?;
        let password = Zeroizing::new(std::env::var(&var).map_err(|_| {
            input(format!(
                "environment variable {var} (the PKCS#12 password) is not set"
            ))
        })?);
        if password.len() < 4 {
            return Err(input(format!(
                "the PKCS#12 password in {var} is shorter than 4 characters"
            )));
        }
        let key = SoftwareKey::generate(algorithm)?;
        let request = IssueRequest {
            subject,
            public_key: key.public_key_der()?,
            key_algorithm: algorithm,
            alt_names: extra_sans,
            asks_for_ca: false,
        };
        (request, Some((key, p12_out, password)))
    };
    let authority = pki.authority(&args.ca, args.pin.source().as_ref())?;
    let record = authority
        .issue(std::slice::from_ref(&request), &options)?
        .pop()
        .ok_or_else(|| Failure::Internal("nothing was issued".into()))?;
    // Durable in the store from here on; now hand it out.
    write_new(&out, &encode_cert(&record.der, args.der)?, false)?;
    if let Some((key, p12_out, password)) = new_key {
        let p12 = pkcs12(
            &key,
            &record.der,
            &authority.record().certificate,
            &request,
            &password,
        )?;
        write_new(&p12_out, &p12, true)?;
    }
    if args.json {
        print_json(&certificate_json(&record, pki.now()))
    } else {
        println!(
            "issued {} to {} ({}), written to {}",
            serial_hex(&record.serial),
            record.subject,
            record.profile,
            out.display()
        );
        Ok(())
    }
}

fn pkcs12(
    key: &SoftwareKey,
    cert_der: &[u8],
    ca_der: &[u8],
    request: &IssueRequest,
    password: &str,
) -> Result<Vec<u8>, Failure> {
    let internal = |e: openssl::error::ErrorStack| Failure::Internal(format!("PKCS#12: {e}"));
    let cert = openssl::x509::X509::from_der(cert_der).map_err(internal)?;
    let mut chain = openssl::stack::Stack::new().map_err(internal)?;
    chain
        .push(openssl::x509::X509::from_der(ca_der).map_err(internal)?)
        .map_err(internal)?;
    let name = imza_core::name::attribute_values(&request.subject, imza_core::oids::AT_COMMON_NAME)
        .pop()
        .unwrap_or_default();
    let p12 = openssl::pkcs12::Pkcs12::builder()
        .name(&name)
        .pkey(key.pkey())
        .cert(&cert)
        .ca(chain)
        .build2(password)
        .map_err(internal)?;
    p12.to_der().map_err(internal)
}

fn issue_batch(
    pki: &Pki,
    args: &IssueArgs,
    options: &IssueOptions<'_>,
    dir: &Path,
    out_dir: &Path,
    extra_sans: &[AltName],
) -> CliResult {
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| input(format!("cannot read {}: {e}", dir.display())))?
    {
        let path = entry
            .map_err(|e| input(format!("cannot read {}: {e}", dir.display())))?
            .path();
        let is_csr = path
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| ["csr", "pem", "der", "req"].contains(&x));
        if is_csr && path.is_file() {
            if files.len() == MAX_BATCH_FILES {
                return Err(input(format!(
                    "more than {MAX_BATCH_FILES} CSRs in {}",
                    dir.display()
                )));
            }
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(input(format!(
            "no *.csr, *.pem, *.der or *.req files in {}",
            dir.display()
        )));
    }
    let ext = if args.der { "der" } else { "pem" };
    let outputs: Vec<PathBuf> = files
        .iter()
        .map(|f| {
            out_dir.join(format!(
                "{}.{ext}",
                f.file_stem().and_then(|s| s.to_str()).unwrap_or("cert")
            ))
        })
        .collect();
    refuse_shared_outputs(&files, &outputs)?;
    for out in &outputs {
        ensure_absent(out)?;
    }
    let authority = pki.authority(&args.ca, args.pin.source().as_ref())?;
    authority.check_can_issue(options, pki.now())?;

    // Phase 1: read, verify and check every CSR; refuse the whole batch on any fault.
    let checked: Vec<Result<IssueRequest, String>> = files
        .par_iter()
        .map(|f| {
            let bytes = read_limited(f, MAX_CSR_BYTES, "--csr-dir").map_err(|e| e.message())?;
            let mut request = IssueRequest::from(parse_csr(&bytes).map_err(|e| e.to_string())?);
            request.alt_names.extend_from_slice(extra_sans);
            authority
                .check_request(&request, options)
                .map_err(|e| e.to_string())?;
            Ok(request)
        })
        .collect();
    let faults: Vec<String> = files
        .iter()
        .zip(&checked)
        .filter_map(|(f, r)| r.as_ref().err().map(|e| format!("{}: {e}", f.display())))
        .collect();
    if !faults.is_empty() {
        let more = if faults.len() > 3 {
            format!(" (and {} more)", faults.len() - 3)
        } else {
            String::new()
        };
        return Err(input(format!(
            "{} of {} CSRs refused, nothing issued: {}{more}",
            faults.len(),
            files.len(),
            faults[..faults.len().min(3)].join("; ")
        )));
    }
    let requests: Vec<IssueRequest> = checked.into_iter().filter_map(Result::ok).collect();
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(out_dir)
        .map_err(|e| input(format!("cannot create {}: {e}", out_dir.display())))?;

    // Phase 2: sign and commit chunk by chunk; a chunk's files are written only after its
    // commit, each whole or not at all, and the directory synced once per chunk.
    let bar = output::progress(requests.len() as u64, "issuing");
    let mut progress = BatchProgress {
        total: requests.len(),
        committed: 0,
        written: 0,
        ca: &args.ca,
        out_dir,
    };
    for (chunk, outs) in requests
        .chunks(BATCH_CHUNK)
        .zip(outputs.chunks(BATCH_CHUNK))
    {
        let records = authority
            .issue(chunk, options)
            .map_err(|e| progress.stopped(e.into(), None))?;
        progress.committed += records.len();
        let files = records
            .iter()
            .zip(outs)
            .map(|(record, out)| Ok((out.clone(), encode_cert(&record.der, args.der)?)))
            .collect::<Result<Vec<_>, Failure>>()
            .map_err(|e| progress.stopped(e, None))?;
        let writes = write_whole_many(out_dir, &files);
        progress.written += writes.iter().filter(|w| w.is_ok()).count();
        let unwritten = records
            .iter()
            .zip(writes)
            .find_map(|(record, w)| w.err().map(|e| (e, record)));
        let synced = sync_dir(out_dir);
        if let Some((failure, record)) = unwritten {
            return Err(progress.stopped(failure, Some(&record.serial)));
        }
        synced.map_err(|e| progress.stopped(e, None))?;
        bar.set_position(progress.committed as u64);
    }
    bar.finish_and_clear();
    let issued = progress.committed;
    if args.json {
        print_json(&json!({ "issued": issued, "out_dir": out_dir.display().to_string() }))
    } else {
        println!(
            "issued {issued} certificates ({}) into {}",
            options.profile.name(),
            out_dir.display()
        );
        Ok(())
    }
}

/// Refuses a batch in which two CSRs would be written to one file (`a.csr` and `a.der` both
/// to `a.pem`): the second could only fail after its certificate was committed.
fn refuse_shared_outputs(files: &[PathBuf], outputs: &[PathBuf]) -> CliResult {
    let mut first_for: std::collections::HashMap<&Path, &Path> =
        std::collections::HashMap::with_capacity(outputs.len());
    for (file, out) in files.iter().zip(outputs) {
        if let Some(other) = first_for.insert(out, file) {
            return Err(input(format!(
                "{} and {} would both be written to {}; rename one",
                other.display(),
                file.display(),
                out.display()
            )));
        }
    }
    Ok(())
}

/// How far a batch got, for the message when it stops part-way.
struct BatchProgress<'a> {
    total: usize,
    /// Certificates committed to the store (issued for good).
    committed: usize,
    /// Of those, the ones whose file was written.
    written: usize,
    ca: &'a str,
    out_dir: &'a Path,
}

impl BatchProgress<'_> {
    /// The failure that stopped the batch, with what was done and where the rest is: every
    /// committed certificate is in the store even when its file is not. The exit code stays
    /// the cause's (2 a path at fault, 3 the system: disk full, I/O).
    fn stopped(&self, cause: Failure, first_unwritten: Option<&[u8]>) -> Failure {
        let missing = self.committed - self.written;
        let recover = if missing == 0 {
            String::new()
        } else {
            format!(
                "; the {missing} certificates without a file are in the store: imza ca list --ca {} \
                 lists them, imza ca show --ca {} --serial SERIAL prints one{}",
                self.ca,
                self.ca,
                first_unwritten
                    .map(|serial| format!(" (the first: {})", serial_hex(serial)))
                    .unwrap_or_default()
            )
        };
        let done = format!(
            "batch stopped: {} of {} certificates committed to the store, {} written to {}{recover}",
            self.committed,
            self.total,
            self.written,
            self.out_dir.display()
        );
        cause.with_context(done)
    }
}

pub fn run_profile(data_dir: &Path, command: ProfileCommand) -> CliResult {
    let profiles = imza_ca::profile::ProfileSet::load(&data_dir.join("profiles"))?;
    match command {
        ProfileCommand::List { json } => {
            if json {
                return print_json(&Value::Array(
                    profiles.iter().map(|p| json!({ "name": p.name(), "description": p.spec.description, "source": p.source })).collect(),
                ));
            }
            for p in profiles.iter() {
                println!(
                    "{:<14} {}{}",
                    p.name(),
                    p.spec.description,
                    if p.source == "built-in" {
                        String::new()
                    } else {
                        format!(" [{}]", p.source)
                    }
                );
            }
            Ok(())
        }
        ProfileCommand::Show { name, json } => {
            let p = profiles.get(&name)?;
            if json {
                print_json(
                    &serde_json::to_value(&p.spec).map_err(|e| Failure::Internal(e.to_string()))?,
                )
            } else {
                println!("# source: {}", p.source);
                print!("{}", p.to_toml());
                Ok(())
            }
        }
    }
}

pub fn run_audit(home: &Home, command: AuditCommand) -> CliResult {
    let pki = open_pki(home)?;
    match command {
        AuditCommand::Verify { json } => match pki.verify_audit() {
            Ok(summary) => {
                if json {
                    print_json(
                        &json!({ "ok": true, "entries": summary.entries, "head": summary.head }),
                    )
                } else {
                    println!(
                        "audit log intact: {} entries, head {}",
                        summary.entries, summary.head
                    );
                    Ok(())
                }
            }
            Err(CaError::AuditBroken(b)) if json => {
                print_json(&json!({ "ok": false, "broken_at": b.seq, "reason": b.reason }))?;
                Err(Failure::Verdict(b.to_string()))
            }
            Err(e) => Err(e.into()),
        },
    }
}
