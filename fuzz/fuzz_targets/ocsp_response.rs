//! An OCSP response as the path validator and `imza ocsp` read one: parsed, then verified with
//! the certificates it carries taken as trusted, so that the signer search, the chain and the
//! signature check all run on what the input says.
#![no_main]

use imza_ocsp::{parse_response, verify_response, VerifyOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(response) = parse_response(data) else {
        return;
    };
    let Some(basic) = response.basic.as_ref() else {
        return;
    };
    let options = VerifyOptions {
        trusted: &basic.certs,
        untrusted: &[],
        at: imza_fuzz::now(),
        accept_sha1_signatures: true,
    };
    let _ = verify_response(basic, &options);
});
