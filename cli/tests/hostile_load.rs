//! `imza serve` under hostile load on loopback, as an attacker on the internet would load it
//! (issue 13): no route can delay another service's work or the revocation poll.
//!
//! - 64 concurrent `POST /verify` of a plain signature and of a crafted one (16 signers × 16
//!   time-stamps, the most the reader accepts) while a certificate is revoked: `openssl ocsp`
//!   says revoked within a second, and nonce OCSP, the TSA and the mobile signature service
//!   keep answering with p99 under 100 ms;
//! - the same with signatures whose revocation URLs point at a listener that never answers;
//! - 2,000 idle connections, 2,000 that send their head a byte at a time and 200 bodies that
//!   never end, against a server started under a 1,024 open-file limit: a well-behaved client
//!   gets every answer, memory stays bounded, and the idle ones are closed after the timeout.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use imza_core::alg::DigestAlgorithm;
use imza_core::cms::{CmsSignedData, Limits, RawAttribute};
use imza_core::oids;
use imza_http::{HttpClient, HttpError, HttpMethod};
use imza_signer::{HttpTimestamper, Timestamper};
use serde_json::Value;

const DOCUMENT: &[u8] = b"Yasayis yeri haqqinda arayis N 2026/7781.\n";
const RP_NAME: &str = "bank.az";
const P12_PASS: (&str, &str) = ("HOSTILE_P12_PASS", "p12-parol");
/// What the probes must stay under while the server is flooded.
const P99_BOUND: Duration = Duration::from_millis(100);
/// How soon a revocation must reach OCSP clients.
const REVOCATION_BOUND: Duration = Duration::from_secs(1);

/// These tests load the machine on purpose: one at a time, so that each measures its own
/// flood and nothing else.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn client() -> HttpClient {
    HttpClient {
        timeout: Duration::from_secs(30),
        max_bytes: 64 * 1024 * 1024,
    }
}

/// A PKI whose certificates point at the `imza serve` it runs (as the demo's do), a TSA unit,
/// a relying party for the mobile signature service, a certificate to revoke under load, and
/// the request bodies the probes send.
struct Lab {
    pki: TestPki,
    server: Server,
    root: PathBuf,
    citizens: PathBuf,
    victim: PathBuf,
    victim_serial: String,
    rp_key: String,
    nonce_request: Vec<u8>,
    tsa_query: Vec<u8>,
}

