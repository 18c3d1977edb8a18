//! Building and signing X.509 v3 certificates (RFC 5280 §4.1) with any [`SigningKey`].

use der::asn1::BitString;
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use time::OffsetDateTime;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::Certificate;

use crate::clock::x509_time;
use crate::{CoreError, SigningKey};

/// Everything a certificate says, before the issuer signs it.
pub struct CertificateFields {
    /// Serial number as unsigned big-endian bytes (positive, at most 20 octets).
    pub serial: Vec<u8>,
    pub issuer: Name,
    pub subject: Name,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// DER SubjectPublicKeyInfo of the subject's key.
    pub subject_public_key: Vec<u8>,
    pub extensions: Vec<Extension>,
}

/// A signed certificate: the parsed structure and its DER.
pub struct SignedCertificate {
    pub certificate: Certificate,
    pub der: Vec<u8>,
}

/// Builds the TBSCertificate from `fields` and signs it with `issuer_key`.
pub fn sign_certificate(
    fields: CertificateFields,
    issuer_key: &dyn SigningKey,
) -> Result<SignedCertificate, CoreError> {
    let subject_public_key_info = SubjectPublicKeyInfoOwned::from_der(&fields.subject_public_key)
        .map_err(|e| CoreError::malformed("subject public key", e))?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&fields.serial).map_err(CoreError::der)?,
        signature: issuer_key.signature_algorithm(),
        issuer: fields.issuer,
        validity: Validity {
            not_before: x509_time(fields.not_before)?,
            not_after: x509_time(fields.not_after)?,
        },
        subject: fields.subject,
        subject_public_key_info,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!fields.extensions.is_empty()).then_some(fields.extensions),
    };
    let tbs_der = tbs.to_der().map_err(CoreError::der)?;
    let signature = issuer_key.sign(&tbs_der)?;
    let certificate = Certificate {
        signature_algorithm: tbs.signature.clone(),
        tbs_certificate: tbs,
        signature: BitString::from_bytes(&signature).map_err(CoreError::der)?,
    };
    let der = certificate.to_der().map_err(CoreError::der)?;
    Ok(SignedCertificate { certificate, der })
}

/// Parses a DER certificate.
pub fn parse_certificate(der: &[u8]) -> Result<Certificate, CoreError> {
    Certificate::from_der(der).map_err(|e| CoreError::malformed("certificate", e))
}

/// A fresh serial number: 16 random octets from OpenSSL's CSPRNG, positive, first octet in
/// 0x40..=0x7F so it always encodes in exactly 16 octets; 126 bits of entropy (RFC 5280
/// §4.1.2.2 allows 20 octets; CA/B Forum asks for at least 64 random bits; RFC 3161 §2.4.2
/// wants TSTInfo serials unique across restarts, which this gives without stored state).
pub fn random_serial() -> Result<Vec<u8>, CoreError> {
    let mut serial = vec![0u8; 16];
    openssl::rand::rand_bytes(&mut serial).map_err(CoreError::openssl)?;
    serial[0] = (serial[0] & 0x3f) | 0x40;
    Ok(serial)
}

/// Serial number bytes as upper-case hex, the form operators type (`imza ca revoke --serial`).
pub fn serial_hex(serial: &[u8]) -> String {
    hex::encode_upper(serial)
}

/// Parses an operator's serial (hex, optional `0x`, colons allowed) to minimal unsigned bytes.
pub fn parse_serial_hex(text: &str) -> Result<Vec<u8>, CoreError> {
    let cleaned: String = text
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if cleaned.is_empty() || cleaned.len() > 42 {
        return Err(CoreError::malformed(
            "serial number",
            format!("{text:?} is not 1 to 21 hex octets"),
        ));
    }
    let padded = if cleaned.len() % 2 == 1 {
        format!("0{cleaned}")
    } else {
        cleaned
    };
    let bytes = hex::decode(&padded).map_err(|_| {
        CoreError::malformed("serial number", format!("{text:?} is not hexadecimal"))
    })?;
    let first_nonzero = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    Ok(bytes[first_nonzero..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_parse_in_operator_forms() {
        assert_eq!(parse_serial_hex("0x0A1b").unwrap(), vec![0x0a, 0x1b]);
        assert_eq!(parse_serial_hex("0a:1b").unwrap(), vec![0x0a, 0x1b]);
        assert_eq!(parse_serial_hex("00a").unwrap(), vec![0x0a]);
        assert!(parse_serial_hex("xyz").is_err());
        assert!(parse_serial_hex("").is_err());
        assert_eq!(serial_hex(&[0x0a, 0x1b]), "0A1B");
    }
}
