-- imza portal tables, schema version 3: the phone and QR logins under way, one per browser
-- session (a new one replaces it). A phone login keeps the signature service's session id and
-- the challenge's hash; a QR login its public token, the secret its device links are
-- authenticated with (never shown to the browser) and the challenge the phone signs, and, once
-- a phone answered, whom it identified.
CREATE TABLE portal_pending_logins (
    session_sha256         BLOB    PRIMARY KEY CHECK (length(session_sha256) = 32),
    method                 TEXT    NOT NULL CHECK (method IN ('phone', 'qr')),
    started_at             INTEGER NOT NULL,
    challenge              BLOB    NOT NULL CHECK (length(challenge) = 32),
    mss_session_id         TEXT    NULL,
    national_id            TEXT    NULL,
    verification_code      TEXT    NULL,
    qr_token               TEXT    NULL UNIQUE,
    qr_secret              BLOB    NULL CHECK (qr_secret IS NULL OR length(qr_secret) = 32),
    approved_personal_code TEXT    NULL,
    approved_name          TEXT    NULL,
    approved_at            INTEGER NULL
) WITHOUT ROWID;
