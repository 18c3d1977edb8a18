//! The card login's routes in process: the login page's card section and its scripts under the
//! CSP, a challenge per session, a token (made as the agent makes it, with a software key)
//! logging in once, and bad requests — no CSRF token, malformed, oversized, not JSON, no
//! challenge — refused without changing anything. The whole chain with a card, the agent and
//! a browser is `cli/tests/card_login.rs`.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use imza_core::clock::SystemClock;
use imza_core::ext;
use imza_core::key::KeyAlgorithm;
use imza_http::HttpClient;
use imza_ocsp::CertStatusInfo;
use imza_portal::card::CardLogin;
use imza_portal::http::{routes, CardLoginConfig, Portal};
use imza_portal::session::csrf_token;
use imza_portal::store::{PortalStore, SqlitePortalStore};
use imza_portal::webeid::{ChallengeNonce, TokenAlgorithm};
use imza_testdata::loopback::{RouterClient, RouterReply};
use imza_testdata::ocsp::OcspResponder;
use imza_validation::{AuthenticationTrust, Certificate};
use serde_json::Value;

const AGENT: &str = "http://127.0.0.1:24843";

struct Site {
    _dir: tempfile::TempDir,
    store: Arc<SqlitePortalStore>,
    client: RouterClient,
    card: Card,
    _ocsp: OcspResponder,
}

/// A portal at [`ORIGIN`] whose card login trusts a test CA (OCSP on loopback, "good" for the
/// citizen's card).
fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap());
    let ca = ca();
    let ocsp = OcspResponder::for_ca(&ca);
    let mut extensions = card_auth();
    extensions.push(ext::authority_info_access(Some(&ocsp.url), None).unwrap());
    let card = card(&ca, KeyAlgorithm::EcP256, extensions);
    let serial = Certificate::from_der(card.certificate.clone())
        .unwrap()
        .serial()
        .to_vec();
    ocsp.statuses.set(&serial, CertStatusInfo::Good);
    let trust = AuthenticationTrust::new(
        vec![Certificate::from_der(ca.der.clone()).unwrap()],
        Box::new(HttpClient {
            timeout: Duration::from_secs(5),
            ..HttpClient::default()
        }),
        Arc::new(SystemClock),
    );
    let login = CardLogin::new(ORIGIN, vec![CARD_AUTH], trust, Arc::new(SystemClock)).unwrap();
    let mut portal = Portal::new(
        Arc::clone(&store) as Arc<dyn PortalStore>,
        Arc::new(SystemClock),
    );
    portal.card = Some(CardLoginConfig::new(login, AGENT).unwrap());
    Site {
        _dir: dir,
        store,
        client: RouterClient::new(routes(Arc::new(portal))),
        card,
        _ocsp: ocsp,
    }
}

/// A visitor on the login page: its cookie header and CSRF token.
fn visit(site: &Site) -> (String, String) {
    let page = site.client.get("/portal", &[]);
    assert_eq!(page.status, 200);
    let cookie = page
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let value = cookie
        .trim_start_matches("__Host-imza-session=")
        .to_string();
    (cookie, csrf_token(&value))
}

