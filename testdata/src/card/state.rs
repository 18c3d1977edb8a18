//! What a PIV card keeps across power cycles (NIST SP 800-73-4 part 1 §3 data objects, part 2 §2.4
//! key references): PIN and PUK with their retry counters, the card management key, the data
//! objects, and the private keys of the four PIV slots. Saved as JSON with the keys in PKCS#8, so
//! a card can be "removed" by one process and inserted again by another.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::tlv;

/// A PIV key slot (SP 800-73-4 part 1 Table 4b key references).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PivSlot {
    /// 9A, PIV Authentication: PIN once per session.
    Authentication,
    /// 9C, Digital Signature: PIN immediately before every signature.
    Signature,
    /// 9D, Key Management: PIN once per session.
    KeyManagement,
    /// 9E, Card Authentication: no PIN.
    CardAuthentication,
}

impl PivSlot {
    pub const ALL: [PivSlot; 4] = [
        PivSlot::Authentication,
        PivSlot::Signature,
        PivSlot::KeyManagement,
        PivSlot::CardAuthentication,
    ];

    /// The key reference used in GENERAL AUTHENTICATE and GENERATE ASYMMETRIC KEY PAIR.
    pub fn key_reference(self) -> u8 {
        match self {
            PivSlot::Authentication => 0x9A,
            PivSlot::Signature => 0x9C,
            PivSlot::KeyManagement => 0x9D,
            PivSlot::CardAuthentication => 0x9E,
        }
    }

    pub fn from_key_reference(reference: u8) -> Option<PivSlot> {
        PivSlot::ALL
            .into_iter()
            .find(|slot| slot.key_reference() == reference)
    }

    /// The tag of the slot's certificate data object (SP 800-73-4 part 1 Table 3).
    pub fn certificate_tag(self) -> u32 {
        match self {
            PivSlot::Authentication => 0x5FC105,
            PivSlot::Signature => 0x5FC10A,
            PivSlot::KeyManagement => 0x5FC10B,
            PivSlot::CardAuthentication => 0x5FC101,
        }
    }
}

/// An asymmetric algorithm a slot's key can have (SP 800-78-4 Table 6-2 identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PivAlgorithm {
    /// 07
    Rsa2048,
    /// 11
    EcP256,
    /// 14
    EcP384,
}

impl PivAlgorithm {
    pub fn identifier(self) -> u8 {
        match self {
            PivAlgorithm::Rsa2048 => 0x07,
            PivAlgorithm::EcP256 => 0x11,
            PivAlgorithm::EcP384 => 0x14,
        }
    }

    pub fn from_identifier(identifier: u8) -> Option<PivAlgorithm> {
        [
            PivAlgorithm::Rsa2048,
            PivAlgorithm::EcP256,
            PivAlgorithm::EcP384,
        ]
        .into_iter()
        .find(|a| a.identifier() == identifier)
    }

    /// A fresh private key of this algorithm.
    pub(crate) fn generate(self) -> PKey<Private> {
        let generated = match self {
            PivAlgorithm::Rsa2048 => Rsa::generate(2048).and_then(PKey::from_rsa),
            PivAlgorithm::EcP256 | PivAlgorithm::EcP384 => {
                let curve = if self == PivAlgorithm::EcP256 {
                    Nid::X9_62_PRIME256V1
                } else {
                    Nid::SECP384R1
                };
                EcGroup::from_curve_name(curve)
                    .and_then(|group| EcKey::generate(&group))
                    .and_then(PKey::from_ec_key)
            }
        };
        generated.unwrap_or_else(|e| panic!("OpenSSL could not generate a {self:?} key: {e}"))
    }
}

/// The symmetric algorithm of the card management key (key reference 9B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagementAlgorithm {
    /// 03: three-key Triple DES, the PIV default.
    TripleDes,
    /// 08
    Aes128,
    /// 0A
    Aes192,
    /// 0C
    Aes256,
}

impl ManagementAlgorithm {
    pub fn identifier(self) -> u8 {
        match self {
            ManagementAlgorithm::TripleDes => 0x03,
            ManagementAlgorithm::Aes128 => 0x08,
            ManagementAlgorithm::Aes192 => 0x0A,
            ManagementAlgorithm::Aes256 => 0x0C,
        }
    }

    pub fn from_identifier(identifier: u8) -> Option<ManagementAlgorithm> {
        [
            ManagementAlgorithm::TripleDes,
            ManagementAlgorithm::Aes128,
            ManagementAlgorithm::Aes192,
            ManagementAlgorithm::Aes256,
        ]
        .into_iter()
        .find(|a| a.identifier() == identifier)
    }

