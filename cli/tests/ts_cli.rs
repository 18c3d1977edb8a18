//! `imza ts request` and `imza ts verify` as processes, against TSAs the tests start
//! themselves: imza's own `POST /tsa` (Rocket, in this process, on a loopback port), a TSA
//! backed by `openssl ts -reply`, and canned servers that misbehave (replayed replies, HTTP
//! errors, garbage). Tokens are cross-checked with `openssl ts -verify`, and `imza ts verify`
//! reads tokens that OpenSSL made.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Deref;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use imza_core::alg::DigestAlgorithm;
use imza_core::KeyAlgorithm;
use imza_testdata::loopback::LoopbackServer;
use imza_testdata::pki::{TsaPki, TSA_SUBJECT};
use imza_tsa::{parse_response, ClockCommand, CommandClockCheck, TimeStampAuthority, TsaConfig};
use time::OffsetDateTime;

const POLICY: &str = "1.3.6.1.4.1.99999.3161.1";
/// RFC 3161 §3.4's reply media type, spelt out here (not taken from imza_tsa) for the canned
/// servers.
const TIMESTAMP_REPLY: &str = "application/timestamp-reply";

// --- a test PKI: a root and a TSA certificate, as PEM files for imza and openssl ----------

/// imza-testdata's root and TSA (`CA.pem`, `tsa.pem` and `tsa.key` in its directory, reached
/// through `Deref`), and a TSA signing under [`POLICY`] with them.
struct Pki(TsaPki);

impl Pki {
    fn new() -> Pki {
        Pki(TsaPki::new(KeyAlgorithm::EcP256))
    }

    /// A fresh PKI and imza's TSA on loopback signing with it.
    fn serving() -> (Pki, ImzaTsa) {
        let pki = Pki::new();
        let tsa = ImzaTsa::start(pki.authority());
        (pki, tsa)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    fn config(&self) -> TsaConfig {
        TsaConfig::new(
            self.tsa.der.clone(),
            Vec::new(),
            self.tsa.key.clone(),
            POLICY.parse().unwrap(),
        )
    }

    fn authority(&self) -> TimeStampAuthority {
        TimeStampAuthority::new(self.config()).unwrap()
    }

    /// Writes `bytes` to `name` in the temp dir and returns its path.
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(name), bytes).unwrap();
        self.p(name)
    }
}

impl Deref for Pki {
    type Target = TsaPki;

    fn deref(&self) -> &TsaPki {
        &self.0
    }
}

// --- servers ------------------------------------------------------------------------------

/// imza's TSA (its `POST /tsa` routes) on an ephemeral loopback port, stopped when dropped.
struct ImzaTsa {
    url: String,
    _server: LoopbackServer,
}

impl ImzaTsa {
    fn start(authority: TimeStampAuthority) -> ImzaTsa {
        let server = imza_testdata::tsa::serve(authority, 2);
        ImzaTsa {
            url: server.url("/tsa"),
            _server: server,
        }
    }
}

/// Answers the next `count` HTTP requests on a loopback port with `answer(body)` =
/// (status, content type, body); returns the URL.
fn canned_server(
    count: usize,
    answer: impl Fn(&[u8]) -> (u16, &'static str, Vec<u8>) + Send + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let Some(body) = read_http_body(&mut stream) else {
                continue;
            };
            let (status, content_type, reply) = answer(&body);
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                reply.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&reply);
        }
    });
    format!("http://127.0.0.1:{port}/tsa")
}

/// A server that answers one request with `status`, `content_type` and `body`; returns its
/// URL.
fn canned_reply(status: u16, content_type: &'static str, body: Vec<u8>) -> String {
    canned_server(1, move |_| (status, content_type, body.clone()))
}

