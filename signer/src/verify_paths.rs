//! Certificate paths for signature validation (EN 319 102-1 §5.2.6, X.509 certificate
//! validation): imza-validation's RFC 5280 validator with the verifier's trust anchors, a pool
//! of the signature's own certificates plus the caller's, and the revocation data the
//! signature carries (CRLs, OCSP responses) plus the caller's, judged at a proof-of-existence
//! time. Also the [`PathValidator`] the time-stamp verifier of imza-tsa calls, so a TSA's path
//! and revocation are checked the same way.
//!
//! Results are cached by everything they depend on (target, purpose, time, the exact
//! material), so verifying many signatures from one signer under one CA costs a lookup for
//! the chain. With network fetching on nothing is cached: a fetched answer may change.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use imza_tsa::PathValidator;
use imza_validation::{
    Certificate, Crl, HttpFetcher, Purpose, RevocationPolicy, SignatureCache, ValidatedPath,
    ValidationError, ValidationOptions, Validator,
};
use openssl::sha::Sha256;
use time::OffsetDateTime;

use crate::report::time_text;

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

#[derive(Clone, Debug)]
pub(crate) struct PathFailure {
    pub(crate) kind: PathFailureKind,
    pub(crate) message: String,
}

impl PathFailure {
    fn from_error(e: ValidationError) -> PathFailure {
        let message = e.to_string();
        let kind = match e {
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
                subject,
                revoked_at,
            },
            ValidationError::Expired { .. } => PathFailureKind::Expired,
            ValidationError::NotYetValid { .. } => PathFailureKind::NotYetValid,
            ValidationError::RevocationUnknown { .. } | ValidationError::Network(_) => {
                PathFailureKind::RevocationUnknown
            }
            ValidationError::Constraint { .. } | ValidationError::Purpose { .. } => {
                PathFailureKind::Constraint
            }
            ValidationError::Unsupported(_) => PathFailureKind::Unsupported,
            _ => PathFailureKind::General,
        };
        PathFailure { kind, message }
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

/// Trust anchors, the caller's certificates and CRLs, network use, and the result cache:
/// built once per verifier and shared by every signature it verifies.
pub(crate) struct PathChecker {
    anchors: Vec<Arc<Certificate>>,
    extra_certificates: Vec<Arc<Certificate>>,
    extra_crls: Vec<Arc<Crl>>,
    network: bool,
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
        network: bool,
        signatures: Arc<SignatureCache>,
    ) -> PathChecker {
        PathChecker {
            anchors: anchors.into_iter().map(Arc::new).collect(),
            extra_certificates: extra_certificates.into_iter().map(Arc::new).collect(),
            extra_crls: extra_crls.into_iter().map(Arc::new).collect(),
            network,
            signatures,
            cache: Mutex::new(HashMap::new()),
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// The caller's extra certificates, DER.
    pub(crate) fn extra_certificates(&self) -> impl Iterator<Item = &[u8]> {
        self.extra_certificates.iter().map(|c| c.der())
    }

    /// Validates a path from `target` for `purpose` at `at`, with `untrusted` (DER) and the
    /// caller's certificates as the pool and `material`'s revocation data with the caller's.
    /// Revocation is required for every certificate below the anchor.
    pub(crate) fn validate(
        &self,
        target: &[u8],
        untrusted: &[Vec<u8>],
        material: &SignatureMaterial,
        purpose: Purpose,
        at: OffsetDateTime,
    ) -> PathResult {
        let key = (!self.network).then(|| cache_key(target, untrusted, material, purpose, at));
        if let Some(key) = &key {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(hit) = cache.get(key) {
                return hit.clone();
            }
        }
        let result = self.validate_uncached(target, untrusted, material, purpose, at);
        if let Some(key) = key {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= MAX_CACHED_PATHS {
                cache.clear();
            }
            cache.insert(key, result.clone());
        }
        result
    }

    fn validate_uncached(
        &self,
        target: &[u8],
        untrusted: &[Vec<u8>],
        material: &SignatureMaterial,
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
        if self.network {
            validator.set_fetcher(Box::new(HttpFetcher::default()));
        }
        let mut options = ValidationOptions::at(at);
        options.purpose = purpose;
        options.revocation = RevocationPolicy::Require;
        options.network = self.network;
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
    pub(crate) last: RefCell<Option<PathResult>>,
}

impl PathValidator for TsaPathValidator<'_> {
    fn validate(
        &self,
        signer: &[u8],
        untrusted: &[Vec<u8>],
        at: OffsetDateTime,
    ) -> Result<(), String> {
        let result =
            self.checker
                .validate(signer, untrusted, self.material, Purpose::TimeStamping, at);
        let answer = match &result {
            Ok(_) => Ok(()),
            Err(failure) => Err(format!("{} (at {})", failure.message, time_text(at))),
        };
        *self.last.borrow_mut() = Some(result);
        answer
    }
}
