//! The CA store on PostgreSQL, for several nodes on one database. Same tables and values as
//! the SQLite store (see `rows`); what differs is how the contract of [`CaStore`] is kept with
//! many writers:
//!
//! - Audit appends take a transaction-scoped advisory lock ([`AUDIT_LOCK`]) as the last lock
//!   of their transaction, then read the last entry and chain after it. The lock is held to
//!   commit, so the next appender reads this one's entries; since it is taken last, a holder
//!   never waits for a row another transaction holds, and there is no deadlock.
//! - Certificates are inserted before the lock, so issuers on several nodes sign and insert in
//!   parallel and queue only for the audit append and the commit.
//! - A revocation is `UPDATE … WHERE revoked_at IS NULL`: a second revoker waits for the
//!   first's row lock, then finds the row revoked and changes nothing (READ COMMITTED re-reads
//!   the row); only a transaction that changed a row appends an audit entry.
//! - Batches go in one statement each (`unnest` of arrays), and reads in one round trip
//!   (`query_typed`), so a call costs a handful of round trips whatever its size.

use postgres::types::{ToSql, Type};
use postgres::Transaction;
use time::OffsetDateTime;

use imza_core::crl::RevokedEntry;
use imza_store::postgres::{error as db_error, violated, Pool, PoolOptions};
use imza_store::{Create, PostgresUrl};

use super::rows::{self, CertificateRow, CertificateValues, CERTIFICATE_COLUMNS, CRL_COLUMNS};
use super::{
    CaRecord, CaStore, CertificateRecord, CertificateStatus, CrlRecord, Revocation, ServiceKind,
    ServiceRecord, ServiceRequest, StatusFilter, StoreError, SCHEMA_POSTGRES,
};
use crate::audit::{AuditEntry, AuditEvent};

/// The advisory lock key that serialises audit appends (any fixed number unique to imza).
const AUDIT_LOCK: i64 = 0x696d_7a61_6175_6474; // "imzaaudt"

/// A [`CaStore`] in a PostgreSQL database.
#[derive(Debug)]
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connects to the database at `url` and brings the CA schema up to date. With
    /// [`Create::No`] a database without it is `NotFound`, and nothing is created.
    pub fn open(url: &PostgresUrl, create: Create) -> Result<PgStore, StoreError> {
        PgStore::open_with(url, create, PoolOptions::default())
    }

    /// As [`PgStore::open`], with the pool's size and wait.
    pub fn open_with(
        url: &PostgresUrl,
        create: Create,
        options: PoolOptions,
    ) -> Result<PgStore, StoreError> {
        let pool = Pool::open(url, create, &[&SCHEMA_POSTGRES], options)?;
        Ok(PgStore { pool })
    }

    /// Runs `f` in one transaction and commits.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.write(f)
    }

    /// Runs one read statement and maps its rows.
    fn read<T>(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
        map: impl Fn(&postgres::Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut conn = self.pool.get()?;
        let rows = conn.query_prepared(sql, params).map_err(db_error)?;
        rows.iter().map(map).collect()
    }
}

/// Reads a column, a type mismatch being corrupt data.
fn get<'a, T: postgres::types::FromSql<'a>>(
    row: &'a postgres::Row,
    i: usize,
) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("unreadable value: {e}")))
}

