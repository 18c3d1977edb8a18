//! A [`SigningKey`] whose signatures are made on the citizen's phone: the relying party hashes,
//! the signature service asks the phone, the citizen checks the verification code and enters
//! the PIN there. CMS and CAdES builders take it like any other key (`imza sign --mobile`).
//!
//! Nothing from the service is believed unchecked: the verification code is computed here from
//! the hash (never taken from the service), the session's certificate must be the one this key
//! was made for, and the signature must verify over the hash with that certificate's key.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imza_core::key::{DigestAlgorithm, KeyAlgorithm, SigningKey};
use imza_core::CoreError;

use crate::client::{ClientError, MssClient};
use crate::protocol::{
    check_display_text, check_national_id, check_phone_number, encode_base64, verification_code,
    Language, SessionKind, SessionRequest, SESSION_LIFETIME,
};

/// How long a signature waits for the phone by default: the session's lifetime and a margin
/// for the service to say TIMEOUT or PHONE_ABSENT itself.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(SESSION_LIFETIME.as_secs() + 30);

/// The [`ClientError`] behind the last failed signature of a [`MobileSigningKey`]: the
/// [`SigningKey`] trait can only return a [`CoreError`], so the caller that wants the session's
/// result (to choose an exit code, say) takes it from here.
#[derive(Clone, Default)]
pub struct LastFailure(Arc<Mutex<Option<ClientError>>>);

impl LastFailure {
    /// The error of the last failed signature, once.
    pub fn take(&self) -> Option<ClientError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn set(&self, error: ClientError) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }
}

impl fmt::Debug for LastFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LastFailure")
    }
}

/// A key held by a citizen's phone, reached through the signature service.
pub struct MobileSigningKey {
    client: MssClient,
    phone_number: String,
    national_id: String,
    certificate: Vec<u8>,
    spki: Vec<u8>,
    algorithm: KeyAlgorithm,
    display_text: Option<String>,
    language: Language,
    on_code: Box<dyn Fn(&str) + Send + Sync>,
    give_up_after: Duration,
    last_failure: LastFailure,
}

