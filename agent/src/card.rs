//! What the agent does with the card, for an origin already allowed: a Web eID authentication
//! token over that origin and a nonce (the card's authentication key, PIV slot 9A), the
//! signing certificate, and a signature of a hash (the signing key, PIV slot 9C, whose PIN the
//! card wants before every signature). The PIN is asked through [`Pinentry`] each time, after
//! the card and certificate are known to be there — nobody is asked for the PIN of a missing
//! card — with the requesting origin in the dialog. One card operation runs at a time.

use std::path::PathBuf;
use std::sync::Mutex;

use base64ct::{Base64, Encoding};
use serde::Serialize;
use zeroize::Zeroizing;

use imza_core::key::pkcs11::{PinSource, TokenSelector};
use imza_core::key::{DigestAlgorithm, KeyAlgorithm, SigningKey};
use imza_core::CoreError;
use imza_portal::webeid::{signed_data, TokenAlgorithm};
use imza_smartcard::token::{find_token_certificates, CardKey, CardKeyRequest, TokenCertificate};
use imza_smartcard::CardError;

use crate::pinentry::{PinRequest, Pinentry, PinentryError};

/// The `appVersion` of the tokens the agent makes.
pub const APP_VERSION: &str = concat!("imza-agent/", env!("CARGO_PKG_VERSION"));

/// Shortest and longest challenge nonce signed (Web eID: at least 256 bits, base64: 44
/// characters).
pub const MIN_NONCE_CHARS: usize = 44;
pub const MAX_NONCE_CHARS: usize = 128;

/// Why a card operation did not happen, as the page is told (see [`AgentError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The request itself is wrong: a nonce too short, a hash of the wrong length, a
    /// certificate that is not the card's.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NoCard(String),
    #[error("the card holds no {0} certificate")]
    NoCertificate(&'static str),
    #[error("the PIN is wrong{}", tries_text(*tries_left))]
    PinIncorrect { tries_left: Option<u8> },
    #[error("the PIN is locked after too many wrong tries; unblock it with the PUK")]
    PinLocked,
    #[error("the citizen cancelled")]
    Cancelled,
    #[error("{0}")]
    Pinentry(String),
    #[error("the card failed: {0}")]
    Card(String),
}

fn tries_text(tries_left: Option<u8>) -> String {
    match tries_left {
        Some(1) => ": 1 try left before the PIN locks".to_string(),
        Some(n) => format!(": {n} tries left before the PIN locks"),
        None => String::new(),
    }
}

impl AgentError {
    /// The machine-readable code the page's library turns into its message (Web eID's codes
    /// where Web eID has one).
    pub fn code(&self) -> &'static str {
        match self {
            AgentError::InvalidArgument(_) => "ERR_WEBEID_NATIVE_INVALID_ARGUMENT",
            AgentError::NoCard(_) => "ERR_IMZA_NO_CARD",
            AgentError::NoCertificate(_) => "ERR_IMZA_NO_CERTIFICATE",
            AgentError::PinIncorrect { .. } => "ERR_IMZA_PIN_INCORRECT",
            AgentError::PinLocked => "ERR_IMZA_PIN_LOCKED",
            AgentError::Cancelled => "ERR_WEBEID_USER_CANCELLED",
            AgentError::Pinentry(_) | AgentError::Card(_) => "ERR_WEBEID_NATIVE_FATAL",
        }
    }

    /// Tries left before the PIN locks, when the card said.
    pub fn tries_left(&self) -> Option<u8> {
        match self {
            AgentError::PinIncorrect { tries_left } => *tries_left,
            _ => None,
        }
    }
}

impl From<CardError> for AgentError {
    fn from(error: CardError) -> AgentError {
        match error {
            CardError::PinIncorrect { tries_left } => AgentError::PinIncorrect {
                tries_left: Some(tries_left),
            },
            CardError::PinLocked => AgentError::PinLocked,
            CardError::Core(CoreError::Pkcs11PinIncorrect { .. }) => {
                AgentError::PinIncorrect { tries_left: None }
            }
            CardError::Core(CoreError::Pkcs11PinLocked { .. }) => AgentError::PinLocked,
            e @ (CardError::PcscdNotRunning
            | CardError::NoReader
            | CardError::ReaderNotFound { .. }
            | CardError::NoCard { .. }
            | CardError::NoCardInAnyReader { .. }
            | CardError::CardRemoved { .. }
            | CardError::ReaderGone { .. }
            | CardError::SeveralCards { .. }) => AgentError::NoCard(e.to_string()),
            other => AgentError::Card(other.to_string()),
        }
    }
}

