//! The independent tools the tests check imza against, run as processes: `openssl` above all.

use std::process::{Command, Output};

/// Runs `openssl` with `args`; panics when it cannot be started.
pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command must be installed for these tests")
}

/// Everything a process printed: its stdout, then its stderr.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
