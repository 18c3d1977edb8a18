//! The contract of [`PortalStore`] as tests every engine runs: what each method stores and
//! answers, and what concurrent callers get (threads racing on two handles of one database,
//! as two processes or nodes would). An engine's test file runs them all with
//! [`portal_store_contract_tests!`](crate::portal_store_contract_tests), given a function that
//! makes a fresh, empty [`Database`] (build with the `contract-tests` feature).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{
    AccessCode, CheckChannel, DocumentCheck, DocumentKind, DocumentRecord, DocumentStatus, Event,
    EventKind, ExpiryNotice, FailedTry, LoginMethod, PendingKind, PendingLogin, PortalStore,
    PurgeCutoffs, Purged, Session, SessionCitizen, StoreError,
};

/// One fresh, empty database of an engine for one contract test.
pub trait Database {
    /// Another handle on this database, as another process (or node) would open it.
    fn open(&self) -> Arc<dyn PortalStore>;
}

/// Defines one `#[test]` per contract test, each on a database from `$fresh()`.
#[macro_export]
macro_rules! portal_store_contract_tests {
    ($fresh:expr) => {
        $crate::portal_store_contract_tests!(@each $fresh;
            a_session_reads_back_and_its_id_is_stored_once,
            a_login_replaces_the_anonymous_session_and_records_the_login,
            a_login_of_a_session_not_live_and_anonymous_changes_nothing,
            a_session_ends_once_and_a_touch_needs_a_live_one,
            a_nonce_is_replaced_and_taken_once,
            the_history_is_the_citizens_own_newest_first,
            concurrent_takers_of_one_nonce_get_it_once,
            concurrent_logins_on_one_session_let_exactly_one_succeed,
            an_access_code_replaces_the_citizens_previous_one,
            wrong_tries_count_down_lock_and_come_back_after_the_lock,
            a_code_is_used_once_and_not_expired_locked_or_replaced,
            concurrent_uses_of_one_code_let_exactly_one_succeed,
            concurrent_wrong_tries_each_count_once,
            a_pending_login_reads_back_is_replaced_and_taken_once,
            a_qr_login_is_found_by_its_token_and_approved_once,
            a_qr_token_belongs_to_one_session,
            a_sessions_login_under_way_ends_with_the_session,
            concurrent_approvals_of_one_qr_login_let_exactly_one_succeed,
            a_purge_removes_what_no_request_can_use_and_keeps_the_rest,
            a_purge_goes_in_bounded_rounds_and_concurrent_purges_delete_each_row_once,
            a_document_registers_once_reads_back_and_lists_newest_first,
            a_document_is_withdrawn_once_and_an_unknown_one_not_at_all,
            concurrent_withdrawals_of_one_document_let_exactly_one_succeed,
            checks_are_recorded_for_registered_documents_only_and_listed_newest_first,
            a_notice_is_claimed_once_and_again_only_after_its_lease_unless_sent,
            concurrent_claims_of_one_notice_let_exactly_one_succeed,
        );
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let database = $fresh();
                $crate::store::contract::$name(&database);
            }
        )*
    };
}

const T0: OffsetDateTime = datetime!(2026-12-07 10:00:00.123 UTC);

fn id(n: u8) -> [u8; 32] {
    [n; 32]
}

fn anonymous(n: u8) -> Session {
    Session {
        id_sha256: id(n),
        csrf_sha256: [n ^ 0xff; 32],
        created_at: T0,
        last_seen_at: T0,
        expires_at: T0 + Duration::hours(8),
        citizen: None,
        ended_at: None,
    }
}

fn citizen(code: &str) -> SessionCitizen {
    SessionCitizen {
        personal_code: code.into(),
        name: "Günay Əliyeva".into(),
        method: LoginMethod::Card,
    }
}

fn logged_in(n: u8, code: &str) -> Session {
    Session {
        citizen: Some(citizen(code)),
        ..anonymous(n)
    }
}

fn login_event(code: &str, at: OffsetDateTime) -> Event {
    Event {
        at,
        personal_code: code.into(),
        kind: EventKind::Login,
        method: Some(LoginMethod::Card),
        detail: String::new(),
    }
}

