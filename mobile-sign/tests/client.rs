//! The relying party's side against the real service on loopback: the client library, the
//! remote key signing a CAdES signature through imza-signer, authentication with the
//! certificate checked by OCSP, and every result a session can end with. A simulated phone
//! (a thread on the device API signing with `SoftwareKey::sign_digest`) answers.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{Mss, TestPhone, NATIONAL_ID, PHONE, RP_NAME};
use imza_core::clock::Clock;
use imza_core::ext;
use imza_core::key::software::SoftwareKey;
use imza_core::key::DigestAlgorithm;
use imza_core::{oids, CoreError, KeyAlgorithm, SigningKey};
use imza_http::HttpClient;
use imza_mobile_sign::authentication::{authenticate, AuthenticatedCitizen, AuthenticationTrust};
use imza_mobile_sign::client::{ClientError, MssClient};
use imza_mobile_sign::http_client::ApiError;
use imza_mobile_sign::protocol::{
    encode_base64, verification_code, DeviceAnswer, Language, PendingRequest, SessionKind,
    SessionResult,
};
use imza_mobile_sign::remote_key::MobileSigningKey;
use imza_mobile_sign::store::{
    add_relying_party, register_device, NewDevice, RegisteredCertificate,
};
use imza_ocsp::CertStatusInfo;
use imza_signer::{sign, Credentials, SignOptions, VerifyOptions};
use imza_testdata::loopback::LoopbackServer;
use imza_testdata::ocsp::OcspResponder;
use imza_testdata::pki::TestCa;
use imza_validation::Certificate;
use time::OffsetDateTime;
use x509_cert::ext::pkix::{CrlReason, KeyUsages};

/// How long a test waits for a session before the client gives up.
const PATIENCE: Duration = Duration::from_secs(60);

fn client(mss: &Mss) -> MssClient {
    MssClient::new(&mss.base_url(), RP_NAME, &mss.rp_key).unwrap()
}

/// Codes handed to `on_code`, in order.
#[derive(Clone, Default)]
struct Codes(Arc<Mutex<Vec<String>>>);