fn nonce(site: &Site, cookie: &str, csrf: &str) -> ChallengeNonce {
    let reply = site.client.post(
        "/portal/login/card/nonce",
        &[("cookie", cookie), ("x-csrf-token", csrf)],
        Vec::new(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let json: Value = serde_json::from_slice(&reply.body).unwrap();
    ChallengeNonce::from_stored(
        json["challengeNonce"].as_str().unwrap().to_string(),
        time::OffsetDateTime::now_utc(),
    )
}

fn post_token(site: &Site, cookie: &str, csrf: Option<&str>, body: &[u8]) -> RouterReply {
    let mut headers = vec![("cookie", cookie), ("content-type", "application/json")];
    if let Some(csrf) = csrf {
        headers.push(("x-csrf-token", csrf));
    }
    site.client
        .post("/portal/login/card", &headers, body.to_vec())
}

fn code_of(reply: &RouterReply) -> String {
    let json: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("{e}: {} {}", reply.status, reply.text()));
    json["code"].as_str().unwrap_or_default().to_string()
}

#[test]
fn the_card_section_loads_the_portals_scripts_and_the_csp_allows_only_the_agent() {
    let site = site();
    let page = site.client.get("/portal?lang=eng", &[]);
    let html = page.text();
    assert!(
        html.contains(&format!("data-agent=\"{AGENT}\""))
            && html.contains("<script src=\"/portal/assets/web-eid.js\"></script>")
            && html.contains("<script src=\"/portal/assets/login-card.js\"></script>"),
        "{html}"
    );
    // No inline script: every <script> has a src and no body.
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=").count()
    );
    assert_eq!(
        html.matches("<script src=").count(),
        html.matches("></script>").count()
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains(&format!("connect-src 'self' {AGENT};")),
        "{csp}"
    );
    assert!(
        csp.contains("script-src 'self';") && !csp.contains("unsafe"),
        "{csp}"
    );
    for script in ["web-eid.js", "login-card.js"] {
        let asset = site.client.get(&format!("/portal/assets/{script}"), &[]);
        assert_eq!(asset.status, 200);
        assert_eq!(
            asset.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(asset.header("x-content-type-options"), Some("nosniff"));
        assert!(!asset.text().contains("eval("), "{script}");
    }
}

#[test]
fn a_token_over_the_sessions_nonce_logs_in_once() {
    let site = site();
    let (cookie, csrf) = visit(&site);
    let nonce = nonce(&site, &cookie, &csrf);
    let json = token(
        &site.card,
        TokenAlgorithm::Es256,
        ORIGIN,
        &nonce,
        "web-eid:1.1",
    );
    let done = post_token(&site, &cookie, Some(&csrf), &json);
    assert_eq!(done.status, 200, "{}", done.text());
    let new_cookie = done
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(new_cookie, cookie, "a new session id at login");
    let cabinet = site
        .client
        .get("/portal/cabinet", &[("cookie", &new_cookie)]);
    assert!(
        cabinet.text().contains("Gunay Aliyeva"),
        "{}",
        cabinet.text()
    );
    // The old session is gone: the same token again is refused before anything is checked.
    let again = post_token(&site, &cookie, Some(&csrf), &json);
    assert_eq!(again.status, 403);
    assert_eq!(code_of(&again), "ERR_IMZA_CSRF");
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let site = site();
    let (cookie, csrf) = visit(&site);
    // No challenge without the CSRF token.
    let reply = site.client.post(
        "/portal/login/card/nonce",
        &[("cookie", &cookie)],
        Vec::new(),
    );
    assert_eq!(reply.status, 403);
    let nonce = nonce(&site, &cookie, &csrf);
    let good = token(
        &site.card,
        TokenAlgorithm::Es256,
        ORIGIN,
        &nonce,
        "web-eid:1.1",
    );
    for (csrf, body, status, code) in [
        (None, good.clone(), 403, "ERR_IMZA_CSRF"),
        (Some("forged"), good.clone(), 403, "ERR_IMZA_CSRF"),
        (
            Some(csrf.as_str()),
            b"not json".to_vec(),
            400,
            "ERR_IMZA_MALFORMED_TOKEN",
        ),
        (
            Some(csrf.as_str()),
            br#"{"format":"web-eid:9"}"#.to_vec(),
            400,
            "ERR_IMZA_MALFORMED_TOKEN",
        ),
        (
            Some(csrf.as_str()),
            vec![b' '; 17 * 1024],
            413,
            "ERR_IMZA_MALFORMED_TOKEN",
        ),
    ] {
        let reply = post_token(&site, &cookie, csrf, &body);
        assert_eq!(reply.status, status, "{}", reply.text());
        assert_eq!(code_of(&reply), code);
        // A body refused unread: the client is told not to reuse the connection.
        if status == 413 {
            assert_eq!(reply.header("connection"), Some("close"));
        }
    }
    let form = site.client.post(
        "/portal/login/card",
        &[
            ("cookie", &cookie),
            ("x-csrf-token", &csrf),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        good.clone(),
    );
    assert_eq!(form.status, 415);
    // None of that spent the challenge or logged anybody in.
    let session =
        imza_portal::session::cookie_id(cookie.trim_start_matches("__Host-imza-session=")).unwrap();
    assert!(site
        .store
        .session(&session)
        .unwrap()
        .unwrap()
        .citizen
        .is_none());
    let done = post_token(&site, &cookie, Some(&csrf), &good);
    assert_eq!(done.status, 200, "{}", done.text());

    // A session that never asked for a challenge: nothing to check a token against.
    let (cookie, csrf) = visit(&site);
    let none = post_token(&site, &cookie, Some(&csrf), &good);
    assert_eq!(none.status, 400);
    assert_eq!(code_of(&none), "ERR_IMZA_NO_CHALLENGE");
}
