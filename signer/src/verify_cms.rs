//! Reading a CMS `SignedData` (RFC 5652 §5) as it was received, for validation.
//!
//! The `cms` crate's types sort every SET OF when decoding. A verifier must not: the signature
//! over signed attributes covers the bytes as sent (RFC 5652 §5.4), and real signatures carry
//! sets in other orders. So the SETs here are kept as received and read element by element,
//! every loop bounded by a limit below; anything past a limit is a format failure, not work.

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, ContextSpecific, OctetStringRef};
use der::{
    Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence,
    SliceReader, Tag, TagNumber, Writer,
};
use imza_core::oids;
use spki::AlgorithmIdentifierOwned;

/// Most certificates read from one SignedData (a chain, the TSA's, OCSP responders').
pub const MAX_CERTIFICATES: usize = 128;
/// Most CRLs and other revocation entries read from one SignedData.
pub const MAX_REVOCATION_ENTRIES: usize = 64;
/// Most SignerInfos read.
pub const MAX_SIGNERS: usize = 16;
/// Most attributes read from one signed or unsigned attribute set.
pub const MAX_ATTRIBUTES: usize = 64;
/// Most values read from one attribute.
pub const MAX_ATTRIBUTE_VALUES: usize = 16;

/// Why a SignedData could not be read: what, and the decoder's words.
#[derive(Clone, Debug)]
pub(crate) struct FormatError(pub(crate) String);

impl FormatError {
    fn new(what: &str, detail: impl std::fmt::Display) -> FormatError {
        FormatError(format!("{what}: {detail}"))
    }
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The content octets of a SET or SET OF, not reordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RawSet<'a>(&'a [u8]);

impl FixedTag for RawSet<'_> {
    const TAG: Tag = Tag::Set;
}

impl<'a> DecodeValue<'a> for RawSet<'a> {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        reader.read_slice(header.length).map(RawSet)
    }
}

impl EncodeValue for RawSet<'_> {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(self.0)
    }
}

impl<'a> RawSet<'a> {
    /// Each element's complete encoding (tag, length, value), at most `limit` of them.
    fn elements(&self, limit: usize, what: &str) -> Result<Vec<&'a [u8]>, FormatError> {
        let mut reader = SliceReader::new(self.0).map_err(|e| FormatError::new(what, e))?;
        let mut out = Vec::new();
        while !reader.is_finished() {
            if out.len() == limit {
                return Err(FormatError::new(
                    what,
                    format!("more than {limit} elements"),
                ));
            }
            out.push(reader.tlv_bytes().map_err(|e| FormatError::new(what, e))?);
        }
        Ok(out)
    }
}

/// `SignedData` (RFC 5652 §5.1) with its SETs kept as received.
///
/// ```text
/// SignedData ::= SEQUENCE {
///   version CMSVersion,
///   digestAlgorithms DigestAlgorithmIdentifiers,
///   encapContentInfo EncapsulatedContentInfo,
///   certificates [0] IMPLICIT CertificateSet OPTIONAL,
///   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
///   signerInfos SignerInfos }
/// ```
#[derive(Sequence)]
struct SignedDataRef<'a> {
    version: CmsVersion,
    digest_algorithms: RawSet<'a>,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    certificates: Option<RawSet<'a>>,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    crls: Option<RawSet<'a>>,
    signer_infos: RawSet<'a>,
}

/// `SignerInfo` (RFC 5652 §5.3) with its attribute SETs kept as received.
///
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
#[derive(Sequence)]
struct SignerInfoRef<'a> {
    version: CmsVersion,
    sid: SignerIdentifier,
    digest_alg: AlgorithmIdentifierOwned,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    signed_attrs: Option<RawSet<'a>>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: OctetStringRef<'a>,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    unsigned_attrs: Option<RawSet<'a>>,
}

/// `Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF AttributeValue }`
#[derive(Sequence)]
struct AttributeRef<'a> {
    oid: ObjectIdentifier,
    values: RawSet<'a>,
}

/// RFC 5652 §10.2.1:
///
/// ```text
/// OtherRevocationInfoFormat ::= SEQUENCE {
///   otherRevInfoFormat OBJECT IDENTIFIER,
///   otherRevInfo ANY DEFINED BY otherRevInfoFormat }
/// ```
#[derive(Sequence)]
struct OtherRevocationInfoFormat<'a> {
    format: ObjectIdentifier,
    info: AnyRef<'a>,
}

