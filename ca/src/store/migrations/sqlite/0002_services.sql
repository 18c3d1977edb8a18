-- imza CA store, schema version 2: the certified keys of the services a CA runs —
-- delegated OCSP responders (RFC 6960 §4.2.2.2) and time-stamping units (RFC 3161).
--
-- Each row names a certificate in `certificates` (issued by `ca` with the service's profile)
-- and where its private key lives. The key is never stored here.

CREATE TABLE services (
    -- 'ocsp' or 'tsa'.
    kind       TEXT NOT NULL,
    -- For 'ocsp' the CA it answers for (= ca); for 'tsa' the unit's name.
    name       TEXT NOT NULL,
    ca         TEXT NOT NULL,
    serial     TEXT NOT NULL,
    -- serde_json of KeyReference.
    key_ref    TEXT NOT NULL,
    -- TSA policy OID (TSTInfo.policy); NULL for OCSP responders.
    policy     TEXT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, name, serial),
    FOREIGN KEY (ca, serial) REFERENCES certificates (ca, serial)
);
