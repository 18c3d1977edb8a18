//! PKCS#10 requests for tests and benchmarks, made with OpenSSL (not with imza's own code, so
//! imza's CSR parser is checked against an independent encoder).

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509NameBuilder, X509Req};

/// A fresh P-256 key.
pub fn p256_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256 group");
    PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("PKey")
}

/// A DER CSR for `key` with `subject` given as (short name, value) pairs, most significant first
/// (`[("C", "AZ"), ("CN", "...")]`), values as UTF-8.
pub fn csr_der(key: &PKey<Private>, subject: &[(&str, &str)]) -> Vec<u8> {
    let mut name = X509NameBuilder::new().expect("name builder");
    for (field, value) in subject {
        name.append_entry_by_text(field, value).expect("name entry");
    }
    let name = name.build();
    let mut req = X509Req::builder().expect("req builder");
    req.set_subject_name(&name).expect("subject");
    req.set_pubkey(key).expect("pubkey");
    req.sign(key, MessageDigest::sha256()).expect("sign");
    req.build().to_der().expect("DER")
}

/// The subject of a test citizen number `i` (personal code PNOAZ-XXXXXXX from `i`).
pub fn citizen_subject(i: usize) -> Vec<(&'static str, String)> {
    let code: String = format!("{i:07X}")
        .chars()
        .rev()
        .take(7)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    vec![
        ("C", "AZ".into()),
        ("serialNumber", format!("PNOAZ-{code}")),
        ("SN", "Əliyev".into()),
        ("GN", "Günay".into()),
        ("CN", format!("Əliyev Günay {i}")),
    ]
}