/// Appends `events` to the audit log inside `tx`, after taking the audit lock (the last lock
/// `tx` takes).
fn append_audit(tx: &mut Transaction<'_>, events: &[AuditEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    tx.query_typed(
        "SELECT pg_advisory_xact_lock($1)",
        &[(&AUDIT_LOCK, Type::INT8)],
    )
    .map_err(db_error)?;
    let last = tx
        .query_typed_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
        .map_err(db_error)?;
    let mut prev = match last {
        Some(row) => Some((
            rows::to_u64(get(&row, 0)?, "audit sequence number")?,
            get::<String>(&row, 1)?,
        )),
        None => None,
    };
    let mut columns: [Vec<String>; 6] = Default::default();
    let mut seqs = Vec::with_capacity(events.len());
    for event in events {
        let entry = AuditEntry::chain(prev.as_ref().map(|(s, h)| (*s, h.as_str())), event);
        seqs.push(rows::to_i64(entry.seq, "audit sequence number")?);
        prev = Some((entry.seq, entry.hash.clone()));
        for (column, value) in columns.iter_mut().zip([
            entry.at,
            entry.action,
            entry.ca,
            entry.details,
            entry.prev_hash,
            entry.hash,
        ]) {
            column.push(value);
        }
    }
    let [at, action, ca, details, prev_hash, hash] = &columns;
    tx.query_typed(
        "INSERT INTO audit (seq, at, action, ca, details, prev_hash, hash) \
         SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7)",
        &[
            (&seqs, Type::INT8_ARRAY),
            (at, Type::TEXT_ARRAY),
            (action, Type::TEXT_ARRAY),
            (ca, Type::TEXT_ARRAY),
            (details, Type::TEXT_ARRAY),
            (prev_hash, Type::TEXT_ARRAY),
            (hash, Type::TEXT_ARRAY),
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Inserts `certs` in one statement, in order (their ids follow it).
fn insert_certificates(
    tx: &mut Transaction<'_>,
    certs: &[CertificateRecord],
) -> Result<(), StoreError> {
    let Some(first) = certs.first() else {
        return Ok(());
    };
    let values: Vec<CertificateValues> = certs.iter().map(CertificateValues::of).collect();
    let ca: Vec<&str> = certs.iter().map(|c| c.ca.as_str()).collect();
    let serial: Vec<&str> = values.iter().map(|v| v.serial.as_str()).collect();
    let subject: Vec<&str> = certs.iter().map(|c| c.subject.as_str()).collect();
    let profile: Vec<&str> = certs.iter().map(|c| c.profile.as_str()).collect();
    let not_before: Vec<i64> = values.iter().map(|v| v.not_before).collect();
    let not_after: Vec<i64> = values.iter().map(|v| v.not_after).collect();
    let issued_at: Vec<i64> = values.iter().map(|v| v.issued_at).collect();
    let der: Vec<&[u8]> = certs.iter().map(|c| c.der.as_slice()).collect();
    let revoked_at: Vec<Option<i64>> = values.iter().map(|v| v.revoked_at).collect();
    let reason: Vec<Option<i32>> = values
        .iter()
        .map(|v| v.reason.and_then(|r| i32::try_from(r).ok()))
        .collect();
    let invalidity: Vec<Option<i64>> = values.iter().map(|v| v.invalidity_date).collect();
    let crl_shard: Vec<Option<i32>> = values
        .iter()
        .map(|v| v.crl_shard.map(int4).transpose())
        .collect::<Result<_, _>>()?;
    let subject_serial_number: Vec<Option<&str>> = values
        .iter()
        .map(|v| v.subject_serial_number.as_deref())
        .collect();
    tx.query_typed(
        "INSERT INTO certificates (ca, serial, subject, profile, not_before, not_after, \
         issued_at, der, revoked_at, reason, invalidity_date, crl_shard, \
         subject_serial_number) \
         SELECT ca, serial, subject, profile, not_before, not_after, issued_at, der, \
         revoked_at, reason, invalidity_date, crl_shard, subject_serial_number \
         FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) WITH ORDINALITY \
         AS u (ca, serial, subject, profile, not_before, not_after, issued_at, der, \
         revoked_at, reason, invalidity_date, crl_shard, subject_serial_number, n) \
         ORDER BY n",
        &[
            (&ca, Type::TEXT_ARRAY),
            (&serial, Type::TEXT_ARRAY),
            (&subject, Type::TEXT_ARRAY),
            (&profile, Type::TEXT_ARRAY),
            (&not_before, Type::INT8_ARRAY),
            (&not_after, Type::INT8_ARRAY),
            (&issued_at, Type::INT8_ARRAY),
            (&der, Type::BYTEA_ARRAY),
            (&revoked_at, Type::INT8_ARRAY),
            (&reason, Type::INT4_ARRAY),
            (&invalidity, Type::INT8_ARRAY),
            (&crl_shard, Type::INT4_ARRAY),
            (&subject_serial_number, Type::TEXT_ARRAY),
        ],
    )
    .map_err(|e| {
        // Name the serial that collided, from the server's detail ("Key (ca, serial)=(…)").
        let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or("");
        let culprit = certs
            .iter()
            .find(|c| detail.contains(&format!("({}, {})", c.ca, hex::encode_upper(&c.serial))))
            .unwrap_or(first);
        super::certificate_insert_error(violated(&e), db_error(e), culprit)
    })?;
    Ok(())
}

/// Inserts a service's certificate and row and appends `audits`, inside `tx`.
fn insert_service(
    tx: &mut Transaction<'_>,
    service: &ServiceRecord,
    certificate: &CertificateRecord,
    audits: &[AuditEvent],
) -> Result<(), StoreError> {
    let key_ref = rows::key_to_json(&service.key)?;
    let serial = hex::encode_upper(&service.serial);
    let created_at = service.created_at.unix_timestamp();
    insert_certificates(tx, std::slice::from_ref(certificate))?;
    tx.query_typed(
        "INSERT INTO services (kind, name, ca, serial, key_ref, policy, created_at, node) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            (&service.kind.as_str(), Type::TEXT),
            (&service.name, Type::TEXT),
            (&service.ca, Type::TEXT),
            (&serial, Type::TEXT),
            (&key_ref, Type::TEXT),
            (&service.policy, Type::TEXT),
            (&created_at, Type::INT8),
            (&service.node, Type::TEXT),
        ],
    )
    .map_err(|e| super::service_insert_error(violated(&e), db_error(e), service))?;
    append_audit(tx, audits)
}

fn certificate_at(row: &postgres::Row, at: usize) -> Result<CertificateRecord, StoreError> {
    CertificateRow {
        ca: get(row, at)?,
        serial: get(row, at + 1)?,
        subject: get(row, at + 2)?,
        profile: get(row, at + 3)?,
        not_before: get(row, at + 4)?,
        not_after: get(row, at + 5)?,
        issued_at: get(row, at + 6)?,
        der: get(row, at + 7)?,
        revoked_at: get(row, at + 8)?,
        reason: get::<Option<i32>>(row, at + 9)?.map(i64::from),
        invalidity_date: get(row, at + 10)?,
        crl_shard: get::<Option<i32>>(row, at + 11)?.map(i64::from),
    }
    .into_record()
}

fn ca_from_row(row: &postgres::Row) -> Result<CaRecord, StoreError> {
    let key_ref: String = get(row, 3)?;
    rows::ca_record(
        get(row, 0)?,
        get(row, 1)?,
        get(row, 2)?,
        &key_ref,
        get(row, 4)?,
        get(row, 5)?,
        get::<i32>(row, 6)?.into(),
    )
}

fn crl_from_row(row: &postgres::Row) -> Result<CrlRecord, StoreError> {
    rows::crl_record(
        get(row, 0)?,
        get::<Option<i32>>(row, 1)?.map(i64::from),
        get(row, 2)?,
        get(row, 3)?,
        get(row, 4)?,
        get(row, 5)?,
    )
}

/// A value for an INTEGER column (shard numbers and counts).
fn int4(value: i64) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::Invalid(format!("{value} is too large to store")))
}

