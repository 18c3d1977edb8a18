//! The contract of [`MobileStore`] as tests that any engine runs: what each method stores and
//! answers, and what concurrent callers get (threads racing on two handles of one database,
//! as two processes or nodes would).
//!
//! An engine's test file runs them all, one `#[test]` each, with
//! [`mobile_store_contract_tests!`](crate::mobile_store_contract_tests), given a function
//! that makes a fresh, empty [`Database`] (build with the `contract-tests` feature):
//!
//! ```ignore
//! imza_mobile_sign::mobile_store_contract_tests!(fresh_postgres_database);
//! ```

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};

use imza_core::alg::DigestAlgorithm;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::sessions::{pending_sessions, SessionCompletion, SessionRecord, Stored};
use super::{random_id, Device, MobileStore, RegisteredCertificate, StoreError};
use crate::protocol::{Language, SessionKind, SessionResult};

/// One fresh, empty database of an engine for one contract test.
pub trait Database {
    /// Another handle on this database, as another process (or node) would open it.
    fn open(&self) -> Arc<dyn MobileStore>;
}

/// Defines one `#[test]` per contract test, each on a database from `$fresh()` (a function or
/// closure giving a fresh, empty [`Database`]).
#[macro_export]
macro_rules! mobile_store_contract_tests {
    ($fresh:expr) => {
        $crate::mobile_store_contract_tests!(@each $fresh;
            a_relying_party_name_is_stored_once,
            authentication_reads_a_known_and_an_unknown_name_alike,
            a_registration_replaces_the_active_device_of_its_number,
            a_device_id_is_stored_once,
            deactivation_ends_the_running_sessions_of_the_device,
            deactivating_a_device_that_is_not_active_is_not_found,
            a_session_id_is_stored_once,
            a_session_completes_once_and_not_after_its_expiry,
            expiry_is_settled_once_and_stored,
            running_sessions_come_oldest_first_then_in_the_order_stored,
            delivery_is_marked_once,
            pending_sessions_take_turns_and_are_marked_delivered,
            the_running_cap_counts_per_relying_party_and_device,
            purging_works_in_bounded_batches,
            sessions_refused_at_creation_go_once_expired_not_a_day_later,
            concurrent_relying_parties_of_one_name_store_exactly_one,
            concurrent_registrations_of_one_number_leave_exactly_one_active_device,
            concurrent_deactivations_of_one_device_let_exactly_one_succeed,
            concurrent_completions_of_one_session_let_exactly_one_win,
            a_completion_racing_the_expiry_is_stored_alone_and_seen_by_every_reader,
            concurrent_session_creations_do_not_pass_the_running_cap,
            concurrent_clean_ups_delete_each_session_once,
            a_citizens_sessions_are_those_of_all_their_devices_newest_first,
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

const NOW: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);

/// The relying party every test starts with.
const RP: &str = "gov.az";

/// How many threads race in the concurrency tests.
const RACERS: usize = 8;

/// A handle on `db` with relying party [`RP`].
fn store(db: &dyn Database) -> Arc<dyn MobileStore> {
    let store = db.open();
    add_party(store.as_ref(), RP);
    store
}

/// The stand-in for an API key's hash: the name's.
fn key_hash(name: &str) -> [u8; 32] {
    openssl::sha::sha256(name.as_bytes())
}

fn add_party(store: &dyn MobileStore, name: &str) {
    store
        .insert_relying_party(name, &key_hash(name), NOW)
        .expect("store a relying party");
}

/// A device of `phone` with a fresh id. The store keeps certificates as given: these are not
/// parsed (the checks are above the trait).
fn device(phone: &str) -> Device {
    let cert = |ca: &str, byte: u8| RegisteredCertificate {
        ca: ca.into(),
        der: vec![0x30, 0x03, 0x02, 0x01, byte],
    };
    Device {
        device_id: random_id().expect("an id"),
        phone_number: phone.into(),
        national_id: "1AB2C3D".into(),
        auth: cert("mobile", 1),
        sign: cert("mobile-sign", 2),
        registered_at: NOW,
    }
}

/// The stand-in for a device secret's hash: the device id's.
fn secret_hash(device: &Device) -> [u8; 32] {
    openssl::sha::sha256(device.device_id.as_bytes())
}

/// Stores a device of `phone`.
fn register(store: &dyn MobileStore, phone: &str) -> Device {
    let device = device(phone);
    store
        .insert_device(&device, &secret_hash(&device))
        .expect("store a device");
    device
}

/// A RUNNING signature session of [`RP`], created at [`NOW`].
fn session(id: &str, device_id: Option<&str>, expires_at: OffsetDateTime) -> SessionRecord {
    SessionRecord {
        session_id: id.into(),
        relying_party: RP.into(),
        device_id: device_id.map(str::to_string),
        kind: SessionKind::Signature,
        hash: vec![7; 32],
        hash_type: DigestAlgorithm::Sha256,
        display_text: Some("ünicode text".into()),
        language: Language::Aze,
        created_at: NOW,
        expires_at,
        delivered_at: None,
        completion: None,
    }
}

/// A session complete from the start with NOT_MOBILE_CLIENT, no device (refused at creation).
fn refused(id: &str, expires_at: OffsetDateTime) -> SessionRecord {
    SessionRecord {
        completion: Some(SessionCompletion::without_signature(
            SessionResult::NotMobileClient,
            NOW,
        )),
        ..session(id, None, expires_at)
    }
}

fn result_of(store: &dyn MobileStore, id: &str, now: OffsetDateTime) -> Option<SessionResult> {
    store
        .session_at(id, now)
        .expect("read a session")
        .and_then(|s| s.completion)
        .map(|c| c.result)
}

/// Runs `work(i, store)` for `i` in `0..threads` on as many threads, released together, the
/// threads taking turns between two handles on `db`; the results in the order of `i`.
fn race<T: Send>(
    db: &dyn Database,
    threads: usize,
    work: impl Fn(usize, &dyn MobileStore) -> T + Sync,
) -> Vec<T> {
    let handles = [db.open(), db.open()];
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let running: Vec<_> = (0..threads)
            .map(|i| {
                let (store, start, work) = (handles[i % 2].as_ref(), &start, &work);
                scope.spawn(move || {
                    start.wait();
                    work(i, store)
                })
            })
            .collect();
        running
            .into_iter()
            .map(|thread| thread.join().expect("a racing thread panicked"))
            .collect()
    })
}

