//! A PKCS#10 request as `imza ca issue --csr` and the CA's HTTP endpoint read it: PEM or DER,
//! parsed and its proof of possession verified.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imza_ca::csr::parse_csr(data);
});
