//! Partitioned CRLs through the library (`imza_ca::crl_shards`): every certificate a
//! partitioned CA issues — citizens by the thousand, its OCSP responder, a time-stamping unit,
//! a CA certificate — is in exactly one shard: the shard its CRL distribution point names,
//! whose CRL lists it once it is revoked, and no other shard's CRL does. Checked from the
//! signed DER (what relying parties see), not from the store's bookkeeping.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use der::Decode;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::CrlDistributionPoints;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::Certificate;

use imza_ca::authority::{DEFAULT_BACKDATE, DEFAULT_BASE_URL};
use imza_ca::crl_shards::shard_crl_url;
use imza_ca::services::InitTsa;
use imza_ca::store::{CertificateRecord, CrlRecord, StatusFilter};
use imza_ca::{CaError, InitCa, IssueOptions, IssueRequest, Pki};
use imza_core::clock::SystemClock;
use imza_core::name::parse_dn;
use imza_core::{oids, KeyAlgorithm};

const SHARDS: u32 = 16;
const CITIZENS: usize = 5_000;

/// A CA valid for the profile's default, but a year when issued by "citizens" (which cannot
/// issue past its own end).
fn init(pki: &Pki, name: &str, parent: Option<&str>, crl_shards: u32) -> Result<(), CaError> {
    let subject = format!("CN=Test {name} CA,O=Test State,C=AZ");
    pki.init_ca(InitCa {
        validity_days: (parent == Some("citizens")).then_some(365),
        crl_shards,
        ..InitCa::new(name, &subject, parent)
    })
    .map(|_| ())
}

/// A PKI with a root and a CA "citizens" of [`SHARDS`] shards. On /dev/shm when there is one:
/// thousands of revocations, each a durable commit, are otherwise a disk's fsyncs.
fn sharded_pki() -> (tempfile::TempDir, Pki) {
    let dir = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    };
    let pki = Pki::open_or_create(
        dir.path(),
        &Pki::default_store(dir.path()),
        Arc::new(SystemClock),
    )
    .unwrap();
    init(&pki, "root", None, 0).unwrap();
    init(&pki, "citizens", Some("root"), SHARDS).unwrap();
    (dir, pki)
}

fn citizen(i: usize, public_key: &[u8]) -> IssueRequest {
    IssueRequest {
        subject: parse_dn(&format!(
            "CN=Citizen {i},givenName=C,SN=Citizen,serialNumber=PNOAZ-{i:07},C=AZ"
        ))
        .unwrap(),
        public_key: public_key.to_vec(),
        key_algorithm: KeyAlgorithm::EcP256,
        alt_names: Vec::new(),
        asks_for_ca: false,
    }
}

/// The URIs of a certificate's CRL distribution points (none when it has no such extension).
fn crl_urls(der: &[u8]) -> Vec<String> {
    let cert = Certificate::from_der(der).unwrap();
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oids::EXT_CRL_DISTRIBUTION_POINTS)
        .flat_map(|e| {
            CrlDistributionPoints::from_der(e.extn_value.as_bytes())
                .unwrap()
                .0
        })
        .flat_map(|dp| match dp.distribution_point {
            Some(DistributionPointName::FullName(names)) => names,
            other => panic!("unexpected distribution point {other:?}"),
        })
        .map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => uri.to_string(),
            other => panic!("unexpected name {other:?}"),
        })
        .collect()
}

/// A shard CRL as relying parties read it: its IDP's one URI and the serials it lists.
fn read_shard_crl(crl: &CrlRecord) -> (String, BTreeSet<Vec<u8>>) {
    let list = CertificateList::from_der(&crl.der).unwrap();
    let idps: Vec<_> = list
        .tbs_cert_list
        .crl_extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oids::EXT_ISSUING_DISTRIBUTION_POINT)
        .collect();
    assert_eq!(idps.len(), 1, "shard {:?}", crl.shard);
    assert!(idps[0].critical);
    let idp = IssuingDistributionPoint::from_der(idps[0].extn_value.as_bytes()).unwrap();
    let uri = match idp.distribution_point {
        Some(DistributionPointName::FullName(names)) => match names.as_slice() {
            [GeneralName::UniformResourceIdentifier(uri)] => uri.to_string(),
            other => panic!("IDP names {other:?}"),
        },
        other => panic!("IDP point {other:?}"),
    };
    assert!(!idp.only_contains_user_certs && !idp.only_contains_ca_certs);
    let serials = list
        .tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .map(|r| r.serial_number.as_bytes().to_vec())
        .collect();
    (uri, serials)
}

