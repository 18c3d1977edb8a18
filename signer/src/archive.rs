//! The archive-time-stamp-v3 of B-LTA (ETSI EN 319 122-1 §5.5.3): a time-stamp over the
//! content type, the content's hash, the signer's signed fields and an ats-hash-index-v3
//! (§5.5.2) listing the hashes of every certificate, revocation value and unsigned attribute
//! value present when it is made. The index travels as an unsigned attribute of the
//! time-stamp token's own SignerInfo, where adding it leaves the TSA's signature intact.

use imza_core::alg::DigestAlgorithm;
use imza_core::oids;

use crate::attributes::{archive_message_imprint, AtsHashIndexV3};
use crate::content::Content;
use crate::signed_data::{CmsSignedData, RawAttribute, AUGMENTING};
use crate::timestamp::Timestamper;
use crate::{SignerError, TimestampError};

/// Adds one archive-time-stamp-v3 to the only signer of `signed_data`, its index and imprint
/// made with `algorithm`. `detached_content` is the signed content of a detached signature.
pub(crate) fn add_archive_timestamp(
    signed_data: &mut CmsSignedData,
    detached_content: Option<&[u8]>,
    timestamper: &dyn Timestamper,
    algorithm: DigestAlgorithm,
) -> Result<(), SignerError> {
    let signer = signed_data.only_signer()?;
    let index = AtsHashIndexV3::of(signed_data, signer, algorithm)?.to_der()?;
    let imprint = archive_message_imprint(
        signed_data,
        signer,
        detached_content.map(Content::Bytes),
        &index,
        algorithm,
    )?;
    let token = timestamper.timestamp(&imprint, algorithm)?;
    let mut token =
        CmsSignedData::read(token.der(), &AUGMENTING).map_err(|e| SignerError::Timestamp {
            tsa: timestamper.describe(),
            source: TimestampError::CannotCarryIndex(e),
        })?;
    token.only_signer_mut()?.add_unsigned(RawAttribute::new(
        oids::ATTR_ATS_HASH_INDEX_V3,
        vec![index],
    )?)?;
    let token = token.to_der()?;
    signed_data
        .only_signer_mut()?
        .add_unsigned(RawAttribute::new(
            oids::ATTR_ARCHIVE_TIME_STAMP_V3,
            vec![token],
        )?)
        .map_err(SignerError::from)
}
