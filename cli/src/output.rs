//! Output helpers: errors with exit codes, files written safely, progress on terminals only.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use imza_ca::CaError;
use imza_core::{pem, CoreError};
use imza_validation::{read_certificates, read_crls, Certificate, Crl};
use indicatif::{ProgressBar, ProgressStyle};
use zeroize::Zeroizing;

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

/// Reads a file of at most `limit` bytes (reading no further, so a file that grows meanwhile
/// cannot blow past it); errors name `flag` and the file.
pub fn read_limited(path: &Path, limit: u64, flag: &str) -> Result<Vec<u8>, Failure> {
    let cannot = |e: std::io::Error| input(format!("{flag} {}: cannot read: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, limit + 1), &mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(input(format!(
            "{flag} {} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Every certificate in a PEM or DER file of at most `limit` bytes, parsed (at least one).
pub fn read_certificate_file(
    path: &Path,
    flag: &str,
    limit: u64,
) -> Result<Vec<Certificate>, Failure> {
    let bytes = read_limited(path, limit, flag)?;
    let certificates =
        read_certificates(&bytes).map_err(|e| input(format!("{flag} {}: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(input(format!(
            "{flag} {}: no certificate in it",
            path.display()
        )));
    }
    Ok(certificates)
}

/// Every CRL (full or delta) in a PEM or DER file of at most `limit` bytes (at least one).
pub fn read_crl_file(path: &Path, flag: &str, limit: u64) -> Result<Vec<Crl>, Failure> {
    let bytes = read_limited(path, limit, flag)?;
    let crls = read_crls(&bytes).map_err(|e| input(format!("{flag} {}: {e}", path.display())))?;
    if crls.is_empty() {
        return Err(input(format!("{flag} {}: no CRL in it", path.display())));
    }
    Ok(crls)
}

/// The DER of every certificate in a PEM file (CERTIFICATE blocks, text around them
/// allowed), or the one in a DER file; each must parse as an X.509 certificate for OpenSSL.
/// At least one; read up to [`MAX_INPUT_BYTES`].
pub fn read_certificate_ders(path: &Path, flag: &str) -> Result<Vec<Vec<u8>>, Failure> {
    let bytes = read_input(path)?;
    let bad = |why: String| input(format!("{flag} {}: {why}", path.display()));
    let certificates = if bytes.first() == Some(&0x30) {
        vec![bytes]
    } else {
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("neither PEM nor DER".into()))?;
        pem::all_blocks(text, "certificate")
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .filter(|(label, _)| label == pem::CERTIFICATE)
            .map(|(_, der)| der)
            .collect()
    };
    if certificates.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    for der in &certificates {
        openssl::x509::X509::from_der(der).map_err(|e| bad(format!("not a certificate: {e}")))?;
    }
    Ok(certificates)
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

/// Reads a secret from the environment variable `var`, or asks for it without echo.
pub fn secret(var: Option<&str>, what: &str) -> Result<Zeroizing<String>, Failure> {
    match var {
        Some(var) => std::env::var(var).map(Zeroizing::new).map_err(|_| {
            input(format!(
                "environment variable {var} ({what}) is not set or not UTF-8"
            ))
        }),
        None => {
            if !std::io::stdin().is_terminal() {
                return Err(input(format!(
                    "standard input is not a terminal, so the {what} cannot be asked for; pass it \
                     in an environment variable"
                )));
            }
            rpassword::prompt_password(format!("{what}: "))
                .map(Zeroizing::new)
                .map_err(|e| input(format!("cannot read the {what}: {e}")))
        }
    }
}
