//! [`MobileStore`] on PostgreSQL, in the database of the CA store (tables `mss_*`, versioned in
//! their own `mss_schema_migrations`), for several nodes serving one mobile signature service.
//! Same tables and values as the SQLite store (see `rows`); what differs is how the contract of
//! [`MobileStore`] is kept with many writers at READ COMMITTED, where a read followed by a write
//! does not by itself stop another transaction from reading the same rows first:
//!
//! - A registration takes a transaction-scoped advisory lock on its phone number
//!   ([`PHONE_LOCK`]) before it deactivates the number's active device, so registrations of
//!   one number apply one after another even when it has no device yet (a row lock would lock
//!   nothing then).
//! - A capped session creation locks its device's row (`FOR NO KEY UPDATE`, a lock that a
//!   session insert's foreign-key check does not wait for) before it counts, in a statement of
//!   its own, the running sessions: concurrent creations for one device count one after
//!   another, each seeing the sessions the ones before it stored.
//! - Every write that ends or marks a session carries its condition in its `WHERE`: when a
//!   concurrent writer changed the row first, PostgreSQL re-reads the row after waiting for
//!   it, the condition fails, and the loser changes nothing.
//! - A statement that changes several sessions takes their row locks in session-id order
//!   (a deactivation, delivery marks) or skips rows another transaction holds (the clean-up,
//!   `SKIP LOCKED`), so two such statements never wait for each other in a cycle.
//! - Every statement is one round trip (`query_typed`: no statement prepared per call), and a
//!   session's sequence number comes from an identity column.

mod sessions;

use postgres::types::{FromSql, ToSql, Type};
use postgres::{Row, Transaction};
use time::OffsetDateTime;

use imza_store::postgres::{error as db_error, violated, Connection, Pool, PoolOptions};
use imza_store::{Create, PostgresUrl};

use super::rows::{self, millis, DeviceRow, DEVICE_COLUMNS};
use super::sessions::{SessionCompletion, SessionRecord, Stored, RESULT_WHEN_DEACTIVATED};
use super::{Device, MobileStore, RelyingParty, StoreError, SCHEMA_POSTGRES};

/// The first key of the advisory locks that serialise registrations per phone number (the
/// second is the number's hash). Two keys of 32 bits are a space of their own, apart from the
/// single 64-bit keys of the CA store and of migrations.
const PHONE_LOCK: i32 = 0x6d73_7370; // "mssp"

/// A relying party's key hash (`$1` the name) or the decoy (`$2`), and whether it was found:
/// one row either way, the hash read from the key index that includes it.
const RELYING_PARTY_KEY_HASH: &str = "SELECT api_key_sha256, true FROM mss_relying_parties \
     WHERE name = $1 UNION ALL SELECT $2, false LIMIT 1";

/// An active device's secret hash (`$1` the id) or the decoy (`$2`), as
/// [`RELYING_PARTY_KEY_HASH`], from the partial index `mss_devices_active_secret`.
const DEVICE_SECRET_HASH: &str = "SELECT secret_sha256, true FROM mss_devices \
     WHERE device_id = $1 AND deactivated_at IS NULL UNION ALL SELECT $2, false LIMIT 1";

/// The service's tables in a PostgreSQL database, through a pool of connections of its own.
#[derive(Debug)]
pub struct PgMobileStore {
    pool: Pool,
}

/// A statement parameter with its type, as `query_typed` takes it.
type Param<'a> = (&'a (dyn ToSql + Sync), Type);

impl PgMobileStore {
    /// Connects to the database at `url` and brings the mobile signature tables up to date.
    /// With [`Create::No`] a database without them is `NotFound`, and nothing is created.
    pub fn open(url: &PostgresUrl, create: Create) -> Result<PgMobileStore, StoreError> {
        PgMobileStore::open_with(url, create, PoolOptions::default())
    }

    /// As [`PgMobileStore::open`], with the pool's size and wait.
    pub fn open_with(
        url: &PostgresUrl,
        create: Create,
        options: PoolOptions,
    ) -> Result<PgMobileStore, StoreError> {
        let pool = Pool::open(url, create, &[&SCHEMA_POSTGRES], options)?;
        Ok(PgMobileStore { pool })
    }

