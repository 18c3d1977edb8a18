//! A parsed X.509 certificate (RFC 5280 §4.1) as path validation uses it: the DER, the
//! decoded structure, and the extensions validation reads, decoded once.

use der::{Decode, Encode};
use x509_cert::name::Name;

use crate::ValidationError;

/// One certificate, parsed once; cheap to share behind an `Arc`.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    cert: x509_cert::Certificate,
}

impl Certificate {
    /// Parses a DER certificate. Trailing bytes and undecodable structures are
    /// [`ValidationError::Malformed`].
    pub fn from_der(der: impl Into<Vec<u8>>) -> Result<Certificate, ValidationError> {
        let der = der.into();
        let cert = x509_cert::Certificate::from_der(&der)
            .map_err(|e| ValidationError::malformed("certificate", e))?;
        Ok(Certificate { der, cert })
    }

    /// The DER bytes this certificate was parsed from.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The decoded structure.
    pub fn inner(&self) -> &x509_cert::Certificate {
        &self.cert
    }

    pub fn subject(&self) -> &Name {
        &self.cert.tbs_certificate.subject
    }

    pub fn issuer(&self) -> &Name {
        &self.cert.tbs_certificate.issuer
    }

    /// The serial number's content octets (two's complement, as encoded).
    pub fn serial(&self) -> &[u8] {
        self.cert.tbs_certificate.serial_number.as_bytes()
    }

    /// The DER of the SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Result<Vec<u8>, ValidationError> {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| ValidationError::malformed("certificate public key", e))
    }

    /// The subject as one RFC 4514-style line, for messages and reports.
    pub fn subject_text(&self) -> String {
        imza_core::name::format_dn(self.subject())
    }
}

/// Every certificate in `bytes`: one DER certificate, or any number of PEM
/// `CERTIFICATE` blocks.
pub fn read_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, ValidationError> {
    if bytes.starts_with(b"-----") || bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ValidationError::malformed("PEM certificates", e))?;
        let blocks = imza_core::pem::all_blocks(text, "certificate")
            .map_err(|e| ValidationError::malformed("PEM certificates", e))?;
        blocks
            .into_iter()
            .filter(|(label, _)| label == "CERTIFICATE")
            .map(|(_, der)| Certificate::from_der(der))
            .collect()
    } else {
        Ok(vec![Certificate::from_der(bytes.to_vec())?])
    }
}
