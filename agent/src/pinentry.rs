//! Asking the citizen for the PIN through a pinentry program (GnuPG's `pinentry`, or any
//! program speaking its Assuan protocol: `SETTITLE`, `SETDESC`, `SETPROMPT`, `GETPIN`, `BYE`;
//! see the Assuan manual, "Client requests" and "Percent escaping"). The agent asks, never the
//! page: the dialog is the desktop's own, it names the origin asking, and the PIN goes from the
//! dialog to the card without passing through the browser.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use zeroize::Zeroizing;

/// Longest line read from the pinentry (Assuan's own limit is 1000 bytes).
const MAX_LINE_BYTES: u64 = 1000;
/// Most lines read for one command (status and comment lines before its `OK`).
const MAX_LINES_PER_COMMAND: usize = 32;
/// Longest PIN accepted back (PIV PINs are 6 to 8 digits; PKCS#11 tokens allow longer).
const MAX_PIN_CHARS: usize = 64;
/// Assuan's error code for a dialog the user cancelled (GPG_ERR_CANCELED, source pinentry).
const CANCELLED: &str = "83886179";

/// What is shown in the PIN dialog.
#[derive(Clone, Debug)]
pub struct PinRequest {
    /// The window title.
    pub title: String,
    /// The description: who asks, for what, with which certificate.
    pub description: String,
    /// The prompt beside the field (`PIN:`).
    pub prompt: String,
    /// A message shown above the field (a previous wrong PIN), if any.
    pub error: Option<String>,
}

/// Why no PIN came back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinentryError {
    #[error("the citizen cancelled the PIN dialog")]
    Cancelled,
    #[error("no answer from the PIN dialog within {0:?}")]
    TimedOut(Duration),
    #[error("the PIN dialog {program} could not be used: {reason}")]
    Failed { program: String, reason: String },
}

/// The pinentry program to run, and how long the citizen has to answer.
#[derive(Clone, Debug)]
pub struct Pinentry {
    program: PathBuf,
    timeout: Duration,
}

impl Pinentry {
    pub fn new(program: &Path, timeout: Duration) -> Pinentry {
        Pinentry {
            program: program.to_path_buf(),
            timeout,
        }
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Runs the program, shows `request` and returns the PIN typed. The program is killed
    /// after the timeout, so an abandoned dialog does not hold the card for ever.
    pub fn get_pin(&self, request: &PinRequest) -> Result<Zeroizing<String>, PinentryError> {
        let failed = |reason: String| PinentryError::Failed {
            program: self.program.display().to_string(),
            reason,
        };
        let mut child = Command::new(&self.program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| failed(format!("cannot start it: {e}")))?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => (stdin, stdout),
            _ => return Err(failed("no pipes to it".into())),
        };
        // The watchdog ends the program when the time is up; reading then meets end of file.
        let (done, watched) = mpsc::channel::<()>();
        let timeout = self.timeout;
        let child_id = child.id();
        let watchdog = std::thread::spawn(move || {
            let expired = matches!(
                watched.recv_timeout(timeout),
                Err(mpsc::RecvTimeoutError::Timeout)
            );
            if expired {
                // The child is ours and not yet reaped (its handle is waited on below, after
                // this thread is joined): the pid cannot have been reused.
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(child_id.to_string())
                    .status();
            }
            expired
        });
        let mut session = Session {
            stdin,
            stdout: BufReader::new(stdout),
        };
        let result = session.converse(request);
        drop(session);
        let _ = done.send(());
        let expired = watchdog.join().unwrap_or(false);
        reap(&mut child);
        match result {
            Err(_) if expired => Err(PinentryError::TimedOut(timeout)),
            Err(Conversation::Cancelled) => Err(PinentryError::Cancelled),
            Err(Conversation::Broken(reason)) => Err(failed(reason)),
            Ok(pin) => Ok(pin),
        }
    }
}

