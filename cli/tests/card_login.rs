//! The ID-card login of the citizen portal end to end, every part real but the browser: the
//! project's emulated PIV card (authentication key in slot 9A, signing key in 9C, both enrolled
//! by `imza card enroll` from the PKI's citizens CA) → pcscd → vpcd → OpenSC's PKCS#11 module →
//! `imza agent` (a process, its PIN dialog a script pinentry that answers from a file and keeps
//! what it was shown) → the "page" (a Rust HTTP client sending the browser's `Origin`) →
//! `imza serve` with the portal over HTTPS on loopback (a tls-server certificate from the
//! PKI) → the cabinet. OCSP comes from a second `imza serve` on plain HTTP, the URL the
//! certificates name.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use common::*;
use imza_testdata::card::{CardLab, PivCardState, ReaderLease, VirtualCard};
use serde_json::{json, Value};

const CITIZEN: &str = "CN=Leyla Həsənova,SN=Həsənova,GN=Leyla,SERIALNUMBER=PNOAZ-7QX2M4P,C=AZ";
/// The emulator's factory PIN (PivCardState::new), 3 tries.
const PIN: &str = "123456";
/// A look-alike site the citizen was tricked into allowing too.
const LOOKALIKE: &str = "https://portal-gov-az.example";
const EVIL: &str = "https://evil.example";

/// One test at a time: OpenSC in each agent process connects to every reader holding a card,
/// and a card removed in another test's reader can stall it (see card_piv.rs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start on port {port}");
}

/// How the portal is started (again, by [`Lab::restart_portal`]).
struct PortalArgs {
    data_dir: PathBuf,
    port: u16,
    chain: PathBuf,
    key: PathBuf,
    config: PathBuf,
}

