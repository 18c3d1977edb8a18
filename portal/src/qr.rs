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
use time::OffsetDateTime;

/// The scheme and version in every payload.
const SCHEME: &str = "imza-qr-v1";

/// How many seconds behind the server's count a link's `elapsedSeconds` may be.
pub const MAX_LINK_AGE_SECONDS: i64 = 5;

/// Longest link accepted back from a phone.
pub const MAX_LINK_BYTES: usize = 512;

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
        if !(0..=MAX_LINK_AGE_SECONDS).contains(&age) {
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
