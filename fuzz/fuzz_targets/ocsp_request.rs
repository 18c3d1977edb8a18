//! An OCSP request as the responder reads it: the POST body, and the same bytes as the
//! percent-encoded base64 of a GET path.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imza_ocsp::parse_request(data);
    if let Ok(path) = std::str::from_utf8(data) {
        let encoded = imza_ocsp::http::get_request_part(path);
        if let Ok(der) = imza_ocsp::http::decode_get_request(encoded) {
            let _ = imza_ocsp::parse_request(&der);
        }
    }
});
