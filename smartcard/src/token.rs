//! PKCS#11 tokens: what is on them (certificates and the key pairs they belong to, matched by
//! `CKA_ID`) and a card's key opened as an imza [`SigningKey`].
//!
//! Listing needs no PIN: certificates are public objects. The PIN is asked for only once the
//! token and the certificate to sign with are known, so a citizen with the wrong card in the
//! reader is told so before typing anything.

use std::path::Path;

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::Session;
use der::Decode;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use x509_cert::Certificate;

use imza_core::key::pkcs11::{
    find_token, module_context, KeySelector, PinSource, Pkcs11Key, Pkcs11Location, TokenSelector,
};
use imza_core::key::{KeyAlgorithm, SigningKey};
use imza_core::{clock, name, oids, CoreError};

use crate::CardError;

/// At most this many certificate objects are read from one token (a card holds a handful).
pub const MAX_CERTIFICATES_PER_TOKEN: usize = 64;
/// Certificates larger than this are listed as unreadable rather than parsed.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// A token as `imza card list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TokenSummary {
    /// The slot description: for a chip card, the name of the reader it sits in.
    pub slot: String,
    pub label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    pub pin: PinFlags,
    pub certificates: Vec<TokenCertificate>,
}

/// The token's PIN state, from its `CK_TOKEN_INFO` flags (PKCS#11 v2.40 §3.2).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct PinFlags {
    pub login_required: bool,
    /// The PIN is typed on the reader's PIN pad, not on the computer.
    pub protected_authentication_path: bool,
    /// A wrong PIN was entered since the last successful login.
    pub count_low: bool,
    pub final_try: bool,
    pub locked: bool,
}

/// A certificate object on a token, with what is known of its key pair.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TokenCertificate {
    /// `CKA_ID` in hex: the link to the key pair, and what `--cert-id` takes.
    pub id: String,
    pub label: String,
    pub subject: String,
    pub issuer: String,
    /// Serial number in hex.
    pub serial: String,
    /// keyUsage bits by their RFC 5280 names; empty when the extension is absent.
    pub key_usage: Vec<&'static str>,
    pub not_before: String,
    pub not_after: String,
    /// A private key object with the same `CKA_ID` is visible. Tokens that hide private keys
    /// until login (SoftHSM) show only the public key before the PIN is given.
    pub private_key: bool,
    pub public_key: bool,
    #[serde(skip)]
    pub der: Vec<u8>,
    #[serde(skip)]
    key_usage_flags: Option<flagset::FlagSet<KeyUsages>>,
}

impl TokenCertificate {
    /// True when the certificate may sign documents: keyUsage absent, or asserting
    /// nonRepudiation (contentCommitment) or digitalSignature.
    pub fn signs_documents(&self) -> bool {
        self.key_usage_flags.is_none_or(|flags| {
            flags.contains(KeyUsages::NonRepudiation) || flags.contains(KeyUsages::DigitalSignature)
        })
    }

    /// True when keyUsage asserts nonRepudiation: the qualified-signature certificate of an ID
    /// card, as opposed to its authentication one.
    pub fn is_non_repudiation(&self) -> bool {
        self.key_usage_flags
            .is_some_and(|flags| flags.contains(KeyUsages::NonRepudiation))
    }
}

