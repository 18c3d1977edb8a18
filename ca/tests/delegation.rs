//! A public node's delegated OCSP responder and its key for a time-stamping unit, certified by
//! the CA side through the shared store: the node makes its key (it holds no CA key), the CA
//! node certifies the CSR, the node then answers with a key only it holds. Bad requests are
//! refused, never certified.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use imza_ca::delegation::RequestOutcome;
use imza_ca::keyref::KeyBackend;
use imza_ca::store::{ServiceKind, ServiceRequest};
use imza_ca::{CaError, InitCa, InitTsa, Pki};
use imza_core::clock::SystemClock;

/// The CA node (root → citizens, software keys) and a public node on the same store, in a
/// data directory of its own.
fn nodes() -> (tempfile::TempDir, Pki, Pki) {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let store = Pki::default_store(&ca_dir);
    let ca = Pki::open_or_create(&ca_dir, &store, Arc::new(SystemClock)).unwrap();
    for (name, subject, parent) in [
        ("root", "CN=Test Root,O=Test State,C=AZ", None),
        (
            "citizens",
            "CN=Test Citizens CA,O=Test State,C=AZ",
            Some("root"),
        ),
    ] {
        ca.init_ca(InitCa::new(name, subject, parent)).unwrap();
    }
    let public = Pki::open(&dir.path().join("pub1"), &store, Arc::new(SystemClock))
        .unwrap()
        .without_ca_keys();
    (dir, ca, public)
}

#[test]
fn a_public_node_gets_a_responder_the_ca_side_certifies_and_only_it_holds_the_key() {
    let (_dir, ca, public) = nodes();
    let request = public
        .request_ocsp_responder("citizens", "pub1", &KeyBackend::Software)
        .unwrap();
    assert_eq!(
        public
            .open_service_request(ServiceKind::Ocsp, "citizens", "pub1")
            .unwrap(),
        Some(request.clone())
    );
    // A second request while one is open is refused, and its new key removed.
    let keys = || {
        std::fs::read_dir(public.data_dir().join("keys"))
            .unwrap()
            .count()
    };
    assert_eq!(keys(), 1);
    assert!(matches!(
        public.request_ocsp_responder("citizens", "pub1", &KeyBackend::Software),
        Err(CaError::InvalidRequest(_))
    ));
    assert_eq!(keys(), 1);
    // The public node cannot certify it: it holds no CA key.
    let outcomes = public.certify_service_requests(None).unwrap();
    assert!(matches!(outcomes[0].1, RequestOutcome::Deferred { .. }));
    assert!(public
        .current_service_of(ServiceKind::Ocsp, "citizens", Some("pub1"))
        .unwrap()
        .is_none());

    let outcomes = ca.certify_service_requests(None).unwrap();
    let [(done, RequestOutcome::Certified { serial })] = outcomes.as_slice() else {
        panic!("{outcomes:?}");
    };
    assert_eq!(done.id, request.id);
    let responder = public
        .current_service_of(ServiceKind::Ocsp, "citizens", Some("pub1"))
        .unwrap()
        .expect("certified");
    assert_eq!(&responder.certificate.serial, serial);
    assert_eq!(responder.service.node.as_deref(), Some("pub1"));
    // The key opens on the public node, and matches the certificate.
    let key = responder.open_key(&public).unwrap();
    let cert = imza_core::cert::parse_certificate(&responder.certificate.der).unwrap();
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info).unwrap();
    assert_eq!(key.public_key_der().unwrap(), spki);
    // Not on the CA node: that responder's key is not there.
    assert!(responder.open_key(&ca).is_err());
    assert!(ca
        .current_service(ServiceKind::Ocsp, "citizens")
        .unwrap()
        .is_none());
    let subject = imza_core::name::format_dn(&cert.tbs_certificate.subject);
    assert!(
        subject.contains("OCSP Responder citizens pub1"),
        "{subject}"
    );
    // Closed: nothing open, nothing more to certify; the audit chain holds it all.
    assert!(ca.certify_service_requests(None).unwrap().is_empty());
    let actions: Vec<String> = ca
        .store()
        .audit_entries(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.ends_with(&[
        "ocsp.request".to_string(),
        "ca.issue".to_string(),
        "ocsp.certify".to_string()
    ]));
    assert!(ca.verify_audit().is_ok());
}

