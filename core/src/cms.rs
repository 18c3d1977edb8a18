//! A CMS `SignedData` (RFC 5652 §5) read and written with its parts kept as they were
//! encoded. The `cms` crate's types sort every SET OF when decoding; a verifier must not (the
//! signature over signed attributes covers the bytes as sent, RFC 5652 §5.4, and real
//! signatures carry sets in other orders), and raising a signature's level must not touch
//! what is signed: the signed attributes and the SignerInfo fields an archive time-stamp
//! covers (ETSI EN 319 122-1 §5.5.3) keep their exact bytes, and certificates, revocation
//! values and unsigned attributes are added as new elements beside the old ones.
//!
//! One reader for every CMS signature imza reads: time-stamp tokens (imza-tsa), CAdES
//! signatures being augmented or validated (imza-signer). Every loop over elements is
//! bounded by the caller's [`Limits`]. Sets are written in DER order (X.690 §11.6: ascending
//! encodings); each element keeps the bytes it came with.

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::asn1::{ObjectIdentifier, OctetString, OctetStringRef};
use der::{
    Any, Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence,
    SliceReader, Tag, Writer,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use crate::oids;

/// Why a SignedData could not be read or changed. Each crate turns it into its own words (a
/// malformed signature, a malformed time-stamp token).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CmsError {
    /// Input that does not read as the structure it should be.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// A change the SignedData cannot take (past its limits, or needing exactly one signer).
    #[error("{0}")]
    Refused(String),
}

impl CmsError {
    pub fn malformed(what: &'static str, detail: impl std::fmt::Display) -> CmsError {
        CmsError::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}

/// How much one SignedData may hold: every loop over its elements is bounded, and anything
/// past a bound is a format error when read, a refusal when added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub certificates: usize,
    pub revocation_values: usize,
    pub signers: usize,
    /// Attributes in one signed or unsigned attribute set.
    pub attributes: usize,
    /// Values of one attribute.
    pub attribute_values: usize,
}

/// The content octets of a SET or SET OF: the element encodings, concatenated as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawSet(Vec<u8>);

impl FixedTag for RawSet {
    const TAG: Tag = Tag::Set;
}

impl<'a> DecodeValue<'a> for RawSet {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        reader.read_vec(header.length).map(RawSet)
    }
}

