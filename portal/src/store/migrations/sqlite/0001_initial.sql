-- imza portal tables, schema version 1: browser sessions, the login page's challenge nonces,
-- and each citizen's history. Times are unix milliseconds.

-- A browser session: the cookie carries a random secret, only its SHA-256 is kept, with the
-- SHA-256 of the session's CSRF token. The citizen's columns are all NULL before login (a
-- login stores a new session and ends the anonymous one).
CREATE TABLE portal_sessions (
    id_sha256     BLOB    PRIMARY KEY CHECK (length(id_sha256) = 32),
    csrf_sha256   BLOB    NOT NULL CHECK (length(csrf_sha256) = 32),
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    personal_code TEXT    NULL,
    name          TEXT    NULL,
    method        TEXT    NULL,
    ended_at      INTEGER NULL,
    CHECK ((personal_code IS NULL) = (name IS NULL) AND (name IS NULL) = (method IS NULL))
) WITHOUT ROWID;

-- The challenge nonce a session's login page was given: one per session, taken once.
CREATE TABLE portal_nonces (
    session_sha256 BLOB    PRIMARY KEY CHECK (length(session_sha256) = 32),
    nonce          TEXT    NOT NULL,
    issued_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- A citizen's history, in the order recorded.
CREATE TABLE portal_events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    personal_code TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    method        TEXT    NULL,
    detail        TEXT    NOT NULL
);
CREATE INDEX portal_events_of_citizen ON portal_events (personal_code, seq);