impl Codes {
    fn sink(&self) -> Box<dyn Fn(&str) + Send + Sync> {
        let codes = Arc::clone(&self.0);
        Box::new(move |code: &str| codes.lock().unwrap().push(code.to_string()))
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A phone that takes the next request and answers it with `respond` on its own thread;
/// the join handle gives back the request it saw.
fn phone_answers(
    phone: TestPhone,
    respond: impl FnOnce(&TestPhone, &PendingRequest) + Send + 'static,
) -> thread::JoinHandle<PendingRequest> {
    thread::spawn(move || {
        let request = phone.next_request();
        respond(&phone, &request);
        request
    })
}

fn approve(phone: &TestPhone, request: &PendingRequest) {
    phone
        .approve(request)
        .expect("the service takes the answer");
}

#[test]
fn the_remote_key_makes_a_cades_signature_that_verifies_and_shows_the_phones_code() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let registered = phone.sign.der.clone();
    let client = client(&mss);
    let certificate = client.certificate(PHONE, NATIONAL_ID).unwrap();
    assert_eq!(certificate, registered);

    let codes = Codes::default();
    let key = MobileSigningKey::new(
        client,
        PHONE,
        NATIONAL_ID,
        certificate.clone(),
        Some("Employment contract 2026/17".into()),
        Language::Aze,
        codes.sink(),
    )
    .unwrap();
    let phone_thread = phone_answers(phone, approve);
    let credentials =
        Credentials::new(Box::new(key), certificate, vec![mss.ca.der.clone()]).unwrap();
    let document = b"Employment contract 2026/17: ...".repeat(100);
    let now = OffsetDateTime::now_utc();
    let signature = sign(&document, &credentials, &SignOptions::new(now)).unwrap();
    let seen = phone_thread.join().unwrap();

    assert_eq!(codes.all(), vec![seen.verification_code.clone()]);
    assert_eq!(seen.kind, SessionKind::Signature);
    assert_eq!(seen.relying_party, RP_NAME);
    assert_eq!(
        seen.display_text.as_deref(),
        Some("Employment contract 2026/17")
    );

    let mut options = VerifyOptions::new(
        vec![Certificate::from_der(mss.ca.der.clone()).unwrap()],
        now,
    );
    let crl = mss.ca.crl_at(&[], now);
    options.extra_crls = imza_validation::read_crls(&crl).unwrap();
    let report = imza_signer::verify(&signature, Some(&document), &options);
    assert!(report.valid, "{report:#?}");
    let tampered = imza_signer::verify(&signature, Some(b"another document"), &options);
    assert!(!tampered.valid);
}

#[test]
fn the_remote_key_signs_with_the_certificates_digest_for_every_key_type() {
    for algorithm in [KeyAlgorithm::EcP384, KeyAlgorithm::Rsa2048] {
        let mss = Mss::start();
        let phone = mss.register_with(PHONE, NATIONAL_ID, algorithm);
        let certificate = phone.sign.der.clone();
        let key = MobileSigningKey::new(
            client(&mss),
            PHONE,
            NATIONAL_ID,
            certificate.clone(),
            None,
            Language::Eng,
            Box::new(|_| {}),
        )
        .unwrap();
        let phone_thread = phone_answers(phone, approve);
        let message = b"signed attributes";
        let signature = key.sign(message).unwrap();
        let seen = phone_thread.join().unwrap();
        assert_eq!(seen.hash_type, algorithm.digest());
        let parsed = imza_core::cert::parse_certificate(&certificate).unwrap();
        let spki = der::Encode::to_der(&parsed.tbs_certificate.subject_public_key_info).unwrap();
        imza_core::verify::verify_signature(
            &spki,
            &algorithm.signature_algorithm(),
            message,
            &signature,
        )
        .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
    }
}

/// What a signature session needs to know about a phone that has moved to its own thread.
struct Registration {
    phone_number: String,
    national_id: String,
    certificate: Vec<u8>,
}

impl Registration {
    fn of(phone: &TestPhone) -> Registration {
        Registration {
            phone_number: phone.phone_number.clone(),
            national_id: phone.national_id.clone(),
            certificate: phone.sign.der.clone(),
        }
    }
}

/// A signature session over a fixed hash through the remote key; returns its outcome.
fn signature_session(mss: &Mss, phone: &Registration) -> Result<Vec<u8>, ClientError> {
    let key = MobileSigningKey::new(
        client(mss),
        &phone.phone_number,
        &phone.national_id,
        phone.certificate.clone(),
        None,
        Language::Eng,
        Box::new(|_| {}),
    )?
    .with_give_up_after(PATIENCE);
    key.sign_hash(DigestAlgorithm::Sha256, &[9u8; 32])
}

#[test]
fn each_answer_of_the_phone_gives_its_error() {
    let mss = Mss::start();
    let answers = [
        SessionResult::UserRefused,
        SessionResult::PinBlocked,
        SessionResult::DeliveryError,
    ];
    for (n, result) in answers.into_iter().enumerate() {
        let phone = mss.register(&format!("+99450123450{n}"), &format!("1AB2C3{n}"));
        let registration = Registration::of(&phone);
        let answering = phone_answers(phone, move |phone, request| {
            phone.answer_without_signature(request, result).unwrap();
        });
        match signature_session(&mss, &registration) {
            Err(ClientError::Session(got)) => assert_eq!(got, result),
            other => panic!("{result}: {other:?}"),
        }
        answering.join().unwrap();
    }
}

#[test]
fn a_wrong_signature_from_the_phone_is_caught() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let registration = Registration::of(&phone);
    let answering = phone_answers(phone, |phone, request| {
        // Signed with the authentication key instead of the signing key.
        let hash = imza_mobile_sign::protocol::decode_base64(&request.hash).unwrap();
        let wrong = phone
            .auth_key
            .sign_digest(DigestAlgorithm::Sha256, &hash)
            .unwrap();
        phone
            .answer(
                &request.session_id,
                &DeviceAnswer {
                    result: SessionResult::Ok,
                    signature: Some(encode_base64(&wrong)),
                },
            )
            .unwrap();
    });
    assert!(matches!(
        signature_session(&mss, &registration),
        Err(ClientError::Session(SessionResult::SignatureHashMismatch))
    ));
    answering.join().unwrap();
}

