//! The attributes of a CAdES signature (ETSI EN 319 122-1 §5), made and read in one place so
//! that signing and validation agree on them:
//!
//! - signed: content-type and message-digest (RFC 5652 §11.1-11.2), signing-time (§11.3),
//!   ESS signing-certificate-v2 (RFC 5035 §3);
//! - unsigned: the signature time-stamp (RFC 3161 Appendix A, EN 319 122-1 §5.3), and the
//!   archive-time-stamp-v3 with the ats-hash-index-v3 in its token (EN 319 122-1 §5.5.2-5.5.3),
//!   including the archive time-stamp's message imprint.

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, DecodeOwned, Encode, Sequence};
use imza_core::alg::DigestAlgorithm;
use imza_core::cms::single_valued_attribute;
use imza_core::ess::{SigningCertificate, SigningCertificateV2};
use imza_core::oids;
use imza_tsa::imprint_algorithm;
use imza_tsa::ParsedToken;
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::time::Time;
use x509_cert::Certificate;

use crate::content::Content;
use crate::signed_data::{CmsSignedData, CmsSigner, RawAttribute, AUGMENTING};
use crate::SignerError;

/// An attribute with one value, `value` DER-encoded.
fn attribute(
    oid: ObjectIdentifier,
    value: &impl Encode,
) -> Result<x509_cert::attr::Attribute, SignerError> {
    single_valued_attribute(oid, value).map_err(|e| SignerError::malformed("attribute value", e))
}

/// The signed attributes of a B-B signature (EN 319 122-1 §5.2.1-5.2.2): content-type,
/// message-digest, signing-time (when given: PAdES leaves it out, EN 319 142-1 §6.3) and
/// signing-certificate-v2 with a SHA-256 ESSCertIDv2 (hashAlgorithm omitted: SHA-256 is its
/// DEFAULT) and the certificate's issuerSerial.
pub(crate) fn signed_attributes(
    content_type: ObjectIdentifier,
    message_digest: &[u8],
    signing_time: Option<OffsetDateTime>,
    certificate: &Certificate,
    certificate_der: &[u8],
) -> Result<Vec<x509_cert::attr::Attribute>, SignerError> {
    let signing_certificate = SigningCertificateV2::sha256_of(certificate, certificate_der)
        .map_err(|e| SignerError::malformed("ESSCertIDv2", e))?;
    let mut attributes = vec![
        attribute(oids::ATTR_CONTENT_TYPE, &content_type)?,
        attribute(
            oids::ATTR_MESSAGE_DIGEST,
            &OctetString::new(message_digest)
                .map_err(|e| SignerError::malformed("message digest", e))?,
        )?,
    ];
    if let Some(signing_time) = signing_time {
        // RFC 5652 §11.3: UTCTime for 1950-2049, GeneralizedTime otherwise.
        let time = imza_core::clock::x509_time(signing_time)
            .map_err(|e| SignerError::malformed("signing time", e))?;
        attributes.push(attribute(oids::ATTR_SIGNING_TIME, &time)?);
    }
    attributes.push(attribute(
        oids::ATTR_SIGNING_CERTIFICATE_V2,
        &signing_certificate,
    )?);
    Ok(attributes)
}

// --- reading signed attributes --------------------------------------------------------------

/// The value of the attribute `oid` when it appears once with one value (RFC 5652 §11 and
/// EN 319 122-1 §5.2 allow no more); `None` when absent.
pub(crate) fn single_value<'a>(
    attributes: &'a [RawAttribute],
    oid: ObjectIdentifier,
    name: &'static str,
) -> Result<Option<&'a [u8]>, SignerError> {
    let mut found = attributes.iter().filter(|a| a.oid == oid);
    let Some(first) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(SignerError::malformed(
            "signed attributes",
            format!("{name} appears more than once"),
        ));
    }
    match first.values.as_slice() {
        [value] => Ok(Some(value)),
        values => Err(SignerError::malformed(
            "signed attributes",
            format!("{name} has {} values instead of one", values.len()),
        )),
    }
}

/// The signed attribute `oid` of `signer` read as a `T`, when it appears once with one value.
fn signed_value<T: DecodeOwned>(
    signer: &CmsSigner,
    oid: ObjectIdentifier,
    name: &'static str,
) -> Result<Option<T>, SignerError> {
    let attributes = signer.signed_attributes.as_deref().unwrap_or_default();
    single_value(attributes, oid, name)?
        .map(|v| T::from_der(v).map_err(|e| SignerError::malformed(name, e)))
        .transpose()
}

