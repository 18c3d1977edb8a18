//! The PEM reader every file imza is handed goes through: PEM or DER with the labels each
//! caller asks for, and every block of a PEM text.
#![no_main]

use imza_core::pem;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for labels in [
        &[pem::CERTIFICATE][..],
        &[pem::CERTIFICATE_REQUEST, "NEW CERTIFICATE REQUEST"],
        &[pem::X509_CRL],
    ] {
        let _ = pem::decode_pem_or_der(data, labels, "fuzz input");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pem::all_blocks(text, "fuzz input");
    }
});
