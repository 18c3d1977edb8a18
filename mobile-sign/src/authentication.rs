//! Logging a citizen in with the phone: a fresh random challenge, signed on the phone by its
//! authentication key, the signature checked over the challenge, the certificate validated
//! (RFC 5280 path to the relying party's trust anchors, revocation required: OCSP from the
//! certificate's AIA first, then CRLs; no answer means no login; issuing CAs the relying party
//! lacks fetched from the AIA caIssuers URL when it allows) and checked to be an
//! authentication certificate of the person asked for. What comes out is the identity the
//! certificate states.

use std::sync::Arc;
use std::time::Duration;

use imza_core::clock::Clock;
use imza_core::key::DigestAlgorithm;
use imza_core::name::{attribute_values, format_dn};
use imza_core::oids;
use imza_validation::{
    read_certificates, Certificate, Crl, Fetcher, HttpFetcher, Purpose, RevocationPolicy,
    SignatureCache, ValidationError, ValidationOptions, Validator,
};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AuthorityInfoAccessSyntax, KeyUsage, KeyUsages};

use crate::client::{ClientError, MssClient};
use crate::protocol::{
    check_display_text, check_national_id, check_phone_number, encode_base64, verification_code,
    HashType, Language, SessionKind, SessionRequest,
};
use crate::remote_key::DEFAULT_GIVE_UP_AFTER;

/// Random bytes in a challenge (then hashed with SHA-256 and sent as the hash to sign).
pub const CHALLENGE_BYTES: usize = 32;

/// Most issuer certificates fetched from caIssuers URLs for one authentication (a real chain
/// has one or two CAs above the citizen's certificate).
pub const MAX_ISSUER_FETCHES: usize = 4;

/// Largest issuer certificate answer read.
const MAX_ISSUER_BYTES: u64 = 64 * 1024;

/// What an authentication certificate is validated against.
pub struct AuthenticationTrust {
    anchors: Vec<Arc<Certificate>>,
    intermediates: Vec<Arc<Certificate>>,
    crls: Vec<Arc<Crl>>,
    fetcher: Arc<dyn Fetcher>,
    issuer_fetcher: Option<HttpFetcher>,
    signatures: Arc<SignatureCache>,
    clock: Arc<dyn Clock>,
    give_up_after: Duration,
}

impl AuthenticationTrust {
    /// Trusts `anchors`; fetches revocation answers with `fetcher` (OCSP at the certificate's
    /// AIA, CRLs at its distribution points); validates at `clock`'s time.
    pub fn new(
        anchors: Vec<Certificate>,
        fetcher: Box<dyn Fetcher>,
        clock: Arc<dyn Clock>,
    ) -> AuthenticationTrust {
        AuthenticationTrust {
            anchors: anchors.into_iter().map(Arc::new).collect(),
            intermediates: Vec::new(),
            crls: Vec::new(),
            fetcher: Arc::from(fetcher),
            issuer_fetcher: None,
            signatures: Arc::new(SignatureCache::default()),
            clock,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
        }
    }

    /// A certificate paths may go through (an issuing CA). Not trusted.
    pub fn add_intermediate(&mut self, certificate: Certificate) {
        self.intermediates.push(Arc::new(certificate));
    }

    /// A CRL to check revocation with, besides what is fetched.
    pub fn add_crl(&mut self, crl: Crl) {
        self.crls.push(Arc::new(crl));
    }

    /// Fetch the issuing CAs a path lacks from the caIssuers URLs of the certificates' AIA
    /// (RFC 5280 §4.2.2.1), at most [`MAX_ISSUER_FETCHES`] of them, with `fetcher`. They are
    /// not trusted: the path must still end at an anchor.
    pub fn with_issuer_fetching(mut self, fetcher: HttpFetcher) -> AuthenticationTrust {
        self.issuer_fetcher = Some(HttpFetcher {
            max_bytes: fetcher.max_bytes.min(MAX_ISSUER_BYTES),
            ..fetcher
        });
        self
    }

