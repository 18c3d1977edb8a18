//! imza-agent: the signing agent on the citizen's computer (`imza agent`). A loopback HTTP
//! service, as Kazakhstan's NCALayer is, speaking Web eID's formats, as Estonia's Web eID app
//! does: a page of an allowed origin asks it for an authentication token over its origin and
//! a challenge nonce ([`card::CardAccess::authenticate`]), for the signing certificate, or for
//! a signature of a hash; the agent asks the citizen's PIN itself through a pinentry dialog
//! ([`pinentry`]) naming the origin, and signs with the ID card through PKCS#11 (OpenSC's
//! module by default).
//!
//! Why a loopback service and how its known weakness — any page may call a loopback port —
//! is closed ([`origin`], [`http`]): see ARCHITECTURE.md, "The citizen portal".

pub mod card;
pub mod http;
pub mod origin;
pub mod pinentry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use imza_core::key::pkcs11::TokenSelector;
use imza_http::{ConnectionLimits, Server};

use crate::card::CardAccess;
use crate::origin::{AllowList, LoopbackHosts};
use crate::pinentry::Pinentry;

/// The port the agent listens on unless told otherwise, the one portals' pages call.
pub const DEFAULT_PORT: u16 = 24843;

/// How long the citizen has to answer a PIN dialog.
pub const PIN_TIMEOUT: Duration = Duration::from_secs(120);

/// What `imza agent` runs with.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// A loopback address (refused otherwise).
    pub listen: SocketAddr,
    pub allowed: AllowList,
    pub module: PathBuf,
    pub token: TokenSelector,
    pub pinentry: PathBuf,
}

/// Why the agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the agent listens on loopback only (127.0.0.1 or ::1), not {0}")]
    NotLoopback(SocketAddr),
    #[error(
        "no origin is allowed: give at least one (--allow-origin, or allow_origins in --config)"
    )]
    NoOrigin,
    #[error("{0}")]
    Module(String),
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: SocketAddr, reason: String },
}

/// Binds the agent's address; [`Bound::serve`] then answers until the process ends.
pub struct Bound {
    server: Server,
    agent: Arc<http::Agent>,
    pub address: SocketAddr,
}

/// Checks `config` and binds its address (on the current Tokio runtime).
pub async fn bind(config: AgentConfig) -> Result<Bound, StartError> {
    if !config.listen.ip().is_loopback() {
        return Err(StartError::NotLoopback(config.listen));
    }
    if config.allowed.is_empty() {
        return Err(StartError::NoOrigin);
    }
    // Loaded (and initialised) once for the process, now: a module that cannot be loaded is
    // the installation's fault, said at start rather than to every page as a missing card.
    imza_core::key::pkcs11::module_context(&config.module)
        .map_err(|e| StartError::Module(e.to_string()))?;
    let limits = ConnectionLimits {
        // A handful of browser tabs on one computer.
        max_connections: 256,
        ..ConnectionLimits::default()
    };
    let listen_failed = |e: std::io::Error| StartError::Listen {
        address: config.listen,
        reason: e.to_string(),
    };
    let server = Server::bind(config.listen, limits)
        .await
        .map_err(listen_failed)?;
    let address = server.local_addr().map_err(listen_failed)?;
    let agent = Arc::new(http::Agent {
        allowed: config.allowed,
        hosts: LoopbackHosts::of(address),
        card: CardAccess::new(
            config.module,
            config.token,
            Pinentry::new(&config.pinentry, PIN_TIMEOUT),
        ),
        log: Box::new(|line| eprintln!("imza agent: {line}")),
    });
    Ok(Bound {
        server,
        agent,
        address,
    })
}

impl Bound {
    pub async fn serve(self) -> std::io::Result<()> {
        self.server.serve(http::routes(self.agent)).await
    }
}