/// One attribute: its type and each value's complete encoding, in the order sent.
#[derive(Clone, Debug)]
pub(crate) struct RawAttribute {
    pub(crate) oid: ObjectIdentifier,
    pub(crate) values: Vec<Vec<u8>>,
}

/// A set of attributes as received.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attributes {
    /// The SET OF re-tagged as a universal SET: what a signature over signed attributes
    /// covers (RFC 5652 §5.4). Empty for unsigned attributes.
    pub(crate) set_der: Vec<u8>,
    pub(crate) list: Vec<RawAttribute>,
}

impl Attributes {
    /// The values of every attribute of type `oid`, one entry per attribute instance.
    pub(crate) fn all(&self, oid: ObjectIdentifier) -> impl Iterator<Item = &[Vec<u8>]> {
        self.list
            .iter()
            .filter(move |a| a.oid == oid)
            .map(|a| a.values.as_slice())
    }

    /// The single value of an attribute that must occur once with one value (RFC 5652
    /// §11); `Ok(None)` when absent.
    pub(crate) fn single(
        &self,
        oid: ObjectIdentifier,
        name: &str,
    ) -> Result<Option<&[u8]>, String> {
        let mut found = self.all(oid);
        let Some(first) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() {
            return Err(format!("{name} is present more than once"));
        }
        match first {
            [value] => Ok(Some(value.as_slice())),
            _ => Err(format!("{name} must have exactly one value")),
        }
    }
}

/// One SignerInfo, owned.
#[derive(Clone, Debug)]
pub(crate) struct ParsedSigner {
    pub(crate) sid: SignerIdentifier,
    pub(crate) digest_algorithm: AlgorithmIdentifierOwned,
    pub(crate) signed_attrs: Option<Attributes>,
    pub(crate) signature_algorithm: AlgorithmIdentifierOwned,
    pub(crate) signature: Vec<u8>,
    pub(crate) unsigned_attrs: Attributes,
}

impl ParsedSigner {
    /// `issuer …, serial …` or `subjectKeyIdentifier …`, for messages.
    pub(crate) fn describe_sid(&self) -> String {
        match &self.sid {
            SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer,
                serial_number,
            }) => format!(
                "issuer {}, serial {}",
                imza_core::name::format_dn(issuer),
                hex::encode_upper(serial_number.as_bytes())
            ),
            SignerIdentifier::SubjectKeyIdentifier(ski) => format!(
                "subjectKeyIdentifier {}",
                hex::encode_upper(ski.0.as_bytes())
            ),
        }
    }
}

/// What validation needs from a SignedData, owned.
#[derive(Clone, Debug)]
pub(crate) struct ParsedSignedData {
    pub(crate) econtent_type: ObjectIdentifier,
    /// The eContent OCTET STRING's value; `None` for a detached signature.
    pub(crate) econtent: Option<Vec<u8>>,
    /// DER of every X.509 certificate in `certificates`, in the order sent (other
    /// CertificateChoices are skipped).
    pub(crate) certificates: Vec<Vec<u8>>,
    /// DER of every CertificateList in `crls`.
    pub(crate) crls: Vec<Vec<u8>>,
    /// DER OCSPResponses from `crls` as `other` id-ri-ocsp-response (RFC 5940 §2.1).
    pub(crate) ocsp_responses: Vec<Vec<u8>>,
    pub(crate) signers: Vec<ParsedSigner>,
}

/// Reads a DER `ContentInfo` holding a `SignedData`.
pub(crate) fn read_content_info(der: &[u8]) -> Result<ParsedSignedData, FormatError> {
    let content_info =
        ContentInfo::from_der(der).map_err(|e| FormatError::new("ContentInfo", e))?;
    if content_info.content_type != oids::CT_SIGNED_DATA {
        return Err(FormatError::new(
            "ContentInfo",
            format!(
                "content type {} is not id-signedData",
                content_info.content_type
            ),
        ));
    }
    let signed_data_der = content_info
        .content
        .to_der()
        .map_err(|e| FormatError::new("SignedData", e))?;
    read_signed_data(&signed_data_der)
}

