-- imza CA store, schema version 6: the subject's serialNumber (ETSI EN 319 412-1 §5.1.3: a
-- citizen's personal code, PNOAZ-5ZK7T2Q) beside the subject, indexed, so that a citizen's
-- certificates are found without reading the table (the portal's cabinet). Written at
-- issuance when the subject carries exactly one serialNumber; NULL otherwise.
ALTER TABLE certificates ADD COLUMN subject_serial_number TEXT NULL;

-- Certificates issued before this version: the value after "serialNumber=" in the stored
-- RFC 4514 subject, up to the next comma. (A reader checks the subject exactly again, so a
-- value this cannot cut right is missed, never misattributed.)
UPDATE certificates SET subject_serial_number = substr(
        subject,
        instr(subject, 'serialNumber=') + 13,
        CASE WHEN instr(substr(subject, instr(subject, 'serialNumber=') + 13), ',') > 0
             THEN instr(substr(subject, instr(subject, 'serialNumber=') + 13), ',') - 1
             ELSE length(subject) END)
    WHERE instr(subject, 'serialNumber=') > 0;

CREATE INDEX certificates_of_subject_serial_number
    ON certificates (subject_serial_number, not_after)
    WHERE subject_serial_number IS NOT NULL;
