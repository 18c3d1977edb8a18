//! The ESS signing-certificate attributes (RFC 2634 §5.4, RFC 5035) that bind a signature to
//! its signer's certificate: a time-stamp token's to the TSA's (RFC 3161 §2.4.1 requires one;
//! RFC 5816 allows the v2 form) and a CAdES signature's to the signer's (EN 319 122-1
//! §5.2.2).
//!
//! imza writes `SigningCertificateV2` with a SHA-256 `ESSCertIDv2` (its TSA and its signer);
//! the verifiers accept either form from others.

use der::asn1::OctetString;
use der::{Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;

use crate::alg::{DigestAlgorithm, DigestIdentifierError};

/// ```text
/// SigningCertificateV2 ::=  SEQUENCE {
///     certs        SEQUENCE OF ESSCertIDv2,
///     policies     SEQUENCE OF PolicyInformation OPTIONAL }
/// ```
/// (RFC 5035 §3.)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    pub policies: Option<Vec<PolicyInformation>>,
}

/// ```text
/// ESSCertIDv2 ::=  SEQUENCE {
///     hashAlgorithm           AlgorithmIdentifier
///                                 DEFAULT {algorithm id-sha256},
///     certHash                 Hash,
///     issuerSerial             IssuerSerial OPTIONAL }
///
/// Hash ::= OCTET STRING
/// ```
/// (RFC 5035 §4.) DER omits a DEFAULT value, so SHA-256 is written as `None`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct EssCertIdV2 {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// ```text
/// SigningCertificate ::=  SEQUENCE {
///     certs        SEQUENCE OF ESSCertID,
///     policies     SEQUENCE OF PolicyInformation OPTIONAL }
///
/// ESSCertID ::=  SEQUENCE {
///     certHash                 Hash,   -- SHA-1 hash of the entire certificate
///     issuerSerial             IssuerSerial OPTIONAL }
/// ```
/// (RFC 2634 §5.4.)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SigningCertificate {
    pub certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    pub policies: Option<Vec<PolicyInformation>>,
}

/// See [`SigningCertificate`].
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct EssCertId {
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// ```text
/// IssuerSerial ::= SEQUENCE {
///     issuer                   GeneralNames,
///     serialNumber             CertificateSerialNumber }
/// ```
/// (RFC 5035 §4.)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct IssuerSerial {
    pub issuer: Vec<GeneralName>,
    pub serial_number: SerialNumber,
}

impl SigningCertificateV2 {
    /// The attribute value imza writes for `certificate` (`certificate_der`, its DER): one
    /// ESSCertIDv2 with the SHA-256 hash (hashAlgorithm omitted: SHA-256 is its DEFAULT) and
    /// the certificate's issuerSerial, which lets a verifier match the certificate without
    /// hashing every candidate.
    pub fn sha256_of(
        certificate: &Certificate,
        certificate_der: &[u8],
    ) -> der::Result<SigningCertificateV2> {
        let tbs = &certificate.tbs_certificate;
        Ok(SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                hash_algorithm: None,
                cert_hash: OctetString::new(openssl::sha::sha256(certificate_der).to_vec())?,
                issuer_serial: Some(IssuerSerial {
                    issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
                    serial_number: tbs.serial_number.clone(),
                }),
            }],
            policies: None,
        })
    }
}

impl EssCertIdV2 {
    /// hashAlgorithm, SHA-256 when absent (its DEFAULT); an error names one not accepted.
    pub fn hash_algorithm(&self) -> Result<DigestAlgorithm, DigestIdentifierError> {
        match &self.hash_algorithm {
            None => Ok(DigestAlgorithm::Sha256),
            Some(algorithm) => DigestAlgorithm::from_identifier(algorithm),
        }
    }
}

impl IssuerSerial {
    /// Whether this names `certificate`: its serial number, and its issuer among the
    /// directory names (compared as DER).
    pub fn names(&self, certificate: &Certificate) -> bool {
        let tbs = &certificate.tbs_certificate;
        let issuer = tbs.issuer.to_der().ok();
        self.serial_number == tbs.serial_number
            && self.issuer.iter().any(|name| match name {
                GeneralName::DirectoryName(n) => issuer.is_some() && n.to_der().ok() == issuer,
                _ => false,
            })
    }
}