/// Reads the DER of a `SignedData`.
pub(crate) fn read_signed_data(der: &[u8]) -> Result<ParsedSignedData, FormatError> {
    let sd = SignedDataRef::from_der(der).map_err(|e| FormatError::new("SignedData", e))?;
    let econtent = match &sd.encap_content_info.econtent {
        None => None,
        Some(any) => Some(
            any.decode_as::<OctetStringRef<'_>>()
                .map_err(|e| FormatError::new("eContent", e))?
                .as_bytes()
                .to_vec(),
        ),
    };
    let mut certificates = Vec::new();
    if let Some(set) = sd.certificates {
        for element in set.elements(MAX_CERTIFICATES, "SignedData.certificates")? {
            // CertificateChoices: only X.509 certificates (a SEQUENCE) are used; attribute
            // certificates and other formats carry context tags and are skipped.
            if element.first() == Some(&0x30) {
                certificates.push(element.to_vec());
            }
        }
    }
    let revocation = match sd.crls {
        Some(set) => read_revocation_choices(set)?,
        None => RevocationEntries::default(),
    };
    let mut signers = Vec::new();
    for element in sd.signer_infos.elements(MAX_SIGNERS, "SignerInfos")? {
        signers.push(read_signer(element)?);
    }
    Ok(ParsedSignedData {
        econtent_type: sd.encap_content_info.econtent_type,
        econtent,
        certificates,
        crls: revocation.crls,
        ocsp_responses: revocation.ocsp_responses,
        signers,
    })
}

/// `RevocationInfoChoice ::= CHOICE { crl CertificateList, other [1] IMPLICIT
/// OtherRevocationInfoFormat }` (RFC 5652 §10.2.1).
fn read_revocation_choices(set: RawSet<'_>) -> Result<RevocationEntries, FormatError> {
    let mut found = RevocationEntries::default();
    for element in set.elements(MAX_REVOCATION_ENTRIES, "SignedData.crls")? {
        if element.first() == Some(&0x30) {
            found.crls.push(element.to_vec());
            continue;
        }
        let mut reader =
            SliceReader::new(element).map_err(|e| FormatError::new("RevocationInfoChoice", e))?;
        let other = ContextSpecific::<OtherRevocationInfoFormat<'_>>::decode_implicit(
            &mut reader,
            TagNumber::N1,
        )
        .map_err(|e| FormatError::new("RevocationInfoChoice", e))?;
        if let Some(other) = other {
            if other.value.format == oids::RI_OCSP_RESPONSE {
                found.ocsp_responses.push(
                    other
                        .value
                        .info
                        .to_der()
                        .map_err(|e| FormatError::new("id-ri-ocsp-response", e))?,
                );
            }
        }
    }
    Ok(found)
}

/// The revocation values of `SignedData.crls`, by kind.
#[derive(Default)]
struct RevocationEntries {
    crls: Vec<Vec<u8>>,
    ocsp_responses: Vec<Vec<u8>>,
}

fn read_attributes(set: RawSet<'_>, what: &str, signed: bool) -> Result<Attributes, FormatError> {
    let mut list = Vec::new();
    for attr in set.elements(MAX_ATTRIBUTES, what)? {
        let attr = AttributeRef::from_der(attr).map_err(|e| FormatError::new(what, e))?;
        let values = attr
            .values
            .elements(MAX_ATTRIBUTE_VALUES, "attribute values")?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        list.push(RawAttribute {
            oid: attr.oid,
            values,
        });
    }
    let set_der = if signed {
        set.to_der().map_err(|e| FormatError::new(what, e))?
    } else {
        Vec::new()
    };
    Ok(Attributes { set_der, list })
}

fn read_signer(element: &[u8]) -> Result<ParsedSigner, FormatError> {
    let si = SignerInfoRef::from_der(element).map_err(|e| FormatError::new("SignerInfo", e))?;
    let signed_attrs = match si.signed_attrs {
        Some(set) => Some(read_attributes(set, "signed attributes", true)?),
        None => None,
    };
    let unsigned_attrs = match si.unsigned_attrs {
        Some(set) => read_attributes(set, "unsigned attributes", false)?,
        None => Attributes::default(),
    };
    Ok(ParsedSigner {
        sid: si.sid,
        digest_algorithm: si.digest_alg,
        signed_attrs,
        signature_algorithm: si.signature_algorithm,
        signature: si.signature.as_bytes().to_vec(),
        unsigned_attrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_empty_input_are_format_errors() {
        for input in [&b""[..], b"\x30", b"\x30\x03\x02\x01\x01", b"hello world"] {
            assert!(read_content_info(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn another_content_type_is_refused_with_its_oid() {
        // ContentInfo { id-data, [0] EXPLICIT OCTET STRING "x" }
        let der = hex::decode("301006092a864886f70d010701a003040178").unwrap();
        let err = read_content_info(&der).map(|_| ()).unwrap_err();
        assert!(err.0.contains("1.2.840.113549.1.7.1"), "{err}");
    }
}
