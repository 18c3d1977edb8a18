//! Certificate paths for signature validation (EN 319 102-1 §5.2.6, X.509 certificate
//! validation): imza-validation's RFC 5280 validator with the verifier's trust anchors, a pool
//! of the signature's own certificates plus the caller's, and the revocation data the
//! signature carries (CRLs, OCSP responses) plus the caller's, judged at a proof-of-existence
//! time. Also the [`PathValidator`] the time-stamp verifier of imza-tsa calls, so a TSA's path
//! and revocation are checked the same way.
//!
//! Revocation comes, in this order, from the issuer's own records when the verifier runs
//! beside them (a [`LocalRevocationSource`]: `imza serve` and its CA store), from what the
//! signature and the caller carry, and — when the network is allowed — from the certificates'
//! OCSP and CRL URLs: through the process's [`FetchCache`] (shared answers, capped fetches,
//! one [`RequestFetcher`] per verify call) or, without one, a fresh HTTP fetcher per
//! validation (OCSP nonces, nothing kept).
//!
//! Results are cached by everything they depend on (target, purpose, time, the exact
//! material), so verifying many signatures from one signer under one CA costs a lookup for
//! the chain. A result for which the records or the network were consulted is not cached: a
//! revocation recorded in the store must show in the very next verification, and a fetched
//! answer expires.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use imza_http::HttpClient;
use imza_tsa::{PathError, PathValidator};
use imza_validation::{
    Certificate, Crl, FetchCache, Fetcher, LocalRevocationSource, LocalStatus, Purpose,
    RequestFetcher, RevocationPolicy, SharedFetcher, SignatureCache, Strictness, ValidatedPath,
    ValidationError, ValidationOptions, Validator,
};
use openssl::sha::Sha256;
use time::OffsetDateTime;

/// Most cached path results; the cache is emptied when full (a burst of distinct
/// signatures then costs what it would without a cache).
const MAX_CACHED_PATHS: usize = 4096;

/// Why no path was accepted, in the terms the report maps to sub-indications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathFailureKind {
    NoPath,
    /// `revoked_at` is at or before the validation time; `subject` names who.
    Revoked {
        subject: String,
        revoked_at: OffsetDateTime,
    },
    Expired,
    NotYetValid,
    RevocationUnknown,
    Constraint,
    Unsupported,
    General,
}

/// A refused path: its kind for the report, and the validator's error itself (shared: a
/// cached result is cloned for each signature that asks again).
#[derive(Clone, Debug)]
pub(crate) struct PathFailure {
    pub(crate) kind: PathFailureKind,
    pub(crate) error: Arc<ValidationError>,
}

impl PathFailure {
    fn from_error(error: ValidationError) -> PathFailure {
        let kind = match &error {
            // A certificate whose signature does not verify with its issuer's key (a root of
            // the same name, a forged intermediate) links the target to no anchor.
            ValidationError::NoPathFound { .. } | ValidationError::BadSignature { .. } => {
                PathFailureKind::NoPath
            }
            ValidationError::Revoked {
                subject,
                revoked_at,
                ..
            } => PathFailureKind::Revoked {
                subject: subject.clone(),
                revoked_at: *revoked_at,
            },
            ValidationError::Expired { .. } => PathFailureKind::Expired,
            ValidationError::NotYetValid { .. } => PathFailureKind::NotYetValid,
            ValidationError::RevocationUnknown { .. } | ValidationError::Network { .. } => {
                PathFailureKind::RevocationUnknown
            }
            ValidationError::Constraint { .. }
            | ValidationError::Purpose { .. }
            | ValidationError::TrustAnchor { .. }
            | ValidationError::AnchorNameConstraints { .. }
            | ValidationError::NameConstraint { .. }
            | ValidationError::CaExtendedKeyUsage { .. }
            | ValidationError::NonConforming { .. } => PathFailureKind::Constraint,
            // A CRL no conforming issuer signs leaves the status unsettled.
            ValidationError::NonConformingCrl { .. } => PathFailureKind::RevocationUnknown,
            // A key too short for the policy is a cryptographic constraint (EN 319 102-1).
            ValidationError::Unsupported(_)
            | ValidationError::WeakRsaKey { .. }
            | ValidationError::WeakOcspResponderKey { .. } => PathFailureKind::Unsupported,
            _ => PathFailureKind::General,
        };
        PathFailure {
            kind,
            error: Arc::new(error),
        }
    }
}

