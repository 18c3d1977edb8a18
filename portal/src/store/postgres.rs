//! [`PortalStore`] in PostgreSQL, beside the CA store's tables, for several nodes: the same
//! `portal_*` tables as on SQLite, through imza-store's pool. Statements run at READ
//! COMMITTED; the contract's "exactly one" cases rest on row locks: an UPDATE or DELETE that
//! waits for another transaction on the same row re-reads it after that one commits and finds
//! it no longer matching, so the later caller changes nothing.

use imza_store::postgres::{error as db_error, violated, Pool, PoolOptions};
use imza_store::{millis, Create, PostgresUrl, Violation};
use postgres::types::{ToSql, Type};
use postgres::{GenericClient, Row, Transaction};
use time::OffsetDateTime;

use super::{
    access_code_from, check_from, checks_of_sql, claim_notice_sql, document_from, event_from,
    failed_try, not_withdrawn, notice_from, purge_sql, put_code_sql, put_pending_sql, sql_limit,
    use_code_sql, withdraw_sql, wrong_try_sql, AccessCode, DocumentCheck, DocumentRecord, Event,
    ExpiryNotice, FailedTry, PendingLogin, PendingRow, PortalStore, PurgeCutoffs, Purged, Session,
    SessionCitizen, SessionRow, StoreError, ACCESS_CODE_COLUMNS, DOCUMENT_COLUMNS, NOTICE_COLUMNS,
    PENDING_COLUMNS, SCHEMA_POSTGRES, SESSION_COLUMNS,
};

/// The portal's tables in a PostgreSQL database. Clones share the pool.
#[derive(Clone, Debug)]
pub struct PgPortalStore {
    pool: Pool,
}

type Param<'a> = (&'a (dyn ToSql + Sync), Type);

impl PgPortalStore {
    /// Connects to `url` and creates or migrates the portal_* tables (with [`Create::No`], a
    /// database without them is `NotFound`).
    pub fn open(url: &PostgresUrl, create: Create) -> Result<PgPortalStore, StoreError> {
        let pool = Pool::open(url, create, &[&SCHEMA_POSTGRES], PoolOptions::default())?;
        Ok(PgPortalStore { pool })
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        self.pool
            .get()?
            .query_prepared(sql, params)
            .map_err(db_error)
    }

    /// Runs `f` in one transaction and commits; on an error nothing of it stays.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.write(f)
    }
}

fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("unreadable value: {e}")))
}

/// This transaction's commit does not wait for its WAL to reach the disk
/// (`synchronous_commit = off`, for this transaction only): see
/// [`PortalStore::create_session`]. A crash of the server loses at most the last moments of
/// such commits and never corrupts anything.
fn lighter_commit(tx: &mut postgres::Transaction<'_>) -> Result<(), StoreError> {
    tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
        .map_err(db_error)
}

