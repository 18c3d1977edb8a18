//! The QR-code login's device link, built like Smart-ID's v3.1 dynamic link: the login page
//! shows a QR code of
//!
//! ```text
//! {origin}/qr/v1?deviceLinkType=QR&sessionType=auth&sessionToken=T&elapsedSeconds=N&lang=L&authCode=A
//! ```
//!
//! regenerated every second, where `T` names the login session (public: it is in the QR), `N`
//! is the seconds since the session began, and `A` = base64url(HMAC-SHA256(secret, payload)),
//! the payload being the scheme, the portal's origin, the session token, `N` and the language
//! joined with `|`. The secret (256 bits) is the session's and never leaves the server: the
//! browser gets the QR as an image, not the secret, so no script can make a valid link. When
//! the phone sends the link back, [`QrSession::check_link`] recomputes the code (constant time)
//! and refuses a link whose `N` is more than [`MAX_LINK_AGE_SECONDS`] behind the server's own
//! count: a photographed QR used later logs nobody in, and one used for another session fails
//! its code.

use base64ct::{Base64UrlUnpadded, Encoding};
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The scheme and version in every payload.
const SCHEME: &str = "imza-qr-v1";

/// How many seconds behind the server's count a link's `elapsedSeconds` may be.
pub const MAX_LINK_AGE_SECONDS: i64 = 5;

/// Longest link accepted back from a phone.
pub const MAX_LINK_BYTES: usize = 512;

/// How long a QR login waits for a phone, from its start: then the page says it expired.
pub const QR_LOGIN_LIFETIME_SECONDS: i64 = 120;

/// How old the link a phone's answer carries may be: the link was at most
/// [`MAX_LINK_AGE_SECONDS`] old when the phone scanned it (the portal gave the challenge only
/// then), and the citizen then has this long to read the portal's name and enter the PIN.
pub const ANSWER_WINDOW_SECONDS: i64 = 60;

/// Pixels per QR module in the PNG, and the quiet zone around it in modules (ISO/IEC 18004
/// asks for 4).
const PNG_MODULE_PIXELS: u32 = 6;
const PNG_QUIET_MODULES: u32 = 4;

/// What the phone posts to `{origin}/portal/qr/v1/scan` right after scanning the QR code.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanRequest {
    pub link: String,
}

/// The portal's answer to a scan: who asks (shown on the phone) and the challenge to sign.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanAnswer {
    pub portal_name: String,
    pub origin: String,
    /// 32 random bytes of this login, base64.
    pub challenge: String,
    /// How long the phone has to answer.
    pub answer_within_seconds: i64,
}

/// What the phone posts to `{origin}/portal/qr/v1/answer`: the link it scanned, its
/// authentication certificate (DER, base64) and its signature (DER ECDSA or PKCS#1 v1.5,
/// base64) over [`answer_digest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhoneAnswer {
    pub link: String,
    pub certificate: String,
    pub signature: String,
}

/// What the phone signs with its authentication key: SHA-256 over the scheme, the origin it
/// showed the citizen, the session token and the challenge, so that a signature is worth
/// nothing at another portal (origin) or for another login (token and challenge).
pub fn answer_digest(origin: &str, token: &str, challenge: &[u8]) -> [u8; 32] {
    let mut hasher = openssl::sha::Sha256::new();
    for part in [
        SCHEME.as_bytes(),
        b"|answer|",
        origin.as_bytes(),
        b"|",
        token.as_bytes(),
        b"|",
    ] {
        hasher.update(part);
    }
    hasher.update(challenge);
    hasher.finish()
}

/// The origin a device link names (`https://portal.gov.az` of
/// `https://portal.gov.az/qr/v1?...`), for the phone to show and to post its answer to.
pub fn link_origin(link: &str) -> Result<&str, QrError> {
    if link.len() > MAX_LINK_BYTES {
        return Err(QrError::Malformed(format!(
            "longer than {MAX_LINK_BYTES} bytes"
        )));
    }
    let (origin, _) = link
        .split_once("/qr/v1?")
        .ok_or_else(|| QrError::Malformed("not an imza QR login link".into()))?;
    let host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| QrError::Malformed("the link is not http(s)".into()))?;
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return Err(QrError::Malformed("the link's origin is not a host".into()));
    }
    Ok(origin)
}

