//! Service keys held by other nodes: how a public node, which never holds a CA key, gets its
//! own delegated OCSP responder (RFC 6960 §4.2.2.2) and its own key for a time-stamping unit
//! certified by the CA side, through the shared store.
//!
//! 1. The node makes the key where it runs (a software key in its own data directory, mode
//!    0600, or on its token) and files a request: a PKCS#10 CSR signed with that key (proof
//!    of possession) and where it keeps the key ([`Pki::request_ocsp_responder`],
//!    [`Pki::request_tsa_unit`]).
//! 2. The CA side (`imza serve --roles ca`, or `imza ocsp certify`) checks each open request's
//!    CSR and certifies it with the `ocsp` or `tsa` profile, recording the certificate and a
//!    `services` row naming the node, and closing the request, in one transaction
//!    ([`Pki::certify_service_requests`]); a request it cannot accept is refused with the
//!    reason. Of several CA nodes at once, one certifies each request.
//! 3. The node sees the certificate through the store and answers with its key. Renewal is
//!    the same path with a new key, filed when a third of the certificate's life is left.
//!
//! The CSR's subject is not taken: the CA names the service (`C`, `O` of the CA, `CN=OCSP
//! Responder CA NODE` or `CN=O Time-Stamping Unit NAME NODE`), as for its own. A node's TSA
//! key belongs to a unit created on the CA side (`imza tsa init`): the unit's CA certifies it
//! and the unit's policy goes with it.

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
use crate::services::{
    key_suffix, service_subject, tsa_common_name, ServiceCertificate, OCSP_PROFILE, TSA_PROFILE,
};
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
    /// On a node: makes a new responder key for CA `ca` (with `backend`: in this data
    /// directory or on a token) and files a request the CA side certifies. `Conflict` (as
    /// `InvalidRequest`) if this node has a request open for that CA; then the new key is
    /// removed.
    pub fn request_ocsp_responder(
        &self,
        ca: &str,
        node: &str,
        backend: &KeyBackend,
    ) -> Result<ServiceRequest, CaError> {
        self.ca(ca)?;
        self.request_service_key(ServiceKind::Ocsp, ca, ca, node, backend)
    }

    /// On a node: makes a new key for the time-stamping unit `name` (created on the CA side
    /// with `imza tsa init`) and files a request the unit's CA certifies. As
    /// [`Pki::request_ocsp_responder`] otherwise.
    pub fn request_tsa_unit(
        &self,
        name: &str,
        node: &str,
        backend: &KeyBackend,
    ) -> Result<ServiceRequest, CaError> {
        let unit = self
            .current_service(ServiceKind::Tsa, name)?
            .ok_or_else(|| {
                CaError::InvalidRequest(format!(
                    "there is no usable TSA named {name:?} to hold a key for: create it on the CA \
                 node with imza tsa init"
                ))
            })?;
        self.request_service_key(ServiceKind::Tsa, name, &unit.service.ca, node, backend)
    }

    fn request_service_key(
        &self,
        kind: ServiceKind,
        name: &str,
        ca: &str,
        node: &str,
        backend: &KeyBackend,
    ) -> Result<ServiceRequest, CaError> {
        if !valid_name(node) {
            return Err(CaError::InvalidRequest(format!(
                "invalid node name {node:?}: use 1 to 64 characters a-z, 0-9 and '-'"
            )));
        }
        let now = self.now();
        let stem = format!("{}-{name}-{node}-{}", kind.as_str(), key_suffix(now)?);
        let (key_ref, key) = KeyReference::generate_named(
            backend,
            &stem,
            &format!("imza-{stem}"),
            KeyAlgorithm::EcP256,
            self.data_dir(),
        )?;
        let result = (|| {
            let subject = parse_dn(&format!("CN={} {name} {node}", kind.as_str()))?;
            let csr = imza_core::csr::build_csr(&subject, key.as_ref())?;
            let mut request = ServiceRequest {
                id: 0,
                kind,
                name: name.to_string(),
                ca: ca.to_string(),
                node: node.to_string(),
                csr,
                key: key_ref.clone(),
                requested_at: now,
            };
            let audit = AuditEvent {
                at: now,
                action: format!("{}.request", kind.as_str()),
                ca: ca.to_string(),
                details: json!({ "name": name, "node": node, "key": key_ref.describe() }),
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

    /// This node's open request for a `kind` service named `name` (an OCSP responder is named
    /// after its CA), if any.
    pub fn open_service_request(
        &self,
        kind: ServiceKind,
        name: &str,
        node: &str,
    ) -> Result<Option<ServiceRequest>, CaError> {
        Ok(self
            .store()
            .open_service_requests(usize::MAX)?
            .into_iter()
            .find(|r| r.kind == kind && r.name == name && r.node == node))
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
        // What is certified: the profile, and the policy a node's TSA key shares with its unit.
        let (profile, policy) = match request.kind {
            ServiceKind::Ocsp if request.name == request.ca => (OCSP_PROFILE, None),
            ServiceKind::Ocsp => {
                return refuse(format!(
                    "an OCSP responder is certified by the CA it answers for (asked: {} for {})",
                    request.ca, request.name
                ))
            }
            ServiceKind::Tsa => match self.current_service(ServiceKind::Tsa, &request.name)? {
                Some(unit) if unit.service.ca == request.ca => (TSA_PROFILE, unit.service.policy),
                _ => {
                    return refuse(format!(
                        "there is no usable TSA {} of CA {} on the CA side",
                        request.name, request.ca
                    ))
                }
            },
        };
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
        let profile = self.profiles().get(profile)?;
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
        let ca_subject = &authority.certificate().tbs_certificate.subject;
        let common_name = match request.kind {
            ServiceKind::Ocsp => format!("OCSP Responder {} {}", request.ca, request.node),
            ServiceKind::Tsa => format!(
                "{} {}",
                tsa_common_name(ca_subject, &request.name),
                request.node
            ),
        };
        let issue = IssueRequest {
            subject: service_subject(ca_subject, &common_name)?,
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
            kind: request.kind,
            name: request.name.clone(),
            ca: request.ca.clone(),
            serial: certificate.serial.clone(),
            key: request.key.clone(),
            policy: policy.clone(),
            created_at: now,
            node: Some(request.node.clone()),
        };
        let certified = AuditEvent {
            at: now,
            action: format!("{}.certify", request.kind.as_str()),
            ca: request.ca.clone(),
            details: json!({
                "request": request.id,
                "name": request.name,
                "node": request.node,
                "policy": policy,
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
