//! A parsed X.509 certificate (RFC 5280 §4.1) as path validation uses it: the DER, the
//! decoded structure, and what validation reads — names in comparable form, the signed bytes
//! and their hash, the public key, the extensions — worked out once at parse time.

use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use time::OffsetDateTime;
use x509_cert::name::Name;

use crate::extensions::CertExtensions;
use crate::name::NameKey;
use crate::signature::{tbs_range_and_hash, Signed};
use crate::ValidationError;

/// One certificate, parsed once; cheap to share behind an `Arc`.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    cert: x509_cert::Certificate,
    /// Where the TBSCertificate (the signed bytes) lies in `der`.
    tbs: std::ops::Range<usize>,
    tbs_hash: [u8; 32],
    spki_der: Vec<u8>,
    subject_key: NameKey,
    issuer_key: NameKey,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    pub(crate) ext: CertExtensions,
}

impl Certificate {
    /// Parses a DER certificate. Trailing bytes and undecodable structures are
    /// [`ValidationError::Malformed`].
    pub fn from_der(der: impl Into<Vec<u8>>) -> Result<Certificate, ValidationError> {
        let der = der.into();
        let cert = x509_cert::Certificate::from_der(&der).or_else(|e| {
            crate::legacy_time::clamp_pre_1970_times(&der)
                .and_then(|copy| x509_cert::Certificate::from_der(&copy).ok())
                .ok_or_else(|| ValidationError::malformed("certificate", e))
        })?;
        let (tbs, tbs_hash) =
            tbs_range_and_hash(&der).map_err(|e| ValidationError::malformed("certificate", e))?;
        let tbs_cert = &cert.tbs_certificate;
        let spki_der = tbs_cert
            .subject_public_key_info
            .to_der()
            .map_err(|e| ValidationError::malformed("certificate public key", e))?;
        let ext = CertExtensions::decode(tbs_cert.extensions.as_deref());
        Ok(Certificate {
            subject_key: NameKey::new(&tbs_cert.subject),
            issuer_key: NameKey::new(&tbs_cert.issuer),
            not_before: imza_core::clock::from_x509_time(&tbs_cert.validity.not_before),
            not_after: imza_core::clock::from_x509_time(&tbs_cert.validity.not_after),
            der,
            cert,
            tbs,
            tbs_hash,
            spki_der,
            ext,
        })
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
        Ok(self.spki_der.clone())
    }

    /// The subject as one RFC 4514-style line, for messages and reports.
    pub fn subject_text(&self) -> String {
        imza_core::name::format_dn(self.subject())
    }

    /// The issuer as one RFC 4514-style line.
    pub fn issuer_text(&self) -> String {
        imza_core::name::format_dn(self.issuer())
    }

    /// The start of the validity period.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The end of the validity period.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The subjectKeyIdentifier, when present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.ext.subject_key_id.as_deref()
    }

    /// The keyIdentifier of the authorityKeyIdentifier, when present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.ext.authority_key_id.as_deref()
    }

    /// basicConstraints cA.
    pub fn is_ca(&self) -> bool {
        self.ext.basic_constraints.as_ref().is_some_and(|bc| bc.ca)
    }

    /// Subject and issuer are the same name (§6.1: a self-issued certificate).
    pub fn is_self_issued(&self) -> bool {
        self.subject_key == self.issuer_key
    }

    /// The modulus length in bits of an RSA key (rsaEncryption or RSASSA-PSS), `None` for
    /// other keys, and for an RSA key that does not decode (its signatures cannot verify).
    pub fn rsa_modulus_bits(&self) -> Option<usize> {
        let algorithm = self.spki().algorithm.oid;
        if algorithm != imza_core::oids::RSA_ENCRYPTION && algorithm != imza_core::oids::RSASSA_PSS
        {
            return None;
        }
        openssl::pkey::PKey::public_key_from_der(&self.spki_der)
            .ok()
            .and_then(|key| usize::try_from(key.bits()).ok())
    }

    pub(crate) fn spki_bytes(&self) -> &[u8] {
        &self.spki_der
    }

    pub(crate) fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.cert.tbs_certificate.subject_public_key_info
    }

    pub(crate) fn subject_key(&self) -> &NameKey {
        &self.subject_key
    }

    pub(crate) fn issuer_key(&self) -> &NameKey {
        &self.issuer_key
    }

    /// The same certificate: same DER.
    pub(crate) fn same_as(&self, other: &Certificate) -> bool {
        self.tbs_hash == other.tbs_hash && self.der == other.der
    }

    /// Same subject and same key: for loop detection and trust anchors given as certificates.
    pub(crate) fn same_subject_and_key(&self, other: &Certificate) -> bool {
        self.subject_key == other.subject_key && self.spki_der == other.spki_der
    }
}

impl Signed for Certificate {
    fn signature_algorithm(&self) -> &AlgorithmIdentifierOwned {
        &self.cert.signature_algorithm
    }

    fn tbs_bytes(&self) -> &[u8] {
        self.der.get(self.tbs.clone()).unwrap_or_default()
    }

    fn tbs_hash(&self) -> &[u8; 32] {
        &self.tbs_hash
    }

    fn signature_bytes(&self) -> &[u8] {
        self.cert.signature.raw_bytes()
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

#[cfg(test)]
mod tests {
    use imza_core::KeyAlgorithm;
    use imza_testpki::TestCa;

    use super::*;

    #[test]
    fn a_truncated_certificate_is_malformed_with_the_parsers_error_kept() {
        let ca = TestCa::root("CN=Malformed Test CA", KeyAlgorithm::EcP256);
        let truncated = &ca.der[..ca.der.len() - 10];
        match Certificate::from_der(truncated) {
            Err(ValidationError::Malformed {
                what: "certificate",
                source,
            }) => {
                let der_error = source
                    .downcast_ref::<der::Error>()
                    .expect("the der::Error itself");
                assert!(
                    matches!(der_error.kind(), der::ErrorKind::Incomplete { .. }),
                    "{der_error}"
                );
            }
            Err(other) => panic!("expected Malformed, got {other}"),
            Ok(_) => panic!("a truncated certificate parsed"),
        }
    }
}
