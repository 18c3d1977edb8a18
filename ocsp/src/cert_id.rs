//! CertID (RFC 6960 §4.1.1): how a request names a certificate, by the hash of its issuer's
//! name and key plus its serial number, and the responder-key hash of a ResponderID (§4.2.1).
//!
//! ```text
//! CertID ::= SEQUENCE {
//!     hashAlgorithm       AlgorithmIdentifier,
//!     issuerNameHash      OCTET STRING, -- Hash of issuer's DN
//!     issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
//!     serialNumber        CertificateSerialNumber }
//! ```
//!
//! "The hash shall be calculated over the DER encoding of the issuer's name field in the
//! certificate being checked" and "over the value (excluding tag and length) of the subject
//! public key field in the issuer's certificate" (§4.1.1).

use der::asn1::OctetString;
use der::Encode;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;
use x509_ocsp::CertId;

use crate::OcspError;

pub use imza_core::ocsp::{responder_key_hash, CertIdHash};

/// issuerNameHash and issuerKeyHash of one issuer under one hash algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IssuerHashes {
    hash: CertIdHash,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
}

/// What a CertID hashes of its issuer (RFC 6960 §4.1.1): the DER of the subject name, and
/// the subject public key's BIT STRING value (without tag, length and unused-bits octet).
fn hashed_parts(issuer: &Certificate) -> Result<(Vec<u8>, &[u8]), OcspError> {
    let name = issuer
        .tbs_certificate
        .subject
        .to_der()
        .map_err(|e| OcspError::malformed("issuer certificate", e))?;
    let key = issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    Ok((name, key))
}

/// The CertID view of one issuer certificate: its name and key hashes under every
/// [`CertIdHash`], computed once so matching a request is a few byte comparisons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerFingerprints {
    hashes: Vec<IssuerHashes>,
}

impl IssuerFingerprints {
    /// Fingerprints of `issuer`, the certificate of the CA that issued the certificates asked about.
    pub fn of(issuer: &Certificate) -> Result<Self, OcspError> {
        let (name, key) = hashed_parts(issuer)?;
        Ok(IssuerFingerprints {
            hashes: CertIdHash::ALL
                .into_iter()
                .map(|hash| IssuerHashes {
                    hash,
                    name_hash: hash.digest(&name),
                    key_hash: hash.digest(key),
                })
                .collect(),
        })
    }

    /// True when `cert_id` names a certificate issued by this issuer (both hashes match).
    pub fn matches(&self, cert_id: &CertId) -> bool {
        let Some(hash) = CertIdHash::from_oid(&cert_id.hash_algorithm.oid) else {
            return false;
        };
        self.hashes.iter().any(|h| {
            h.hash == hash
                && h.name_hash == cert_id.issuer_name_hash.as_bytes()
                && h.key_hash == cert_id.issuer_key_hash.as_bytes()
        })
    }
}

/// The CertID of certificate `serial` issued by `issuer`, under `hash` (for clients and tests).
pub fn cert_id(
    issuer: &Certificate,
    serial: &SerialNumber,
    hash: CertIdHash,
) -> Result<CertId, OcspError> {
    let (name, key) = hashed_parts(issuer)?;
    let octets =
        |bytes: Vec<u8>| OctetString::new(bytes).map_err(|e| OcspError::malformed("CertID", e));
    Ok(CertId {
        hash_algorithm: hash.algorithm_identifier(),
        issuer_name_hash: octets(hash.digest(&name))?,
        issuer_key_hash: octets(hash.digest(key))?,
        serial_number: serial.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use imza_core::cert::{sign_certificate, CertificateFields};
    use imza_core::key::software::SoftwareKey;
    use imza_core::{KeyAlgorithm, SigningKey};
    use time::{Duration, OffsetDateTime};

    fn self_signed(cn: &str) -> Certificate {
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let name = imza_core::name::parse_dn(&format!("CN={cn}")).unwrap();
        let now = OffsetDateTime::now_utc();
        let signed = sign_certificate(
            CertificateFields {
                serial: vec![0x42],
                issuer: name.clone(),
                subject: name,
                not_before: now,
                not_after: now + Duration::days(1),
                subject_public_key: key.public_key_der().unwrap(),
                extensions: vec![],
            },
            &key,
        )
        .unwrap();
        Certificate::from_der(&signed.der).unwrap()
    }

    #[test]
    fn fingerprints_match_cert_ids_of_their_issuer_only() {
        let ca = self_signed("CA");
        let twin_name = self_signed("CA"); // same name, another key
        let fingerprints = IssuerFingerprints::of(&ca).unwrap();
        let serial = SerialNumber::new(&[0x10, 0x20]).unwrap();
        for hash in CertIdHash::ALL {
            assert!(fingerprints.matches(&cert_id(&ca, &serial, hash).unwrap()));
            assert!(!fingerprints.matches(&cert_id(&twin_name, &serial, hash).unwrap()));
        }
        // The name hash alone is not enough, nor the key hash alone.
        let mut id = cert_id(&ca, &serial, CertIdHash::Sha1).unwrap();
        id.issuer_key_hash = OctetString::new(vec![0; 20]).unwrap();
        assert!(!fingerprints.matches(&id));
        let mut id = cert_id(&ca, &serial, CertIdHash::Sha1).unwrap();
        id.issuer_name_hash = OctetString::new(vec![0; 20]).unwrap();
        assert!(!fingerprints.matches(&id));
    }

    #[test]
    fn responder_key_hash_is_sha1_of_the_bit_string_value() {
        let cert = self_signed("OCSP");
        let bits = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        assert_eq!(bits.len(), 65, "an uncompressed P-256 point");
        assert_eq!(responder_key_hash(&cert), openssl::sha::sha1(bits));
    }
}
