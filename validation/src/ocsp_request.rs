//! The request side of the OCSP client (RFC 6960 §4.1): how a certificate is named to a
//! responder (CertID, §4.1.1) and the OCSPRequest that asks about it, with an optional nonce
//! (RFC 9654).
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
//! public key field in the issuer's certificate" (§4.1.1). Requests use SHA-1 CertIDs, which
//! every responder (and `openssl ocsp`) understands; responses are matched under SHA-1 or the
//! SHA-2 family.

use std::cell::OnceCell;

use der::asn1::OctetString;
use der::Encode;
use x509_cert::ext::Extension;
use x509_ocsp::{CertId, OcspRequest, Request, TbsRequest, Version};

use imza_core::oids;

use crate::{Certificate, ValidationError};

/// Octets of the nonce imza sends (RFC 9654 §2.1 asks for at least 32).
pub(crate) const NONCE_OCTETS: usize = 32;

pub(crate) use imza_core::ocsp::CertIdHash;

/// What a CertID for `cert` hashes: the DER of `cert`'s issuer field, and `issuer`'s
/// subjectPublicKey BIT STRING value; each algorithm's two hashes are computed once, when
/// first needed, so matching many SingleResponses costs comparisons, not hashing.
pub(crate) struct CertIdParts<'a> {
    issuer_name_der: Vec<u8>,
    issuer_key: &'a [u8],
    serial: &'a [u8],
    /// (issuerNameHash, issuerKeyHash) for SHA-1, SHA-256, SHA-384 and SHA-512.
    hashes: [OnceCell<(Vec<u8>, Vec<u8>)>; 4],
}

impl<'a> CertIdParts<'a> {
    pub(crate) fn of(
        cert: &'a Certificate,
        issuer: &'a Certificate,
    ) -> Result<CertIdParts<'a>, ValidationError> {
        Ok(CertIdParts {
            issuer_name_der: cert
                .issuer()
                .to_der()
                .map_err(|e| ValidationError::malformed("certificate issuer name", e))?,
            issuer_key: issuer
                .inner()
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
            serial: cert.serial(),
            hashes: Default::default(),
        })
    }

    fn hashes(&self, hash: CertIdHash) -> &(Vec<u8>, Vec<u8>) {
        let slot = match hash {
            CertIdHash::Sha1 => &self.hashes[0],
            CertIdHash::Sha256 => &self.hashes[1],
            CertIdHash::Sha384 => &self.hashes[2],
            CertIdHash::Sha512 => &self.hashes[3],
        };
        slot.get_or_init(|| {
            (
                hash.digest(&self.issuer_name_der),
                hash.digest(self.issuer_key),
            )
        })
    }

    /// True when `id` names this certificate: a hash imza computes, both issuer hashes equal
    /// under it, and the same serial number.
    pub(crate) fn matches(&self, id: &CertId) -> bool {
        let Some(hash) = CertIdHash::from_oid(&id.hash_algorithm.oid) else {
            return false;
        };
        if id.serial_number.as_bytes() != self.serial {
            return false;
        }
        let (name_hash, key_hash) = self.hashes(hash);
        id.issuer_name_hash.as_bytes() == name_hash.as_slice()
            && id.issuer_key_hash.as_bytes() == key_hash.as_slice()
    }

    /// The CertID under `hash`, with explicit NULL parameters as OpenSSL writes them.
    pub(crate) fn cert_id(&self, hash: CertIdHash) -> Result<CertId, ValidationError> {
        let octets = |bytes: Vec<u8>| {
            OctetString::new(bytes).map_err(|e| ValidationError::malformed("CertID", e))
        };
        let (name_hash, key_hash) = self.hashes(hash);
        Ok(CertId {
            hash_algorithm: hash.algorithm_identifier(),
            issuer_name_hash: octets(name_hash.clone())?,
            issuer_key_hash: octets(key_hash.clone())?,
            serial_number: x509_cert::serial_number::SerialNumber::new(self.serial)
                .map_err(|e| ValidationError::malformed("certificate serial number", e))?,
        })
    }
}

/// A fresh random nonce of [`NONCE_OCTETS`].
pub(crate) fn random_nonce() -> Result<Vec<u8>, ValidationError> {
    let mut nonce = vec![0; NONCE_OCTETS];
    openssl::rand::rand_bytes(&mut nonce).map_err(|source| ValidationError::Randomness {
        purpose: "an OCSP nonce",
        source,
    })?;
    Ok(nonce)
}

