//! Chip cards for tests: pcscd with the project's virtual readers ([`CardLab`]) and a PIV card
//! emulator ([`VirtualCard`], NIST SP 800-73-4) inserted into them, so OpenSC's PKCS#11 module,
//! OpenSC's tools and imza's own PC/SC code drive a real reader stack: PKCS#11 → OpenSC PIV-II →
//! pcscd → vpcd → emulator.
//!
//! Only one pcscd can run on a machine (its socket `/run/pcscd/pcscd.comm` is fixed), so:
//! - a test process starts one pcscd on first use of [`CardLab::shared`] and shares its 8 readers
//!   between its tests through leases ([`CardLab::lease_reader`]);
//! - test processes of the project take turns through a lock file in the temporary directory
//!   (a second `cargo test` waits for the first to finish with the lab);
//! - pcscd is killed when the test process ends, also when it panics or is killed: a watchdog
//!   shell loop started with pcscd ends it once the test process is gone. A pcscd left by an
//!   earlier test process is waited for (and killed if it lingers); a pcscd not started by this
//!   harness is never touched: the lab panics with what to stop.
//!
//! OpenSC reads `OPENSC_CONF` once, when its module is initialised: set it in child processes
//! (`pkcs11-tool`, `piv-tool`, the `imza` binary) from [`CardLab::opensc_conf`], and in a test
//! process that loads OpenSC's module itself, before the first PKCS#11 call. The conf limits
//! OpenSC to its PIV-II driver and gives every reader one PKCS#11 slot (OpenSC's default of 4
//! slots per reader, 16 in all, would hide half of the 8 readers).
//!
//! ```no_run
//! use imza_testdata::card::{CardLab, PivAlgorithm, PivCardState, PivSlot, VirtualCard};
//!
//! let lab = CardLab::shared();
//! let reader = lab.lease_reader();
//! let mut state = PivCardState::new();
//! state.generate_key(PivSlot::Signature, PivAlgorithm::EcP256);
//! let card = VirtualCard::insert(&reader, state);
//! // Run `pkcs11-tool`, OpenSC's module (OPENSC_CONF = lab.opensc_conf()) or imza on reader.name().
//! drop(card);
//! ```

pub mod piv;
mod state;
pub mod tlv;
mod vpcd;

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, Scope, State};
use tempfile::TempDir;

pub use state::{
    ManagementAlgorithm, PivAlgorithm, PivCardState, PivSlot, DEFAULT_MANAGEMENT_KEY, DEFAULT_PIN,
    DEFAULT_PUK, DISCOVERY_OBJECT,
};
pub use vpcd::{VirtualCard, ATR};

/// OpenSC's PKCS#11 module as Debian installs it: what a citizen's machine loads.
pub const OPENSC_PKCS11_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
/// vsmartcard's vpcd driver for pcscd.
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// pcscd's fixed socket and pid file.
const PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";
const PCSCD_PID_FILE: &str = "/run/pcscd/pcscd.pid";

/// vpcd definitions in the private reader.conf directory; each gives two readers.
const READER_DEFINITIONS: usize = 4;
/// Readers in the lab.
pub const READERS: usize = 2 * READER_DEFINITIONS;
/// The lowest port tried for a reader: above the ports of common services (PostgreSQL 5432,
/// 8080, ...), which the bind check would skip anyway.
const LOWEST_READER_PORT: u16 = 10000;
/// Linux's default ephemeral range, used when /proc does not say.
const DEFAULT_EPHEMERAL_PORTS: RangeInclusive<u16> = 32768..=60999;

/// The prefix of every lab directory: it also marks a pcscd as started by this harness (its
/// command line names the directory).
const LAB_PREFIX: &str = "imza-cardlab-";

/// How long to wait for another test process to finish with the lab before giving up.
const MACHINE_LOCK_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const PCSCD_START_TIMEOUT: Duration = Duration::from_secs(15);
const PCSCD_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The files of one lab: reader definitions, OpenSC configuration, pcscd's log.
pub(crate) struct LabPaths {
    reader_conf: PathBuf,
    opensc_conf: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
}

