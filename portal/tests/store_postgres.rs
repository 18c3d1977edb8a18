//! The portal store on PostgreSQL: the whole contract of `PortalStore` (`store::contract`, the
//! tests the SQLite store runs too) against a real PostgreSQL server — a cluster of this test
//! binary's own (`imza_testdata::postgres`), a fresh database per test, every handle with a
//! pool of its own as separate nodes would have.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use imza_portal::store::contract::Database;
use imza_portal::store::{PgPortalStore, PortalStore};
use imza_store::{Create, PostgresUrl, StoreUrl};
use imza_testdata::postgres::PgCluster;

/// One fresh database; each [`Database::open`] is a new store with a pool of its own.
struct PgDatabase {
    url: PostgresUrl,
}

impl Database for PgDatabase {
    fn open(&self) -> Arc<dyn PortalStore> {
        Arc::new(PgPortalStore::open(&self.url, Create::IfMissing).expect("open the store"))
    }
}

fn fresh() -> PgDatabase {
    let url = match PgCluster::shared()
        .database()
        .parse::<StoreUrl>()
        .expect("a store URL")
    {
        StoreUrl::Postgres(url) => *url,
        StoreUrl::Sqlite(_) => unreachable!("the cluster gives postgres:// URLs"),
    };
    PgDatabase { url }
}

imza_portal::portal_store_contract_tests!(fresh);

#[test]
fn a_database_without_the_portal_tables_is_not_found_when_not_to_be_created() {
    let url = fresh().url;
    assert!(matches!(
        PgPortalStore::open(&url, Create::No),
        Err(imza_store::StoreError::NotFound(_))
    ));
    PgPortalStore::open(&url, Create::IfMissing).unwrap();
    PgPortalStore::open(&url, Create::No).unwrap();
}