/// Every initialised token `module` shows, with its certificates. No PIN is asked for.
pub fn list_tokens(module: &Path) -> Result<Vec<TokenSummary>, CardError> {
    let context = module_context(module)?;
    let slots = context.get_slots_with_token().map_err(|e| {
        CardError::TokenFailed(format!(
            "cannot list the slots of module {}: {e}",
            module.display()
        ))
    })?;
    let mut tokens = Vec::new();
    for slot in slots {
        // A card pulled between the two calls is simply not listed.
        let (Ok(info), Ok(slot_info)) = (context.get_token_info(slot), context.get_slot_info(slot))
        else {
            continue;
        };
        if !info.token_initialized() {
            continue;
        }
        let certificates = match context.open_ro_session(slot) {
            Ok(session) => read_certificates(&session)?,
            Err(_) => continue,
        };
        tokens.push(TokenSummary {
            slot: slot_info.slot_description().trim_end().to_string(),
            label: info.label().trim_end().to_string(),
            serial: info.serial_number().trim_end().to_string(),
            manufacturer: info.manufacturer_id().trim_end().to_string(),
            model: info.model().trim_end().to_string(),
            pin: PinFlags {
                login_required: info.login_required(),
                protected_authentication_path: info.protected_authentication_path(),
                count_low: info.user_pin_count_low(),
                final_try: info.user_pin_final_try(),
                locked: info.user_pin_locked(),
            },
            certificates,
        });
    }
    Ok(tokens)
}

/// The X.509 certificate objects of a session's token, each with its key pair's presence.
fn read_certificates(session: &Session) -> Result<Vec<TokenCertificate>, CardError> {
    let failed = |what: &str, e: cryptoki::error::Error| {
        CardError::TokenFailed(format!("{what} failed: {e}"))
    };
    let handles = session
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .map_err(|e| failed("searching the token for certificates", e))?;
    let mut certificates = Vec::new();
    for handle in handles.into_iter().take(MAX_CERTIFICATES_PER_TOKEN) {
        let Ok(attributes) = session.get_attributes(
            handle,
            &[
                AttributeType::Id,
                AttributeType::Label,
                AttributeType::Value,
            ],
        ) else {
            continue;
        };
        let (mut id, mut label, mut value) = (Vec::new(), String::new(), Vec::new());
        for attribute in attributes {
            match attribute {
                Attribute::Id(v) => id = v,
                Attribute::Label(v) => label = String::from_utf8_lossy(&v).into_owned(),
                Attribute::Value(v) => value = v,
                _ => {}
            }
        }
        if value.is_empty() || value.len() > MAX_CERTIFICATE_BYTES {
            continue;
        }
        let Ok(certificate) = Certificate::from_der(&value) else {
            continue;
        };
        let has = |class: ObjectClass| {
            !id.is_empty()
                && session
                    .find_objects(&[Attribute::Class(class), Attribute::Id(id.clone())])
                    .is_ok_and(|found| !found.is_empty())
        };
        let (private_key, public_key) =
            (has(ObjectClass::PRIVATE_KEY), has(ObjectClass::PUBLIC_KEY));
        certificates.push(describe_certificate(
            &certificate,
            value,
            id,
            label,
            private_key,
            public_key,
        ));
    }
    Ok(certificates)
}

fn describe_certificate(
    certificate: &Certificate,
    der: Vec<u8>,
    id: Vec<u8>,
    label: String,
    private_key: bool,
    public_key: bool,
) -> TokenCertificate {
    let tbs = &certificate.tbs_certificate;
    let key_usage_flags = tbs.extensions.as_deref().and_then(|extensions| {
        extensions
            .iter()
            .find(|e| e.extn_id == oids::EXT_KEY_USAGE)
            .and_then(|e| KeyUsage::from_der(e.extn_value.as_bytes()).ok())
            .map(|usage| usage.0)
    });
    const NAMES: [(KeyUsages, &str); 9] = [
        (KeyUsages::DigitalSignature, "digitalSignature"),
        (KeyUsages::NonRepudiation, "nonRepudiation"),
        (KeyUsages::KeyEncipherment, "keyEncipherment"),
        (KeyUsages::DataEncipherment, "dataEncipherment"),
        (KeyUsages::KeyAgreement, "keyAgreement"),
        (KeyUsages::KeyCertSign, "keyCertSign"),
        (KeyUsages::CRLSign, "cRLSign"),
        (KeyUsages::EncipherOnly, "encipherOnly"),
        (KeyUsages::DecipherOnly, "decipherOnly"),
    ];
    let key_usage = key_usage_flags
        .map(|flags| {
            NAMES
                .iter()
                .filter(|(bit, _)| flags.contains(*bit))
                .map(|(_, name)| *name)
                .collect()
        })
        .unwrap_or_default();
    TokenCertificate {
        id: hex::encode(&id),
        label,
        subject: name::format_dn(&tbs.subject),
        issuer: name::format_dn(&tbs.issuer),
        serial: hex::encode(tbs.serial_number.as_bytes()),
        key_usage,
        not_before: clock::rfc3339(clock::from_x509_time(&tbs.validity.not_before)),
        not_after: clock::rfc3339(clock::from_x509_time(&tbs.validity.not_after)),
        private_key,
        public_key,
        der,
        key_usage_flags,
    }
}