    pub fn key_length(self) -> usize {
        match self {
            ManagementAlgorithm::TripleDes | ManagementAlgorithm::Aes192 => 24,
            ManagementAlgorithm::Aes128 => 16,
            ManagementAlgorithm::Aes256 => 32,
        }
    }

    pub fn block_length(self) -> usize {
        match self {
            ManagementAlgorithm::TripleDes => 8,
            _ => 16,
        }
    }

    pub(crate) fn ecb_cipher(self) -> openssl::symm::Cipher {
        use openssl::symm::Cipher;
        match self {
            ManagementAlgorithm::TripleDes => Cipher::des_ede3(),
            ManagementAlgorithm::Aes128 => Cipher::aes_128_ecb(),
            ManagementAlgorithm::Aes192 => Cipher::aes_192_ecb(),
            ManagementAlgorithm::Aes256 => Cipher::aes_256_ecb(),
        }
    }
}

/// The PIV default card management key (SP 800-73-4 does not fix one; every vendor ships this).
pub const DEFAULT_MANAGEMENT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];
pub const DEFAULT_PIN: &str = "123456";
pub const DEFAULT_PUK: &str = "12345678";

/// The discovery object (SP 800-73-4 part 1 §3.3.2): the PIV AID and a PIN usage policy of
/// "PIV Card Application PIN only". Fixed by the card, not writable.
pub const DISCOVERY_OBJECT: [u8; 20] = [
    0x7E, 0x12, 0x4F, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x5F,
    0x2F, 0x02, 0x40, 0x00,
];

/// A key held in a slot. The private key never leaves the emulator except into the state file.
#[derive(Clone)]
pub(crate) struct SlotKey {
    pub algorithm: PivAlgorithm,
    pub key: PKey<Private>,
}

/// Everything a PIV card keeps across power cycles and removals. Cloning copies the whole card.
#[derive(Clone)]
pub struct PivCardState {
    /// The PIN as VERIFY carries it: the digits padded to 8 bytes with FF.
    pub(crate) pin: Zeroizing<[u8; 8]>,
    pub(crate) pin_tries_max: u8,
    pub(crate) pin_tries_left: u8,
    pub(crate) puk: Zeroizing<[u8; 8]>,
    pub(crate) puk_tries_max: u8,
    pub(crate) puk_tries_left: u8,
    pub(crate) management_algorithm: ManagementAlgorithm,
    pub(crate) management_key: Zeroizing<Vec<u8>>,
    /// Data objects by tag, each as GET DATA returns it (the whole `53` TLV).
    pub(crate) objects: BTreeMap<u32, Vec<u8>>,
    pub(crate) keys: BTreeMap<PivSlot, SlotKey>,
}

impl Default for PivCardState {
    fn default() -> Self {
        PivCardState::new()
    }
}

impl std::fmt::Debug for PivCardState {
    // Secrets stay out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PivCardState")
            .field("pin_tries_left", &self.pin_tries_left)
            .field("puk_tries_left", &self.puk_tries_left)
            .field("objects", &self.objects.keys().collect::<Vec<_>>())
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Pads a PIN or PUK of 1 to 8 bytes to the 8 bytes VERIFY carries (SP 800-73-4 part 2 §2.4.3).
pub(crate) fn pad_reference_data(value: &[u8]) -> Option<Zeroizing<[u8; 8]>> {
    if value.is_empty() || value.len() > 8 {
        return None;
    }
    let mut padded = Zeroizing::new([0xFF; 8]);
    padded[..value.len()].copy_from_slice(value);
    Some(padded)
}

/// True for a PIV PIN as VERIFY carries it: 6 to 8 ASCII digits, then FF padding.
pub(crate) fn is_valid_padded_pin(padded: &[u8]) -> bool {
    let digits = padded.iter().take_while(|&&b| b != 0xFF).count();
    padded.len() == 8
        && (6..=8).contains(&digits)
        && padded[..digits].iter().all(u8::is_ascii_digit)
        && padded[digits..].iter().all(|&b| b == 0xFF)
}

impl PivCardState {
    /// PIN "123456" (3 tries), PUK "12345678" (3 tries), the PIV default 3DES management key
    /// 010203040506070801020304050607080102030405060708, a CHUID with a random card UUID, no keys.
    pub fn new() -> Self {
        PivCardState::with_pin(DEFAULT_PIN, 3)
    }

