//! One-time access codes, the login for a citizen without a card or phone at hand: a service
//! centre gives one (`imza portal code issue --national-id …`), the citizen types it with their
//! national id. A code is 10 characters of Crockford's base32 (50 bits), shown as
//! `XXXXX-XXXXX`; the store keeps only its scrypt hash (RFC 7914; N = 2^15, r = 8, p = 1) with
//! a salt of its own, so a copy of the database does not give the codes. It expires, is used
//! once, and [`AccessCodePolicy::tries`] wrong tries lock the citizen out for
//! [`AccessCodePolicy::lock`], after which the tries come back.

use time::{Duration, OffsetDateTime};

use crate::store::{AccessCode, FailedTry, PortalStore, StoreError};

/// Characters of a code: Crockford's base32 (no I, L, O, U).
pub(crate) const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in a code (5 bits each).
pub const CODE_LENGTH: usize = 10;

const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;

/// How codes are given and checked.
#[derive(Clone, Copy, Debug)]
pub struct AccessCodePolicy {
    /// How long a code may be used after it is issued. Default 24 hours.
    pub lifetime: Duration,
    /// Wrong tries before the lock-out. Default 5.
    pub tries: u32,
    /// How long the lock-out lasts. Default 15 minutes.
    pub lock: Duration,
    /// scrypt's cost, log2 N. Default 15 (32 MiB, about 0.1 s a hash).
    pub scrypt_log_n: u8,
}

impl Default for AccessCodePolicy {
    fn default() -> AccessCodePolicy {
        AccessCodePolicy {
            lifetime: Duration::hours(24),
            tries: 5,
            lock: Duration::minutes(15),
            scrypt_log_n: 15,
        }
    }
}

/// Why a code did not log anyone in.
#[derive(Debug, thiserror::Error)]
pub enum AccessCodeError {
    /// Not a national id or not a code at all: nothing was counted.
    #[error("{0}")]
    Invalid(String),
    /// Wrong, used, expired, or never issued: one message for all, so that it tells nothing
    /// about the citizen's codes; `tries_left` when a wrong try was counted.
    #[error("the code is wrong or no longer valid{}", tries_left.map(|n| format!(" ({n} tries left)")).unwrap_or_default())]
    Refused { tries_left: Option<u32> },
    /// Too many wrong tries: no try is taken before `until`.
    #[error("too many wrong codes; try again after {until}")]
    Locked { until: OffsetDateTime },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A code just issued: what the service centre hands the citizen.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// `XXXXX-XXXXX`.
    pub code: String,
    pub personal_code: String,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for IssuedCode {
    /// Not the code: it is a login while it lives.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode")
            .field("personal_code", &self.personal_code)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The personal code (a certificate's serialNumber, the key of the citizen's history) of
/// Azerbaijani national id `national_id`: `PNOAZ-` and the id (ETSI EN 319 412-1 §5.1.3).
pub fn personal_code_of(national_id: &str) -> Result<String, AccessCodeError> {
    if national_id.len() != 7
        || !national_id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(AccessCodeError::Invalid(
            "a national id (FİN) is 7 characters, A-Z and 0-9".into(),
        ));
    }
    Ok(format!("PNOAZ-{national_id}"))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AccessCodeError> {
    let mut bytes = [0u8; N];
    openssl::rand::rand_bytes(&mut bytes)
        .map_err(|e| StoreError::Backend(format!("no random bytes: {e}")))?;
    Ok(bytes)
}

fn scrypt(code: &str, salt: &[u8], log_n: u8) -> Result<Vec<u8>, AccessCodeError> {
    let mut hash = vec![0u8; HASH_BYTES];
    let n = 1u64 << log_n;
    // 128 · r · N bytes, and some room.
    let max_memory = 128 * 8 * n + 1024 * 1024;
    openssl::pkcs5::scrypt(code.as_bytes(), salt, n, 8, 1, max_memory, &mut hash)
        .map_err(|e| StoreError::Backend(format!("scrypt: {e}")))?;
    Ok(hash)
}

/// Issues a new code for the citizen of `national_id`, replacing one they had.
pub fn issue(
    store: &dyn PortalStore,
    national_id: &str,
    now: OffsetDateTime,
    policy: &AccessCodePolicy,
) -> Result<IssuedCode, AccessCodeError> {
    let personal_code = personal_code_of(national_id)?;
    let random: [u8; CODE_LENGTH] = random_bytes()?;
    let code: String = random
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    let salt: [u8; SALT_BYTES] = random_bytes()?;
    let expires_at = now + policy.lifetime;
    store.put_access_code(&AccessCode {
        personal_code: personal_code.clone(),
        code_id: random_bytes()?,
        code_scrypt: scrypt(&code, &salt, policy.scrypt_log_n)?,
        salt: salt.to_vec(),
        issued_at: now,
        expires_at,
        tries_left: policy.tries,
        locked_until: None,
    })?;
    Ok(IssuedCode {
        code: format!("{}-{}", &code[..5], &code[5..]),
        personal_code,
        expires_at,
    })
}

/// A typed code in its canonical form: upper case, without the dash or spaces, with Crockford's
/// look-alikes read as what they stand for (O as 0, I and L as 1).
fn canonical(typed: &str) -> Result<String, AccessCodeError> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if code.len() != CODE_LENGTH || !code.bytes().all(|b| ALPHABET.contains(&b)) {
        return Err(AccessCodeError::Invalid(format!(
            "an access code is {CODE_LENGTH} letters and digits, as XXXXX-XXXXX"
        )));
    }
    Ok(code)
}

/// Logs in the citizen of `national_id` with the code they typed: returns their personal code
/// and uses the code up. A wrong code counts a try; see [`AccessCodeError`].
pub fn log_in(
    store: &dyn PortalStore,
    national_id: &str,
    typed: &str,
    now: OffsetDateTime,
    policy: &AccessCodePolicy,
) -> Result<String, AccessCodeError> {
    let personal_code = personal_code_of(national_id)?;
    if typed.len() > 64 {
        return Err(AccessCodeError::Invalid(
            "the access code is too long".into(),
        ));
    }
    let code = canonical(typed)?;
    let refused = AccessCodeError::Refused { tries_left: None };
    let Some(kept) = store.access_code(&personal_code)? else {
        return Err(refused);
    };
    if let Some(until) = kept.locked_until.filter(|until| *until > now) {
        return Err(AccessCodeError::Locked { until });
    }
    if kept.expires_at <= now {
        return Err(refused);
    }
    let hash = scrypt(&code, &kept.salt, policy.scrypt_log_n)?;
    if hash.len() == kept.code_scrypt.len() && openssl::memcmp::eq(&hash, &kept.code_scrypt) {
        return match store.use_access_code(&personal_code, &kept.code_id, now)? {
            true => Ok(personal_code),
            // Used meanwhile by another login, or locked by wrong tries made meanwhile.
            false => Err(refused),
        };
    }
    match store.record_wrong_try(
        &personal_code,
        &kept.code_id,
        now,
        policy.tries,
        policy.lock,
    ) {
        Ok(FailedTry::TriesLeft(n)) => Err(AccessCodeError::Refused {
            tries_left: Some(n),
        }),
        Ok(FailedTry::Locked(until)) => Err(AccessCodeError::Locked { until }),
        // Replaced, used or locked meanwhile.
        Err(StoreError::NotFound(_)) => Err(refused),
        Err(e) => Err(e.into()),
    }
}
