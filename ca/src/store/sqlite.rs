//! The embedded store: one SQLite file (imza-store's engine: WAL, busy timeout, mode 0600)
//! with `synchronous=FULL`, so a commit is on disk before the CA hands out the certificate it
//! records. Each write is one `BEGIN IMMEDIATE` transaction — the file lock serialises every
//! writer, threads and processes alike — that also appends its audit entries, so the state
//! and the log commit together or not at all.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row};
use time::OffsetDateTime;

use imza_core::crl::RevokedEntry;
use imza_store::sqlite::{error as db_error, violated, Durability};
use imza_store::Create;

use super::rows::{self, CertificateRow, CertificateValues, CERTIFICATE_COLUMNS, CRL_COLUMNS};
use super::{
    CaRecord, CaStore, CertificateRecord, CertificateStatus, CrlRecord, Revocation, ServiceKind,
    ServiceRecord, ServiceRequest, StatusFilter, StoreError, SCHEMA_SQLITE,
};
use crate::audit::{AuditEntry, AuditEvent};

const INSERT_CERTIFICATE: &str = "INSERT INTO certificates (ca, serial, subject, profile, \
     not_before, not_after, issued_at, der, revoked_at, reason, invalidity_date, id, crl_shard, \
     subject_serial_number) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// A [`CaStore`] in one SQLite file.
pub struct SqliteStore {
    /// One connection; the mutex serialises this process's use and makes the store `Sync`.
    /// Other processes are serialised by SQLite's own locking (`BEGIN IMMEDIATE` + busy timeout).
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the existing store at `path` and brings its schema up to date. A missing file is
    /// `NotFound`, never created: creating a store is [`SqliteStore::open_or_create`]'s job.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, Create::No)
    }

    /// Opens the store at `path`, creating it (mode 0600) if missing, and brings its schema up
    /// to date.
    pub fn open_or_create(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, Create::IfMissing)
    }

    pub(super) fn open_with(path: &Path, create: Create) -> Result<SqliteStore, StoreError> {
        let mut conn = imza_store::sqlite::open(path, create, Durability::Full)?;
        imza_store::sqlite::migrate(&mut conn, &SCHEMA_SQLITE)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// The database file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held dropped its `Transaction`, which rolled back, so the
        // connection is still in a usable state.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one immediate (write-locked) transaction and commits.
    fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        imza_store::sqlite::write(&mut self.lock(), |tx| f(tx))
    }
}

/// Takes `n` values of the named sequence; returns the first.
fn next_ids(tx: &Connection, sequence: &str, n: usize) -> Result<i64, StoreError> {
    let n = rows::sql_limit(n);
    let last: i64 = tx
        .prepare_cached("UPDATE sequences SET value = value + ?2 WHERE name = ?1 RETURNING value")
        .and_then(|mut s| s.query_row(params![sequence, n], |r| r.get(0)))
        .map_err(db_error)?;
    Ok(last - n + 1)
}

