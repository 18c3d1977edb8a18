//! The certified keys of the services a CA runs: one delegated OCSP responder per CA
//! (RFC 6960 §4.2.2.2) and named time-stamping units (RFC 3161 §2.3).
//!
//! The CA signs a service's certificate once; the service then signs with its own key, so an
//! OCSP or TSA server never holds a CA key. Each issuance is recorded like any other
//! certificate (store, `ca.issue` audit entry) plus a `services` row and its own audit entry,
//! all in one transaction.
//!
//! Decisions:
//! - A responder's key is a new P-256 software key at every renewal (`keys/ocsp-CA-N.key.pem`,
//!   0600): responder keys sign thousands of times a second and are short-lived, so keeping
//!   them out of the HSM is the usual trade (the CA key that certifies them stays there).
//! - A responder is renewed when less than a third of its certificate's lifetime is left (10
//!   of 30 days with the default `ocsp` profile), so a server checking daily has 10 chances.
//! - The service subject is `C` and `O` of the CA plus a CN naming the service.

use serde_json::json;
use time::{Duration, OffsetDateTime};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::der::asn1::SetOfVec;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use imza_core::cert::{parse_certificate, serial_hex};
use imza_core::key::pkcs11::PinSource;
use imza_core::name::{attribute, format_dn, parse_dn};
use imza_core::{oids, CoreError, KeyAlgorithm, SigningKey};

use crate::audit::AuditEvent;
use crate::authority::{
    issue_event, valid_name, IssueOptions, IssueRequest, Pki, DEFAULT_BACKDATE,
};
use crate::error::CaError;
use crate::keyref::{KeyBackend, KeyReference};
use crate::store::{CertificateRecord, ServiceKind, ServiceRecord, StoreError};

/// Profile of delegated OCSP responder certificates.
pub const OCSP_PROFILE: &str = "ocsp";
/// Profile of time-stamping unit certificates.
pub const TSA_PROFILE: &str = "tsa";
/// The TSA policy when the operator names none: ETSI EN 319 421 best-practices time-stamp
/// policy (itu-t(0) identified-organization(4) etsi(0) time-stamp-policy(2023)
/// policy-identifiers(1) best-practices-ts-policy(1)).
pub const DEFAULT_TSA_POLICY: &str = "0.4.0.2023.1.1";
/// Name of the TSA unit when the operator names none.
pub const DEFAULT_TSA_NAME: &str = "tsa";

/// A service's record together with its certificate.
#[derive(Clone, Debug)]
pub struct ServiceCertificate {
    pub service: ServiceRecord,
    pub certificate: CertificateRecord,
}

impl ServiceCertificate {
    /// Opens the service's key (a PKCS#11 key takes its PIN from the stored variable).
    pub fn open_key(&self, pki: &Pki) -> Result<Box<dyn SigningKey>, CoreError> {
        self.service.key.open(pki.data_dir(), None)
    }

    /// Usable at `now`: within its validity and not revoked.
    pub fn usable_at(&self, now: OffsetDateTime) -> bool {
        let c = &self.certificate;
        c.revocation.is_none() && c.not_before <= now && now <= c.not_after
    }
}

/// What [`Pki::ensure_ocsp_responder`] did.
#[derive(Clone, Debug)]
pub struct EnsuredResponder {
    pub responder: ServiceCertificate,
    /// True when a certificate was issued just now (none was usable, or it was due).
    pub issued: bool,
}

/// What `imza tsa init` asks for.
pub struct InitTsa {
    /// The unit's name (`tsa`): 1–64 characters a-z, 0-9, '-'.
    pub name: String,
    /// The CA that certifies the unit.
    pub ca: String,
    /// Subject DN; default `C` and `O` of the CA with `CN=<O> Time-Stamping Unit <name>`.
    pub subject: Option<String>,
    pub algorithm: KeyAlgorithm,
    pub backend: KeyBackend,
    /// TSA policy OID, dotted; default [`DEFAULT_TSA_POLICY`].
    pub policy: Option<String>,
    pub validity_days: Option<u32>,
    /// PIN for the CA's key if it lives in PKCS#11 (else its stored source is used).
    pub ca_pin: Option<PinSource>,
    /// Give an existing unit a new key and certificate (which then signs) instead of
    /// refusing its name.
    pub rotate: bool,
}

