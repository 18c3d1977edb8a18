//! The citizen's chip card end to end on a real PC/SC stack: `imza` → OpenSC's PKCS#11 module
//! (PIV-II driver) → pcscd → vpcd → the project's PIV card emulator (imza-testdata::card), the
//! same module and daemon a citizen's machine uses. Enrollment talks PIV to the card over PC/SC.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use common::*;
use imza_testdata::card::{CardLab, PivCardState, ReaderLease, VirtualCard};
use serde_json::Value;

const CITIZEN: &str = "CN=Leyla Həsənova,SN=Həsənova,GN=Leyla,SERIALNUMBER=PNOAZ-7QX2M4P,C=AZ";
const DOCUMENT: &[u8] = b"E-arayis: Leyla Hesenova lives in Ganja.\n";
/// The emulator's factory PIN and PUK (PivCardState::new).
const PIN: &str = "123456";
const PUK: &str = "12345678";
/// Longest any one imza command may take here; a hang fails the test instead of blocking it.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// OpenSC 0.23's PKCS#11 module connects to every reader holding a card, and can deadlock in
/// C_GetTokenInfo on a slot whose card was removed or reset since (seen here, in another test's
/// reader). `imza sign --card --reader` asks only its own reader's token, but `imza card list`
/// asks every token, and every test ends by removing its card: tests that list all tokens or
/// pull a card mid-way hold this lock alone (`alone`), the others together.
static CARD_EVENTS: RwLock<()> = RwLock::new(());

enum EventGuard {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

/// A PKI (root → citizens), a leased virtual reader and a card in it.
struct CardFixture {
    pki: TestPki,
    card: VirtualCard,
    reader: ReaderLease,
    /// Declared last: dropped after the card is removed.
    _events: EventGuard,
}

impl CardFixture {
    fn new() -> Option<CardFixture> {
        Self::with(false)
    }

    /// A fixture whose test lists every token or removes its card mid-way (see [`CARD_EVENTS`]).
    fn alone() -> Option<CardFixture> {
        Self::with(true)
    }

    fn with(alone: bool) -> Option<CardFixture> {
        if !CardLab::is_available() {
            eprintln!("note: pcscd, vpcd or OpenSC is not installed; skipping");
            return None;
        }
        let events = if alone {
            EventGuard::Alone(CARD_EVENTS.write().unwrap_or_else(|e| e.into_inner()))
        } else {
            EventGuard::Shared(CARD_EVENTS.read().unwrap_or_else(|e| e.into_inner()))
        };
        let reader = CardLab::shared().lease_reader();
        let card = VirtualCard::insert(&reader, PivCardState::new());
        let pki = TestPki::with_root_and_citizens();
        std::fs::write(pki.path("doc.txt"), DOCUMENT).unwrap();
        std::fs::write(
            pki.path("citizens.pem"),
            pki.ok(&["ca", "cert", "--ca", "citizens"]),
        )
        .unwrap();
        Some(CardFixture {
            pki,
            card,
            reader,
            _events: events,
        })
    }

    fn p(&self, name: &str) -> String {
        self.pki.path(name).to_string_lossy().into_owned()
    }

    /// Runs imza with OpenSC limited to the PIV driver and the PINs in the environment.
    fn imza(&self, args: &[&str], pin: &str) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_imza"));
        command
            .arg("--data-dir")
            .arg(self.pki.data_dir())
            .args(args)
            .env("OPENSC_CONF", CardLab::shared().opensc_conf())
            .env("CARD_PIN", pin)
            .env("CARD_PUK", PUK)
            .env("NEW_PIN", "654321");
        output_within(command, COMMAND_LIMIT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.imza(args, PIN);
        assert!(out.status.success(), "imza {args:?}: {}", stderr(&out));
        stdout(&out)
    }

    fn enroll(&self, key: &str) -> String {
        self.ok(&card_enroll_args(
            &["--reader", self.reader.name()],
            "citizen-sign",
            CITIZEN,
            &[
                "--key",
                key,
                "--out",
                &self.p(&format!("enrolled-{key}.pem")),
            ],
        ))
    }