impl PortalArgs {
    fn spawn(&self) -> Process {
        let portal = Command::new(env!("CARGO_BIN_EXE_imza"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["serve", "--roles", "portal", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--tls-cert")
            .arg(&self.chain)
            .arg("--tls-key")
            .arg(&self.key)
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the portal");
        let portal = Process(portal);
        wait_for_port(self.port, "the portal");
        portal
    }
}

/// The PKI, the card, the OCSP server, the portal over HTTPS and the agent.
struct Lab {
    pki: TestPki,
    card: VirtualCard,
    _reader: ReaderLease,
    ocsp: Server,
    portal: Process,
    portal_args: PortalArgs,
    agent: Process,
    portal_origin: String,
    agent_url: String,
    root_pem: Vec<u8>,
    /// What the pinentry answers.
    pin_file: PathBuf,
    /// What the pinentry was shown (one SETDESC per line).
    shown_file: PathBuf,
    agent_log: PathBuf,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Lab {
    fn start() -> Option<Lab> {
        if !CardLab::is_available() {
            eprintln!("note: pcscd, vpcd or OpenSC is not installed; skipping");
            return None;
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let reader = CardLab::shared().lease_reader();
        let card = VirtualCard::insert(&reader, PivCardState::new());
        let ocsp_port = free_port();
        let pki = TestPki::with_root_and_citizens_at(&format!("http://127.0.0.1:{ocsp_port}"));
        let opensc_conf = CardLab::shared().opensc_conf().to_path_buf();
        for (profile, slot) in [("citizen-auth", "9a"), ("citizen-sign", "9c")] {
            let out = pki.path(&format!("{slot}.pem"));
            let said = pki.ok_env(
                &card_enroll_args(
                    &["--reader", reader.name()],
                    profile,
                    CITIZEN,
                    &[
                        "--slot",
                        slot,
                        "--key",
                        "ec-p256",
                        "--out",
                        out.to_str().unwrap(),
                    ],
                ),
                &[
                    ("OPENSC_CONF", opensc_conf.to_str().unwrap()),
                    ("CARD_PIN", PIN),
                ],
            );
            assert!(said.contains("enrolled"), "{said}");
        }
        let ocsp = Server::start_on(&pki, ocsp_port, &[]);

        // The portal over HTTPS with a tls-server certificate from the PKI.
        let portal_port = free_port();
        let (chain, key) = pki.tls_server_certificate("citizens");

        let agent_port = free_port();
        let agent_url = format!("http://127.0.0.1:{agent_port}");
        let config = pki.path("portal.toml");
        std::fs::write(&config, format!("[portal]\nagent = \"{agent_url}\"\n")).unwrap();
        let portal_args = PortalArgs {
            data_dir: pki.data_dir(),
            port: portal_port,
            chain,
            key,
            config,
        };
        let portal = portal_args.spawn();

        // The agent, its PIN dialog a script.
        let (pin_file, shown_file, agent_log) = (
            pki.path("pin"),
            pki.path("pinentry-shown.txt"),
            pki.path("agent.log"),
        );
        std::fs::write(&pin_file, PIN).unwrap();
        let pinentry = pki.path("pinentry");
        std::fs::write(
            &pinentry,
            format!(
                "#!/bin/sh\necho 'OK test pinentry'\n\
                 while IFS= read -r line; do\n  case \"$line\" in\n\
                 \x20   SETDESC\\ *) printf '%s\\n' \"${{line#SETDESC }}\" >> '{shown}'; echo OK ;;\n\
                 \x20   GETPIN) printf 'D %s\\n' \"$(cat '{pin}')\"; echo OK ;;\n\
                 \x20   BYE) echo OK; exit 0 ;;\n\
                 \x20   *) echo OK ;;\n  esac\ndone\n",
                shown = shown_file.display(),
                pin = pin_file.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pinentry, std::fs::Permissions::from_mode(0o755)).unwrap();
        let portal_origin = format!("https://127.0.0.1:{portal_port}");
        let agent = Command::new(env!("CARGO_BIN_EXE_imza"))
            .args(["agent", "--listen"])
            .arg(format!("127.0.0.1:{agent_port}"))
            .args([
                "--allow-origin",
                &portal_origin,
                "--allow-origin",
                LOOKALIKE,
            ])
            .args(["--reader", reader.name()])
            .arg("--pinentry")
            .arg(&pinentry)
            .env("OPENSC_CONF", &opensc_conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&agent_log).unwrap())
            .spawn()
            .expect("start imza agent");
        let agent = Process(agent);
        wait_for_port(agent_port, "imza agent");
        let root_pem = std::fs::read(pki.ca_pem("root")).unwrap();
        Some(Lab {
            pki,
            card,
            _reader: reader,
            ocsp,
            portal,
            portal_args,
            agent,
            portal_origin,
            agent_url,
            root_pem,
            pin_file,
            shown_file,
            agent_log,
            _turn: turn,
        })
    }

    /// A browser on the portal's login page (a new anonymous session).
    fn browser(&self) -> Browser {
        let certificate = ureq::tls::Certificate::from_pem(&self.root_pem).unwrap();
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[certificate]))
            .build();
        let http: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut browser = Browser {
            http,
            portal: self.portal_origin.clone(),
            agent: self.agent_url.clone(),
            cookie: None,
            csrf: String::new(),
        };
        let page = browser.get("/portal");
        assert_eq!(page.status, 200, "{}", page.body);
        browser.csrf = attribute(&page.body, "data-csrf");
        assert_eq!(attribute(&page.body, "data-agent"), self.agent_url);
        browser
    }

    /// Stops the portal and starts it again: a process with no OCSP answers cached yet (a
    /// "good" answer fetched for an earlier login holds until its nextUpdate).
    fn restart_portal(&mut self) {
        let _ = self.portal.0.kill();
        let _ = self.portal.0.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.portal_args.port)).is_ok() {
            assert!(Instant::now() < deadline, "the portal did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.portal = self.portal_args.spawn();
    }

    /// The OCSP server's origin (`http://127.0.0.1:PORT`): another site than the portal.
    fn pki_base(&self) -> String {
        self.ocsp.base.clone()
    }

    fn shown(&self) -> String {
        std::fs::read_to_string(&self.shown_file).unwrap_or_default()
    }

    fn agent_said(&self) -> String {
        std::fs::read_to_string(&self.agent_log).unwrap_or_default()
    }

    fn revoke_authentication_certificate(&self) {
        let pem = std::fs::read(self.pki.path("9a.pem")).unwrap();
        let serial = openssl_show("x509", &self.pki.path("9a.pem"), false, &["-serial"]);
        let serial = serial.trim().trim_start_matches("serial=").to_string();
        assert!(!pem.is_empty());
        self.pki
            .revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    }
}

/// Checks with openssl that `signature` (raw ECDSA `r ‖ s`, base64) is `certificate`'s
/// (base64 DER) over SHA-256 of `document`; leaves the certificate as `sign.der`.
fn verify_with_openssl(pki: &TestPki, document: &[u8], certificate: &str, signature: &str) {
    let raw = Base64::decode_vec(signature).unwrap();
    let der = imza_core::key::ecdsa_raw_to_der(&raw).unwrap();
    std::fs::write(pki.path("doc.txt"), document).unwrap();
    std::fs::write(pki.path("sig.der"), der).unwrap();
    std::fs::write(
        pki.path("sign.der"),
        Base64::decode_vec(certificate).unwrap(),
    )
    .unwrap();
    let public = run(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            pki.path("sign.der").to_str().unwrap(),
            "-pubkey",
            "-noout",
        ],
    );
    std::fs::write(pki.path("sign-pub.pem"), &public.stdout).unwrap();
    let verified = run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            pki.path("sign-pub.pem").to_str().unwrap(),
            "-signature",
            pki.path("sig.der").to_str().unwrap(),
            pki.path("doc.txt").to_str().unwrap(),
        ],
    );
    assert!(
        stdout(&verified).contains("Verified OK"),
        "{} {}",
        stdout(&verified),
        stderr(&verified)
    );
}

