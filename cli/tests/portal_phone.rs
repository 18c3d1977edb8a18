//! The portal's phone and QR logins end to end, with real parts: one `imza serve` (CA, OCSP,
//! the mobile signature service) on plain HTTP loopback — the URLs in the certificates point at
//! it — and one `imza serve --roles portal` over HTTPS with a tls-server certificate from the
//! PKI's own CA; a phone registered with `imza mobile register`, answering as `imza phone run`
//! and `imza phone qr`; and a Rust HTTP client acting as the browser's page (its cookie kept by
//! hand, trusting only the PKI's root). The QR code is read from the portal's PNG by zbarimg.
//! Module `in_a_browser` does the same in headless Chromium, the QR code read from a
//! screenshot's pixels.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, init_citizens_args, init_mobile_args, stderr, Phone, Server, TestPki};
use imza_testdata::tools::decode_qr;
use serde_json::Value;

const PHONE: &str = "+994501234567";
const FIN: &str = "1AB2C3D";
const PIN: &str = "24680";
const RP: &str = "portal";
const PORTAL_NAME: &str = "mygov.az";

/// The PKI, the two servers and the registered phone.
struct Lab {
    pki: TestPki,
    portal_base: String,
    /// The signature service's base URL (plain HTTP on loopback).
    mss_base: String,
    root_pem: PathBuf,
    _mss: Server,
    _portal: Server,
}

impl Lab {
    fn new() -> Lab {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let pki = TestPki::with_root_at(&base);
        pki.ok(&init_citizens_args(&[]));
        pki.ok(&init_mobile_args());
        let rp: Value =
            serde_json::from_str(&pki.ok(&["mobile", "rp", "add", "--name", RP])).unwrap();
        let rp_key = rp["apiKey"].as_str().unwrap().to_string();
        let phone_dir = pki.path("phone");
        let phone = Phone {
            number: PHONE,
            national_id: FIN,
            given_name: "Aysel",
            surname: "Məmmədova",
        };
        pki.register_phone(&phone, &base, &phone_dir, &[("PHONE_PIN", PIN)], &[]);
        let (chain, key) = pki.tls_server_certificate("citizens");
        let mss = Server::start_on(&pki, port, &["--roles", "ca,ocsp,mss,publish"]);

        let config = pki.path("portal.toml");
        std::fs::write(
            &config,
            format!(
                "[portal]\nname = \"{PORTAL_NAME}\"\nmss_url = \"{base}\"\n\
                 mss_relying_party = \"{RP}\"\nmss_api_key_env = \"PORTAL_MSS_KEY\"\n"
            ),
        )
        .unwrap();
        let env = [("PORTAL_MSS_KEY", rp_key.as_str())];
        let config = ["--config", config.to_str().unwrap()];
        let portal = Server::portal(&pki, (&chain, &key), &config, &env);
        Lab {
            root_pem: pki.ca_pem("root"),
            pki,
            portal_base: portal.base.clone(),
            mss_base: base,
            _mss: mss,
            _portal: portal,
        }
    }

    fn browser(&self) -> Browser {
        Browser::new(&self.portal_base, &self.root_pem)
    }

    /// `imza phone run --approve|--refuse --count 1 --json` in the background.
    fn phone_run(&self, decision: &str) -> PhoneRun {
        self.phone_run_of(PHONE, "phone", decision)
    }

    /// [`Lab::phone_run`] for the phone `number` whose wallet is in `dir` (under the lab's
    /// directory).
    fn phone_run_of(&self, number: &str, dir: &str, decision: &str) -> PhoneRun {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imza"))
            .arg("--data-dir")
            .arg(self.pki.data_dir())
            .args(["phone", "run", "--phone", number, "--phone-dir"])
            .arg(self.pki.path(dir))
            .args([decision, "--count", "1", "--pin-env", "PHONE_PIN", "--json"])
            .env("PHONE_PIN", PIN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start imza phone run");
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        PhoneRun { child, events: rx }
    }

    /// `imza phone qr --link LINK --json`: (exit code, stdout, stderr). The phone trusts the
    /// portal's TLS certificate through the PKI's root (OpenSSL's SSL_CERT_FILE).
    fn phone_qr(&self, link: &str) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_imza"))
            .arg("--data-dir")
            .arg(self.pki.data_dir())
            .args([
                "phone",
                "qr",
                "--link",
                link,
                "--phone",
                PHONE,
                "--phone-dir",
            ])
            .arg(self.pki.path("phone"))
            .args(["--pin-env", "PHONE_PIN", "--json"])
            .env("PHONE_PIN", PIN)
            .env("SSL_CERT_FILE", &self.root_pem)
            .output()
            .expect("run imza phone qr");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr(&out),
        )
    }
}

