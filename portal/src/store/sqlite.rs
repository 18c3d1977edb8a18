//! [`PortalStore`] in the CA store's SQLite file (`<data dir>/imza.db`), the embedded default:
//! the `portal_*` tables, versioned in their own `portal_schema_migrations`, opened and
//! migrated by imza-store as the CA's are. A write that reads before it writes is one
//! `BEGIN IMMEDIATE` transaction: SQLite's one writer lock, taken at its start, serialises
//! what the contract asks to be serialised, across processes on the file too.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use imza_store::sqlite::{error as db_error, migrate, open, violated, Durability};
use imza_store::{millis, Create, Violation};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use time::OffsetDateTime;

use super::{
    access_code_from, check_from, checks_of_sql, claim_notice_sql, document_from, event_from,
    failed_try, not_withdrawn, notice_from, purge_sql, put_code_sql, put_pending_sql, sql_limit,
    use_code_sql, withdraw_sql, wrong_try_sql, AccessCode, DocumentCheck, DocumentRecord, Event,
    ExpiryNotice, FailedTry, PendingLogin, PendingRow, PortalStore, PurgeCutoffs, Purged, Session,
    SessionCitizen, SessionRow, StoreError, ACCESS_CODE_COLUMNS, DOCUMENT_COLUMNS, NOTICE_COLUMNS,
    PENDING_COLUMNS, SCHEMA_SQLITE, SESSION_COLUMNS,
};

