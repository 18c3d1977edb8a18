//! The [`CaStore`] contract, run against both engines: the embedded SQLite file and a real
//! PostgreSQL server (a cluster of this test binary's own, see `imza_testdata::postgres`).
//! Each case is written once in `contract` and instantiated per engine by `engines!`; the
//! concurrency cases race real threads (SQLite: one file; PostgreSQL: one pool each, as
//! separate nodes would).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use imza_ca::audit::{AuditEvent, ChainVerifier};
use imza_ca::keyref::KeyReference;
use imza_ca::store::{
    CaRecord, CaStore, CertificateRecord, CrlRecord, Revocation, ServiceKind, ServiceRecord,
    ServiceRequest, StatusFilter, StoreError,
};
use imza_core::clock::rfc3339;
use imza_core::crl::RevokedEntry;
use time::macros::datetime;
use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;

mod contract {
    use super::*;

    const T0: OffsetDateTime = datetime!(2025-03-01 12:00:00 UTC);

    pub(super) fn event(action: &str, ca: &str, details: serde_json::Value) -> AuditEvent {
        AuditEvent {
            at: T0,
            action: action.into(),
            ca: ca.into(),
            details,
        }
    }

    pub(super) fn ca_record(name: &str, parent: Option<&str>) -> CaRecord {
        CaRecord {
            name: name.into(),
            parent: parent.map(Into::into),
            certificate: format!("certificate of {name}").into_bytes(),
            key: KeyReference::File {
                path: PathBuf::from(format!("keys/{name}.key.pem")),
            },
            base_url: format!("https://pki.example/{name}"),
            created_at: T0,
            crl_shards: 0,
        }
    }

    pub(super) fn cert(ca: &str, serial: &[u8]) -> CertificateRecord {
        CertificateRecord {
            ca: ca.into(),
            serial: serial.to_vec(),
            subject: format!("CN=holder {}", hex::encode(serial)),
            profile: "citizen-auth".into(),
            not_before: T0,
            not_after: T0 + time::Duration::days(365),
            issued_at: T0,
            der: vec![0x30, 0x03, 0x02, 0x01, serial.last().copied().unwrap_or(0)],
            revocation: None,
            crl_shard: None,
        }
    }

    pub(super) fn issue_event(c: &CertificateRecord) -> AuditEvent {
        event(
            "ca.issue",
            &c.ca,
            serde_json::json!({ "serial": hex::encode_upper(&c.serial) }),
        )
    }

    pub(super) fn create_root(store: &dyn CaStore, name: &str) {
        store
            .create_ca(
                &ca_record(name, None),
                None,
                &event("ca.init", name, serde_json::json!({})),
            )
            .unwrap();
    }

    pub(super) fn issue(
        store: &dyn CaStore,
        certs: &[CertificateRecord],
    ) -> Result<(), StoreError> {
        let audits: Vec<AuditEvent> = certs.iter().map(issue_event).collect();
        store.insert_certificates(certs, &audits)
    }

    /// Rows of a table, read through the trait (the same on every engine).
    fn count(store: &dyn CaStore, table: &str) -> usize {
        match table {
            "cas" => store.cas().unwrap().len(),
            "certificates" => store
                .cas()
                .unwrap()
                .iter()
                .map(|ca| {
                    store
                        .certificates(&ca.name, StatusFilter::All, usize::MAX)
                        .unwrap()
                        .len()
                })
                .sum(),
            "audit" => store.audit_entries(0, usize::MAX).unwrap().len(),
            other => panic!("no count for {other}"),
        }
    }

    fn revocation(reason: CrlReason, invalidity: Option<OffsetDateTime>) -> Revocation {
        Revocation {
            revoked_at: T0 + time::Duration::days(10),
            reason,
            invalidity_date: invalidity,
        }
    }

