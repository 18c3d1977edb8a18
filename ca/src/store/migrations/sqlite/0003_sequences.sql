-- imza CA store, schema version 3: order comes from sequences, not from MAX+1 or SQLite's
-- rowid, so that the same rules hold on PostgreSQL, where several nodes write at once.
-- Existing rows keep their order: their ids are their rowids.

CREATE TABLE sequences (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

-- Issuance order of certificates and services.
ALTER TABLE certificates ADD COLUMN id INTEGER NOT NULL DEFAULT 0;
UPDATE certificates SET id = rowid;
ALTER TABLE services ADD COLUMN id INTEGER NOT NULL DEFAULT 0;
UPDATE services SET id = rowid;

INSERT INTO sequences (name, value) VALUES
    ('cas', (SELECT COALESCE(MAX(seq), 0) FROM cas)),
    ('certificates', (SELECT COALESCE(MAX(id), 0) FROM certificates)),
    ('services', (SELECT COALESCE(MAX(id), 0) FROM services));

-- A CA's certificates in issuance order: a listing reads the index in order and stops at its
-- limit.
DROP INDEX certificates_by_ca;
CREATE INDEX certificates_in_order ON certificates (ca, id);
