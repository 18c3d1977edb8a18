//! Output helpers: errors with exit codes, files written safely, progress on terminals only.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use imza_ca::CaError;
use imza_core::CoreError;
use indicatif::{ProgressBar, ProgressStyle};

/// Largest input file read (CSRs, certificates).
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// Why a command failed, and which exit code says so.
pub enum Failure {
    /// 1: the answer is "no" (broken audit chain).
    Verdict(String),
    /// 2: bad usage or bad input.
    Input(String),
    /// 3: internal or environment failure.
    Internal(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Verdict(_) => 1,
            Failure::Input(_) => 2,
            Failure::Internal(_) => 3,
        }
    }

    /// One line, no newlines from nested errors.
    pub fn message(&self) -> String {
        let (prefix, text) = match self {
            Failure::Verdict(t) => ("", t),
            Failure::Input(t) => ("error: ", t),
            Failure::Internal(t) => ("internal error: ", t),
        };
        format!("{prefix}{}", text.replace('\n', " "))
    }
}

impl From<CaError> for Failure {
    fn from(e: CaError) -> Self {
        if matches!(e, CaError::AuditBroken(_)) {
            Failure::Verdict(e.to_string())
        } else if e.is_user_error() {
            Failure::Input(e.to_string())
        } else {
            Failure::Internal(e.to_string())
        }
    }
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        CaError::from(e).into()
    }
}

pub type CliResult = Result<(), Failure>;

pub fn input(msg: impl Into<String>) -> Failure {
    Failure::Input(msg.into())
}

/// Reads an input file with a size limit.
pub fn read_input(path: &Path) -> Result<Vec<u8>, Failure> {
    let meta = std::fs::metadata(path)
        .map_err(|e| input(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX_INPUT_BYTES {
        return Err(input(format!(
            "{} is larger than {MAX_INPUT_BYTES} bytes",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| input(format!("cannot read {}: {e}", path.display())))
}

/// Refuses to clobber an existing output file (exit 2) before any work is done.
pub fn ensure_absent(path: &Path) -> CliResult {
    if path.exists() {
        return Err(input(format!(
            "{} already exists; refusing to overwrite it",
            path.display()
        )));
    }
    Ok(())
}

/// Writes a new file (mode 0644, or 0600 when `private`), failing if it exists.
pub fn write_new(path: &Path, bytes: &[u8], private: bool) -> CliResult {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| input(format!("cannot create {}: {e}", path.display())))?;
    // Private files (keys, PKCS#12) are synced; public outputs need not be: what must be
    // durable, the certificate in the store, was committed before this is called.
    let written = file.write_all(bytes);
    let synced = if private {
        written.and_then(|_| file.sync_all())
    } else {
        written
    };
    synced.map_err(|e| Failure::Internal(format!("cannot write {}: {e}", path.display())))
}

/// Writes (replacing) a public output file, such as a CRL.
pub fn write_replace(path: &Path, bytes: &[u8]) -> CliResult {
    std::fs::write(path, bytes).map_err(|e| input(format!("cannot write {}: {e}", path.display())))
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

pub fn print_json(value: &serde_json::Value) -> CliResult {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Internal(e.to_string()))?;
    println!("{text}");
    Ok(())
}

impl Failure {
    /// Adds where the failure happened, keeping its exit code.
    pub fn with_context(self, context: String) -> Failure {
        match self {
            Failure::Verdict(t) => Failure::Verdict(format!("{t} ({context})")),
            Failure::Input(t) => Failure::Input(format!("{t} ({context})")),
            Failure::Internal(t) => Failure::Internal(format!("{t} ({context})")),
        }
    }
}
