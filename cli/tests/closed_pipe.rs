//! Output to a pipe whose reader has gone (`imza … --json | head -c 100`) ends the command
//! quietly, as `cat` and `grep` do: killed by SIGPIPE (a shell shows status 141) or exit 0,
//! never a Rust panic with exit 101.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use common::*;

/// Runs imza with stdout a pipe whose read end is closed before imza starts, so its first
/// write fails with EPIPE; insists the end was quiet.
fn quiet_on_closed_pipe(pki: &TestPki, args: &[&str]) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_imza"))
        .arg("--data-dir")
        .arg(pki.data_dir())
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run imza");
    let message = stderr(&out);
    assert!(
        !message.contains("panicked"),
        "imza {args:?} panicked on a closed pipe: {message}"
    );
    let quiet = out.status.signal() == Some(libc::SIGPIPE) || out.status.code() == Some(0);
    assert!(
        quiet,
        "imza {args:?} on a closed pipe: {:?}, stderr {message:?}",
        out.status
    );
}

#[test]
fn output_to_a_closed_pipe_ends_quietly_never_with_a_panic() {
    let pki = TestPki::with_root_and_citizens();
    pki.issue_citizen("citizen-sign", "citizen");
    for args in [
        &["ca", "list", "--json"][..],
        &["profile", "list"],
        &["profile", "show", "tls-server"],
    ] {
        quiet_on_closed_pipe(&pki, args);
    }
}
