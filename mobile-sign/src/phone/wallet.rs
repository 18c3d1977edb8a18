//! The phone's wallet: registration ([`PhoneEnrollment`]) and what it leaves behind
//! ([`Wallet`], the `phone.json` file next to the keys), including the PIN tries counter.
//!
//! `phone.json` (0600) holds the certificates, the chain above them, the device credentials
//! and the service URL — no private key and no PIN. The device secret is in it, as a SIM holds
//! its network keys. Every change is written to a temporary file, synced and renamed over the
//! old one, so a crash leaves either the old or the new wallet, never half of one.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use imza_core::alg::DigestAlgorithm;
use imza_core::verify::verify_digest;
use imza_core::SigningKey;
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use zeroize::{Zeroize, Zeroizing};

use super::keystore::{NewKey, OpenError, StoredKeys};
use super::{check_pin_format, KeyStoreSpec, PhoneError, PIN_TRIES};
use crate::http_client::JsonClient;
use crate::protocol::{
    check_national_id, check_phone_number, decode_base64, encode_base64, SessionKind,
};

/// The wallet's file name inside the phone's directory.
pub const WALLET_FILE: &str = "phone.json";

/// Where a wallet is written before it is renamed into place.
const WALLET_TEMP_FILE: &str = "phone.json.tmp";

/// Held (`flock`) while the PIN counter is read, changed and written, so two processes using
/// one wallet cannot both spend the same try.
const LOCK_FILE: &str = "phone.lock";

/// The wallet format this code writes and reads.
const WALLET_VERSION: u32 = 1;

/// The largest wallet read (certificates and a chain: a few kB).
const MAX_WALLET_BYTES: u64 = 1024 * 1024;

/// The most CA certificates a wallet keeps above the phone's own.
const MAX_CHAIN: usize = 16;

/// The device's own secret, kept in the wallet, zeroized when dropped, never printed.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct DeviceSecret(String);

impl Drop for DeviceSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `phone.json`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WalletFile {
    version: u32,
    phone_number: String,
    national_identity_number: String,
    mss_url: String,
    device_id: String,
    device_secret: DeviceSecret,
    keys: StoredKeys,
    /// Base64 DER.
    auth_certificate: String,
    sign_certificate: String,
    chain: Vec<String>,
    /// Wrong PINs still allowed; 0 = blocked for good.
    pin_tries_left: u8,
}

/// A phone being registered: its directory and its two new keys, usable for the CSRs.
///
/// Dropping it without [`PhoneEnrollment::complete`] removes what [`PhoneEnrollment::begin`]
/// created: the key files or token objects, and the directory if it made it.
pub struct PhoneEnrollment {
    // Fields drop in order: the keys first, then the (by then empty) directory.
    auth: NewKey,
    sign: NewKey,
    phone_number: String,
    national_id: String,
    keys: StoredKeys,
    dir: CreatedDir,
}

impl std::fmt::Debug for PhoneEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneEnrollment")
            .field("dir", &self.dir.path)
            .field("phone_number", &self.phone_number)
            .field("keys", &self.keys.describe(&self.dir.path))
            .finish_non_exhaustive()
    }
}

/// The phone's directory, removed when dropped if this enrollment made it and did not finish.
struct CreatedDir {
    path: PathBuf,
    created: bool,
    keep: bool,
}

