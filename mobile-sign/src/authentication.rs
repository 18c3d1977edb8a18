//! Logging a citizen in with the phone: a fresh random challenge, signed on the phone by its
//! authentication key, the signature checked over the challenge, the certificate validated
//! ([`AuthenticationTrust`]: RFC 5280 path to the relying party's trust anchors, revocation
//! required: OCSP from the certificate's AIA first, then CRLs; no answer means no login;
//! issuing CAs the relying party lacks fetched from the AIA caIssuers URL when it allows) and
//! checked to be an authentication certificate of the person asked for. What comes out is the
//! identity the certificate states.

use std::time::Duration;

use imza_core::key::DigestAlgorithm;
use imza_core::name::{attribute_values, format_dn, person_name};
use imza_core::oids;
pub use imza_validation::AuthenticationTrust;
use imza_validation::Certificate;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

use crate::client::{ClientError, MssClient};
use crate::protocol::{
    check_display_text, check_national_id, check_phone_number, encode_base64, verification_code,
    Language, SessionKind, SessionRequest,
};

/// Random bytes in a challenge (then hashed with SHA-256 and sent as the hash to sign).
pub const CHALLENGE_BYTES: usize = 32;

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

/// An authentication session started with the service: what [`finish`] needs to check the
/// phone's answer. Holds nothing secret (the challenge's hash is what the phone signs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAuthentication {
    /// The service's session id.
    pub session_id: String,
    /// SHA-256 of the random challenge: what the phone signs.
    pub hash: [u8; 32],
    /// The verification code both screens show.
    pub verification_code: String,
    /// The national identity number asked for.
    pub national_id: String,
}

/// Starts the authentication of the citizen registered for `phone_number` and `national_id`:
/// a fresh random challenge, sent as its SHA-256 for the phone to sign. The caller shows the
/// verification code, then calls [`finish`] (at once to wait, or again and again with a short
/// patience from a page that polls).
pub fn start(
    client: &MssClient,
    phone_number: &str,
    national_id: &str,
    language: Language,
    display_text: Option<String>,
) -> Result<PendingAuthentication, ClientError> {
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
        hash_type: DigestAlgorithm::Sha256,
        display_text,
        language,
    };
    let session_id = client.start(SessionKind::Authentication, &request)?;
    Ok(PendingAuthentication {
        session_id,
        verification_code: verification_code(&hash),
        hash,
        national_id: national_id.to_string(),
    })
}

/// Waits up to `give_up_after` for the phone's answer to `pending` ([`ClientError::GaveUp`]
/// while it is still running; `Duration::ZERO` asks once), then believes it only after the
/// checks of the module documentation.
pub fn finish(
    client: &MssClient,
    pending: &PendingAuthentication,
    trust: &AuthenticationTrust,
    give_up_after: Duration,
) -> Result<AuthenticatedCitizen, ClientError> {
    let (signature, certificate_der) = client
        .wait(&pending.session_id, give_up_after)?
        .into_signature()?;
    verify_authentication(
        certificate_der,
        &pending.hash,
        &signature,
        trust,
        Some(&pending.national_id),
    )
    .map_err(|e| match e {
        ClientError::BadSignature(why) => {
            ClientError::BadSignature(format!("session {}: {why}", pending.session_id))
        }
        other => other,
    })
}

/// Authenticates the citizen registered for `phone_number` and `national_id`: [`start`],
/// `on_code` told the verification code, then [`finish`] with the phone given
/// `give_up_after` to answer.
#[allow(clippy::too_many_arguments)]
pub fn authenticate(
    client: &MssClient,
    phone_number: &str,
    national_id: &str,
    language: Language,
    display_text: Option<String>,
    trust: &AuthenticationTrust,
    give_up_after: Duration,
    on_code: &dyn Fn(&str),
) -> Result<AuthenticatedCitizen, ClientError> {
    let pending = start(client, phone_number, national_id, language, display_text)?;
    on_code(&pending.verification_code);
    finish(client, &pending, trust, give_up_after)
}