    /// A new card whose PIN is `pin` (6 to 8 digits; panics otherwise) with `tries` tries.
    pub fn with_pin(pin: &str, tries: u8) -> Self {
        let padded = pad_reference_data(pin.as_bytes())
            .filter(|padded| is_valid_padded_pin(&padded[..]))
            .unwrap_or_else(|| panic!("a PIV PIN is 6 to 8 digits"));
        assert!(tries > 0 && tries <= 15, "PIN tries must be 1 to 15");
        let mut objects = BTreeMap::new();
        objects.insert(0x5FC102, chuid());
        objects.insert(0x5FC107, ccc());
        PivCardState {
            pin: padded,
            pin_tries_max: tries,
            pin_tries_left: tries,
            puk: pad_reference_data(DEFAULT_PUK.as_bytes()).unwrap_or_default(),
            puk_tries_max: 3,
            puk_tries_left: 3,
            management_algorithm: ManagementAlgorithm::TripleDes,
            management_key: Zeroizing::new(DEFAULT_MANAGEMENT_KEY.to_vec()),
            objects,
            keys: BTreeMap::new(),
        }
    }

    /// Replaces the PUK (1 to 8 bytes; panics otherwise) and its retry counter.
    pub fn set_puk(&mut self, puk: &str, tries: u8) {
        self.puk = pad_reference_data(puk.as_bytes()).expect("a PIV PUK is 1 to 8 bytes");
        assert!(tries > 0 && tries <= 15, "PUK tries must be 1 to 15");
        self.puk_tries_max = tries;
        self.puk_tries_left = tries;
    }

    /// Replaces the card management key; `key` must have the algorithm's length.
    pub fn set_management_key(&mut self, algorithm: ManagementAlgorithm, key: &[u8]) {
        assert_eq!(
            key.len(),
            algorithm.key_length(),
            "{algorithm:?} key length"
        );
        self.management_algorithm = algorithm;
        self.management_key = Zeroizing::new(key.to_vec());
    }

    /// Provisioning outside the card protocol (for tests not about enrollment): a fresh key in
    /// `slot`, returning its SubjectPublicKeyInfo DER.
    pub fn generate_key(&mut self, slot: PivSlot, algorithm: PivAlgorithm) -> Vec<u8> {
        let key = algorithm.generate();
        let spki = key
            .public_key_to_der()
            .unwrap_or_else(|e| panic!("OpenSSL could not encode a public key: {e}"));
        self.keys.insert(slot, SlotKey { algorithm, key });
        spki
    }

    /// Writes `der` as the certificate of `slot` (the X.509 certificate object of SP 800-73-4
    /// part 1 Table 10: `53 { 70 cert, 71 00, FE 00 }`).
    pub fn set_certificate(&mut self, slot: PivSlot, der: &[u8]) {
        let body = [
            tlv::encode(0x70, der),
            tlv::encode(0x71, &[0x00]),
            tlv::encode(0xFE, &[]),
        ]
        .concat();
        self.objects
            .insert(slot.certificate_tag(), tlv::encode(0x53, &body));
    }

    /// The certificate DER of `slot`, if its object holds one.
    pub fn certificate(&self, slot: PivSlot) -> Option<Vec<u8>> {
        let object = self.objects.get(&slot.certificate_tag())?;
        let body = tlv::parse_single(object, 0x53)?;
        let children = tlv::parse_all(body).ok()?;
        tlv::find(&children, 0x70).map(<[u8]>::to_vec)
    }

    /// The SubjectPublicKeyInfo DER of the key in `slot`.
    pub fn public_key(&self, slot: PivSlot) -> Option<Vec<u8>> {
        self.keys.get(&slot)?.key.public_key_to_der().ok()
    }

    /// The algorithm of the key in `slot`.
    pub fn key_algorithm(&self, slot: PivSlot) -> Option<PivAlgorithm> {
        self.keys.get(&slot).map(|k| k.algorithm)
    }

    pub fn pin_tries_left(&self) -> u8 {
        self.pin_tries_left
    }

    pub fn puk_tries_left(&self) -> u8 {
        self.puk_tries_left
    }

    /// The card's GUID (CHUID tag 34), which OpenSC shows as the token serial number.
    pub fn guid(&self) -> Option<Vec<u8>> {
        let object = self.objects.get(&0x5FC102)?;
        let children = tlv::parse_all(tlv::parse_single(object, 0x53)?).ok()?;
        tlv::find(&children, 0x34).map(<[u8]>::to_vec)
    }

    /// Writes the state to `path` (mode 0600, through a temporary file and a rename, so a reader
    /// never sees half a file).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;

        let json = Zeroizing::new(serde_json::to_vec_pretty(&self.to_file()?)?);
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = std::path::PathBuf::from(temporary);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    }

