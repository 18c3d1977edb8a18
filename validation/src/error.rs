//! Why a path, a certificate or a piece of revocation data was not accepted, with the facts
//! (which certificate, which time, which limit) a user needs to act on it.
//!
//! Callers (the signer's validation report, `imza cert verify`) match on the variants: the
//! variants below are a contract — add new ones freely, do not rename or remove these.

use std::sync::Arc;
use std::time::Duration;

use der::asn1::ObjectIdentifier;
use imza_core::clock::rfc3339;
use time::OffsetDateTime;

#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Input that does not parse (certificate, CRL, OCSP response, PEM): `what` it was, and
    /// the parser's error (a `der::Error` with its position, a UTF-8 error…), or what was
    /// wrong in words where no parser said it.
    #[error("malformed {what}: {source}")]
    Malformed {
        what: &'static str,
        source: Arc<dyn std::error::Error + Send + Sync>,
    },

    /// No chain from the target to any trust anchor could be built from the pool.
    #[error("no certification path to a trust anchor: {detail}")]
    NoPathFound { detail: String },

    /// Path building or checking stopped at `limit` of the [`crate::Budget`], after
    /// `signature_checks` signature checks over `candidate_paths` candidate paths; with what
    /// the most promising candidate had run into by then, when one had.
    #[error("path building budget exceeded: {limit}, after {signature_checks} signature checks over {candidate_paths} candidate paths{}", best_failure.as_ref().map(|e| format!("; the best candidate path so far failed: {e}")).unwrap_or_default())]
    BudgetExceeded {
        limit: BudgetLimit,
        signature_checks: usize,
        candidate_paths: usize,
        best_failure: Option<Box<ValidationError>>,
    },

    /// A signature on a certificate (or CRL, OCSP response) does not verify.
    #[error("bad signature on {subject}: {detail}")]
    BadSignature { subject: String, detail: String },

    /// A certificate on the path is expired at the validation time.
    #[error("{subject} expired at {} (validation time {})", rfc3339(*not_after), rfc3339(*time))]
    Expired {
        subject: String,
        not_after: OffsetDateTime,
        time: OffsetDateTime,
    },

    /// A certificate on the path is not yet valid at the validation time.
    #[error("{subject} is not valid before {} (validation time {})", rfc3339(*not_before), rfc3339(*time))]
    NotYetValid {
        subject: String,
        not_before: OffsetDateTime,
        time: OffsetDateTime,
    },

    /// A certificate on the path was revoked at or before the validation time.
    #[error("{subject} was revoked at {}{}", rfc3339(*revoked_at), reason.map(|r| format!(" ({})", imza_core::crl::reason_name(r))).unwrap_or_default())]
    Revoked {
        subject: String,
        revoked_at: OffsetDateTime,
        /// The CRL entry's or OCSP answer's reasonCode, when it gave one.
        reason: Option<x509_cert::ext::pkix::CrlReason>,
    },

    /// Revocation checking was required but no usable CRL or OCSP response covers a
    /// certificate (none found, stale, or its issuer could not be validated).
    #[error("revocation status of {subject} unknown: {detail}")]
    RevocationUnknown { subject: String, detail: String },

    /// A check of RFC 5280 §6.1 refused `subject`: basic constraints, path length, key
    /// usage, name constraints, policies, an unknown critical extension, a name chaining
    /// mismatch ([`ConstraintViolation`] says which).
    #[error("{subject}: {violation}")]
    Constraint {
        subject: String,
        violation: ConstraintViolation,
    },

    /// The target certificate is not fit for the requested purpose (key usage, extended key
    /// usage) or the peer name.
    #[error("{subject} is not valid for {purpose}: {problem}")]
    Purpose {
        subject: String,
        purpose: String,
        problem: PurposeProblem,
    },

    /// An algorithm imza does not accept (e.g. DSA with SHA-1 when refused, MD5).
    #[error("unsupported algorithm: {0}")]
    Unsupported(String),

    /// Fetching a CRL or OCSP response from `url` failed, for the reason `failure` gives.
    #[error("network: {url}: {failure}")]
    Network {
        url: String,
        #[source]
        failure: NetworkFailure,
    },

    /// The operating system's random generator gave no bytes for `purpose` (an OCSP nonce).
    #[error("cannot make {purpose}: {source}")]
    Randomness {
        purpose: &'static str,
        source: openssl::error::ErrorStack,
    },

    /// The trust anchor's own certificate is not fit to be one, or a constraint it carries
    /// refuses the path (RFC 5937 §2: its pathLenConstraint and policy extensions initialise
    /// the path validation inputs), with [`crate::Strictness::check_anchor_certificate`].
    #[error("trust anchor {anchor}: {problem}")]
    TrustAnchor {
        anchor: String,
        problem: AnchorProblem,
    },

    /// A name of a certificate on the path is outside the name constraints of the trust
    /// anchor's certificate (RFC 5937 §2: the anchor's constraints initialise the path's).
    #[error("{subject} (certificate {position} of the path, the target being 0): {violation}, by the name constraints of trust anchor {anchor}")]
    AnchorNameConstraints {
        anchor: String,
        position: usize,
        subject: String,
        violation: NameConstraintViolation,
    },

    /// A name of a certificate on the path that the name constraints above it refuse for
    /// what it is, not only for where it lies: a wildcard standing for excluded names, an
    /// rfc822Name that is no mailbox (RFC 5280 §4.2.1.10).
    #[error("{subject} (certificate {position} of the path, the target being 0): {violation}")]
    NameConstraint {
        position: usize,
        subject: String,
        violation: NameConstraintViolation,
    },

    /// A CA on the path has an extendedKeyUsage without the target's purpose (nor
    /// anyExtendedKeyUsage): it may not certify keys for it (with
    /// [`crate::Strictness::ca_extended_key_usage_constrains_path`]).
    #[error("{ca} (certificate {position} of the path, the target being 0) limits extendedKeyUsage to {}, which excludes {purpose} ({})", oid_list(ca_usages), oid_list(wanted))]
    CaExtendedKeyUsage {
        position: usize,
        ca: String,
        ca_usages: Vec<ObjectIdentifier>,
        purpose: &'static str,
        /// The purposes that would allow the target's use (any one of them).
        wanted: Vec<ObjectIdentifier>,
    },

    /// A certificate on the path breaks a rule RFC 5280 sets for conforming CAs (with
    /// [`crate::Strictness::require_rfc5280_conformance`]).
    #[error("{subject} (certificate {position} of the path, the target being 0) does not conform to RFC 5280: {violation}")]
    NonConforming {
        position: usize,
        subject: String,
        violation: Rfc5280Violation,
    },

    /// A CRL whose signature and signer are good breaks a rule of RFC 5280 §5 (with
    /// [`crate::Strictness::require_rfc5280_conformance`]).
    #[error("CRL of {issuer} does not conform to RFC 5280: {violation}")]
    NonConformingCrl {
        issuer: String,
        violation: CrlViolation,
    },

    /// An RSA key on the path is shorter than
    /// [`crate::Strictness::min_rsa_modulus_bits`].
    #[error("{subject} (certificate {position} of the path, the target being 0) has a {bits}-bit RSA key; at least {minimum} bits are required")]
    WeakRsaKey {
        position: usize,
        subject: String,
        bits: usize,
        minimum: usize,
    },

    /// The OCSP response that would settle the status of `subject` is signed by a delegated
    /// responder (RFC 6960 §4.2.2.2, judged outside the path) whose RSA key is shorter than
    /// [`crate::Strictness::min_rsa_modulus_bits`], and no other source settles it.
    #[error("revocation status of {subject} unknown: the OCSP response is signed by the delegated responder {responder}, whose RSA key has {bits} bits; at least {minimum} bits are required")]
    WeakOcspResponderKey {
        subject: String,
        responder: String,
        bits: usize,
        minimum: usize,
    },
}