impl InitTsa {
    /// A new unit `name` certified by `ca`, with a software P-256 key and every other default.
    pub fn new(name: impl Into<String>, ca: impl Into<String>) -> InitTsa {
        InitTsa {
            name: name.into(),
            ca: ca.into(),
            subject: None,
            algorithm: KeyAlgorithm::EcP256,
            backend: KeyBackend::Software,
            policy: None,
            validity_days: None,
            ca_pin: None,
            rotate: false,
        }
    }
}

/// A subject of `C` and `O` taken from the CA's subject, then `CN=cn` (cut to the 64
/// characters of ub-common-name).
pub(crate) fn service_subject(ca_subject: &Name, cn: &str) -> Result<Name, CaError> {
    let mut rdns = Vec::new();
    for oid in [oids::AT_COUNTRY, oids::AT_ORGANIZATION] {
        rdns.extend(
            ca_subject
                .0
                .iter()
                .filter(|rdn| rdn.0.iter().any(|a| a.oid == oid))
                .cloned(),
        );
    }
    let cn: String = cn.chars().take(64).collect();
    let atv: AttributeTypeAndValue = attribute("CN", &cn).map_err(CaError::InvalidRequest)?;
    let set = SetOfVec::try_from(vec![atv])
        .map_err(|e| CaError::InvalidRequest(format!("cannot build the subject: {e}")))?;
    rdns.push(RelativeDistinguishedName(set));
    Ok(RdnSequence(rdns))
}

/// A short unique suffix for a service key's file name and PKCS#11 label.
pub(crate) fn key_suffix(now: OffsetDateTime) -> Result<String, CaError> {
    let mut random = [0u8; 4];
    openssl::rand::rand_bytes(&mut random).map_err(CoreError::openssl)?;
    Ok(format!("{}-{}", now.unix_timestamp(), hex::encode(random)))
}

impl Pki {
    /// Services of `kind` named `name`, newest first.
    pub fn services(
        &self,
        kind: ServiceKind,
        name: Option<&str>,
    ) -> Result<Vec<ServiceCertificate>, CaError> {
        let mut all: Vec<ServiceCertificate> = self
            .store()
            .services(kind, name)?
            .into_iter()
            .map(|(service, certificate)| ServiceCertificate {
                service,
                certificate,
            })
            .collect();
        all.reverse();
        Ok(all)
    }

    /// The newest service of `kind` named `name` usable now whose key this CA node holds, if
    /// any (services certified for other nodes: [`Pki::current_service_of`]).
    pub fn current_service(
        &self,
        kind: ServiceKind,
        name: &str,
    ) -> Result<Option<ServiceCertificate>, CaError> {
        self.current_service_of(kind, name, None)
    }

    /// Makes sure CA `ca` has a delegated OCSP responder usable for at least a third of its
    /// lifetime: returns the current one, or issues a new one (new key) with the CA's key.
    pub fn ensure_ocsp_responder(
        &self,
        ca: &str,
        ca_pin: Option<&PinSource>,
    ) -> Result<EnsuredResponder, CaError> {
        let now = self.now();
        if let Some(current) = self.current_service(ServiceKind::Ocsp, ca)? {
            if current.certificate.not_after - now > renewal_margin(&current.certificate) {
                return Ok(EnsuredResponder {
                    responder: current,
                    issued: false,
                });
            }
        }
        let authority = self.authority(ca, ca_pin)?;
        let subject = service_subject(
            &authority.certificate().tbs_certificate.subject,
            &format!("OCSP Responder {ca}"),
        )?;
        let responder = self.issue_service(
            &authority,
            ServiceKind::Ocsp,
            ca,
            subject,
            KeyAlgorithm::EcP256,
            &KeyBackend::Software,
            OCSP_PROFILE,
            None,
            None,
        )?;
        Ok(EnsuredResponder {
            responder,
            issued: true,
        })
    }