fn reap(child: &mut Child) {
    for _ in 0..50 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

enum Conversation {
    Cancelled,
    Broken(String),
}

struct Session {
    stdin: ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Session {
    fn converse(&mut self, request: &PinRequest) -> Result<Zeroizing<String>, Conversation> {
        self.expect_ok()?; // the greeting
        self.command(&format!("SETTITLE {}", escape(&request.title)))?;
        self.command(&format!("SETDESC {}", escape(&request.description)))?;
        self.command(&format!("SETPROMPT {}", escape(&request.prompt)))?;
        if let Some(error) = &request.error {
            self.command(&format!("SETERROR {}", escape(error)))?;
        }
        self.send("GETPIN")?;
        let mut pin: Option<Zeroizing<String>> = None;
        for _ in 0..MAX_LINES_PER_COMMAND {
            let line = self.line()?;
            if let Some(data) = line.strip_prefix("D ") {
                let decoded = unescape(data)
                    .ok_or_else(|| Conversation::Broken("a malformed data line".into()))?;
                if decoded.chars().count() > MAX_PIN_CHARS {
                    return Err(Conversation::Broken("an overlong PIN".into()));
                }
                pin = Some(decoded);
            } else if line.as_str() == "OK" || line.starts_with("OK ") {
                let _ = self.send("BYE");
                return match pin {
                    Some(pin) if !pin.is_empty() => Ok(pin),
                    // An empty PIN is a slip, never worth one of the card's few tries.
                    _ => Err(Conversation::Cancelled),
                };
            } else if line.starts_with("ERR ") {
                return Err(error_of(&line));
            }
            // S (status) and # (comment) lines are informative.
        }
        Err(Conversation::Broken("too many lines after GETPIN".into()))
    }

    fn command(&mut self, line: &str) -> Result<(), Conversation> {
        self.send(line)?;
        self.expect_ok()
    }

    fn send(&mut self, line: &str) -> Result<(), Conversation> {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| Conversation::Broken(format!("writing to it failed: {e}")))
    }

    fn expect_ok(&mut self) -> Result<(), Conversation> {
        for _ in 0..MAX_LINES_PER_COMMAND {
            let line = self.line()?;
            if line.as_str() == "OK" || line.starts_with("OK ") {
                return Ok(());
            }
            if line.starts_with("ERR ") {
                return Err(error_of(&line));
            }
        }
        Err(Conversation::Broken("too many lines without OK".into()))
    }

    /// One line, without its newline; the data lines carry the PIN, so the buffer is zeroed.
    fn line(&mut self) -> Result<Zeroizing<String>, Conversation> {
        let mut bytes = Zeroizing::new(Vec::new());
        let read = (&mut self.stdout)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| Conversation::Broken(format!("reading from it failed: {e}")))?;
        if read == 0 {
            return Err(Conversation::Broken("it ended without answering".into()));
        }
        if bytes.last() != Some(&b'\n') {
            return Err(Conversation::Broken("it sent an overlong line".into()));
        }
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        match std::str::from_utf8(&bytes) {
            Ok(text) => Ok(Zeroizing::new(text.to_string())),
            Err(_) => Err(Conversation::Broken(
                "it sent a line that is not UTF-8".into(),
            )),
        }
    }
}

fn error_of(line: &str) -> Conversation {
    let code = line
        .strip_prefix("ERR ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("");
    // The low 16 bits are the error code: 99 is GPG_ERR_CANCELED whatever the source.
    let cancelled = code == CANCELLED || code.parse::<u32>().is_ok_and(|n| n & 0xffff == 99);
    if cancelled {
        Conversation::Cancelled
    } else {
        Conversation::Broken(format!("it answered {}", crate::origin::shown(line)))
    }
}

/// Assuan's percent escaping of a command argument: `%`, CR and LF (and other control
/// characters, which a dialog would not show anyway).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            c if (c as u32) < 0x20 => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The data of a `D` line with its `%XX` escapes decoded; `None` when malformed.
fn unescape(data: &str) -> Option<Zeroizing<String>> {
    let bytes = data.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = std::str::from_utf8(&out).ok()?;
    Some(Zeroizing::new(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Held while a test writes a script and while one runs a pinentry: a script file still
    /// open for writing in one test, inherited by the child another test forks at that
    /// moment, would make its exec fail with "Text file busy" (ETXTBSY).
    static SPAWNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn spawning() -> std::sync::MutexGuard<'static, ()> {
        SPAWNING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        let _writing = spawning();
        let path = dir.join("pinentry");
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// `Pinentry::get_pin` of `program`, under [`SPAWNING`].
    fn get_pin(program: &Path, timeout: Duration) -> Result<Zeroizing<String>, PinentryError> {
        let _running = spawning();
        Pinentry::new(program, timeout).get_pin(&request())
    }

    fn request() -> PinRequest {
        PinRequest {
            title: "imza".into(),
            description: "https://portal.gov.az asks 100%\nfor your PIN".into(),
            prompt: "PIN:".into(),
            error: None,
        }
    }

    #[test]
    fn escaping_round_trips() {
        assert_eq!(escape("a%b\nc"), "a%25b%0Ac");
        assert_eq!(unescape("12%2534").unwrap().as_str(), "12%34");
        assert!(unescape("12%2").is_none());
        assert!(unescape("12%zz").is_none());
    }

    #[test]
    fn a_pin_comes_back_and_the_description_is_shown_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("desc");
        let program = script(
            dir.path(),
            &format!(
                "echo 'OK ready'\nwhile read -r line; do case \"$line\" in \
                 SETDESC*) echo \"$line\" >> {log}; echo OK;; \
                 GETPIN) echo 'D 12%2534'; echo OK;; BYE) echo OK; exit 0;; \
                 *) echo OK;; esac; done\n",
                log = log.display()
            ),
        );
        let pin = get_pin(&program, Duration::from_secs(10)).unwrap();
        assert_eq!(pin.as_str(), "12%34");
        let shown = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            shown.trim_end(),
            "SETDESC https://portal.gov.az asks 100%25%0Afor your PIN"
        );
    }

    #[test]
    fn cancel_timeout_and_nonsense_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = script(
            dir.path(),
            "echo OK\nwhile read -r line; do case \"$line\" in \
             GETPIN) echo 'ERR 83886179 Operation cancelled <Pinentry>';; *) echo OK;; esac; done\n",
        );
        assert_eq!(
            get_pin(&cancel, Duration::from_secs(10)),
            Err(PinentryError::Cancelled)
        );
        let dir2 = tempfile::tempdir().unwrap();
        let slow = script(dir2.path(), "echo OK\nexec sleep 30\n");
        let started = std::time::Instant::now();
        assert_eq!(
            get_pin(&slow, Duration::from_millis(300)),
            Err(PinentryError::TimedOut(Duration::from_millis(300)))
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let missing = get_pin(Path::new("/nonexistent/pinentry"), Duration::from_secs(1));
        assert!(matches!(missing, Err(PinentryError::Failed { .. })));
    }
}
