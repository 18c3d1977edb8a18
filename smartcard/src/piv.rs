//! A PIV card over PC/SC, spoken to directly for enrollment: generate a key on the card, sign
//! the CSR with it, write the issued certificate back (NIST SP 800-73-4 part 2, the card
//! command interface; algorithm identifiers from SP 800-78-4 Table 6-2).
//!
//! The host side follows what OpenSC's PIV driver and yubico-piv-tool do with real cards:
//! short APDUs with command chaining (ISO/IEC 7816-4 §5.1.1, CLA bit 0x10) for long inputs,
//! GET RESPONSE (`61xx`) for long answers, hashing on the host. Card answers are untrusted:
//! lengths are checked, totals capped, loops bounded.

mod apdu;
mod tlv;

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use imza_core::key::{DigestAlgorithm, KeyAlgorithm, SigningKey};
use imza_core::CoreError;
use openssl::symm::{Cipher, Crypter, Mode};
use pcsc::{Disposition, Protocols, ShareMode};
use zeroize::Zeroizing;

use crate::reader::{card_atr, exchange_error};
use crate::CardError;
use apdu::{Io, Response};

/// The PIV Card Application AID with its version (SP 800-73-4 part 1 §2.2), as OpenSC sends it.
const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

// Instructions (SP 800-73-4 part 2 §3).
const INS_SELECT: u8 = 0xA4;
const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE_DATA: u8 = 0x24;
const INS_RESET_RETRY_COUNTER: u8 = 0x2C;
const INS_GENERAL_AUTHENTICATE: u8 = 0x87;
const INS_GENERATE_ASYMMETRIC_KEY_PAIR: u8 = 0x47;
const INS_GET_DATA: u8 = 0xCB;
const INS_PUT_DATA: u8 = 0xDB;

// Key references (SP 800-73-4 part 1 Table 4b).
const KEY_REF_PIN: u8 = 0x80;
const KEY_REF_PUK: u8 = 0x81;
const KEY_REF_MANAGEMENT: u8 = 0x9B;

// Tags of the dynamic authentication template (part 2 Table 7) and of data objects.
const TAG_DYNAMIC_AUTH: u32 = 0x7C;
const TAG_WITNESS: u32 = 0x80;
const TAG_CHALLENGE: u32 = 0x81;
const TAG_RESPONSE: u32 = 0x82;
const TAG_DATA_OBJECT: u32 = 0x53;
const TAG_OBJECT_ID: u32 = 0x5C;
const TAG_CERTIFICATE: u32 = 0x70;
const TAG_CERT_INFO: u32 = 0x71;
const TAG_ERROR_DETECTION: u32 = 0xFE;
const TAG_PUBLIC_KEY: u32 = 0x7F49;

/// PIN and PUK are 6 to 8 bytes, padded with FF to 8 on the wire (SP 800-73-4 part 2 §2.4.3).
const PIN_MIN: usize = 6;
const PIN_LEN: usize = 8;

/// A key slot of the PIV Card Application: its key reference and the tag of the data object
/// holding its certificate (SP 800-73-4 part 1 Table 3 and Table 4b).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PivSlot {
    /// 9A, PIV Authentication (log-in).
    Authentication,
    /// 9C, Digital Signature: the PIN is needed before every signature.
    Signature,
    /// 9D, Key Management (decryption, key agreement).
    KeyManagement,
    /// 9E, Card Authentication (no PIN; physical access).
    CardAuthentication,
}

impl PivSlot {
    pub const ALL: [PivSlot; 4] = [
        PivSlot::Authentication,
        PivSlot::Signature,
        PivSlot::KeyManagement,
        PivSlot::CardAuthentication,
    ];

    /// The key reference used as P2 of GENERAL AUTHENTICATE and GENERATE.
    pub fn key_reference(self) -> u8 {
        match self {
            PivSlot::Authentication => 0x9A,
            PivSlot::Signature => 0x9C,
            PivSlot::KeyManagement => 0x9D,
            PivSlot::CardAuthentication => 0x9E,
        }
    }

    /// The BER-TLV tag of the slot's X.509 certificate object.
    pub fn certificate_object(self) -> [u8; 3] {
        match self {
            PivSlot::Authentication => [0x5F, 0xC1, 0x05],
            PivSlot::Signature => [0x5F, 0xC1, 0x0A],
            PivSlot::KeyManagement => [0x5F, 0xC1, 0x0B],
            PivSlot::CardAuthentication => [0x5F, 0xC1, 0x01],
        }
    }

    /// What the slot is for, in words.
    pub fn purpose(self) -> &'static str {
        match self {
            PivSlot::Authentication => "PIV authentication",
            PivSlot::Signature => "digital signature",
            PivSlot::KeyManagement => "key management",
            PivSlot::CardAuthentication => "card authentication",
        }
    }
}

impl fmt::Display for PivSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.key_reference())
    }
}

impl FromStr for PivSlot {
    type Err = CardError;

    /// `9a`, `9C`, `0x9d`, or the slot's name (`authentication`, `signature`,
    /// `key-management`, `card-authentication`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_prefix("0x").unwrap_or(&t);
        let slot = match t {
            "9a" | "authentication" => PivSlot::Authentication,
            "9c" | "signature" => PivSlot::Signature,
            "9d" | "key-management" => PivSlot::KeyManagement,
            "9e" | "card-authentication" => PivSlot::CardAuthentication,
            _ => {
                return Err(CardError::UnknownSlot {
                    input: s.to_string(),
                })
            }
        };
        Ok(slot)
    }
}

/// The PIN's state as an empty VERIFY reports it (SP 800-73-4 part 2 §3.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PinState {
    /// Verified in this session already.
    Verified,
    TriesLeft(u8),
    Blocked,
}

/// Algorithms of the card management key, 9B (SP 800-78-4 Table 6-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ManagementKeyAlgorithm {
    /// Three-key Triple DES (algorithm 03), the PIV default.
    TripleDes,
    /// AES-128 (08).
    Aes128,
    /// AES-192 (0A); YubiKeys from firmware 5.7 ship with the default key as AES-192.
    Aes192,
    /// AES-256 (0C).
    Aes256,
}

impl ManagementKeyAlgorithm {
    /// The algorithm identifier sent as P1 of GENERAL AUTHENTICATE.
    pub fn id(self) -> u8 {
        match self {
            ManagementKeyAlgorithm::TripleDes => 0x03,
            ManagementKeyAlgorithm::Aes128 => 0x08,
            ManagementKeyAlgorithm::Aes192 => 0x0A,
            ManagementKeyAlgorithm::Aes256 => 0x0C,
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            ManagementKeyAlgorithm::TripleDes | ManagementKeyAlgorithm::Aes192 => 24,
            ManagementKeyAlgorithm::Aes128 => 16,
            ManagementKeyAlgorithm::Aes256 => 32,
        }
    }

    /// The witness and challenge length: one cipher block.
    fn block_len(self) -> usize {
        match self {
            ManagementKeyAlgorithm::TripleDes => 8,
            _ => 16,
        }
    }