    /// Reads a state written by [`PivCardState::save`].
    pub fn load(path: &Path) -> io::Result<Self> {
        let json = Zeroizing::new(std::fs::read(path)?);
        let file: StateFile = serde_json::from_slice(&json)?;
        PivCardState::from_file(file).map_err(|what| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {what}", path.display()),
            )
        })
    }

    fn to_file(&self) -> io::Result<StateFile> {
        let mut keys = BTreeMap::new();
        for (slot, key) in &self.keys {
            let pkcs8 = Zeroizing::new(key.key.private_key_to_pkcs8().map_err(io::Error::other)?);
            keys.insert(
                format!("{:02x}", slot.key_reference()),
                KeyFile {
                    algorithm: key.algorithm.identifier(),
                    pkcs8: Zeroizing::new(hex::encode(&*pkcs8)),
                },
            );
        }
        Ok(StateFile {
            version: 1,
            pin: Zeroizing::new(hex::encode(&self.pin[..])),
            pin_tries_max: self.pin_tries_max,
            pin_tries_left: self.pin_tries_left,
            puk: Zeroizing::new(hex::encode(&self.puk[..])),
            puk_tries_max: self.puk_tries_max,
            puk_tries_left: self.puk_tries_left,
            management_algorithm: self.management_algorithm.identifier(),
            management_key: Zeroizing::new(hex::encode(&*self.management_key)),
            objects: self
                .objects
                .iter()
                .map(|(tag, value)| (format!("{tag:x}"), hex::encode(value)))
                .collect(),
            keys,
        })
    }

    fn from_file(file: StateFile) -> Result<Self, String> {
        fn secret_hex<const N: usize>(
            hex_text: &str,
            what: &str,
        ) -> Result<Zeroizing<[u8; N]>, String> {
            let mut out = Zeroizing::new([0u8; N]);
            hex::decode_to_slice(hex_text, &mut out[..]).map_err(|e| format!("{what}: {e}"))?;
            Ok(out)
        }
        if file.version != 1 {
            return Err(format!("unknown state file version {}", file.version));
        }
        let tries_ok = |left: u8, max: u8| max > 0 && max <= 15 && left <= max;
        if !tries_ok(file.pin_tries_left, file.pin_tries_max)
            || !tries_ok(file.puk_tries_left, file.puk_tries_max)
        {
            return Err("retry counters out of range".into());
        }
        let management_algorithm = ManagementAlgorithm::from_identifier(file.management_algorithm)
            .ok_or_else(|| format!("management algorithm {:02x}", file.management_algorithm))?;
        let management_key = Zeroizing::new(
            hex::decode(&*file.management_key).map_err(|e| format!("management key: {e}"))?,
        );
        if management_key.len() != management_algorithm.key_length() {
            return Err("management key length does not fit its algorithm".into());
        }
        let mut objects = BTreeMap::new();
        for (tag, value) in &file.objects {
            let tag = u32::from_str_radix(tag, 16).map_err(|e| format!("object tag {tag}: {e}"))?;
            let value = hex::decode(value).map_err(|e| format!("object {tag:x}: {e}"))?;
            objects.insert(tag, value);
        }
        let mut keys = BTreeMap::new();
        for (reference, key) in &file.keys {
            let slot = u8::from_str_radix(reference, 16)
                .ok()
                .and_then(PivSlot::from_key_reference)
                .ok_or_else(|| format!("key slot {reference}"))?;
            let algorithm = PivAlgorithm::from_identifier(key.algorithm)
                .ok_or_else(|| format!("key algorithm {:02x}", key.algorithm))?;
            let pkcs8 = Zeroizing::new(
                hex::decode(&*key.pkcs8).map_err(|e| format!("key {reference}: {e}"))?,
            );
            let private = PKey::private_key_from_pkcs8(&pkcs8)
                .map_err(|e| format!("key {reference}: {e}"))?;
            keys.insert(
                slot,
                SlotKey {
                    algorithm,
                    key: private,
                },
            );
        }
        Ok(PivCardState {
            pin: secret_hex::<8>(&file.pin, "PIN")?,
            pin_tries_max: file.pin_tries_max,
            pin_tries_left: file.pin_tries_left,
            puk: secret_hex::<8>(&file.puk, "PUK")?,
            puk_tries_max: file.puk_tries_max,
            puk_tries_left: file.puk_tries_left,
            management_algorithm,
            management_key,
            objects,
            keys,
        })
    }
}