    /// Creates a time-stamping unit: its key, its certificate (profile `tsa`) from CA `ca`, and
    /// its policy, recorded and audited. Refuses a name already in use unless `rotate`, which
    /// gives the unit a new key and certificate; the newest usable one signs.
    pub fn init_tsa(&self, request: InitTsa) -> Result<ServiceCertificate, CaError> {
        if !valid_name(&request.name) {
            return Err(CaError::InvalidRequest(format!(
                "invalid TSA name {:?}: use 1 to 64 characters a-z, 0-9 and '-'",
                request.name
            )));
        }
        let exists = !self
            .store()
            .services(ServiceKind::Tsa, Some(&request.name))?
            .is_empty();
        if exists && !request.rotate {
            return Err(CaError::InvalidRequest(format!(
                "a TSA named {:?} already exists (see imza tsa list); choose another --name, \
                 or --rotate to give it a new key and certificate",
                request.name
            )));
        }
        if !exists && request.rotate {
            return Err(CaError::InvalidRequest(format!(
                "there is no TSA named {:?} to rotate",
                request.name
            )));
        }
        let policy = request
            .policy
            .clone()
            .unwrap_or_else(|| DEFAULT_TSA_POLICY.to_string());
        const_oid::ObjectIdentifier::new(&policy).map_err(|e| {
            CaError::InvalidRequest(format!("--policy {policy:?} is not an OID: {e}"))
        })?;
        let authority = self.authority(&request.ca, request.ca_pin.as_ref())?;
        let ca_subject = &authority.certificate().tbs_certificate.subject;
        let subject = match &request.subject {
            Some(dn) => parse_dn(dn)?,
            None => service_subject(ca_subject, &tsa_common_name(ca_subject, &request.name))?,
        };
        self.issue_service(
            &authority,
            ServiceKind::Tsa,
            &request.name,
            subject,
            request.algorithm,
            &request.backend,
            TSA_PROFILE,
            Some(policy),
            request.validity_days,
        )
    }

    /// Generates the service key, has `authority` certify it under `profile`, and records the
    /// certificate, the service row and both audit entries in one transaction. On any failure
    /// a software key file just written is removed again.
    #[allow(clippy::too_many_arguments)]
    fn issue_service(
        &self,
        authority: &crate::CertificateAuthority<'_>,
        kind: ServiceKind,
        name: &str,
        subject: Name,
        algorithm: KeyAlgorithm,
        backend: &KeyBackend,
        profile: &str,
        policy: Option<String>,
        validity_days: Option<u32>,
    ) -> Result<ServiceCertificate, CaError> {
        let profile = self.profiles().get(profile)?;
        let options = IssueOptions {
            profile,
            validity_days,
            backdate: DEFAULT_BACKDATE,
        };
        let now = self.now();
        // Everything that can be checked without a key is checked before one is created.
        authority.check_can_issue(&options, now)?;
        profile.check_subject(&subject)?;
        profile.check_key(algorithm)?;
        let stem = format!("{}-{}-{}", kind.as_str(), name, key_suffix(now)?);
        let (key_ref, key) = KeyReference::generate_named(
            backend,
            &stem,
            &format!("imza-{stem}"),
            algorithm,
            self.data_dir(),
        )?;
        let result = (|| {
            let request = IssueRequest {
                subject,
                public_key: key.public_key_der()?,
                key_algorithm: algorithm,
                alt_names: Vec::new(),
                asks_for_ca: false,
            };
            let certificate = authority.sign_one(&request, &options, now)?;
            parse_certificate(&certificate.der)?;
            let service = ServiceRecord {
                kind,
                name: name.to_string(),
                ca: authority.name().to_string(),
                serial: certificate.serial.clone(),
                key: key_ref.clone(),
                policy: policy.clone(),
                created_at: now,
                node: None,
            };
            let issued = issue_event(&certificate);
            let registered = AuditEvent {
                at: now,
                action: format!("{}.certify", kind.as_str()),
                ca: authority.name().to_string(),
                details: json!({
                    "name": name,
                    "serial": serial_hex(&certificate.serial),
                    "subject": format_dn(&request.subject),
                    "key": key_ref.describe(),
                    "algorithm": algorithm.name(),
                    "policy": policy,
                }),
            };
            self.store()
                .insert_service(&service, &certificate, &[issued, registered])
                .map_err(|e| match e {
                    StoreError::Conflict(m) => CaError::InvalidRequest(format!(
                        "{m} was recorded concurrently; run the command again"
                    )),
                    other => other.into(),
                })?;
            Ok(ServiceCertificate {
                service,
                certificate,
            })
        })();
        if result.is_err() {
            key_ref.discard(self.data_dir());
        }
        result
    }
}

