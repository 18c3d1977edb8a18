//! The phone side on real keys: enrollment with PIN-encrypted key files and with a SoftHSM2
//! token, signatures checked with `verify_digest` against the certificates, the PIN counter
//! (persisted across `Wallet::open`), cleanup of an unfinished enrollment, a wallet that
//! refuses to be overwritten.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use imza_core::alg::DigestAlgorithm;
use imza_core::key::pkcs11::{PinSource, Pkcs11Key};
use imza_core::verify::verify_digest;
use imza_core::{CoreError, KeyAlgorithm};
use imza_mobile_sign::phone::{
    KeyStoreSpec, PhoneEnrollment, PhoneError, Wallet, PIN_TRIES, WALLET_FILE,
};
use imza_mobile_sign::protocol::SessionKind;
use imza_testdata::pki::{leaf_extensions, TestCa};
use imza_testdata::softhsm::SoftHsm;
use x509_cert::der::{Decode, Encode};
use zeroize::Zeroizing;

const PIN: &str = "2468";
const WRONG_PIN: &str = "1357";
const SO_PIN: &str = "12345678";
const PHONE: &str = "+994501234567";
const NATIONAL_ID: &str = "1AB2C3D";
const MSS_URL: &str = "http://127.0.0.1:9";

/// Every token a test of this binary uses, one per test: PKCS#11 login state belongs to a
/// token and the whole process, so a test's open session would let another's wrong PIN in.
const TOKENS: [&str; 6] = [
    "phone-enroll",
    "phone-pin",
    "phone-drop",
    "phone-exists",
    "phone-app",
    "phone-app-pin",
];

fn softhsm() -> Option<&'static SoftHsm> {
    static HSM: OnceLock<Option<SoftHsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        if !SoftHsm::is_available() {
            eprintln!("note: SoftHSM2 is not installed; skipping the token tests");
            return None;
        }
        let hsm = SoftHsm::new();
        for token in TOKENS {
            hsm.init_token(token, SO_PIN, PIN);
        }
        std::env::set_var("SOFTHSM2_CONF", hsm.conf_path());
        Some(hsm)
    })
    .as_ref()
}

fn token(label: &str) -> Option<KeyStoreSpec> {
    softhsm().map(|hsm| KeyStoreSpec::Pkcs11 {
        module: hsm.module_path().to_path_buf(),
        token_label: label.to_string(),
    })
}

fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::root("CN=imza Test Mobile CA,O=imza,C=AZ", KeyAlgorithm::EcP256))
}

/// Certificates for an enrollment's two keys, issued by the test CA.
fn certify(enrollment: &PhoneEnrollment) -> (Vec<u8>, Vec<u8>) {
    let subject = "CN=Əli Əliyev,SERIALNUMBER=PNOAZ-1AB2C3D,C=AZ";
    let auth = ca().issue(subject, &[0x10], enrollment.auth_key(), leaf_extensions());
    let sign = ca().issue(subject, &[0x11], enrollment.sign_key(), leaf_extensions());
    (auth, sign)
}

/// A phone registered in `dir` with keys in `keys`.
fn enrol(dir: &Path, keys: KeyStoreSpec) -> Wallet {
    let enrollment = PhoneEnrollment::begin(dir, PHONE, NATIONAL_ID, keys, PIN).unwrap();
    let (auth, sign) = certify(&enrollment);
    enrollment
        .complete(
            &auth,
            &sign,
            &[ca().der.clone()],
            "device-1",
            "device-secret-1",
            MSS_URL,
        )
        .unwrap()
}