impl LabPaths {
    /// The last lines pcscd logged, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(30);
        if lines.is_empty() {
            format!("({} is empty)", self.log.display())
        } else {
            lines[start..].join("\n")
        }
    }
}

/// The reader pool: which readers are leased, and whether a test holds the whole lab.
struct Pool {
    state: Mutex<PoolState>,
    changed: Condvar,
}

struct PoolState {
    leased: [bool; READERS],
    exclusive: bool,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn release(&self, index: usize) {
        let mut state = self.lock();
        if let Some(leased) = state.leased.get_mut(index) {
            *leased = false;
        }
        self.changed.notify_all();
    }
}

/// A running pcscd and the watchdog shell that started it.
struct Pcscd {
    pid: u32,
    watchdog: Child,
}

/// The process's pcscd with the project's virtual readers: one pcscd per test process, started on
/// first use with a private reader.conf directory of 4 vpcd definitions = 8 readers on loopback
/// ports, and a private OPENSC_CONF limiting OpenSC to the PIV-II driver. Killed when the test
/// process ends, also on failure (a watchdog). Leftover pcscd of an earlier test process of the
/// project is waited for / cleaned; a foreign pcscd is reported with a clear panic message.
pub struct CardLab {
    _dir: TempDir,
    paths: Arc<LabPaths>,
    /// vpcd's TCP port of each reader, by index.
    ports: [u16; READERS],
    pool: Arc<Pool>,
    pcscd: Mutex<Option<Pcscd>>,
    /// Held for the life of the process: the kernel releases it when the process ends.
    _machine_lock: File,
}

impl CardLab {
    /// True when pcscd and the vpcd driver are installed; tests skip (with a note) otherwise.
    pub fn is_available() -> bool {
        Path::new(VPCD_DRIVER).exists() && Command::new("pcscd").arg("--version").output().is_ok()
    }