    /// How long to wait for the phone (default [`DEFAULT_GIVE_UP_AFTER`]).
    pub fn with_give_up_after(mut self, give_up_after: Duration) -> AuthenticationTrust {
        self.give_up_after = give_up_after;
        self
    }

    /// Validates `certificate` for authentication at the clock's time, revocation required
    /// over the network, after fetching missing issuers when allowed.
    fn validate(&self, certificate: &Certificate) -> Result<(), ClientError> {
        let mut validator =
            Validator::new(Vec::new()).with_signature_cache(Arc::clone(&self.signatures));
        for anchor in &self.anchors {
            validator.add_shared_trust_anchor(Arc::clone(anchor));
        }
        for intermediate in &self.intermediates {
            validator.add_shared_certificate(Arc::clone(intermediate));
        }
        for crl in &self.crls {
            validator.add_shared_crl(Arc::clone(crl));
        }
        validator.set_fetcher(Box::new(SharedFetcher(Arc::clone(&self.fetcher))));
        let mut notes = Vec::new();
        if let Some(fetcher) = &self.issuer_fetcher {
            for issuer in self.fetch_issuers(certificate, fetcher, &mut notes) {
                validator.add_certificate(issuer);
            }
        }
        let mut options = ValidationOptions::at(self.clock.now());
        options.purpose = Purpose::Auth;
        options.revocation = RevocationPolicy::Require;
        options.network = true;
        validator
            .validate(certificate, &options)
            .map(|_| ())
            .map_err(|e| {
                let mut why = e.to_string();
                if !notes.is_empty() {
                    why.push_str(&format!(" (fetching issuers: {})", notes.join("; ")));
                }
                ClientError::Validation(why)
            })
    }

    /// The issuers above `certificate` that neither the anchors nor the intermediates hold,
    /// fetched one by one from caIssuers URLs until a known or self-issued one is reached.
    fn fetch_issuers(
        &self,
        certificate: &Certificate,
        fetcher: &HttpFetcher,
        notes: &mut Vec<String>,
    ) -> Vec<Certificate> {
        let known = |name: &x509_cert::name::Name| {
            self.anchors
                .iter()
                .chain(&self.intermediates)
                .any(|c| c.subject() == name)
        };
        let mut fetched: Vec<Certificate> = Vec::new();
        let mut current = certificate.clone();
        while fetched.len() < MAX_ISSUER_FETCHES
            && !current.is_self_issued()
            && !known(current.issuer())
        {
            let Some(url) = ca_issuers_url(&current) else {
                notes.push(format!("{} names no caIssuers URL", current.subject_text()));
                break;
            };
            let issuer = fetcher
                .get(&url, "application/pkix-cert")
                .map_err(|e| e.to_string())
                .and_then(|bytes| read_certificates(&bytes).map_err(|e| e.to_string()))
                .and_then(|found| {
                    found
                        .into_iter()
                        .find(|c| c.subject() == current.issuer())
                        .ok_or_else(|| format!("{url} holds no certificate of the issuer"))
                });
            match issuer {
                Ok(issuer) => {
                    current = issuer.clone();
                    fetched.push(issuer);
                }
                Err(e) => {
                    notes.push(e);
                    break;
                }
            }
        }
        fetched
    }
}

/// The first http(s) caIssuers URL of a certificate's authorityInfoAccess.
fn ca_issuers_url(certificate: &Certificate) -> Option<String> {
    let (_, aia) = certificate
        .inner()
        .tbs_certificate
        .get::<AuthorityInfoAccessSyntax>()
        .ok()??;
    aia.0.into_iter().find_map(|d| match d.access_location {
        GeneralName::UniformResourceIdentifier(uri)
            if d.access_method == oids::AD_CA_ISSUERS
                && (uri.as_str().starts_with("http://")
                    || uri.as_str().starts_with("https://")) =>
        {
            Some(uri.as_str().to_string())
        }
        _ => None,
    })
}

/// One fetcher shared by the validators made per authentication.
struct SharedFetcher(Arc<dyn Fetcher>);