pub(crate) type PathResult = Result<ValidatedPath, PathFailure>;

/// The revocation data and certificates one signature carries, parsed once, with a
/// fingerprint of their bytes for the cache key.
pub(crate) struct SignatureMaterial {
    certificates: Vec<Vec<u8>>,
    crls: Vec<Arc<Crl>>,
    ocsp_responses: Vec<Vec<u8>>,
    revocation_fingerprint: [u8; 32],
    /// Pieces that could not be read, for the report's warnings.
    pub(crate) notes: Vec<String>,
}

impl SignatureMaterial {
    pub(crate) fn new(
        certificates: Vec<Vec<u8>>,
        crls: &[Vec<u8>],
        ocsp_responses: Vec<Vec<u8>>,
    ) -> SignatureMaterial {
        let mut notes = Vec::new();
        let mut hasher = Sha256::new();
        let mut parsed_crls = Vec::new();
        for der in crls {
            hash_item(&mut hasher, b'C', der);
            match Crl::from_der(der.clone()) {
                Ok(crl) => parsed_crls.push(Arc::new(crl)),
                Err(e) => notes.push(format!("an embedded CRL is ignored: {e}")),
            }
        }
        for der in &ocsp_responses {
            hash_item(&mut hasher, b'O', der);
        }
        SignatureMaterial {
            certificates,
            crls: parsed_crls,
            ocsp_responses,
            revocation_fingerprint: hasher.finish(),
            notes,
        }
    }

    /// The signature's certificates (DER), for the pool and for finding signers.
    pub(crate) fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }
}

fn hash_item(hasher: &mut Sha256, kind: u8, der: &[u8]) {
    hasher.update(&[kind]);
    hasher.update(&(der.len() as u64).to_be_bytes());
    hasher.update(der);
}

/// The network one verify call may use, made once per call by [`PathChecker::network`].
#[derive(Clone, Debug)]
pub(crate) enum Network {
    Off,
    /// A fresh HTTP fetcher per validation.
    Direct,
    /// The process's fetch cache, this call's fetches counted by one request fetcher.
    Cached(RequestFetcher),
}

/// Where revocation may come from besides the material: the issuer's records and the network.
pub(crate) struct OnlineSources {
    pub(crate) network: bool,
    pub(crate) fetch_cache: Option<Arc<FetchCache>>,
    /// The caller's fetcher for [`Network::Direct`]; `None`: a new HTTP client each time.
    pub(crate) fetcher: Option<Arc<dyn Fetcher>>,
    pub(crate) local: Option<Arc<dyn LocalRevocationSource>>,
}

/// Trust anchors, the caller's certificates and CRLs, the online sources, and the result
/// cache: built once per verifier and shared by every signature it verifies.
pub(crate) struct PathChecker {
    anchors: Vec<Arc<Certificate>>,
    extra_certificates: Vec<Arc<Certificate>>,
    extra_crls: Vec<Arc<Crl>>,
    online: OnlineSources,
    strictness: Strictness,
    /// Verified certificate and CRL signatures, shared by the validator made for each
    /// signature (and with other validators of the process, when the caller passes one).
    signatures: Arc<SignatureCache>,
    cache: Mutex<HashMap<[u8; 32], PathResult>>,
    /// Certificates that came with signatures, parsed once and shared by every validator
    /// made afterwards (keyed by a SHA-256 of their DER): a run of signatures from one
    /// signer and one TSA parses their certificates once.
    parsed: Mutex<HashMap<[u8; 32], Arc<Certificate>>>,
}