#[test]
fn an_unknown_phone_is_not_a_mobile_client_and_has_no_certificate() {
    let mss = Mss::start();
    let _phone = mss.register(PHONE, NATIONAL_ID);
    let client = client(&mss);
    assert!(matches!(
        client.certificate("+994559999999", NATIONAL_ID),
        Err(ClientError::NotFound { .. })
    ));
    // The right phone with another person's id is unknown too.
    assert!(matches!(
        client.certificate(PHONE, "9ZZ9ZZ9"),
        Err(ClientError::NotFound { .. })
    ));
    let stranger = Registration {
        phone_number: "+994559999999".into(),
        national_id: NATIONAL_ID.into(),
        certificate: mss.register("+994551111111", "2BC3D4E").sign.der.clone(),
    };
    assert!(matches!(
        signature_session(&mss, &stranger),
        Err(ClientError::Session(SessionResult::NotMobileClient))
    ));
}

#[test]
fn a_phone_that_never_answers_times_out_and_one_never_reached_is_absent() {
    let mss = Mss::start();
    let silent = mss.register(PHONE, NATIONAL_ID);
    let absent = mss.register("+994551111111", "2BC3D4E");
    let client = client(&mss);
    let start = |phone: &TestPhone| {
        client
            .start(
                SessionKind::Signature,
                &common::session_request(phone, &[3u8; 32]),
            )
            .unwrap()
    };
    let fetched = start(&silent);
    let never_fetched = start(&absent);
    let request = silent.next_request();
    assert_eq!(request.session_id, fetched);
    mss.clock.advance(time::Duration::minutes(6));
    let outcome = |id: &str| client.wait(id, PATIENCE).unwrap().into_signature();
    assert!(matches!(
        outcome(&fetched),
        Err(ClientError::Session(SessionResult::Timeout))
    ));
    assert!(matches!(
        outcome(&never_fetched),
        Err(ClientError::Session(SessionResult::PhoneAbsent))
    ));
}

#[test]
fn waiting_gives_up_at_the_callers_deadline_and_the_session_can_still_be_read() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let client = client(&mss);
    let id = client
        .start(
            SessionKind::Signature,
            &common::session_request(&phone, &[4u8; 32]),
        )
        .unwrap();
    match client.wait(&id, Duration::from_millis(1500)) {
        Err(ClientError::GaveUp { session_id }) => assert_eq!(session_id, id),
        other => panic!("{other:?}"),
    }
    let request = phone.next_request();
    phone.approve(&request).unwrap();
    let (signature, certificate) = client
        .wait(&id, PATIENCE)
        .unwrap()
        .into_signature()
        .unwrap();
    assert_eq!(certificate, phone.sign.der);
    imza_core::verify::verify_digest(
        &phone.sign_key.public_key_der().unwrap(),
        DigestAlgorithm::Sha256,
        &[4u8; 32],
        &signature,
    )
    .unwrap();
    // Another relying party does not see it, and a wrong key sees nothing.
    let other_key = add_relying_party(mss.store.as_ref(), "other.gov.az", mss.clock.now()).unwrap();
    let other = MssClient::new(&mss.base_url(), "other.gov.az", &other_key).unwrap();
    assert!(matches!(
        other.wait(&id, PATIENCE),
        Err(ClientError::Api(ApiError::Refused { status: 404, .. }))
    ));
    let wrong_key = MssClient::new(&mss.base_url(), RP_NAME, "not-the-key").unwrap();
    assert!(matches!(
        wrong_key.wait(&id, PATIENCE),
        Err(ClientError::Api(ApiError::Refused { status: 401, .. }))
    ));
}

