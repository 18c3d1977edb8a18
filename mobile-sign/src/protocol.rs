//! The wire protocol of the mobile signature service (MSS): the JSON bodies of the relying-party
//! API (`/mss/v1/certificate`, `/authentication`, `/signature`, `/session/{id}`), of the device
//! API the phone talks to (`/mss/v1/device/...`), and the rules both sides check the same way:
//! phone number, national identity number, display text, hash length and the verification code.
//!
//! The relying-party API is modelled on Estonia's Mobile-ID REST API (field names, session
//! states and result codes), so that relying parties find what they already know.
//!
//! Authentication: relying parties send `Authorization: Basic base64(name:apiKey)`, devices
//! `Authorization: Basic base64(deviceId:deviceSecret)` (RFC 7617).

use std::fmt;
use std::str::FromStr;

use imza_core::alg::DigestAlgorithm;
use serde::{Deserialize, Serialize};

/// The path every route lives under.
pub const API_PREFIX: &str = "/mss/v1";

/// How long a session waits for the phone's answer before it ends with TIMEOUT (or
/// PHONE_ABSENT when the phone never fetched it).
pub const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The longest a long poll (`?timeoutMs=`) may wait, in milliseconds. Longer values are cut to
/// this, as Mobile-ID does.
pub const MAX_LONG_POLL_MS: u64 = 120_000;

/// The largest request body any route accepts (the biggest legitimate one, a signature request
/// with a 200-character display text and a SHA-512 hash, is under 1 KiB).
pub const MAX_BODY_BYTES: u64 = 16 * 1024;

/// The longest display text, in Unicode characters (Smart-ID's `displayText200`).
pub const DISPLAY_TEXT_MAX_CHARS: usize = 200;

/// The relying-party name rules: 1–64 characters a-z, 0-9, '-', '.', not starting with '-'.
pub const RELYING_PARTY_NAME_MAX: usize = 64;

/// `hashType`: which digest `hash` is. It is imza's one [`DigestAlgorithm`], spelt `SHA256`,
/// `SHA384`, `SHA512` on the wire (Mobile-ID's names); a field of it carries
/// `#[serde(with = "hash_type")]`.
pub mod hash_type {
    use imza_core::alg::DigestAlgorithm;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Every wire name, for the error naming what is accepted.
    const NAMES: [&str; 3] = ["SHA256", "SHA384", "SHA512"];

    /// The wire name of `algorithm`.
    pub fn name(algorithm: DigestAlgorithm) -> &'static str {
        match algorithm {
            DigestAlgorithm::Sha256 => "SHA256",
            DigestAlgorithm::Sha384 => "SHA384",
            DigestAlgorithm::Sha512 => "SHA512",
        }
    }

    /// The algorithm a wire name names, exactly as [`name`] spells it.
    pub fn from_name(text: &str) -> Option<DigestAlgorithm> {
        DigestAlgorithm::ALL.into_iter().find(|a| name(*a) == text)
    }

    pub fn serialize<S: Serializer>(
        algorithm: &DigestAlgorithm,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(name(*algorithm))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DigestAlgorithm, D::Error> {
        let text = String::deserialize(deserializer)?;
        from_name(&text).ok_or_else(|| serde::de::Error::unknown_variant(&text, &NAMES))
    }
}

/// `language` of the texts the phone shows (ISO 639-2/B codes, upper case as in Mobile-ID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Language {
    #[serde(rename = "AZE")]
    Aze,
    #[serde(rename = "ENG")]
    Eng,
    #[serde(rename = "RUS")]
    Rus,
    #[serde(rename = "TUR")]
    Tur,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Aze => "AZE",
            Language::Eng => "ENG",
            Language::Rus => "RUS",
            Language::Tur => "TUR",
        }
    }
}

impl FromStr for Language {
    type Err = ProtocolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Language::Aze, Language::Eng, Language::Rus, Language::Tur]
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| ProtocolError::invalid("language", "use AZE, ENG, RUS or TUR"))
    }
}

/// What a session asks the phone for: an authentication (the auth key signs a random
/// challenge) or a signature (the signing key signs a document's hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Authentication,
    Signature,
}

impl SessionKind {
    pub fn name(self) -> &'static str {
        match self {
            SessionKind::Authentication => "authentication",
            SessionKind::Signature => "signature",
        }
    }
}

