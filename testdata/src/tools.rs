//! The independent tools the tests check imza against, run as processes: `openssl` above all.

use std::process::{Command, Output};

/// Runs `openssl` with `args`; panics when it cannot be started.
pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command must be installed for these tests")
}

/// Runs `openssl` with `args` in the directory `dir`; panics with its stderr unless it
/// succeeds.
pub fn openssl_in(dir: &std::path::Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command must be installed for these tests");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Everything a process printed: its stdout, then its stderr.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A program from the project's `.venv` (pyhanko, pkilint's linters), else from PATH.
pub fn venv_tool(name: &str) -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.venv/bin")
        .join(name);
    if venv.exists() {
        venv
    } else {
        name.into()
    }
}

/// Runs pyHanko's CLI (`pyhanko ARGS…`) from the project's `.venv`.
pub fn pyhanko(args: &[&str]) -> Output {
    Command::new(venv_tool("pyhanko"))
        .args(args)
        // Its CryptographyDeprecationWarning is noise in every answer.
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("pyhanko must be installed (`make test` installs it into .venv)")
}

/// `qpdf --check FILE`: panics with qpdf's words unless it finds the file well formed.
pub fn qpdf_check(path: &std::path::Path) {
    let output = Command::new("qpdf")
        .arg("--check")
        .arg(path)
        .output()
        .expect("qpdf must be installed");
    let out = text(&output);
    assert!(
        output.status.success() && out.contains("No syntax or stream encoding errors"),
        "qpdf --check {}: {out}",
        path.display()
    );
}

/// poppler's `pdfsig FILE` (its verdicts; trust from the NSS database in `nss_dir` when
/// given, as `pdfsig -nssdir`).
pub fn pdfsig(path: &std::path::Path, nss_dir: Option<&std::path::Path>) -> Output {
    let mut command = Command::new("pdfsig");
    if let Some(dir) = nss_dir {
        command.arg("-nssdir").arg(format!("sql:{}", dir.display()));
    }
    command
        .arg(path)
        .output()
        .expect("pdfsig (poppler-utils) must be installed")
}