fn attribute(page: &str, name: &str) -> String {
    page.split(&format!("{name}=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        .to_string()
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

fn answer_of(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.expect("an answer");
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut body = String::new();
    let _ = response.body_mut().as_reader().read_to_string(&mut body);
    Answer {
        status: response.status().as_u16(),
        headers,
        body,
    }
}

/// What a page of the portal does, with the headers a browser would send: its `Origin`, the
/// session cookie, the CSRF token from the page.
struct Browser {
    http: ureq::Agent,
    portal: String,
    agent: String,
    cookie: Option<String>,
    csrf: String,
}

impl Browser {
    fn keep_cookie(&mut self, answer: &Answer) {
        for (name, value) in &answer.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            if let Some(rest) = value.strip_prefix("__Host-imza-session=") {
                let cookie = rest.split(';').next().unwrap_or("");
                self.cookie = (!cookie.is_empty()).then(|| cookie.to_string());
            }
        }
    }

    fn get(&mut self, path: &str) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.portal));
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", format!("__Host-imza-session={cookie}"));
        }
        let answer = answer_of(request.call());
        self.keep_cookie(&answer);
        answer
    }

    /// A POST of the page to the portal; `csrf` false leaves the token out.
    fn post(&mut self, path: &str, body: Option<&[u8]>, csrf: bool) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.portal))
            .header("Origin", &self.portal);
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", format!("__Host-imza-session={cookie}"));
        }
        if csrf {
            request = request.header("X-CSRF-Token", &self.csrf);
        }
        let answer = match body {
            Some(body) => answer_of(
                request
                    .header("Content-Type", "application/json")
                    .send(body),
            ),
            None => answer_of(request.send_empty()),
        };
        self.keep_cookie(&answer);
        answer
    }

    fn nonce(&mut self) -> String {
        let answer = self.post("/portal/login/card/nonce", None, true);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let nonce = answer.json()["challengeNonce"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(Base64::decode_vec(&nonce).unwrap().len(), 32);
        nonce
    }

    /// What the agent answers a page of `origin` (the browser sets `Origin`, not the page).
    fn agent(&self, origin: &str, path: &str, body: &Value) -> Answer {
        answer_of(
            self.http
                .post(format!("{}{path}", self.agent))
                .header("Origin", origin)
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes()),
        )
    }

    fn token(&self, origin: &str, nonce: &str) -> Answer {
        self.agent(
            origin,
            "/v1/authenticate",
            &json!({ "challengeNonce": nonce }),
        )
    }

    fn log_in(&mut self, token: &str) -> Answer {
        self.post("/portal/login/card", Some(token.as_bytes()), true)
    }
}