/// The QR code of `link` as a PNG (black on white, 1 bit per pixel).
pub fn qr_png(link: &str) -> Result<Vec<u8>, String> {
    let code = qrcode::QrCode::with_error_correction_level(link.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| format!("no QR code for the link: {e}"))?;
    let modules = u32::try_from(code.width()).map_err(|_| "a QR code too wide".to_string())?;
    let colors = code.to_colors();
    let side = (modules + 2 * PNG_QUIET_MODULES) * PNG_MODULE_PIXELS;
    let row_bytes = side.div_ceil(8) as usize;
    // White everywhere (bit 1), then the dark modules cleared.
    let mut pixels = vec![0xffu8; row_bytes * side as usize];
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i as u32 % modules, i as u32 / modules);
        for dy in 0..PNG_MODULE_PIXELS {
            for dx in 0..PNG_MODULE_PIXELS {
                let x = (mx + PNG_QUIET_MODULES) * PNG_MODULE_PIXELS + dx;
                let y = (my + PNG_QUIET_MODULES) * PNG_MODULE_PIXELS + dy;
                pixels[y as usize * row_bytes + (x / 8) as usize] &= !(0x80 >> (x % 8));
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder
        .write_header()
        .map_err(|e| format!("PNG header: {e}"))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| format!("PNG data: {e}"))?;
    writer.finish().map_err(|e| format!("PNG end: {e}"))?;
    Ok(out)
}

/// Why a device link was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrError {
    #[error("not an imza QR login link: {0}")]
    Malformed(String),
    /// The code does not match: made for another session, or altered.
    #[error("the QR code is not this login's")]
    WrongCode,
    /// Shown more than [`MAX_LINK_AGE_SECONDS`] ago (or claiming a time yet to come).
    #[error("the QR code is {age} s old; scan the one on the screen now")]
    Stale { age: i64 },
}

/// The server's side of one QR login: its public token, its secret and when it began.
#[derive(Clone)]
pub struct QrSession {
    pub token: String,
    secret: [u8; 32],
    pub started_at: OffsetDateTime,
}

impl std::fmt::Debug for QrSession {
    /// Not the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrSession")
            .field("token", &self.token)
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

/// What a phone's link says, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedLink {
    pub token: String,
    pub elapsed_seconds: i64,
    pub language: String,
}

fn hmac(secret: &[u8; 32], payload: &str) -> Vec<u8> {
    // HMAC-SHA256 with a 32-byte key cannot fail in OpenSSL short of memory exhaustion; an
    // empty code then simply never matches.
    (|| {
        let key = PKey::hmac(secret).ok()?;
        let mut signer = Signer::new(openssl::hash::MessageDigest::sha256(), &key).ok()?;
        signer.update(payload.as_bytes()).ok()?;
        signer.sign_to_vec().ok()
    })()
    .unwrap_or_default()
}

fn payload(origin: &str, token: &str, elapsed: i64, language: &str) -> String {
    format!("{SCHEME}|{origin}|{token}|{elapsed}|{language}")
}

impl QrSession {
    /// A new QR login session starting at `now`, with a random token and secret.
    pub fn start(now: OffsetDateTime) -> Result<QrSession, openssl::error::ErrorStack> {
        let mut token = [0u8; 16];
        let mut secret = [0u8; 32];
        openssl::rand::rand_bytes(&mut token)?;
        openssl::rand::rand_bytes(&mut secret)?;
        Ok(QrSession {
            token: Base64UrlUnpadded::encode_string(&token),
            secret,
            started_at: now,
        })
    }

    /// A stored session, as [`QrSession::secret`] and the token gave it.
    pub fn from_stored(token: String, secret: [u8; 32], started_at: OffsetDateTime) -> QrSession {
        QrSession {
            token,
            secret,
            started_at,
        }
    }

    /// The secret, for the store (never for the browser).
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    fn elapsed(&self, now: OffsetDateTime) -> i64 {
        (now - self.started_at).whole_seconds().max(0)
    }

    /// The link the QR code shows at `now`, for the portal at `origin`, in `language`
    /// (`aze` or `eng`).
    pub fn device_link(&self, origin: &str, language: &str, now: OffsetDateTime) -> String {
        let elapsed = self.elapsed(now);
        let code = hmac(
            &self.secret,
            &payload(origin, &self.token, elapsed, language),
        );
        format!(
            "{origin}/qr/v1?deviceLinkType=QR&sessionType=auth&sessionToken={}&elapsedSeconds={elapsed}&lang={language}&authCode={}",
            self.token,
            Base64UrlUnpadded::encode_string(&code)
        )
    }

