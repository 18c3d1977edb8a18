//! Load generator for the mobile signature service (MSS) of `imza serve` (bench/mobile.sh):
//!
//!   imza-mss-load setup DATA_DIR COUNT OUT.json
//!       straight through the libraries: a `mobile` CA under `root` (if missing), a relying
//!       party, COUNT devices (phone +99450000NNNN, national id NNNNNNN) with P-256
//!       authentication and signing certificates of the `mobile` CA, registered with the
//!       service's store; OUT.json (mode 0600) holds the relying party's name and API key and,
//!       per device, its id and secret, its signing key (PKCS#8 PEM) and certificate.
//!   imza-mss-load run URL OUT.json [--sessions N] [--json FILE] [--server-pid PID]
//!       one simulated phone per device long-polls `GET /mss/v1/device/pending` and answers
//!       every request with a signature of the hash (after checking the verification code);
//!       once every phone polls, N relying-party threads released together each start a
//!       signature session for their own phone (a fresh random SHA-256 hash each) and
//!       long-poll it until COMPLETE. Every session is checked: result OK, the certificate
//!       returned is that phone's, the signature verifies over that session's hash. Prints
//!       (and with --json writes) sessions/s and the latency from request to signature;
//!       exits 1 when any session is lost (no COMPLETE within 60 s), failed or mixed up.
//!       With --server-pid, the CPU the server used while the sessions ran is reported too.
//!       The phones' last long polls are left open when it exits: the server holds them until
//!       they time out (20 s), so a next run should wait that long to measure alone.
//!
//! The file OUT.json holds private keys and secrets: it is written 0600, and the secrets are
//! never printed.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use imza_ca::authority::{DATABASE_FILE, DEFAULT_BACKDATE};
use imza_ca::{InitCa, IssueOptions, IssueRequest, Pki};
use imza_core::alg::DigestAlgorithm;
use imza_core::clock::SystemClock;
use imza_core::key::software::SoftwareKey;
use imza_core::name::parse_dn;
use imza_core::{KeyAlgorithm, SigningKey};
use imza_mobile_sign::http_client::{ApiError, JsonClient};
use imza_mobile_sign::protocol::{
    decode_base64, encode_base64, verification_code, DeviceAnswer, Language, PendingRequests,
    SessionCreated, SessionKind, SessionRequest, SessionResult, SessionState, SessionStatus,
};
use imza_mobile_sign::store::{
    register_device, MobileStore, NewDevice, RegisteredCertificate, SqliteMobileStore, StoreError,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The CA that certifies the simulated phones, and the relying party's name (a number is
/// appended when a previous setup in the same data directory took it).
const MOBILE_CA: &str = "mobile";
const RELYING_PARTY: &str = "mss-load";
/// Phone numbers are `+99450000` and 4 digits.
const MAX_DEVICES: usize = 10_000;
/// Certificates issued per CA call (one store transaction each).
const ISSUE_BATCH: usize = 250;
/// A session with no COMPLETE/OK answer this long after its request is lost.
const SESSION_DEADLINE: Duration = Duration::from_secs(60);
/// How long one long poll asks the service to hold (phones and relying parties alike).
const LONG_POLL_MS: u64 = 20_000;
/// Added to a long poll's wait for the HTTP exchange's own timeout.
const HTTP_SLACK: Duration = Duration::from_secs(10);
/// Timeout of the calls that are answered at once.
const SHORT_CALL: Duration = Duration::from_secs(30);
/// Stack of every phone and relying-party thread: they hold one HTTP exchange each.
const THREAD_STACK: usize = 256 * 1024;
/// How often a phone sends its answer to one request when the exchange breaks.
const MAX_ANSWER_ATTEMPTS: u32 = 3;
/// At most this many problems are kept and printed (the counts cover all of them).
const MAX_PROBLEMS_SHOWN: usize = 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let outcome = match args.get(1).map(String::as_str) {
        Some("setup") if args.len() == 5 => match args[3].parse::<usize>() {
            Ok(count) if (1..=MAX_DEVICES).contains(&count) => {
                setup(Path::new(&args[2]), count, Path::new(&args[4]))
            }
            _ => Err(format!(
                "COUNT must be 1 to {MAX_DEVICES}, not {:?}",
                args[3]
            )),
        },
        Some("run") if args.len() >= 4 => run_command(&args[2], Path::new(&args[3]), &args[4..]),
        _ => {
            eprintln!(
                "usage: imza-mss-load setup DATA_DIR COUNT OUT.json\n       \
                 imza-mss-load run URL OUT.json [--sessions N] [--json FILE] [--server-pid PID]"
            );
            std::process::exit(2);
        }
    };
    match outcome {
        Ok(true) => std::process::exit(0),
        Ok(false) => std::process::exit(1),
        Err(message) => {
            eprintln!("imza-mss-load: {message}");
            std::process::exit(3);
        }
    }
}

