//! PKCS#11 keys: a CA key generated inside an HSM (SoftHSM2 in tests) or a key on a chip card.
//!
//! The private key never leaves the token: imza logs in (PKCS#11 v2.40 §5.6 `C_Login`), finds
//! the key by label and asks the token to sign. Tokens differ in what they can hash: SoftHSM
//! 2.6.1 has no `CKM_ECDSA_SHA256`, so ECDSA always hashes on the host and signs the digest with
//! plain `CKM_ECDSA`; RSA uses `CKM_SHA256_RSA_PKCS` when the token offers it, else the host
//! builds the PKCS#1 v1.5 DigestInfo (RFC 8017 §9.2) and signs it with raw `CKM_RSA_PKCS`.
//!
//! A module may be initialised only once per process, so every key loaded from the same module
//! shares one [`Pkcs11`] context. Login state belongs to the token and the whole process
//! (PKCS#11 v2.40 §5.6): while one key holds a logged-in session, opening another key on the
//! same token reuses that login, and the PIN given for it is not checked again.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::{AuthPin, Ulong};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::rsa::Rsa;
use zeroize::Zeroizing;

use super::{ecdsa_raw_to_der, DigestAlgorithm, KeyAlgorithm, SigningKey};
use crate::CoreError;

/// Length of the random `CKA_ID` that ties a generated private key to its public key.
const KEY_ID_LEN: usize = 16;

/// Where a PKCS#11 key lives: the module, the token (by label; slot ids change) and the key label.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pkcs11Location {
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: String,
}

/// Which token of a module to use. Slot ids are not stable (SoftHSM picks random ones, readers
/// renumber), so tokens are chosen by what they say about themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    /// `CKA_LABEL` of the token (trailing blanks ignored).
    Label(String),
    /// The token's serial number (trailing blanks ignored).
    Serial(String),
    /// The slot description contains this, ignoring case: for a chip card, the reader's name.
    Reader(String),
    /// The only token the module shows; an error naming them when there are several.
    Only,
}

impl fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSelector::Label(label) => write!(f, "token labelled {label:?}"),
            TokenSelector::Serial(serial) => write!(f, "token with serial number {serial:?}"),
            TokenSelector::Reader(reader) => write!(f, "token in reader {reader:?}"),
            TokenSelector::Only => f.write_str("the only token"),
        }
    }
}

/// Which private key on a token to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySelector {
    /// `CKA_LABEL` (how imza names the CA keys it generates).
    Label(String),
    /// `CKA_ID`, the PKCS#11 link between a certificate and its key pair (how cards are read).
    Id(Vec<u8>),
}

impl fmt::Display for KeySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySelector::Label(label) => write!(f, "{label:?}"),
            KeySelector::Id(id) => write!(f, "with id {}", hex::encode(id)),
        }
    }
}

/// Where the user PIN comes from. The PIN itself is never logged, stored or echoed.
#[derive(Clone)]
pub enum PinSource {
    /// Read from this environment variable.
    Env(String),
    /// Ask on the terminal without echo (or let the user type it on the reader's PIN pad, when
    /// the token has a protected authentication path).
    Prompt,
    /// Given directly (tests, or a caller that already asked).
    Value(Zeroizing<String>),
}

impl fmt::Debug for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSource::Env(var) => f.debug_tuple("Env").field(var).finish(),
            PinSource::Prompt => f.write_str("Prompt"),
            PinSource::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// What is presented to `C_Login`.
enum Credential {
    Pin(Zeroizing<String>),
    /// The PIN is entered on the reader (`CKF_PROTECTED_AUTHENTICATION_PATH`): `C_Login` with
    /// a NULL PIN.
    ProtectedPath,
}

impl PinSource {
    /// Fetches the PIN for `token`. Errors say where the PIN was looked for, never what it is.
    fn credential(&self, token: &TokenInfo) -> Result<Credential, CoreError> {
        let pin = match self {
            PinSource::Value(pin) => pin.clone(),
            PinSource::Env(var) => match std::env::var(var) {
                Ok(pin) => Zeroizing::new(pin),
                Err(std::env::VarError::NotPresent) => {
                    return Err(CoreError::PinUnavailable(format!(
                        "environment variable {var} is not set"
                    )))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(CoreError::PinUnavailable(format!(
                        "environment variable {var} is not valid UTF-8"
                    )))
                }
            },
            PinSource::Prompt if token.protected_authentication_path() => {
                return Ok(Credential::ProtectedPath)
            }
            PinSource::Prompt => {
                if !std::io::stdin().is_terminal() {
                    return Err(CoreError::PinUnavailable(format!(
                        "standard input is not a terminal, so the PIN of token {:?} cannot be \
                         asked for; pass it in an environment variable instead",
                        token.label()
                    )));
                }
                let prompt = format!("PIN for token {:?}: ", token.label());
                Zeroizing::new(rpassword::prompt_password(prompt).map_err(|e| {
                    CoreError::PinUnavailable(format!("cannot read the PIN from the terminal: {e}"))
                })?)
            }
        };
        // An empty PIN is a slip (Enter pressed, variable set but empty), not an attempt worth
        // spending one of a card's few tries on.
        if pin.is_empty() {
            return Err(CoreError::PinUnavailable(format!(
                "the PIN given for token {:?} is empty",
                token.label()
            )));
        }
        Ok(Credential::Pin(pin))
    }
}

/// How a message becomes a signature on this token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignScheme {
    /// The host hashes; the token signs the digest with `CKM_ECDSA` and returns raw `r || s`.
    EcdsaOnDigest,
    /// The token hashes and signs: `CKM_SHA256_RSA_PKCS` and its siblings.
    RsaHashOnToken,
    /// The host hashes and prefixes the DigestInfo; the token pads and signs with `CKM_RSA_PKCS`.
    RsaOnDigestInfo,
    /// RSASSA-PSS (RFC 8017 §8.1) with MGF1 over the same hash and a salt as long as the hash:
    /// hashed by the token (`CKM_SHA256_RSA_PKCS_PSS`…) when it offers that, else hashed on the
    /// host and signed with `CKM_RSA_PKCS_PSS`.
    RsaPss { hash_on_token: bool },
}

/// A token found by label, with an open read-write session logged in as the user.
struct TokenSession {
    context: Arc<Pkcs11>,
    slot: Slot,
    session: Session,
}

/// The logged-in session a key signs through. Sessions are `Send` but not `Sync`: [`Pkcs11Key`]
/// keeps this behind a mutex, so signatures from several threads take turns.
struct KeySession {
    token: TokenSession,
    private_key: ObjectHandle,
    /// Kept only for keys with `CKA_ALWAYS_AUTHENTICATE`, which need the PIN again before every
    /// signature (`C_Login` with `CKU_CONTEXT_SPECIFIC`); `None` for every other key.
    context_credential: Option<Credential>,
}

/// What imza learned about a key from its attributes.
struct KeyFacts {
    algorithm: KeyAlgorithm,
    /// `CKA_ID`, if the key has one.
    id: Option<Vec<u8>>,
    spki_der: Vec<u8>,
    scheme: SignScheme,
    always_authenticate: bool,
}