/// A Web eID authentication token (`web-eid:1.1` when the card has a signing certificate,
/// `web-eid:1.0` otherwise), as the page posts it to the portal.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationToken {
    pub format: &'static str,
    pub app_version: &'static str,
    pub unverified_certificate: String,
    pub algorithm: &'static str,
    pub signature: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified_signing_certificates: Option<Vec<SigningCertificate>>,
}

/// A signing certificate and what the card can sign with it (Web eID's
/// `getSigningCertificate` answer).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningCertificate {
    pub certificate: String,
    pub supported_signature_algorithms: Vec<SignatureAlgorithm>,
}

/// One of Web eID's signature algorithm descriptions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureAlgorithm {
    pub crypto_algorithm: &'static str,
    pub hash_function: &'static str,
    pub padding_scheme: &'static str,
}

/// A signature of a hash (Web eID's `sign` answer): ECDSA as raw `r ‖ s`, RSA PKCS#1 v1.5.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HashSignature {
    pub signature: String,
    pub signature_algorithm: SignatureAlgorithm,
}

/// The hash functions the agent signs (SHA-2; the card hashes nothing itself).
const HASH_FUNCTIONS: [(&str, DigestAlgorithm); 3] = [
    ("SHA-256", DigestAlgorithm::Sha256),
    ("SHA-384", DigestAlgorithm::Sha384),
    ("SHA-512", DigestAlgorithm::Sha512),
];

/// Where the card is and how to ask for its PIN.
pub struct CardAccess {
    module: PathBuf,
    token: TokenSelector,
    pinentry: Pinentry,
    /// One card operation at a time: PKCS#11 login state is per token and process, so two
    /// requests at once could share one PIN entry.
    busy: Mutex<()>,
}

impl CardAccess {
    /// The card `token` picks in PKCS#11 module `module`, PINs asked through `pinentry`.
    pub fn new(module: PathBuf, token: TokenSelector, pinentry: Pinentry) -> CardAccess {
        CardAccess {
            module,
            token,
            pinentry,
            busy: Mutex::new(()),
        }
    }