    /// The lab of this process, started on first use. Panics when it cannot start (pcscd or vpcd
    /// missing, a foreign pcscd running, no free ports), with what to do about it.
    pub fn shared() -> &'static CardLab {
        static LAB: OnceLock<CardLab> = OnceLock::new();
        LAB.get_or_init(CardLab::start)
    }

    /// The OPENSC_CONF file to set in child processes / before loading OpenSC's module.
    pub fn opensc_conf(&self) -> &Path {
        &self.paths.opensc_conf
    }

    /// pcscd's log file (errors only).
    pub fn pcscd_log(&self) -> &Path {
        &self.paths.log
    }

    /// The PC/SC names of all the lab's readers.
    pub fn reader_names(&self) -> Vec<String> {
        (0..READERS).map(reader_name).collect()
    }

    /// Blocks until one of the 8 readers is free; dropping the lease frees it.
    pub fn lease_reader(&self) -> ReaderLease {
        let lease = self.acquire(false);
        // A test that stopped pcscd under `exclusive` and failed may have left it stopped.
        self.start_pcscd();
        lease
    }

    /// Waits for every lease to be returned and holds new ones off while the guard lives; with it
    /// a test may stop and start pcscd. Do not call it while holding a lease: it would wait for
    /// that lease forever.
    pub fn exclusive(&self) -> ExclusiveLab<'_> {
        let mut state = self.pool.lock();
        while state.exclusive || state.leased.iter().any(|&l| l) {
            state = self
                .pool
                .changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        state.exclusive = true;
        ExclusiveLab { lab: self }
    }

    /// Stops pcscd now, for a program about to exit (the watchdog would stop it a moment after
    /// the process is gone anyway). A later lease starts it again.
    pub fn shutdown(&self) {
        self.stop_pcscd();
    }

    fn acquire(&self, exclusive_holder: bool) -> ReaderLease {
        let mut state = self.pool.lock();
        loop {
            if exclusive_holder || !state.exclusive {
                if let Some(index) = state.leased.iter().position(|&l| !l) {
                    state.leased[index] = true;
                    return ReaderLease {
                        index,
                        name: reader_name(index),
                        port: self.ports[index],
                        pool: Arc::clone(&self.pool),
                        paths: Arc::clone(&self.paths),
                    };
                }
            }
            state = self
                .pool
                .changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn start() -> CardLab {
        assert!(
            CardLab::is_available(),
            "the card lab needs pcscd and vsmartcard-vpcd ({VPCD_DRIVER}): \
             apt-get install pcscd vsmartcard-vpcd opensc"
        );
        let machine_lock = acquire_machine_lock();
        remove_old_lab_directories();
        let dir = tempfile::Builder::new()
            .prefix(LAB_PREFIX)
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create the card lab directory: {e}"));
        let ports = choose_reader_ports(&ephemeral_port_range());
        let reader_conf = dir.path().join("reader.conf.d");
        std::fs::create_dir(&reader_conf)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", reader_conf.display()));
        for definition in 0..READER_DEFINITIONS {
            // vpcd serves a definition's two readers on PORT and PORT + 1.
            let port = ports[2 * definition];
            // vpcd keeps its two connections in globals indexed by slot, and pcscd loads a driver
            // once per LIBPATH: definitions sharing the library would share two connections
            // (only the last definition's ports would be served). A copy per definition is
            // loaded separately (another file, another inode) and gets its own globals.
            let driver = dir.path().join(format!("libifdvpcd-{definition}.so"));
            std::fs::copy(VPCD_DRIVER, &driver).unwrap_or_else(|e| {
                panic!("cannot copy {VPCD_DRIVER} to {}: {e}", driver.display())
            });
            let text = format!(
                "FRIENDLYNAME \"imza test reader {definition}\"\nDEVICENAME /dev/null:{port}\n\
                 LIBPATH {}\nCHANNELID {port}\n",
                driver.display()
            );
            let path = reader_conf.join(format!("vpcd-{definition}.conf"));
            std::fs::write(&path, text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        let opensc_conf = dir.path().join("opensc.conf");
        // Only the PIV-II driver: no probing of every other driver on each connect (it halves the
        // time per call). No file cache: a re-enrolled card must show its new certificate. One
        // PKCS#11 slot per reader: with OpenSC's default of 4 slots per card and 16 in all, only
        // 4 of the 8 readers would be visible.
        std::fs::write(
            &opensc_conf,
            "app default {\n  card_drivers = PIV-II;\n  framework pkcs15 {\n    use_file_caching = no;\n  }\n}\n\
             app opensc-pkcs11 {\n  pkcs11 {\n    slots_per_card = 1;\n    max_virtual_slots = 32;\n  }\n}\n",
        )
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", opensc_conf.display()));
        let paths = LabPaths {
            reader_conf,
            opensc_conf,
            log: dir.path().join("pcscd.log"),
            pid_file: dir.path().join("pcscd.pid"),
        };
        let lab = CardLab {
            _dir: dir,
            paths: Arc::new(paths),
            ports,
            pool: Arc::new(Pool {
                state: Mutex::new(PoolState {
                    leased: [false; READERS],
                    exclusive: false,
                }),
                changed: Condvar::new(),
            }),
            pcscd: Mutex::new(None),
            _machine_lock: machine_lock,
        };
        lab.start_pcscd();
        lab
    }

    fn pcscd_guard(&self) -> MutexGuard<'_, Option<Pcscd>> {
        self.pcscd.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts pcscd unless this lab's pcscd runs; returns once PC/SC lists all 8 readers.
    fn start_pcscd(&self) {
        let mut guard = self.pcscd_guard();
        if let Some(pcscd) = guard.as_mut() {
            if is_running(pcscd.pid) {
                return;
            }
            // It died: reap the watchdog and start again.
            let _ = pcscd.watchdog.kill();
            let _ = pcscd.watchdog.wait();
            *guard = None;
        }
        clear_machine_of_pcscd();
        let _ = std::fs::remove_file(&self.paths.pid_file);
        // The watchdog: pcscd in the background, ended as soon as this process is gone (also
        // when it was killed), polled five times a second.
        let script = r#"pcscd -f -c "$1" >>"$2" 2>&1 &
p=$!
echo "$p" >"$3"
while kill -0 "$4" 2>/dev/null && kill -0 "$p" 2>/dev/null; do sleep 0.2; done
kill "$p" 2>/dev/null
wait "$p""#;
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("imza-cardlab-watchdog")
            .arg(&self.paths.reader_conf)
            .arg(&self.paths.log)
            .arg(&self.paths.pid_file)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sh for pcscd: {e}"));
        let deadline = Instant::now() + PCSCD_START_TIMEOUT;
        let pid = loop {
            let text = std::fs::read_to_string(&self.paths.pid_file).unwrap_or_default();
            if let Ok(pid) = text.trim().parse::<u32>() {
                break pid;
            }
            if Instant::now() > deadline || matches!(watchdog.try_wait(), Ok(Some(_))) {
                let _ = watchdog.kill();
                panic!("pcscd did not start\npcscd log:\n{}", self.paths.log_tail());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        *guard = Some(Pcscd { pid, watchdog });
        let expected = self.reader_names();
        loop {
            let listed = Context::establish(Scope::User)
                .and_then(|context| context.list_readers_owned())
                .map(|names| {
                    names
                        .iter()
                        .map(|n| n.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                });
            if let Ok(listed) = &listed {
                if expected.iter().all(|name| listed.contains(name)) {
                    return;
                }
            }
            if !is_running(pid) || Instant::now() > deadline {
                panic!(
                    "pcscd (pid {pid}, readers in {}) did not list the 8 virtual readers within \
                     {PCSCD_START_TIMEOUT:?}: {listed:?}\npcscd log:\n{}",
                    self.paths.reader_conf.display(),
                    self.paths.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops this lab's pcscd and returns once it is gone.
    fn stop_pcscd(&self) {
        let mut guard = self.pcscd_guard();
        let Some(mut pcscd) = guard.take() else {
            return;
        };
        terminate(pcscd.pid, PCSCD_STOP_TIMEOUT);
        let _ = pcscd.watchdog.kill();
        let _ = pcscd.watchdog.wait();
        if is_running(pcscd.pid) {
            panic!(
                "pcscd (pid {}) did not stop\npcscd log:\n{}",
                pcscd.pid,
                self.paths.log_tail()
            );
        }
    }
}

/// The whole lab for one test: no other test holds a reader while it lives, so the test may stop
/// and start pcscd. Dropping it starts pcscd again if the test left it stopped.
pub struct ExclusiveLab<'a> {
    lab: &'a CardLab,
}

impl ExclusiveLab<'_> {
    /// Stops pcscd; returns once it is gone (PC/SC calls then fail with "no service").
    pub fn stop_pcscd(&self) {
        self.lab.stop_pcscd();
    }

    /// Starts pcscd again; returns once the readers are listed.
    pub fn start_pcscd(&self) {
        self.lab.start_pcscd();
    }

    /// A reader for the exclusive holder (pcscd is not started by this).
    pub fn lease_reader(&self) -> ReaderLease {
        self.lab.acquire(true)
    }
}

impl Drop for ExclusiveLab<'_> {
    fn drop(&mut self) {
        // Starting pcscd can panic; a second panic while unwinding would abort the test run, so
        // a failing test leaves the restart to the next lease.
        if !std::thread::panicking() {
            self.lab.start_pcscd();
        }
        let mut state = self.lab.pool.lock();
        state.exclusive = false;
        self.lab.pool.changed.notify_all();
    }
}

/// One reader of the lab, held by one test. Dropping it frees the reader.
pub struct ReaderLease {
    index: usize,
    name: String,
    port: u16,
    pool: Arc<Pool>,
    paths: Arc<LabPaths>,
}

impl ReaderLease {
    /// The PC/SC name, e.g. "imza test reader 2 00 01".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// vpcd's TCP port for this reader on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The lab's OPENSC_CONF file.
    pub fn opensc_conf(&self) -> &Path {
        &self.paths.opensc_conf
    }

    pub(crate) fn lab_paths(&self) -> Arc<LabPaths> {
        Arc::clone(&self.paths)
    }
}

impl Drop for ReaderLease {
    fn drop(&mut self) {
        self.pool.release(self.index);
    }
}

impl std::fmt::Debug for ReaderLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderLease")
            .field("name", &self.name)
            .field("port", &self.port)
            .finish()
    }
}

/// A stand-in certificate for a card key, for tests not about enrollment: subject
/// `CN=common_name`, the public key `spki` (SubjectPublicKeyInfo DER, as
/// [`PivCardState::generate_key`] returns it), keyUsage digitalSignature and nonRepudiation,
/// valid from a day ago for a year, signed by a throwaway P-256 issuer. Returns the DER.
pub fn certificate_for(spki: &[u8], common_name: &str) -> Vec<u8> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::KeyUsage;
    use openssl::x509::{X509Builder, X509NameBuilder};

    let made = (|| -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let public = PKey::public_key_from_der(spki)?;
        let issuer_key = PKey::from_ec_key(EcKey::generate(
            EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?.as_ref(),
        )?)?;
        let name = |cn: &str| -> Result<openssl::x509::X509Name, openssl::error::ErrorStack> {
            let mut builder = X509NameBuilder::new()?;
            builder.append_entry_by_nid(Nid::COMMONNAME, cn)?;
            builder.append_entry_by_nid(Nid::ORGANIZATIONNAME, "imza test")?;
            Ok(builder.build())
        };
        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        let mut serial = BigNum::new()?;
        serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
        builder.set_serial_number(serial.to_asn1_integer()?.as_ref())?;
        builder.set_subject_name(name(common_name)?.as_ref())?;
        builder.set_issuer_name(name("imza test card issuer")?.as_ref())?;
        builder.set_pubkey(&public)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        builder.set_not_before(Asn1Time::from_unix(now - 86_400)?.as_ref())?;
        builder.set_not_after(Asn1Time::from_unix(now + 365 * 86_400)?.as_ref())?;
        builder.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .non_repudiation()
                .build()?,
        )?;
        builder.sign(&issuer_key, MessageDigest::sha256())?;
        builder.build().to_der()
    })();
    made.unwrap_or_else(|e| panic!("cannot make a certificate for the card key: {e}"))
}

/// Reader `index` (0 to 7): definition `index / 2`, its first or second reader.
fn reader_name(index: usize) -> String {
    format!("imza test reader {} 00 {:02}", index / 2, index % 2)
}

/// Waits until pcscd reports a card in `reader` (`present`) or none, up to `timeout`.
pub(crate) fn wait_for_card(reader: &str, present: bool, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let context = Context::establish(Scope::User).map_err(|e| format!("PC/SC context: {e}"))?;
    let name = CString::new(reader).map_err(|_| format!("reader name {reader:?}"))?;
    let mut states = [ReaderState::new(name, State::UNAWARE)];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "timed out after {timeout:?} waiting for the card to be {}; reader state {:?}",
                if present { "present" } else { "gone" },
                states[0].event_state()
            ));
        }
        match context.get_status_change(deadline - now, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(format!("PC/SC status of {reader}: {e}")),
        }
        let state = states[0].event_state();
        if state.contains(State::UNKNOWN) {
            return Err(format!("pcscd does not know the reader {reader}"));
        }
        let is_present = state.contains(State::PRESENT) && !state.contains(State::MUTE);
        if is_present == present {
            return Ok(());
        }
        states[0].sync_current_state();
    }
}