/// The DER OCSPRequest for `cert` issued by `issuer`: one SHA-1 CertID, no requestor name,
/// unsigned, with the nonce extension (`id-pkix-ocsp-nonce`, not critical, §4.4.1) when
/// `nonce` is given.
pub(crate) fn build_request(
    cert: &Certificate,
    issuer: &Certificate,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, ValidationError> {
    let cert_id = CertIdParts::of(cert, issuer)?.cert_id(CertIdHash::Sha1)?;
    let request_extensions = match nonce {
        Some(nonce) => {
            let value = OctetString::new(nonce)
                .and_then(|n| n.to_der())
                .and_then(OctetString::new)
                .map_err(|e| ValidationError::malformed("OCSP nonce", e))?;
            Some(vec![Extension {
                extn_id: oids::OCSP_NONCE,
                critical: false,
                extn_value: value,
            }])
        }
        None => None,
    };
    OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(|e| ValidationError::malformed("OCSP request", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use imza_core::key::software::SoftwareKey;
    use imza_core::KeyAlgorithm;
    use imza_testpki::{leaf_extensions, TestCa};

    fn pair() -> (Certificate, Certificate) {
        let ca = TestCa::root("CN=OCSP Request Test CA", KeyAlgorithm::EcP256);
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let leaf = ca.issue("CN=leaf", &[0x01, 0x23], &key, leaf_extensions());
        (
            Certificate::from_der(leaf).unwrap(),
            Certificate::from_der(ca.der.clone()).unwrap(),
        )
    }

    #[test]
    fn the_request_carries_a_sha1_cert_id_of_the_certificate_and_the_nonce() {
        let (leaf, issuer) = pair();
        let der = build_request(&leaf, &issuer, Some(&[7; 32])).unwrap();
        let request = OcspRequest::from_der(&der).unwrap();
        let list = &request.tbs_request.request_list;
        assert_eq!(list.len(), 1);
        let id = &list[0].req_cert;
        assert_eq!(id.hash_algorithm.oid, oids::SHA1);
        assert_eq!(id.serial_number.as_bytes(), &[0x01, 0x23]);
        assert!(CertIdParts::of(&leaf, &issuer).unwrap().matches(id));
        assert_eq!(
            request.nonce().map(|n| n.0.as_bytes().to_vec()),
            Some(vec![7; 32])
        );
        let plain = OcspRequest::from_der(&build_request(&leaf, &issuer, None).unwrap()).unwrap();
        assert!(plain.tbs_request.request_extensions.is_none());
    }

    #[test]
    fn openssl_reads_the_request_as_one_for_this_certificate() {
        let (leaf, issuer) = pair();
        let der = build_request(&leaf, &issuer, Some(&[9; 32])).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let req = dir.path().join("req.der");
        std::fs::write(&req, &der).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["ocsp", "-reqin", req.to_str().unwrap(), "-req_text"])
            .output()
            .expect("run openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("Hash Algorithm: sha1"), "{text}");
        assert!(text.contains("Serial Number: 0123"), "{text}");
        assert!(text.contains("OCSP Nonce"), "{text}");
    }

    #[test]
    fn cert_ids_match_under_every_hash_and_not_for_another_serial_or_issuer() {
        let (leaf, issuer) = pair();
        let parts = CertIdParts::of(&leaf, &issuer).unwrap();
        for hash in [
            CertIdHash::Sha1,
            CertIdHash::Sha256,
            CertIdHash::Sha384,
            CertIdHash::Sha512,
        ] {
            let id = parts.cert_id(hash).unwrap();
            assert!(parts.matches(&id));
            let mut other = id.clone();
            other.serial_number = x509_cert::serial_number::SerialNumber::new(&[0x01]).unwrap();
            assert!(!parts.matches(&other));
            let mut other = id.clone();
            other.issuer_key_hash = OctetString::new(vec![0; 20]).unwrap();
            assert!(!parts.matches(&other));
        }
        let (_, stranger) = pair();
        let foreign = CertIdParts::of(&leaf, &stranger).unwrap();
        assert!(!foreign.matches(&parts.cert_id(CertIdHash::Sha256).unwrap()));
    }
}
