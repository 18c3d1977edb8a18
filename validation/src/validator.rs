//! The entry point: trust anchors + untrusted pool + revocation material → a validated path
//! or the reason there is none.

use std::collections::HashMap;
use std::sync::Arc;

use der::asn1::ObjectIdentifier;

use crate::budget::Work;
use crate::name::NameKey;
use crate::path_builder::Session;
use crate::signature::SignatureCache;
use crate::{
    Certificate, Crl, Fetcher, LocalRevocationSource, RevocationEvidence, RevocationStatus,
    ValidationError, ValidationOptions,
};

/// A path that passed RFC 5280 §6.1 (and revocation, as the options asked).
#[derive(Clone, Debug)]
pub struct ValidatedPath {
    /// Target first, trust anchor last.
    pub chain: Vec<Arc<Certificate>>,
    /// One per certificate of `chain` except the anchor, in the same order.
    pub revocation: Vec<RevocationStatus>,
    /// The user-constrained-policy-set (§6.1.6); contains anyPolicy when any policy is acceptable.
    pub user_constrained_policy_set: Vec<ObjectIdentifier>,
    /// Every CRL and OCSP response the revocation findings rest on (complete and delta CRLs,
    /// and those of CRL-signer paths), once each: what a B-LT signature embeds.
    pub supporting_evidence: Vec<RevocationEvidence>,
    /// Certificates of CRL-signer paths that are not on `chain` (a separate CRL-signing key,
    /// an indirect CRL issuer), which a B-LT signature embeds too.
    pub supporting_certificates: Vec<Arc<Certificate>>,
}

/// Trust anchors, an untrusted pool and revocation material. Build once, validate many
/// (it is `Sync`: parsed CRLs and verified signatures are cached inside).
pub struct Validator {
    anchors: Vec<Arc<Certificate>>,
    anchor_index: HashMap<NameKey, Vec<usize>>,
    pool: Vec<Arc<Certificate>>,
    pool_index: HashMap<NameKey, Vec<usize>>,
    crls: Vec<Arc<Crl>>,
    crl_index: HashMap<NameKey, Vec<usize>>,
    pub(crate) ocsp_responses: Vec<Arc<Vec<u8>>>,
    pub(crate) fetcher: Option<Box<dyn Fetcher>>,
    pub(crate) local_revocation: Option<Arc<dyn LocalRevocationSource>>,
    pub(crate) signatures: Arc<SignatureCache>,
}

impl Validator {
    /// A validator trusting `anchors` (self-signed roots or any certificate taken as a trust
    /// anchor: its name and key, RFC 5280 §6.1.1 (d)).
    pub fn new(anchors: Vec<Certificate>) -> Validator {
        let mut validator = Validator {
            anchors: Vec::new(),
            anchor_index: HashMap::new(),
            pool: Vec::new(),
            pool_index: HashMap::new(),
            crls: Vec::new(),
            crl_index: HashMap::new(),
            ocsp_responses: Vec::new(),
            fetcher: None,
            local_revocation: None,
            signatures: Arc::new(SignatureCache::default()),
        };
        for anchor in anchors {
            validator.add_trust_anchor(anchor);
        }
        validator
    }

    /// Uses `cache` for verified signatures instead of this validator's own: validators made
    /// one per document (the signer's) share one cache and check each certificate and CRL
    /// signature once per process.
    pub fn with_signature_cache(mut self, cache: Arc<SignatureCache>) -> Validator {
        self.signatures = cache;
        self
    }

    /// The cache of verified signatures this validator uses (to share with others).
    pub fn signature_cache(&self) -> Arc<SignatureCache> {
        Arc::clone(&self.signatures)
    }

    /// Adds a trust anchor.
    pub fn add_trust_anchor(&mut self, anchor: Certificate) {
        self.add_shared_trust_anchor(Arc::new(anchor));
    }

    /// [`Validator::add_trust_anchor`] for a certificate already shared: a verifier that makes
    /// one validator per document hands the same parsed anchors to each without copying them.
    pub fn add_shared_trust_anchor(&mut self, anchor: Arc<Certificate>) {
        if self.anchors.iter().any(|a| a.same_as(&anchor)) {
            return;
        }
        self.anchor_index
            .entry(anchor.subject_key().clone())
            .or_default()
            .push(self.anchors.len());
        self.anchors.push(anchor);
    }