/// Which limit of a [`crate::Budget`] a validation reached, with its value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetLimit {
    /// [`crate::Budget::signature_checks`].
    #[error("the limit of {limit} signature checks")]
    SignatureChecks { limit: usize },
    /// [`crate::Budget::candidate_paths`].
    #[error("the limit of {limit} candidate paths")]
    CandidatePaths { limit: usize },
    /// [`crate::Budget::max_depth`]: no path to an anchor from `target` within `limit`
    /// certificates.
    #[error(
        "no path to a trust anchor within {limit} certificates (the depth limit) from {target}"
    )]
    Depth { limit: usize, target: String },
}

/// Why fetching revocation data from a URL gave nothing to use: the HTTP exchange's failure
/// ([`imza_http::HttpError`], its URL kept beside it in [`ValidationError::Network`]), or a
/// [`crate::FetchCache`]'s refusal. Cloneable, so that a cache can remember a failure; the
/// cause of a connection or read failure is kept as the [`std::io::Error`] behind it, reachable
/// through [`std::error::Error::source`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum NetworkFailure {
    /// A scheme other than http:// or https://.
    Scheme,
    /// No connection, a timeout, or a failure before the status line.
    Unreachable { source: Arc<std::io::Error> },
    /// A status other than 200, with where it redirects to and the first line the server
    /// said (at most 200 printable characters of each).
    Status {
        status: u16,
        redirect: Option<String>,
        said: String,
    },
    /// A 200 answer longer than the limit.
    TooLarge { max_bytes: u64 },
    /// The answer's body broke off or could not be decoded.
    Unreadable { source: Arc<std::io::Error> },
    /// Not fetched: the request has started its `fetches` outbound fetches (the per-request
    /// cap of a [`crate::FetchCache`]).
    RequestFetchCap { fetches: usize },
    /// Not fetched: the request has spent `spent` on fetching (the per-request time cap).
    RequestTimeCap { spent: Duration },
    /// Not fetched: `in_flight` outbound fetches are in flight (the process-wide cap).
    ConcurrencyCap { in_flight: usize },
    /// The same fetch, in flight for another request, did not end within `waited`.
    SharedFetchTimedOut { waited: Duration },
    /// The fetch ended without an outcome (it unwound).
    Incomplete,
    /// The cache holds an answer of the other kind under this URL's key: `held` (an OCSP
    /// response, CRLs) where `asked` was asked for.
    WrongKind {
        asked: &'static str,
        held: &'static str,
    },
    /// A failure of an earlier fetch, remembered by a cache and not asked again before
    /// `until`.
    Remembered {
        failure: Box<NetworkFailure>,
        until: OffsetDateTime,
    },
}

