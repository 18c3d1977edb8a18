//! What the citizen portal reads from a client before anyone is logged in: the session cookie,
//! the QR login link a phone sends back (form, then HMAC), the phone's scan and answer bodies,
//! the Web eID authentication token, and a device's TLS client certificate.
#![no_main]

use imza_portal::device::PresentedCertificate;
use imza_portal::qr::{link_origin, link_token, PhoneAnswer, QrSession, ScanRequest};
use imza_portal::session::cookie_id;
use imza_portal::webeid::AuthToken;

const ORIGIN: &str = "https://portal.example";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = AuthToken::parse(data);
    let _ = PresentedCertificate::read(data);
    if let Ok(scan) = serde_json::from_slice::<ScanRequest>(data) {
        check_link(&scan.link);
    }
    if let Ok(answer) = serde_json::from_slice::<PhoneAnswer>(data) {
        check_link(&answer.link);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cookie_id(text);
        check_link(text);
    }
});

fn check_link(link: &str) {
    let _ = link_origin(link);
    let _ = link_token(link, ORIGIN);
    let started = imza_fuzz::now();
    let session = QrSession::from_stored("fuzz-token".into(), [7; 32], started);
    let _ = session.check_link(link, ORIGIN, started + time::Duration::seconds(5));
}
