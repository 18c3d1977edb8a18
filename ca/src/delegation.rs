//! Service keys held by other nodes: how a public node, which never holds a CA key, gets its
//! own delegated OCSP responder certified by the CA side (RFC 6960 §4.2.2.2), through the
//! shared store.
//!
//! 1. The node makes the key where it runs (a software key in its own data directory, mode
//!    0600, or on its token) and files a request: a PKCS#10 CSR signed with that key (proof
//!    of possession) and where it keeps the key ([`Pki::request_ocsp_responder`]).
//! 2. The CA side (`imza serve --roles ca`, or `imza ocsp certify`) checks each open request's
//!    CSR and certifies it with the `ocsp` profile, recording the certificate and a `services`
//!    row naming the node, and closing the request, in one transaction
//!    ([`Pki::certify_service_requests`]); a request it cannot accept is refused with the
//!    reason. Of several CA nodes at once, one certifies each request.
//! 3. The node sees the certificate through the store and answers with its key. Renewal is
//!    the same path with a new key, filed when a third of the certificate's life is left.
//!
//! The CSR's subject is not taken: the CA names the service (`C`, `O` of the CA, `CN=OCSP
//! Responder CA NODE`), as for its own responders.

use serde_json::json;

use imza_core::cert::serial_hex;
use imza_core::key::pkcs11::PinSource;
use imza_core::name::{format_dn, parse_dn};
use imza_core::KeyAlgorithm;

use crate::audit::AuditEvent;
use crate::authority::{
    issue_event, valid_name, IssueOptions, IssueRequest, Pki, DEFAULT_BACKDATE,
};
use crate::error::CaError;
use crate::keyref::{KeyBackend, KeyReference};
use crate::services::{key_suffix, service_subject, ServiceCertificate, OCSP_PROFILE};
use crate::store::{ServiceKind, ServiceRecord, ServiceRequest, StoreError};

/// How many open requests one round of certification takes.
const CERTIFY_BATCH: usize = 256;

/// What the CA side did with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Certified: the new certificate's serial.
    Certified { serial: Vec<u8> },
    /// Refused, with the reason recorded.
    Refused { reason: String },
    /// Left open: this process cannot use the CA's key now (a PIN it lacks); the next round
    /// or another CA node tries again.
    Deferred { reason: String },
}

impl Pki {
    /// On a node: makes a new responder key for CA `ca` (software, in this data directory) and
    /// files a request the CA side certifies. `Conflict` (as `InvalidRequest`) if this node
    /// has a request open for that CA; then the new key is removed.
    pub fn request_ocsp_responder(
        &self,
        ca: &str,
        node: &str,
        backend: &KeyBackend,
    ) -> Result<ServiceRequest, CaError> {
        if !valid_name(node) {
            return Err(CaError::InvalidRequest(format!(
                "invalid node name {node:?}: use 1 to 64 characters a-z, 0-9 and '-'"
            )));
        }
        self.ca(ca)?;
        let now = self.now();
        let stem = format!("ocsp-{ca}-{node}-{}", key_suffix(now)?);
        let (key_ref, key) = KeyReference::generate_named(
            backend,
            &stem,
            &format!("imza-{stem}"),
            KeyAlgorithm::EcP256,
            self.data_dir(),
        )?;
        let result = (|| {
            let subject = parse_dn(&format!("CN=OCSP Responder {ca} {node}"))?;
            let csr = imza_core::csr::build_csr(&subject, key.as_ref())?;
            let mut request = ServiceRequest {
                id: 0,
                kind: ServiceKind::Ocsp,
                name: ca.to_string(),
                ca: ca.to_string(),
                node: node.to_string(),
                csr,
                key: key_ref.clone(),
                requested_at: now,
            };
            let audit = AuditEvent {
                at: now,
                action: "ocsp.request".into(),
                ca: ca.to_string(),
                details: json!({ "node": node, "key": key_ref.describe() }),
            };
            request.id = self
                .store()
                .insert_service_request(&request, &audit)
                .map_err(|e| match e {
                    StoreError::Conflict(m) => CaError::InvalidRequest(m),
                    other => other.into(),
                })?;
            Ok(request)
        })();
        if result.is_err() {
            key_ref.discard(self.data_dir());
        }
        result
    }

    /// This node's open request for a responder of `ca`, if any.
    pub fn open_responder_request(
        &self,
        ca: &str,
        node: &str,
    ) -> Result<Option<ServiceRequest>, CaError> {
        Ok(self
            .store()
            .open_service_requests(usize::MAX)?
            .into_iter()
            .find(|r| r.kind == ServiceKind::Ocsp && r.name == ca && r.node == node))
    }