fn spki(certificate: &[u8]) -> Vec<u8> {
    x509_cert::Certificate::from_der(certificate)
        .unwrap()
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Both keys sign digests of every hash type, verifiably under their own certificate only.
fn assert_wallet_signs(wallet: &mut Wallet) {
    for (kind, hash_type) in [
        (SessionKind::Authentication, DigestAlgorithm::Sha256),
        (SessionKind::Signature, DigestAlgorithm::Sha256),
        (SessionKind::Signature, DigestAlgorithm::Sha384),
        (SessionKind::Signature, DigestAlgorithm::Sha512),
    ] {
        let digest = hash_type.digest(format!("{kind:?} {hash_type:?}").as_bytes());
        let signature = wallet.sign(kind, PIN, hash_type, &digest).unwrap();
        let algorithm = hash_type;
        verify_digest(
            &spki(wallet.certificate(kind)),
            algorithm,
            &digest,
            &signature,
        )
        .unwrap_or_else(|e| panic!("{kind:?} {hash_type:?}: {e}"));
        let other = match kind {
            SessionKind::Authentication => SessionKind::Signature,
            SessionKind::Signature => SessionKind::Authentication,
        };
        assert!(verify_digest(
            &spki(wallet.certificate(other)),
            algorithm,
            &digest,
            &signature
        )
        .is_err());
        let mut tampered = digest.clone();
        tampered[0] ^= 1;
        assert!(verify_digest(
            &spki(wallet.certificate(kind)),
            algorithm,
            &tampered,
            &signature
        )
        .is_err());
    }
    assert_eq!(wallet.pin_tries_left(), PIN_TRIES);
}

#[test]
fn enrollment_with_file_keys_signs_and_verifies() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("phones").join(PHONE);
    let mut wallet = enrol(&dir, KeyStoreSpec::File);
    assert_eq!(
        (
            wallet.phone_number(),
            wallet.national_id(),
            wallet.mss_url()
        ),
        (PHONE, NATIONAL_ID, MSS_URL)
    );
    assert_eq!(wallet.pin_tries_left(), 3);
    assert_eq!(wallet.chain(), &[ca().der.clone()]);
    assert_wallet_signs(&mut wallet);

    assert_eq!(mode(&dir), 0o700);
    for file in [WALLET_FILE, "auth-key.p8", "sign-key.p8"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    // The key files are encrypted: they do not open without the PIN.
    let der = std::fs::read(dir.join("sign-key.p8")).unwrap();
    assert!(openssl::pkey::PKey::private_key_from_der(&der).is_err());
    assert!(openssl::pkey::PKey::private_key_from_pkcs8_passphrase(&der, PIN.as_bytes()).is_ok());

    // The wallet holds the device secret, but no private key and no PIN.
    let json = std::fs::read_to_string(dir.join(WALLET_FILE)).unwrap();
    assert!(json.contains("device-secret-1"));
    assert!(!json.contains(PIN), "{json}");
    assert!(!json.contains("PRIVATE"), "{json}");
    assert!(!format!("{wallet:?}").contains("device-secret-1"));

    // Opened afresh, it is the same wallet and still signs.
    let mut reopened = Wallet::open(&dir).unwrap();
    assert_eq!(reopened.sign_certificate(), wallet.sign_certificate());
    assert_eq!(reopened.auth_certificate(), wallet.auth_certificate());
    assert_wallet_signs(&mut reopened);
}

#[test]
fn enrollment_with_a_softhsm_token_signs_and_verifies() {
    let Some(keys) = token("phone-enroll") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(PHONE);
    let mut wallet = enrol(&dir, keys);
    assert!(
        wallet.key_store().contains("phone-enroll"),
        "{}",
        wallet.key_store()
    );
    // No key file: the keys are on the token.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, vec![WALLET_FILE.to_string()]);
    assert_wallet_signs(&mut wallet);
    let mut reopened = Wallet::open(&dir).unwrap();
    assert_wallet_signs(&mut reopened);
}

/// Wrong PINs count down 3 → 2 → 1 → blocked; the count survives `Wallet::open`; a right PIN
/// before the end resets it; once blocked, the right PIN is refused too.
fn wrong_pins_count_down_and_block(keys: KeyStoreSpec) {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(PHONE);
    let mut wallet = enrol(&dir, keys);
    let digest = [7u8; 32];
    let sign = |wallet: &mut Wallet, pin: &str| {
        wallet.sign(
            SessionKind::Signature,
            pin,
            DigestAlgorithm::Sha256,
            &digest,
        )
    };

    let err = sign(&mut wallet, WRONG_PIN).unwrap_err();
    assert!(
        matches!(err, PhoneError::PinIncorrect { tries_left: 2 }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(WRONG_PIN));
    // Not a PIN at all (wrong format) is a wrong PIN too.
    let err = sign(&mut wallet, "12ab").unwrap_err();
    assert!(
        matches!(err, PhoneError::PinIncorrect { tries_left: 1 }),
        "{err:?}"
    );
    let mut wallet = Wallet::open(&dir).unwrap();
    assert_eq!(wallet.pin_tries_left(), 1);

    // A right PIN resets the count.
    sign(&mut wallet, PIN).unwrap();
    assert_eq!(wallet.pin_tries_left(), 3);
    assert_eq!(Wallet::open(&dir).unwrap().pin_tries_left(), 3);

    for left in [2, 1] {
        let err = sign(&mut wallet, WRONG_PIN).unwrap_err();
        assert!(
            matches!(err, PhoneError::PinIncorrect { tries_left } if tries_left == left),
            "{err:?}"
        );
    }
    let err = sign(&mut wallet, WRONG_PIN).unwrap_err();
    assert!(matches!(err, PhoneError::PinBlocked), "{err:?}");
    assert_eq!(wallet.pin_tries_left(), 0);
    // Blocked for good: the right PIN is refused, here and in a wallet opened afresh.
    assert!(matches!(
        sign(&mut wallet, PIN),
        Err(PhoneError::PinBlocked)
    ));
    let mut reopened = Wallet::open(&dir).unwrap();
    assert_eq!(reopened.pin_tries_left(), 0);
    assert!(matches!(
        reopened.sign(
            SessionKind::Authentication,
            PIN,
            DigestAlgorithm::Sha256,
            &digest
        ),
        Err(PhoneError::PinBlocked)
    ));
}

#[test]
fn wrong_pin_counts_down_and_blocks_with_file_keys() {
    wrong_pins_count_down_and_block(KeyStoreSpec::File);
}

#[test]
fn wrong_pin_counts_down_and_blocks_with_a_token() {
    if let Some(keys) = token("phone-pin") {
        wrong_pins_count_down_and_block(keys);
    }
}

#[test]
fn a_wallet_opened_twice_shares_one_counter() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(PHONE);
    let mut first = enrol(&dir, KeyStoreSpec::File);
    let mut second = Wallet::open(&dir).unwrap();
    let digest = [1u8; 32];
    for (wallet, left) in [(&mut first, 2), (&mut second, 1)] {
        let err = wallet
            .sign(
                SessionKind::Signature,
                WRONG_PIN,
                DigestAlgorithm::Sha256,
                &digest,
            )
            .unwrap_err();
        assert!(
            matches!(err, PhoneError::PinIncorrect { tries_left } if tries_left == left),
            "{err:?}"
        );
    }
    // `first` still believes 2 tries are left; the file says 1, and the file wins.
    let err = first
        .sign(
            SessionKind::Signature,
            WRONG_PIN,
            DigestAlgorithm::Sha256,
            &digest,
        )
        .unwrap_err();
    assert!(matches!(err, PhoneError::PinBlocked), "{err:?}");
}

#[test]
fn damaged_key_file_is_a_key_store_failure_that_costs_no_try() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(PHONE);
    let mut wallet = enrol(&dir, KeyStoreSpec::File);
    let digest = [2u8; 32];
    std::fs::write(dir.join("sign-key.p8"), b"not a key").unwrap();
    let err = wallet
        .sign(
            SessionKind::Signature,
            PIN,
            DigestAlgorithm::Sha256,
            &digest,
        )
        .unwrap_err();
    assert!(
        matches!(&err, PhoneError::KeyStore(m) if m.contains("sign-key.p8")),
        "{err:?}"
    );
    std::fs::remove_file(dir.join("sign-key.p8")).unwrap();
    let err = wallet
        .sign(
            SessionKind::Signature,
            PIN,
            DigestAlgorithm::Sha256,
            &digest,
        )
        .unwrap_err();
    assert!(matches!(&err, PhoneError::KeyStore(_)), "{err:?}");
    assert_eq!(Wallet::open(&dir).unwrap().pin_tries_left(), 3);
    // The other key is untouched.
    wallet
        .sign(
            SessionKind::Authentication,
            PIN,
            DigestAlgorithm::Sha256,
            &digest,
        )
        .unwrap();
    // A digest of the wrong length is refused before any PIN is tested.
    let err = wallet
        .sign(
            SessionKind::Authentication,
            WRONG_PIN,
            DigestAlgorithm::Sha384,
            &digest,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::DigestLength {
                actual: 32,
                expected: 48,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(wallet.pin_tries_left(), 3);
}

#[test]
fn dropping_an_unfinished_file_enrollment_removes_its_keys_and_directory() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(PHONE);
    let enrollment =
        PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, KeyStoreSpec::File, PIN).unwrap();
    assert!(dir.join("auth-key.p8").exists() && dir.join("sign-key.p8").exists());
    drop(enrollment);
    assert!(!dir.exists());

    // A directory that was there before stays, with what else it held; only the keys go.
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let enrollment =
        PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, KeyStoreSpec::File, PIN).unwrap();
    drop(enrollment);
    let left: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, vec![dir.join("notes.txt")]);
}