#[test]
fn a_card_logs_in_through_the_agent_and_the_cabinet_shows_the_citizen() {
    let Some(lab) = Lab::start() else { return };
    let mut browser = lab.browser();
    let page = browser.get("/portal?lang=eng");
    assert!(page.body.contains("With the ID card"), "{}", page.body);
    let csp = page.header("content-security-policy").unwrap().to_string();
    assert!(
        csp.contains(&format!("connect-src 'self' {}", lab.agent_url))
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    for script in ["web-eid.js", "login-card.js"] {
        let asset = browser.get(&format!("/portal/assets/{script}"));
        assert_eq!(asset.status, 200);
        assert_eq!(
            asset.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert!(asset.body.contains("\"use strict\""), "{script}");
    }

    let nonce = browser.nonce();
    let token = browser.token(&lab.portal_origin, &nonce);
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(
        token.header("access-control-allow-origin"),
        Some(lab.portal_origin.as_str())
    );
    assert_eq!(token.header("vary"), Some("Origin"));
    let json = token.json();
    assert_eq!(json["format"], "web-eid:1.1");
    assert_eq!(json["algorithm"], "ES256");
    assert_eq!(
        Base64::decode_vec(json["signature"].as_str().unwrap())
            .unwrap()
            .len(),
        64,
        "raw r‖s"
    );
    // The PIN dialog named the origin asking.
    let shown = lab.shown();
    assert!(
        shown.contains(&lab.portal_origin) && shown.contains("log in"),
        "{shown}"
    );

    let done = browser.log_in(&token.body);
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["location"], "/portal/cabinet");
    let cabinet = browser.get("/portal/cabinet?lang=eng");
    assert_eq!(cabinet.status, 200);
    assert!(
        cabinet
            .body
            .contains("<span id=\"name\">Leyla Həsənova</span>")
            && cabinet
                .body
                .contains("<span id=\"personal-code\">PNOAZ-7QX2M4P</span>")
            && cabinet.body.contains("ID card"),
        "{}",
        cabinet.body
    );

    // The agent also signs a hash for an allowed origin, with the signing key (slot 9C), and
    // the signature verifies under the card's signing certificate (openssl).
    let certificate = browser.agent(&lab.portal_origin, "/v1/signing-certificate", &json!({}));
    assert_eq!(certificate.status, 200, "{}", certificate.body);
    let certificate = certificate.json()["certificate"]
        .as_str()
        .unwrap()
        .to_string();
    let document = b"Arayis: Leyla Hesenova, Ganja.\n";
    let hash = openssl::sha::sha256(document);
    let signed = browser.agent(
        &lab.portal_origin,
        "/v1/sign",
        &json!({
            "certificate": certificate,
            "hash": Base64::encode_string(&hash),
            "hashFunction": "SHA-256",
        }),
    );
    assert_eq!(signed.status, 200, "{}", signed.body);
    let signed = signed.json();
    assert_eq!(signed["signatureAlgorithm"]["cryptoAlgorithm"], "ECC");
    verify_with_openssl(
        &lab.pki,
        document,
        &certificate,
        signed["signature"].as_str().unwrap(),
    );
    // The signing certificate is the slot 9C one the CA issued, and the dialog said "sign".
    let enrolled = openssl_show("x509", &lab.pki.path("9c.pem"), false, &["-serial"]);
    let served = openssl_show("x509", &lab.pki.path("sign.der"), true, &["-serial"]);
    assert_eq!(enrolled, served);
    assert!(lab.shown().contains("asks you to sign"), "{}", lab.shown());
    // Nothing secret in the agent's log: no PIN, no nonce.
    let said = lab.agent_said();
    assert!(!said.contains(PIN) && !said.contains(&nonce), "{said}");
}

#[test]
fn a_page_of_another_origin_gets_nothing_from_the_agent_and_no_card_access() {
    let Some(lab) = Lab::start() else { return };
    let browser = lab.browser();
    for path in ["/v1/authenticate", "/v1/signing-certificate", "/v1/sign"] {
        for origin in [EVIL, "null", "https://127.0.0.1.evil.example"] {
            let answer = browser.agent(origin, path, &json!({ "challengeNonce": "x".repeat(44) }));
            assert_eq!(answer.status, 403, "{origin} {path}");
            assert!(answer.body.is_empty(), "{origin} {path}: {}", answer.body);
            assert_eq!(answer.header("access-control-allow-origin"), None);
        }
        // Nor is its CORS preflight answered.
        let preflight = answer_of(
            browser
                .http
                .options(format!("{}{path}", lab.agent_url))
                .header("Origin", EVIL)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Private-Network", "true")
                .call(),
        );
        assert_eq!(preflight.status, 403);
        assert_eq!(preflight.header("access-control-allow-origin"), None);
        assert_eq!(
            preflight.header("access-control-allow-private-network"),
            None
        );
    }
    // DNS rebinding: a hostile name resolving to 127.0.0.1 carries its own name in Host.
    let port = lab.agent_url.rsplit(':').next().unwrap();
    let rebound = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            "-H",
            &format!("Host: rebound.evil.example:{port}"),
            "-H",
            &format!("Origin: {}", lab.portal_origin),
            "-H",
            "Content-Type: application/json",
            "--data",
            "{}",
            &format!("{}/v1/signing-certificate", lab.agent_url),
        ],
    );
    assert_eq!(stdout(&rebound), "403 0");
    // Refused and logged (the origin only), and the card never touched: no PIN dialog, the
    // PIN's tries untouched.
    assert_eq!(lab.shown(), "", "the pinentry was run");
    let said = lab.agent_said();
    assert!(
        said.contains("\"https://evil.example\": not on the allow-list")
            && said.contains("rebound.evil.example"),
        "{said}"
    );
    assert_eq!(lab.card.state().pin_tries_left(), 3);

    // The allowed origin's preflight names that one origin, never `*`.
    let preflight = answer_of(
        browser
            .http
            .options(format!("{}/v1/authenticate", lab.agent_url))
            .header("Origin", &lab.portal_origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Private-Network", "true")
            .call(),
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(lab.portal_origin.as_str())
    );
    assert_eq!(
        preflight.header("access-control-allow-private-network"),
        Some("true")
    );
    assert_eq!(preflight.header("vary"), Some("Origin"));
}

