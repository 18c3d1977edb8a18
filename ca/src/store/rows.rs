//! Stored values as both engines keep them — times as unix seconds, serials as upper-case
//! hex, key references as JSON, reasons as RFC 5280 codes — and their checked conversion
//! back into records. One home, so the SQLite and PostgreSQL stores read a row the same way
//! and call the same values corrupt.

use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;

use imza_core::crl::{reason_code, reason_from_code, RevokedEntry};

use super::{
    CaRecord, CertificateRecord, CertificateStatus, CrlRecord, Revocation, ServiceKind,
    ServiceRecord, ServiceRequest, StoreError,
};
use crate::audit::AuditEntry;
use crate::keyref::KeyReference;

/// Columns of a certificate row, in the order both engines select them.
pub(super) const CERTIFICATE_COLUMNS: &str = "ca, serial, subject, profile, not_before, \
     not_after, issued_at, der, revoked_at, reason, invalidity_date, crl_shard";

/// A certificate row as read from either engine.
pub(super) struct CertificateRow {
    pub ca: String,
    pub serial: String,
    pub subject: String,
    pub profile: String,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub der: Vec<u8>,
    pub revoked_at: Option<i64>,
    pub reason: Option<i64>,
    pub invalidity_date: Option<i64>,
    pub crl_shard: Option<i64>,
}

impl CertificateRow {
    pub fn into_record(self) -> Result<CertificateRecord, StoreError> {
        let revocation = match self.revoked_at {
            None => None,
            Some(at) => Some(Revocation {
                revoked_at: time_from(at, "revocation time")?,
                reason: reason_of(&self.serial, self.reason)?,
                invalidity_date: opt_time_from(self.invalidity_date, "invalidity date")?,
            }),
        };
        Ok(CertificateRecord {
            serial: serial_from_hex(&self.serial)?,
            ca: self.ca,
            subject: self.subject,
            profile: self.profile,
            not_before: time_from(self.not_before, "notBefore")?,
            not_after: time_from(self.not_after, "notAfter")?,
            issued_at: time_from(self.issued_at, "issuance time")?,
            der: self.der,
            revocation,
            crl_shard: self
                .crl_shard
                .map(|s| shard_from(s, "CRL shard"))
                .transpose()?,
        })
    }
}

/// The values a certificate is written with.
pub(super) struct CertificateValues {
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub revoked_at: Option<i64>,
    pub reason: Option<i64>,
    pub invalidity_date: Option<i64>,
    pub crl_shard: Option<i64>,
    pub subject_serial_number: Option<String>,
}

impl CertificateValues {
    pub fn of(c: &CertificateRecord) -> CertificateValues {
        let revocation = c.revocation.as_ref();
        CertificateValues {
            serial: hex::encode_upper(&c.serial),
            not_before: c.not_before.unix_timestamp(),
            not_after: c.not_after.unix_timestamp(),
            issued_at: c.issued_at.unix_timestamp(),
            revoked_at: revocation.map(|r| r.revoked_at.unix_timestamp()),
            reason: revocation.map(|r| i64::from(reason_code(r.reason))),
            invalidity_date: revocation
                .and_then(|r| r.invalidity_date)
                .map(|t| t.unix_timestamp()),
            crl_shard: c.crl_shard.map(i64::from),
            subject_serial_number: super::subject_serial_number(&c.subject),
        }
    }
}

/// The status of a serial from its (revoked_at, reason) columns, or Unknown without a row.
pub(super) fn status_from(
    serial: &[u8],
    row: Option<(Option<i64>, Option<i64>)>,
) -> Result<CertificateStatus, StoreError> {
    Ok(match row {
        None => CertificateStatus::Unknown,
        Some((None, _)) => CertificateStatus::Issued,
        Some((Some(at), reason)) => CertificateStatus::Revoked {
            at: time_from(at, "revocation time")?,
            reason: reason_of(&hex::encode_upper(serial), reason)?,
        },
    })
}

