//! Who signs: a key (any [`SigningKey`]: a PEM file, a PKCS#12 file, a PKCS#11 token), the
//! certificate for it and the chain above it. The key is checked against the certificate
//! before anything is signed.

use der::{Decode, Encode};
use imza_core::key::software::SoftwareKey;
use imza_core::SigningKey;
use openssl::pkey::PKey;
use x509_cert::Certificate;

use crate::SignerError;

/// Most chain certificates taken (a real chain has two or three).
pub const MAX_CHAIN: usize = 16;

/// A signing key with its certificate and chain.
pub struct Credentials {
    key: Box<dyn SigningKey>,
    certificate: Certificate,
    certificate_der: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &self.key.describe())
            .field("subject", &self.subject())
            .field("chain", &self.chain.len())
            .finish()
    }
}

/// Parses a DER certificate, naming it in the error.
fn parse_certificate(der: &[u8], what: &'static str) -> Result<Certificate, SignerError> {
    Certificate::from_der(der).map_err(|e| SignerError::malformed(what, e))
}

impl Credentials {
    /// `key` with its DER `certificate` and the DER certificates above it (issuing CA first;
    /// the root may be included). Refuses a key that is not the certificate's.
    pub fn new(
        key: Box<dyn SigningKey>,
        certificate_der: Vec<u8>,
        chain: Vec<Vec<u8>>,
    ) -> Result<Credentials, SignerError> {
        let certificate = parse_certificate(&certificate_der, "signer certificate")?;
        if chain.len() > MAX_CHAIN {
            return Err(SignerError::Usage(format!(
                "the chain has {} certificates; at most {MAX_CHAIN} are taken",
                chain.len()
            )));
        }
        for der in &chain {
            parse_certificate(der, "chain certificate")?;
        }
        check_key_matches(key.as_ref(), &certificate)?;
        Ok(Credentials {
            key,
            certificate,
            certificate_der,
            chain,
        })
    }

    /// The key, certificate and chain of a PKCS#12 file (RFC 7292) opened with `password`.
    pub fn from_pkcs12(
        der: &[u8],
        password: &str,
        origin: &str,
    ) -> Result<Credentials, SignerError> {
        let parsed = openssl::pkcs12::Pkcs12::from_der(der)
            .map_err(|e| SignerError::malformed("PKCS#12 file", e))?
            .parse2(password)
            .map_err(|e| {
                SignerError::Usage(format!(
                    "cannot open the PKCS#12 file {origin}: wrong password or damaged file ({e})"
                ))
            })?;
        let pkey = parsed.pkey.ok_or_else(|| {
            SignerError::Usage(format!("the PKCS#12 file {origin} holds no private key"))
        })?;
        let certificate = parsed.cert.ok_or_else(|| {
            SignerError::Usage(format!("the PKCS#12 file {origin} holds no certificate"))
        })?;
        let certificate_der = certificate
            .to_der()
            .map_err(|e| SignerError::malformed("PKCS#12 certificate", e))?;
        let mut chain = Vec::new();
        for ca in parsed.ca.iter().flatten() {
            chain.push(
                ca.to_der()
                    .map_err(|e| SignerError::malformed("PKCS#12 chain certificate", e))?,
            );
        }
        let key = SoftwareKey::from_pkey(pkey, format!("PKCS#12 key {origin}"))?;
        Credentials::new(Box::new(key), certificate_der, chain)
    }

    /// Adds chain certificates (DER) not already in the chain.
    pub fn add_chain(&mut self, extra: Vec<Vec<u8>>) -> Result<(), SignerError> {
        for der in extra {
            if self.chain.contains(&der) || der == self.certificate_der {
                continue;
            }
            if self.chain.len() == MAX_CHAIN {
                return Err(SignerError::Usage(format!(
                    "the chain would have more than {MAX_CHAIN} certificates"
                )));
            }
            parse_certificate(&der, "chain certificate")?;
            self.chain.push(der);
        }
        Ok(())
    }

    pub fn key(&self) -> &dyn SigningKey {
        self.key.as_ref()
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The chain certificates (DER), as given.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The certificate's subject, one line.
    pub fn subject(&self) -> String {
        imza_core::name::format_dn(&self.certificate.tbs_certificate.subject)
    }

    /// The subject's common name (the person's or the organisation's seal's name), else the
    /// whole subject.
    pub fn name(&self) -> String {
        imza_core::name::attribute_values(
            &self.certificate.tbs_certificate.subject,
            imza_core::oids::AT_COMMON_NAME,
        )
        .into_iter()
        .next()
        .unwrap_or_else(|| self.subject())
    }
}

/// Whether `key`'s public key is the one `certificate` certifies (compared as keys, not as
/// encodings).
pub(crate) fn check_key_matches(
    key: &dyn SigningKey,
    certificate: &Certificate,
) -> Result<(), SignerError> {
    let subject = imza_core::name::format_dn(&certificate.tbs_certificate.subject);
    let certified = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| SignerError::malformed("certificate public key", e))?;
    let certified = PKey::public_key_from_der(&certified).map_err(|e| {
        SignerError::Usage(format!(
            "the public key in the certificate of {subject} cannot be read: {e}"
        ))
    })?;
    let held = PKey::public_key_from_der(&key.public_key_der()?)
        .map_err(|e| SignerError::malformed("signing key's public key", e))?;
    if held.public_eq(&certified) {
        Ok(())
    } else {
        Err(SignerError::Usage(format!(
            "the key ({}) is not the one certified for {subject}: their public keys differ",
            key.describe()
        )))
    }
}