impl Drop for CreatedDir {
    fn drop(&mut self) {
        if self.created && !self.keep {
            let _ = std::fs::remove_file(self.path.join(WALLET_TEMP_FILE));
            let _ = std::fs::remove_file(self.path.join(LOCK_FILE));
            // Only when empty: whatever someone else put there stays.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

impl PhoneEnrollment {
    /// Creates the phone's directory (0700; refuses one that already holds a wallet), checks
    /// the PIN format (4–12 digits), generates the authentication and the signing key (EC
    /// P-256) in the key store, protected by `pin`.
    pub fn begin(
        dir: &Path,
        phone_number: &str,
        national_id: &str,
        keys: KeyStoreSpec,
        pin: &str,
    ) -> Result<PhoneEnrollment, PhoneError> {
        check_phone_number(phone_number)?;
        check_national_id(national_id)?;
        check_pin_format(pin)?;
        if dir.join(WALLET_FILE).exists() {
            return Err(PhoneError::WalletExists(dir.to_path_buf()));
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(PhoneError::io(parent))?;
        }
        let created = match DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => false,
            Err(e) => return Err(PhoneError::io(dir)(e)),
        };
        let dir = CreatedDir {
            path: dir.to_path_buf(),
            created,
            keep: false,
        };
        let stored = StoredKeys::for_phone(&keys, phone_number);
        let auth = stored
            .generate(&dir.path, SessionKind::Authentication, pin)
            .map_err(PhoneError::KeyStore)?;
        let sign = stored
            .generate(&dir.path, SessionKind::Signature, pin)
            .map_err(PhoneError::KeyStore)?;
        Ok(PhoneEnrollment {
            auth,
            sign,
            phone_number: phone_number.to_string(),
            national_id: national_id.to_string(),
            keys: stored,
            dir,
        })
    }

    /// The authentication key, usable now (for its CSR).
    pub fn auth_key(&self) -> &dyn SigningKey {
        self.auth.signing_key()
    }

    /// The signing key, usable now (for its CSR).
    pub fn sign_key(&self) -> &dyn SigningKey {
        self.sign.signing_key()
    }

    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// Writes the wallet (`phone.json`, 0600): the certificates (checked to hold these keys'
    /// public keys), the chain above them, the device credentials and the service URL.
    #[allow(clippy::too_many_arguments)]
    pub fn complete(
        mut self,
        auth_certificate: &[u8],
        sign_certificate: &[u8],
        chain: &[Vec<u8>],
        device_id: &str,
        device_secret: &str,
        mss_url: &str,
    ) -> Result<Wallet, PhoneError> {
        check_certifies("authentication", auth_certificate, self.auth_key())?;
        check_certifies("signing", sign_certificate, self.sign_key())?;
        if chain.len() > MAX_CHAIN {
            return Err(PhoneError::Certificate {
                kind: "CA",
                reason: format!(
                    "chain has {} certificates, at most {MAX_CHAIN}",
                    chain.len()
                ),
            });
        }
        for (i, der) in chain.iter().enumerate() {
            Certificate::from_der(der).map_err(|e| PhoneError::Certificate {
                kind: "CA",
                reason: format!(
                    "number {} of the chain is not a DER certificate: {e}",
                    i + 1
                ),
            })?;
        }
        if device_id.is_empty() || device_secret.is_empty() {
            return Err(PhoneError::Wallet {
                path: self.dir.path.join(WALLET_FILE),
                reason: "the device id and secret must not be empty".into(),
            });
        }
        // The app will talk to the service with these: refuse now what it could not use.
        JsonClient::new(mss_url, device_id, device_secret)?;

        let file = WalletFile {
            version: WALLET_VERSION,
            phone_number: self.phone_number.clone(),
            national_identity_number: self.national_id.clone(),
            mss_url: mss_url.to_string(),
            device_id: device_id.to_string(),
            device_secret: DeviceSecret(device_secret.to_string()),
            keys: self.keys.clone(),
            auth_certificate: encode_base64(auth_certificate),
            sign_certificate: encode_base64(sign_certificate),
            chain: chain.iter().map(|c| encode_base64(c)).collect(),
            pin_tries_left: PIN_TRIES,
        };
        write_wallet(&self.dir.path, &file, false)?;
        self.auth.keep();
        self.sign.keep();
        self.dir.keep = true;
        Ok(Wallet {
            dir: self.dir.path.clone(),
            auth_certificate: auth_certificate.to_vec(),
            sign_certificate: sign_certificate.to_vec(),
            chain: chain.to_vec(),
            file,
        })
        // The keys' sessions close here: a token logs out when its last session ends, so the
        // wallet's first signature tests the PIN again.
    }
}

/// Checks `der` is a certificate for `key`'s public key.
fn check_certifies(kind: &'static str, der: &[u8], key: &dyn SigningKey) -> Result<(), PhoneError> {
    let spki = certificate_spki(der).map_err(|reason| PhoneError::Certificate { kind, reason })?;
    let public = key
        .public_key_der()
        .map_err(|e| PhoneError::KeyStore(e.to_string()))?;
    if spki != public {
        return Err(PhoneError::Certificate {
            kind,
            reason: format!("certifies another key than the phone's {kind} key"),
        });
    }
    Ok(())
}

/// The DER SubjectPublicKeyInfo of a DER certificate.
fn certificate_spki(der: &[u8]) -> Result<Vec<u8>, String> {
    let certificate =
        Certificate::from_der(der).map_err(|e| format!("is not a DER certificate: {e}"))?;
    certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("has an unreadable public key: {e}"))
}

/// A registered phone: its certificates, credentials and PIN counter, and the keys in their
/// store.
pub struct Wallet {
    dir: PathBuf,
    file: WalletFile,
    auth_certificate: Vec<u8>,
    sign_certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("dir", &self.dir)
            .field("phone_number", &self.file.phone_number)
            .field("device_id", &self.file.device_id)
            .field("mss_url", &self.file.mss_url)
            .field("pin_tries_left", &self.file.pin_tries_left)
            .finish_non_exhaustive()
    }
}