/// A CRL entry from its columns.
pub(super) fn revoked_entry(
    serial: &str,
    revoked_at: i64,
    reason: Option<i64>,
    invalidity_date: Option<i64>,
) -> Result<RevokedEntry, StoreError> {
    Ok(RevokedEntry {
        serial: serial_from_hex(serial)?,
        revoked_at: time_from(revoked_at, "revocation time")?,
        reason: reason.map(reason_from).transpose()?,
        invalidity_date: opt_time_from(invalidity_date, "invalidity date")?,
    })
}

pub(super) fn ca_record(
    name: String,
    parent: Option<String>,
    certificate: Vec<u8>,
    key_ref: &str,
    base_url: String,
    created_at: i64,
    crl_shards: i64,
) -> Result<CaRecord, StoreError> {
    let key = key_from_json(key_ref, || format!("CA {name}"))?;
    Ok(CaRecord {
        parent,
        certificate,
        key,
        base_url,
        created_at: time_from(created_at, "CA creation time")?,
        crl_shards: match shard_from(crl_shards, "CRL shard count")? {
            n if n > crate::crl_shards::MAX_CRL_SHARDS => {
                return Err(StoreError::Corrupt(format!(
                    "CA {name} has {n} CRL shards, more than {}",
                    crate::crl_shards::MAX_CRL_SHARDS
                )))
            }
            n => n,
        },
        name,
    })
}

/// Columns of a CRL row, in the order both engines select them.
pub(super) const CRL_COLUMNS: &str = "ca, shard, number, this_update, next_update, der";

/// A CRL row: [`CRL_COLUMNS`].
pub(super) fn crl_record(
    ca: String,
    shard: Option<i64>,
    number: i64,
    this_update: i64,
    next_update: i64,
    der: Vec<u8>,
) -> Result<CrlRecord, StoreError> {
    Ok(CrlRecord {
        ca,
        shard: shard.map(|s| shard_from(s, "CRL shard")).transpose()?,
        number: to_u64(number, "CRL number")?,
        this_update: time_from(this_update, "CRL thisUpdate")?,
        next_update: time_from(next_update, "CRL nextUpdate")?,
        der,
    })
}

/// A CRL's (this_update, next_update) columns.
pub(super) fn crl_validity(
    (this_update, next_update): (i64, i64),
) -> Result<(OffsetDateTime, OffsetDateTime), StoreError> {
    Ok((
        time_from(this_update, "CRL thisUpdate")?,
        time_from(next_update, "CRL nextUpdate")?,
    ))
}

/// A service row as read from either engine.
pub(super) struct ServiceRow {
    pub name: String,
    pub ca: String,
    pub serial: String,
    pub key_ref: String,
    pub policy: Option<String>,
    pub created_at: i64,
    pub node: Option<String>,
}

impl ServiceRow {
    pub fn into_record(self, kind: ServiceKind) -> Result<ServiceRecord, StoreError> {
        let name = self.name;
        let key = key_from_json(&self.key_ref, || {
            format!("{} service {name}", kind.as_str())
        })?;
        Ok(ServiceRecord {
            kind,
            serial: serial_from_hex(&self.serial)?,
            key,
            policy: self.policy,
            created_at: time_from(self.created_at, "service creation time")?,
            name,
            ca: self.ca,
            node: self.node,
        })
    }
}

/// Columns of a CA row, in the order both engines select them.
pub(super) const CA_COLUMNS: &str =
    "name, parent, certificate, key_ref, base_url, created_at, crl_shards";

/// Columns of a service request row, in the order both engines select them.
pub(super) const REQUEST_COLUMNS: &str = "id, kind, name, ca, node, csr, key_ref, requested_at";

/// A service request row as read from either engine.
pub(super) struct RequestRow {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub ca: String,
    pub node: String,
    pub csr: Vec<u8>,
    pub key_ref: String,
    pub requested_at: i64,
}

impl RequestRow {
    pub fn into_request(self) -> Result<ServiceRequest, StoreError> {
        let kind = match self.kind.as_str() {
            "ocsp" => ServiceKind::Ocsp,
            "tsa" => ServiceKind::Tsa,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "service request {} of unknown kind {other:?}",
                    self.id
                )))
            }
        };
        let key = key_from_json(&self.key_ref, || format!("service request {}", self.id))?;
        Ok(ServiceRequest {
            id: to_u64(self.id, "service request id")?,
            kind,
            name: self.name,
            ca: self.ca,
            node: self.node,
            csr: self.csr,
            key,
            requested_at: time_from(self.requested_at, "request time")?,
        })
    }
}