impl Fetcher for SharedFetcher {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
        self.0.fetch_crl(url)
    }

    fn post_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, ValidationError> {
        self.0.post_ocsp(url, request)
    }
}

/// A citizen identified by a phone authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedCitizen {
    /// The validated authentication certificate (DER).
    pub certificate: Vec<u8>,
    /// The subject's CN, or givenName and surname.
    pub name: String,
    /// The subject's serialNumber (ETSI EN 319 412-1 §5.1.3: `PNOAZ-1AB2C3D`).
    pub personal_code: String,
    /// The national identity number asked for, which the personal code ends with.
    pub national_id: String,
    /// The subject's countryName.
    pub country: Option<String>,
    /// The certificate's serial number, upper-case hex.
    pub certificate_serial: String,
    /// The certificate's issuer, RFC 4514.
    pub issuer: String,
}

/// Authenticates the citizen registered for `phone_number` and `national_id`: see the module
/// documentation. `on_code` is told the verification code once the session has started.
pub fn authenticate(
    client: &MssClient,
    phone_number: &str,
    national_id: &str,
    language: Language,
    display_text: Option<String>,
    trust: &AuthenticationTrust,
    on_code: &dyn Fn(&str),
) -> Result<AuthenticatedCitizen, ClientError> {
    check_phone_number(phone_number)?;
    check_national_id(national_id)?;
    if let Some(text) = &display_text {
        check_display_text(text)?;
    }
    let mut challenge = [0u8; CHALLENGE_BYTES];
    openssl::rand::rand_bytes(&mut challenge)
        .map_err(|e| ClientError::Validation(format!("no random challenge: {e}")))?;
    let hash = openssl::sha::sha256(&challenge);
    let request = SessionRequest {
        phone_number: phone_number.to_string(),
        national_identity_number: national_id.to_string(),
        hash: encode_base64(&hash),
        hash_type: HashType::Sha256,
        display_text,
        language,
    };
    let session_id = client.start(SessionKind::Authentication, &request)?;
    on_code(&verification_code(&hash));
    let (signature, certificate_der) = client
        .wait(&session_id, trust.give_up_after)?
        .into_signature()?;
    let certificate = Certificate::from_der(certificate_der.clone())
        .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
    let spki = certificate
        .spki_der()
        .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
    imza_core::verify::verify_digest(&spki, DigestAlgorithm::Sha256, &hash, &signature).map_err(
        |e| {
            ClientError::BadSignature(format!(
                "session {session_id}: the challenge's signature does not verify with the \
                 authentication certificate ({}): {e}",
                certificate.subject_text()
            ))
        },
    )?;
    check_authentication_use(&certificate)?;
    trust.validate(&certificate)?;
    identity(&certificate, national_id)
}

/// keyUsage must be present and allow digitalSignature: the validator's authentication purpose
/// lets a certificate without keyUsage through, a login certificate must say what it is for.
fn check_authentication_use(certificate: &Certificate) -> Result<(), ClientError> {
    let refuse = |why: &str| {
        ClientError::Validation(format!(
            "{} is not an authentication certificate: {why}",
            certificate.subject_text()
        ))
    };
    match certificate.inner().tbs_certificate.get::<KeyUsage>() {
        Ok(Some((_, usage))) if usage.0.contains(KeyUsages::DigitalSignature) => Ok(()),
        Ok(Some(_)) => Err(refuse("its keyUsage lacks digitalSignature")),
        Ok(None) => Err(refuse("it has no keyUsage")),
        Err(e) => Err(refuse(&format!("its keyUsage cannot be read: {e}"))),
    }
}