    pub fn created_cas_read_back_parents_first(store: &dyn CaStore) {
        create_root(store, "root");
        let sub = ca_record("citizens", Some("root"));
        let sub_cert = cert("root", &[0x01, 0xAB]);
        store
            .create_ca(
                &sub,
                Some(&sub_cert),
                &event("ca.init", "citizens", serde_json::json!({})),
            )
            .unwrap();

        assert_eq!(store.ca("root").unwrap(), Some(ca_record("root", None)));
        assert_eq!(store.ca("citizens").unwrap(), Some(sub.clone()));
        assert_eq!(store.ca("nobody").unwrap(), None);
        let names: Vec<String> = store.cas().unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["root", "citizens"]);
        // The subordinate's certificate is recorded as issued by the parent.
        assert_eq!(
            store.certificate("root", &[0x01, 0xAB]).unwrap(),
            Some(sub_cert)
        );
        assert_eq!(store.certificate("citizens", &[0x01, 0xAB]).unwrap(), None);
    }

    pub fn duplicate_ca_is_a_conflict_and_leaves_the_audit_log_unchanged(store: &dyn CaStore) {
        create_root(store, "root");
        let before = store.audit_entries(0, 100).unwrap();

        let err = store
            .create_ca(
                &ca_record("root", None),
                None,
                &event("ca.init", "root", serde_json::json!({})),
            )
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m) if m == "CA root already exists"),
            "{err}"
        );
        assert_eq!(store.audit_entries(0, 100).unwrap(), before);
        assert_eq!(count(store, "cas"), 1);
    }

    pub fn subordinate_of_an_unknown_parent_is_not_found_and_writes_nothing(store: &dyn CaStore) {
        let err = store
            .create_ca(
                &ca_record("citizens", Some("root")),
                Some(&cert("root", &[1])),
                &event("ca.init", "citizens", serde_json::json!({})),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        assert_eq!(count(store, "cas"), 0);
        assert_eq!(count(store, "certificates"), 0);
        assert_eq!(count(store, "audit"), 0);
    }

    pub fn inserted_certificates_read_back(store: &dyn CaStore) {
        create_root(store, "root");
        let certs = [cert("root", &[1]), cert("root", &[0x7F, 0x00, 0x01])];
        issue(store, &certs).unwrap();
        assert_eq!(
            store.certificate("root", &[1]).unwrap().as_ref(),
            Some(&certs[0])
        );
        assert_eq!(
            store
                .certificate("root", &[0x7F, 0x00, 0x01])
                .unwrap()
                .as_ref(),
            Some(&certs[1])
        );
        assert_eq!(store.certificate("root", &[2]).unwrap(), None);
    }

    pub fn duplicate_serial_in_a_batch_is_a_conflict_and_writes_nothing_of_the_batch(
        store: &dyn CaStore,
    ) {
        create_root(store, "root");
        issue(store, &[cert("root", &[1])]).unwrap();
        let (certs_before, audit_before) = (count(store, "certificates"), count(store, "audit"));

        let batch = [
            cert("root", &[2]),
            cert("root", &[3]),
            cert("root", &[0x0A, 0x1B]),
            cert("root", &[0x0A, 0x1B]),
        ];
        let err = issue(store, &batch).unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m)
                if m == "certificate serial 0A1B already issued by CA root"),
            "{err}"
        );
        assert_eq!(count(store, "certificates"), certs_before);
        assert_eq!(count(store, "audit"), audit_before);
        assert_eq!(store.certificate("root", &[2]).unwrap(), None);
    }

    pub fn serial_issued_in_an_earlier_batch_is_a_conflict(store: &dyn CaStore) {
        create_root(store, "root");
        issue(store, &[cert("root", &[5])]).unwrap();
        let err = issue(store, &[cert("root", &[6]), cert("root", &[5])]).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert_eq!(count(store, "certificates"), 1);
    }

    pub fn same_serial_under_two_cas_is_allowed(store: &dyn CaStore) {
        create_root(store, "a");
        create_root(store, "b");
        issue(store, &[cert("a", &[9]), cert("b", &[9])]).unwrap();
        assert_eq!(count(store, "certificates"), 2);
    }

    pub fn certificate_for_an_unknown_ca_is_not_found(store: &dyn CaStore) {
        let err = issue(store, &[cert("ghost", &[1])]).unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    }

    pub fn revoke_marks_the_certificate_revoked(store: &dyn CaStore) {
        create_root(store, "root");
        issue(store, &[cert("root", &[1])]).unwrap();
        let r = revocation(CrlReason::KeyCompromise, Some(T0 + time::Duration::days(9)));
        store
            .revoke(
                "root",
                &[1],
                &r,
                &event("ca.revoke", "root", serde_json::json!({})),
            )
            .unwrap();
        assert_eq!(
            store.certificate("root", &[1]).unwrap().unwrap().revocation,
            Some(r)
        );
    }

    pub fn revoking_an_unknown_serial_is_not_found(store: &dyn CaStore) {
        create_root(store, "root");
        let err = store
            .revoke(
                "root",
                &[0xDE, 0xAD],
                &revocation(CrlReason::Superseded, None),
                &event("ca.revoke", "root", serde_json::json!({})),
            )
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::NotFound(m) if m.contains("DEAD") && m.contains("root")),
            "{err}"
        );
        assert_eq!(count(store, "audit"), 1);
    }

    pub fn revoking_twice_is_already_revoked_and_keeps_the_first_revocation(store: &dyn CaStore) {
        create_root(store, "root");
        issue(store, &[cert("root", &[1])]).unwrap();
        let first = revocation(CrlReason::KeyCompromise, None);
        let audit = event("ca.revoke", "root", serde_json::json!({}));
        store.revoke("root", &[1], &first, &audit).unwrap();
        let audit_before = count(store, "audit");

        let err = store
            .revoke(
                "root",
                &[1],
                &revocation(CrlReason::Superseded, None),
                &audit,
            )
            .unwrap_err();
        match err {
            StoreError::AlreadyRevoked { serial, revoked_at } => {
                assert_eq!(serial, "01");
                assert_eq!(revoked_at, rfc3339(first.revoked_at));
            }
            other => panic!("expected AlreadyRevoked, got {other}"),
        }
        assert_eq!(count(store, "audit"), audit_before);
        assert_eq!(
            store.certificate("root", &[1]).unwrap().unwrap().revocation,
            Some(first)
        );
    }

    pub fn revoked_lists_reason_and_invalidity_date_of_that_ca_only(store: &dyn CaStore) {
        create_root(store, "root");
        create_root(store, "other");
        issue(
            store,
            &[
                cert("root", &[1]),
                cert("root", &[2]),
                cert("root", &[3]),
                cert("other", &[1]),
            ],
        )
        .unwrap();
        let invalid_since = T0 + time::Duration::days(8);
        let audit = event("ca.revoke", "root", serde_json::json!({}));
        let r1 = revocation(CrlReason::KeyCompromise, Some(invalid_since));
        let r3 = revocation(CrlReason::CessationOfOperation, None);
        store.revoke("root", &[1], &r1, &audit).unwrap();
        store.revoke("root", &[3], &r3, &audit).unwrap();
        store.revoke("other", &[1], &r3, &audit).unwrap();

        let mut entries = store.revoked("root").unwrap();
        entries.sort_by(|a, b| a.serial.cmp(&b.serial));
        assert_eq!(
            entries,
            [
                RevokedEntry {
                    serial: vec![1],
                    revoked_at: r1.revoked_at,
                    reason: Some(CrlReason::KeyCompromise),
                    invalidity_date: Some(invalid_since),
                },
                RevokedEntry {
                    serial: vec![3],
                    revoked_at: r3.revoked_at,
                    reason: Some(CrlReason::CessationOfOperation),
                    invalidity_date: None,
                },
            ]
        );
        assert!(store.revoked("nobody").unwrap().is_empty());
    }

    pub fn certificates_filter_by_status_in_issuance_order(store: &dyn CaStore) {
        create_root(store, "root");
        let mut expired = cert("root", &[0x01]);
        expired.not_after = T0 + time::Duration::days(1);
        // Serials out of sort order, so issuance order is not serial order.
        let certs = [
            cert("root", &[0x30]),
            expired,
            cert("root", &[0x20]),
            cert("root", &[0x10]),
        ];
        issue(store, &certs).unwrap();
        store
            .revoke(
                "root",
                &[0x20],
                &revocation(CrlReason::Superseded, None),
                &event("ca.revoke", "root", serde_json::json!({})),
            )
            .unwrap();
        let now = T0 + time::Duration::days(30);
        let serials = |filter, limit| -> Vec<u8> {
            store
                .certificates("root", filter, limit)
                .unwrap()
                .into_iter()
                .map(|c| c.serial[0])
                .collect()
        };
        assert_eq!(serials(StatusFilter::All, 100), [0x30, 0x01, 0x20, 0x10]);
        assert_eq!(serials(StatusFilter::All, 2), [0x30, 0x01]);
        assert_eq!(serials(StatusFilter::Valid { now }, 100), [0x30, 0x10]);
        assert_eq!(serials(StatusFilter::Revoked, 100), [0x20]);
        assert_eq!(serials(StatusFilter::Expired { now }, 100), [0x01]);
        assert!(serials(StatusFilter::All, 0).is_empty());
    }

    pub fn crl_numbers_are_tracked_and_a_duplicate_is_a_conflict(store: &dyn CaStore) {
        create_root(store, "root");
        assert_eq!(store.last_crl_number("root").unwrap(), None);
        assert_eq!(store.latest_crl("root").unwrap(), None);
        let crl = |number: u64| CrlRecord {
            ca: "root".into(),
            shard: None,
            number,
            this_update: T0,
            next_update: T0 + time::Duration::days(7),
            der: vec![0x30, number as u8],
        };
        let audit = event("ca.crl", "root", serde_json::json!({}));
        store.insert_crl(&crl(1), &audit).unwrap();
        store.insert_crl(&crl(2), &audit).unwrap();
        assert_eq!(store.last_crl_number("root").unwrap(), Some(2));
        assert_eq!(store.latest_crl("root").unwrap(), Some(crl(2)));

        let audit_before = count(store, "audit");
        let err = store.insert_crl(&crl(2), &audit).unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m) if m == "CRL number 2 of CA root exists"),
            "{err}"
        );
        assert_eq!(count(store, "audit"), audit_before);
    }

    /// A CA whose CRL is cut into `shards` shards.
    fn create_sharded(store: &dyn CaStore, name: &str, shards: u32) {
        store
            .create_ca(
                &CaRecord {
                    crl_shards: shards,
                    ..ca_record(name, None)
                },
                None,
                &event("ca.init", name, serde_json::json!({})),
            )
            .unwrap();
    }

    fn in_shard(ca: &str, serial: &[u8], shard: u32) -> CertificateRecord {
        CertificateRecord {
            crl_shard: Some(shard),
            ..cert(ca, serial)
        }
    }

    fn shard_crl(ca: &str, shard: Option<u32>, number: u64, hours: i64) -> CrlRecord {
        CrlRecord {
            ca: ca.into(),
            shard,
            number,
            this_update: T0,
            next_update: T0 + time::Duration::hours(hours),
            der: vec![0x30, number as u8],
        }
    }

    pub fn shard_counts_and_certificate_shards_read_back(store: &dyn CaStore) {
        create_sharded(store, "citizens", 64);
        create_root(store, "root");
        assert_eq!(store.ca("citizens").unwrap().unwrap().crl_shards, 64);
        assert_eq!(store.ca("root").unwrap().unwrap().crl_shards, 0);
        let certs = [
            in_shard("citizens", &[1], 63),
            in_shard("citizens", &[2], 0),
        ];
        issue(store, &certs).unwrap();
        issue(store, &[cert("root", &[1])]).unwrap();
        assert_eq!(
            store.certificate("citizens", &[1]).unwrap().unwrap(),
            certs[0]
        );
        assert_eq!(
            store
                .certificates("citizens", StatusFilter::All, 10)
                .unwrap(),
            certs
        );
        assert_eq!(
            store.certificate("root", &[1]).unwrap().unwrap().crl_shard,
            None
        );
    }

    pub fn revoked_in_shard_lists_that_shards_revoked_certificates_only(store: &dyn CaStore) {
        create_sharded(store, "citizens", 4);
        create_sharded(store, "other", 4);
        let certs: Vec<CertificateRecord> = (0u8..12)
            .map(|i| in_shard("citizens", &[i], u32::from(i % 4)))
            .chain([in_shard("other", &[1], 1)])
            .collect();
        issue(store, &certs).unwrap();
        let audit = event("ca.revoke", "citizens", serde_json::json!({}));
        let r = revocation(CrlReason::KeyCompromise, None);
        // Shard 1 holds serials 1, 5, 9: revoke 1 and 9, and one of shard 2.
        for serial in [1u8, 9, 2] {
            store.revoke("citizens", &[serial], &r, &audit).unwrap();
        }
        store.revoke("other", &[1], &r, &audit).unwrap();
        let serials = |shard| -> Vec<Vec<u8>> {
            let mut s: Vec<Vec<u8>> = store
                .revoked_in_shard("citizens", shard)
                .unwrap()
                .into_iter()
                .map(|e| e.serial)
                .collect();
            s.sort();
            s
        };
        assert_eq!(serials(1), [vec![1], vec![9]]);
        assert_eq!(serials(2), [vec![2]]);
        assert!(serials(0).is_empty() && serials(3).is_empty() && serials(4).is_empty());
        let entry = &store.revoked_in_shard("citizens", 2).unwrap()[0];
        assert_eq!(
            (entry.revoked_at, entry.reason),
            (r.revoked_at, Some(r.reason))
        );
        // The shards together are the CA's revoked list.
        assert_eq!(store.revoked("citizens").unwrap().len(), 3);
        assert!(store.revoked_in_shard("nobody", 1).unwrap().is_empty());
    }

    pub fn shard_crls_are_kept_per_shard_and_apart_from_a_ca_crl(store: &dyn CaStore) {
        create_sharded(store, "citizens", 4);
        let audit = |n: u64| event("ca.crl", "citizens", serde_json::json!({ "number": n }));
        let first: Vec<CrlRecord> = (0..4)
            .map(|k| shard_crl("citizens", Some(k), 1 + u64::from(k), 24))
            .collect();
        let audits: Vec<AuditEvent> = first.iter().map(|c| audit(c.number)).collect();
        store.insert_crls(&first, &audits).unwrap();
        // A second run, which got as far as shards 0 and 1.
        let second: Vec<CrlRecord> = (0..2)
            .map(|k| shard_crl("citizens", Some(k), 5 + u64::from(k), 1))
            .collect();
        store.insert_crls(&second, &[audit(5), audit(6)]).unwrap();
        assert_eq!(store.last_crl_number("citizens").unwrap(), Some(6));
        assert_eq!(
            store.latest_shard_crl("citizens", 0).unwrap(),
            Some(second[0].clone())
        );
        assert_eq!(
            store.latest_shard_crl("citizens", 3).unwrap(),
            Some(first[3].clone())
        );
        assert_eq!(store.latest_shard_crl("citizens", 4).unwrap(), None);
        // No shard's CRL is the CA's one CRL.
        assert_eq!(store.latest_crl("citizens").unwrap(), None);
        let hours = |v: Option<(OffsetDateTime, OffsetDateTime)>| {
            v.map(|(this, next)| (next - this).whole_hours())
        };
        let validity: Vec<Option<i64>> = store
            .shard_crl_validity("citizens", 5)
            .unwrap()
            .into_iter()
            .map(hours)
            .collect();
        assert_eq!(validity, [Some(1), Some(1), Some(24), Some(24), None]);
        assert!(store.shard_crl_validity("citizens", 0).unwrap().is_empty());
        assert!(matches!(
            store.shard_crl_validity("citizens", u32::MAX),
            Err(StoreError::Invalid(_))
        ));
        let entries = store.audit_entries(0, usize::MAX).unwrap();
        assert_eq!(entries.iter().filter(|e| e.action == "ca.crl").count(), 6);

        // The CA's one CRL (shard NULL) and the shards' CRLs do not mask each other.
        let whole = shard_crl("citizens", None, 7, 24);
        store.insert_crl(&whole, &audit(7)).unwrap();
        assert_eq!(store.latest_crl("citizens").unwrap(), Some(whole));
        assert_eq!(
            store.latest_shard_crl("citizens", 1).unwrap(),
            Some(second[1].clone())
        );
    }

    pub fn shard_crls_with_a_taken_number_are_a_conflict_and_none_is_stored(store: &dyn CaStore) {
        create_sharded(store, "citizens", 4);
        let audit = event("ca.crl", "citizens", serde_json::json!({}));
        store
            .insert_crls(
                &[shard_crl("citizens", Some(0), 1, 24)],
                std::slice::from_ref(&audit),
            )
            .unwrap();
        let audit_before = count(store, "audit");
        let run = [
            shard_crl("citizens", Some(1), 2, 24),
            shard_crl("citizens", Some(2), 1, 24),
        ];
        let err = store
            .insert_crls(&run, &[audit.clone(), audit])
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m) if m == "CRL number 1 of CA citizens exists"),
            "{err}"
        );
        assert_eq!(store.latest_shard_crl("citizens", 1).unwrap(), None);
        assert_eq!(store.last_crl_number("citizens").unwrap(), Some(1));
        assert_eq!(count(store, "audit"), audit_before);
    }

    pub fn audit_chain_over_several_operations_verifies_and_pages(store: &dyn CaStore) {
        create_root(store, "root");
        store
            .create_ca(
                &ca_record("citizens", Some("root")),
                Some(&cert("root", &[0xC0])),
                &event("ca.init", "citizens", serde_json::json!({})),
            )
            .unwrap();
        let batch: Vec<_> = (1..=5u8).map(|i| cert("citizens", &[i])).collect();
        issue(store, &batch).unwrap();
        store
            .revoke(
                "citizens",
                &[3],
                &revocation(CrlReason::KeyCompromise, None),
                &event(
                    "ca.revoke",
                    "citizens",
                    serde_json::json!({ "serial": "03" }),
                ),
            )
            .unwrap();
        let crl = CrlRecord {
            ca: "citizens".into(),
            shard: None,
            number: 1,
            this_update: T0,
            next_update: T0 + time::Duration::days(1),
            der: vec![0x30],
        };
        store
            .insert_crl(
                &crl,
                &event("ca.crl", "citizens", serde_json::json!({ "number": 1 })),
            )
            .unwrap();

        // Page through three at a time, as `imza audit verify` does.
        let mut verifier = ChainVerifier::default();
        let mut after = 0;
        let mut actions = Vec::new();
        loop {
            let page = store.audit_entries(after, 3).unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            for entry in &page {
                verifier.check(entry).unwrap();
                actions.push(entry.action.clone());
            }
        }
        assert_eq!(verifier.count(), 9);
        assert_eq!(
            actions,
            [
                "ca.init",
                "ca.init",
                "ca.issue",
                "ca.issue",
                "ca.issue",
                "ca.issue",
                "ca.issue",
                "ca.revoke",
                "ca.crl"
            ]
        );
    }

    pub(super) fn request(node: &str) -> ServiceRequest {
        ServiceRequest {
            id: 0,
            kind: ServiceKind::Ocsp,
            name: "root".into(),
            ca: "root".into(),
            node: node.into(),
            csr: vec![0x30, 0x00],
            key: KeyReference::File {
                path: PathBuf::from(format!("keys/ocsp-{node}.key.pem")),
            },
            requested_at: T0,
        }
    }

    pub(super) fn responder_for(
        request: &ServiceRequest,
        serial: u8,
    ) -> (ServiceRecord, CertificateRecord) {
        let certificate = cert("root", &[0x0C, serial]);
        let service = ServiceRecord {
            kind: request.kind,
            name: request.name.clone(),
            ca: request.ca.clone(),
            serial: certificate.serial.clone(),
            key: request.key.clone(),
            policy: None,
            created_at: T0,
            node: Some(request.node.clone()),
        };
        (service, certificate)
    }

    pub fn service_requests_are_open_once_per_node_and_closed_once(store: &dyn CaStore) {
        create_root(store, "root");
        let audit = || event("ocsp.request", "root", serde_json::json!({}));
        let first = store
            .insert_service_request(&request("pub1"), &audit())
            .unwrap();
        let other = store
            .insert_service_request(&request("pub2"), &audit())
            .unwrap();
        assert!(other > first);
        let entries = count(store, "audit");
        let err = store
            .insert_service_request(&request("pub1"), &audit())
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m) if m.contains("pub1")),
            "{err}"
        );
        assert_eq!(count(store, "audit"), entries);
        let open = store.open_service_requests(10).unwrap();
        assert_eq!(
            open.iter()
                .map(|r| (r.id, r.node.as_str()))
                .collect::<Vec<_>>(),
            [(first, "pub1"), (other, "pub2")]
        );
        assert_eq!(
            open[0],
            ServiceRequest {
                id: first,
                ..request("pub1")
            }
        );

        let (service, certificate) = responder_for(&open[0], 1);
        store
            .certify_service_request(first, &service, &certificate, &[audit()])
            .unwrap();
        let served = store.services(ServiceKind::Ocsp, Some("root")).unwrap();
        assert_eq!(served.len(), 1);
        assert_eq!(served[0].0.node.as_deref(), Some("pub1"));
        assert_eq!(served[0].1, certificate);
        // Closed: a second certification writes nothing; a new request may be filed.
        let (again, again_cert) = responder_for(&open[0], 2);
        let err = store
            .certify_service_request(first, &again, &again_cert, &[audit()])
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert!(store.certificate("root", &[0x0C, 2]).unwrap().is_none());
        store
            .refuse_service_request(other, "bad CSR", &audit())
            .unwrap();
        assert!(matches!(
            store.refuse_service_request(other, "again", &audit()),
            Err(StoreError::Conflict(_))
        ));
        assert!(store.open_service_requests(10).unwrap().is_empty());
        store
            .insert_service_request(&request("pub1"), &audit())
            .unwrap();
    }

    pub fn citizens_certificates_expiring_in_a_window_are_paged_in_order_without_revoked_ones(
        store: &dyn CaStore,
    ) {
        create_root(store, "root");
        let holder = |serial: u8, subject: &str, days: i64| CertificateRecord {
            subject: subject.into(),
            not_after: T0 + time::Duration::days(days),
            ..cert("root", &[serial])
        };
        let gunay = "C=AZ,serialNumber=PNOAZ-5ZK7T2Q,CN=Günay Əliyeva";
        let soon = holder(1, gunay, 5);
        let later = holder(2, gunay, 50);
        let same_day = holder(3, "C=AZ,serialNumber=PNOAZ-3HQ8M1X,CN=Rəşad", 50);
        let beyond = holder(4, gunay, 61);
        let expired = holder(5, gunay, -1);
        let revoked = holder(6, gunay, 20);
        let no_citizen = holder(7, "CN=e-gov.az", 20);
        let certs = [
            soon.clone(),
            later.clone(),
            same_day.clone(),
            beyond,
            expired,
            revoked,
            no_citizen,
        ];
        let events: Vec<_> = certs.iter().map(issue_event).collect();
        store.insert_certificates(&certs, &events).unwrap();
        let audit = event("ca.revoke", "root", serde_json::json!({}));
        store
            .revoke(
                "root",
                &[6],
                &revocation(CrlReason::Superseded, None),
                &audit,
            )
            .unwrap();
        let (from, until) = (T0, T0 + time::Duration::days(60));
        assert_eq!(
            store.certificates_expiring(from, until, None, 10).unwrap(),
            [soon.clone(), later.clone(), same_day.clone()]
        );
        // Page by page, each page going on after the last row of the one before.
        let first = store.certificates_expiring(from, until, None, 2).unwrap();
        assert_eq!(first, [soon, later.clone()]);
        let cursor = imza_ca::store::ExpiryCursor {
            not_after: later.not_after,
            ca: &later.ca,
            serial: &later.serial,
        };
        assert_eq!(
            store
                .certificates_expiring(from, until, Some(cursor), 2)
                .unwrap(),
            std::slice::from_ref(&same_day)
        );
        assert_eq!(
            imza_ca::store::subject_serial_number_of(&same_day).as_deref(),
            Some("PNOAZ-3HQ8M1X")
        );
    }

    pub fn a_citizens_certificates_are_found_by_the_subjects_serial_number(store: &dyn CaStore) {
        create_root(store, "root");
        let holder = |serial: u8, subject: &str, days: i64| CertificateRecord {
            subject: subject.into(),
            not_after: T0 + time::Duration::days(days),
            ..cert("root", &[serial])
        };
        let mine_late = holder(1, "C=AZ,serialNumber=PNOAZ-5ZK7T2Q,CN=Günay Əliyeva", 300);
        let mine_soon = holder(2, "C=AZ,serialNumber=PNOAZ-5ZK7T2Q,CN=Günay Əliyeva", 10);
        let other = holder(3, "C=AZ,serialNumber=PNOAZ-1AB2C3D,CN=Rəşad", 10);
        let lookalike = holder(4, "C=AZ,CN=serialNumber=PNOAZ-5ZK7T2Q", 10);
        let certs = [mine_late.clone(), mine_soon.clone(), other, lookalike];
        let events: Vec<_> = certs.iter().map(issue_event).collect();
        store.insert_certificates(&certs, &events).unwrap();
        assert_eq!(
            store
                .certificates_of_subject_serial_number("PNOAZ-5ZK7T2Q", 10)
                .unwrap(),
            [mine_soon, mine_late]
        );
        assert!(store
            .certificates_of_subject_serial_number("PNOAZ-5ZK7T2", 10)
            .unwrap()
            .is_empty());
        assert!(store
            .certificates_of_subject_serial_number("%", 10)
            .unwrap()
            .is_empty());
    }
}

