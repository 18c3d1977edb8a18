//! One-time access codes through the real SQLite store (the engines themselves are checked
//! by the store's contract suite): issued, typed back in the ways people type them, used once,
//! five wrong tries locking the citizen out for a while, and never kept in clear.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use time::{Duration, OffsetDateTime};

use imza_portal::access_code::{issue, log_in, AccessCodeError, AccessCodePolicy};
use imza_portal::store::{PortalStore, SqlitePortalStore};

fn store() -> (tempfile::TempDir, SqlitePortalStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap();
    (dir, store)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[test]
fn a_code_logs_in_once_however_it_is_typed() {
    let (_dir, store) = store();
    let policy = AccessCodePolicy::default();
    let issued = issue(&store, "5ZK7T2Q", now(), &policy).unwrap();
    assert_eq!(issued.personal_code, "PNOAZ-5ZK7T2Q");
    assert_eq!(issued.code.len(), 11);
    assert_eq!(issued.code.as_bytes()[5], b'-');
    assert!(!format!("{issued:?}").contains(&issued.code));
    // Lower case, no dash, spaces: the same code.
    let typed = format!(" {} ", issued.code.to_lowercase().replace('-', " "));
    assert_eq!(
        log_in(&store, "5ZK7T2Q", &typed, now(), &policy).unwrap(),
        "PNOAZ-5ZK7T2Q"
    );
    assert!(matches!(
        log_in(&store, "5ZK7T2Q", &issued.code, now(), &policy),
        Err(AccessCodeError::Refused { tries_left: None })
    ));
}

#[test]
fn five_wrong_codes_lock_the_citizen_out_for_a_while() {
    let (_dir, store) = store();
    let policy = AccessCodePolicy::default();
    let at = now();
    let issued = issue(&store, "5ZK7T2Q", at, &policy).unwrap();
    let wrong = if issued.code.starts_with('0') {
        "11111-11111"
    } else {
        "00000-00000"
    };
    for left in (1..5).rev() {
        match log_in(&store, "5ZK7T2Q", wrong, at, &policy) {
            Err(AccessCodeError::Refused {
                tries_left: Some(n),
            }) => assert_eq!(n, left),
            other => panic!("{other:?}"),
        }
    }
    let until = match log_in(&store, "5ZK7T2Q", wrong, at, &policy) {
        Err(AccessCodeError::Locked { until }) => until,
        other => panic!("{other:?}"),
    };
    assert_eq!(until, at + policy.lock);
    // Locked: even the right code is refused, and says until when.
    let during = at + Duration::minutes(14);
    assert!(matches!(
        log_in(&store, "5ZK7T2Q", &issued.code, during, &policy),
        Err(AccessCodeError::Locked { .. })
    ));
    // After the lock the right code works.
    let after = at + policy.lock;
    assert!(log_in(&store, "5ZK7T2Q", &issued.code, after, &policy).is_ok());
}

#[test]
fn expired_replaced_unknown_and_malformed_codes_are_refused() {
    let (_dir, store) = store();
    let policy = AccessCodePolicy::default();
    let at = now();
    let first = issue(&store, "5ZK7T2Q", at, &policy).unwrap();
    let second = issue(&store, "5ZK7T2Q", at, &policy).unwrap();
    assert_ne!(first.code, second.code);
    // The first was replaced by the second: it counts as a wrong code.
    assert!(matches!(
        log_in(&store, "5ZK7T2Q", &first.code, at, &policy),
        Err(AccessCodeError::Refused {
            tries_left: Some(4)
        })
    ));
    // Expired: refused, no try counted.
    let late = at + policy.lifetime;
    assert!(matches!(
        log_in(&store, "5ZK7T2Q", &second.code, late, &policy),
        Err(AccessCodeError::Refused { tries_left: None })
    ));
    // Nobody issued one to this citizen.
    assert!(matches!(
        log_in(&store, "1AB2C3D", &second.code, at, &policy),
        Err(AccessCodeError::Refused { tries_left: None })
    ));
    // Malformed input: refused as such, nothing counted.
    for (id, code) in [
        ("5zk7t2q", second.code.as_str()),
        ("5ZK7T2", second.code.as_str()),
        ("5ZK7T2Q", "12345"),
        ("5ZK7T2Q", "UUUUU-UUUUU"),
        ("5ZK7T2Q", &"A".repeat(100)),
    ] {
        assert!(
            matches!(
                log_in(&store, id, code, at, &policy),
                Err(AccessCodeError::Invalid(_))
            ),
            "{id} {code}"
        );
    }
    assert_eq!(
        store
            .access_code("PNOAZ-5ZK7T2Q")
            .unwrap()
            .unwrap()
            .tries_left,
        4
    );
    assert!(matches!(
        issue(&store, "not an id", at, &policy),
        Err(AccessCodeError::Invalid(_))
    ));
}

#[test]
fn the_store_keeps_a_slow_hash_never_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imza.db");
    let store = SqlitePortalStore::open(&path).unwrap();
    let issued = issue(&store, "5ZK7T2Q", now(), &AccessCodePolicy::default()).unwrap();
    let kept = store.access_code("PNOAZ-5ZK7T2Q").unwrap().unwrap();
    assert_eq!((kept.code_scrypt.len(), kept.salt.len()), (32, 16));
    drop(store);
    let file = std::fs::read(&path).unwrap();
    let wal = std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
    let plain = issued.code.replace('-', "");
    for bytes in [&file, &wal] {
        assert!(!bytes.windows(plain.len()).any(|w| w == plain.as_bytes()));
    }
}
