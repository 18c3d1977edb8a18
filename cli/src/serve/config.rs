//! `imza serve --config FILE` (TOML): every key optional, every default safe.
//!
//! ```toml
//! check_interval_seconds = 30   # store checked for revoked/new service certificates
//! [server]                      # connections (see imza_http::ConnectionLimits)
//! max_connections = 16384       # lowered at start to fit the open-file limit
//! listen_backlog = 1024         # the kernel caps it at net.core.somaxconn
//! idle_timeout_seconds = 30     # no request under way (fresh or keep-alive)
//! header_timeout_seconds = 10   # a request head, from its first byte
//! body_timeout_seconds = 10     # a body: this, plus a second per …
//! body_min_bytes_per_second = 4096
//! send_timeout_seconds = 30     # an answer the client stops reading
//! max_head_bytes = 65536
//! shutdown_grace_seconds = 2
//! [ocsp]
//! validity_minutes = 60         # nextUpdate − thisUpdate of every response
//! cache_entries = 100000        # pre-signed responses kept, at most …
//! cache_mib = 64                # … and at most this much memory
//! max_concurrent = 4            # live signatures at once (default: 2 per core) …
//! queue = 1024                  # … and waiting; beyond: 503 with Retry-After
//! [tsa]
//! name = "tsa"                  # which unit answers on /tsa
//! accuracy_seconds = 1
//! clock_check_command = ["chronyc", "-n", "waitsync", "1", "0.1"]
//! clock_check_interval_seconds = 10
//! max_concurrent = 2            # default: 1 per core
//! queue = 1024
//! [verify]
//! max_concurrent = 4            # default: 2 per core
//! queue = 64
//! memory_mib = 512              # request bodies (and decoded copies) held at once
//! fetch_timeout_seconds = 5     # one outbound OCSP / CRL fetch (for other PKIs' certificates)
//! fetches_per_request = 16      # outbound fetches one /verify may start
//! concurrent_fetches = 8        # outbound fetches in flight in the whole process
//! fetch_cache_entries = 1024    # fetched answers kept (until their nextUpdate, at most 1 h)
//! fetch_cache_mib = 128
//! [crl]                         # also /ca/NAME.crt
//! validity_hours = 24           # CRLs the server signs itself
//! max_concurrent = 2
//! queue = 32
//! [mobile]
//! session_lifetime_seconds = 300  # how long a phone has to answer
//! max_concurrent = 4            # store transactions at once (default: 2 per core)
//! queue = 4096
//! relying_party_sessions_per_second = 100  # session creations per relying party (429 over)
//! relying_party_session_burst = 1000
//! phone_sessions_per_minute = 10           # per relying party and phone number
//! phone_session_burst = 10
//! max_running_sessions_per_phone = 2       # per relying party and phone number
//! max_tracked_phones = 100000
//! [portal]
//! origin = "https://portal.gov.az"  # the portal's public origin, which card tokens and phones'
//!                               # QR answers are signed over (default: https://LISTEN with
//!                               # --tls-cert, else http://LISTEN; none for 0.0.0.0: card
//!                               # login off)
//! agent = "http://127.0.0.1:24843"  # where citizens' `imza agent` listens (CSP connect-src)
//! card_login = true             # the ID-card login (anchors: the store's root CAs; OCSP
//!                               # required)
//! card_profile = "citizen-auth" # the profile whose certificate policies may log in by card
//! max_concurrent = 4            # store work and OCSP checks at once (default: 2 per core)
//! queue = 1024
//! purge_interval_seconds = 300  # ended/expired sessions, old nonces, expired access codes
//! person_login_burst = 10       # login attempts per person (national id) at once …
//! person_login_interval_seconds = 30  # … then one per this (429 with Retry-After over)
//! address_login_burst = 30      # the same per client address (IPv6: per /64)
//! address_login_interval_seconds = 2
//! max_tracked = 65536           # people and addresses each limiter remembers
//! trusted_proxies = []          # peers whose X-Forwarded-For names the client; none: the
//!                               # TCP peer is the client whatever headers say
//! name = "imza portal"          # shown on the phone beside the origin (phone and QR logins)
//! mss_url = "https://mss.gov.az"    # default: this server's own /mss/v1 with the mss role
//! mss_relying_party = "portal"  # the portal's relying-party name (imza mobile rp add)
//! mss_api_key_env = "IMZA_PORTAL_MSS_API_KEY"  # the variable holding its API key
//! phone_cas = ["mobile"]        # CAs whose certificates are phones' (the QR login)
//! citizens = "citizens.toml"    # demo citizens (imza_portal::registry); none: no registry
//! notice_interval_seconds = 3600  # certificate expiry notices (60 / 30 / 7 days), each once
//! [portal.mail]                 # expiry notices by mail; none: in the cabinet only
//! host = "127.0.0.1"
//! port = 25
//! from = "imza portal <noreply@mygov.az>"
//! starttls = false              # required for a password to a server on another machine
//! username = "portal"           # with password_env, the variable holding the password
//! password_env = "IMZA_PORTAL_SMTP_PASSWORD"
//! timeout_seconds = 10
//! [portal.seal]                 # the agency that issues e-certificates; none: none issued
//! agency = "Ədliyyə Nazirliyi"  # its name on the paper and on the verification page
//! certificate = "seal.pem"      # its e-seal certificate (profile org-seal) and chain
//! chain = "seal-chain.pem"
//! pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"  # the key in an HSM …
//! pkcs11_token = "agency"
//! pkcs11_key_label = "seal"
//! pkcs11_pin_env = "IMZA_SEAL_PIN"  # the variable holding the token's PIN
//! # key = "seal.key.pem"        # … or a key file (mode 0600) instead
//! tsa_url = "https://tsa.gov.az/tsa"  # default: this server's own /tsa, with the tsa role
//! [[portal.checkers]]           # organisations whose systems call /d/{reference}/status
//! name = "Kapital Bank"
//! api_key_sha256 = "…"          # hex SHA-256 of the key they send as Authorization: Bearer
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use imza_ca::keyref::KeyBackend;
use imza_ca::services::DEFAULT_TSA_NAME;
use imza_core::key::pkcs11::PinSource;
use imza_http::admission::DEFAULT_MAX_WAIT;
use imza_http::{ConnectionLimits, WorkLimit};
use imza_mobile_sign::service as mobile;
use imza_validation::FetchCacheConfig;

