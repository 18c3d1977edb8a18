//! The engine several nodes share: PostgreSQL through rust-postgres, with a pool of
//! connections (r2d2) per process. A broken connection (the server restarted, the network
//! dropped) is discarded and replaced on the next use, so a node recovers by itself; while
//! the server is away every call fails within the pool's wait with
//! [`StoreError::Unavailable`].
//!
//! The password comes from the URL (when it came from the environment or a configuration
//! file), `PGPASSWORD`, or the password file (libpq's conventions, see `pgpass`), and is in
//! no message: errors show the redacted URL and the server's words only.
//!
//! Reads a node answers often (an OCSP status) go through [`Client::query_prepared`]: the
//! server parses and plans each statement once per connection, not once per call.
//!
//! Transactions run at READ COMMITTED (PostgreSQL's default); a store that must serialise
//! writers (the audit chain) takes a transaction-scoped advisory lock or a row lock, as its
//! trait's contract says.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use postgres::{Row, Statement};
use postgres_native_tls::MakeTlsConnector;
use r2d2_postgres::PostgresConnectionManager;

use crate::url::PostgresUrl;
use crate::{Create, Migrations, StoreError, Violation};

/// A connection borrowed from the pool; dereferences to a [`Client`], and through it to a
/// [`postgres::Client`].
pub type Connection = r2d2::PooledConnection<Manager>;

/// Most statements one connection keeps prepared; beyond, statements run unprepared.
const MAX_PREPARED: usize = 256;

/// A connection of the pool: a rust-postgres client and the statements prepared on it.
pub struct Client {
    client: postgres::Client,
    prepared: HashMap<String, Statement>,
}

impl Deref for Client {
    type Target = postgres::Client;

    fn deref(&self) -> &postgres::Client {
        &self.client
    }
}

impl DerefMut for Client {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

impl Client {
    /// Runs `sql` with `params` (values and their types), prepared on this connection the
    /// first time and reused after. For statements of a fixed text: each text is kept.
    pub fn query_prepared(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(value, _)| *value).collect();
        if let Some(statement) = self.prepared.get(sql) {
            return self.client.query(statement, &values);
        }
        if self.prepared.len() >= MAX_PREPARED {
            return self.client.query_typed(sql, params);
        }
        let types: Vec<Type> = params.iter().map(|(_, ty)| ty.clone()).collect();
        let statement = self.client.prepare_typed(sql, &types)?;
        let rows = self.client.query(&statement, &values)?;
        self.prepared.insert(sql.to_owned(), statement);
        Ok(rows)
    }
}

/// r2d2_postgres's connection manager, its connections wrapped in a [`Client`].
pub struct Manager(PostgresConnectionManager<MakeTlsConnector>);

impl r2d2::ManageConnection for Manager {
    type Connection = Client;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Client, postgres::Error> {
        Ok(Client {
            client: self.0.connect()?,
            prepared: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Client) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Client) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

/// How many connections a process keeps and how long a caller waits for one.
#[derive(Clone, Copy, Debug)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// How long a call waits for a connection (and a new connection for the server) before
    /// it fails as unavailable.
    pub wait: Duration,
}

impl Default for PoolOptions {
    fn default() -> PoolOptions {
        PoolOptions {
            max_connections: 16,
            wait: Duration::from_secs(3),
        }
    }
}

/// The connections of one process to one database. Clones share the connections.
#[derive(Clone)]
pub struct Pool {
    pool: Arc<Connections>,
    url: PostgresUrl,
}

/// The r2d2 pool, closed safely when the last [`Pool`] goes.
struct Connections(Option<r2d2::Pool<Manager>>);

impl Drop for Connections {
    /// Closing a rust-postgres connection blocks on a runtime of the client's own, which
    /// panics on a thread that drives Tokio — where a server's last handle on the store goes
    /// when it shuts down. There the connections are closed on a thread of their own.
    fn drop(&mut self) {
        let Some(pool) = self.0.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let closing = std::thread::Builder::new()
            .name("imza-store-close".into())
            .spawn(move || drop(pool));
        // Without a thread to close them on, the connections end with the process.
        if let Ok(thread) = closing {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("postgres::Pool")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Connects to `url` and brings each of `schemas` up to date. The first connection is
    /// made directly, so an unreachable server or a refused login is reported at once and in
    /// the server's words. With [`Create::No`] a database without the first schema's tables is
    /// `NotFound`, and nothing is created.
    pub fn open(
        url: &PostgresUrl,
        create: Create,
        schemas: &[&Migrations],
        options: PoolOptions,
    ) -> Result<Pool, StoreError> {
        let (config, tls) = client_config(url, options.wait)?;
        let mut first = config
            .connect(tls.clone())
            .map_err(|e| in_context(error(e), url))?;
        if create == Create::No {
            if let Some(schema) = schemas.first() {
                let exists: bool = first
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&schema.table])
                    .map_err(error)?
                    .get(0);
                if !exists {
                    return Err(StoreError::NotFound(format!(
                        "no imza store in {url} (database {} has no {} tables)",
                        url.database(),
                        schema.what
                    )));
                }
            }
        }
        for schema in schemas {
            migrate(&mut first, schema)?;
        }
        drop(first);
        let manager = Manager(PostgresConnectionManager::new(config, tls));
        let pool = r2d2::Pool::builder()
            .max_size(options.max_connections.max(1))
            .min_idle(Some(0))
            .connection_timeout(options.wait)
            // A checkout does not ping the server (a round trip per call); a connection that
            // failed is seen as broken (`is_closed`) and replaced.
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        Ok(Pool {
            pool: Arc::new(Connections(Some(pool))),
            url: url.clone(),
        })
    }