impl EncodeValue for RawSet {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

impl RawSet {
    /// Each element's complete encoding (tag, length, value), at most `limit` of them.
    pub(crate) fn elements(
        &self,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<&[u8]>, CmsError> {
        let mut reader = SliceReader::new(&self.0).map_err(|e| CmsError::malformed(what, e))?;
        let mut out = Vec::new();
        while !reader.is_finished() {
            if out.len() == limit {
                return Err(CmsError::malformed(
                    what,
                    format!("more than {limit} elements"),
                ));
            }
            out.push(
                reader
                    .tlv_bytes()
                    .map_err(|e| CmsError::malformed(what, e))?,
            );
        }
        Ok(out)
    }

    /// A SET OF these element encodings in DER order (X.690 §11.6).
    pub(crate) fn from_elements<T: AsRef<[u8]>>(elements: &[T]) -> RawSet {
        let mut sorted: Vec<&[u8]> = elements.iter().map(AsRef::as_ref).collect();
        sorted.sort();
        RawSet(sorted.concat())
    }

    /// The SET with its universal SET tag (0x31): what a signature over signed attributes
    /// covers (RFC 5652 §5.4), whatever tag it carries inside its SignerInfo.
    pub(crate) fn to_set_der(&self) -> Result<Vec<u8>, CmsError> {
        self.to_der()
            .map_err(|e| CmsError::malformed("attribute set", e))
    }
}

/// ```text
/// SignedData ::= SEQUENCE {
///   version CMSVersion,
///   digestAlgorithms DigestAlgorithmIdentifiers,
///   encapContentInfo EncapsulatedContentInfo,
///   certificates [0] IMPLICIT CertificateSet OPTIONAL,
///   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
///   signerInfos SignerInfos }
/// ```
/// (RFC 5652 §5.1), its SETs kept as received.
#[derive(Clone, Debug, Sequence)]
struct SignedDataRaw {
    version: CmsVersion,
    digest_algorithms: RawSet,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    certificates: Option<RawSet>,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    crls: Option<RawSet>,
    signer_infos: RawSet,
}

/// ```text
/// SignerInfo ::= SEQUENCE {
///   version CMSVersion,
///   sid SignerIdentifier,
///   digestAlgorithm DigestAlgorithmIdentifier,
///   signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
///   signatureAlgorithm SignatureAlgorithmIdentifier,
///   signature SignatureValue,
///   unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
/// ```
/// (RFC 5652 §5.3), with `version` and `sid` kept as received and the attribute SETs raw.
#[derive(Clone, Debug, Sequence)]
struct SignerInfoRaw {
    version: Any,
    sid: Any,
    digest_alg: AlgorithmIdentifierOwned,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    signed_attrs: Option<RawSet>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: OctetString,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    unsigned_attrs: Option<RawSet>,
}

/// `Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF AttributeValue }`
/// (RFC 5652 §5.3), its values kept as received.
#[derive(Clone, Debug, Sequence)]
struct AttributeRaw {
    oid: ObjectIdentifier,
    values: RawSet,
}

/// One attribute, with the encodings an archive time-stamp's hash index is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawAttribute {
    pub oid: ObjectIdentifier,
    /// Each AttributeValue's complete encoding, in the order received.
    pub values: Vec<Vec<u8>>,
    /// The whole Attribute's encoding.
    pub der: Vec<u8>,
}

impl RawAttribute {
    /// An attribute of type `oid` with these value encodings (sorted, as a DER SET OF).
    pub fn new(oid: ObjectIdentifier, values: Vec<Vec<u8>>) -> Result<Self, CmsError> {
        let der = AttributeRaw {
            oid,
            values: RawSet::from_elements(&values),
        }
        .to_der()
        .map_err(|e| CmsError::malformed("attribute", e))?;
        Ok(RawAttribute { oid, values, der })
    }

    fn read(der: &[u8], limits: &Limits) -> Result<Self, CmsError> {
        let attr = AttributeRaw::from_der(der).map_err(|e| CmsError::malformed("attribute", e))?;
        let values = attr
            .values
            .elements(limits.attribute_values, "attribute values")?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        Ok(RawAttribute {
            oid: attr.oid,
            values,
            der: der.to_vec(),
        })
    }

    /// The encoding of `attrType` (the OBJECT IDENTIFIER's tag, length and value).
    pub fn oid_der(&self) -> Result<Vec<u8>, CmsError> {
        self.oid
            .to_der()
            .map_err(|e| CmsError::malformed("attribute type", e))
    }
}

/// Every attribute in a SET OF Attribute.
fn read_attributes(
    set: &RawSet,
    what: &'static str,
    limits: &Limits,
) -> Result<Vec<RawAttribute>, CmsError> {
    set.elements(limits.attributes, what)?
        .into_iter()
        .map(|der| RawAttribute::read(der, limits))
        .collect()
}

/// One SignerInfo: the signed part exactly as received, the unsigned attributes editable.
#[derive(Clone, Debug)]
pub struct CmsSigner {
    raw: SignerInfoRaw,
    limits: Limits,
    /// `raw.sid` read (the encoding written stays the one received).
    sid: SignerIdentifier,
    pub signed_attributes: Option<Vec<RawAttribute>>,
    pub unsigned_attributes: Vec<RawAttribute>,
}

impl CmsSigner {
    fn read(der: &[u8], limits: &Limits) -> Result<CmsSigner, CmsError> {
        let raw = SignerInfoRaw::from_der(der).map_err(|e| CmsError::malformed("SignerInfo", e))?;
        // Kept as received, but they must read as what they are.
        raw.version
            .decode_as::<CmsVersion>()
            .map_err(|e| CmsError::malformed("SignerInfo version", e))?;
        let sid = raw
            .sid
            .to_der()
            .and_then(|der| SignerIdentifier::from_der(&der))
            .map_err(|e| CmsError::malformed("SignerIdentifier", e))?;
        let signed_attributes = raw
            .signed_attrs
            .as_ref()
            .map(|set| read_attributes(set, "signed attributes", limits))
            .transpose()?;
        let unsigned_attributes = match &raw.unsigned_attrs {
            Some(set) => read_attributes(set, "unsigned attributes", limits)?,
            None => Vec::new(),
        };
        Ok(CmsSigner {
            raw,
            limits: *limits,
            sid,
            signed_attributes,
            unsigned_attributes,
        })
    }

