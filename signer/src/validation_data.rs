//! B-LT validation data (ETSI EN 319 122-1 §5.4): the certificates and revocation values that
//! validate the signer's certificate and every time-stamping unit's certificate, gathered by
//! validating each path now (imza-validation, revocation required, CRLs and OCSP fetched over
//! the network) and embedded in `SignedData.certificates` and `SignedData.crls` — CRLs as
//! `CertificateList`, OCSP responses as `other` with id-ri-ocsp-response (RFC 5940 §4.3).

use std::sync::Arc;

use der::asn1::{ContextSpecific, ObjectIdentifier};
use der::{Any, Decode, Encode, Sequence, TagMode, TagNumber};
use imza_core::oids;
use imza_http::HttpClient;
use imza_validation::{
    Certificate, Crl, Fetcher, Purpose, RevocationEvidence, RevocationPolicy, SharedFetcher,
    ValidationOptions, Validator,
};
use time::OffsetDateTime;

use crate::attributes::{archive_timestamps, signature_timestamps};
use crate::signed_data::{find_signer_certificate, CmsSignedData, AUGMENTING};
use crate::{RevocationDataError, SignerError};

/// What B-LT validation data is gathered with.
pub struct ValidationDataSources {
    /// Trust anchors (DER certificates) for the signer's and the TSAs' certificates.
    pub trust_anchors: Vec<Vec<u8>>,
    /// More certificates (DER) paths may be built through: intermediates not in the signature.
    pub certificates: Vec<Vec<u8>>,
    /// Fetches CRLs and OCSP responses from the URLs in the certificates.
    pub fetcher: Arc<dyn Fetcher>,
    /// The time the paths are validated at (now, for fresh revocation values).
    pub time: OffsetDateTime,
}

impl ValidationDataSources {
    /// `trust_anchors`, HTTP fetching, validation now.
    pub fn new(trust_anchors: Vec<Vec<u8>>) -> ValidationDataSources {
        ValidationDataSources {
            trust_anchors,
            certificates: Vec::new(),
            fetcher: Arc::new(HttpClient::default()),
            time: OffsetDateTime::now_utc(),
        }
    }
}

/// ```text
/// OtherRevocationInfoFormat ::= SEQUENCE {
///   otherRevInfoFormat  OBJECT IDENTIFIER,
///   otherRevInfo        ANY DEFINED BY otherRevInfoFormat }
/// ```
/// (RFC 5652 §10.2.1; cms 0.2 types otherRevInfoFormat as an AlgorithmIdentifier.)
#[derive(Clone, Debug, Sequence)]
pub(crate) struct OtherRevocationInfoFormat {
    pub(crate) other_rev_info_format: ObjectIdentifier,
    pub(crate) other_rev_info: Any,
}

/// `RevocationInfoChoice ::= ... other [1] IMPLICIT OtherRevocationInfoFormat` holding a DER
/// OCSPResponse under id-ri-ocsp-response (RFC 5940 §4.3).
pub(crate) fn ocsp_revocation_choice(ocsp_response: &[u8]) -> Result<Vec<u8>, SignerError> {
    let other = OtherRevocationInfoFormat {
        other_rev_info_format: oids::RI_OCSP_RESPONSE,
        other_rev_info: Any::from_der(ocsp_response)
            .map_err(|e| SignerError::malformed("OCSP response", e))?,
    };
    ContextSpecific {
        tag_number: TagNumber::N1,
        tag_mode: TagMode::Implicit,
        value: other,
    }
    .to_der()
    .map_err(|e| SignerError::malformed("OCSP revocation value", e))
}

/// One element of `SignedData.crls`, by kind.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RevocationValue<'a> {
    /// A `CertificateList` (its DER).
    Crl(&'a [u8]),
    /// The DER OCSPResponse of an `other` element of type id-ri-ocsp-response.
    OcspResponse(Vec<u8>),
    /// Another kind imza does not use.
    Other,
}