use crate::output::Failure;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// How often the store is checked for service changes: a revoked responder or TSA
    /// certificate, a unit made by `imza tsa init`, a responder by `imza ocsp init`.
    pub check_interval_seconds: u64,
    pub server: ConnectionLimits,
    pub ocsp: OcspSection,
    pub tsa: TsaSection,
    pub verify: VerifySection,
    pub crl: CrlSection,
    pub mobile: MobileSection,
    pub portal: PortalSection,
    pub node: NodeSection,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            check_interval_seconds: 30,
            server: ConnectionLimits::default(),
            ocsp: OcspSection::default(),
            tsa: TsaSection::default(),
            verify: VerifySection::default(),
            crl: CrlSection::default(),
            mobile: MobileSection::default(),
            portal: PortalSection::default(),
            node: NodeSection::default(),
        }
    }
}

/// A service's bound on concurrent work and waiting work; `None`: the default per core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    pub max_concurrent: Option<usize>,
    pub queue: Option<usize>,
}

impl Admission {
    /// The limit named `name`: `per_core` × cores at once unless configured, and `queue`
    /// waiting unless configured.
    pub fn limit(&self, name: &'static str, per_core: usize, queue: usize) -> WorkLimit {
        WorkLimit::new(
            name,
            self.concurrency(per_core),
            self.queue.unwrap_or(queue),
            DEFAULT_MAX_WAIT,
        )
    }

