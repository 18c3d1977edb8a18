//! The mobile signature end to end, with real processes: `imza serve` (the signature service,
//! OCSP, TSA) over a real SQLite store, `imza phone run` as the citizen's phone, and the relying
//! party's `imza sign --mobile` / `imza mobile auth`; the results checked by `imza verify` and
//! `openssl cms -verify`.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{free_port, init_mobile_args, stderr, Phone, Server, TestPki};
use serde_json::Value;

const PHONE: &str = "+994501234567";
const FIN: &str = "1AB2C3D";
const PIN: &str = "24680";
const RP: &str = "mygov.az";
const DOCUMENT: &[u8] = b"e-arayis: Aysel Mammadova lives at Baku, Nizami st. 1\n";

/// A PKI with a `mobile` CA and a TSA, a registered relying party and phone, and `imza serve`
/// on a loopback port (the URLs in the certificates point at it).
struct Mobile {
    pki: TestPki,
    port: u16,
    base: String,
    config: PathBuf,
    rp_key: String,
    registration: Value,
    server: Option<Server>,
}

impl Mobile {
    /// Sessions live `session_seconds`.
    fn new(session_seconds: u64) -> Mobile {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let pki = TestPki::with_root_at(&base);
        pki.ok(&init_mobile_args());
        pki.ok(&["tsa", "init", "--ca", "mobile"]);
        let rp_key = add_relying_party(&pki, RP);
        let config = pki.path("serve.toml");
        std::fs::write(
            &config,
            format!("[mobile]\nsession_lifetime_seconds = {session_seconds}\n"),
        )
        .expect("write config");
        let mut mobile = Mobile {
            pki,
            port,
            base,
            config,
            rp_key,
            registration: Value::Null,
            server: None,
        };
        mobile.registration = mobile.register(PHONE, FIN, "phone");
        mobile.start_server();
        mobile
    }

    fn start_server(&mut self) {
        let config = self.config.to_str().expect("path").to_string();
        self.server = Some(Server::start_on(
            &self.pki,
            self.port,
            &["--config", &config],
        ));
    }

    fn stop_server(&mut self) {
        self.server = None;
    }

    fn phone_dir(&self, name: &str) -> PathBuf {
        self.pki.path(name)
    }

    /// `imza mobile register ... --json` with the phone's wallet in `dir_name`.
    fn register(&self, phone: &str, fin: &str, dir_name: &str) -> Value {
        let phone = Phone {
            number: phone,
            national_id: fin,
            given_name: "Aysel",
            surname: "Məmmədova",
        };
        let dir = self.phone_dir(dir_name);
        let out =
            self.pki
                .register_phone(&phone, &self.base, &dir, &[("PHONE_PIN", PIN)], &["--json"]);
        serde_json::from_str(&out).expect("register prints JSON")
    }

    /// `imza phone run --phone PHONE --phone-dir DIR MODE... --json`, running in the background.
    fn phone(&self, dir_name: &str, mode: &[&str], pin: &str) -> PhoneProcess {
        self.phone_with(PHONE, dir_name, mode, pin, &[])
    }