/// Reads one `RevocationInfoChoice ::= CHOICE { crl CertificateList, other [1] IMPLICIT
/// OtherRevocationInfoFormat }` element (RFC 5652 §10.2.1). An `other` element that does
/// not read is an error.
pub(crate) fn revocation_value(element: &[u8]) -> Result<RevocationValue<'_>, SignerError> {
    if element.first() == Some(&0x30) {
        return Ok(RevocationValue::Crl(element));
    }
    let malformed = |e| SignerError::malformed("RevocationInfoChoice", e);
    let mut reader = der::SliceReader::new(element).map_err(malformed)?;
    let other =
        ContextSpecific::<OtherRevocationInfoFormat>::decode_implicit(&mut reader, TagNumber::N1)
            .map_err(malformed)?;
    match other {
        Some(other) if other.value.other_rev_info_format == oids::RI_OCSP_RESPONSE => other
            .value
            .other_rev_info
            .to_der()
            .map(RevocationValue::OcspResponse)
            .map_err(|e| SignerError::malformed("id-ri-ocsp-response", e)),
        _ => Ok(RevocationValue::Other),
    }
}

/// Validates the signer's certificate and every time-stamp's TSA certificate and adds the
/// chains and the revocation values found to `signed_data`.
pub(crate) fn add_validation_data(
    signed_data: &mut CmsSignedData,
    sources: &ValidationDataSources,
) -> Result<(), SignerError> {
    let signer = signed_data.only_signer()?.clone();
    let mut pool: Vec<Vec<u8>> = signed_data
        .x509_certificates()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    pool.extend(sources.certificates.iter().cloned());

    // Whose certificates need validation data: the signer, then each TSA.
    let mut targets: Vec<(String, Vec<u8>)> = Vec::new();
    let (signer_cert, _) = find_signer_certificate(&signer, pool.iter().map(Vec::as_slice))
        .ok_or_else(|| {
            SignerError::Usage(format!(
                "the signer's certificate ({}) is neither in the signature nor among the \
                 certificates given",
                signer.describe_sid()
            ))
        })?;
    targets.push(("the signer's certificate".into(), signer_cert.to_vec()));
    let mut tokens: Vec<(&'static str, Vec<u8>)> = Vec::new();
    for token in signature_timestamps(&signer)? {
        tokens.push(("signature time-stamp", token.der().to_vec()));
    }
    for archive in archive_timestamps(&signer)? {
        tokens.push(("archive time-stamp", archive.token.der().to_vec()));
    }
    for (what, der) in &tokens {
        let token = CmsSignedData::read(der, &AUGMENTING)?;
        let token_signer = token.only_signer()?;
        let token_certs: Vec<Vec<u8>> = token
            .x509_certificates()
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        let found = find_signer_certificate(
            token_signer,
            token_certs.iter().chain(pool.iter()).map(Vec::as_slice),
        )
        .map(|(der, _)| der.to_vec())
        .ok_or_else(|| {
            SignerError::Usage(format!(
                "the TSA certificate of the {what} ({}) is neither in its token nor among the \
                 certificates given",
                token_signer.describe_sid()
            ))
        })?;
        pool.extend(token_certs);
        targets.push((format!("the TSA certificate of the {what}"), found));
    }

    let mut existing = Vec::new();
    // Revocation values already embedded serve again when still usable.
    for element in &signed_data.crls {
        match revocation_value(element) {
            Ok(RevocationValue::Crl(der)) => existing.push(Evidence::Crl(der.to_vec())),
            Ok(RevocationValue::OcspResponse(response)) => existing.push(Evidence::Ocsp(response)),
            Ok(RevocationValue::Other) | Err(_) => {}
        }
    }
    let gathered = gather(&targets, &pool, existing, sources)?;
    for cert in &gathered.certificates {
        signed_data.add_certificate(cert)?;
    }
    for evidence in gathered.revocation {
        match evidence {
            Evidence::Crl(der) => signed_data.add_revocation_value(der)?,
            Evidence::Ocsp(der) => {
                signed_data.add_revocation_value(ocsp_revocation_choice(&der)?)?
            }
        };
    }
    Ok(())
}

/// A revocation value: a DER CRL or a DER OCSPResponse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Evidence {
    Crl(Vec<u8>),
    Ocsp(Vec<u8>),
}

