//! The independent tools the tests check imza against, run as processes: `openssl` above all,
//! pyHanko, and for PDFs qpdf, poppler (`pdftotext`, `pdftoppm`, `pdfsig`) and zbar's
//! `zbarimg` for the QR codes on rendered pages. Each panics when its tool is missing: `make
//! test` installs them all, and a check that quietly did not run would prove nothing.

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
        .join("../../.venv/bin")
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

/// `qpdf --check FILE`: panics with qpdf's words unless it finds the file well formed; what
/// it said (a caller may want no warning either: [`qpdf_check_clean`]).
pub fn qpdf_check(path: &std::path::Path) -> String {
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
    out
}

/// [`qpdf_check`], and not a warning either: for files imza writes from scratch.
pub fn qpdf_check_clean(path: &std::path::Path) {
    let said = qpdf_check(path);
    assert!(!said.to_lowercase().contains("warning"), "{said}");
}

/// The text of a PDF as `pdftotext -enc UTF-8` extracts it.
pub fn pdftotext(path: &std::path::Path) -> String {
    let output = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) must be installed");
    assert!(output.status.success(), "pdftotext: {}", text(&output));
    String::from_utf8(output.stdout).expect("pdftotext writes UTF-8")
}

/// Page 1 of a PDF rendered by poppler's `pdftoppm` at `dpi` as the PNG file `png`.
pub fn render_first_page(pdf: &std::path::Path, dpi: u32, png: &std::path::Path) {
    let prefix = png.with_extension("");
    let output = Command::new("pdftoppm")
        .args([
            "-r",
            &dpi.to_string(),
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
        ])
        .arg(pdf)
        .arg(&prefix)
        .output()
        .expect("pdftoppm (poppler-utils) must be installed");
    assert!(output.status.success(), "pdftoppm: {}", text(&output));
}

/// The texts of the QR codes in a PNG image (a rendered page, a screenshot), read from its
/// pixels by `zbarimg`: none when it finds none.
pub fn decode_qr(png: &std::path::Path) -> Vec<String> {
    let output = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(png)
        .output()
        .expect("zbarimg (Debian zbar-tools) must be installed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
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
