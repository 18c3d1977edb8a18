//! SoftHSM2 tokens in a private directory, so tests never touch the machine's own tokens.
//!
//! A [`SoftHsm`] is a temporary directory with a `softhsm2.conf` pointing SoftHSM at a token
//! directory inside it. It sets nothing process-wide by itself: a child process (the `imza`
//! binary, `pkcs11-tool`) gets `SOFTHSM2_CONF` in its environment from
//! [`SoftHsm::conf_path`], and an in-process test sets the variable itself.
//!
//! **In-process use has two rules**, because the module reads `SOFTHSM2_CONF` only once, when
//! `C_Initialize` first runs in a process, and imza keeps one initialised context per module
//! for the life of the process:
//!
//! 1. Set `SOFTHSM2_CONF` (`std::env::set_var`) *before* the first PKCS#11 call of the process.
//! 2. All tests of one test binary (`cargo test` runs them in one process, on many threads)
//!    share one `SoftHsm`, kept in a `OnceLock`. Create every token the binary needs there,
//!    before the module is first used: that avoids relying on SoftHSM noticing tokens created
//!    behind its back.
//!
//! ```no_run
//! use std::sync::OnceLock;
//! use imza_testenv::softhsm::SoftHsm;
//!
//! fn softhsm() -> &'static SoftHsm {
//!     static HSM: OnceLock<SoftHsm> = OnceLock::new();
//!     HSM.get_or_init(|| {
//!         let hsm = SoftHsm::new();
//!         hsm.init_token("ca", "12345678", "1234");
//!         std::env::set_var("SOFTHSM2_CONF", hsm.conf_path());
//!         hsm
//!     })
//! }
//! ```
//!
//! PKCS#11 login state belongs to a token and a whole process: while one test holds a logged-in
//! session on a token, a login with a wrong PIN on that token "succeeds" in every other test of
//! the binary. Give wrong-PIN tests a token of their own.
//!
//! A `SoftHsm` in a `static` is never dropped, so its directory (a few kilobytes under the
//! system temporary directory, named `imza-softhsm-*`) outlives the test run.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// Where Debian's `softhsm2` package installs the PKCS#11 module.
pub const MODULE_PATH: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A private SoftHSM2 configuration and token directory, removed when dropped.
pub struct SoftHsm {
    dir: TempDir,
    conf: PathBuf,
}

impl SoftHsm {
    /// True when the SoftHSM2 module is installed; tests skip (with a printed note) otherwise.
    pub fn is_available() -> bool {
        Path::new(MODULE_PATH).exists()
    }

    /// Creates the directory, its `tokens/` subdirectory and `softhsm2.conf`.
    ///
    /// Panics if the files cannot be written: this is a test fixture.
    pub fn new() -> SoftHsm {
        let dir = tempfile::Builder::new()
            .prefix("imza-softhsm-")
            .tempdir()
            .expect("create a temporary directory for SoftHSM2");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("create the SoftHSM2 token directory");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("write softhsm2.conf");
        SoftHsm { dir, conf }
    }

    /// The configuration file: the value for `SOFTHSM2_CONF`.
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// The PKCS#11 module to load.
    pub fn module_path(&self) -> &Path {
        Path::new(MODULE_PATH)
    }

    /// The directory holding the tokens.
    pub fn token_dir(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// Initialises a token in the first free slot with `softhsm2-util --init-token --free`.
    /// SoftHSM gives it a random slot id: find it by `label`.
    ///
    /// Panics, with the tool's output, if `softhsm2-util` fails or is missing.
    pub fn init_token(&self, label: &str, so_pin: &str, user_pin: &str) {
        let output = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", so_pin, "--pin", user_pin])
            .output()
            .unwrap_or_else(|e| panic!("cannot run softhsm2-util (is softhsm2 installed?): {e}"));
        assert!(
            output.status.success(),
            "softhsm2-util --init-token --label {label} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Default for SoftHsm {
    fn default() -> Self {
        SoftHsm::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_token_creates_a_token_in_the_private_directory() {
        if !SoftHsm::is_available() {
            eprintln!("note: {MODULE_PATH} not found; skipping");
            return;
        }
        let hsm = SoftHsm::new();
        let conf = std::fs::read_to_string(hsm.conf_path()).unwrap();
        assert!(conf.contains(&hsm.token_dir().display().to_string()));
        hsm.init_token("fixture-test", "12345678", "1234");
        let listed = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", hsm.conf_path())
            .arg("--show-slots")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&listed.stdout).contains("fixture-test"));
        assert_eq!(std::fs::read_dir(hsm.token_dir()).unwrap().count(), 1);
    }
}