    fn to_raw(&self) -> Result<SignerInfoRaw, CmsError> {
        let mut raw = self.raw.clone();
        raw.unsigned_attrs = if self.unsigned_attributes.is_empty() {
            None
        } else {
            let elements: Vec<&[u8]> = self
                .unsigned_attributes
                .iter()
                .map(|a| a.der.as_slice())
                .collect();
            Some(RawSet::from_elements(&elements))
        };
        Ok(raw)
    }

    /// The signer identifier (issuerAndSerialNumber or subjectKeyIdentifier).
    pub fn sid(&self) -> &SignerIdentifier {
        &self.sid
    }

    /// `issuer ..., serial ...` or `subjectKeyIdentifier ...`, for messages.
    pub fn describe_sid(&self) -> String {
        match &self.sid {
            SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer,
                serial_number,
            }) => format!(
                "issuer {}, serial {}",
                crate::name::format_dn(issuer),
                hex::encode_upper(serial_number.as_bytes())
            ),
            SignerIdentifier::SubjectKeyIdentifier(ski) => format!(
                "subjectKeyIdentifier {}",
                hex::encode_upper(ski.0.as_bytes())
            ),
        }
    }

    pub fn digest_algorithm(&self) -> &AlgorithmIdentifierOwned {
        &self.raw.digest_alg
    }

    pub fn signature_algorithm(&self) -> &AlgorithmIdentifierOwned {
        &self.raw.signature_algorithm
    }

    /// The signature value: the SignatureValue OCTET STRING's contents.
    pub fn signature(&self) -> &[u8] {
        self.raw.signature.as_bytes()
    }

    /// The DER SET OF signed attributes with its universal SET tag: the message the signature
    /// is over (RFC 5652 §5.4). `None` when the SignerInfo has no signed attributes.
    pub fn signed_attributes_der(&self) -> Result<Option<Vec<u8>>, CmsError> {
        self.raw
            .signed_attrs
            .as_ref()
            .map(RawSet::to_set_der)
            .transpose()
    }

    /// The encodings of `version`, `sid`, `digestAlgorithm`, `signedAttrs` (with its [0]
    /// tag), `signatureAlgorithm` and `signature`, concatenated in that order: the part of
    /// the SignerInfo an archive-time-stamp-v3 covers (EN 319 122-1 §5.5.3, item c), and what
    /// augmenting a signature never changes.
    pub fn signed_fields_der(&self) -> Result<Vec<u8>, CmsError> {
        let mut raw = self.raw.clone();
        raw.unsigned_attrs = None;
        let der = raw
            .to_der()
            .map_err(|e| CmsError::malformed("SignerInfo", e))?;
        let mut reader =
            SliceReader::new(&der).map_err(|e| CmsError::malformed("SignerInfo", e))?;
        let header =
            Header::decode(&mut reader).map_err(|e| CmsError::malformed("SignerInfo", e))?;
        reader
            .read_slice(header.length)
            .map(<[u8]>::to_vec)
            .map_err(|e| CmsError::malformed("SignerInfo", e))
    }

    /// Whether an unsigned attribute of type `oid` is there (with values or not).
    pub fn has_unsigned(&self, oid: ObjectIdentifier) -> bool {
        self.unsigned_attributes.iter().any(|a| a.oid == oid)
    }

    /// Every value of every unsigned attribute of type `oid`, in the order held.
    pub fn unsigned_values(&self, oid: ObjectIdentifier) -> Vec<&[u8]> {
        self.unsigned_attributes
            .iter()
            .filter(|a| a.oid == oid)
            .flat_map(|a| a.values.iter().map(Vec::as_slice))
            .collect()
    }

    /// Adds an unsigned attribute (it is placed in DER order when written).
    pub fn add_unsigned(&mut self, attribute: RawAttribute) -> Result<(), CmsError> {
        let limit = self.limits.attributes;
        if self.unsigned_attributes.len() >= limit {
            return Err(CmsError::Refused(format!(
                "the signature already has {limit} unsigned attributes"
            )));
        }
        self.unsigned_attributes.push(attribute);
        Ok(())
    }
}