    fn cipher(self) -> Cipher {
        match self {
            ManagementKeyAlgorithm::TripleDes => Cipher::des_ede3(),
            ManagementKeyAlgorithm::Aes128 => Cipher::aes_128_ecb(),
            ManagementKeyAlgorithm::Aes192 => Cipher::aes_192_ecb(),
            ManagementKeyAlgorithm::Aes256 => Cipher::aes_256_ecb(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ManagementKeyAlgorithm::TripleDes => "3des",
            ManagementKeyAlgorithm::Aes128 => "aes128",
            ManagementKeyAlgorithm::Aes192 => "aes192",
            ManagementKeyAlgorithm::Aes256 => "aes256",
        }
    }
}

impl FromStr for ManagementKeyAlgorithm {
    type Err = CardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "3des" | "tdes" | "tripledes" => Ok(ManagementKeyAlgorithm::TripleDes),
            "aes128" => Ok(ManagementKeyAlgorithm::Aes128),
            "aes192" => Ok(ManagementKeyAlgorithm::Aes192),
            "aes256" => Ok(ManagementKeyAlgorithm::Aes256),
            _ => Err(CardError::ManagementKeyFormat {
                reason: format!(
                    "unknown algorithm {s:?} (expected 3des, aes128, aes192 or aes256)"
                ),
            }),
        }
    }
}

/// The card management key (9B), which authorises key generation and writing certificates.
/// The bytes are wiped when it is dropped and never printed.
#[derive(Clone)]
pub struct ManagementKey {
    algorithm: ManagementKeyAlgorithm,
    key: Zeroizing<Vec<u8>>,
}

impl ManagementKey {
    /// The well-known default of new PIV cards (SP 800-73-4 leaves it to the issuer; every
    /// vendor ships this one): 0102030405060708 three times.
    const DEFAULT: [u8; 24] = [
        1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
    ];

    /// The default key as Triple DES, as most PIV cards ship.
    pub fn default_3des() -> Self {
        ManagementKey {
            algorithm: ManagementKeyAlgorithm::TripleDes,
            key: Zeroizing::new(Self::DEFAULT.to_vec()),
        }
    }

    /// The default key as AES-192 (YubiKey 5.7 and later).
    pub fn default_aes192() -> Self {
        ManagementKey {
            algorithm: ManagementKeyAlgorithm::Aes192,
            key: Zeroizing::new(Self::DEFAULT.to_vec()),
        }
    }

    /// A key in hex: 24 bytes is taken as Triple DES; AES keys need [`Self::from_hex_with`].
    pub fn from_hex(hex: &str) -> Result<Self, CardError> {
        let key = decode_key_hex(hex)?;
        match key.len() {
            24 => Ok(ManagementKey {
                algorithm: ManagementKeyAlgorithm::TripleDes,
                key,
            }),
            16 | 32 => Err(CardError::ManagementKeyFormat {
                reason: format!(
                    "a {}-byte key is AES; say which algorithm (aes128 or aes256)",
                    key.len()
                ),
            }),
            n => Err(CardError::ManagementKeyFormat {
                reason: format!("{n} bytes (expected 24 for Triple DES, or 16/24/32 for AES)"),
            }),
        }
    }

    /// A key in hex for the given algorithm.
    pub fn from_hex_with(algorithm: ManagementKeyAlgorithm, hex: &str) -> Result<Self, CardError> {
        let key = decode_key_hex(hex)?;
        if key.len() != algorithm.key_len() {
            return Err(CardError::ManagementKeyFormat {
                reason: format!(
                    "{} bytes, but {} keys have {}",
                    key.len(),
                    algorithm.name(),
                    algorithm.key_len()
                ),
            });
        }
        Ok(ManagementKey { algorithm, key })
    }

    pub fn algorithm(&self) -> ManagementKeyAlgorithm {
        self.algorithm
    }

    /// One block through the cipher in ECB mode, without padding.
    fn crypt(&self, mode: Mode, block: &[u8]) -> Result<Zeroizing<Vec<u8>>, CardError> {
        let cipher = self.algorithm.cipher();
        let fail = |e: openssl::error::ErrorStack| CardError::Core(CoreError::openssl(e));
        let mut crypter = Crypter::new(cipher, mode, &self.key, None).map_err(fail)?;
        crypter.pad(false);
        let mut out = Zeroizing::new(vec![0u8; block.len() + cipher.block_size()]);
        let n = crypter.update(block, &mut out).map_err(fail)?;
        let m = crypter
            .finalize(out.get_mut(n..).unwrap_or_default())
            .map_err(fail)?;
        out.truncate(n + m);
        Ok(out)
    }
}

fn decode_key_hex(hex: &str) -> Result<Zeroizing<Vec<u8>>, CardError> {
    // Sized up front, so no reallocation leaves a stray copy of the key behind.
    let mut cleaned = Zeroizing::new(String::with_capacity(hex.len()));
    cleaned.extend(
        hex.chars()
            .filter(|c| !c.is_ascii_whitespace() && *c != ':'),
    );
    if !cleaned.len().is_multiple_of(2) {
        return Err(CardError::ManagementKeyFormat {
            reason: "an odd number of hex digits".into(),
        });
    }
    let mut key = Zeroizing::new(vec![0u8; cleaned.len() / 2]);
    // Never echo the offending character: it is part of a secret.
    hex::decode_to_slice(cleaned.as_bytes(), &mut key).map_err(|e| {
        CardError::ManagementKeyFormat {
            reason: match e {
                hex::FromHexError::InvalidHexCharacter { index, .. } => format!(
                    "not hexadecimal (character {} is not a hex digit)",
                    index + 1
                ),
                _ => "not a hex string".into(),
            },
        }
    })?;
    Ok(key)
}

impl fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementKey")
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The PIV algorithm identifier of a key type, or why the card cannot hold it.
fn piv_algorithm_id(algorithm: KeyAlgorithm) -> Result<u8, CardError> {
    match algorithm {
        KeyAlgorithm::Rsa2048 => Ok(0x07),
        KeyAlgorithm::EcP256 => Ok(0x11),
        KeyAlgorithm::EcP384 => Ok(0x14),
        other => Err(CardError::Core(CoreError::UnsupportedKey(format!(
            "{other} on a PIV card (PIV cards hold rsa-2048, ec-p256 or ec-p384 keys)"
        )))),
    }
}

/// PIN or PUK checked and padded with FF to 8 bytes, before anything reaches the card, so a
/// typo in length never costs a try.
fn padded_pin(pin: &str, what: &'static str) -> Result<Zeroizing<[u8; PIN_LEN]>, CardError> {
    let bytes = pin.as_bytes();
    if !(PIN_MIN..=PIN_LEN).contains(&bytes.len()) {
        return Err(CardError::PinFormat {
            what,
            reason: format!(
                "{PIN_MIN} to {PIN_LEN} characters long (the one given has {})",
                pin.chars().count()
            ),
        });
    }
    let mut out = Zeroizing::new([0xFF; PIN_LEN]);
    if let Some(dst) = out.get_mut(..bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    Ok(out)
}

/// A PIV card in a reader, with the PIV application selected.
pub struct PivCard {
    reader: String,
    /// `None` only while being dropped (see the `Drop` impl).
    card: Option<pcsc::Card>,
    atr: Vec<u8>,
    /// Whether the PIV application is known to be selected (not since a reset).
    selected: bool,
}

impl fmt::Debug for PivCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PivCard")
            .field("reader", &self.reader)
            .field("atr", &hex::encode_upper(&self.atr))
            .finish()
    }
}