impl fmt::Debug for MobileSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MobileSigningKey")
            .field("client", &self.client)
            .field("phone_number", &self.phone_number)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl MobileSigningKey {
    /// The key of the phone registered for `phone_number` and `national_id`, certified by
    /// `certificate` (DER; [`MssClient::certificate`] fetches it). `display_text` is shown on
    /// the phone; `on_code` is told the verification code of each signature once the session
    /// has started, for the relying party to show beside it.
    pub fn new(
        client: MssClient,
        phone_number: &str,
        national_id: &str,
        certificate: Vec<u8>,
        display_text: Option<String>,
        language: Language,
        on_code: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<MobileSigningKey, ClientError> {
        check_phone_number(phone_number)?;
        check_national_id(national_id)?;
        if let Some(text) = &display_text {
            check_display_text(text)?;
        }
        let parsed = imza_core::cert::parse_certificate(&certificate)
            .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
        let spki = der::Encode::to_der(&parsed.tbs_certificate.subject_public_key_info)
            .map_err(|e| ClientError::BadCertificate(format!("its public key: {e}")))?;
        let algorithm = KeyAlgorithm::of_public_key(&spki)
            .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
        Ok(MobileSigningKey {
            client,
            phone_number: phone_number.to_string(),
            national_id: national_id.to_string(),
            certificate,
            spki,
            algorithm,
            display_text,
            language,
            on_code,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
            last_failure: LastFailure::default(),
        })
    }

    /// How long one signature waits for the phone (default [`DEFAULT_GIVE_UP_AFTER`]).
    pub fn with_give_up_after(mut self, give_up_after: Duration) -> MobileSigningKey {
        self.give_up_after = give_up_after;
        self
    }

    /// The DER certificate this key signs for.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Where the error of a failed signature can be read after the key is handed away.
    pub fn last_failure(&self) -> LastFailure {
        self.last_failure.clone()
    }

    /// One signature session for `digest`, with every check; the [`ClientError`] on failure.
    pub fn sign_hash(
        &self,
        algorithm: DigestAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let request = SessionRequest {
            phone_number: self.phone_number.clone(),
            national_identity_number: self.national_id.clone(),
            hash: encode_base64(digest),
            hash_type: algorithm,
            display_text: self.display_text.clone(),
            language: self.language,
        };
        let session_id = self.client.start(SessionKind::Signature, &request)?;
        (self.on_code)(&verification_code(digest));
        let (signature, certificate) = self
            .client
            .wait(&session_id, self.give_up_after)?
            .into_signature()?;
        if certificate != self.certificate {
            return Err(ClientError::BadSignature(format!(
                "session {session_id} was signed with another certificate than the one \
                 registered for {} when the signature began",
                self.phone_number
            )));
        }
        imza_core::verify::verify_digest(&self.spki, algorithm, digest, &signature).map_err(
            |e| {
                ClientError::BadSignature(format!(
                    "session {session_id}: it does not verify with the certificate's key: {e}"
                ))
            },
        )?;
        Ok(signature)
    }

    fn signed(&self, outcome: Result<Vec<u8>, ClientError>) -> Result<Vec<u8>, CoreError> {
        outcome.map_err(|e| {
            let message = format!("{}: {e}", self.describe());
            self.last_failure.set(e);
            CoreError::Signing(message)
        })
    }
}

impl SigningKey for MobileSigningKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> Result<Vec<u8>, CoreError> {
        Ok(self.spki.clone())
    }

    /// Hashes `message` with the key's digest and has the phone sign the hash.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        let algorithm = self.algorithm.digest();
        self.signed(self.sign_hash(algorithm, &algorithm.digest(message)))
    }

    fn describe(&self) -> String {
        format!(
            "the phone of {} (mobile signature at {})",
            self.phone_number,
            self.client.base_url()
        )
    }

    fn sign_digest(&self, algorithm: DigestAlgorithm, digest: &[u8]) -> Result<Vec<u8>, CoreError> {
        imza_core::alg::check_digest_length(algorithm, digest)?;
        self.signed(self.sign_hash(algorithm, digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imza_core::key::software::SoftwareKey;
    use imza_testpki::{leaf_extensions, TestCa};

    fn certificate(algorithm: KeyAlgorithm) -> Vec<u8> {
        let ca = TestCa::root("CN=Test Root,C=AZ", KeyAlgorithm::EcP256);
        let key = SoftwareKey::generate(algorithm).unwrap();
        ca.issue("CN=Citizen,C=AZ", &[5], &key, leaf_extensions())
    }

    fn client() -> MssClient {
        MssClient::new("http://127.0.0.1:9", "portal", "key").unwrap()
    }

    #[test]
    fn the_key_is_the_certificates() {
        let cert = certificate(KeyAlgorithm::EcP384);
        let key = MobileSigningKey::new(
            client(),
            "+994501234567",
            "1AB2C3D",
            cert,
            Some("Contract 12".into()),
            Language::Aze,
            Box::new(|_| {}),
        )
        .unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::EcP384);
        assert_eq!(
            KeyAlgorithm::of_public_key(&key.public_key_der().unwrap()).unwrap(),
            KeyAlgorithm::EcP384
        );
        assert!(key.describe().contains("+994501234567"));
    }

    #[test]
    fn bad_inputs_are_refused_when_the_key_is_made() {
        let make = |phone: &str, cert: Vec<u8>, text: Option<String>| {
            MobileSigningKey::new(
                client(),
                phone,
                "1AB2C3D",
                cert,
                text,
                Language::Eng,
                Box::new(|_| {}),
            )
        };
        let cert = certificate(KeyAlgorithm::EcP256);
        assert!(matches!(
            make("0501234567", cert.clone(), None),
            Err(ClientError::InvalidRequest(_))
        ));
        assert!(matches!(
            make("+994501234567", cert, Some("x".repeat(201))),
            Err(ClientError::InvalidRequest(_))
        ));
        assert!(matches!(
            make("+994501234567", b"junk".to_vec(), None),
            Err(ClientError::BadCertificate(_))
        ));
    }

    #[test]
    fn a_failed_signature_leaves_its_client_error_behind() {
        let key = MobileSigningKey::new(
            client().with_restart_patience(Duration::from_millis(1)),
            "+994501234567",
            "1AB2C3D",
            certificate(KeyAlgorithm::EcP256),
            None,
            Language::Aze,
            Box::new(|_| panic!("no code is shown for a session that never started")),
        )
        .unwrap();
        let failure = key.last_failure();
        let boxed: Box<dyn SigningKey> = Box::new(key);
        match boxed.sign(b"document") {
            Err(CoreError::Signing(message)) => {
                assert!(message.contains("127.0.0.1:9"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(failure.take(), Some(ClientError::Api(_))));
        assert!(failure.take().is_none());
        assert!(boxed
            .sign_digest(DigestAlgorithm::Sha256, &[0; 31])
            .is_err());
    }
}
