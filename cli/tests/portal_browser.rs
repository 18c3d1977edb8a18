//! The citizen portal in a real browser: headless Chromium over WebDriver against `imza serve`
//! over HTTPS on loopback, with the certificate `imza demo` issues for localhost and the demo
//! root trusted in the browser's own NSS database (nothing ignored). Screenshots are kept under
//! `target/tmp/artefacts/portal-browser/`.
//!
//! One demo PKI, one server and one browser for the whole binary; each test takes the browser
//! in turn and starts from no cookies.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use common::*;
use imza_testdata::browser::{clean_up_after_this_process, Browser};

/// The demo PKI and `imza serve` (portal role, HTTPS) shared by the tests.
struct Portal {
    data_dir: PathBuf,
    /// `https://localhost:PORT`
    base: String,
    root: PathBuf,
}

fn portal() -> &'static Portal {
    static PORTAL: OnceLock<Portal> = OnceLock::new();
    PORTAL.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("imza-portal-browser-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let data_dir = dir.join("data");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_imza"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("demo")
            .output()
            .expect("imza demo");
        assert!(out.status.success(), "imza demo: {}", stderr(&out));
        let demo = data_dir.join("demo");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_imza"));
        command
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["serve", "--listen", &listen, "--roles", "portal"])
            .arg("--tls-cert")
            .arg(demo.join("certs/portal-tls-chain.pem"))
            .arg("--tls-key")
            .arg(demo.join("keys/portal-tls.key.pem"));
        let server = Server::spawn(command, &listen);
        // Stopped and removed with the test process: a static is never dropped.
        std::mem::forget(server);
        clean_up_after_this_process(None, Some(&data_dir.display().to_string()), &[&dir]);
        Portal {
            data_dir,
            base: format!("https://localhost:{port}"),
            root: demo.join("ca/root.pem"),
        }
    })
}

/// The shared browser, trusting the demo root, from a clean state.
fn browser() -> MutexGuard<'static, Browser> {
    static BROWSER: OnceLock<Mutex<Browser>> = OnceLock::new();
    let portal = portal();
    let browser = BROWSER
        .get_or_init(|| {
            Mutex::new(Browser::start(
                &[portal.root.as_path()],
                &Path::new(env!("CARGO_TARGET_TMPDIR")).join("artefacts/portal-browser"),
            ))
        })
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    browser.fresh(&format!("{}/portal", portal.base));
    browser
}

/// A one-time access code for `national_id`, as a service centre prints it.
fn access_code(national_id: &str) -> String {
    portal_code(&portal().data_dir, national_id)["code"]
        .as_str()
        .expect("code")
        .to_string()
}

/// Fills and posts the access-code form; the page's old message is removed first, so that a
/// wait for one reads the answer's.
fn log_in_with_code(browser: &Browser, national_id: &str, code: &str) {
    browser.execute("document.getElementById('message')?.remove();", vec![]);
    browser.fill("#access-code input[name=national_id]", national_id);
    browser.fill("#access-code input[name=code]", code);
    browser.click("#access-code button[type=submit]");
}

/// `curl` against the portal trusting only the demo root, with `cookie` as the session
/// cookie: the final URL after redirects and the body.
fn curl_with_cookie(path: &str, cookie: &str) -> (String, String) {
    let portal = portal();
    let out = run(
        "curl",
        &[
            "-s",
            "-L",
            "--max-time",
            "10",
            "--cacert",
            portal.root.to_str().unwrap(),
            "-H",
            &format!("Cookie: __Host-imza-session={cookie}"),
            "-w",
            "\n%{url_effective}",
            &format!("{}{path}", portal.base),
        ],
    );
    let text = stdout(&out);
    let (body, url) = text.rsplit_once('\n').expect("URL line");
    (url.to_string(), body.to_string())
}

fn session_cookie(browser: &Browser) -> imza_testdata::browser::Cookie {
    let cookies = browser.cookies();
    cookies
        .iter()
        .find(|c| c.name == "__Host-imza-session")
        .cloned()
        .unwrap_or_else(|| panic!("no session cookie among {cookies:?}"))
}

