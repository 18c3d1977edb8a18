//! A PDF as `POST /verify` and `imza pdf verify` validate one: every signature and document
//! time-stamp found, located, byte ranges checked and its CMS validated.
#![no_main]

use std::io::Cursor;

use imza_signer::pades::verify_pdf;
use imza_signer::VerifyOptions;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let options = VerifyOptions::new(Vec::new(), imza_fuzz::now());
    let _ = verify_pdf(Cursor::new(data), &options);
});