/// What `setup` writes and `run` reads.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LoadFile {
    relying_party: String,
    api_key: Zeroizing<String>,
    devices: Vec<LoadDevice>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LoadDevice {
    phone: String,
    national_id: String,
    device_id: String,
    device_secret: Zeroizing<String>,
    /// The signing key, PKCS#8 PEM.
    sign_key: Zeroizing<String>,
    /// The signing certificate, base64 DER.
    sign_cert: String,
}

fn phone_number(i: usize) -> String {
    format!("+99450000{i:04}")
}

fn national_id(i: usize) -> String {
    format!("{i:07}")
}

// ---------------------------------------------------------------- setup

fn setup(data_dir: &Path, count: usize, out: &Path) -> Result<bool, String> {
    let started = Instant::now();
    let pki = Pki::open(
        data_dir,
        &Pki::default_store(data_dir),
        Arc::new(SystemClock),
    )
    .map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let has_mobile_ca = pki
        .store()
        .ca(MOBILE_CA)
        .map_err(|e| format!("reading the CA store: {e}"))?
        .is_some();
    if !has_mobile_ca {
        pki.init_ca(InitCa::new(
            MOBILE_CA,
            "CN=Bench Mobile Signature CA,O=imza,C=AZ",
            Some("root"),
        ))
        .map_err(|e| format!("creating the {MOBILE_CA} CA under root: {e}"))?;
        println!("created the {MOBILE_CA} CA under root");
    }

    // Two P-256 keys a phone: authentication and signing.
    let keys: Vec<(SoftwareKey, SoftwareKey)> = (0..count)
        .into_par_iter()
        .map(|_| {
            Ok((
                SoftwareKey::generate(KeyAlgorithm::EcP256)?,
                SoftwareKey::generate(KeyAlgorithm::EcP256)?,
            ))
        })
        .collect::<Result<_, imza_core::CoreError>>()
        .map_err(|e| format!("generating keys: {e}"))?;

    let authority = pki
        .authority(MOBILE_CA, None)
        .map_err(|e| format!("opening the {MOBILE_CA} CA: {e}"))?;
    let mut auth_certs = Vec::with_capacity(count);
    let mut sign_certs = Vec::with_capacity(count);
    for (profile_name, pick, certs) in [
        ("citizen-auth", 0, &mut auth_certs),
        ("citizen-sign", 1, &mut sign_certs),
    ] {
        let profile = pki
            .profiles()
            .get(profile_name)
            .map_err(|e| format!("profile {profile_name}: {e}"))?;
        let options = IssueOptions {
            profile,
            validity_days: None,
            backdate: DEFAULT_BACKDATE,
        };
        for start in (0..count).step_by(ISSUE_BATCH) {
            let end = (start + ISSUE_BATCH).min(count);
            let requests = (start..end)
                .map(|i| {
                    let key = if pick == 0 { &keys[i].0 } else { &keys[i].1 };
                    Ok(IssueRequest {
                        subject: parse_dn(&format!(
                            "CN=Load Citizen {i},givenName=Citizen,SN=Load,\
                             serialNumber=PNOAZ-{},C=AZ",
                            national_id(i)
                        ))?,
                        public_key: key.public_key_der()?,
                        key_algorithm: KeyAlgorithm::EcP256,
                        alt_names: Vec::new(),
                        asks_for_ca: false,
                    })
                })
                .collect::<Result<Vec<_>, imza_core::CoreError>>()
                .map_err(|e| format!("building the requests: {e}"))?;
            let issued = authority
                .issue(&requests, &options)
                .map_err(|e| format!("issuing {profile_name} certificates: {e}"))?;
            certs.extend(issued.into_iter().map(|record| record.der));
        }
    }
    let issued_in = started.elapsed();

    let store = SqliteMobileStore::open(&data_dir.join(DATABASE_FILE))
        .map_err(|e| format!("opening the service's store: {e}"))?;
    let now = OffsetDateTime::now_utc();
    let (relying_party, api_key) = add_relying_party(&store, now)?;
    let mut devices = Vec::with_capacity(count);
    for (i, ((_, sign_key), (auth_der, sign_der))) in keys
        .iter()
        .zip(auth_certs.into_iter().zip(sign_certs))
        .enumerate()
    {
        let registration = register_device(
            &store,
            &NewDevice {
                phone_number: phone_number(i),
                national_id: national_id(i),
                auth: RegisteredCertificate {
                    ca: MOBILE_CA.into(),
                    der: auth_der,
                },
                sign: RegisteredCertificate {
                    ca: MOBILE_CA.into(),
                    der: sign_der.clone(),
                },
            },
            now,
        )
        .map_err(|e| format!("registering device {}: {e}", phone_number(i)))?;
        let pem = Zeroizing::new(
            sign_key
                .pkey()
                .private_key_to_pem_pkcs8()
                .map_err(|e| format!("encoding a key: {e}"))?,
        );
        devices.push(LoadDevice {
            phone: phone_number(i),
            national_id: national_id(i),
            device_id: registration.device_id,
            device_secret: registration.device_secret,
            sign_key: Zeroizing::new(
                String::from_utf8(pem.to_vec()).map_err(|_| "a PEM key is not UTF-8")?,
            ),
            sign_cert: encode_base64(&sign_der),
        });
    }
    let file = LoadFile {
        relying_party: relying_party.clone(),
        api_key,
        devices,
    };
    let json = Zeroizing::new(
        serde_json::to_vec(&file).map_err(|e| format!("encoding {}: {e}", out.display()))?,
    );
    write_private(out, &json)?;
    println!(
        "{count} devices (+99450000{:04}..+99450000{:04}) with citizen-auth and citizen-sign \
         certificates of the {MOBILE_CA} CA, relying party {relying_party}: {} ({:.1} s, \
         certificates in {:.1} s)",
        0,
        count - 1,
        out.display(),
        started.elapsed().as_secs_f64(),
        issued_in.as_secs_f64()
    );
    Ok(true)
}

