//! A certificate as imza reads one from a file, a signature or a peer: the core parser, the
//! validator's reader (PEM or DER, one or many) and everything it derives from it.
#![no_main]

use imza_validation::Certificate;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imza_core::cert::parse_certificate(data);
    if let Ok(certificate) = Certificate::from_der(data.to_vec()) {
        touch(&certificate);
    }
    if let Ok(certificates) = imza_validation::read_certificates(data) {
        certificates.iter().for_each(touch);
    }
});

fn touch(certificate: &Certificate) {
    let _ = certificate.spki_der();
    let _ = certificate.subject_text();
    let _ = certificate.issuer_text();
    let _ = certificate.not_before();
    let _ = certificate.not_after();
    let _ = certificate.subject_key_id();
    let _ = certificate.authority_key_id();
    let _ = certificate.is_ca();
    let _ = certificate.is_self_issued();
}