/// Instantiates each contract case for both engines.
macro_rules! engines {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $case() {
                    let (_dir, store) = super::sqlite_store();
                    super::contract::$case(&*store);
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $case() {
                    let store = super::postgres_store();
                    super::contract::$case(&*store);
                }
            )*
        }
    };
}

engines!(
    created_cas_read_back_parents_first,
    duplicate_ca_is_a_conflict_and_leaves_the_audit_log_unchanged,
    subordinate_of_an_unknown_parent_is_not_found_and_writes_nothing,
    inserted_certificates_read_back,
    duplicate_serial_in_a_batch_is_a_conflict_and_writes_nothing_of_the_batch,
    serial_issued_in_an_earlier_batch_is_a_conflict,
    same_serial_under_two_cas_is_allowed,
    certificate_for_an_unknown_ca_is_not_found,
    revoke_marks_the_certificate_revoked,
    revoking_an_unknown_serial_is_not_found,
    revoking_twice_is_already_revoked_and_keeps_the_first_revocation,
    revoked_lists_reason_and_invalidity_date_of_that_ca_only,
    certificates_filter_by_status_in_issuance_order,
    crl_numbers_are_tracked_and_a_duplicate_is_a_conflict,
    audit_chain_over_several_operations_verifies_and_pages,
    service_requests_are_open_once_per_node_and_closed_once,
    shard_counts_and_certificate_shards_read_back,
    revoked_in_shard_lists_that_shards_revoked_certificates_only,
    shard_crls_are_kept_per_shard_and_apart_from_a_ca_crl,
    shard_crls_with_a_taken_number_are_a_conflict_and_none_is_stored,
    a_citizens_certificates_are_found_by_the_subjects_serial_number,
    citizens_certificates_expiring_in_a_window_are_paged_in_order_without_revoked_ones,
);

