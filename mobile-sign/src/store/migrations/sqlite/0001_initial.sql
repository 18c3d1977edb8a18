-- The mobile signature service's tables, beside the CA's in imza.db. Everything is prefixed
-- mss_ and versioned in mss_schema_migrations: the CA's tables are never touched.

-- Relying parties (government services) and the SHA-256 of their API key.
CREATE TABLE mss_relying_parties (
    name            TEXT PRIMARY KEY,
    api_key_sha256  BLOB NOT NULL,
    -- Unix milliseconds.
    created_at      INTEGER NOT NULL
);

-- Registered phones. A phone number has at most one active device; a replaced one keeps its
-- row (deactivated_at set) so that old sessions still name it.
CREATE TABLE mss_devices (
    device_id       TEXT PRIMARY KEY,
    phone_number    TEXT NOT NULL,
    national_id     TEXT NOT NULL,
    secret_sha256   BLOB NOT NULL,
    -- The name of the CA (in the CA store) that issued each certificate, and its DER.
    auth_ca         TEXT NOT NULL,
    auth_der        BLOB NOT NULL,
    sign_ca         TEXT NOT NULL,
    sign_der        BLOB NOT NULL,
    registered_at   INTEGER NOT NULL,
    deactivated_at  INTEGER
);

CREATE UNIQUE INDEX mss_devices_active_phone
    ON mss_devices (phone_number) WHERE deactivated_at IS NULL;

-- Sessions: one request of a relying party to one phone, RUNNING while completed_at is NULL.
CREATE TABLE mss_sessions (
    session_id      TEXT PRIMARY KEY,
    relying_party   TEXT NOT NULL REFERENCES mss_relying_parties (name),
    -- NULL when the session was created already complete with NOT_MOBILE_CLIENT.
    device_id       TEXT REFERENCES mss_devices (device_id),
    kind            TEXT NOT NULL,
    hash            BLOB NOT NULL,
    hash_type       TEXT NOT NULL,
    display_text    TEXT,
    language        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    completed_at    INTEGER,
    result          TEXT,
    -- With result OK only: the verified signature, its Mobile-ID algorithm name and the
    -- certificate it verified against.
    signature       BLOB,
    signature_algorithm TEXT,
    cert            BLOB,
    CHECK ((completed_at IS NULL) = (result IS NULL))
);

-- What the phone's long poll asks: this device's running sessions.
CREATE INDEX mss_sessions_device_running
    ON mss_sessions (device_id, created_at) WHERE completed_at IS NULL;

-- What the clean-up asks: running sessions past their expiry, complete ones by age.
CREATE INDEX mss_sessions_running_expiry
    ON mss_sessions (expires_at) WHERE completed_at IS NULL;
CREATE INDEX mss_sessions_completed
    ON mss_sessions (completed_at) WHERE completed_at IS NOT NULL;
