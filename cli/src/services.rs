//! `imza tsa ...` and `imza ocsp ...`: the certified keys of the services `imza serve` runs.

use clap::Subcommand;
use serde_json::json;

use imza_ca::services::{DEFAULT_TSA_NAME, DEFAULT_TSA_POLICY};
use imza_ca::store::ServiceKind;
use imza_ca::{InitTsa, Pki, ServiceCertificate};
use imza_core::cert::serial_hex;
use imza_core::clock::rfc3339;
use imza_core::key::pkcs11::PinSource;
use imza_core::pem;

use crate::ca::{open_pki, Home, NewKeyArgs};
use crate::output::{print_json, CliResult, Failure};
use imza_ca::delegation::RequestOutcome;

#[derive(Subcommand)]
pub enum TsaCommand {
    /// Create a time-stamping unit: a new key, a certificate from --ca under the `tsa` profile
    /// (critical, sole timeStamping EKU) and a policy OID. `imza serve` then answers
    /// RFC 3161 requests on POST /tsa with the newest unit.
    ///
    /// The key is generated in software (DATA_DIR/keys/tsa-NAME-....key.pem, mode 0600) or,
    /// with --pkcs11-module/--pkcs11-token, inside the token; the server then reads its PIN
    /// from the variable named by --pkcs11-pin-env.
    Init {
        /// The CA that certifies the unit.
        #[arg(long)]
        ca: String,
        /// The unit's name.
        #[arg(long, default_value = DEFAULT_TSA_NAME)]
        name: String,
        #[command(flatten)]
        new_key: NewKeyArgs,
        /// TSA policy OID written into every token (TSTInfo.policy); requests asking for
        /// another policy are refused with unacceptedPolicy. Default: the ETSI EN 319 421
        /// best-practices policy.
        #[arg(long, default_value = DEFAULT_TSA_POLICY)]
        policy: String,
        /// Subject DN (default: C and O of the CA, CN "<O> Time-Stamping Unit <name>").
        #[arg(long)]
        subject: Option<String>,
        /// Certificate validity in days (profile default 1826).
        #[arg(long)]
        validity_days: Option<u32>,
        /// Environment variable holding the CA's PIN, if its key is in PKCS#11 and its
        /// remembered variable should not be used.
        #[arg(long)]
        ca_pin_env: Option<String>,
        /// The unit exists: give it a new key and certificate (after a revocation, or before
        /// the old one expires). A running `imza serve` signs with it within
        /// `check_interval_seconds`.
        #[arg(long)]
        rotate: bool,
        #[arg(long)]
        json: bool,
    },
    /// List time-stamping units, newest first (with the node holding each key: none for the
    /// unit's own key, here).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print a unit's current certificate (PEM), e.g. for `openssl ts -verify -untrusted`.
    Cert {
        #[arg(long, default_value = DEFAULT_TSA_NAME)]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum OcspCommand {
    /// Make sure a CA has a delegated OCSP responder certificate, issuing one (new P-256 key,
    /// profile `ocsp`) when it has none or the current one has less than a third of its life
    /// left. `imza serve` does this itself at start and hourly; run it by hand when the CA key
    /// needs a PIN the server does not have.
    Init {
        #[arg(long)]
        ca: String,
        /// Environment variable holding the CA's PIN, if its key is in PKCS#11.
        #[arg(long)]
        ca_pin_env: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List OCSP responder certificates, newest first (with the node holding each key).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Certify the keys public nodes asked for: OCSP responders, and their keys for the TSA
    /// units created here with `imza tsa init` (`imza serve --roles public` files a request
    /// with a CSR when it has none or its certificate is due for renewal). The
    /// `ca` role of `imza serve` does this by itself every check interval; run it by hand on the
    /// CA node when a CA key needs a PIN the server does not have. A request whose CSR does not
    /// verify is refused, with the reason recorded and audited.
    Certify {
        /// Environment variable holding the CA's PIN, if its key is in PKCS#11.
        #[arg(long)]
        ca_pin_env: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn describe(pki: &Pki, s: &ServiceCertificate) -> serde_json::Value {
    let now = pki.now();
    json!({
        "name": s.service.name,
        "ca": s.service.ca,
        "serial": serial_hex(&s.certificate.serial),
        "subject": s.certificate.subject,
        "not_after": rfc3339(s.certificate.not_after),
        "usable": s.usable_at(now),
        "policy": s.service.policy,
        "key": s.service.key.describe(),
        "node": s.service.node,
    })
}

fn print_list(pki: &Pki, kind: ServiceKind, json_out: bool) -> CliResult {
    let all = pki.services(kind, None)?;
    if json_out {
        let items: Vec<_> = all.iter().map(|s| describe(pki, s)).collect();
        return print_json(&json!(items));
    }
    for s in &all {
        println!(
            "{:<12} ca={:<14} serial={} not_after={} {}{}{}",
            s.service.name,
            s.service.ca,
            serial_hex(&s.certificate.serial),
            rfc3339(s.certificate.not_after),
            if s.usable_at(pki.now()) {
                "usable"
            } else {
                "unusable"
            },
            s.service
                .policy
                .as_deref()
                .map(|p| format!(" policy={p}"))
                .unwrap_or_default(),
            s.service
                .node
                .as_deref()
                .map(|n| format!(" node={n}"))
                .unwrap_or_default(),
        );
    }
    Ok(())
}

pub fn run_tsa(home: &Home, command: TsaCommand) -> CliResult {
    let pki = open_pki(home)?;
    match command {
        TsaCommand::Init {
            ca,
            name,
            new_key,
            policy,
            subject,
            validity_days,
            ca_pin_env,
            rotate,
            json: json_out,
        } => {
            let (algorithm, backend) = new_key.into_parts();
            let unit = pki.init_tsa(InitTsa {
                name,
                ca,
                subject,
                algorithm,
                backend,
                policy: Some(policy),
                validity_days,
                ca_pin: ca_pin_env.map(PinSource::Env),
                rotate,
            })?;
            if json_out {
                return print_json(&describe(&pki, &unit));
            }
            println!(
                "{} TSA {} (certified by {}, serial {}, policy {}), key: {}",
                if rotate { "rotated" } else { "created" },
                unit.service.name,
                unit.service.ca,
                serial_hex(&unit.certificate.serial),
                unit.service.policy.as_deref().unwrap_or(""),
                unit.service.key.describe()
            );
            Ok(())
        }
        TsaCommand::List { json } => print_list(&pki, ServiceKind::Tsa, json),
        TsaCommand::Cert { name } => {
            let unit = pki
                .current_service(ServiceKind::Tsa, &name)?
                .ok_or_else(|| {
                    Failure::Input(format!(
                        "no usable TSA named {name:?}; create one with imza tsa init --ca CA"
                    ))
                })?;
            print!("{}", pem::encode(pem::CERTIFICATE, &unit.certificate.der)?);
            Ok(())
        }
    }
}

pub fn run_ocsp(home: &Home, command: OcspCommand) -> CliResult {
    let pki = open_pki(home)?;
    match command {
        OcspCommand::Init {
            ca,
            ca_pin_env,
            json: json_out,
        } => {
            let pin = ca_pin_env.map(PinSource::Env);
            let ensured = pki.ensure_ocsp_responder(&ca, pin.as_ref())?;
            if json_out {
                let mut v = describe(&pki, &ensured.responder);
                v["issued"] = json!(ensured.issued);
                return print_json(&v);
            }
            println!(
                "{} OCSP responder for {} (serial {}, until {})",
                if ensured.issued {
                    "issued"
                } else {
                    "kept the current"
                },
                ca,
                serial_hex(&ensured.responder.certificate.serial),
                rfc3339(ensured.responder.certificate.not_after)
            );
            Ok(())
        }
        OcspCommand::List { json } => print_list(&pki, ServiceKind::Ocsp, json),
        OcspCommand::Certify {
            ca_pin_env,
            json: json_out,
        } => {
            let pin = ca_pin_env.map(PinSource::Env);
            let done = pki.certify_service_requests(pin.as_ref())?;
            let items: Vec<serde_json::Value> = done
                .iter()
                .map(|(request, outcome)| {
                    let (verdict, detail) = match outcome {
                        RequestOutcome::Certified { serial } => ("certified", serial_hex(serial)),
                        RequestOutcome::Refused { reason } => ("refused", reason.clone()),
                        RequestOutcome::Deferred { reason } => ("left open", reason.clone()),
                    };
                    json!({
                        "request": request.id,
                        "kind": request.kind.as_str(),
                        "name": request.name,
                        "ca": request.ca,
                        "node": request.node,
                        "outcome": verdict,
                        "detail": detail,
                    })
                })
                .collect();
            if json_out {
                return print_json(&json!(items));
            }
            if items.is_empty() {
                println!("no open requests");
            }
            for item in &items {
                println!(
                    "{} request {} ({}) of node {} for CA {}: {} ({})",
                    item["kind"].as_str().unwrap_or(""),
                    item["request"],
                    item["name"].as_str().unwrap_or(""),
                    item["node"].as_str().unwrap_or(""),
                    item["ca"].as_str().unwrap_or(""),
                    item["outcome"].as_str().unwrap_or(""),
                    item["detail"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
    }
}
