//! The logins that go through the citizen's phone: the ASAN-style phone login (phone number and
//! national id; the portal is a relying party of the mobile signature service, and the checks
//! are `imza_mobile_sign::authentication`'s) and the QR login (the phone scans the page's
//! device link, [`crate::qr`], and answers the portal directly with its authentication
//! certificate and a signature over [`crate::qr::answer_digest`]).
//!
//! Both end in the same checks of the phone's certificate: a path to the portal's trust
//! anchors with revocation required (OCSP), keyUsage digitalSignature, one person named — and
//! for the QR login, which has no signature service vouching for the phone, an issuer that is
//! one of the phone CAs ([`PhoneLogins::phone_issuers`]): an ID card's certificate is not a
//! phone's.

use imza_mobile_sign::authentication::{verify_authentication, AuthenticatedCitizen};
use imza_mobile_sign::client::{ClientError, MssClient};
use imza_validation::{AuthenticationTrust, Certificate};

/// What the phone and QR logins need: who the portal is and whom it trusts.
pub struct PhoneLogins {
    /// The portal's origin as browsers and phones reach it (`https://portal.gov.az`): device
    /// links start with it and phones sign over it.
    pub origin: String,
    /// The portal's name, shown on the phone next to the origin (`mygov.az`).
    pub name: String,
    /// The mobile signature service, with the portal's relying-party name and API key; `None`:
    /// no phone login (the QR login needs no signature service).
    pub mss: Option<MssClient>,
    /// Validates phones' authentication certificates (path to the anchors, OCSP).
    pub trust: AuthenticationTrust,
    /// The issuers of phones' authentication certificates, as [`Certificate::subject_text`] of
    /// the phone CAs' certificates gives them.
    pub phone_issuers: Vec<String>,
}

impl std::fmt::Debug for PhoneLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneLogins")
            .field("origin", &self.origin)
            .field("name", &self.name)
            .field("mss", &self.mss)
            .field("phone_issuers", &self.phone_issuers)
            .finish_non_exhaustive()
    }
}

impl PhoneLogins {
    /// Checks a QR login's answer: `signature` over `digest` with the key of `certificate`, the
    /// certificate a phone's (issued by one of [`PhoneLogins::phone_issuers`]), an
    /// authentication certificate that validates with OCSP. Blocking (revocation is fetched).
    pub fn check_qr_answer(
        &self,
        certificate: Vec<u8>,
        digest: &[u8; 32],
        signature: &[u8],
    ) -> Result<AuthenticatedCitizen, ClientError> {
        let parsed = Certificate::from_der(certificate.clone())
            .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
        let issuer = parsed.issuer_text();
        if !self.phone_issuers.contains(&issuer) {
            return Err(ClientError::Validation(format!(
                "{} is not a phone's authentication certificate (issued by {issuer}, not a \
                 phone CA)",
                parsed.subject_text()
            )));
        }
        verify_authentication(certificate, digest, signature, &self.trust, None)
    }
}