fn sqlite_store() -> (tempfile::TempDir, Box<dyn CaStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = imza_store::StoreUrl::sqlite(&dir.path().join("ca.db"));
    let store = imza_ca::store::open(&url, imza_store::Create::IfMissing).unwrap();
    (dir, store)
}

/// A store on a fresh database of the shared test cluster.
fn postgres_store() -> Box<dyn CaStore> {
    let url: imza_store::StoreUrl = imza_testdata::postgres::PgCluster::shared()
        .database()
        .parse()
        .unwrap();
    imza_ca::store::open(&url, imza_store::Create::IfMissing).unwrap()
}

/// The cases that race several handles on one store (as several processes or nodes would).
mod racing {
    use super::contract::{ca_record, cert, create_root, event, issue_event};
    use super::*;

    /// Four issuers, each on a handle of its own, insert 50 batches of 20 at once: every
    /// certificate is stored once with its audit entry, and the chain is one line.
    pub fn concurrent_issuers_keep_one_audit_line(open: &(dyn Fn() -> Box<dyn CaStore> + Sync)) {
        let store = open();
        create_root(&*store, "root");
        std::thread::scope(|s| {
            for issuer in 0u8..4 {
                s.spawn(move || {
                    let handle = open();
                    for batch in 0u8..50 {
                        let certs: Vec<_> = (0u8..20)
                            .map(|i| cert("root", &[issuer + 1, batch, i]))
                            .collect();
                        let audits: Vec<_> = certs.iter().map(issue_event).collect();
                        handle.insert_certificates(&certs, &audits).unwrap();
                    }
                });
            }
        });
        let entries = store.audit_entries(0, usize::MAX).unwrap();
        let mut verifier = ChainVerifier::default();
        for entry in &entries {
            verifier.check(entry).unwrap();
        }
        assert_eq!(verifier.count(), 1 + 4 * 50 * 20);
        let mut audited: Vec<String> = entries
            .iter()
            .filter(|e| e.action == "ca.issue")
            .map(|e| {
                let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
                details["serial"].as_str().unwrap().to_string()
            })
            .collect();
        audited.sort();
        let mut stored: Vec<String> = store
            .certificates("root", StatusFilter::All, usize::MAX)
            .unwrap()
            .iter()
            .map(|c| hex::encode_upper(&c.serial))
            .collect();
        stored.sort();
        assert_eq!(stored.len(), 4000);
        assert_eq!(audited, stored);
    }