impl NetworkFailure {
    /// An answer with HTTP status `status` and nothing said (a server with no such CRL or
    /// responder: 404).
    pub fn status(status: u16) -> NetworkFailure {
        NetworkFailure::Status {
            status,
            redirect: None,
            said: String::new(),
        }
    }

    /// [`NetworkFailure::Unreachable`] for `source` (a refused connection, say).
    pub fn unreachable(source: std::io::Error) -> NetworkFailure {
        NetworkFailure::Unreachable {
            source: Arc::new(source),
        }
    }
}

impl std::fmt::Display for NetworkFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkFailure::Scheme => f.write_str("only http:// and https:// URLs are fetched"),
            NetworkFailure::Unreachable { source } => write!(f, "cannot reach it: {source}"),
            NetworkFailure::Status {
                status,
                redirect,
                said,
            } => write!(
                f,
                "answered HTTP {}",
                imza_http::client::status_line(*status, redirect.as_deref(), said)
            ),
            NetworkFailure::TooLarge { max_bytes } => {
                write!(f, "answered more than {max_bytes} bytes")
            }
            NetworkFailure::Unreadable { source } => {
                write!(f, "cannot read the answer: {source}")
            }
            NetworkFailure::RequestFetchCap { fetches } => write!(
                f,
                "not fetched: this request has made its {fetches} outbound fetches (the \
                 per-request cap); try later"
            ),
            NetworkFailure::RequestTimeCap { spent } => write!(
                f,
                "not fetched: this request has spent its {} ms on fetching (the per-request \
                 time cap); try later",
                spent.as_millis()
            ),
            NetworkFailure::ConcurrencyCap { in_flight } => write!(
                f,
                "not fetched: {in_flight} outbound fetches are in flight (the process-wide \
                 cap); try later"
            ),
            NetworkFailure::SharedFetchTimedOut { waited } => write!(
                f,
                "the same fetch, in flight for another request, did not end within {} ms",
                waited.as_millis()
            ),
            NetworkFailure::Incomplete => f.write_str("the fetch did not complete"),
            NetworkFailure::WrongKind { asked, held } => {
                write!(f, "the cache holds {held} where {asked} was asked for")
            }
            NetworkFailure::Remembered { failure, until } => write!(
                f,
                "{failure} (remembered: not asked again before {})",
                rfc3339(*until)
            ),
        }
    }
}

