//! A CRL as the path validator reads one (fetched, in a signature, or from a file): DER, or
//! PEM or DER through `read_crls`, with what it derives from it.
#![no_main]

use imza_validation::Crl;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(crl) = Crl::from_der(data.to_vec()) {
        touch(&crl);
    }
    if let Ok(crls) = imza_validation::read_crls(data) {
        crls.iter().for_each(touch);
    }
});

fn touch(crl: &Crl) {
    let _ = crl.issuer_text();
    let _ = crl.is_delta();
    let _ = crl.this_update();
    let _ = crl.next_update();
}
