//! Signature checks on certificates and CRLs (RFC 5280 §6.1.3 (a)(1), §6.3.3 (g)), with a
//! bounded cache of verified signatures a caller can share between validators, and DSA
//! (RFC 3279 §2.3.2) including the inheritance of DSA domain parameters from the issuer's key
//! (RFC 5280 §6.1.4 (e)-(f)), which PKITS 4.1.4-4.1.6 exercise.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use der::asn1::Uint;
use der::{Decode, Encode};
use imza_core::oids;
use openssl::bn::BigNum;
use openssl::dsa::Dsa;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Verifier;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// A signed X.509 structure, Certificate or CertificateList (RFC 5280 §4.1.1, §5.1.1): what
/// checking its signature reads.
pub(crate) trait Signed {
    fn signature_algorithm(&self) -> &AlgorithmIdentifierOwned;
    /// The TBS part exactly as encoded: the signed bytes.
    fn tbs_bytes(&self) -> &[u8];
    /// SHA-256 of [`Signed::tbs_bytes`], part of a check's cache key.
    fn tbs_hash(&self) -> &[u8; 32];
    /// The signature BIT STRING's bytes.
    fn signature_bytes(&self) -> &[u8];
}

/// Where the TBS part lies in the DER of a signed structure (the first element inside its
/// outer SEQUENCE, exactly as encoded), and its SHA-256.
pub(crate) fn tbs_range_and_hash(
    der: &[u8],
) -> Result<(std::ops::Range<usize>, [u8; 32]), der::Error> {
    let mut reader = der::SliceReader::new(der)?;
    let _outer = der::Header::decode(&mut reader)?;
    let start = usize::try_from(der::Reader::position(&reader))?;
    let tbs = der::Reader::tlv_bytes(&mut reader)?;
    Ok((start..start + tbs.len(), openssl::sha::sha256(tbs)))
}

/// How many verified signatures a [`SignatureCache`] keeps by default.
pub const DEFAULT_SIGNATURE_CACHE_ENTRIES: usize = 65_536;

/// Outcomes of signature verifications, keyed by SHA-256 over the public key, the algorithm,
/// the hash of the signed bytes and the signature. Holding no secret, it can be shared by all
/// validators of a process (`Arc<SignatureCache>`): a certificate or CRL checked once is not
/// checked again. The oldest entries go first when it is full.
pub struct SignatureCache {
    capacity: usize,
    inner: Mutex<CacheEntries>,
}

#[derive(Default)]
struct CacheEntries {
    outcomes: HashMap<[u8; 32], bool>,
    order: VecDeque<[u8; 32]>,
}

impl Default for SignatureCache {
    fn default() -> SignatureCache {
        SignatureCache::new(DEFAULT_SIGNATURE_CACHE_ENTRIES)
    }
}

impl std::fmt::Debug for SignatureCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCache")
            .field("capacity", &self.capacity)
            .field("entries", &self.len())
            .finish()
    }
}

impl SignatureCache {
    /// A cache keeping at most `capacity` outcomes (0 keeps none).
    pub fn new(capacity: usize) -> SignatureCache {
        SignatureCache {
            capacity,
            inner: Mutex::new(CacheEntries::default()),
        }
    }

    /// Outcomes currently kept.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|c| c.outcomes.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies `signature` by the key `spki_der` under `algorithm` over the bytes whose
    /// SHA-256 is `signed_hash` (`signed` are those bytes), from the cache when it knows
    /// the answer.
    pub(crate) fn verify(
        &self,
        spki_der: &[u8],
        algorithm: &AlgorithmIdentifierOwned,
        signed_hash: &[u8; 32],
        signed: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureFailure> {
        let key = cache_key(spki_der, algorithm, signed_hash, signature);
        if let Ok(entries) = self.inner.lock() {
            if let Some(&ok) = entries.outcomes.get(&key) {
                return if ok {
                    Ok(())
                } else {
                    Err(SignatureFailure::Failed(
                        "the signature does not match the data (cached outcome)".into(),
                    ))
                };
            }
        }
        let outcome = verify_uncached(spki_der, algorithm, signed, signature);
        // Only definite outcomes are kept: an unsupported algorithm stays an error each time.
        let definite = match &outcome {
            Ok(()) => Some(true),
            Err(Failure::Mismatch(_)) => Some(false),
            Err(Failure::Other(_) | Failure::Unsupported(_)) => None,
        };
        if let (Some(ok), true) = (definite, self.capacity > 0) {
            if let Ok(mut entries) = self.inner.lock() {
                if entries.outcomes.insert(key, ok).is_none() {
                    entries.order.push_back(key);
                }
                while entries.order.len() > self.capacity {
                    if let Some(old) = entries.order.pop_front() {
                        entries.outcomes.remove(&old);
                    }
                }
            }
        }
        outcome.map_err(|f| match f {
            Failure::Mismatch(s) | Failure::Other(s) => SignatureFailure::Failed(s),
            Failure::Unsupported(s) => SignatureFailure::Unsupported(s),
        })
    }
}

fn cache_key(
    spki_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    signed_hash: &[u8; 32],
    signature: &[u8],
) -> [u8; 32] {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(&(spki_der.len() as u64).to_be_bytes());
    hasher.update(spki_der);
    let algorithm_der = algorithm.to_der().unwrap_or_default();
    hasher.update(&(algorithm_der.len() as u64).to_be_bytes());
    hasher.update(&algorithm_der);
    hasher.update(signed_hash);
    hasher.update(signature);
    hasher.finish()
}

/// Why a signature was not accepted, as [`SignatureCache::verify`] tells its callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SignatureFailure {
    /// It does not verify, or the key or signature cannot be read: a bad signature.
    Failed(String),
    /// Its algorithm, or the algorithm's parameters, are not accepted (SHA-1 without the
    /// caller's consent, MD5, RSASSA-PSS with a SHA-1 hash …): a refusal by policy, which
    /// says nothing about the bytes.
    Unsupported(String),
}