/// The identity a certificate states, checked to be the one of `national_id`: the subject's
/// one serialNumber is `national_id` itself or ends with `-national_id` (`PNOAZ-1AB2C3D`).
fn identity(
    certificate: &Certificate,
    national_id: &str,
) -> Result<AuthenticatedCitizen, ClientError> {
    let subject = certificate.subject();
    let serials = attribute_values(subject, oids::AT_SERIAL_NUMBER);
    let personal_code = match serials.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(ClientError::IdentityMismatch {
                expected: national_id.to_string(),
                found: format!("{} (no serialNumber)", certificate.subject_text()),
            })
        }
        _ => {
            return Err(ClientError::IdentityMismatch {
                expected: national_id.to_string(),
                found: format!("{} (several serialNumbers)", certificate.subject_text()),
            })
        }
    };
    let matches = personal_code == national_id
        || personal_code
            .strip_suffix(national_id)
            .is_some_and(|prefix| prefix.ends_with('-'));
    if !matches {
        return Err(ClientError::IdentityMismatch {
            expected: national_id.to_string(),
            found: format!("{personal_code} ({})", certificate.subject_text()),
        });
    }
    let first = |oid| attribute_values(subject, oid).into_iter().next();
    let name = match (
        first(oids::AT_COMMON_NAME),
        first(oids::AT_GIVEN_NAME),
        first(oids::AT_SURNAME),
    ) {
        (Some(cn), _, _) => cn,
        (None, Some(given), Some(surname)) => format!("{given} {surname}"),
        (None, given, surname) => given.or(surname).unwrap_or_else(|| personal_code.clone()),
    };
    Ok(AuthenticatedCitizen {
        certificate: certificate.der().to_vec(),
        name,
        personal_code,
        national_id: national_id.to_string(),
        country: first(oids::AT_COUNTRY),
        certificate_serial: imza_core::cert::serial_hex(certificate.serial()),
        issuer: format_dn(certificate.issuer()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imza_core::key::software::SoftwareKey;
    use imza_core::KeyAlgorithm;
    use imza_testdata::pki::{leaf_extensions, TestCa};

    fn certificate(subject: &str) -> Certificate {
        let ca = TestCa::root("CN=Test Root,C=AZ", KeyAlgorithm::EcP256);
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        Certificate::from_der(ca.issue(subject, &[5], &key, leaf_extensions())).unwrap()
    }

    #[test]
    fn the_identity_is_read_from_the_subject() {
        let cert = certificate(
            "CN=Əliyev Günay,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-1AB2C3D,C=AZ",
        );
        let citizen = identity(&cert, "1AB2C3D").unwrap();
        assert_eq!(citizen.name, "Əliyev Günay");
        assert_eq!(citizen.personal_code, "PNOAZ-1AB2C3D");
        assert_eq!(citizen.country.as_deref(), Some("AZ"));
        assert_eq!(citizen.certificate_serial, "05");
        assert_eq!(citizen.issuer, "CN=Test Root,C=AZ");
        let no_cn = certificate("givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-1AB2C3D,C=AZ");
        assert_eq!(identity(&no_cn, "1AB2C3D").unwrap().name, "Günay Əliyev");
    }

    #[test]
    fn another_persons_certificate_is_refused() {
        let cert = certificate("CN=Other,serialNumber=PNOAZ-9ZZ9ZZ9,C=AZ");
        assert!(matches!(
            identity(&cert, "1AB2C3D"),
            Err(ClientError::IdentityMismatch { .. })
        ));
        // A suffix that is not the whole id after the '-' does not match.
        let cert = certificate("CN=Other,serialNumber=PNOAZ-X1AB2C3D,C=AZ");
        assert!(identity(&cert, "1AB2C3D").is_err());
        let cert = certificate("CN=Nobody,C=AZ");
        assert!(identity(&cert, "1AB2C3D").is_err());
    }

    #[test]
    fn a_certificate_without_digital_signature_is_no_login_certificate() {
        assert!(check_authentication_use(&certificate("CN=A,C=AZ")).is_ok());
        let ca = TestCa::root("CN=Test Root,C=AZ", KeyAlgorithm::EcP256);
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let no_ku = Certificate::from_der(ca.issue("CN=B,C=AZ", &[6], &key, Vec::new())).unwrap();
        assert!(matches!(
            check_authentication_use(&no_ku),
            Err(ClientError::Validation(_))
        ));
        let ca_cert = Certificate::from_der(ca.der.clone()).unwrap();
        assert!(check_authentication_use(&ca_cert).is_err());
    }
}
