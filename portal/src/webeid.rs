//! The Web eID authentication token (format `web-eid:1.0` and `web-eid:1.1`), what `imza agent`
//! hands the login page and the page posts to the portal: relying parties meet a format they
//! already know from Estonia's Web eID.
//!
//! ```json
//! { "format": "web-eid:1.1", "appVersion": "https://…",
//!   "unverifiedCertificate": "<base64 DER: the authentication certificate>",
//!   "algorithm": "ES384",
//!   "signature": "<base64: over hash(origin) ‖ hash(nonce)>",
//!   "unverifiedSigningCertificates": [ { "certificate": "<base64 DER>",
//!       "supportedSignatureAlgorithms": [ { "cryptoAlgorithm": "ECC",
//!           "hashFunction": "SHA-384", "paddingScheme": "NONE" } ] } ] }
//! ```
//!
//! The signed data is `H(origin) ‖ H(nonce)`, `H` the algorithm's hash, the nonce hashed as the
//! UTF-8 bytes of its base64 text; the signature is the algorithm's over that data (ECDSA as
//! raw `r ‖ s`, as in JWS). The token carries neither the origin nor the nonce: the portal
//! checks the signature over **its own** origin and the nonce **it** stored for the browser
//! session, so a look-alike site that relays the real portal's nonce gets a token signed over
//! its own origin, which the portal refuses.
//!
//! Validation goes in a fixed order, and the types keep it: [`AuthToken::parse`] (format and
//! lengths) → [`AuthToken::check_certificate`] (time, clientAuth, certificate policy: a
//! phone's certificate cannot log in as a card) → the chain to the configured CAs with OCSP
//! required (the portal's validator, with `imza-validation`) → [`CheckedToken::verify`] (the
//! signature over the origin and the stored nonce). Every refusal is a [`TokenError`] saying
//! what was wrong; nothing in a token is trusted before the step that checks it.

use std::fmt;

use base64ct::{Base64, Encoding};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::{CertificatePolicies, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;

use imza_core::key::DigestAlgorithm;
use imza_core::oids;

/// Largest token accepted, in bytes of JSON: two certificates of a few KiB each in base64,
/// a signature, and the small fields.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Largest certificate accepted inside a token (DER bytes).
pub const MAX_CERTIFICATE_BYTES: usize = 6 * 1024;

/// Most signing certificates a `web-eid:1.1` token may list, and most algorithms each.
pub const MAX_SIGNING_CERTIFICATES: usize = 4;
const MAX_SIGNATURE_ALGORITHMS: usize = 16;

/// Random bytes in a challenge nonce: 256 bits.
pub const NONCE_BYTES: usize = 32;

/// How long a challenge nonce may be answered.
pub const NONCE_LIFETIME: Duration = Duration::minutes(5);

/// Longest `appVersion` kept (it is only informative).
const MAX_APP_VERSION: usize = 256;

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a Web eID token this portal reads: malformed JSON, a missing or oversized field,
    /// an unknown format or algorithm, bad base64 or DER.
    #[error("malformed authentication token: {0}")]
    Malformed(String),
    /// The authentication certificate is not valid at the time of the login.
    #[error("the authentication certificate is not valid now (valid {not_before} to {not_after})")]
    CertificateTime {
        not_before: String,
        not_after: String,
    },
    /// The certificate is not for client authentication (no keyUsage digitalSignature, or an
    /// extendedKeyUsage without id-kp-clientAuth).
    #[error("the certificate is not for logging in: {0}")]
    NotForAuthentication(String),
    /// None of the certificate's policies is one this login method accepts.
    #[error("the certificate's policies ({found}) are not accepted for this login")]
    PolicyRefused { found: String },
    /// A `web-eid:1.1` signing certificate that does not belong with the authentication
    /// certificate (another subject or issuer, not valid now, not for signatures).
    #[error("signing certificate {index}: {reason}")]
    SigningCertificate { index: usize, reason: String },
    /// The certificate does not chain to the portal's CAs, is revoked, or its status could
    /// not be had (OCSP is required): the validator's reason.
    #[error("the certificate is not accepted: {0}")]
    Chain(String),
    /// The origin the portal checks against is not a serialized origin.
    #[error("invalid origin {0:?}: expected scheme://host[:port]")]
    Origin(String),
    /// The nonce has expired (or was not issued by this portal's generator).
    #[error("the challenge nonce has expired; reload the login page")]
    NonceExpired,
    /// The signature is not the certificate key's over this origin and nonce.
    #[error("the token's signature does not verify over this site's origin and challenge")]
    Signature,
}

