-- imza CA store, schema version 5: partitioned CRLs (RFC 5280 §5.2.5). A CA may publish its
-- CRL as shards; each certificate names its shard in its CRL distribution point when it is
-- issued, and each shard CRL carries that point as its issuingDistributionPoint.

-- How many shards the CA's CRL is cut into; 0: one CRL, not partitioned.
ALTER TABLE cas ADD COLUMN crl_shards INTEGER NOT NULL DEFAULT 0;

-- The shard (0 .. crl_shards - 1) whose CRL lists the certificate once it is revoked; NULL for
-- a certificate of a CA that is not partitioned (its one CRL lists it).
ALTER TABLE certificates ADD COLUMN crl_shard INTEGER NULL;

-- The shard a CRL covers; NULL for the one CRL of a CA that is not partitioned. CRL numbers
-- stay unique per CA: the shards of a CA draw on one sequence.
ALTER TABLE crls ADD COLUMN shard INTEGER NULL;

-- One shard's revoked certificates, reading only that shard's part of an index of revoked
-- rows (every column a CRL entry needs): signing all shards reads each revoked row once.
CREATE INDEX certificates_revoked_in_shard
    ON certificates (ca, crl_shard, serial, revoked_at, reason, invalidity_date)
    WHERE revoked_at IS NOT NULL;

-- The latest CRL of one shard (or, shard NULL, of the CA's one CRL).
CREATE INDEX crls_of_shard ON crls (ca, shard, number);
