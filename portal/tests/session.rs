//! Browser sessions on the real SQLite store: the cookie and CSRF secrets never stored, the
//! timeouts, a login that leaves a planted cookie worthless, and logout.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use time::{Duration, OffsetDateTime};

use imza_portal::session::{
    check_csrf, clear_cookie, cookie_id, current, log_in, log_out, set_cookie, start,
    SessionPolicy, TOUCH_INTERVAL,
};
use imza_portal::store::{EventKind, LoginMethod, PortalStore, SessionCitizen, SqlitePortalStore};

fn store() -> (tempfile::TempDir, SqlitePortalStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap();
    (dir, store)
}

fn gunay() -> SessionCitizen {
    SessionCitizen {
        personal_code: "PNOAZ-5ZK7T2Q".into(),
        name: "Günay Əliyeva".into(),
        method: LoginMethod::Card,
    }
}

#[test]
fn a_session_is_found_by_its_cookie_and_checks_its_csrf_token() {
    let (_dir, store) = store();
    let policy = SessionPolicy::default();
    let t0 = OffsetDateTime::now_utc();
    let made = start(&store, t0, &policy).unwrap();
    assert_eq!(made.cookie.len(), 43);
    assert!(!format!("{made:?}").contains(&made.cookie));
    assert_ne!(made.session.id_sha256[..], made.cookie.as_bytes()[..32]);
    let found = current(&store, &made.cookie, t0 + Duration::minutes(1), &policy)
        .unwrap()
        .unwrap();
    assert_eq!(found.id_sha256, made.session.id_sha256);
    assert!(check_csrf(&found, &made.csrf_token));
    assert!(!check_csrf(&found, &made.cookie));
    assert!(!check_csrf(&found, ""));
    // Malformed or unknown cookies find nothing.
    for cookie in [
        "",
        "x",
        &"A".repeat(43),
        &format!("{}=", made.cookie),
        "../../etc",
    ] {
        assert!(
            current(&store, cookie, t0, &policy).unwrap().is_none(),
            "{cookie}"
        );
    }
    assert!(cookie_id(&"A".repeat(44)).is_none());
    let header = set_cookie(&made.cookie, &policy);
    assert!(header.starts_with("__Host-imza-session="));
    for attribute in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=28800",
    ] {
        assert!(header.contains(attribute), "{header}");
    }
    assert!(!header.contains("Domain"));
    assert!(clear_cookie().contains("Max-Age=0"));
}

#[test]
fn idle_and_absolute_timeouts_end_the_session() {
    let (_dir, store) = store();
    let policy = SessionPolicy::default();
    let t0 = OffsetDateTime::now_utc();
    let made = start(&store, t0, &policy).unwrap();
    // Requests every 10 minutes keep it alive…
    let mut at = t0;
    for _ in 0..5 {
        at += Duration::minutes(10);
        assert!(current(&store, &made.cookie, at, &policy)
            .unwrap()
            .is_some());
    }
    // A request within TOUCH_INTERVAL of the last written one is not written: the idle
    // timeout runs from the last written time.
    assert!(current(
        &store,
        &made.cookie,
        at + TOUCH_INTERVAL - Duration::seconds(1),
        &policy
    )
    .unwrap()
    .is_some());
    // …15 minutes without one end it, for good.
    at += Duration::minutes(15);
    assert!(current(&store, &made.cookie, at, &policy)
        .unwrap()
        .is_none());
    assert!(store
        .session(&made.session.id_sha256)
        .unwrap()
        .unwrap()
        .ended_at
        .is_some());
    assert!(current(&store, &made.cookie, at, &policy)
        .unwrap()
        .is_none());

    // However active, eight hours after it began it ends.
    let busy = start(&store, t0, &policy).unwrap();
    let mut at = t0;
    while at < t0 + Duration::hours(8) - Duration::minutes(10) {
        at += Duration::minutes(10);
        assert!(current(&store, &busy.cookie, at, &policy)
            .unwrap()
            .is_some());
    }
    assert!(
        current(&store, &busy.cookie, t0 + Duration::hours(8), &policy)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_login_gives_new_secrets_and_a_planted_cookie_is_worth_nothing_after_it() {
    let (_dir, store) = store();
    let policy = SessionPolicy::default();
    let t0 = OffsetDateTime::now_utc();
    // An attacker's session cookie, planted in the victim's browser before the login.
    let planted = start(&store, t0, &policy).unwrap();
    let before = current(&store, &planted.cookie, t0, &policy)
        .unwrap()
        .unwrap();
    let after = log_in(&store, &before, gunay(), t0, &policy).unwrap();
    assert_ne!(after.cookie, planted.cookie);
    assert_ne!(after.csrf_token, planted.csrf_token);
    assert!(current(&store, &planted.cookie, t0, &policy)
        .unwrap()
        .is_none());
    let mine = current(&store, &after.cookie, t0, &policy)
        .unwrap()
        .unwrap();
    assert_eq!(mine.citizen, Some(gunay()));
    assert!(check_csrf(&mine, &after.csrf_token));
    assert!(!check_csrf(&mine, &planted.csrf_token));
    // The planted session cannot be logged in again, nor a logged-in one.
    assert!(log_in(&store, &before, gunay(), t0, &policy).is_err());
    assert!(log_in(&store, &mine, gunay(), t0, &policy).is_err());

    // Logout ends it and goes into the history after the login.
    let later = t0 + Duration::minutes(3);
    log_out(&store, &mine, later).unwrap();
    assert!(current(&store, &after.cookie, later, &policy)
        .unwrap()
        .is_none());
    let history = store.events("PNOAZ-5ZK7T2Q", 10).unwrap();
    let kinds: Vec<EventKind> = history.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Logout, EventKind::Login]);
    assert!(history.iter().all(|e| e.method == Some(LoginMethod::Card)));
    assert!(log_out(&store, &mine, later).is_err(), "ended once");
}
