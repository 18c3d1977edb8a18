//! The portal's routes, in process (the browser tests come with HTTPS serving): the login page
//! and its headers, the access-code login end to end, the cabinet, logout, and what a forged or
//! stale form, a planted cookie or a bad body gets.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use imza_core::clock::SystemClock;
use imza_portal::access_code::{issue, AccessCodePolicy};
use imza_portal::http::{routes, Portal, CONTENT_SECURITY_POLICY_VALUE};
use imza_portal::session::csrf_token;
use imza_portal::store::{EventKind, LoginMethod, PortalStore, SqlitePortalStore};
use imza_testdata::loopback::{RouterClient, RouterReply};
use time::OffsetDateTime;

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

struct Site {
    _dir: tempfile::TempDir,
    store: Arc<SqlitePortalStore>,
    client: RouterClient,
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap());
    let portal = Portal::new(
        Arc::clone(&store) as Arc<dyn PortalStore>,
        Arc::new(SystemClock),
    );
    Site {
        _dir: dir,
        store,
        client: RouterClient::new(routes(Arc::new(portal))),
    }
}

/// The session cookie a reply sets (its value).
fn set_cookie(reply: &RouterReply) -> String {
    let header = reply.header("set-cookie").expect("a Set-Cookie");
    header
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("__Host-imza-session="))
        .expect("the session cookie")
        .to_string()
}

fn cookie_header(cookie: &str) -> String {
    format!("__Host-imza-session={cookie}")
}

/// A visitor's first look at the login page: the cookie it got.
fn visit(site: &Site) -> String {
    let page = site.client.get("/portal", &[]);
    assert_eq!(page.status, 200);
    set_cookie(&page)
}

fn post_code(site: &Site, cookie: &str, csrf: &str, national_id: &str, code: &str) -> RouterReply {
    let body = format!(
        "csrf={csrf}&national_id={national_id}&code={}",
        code.replace(' ', "+")
    );
    site.client.post(
        "/portal/login/code?lang=eng",
        &[FORM, ("cookie", &cookie_header(cookie))],
        body,
    )
}

#[test]
fn the_login_page_sets_a_host_cookie_and_strict_headers_in_both_languages() {
    let site = site();
    let page = site.client.get("/portal", &[]);
    assert_eq!(page.status, 200);
    let cookie_line = page.header("set-cookie").unwrap();
    for attribute in [
        "__Host-imza-session=",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie_line.contains(attribute), "{cookie_line}");
    }
    assert_eq!(
        page.header("content-security-policy"),
        Some(CONTENT_SECURITY_POLICY_VALUE)
    );
    assert!(!CONTENT_SECURITY_POLICY_VALUE.contains("unsafe"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let html = page.text();
    assert!(
        html.contains("<html lang=\"az\">") && html.contains("Giriş kodu ilə"),
        "{html}"
    );
    assert!(!html.contains("<script") && !html.contains("style="));
    let cookie = set_cookie(&page);
    assert!(html.contains(&format!("value=\"{}\"", csrf_token(&cookie))));
    // The same session comes back with its cookie; no second cookie.
    let again = site
        .client
        .get("/portal?lang=eng", &[("cookie", &cookie_header(&cookie))]);
    assert!(again.header("set-cookie").is_none());
    assert!(again.text().contains("<html lang=\"en\">"));
    assert!(again.text().contains("With an access code"));
}

#[test]
fn an_access_code_logs_in_with_a_new_session_and_the_cabinet_shows_the_history() {
    let site = site();
    let issued = issue(
        site.store.as_ref(),
        "5ZK7T2Q",
        OffsetDateTime::now_utc(),
        &AccessCodePolicy::default(),
    )
    .unwrap();
    let planted = visit(&site);
    let reply = post_code(
        &site,
        &planted,
        &csrf_token(&planted),
        "5ZK7T2Q",
        &issued.code,
    );
    assert_eq!(reply.status, 303, "{}", reply.text());
    assert_eq!(reply.header("location"), Some("/portal/cabinet"));
    let mine = set_cookie(&reply);
    assert_ne!(mine, planted);

    let cabinet = site.client.get(
        "/portal/cabinet?lang=eng",
        &[("cookie", &cookie_header(&mine))],
    );
    assert_eq!(cabinet.status, 200);
    let html = cabinet.text();
    assert!(
        html.contains("<span id=\"personal-code\">PNOAZ-5ZK7T2Q</span>"),
        "{html}"
    );
    assert!(html.contains("Logged in with: access code"), "{html}");
    assert!(
        html.contains("<td>Login</td><td>access code</td>"),
        "{html}"
    );
    // The cookie planted before the login opens nothing now.
    let old = site
        .client
        .get("/portal/cabinet", &[("cookie", &cookie_header(&planted))]);
    assert_eq!(
        (old.status.as_u16(), old.header("location")),
        (303, Some("/portal"))
    );

    // Logout: needs the CSRF token, ends the session, clears the cookie, goes in the history.
    let forged = site.client.post(
        "/portal/logout",
        &[FORM, ("cookie", &cookie_header(&mine))],
        "csrf=not-the-token",
    );
    assert_eq!(forged.status, 403);
    let out = site.client.post(
        "/portal/logout",
        &[FORM, ("cookie", &cookie_header(&mine))],
        format!("csrf={}", csrf_token(&mine)),
    );
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let after = site
        .client
        .get("/portal/cabinet", &[("cookie", &cookie_header(&mine))]);
    assert_eq!(after.status, 303);
    let kinds: Vec<(EventKind, Option<LoginMethod>)> = site
        .store
        .events("PNOAZ-5ZK7T2Q", 10)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.method))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Logout, Some(LoginMethod::AccessCode)),
            (EventKind::Login, Some(LoginMethod::AccessCode))
        ]
    );
}