pub fn a_relying_party_name_is_stored_once(db: &dyn Database) {
    let store = store(db);
    add_party(store.as_ref(), "bank.az");
    let again = store.insert_relying_party(RP, &[1; 32], NOW + Duration::days(1));
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let names: Vec<_> = store
        .relying_parties()
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.created_at))
        .collect();
    assert_eq!(
        names,
        [("bank.az".to_string(), NOW), (RP.to_string(), NOW)],
        "ordered by name, the first registration kept"
    );
}

pub fn authentication_reads_a_known_and_an_unknown_name_alike(db: &dyn Database) {
    let store = store(db);
    let decoy = [0xd5; 32];
    assert_eq!(
        store.relying_party_key_hash_or(RP, &decoy).unwrap(),
        (key_hash(RP), true)
    );
    assert_eq!(
        store
            .relying_party_key_hash_or("nobody.az", &decoy)
            .unwrap(),
        (decoy, false)
    );
    let device = register(store.as_ref(), "+994501234567");
    assert_eq!(
        store
            .active_device_secret_hash_or(&device.device_id, &decoy)
            .unwrap(),
        (secret_hash(&device), true)
    );
    assert_eq!(
        store
            .active_device_secret_hash_or("0123456789abcdef0123456789abcdef", &decoy)
            .unwrap(),
        (decoy, false)
    );
    // A deactivated device authenticates no more.
    store.deactivate_device(&device.device_id, NOW).unwrap();
    assert_eq!(
        store
            .active_device_secret_hash_or(&device.device_id, &decoy)
            .unwrap(),
        (decoy, false)
    );
}