/// A token found by a [`TokenSelector`], with its certificates (read without a PIN).
#[derive(Clone, Debug)]
pub struct FoundToken {
    pub label: String,
    /// The slot description: for a chip card, the reader's name.
    pub slot: String,
    pub certificates: Vec<TokenCertificate>,
}

/// The token `selector` picks and its certificates, read without a PIN.
pub fn find_token_certificates(
    module: &Path,
    selector: &TokenSelector,
) -> Result<FoundToken, CardError> {
    let context = module_context(module)?;
    let (slot, info) = find_token(&context, module, selector)?;
    let label = info.label().trim_end().to_string();
    let description = context
        .get_slot_info(slot)
        .map(|s| s.slot_description().trim_end().to_string())
        .unwrap_or_default();
    let session = context.open_ro_session(slot).map_err(|e| {
        CardError::TokenFailed(format!("cannot open a session on token {label:?}: {e}"))
    })?;
    let certificates = read_certificates(&session)?;
    Ok(FoundToken {
        label,
        slot: description,
        certificates,
    })
}

/// A key on a card or token with the certificate it signs under: an imza [`SigningKey`].
pub struct CardKey {
    key: Pkcs11Key,
    certificate: Vec<u8>,
    /// The slot description (a card's reader), to tell a pulled card from other failures.
    slot: String,
}

impl std::fmt::Debug for CardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// How to find the key to sign with.
#[derive(Clone, Debug)]
pub struct CardKeyRequest<'a> {
    pub module: &'a Path,
    pub token: TokenSelector,
    /// `CKA_ID` of the certificate; `None` picks the one signing certificate on the token.
    pub cert_id: Option<Vec<u8>>,
    /// Sign RSA keys with RSASSA-PSS instead of PKCS#1 v1.5.
    pub rsa_pss: bool,
}

impl CardKey {
    /// Finds the token and the certificate (without a PIN), then gets the PIN and opens the
    /// private key with the certificate's `CKA_ID`. The key's public key must be the
    /// certificate's: a card whose key was replaced without a new certificate is refused.
    pub fn open(request: &CardKeyRequest<'_>, pin: &PinSource) -> Result<Self, CardError> {
        let token = find_token_certificates(request.module, &request.token)
            .map_err(|e| explain_missing_token(e, &request.token))?;
        let token_label = &token.label;
        let chosen =
            choose_certificate(token_label, &token.certificates, request.cert_id.as_deref())?;
        let id = hex::decode(&chosen.id).map_err(|e| CardError::Token(e.to_string()))?;
        let mut key =
            Pkcs11Key::open_with(request.module, &request.token, &KeySelector::Id(id), pin)
                .map_err(|e| explain_pin_error(e, &token.slot))?;
        let certificate = Certificate::from_der(&chosen.der)
            .map_err(|e| CoreError::malformed("certificate on the token", e))?;
        let cert_spki = der::Encode::to_der(&certificate.tbs_certificate.subject_public_key_info)
            .map_err(CoreError::der)?;
        if cert_spki != key.public_key_der()? {
            return Err(CardError::Token(format!(
                "the key with id {} on token {token_label:?} does not match its certificate \
                 ({}); re-enroll the card",
                chosen.id, chosen.subject
            )));
        }
        if request.rsa_pss {
            key.use_rsa_pss()?;
        }
        Ok(CardKey {
            key,
            certificate: chosen.der.clone(),
            slot: token.slot.clone(),
        })
    }

