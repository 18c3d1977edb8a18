-- imza portal tables, schema version 2: one-time access codes given at a service centre.
-- One live code per citizen (a new one replaces it); the code itself is never kept, only its
-- scrypt hash with a salt of its own. Wrong tries count down; at zero the citizen is locked out
-- until locked_until, and then has the tries again.
CREATE TABLE portal_access_codes (
    personal_code TEXT    PRIMARY KEY,
    code_id       BLOB    NOT NULL CHECK (length(code_id) = 16),
    code_scrypt   BLOB    NOT NULL,
    salt          BLOB    NOT NULL,
    issued_at     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    tries_left    INTEGER NOT NULL CHECK (tries_left >= 0),
    locked_until  INTEGER NULL
) WITHOUT ROWID;