pub fn a_registration_replaces_the_active_device_of_its_number(db: &dyn Database) {
    let store = store(db);
    let phone = "+994501234567";
    let old = register(store.as_ref(), phone);
    assert_eq!(store.device_for_phone(phone).unwrap(), Some(old.clone()));
    let expires = NOW + Duration::minutes(5);
    store
        .insert_session(&session("running", Some(old.device_id.as_str()), expires))
        .unwrap();
    let later = NOW + Duration::minutes(1);
    let new = Device {
        registered_at: later,
        ..device(phone)
    };
    let replaced = store.insert_device(&new, &secret_hash(&new)).unwrap();
    assert_eq!(replaced, Some(old.clone()));
    assert_eq!(store.device_for_phone(phone).unwrap(), Some(new.clone()));
    assert_eq!(store.active_device(&new.device_id).unwrap(), Some(new));
    // The old device keeps its row (old sessions name it) but is no longer active, and its
    // running session ended with it.
    assert_eq!(store.device(&old.device_id).unwrap(), Some(old.clone()));
    assert_eq!(store.active_device(&old.device_id).unwrap(), None);
    let ended = store.session_at("running", later).unwrap().unwrap();
    let completion = ended.completion.unwrap();
    assert_eq!(completion.result, SessionResult::NotMobileClient);
    assert_eq!(completion.completed_at, later);
    // Another number is not touched.
    let other = register(store.as_ref(), "+994557654321");
    assert_eq!(store.active_device(&other.device_id).unwrap(), Some(other));
}

pub fn a_device_id_is_stored_once(db: &dyn Database) {
    let store = store(db);
    let first = register(store.as_ref(), "+994501234567");
    let same_id = Device {
        device_id: first.device_id.clone(),
        ..device("+994557654321")
    };
    let again = store.insert_device(&same_id, &secret_hash(&same_id));
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    // Nothing was written: the first device is active, the other number has none.
    assert_eq!(store.active_device(&first.device_id).unwrap(), Some(first));
    assert_eq!(store.device_for_phone("+994557654321").unwrap(), None);
}

pub fn deactivation_ends_the_running_sessions_of_the_device(db: &dyn Database) {
    let store = store(db);
    let device = register(store.as_ref(), "+994501234567");
    let other = register(store.as_ref(), "+994557654321");
    let expires = NOW + Duration::minutes(5);
    for (id, of) in [("a", &device), ("b", &device), ("c", &other)] {
        store
            .insert_session(&session(id, Some(of.device_id.as_str()), expires))
            .unwrap();
    }
    let refusal = SessionCompletion::without_signature(SessionResult::UserRefused, NOW);
    assert!(store.complete_session("b", &refusal).unwrap());
    let at = NOW + Duration::seconds(30);
    store.deactivate_device(&device.device_id, at).unwrap();
    assert_eq!(store.active_device(&device.device_id).unwrap(), None);
    assert_eq!(store.device_for_phone("+994501234567").unwrap(), None);
    let a = store
        .session_at("a", at)
        .unwrap()
        .unwrap()
        .completion
        .unwrap();
    assert_eq!(
        (a.result, a.completed_at),
        (SessionResult::NotMobileClient, at)
    );
    // A complete session keeps its result; another device's session runs on.
    assert_eq!(
        result_of(store.as_ref(), "b", at),
        Some(SessionResult::UserRefused)
    );
    assert_eq!(result_of(store.as_ref(), "c", at), None);
}

pub fn deactivating_a_device_that_is_not_active_is_not_found(db: &dyn Database) {
    let store = store(db);
    assert!(matches!(
        store.deactivate_device("0123456789abcdef0123456789abcdef", NOW),
        Err(StoreError::NotFound(_))
    ));
    let device = register(store.as_ref(), "+994501234567");
    store.deactivate_device(&device.device_id, NOW).unwrap();
    assert!(matches!(
        store.deactivate_device(&device.device_id, NOW),
        Err(StoreError::NotFound(_))
    ));
}

pub fn a_session_id_is_stored_once(db: &dyn Database) {
    let store = store(db);
    let expires = NOW + Duration::minutes(5);
    store.insert_session(&session("a", None, expires)).unwrap();
    let again = store.insert_session(&refused("a", expires));
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        result_of(store.as_ref(), "a", NOW),
        None,
        "the first one stays"
    );
}