fn insert_session(tx: &mut impl GenericClient, session: &Session) -> Result<(), StoreError> {
    let citizen = session.citizen.as_ref();
    let id = &session.id_sha256[..];
    let csrf = &session.csrf_sha256[..];
    let (created, seen, expires) = (
        millis(session.created_at),
        millis(session.last_seen_at),
        millis(session.expires_at),
    );
    let code = citizen.map(|c| c.personal_code.as_str());
    let name = citizen.map(|c| c.name.as_str());
    let method = citizen.map(|c| c.method.as_str());
    let ended = session.ended_at.map(millis);
    tx.query_typed(
        &format!(
            "INSERT INTO portal_sessions ({SESSION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ),
        &[
            (&id, Type::BYTEA),
            (&csrf, Type::BYTEA),
            (&created, Type::INT8),
            (&seen, Type::INT8),
            (&expires, Type::INT8),
            (&code, Type::TEXT),
            (&name, Type::TEXT),
            (&method, Type::TEXT),
            (&ended, Type::INT8),
        ],
    )
    .map_err(|e| match violated(&e) {
        Some(Violation::Unique) => StoreError::Conflict("a session with this id".into()),
        _ => db_error(e),
    })?;
    Ok(())
}

fn insert_event(tx: &mut impl GenericClient, event: &Event) -> Result<(), StoreError> {
    let at = millis(event.at);
    let kind = event.kind.as_str();
    let method = event.method.map(|m| m.as_str());
    tx.query_typed(
        "INSERT INTO portal_events (at, personal_code, kind, method, detail) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            (&at, Type::INT8),
            (&event.personal_code, Type::TEXT),
            (&kind, Type::TEXT),
            (&method, Type::TEXT),
            (&event.detail, Type::TEXT),
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Ends the live session `id` at `at` if `condition` (more SQL after `ended_at IS NULL`) holds
/// and drops its nonce and its login under way; whether it ended one.
fn end(
    tx: &mut Transaction<'_>,
    id: &[u8; 32],
    at: OffsetDateTime,
    condition: &str,
) -> Result<bool, StoreError> {
    let (id, at) = (&id[..], millis(at));
    let ended = tx
        .query_typed(
            &format!(
                "UPDATE portal_sessions SET ended_at = $2 \
                 WHERE id_sha256 = $1 AND ended_at IS NULL{condition} RETURNING 1"
            ),
            &[(&id, Type::BYTEA), (&at, Type::INT8)],
        )
        .map_err(db_error)?;
    if ended.is_empty() {
        return Ok(false);
    }
    for table in ["portal_nonces", "portal_pending_logins"] {
        tx.query_typed(
            &format!("DELETE FROM {table} WHERE session_sha256 = $1"),
            &[(&id, Type::BYTEA)],
        )
        .map_err(db_error)?;
    }
    Ok(true)
}

fn pending_row(r: &Row) -> Result<PendingRow, StoreError> {
    Ok(PendingRow {
        session_sha256: get(r, 0)?,
        method: get(r, 1)?,
        started_at: get(r, 2)?,
        challenge: get(r, 3)?,
        mss_session_id: get(r, 4)?,
        national_id: get(r, 5)?,
        verification_code: get(r, 6)?,
        qr_token: get(r, 7)?,
        qr_secret: get(r, 8)?,
        approved_personal_code: get(r, 9)?,
        approved_name: get(r, 10)?,
        approved_at: get(r, 11)?,
    })
}

fn first_pending(rows: Vec<Row>) -> Result<Option<PendingLogin>, StoreError> {
    rows.first()
        .map(|r| pending_row(r)?.into_pending())
        .transpose()
}

fn documents(rows: Vec<Row>) -> Result<Vec<DocumentRecord>, StoreError> {
    rows.iter()
        .map(|r| {
            document_from(
                get(r, 0)?,
                get(r, 1)?,
                get(r, 2)?,
                get(r, 3)?,
                get(r, 4)?,
                get(r, 5)?,
                get(r, 6)?,
            )
        })
        .collect()
}

impl PortalStore for PgPortalStore {
    fn register_document(&self, document: &DocumentRecord, pdf: &[u8]) -> Result<(), StoreError> {
        if document.status != super::DocumentStatus::Valid {
            return Err(StoreError::Invalid("a document is registered valid".into()));
        }
        let (kind, at, sha) = (
            document.kind.as_str(),
            millis(document.issued_at),
            &document.pdf_sha256[..],
        );
        self.pool
            .get()?
            .query_prepared(
                "INSERT INTO portal_documents (reference, kind, issued_to, issued_at, \
                 pdf_sha256, pdf) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    (&document.reference, Type::TEXT),
                    (&kind, Type::TEXT),
                    (&document.issued_to, Type::TEXT),
                    (&at, Type::INT8),
                    (&sha, Type::BYTEA),
                    (&pdf, Type::BYTEA),
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
        documents(self.query(
            &format!("SELECT {DOCUMENT_COLUMNS} FROM portal_documents WHERE reference = $1"),
            &[(&reference, Type::TEXT)],
        )?)
        .map(|mut found| found.pop())
    }

    fn document_pdf(&self, reference: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.query(
            "SELECT pdf FROM portal_documents WHERE reference = $1",
            &[(&reference, Type::TEXT)],
        )?;
        rows.first().map(|r| get(r, 0)).transpose()
    }

    fn documents_of(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<DocumentRecord>, StoreError> {
        let limit = sql_limit(limit);
        documents(self.query(
            &format!(
                "SELECT {DOCUMENT_COLUMNS} FROM portal_documents WHERE issued_to = $1 \
                 ORDER BY issued_at DESC, reference DESC LIMIT $2"
            ),
            &[(&personal_code, Type::TEXT), (&limit, Type::INT8)],
        )?)
    }

    fn withdraw_document(
        &self,
        reference: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<DocumentRecord, StoreError> {
        let at = millis(at);
        let withdrawn = documents(self.query(
            &withdraw_sql("$"),
            &[
                (&reference, Type::TEXT),
                (&at, Type::INT8),
                (&reason, Type::TEXT),
            ],
        )?)?;
        match withdrawn.into_iter().next() {
            Some(document) => Ok(document),
            None => Err(not_withdrawn(self.document(reference)?)),
        }
    }

    fn record_check(&self, check: &DocumentCheck) -> Result<(), StoreError> {
        let (at, channel) = (millis(check.checked_at), check.channel.as_str());
        let rows = self.query(
            "INSERT INTO portal_document_checks (reference, checked_at, organisation, channel) \
             SELECT $1, $2, $3, $4 WHERE EXISTS \
             (SELECT 1 FROM portal_documents WHERE reference = $1) RETURNING 1",
            &[
                (&check.reference, Type::TEXT),
                (&at, Type::INT8),
                (&check.organisation, Type::TEXT),
                (&channel, Type::TEXT),
            ],
        )?;
        match rows.is_empty() {
            true => Err(StoreError::NotFound(
                "no document has this reference".into(),
            )),
            false => Ok(()),
        }
    }

    fn checks_of(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<DocumentCheck>, StoreError> {
        let limit = sql_limit(limit);
        let rows = self.query(
            &checks_of_sql("$"),
            &[(&personal_code, Type::TEXT), (&limit, Type::INT8)],
        )?;
        rows.iter()
            .map(|r| check_from(get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?))
            .collect()
    }

    fn claim_notice(
        &self,
        notice: &ExpiryNotice,
        lease: time::Duration,
    ) -> Result<bool, StoreError> {
        let threshold = i32::try_from(notice.threshold_days)
            .map_err(|_| StoreError::Invalid(format!("{} days", notice.threshold_days)))?;
        let (not_after, claimed_at, stale) = (
            millis(notice.not_after),
            millis(notice.claimed_at),
            millis(notice.claimed_at - lease),
        );
        let rows = self.query(
            &claim_notice_sql("$"),
            &[
                (&notice.certificate, Type::TEXT),
                (&threshold, Type::INT4),
                (&notice.personal_code, Type::TEXT),
                (&notice.profile, Type::TEXT),
                (&not_after, Type::INT8),
                (&claimed_at, Type::INT8),
                (&stale, Type::INT8),
            ],
        )?;
        Ok(!rows.is_empty())
    }

    fn mark_notice_sent(
        &self,
        certificate: &str,
        threshold_days: u32,
        at: OffsetDateTime,
        emailed_to: Option<&str>,
    ) -> Result<(), StoreError> {
        let threshold = i32::try_from(threshold_days)
            .map_err(|_| StoreError::Invalid(format!("{threshold_days} days")))?;
        let at = millis(at);
        let rows = self.query(
            "UPDATE portal_notices SET sent_at = $3, emailed_to = $4 \
             WHERE certificate = $1 AND threshold_days = $2 AND sent_at IS NULL RETURNING 1",
            &[
                (&certificate, Type::TEXT),
                (&threshold, Type::INT4),
                (&at, Type::INT8),
                (&emailed_to, Type::TEXT),
            ],
        )?;
        match rows.is_empty() {
            true => Err(StoreError::NotFound(
                "no unsent claim of this notice".into(),
            )),
            false => Ok(()),
        }
    }

    fn notices_of(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<ExpiryNotice>, StoreError> {
        let limit = sql_limit(limit);
        let rows = self.query(
            &format!(
                "SELECT {NOTICE_COLUMNS} FROM portal_notices WHERE personal_code = $1 \
                 ORDER BY claimed_at DESC, certificate, threshold_days LIMIT $2"
            ),
            &[(&personal_code, Type::TEXT), (&limit, Type::INT8)],
        )?;
        rows.iter()
            .map(|r| {
                notice_from(
                    get(r, 0)?,
                    i64::from(get::<i32>(r, 1)?),
                    get(r, 2)?,
                    get(r, 3)?,
                    get(r, 4)?,
                    get(r, 5)?,
                    get(r, 6)?,
                    get(r, 7)?,
                )
            })
            .collect()
    }
    fn put_pending_login(&self, login: &PendingLogin) -> Result<(), StoreError> {
        let v = login.values();
        let (session, challenge) = (&login.session_sha256[..], &login.challenge[..]);
        self.pool
            .get()?
            .query_prepared(
                &put_pending_sql("$"),
                &[
                    (&session, Type::BYTEA),
                    (&v.method, Type::TEXT),
                    (&v.started_at, Type::INT8),
                    (&challenge, Type::BYTEA),
                    (&v.mss_session_id, Type::TEXT),
                    (&v.national_id, Type::TEXT),
                    (&v.verification_code, Type::TEXT),
                    (&v.qr_token, Type::TEXT),
                    (&v.qr_secret, Type::BYTEA),
                    (&v.approved_personal_code, Type::TEXT),
                    (&v.approved_name, Type::TEXT),
                    (&v.approved_at, Type::INT8),
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
        let id = &session_sha256[..];
        first_pending(self.query(
            &format!(
                "SELECT {PENDING_COLUMNS} FROM portal_pending_logins WHERE session_sha256 = $1"
            ),
            &[(&id, Type::BYTEA)],
        )?)
    }

    fn qr_login(&self, token: &str) -> Result<Option<PendingLogin>, StoreError> {
        first_pending(self.query(
            &format!(
                "SELECT {PENDING_COLUMNS} FROM portal_pending_logins \
                 WHERE qr_token = $1 AND method = 'qr'"
            ),
            &[(&token, Type::TEXT)],
        )?)
    }

    fn approve_qr_login(
        &self,
        token: &str,
        citizen: &SessionCitizen,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let at = millis(at);
        let rows = self.query(
            "UPDATE portal_pending_logins SET approved_personal_code = $2, \
             approved_name = $3, approved_at = $4 \
             WHERE qr_token = $1 AND method = 'qr' AND approved_at IS NULL \
             RETURNING session_sha256",
            &[
                (&token, Type::TEXT),
                (&citizen.personal_code, Type::TEXT),
                (&citizen.name, Type::TEXT),
                (&at, Type::INT8),
            ],
        )?;
        match rows.len() {
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
        let id = &session_sha256[..];
        first_pending(self.query(
            &format!(
                "DELETE FROM portal_pending_logins WHERE session_sha256 = $1 \
                 RETURNING {PENDING_COLUMNS}"
            ),
            &[(&id, Type::BYTEA)],
        )?)
    }

    fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.pool.write(|tx| {
            lighter_commit(tx)?;
            insert_session(tx, session)
        })
    }

    fn session(&self, id_sha256: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        let id = &id_sha256[..];
        let rows = self.query(
            &format!("SELECT {SESSION_COLUMNS} FROM portal_sessions WHERE id_sha256 = $1"),
            &[(&id, Type::BYTEA)],
        )?;
        rows.first()
            .map(|r| {
                SessionRow {
                    id_sha256: get(r, 0)?,
                    csrf_sha256: get(r, 1)?,
                    created_at: get(r, 2)?,
                    last_seen_at: get(r, 3)?,
                    expires_at: get(r, 4)?,
                    personal_code: get(r, 5)?,
                    name: get(r, 6)?,
                    method: get(r, 7)?,
                    ended_at: get(r, 8)?,
                }
                .into_session()
            })
            .transpose()
    }

    fn touch_session(&self, id_sha256: &[u8; 32], at: OffsetDateTime) -> Result<(), StoreError> {
        let (id, at) = (&id_sha256[..], millis(at));
        let touched = self.pool.write(|tx| {
            lighter_commit(tx)?;
            tx.query_typed(
                "UPDATE portal_sessions SET last_seen_at = GREATEST(last_seen_at, $2) \
                 WHERE id_sha256 = $1 AND ended_at IS NULL RETURNING 1",
                &[(&id, Type::BYTEA), (&at, Type::INT8)],
            )
            .map_err(db_error)
        })?;
        match touched.is_empty() {
            true => Err(StoreError::NotFound("no live session with this id".into())),
            false => Ok(()),
        }
    }

    fn log_in(&self, old: &[u8; 32], new: &Session, event: &Event) -> Result<(), StoreError> {
        self.write(|tx| {
            if !end(tx, old, event.at, " AND personal_code IS NULL")? {
                return Err(StoreError::NotFound(
                    "no live anonymous session with this id".into(),
                ));
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
            if !end(tx, id_sha256, at, "")? {
                return Err(StoreError::NotFound("no live session with this id".into()));
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
        let (id, at) = (&id_sha256[..], millis(issued_at));
        self.query(
            "INSERT INTO portal_nonces (session_sha256, nonce, issued_at) VALUES ($1, $2, $3) \
             ON CONFLICT (session_sha256) DO UPDATE SET nonce = EXCLUDED.nonce, \
             issued_at = EXCLUDED.issued_at",
            &[(&id, Type::BYTEA), (&nonce, Type::TEXT), (&at, Type::INT8)],
        )?;
        Ok(())
    }

    fn take_nonce(
        &self,
        id_sha256: &[u8; 32],
    ) -> Result<Option<(String, OffsetDateTime)>, StoreError> {
        let id = &id_sha256[..];
        let rows = self.query(
            "DELETE FROM portal_nonces WHERE session_sha256 = $1 RETURNING nonce, issued_at",
            &[(&id, Type::BYTEA)],
        )?;
        rows.first()
            .map(|r| {
                Ok((
                    get(r, 0)?,
                    imza_store::from_millis(get(r, 1)?, "issued_at")?,
                ))
            })
            .transpose()
    }

    fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        insert_event(&mut **self.pool.get()?, event)
    }

    fn events(&self, personal_code: &str, limit: usize) -> Result<Vec<Event>, StoreError> {
        let limit = sql_limit(limit);
        let rows = self.query(
            "SELECT at, personal_code, kind, method, detail FROM portal_events \
             WHERE personal_code = $1 ORDER BY seq DESC LIMIT $2",
            &[(&personal_code, Type::TEXT), (&limit, Type::INT8)],
        )?;
        rows.iter()
            .map(|r| event_from(get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?, get(r, 4)?))
            .collect()
    }

    fn put_access_code(&self, code: &AccessCode) -> Result<(), StoreError> {
        let id = &code.code_id[..];
        let (issued, expires) = (millis(code.issued_at), millis(code.expires_at));
        let tries = i32::try_from(code.tries_left)
            .map_err(|_| StoreError::Invalid(format!("{} tries", code.tries_left)))?;
        let locked = code.locked_until.map(millis);
        self.query(
            &put_code_sql("$"),
            &[
                (&code.personal_code, Type::TEXT),
                (&id, Type::BYTEA),
                (&code.code_scrypt, Type::BYTEA),
                (&code.salt, Type::BYTEA),
                (&issued, Type::INT8),
                (&expires, Type::INT8),
                (&tries, Type::INT4),
                (&locked, Type::INT8),
            ],
        )?;
        Ok(())
    }

    fn access_code(&self, personal_code: &str) -> Result<Option<AccessCode>, StoreError> {
        let rows = self.query(
            &format!(
                "SELECT {ACCESS_CODE_COLUMNS} FROM portal_access_codes WHERE personal_code = $1"
            ),
            &[(&personal_code, Type::TEXT)],
        )?;
        rows.first()
            .map(|r| {
                access_code_from(
                    get(r, 0)?,
                    get(r, 1)?,
                    get(r, 2)?,
                    get(r, 3)?,
                    get(r, 4)?,
                    get(r, 5)?,
                    i64::from(get::<i32>(r, 6)?),
                    get(r, 7)?,
                )
            })
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
        let (id, at, end) = (&code_id[..], millis(now), millis(lock_end));
        let tries =
            i32::try_from(tries).map_err(|_| StoreError::Invalid(format!("{tries} tries")))?;
        let rows = self.query(
            &wrong_try_sql("$"),
            &[
                (&personal_code, Type::TEXT),
                (&id, Type::BYTEA),
                (&at, Type::INT8),
                (&tries, Type::INT4),
                (&end, Type::INT8),
            ],
        )?;
        match rows.first() {
            Some(r) => failed_try(i64::from(get::<i32>(r, 0)?), get(r, 1)?, lock_end),
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
        let (id, at) = (&code_id[..], millis(now));
        let used = self
            .pool
            .get()?
            .execute(
                &use_code_sql("$") as &str,
                &[&personal_code as &(dyn ToSql + Sync), &id, &at],
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
        let [sessions, nonces, codes, pending] = purge_sql("$");
        let batch = sql_limit(batch.max(1));
        let (now, idle, nonces_before) = (
            millis(cutoffs.now),
            millis(cutoffs.idle_before),
            millis(cutoffs.nonces_before),
        );
        let mut purged = Purged::default();
        for _ in 0..max_rounds {
            // Each statement its own transaction (autocommit).
            let mut client = self.pool.get()?;
            let mut run = |sql: &str, params: &[&(dyn ToSql + Sync)]| {
                client
                    .execute(sql, params)
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                    .map_err(db_error)
            };
            let round = Purged {
                sessions: run(&sessions, &[&now, &idle, &batch])?,
                nonces: run(&nonces, &[&nonces_before, &batch])?,
                access_codes: run(&codes, &[&now, &batch])?,
                pending_logins: run(&pending, &[&batch])?,
            };
            drop(client);
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
