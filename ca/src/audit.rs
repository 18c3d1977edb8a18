//! The tamper-evident audit log: every CA action (init, issue, revoke, crl) appends an entry
//! whose hash covers its content and the previous entry's hash. Altering, inserting or deleting
//! a row inside the log breaks the chain at that row, and [`verify_chain`] names it.
//!
//! Limitation: a chain alone cannot show that the newest entries were cut off the end; the
//! count and head hash printed by `imza audit verify` are what to compare with a copy kept
//! elsewhere.

use time::OffsetDateTime;

use imza_core::clock::rfc3339;

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A CA action about to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: OffsetDateTime,
    /// `ca.init`, `ca.issue`, `ca.revoke`, `ca.crl`.
    pub action: String,
    /// The CA acted on.
    pub ca: String,
    /// Facts of the action as a JSON object (serial, subject, reason, CRL number ...).
    /// Never a key, a PIN or a password.
    pub details: serde_json::Value,
}

/// A recorded audit entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Position in the log, from 1 with no gaps.
    pub seq: u64,
    /// RFC 3339 time of the action.
    pub at: String,
    pub action: String,
    pub ca: String,
    /// JSON text exactly as hashed.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// Builds the entry that follows `prev` (`None` for the first) for `event`.
    pub fn chain(prev: Option<(u64, &str)>, event: &AuditEvent) -> AuditEntry {
        let (seq, prev_hash) = match prev {
            Some((seq, hash)) => (seq + 1, hash.to_string()),
            None => (1, GENESIS_HASH.to_string()),
        };
        let mut entry = AuditEntry {
            seq,
            at: rfc3339(event.at),
            action: event.action.clone(),
            ca: event.ca.clone(),
            details: event.details.to_string(),
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.computed_hash();
        entry
    }

    /// SHA-256 over the previous hash and every field, each length-prefixed so that no two
    /// different entries hash the same bytes.
    pub fn computed_hash(&self) -> String {
        let mut data = Vec::with_capacity(128 + self.details.len());
        let seq = self.seq.to_string();
        for field in [
            self.prev_hash.as_str(),
            seq.as_str(),
            &self.at,
            &self.action,
            &self.ca,
            &self.details,
        ] {
            data.extend_from_slice(&(field.len() as u64).to_be_bytes());
            data.extend_from_slice(field.as_bytes());
        }
        hex::encode(openssl::sha::sha256(&data))
    }
}

/// Where and why the chain broke.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at entry {seq}: {reason}")]
pub struct AuditBreak {
    pub seq: u64,
    pub reason: String,
}

/// Walks entries in order, carrying the expected previous hash and sequence number.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: u64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_string(),
        }
    }
}

impl ChainVerifier {
    /// Checks the next entry; the first broken one is reported.
    pub fn check(&mut self, entry: &AuditEntry) -> Result<(), AuditBreak> {
        let fail = |reason: String| AuditBreak {
            seq: entry.seq,
            reason,
        };
        if entry.seq != self.expected_seq {
            return Err(AuditBreak {
                seq: self.expected_seq,
                reason: format!(
                    "entry {} is missing (the next entry found is {})",
                    self.expected_seq, entry.seq
                ),
            });
        }
        if entry.prev_hash != self.prev_hash {
            return Err(fail(format!(
                "its previous-hash {} does not match entry {}'s hash {}",
                entry.prev_hash,
                entry.seq.saturating_sub(1),
                self.prev_hash
            )));
        }
        let computed = entry.computed_hash();
        if computed != entry.hash {
            return Err(fail(format!(
                "its content was altered (stored hash {}, content hashes to {computed})",
                entry.hash
            )));
        }
        self.expected_seq += 1;
        self.prev_hash = entry.hash.clone();
        Ok(())
    }

    /// Entries checked so far.
    pub fn count(&self) -> u64 {
        self.expected_seq - 1
    }

    /// Hash of the last entry checked (the genesis hash for an empty log).
    pub fn head(&self) -> &str {
        &self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> AuditEvent {
        AuditEvent {
            at: OffsetDateTime::UNIX_EPOCH,
            action: "ca.issue".into(),
            ca: "citizens".into(),
            details: serde_json::json!({ "serial": n }),
        }
    }

    fn chain(n: u32) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|e| (e.seq, e.hash.as_str()));
            let entry = AuditEntry::chain(prev, &event(i));
            out.push(entry);
        }
        out
    }

    fn verify(entries: &[AuditEntry]) -> Result<u64, AuditBreak> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.check(e)?;
        }
        Ok(v.count())
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn altered_entry_is_named() {
        let mut entries = chain(5);
        entries[2].details = r#"{"serial":99}"#.into();
        assert_eq!(verify(&entries).unwrap_err().seq, 3);
    }

    #[test]
    fn rehashed_entry_breaks_the_next_link() {
        let mut entries = chain(5);
        entries[2].details = r#"{"serial":99}"#.into();
        entries[2].hash = entries[2].computed_hash();
        assert_eq!(verify(&entries).unwrap_err().seq, 4);
    }

    #[test]
    fn deleted_entry_is_reported_missing() {
        let mut entries = chain(5);
        entries.remove(1);
        let err = verify(&entries).unwrap_err();
        assert_eq!(err.seq, 2);
        assert!(err.reason.contains("missing"));
    }
}