/// A citizen's phone registered with certificates as the `citizen-auth` and `citizen-sign`
/// profiles make them (subject with serialNumber `personal_code`, AIA OCSP at `ocsp_url`),
/// and a minimal device on the device API.
struct CitizenPhone {
    phone_number: String,
    national_id: String,
    device: imza_mobile_sign::http_client::JsonClient,
    auth_key: SoftwareKey,
    auth_der: Vec<u8>,
    auth_serial: Vec<u8>,
}

impl CitizenPhone {
    fn register(
        mss: &Mss,
        phone_number: &str,
        national_id: &str,
        personal_code: &str,
        ocsp_url: &str,
    ) -> CitizenPhone {
        CitizenPhone::register_under(
            mss,
            &mss.ca,
            None,
            phone_number,
            national_id,
            personal_code,
            ocsp_url,
        )
    }

    /// [`CitizenPhone::register`] with certificates of `ca`, naming `ca_issuers` in the AIA.
    fn register_under(
        mss: &Mss,
        ca: &TestCa,
        ca_issuers: Option<&str>,
        phone_number: &str,
        national_id: &str,
        personal_code: &str,
        ocsp_url: &str,
    ) -> CitizenPhone {
        let subject =
            format!("CN=Günay Əliyev,givenName=Günay,SN=Əliyev,serialNumber={personal_code},C=AZ");
        let aia = ext::authority_info_access(Some(ocsp_url), ca_issuers).unwrap();
        let issue = |key: &SoftwareKey, serial: &[u8], usage, eku| {
            let extensions = vec![
                ext::key_usage(usage).unwrap(),
                ext::extended_key_usage(&[eku], false).unwrap(),
                aia.clone(),
            ];
            ca.issue(&subject, serial, key, extensions)
        };
        let mut serial = [0u8; 8];
        openssl::rand::rand_bytes(&mut serial).unwrap();
        serial[0] = 0x21;
        let auth_serial = serial.to_vec();
        serial[0] = 0x22;
        let sign_serial = serial.to_vec();
        let auth_key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let sign_key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let auth_der = issue(
            &auth_key,
            &auth_serial,
            KeyUsages::DigitalSignature.into(),
            oids::KP_CLIENT_AUTH,
        );
        let sign_der = issue(
            &sign_key,
            &sign_serial,
            KeyUsages::NonRepudiation.into(),
            oids::KP_EMAIL_PROTECTION,
        );
        let registration = register_device(
            mss.store.as_ref(),
            &NewDevice {
                phone_number: phone_number.into(),
                national_id: national_id.into(),
                auth: RegisteredCertificate {
                    ca: common::CA_NAME.into(),
                    der: auth_der.clone(),
                },
                sign: RegisteredCertificate {
                    ca: common::CA_NAME.into(),
                    der: sign_der,
                },
            },
            mss.clock.now(),
        )
        .unwrap();
        let device = imza_mobile_sign::http_client::JsonClient::new(
            &mss.base_url(),
            &registration.device_id,
            &registration.device_secret,
        )
        .unwrap();
        CitizenPhone {
            phone_number: phone_number.into(),
            national_id: national_id.into(),
            device,
            auth_key,
            auth_der,
            auth_serial,
        }
    }

    /// On its own thread: takes the next request and signs it with the authentication key.
    fn approve_next(self) -> thread::JoinHandle<PendingRequest> {
        thread::spawn(move || {
            let pending: imza_mobile_sign::protocol::PendingRequests = self
                .device
                .get("/device/pending?timeoutMs=20000", Duration::from_secs(40))
                .unwrap();
            let request = pending.requests.into_iter().next().expect("a request");
            let hash = imza_mobile_sign::protocol::decode_base64(&request.hash).unwrap();
            let signature = self.auth_key.sign_digest(request.hash_type, &hash).unwrap();
            let _: imza_mobile_sign::protocol::SessionStatus = self
                .device
                .post(
                    &format!("/device/session/{}", request.session_id),
                    &DeviceAnswer {
                        result: SessionResult::Ok,
                        signature: Some(encode_base64(&signature)),
                    },
                    Duration::from_secs(20),
                )
                .unwrap();
            request
        })
    }
}

