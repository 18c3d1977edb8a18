//! imza validates signatures that `openssl cms -sign` made (RSA and P-256, detached and
//! attached), and a changed byte in the content, a signed attribute or the signature value
//! gives TOTAL_FAILED with the sub-indication EN 319 102-1 names.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use imza_core::KeyAlgorithm;
use imza_signer::{verify, Indication, SubIndication};
use imza_testdata::pki::TestCa;
use imza_validation::Certificate;
use time::OffsetDateTime;

const DOCUMENT: &[u8] = b"Arayis: yasayis yeri haqqinda arayis, 2026.\n";

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A PKI of `algorithm`, the time now, and `openssl cms -sign`'s detached signature over
/// [`DOCUMENT`].
fn detached(algorithm: KeyAlgorithm) -> (Pki, OffsetDateTime, Vec<u8>) {
    let pki = Pki::new(algorithm);
    let now = now();
    let signature = pki.openssl_sign(DOCUMENT, false, &[]);
    (pki, now, signature)
}

fn passes(algorithm: KeyAlgorithm, attached: bool) {
    let pki = Pki::new(algorithm);
    let now = now();
    let crl = pki.crl(&[], now);
    let signature = pki.openssl_sign(DOCUMENT, attached, &[]);
    let content = (!attached).then_some(DOCUMENT);
    let report = verify(&signature, content, &pki.options(&[crl], now));
    assert_verdict(&report, Indication::TotalPassed, None);
    let s = only(&report);
    assert_eq!(s.detached, !attached);
    assert_eq!(s.level, Some("B-B"));
    let signer = s.signer.as_ref().unwrap();
    assert_eq!(signer.personal_code.as_deref(), Some(PERSONAL_CODE));
    assert_eq!(
        signer.common_name.as_deref(),
        Some("Əliyev Günay Şəmsi oğlu")
    );
    assert_eq!(signer.serial, "2001");
    assert_eq!(s.digest_algorithm.as_deref(), Some("SHA-256"));
    assert!(s.claimed_signing_time.is_some());
    assert_eq!(s.poe_time, Some(now));
    assert_eq!(s.chain.len(), 2, "{s:#?}");
    assert_eq!(s.chain[0].serial, "2001");
    assert_eq!(s.revocation.len(), 1);
    assert_eq!(s.revocation[0].state, "good");
    assert_eq!(s.revocation[0].source, Some("CRL"));
    // The report is JSON with the standard's names.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["signatures"][0]["indication"], "TOTAL_PASSED");
    assert_eq!(
        json["signatures"][0]["signer"]["personal_code"],
        PERSONAL_CODE
    );
}

#[test]
fn openssl_p256_and_rsa_signatures_detached_and_attached_pass() {
    for algorithm in [KeyAlgorithm::EcP256, KeyAlgorithm::Rsa2048] {
        for attached in [false, true] {
            passes(algorithm, attached);
        }
    }
}

#[test]
fn openssl_cades_signature_binds_the_signing_certificate() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = now();
    let signature = pki.openssl_sign(DOCUMENT, false, &["-cades"]);
    let report = verify(&signature, Some(DOCUMENT), &pki.clean_options(now));
    assert_verdict(&report, Indication::TotalPassed, None);
    // With signing-certificate-v2 present, nothing warns about a missing binding.
    let s = only(&report);
    assert!(
        !s.warnings.iter().any(|w| w.contains("signing-certificate")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn a_flipped_content_byte_is_a_hash_failure() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = now();
    let options = pki.clean_options(now);
    // Detached: the content given differs.
    let signature = pki.openssl_sign(DOCUMENT, false, &[]);
    let mut changed = DOCUMENT.to_vec();
    changed[3] ^= 0x01;
    let report = verify(&signature, Some(&changed), &options);
    assert_failed(&report, SubIndication::HASH_FAILURE);
    // Attached: the carried content is changed in place.
    let mut attached = pki.openssl_sign(DOCUMENT, true, &[]);
    let at = find(&attached, DOCUMENT);
    attached[at + 3] ^= 0x01;
    let report = verify(&attached, None, &options);
    assert_failed(&report, SubIndication::HASH_FAILURE);
}

#[test]
fn a_flipped_signed_attribute_byte_is_a_signature_failure() {
    let (pki, now, mut signature) = detached(KeyAlgorithm::EcP256);
    // The signing-time attribute: OID 1.2.840.113549.1.9.5, SET, UTCTime "YYMMDDhhmmssZ";
    // change the last seconds digit to another digit.
    let oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05,
    ];
    let at = find(&signature, &oid) + oid.len() + 2 + 2 + 11;
    assert!(signature[at].is_ascii_digit() && signature[at + 1] == b'Z');
    signature[at] = if signature[at] == b'0' { b'1' } else { b'0' };
    let report = verify(&signature, Some(DOCUMENT), &pki.clean_options(now));
    assert_failed(&report, SubIndication::SIG_CRYPTO_FAILURE);
}

