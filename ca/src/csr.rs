//! PKCS#10 certificate requests (RFC 2986): parsed, and accepted only when their self-signature
//! verifies (proof of possession of the private key, RFC 2986 §3 / RFC 4211 §4).

use der::asn1::{AnyRef, BitStringRef};
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::request::CertReqInfo;

use imza_core::ext::AltName;
use imza_core::verify::verify_signature;
use imza_core::{oids, pem, KeyAlgorithm};

use crate::error::CaError;

/// Largest CSR accepted (a real one is under 4 KiB).
pub const MAX_CSR_BYTES: usize = 64 * 1024;

/// ```text
/// CertificationRequest ::= SEQUENCE {
///      certificationRequestInfo CertificationRequestInfo,
///      signatureAlgorithm AlgorithmIdentifier{{ SignatureAlgorithms }},
///      signature          BIT STRING }
/// ```
/// (RFC 2986 §4.2), read with the info left as the exact bytes that were signed.
#[derive(Sequence)]
struct RawCertificationRequest<'a> {
    info: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitStringRef<'a>,
}

/// What a verified CSR proposes; the profile decides what of it is granted.
#[derive(Clone, Debug)]
pub struct CertificateRequest {
    pub subject: Name,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub key_algorithm: KeyAlgorithm,
    /// subjectAltNames asked for in an extensionRequest attribute.
    pub alt_names: Vec<AltName>,
    /// True if the CSR asked for basicConstraints cA=TRUE.
    pub asks_for_ca: bool,
}

/// Parses a PEM or DER CSR and verifies its signature.
pub fn parse_csr(input: &[u8]) -> Result<CertificateRequest, CaError> {
    if input.len() > MAX_CSR_BYTES {
        return Err(CaError::BadCsr(format!(
            "larger than {MAX_CSR_BYTES} bytes"
        )));
    }
    let der = pem::decode_pem_or_der(
        input,
        &[pem::CERTIFICATE_REQUEST, "NEW CERTIFICATE REQUEST"],
        "CSR",
    )
    .map_err(|e| CaError::BadCsr(e.to_string()))?;
    let raw = RawCertificationRequest::from_der(&der)
        .map_err(|e| CaError::BadCsr(format!("not a PKCS#10 request ({e})")))?;
    let info_der = raw
        .info
        .to_der()
        .map_err(|e| CaError::BadCsr(e.to_string()))?;
    let info = CertReqInfo::from_der(&info_der)
        .map_err(|e| CaError::BadCsr(format!("bad certificationRequestInfo ({e})")))?;
    let public_key = info
        .public_key
        .to_der()
        .map_err(|e| CaError::BadCsr(e.to_string()))?;
    let signature = raw
        .signature
        .as_bytes()
        .ok_or_else(|| CaError::BadCsr("signature BIT STRING has unused bits".into()))?;
    verify_signature(&public_key, &raw.signature_algorithm, &info_der, signature)
        .map_err(|e| CaError::ProofOfPossession(e.to_string()))?;
    let key_algorithm = KeyAlgorithm::of_public_key(&public_key)?;

    let mut alt_names = Vec::new();
    let mut asks_for_ca = false;
    for attribute in info.attributes.iter() {
        if attribute.oid != oids::EXT_EXTENSION_REQUEST {
            continue;
        }
        for value in attribute.values.iter() {
            let extensions: Extensions = value
                .decode_as()
                .map_err(|e| CaError::BadCsr(format!("bad extensionRequest ({e})")))?;
            for ext in extensions {
                if ext.extn_id == oids::EXT_SUBJECT_ALT_NAME {
                    let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                        .map_err(|e| CaError::BadCsr(format!("bad subjectAltName ({e})")))?;
                    for name in &san.0 {
                        alt_names.push(AltName::from_general_name(name).ok_or_else(|| {
                            CaError::BadCsr(format!("unsupported subjectAltName form {name:?}"))
                        })?);
                    }
                } else if ext.extn_id == oids::EXT_BASIC_CONSTRAINTS {
                    let bc = BasicConstraints::from_der(ext.extn_value.as_bytes())
                        .map_err(|e| CaError::BadCsr(format!("bad basicConstraints ({e})")))?;
                    asks_for_ca |= bc.ca;
                }
            }
        }
    }
    Ok(CertificateRequest {
        subject: info.subject,
        public_key,
        key_algorithm,
        alt_names,
        asks_for_ca,
    })
}