pub fn a_session_completes_once_and_not_after_its_expiry(db: &dyn Database) {
    let store = store(db);
    let expires = NOW + Duration::minutes(5);
    store.insert_session(&session("a", None, expires)).unwrap();
    store.insert_session(&session("b", None, expires)).unwrap();
    let refused = SessionCompletion::without_signature(SessionResult::UserRefused, NOW);
    assert!(store.complete_session("a", &refused).unwrap());
    let blocked = SessionCompletion::without_signature(SessionResult::PinBlocked, NOW);
    assert!(!store.complete_session("a", &blocked).unwrap());
    let a = store.session_at("a", NOW).unwrap().unwrap();
    assert_eq!(a.completion.unwrap().result, SessionResult::UserRefused);
    assert_eq!(a.display_text.as_deref(), Some("ünicode text"));
    // Completing marks a session never fetched as delivered then.
    assert_eq!(a.delivered_at, Some(NOW));
    let late = SessionCompletion::without_signature(SessionResult::UserRefused, expires);
    assert!(!store.complete_session("b", &late).unwrap());
    assert!(store.session_at("missing", NOW).unwrap().is_none());
    assert!(!store.complete_session("missing", &refused).unwrap());

    // A signature, its algorithm and the certificate come back as stored.
    store.insert_session(&session("c", None, expires)).unwrap();
    let signed = SessionCompletion {
        result: SessionResult::Ok,
        completed_at: NOW + Duration::seconds(1),
        signature: Some(vec![1, 2, 3]),
        signature_algorithm: Some("SHA256WithECEncryption".into()),
        cert: Some(vec![0x30, 0]),
    };
    assert!(store.complete_session("c", &signed).unwrap());
    let c = store.session_at("c", NOW).unwrap().unwrap();
    assert_eq!(c.completion, Some(signed));
}

pub fn expiry_is_settled_once_and_stored(db: &dyn Database) {
    let store = store(db);
    let expires = NOW + Duration::minutes(5);
    store.insert_session(&session("a", None, expires)).unwrap();
    store.insert_session(&session("b", None, expires)).unwrap();
    // "b" was fetched by its (absent from this test) device.
    store.mark_delivered(&["b"], NOW).unwrap();
    let later = expires + Duration::seconds(1);
    let a = store.session_at("a", later).unwrap().unwrap();
    assert_eq!(
        a.completion.as_ref().unwrap().result,
        SessionResult::PhoneAbsent
    );
    assert_eq!(a.completion.unwrap().completed_at, expires);
    // Another handle on the database (a restarted service) reads the stored verdict, even at
    // a time before the expiry.
    let reopened = db.open();
    let a = reopened.session_at("a", NOW).unwrap().unwrap();
    assert_eq!(a.completion.unwrap().result, SessionResult::PhoneAbsent);
    let b = reopened.session_at("b", later).unwrap().unwrap();
    assert_eq!(b.completion.unwrap().result, SessionResult::Timeout);
    // A settled session takes no answer.
    let late = SessionCompletion::without_signature(SessionResult::Ok, NOW);
    assert!(!reopened.complete_session("a", &late).unwrap());
}