fn malformed(what: impl fmt::Display) -> TokenError {
    TokenError::Malformed(what.to_string())
}

/// A challenge nonce: [`NONCE_BYTES`] random bytes, base64; answered once, within
/// [`NONCE_LIFETIME`] of `issued_at`. The portal stores it with the browser session and
/// removes it when a token is checked against it, whatever the outcome.
#[derive(Clone, PartialEq, Eq)]
pub struct ChallengeNonce {
    text: String,
    issued_at: OffsetDateTime,
}

impl fmt::Debug for ChallengeNonce {
    /// Not the nonce itself: it is as good as a login attempt while it lives.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChallengeNonce")
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl ChallengeNonce {
    /// A new nonce from the operating system's random generator (through OpenSSL).
    pub fn generate(now: OffsetDateTime) -> Result<ChallengeNonce, openssl::error::ErrorStack> {
        let mut bytes = [0u8; NONCE_BYTES];
        openssl::rand::rand_bytes(&mut bytes)?;
        Ok(ChallengeNonce {
            text: Base64::encode_string(&bytes),
            issued_at: now,
        })
    }

    /// A stored nonce, as [`ChallengeNonce::as_str`] gave it, issued at `issued_at`.
    pub fn from_stored(text: String, issued_at: OffsetDateTime) -> ChallengeNonce {
        ChallengeNonce { text, issued_at }
    }

    /// The base64 text sent to the page (and signed over, hashed as its UTF-8 bytes).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }

    /// Whether it may still be answered at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        now >= self.issued_at && now - self.issued_at <= NONCE_LIFETIME
    }
}

/// The signature algorithms of Web eID tokens (JWS names, RFC 7518 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAlgorithm {
    Es256,
    Es384,
    Es512,
    Ps256,
    Ps384,
    Ps512,
    Rs256,
    Rs384,
    Rs512,
}

impl TokenAlgorithm {
    fn parse(name: &str) -> Result<TokenAlgorithm, TokenError> {
        Ok(match name {
            "ES256" => TokenAlgorithm::Es256,
            "ES384" => TokenAlgorithm::Es384,
            "ES512" => TokenAlgorithm::Es512,
            "PS256" => TokenAlgorithm::Ps256,
            "PS384" => TokenAlgorithm::Ps384,
            "PS512" => TokenAlgorithm::Ps512,
            "RS256" => TokenAlgorithm::Rs256,
            "RS384" => TokenAlgorithm::Rs384,
            "RS512" => TokenAlgorithm::Rs512,
            _ => return Err(malformed("unsupported algorithm")),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenAlgorithm::Es256 => "ES256",
            TokenAlgorithm::Es384 => "ES384",
            TokenAlgorithm::Es512 => "ES512",
            TokenAlgorithm::Ps256 => "PS256",
            TokenAlgorithm::Ps384 => "PS384",
            TokenAlgorithm::Ps512 => "PS512",
            TokenAlgorithm::Rs256 => "RS256",
            TokenAlgorithm::Rs384 => "RS384",
            TokenAlgorithm::Rs512 => "RS512",
        }
    }

    /// The hash of the signed data's two halves and of the signature itself.
    pub fn digest(self) -> DigestAlgorithm {
        match self {
            TokenAlgorithm::Es256 | TokenAlgorithm::Ps256 | TokenAlgorithm::Rs256 => {
                DigestAlgorithm::Sha256
            }
            TokenAlgorithm::Es384 | TokenAlgorithm::Ps384 | TokenAlgorithm::Rs384 => {
                DigestAlgorithm::Sha384
            }
            TokenAlgorithm::Es512 | TokenAlgorithm::Ps512 | TokenAlgorithm::Rs512 => {
                DigestAlgorithm::Sha512
            }
        }
    }

    fn is_ecdsa(self) -> bool {
        matches!(
            self,
            TokenAlgorithm::Es256 | TokenAlgorithm::Es384 | TokenAlgorithm::Es512
        )
    }

    /// The X.509 AlgorithmIdentifier the signature is checked under.
    fn algorithm_identifier(self) -> spki::AlgorithmIdentifierOwned {
        let oid = |oid| spki::AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        };
        match self {
            TokenAlgorithm::Es256 => oid(oids::ECDSA_WITH_SHA256),
            TokenAlgorithm::Es384 => oid(oids::ECDSA_WITH_SHA384),
            TokenAlgorithm::Es512 => oid(oids::ECDSA_WITH_SHA512),
            TokenAlgorithm::Rs256 => oid(oids::SHA256_WITH_RSA),
            TokenAlgorithm::Rs384 => oid(oids::SHA384_WITH_RSA),
            TokenAlgorithm::Rs512 => oid(oids::SHA512_WITH_RSA),
            TokenAlgorithm::Ps256 | TokenAlgorithm::Ps384 | TokenAlgorithm::Ps512 => {
                imza_core::alg::rsa_pss_algorithm(self.digest())
            }
        }
    }
}