/// Appends `events` to the audit log, chained after its current last entry, inside `tx`
/// (whose write lock keeps every other writer out until it commits).
fn append_audit(tx: &Connection, events: &[AuditEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let last: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db_error)?;
    let mut prev = match last {
        Some((seq, hash)) => Some((rows::to_u64(seq, "audit sequence number")?, hash)),
        None => None,
    };
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO audit (seq, at, action, ca, details, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(db_error)?;
    for event in events {
        let entry = AuditEntry::chain(prev.as_ref().map(|(s, h)| (*s, h.as_str())), event);
        insert
            .execute(params![
                rows::to_i64(entry.seq, "audit sequence number")?,
                entry.at,
                entry.action,
                entry.ca,
                entry.details,
                entry.prev_hash,
                entry.hash,
            ])
            .map_err(db_error)?;
        prev = Some((entry.seq, entry.hash));
    }
    Ok(())
}

fn insert_certificates(tx: &Connection, certs: &[CertificateRecord]) -> Result<(), StoreError> {
    if certs.is_empty() {
        return Ok(());
    }
    let first_id = next_ids(tx, "certificates", certs.len())?;
    let mut insert = tx.prepare_cached(INSERT_CERTIFICATE).map_err(db_error)?;
    for (id, c) in (first_id..).zip(certs) {
        let v = CertificateValues::of(c);
        insert
            .execute(params![
                c.ca,
                v.serial,
                c.subject,
                c.profile,
                v.not_before,
                v.not_after,
                v.issued_at,
                c.der,
                v.revoked_at,
                v.reason,
                v.invalidity_date,
                id,
                v.crl_shard,
                v.subject_serial_number,
            ])
            .map_err(|e| super::certificate_insert_error(violated(&e), db_error(e), c))?;
    }
    Ok(())
}

/// Inserts a service's certificate and row and appends `audits`, inside `tx`.
fn insert_service(
    tx: &Connection,
    service: &ServiceRecord,
    certificate: &CertificateRecord,
    audits: &[AuditEvent],
) -> Result<(), StoreError> {
    let key_ref = rows::key_to_json(&service.key)?;
    insert_certificates(tx, std::slice::from_ref(certificate))?;
    let id = next_ids(tx, "services", 1)?;
    tx.execute(
        "INSERT INTO services (kind, name, ca, serial, key_ref, policy, created_at, id, node) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            service.kind.as_str(),
            service.name,
            service.ca,
            hex::encode_upper(&service.serial),
            key_ref,
            service.policy,
            service.created_at.unix_timestamp(),
            id,
            service.node,
        ],
    )
    .map_err(|e| super::service_insert_error(violated(&e), db_error(e), service))?;
    append_audit(tx, audits)
}

/// Reads [`CERTIFICATE_COLUMNS`] starting at column `at` of `row`.
fn certificate_at(row: &Row<'_>, at: usize) -> Result<CertificateRecord, StoreError> {
    let read = || -> rusqlite::Result<CertificateRow> {
        Ok(CertificateRow {
            ca: row.get(at)?,
            serial: row.get(at + 1)?,
            subject: row.get(at + 2)?,
            profile: row.get(at + 3)?,
            not_before: row.get(at + 4)?,
            not_after: row.get(at + 5)?,
            issued_at: row.get(at + 6)?,
            der: row.get(at + 7)?,
            revoked_at: row.get(at + 8)?,
            reason: row.get(at + 9)?,
            invalidity_date: row.get(at + 10)?,
            crl_shard: row.get(at + 11)?,
        })
    };
    read().map_err(db_error)?.into_record()
}

/// Collects the rows of `stmt` run with `params` through `read`.
fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
    let mut rows = stmt.query(params).map_err(db_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        out.push(read(row)?);
    }
    Ok(out)
}

fn ca_from_row(row: &Row<'_>) -> Result<CaRecord, StoreError> {
    let key_ref: String = row.get(3).map_err(db_error)?;
    rows::ca_record(
        row.get(0).map_err(db_error)?,
        row.get(1).map_err(db_error)?,
        row.get(2).map_err(db_error)?,
        &key_ref,
        row.get(4).map_err(db_error)?,
        row.get(5).map_err(db_error)?,
        row.get(6).map_err(db_error)?,
    )
}

fn crl_from_row(row: &Row<'_>) -> Result<CrlRecord, StoreError> {
    rows::crl_record(
        row.get(0).map_err(db_error)?,
        row.get(1).map_err(db_error)?,
        row.get(2).map_err(db_error)?,
        row.get(3).map_err(db_error)?,
        row.get(4).map_err(db_error)?,
        row.get(5).map_err(db_error)?,
    )
}

/// Appends the CRL entries `sql` (selecting serial, revoked_at, reason, invalidity_date)
/// finds to `out`.
fn read_revoked(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    out: &mut Vec<RevokedEntry>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
    let mut rows = stmt.query(params).map_err(db_error)?;
    while let Some(row) = rows.next().map_err(db_error)? {
        // Borrow the text in place: no String per row on a million-row CRL.
        let serial = row
            .get_ref(0)
            .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
            .map_err(db_error)?;
        out.push(rows::revoked_entry(
            serial,
            row.get(1).map_err(db_error)?,
            row.get(2).map_err(db_error)?,
            row.get(3).map_err(db_error)?,
        )?);
    }
    Ok(())
}