/// Takes the machine-wide lock of the card lab, waiting for another test process that holds it.
fn acquire_machine_lock() -> File {
    let path = std::env::temp_dir().join("imza-cardlab.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open the card lab lock {}: {e}", path.display()));
    let deadline = Instant::now() + MACHINE_LOCK_TIMEOUT;
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let _ = file.rewind();
                if !told {
                    eprintln!(
                        "card lab: waiting for process {} to finish with pcscd ({})",
                        holder.trim(),
                        path.display()
                    );
                    told = true;
                }
                if Instant::now() > deadline {
                    panic!(
                        "process {} held the card lab ({}) for {MACHINE_LOCK_TIMEOUT:?}",
                        holder.trim(),
                        path.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                panic!("cannot lock {}: {e}", path.display())
            }
        }
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    file
}

/// Directories of earlier labs: their processes have ended (this one holds the machine lock).
fn remove_old_lab_directories() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(LAB_PREFIX) && entry.path().is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Where the kernel picks the local ports of outgoing connections (and of a bind to port 0):
/// `/proc/sys/net/ipv4/ip_local_port_range`, or Linux's default when that cannot be read.
fn ephemeral_port_range() -> RangeInclusive<u16> {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = text.split_whitespace().map(str::parse::<u16>);
    match (bounds.next(), bounds.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => low..=high,
        _ => DEFAULT_EPHEMERAL_PORTS,
    }
}