/// Registers `mss-load` (or `mss-load-2`, ... when taken): its name and API key.
fn add_relying_party(
    store: &dyn MobileStore,
    now: OffsetDateTime,
) -> Result<(String, Zeroizing<String>), String> {
    for n in 1..=100 {
        let name = match n {
            1 => RELYING_PARTY.to_string(),
            _ => format!("{RELYING_PARTY}-{n}"),
        };
        match imza_mobile_sign::store::add_relying_party(store, &name, now) {
            Ok(key) => return Ok((name, key)),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(format!("registering relying party {name}: {e}")),
        }
    }
    Err(format!(
        "relying parties {RELYING_PARTY} to {RELYING_PARTY}-100 all exist"
    ))
}

/// Writes `bytes` to a new file `path` with mode 0600 (replacing an older one).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------- run

fn run_command(url: &str, file: &Path, options: &[String]) -> Result<bool, String> {
    let mut sessions = None;
    let mut json_out = None;
    let mut server_pid = None;
    let mut rest = options.iter();
    while let Some(option) = rest.next() {
        match (option.as_str(), rest.next()) {
            ("--sessions", Some(n)) => {
                sessions = Some(
                    n.parse::<usize>()
                        .map_err(|_| format!("--sessions {n:?}: not a number"))?,
                )
            }
            ("--json", Some(path)) => json_out = Some(PathBuf::from(path)),
            ("--server-pid", Some(pid)) => {
                server_pid = Some(
                    pid.parse::<u32>()
                        .map_err(|_| format!("--server-pid {pid:?}: not a process id"))?,
                )
            }
            _ => return Err(format!("unknown option or missing value: {option}")),
        }
    }
    let text = Zeroizing::new(std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?);
    let load: LoadFile = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: not a file from `setup`: {e}", file.display()))?;
    let sessions = sessions.unwrap_or(load.devices.len());
    if sessions == 0 || sessions > load.devices.len() {
        return Err(format!(
            "--sessions must be 1 to the {} devices of {}",
            load.devices.len(),
            file.display()
        ));
    }
    let report = run(url, load, sessions, server_pid)?;
    let ok = report.print();
    if let Some(path) = json_out {
        let json = serde_json::to_string_pretty(&report.figures)
            .map_err(|e| format!("encoding the figures: {e}"))?;
        std::fs::write(&path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(ok)
}

/// A phone as the load sees it: its identity, its key and certificate.
struct Phone {
    index: usize,
    client: JsonClient,
    key: SoftwareKey,
    cert_der: Vec<u8>,
    /// The certificate's SubjectPublicKeyInfo, DER, for checking signatures.
    spki: Vec<u8>,
}

/// Problems seen by all threads: counted, the first few kept for the report.
#[derive(Default)]
struct Problems {
    lost: AtomicUsize,
    failed: AtomicUsize,
    mixed_up: AtomicUsize,
    /// Phone-side trouble (a poll or an answer that failed), not counted as a lost session by
    /// itself: the session's own outcome says whether it mattered.
    phone_errors: AtomicUsize,
    /// Phones that stopped polling (refused, or unreachable five times in a row).
    phones_gone: AtomicUsize,
    shown: Mutex<Vec<String>>,
}

impl Problems {
    fn note(&self, counter: &AtomicUsize, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        if shown.len() < MAX_PROBLEMS_SHOWN {
            shown.push(what);
        }
    }
}

/// What one relying-party thread saw of its session.
#[derive(Clone, Copy)]
struct SessionOutcome {
    /// Just before its request: the earliest of these is the release.
    started: Option<Instant>,
    /// From just before the POST to the COMPLETE answer; `None` when the session did not
    /// complete OK with the phone's own valid signature.
    latency: Option<Duration>,
    completed_at: Option<Instant>,
}

#[derive(Serialize)]
struct Figures {
    sessions: usize,
    phones: usize,
    ok: usize,
    lost: usize,
    failed: usize,
    mixed_up: usize,
    phone_errors: usize,
    wall_s: f64,
    sessions_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// CPU used while the sessions ran (from the release until every relying party had its
    /// answer), in cores: this program, and the server given with `--server-pid`.
    load_cores: Option<f64>,
    server_cores: Option<f64>,
}

struct Report {
    figures: Figures,
    problems: Vec<String>,
}

impl Report {
    /// Prints the figures and problems; whether every session came back right.
    fn print(&self) -> bool {
        let f = &self.figures;
        println!(
            "{} sessions ({} phones polling): {} OK, {} lost, {} failed, {} mixed up; \
             {} phone-side errors",
            f.sessions, f.phones, f.ok, f.lost, f.failed, f.mixed_up, f.phone_errors
        );
        println!(
            "wall {:.3} s from release to the last completion: {:.1} sessions/s",
            f.wall_s, f.sessions_per_s
        );
        println!(
            "request to signature: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            f.p50_ms, f.p95_ms, f.p99_ms, f.max_ms
        );
        let show = |cores: Option<f64>| cores.map_or("?".to_string(), |c| format!("{c:.2}"));
        println!(
            "CPU while the sessions ran: server {} cores, load generator {} cores",
            show(f.server_cores),
            show(f.load_cores)
        );
        for problem in &self.problems {
            println!("  problem: {problem}");
        }
        f.lost == 0 && f.failed == 0 && f.mixed_up == 0 && f.ok == f.sessions
    }
}

fn run(
    url: &str,
    load: LoadFile,
    sessions: usize,
    server_pid: Option<u32>,
) -> Result<Report, String> {
    let phones: Vec<Arc<Phone>> = load
        .devices
        .iter()
        .enumerate()
        .map(|(index, device)| {
            let key = openssl::pkey::PKey::private_key_from_pem(device.sign_key.as_bytes())
                .map_err(|e| format!("device {}: its key: {e}", device.phone))
                .and_then(|pkey| {
                    SoftwareKey::from_pkey(pkey, "load phone key")
                        .map_err(|e| format!("device {}: its key: {e}", device.phone))
                })?;
            let cert_der = decode_base64(&device.sign_cert)
                .map_err(|e| format!("device {}: its certificate: {e}", device.phone))?;
            let spki = openssl::x509::X509::from_der(&cert_der)
                .and_then(|cert| cert.public_key())
                .and_then(|key| key.public_key_to_der())
                .map_err(|e| format!("device {}: its certificate: {e}", device.phone))?;
            let client = JsonClient::new(url, &device.device_id, &device.device_secret)
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(Phone {
                index,
                client,
                key,
                cert_der,
                spki,
            }))
        })
        .collect::<Result<_, String>>()?;

    let problems = Arc::new(Problems::default());
    let stop = Arc::new(AtomicBool::new(false));
    let polling = Arc::new(AtomicUsize::new(0));
    // How many requests each phone was sent: exactly one for the phones with a session.
    let received: Arc<Vec<AtomicUsize>> =
        Arc::new((0..phones.len()).map(|_| AtomicUsize::new(0)).collect());

    for phone in &phones {
        let (phone, problems, stop, polling, received) = (
            phone.clone(),
            problems.clone(),
            stop.clone(),
            polling.clone(),
            received.clone(),
        );
        std::thread::Builder::new()
            .name(format!("phone-{}", phone.index))
            .stack_size(THREAD_STACK)
            .spawn(move || simulate_phone(&phone, &problems, &stop, &polling, &received))
            .map_err(|e| format!("starting a phone thread: {e}"))?;
    }
    // Every phone has been answered once (a poll answered at once): its credentials work and
    // it is in its long-poll loop.
    let waiting_since = Instant::now();
    while polling.load(Ordering::Acquire) < phones.len() {
        if waiting_since.elapsed() > SESSION_DEADLINE {
            return Err(format!(
                "only {} of {} phones reached the service within {} s",
                polling.load(Ordering::Acquire),
                phones.len(),
                SESSION_DEADLINE.as_secs()
            ));
        }
        let gone = problems.phones_gone.load(Ordering::Acquire);
        if gone > 0 && polling.load(Ordering::Acquire) + gone >= phones.len() {
            let shown = problems.shown.lock().unwrap_or_else(|p| p.into_inner());
            return Err(format!(
                "phones could not reach the service: {}",
                shown.first().map(String::as_str).unwrap_or("?")
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the long polls that follow the first answers reach the service.
    std::thread::sleep(Duration::from_millis(500));

    let barrier = Arc::new(Barrier::new(sessions + 1));
    let mut relying_parties = Vec::with_capacity(sessions);
    for (phone, device) in phones.iter().zip(&load.devices).take(sessions) {
        let client =
            JsonClient::new(url, &load.relying_party, &load.api_key).map_err(|e| e.to_string())?;
        let (phone, problems, barrier) = (phone.clone(), problems.clone(), barrier.clone());
        let (phone_number, national_id) = (device.phone.clone(), device.national_id.clone());
        let handle = std::thread::Builder::new()
            .name(format!("rp-{}", phone.index))
            .stack_size(THREAD_STACK)
            .spawn(move || {
                barrier.wait();
                one_session(&client, &phone, &phone_number, &national_id, &problems)
            })
            .map_err(|e| format!("starting a relying-party thread: {e}"))?;
        relying_parties.push(handle);
    }
    barrier.wait();
    let cpu_before = (
        cpu_ticks("self"),
        server_pid.map(|pid| cpu_ticks(&pid.to_string())),
    );
    let window = Instant::now();
    let outcomes: Vec<SessionOutcome> = relying_parties
        .into_iter()
        .map(|handle| {
            handle.join().unwrap_or_else(|_| {
                problems.note(&problems.failed, "a relying-party thread panicked".into());
                SessionOutcome {
                    started: None,
                    latency: None,
                    completed_at: None,
                }
            })
        })
        .collect();
    let window = window.elapsed().as_secs_f64();
    let cores = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) if window > 0.0 => Some(a.saturating_sub(b) as f64 / USER_HZ / window),
        _ => None,
    };
    let load_cores = cores(cpu_before.0, cpu_ticks("self"));
    let server_cores = cores(
        cpu_before.1.flatten(),
        server_pid.and_then(|pid| cpu_ticks(&pid.to_string())),
    );
    stop.store(true, Ordering::Release);
    // Phone threads still in a long poll are left to end with the process.

    for (index, count) in received.iter().enumerate() {
        let count = count.load(Ordering::Relaxed);
        let expected = usize::from(index < sessions);
        if count > expected {
            problems.note(
                &problems.mixed_up,
                format!(
                    "phone {} was sent {count} requests, expected {expected}",
                    phone_number(index)
                ),
            );
        }
    }

    let mut latencies: Vec<Duration> = outcomes.iter().filter_map(|o| o.latency).collect();
    latencies.sort_unstable();
    // From the first request (the threads leave the barrier together, but with a thousand
    // of them on a few cores the first runs well before this thread is scheduled again) to
    // the last completion.
    let first = outcomes.iter().filter_map(|o| o.started).min();
    let last = outcomes.iter().filter_map(|o| o.completed_at).max();
    let wall = match (first, last) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    };
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let percentile = |p: f64| {
        // Nearest rank: the smallest value with at least p of the values at or below it.
        let rank = ((p * latencies.len() as f64).ceil() as usize).max(1);
        ms(latencies.get(rank - 1))
    };
    let figures = Figures {
        sessions,
        phones: phones.len(),
        ok: latencies.len(),
        lost: problems.lost.load(Ordering::Relaxed),
        failed: problems.failed.load(Ordering::Relaxed),
        mixed_up: problems.mixed_up.load(Ordering::Relaxed),
        phone_errors: problems.phone_errors.load(Ordering::Relaxed),
        wall_s: wall.as_secs_f64(),
        sessions_per_s: match wall.as_secs_f64() {
            w if w > 0.0 => sessions as f64 / w,
            _ => 0.0,
        },
        p50_ms: percentile(0.50),
        p95_ms: percentile(0.95),
        p99_ms: percentile(0.99),
        max_ms: ms(latencies.last()),
        load_cores,
        server_cores,
    };
    let shown = problems
        .shown
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(Report {
        figures,
        problems: shown,
    })
}

/// A phone: long-polls its pending requests and signs each one it has not answered yet.
fn simulate_phone(
    phone: &Phone,
    problems: &Problems,
    stop: &AtomicBool,
    polling: &AtomicUsize,
    received: &[AtomicUsize],
) {
    let who = phone_number(phone.index);
    // The first poll is answered at once: it proves the credentials before the release.
    let mut timeout_ms = 0;
    // Requests seen (each counted once), and those given up on or answered: a request whose
    // answer did not reach the service is still pending and comes back at the next poll.
    let mut seen: HashSet<String> = HashSet::new();
    let mut attempts: HashMap<String, u32> = HashMap::new();
    let mut failures_in_a_row = 0u32;
    while !stop.load(Ordering::Acquire) {
        let path = format!("/device/pending?timeoutMs={timeout_ms}");
        let wait = Duration::from_millis(timeout_ms) + HTTP_SLACK;
        let pending: PendingRequests = match phone.client.get(&path, wait) {
            Ok(pending) => pending,
            Err(e) => {
                // A refusal (wrong credentials, say) will not change; a broken connection
                // may.
                let refused = matches!(e, ApiError::Refused { .. });
                problems.note(&problems.phone_errors, format!("phone {who}: poll: {e}"));
                failures_in_a_row += 1;
                if refused || failures_in_a_row >= 5 {
                    problems.phones_gone.fetch_add(1, Ordering::Release);
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        failures_in_a_row = 0;
        // What the first poll brings was started before this run's sessions (none start
        // before every phone has had its first answer): left over from an earlier run that
        // was cut short. It is answered, so that it leaves, but not counted.
        let leftovers = timeout_ms == 0;
        if leftovers {
            polling.fetch_add(1, Ordering::Release);
            timeout_ms = LONG_POLL_MS;
        }
        // The service sends the RUNNING requests of this device; a handful at most here.
        for request in pending.requests.iter().take(16) {
            if seen.insert(request.session_id.clone()) {
                if let Some(count) = received.get(phone.index).filter(|_| !leftovers) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            let tries = attempts.entry(request.session_id.clone()).or_insert(0);
            if *tries >= MAX_ANSWER_ATTEMPTS {
                continue;
            }
            *tries += 1;
            if answer(phone, &who, request, problems) == Answered::Done {
                *tries = MAX_ANSWER_ATTEMPTS;
            }
        }
    }
}

/// Whether a request is dealt with, or its answer should be sent again if it comes back.
#[derive(PartialEq, Eq)]
enum Answered {
    Done,
    TryAgain,
}

/// Checks one pending request and answers it with a signature of its hash.
fn answer(
    phone: &Phone,
    who: &str,
    request: &imza_mobile_sign::protocol::PendingRequest,
    problems: &Problems,
) -> Answered {
    if !is_plain_id(&request.session_id) {
        problems.note(
            &problems.mixed_up,
            format!("phone {who}: a session id that cannot be a path segment"),
        );
        return Answered::Done;
    }
    let hash = match decode_base64(&request.hash) {
        Ok(hash) if request.hash_type == DigestAlgorithm::Sha256 && hash.len() == 32 => hash,
        _ => {
            problems.note(
                &problems.mixed_up,
                format!(
                    "phone {who}: request {} carries no SHA-256 hash",
                    request.session_id
                ),
            );
            return Answered::Done;
        }
    };
    if request.kind != SessionKind::Signature
        || request.verification_code != verification_code(&hash)
    {
        problems.note(
            &problems.mixed_up,
            format!(
                "phone {who}: request {} is a {} with verification code {:?}, expected a \
                 signature with {:?}",
                request.session_id,
                request.kind.name(),
                request.verification_code,
                verification_code(&hash)
            ),
        );
        return Answered::Done;
    }
    let signature = match phone.key.sign_digest(DigestAlgorithm::Sha256, &hash) {
        Ok(signature) => signature,
        Err(e) => {
            problems.note(&problems.phone_errors, format!("phone {who}: signing: {e}"));
            return Answered::Done;
        }
    };
    let body = DeviceAnswer {
        result: SessionResult::Ok,
        signature: Some(encode_base64(&signature)),
    };
    let path = format!("/device/session/{}", request.session_id);
    match phone
        .client
        .post::<_, SessionStatus>(&path, &body, SHORT_CALL)
    {
        Ok(status)
            if status.state == SessionState::Complete
                && status.result == Some(SessionResult::Ok) => {}
        Ok(status) => problems.note(
            &problems.phone_errors,
            format!(
                "phone {who}: the service took the answer to {} as {}",
                request.session_id,
                result_name(status.result)
            ),
        ),
        Err(e) => {
            problems.note(
                &problems.phone_errors,
                format!("phone {who}: answering {}: {e}", request.session_id),
            );
            // A refusal (409: answered already, 404) will not change; a broken exchange may.
            if !matches!(e, ApiError::Refused { .. }) {
                return Answered::TryAgain;
            }
        }
    }
    Answered::Done
}

/// Clock ticks per second of the times in `/proc/PID/stat` (USER_HZ, 100 on every Linux
/// architecture imza builds for).
const USER_HZ: f64 = 100.0;

/// CPU time (user + system, every thread) used so far by process `pid` (or `self`), in
/// USER_HZ ticks; `None` when it cannot be read.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces and parentheses): state is the
    // first, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

fn result_name(result: Option<SessionResult>) -> &'static str {
    result.map_or("no result", SessionResult::name)
}

/// Session ids go into URL paths: only base64url/hex characters, bounded length.
fn is_plain_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One relying party's signature session for `phone`: start it, long-poll it to COMPLETE,
/// check what came back.
fn one_session(
    client: &JsonClient,
    phone: &Phone,
    phone_number: &str,
    national_id: &str,
    problems: &Problems,
) -> SessionOutcome {
    let nothing = SessionOutcome {
        started: None,
        latency: None,
        completed_at: None,
    };
    let mut hash = [0u8; 32];
    if let Err(e) = openssl::rand::rand_bytes(&mut hash) {
        problems.note(
            &problems.failed,
            format!("{phone_number}: random hash: {e}"),
        );
        return nothing;
    }
    let request = SessionRequest {
        phone_number: phone_number.to_string(),
        national_identity_number: national_id.to_string(),
        hash: encode_base64(&hash),
        hash_type: DigestAlgorithm::Sha256,
        display_text: Some(format!("Load test document {}", phone.index)),
        language: Language::Eng,
    };
    let started = Instant::now();
    let deadline = started + SESSION_DEADLINE;
    let nothing = SessionOutcome {
        started: Some(started),
        ..nothing
    };
    let created: SessionCreated = match client.post("/signature", &request, SHORT_CALL) {
        Ok(created) => created,
        Err(e) => {
            problems.note(
                &problems.failed,
                format!("{phone_number}: starting the session: {e}"),
            );
            return nothing;
        }
    };
    if !is_plain_id(&created.session_id) {
        problems.note(
            &problems.failed,
            format!("{phone_number}: the service gave a session id that is no path segment"),
        );
        return nothing;
    }
    let status = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            problems.note(
                &problems.lost,
                format!(
                    "{phone_number}: session {} not complete after {} s",
                    created.session_id,
                    SESSION_DEADLINE.as_secs()
                ),
            );
            return nothing;
        }
        let wait_ms = (left.as_millis() as u64).min(LONG_POLL_MS);
        let path = format!("/session/{}?timeoutMs={wait_ms}", created.session_id);
        match client.get::<SessionStatus>(&path, Duration::from_millis(wait_ms) + HTTP_SLACK) {
            Ok(status) if status.state == SessionState::Complete => break status,
            Ok(_) => {}
            // A refusal (404, 401) will not change: the session is lost to this party.
            Err(e @ ApiError::Refused { .. }) => {
                problems.note(
                    &problems.lost,
                    format!("{phone_number}: session {}: {e}", created.session_id),
                );
                return nothing;
            }
            Err(e) => {
                problems.note(
                    &problems.phone_errors,
                    format!("{phone_number}: polling {}: {e}", created.session_id),
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let latency = started.elapsed();
    let completed_at = Instant::now();
    if status.result != Some(SessionResult::Ok) {
        problems.note(
            &problems.failed,
            format!(
                "{phone_number}: session {} ended with {}",
                created.session_id,
                result_name(status.result)
            ),
        );
        return SessionOutcome {
            latency: None,
            completed_at: Some(completed_at),
            started: Some(started),
        };
    }
    let cert = status.cert.as_deref().map(decode_base64);
    let signature = status.signature.as_ref().map(|s| decode_base64(&s.value));
    let verdict = match (cert, signature) {
        (Some(Ok(cert)), _) if cert != phone.cert_der => {
            Err("the certificate returned is not this phone's".to_string())
        }
        (Some(Ok(_)), Some(Ok(signature))) => imza_core::verify::verify_digest(
            &phone.spki,
            DigestAlgorithm::Sha256,
            &hash,
            &signature,
        )
        .map_err(|e| format!("the signature does not verify over this session's hash: {e}")),
        _ => Err("OK without a readable certificate and signature".to_string()),
    };
    match verdict {
        Ok(()) => SessionOutcome {
            latency: Some(latency),
            completed_at: Some(completed_at),
            started: Some(started),
        },
        Err(why) => {
            problems.note(
                &problems.mixed_up,
                format!("{phone_number}: session {}: {why}", created.session_id),
            );
            SessionOutcome {
                latency: None,
                completed_at: Some(completed_at),
                started: Some(started),
            }
        }
    }
}
