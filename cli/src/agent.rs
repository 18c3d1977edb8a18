//! `imza agent`: the signing agent on the citizen's computer (imza-agent), wiring only.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use imza_agent::origin::AllowList;
use imza_agent::{AgentConfig, DEFAULT_PORT};
use imza_core::key::pkcs11::TokenSelector;
use imza_smartcard::module::resolve_module;

use crate::output::{CliResult, Failure};

/// Lets pages of the allowed web origins log in and sign with the ID card: a loopback HTTP
/// service speaking Web eID's formats (POST /v1/authenticate, /v1/signing-certificate,
/// /v1/sign). A page of any other origin gets an empty 403 (logged), never the card. The PIN
/// is asked by the agent in a pinentry dialog that names the requesting origin, never by the
/// page. Stops on Ctrl-C.
#[derive(Args)]
pub struct AgentArgs {
    /// Loopback address and port to listen on (pages call http://127.0.0.1:PORT).
    #[arg(long, default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    listen: SocketAddr,
    /// A web origin whose pages may use the card, exactly as browsers send it:
    /// `https://portal.gov.az` (no path, no trailing slash; `http://` only for loopback
    /// development). Repeatable; at least one.
    #[arg(long = "allow-origin", value_name = "ORIGIN", required = true)]
    allow_origin: Vec<String>,
    /// The card reader to use (part of its name); default: the only card present.
    #[arg(long, value_name = "NAME")]
    reader: Option<String>,
    /// The PKCS#11 module of the card (default: IMZA_PKCS11_MODULE, else OpenSC's
    /// opensc-pkcs11.so where the distribution installs it).
    #[arg(long, value_name = "PATH")]
    pkcs11_module: Option<PathBuf>,
    /// The PIN dialog: a program speaking GnuPG's pinentry (Assuan) protocol, e.g.
    /// pinentry-gnome3, pinentry-qt, pinentry-curses.
    #[arg(long, value_name = "PROGRAM", default_value = "pinentry")]
    pinentry: PathBuf,
}

pub fn run(args: AgentArgs) -> CliResult {
    let allowed = AllowList::new(&args.allow_origin)
        .map_err(|e| Failure::Input(format!("--allow-origin: {e}")))?;
    let module =
        resolve_module(args.pkcs11_module.as_deref()).map_err(|e| Failure::Input(e.to_string()))?;
    let config = AgentConfig {
        listen: args.listen,
        allowed,
        module,
        token: args
            .reader
            .map_or(TokenSelector::Only, TokenSelector::Reader),
        pinentry: args.pinentry,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("cannot start the runtime: {e}")))?;
    let origins: Vec<String> = config.allowed.iter().map(str::to_string).collect();
    runtime.block_on(async move {
        let bound = imza_agent::bind(config).await.map_err(|e| match e {
            imza_agent::StartError::Listen { .. } => Failure::Internal(e.to_string()),
            other => Failure::Input(other.to_string()),
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
