-- imza mobile signature tables on PostgreSQL, schema version 4, as on SQLite: the sessions of one citizen (every device
-- registered with their national identity number), newest first, for the portal's "who used
-- my certificates" — read from two indexes, not by scanning the tables.
CREATE INDEX mss_devices_of_national_id ON mss_devices (national_id);
CREATE INDEX mss_sessions_of_device ON mss_sessions (device_id, seq);