/// `state` of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionState {
    Running,
    Complete,
}

/// `result` of a complete session (Mobile-ID's codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionResult {
    /// The phone signed and the service verified the signature against the certificate.
    Ok,
    /// The citizen refused on the phone.
    UserRefused,
    /// The phone fetched the request but did not answer within the session's lifetime.
    Timeout,
    /// No active registration (or no valid certificate) for this phone number and identity.
    NotMobileClient,
    /// The phone never fetched the request within the session's lifetime.
    PhoneAbsent,
    /// The phone answered with a signature that does not verify against the registered
    /// certificate over the requested hash.
    SignatureHashMismatch,
    /// The phone could not process the request (its key store failed, say).
    DeliveryError,
    /// The signing PIN was entered wrongly too often; the phone's keys are blocked.
    PinBlocked,
}

impl SessionResult {
    pub fn name(self) -> &'static str {
        match self {
            SessionResult::Ok => "OK",
            SessionResult::UserRefused => "USER_REFUSED",
            SessionResult::Timeout => "TIMEOUT",
            SessionResult::NotMobileClient => "NOT_MOBILE_CLIENT",
            SessionResult::PhoneAbsent => "PHONE_ABSENT",
            SessionResult::SignatureHashMismatch => "SIGNATURE_HASH_MISMATCH",
            SessionResult::DeliveryError => "DELIVERY_ERROR",
            SessionResult::PinBlocked => "PIN_BLOCKED",
        }
    }

    /// The answers a device may give; the others are the service's own verdicts.
    pub fn is_device_answer(self) -> bool {
        matches!(
            self,
            SessionResult::Ok
                | SessionResult::UserRefused
                | SessionResult::PinBlocked
                | SessionResult::DeliveryError
        )
    }
}

impl fmt::Display for SessionResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `POST /mss/v1/certificate` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateRequest {
    pub phone_number: String,
    pub national_identity_number: String,
}

/// `result` of a certificate query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateResult {
    Ok,
    /// No registration for this phone number and identity.
    NotFound,
    /// Registered, but the signing certificate is revoked or expired.
    NotActive,
}

/// `POST /mss/v1/certificate` answer (HTTP 200 in all three cases, as in Mobile-ID).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateResponse {
    pub result: CertificateResult,
    /// Base64 DER of the signing certificate, with `OK` only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cert: Option<String>,
}

/// `POST /mss/v1/authentication` and `/signature` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionRequest {
    pub phone_number: String,
    pub national_identity_number: String,
    /// Base64 of the digest to sign; its length must match `hashType`.
    pub hash: String,
    #[serde(with = "hash_type")]
    pub hash_type: DigestAlgorithm,
    /// Shown on the phone; at most [`DISPLAY_TEXT_MAX_CHARS`] characters, each shown as itself
    /// (no control, separator, invisible or private-use characters: [`check_display_text`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub display_text: Option<String>,
    pub language: Language,
}

/// The answer to a session request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreated {
    pub session_id: String,
}

/// `signature` of a complete OK session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureValue {
    /// Base64 of the signature as X.509/CMS carry it (DER ECDSA-Sig-Value, or PKCS#1 v1.5).
    pub value: String,
    /// Mobile-ID's names: `SHA256WithECEncryption`, `SHA384WithRSAEncryption`, ...
    pub algorithm: String,
}

/// `GET /mss/v1/session/{id}?timeoutMs=N` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatus {
    pub state: SessionState,
    /// With `COMPLETE` only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub result: Option<SessionResult>,
    /// With `COMPLETE` + `OK` only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signature: Option<SignatureValue>,
    /// Base64 DER of the certificate whose key signed, with `COMPLETE` + `OK` only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cert: Option<String>,
}

/// The error body of every non-2xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code: `INVALID_REQUEST`, `UNAUTHORIZED`, `NOT_FOUND`, `CONFLICT`,
    /// `BODY_TOO_LARGE`, `TOO_MANY_REQUESTS`, `UNAVAILABLE`.
    pub error: String,
    /// What was wrong, for a person.
    pub message: String,
}

