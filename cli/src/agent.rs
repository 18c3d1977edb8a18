//! `imza agent`: the signing agent on the citizen's computer (imza-agent), wiring only.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use imza_agent::origin::AllowList;
use imza_agent::{AgentConfig, DEFAULT_PORT};
use imza_core::key::pkcs11::TokenSelector;

use crate::output::{CliResult, Failure};

/// Lets pages of the allowed web origins log in and sign with the ID card: a loopback HTTP
/// service speaking Web eID's formats (POST /v1/authenticate, /v1/signing-certificate,
/// /v1/sign). A page of any other origin gets an empty 403 (logged), never the card. The PIN
/// is asked by the agent in a pinentry dialog that names the requesting origin, never by the
/// page. Stops on Ctrl-C.
#[derive(Args)]
pub struct AgentArgs {
    /// Loopback address and port to listen on (pages call http://127.0.0.1:PORT). Default:
    /// 127.0.0.1:24843.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A web origin whose pages may use the card, exactly as browsers send it:
    /// `https://portal.gov.az` (no path, no trailing slash; `http://` only for loopback
    /// development). Repeatable; with --config's `allow_origins`, at least one in all.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// A TOML file for an agent installed as a service: `allow_origins = [...]` (added to
    /// --allow-origin), and `listen`, `reader`, `pkcs11_module`, `pinentry`, each used where
    /// the flag is not given.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The card reader to use (part of its name); default: the only card present.
    #[arg(long, value_name = "NAME")]
    reader: Option<String>,
    /// The PKCS#11 module of the card (default: IMZA_PKCS11_MODULE, else OpenSC's
    /// opensc-pkcs11.so where the distribution installs it).
    #[arg(long, value_name = "PATH")]
    pkcs11_module: Option<PathBuf>,
    /// The PIN dialog: a program speaking GnuPG's pinentry (Assuan) protocol, e.g.
    /// pinentry-gnome3, pinentry-qt, pinentry-curses.
    /// Default: `pinentry`.
    #[arg(long, value_name = "PROGRAM")]
    pinentry: Option<PathBuf>,
}

/// `--config FILE`: what the flags say, for an agent started by the desktop session.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFile {
    #[serde(default)]
    allow_origins: Vec<String>,
    listen: Option<SocketAddr>,
    reader: Option<String>,
    pkcs11_module: Option<PathBuf>,
    pinentry: Option<PathBuf>,
}

/// Largest --config file read.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

fn read_config(path: &std::path::Path) -> Result<AgentFile, Failure> {
    let text = crate::output::read_limited(path, MAX_CONFIG_BYTES, "--config")?;
    let text = String::from_utf8(text)
        .map_err(|_| Failure::Input(format!("{}: not UTF-8 text", path.display())))?;
    toml::from_str(&text).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))
}

pub fn run(args: AgentArgs) -> CliResult {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => AgentFile::default(),
    };
    let origins = args.allow_origin.iter().chain(&file.allow_origins);
    let allowed =
        AllowList::new(origins).map_err(|e| Failure::Input(format!("allowed origin: {e}")))?;
    let module = crate::card::module_path(args.pkcs11_module.or(file.pkcs11_module).as_deref())?;
    let config = AgentConfig {
        listen: args
            .listen
            .or(file.listen)
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))),
        allowed,
        module,
        token: args
            .reader
            .or(file.reader)
            .map_or(TokenSelector::Only, TokenSelector::Reader),
        pinentry: args
            .pinentry
            .or(file.pinentry)
            .unwrap_or_else(|| PathBuf::from("pinentry")),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("cannot start the runtime: {e}")))?;
    let origins: Vec<String> = config.allowed.iter().map(str::to_string).collect();
    runtime.block_on(async move {
        // The installation's module that cannot be loaded and a port in use are the
        // environment's (3); an address or origins the agent refuses, the operator's (2).
        let bound = imza_agent::bind(config).await.map_err(|e| match e {
            imza_agent::StartError::Module(_) | imza_agent::StartError::Listen { .. } => {
                Failure::Environment(e.to_string())
            }
            imza_agent::StartError::NotLoopback(_) | imza_agent::StartError::NoOrigin => {
                Failure::Input(e.to_string())
            }
        })?;
        eprintln!(
            "imza agent: listening on http://{} for {}",
            bound.address,
            origins.join(", ")
        );
        tokio::select! {
            served = bound.serve() => served
                .map_err(|e| Failure::Internal(format!("the agent stopped: {e}"))),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}
