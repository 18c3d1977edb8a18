-- imza portal tables on PostgreSQL, schema version 3, the same as SQLite's: the phone and QR
-- logins under way, one per browser session.
CREATE TABLE portal_pending_logins (
    session_sha256         BYTEA   PRIMARY KEY CHECK (length(session_sha256) = 32),
    method                 TEXT    NOT NULL CHECK (method IN ('phone', 'qr')),
    started_at             BIGINT  NOT NULL,
    challenge              BYTEA   NOT NULL CHECK (length(challenge) = 32),
    mss_session_id         TEXT    NULL,
    national_id            TEXT    NULL,
    verification_code      TEXT    NULL,
    qr_token               TEXT    NULL UNIQUE,
    qr_secret              BYTEA   NULL CHECK (qr_secret IS NULL OR length(qr_secret) = 32),
    approved_personal_code TEXT    NULL,
    approved_name          TEXT    NULL,
    approved_at            BIGINT  NULL
);