    /// The limit named `name` on threads of its own (named `thread_name`) at nice `nice`:
    /// `per_core` × cores of them unless configured, and `queue` waiting unless configured.
    pub fn own_threads(
        &self,
        name: &'static str,
        thread_name: &str,
        per_core: usize,
        queue: usize,
        nice: i32,
    ) -> std::io::Result<WorkLimit> {
        WorkLimit::on_own_threads(
            name,
            thread_name,
            self.concurrency(per_core),
            self.queue.unwrap_or(queue),
            DEFAULT_MAX_WAIT,
            nice,
        )
    }

    /// Work at once: as configured, else `per_core` × cores.
    pub fn concurrency(&self, per_core: usize) -> usize {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        self.max_concurrent.unwrap_or(per_core * cores)
    }

    fn check(&self, section: &str) -> Result<(), String> {
        if self
            .max_concurrent
            .is_some_and(|n| !(1..=1024).contains(&n))
        {
            return Err(format!(
                "[{section}] max_concurrent must be between 1 and 1024"
            ));
        }
        if self.queue.is_some_and(|n| n > 1_000_000) {
            return Err(format!("[{section}] queue must be at most 1000000"));
        }
        Ok(())
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcspSection {
    pub validity_minutes: u32,
    pub cache_entries: usize,
    pub cache_mib: usize,
    pub max_concurrent: Option<usize>,
    pub queue: Option<usize>,
}

/// Where a public node makes the keys of its own (OCSP responders, TSA units).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_token: Option<String>,
    pub pkcs11_pin_env: Option<String>,
}

impl NodeSection {
    /// The PKCS#11 token configured, else files in the node's data directory.
    pub fn key_backend(&self) -> KeyBackend {
        match (
            &self.pkcs11_module,
            &self.pkcs11_token,
            &self.pkcs11_pin_env,
        ) {
            (Some(module), Some(token), Some(pin_env)) => KeyBackend::Pkcs11 {
                module: module.clone(),
                token_label: token.clone(),
                pin: PinSource::Env(pin_env.clone()),
            },
            _ => KeyBackend::Software,
        }
    }

