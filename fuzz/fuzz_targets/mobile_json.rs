//! The mobile signature service's JSON: the bodies its routes read (certificate query, session
//! start, the phone's answer) with the checks the service applies, and the answers its clients
//! (the relying party's and the phone's) read from a server.
#![no_main]

use imza_mobile_sign::protocol::{
    check_display_text, check_national_id, check_phone_number, check_relying_party_name,
    check_session_request, decode_base64, normalize_phone_number, CertificateRequest,
    CertificateResponse, DeviceAnswer, PendingRequests, SessionCreated, SessionRequest,
    SessionStatus,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<CertificateRequest>(data) {
        let _ = check_phone_number(&request.phone_number);
        let _ = check_national_id(&request.national_identity_number);
    }
    if let Ok(request) = serde_json::from_slice::<SessionRequest>(data) {
        let _ = check_phone_number(&request.phone_number);
        let _ = check_national_id(&request.national_identity_number);
        let _ = check_session_request(&request);
        if let Some(text) = &request.display_text {
            let _ = check_display_text(text);
        }
    }
    if let Ok(answer) = serde_json::from_slice::<DeviceAnswer>(data) {
        if let Some(signature) = &answer.signature {
            let _ = decode_base64(signature);
        }
    }
    let _ = serde_json::from_slice::<CertificateResponse>(data);
    let _ = serde_json::from_slice::<SessionCreated>(data);
    let _ = serde_json::from_slice::<SessionStatus>(data);
    let _ = serde_json::from_slice::<PendingRequests>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = normalize_phone_number(text);
        let _ = check_display_text(text);
        let _ = check_relying_party_name(text);
    }
});
