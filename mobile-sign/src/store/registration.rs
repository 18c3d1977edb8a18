//! Registration above the store: relying parties and devices are checked here (names, phone
//! numbers, national identity numbers, certificates — the rules of [`crate::protocol`]) and
//! their secrets and ids made here, then handed to a [`MobileStore`] ready to keep. Only the
//! SHA-256 of a secret reaches the store; the secret itself is shown once.

use base64ct::{Base64UrlUnpadded, Encoding};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{Device, MobileStore, RegisteredCertificate, StoreError};
use crate::protocol::{check_national_id, check_phone_number, check_relying_party_name};

/// Random bytes in an API key or a device secret.
const SECRET_BYTES: usize = 32;

/// Random bytes in a device id or a session id (128 bits: unguessable).
const ID_BYTES: usize = 16;

/// A device to register.
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub phone_number: String,
    pub national_id: String,
    pub auth: RegisteredCertificate,
    pub sign: RegisteredCertificate,
}

/// What [`register_device`] gives back.
pub struct DeviceRegistration {
    pub device_id: String,
    /// Shown once (the phone keeps it); only its SHA-256 is stored.
    pub device_secret: Zeroizing<String>,
    /// The device this one replaced (same phone number), now deactivated: revoke its
    /// certificates.
    pub replaced: Option<Device>,
}

impl std::fmt::Debug for DeviceRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRegistration")
            .field("device_id", &self.device_id)
            .field("replaced", &self.replaced)
            .finish_non_exhaustive()
    }
}

/// Registers a relying party (name checked with `protocol::check_relying_party_name`);
/// returns its new API key (32 random bytes, base64url without padding), shown once; only its
/// SHA-256 is stored. `Conflict` if the name exists.
pub fn add_relying_party(
    store: &dyn MobileStore,
    name: &str,
    at: OffsetDateTime,
) -> Result<Zeroizing<String>, StoreError> {
    check_relying_party_name(name).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let key = random_secret()?;
    store.insert_relying_party(name, &openssl::sha::sha256(key.as_bytes()), at)?;
    Ok(key)
}

/// Registers a device for `device.phone_number` and returns its new id and secret (secret
/// shown once, SHA-256 stored). The phone number, the national identity number and both
/// certificates (readable X.509, an issuing CA named) are checked first. An active device of
/// the same phone number is deactivated in the same transaction and returned in `replaced`
/// (the CLI revokes its certificates); its RUNNING sessions end with NOT_MOBILE_CLIENT. See
/// [`MobileStore::insert_device`] for concurrent registrations.
pub fn register_device(
    store: &dyn MobileStore,
    device: &NewDevice,
    at: OffsetDateTime,
) -> Result<DeviceRegistration, StoreError> {
    check_phone_number(&device.phone_number).map_err(|e| StoreError::Invalid(e.to_string()))?;
    check_national_id(&device.national_id).map_err(|e| StoreError::Invalid(e.to_string()))?;
    for (which, cert) in [("authentication", &device.auth), ("signing", &device.sign)] {
        cert.details()
            .map_err(|e| StoreError::Invalid(format!("the {which} certificate: {e}")))?;
        if cert.ca.is_empty() {
            return Err(StoreError::Invalid(format!(
                "the {which} certificate has no issuing CA name"
            )));
        }
    }
    let device_id = random_id()?;
    let secret = random_secret()?;
    let replaced = store.insert_device(
        &Device {
            device_id: device_id.clone(),
            phone_number: device.phone_number.clone(),
            national_id: device.national_id.clone(),
            auth: device.auth.clone(),
            sign: device.sign.clone(),
            registered_at: at,
        },
        &openssl::sha::sha256(secret.as_bytes()),
    )?;
    Ok(DeviceRegistration {
        device_id,
        device_secret: secret,
        replaced,
    })
}

fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    openssl::rand::rand_bytes(&mut bytes)
        .map_err(|e| StoreError::Backend(format!("no random bytes from OpenSSL: {e}")))?;
    Ok(bytes)
}

/// A new API key or device secret: 32 random bytes, base64url without padding.
fn random_secret() -> Result<Zeroizing<String>, StoreError> {
    let bytes = random_bytes(SECRET_BYTES)?;
    Ok(Zeroizing::new(Base64UrlUnpadded::encode_string(&bytes)))
}

/// A new device or session id: 16 random bytes in lower-case hex (safe in a URL path and in
/// an HTTP Basic user name).
pub(crate) fn random_id() -> Result<String, StoreError> {
    Ok(hex::encode(random_bytes(ID_BYTES)?.as_slice()))
}

/// Whether `id` has the shape of the device and session ids made here (checked before any
/// lookup).
pub fn is_well_formed_id(id: &str) -> bool {
    id.len() == ID_BYTES * 2 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteMobileStore;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);

    fn store() -> (tempfile::TempDir, SqliteMobileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMobileStore::open(&dir.path().join("imza.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn registration_checks_what_it_stores() {
        let (_dir, store) = store();
        let junk = RegisteredCertificate {
            ca: "mobile".into(),
            der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
        };
        let device = NewDevice {
            phone_number: "+994501234567".into(),
            national_id: "1AB2C3D".into(),
            auth: junk.clone(),
            sign: junk,
        };
        let error = register_device(&store, &device, NOW).unwrap_err();
        assert!(
            matches!(error, StoreError::Invalid(ref m) if m.contains("authentication")),
            "{error}"
        );
        let bad_phone = NewDevice {
            phone_number: "0501234567".into(),
            ..device.clone()
        };
        assert!(matches!(
            register_device(&store, &bad_phone, NOW),
            Err(StoreError::Invalid(_))
        ));
        let bad_id = NewDevice {
            national_id: "not an id".into(),
            ..device
        };
        assert!(matches!(
            register_device(&store, &bad_id, NOW),
            Err(StoreError::Invalid(_))
        ));
        assert!(store.device_for_phone("+994501234567").unwrap().is_none());
    }

    #[test]
    fn a_relying_party_name_is_checked_and_its_key_kept_only_as_a_hash() {
        let (_dir, store) = store();
        assert!(matches!(
            add_relying_party(&store, "Not A Name", NOW),
            Err(StoreError::Invalid(_))
        ));
        assert!(store.relying_parties().unwrap().is_empty());
        let key = add_relying_party(&store, "gov.az", NOW).unwrap();
        assert_eq!(key.len(), 43, "32 bytes in base64url without padding");
        let (stored, known) = store.relying_party_key_hash_or("gov.az", &[0; 32]).unwrap();
        assert!(known);
        assert_eq!(stored, openssl::sha::sha256(key.as_bytes()));
        assert!(matches!(
            add_relying_party(&store, "gov.az", NOW),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn ids_are_random_hex_and_checked_by_shape() {
        let a = random_id().unwrap();
        assert!(is_well_formed_id(&a));
        assert_ne!(a, random_id().unwrap());
        assert!(!is_well_formed_id("../../etc/passwd"));
        assert!(!is_well_formed_id(&a.to_uppercase()));
        assert!(!is_well_formed_id(&a[1..]));
    }
}