fn trust(mss: &Mss) -> AuthenticationTrust {
    AuthenticationTrust::new(
        vec![Certificate::from_der(mss.ca.der.clone()).unwrap()],
        Box::new(HttpClient {
            timeout: Duration::from_secs(10),
            ..HttpClient::default()
        }),
        mss.clock.clone(),
    )
}

/// Runs an authentication of `phone` approved on its thread; the codes shown to the relying
/// party, the request the phone saw and the outcome.
fn authenticate_phone(
    mss: &Mss,
    phone: CitizenPhone,
    trust: &AuthenticationTrust,
) -> (
    Vec<String>,
    PendingRequest,
    Result<AuthenticatedCitizen, ClientError>,
) {
    let (phone_number, national_id) = (phone.phone_number.clone(), phone.national_id.clone());
    let approving = phone.approve_next();
    let codes = Codes::default();
    let sink = codes.sink();
    let outcome = authenticate(
        &client(mss),
        &phone_number,
        &national_id,
        Language::Aze,
        Some("Log in to e-gov.az".into()),
        trust,
        PATIENCE,
        &|code: &str| sink(code),
    );
    (codes.all(), approving.join().unwrap(), outcome)
}

#[test]
fn authentication_identifies_the_citizen_whose_certificate_ocsp_calls_good() {
    let mss = Mss::start();
    let ocsp = OcspResponder::for_ca(&mss.ca);
    let phone = CitizenPhone::register(&mss, PHONE, NATIONAL_ID, "PNOAZ-1AB2C3D", &ocsp.url);
    ocsp.statuses.set(&phone.auth_serial, CertStatusInfo::Good);
    let auth_der = phone.auth_der.clone();
    let (codes, seen, outcome) = authenticate_phone(&mss, phone, &trust(&mss));
    let citizen = outcome.unwrap();
    assert_eq!(citizen.name, "Günay Əliyev");
    assert_eq!(citizen.personal_code, "PNOAZ-1AB2C3D");
    assert_eq!(citizen.national_id, NATIONAL_ID);
    assert_eq!(citizen.country.as_deref(), Some("AZ"));
    assert_eq!(citizen.certificate, auth_der);
    assert_eq!(seen.kind, SessionKind::Authentication);
    assert_eq!(codes, vec![seen.verification_code.clone()]);
    let hash = imza_mobile_sign::protocol::decode_base64(&seen.hash).unwrap();
    assert_eq!(verification_code(&hash), seen.verification_code);
}