/// A signing certificate of a `web-eid:1.1` token, with the algorithms the card offers for it.
#[derive(Clone, Debug)]
pub struct SigningCertificate {
    pub der: Vec<u8>,
    certificate: Certificate,
    pub algorithms: Vec<SupportedAlgorithm>,
}

/// One of `supportedSignatureAlgorithms` (Web eID's names).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedAlgorithm {
    pub crypto_algorithm: String,
    pub hash_function: String,
    pub padding_scheme: String,
}

impl SupportedAlgorithm {
    fn check(&self) -> Result<(), TokenError> {
        let crypto = ["ECC", "RSA"].contains(&self.crypto_algorithm.as_str());
        let hash = [
            "SHA-224", "SHA-256", "SHA-384", "SHA-512", "SHA3-224", "SHA3-256", "SHA3-384",
            "SHA3-512",
        ]
        .contains(&self.hash_function.as_str());
        let padding = ["NONE", "PKCS1.5", "PSS"].contains(&self.padding_scheme.as_str());
        if crypto && hash && padding {
            Ok(())
        } else {
            Err(malformed(
                "unsupported signature algorithm in supportedSignatureAlgorithms",
            ))
        }
    }
}

/// The token's fields as sent. Unknown fields are ignored, here and in the signing
/// certificate entries, as Web eID's own validators do: a later minor version may add some.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenFields {
    format: Option<String>,
    unverified_certificate: Option<String>,
    algorithm: Option<String>,
    signature: Option<String>,
    app_version: Option<String>,
    unverified_signing_certificates: Option<Vec<SigningFields>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigningFields {
    certificate: Option<String>,
    supported_signature_algorithms: Option<Vec<SupportedAlgorithm>>,
}

/// A token whose format and lengths are right: nothing in it is trusted yet.
#[derive(Clone, Debug)]
pub struct AuthToken {
    /// `web-eid:1`, `web-eid:1.0` or `web-eid:1.1`.
    pub format: String,
    pub app_version: Option<String>,
    pub algorithm: TokenAlgorithm,
    certificate_der: Vec<u8>,
    certificate: Certificate,
    signature: Vec<u8>,
    signing_certificates: Vec<SigningCertificate>,
}

/// What a format string says: `Some(minor)` for a 1.x format this portal reads.
fn format_minor(format: &str) -> Option<u32> {
    match format.strip_prefix("web-eid:1")? {
        "" => Some(0),
        rest => rest.strip_prefix('.')?.parse().ok().filter(|m| *m <= 1),
    }
}

fn required<'a>(field: &'a Option<String>, name: &str) -> Result<&'a str, TokenError> {
    match field.as_deref() {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(malformed(format!("'{name}' is missing or empty"))),
    }
}