impl PathChecker {
    pub(crate) fn new(
        anchors: Vec<Certificate>,
        extra_certificates: Vec<Certificate>,
        extra_crls: Vec<Crl>,
        online: OnlineSources,
        strictness: Strictness,
        signatures: Arc<SignatureCache>,
    ) -> PathChecker {
        PathChecker {
            anchors: anchors.into_iter().map(Arc::new).collect(),
            extra_certificates: extra_certificates.into_iter().map(Arc::new).collect(),
            extra_crls: extra_crls.into_iter().map(Arc::new).collect(),
            online,
            strictness,
            signatures,
            cache: Mutex::new(HashMap::new()),
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// The caller's extra certificates, DER.
    pub(crate) fn extra_certificates(&self) -> impl Iterator<Item = &[u8]> {
        self.extra_certificates.iter().map(|c| c.der())
    }

    /// The network for one verify call: every validation of the call shares one request
    /// fetcher, so the per-request cap covers all its signers and time-stamps.
    pub(crate) fn network(&self) -> Network {
        match (&self.online.network, &self.online.fetch_cache) {
            (false, _) => Network::Off,
            (true, None) => Network::Direct,
            (true, Some(cache)) => Network::Cached(cache.request()),
        }
    }

    /// Validates a path from `target` for `purpose` at `at`, with `untrusted` (DER) and the
    /// caller's certificates as the pool and `material`'s revocation data with the caller's,
    /// and the issuer's records and `network` when needed. Revocation is required for every
    /// certificate below the anchor.
    pub(crate) fn validate(
        &self,
        target: &[u8],
        untrusted: &[Vec<u8>],
        material: &SignatureMaterial,
        network: &Network,
        purpose: Purpose,
        at: OffsetDateTime,
    ) -> PathResult {
        let key = cache_key(target, untrusted, material, purpose, at);
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return hit.clone();
        }
        let consulted = Arc::new(AtomicBool::new(false));
        let result = self.validate_uncached(
            target, untrusted, material, network, &consulted, purpose, at,
        );
        // What rests on the records or the network may change by the next call.
        if !consulted.load(Ordering::SeqCst) {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= MAX_CACHED_PATHS {
                cache.clear();
            }
            cache.insert(key, result.clone());
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn validate_uncached(
        &self,
        target: &[u8],
        untrusted: &[Vec<u8>],
        material: &SignatureMaterial,
        network: &Network,
        consulted: &Arc<AtomicBool>,
        purpose: Purpose,
        at: OffsetDateTime,
    ) -> PathResult {
        let target = self.parse(target).map_err(PathFailure::from_error)?;
        let mut validator =
            Validator::new(Vec::new()).with_signature_cache(Arc::clone(&self.signatures));
        for anchor in &self.anchors {
            validator.add_shared_trust_anchor(Arc::clone(anchor));
        }
        for der in untrusted {
            // An unreadable certificate in the pool cannot be on a path; skip it.
            if let Ok(cert) = self.parse(der) {
                validator.add_shared_certificate(cert);
            }
        }
        for cert in &self.extra_certificates {
            validator.add_shared_certificate(Arc::clone(cert));
        }
        for crl in material.crls.iter().chain(&self.extra_crls) {
            validator.add_shared_crl(Arc::clone(crl));
        }
        for der in &material.ocsp_responses {
            validator.add_ocsp_response(der.clone());
        }
        let fetcher: Option<Box<dyn Fetcher>> = match network {
            Network::Off => None,
            Network::Direct => Some(match &self.online.fetcher {
                Some(fetcher) => Box::new(SharedFetcher(Arc::clone(fetcher))),
                None => Box::new(HttpClient::default()),
            }),
            Network::Cached(request) => Some(Box::new(request.clone())),
        };
        if let Some(fetcher) = fetcher {
            validator.set_fetcher(Box::new(Watched {
                inner: fetcher,
                consulted: Arc::clone(consulted),
            }));
        }
        if let Some(local) = &self.online.local {
            validator.set_local_revocation(Arc::new(Watched {
                inner: Arc::clone(local),
                consulted: Arc::clone(consulted),
            }));
        }
        let mut options = ValidationOptions::at(at);
        options.purpose = purpose;
        options.revocation = RevocationPolicy::Require;
        options.network = !matches!(network, Network::Off);
        options.strictness = self.strictness;
        validator
            .validate_shared(&target, &options)
            .map_err(PathFailure::from_error)
    }

    /// `der` parsed, from the cache of certificates already seen when it is there.
    fn parse(&self, der: &[u8]) -> Result<Arc<Certificate>, ValidationError> {
        let mut hasher = Sha256::new();
        hasher.update(der);
        let key = hasher.finish();
        if let Some(hit) = self
            .parsed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(hit));
        }
        let cert = Arc::new(Certificate::from_der(der.to_vec())?);
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if parsed.len() >= MAX_CACHED_PATHS {
            parsed.clear();
        }
        parsed.insert(key, Arc::clone(&cert));
        Ok(cert)
    }
}

/// A fetcher or records that flag when they are asked, so that what rests on them is not
/// kept in the result cache.
struct Watched<T> {
    inner: T,
    consulted: Arc<AtomicBool>,
}

impl Fetcher for Watched<Box<dyn Fetcher>> {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
        self.consulted.store(true, Ordering::SeqCst);
        self.inner.fetch_crl(url)
    }