#[test]
fn replayed_relayed_cross_session_and_csrf_less_logins_are_refused() {
    let Some(lab) = Lab::start() else { return };
    let count = |table: &str| -> u64 {
        let db = lab.pki.data_dir().join("imza.db");
        let out = run(
            "sqlite3",
            &[
                db.to_str().unwrap(),
                &format!("SELECT count(*) FROM {table}"),
            ],
        );
        stdout(&out).trim().parse().unwrap()
    };

    // A login POST without the CSRF token, or with another session's: 403, nothing stored.
    let mut page = lab.browser();
    let nonce = page.nonce();
    let token = page.token(&lab.portal_origin, &nonce).body;
    let events = count("portal_events");
    let refused = page.post("/portal/login/card", Some(token.as_bytes()), false);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["code"], "ERR_IMZA_CSRF");
    let mut other = lab.browser();
    page.csrf = other.csrf.clone();
    assert_eq!(
        page.post("/portal/login/card", Some(token.as_bytes()), true)
            .status,
        403
    );
    assert_eq!(count("portal_events"), events);
    // Nor may a challenge be asked for without it.
    assert_eq!(
        page.post("/portal/login/card/nonce", None, false).status,
        403
    );
    page.csrf = attribute(&page.get("/portal").body, "data-csrf");

    // Malformed and oversized tokens: 400 / 413, and the challenge is still there to use.
    let bad = page.log_in("{\"format\": \"web-eid:1.1\"}");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.json()["code"], "ERR_IMZA_MALFORMED_TOKEN");
    let huge = format!("{{\"format\": \"{}\"}}", "x".repeat(20_000));
    assert_eq!(page.log_in(&huge).status, 413);
    assert_eq!(count("portal_events"), events);

    // The genuine login works, once.
    let done = page.log_in(&token);
    assert_eq!(done.status, 200, "{}", done.body);
    // Replayed: in a new session with a challenge of its own the signature is over another
    // nonce; the challenge is then spent, so the same again finds none.
    let nonce = other.nonce();
    let replay = other.log_in(&token);
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert_eq!(replay.json()["code"], "ERR_IMZA_TOKEN_SIGNATURE");
    let again = other.log_in(&token);
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(again.json()["code"], "ERR_IMZA_NO_CHALLENGE");
    // The logged-in session cannot log in again with it either.
    assert_eq!(page.log_in(&token).status, 403);
    let _ = nonce;

    // Relayed: a look-alike site (allowed on this agent by mistake) hands the agent the
    // portal's nonce; the agent signs over the look-alike's origin, so the token is useless.
    let mut victim = lab.browser();
    let nonce = victim.nonce();
    let relayed = victim.token(LOOKALIKE, &nonce);
    assert_eq!(relayed.status, 200, "{}", relayed.body);
    assert!(lab.shown().contains(LOOKALIKE), "{}", lab.shown());
    let refused = victim.log_in(&relayed.body);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.json()["code"], "ERR_IMZA_TOKEN_SIGNATURE");

    // Another session's nonce: a token for session A posted in session B.
    let mut a = lab.browser();
    let mut b = lab.browser();
    let nonce_a = a.nonce();
    let _nonce_b = b.nonce();
    let token_a = b.token(&lab.portal_origin, &nonce_a).body;
    let refused = b.log_in(&token_a);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.json()["code"], "ERR_IMZA_TOKEN_SIGNATURE");
    // None of these logged anybody in: one login event, the genuine one.
    assert_eq!(count("portal_events"), events + 1);
    assert_eq!(b.get("/portal/cabinet").status, 303);
}