    /// Checks a link a phone sent back, at `now`, for this session of the portal at `origin`.
    pub fn check_link(
        &self,
        link: &str,
        origin: &str,
        now: OffsetDateTime,
    ) -> Result<CheckedLink, QrError> {
        self.check_link_within(link, origin, now, MAX_LINK_AGE_SECONDS)
    }

    /// [`QrSession::check_link`] with a link up to `max_age` seconds old (a phone's answer,
    /// [`ANSWER_WINDOW_SECONDS`], after it scanned in time).
    pub fn check_link_within(
        &self,
        link: &str,
        origin: &str,
        now: OffsetDateTime,
        max_age: i64,
    ) -> Result<CheckedLink, QrError> {
        let fields = parse_link(link, origin)?;
        if fields.token != self.token {
            return Err(QrError::WrongCode);
        }
        let expected = hmac(
            &self.secret,
            &payload(
                origin,
                &fields.token,
                fields.elapsed_seconds,
                &fields.language,
            ),
        );
        let given = Base64UrlUnpadded::decode_vec(&fields.auth_code)
            .map_err(|_| QrError::Malformed("authCode is not base64url".into()))?;
        if given.len() != expected.len() || !openssl::memcmp::eq(&given, &expected) {
            return Err(QrError::WrongCode);
        }
        let age = self.elapsed(now) - fields.elapsed_seconds;
        if !(0..=max_age).contains(&age) {
            return Err(QrError::Stale { age });
        }
        Ok(CheckedLink {
            token: fields.token,
            elapsed_seconds: fields.elapsed_seconds,
            language: fields.language,
        })
    }
}

struct LinkFields {
    token: String,
    elapsed_seconds: i64,
    language: String,
    auth_code: String,
}

/// The session token a link names, to find its session by: checked for form only.
pub fn link_token(link: &str, origin: &str) -> Result<String, QrError> {
    parse_link(link, origin).map(|f| f.token)
}

fn parse_link(link: &str, origin: &str) -> Result<LinkFields, QrError> {
    if link.len() > MAX_LINK_BYTES {
        return Err(QrError::Malformed(format!(
            "longer than {MAX_LINK_BYTES} bytes"
        )));
    }
    let query = link
        .strip_prefix(origin)
        .and_then(|rest| rest.strip_prefix("/qr/v1?"))
        .ok_or_else(|| QrError::Malformed("not this portal's QR login link".into()))?;
    let (mut token, mut elapsed, mut language, mut code, mut kind, mut session_type) =
        (None, None, None, None, None, None);
    for pair in query.split('&') {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| QrError::Malformed(format!("{pair:?} is not name=value")))?;
        let slot = match name {
            "sessionToken" => &mut token,
            "elapsedSeconds" => &mut elapsed,
            "lang" => &mut language,
            "authCode" => &mut code,
            "deviceLinkType" => &mut kind,
            "sessionType" => &mut session_type,
            _ => return Err(QrError::Malformed(format!("unknown field {name:?}"))),
        };
        if slot.replace(value.to_string()).is_some() {
            return Err(QrError::Malformed(format!("{name} twice")));
        }
    }
    let field = |value: Option<String>, name: &str| {
        value.ok_or_else(|| QrError::Malformed(format!("{name} is missing")))
    };
    if field(kind, "deviceLinkType")? != "QR" || field(session_type, "sessionType")? != "auth" {
        return Err(QrError::Malformed("not a QR login link".into()));
    }
    let token = field(token, "sessionToken")?;
    if token.len() != 22
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(QrError::Malformed(
            "sessionToken is not one this portal makes".into(),
        ));
    }
    let elapsed_text = field(elapsed, "elapsedSeconds")?;
    let elapsed_seconds: i64 = elapsed_text
        .parse()
        .ok()
        .filter(|n| (0..=86_400).contains(n) && !elapsed_text.starts_with('+'))
        .ok_or_else(|| QrError::Malformed("elapsedSeconds is not a number of seconds".into()))?;
    let language = field(language, "lang")?;
    if !["aze", "eng"].contains(&language.as_str()) {
        return Err(QrError::Malformed("lang is not aze or eng".into()));
    }
    Ok(LinkFields {
        token,
        elapsed_seconds,
        language,
        auth_code: field(code, "authCode")?,
    })
}