/// A private key object on a PKCS#11 token.
pub struct Pkcs11Key {
    location: Pkcs11Location,
    id: Option<Vec<u8>>,
    algorithm: KeyAlgorithm,
    spki_der: Vec<u8>,
    scheme: SignScheme,
    always_authenticate: bool,
    session: Mutex<KeySession>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("location", &self.location)
            .field("algorithm", &self.algorithm)
            .field("scheme", &self.scheme)
            .field("always_authenticate", &self.always_authenticate)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// Logs in and generates a new key pair on the token, labelled `location.key_label`.
    ///
    /// The private key is a token object that is private, sensitive, never extractable and
    /// allowed to sign (not to decrypt, unwrap or derive); both halves share a fresh random
    /// `CKA_ID`. Refuses if a private key with that label already exists on the token.
    pub fn generate(
        location: &Pkcs11Location,
        algorithm: KeyAlgorithm,
        pin: &PinSource,
    ) -> Result<Self, CoreError> {
        Self::generate_with_policy(location, algorithm, pin, false)
    }

    /// Like [`Pkcs11Key::generate`], also setting `CKA_ALWAYS_AUTHENTICATE` when
    /// `always_authenticate` is true: the token then wants the PIN again before every signature,
    /// as qualified-signature keys on ID cards do.
    ///
    /// Such a key signs in parts (see [`Pkcs11Key::sign`]), which SoftHSM 2.6.1 allows for RSA
    /// (`CKM_SHA256_RSA_PKCS`) but not for `CKM_ECDSA`.
    pub fn generate_with_policy(
        location: &Pkcs11Location,
        algorithm: KeyAlgorithm,
        pin: &PinSource,
        always_authenticate: bool,
    ) -> Result<Self, CoreError> {
        // Alone on the tokens of this process: the label check below and the creation are
        // atomic against each other, and no other session reads the object store meanwhile
        // (see [`OBJECT_STORE`]). Key generation is rare and slow; nothing waits on it in a hurry.
        let _alone = OBJECT_STORE.write().unwrap_or_else(|e| e.into_inner());
        let token_selector = TokenSelector::Label(location.token_label.clone());
        let (token, credential, _) = TokenSession::login(&location.module, &token_selector, pin)?;
        let session = &token.session;
        let key_selector = KeySelector::Label(location.key_label.clone());

        if !find_private_keys(session, &key_selector, &location.token_label)?.is_empty() {
            return Err(CoreError::Pkcs11Refused(format!(
                "a private key labelled {:?} already exists on token {:?}; refusing to create \
                 another with the same label",
                location.key_label, location.token_label
            )));
        }

        let mut id = vec![0u8; KEY_ID_LEN];
        openssl::rand::rand_bytes(&mut id).map_err(CoreError::openssl)?;
        let label = location.key_label.as_bytes().to_vec();
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.clone()),
            Attribute::Id(id.clone()),
        ];
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label),
            Attribute::Id(id),
        ];
        if always_authenticate {
            private.push(Attribute::AlwaysAuthenticate(true));
        }
        let mechanism = match (algorithm.curve_oid(), algorithm.rsa_bits()) {
            (Some(curve), _) => {
                public.push(Attribute::EcParams(curve.to_der().map_err(CoreError::der)?));
                private.push(Attribute::Derive(false));
                Mechanism::EccKeyPairGen
            }
            (None, Some(bits)) => {
                public.push(Attribute::ModulusBits(Ulong::new(bits.into())));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                private.push(Attribute::Decrypt(false));
                private.push(Attribute::Unwrap(false));
                Mechanism::RsaPkcsKeyPairGen
            }
            (None, None) => {
                return Err(CoreError::UnsupportedKey(format!(
                    "{algorithm} keys cannot be generated on a PKCS#11 token"
                )))
            }
        };
        let (public_key, private_key) = session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(|e| {
                CoreError::Pkcs11(format!(
                    "generating a {algorithm} key pair on token {:?} failed: {e}",
                    location.token_label
                ))
            })?;

        let facts =
            read_key_facts(&token, location, private_key, Some(public_key)).and_then(|facts| {
                if facts.algorithm == algorithm {
                    Ok(facts)
                } else {
                    Err(CoreError::Pkcs11(format!(
                        "token {:?} generated a {} key when asked for {algorithm}",
                        location.token_label, facts.algorithm
                    )))
                }
            });
        match facts {
            Ok(facts) => Ok(Self::new(location, token, private_key, credential, facts)),
            Err(e) => {
                // Leave no unusable pair behind under the requested label (best effort: the
                // token may be why we failed).
                let _ = session.destroy_object(private_key);
                let _ = session.destroy_object(public_key);
                Err(e)
            }
        }
    }

    /// Logs in and finds the existing private key labelled `location.key_label`.
    ///
    /// The public key object (found by the private key's `CKA_ID`, else by label) gives the
    /// SubjectPublicKeyInfo and the [`KeyAlgorithm`]; for an RSA key without one, the private
    /// key's public attributes do.
    pub fn open(location: &Pkcs11Location, pin: &PinSource) -> Result<Self, CoreError> {
        Self::open_with(
            &location.module,
            &TokenSelector::Label(location.token_label.clone()),
            &KeySelector::Label(location.key_label.clone()),
            pin,
        )
    }

    /// Logs in to the token `token` picks in `module` and opens the private key `key` picks:
    /// how a chip card's key is found (token by reader, key by the `CKA_ID` its certificate
    /// carries). [`Pkcs11Key::location`] then names the token and key by their labels.
    pub fn open_with(
        module: &Path,
        token: &TokenSelector,
        key: &KeySelector,
        pin: &PinSource,
    ) -> Result<Self, CoreError> {
        let _reading = OBJECT_STORE.read().unwrap_or_else(|e| e.into_inner());
        let (token, credential, token_label) = TokenSession::login(module, token, pin)?;
        let private_key = match find_private_keys(&token.session, key, &token_label)?.as_slice() {
            [handle] => *handle,
            [] => {
                return Err(match key {
                    KeySelector::Label(label) => CoreError::Pkcs11KeyNotFound {
                        label: label.clone(),
                        token: token_label,
                    },
                    KeySelector::Id(_) => CoreError::Pkcs11Refused(format!(
                        "no private key {key} on token {token_label:?}"
                    )),
                })
            }
            several => {
                return Err(CoreError::Pkcs11Refused(format!(
                    "{} private keys {key} are on token {token_label:?}; cannot tell which to use",
                    several.len(),
                )))
            }
        };
        let key_label = match key {
            KeySelector::Label(label) => label.clone(),
            KeySelector::Id(id) => token
                .session
                .get_attributes(private_key, &[AttributeType::Label])
                .ok()
                .and_then(|attributes| {
                    attributes.into_iter().find_map(|a| match a {
                        Attribute::Label(l) if !l.is_empty() => {
                            Some(String::from_utf8_lossy(&l).into_owned())
                        }
                        _ => None,
                    })
                })
                .unwrap_or_else(|| format!("id {}", hex::encode(id))),
        };
        let location = Pkcs11Location {
            module: module.to_path_buf(),
            token_label,
            key_label,
        };
        let facts = read_key_facts(&token, &location, private_key, None)?;
        Ok(Self::new(&location, token, private_key, credential, facts))
    }

    fn new(
        location: &Pkcs11Location,
        token: TokenSession,
        private_key: ObjectHandle,
        credential: Credential,
        facts: KeyFacts,
    ) -> Self {
        // Dropping the credential zeroes the PIN: only a context-specific login needs it again.
        let context_credential = facts.always_authenticate.then_some(credential);
        Pkcs11Key {
            location: location.clone(),
            id: facts.id,
            algorithm: facts.algorithm,
            spki_der: facts.spki_der,
            scheme: facts.scheme,
            always_authenticate: facts.always_authenticate,
            session: Mutex::new(KeySession {
                token,
                private_key,
                context_credential,
            }),
        }
    }

    /// Where the key lives.
    pub fn location(&self) -> &Pkcs11Location {
        &self.location
    }

    /// True when the token wants the PIN again before every signature
    /// (`CKA_ALWAYS_AUTHENTICATE`).
    pub fn always_authenticate(&self) -> bool {
        self.always_authenticate
    }

    /// The key's `CKA_ID`, which its certificate object shares.
    pub fn id(&self) -> Option<&[u8]> {
        self.id.as_deref()
    }

    /// Signs with RSASSA-PSS from now on (SHA-256 or the key's digest, MGF1 with the same
    /// hash, salt as long as the hash), as [`SigningKey::signature_algorithm`] then says.
    /// Refused for EC keys.
    pub fn use_rsa_pss(&mut self) -> Result<(), CoreError> {
        if self.algorithm.is_ec() {
            return Err(CoreError::UnsupportedKey(format!(
                "RSASSA-PSS needs an RSA key; key {:?} on token {:?} is {}",
                self.location.key_label, self.location.token_label, self.algorithm
            )));
        }
        let key = lock(&self.session);
        let mechanisms = key
            .token
            .context
            .get_mechanism_list(key.token.slot)
            .unwrap_or_default();
        let digest = self.algorithm.digest();
        let hash_on_token = mechanisms.contains(&pss_mechanism(digest, true).mechanism_type());
        if !hash_on_token && !mechanisms.contains(&MechanismType::RSA_PKCS_PSS) {
            return Err(CoreError::UnsupportedKey(format!(
                "token {:?} offers no RSASSA-PSS mechanism (CKM_RSA_PKCS_PSS)",
                self.location.token_label
            )));
        }
        drop(key);
        self.scheme = SignScheme::RsaPss { hash_on_token };
        Ok(())
    }

    /// Stores `certificate` (DER) on the token next to this key: a public `CKO_CERTIFICATE`
    /// token object with the key's `CKA_ID` and `label`, how PKCS#11 applications (and
    /// `imza card list`) find a key's certificate. A certificate already stored under the same
    /// id is replaced once the new one is in place.
    pub fn store_certificate(&self, certificate: &[u8], label: &str) -> Result<(), CoreError> {
        use x509_cert::Certificate;
        let cert = Certificate::from_der(certificate)
            .map_err(|e| CoreError::malformed("certificate", e))?;
        let id = self.id.clone().ok_or_else(|| {
            CoreError::Pkcs11Refused(format!(
                "key {:?} on token {:?} has no CKA_ID to tie a certificate to",
                self.location.key_label, self.location.token_label
            ))
        })?;
        let tbs = &cert.tbs_certificate;
        let template = [
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
            Attribute::Subject(tbs.subject.to_der().map_err(CoreError::der)?),
            Attribute::Issuer(tbs.issuer.to_der().map_err(CoreError::der)?),
            Attribute::SerialNumber(tbs.serial_number.to_der().map_err(CoreError::der)?),
            Attribute::Value(certificate.to_vec()),
        ];
        let _alone = OBJECT_STORE.write().unwrap_or_else(|e| e.into_inner());
        let key = lock(&self.session);
        let session = &key.token.session;
        let failed = |what: &str, e: CkError| {
            CoreError::Pkcs11(format!(
                "{what} on token {:?} failed: {e}",
                self.location.token_label
            ))
        };
        let old = session
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Id(id),
            ])
            .map_err(|e| failed("searching for certificates", e))?;
        session
            .create_object(&template)
            .map_err(|e| failed("storing the certificate", e))?;
        for handle in old {
            session
                .destroy_object(handle)
                .map_err(|e| failed("removing the previous certificate", e))?;
        }
        Ok(())
    }

    /// Destroys the key pair on the token: the private key, its public key and any certificate
    /// stored next to it (same `CKA_ID`; without an id, the public key with the same label).
    /// For undoing an enrollment that did not finish: the objects are gone for good.
    pub fn destroy(&self) -> Result<(), CoreError> {
        let _alone = OBJECT_STORE.write().unwrap_or_else(|e| e.into_inner());
        let key = lock(&self.session);
        let session = &key.token.session;
        let failed = |what: &str, e: CkError| {
            CoreError::Pkcs11(format!(
                "{what} of key {:?} on token {:?} failed: {e}",
                self.location.key_label, self.location.token_label
            ))
        };
        let mut companions = Vec::new();
        match &self.id {
            Some(id) => {
                for class in [ObjectClass::PUBLIC_KEY, ObjectClass::CERTIFICATE] {
                    companions.extend(
                        session
                            .find_objects(&[Attribute::Class(class), Attribute::Id(id.clone())])
                            .map_err(|e| failed("searching the objects", e))?,
                    );
                }
            }
            None => companions.extend(
                find_public_key(session, None, &self.location.key_label)
                    .map_err(|e| failed("searching the public key", e))?,
            ),
        }
        // The private key first: once it is gone, nothing can sign under this label any more.
        session
            .destroy_object(key.private_key)
            .map_err(|e| failed("destroying the private key", e))?;
        for handle in companions {
            session
                .destroy_object(handle)
                .map_err(|e| failed("destroying an object", e))?;
        }
        Ok(())
    }

    /// Signs with a `CKA_ALWAYS_AUTHENTICATE` key: `C_SignInit`, then `C_Login` with
    /// `CKU_CONTEXT_SPECIFIC` (PKCS#11 v2.40 §5.6), then the signature.
    ///
    /// cryptoki 0.12 offers single-part `C_Sign` only together with its own `C_SignInit`, which
    /// fails with `CKR_OPERATION_ACTIVE` once the operation is initialised; so the signature is
    /// made with `C_SignUpdate` + `C_SignFinal`. OpenSC accepts that for every mechanism (it
    /// buffers the input); SoftHSM only for the hash-and-sign ones.
    fn sign_with_context_login(
        &self,
        key: &KeySession,
        mechanism: &Mechanism,
        input: &[u8],
    ) -> Result<Vec<u8>, CoreError> {
        let session = &key.token.session;
        session
            .sign_init(mechanism, key.private_key)
            .map_err(|e| self.signing_failed(e))?;
        let result = match &key.context_credential {
            Some(credential) => login(
                &key.token,
                UserType::ContextSpecific,
                credential,
                &self.location.token_label,
            ),
            None => Err(CoreError::PinUnavailable(format!(
                "key {:?} on token {:?} needs the PIN before every signature, but none was kept",
                self.location.key_label, self.location.token_label
            ))),
        }
        .and_then(|()| {
            session
                .sign_update(input)
                .and_then(|()| session.sign_final())
                .map_err(|e| self.signing_failed(e))
        });
        if result.is_err() {
            // A failed login leaves the operation active, and every later C_SignInit would fail
            // with CKR_OPERATION_ACTIVE. C_SignFinal ends it whatever it returns.
            let _ = session.sign_final();
        }
        result
    }

    /// One signature on the token with `mechanism` over `input`, in the form X.509 carries it
    /// (a raw ECDSA `r || s` becomes DER).
    fn sign_on_token(&self, mechanism: &Mechanism, input: &[u8]) -> Result<Vec<u8>, CoreError> {
        let signature = {
            let _reading = OBJECT_STORE.read().unwrap_or_else(|e| e.into_inner());
            let key = lock(&self.session);
            if self.always_authenticate {
                self.sign_with_context_login(&key, mechanism, input)?
            } else {
                key.token
                    .session
                    .sign(mechanism, key.private_key, input)
                    .map_err(|e| self.signing_failed(e))?
            }
        };
        match self.scheme {
            SignScheme::EcdsaOnDigest => ecdsa_raw_to_der(&signature),
            SignScheme::RsaHashOnToken
            | SignScheme::RsaOnDigestInfo
            | SignScheme::RsaPss { .. } => Ok(signature),
        }
    }

    fn signing_failed(&self, e: CkError) -> CoreError {
        let hint = match &e {
            CkError::Pkcs11(RvError::UserNotLoggedIn, _) => {
                " (the token is no longer logged in; was it removed and reinserted?)"
            }
            CkError::Pkcs11(RvError::DeviceRemoved | RvError::TokenNotPresent, _) => {
                " (the token was removed)"
            }
            // SoftHSM ends the operation with CKR_FUNCTION_NOT_SUPPORTED, then reports
            // CKR_OPERATION_NOT_INITIALIZED, when asked to sign CKM_ECDSA in parts.
            CkError::Pkcs11(
                RvError::FunctionNotSupported | RvError::OperationNotInitialized,
                Function::SignUpdate,
            ) if self.always_authenticate => {
                " (this module cannot sign in parts with this mechanism, which a key needing the \
                 PIN before every signature requires here)"
            }
            _ => "",
        };
        CoreError::Pkcs11(format!(
            "signing with key {:?} on token {:?} failed: {e}{hint}",
            self.location.key_label, self.location.token_label
        ))
    }
}