/// The common name of time-stamping unit `name` of the CA named `ca_subject`: `<O of the CA>
/// Time-Stamping Unit <name>`.
pub(crate) fn tsa_common_name(ca_subject: &Name, name: &str) -> String {
    let organisation = imza_core::name::attribute_values(ca_subject, oids::AT_ORGANIZATION)
        .into_iter()
        .next()
        .unwrap_or_else(|| "imza".to_string());
    format!("{organisation} Time-Stamping Unit {name}")
}

/// How long before its notAfter a service certificate is due for renewal.
pub fn renewal_margin(certificate: &CertificateRecord) -> Duration {
    (certificate.not_after - certificate.not_before) / 3
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    use imza_core::clock::Clock;
    use time::macros::datetime;

    use super::*;
    use crate::authority::InitCa;

    /// A clock the test moves forward.
    struct TestClock(Mutex<OffsetDateTime>);

    impl Clock for TestClock {
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().unwrap()
        }
    }

    fn pki() -> (tempfile::TempDir, Arc<TestClock>, Pki) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(Mutex::new(datetime!(2026-11-21 10:00 UTC))));
        let pki = Pki::open_or_create(dir.path(), &Pki::default_store(dir.path()), clock.clone())
            .unwrap();
        for (name, subject, parent) in [
            ("root", "CN=Test Root,O=Test State,C=AZ", None),
            (
                "citizens",
                "CN=Test Citizens CA,O=Test State,C=AZ",
                Some("root"),
            ),
        ] {
            pki.init_ca(InitCa::new(name, subject, parent)).unwrap();
        }
        (dir, clock, pki)
    }

    fn audit_actions(pki: &Pki) -> Vec<String> {
        pki.store()
            .audit_entries(0, 1000)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    #[test]
    fn a_pki_without_ca_keys_refuses_every_ca_key_use_and_changes_nothing() {
        let (_dir, _clock, pki) = pki();
        let before = audit_actions(&pki);
        let public = pki.without_ca_keys();
        assert!(!public.opens_ca_keys());
        for ca in ["root", "citizens"] {
            assert!(matches!(
                public.authority(ca, None),
                Err(CaError::CaKeysNotHere { .. })
            ));
        }
        // Issuing a responder needs the CA's key: refused, nothing stored.
        assert!(matches!(
            public.ensure_ocsp_responder("citizens", None),
            Err(CaError::CaKeysNotHere { .. })
        ));
        assert_eq!(audit_actions(&public), before);
    }

    #[test]
    fn a_responder_is_issued_once_then_reused_then_renewed_when_due() {
        let (dir, clock, pki) = pki();
        let first = pki.ensure_ocsp_responder("citizens", None).unwrap();
        assert!(first.issued);
        let cert = parse_certificate(&first.responder.certificate.der).unwrap();
        assert_eq!(
            format_dn(&cert.tbs_certificate.subject),
            "CN=OCSP Responder citizens,O=Test State,C=AZ"
        );
        assert_eq!(first.responder.certificate.profile, "ocsp");
        let KeyReference::File { path } = &first.responder.service.key else {
            panic!("a responder key is a software key");
        };
        let mode = std::fs::metadata(dir.path().join(path))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let key = first.responder.open_key(&pki).unwrap();
        let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info).unwrap();
        assert_eq!(key.public_key_der().unwrap(), spki);
        assert_eq!(
            audit_actions(&pki)[2..],
            ["ca.issue".to_string(), "ocsp.certify".to_string()]
        );

        let again = pki.ensure_ocsp_responder("citizens", None).unwrap();
        assert!(!again.issued);
        assert_eq!(
            again.responder.certificate.serial,
            first.responder.certificate.serial
        );

        // 30-day certificate: due for renewal when fewer than 10 days are left.
        *clock.0.lock().unwrap() += Duration::days(21);
        let renewed = pki.ensure_ocsp_responder("citizens", None).unwrap();
        assert!(renewed.issued);
        assert_ne!(
            renewed.responder.certificate.serial,
            first.responder.certificate.serial
        );
        assert_ne!(renewed.responder.service.key, first.responder.service.key);
        assert_eq!(
            pki.services(ServiceKind::Ocsp, Some("citizens"))
                .unwrap()
                .len(),
            2
        );
        pki.verify_audit().unwrap();
    }

    #[test]
    fn a_revoked_responder_is_replaced() {
        let (_dir, _clock, pki) = pki();
        let first = pki.ensure_ocsp_responder("root", None).unwrap().responder;
        pki.revoke(
            "root",
            &first.certificate.serial,
            x509_cert::ext::pkix::CrlReason::KeyCompromise,
            None,
        )
        .unwrap();
        let next = pki.ensure_ocsp_responder("root", None).unwrap();
        assert!(next.issued);
        assert_ne!(next.responder.certificate.serial, first.certificate.serial);
    }

    #[test]
    fn tsa_init_records_policy_and_refuses_a_taken_name_without_leaving_a_key() {
        let (dir, _clock, pki) = pki();
        let tsa = pki.init_tsa(InitTsa::new("tsa", "citizens")).unwrap();
        assert_eq!(tsa.service.policy.as_deref(), Some(DEFAULT_TSA_POLICY));
        assert_eq!(tsa.certificate.profile, "tsa");
        assert_eq!(
            tsa.certificate.subject,
            "CN=Test State Time-Stamping Unit tsa,O=Test State,C=AZ"
        );
        let keys_before = std::fs::read_dir(dir.path().join("keys")).unwrap().count();
        let audit_before = pki.store().audit_head().unwrap();
        for (name, policy) in [
            ("tsa", None),
            ("tsa2", Some("not-an-oid")),
            ("Bad Name", None),
        ] {
            let err = pki
                .init_tsa(InitTsa {
                    policy: policy.map(Into::into),
                    ..InitTsa::new(name, "citizens")
                })
                .unwrap_err();
            // Refused as the request's fault: not the store's, a key's or the disk's.
            assert!(
                !matches!(
                    err,
                    CaError::Store(_)
                        | CaError::Key(_)
                        | CaError::Io { .. }
                        | CaError::AuditBroken(_)
                ),
                "{err}"
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("keys")).unwrap().count(),
            keys_before
        );
        assert_eq!(pki.store().audit_head().unwrap(), audit_before);
        let current = pki
            .current_service(ServiceKind::Tsa, "tsa")
            .unwrap()
            .unwrap();
        assert_eq!(current.certificate.serial, tsa.certificate.serial);
    }

    #[test]
    fn store_status_answers_issued_revoked_and_unknown() {
        let (_dir, _clock, pki) = pki();
        let responder = pki.ensure_ocsp_responder("root", None).unwrap().responder;
        let serial = responder.certificate.serial.clone();
        let store = pki.store();
        assert_eq!(
            store.status("root", &serial).unwrap(),
            crate::store::CertificateStatus::Issued
        );
        assert_eq!(
            store.status("root", &[1, 2, 3]).unwrap(),
            crate::store::CertificateStatus::Unknown
        );
        assert_eq!(
            store.status("citizens", &serial).unwrap(),
            crate::store::CertificateStatus::Unknown
        );
        let head = store.audit_head().unwrap();
        pki.revoke(
            "root",
            &serial,
            x509_cert::ext::pkix::CrlReason::Superseded,
            None,
        )
        .unwrap();
        assert_eq!(store.audit_head().unwrap(), head + 1);
        assert!(matches!(
            store.status("root", &serial).unwrap(),
            crate::store::CertificateStatus::Revoked {
                reason: x509_cert::ext::pkix::CrlReason::Superseded,
                ..
            }
        ));
    }
}