/// Checks a phone's authentication: `signature` over the SHA-256 `digest` verifies with
/// `certificate_der`'s key, the certificate is an authentication certificate
/// (keyUsage digitalSignature) that validates with `trust` (path, revocation required), and
/// it names a person — the one of `national_id` when given. Used by [`finish`] and by logins
/// whose challenge reaches the phone another way (the portal's QR login).
pub fn verify_authentication(
    certificate_der: Vec<u8>,
    digest: &[u8; 32],
    signature: &[u8],
    trust: &AuthenticationTrust,
    national_id: Option<&str>,
) -> Result<AuthenticatedCitizen, ClientError> {
    let certificate = Certificate::from_der(certificate_der)
        .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
    let spki = certificate
        .spki_der()
        .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
    imza_core::verify::verify_digest(&spki, DigestAlgorithm::Sha256, digest, signature).map_err(
        |e| {
            ClientError::BadSignature(format!(
                "the challenge's signature does not verify with the authentication certificate \
                 ({}): {e}",
                certificate.subject_text()
            ))
        },
    )?;
    check_authentication_use(&certificate)?;
    trust
        .validate(&certificate)
        .map_err(ClientError::Validation)?;
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

/// The identity a certificate states, checked to be the one of `national_id` when one was
/// asked for: the subject's one serialNumber is `national_id` itself or ends with
/// `-national_id` (`PNOAZ-1AB2C3D`). Without one, the national id is what follows the
/// personal code's last `-`.
fn identity(
    certificate: &Certificate,
    national_id: Option<&str>,
) -> Result<AuthenticatedCitizen, ClientError> {
    let subject = certificate.subject();
    let expected = national_id.unwrap_or("a personal code (serialNumber)");
    let mismatch = |found: String| ClientError::IdentityMismatch {
        expected: expected.to_string(),
        found,
    };
    let serials = attribute_values(subject, oids::AT_SERIAL_NUMBER);
    let personal_code = match serials.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(mismatch(format!(
                "{} (no serialNumber)",
                certificate.subject_text()
            )))
        }
        _ => {
            return Err(mismatch(format!(
                "{} (several serialNumbers)",
                certificate.subject_text()
            )))
        }
    };
    let national_id = match national_id {
        Some(asked) => {
            let matches = personal_code == asked
                || personal_code
                    .strip_suffix(asked)
                    .is_some_and(|prefix| prefix.ends_with('-'));
            if !matches {
                return Err(mismatch(format!(
                    "{personal_code} ({})",
                    certificate.subject_text()
                )));
            }
            asked.to_string()
        }
        None => personal_code
            .rsplit('-')
            .next()
            .unwrap_or(&personal_code)
            .to_string(),
    };
    let first = |oid| attribute_values(subject, oid).into_iter().next();
    let name = person_name(subject).unwrap_or_else(|| personal_code.clone());
    Ok(AuthenticatedCitizen {
        certificate: certificate.der().to_vec(),
        name,
        personal_code,
        national_id,
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
    use imza_testpki::{leaf_extensions, TestCa};

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
        let citizen = identity(&cert, Some("1AB2C3D")).unwrap();
        assert_eq!(citizen.name, "Əliyev Günay");
        assert_eq!(citizen.personal_code, "PNOAZ-1AB2C3D");
        assert_eq!(citizen.country.as_deref(), Some("AZ"));
        assert_eq!(citizen.certificate_serial, "05");
        assert_eq!(citizen.issuer, "CN=Test Root,C=AZ");
        // Without a national id asked for, it is read from the personal code.
        assert_eq!(identity(&cert, None).unwrap().national_id, "1AB2C3D");
        let no_cn = certificate("givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-1AB2C3D,C=AZ");
        assert_eq!(
            identity(&no_cn, Some("1AB2C3D")).unwrap().name,
            "Günay Əliyev"
        );
    }

    #[test]
    fn another_persons_certificate_is_refused() {
        let cert = certificate("CN=Other,serialNumber=PNOAZ-9ZZ9ZZ9,C=AZ");
        assert!(matches!(
            identity(&cert, Some("1AB2C3D")),
            Err(ClientError::IdentityMismatch { .. })
        ));
        // A suffix that is not the whole id after the '-' does not match.
        let cert = certificate("CN=Other,serialNumber=PNOAZ-X1AB2C3D,C=AZ");
        assert!(identity(&cert, Some("1AB2C3D")).is_err());
        let cert = certificate("CN=Nobody,C=AZ");
        assert!(identity(&cert, Some("1AB2C3D")).is_err());
        assert!(identity(&cert, None).is_err());
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