impl SigningKey for Pkcs11Key {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> Result<Vec<u8>, CoreError> {
        Ok(self.spki_der.clone())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        let digest = self.algorithm.digest();
        let (mechanism, input): (Mechanism, Cow<[u8]>) = match self.scheme {
            SignScheme::EcdsaOnDigest => (Mechanism::Ecdsa, Cow::Owned(digest.digest(message))),
            SignScheme::RsaHashOnToken => (rsa_hash_mechanism(digest), Cow::Borrowed(message)),
            SignScheme::RsaOnDigestInfo => {
                let mut info = digest.pkcs1_digest_info_prefix().to_vec();
                info.extend_from_slice(&digest.digest(message));
                (Mechanism::RsaPkcs, Cow::Owned(info))
            }
            SignScheme::RsaPss {
                hash_on_token: true,
            } => (pss_mechanism(digest, true), Cow::Borrowed(message)),
            SignScheme::RsaPss {
                hash_on_token: false,
            } => (
                pss_mechanism(digest, false),
                Cow::Owned(digest.digest(message)),
            ),
        };

        self.sign_on_token(&mechanism, &input)
    }

    fn sign_digest(&self, algorithm: DigestAlgorithm, digest: &[u8]) -> Result<Vec<u8>, CoreError> {
        crate::alg::check_digest_length(algorithm, digest)?;
        match self.scheme {
            SignScheme::EcdsaOnDigest => self.sign_on_token(&Mechanism::Ecdsa, digest),
            SignScheme::RsaHashOnToken | SignScheme::RsaOnDigestInfo => {
                let mut info = algorithm.pkcs1_digest_info_prefix().to_vec();
                info.extend_from_slice(digest);
                self.sign_on_token(&Mechanism::RsaPkcs, &info)
            }
            SignScheme::RsaPss { .. } => {
                self.sign_on_token(&pss_mechanism(algorithm, false), digest)
            }
        }
    }

