-- imza portal tables on PostgreSQL, schema version 2, the same as SQLite's: one-time access
-- codes given at a service centre, kept as scrypt hashes, with a count of wrong tries and a
-- lock-out.
CREATE TABLE portal_access_codes (
    personal_code TEXT   PRIMARY KEY,
    code_id       BYTEA  NOT NULL CHECK (length(code_id) = 16),
    code_scrypt   BYTEA  NOT NULL,
    salt          BYTEA  NOT NULL,
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    tries_left    INTEGER NOT NULL CHECK (tries_left >= 0),
    locked_until  BIGINT NULL
);
