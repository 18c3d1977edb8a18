-- imza CA store, schema version 4: service keys held by other nodes.
--
-- A public node (imza serve without the ca role) never holds a CA key, so it cannot certify
-- its own OCSP responder. It makes the key on its own machine and files a request (a PKCS#10
-- CSR and where it keeps the key); the CA side certifies it into `services`, naming the node
-- whose data directory (or token) holds the key. NULL node: the CA node's own.

ALTER TABLE services ADD COLUMN node TEXT NULL;

CREATE TABLE service_requests (
    -- From the sequence 'service_requests'.
    id               INTEGER PRIMARY KEY,
    -- 'ocsp' or 'tsa'.
    kind             TEXT NOT NULL,
    -- For 'ocsp' the CA answered for; for 'tsa' the unit's name.
    name             TEXT NOT NULL,
    ca               TEXT NOT NULL REFERENCES cas(name),
    node             TEXT NOT NULL,
    csr              BLOB NOT NULL,
    -- serde_json of KeyReference, relative to the node's data directory.
    key_ref          TEXT NOT NULL,
    requested_at     BIGINT NOT NULL,
    -- Set once: the serial of the certificate that answered it, or why it was refused.
    certified_serial TEXT NULL,
    refused          TEXT NULL
);

-- At most one open request per node and service.
CREATE UNIQUE INDEX service_requests_open ON service_requests (kind, name, node)
    WHERE certified_serial IS NULL AND refused IS NULL;

INSERT INTO sequences (name, value) VALUES ('service_requests', 0);
