//! A real PostgreSQL server for tests: a cluster initialised in a temporary directory, on a
//! free loopback port, with password (SCRAM) logins over TCP. Debian's server binaries
//! (`/usr/lib/postgresql/N/bin`); `initdb` refuses root, so as root the cluster belongs to the
//! `postgres` user and its commands run through `runuser`.
//!
//! One cluster per test binary ([`PgCluster::shared`]), a fresh database per test
//! ([`PgCluster::database`]). A watchdog shell stops the server and removes its directory as
//! soon as the test process is gone — also when it panics or is killed — so no server
//! outlives a run.
//!
//! ```no_run
//! let cluster = imza_testenv::postgres::PgCluster::shared();
//! let url = cluster.database(); // postgres://imza:PASSWORD@127.0.0.1:PORT/t_...
//! ```

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The login every test database belongs to.
pub const USER: &str = "imza";

/// A running test cluster.
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    /// Run as the `postgres` user (we are root).
    as_postgres: bool,
    watchdog: Mutex<Option<Child>>,
    databases: AtomicU32,
}

impl PgCluster {
    /// Whether PostgreSQL's server binaries are installed (`scripts/setup.sh` installs them).
    pub fn is_available() -> bool {
        server_bin().is_some()
    }

    /// The cluster shared by this test binary, started on first use.
    pub fn shared() -> &'static PgCluster {
        static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
        CLUSTER.get_or_init(PgCluster::start)
    }

    /// Initialises and starts a new cluster. Panics (a test set-up failure) with the
    /// server's log when it cannot.
    pub fn start() -> PgCluster {
        PgCluster::start_in(&std::env::temp_dir())
    }

    /// As [`PgCluster::start`], with the cluster's directory in `parent` (a small filesystem
    /// of a test's own, say, that the `postgres` user can enter).
    pub fn start_in(parent: &Path) -> PgCluster {
        let bin = server_bin().expect(
            "PostgreSQL server binaries not found under /usr/lib/postgresql (run scripts/setup.sh)",
        );
        let as_postgres = rustix::process::geteuid().is_root();
        let dir = tempfile::Builder::new()
            .prefix("imza-pg-")
            .tempdir_in(parent)
            .expect("temporary directory")
            .keep();
        let password = {
            let mut bytes = [0u8; 16];
            openssl::rand::rand_bytes(&mut bytes).expect("random bytes");
            hex::encode(bytes)
        };
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, &password).expect("password file");
        if as_postgres {
            chown_to_postgres(&dir);
            chown_to_postgres(&pwfile);
        }
        let cluster = PgCluster {
            port: free_port(),
            dir,
            bin,
            password,
            as_postgres,
            watchdog: Mutex::new(None),
            databases: AtomicU32::new(0),
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                USER,
                "--pwfile",
                &pwfile.display().to_string(),
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        );
        let _ = std::fs::remove_file(&pwfile);
        cluster.start_server();
        cluster.arm_watchdog();
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The login's password (hand it to a child process as `PGPASSWORD`, never as an argument).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A URL of `database` without the password.
    pub fn url_without_password(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// A URL of `database` with the password, for use inside the test process.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// Creates a new empty database and returns its name.
    pub fn create_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// A new empty database, as a URL with the password.
    pub fn database(&self) -> String {
        let name = self.create_database();
        self.url(&name)
    }

    /// Runs SQL through `psql` (for checks a test makes behind the store's back).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let output = Command::new("psql")
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(["-d", database, "-c", sql])
            .env("PGPASSWORD", &self.password)
            .stdin(Stdio::null())
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Stops the server (`-m fast`: sessions are disconnected), as an outage would.
    pub fn stop_server(&self) {
        let data = self.data_dir().display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// Stops the server at once (`-m immediate`), whatever state it is in; never panics, so a
    /// test's guard may call it while unwinding.
    pub fn stop_server_now(&self) {
        let data = self.data_dir().display().to_string();
        let _ = self.try_run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// Whether the server is running (`pg_ctl status`).
    pub fn is_running(&self) -> bool {
        let data = self.data_dir().display().to_string();
        self.try_run("pg_ctl", &["-D", &data, "status"]).is_ok()
    }

    /// Starts the server again after [`PgCluster::stop_server`].
    pub fn start_server(&self) {
        let data = self.data_dir().display().to_string();
        let log = self.dir.join("log").display().to_string();
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            self.dir.display(),
            self.port
        );
        let started = self.try_run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-o", &options, "start"],
        );
        if let Err(e) = started {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            panic!("PostgreSQL did not start: {e}\n{log}");
        }
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// A shell that waits for this process to end, then stops the server at once and removes
    /// the cluster's directory.
    fn arm_watchdog(&self) {
        let script = r#"
while kill -0 "$1" 2>/dev/null; do sleep 0.3; done
if [ "$4" = yes ]; then runuser -u postgres -- "$2/pg_ctl" -D "$3/data" -m immediate -w stop
else "$2/pg_ctl" -D "$3/data" -m immediate -w stop; fi >/dev/null 2>&1
rm -rf "$3"
"#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("imza-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(&self.bin)
            .arg(&self.dir)
            .arg(if self.as_postgres { "yes" } else { "no" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("watchdog shell");
        *self.watchdog.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn try_run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let output = self
            .command(program)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {args:?}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        if let Err(e) = self.try_run(program, args) {
            panic!("{e}");
        }
    }
}

impl Drop for PgCluster {
    /// A cluster of one test (not the shared one, which the watchdog ends) stops with it.
    fn drop(&mut self) {
        self.stop_server_now();
        if let Some(mut w) = self
            .watchdog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest installed server's binary directory.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn chown_to_postgres(path: &Path) {
    let output = Command::new("chown")
        .arg("postgres")
        .arg(path)
        .output()
        .expect("chown runs");
    assert!(
        output.status.success(),
        "chown postgres {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after: the
/// cluster here, the browser's driver and the SMTP sink in imza-testdata).
pub fn free_port() -> u16 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(l) = TcpListener::bind("127.0.0.1:0") {
            if let Ok(addr) = l.local_addr() {
                return addr.port();
            }
        }
        assert!(Instant::now() < deadline, "no free loopback port");
    }
}
