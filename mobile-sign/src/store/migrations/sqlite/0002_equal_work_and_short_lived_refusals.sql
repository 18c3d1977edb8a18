-- Authentication reads the stored hash of a secret from an index that holds it, so that a
-- known name or device id and an unknown one cost the same lookup: one descent of one index,
-- no visit to the table (see MobileStore::relying_party_key_hash_or).
CREATE UNIQUE INDEX mss_relying_parties_key
    ON mss_relying_parties (name, api_key_sha256);
-- deactivated_at is in the columns (always NULL here) so that the statement, which tests it,
-- finds everything it reads in the index.
CREATE UNIQUE INDEX mss_devices_active_secret
    ON mss_devices (device_id, secret_sha256, deactivated_at) WHERE deactivated_at IS NULL;

-- Sessions created already complete (NOT_MOBILE_CLIENT, no device) are kept only until their
-- expiry, not a day: what the clean-up asks for them.
CREATE INDEX mss_sessions_refused_expiry
    ON mss_sessions (expires_at) WHERE device_id IS NULL;