/// `GET /mss/v1/device/pending?timeoutMs=N` answer: the requests waiting for this device
/// (empty when the long poll ran out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequests {
    pub requests: Vec<PendingRequest>,
}

/// One request as the phone shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    pub session_id: String,
    pub kind: SessionKind,
    /// The relying party's registered name.
    pub relying_party: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub display_text: Option<String>,
    pub language: Language,
    /// Base64 of the digest to sign.
    pub hash: String,
    #[serde(with = "hash_type")]
    pub hash_type: DigestAlgorithm,
    /// The same 4 digits the relying party shows (see [`verification_code`]).
    pub verification_code: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// `POST /mss/v1/device/session/{id}` body: the phone's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceAnswer {
    /// `OK`, `USER_REFUSED`, `PIN_BLOCKED` or `DELIVERY_ERROR`.
    pub result: SessionResult,
    /// Base64 of the signature over `hash`, with `OK` only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signature: Option<String>,
}

/// A request field that breaks the protocol's rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ProtocolError {
    pub field: &'static str,
    pub problem: String,
}

impl ProtocolError {
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> ProtocolError {
        ProtocolError {
            field,
            problem: problem.into(),
        }
    }
}

/// The 4-digit verification code both the relying party and the phone show for `hash`
/// (Smart-ID's formula): take SHA-256 of the hash bytes, read its last two bytes as a
/// big-endian unsigned integer, reduce it modulo 10000 and write it with 4 digits, leading
/// zeros kept.
///
/// ```text
/// code = format("%04d", uint16_be(SHA256(hash)[30..32]) mod 10000)
/// ```
pub fn verification_code(hash: &[u8]) -> String {
    let digest = openssl::sha::sha256(hash);
    let value = u16::from_be_bytes([digest[30], digest[31]]);
    format!("{:04}", value % 10000)
}

/// Checks a phone number: E.164, `+` and 8 to 15 digits, no spaces (`+994501234567`).
pub fn check_phone_number(phone: &str) -> Result<(), ProtocolError> {
    let digits = phone.strip_prefix('+').ok_or_else(|| {
        ProtocolError::invalid(
            "phoneNumber",
            "must start with + and the country code (E.164)",
        )
    })?;
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProtocolError::invalid(
            "phoneNumber",
            "must be + and 8 to 15 digits, without spaces (E.164)",
        ));
    }
    Ok(())
}

/// Turns what a person types (`+994 50 123-45-67`) into E.164 (`+994501234567`), then checks it.
pub fn normalize_phone_number(typed: &str) -> Result<String, ProtocolError> {
    let phone: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    check_phone_number(&phone)?;
    Ok(phone)
}

/// Checks a national identity number: 1 to 20 upper-case letters A-Z and digits
/// (Azerbaijan's FIN has 7, e.g. `1AB2C3D`).
pub fn check_national_id(id: &str) -> Result<(), ProtocolError> {
    if !(1..=20).contains(&id.len())
        || !id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(ProtocolError::invalid(
            "nationalIdentityNumber",
            "must be 1 to 20 upper-case letters A-Z and digits",
        ));
    }
    Ok(())
}

/// Checks a display text: at most [`DISPLAY_TEXT_MAX_CHARS`] characters, each of them one a
/// phone shows as itself (see [`unshowable`]): a phone must not be made to show something
/// other than what was sent. The refusal names the first offending code point.
pub fn check_display_text(text: &str) -> Result<(), ProtocolError> {
    let count = text.chars().count();
    if count > DISPLAY_TEXT_MAX_CHARS {
        return Err(ProtocolError::invalid(
            "displayText",
            format!("has {count} characters, at most {DISPLAY_TEXT_MAX_CHARS} are allowed"),
        ));
    }
    if let Some((position, c, why)) = text
        .chars()
        .enumerate()
        .find_map(|(i, c)| unshowable(c).map(|why| (i + 1, c, why)))
    {
        return Err(ProtocolError::invalid(
            "displayText",
            format!(
                "character {position} is U+{:04X}, {}; not allowed",
                u32::from(c),
                why.description()
            ),
        ));
    }
    Ok(())
}