#[test]
fn a_revoked_authentication_certificate_is_refused() {
    let mss = Mss::start();
    let ocsp = OcspResponder::for_ca(&mss.ca);
    let phone = CitizenPhone::register(&mss, PHONE, NATIONAL_ID, "PNOAZ-1AB2C3D", &ocsp.url);
    ocsp.statuses.set(
        &phone.auth_serial,
        CertStatusInfo::Revoked {
            at: OffsetDateTime::now_utc() - time::Duration::hours(1),
            reason: Some(CrlReason::KeyCompromise),
        },
    );
    // The service does not know of the revocation (its CA store says nothing): the relying
    // party's own OCSP check is what refuses.
    let (_, _, outcome) = authenticate_phone(&mss, phone, &trust(&mss));
    match outcome {
        Err(ClientError::Validation(why)) => assert!(why.contains("revoked"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_revocation_answer_no_login() {
    let mss = Mss::start();
    let ocsp = OcspResponder::for_ca(&mss.ca);
    // The responder does not know this certificate: "unknown" is no answer.
    let phone = CitizenPhone::register(&mss, PHONE, NATIONAL_ID, "PNOAZ-1AB2C3D", &ocsp.url);
    let (_, _, outcome) = authenticate_phone(&mss, phone, &trust(&mss));
    assert_revocation_unknown(outcome);
    // Nobody listening at the AIA URL.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/ocsp", listener.local_addr().unwrap())
    };
    let phone = CitizenPhone::register(&mss, "+994551111111", "2BC3D4E", "PNOAZ-2BC3D4E", &closed);
    let (_, _, outcome) = authenticate_phone(&mss, phone, &trust(&mss));
    assert_revocation_unknown(outcome);
}

fn assert_revocation_unknown(outcome: Result<AuthenticatedCitizen, ClientError>) {
    match outcome {
        Err(ClientError::Validation(why)) => assert!(why.contains("revocation status"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_certificate_of_another_person_or_an_untrusted_ca_is_refused() {
    let mss = Mss::start();
    let ocsp = OcspResponder::for_ca(&mss.ca);
    let phone = CitizenPhone::register(&mss, PHONE, "2BC3D4E", "PNOAZ-1AB2C3D", &ocsp.url);
    ocsp.statuses.set(&phone.auth_serial, CertStatusInfo::Good);
    let (_, _, outcome) = authenticate_phone(&mss, phone, &trust(&mss));
    match outcome {
        Err(ClientError::IdentityMismatch { expected, found }) => {
            assert_eq!(expected, "2BC3D4E");
            assert!(found.contains("PNOAZ-1AB2C3D"), "{found}");
        }
        other => panic!("{other:?}"),
    }
    let phone = CitizenPhone::register(
        &mss,
        "+994551111111",
        NATIONAL_ID,
        "PNOAZ-1AB2C3D",
        &ocsp.url,
    );
    ocsp.statuses.set(&phone.auth_serial, CertStatusInfo::Good);
    let other_root = TestCa::root("CN=Another Root,C=AZ", KeyAlgorithm::EcP256);
    let elsewhere = AuthenticationTrust::new(
        vec![Certificate::from_der(other_root.der.clone()).unwrap()],
        Box::new(HttpClient::default()),
        mss.clock.clone(),
    );
    let (_, _, outcome) = authenticate_phone(&mss, phone, &elsewhere);
    assert!(
        matches!(outcome, Err(ClientError::Validation(_))),
        "{outcome:?}"
    );
}

/// A JSON answer for the stand-in servers.
fn json(body: String) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
}

/// A "service" on loopback that says every signature session is complete and OK with
/// `signature` and `certificate`.
fn lying_service(signature: &[u8], certificate: &[u8]) -> LoopbackServer {
    let answer = format!(
        r#"{{"state":"COMPLETE","result":"OK","signature":{{"value":"{}","algorithm":"SHA256WithECEncryption"}},"cert":"{}"}}"#,
        encode_base64(signature),
        encode_base64(certificate)
    );
    let router = axum::Router::new()
        .route(
            "/mss/v1/signature",
            axum::routing::post(|| async { json(r#"{"sessionId":"s1"}"#.to_string()) }),
        )
        .route(
            "/mss/v1/session/{id}",
            axum::routing::get(
                move |axum::extract::Path(id): axum::extract::Path<String>| {
                    assert_eq!(id, "s1");
                    let answer = answer.clone();
                    async move { json(answer) }
                },
            ),
        );
    LoopbackServer::launch(router, 1)
}

#[test]
fn the_remote_key_believes_neither_the_services_signature_nor_its_certificate() {
    let ca = TestCa::root("CN=Root,C=AZ", KeyAlgorithm::EcP256);
    let phone_key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let other_key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let extensions = || vec![ext::key_usage(KeyUsages::NonRepudiation.into()).unwrap()];
    let certificate = ca.issue("CN=Citizen,C=AZ", &[1], &phone_key, extensions());
    let other_certificate = ca.issue("CN=Other,C=AZ", &[2], &other_key, extensions());
    let digest = [5u8; 32];
    let cases = [
        // Signed by another key, handed out with the citizen's certificate.
        (
            other_key
                .sign_digest(DigestAlgorithm::Sha256, &digest)
                .unwrap(),
            certificate.clone(),
            "does not verify",
        ),
        // The citizen's good signature, but with another certificate.
        (
            phone_key
                .sign_digest(DigestAlgorithm::Sha256, &digest)
                .unwrap(),
            other_certificate,
            "another certificate",
        ),
        // Not a signature at all.
        (b"junk".to_vec(), certificate.clone(), "does not verify"),
    ];
    for (signature, session_certificate, why) in cases {
        let server = lying_service(&signature, &session_certificate);
        let codes = Codes::default();
        let key = MobileSigningKey::new(
            MssClient::new(&server.url(""), RP_NAME, "key").unwrap(),
            PHONE,
            NATIONAL_ID,
            certificate.clone(),
            None,
            Language::Eng,
            codes.sink(),
        )
        .unwrap();
        let failure = key.last_failure();
        match key.sign_digest(DigestAlgorithm::Sha256, &digest) {
            Err(CoreError::Signing(message)) => assert!(message.contains(why), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(failure.take(), Some(ClientError::BadSignature(_))));
        // The code comes from the hash, computed here: the service never sent one.
        assert_eq!(codes.all(), vec![verification_code(&digest)]);
    }
}

#[test]
fn an_issuing_ca_missing_from_the_trust_is_fetched_from_the_certificates_ca_issuers_url() {
    let mss = Mss::start();
    let issuing = mss.ca.issuing_ca(
        "CN=imza Test Mobile Issuing CA,O=imza,C=AZ",
        KeyAlgorithm::EcP256,
        &[0x33],
    );
    let ocsp = OcspResponder::for_ca(&issuing);
    let der = issuing.der.clone();
    let publisher = LoopbackServer::launch(
        axum::Router::new().route(
            "/ca/issuing.crt",
            axum::routing::get(move || {
                let der = der.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/pkix-cert")],
                        der,
                    )
                }
            }),
        ),
        1,
    );
    let ca_issuers = publisher.url("/ca/issuing.crt");
    let phone = CitizenPhone::register_under(
        &mss,
        &issuing,
        Some(&ca_issuers),
        PHONE,
        NATIONAL_ID,
        "PNOAZ-1AB2C3D",
        &ocsp.url,
    );
    ocsp.statuses.set(&phone.auth_serial, CertStatusInfo::Good);
    // The root's CRL says the issuing CA is not revoked; only the root is trusted.
    let now = OffsetDateTime::now_utc();
    let root_crl = imza_validation::read_crls(&mss.ca.crl_at(&[], now)).unwrap();
    let mut without_fetching = trust(&mss);
    without_fetching.add_crl(root_crl[0].clone());
    let (_, _, outcome) = authenticate_phone(&mss, phone, &without_fetching);
    match outcome {
        Err(ClientError::Validation(why)) => {
            assert!(why.contains("no certification path"), "{why}")
        }
        other => panic!("{other:?}"),
    }

    // Another phone under the same CA, authenticated with fetching allowed.
    let phone = CitizenPhone::register_under(
        &mss,
        &issuing,
        Some(&ca_issuers),
        "+994551111111",
        "2BC3D4E",
        "PNOAZ-2BC3D4E",
        &ocsp.url,
    );
    ocsp.statuses.set(&phone.auth_serial, CertStatusInfo::Good);
    let mut fetching = trust(&mss).with_issuer_fetching(HttpClient::default());
    fetching.add_crl(root_crl[0].clone());
    let (_, _, outcome) = authenticate_phone(&mss, phone, &fetching);
    let citizen = outcome.unwrap();
    assert_eq!(citizen.personal_code, "PNOAZ-2BC3D4E");
    assert_eq!(citizen.issuer, "CN=imza Test Mobile Issuing CA,O=imza,C=AZ");
}
