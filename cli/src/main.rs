//! `imza`: the one binary. Argument parsing and wiring only; the work lives in the library
//! crates. Exit codes: 0 success, 1 a verdict of "no" (e.g. a broken audit chain), 2 bad usage
//! or bad input, 3 an internal or environment failure.

mod agent;
mod ca;
mod card;
mod cert;
mod demo;
mod mobile;
mod mobile_auth;
mod output;
mod phone_qr;
mod portal;
mod serve;
mod services;
mod sign;
mod store_cmd;
mod ts;
mod verify;
mod watched_fetch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use ca::Home;

/// mimalloc instead of glibc's malloc: `imza serve` answers tens of thousands of small
/// requests a second on a few threads, where glibc's arena locks showed up in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// imza — national PKI and e-signature toolkit.
///
/// Runs a country's certificate authorities from a store and a data directory: the store is
/// embedded (SQLite, `imza.db` in the data directory) or a PostgreSQL database several nodes
/// share (`--store`); the data directory holds this machine's software keys (`keys/`, mode
/// 0600) and optional profile overrides (`profiles/NAME.toml`). Keys may instead live in a
/// PKCS#11 HSM.
#[derive(Parser)]
#[command(name = "imza", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// Data directory holding the store, keys and profile overrides. Every command but
    /// `imza ca init` of a root CA and `imza demo` needs the store in it (`imza.db`) and
    /// refuses a directory without one (exit 2), creating nothing. It, its keys/ and its
    /// profiles/ must belong to the user running imza and be writable by no one else
    /// (chmod 700); imza refuses them otherwise.
    #[arg(
        long,
        global = true,
        env = "IMZA_DATA_DIR",
        default_value = "./imza-data"
    )]
    data_dir: PathBuf,

    /// Where the store is: `sqlite:PATH` (embedded; the default is `sqlite:DATA_DIR/imza.db`)
    /// or `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=require]` (one database that several
    /// nodes share). A PostgreSQL password goes in IMZA_STORE, PGPASSWORD or a password file
    /// (~/.pgpass or PGPASSFILE, mode 0600), never on the command line: a --store that carries
    /// one is refused, since `ps` shows every process's arguments. An unreachable database or
    /// a refused login exits 3; an unknown scheme exits 2.
    #[arg(long, global = true, env = "IMZA_STORE", value_name = "URL")]
    store: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certificate authorities: create, issue, revoke, publish CRLs, inspect.
    #[command(subcommand)]
    Ca(Box<ca::CaCommand>),
    /// Certificate profiles (ETSI EN 319 412): what each kind of certificate contains.
    #[command(subcommand)]
    Profile(ca::ProfileCommand),
    /// The tamper-evident audit log of CA actions.
    #[command(subcommand)]
    Audit(ca::AuditCommand),
    /// Time-stamping units (RFC 3161) that `imza serve` answers with on /tsa.
    #[command(subcommand)]
    Tsa(services::TsaCommand),
    /// Delegated OCSP responder certificates, one per CA (issued automatically by serve).
    #[command(subcommand)]
    Ocsp(services::OcspCommand),
    /// RFC 3161 timestamp client: request a token from a TSA over HTTP, verify a token.
    #[command(subcommand)]
    Ts(ts::TsCommand),
    /// Certificates: validate a path (RFC 5280) with revocation; run x509-limbo suites.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Chip cards: list readers, cards and certificates; watch insertions; enroll a card;
    /// unblock a PIN.
    #[command(subcommand)]
    Card(card::CardCommand),
    /// Mobile signature: relying parties of the signature service, phone registration, and
    /// authenticating a citizen by phone.
    #[command(subcommand)]
    Mobile(mobile::MobileCommand),
    /// The citizen portal: one-time access codes for citizens.
    #[command(subcommand)]
    Portal(portal::PortalCommand),
    /// The signing agent on the citizen's computer: lets pages of allowed origins log in and
    /// sign with the ID card (Web eID tokens), the PIN asked by the agent itself.
    Agent(agent::AgentArgs),
    /// The citizen's phone (simulated): answer signature and authentication requests.
    #[command(subcommand)]
    Phone(mobile::PhoneCommand),
    /// Sign a document: CMS / CAdES B-B, B-T, B-LT, B-LTA; or raise a signature's level.
    Sign(Box<sign::SignArgs>),
    /// Validate a CMS / CAdES signature and report (ETSI TS 119 102-2). Exit 0 only when TOTAL_PASSED.
    Verify(Box<verify::VerifyArgs>),
    /// The store itself: copy the embedded store into PostgreSQL (`store migrate`).
    #[command(subcommand)]
    Store(store_cmd::StoreCommand),
    /// Build a demo national PKI in the data directory (idempotent): root, citizens,
    /// organisations and infrastructure CAs, a few certificates, one revoked, CRLs.
    Demo,
    /// Serve the PKI over HTTP (HTTPS with --tls-cert): OCSP (POST /ocsp, GET /ocsp/BASE64) for
    /// every CA, RFC 3161 timestamps (POST /tsa), signature validation (POST /verify), the
    /// mobile signature service (/mss/v1: relying parties and registered phones), the citizen
    /// portal (/portal: HTTPS, or plain HTTP on loopback only), CA certificates and CRLs at
    /// the URLs written into certificates, /health and Prometheus /metrics. Issues or renews each CA's delegated OCSP responder
    /// certificate at start and when due, and picks up revoked or new service certificates
    /// within --config's check_interval_seconds. Stops on Ctrl-C.
    Serve {
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// TOML settings: check_interval_seconds; [ocsp] validity_minutes, cache_entries; [tsa] name,
        /// accuracy_seconds, clock_check_command, clock_check_interval_seconds; [crl]
        /// validity_hours; [mobile] session_lifetime_seconds. Without it, the defaults (1 h
        /// OCSP validity, TSA "tsa", trusted system clock, 24 h CRLs, 5 min mobile sessions).
        #[arg(long)]
        config: Option<PathBuf>,
        /// What this process runs: `all` (the default: one node with everything, as for the
        /// demo), `public` (everything but ca: a node facing the internet, which never opens a
        /// CA key), or a list of ocsp, tsa, verify, mss, publish (CA certificates and the
        /// stored CRLs), portal (the citizen portal), ca (signs CRLs into the store on a schedule, certifies and renews
        /// delegated responders; the node beside the CA keys).
        #[arg(long, default_value = "all", value_name = "ROLES")]
        roles: serve::roles::Roles,
        /// This node's name, on a node without the ca role (default: the host name, made
        /// a-z0-9-). Its delegated OCSP responders are certified for it: it makes their keys
        /// in its own data directory and files requests the CA node certifies.
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
        /// Serve HTTPS with this certificate chain (PEM: the server's certificate, e.g. from
        /// the tls-server profile, then its CAs). The portal role needs HTTPS except on a
        /// loopback address.
        #[arg(long, requires = "tls_key", value_name = "PEM")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM; a file only its owner can read).
        #[arg(long, requires = "tls_cert", value_name = "PEM")]
        tls_key: Option<PathBuf>,
        /// Ask clients for a certificate chaining to these CAs (PEM): the portal's
        /// device-certificate login. Optional for clients.
        #[arg(long, requires = "tls_cert", value_name = "PEM")]
        tls_client_cas: Option<PathBuf>,
    },
}