pub fn a_session_reads_back_and_its_id_is_stored_once(db: &dyn Database) {
    let store = db.open();
    assert_eq!(store.session(&id(1)).unwrap(), None);
    store.create_session(&anonymous(1)).unwrap();
    assert_eq!(store.session(&id(1)).unwrap(), Some(anonymous(1)));
    let mut other = anonymous(1);
    other.csrf_sha256 = [7; 32];
    assert!(matches!(
        store.create_session(&other),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.session(&id(1)).unwrap(), Some(anonymous(1)));
    store
        .create_session(&logged_in(2, "PNOAZ-5ZK7T2Q"))
        .unwrap();
    assert_eq!(
        db.open().session(&id(2)).unwrap(),
        Some(logged_in(2, "PNOAZ-5ZK7T2Q"))
    );
}

pub fn a_login_replaces_the_anonymous_session_and_records_the_login(db: &dyn Database) {
    let store = db.open();
    store.create_session(&anonymous(1)).unwrap();
    store.put_nonce(&id(1), "nonce-1", T0).unwrap();
    let at = T0 + Duration::seconds(30);
    let new = Session {
        created_at: at,
        last_seen_at: at,
        ..logged_in(2, "PNOAZ-5ZK7T2Q")
    };
    store
        .log_in(&id(1), &new, &login_event("PNOAZ-5ZK7T2Q", at))
        .unwrap();
    let old = store.session(&id(1)).unwrap().unwrap();
    assert_eq!(old.ended_at, Some(at));
    assert_eq!(old.citizen, None);
    assert_eq!(store.session(&id(2)).unwrap(), Some(new));
    assert_eq!(
        store.take_nonce(&id(1)).unwrap(),
        None,
        "the old session's nonce went"
    );
    assert_eq!(
        store.events("PNOAZ-5ZK7T2Q", 10).unwrap(),
        [login_event("PNOAZ-5ZK7T2Q", at)]
    );
}

pub fn a_login_of_a_session_not_live_and_anonymous_changes_nothing(db: &dyn Database) {
    let store = db.open();
    store.create_session(&anonymous(1)).unwrap();
    store
        .create_session(&logged_in(2, "PNOAZ-1AB2C3D"))
        .unwrap();
    store.create_session(&anonymous(3)).unwrap();
    store.end_session(&id(3), T0, None).unwrap();
    let event = login_event("PNOAZ-5ZK7T2Q", T0);
    // Missing, already logged in, ended: NotFound.
    for old in [id(9), id(2), id(3)] {
        assert!(
            matches!(
                store.log_in(&old, &logged_in(4, "PNOAZ-5ZK7T2Q"), &event),
                Err(StoreError::NotFound(_))
            ),
            "{old:?}"
        );
    }
    // A new id that is taken: Conflict, and the anonymous session is still live.
    assert!(matches!(
        store.log_in(&id(1), &logged_in(2, "PNOAZ-5ZK7T2Q"), &event),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.session(&id(1)).unwrap(), Some(anonymous(1)));
    assert_eq!(store.session(&id(4)).unwrap(), None);
    assert!(store.events("PNOAZ-5ZK7T2Q", 10).unwrap().is_empty());
}

pub fn a_session_ends_once_and_a_touch_needs_a_live_one(db: &dyn Database) {
    let store = db.open();
    store
        .create_session(&logged_in(1, "PNOAZ-5ZK7T2Q"))
        .unwrap();
    let seen = T0 + Duration::minutes(5);
    store.touch_session(&id(1), seen).unwrap();
    // A touch never moves last_seen_at back.
    store.touch_session(&id(1), T0).unwrap();
    assert_eq!(store.session(&id(1)).unwrap().unwrap().last_seen_at, seen);
    let logout = Event {
        kind: EventKind::Logout,
        ..login_event("PNOAZ-5ZK7T2Q", seen)
    };
    store.end_session(&id(1), seen, Some(&logout)).unwrap();
    assert!(matches!(
        store.end_session(&id(1), seen, Some(&logout)),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.touch_session(&id(1), seen),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.touch_session(&id(9), seen),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.session(&id(1)).unwrap().unwrap().ended_at, Some(seen));
    assert_eq!(store.events("PNOAZ-5ZK7T2Q", 10).unwrap(), [logout]);
}

pub fn a_nonce_is_replaced_and_taken_once(db: &dyn Database) {
    let store = db.open();
    assert_eq!(store.take_nonce(&id(1)).unwrap(), None);
    store.put_nonce(&id(1), "first", T0).unwrap();
    let later = T0 + Duration::seconds(2);
    store.put_nonce(&id(1), "second", later).unwrap();
    store.put_nonce(&id(2), "other", T0).unwrap();
    assert_eq!(
        store.take_nonce(&id(1)).unwrap(),
        Some(("second".to_string(), later))
    );
    assert_eq!(store.take_nonce(&id(1)).unwrap(), None);
    assert_eq!(
        db.open().take_nonce(&id(2)).unwrap(),
        Some(("other".to_string(), T0))
    );
}

pub fn the_history_is_the_citizens_own_newest_first(db: &dyn Database) {
    let store = db.open();
    let mine: Vec<Event> = (0..5)
        .map(|i| Event {
            kind: if i == 2 {
                EventKind::Service
            } else {
                EventKind::Login
            },
            detail: if i == 2 {
                "e-arayış".into()
            } else {
                String::new()
            },
            method: (i != 2).then_some(LoginMethod::Phone),
            ..login_event("PNOAZ-5ZK7T2Q", T0 + Duration::seconds(i))
        })
        .collect();
    for (i, event) in mine.iter().enumerate() {
        store.record_event(event).unwrap();
        store
            .record_event(&login_event(&format!("PNOAZ-OTHER{i:02}"), T0))
            .unwrap();
    }
    let history = store.events("PNOAZ-5ZK7T2Q", 10).unwrap();
    let newest_first: Vec<Event> = mine.iter().rev().cloned().collect();
    assert_eq!(history, newest_first);
    assert_eq!(store.events("PNOAZ-5ZK7T2Q", 2).unwrap(), newest_first[..2]);
    assert!(store.events("PNOAZ-NOBODY", 10).unwrap().is_empty());
}

pub fn concurrent_takers_of_one_nonce_get_it_once(db: &dyn Database) {
    const TAKERS: usize = 8;
    for round in 0..5u8 {
        db.open().put_nonce(&id(round), "the nonce", T0).unwrap();
        let barrier = Arc::new(Barrier::new(TAKERS));
        let handles: Vec<_> = (0..TAKERS)
            .map(|_| {
                let (store, barrier) = (db.open(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    store.take_nonce(&id(round)).unwrap()
                })
            })
            .collect();
        let got: Vec<_> = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(got.len(), 1, "round {round}: {got:?}");
    }
}

pub fn concurrent_logins_on_one_session_let_exactly_one_succeed(db: &dyn Database) {
    const LOGINS: u8 = 6;
    db.open().create_session(&anonymous(1)).unwrap();
    let barrier = Arc::new(Barrier::new(usize::from(LOGINS)));
    let handles: Vec<_> = (0..LOGINS)
        .map(|i| {
            let (store, barrier) = (db.open(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let code = format!("PNOAZ-RACE{i:03}");
                barrier.wait();
                store.log_in(&id(1), &logged_in(10 + i, &code), &login_event(&code, T0))
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| o.is_ok() || matches!(o, Err(StoreError::NotFound(_)))));
    let store = db.open();
    for i in 0..LOGINS {
        let winner = usize::from(i) == won[0];
        assert_eq!(store.session(&id(10 + i)).unwrap().is_some(), winner);
        let history = store.events(&format!("PNOAZ-RACE{i:03}"), 10).unwrap();
        assert_eq!(history.len(), usize::from(winner));
    }
}

fn code(personal_code: &str, id: u8) -> AccessCode {
    AccessCode {
        personal_code: personal_code.into(),
        code_id: [id; 16],
        code_scrypt: vec![id; 32],
        salt: vec![id ^ 0x55; 16],
        issued_at: T0,
        expires_at: T0 + Duration::hours(24),
        tries_left: 5,
        locked_until: None,
    }
}

const LOCK: Duration = Duration::minutes(15);

pub fn an_access_code_replaces_the_citizens_previous_one(db: &dyn Database) {
    let store = db.open();
    assert_eq!(store.access_code("PNOAZ-5ZK7T2Q").unwrap(), None);
    store.put_access_code(&code("PNOAZ-5ZK7T2Q", 1)).unwrap();
    store.put_access_code(&code("PNOAZ-1AB2C3D", 2)).unwrap();
    let mut replaced = code("PNOAZ-5ZK7T2Q", 3);
    replaced.locked_until = Some(T0 + LOCK);
    store.put_access_code(&replaced).unwrap();
    assert_eq!(
        db.open().access_code("PNOAZ-5ZK7T2Q").unwrap(),
        Some(replaced)
    );
    assert_eq!(
        store.access_code("PNOAZ-1AB2C3D").unwrap(),
        Some(code("PNOAZ-1AB2C3D", 2))
    );
}

pub fn wrong_tries_count_down_lock_and_come_back_after_the_lock(db: &dyn Database) {
    let store = db.open();
    store.put_access_code(&code("PNOAZ-5ZK7T2Q", 1)).unwrap();
    for left in (1..5).rev() {
        assert_eq!(
            store
                .record_wrong_try("PNOAZ-5ZK7T2Q", &[1; 16], T0, 5, LOCK)
                .unwrap(),
            FailedTry::TriesLeft(left)
        );
    }
    assert_eq!(
        store
            .record_wrong_try("PNOAZ-5ZK7T2Q", &[1; 16], T0, 5, LOCK)
            .unwrap(),
        FailedTry::Locked(T0 + LOCK)
    );
    let kept = store.access_code("PNOAZ-5ZK7T2Q").unwrap().unwrap();
    assert_eq!((kept.tries_left, kept.locked_until), (5, Some(T0 + LOCK)));
    // While locked no try counts; another code id never does.
    let during = T0 + LOCK - Duration::seconds(1);
    assert!(matches!(
        store.record_wrong_try("PNOAZ-5ZK7T2Q", &[1; 16], during, 5, LOCK),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.record_wrong_try("PNOAZ-5ZK7T2Q", &[9; 16], T0 + LOCK, 5, LOCK),
        Err(StoreError::NotFound(_))
    ));
    // After the lock: the tries are back.
    assert_eq!(
        store
            .record_wrong_try("PNOAZ-5ZK7T2Q", &[1; 16], T0 + LOCK, 5, LOCK)
            .unwrap(),
        FailedTry::TriesLeft(4)
    );
}

pub fn a_code_is_used_once_and_not_expired_locked_or_replaced(db: &dyn Database) {
    let store = db.open();
    store.put_access_code(&code("PNOAZ-5ZK7T2Q", 1)).unwrap();
    assert!(
        !store
            .use_access_code("PNOAZ-5ZK7T2Q", &[2; 16], T0)
            .unwrap(),
        "another code"
    );
    assert!(
        !store
            .use_access_code("PNOAZ-5ZK7T2Q", &[1; 16], T0 + Duration::hours(24))
            .unwrap(),
        "expired"
    );
    let mut locked = code("PNOAZ-5ZK7T2Q", 1);
    locked.locked_until = Some(T0 + LOCK);
    store.put_access_code(&locked).unwrap();
    assert!(
        !store
            .use_access_code("PNOAZ-5ZK7T2Q", &[1; 16], T0)
            .unwrap(),
        "locked"
    );
    let after = T0 + LOCK;
    assert!(store
        .use_access_code("PNOAZ-5ZK7T2Q", &[1; 16], after)
        .unwrap());
    assert!(
        !store
            .use_access_code("PNOAZ-5ZK7T2Q", &[1; 16], after)
            .unwrap(),
        "used"
    );
    assert_eq!(store.access_code("PNOAZ-5ZK7T2Q").unwrap(), None);
}

pub fn concurrent_uses_of_one_code_let_exactly_one_succeed(db: &dyn Database) {
    const USERS: usize = 8;
    db.open()
        .put_access_code(&code("PNOAZ-5ZK7T2Q", 1))
        .unwrap();
    let barrier = Arc::new(Barrier::new(USERS));
    let handles: Vec<_> = (0..USERS)
        .map(|_| {
            let (store, barrier) = (db.open(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .use_access_code("PNOAZ-5ZK7T2Q", &[1; 16], T0)
                    .unwrap()
            })
        })
        .collect();
    let used = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|used| *used)
        .count();
    assert_eq!(used, 1);
}

pub fn concurrent_wrong_tries_each_count_once(db: &dyn Database) {
    const TRIES: u32 = 4;
    db.open()
        .put_access_code(&code("PNOAZ-5ZK7T2Q", 1))
        .unwrap();
    let barrier = Arc::new(Barrier::new(TRIES as usize));
    let handles: Vec<_> = (0..TRIES)
        .map(|_| {
            let (store, barrier) = (db.open(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .record_wrong_try("PNOAZ-5ZK7T2Q", &[1; 16], T0, 5, LOCK)
                    .unwrap()
            })
        })
        .collect();
    let mut left: Vec<FailedTry> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    left.sort_by_key(|f| match f {
        FailedTry::TriesLeft(n) => *n,
        FailedTry::Locked(_) => 0,
    });
    assert_eq!(
        left,
        [4, 3, 2, 1]
            .iter()
            .rev()
            .map(|n| FailedTry::TriesLeft(*n))
            .collect::<Vec<_>>()
    );
    let kept = db.open().access_code("PNOAZ-5ZK7T2Q").unwrap().unwrap();
    assert_eq!(kept.tries_left, 1);
}

fn phone_login(n: u8) -> PendingLogin {
    PendingLogin {
        session_sha256: id(n),
        started_at: T0,
        challenge: [n.wrapping_add(1); 32],
        kind: PendingKind::Phone {
            mss_session_id: format!("mss-session-{n}"),
            national_id: "5ZK7T2Q".into(),
            verification_code: "0421".into(),
        },
    }
}

fn qr_login(n: u8, token: &str) -> PendingLogin {
    PendingLogin {
        session_sha256: id(n),
        started_at: T0,
        challenge: [n.wrapping_add(2); 32],
        kind: PendingKind::Qr {
            token: token.into(),
            secret: [n.wrapping_add(3); 32],
            approved: None,
        },
    }
}

fn qr_citizen() -> SessionCitizen {
    SessionCitizen {
        method: LoginMethod::Qr,
        ..citizen("PNOAZ-5ZK7T2Q")
    }
}

pub fn a_pending_login_reads_back_is_replaced_and_taken_once(db: &dyn Database) {
    let store = db.open();
    assert_eq!(store.pending_login(&id(1)).unwrap(), None);
    store.put_pending_login(&phone_login(1)).unwrap();
    assert_eq!(store.pending_login(&id(1)).unwrap(), Some(phone_login(1)));
    // A new login on the same browser session replaces the one under way.
    let qr = qr_login(1, "token-one");
    store.put_pending_login(&qr).unwrap();
    assert_eq!(store.pending_login(&id(1)).unwrap(), Some(qr.clone()));
    assert_eq!(store.pending_login(&id(2)).unwrap(), None);
    assert_eq!(store.take_pending_login(&id(1)).unwrap(), Some(qr));
    assert_eq!(store.take_pending_login(&id(1)).unwrap(), None);
    assert_eq!(store.pending_login(&id(1)).unwrap(), None);
    assert_eq!(store.qr_login("token-one").unwrap(), None);
}

pub fn a_qr_login_is_found_by_its_token_and_approved_once(db: &dyn Database) {
    let store = db.open();
    store.put_pending_login(&qr_login(1, "token-one")).unwrap();
    store.put_pending_login(&phone_login(2)).unwrap();
    assert_eq!(
        store.qr_login("token-one").unwrap(),
        Some(qr_login(1, "token-one"))
    );
    assert_eq!(store.qr_login("token-two").unwrap(), None);
    let at = T0 + Duration::seconds(3);
    store
        .approve_qr_login("token-one", &qr_citizen(), at)
        .unwrap();
    let Some(PendingLogin {
        kind: PendingKind::Qr { approved, .. },
        ..
    }) = store.pending_login(&id(1)).unwrap()
    else {
        panic!("the QR login is gone");
    };
    assert_eq!(approved, Some((qr_citizen(), at)));
    assert!(matches!(
        store.approve_qr_login("token-one", &qr_citizen(), at),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.approve_qr_login("token-two", &qr_citizen(), at),
        Err(StoreError::NotFound(_))
    ));
    // A phone login has no token to approve.
    assert_eq!(store.pending_login(&id(2)).unwrap(), Some(phone_login(2)));
}

pub fn a_qr_token_belongs_to_one_session(db: &dyn Database) {
    let store = db.open();
    store.put_pending_login(&qr_login(1, "token-one")).unwrap();
    assert!(matches!(
        store.put_pending_login(&qr_login(2, "token-one")),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.pending_login(&id(2)).unwrap(), None);
    assert_eq!(
        store.qr_login("token-one").unwrap(),
        Some(qr_login(1, "token-one"))
    );
}

pub fn concurrent_approvals_of_one_qr_login_let_exactly_one_succeed(db: &dyn Database) {
    const PHONES: usize = 6;
    db.open()
        .put_pending_login(&qr_login(1, "token-one"))
        .unwrap();
    let barrier = Arc::new(Barrier::new(PHONES));
    let handles: Vec<_> = (0..PHONES)
        .map(|_| {
            let (store, barrier) = (db.open(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                store.approve_qr_login("token-one", &qr_citizen(), T0)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let approved = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(approved, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(()) | Err(StoreError::NotFound(_)))));
}

pub fn a_sessions_login_under_way_ends_with_the_session(db: &dyn Database) {
    let store = db.open();
    store.create_session(&anonymous(1)).unwrap();
    store.create_session(&anonymous(2)).unwrap();
    store.put_pending_login(&phone_login(1)).unwrap();
    store.put_pending_login(&qr_login(2, "token-two")).unwrap();
    // Logged in another way: the phone login under way is gone with the anonymous session.
    store
        .log_in(
            &id(1),
            &logged_in(3, "PNOAZ-5ZK7T2Q"),
            &login_event("PNOAZ-5ZK7T2Q", T0),
        )
        .unwrap();
    assert_eq!(store.pending_login(&id(1)).unwrap(), None);
    // Ended (a timeout): so is the QR login, and its token names nothing.
    store.end_session(&id(2), T0, None).unwrap();
    assert_eq!(store.pending_login(&id(2)).unwrap(), None);
    assert_eq!(store.qr_login("token-two").unwrap(), None);
}

/// The cut-offs of a purge at `now` with a 15-minute idle timeout and 5-minute nonces.
fn cutoffs(now: OffsetDateTime) -> PurgeCutoffs {
    PurgeCutoffs {
        now,
        idle_before: now - Duration::minutes(15),
        nonces_before: now - Duration::minutes(5),
    }
}

pub fn a_purge_removes_what_no_request_can_use_and_keeps_the_rest(db: &dyn Database) {
    let store = db.open();
    let now = T0 + Duration::hours(1);
    // 1: live and recently seen, with a fresh nonce; 2: live, seen just now, with an old
    // nonce; 3: ended; 4: past its absolute timeout; 5: idle too long, with a fresh nonce.
    let live = |n: u8, seen: OffsetDateTime| Session {
        last_seen_at: seen,
        ..anonymous(n)
    };
    store
        .create_session(&live(1, now - Duration::minutes(1)))
        .unwrap();
    store.create_session(&live(2, now)).unwrap();
    store.create_session(&live(3, now)).unwrap();
    store
        .end_session(&id(3), now - Duration::minutes(1), None)
        .unwrap();
    store
        .create_session(&Session {
            expires_at: now,
            ..live(4, now)
        })
        .unwrap();
    store
        .create_session(&live(5, now - Duration::minutes(20)))
        .unwrap();
    store
        .put_nonce(&id(1), "fresh", now - Duration::minutes(1))
        .unwrap();
    store
        .put_nonce(&id(2), "old", now - Duration::minutes(6))
        .unwrap();
    store
        .put_nonce(&id(5), "orphaned", now - Duration::minutes(1))
        .unwrap();
    // Access codes: one live, one expired.
    store.put_access_code(&code("PNOAZ-5ZK7T2Q", 1)).unwrap();
    store
        .put_access_code(&AccessCode {
            expires_at: now - Duration::seconds(1),
            ..code("PNOAZ-1AB2C3D", 2)
        })
        .unwrap();
    store
        .record_event(&login_event("PNOAZ-5ZK7T2Q", T0))
        .unwrap();
    // Logins under way: session 1's stays, idle session 5's goes with it.
    store.put_pending_login(&phone_login(1)).unwrap();
    store.put_pending_login(&qr_login(5, "token-five")).unwrap();

    let purged = store.purge(&cutoffs(now), 100, 10).unwrap();
    assert_eq!(
        purged,
        Purged {
            sessions: 3,
            nonces: 2,
            access_codes: 1,
            pending_logins: 1,
        }
    );
    assert_eq!(store.pending_login(&id(1)).unwrap(), Some(phone_login(1)));
    assert_eq!(store.qr_login("token-five").unwrap(), None);
    for gone in [3, 4, 5] {
        assert_eq!(store.session(&id(gone)).unwrap(), None, "session {gone}");
    }
    assert!(store.session(&id(1)).unwrap().is_some());
    assert!(store.session(&id(2)).unwrap().is_some());
    assert_eq!(store.take_nonce(&id(2)).unwrap(), None);
    assert_eq!(
        store.take_nonce(&id(1)).unwrap().map(|(n, _)| n).as_deref(),
        Some("fresh")
    );
    assert!(store.access_code("PNOAZ-5ZK7T2Q").unwrap().is_some());
    assert_eq!(store.access_code("PNOAZ-1AB2C3D").unwrap(), None);
    // The history stays; a second purge finds nothing.
    assert_eq!(store.events("PNOAZ-5ZK7T2Q", 10).unwrap().len(), 1);
    assert_eq!(
        db.open().purge(&cutoffs(now), 100, 10).unwrap(),
        Purged::default()
    );
}

pub fn a_purge_goes_in_bounded_rounds_and_concurrent_purges_delete_each_row_once(
    db: &dyn Database,
) {
    let store = db.open();
    let now = T0 + Duration::hours(9);
    for n in 0..40u8 {
        store.create_session(&anonymous(n)).unwrap();
    }
    // One round of batches of 3: at most 3 of each kind.
    let first = store.purge(&cutoffs(now), 3, 1).unwrap();
    assert_eq!(first.sessions, 3);
    // Two purges at once on two handles: the rest, each row once.
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let store = db.open();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                store.purge(&cutoffs(now), 2, 100).unwrap().sessions
            })
        })
        .collect();
    let deleted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(deleted, 37);
    assert_eq!(
        store.purge(&cutoffs(now), 2, 100).unwrap(),
        Purged::default()
    );
}

fn document(reference: &str, to: &str, minutes: i64) -> DocumentRecord {
    DocumentRecord {
        reference: reference.into(),
        kind: DocumentKind::Residence,
        issued_to: to.into(),
        issued_at: T0 + Duration::minutes(minutes),
        pdf_sha256: [minutes as u8; 32],
        status: DocumentStatus::Valid,
    }
}

pub fn a_document_registers_once_reads_back_and_lists_newest_first(db: &dyn Database) {
    let store = db.open();
    let first = document("AAAABBBBCCCC", "PNOAZ-5ZK7T2Q", 1);
    let second = DocumentRecord {
        kind: DocumentKind::Employment,
        ..document("DDDDEEEEFFFF", "PNOAZ-5ZK7T2Q", 2)
    };
    let others = document("GGGGHHHHJJJJ", "PNOAZ-3HQ8M1X", 3);
    store.register_document(&first, b"%PDF-1.7 first").unwrap();
    store
        .register_document(&second, b"%PDF-1.7 second")
        .unwrap();
    store.register_document(&others, b"%PDF-1.7 other").unwrap();
    assert!(matches!(
        db.open().register_document(&first, b"%PDF-1.7 again"),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.document("AAAABBBBCCCC").unwrap(), Some(first.clone()));
    assert_eq!(
        store.document_pdf("AAAABBBBCCCC").unwrap().as_deref(),
        Some(&b"%PDF-1.7 first"[..])
    );
    assert!(store.document("ZZZZZZZZZZZZ").unwrap().is_none());
    assert!(store.document_pdf("ZZZZZZZZZZZZ").unwrap().is_none());
    assert_eq!(
        store.documents_of("PNOAZ-5ZK7T2Q", 10).unwrap(),
        [second.clone(), first]
    );
    assert_eq!(store.documents_of("PNOAZ-5ZK7T2Q", 1).unwrap(), [second]);
    assert!(store.documents_of("PNOAZ-0000000", 10).unwrap().is_empty());
}

pub fn a_document_is_withdrawn_once_and_an_unknown_one_not_at_all(db: &dyn Database) {
    let store = db.open();
    store
        .register_document(&document("AAAABBBBCCCC", "PNOAZ-5ZK7T2Q", 1), b"%PDF")
        .unwrap();
    let at = T0 + Duration::hours(1);
    let withdrawn = store
        .withdraw_document("AAAABBBBCCCC", at, "issued in error")
        .unwrap();
    let expected = DocumentStatus::Withdrawn {
        at,
        reason: "issued in error".into(),
    };
    assert_eq!(withdrawn.status, expected);
    assert!(matches!(
        store.withdraw_document("AAAABBBBCCCC", at + Duration::hours(1), "again"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.withdraw_document("ZZZZZZZZZZZZ", at, "unknown"),
        Err(StoreError::NotFound(_))
    ));
    let read = store.document("AAAABBBBCCCC").unwrap().unwrap();
    assert_eq!(
        read.status, expected,
        "the second withdrawal changed nothing"
    );
    assert!(store.document("ZZZZZZZZZZZZ").unwrap().is_none());
}

pub fn concurrent_withdrawals_of_one_document_let_exactly_one_succeed(db: &dyn Database) {
    const WITHDRAWERS: usize = 8;
    db.open()
        .register_document(&document("AAAABBBBCCCC", "PNOAZ-5ZK7T2Q", 1), b"%PDF")
        .unwrap();
    let barrier = Arc::new(Barrier::new(WITHDRAWERS));
    let handles: Vec<_> = (0..WITHDRAWERS)
        .map(|n| {
            let (store, barrier) = (db.open(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                store.withdraw_document("AAAABBBBCCCC", T0, &format!("reason {n}"))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))));
}

pub fn checks_are_recorded_for_registered_documents_only_and_listed_newest_first(
    db: &dyn Database,
) {
    let store = db.open();
    store
        .register_document(&document("AAAABBBBCCCC", "PNOAZ-5ZK7T2Q", 1), b"%PDF")
        .unwrap();
    store
        .register_document(&document("GGGGHHHHJJJJ", "PNOAZ-3HQ8M1X", 2), b"%PDF")
        .unwrap();
    let check =
        |reference: &str, minutes: i64, organisation: Option<&str>, channel| DocumentCheck {
            reference: reference.into(),
            checked_at: T0 + Duration::minutes(minutes),
            organisation: organisation.map(str::to_string),
            channel,
        };
    let by_page = check("AAAABBBBCCCC", 10, None, CheckChannel::Page);
    let by_bank = check("AAAABBBBCCCC", 11, Some("Kapital Bank"), CheckChannel::Api);
    let others = check("GGGGHHHHJJJJ", 12, None, CheckChannel::Upload);
    for c in [&by_page, &by_bank, &others] {
        store.record_check(c).unwrap();
    }
    assert!(matches!(
        store.record_check(&check("ZZZZZZZZZZZZ", 13, None, CheckChannel::Page)),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.checks_of("PNOAZ-5ZK7T2Q", 10).unwrap(),
        [by_bank.clone(), by_page]
    );
    assert_eq!(store.checks_of("PNOAZ-5ZK7T2Q", 1).unwrap(), [by_bank]);
    assert_eq!(store.checks_of("PNOAZ-3HQ8M1X", 10).unwrap(), [others]);
}

fn notice(certificate: &str, days: u32, claimed_at: OffsetDateTime) -> ExpiryNotice {
    ExpiryNotice {
        certificate: certificate.into(),
        threshold_days: days,
        personal_code: "PNOAZ-5ZK7T2Q".into(),
        profile: "citizen-sign".into(),
        not_after: T0 + Duration::days(20),
        claimed_at,
        sent_at: None,
        emailed_to: None,
    }
}

pub fn a_notice_is_claimed_once_and_again_only_after_its_lease_unless_sent(db: &dyn Database) {
    let store = db.open();
    let lease = Duration::minutes(10);
    assert!(store
        .claim_notice(&notice("citizens:01", 30, T0), lease)
        .unwrap());
    assert!(!db
        .open()
        .claim_notice(&notice("citizens:01", 30, T0 + Duration::minutes(9)), lease)
        .unwrap());
    // Another threshold and another certificate are notices of their own.
    assert!(store
        .claim_notice(&notice("citizens:01", 7, T0), lease)
        .unwrap());
    assert!(store
        .claim_notice(&notice("citizens:02", 30, T0), lease)
        .unwrap());
    // The first sender died: after the lease another takes the claim over, once.
    let later = T0 + Duration::minutes(11);
    assert!(store
        .claim_notice(&notice("citizens:01", 30, later), lease)
        .unwrap());
    assert!(!store
        .claim_notice(&notice("citizens:01", 30, later), lease)
        .unwrap());
    store
        .mark_notice_sent("citizens:01", 30, later, Some("gunay@mygov.az"))
        .unwrap();
    assert!(matches!(
        store.mark_notice_sent("citizens:01", 30, later, None),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.mark_notice_sent("citizens:09", 30, later, None),
        Err(StoreError::NotFound(_))
    ));
    // Sent: never claimed again, however late.
    assert!(!store
        .claim_notice(&notice("citizens:01", 30, T0 + Duration::days(3)), lease)
        .unwrap());
    store
        .mark_notice_sent("citizens:02", 30, later, None)
        .unwrap();
    let listed = store.notices_of("PNOAZ-5ZK7T2Q", 10).unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(
        (listed[0].certificate.as_str(), listed[0].threshold_days),
        ("citizens:01", 30),
        "the newest claim first"
    );
    assert_eq!(listed[0].sent_at, Some(later));
    assert_eq!(listed[0].emailed_to.as_deref(), Some("gunay@mygov.az"));
    let cabinet_only = listed
        .iter()
        .find(|n| n.certificate == "citizens:02")
        .unwrap();
    assert_eq!(
        (cabinet_only.sent_at, cabinet_only.emailed_to.as_deref()),
        (Some(later), None)
    );
    assert_eq!(store.notices_of("PNOAZ-5ZK7T2Q", 1).unwrap().len(), 1);
    assert!(store.notices_of("PNOAZ-3HQ8M1X", 10).unwrap().is_empty());
}

pub fn concurrent_claims_of_one_notice_let_exactly_one_succeed(db: &dyn Database) {
    const NODES: usize = 8;
    let barrier = Arc::new(Barrier::new(NODES));
    let handles: Vec<_> = (0..NODES)
        .map(|_| {
            let (store, barrier) = (db.open(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .claim_notice(&notice("citizens:01", 30, T0), Duration::minutes(10))
                    .unwrap()
            })
        })
        .collect();
    let claimed = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|claimed| *claimed)
        .count();
    assert_eq!(claimed, 1);
}