/// Appends the CRL entries `sql` (selecting serial, revoked_at, reason, invalidity_date)
/// finds to `out`, streamed: a million-entry list is not held twice (rows and entries).
fn read_revoked(
    pool: &Pool,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
    out: &mut Vec<RevokedEntry>,
) -> Result<(), StoreError> {
    let mut conn = pool.get()?;
    let mut rows = conn
        .query_typed_raw(sql, params.iter().map(|(value, ty)| (*value, ty.clone())))
        .map_err(db_error)?;
    while let Some(row) =
        postgres::fallible_iterator::FallibleIterator::next(&mut rows).map_err(db_error)?
    {
        out.push(rows::revoked_entry(
            get::<&str>(&row, 0)?,
            get(&row, 1)?,
            get::<Option<i32>>(&row, 2)?.map(i64::from),
            get(&row, 3)?,
        )?);
    }
    Ok(())
}

impl CaStore for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    fn create_ca(
        &self,
        ca: &CaRecord,
        issued_by_parent: Option<&CertificateRecord>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        rows::check_issued_by_parent(ca, issued_by_parent)?;
        let key_ref = rows::key_to_json(&ca.key)?;
        let created_at = ca.created_at.unix_timestamp();
        let crl_shards = int4(ca.crl_shards.into())?;
        self.write(|tx| {
            tx.query_typed(
                "INSERT INTO cas (name, parent, certificate, key_ref, base_url, created_at, \
                 crl_shards) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    (&ca.name, Type::TEXT),
                    (&ca.parent, Type::TEXT),
                    (&ca.certificate, Type::BYTEA),
                    (&key_ref, Type::TEXT),
                    (&ca.base_url, Type::TEXT),
                    (&created_at, Type::INT8),
                    (&crl_shards, Type::INT4),
                ],
            )
            .map_err(|e| super::ca_insert_error(violated(&e), db_error(e), ca))?;
            insert_certificates(
                tx,
                issued_by_parent
                    .map(std::slice::from_ref)
                    .unwrap_or_default(),
            )?;
            append_audit(tx, std::slice::from_ref(audit))
        })
    }

    fn ca(&self, name: &str) -> Result<Option<CaRecord>, StoreError> {
        let sql = format!("SELECT {} FROM cas WHERE name = $1", rows::CA_COLUMNS);
        Ok(self.read(&sql, &[(&name, Type::TEXT)], ca_from_row)?.pop())
    }

    fn cas(&self) -> Result<Vec<CaRecord>, StoreError> {
        let sql = format!("SELECT {} FROM cas ORDER BY seq", rows::CA_COLUMNS);
        self.read(&sql, &[], ca_from_row)
    }

    fn insert_certificates(
        &self,
        certificates: &[CertificateRecord],
        audits: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            insert_certificates(tx, certificates)?;
            append_audit(tx, audits)
        })
    }

    fn certificate(
        &self,
        ca: &str,
        serial: &[u8],
    ) -> Result<Option<CertificateRecord>, StoreError> {
        let sql =
            format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE ca = $1 AND serial = $2");
        let serial = hex::encode_upper(serial);
        Ok(self
            .read(&sql, &[(&ca, Type::TEXT), (&serial, Type::TEXT)], |r| {
                certificate_at(r, 0)
            })?
            .pop())
    }

    fn certificates_of_subject_serial_number(
        &self,
        serial_number: &str,
        limit: usize,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let sql = format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE subject_serial_number = $1 \
             ORDER BY not_after, id LIMIT $2"
        );
        let limit = rows::sql_limit(limit);
        let found = self.read(
            &sql,
            &[(&serial_number, Type::TEXT), (&limit, Type::INT8)],
            |r| certificate_at(r, 0),
        )?;
        Ok(found
            .into_iter()
            .filter(|c| super::has_subject_serial_number(c, serial_number))
            .collect())
    }

    fn certificates_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
        after: Option<super::ExpiryCursor<'_>>,
        limit: usize,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let sql = super::certificates_expiring_sql("$", after.is_some());
        let (from, until, limit) = (
            from.unix_timestamp(),
            until.unix_timestamp(),
            rows::sql_limit(limit),
        );
        match after {
            Some(c) => {
                let (not_after, serial) =
                    (c.not_after.unix_timestamp(), hex::encode_upper(c.serial));
                self.read(
                    &sql,
                    &[
                        (&from, Type::INT8),
                        (&until, Type::INT8),
                        (&limit, Type::INT8),
                        (&not_after, Type::INT8),
                        (&c.ca, Type::TEXT),
                        (&serial, Type::TEXT),
                    ],
                    |r| certificate_at(r, 0),
                )
            }
            None => self.read(
                &sql,
                &[
                    (&from, Type::INT8),
                    (&until, Type::INT8),
                    (&limit, Type::INT8),
                ],
                |r| certificate_at(r, 0),
            ),
        }
    }

    fn certificates(
        &self,
        ca: &str,
        filter: StatusFilter,
        limit: usize,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let (condition, now) = super::filter_condition(filter, "$3");
        let sql = format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE ca = $1 {condition} \
             ORDER BY id LIMIT $2"
        );
        let limit = rows::sql_limit(limit);
        match now {
            Some(now) => self.read(
                &sql,
                &[(&ca, Type::TEXT), (&limit, Type::INT8), (&now, Type::INT8)],
                |r| certificate_at(r, 0),
            ),
            None => self.read(&sql, &[(&ca, Type::TEXT), (&limit, Type::INT8)], |r| {
                certificate_at(r, 0)
            }),
        }
    }

    fn revoke(
        &self,
        ca: &str,
        serial: &[u8],
        revocation: &Revocation,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let serial_hex = hex::encode_upper(serial);
        let (revoked_at, reason, invalidity) = super::revocation_values(revocation);
        let reason = i32::try_from(reason)
            .map_err(|_| StoreError::Invalid(format!("revocation reason code {reason}")))?;
        self.write(|tx| {
            let changed = tx
                .query_typed(
                    "UPDATE certificates SET revoked_at = $3, reason = $4, invalidity_date = $5 \
                     WHERE ca = $1 AND serial = $2 AND revoked_at IS NULL RETURNING 1",
                    &[
                        (&ca, Type::TEXT),
                        (&serial_hex, Type::TEXT),
                        (&revoked_at, Type::INT8),
                        (&reason, Type::INT4),
                        (&invalidity, Type::INT8),
                    ],
                )
                .map_err(db_error)?
                .len();
            if changed == 0 {
                let current = tx
                    .query_typed_opt(
                        "SELECT revoked_at FROM certificates WHERE ca = $1 AND serial = $2",
                        &[(&ca, Type::TEXT), (&serial_hex, Type::TEXT)],
                    )
                    .map_err(db_error)?
                    .map(|row| get::<Option<i64>>(&row, 0))
                    .transpose()?;
                return Err(super::not_revoked(ca, &serial_hex, current)?);
            }
            append_audit(tx, std::slice::from_ref(audit))
        })
    }

    fn revoked(&self, ca: &str) -> Result<Vec<RevokedEntry>, StoreError> {
        let mut out = Vec::new();
        read_revoked(
            &self.pool,
            "SELECT serial, revoked_at, reason, invalidity_date FROM certificates \
             WHERE ca = $1 AND revoked_at IS NOT NULL",
            &[(&ca, Type::TEXT)],
            &mut out,
        )?;
        Ok(out)
    }

    fn revoked_in_shard(&self, ca: &str, shard: u32) -> Result<Vec<RevokedEntry>, StoreError> {
        let shard = int4(shard.into())?;
        let mut out = Vec::new();
        // One range of the partial index `certificates_revoked_in_shard`.
        read_revoked(
            &self.pool,
            "SELECT serial, revoked_at, reason, invalidity_date FROM certificates \
             WHERE ca = $1 AND crl_shard = $2 AND revoked_at IS NOT NULL",
            &[(&ca, Type::TEXT), (&shard, Type::INT4)],
            &mut out,
        )?;
        Ok(out)
    }

    fn last_crl_number(&self, ca: &str) -> Result<Option<u64>, StoreError> {
        let number = self.read(
            "SELECT MAX(number) FROM crls WHERE ca = $1",
            &[(&ca, Type::TEXT)],
            |r| get::<Option<i64>>(r, 0),
        )?;
        number
            .into_iter()
            .flatten()
            .next()
            .map(|n| rows::to_u64(n, "CRL number"))
            .transpose()
    }

    fn insert_crl(&self, crl: &CrlRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        self.insert_crls(std::slice::from_ref(crl), std::slice::from_ref(audit))
    }

    fn insert_crls(&self, crls: &[CrlRecord], audits: &[AuditEvent]) -> Result<(), StoreError> {
        let Some(first) = crls.first() else {
            return self.write(|tx| append_audit(tx, audits));
        };
        let ca: Vec<&str> = crls.iter().map(|c| c.ca.as_str()).collect();
        let shard: Vec<Option<i32>> = crls
            .iter()
            .map(|c| c.shard.map(|s| int4(s.into())).transpose())
            .collect::<Result<_, _>>()?;
        let number: Vec<i64> = crls
            .iter()
            .map(|c| rows::to_i64(c.number, "CRL number"))
            .collect::<Result<_, _>>()?;
        let this_update: Vec<i64> = crls
            .iter()
            .map(|c| c.this_update.unix_timestamp())
            .collect();
        let next_update: Vec<i64> = crls
            .iter()
            .map(|c| c.next_update.unix_timestamp())
            .collect();
        let der: Vec<&[u8]> = crls.iter().map(|c| c.der.as_slice()).collect();
        self.write(|tx| {
            tx.query_typed(
                "INSERT INTO crls (ca, shard, number, this_update, next_update, der) \
                 SELECT * FROM unnest($1, $2, $3, $4, $5, $6)",
                &[
                    (&ca, Type::TEXT_ARRAY),
                    (&shard, Type::INT4_ARRAY),
                    (&number, Type::INT8_ARRAY),
                    (&this_update, Type::INT8_ARRAY),
                    (&next_update, Type::INT8_ARRAY),
                    (&der, Type::BYTEA_ARRAY),
                ],
            )
            .map_err(|e| {
                // Name the CRL that collided, from the server's detail ("Key (ca, number)=(…)").
                let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or("");
                let culprit = crls
                    .iter()
                    .find(|c| detail.contains(&format!("({}, {})", c.ca, c.number)))
                    .unwrap_or(first);
                super::crl_insert_error(violated(&e), db_error(e), culprit)
            })?;
            append_audit(tx, audits)
        })
    }

    fn latest_crl(&self, ca: &str) -> Result<Option<CrlRecord>, StoreError> {
        let sql = format!(
            "SELECT {CRL_COLUMNS} FROM crls WHERE ca = $1 AND shard IS NULL \
             ORDER BY number DESC LIMIT 1"
        );
        Ok(self.read(&sql, &[(&ca, Type::TEXT)], crl_from_row)?.pop())
    }

    fn latest_shard_crl(&self, ca: &str, shard: u32) -> Result<Option<CrlRecord>, StoreError> {
        let shard = int4(shard.into())?;
        let sql = format!(
            "SELECT {CRL_COLUMNS} FROM crls WHERE ca = $1 AND shard = $2 \
             ORDER BY number DESC LIMIT 1"
        );
        Ok(self
            .read(
                &sql,
                &[(&ca, Type::TEXT), (&shard, Type::INT4)],
                crl_from_row,
            )?
            .pop())
    }

    fn shard_crl_validity(
        &self,
        ca: &str,
        shards: u32,
    ) -> Result<Vec<Option<(OffsetDateTime, OffsetDateTime)>>, StoreError> {
        super::check_shard_count(shards)?;
        let Some(last) = shards.checked_sub(1) else {
            return Ok(Vec::new());
        };
        let last = int4(last.into())?;
        // One round trip: an index seek per shard (crls_of_shard).
        self.read(
            "SELECT c.this_update, c.next_update FROM generate_series(0, $2) AS s (shard) \
             LEFT JOIN LATERAL (SELECT this_update, next_update FROM crls \
             WHERE ca = $1 AND crls.shard = s.shard ORDER BY number DESC LIMIT 1) c ON true \
             ORDER BY s.shard",
            &[(&ca, Type::TEXT), (&last, Type::INT4)],
            |row| match (get::<Option<i64>>(row, 0)?, get::<Option<i64>>(row, 1)?) {
                (Some(this_update), Some(next_update)) => {
                    rows::crl_validity((this_update, next_update)).map(Some)
                }
                _ => Ok(None),
            },
        )
    }

    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let limit = rows::sql_limit(limit);
        self.read(
            "SELECT seq, at, action, ca, details, prev_hash, hash FROM audit \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[(&after, Type::INT8), (&limit, Type::INT8)],
            |row| {
                rows::audit_entry(
                    get(row, 0)?,
                    get(row, 1)?,
                    get(row, 2)?,
                    get(row, 3)?,
                    get(row, 4)?,
                    get(row, 5)?,
                    get(row, 6)?,
                )
            },
        )
    }

    fn status(&self, ca: &str, serial: &[u8]) -> Result<CertificateStatus, StoreError> {
        let serial_hex = hex::encode_upper(serial);
        let row = self
            .read(
                "SELECT revoked_at, reason FROM certificates WHERE ca = $1 AND serial = $2",
                &[(&ca, Type::TEXT), (&serial_hex, Type::TEXT)],
                |r| {
                    Ok((
                        get::<Option<i64>>(r, 0)?,
                        get::<Option<i32>>(r, 1)?.map(i64::from),
                    ))
                },
            )?
            .pop();
        rows::status_from(serial, row)
    }

    fn audit_head(&self) -> Result<u64, StoreError> {
        let seq = self.read("SELECT MAX(seq) FROM audit", &[], |r| {
            get::<Option<i64>>(r, 0)
        })?;
        seq.into_iter()
            .flatten()
            .next()
            .map_or(Ok(0), |s| rows::to_u64(s, "audit sequence number"))
    }

    fn insert_service(
        &self,
        service: &ServiceRecord,
        certificate: &CertificateRecord,
        audits: &[AuditEvent],
    ) -> Result<(), StoreError> {
        rows::check_service_certificate(service, certificate)?;
        self.write(|tx| insert_service(tx, service, certificate, audits))
    }

    fn insert_service_request(
        &self,
        request: &ServiceRequest,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError> {
        let key_ref = rows::key_to_json(&request.key)?;
        let requested_at = request.requested_at.unix_timestamp();
        self.write(|tx| {
            let row = tx
                .query_typed_one(
                    "INSERT INTO service_requests (kind, name, ca, node, csr, key_ref, \
                     requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[
                        (&request.kind.as_str(), Type::TEXT),
                        (&request.name, Type::TEXT),
                        (&request.ca, Type::TEXT),
                        (&request.node, Type::TEXT),
                        (&request.csr, Type::BYTEA),
                        (&key_ref, Type::TEXT),
                        (&requested_at, Type::INT8),
                    ],
                )
                .map_err(|e| super::request_insert_error(violated(&e), db_error(e), request))?;
            append_audit(tx, std::slice::from_ref(audit))?;
            rows::to_u64(get(&row, 0)?, "service request id")
        })
    }

    fn open_service_requests(&self, limit: usize) -> Result<Vec<ServiceRequest>, StoreError> {
        let sql = format!(
            "SELECT {} FROM service_requests \
             WHERE certified_serial IS NULL AND refused IS NULL ORDER BY id LIMIT $1",
            rows::REQUEST_COLUMNS
        );
        let limit = rows::sql_limit(limit);
        self.read(&sql, &[(&limit, Type::INT8)], |row| {
            rows::RequestRow {
                id: get(row, 0)?,
                kind: get(row, 1)?,
                name: get(row, 2)?,
                ca: get(row, 3)?,
                node: get(row, 4)?,
                csr: get(row, 5)?,
                key_ref: get(row, 6)?,
                requested_at: get(row, 7)?,
            }
            .into_request()
        })
    }

    fn certify_service_request(
        &self,
        id: u64,
        service: &ServiceRecord,
        certificate: &CertificateRecord,
        audits: &[AuditEvent],
    ) -> Result<(), StoreError> {
        rows::check_service_certificate(service, certificate)?;
        let request = rows::to_i64(id, "service request id")?;
        let serial = hex::encode_upper(&service.serial);
        self.write(|tx| {
            // A second certifier waits for this row's lock, then finds it closed.
            let closed = tx
                .query_typed(
                    "UPDATE service_requests SET certified_serial = $2 \
                     WHERE id = $1 AND certified_serial IS NULL AND refused IS NULL RETURNING 1",
                    &[(&request, Type::INT8), (&serial, Type::TEXT)],
                )
                .map_err(db_error)?
                .len();
            if closed == 0 {
                return Err(super::request_not_open(id));
            }
            insert_service(tx, service, certificate, audits)
        })
    }

    fn refuse_service_request(
        &self,
        id: u64,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let request = rows::to_i64(id, "service request id")?;
        self.write(|tx| {
            let closed = tx
                .query_typed(
                    "UPDATE service_requests SET refused = $2 \
                     WHERE id = $1 AND certified_serial IS NULL AND refused IS NULL RETURNING 1",
                    &[(&request, Type::INT8), (&reason, Type::TEXT)],
                )
                .map_err(db_error)?
                .len();
            if closed == 0 {
                return Err(super::request_not_open(id));
            }
            append_audit(tx, std::slice::from_ref(audit))
        })
    }

    fn services(
        &self,
        kind: ServiceKind,
        name: Option<&str>,
    ) -> Result<Vec<(ServiceRecord, CertificateRecord)>, StoreError> {
        let sql = format!(
            "SELECT s.name, s.ca, s.serial, s.key_ref, s.policy, s.created_at, s.node, {} \
             FROM services s JOIN certificates c ON c.ca = s.ca AND c.serial = s.serial \
             WHERE s.kind = $1 AND ($2::text IS NULL OR s.name = $2) \
             ORDER BY s.created_at, s.id",
            super::qualified_certificate_columns("c")
        );
        self.read(
            &sql,
            &[(&kind.as_str(), Type::TEXT), (&name, Type::TEXT)],
            |row| {
                let service = rows::ServiceRow {
                    name: get(row, 0)?,
                    ca: get(row, 1)?,
                    serial: get(row, 2)?,
                    key_ref: get(row, 3)?,
                    policy: get(row, 4)?,
                    created_at: get(row, 5)?,
                    node: get(row, 6)?,
                }
                .into_record(kind)?;
                Ok((service, certificate_at(row, 7)?))
            },
        )
    }
}