fn certificate_from_base64(text: &str, what: &str) -> Result<(Vec<u8>, Certificate), TokenError> {
    if text.len() > MAX_CERTIFICATE_BYTES.div_ceil(3) * 4 {
        return Err(malformed(format!(
            "{what} is longer than {MAX_CERTIFICATE_BYTES} bytes"
        )));
    }
    let der = Base64::decode_vec(text).map_err(|_| malformed(format!("{what} is not base64")))?;
    let certificate = Certificate::from_der(&der)
        .map_err(|e| malformed(format!("{what} is not a certificate: {e}")))?;
    Ok((der, certificate))
}

impl AuthToken {
    /// Reads a token: JSON of at most [`MAX_TOKEN_BYTES`], a `web-eid:1.x` format (x ≤ 1),
    /// the certificate, algorithm and signature present and well formed, signing certificates
    /// exactly when the format is 1.1.
    pub fn parse(json: &[u8]) -> Result<AuthToken, TokenError> {
        if json.len() > MAX_TOKEN_BYTES {
            return Err(malformed(format!("longer than {MAX_TOKEN_BYTES} bytes")));
        }
        let fields: TokenFields = serde_json::from_slice(json)
            .map_err(|e| malformed(format!("not the token's JSON: {e}")))?;
        let format = required(&fields.format, "format")?;
        let minor = format_minor(format)
            .ok_or_else(|| malformed(format!("unsupported format {:?}", truncate(format))))?;
        let (certificate_der, certificate) = certificate_from_base64(
            required(&fields.unverified_certificate, "unverifiedCertificate")?,
            "unverifiedCertificate",
        )?;
        let algorithm = TokenAlgorithm::parse(required(&fields.algorithm, "algorithm")?)?;
        let signature_text = required(&fields.signature, "signature")?;
        if signature_text.len() > 1024 {
            return Err(malformed("'signature' is too long"));
        }
        let signature = Base64::decode_vec(signature_text)
            .map_err(|_| malformed("'signature' is not base64"))?;
        let app_version = match fields.app_version {
            Some(v) if v.len() > MAX_APP_VERSION => {
                return Err(malformed("'appVersion' is too long"))
            }
            other => other,
        };
        let signing_certificates = match (minor, fields.unverified_signing_certificates) {
            (0, None) => Vec::new(),
            (0, Some(_)) => {
                return Err(malformed(format!(
                    "'unverifiedSigningCertificates' is not allowed in format {format:?}"
                )))
            }
            (_, None) => {
                return Err(malformed(
                    "'unverifiedSigningCertificates' is missing for format web-eid:1.1",
                ))
            }
            (_, Some(list)) => signing_certificates(list)?,
        };
        Ok(AuthToken {
            format: format.to_string(),
            app_version,
            algorithm,
            certificate_der,
            certificate,
            signature,
            signing_certificates,
        })
    }