/// The login page in Azerbaijani and English; an access-code login reaches the cabinet with
/// the citizen's personal code; the session cookie is `__Host-`, Secure, HttpOnly and
/// SameSite; logout ends the session on the server (the old cookie no longer opens the
/// cabinet).
#[test]
fn an_access_code_logs_in_to_the_cabinet_and_logout_ends_the_session() {
    let browser = browser();
    let portal = portal();
    browser.goto(&format!("{}/portal", portal.base));
    browser.wait_for_text("h1", "Vətəndaş portalına giriş");
    browser.screenshot("login-page-aze");
    let before = session_cookie(&browser);
    assert!(before.secure && before.http_only, "{before:?}");
    assert!(
        before.same_site.as_deref().is_some_and(|s| s != "None"),
        "{before:?}"
    );
    browser.goto(&format!("{}/portal?lang=eng", portal.base));
    browser.wait_for_text("h1", "Log in to the citizen portal");
    browser.screenshot("login-page-eng");

    let code = access_code("5ZK7T2Q");
    log_in_with_code(&browser, "5ZK7T2Q", &code);
    browser.wait_for_text("#personal-code", "PNOAZ-5ZK7T2Q");
    assert!(browser.current_url().ends_with("/portal/cabinet"));
    browser.screenshot("cabinet-access-code");
    let logged_in = session_cookie(&browser);
    assert_ne!(logged_in.value, before.value, "a new session id at login");
    let history = browser.text("#history");
    assert!(!history.is_empty(), "the login is in the history");

    browser.click("form[action='/portal/logout'] button");
    browser.wait_for_text("h1", "Vətəndaş portalına giriş");
    let (url, _) = curl_with_cookie("/portal/cabinet", &logged_in.value);
    assert!(
        url.ends_with("/portal"),
        "the logged-out session still opens {url}"
    );
    // The code was used once: it logs nobody in again, said in the page's language.
    log_in_with_code(&browser, "5ZK7T2Q", &code);
    let said = browser.wait_for_text("#message", "Kod yanlışdır və ya artıq etibarlı deyil");
    assert!(!browser.current_url().ends_with("/cabinet"), "{said}");
}

/// Five wrong codes lock the citizen's code for a while: the right one is refused after.
#[test]
fn five_wrong_access_codes_lock_the_code() {
    let browser = browser();
    let portal = portal();
    let code = access_code("3HQ8M1X");
    browser.goto(&format!("{}/portal?lang=eng", portal.base));
    for left in (1..5).rev() {
        log_in_with_code(&browser, "3HQ8M1X", "AAAAA-BBBBB");
        browser.wait_for_text("#message", &format!("({left} tries left)"));
    }
    log_in_with_code(&browser, "3HQ8M1X", "AAAAA-BBBBB");
    browser.wait_for_text("#message", "too many wrong codes");
    log_in_with_code(&browser, "3HQ8M1X", &code);
    let said = browser.wait_for_text("#message", "too many wrong codes");
    browser.screenshot("access-code-locked");
    assert!(!browser.current_url().ends_with("/cabinet"), "{said}");
}

/// A session cookie planted before login (an attacker's session id) is worth nothing after
/// it: the login gives the browser a new id and the planted one opens no cabinet.
#[test]
fn a_session_cookie_planted_before_login_is_not_logged_in() {
    let browser = browser();
    let portal = portal();
    // The attacker's own pre-login session, from the portal itself.
    let attacker = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "--cacert",
            portal.root.to_str().unwrap(),
            &format!("{}/portal", portal.base),
        ],
    );
    let headers = stdout(&attacker);
    let planted = headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: __Host-imza-session="))
        .and_then(|rest| rest.split(';').next())
        .expect("a session cookie")
        .to_string();
    browser.goto(&format!("{}/portal", portal.base));
    browser
        .block_on(browser.client().delete_all_cookies())
        .unwrap();
    // As a script on a sibling page or an injected response would plant it.
    browser.execute(
        "document.cookie = '__Host-imza-session=' + arguments[0] + '; Path=/; Secure';",
        vec![serde_json::Value::String(planted.clone())],
    );
    browser.goto(&format!("{}/portal", portal.base));
    assert_eq!(
        session_cookie(&browser).value,
        planted,
        "the cookie is planted"
    );

    let code = access_code("7PL4N3T");
    log_in_with_code(&browser, "7PL4N3T", &code);
    browser.wait_for_text("#personal-code", "PNOAZ-7PL4N3T");
    assert_ne!(session_cookie(&browser).value, planted);
    let (url, body) = curl_with_cookie("/portal/cabinet", &planted);
    assert!(
        url.ends_with("/portal"),
        "the planted id opens {url}: {body}"
    );
}

/// A login form posted without its CSRF token is refused, and logs nobody in.
#[test]
fn a_login_post_without_the_csrf_token_is_refused() {
    let browser = browser();
    let portal = portal();
    browser.goto(&format!("{}/portal?lang=eng", portal.base));
    let code = access_code("9TR5K2M");
    browser.execute(
        "document.querySelector('#access-code input[name=csrf]').remove();",
        vec![],
    );
    log_in_with_code(&browser, "9TR5K2M", &code);
    browser.wait_for_text("body", "reload the page");
    browser.screenshot("csrf-refused");
    assert!(!browser.current_url().ends_with("/cabinet"));
    // The code was not spent by the refused post.
    browser.goto(&format!("{}/portal?lang=eng", portal.base));
    log_in_with_code(&browser, "9TR5K2M", &code);
    browser.wait_for_text("#personal-code", "PNOAZ-9TR5K2M");
}
