//! The device-certificate login: certificates whose AIA points at imza's OCSP responder on
//! loopback, the chain and OCSP checked for real; the route driven in process with the
//! certificate handed over as imza-http's TLS layer hands it (a `ClientCertificate` request
//! extension). `imza serve` over real HTTPS with curl is in `cli/tests/serve.rs`.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{from_fn, Next};
use common::*;
use const_oid::ObjectIdentifier;
use imza_core::clock::{Clock, SystemClock};
use imza_core::ext;
use imza_core::key::software::SoftwareKey;
use imza_core::key::KeyAlgorithm;
use imza_core::oids;
use imza_http::ClientCertificate;
use imza_http::HttpClient;
use imza_ocsp::CertStatusInfo;
use imza_portal::device::{DeviceLogin, DeviceLoginError, PresentedCertificate};
use imza_portal::http::{routes, Portal};
use imza_portal::session::csrf_token;
use imza_portal::store::{PortalStore, SqlitePortalStore};
use imza_portal::webeid::TokenError;
use imza_testdata::loopback::{RouterClient, RouterReply};
use imza_testdata::ocsp::OcspResponder;
use imza_testdata::pki::TestCa;
use imza_validation::{AuthenticationTrust, Certificate};
use time::OffsetDateTime;
use x509_cert::ext::pkix::{CrlReason, KeyUsages};

/// The device authentication policy of these tests (the card's is [`CARD_AUTH`]).
const DEVICE_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.2042.1.1");
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
/// The header the test router turns into the TLS layer's extension (the portal never reads
/// it: the real server sets the extension from the handshake).
const TEST_CERT_HEADER: &str = "x-test-client-certificate";

struct FixedClock(OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

fn device_login(anchor: &TestCa, clock: Arc<dyn Clock>) -> DeviceLogin {
    let trust = AuthenticationTrust::new(
        vec![Certificate::from_der(anchor.der.clone()).unwrap()],
        Box::new(HttpClient {
            timeout: Duration::from_secs(5),
            ..HttpClient::default()
        }),
        Arc::clone(&clock),
    );
    DeviceLogin::new(vec![DEVICE_AUTH], trust, clock)
}

/// A device's certificate under `policy`, its AIA naming `ocsp_url`; its serial.
fn device_certificate(ca: &TestCa, policy: ObjectIdentifier, ocsp_url: &str) -> (Vec<u8>, Vec<u8>) {
    let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let mut extensions = auth_extensions(
        KeyUsages::DigitalSignature.into(),
        &[oids::KP_CLIENT_AUTH],
        policy,
    );
    extensions.push(ext::authority_info_access(Some(ocsp_url), None).unwrap());
    let serial = serial();
    (ca.issue(SUBJECT, &serial, &key, extensions), serial)
}

fn presented(der: &[u8]) -> PresentedCertificate {
    PresentedCertificate::read(der).unwrap()
}

#[test]
fn a_device_certificate_names_the_citizen_and_only_a_good_device_certificate_logs_in() {
    let ca = ca();
    let ocsp = OcspResponder::for_ca(&ca);
    let login = device_login(&ca, Arc::new(SystemClock));

    let (good, serial) = device_certificate(&ca, DEVICE_AUTH, &ocsp.url);
    ocsp.statuses.set(&serial, CertStatusInfo::Good);
    let citizen = login.login(&presented(&good)).unwrap();
    assert_eq!(citizen.name, "Gunay Aliyeva");
    assert_eq!(citizen.personal_code, "PNOAZ-5ZK7T2Q");

    // An ID card's authentication certificate, good at OCSP: not a device's.
    let (card, serial) = device_certificate(&ca, CARD_AUTH, &ocsp.url);
    ocsp.statuses.set(&serial, CertStatusInfo::Good);
    assert!(matches!(
        login.login(&presented(&card)),
        Err(DeviceLoginError::Refused(TokenError::PolicyRefused { .. }))
    ));

    // Revoked: refused with the reason.
    let (lost, serial) = device_certificate(&ca, DEVICE_AUTH, &ocsp.url);
    ocsp.statuses.set(
        &serial,
        CertStatusInfo::Revoked {
            at: OffsetDateTime::now_utc() - time::Duration::hours(1),
            reason: Some(CrlReason::KeyCompromise),
        },
    );
    match login.login(&presented(&lost)) {
        Err(DeviceLoginError::Refused(TokenError::Chain(why))) => {
            assert!(why.contains("revoked"), "{why}")
        }
        other => panic!("{other:?}"),
    }

    // Unknown to the responder: OCSP is required, so no login.
    let (unknown, _) = device_certificate(&ca, DEVICE_AUTH, &ocsp.url);
    assert!(matches!(
        login.login(&presented(&unknown)),
        Err(DeviceLoginError::Refused(TokenError::Chain(_)))
    ));

    // Expired (the same good certificate, a year and a half later): refused before OCSP.
    let later = device_login(
        &ca,
        Arc::new(FixedClock(
            OffsetDateTime::now_utc() + time::Duration::days(550),
        )),
    );
    match later.login(&presented(&good)) {
        Err(e @ DeviceLoginError::Refused(TokenError::CertificateTime { .. })) => {
            assert!(e.to_string().contains("not valid now"), "{e}")
        }
        other => panic!("{other:?}"),
    }

    // Another PKI's certificate, good at its own responder.
    let stranger = TestCa::root("CN=Look-alike CA,O=Elsewhere,C=AZ", KeyAlgorithm::EcP256);
    let stranger_ocsp = OcspResponder::for_ca(&stranger);
    let (foreign, serial) = device_certificate(&stranger, DEVICE_AUTH, &stranger_ocsp.url);
    stranger_ocsp.statuses.set(&serial, CertStatusInfo::Good);
    assert!(matches!(
        login.login(&presented(&foreign)),
        Err(DeviceLoginError::Refused(TokenError::Chain(_)))
    ));

    // Not a certificate at all.
    assert!(matches!(
        PresentedCertificate::read(b"not DER"),
        Err(DeviceLoginError::Malformed(_))
    ));
}

/// The portal's routes with the device login, the certificate of a request taken from
/// [`TEST_CERT_HEADER`] (hex) as the TLS layer would hand it.
struct Site {
    _dir: tempfile::TempDir,
    client: RouterClient,
}

fn site(login: DeviceLogin) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap());
    let mut portal = Portal::new(store as Arc<dyn PortalStore>, Arc::new(SystemClock));
    portal.device = Some(Arc::new(login));
    let router =
        routes(Arc::new(portal)).layer(from_fn(|mut request: Request, next: Next| async move {
            let der = request
                .headers_mut()
                .remove(TEST_CERT_HEADER)
                .map(|v| hex::decode(v.as_bytes()).unwrap());
            if let Some(der) = der {
                request.extensions_mut().insert(ClientCertificate(der));
            }
            next.run(request).await
        }));
    Site {
        _dir: dir,
        client: RouterClient::new(router),
    }
}