/// Every shard's latest CRL, by shard: (IDP URI, serials listed, CRL number).
fn published(pki: &Pki) -> BTreeMap<u32, (String, BTreeSet<Vec<u8>>, u64)> {
    (0..SHARDS)
        .map(|shard| {
            let crl = pki
                .store()
                .latest_shard_crl("citizens", shard)
                .unwrap()
                .unwrap_or_else(|| panic!("shard {shard} has no CRL"));
            assert_eq!(crl.shard, Some(shard));
            let (uri, serials) = read_shard_crl(&crl);
            (shard, (uri, serials, crl.number))
        })
        .collect()
}

#[test]
fn every_certificate_of_a_partitioned_ca_is_in_exactly_one_shard() {
    let (_dir, pki) = sharded_pki();
    let authority = pki.authority("citizens", None).unwrap();
    let key = imza_core::key::software::SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let public_key = imza_core::SigningKey::public_key_der(&key).unwrap();
    let options = IssueOptions {
        profile: pki.profiles().get("citizen-auth").unwrap(),
        validity_days: None,
        backdate: DEFAULT_BACKDATE,
    };
    for batch in (0..CITIZENS).collect::<Vec<_>>().chunks(500) {
        let requests: Vec<IssueRequest> = batch.iter().map(|i| citizen(*i, &public_key)).collect();
        authority.issue(&requests, &options).unwrap();
    }
    // Certificates of other kinds from the same CA: its OCSP responder (ocsp-nocheck, no
    // CDP), a time-stamping unit, and a CA certificate (none expected, but covered).
    pki.ensure_ocsp_responder("citizens", None).unwrap();
    pki.init_tsa(InitTsa::new("tsa-1", "citizens")).unwrap();
    init(&pki, "below", Some("citizens"), 0).unwrap();

    let certificates: Vec<CertificateRecord> = pki
        .store()
        .certificates("citizens", StatusFilter::All, usize::MAX)
        .unwrap();
    assert_eq!(certificates.len(), CITIZENS + 3);
    let mut per_shard = vec![0usize; SHARDS as usize];
    for c in &certificates {
        let shard = c
            .crl_shard
            .unwrap_or_else(|| panic!("{} has no shard", c.subject));
        assert!(shard < SHARDS);
        per_shard[shard as usize] += 1;
        let urls = crl_urls(&c.der);
        if c.profile == "ocsp" {
            assert!(urls.is_empty(), "{urls:?}");
        } else {
            assert_eq!(
                urls,
                [shard_crl_url(DEFAULT_BASE_URL, "citizens", shard)],
                "{}",
                c.subject
            );
        }
    }
    // ~315 a shard; a shard with none would mean the spread is broken.
    assert!(per_shard.iter().all(|n| *n > 150), "{per_shard:?}");

    // Every certificate revoked, every shard signed: each serial is listed by exactly one
    // shard's CRL, the one its CDP names.
    for c in &certificates {
        pki.revoke("citizens", &c.serial, CrlReason::Superseded, None)
            .unwrap();
    }
    let run = authority
        .sign_crls(time::Duration::hours(24), &mut |_, _| {}, &mut |_| {})
        .unwrap();
    assert_eq!(
        (run.crls, run.revoked),
        (SHARDS as usize, certificates.len())
    );
    let shards = published(&pki);
    let mut listed_by: BTreeMap<Vec<u8>, Vec<u32>> = BTreeMap::new();
    for (shard, (uri, serials, _)) in &shards {
        assert_eq!(uri, &shard_crl_url(DEFAULT_BASE_URL, "citizens", *shard));
        for serial in serials {
            listed_by.entry(serial.clone()).or_default().push(*shard);
        }
    }
    assert_eq!(listed_by.len(), certificates.len(), "listed serials");
    for c in &certificates {
        let shard = c.crl_shard.unwrap();
        assert_eq!(
            listed_by.get(&c.serial).map(Vec::as_slice),
            Some(&[shard][..]),
            "{}",
            c.subject
        );
        if let [url] = crl_urls(&c.der).as_slice() {
            assert_eq!(url, &shards[&shard].0);
        }
    }

    // The next run numbers every shard above its previous CRL (monotonic per scope), from
    // the CA's one sequence: no number repeats across shards.
    let run2 = authority
        .sign_crls(time::Duration::hours(24), &mut |_, _| {}, &mut |_| {})
        .unwrap();
    assert!(run2.numbers.0 > run.numbers.1, "{run:?} then {run2:?}");
    let again = published(&pki);
    let numbers: BTreeSet<u64> = again.values().map(|(_, _, n)| *n).collect();
    assert_eq!(numbers.len(), SHARDS as usize);
    for shard in 0..SHARDS {
        assert!(again[&shard].2 > shards[&shard].2);
        assert_eq!(again[&shard].1, shards[&shard].1);
    }
}