    /// The signer's certificate (DER), as read from the token.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    pub fn key(&self) -> &Pkcs11Key {
        &self.key
    }

    /// Whatever the module made of it (CKR_DEVICE_REMOVED, CKR_DEVICE_ERROR, ...), a card no
    /// longer in its reader is the one thing the citizen needs to hear.
    fn explain_signing_failure(&self, e: CoreError) -> CoreError {
        if !self.slot.is_empty() && card_gone_from(&self.slot) {
            CoreError::Pkcs11(format!(
                "the card was removed from reader {:?} during signing; insert it and sign again",
                self.slot
            ))
        } else {
            e
        }
    }
}

impl SigningKey for CardKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.key.algorithm()
    }

    fn public_key_der(&self) -> Result<Vec<u8>, CoreError> {
        self.key.public_key_der()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        self.key
            .sign(message)
            .map_err(|e| self.explain_signing_failure(e))
    }

    /// A digest computed elsewhere (a page's hash through `imza agent`), with the same
    /// word for a card pulled meanwhile as [`CardKey::sign`].
    fn sign_digest(
        &self,
        algorithm: imza_core::key::DigestAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, CoreError> {
        self.key
            .sign_digest(algorithm, digest)
            .map_err(|e| self.explain_signing_failure(e))
    }

    fn describe(&self) -> String {
        self.key.describe()
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        self.key.signature_algorithm()
    }
}

