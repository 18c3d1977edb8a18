//! The signer's CMS `SignedData`: imza-core's reader and writer that keeps every part as it
//! was encoded ([`imza_core::cms`]), so that raising a signature's level never touches what
//! is signed, and validation checks the bytes as sent. Here: the bounds a signature is read
//! with when augmented and when validated.

pub(crate) use imza_core::cms::{
    find_signer_certificate, CmsSignedData, CmsSigner, Limits, RawAttribute,
};

/// For a signature being signed or augmented, and the tokens in it: a B-LT signature carries
/// the signer's chain and every TSA's chain (a few dozen certificates at most), and each
/// archive time-stamp adds one unsigned attribute.
pub(crate) const AUGMENTING: Limits = Limits {
    certificates: 256,
    revocation_values: 256,
    signers: 16,
    attributes: 128,
    attribute_values: 16,
};

/// For a signature being validated (anyone's, through `POST /verify` too): a chain, the
/// TSA's, OCSP responders'.
pub(crate) const VALIDATING: Limits = Limits {
    certificates: 128,
    revocation_values: 64,
    signers: 16,
    attributes: 64,
    attribute_values: 16,
};