impl CaStore for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    fn create_ca(
        &self,
        ca: &CaRecord,
        issued_by_parent: Option<&CertificateRecord>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        rows::check_issued_by_parent(ca, issued_by_parent)?;
        let key_ref = rows::key_to_json(&ca.key)?;
        self.write(|tx| {
            let seq = next_ids(tx, "cas", 1)?;
            tx.execute(
                "INSERT INTO cas (name, parent, certificate, key_ref, base_url, created_at, seq, \
                 crl_shards) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    ca.name,
                    ca.parent,
                    ca.certificate,
                    key_ref,
                    ca.base_url,
                    ca.created_at.unix_timestamp(),
                    seq,
                    ca.crl_shards,
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
        let conn = self.lock();
        let sql = format!("SELECT {} FROM cas WHERE name = ?1", rows::CA_COLUMNS);
        Ok(collect(&conn, &sql, [name], ca_from_row)?.pop())
    }

    fn cas(&self) -> Result<Vec<CaRecord>, StoreError> {
        let conn = self.lock();
        let sql = format!("SELECT {} FROM cas ORDER BY seq", rows::CA_COLUMNS);
        collect(&conn, &sql, [], ca_from_row)
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
        let conn = self.lock();
        let sql =
            format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE ca = ?1 AND serial = ?2");
        let found = collect(&conn, &sql, params![ca, hex::encode_upper(serial)], |r| {
            certificate_at(r, 0)
        })?;
        Ok(found.into_iter().next())
    }

    fn certificates_of_subject_serial_number(
        &self,
        serial_number: &str,
        limit: usize,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let sql = format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE subject_serial_number = ?1 \
             ORDER BY not_after, id LIMIT ?2"
        );
        let found = collect(
            &self.lock(),
            &sql,
            params![serial_number, rows::sql_limit(limit)],
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
        let sql = super::certificates_expiring_sql("?", after.is_some());
        let (from, until, limit) = (
            from.unix_timestamp(),
            until.unix_timestamp(),
            rows::sql_limit(limit),
        );
        let conn = self.lock();
        match after {
            Some(c) => collect(
                &conn,
                &sql,
                params![
                    from,
                    until,
                    limit,
                    c.not_after.unix_timestamp(),
                    c.ca,
                    hex::encode_upper(c.serial)
                ],
                |r| certificate_at(r, 0),
            ),
            None => collect(&conn, &sql, params![from, until, limit], |r| {
                certificate_at(r, 0)
            }),
        }
    }

    fn certificates(
        &self,
        ca: &str,
        filter: StatusFilter,
        limit: usize,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let (condition, now) = super::filter_condition(filter, "?3");
        let sql = format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE ca = ?1 {condition} \
             ORDER BY id LIMIT ?2"
        );
        let conn = self.lock();
        let limit = rows::sql_limit(limit);
        match now {
            Some(now) => collect(&conn, &sql, params![ca, limit, now], |r| {
                certificate_at(r, 0)
            }),
            None => collect(&conn, &sql, params![ca, limit], |r| certificate_at(r, 0)),
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
        let values = super::revocation_values(revocation);
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE certificates SET revoked_at = ?3, reason = ?4, invalidity_date = ?5 \
                     WHERE ca = ?1 AND serial = ?2 AND revoked_at IS NULL",
                )
                .and_then(|mut s| s.execute(params![ca, serial_hex, values.0, values.1, values.2]))
                .map_err(db_error)?;
            if changed == 0 {
                // Nothing was revoked: say why, and write no audit entry.
                let current: Option<Option<i64>> = tx
                    .prepare_cached(
                        "SELECT revoked_at FROM certificates WHERE ca = ?1 AND serial = ?2",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![ca, serial_hex], |r| r.get(0))
                            .optional()
                    })
                    .map_err(db_error)?;
                return Err(super::not_revoked(ca, &serial_hex, current)?);
            }
            append_audit(tx, std::slice::from_ref(audit))
        })
    }

    fn revoked(&self, ca: &str) -> Result<Vec<RevokedEntry>, StoreError> {
        let conn = self.lock();
        // Both statements read through the partial index `certificates_revoked`.
        let count: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM certificates WHERE ca = ?1 AND revoked_at IS NOT NULL",
            )
            .and_then(|mut s| s.query_row([ca], |r| r.get(0)))
            .map_err(db_error)?;
        let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        read_revoked(
            &conn,
            "SELECT serial, revoked_at, reason, invalidity_date FROM certificates \
             WHERE ca = ?1 AND revoked_at IS NOT NULL",
            params![ca],
            &mut out,
        )?;
        Ok(out)
    }

    fn revoked_in_shard(&self, ca: &str, shard: u32) -> Result<Vec<RevokedEntry>, StoreError> {
        let conn = self.lock();
        // One range of the partial index `certificates_revoked_in_shard`.
        let mut out = Vec::new();
        read_revoked(
            &conn,
            "SELECT serial, revoked_at, reason, invalidity_date FROM certificates \
             WHERE ca = ?1 AND crl_shard = ?2 AND revoked_at IS NOT NULL",
            params![ca, shard],
            &mut out,
        )?;
        Ok(out)
    }

    fn last_crl_number(&self, ca: &str) -> Result<Option<u64>, StoreError> {
        let conn = self.lock();
        let number: Option<i64> = conn
            .prepare_cached("SELECT MAX(number) FROM crls WHERE ca = ?1")
            .and_then(|mut s| s.query_row([ca], |r| r.get(0)))
            .map_err(db_error)?;
        number.map(|n| rows::to_u64(n, "CRL number")).transpose()
    }

    fn insert_crl(&self, crl: &CrlRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        self.insert_crls(std::slice::from_ref(crl), std::slice::from_ref(audit))
    }

    fn insert_crls(&self, crls: &[CrlRecord], audits: &[AuditEvent]) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO crls (ca, shard, number, this_update, next_update, der) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(db_error)?;
            for crl in crls {
                insert
                    .execute(params![
                        crl.ca,
                        crl.shard,
                        rows::to_i64(crl.number, "CRL number")?,
                        crl.this_update.unix_timestamp(),
                        crl.next_update.unix_timestamp(),
                        crl.der,
                    ])
                    .map_err(|e| super::crl_insert_error(violated(&e), db_error(e), crl))?;
            }
            append_audit(tx, audits)
        })
    }

    fn latest_crl(&self, ca: &str) -> Result<Option<CrlRecord>, StoreError> {
        let sql = format!(
            "SELECT {CRL_COLUMNS} FROM crls WHERE ca = ?1 AND shard IS NULL \
             ORDER BY number DESC LIMIT 1"
        );
        let conn = self.lock();
        Ok(collect(&conn, &sql, [ca], crl_from_row)?.pop())
    }

    fn latest_shard_crl(&self, ca: &str, shard: u32) -> Result<Option<CrlRecord>, StoreError> {
        let sql = format!(
            "SELECT {CRL_COLUMNS} FROM crls WHERE ca = ?1 AND shard = ?2 \
             ORDER BY number DESC LIMIT 1"
        );
        let conn = self.lock();
        Ok(collect(&conn, &sql, params![ca, shard], crl_from_row)?.pop())
    }

    fn shard_crl_validity(
        &self,
        ca: &str,
        shards: u32,
    ) -> Result<Vec<Option<(OffsetDateTime, OffsetDateTime)>>, StoreError> {
        super::check_shard_count(shards)?;
        let conn = self.lock();
        let mut latest = conn
            .prepare_cached(
                "SELECT this_update, next_update FROM crls WHERE ca = ?1 AND shard = ?2 \
                 ORDER BY number DESC LIMIT 1",
            )
            .map_err(db_error)?;
        (0..shards)
            .map(|shard| {
                let times: Option<(i64, i64)> = latest
                    .query_row(params![ca, shard], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(db_error)?;
                times.map(rows::crl_validity).transpose()
            })
            .collect()
    }

    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        // Past i64::MAX there is nothing to return.
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let conn = self.lock();
        collect(
            &conn,
            "SELECT seq, at, action, ca, details, prev_hash, hash FROM audit \
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![after, rows::sql_limit(limit)],
            |row| {
                let get = |i| row.get::<_, String>(i).map_err(db_error);
                rows::audit_entry(
                    row.get(0).map_err(db_error)?,
                    get(1)?,
                    get(2)?,
                    get(3)?,
                    get(4)?,
                    get(5)?,
                    get(6)?,
                )
            },
        )
    }

    fn status(&self, ca: &str, serial: &[u8]) -> Result<CertificateStatus, StoreError> {
        let conn = self.lock();
        let row: Option<(Option<i64>, Option<i64>)> = conn
            .prepare_cached(
                "SELECT revoked_at, reason FROM certificates WHERE ca = ?1 AND serial = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![ca, hex::encode_upper(serial)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(db_error)?;
        rows::status_from(serial, row)
    }

    fn audit_head(&self) -> Result<u64, StoreError> {
        let conn = self.lock();
        let seq: Option<i64> = conn
            .prepare_cached("SELECT MAX(seq) FROM audit")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(db_error)?;
        seq.map_or(Ok(0), |s| rows::to_u64(s, "audit sequence number"))
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
        self.write(|tx| {
            let id = next_ids(tx, "service_requests", 1)?;
            tx.execute(
                "INSERT INTO service_requests (id, kind, name, ca, node, csr, key_ref, \
                 requested_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    request.kind.as_str(),
                    request.name,
                    request.ca,
                    request.node,
                    request.csr,
                    key_ref,
                    request.requested_at.unix_timestamp(),
                ],
            )
            .map_err(|e| super::request_insert_error(violated(&e), db_error(e), request))?;
            append_audit(tx, std::slice::from_ref(audit))?;
            rows::to_u64(id, "service request id")
        })
    }

    fn open_service_requests(&self, limit: usize) -> Result<Vec<ServiceRequest>, StoreError> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {} FROM service_requests \
             WHERE certified_serial IS NULL AND refused IS NULL ORDER BY id LIMIT ?1",
            rows::REQUEST_COLUMNS
        );
        collect(&conn, &sql, [rows::sql_limit(limit)], |row| {
            let read = || -> rusqlite::Result<rows::RequestRow> {
                Ok(rows::RequestRow {
                    id: row.get(0)?,
                    kind: row.get(1)?,
                    name: row.get(2)?,
                    ca: row.get(3)?,
                    node: row.get(4)?,
                    csr: row.get(5)?,
                    key_ref: row.get(6)?,
                    requested_at: row.get(7)?,
                })
            };
            read().map_err(db_error)?.into_request()
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
        let id = rows::to_i64(id, "service request id")?;
        self.write(|tx| {
            let closed = tx
                .execute(
                    "UPDATE service_requests SET certified_serial = ?2 \
                     WHERE id = ?1 AND certified_serial IS NULL AND refused IS NULL",
                    params![id, hex::encode_upper(&service.serial)],
                )
                .map_err(db_error)?;
            if closed == 0 {
                return Err(super::request_not_open(id.unsigned_abs()));
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
        let id = rows::to_i64(id, "service request id")?;
        self.write(|tx| {
            let closed = tx
                .execute(
                    "UPDATE service_requests SET refused = ?2 \
                     WHERE id = ?1 AND certified_serial IS NULL AND refused IS NULL",
                    params![id, reason],
                )
                .map_err(db_error)?;
            if closed == 0 {
                return Err(super::request_not_open(id.unsigned_abs()));
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
             WHERE s.kind = ?1 AND (?2 IS NULL OR s.name = ?2) \
             ORDER BY s.created_at, s.id",
            super::qualified_certificate_columns("c")
        );
        let conn = self.lock();
        collect(&conn, &sql, params![kind.as_str(), name], |row| {
            let read = || -> rusqlite::Result<rows::ServiceRow> {
                Ok(rows::ServiceRow {
                    name: row.get(0)?,
                    ca: row.get(1)?,
                    serial: row.get(2)?,
                    key_ref: row.get(3)?,
                    policy: row.get(4)?,
                    created_at: row.get(5)?,
                    node: row.get(6)?,
                })
            };
            let service = read().map_err(db_error)?.into_record(kind)?;
            Ok((service, certificate_at(row, 7)?))
        })
    }
}

#[cfg(test)]
mod tests {
    //! What only the SQLite engine has: the file, its modes, its schema table. The store's
    //! behaviour is checked on both engines by `ca/tests/store_contract.rs`.
    use std::path::PathBuf;
    use std::time::Instant;

    use time::macros::datetime;
    use time::OffsetDateTime;
    use x509_cert::ext::pkix::CrlReason;

    use super::*;
    use crate::keyref::KeyReference;

    const T0: OffsetDateTime = datetime!(2025-03-01 12:00:00 UTC);

    fn open_temp() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_or_create(&dir.path().join("ca.db")).unwrap();
        (dir, store)
    }

    fn event(action: &str, ca: &str, details: serde_json::Value) -> AuditEvent {
        AuditEvent {
            at: T0,
            action: action.into(),
            ca: ca.into(),
            details,
        }
    }

    fn ca_record(name: &str, parent: Option<&str>) -> CaRecord {
        CaRecord {
            name: name.into(),
            parent: parent.map(Into::into),
            certificate: format!("certificate of {name}").into_bytes(),
            key: KeyReference::File {
                path: PathBuf::from(format!("keys/{name}.key.pem")),
            },
            base_url: format!("https://pki.example/{name}"),
            created_at: T0,
            crl_shards: 0,
        }
    }

    fn cert(ca: &str, serial: &[u8]) -> CertificateRecord {
        CertificateRecord {
            ca: ca.into(),
            serial: serial.to_vec(),
            subject: format!("CN=holder {}", hex::encode(serial)),
            profile: "citizen-auth".into(),
            not_before: T0,
            not_after: T0 + time::Duration::days(365),
            issued_at: T0,
            der: vec![0x30, 0x03, 0x02, 0x01, serial.last().copied().unwrap_or(0)],
            revocation: None,
            crl_shard: None,
        }
    }

    fn issue_event(c: &CertificateRecord) -> AuditEvent {
        event(
            "ca.issue",
            &c.ca,
            serde_json::json!({ "serial": hex::encode_upper(&c.serial) }),
        )
    }

    fn create_root(store: &SqliteStore, name: &str) {
        store
            .create_ca(
                &ca_record(name, None),
                None,
                &event("ca.init", name, serde_json::json!({})),
            )
            .unwrap();
    }

    fn issue(store: &SqliteStore, certs: &[CertificateRecord]) -> Result<(), StoreError> {
        let audits: Vec<AuditEvent> = certs.iter().map(issue_event).collect();
        store.insert_certificates(certs, &audits)
    }

    fn revocation(reason: CrlReason, invalidity: Option<OffsetDateTime>) -> Revocation {
        Revocation {
            revoked_at: T0 + time::Duration::days(10),
            reason,
            invalidity_date: invalidity,
        }
    }

    #[test]
    fn reopening_keeps_data_and_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.db");
        let migrations = |store: &SqliteStore| -> Vec<(i64, i64)> {
            let conn = store.lock();
            let mut stmt = conn
                .prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version")
                .unwrap();
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        let first = {
            let store = SqliteStore::open_or_create(&path).unwrap();
            create_root(&store, "root");
            issue(&store, &[cert("root", &[1])]).unwrap();
            migrations(&store)
        };
        assert_eq!(first.len(), SCHEMA_SQLITE.steps.len());

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.path(), path);
        assert_eq!(migrations(&store), first);
        assert!(store.ca("root").unwrap().is_some());
        assert!(store.certificate("root", &[1]).unwrap().is_some());
        assert_eq!(store.audit_entries(0, 10).unwrap().len(), 2);
    }

    #[test]
    fn opening_a_missing_store_is_not_found_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.db");
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(&err, StoreError::NotFound(m) if m.contains("ca.db")),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_created_store_and_its_wal_and_shm_files_are_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.db");
        let store = SqliteStore::open_or_create(&path).unwrap();
        create_root(&store, "root");
        for name in ["ca.db", "ca.db-wal", "ca.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_database_is_reported_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.db");
        std::fs::write(&path, vec![0x5A; 8192]).unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }

    /// A store made before version 6 finds its certificates by the subject's serialNumber
    /// after the migration (the column filled from the stored subject text).
    #[test]
    fn a_version_5_store_finds_a_citizens_certificates_after_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.db");
        let mut conn =
            imza_store::sqlite::open(&path, Create::IfMissing, Durability::Full).unwrap();
        let version_5 = imza_store::Migrations {
            steps: &SCHEMA_SQLITE.steps[..5],
            ..SCHEMA_SQLITE
        };
        imza_store::sqlite::migrate(&mut conn, &version_5).unwrap();
        conn.execute_batch(
            "INSERT INTO cas (name, parent, certificate, key_ref, base_url, created_at, seq)
                 VALUES ('root', NULL, x'30', '{\"kind\":\"file\",\"path\":\"keys/root.key.pem\"}',
                         'http://pki.example', 0, 1);
             INSERT INTO certificates (ca, serial, subject, profile, not_before, not_after,
                 issued_at, der, revoked_at, reason, invalidity_date, id)
                 VALUES ('root', '01', 'C=AZ,serialNumber=PNOAZ-5ZK7T2Q,CN=Günay', 'p', 0, 1,
                         0, x'30', NULL, NULL, NULL, 1),
                        ('root', '02', 'CN=serialNumber=PNOAZ-5ZK7T2Q', 'p', 0, 1,
                         0, x'30', NULL, NULL, NULL, 2),
                        ('root', '03', 'CN=nobody', 'p', 0, 1, 0, x'30', NULL, NULL, NULL, 3);",
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&path).unwrap();
        let found = store
            .certificates_of_subject_serial_number("PNOAZ-5ZK7T2Q", 10)
            .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].serial, [1]);
    }

    /// A store made before CRL shards (schema version 3) opens, is migrated to version 5, and
    /// its CAs and certificates read back unpartitioned.
    #[test]
    fn a_version_3_store_gains_crl_shards_and_its_rows_read_back_unpartitioned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.db");
        let mut conn =
            imza_store::sqlite::open(&path, Create::IfMissing, Durability::Full).unwrap();
        let version_3 = imza_store::Migrations {
            steps: &SCHEMA_SQLITE.steps[..3],
            ..SCHEMA_SQLITE
        };
        assert_eq!(version_3.newest(), 3);
        imza_store::sqlite::migrate(&mut conn, &version_3).unwrap();
        conn.execute_batch(
            "INSERT INTO cas (name, parent, certificate, key_ref, base_url, created_at, seq)
                 VALUES ('root', NULL, x'30', '{\"kind\":\"file\",\"path\":\"keys/root.key.pem\"}',
                         'http://pki.example', 0, 1);
             INSERT INTO certificates (ca, serial, subject, profile, not_before, not_after,
                 issued_at, der, revoked_at, reason, invalidity_date, id)
                 VALUES ('root', '01', 'CN=x', 'p', 0, 1, 0, x'30', 5, 1, NULL, 1);
             INSERT INTO crls (ca, number, this_update, next_update, der)
                 VALUES ('root', 1, 0, 10, x'30');",
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(&path).unwrap();
        let versions: Vec<i64> = {
            let conn = store.lock();
            let mut stmt = conn
                .prepare("SELECT version FROM schema_migrations ORDER BY version")
                .unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
        assert_eq!(store.ca("root").unwrap().unwrap().crl_shards, 0);
        assert_eq!(
            store.certificate("root", &[1]).unwrap().unwrap().crl_shard,
            None
        );
        assert_eq!(store.latest_crl("root").unwrap().unwrap().shard, None);
        assert_eq!(store.revoked("root").unwrap().len(), 1);
    }

    #[test]
    fn a_shard_count_beyond_the_limit_is_corrupt() {
        let (_dir, store) = open_temp();
        create_root(&store, "root");
        store
            .lock()
            .execute_batch("UPDATE cas SET crl_shards = 1000000")
            .unwrap();
        assert!(matches!(store.ca("root"), Err(StoreError::Corrupt(_))));
        store
            .lock()
            .execute_batch("UPDATE cas SET crl_shards = -1")
            .unwrap();
        assert!(matches!(store.cas(), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_database_from_a_newer_imza_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.db");
        drop(SqliteStore::open_or_create(&path).unwrap());
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("INSERT INTO schema_migrations VALUES (999, 0)", [])
            .unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(&err, StoreError::NewerSchema { found: 999, .. }),
            "{err}"
        );
    }

    #[test]
    fn unreadable_values_are_corrupt_not_a_panic() {
        let (_dir, store) = open_temp();
        create_root(&store, "root");
        issue(&store, &[cert("root", &[1])]).unwrap();
        store
            .lock()
            .execute_batch(
                "UPDATE certificates SET revoked_at = 1, reason = 99;
                 UPDATE cas SET key_ref = 'not json';",
            )
            .unwrap();
        assert!(matches!(
            store.certificate("root", &[1]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(store.revoked("root"), Err(StoreError::Corrupt(_))));
        assert!(matches!(store.ca("root"), Err(StoreError::Corrupt(_))));
    }

    /// Throughput figure for batch issuance: `cargo test -p imza-ca --release -- --ignored
    /// --nocapture insert_throughput`. Prints, asserts nothing about time.
    #[test]
    #[ignore = "measurement, run by hand"]
    fn insert_throughput() {
        let (_dir, store) = open_temp();
        create_root(&store, "citizens");
        let certs: Vec<_> = (0u32..10_000)
            .map(|i| {
                let mut c = cert("citizens", &[&[0x42u8; 16][..], &i.to_be_bytes()].concat());
                c.der = vec![0x30; 1200];
                c
            })
            .collect();
        let audits: Vec<_> = certs.iter().map(issue_event).collect();
        let start = Instant::now();
        for (c, a) in certs.chunks(500).zip(audits.chunks(500)) {
            store.insert_certificates(c, a).unwrap();
        }
        let elapsed = start.elapsed();
        println!(
            "10,000 certificates in batches of 500: {elapsed:?} ({:.0} certs/s)",
            10_000.0 / elapsed.as_secs_f64()
        );
    }

    /// `cargo test -p imza-ca --release -- --ignored --nocapture revoked_listing_of_a_million`.
    #[test]
    #[ignore = "measurement, run by hand"]
    fn revoked_listing_of_a_million() {
        let (_dir, store) = open_temp();
        create_root(&store, "citizens");
        let start = Instant::now();
        for chunk in 0u32..10 {
            let rows: Vec<_> = (0u32..100_000)
                .map(|i| {
                    let serial = [&[0x42u8; 16][..], &(chunk * 100_000 + i).to_be_bytes()].concat();
                    CertificateRecord {
                        revocation: Some(revocation(CrlReason::KeyCompromise, None)),
                        ..cert("citizens", &serial)
                    }
                })
                .collect();
            store.insert_certificates(&rows, &[]).unwrap();
        }
        println!("fixture: {:?}", start.elapsed());
        let start = Instant::now();
        let entries = store.revoked("citizens").unwrap();
        println!(
            "revoked(): {} entries in {:?}",
            entries.len(),
            start.elapsed()
        );
        assert_eq!(entries.len(), 1_000_000);
    }
}