    fn connection(&self) -> Result<Connection, StoreError> {
        self.pool.get()
    }

    /// Runs one statement on its own (its own transaction) and returns its rows.
    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        self.connection()?
            .query_prepared(sql, params)
            .map_err(db_error)
    }

    /// Runs `f` in one transaction and commits; on an error nothing of it stays.
    fn transaction<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.write(f)
    }

    /// A device by `condition` on [`DEVICE_COLUMNS`] (`$1` its one parameter).
    fn device_where(&self, condition: &str, value: &str) -> Result<Option<Device>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM mss_devices WHERE {condition}");
        self.query(&sql, &[(&value, Type::TEXT)])?
            .first()
            .map(device_from)
            .transpose()
    }

    /// Runs one of the `..._HASH` statements: `$1` the name or id, `$2` the decoy.
    fn secret_hash_or(
        &self,
        sql: &str,
        key: &str,
        decoy: &[u8; 32],
        column: &str,
    ) -> Result<([u8; 32], bool), StoreError> {
        let decoy = &decoy[..];
        let rows = self.query(sql, &[(&key, Type::TEXT), (&decoy, Type::BYTEA)])?;
        let row = rows.first().ok_or_else(|| {
            StoreError::Backend(format!("no row for {column}, not even the decoy"))
        })?;
        Ok((rows::sha256_value(get(row, 0)?, column)?, get(row, 1)?))
    }
}

/// Reads a column, a type mismatch being corrupt data.
fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("unreadable value: {e}")))
}

fn device_from(row: &Row) -> Result<Device, StoreError> {
    DeviceRow {
        device_id: get(row, 0)?,
        phone_number: get(row, 1)?,
        national_id: get(row, 2)?,
        auth_ca: get(row, 3)?,
        auth_der: get(row, 4)?,
        sign_ca: get(row, 5)?,
        sign_der: get(row, 6)?,
        registered_at: get(row, 7)?,
    }
    .into_device()
}

