//! B-LT and B-LTA against a PKI whose certificates point at CRLs served on a loopback port:
//! the signature gets the chain and the CRLs that cover the signer's, the issuing CA's and the
//! TSA's certificates; with the CRL server stopped, the embedded data alone still validates.
//! B-LTA's archive-time-stamp-v3 is checked here by an independent computation of EN 319
//! 122-1 §5.5.2-5.5.3 (hash index and message imprint) over the cms crate's decoding, and its
//! token by `openssl ts -verify` after the ats-hash-index-v3 was added to it.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cms::signed_data::SignerInfo;
use common::long_term::LongTermPki;
use common::*;
use der::asn1::OctetString;
use der::{Decode, Encode, Sequence};
use imza_core::{oids, KeyAlgorithm};
use imza_signer::{augment, level_of, sign, Level, SignerError, ValidationDataSources};
use imza_testdata::pki::{write_certificate, TestCa};
use imza_validation::ValidationError;
use time::OffsetDateTime;

const DOCUMENT: &[u8] = b"Diplom N 2026/0042, verilib: Baki Dovlet Universiteti.";

/// Each element of `SignedData.crls` as DER.
fn revocation_values(signature: &[u8]) -> Vec<Vec<u8>> {
    signed_data(signature)
        .crls
        .map(|set| set.0.into_vec())
        .unwrap_or_default()
        .iter()
        .map(|choice| choice.to_der().unwrap())
        .collect()
}

fn certificates(signature: &[u8]) -> Vec<Vec<u8>> {
    signed_data(signature)
        .certificates
        .map(|set| set.0.into_vec())
        .unwrap_or_default()
        .iter()
        .map(|choice| choice.to_der().unwrap())
        .collect()
}

#[test]
fn b_lt_embeds_the_chains_and_crls_and_validates_with_the_crl_server_stopped() {
    let pki = LongTermPki::new();
    let options = pki.options(Level::LT);
    let signature = sign(DOCUMENT, &pki.credentials(), &options).unwrap();
    assert_eq!(level_of(&signature).unwrap(), Level::LT);
    assert!(pki.crl_fetches() >= 2, "the CRLs were fetched");

    let certs = certificates(&signature);
    for (what, der) in [
        ("root", &pki.root.der),
        ("issuing CA", &pki.issuing.der),
        ("signer", &pki.signer_cert),
        ("TSA", &pki.tsa_cert),
    ] {
        assert!(certs.contains(der), "{what} certificate not embedded");
    }
    let crls = revocation_values(&signature);
    assert_eq!(crls.len(), 2, "one CRL per CA, each once");
    for crl in &crls {
        assert_eq!(crl[0], 0x30, "CRLs go in as CertificateList");
        x509_cert::crl::CertificateList::from_der(crl).unwrap();
    }
    // OpenSSL still accepts it, and a B-T version of it has the same signed part.
    let dir = tempfile::tempdir().unwrap();
    let sig = dir.path().join("lt.p7s");
    std::fs::write(&sig, &signature).unwrap();
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, DOCUMENT).unwrap();
    let root = dir.path().join("root.pem");
    write_certificate(&root, &pki.root.der);
    openssl_cms_verify(&sig, Some(&doc), &root, &dir.path().join("out")).unwrap();

    // Network gone: gathering again finds everything inside and adds nothing.
    pki.stop_crl_server();
    let fetches = pki.crl_fetches();
    let again = augment(&signature, Some(DOCUMENT), Level::LT, &options.augment).unwrap();
    assert_eq!(again, signature);
    assert_eq!(pki.crl_fetches(), fetches);
}

#[test]
fn b_lt_fails_with_the_reason_when_revocation_data_cannot_be_had() {
    let pki = LongTermPki::new();
    pki.stop_crl_server();
    let mut options = pki.options(Level::LT);
    let err = sign(DOCUMENT, &pki.credentials(), &options).unwrap_err();
    assert!(err.to_string().contains("did not validate"), "{err}");
    // The validator's own error is kept: the CRL server's failure, with its URL.
    let SignerError::Revocation(failure) = &err else {
        panic!("expected a revocation failure, got {err:?}");
    };
    assert!(
        matches!(
            &failure.source,
            ValidationError::RevocationUnknown { .. } | ValidationError::Network { .. }
        ),
        "{:?}",
        failure.source
    );
    let kept = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<ValidationError>())
        .unwrap();
    assert_eq!(kept.to_string(), failure.source.to_string());

    // Another root: no path.
    let other = TestCa::root("CN=Someone Else,C=AZ", KeyAlgorithm::EcP256);
    let sources = ValidationDataSources::new(vec![other.der.clone()]);
    options.augment.validation = Some(&sources);
    let err = sign(DOCUMENT, &pki.credentials(), &options).unwrap_err();
    assert!(
        matches!(
            &err,
            SignerError::Revocation(failure)
                if matches!(failure.source, ValidationError::NoPathFound { .. })
        ),
        "{err:?}"
    );
}