    /// A connection, waiting at most the pool's wait.
    pub fn get(&self) -> Result<Connection, StoreError> {
        let Some(pool) = &self.pool.0 else {
            return Err(StoreError::Unavailable(format!(
                "{}: the pool is closed",
                self.url
            )));
        };
        pool.get().map_err(|e| {
            StoreError::Unavailable(format!("{}: no connection to the database: {e}", self.url))
        })
    }

    /// Runs `f` in one transaction on a pooled connection and commits; on an error nothing of
    /// it stays (the transaction is rolled back when dropped).
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.get()?;
        let mut tx = conn.transaction().map_err(error)?;
        let value = f(&mut tx)?;
        tx.commit().map_err(error)?;
        Ok(value)
    }

    /// The database, as it may be shown.
    pub fn url(&self) -> &PostgresUrl {
        &self.url
    }
}

/// One connection of its own to `url`, outside any pool, waiting at most `wait` for the
/// server: for work that holds one transaction from start to end (`imza store migrate`'s
/// copy). The password comes as for a [`Pool`]; an unreachable server or a refused login is
/// `Unavailable`, in the server's words.
pub fn connect(url: &PostgresUrl, wait: Duration) -> Result<postgres::Client, StoreError> {
    let (config, tls) = client_config(url, wait)?;
    config.connect(tls).map_err(|e| in_context(error(e), url))
}

/// The client configuration of `url` with its password completed (environment, password
/// file) and a connect timeout, and the TLS connector `sslmode` may ask for.
fn client_config(
    url: &PostgresUrl,
    wait: Duration,
) -> Result<(postgres::Config, MakeTlsConnector), StoreError> {
    let mut config = url.config.clone();
    if let Some(note) = crate::pgpass::complete(&mut config) {
        eprintln!("note: {note}");
    }
    config.connect_timeout(wait);
    let tls = native_tls::TlsConnector::new()
        .map_err(|e| StoreError::Backend(format!("cannot set up TLS: {e}")))?;
    Ok((config, MakeTlsConnector::new(tls)))
}

fn in_context(e: StoreError, url: &PostgresUrl) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!("{url}: {m}")),
        other => other,
    }
}

/// Applies the versions of `migrations` not applied yet, in one transaction under an
/// advisory lock (two nodes starting at once on a fresh database apply each version once).
/// A schema newer than the binary is refused before anything is touched. Inside a
/// transaction (`client` a [`postgres::Transaction`]) the versions are applied in a savepoint
/// and stay uncommitted with the rest of it (DDL is transactional in PostgreSQL).
pub fn migrate(
    client: &mut impl postgres::GenericClient,
    migrations: &Migrations,
) -> Result<(), StoreError> {
    let table = migrations.table;
    let mut tx = client.transaction().map_err(error)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("imza migrations {table}")],
    )
    .map_err(error)?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
             version    BIGINT PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )"
    ))
    .map_err(error)?;
    let newest_applied: Option<i64> = tx
        .query_one(&format!("SELECT MAX(version) FROM {table}"), &[])
        .map_err(error)?
        .get(0);
    if let Some(found) = newest_applied.filter(|v| *v > migrations.newest()) {
        return Err(migrations.newer_schema(found));
    }
    for (version, sql) in migrations.steps {
        if newest_applied.is_some_and(|applied| *version <= applied) {
            continue;
        }
        tx.batch_execute(sql).map_err(|e| {
            StoreError::Backend(format!(
                "{} schema migration {version} failed: {}",
                migrations.what,
                message(&e)
            ))
        })?;
        tx.execute(
            &format!("INSERT INTO {table} (version, applied_at) VALUES ($1, $2)"),
            &[version, &time::OffsetDateTime::now_utc().unix_timestamp()],
        )
        .map_err(error)?;
    }
    tx.commit().map_err(error)
}

/// Maps a PostgreSQL error: the server away, a refused login or a connection lost are
/// `Unavailable`; damaged data is `Corrupt`; the rest `Backend`. Constraint violations are
/// worded by the caller ([`violated`]).
pub fn error(e: postgres::Error) -> StoreError {
    let text = message(&e);
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection failed or was lost, or a value did not convert.
        return if e.is_closed() || is_io(&e) || text.contains("connect") {
            StoreError::Unavailable(text)
        } else {
            StoreError::Corrupt(format!("unreadable value: {text}"))
        };
    };
    let class = &code.code()[..2];
    if matches!(class, "08" | "28" | "53" | "57") {
        StoreError::Unavailable(text)
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        StoreError::Corrupt(text)
    } else {
        StoreError::Backend(text)
    }
}

/// The server's message without the client's "db error:" wrapping.
fn message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

fn is_io(e: &postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The integrity rule a refused statement broke, if that is why it was refused.
pub fn violated(e: &postgres::Error) -> Option<Violation> {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => Some(Violation::Unique),
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => Some(Violation::ForeignKey),
        _ => None,
    }
}