impl Lab {
    fn start() -> Lab {
        let port = free_port();
        let pki = TestPki::with_root_and_citizens_at(&format!("http://127.0.0.1:{port}"));
        pki.ok(&["tsa", "init", "--ca", "citizens"]);
        let added: Value =
            serde_json::from_str(&pki.ok(&["mobile", "rp", "add", "--name", RP_NAME])).unwrap();
        let rp_key = added["apiKey"].as_str().expect("an API key").to_string();
        let good = pki.issue_citizen("citizen-sign", "good");
        let victim = pki.issue_citizen("citizen-sign", "victim");
        let victim_serial = serial_of(&victim);
        let root = pki.ca_pem("root");
        let citizens = pki.ca_pem("citizens");
        let server = Server::start_on(&pki, port, &[]);

        let request = pki.path("nonce.req");
        let out = run(
            "openssl",
            &[
                "ocsp",
                "-issuer",
                s(&citizens),
                "-cert",
                s(&good),
                "-reqout",
                s(&request),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let document = pki.path("document.txt");
        std::fs::write(&document, DOCUMENT).unwrap();
        let query = pki.path("q.tsq");
        let out = run(
            "openssl",
            &[
                "ts",
                "-query",
                "-data",
                s(&document),
                "-sha256",
                "-cert",
                "-out",
                s(&query),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        Lab {
            nonce_request: std::fs::read(&request).unwrap(),
            tsa_query: std::fs::read(&query).unwrap(),
            pki,
            server,
            root,
            citizens,
            victim,
            victim_serial,
            rp_key,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    /// A new signing key and `citizen-sign` certificate from the citizens CA, as a PKCS#12.
    fn signer(&self, name: &str) -> PathBuf {
        let p12 = self.pki.path(&format!("{name}.p12"));
        let cert = self.pki.path(&format!("{name}.pem"));
        self.pki.issue_p12(
            (
                "citizens",
                "citizen-sign",
                &format!("CN=Signer {name},SN=Signer,GN={name},SERIALNUMBER=PNOAZ-5ZK7T2Q,C=AZ"),
            ),
            &p12,
            &cert,
            P12_PASS,
            &[],
        );
        p12
    }

    /// A detached CAdES B-T signature of [`DOCUMENT`] by `p12`, stamped by the server's TSA.
    fn sign(&self, p12: &Path, name: &str) -> Vec<u8> {
        let out = self.pki.path(&format!("{name}.p7s"));
        let document = self.pki.path("document.txt");
        let tsa = self.url("/tsa");
        self.pki.ok_env(
            &[
                "sign",
                "--in",
                s(&document),
                "--out",
                s(&out),
                "--p12",
                s(p12),
                "--p12-pass-env",
                P12_PASS.0,
                "--level",
                "T",
                "--tsa",
                &tsa,
            ],
            &[P12_PASS],
        );
        std::fs::read(out).unwrap()
    }

    /// 16 signers (distinct keys and certificates, so nothing one validation learns serves
    /// the next signer), each with 16 signature time-stamps from the server's TSA: the most
    /// the validator reads.
    fn crafted_signature(&self) -> Vec<u8> {
        let limits = Limits {
            certificates: 128,
            revocation_values: 64,
            signers: 16,
            attributes: 64,
            attribute_values: 16,
        };
        let timestamper = HttpTimestamper::new(self.url("/tsa"));
        let mut combined: Option<CmsSignedData> = None;
        for i in 0..16 {
            let p12 = self.signer(&format!("crafted{i}"));
            let signed = CmsSignedData::read(&self.sign(&p12, &format!("crafted{i}")), &limits)
                .expect("imza's signature reads");
            let combined = combined.get_or_insert_with(|| {
                let mut first = signed.clone();
                first.signers.clear();
                first
            });
            for certificate in signed.x509_certificates() {
                combined.add_certificate(certificate).unwrap();
            }
            for mut signer in signed.signers {
                let digest = DigestAlgorithm::Sha256.digest(signer.signature());
                let tokens: Vec<Vec<u8>> = (0..15)
                    .map(|_| {
                        timestamper
                            .timestamp(&digest, DigestAlgorithm::Sha256)
                            .expect("a time-stamp")
                            .der()
                            .to_vec()
                    })
                    .collect();
                signer
                    .add_unsigned(RawAttribute::new(oids::ATTR_TIME_STAMP_TOKEN, tokens).unwrap())
                    .unwrap();
                combined.signers.push(signer);
            }
        }
        combined.expect("16 signers").to_der().unwrap()
    }
}

fn serial_of(cert: &Path) -> String {
    let text = openssl_show("x509", cert, false, &["-serial"]);
    text.trim()
        .strip_prefix("serial=")
        .expect("serial=")
        .to_string()
}

/// The JSON body of `POST /verify` for a detached signature of [`DOCUMENT`].
fn verify_body(signature: &[u8]) -> Vec<u8> {
    use base64ct::{Base64, Encoding};
    serde_json::json!({
        "signature": Base64::encode_string(signature),
        "content": Base64::encode_string(DOCUMENT),
    })
    .to_string()
    .into_bytes()
}

/// What the flood got back.
#[derive(Default, Debug)]
struct FloodTally {
    /// 200 answers whose first indication was TOTAL_PASSED, by body.
    passed: Vec<usize>,
    /// 200 answers with any other verdict, by body.
    other_verdicts: Vec<usize>,
    /// 503 with Retry-After.
    busy: usize,
    /// Anything else (another status, no answer): (body, what).
    failures: Vec<(usize, String)>,
}

/// `threads` clients posting `bodies` to `/verify` round-robin, as fast as they are answered,
/// until `stop`.
fn flood(
    url: String,
    bodies: Vec<Vec<u8>>,
    threads: usize,
    stop: Arc<AtomicBool>,
) -> Vec<JoinHandle<FloodTally>> {
    let bodies = Arc::new(bodies);
    (0..threads)
        .map(|t| {
            let (url, bodies, stop) = (url.clone(), Arc::clone(&bodies), Arc::clone(&stop));
            std::thread::spawn(move || {
                let http = client();
                let mut tally = FloodTally {
                    passed: vec![0; bodies.len()],
                    other_verdicts: vec![0; bodies.len()],
                    ..FloodTally::default()
                };
                let mut n = t;
                while !stop.load(Ordering::Relaxed) {
                    let which = n % bodies.len();
                    n += 1;
                    match http.post(&url, "application/json", "application/json", &bodies[which]) {
                        Ok(report) => {
                            let report: Value = serde_json::from_slice(&report).unwrap();
                            if first_indication(&report) == "TOTAL_PASSED" {
                                tally.passed[which] += 1;
                            } else {
                                tally.other_verdicts[which] += 1;
                                tally.failures.push((which, report.to_string()));
                            }
                        }
                        Err(HttpError::Status { status: 503, .. }) => {
                            tally.busy += 1;
                            // A client told to come back later does; a moment later.
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(e) => tally.failures.push((which, e.to_string())),
                    }
                }
                tally
            })
        })
        .collect()
}

fn total(handles: Vec<JoinHandle<FloodTally>>, bodies: usize) -> FloodTally {
    let mut sum = FloodTally {
        passed: vec![0; bodies],
        other_verdicts: vec![0; bodies],
        ..FloodTally::default()
    };
    for handle in handles {
        let tally = handle.join().expect("a flood thread");
        for i in 0..bodies {
            sum.passed[i] += tally.passed[i];
            sum.other_verdicts[i] += tally.other_verdicts[i];
        }
        sum.busy += tally.busy;
        sum.failures.extend(tally.failures);
    }
    sum
}

/// A client asking one thing every 20 ms until `stop`, timing each answer.
struct Probe {
    name: &'static str,
    handle: JoinHandle<(Vec<Duration>, Vec<String>)>,
}

impl Probe {
    fn start<F>(name: &'static str, stop: &Arc<AtomicBool>, ask: F) -> Probe
    where
        F: Fn(&HttpClient) -> Result<(), String> + Send + 'static,
    {
        let stop = Arc::clone(stop);
        let handle = std::thread::spawn(move || {
            let http = client();
            let (mut latencies, mut failures) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                if let Err(e) = ask(&http) {
                    failures.push(e);
                }
                latencies.push(started.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
            (latencies, failures)
        });
        Probe { name, handle }
    }

    /// Joins and checks: at least 50 answers, none failed, p99 under [`P99_BOUND`]. Returns
    /// the p99 for the log.
    fn check(self) -> Duration {
        let (mut latencies, failures) = self.handle.join().expect("a probe thread");
        assert!(failures.is_empty(), "{}: {failures:?}", self.name);
        assert!(
            latencies.len() >= 50,
            "{}: only {} answers",
            self.name,
            latencies.len()
        );
        latencies.sort();
        let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
        eprintln!(
            "{}: {} answers, p50 {:?}, p99 {p99:?}, max {:?}",
            self.name,
            latencies.len(),
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1]
        );
        assert!(p99 < P99_BOUND, "{}: p99 {p99:?}", self.name);
        p99
    }
}

/// Nonce OCSP (signed live), the TSA and the mobile signature service, probed until `stop`.
fn probes(lab: &Lab, stop: &Arc<AtomicBool>) -> Vec<Probe> {
    let ocsp = (lab.url("/ocsp"), lab.nonce_request.clone());
    let tsa = (lab.url("/tsa"), lab.tsa_query.clone());
    let mss_url = lab.url("/mss/v1/certificate");
    let authorization = {
        use base64ct::{Base64, Encoding};
        format!(
            "Basic {}",
            Base64::encode_string(format!("{RP_NAME}:{}", lab.rp_key).as_bytes())
        )
    };
    vec![
        Probe::start("nonce OCSP", stop, move |http| {
            let answer = http
                .post(
                    &ocsp.0,
                    "application/ocsp-request",
                    "application/ocsp-response",
                    &ocsp.1,
                )
                .map_err(|e| e.to_string())?;
            let parsed = imza_ocsp::parse_response(&answer).map_err(|e| e.to_string())?;
            match parsed.status {
                imza_ocsp::ResponseStatus::Successful => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }),
        Probe::start("TSA", stop, move |http| {
            let answer = http
                .post(
                    &tsa.0,
                    "application/timestamp-query",
                    "application/timestamp-reply",
                    &tsa.1,
                )
                .map_err(|e| e.to_string())?;
            let parsed = imza_tsa::parse_response(&answer).map_err(|e| e.to_string())?;
            match parsed.status {
                imza_tsa::PkiStatus::Granted => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }),
        Probe::start("mobile signature", stop, move |http| {
            let body = br#"{"phoneNumber":"+994501112233","nationalIdentityNumber":"7QW3E4R"}"#;
            let answer = http
                .send(
                    HttpMethod::Post,
                    &mss_url,
                    &[("Authorization", &authorization)],
                    "application/json",
                    Some(("application/json", body)),
                )
                .map_err(|e| e.to_string())?;
            let answer: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
            match answer["result"].as_str() {
                Some("NOT_FOUND") => Ok(()),
                _ => Err(answer.to_string()),
            }
        }),
    ]
}

impl Lab {
    /// `openssl ocsp` without a nonce (the cached path) for the victim: "good" or "revoked".
    fn openssl_status(&self) -> String {
        let out = run(
            "openssl",
            &[
                "ocsp",
                "-issuer",
                s(&self.citizens),
                "-cert",
                s(&self.victim),
                "-url",
                &self.url("/ocsp"),
                "-CAfile",
                s(&self.root),
                "-no_nonce",
            ],
        );
        let text = stdout(&out);
        assert!(out.status.success(), "{text}{}", stderr(&out));
        let line = text
            .lines()
            .find(|l| l.contains(": good") || l.contains(": revoked") || l.contains(": unknown"))
            .unwrap_or_else(|| panic!("no status in {text}"));
        line.rsplit(": ").next().unwrap().trim().to_string()
    }

    /// Revokes the victim with `imza ca revoke` in another process and returns how long
    /// `openssl ocsp` kept saying anything but "revoked" after the command returned.
    fn time_until_revoked(&self) -> Duration {
        assert_eq!(
            self.openssl_status(),
            "good",
            "cached before the revocation"
        );
        self.pki.ok(&[
            "ca",
            "revoke",
            "--ca",
            "citizens",
            "--serial",
            &self.victim_serial,
            "--reason",
            "keyCompromise",
        ]);
        let revoked = Instant::now();
        loop {
            if self.openssl_status() == "revoked" {
                return revoked.elapsed();
            }
            assert!(revoked.elapsed() < Duration::from_secs(30), "never revoked");
        }
    }
}

/// Floods `/verify` with `bodies` from 64 threads, probes the other services, revokes the
/// victim two seconds in, and keeps the flood going for five seconds more. Returns the
/// flood's tally.
fn under_a_verify_flood(lab: &Lab, bodies: Vec<Vec<u8>>) -> FloodTally {
    let count = bodies.len();
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = flood(lab.url("/verify"), bodies, 64, Arc::clone(&stop));
    let probing = probes(lab, &stop);
    std::thread::sleep(Duration::from_secs(2));
    let took = lab.time_until_revoked();
    eprintln!("revoked seen by openssl ocsp after {took:?}");
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let tally = total(flooding, count);
    for probe in probing {
        probe.check();
    }
    assert!(took < REVOCATION_BOUND, "revocation took {took:?}");
    eprintln!(
        "verify flood: passed {:?}, other verdicts {:?}, 503 {}, failures {}",
        tally.passed,
        tally.other_verdicts,
        tally.busy,
        tally.failures.len()
    );
    tally
}

#[test]
fn a_verify_flood_hides_no_revocation_and_starves_no_other_service() {
    let _one = exclusive();
    let lab = Lab::start();
    let plain = lab.sign(&lab.signer("plain"), "plain");
    let crafted = lab.crafted_signature();
    assert_eq!(
        CmsSignedData::read(
            &crafted,
            &Limits {
                certificates: 128,
                revocation_values: 64,
                signers: 16,
                attributes: 64,
                attribute_values: 16
            }
        )
        .unwrap()
        .signers
        .len(),
        16
    );
    let tally = under_a_verify_flood(&lab, vec![verify_body(&plain), verify_body(&crafted)]);
    // Every answer was a report or a 503; every report says what a lone verification says.
    assert!(
        tally.failures.is_empty(),
        "{:?}",
        &tally.failures[..tally.failures.len().min(3)]
    );
    assert!(tally.passed[0] > 0 && tally.passed[1] > 0, "{tally:?}");
}

/// A bank's CA certified by the national root (its certificate in the store), whose own
/// certificates point their OCSP and CRL URLs at `dead_url`: a listener that never answers.
/// Returns a detached signature of [`DOCUMENT`] by one of its customers, made by openssl.
fn signature_with_dead_revocation_urls(lab: &Lab, dead_url: &str) -> Vec<u8> {
    let pki = &lab.pki;
    let bank_key = pki.path("bank.key");
    let bank_csr = pki.path("bank.csr");
    let bank = pki.path("bank.pem");
    let made = run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            s(&bank_key),
            "-subj",
            "/CN=Bank Respublika CA/O=Bank Respublika/C=AZ",
            "-out",
            s(&bank_csr),
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    pki.ok(&[
        "ca",
        "issue",
        "--ca",
        "root",
        "--profile",
        "sub-ca",
        "--csr",
        s(&bank_csr),
        "--out",
        s(&bank),
    ]);
    let extensions = pki.path("customer.ext");
    std::fs::write(
        &extensions,
        format!(
            "keyUsage = critical, nonRepudiation\n\
             authorityInfoAccess = OCSP;URI:{dead_url}/ocsp\n\
             crlDistributionPoints = URI:{dead_url}/bank.crl\n"
        ),
    )
    .unwrap();
    let customer_key = pki.path("customer.key");
    let customer_csr = pki.path("customer.csr");
    let customer = pki.path("customer.pem");
    let made = run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            s(&customer_key),
            "-subj",
            "/CN=Customer/C=AZ",
            "-out",
            s(&customer_csr),
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let made = run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            s(&customer_csr),
            "-CA",
            s(&bank),
            "-CAkey",
            s(&bank_key),
            "-set_serial",
            "4242",
            "-days",
            "30",
            "-extfile",
            s(&extensions),
            "-out",
            s(&customer),
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let document = pki.path("document.txt");
    let signature = pki.path("customer.p7s");
    let made = run(
        "openssl",
        &[
            "cms",
            "-sign",
            "-binary",
            "-in",
            s(&document),
            "-signer",
            s(&customer),
            "-inkey",
            s(&customer_key),
            "-certfile",
            s(&bank),
            "-outform",
            "DER",
            "-out",
            s(&signature),
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    std::fs::read(signature).unwrap()
}

#[test]
fn revocation_urls_that_never_answer_starve_no_other_service() {
    let _one = exclusive();
    let lab = Lab::start();
    // Accepts connections into its backlog and never reads or answers.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    let signature = signature_with_dead_revocation_urls(&lab, &dead_url);
    let tally = under_a_verify_flood(&lab, vec![verify_body(&signature)]);
    // No revocation information to be had: a report saying so (or a 503), never a hang.
    assert!(
        tally
            .failures
            .iter()
            .all(|(_, what)| what.contains("TRY_LATER")),
        "{:?}",
        &tally.failures[..tally.failures.len().min(3)]
    );
    assert!(tally.other_verdicts[0] > 0, "{tally:?}");
    drop(dead);
}

// --- connections ----------------------------------------------------------------------------

/// Raises this process's open-file limit to its hard limit (the attack needs thousands of
/// sockets).
fn raise_own_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    let _ = setrlimit(Resource::Nofile, raised);
    getrlimit(Resource::Nofile).current.unwrap_or(1024)
}

/// Peak resident memory of process `pid`, in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Whether the server closed `stream` (EOF, or a reset).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let _ = stream.set_nonblocking(true);
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_slow_and_endless_connections_cannot_take_the_server_offline() {
    let _one = exclusive();
    const IDLE: usize = 2_000;
    const SLOW_HEADS: usize = 2_000;
    const ENDLESS_BODIES: usize = 200;
    const IDLE_TIMEOUT: u64 = 3;
    /// Peak RSS the server must stay under (measured: see the README).
    const RSS_BOUND_KIB: u64 = 128 * 1024;
    assert!(
        raise_own_file_limit() > 5_000,
        "the test needs 5,000 sockets"
    );
    let pki = TestPki::with_root_and_citizens();
    let config = pki.path("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nidle_timeout_seconds = {IDLE_TIMEOUT}\nheader_timeout_seconds = 3\n\
             body_timeout_seconds = 3\nbody_min_bytes_per_second = 1024\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut command = Command::new("bash");
    command.args([
        "-c",
        "ulimit -n 1024 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_imza"),
        "--data-dir",
        s(&pki.data_dir()),
        "serve",
        "--listen",
        &listen,
        "--config",
        s(&config),
    ]);
    let server = Server::spawn(command, &listen);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 1024 ")),
        "{limits}"
    );

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // The attackers: connect, then idle, trickle a head, or trickle an endless body.
    let attackers = {
        let (stop, listen) = (Arc::clone(&stop), listen.clone());
        std::thread::spawn(move || {
            let mut idle = Vec::new();
            let mut trickling = Vec::new();
            for i in 0..IDLE + SLOW_HEADS + ENDLESS_BODIES {
                let Ok(mut stream) = TcpStream::connect(&listen) else {
                    continue;
                };
                if i < IDLE {
                    idle.push(stream);
                    continue;
                }
                let head: &[u8] = if i < IDLE + SLOW_HEADS {
                    b"GET /health HTTP/1.1\r\nX-Slow: "
                } else {
                    b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                      Content-Length: 10000000\r\n\r\n{\"signature\": \""
                };
                let _ = stream.write_all(head);
                let _ = stream.set_nonblocking(true);
                trickling.push(stream);
            }
            // One byte a second on each trickling connection, until told to stop.
            while !stop.load(Ordering::Relaxed) {
                for stream in &mut trickling {
                    let _ = stream.write(b"a");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            idle
        })
    };
    // The well-behaved client: a new connection and a request every 100 ms.
    let health = format!("http://{listen}/health");
    let http = HttpClient {
        timeout: Duration::from_secs(2),
        max_bytes: 1024,
    };
    let mut answered = 0;
    while started.elapsed() < Duration::from_secs(IDLE_TIMEOUT + 4) {
        let asked = Instant::now();
        let answer = http.get(&health, "text/plain");
        assert_eq!(
            answer.as_deref().ok(),
            Some(&b"ok\n"[..]),
            "after {:?}: {answer:?}",
            started.elapsed()
        );
        assert!(asked.elapsed() < Duration::from_secs(2));
        answered += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let mut idle = attackers.join().expect("the attackers");
    assert!(answered >= 50, "{answered}");
    // Every idle connection is gone: closed to make room, or after the idle timeout.
    let mut still_open = 0;
    for connection in &mut idle {
        if !closed_by_server(connection) {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "of {} idle connections", idle.len());
    let rss = peak_rss_kib(server.pid());
    eprintln!("server peak RSS {} MiB", rss / 1024);
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");
    // Below the cap nothing is evicted: idle connections last the idle timeout, then go.
    let mut quiet: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&listen).expect("a connection below the cap"))
        .collect();
    let opened = Instant::now();
    std::thread::sleep(Duration::from_secs(IDLE_TIMEOUT - 1));
    let mut closed_early = 0;
    for connection in &mut quiet {
        if closed_by_server(connection) {
            closed_early += 1;
        }
    }
    assert_eq!(closed_early, 0, "closed before the idle timeout");
    std::thread::sleep(Duration::from_secs(3));
    let mut still_open = 0;
    for connection in &mut quiet {
        if !closed_by_server(connection) {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "{:?} after opening", opened.elapsed());
    // What the server did, by its own counters.
    // What the server did, by its own counters.
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    eprintln!(
        "{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("imza_http_connection"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let counter = |event: &str| -> u64 {
        let prefix = format!("imza_http_connection_events_total{{event=\"{event}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {event} counter"))
    };
    assert!(counter("idle_closed") >= 100, "{metrics}");
    assert_eq!(counter("body_timeouts"), ENDLESS_BODIES as u64, "{metrics}");
    assert_eq!(counter("accept_errors"), 0, "{metrics}");
}