#[test]
fn complete_refuses_certificates_of_other_keys_and_cleans_up() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(PHONE);
    let enrollment =
        PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, KeyStoreSpec::File, PIN).unwrap();
    let (auth, sign) = certify(&enrollment);
    // Swapped: each certificate names the other key.
    let err = enrollment
        .complete(&sign, &auth, &[], "device-1", "secret", MSS_URL)
        .unwrap_err();
    assert!(
        matches!(&err, PhoneError::Certificate { kind: "authentication", reason } if reason.contains("another key")),
        "{err:?}"
    );
    assert!(!dir.exists());

    let enrollment =
        PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, KeyStoreSpec::File, PIN).unwrap();
    let (auth, _) = certify(&enrollment);
    let err = enrollment
        .complete(
            &auth,
            b"\x30\x03\x02\x01\x01",
            &[],
            "device-1",
            "secret",
            MSS_URL,
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PhoneError::Certificate {
                kind: "signing",
                ..
            }
        ),
        "{err:?}"
    );
    let enrollment =
        PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, KeyStoreSpec::File, PIN).unwrap();
    let (auth2, sign2) = certify(&enrollment);
    assert_ne!(auth, auth2);
    let err = enrollment
        .complete(&auth2, &sign2, &[], "device-1", "secret", "ftp://mss")
        .unwrap_err();
    assert!(matches!(&err, PhoneError::Service(_)), "{err:?}");
    assert!(!dir.exists());
}

#[test]
fn dropping_an_unfinished_token_enrollment_removes_its_token_objects() {
    let Some(keys) = token("phone-drop") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(PHONE);
    let enrollment = PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, keys.clone(), PIN).unwrap();
    let public = enrollment.sign_key().public_key_der().unwrap();
    drop(enrollment);
    assert!(!dir.exists());
    let KeyStoreSpec::Pkcs11 {
        module,
        token_label,
    } = &keys
    else {
        unreachable!()
    };
    let location = imza_core::key::pkcs11::Pkcs11Location {
        module: module.clone(),
        token_label: token_label.clone(),
        key_label: format!("imza-phone {PHONE} signature"),
    };
    let pin = PinSource::Value(Zeroizing::new(PIN.to_string()));
    let err = Pkcs11Key::open(&location, &pin).unwrap_err();
    assert!(
        matches!(err, CoreError::Pkcs11KeyNotFound { .. }),
        "{err:?}"
    );
    // The labels are free: the phone can be registered again, with new keys.
    let mut wallet = enrol(&dir, keys);
    let fresh = spki(wallet.sign_certificate());
    assert_ne!(fresh, public);
    wallet
        .sign(
            SessionKind::Signature,
            PIN,
            DigestAlgorithm::Sha256,
            &[3u8; 32],
        )
        .unwrap();
}

#[test]
fn a_wallet_refuses_to_be_overwritten() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(PHONE);
    let wallet = enrol(&dir, KeyStoreSpec::File);
    let before = std::fs::read(dir.join(WALLET_FILE)).unwrap();
    let err =
        PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, KeyStoreSpec::File, PIN).unwrap_err();
    assert!(
        matches!(&err, PhoneError::WalletExists(d) if d == &dir),
        "{err:?}"
    );
    // Nothing was touched: same wallet, same keys.
    assert_eq!(std::fs::read(dir.join(WALLET_FILE)).unwrap(), before);
    let mut reopened = Wallet::open(&dir).unwrap();
    assert_eq!(reopened.sign_certificate(), wallet.sign_certificate());
    reopened
        .sign(
            SessionKind::Signature,
            PIN,
            DigestAlgorithm::Sha256,
            &[4u8; 32],
        )
        .unwrap();

    if let Some(keys) = token("phone-exists") {
        let err = PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, keys, PIN).unwrap_err();
        assert!(matches!(err, PhoneError::WalletExists(_)), "{err:?}");
    }
}