/// The readers' vpcd ports: two consecutive ports per vpcd definition (reader 2d on the first,
/// 2d + 1 on the second), each free when chosen.
///
/// Chosen outside the kernel's `ephemeral` range: a port there is handed to an outgoing
/// connection at any moment, so a machine busy with many connections (a load test) can hold any
/// of them, and a port checked free may be gone when vpcd binds it. A port outside the range is
/// taken only by a program binding it on purpose, which the bind check sees. The search starts
/// at a place that differs per process and tries each candidate pair once.
fn choose_reader_ports(ephemeral: &RangeInclusive<u16>) -> [u16; READERS] {
    let outside = |p: u16| !ephemeral.contains(&p) && !ephemeral.contains(&(p + 1));
    let mut pairs: Vec<u16> = (LOWEST_READER_PORT..u16::MAX)
        .step_by(2)
        .filter(|&p| outside(p))
        .collect();
    if pairs.is_empty() {
        // The ephemeral range covers every port: the bind check alone must do.
        pairs = (LOWEST_READER_PORT..u16::MAX).step_by(2).collect();
    }
    let start = std::process::id() as usize % pairs.len();
    let is_free = |port: u16| std::net::TcpListener::bind(("0.0.0.0", port)).is_ok();
    let mut ports = [0; READERS];
    let mut found = 0;
    for &p in pairs[start..].iter().chain(&pairs[..start]) {
        if is_free(p) && is_free(p + 1) {
            ports[2 * found] = p;
            ports[2 * found + 1] = p + 1;
            found += 1;
            if found == READER_DEFINITIONS {
                return ports;
            }
        }
    }
    panic!(
        "no {READER_DEFINITIONS} pairs of free consecutive TCP ports for the virtual readers \
         from {LOWEST_READER_PORT} outside the ephemeral range {ephemeral:?}"
    )
}