pub fn running_sessions_come_oldest_first_then_in_the_order_stored(db: &dyn Database) {
    let store = store(db);
    let device = register(store.as_ref(), "+994501234567");
    let id = Some(device.device_id.as_str());
    let expires = NOW + Duration::minutes(5);
    // Stored in this order, all created at NOW: ids that sort otherwise.
    for name in ["m", "c", "x", "a"] {
        store.insert_session(&session(name, id, expires)).unwrap();
    }
    // Created earlier, stored last: first.
    let earlier = SessionRecord {
        created_at: NOW - Duration::seconds(1),
        ..session("z", id, expires)
    };
    store.insert_session(&earlier).unwrap();
    // Neither a complete one, an expired one, nor another device's.
    store
        .insert_session(&SessionRecord {
            completion: Some(SessionCompletion::without_signature(
                SessionResult::UserRefused,
                NOW,
            )),
            ..session("done", id, expires)
        })
        .unwrap();
    store
        .insert_session(&session("old", id, NOW + Duration::seconds(10)))
        .unwrap();
    let other = register(store.as_ref(), "+994557654321");
    store
        .insert_session(&session("theirs", Some(other.device_id.as_str()), expires))
        .unwrap();

    let at = NOW + Duration::seconds(10);
    let ids = |max| -> Vec<String> {
        store
            .running_sessions(&device.device_id, at, max)
            .unwrap()
            .into_iter()
            .map(|s| s.session_id)
            .collect()
    };
    assert_eq!(ids(10), ["z", "m", "c", "x", "a"]);
    assert_eq!(ids(2), ["z", "m"]);
    assert!(ids(0).is_empty());
    // A plain read: nothing marked delivered.
    let m = store.session_at("m", NOW).unwrap().unwrap();
    assert_eq!(m.delivered_at, None);
}

pub fn delivery_is_marked_once(db: &dyn Database) {
    let store = store(db);
    let expires = NOW + Duration::minutes(5);
    store.insert_session(&session("a", None, expires)).unwrap();
    store.insert_session(&session("b", None, expires)).unwrap();
    let first = NOW + Duration::seconds(1);
    store.mark_delivered(&["a", "missing"], first).unwrap();
    store
        .mark_delivered(&["a", "b"], first + Duration::seconds(1))
        .unwrap();
    store.mark_delivered(&[], first).unwrap();
    let delivered = |id| store.session_at(id, NOW).unwrap().unwrap().delivered_at;
    assert_eq!(delivered("a"), Some(first), "the first delivery time stays");
    assert_eq!(delivered("b"), Some(first + Duration::seconds(1)));
}

pub fn pending_sessions_take_turns_and_are_marked_delivered(db: &dyn Database) {
    let store = store(db);
    add_party(store.as_ref(), "bank.az");
    let device = register(store.as_ref(), "+994501234567");
    let id = Some(device.device_id.as_str());
    let expires = NOW + Duration::minutes(5);
    for (i, name) in ["g1", "g2", "g3"].into_iter().enumerate() {
        store
            .insert_session(&SessionRecord {
                created_at: NOW + Duration::milliseconds(i as i64),
                ..session(name, id, expires)
            })
            .unwrap();
    }
    store
        .insert_session(&SessionRecord {
            relying_party: "bank.az".into(),
            created_at: NOW + Duration::seconds(1),
            ..session("bank", id, expires)
        })
        .unwrap();
    let at = NOW + Duration::seconds(2);
    let pending = pending_sessions(store.as_ref(), &device.device_id, at, 2).unwrap();
    let ids: Vec<_> = pending.iter().map(|s| s.session_id.as_str()).collect();
    // The bank's one request is not pushed out by the three older ones of gov.az.
    assert_eq!(ids, ["g1", "bank"]);
    assert!(pending.iter().all(|s| s.delivered_at == Some(at)));
    let delivered = |id| store.session_at(id, at).unwrap().unwrap().delivered_at;
    assert_eq!(delivered("bank"), Some(at));
    assert_eq!(delivered("g2"), None);
    // Fetched again later: the first delivery time stays.
    let again = pending_sessions(
        store.as_ref(),
        &device.device_id,
        at + Duration::seconds(1),
        4,
    )
    .unwrap();
    assert_eq!(again.len(), 4);
    assert_eq!(again[0].delivered_at, Some(at));
    assert_eq!(delivered("g1"), Some(at));
}

