//! Stored values as both engines keep them — times as unix milliseconds, kinds, hash types,
//! languages and results by their protocol names, hashes as 32 bytes — and their checked
//! conversion back into records; and what a write refused by a uniqueness or reference rule
//! means. One home, so the SQLite and PostgreSQL stores read a row the same way, call the same
//! values corrupt and refuse the same writes with the same errors.

use imza_core::alg::DigestAlgorithm;
use imza_store::Violation;

use super::sessions::{result_on_expiry, SessionCompletion, SessionRecord};
use super::{Device, RegisteredCertificate, StoreError};
use crate::protocol::hash_type;
use crate::protocol::{SessionKind, SessionResult};

/// Columns of a device row, in the order both engines select them ([`DeviceRow`]).
pub(super) const DEVICE_COLUMNS: &str = "device_id, phone_number, national_id, auth_ca, \
     auth_der, sign_ca, sign_der, registered_at";

/// Columns of a session row, in the order both engines select them ([`SessionRow`]).
pub(super) const SESSION_COLUMNS: &str = "session_id, relying_party, device_id, kind, hash, \
     hash_type, display_text, language, created_at, expires_at, delivered_at, completed_at, \
     result, signature, signature_algorithm, cert";

/// Every result, for reading the stored names back.
const RESULTS: [SessionResult; 8] = [
    SessionResult::Ok,
    SessionResult::UserRefused,
    SessionResult::Timeout,
    SessionResult::NotMobileClient,
    SessionResult::PhoneAbsent,
    SessionResult::SignatureHashMismatch,
    SessionResult::DeliveryError,
    SessionResult::PinBlocked,
];

/// A device row ([`DEVICE_COLUMNS`]) as read from either engine.
pub(super) struct DeviceRow {
    pub device_id: String,
    pub phone_number: String,
    pub national_id: String,
    pub auth_ca: String,
    pub auth_der: Vec<u8>,
    pub sign_ca: String,
    pub sign_der: Vec<u8>,
    pub registered_at: i64,
}

impl DeviceRow {
    pub fn into_device(self) -> Result<Device, StoreError> {
        Ok(Device {
            registered_at: from_millis(self.registered_at, "registered_at")?,
            device_id: self.device_id,
            phone_number: self.phone_number,
            national_id: self.national_id,
            auth: RegisteredCertificate {
                ca: self.auth_ca,
                der: self.auth_der,
            },
            sign: RegisteredCertificate {
                ca: self.sign_ca,
                der: self.sign_der,
            },
        })
    }
}

/// A session row ([`SESSION_COLUMNS`]) as read from either engine.
pub(super) struct SessionRow {
    pub session_id: String,
    pub relying_party: String,
    pub device_id: Option<String>,
    pub kind: String,
    pub hash: Vec<u8>,
    pub hash_type: String,
    pub display_text: Option<String>,
    pub language: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub delivered_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub result: Option<String>,
    pub signature: Option<Vec<u8>>,
    pub signature_algorithm: Option<String>,
    pub cert: Option<Vec<u8>>,
}

impl SessionRow {
    pub fn into_record(self) -> Result<SessionRecord, StoreError> {
        let completion = match (self.completed_at, self.result) {
            (None, None) => None,
            (Some(at), Some(result)) => Some(SessionCompletion {
                result: parse_result(&result)?,
                completed_at: from_millis(at, "completed_at")?,
                signature: self.signature,
                signature_algorithm: self.signature_algorithm,
                cert: self.cert,
            }),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "session {} has a completion time without a result or the reverse",
                    self.session_id
                )))
            }
        };
        let language = self.language;
        Ok(SessionRecord {
            kind: parse_kind(&self.kind)?,
            hash_type: parse_hash_type(&self.hash_type)?,
            language: language
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("unknown language {language:?}")))?,
            created_at: from_millis(self.created_at, "created_at")?,
            expires_at: from_millis(self.expires_at, "expires_at")?,
            delivered_at: self
                .delivered_at
                .map(|ms| from_millis(ms, "delivered_at"))
                .transpose()?,
            session_id: self.session_id,
            relying_party: self.relying_party,
            device_id: self.device_id,
            hash: self.hash,
            display_text: self.display_text,
            completion,
        })
    }
}

