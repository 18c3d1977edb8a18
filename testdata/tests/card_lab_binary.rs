//! `imza-card-lab`, the card kept in a reader for benchmarks and demos, run as a process. This
//! test binary never starts a lab of its own: the child holds the machine's card lab.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imza_testdata::card::{PivAlgorithm, PivCardState, PivSlot};

fn pkcs11_sign(
    line: &serde_json::Value,
    pin: &str,
    data: &std::path::Path,
) -> std::process::Output {
    Command::new("pkcs11-tool")
        .env("OPENSC_CONF", line["opensc_conf"].as_str().unwrap())
        .args(["--module", line["pkcs11_module"].as_str().unwrap()])
        .args(["--slot-description", line["reader"].as_str().unwrap()])
        .args(["--sign", "--login", "--pin", pin, "--id", "02"])
        .args([
            "--mechanism",
            "ECDSA-SHA256",
            "--input-file",
            data.to_str().unwrap(),
        ])
        .args([
            "--output-file",
            data.with_extension("sig").to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

#[test]
fn card_lab_binary_serves_a_provisioned_card_and_saves_it_when_stdin_closes() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("card.json");
    let data = dir.path().join("data.txt");
    std::fs::write(&data, b"benchmark document").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imza-card-lab"))
        .args(["--state", state_file.to_str().unwrap()])
        .args([
            "--pin-env",
            "IMZA_TEST_CARD_PIN",
            "--provision-key",
            "ec-p256",
        ])
        .env("IMZA_TEST_CARD_PIN", "24681357")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let line: serde_json::Value = serde_json::from_str(&first_line)
        .unwrap_or_else(|e| panic!("not one JSON line: {first_line:?}: {e}"));
    assert!(line["reader"]
        .as_str()
        .unwrap()
        .starts_with("imza test reader"));
    assert_eq!(line["atr"], hex::encode(imza_testdata::card::ATR));

    let signed = pkcs11_sign(&line, "24681357", &data);
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let wrong = pkcs11_sign(&line, "11111111", &data);
    assert!(!wrong.status.success());
    // Saved after every change, before the lab ends.
    assert_eq!(PivCardState::load(&state_file).unwrap().pin_tries_left(), 2);

    // Closing stdin ends the lab.
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "imza-card-lab did not end with its stdin"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let saved = PivCardState::load(&state_file).unwrap();
    assert_eq!(saved.pin_tries_left(), 2);
    assert_eq!(
        saved.key_algorithm(PivSlot::Signature),
        Some(PivAlgorithm::EcP256)
    );
    assert!(saved.certificate(PivSlot::Signature).is_some());
}