    fn signature_algorithm(&self) -> spki::AlgorithmIdentifierOwned {
        match self.scheme {
            SignScheme::RsaPss { .. } => crate::alg::rsa_pss_algorithm(self.algorithm.digest()),
            _ => self.algorithm.signature_algorithm(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "PKCS#11 key {:?} on token {:?} ({})",
            self.location.key_label,
            self.location.token_label,
            self.location.module.display()
        )
    }
}

impl TokenSession {
    /// Finds the token, gets the PIN (only once the token is known to be there, so nobody is
    /// asked for the PIN of a missing card), opens a read-write session and logs in as the user.
    /// Returns the token's label too, for messages.
    fn login(
        module: &Path,
        selector: &TokenSelector,
        pin: &PinSource,
    ) -> Result<(Self, Credential, String), CoreError> {
        let context = module_context(module)?;
        let (slot, info) = find_token(&context, module, selector)?;
        let label = info.label().trim_end().to_string();
        let credential = pin.credential(&info)?;
        let session = context.open_rw_session(slot).map_err(|e| {
            CoreError::Pkcs11(format!("cannot open a session on token {label:?}: {e}"))
        })?;
        let token = TokenSession {
            context,
            slot,
            session,
        };
        login(&token, UserType::User, &credential, &label)?;
        Ok((token, credential, label))
    }
}

/// The process-wide context of `module`, loaded and initialised on first use.
///
/// `C_Initialize` may run once per module and process (a second call fails with
/// `CKR_CRYPTOKI_ALREADY_INITIALIZED`), so contexts are kept for the life of the process.
pub fn module_context(module: &Path) -> Result<Arc<Pkcs11>, CoreError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Arc<Pkcs11>>>> = OnceLock::new();
    // One entry per file, however the path is spelled.
    let key = module
        .canonicalize()
        .unwrap_or_else(|_| module.to_path_buf());
    let mut contexts = lock(CONTEXTS.get_or_init(Default::default));
    if let Some(context) = contexts.get(&key) {
        return Ok(Arc::clone(context));
    }
    let context = Pkcs11::new(&key).map_err(|e| {
        CoreError::Pkcs11(format!(
            "cannot load PKCS#11 module {}: {e}",
            module.display()
        ))
    })?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Some other library in this process initialised the module first: share its state.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(CoreError::Pkcs11(format!(
                "cannot initialise PKCS#11 module {}: {e}",
                module.display()
            )))
        }
    }
    let context = Arc::new(context);
    contexts.insert(key, Arc::clone(&context));
    Ok(context)
}