#[test]
fn a_flipped_signature_value_byte_is_a_signature_failure() {
    for algorithm in [KeyAlgorithm::EcP256, KeyAlgorithm::Rsa2048] {
        let (pki, now, mut signature) = detached(algorithm);
        // The signature value is the last field of the last SignerInfo: the file's last bytes.
        let last = signature.len() - 2;
        signature[last] ^= 0x40;
        let report = verify(&signature, Some(DOCUMENT), &pki.clean_options(now));
        assert_failed(&report, SubIndication::SIG_CRYPTO_FAILURE);
    }
}

#[test]
fn an_unknown_trust_anchor_finds_no_chain() {
    let (pki, now, signature) = detached(KeyAlgorithm::EcP256);
    let other = Pki::new(KeyAlgorithm::EcP256);
    let stranger = TestCa::root("CN=Another Root,O=elsewhere,C=AZ", KeyAlgorithm::EcP256);
    // Another root of the same name (whose key did not sign), and one of another name.
    for root in [&other.root.der, &stranger.der] {
        let mut options = pki.clean_options(now);
        options.trust_anchors = vec![Certificate::from_der(root.clone()).unwrap()];
        let report = verify(&signature, Some(DOCUMENT), &options);
        assert_indeterminate(&report, SubIndication::NO_CERTIFICATE_CHAIN_FOUND);
    }
}

#[test]
fn a_detached_signature_without_its_content_is_indeterminate() {
    let (pki, now, signature) = detached(KeyAlgorithm::EcP256);
    let report = verify(&signature, None, &pki.clean_options(now));
    assert_indeterminate(&report, SubIndication::SIGNED_DATA_NOT_FOUND);
}

#[test]
fn without_revocation_information_the_verdict_waits() {
    let (pki, now, signature) = detached(KeyAlgorithm::EcP256);
    let report = verify(&signature, Some(DOCUMENT), &pki.options(&[], now));
    assert_indeterminate(&report, SubIndication::TRY_LATER);
}

#[test]
fn a_revoked_signer_without_a_timestamp_has_no_proof_of_existence() {
    let (pki, now, signature) = detached(KeyAlgorithm::EcP256);
    let crl = pki.crl(&[(SIGNER_SERIAL, now - time::Duration::hours(2))], now);
    let report = verify(&signature, Some(DOCUMENT), &pki.options(&[crl], now));
    assert_indeterminate(&report, SubIndication::REVOKED_NO_POE);
}

/// `openssl cms -sign` with RSASSA-PSS and `salt`, as `-keyopt rsa_pss_saltlen:` reads it.
fn openssl_pss(pki: &Pki, salt: &str) -> Vec<u8> {
    let salt = format!("rsa_pss_saltlen:{salt}");
    pki.openssl_sign(
        DOCUMENT,
        false,
        &["-keyopt", "rsa_padding_mode:pss", "-keyopt", &salt],
    )
}

/// The DER of `saltLength [2] INTEGER n` inside RSASSA-PSS-params (RFC 4055 §3.1).
fn salt_field(n: u8) -> Vec<u8> {
    if n < 0x80 {
        vec![0xa2, 0x03, 0x02, 0x01, n]
    } else {
        vec![0xa2, 0x04, 0x02, 0x02, 0x00, n]
    }
}

#[test]
fn openssl_rsa_pss_signatures_pass_with_the_maximum_salt_20_bytes_and_the_hash_length() {
    let pki = Pki::new(KeyAlgorithm::Rsa2048);
    let now = now();
    let options = pki.clean_options(now);
    // "max" is what openssl cms, pyHanko and endesive write for RSA-2048 with SHA-256: 222.
    // 20 is saltLength's DEFAULT, so DER leaves the field out.
    for (salt, declared) in [("max", Some(222)), ("20", None), ("digest", Some(32))] {
        let signature = openssl_pss(&pki, salt);
        if let Some(declared) = declared {
            find(&signature, &salt_field(declared));
        }
        let report = verify(&signature, Some(DOCUMENT), &options);
        assert_verdict(&report, Indication::TotalPassed, None);
        assert_eq!(
            only(&report).signature_algorithm.as_deref(),
            Some("RSASSA-PSS"),
            "salt {salt}"
        );
    }
}