/// A `ContentInfo` of `SignedData`, parts kept as received.
#[derive(Clone, Debug)]
pub struct CmsSignedData {
    limits: Limits,
    version: CmsVersion,
    digest_algorithms: RawSet,
    encap: EncapsulatedContentInfo,
    /// Each CertificateChoices element's encoding.
    pub certificates: Vec<Vec<u8>>,
    /// Each RevocationInfoChoice element's encoding.
    pub crls: Vec<Vec<u8>>,
    pub signers: Vec<CmsSigner>,
}

impl CmsSignedData {
    /// Reads a DER `ContentInfo` whose content is a `SignedData`, within `limits`.
    pub fn read(der: &[u8], limits: &Limits) -> Result<CmsSignedData, CmsError> {
        let content_info =
            ContentInfo::from_der(der).map_err(|e| CmsError::malformed("CMS ContentInfo", e))?;
        if content_info.content_type != oids::CT_SIGNED_DATA {
            return Err(CmsError::malformed(
                "CMS ContentInfo",
                format!(
                    "content type {} is not signedData (1.2.840.113549.1.7.2)",
                    content_info.content_type
                ),
            ));
        }
        let inner = content_info
            .content
            .to_der()
            .map_err(|e| CmsError::malformed("SignedData", e))?;
        let raw =
            SignedDataRaw::from_der(&inner).map_err(|e| CmsError::malformed("SignedData", e))?;
        let elements = |set: &Option<RawSet>, limit, what| -> Result<Vec<Vec<u8>>, CmsError> {
            Ok(match set {
                Some(set) => set
                    .elements(limit, what)?
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
                None => Vec::new(),
            })
        };
        let certificates = elements(
            &raw.certificates,
            limits.certificates,
            "SignedData.certificates",
        )?;
        let crls = elements(&raw.crls, limits.revocation_values, "SignedData.crls")?;
        let signers = raw
            .signer_infos
            .elements(limits.signers, "SignerInfos")?
            .into_iter()
            .map(|der| CmsSigner::read(der, limits))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(econtent) = &raw.encap_content_info.econtent {
            econtent
                .decode_as::<OctetStringRef<'_>>()
                .map_err(|e| CmsError::malformed("eContent", e))?;
        }
        Ok(CmsSignedData {
            limits: *limits,
            version: raw.version,
            digest_algorithms: raw.digest_algorithms,
            encap: raw.encap_content_info,
            certificates,
            crls,
            signers,
        })
    }

    /// A SignedData made here: `digest_algorithm`, the content (or none, detached), the
    /// certificates and one SignerInfo (its DER), to grow within `limits`.
    pub fn assemble(
        digest_algorithm: &AlgorithmIdentifierOwned,
        econtent_type: ObjectIdentifier,
        econtent: Option<&[u8]>,
        certificates: Vec<Vec<u8>>,
        signer_info_der: &[u8],
        limits: &Limits,
    ) -> Result<CmsSignedData, CmsError> {
        let econtent = econtent
            .map(|content| OctetString::new(content).and_then(|octets| Any::encode_from(&octets)))
            .transpose()
            .map_err(|e| CmsError::malformed("eContent", e))?;
        let digest_algorithm = digest_algorithm
            .to_der()
            .map_err(|e| CmsError::malformed("digest algorithm", e))?;
        Ok(CmsSignedData {
            limits: *limits,
            // RFC 5652 §5.1: recomputed when written.
            version: CmsVersion::V1,
            digest_algorithms: RawSet::from_elements(&[digest_algorithm]),
            encap: EncapsulatedContentInfo {
                econtent_type,
                econtent,
            },
            certificates,
            crls: Vec::new(),
            signers: vec![CmsSigner::read(signer_info_der, limits)?],
        })
    }

