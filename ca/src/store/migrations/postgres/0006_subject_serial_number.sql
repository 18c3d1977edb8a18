-- imza CA store on PostgreSQL, schema version 6, the same as SQLite's: the subject's
-- serialNumber (a citizen's personal code) beside the subject, indexed, for finding a
-- citizen's certificates without reading the table. NULL when the subject has none.
ALTER TABLE certificates ADD COLUMN subject_serial_number TEXT NULL;

-- Certificates issued before this version: the value after "serialNumber=" in the stored
-- RFC 4514 subject, up to the next comma (readers check the subject exactly again).
UPDATE certificates SET subject_serial_number = substring(subject from 'serialNumber=([^,]*)')
    WHERE strpos(subject, 'serialNumber=') > 0;

CREATE INDEX certificates_of_subject_serial_number
    ON certificates (subject_serial_number, not_after)
    WHERE subject_serial_number IS NOT NULL;