    /// On the CA side: certifies (or refuses) the open requests, oldest first, with the keys
    /// of their CAs (`pin` for a PKCS#11 CA key; without it the stored PIN variable). A
    /// request whose CA key cannot be used here stays open.
    pub fn certify_service_requests(
        &self,
        pin: Option<&PinSource>,
    ) -> Result<Vec<(ServiceRequest, RequestOutcome)>, CaError> {
        let mut done = Vec::new();
        for request in self.store().open_service_requests(CERTIFY_BATCH)? {
            let outcome = self.certify_one(&request, pin)?;
            done.push((request, outcome));
        }
        Ok(done)
    }

    fn certify_one(
        &self,
        request: &ServiceRequest,
        pin: Option<&PinSource>,
    ) -> Result<RequestOutcome, CaError> {
        let now = self.now();
        let refuse = |reason: String| -> Result<RequestOutcome, CaError> {
            let audit = AuditEvent {
                at: now,
                action: format!("{}.refuse", request.kind.as_str()),
                ca: request.ca.clone(),
                details: json!({ "request": request.id, "node": request.node, "reason": reason }),
            };
            match self
                .store()
                .refuse_service_request(request.id, &reason, &audit)
            {
                // Another CA node closed it meanwhile.
                Ok(()) | Err(StoreError::Conflict(_)) => Ok(RequestOutcome::Refused { reason }),
                Err(e) => Err(e.into()),
            }
        };
        if request.kind != ServiceKind::Ocsp || request.name != request.ca {
            return refuse(format!(
                "only OCSP responders of the requesting CA are certified this way (asked: {} {})",
                request.kind.as_str(),
                request.name
            ));
        }
        let authority = match self.authority(&request.ca, pin) {
            Ok(authority) => authority,
            Err(e @ CaError::UnknownCa { .. }) => return refuse(e.to_string()),
            Err(e) => {
                return Ok(RequestOutcome::Deferred {
                    reason: e.to_string(),
                })
            }
        };
        let csr = match crate::csr::parse_csr(&request.csr) {
            Ok(csr) if !csr.asks_for_ca => csr,
            Ok(_) => return refuse("the CSR asks for a CA certificate".into()),
            Err(e) => return refuse(e.to_string()),
        };
        let profile = self.profiles().get(OCSP_PROFILE)?;
        let options = IssueOptions {
            profile,
            validity_days: None,
            backdate: DEFAULT_BACKDATE,
        };
        if let Err(e) = authority.check_can_issue(&options, now) {
            return Ok(RequestOutcome::Deferred {
                reason: e.to_string(),
            });
        }
        let issue = IssueRequest {
            subject: service_subject(
                &authority.certificate().tbs_certificate.subject,
                &format!("OCSP Responder {} {}", request.ca, request.node),
            )?,
            public_key: csr.public_key,
            key_algorithm: csr.key_algorithm,
            alt_names: Vec::new(),
            asks_for_ca: false,
        };
        if let Err(e) = authority.check_request(&issue, &options) {
            return refuse(e.to_string());
        }
        let certificate = authority.sign_one(&issue, &options, now)?;
        let service = ServiceRecord {
            kind: ServiceKind::Ocsp,
            name: request.ca.clone(),
            ca: request.ca.clone(),
            serial: certificate.serial.clone(),
            key: request.key.clone(),
            policy: None,
            created_at: now,
            node: Some(request.node.clone()),
        };
        let certified = AuditEvent {
            at: now,
            action: "ocsp.certify".into(),
            ca: request.ca.clone(),
            details: json!({
                "request": request.id,
                "node": request.node,
                "serial": serial_hex(&certificate.serial),
                "subject": format_dn(&issue.subject),
                "key": request.key.describe(),
            }),
        };
        match self.store().certify_service_request(
            request.id,
            &service,
            &certificate,
            &[issue_event(&certificate), certified],
        ) {
            Ok(()) => Ok(RequestOutcome::Certified {
                serial: certificate.serial,
            }),
            // Another CA node certified it first: nothing of this one was stored.
            Err(StoreError::Conflict(m)) => Ok(RequestOutcome::Deferred { reason: m }),
            Err(e) => Err(e.into()),
        }
    }

    /// The newest usable service of `kind` named `name` whose key `node` holds (`None`: the
    /// CA node's own).
    pub fn current_service_of(
        &self,
        kind: ServiceKind,
        name: &str,
        node: Option<&str>,
    ) -> Result<Option<ServiceCertificate>, CaError> {
        let now = self.now();
        Ok(self
            .services(kind, Some(name))?
            .into_iter()
            .find(|s| s.service.node.as_deref() == node && s.usable_at(now)))
    }
}