/// Why a character may not be in a display text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unshowable {
    /// General category Cc (C0, DEL, C1: line breaks, tabs, escapes).
    Control,
    /// U+2028 and U+2029 (categories Zl and Zp): they break the line like a newline.
    Separator,
    /// The bidirectional formatting characters (UAX #9 §2): they can make a phone show the
    /// text in another order than it was sent (U+202E turns "pay 100" into "001 yap").
    Bidi,
    /// A default-ignorable code point (Unicode's `Default_Ignorable_Code_Point`: zero-width
    /// spaces and joiners, the soft hyphen, fillers, variation selectors, tags) or another
    /// format character (category Cf): shown as nothing, or changing how its neighbours are
    /// shown, so two texts that look alike could differ in what was signed.
    Invisible,
    /// Private use (U+E000–U+F8FF, planes 15 and 16): its glyph is whatever the phone's font
    /// puts there (U+F8FF is a logo on some phones), so the relying party cannot know what
    /// the citizen sees.
    PrivateUse,
    /// A noncharacter (U+FDD0–U+FDEF, U+xxFFFE, U+xxFFFF): never text.
    Noncharacter,
}

impl Unshowable {
    pub fn description(self) -> &'static str {
        match self {
            Unshowable::Control => "a control character",
            Unshowable::Separator => "a line or paragraph separator",
            Unshowable::Bidi => "a bidirectional formatting character",
            Unshowable::Invisible => "an invisible or formatting character",
            Unshowable::PrivateUse => "a private-use character",
            Unshowable::Noncharacter => "a noncharacter",
        }
    }
}

/// The format characters (category Cf) and default-ignorable code points of Unicode 15.0
/// (UnicodeData.txt, DerivedCoreProperties.txt), less the bidirectional ones
/// ([`Unshowable::Bidi`]), as inclusive ranges. The reserved (unassigned) ranges that
/// Unicode already declares default-ignorable are in: a phone with a newer Unicode hides them.
const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // SOFT HYPHEN
    ('\u{034F}', '\u{034F}'),   // COMBINING GRAPHEME JOINER
    ('\u{0600}', '\u{0605}'),   // Arabic number signs (prepended concatenation marks)
    ('\u{06DD}', '\u{06DD}'),   // ARABIC END OF AYAH
    ('\u{070F}', '\u{070F}'),   // SYRIAC ABBREVIATION MARK
    ('\u{0890}', '\u{0891}'),   // ARABIC POUND / PIASTRE MARK ABOVE
    ('\u{08E2}', '\u{08E2}'),   // ARABIC DISPUTED END OF AYAH
    ('\u{115F}', '\u{1160}'),   // HANGUL CHOSEONG / JUNGSEONG FILLER
    ('\u{17B4}', '\u{17B5}'),   // KHMER VOWEL INHERENT AQ, AA
    ('\u{180B}', '\u{180F}'),   // Mongolian free variation selectors, vowel separator
    ('\u{200B}', '\u{200D}'),   // ZERO WIDTH SPACE, NON-JOINER, JOINER
    ('\u{2060}', '\u{2065}'),   // WORD JOINER, invisible operators, <reserved-2065>
    ('\u{206A}', '\u{206F}'),   // deprecated shaping and digit format characters
    ('\u{3164}', '\u{3164}'),   // HANGUL FILLER
    ('\u{FE00}', '\u{FE0F}'),   // VARIATION SELECTOR-1..16
    ('\u{FEFF}', '\u{FEFF}'),   // ZERO WIDTH NO-BREAK SPACE (byte order mark)
    ('\u{FFA0}', '\u{FFA0}'),   // HALFWIDTH HANGUL FILLER
    ('\u{FFF0}', '\u{FFFB}'),   // <reserved>, interlinear annotation anchor..terminator
    ('\u{110BD}', '\u{110BD}'), // KAITHI NUMBER SIGN
    ('\u{110CD}', '\u{110CD}'), // KAITHI NUMBER SIGN ABOVE
    ('\u{13430}', '\u{1343F}'), // Egyptian hieroglyph format controls
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol format controls
    ('\u{E0000}', '\u{E0FFF}'), // tags (U+E0000..E007F), VARIATION SELECTOR-17..256, reserved
];