pub fn the_running_cap_counts_per_relying_party_and_device(db: &dyn Database) {
    let store = store(db);
    add_party(store.as_ref(), "bank.az");
    let device = register(store.as_ref(), "+994501234567");
    let id = Some(device.device_id.as_str());
    let expires = NOW + Duration::minutes(5);
    let within =
        |session: &SessionRecord, now| store.insert_session_within(session, 2, now).unwrap();
    // One that expires soon, one later: both count while they run.
    let short = session("short", id, NOW + Duration::minutes(1));
    assert_eq!(within(&short, NOW), Stored::Stored);
    assert_eq!(within(&session("a", id, expires), NOW), Stored::Stored);
    assert_eq!(
        within(&session("b", id, expires), NOW),
        Stored::TooManyRunning {
            running: 2,
            first_expiry: NOW + Duration::minutes(1),
        }
    );
    assert!(
        store.session_at("b", NOW).unwrap().is_none(),
        "nothing stored"
    );
    // Another relying party has its own count; a refusal without a device is not counted.
    let bank = SessionRecord {
        relying_party: "bank.az".into(),
        ..session("bank", id, expires)
    };
    assert_eq!(within(&bank, NOW), Stored::Stored);
    assert_eq!(within(&refused("refused", expires), NOW), Stored::Stored);
    // Once one expires or completes, there is room again.
    let after_short = NOW + Duration::minutes(2);
    assert_eq!(
        within(&session("c", id, expires), after_short),
        Stored::Stored
    );
    let done = SessionCompletion::without_signature(SessionResult::UserRefused, after_short);
    assert!(store.complete_session("a", &done).unwrap());
    assert_eq!(
        within(&session("d", id, expires), after_short),
        Stored::Stored
    );
}

pub fn purging_works_in_bounded_batches(db: &dyn Database) {
    let store = store(db);
    for i in 0..25 {
        store
            .insert_session(&refused(&format!("s{i:02}"), NOW + Duration::minutes(5)))
            .unwrap();
    }
    // Before the sessions expire, so that only their completion time counts.
    let later = NOW + Duration::minutes(1);
    // 2 batches of 10: 20 deleted, 5 left for the next round.
    assert_eq!(
        store
            .purge_sessions(later, NOW + Duration::seconds(1), 10, 2)
            .unwrap(),
        20
    );
    assert_eq!(
        store
            .purge_sessions(later, NOW + Duration::seconds(1), 10, 2)
            .unwrap(),
        5
    );
    // Sessions complete after the cut-off stay.
    store
        .insert_session(&session("young", None, NOW + Duration::minutes(5)))
        .unwrap();
    assert_eq!(store.purge_sessions(later, NOW, 10, 2).unwrap(), 0);

    // A session left running past its expiry is settled (not deleted) by the clean-up.
    let device = register(store.as_ref(), "+994501234567");
    let expires = NOW + Duration::minutes(5);
    store
        .insert_session(&session("left", Some(device.device_id.as_str()), expires))
        .unwrap();
    store
        .insert_session(&session("seen", Some(device.device_id.as_str()), expires))
        .unwrap();
    store.mark_delivered(&["seen"], NOW).unwrap();
    let after = expires + Duration::seconds(1);
    // Only "young" goes: stored without a device, it is gone once expired.
    assert_eq!(store.purge_sessions(after, NOW, 10, 2).unwrap(), 1);
    assert!(store.session_at("young", after).unwrap().is_none());
    let left = store
        .session_at("left", NOW)
        .unwrap()
        .unwrap()
        .completion
        .unwrap();
    assert_eq!(
        (left.result, left.completed_at),
        (SessionResult::PhoneAbsent, expires)
    );
    assert_eq!(
        result_of(store.as_ref(), "seen", NOW),
        Some(SessionResult::Timeout)
    );
}

pub fn sessions_refused_at_creation_go_once_expired_not_a_day_later(db: &dyn Database) {
    let store = store(db);
    let expires = NOW + Duration::minutes(5);
    for i in 0..3 {
        store
            .insert_session(&refused(&format!("r{i}"), expires))
            .unwrap();
    }
    let day_ago = NOW - Duration::days(1);
    let before = expires - Duration::seconds(1);
    assert_eq!(store.purge_sessions(before, day_ago, 10, 2).unwrap(), 0);
    assert!(store.session_at("r0", before).unwrap().is_some());
    assert_eq!(store.purge_sessions(expires, day_ago, 10, 2).unwrap(), 3);
    assert!(store.session_at("r0", expires).unwrap().is_none());
}