    pub fn econtent_type(&self) -> ObjectIdentifier {
        self.encap.econtent_type
    }

    /// The encoding of `eContentType` (tag, length and value of the OBJECT IDENTIFIER).
    pub fn econtent_type_der(&self) -> Result<Vec<u8>, CmsError> {
        self.encap
            .econtent_type
            .to_der()
            .map_err(|e| CmsError::malformed("eContentType", e))
    }

    /// The encapsulated content's octets, `None` for a detached signature.
    pub fn econtent(&self) -> Option<&[u8]> {
        self.encap
            .econtent
            .as_ref()
            .and_then(|any| any.decode_as::<OctetStringRef<'_>>().ok())
            .map(|octets| octets.as_bytes())
    }

    /// The only SignerInfo; signatures with none or several are refused for augmenting.
    pub fn only_signer(&self) -> Result<&CmsSigner, CmsError> {
        match self.signers.as_slice() {
            [signer] => Ok(signer),
            others => Err(CmsError::Refused(format!(
                "the signature has {} SignerInfos; imza augments signatures with exactly one",
                others.len()
            ))),
        }
    }

    pub fn only_signer_mut(&mut self) -> Result<&mut CmsSigner, CmsError> {
        let count = self.signers.len();
        match self.signers.as_mut_slice() {
            [signer] => Ok(signer),
            _ => Err(CmsError::Refused(format!(
                "the signature has {count} SignerInfos; imza augments signatures with exactly one"
            ))),
        }
    }

    /// The X.509 certificates (CertificateChoices `certificate`), each as its DER; other
    /// choices (attribute certificates, other formats) are skipped.
    pub fn x509_certificates(&self) -> Vec<&[u8]> {
        self.certificates
            .iter()
            .filter(|c| c.first() == Some(&0x30))
            .map(Vec::as_slice)
            .collect()
    }

    /// Adds a DER X.509 certificate unless the same encoding is already there.
    pub fn add_certificate(&mut self, der: &[u8]) -> Result<bool, CmsError> {
        if self.certificates.iter().any(|c| c == der) {
            return Ok(false);
        }
        let limit = self.limits.certificates;
        if self.certificates.len() >= limit {
            return Err(CmsError::Refused(format!(
                "the signature already carries {limit} certificates"
            )));
        }
        Certificate::from_der(der).map_err(|e| CmsError::malformed("certificate", e))?;
        self.certificates.push(der.to_vec());
        Ok(true)
    }

    /// Adds a RevocationInfoChoice encoding unless the same one is already there.
    pub fn add_revocation_value(&mut self, element: Vec<u8>) -> Result<bool, CmsError> {
        if self.crls.contains(&element) {
            return Ok(false);
        }
        let limit = self.limits.revocation_values;
        if self.crls.len() >= limit {
            return Err(CmsError::Refused(format!(
                "the signature already carries {limit} revocation values"
            )));
        }
        self.crls.push(element);
        Ok(true)
    }

    /// The version RFC 5652 §5.1 asks for: 5 with certificates or revocation values of type
    /// `other`, 4 with version 2 attribute certificates, 3 with v3 SignerInfos or content
    /// other than id-data, else 1; never lower than the version read.
    fn required_version(&self) -> CmsVersion {
        let other_crls = self.crls.iter().any(|c| c.first() == Some(&0xa1));
        let other_certs = self.certificates.iter().any(|c| c.first() == Some(&0xa3));
        let v2_attr_certs = self.certificates.iter().any(|c| c.first() == Some(&0xa2));
        let v3_signers = self.signers.iter().any(|s| s.raw.version.value() == [3]);
        let required = if other_crls || other_certs {
            CmsVersion::V5
        } else if v2_attr_certs {
            CmsVersion::V4
        } else if v3_signers || self.encap.econtent_type != oids::CT_DATA {
            CmsVersion::V3
        } else {
            CmsVersion::V1
        };
        if (required as u8) > (self.version as u8) {
            required
        } else {
            self.version
        }
    }

    /// The `ContentInfo` DER.
    pub fn to_der(&self) -> Result<Vec<u8>, CmsError> {
        let set =
            |elements: &[Vec<u8>]| (!elements.is_empty()).then(|| RawSet::from_elements(elements));
        let signer_infos = self
            .signers
            .iter()
            .map(|s| {
                s.to_raw()?
                    .to_der()
                    .map_err(|e| CmsError::malformed("SignerInfo", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let raw = SignedDataRaw {
            version: self.required_version(),
            digest_algorithms: self.digest_algorithms.clone(),
            encap_content_info: self.encap.clone(),
            certificates: set(&self.certificates),
            crls: set(&self.crls),
            signer_infos: RawSet::from_elements(&signer_infos),
        };
        let content_info = ContentInfo {
            content_type: oids::CT_SIGNED_DATA,
            content: Any::encode_from(&raw).map_err(|e| CmsError::malformed("SignedData", e))?,
        };
        content_info
            .to_der()
            .map_err(|e| CmsError::malformed("ContentInfo", e))
    }
}

/// An `Attribute` (RFC 5652 §5.3) of type `oid` with one value, `value` DER-encoded.
pub fn single_valued_attribute(
    oid: ObjectIdentifier,
    value: &impl Encode,
) -> der::Result<x509_cert::attr::Attribute> {
    let value = Any::from_der(&value.to_der()?)?;
    Ok(x509_cert::attr::Attribute {
        oid,
        values: der::asn1::SetOfVec::try_from(vec![value])?,
    })
}

/// Whether `certificate` is the one `sid` names (issuer and serial, or subject key identifier).
pub fn sid_matches(sid: &SignerIdentifier, certificate: &Certificate) -> bool {
    let tbs = &certificate.tbs_certificate;
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            ias.issuer == tbs.issuer && ias.serial_number == tbs.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
            .extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id == oids::EXT_SUBJECT_KEY_ID)
            .filter_map(|e| OctetString::from_der(e.extn_value.as_bytes()).ok())
            .any(|k| k.as_bytes() == ski.0.as_bytes()),
    }
}

/// RFC 5652 §5.3: the certificate among `candidates` (DER) that `signer` names, as DER and
/// parsed (unreadable candidates are passed over).
pub fn find_signer_certificate<'c>(
    signer: &CmsSigner,
    candidates: impl IntoIterator<Item = &'c [u8]>,
) -> Option<(&'c [u8], Certificate)> {
    candidates.into_iter().find_map(|der| {
        let certificate = Certificate::from_der(der).ok()?;
        sid_matches(signer.sid(), &certificate).then_some((der, certificate))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        certificates: 8,
        revocation_values: 8,
        signers: 2,
        attributes: 8,
        attribute_values: 2,
    };

    #[test]
    fn sets_are_written_in_der_order_with_elements_untouched() {
        let a = vec![0x04, 0x01, 0xff];
        let b = vec![0x02, 0x01, 0x05];
        let c = vec![0x04, 0x02, 0x00, 0x00];
        let set = RawSet::from_elements(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(set.0, [b.clone(), a.clone(), c.clone()].concat());
        assert_eq!(
            set.elements(3, "test").unwrap(),
            vec![&b[..], &a[..], &c[..]]
        );
        assert!(set.elements(2, "test").is_err(), "the bound holds");
        assert_eq!(set.to_set_der().unwrap()[..2], [0x31, 10]);
    }

    #[test]
    fn another_content_type_is_refused_with_its_oid() {
        // ContentInfo { id-data, [0] EXPLICIT OCTET STRING "x" }
        let der = hex::decode("301006092a864886f70d010701a003040178").unwrap();
        let err = CmsSignedData::read(&der, &LIMITS).unwrap_err();
        assert!(err.to_string().contains("1.2.840.113549.1.7.1"), "{err}");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for input in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x06\x01\x00",
            b"\x30\x80\x00\x00",
        ] {
            assert!(matches!(
                CmsSignedData::read(input, &LIMITS),
                Err(CmsError::Malformed { .. })
            ));
        }
    }
}