    fn sign(&self, out: &str, pin: &str) -> Output {
        self.imza(
            &[
                "sign",
                "--card",
                "--reader",
                self.reader.name(),
                "--pin-env",
                "CARD_PIN",
                "--in",
                &self.p("doc.txt"),
                "--out",
                &self.p(out),
                "--chain",
                &self.p("citizens.pem"),
            ],
            pin,
        )
    }
}

/// Runs `command`, killing it if it takes longer than `limit` (then the test fails, saying so).
fn output_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run imza");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{command:?} did not finish within {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Enroll (key generated on the card, CSR signed by it) → sign through OpenSC → imza verify
/// TOTAL_PASSED, openssl cms -verify OK → revoke → verify fails.
fn enroll_sign_verify_revoke(key: &str) {
    let Some(f) = CardFixture::new() else { return };
    let said = f.enroll(key);
    assert!(
        said.contains("enrolled") && said.contains(f.reader.name()),
        "{said}"
    );
    // The key was generated on the card and the certificate written back to slot 9C.
    let state = f.card.state();
    let on_card = state
        .certificate(imza_testdata::card::PivSlot::Signature)
        .expect("certificate written to slot 9C");
    let issued = imza_core::pem::decode_pem_or_der(
        &std::fs::read(f.p(&format!("enrolled-{key}.pem"))).unwrap(),
        &[imza_core::pem::CERTIFICATE],
        "certificate",
    )
    .unwrap();
    assert_eq!(on_card, issued);

    let out = f.sign(&format!("{key}.p7s"), PIN);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Leyla Həsənova"), "{}", stdout(&out));
    let signature = f.pki.path(&format!("{key}.p7s"));
    let (code, report) = f
        .pki
        .verify_with_fresh_crls(&signature, &f.pki.path("doc.txt"), &[]);
    assert_eq!(first_indication(&report), "TOTAL_PASSED", "{report}");
    assert_eq!(code, 0);
    let openssl = openssl_cms_verify(
        &signature,
        &f.pki.path("doc.txt"),
        &f.pki.ca_pem("root"),
        &f.pki.path("cms-out.bin"),
    );
    assert!(
        openssl.status.success() && stderr(&openssl).contains("Verification successful"),
        "{}",
        stderr(&openssl)
    );

    let serial = f.pki.serials("citizens").pop().unwrap();
    f.pki
        .revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    let (code, report) = f
        .pki
        .verify_with_fresh_crls(&signature, &f.pki.path("doc.txt"), &[]);
    assert_ne!(first_indication(&report), "TOTAL_PASSED", "{report}");
    assert!(report.to_string().contains("REVOKED"), "{report}");
    assert_ne!(code, 0);
}

#[test]
fn piv_card_with_p256_enrolls_signs_verifies_and_fails_once_revoked() {
    enroll_sign_verify_revoke("ec-p256");
}

#[test]
fn piv_card_with_rsa_2048_enrolls_signs_verifies_and_fails_once_revoked() {
    enroll_sign_verify_revoke("rsa-2048");
}

#[test]
fn card_list_shows_the_reader_the_atr_and_the_enrolled_certificate() {
    let Some(f) = CardFixture::alone() else {
        return;
    };
    f.enroll("ec-p256");
    let listed: Value = serde_json::from_str(&f.ok(&["card", "list", "--json"])).unwrap();
    let reader = listed["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == f.reader.name())
        .unwrap_or_else(|| panic!("reader {} missing: {listed}", f.reader.name()));
    assert_eq!(reader["card_present"], true);
    assert_eq!(
        reader["atr"].as_str().unwrap(),
        hex::encode_upper(f.card.atr())
    );
    let token = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["slot"]
                .as_str()
                .unwrap_or_default()
                .contains(f.reader.name())
        })
        .unwrap_or_else(|| panic!("no token in {}: {listed}", f.reader.name()));
    let cert = token["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["subject"]
                .as_str()
                .unwrap_or_default()
                .contains("PNOAZ-7QX2M4P")
        })
        .unwrap_or_else(|| panic!("enrolled certificate missing: {token}"));
    assert!(
        cert["key_usage"].to_string().contains("nonRepudiation"),
        "{cert}"
    );
    // OpenSC shows a PIV card's private keys only after login; the public key marks the pair.
    assert_eq!(cert["public_key"], true, "{cert}");
    assert_eq!(
        cert["serial"].as_str().unwrap().to_uppercase(),
        f.pki.serials("citizens").pop().unwrap().to_uppercase()
    );

    // The text form says the same for people.
    let text = f.ok(&["card", "list"]);
    assert!(
        text.contains(f.reader.name()) && text.contains("card present"),
        "{text}"
    );
    assert!(text.contains(&hex::encode_upper(f.card.atr())), "{text}");
    assert!(text.contains("Leyla Həsənova"), "{text}");
}