/// The slot holding the token `selector` picks, and its token information.
pub fn find_token(
    context: &Pkcs11,
    module: &Path,
    selector: &TokenSelector,
) -> Result<(Slot, TokenInfo), CoreError> {
    let slots = context.get_slots_with_token().map_err(|e| {
        CoreError::Pkcs11(format!(
            "cannot list the slots of module {}: {e}",
            module.display()
        ))
    })?;
    let mut found = Vec::new();
    for slot in slots {
        // A card is chosen by its reader from the slot description alone: other readers' tokens
        // are not asked for their info. (OpenSC 0.23 can deadlock in C_GetTokenInfo on a slot
        // whose card was removed or reset since the module connected to it.)
        if let TokenSelector::Reader(reader) = selector {
            let in_reader = context.get_slot_info(slot).is_ok_and(|slot| {
                slot.slot_description()
                    .to_lowercase()
                    .contains(&reader.to_lowercase())
            });
            if !in_reader {
                continue;
            }
        }
        // A slot whose token vanished between the two calls is simply not a match; a token not
        // initialised yet (SoftHSM's spare slot, a blank card) holds no keys.
        let Ok(info) = context.get_token_info(slot) else {
            continue;
        };
        if !info.token_initialized() {
            continue;
        }
        let matches = match selector {
            TokenSelector::Label(label) => info.label().trim_end() == label.trim_end(),
            TokenSelector::Serial(serial) => info.serial_number().trim_end() == serial.trim_end(),
            // Filtered above, before the token was asked anything.
            TokenSelector::Reader(_) | TokenSelector::Only => true,
        };
        if matches {
            found.push((slot, info));
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(match selector {
            TokenSelector::Label(label) => CoreError::Pkcs11TokenNotFound {
                label: label.clone(),
                module: module.display().to_string(),
            },
            TokenSelector::Only => CoreError::Pkcs11(format!(
                "module {} shows no token: is the card in the reader?",
                module.display()
            )),
            other => CoreError::Pkcs11(format!("no {other} in module {}", module.display())),
        }),
        n => {
            let labels: Vec<String> = found
                .iter()
                .map(|(_, info)| format!("{:?}", info.label().trim_end()))
                .collect();
            Err(CoreError::Pkcs11Refused(format!(
                "{n} tokens match ({}) in module {}; choose one by reader, label or serial",
                labels.join(", "),
                module.display()
            )))
        }
    }
}

/// `C_Login`, with PKCS#11's PIN errors turned into ones a user can act on.
fn login(
    token: &TokenSession,
    user_type: UserType,
    credential: &Credential,
    token_label: &str,
) -> Result<(), CoreError> {
    let pin = match credential {
        Credential::Pin(pin) => Some(AuthPin::from(pin.as_str())),
        Credential::ProtectedPath => None,
    };
    let result = token.session.login(user_type, pin.as_ref());
    drop(pin);
    let rv = match result {
        Ok(()) => return Ok(()),
        Err(CkError::Pkcs11(rv, _)) => rv,
        Err(e) => {
            return Err(CoreError::Pkcs11(format!(
                "login to token {token_label:?} failed: {e}"
            )))
        }
    };
    match rv {
        // Another key of this process is logged in to the token already (login state is per
        // token and process, PKCS#11 v2.40 §5.6).
        RvError::UserAlreadyLoggedIn if matches!(user_type, UserType::User) => Ok(()),
        // SoftHSM answers CKR_PIN_INCORRECT; OpenSC over some cards CKR_USER_NOT_LOGGED_IN,
        // while the card's retry counter still drops.
        RvError::PinIncorrect | RvError::UserNotLoggedIn => Err(pin_rejected(token, token_label)),
        RvError::PinLenRange => Err(CoreError::Pkcs11PinIncorrect {
            token: token_label.to_string(),
            tries_left: " (the PIN has the wrong length for this token)".to_string(),
        }),
        RvError::PinLocked => Err(CoreError::Pkcs11PinLocked {
            token: token_label.to_string(),
        }),
        RvError::PinExpired => Err(CoreError::Pkcs11Refused(format!(
            "the user PIN of token {token_label:?} has expired; set a new one first"
        ))),
        other => Err(CoreError::Pkcs11(format!(
            "login to token {token_label:?} failed: {other}"
        ))),
    }
}

/// The error for a rejected PIN, saying how close the PIN is to locking, from the token's
/// `CKF_USER_PIN_*` flags as they stand after the failed attempt.
fn pin_rejected(token: &TokenSession, token_label: &str) -> CoreError {
    let tries_left = match token.context.get_token_info(token.slot) {
        Ok(info) if info.user_pin_locked() => {
            return CoreError::Pkcs11PinLocked {
                token: token_label.to_string(),
            }
        }
        Ok(info) if info.user_pin_final_try() => " (final try before the PIN locks)",
        // PKCS#11 v2.40 §3.2 (CK_TOKEN_INFO): COUNT_LOW only means "a wrong PIN was entered
        // since the last successful login", always true at this point; the token is counting.
        Ok(info) if info.user_pin_count_low() => {
            " (the token counts wrong PINs and locks the PIN after too many)"
        }
        _ => "",
    };
    CoreError::Pkcs11PinIncorrect {
        token: token_label.to_string(),
        tries_left: tries_left.to_string(),
    }
}

fn find_private_keys(
    session: &Session,
    key: &KeySelector,
    token_label: &str,
) -> Result<Vec<ObjectHandle>, CoreError> {
    let by = match key {
        KeySelector::Label(label) => Attribute::Label(label.as_bytes().to_vec()),
        KeySelector::Id(id) => Attribute::Id(id.clone()),
    };
    session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), by])
        .map_err(|e| {
            CoreError::Pkcs11(format!(
                "searching token {token_label:?} for key {key} failed: {e}"
            ))
        })
}

/// The public key paired with a private key: same `CKA_ID` (the PKCS#11 convention), or, for a
/// private key without an id, the same label.
fn find_public_key(
    session: &Session,
    id: Option<&[u8]>,
    label: &str,
) -> Result<Option<ObjectHandle>, CkError> {
    let by = match id {
        Some(id) => Attribute::Id(id.to_vec()),
        None => Attribute::Label(label.as_bytes().to_vec()),
    };
    let found = session.find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), by])?;
    Ok(found.first().copied())
}

/// Reads the key's type, public half and signing policy from the token.
fn read_key_facts(
    token: &TokenSession,
    location: &Pkcs11Location,
    private_key: ObjectHandle,
    public_key: Option<ObjectHandle>,
) -> Result<KeyFacts, CoreError> {
    let session = &token.session;
    let failed = |what: &'static str| {
        move |e: CkError| {
            CoreError::Pkcs11(format!(
                "{what} of key {:?} on token {:?} failed: {e}",
                location.key_label, location.token_label
            ))
        }
    };

    let (mut key_type, mut id, mut can_sign, mut always_authenticate) = (None, None, true, false);
    let attributes = session
        .get_attributes(
            private_key,
            &[
                AttributeType::KeyType,
                AttributeType::Id,
                AttributeType::Sign,
                AttributeType::AlwaysAuthenticate,
            ],
        )
        .map_err(failed("reading the attributes"))?;
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Id(i) if !i.is_empty() => id = Some(i),
            Attribute::Sign(s) => can_sign = s,
            Attribute::AlwaysAuthenticate(a) => always_authenticate = a,
            _ => {}
        }
    }
    if !can_sign {
        return Err(CoreError::Pkcs11Refused(format!(
            "key {:?} on token {:?} is not allowed to sign (CKA_SIGN is false)",
            location.key_label, location.token_label
        )));
    }
    let public_key = match public_key {
        Some(handle) => Some(handle),
        None => find_public_key(session, id.as_deref(), &location.key_label)
            .map_err(failed("finding the public key"))?,
    };
    let missing = |what: &str| {
        CoreError::Pkcs11(format!(
            "key {:?} on token {:?} has no readable {what}",
            location.key_label, location.token_label
        ))
    };

    let (algorithm, spki_der) = match key_type {
        Some(KeyType::EC) => {
            let public_key = public_key.ok_or_else(|| missing("public key object"))?;
            let (mut params, mut point) = (None, None);
            let attributes = session
                .get_attributes(
                    public_key,
                    &[AttributeType::EcParams, AttributeType::EcPoint],
                )
                .map_err(failed("reading the public key"))?;
            for attribute in attributes {
                match attribute {
                    Attribute::EcParams(p) => params = Some(p),
                    Attribute::EcPoint(p) => point = Some(p),
                    _ => {}
                }
            }
            ec_public_key(
                &params.ok_or_else(|| missing("CKA_EC_PARAMS"))?,
                &point.ok_or_else(|| missing("CKA_EC_POINT"))?,
            )?
        }
        Some(KeyType::RSA) => {
            // An RSA private key carries its public half as readable attributes, so a token
            // without a separate public key object still works.
            let (mut modulus, mut exponent) = (None, None);
            let attributes = session
                .get_attributes(
                    public_key.unwrap_or(private_key),
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(failed("reading the public key"))?;
            for attribute in attributes {
                match attribute {
                    Attribute::Modulus(n) => modulus = Some(n),
                    Attribute::PublicExponent(e) => exponent = Some(e),
                    _ => {}
                }
            }
            rsa_public_key(
                &modulus.ok_or_else(|| missing("CKA_MODULUS"))?,
                &exponent.ok_or_else(|| missing("CKA_PUBLIC_EXPONENT"))?,
            )?
        }
        other => {
            return Err(CoreError::UnsupportedKey(format!(
                "key {:?} on token {:?} is of type {}; imza signs with EC and RSA keys",
                location.key_label,
                location.token_label,
                other.map_or_else(|| "(unknown)".to_string(), |t| t.to_string())
            )))
        }
    };

    let scheme = if algorithm.is_ec() {
        SignScheme::EcdsaOnDigest
    } else {
        // A module that cannot list its mechanisms still has raw CKM_RSA_PKCS in practice.
        let mechanisms = token
            .context
            .get_mechanism_list(token.slot)
            .unwrap_or_default();
        if mechanisms.contains(&rsa_hash_mechanism_type(algorithm.digest())) {
            SignScheme::RsaHashOnToken
        } else {
            SignScheme::RsaOnDigestInfo
        }
    };
    Ok(KeyFacts {
        algorithm,
        id,
        spki_der,
        scheme,
        always_authenticate,
    })
}

