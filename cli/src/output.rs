//! Output helpers: errors with exit codes, files written safely, progress on terminals only.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use imza_ca::CaError;
use imza_core::{pem, CoreError};
use imza_validation::{read_certificates, read_crls, Certificate, Crl};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use zeroize::Zeroizing;

/// Largest small input file read (certificates, PKCS#12 files, time-stamp tokens).
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024;
/// Largest CSR read: a PKCS#10 request of an RSA-16384 key with a long subject is under 8 KiB.
pub const MAX_CSR_BYTES: u64 = 64 * 1024;

/// Why a command failed, and which exit code says so. The one rule of every command: 0
/// success, 1 a "no" verdict, 2 what the command was given is wrong (its arguments, the files
/// it names and their contents, a PIN, a name the store does not hold), 3 what it needs around
/// it failed or is missing (the database, pcscd, a reader or card, a PKCS#11 device, the
/// network, the disk) or imza itself failed. An error is classed by its kind (the variant of a
/// typed error, the [`std::io::ErrorKind`] of an I/O error), never by its text.
pub enum Failure {
    /// 1: the answer is "no" (broken audit chain, an invalid signature or certificate).
    Verdict(String),
    /// 2: bad usage or bad input.
    Input(String),
    /// 3: the environment failed: a service, a device, the network or the disk.
    Environment(String),
    /// 3: imza failed (a bug, or a library refusing what imza made).
    Internal(String),
}

/// A store failure as the CLI reports it: the database failing, unreachable, damaged or newer
/// than this imza is an environment failure (exit 3); a refused name, a missing record or a
/// malformed value is the operator's input (exit 2).
pub fn store_failure(e: imza_store::StoreError) -> Failure {
    use imza_store::StoreError;
    match e {
        StoreError::Backend(_)
        | StoreError::Unavailable(_)
        | StoreError::Corrupt(_)
        | StoreError::NewerSchema { .. } => Failure::Environment(e.to_string()),
        StoreError::Conflict(_)
        | StoreError::NotFound(_)
        | StoreError::Invalid(_)
        | StoreError::AlreadyRevoked { .. } => Failure::Input(e.to_string()),
    }
}

/// Whether an I/O error is the path's fault (exit 2: missing, not allowed, in the way, not a
/// file name) or the system's (exit 3: disk full, I/O error, anything else).
pub fn io_is_input(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        NotFound
            | PermissionDenied
            | AlreadyExists
            | NotADirectory
            | IsADirectory
            | ReadOnlyFilesystem
            | InvalidFilename
            | InvalidInput
            | InvalidData
            | AddrNotAvailable
    )
}

/// `message` about an I/O error `e`, classed by [`io_is_input`].
pub fn io_class(e: &std::io::Error, message: String) -> Failure {
    if io_is_input(e) {
        Failure::Input(message)
    } else {
        Failure::Environment(message)
    }
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Verdict(_) => 1,
            Failure::Input(_) => 2,
            Failure::Environment(_) | Failure::Internal(_) => 3,
        }
    }

    /// One line, no newlines from nested errors.
    pub fn message(&self) -> String {
        let (prefix, text) = match self {
            Failure::Verdict(t) => ("", t),
            Failure::Input(t) | Failure::Environment(t) => ("error: ", t),
            Failure::Internal(t) => ("internal error: ", t),
        };
        format!("{prefix}{}", text.replace('\n', " "))
    }
}

impl From<CaError> for Failure {
    fn from(e: CaError) -> Self {
        match e {
            CaError::AuditBroken(_) => Failure::Verdict(e.to_string()),
            CaError::Key(core) => core.into(),
            CaError::Store(store) => store_failure(store),
            CaError::Io { ref source, .. } => io_class(source, e.to_string()),
            CaError::UnknownCa { .. }
            | CaError::CaKeysNotHere { .. }
            | CaError::CaExists(_)
            | CaError::InvalidCaName(_)
            | CaError::UnknownProfile { .. }
            | CaError::InvalidProfile { .. }
            | CaError::ProfileViolation { .. }
            | CaError::BadCsr(_)
            | CaError::ProofOfPossession(_)
            | CaError::UnknownSerial { .. }
            | CaError::CaUnusable { .. }
            | CaError::InvalidRequest(_)
            | CaError::NoStore { .. }
            | CaError::DirectoryWritableByOthers { .. }
            | CaError::DirectoryNotOwned { .. }
            | CaError::NotADirectory(_) => Failure::Input(e.to_string()),
        }
    }
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Io { ref source, .. } => io_class(source, e.to_string()),
            // The module, token or device failed.
            CoreError::Pkcs11(_) => Failure::Environment(e.to_string()),
            CoreError::Signing(_) | CoreError::Encoding(_) | CoreError::OpenSsl(_) => {
                Failure::Internal(e.to_string())
            }
            CoreError::UnknownKeyAlgorithm(_)
            | CoreError::UnknownDigestAlgorithm(_)
            | CoreError::UnsupportedKey(_)
            | CoreError::KeyFile { .. }
            | CoreError::KeyFileExists { .. }
            | CoreError::UnsupportedSignatureAlgorithm(_)
            | CoreError::UnsupportedSignatureParameters { .. }
            | CoreError::BadSignature(_)
            | CoreError::InvalidName { .. }
            | CoreError::Malformed { .. }
            | CoreError::Pkcs11Refused(_)
            | CoreError::Pkcs11PinIncorrect { .. }
            | CoreError::Pkcs11PinLocked { .. }
            | CoreError::Pkcs11TokenNotFound { .. }
            | CoreError::Pkcs11KeyNotFound { .. }
            | CoreError::PinUnavailable(_) => Failure::Input(e.to_string()),
        }
    }
}