#[test]
fn card_watch_reports_removal_and_reinsertion() {
    let Some(mut f) = CardFixture::alone() else {
        return;
    };
    let mut watch = Command::new(env!("CARGO_BIN_EXE_imza"))
        .args(["card", "watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run imza card watch");
    let (tx, rx) = mpsc::channel::<Value>();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str(&line) {
                if tx.send(value).is_err() {
                    break;
                }
            }
        }
    });
    let name = f.reader.name().to_string();
    // Other tests' cards come and go in other readers at the same time: only ours counts.
    let wait_for = |event: &str| -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(value) if value["reader"] == name.as_str() && value["event"] == event => {
                    return value
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("card watch did not report {event} for {name}");
    };
    // The first lines give each reader's state; pcscd may still be settling our card then,
    // in which case its insertion follows as an event.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("card watch never showed the card in {name}"));
        let value = rx.recv_timeout(left).expect("card watch output");
        let ours = value["reader"] == name.as_str();
        if ours && (value["card_present"] == true || value["event"] == "inserted") {
            break;
        }
    }
    f.card.remove();
    wait_for("removed");
    f.card.reinsert();
    let inserted = wait_for("inserted");
    assert_eq!(
        inserted["atr"].as_str().unwrap(),
        hex::encode_upper(f.card.atr())
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn wrong_pins_count_down_then_lock_and_the_puk_unblocks() {
    let Some(f) = CardFixture::new() else { return };
    f.enroll("ec-p256");
    let refused = |out: &Output| {
        assert!(!out.status.success());
        stderr(out)
    };
    let said = refused(&f.sign("a.p7s", "111111"));
    assert!(said.contains("2 tries left"), "{said}");
    assert!(
        !said.contains("111111"),
        "the PIN must never be echoed: {said}"
    );
    let said = refused(&f.sign("a.p7s", "222222"));
    assert!(said.contains("1 try left"), "{said}");
    let said = refused(&f.sign("a.p7s", "333333"));
    assert!(said.contains("locked"), "{said}");
    assert_eq!(f.card.state().pin_tries_left(), 0);
    // Now even the right PIN is refused, and the message says how to unblock.
    let said = refused(&f.sign("a.p7s", PIN));
    assert!(
        said.contains("locked") && said.contains("imza card unblock"),
        "{said}"
    );
    assert!(!f.pki.path("a.p7s").exists());

    f.ok(&[
        "card",
        "unblock",
        "--reader",
        f.reader.name(),
        "--puk-env",
        "CARD_PUK",
        "--new-pin-env",
        "NEW_PIN",
    ]);
    assert_eq!(f.card.state().pin_tries_left(), 3);
    let out = f.sign("a.p7s", "654321");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_card_pulled_during_signing_is_a_clear_error() {
    let Some(f) = CardFixture::alone() else {
        return;
    };
    f.enroll("ec-p256");
    // The next GENERAL AUTHENTICATE (the signature itself) finds no card to answer it.
    f.card.pull_on(0x87);
    let out = f.sign("pulled.p7s", PIN);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(said.contains("removed"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    assert!(!f.pki.path("pulled.p7s").exists());
}

#[test]
fn pcscd_stopped_is_a_clear_error() {
    if !CardLab::is_available() {
        return;
    }
    let lab = CardLab::shared().exclusive();
    let pki = TestPki::new();
    std::fs::write(pki.path("doc.txt"), DOCUMENT).unwrap();
    lab.stop_pcscd();
    /// Starts pcscd again however the test ends, for the tests after it.
    struct Restart<'a>(&'a imza_testdata::card::ExclusiveLab<'a>);
    impl Drop for Restart<'_> {
        fn drop(&mut self) {
            self.0.start_pcscd();
        }
    }
    let _restart = Restart(&lab);
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_imza"));
        command
            .arg("--data-dir")
            .arg(pki.data_dir())
            .args(args)
            .env("OPENSC_CONF", CardLab::shared().opensc_conf())
            .env("CARD_PIN", PIN);
        output_within(command, COMMAND_LIMIT)
    };
    let doc = pki.path("doc.txt");
    let sig = pki.path("x.p7s");
    for args in [
        vec!["card", "list"],
        vec!["card", "watch"],
        vec![
            "sign",
            "--card",
            "--pin-env",
            "CARD_PIN",
            "--in",
            doc.to_str().unwrap(),
            "--out",
            sig.to_str().unwrap(),
        ],
    ] {
        let out = run(&args);
        let said = stderr(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            said.contains("pcscd") && said.contains("not running"),
            "{args:?}: {said}"
        );
    }
    assert!(!sig.exists());
}