    /// The authentication certificate (DER), not yet validated.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The first checks on the certificate, before its chain: valid at `now`, for client
    /// authentication (keyUsage digitalSignature when keyUsage is present; id-kp-clientAuth
    /// when extendedKeyUsage is present), carrying one of `accepted_policies`; and for 1.1 the
    /// signing certificates belong with it (same subject and issuer, valid now, for
    /// non-repudiation). The chain and OCSP come next, then [`CheckedToken::verify`].
    pub fn check_certificate(
        self,
        now: OffsetDateTime,
        accepted_policies: &[ObjectIdentifier],
    ) -> Result<CheckedToken, TokenError> {
        check_time(&self.certificate, now)?;
        check_authentication_use(&self.certificate)?;
        check_policies(&self.certificate, accepted_policies)?;
        for (index, signing) in self.signing_certificates.iter().enumerate() {
            check_signing_certificate(&self.certificate, &signing.certificate, now)
                .map_err(|reason| TokenError::SigningCertificate { index, reason })?;
        }
        Ok(CheckedToken(self))
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}

fn signing_certificates(list: Vec<SigningFields>) -> Result<Vec<SigningCertificate>, TokenError> {
    if list.is_empty() || list.len() > MAX_SIGNING_CERTIFICATES {
        return Err(malformed(format!(
            "'unverifiedSigningCertificates' must list 1 to {MAX_SIGNING_CERTIFICATES} certificates"
        )));
    }
    list.into_iter()
        .map(|entry| {
            let (der, certificate) = certificate_from_base64(
                required(&entry.certificate, "certificate")?,
                "a signing certificate",
            )?;
            let algorithms = entry.supported_signature_algorithms.unwrap_or_default();
            if algorithms.is_empty() || algorithms.len() > MAX_SIGNATURE_ALGORITHMS {
                return Err(malformed(
                    "'supportedSignatureAlgorithms' is missing, empty or too long",
                ));
            }
            for algorithm in &algorithms {
                algorithm.check()?;
            }
            Ok(SigningCertificate {
                der,
                certificate,
                algorithms,
            })
        })
        .collect()
}

pub(crate) fn check_time(certificate: &Certificate, now: OffsetDateTime) -> Result<(), TokenError> {
    let validity = &certificate.tbs_certificate.validity;
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    let at = now.unix_timestamp();
    if at < 0 || (at as u64) < not_before || (at as u64) > not_after {
        return Err(TokenError::CertificateTime {
            not_before: validity.not_before.to_string(),
            not_after: validity.not_after.to_string(),
        });
    }
    Ok(())
}

pub(crate) fn check_authentication_use(certificate: &Certificate) -> Result<(), TokenError> {
    let tbs = &certificate.tbs_certificate;
    let unreadable = |what: &str, e: der::Error| malformed(format!("unreadable {what}: {e}"));
    if let Some((_, usage)) = tbs
        .get::<KeyUsage>()
        .map_err(|e| unreadable("keyUsage", e))?
    {
        if !usage.0.contains(KeyUsages::DigitalSignature) {
            return Err(TokenError::NotForAuthentication(
                "keyUsage lacks digitalSignature".into(),
            ));
        }
    }
    match tbs
        .get::<ExtendedKeyUsage>()
        .map_err(|e| unreadable("extendedKeyUsage", e))?
    {
        Some((_, eku)) if !eku.0.contains(&oids::KP_CLIENT_AUTH) => Err(
            TokenError::NotForAuthentication("extendedKeyUsage lacks id-kp-clientAuth".into()),
        ),
        Some(_) => Ok(()),
        None => Err(TokenError::NotForAuthentication(
            "no extendedKeyUsage id-kp-clientAuth".into(),
        )),
    }
}

pub(crate) fn check_policies(
    certificate: &Certificate,
    accepted: &[ObjectIdentifier],
) -> Result<(), TokenError> {
    let policies: Vec<ObjectIdentifier> = certificate
        .tbs_certificate
        .get::<CertificatePolicies>()
        .map_err(|e| malformed(format!("unreadable certificatePolicies: {e}")))?
        .map(|(_, p)| p.0.into_iter().map(|info| info.policy_identifier).collect())
        .unwrap_or_default();
    if policies.iter().any(|p| accepted.contains(p)) {
        return Ok(());
    }
    let found = if policies.is_empty() {
        "none".to_string()
    } else {
        policies
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(TokenError::PolicyRefused { found })
}

fn check_signing_certificate(
    authentication: &Certificate,
    signing: &Certificate,
    now: OffsetDateTime,
) -> Result<(), String> {
    let (auth, sign) = (&authentication.tbs_certificate, &signing.tbs_certificate);
    if sign.subject != auth.subject {
        return Err("its subject is not the authentication certificate's".into());
    }
    if sign.issuer != auth.issuer {
        return Err("its issuer is not the authentication certificate's".into());
    }
    check_time(signing, now).map_err(|e| e.to_string())?;
    match sign.get::<KeyUsage>() {
        Ok(Some((_, usage))) if usage.0.contains(KeyUsages::NonRepudiation) => Ok(()),
        Ok(_) => Err("it is not for signatures (no keyUsage nonRepudiation)".into()),
        Err(e) => Err(format!("unreadable keyUsage: {e}")),
    }
}

/// A token whose certificate passed the checks before the chain. The caller validates the
/// chain to its CAs with OCSP required, then [`CheckedToken::verify`]s the signature.
#[derive(Clone, Debug)]
pub struct CheckedToken(AuthToken);

/// A token verified over the portal's origin and nonce: whose certificate logged in.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    pub format: String,
    pub algorithm: TokenAlgorithm,
    pub certificate_der: Vec<u8>,
    /// The `web-eid:1.1` signing certificates (DER), checked to belong with it.
    pub signing_certificates: Vec<Vec<u8>>,
}

impl CheckedToken {
    /// The authentication certificate (DER), for the chain and OCSP.
    pub fn certificate_der(&self) -> &[u8] {
        &self.0.certificate_der
    }

