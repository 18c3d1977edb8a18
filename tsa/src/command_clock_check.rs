//! A [`ClockCheck`] that asks the host's time daemon, by running a command (RFC 3161 §2.2,
//! ETSI EN 319 421 §7.7.2: no token while the clock is out of sync or its state unknown).
//!
//! The command runs in a background thread every `interval`; a request only reads the cached
//! result, so checking costs a mutex lock, not a process. The first run happens before
//! [`CommandClockCheck::start`] returns: a TSA built with it never stamps before knowing.
//!
//! # The command
//!
//! Exit status 0 means "synchronised"; anything else means "not synchronised", and the first
//! line it printed (stderr, else stdout) becomes the refusal's reason. The recommended one on
//! a chrony host is [`ClockCommand::chrony`]:
//!
//! ```text
//! chronyc -n waitsync 1 0.1
//! ```
//!
//! which asks chronyd once (`1` try, no waiting) and exits 0 only when it is synchronised with
//! a remaining correction under 0.1 s. That leaves room inside the 1 s accuracy a token
//! claims: genTime is truncated to its second, using up to 1 s of it.
//!
//! `timedatectl show -p NTPSynchronized --value` is *not* usable as it stands: it prints
//! `yes` or `no` and exits 0 either way. Wrap it:
//! `["sh", "-c", "test \"$(timedatectl show -p NTPSynchronized --value)\" = yes"]`.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::clock_check::{ClockCheck, ClockFault};
use crate::{SystemFault, TsaError};

/// A result older than this many intervals is stale: the checker is stuck or gone.
const STALE_AFTER_INTERVALS: u32 = 3;
/// Longest reason kept from the command's output, in characters.
const MAX_REASON_CHARS: usize = 200;
/// Most output read from the command per stream; the rest is drained and dropped.
const MAX_OUTPUT_BYTES: usize = 4096;
/// How often a running command is polled for its exit.
const POLL: Duration = Duration::from_millis(5);
/// How long to wait for the output after the command has exited (a background grandchild
/// may hold the pipe open; its output is not worth waiting for).
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// What to run and how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockCommand {
    /// Program and arguments (no shell: use `["sh", "-c", "..."]` for one).
    pub argv: Vec<String>,
    /// Time between the end of one run and the start of the next.
    pub interval: Duration,
    /// A run still going after this long is killed and counts as a failed check.
    pub timeout: Duration,
}

impl ClockCommand {
    /// `argv` every `interval`, killed after `interval` or 10 s, whichever is shorter: a run
    /// that overlaps the next is already a failure.
    pub fn new(argv: Vec<String>, interval: Duration) -> ClockCommand {
        ClockCommand {
            argv,
            interval,
            timeout: interval.min(Duration::from_secs(10)),
        }
    }

    /// `chronyc -n waitsync 1 0.1` every 10 seconds (see the module documentation).
    pub fn chrony() -> ClockCommand {
        ClockCommand::new(
            ["chronyc", "-n", "waitsync", "1", "0.1"]
                .map(String::from)
                .to_vec(),
            Duration::from_secs(10),
        )
    }
}

/// The cached result of the last run.
struct LastRun {
    finished: Instant,
    result: Result<(), ClockFault>,
}

/// Checks the clock by running a [`ClockCommand`] in a background thread. Dropping it stops
/// the thread (after a run in progress ends).
pub struct CommandClockCheck {
    last: Arc<Mutex<LastRun>>,
    stale_after: Duration,
    /// Dropped with the check, which wakes the thread and ends it.
    _stop: mpsc::Sender<()>,
}

impl CommandClockCheck {
    /// Runs the command once now, then starts the background thread. A first run that fails
    /// is not an error here: the TSA starts and refuses with `timeNotAvailable` until the
    /// clock is in sync (the daemon may still be converging); see [`CommandClockCheck::status`].
    pub fn start(command: ClockCommand) -> Result<CommandClockCheck, TsaError> {
        if command.argv.is_empty() || command.argv[0].is_empty() {
            return Err(TsaError::SystemFailure(SystemFault::ClockCheckConfig {
                problem: "the command is empty",
            }));
        }
        if command.interval.is_zero() || command.timeout.is_zero() {
            return Err(TsaError::SystemFailure(SystemFault::ClockCheckConfig {
                problem: "the interval and the timeout must be more than zero",
            }));
        }
        let first = LastRun {
            result: run_once(&command.argv, command.timeout),
            finished: Instant::now(),
        };
        let last = Arc::new(Mutex::new(first));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(&last);
        let interval = command.interval;
        thread::Builder::new()
            .name("imza-tsa-clock-check".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    // The check was dropped (or, never, told to stop).
                    _ => return,
                }
                let result = run_once(&command.argv, command.timeout);
                *shared.lock().unwrap_or_else(|e| e.into_inner()) = LastRun {
                    finished: Instant::now(),
                    result,
                };
            })
            .map_err(|e| TsaError::SystemFailure(SystemFault::ClockCheckThread(e)))?;
        Ok(CommandClockCheck {
            last,
            stale_after: interval * STALE_AFTER_INTERVALS,
            _stop: stop,
        })
    }

    /// The state a request would see now: for a startup message or a health check.
    pub fn status(&self) -> Result<(), ClockFault> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // Age on the monotonic clock: the wall clock is the thing under suspicion.
        let age = last.finished.elapsed();
        if age > self.stale_after {
            return Err(ClockFault::CheckFailed(format!(
                "the last clock check finished {} s ago, more than {} s (3 intervals): \
                 the check is stuck or has stopped",
                age.as_secs(),
                self.stale_after.as_secs_f64()
            )));
        }
        last.result.clone()
    }
}

