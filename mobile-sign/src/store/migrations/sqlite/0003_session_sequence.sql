-- Sessions of one device are handed out oldest first, and those created in the same
-- millisecond in the order they were stored. That order is an explicit sequence number, a
-- column every engine can keep (a PostgreSQL store uses a sequence), rather than SQLite's
-- rowid.
ALTER TABLE mss_sessions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

-- Sessions stored before this migration keep the order they came in.
UPDATE mss_sessions SET seq = rowid;

-- Unique, and what a new session's number is read from (one past the highest).
CREATE UNIQUE INDEX mss_sessions_seq ON mss_sessions (seq);

-- What the phone's long poll asks, now in the order it reads: this device's running
-- sessions by creation time, then sequence number.
DROP INDEX mss_sessions_device_running;
CREATE INDEX mss_sessions_device_running
    ON mss_sessions (device_id, created_at, seq) WHERE completed_at IS NULL;