#[test]
fn forged_stale_wrong_and_malformed_logins_are_refused_and_count_what_they_should() {
    let site = site();
    let policy = AccessCodePolicy::default();
    let issued = issue(
        site.store.as_ref(),
        "5ZK7T2Q",
        OffsetDateTime::now_utc(),
        &policy,
    )
    .unwrap();
    let cookie = visit(&site);
    let tries = || {
        site.store
            .access_code("PNOAZ-5ZK7T2Q")
            .unwrap()
            .unwrap()
            .tries_left
    };

    // No CSRF token, another session's token, no session: 403, no try counted.
    assert_eq!(
        post_code(&site, &cookie, "", "5ZK7T2Q", "00000-00000").status,
        403
    );
    let other = visit(&site);
    assert_eq!(
        post_code(
            &site,
            &cookie,
            &csrf_token(&other),
            "5ZK7T2Q",
            "00000-00000"
        )
        .status,
        403
    );
    let no_session = site.client.post(
        "/portal/login/code",
        &[FORM],
        format!(
            "csrf={}&national_id=5ZK7T2Q&code=00000-00000",
            csrf_token(&cookie)
        ),
    );
    assert_eq!(no_session.status, 403);
    assert_eq!(tries(), 5);

    // A wrong code: 401, the page says how many tries are left.
    let wrong = post_code(
        &site,
        &cookie,
        &csrf_token(&cookie),
        "5ZK7T2Q",
        "00000-00000",
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("4 tries left"), "{}", wrong.text());
    assert_eq!(tries(), 4);
    // Malformed: 400, nothing counted, the value shown back escaped only in the message.
    let bad = post_code(
        &site,
        &cookie,
        &csrf_token(&cookie),
        "<b>x</b>",
        "00000-00000",
    );
    assert_eq!(bad.status, 400);
    assert!(!bad.text().contains("<b>"));
    assert_eq!(tries(), 4);
    // Bodies that are not the portal's forms.
    let big = site.client.post(
        "/portal/login/code",
        &[FORM, ("cookie", &cookie_header(&cookie))],
        vec![b'a'; 5000],
    );
    assert_eq!(big.status, 413);
    let json = site.client.post(
        "/portal/login/code",
        &[
            ("content-type", "application/json"),
            ("cookie", &cookie_header(&cookie)),
        ],
        "{}",
    );
    assert_eq!(json.status, 415);
    let twice = site.client.post(
        "/portal/login/code",
        &[FORM, ("cookie", &cookie_header(&cookie))],
        "csrf=a&csrf=b",
    );
    assert_eq!(twice.status, 400);
    assert_eq!(tries(), 4);
    // The right code still works from the same page.
    let right = post_code(
        &site,
        &cookie,
        &csrf_token(&cookie),
        "5ZK7T2Q",
        &issued.code,
    );
    assert_eq!(right.status, 303);
}

#[test]
fn login_attempts_for_one_citizen_are_limited_with_429_and_retry_after() {
    let site = site();
    let cookie = visit(&site);
    let csrf = csrf_token(&cookie);
    // The default budget: 10 attempts at once per citizen (wrong codes, a locked code, all
    // count), then one every 30 s.
    for attempt in 0..10 {
        let reply = post_code(&site, &cookie, &csrf, "5ZK7T2Q", "00000-00000");
        assert_ne!(reply.status, 429, "attempt {attempt}");
    }
    let limited = post_code(&site, &cookie, &csrf, "5zk7t2q", "00000-00000");
    assert_eq!(limited.status, 429);
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(
        limited
            .text()
            .contains("too many login attempts for this person"),
        "{}",
        limited.text()
    );
    // Another citizen is not held up by it.
    let other = post_code(&site, &cookie, &csrf, "1AB2C3D", "00000-00000");
    assert_ne!(other.status, 429);
}

/// Over a real socket (imza-http's server, the peer address in each request): one client
/// address trying many citizens is limited by its own budget, and an `X-Forwarded-For` it
/// writes itself buys nothing while no proxy is trusted.
#[test]
fn one_address_trying_many_citizens_is_limited_whatever_it_says_it_forwards() {
    use imza_portal::login_limits::{Budget, LoginLimitPolicy, LoginLimits};
    use imza_testdata::loopback::LoopbackServer;

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap());
    let mut portal = Portal::new(store as Arc<dyn PortalStore>, Arc::new(SystemClock));
    portal.login_limits = LoginLimits::new(LoginLimitPolicy {
        address: Budget {
            burst: 3,
            interval: std::time::Duration::from_secs(60),
        },
        ..LoginLimitPolicy::default()
    });
    let server = LoopbackServer::launch(routes(Arc::new(portal)), 2);
    let post = |national_id: &str, forwarded_for: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(["-H", &format!("X-Forwarded-For: {forwarded_for}")])
            .args([
                "--data",
                &format!("csrf=x&national_id={national_id}&code=00000-00000"),
            ])
            .arg(server.url("/portal/login/code"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // No session: 403 each time, but each attempt counts against the address.
    for (i, id) in ["1AAAAAA", "2BBBBBB", "3CCCCCC"].iter().enumerate() {
        assert_eq!(post(id, &format!("203.0.113.{i}")), "403", "attempt {i}");
    }
    assert_eq!(post("4DDDDDD", "198.51.100.7"), "429");
    assert_eq!(post("5EEEEEE", "192.0.2.99"), "429");
}