#[test]
fn a_wrong_pin_says_how_many_tries_are_left_and_a_missing_card_is_told() {
    let Some(mut lab) = Lab::start() else { return };
    let mut page = lab.browser();
    std::fs::write(&lab.pin_file, "111111").unwrap();
    for left in [2, 1] {
        let nonce = page.nonce();
        let refused = page.token(&lab.portal_origin, &nonce);
        assert_eq!(refused.status, 409, "{}", refused.body);
        let json = refused.json();
        assert_eq!(json["code"], "ERR_IMZA_PIN_INCORRECT", "{json}");
        assert_eq!(json["triesLeft"], left, "{json}");
        assert!(!refused.body.contains("111111"));
    }
    // The right PIN still works, and the tries are back.
    std::fs::write(&lab.pin_file, PIN).unwrap();
    let nonce = page.nonce();
    let token = page.token(&lab.portal_origin, &nonce);
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(lab.card.state().pin_tries_left(), 3);

    // No card in the reader: said so, and no PIN asked for.
    let dialogs = lab.shown().lines().count();
    lab.card.remove();
    let nonce = page.nonce();
    let missing = page.token(&lab.portal_origin, &nonce);
    assert_eq!(missing.status, 409, "{}", missing.body);
    assert_eq!(
        missing.json()["code"],
        "ERR_IMZA_NO_CARD",
        "{}",
        missing.body
    );
    assert_eq!(lab.shown().lines().count(), dialogs);
    let _ = &lab.agent;
}

#[test]
fn a_revoked_authentication_certificate_is_refused_with_the_reason() {
    let Some(lab) = Lab::start() else { return };
    lab.revoke_authentication_certificate();
    // The OCSP server sees the revocation within its poll (a second or so).
    std::thread::sleep(Duration::from_secs(2));
    let mut page = lab.browser();
    let nonce = page.nonce();
    let token = page.token(&lab.portal_origin, &nonce);
    assert_eq!(token.status, 200, "{}", token.body);
    let refused = page.log_in(&token.body);
    assert_eq!(refused.status, 401, "{}", refused.body);
    let json = refused.json();
    assert_eq!(json["code"], "ERR_IMZA_CERTIFICATE_REFUSED", "{json}");
    let message = json["message"].as_str().unwrap().to_lowercase();
    assert!(
        message.contains("revoked") && message.contains("keycompromise"),
        "{message}"
    );
    assert_eq!(page.get("/portal/cabinet").status, 303);
}