// --- B-LTA, checked by an independent reading of EN 319 122-1 §5.5 ------------------------

/// ATSHashIndexV3 without hashIndAlgorithm (SHA-256, the DEFAULT), as imza writes it.
#[derive(Sequence)]
struct HashIndex {
    certificates_hash_index: Vec<OctetString>,
    crls_hash_index: Vec<OctetString>,
    unsigned_attr_values_hash_index: Vec<OctetString>,
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    openssl::sha::sha256(bytes).to_vec()
}

/// The archive time-stamp tokens of the only signer and, for each, its hash index DER.
fn archive_tokens(signature: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    unsigned_values(signature, oids::ATTR_ARCHIVE_TIME_STAMP_V3)
        .into_iter()
        .map(|token| {
            let index = unsigned_values(&token, oids::ATTR_ATS_HASH_INDEX_V3);
            assert_eq!(index.len(), 1, "one ats-hash-index-v3 in the token");
            (token, index[0].clone())
        })
        .collect()
}

/// version..signature of a SignerInfo, each re-encoded by the cms crate (DER in, DER out).
fn signed_fields(signer: &SignerInfo) -> Vec<u8> {
    let tagged_attrs = der::asn1::ContextSpecific {
        tag_number: der::TagNumber::N0,
        tag_mode: der::TagMode::Implicit,
        value: signer.signed_attrs.clone().unwrap(),
    };
    [
        signer.version.to_der().unwrap(),
        signer.sid.to_der().unwrap(),
        signer.digest_alg.to_der().unwrap(),
        tagged_attrs.to_der().unwrap(),
        signer.signature_algorithm.to_der().unwrap(),
        signer.signature.to_der().unwrap(),
    ]
    .concat()
}

/// Checks one archive token against the state of `signature` it was made over (`signature`
/// without that token's attribute value).
fn check_archive_token(signature: &[u8], token: &[u8], index_der: &[u8]) {
    let index = HashIndex::from_der(index_der).expect("index without hashIndAlgorithm (SHA-256)");
    let listed = |list: &Vec<OctetString>| -> Vec<Vec<u8>> {
        list.iter().map(|o| o.as_bytes().to_vec()).collect()
    };
    let mut certs: Vec<Vec<u8>> = certificates(signature).iter().map(|c| sha256(c)).collect();
    let mut crls: Vec<Vec<u8>> = revocation_values(signature)
        .iter()
        .map(|c| sha256(c))
        .collect();
    certs.sort();
    crls.sort();
    let mut index_certs = listed(&index.certificates_hash_index);
    let mut index_crls = listed(&index.crls_hash_index);
    index_certs.sort();
    index_crls.sort();
    assert_eq!(index_certs, certs, "certificatesHashIndex");
    assert_eq!(index_crls, crls, "crlsHashIndex");
    // Every unsigned attribute value present before this token, as H(attrType || value).
    let signer = only_signer(signature);
    let mut values = Vec::new();
    for attr in signer.unsigned_attrs.clone().unwrap().into_vec() {
        for value in attr.values.into_vec() {
            let value = value.to_der().unwrap();
            if value == token {
                continue;
            }
            values.push(sha256(&[attr.oid.to_der().unwrap(), value].concat()));
        }
    }
    values.sort();
    let mut index_values = listed(&index.unsigned_attr_values_hash_index);
    index_values.sort();
    assert_eq!(index_values, values, "unsignedAttrValuesHashIndex");

    let imprint = sha256(
        &[
            oids::CT_DATA.to_der().unwrap(),
            sha256(DOCUMENT),
            signed_fields(&signer),
            index_der.to_vec(),
        ]
        .concat(),
    );
    let parsed = imza_tsa::ParsedToken::from_der(token).unwrap();
    assert_eq!(
        parsed.hashed_message(),
        imprint.as_slice(),
        "message imprint"
    );
}