/// Whether a display text may carry `c`, and if not, why. One home for the rule: the service
/// checks requests with it, the phone checks what it is asked to show, the relying party's
/// client checks before it sends.
pub fn unshowable(c: char) -> Option<Unshowable> {
    let code = u32::from(c);
    if c.is_control() {
        Some(Unshowable::Control)
    } else if matches!(c, '\u{2028}' | '\u{2029}') {
        Some(Unshowable::Separator)
    } else if matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    {
        Some(Unshowable::Bidi)
    } else if INVISIBLE
        .iter()
        .any(|&(low, high)| (low..=high).contains(&c))
    {
        Some(Unshowable::Invisible)
    } else if matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
    {
        Some(Unshowable::PrivateUse)
    } else if (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE {
        Some(Unshowable::Noncharacter)
    } else {
        None
    }
}

/// Checks a relying-party name: 1–64 characters a-z, 0-9, '-' and '.', not starting with '-'.
pub fn check_relying_party_name(name: &str) -> Result<(), ProtocolError> {
    let ok = (1..=RELYING_PARTY_NAME_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ProtocolError::invalid(
            "name",
            "must be 1 to 64 characters a-z, 0-9, '-' and '.', not starting with '-'",
        ))
    }
}

/// Decodes `hash` and checks its length against `hash_type`.
pub fn decode_hash(hash: &str, hash_type: DigestAlgorithm) -> Result<Vec<u8>, ProtocolError> {
    let bytes = decode_base64(hash).map_err(|_| ProtocolError::invalid("hash", "is not base64"))?;
    if bytes.len() != hash_type.output_len() {
        return Err(ProtocolError::invalid(
            "hash",
            format!(
                "has {} bytes, a {} hash has {}",
                bytes.len(),
                hash_type::name(hash_type),
                hash_type.output_len()
            ),
        ));
    }
    Ok(bytes)
}

/// Checks every field of a session request; returns the decoded hash.
pub fn check_session_request(request: &SessionRequest) -> Result<Vec<u8>, ProtocolError> {
    check_phone_number(&request.phone_number)?;
    check_national_id(&request.national_identity_number)?;
    if let Some(text) = &request.display_text {
        check_display_text(text)?;
    }
    decode_hash(&request.hash, request.hash_type)
}

/// Mobile-ID's name of a signature algorithm: `SHA256WithECEncryption`, `SHA256WithRSAEncryption`.
pub fn signature_algorithm_name(hash_type: DigestAlgorithm, ec: bool) -> String {
    format!(
        "{}With{}Encryption",
        hash_type::name(hash_type),
        if ec { "EC" } else { "RSA" }
    )
}

/// Standard base64 with padding (RFC 4648 §4), as every field of the protocol carries binary.
pub fn encode_base64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(bytes)
}

pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64ct::Error> {
    use base64ct::Encoding;
    base64ct::Base64::decode_vec(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_code_is_four_digits_from_the_hash() {
        // SHA-256 of 32 zero bytes is 66687aad…0d5f2925: 0x2925 = 10533 → "0533" (leading
        // zero kept). Values computed with Python's hashlib, not with this code.
        assert_eq!(verification_code(&[0u8; 32]), "0533");
        // SHA-256 of 32 bytes 0x01 ends …3793: 0x3793 = 14227 → "4227".
        assert_eq!(verification_code(&[1u8; 32]), "4227");
    }

    #[test]
    fn phone_numbers_are_e164() {
        assert!(check_phone_number("+994501234567").is_ok());
        assert!(check_phone_number("994501234567").is_err());
        assert!(check_phone_number("+994 50 123 45 67").is_err());
        assert!(check_phone_number("+1234567").is_err());
        assert!(check_phone_number("+1234567890123456").is_err());
        assert_eq!(
            normalize_phone_number("+994 50 123-45-67").unwrap(),
            "+994501234567"
        );
    }

    #[test]
    fn national_ids_and_display_texts_are_limited() {
        assert!(check_national_id("1AB2C3D").is_ok());
        assert!(check_national_id("1ab2c3d").is_err());
        assert!(check_national_id("").is_err());
        assert!(check_display_text(&"ə".repeat(200)).is_ok());
        assert!(check_display_text(&"ə".repeat(201)).is_err());
        assert!(check_display_text("line\nbreak").is_err());
        assert!(check_display_text("pay \u{202E}001").is_err());
        assert!(check_display_text("Ödəniş: 100 ₼ — Bakı").is_ok());
    }

    #[test]
    fn display_texts_refuse_every_class_of_unshowable_character_by_code_point() {
        use Unshowable::*;
        let refused: &[(char, Unshowable)] = &[
            ('\n', Control),
            ('\t', Control),
            ('\u{7F}', Control),
            ('\u{85}', Control),
            ('\u{2028}', Separator),
            ('\u{2029}', Separator),
            ('\u{200E}', Bidi),
            ('\u{200F}', Bidi),
            ('\u{061C}', Bidi),
            ('\u{202A}', Bidi),
            ('\u{202E}', Bidi),
            ('\u{2066}', Bidi),
            ('\u{2069}', Bidi),
            ('\u{200B}', Invisible),
            ('\u{200C}', Invisible),
            ('\u{200D}', Invisible),
            ('\u{2060}', Invisible),
            ('\u{2064}', Invisible),
            ('\u{FEFF}', Invisible),
            ('\u{00AD}', Invisible),
            ('\u{180E}', Invisible),
            ('\u{034F}', Invisible),
            ('\u{115F}', Invisible),
            ('\u{1160}', Invisible),
            ('\u{3164}', Invisible),
            ('\u{FFA0}', Invisible),
            ('\u{FE00}', Invisible),
            ('\u{FE0F}', Invisible),
            ('\u{E0100}', Invisible),
            ('\u{E01EF}', Invisible),
            ('\u{E0001}', Invisible),
            ('\u{E0020}', Invisible),
            ('\u{E007F}', Invisible),
            ('\u{FFF9}', Invisible),
            ('\u{0600}', Invisible),
            ('\u{1D173}', Invisible),
            ('\u{E000}', PrivateUse),
            ('\u{F8FF}', PrivateUse),
            ('\u{F0000}', PrivateUse),
            ('\u{10FFFD}', PrivateUse),
            ('\u{FDD0}', Noncharacter),
            ('\u{FFFE}', Noncharacter),
            ('\u{1FFFF}', Noncharacter),
        ];
        for &(c, class) in refused {
            assert_eq!(unshowable(c), Some(class), "U+{:04X}", u32::from(c));
            let error = check_display_text(&format!("Pay 100{c} AZN")).unwrap_err();
            assert_eq!(error.field, "displayText");
            let named = format!(
                "character 8 is U+{:04X}, {}",
                u32::from(c),
                class.description()
            );
            assert!(error.problem.starts_with(&named), "{}", error.problem);
        }
        // What texts are made of stays allowed: letters of the four languages, digits,
        // punctuation, currency, ordinary and no-break spaces, emoji, combining accents.
        for text in [
            "Ödəniş: 100 ₼ — Bakı, «Azərbaycan»",
            "Оплата 100 рублей",
            "Ödeme: 1.000,00 ₺ (İstanbul)",
            "Sign \u{00A0}now \u{1F4DD} e\u{0301}",
            "日本語の文書に署名",
        ] {
            assert_eq!(check_display_text(text), Ok(()), "{text}");
        }
    }

    #[test]
    fn hash_length_must_match_its_type() {
        let h = encode_base64(&[7u8; 32]);
        assert_eq!(
            decode_hash(&h, DigestAlgorithm::Sha256).unwrap(),
            vec![7u8; 32]
        );
        assert!(decode_hash(&h, DigestAlgorithm::Sha384).is_err());
        assert!(decode_hash("***", DigestAlgorithm::Sha256).is_err());
    }

    #[test]
    fn wire_names_match_mobile_id() {
        let status = SessionStatus {
            state: SessionState::Complete,
            result: Some(SessionResult::SignatureHashMismatch),
            signature: None,
            cert: None,
        };
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"state":"COMPLETE","result":"SIGNATURE_HASH_MISMATCH"}"#
        );
        let request: SessionRequest = serde_json::from_str(
            r#"{"phoneNumber":"+994501234567","nationalIdentityNumber":"1AB2C3D",
                "hash":"AAAA","hashType":"SHA256","language":"AZE"}"#,
        )
        .unwrap();
        assert_eq!(request.hash_type, DigestAlgorithm::Sha256);
        assert_eq!(
            signature_algorithm_name(DigestAlgorithm::Sha256, true),
            "SHA256WithECEncryption"
        );
    }
}