/// The source of a connection or read failure is the [`std::io::Error`] itself (not the
/// `Arc` holding it), so that callers can downcast it and read its kind.
impl std::error::Error for NetworkFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetworkFailure::Unreachable { source } | NetworkFailure::Unreadable { source } => {
                Some(&**source)
            }
            NetworkFailure::Remembered { failure, .. } => failure.source(),
            _ => None,
        }
    }
}

impl From<imza_http::HttpError> for ValidationError {
    fn from(e: imza_http::HttpError) -> ValidationError {
        use imza_http::HttpError;
        let (url, failure) = match e {
            HttpError::Scheme { url } => (url, NetworkFailure::Scheme),
            HttpError::Unreachable { url, source } => (
                url,
                NetworkFailure::Unreachable {
                    source: Arc::new(source.into_io()),
                },
            ),
            HttpError::Status {
                url,
                status,
                redirect,
                said,
            } => (
                url,
                NetworkFailure::Status {
                    status,
                    redirect,
                    said,
                },
            ),
            HttpError::TooLarge { url, max_bytes } => (url, NetworkFailure::TooLarge { max_bytes }),
            HttpError::Read { url, source } => (
                url,
                NetworkFailure::Unreadable {
                    source: Arc::new(source.into_io()),
                },
            ),
        };
        ValidationError::Network { url, failure }
    }
}