    /// A `web-eid:1.1` token: the authentication key signs `H(origin) ‖ H(nonce)` for
    /// `origin`, the `Origin` of the request (never one the page names).
    pub fn authenticate(
        &self,
        origin: &str,
        nonce: &str,
    ) -> Result<AuthenticationToken, AgentError> {
        let chars = nonce.chars().count();
        if !(MIN_NONCE_CHARS..=MAX_NONCE_CHARS).contains(&chars)
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b))
        {
            return Err(AgentError::InvalidArgument(format!(
                "the challenge nonce must be {MIN_NONCE_CHARS} to {MAX_NONCE_CHARS} base64 \
                 characters"
            )));
        }
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let certificates = self.certificates()?;
        let authentication = authentication_certificate(&certificates)?;
        let signing = signing_certificate(&certificates).ok();
        let description = format!(
            "{origin} asks you to log in with your ID card.\n\
             {origin} saytı şəxsiyyət vəsiqəniz ilə giriş istəyir.\n\n\
             {who}\n\nEnter the authentication PIN (PIN1) / PIN1 kodunu daxil edin",
            who = authentication.subject,
        );
        let key = self.open_key(authentication, &description)?;
        let algorithm = token_algorithm(key.algorithm());
        let der = key
            .sign(&signed_data(algorithm, origin, nonce))
            .map_err(|e| AgentError::from(CardError::from(e)))?;
        let signature = signature_as_sent(key.algorithm(), &der)?;
        let signing_certificates = signing.map(|c| vec![describe_signing(c)]);
        Ok(AuthenticationToken {
            format: if signing_certificates.is_some() {
                "web-eid:1.1"
            } else {
                "web-eid:1.0"
            },
            app_version: APP_VERSION,
            unverified_certificate: Base64::encode_string(&authentication.der),
            algorithm: algorithm.name(),
            signature: Base64::encode_string(&signature),
            unverified_signing_certificates: signing_certificates,
        })
    }

    /// The card's signing certificate (no PIN needed: certificates are public).
    pub fn signing_certificate(&self) -> Result<SigningCertificate, AgentError> {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let certificates = self.certificates()?;
        Ok(describe_signing(signing_certificate(&certificates)?))
    }

    /// Signs `hash` (base64, of `hash_function`) with the signing key, for `origin`, once the
    /// page names the card's signing certificate (base64 DER) as the one to sign with.
    pub fn sign(
        &self,
        origin: &str,
        certificate: &str,
        hash: &str,
        hash_function: &str,
    ) -> Result<HashSignature, AgentError> {
        let invalid = |what: &str| AgentError::InvalidArgument(what.to_string());
        let digest = HASH_FUNCTIONS
            .iter()
            .find(|(name, _)| *name == hash_function)
            .map(|(_, d)| *d)
            .ok_or_else(|| invalid("hashFunction must be SHA-256, SHA-384 or SHA-512"))?;
        let hash_bytes = Base64::decode_vec(hash).map_err(|_| invalid("the hash is not base64"))?;
        if hash_bytes.len() != digest.output_len() {
            return Err(invalid("the hash's length is not its hash function's"));
        }
        let wanted = Base64::decode_vec(certificate)
            .map_err(|_| invalid("the certificate is not base64"))?;
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let certificates = self.certificates()?;
        let signing = signing_certificate(&certificates)?;
        if signing.der != wanted {
            return Err(invalid(
                "the certificate is not this card's signing certificate",
            ));
        }
        let description = format!(
            "{origin} asks you to sign a document with your ID card.\n\
             {origin} saytı şəxsiyyət vəsiqəniz ilə sənəd imzalamağınızı istəyir.\n\n\
             {who}\n{hash_function}: {hex}\n\n\
             Enter the signing PIN (PIN2) / İmza PIN2 kodunu daxil edin",
            who = signing.subject,
            hex = hex_prefix(&hash_bytes),
        );
        let key = self.open_key(signing, &description)?;
        let der = key
            .sign_digest(digest, &hash_bytes)
            .map_err(|e| AgentError::from(CardError::from(e)))?;
        let signature = signature_as_sent(key.algorithm(), &der)?;
        Ok(HashSignature {
            signature: Base64::encode_string(&signature),
            signature_algorithm: SignatureAlgorithm {
                crypto_algorithm: crypto_name(key.algorithm()),
                hash_function: HASH_FUNCTIONS
                    .iter()
                    .find(|(_, d)| *d == digest)
                    .map(|(n, _)| *n)
                    .unwrap_or("SHA-256"),
                padding_scheme: padding_name(key.algorithm()),
            },
        })
    }

    fn certificates(&self) -> Result<Vec<TokenCertificate>, AgentError> {
        match find_token_certificates(&self.module, &self.token) {
            Ok(found) => Ok(found.certificates),
            Err(e) => Err(missing_card(e, &self.token)),
        }
    }

    /// Asks the PIN (describing the request) and opens the key of `certificate` with it.
    fn open_key(
        &self,
        certificate: &TokenCertificate,
        description: &str,
    ) -> Result<CardKey, AgentError> {
        let pin = self
            .pinentry
            .get_pin(&PinRequest {
                title: "imza".into(),
                description: description.to_string(),
                prompt: "PIN:".into(),
                error: None,
            })
            .map_err(|e| match e {
                PinentryError::Cancelled | PinentryError::TimedOut(_) => AgentError::Cancelled,
                other => AgentError::Pinentry(other.to_string()),
            })?;
        let id = hex::decode(&certificate.id)
            .map_err(|_| AgentError::Card("a certificate id is not hex".into()))?;
        let request = CardKeyRequest {
            module: &self.module,
            token: self.token.clone(),
            cert_id: Some(id),
            rsa_pss: false,
        };
        let key = CardKey::open(&request, &PinSource::Value(Zeroizing::new(pin.to_string())));
        drop(pin);
        Ok(key?)
    }
}

/// A token that is not there, worded as a missing card whatever the module said (the module
/// itself was loaded when the agent started).
fn missing_card(error: CardError, selector: &TokenSelector) -> AgentError {
    match AgentError::from(error) {
        AgentError::Card(said) => AgentError::NoCard(format!(
            "no ID card found ({selector}): {said}; insert the card and try again"
        )),
        other => other,
    }
}

/// The authentication certificate: keyUsage digitalSignature without nonRepudiation (PIV
/// slot 9A), with its key pair on the card.
fn authentication_certificate(
    certificates: &[TokenCertificate],
) -> Result<&TokenCertificate, AgentError> {
    one_of(certificates, "authentication", |c| {
        c.key_usage.contains(&"digitalSignature") && !c.is_non_repudiation()
    })
}