impl ClockCheck for CommandClockCheck {
    /// Ignores `now`: the cached result's age is measured on the monotonic clock.
    fn check(&self, _now: OffsetDateTime) -> Result<(), ClockFault> {
        self.status()
    }
}

/// Runs `argv` once with a timeout and judges its exit.
fn run_once(argv: &[String], timeout: Duration) -> Result<(), ClockFault> {
    let program = &argv[0];
    let mut child = Command::new(program)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ClockFault::CheckFailed(format!("cannot run {program}: {e}")))?;
    let stdout = child.stdout.take().map(read_bounded);
    let stderr = child.stderr.take().map(read_bounded);
    let status = wait_with_timeout(&mut child, timeout)
        .map_err(|why| ClockFault::CheckFailed(format!("{program}: {why}")))?;
    if status.success() {
        return Ok(());
    }
    let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| {
        rx.and_then(|rx| rx.recv_timeout(OUTPUT_GRACE).ok())
            .unwrap_or_default()
    };
    let (stderr, stdout) = (collect(stderr), collect(stdout));
    let said = first_line(&stderr)
        .or_else(|| first_line(&stdout))
        .map(|line| format!(": {line}"))
        .unwrap_or_default();
    let how = match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".to_string(),
    };
    Err(ClockFault::Unsynchronised(format!("{program} {how}{said}")))
}

/// Waits for `child` at most `timeout`, killing it (and reaping it) when it runs over.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {} s; killed",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => thread::sleep(POLL),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cannot wait for it: {e}"));
            }
        }
    }
}

/// Reads up to [`MAX_OUTPUT_BYTES`] in a thread, draining the rest so that the command never
/// blocks on a full pipe, and sends what it kept when the stream ends.
fn read_bounded(mut stream: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("imza-tsa-clock-check-output".into())
        .spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = MAX_OUTPUT_BYTES.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
            let _ = tx.send(kept);
        });
    // Without the thread the output is simply not read: the reason then has no text.
    drop(spawned);
    rx
}

/// The first non-blank line, trimmed, without control characters, at most
/// [`MAX_REASON_CHARS`] characters.
fn first_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut kept: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON_CHARS)
        .collect();
    if line.chars().count() > MAX_REASON_CHARS {
        kept.push('…');
    }
    Some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_is_trimmed_bounded_and_printable() {
        assert_eq!(
            first_line(b"\n  \n  hello \x1b[31mred\n second"),
            Some("hello [31mred".into())
        );
        assert_eq!(first_line(b"   \n\t\n"), None);
        let long = "x".repeat(1000);
        let kept = first_line(long.as_bytes()).unwrap();
        assert_eq!(kept.chars().count(), MAX_REASON_CHARS + 1);
        assert!(kept.ends_with('…'));
    }

    #[test]
    fn empty_commands_and_zero_intervals_are_refused() {
        let refused = |command| match CommandClockCheck::start(command) {
            Err(TsaError::SystemFailure(SystemFault::ClockCheckConfig { problem })) => problem,
            Err(other) => panic!("expected a misconfigured clock check, got {other:?}"),
            Ok(_) => panic!("a misconfigured clock check started"),
        };
        let empty = refused(ClockCommand::new(vec![], Duration::from_secs(1)));
        assert!(empty.contains("empty"), "{empty}");
        let zero = refused(ClockCommand::new(vec!["true".into()], Duration::ZERO));
        assert!(zero.contains("more than zero"), "{zero}");
    }

    #[test]
    fn the_recommended_chrony_command_checks_once_within_a_tenth_of_a_second() {
        let chrony = ClockCommand::chrony();
        assert_eq!(chrony.argv, ["chronyc", "-n", "waitsync", "1", "0.1"]);
        assert!(chrony.timeout <= chrony.interval);
    }
}