struct PhoneRun {
    child: Child,
    events: std::sync::mpsc::Receiver<Value>,
}

impl PhoneRun {
    /// The next event of `kind` within 30 s.
    fn event(&self, kind: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} event from the phone"));
            if event["event"] == kind {
                return event;
            }
        }
    }
}

impl Drop for PhoneRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the portal answered.
struct Page {
    status: u16,
    location: Option<String>,
    content_type: String,
    bytes: Vec<u8>,
}

impl Page {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The text of the element with `id` (`<p id="ID">TEXT</p>`).
    fn element(&self, id: &str) -> Option<String> {
        let text = self.text();
        let start = text.find(&format!("id=\"{id}\""))?;
        let rest = &text[start..];
        let open = rest.find('>')? + 1;
        let close = rest[open..].find('<')?;
        Some(rest[open..open + close].to_string())
    }

    /// The value of attribute `name` (first occurrence).
    fn attribute(&self, name: &str) -> Option<String> {
        let text = self.text();
        let marker = format!("{name}=\"");
        let start = text.find(&marker)? + marker.len();
        let end = text[start..].find('"')?;
        Some(text[start..start + end].to_string())
    }
}

/// The page's side: a cookie jar of one cookie, requests with the portal's own forms.
struct Browser {
    agent: ureq::Agent,
    base: String,
    cookie: Option<String>,
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| {
            let encode = |s: &str| {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", encode(name), encode(value))
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl Browser {
    fn new(base: &str, root_pem: &std::path::Path) -> Browser {
        let pem = std::fs::read(root_pem).unwrap();
        let roots: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Browser {
            agent,
            base: base.to_string(),
            cookie: None,
        }
    }

    fn request(&mut self, path: &str, body: Option<(&str, Vec<u8>)>) -> Page {
        self.try_request(path, body)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// [`Browser::request`], the exchange's failure returned.
    fn try_request(&mut self, path: &str, body: Option<(&str, Vec<u8>)>) -> Result<Page, String> {
        let url = format!("{}{path}", self.base);
        let cookie = self
            .cookie
            .as_ref()
            .map(|c| format!("__Host-imza-session={c}"));
        let result = match body {
            None => {
                let mut request = self.agent.get(&url);
                if let Some(cookie) = &cookie {
                    request = request.header("Cookie", cookie);
                }
                request.call()
            }
            Some((content_type, bytes)) => {
                let mut request = self.agent.post(&url).header("Content-Type", content_type);
                if let Some(cookie) = &cookie {
                    request = request.header("Cookie", cookie);
                }
                request.send(&bytes[..])
            }
        };
        let mut response = result.map_err(|e| format!("{url}: {e}"))?;
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            if let Some(rest) = value.strip_prefix("__Host-imza-session=") {
                let cookie = rest.split(';').next().unwrap().to_string();
                self.cookie = (!cookie.is_empty()).then_some(cookie);
            }
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (location, content_type) = (header("location"), header("content-type"));
        Ok(Page {
            status: response.status().as_u16(),
            location,
            content_type: content_type.unwrap_or_default(),
            bytes: response
                .body_mut()
                .read_to_vec()
                .map_err(|e| format!("{url}: {e}"))?,
        })
    }

    fn get(&mut self, path: &str) -> Page {
        self.request(path, None)
    }

    fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_encode(fields).into_bytes();
        self.request(path, Some(("application/x-www-form-urlencoded", body)))
    }

    /// The login page's CSRF token (a new anonymous session on the first visit).
    fn login_page(&mut self) -> String {
        let page = self.get("/portal?lang=eng");
        assert_eq!(page.status, 200, "{}", page.text());
        page.attribute("name=\"csrf\" value")
            .or_else(|| {
                let text = page.text();
                text.split("name=\"csrf\" value=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .map(str::to_string)
            })
            .expect("the CSRF token")
    }

    /// Asks `/portal/login/wait` as the waiting page's script does, once a second, until the
    /// login is no longer waiting or `patience` has passed: the last answer.
    fn wait(&mut self, csrf: &str, patience: Duration) -> Value {
        let deadline = Instant::now() + patience;
        loop {
            let page = self.post_form("/portal/login/wait", &[("csrf", csrf)]);
            assert_eq!(page.status, 200, "{}", page.text());
            let answer = page.json();
            if answer["state"] != "waiting" || Instant::now() >= deadline {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Starts a QR login: the waiting page's CSRF token.
    fn start_qr(&mut self) -> String {
        let csrf = self.login_page();
        let page = self.post_form("/portal/login/qr?lang=eng", &[("csrf", &csrf)]);
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(page.text().contains("<img id=\"qr\""), "{}", page.text());
        assert!(page.text().contains("src=\"/portal/assets/wait.js\""));
        page.attribute("data-csrf").expect("data-csrf")
    }

    /// The QR code's link as zbarimg reads it from the portal's PNG.
    fn qr_link(&mut self, dir: &std::path::Path) -> String {
        let image = self.get("/portal/login/qr/image?lang=eng");
        assert_eq!(image.status, 200, "{}", image.text());
        assert_eq!(image.content_type, "image/png");
        let file = dir.join(format!("qr-{}.png", free_port()));
        std::fs::write(&file, &image.bytes).unwrap();
        let mut links = decode_qr(&file);
        assert_eq!(links.len(), 1, "{links:?}");
        links.remove(0)
    }
}

/// The form of the phone login.
fn phone_login(browser: &mut Browser, csrf: &str) -> Page {
    browser.post_form(
        "/portal/login/phone?lang=eng",
        &[("csrf", csrf), ("phone", PHONE), ("national_id", FIN)],
    )
}

#[test]
fn phone_login_shows_the_phones_code_and_the_approval_opens_the_cabinet_refusal_says_so() {
    let lab = Lab::new();
    let mut browser = lab.browser();
    let csrf = browser.login_page();
    let first_cookie = browser.cookie.clone().unwrap();
    let phone = lab.phone_run("--approve");
    let waiting = phone_login(&mut browser, &csrf);
    assert_eq!(waiting.status, 200, "{}", waiting.text());
    let code = waiting.element("verification-code").expect("the code");
    assert_eq!(code.len(), 4, "{code}");
    let request = phone.event("request");
    assert_eq!(request["verificationCode"], code.as_str());
    assert_eq!(request["relyingParty"], RP);
    assert_eq!(request["kind"], "authentication");
    let csrf = waiting.attribute("data-csrf").unwrap();
    let done = browser.wait(&csrf, Duration::from_secs(30));
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["location"], "/portal/cabinet");
    assert_ne!(browser.cookie.as_deref(), Some(first_cookie.as_str()));
    let cabinet = browser.get("/portal/cabinet?lang=eng");
    assert_eq!(cabinet.status, 200, "{}", cabinet.text());
    assert_eq!(cabinet.element("name").as_deref(), Some("Aysel Məmmədova"));
    assert_eq!(
        cabinet.element("personal-code").as_deref(),
        Some("PNOAZ-1AB2C3D")
    );
    assert!(cabinet.text().contains("ASAN signature (phone)"));
    // The cookie of the waiting page is worth nothing now.
    let mut old = lab.browser();
    old.cookie = Some(first_cookie);
    let refused = old.get("/portal/cabinet");
    assert_eq!(refused.status, 303);
    assert_eq!(refused.location.as_deref(), Some("/portal"));
    drop(phone);

    // Refused on the phone: the page says so, and nobody is logged in.
    let mut browser = lab.browser();
    let csrf = browser.login_page();
    let phone = lab.phone_run("--refuse");
    let waiting = phone_login(&mut browser, &csrf);
    assert_eq!(waiting.status, 200, "{}", waiting.text());
    phone.event("answered");
    let csrf = waiting.attribute("data-csrf").unwrap();
    let failed = browser.wait(&csrf, Duration::from_secs(30));
    assert_eq!(failed["state"], "failed", "{failed}");
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("refused"), "{message}");
    assert!(message.contains("USER_REFUSED"), "{message}");
    assert_eq!(browser.get("/portal/cabinet").status, 303);
}

#[test]
fn qr_login_from_the_decoded_image_logs_in_only_the_browser_that_showed_it() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let mut shown = lab.browser();
    let shown_csrf = shown.start_qr();
    let mut other = lab.browser();
    let other_csrf = other.start_qr();

    let link = other.qr_link(dir.path());
    assert!(
        link.starts_with(&format!(
            "{}/qr/v1?deviceLinkType=QR&sessionType=auth&",
            lab.portal_base
        )),
        "{link}"
    );
    let (code, out, said) = lab.phone_qr(&link);
    assert_eq!(code, 0, "{out}{said}");
    let request: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(request["portalName"], PORTAL_NAME);
    assert_eq!(request["origin"], lab.portal_base.as_str());
    assert!(out.contains("\"answered\""), "{out}");
    // The other browser's link logs the other browser in, not this one.
    assert_eq!(
        other.wait(&other_csrf, Duration::from_secs(10))["state"],
        "done"
    );
    assert_eq!(
        shown.wait(&shown_csrf, Duration::from_secs(2))["state"],
        "waiting"
    );
    let cabinet = other.get("/portal/cabinet?lang=eng");
    assert_eq!(cabinet.element("name").as_deref(), Some("Aysel Məmmədova"));
    assert!(cabinet.text().contains("QR code"), "{}", cabinet.text());
    assert_eq!(shown.get("/portal/cabinet").status, 303);
    // The same link again: the login is over.
    let (code, out, said) = lab.phone_qr(&link);
    assert_ne!(code, 0, "{out}{said}");

    // Now this browser's own QR code.
    let link = shown.qr_link(dir.path());
    let (code, out, said) = lab.phone_qr(&link);
    assert_eq!(code, 0, "{out}{said}");
    assert_eq!(
        shown.wait(&shown_csrf, Duration::from_secs(10))["state"],
        "done"
    );
    let cabinet = shown.get("/portal/cabinet");
    assert_eq!(
        cabinet.element("personal-code").as_deref(),
        Some("PNOAZ-1AB2C3D")
    );
}

#[test]
fn a_qr_code_older_than_the_limit_is_refused_and_logs_nobody_in() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let mut browser = lab.browser();
    let csrf = browser.start_qr();
    let link = browser.qr_link(dir.path());
    // A photograph of the screen, used later.
    let limit = u64::try_from(imza_portal::qr::MAX_LINK_AGE_SECONDS).unwrap();
    std::thread::sleep(Duration::from_secs(limit + 2));
    let (code, out, said) = lab.phone_qr(&link);
    assert_eq!(code, 1, "{out}{said}");
    assert!(said.contains("old"), "{said}");
    assert!(!out.contains("\"answered\""), "{out}");
    assert_eq!(
        browser.wait(&csrf, Duration::from_secs(2))["state"],
        "waiting"
    );
    assert_eq!(browser.get("/portal/cabinet").status, 303);
}

/// A body over the limit is refused on its Content-Length, before it is read: 413, or the
/// connection closed while the client is still sending it.
fn refused_as_too_large(answer: Result<Page, String>) {
    match answer {
        Ok(page) => assert_eq!(page.status, 413, "{}", page.text()),
        Err(e) => assert!(e.contains("Broken pipe") || e.contains("reset"), "{e}"),
    }
}

#[test]
fn bad_input_is_refused_with_a_clear_message_and_stores_nothing_and_csrf_is_required() {
    let lab = Lab::new();
    let mut browser = lab.browser();
    let csrf = browser.login_page();
    for (phone, fin, says) in [
        ("12ab", FIN, "phone"),
        ("+99450123456789012345", FIN, "phone"),
        (PHONE, "1ab2c3d", "national_id"),
        (PHONE, "1AB2C3D1AB2C3D1AB2C3D", "national_id"),
        (PHONE, "<script>", "national_id"),
    ] {
        let page = browser.post_form(
            "/portal/login/phone?lang=eng",
            &[("csrf", &csrf), ("phone", phone), ("national_id", fin)],
        );
        assert_eq!(page.status, 400, "{phone} {fin}: {}", page.text());
        let message = page.element("message").unwrap_or_default();
        assert!(message.contains(says), "{phone} {fin}: {message}");
        assert!(!page.text().contains("<script>"), "escaped");
    }
    // Nothing is under way for this session.
    let answer = browser.wait(&csrf, Duration::ZERO);
    assert_eq!(answer["state"], "failed", "{answer}");
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("no phone or QR login is under way"));
    let big = "9".repeat(8 * 1024);
    let form = form_encode(&[("csrf", &csrf), ("phone", &big), ("national_id", FIN)]);
    refused_as_too_large(browser.try_request(
        "/portal/login/phone",
        Some(("application/x-www-form-urlencoded", form.into_bytes())),
    ));
    let cookie = browser.cookie.take();
    let mut browser = lab.browser();
    browser.cookie = cookie;
    // Without the CSRF token (or with another session's): 403, nothing started.
    for path in [
        "/portal/login/phone",
        "/portal/login/qr",
        "/portal/login/wait",
    ] {
        let page = browser.post_form(path, &[("phone", PHONE), ("national_id", FIN)]);
        assert_eq!(page.status, 403, "{path}: {}", page.text());
        let page = browser.post_form(
            path,
            &[("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
        );
        assert_eq!(page.status, 403, "{path}: {}", page.text());
    }
    assert_eq!(browser.get("/portal/login/qr/image").status, 404);

    // The phone's side: malformed and oversized session tokens and links → 400, unknown → 404.
    let portal = lab.browser();
    let post_json = |browser: &mut Browser, path: &str, body: String| {
        browser.request(path, Some(("application/json", body.into_bytes())))
    };
    let mut phone_side = portal;
    let origin = lab.portal_base.clone();
    for (link, status) in [
        (format!("{origin}/qr/v1?deviceLinkType=QR&sessionType=auth&sessionToken=short&elapsedSeconds=1&lang=aze&authCode=x"), 400),
        (format!("{origin}/qr/v1?deviceLinkType=QR&sessionType=auth&sessionToken={}&elapsedSeconds=1&lang=aze&authCode=x", "A".repeat(600)), 400),
        (format!("{origin}/qr/v1?deviceLinkType=QR&sessionType=auth&sessionToken=AAAAAAAAAAAAAAAAAAAAAA&elapsedSeconds=-1&lang=aze&authCode=x"), 400),
        ("https://evil.example/qr/v1?sessionToken=AAAAAAAAAAAAAAAAAAAAAA".to_string(), 400),
        (format!("{origin}/qr/v1?deviceLinkType=QR&sessionType=auth&sessionToken=AAAAAAAAAAAAAAAAAAAAAA&elapsedSeconds=1&lang=aze&authCode=x"), 404),
    ] {
        let body = serde_json::json!({ "link": link }).to_string();
        let page = post_json(&mut phone_side, "/portal/qr/v1/scan", body);
        assert_eq!(page.status, status, "{link}: {}", page.text());
        assert!(page.json()["error"].as_str().is_some(), "{}", page.text());
    }
    let oversized = format!("{{\"link\": \"{}\"}}", "x".repeat(20 * 1024));
    refused_as_too_large(phone_side.try_request(
        "/portal/qr/v1/scan",
        Some(("application/json", oversized.into_bytes())),
    ));
    // A new connection: the refused one is closed by the server.
    let mut phone_side = lab.browser();
    // The phone answers only over HTTPS (or on loopback), and only links it can read.
    for link in [
        "http://portal.gov.az/qr/v1?deviceLinkType=QR&sessionType=auth&sessionToken=AAAAAAAAAAAAAAAAAAAAAA&elapsedSeconds=1&lang=aze&authCode=x",
        "https://portal.gov.az/login",
    ] {
        let (code, out, said) = lab.phone_qr(link);
        assert_eq!(code, 2, "{link}: {out}{said}");
        assert!(said.contains("--link"), "{said}");
    }
    let page = post_json(
        &mut phone_side,
        "/portal/qr/v1/scan",
        "{\"link\": 1}".into(),
    );
    assert_eq!(page.status, 400, "{}", page.text());
    let page = post_json(
        &mut phone_side,
        "/portal/qr/v1/answer",
        "{\"link\": \"x\", \"certificate\": \"\", \"signature\": \"\", \"extra\": 1}".into(),
    );
    assert_eq!(page.status, 400, "{}", page.text());
}

#[test]
fn phone_logins_for_one_person_are_rate_limited() {
    let lab = Lab::new();
    let mut browser = lab.browser();
    let csrf = browser.login_page();
    // A person's burst (10 by default), refused here for a malformed national id before any
    // signature service is asked; then 429 with Retry-After.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let page = browser.post_form(
            "/portal/login/phone",
            &[
                ("csrf", &csrf),
                ("phone", PHONE),
                ("national_id", "9zz9zz9"),
            ],
        );
        statuses.push(page.status);
        if page.status == 429 {
            assert!(page.text().contains("saniyədən sonra"), "{}", page.text());
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| *s == 400),
        "{statuses:?}"
    );
}

/// The phone and QR logins in a real browser (headless Chromium over WebDriver, trusting the
/// PKI's root in its own NSS database): the page's script does the polling; screenshots of
/// the login page, each waiting page and the cabinet are kept under
/// `target/tmp/artefacts/portal-phone-browser/`.
mod in_a_browser {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use imza_testdata::browser::{decode_qr, Browser};

    use super::{Lab, FIN, PHONE};

    /// The binary's one browser, trusting the lab's root; stopped when dropped.
    fn browser(lab: &Lab) -> Option<Browser> {
        if !Browser::is_available() {
            eprintln!("skipped: chromium, chromedriver, certutil or zbarimg is not installed");
            return None;
        }
        let browser = Browser::start(
            &[lab.root_pem.as_path()],
            &Path::new(env!("CARGO_TARGET_TMPDIR")).join("artefacts/portal-phone-browser"),
        );
        browser.fresh(&format!("{}/portal", lab.portal_base));
        Some(browser)
    }

    /// Another relying party (`bank.az`) uses the citizen's phone certificates before the
    /// login: an authentication and a signature, each approved on the phone; and it
    /// authenticates another citizen, whose use the first must never see.
    fn another_relying_party_uses_the_phone(lab: &Lab) {
        let rp: serde_json::Value =
            serde_json::from_str(&lab.pki.ok(&["mobile", "rp", "add", "--name", "bank.az"]))
                .unwrap();
        let key = rp["apiKey"].as_str().unwrap().to_string();
        let env = [("BANK_KEY", key.as_str())];
        let service = [
            "--mss-url",
            lab.mss_base.as_str(),
            "--rp-name",
            "bank.az",
            "--rp-key-env",
            "BANK_KEY",
        ];
        let phone = lab.phone_run("--approve");
        let root = lab.root_pem.to_str().unwrap();
        let auth = [
            &["mobile", "auth", "--phone", PHONE, "--national-id", FIN][..],
            &service,
            &["--display-text", "Log in to bank.az", "--trust", root],
        ]
        .concat();
        lab.pki.ok_env(&auth, &env);
        drop(phone);
        let phone = lab.phone_run("--approve");
        let document = lab.pki.path("loan.txt");
        std::fs::write(&document, "loan agreement 42").unwrap();
        let signed = lab.pki.path("loan.p7s");
        let sign = [
            &["sign", "--mobile", PHONE, "--national-id", FIN][..],
            &service,
            &[
                "--display-text",
                "Sign the loan agreement 42",
                "--in",
                document.to_str().unwrap(),
                "--out",
                signed.to_str().unwrap(),
            ],
        ]
        .concat();
        lab.pki.ok_env(&sign, &env);
        drop(phone);

        let (other_phone, other_fin) = ("+994557654321", "9ZX8Y7W");
        let other = super::Phone {
            number: other_phone,
            national_id: other_fin,
            given_name: "Murad",
            surname: "Quliyev",
        };
        lab.pki.register_phone(
            &other,
            &lab.mss_base,
            &lab.pki.path("other-phone"),
            &[("PHONE_PIN", super::PIN)],
            &[],
        );
        let phone = lab.phone_run_of(other_phone, "other-phone", "--approve");
        let auth = [
            &[
                "mobile",
                "auth",
                "--phone",
                other_phone,
                "--national-id",
                other_fin,
            ][..],
            &service,
            &[
                "--display-text",
                "Murad's own login to bank.az",
                "--trust",
                root,
            ],
        ]
        .concat();
        lab.pki.ok_env(&auth, &env);
        drop(phone);
    }

    /// The phone login in the browser; the cabinet's "who used my certificates" lists another
    /// relying party's authentication and signature with what each asked, and the login.
    /// One lab and one browser for both: the phone login, then the QR login.
    #[test]
    fn phone_and_qr_logins_in_the_browser() {
        let lab = Lab::new();
        let Some(browser) = browser(&lab) else { return };
        phone_login_shows_the_phones_code_and_opens_the_cabinet(&lab, &browser);
        browser.fresh(&format!("{}/portal", lab.portal_base));
        qr_login_with_the_code_read_from_the_screenshot(&lab, &browser);
    }

    fn phone_login_shows_the_phones_code_and_opens_the_cabinet(lab: &Lab, browser: &Browser) {
        another_relying_party_uses_the_phone(lab);
        browser.goto(&format!("{}/portal?lang=eng", lab.portal_base));
        browser.wait_for_text("#phone-login h2", "phone");
        browser.screenshot("login-page");
        browser.fill("#phone-login input[name=phone]", PHONE);
        browser.fill("#phone-login input[name=national_id]", FIN);
        browser.click("#phone-login button[type=submit]");
        let code = browser.text("#verification-code");
        browser.screenshot("phone-waiting");
        // The phone picks the request up now (it is waiting at the service).
        let phone = lab.phone_run("--approve");
        let request = phone.event("request");
        assert_eq!(request["verificationCode"], code.as_str());
        let name = browser.wait_for_text("#name", "Aysel");
        assert_eq!(name, "Aysel Məmmədova");
        assert_eq!(browser.text("#personal-code"), "PNOAZ-1AB2C3D");
        assert!(
            browser.current_url().ends_with("/portal/cabinet?lang=eng"),
            "{}",
            browser.current_url()
        );
        browser.screenshot("phone-cabinet");
        let uses = browser.text("#certificate-uses");
        for shown in ["bank.az", "Log in to bank.az", "Sign the loan agreement 42"] {
            assert!(uses.contains(shown), "{shown} missing from: {uses}");
        }
        assert!(
            !browser.source().contains("Murad"),
            "another citizen's records shown: {uses}"
        );
        // The phone login itself once: the signature service's session, not also the
        // portal's own record of it.
        assert!(!uses.contains("login (phone)"), "{uses}");
        drop(phone);

        // Refused on the phone: the waiting page says so.
        browser.fresh(&format!("{}/portal", lab.portal_base));
        browser.goto(&format!("{}/portal?lang=eng", lab.portal_base));
        browser.fill("#phone-login input[name=phone]", PHONE);
        browser.fill("#phone-login input[name=national_id]", FIN);
        browser.click("#phone-login button[type=submit]");
        browser.text("#verification-code");
        let phone = lab.phone_run("--refuse");
        phone.event("answered");
        browser.wait_for_text("#status", "USER_REFUSED");
        browser.screenshot("phone-refused");
    }

    /// Waits until the page's QR image is loaded (so that the screenshot has it).
    fn qr_shown(browser: &Browser) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while browser.execute(
            "const i = document.getElementById('qr'); return !!(i && i.complete && i.naturalWidth > 0);",
            vec![],
        ) != serde_json::Value::Bool(true)
        {
            assert!(Instant::now() < deadline, "the QR image never loaded");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn qr_login_with_the_code_read_from_the_screenshot(lab: &Lab, browser: &Browser) {
        browser.goto(&format!("{}/portal?lang=eng", lab.portal_base));
        browser.click("#qr-login button[type=submit]");
        qr_shown(browser);

        // A photograph of the screen used later: refused, and the page still waits.
        let shot = browser.screenshot("qr-waiting-photographed");
        let links = decode_qr(&shot);
        assert_eq!(links.len(), 1, "{links:?}");
        let limit = u64::try_from(imza_portal::qr::MAX_LINK_AGE_SECONDS).unwrap();
        std::thread::sleep(Duration::from_secs(limit + 2));
        let (code, out, said) = lab.phone_qr(&links[0]);
        assert_eq!(code, 1, "{out}{said}");
        assert!(browser.has("#qr"), "the page gave up: {}", browser.source());

        // The QR code on the screen now, read from the screenshot's pixels.
        qr_shown(browser);
        let shot = browser.screenshot("qr-waiting");
        let links = decode_qr(&shot);
        assert_eq!(links.len(), 1, "{links:?}");
        assert!(
            links[0].starts_with(&format!("{}/qr/v1?", lab.portal_base)),
            "{}",
            links[0]
        );
        let (code, out, said) = lab.phone_qr(&links[0]);
        assert_eq!(code, 0, "{out}{said}");
        let name = browser.wait_for_text("#name", "Aysel");
        assert_eq!(name, "Aysel Məmmədova");
        assert!(browser.text("#method").contains("QR"));
        browser.screenshot("qr-cabinet");
    }
}
