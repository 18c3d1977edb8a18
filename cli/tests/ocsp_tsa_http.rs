//! OCSP and RFC 3161 over real HTTP on loopback, checked by tools we did not write:
//! `openssl ocsp -url` (good / revoked with reason / unknown, with and without nonce, POST and
//! GET, verified with -CAfile), pkilint's `lint_ocsp_response`, `openssl ts -query` →
//! `POST /tsa` → `openssl ts -verify`, and hostile bodies after which a good request still
//! succeeds.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// A PKI with two citizen certificates (`alice.pem`, `bob.pem`), a TSA unit certified by
/// `citizens`, and the PEM files the openssl commands need, served by `imza serve`.
struct Served {
    pki: TestPki,
    server: Server,
    root: PathBuf,
    citizens: PathBuf,
}

fn served() -> Served {
    let pki = TestPki::with_root_and_citizens();
    for name in ["alice", "bob"] {
        pki.issue_citizen("citizen-sign", name);
    }
    pki.ok(&["tsa", "init", "--ca", "citizens"]);
    let root = pki.ca_pem("root");
    let citizens = pki.ca_pem("citizens");
    let server = Server::start(&pki);
    Served {
        pki,
        server,
        root,
        citizens,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

impl Served {
    fn ocsp_url(&self) -> String {
        format!("{}/ocsp", self.server.base)
    }

    /// `openssl ocsp -issuer citizens -cert CERT -url .../ocsp -CAfile root [EXTRA...]`:
    /// (exit success, stdout + stderr).
    fn openssl_ocsp(&self, target: &[&str], extra: &[&str]) -> (bool, String) {
        let url = self.ocsp_url();
        let mut args = vec!["ocsp", "-issuer", s(&self.citizens)];
        args.extend_from_slice(target);
        args.extend(["-url", &url, "-CAfile", s(&self.root)]);
        args.extend_from_slice(extra);
        let out = run("openssl", &args);
        (
            out.status.success(),
            format!("{}{}", stdout(&out), stderr(&out)),
        )
    }

    fn cert(&self, name: &str) -> PathBuf {
        self.pki.path(&format!("{name}.pem"))
    }

    /// A DER OCSP request for `name`'s certificate made by openssl.
    fn request(&self, name: &str, nonce: bool) -> Vec<u8> {
        let out = self.pki.path(&format!("{name}-{nonce}.req"));
        let cert = self.cert(name);
        let mut args = vec![
            "ocsp",
            "-issuer",
            s(&self.citizens),
            "-cert",
            s(&cert),
            "-reqout",
            s(&out),
        ];
        if !nonce {
            args.push("-no_nonce");
        }
        let result = run("openssl", &args);
        assert!(result.status.success(), "{}", stderr(&result));
        std::fs::read(out).expect("request")
    }

    fn post_ocsp(&self, body: &[u8]) -> HttpResponse {
        self.server.post("/ocsp", "application/ocsp-request", body)
    }

    /// Reads a response with openssl and checks it against `name`'s certificate: the status
    /// line (`good`, `revoked`, ...) and whether the signature verified.
    fn check_response(&self, name: &str, response: &[u8]) -> String {
        let file = self.pki.path(&format!("{name}.resp"));
        std::fs::write(&file, response).expect("write response");
        let cert = self.cert(name);
        let out = run(
            "openssl",
            &[
                "ocsp",
                "-respin",
                s(&file),
                "-issuer",
                s(&self.citizens),
                "-cert",
                s(&cert),
                "-CAfile",
                s(&self.root),
                "-no_nonce",
            ],
        );
        format!("{}{}", stdout(&out), stderr(&out))
    }

    /// Asserts the service still answers a good request correctly.
    fn still_serves(&self) {
        let alice = self.cert("alice");
        let (ok, text) = self.openssl_ocsp(&["-cert", s(&alice)], &[]);
        assert!(ok && text.contains(": good"), "{text}");
    }
}

/// Standard base64 of `der`, percent-encoded for a URL path (RFC 6960 A.1).
fn url_base64(der: &[u8]) -> String {
    let out = run_with_stdin("base64", &["-w0"], der);
    String::from_utf8(out)
        .expect("base64")
        .trim()
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

fn run_with_stdin(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait").stdout
}

#[test]
fn openssl_ocsp_sees_good_revoked_and_unknown_with_and_without_nonce() {
    let t = served();
    let alice = t.cert("alice");
    let bob = t.cert("bob");

    // POST with a nonce (openssl's default) and without; both verify against the root.
    for extra in [&[][..], &["-no_nonce"][..]] {
        let (ok, text) = t.openssl_ocsp(&["-cert", s(&alice)], extra);
        assert!(ok, "{text}");
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(text.contains(&format!("{}: good", s(&alice))), "{text}");
    }
    // A nonce is echoed: openssl checks it and would say "WARNING: no nonce in response".
    let (_, text) = t.openssl_ocsp(&["-cert", s(&alice)], &[]);
    assert!(!text.contains("no nonce"), "{text}");

    // A serial the CA never issued is unknown, never good.
    let (ok, text) = t.openssl_ocsp(&["-serial", "0x4242424242424242"], &[]);
    assert!(ok, "{text}");
    assert!(text.contains(": unknown"), "{text}");

    // GET /ocsp/{url-encoded base64} answers the same, with RFC 5019 cache headers.
    let request = t.request("alice", false);
    let get = t
        .server
        .request("GET", &format!("/ocsp/{}", url_base64(&request)), &[], None);
    assert_eq!(get.status, 200);
    assert_eq!(
        get.header("content-type").as_deref(),
        Some("application/ocsp-response")
    );
    let verdict = t.check_response("alice", &get.body);
    assert!(verdict.contains("Response verify OK"), "{verdict}");
    assert!(verdict.contains(": good"), "{verdict}");
    let cache_control = get.header("cache-control").expect("Cache-Control");
    assert!(cache_control.contains("max-age="), "{cache_control}");
    assert!(get.header("etag").is_some() && get.header("last-modified").is_some());
    // The POST answer to the same nonce-less request is the same cached response.
    assert_eq!(t.post_ocsp(&request).body, get.body);

    // Revoke bob from the CLI (another process) while his "good" answer is cached: within
    // one second the server answers "revoked", with the time and the reason.
    let (_, before) = t.openssl_ocsp(&["-cert", s(&bob)], &["-no_nonce"]);
    assert!(before.contains(": good"), "{before}");
    let serial = t
        .pki
        .serials("citizens")
        .into_iter()
        .find(|serial| {
            let text = stdout(&run(
                "openssl",
                &["x509", "-in", s(&bob), "-noout", "-serial"],
            ));
            text.trim().ends_with(serial.as_str())
        })
        .expect("bob's serial");
    t.pki
        .revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    std::thread::sleep(Duration::from_millis(1000));
    for extra in [&["-no_nonce"][..], &[][..]] {
        let (ok, text) = t.openssl_ocsp(&["-cert", s(&bob)], extra);
        assert!(ok, "{text}");
        assert!(text.contains(": revoked"), "{text}");
        assert!(text.contains("Reason: keyCompromise"), "{text}");
        assert!(text.contains("Revocation Time"), "{text}");
    }
    // Alice is untouched.
    t.still_serves();
}

#[test]
fn lint_ocsp_response_finds_no_error_in_good_revoked_and_unknown_answers() {
    let t = served();
    let serial_of = |name: &str| {
        let cert = t.cert(name);
        let text = stdout(&run(
            "openssl",
            &["x509", "-in", s(&cert), "-noout", "-serial"],
        ));
        text.trim().trim_start_matches("serial=").to_string()
    };
    t.pki
        .revoke("citizens", &serial_of("bob"), &["--reason", "superseded"]);
    let unknown = t.pki.path("unknown.req");
    let made = run(
        "openssl",
        &[
            "ocsp",
            "-issuer",
            s(&t.citizens),
            "-serial",
            "0x4242",
            "-reqout",
            s(&unknown),
        ],
    );
    assert!(made.status.success());
    let requests = [
        ("good", t.request("alice", true)),
        ("good-cached", t.request("alice", false)),
        ("revoked", t.request("bob", false)),
        ("unknown", std::fs::read(&unknown).unwrap()),
    ];
    for (label, request) in requests {
        let answer = t.post_ocsp(&request);
        assert_eq!(answer.status, 200, "{label}");
        let file = t.pki.path(&format!("lint-{label}.der"));
        std::fs::write(&file, &answer.body).unwrap();
        let out = run(
            &pkilint("lint_ocsp_response"),
            &["lint", "-s", "ERROR", "--document-format", "DER", s(&file)],
        );
        assert!(
            out.status.success(),
            "lint_ocsp_response, {label}:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn openssl_ts_query_is_stamped_and_verifies() {
    let t = served();
    // The chain openssl needs besides the root: the TSA certificate and its issuing CA.
    let chain = t.pki.path("tsa-chain.pem");
    let tsa_pem = t.pki.ok(&["tsa", "cert"]);
    std::fs::write(
        &chain,
        format!("{tsa_pem}{}", std::fs::read_to_string(&t.citizens).unwrap()),
    )
    .unwrap();
    let data = t.pki.path("document.txt");
    std::fs::write(&data, "Arayış № 42: verilir ki, ...\n").unwrap();

    for digest in ["-sha256", "-sha512"] {
        for (cert_req, nonce) in [(true, true), (false, false), (true, false), (false, true)] {
            let label = format!("{digest} cert={cert_req} nonce={nonce}");
            let query = t.pki.path("q.tsq");
            let mut args = vec!["ts", "-query", "-data", s(&data), digest];
            if cert_req {
                args.push("-cert");
            }
            if !nonce {
                args.push("-no_nonce");
            }
            args.extend(["-out", s(&query)]);
            let made = run("openssl", &args);
            assert!(made.status.success(), "{}", stderr(&made));

            let reply = t.server.post(
                "/tsa",
                "application/timestamp-query",
                &std::fs::read(&query).unwrap(),
            );
            assert_eq!(reply.status, 200, "{label}");
            assert_eq!(
                reply.header("content-type").as_deref(),
                Some("application/timestamp-reply"),
                "{label}"
            );
            let response = t.pki.path("r.tsr");
            std::fs::write(&response, &reply.body).unwrap();
            let verified = run(
                "openssl",
                &[
                    "ts",
                    "-verify",
                    "-in",
                    s(&response),
                    "-queryfile",
                    s(&query),
                    "-CAfile",
                    s(&t.root),
                    "-untrusted",
                    s(&chain),
                ],
            );
            let text = format!("{}{}", stdout(&verified), stderr(&verified));
            assert!(
                verified.status.success() && text.contains("Verification: OK"),
                "{label}: {text}"
            );
            // The same token also verifies against the data itself.
            let against_data = run(
                "openssl",
                &[
                    "ts",
                    "-verify",
                    "-in",
                    s(&response),
                    "-data",
                    s(&data),
                    "-CAfile",
                    s(&t.root),
                    "-untrusted",
                    s(&chain),
                ],
            );
            assert!(against_data.status.success(), "{label}");
        }
    }
}

/// A definite-length DER nesting `depth` SEQUENCEs deep.
fn nested(depth: usize) -> Vec<u8> {
    let mut der = vec![0x05, 0x00];
    for _ in 0..depth {
        let len = der.len();
        let mut outer = vec![0x30];
        if len < 0x80 {
            outer.push(len as u8);
        } else if len < 0x100 {
            outer.extend([0x81, len as u8]);
        } else if len < 0x10000 {
            outer.extend([0x82, (len >> 8) as u8, len as u8]);
        } else {
            outer.extend([0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
        }
        outer.extend(der);
        der = outer;
    }
    der
}

/// The OCSPResponseStatus of a DER OCSPResponse: `SEQUENCE { ENUMERATED status, ... }`.
fn ocsp_status(der: &[u8]) -> u8 {
    let at = match der.get(1) {
        Some(l) if *l < 0x80 => 2,
        Some(l) => 2 + usize::from(l & 0x7f),
        None => panic!("empty OCSP response"),
    };
    assert_eq!(der.get(at), Some(&0x0a), "an ENUMERATED status");
    der[at + 2]
}

#[test]
fn hostile_requests_get_clean_errors_and_the_server_stays_up() {
    let t = served();
    const MALFORMED: u8 = 1;

    // Random bytes, truncated DER, deep nesting: HTTP 200 with malformedRequest.
    let good = t.request("alice", true);
    let mut random = vec![0u8; 4096];
    openssl::rand::rand_bytes(&mut random).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random", random),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("deep nesting", nested(10_000)),
        (
            "indefinite length",
            vec![0x30, 0x80, 0x30, 0x80, 0x00, 0x00, 0x00, 0x00],
        ),
        ("empty", Vec::new()),
    ];
    for (label, body) in &cases {
        let answer = t.post_ocsp(body);
        assert_eq!(answer.status, 200, "{label}");
        assert_eq!(ocsp_status(&answer.body), MALFORMED, "{label}");
        t.still_serves();
    }

    // A 10 MB body: refused with 413 before it is read.
    let big = vec![0x30u8; 10 * 1024 * 1024];
    assert_eq!(t.post_ocsp(&big).status, 413);
    t.still_serves();

    // An OCSP request for `count` made-up serials, built by openssl into `name`.
    let request_for = |count: u32, name: &str| {
        let file = t.pki.path(name);
        let mut args: Vec<String> = vec![
            "ocsp".into(),
            "-issuer".into(),
            s(&t.citizens).into(),
            "-no_nonce".into(),
        ];
        for i in 0..count {
            args.extend(["-serial".into(), format!("0x{:08X}", 0x4000_0000 + i)]);
        }
        args.extend(["-reqout".into(), s(&file).into()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(run("openssl", &argv).status.success());
        std::fs::read(&file).unwrap()
    };
    // 10,000 CertIDs: over the 64 KiB limit, 413.
    assert_eq!(t.post_ocsp(&request_for(10_000, "many.req")).status, 413);
    // 101 CertIDs fit in the body but exceed the per-request limit: an OCSP error status.
    let answer = t.post_ocsp(&request_for(101, "some.req"));
    assert_eq!(answer.status, 200);
    assert_ne!(ocsp_status(&answer.body), 0, "101 CertIDs must not succeed");
    t.still_serves();

    // GET with base64 that does not decode, and with a path far over the limit.
    let get = t.server.request("GET", "/ocsp/not-base64!!", &[], None);
    assert_eq!(get.status, 200, "GET garbage");
    assert_eq!(ocsp_status(&get.body), MALFORMED, "GET garbage");
    let long = "A".repeat(100_000);
    let get = t.server.request("GET", &format!("/ocsp/{long}"), &[], None);
    assert!(
        [413, 414, 431, 400].contains(&get.status),
        "long GET: {}",
        get.status
    );
    t.still_serves();

    // The TSA: garbage is refused in a TimeStampResp (HTTP 200), 10 MB is 413, and the
    // wrong content type 415.
    let reply = t
        .server
        .post("/tsa", "application/timestamp-query", &cases[0].1);
    assert_eq!(reply.status, 200);
    let response = t.pki.path("garbage.tsr");
    std::fs::write(&response, &reply.body).unwrap();
    let text = stdout(&run(
        "openssl",
        &["ts", "-reply", "-in", s(&response), "-text"],
    ));
    assert!(
        text.contains("Status: Rejected")
            && text.contains("the data submitted has the wrong format"),
        "{text}"
    );
    assert_eq!(
        t.server
            .post("/tsa", "application/timestamp-query", &big)
            .status,
        413
    );
    assert_eq!(t.server.post("/tsa", "text/plain", b"hello").status, 415);
    assert_eq!(t.server.post("/ocsp", "text/plain", &good).status, 415);

    t.still_serves();
    assert_eq!(t.server.get("/health").0, 200);
}

#[test]
fn a_failing_clock_check_makes_the_tsa_refuse_with_time_not_available() {
    let pki = TestPki::with_root_and_citizens();
    pki.ok(&["tsa", "init", "--ca", "citizens"]);
    let config = pki.path("serve.toml");
    std::fs::write(
        &config,
        "[tsa]\nclock_check_command = [\"sh\", \"-c\", \"echo 'not synchronised' >&2; exit 1\"]\n\
         clock_check_interval_seconds = 1\n",
    )
    .unwrap();
    let server = Server::start_with(&pki, &["--config", s(&config)]);
    let text = stamp(&pki, &server);
    assert!(text.contains("Status: Rejected"), "{text}");
    // The command's own words stay in the operator's log, not in the public answer.
    assert!(!text.contains("not synchronised"), "{text}");
    assert!(
        text.contains("Failure info: the TSA's time source is not available"),
        "{text}"
    );

    // An unknown key in the configuration is refused at start (exit 2), naming the file.
    std::fs::write(&config, "[ocsp]\nvalidity = 5\n").unwrap();
    let out = pki.imza(&["serve", "--listen", "127.0.0.1:1", "--config", s(&config)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("serve.toml"), "{}", stderr(&out));
}

/// Stamps a fresh `openssl ts -query` and returns `openssl ts -reply -text` of the answer.
fn stamp(pki: &TestPki, server: &Server) -> String {
    let data = pki.path("stamped.txt");
    std::fs::write(&data, "e-arayış").unwrap();
    let query = pki.path("stamp.tsq");
    let made = run(
        "openssl",
        &[
            "ts",
            "-query",
            "-data",
            s(&data),
            "-sha256",
            "-cert",
            "-out",
            s(&query),
        ],
    );
    assert!(made.status.success());
    let reply = server.post(
        "/tsa",
        "application/timestamp-query",
        &std::fs::read(&query).unwrap(),
    );
    assert_eq!(reply.status, 200);
    let response = pki.path("stamp.tsr");
    std::fs::write(&response, &reply.body).unwrap();
    stdout(&run(
        "openssl",
        &["ts", "-reply", "-in", s(&response), "-text"],
    ))
}

/// The serials of the service certificates `imza ocsp|tsa list` shows as usable.
fn usable_serials(pki: &TestPki, kind: &str, name: &str) -> Vec<String> {
    let list: serde_json::Value = serde_json::from_str(&pki.ok(&[kind, "list", "--json"])).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == name && s["usable"] == true)
        .map(|s| s["serial"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn revoked_service_certificates_are_replaced_or_withdrawn_while_serving() {
    let pki = TestPki::with_root_and_citizens();
    let alice = pki.issue_citizen("citizen-sign", "alice");
    pki.ok(&["tsa", "init", "--ca", "citizens"]);
    let config = pki.path("serve.toml");
    std::fs::write(&config, "check_interval_seconds = 1\n").unwrap();
    let server = Server::start_with(&pki, &["--config", s(&config)]);
    let root = pki.ca_pem("root");
    let citizens = pki.ca_pem("citizens");
    let url = format!("{}/ocsp", server.base);
    let ocsp = || {
        let out = run(
            "openssl",
            &[
                "ocsp",
                "-issuer",
                s(&citizens),
                "-cert",
                s(&alice),
                "-url",
                &url,
                "-CAfile",
                s(&root),
            ],
        );
        format!("{}{}", stdout(&out), stderr(&out))
    };
    assert!(ocsp().contains(": good"));
    assert!(stamp(&pki, &server).contains("Status: Granted."));

    // Revoke the citizens CA's responder certificate and the TSA's, from the CLI.
    let responder = usable_serials(&pki, "ocsp", "citizens");
    assert_eq!(responder.len(), 1);
    pki.revoke("citizens", &responder[0], &["--reason", "keyCompromise"]);
    let unit = usable_serials(&pki, "tsa", "tsa");
    assert_eq!(unit.len(), 1);
    pki.revoke("citizens", &unit[0], &["--reason", "keyCompromise"]);
    std::thread::sleep(Duration::from_millis(2500));

    // The server issued a new responder (the CA key is a file) and answers with it; the TSA
    // stops stamping rather than sign with a revoked certificate.
    let renewed = usable_serials(&pki, "ocsp", "citizens");
    assert_eq!(renewed.len(), 1);
    assert_ne!(renewed, responder);
    let text = ocsp();
    assert!(
        text.contains("Response verify OK") && text.contains(": good"),
        "{text}"
    );
    let refused = stamp(&pki, &server);
    assert!(refused.contains("Status: Rejected"), "{refused}");
    assert!(
        refused.contains("Failure info: the request cannot be handled due to system failure"),
        "{refused}"
    );

    // A rotated unit is picked up and signs again.
    pki.ok(&["tsa", "init", "--ca", "citizens", "--rotate"]);
    std::thread::sleep(Duration::from_millis(2500));
    let granted = stamp(&pki, &server);
    assert!(granted.contains("Status: Granted."), "{granted}");
}