impl Wallet {
    /// Reads the wallet in `dir`.
    pub fn open(dir: &Path) -> Result<Wallet, PhoneError> {
        let file = read_wallet(dir)?;
        let path = dir.join(WALLET_FILE);
        let bad = |reason: String| PhoneError::Wallet {
            path: path.clone(),
            reason,
        };
        if file.version != WALLET_VERSION {
            return Err(bad(format!(
                "format version {} is not the one this imza reads ({WALLET_VERSION})",
                file.version
            )));
        }
        check_phone_number(&file.phone_number).map_err(|e| bad(e.to_string()))?;
        check_national_id(&file.national_identity_number).map_err(|e| bad(e.to_string()))?;
        file.keys.check().map_err(&bad)?;
        if file.pin_tries_left > PIN_TRIES {
            return Err(bad(format!(
                "pinTriesLeft is {}, more than {PIN_TRIES}",
                file.pin_tries_left
            )));
        }
        if file.chain.len() > MAX_CHAIN {
            return Err(bad(format!(
                "the chain has more than {MAX_CHAIN} certificates"
            )));
        }
        JsonClient::new(&file.mss_url, &file.device_id, &file.device_secret.0)
            .map_err(|e| bad(e.to_string()))?;
        let certificate = |what: &str, b64: &str| -> Result<Vec<u8>, PhoneError> {
            let der = decode_base64(b64).map_err(|_| bad(format!("{what} is not base64")))?;
            certificate_spki(&der).map_err(|e| bad(format!("{what} {e}")))?;
            Ok(der)
        };
        let auth_certificate = certificate("authCertificate", &file.auth_certificate)?;
        let sign_certificate = certificate("signCertificate", &file.sign_certificate)?;
        let chain = file
            .chain
            .iter()
            .map(|c| certificate("a chain certificate", c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Wallet {
            dir: dir.to_path_buf(),
            file,
            auth_certificate,
            sign_certificate,
            chain,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn phone_number(&self) -> &str {
        &self.file.phone_number
    }

    pub fn national_id(&self) -> &str {
        &self.file.national_identity_number
    }

    pub fn mss_url(&self) -> &str {
        &self.file.mss_url
    }

    pub fn device_id(&self) -> &str {
        &self.file.device_id
    }

    pub(super) fn device_secret(&self) -> &str {
        &self.file.device_secret.0
    }

    /// DER of the authentication certificate.
    pub fn auth_certificate(&self) -> &[u8] {
        &self.auth_certificate
    }

    /// DER of the signing certificate.
    pub fn sign_certificate(&self) -> &[u8] {
        &self.sign_certificate
    }

    /// DER of the CA certificates above the phone's, as registration gave them.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The certificate of the key that answers a session of `kind`.
    pub fn certificate(&self, kind: SessionKind) -> &[u8] {
        match kind {
            SessionKind::Authentication => &self.auth_certificate,
            SessionKind::Signature => &self.sign_certificate,
        }
    }

    /// Where the keys are, for messages.
    pub fn key_store(&self) -> String {
        self.file.keys.describe(&self.dir)
    }

    /// Wrong PINs still allowed before the keys block ([`PIN_TRIES`] when fresh, 0 when
    /// blocked), as last read or written by this wallet.
    pub fn pin_tries_left(&self) -> u8 {
        self.file.pin_tries_left
    }

    /// Checks the PIN on the phone and signs `digest` (`sign_digest`) with the key of `kind`.
    ///
    /// The tries counter is written (durably) before the check and reset after a right PIN:
    /// [`PIN_TRIES`] wrong in a row → blocked for good ([`PhoneError::PinBlocked`]). A PIN that
    /// is not 4–12 digits is a wrong PIN. A key store that fails before it could test the PIN
    /// (file unreadable, token gone) gives [`PhoneError::KeyStore`] and costs no try.
    pub fn sign(
        &mut self,
        kind: SessionKind,
        pin: &str,
        hash_type: DigestAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, PhoneError> {
        if digest.len() != hash_type.output_len() {
            return Err(PhoneError::DigestLength {
                hash_type,
                expected: hash_type.output_len(),
                actual: digest.len(),
            });
        }
        let _lock = self.lock()?;
        // Another process may have spent tries since this wallet was read.
        let current = read_wallet(&self.dir)?;
        let before = current.pin_tries_left.min(PIN_TRIES);
        self.file.pin_tries_left = before;
        if before == 0 {
            return Err(PhoneError::PinBlocked);
        }
        self.store_tries(before - 1)?;

        let certificate = match kind {
            SessionKind::Authentication => &self.auth_certificate,
            SessionKind::Signature => &self.sign_certificate,
        };
        let spki = certificate_spki(certificate).map_err(|reason| PhoneError::Wallet {
            path: self.dir.join(WALLET_FILE),
            reason: format!("the {} certificate {reason}", kind.name()),
        })?;
        let opened = match check_pin_format(pin) {
            Ok(()) => self.file.keys.open(&self.dir, kind, pin, &spki),
            Err(_) => Err(OpenError::WrongPin),
        };
        let key = match opened {
            Ok(key) => key,
            Err(OpenError::WrongPin) => {
                return Err(match before - 1 {
                    0 => PhoneError::PinBlocked,
                    tries_left => PhoneError::PinIncorrect { tries_left },
                })
            }
            Err(OpenError::Locked) => {
                self.store_tries(0)?;
                return Err(PhoneError::PinBlocked);
            }
            Err(OpenError::Store(reason)) => {
                // The PIN was not tested: the try is given back.
                self.store_tries(before)?;
                return Err(PhoneError::KeyStore(reason));
            }
        };
        self.store_tries(PIN_TRIES)?;
        let signature = key
            .sign_digest(hash_type, digest)
            .map_err(|e| PhoneError::KeyStore(e.to_string()))?;
        // A key store that signs wrongly must not send that to the service as a signature.
        verify_digest(&spki, hash_type, digest, &signature).map_err(|e| {
            PhoneError::KeyStore(format!(
                "{} made a signature that does not verify: {e}",
                key.describe()
            ))
        })?;
        Ok(signature)
    }

    /// Writes the counter durably and keeps it.
    fn store_tries(&mut self, tries_left: u8) -> Result<(), PhoneError> {
        self.file.pin_tries_left = tries_left;
        write_wallet(&self.dir, &self.file, true)
    }

    fn lock(&self) -> Result<File, PhoneError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(PhoneError::io(&path))?;
        file.lock().map_err(PhoneError::io(&path))?;
        Ok(file)
    }
}

fn read_wallet(dir: &Path) -> Result<WalletFile, PhoneError> {
    let path = dir.join(WALLET_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PhoneError::NoWallet(dir.to_path_buf()))
        }
        Err(e) => return Err(PhoneError::io(&path)(e)),
    };
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_WALLET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(PhoneError::io(&path))?;
    if bytes.len() as u64 > MAX_WALLET_BYTES {
        return Err(PhoneError::Wallet {
            path,
            reason: format!("larger than {MAX_WALLET_BYTES} bytes"),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| PhoneError::Wallet {
        path,
        reason: format!("not a phone wallet: {e}"),
    })
}

/// Writes `file` to a temporary file (0600), syncs it, then moves it into place: over the old
/// wallet when `replace`, else only if there is none. The directory is synced after.
fn write_wallet(dir: &Path, file: &WalletFile, replace: bool) -> Result<(), PhoneError> {
    let json = Zeroizing::new(
        serde_json::to_vec_pretty(file).map_err(|e| PhoneError::Wallet {
            path: dir.join(WALLET_FILE),
            reason: format!("cannot encode: {e}"),
        })?,
    );
    let temp = dir.join(WALLET_TEMP_FILE);
    let target = dir.join(WALLET_FILE);
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .map_err(PhoneError::io(&temp))?;
    out.write_all(&json)
        .and_then(|()| out.sync_all())
        .map_err(PhoneError::io(&temp))?;
    drop(out);
    if replace {
        std::fs::rename(&temp, &target).map_err(PhoneError::io(&target))?;
    } else {
        // A hard link fails if the target exists: no wallet is ever overwritten by another.
        let linked = std::fs::hard_link(&temp, &target);
        let _ = std::fs::remove_file(&temp);
        linked.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => PhoneError::WalletExists(dir.to_path_buf()),
            _ => PhoneError::io(&target)(e),
        })?;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(PhoneError::io(dir))
}