#[test]
fn enrollment_checks_its_inputs() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(PHONE);
    for pin in ["123", "1234567890123", "12a4", ""] {
        let err =
            PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, KeyStoreSpec::File, pin).unwrap_err();
        assert!(matches!(err, PhoneError::PinFormat), "{pin:?}: {err:?}");
    }
    let err = PhoneEnrollment::begin(&dir, "0501234567", NATIONAL_ID, KeyStoreSpec::File, PIN)
        .unwrap_err();
    assert!(matches!(err, PhoneError::Invalid(_)), "{err:?}");
    let err = PhoneEnrollment::begin(&dir, PHONE, "1ab", KeyStoreSpec::File, PIN).unwrap_err();
    assert!(matches!(err, PhoneError::Invalid(_)), "{err:?}");
    assert!(!dir.exists());
    // A token that is not there.
    if let Some(hsm) = softhsm() {
        let keys = KeyStoreSpec::Pkcs11 {
            module: hsm.module_path().to_path_buf(),
            token_label: "no-such-token".into(),
        };
        let err = PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, keys, PIN).unwrap_err();
        assert!(
            matches!(&err, PhoneError::KeyStore(m) if m.contains("no-such-token")),
            "{err:?}"
        );
        assert!(!dir.exists());
    }
}

#[test]
fn missing_or_damaged_wallets_are_reported() {
    let home = tempfile::tempdir().unwrap();
    let err = Wallet::open(home.path()).unwrap_err();
    assert!(
        matches!(&err, PhoneError::NoWallet(d) if d == home.path()),
        "{err:?}"
    );
    let dir = home.path().join(PHONE);
    enrol(&dir, KeyStoreSpec::File);
    let path = dir.join(WALLET_FILE);
    let json = std::fs::read_to_string(&path).unwrap();
    for (from, to) in [
        ("\"pinTriesLeft\": 3", "\"pinTriesLeft\": 9"),
        ("\"version\": 1", "\"version\": 2"),
        (
            "\"authKey\": \"auth-key.p8\"",
            "\"authKey\": \"../auth-key.p8\"",
        ),
        ("\"signCertificate\": \"", "\"signCertificate\": \"!"),
    ] {
        assert!(json.contains(from), "{from} not in {json}");
        std::fs::write(&path, json.replace(from, to)).unwrap();
        let err = Wallet::open(&dir).unwrap_err();
        assert!(matches!(err, PhoneError::Wallet { .. }), "{to}: {err:?}");
    }
    std::fs::write(&path, b"{").unwrap();
    assert!(matches!(Wallet::open(&dir), Err(PhoneError::Wallet { .. })));
}

/// A stand-in for the service's device API, serving requests a test writes (the real service
/// never sends a wrong verification code or a malformed hash) and recording the answers.
mod fake_service {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::extract::{Path, RawQuery, State};
    use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
    use axum::http::{HeaderMap, HeaderName, StatusCode};
    use axum::routing::{get, post};
    use axum::Router;
    use imza_mobile_sign::protocol::{
        DeviceAnswer, ErrorBody, PendingRequest, PendingRequests, SessionState, SessionStatus,
    };

    #[derive(Default)]
    pub struct FakeService {
        pub pending: Mutex<Vec<PendingRequest>>,
        /// Session id, answer and the `Authorization` header it came with.
        pub answers: Mutex<Vec<(String, DeviceAnswer, String)>>,
        /// Answer 409 CONFLICT to every answer, as for a session already over.
        pub conflict: bool,
    }