    /// Eight handles revoke one serial at once: exactly one succeeds and writes the one audit
    /// entry; the others get AlreadyRevoked and write nothing.
    pub fn concurrent_revocations_of_one_serial_exactly_one_wins(
        open: &(dyn Fn() -> Box<dyn CaStore> + Sync),
    ) {
        let store = open();
        create_root(&*store, "root");
        store
            .insert_certificates(&[cert("root", &[0x42])], &[])
            .unwrap();
        let barrier = std::sync::Barrier::new(8);
        let outcomes: Vec<Result<(), StoreError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        let handle = open();
                        let revocation = Revocation {
                            revoked_at: datetime!(2025-03-02 12:00:00 UTC)
                                + time::Duration::seconds(i64::from(i)),
                            reason: CrlReason::KeyCompromise,
                            invalidity_date: None,
                        };
                        barrier.wait();
                        handle.revoke(
                            "root",
                            &[0x42],
                            &revocation,
                            &event("ca.revoke", "root", serde_json::json!({ "by": i })),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(won, 1, "{outcomes:?}");
        for o in outcomes.iter().filter(|o| o.is_err()) {
            assert!(matches!(o, Err(StoreError::AlreadyRevoked { .. })), "{o:?}");
        }
        let revokes = store
            .audit_entries(0, usize::MAX)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "ca.revoke")
            .count();
        assert_eq!(revokes, 1);
    }

