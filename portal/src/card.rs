//! Logging in with the ID card: a Web eID authentication token ([`crate::webeid`]) made by
//! `imza agent` over the portal's origin and the nonce the portal stored for the browser
//! session, checked in the order the login requires — format and lengths, certificate time,
//! clientAuth, the card's certificate policy, the chain to the configured CAs with OCSP
//! required ([`AuthenticationTrust`]), then the signature over the portal's **own** origin and
//! nonce. What comes out is the citizen the certificate names.

use std::sync::Arc;

use const_oid::ObjectIdentifier;

use imza_core::clock::Clock;
use imza_core::name::{attribute_values, format_dn, person_name};
use imza_core::oids;
use imza_validation::{AuthenticationTrust, Certificate, FetchCache};

use crate::webeid::{AuthToken, ChallengeNonce, TokenError, VerifiedToken};

/// A citizen a login identified, as their certificate names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Citizen {
    /// The subject's CN, or givenName and surname.
    pub name: String,
    /// The subject's serialNumber (ETSI EN 319 412-1 §5.1.3: `PNOAZ-1AB2C3D`).
    pub personal_code: String,
    pub country: Option<String>,
    /// The authentication certificate's serial (upper-case hex) and issuer (RFC 4514).
    pub certificate_serial: String,
    pub issuer: String,
}

impl Citizen {
    /// The citizen `certificate` names: it must carry exactly one serialNumber.
    pub fn of(certificate: &Certificate) -> Result<Citizen, TokenError> {
        let subject = certificate.subject();
        let personal_code = match attribute_values(subject, oids::AT_SERIAL_NUMBER).as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(TokenError::NotForAuthentication(format!(
                    "{} does not name one person (one serialNumber)",
                    certificate.subject_text()
                )))
            }
        };
        Ok(Citizen {
            name: person_name(subject).unwrap_or_else(|| personal_code.clone()),
            country: attribute_values(subject, oids::AT_COUNTRY)
                .into_iter()
                .next(),
            certificate_serial: imza_core::cert::serial_hex(certificate.serial()),
            issuer: format_dn(certificate.issuer()),
            personal_code,
        })
    }
}

/// What a card login checks tokens against: the portal's origin, the certificate policies of
/// ID-card authentication certificates, and the CAs (with OCSP) they must chain to.
pub struct CardLogin {
    origin: String,
    accepted_policies: Vec<ObjectIdentifier>,
    trust: AuthenticationTrust,
    clock: Arc<dyn Clock>,
    fetch_cache: Option<Arc<FetchCache>>,
}

/// A card login that succeeded: who, and the token as verified.
#[derive(Clone, Debug)]
pub struct CardLoggedIn {
    pub citizen: Citizen,
    pub token: VerifiedToken,
}

impl CardLogin {
    /// Logins at `origin` (`https://portal.gov.az`), for certificates carrying one of
    /// `accepted_policies`, chaining to `trust`'s anchors; times from `clock` (the one `trust`
    /// validates with).
    pub fn new(
        origin: &str,
        accepted_policies: Vec<ObjectIdentifier>,
        trust: AuthenticationTrust,
        clock: Arc<dyn Clock>,
    ) -> Result<CardLogin, TokenError> {
        crate::webeid::check_origin(origin)?;
        Ok(CardLogin {
            origin: origin.to_string(),
            accepted_policies,
            trust,
            clock,
            fetch_cache: None,
        })
    }

    /// Revocation answers fetched through `cache`, the process's one: an OCSP answer is
    /// fetched once and serves every login with that certificate until it expires, each login
    /// a request of its own (with its own cap on outbound fetches).
    pub fn with_fetch_cache(mut self, cache: Arc<FetchCache>) -> CardLogin {
        self.fetch_cache = Some(cache);
        self
    }

    /// Checks `token` (the JSON the page posted) against `nonce`, the one the portal stored
    /// for this browser session — which the caller has already taken out of its store, so that
    /// it is used once whatever the outcome.
    pub fn login(&self, token: &[u8], nonce: &ChallengeNonce) -> Result<CardLoggedIn, TokenError> {
        let now = self.clock.now();
        let checked = AuthToken::parse(token)?.check_certificate(now, &self.accepted_policies)?;
        let certificate = Certificate::from_der(checked.certificate_der().to_vec())
            .map_err(|e| TokenError::Malformed(format!("unverifiedCertificate: {e}")))?;
        match &self.fetch_cache {
            Some(cache) => self
                .trust
                .validate_with(&certificate, Box::new(cache.request())),
            None => self.trust.validate(&certificate),
        }
        .map_err(TokenError::Chain)?;
        let citizen = Citizen::of(&certificate)?;
        let token = checked.verify(&self.origin, nonce, now)?;
        Ok(CardLoggedIn { citizen, token })
    }
}