#[test]
fn a_request_whose_csr_does_not_verify_is_refused_not_certified() {
    let (_dir, ca, public) = nodes();
    let mut request = public
        .request_ocsp_responder("citizens", "pub1", &KeyBackend::Software)
        .unwrap();
    // Another request, from another node, with a CSR whose signature is broken.
    let last = request.csr.len() - 1;
    request.csr[last] ^= 0x01;
    let forged = ServiceRequest {
        node: "pub2".into(),
        ..request
    };
    let audit = imza_ca::audit::AuditEvent {
        at: ca.now(),
        action: "ocsp.request".into(),
        ca: "citizens".into(),
        details: serde_json::json!({}),
    };
    ca.store().insert_service_request(&forged, &audit).unwrap();
    let outcomes = ca.certify_service_requests(None).unwrap();
    assert_eq!(outcomes.len(), 2);
    assert!(matches!(outcomes[0].1, RequestOutcome::Certified { .. }));
    assert!(
        matches!(&outcomes[1].1, RequestOutcome::Refused { reason } if reason.contains("signature")),
        "{:?}",
        outcomes[1].1
    );
    assert!(ca
        .current_service_of(ServiceKind::Ocsp, "citizens", Some("pub2"))
        .unwrap()
        .is_none());
    assert!(ca.store().open_service_requests(10).unwrap().is_empty());
}

#[test]
fn node_names_are_checked() {
    let (_dir, _ca, public) = nodes();
    assert!(matches!(
        public.request_ocsp_responder("citizens", "Pub 1/..", &KeyBackend::Software),
        Err(CaError::InvalidRequest(_))
    ));
    assert!(matches!(
        public.request_ocsp_responder("nobody", "pub1", &KeyBackend::Software),
        Err(CaError::UnknownCa { .. })
    ));
}

#[test]
fn a_public_node_gets_its_own_key_for_a_tsa_unit_with_the_units_ca_and_policy() {
    let (_dir, ca, public) = nodes();
    // No unit on the CA side: nothing to hold a key for, and no key is made.
    assert!(matches!(
        public.request_tsa_unit("tsa", "pub1", &KeyBackend::Software),
        Err(CaError::InvalidRequest(m)) if m.contains("imza tsa init")
    ));
    assert!(
        !public.data_dir().join("keys").exists()
            || std::fs::read_dir(public.data_dir().join("keys"))
                .unwrap()
                .count()
                == 0
    );

    let mut unit = InitTsa::new("tsa", "citizens");
    unit.policy = Some("1.2.3.4.5".into());
    let unit = ca.init_tsa(unit).unwrap();
    let request = public
        .request_tsa_unit("tsa", "pub1", &KeyBackend::Software)
        .unwrap();
    assert_eq!(
        (request.kind, request.ca.as_str()),
        (ServiceKind::Tsa, "citizens")
    );
    let outcomes = ca.certify_service_requests(None).unwrap();
    assert!(
        matches!(outcomes.as_slice(), [(_, RequestOutcome::Certified { .. })]),
        "{outcomes:?}"
    );
    let mine = public
        .current_service_of(ServiceKind::Tsa, "tsa", Some("pub1"))
        .unwrap()
        .expect("certified");
    assert_eq!(mine.service.policy.as_deref(), Some("1.2.3.4.5"));
    assert_eq!(mine.service.ca, "citizens");
    assert_ne!(mine.certificate.serial, unit.certificate.serial);
    assert!(
        mine.certificate
            .subject
            .contains("Time-Stamping Unit tsa pub1"),
        "{}",
        mine.certificate.subject
    );
    assert_eq!(mine.certificate.profile, "tsa");
    let key = mine.open_key(&public).unwrap();
    let cert = imza_core::cert::parse_certificate(&mine.certificate.der).unwrap();
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info).unwrap();
    assert_eq!(key.public_key_der().unwrap(), spki);
    // The CA node's own unit is still the one it signs with.
    let own = ca
        .current_service(ServiceKind::Tsa, "tsa")
        .unwrap()
        .unwrap();
    assert_eq!(own.certificate.serial, unit.certificate.serial);

    // A request naming a unit the CA side does not have is refused.
    let mut stray = public
        .request_tsa_unit("tsa", "pub2", &KeyBackend::Software)
        .unwrap();
    ca.certify_service_requests(None).unwrap();
    stray.name = "other".into();
    stray.node = "pub3".into();
    let audit = imza_ca::audit::AuditEvent {
        at: ca.now(),
        action: "tsa.request".into(),
        ca: "citizens".into(),
        details: serde_json::json!({}),
    };
    ca.store().insert_service_request(&stray, &audit).unwrap();
    let outcomes = ca.certify_service_requests(None).unwrap();
    assert!(
        matches!(&outcomes[0].1, RequestOutcome::Refused { reason } if reason.contains("no usable TSA other")),
        "{outcomes:?}"
    );
    assert!(ca.verify_audit().is_ok());
}