/// The body of one HTTP/1.1 request with a Content-Length.
fn read_http_body(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// An `openssl ts -reply` configuration for the PKI's TSA key; `ess` is the ESSCertID hash.
fn openssl_tsa_config(pki: &Pki, ess: &str) -> String {
    std::fs::write(pki.path("tsaserial"), "01\n").unwrap();
    let config = format!(
        "[ tsa ]\ndefault_tsa = imza_test\n\n[ imza_test ]\nserial = {serial}\n\
         crypto_device = builtin\nsigner_cert = {cert}\nsigner_key = {key}\n\
         signer_digest = sha256\ndefault_policy = {POLICY}\ndigests = sha256, sha384, sha512\n\
         accuracy = secs:1\nordering = no\ntsa_name = yes\ness_cert_id_chain = no\n\
         ess_cert_id_alg = {ess}\n",
        serial = pki.p("tsaserial"),
        cert = pki.p("tsa.pem"),
        key = pki.p("tsa.key"),
    );
    pki.file(&format!("openssl-tsa-{ess}.cnf"), config.as_bytes())
}

/// Lower-case hex.
/// `openssl ts -reply -config CONFIG -queryfile QUERY -out REPLY`, insisting on success.
fn openssl_ts_reply(config: &str, query: &str, reply: &str) {
    let made = openssl(&[
        "ts",
        "-reply",
        "-config",
        config,
        "-queryfile",
        query,
        "-out",
        reply,
    ]);
    assert!(made.status.success(), "{}", text(&made));
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

// --- running things -----------------------------------------------------------------------

fn imza(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imza"))
        .args(args)
        .output()
        .expect("run imza")
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command must be installed for these tests")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

/// Asserts that `out` exited with `expected` (showing what it printed if not); returns
/// everything it printed.
fn exits(out: &Output, expected: i32) -> String {
    let said = text(out);
    assert_eq!(code(out), expected, "{said}");
    said
}

/// `imza ts request --data DATA --url URL --out OUT EXTRA...`.
fn request(url: &str, data: &str, out: &str, extra: &[&str]) -> Output {
    let mut args = vec!["ts", "request", "--data", data, "--url", url, "--out", out];
    args.extend_from_slice(extra);
    imza(&args)
}

/// `imza ts verify --in TSR --ca-file CA.pem EXTRA...`.
fn verify(pki: &Pki, tsr: &str, extra: &[&str]) -> Output {
    let ca = pki.p("CA.pem");
    let mut args = vec!["ts", "verify", "--in", tsr, "--ca-file", &ca];
    args.extend_from_slice(extra);
    imza(&args)
}

/// A granted reply from imza's TSA for `data`, written to `name`.
fn granted(pki: &Pki, tsa: &ImzaTsa, data: &str, name: &str, extra: &[&str]) -> String {
    let out = pki.p(name);
    exits(&request(&tsa.url, data, &out, extra), 0);
    out
}

// --- imza ts request ----------------------------------------------------------------------

#[test]
fn request_writes_a_granted_reply_that_openssl_and_imza_verify() {
    let (pki, tsa) = Pki::serving();
    let data = pki.file("document.pdf", b"%PDF-1.7 the document");
    let out = pki.p("document.tsr");
    let query = pki.p("document.tsq");
    let result = request(&tsa.url, &data, &out, &["--query-out", &query]);
    exits(&result, 0);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.starts_with("granted: genTime 20"), "{stdout}");
    assert!(stdout.contains("serial 0x"), "{stdout}");
    assert!(
        stdout.contains(&format!("TSA directoryName {TSA_SUBJECT}")),
        "{stdout}"
    );

    // The reply is the TSA's DER as sent, and OpenSSL agrees it answers the query.
    let verdict = openssl(&[
        "ts",
        "-verify",
        "-in",
        &out,
        "-queryfile",
        &query,
        "-CAfile",
        &pki.p("CA.pem"),
    ]);
    assert!(
        text(&verdict).contains("Verification: OK"),
        "{}",
        text(&verdict)
    );
    let sent = openssl(&["ts", "-query", "-in", &query, "-text"]);
    assert!(text(&sent).contains("Nonce: 0x"), "{}", text(&sent));
    assert!(
        text(&sent).contains("Certificate required: yes"),
        "{}",
        text(&sent)
    );

    let verified = verify(&pki, &out, &["--data", &data]);
    exits(&verified, 0);
    let summary = String::from_utf8_lossy(&verified.stdout);
    assert!(summary.starts_with("valid time-stamp token"), "{summary}");
    assert!(
        summary.contains(&format!("signed by: {TSA_SUBJECT}")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("policy:    {POLICY}")),
        "{summary}"
    );
}

#[test]
fn request_options_reach_the_token() {
    let (pki, tsa) = Pki::serving();
    let data = pki.file("data", b"options");
    let out = granted(
        &pki,
        &tsa,
        &data,
        "sha512.tsr",
        &["--digest", "sha512", "--policy", POLICY, "--no-nonce"],
    );
    let token = parse_response(&std::fs::read(&out).unwrap())
        .unwrap()
        .into_token()
        .unwrap();
    assert_eq!(token.imprint_algorithm().unwrap(), DigestAlgorithm::Sha512);
    assert_eq!(token.policy().to_string(), POLICY);
    assert_eq!(token.nonce_hex(), None);
    assert_eq!(token.certificates(), std::slice::from_ref(&pki.tsa.der));

    let json = verify(&pki, &out, &["--data", &data, "--json"]);
    exits(&json, 0);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["hash_algorithm"], "SHA-512");
    assert_eq!(
        json["hashed_message"],
        hex(DigestAlgorithm::Sha512.digest(b"options"))
    );
    assert_eq!(json["nonce"], serde_json::Value::Null);
    assert_eq!(json["signer_subject"], TSA_SUBJECT);
    assert_eq!(json["accuracy"], "1 s");
    assert_eq!(json["checked_at"], "genTime");
}

#[test]
fn a_token_without_the_tsa_certificate_verifies_only_with_it_supplied() {
    let (pki, tsa) = Pki::serving();
    let data = pki.file("data", b"no cert");
    let out = granted(&pki, &tsa, &data, "nocert.tsr", &["--no-cert"]);
    let token = parse_response(&std::fs::read(&out).unwrap())
        .unwrap()
        .into_token()
        .unwrap();
    assert!(token.certificates().is_empty());
    let said = exits(&verify(&pki, &out, &["--data", &data]), 1);
    assert!(said.contains("neither in the token nor among those supplied"));
    let supplied = verify(
        &pki,
        &out,
        &["--data", &data, "--untrusted", &pki.p("tsa.pem")],
    );
    exits(&supplied, 0);
}

#[test]
fn a_refusal_exits_1_in_words_and_writes_nothing() {
    let (pki, tsa) = Pki::serving();
    let data = pki.file("data", b"x");
    let out = pki.p("refused.tsr");
    let said = exits(&request(&tsa.url, &data, &out, &["--policy", "1.2.3.4"]), 1);
    assert!(said.contains("status rejection"), "{said}");
    assert!(said.contains("unacceptedPolicy"), "{said}");
    assert!(said.contains("1.2.3.4"), "{said}");
    assert!(!Path::new(&out).exists());
}

#[test]
fn an_unsynchronised_tsa_clock_is_a_refusal_with_time_not_available() {
    let pki = Pki::new();
    let mut config = pki.config();
    config.clock_check = Arc::new(
        CommandClockCheck::start(ClockCommand::new(
            vec![
                "sh".into(),
                "-c".into(),
                "echo 'clock: not synchronised' >&2; exit 1".into(),
            ],
            Duration::from_secs(60),
        ))
        .unwrap(),
    );
    let tsa = ImzaTsa::start(TimeStampAuthority::new(config).unwrap());
    let data = pki.file("data", b"x");
    let out = pki.p("late.tsr");
    let said = exits(&request(&tsa.url, &data, &out, &[]), 1);
    assert!(said.contains("timeNotAvailable"), "{said}");
    assert!(
        said.contains("time source is not available") && !said.contains("clock: not synchronised"),
        "{said}"
    );
    assert!(!Path::new(&out).exists());
}

#[test]
fn a_replayed_reply_fails_the_nonce_check_and_writes_nothing() {
    let (pki, tsa) = Pki::serving();
    let data = pki.file("data", b"same data");
    let first = granted(&pki, &tsa, &data, "first.tsr", &[]);
    // A server that answers every request with that first reply (a replay).
    let url = canned_reply(200, TIMESTAMP_REPLY, std::fs::read(&first).unwrap());
    let out = pki.p("replayed.tsr");
    let said = exits(&request(&url, &data, &out, &[]), 1);
    assert!(said.contains("nonce"), "{said}");
    assert!(!Path::new(&out).exists());

    // And a reply for other data is refused on its imprint.
    let other = pki.file("other", b"other data");
    let url = canned_reply(200, TIMESTAMP_REPLY, std::fs::read(&first).unwrap());
    let said = exits(&request(&url, &other, &out, &["--no-nonce"]), 1);
    assert!(said.contains("imprint mismatch"), "{said}");
    assert!(!Path::new(&out).exists());
}

#[test]
fn http_errors_garbage_and_unreachable_tsas_exit_3() {
    let pki = Pki::new();
    let data = pki.file("data", b"x");
    let out = pki.p("never.tsr");
    for (status, content_type, body, words) in [
        (
            500,
            "text/plain",
            b"database on fire\nmore".to_vec(),
            "answered HTTP 500 Internal Server Error: database on fire",
        ),
        (
            200,
            TIMESTAMP_REPLY,
            b"<html>".to_vec(),
            "malformed time-stamp response",
        ),
        (
            200,
            TIMESTAMP_REPLY,
            vec![0x30; imza_http::client::MAX_ANSWER_BYTES + 10],
            "more than 1048576 bytes",
        ),
    ] {
        let url = canned_reply(status, content_type, body);
        let said = exits(&request(&url, &data, &out, &[]), 3);
        assert!(said.contains(words), "{words}: {said}");
    }

    // Nothing listens on a port just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/tsa");
    let said = exits(&request(&url, &data, &out, &["--timeout", "5"]), 3);
    assert!(
        said.contains(&format!("time-stamping authority: cannot reach {url}")),
        "{said}"
    );
    assert!(!Path::new(&out).exists());
}

#[test]
fn request_refuses_bad_input_before_sending_anything() {
    let pki = Pki::new();
    let data = pki.file("data", b"x");
    // A URL nobody listens on: these must fail before any connection is tried.
    let url = "http://127.0.0.1:9/tsa";
    let existing = pki.file("existing.tsr", b"keep me");
    let said = exits(&request(url, &data, &existing, &[]), 2);
    assert!(said.contains("refusing to overwrite"), "{said}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");

    exits(&request(url, &pki.p("missing"), &pki.p("o.tsr"), &[]), 2);
    exits(
        &request(url, &data, &pki.p("o.tsr"), &["--policy", "not-an-oid"]),
        2,
    );
    exits(
        &request(url, &data, &pki.p("o.tsr"), &["--digest", "sha1"]),
        2,
    );
    assert!(!pki.path("o.tsr").exists());
}

#[test]
fn request_against_an_openssl_tsa_and_verify_its_token() {
    let pki = Pki::new();
    let config = openssl_tsa_config(&pki, "sha256");
    let dir = pki.dir.path().to_path_buf();
    let url = canned_server(1, move |query| {
        let q = dir.join("from-imza.tsq");
        let r = dir.join("from-openssl.tsr");
        std::fs::write(&q, query).unwrap();
        openssl_ts_reply(&config, q.to_str().unwrap(), r.to_str().unwrap());
        (200, TIMESTAMP_REPLY, std::fs::read(&r).unwrap())
    });
    let data = pki.file("data", b"interop");
    let out = pki.p("openssl-made.tsr");
    exits(&request(&url, &data, &out, &[]), 0);
    exits(&verify(&pki, &out, &["--data", &data]), 0);
}

// --- imza ts verify -----------------------------------------------------------------------

#[test]
fn verify_reads_tokens_made_by_openssl_ts_reply() {
    let pki = Pki::new();
    let data = pki.file("data", b"stamped by openssl");
    for ess in ["sha1", "sha256"] {
        let config = openssl_tsa_config(&pki, ess);
        let query = pki.p(&format!("{ess}.tsq"));
        let reply = pki.p(&format!("{ess}.tsr"));
        let made = openssl(&[
            "ts", "-query", "-data", &data, "-sha384", "-cert", "-out", &query,
        ]);
        assert!(made.status.success(), "{}", text(&made));
        openssl_ts_reply(&config, &query, &reply);

        let good = verify(&pki, &reply, &["--data", &data, "--json"]);
        assert_eq!(code(&good), 0, "ESSCertID {ess}: {}", text(&good));
        let json: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
        assert_eq!(json["hash_algorithm"], "SHA-384");
        assert_eq!(json["tsa_name"], format!("directoryName {TSA_SUBJECT}"));

        let other = pki.file("other", b"not what openssl stamped");
        let bad = verify(&pki, &reply, &["--data", &other]);
        assert_eq!(code(&bad), 1, "ESSCertID {ess}: {}", text(&bad));
    }
}

#[test]
fn a_tampered_token_is_invalid() {
    let (pki, tsa) = Pki::serving();
    let data = pki.file("data", b"tamper");
    let out = granted(&pki, &tsa, &data, "good.tsr", &[]);
    let good = std::fs::read(&out).unwrap();

    // The last octet is inside the ECDSA signature (SignerInfo comes last).
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 0x01;
    let tampered = pki.file("signature.tsr", &flipped);
    let said = exits(&verify(&pki, &tampered, &["--data", &data]), 1);
    assert!(said.contains("not valid"), "{said}");

    // A changed digest inside TSTInfo no longer matches the signed message-digest.
    let token = parse_response(&good).unwrap().into_token().unwrap();
    let digest = token.hashed_message().to_vec();
    let at = good
        .windows(digest.len())
        .position(|w| w == digest.as_slice())
        .unwrap();
    let mut flipped = good.clone();
    flipped[at] ^= 0x80;
    let tampered = pki.file("imprint.tsr", &flipped);
    let result = verify(
        &pki,
        &tampered,
        &["--digest-hex", &hex(&flipped[at..at + 32])],
    );
    let said = exits(&result, 1);
    assert!(said.contains("message-digest"), "{said}");

    // The untouched token still verifies, with --json saying so.
    exits(&verify(&pki, &out, &["--data", &data, "--json"]), 0);
}

#[test]
fn wrong_data_or_digest_is_invalid_and_the_right_digest_is_valid() {
    let (pki, tsa) = Pki::serving();
    let data = pki.file("data", b"the real data");
    let out = granted(&pki, &tsa, &data, "t.tsr", &[]);
    let other = pki.file("other", b"the real data!");
    let result = verify(&pki, &out, &["--data", &other, "--json"]);
    exits(&result, 1);
    let json: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert!(json["reason"]
        .as_str()
        .unwrap()
        .contains("the token stamps SHA-256"));

    let right = hex(DigestAlgorithm::Sha256.digest(b"the real data"));
    exits(&verify(&pki, &out, &["--digest-hex", &right]), 0);
    let wrong = hex(DigestAlgorithm::Sha256.digest(b"something else"));
    exits(&verify(&pki, &out, &["--digest-hex", &wrong]), 1);
    exits(&verify(&pki, &out, &["--digest-hex", "zz"]), 2);
}

#[test]
fn a_token_from_another_pki_is_invalid() {
    let pki = Pki::new();
    let stranger = Pki::new();
    let tsa = ImzaTsa::start(stranger.authority());
    let data = pki.file("data", b"x");
    let out = granted(&pki, &tsa, &data, "foreign.tsr", &[]);
    // Verified against our root, which did not certify the stranger's TSA.
    let said = exits(&verify(&pki, &out, &["--data", &data]), 1);
    assert!(said.contains("does not validate"), "{said}");
    exits(
        &verify(&pki, &out, &["--data", &data, "--check-time", "now"]),
        1,
    );
}

#[test]
fn unreadable_or_non_timestamp_input_exits_2() {
    let pki = Pki::new();
    let data = pki.file("data", b"x");
    let garbage = pki.file("garbage.tsr", b"this is not DER at all");
    let said = exits(&verify(&pki, &garbage, &["--data", &data]), 2);
    assert!(said.contains("is not a DER time-stamp response"), "{said}");

    exits(&verify(&pki, &pki.p("missing.tsr"), &["--data", &data]), 2);

    // A certificate is DER but not a time-stamp.
    exits(&verify(&pki, &pki.p("CA.pem"), &["--data", &data]), 2);

    let tsa = ImzaTsa::start(pki.authority());
    let out = granted(&pki, &tsa, &data, "t.tsr", &[]);
    let ca = pki.file(
        "not-a-cert.pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let result = imza(&[
        "ts",
        "verify",
        "--in",
        &out,
        "--data",
        &data,
        "--ca-file",
        &ca,
    ]);
    exits(&result, 2);
    exits(&verify(&pki, &out, &["--data", &pki.p("missing-data")]), 2);
    // --data and --digest-hex: exactly one.
    exits(&verify(&pki, &out, &[]), 2);
}

#[test]
fn a_rejection_response_is_not_a_valid_timestamp() {
    let pki = Pki::new();
    let tsa = pki.authority();
    let answer = tsa.respond(b"garbage", OffsetDateTime::now_utc());
    let rejection = pki.file("rejection.tsr", &answer.der);
    let said = exits(
        &verify(&pki, &rejection, &["--digest-hex", &"00".repeat(32)]),
        1,
    );
    assert!(said.contains("badDataFormat"), "{said}");
}

#[test]
fn help_texts_explain_the_commands() {
    for (command, needles) in [
        (
            "request",
            [
                "--no-nonce",
                "--query-out",
                "only the hash leaves this machine",
                "openssl ts -reply",
            ],
        ),
        (
            "verify",
            [
                "--digest-hex",
                "--untrusted",
                "Exit status 0: valid",
                "gen-time",
            ],
        ),
    ] {
        let help = text(&imza(&["ts", command, "--help"]));
        for words in needles {
            assert!(help.contains(words), "ts {command}: {words}: {help}");
        }
    }
}
