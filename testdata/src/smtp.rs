//! A real SMTP server for tests: aiosmtpd (PyPI, in the repository's `.venv`, installed by
//! `scripts/setup.sh`) on a free loopback port, keeping each message it receives as a file of
//! a Maildir in a directory of its own. [`SmtpSink::start`] returns once it accepts
//! connections; dropping the sink (also when a test fails and unwinds) stops the server and
//! removes the directory.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running aiosmtpd and the Maildir its messages land in.
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// The repository's `.venv/bin/python` (where `scripts/setup.sh` installs aiosmtpd).
fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

impl SmtpSink {
    /// Starts aiosmtpd on a free 127.0.0.1 port (tried again on another port if one was
    /// taken meanwhile). Panics, saying what to run, when aiosmtpd is not installed.
    pub fn start() -> SmtpSink {
        let python = python();
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup.sh (it installs aiosmtpd into .venv)",
            python.display()
        );
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("a directory for the sink");
            let maildir = dir.path().join("mail");
            let port = crate::postgres::free_port();
            let child = Command::new(&python)
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start aiosmtpd");
            let mut sink = SmtpSink { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = sink.child.try_wait() {
                    break; // it exited: the port was taken, or it is broken; try again
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return sink;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(sink);
        }
        panic!("aiosmtpd did not start (is it installed? run scripts/setup.sh)");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The messages received so far, each as its raw RFC 5322 text, oldest first by file
    /// time.
    pub fn messages(&self) -> Vec<String> {
        let maildir = self.dir.path().join("mail");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
            .flatten()
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let modified = entry.metadata().ok()?.modified().ok()?;
                Some((modified, entry.path()))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read(path).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect()
    }

    /// Waits (polling, up to `patience`) until at least `count` messages arrived, and returns
    /// them all.
    pub fn wait_for(&self, count: usize, patience: Duration) -> Vec<String> {
        let deadline = Instant::now() + patience;
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() >= deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