    /// Four handles create one CA name at once: one wins, the others get Conflict.
    pub fn concurrent_creation_of_one_ca_has_one_winner(
        open: &(dyn Fn() -> Box<dyn CaStore> + Sync),
    ) {
        let store = open();
        let outcomes: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(move || {
                        let handle = open();
                        match handle.create_ca(
                            &ca_record("root", None),
                            None,
                            &event("ca.init", "root", serde_json::json!({})),
                        ) {
                            Ok(()) => true,
                            Err(StoreError::Conflict(_)) => false,
                            Err(e) => panic!("{e}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.iter().filter(|w| **w).count(), 1);
        assert_eq!(store.cas().unwrap().len(), 1);
        assert_eq!(store.audit_entries(0, 100).unwrap().len(), 1);
    }

    /// Four CA nodes certify one request at once: exactly one records a responder.
    pub fn concurrent_certifications_of_one_request_have_one_winner(
        open: &(dyn Fn() -> Box<dyn CaStore> + Sync),
    ) {
        use super::contract::{request, responder_for};
        let store = open();
        create_root(&*store, "root");
        let id = store
            .insert_service_request(
                &request("pub1"),
                &event("ocsp.request", "root", serde_json::json!({})),
            )
            .unwrap();
        let stored = ServiceRequest {
            id,
            ..request("pub1")
        };
        let barrier = std::sync::Barrier::new(4);
        let wins: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4u8)
                .map(|i| {
                    let (barrier, stored) = (&barrier, &stored);
                    s.spawn(move || {
                        let handle = open();
                        let (service, certificate) = responder_for(stored, i);
                        barrier.wait();
                        match handle.certify_service_request(
                            id,
                            &service,
                            &certificate,
                            &[event("ocsp.certify", "root", serde_json::json!({}))],
                        ) {
                            Ok(()) => true,
                            Err(StoreError::Conflict(_)) => false,
                            Err(e) => panic!("{e}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(wins.iter().filter(|w| **w).count(), 1);
        assert_eq!(store.services(ServiceKind::Ocsp, None).unwrap().len(), 1);
        let certified = store
            .audit_entries(0, 100)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "ocsp.certify")
            .count();
        assert_eq!(certified, 1);
    }
}

/// Instantiates each racing case for both engines, with an opener of new handles.
macro_rules! racing_engines {
    ($($case:ident),* $(,)?) => {
        mod racing_on_sqlite {
            $(
                #[test]
                fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = imza_store::StoreUrl::sqlite(&dir.path().join("ca.db"));
                    let open = || imza_ca::store::open(&url, imza_store::Create::IfMissing).unwrap();
                    super::racing::$case(&open);
                }
            )*
        }
        mod racing_on_postgres {
            $(
                #[test]
                fn $case() {
                    let url: imza_store::StoreUrl =
                        imza_testdata::postgres::PgCluster::shared().database().parse().unwrap();
                    let open = || imza_ca::store::open(&url, imza_store::Create::IfMissing).unwrap();
                    super::racing::$case(&open);
                }
            )*
        }
    };
}

racing_engines!(
    concurrent_issuers_keep_one_audit_line,
    concurrent_revocations_of_one_serial_exactly_one_wins,
    concurrent_creation_of_one_ca_has_one_winner,
    concurrent_certifications_of_one_request_have_one_winner,
);

/// What only the PostgreSQL engine has: logins, an unreachable server, a schema in a
/// database shared with other versions.
mod postgres_engine {
    use imza_store::{Create, StoreUrl};
    use imza_testdata::postgres::PgCluster;

    fn url(text: &str) -> StoreUrl {
        text.parse().unwrap()
    }

    #[test]
    fn a_wrong_password_is_unavailable_and_the_password_is_in_no_message() {
        let cluster = PgCluster::shared();
        let db = cluster.create_database();
        let text = format!(
            "postgres://imza:Wrong-Pass-1234@127.0.0.1:{}/{db}",
            cluster.port()
        );
        let err = imza_ca::store::open(&url(&text), Create::IfMissing).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            matches!(err, imza_ca::store::StoreError::Unavailable(_)),
            "{shown}"
        );
        assert!(shown.contains("password authentication failed"), "{shown}");
        assert!(!shown.contains("Wrong-Pass-1234"), "{shown}");
    }

    #[test]
    fn an_unreachable_server_is_unavailable_at_once() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = std::time::Instant::now();
        let err = imza_ca::store::open(
            &url(&format!("postgres://imza:secret@127.0.0.1:{port}/pki")),
            Create::No,
        )
        .unwrap_err();
        assert!(
            matches!(err, imza_ca::store::StoreError::Unavailable(_)),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn an_empty_database_is_not_a_store_and_opening_it_creates_nothing() {
        let cluster = PgCluster::shared();
        let db = cluster.create_database();
        let err = imza_ca::store::open(&url(&cluster.url(&db)), Create::No).unwrap_err();
        assert!(
            matches!(&err, imza_ca::store::StoreError::NotFound(m) if m.contains(&db)),
            "{err}"
        );
        let tables = cluster.psql(
            &db,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        );
        assert_eq!(tables, "0");
    }

    /// A database made before version 6 finds its certificates by the subject's serialNumber
    /// after the migration (the column filled from the stored subject text by a regex).
    #[test]
    fn a_version_5_database_finds_a_citizens_certificates_after_the_migration() {
        let cluster = PgCluster::shared();
        let db = cluster.create_database();
        let store = imza_ca::store::open(&url(&cluster.url(&db)), Create::IfMissing).unwrap();
        super::contract::create_root(&*store, "root");
        drop(store);
        // Back to version 5's shape, with certificates issued then.
        cluster.psql(
            &db,
            "DROP INDEX certificates_of_subject_serial_number; \
             ALTER TABLE certificates DROP COLUMN subject_serial_number; \
             DELETE FROM schema_migrations WHERE version = 6; \
             INSERT INTO certificates (ca, serial, subject, profile, not_before, not_after, \
                 issued_at, der) VALUES \
             ('root', '01', 'C=AZ,serialNumber=PNOAZ-5ZK7T2Q,CN=Günay', 'p', 0, 1, 0, '\\x30'), \
             ('root', '02', 'CN=nobody', 'p', 0, 1, 0, '\\x30')",
        );
        let store = imza_ca::store::open(&url(&cluster.url(&db)), Create::No).unwrap();
        let found = store
            .certificates_of_subject_serial_number("PNOAZ-5ZK7T2Q", 10)
            .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].serial, [1]);
    }

    #[test]
    fn a_schema_newer_than_the_binary_is_refused() {
        let cluster = PgCluster::shared();
        let db = cluster.create_database();
        drop(imza_ca::store::open(&url(&cluster.url(&db)), Create::IfMissing).unwrap());
        cluster.psql(&db, "INSERT INTO schema_migrations VALUES (999, 0)");
        let err = imza_ca::store::open(&url(&cluster.url(&db)), Create::No).unwrap_err();
        assert!(
            matches!(
                err,
                imza_ca::store::StoreError::NewerSchema { found: 999, .. }
            ),
            "{err}"
        );
    }
}