/// The content-type signed attribute.
pub(crate) fn content_type(signer: &CmsSigner) -> Result<Option<ObjectIdentifier>, SignerError> {
    signed_value(signer, oids::ATTR_CONTENT_TYPE, "content-type")
}

/// The message-digest signed attribute's octets.
pub(crate) fn message_digest(signer: &CmsSigner) -> Result<Option<Vec<u8>>, SignerError> {
    let digest: Option<OctetString> =
        signed_value(signer, oids::ATTR_MESSAGE_DIGEST, "message-digest")?;
    Ok(digest.map(OctetString::into_bytes))
}

/// The signing-time signed attribute: the time the signer claims (not a proof).
pub(crate) fn signing_time(signer: &CmsSigner) -> Result<Option<OffsetDateTime>, SignerError> {
    let time: Option<Time> = signed_value(signer, oids::ATTR_SIGNING_TIME, "signing-time")?;
    Ok(time.map(|t| imza_core::clock::from_x509_time(&t)))
}

/// The ESS signing-certificate-v2 signed attribute (RFC 5035).
pub(crate) fn signing_certificate_v2(
    signer: &CmsSigner,
) -> Result<Option<SigningCertificateV2>, SignerError> {
    signed_value(
        signer,
        oids::ATTR_SIGNING_CERTIFICATE_V2,
        "signing-certificate-v2",
    )
}

/// The older ESS signing-certificate signed attribute (RFC 2634 §5.4, SHA-1).
pub(crate) fn signing_certificate_v1(
    signer: &CmsSigner,
) -> Result<Option<SigningCertificate>, SignerError> {
    signed_value(
        signer,
        oids::ATTR_SIGNING_CERTIFICATE,
        "signing-certificate",
    )
}

// --- time-stamps ------------------------------------------------------------------------------

/// Every signature time-stamp token (unsigned id-aa-signatureTimeStampToken values).
pub(crate) fn signature_timestamps(signer: &CmsSigner) -> Result<Vec<ParsedToken>, SignerError> {
    signer
        .unsigned_values(oids::ATTR_TIME_STAMP_TOKEN)
        .into_iter()
        .map(|der| {
            ParsedToken::from_der(der)
                .map_err(|e| SignerError::malformed("signature time-stamp", e))
        })
        .collect()
}

/// The imprint a signature time-stamp must carry: the hash of the signature value, the
/// SignerInfo signature OCTET STRING's contents (RFC 3161 Appendix A; EN 319 122-1 §5.3).
pub(crate) fn signature_timestamp_imprint(
    signer: &CmsSigner,
    algorithm: DigestAlgorithm,
) -> Vec<u8> {
    algorithm.digest(signer.signature())
}

/// An archive-time-stamp-v3 and the ats-hash-index-v3 carried in its token.
#[derive(Clone, Debug)]
pub(crate) struct ArchiveTimestamp {
    pub(crate) token: ParsedToken,
    /// The ats-hash-index-v3 value's DER, as found: part of the token's message imprint.
    pub(crate) hash_index_der: Vec<u8>,
    pub(crate) hash_index: AtsHashIndexV3,
}

/// Every archive-time-stamp-v3 of `signer`, each with its hash index.
pub(crate) fn archive_timestamps(signer: &CmsSigner) -> Result<Vec<ArchiveTimestamp>, SignerError> {
    signer
        .unsigned_values(oids::ATTR_ARCHIVE_TIME_STAMP_V3)
        .into_iter()
        .map(read_archive_timestamp)
        .collect()
}