/// The SubjectPublicKeyInfo (RFC 5480 §2: id-ecPublicKey with a named curve) of an EC public
/// key object, and its algorithm.
fn ec_public_key(params: &[u8], point: &[u8]) -> Result<(KeyAlgorithm, Vec<u8>), CoreError> {
    let curve = ObjectIdentifier::from_der(params)
        .map_err(|e| CoreError::malformed("CKA_EC_PARAMS (expected a named curve)", e))?;
    let algorithm = KeyAlgorithm::ALL
        .into_iter()
        .find(|a| a.curve_oid() == Some(curve))
        .ok_or_else(|| {
            CoreError::UnsupportedKey(format!("EC curve {curve} (use P-256 or P-384)"))
        })?;
    let nid = match algorithm {
        KeyAlgorithm::EcP384 => Nid::SECP384R1,
        _ => Nid::X9_62_PRIME256V1,
    };
    // PKCS#11 v2.40 mechanisms §2.3.3: CKA_EC_POINT is the DER encoding of an OCTET STRING
    // holding the point. Some modules return the bare point; an uncompressed point never parses
    // as a DER OCTET STRING of the right length, so trying the wrapped form first is unambiguous.
    let wrapped = OctetString::from_der(point).ok();
    let point = wrapped.as_ref().map_or(point, |octets| octets.as_bytes());

    let group = EcGroup::from_curve_name(nid).map_err(CoreError::openssl)?;
    let mut ctx = BigNumContext::new().map_err(CoreError::openssl)?;
    let point = EcPoint::from_bytes(&group, point, &mut ctx)
        .map_err(|e| CoreError::malformed("CKA_EC_POINT", e))?;
    let key = EcKey::from_public_key(&group, &point).map_err(CoreError::openssl)?;
    let spki = key.public_key_to_der().map_err(CoreError::openssl)?;
    Ok((algorithm, spki))
}

/// The SubjectPublicKeyInfo (RFC 8017 `RSAPublicKey` under rsaEncryption) of an RSA key, and
/// its algorithm.
fn rsa_public_key(modulus: &[u8], exponent: &[u8]) -> Result<(KeyAlgorithm, Vec<u8>), CoreError> {
    let n = BigNum::from_slice(modulus).map_err(CoreError::openssl)?;
    let e = BigNum::from_slice(exponent).map_err(CoreError::openssl)?;
    let bits = u32::try_from(n.num_bits()).unwrap_or(0);
    let algorithm = KeyAlgorithm::ALL
        .into_iter()
        .find(|a| a.rsa_bits() == Some(bits))
        .ok_or_else(|| {
            CoreError::UnsupportedKey(format!("RSA-{bits} (use 2048, 3072 or 4096 bits)"))
        })?;
    let key = Rsa::from_public_components(n, e).map_err(CoreError::openssl)?;
    let spki = key.public_key_to_der().map_err(CoreError::openssl)?;
    Ok((algorithm, spki))
}

fn rsa_hash_mechanism(digest: DigestAlgorithm) -> Mechanism<'static> {
    match digest {
        DigestAlgorithm::Sha256 => Mechanism::Sha256RsaPkcs,
        DigestAlgorithm::Sha384 => Mechanism::Sha384RsaPkcs,
        DigestAlgorithm::Sha512 => Mechanism::Sha512RsaPkcs,
    }
}

/// The RSASSA-PSS mechanism for `digest`: hash-and-sign, or sign a digest made on the host.
fn pss_mechanism(digest: DigestAlgorithm, hash_on_token: bool) -> Mechanism<'static> {
    use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
    let (hash_alg, mgf) = match digest {
        DigestAlgorithm::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        DigestAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        DigestAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    let params = PkcsPssParams {
        hash_alg,
        mgf,
        s_len: Ulong::new(digest.output_len() as u64),
    };
    match (hash_on_token, digest) {
        (false, _) => Mechanism::RsaPkcsPss(params),
        (true, DigestAlgorithm::Sha256) => Mechanism::Sha256RsaPkcsPss(params),
        (true, DigestAlgorithm::Sha384) => Mechanism::Sha384RsaPkcsPss(params),
        (true, DigestAlgorithm::Sha512) => Mechanism::Sha512RsaPkcsPss(params),
    }
}

fn rsa_hash_mechanism_type(digest: DigestAlgorithm) -> MechanismType {
    rsa_hash_mechanism(digest).mechanism_type()
}

/// Sessions of this process read tokens (open, sign) together, but never while a key is
/// being generated. SoftHSM 2.6's file object store guards its files with fcntl locks, which
/// are per process, so one thread's C_GenerateKeyPair racing another thread's reads fails now
/// and then with CKR_GENERAL_ERROR (SoftHSMv2 #573; seen here in a fresh-clone CI run with
/// generation alone serialised). A hardware token loses nothing by it: generation is rare.
static OBJECT_STORE: RwLock<()> = RwLock::new(());