pub fn concurrent_relying_parties_of_one_name_store_exactly_one(db: &dyn Database) {
    // The database is empty: every racer inserts the same new name.
    let results = race(db, RACERS, |i, store| {
        store.insert_relying_party("new.gov.az", &[i as u8; 32], NOW)
    });
    let stored: Vec<usize> = (0..RACERS).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(stored.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))));
    let (hash, known) = db
        .open()
        .relying_party_key_hash_or("new.gov.az", &[0xff; 32])
        .unwrap();
    assert!(known);
    assert_eq!(
        hash, [stored[0] as u8; 32],
        "the winner's key is the one kept"
    );
}

pub fn concurrent_registrations_of_one_number_leave_exactly_one_active_device(db: &dyn Database) {
    let phone = "+994501234567";
    let devices: Vec<Device> = (0..RACERS).map(|_| device(phone)).collect();
    let results = race(db, RACERS, |i, store| {
        store.insert_device(&devices[i], &secret_hash(&devices[i]))
    });
    let replaced: Vec<Option<Device>> = results
        .into_iter()
        .map(|r| r.expect("every registration succeeds"))
        .collect();
    let store = db.open();
    let active = store.device_for_phone(phone).unwrap().expect("one active");
    // Applied one after another: the first replaced nothing, every other replaced the one
    // applied just before it, so each device but the last is replaced exactly once.
    assert_eq!(replaced.iter().filter(|r| r.is_none()).count(), 1);
    let mut replaced_ids: Vec<&str> = replaced
        .iter()
        .flatten()
        .map(|d| d.device_id.as_str())
        .collect();
    replaced_ids.sort_unstable();
    let mut others: Vec<&str> = devices
        .iter()
        .map(|d| d.device_id.as_str())
        .filter(|id| *id != active.device_id)
        .collect();
    others.sort_unstable();
    assert_eq!(replaced_ids, others);
    for device in &devices {
        let is_active = store.active_device(&device.device_id).unwrap().is_some();
        assert_eq!(is_active, device.device_id == active.device_id);
    }
}

pub fn concurrent_deactivations_of_one_device_let_exactly_one_succeed(db: &dyn Database) {
    let device = register(store(db).as_ref(), "+994501234567");
    let results = race(db, RACERS, |_, store| {
        store.deactivate_device(&device.device_id, NOW)
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(StoreError::NotFound(_)))));
    assert_eq!(db.open().active_device(&device.device_id).unwrap(), None);
}

pub fn concurrent_completions_of_one_session_let_exactly_one_win(db: &dyn Database) {
    let store = store(db);
    let device = register(store.as_ref(), "+994501234567");
    let expires = NOW + Duration::minutes(5);
    store
        .insert_session(&session("a", Some(device.device_id.as_str()), expires))
        .unwrap();
    let results = [
        SessionResult::UserRefused,
        SessionResult::PinBlocked,
        SessionResult::DeliveryError,
    ];
    let completion = |i: usize| {
        SessionCompletion::without_signature(
            results[i % results.len()],
            NOW + Duration::seconds(i as i64),
        )
    };
    let won = race(db, RACERS, |i, store| {
        store.complete_session("a", &completion(i)).unwrap()
    });
    let winners: Vec<usize> = (0..RACERS).filter(|&i| won[i]).collect();
    assert_eq!(winners.len(), 1, "{won:?}");
    let stored = store.session_at("a", NOW).unwrap().unwrap().completion;
    assert_eq!(stored, Some(completion(winners[0])));
}