fn read_archive_timestamp(der: &[u8]) -> Result<ArchiveTimestamp, SignerError> {
    let token =
        ParsedToken::from_der(der).map_err(|e| SignerError::malformed("archive time-stamp", e))?;
    let cms = CmsSignedData::read(der, &AUGMENTING)?;
    let tsa_signer = cms.only_signer()?;
    let mut attributes = tsa_signer
        .unsigned_attributes
        .iter()
        .filter(|a| a.oid == oids::ATTR_ATS_HASH_INDEX_V3);
    // EN 319 122-1 §5.5.3: exactly one ats-hash-index-v3, with one value.
    let hash_index_der = match (attributes.next(), attributes.next()) {
        (Some(attribute), None) => match attribute.values.as_slice() {
            [value] => value.clone(),
            values => {
                return Err(SignerError::malformed(
                    "archive time-stamp",
                    format!(
                        "ats-hash-index-v3 has {} values instead of one",
                        values.len()
                    ),
                ))
            }
        },
        (None, _) => {
            return Err(SignerError::malformed(
                "archive time-stamp",
                "its token has no ats-hash-index-v3 unsigned attribute",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(SignerError::malformed(
                "archive time-stamp",
                "its token has more than one ats-hash-index-v3",
            ))
        }
    };
    let hash_index = AtsHashIndexV3::from_der(&hash_index_der)?;
    Ok(ArchiveTimestamp {
        token,
        hash_index_der,
        hash_index,
    })
}

// --- ats-hash-index-v3 and the archive time-stamp's imprint -----------------------------------

/// ```text
/// ATSHashIndexV3 ::= SEQUENCE {
///   hashIndAlgorithm             AlgorithmIdentifier DEFAULT {algorithm id-sha256},
///   certificatesHashIndex        SEQUENCE OF OCTET STRING,
///   crlsHashIndex                SEQUENCE OF OCTET STRING,
///   unsignedAttrValuesHashIndex  SEQUENCE OF OCTET STRING }
/// ```
/// (EN 319 122-1 §5.5.2), with hashIndAlgorithm present.
#[derive(Clone, Debug, Sequence)]
struct AtsHashIndexV3WithAlgorithm {
    hash_ind_algorithm: AlgorithmIdentifierOwned,
    certificates_hash_index: Vec<OctetString>,
    crls_hash_index: Vec<OctetString>,
    unsigned_attr_values_hash_index: Vec<OctetString>,
}

/// [`AtsHashIndexV3WithAlgorithm`] with hashIndAlgorithm omitted: SHA-256, its DEFAULT, which
/// DER leaves out. (The two forms are told apart by their first element: both an
/// AlgorithmIdentifier and a SEQUENCE OF start with a SEQUENCE tag.)
#[derive(Clone, Debug, Sequence)]
struct AtsHashIndexV3Default {
    certificates_hash_index: Vec<OctetString>,
    crls_hash_index: Vec<OctetString>,
    unsigned_attr_values_hash_index: Vec<OctetString>,
}

/// An ATSHashIndexV3: hashes of the SignedData's certificates, its revocation values and the
/// signer's unsigned attribute values at the time an archive time-stamp was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AtsHashIndexV3 {
    pub(crate) algorithm: DigestAlgorithm,
    pub(crate) certificates: Vec<Vec<u8>>,
    pub(crate) crls: Vec<Vec<u8>>,
    pub(crate) unsigned_attr_values: Vec<Vec<u8>>,
}

fn octets(list: Vec<OctetString>) -> Vec<Vec<u8>> {
    list.into_iter().map(OctetString::into_bytes).collect()
}

fn octet_strings(list: &[Vec<u8>]) -> Result<Vec<OctetString>, SignerError> {
    list.iter()
        .map(|h| OctetString::new(h.as_slice()))
        .collect::<Result<_, _>>()
        .map_err(|e| SignerError::malformed("ats-hash-index-v3", e))
}

impl AtsHashIndexV3 {
    pub(crate) fn from_der(der: &[u8]) -> Result<AtsHashIndexV3, SignerError> {
        if let Ok(index) = AtsHashIndexV3WithAlgorithm::from_der(der) {
            let algorithm = imprint_algorithm(&index.hash_ind_algorithm)
                .map_err(|e| SignerError::malformed("ats-hash-index-v3", e))?;
            return Ok(AtsHashIndexV3 {
                algorithm,
                certificates: octets(index.certificates_hash_index),
                crls: octets(index.crls_hash_index),
                unsigned_attr_values: octets(index.unsigned_attr_values_hash_index),
            });
        }
        let index = AtsHashIndexV3Default::from_der(der)
            .map_err(|e| SignerError::malformed("ats-hash-index-v3", e))?;
        Ok(AtsHashIndexV3 {
            algorithm: DigestAlgorithm::Sha256,
            certificates: octets(index.certificates_hash_index),
            crls: octets(index.crls_hash_index),
            unsigned_attr_values: octets(index.unsigned_attr_values_hash_index),
        })
    }

    /// DER: hashIndAlgorithm is left out when it is SHA-256 (its DEFAULT).
    pub(crate) fn to_der(&self) -> Result<Vec<u8>, SignerError> {
        let certificates_hash_index = octet_strings(&self.certificates)?;
        let crls_hash_index = octet_strings(&self.crls)?;
        let unsigned_attr_values_hash_index = octet_strings(&self.unsigned_attr_values)?;
        let der = if self.algorithm == DigestAlgorithm::Sha256 {
            AtsHashIndexV3Default {
                certificates_hash_index,
                crls_hash_index,
                unsigned_attr_values_hash_index,
            }
            .to_der()
        } else {
            AtsHashIndexV3WithAlgorithm {
                hash_ind_algorithm: self.algorithm.algorithm_identifier(),
                certificates_hash_index,
                crls_hash_index,
                unsigned_attr_values_hash_index,
            }
            .to_der()
        };
        der.map_err(|e| SignerError::malformed("ats-hash-index-v3", e))
    }

    /// The index of `signed_data` and `signer` as they are now (EN 319 122-1 §5.5.2):
    /// the hash of every CertificateChoices and every RevocationInfoChoice element, and for
    /// every value of every unsigned attribute the hash of the attribute type's encoding
    /// followed by that value's encoding.
    pub(crate) fn of(
        signed_data: &CmsSignedData,
        signer: &CmsSigner,
        algorithm: DigestAlgorithm,
    ) -> Result<AtsHashIndexV3, SignerError> {
        let mut unsigned_attr_values = Vec::new();
        for attribute in &signer.unsigned_attributes {
            let oid = attribute.oid_der()?;
            for value in &attribute.values {
                unsigned_attr_values.push(algorithm.digest(&[oid.as_slice(), value].concat()));
            }
        }
        Ok(AtsHashIndexV3 {
            algorithm,
            certificates: signed_data
                .certificates
                .iter()
                .map(|c| algorithm.digest(c))
                .collect(),
            crls: signed_data
                .crls
                .iter()
                .map(|c| algorithm.digest(c))
                .collect(),
            unsigned_attr_values,
        })
    }

    /// Checks that every hash of this index names an element present now in `signed_data`
    /// and `signer` (EN 319 122-1 §5.5.2: an index entry matching nothing makes it invalid;
    /// elements added after the time-stamp are simply not listed). Says which entry fails.
    pub(crate) fn check_against(
        &self,
        signed_data: &CmsSignedData,
        signer: &CmsSigner,
    ) -> Result<(), String> {
        let present =
            AtsHashIndexV3::of(signed_data, signer, self.algorithm).map_err(|e| e.to_string())?;
        let lists = [
            (
                "certificatesHashIndex",
                &self.certificates,
                &present.certificates,
            ),
            ("crlsHashIndex", &self.crls, &present.crls),
            (
                "unsignedAttrValuesHashIndex",
                &self.unsigned_attr_values,
                &present.unsigned_attr_values,
            ),
        ];
        for (name, listed, now) in lists {
            if let Some((i, missing)) = listed.iter().enumerate().find(|(_, h)| !now.contains(h)) {
                return Err(format!(
                    "{name} entry {i} ({}) matches nothing in the signature",
                    hex::encode(missing)
                ));
            }
        }
        Ok(())
    }
}

/// The hash of the signed content with `algorithm`: the eContent's octets of an enveloping
/// signature, else `detached` (the external content, or its digests). Error when there is
/// neither, or the digest was not taken.
pub(crate) fn content_digest(
    signed_data: &CmsSignedData,
    detached: Option<Content<'_>>,
    algorithm: DigestAlgorithm,
) -> Result<Vec<u8>, SignerError> {
    match (signed_data.econtent(), detached) {
        (Some(content), _) => Ok(algorithm.digest(content)),
        (None, Some(content)) => content.digest(algorithm).ok_or_else(|| {
            SignerError::Usage(format!(
                "the content's {algorithm} was not taken when it was read"
            ))
        }),
        (None, None) => Err(SignerError::Usage(
            "the signature is detached: the signed content is needed (give it with --content)"
                .into(),
        )),
    }
}

/// The input an archive-time-stamp-v3's message imprint is the hash of (EN 319 122-1 §5.5.3),
/// the concatenation of:
/// a) the encoding of `SignedData.encapContentInfo.eContentType`;
/// b) `content_digest`, the hash of the signed content made with the imprint's algorithm;
/// c) the encodings of the signer's `version`, `sid`, `digestAlgorithm`, `signedAttrs`,
///    `signatureAlgorithm` and `signature`, in that order;
/// d) the encoding of the ats-hash-index-v3 value in the archive time-stamp token.
pub(crate) fn archive_imprint_input(
    signed_data: &CmsSignedData,
    signer: &CmsSigner,
    content_digest: &[u8],
    hash_index_der: &[u8],
) -> Result<Vec<u8>, SignerError> {
    Ok([
        signed_data.econtent_type_der()?.as_slice(),
        content_digest,
        signer.signed_fields_der()?.as_slice(),
        hash_index_der,
    ]
    .concat())
}

/// The message imprint an archive-time-stamp-v3 over `signed_data` / `signer` must carry,
/// given the token's hash index: the hash of [`archive_imprint_input`] with `algorithm`.
pub(crate) fn archive_message_imprint(
    signed_data: &CmsSignedData,
    signer: &CmsSigner,
    detached_content: Option<Content<'_>>,
    hash_index_der: &[u8],
    algorithm: DigestAlgorithm,
) -> Result<Vec<u8>, SignerError> {
    let content = content_digest(signed_data, detached_content, algorithm)?;
    let input = archive_imprint_input(signed_data, signer, &content, hash_index_der)?;
    Ok(algorithm.digest(&input))
}

/// One archive-time-stamp-v3 checked against the signature it is in.
#[derive(Clone, Debug)]
pub(crate) struct ArchiveTimestampCheck {
    pub(crate) archive: ArchiveTimestamp,
    /// `Ok` when every entry of its hash index names an element of the signature and its
    /// token's message imprint is the one EN 319 122-1 §5.5.3 computes; else why not.
    /// (The token's own signature and TSA certificate are the caller's to check.)
    pub(crate) outcome: Result<(), String>,
}

/// Checks every archive-time-stamp-v3 of `signer`, one of the SignerInfos of `signed_data`
/// (`detached_content`: the signed content of a detached signature).
pub(crate) fn check_archive_timestamps(
    signed_data: &CmsSignedData,
    signer: &CmsSigner,
    detached_content: Option<Content<'_>>,
) -> Result<Vec<ArchiveTimestampCheck>, SignerError> {
    let mut checks = Vec::new();
    for archive in archive_timestamps(signer)? {
        let outcome = check_archive_timestamp(signed_data, signer, &archive, detached_content);
        checks.push(ArchiveTimestampCheck { archive, outcome });
    }
    Ok(checks)
}

fn check_archive_timestamp(
    signed_data: &CmsSignedData,
    signer: &CmsSigner,
    archive: &ArchiveTimestamp,
    detached_content: Option<Content<'_>>,
) -> Result<(), String> {
    let algorithm = archive
        .token
        .imprint_algorithm()
        .map_err(|e| e.to_string())?;
    if algorithm != archive.hash_index.algorithm {
        return Err(format!(
            "the hash index uses {} but the imprint {algorithm} (EN 319 122-1 §5.5.2 wants one)",
            archive.hash_index.algorithm
        ));
    }
    archive.hash_index.check_against(signed_data, signer)?;
    let expected = archive_message_imprint(
        signed_data,
        signer,
        detached_content,
        &archive.hash_index_der,
        algorithm,
    )
    .map_err(|e| e.to_string())?;
    if expected.as_slice() == archive.token.hashed_message() {
        Ok(())
    } else {
        Err(format!(
            "the token's message imprint {} is not the archive data's hash {}",
            hex::encode(archive.token.hashed_message()),
            hex::encode(&expected)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(algorithm: DigestAlgorithm) -> AtsHashIndexV3 {
        AtsHashIndexV3 {
            algorithm,
            certificates: vec![algorithm.digest(b"cert 1"), algorithm.digest(b"cert 2")],
            crls: vec![],
            unsigned_attr_values: vec![algorithm.digest(b"attr")],
        }
    }

    #[test]
    fn hash_indexes_round_trip_with_sha256_left_out_and_others_written() {
        let sha256 = index(DigestAlgorithm::Sha256);
        let der = sha256.to_der().unwrap();
        // SEQUENCE { SEQUENCE OF ..., ... }: the first element is the certificates list.
        assert_eq!(&der[2..4], &[0x30, 0x44]);
        assert_eq!(AtsHashIndexV3::from_der(&der).unwrap(), sha256);

        let sha384 = index(DigestAlgorithm::Sha384);
        let der = sha384.to_der().unwrap();
        let with = AtsHashIndexV3WithAlgorithm::from_der(&der).unwrap();
        assert_eq!(with.hash_ind_algorithm.oid, oids::SHA384);
        assert_eq!(AtsHashIndexV3::from_der(&der).unwrap(), sha384);

        // An explicit SHA-256 (not DER, but seen in the wild) reads the same.
        let explicit = AtsHashIndexV3WithAlgorithm {
            hash_ind_algorithm: DigestAlgorithm::Sha256.algorithm_identifier(),
            certificates_hash_index: octet_strings(&sha256.certificates).unwrap(),
            crls_hash_index: vec![],
            unsigned_attr_values_hash_index: octet_strings(&sha256.unsigned_attr_values).unwrap(),
        }
        .to_der()
        .unwrap();
        assert_eq!(AtsHashIndexV3::from_der(&explicit).unwrap(), sha256);

        for cut in 0..der.len() {
            assert!(AtsHashIndexV3::from_der(&der[..cut]).is_err());
        }
        assert!(AtsHashIndexV3::from_der(b"\x30\x00").is_err());
    }
}