/// What validating some certificates now found: the certificates of their paths (the
/// anchors included) and the revocation values used, each once.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    pub(crate) certificates: Vec<Vec<u8>>,
    pub(crate) revocation: Vec<Evidence>,
}

/// Validates each of `targets` (what it is, its DER certificate) now with revocation required,
/// building paths through `pool` and using `existing` revocation values where still usable,
/// and returns the paths' certificates and revocation values.
pub(crate) fn gather(
    targets: &[(String, Vec<u8>)],
    pool: &[Vec<u8>],
    existing: Vec<Evidence>,
    sources: &ValidationDataSources,
) -> Result<Gathered, SignerError> {
    let anchors = sources
        .trust_anchors
        .iter()
        .map(|der| Certificate::from_der(der.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SignerError::malformed("trust anchor", e))?;
    if anchors.is_empty() {
        return Err(SignerError::Usage(
            "B-LT needs at least one trust anchor to validate the certificates with".into(),
        ));
    }
    let mut validator = Validator::new(anchors);
    for der in pool.iter().chain(&sources.certificates) {
        if let Ok(cert) = Certificate::from_der(der.clone()) {
            validator.add_certificate(cert);
        }
    }
    for evidence in existing {
        match evidence {
            Evidence::Crl(der) => {
                if let Ok(crl) = Crl::from_der(der) {
                    validator.add_crl(crl);
                }
            }
            Evidence::Ocsp(response) => validator.add_ocsp_response(response),
        }
    }
    validator.set_fetcher(Box::new(SharedFetcher(sources.fetcher.clone())));
    let mut options = ValidationOptions::at(sources.time);
    options.purpose = Purpose::Any;
    options.revocation = RevocationPolicy::Require;
    options.network = true;

    let mut gathered = Gathered::default();
    for (what, der) in targets {
        let target = Certificate::from_der(der.clone())
            .map_err(|e| SignerError::malformed("certificate", e))?;
        let path = validator.validate(&target, &options).map_err(|source| {
            SignerError::Revocation(Box::new(RevocationDataError {
                what: what.clone(),
                subject: target.subject_text(),
                source,
            }))
        })?;
        for cert in &path.chain {
            if !gathered.certificates.iter().any(|c| c == cert.der()) {
                gathered.certificates.push(cert.der().to_vec());
            }
        }
        for status in &path.revocation {
            let evidence = match &status.evidence {
                Some(RevocationEvidence::Crl { der, .. }) => Evidence::Crl(der.to_vec()),
                Some(RevocationEvidence::Ocsp { der, .. }) => Evidence::Ocsp(der.to_vec()),
                // Only a validator given the issuer's records finds this; nothing to embed.
                Some(RevocationEvidence::Local { .. }) | None => continue,
            };
            if !gathered.revocation.contains(&evidence) {
                gathered.revocation.push(evidence);
            }
        }
    }
    Ok(gathered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocsp_responses_go_in_as_other_revocation_info_and_come_back_out() {
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED { tryLater (3) } }
        let response = [0x30, 0x03, 0x0a, 0x01, 0x03];
        let element = ocsp_revocation_choice(&response).unwrap();
        assert_eq!(element[0], 0xa1, "[1] IMPLICIT, constructed");
        assert_eq!(
            revocation_value(&element).unwrap(),
            RevocationValue::OcspResponse(response.to_vec())
        );
        // A CRL element is a CRL; a broken `other` is an error.
        assert_eq!(
            revocation_value(&response).unwrap(),
            RevocationValue::Crl(&response)
        );
        assert!(revocation_value(b"\xa1\x00").is_err());
    }
}