pub type CliResult = Result<(), Failure>;

pub fn input(msg: impl Into<String>) -> Failure {
    Failure::Input(msg.into())
}

/// Reads a file of at most `limit` bytes; errors name `flag` and the file. Every file a command
/// reads whole goes through here. It reads no further than the limit, so a file that grows
/// meanwhile, `/dev/zero` or a pipe cannot make it read without end: the size a file claims is
/// not trusted.
pub fn read_limited(path: &Path, limit: u64, flag: &str) -> Result<Vec<u8>, Failure> {
    let cannot = |e: std::io::Error| {
        let message = format!("{flag} {}: cannot read: {e}", path.display());
        io_class(&e, message)
    };
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
    let bytes = read_limited(path, MAX_INPUT_BYTES, flag)?;
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

/// Refuses to clobber an existing output file (exit 2) before any work is done. A dangling
/// symbolic link counts as existing: the file could not be created there either.
pub fn ensure_absent(path: &Path) -> CliResult {
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(input(format!(
            "{} already exists; refusing to overwrite it",
            path.display()
        )));
    }
    Ok(())
}

/// Writes a new file (mode 0644, or 0600 when `private`), failing if it exists; durable when
/// this returns. See [`write_whole`].
pub fn write_new(path: &Path, bytes: &[u8], private: bool) -> CliResult {
    write_whole(path, bytes, private)?;
    sync_dir(parent_dir(path))
}

/// Writes a new file (mode 0644, or 0600 when `private`) through `write`, which gets the
/// file open for reading and writing (a PDF is signed in place, in bounded memory): the file
/// appears whole under `path` or not at all, never replacing one; durable when this returns.
pub fn write_new_with(
    path: &Path,
    private: bool,
    write: impl FnOnce(&mut std::fs::File) -> CliResult,
) -> CliResult {
    let mut file = temporary(path, private)?;
    write(file.as_file_mut())?;
    file.as_file()
        .sync_all()
        .map_err(|e| io_failure("cannot write", path, e))?;
    rename_new(file, path)?;
    sync_dir(parent_dir(path))
}

/// Writes (replacing) a public output file, such as a CRL: readers see the old file or the
/// new one, never a mix.
pub fn write_replace(path: &Path, bytes: &[u8]) -> CliResult {
    let file = write_temporary(path, bytes, false, true)?;
    file.persist(path)
        .map_err(|e| io_failure("cannot write", path, e.error))?;
    sync_dir(parent_dir(path))
}

/// Writes a new file so that it appears whole or not at all: the bytes go to a temporary file
/// beside it (`.NAME.XXXXXX.partial`), which is synced and then renamed to `path`, refusing to
/// replace a file that exists. A full disk or a kill leaves no short or empty file under the
/// final name (at most the clearly named temporary one, after a kill). The rename is durable
/// once the directory is synced ([`sync_dir`]), which a batch does once for many files.
fn write_whole(path: &Path, bytes: &[u8], private: bool) -> CliResult {
    let file = write_temporary(path, bytes, private, true)?;
    rename_new(file, path)
}

/// Writes new public files into `dir` whole or not at all, as [`write_whole`] does one, but
/// with one sync of the filesystem (`syncfs`) for all of them: an fsync per file costs a
/// journal commit each, which made a batch three times slower. Each file's result, in order;
/// the renames are durable once `dir` is synced ([`sync_dir`]). If the sync fails, no file is
/// renamed.
pub fn write_whole_many(dir: &Path, files: &[(PathBuf, Vec<u8>)]) -> Vec<CliResult> {
    let written: Vec<Result<tempfile::NamedTempFile, Failure>> = files
        .par_iter()
        .map(|(path, bytes)| write_temporary(path, bytes, false, false))
        .collect();
    let synced = std::fs::File::open(dir)
        .and_then(|d| rustix::fs::syncfs(&d).map_err(std::io::Error::from))
        .map_err(|e| format!("cannot sync {}: {e}", dir.display()));
    written
        .into_par_iter()
        .zip(files)
        .map(|(file, (path, _))| match &synced {
            Ok(()) => rename_new(file?, path),
            Err(message) => Err(Failure::Environment(message.clone())),
        })
        .collect()
}