    type Json = (StatusCode, [(HeaderName, &'static str); 1], String);

    fn json(status: StatusCode, body: String) -> Json {
        (status, [(CONTENT_TYPE, "application/json")], body)
    }

    async fn pending(State(fake): State<Arc<FakeService>>, RawQuery(query): RawQuery) -> Json {
        let listed = fake.pending.lock().unwrap().clone();
        if listed.is_empty() {
            // A short long poll, so an idle app does not spin.
            let asked = query
                .as_deref()
                .and_then(|q| q.strip_prefix("timeoutMs="))
                .and_then(|ms| ms.parse::<u64>().ok())
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(asked.min(200))).await;
        }
        let body = serde_json::to_string(&PendingRequests { requests: listed }).unwrap();
        json(StatusCode::OK, body)
    }

    async fn answer(
        State(fake): State<Arc<FakeService>>,
        Path(id): Path<String>,
        headers: HeaderMap,
        body: String,
    ) -> Json {
        let authorization = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let answer: DeviceAnswer = serde_json::from_str(&body).unwrap();
        fake.pending.lock().unwrap().retain(|r| r.session_id != id);
        fake.answers
            .lock()
            .unwrap()
            .push((id.clone(), answer.clone(), authorization));
        if fake.conflict {
            let body = ErrorBody {
                error: "CONFLICT".into(),
                message: "the session is over".into(),
            };
            return json(StatusCode::CONFLICT, serde_json::to_string(&body).unwrap());
        }
        let status = SessionStatus {
            state: SessionState::Complete,
            result: Some(answer.result),
            signature: None,
            cert: None,
        };
        json(StatusCode::OK, serde_json::to_string(&status).unwrap())
    }

    pub fn routes(fake: Arc<FakeService>) -> Router {
        Router::new()
            .route("/mss/v1/device/pending", get(pending))
            .route("/mss/v1/device/session/{id}", post(answer))
            .with_state(fake)
    }
}

mod with_a_fake_service {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use imza_mobile_sign::phone::{Decision, PhoneApp, PhoneEvent, PinEntry, RunSummary};
    use imza_mobile_sign::protocol::{
        encode_base64, verification_code, Language, PendingRequest, SessionResult,
    };
    use imza_testdata::loopback::LoopbackServer;

    use super::fake_service::{routes, FakeService};
    use super::*;

    fn request(
        id: &str,
        kind: SessionKind,
        digest: &[u8],
        hash_type: DigestAlgorithm,
    ) -> PendingRequest {
        PendingRequest {
            session_id: id.to_string(),
            kind,
            relying_party: "e-gov".into(),
            display_text: Some("Arayış imzalamaq".into()),
            language: Language::Aze,
            hash: encode_base64(digest),
            hash_type,
            verification_code: verification_code(digest),
            expires_at: "2030-01-01T00:00:00Z".into(),
        }
    }

    struct Phone {
        _home: tempfile::TempDir,
        dir: PathBuf,
        server: LoopbackServer,
        fake: Arc<FakeService>,
    }

    /// A phone with file keys registered at a fake service serving `requests`.
    fn phone(requests: Vec<PendingRequest>, conflict: bool) -> Phone {
        let fake = Arc::new(FakeService {
            pending: Mutex::new(requests),
            conflict,
            ..FakeService::default()
        });
        let server = LoopbackServer::launch(routes(Arc::clone(&fake)), 2);
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(PHONE);
        let enrollment =
            PhoneEnrollment::begin(&dir, PHONE, NATIONAL_ID, KeyStoreSpec::File, PIN).unwrap();
        let (auth, sign) = certify(&enrollment);
        enrollment
            .complete(&auth, &sign, &[], "device-7", "s3cret", &server.url(""))
            .unwrap();
        Phone {
            _home: home,
            dir,
            server,
            fake,
        }
    }

    /// Runs an app on the phone, with a PIN function that counts how often it is asked.
    fn run(
        phone: &Phone,
        decision: Decision,
        pin: &'static str,
        max: usize,
    ) -> (RunSummary, Vec<PhoneEvent>, usize) {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&asked);
        let entry = PinEntry::Ask(Box::new(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            Some(Zeroizing::new(pin.to_string()))
        }));
        let mut app = PhoneApp::new(Wallet::open(&phone.dir).unwrap(), decision, entry).unwrap();
        let mut events = Vec::new();
        let summary = app
            .run(Some(max), Some(Duration::from_secs(5)), &mut |e| {
                events.push(e.clone())
            })
            .unwrap();
        (summary, events, asked.load(Ordering::SeqCst))
    }

    #[test]
    fn approved_request_is_signed_with_the_key_of_its_kind() {
        let digest = [9u8; 48];
        let phone = phone(
            vec![request(
                "s-1",
                SessionKind::Authentication,
                &digest,
                DigestAlgorithm::Sha384,
            )],
            false,
        );
        let (summary, events, asked) = run(&phone, Decision::Approve, PIN, 1);
        assert_eq!((summary.requests, summary.answered, asked), (1, 1, 1));
        assert!(matches!(&events[0], PhoneEvent::Request(r) if r.session_id == "s-1"));
        let answers = phone.fake.answers.lock().unwrap();
        let (id, answer, authorization) = &answers[0];
        assert_eq!((id.as_str(), answer.result), ("s-1", SessionResult::Ok));
        assert_eq!(
            authorization,
            &format!("Basic {}", encode_base64(b"device-7:s3cret"))
        );
        let signature =
            imza_mobile_sign::protocol::decode_base64(answer.signature.as_ref().unwrap()).unwrap();
        let wallet = Wallet::open(&phone.dir).unwrap();
        let algorithm = DigestAlgorithm::Sha384;
        verify_digest(
            &spki(wallet.auth_certificate()),
            algorithm,
            &digest,
            &signature,
        )
        .unwrap();
        assert!(verify_digest(
            &spki(wallet.sign_certificate()),
            algorithm,
            &digest,
            &signature
        )
        .is_err());
        // Nothing the app said carries the PIN.
        assert!(!format!("{events:?}").contains(PIN));
    }