    /// The signing certificates of a 1.1 token (DER), for the chain and OCSP too.
    pub fn signing_certificates(&self) -> impl Iterator<Item = &[u8]> {
        self.0.signing_certificates.iter().map(|s| s.der.as_slice())
    }

    /// Checks the signature over `origin` (the portal's own, e.g. `https://portal.gov.az`) and
    /// the `nonce` the portal stored for this browser session, live at `now`.
    pub fn verify(
        self,
        origin: &str,
        nonce: &ChallengeNonce,
        now: OffsetDateTime,
    ) -> Result<VerifiedToken, TokenError> {
        check_origin(origin)?;
        if !nonce.is_live(now) {
            return Err(TokenError::NonceExpired);
        }
        let token = self.0;
        let data = signed_data(token.algorithm, origin, nonce.as_str());
        let spki = token
            .certificate
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| malformed(format!("unreadable public key: {e}")))?;
        let signature = match token.algorithm.is_ecdsa() {
            true => ecdsa_signature_der(&spki, token.algorithm, &token.signature)?,
            false => token.signature.clone(),
        };
        imza_core::verify::verify_signature(
            &spki,
            &token.algorithm.algorithm_identifier(),
            &data,
            &signature,
        )
        .map_err(|_| TokenError::Signature)?;
        Ok(VerifiedToken {
            format: token.format,
            algorithm: token.algorithm,
            certificate_der: token.certificate_der,
            signing_certificates: token
                .signing_certificates
                .into_iter()
                .map(|s| s.der)
                .collect(),
        })
    }
}

/// `H(origin) ‖ H(nonce)`, what the card signs (with the algorithm, which hashes it again).
pub fn signed_data(algorithm: TokenAlgorithm, origin: &str, nonce: &str) -> Vec<u8> {
    let digest = algorithm.digest();
    let mut data = digest.digest(origin.as_bytes());
    data.extend_from_slice(&digest.digest(nonce.as_bytes()));
    data
}

/// A serialized origin (RFC 6454 §6.2): `https://host[:port]`, or `http://` for loopback
/// development; no path, query, fragment or user information.
pub(crate) fn check_origin(origin: &str) -> Result<(), TokenError> {
    let bad = || TokenError::Origin(truncate(origin));
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| {
            origin.strip_prefix("http://").filter(|r| {
                r.starts_with("127.0.0.1") || r.starts_with("localhost") || r.starts_with("[::1]")
            })
        })
        .ok_or_else(bad)?;
    let ok = !rest.is_empty()
        && rest.len() <= 255
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The DER signature of a raw `r ‖ s` ECDSA signature, whose length must be twice the size of
/// the key's curve order.
fn ecdsa_signature_der(
    spki: &[u8],
    algorithm: TokenAlgorithm,
    raw: &[u8],
) -> Result<Vec<u8>, TokenError> {
    let key = openssl::pkey::PKey::public_key_from_der(spki)
        .map_err(|_| malformed("unreadable public key"))?;
    let ec = key
        .ec_key()
        .map_err(|_| malformed(format!("{} needs an EC key", algorithm.name())))?;
    let bits = ec.group().order_bits();
    let half = usize::try_from(bits.div_ceil(8)).map_err(|_| TokenError::Signature)?;
    if raw.len() != 2 * half {
        return Err(malformed(format!(
            "an {} signature for this key is {} bytes (r ‖ s), not {}",
            algorithm.name(),
            2 * half,
            raw.len()
        )));
    }
    imza_core::key::ecdsa_raw_to_der(raw).map_err(|_| TokenError::Signature)
}