/// The same login in a real browser (headless Chromium over WebDriver, trusting only the
/// PKI's root): the login page's script asks the portal for a challenge, the agent for the
/// token, posts it, and the cabinet shows the citizen. A wrong PIN, a page of another origin,
/// a revoked certificate and a stopped agent are told on the page. Screenshots under
/// `target/tmp/artefacts/card-browser/`.
#[test]
fn the_card_login_works_in_a_real_browser() {
    use imza_testdata::browser::Browser;
    if !Browser::is_available() {
        eprintln!("note: chromium, chromedriver or certutil is not installed; skipping");
        return;
    }
    let Some(mut lab) = Lab::start() else { return };
    let root = lab.pki.ca_pem("root");
    let browser = Browser::start(
        &[root.as_path()],
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artefacts/card-browser"),
    );
    let login_page = format!("{}/portal", lab.portal_origin);
    browser.fresh(&login_page);

    // Page → agent → card → portal → cabinet.
    browser.goto(&login_page);
    browser.wait_for_text("#card-login h2", "Şəxsiyyət vəsiqəsi ilə");
    browser.screenshot("card-login-page-aze");
    browser.click("#card-login-button");
    browser.wait_for_text("#name", "Leyla Həsənova");
    assert!(browser.current_url().ends_with("/portal/cabinet"));
    assert!(browser.text("#method").contains("şəxsiyyət vəsiqəsi"));
    browser.screenshot("card-cabinet");
    assert!(lab.shown().contains(&lab.portal_origin), "{}", lab.shown());

    // A wrong PIN: the page says how many tries are left.
    browser.fresh(&login_page);
    std::fs::write(&lab.pin_file, "111111").unwrap();
    browser.goto(&format!("{login_page}?lang=eng"));
    browser.click("#card-login-button");
    browser.wait_for_text("#card-message", "The PIN is wrong. 2 tries left.");
    browser.screenshot("card-wrong-pin");
    std::fs::write(&lab.pin_file, PIN).unwrap();
    browser.click("#card-login-button");
    browser.wait_for_text("#name", "Leyla Həsənova");

    // The document-signing half through the portal's library in the page: the signing
    // certificate, then a hash signed by the slot 9C key; openssl verifies the signature.
    browser.fresh(&login_page);
    browser.goto(&login_page);
    browser.wait_for_text("#card-login h2", "Şəxsiyyət vəsiqəsi ilə");
    let document = b"Arayis: imzalanacaq sened.\n";
    let signed = browser.block_on(browser.client().execute_async(
        "const [agent, hash, done] = arguments;\
         webeid.getSigningCertificate({agent})\
           .then(c => webeid.sign(c.certificate, hash, 'SHA-256', {agent})\
             .then(s => done({certificate: c.certificate, signature: s.signature})))\
           .catch(e => done({error: e.code + ' ' + e.message}));",
        vec![
            Value::String(lab.agent_url.clone()),
            Value::String(Base64::encode_string(&openssl::sha::sha256(document))),
        ],
    ));
    let signed = signed.expect("script");
    assert!(signed.get("error").is_none(), "{signed}");
    verify_with_openssl(
        &lab.pki,
        document,
        signed["certificate"].as_str().unwrap(),
        signed["signature"].as_str().unwrap(),
    );

    // A page of another origin (the OCSP server's, a real page) asking the agent gets
    // nothing: the browser's preflight is refused, so the fetch fails without an answer.
    let dialogs = lab.shown().lines().count();
    let other_origin = lab.pki_base();
    browser.goto(&format!("{other_origin}/health"));
    let outcome = browser.block_on(browser.client().execute_async(
        "const done = arguments[arguments.length - 1];\
         fetch(arguments[0] + '/v1/signing-certificate', {method: 'POST', \
           headers: {'Content-Type': 'application/json'}, body: '{}'})\
           .then(r => r.text().then(t => done('answered ' + r.status + ' ' + t)))\
           .catch(e => done('refused: ' + e));",
        vec![serde_json::Value::String(lab.agent_url.clone())],
    ));
    let outcome = outcome.expect("script").to_string();
    assert!(outcome.contains("refused"), "{outcome}");
    assert!(!outcome.contains("certificate\""), "{outcome}");
    assert_eq!(lab.shown().lines().count(), dialogs, "no PIN dialog");
    assert!(
        lab.agent_said()
            .contains(&format!("{other_origin:?}: not on the allow-list")),
        "{}",
        lab.agent_said()
    );

    // A revoked authentication certificate: refused, with the reason (by a portal process
    // that has no "good" answer for it cached from the logins above).
    lab.revoke_authentication_certificate();
    std::thread::sleep(Duration::from_secs(2));
    lab.restart_portal();
    browser.fresh(&login_page);
    browser.goto(&format!("{login_page}?lang=eng"));
    browser.click("#card-login-button");
    let said = browser.wait_for_text("#card-message", "The certificate was refused");
    assert!(said.to_lowercase().contains("revoked"), "{said}");
    browser.screenshot("card-revoked");

    // The agent not running: the page says to start it.
    let _ = lab.agent.0.kill();
    let _ = lab.agent.0.wait();
    browser.click("#card-login-button");
    browser.wait_for_text("#card-message", "The imza agent is not running");
    browser.screenshot("card-agent-not-running");
    // And in Azerbaijani, the page's default.
    browser.goto(&login_page);
    browser.click("#card-login-button");
    browser.wait_for_text("#card-message", "İmza agenti işləmir");
    browser.screenshot("card-agent-not-running-aze");
    // Chromium and chromedriver go with this test process (the harness's watchdog), as for
    // the harness's own tests, whose browser is a static never dropped.
    std::mem::forget(browser);
}