    fn post_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, ValidationError> {
        self.consulted.store(true, Ordering::SeqCst);
        self.inner.post_ocsp(url, request)
    }

    fn crls(&self, url: &str) -> Result<Vec<Arc<Crl>>, ValidationError> {
        self.consulted.store(true, Ordering::SeqCst);
        self.inner.crls(url)
    }

    fn ocsp_nonce(&self) -> bool {
        self.inner.ocsp_nonce()
    }
}

impl LocalRevocationSource for Watched<Arc<dyn LocalRevocationSource>> {
    fn status(&self, cert: &Certificate, issuer: &Certificate) -> LocalStatus {
        let status = self.inner.status(cert, issuer);
        if status != LocalStatus::NotMine {
            self.consulted.store(true, Ordering::SeqCst);
        }
        status
    }

    fn name(&self) -> String {
        self.inner.name()
    }
}

fn cache_key(
    target: &[u8],
    untrusted: &[Vec<u8>],
    material: &SignatureMaterial,
    purpose: Purpose,
    at: OffsetDateTime,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hash_item(&mut hasher, b'T', target);
    hasher.update(format!("{purpose:?}").as_bytes());
    hasher.update(&at.unix_timestamp_nanos().to_be_bytes());
    hasher.update(&material.revocation_fingerprint);
    for der in untrusted {
        hash_item(&mut hasher, b'U', der);
    }
    hasher.finish()
}

/// imza-tsa's [`PathValidator`] over a [`PathChecker`]: the TSA certificate's path for
/// time-stamping, with the signature's revocation data. Keeps the last result so the caller
/// can tell why a token was refused.
pub(crate) struct TsaPathValidator<'a> {
    pub(crate) checker: &'a PathChecker,
    pub(crate) material: &'a SignatureMaterial,
    pub(crate) network: &'a Network,
    pub(crate) last: RefCell<Option<PathResult>>,
}

impl PathValidator for TsaPathValidator<'_> {
    fn validate(
        &self,
        signer: &[u8],
        untrusted: &[Vec<u8>],
        at: OffsetDateTime,
    ) -> Result<(), PathError> {
        let result = self.checker.validate(
            signer,
            untrusted,
            self.material,
            self.network,
            Purpose::TimeStamping,
            at,
        );
        let answer = match &result {
            Ok(_) => Ok(()),
            Err(failure) => Err(PathError::Refused {
                source: Box::new(ValidationError::clone(&failure.error)),
            }),
        };
        *self.last.borrow_mut() = Some(result);
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imza_validation::{CrlViolation, Rfc5280Violation};

    #[test]
    fn the_strict_validators_refusals_map_to_their_sub_indication_kinds() {
        let kind = |e: ValidationError| PathFailure::from_error(e).kind;
        assert_eq!(
            kind(ValidationError::WeakRsaKey {
                position: 0,
                subject: "CN=x".into(),
                bits: 1024,
                minimum: 2048,
            }),
            PathFailureKind::Unsupported
        );
        assert_eq!(
            kind(ValidationError::NonConforming {
                position: 1,
                subject: "CN=CA".into(),
                violation: Rfc5280Violation::MissingSubjectKeyIdentifier,
            }),
            PathFailureKind::Constraint
        );
        assert_eq!(
            kind(ValidationError::NonConformingCrl {
                issuer: "CN=CA".into(),
                violation: CrlViolation::MissingCrlNumber,
            }),
            PathFailureKind::RevocationUnknown
        );
    }

    #[test]
    fn tsa_path_refusal_keeps_the_validators_error() {
        let checker = PathChecker::new(
            Vec::new(),
            Vec::new(),
            Vec::new(),
            OnlineSources {
                network: false,
                fetch_cache: None,
                fetcher: None,
                local: None,
            },
            Strictness::default(),
            Arc::new(SignatureCache::new(16)),
        );
        let material = SignatureMaterial::new(Vec::new(), &[], Vec::new());
        let paths = TsaPathValidator {
            checker: &checker,
            material: &material,
            network: &Network::Off,
            last: Default::default(),
        };
        let err = paths
            .validate(b"not a certificate", &[], OffsetDateTime::UNIX_EPOCH)
            .unwrap_err();
        let kept = std::error::Error::source(&err)
            .and_then(|e| e.downcast_ref::<ValidationError>())
            .unwrap();
        assert!(
            matches!(kept, ValidationError::Malformed { .. }),
            "{kept:?}"
        );
        assert_eq!(err.to_string(), kept.to_string());
    }
}
