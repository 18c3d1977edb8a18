//! A CMS / CAdES signature as `POST /verify` and `imza verify` read one: validated attached
//! and detached, with the certificates it carries taken as trust anchors so that the signer's
//! path, time-stamps and validation data are reached, not only the first format check.
#![no_main]

use imza_signer::{certificates_of, level_of, verify, VerifyOptions};
use imza_validation::Certificate;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = level_of(data);
    let anchors: Vec<Certificate> = certificates_of(data)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|der| Certificate::from_der(der).ok())
        .collect();
    let options = VerifyOptions::new(anchors, imza_fuzz::now());
    let _ = verify(data, None, &options);
    let _ = verify(data, Some(b"fuzz"), &options);
});