/// Why a trust anchor's certificate is not fit to be one, or which of its constraints refuses
/// the path (RFC 5937 §2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorProblem {
    #[error("expired at {} (validation time {})", rfc3339(*not_after), rfc3339(*time))]
    Expired {
        not_after: OffsetDateTime,
        time: OffsetDateTime,
    },
    #[error("not valid before {} (validation time {})", rfc3339(*not_before), rfc3339(*time))]
    NotYetValid {
        not_before: OffsetDateTime,
        time: OffsetDateTime,
    },
    /// basicConstraints absent, or cA false.
    #[error("not a CA certificate (basicConstraints cA is absent or false)")]
    NotCa,
    /// A keyUsage without keyCertSign.
    #[error("keyUsage lacks keyCertSign")]
    NoKeyCertSign,
    #[error("unrecognised critical extension {}", oid_list(extensions))]
    UnknownCriticalExtension { extensions: Vec<ObjectIdentifier> },
    /// Extensions that do not decode or appear twice.
    #[error("unusable extensions: {}", errors.join("; "))]
    UnusableExtensions { errors: Vec<String> },
    /// Its basicConstraints pathLenConstraint (max_path_length) allows no more intermediate
    /// CA certificates (self-issued ones do not count, RFC 5280 §6.1.4 (l)).
    #[error("its pathLenConstraint {path_len_constraint} allows no more intermediate CA certificates, and {subject} (certificate {position} of the path, the target being 0) is one")]
    PathLength {
        path_len_constraint: u32,
        position: usize,
        subject: String,
    },
    /// Its certificatePolicies (without anyPolicy) bound the user-initial-policy-set: the
    /// path is valid for `path_policies` of the caller's acceptable policies, none of them
    /// the anchor's, and an explicit policy is required.
    #[error("the path is valid for {} among the acceptable policies, none of which is in its certificatePolicies ({}), and an explicit policy is required", oid_list(path_policies), oid_list(anchor_policies))]
    PolicyNotAsserted {
        anchor_policies: Vec<ObjectIdentifier>,
        path_policies: Vec<ObjectIdentifier>,
    },
    /// Its policyConstraints requireExplicitPolicy requires a policy valid for the path, and
    /// from `subject` on there is none.
    #[error("its requireExplicitPolicy {require_explicit_policy} requires a certificate policy valid for the path, and there is none at {subject} (certificate {position} of the path, the target being 0)")]
    ExplicitPolicyRequired {
        require_explicit_policy: u32,
        position: usize,
        subject: String,
    },
    /// Its inhibitAnyPolicy kept the anyPolicy of `subject` from standing for the policies
    /// expected, which left the path without a policy, and one is required.
    #[error("its inhibitAnyPolicy {inhibit_any_policy} does not let anyPolicy in {subject} (certificate {position} of the path, the target being 0) stand for a policy, which leaves the path none, and an explicit policy is required")]
    AnyPolicyInhibited {
        inhibit_any_policy: u32,
        position: usize,
        subject: String,
    },
    /// Its policyConstraints inhibitPolicyMapping refused the policy mappings of `subject`,
    /// and the path was left without a policy, and one is required.
    #[error("its inhibitPolicyMapping {inhibit_policy_mapping} refuses the policy mappings of {subject} (certificate {position} of the path, the target being 0), and the path is left without a policy, and an explicit policy is required")]
    PolicyMappingInhibited {
        inhibit_policy_mapping: u32,
        position: usize,
        subject: String,
    },
}