impl PivCard {
    /// Connects to the card in `reader` (see [`crate::reader::connect`]) and selects its PIV
    /// application.
    pub fn connect(reader: Option<&str>) -> Result<Self, CardError> {
        let (reader, card) = crate::reader::connect(reader)?;
        Self::from_connected(reader, card)
    }

    /// Selects the PIV application on an already connected card.
    pub fn from_connected(reader: String, card: pcsc::Card) -> Result<Self, CardError> {
        let atr = card_atr(&card);
        let mut piv = PivCard {
            reader,
            card: Some(card),
            atr,
            selected: false,
        };
        piv.transact("selecting the PIV application", |_| Ok(()))?;
        Ok(piv)
    }

    /// The full PC/SC name of the card's reader.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The card's Answer To Reset.
    pub fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    /// Runs `f` inside one PC/SC transaction, so no other program's commands come between
    /// ours (a VERIFY and the signature it allows, the two halves of an authentication). The
    /// application is selected again when the card was reset by someone else meanwhile, as
    /// yubico-piv-tool does; the first transaction after connecting selects it too.
    fn transact<T>(
        &mut self,
        operation: &str,
        f: impl FnOnce(&Io<'_>) -> Result<T, CardError>,
    ) -> Result<T, CardError> {
        let reader = self.reader.as_str();
        let fail = |e| exchange_error(e, reader, operation);
        let mut select = !self.selected;
        let card = self.card.as_mut().ok_or_else(|| CardError::CardRemoved {
            reader: reader.to_string(),
            operation: operation.to_string(),
        })?;
        let tx = match card.transaction2() {
            Ok(tx) => tx,
            Err((card, pcsc::Error::ResetCard)) => {
                card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
                    .map_err(fail)?;
                select = true;
                card.transaction().map_err(fail)?
            }
            Err((_, e)) => return Err(fail(e)),
        };
        let io = Io::new(&*tx, reader, operation);
        if select {
            self.selected = false;
            select_piv(&io)?;
            self.selected = true;
        }
        f(&io)
        // Dropping `tx` ends the transaction, leaving the card as it is.
    }

    /// How many PIN tries are left, without spending one (an empty VERIFY).
    pub fn pin_tries_left(&mut self) -> Result<PinState, CardError> {
        self.transact("reading the PIN state", |io| {
            let r = io.command(INS_VERIFY, 0x00, KEY_REF_PIN, &[], false)?;
            match r.sw {
                0x9000 => Ok(PinState::Verified),
                0x6983 | 0x63C0 => Ok(PinState::Blocked),
                sw if sw & 0xFFF0 == 0x63C0 => Ok(PinState::TriesLeft((sw & 0x0F) as u8)),
                _ => Err(io.status_error(r.sw)),
            }
        })
    }

    /// Presents the PIN. A wrong one reports the tries left; the PIN must be 6 to 8
    /// characters, checked before anything is sent.
    pub fn verify_pin(&mut self, pin: &str) -> Result<(), CardError> {
        let padded = padded_pin(pin, "PIN")?;
        self.transact("verifying the PIN", |io| verify(io, &padded))
    }

    /// Sets a new PIN, presenting the current one (CHANGE REFERENCE DATA).
    pub fn change_pin(&mut self, old_pin: &str, new_pin: &str) -> Result<(), CardError> {
        self.two_secrets(
            "changing the PIN",
            (INS_CHANGE_REFERENCE_DATA, KEY_REF_PIN),
            [(old_pin, "current PIN"), (new_pin, "new PIN")],
            pin_result,
        )
    }

    /// Sets a new PUK, presenting the current one (CHANGE REFERENCE DATA on key reference 81).
    pub fn change_puk(&mut self, old_puk: &str, new_puk: &str) -> Result<(), CardError> {
        self.two_secrets(
            "changing the PUK",
            (INS_CHANGE_REFERENCE_DATA, KEY_REF_PUK),
            [(old_puk, "current PUK"), (new_puk, "new PUK")],
            puk_result,
        )
    }

    /// Unblocks the PIN with the PUK and sets `new_pin` (RESET RETRY COUNTER).
    pub fn unblock_pin(&mut self, puk: &str, new_pin: &str) -> Result<(), CardError> {
        self.two_secrets(
            "unblocking the PIN",
            (INS_RESET_RETRY_COUNTER, KEY_REF_PIN),
            [(puk, "PUK"), (new_pin, "new PIN")],
            puk_result,
        )
    }

    /// A command whose data is two padded secrets (the one presented, the one set), both
    /// checked for length before anything is sent; `result` reads the status word.
    fn two_secrets(
        &mut self,
        operation: &str,
        (ins, key_reference): (u8, u8),
        secrets: [(&str, &'static str); 2],
        result: fn(&Io<'_>, u16) -> Result<(), CardError>,
    ) -> Result<(), CardError> {
        let mut data = Zeroizing::new(Vec::with_capacity(2 * PIN_LEN));
        for (secret, what) in secrets {
            data.extend_from_slice(&*padded_pin(secret, what)?);
        }
        self.transact(operation, |io| {
            let r = io.command(ins, 0x00, key_reference, &data, false)?;
            result(io, r.sw)
        })
    }

    /// Authenticates to the card with the management key: the mutual authentication of
    /// SP 800-73-4 part 2 Appendix A.2 (witness decrypted, then our challenge checked), so the
    /// card proves it holds the same key.
    pub fn authenticate(&mut self, key: &ManagementKey) -> Result<(), CardError> {
        self.transact("authenticating with the management key", |io| {
            mutual_authenticate(io, key)
        })
    }

    /// Generates a key pair in `slot` (GENERATE ASYMMETRIC KEY PAIR; needs [`Self::authenticate`]
    /// first) and returns its public key as a DER SubjectPublicKeyInfo.
    pub fn generate_key(
        &mut self,
        slot: PivSlot,
        algorithm: KeyAlgorithm,
    ) -> Result<Vec<u8>, CardError> {
        let alg_id = piv_algorithm_id(algorithm)?;
        let operation = format!("generating a {algorithm} key in slot {slot}");
        self.transact(&operation, |io| generate(io, slot, algorithm, alg_id))
    }

    /// Signs `message` with the key in `slot`: hashed on the host with the algorithm's digest
    /// (SHA-256, or SHA-384 for P-384), then GENERAL AUTHENTICATE. Returns the signature as
    /// X.509 and CMS carry it (a DER ECDSA-Sig-Value, or the RSA PKCS#1 v1.5 signature). The
    /// PIN must have been verified (for slot 9C just before: use [`PivKey`]).
    pub fn sign(
        &mut self,
        slot: PivSlot,
        algorithm: KeyAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, CardError> {
        let operation = format!("signing with the key in slot {slot}");
        self.transact(&operation, |io| sign_with(io, slot, algorithm, message))
    }

    /// VERIFY and the signature in one transaction, as a PIN-always key (slot 9C) needs.
    fn verify_and_sign(
        &mut self,
        pin: &str,
        slot: PivSlot,
        algorithm: KeyAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, CardError> {
        let padded = padded_pin(pin, "PIN")?;
        let operation = format!("signing with the key in slot {slot}");
        self.transact(&operation, |io| {
            verify(io, &padded)?;
            sign_with(io, slot, algorithm, message)
        })
    }

    /// The certificate in `slot`, or `None` when the slot has none.
    pub fn read_certificate(&mut self, slot: PivSlot) -> Result<Option<Vec<u8>>, CardError> {
        let operation = format!("reading the certificate in slot {slot}");
        self.transact(&operation, |io| get_certificate(io, slot))
    }

    /// Writes `der` as the certificate of `slot` (PUT DATA of `53 { 70 cert, 71 00, FE }`;
    /// needs [`Self::authenticate`] first).
    pub fn write_certificate(&mut self, slot: PivSlot, der: &[u8]) -> Result<(), CardError> {
        use der::Decode;
        x509_cert::Certificate::from_der(der)
            .map_err(|e| CardError::Core(CoreError::malformed("certificate", e)))?;
        let operation = format!("writing the certificate in slot {slot}");
        self.transact(&operation, |io| {
            let mut object = Vec::with_capacity(der.len() + 16);
            tlv::encode(TAG_CERTIFICATE, der, &mut object).map_err(|e| io.bad(e))?;
            tlv::encode(TAG_CERT_INFO, &[0x00], &mut object).map_err(|e| io.bad(e))?;
            tlv::encode(TAG_ERROR_DETECTION, &[], &mut object).map_err(|e| io.bad(e))?;
            let mut request = Vec::with_capacity(object.len() + 16);
            tlv::encode(TAG_OBJECT_ID, &slot.certificate_object(), &mut request)
                .map_err(|e| io.bad(e))?;
            tlv::encode(TAG_DATA_OBJECT, &object, &mut request).map_err(|e| io.bad(e))?;
            let r = io.command(INS_PUT_DATA, 0x3F, 0xFF, &request, false)?;
            io.ok(r).map(drop)
        })
    }
}

/// One GENERAL AUTHENTICATE exchange with key 9B; the status words in `rejected` mean the card
/// refuses this management key.
fn management_step(
    io: &Io<'_>,
    algorithm: ManagementKeyAlgorithm,
    request: &[u8],
    rejected: &[u16],
) -> Result<Response, CardError> {
    let r = io.command(
        INS_GENERAL_AUTHENTICATE,
        algorithm.id(),
        KEY_REF_MANAGEMENT,
        request,
        true,
    )?;
    match r.sw {
        0x9000 => Ok(r),
        sw if rejected.contains(&sw) => Err(CardError::ManagementKeyRejected),
        sw => Err(io.status_error(sw)),
    }
}

/// GENERAL AUTHENTICATE with key 9B, both ways (SP 800-73-4 part 2 Appendix A.2).
fn mutual_authenticate(io: &Io<'_>, key: &ManagementKey) -> Result<(), CardError> {
    let alg = key.algorithm;
    let block = alg.block_len();

    // Step 1: ask for a witness, encrypted under the key.
    let request = tlv::tlv(TAG_DYNAMIC_AUTH, &[0x80, 0x00]).map_err(|e| io.bad(e))?;
    // Refused: the card's key is of another algorithm (or it has no such key).
    let r = management_step(io, alg, &request, &[0x6A80, 0x6A86, 0x6A88])?;
    let encrypted_witness = auth_template_item(io, &r.data, TAG_WITNESS, block)?;
    let witness = key.crypt(Mode::Decrypt, encrypted_witness)?;

    // Step 2: return it decrypted, with a challenge of our own.
    let mut challenge = vec![0u8; block];
    openssl::rand::rand_bytes(&mut challenge)
        .map_err(|e| CardError::Core(CoreError::openssl(e)))?;
    let mut inner = Zeroizing::new(Vec::with_capacity(2 * block + 4));
    tlv::encode(TAG_WITNESS, &witness, &mut inner).map_err(|e| io.bad(e))?;
    tlv::encode(TAG_CHALLENGE, &challenge, &mut inner).map_err(|e| io.bad(e))?;
    let request = Zeroizing::new(tlv::tlv(TAG_DYNAMIC_AUTH, &inner).map_err(|e| io.bad(e))?);
    // Refused: our decryption of the witness was wrong, so the key is.
    let r = management_step(io, alg, &request, &[0x6982, 0x6A80, 0x6300])?;

    // Step 3: the card's answer must be our challenge under the same key.
    let answer = auth_template_item(io, &r.data, TAG_RESPONSE, block)?;
    let expected = key.crypt(Mode::Encrypt, &challenge)?;
    if !openssl::memcmp::eq(answer, &expected) {
        return Err(CardError::CardNotAuthenticated {
            reader: io.reader().to_string(),
        });
    }
    Ok(())
}

fn generate(
    io: &Io<'_>,
    slot: PivSlot,
    algorithm: KeyAlgorithm,
    alg_id: u8,
) -> Result<Vec<u8>, CardError> {
    // AC { 80 algorithm } : the control reference template (part 2 §3.3.2).
    let template = tlv::tlv(0xAC, &[0x80, 0x01, alg_id]).map_err(|e| io.bad(e))?;
    let r = io.command(
        INS_GENERATE_ASYMMETRIC_KEY_PAIR,
        0x00,
        slot.key_reference(),
        &template,
        true,
    )?;
    let data = io.ok(r)?;
    let spki = public_key_spki(io, algorithm, &data)?;
    match KeyAlgorithm::of_public_key(&spki) {
        Ok(found) if found == algorithm => Ok(spki),
        Ok(found) => Err(io.bad(format!("asked for a {algorithm} key, got {found}"))),
        Err(e) => Err(io.bad(e)),
    }
}

fn get_certificate(io: &Io<'_>, slot: PivSlot) -> Result<Option<Vec<u8>>, CardError> {
    let mut request = Vec::new();
    tlv::encode(TAG_OBJECT_ID, &slot.certificate_object(), &mut request).map_err(|e| io.bad(e))?;
    let r = io.command(INS_GET_DATA, 0x3F, 0xFF, &request, true)?;
    if r.sw == 0x6A82 {
        return Ok(None);
    }
    let data = io.ok(r)?;
    let object = tlv::expect_single(&data, TAG_DATA_OBJECT).map_err(|e| io.bad(e))?;
    let items = tlv::parse_all(object).map_err(|e| io.bad(e))?;
    let Some(cert) = items.iter().find(|t| t.tag == TAG_CERTIFICATE) else {
        return Ok(None);
    };
    // CertInfo bit 0: the certificate is gzip-compressed (part 1 Table 10, note).
    if let Some(info) = items.iter().find(|t| t.tag == TAG_CERT_INFO) {
        if info.value.first().is_some_and(|b| b & 0x01 != 0) {
            return Err(CardError::CompressedCertificate {
                slot: slot.to_string(),
            });
        }
    }
    Ok((!cert.value.is_empty()).then(|| cert.value.to_vec()))
}

fn select_piv(io: &Io<'_>) -> Result<(), CardError> {
    let r = io.command(INS_SELECT, 0x04, 0x00, &PIV_AID, true)?;
    match r.sw {
        // The answer is the application property template (61 …); nothing in it is needed.
        0x9000 => Ok(()),
        sw @ (0x6A82 | 0x6A81 | 0x6D00 | 0x6E00) => Err(CardError::NotPivCard {
            reader: io.reader().to_string(),
            sw,
        }),
        sw => Err(io.status_error(sw)),
    }
}

fn verify(io: &Io<'_>, padded: &[u8; PIN_LEN]) -> Result<(), CardError> {
    let r = io.command(INS_VERIFY, 0x00, KEY_REF_PIN, padded, false)?;
    pin_result(io, r.sw)
}

/// The outcome of a command that presents the PIN (VERIFY, CHANGE REFERENCE DATA).
fn pin_result(io: &Io<'_>, sw: u16) -> Result<(), CardError> {
    match sw {
        0x9000 => Ok(()),
        // 63C0 is "wrong, no tries left": the PIN has just locked.
        0x6983 | 0x63C0 => Err(CardError::PinLocked),
        sw if sw & 0xFFF0 == 0x63C0 => Err(CardError::PinIncorrect {
            tries_left: (sw & 0x0F) as u8,
        }),
        sw => Err(io.status_error(sw)),
    }
}

/// The outcome of a command that presents the PUK (RESET RETRY COUNTER, CHANGE REFERENCE DATA).
fn puk_result(io: &Io<'_>, sw: u16) -> Result<(), CardError> {
    match sw {
        0x9000 => Ok(()),
        0x6983 | 0x63C0 => Err(CardError::PukLocked),
        sw if sw & 0xFFF0 == 0x63C0 => Err(CardError::PukIncorrect {
            tries_left: (sw & 0x0F) as u8,
        }),
        sw => Err(io.status_error(sw)),
    }
}

/// The value of `tag` inside the `7C` dynamic authentication template of a GENERAL
/// AUTHENTICATE answer, which must be `len` bytes long (0 = any length).
fn auth_template_item<'a>(
    io: &Io<'_>,
    data: &'a [u8],
    tag: u32,
    len: usize,
) -> Result<&'a [u8], CardError> {
    let template = tlv::expect_single(data, TAG_DYNAMIC_AUTH).map_err(|e| io.bad(e))?;
    let value = tlv::find(template, tag)
        .map_err(|e| io.bad(e))?
        .ok_or_else(|| io.bad(format!("no tag {tag:02X} in the authentication template")))?;
    if len != 0 && value.len() != len {
        return Err(io.bad(format!(
            "tag {tag:02X} has {} bytes, expected {len}",
            value.len()
        )));
    }
    Ok(value)
}

fn sign_with(
    io: &Io<'_>,
    slot: PivSlot,
    algorithm: KeyAlgorithm,
    message: &[u8],
) -> Result<Vec<u8>, CardError> {
    let alg_id = piv_algorithm_id(algorithm)?;
    let digest = algorithm.digest();
    let hash = digest.digest(message);
    let (input, rsa_len) = match algorithm.rsa_bits() {
        // The card does the raw RSA operation on a block the host has padded.
        Some(bits) => {
            let k = (bits / 8) as usize;
            (pkcs1_v15_block(digest, &hash, k)?, Some(k))
        }
        // ECDSA signs the hash itself (SP 800-73-4 part 2 §3.2.4; hash and curve sizes match).
        None => (hash, None),
    };
    let mut inner = Vec::with_capacity(input.len() + 8);
    tlv::encode(TAG_RESPONSE, &[], &mut inner).map_err(|e| io.bad(e))?;
    tlv::encode(TAG_CHALLENGE, &input, &mut inner).map_err(|e| io.bad(e))?;
    let request = tlv::tlv(TAG_DYNAMIC_AUTH, &inner).map_err(|e| io.bad(e))?;
    let r = io.command(
        INS_GENERAL_AUTHENTICATE,
        alg_id,
        slot.key_reference(),
        &request,
        true,
    )?;
    let data = io.ok(r)?;
    let signature = auth_template_item(io, &data, TAG_RESPONSE, 0)?;
    match rsa_len {
        Some(k) => {
            // I2OSP: an RSA signature is exactly k bytes; a card may drop leading zeros.
            if signature.is_empty() || signature.len() > k {
                return Err(io.bad(format!(
                    "an RSA signature of {} bytes for a {k}-byte modulus",
                    signature.len()
                )));
            }
            let mut out = vec![0u8; k - signature.len()];
            out.extend_from_slice(signature);
            Ok(out)
        }
        None => {
            // The card returns a DER ECDSA-Sig-Value; re-encode it so what leaves here is
            // canonical DER whatever the card's encoder did.
            let sig = openssl::ecdsa::EcdsaSig::from_der(signature)
                .map_err(|e| io.bad(format!("ECDSA signature is not DER: {e}")))?;
            sig.to_der()
                .map_err(|e| CardError::Core(CoreError::openssl(e)))
        }
    }
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2): `00 01 FF…FF 00 DigestInfo`, `k` bytes long.
fn pkcs1_v15_block(digest: DigestAlgorithm, hash: &[u8], k: usize) -> Result<Vec<u8>, CardError> {
    let prefix = digest.pkcs1_digest_info_prefix();
    let t_len = prefix.len() + hash.len();
    if k < t_len + 11 {
        return Err(CardError::Core(CoreError::Signing(format!(
            "a {k}-byte RSA modulus is too short for a {t_len}-byte DigestInfo"
        ))));
    }
    let mut block = Vec::with_capacity(k);
    block.extend_from_slice(&[0x00, 0x01]);
    block.resize(k - t_len - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(prefix);
    block.extend_from_slice(hash);
    Ok(block)
}

/// The SubjectPublicKeyInfo of a GENERATE answer, `7F49 { 81 n, 82 e }` for RSA or
/// `7F49 { 86 point }` for EC (SP 800-73-4 part 2 Table 9), checked by OpenSSL (point on the
/// curve, sane modulus).
fn public_key_spki(
    io: &Io<'_>,
    algorithm: KeyAlgorithm,
    data: &[u8],
) -> Result<Vec<u8>, CardError> {
    use openssl::bn::{BigNum, BigNumContext};
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;

    let template = tlv::expect_single(data, TAG_PUBLIC_KEY).map_err(|e| io.bad(e))?;
    let item = |tag: u32| -> Result<&[u8], CardError> {
        tlv::find(template, tag)
            .map_err(|e| io.bad(e))?
            .ok_or_else(|| io.bad(format!("no tag {tag:02X} in the public key")))
    };
    let bad_key = |e: openssl::error::ErrorStack| io.bad(format!("unusable public key: {e}"));
    let pkey = if algorithm.is_ec() {
        let nid = match algorithm {
            KeyAlgorithm::EcP384 => Nid::SECP384R1,
            _ => Nid::X9_62_PRIME256V1,
        };
        let group = EcGroup::from_curve_name(nid).map_err(bad_key)?;
        let mut ctx = BigNumContext::new().map_err(bad_key)?;
        let point = EcPoint::from_bytes(&group, item(0x86)?, &mut ctx).map_err(bad_key)?;
        let key = EcKey::from_public_key(&group, &point).map_err(bad_key)?;
        key.check_key().map_err(bad_key)?;
        PKey::from_ec_key(key).map_err(bad_key)?
    } else {
        let n = BigNum::from_slice(item(0x81)?).map_err(bad_key)?;
        let e = BigNum::from_slice(item(0x82)?).map_err(bad_key)?;
        PKey::from_rsa(Rsa::from_public_components(n, e).map_err(bad_key)?).map_err(bad_key)?
    };
    pkey.public_key_to_der().map_err(bad_key)
}

impl Drop for PivCard {
    /// Ends the connection leaving the card powered, after resetting the PIN's security status
    /// (VERIFY with P1 = FF, SP 800-73-4 part 2 §3.2.1) so what this connection unlocked does
    /// not outlive it. Not a card reset: pcscd reports a reset to every other program's
    /// connection a moment later, and OpenSC 0.23's PKCS#11 module can deadlock in
    /// C_GetTokenInfo when it meets one (seen here: `imza card enroll` right before
    /// `imza sign --card`).
    fn drop(&mut self) {
        if self.selected {
            let _ = self.transact("ending the session", |io| {
                io.command(INS_VERIFY, 0xFF, KEY_REF_PIN, &[], false)
                    .map(|_| ())
            });
        }
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(Disposition::LeaveCard);
        }
    }
}

/// A key on a PIV card as an imza signing key — how the CSR is signed during enrollment. The
/// PIN is verified right before each signature, in the same transaction (slot 9C keys are
/// "PIN always"), and each signature is checked against the public key before it is returned.
pub struct PivKey {
    card: Mutex<PivCard>,
    reader: String,
    slot: PivSlot,
    algorithm: KeyAlgorithm,
    spki_der: Vec<u8>,
    pin: Zeroizing<String>,
}

impl fmt::Debug for PivKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PivKey")
            .field("reader", &self.reader)
            .field("slot", &self.slot)
            .field("algorithm", &self.algorithm)
            .field("pin", &"<redacted>")
            .finish()
    }
}

impl PivKey {
    /// `spki_der` is the key's public key (from [`PivCard::generate_key`], or the slot's
    /// certificate); `pin` is checked for length now and presented before every signature.
    pub fn new(
        card: PivCard,
        slot: PivSlot,
        spki_der: Vec<u8>,
        pin: Zeroizing<String>,
    ) -> Result<Self, CardError> {
        let algorithm = KeyAlgorithm::of_public_key(&spki_der)?;
        piv_algorithm_id(algorithm)?;
        padded_pin(&pin, "PIN")?;
        Ok(PivKey {
            reader: card.reader.clone(),
            card: Mutex::new(card),
            slot,
            algorithm,
            spki_der,
            pin,
        })
    }

    pub fn slot(&self) -> PivSlot {
        self.slot
    }

    /// The card back, e.g. to write the issued certificate; the PIN is wiped.
    pub fn into_card(self) -> PivCard {
        self.card.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    fn check_signature(&self, message: &[u8], signature: &[u8]) -> Result<bool, CoreError> {
        let key =
            openssl::pkey::PKey::public_key_from_der(&self.spki_der).map_err(CoreError::openssl)?;
        let mut verifier =
            openssl::sign::Verifier::new(self.algorithm.digest().message_digest(), &key)
                .map_err(CoreError::openssl)?;
        verifier.update(message).map_err(CoreError::openssl)?;
        Ok(verifier.verify(signature).unwrap_or(false))
    }
}

impl SigningKey for PivKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> Result<Vec<u8>, CoreError> {
        Ok(self.spki_der.clone())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        let mut card = self.card.lock().unwrap_or_else(|p| p.into_inner());
        let signature = card
            .verify_and_sign(&self.pin, self.slot, self.algorithm, message)
            .map_err(|e| self.core_error(e))?;
        if !self.check_signature(message, &signature)? {
            return Err(CoreError::Signing(format!(
                "the signature made by {} does not verify with its public key (another key in \
                 the slot, or a faulty card)",
                self.describe()
            )));
        }
        Ok(signature)
    }

    fn describe(&self) -> String {
        format!(
            "PIV slot {} ({}) on the card in reader {:?}",
            self.slot,
            self.slot.purpose(),
            self.reader
        )
    }
}

impl PivKey {
    /// CoreError has no card variants: PIN trouble goes to its PIN errors (a user error the CLI
    /// reports as such), everything else to `Signing` with the card error's words.
    fn core_error(&self, e: CardError) -> CoreError {
        let token = format!("PIV card in reader {:?}", self.reader);
        match e {
            CardError::PinIncorrect { tries_left } => CoreError::Pkcs11PinIncorrect {
                token,
                tries_left: format!(
                    " ({tries_left} {} left before the PIN locks)",
                    if tries_left == 1 { "try" } else { "tries" }
                ),
            },
            CardError::PinLocked => CoreError::Pkcs11PinLocked { token },
            CardError::Core(e) => e,
            e => CoreError::Signing(e.to_string()),
        }
    }
}

/// The host side of the card edge over answers from a byte script instead of a card, for the
/// fuzz targets in `fuzz/` (not an API: it may change at any time). Card answers are untrusted,
/// so every operation that reads one must end in `Ok` or `Err` whatever the card says.
#[doc(hidden)]
pub mod fuzzing {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use imza_core::KeyAlgorithm;

    use super::apdu::{Io, Transmit};
    use super::{
        generate, get_certificate, mutual_authenticate, piv_algorithm_id, select_piv, sign_with,
        tlv, verify, ManagementKey, PivSlot, PIN_LEN,
    };

    /// A card that gives each command the next answer (data and status word), then is gone.
    struct Answers(RefCell<VecDeque<Vec<u8>>>);

    impl Transmit for Answers {
        fn transmit(&self, _apdu: &[u8]) -> Result<Vec<u8>, pcsc::Error> {
            self.0
                .borrow_mut()
                .pop_front()
                .ok_or(pcsc::Error::RemovedCard)
        }
    }

    /// Runs every PIV operation that reads a card answer, one after another, over `answers`.
    pub fn run_operations(answers: Vec<Vec<u8>>) {
        let card = Answers(RefCell::new(answers.into()));
        let io = Io::new(&card, "fuzz", "fuzz");
        let _ = select_piv(&io);
        let _ = get_certificate(&io, PivSlot::Authentication);
        let _ = verify(&io, &[0x31; PIN_LEN]);
        for key in [
            ManagementKey::default_3des(),
            ManagementKey::default_aes192(),
        ] {
            let _ = mutual_authenticate(&io, &key);
        }
        for algorithm in [
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
        ] {
            if let Ok(id) = piv_algorithm_id(algorithm) {
                let _ = generate(&io, PivSlot::Signature, algorithm, id);
            }
            let _ = sign_with(&io, PivSlot::Signature, algorithm, b"fuzz");
        }
    }

    /// Reads `input` as BER-TLV every way the card edge does.
    pub fn read_tlv(input: &[u8]) {
        let _ = tlv::parse_one(input);
        let _ = tlv::parse_all(input);
        let _ = tlv::find(input, 0x7C);
        let _ = tlv::expect_single(input, 0x53);
    }
}

#[cfg(test)]
mod tests {
    use super::apdu::script::{with_sw, Script};
    use super::*;

    /// An answer wrapped as `tag { value }` with status 9000.
    fn answer(tag: u32, value: &[u8]) -> Vec<u8> {
        with_sw(&tlv::tlv(tag, value).unwrap(), 0x9000)
    }

    #[test]
    fn a_card_that_cannot_answer_our_challenge_is_not_trusted() {
        let key = ManagementKey::default_3des();
        let witness = answer(TAG_DYNAMIC_AUTH, &tlv::tlv(TAG_WITNESS, &[7; 8]).unwrap());
        let wrong = answer(TAG_DYNAMIC_AUTH, &tlv::tlv(TAG_RESPONSE, &[0; 8]).unwrap());
        let card = Script::new(&[&witness, &wrong], None);
        let io = Io::new(&card, "r", "auth");
        assert!(matches!(
            mutual_authenticate(&io, &key),
            Err(CardError::CardNotAuthenticated { .. })
        ));
        // What we sent back: the witness decrypted, and an 8-byte challenge.
        let sent = card.sent.borrow();
        let step2 = &sent[1];
        assert_eq!(&step2[..4], &[0x00, 0x87, 0x03, 0x9B]);
        let body = &step2[5..step2.len() - 1];
        let inner = tlv::expect_single(body, TAG_DYNAMIC_AUTH).unwrap();
        let w = tlv::find(inner, TAG_WITNESS).unwrap().unwrap();
        assert_eq!(*key.crypt(Mode::Encrypt, w).unwrap(), [7; 8]);
        assert_eq!(tlv::find(inner, TAG_CHALLENGE).unwrap().unwrap().len(), 8);
    }

    #[test]
    fn management_auth_refuses_malformed_or_refusing_answers() {
        let key = ManagementKey::default_3des();
        let short = answer(TAG_DYNAMIC_AUTH, &tlv::tlv(TAG_WITNESS, &[7; 4]).unwrap());
        let witness = answer(TAG_DYNAMIC_AUTH, &tlv::tlv(TAG_WITNESS, &[7; 8]).unwrap());
        type Expect = fn(&CardError) -> bool;
        let cases: [(&[&[u8]], Expect); 5] = [
            (&[&short], |e| matches!(e, CardError::BadResponse { .. })),
            (&[&[0x7C, 0x0A, 0x80, 0x08, 1, 0x90, 0x00]], |e| {
                matches!(e, CardError::BadResponse { .. })
            }),
            (&[&[0x6A, 0x86]], |e| {
                matches!(e, CardError::ManagementKeyRejected)
            }),
            (&[&witness, &[0x69, 0x82]], |e| {
                matches!(e, CardError::ManagementKeyRejected)
            }),
            (&[&witness, &[0x69, 0x83]], |e| {
                matches!(e, CardError::CardStatus { sw: 0x6983, .. })
            }),
        ];
        for (answers, expected) in cases {
            let card = Script::new(answers, None);
            let e = mutual_authenticate(&Io::new(&card, "r", "auth"), &key).unwrap_err();
            assert!(expected(&e), "{answers:02X?}: {e:?}");
        }
    }

    #[test]
    fn generated_public_keys_are_checked() {
        // A P-256 "point" that is not on the curve.
        let mut point = vec![0x04];
        point.extend_from_slice(&[0x11; 64]);
        let off_curve = answer(TAG_PUBLIC_KEY, &tlv::tlv(0x86, &point).unwrap());
        // An RSA-1024 key where RSA-2048 was asked for.
        let small = openssl::rsa::Rsa::generate(1024).unwrap();
        let mut inner = tlv::tlv(0x81, &small.n().to_vec()).unwrap();
        inner.extend(tlv::tlv(0x82, &small.e().to_vec()).unwrap());
        let rsa1024 = answer(TAG_PUBLIC_KEY, &inner);
        let no_point = answer(TAG_PUBLIC_KEY, &tlv::tlv(0x99, &[1]).unwrap());
        for (alg, reply) in [
            (KeyAlgorithm::EcP256, off_curve),
            (KeyAlgorithm::Rsa2048, rsa1024),
            (KeyAlgorithm::EcP256, no_point),
            (
                KeyAlgorithm::EcP256,
                vec![0x7F, 0x49, 0x82, 0x01, 0x90, 0x00],
            ),
        ] {
            let card = Script::new(&[&reply], None);
            let e =
                generate(&Io::new(&card, "r", "gen"), PivSlot::Signature, alg, 0x11).unwrap_err();
            assert!(matches!(e, CardError::BadResponse { .. }), "{e:?}");
        }
    }

    #[test]
    fn signatures_from_the_card_are_checked_for_shape() {
        let sig = |value: &[u8]| answer(TAG_DYNAMIC_AUTH, &tlv::tlv(TAG_RESPONSE, value).unwrap());
        // RSA: longer than the modulus is refused, a dropped leading zero restored.
        // (The padded block is chained: the first link is answered 9000.)
        let card = Script::new(&[&[0x90, 0x00], &sig(&[1; 257])], None);
        let e = sign_with(
            &Io::new(&card, "r", "s"),
            PivSlot::Signature,
            KeyAlgorithm::Rsa2048,
            b"m",
        );
        assert!(matches!(e, Err(CardError::BadResponse { .. })), "{e:?}");
        let card = Script::new(&[&[0x90, 0x00], &sig(&[1; 255])], None);
        let s = sign_with(
            &Io::new(&card, "r", "s"),
            PivSlot::Signature,
            KeyAlgorithm::Rsa2048,
            b"m",
        )
        .unwrap();
        assert_eq!((s.len(), s[0], s[1]), (256, 0, 1));
        // The host padded the block: 00 01 FF … 00 DigestInfo, chained over two APDUs.
        let sent = card.sent.borrow();
        assert_eq!((sent.len(), sent[0][0], sent[1][0]), (2, 0x10, 0x00));
        // ECDSA: not DER is refused.
        let card = Script::new(&[&sig(&[0x30, 0x03, 0x02, 0x01])], None);
        let e = sign_with(
            &Io::new(&card, "r", "s"),
            PivSlot::Signature,
            KeyAlgorithm::EcP256,
            b"m",
        );
        assert!(matches!(e, Err(CardError::BadResponse { .. })), "{e:?}");
        // ECDSA: the hash is what the card gets, 32 bytes for P-256.
        let good = openssl::ecdsa::EcdsaSig::from_private_components(
            openssl::bn::BigNum::from_u32(5).unwrap(),
            openssl::bn::BigNum::from_u32(9).unwrap(),
        )
        .unwrap()
        .to_der()
        .unwrap();
        let card = Script::new(&[&sig(&good)], None);
        let s = sign_with(
            &Io::new(&card, "r", "s"),
            PivSlot::Signature,
            KeyAlgorithm::EcP256,
            b"m",
        )
        .unwrap();
        assert_eq!(s, good);
        let sent = card.sent.borrow();
        let body = &sent[0][5..sent[0].len() - 1];
        let inner = tlv::expect_single(body, TAG_DYNAMIC_AUTH).unwrap();
        assert_eq!(
            tlv::find(inner, TAG_CHALLENGE).unwrap().unwrap(),
            &openssl::sha::sha256(b"m")[..]
        );
    }

    #[test]
    fn certificate_objects_are_read_with_care() {
        let read = |reply: &[u8]| {
            let card = Script::new(&[reply], None);
            get_certificate(&Io::new(&card, "r", "read"), PivSlot::Authentication)
        };
        let object = |items: &[(u32, &[u8])]| {
            let mut inner = Vec::new();
            for (tag, value) in items {
                tlv::encode(*tag, value, &mut inner).unwrap();
            }
            answer(TAG_DATA_OBJECT, &inner)
        };
        assert_eq!(read(&[0x6A, 0x82]).unwrap(), None);
        assert_eq!(read(&answer(TAG_DATA_OBJECT, &[])).unwrap(), None);
        assert_eq!(
            read(&object(&[(0x70, &[1, 2, 3]), (0x71, &[0]), (0xFE, &[])])).unwrap(),
            Some(vec![1, 2, 3])
        );
        assert!(matches!(
            read(&object(&[(0x70, &[1, 2, 3]), (0x71, &[1]), (0xFE, &[])])),
            Err(CardError::CompressedCertificate { .. })
        ));
        // Truncated, trailing bytes, another tag, a refusal.
        for bad in [
            &[0x53, 0x82, 0x10, 0x00, 0x70, 0x90, 0x00][..],
            &[0x53, 0x00, 0x00, 0x90, 0x00],
            &[0x54, 0x00, 0x90, 0x00],
        ] {
            assert!(
                matches!(read(bad), Err(CardError::BadResponse { .. })),
                "{bad:02X?}"
            );
        }
        assert!(matches!(
            read(&[0x69, 0x82]),
            Err(CardError::CardStatus { sw: 0x6982, .. })
        ));
    }

    #[test]
    fn slots_parse_and_print_as_key_references() {
        for slot in PivSlot::ALL {
            let text = slot.to_string();
            assert_eq!(text.parse::<PivSlot>().unwrap(), slot);
            assert_eq!(text.to_lowercase().parse::<PivSlot>().unwrap(), slot);
        }
        assert_eq!("0x9c".parse::<PivSlot>().unwrap(), PivSlot::Signature);
        assert_eq!("signature".parse::<PivSlot>().unwrap(), PivSlot::Signature);
        assert_eq!(PivSlot::Signature.certificate_object(), [0x5F, 0xC1, 0x0A]);
        assert!(matches!(
            "9b".parse::<PivSlot>(),
            Err(CardError::UnknownSlot { .. })
        ));
    }

    #[test]
    fn pins_are_padded_and_bad_lengths_refused() {
        assert_eq!(
            *padded_pin("123456", "PIN").unwrap(),
            [b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF]
        );
        assert_eq!(*padded_pin("12345678", "PIN").unwrap(), *b"12345678");
        for bad in ["", "12345", "123456789"] {
            match padded_pin(bad, "PIN") {
                Err(CardError::PinFormat {
                    what: "PIN",
                    reason,
                }) => {
                    assert!(reason.contains("6 to 8"), "{reason}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn management_keys_parse_by_length_and_never_print() {
        let default =
            ManagementKey::from_hex("010203040506070801020304050607080102030405060708").unwrap();
        assert_eq!(default.algorithm(), ManagementKeyAlgorithm::TripleDes);
        assert_eq!(*default.key, *ManagementKey::default_3des().key);
        assert!(matches!(
            ManagementKey::from_hex("00112233445566778899aabbccddeeff"),
            Err(CardError::ManagementKeyFormat { .. })
        ));
        let aes = ManagementKey::from_hex_with(
            ManagementKeyAlgorithm::Aes128,
            "00112233445566778899aabbccddeeff",
        )
        .unwrap();
        assert_eq!(aes.algorithm().id(), 0x08);
        assert!(ManagementKey::from_hex_with(ManagementKeyAlgorithm::Aes256, "0011").is_err());
        let e = ManagementKey::from_hex("01020304050607080102030405060708010203040506070Z")
            .unwrap_err()
            .to_string();
        assert!(!e.contains('Z'), "the error echoes key material: {e}");
        let debug = format!("{default:?}");
        assert!(
            debug.contains("redacted") && !debug.contains("0102"),
            "{debug}"
        );
    }

    #[test]
    fn management_key_ciphers_round_trip_one_block() {
        for key in [
            ManagementKey::default_3des(),
            ManagementKey::default_aes192(),
            ManagementKey::from_hex_with(ManagementKeyAlgorithm::Aes256, &"ab".repeat(32)).unwrap(),
        ] {
            let block = vec![0x42u8; key.algorithm().block_len()];
            let enc = key.crypt(Mode::Encrypt, &block).unwrap();
            assert_eq!(enc.len(), block.len());
            assert_ne!(*enc, block);
            assert_eq!(*key.crypt(Mode::Decrypt, &enc).unwrap(), block);
        }
    }

    #[test]
    fn pkcs1_block_matches_rfc_8017() {
        let hash = [0xAB; 32];
        let block = pkcs1_v15_block(DigestAlgorithm::Sha256, &hash, 256).unwrap();
        assert_eq!(block.len(), 256);
        assert_eq!(&block[..2], &[0x00, 0x01]);
        let t = [
            DigestAlgorithm::Sha256.pkcs1_digest_info_prefix(),
            &hash[..],
        ]
        .concat();
        assert_eq!(&block[256 - t.len()..], &t[..]);
        assert_eq!(block[256 - t.len() - 1], 0x00);
        assert!(block[2..256 - t.len() - 1].iter().all(|&b| b == 0xFF));
        assert!(pkcs1_v15_block(DigestAlgorithm::Sha256, &hash, 40).is_err());
    }

    #[test]
    fn only_piv_key_types_are_accepted() {
        assert_eq!(piv_algorithm_id(KeyAlgorithm::EcP256).unwrap(), 0x11);
        assert_eq!(piv_algorithm_id(KeyAlgorithm::EcP384).unwrap(), 0x14);
        assert_eq!(piv_algorithm_id(KeyAlgorithm::Rsa2048).unwrap(), 0x07);
        let e = piv_algorithm_id(KeyAlgorithm::Rsa4096)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rsa-4096") && e.contains("ec-p256"), "{e}");
    }
}