#[test]
fn b_lta_archive_time_stamps_cover_what_en_319_122_1_lists() {
    let pki = LongTermPki::new();
    let sign_options = pki.options(Level::B);
    let options = sign_options.augment;
    let b = sign(DOCUMENT, &pki.credentials(), &sign_options).unwrap();
    let lta = augment(&b, Some(DOCUMENT), Level::LTA, &options).unwrap();
    assert_eq!(level_of(&lta).unwrap(), Level::LTA);
    assert_eq!(signed_part(&b), signed_part(&lta));
    let tokens = archive_tokens(&lta);
    assert_eq!(tokens.len(), 1);
    check_archive_token(&lta, &tokens[0].0, &tokens[0].1);

    // The token still verifies for OpenSSL after the index went into its unsigned attributes.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("ats.der");
    std::fs::write(&token_file, &tokens[0].0).unwrap();
    let root = dir.path().join("root.pem");
    write_certificate(&root, &pki.root.der);
    let parsed = imza_tsa::ParsedToken::from_der(&tokens[0].0).unwrap();
    let verified = openssl(&[
        "ts",
        "-verify",
        "-digest",
        &hex::encode(parsed.hashed_message()),
        "-in",
        token_file.to_str().unwrap(),
        "-token_in",
        "-CAfile",
        root.to_str().unwrap(),
    ]);
    assert!(
        text(&verified).contains("Verification: OK"),
        "{}",
        text(&verified)
    );

    // LTA on LTA: a second archive time-stamp, whose index lists the first one's value.
    let lta2 = augment(&lta, Some(DOCUMENT), Level::LTA, &options).unwrap();
    let tokens2 = archive_tokens(&lta2);
    assert_eq!(tokens2.len(), 2);
    let newer = tokens2
        .iter()
        .find(|(token, _)| *token != tokens[0].0)
        .unwrap();
    check_archive_token(&lta2, &newer.0, &newer.1);
    assert_eq!(signed_part(&b), signed_part(&lta2));

    // A detached LTA needs the content.
    let err = augment(&lta, None, Level::LTA, &options).unwrap_err();
    assert!(err.to_string().contains("--content"), "{err}");
}

#[test]
fn an_enveloping_b_lta_covers_the_encapsulated_content() {
    let pki = LongTermPki::new();
    let mut options = pki.options(Level::LTA);
    options.attached = true;
    let lta = sign(DOCUMENT, &pki.credentials(), &options).unwrap();
    let tokens = archive_tokens(&lta);
    assert_eq!(tokens.len(), 1);
    check_archive_token(&lta, &tokens[0].0, &tokens[0].1);
    // Raising it again needs no separate content: it is inside.
    let again = augment(&lta, None, Level::LTA, &options.augment).unwrap();
    assert_eq!(archive_tokens(&again).len(), 2);
}

#[test]
fn b_lt_and_b_lta_signatures_validate_offline_with_the_crl_server_stopped() {
    let pki = LongTermPki::new();
    let options = pki.options(Level::LT);
    let lt = sign(DOCUMENT, &pki.credentials(), &options).unwrap();
    let lta = augment(&lt, Some(DOCUMENT), Level::LTA, &options.augment).unwrap();
    pki.stop_crl_server();
    let fetches = pki.crl_fetches();

    let anchor = imza_validation::Certificate::from_der(pki.root.der.clone()).unwrap();
    let verify_options = imza_signer::VerifyOptions::new(vec![anchor], OffsetDateTime::now_utc());
    for (name, signature) in [("B-LT", &lt), ("B-LTA", &lta)] {
        let report = imza_signer::verify(signature, Some(DOCUMENT), &verify_options);
        assert!(
            report.valid,
            "{name}: {}",
            serde_json::to_string_pretty(&report).unwrap()
        );
        // The same with the document streamed: only its digests are at hand, the archive
        // time-stamp's imprint included.
        let streamed =
            imza_signer::verify_reader(signature, &mut &DOCUMENT[..], &verify_options).unwrap();
        assert!(
            streamed.valid,
            "{name} streamed: {}",
            serde_json::to_string_pretty(&streamed).unwrap()
        );
    }
    assert_eq!(pki.crl_fetches(), fetches, "validation went to the network");
}