/// An audit row: (seq, at, action, ca, details, prev_hash, hash).
pub(super) fn audit_entry(
    seq: i64,
    at: String,
    action: String,
    ca: String,
    details: String,
    prev_hash: String,
    hash: String,
) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: to_u64(seq, "audit sequence number")?,
        at,
        action,
        ca,
        details,
        prev_hash,
        hash,
    })
}

pub(super) fn key_to_json(key: &KeyReference) -> Result<String, StoreError> {
    serde_json::to_string(key)
        .map_err(|e| StoreError::Backend(format!("cannot encode the key reference: {e}")))
}

fn key_from_json(text: &str, whose: impl Fn() -> String) -> Result<KeyReference, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!("key reference of {} is unreadable: {e}", whose()))
    })
}

/// The parent a subordinate CA's certificate must come from, checked before any write.
pub(super) fn check_issued_by_parent(
    ca: &CaRecord,
    issued_by_parent: Option<&CertificateRecord>,
) -> Result<(), StoreError> {
    match issued_by_parent {
        Some(cert) if ca.parent.as_deref() != Some(cert.ca.as_str()) => {
            Err(StoreError::Corrupt(format!(
                "CA {}'s certificate is recorded as issued by CA {}, but its parent is {}",
                ca.name,
                cert.ca,
                ca.parent.as_deref().unwrap_or("none (a root)")
            )))
        }
        _ => Ok(()),
    }
}

/// A service must name the certificate it is stored with.
pub(super) fn check_service_certificate(
    service: &ServiceRecord,
    certificate: &CertificateRecord,
) -> Result<(), StoreError> {
    if service.ca != certificate.ca || service.serial != certificate.serial {
        return Err(StoreError::Corrupt(format!(
            "service {} {} names certificate {} of CA {}, not the one given",
            service.kind.as_str(),
            service.name,
            hex::encode_upper(&service.serial),
            service.ca
        )));
    }
    Ok(())
}

pub(super) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Invalid(format!("{what} {value} is too large to store")))
}

pub(super) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {what} {value}")))
}

/// A stored shard number or shard count (never negative, at most `u32::MAX`).
pub(super) fn shard_from(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value} is out of range")))
}

pub(super) fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn time_from(secs: i64, what: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| StoreError::Corrupt(format!("{what} {secs} is not a valid time")))
}

fn opt_time_from(secs: Option<i64>, what: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    secs.map(|s| time_from(s, what)).transpose()
}

fn reason_of(serial: &str, reason: Option<i64>) -> Result<CrlReason, StoreError> {
    match reason {
        Some(code) => reason_from(code),
        None => Err(StoreError::Corrupt(format!(
            "revoked certificate {serial} has no reason"
        ))),
    }
}

fn reason_from(code: i64) -> Result<CrlReason, StoreError> {
    u32::try_from(code)
        .ok()
        .and_then(reason_from_code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown revocation reason code {code}")))
}

/// The error for a revocation that lost: the certificate was revoked at `at`.
pub(super) fn already_revoked(serial: &str, at: i64) -> Result<StoreError, StoreError> {
    Ok(StoreError::AlreadyRevoked {
        serial: serial.to_string(),
        revoked_at: imza_core::clock::rfc3339(time_from(at, "revocation time")?),
    })
}

/// Decodes a stored serial. Hand-written because it runs once per entry of a CRL that may
/// list a million, and the `hex` crate's decoder is several times slower.
pub(super) fn serial_from_hex(text: &str) -> Result<Vec<u8>, StoreError> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'A'..=b'F' => Some(c - b'A' + 10),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    let corrupt = || StoreError::Corrupt(format!("serial {text:?} is not hex"));
    if !bytes.len().is_multiple_of(2) {
        return Err(corrupt());
    }
    let mut out = Vec::with_capacity(bytes.len() / 2);
    for pair in bytes.chunks_exact(2) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
            _ => return Err(corrupt()),
        }
    }
    Ok(out)
}
