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

use der::asn1::{Null, ObjectIdentifier, OctetString};
use der::Encode;
use spki::AlgorithmIdentifierOwned;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;
use x509_ocsp::CertId;

use imza_core::oids;

use crate::OcspError;

/// The hash algorithms imza accepts in a CertID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// What most clients still send (`openssl ocsp` by default); collisions do not matter here
    /// because both hashes must match a CA the responder serves.
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl CertIdHash {
    pub const ALL: [CertIdHash; 4] = [
        CertIdHash::Sha1,
        CertIdHash::Sha256,
        CertIdHash::Sha384,
        CertIdHash::Sha512,
    ];

    /// The algorithm named by a CertID's hashAlgorithm, `None` when imza does not support it.
    /// Parameters (absent or NULL, both seen in the wild) are not looked at.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<CertIdHash> {
        match *oid {
            oids::SHA1 => Some(CertIdHash::Sha1),
            oids::SHA256 => Some(CertIdHash::Sha256),
            oids::SHA384 => Some(CertIdHash::Sha384),
            oids::SHA512 => Some(CertIdHash::Sha512),
            _ => None,
        }
    }

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            CertIdHash::Sha1 => oids::SHA1,
            CertIdHash::Sha256 => oids::SHA256,
            CertIdHash::Sha384 => oids::SHA384,
            CertIdHash::Sha512 => oids::SHA512,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CertIdHash::Sha1 => "SHA-1",
            CertIdHash::Sha256 => "SHA-256",
            CertIdHash::Sha384 => "SHA-384",
            CertIdHash::Sha512 => "SHA-512",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            CertIdHash::Sha1 => openssl::sha::sha1(data).to_vec(),
            CertIdHash::Sha256 => openssl::sha::sha256(data).to_vec(),
            CertIdHash::Sha384 => openssl::sha::sha384(data).to_vec(),
            CertIdHash::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }

    /// The AlgorithmIdentifier with explicit NULL parameters, as OpenSSL writes it.
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: Some(Null.into()),
        }
    }
}

/// issuerNameHash and issuerKeyHash of one issuer under one hash algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IssuerHashes {
    hash: CertIdHash,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
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

    /// The SHA-1 hashes, to tell an operator which CA a CertID would have to name.
    pub fn sha1_hex(&self) -> (String, String) {
        self.hashes
            .iter()
            .find(|h| h.hash == CertIdHash::Sha1)
            .map(|h| (hex::encode(&h.name_hash), hex::encode(&h.key_hash)))
            .unwrap_or_default()
    }
}

/// The CertID of certificate `serial` issued by `issuer`, under `hash` (for clients and tests).
pub fn cert_id(
    issuer: &Certificate,
    serial: &SerialNumber,
    hash: CertIdHash,
) -> Result<CertId, OcspError> {
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
    let octets =
        |bytes: Vec<u8>| OctetString::new(bytes).map_err(|e| OcspError::malformed("CertID", e));
    Ok(CertId {
        hash_algorithm: hash.algorithm_identifier(),
        issuer_name_hash: octets(hash.digest(&name))?,
        issuer_key_hash: octets(hash.digest(key))?,
        serial_number: serial.clone(),
    })
}

/// `KeyHash` of a ResponderID byKey (RFC 6960 §4.2.1): "the SHA-1 hash of the value of the BIT
/// STRING subjectPublicKey [excluding the tag, length, and number of unused bits]".
pub fn responder_key_hash(certificate: &Certificate) -> [u8; 20] {
    openssl::sha::sha1(
        certificate
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    )
}
