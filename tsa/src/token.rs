//! Signing a `TSTInfo` into a time-stamp token: a CMS `SignedData` (RFC 5652 §5) whose
//! encapsulated content is the DER `TSTInfo` (RFC 3161 §2.4.2), signed by the TSA key through
//! imza's [`SigningKey`] trait.
//!
//! Everything that does not change from token to token (signer identifier, algorithm
//! identifiers, the ESS signing-certificate attribute, the certificate set) is built once.
//! Per token: the message digest, the signed attributes, one signature.

use std::sync::Arc;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier,
    SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Encode};
use imza_core::alg::DigestAlgorithm;
use imza_core::cms::single_valued_attribute;
use imza_core::ess::SigningCertificateV2;
use imza_core::{oids, SigningKey};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

use crate::TsaError;

/// The TSA's signing half: key, certificate and the parts of every SignerInfo fixed by them.
pub(crate) struct TokenSigner {
    key: Arc<dyn SigningKey>,
    digest: DigestAlgorithm,
    digest_algorithm: AlgorithmIdentifierOwned,
    signature_algorithm: AlgorithmIdentifierOwned,
    sid: SignerIdentifier,
    content_type: Attribute,
    signing_certificate: Attribute,
    /// The TSA certificate followed by the configured chain, sent when `certReq` is true.
    certificates: CertificateSet,
}

fn attribute(oid: der::asn1::ObjectIdentifier, value: &impl Encode) -> Result<Attribute, TsaError> {
    single_valued_attribute(oid, value).map_err(|e| TsaError::der("signed attribute", e))
}

impl TokenSigner {
    pub(crate) fn new(
        key: Arc<dyn SigningKey>,
        certificate: &Certificate,
        certificate_der: &[u8],
        chain: &[Certificate],
    ) -> Result<TokenSigner, TsaError> {
        let digest = key.algorithm().digest();
        let tbs = &certificate.tbs_certificate;
        let ess = SigningCertificateV2::sha256_of(certificate, certificate_der)
            .map_err(|e| TsaError::der("ESSCertIDv2", e))?;
        let mut certificates = vec![CertificateChoices::Certificate(certificate.clone())];
        certificates.extend(chain.iter().cloned().map(CertificateChoices::Certificate));
        Ok(TokenSigner {
            digest,
            digest_algorithm: AlgorithmIdentifierOwned {
                oid: digest.oid(),
                parameters: None,
            },
            signature_algorithm: key.signature_algorithm(),
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            }),
            content_type: attribute(oids::ATTR_CONTENT_TYPE, &oids::CT_TST_INFO)?,
            signing_certificate: attribute(oids::ATTR_SIGNING_CERTIFICATE_V2, &ess)?,
            certificates: CertificateSet::try_from(certificates)
                .map_err(|e| TsaError::der("certificate set", e))?,
            key,
        })
    }

    /// Signs the DER `tst_info` and returns the token (`ContentInfo` of `SignedData`).
    pub(crate) fn sign(
        &self,
        tst_info: &[u8],
        include_certificates: bool,
        now: OffsetDateTime,
    ) -> Result<ContentInfo, TsaError> {
        let message_digest = OctetString::new(self.digest.digest(tst_info))
            .map_err(|e| TsaError::der("message digest", e))?;
        let signing_time =
            imza_core::clock::x509_time(now).map_err(|e| TsaError::der("signing time", e))?;
        let signed_attrs: SignedAttributes = SetOfVec::try_from(vec![
            self.content_type.clone(),
            attribute(oids::ATTR_MESSAGE_DIGEST, &message_digest)?,
            attribute(oids::ATTR_SIGNING_TIME, &signing_time)?,
            self.signing_certificate.clone(),
        ])
        .map_err(|e| TsaError::der("signed attributes", e))?;
        // RFC 5652 §5.4: the signature covers the DER of the SET OF attributes with its own
        // SET tag (0x31), not the [0] IMPLICIT tag it carries inside SignerInfo.
        let to_be_signed = signed_attrs
            .to_der()
            .map_err(|e| TsaError::der("signed attributes", e))?;
        let signature = self.key.sign(&to_be_signed).map_err(TsaError::Signing)?;

        let signer_info = SignerInfo {
            // RFC 5652 §5.3: version 1 with issuerAndSerialNumber.
            version: CmsVersion::V1,
            sid: self.sid.clone(),
            digest_alg: self.digest_algorithm.clone(),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: self.signature_algorithm.clone(),
            signature: OctetString::new(signature).map_err(|e| TsaError::der("signature", e))?,
            unsigned_attrs: None,
        };
        let econtent = Any::encode_from(
            &OctetString::new(tst_info).map_err(|e| TsaError::der("eContent", e))?,
        )
        .map_err(|e| TsaError::der("eContent", e))?;
        let signed_data = SignedData {
            // RFC 5652 §5.1: version 3 because eContentType is not id-data.
            version: CmsVersion::V3,
            digest_algorithms: SetOfVec::try_from(vec![self.digest_algorithm.clone()])
                .map_err(|e| TsaError::der("digest algorithms", e))?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: oids::CT_TST_INFO,
                econtent: Some(econtent),
            },
            // RFC 3161 §2.4.1: the certificate goes in only when the requester asked.
            certificates: include_certificates.then(|| self.certificates.clone()),
            crls: None,
            signer_infos: SignerInfos::try_from(vec![signer_info])
                .map_err(|e| TsaError::der("signer infos", e))?,
        };
        Ok(ContentInfo {
            content_type: oids::CT_SIGNED_DATA,
            content: Any::encode_from(&signed_data).map_err(|e| TsaError::der("SignedData", e))?,
        })
    }
}
