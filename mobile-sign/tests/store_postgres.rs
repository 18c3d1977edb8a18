//! The mobile signature store on PostgreSQL: the whole contract of `MobileStore`
//! (`store::contract`, the tests the SQLite store runs too) against a real PostgreSQL server —
//! a cluster of this test binary's own (`imza_testdata::postgres`), a fresh database per test,
//! every handle with a pool of its own as separate nodes would have — then what only this
//! engine has: its schema version, and lock orders that keep writers out of deadlocks.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use imza_core::alg::DigestAlgorithm;
use imza_mobile_sign::protocol::{Language, SessionKind};
use imza_mobile_sign::store::contract::Database;
use imza_mobile_sign::store::{
    Device, MobileStore, PgMobileStore, RegisteredCertificate, SessionRecord, StoreError,
};
use imza_store::{Create, PostgresUrl, StoreUrl};
use imza_testdata::postgres::PgCluster;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// One fresh database; each [`Database::open`] is a new store with a pool of its own.
struct PgDatabase {
    url: PostgresUrl,
    /// With the password, for connections behind the store's back.
    raw: String,
}

impl Database for PgDatabase {
    fn open(&self) -> Arc<dyn MobileStore> {
        Arc::new(PgMobileStore::open(&self.url, Create::IfMissing).expect("open the store"))
    }
}

fn fresh() -> PgDatabase {
    let raw = PgCluster::shared().database();
    let url = match raw.parse::<StoreUrl>().expect("a store URL") {
        StoreUrl::Postgres(url) => *url,
        StoreUrl::Sqlite(_) => unreachable!("the cluster gives postgres:// URLs"),
    };
    PgDatabase { url, raw }
}

mod contract {
    imza_mobile_sign::mobile_store_contract_tests!(super::fresh);
}

fn client(db: &PgDatabase) -> postgres::Client {
    postgres::Client::connect(&db.raw, postgres::NoTls).expect("connect to the test database")
}

const NOW: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);

#[test]
fn open_picks_postgres_from_the_url_and_records_sqlites_version_3_in_one_step_then_4() {
    let db = fresh();
    let url: StoreUrl = db.raw.parse().unwrap();
    let store = imza_mobile_sign::store::open(&url).expect("open");
    store
        .insert_relying_party("gov.az", &[1; 32], NOW)
        .expect("a relying party");
    drop(store);
    let mut client = client(&db);
    let versions: Vec<i64> = client
        .query(
            "SELECT version FROM mss_schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        [3, 4],
        "SQLite's versions 1 to 3, recorded as 3, then 4 (the citizen's sessions' indexes)"
    );
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "mss_devices",
            "mss_relying_parties",
            "mss_schema_migrations",
            "mss_sessions"
        ]
    );

    // Opening again changes nothing; a schema newer than this imza is refused.
    let again = imza_mobile_sign::store::open(&url).expect("open again");
    assert_eq!(again.relying_parties().unwrap().len(), 1);
    drop(again);
    client
        .execute(
            "INSERT INTO mss_schema_migrations (version, applied_at) VALUES (5, 0)",
            &[],
        )
        .unwrap();
    let newer = imza_mobile_sign::store::open(&url).unwrap_err();
    assert!(
        matches!(
            newer,
            StoreError::NewerSchema {
                what: "the mobile signature tables",
                found: 5,
                known: 4
            }
        ),
        "{newer}"
    );
}

#[test]
fn a_database_without_the_tables_is_not_found_when_not_to_be_created() {
    let db = fresh();
    let missing = PgMobileStore::open(&db.url, Create::No).unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing}");
    let tables: i64 = client(&db)
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "nothing was created");
}

/// A running session of `device` named `id`.
fn running(id: &str, device: &Device) -> SessionRecord {
    SessionRecord {
        session_id: id.into(),
        relying_party: "gov.az".into(),
        device_id: Some(device.device_id.clone()),
        kind: SessionKind::Signature,
        hash: vec![7; 32],
        hash_type: DigestAlgorithm::Sha256,
        display_text: None,
        language: Language::Aze,
        created_at: NOW,
        expires_at: NOW + Duration::minutes(5),
        delivered_at: None,
        completion: None,
    }
}

/// Waits until another connection to the database waits for a row lock.
fn until_someone_waits_for_a_lock(client: &mut postgres::Client) {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let waiting: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "nobody waited for a lock");
        std::thread::sleep(StdDuration::from_millis(20));
    }
}

#[test]
fn delivery_marks_lock_sessions_in_id_order_as_a_deactivation_does() {
    let db = fresh();
    let store = db.open();
    store.insert_relying_party("gov.az", &[1; 32], NOW).unwrap();
    let device = Device {
        device_id: "0123456789abcdef0123456789abcdef".into(),
        phone_number: "+994501234567".into(),
        national_id: "1AB2C3D".into(),
        auth: RegisteredCertificate {
            ca: "mobile".into(),
            der: vec![0x30, 0],
        },
        sign: RegisteredCertificate {
            ca: "mobile".into(),
            der: vec![0x30, 0],
        },
        registered_at: NOW,
    };
    store.insert_device(&device, &[2; 32]).unwrap();
    // Stored "b" first: a scan in storage order meets it before "a".
    for id in ["b", "a"] {
        store.insert_session(&running(id, &device)).unwrap();
    }

    // A transaction ending the device's sessions as a deactivation does, in id order: "a" is
    // locked, "b" comes next.
    let mut deactivation = client(&db);
    let mut tx = deactivation.transaction().unwrap();
    tx.execute(
        "SELECT 1 FROM mss_sessions WHERE session_id = 'a' FOR NO KEY UPDATE",
        &[],
    )
    .unwrap();
    // The phone's poll marks both, named in the other order.
    let marking = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.mark_delivered(&["b", "a"], NOW))
    };
    until_someone_waits_for_a_lock(&mut client(&db));
    // Had the marks locked "b" before waiting for "a", this would be a deadlock and one side
    // would be cancelled (after deadlock_timeout); in id order the marks hold nothing yet.
    tx.batch_execute("SET LOCAL lock_timeout = '5s'").unwrap();
    tx.execute(
        "UPDATE mss_sessions SET completed_at = 1, result = 'NOT_MOBILE_CLIENT' \
         WHERE session_id IN ('a', 'b')",
        &[],
    )
    .expect("the deactivation takes both rows");
    tx.commit().unwrap();
    marking
        .join()
        .expect("the marking thread")
        .expect("the marks wait, then apply");
    for id in ["a", "b"] {
        let session = store.session_at(id, NOW).unwrap().unwrap();
        assert_eq!(session.delivered_at, Some(NOW), "{id}");
    }
}

/// The connections to the database other than `client`'s own.
fn other_connections(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_store_dropped_on_a_tokio_worker_closes_its_connections_without_a_panic() {
    let db = fresh();
    let store = db.open();
    store.relying_parties().expect("a connection in the pool");
    let mut watcher = client(&db);
    assert!(other_connections(&mut watcher) >= 1);
    // As a server's last handle goes when it shuts down: in a task on a worker thread.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    runtime
        .block_on(async move { tokio::spawn(async move { drop(store) }).await })
        .expect("the task dropping the store does not panic");
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while other_connections(&mut watcher) > 0 {
        assert!(
            Instant::now() < deadline,
            "the store's connections stay open"
        );
        std::thread::sleep(StdDuration::from_millis(20));
    }
}
