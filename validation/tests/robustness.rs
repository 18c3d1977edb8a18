//! No input makes the parser or the validator panic: PKITS certificates and CRLs with bytes
//! flipped, cut short or extended are either refused as malformed or validated to some
//! verdict.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use imza_validation::{
    read_certificates, read_crls, Certificate, Crl, ValidationError, ValidationOptions, Validator,
};
use time::macros::datetime;

fn pkits(sub: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testsuites/pkits")
        .join(sub)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// xorshift64*: deterministic, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        1 => bytes.truncate(rng.below(bytes.len())),
        2 => {
            let i = rng.below(bytes.len());
            bytes[i] = [0x00, 0x80, 0xff, 0x81, 0x30][rng.below(5)];
        }
        _ => bytes.extend_from_slice(&original[..rng.below(original.len())]),
    }
    bytes
}

#[test]
fn mutated_certificates_and_crls_are_refused_or_judged_never_panicking() {
    let anchor = Certificate::from_der(pkits("certs", "TrustAnchorRootCertificate.crt")).unwrap();
    let ca = pkits("certs", "GoodCACert.crt");
    let leaf = pkits("certs", "ValidCertificatePathTest1EE.crt");
    let ta_crl = pkits("crls", "TrustAnchorRootCRL.crl");
    let ca_crl = pkits("crls", "GoodCACRL.crl");
    let idp_crl = pkits("crls", "distributionPoint2CACRL.crl");
    let options = ValidationOptions::at(datetime!(2011-04-15 00:00:00 UTC));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut judged = 0;
    for round in 0..600 {
        let mutated_ca = mutate(&mut rng, &ca);
        let mutated_leaf = if round % 3 == 0 {
            mutate(&mut rng, &leaf)
        } else {
            leaf.clone()
        };
        let mutated_crl = mutate(&mut rng, if round % 2 == 0 { &ca_crl } else { &idp_crl });
        let mut validator = Validator::new(vec![anchor.clone()]);
        if let Ok(cert) = Certificate::from_der(mutated_ca.clone()) {
            validator.add_certificate(cert);
        }
        validator.add_certificate(Certificate::from_der(ca.clone()).unwrap());
        validator.add_crl(Crl::from_der(ta_crl.clone()).unwrap());
        if let Ok(crl) = Crl::from_der(mutated_crl) {
            validator.add_crl(crl);
        }
        let _ = read_certificates(&mutated_ca);
        let _ = read_crls(&mutated_ca);
        match Certificate::from_der(mutated_leaf) {
            Ok(target) => {
                let _ = validator.validate(&target, &options);
                judged += 1;
            }
            Err(e) => assert!(matches!(e, ValidationError::Malformed { .. }), "{e}"),
        }
    }
    assert!(judged > 300, "only {judged} rounds reached validation");
}
