//! A time-stamp response as `imza ts request` and the signer read one: parsed, its token read
//! and verified (signature, attributes, path) with the certificates it carries as anchors.
#![no_main]

use imza_tsa::{
    parse_response, verify_token, Expectations, OpenSslPathValidator, ParsedToken, VerificationTime,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(response) = parse_response(data) {
        if let Ok(token) = response.into_token() {
            verify(&token);
        }
    }
    if let Ok(token) = ParsedToken::from_der(data) {
        verify(&token);
    }
});

fn verify(token: &ParsedToken) {
    let _ = token.imprint_algorithm();
    let _ = token.serial_hex();
    let _ = token.nonce_hex();
    let _ = token.tsa_name();
    let Ok(paths) = OpenSslPathValidator::new(token.certificates()) else {
        return;
    };
    let expect = Expectations {
        data: Some(b"fuzz"),
        ..Expectations::default()
    };
    for at in [
        VerificationTime::GenTime,
        VerificationTime::At(imza_fuzz::now()),
    ] {
        let _ = verify_token(token, &[], &paths, at, &expect);
    }
}
