//! Making a CAdES signature (ETSI EN 319 122-1): a CMS SignedData (RFC 5652 §5) with one
//! SignerInfo identified by issuer and serial number, the B-B signed attributes, the signature
//! over their DER SET OF (§5.4), the signer's certificate and chain — and then, as asked, the
//! signature time-stamp (B-T), validation data (B-LT) and an archive time-stamp (B-LTA).

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::CmsVersion;
use cms::signed_data::{SignedAttributes, SignerIdentifier, SignerInfo};
use der::asn1::{OctetString, SetOfVec};
use der::Encode;
use imza_core::alg::DigestAlgorithm;
use imza_core::oids;
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;

use crate::augment::{raise, AugmentOptions};
use crate::signed_data::{CmsSignedData, AUGMENTING};
use crate::{attributes, Credentials, Level, SignerError};

/// How to sign.
#[derive(Clone, Copy)]
pub struct SignOptions<'a> {
    /// Enveloping (the content inside the SignedData) instead of detached.
    pub attached: bool,
    /// The level to reach.
    pub level: Level,
    /// The message digest; `None` takes the key's (SHA-384 for P-384, else SHA-256).
    pub digest: Option<DigestAlgorithm>,
    /// The signing-time attribute: the signer's claim of when it signed.
    pub signing_time: OffsetDateTime,
    /// Time-stamps for B-T and B-LTA, and what B-LT validation data is gathered with.
    pub augment: AugmentOptions<'a>,
}

impl SignOptions<'_> {
    /// A detached B-B signature made at `signing_time` with the key's digest.
    pub fn new(signing_time: OffsetDateTime) -> SignOptions<'static> {
        SignOptions {
            attached: false,
            level: Level::B,
            digest: None,
            signing_time,
            augment: AugmentOptions::default(),
        }
    }
}

/// Signs `content` and returns the DER `ContentInfo` (a `.p7s`).
pub fn sign(
    content: &[u8],
    credentials: &Credentials,
    options: &SignOptions<'_>,
) -> Result<Vec<u8>, SignerError> {
    let digest = key_digest(credentials, options.digest)?;
    let mut signed_data = signed_data_over(
        &digest.digest(content),
        credentials,
        Some(options.signing_time),
        options.attached.then_some(content),
    )?;
    raise(
        &mut signed_data,
        Some(content),
        options.level,
        &options.augment,
    )?;
    signed_data.to_der().map_err(SignerError::from)
}

/// The digest to sign with: `asked`, which must be the key's own, or the key's.
pub(crate) fn key_digest(
    credentials: &Credentials,
    asked: Option<DigestAlgorithm>,
) -> Result<DigestAlgorithm, SignerError> {
    let key = credentials.key();
    let digest = asked.unwrap_or(key.algorithm().digest());
    if digest != key.algorithm().digest() {
        // RFC 5652 §5.4: the signature is computed over the signed attributes hashed with the
        // SignerInfo's digestAlgorithm, so the key must hash with it.
        return Err(SignerError::Usage(format!(
            "{} signs with {}, not {}: use the key's digest",
            key.describe(),
            key.algorithm().digest(),
            digest
        )));
    }
    Ok(digest)
}

/// A B-B SignedData over content whose hash (with the key's digest) is `message_digest`:
/// signed attributes, the signature, the certificates; the content inside when `attached`.
pub(crate) fn signed_data_over(
    message_digest: &[u8],
    credentials: &Credentials,
    signing_time: Option<OffsetDateTime>,
    attached: Option<&[u8]>,
) -> Result<CmsSignedData, SignerError> {
    let key = credentials.key();
    let digest = key.algorithm().digest();
    let digest_algorithm = AlgorithmIdentifierOwned {
        // RFC 5754 §2: SHA-2 identifiers are generated with absent parameters.
        oid: digest.oid(),
        parameters: None,
    };
    let certificate = credentials.certificate();
    let signed_attrs: SignedAttributes = SetOfVec::try_from(attributes::signed_attributes(
        oids::CT_DATA,
        message_digest,
        signing_time,
        certificate,
        credentials.certificate_der(),
    )?)
    .map_err(|e| SignerError::malformed("signed attributes", e))?;
    // RFC 5652 §5.4: the signature covers the DER SET OF attributes with its SET tag, not the
    // [0] IMPLICIT tag it carries inside the SignerInfo.
    let to_be_signed = signed_attrs
        .to_der()
        .map_err(|e| SignerError::malformed("signed attributes", e))?;
    let signature_algorithm = key.signature_algorithm();
    let signature = key.sign(&to_be_signed)?;
    // A token or HSM that answers with something else than a signature by this certificate's
    // key is caught here rather than by whoever later verifies.
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| SignerError::malformed("certificate public key", e))?;
    imza_core::verify::verify_signature(&spki, &signature_algorithm, &to_be_signed, &signature)
        .map_err(|e| {
            SignerError::Usage(format!(
                "{} made a signature the certificate's public key does not verify: {e}",
                key.describe()
            ))
        })?;
    let tbs = &certificate.tbs_certificate;
    let signer_info = SignerInfo {
        // RFC 5652 §5.3: version 1 with issuerAndSerialNumber.
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        }),
        digest_alg: digest_algorithm.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm,
        signature: OctetString::new(signature)
            .map_err(|e| SignerError::malformed("signature", e))?,
        unsigned_attrs: None,
    }
    .to_der()
    .map_err(|e| SignerError::malformed("SignerInfo", e))?;
    let mut certificates = vec![credentials.certificate_der().to_vec()];
    for der in credentials.chain() {
        if !certificates.contains(der) {
            certificates.push(der.clone());
        }
    }
    CmsSignedData::assemble(
        &digest_algorithm,
        oids::CT_DATA,
        attached,
        certificates,
        &signer_info,
        &AUGMENTING,
    )
    .map_err(SignerError::from)
}