/// True when PC/SC shows `reader` without a card, or no longer shows it at all. pcscd notices
/// a pulled card on its next poll of the reader, so a card still shown is asked about again
/// for up to [`REMOVAL_NOTICE`] (this runs only after a failed signature).
fn card_gone_from(reader: &str) -> bool {
    let deadline = std::time::Instant::now() + REMOVAL_NOTICE;
    loop {
        let gone = match crate::reader::list_readers() {
            Ok(readers) => readers
                .iter()
                .find(|r| r.name == reader)
                .is_none_or(|r| !r.card_present),
            // PC/SC itself is gone: so is the card, as far as signing goes.
            Err(CardError::PcscdNotRunning) => true,
            Err(_) => false,
        };
        if gone || std::time::Instant::now() >= deadline {
            return gone;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// How long a failed signature waits for pcscd to report a pulled card.
const REMOVAL_NOTICE: std::time::Duration = std::time::Duration::from_secs(2);

/// A token that was not found, explained from PC/SC when a card was meant: the smart card
/// service is down, the reader is empty, or the reader is not there.
fn explain_missing_token(error: CardError, selector: &TokenSelector) -> CardError {
    let card_meant = matches!(selector, TokenSelector::Reader(_) | TokenSelector::Only);
    if !card_meant {
        return error;
    }
    match (crate::reader::list_readers(), selector) {
        (Err(pcsc), _) => pcsc,
        (Ok(readers), TokenSelector::Reader(wanted)) => {
            let wanted_lower = wanted.to_lowercase();
            let matching: Vec<_> = readers
                .iter()
                .filter(|r| r.name.to_lowercase().contains(&wanted_lower))
                .collect();
            match matching.as_slice() {
                [] => CardError::ReaderNotFound {
                    wanted: wanted.clone(),
                    attached: if readers.is_empty() {
                        "none".to_string()
                    } else {
                        readers
                            .iter()
                            .map(|r| format!("{:?}", r.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                },
                [one] if !one.card_present => CardError::NoCard {
                    reader: one.name.clone(),
                },
                _ => error,
            }
        }
        (Ok(readers), _) if readers.is_empty() => CardError::NoReader,
        (Ok(readers), _) if readers.iter().all(|r| !r.card_present) => {
            CardError::NoCardInAnyReader {
                readers: readers
                    .iter()
                    .map(|r| format!("{:?}", r.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        }
        _ => error,
    }
}

/// A rejected or locked PIN, told as exactly as the card allows. PKCS#11 only has flags
/// ("count low", "final try"); when the token is a PIV card in a PC/SC reader, the card itself
/// says how many tries are left (an empty VERIFY, which spends none).
fn explain_pin_error(error: CoreError, slot_description: &str) -> CardError {
    let rejected = matches!(
        error,
        CoreError::Pkcs11PinIncorrect { .. } | CoreError::Pkcs11PinLocked { .. }
    );
    if !rejected || slot_description.is_empty() {
        return error.into();
    }
    let state = crate::piv::PivCard::connect(Some(slot_description))
        .and_then(|mut card| card.pin_tries_left());
    match state {
        Ok(crate::piv::PinState::TriesLeft(tries_left)) => CardError::PinIncorrect { tries_left },
        Ok(crate::piv::PinState::Blocked) => CardError::PinLocked,
        // Not a PIV card, no PC/SC, or the card says the PIN is verified: keep the token's words.
        _ => error.into(),
    }
}

/// The certificate to sign with: the one with `cert_id`, else the only document-signing
/// certificate with a key pair, preferring nonRepudiation (an ID card's qualified-signature
/// certificate) over digitalSignature alone (its authentication certificate).
pub fn choose_certificate<'c>(
    token_label: &str,
    certificates: &'c [TokenCertificate],
    cert_id: Option<&[u8]>,
) -> Result<&'c TokenCertificate, CardError> {
    let listing = || {
        certificates
            .iter()
            .map(|c| format!("{} {} [{}]", c.id, c.subject, c.key_usage.join(",")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if let Some(wanted) = cert_id {
        let wanted = hex::encode(wanted);
        return certificates.iter().find(|c| c.id == wanted).ok_or_else(|| {
            CardError::Token(format!(
                "no certificate with id {wanted} on token {token_label:?}; it holds: {}",
                if certificates.is_empty() {
                    "none".to_string()
                } else {
                    listing()
                }
            ))
        });
    }
    let signing: Vec<&TokenCertificate> = certificates
        .iter()
        .filter(|c| c.signs_documents() && !c.id.is_empty())
        .collect();
    let preferred: Vec<&TokenCertificate> = signing
        .iter()
        .copied()
        .filter(|c| c.is_non_repudiation())
        .collect();
    match (preferred.as_slice(), signing.as_slice()) {
        ([one], _) | ([], [one]) => Ok(one),
        (_, []) => Err(CardError::Token(format!(
            "token {token_label:?} holds no certificate for signing{}; enroll the card first \
             (`imza card enroll`)",
            if certificates.is_empty() {
                String::new()
            } else {
                format!(" (it holds: {})", listing())
            }
        ))),
        _ => Err(CardError::Token(format!(
            "token {token_label:?} holds several signing certificates ({}); choose one with \
             --cert-id",
            listing()
        ))),
    }
}

/// Generates a key pair on the token `selector` picks, labelled `key_label`, for enrollment
/// on a PKCS#11 token (SoftHSM2, an HSM, a card whose module can generate keys).
pub fn generate_on_token(
    module: &Path,
    selector: &TokenSelector,
    key_label: &str,
    algorithm: KeyAlgorithm,
    pin: &PinSource,
) -> Result<Pkcs11Key, CardError> {
    let context = module_context(module)?;
    let (_, info) = find_token(&context, module, selector)?;
    let location = Pkcs11Location {
        module: module.to_path_buf(),
        token_label: info.label().trim_end().to_string(),
        key_label: key_label.to_string(),
    };
    Ok(Pkcs11Key::generate(&location, algorithm, pin)?)
}
