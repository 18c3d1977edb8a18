//! The command clock check with real processes: synchronised (`true`), not synchronised
//! (`false`, with the command's own words), a check that cannot run (missing binary, a hang
//! killed at its timeout, a stale result), recovery, and what a TSA answers in each case.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestPki;
use imza_core::alg::DigestAlgorithm;
use imza_core::KeyAlgorithm;
use imza_tsa::{
    build_request, parse_response, ClockCheck, ClockCommand, ClockFault, CommandClockCheck,
    FailureInfo, PkiStatus, TimeStampAuthority,
};
use time::OffsetDateTime;

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn sh(script: &str) -> Vec<String> {
    argv(&["sh", "-c", script])
}

fn start(args: Vec<String>, interval_ms: u64, timeout_ms: u64) -> CommandClockCheck {
    CommandClockCheck::start(ClockCommand {
        argv: args,
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(timeout_ms),
    })
    .unwrap()
}

/// A TSA whose clock check is `check`, and its answer to one good request.
fn answer(pki: &TestPki, check: CommandClockCheck) -> imza_tsa::ParsedResponse {
    let mut config = pki.config();
    config.clock_check = Arc::new(check);
    let tsa = TimeStampAuthority::new(config).unwrap();
    let request = build_request(
        &DigestAlgorithm::Sha256.digest(b"x"),
        DigestAlgorithm::Sha256,
        None,
        false,
        None,
    )
    .unwrap();
    parse_response(&tsa.respond(&request, OffsetDateTime::now_utc()).der).unwrap()
}

/// Polls `check` until `wanted` holds, for at most 10 s.
fn eventually(
    check: &CommandClockCheck,
    wanted: impl Fn(&Result<(), ClockFault>) -> bool,
) -> Result<(), ClockFault> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = check.check(OffsetDateTime::now_utc());
        if wanted(&state) || Instant::now() > deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_synchronised_clock_lets_the_tsa_grant() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let check = start(argv(&["true"]), 1000, 1000);
    assert_eq!(check.status(), Ok(()));
    let parsed = answer(&pki, check);
    assert_eq!(parsed.status, PkiStatus::Granted);
}

#[test]
fn an_unsynchronised_clock_is_time_not_available_and_the_commands_words_stay_private() {
    let check = start(argv(&["false"]), 1000, 1000);
    assert_eq!(
        check.status(),
        Err(ClockFault::Unsynchronised(
            "false exited with status 1".into()
        ))
    );

    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let check = start(
        sh("echo; echo '  try: 1, refid: 00000000, correction: 3.2  ' >&2; echo more >&2; exit 1"),
        1000,
        1000,
    );
    assert_eq!(
        check.status(),
        Err(ClockFault::Unsynchronised(
            "sh exited with status 1: try: 1, refid: 00000000, correction: 3.2".into()
        ))
    );
    let parsed = answer(&pki, check);
    assert_eq!(parsed.status, PkiStatus::Rejection);
    assert_eq!(parsed.failure_info, vec![FailureInfo::TimeNotAvailable]);
    // The command's words are for the operator (ClockFault above), not for requesters.
    assert_eq!(
        parsed.status_text,
        vec!["the TSA's time source is not available".to_string()]
    );
}

#[test]
fn stdout_is_the_reason_when_stderr_is_silent_and_long_output_is_cut() {
    let check = start(sh("yes 'no sync' | head -c 100000; exit 3"), 1000, 2000);
    let Err(ClockFault::Unsynchronised(why)) = check.status() else {
        panic!("{:?}", check.status());
    };
    assert_eq!(why, "sh exited with status 3: no sync");
    let check = start(sh("printf '%0500d' 0; exit 1"), 1000, 1000);
    let Err(ClockFault::Unsynchronised(why)) = check.status() else {
        panic!("{:?}", check.status());
    };
    assert!(why.chars().count() < 260, "{why}");
    assert!(why.ends_with('…'), "{why}");
}

#[test]
fn a_missing_command_is_a_failed_check_and_a_system_failure() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let check = start(argv(&["/nonexistent/chronyc", "waitsync"]), 1000, 1000);
    let Err(ClockFault::CheckFailed(why)) = check.status() else {
        panic!("{:?}", check.status());
    };
    assert!(why.contains("cannot run /nonexistent/chronyc"), "{why}");
    let parsed = answer(&pki, check);
    assert_eq!(parsed.status, PkiStatus::Rejection);
    assert_eq!(parsed.failure_info, vec![FailureInfo::SystemFailure]);
    // The details are for the operator, not the requester.
    assert!(!parsed.status_text.concat().contains("nonexistent"));
}

#[test]
fn a_hanging_command_is_killed_at_its_timeout() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let started = Instant::now();
    let check = start(argv(&["sleep", "10"]), 5000, 300);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let Err(ClockFault::CheckFailed(why)) = check.status() else {
        panic!("{:?}", check.status());
    };
    assert!(
        why.contains("sleep: no answer within 0.3 s; killed"),
        "{why}"
    );
    let parsed = answer(&pki, check);
    assert_eq!(parsed.failure_info, vec![FailureInfo::SystemFailure]);
}

#[test]
fn a_result_older_than_three_intervals_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("ran-once");
    // Succeeds the first time, then hangs (as a wedged chronyc would) past 3 intervals.
    let script = format!(
        "if [ -e '{0}' ]; then sleep 5; else touch '{0}'; fi",
        flag.display()
    );
    let check = start(sh(&script), 100, 4000);
    assert_eq!(check.status(), Ok(()));
    let state = eventually(&check, |s| s.is_err());
    let Err(ClockFault::CheckFailed(why)) = state else {
        panic!("{state:?}");
    };
    assert!(why.contains("stuck"), "{why}");
}

#[test]
fn the_check_follows_the_clock_into_and_out_of_sync() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("exit-code");
    write(&state, "0");
    let check = start(sh(&format!("exit $(cat '{}')", state.display())), 20, 1000);
    assert_eq!(check.status(), Ok(()));
    write(&state, "1");
    assert!(matches!(
        eventually(&check, |s| s.is_err()),
        Err(ClockFault::Unsynchronised(_))
    ));
    write(&state, "0");
    assert_eq!(eventually(&check, |s| s.is_ok()), Ok(()));
}

#[test]
fn dropping_the_check_stops_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let check = start(sh(&format!("echo run >> '{}'", log.display())), 20, 1000);
    let runs = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(runs() >= 3, "the command runs every interval");
    drop(check);
    // A run already started may still finish.
    std::thread::sleep(Duration::from_millis(200));
    let after_drop = runs();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(runs(), after_drop);
}
