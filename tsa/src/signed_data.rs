//! Reading a token's CMS `SignedData` (RFC 5652 §5) as it was sent.
//!
//! The `cms` crate's types sort every SET OF on decoding and refuse duplicates. That is right
//! for building, wrong for checking what someone else signed: real tokens carry unsorted or
//! repeated certificate sets, and a signature over signed attributes covers the bytes as sent
//! (RFC 5652 §5.4). So the SETs here are kept as received and read element by element, each
//! loop bounded.

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::CmsVersion;
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use const_oid::ObjectIdentifier;
use der::asn1::OctetStringRef;
use der::{
    Decode, DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Sequence, SliceReader, Tag,
    Writer,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use crate::TsaError;

/// Most certificates read from one token.
pub const MAX_CERTIFICATES: usize = 64;
/// Most SignerInfos read from one token (a valid token has exactly one).
pub const MAX_SIGNERS: usize = 8;
/// Most signed attributes read from one SignerInfo.
pub const MAX_ATTRIBUTES: usize = 64;
/// Most values read from one attribute.
pub const MAX_ATTRIBUTE_VALUES: usize = 16;

/// The content octets of a SET or SET OF, not reordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawSet<'a>(&'a [u8]);

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
    fn elements(&self, limit: usize, what: &'static str) -> Result<Vec<&'a [u8]>, TsaError> {
        let mut reader = SliceReader::new(self.0).map_err(|e| TsaError::malformed(what, e))?;
        let mut out = Vec::new();
        while !reader.is_finished() {
            if out.len() == limit {
                return Err(TsaError::malformed(
                    what,
                    format!("more than {limit} elements"),
                ));
            }
            out.push(
                reader
                    .tlv_bytes()
                    .map_err(|e| TsaError::malformed(what, e))?,
            );
        }
        Ok(out)
    }

    /// The SET re-tagged as a universal SET: what a signature over signed attributes covers.
    fn to_set_der(self) -> Result<Vec<u8>, TsaError> {
        der::Encode::to_der(&self).map_err(|e| TsaError::malformed("signed attributes", e))
    }
}

/// `SignedData` (RFC 5652 §5.1) with its SETs kept as received.
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

/// What a verifier needs from a `SignedData`, owned.
#[derive(Clone, Debug)]
pub(crate) struct SignedDataParts {
    pub(crate) econtent_type: ObjectIdentifier,
    /// The eContent OCTET STRING's value, absent for a detached signature.
    pub(crate) econtent: Option<Vec<u8>>,
    /// DER of every X.509 certificate in `certificates`, in the order sent.
    pub(crate) certificates: Vec<Vec<u8>>,
    pub(crate) signers: Vec<SignerParts>,
}

#[derive(Clone, Debug)]
pub(crate) struct SignerParts {
    pub(crate) sid: SignerIdentifier,
    pub(crate) digest_algorithm: AlgorithmIdentifierOwned,
    pub(crate) signed_attrs: Option<SignedAttrs>,
    pub(crate) signature_algorithm: AlgorithmIdentifierOwned,
    pub(crate) signature: Vec<u8>,
}

#[derive(Clone, Debug)]
pub(crate) struct SignedAttrs {
    /// DER of the SET OF attributes, universal SET tag: the signed message (RFC 5652 §5.4).
    pub(crate) der: Vec<u8>,
    /// Each attribute's type and the encodings of its values, in the order sent.
    pub(crate) attributes: Vec<(ObjectIdentifier, Vec<Vec<u8>>)>,
}

impl SignedAttrs {
    /// The values of every attribute of type `oid`, one entry per attribute instance.
    pub(crate) fn all(&self, oid: ObjectIdentifier) -> Vec<&[Vec<u8>]> {
        self.attributes
            .iter()
            .filter(|(o, _)| *o == oid)
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

impl SignerParts {
    /// `issuer / serial` or `subjectKeyIdentifier ...`, for messages.
    pub(crate) fn describe_sid(&self) -> String {
        match &self.sid {
            SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer,
                serial_number,
            }) => format!("issuer {issuer}, serial {serial_number}"),
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                format!(
                    "subjectKeyIdentifier {}",
                    hex::encode_upper(ski.0.as_bytes())
                )
            }
        }
    }
}

/// Reads the DER of a `SignedData`.
pub(crate) fn read_signed_data(der: &[u8]) -> Result<SignedDataParts, TsaError> {
    let sd = SignedDataRef::from_der(der).map_err(|e| TsaError::malformed("SignedData", e))?;
    let econtent = match &sd.encap_content_info.econtent {
        None => None,
        Some(any) => Some(
            any.decode_as::<OctetStringRef<'_>>()
                .map_err(|e| TsaError::malformed("eContent", e))?
                .as_bytes()
                .to_vec(),
        ),
    };
    let mut certificates = Vec::new();
    if let Some(set) = sd.certificates {
        for element in set.elements(MAX_CERTIFICATES, "SignedData.certificates")? {
            // CertificateChoices: only plain X.509 certificates (a SEQUENCE) matter here;
            // attribute certificates and other formats carry context tags and are skipped.
            if element.first() == Some(&0x30) {
                Certificate::from_der(element)
                    .map_err(|e| TsaError::malformed("certificate in SignedData", e))?;
                certificates.push(element.to_vec());
            }
        }
    }
    let mut signers = Vec::new();
    for element in sd.signer_infos.elements(MAX_SIGNERS, "SignerInfos")? {
        let si =
            SignerInfoRef::from_der(element).map_err(|e| TsaError::malformed("SignerInfo", e))?;
        let signed_attrs = match si.signed_attrs {
            None => None,
            Some(set) => {
                let mut attributes = Vec::new();
                for attr in set.elements(MAX_ATTRIBUTES, "signed attributes")? {
                    let attr = AttributeRef::from_der(attr)
                        .map_err(|e| TsaError::malformed("signed attribute", e))?;
                    let values = attr
                        .values
                        .elements(MAX_ATTRIBUTE_VALUES, "attribute values")?
                        .into_iter()
                        .map(<[u8]>::to_vec)
                        .collect();
                    attributes.push((attr.oid, values));
                }
                Some(SignedAttrs {
                    der: set.to_set_der()?,
                    attributes,
                })
            }
        };
        signers.push(SignerParts {
            sid: si.sid,
            digest_algorithm: si.digest_alg,
            signed_attrs,
            signature_algorithm: si.signature_algorithm,
            signature: si.signature.as_bytes().to_vec(),
        });
    }
    Ok(SignedDataParts {
        econtent_type: sd.encap_content_info.econtent_type,
        econtent,
        certificates,
        signers,
    })
}
