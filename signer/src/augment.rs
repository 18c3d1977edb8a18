//! Raising a CAdES signature's level (ETSI EN 319 122-1 §5): B-B → B-T (a signature
//! time-stamp where there is none), → B-LT (the certificates and revocation values that
//! validate the signer's and every TSA's certificate), → B-LTA (an archive-time-stamp-v3; on a
//! B-LTA signature, one more). Only unsigned attributes, `SignedData.certificates` and
//! `SignedData.crls` change: the signed attributes and the signature value keep their bytes.

use imza_core::alg::DigestAlgorithm;
use imza_core::oids;

use crate::archive::add_archive_timestamp;
use crate::signed_data::{CmsSignedData, AUGMENTING};
use crate::timestamp::{add_signature_timestamp, Timestamper};
use crate::validation_data::{add_validation_data, ValidationDataSources};
use crate::{attributes, Level, SignerError};

/// What raising a level may use.
#[derive(Clone, Copy, Default)]
pub struct AugmentOptions<'a> {
    /// The TSA for the signature time-stamp (B-T) and archive time-stamps (B-LTA).
    pub timestamper: Option<&'a dyn Timestamper>,
    /// Trust anchors, extra certificates and the fetcher for B-LT validation data.
    pub validation: Option<&'a ValidationDataSources>,
    /// The hash of the archive time-stamp's imprint and hash index; `None`: SHA-256.
    pub archive_digest: Option<DigestAlgorithm>,
}

/// Raises the DER CMS signature `signature` to `target` and returns the new DER.
///
/// `detached_content` is the signed content of a detached signature: it is checked against the
/// message-digest attribute when given, and needed for B-LTA (the archive time-stamp covers
/// the content's hash).
pub fn augment(
    signature: &[u8],
    detached_content: Option<&[u8]>,
    target: Level,
    options: &AugmentOptions<'_>,
) -> Result<Vec<u8>, SignerError> {
    let mut signed_data = CmsSignedData::read(signature, &AUGMENTING)?;
    raise(&mut signed_data, detached_content, target, options)?;
    signed_data.to_der().map_err(SignerError::from)
}

/// The level a signature's structure shows: B-LTA with an archive-time-stamp-v3, B-LT with a
/// signature time-stamp and revocation values in `SignedData.crls`, B-T with a signature
/// time-stamp, else B-B. (What it shows, not whether it validates.)
pub fn level_of(signature: &[u8]) -> Result<Level, SignerError> {
    let signed_data = CmsSignedData::read(signature, &AUGMENTING)?;
    structural_level(&signed_data)
}

/// The DER X.509 certificates a CMS signature carries in `SignedData.certificates`.
pub fn certificates_of(signature: &[u8]) -> Result<Vec<Vec<u8>>, SignerError> {
    let signed_data = CmsSignedData::read(signature, &AUGMENTING)?;
    Ok(signed_data
        .x509_certificates()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect())
}

fn structural_level(signed_data: &CmsSignedData) -> Result<Level, SignerError> {
    let signer = signed_data.only_signer()?;
    let has = |oid| !signer.unsigned_values(oid).is_empty();
    Ok(if has(oids::ATTR_ARCHIVE_TIME_STAMP_V3) {
        Level::LTA
    } else if has(oids::ATTR_TIME_STAMP_TOKEN) && !signed_data.crls.is_empty() {
        Level::LT
    } else if has(oids::ATTR_TIME_STAMP_TOKEN) {
        Level::T
    } else {
        Level::B
    })
}

/// Checks that `content` is what the signature's message-digest attribute says was signed.
fn check_content(signed_data: &CmsSignedData, content: &[u8]) -> Result<(), SignerError> {
    let signer = signed_data.only_signer()?;
    let Some(expected) = attributes::message_digest(signer)? else {
        return Ok(());
    };
    let oid = signer.digest_algorithm().oid;
    let algorithm = DigestAlgorithm::from_oid(&oid).ok_or_else(|| {
        SignerError::Usage(format!(
            "the signature's digest algorithm {oid} is not supported"
        ))
    })?;
    if algorithm.digest(content) == expected {
        Ok(())
    } else {
        Err(SignerError::Usage(format!(
            "the content given is not the signed content: its {algorithm} hash is not the \
             signature's message-digest {}",
            hex::encode(&expected)
        )))
    }
}

/// Adds what `target` needs to `signed_data`, in level order.
pub(crate) fn raise(
    signed_data: &mut CmsSignedData,
    detached_content: Option<&[u8]>,
    target: Level,
    options: &AugmentOptions<'_>,
) -> Result<(), SignerError> {
    let current = structural_level(signed_data)?;
    if target < current {
        return Err(SignerError::Usage(format!(
            "the signature is already {current}; a level is never lowered (asked for {target})"
        )));
    }
    let content = match signed_data.econtent() {
        Some(content) => {
            let content = content.to_vec();
            check_content(signed_data, &content)?;
            Some(content)
        }
        None => {
            if let Some(content) = detached_content {
                check_content(signed_data, content)?;
            }
            detached_content.map(<[u8]>::to_vec)
        }
    };
    // Checked before any TSA or revocation server is asked for anything.
    if target == Level::LTA && content.is_none() {
        return Err(SignerError::Usage(
            "B-LTA of a detached signature needs the signed content: the archive time-stamp \
             covers its hash (give it with --content)"
                .into(),
        ));
    }
    let needs_tsa = |what: &str| {
        options.timestamper.ok_or_else(|| {
            SignerError::Usage(format!(
                "{target} needs a time-stamping authority for {what} (--tsa URL)"
            ))
        })
    };
    if target >= Level::T {
        let signer = signed_data.only_signer()?;
        if signer
            .unsigned_values(oids::ATTR_TIME_STAMP_TOKEN)
            .is_empty()
        {
            let tsa = needs_tsa("the signature time-stamp")?;
            add_signature_timestamp(signed_data, tsa)?;
        }
    }
    if target >= Level::LT {
        let sources = options.validation.ok_or_else(|| {
            SignerError::Usage(format!(
                "{target} needs trust anchors to gather validation data with"
            ))
        })?;
        add_validation_data(signed_data, sources)?;
    }
    if target == Level::LTA {
        let tsa = needs_tsa("the archive time-stamp")?;
        let algorithm = options.archive_digest.unwrap_or(DigestAlgorithm::Sha256);
        add_archive_timestamp(signed_data, content.as_deref(), tsa, algorithm)?;
    }
    Ok(())
}
