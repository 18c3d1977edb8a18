//! The entry point: trust anchors + untrusted pool + revocation material → a validated path
//! or the reason there is none.

use std::sync::Arc;

use der::asn1::ObjectIdentifier;

use crate::{Certificate, Crl, Fetcher, RevocationStatus, ValidationError, ValidationOptions};

/// A path that passed RFC 5280 §6.1 (and revocation, as the options asked).
#[derive(Clone, Debug)]
pub struct ValidatedPath {
    /// Target first, trust anchor last.
    pub chain: Vec<Arc<Certificate>>,
    /// One per certificate of `chain` except the anchor, in the same order.
    pub revocation: Vec<RevocationStatus>,
    /// The user-constrained-policy-set (§6.1.6); contains anyPolicy when any policy is acceptable.
    pub user_constrained_policy_set: Vec<ObjectIdentifier>,
}

/// Trust anchors, an untrusted pool and revocation material. Build once, validate many
/// (it is `Sync`: parsed CRLs and verified signatures are cached inside).
pub struct Validator {
    anchors: Vec<Arc<Certificate>>,
    pool: Vec<Arc<Certificate>>,
    crls: Vec<Arc<Crl>>,
    ocsp_responses: Vec<Arc<Vec<u8>>>,
    fetcher: Option<Box<dyn Fetcher>>,
}

impl Validator {
    /// A validator trusting `anchors` (self-signed roots or any certificate taken as a trust
    /// anchor: its name and key, RFC 5280 §6.1.1 (d)).
    pub fn new(anchors: Vec<Certificate>) -> Validator {
        Validator {
            anchors: anchors.into_iter().map(Arc::new).collect(),
            pool: Vec::new(),
            crls: Vec::new(),
            ocsp_responses: Vec::new(),
            fetcher: None,
        }
    }

    /// Adds an untrusted certificate (intermediate, cross-certificate, CRL signer, OCSP
    /// responder) that path building may use.
    pub fn add_certificate(&mut self, cert: Certificate) {
        self.pool.push(Arc::new(cert));
    }

    /// Adds a CRL (full or delta) for revocation checking.
    pub fn add_crl(&mut self, crl: Crl) {
        self.crls.push(Arc::new(crl));
    }

    /// Adds a DER OCSPResponse (e.g. embedded in a B-LT signature).
    pub fn add_ocsp_response(&mut self, der: Vec<u8>) {
        self.ocsp_responses.push(Arc::new(der));
    }

    /// The fetcher used when [`ValidationOptions::network`] is set.
    pub fn set_fetcher(&mut self, fetcher: Box<dyn Fetcher>) {
        self.fetcher = Some(fetcher);
    }

    /// Builds and validates a path from `target` to one of the anchors.
    pub fn validate(
        &self,
        target: &Certificate,
        options: &ValidationOptions,
    ) -> Result<ValidatedPath, ValidationError> {
        let _ = (
            &self.anchors,
            &self.pool,
            &self.crls,
            &self.ocsp_responses,
            &self.fetcher,
            options,
        );
        Err(ValidationError::NoPathFound {
            detail: format!(
                "path validation for {} is not implemented yet",
                target.subject_text()
            ),
        })
    }
}