    fn check(&self) -> Result<(), String> {
        let set = [
            self.pkcs11_module.is_some(),
            self.pkcs11_token.is_some(),
            self.pkcs11_pin_env.is_some(),
        ];
        if set.contains(&true) && set.contains(&false) {
            return Err(
                "[node] pkcs11_module, pkcs11_token and pkcs11_pin_env go together: \
                 all three or none (a service cannot ask for a PIN)"
                    .into(),
            );
        }
        Ok(())
    }
}

impl Default for OcspSection {
    fn default() -> Self {
        OcspSection {
            validity_minutes: 60,
            cache_entries: 100_000,
            cache_mib: imza_ocsp::cache::DEFAULT_MAX_BYTES / (1024 * 1024),
            max_concurrent: None,
            queue: None,
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsaSection {
    pub name: String,
    pub accuracy_seconds: u64,
    /// Run every `clock_check_interval_seconds`; the TSA refuses with timeNotAvailable while
    /// it fails (RFC 3161 §2.2 / EN 319 421 §7.7.2). None: the system clock is trusted.
    pub clock_check_command: Option<Vec<String>>,
    pub clock_check_interval_seconds: u64,
    pub max_concurrent: Option<usize>,
    pub queue: Option<usize>,
}

impl Default for TsaSection {
    fn default() -> Self {
        TsaSection {
            name: DEFAULT_TSA_NAME.to_string(),
            accuracy_seconds: 1,
            clock_check_command: None,
            clock_check_interval_seconds: 10,
            max_concurrent: None,
            queue: None,
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifySection {
    pub max_concurrent: Option<usize>,
    pub queue: Option<usize>,
    pub memory_mib: usize,
    pub fetch_timeout_seconds: u64,
    pub fetches_per_request: usize,
    pub concurrent_fetches: usize,
    pub fetch_cache_entries: usize,
    pub fetch_cache_mib: u64,
}

impl Default for VerifySection {
    fn default() -> Self {
        let fetch = FetchCacheConfig::default();
        VerifySection {
            max_concurrent: None,
            queue: None,
            memory_mib: 512,
            fetch_timeout_seconds: fetch.timeout.as_secs(),
            fetches_per_request: fetch.per_request,
            concurrent_fetches: fetch.concurrent,
            fetch_cache_entries: fetch.max_entries,
            fetch_cache_mib: fetch.max_bytes / (1024 * 1024),
        }
    }
}

impl VerifySection {
    /// The shared fetch layer's configuration; what the section does not set keeps
    /// imza-validation's defaults.
    pub fn fetch_cache(&self) -> FetchCacheConfig {
        FetchCacheConfig {
            timeout: std::time::Duration::from_secs(self.fetch_timeout_seconds),
            per_request: self.fetches_per_request,
            concurrent: self.concurrent_fetches,
            max_entries: self.fetch_cache_entries,
            max_bytes: self.fetch_cache_mib * 1024 * 1024,
            ..FetchCacheConfig::default()
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrlSection {
    pub validity_hours: u32,
    pub max_concurrent: Option<usize>,
    pub queue: Option<usize>,
}

impl Default for CrlSection {
    fn default() -> Self {
        CrlSection {
            validity_hours: 24,
            max_concurrent: None,
            queue: None,
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MobileSection {
    /// How long a phone has to answer a signature or authentication request.
    pub session_lifetime_seconds: u64,
    pub max_concurrent: Option<usize>,
    pub queue: Option<usize>,
    pub relying_party_sessions_per_second: u32,
    pub relying_party_session_burst: u32,
    pub phone_sessions_per_minute: u32,
    pub phone_session_burst: u32,
    pub max_running_sessions_per_phone: u32,
    pub max_tracked_phones: usize,
}

impl Default for MobileSection {
    fn default() -> Self {
        let party = mobile::DEFAULT_RELYING_PARTY_RATE;
        let phone = mobile::DEFAULT_PHONE_RATE;
        MobileSection {
            session_lifetime_seconds: imza_mobile_sign::protocol::SESSION_LIFETIME.as_secs(),
            max_concurrent: None,
            queue: None,
            relying_party_sessions_per_second: per(Duration::from_secs(1), party.interval),
            relying_party_session_burst: party.burst,
            phone_sessions_per_minute: per(Duration::from_secs(60), phone.interval),
            phone_session_burst: phone.burst,
            max_running_sessions_per_phone: mobile::DEFAULT_MAX_RUNNING_PER_PHONE,
            max_tracked_phones: mobile::DEFAULT_MAX_TRACKED_PHONES,
        }
    }
}

/// How many `interval`s fit in `period`.
fn per(period: Duration, interval: Duration) -> u32 {
    u32::try_from(period.as_nanos() / interval.as_nanos().max(1)).unwrap_or(u32::MAX)
}

impl MobileSection {
    /// The service's configuration: this section, and `work` for its store work.
    pub fn service_config(&self, work: WorkLimit) -> mobile::ServiceConfig {
        mobile::ServiceConfig {
            session_lifetime: Duration::from_secs(self.session_lifetime_seconds),
            work,
            relying_party_rate: mobile::RateLimit::per_second(
                self.relying_party_sessions_per_second,
                self.relying_party_session_burst,
            ),
            phone_rate: mobile::RateLimit::per_minute(
                self.phone_sessions_per_minute,
                self.phone_session_burst,
            ),
            max_running_per_phone: self.max_running_sessions_per_phone,
            max_tracked_phones: self.max_tracked_phones,
        }
    }
}

/// `[portal]`: the citizen portal's public origin, its ID-card login, its work limit, clean-up
/// and login rate limits (in memory, per process: see `imza_portal::login_limits`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalSection {
    /// The portal's public origin (`https://portal.gov.az`); `None`: from --listen.
    pub origin: Option<String>,
    /// The origin of the citizens' signing agent, which the login page calls.
    pub agent: String,
    pub card_login: bool,
    /// The certificate profile whose policies the card login accepts.
    pub card_profile: String,
    pub max_concurrent: Option<usize>,
    pub queue: Option<usize>,
    pub purge_interval_seconds: u64,
    pub person_login_burst: u32,
    pub person_login_interval_seconds: u64,
    pub address_login_burst: u32,
    pub address_login_interval_seconds: u64,
    pub max_tracked: usize,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The portal's name, shown on the phone with the origin (phone and QR logins).
    pub name: String,
    /// The mobile signature service the phone login asks; `None`: this server's own, when it
    /// has the mss role (otherwise there is no phone login).
    pub mss_url: Option<String>,
    /// The portal's relying-party name at the service.
    pub mss_relying_party: String,
    /// The environment variable holding the portal's API key (never in this file, never
    /// logged). Unset: no phone login.
    pub mss_api_key_env: String,
    /// The CAs (by name) whose authentication certificates are phones': the QR login takes
    /// only these.
    pub phone_cas: Vec<String>,
    /// The demo citizens file (`imza_portal::registry::TomlCitizenRegistry`); `None`: no
    /// citizen registry (notices in the cabinet only).
    pub citizens: Option<PathBuf>,
    /// How often the certificate expiry notices run.
    pub notice_interval_seconds: u64,
    /// The SMTP server the notices are mailed through; `None`: the cabinet only.
    pub mail: Option<MailSection>,
    /// The agency that issues and seals e-certificates; `None`: none are issued.
    pub seal: Option<SealSection>,
    /// Organisations whose systems check documents through the API.
    pub checkers: Vec<CheckerSection>,
}

/// `[portal.seal]`: the issuing agency's e-seal.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealSection {
    pub agency: String,
    pub certificate: PathBuf,
    pub chain: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_token: Option<String>,
    pub pkcs11_key_label: Option<String>,
    pub pkcs11_pin_env: Option<String>,
    pub tsa_url: Option<String>,
}

/// `[[portal.checkers]]`: an organisation and the SHA-256 of its API key.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerSection {
    pub name: String,
    pub api_key_sha256: String,
}

/// `[portal.mail]`: where the expiry notices are mailed through.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSection {
    pub host: String,
    pub port: u16,
    /// The sender, `imza portal <noreply@mygov.az>`.
    pub from: String,
    /// STARTTLS required (with the system's trusted roots).
    pub starttls: bool,
    pub username: Option<String>,
    /// The environment variable holding the account's password (never in this file).
    pub password_env: Option<String>,
    pub timeout_seconds: u64,
}

impl Default for MailSection {
    fn default() -> Self {
        MailSection {
            host: "127.0.0.1".to_string(),
            port: 25,
            from: String::new(),
            starttls: false,
            username: None,
            password_env: None,
            timeout_seconds: 10,
        }
    }
}

impl Default for PortalSection {
    fn default() -> Self {
        let limits = imza_portal::login_limits::LoginLimitPolicy::default();
        PortalSection {
            origin: None,
            agent: format!("http://127.0.0.1:{}", imza_agent::DEFAULT_PORT),
            card_login: true,
            card_profile: "citizen-auth".to_string(),
            max_concurrent: None,
            queue: None,
            purge_interval_seconds: imza_portal::http::PURGE_EVERY.as_secs(),
            person_login_burst: limits.identity.burst,
            person_login_interval_seconds: limits.identity.interval.as_secs(),
            address_login_burst: limits.address.burst,
            address_login_interval_seconds: limits.address.interval.as_secs(),
            max_tracked: limits.max_tracked,
            trusted_proxies: limits.trusted_proxies,
            name: "imza portal".to_string(),
            mss_url: None,
            mss_relying_party: "portal".to_string(),
            mss_api_key_env: "IMZA_PORTAL_MSS_API_KEY".to_string(),
            phone_cas: vec!["mobile".to_string()],
            citizens: None,
            notice_interval_seconds: imza_portal::notices::NOTICE_EVERY.as_secs(),
            mail: None,
            seal: None,
            checkers: Vec::new(),
        }
    }
}

impl PortalSection {
    /// The login rate limits this section asks for.
    pub fn login_limits(&self) -> imza_portal::login_limits::LoginLimitPolicy {
        use imza_portal::login_limits::{Budget, LoginLimitPolicy};
        LoginLimitPolicy {
            identity: Budget {
                burst: self.person_login_burst,
                interval: Duration::from_secs(self.person_login_interval_seconds),
            },
            address: Budget {
                burst: self.address_login_burst,
                interval: Duration::from_secs(self.address_login_interval_seconds),
            },
            max_tracked: self.max_tracked,
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }

    fn check(&self) -> Result<(), String> {
        if !(1..=24 * 3600).contains(&self.purge_interval_seconds) {
            return Err("[portal] purge_interval_seconds must be between 1 and 86400".into());
        }
        for (burst, interval, what) in [
            (
                self.person_login_burst,
                self.person_login_interval_seconds,
                "person_login",
            ),
            (
                self.address_login_burst,
                self.address_login_interval_seconds,
                "address_login",
            ),
        ] {
            if !(1..=1_000_000).contains(&burst) || !(1..=24 * 3600).contains(&interval) {
                return Err(format!(
                    "[portal] {what}_burst must be 1 to 1000000 and {what}_interval_seconds 1 \
                     to 86400"
                ));
            }
        }
        if !(1..=10_000_000).contains(&self.max_tracked) {
            return Err("[portal] max_tracked must be between 1 and 10000000".into());
        }
        if !(1..=24 * 3600).contains(&self.notice_interval_seconds) {
            return Err("[portal] notice_interval_seconds must be between 1 and 86400".into());
        }
        if let Some(seal) = &self.seal {
            if seal.agency.trim().is_empty() {
                return Err("[portal.seal] needs agency, the name on the documents".into());
            }
            let pkcs11 = seal.pkcs11_module.is_some()
                || seal.pkcs11_token.is_some()
                || seal.pkcs11_key_label.is_some();
            let complete = seal.pkcs11_module.is_some()
                && seal.pkcs11_token.is_some()
                && seal.pkcs11_key_label.is_some();
            match (seal.key.is_some(), pkcs11) {
                (true, true) => {
                    return Err("[portal.seal] takes key or pkcs11_*, not both".into());
                }
                (false, false) => {
                    return Err(
                        "[portal.seal] needs key, or pkcs11_module, pkcs11_token and \
                                pkcs11_key_label"
                            .into(),
                    );
                }
                (false, true) if !complete => {
                    return Err("[portal.seal] needs pkcs11_module, pkcs11_token and \
                                pkcs11_key_label together"
                        .into());
                }
                _ => {}
            }
        }
        for checker in &self.checkers {
            let digest = hex::decode(&checker.api_key_sha256).unwrap_or_default();
            if checker.name.trim().is_empty() || digest.len() != 32 {
                return Err(format!(
                    "[[portal.checkers]] {:?}: needs a name and api_key_sha256, 64 hex digits",
                    checker.name
                ));
            }
        }
        if let Some(mail) = &self.mail {
            if mail.host.is_empty() || mail.from.is_empty() {
                return Err("[portal.mail] needs host and from".into());
            }
            if !(1..=300).contains(&mail.timeout_seconds) {
                return Err("[portal.mail] timeout_seconds must be between 1 and 300".into());
            }
        }
        if self.trusted_proxies.len() > 64 {
            return Err("[portal] trusted_proxies lists at most 64 addresses".into());
        }
        self.admission().check("portal")
    }
}

macro_rules! admission {
    ($section:ty) => {
        impl $section {
            pub fn admission(&self) -> Admission {
                Admission {
                    max_concurrent: self.max_concurrent,
                    queue: self.queue,
                }
            }
        }
    };
}
admission!(OcspSection);
admission!(TsaSection);
admission!(VerifySection);
admission!(CrlSection);
admission!(MobileSection);
admission!(PortalSection);

impl ServeConfig {
    /// Reads and checks the configuration file; no file means the defaults.
    pub fn load(path: Option<&Path>) -> Result<ServeConfig, Failure> {
        let Some(path) = path else {
            return Ok(ServeConfig::default());
        };
        let text = crate::output::read_limited(path, 1024 * 1024, "--config")?;
        let text = String::from_utf8(text)
            .map_err(|_| Failure::Input(format!("{}: not UTF-8 text", path.display())))?;
        let mut config: ServeConfig = toml::from_str(&text)
            .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
        // Relative files (citizens, the seal's) are beside the configuration file.
        if let Some(dir) = path.parent() {
            let beside = |file: &mut PathBuf| {
                if file.is_relative() {
                    *file = dir.join(&*file);
                }
            };
            if let Some(citizens) = &mut config.portal.citizens {
                beside(citizens);
            }
            if let Some(seal) = &mut config.portal.seal {
                beside(&mut seal.certificate);
                for file in [&mut seal.chain, &mut seal.key].into_iter().flatten() {
                    beside(file);
                }
            }
        }
        config
            .check()
            .map_err(|m| Failure::Input(format!("{}: {m}", path.display())))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if !(1..=7 * 24 * 60).contains(&self.ocsp.validity_minutes) {
            return Err("[ocsp] validity_minutes must be between 1 and 10080 (7 days)".into());
        }
        if self.ocsp.cache_entries > 100_000_000 || self.ocsp.cache_mib > 64 * 1024 {
            return Err(
                "[ocsp] cache_entries must be at most 100000000 and cache_mib at most 65536".into(),
            );
        }
        self.node.check()?;
        if !(1..=366 * 24).contains(&self.crl.validity_hours) {
            return Err("[crl] validity_hours must be between 1 and 8784 (366 days)".into());
        }
        if !(1..=3600).contains(&self.check_interval_seconds) {
            return Err("check_interval_seconds must be between 1 and 3600".into());
        }
        if !(1..=3600).contains(&self.mobile.session_lifetime_seconds) {
            return Err("[mobile] session_lifetime_seconds must be between 1 and 3600".into());
        }
        if self.mobile.relying_party_sessions_per_second == 0
            || self.mobile.phone_sessions_per_minute == 0
        {
            return Err(
                "[mobile] relying_party_sessions_per_second and phone_sessions_per_minute must \
                 be at least 1"
                    .into(),
            );
        }
        self.mobile
            .service_config(WorkLimit::new("check", 1, 0, DEFAULT_MAX_WAIT))
            .check()
            .map_err(|m| format!("[mobile] {m}"))?;
        if self.tsa.clock_check_interval_seconds == 0 {
            return Err("[tsa] clock_check_interval_seconds must be at least 1".into());
        }
        if self
            .tsa
            .clock_check_command
            .as_ref()
            .is_some_and(|c| c.is_empty())
        {
            return Err("[tsa] clock_check_command is empty".into());
        }
        let verify = &self.verify;
        if !(1..=64 * 1024).contains(&verify.memory_mib) {
            return Err("[verify] memory_mib must be between 1 and 65536".into());
        }
        if !(1..=60).contains(&verify.fetch_timeout_seconds) {
            return Err("[verify] fetch_timeout_seconds must be between 1 and 60".into());
        }
        if verify.fetches_per_request > 256 || verify.concurrent_fetches > 256 {
            return Err(
                "[verify] fetches_per_request and concurrent_fetches must be at most 256 \
                 (0 turns fetching off)"
                    .into(),
            );
        }
        if verify.fetch_cache_entries > 1_000_000 || verify.fetch_cache_mib > 64 * 1024 {
            return Err(
                "[verify] fetch_cache_entries must be at most 1000000 and fetch_cache_mib at \
                 most 65536"
                    .into(),
            );
        }
        self.server.check().map_err(|m| format!("[server] {m}"))?;
        self.ocsp.admission().check("ocsp")?;
        self.tsa.admission().check("tsa")?;
        self.verify.admission().check("verify")?;
        self.crl.admission().check("crl")?;
        self.mobile.admission().check("mobile")?;
        self.portal.check()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_is_optional_and_unknown_keys_are_refused() {
        let config: ServeConfig = toml::from_str("[verify]\nmemory_mib = 64\n").unwrap();
        assert_eq!(config.verify.memory_mib, 64);
        assert_eq!(config.server, ConnectionLimits::default());
        assert!(config.check().is_ok());
        assert!(toml::from_str::<ServeConfig>("[server]\nmax_conns = 1\n").is_err());
        let zero: ServeConfig = toml::from_str("[server]\nidle_timeout_seconds = 0\n").unwrap();
        assert!(zero
            .check()
            .unwrap_err()
            .contains("[server] idle_timeout_seconds"));
        let none: ServeConfig = toml::from_str("[ocsp]\nmax_concurrent = 0\n").unwrap();
        assert!(none.check().unwrap_err().contains("[ocsp] max_concurrent"));
        let huge: ServeConfig = toml::from_str("[ocsp]\ncache_mib = 100000\n").unwrap();
        assert!(huge.check().unwrap_err().contains("[ocsp] cache_entries"));
        let small: ServeConfig = toml::from_str("[ocsp]\ncache_mib = 8\n").unwrap();
        assert_eq!(
            (small.ocsp.cache_mib, small.ocsp.cache_entries),
            (8, 100_000)
        );
        let half: ServeConfig = toml::from_str("[node]\npkcs11_token = \"node\"\n").unwrap();
        assert!(half.check().unwrap_err().contains("all three or none"));
        assert!(matches!(
            ServeConfig::default().node.key_backend(),
            KeyBackend::Software
        ));
    }

    #[test]
    fn the_mobile_defaults_are_the_services_own() {
        let config = MobileSection::default().service_config(Admission::default().limit("x", 1, 1));
        assert_eq!(
            config.relying_party_rate,
            mobile::DEFAULT_RELYING_PARTY_RATE
        );
        assert_eq!(config.phone_rate, mobile::DEFAULT_PHONE_RATE);
        assert!(ServeConfig::default().check().is_ok());
        let zero: ServeConfig = toml::from_str("[mobile]\nphone_session_burst = 0\n").unwrap();
        assert!(zero.check().unwrap_err().starts_with("[mobile]"));
        let proxied: ServeConfig =
            toml::from_str("[portal]\ntrusted_proxies = [\"10.0.0.1\", \"::1\"]\n").unwrap();
        assert!(proxied.check().is_ok());
        assert_eq!(proxied.portal.login_limits().trusted_proxies.len(), 2);
        assert_eq!(
            ServeConfig::default().portal.login_limits(),
            imza_portal::login_limits::LoginLimitPolicy::default()
        );
        let zero: ServeConfig = toml::from_str("[portal]\nperson_login_burst = 0\n").unwrap();
        assert!(zero.check().unwrap_err().starts_with("[portal]"));
    }

    #[test]
    fn admission_defaults_scale_with_cores_unless_configured() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let default = Admission::default().limit("x", 2, 10);
        assert_eq!(default.concurrency(), 2 * cores);
        let set = Admission {
            max_concurrent: Some(3),
            queue: Some(0),
        };
        assert_eq!(set.limit("x", 2, 10).concurrency(), 3);
    }
}