fn session_cookie(reply: &RouterReply) -> String {
    reply
        .header("set-cookie")
        .and_then(|h| h.split(';').next())
        .and_then(|pair| pair.strip_prefix("__Host-imza-session="))
        .expect("the session cookie")
        .to_string()
}

fn post_device(site: &Site, cookie: &str, csrf: &str, certificate: Option<&[u8]>) -> RouterReply {
    let cookie = format!("__Host-imza-session={cookie}");
    let hex_der = certificate.map(hex::encode);
    let mut headers = vec![FORM, ("cookie", cookie.as_str())];
    if let Some(der) = &hex_der {
        headers.push((TEST_CERT_HEADER, der.as_str()));
    }
    site.client.post(
        "/portal/login/device?lang=eng",
        &headers,
        format!("csrf={csrf}"),
    )
}

#[test]
fn the_login_page_offers_the_device_login_and_its_route_logs_in_or_says_why_not() {
    let ca = ca();
    let ocsp = OcspResponder::for_ca(&ca);
    let site = site(device_login(&ca, Arc::new(SystemClock)));
    let page = site.client.get("/portal?lang=eng", &[]);
    assert!(
        page.text()
            .contains("action=\"/portal/login/device?lang=eng\""),
        "{}",
        page.text()
    );
    let cookie = session_cookie(&page);
    let csrf = csrf_token(&cookie);

    // Without a certificate: a clear message, the login page again.
    let none = post_device(&site, &cookie, &csrf, None);
    assert_eq!(none.status, 401);
    assert!(
        none.text().contains("no device certificate was presented"),
        "{}",
        none.text()
    );

    // Without the CSRF token: refused before anything is checked.
    let (good, serial) = device_certificate(&ca, DEVICE_AUTH, &ocsp.url);
    ocsp.statuses.set(&serial, CertStatusInfo::Good);
    assert_eq!(
        post_device(&site, &cookie, "forged", Some(&good)).status,
        403
    );

    // A revoked one: 401 with the reason.
    let (lost, lost_serial) = device_certificate(&ca, DEVICE_AUTH, &ocsp.url);
    ocsp.statuses.set(
        &lost_serial,
        CertStatusInfo::Revoked {
            at: OffsetDateTime::now_utc() - time::Duration::hours(1),
            reason: Some(CrlReason::KeyCompromise),
        },
    );
    let revoked = post_device(&site, &cookie, &csrf, Some(&lost));
    assert_eq!(revoked.status, 401);
    assert!(revoked.text().contains("revoked"), "{}", revoked.text());

    // The good one: a new session, the cabinet names the citizen and the method.
    let done = post_device(&site, &cookie, &csrf, Some(&good));
    assert_eq!(done.status, 303, "{}", done.text());
    let mine = session_cookie(&done);
    assert_ne!(mine, cookie);
    let cabinet = site.client.get(
        "/portal/cabinet?lang=eng",
        &[("cookie", &format!("__Host-imza-session={mine}"))],
    );
    let html = cabinet.text();
    assert!(
        html.contains("<span id=\"name\">Gunay Aliyeva</span>"),
        "{html}"
    );
    assert!(
        html.contains("Logged in with: device certificate"),
        "{html}"
    );
}

#[test]
fn without_a_device_login_configured_there_is_no_button_and_no_login() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap());
    let portal = Portal::new(store as Arc<dyn PortalStore>, Arc::new(SystemClock));
    let client = RouterClient::new(routes(Arc::new(portal)));
    let page = client.get("/portal", &[]);
    assert!(!page.text().contains("/portal/login/device"));
    let cookie = session_cookie(&page);
    let reply = client.post(
        "/portal/login/device",
        &[FORM, ("cookie", &format!("__Host-imza-session={cookie}"))],
        format!("csrf={}", csrf_token(&cookie)),
    );
    assert_eq!(reply.status, 404);
}