/// Locks `mutex`, carrying on after a panic elsewhere: the guarded state (a session handle, a
/// map of contexts) stays consistent, and the token reports any operation left half done.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    //! Runs against a private SoftHSM2 token directory. SoftHSM reads `SOFTHSM2_CONF` once, at
    //! the module's first `C_Initialize` in the process, and `cargo test` runs all of this
    //! crate's tests in one process: so one directory, created once (with every token the tests
    //! need, before any test touches the module), serves all of them.

    use std::sync::OnceLock;

    use imza_testenv::softhsm::{SoftHsm, MODULE_PATH};

    use super::*;
    use crate::verify::verify_signature;

    const SO_PIN: &str = "12345678";
    const USER_PIN: &str = "1234";
    /// Keys are generated here, each test under its own key label.
    const TOKEN: &str = "imza-core-keys";
    /// Only ever logged in to with a wrong PIN: on `TOKEN`, another test's open session would
    /// make any PIN "succeed" (login state is per token and process).
    const PIN_TOKEN: &str = "imza-core-pin";
    /// Set to `USER_PIN` for the tests that read the PIN from the environment.
    const PIN_VAR: &str = "IMZA_PKCS11_TEST_PIN";

    /// The shared SoftHSM directory, or `None` (after a note) when SoftHSM2 is not installed.
    fn softhsm() -> Option<&'static SoftHsm> {
        static HSM: OnceLock<Option<SoftHsm>> = OnceLock::new();
        HSM.get_or_init(|| {
            if !SoftHsm::is_available() {
                eprintln!("note: {MODULE_PATH} not found; skipping the PKCS#11 tests");
                return None;
            }
            let hsm = SoftHsm::new();
            for label in [TOKEN, PIN_TOKEN] {
                hsm.init_token(label, SO_PIN, USER_PIN);
            }
            // Before the first C_Initialize of this process, which happens after this returns.
            std::env::set_var("SOFTHSM2_CONF", hsm.conf_path());
            std::env::set_var(PIN_VAR, USER_PIN);
            Some(hsm)
        })
        .as_ref()
    }

    fn location(token: &str, key_label: &str) -> Pkcs11Location {
        Pkcs11Location {
            module: PathBuf::from(MODULE_PATH),
            token_label: token.to_string(),
            key_label: key_label.to_string(),
        }
    }

    fn user_pin() -> PinSource {
        PinSource::Value(Zeroizing::new(USER_PIN.to_string()))
    }

    fn assert_signs_verifiably(key: &dyn SigningKey, message: &[u8]) {
        let spki = key.public_key_der().unwrap();
        let algorithm = key.algorithm().signature_algorithm();
        let signature = key.sign(message).unwrap();
        verify_signature(&spki, &algorithm, message, &signature).unwrap();
        assert!(
            verify_signature(&spki, &algorithm, b"another message", &signature).is_err(),
            "a signature must not verify over a different message"
        );
    }

    /// Generates `algorithm` on the token, signs, then opens the key afresh by label and signs
    /// again with the same public key.
    fn generate_sign_reopen(algorithm: KeyAlgorithm) {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, &format!("generated-{algorithm}"));
        let key = Pkcs11Key::generate(&at, algorithm, &user_pin()).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        assert!(!key.always_authenticate());
        assert_signs_verifiably(&key, b"tbsCertificate stand-in");

        let reopened = Pkcs11Key::open(&at, &PinSource::Env(PIN_VAR.into())).unwrap();
        assert_eq!(reopened.algorithm(), algorithm);
        assert_eq!(
            reopened.public_key_der().unwrap(),
            key.public_key_der().unwrap()
        );
        assert_signs_verifiably(&reopened, b"tbsCertList stand-in");
    }

    #[test]
    fn generated_ec_p256_key_signs_and_reopens_by_label() {
        generate_sign_reopen(KeyAlgorithm::EcP256);
    }

    #[test]
    fn generated_ec_p384_key_signs_and_reopens_by_label() {
        generate_sign_reopen(KeyAlgorithm::EcP384);
    }

    #[test]
    fn generated_rsa_2048_key_signs_and_reopens_by_label() {
        generate_sign_reopen(KeyAlgorithm::Rsa2048);
    }

    #[test]
    fn ec_public_key_is_a_named_curve_spki() {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "spki-shape");
        let key = Pkcs11Key::generate(&at, KeyAlgorithm::EcP256, &user_pin()).unwrap();
        let spki =
            spki::SubjectPublicKeyInfoOwned::from_der(&key.public_key_der().unwrap()).unwrap();
        assert_eq!(spki.algorithm.oid, crate::oids::EC_PUBLIC_KEY);
        let curve: ObjectIdentifier = spki.algorithm.parameters.unwrap().decode_as().unwrap();
        assert_eq!(curve, crate::oids::SECP256R1);
        assert_eq!(spki.subject_public_key.raw_bytes().len(), 65);
    }

    #[test]
    fn one_key_signs_from_several_threads() {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "shared-between-threads");
        let key = Arc::new(Pkcs11Key::generate(&at, KeyAlgorithm::EcP256, &user_pin()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let key = Arc::clone(&key);
                std::thread::spawn(move || {
                    for j in 0..10 {
                        assert_signs_verifiably(key.as_ref(), format!("{i}/{j}").as_bytes());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }

    #[test]
    fn always_authenticate_key_logs_in_again_for_each_signature() {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "always-authenticate");
        let key =
            Pkcs11Key::generate_with_policy(&at, KeyAlgorithm::Rsa2048, &user_pin(), true).unwrap();
        assert!(key.always_authenticate());
        assert_signs_verifiably(&key, b"first signature");
        assert_signs_verifiably(&key, b"second signature");

        let reopened = Pkcs11Key::open(&at, &user_pin()).unwrap();
        assert!(reopened.always_authenticate());
        assert_signs_verifiably(&reopened, b"after reopening");
    }

    #[test]
    fn always_authenticate_key_refuses_a_signature_without_the_second_login() {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "always-authenticate-enforced");
        let mut key =
            Pkcs11Key::generate_with_policy(&at, KeyAlgorithm::Rsa2048, &user_pin(), true).unwrap();
        // Pretend not to know: a one-shot C_Sign must fail, which shows the token enforces it.
        key.always_authenticate = false;
        let err = key.sign(b"no second login").unwrap_err();
        assert!(
            matches!(&err, CoreError::Pkcs11(msg) if msg.contains("signing")),
            "{err:?}"
        );
        key.always_authenticate = true;
        assert_signs_verifiably(&key, b"with the second login");
    }

    #[test]
    fn rsa_key_signs_digest_info_when_the_token_cannot_hash() {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "rsa-digest-info");
        let mut key = Pkcs11Key::generate(&at, KeyAlgorithm::Rsa2048, &user_pin()).unwrap();
        // SoftHSM offers CKM_SHA256_RSA_PKCS; force the path for tokens that do not.
        assert_eq!(key.scheme, SignScheme::RsaHashOnToken);
        let message = b"same bytes, same signature";
        let on_token = key.sign(message).unwrap();
        key.scheme = SignScheme::RsaOnDigestInfo;
        let on_host = key.sign(message).unwrap();
        // PKCS#1 v1.5 is deterministic: both paths must produce the very same signature.
        assert_eq!(on_token, on_host);
        assert_signs_verifiably(&key, message);
    }

    #[test]
    fn destroyed_key_pair_is_gone_from_the_token() {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "destroyed");
        let key = Pkcs11Key::generate(&at, KeyAlgorithm::EcP256, &user_pin()).unwrap();
        key.destroy().unwrap();
        let err = Pkcs11Key::open(&at, &user_pin()).unwrap_err();
        assert!(
            matches!(err, CoreError::Pkcs11KeyNotFound { .. }),
            "{err:?}"
        );
        // The label is free again: a new pair can take it.
        let again = Pkcs11Key::generate(&at, KeyAlgorithm::EcP256, &user_pin()).unwrap();
        assert_signs_verifiably(&again, b"after the label was freed");
    }

    #[test]
    fn wrong_pin_is_reported_as_pin_incorrect_without_the_pin() {
        if softhsm().is_none() {
            return;
        }
        let at = location(PIN_TOKEN, "never-created");
        let wrong = PinSource::Value(Zeroizing::new("98765".to_string()));
        let err = Pkcs11Key::open(&at, &wrong).unwrap_err();
        assert!(
            matches!(&err, CoreError::Pkcs11PinIncorrect { token, .. } if token == PIN_TOKEN),
            "{err:?}"
        );
        assert!(!err.to_string().contains("98765"));
        assert!(!format!("{err:?}").contains("98765"));
    }

    #[test]
    fn unknown_token_is_reported_as_token_not_found() {
        if softhsm().is_none() {
            return;
        }
        let err = Pkcs11Key::open(&location("no-such-token", "k"), &user_pin()).unwrap_err();
        let CoreError::Pkcs11TokenNotFound { label, .. } = &err else {
            panic!("expected TokenNotFound, got {err:?}");
        };
        assert_eq!(label, "no-such-token");
    }

    #[test]
    fn missing_key_label_is_reported_as_key_not_found() {
        if softhsm().is_none() {
            return;
        }
        let err = Pkcs11Key::open(&location(TOKEN, "no-such-key"), &user_pin()).unwrap_err();
        let CoreError::Pkcs11KeyNotFound { label, token } = &err else {
            panic!("expected KeyNotFound, got {err:?}");
        };
        assert_eq!((label.as_str(), token.as_str()), ("no-such-key", TOKEN));
    }

    #[test]
    fn generating_a_second_key_with_the_same_label_is_refused() {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "taken-label");
        let first = Pkcs11Key::generate(&at, KeyAlgorithm::EcP256, &user_pin()).unwrap();
        let err = Pkcs11Key::generate(&at, KeyAlgorithm::EcP384, &user_pin()).unwrap_err();
        assert!(
            matches!(&err, CoreError::Pkcs11Refused(msg) if msg.contains("already exists")),
            "{err:?}"
        );
        // The first key is untouched and still the one found by label.
        let reopened = Pkcs11Key::open(&at, &user_pin()).unwrap();
        assert_eq!(reopened.algorithm(), KeyAlgorithm::EcP256);
        assert_eq!(
            reopened.public_key_der().unwrap(),
            first.public_key_der().unwrap()
        );
    }

    #[test]
    fn unset_pin_variable_is_named_in_the_error() {
        if softhsm().is_none() {
            return;
        }
        const UNSET: &str = "IMZA_PKCS11_TEST_PIN_NEVER_SET";
        let err =
            Pkcs11Key::open(&location(TOKEN, "k"), &PinSource::Env(UNSET.into())).unwrap_err();
        assert!(
            matches!(&err, CoreError::PinUnavailable(msg) if msg.contains(UNSET)),
            "{err:?}"
        );
    }

    #[test]
    fn pin_never_appears_in_debug_or_describe() {
        let pin = PinSource::Value(Zeroizing::new("s3cret-pin".to_string()));
        assert!(!format!("{pin:?}").contains("s3cret-pin"));
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "described");
        let key = Pkcs11Key::generate(&at, KeyAlgorithm::EcP256, &user_pin()).unwrap();
        for shown in [key.describe(), format!("{key:?}")] {
            assert!(!shown.contains(USER_PIN), "{shown}");
            assert!(
                shown.contains("described") && shown.contains(TOKEN),
                "{shown}"
            );
        }
    }

    #[test]
    fn key_opens_by_cka_id_with_the_token_chosen_by_serial_or_slot() {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "by-id");
        let key = Pkcs11Key::generate(&at, KeyAlgorithm::EcP256, &user_pin()).unwrap();
        let id = key.id().expect("generated keys carry a CKA_ID").to_vec();
        let module = PathBuf::from(MODULE_PATH);
        let context = module_context(&module).unwrap();
        let (slot, info) =
            find_token(&context, &module, &TokenSelector::Label(TOKEN.into())).unwrap();
        let serial = info.serial_number().trim_end().to_string();
        let description = context
            .get_slot_info(slot)
            .unwrap()
            .slot_description()
            .to_string();

        for token in [
            TokenSelector::Serial(serial),
            TokenSelector::Reader(description.trim_end().to_uppercase()),
        ] {
            let reopened =
                Pkcs11Key::open_with(&module, &token, &KeySelector::Id(id.clone()), &user_pin())
                    .unwrap();
            assert_eq!(reopened.location().key_label, "by-id");
            assert_eq!(reopened.location().token_label, TOKEN);
            assert_eq!(
                reopened.public_key_der().unwrap(),
                key.public_key_der().unwrap()
            );
            assert_signs_verifiably(&reopened, b"found by CKA_ID");
        }
        // Two tokens exist, so "the only token" is ambiguous, and the error names them.
        let err = Pkcs11Key::open_with(
            &module,
            &TokenSelector::Only,
            &KeySelector::Id(id),
            &user_pin(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("2 tokens match") && err.contains(TOKEN),
            "{err}"
        );
        let err = Pkcs11Key::open_with(
            &module,
            &TokenSelector::Label(TOKEN.into()),
            &KeySelector::Id(vec![0xde, 0xad]),
            &user_pin(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("with id dead"), "{err}");
    }

    #[test]
    fn rsa_pss_signatures_verify_under_the_pss_algorithm_identifier() {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "pss");
        let mut key = Pkcs11Key::generate(&at, KeyAlgorithm::Rsa2048, &user_pin()).unwrap();
        key.use_rsa_pss().unwrap();
        let algorithm = key.signature_algorithm();
        assert_eq!(algorithm.oid, crate::oids::RSASSA_PSS);
        let spki = key.public_key_der().unwrap();
        let first = key.sign(b"pss message").unwrap();
        verify_signature(&spki, &algorithm, b"pss message", &first).unwrap();
        // PSS is randomised: the same message signs differently each time.
        assert_ne!(first, key.sign(b"pss message").unwrap());
        assert!(verify_signature(&spki, &algorithm, b"other", &first).is_err());
        // And OpenSSL agrees the signature is PSS with a 32-byte salt over SHA-256.
        let public = openssl::pkey::PKey::public_key_from_der(&spki).unwrap();
        let mut verifier =
            openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap();
        verifier
            .set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)
            .unwrap();
        verifier
            .set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::custom(32))
            .unwrap();
        assert!(verifier.verify_oneshot(&first, b"pss message").unwrap());

        let mut ec = Pkcs11Key::generate(
            &location(TOKEN, "pss-ec"),
            KeyAlgorithm::EcP256,
            &user_pin(),
        )
        .unwrap();
        assert!(ec.use_rsa_pss().is_err());
    }

    #[test]
    fn certificate_is_stored_next_to_its_key_and_replaced_on_renewal() {
        if softhsm().is_none() {
            return;
        }
        let at = location(TOKEN, "with-cert");
        let key = Pkcs11Key::generate(&at, KeyAlgorithm::EcP256, &user_pin()).unwrap();
        let id = key.id().unwrap().to_vec();
        let certificate = |cn: &str| {
            // A self-signed stand-in made by OpenSSL; only its encoding matters here.
            let ec = openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap(),
            )
            .unwrap();
            let pkey = openssl::pkey::PKey::from_ec_key(ec).unwrap();
            let mut name = openssl::x509::X509NameBuilder::new().unwrap();
            name.append_entry_by_text("CN", cn).unwrap();
            let name = name.build();
            let mut builder = openssl::x509::X509::builder().unwrap();
            builder.set_subject_name(&name).unwrap();
            builder.set_issuer_name(&name).unwrap();
            builder.set_pubkey(&pkey).unwrap();
            builder
                .set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
                .unwrap();
            builder
                .set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
                .unwrap();
            builder
                .sign(&pkey, openssl::hash::MessageDigest::sha256())
                .unwrap();
            builder.build().to_der().unwrap()
        };
        let stored = |key: &Pkcs11Key| {
            let session = lock(&key.session);
            let handles = session
                .token
                .session
                .find_objects(&[
                    Attribute::Class(ObjectClass::CERTIFICATE),
                    Attribute::Id(id.clone()),
                ])
                .unwrap();
            handles
                .into_iter()
                .map(|h| {
                    match session
                        .token
                        .session
                        .get_attributes(h, &[AttributeType::Value])
                        .unwrap()
                        .remove(0)
                    {
                        Attribute::Value(v) => v,
                        other => panic!("{other:?}"),
                    }
                })
                .collect::<Vec<_>>()
        };
        let first = certificate("first");
        key.store_certificate(&first, "with-cert").unwrap();
        assert_eq!(stored(&key), vec![first]);
        let second = certificate("second");
        key.store_certificate(&second, "with-cert").unwrap();
        assert_eq!(stored(&key), vec![second]);
        assert!(key.store_certificate(b"not a certificate", "x").is_err());
    }
}
