//! A time-stamp request as the TSA reads its POST body, with what the TSA takes from it.
#![no_main]

use imza_tsa::TimeStampRequest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(request) = TimeStampRequest::from_der(data) {
        let _ = request.algorithm();
        let _ = request.hashed_message();
        let _ = request.policy();
        let _ = request.nonce_hex();
        let _ = request.cert_req();
        let _ = request.extension_oids();
        let _ = request.to_der();
    }
});