/// A pcscd process on the machine.
struct PcscdProcess {
    pid: u32,
    command_line: String,
}

impl PcscdProcess {
    /// Started by this harness: its reader directory is a lab directory. A pcscd with an empty
    /// command line is exiting (the kernel has released its memory): the lab pcscd of the
    /// test process that just ended, to be waited for like any other of ours.
    fn is_ours(&self) -> bool {
        self.command_line.is_empty() || self.command_line.contains(LAB_PREFIX)
    }
}

/// Every live pcscd process, from /proc.
fn pcscd_processes() -> Vec<PcscdProcess> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "pcscd")
                && is_running(pid)
        })
        .map(|pid| PcscdProcess {
            pid,
            command_line: std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|bytes| {
                    String::from_utf8_lossy(&bytes)
                        .replace('\0', " ")
                        .trim()
                        .to_string()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Makes room for this lab's pcscd: waits for (or ends) a pcscd of an earlier test process,
/// removes a stale socket, and panics on a pcscd this harness did not start.
fn clear_machine_of_pcscd() {
    let processes = pcscd_processes();
    if let Some(foreign) = processes.iter().find(|p| !p.is_ours()) {
        panic!(
            "a pcscd not started by imza's test harness is running (pid {}: `{}`). Only one \
             pcscd can run on a machine and the card tests need their own, with virtual readers: \
             stop it (`kill {}`, or `systemctl stop pcscd.socket pcscd.service` where systemd \
             runs it) and run the tests again.",
            foreign.pid, foreign.command_line, foreign.pid
        );
    }
    for leftover in &processes {
        // Its test process has ended (this process holds the machine lock); its watchdog ends it
        // within a fraction of a second. Give it a few seconds, then end it ourselves.
        let deadline = Instant::now() + Duration::from_secs(3);
        while is_running(leftover.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if is_running(leftover.pid) {
            eprintln!(
                "card lab: ending pcscd {} left by an earlier test process",
                leftover.pid
            );
            terminate(leftover.pid, Duration::from_secs(5));
        }
    }
    if Path::new(PCSCD_SOCKET).exists() {
        if std::os::unix::net::UnixStream::connect(PCSCD_SOCKET).is_ok() {
            panic!(
                "something listens on {PCSCD_SOCKET} without a pcscd process (systemd's \
                 pcscd.socket?): stop it (`systemctl stop pcscd.socket`) and run the tests again"
            );
        }
        // A socket left by a pcscd that was killed: pcscd refuses to start while it exists.
        let _ = std::fs::remove_file(PCSCD_SOCKET);
        let _ = std::fs::remove_file(PCSCD_PID_FILE);
    }
}

/// True while process `pid` exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain anything.
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

/// SIGTERM, then SIGKILL if `pid` outlives `timeout`; returns once it is gone or after both.
fn terminate(pid: u32, timeout: Duration) {
    for signal in ["-TERM", "-KILL"] {
        let _ = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + timeout;
        while is_running(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !is_running(pid) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_names_follow_pcscd_naming_of_two_readers_per_vpcd_definition() {
        assert_eq!(reader_name(0), "imza test reader 0 00 00");
        assert_eq!(reader_name(5), "imza test reader 2 00 01");
        assert_eq!(reader_name(7), "imza test reader 3 00 01");
    }

    /// A machine with many outgoing connections (a load test) has every port of the old fixed
    /// range 35970..=36277, inside the kernel's ephemeral range, in use: the lab still finds
    /// its readers' ports.
    #[test]
    fn reader_ports_are_found_when_the_old_fixed_range_is_taken() {
        let _taken: Vec<_> = (35970..=36277u16 + 8)
            .filter_map(|port| std::net::TcpListener::bind(("0.0.0.0", port)).ok())
            .collect();
        let ephemeral = ephemeral_port_range();
        let ports = choose_reader_ports(&ephemeral);
        for pair in ports.chunks(2) {
            assert_eq!(pair[1], pair[0] + 1, "{ports:?}");
        }
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), READERS, "{ports:?}");
        for port in ports {
            assert!(!(35970..=36285).contains(&port), "{ports:?}");
            assert!(!ephemeral.contains(&port), "{port} is in {ephemeral:?}");
        }
    }

    #[test]
    fn reader_ports_skip_a_port_in_use() {
        // Every candidate pair but the twenty from 65496 lies in this fake ephemeral range, and
        // the first five of those are in use.
        let ephemeral = LOWEST_READER_PORT..=u16::MAX - 40;
        let taken: Vec<_> = (u16::MAX - 39..=u16::MAX - 30)
            .filter_map(|port| std::net::TcpListener::bind(("0.0.0.0", port)).ok())
            .collect();
        let ports = choose_reader_ports(&ephemeral);
        for port in ports {
            assert!(
                port > u16::MAX - 30,
                "{port} is in use or ephemeral: {ports:?}"
            );
        }
        drop(taken);
    }

    #[test]
    fn a_pcscd_is_ours_only_when_it_reads_a_lab_directory() {
        let ours = PcscdProcess {
            pid: 1,
            command_line: "pcscd -f -c /tmp/imza-cardlab-AbC123/reader.conf.d".into(),
        };
        let system = PcscdProcess {
            pid: 2,
            command_line: "/usr/sbin/pcscd --foreground --auto-exit".into(),
        };
        assert!(ours.is_ours());
        assert!(!system.is_ours());
    }

    #[test]
    fn this_process_is_running_and_a_missing_one_is_not() {
        assert!(is_running(std::process::id()));
        assert!(!is_running(u32::MAX));
    }
}