    #[test]
    fn a_request_whose_code_does_not_match_its_hash_is_not_signed() {
        let digest = [5u8; 32];
        let mut lying = request(
            "s-lie",
            SessionKind::Signature,
            &digest,
            DigestAlgorithm::Sha256,
        );
        let right = lying.verification_code.clone();
        lying.verification_code = format!("{:04}", (right.parse::<u32>().unwrap() + 1) % 10000);
        let short = request(
            "s-short",
            SessionKind::Signature,
            &digest[..20],
            DigestAlgorithm::Sha256,
        );
        let mut long = request(
            "s-long",
            SessionKind::Signature,
            &digest,
            DigestAlgorithm::Sha512,
        );
        long.verification_code = verification_code(&digest);
        let phone = phone(vec![lying, short, long], false);
        let (summary, events, asked) = run(&phone, Decision::Approve, PIN, 3);
        assert_eq!((summary.requests, summary.answered), (3, 3));
        // The PIN was never asked for: nothing was going to be signed.
        assert_eq!(asked, 0);
        let answers = phone.fake.answers.lock().unwrap();
        for (id, answer, _) in answers.iter() {
            assert_eq!(answer.result, SessionResult::DeliveryError, "{id}");
            assert!(answer.signature.is_none(), "{id}");
        }
        let rejected: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                PhoneEvent::RequestRejected { session_id, reason } => {
                    if session_id == "s-lie" {
                        assert!(reason.contains(&right), "{reason}");
                    }
                    Some(session_id.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(rejected, ["s-lie", "s-short", "s-long"]);
        assert_eq!(Wallet::open(&phone.dir).unwrap().pin_tries_left(), 3);
    }

    #[test]
    fn a_request_with_control_characters_is_not_shown_nor_signed() {
        let digest = [8u8; 32];
        let mut clear_screen = request(
            "s-esc",
            SessionKind::Signature,
            &digest,
            DigestAlgorithm::Sha256,
        );
        clear_screen.display_text = Some("\u{1b}[2JPay 1000 AZN".into());
        let mut bell = request(
            "s-bell",
            SessionKind::Signature,
            &digest,
            DigestAlgorithm::Sha256,
        );
        bell.relying_party = "bank\u{7}".into();
        let phone = phone(vec![clear_screen, bell], false);
        let (summary, events, asked) = run(&phone, Decision::Approve, PIN, 2);
        assert_eq!((summary.requests, summary.answered, asked), (2, 2, 0));
        assert!(
            !events.iter().any(|e| matches!(e, PhoneEvent::Request(_))),
            "{events:?}"
        );
        for event in &events {
            if let PhoneEvent::RequestRejected { reason, .. } = event {
                assert!(!reason.chars().any(char::is_control), "{reason:?}");
            }
        }
        let answers = phone.fake.answers.lock().unwrap();
        assert!(answers
            .iter()
            .all(|(_, a, _)| a.result == SessionResult::DeliveryError && a.signature.is_none()));
    }

    #[test]
    fn a_session_id_unfit_for_a_url_is_shown_but_not_answered() {
        let digest = [6u8; 32];
        let phone = phone(
            vec![request(
                "../pending",
                SessionKind::Signature,
                &digest,
                DigestAlgorithm::Sha256,
            )],
            false,
        );
        let (summary, events, asked) = run(&phone, Decision::Approve, PIN, 1);
        assert_eq!((summary.requests, summary.answered, asked), (1, 0, 0));
        assert!(events
            .iter()
            .any(|e| matches!(e, PhoneEvent::RequestRejected { .. })));
        assert!(phone.fake.answers.lock().unwrap().is_empty());
    }

    #[test]
    fn an_answer_to_a_session_already_over_is_reported_and_the_app_carries_on() {
        let phone = phone(
            vec![
                request(
                    "s-a",
                    SessionKind::Signature,
                    &[1u8; 32],
                    DigestAlgorithm::Sha256,
                ),
                request(
                    "s-b",
                    SessionKind::Signature,
                    &[2u8; 32],
                    DigestAlgorithm::Sha256,
                ),
            ],
            true,
        );
        let (summary, events, _) = run(&phone, Decision::Refuse, PIN, 2);
        assert_eq!(
            (summary.requests, summary.answered, summary.not_accepted),
            (2, 0, 2)
        );
        let statuses: Vec<u16> = events
            .iter()
            .filter_map(|e| match e {
                PhoneEvent::AnswerNotAccepted { status, .. } => Some(*status),
                _ => None,
            })
            .collect();
        assert_eq!(statuses, [409, 409]);
        assert!(phone
            .fake
            .answers
            .lock()
            .unwrap()
            .iter()
            .all(|(_, a, _)| a.result == SessionResult::UserRefused));
    }

    #[test]
    fn a_key_store_failure_is_answered_delivery_error() {
        let phone = phone(
            vec![request(
                "s-k",
                SessionKind::Signature,
                &[3u8; 32],
                DigestAlgorithm::Sha256,
            )],
            false,
        );
        std::fs::remove_file(phone.dir.join("sign-key.p8")).unwrap();
        let (summary, events, asked) = run(&phone, Decision::Approve, PIN, 1);
        assert_eq!((summary.answered, asked), (1, 1));
        assert!(events.iter().any(|e| matches!(e,
            PhoneEvent::KeyStoreFailed { session_id, message }
                if session_id == "s-k" && message.contains("sign-key.p8"))));
        let answers = phone.fake.answers.lock().unwrap();
        assert_eq!(answers[0].1.result, SessionResult::DeliveryError);
        assert_eq!(Wallet::open(&phone.dir).unwrap().pin_tries_left(), 3);
    }

    #[test]
    fn a_pin_value_that_cannot_be_a_pin_is_refused_before_it_costs_a_try() {
        let phone = phone(vec![], false);
        for value in ["2468\n", "24", ""] {
            let err = PhoneApp::new(
                Wallet::open(&phone.dir).unwrap(),
                Decision::Approve,
                PinEntry::Value(Zeroizing::new(value.into())),
            )
            .unwrap_err();
            assert!(matches!(err, PhoneError::PinFormat), "{value:?}: {err:?}");
        }
        let err = PhoneApp::new(
            Wallet::open(&phone.dir).unwrap(),
            Decision::Approve,
            PinEntry::Prompt,
        )
        .unwrap_err();
        assert!(matches!(err, PhoneError::PinUnavailable(_)), "{err:?}");
        // Refusing or ignoring needs no PIN.
        PhoneApp::new(
            Wallet::open(&phone.dir).unwrap(),
            Decision::Refuse,
            PinEntry::Prompt,
        )
        .unwrap();
        assert_eq!(Wallet::open(&phone.dir).unwrap().pin_tries_left(), 3);
    }

    #[test]
    fn an_idle_app_returns_when_no_request_comes() {
        let phone = phone(vec![], false);
        let mut app = PhoneApp::new(
            Wallet::open(&phone.dir).unwrap(),
            Decision::Approve,
            PinEntry::Value(Zeroizing::new(PIN.into())),
        )
        .unwrap();
        let mut events = 0;
        let summary = app
            .run(None, Some(Duration::from_millis(600)), &mut |_| events += 1)
            .unwrap();
        assert!(summary.ended_idle);
        assert_eq!((summary.requests, events), (0, 0));
    }

    #[test]
    fn an_unreachable_service_is_retried_then_reported() {
        let Phone {
            _home, dir, server, ..
        } = phone(vec![], false);
        server.stop();
        let mut app = PhoneApp::new(
            Wallet::open(&dir).unwrap(),
            Decision::Approve,
            PinEntry::Value(Zeroizing::new(PIN.into())),
        )
        .unwrap();
        let mut attempts = Vec::new();
        let err = app
            .run(Some(1), None, &mut |e| {
                if let PhoneEvent::ServiceUnreachable { attempt, .. } = e {
                    attempts.push(*attempt);
                }
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                PhoneError::Service(imza_mobile_sign::http_client::ApiError::Unreachable(_))
            ),
            "{err:?}"
        );
        assert_eq!(attempts, [1, 2, 3, 4, 5]);
    }
}

/// The app against the real service on loopback (tests/common): a relying party starts a
/// session, the app answers, the relying party reads the result.
mod with_the_service {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use imza_mobile_sign::phone::{Decision, PhoneApp, PhoneEvent, PinEntry, RunSummary};
    use imza_mobile_sign::protocol::{
        decode_base64, encode_base64, verification_code, Language, SessionRequest, SessionResult,
        SessionState, SessionStatus,
    };
    use imza_mobile_sign::store::{register_device, NewDevice, RegisteredCertificate};

    use super::common::{self, session_status, start_session, Mss, CA_NAME, RP_NAME};
    use super::*;

    /// How long a run waits for a request that should come at once.
    const IDLE: Duration = Duration::from_secs(20);

    static SERIAL: AtomicUsize = AtomicUsize::new(0x100);

    /// A phone registered at `mss` through the phone side: keys in `keys`, certificates from
    /// the service's CA, the device registered in the store, the wallet completed.
    fn register(mss: &Mss, keys: KeyStoreSpec) -> (tempfile::TempDir, PathBuf) {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(common::PHONE);
        let enrollment =
            PhoneEnrollment::begin(&dir, common::PHONE, common::NATIONAL_ID, keys, PIN).unwrap();
        let subject = format!("CN=Test Citizen {},C=AZ", common::NATIONAL_ID);
        let certificate = |key: &dyn imza_core::SigningKey| RegisteredCertificate {
            ca: CA_NAME.into(),
            der: mss.ca.issue(
                &subject,
                &SERIAL.fetch_add(1, Ordering::SeqCst).to_be_bytes()[6..],
                key,
                leaf_extensions(),
            ),
        };
        let auth = certificate(enrollment.auth_key());
        let sign = certificate(enrollment.sign_key());
        let registration = register_device(
            mss.store.as_ref(),
            &NewDevice {
                phone_number: common::PHONE.into(),
                national_id: common::NATIONAL_ID.into(),
                auth: auth.clone(),
                sign: sign.clone(),
            },
            imza_core::clock::Clock::now(mss.clock.as_ref()),
        )
        .unwrap();
        enrollment
            .complete(
                &auth.der,
                &sign.der,
                std::slice::from_ref(&mss.ca.der),
                &registration.device_id,
                &registration.device_secret,
                &mss.base_url(),
            )
            .unwrap();
        (home, dir)
    }

    fn request(hash: &[u8]) -> SessionRequest {
        SessionRequest {
            phone_number: common::PHONE.into(),
            national_identity_number: common::NATIONAL_ID.into(),
            hash: encode_base64(hash),
            hash_type: DigestAlgorithm::Sha256,
            display_text: Some("Arayışı imzalayın".into()),
            language: Language::Aze,
        }
    }

    fn app(dir: &Path, decision: Decision, pin: PinEntry) -> PhoneApp {
        PhoneApp::new(Wallet::open(dir).unwrap(), decision, pin).unwrap()
    }

    fn pin(value: &str) -> PinEntry {
        PinEntry::Value(Zeroizing::new(value.to_string()))
    }

    /// Runs `app` for one request; returns what it did and said.
    fn answer_one(app: &mut PhoneApp) -> (RunSummary, Vec<PhoneEvent>) {
        let mut events = Vec::new();
        let summary = app
            .run(Some(1), Some(IDLE), &mut |e| events.push(e.clone()))
            .unwrap();
        assert_eq!(summary.requests, 1, "{events:?}");
        (summary, events)
    }

    fn complete(rp: &imza_mobile_sign::http_client::JsonClient, id: &str) -> SessionStatus {
        let status = session_status(rp, id, 10_000).unwrap();
        assert_eq!(status.state, SessionState::Complete, "{status:?}");
        status
    }

    /// Approve: the relying party gets OK, the wallet's certificate of the session's kind and
    /// a signature by that key over its hash; the phone showed the code the relying party
    /// computes from the hash.
    fn approve_gives_ok(keys: KeyStoreSpec) {
        let mss = Mss::start();
        let rp = mss.rp();
        let (_home, dir) = register(&mss, keys);
        let mut app = app(&dir, Decision::Approve, pin(PIN));
        for (kind, document) in [
            (SessionKind::Signature, &b"residence certificate"[..]),
            (SessionKind::Authentication, &b"login challenge"[..]),
        ] {
            let hash = openssl::sha::sha256(document);
            let id = start_session(&rp, kind, &request(&hash)).unwrap();
            let (summary, events) = answer_one(&mut app);
            assert_eq!(summary.answered, 1);
            let PhoneEvent::Request(shown) = &events[0] else {
                panic!("{events:?}")
            };
            assert_eq!(
                (
                    shown.session_id.as_str(),
                    shown.kind,
                    shown.relying_party.as_str()
                ),
                (id.as_str(), kind, RP_NAME)
            );
            assert_eq!(shown.verification_code, verification_code(&hash));
            assert!(events.contains(&PhoneEvent::Answered {
                session_id: id.clone(),
                result: SessionResult::Ok
            }));

            let status = complete(&rp, &id);
            assert_eq!(status.result, Some(SessionResult::Ok));
            let wallet = Wallet::open(&dir).unwrap();
            let cert = decode_base64(status.cert.as_deref().unwrap()).unwrap();
            assert_eq!(cert, wallet.certificate(kind));
            let signature = decode_base64(&status.signature.unwrap().value).unwrap();
            verify_digest(&spki(&cert), DigestAlgorithm::Sha256, &hash, &signature).unwrap();
        }
    }

    #[test]
    fn approve_with_file_keys_gives_ok() {
        approve_gives_ok(KeyStoreSpec::File);
    }

    #[test]
    fn approve_with_a_token_gives_ok() {
        if let Some(keys) = token("phone-app") {
            approve_gives_ok(keys);
        }
    }

    #[test]
    fn refuse_gives_user_refused() {
        let mss = Mss::start();
        let rp = mss.rp();
        let (_home, dir) = register(&mss, KeyStoreSpec::File);
        let id = start_session(&rp, SessionKind::Signature, &request(&[4u8; 32])).unwrap();
        let (summary, events) = answer_one(&mut app(&dir, Decision::Refuse, pin(PIN)));
        assert_eq!(summary.answered, 1);
        assert!(events.contains(&PhoneEvent::Answered {
            session_id: id.clone(),
            result: SessionResult::UserRefused
        }));
        let status = complete(&rp, &id);
        assert_eq!(status.result, Some(SessionResult::UserRefused));
        assert!(status.signature.is_none() && status.cert.is_none());
    }

    #[test]
    fn ignore_gives_timeout() {
        let mss = Mss::start();
        let rp = mss.rp();
        let (_home, dir) = register(&mss, KeyStoreSpec::File);
        let id = start_session(&rp, SessionKind::Signature, &request(&[5u8; 32])).unwrap();
        let (summary, events) = answer_one(&mut app(&dir, Decision::Ignore, pin(PIN)));
        assert_eq!((summary.answered, summary.ignored), (0, 1));
        assert!(events.contains(&PhoneEvent::Ignored {
            session_id: id.clone()
        }));
        // Shown, not answered: still running until its lifetime is over.
        let running = session_status(&rp, &id, 0).unwrap();
        assert_eq!(running.state, SessionState::Running);
        mss.clock.advance(
            time::Duration::try_from(mss.config.session_lifetime).unwrap()
                + time::Duration::seconds(1),
        );
        let status = complete(&rp, &id);
        assert_eq!(status.result, Some(SessionResult::Timeout));
    }

    /// Three wrong PINs on one request answer PIN_BLOCKED; the next request is answered
    /// PIN_BLOCKED at once, without asking for the PIN.
    fn wrong_pins_block(keys: KeyStoreSpec) {
        let mss = Mss::start();
        let rp = mss.rp();
        let (_home, dir) = register(&mss, keys);
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&asked);
        let mut phone_app = app(
            &dir,
            Decision::Approve,
            PinEntry::Ask(Box::new(move |_, _| {
                counter.fetch_add(1, Ordering::SeqCst);
                Some(Zeroizing::new(WRONG_PIN.to_string()))
            })),
        );

        let first = start_session(&rp, SessionKind::Signature, &request(&[6u8; 32])).unwrap();
        let (_, events) = answer_one(&mut phone_app);
        let wrong: Vec<u8> = events
            .iter()
            .filter_map(|e| match e {
                PhoneEvent::WrongPin { tries_left } => Some(*tries_left),
                _ => None,
            })
            .collect();
        assert_eq!(wrong, [2, 1]);
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        assert!(events.contains(&PhoneEvent::Answered {
            session_id: first.clone(),
            result: SessionResult::PinBlocked
        }));
        assert_eq!(
            complete(&rp, &first).result,
            Some(SessionResult::PinBlocked)
        );
        assert!(!format!("{events:?}").contains(WRONG_PIN));

        let second = start_session(&rp, SessionKind::Authentication, &request(&[7u8; 32])).unwrap();
        let (_, events) = answer_one(&mut phone_app);
        assert_eq!(asked.load(Ordering::SeqCst), 3, "{events:?}");
        assert_eq!(
            complete(&rp, &second).result,
            Some(SessionResult::PinBlocked)
        );

        // Blocked for good: a new app with the right PIN is refused too.
        let third = start_session(&rp, SessionKind::Signature, &request(&[8u8; 32])).unwrap();
        answer_one(&mut app(&dir, Decision::Approve, pin(PIN)));
        assert_eq!(
            complete(&rp, &third).result,
            Some(SessionResult::PinBlocked)
        );
    }

    #[test]
    fn three_wrong_pins_with_file_keys_give_pin_blocked() {
        wrong_pins_block(KeyStoreSpec::File);
    }

    #[test]
    fn three_wrong_pins_with_a_token_give_pin_blocked() {
        if let Some(keys) = token("phone-app-pin") {
            wrong_pins_block(keys);
        }
    }
}
