//! Logging in with a device certificate — the "mobile authentication certificate" a phone or
//! tablet holds — through TLS client authentication (RFC 8446 §4.4.2; RFC 5246 §7.4.6): the
//! TLS layer (imza-http) asks for a certificate chaining to the client CAs and hands it to the
//! route; this module checks it in the card login's order — certificate time, clientAuth, the
//! **device** certificate policy (an ID card's authentication certificate, under another
//! policy, does not log in as a device), then the chain to the configured CAs with OCSP
//! required ([`AuthenticationTrust`]) — and names the citizen it belongs to.
//!
//! The handshake proved possession of the key (the client's CertificateVerify signs the
//! handshake transcript), so no challenge of the portal's own is needed; the certificate is
//! taken from that connection only, never from a header a proxy or the client could set.
//!
//! Revocation is asked afresh at every login (no cache of OCSP answers here): a device
//! reported lost stops logging in as soon as the responder says so.

use std::sync::Arc;

use const_oid::ObjectIdentifier;

use imza_core::clock::Clock;
use imza_validation::{AuthenticationTrust, Certificate};

use crate::card::Citizen;
use crate::webeid::{check_authentication_use, check_policies, check_time, TokenError};

/// Why a device certificate did not log anyone in.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceLoginError {
    /// The connection brought no client certificate (the device has none installed, or the
    /// browser was not asked: the login is served over HTTPS with client CAs configured).
    #[error(
        "no device certificate was presented; install the mobile authentication certificate \
         on this device and choose it when the browser asks"
    )]
    NoCertificate,
    /// Not an X.509 certificate.
    #[error("the device certificate cannot be read: {0}")]
    Malformed(String),
    /// Time, use, policy, subject or chain (revoked, unknown to OCSP, no answer, another
    /// PKI): the card login's own words ([`TokenError`]).
    #[error(transparent)]
    Refused(TokenError),
}

impl From<TokenError> for DeviceLoginError {
    fn from(e: TokenError) -> DeviceLoginError {
        DeviceLoginError::Refused(e)
    }
}

/// A certificate a device presented, read but not yet checked, with whom it names.
#[derive(Clone, Debug)]
pub struct PresentedCertificate {
    pub certificate: Certificate,
    pub citizen: Citizen,
}

impl PresentedCertificate {
    /// Reads the DER certificate of the TLS handshake and whom it names (one serialNumber).
    /// Cheap: the login's rate limit keys on the citizen before the costly checks.
    pub fn read(der: &[u8]) -> Result<PresentedCertificate, DeviceLoginError> {
        let certificate = Certificate::from_der(der.to_vec())
            .map_err(|e| DeviceLoginError::Malformed(e.to_string()))?;
        let citizen = Citizen::of(&certificate)?;
        Ok(PresentedCertificate {
            certificate,
            citizen,
        })
    }
}

/// What device certificates are checked against: the policies of device authentication
/// certificates and the CAs (with OCSP) they must chain to.
pub struct DeviceLogin {
    accepted_policies: Vec<ObjectIdentifier>,
    trust: AuthenticationTrust,
    clock: Arc<dyn Clock>,
}

impl DeviceLogin {
    /// Logins for certificates carrying one of `accepted_policies` (the device profile's:
    /// `imza serve` takes them from the PKI's `device-auth` profile), chaining to `trust`'s
    /// anchors; times from `clock` (the one `trust` validates with).
    pub fn new(
        accepted_policies: Vec<ObjectIdentifier>,
        trust: AuthenticationTrust,
        clock: Arc<dyn Clock>,
    ) -> DeviceLogin {
        DeviceLogin {
            accepted_policies,
            trust,
            clock,
        }
    }

    /// Checks `presented` in order — time, clientAuth, policy, then the chain with OCSP
    /// required — and gives the citizen it names. Blocking (OCSP over the network).
    pub fn login(&self, presented: &PresentedCertificate) -> Result<Citizen, DeviceLoginError> {
        let inner = presented.certificate.inner();
        check_time(inner, self.clock.now())?;
        check_authentication_use(inner)?;
        check_policies(inner, &self.accepted_policies)?;
        self.trust
            .validate(&presented.certificate)
            .map_err(TokenError::Chain)?;
        Ok(presented.citizen.clone())
    }
}