#[test]
fn rsa_pss_parameters_claiming_another_salt_than_used_are_a_signature_failure() {
    let pki = Pki::new(KeyAlgorithm::Rsa2048);
    let now = now();
    let mut signature = openssl_pss(&pki, "max");
    // The parameters are not signed: say 32 where the signer used 222 (same length in DER).
    let at = find(&signature, &salt_field(222));
    signature[at + 5] = 32;
    let report = verify(&signature, Some(DOCUMENT), &pki.clean_options(now));
    assert_failed(&report, SubIndication::SIG_CRYPTO_FAILURE);
}

/// `signature_der` with its only SignerInfo's signatureAlgorithm replaced by `algorithm`
/// (not covered by the signature: RFC 5652 §5.4 signs the signed attributes only).
fn relabelled(signature_der: &[u8], algorithm: spki::AlgorithmIdentifierOwned) -> Vec<u8> {
    use der::Encode;
    let mut sd = signed_data(signature_der);
    let mut infos: Vec<_> = sd.signer_infos.0.into_vec();
    infos[0].signature_algorithm = algorithm;
    sd.signer_infos = cms::signed_data::SignerInfos(der::asn1::SetOfVec::try_from(infos).unwrap());
    cms::content_info::ContentInfo {
        content_type: imza_core::oids::CT_SIGNED_DATA,
        content: der::Any::encode_from(&sd).unwrap(),
    }
    .to_der()
    .unwrap()
}

#[test]
fn an_ecdsa_signature_labelled_rsa_encryption_is_a_format_failure_that_says_so() {
    let (pki, now, signature) = detached(KeyAlgorithm::EcP256);
    let mislabelled = relabelled(
        &signature,
        spki::AlgorithmIdentifierOwned {
            oid: imza_core::oids::RSA_ENCRYPTION,
            parameters: Some(der::asn1::Null.into()),
        },
    );
    let report = verify(&mislabelled, Some(DOCUMENT), &pki.clean_options(now));
    assert_failed(&report, SubIndication::FORMAT_FAILURE);
    let errors = only(&report).errors.join("; ");
    // The words name what the file says (rsaEncryption) and what the key is, never the
    // sha256WithRSAEncryption OID the file does not carry.
    assert!(errors.contains("rsaEncryption"), "{errors}");
    assert!(errors.contains("EC"), "{errors}");
    assert!(!errors.contains("1.2.840.113549.1.1.11"), "{errors}");
    // An RSA signature labelled ecdsa-with-SHA256 is the same failure.
    let (pki, now, signature) = detached(KeyAlgorithm::Rsa2048);
    let mislabelled = relabelled(
        &signature,
        spki::AlgorithmIdentifierOwned {
            oid: imza_core::oids::ECDSA_WITH_SHA256,
            parameters: None,
        },
    );
    let report = verify(&mislabelled, Some(DOCUMENT), &pki.clean_options(now));
    assert_failed(&report, SubIndication::FORMAT_FAILURE);
}

#[test]
fn pyhanko_rsa_pss_signature_with_the_maximum_salt_passes() {
    let pki = Pki::new(KeyAlgorithm::Rsa2048);
    let now = now();
    let input = pki.file("pyhanko-content.bin", DOCUMENT);
    let output = pki.path("pyhanko.p7s");
    let (key, cert) = (pki.path("signer.key"), pki.path("signer.pem"));
    // `--detach`: the CMS object alone, over the file as it is.
    let args = [
        "sign",
        "addsig",
        "--prefer-pss",
        "--detach",
        "pemder",
        "--key",
        path_str(&key),
        "--cert",
        path_str(&cert),
        "--no-pass",
        path_str(&input),
        path_str(&output),
    ];
    let result = imza_testdata::tools::pyhanko(&args);
    assert!(
        result.status.success(),
        "pyhanko {args:?}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let signature = std::fs::read(&output).unwrap();
    // pyHanko's salt for RSA-2048 with SHA-256: the maximum, 222 bytes.
    find(&signature, &salt_field(222));
    let report = verify(&signature, Some(DOCUMENT), &pki.clean_options(now));
    assert_verdict(&report, Indication::TotalPassed, None);
    assert_eq!(
        only(&report).signature_algorithm.as_deref(),
        Some("RSASSA-PSS")
    );
}