/// The signing certificate: keyUsage nonRepudiation (PIV slot 9C).
fn signing_certificate(certificates: &[TokenCertificate]) -> Result<&TokenCertificate, AgentError> {
    one_of(
        certificates,
        "signing",
        TokenCertificate::is_non_repudiation,
    )
}

fn one_of<'c>(
    certificates: &'c [TokenCertificate],
    what: &'static str,
    fits: impl Fn(&TokenCertificate) -> bool,
) -> Result<&'c TokenCertificate, AgentError> {
    let mut fitting = certificates
        .iter()
        .filter(|c| !c.id.is_empty() && (c.public_key || c.private_key) && fits(c));
    match (fitting.next(), fitting.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(AgentError::NoCertificate(what)),
        (Some(_), Some(_)) => Err(AgentError::Card(format!(
            "the card holds several {what} certificates"
        ))),
    }
}

fn describe_signing(certificate: &TokenCertificate) -> SigningCertificate {
    let algorithm = KeyAlgorithm::of_public_key(&spki_of(&certificate.der)).ok();
    let crypto = algorithm.map_or("ECC", crypto_name);
    let padding = algorithm.map_or("NONE", padding_name);
    SigningCertificate {
        certificate: Base64::encode_string(&certificate.der),
        supported_signature_algorithms: HASH_FUNCTIONS
            .iter()
            .map(|(name, _)| SignatureAlgorithm {
                crypto_algorithm: crypto,
                hash_function: name,
                padding_scheme: padding,
            })
            .collect(),
    }
}

fn spki_of(certificate: &[u8]) -> Vec<u8> {
    use der::{Decode, Encode};
    x509_cert::Certificate::from_der(certificate)
        .ok()
        .and_then(|c| c.tbs_certificate.subject_public_key_info.to_der().ok())
        .unwrap_or_default()
}

fn crypto_name(algorithm: KeyAlgorithm) -> &'static str {
    if algorithm.is_ec() {
        "ECC"
    } else {
        "RSA"
    }
}

fn padding_name(algorithm: KeyAlgorithm) -> &'static str {
    if algorithm.is_ec() {
        "NONE"
    } else {
        "PKCS1.5"
    }
}

/// The token algorithm a card key signs with: ES256 / ES384 by curve (the key's own hash),
/// RS256 for RSA.
pub fn token_algorithm(algorithm: KeyAlgorithm) -> TokenAlgorithm {
    match algorithm {
        KeyAlgorithm::EcP256 => TokenAlgorithm::Es256,
        KeyAlgorithm::EcP384 => TokenAlgorithm::Es384,
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            TokenAlgorithm::Rs256
        }
    }
}

/// A signature as Web eID sends it: ECDSA as raw `r ‖ s` of the curve's size (JWS, RFC 7518
/// §3.4), RSA as is.
fn signature_as_sent(algorithm: KeyAlgorithm, der: &[u8]) -> Result<Vec<u8>, AgentError> {
    let size = match algorithm {
        KeyAlgorithm::EcP256 => 32,
        KeyAlgorithm::EcP384 => 48,
        _ => return Ok(der.to_vec()),
    };
    let bad = |e: openssl::error::ErrorStack| AgentError::Card(format!("signature: {e}"));
    let signature = openssl::ecdsa::EcdsaSig::from_der(der).map_err(bad)?;
    let mut raw = signature.r().to_vec_padded(size).map_err(bad)?;
    raw.extend(signature.s().to_vec_padded(size).map_err(bad)?);
    Ok(raw)
}

/// The first bytes of a hash in hex, for the dialog: enough to compare with what the page
/// shows.
fn hex_prefix(bytes: &[u8]) -> String {
    let shown = hex::encode(&bytes[..bytes.len().min(16)]);
    if bytes.len() > 16 {
        format!("{shown}…")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_have_the_curve_size() {
        let key = imza_core::key::software::SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        for _ in 0..8 {
            let der = key.sign(b"data").unwrap();
            let raw = signature_as_sent(KeyAlgorithm::EcP256, &der).unwrap();
            assert_eq!(raw.len(), 64);
            assert_eq!(imza_core::key::ecdsa_raw_to_der(&raw).unwrap(), der);
        }
    }

    #[test]
    fn token_algorithms_follow_the_key() {
        assert_eq!(token_algorithm(KeyAlgorithm::EcP256).name(), "ES256");
        assert_eq!(token_algorithm(KeyAlgorithm::EcP384).name(), "ES384");
        assert_eq!(token_algorithm(KeyAlgorithm::Rsa2048).name(), "RS256");
    }
}