/// The agent refuses to listen beyond loopback, and origins that are not serialized origins
/// (a path, a trailing slash, plain HTTP to a public host, `*`): exit 2, nothing served.
#[test]
fn the_agent_refuses_a_public_address_and_malformed_origins() {
    let agent = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_imza"))
            .arg("agent")
            .args(args)
            .output()
            .expect("run imza agent")
    };
    let port = free_port().to_string();
    let out = agent(&[
        "--listen",
        &format!("0.0.0.0:{port}"),
        "--allow-origin",
        "https://portal.gov.az",
        "--pkcs11-module",
        "/bin/true",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("loopback only"), "{}", stderr(&out));
    for origin in [
        "https://portal.gov.az/",
        "https://portal.gov.az/login",
        "http://portal.gov.az",
        "*",
    ] {
        let out = agent(&[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--allow-origin",
            origin,
            "--pkcs11-module",
            "/bin/true",
        ]);
        assert_eq!(out.status.code(), Some(2), "{origin}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("not a web origin"),
            "{}",
            stderr(&out)
        );
    }
}

/// `imza agent --config FILE`: its origins are allowed (an allowed page reaches the card code
/// and is told there is no card in the reader the file names, its origin echoed), the others
/// refused; an unknown key, no origin at all, or a file that is no PKCS#11 module is refused
/// at start.
#[test]
fn the_agents_config_file_allows_its_origins() {
    if !std::path::Path::new(imza_testdata::card::OPENSC_PKCS11_MODULE).exists() {
        eprintln!("note: OpenSC is not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "allow_origins = [\"https://portal.gov.az\"]\nlisten = \"127.0.0.1:{port}\"\n\
             reader = \"no such reader\"\npkcs11_module = \"{}\"\n\
             pinentry = \"/nonexistent/pinentry\"\n",
            imza_testdata::card::OPENSC_PKCS11_MODULE
        ),
    )
    .unwrap();
    let agent = Process(
        Command::new(env!("CARGO_BIN_EXE_imza"))
            .arg("agent")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start imza agent"),
    );
    wait_for_port(port, "imza agent");
    let call = |origin: &str| {
        let out = run(
            "curl",
            &[
                "-s",
                "-D",
                "-",
                "-H",
                &format!("Origin: {origin}"),
                "-H",
                "Content-Type: application/json",
                "--data",
                "{}",
                &format!("http://127.0.0.1:{port}/v1/signing-certificate"),
            ],
        );
        stdout(&out)
    };
    let allowed = call("https://portal.gov.az");
    assert!(
        allowed
            .to_lowercase()
            .contains("access-control-allow-origin: https://portal.gov.az")
            && allowed.contains("ERR_IMZA_NO_CARD"),
        "{allowed}"
    );
    let refused = call(EVIL);
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(
        !refused.to_lowercase().contains("access-control"),
        "{refused}"
    );
    drop(agent);

    // A config the agent refuses is input (2); a module that cannot be loaded is the
    // installation's (3), as every PKCS#11 module failure is.
    for (text, said, code) in [
        ("allow_origins = []\n", "no origin is allowed", 2),
        (
            "allow_origins = [\"https://a.example\"]\nport = 1\n",
            "unknown field",
            2,
        ),
        (
            "allow_origins = [\"https://a.example\"]\npkcs11_module = \"/bin/true\"\n",
            "cannot load PKCS#11 module /bin/true",
            3,
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_imza"))
            .args(["agent", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(&config)
            .env(
                "IMZA_PKCS11_MODULE",
                imza_testdata::card::OPENSC_PKCS11_MODULE,
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        assert!(stderr(&out).contains(said), "{}", stderr(&out));
    }
}