/// Why a certificate is not fit for a purpose or a peer name ([`ValidationError::Purpose`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PurposeProblem {
    /// A keyUsage that has none of the bits `wanted` (their RFC 5280 names).
    #[error("keyUsage {}", match wanted.as_slice() { [one] => format!("lacks {one}"), _ => format!("has neither {}", wanted.join(" nor ")) })]
    KeyUsage { wanted: Vec<&'static str> },
    /// An extendedKeyUsage (`present`) without the purpose `wanted` (or anyExtendedKeyUsage).
    #[error("extendedKeyUsage ({}) lacks {wanted}", oid_list(present))]
    ExtendedKeyUsage {
        present: Vec<ObjectIdentifier>,
        wanted: &'static str,
    },
    /// RFC 3161 §2.3: a TSA certificate's extendedKeyUsage must be id-kp-timeStamping alone,
    /// critical.
    #[error("extendedKeyUsage must be exactly id-kp-timeStamping and critical (RFC 3161 §2.3); it is {}{}", oid_list(present), if *critical { "" } else { ", not critical" })]
    TimeStampingUsage {
        present: Vec<ObjectIdentifier>,
        critical: bool,
    },
    /// No extendedKeyUsage where the purpose needs one (`wanted`).
    #[error("no extendedKeyUsage {wanted}")]
    NoExtendedKeyUsage { wanted: &'static str },
    /// RFC 6125 §6.4.4: the subject's common name is not used for peer names.
    #[error("the certificate has no subjectAltName (the subject's common name is not used)")]
    NoSubjectAltName,
    /// More subjectAltName entries than are looked at.
    #[error("the subjectAltName has {entries} entries, more than the {limit} looked at")]
    TooManySubjectAltNames { entries: usize, limit: usize },
    /// The reference name asked for is not a name of its kind.
    #[error("{name:?} is not a valid {kind}")]
    BadReferenceName { name: String, kind: &'static str },
    /// No subjectAltName entry matches the peer name; `presented` are the entries the
    /// certificate has (`DNS:…`, `email:…`, `IP:…`).
    #[error("no subjectAltName entry matches (the certificate names {presented})")]
    NoMatchingName { presented: String },
}

/// Which check of RFC 5280 §6.1 refused a certificate ([`ValidationError::Constraint`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConstraintViolation {
    /// Extensions that could not be read (each reason as the reader said it).
    #[error("unusable extensions: {}", errors.join("; "))]
    UnusableExtensions { errors: Vec<String> },
    /// §6.1.3 (a)(4): the certificate's issuer is not the subject of the one above it.
    #[error("issuer {issuer} is not the subject of the certificate above it")]
    IssuerMismatch { issuer: String },
    /// §6.1.3 (b)-(c): a name outside the permitted or inside the excluded subtrees.
    #[error("{0}")]
    Name(NameConstraintViolation),
    /// A nameConstraints extension that cannot be applied (as the reader said).
    #[error("{0}")]
    UnusableNameConstraints(String),
    /// §6.1.3 (f): no valid policy left while explicit_policy is 0.
    #[error("no certificate policy valid for the path, and an explicit policy is required")]
    ExplicitPolicyRequired,
    /// §6.1.4 (a): policyMappings mapping from or to anyPolicy.
    #[error("policyMappings maps anyPolicy")]
    MapsAnyPolicy,
    /// §6.1.4 (k): a version 1 or 2 certificate as an intermediate CA.
    #[error("a version 1 or 2 certificate cannot be an intermediate CA")]
    V1Intermediate,
    /// §6.1.4 (k): basicConstraints cA absent or false on an issuer.
    #[error(
        "not a CA (basicConstraints cA is absent or false) but issued a certificate on the path"
    )]
    NotCa,
    /// §6.1.4 (l): max_path_length reached 0 above a non-self-issued CA.
    #[error("path length constraint exceeded: a CA above allows no more intermediate CAs")]
    PathLength,
    /// §6.1.4 (n): a keyUsage without keyCertSign on an issuer.
    #[error("keyUsage lacks keyCertSign but the key signed a certificate on the path")]
    NoKeyCertSign,
    /// §6.1.4 (o), §6.1.5 (f): critical extensions this validator does not understand.
    #[error("unrecognised critical extension {}", oid_list(oids))]
    UnknownCriticalExtensions { oids: Vec<ObjectIdentifier> },
    /// §6.1.5 (g): no policy of the path is in the user-initial-policy-set (empty: anyPolicy).
    #[error("no certificate policy of the path is acceptable (user-initial-policy-set: {})", if initial_policy_set.is_empty() { "anyPolicy".to_string() } else { oid_list(initial_policy_set) })]
    NoAcceptablePolicy {
        initial_policy_set: Vec<ObjectIdentifier>,
    },
    /// Every path to a trust anchor has more than the caller's `max` intermediate
    /// certificates ([`crate::ValidationOptions::max_intermediates`]).
    #[error("no path to a trust anchor with at most {max} intermediate certificates")]
    TooManyIntermediates { max: usize },
}

/// How a name breaks the name constraints that apply to it (RFC 5280 §4.2.1.10).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameConstraintViolation {
    /// The name is outside every permitted subtree of its form in one constraining layer.
    #[error("{name} is not within the permitted name-constraint subtrees")]
    NotPermitted { name: String },
    /// The name is within an excluded subtree.
    #[error("{name} is within an excluded name-constraint subtree")]
    Excluded { name: String },
    /// A wildcard dNSName (`*.example.com`) stands for names of which some lie in the
    /// excluded subtree `excluded`.
    #[error("wildcard {name} stands for names within the excluded subtree {excluded}")]
    WildcardExcluded { name: String, excluded: String },
    /// An rfc822Name (or subject emailAddress) that is not `local-part@domain`, under
    /// rfc822Name constraints: it cannot be placed inside or outside a subtree.
    #[error("e-mail address {address:?} is malformed, and rfc822Name constraints apply to it")]
    MalformedEmail { address: String },
    /// A constraint on a name form imza does not evaluate applies to the certificate.
    #[error("a name constraint on {form} names, which imza cannot evaluate, applies to this certificate")]
    Unevaluable { form: &'static str },
    /// An iPAddress constraint that is not an address and a mask.
    #[error("iPAddress name constraint of {octets} octets (8 or 32 expected)")]
    BadIpConstraint { octets: usize },
}