/// Ends the RUNNING sessions of a device deactivated at `at` (ms), locking them in session-id
/// order (see the module docs).
fn end_running_sessions(
    tx: &mut Transaction<'_>,
    device_id: &str,
    at: i64,
) -> Result<(), StoreError> {
    let result = RESULT_WHEN_DEACTIVATED.name();
    tx.execute_typed(
        "WITH running AS MATERIALIZED (SELECT session_id FROM mss_sessions \
         WHERE device_id = $1 AND completed_at IS NULL ORDER BY session_id FOR NO KEY UPDATE) \
         UPDATE mss_sessions s SET completed_at = $2, result = $3 FROM running r \
         WHERE s.session_id = r.session_id AND s.completed_at IS NULL",
        &[
            (&device_id, Type::TEXT),
            (&at, Type::INT8),
            (&result, Type::TEXT),
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

impl MobileStore for PgMobileStore {
    fn insert_relying_party(
        &self,
        name: &str,
        api_key_sha256: &[u8; 32],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (hash, at) = (&api_key_sha256[..], millis(at));
        self.connection()?
            .execute_typed(
                "INSERT INTO mss_relying_parties (name, api_key_sha256, created_at) \
                 VALUES ($1, $2, $3)",
                &[(&name, Type::TEXT), (&hash, Type::BYTEA), (&at, Type::INT8)],
            )
            .map_err(|e| rows::relying_party_insert_error(violated(&e), db_error(e), name))?;
        Ok(())
    }

    fn relying_parties(&self) -> Result<Vec<RelyingParty>, StoreError> {
        // Byte order, as SQLite sorts: the same list whatever the database's collation.
        self.query(
            "SELECT name, created_at FROM mss_relying_parties ORDER BY name COLLATE \"C\"",
            &[],
        )?
        .iter()
        .map(|row| {
            Ok(RelyingParty {
                name: get(row, 0)?,
                created_at: rows::from_millis(get(row, 1)?, "created_at")?,
            })
        })
        .collect()
    }

    fn relying_party_key_hash_or(
        &self,
        name: &str,
        decoy: &[u8; 32],
    ) -> Result<([u8; 32], bool), StoreError> {
        self.secret_hash_or(RELYING_PARTY_KEY_HASH, name, decoy, "api_key_sha256")
    }

    fn insert_device(
        &self,
        device: &Device,
        secret_sha256: &[u8; 32],
    ) -> Result<Option<Device>, StoreError> {
        let now = millis(device.registered_at);
        let secret = &secret_sha256[..];
        self.transaction(|tx| {
            tx.execute_typed(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[
                    (&PHONE_LOCK, Type::INT4),
                    (&device.phone_number, Type::TEXT),
                ],
            )
            .map_err(db_error)?;
            // Under the lock, a statement of its own: it sees every registration of the
            // number committed before. Conditional, so a deactivation that came first wins
            // and this registration replaces nothing.
            let replaced = tx
                .query_typed(
                    &format!(
                        "UPDATE mss_devices SET deactivated_at = $2 \
                         WHERE phone_number = $1 AND deactivated_at IS NULL \
                         RETURNING {DEVICE_COLUMNS}"
                    ),
                    &[(&device.phone_number, Type::TEXT), (&now, Type::INT8)],
                )
                .map_err(db_error)?
                .first()
                .map(device_from)
                .transpose()?;
            if let Some(old) = &replaced {
                end_running_sessions(tx, &old.device_id, now)?;
            }
            tx.execute_typed(
                "INSERT INTO mss_devices (device_id, phone_number, national_id, secret_sha256, \
                 auth_ca, auth_der, sign_ca, sign_der, registered_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    (&device.device_id, Type::TEXT),
                    (&device.phone_number, Type::TEXT),
                    (&device.national_id, Type::TEXT),
                    (&secret, Type::BYTEA),
                    (&device.auth.ca, Type::TEXT),
                    (&device.auth.der, Type::BYTEA),
                    (&device.sign.ca, Type::TEXT),
                    (&device.sign.der, Type::BYTEA),
                    (&now, Type::INT8),
                ],
            )
            .map_err(|e| rows::device_insert_error(violated(&e), db_error(e), device))?;
            Ok(replaced)
        })
    }

    fn deactivate_device(&self, device_id: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        let at = millis(at);
        self.transaction(|tx| {
            // Conditional: of concurrent deactivations the first locks the row, and the others
            // find it deactivated when they re-read it.
            let changed = tx
                .execute_typed(
                    "UPDATE mss_devices SET deactivated_at = $2 \
                     WHERE device_id = $1 AND deactivated_at IS NULL",
                    &[(&device_id, Type::TEXT), (&at, Type::INT8)],
                )
                .map_err(db_error)?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("active device {device_id}")));
            }
            end_running_sessions(tx, device_id, at)
        })
    }

    fn device_for_phone(&self, phone_number: &str) -> Result<Option<Device>, StoreError> {
        self.device_where("phone_number = $1 AND deactivated_at IS NULL", phone_number)
    }

    fn device(&self, device_id: &str) -> Result<Option<Device>, StoreError> {
        self.device_where("device_id = $1", device_id)
    }

    fn active_device(&self, device_id: &str) -> Result<Option<Device>, StoreError> {
        self.device_where("device_id = $1 AND deactivated_at IS NULL", device_id)
    }

    fn active_device_secret_hash_or(
        &self,
        device_id: &str,
        decoy: &[u8; 32],
    ) -> Result<([u8; 32], bool), StoreError> {
        self.secret_hash_or(DEVICE_SECRET_HASH, device_id, decoy, "secret_sha256")
    }

    fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sessions::insert(&mut **self.connection()?, session)
    }

    fn insert_session_within(
        &self,
        session: &SessionRecord,
        max_running: u32,
        now: OffsetDateTime,
    ) -> Result<Stored, StoreError> {
        let (Some(device_id), None) = (&session.device_id, &session.completion) else {
            self.insert_session(session)?;
            return Ok(Stored::Stored);
        };
        self.transaction(|tx| sessions::insert_within(tx, device_id, session, max_running, now))
    }

    fn session_at(
        &self,
        session_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        sessions::at(&mut **self.connection()?, session_id, now)
    }

    fn running_sessions(
        &self,
        device_id: &str,
        now: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        sessions::running(&mut **self.connection()?, device_id, now, max)
    }

    fn sessions_of_national_id(
        &self,
        national_id: &str,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        sessions::of_national_id(&mut **self.connection()?, national_id, limit)
    }

    fn mark_delivered(&self, session_ids: &[&str], at: OffsetDateTime) -> Result<(), StoreError> {
        if session_ids.is_empty() {
            return Ok(());
        }
        sessions::mark_delivered(&mut **self.connection()?, session_ids, at)
    }

    fn complete_session(
        &self,
        session_id: &str,
        completion: &SessionCompletion,
    ) -> Result<bool, StoreError> {
        sessions::complete(&mut **self.connection()?, session_id, completion)
    }

    fn purge_sessions(
        &self,
        now: OffsetDateTime,
        complete_before: OffsetDateTime,
        batch: usize,
        max_batches: usize,
    ) -> Result<usize, StoreError> {
        let batch = rows::sql_limit(batch);
        let mut deleted = 0;
        for _ in 0..max_batches {
            // A connection per round, given back between rounds.
            let round =
                sessions::purge_round(&mut **self.connection()?, now, complete_before, batch)?;
            deleted += round.deleted;
            if !round.full {
                break;
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imza_store::StoreUrl;
    use imza_testenv::postgres::PgCluster;

    /// What PostgreSQL did running `sql` with `$1` = `key` and a decoy as `$2`.
    fn plan(client: &mut postgres::Client, sql: &str, key: &str) -> String {
        let decoy = &[0xd5u8; 32][..];
        client
            .query_typed(
                &format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}"),
                &[(&key, Type::TEXT), (&decoy, Type::BYTEA)],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn authentication_reads_the_stored_hash_by_an_index_only_scan() {
        let text = PgCluster::shared().database();
        let StoreUrl::Postgres(url) = text.parse().unwrap() else {
            unreachable!("the cluster gives postgres:// URLs")
        };
        drop(PgMobileStore::open(&url, Create::IfMissing).unwrap());
        let mut client = postgres::Client::connect(&text, postgres::NoTls).unwrap();
        // Enough rows that reading the table is no longer the cheaper plan, half the devices
        // deactivated; vacuumed, so that the visibility map lets the index answer alone.
        client
            .batch_execute(
                "INSERT INTO mss_relying_parties \
                 SELECT 'rp' || i, sha256(i::text::bytea), 0 FROM generate_series(1, 5000) i; \
                 INSERT INTO mss_devices (device_id, phone_number, national_id, secret_sha256, \
                 auth_ca, auth_der, sign_ca, sign_der, registered_at, deactivated_at) \
                 SELECT lpad(to_hex(i), 32, '0'), '+99450' || lpad(i::text, 7, '0'), '1AB2C3D', \
                 sha256(i::text::bytea), 'ca', '\\x30'::bytea, 'ca', '\\x30'::bytea, 0, \
                 CASE WHEN i % 2 = 0 THEN 1 END FROM generate_series(1, 5000) i",
            )
            .unwrap();
        for table in ["mss_relying_parties", "mss_devices"] {
            client
                .batch_execute(&format!("VACUUM ANALYZE {table}"))
                .unwrap();
        }
        let active = format!("{:0>32}", "1");
        for (sql, index, known, unknown) in [
            (
                RELYING_PARTY_KEY_HASH,
                "mss_relying_parties_key",
                "rp42",
                "nobody.az",
            ),
            (
                DEVICE_SECRET_HASH,
                "mss_devices_active_secret",
                active.as_str(),
                "ffffffffffffffffffffffffffffffff",
            ),
        ] {
            for key in [known, unknown] {
                let plan = plan(&mut client, sql, key);
                assert!(
                    plan.contains(&format!("Index Only Scan using {index}")),
                    "{key}: {plan}"
                );
                assert!(plan.contains("Heap Fetches: 0"), "{key}: {plan}");
            }
        }
    }
}