/// Gives SIGPIPE back its default action, ending the process quietly when the reader of its
/// output goes away (`imza ca list --json | head -c 100`), as it ends `cat` or `grep`: the
/// Rust runtime ignores SIGPIPE, and then `println!` panics on EPIPE (exit 101).
///
/// Not for the long-running services (`serve`, `agent`): a client that hangs up must cost them
/// one connection, never the process, whichever library wrote to the socket.
#[allow(unsafe_code)]
fn end_quietly_on_closed_pipe() {
    // SAFETY: signal(2) with SIG_DFL installs no handler code; it is called at the start of
    // main, before any thread is spawned, and std has no other use of SIGPIPE's disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// What clap found wrong with the command line, as every failure is reported: one line on
/// stderr ("imza: error: ..."), exit 2. --help and --version print as clap prints them, exit 0.
fn usage_failure(e: clap::Error) -> ExitCode {
    if !e.use_stderr() {
        e.exit()
    }
    // clap's own message: the reason and its details (missing arguments, tips) on lines of
    // their own, then the usage, which --help gives.
    let rendered = e.to_string();
    let said: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let joined = said.join(" ");
    let reason = joined.strip_prefix("error: ").unwrap_or(&joined);
    let failure = output::input(format!("{reason} (see --help)"));
    eprintln!("imza: {}", failure.message());
    ExitCode::from(failure.exit_code())
}

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => return usage_failure(e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_failure(e),
    };
    if !matches!(cli.command, Command::Serve { .. } | Command::Agent(_)) {
        end_quietly_on_closed_pipe();
    }
    let store_on_command_line =
        matches.value_source("store") == Some(clap::parser::ValueSource::CommandLine);
    let home = || Home::new(&cli.data_dir, cli.store.as_deref(), store_on_command_line);
    let result = match cli.command {
        Command::Ca(cmd) => home().and_then(|h| ca::run(&h, *cmd)),
        Command::Profile(cmd) => ca::run_profile(&cli.data_dir, cmd),
        Command::Audit(cmd) => home().and_then(|h| ca::run_audit(&h, cmd)),
        Command::Tsa(cmd) => home().and_then(|h| services::run_tsa(&h, cmd)),
        Command::Ocsp(cmd) => home().and_then(|h| services::run_ocsp(&h, cmd)),
        Command::Ts(cmd) => ts::run(cmd),
        Command::Cert(cmd) => cert::run(cmd),
        Command::Card(cmd) => home().and_then(|h| card::run(&h, cmd)),
        Command::Mobile(cmd) => home().and_then(|h| mobile::run(&h, cmd)),
        Command::Portal(cmd) => home().and_then(|h| portal::run(&h, cmd)),
        Command::Phone(cmd) => mobile::run_phone(cmd),
        Command::Agent(args) => agent::run(args),
        Command::Sign(args) => sign::run(*args),
        Command::Verify(args) => verify::run(*args),
        Command::Store(cmd) => home().and_then(|h| store_cmd::run(&h, cmd, &matches)),
        Command::Demo => home().and_then(|h| demo::run(&h)),
        Command::Serve {
            listen,
            config,
            roles,
            node,
            tls_cert,
            tls_key,
            tls_client_cas,
        } => home().and_then(|h| {
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(serve::TlsFiles {
                    cert,
                    key,
                    client_cas: tls_client_cas,
                }),
                _ => None,
            };
            serve::run(&h, listen, config.as_deref(), roles, node, tls)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("imza: {}", failure.message());
            ExitCode::from(failure.exit_code())
        }
    }
}