/// A rule RFC 5280 sets for conforming CAs, broken by a certificate on the path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rfc5280Violation {
    /// §4.2.1.1: no authorityKeyIdentifier keyIdentifier in a certificate that is not
    /// self-signed.
    #[error("no authorityKeyIdentifier keyIdentifier (§4.2.1.1), and the certificate is not self-signed")]
    MissingAuthorityKeyIdentifier,
    /// §4.2.1.2: a CA certificate without subjectKeyIdentifier.
    #[error("a CA certificate without subjectKeyIdentifier (§4.2.1.2)")]
    MissingSubjectKeyIdentifier,
    /// §4.2.1.1, §4.2.1.2, §4.2.2.1: an extension conforming CAs MUST mark non-critical
    /// (authority or subject key identifier, authority information access) is critical.
    #[error("extension {extension} is critical; conforming CAs mark it non-critical (§4.2.1.1, §4.2.1.2, §4.2.2.1)")]
    MustNotBeCritical { extension: ObjectIdentifier },
    /// §4.2.1.11: policyConstraints not critical.
    #[error("policyConstraints is not critical (§4.2.1.11)")]
    NonCriticalPolicyConstraints,
    /// §4.2.1.6: an empty subject with a subjectAltName that is not critical.
    #[error("the subject is empty and subjectAltName is not critical (§4.2.1.6)")]
    NonCriticalSanWithEmptySubject,
    /// §4.2.1.12: an extendedKeyUsage with no purpose (SIZE (1..MAX)).
    #[error("extendedKeyUsage lists no purpose (§4.2.1.12)")]
    EmptyExtendedKeyUsage,
    /// §4.2.1.10: name constraints in a certificate that is not a CA's.
    #[error("nameConstraints in an end-entity certificate (§4.2.1.10)")]
    NameConstraintsInEndEntity,
    /// §4.2.1.3: keyCertSign asserted without basicConstraints cA.
    #[error("keyUsage keyCertSign without basicConstraints cA (§4.2.1.3)")]
    KeyCertSignWithoutCa,
    /// §4.1.2.2: a serial number that is zero or negative (its content octets).
    #[error(
        "serial number {} is not a positive integer (§4.1.2.2)",
        hex::encode_upper(serial)
    )]
    NonPositiveSerial { serial: Vec<u8> },
}

/// A rule of RFC 5280 §5 broken by a CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrlViolation {
    /// §5.2.3: conforming CRL issuers MUST include the CRL number.
    #[error("no cRLNumber (§5.2.3)")]
    MissingCrlNumber,
    /// §5.2.3: the CRL number is a non-critical extension.
    #[error("cRLNumber is critical (§5.2.3)")]
    CriticalCrlNumber,
}

/// OIDs as one comma-separated line, for messages.
pub(crate) fn oid_list(oids: &[ObjectIdentifier]) -> String {
    oids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ValidationError {
    /// A [`ValidationError::Malformed`] `what`, for `cause`: the parser's error, kept as the
    /// source, or a message.
    pub fn malformed(
        what: &'static str,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> ValidationError {
        ValidationError::Malformed {
            what,
            source: Arc::from(cause.into()),
        }
    }

    /// A [`ValidationError::Network`] for `url`.
    pub fn network(url: impl Into<String>, failure: NetworkFailure) -> ValidationError {
        ValidationError::Network {
            url: url.into(),
            failure,
        }
    }
}