pub fn a_completion_racing_the_expiry_is_stored_alone_and_seen_by_every_reader(db: &dyn Database) {
    let store = store(db);
    let expires = NOW + Duration::minutes(5);
    let answer = SessionCompletion::without_signature(
        SessionResult::UserRefused,
        expires - Duration::seconds(1),
    );
    let after = expires + Duration::seconds(1);
    // Several rounds: which side wins varies.
    for round in 0..4 {
        let id = format!("s{round}");
        store.insert_session(&session(&id, None, expires)).unwrap();
        // Even racers answer (in time by their clock), odd ones read after the expiry.
        let outcomes = race(db, RACERS, |i, store| match i % 2 {
            0 => (store.complete_session(&id, &answer).unwrap(), None),
            _ => (
                false,
                store.session_at(&id, after).unwrap().unwrap().completion,
            ),
        });
        let stored = store
            .session_at(&id, NOW)
            .unwrap()
            .unwrap()
            .completion
            .expect("complete");
        let answered = outcomes.iter().filter(|(won, _)| *won).count();
        match stored.result {
            SessionResult::UserRefused => assert_eq!(answered, 1, "{outcomes:?}"),
            SessionResult::PhoneAbsent => assert_eq!(answered, 0, "{outcomes:?}"),
            other => panic!("stored {other}"),
        }
        // Every reader saw what is stored, whichever won.
        for (_, seen) in outcomes.iter().filter(|(_, seen)| seen.is_some()) {
            assert_eq!(seen.as_ref(), Some(&stored));
        }
    }
}

pub fn concurrent_session_creations_do_not_pass_the_running_cap(db: &dyn Database) {
    let store = store(db);
    let device = register(store.as_ref(), "+994501234567");
    let expires = NOW + Duration::minutes(5);
    let outcomes = race(db, RACERS, |i, store| {
        let session = session(&format!("s{i}"), Some(device.device_id.as_str()), expires);
        store.insert_session_within(&session, 2, NOW).unwrap()
    });
    let stored = outcomes.iter().filter(|o| **o == Stored::Stored).count();
    assert_eq!(stored, 2, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(
        o,
        Stored::Stored | Stored::TooManyRunning { running: 2, .. }
    )));
    let running = store.running_sessions(&device.device_id, NOW, 100).unwrap();
    assert_eq!(running.len(), 2);
}

pub fn concurrent_clean_ups_delete_each_session_once(db: &dyn Database) {
    let store = store(db);
    let sessions = 60;
    for i in 0..sessions {
        store
            .insert_session(&refused(&format!("s{i:02}"), NOW + Duration::minutes(5)))
            .unwrap();
    }
    let later = NOW + Duration::minutes(1);
    let deleted = race(db, 4, |_, store| {
        store
            .purge_sessions(later, NOW + Duration::seconds(1), 5, 100)
            .unwrap()
    });
    assert_eq!(deleted.iter().sum::<usize>(), sessions, "{deleted:?}");
    assert!(store.session_at("s00", later).unwrap().is_none());
    assert_eq!(store.purge_sessions(later, later, 5, 100).unwrap(), 0);
}

pub fn a_citizens_sessions_are_those_of_all_their_devices_newest_first(db: &dyn Database) {
    let store = store(db);
    add_party(store.as_ref(), "bank.az");
    let later = NOW + Duration::minutes(5);
    // The citizen's first phone, replaced by a second (both theirs); another citizen's phone.
    let first = register(store.as_ref(), "+994501111111");
    let second = Device {
        national_id: first.national_id.clone(),
        ..device("+994501111111")
    };
    store.insert_device(&second, &secret_hash(&second)).unwrap();
    let other = Device {
        national_id: "9ZZ9ZZ9".into(),
        ..device("+994502222222")
    };
    store.insert_device(&other, &secret_hash(&other)).unwrap();
    store
        .insert_session(&session("old", Some(&first.device_id), later))
        .unwrap();
    store
        .insert_session(&SessionRecord {
            relying_party: "bank.az".into(),
            kind: SessionKind::Authentication,
            ..session("new", Some(&second.device_id), later)
        })
        .unwrap();
    store
        .insert_session(&session("theirs", Some(&other.device_id), later))
        .unwrap();
    store.insert_session(&refused("nobodys", later)).unwrap();

    let mine = store
        .sessions_of_national_id(&first.national_id, 10)
        .unwrap();
    let ids: Vec<&str> = mine.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, ["new", "old"]);
    assert_eq!(mine[0].relying_party, "bank.az");
    assert_eq!(mine[0].kind, SessionKind::Authentication);
    assert_eq!(mine[1].display_text.as_deref(), Some("ünicode text"));
    assert_eq!(
        store
            .sessions_of_national_id(&first.national_id, 1)
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .sessions_of_national_id("0AAAAAA", 10)
        .unwrap()
        .is_empty());
}