impl std::fmt::Display for SignatureFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureFailure::Failed(s) | SignatureFailure::Unsupported(s) => f.write_str(s),
        }
    }
}

impl SignatureFailure {
    /// The error for the signature on `subject`'s certificate (or CRL); `context` (may be
    /// empty) says which key it was checked with.
    pub(crate) fn into_error(self, subject: String, context: &str) -> crate::ValidationError {
        match self {
            SignatureFailure::Failed(detail) => crate::ValidationError::BadSignature {
                subject,
                detail: format!("{detail}{context}"),
            },
            SignatureFailure::Unsupported(detail) => crate::ValidationError::Unsupported(format!(
                "the signature on {subject}: {detail}{context}"
            )),
        }
    }
}

enum Failure {
    /// The signature was checked and does not match.
    Mismatch(String),
    /// Its algorithm is refused (not cached: a later policy may accept it).
    Unsupported(String),
    /// It could not be checked (key encoding).
    Other(String),
}

fn verify_uncached(
    spki_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), Failure> {
    match algorithm.oid {
        oids::DSA_WITH_SHA1 => verify_dsa(spki_der, MessageDigest::sha1(), signed, signature),
        oids::DSA_WITH_SHA256 => verify_dsa(spki_der, MessageDigest::sha256(), signed, signature),
        _ => imza_core::verify::verify_signature(spki_der, algorithm, signed, signature).map_err(
            |e| match e {
                imza_core::CoreError::BadSignature(s) => Failure::Mismatch(s),
                e @ (imza_core::CoreError::UnsupportedSignatureAlgorithm(_)
                | imza_core::CoreError::UnsupportedSignatureParameters { .. }) => {
                    Failure::Unsupported(e.to_string())
                }
                other => Failure::Other(other.to_string()),
            },
        ),
    }
}

/// Dss-Parms (RFC 3279 §2.3.2):
///
/// ```text
/// Dss-Parms  ::=  SEQUENCE  {
///     p             INTEGER,
///     q             INTEGER,
///     g             INTEGER  }
/// ```
#[derive(Clone, Debug, der::Sequence)]
struct DssParms {
    p: Uint,
    q: Uint,
    g: Uint,
}

fn bignum(value: &Uint) -> Result<BigNum, Failure> {
    BigNum::from_slice(value.as_bytes()).map_err(|e| Failure::Other(format!("DSA key: {e}")))
}

/// DSA (FIPS 186) over `signed` with the key in `spki_der`, whose parameters must be present
/// (inherited ones are filled in by [`with_inherited_dsa_parameters`] first).
fn verify_dsa(
    spki_der: &[u8],
    digest: MessageDigest,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), Failure> {
    let other = |e: &dyn std::fmt::Display| Failure::Other(format!("DSA key: {e}"));
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(|e| other(&e))?;
    if spki.algorithm.oid != oids::DSA {
        return Err(Failure::Mismatch(format!(
            "a DSA signature needs a DSA key, not {}",
            spki.algorithm.oid
        )));
    }
    let params: DssParms = spki
        .algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| Failure::Other("DSA key without domain parameters".into()))?
        .decode_as()
        .map_err(|e| other(&e))?;
    let y = Uint::from_der(spki.subject_public_key.raw_bytes()).map_err(|e| other(&e))?;
    let dsa = Dsa::from_public_components(
        bignum(&params.p)?,
        bignum(&params.q)?,
        bignum(&params.g)?,
        bignum(&y)?,
    )
    .map_err(|e| other(&e))?;
    let key = PKey::from_dsa(dsa).map_err(|e| other(&e))?;
    let ok = Verifier::new(digest, &key)
        .and_then(|mut v| {
            v.update(signed)?;
            v.verify(signature)
        })
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Failure::Mismatch(
            "the DSA signature does not match the data".into(),
        ))
    }
}

/// Whether `spki_der` is a DSA key that carries no domain parameters (and so takes its
/// issuer's, RFC 3279 §2.3.2).
pub(crate) fn needs_inherited_parameters(spki: &SubjectPublicKeyInfoOwned) -> bool {
    spki.algorithm.oid == oids::DSA
        && spki
            .algorithm
            .parameters
            .as_ref()
            .is_none_or(|p| p.is_null())
}

/// The working public key of §6.1.4 (e)-(f): `spki`, with the DSA parameters of the issuer's
/// working key `issuer_working_spki` when `spki` is a DSA key without its own.
pub(crate) fn with_inherited_dsa_parameters(
    spki: &SubjectPublicKeyInfoOwned,
    spki_der: &[u8],
    issuer_working_spki: &[u8],
) -> Vec<u8> {
    if !needs_inherited_parameters(spki) {
        return spki_der.to_vec();
    }
    let Ok(issuer) = SubjectPublicKeyInfoOwned::from_der(issuer_working_spki) else {
        return spki_der.to_vec();
    };
    if issuer.algorithm.oid != oids::DSA {
        return spki_der.to_vec();
    }
    let inherited = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oids::DSA,
            parameters: issuer.algorithm.parameters.clone(),
        },
        subject_public_key: spki.subject_public_key.clone(),
    };
    inherited.to_der().unwrap_or_else(|_| spki_der.to_vec())
}