/// The JSON form of a [`PivCardState`]: byte strings in hex, private keys in PKCS#8.
#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    pin: Zeroizing<String>,
    pin_tries_max: u8,
    pin_tries_left: u8,
    puk: Zeroizing<String>,
    puk_tries_max: u8,
    puk_tries_left: u8,
    management_algorithm: u8,
    management_key: Zeroizing<String>,
    objects: BTreeMap<String, String>,
    keys: BTreeMap<String, KeyFile>,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    algorithm: u8,
    pkcs8: Zeroizing<String>,
}

/// A Card Holder Unique Identifier (SP 800-73-4 part 1 §3.1.2): a FASC-N of the non-federal
/// issuer pattern (agency code 9999), a random GUID (tag 34) that OpenSC uses as the serial
/// number, an expiry date and an empty issuer signature.
fn chuid() -> Vec<u8> {
    const FASC_N: [u8; 25] = [
        0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21,
        0x08, 0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
    ];
    let mut guid = [0u8; 16];
    openssl::rand::rand_bytes(&mut guid).unwrap_or_else(|e| panic!("OpenSSL random: {e}"));
    // An RFC 4122 version 4 UUID.
    guid[6] = (guid[6] & 0x0F) | 0x40;
    guid[8] = (guid[8] & 0x3F) | 0x80;
    let body = [
        tlv::encode(0x30, &FASC_N),
        tlv::encode(0x34, &guid),
        tlv::encode(0x35, b"20991231"),
        tlv::encode(0x3E, &[]),
        tlv::encode(0xFE, &[]),
    ]
    .concat();
    tlv::encode(0x53, &body)
}

/// A Card Capability Container (SP 800-73-4 part 1 §3.1.1) naming the PIV AID as card identifier.
fn ccc() -> Vec<u8> {
    let mut card_identifier = vec![0xA0, 0x00, 0x00, 0x03, 0x08, 0x01, 0x01];
    let mut random = [0u8; 14];
    openssl::rand::rand_bytes(&mut random).unwrap_or_else(|e| panic!("OpenSSL random: {e}"));
    card_identifier.extend_from_slice(&random);
    let mut body = tlv::encode(0xF0, &card_identifier);
    for (tag, value) in [
        (0xF1u32, &[0x21u8][..]),
        (0xF2, &[0x21]),
        (0xF3, &[]),
        (0xF4, &[0x00]),
        (0xF5, &[0x10]),
        (0xF6, &[]),
        (0xF7, &[]),
        (0xFA, &[]),
        (0xFB, &[]),
        (0xFC, &[]),
        (0xFD, &[]),
        (0xFE, &[]),
    ] {
        body.extend(tlv::encode(tag, value));
    }
    tlv::encode(0x53, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_loads_back_with_keys_objects_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut state = PivCardState::with_pin("24681357", 5);
        let spki = state.generate_key(PivSlot::Signature, PivAlgorithm::EcP256);
        state.set_certificate(PivSlot::Signature, b"not really a certificate");
        state.pin_tries_left = 2;
        state.save(&path).unwrap();
        let loaded = PivCardState::load(&path).unwrap();
        assert_eq!(loaded.public_key(PivSlot::Signature), Some(spki));
        assert_eq!(
            loaded.certificate(PivSlot::Signature).as_deref(),
            Some(&b"not really a certificate"[..])
        );
        assert_eq!(loaded.pin_tries_left(), 2);
        assert_eq!(loaded.pin_tries_max, 5);
        assert_eq!(&loaded.pin[..], b"24681357");
        assert_eq!(loaded.guid(), state.guid());
        assert_eq!(loaded.guid().map(|g| g.len()), Some(16));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn loading_a_damaged_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        PivCardState::new().save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for damaged in [
            text.replace("\"pin_tries_left\": 3", "\"pin_tries_left\": 9"),
            text.replace("\"version\": 1", "\"version\": 7"),
            text.replace("\"management_algorithm\": 3", "\"management_algorithm\": 8"),
            text[..text.len() / 2].to_string(),
        ] {
            std::fs::write(&path, damaged).unwrap();
            assert!(PivCardState::load(&path).is_err());
        }
    }

    #[test]
    fn pins_are_six_to_eight_digits_padded_with_ff() {
        assert!(is_valid_padded_pin(
            &pad_reference_data(b"123456").unwrap()[..]
        ));
        assert!(is_valid_padded_pin(b"12345678"));
        assert!(!is_valid_padded_pin(
            &pad_reference_data(b"12345").unwrap()[..]
        ));
        assert!(!is_valid_padded_pin(
            &pad_reference_data(b"12a456").unwrap()[..]
        ));
        assert!(!is_valid_padded_pin(&[
            0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0xFF, 0x37
        ]));
        assert!(!is_valid_padded_pin(b"1234567"));
    }
}