    /// [`Mobile::phone`] for another phone number, with extra environment (SOFTHSM2_CONF).
    fn phone_with(
        &self,
        phone: &str,
        dir_name: &str,
        mode: &[&str],
        pin: &str,
        env: &[(&str, &str)],
    ) -> PhoneProcess {
        let dir = self.phone_dir(dir_name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_imza"))
            .arg("--data-dir")
            .arg(self.pki.data_dir())
            .args(["phone", "run", "--phone", phone, "--phone-dir"])
            .arg(&dir)
            .args(mode)
            .args(["--pin-env", "PHONE_PIN", "--json"])
            .env("PHONE_PIN", pin)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start imza phone run");
        let lines = read_lines(child.stdout.take().expect("stdout"));
        let said = read_lines(child.stderr.take().expect("stderr"));
        PhoneProcess { child, lines, said }
    }

    /// The relying party's `imza sign --mobile PHONE --national-id FIN ...` of doc.txt to
    /// `out`.
    fn sign_args(&self, phone: &str, fin: &str, out: &str, extra: &[&str]) -> Vec<String> {
        let doc = self.pki.path("doc.txt");
        std::fs::write(&doc, DOCUMENT).expect("write document");
        self.sign_args_of(&doc, phone, fin, out, extra)
    }

    /// [`Mobile::sign_args`] of the document `doc`.
    fn sign_args_of(
        &self,
        doc: &Path,
        phone: &str,
        fin: &str,
        out: &str,
        extra: &[&str],
    ) -> Vec<String> {
        let mut args: Vec<String> = [
            "sign",
            "--mobile",
            phone,
            "--national-id",
            fin,
            "--mss-url",
            &self.base,
            "--rp-name",
            RP,
            "--rp-key-env",
            "RP_KEY",
            "--in",
            doc.to_str().expect("path"),
            "--out",
            self.pki.path(out).to_str().expect("path"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn imza(&self, args: &[String]) -> Output {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.pki.imza_env(&args, &[("RP_KEY", &self.rp_key)])
    }

    /// `imza sign --mobile` at level B-T, the TSA of the same server, the mobile CA as chain.
    fn sign_b_t(&self, out: &str) -> Output {
        let doc = self.pki.path("doc.txt");
        std::fs::write(&doc, DOCUMENT).expect("write document");
        self.sign_b_t_of(&doc, out, &[])
    }

    /// [`Mobile::sign_b_t`] of a PDF, as PAdES.
    fn sign_pdf_b_t(&self, out: &str) -> Output {
        let pdf = self.pki.path("statement.pdf");
        std::fs::write(&pdf, imza_testdata::pdf::simple_pdf(&["Arayis"], 0)).expect("PDF");
        self.sign_b_t_of(&pdf, out, &["--pades"])
    }

    fn sign_b_t_of(&self, doc: &Path, out: &str, extra: &[&str]) -> Output {
        let chain = self.pki.ca_pem("mobile");
        let tsa = format!("{}/tsa", self.base);
        let mut options = vec!["--level", "T", "--tsa", &tsa, "--chain"];
        options.push(chain.to_str().expect("path"));
        options.extend_from_slice(extra);
        let args = self.sign_args_of(doc, PHONE, FIN, out, &options);
        self.imza(&args)
    }

    /// `imza verify` of `signature` (over doc.txt) with fresh CRLs says TOTAL_PASSED.
    fn assert_total_passed(&self, signature: &str) -> Value {
        let (code, report) = self.pki.verify_with_fresh_crls_of(
            &["root", "mobile"],
            &self.pki.path(signature),
            &self.pki.path("doc.txt"),
            &[],
        );
        assert_eq!(
            common::first_indication(&report),
            "TOTAL_PASSED",
            "{report:#}"
        );
        assert_eq!(code, 0);
        report
    }

    /// `imza sign --mobile` to `out` started in the background.
    fn sign_in_background(&self, out: &str, extra: &[&str]) -> BackgroundSign {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imza"))
            .arg("--data-dir")
            .arg(self.pki.data_dir())
            .args(self.sign_args(PHONE, FIN, out, extra))
            .env("RP_KEY", &self.rp_key)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start imza sign --mobile");
        let said = read_lines(child.stderr.take().expect("stderr"));
        BackgroundSign { child, said }
    }

    fn auth_args(&self, extra: &[&str]) -> Vec<String> {
        let root = self.pki.ca_pem("root");
        let mut args: Vec<String> = [
            "mobile",
            "auth",
            "--phone",
            PHONE,
            "--national-id",
            FIN,
            "--mss-url",
            &self.base,
            "--rp-name",
            RP,
            "--rp-key-env",
            "RP_KEY",
            "--trust",
            root.to_str().expect("path"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
}

/// `imza mobile rp add --name NAME` against `pki`: the API key it printed once.
fn add_relying_party(pki: &TestPki, name: &str) -> String {
    let added: Value = serde_json::from_str(&pki.ok(&["mobile", "rp", "add", "--name", name]))
        .expect("rp add prints JSON");
    assert_eq!(added["name"], name);
    added["apiKey"].as_str().expect("apiKey").to_string()
}

/// An `imza sign --mobile` running in the background, with its stderr lines; killed when
/// dropped.
struct BackgroundSign {
    child: Child,
    said: Receiver<String>,
}

impl BackgroundSign {
    /// Waits for the verification code: once it is shown the session exists.
    fn verification_code(&self) -> String {
        loop {
            let line = self
                .said
                .recv_timeout(WAIT)
                .expect("sign --mobile showed no verification code");
            if line.contains("Verification code: ") {
                break verification_code(&line);
            }
        }
    }

    /// Waits for the command to end: whether it succeeded, and what else it said.
    fn finish(&mut self) -> (bool, Vec<String>) {
        let status = self.child.wait().expect("sign --mobile ends");
        (status.success(), self.said.try_iter().collect())
    }
}

impl Drop for BackgroundSign {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `imza phone run`, killed when dropped (also when a test fails).
struct PhoneProcess {
    child: Child,
    lines: Receiver<String>,
    /// Its standard error, line by line.
    said: Receiver<String>,
}

impl PhoneProcess {
    /// The next JSON event the phone printed, waiting at most `wait`.
    fn next_event(&self, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Ok(value) = serde_json::from_str::<Value>(&line) {
                        return Some(value);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Every event until the phone exits or `wait` passes.
    fn events_until_exit(&mut self, wait: Duration) -> Vec<Value> {
        let deadline = Instant::now() + wait;
        let mut events = Vec::new();
        while let Some(e) = self.next_event(deadline.saturating_duration_since(Instant::now())) {
            events.push(e);
        }
        events
    }
}

impl PhoneProcess {
    /// Waits (at most [`WAIT`]) for the app to end by itself: its exit code and what it said
    /// on standard error.
    fn exit(&mut self) -> (Option<i32>, Vec<String>) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("phone status") {
                break status;
            }
            assert!(Instant::now() < deadline, "the phone app did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut said = Vec::new();
        while let Ok(line) = self.said.recv_timeout(Duration::from_secs(5)) {
            said.push(line);
        }
        (status.code(), said)
    }
}

/// The phone's PIN tries counter, as its wallet (`phone.json`) keeps it.
fn pin_tries_left(mobile: &Mobile, dir_name: &str) -> u64 {
    let wallet: Value = serde_json::from_slice(
        &std::fs::read(mobile.phone_dir(dir_name).join("phone.json")).expect("phone.json"),
    )
    .expect("wallet JSON");
    wallet["pinTriesLeft"].as_u64().expect("pinTriesLeft")
}

impl Drop for PhoneProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The 4 digits after "Verification code: " in what the relying party's command printed.
fn verification_code(said: &str) -> String {
    let line = said
        .lines()
        .find_map(|l| l.trim().strip_prefix("Verification code: "))
        .unwrap_or_else(|| panic!("no verification code in: {said}"));
    assert!(
        line.len() == 4 && line.bytes().all(|b| b.is_ascii_digit()),
        "{line}"
    );
    line.to_string()
}

fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn phone_signature_is_cades_b_t_that_imza_and_openssl_verify_with_the_same_code_on_both_screens() {
    let mobile = Mobile::new(300);
    let mut phone = mobile.phone("phone", &["--approve", "--count", "1"], PIN);
    let out = mobile.sign_b_t("doc.p7s");
    let said = stderr(&out);
    assert!(out.status.success(), "sign --mobile failed: {said}");
    let rp_code = verification_code(&said);

    let events = phone.events_until_exit(WAIT);
    let requests = events_of(&events, "request");
    assert_eq!(requests.len(), 1, "{events:?}");
    assert_eq!(requests[0]["verificationCode"], rp_code.as_str());
    assert_eq!(requests[0]["relyingParty"], RP);
    assert_eq!(requests[0]["kind"], "signature");
    let answered = events_of(&events, "answered");
    assert_eq!(answered[0]["result"], "OK", "{events:?}");

    let signature = mobile.pki.path("doc.p7s");
    let content = mobile.pki.path("doc.txt");
    let report = mobile.assert_total_passed("doc.p7s");
    assert_eq!(report["signatures"][0]["level"], "B-T", "{report:#}");

    let root = mobile.pki.ca_pem("root");
    let verified =
        common::openssl_cms_verify(&signature, &content, &root, &mobile.pki.path("openssl.out"));
    assert!(
        stderr(&verified).contains("Verification successful"),
        "{}",
        stderr(&verified)
    );
    assert_eq!(
        std::fs::read(mobile.pki.path("openssl.out")).unwrap(),
        DOCUMENT
    );
}

/// The phone signs a PDF (PAdES B-T, the CMS over the signed byte ranges' hash).
#[test]
fn a_phone_signs_a_pdf_as_pades() {
    let mobile = Mobile::new(300);
    let mut phone = mobile.phone("phone", &["--approve", "--count", "1"], PIN);
    let out = mobile.sign_pdf_b_t("statement-signed.pdf");
    assert!(
        out.status.success(),
        "sign --mobile --pades: {}",
        stderr(&out)
    );
    assert!(
        common::stdout(&out).contains("as PAdES B-T"),
        "{}",
        common::stdout(&out)
    );
    assert_eq!(phone.exit().0, Some(0));
    let report = mobile.assert_total_passed("statement-signed.pdf");
    assert_eq!(report["signatures"][0]["level"], "B-T", "{report:#}");
    assert_eq!(
        report["signatures"][0]["pdf"]["kind"], "signature",
        "{report:#}"
    );
}

#[test]
fn authentication_identifies_the_citizen_and_a_revoked_certificate_is_refused() {
    let mobile = Mobile::new(300);
    let _phone = mobile.phone("phone", &["--approve"], PIN);
    let out = mobile.imza(&mobile.auth_args(&["--json"]));
    let said = stderr(&out);
    assert!(out.status.success(), "mobile auth failed: {said}");
    verification_code(&said);
    let identity: Value = serde_json::from_slice(&out.stdout).expect("JSON identity");
    assert_eq!(identity["personalCode"], "PNOAZ-1AB2C3D", "{identity:#}");
    assert_eq!(identity["name"], "Aysel Məmmədova", "{identity:#}");

    let auth_serial = mobile.registration["authSerial"]
        .as_str()
        .expect("authSerial")
        .to_string();
    mobile.pki.revoke("mobile", &auth_serial, &[]);
    let out = mobile.imza(&mobile.auth_args(&["--json"]));
    let said = stderr(&out);
    assert!(!out.status.success(), "a revoked certificate was accepted");
    assert!(said.to_lowercase().contains("revoked"), "{said}");
}

#[test]
fn refusal_ignored_request_absent_phone_and_unknown_phone_end_with_their_results() {
    let mobile = Mobile::new(4);
    {
        let _phone = mobile.phone("phone", &["--refuse"], PIN);
        let out = mobile.imza(&mobile.sign_args(PHONE, FIN, "refused.p7s", &[]));
        assert!(!out.status.success());
        assert!(stderr(&out).contains("USER_REFUSED"), "{}", stderr(&out));
    }
    {
        let _phone = mobile.phone("phone", &["--ignore"], PIN);
        let out = mobile.imza(&mobile.sign_args(PHONE, FIN, "ignored.p7s", &[]));
        assert!(!out.status.success());
        assert!(stderr(&out).contains("TIMEOUT"), "{}", stderr(&out));
    }
    // No phone app running at all.
    let out = mobile.imza(&mobile.sign_args(PHONE, FIN, "absent.p7s", &[]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("PHONE_ABSENT"), "{}", stderr(&out));
    // A phone number nobody registered.
    let out = mobile.imza(&mobile.sign_args("+994551112233", FIN, "unknown.p7s", &[]));
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("NOT_FOUND") || said.contains("not registered"),
        "{said}"
    );
    for name in ["refused.p7s", "ignored.p7s", "absent.p7s", "unknown.p7s"] {
        assert!(!mobile.pki.path(name).exists(), "{name} was written");
    }
}

/// A wrong PIN given with --pin-env is tried once: the relying party learns the refusal
/// (USER_REFUSED), the app stops with exit code 2 and one line, one try is spent (2 left), and
/// the right PIN still signs afterwards.
#[test]
fn a_wrong_pin_from_pin_env_is_tried_once_then_the_request_is_refused_and_the_app_stops() {
    let mobile = Mobile::new(300);
    // No --count: before, the app would have typed the same PIN again until the keys blocked.
    let mut phone = mobile.phone("phone", &["--approve"], "11111");
    let out = mobile.imza(&mobile.sign_args(PHONE, FIN, "wrong.p7s", &[]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("USER_REFUSED"), "{}", stderr(&out));
    assert!(!mobile.pki.path("wrong.p7s").exists());

    let events = phone.events_until_exit(WAIT);
    let wrong: Vec<u64> = events_of(&events, "wrongPin")
        .iter()
        .filter_map(|e| e["triesLeft"].as_u64())
        .collect();
    assert_eq!(wrong, vec![2], "{events:?}");
    let results: Vec<&str> = events_of(&events, "answered")
        .iter()
        .filter_map(|e| e["result"].as_str())
        .collect();
    assert_eq!(results, vec!["USER_REFUSED"], "{events:?}");
    let (code, said) = phone.exit();
    assert_eq!(code, Some(2), "{said:?}");
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("PIN is wrong") && said[0].contains("2 tries left"),
        "{said:?}"
    );
    assert!(!said[0].contains("11111"), "{said:?}");
    assert_eq!(pin_tries_left(&mobile, "phone"), 2);

    // The right PIN still works, and resets the counter.
    let mut phone = mobile.phone("phone", &["--approve", "--count", "1"], PIN);
    let out = mobile.sign_b_t("right.p7s");
    assert!(out.status.success(), "{}", stderr(&out));
    let events = phone.events_until_exit(WAIT);
    assert_eq!(
        events_of(&events, "answered")[0]["result"],
        "OK",
        "{events:?}"
    );
    assert_eq!(phone.exit().0, Some(0));
    assert_eq!(pin_tries_left(&mobile, "phone"), 3);
    mobile.assert_total_passed("right.p7s");
}

/// Three runs with a wrong PIN (one try each) block the phone: USER_REFUSED, USER_REFUSED,
/// then PIN_BLOCKED; later requests get PIN_BLOCKED at once, whatever the PIN.
#[test]
fn three_runs_with_a_wrong_pin_block_the_phone_and_later_requests_get_pin_blocked_at_once() {
    let mobile = Mobile::new(300);
    for (run, (result, tries_left)) in
        [("USER_REFUSED", 2), ("USER_REFUSED", 1), ("PIN_BLOCKED", 0)]
            .into_iter()
            .enumerate()
    {
        let mut phone = mobile.phone("phone", &["--approve"], "11111");
        let out = mobile.imza(&mobile.sign_args(PHONE, FIN, &format!("wrong{run}.p7s"), &[]));
        assert!(!out.status.success());
        assert!(stderr(&out).contains(result), "{}", stderr(&out));
        let (code, said) = phone.exit();
        assert_eq!(code, Some(2), "run {run}: {said:?}");
        assert_eq!(said.len(), 1, "{said:?}");
        assert_eq!(pin_tries_left(&mobile, "phone"), tries_left);
    }

    // The right PIN no longer helps: the phone's keys are blocked for good.
    let mut phone = mobile.phone("phone", &["--approve", "--count", "1"], PIN);
    let out = mobile.imza(&mobile.sign_args(PHONE, FIN, "blocked.p7s", &[]));
    assert!(stderr(&out).contains("PIN_BLOCKED"), "{}", stderr(&out));
    let events = phone.events_until_exit(WAIT);
    assert!(events_of(&events, "wrongPin").is_empty(), "{events:?}");
    assert_eq!(
        events_of(&events, "answered")[0]["result"],
        "PIN_BLOCKED",
        "{events:?}"
    );
}

#[test]
fn a_session_started_before_serve_restarts_completes_after_it() {
    let mut mobile = Mobile::new(300);
    let chain = mobile.pki.ca_pem("mobile");
    let mut sign =
        mobile.sign_in_background("restart.p7s", &["--chain", chain.to_str().expect("path")]);
    // The session exists once the code is shown.
    let rp_code = sign.verification_code();

    mobile.stop_server();
    std::thread::sleep(Duration::from_millis(500));
    mobile.start_server();
    let mut phone = mobile.phone("phone", &["--approve", "--count", "1"], PIN);
    let events = phone.events_until_exit(WAIT);
    let (ok, rest) = sign.finish();
    assert!(ok, "sign --mobile failed: {rest:?}");
    assert_eq!(
        events_of(&events, "request")[0]["verificationCode"],
        rp_code.as_str()
    );
    mobile.assert_total_passed("restart.p7s");
}

/// A device that answers with a real signature of the phone's key over another hash: the
/// service refuses it (SIGNATURE_HASH_MISMATCH), and another relying party cannot read the
/// session meanwhile.
#[test]
fn a_tampered_device_answer_is_refused_and_another_relying_party_cannot_read_the_session() {
    use imza_core::alg::DigestAlgorithm;
    use imza_mobile_sign::http_client::{ApiError, JsonClient};
    use imza_mobile_sign::protocol::{
        encode_base64, DeviceAnswer, PendingRequests, SessionKind, SessionResult, SessionStatus,
    };

    let mobile = Mobile::new(300);
    let other_key = add_relying_party(&mobile.pki, "other.az");
    let mut sign = mobile.sign_in_background("tampered.p7s", &[]);

    // The device's own credentials, from the phone's wallet.
    let dir = mobile.phone_dir("phone");
    let wallet: Value =
        serde_json::from_slice(&std::fs::read(dir.join("phone.json")).expect("phone.json"))
            .expect("wallet JSON");
    let device = JsonClient::new(
        &mobile.base,
        wallet["deviceId"].as_str().expect("deviceId"),
        wallet["deviceSecret"].as_str().expect("deviceSecret"),
    )
    .expect("device client");
    let pending: PendingRequests = device
        .get("/device/pending?timeoutMs=20000", Duration::from_secs(30))
        .expect("pending requests");
    let request = pending.requests.first().expect("a request").clone();
    assert_eq!(request.kind, SessionKind::Signature);

    // Another relying party: 404, the same answer as for a session that does not exist.
    let intruder = JsonClient::new(&mobile.base, "other.az", &other_key).expect("client");
    let path = format!("/session/{}", request.session_id);
    match intruder.get::<SessionStatus>(&path, Duration::from_secs(10)) {
        Err(ApiError::Refused { status: 404, .. }) => {}
        other => panic!("another relying party read the session: {other:?}"),
    }

    // The phone's genuine key, but over a hash the relying party never sent.
    let mut phone = imza_mobile_sign::phone::Wallet::open(&dir).expect("wallet");
    let other_hash = openssl::sha::sha256(b"a document the citizen never saw");
    let signature = phone
        .sign(
            SessionKind::Signature,
            PIN,
            DigestAlgorithm::Sha256,
            &other_hash,
        )
        .expect("the phone signs");
    let answered: SessionStatus = device
        .post(
            &format!("/device/session/{}", request.session_id),
            &DeviceAnswer {
                result: SessionResult::Ok,
                signature: Some(encode_base64(&signature)),
            },
            Duration::from_secs(10),
        )
        .expect("answer accepted");
    assert_eq!(answered.result, Some(SessionResult::SignatureHashMismatch));
    assert!(answered.signature.is_none());

    let (ok, rest) = sign.finish();
    assert!(!ok);
    assert!(
        rest.iter().any(|l| l.contains("SIGNATURE_HASH_MISMATCH")),
        "{rest:?}"
    );
    assert!(!mobile.pki.path("tampered.p7s").exists());
}

/// Registering the phone number again (a new phone) replaces the device: the old
/// certificates are revoked as superseded, the old phone is no longer let in, the new one signs.
#[test]
fn registering_a_phone_again_supersedes_the_old_device() {
    let mobile = Mobile::new(300);
    let old_serials = [
        mobile.registration["authSerial"].as_str().expect("serial"),
        mobile.registration["signSerial"].as_str().expect("serial"),
    ];
    let again = mobile.register(PHONE, FIN, "new-phone");
    let superseded: Vec<&str> = again["supersededSerials"]
        .as_array()
        .expect("supersededSerials")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(superseded, old_serials);
    for serial in old_serials {
        let said = mobile
            .pki
            .exits(&common::revoke_args("mobile", serial, &[]), &[], 2);
        assert!(said.contains("already revoked"), "{said}");
    }

    // The old phone's credentials no longer open the service.
    let mut old = mobile.phone("phone", &["--approve", "--count", "1"], PIN);
    let status = old.child.wait().expect("the old phone ends");
    assert!(!status.success(), "the replaced phone kept running");

    let mut new = mobile.phone("new-phone", &["--approve", "--count", "1"], PIN);
    let out = mobile.sign_b_t("new.p7s");
    assert!(out.status.success(), "{}", stderr(&out));
    let events = new.events_until_exit(WAIT);
    assert_eq!(events_of(&events, "answered")[0]["result"], "OK");
}

/// The phone's keys in a PKCS#11 token (SoftHSM2) instead of files: registered, then a signature
/// made on the token after its PIN verifies.
#[test]
fn a_phone_with_its_keys_on_a_pkcs11_token_registers_and_signs() {
    use imza_testdata::softhsm::SoftHsm;
    const HSM_PHONE: &str = "+994551234567";
    const HSM_FIN: &str = "2XY3Z4W";
    let mobile = Mobile::new(300);
    let hsm = SoftHsm::new();
    hsm.init_token("phone-se", "so-pin-1234", PIN);
    let conf = hsm.conf_path().to_str().expect("path").to_string();
    let module = hsm.module_path().to_str().expect("path").to_string();
    let dir = mobile.phone_dir("hsm-phone");
    let rashad = Phone {
        number: HSM_PHONE,
        national_id: HSM_FIN,
        given_name: "Rəşad",
        surname: "Quliyev",
    };
    let out = mobile.pki.register_phone(
        &rashad,
        &mobile.base,
        &dir,
        &[("PHONE_PIN", PIN), ("SOFTHSM2_CONF", &conf)],
        &["--pkcs11-module", &module, "--token", "phone-se", "--json"],
    );
    let registered: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(registered["phone"], HSM_PHONE);
    // No key file in the phone's directory: the keys are on the token.
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("phone dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, vec!["phone.json".to_string()], "{files:?}");

    let mut phone = mobile.phone_with(
        HSM_PHONE,
        "hsm-phone",
        &["--approve", "--count", "1"],
        PIN,
        &[("SOFTHSM2_CONF", &conf)],
    );
    let chain = mobile.pki.ca_pem("mobile");
    let args = mobile.sign_args(
        HSM_PHONE,
        HSM_FIN,
        "hsm.p7s",
        &["--chain", chain.to_str().expect("path")],
    );
    let out = mobile.imza(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = phone.events_until_exit(WAIT);
    assert_eq!(
        events_of(&events, "answered")[0]["result"],
        "OK",
        "{events:?}"
    );
    mobile.assert_total_passed("hsm.p7s");
}

/// Registration checks what the CA will check before any key is made, and a refused
/// registration leaves the store and the disk as they were.
#[test]
fn a_refused_registration_changes_nothing() {
    let mobile = Mobile::new(300);
    let before = mobile.pki.snapshot();
    let register = |fin: &str, ca: &str, pin: &str, dir: &str| {
        let dir = mobile.phone_dir(dir);
        let args = [
            "mobile",
            "register",
            "--phone",
            "+994701112233",
            "--national-id",
            fin,
            "--given-name",
            "Nigar",
            "--surname",
            "Həsənova",
            "--ca",
            ca,
            "--pin-env",
            "PHONE_PIN",
            "--phone-dir",
            dir.to_str().expect("path"),
        ];
        mobile.pki.exits(&args, &[("PHONE_PIN", pin)], 2)
    };
    let said = register("3AB4C5D", "nosuchca", PIN, "p1");
    assert!(said.contains("nosuchca"), "{said}");
    // The profile wants a 7-character FIN.
    let said = register("3AB4C5D6", "mobile", PIN, "p2");
    assert!(said.contains("serialNumber"), "{said}");
    let said = register("3AB4C5D", "mobile", "12ab", "p3");
    assert!(said.to_lowercase().contains("pin"), "{said}");
    for dir in ["p1", "p2", "p3"] {
        assert!(!mobile.phone_dir(dir).exists(), "{dir} was created");
    }
    assert_eq!(mobile.pki.snapshot(), before);
    let said = mobile
        .pki
        .exits(&["mobile", "rp", "add", "--name", RP], &[], 2);
    assert!(said.contains(RP), "{said}");
}

/// `imza serve` stopped with SIGTERM while a phone and a relying party hold long polls open:
/// it answers them at once and exits cleanly instead of waiting them out.
#[test]
fn serve_stops_promptly_with_long_polls_open() {
    let mut mobile = Mobile::new(300);
    let _phone = mobile.phone("phone", &["--ignore"], PIN);
    let sign = mobile.sign_in_background("stopped.p7s", &[]);
    sign.verification_code();
    std::thread::sleep(Duration::from_millis(300));
    let (code, took) = mobile.server.as_mut().expect("server").terminate();
    assert_eq!(code, Some(0), "imza serve exit status after SIGTERM");
    assert!(
        took < Duration::from_secs(3),
        "imza serve took {took:?} to stop"
    );
}

/// One relying party floods one phone with signature requests from 16 threads while another
/// relying party asks that phone for a signature with `imza sign --mobile`: the other's request
/// reaches the phone and completes, the flood gets 429 with `Retry-After`, and the store
/// grows by what the caps allow (two running sessions for the flooding party, one for the
/// other).
#[test]
fn a_relying_party_flooding_a_phone_cannot_crowd_out_another() {
    use imza_core::alg::DigestAlgorithm;
    use imza_mobile_sign::http_client::{ApiError, JsonClient};
    use imza_mobile_sign::protocol::{encode_base64, Language, SessionCreated, SessionRequest};

    const THREADS: usize = 16;
    const EACH: usize = 25;
    let mobile = Mobile::new(300);
    let flood_key = add_relying_party(&mobile.pki, "flood.az");
    let db = mobile.pki.data_dir().join("imza.db");
    let sessions = || -> u64 {
        let out = common::run(
            "sqlite3",
            &[
                db.to_str().expect("path"),
                "SELECT COUNT(*) FROM mss_sessions",
            ],
        );
        common::stdout(&out).trim().parse().expect("a count")
    };
    let before = sessions();

    let flood: Vec<_> = (0..THREADS)
        .map(|t| {
            let (base, key) = (mobile.base.clone(), flood_key.clone());
            std::thread::spawn(move || {
                let client = JsonClient::new(&base, "flood.az", &key).expect("client");
                let (mut created, mut limited, mut other) = (0, 0, Vec::new());
                for i in 0..EACH {
                    let hash = openssl::sha::sha256(format!("flood {t} {i}").as_bytes());
                    let request = SessionRequest {
                        phone_number: PHONE.into(),
                        national_identity_number: FIN.into(),
                        hash: encode_base64(&hash),
                        hash_type: DigestAlgorithm::Sha256,
                        display_text: Some("Flood".into()),
                        language: Language::Eng,
                    };
                    match client.post::<_, SessionCreated>(
                        "/signature",
                        &request,
                        Duration::from_secs(30),
                    ) {
                        Ok(_) => created += 1,
                        Err(ApiError::Refused { status: 429, .. }) => limited += 1,
                        Err(e) => other.push(e.to_string()),
                    }
                }
                (created, limited, other)
            })
        })
        .collect();
    let (mut created, mut limited) = (0, 0);
    for thread in flood {
        let (c, l, other) = thread.join().expect("a flood thread");
        assert!(other.is_empty(), "{other:?}");
        created += c;
        limited += l;
    }
    assert_eq!(created + limited, THREADS * EACH);
    assert_eq!(
        created, 2,
        "the running cap for one relying party and phone"
    );

    // The refusal says when to come back.
    let refused = mobile.server.as_ref().expect("serving").request(
        "POST",
        "/mss/v1/signature",
        &[
            "Content-Type: application/json",
            &format!(
                "Authorization: Basic {}",
                encode_base64(format!("flood.az:{flood_key}").as_bytes())
            ),
        ],
        Some(&{
            let body = mobile.pki.path("flood.json");
            std::fs::write(
                &body,
                format!(
                    r#"{{"phoneNumber":"{PHONE}","nationalIdentityNumber":"{FIN}","hash":"{}","hashType":"SHA256","language":"ENG"}}"#,
                    encode_base64(&[7u8; 32])
                ),
            )
            .expect("write body");
            body
        }),
    );
    assert_eq!(refused.status, 429);
    let wait: u64 = refused
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!(wait >= 1, "{wait}");

    // The other relying party's request reaches the phone among the flood's and completes.
    let chain = mobile.pki.ca_pem("mobile");
    let mut sign =
        mobile.sign_in_background("other.p7s", &["--chain", chain.to_str().expect("path")]);
    let code = sign.verification_code();
    let mut phone = mobile.phone("phone", &["--approve", "--count", "3"], PIN);
    let (ok, said) = sign.finish();
    assert!(ok, "sign --mobile failed: {said:?}");
    let events = phone.events_until_exit(WAIT);
    let ours: Vec<&Value> = events_of(&events, "request")
        .into_iter()
        .filter(|r| r["relyingParty"] == RP)
        .collect();
    assert_eq!(ours.len(), 1, "{events:?}");
    assert_eq!(ours[0]["verificationCode"], code.as_str());
    mobile.assert_total_passed("other.p7s");
    assert!(
        sessions() - before <= 3,
        "the store grew by {} sessions",
        sessions() - before
    );
}
