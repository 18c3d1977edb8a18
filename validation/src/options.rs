//! The inputs of RFC 5280 §6.1.1 and what imza adds around them: the purpose the target is
//! checked for, how revocation is required, network use and the work budget.

use der::asn1::ObjectIdentifier;
use time::OffsetDateTime;

/// What a validation is asked to establish.
#[derive(Clone, Debug)]
pub struct ValidationOptions {
    /// The time the path must be valid at (§6.1.1 (b)): now, or a proof-of-existence time.
    /// Certificates' validity and revocation are judged at this time: a revocation dated after
    /// it does not invalidate the path.
    pub time: OffsetDateTime,
    /// user-initial-policy-set (§6.1.1 (c)); empty means {anyPolicy}.
    pub initial_policy_set: Vec<ObjectIdentifier>,
    /// initial-explicit-policy (§6.1.1 (f)).
    pub initial_explicit_policy: bool,
    /// initial-policy-mapping-inhibit (§6.1.1 (e)).
    pub initial_policy_mapping_inhibit: bool,
    /// initial-any-policy-inhibit (§6.1.1 (g)).
    pub initial_any_policy_inhibit: bool,
    /// What the target certificate must be fit for (key usage / extended key usage).
    pub purpose: Purpose,
    /// Whether revocation is checked, and whether missing information fails the path.
    pub revocation: RevocationPolicy,
    /// Allow fetching CRLs (CRL distribution points) and OCSP responses (AIA) over HTTP with
    /// the validator's [`crate::Fetcher`].
    pub network: bool,
    /// Most intermediate certificates allowed between target and anchor (`None`: the budget's
    /// depth limit only).
    pub max_intermediates: Option<usize>,
    /// Bounds on the work a hostile pool can cause.
    pub budget: Budget,
    /// The strict checks that are policies, not RFC 5280 rules for verifiers: all on by
    /// default.
    pub strictness: Strictness,
}

/// The strict checks that are a relying party's policy rather than RFC 5280's rules for
/// verifiers, as one value a caller carries from its flags to every validation it makes: all
/// on by default ([`Strictness::default`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strictness {
    /// Check the trust anchor's own certificate: valid at [`ValidationOptions::time`],
    /// basicConstraints cA, keyUsage keyCertSign when keyUsage is present, no critical
    /// extension this validator does not understand; and let its constraints initialise the
    /// path's inputs (RFC 5937 §2): pathLenConstraint, certificatePolicies (unless anyPolicy),
    /// policyConstraints and inhibitAnyPolicy. RFC 5280 §6.1.1 (d) takes an anchor as a
    /// name and a key only; RFC 5937 lets a relying party use the certificate's content, as
    /// WebPKI verifiers do. A policy, on by default. (The anchor's name constraints apply
    /// whatever this says.)
    pub check_anchor_certificate: bool,
    /// An extendedKeyUsage in a CA certificate on the path (the anchor's too, when
    /// [`Strictness::check_anchor_certificate`]) limits what the CA may certify: the
    /// target's [`Purpose`] must be in it, or anyExtendedKeyUsage. RFC 5280 leaves EKU to the
    /// end entity; the WebPKI verifiers (Go, NSS, rustls-webpki) nest it. A policy, on by default.
    pub ca_extended_key_usage_constrains_path: bool,
    /// Refuse certificates and CRLs that break what RFC 5280 requires of a conforming CA
    /// (see [`crate::Rfc5280Violation`], [`crate::CrlViolation`]). The RFC binds the issuer,
    /// not the verifier; refusing is a strict verifier's choice, on by default. Legacy suites
    /// (NIST PKITS has non-critical policyConstraints and a negative serial number) turn it off.
    pub require_rfc5280_conformance: bool,
    /// The smallest RSA modulus, in bits, of a key on the path (the anchor's included) and of
    /// a delegated OCSP responder's key. A policy: 2048 by default (NIST SP 800-131A); `0`
    /// accepts any.
    pub min_rsa_modulus_bits: usize,
}

impl Default for Strictness {
    /// The anchor certificate checked, CA EKUs nested, RFC 5280 conformance required, RSA ≥ 2048.
    fn default() -> Strictness {
        Strictness {
            check_anchor_certificate: true,
            ca_extended_key_usage_constrains_path: true,
            require_rfc5280_conformance: true,
            min_rsa_modulus_bits: DEFAULT_MIN_RSA_MODULUS_BITS,
        }
    }
}

/// The default [`ValidationOptions::min_rsa_modulus_bits`].
pub const DEFAULT_MIN_RSA_MODULUS_BITS: usize = 2048;

impl ValidationOptions {
    /// RFC 5280 defaults at `time`: any policy, no explicit policy, mapping and anyPolicy
    /// allowed, any purpose, revocation required, no network, the default budget; and the
    /// strict checks on: the anchor certificate, CA EKUs, RFC 5280 conformance, RSA ≥ 2048.
    pub fn at(time: OffsetDateTime) -> ValidationOptions {
        ValidationOptions {
            time,
            initial_policy_set: Vec::new(),
            initial_explicit_policy: false,
            initial_policy_mapping_inhibit: false,
            initial_any_policy_inhibit: false,
            purpose: Purpose::Any,
            revocation: RevocationPolicy::Require,
            network: false,
            max_intermediates: None,
            budget: Budget::default(),
            strictness: Strictness::default(),
        }
    }
}

/// What the target certificate is checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// No key usage or extended key usage requirement.
    Any,
    /// Electronic signatures: keyUsage digitalSignature or nonRepudiation (contentCommitment);
    /// an EKU, when present, must not exclude e-mail protection / document signing uses.
    Sign,
    /// Client authentication of a person (portal login): digitalSignature; EKU clientAuth when present.
    Auth,
    /// TLS server: EKU serverAuth (or anyExtendedKeyUsage) when present; digitalSignature or keyEncipherment.
    Server,
    /// TLS client: EKU clientAuth (or anyExtendedKeyUsage) when present; digitalSignature.
    Client,
    /// RFC 3161 time-stamping unit: EKU id-kp-timeStamping, which must be the only one and critical.
    TimeStamping,
    /// Delegated OCSP responder: EKU id-kp-OCSPSigning.
    OcspSigning,
}

/// How revocation is checked for every certificate on the path below the trust anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationPolicy {
    /// Not checked at all.
    Off,
    /// Checked with what is available; a certificate without information is reported as
    /// not checked, and does not fail the path.
    BestEffort,
    /// Every certificate must be covered by a usable CRL or OCSP response, or the path fails
    /// with [`crate::ValidationError::RevocationUnknown`] (the PKITS default).
    Require,
}

/// Caps on path building: a pool of mutually cross-signed certificates cannot make the
/// validator spin (every loop over untrusted input has a bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Signature verifications, over all candidate paths and CRLs.
    pub signature_checks: usize,
    /// Candidate paths tried.
    pub candidate_paths: usize,
    /// Certificates in one path, anchor excluded.
    pub max_depth: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            signature_checks: 200,
            candidate_paths: 100,
            max_depth: 10,
        }
    }
}
