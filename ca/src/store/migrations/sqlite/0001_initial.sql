-- imza CA store, schema version 1: CAs, issued certificates, CRLs and the audit log.
--
-- Kept to types PostgreSQL also accepts (TEXT, BIGINT, INTEGER; BLOB becomes BYTEA there).
-- Times are unix seconds in BIGINT: certificate validity runs past 2038.

CREATE TABLE cas (
    name        TEXT PRIMARY KEY,
    parent      TEXT NULL REFERENCES cas(name),
    certificate BLOB NOT NULL,
    -- serde_json of KeyReference: where the key lives, never the key itself.
    key_ref     TEXT NOT NULL,
    base_url    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    -- Creation order, so parents list before their children.
    seq         BIGINT NOT NULL UNIQUE
);

CREATE TABLE certificates (
    ca              TEXT NOT NULL REFERENCES cas(name),
    -- Upper-case hex of the serial's unsigned big-endian bytes.
    serial          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    profile         TEXT NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    issued_at       BIGINT NOT NULL,
    der             BLOB NOT NULL,
    revoked_at      BIGINT NULL,
    -- RFC 5280 §5.3.1 CRLReason code.
    reason          INTEGER NULL,
    invalidity_date BIGINT NULL,
    -- A serial is issued at most once per CA: the database, not the caller, guarantees it.
    PRIMARY KEY (ca, serial)
);

-- A CA's certificates in issuance order: SQLite index entries end with the rowid, so this
-- is (ca, rowid) and a listing reads it in order and stops at its limit.
CREATE INDEX certificates_by_ca ON certificates (ca);

-- Revoked listing for CRLs: covers every column a CRL entry needs, and holds only revoked
-- rows, so issuance does not pay for it and a million-entry CRL reads one index.
CREATE INDEX certificates_revoked
    ON certificates (ca, revoked_at, serial, reason, invalidity_date)
    WHERE revoked_at IS NOT NULL;

CREATE TABLE crls (
    ca          TEXT NOT NULL REFERENCES cas(name),
    number      BIGINT NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    der         BLOB NOT NULL,
    PRIMARY KEY (ca, number)
);

-- The hash-chained audit log (see audit.rs). In SQLite, INTEGER PRIMARY KEY is the rowid
-- itself (no second index on the hot issuance path); a PostgreSQL schema uses BIGINT.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    action    TEXT NOT NULL,
    ca        TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