/// The values a session is written with, beyond those it holds as they are.
pub(super) struct SessionValues<'a> {
    pub kind: &'static str,
    pub hash_type: &'static str,
    pub language: &'static str,
    pub created_at: i64,
    pub expires_at: i64,
    pub delivered_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub result: Option<&'static str>,
    pub signature: Option<&'a [u8]>,
    pub signature_algorithm: Option<&'a str>,
    pub cert: Option<&'a [u8]>,
}

impl SessionValues<'_> {
    pub fn of(session: &SessionRecord) -> SessionValues<'_> {
        let completion = session.completion.as_ref();
        SessionValues {
            kind: session.kind.name(),
            hash_type: hash_type::name(session.hash_type),
            language: session.language.code(),
            created_at: millis(session.created_at),
            expires_at: millis(session.expires_at),
            delivered_at: session.delivered_at.map(millis),
            completed_at: completion.map(|c| millis(c.completed_at)),
            result: completion.map(|c| c.result.name()),
            signature: completion.and_then(|c| c.signature.as_deref()),
            signature_algorithm: completion.and_then(|c| c.signature_algorithm.as_deref()),
            cert: completion.and_then(|c| c.cert.as_deref()),
        }
    }
}

/// What one round of the clean-up ([`super::MobileStore::purge_sessions`]) did.
pub(super) struct PurgeRound {
    pub deleted: usize,
    /// Whether a statement met its batch size: there may be more to do.
    pub full: bool,
}

/// The results a session that expired RUNNING is settled with: (never delivered, delivered),
/// as [`result_on_expiry`] says. An engine's settling statement picks one by `delivered_at`
/// as the row has it when the write applies.
pub(super) fn expiry_results() -> (&'static str, &'static str) {
    (
        result_on_expiry(false).name(),
        result_on_expiry(true).name(),
    )
}

/// A stored SHA-256 (an API key's or a device secret's), which must be 32 bytes.
pub(super) fn sha256_value(bytes: Vec<u8>, column: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("{column} has {} bytes, not 32", bytes.len())))
}

/// Unix milliseconds, the unit of every time column.
pub(super) use imza_store::{from_millis, millis};

/// A row limit as SQL takes it.
pub(super) fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What a refused relying-party insert means: the name exists.
pub(super) fn relying_party_insert_error(
    violation: Option<Violation>,
    other: StoreError,
    name: &str,
) -> StoreError {
    match violation {
        Some(Violation::Unique) => StoreError::Conflict(format!("relying party {name}")),
        _ => other,
    }
}

/// What a refused device insert means: the id exists.
pub(super) fn device_insert_error(
    violation: Option<Violation>,
    other: StoreError,
    device: &Device,
) -> StoreError {
    match violation {
        Some(Violation::Unique) => StoreError::Conflict(format!("device {}", device.device_id)),
        _ => other,
    }
}

/// What a refused session insert means: the id exists, or its relying party or device is not
/// stored.
pub(super) fn session_insert_error(
    violation: Option<Violation>,
    other: StoreError,
    session: &SessionRecord,
) -> StoreError {
    match violation {
        Some(Violation::Unique) => StoreError::Conflict(format!("session {}", session.session_id)),
        Some(Violation::ForeignKey) => StoreError::NotFound(format!(
            "relying party {} or device {} of session {}",
            session.relying_party,
            session.device_id.as_deref().unwrap_or("(none)"),
            session.session_id
        )),
        None => other,
    }
}

fn parse_result(name: &str) -> Result<SessionResult, StoreError> {
    RESULTS
        .into_iter()
        .find(|r| r.name() == name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown session result {name:?}")))
}

fn parse_kind(name: &str) -> Result<SessionKind, StoreError> {
    [SessionKind::Authentication, SessionKind::Signature]
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown session kind {name:?}")))
}

fn parse_hash_type(name: &str) -> Result<DigestAlgorithm, StoreError> {
    hash_type::from_name(name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown hash type {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_reads_back_by_its_name() {
        for result in RESULTS {
            assert_eq!(parse_result(result.name()).unwrap(), result);
        }
        assert!(matches!(parse_result("MAYBE"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn times_outside_the_calendar_and_short_hashes_are_corrupt() {
        assert!(matches!(
            from_millis(i64::MAX, "created_at"),
            Err(StoreError::Corrupt(_))
        ));
        let t = time::macros::datetime!(2026-03-01 10:00:00.123 UTC);
        assert_eq!(from_millis(millis(t), "t").unwrap(), t);
        assert!(matches!(
            sha256_value(vec![0; 31], "secret_sha256"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
