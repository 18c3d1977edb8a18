//! What an OCSP client and an OCSP responder (RFC 6960) share: the hash algorithms a CertID
//! may use (§4.1.1), the responder-key hash of a ResponderID byKey (§4.2.1), the
//! BasicOCSPResponse with its ResponseData kept as encoded (§4.2.1), and the
//! id-kp-OCSPSigning test for a delegated responder (§4.2.2.2).

use der::asn1::{AnyRef, BitStringRef, Null, ObjectIdentifier};
use der::{Decode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::Certificate;

use crate::oids;

/// The hash algorithms imza computes for a CertID.
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

/// Whether `certificate`'s extended key usage includes id-kp-OCSPSigning: what a delegated
/// responder's certificate must carry (RFC 6960 §4.2.2.2).
pub fn has_ocsp_signing(certificate: &Certificate) -> bool {
    certificate
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oids::EXT_EXTENDED_KEY_USAGE)
        .filter_map(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok())
        .any(|eku| eku.0.contains(&oids::KP_OCSP_SIGNING))
}

/// ```text
/// BasicOCSPResponse ::= SEQUENCE {
///     tbsResponseData     ResponseData,
///     signatureAlgorithm  AlgorithmIdentifier,
///     signature           BIT STRING,
///     certs           [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ```
/// (RFC 6960 §4.2.1), with ResponseData and the certificates as encoded: a client checks the
/// signature over exactly the signed bytes; a responder writes the bytes it just signed and
/// the certificates it encoded once, instead of encoding them again.
#[derive(Sequence)]
pub struct BasicOcspResponseRaw<'a> {
    pub tbs_response_data: AnyRef<'a>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<AnyRef<'a>>>,
}

/// The certificates a DER OCSPResponse carries in its BasicOCSPResponse (`certs`: a
/// delegated responder's certificate and its chain), as DER; none when it does not read.
pub fn response_certificates(response_der: &[u8]) -> Vec<Vec<u8>> {
    /// `OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT
    /// ResponseBytes OPTIONAL }`, `ResponseBytes ::= SEQUENCE { responseType OID, response
    /// OCTET STRING }` (RFC 6960 §4.2.1), read only as far as needed here.
    #[derive(Sequence)]
    struct Outer<'a> {
        status: AnyRef<'a>,
        #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
        bytes: Option<ResponseBytesRaw<'a>>,
    }
    #[derive(Sequence)]
    struct ResponseBytesRaw<'a> {
        response_type: ObjectIdentifier,
        response: der::asn1::OctetStringRef<'a>,
    }
    let Ok(outer) = Outer::from_der(response_der) else {
        return Vec::new();
    };
    let Some(bytes) = outer.bytes.filter(|b| b.response_type == oids::OCSP_BASIC) else {
        return Vec::new();
    };
    let Ok(basic) = BasicOcspResponseRaw::from_der(bytes.response.as_bytes()) else {
        return Vec::new();
    };
    basic
        .certs
        .unwrap_or_default()
        .iter()
        .filter_map(|cert| der::Encode::to_der(cert).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_oids_round_trip_and_others_are_unsupported() {
        for hash in CertIdHash::ALL {
            assert_eq!(CertIdHash::from_oid(&hash.oid()), Some(hash));
            let length = match hash {
                CertIdHash::Sha1 => 20,
                CertIdHash::Sha256 => 32,
                CertIdHash::Sha384 => 48,
                CertIdHash::Sha512 => 64,
            };
            assert_eq!(hash.digest(b"abc").len(), length);
        }
        assert_eq!(CertIdHash::from_oid(&oids::SHA256_WITH_RSA), None);
    }
}
