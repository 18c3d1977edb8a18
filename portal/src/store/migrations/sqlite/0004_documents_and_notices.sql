-- imza portal tables, schema version 4: the register of documents the portal issued (signed
-- e-certificates, "e-arayış"), each check of one, and the certificate expiry notices sent.

-- A document: its reference (12 Crockford base32 characters, made by the portal from a
-- CSPRNG), what it states, to whom, when, the SHA-256 of its PDF, and the PDF itself (last,
-- so that a listing reads no PDF), valid or withdrawn.
CREATE TABLE portal_documents (
    reference         TEXT    PRIMARY KEY CHECK (length(reference) = 12),
    kind              TEXT    NOT NULL CHECK (kind IN ('residence', 'employment', 'personal_data')),
    issued_to         TEXT    NOT NULL,
    issued_at         INTEGER NOT NULL,
    pdf_sha256        BLOB    NOT NULL CHECK (length(pdf_sha256) = 32),
    withdrawn_at      INTEGER NULL,
    withdrawal_reason TEXT    NULL,
    pdf               BLOB    NOT NULL,
    CHECK ((withdrawn_at IS NULL) = (withdrawal_reason IS NULL))
);
CREATE INDEX portal_documents_of_citizen ON portal_documents (issued_to, issued_at);

-- Each verification of a registered document.
CREATE TABLE portal_document_checks (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    reference    TEXT    NOT NULL,
    checked_at   INTEGER NOT NULL,
    organisation TEXT    NULL,
    channel      TEXT    NOT NULL CHECK (channel IN ('page', 'upload', 'api'))
);
CREATE INDEX portal_document_checks_of_document ON portal_document_checks (reference, seq);

-- Expiry notices: one row per (certificate, threshold), inserted if absent before sending
-- (the claim), marked sent after; a claim never marked sent may be taken again after a lease.
CREATE TABLE portal_notices (
    certificate    TEXT    NOT NULL,
    threshold_days INTEGER NOT NULL CHECK (threshold_days > 0),
    personal_code  TEXT    NOT NULL,
    profile        TEXT    NOT NULL,
    not_after      INTEGER NOT NULL,
    claimed_at     INTEGER NOT NULL,
    sent_at        INTEGER NULL,
    emailed_to     TEXT    NULL,
    PRIMARY KEY (certificate, threshold_days)
) WITHOUT ROWID;
CREATE INDEX portal_notices_of_citizen ON portal_notices (personal_code, claimed_at);