    /// Adds an untrusted certificate (intermediate, cross-certificate, CRL signer, OCSP
    /// responder) that path building may use.
    pub fn add_certificate(&mut self, cert: Certificate) {
        self.add_shared_certificate(Arc::new(cert));
    }

    /// [`Validator::add_certificate`] for a certificate already shared (parsed once, used by
    /// many validators).
    pub fn add_shared_certificate(&mut self, cert: Arc<Certificate>) {
        let named = self
            .pool_index
            .entry(cert.subject_key().clone())
            .or_default();
        if named
            .iter()
            .filter_map(|&i| self.pool.get(i))
            .any(|c| c.same_as(&cert))
        {
            return;
        }
        named.push(self.pool.len());
        self.pool.push(cert);
    }

    /// Adds a CRL (full or delta) for revocation checking.
    pub fn add_crl(&mut self, crl: Crl) {
        self.add_shared_crl(Arc::new(crl));
    }

    /// [`Validator::add_crl`] for a CRL already shared: a large CRL is parsed once and never
    /// copied per validation.
    pub fn add_shared_crl(&mut self, crl: Arc<Crl>) {
        let named = self.crl_index.entry(crl.issuer_key.clone()).or_default();
        if named
            .iter()
            .filter_map(|&i| self.crls.get(i))
            .any(|c| c.der() == crl.der())
        {
            return;
        }
        named.push(self.crls.len());
        self.crls.push(crl);
    }

    /// Adds a DER OCSPResponse (e.g. embedded in a B-LT signature).
    pub fn add_ocsp_response(&mut self, der: Vec<u8>) {
        self.ocsp_responses.push(Arc::new(der));
    }

    /// The fetcher used when [`ValidationOptions::network`] is set.
    pub fn set_fetcher(&mut self, fetcher: Box<dyn Fetcher>) {
        self.fetcher = Some(fetcher);
    }

    /// The issuer's own records, consulted before OCSP and CRLs (network or not) for the
    /// certificates of the CAs they cover.
    pub fn set_local_revocation(&mut self, source: Arc<dyn LocalRevocationSource>) {
        self.local_revocation = Some(source);
    }

    /// Builds and validates a path from `target` to one of the anchors.
    ///
    /// When no candidate path passes: the error of the candidate that got furthest (e.g.
    /// [`ValidationError::Revoked`] for a revoked leaf), [`ValidationError::NoPathFound`] when
    /// no candidate reached an anchor, [`ValidationError::BudgetExceeded`] when the work
    /// allowed by [`ValidationOptions::budget`] ran out first.
    pub fn validate(
        &self,
        target: &Certificate,
        options: &ValidationOptions,
    ) -> Result<ValidatedPath, ValidationError> {
        self.validate_shared(&Arc::new(target.clone()), options)
    }

    /// [`Validator::validate`] for a target already shared (no copy of it is made).
    pub fn validate_shared(
        &self,
        target: &Arc<Certificate>,
        options: &ValidationOptions,
    ) -> Result<ValidatedPath, ValidationError> {
        let mut session = Session {
            v: self,
            work: Work::new(options.budget),
            crl_stack: Vec::new(),
            signer_depth: 0,
        };
        session
            .find_path(target, options, None)
            .map(|found| found.path)
    }

    pub(crate) fn anchors_named<'a>(
        &'a self,
        name: &NameKey,
    ) -> impl Iterator<Item = &'a Arc<Certificate>> + 'a {
        named(&self.anchor_index, &self.anchors, name)
    }

    pub(crate) fn pool_named<'a>(
        &'a self,
        name: &NameKey,
    ) -> impl Iterator<Item = &'a Arc<Certificate>> + 'a {
        named(&self.pool_index, &self.pool, name)
    }

    pub(crate) fn crls_named<'a>(
        &'a self,
        name: &NameKey,
    ) -> impl Iterator<Item = &'a Arc<Crl>> + 'a {
        named(&self.crl_index, &self.crls, name)
    }

    /// Whether `cert` is one of the trust anchors (same subject and key).
    pub(crate) fn is_anchor(&self, cert: &Certificate) -> bool {
        self.anchors_named(cert.subject_key())
            .any(|a| a.same_subject_and_key(cert))
    }
}

/// The items of `items` that `index` lists under `name`.
fn named<'a, T>(
    index: &'a HashMap<NameKey, Vec<usize>>,
    items: &'a [T],
    name: &NameKey,
) -> impl Iterator<Item = &'a T> + 'a {
    index
        .get(name)
        .into_iter()
        .flatten()
        .filter_map(|&i| items.get(i))
}