#[test]
fn a_partitioned_ca_signs_shards_only_and_refuses_certificates_outside_every_shard() {
    let (dir, pki) = sharded_pki();
    let authority = pki.authority("citizens", None).unwrap();
    // No single complete CRL for a partitioned CA.
    let err = authority
        .sign_crl(time::Duration::hours(24), &mut |_, _| {})
        .err()
        .unwrap();
    assert!(err.to_string().contains("16 shards"), "{err}");
    // Nor a root, whose CRL lists the CA certificates it issued.
    let err = init(&pki, "root-2", None, 4).unwrap_err();
    assert!(err.to_string().contains("subordinate"), "{err}");
    let err = init(&pki, "huge", Some("root"), 5_000).unwrap_err();
    assert!(err.to_string().contains("4096"), "{err}");
    // 1 shard is no partition.
    init(&pki, "single", Some("root"), 1).unwrap();
    assert_eq!(pki.ca("single").unwrap().crl_shards, 0);

    // A profile whose certificates name no CRL (and are not ocsp-nocheck) is refused: no CRL
    // of a partitioned CA could cover them.
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    std::fs::write(
        profiles.join("no-cdp.toml"),
        "name = \"no-cdp\"\ndescription = \"no CRL distribution point\"\n\
         key_usage = [\"digitalSignature\"]\nvalidity_days = 30\nmax_validity_days = 30\n\
         include_crl_distribution_point = false\n[subject]\nrequired = [\"CN\"]\n",
    )
    .unwrap();
    let pki = Pki::open(
        dir.path(),
        &Pki::default_store(dir.path()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let authority = pki.authority("citizens", None).unwrap();
    let key = imza_core::key::software::SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let request = IssueRequest {
        subject: parse_dn("CN=Nowhere").unwrap(),
        public_key: imza_core::SigningKey::public_key_der(&key).unwrap(),
        key_algorithm: KeyAlgorithm::EcP256,
        alt_names: Vec::new(),
        asks_for_ca: false,
    };
    let options = IssueOptions {
        profile: pki.profiles().get("no-cdp").unwrap(),
        validity_days: None,
        backdate: DEFAULT_BACKDATE,
    };
    let err = authority
        .issue(std::slice::from_ref(&request), &options)
        .unwrap_err();
    assert!(
        matches!(&err, CaError::ProfileViolation { reason, .. } if reason.contains("distribution point")),
        "{err}"
    );
    // The same profile from an unpartitioned CA is fine.
    let root = pki.authority("single", None).unwrap();
    assert_eq!(root.issue(&[request], &options).unwrap().len(), 1);
}