/// The portal's tables in one SQLite file. `Send + Sync`: the connection is behind a mutex.
pub struct SqlitePortalStore {
    conn: Mutex<Connection>,
    /// `synchronous=NORMAL`: new anonymous sessions and last-seen times (see
    /// [`PortalStore::create_session`]), so that a crowd opening the login page does not wait
    /// on one fsync each.
    light: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqlitePortalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlitePortalStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqlitePortalStore {
    /// Opens (creating the file and the portal_* tables if missing) the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<SqlitePortalStore, StoreError> {
        let mut conn = open(path, Create::IfMissing, Durability::Full)?;
        migrate(&mut conn, &SCHEMA_SQLITE)?;
        let light = open(path, Create::No, Durability::Normal)?;
        Ok(SqlitePortalStore {
            conn: Mutex::new(conn),
            light: Mutex::new(light),
            path: path.to_path_buf(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits; on an error nothing stays.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        imza_store::sqlite::write(&mut self.lock(), f)
    }
}

fn insert_session(tx: &Connection, session: &Session) -> Result<(), StoreError> {
    let citizen = session.citizen.as_ref();
    tx.execute(
        &format!("INSERT INTO portal_sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            &session.id_sha256[..],
            &session.csrf_sha256[..],
            millis(session.created_at),
            millis(session.last_seen_at),
            millis(session.expires_at),
            citizen.map(|c| c.personal_code.as_str()),
            citizen.map(|c| c.name.as_str()),
            citizen.map(|c| c.method.as_str()),
            session.ended_at.map(millis),
        ],
    )
    .map_err(|e| match violated(&e) {
        Some(Violation::Unique) => StoreError::Conflict("a session with this id".into()),
        _ => db_error(e),
    })?;
    Ok(())
}

fn insert_event(tx: &Connection, event: &Event) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO portal_events (at, personal_code, kind, method, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            millis(event.at),
            event.personal_code,
            event.kind.as_str(),
            event.method.map(|m| m.as_str()),
            event.detail,
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

fn pending_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingRow> {
    Ok(PendingRow {
        session_sha256: r.get(0)?,
        method: r.get(1)?,
        started_at: r.get(2)?,
        challenge: r.get(3)?,
        mss_session_id: r.get(4)?,
        national_id: r.get(5)?,
        verification_code: r.get(6)?,
        qr_token: r.get(7)?,
        qr_secret: r.get(8)?,
        approved_personal_code: r.get(9)?,
        approved_name: r.get(10)?,
        approved_at: r.get(11)?,
    })
}

impl SqlitePortalStore {
    fn documents(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<DocumentRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .map_err(db_error)?;
        rows.map(|row| {
            let (reference, kind, to, at, sha, withdrawn, reason) = row.map_err(db_error)?;
            document_from(reference, kind, to, at, sha, withdrawn, reason)
        })
        .collect()
    }

    fn one_pending(
        &self,
        sql: &str,
        key: &dyn rusqlite::ToSql,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let row = self
            .lock()
            .query_row(sql, [key], pending_row)
            .optional()
            .map_err(db_error)?;
        row.map(PendingRow::into_pending).transpose()
    }
}

impl PortalStore for SqlitePortalStore {
    fn register_document(&self, document: &DocumentRecord, pdf: &[u8]) -> Result<(), StoreError> {
        if document.status != super::DocumentStatus::Valid {
            return Err(StoreError::Invalid("a document is registered valid".into()));
        }
        self.lock()
            .execute(
                "INSERT INTO portal_documents (reference, kind, issued_to, issued_at, \
                 pdf_sha256, pdf) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    document.reference,
                    document.kind.as_str(),
                    document.issued_to,
                    millis(document.issued_at),
                    &document.pdf_sha256[..],
                    pdf,
                ],
            )
            .map_err(|e| match violated(&e) {
                Some(Violation::Unique) => {
                    StoreError::Conflict("a document with this reference".into())
                }
                _ => db_error(e),
            })?;
        Ok(())
    }

    fn document(&self, reference: &str) -> Result<Option<DocumentRecord>, StoreError> {
        Ok(self
            .documents(
                &format!("SELECT {DOCUMENT_COLUMNS} FROM portal_documents WHERE reference = ?1"),
                params![reference],
            )?
            .pop())
    }

    fn document_pdf(&self, reference: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.lock()
            .query_row(
                "SELECT pdf FROM portal_documents WHERE reference = ?1",
                [reference],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_error)
    }

    fn documents_of(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<DocumentRecord>, StoreError> {
        self.documents(
            &format!(
                "SELECT {DOCUMENT_COLUMNS} FROM portal_documents WHERE issued_to = ?1 \
                 ORDER BY issued_at DESC, reference DESC LIMIT ?2"
            ),
            params![personal_code, sql_limit(limit)],
        )
    }

    fn withdraw_document(
        &self,
        reference: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<DocumentRecord, StoreError> {
        let withdrawn =
            self.documents(&withdraw_sql("?"), params![reference, millis(at), reason])?;
        match withdrawn.into_iter().next() {
            Some(document) => Ok(document),
            None => Err(not_withdrawn(self.document(reference)?)),
        }
    }

    fn record_check(&self, check: &DocumentCheck) -> Result<(), StoreError> {
        let recorded = self
            .lock()
            .execute(
                "INSERT INTO portal_document_checks (reference, checked_at, organisation, \
                 channel) SELECT ?1, ?2, ?3, ?4 \
                 WHERE EXISTS (SELECT 1 FROM portal_documents WHERE reference = ?1)",
                params![
                    check.reference,
                    millis(check.checked_at),
                    check.organisation,
                    check.channel.as_str()
                ],
            )
            .map_err(db_error)?;
        match recorded {
            0 => Err(StoreError::NotFound(
                "no document has this reference".into(),
            )),
            _ => Ok(()),
        }
    }

    fn checks_of(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<DocumentCheck>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&checks_of_sql("?")).map_err(db_error)?;
        let rows = stmt
            .query_map(params![personal_code, sql_limit(limit)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(db_error)?;
        rows.map(|row| {
            let (reference, at, organisation, channel) = row.map_err(db_error)?;
            check_from(reference, at, organisation, channel)
        })
        .collect()
    }

    fn claim_notice(
        &self,
        notice: &ExpiryNotice,
        lease: time::Duration,
    ) -> Result<bool, StoreError> {
        let claimed = self
            .lock()
            .query_row(
                &claim_notice_sql("?"),
                params![
                    notice.certificate,
                    i64::from(notice.threshold_days),
                    notice.personal_code,
                    notice.profile,
                    millis(notice.not_after),
                    millis(notice.claimed_at),
                    millis(notice.claimed_at - lease),
                ],
                |_| Ok(()),
            )
            .optional()
            .map_err(db_error)?;
        Ok(claimed.is_some())
    }

    fn mark_notice_sent(
        &self,
        certificate: &str,
        threshold_days: u32,
        at: OffsetDateTime,
        emailed_to: Option<&str>,
    ) -> Result<(), StoreError> {
        let marked = self
            .lock()
            .execute(
                "UPDATE portal_notices SET sent_at = ?3, emailed_to = ?4 \
                 WHERE certificate = ?1 AND threshold_days = ?2 AND sent_at IS NULL",
                params![
                    certificate,
                    i64::from(threshold_days),
                    millis(at),
                    emailed_to
                ],
            )
            .map_err(db_error)?;
        match marked {
            0 => Err(StoreError::NotFound(
                "no unsent claim of this notice".into(),
            )),
            _ => Ok(()),
        }
    }

    fn notices_of(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<ExpiryNotice>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {NOTICE_COLUMNS} FROM portal_notices WHERE personal_code = ?1 \
                 ORDER BY claimed_at DESC, certificate, threshold_days LIMIT ?2"
            ))
            .map_err(db_error)?;
        let rows = stmt
            .query_map(params![personal_code, sql_limit(limit)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .map_err(db_error)?;
        rows.map(|row| {
            let (c, t, p, pr, n, cl, s, e) = row.map_err(db_error)?;
            notice_from(c, t, p, pr, n, cl, s, e)
        })
        .collect()
    }
    fn put_pending_login(&self, login: &PendingLogin) -> Result<(), StoreError> {
        let v = login.values();
        self.lock()
            .execute(
                &put_pending_sql("?"),
                params![
                    &login.session_sha256[..],
                    v.method,
                    v.started_at,
                    &login.challenge[..],
                    v.mss_session_id,
                    v.national_id,
                    v.verification_code,
                    v.qr_token,
                    v.qr_secret,
                    v.approved_personal_code,
                    v.approved_name,
                    v.approved_at,
                ],
            )
            .map_err(|e| match violated(&e) {
                Some(Violation::Unique) => {
                    StoreError::Conflict("the QR token is another session's".into())
                }
                _ => db_error(e),
            })?;
        Ok(())
    }

    fn pending_login(&self, session_sha256: &[u8; 32]) -> Result<Option<PendingLogin>, StoreError> {
        self.one_pending(
            &format!(
                "SELECT {PENDING_COLUMNS} FROM portal_pending_logins WHERE session_sha256 = ?1"
            ),
            &&session_sha256[..],
        )
    }

    fn qr_login(&self, token: &str) -> Result<Option<PendingLogin>, StoreError> {
        self.one_pending(
            &format!(
                "SELECT {PENDING_COLUMNS} FROM portal_pending_logins \
                 WHERE qr_token = ?1 AND method = 'qr'"
            ),
            &token,
        )
    }

    fn approve_qr_login(
        &self,
        token: &str,
        citizen: &SessionCitizen,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let changed = self
            .lock()
            .execute(
                "UPDATE portal_pending_logins SET approved_personal_code = ?2, \
                 approved_name = ?3, approved_at = ?4 \
                 WHERE qr_token = ?1 AND method = 'qr' AND approved_at IS NULL",
                params![token, citizen.personal_code, citizen.name, millis(at)],
            )
            .map_err(db_error)?;
        match changed {
            0 => Err(StoreError::NotFound(
                "no QR login awaiting a phone has this token".into(),
            )),
            _ => Ok(()),
        }
    }

    fn take_pending_login(
        &self,
        session_sha256: &[u8; 32],
    ) -> Result<Option<PendingLogin>, StoreError> {
        self.one_pending(
            &format!(
                "DELETE FROM portal_pending_logins WHERE session_sha256 = ?1 \
                 RETURNING {PENDING_COLUMNS}"
            ),
            &&session_sha256[..],
        )
    }

    fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut light = self.light.lock().unwrap_or_else(|e| e.into_inner());
        imza_store::sqlite::write(&mut light, |tx| insert_session(tx, session))
    }

    fn session(&self, id_sha256: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        let conn = self.lock();
        let row = conn
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM portal_sessions WHERE id_sha256 = ?1"
            ))
            .map_err(db_error)?
            .query_row([&id_sha256[..]], |r| {
                Ok(SessionRow {
                    id_sha256: r.get(0)?,
                    csrf_sha256: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    personal_code: r.get(5)?,
                    name: r.get(6)?,
                    method: r.get(7)?,
                    ended_at: r.get(8)?,
                })
            })
            .optional()
            .map_err(db_error)?;
        row.map(SessionRow::into_session).transpose()
    }

    fn touch_session(&self, id_sha256: &[u8; 32], at: OffsetDateTime) -> Result<(), StoreError> {
        let changed = self
            .light
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .execute(
                "UPDATE portal_sessions SET last_seen_at = max(last_seen_at, ?2) \
                 WHERE id_sha256 = ?1 AND ended_at IS NULL",
                params![&id_sha256[..], millis(at)],
            )
            .map_err(db_error)?;
        match changed {
            0 => Err(StoreError::NotFound("no live session with this id".into())),
            _ => Ok(()),
        }
    }

    fn log_in(&self, old: &[u8; 32], new: &Session, event: &Event) -> Result<(), StoreError> {
        self.write(|tx| {
            let ended = tx
                .execute(
                    "UPDATE portal_sessions SET ended_at = ?2 \
                     WHERE id_sha256 = ?1 AND ended_at IS NULL AND personal_code IS NULL",
                    params![&old[..], millis(event.at)],
                )
                .map_err(db_error)?;
            if ended == 0 {
                return Err(StoreError::NotFound(
                    "no live anonymous session with this id".into(),
                ));
            }
            for table in ["portal_nonces", "portal_pending_logins"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE session_sha256 = ?1"),
                    [&old[..]],
                )
                .map_err(db_error)?;
            }
            insert_session(tx, new)?;
            insert_event(tx, event)
        })
    }

    fn end_session(
        &self,
        id_sha256: &[u8; 32],
        at: OffsetDateTime,
        event: Option<&Event>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let ended = tx
                .execute(
                    "UPDATE portal_sessions SET ended_at = ?2 \
                     WHERE id_sha256 = ?1 AND ended_at IS NULL",
                    params![&id_sha256[..], millis(at)],
                )
                .map_err(db_error)?;
            if ended == 0 {
                return Err(StoreError::NotFound("no live session with this id".into()));
            }
            for table in ["portal_nonces", "portal_pending_logins"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE session_sha256 = ?1"),
                    [&id_sha256[..]],
                )
                .map_err(db_error)?;
            }
            match event {
                Some(event) => insert_event(tx, event),
                None => Ok(()),
            }
        })
    }

    fn put_nonce(
        &self,
        id_sha256: &[u8; 32],
        nonce: &str,
        issued_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO portal_nonces (session_sha256, nonce, issued_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (session_sha256) DO UPDATE SET nonce = excluded.nonce, \
                 issued_at = excluded.issued_at",
                params![&id_sha256[..], nonce, millis(issued_at)],
            )
            .map_err(db_error)?;
        Ok(())
    }

    fn take_nonce(
        &self,
        id_sha256: &[u8; 32],
    ) -> Result<Option<(String, OffsetDateTime)>, StoreError> {
        let taken: Option<(String, i64)> = self
            .lock()
            .query_row(
                "DELETE FROM portal_nonces WHERE session_sha256 = ?1 RETURNING nonce, issued_at",
                [&id_sha256[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_error)?;
        taken
            .map(|(nonce, at)| Ok((nonce, imza_store::from_millis(at, "issued_at")?)))
            .transpose()
    }

    fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        insert_event(&self.lock(), event)
    }

    fn events(&self, personal_code: &str, limit: usize) -> Result<Vec<Event>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT at, personal_code, kind, method, detail FROM portal_events \
                 WHERE personal_code = ?1 ORDER BY seq DESC LIMIT ?2",
            )
            .map_err(db_error)?;
        let rows = stmt
            .query_map(params![personal_code, sql_limit(limit)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(db_error)?;
        rows.map(|row| {
            let (at, code, kind, method, detail) = row.map_err(db_error)?;
            event_from(at, code, kind, method, detail)
        })
        .collect()
    }

    fn put_access_code(&self, code: &AccessCode) -> Result<(), StoreError> {
        self.lock()
            .execute(
                &put_code_sql("?"),
                params![
                    code.personal_code,
                    &code.code_id[..],
                    code.code_scrypt,
                    code.salt,
                    millis(code.issued_at),
                    millis(code.expires_at),
                    i64::from(code.tries_left),
                    code.locked_until.map(millis),
                ],
            )
            .map_err(db_error)?;
        Ok(())
    }

    fn access_code(&self, personal_code: &str) -> Result<Option<AccessCode>, StoreError> {
        let row = self
            .lock()
            .query_row(
                &format!(
                    "SELECT {ACCESS_CODE_COLUMNS} FROM portal_access_codes \
                     WHERE personal_code = ?1"
                ),
                [personal_code],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .optional()
            .map_err(db_error)?;
        row.map(|(c, i, h, s, at, exp, t, l)| access_code_from(c, i, h, s, at, exp, t, l))
            .transpose()
    }

    fn record_wrong_try(
        &self,
        personal_code: &str,
        code_id: &[u8; 16],
        now: OffsetDateTime,
        tries: u32,
        lock: time::Duration,
    ) -> Result<FailedTry, StoreError> {
        let lock_end = now + lock;
        let row: Option<(i64, Option<i64>)> = self
            .lock()
            .query_row(
                &wrong_try_sql("?"),
                params![
                    personal_code,
                    &code_id[..],
                    millis(now),
                    i64::from(tries),
                    millis(lock_end)
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_error)?;
        match row {
            Some((tries_left, locked_until)) => failed_try(tries_left, locked_until, lock_end),
            None => Err(StoreError::NotFound(
                "no such access code, or it is locked".into(),
            )),
        }
    }

    fn use_access_code(
        &self,
        personal_code: &str,
        code_id: &[u8; 16],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let used = self
            .lock()
            .execute(
                &use_code_sql("?"),
                params![personal_code, &code_id[..], millis(now)],
            )
            .map_err(db_error)?;
        Ok(used == 1)
    }

    fn purge(
        &self,
        cutoffs: &PurgeCutoffs,
        batch: usize,
        max_rounds: usize,
    ) -> Result<Purged, StoreError> {
        let [sessions, nonces, codes, pending] = purge_sql("?");
        let batch = sql_limit(batch.max(1));
        let mut purged = Purged::default();
        for _ in 0..max_rounds {
            // Each statement is a transaction of its own: logins wait for one batch at most.
            let conn = self.lock();
            let round = Purged {
                sessions: conn
                    .execute(
                        &sessions,
                        params![millis(cutoffs.now), millis(cutoffs.idle_before), batch],
                    )
                    .map_err(db_error)?,
                nonces: conn
                    .execute(&nonces, params![millis(cutoffs.nonces_before), batch])
                    .map_err(db_error)?,
                access_codes: conn
                    .execute(&codes, params![millis(cutoffs.now), batch])
                    .map_err(db_error)?,
                pending_logins: conn.execute(&pending, params![batch]).map_err(db_error)?,
            };
            drop(conn);
            purged.sessions += round.sessions;
            purged.nonces += round.nonces;
            purged.access_codes += round.access_codes;
            purged.pending_logins += round.pending_logins;
            if round.total() == 0 {
                break;
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::contract::Database;

    /// A fresh SQLite file; every handle its own connection, as another process would have.
    struct SqliteDatabase {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    impl Database for SqliteDatabase {
        fn open(&self) -> Arc<dyn PortalStore> {
            Arc::new(SqlitePortalStore::open(&self.path).expect("open the store"))
        }
    }

    fn fresh() -> SqliteDatabase {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imza.db");
        SqliteDatabase { _dir: dir, path }
    }

    crate::portal_store_contract_tests!(fresh);
}