/// Public files that replace their namesakes as a set, written as they come so that only one
/// is in memory at a time (the CRL shards of `imza ca crl`): each goes to a temporary twin
/// beside it ([`ReplacingFiles::stage`]); [`ReplacingFiles::commit`] syncs the filesystem once
/// and then renames every twin over its name. Readers see each file old or new, never a mix; a
/// failure before the renames replaces no file, and the twins are removed.
pub struct ReplacingFiles {
    dir: PathBuf,
    staged: Vec<(tempfile::TempPath, PathBuf)>,
    failure: Option<Failure>,
}

impl ReplacingFiles {
    /// Files in `dir`, which must exist.
    pub fn new(dir: &Path) -> ReplacingFiles {
        ReplacingFiles {
            dir: dir.to_path_buf(),
            staged: Vec::new(),
            failure: None,
        }
    }

    /// Writes `bytes` for `path` (in the directory) to its temporary twin; the first failure is
    /// kept for [`ReplacingFiles::commit`] and later files are not written.
    pub fn stage(&mut self, path: PathBuf, bytes: &[u8]) {
        if self.failure.is_some() {
            return;
        }
        match write_temporary(&path, bytes, false, false) {
            Ok(file) => self.staged.push((file.into_temp_path(), path)),
            Err(failure) => self.failure = Some(failure),
        }
    }

    /// One sync of the filesystem, then every staged file renamed over its name and the
    /// directory synced. The staged files' names, in order.
    pub fn commit(self) -> Result<Vec<PathBuf>, Failure> {
        if let Some(failure) = self.failure {
            return Err(failure);
        }
        std::fs::File::open(&self.dir)
            .and_then(|d| rustix::fs::syncfs(&d).map_err(std::io::Error::from))
            .map_err(|e| io_failure("cannot sync", &self.dir, e))?;
        let mut written = Vec::with_capacity(self.staged.len());
        for (file, path) in self.staged {
            file.persist(&path)
                .map_err(|e| io_failure("cannot write", &path, e.error))?;
            written.push(path);
        }
        sync_dir(&self.dir)?;
        Ok(written)
    }
}

/// Renames a written temporary file to `path`, refusing to replace a file that exists.
fn rename_new(file: tempfile::NamedTempFile, path: &Path) -> CliResult {
    file.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            input(format!(
                "{} already exists; refusing to overwrite it",
                path.display()
            ))
        } else {
            io_failure("cannot write", path, e.error)
        }
    })?;
    Ok(())
}

/// Syncs a directory, making the renames into it durable.
pub fn sync_dir(dir: &Path) -> CliResult {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_failure("cannot sync", dir, e))
}

/// The temporary twin of `path`, written (and synced if `sync`); removed again if dropped
/// unrenamed.
fn write_temporary(
    path: &Path,
    bytes: &[u8],
    private: bool,
    sync: bool,
) -> Result<tempfile::NamedTempFile, Failure> {
    let mut file = temporary(path, private)?;
    // Through the plain file: NamedTempFile's own Write adds the temporary name to errors.
    let plain = file.as_file_mut();
    plain
        .write_all(bytes)
        .and_then(|()| if sync { plain.sync_all() } else { Ok(()) })
        .map_err(|e| io_failure("cannot write", path, e))?;
    Ok(file)
}

/// An empty temporary twin of `path` (`.NAME.XXXXXX.partial` beside it), removed again if
/// dropped unrenamed.
fn temporary(path: &Path, private: bool) -> Result<tempfile::NamedTempFile, Failure> {
    let name = path
        .file_name()
        .ok_or_else(|| input(format!("{} is not a file name", path.display())))?;
    // At most 100 characters of the name: with the random part and the suffix the temporary
    // name must stay within the 255 bytes a file name may have.
    let shown: String = name.to_string_lossy().chars().take(100).collect();
    let prefix = format!(".{shown}.");
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .permissions(std::fs::Permissions::from_mode(if private {
            0o600
        } else {
            0o644
        }))
        .tempfile_in(parent_dir(path))
        .map_err(|e| io_failure("cannot create", path, e))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// A failed file operation: exit 2 when the path is at fault (missing directory, no
/// permission, a file in the way), 3 when the system is (disk full, I/O error).
fn io_failure(what: &str, path: &Path, e: std::io::Error) -> Failure {
    let message = format!("{what} {}: {e}", path.display());
    io_class(&e, message)
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
            Failure::Environment(t) => Failure::Environment(format!("{t} ({context})")),
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
