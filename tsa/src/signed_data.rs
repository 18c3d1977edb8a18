//! A time-stamp token's CMS `SignedData` (RFC 5652 §5) is read as it was sent, by imza-core's
//! reader ([`imza_core::cms`]): real tokens carry unsorted or repeated certificate sets, and a
//! signature over signed attributes covers the bytes as sent (RFC 5652 §5.4). Here: the
//! bounds one token is read within.

use imza_core::cms::Limits;

/// What one token may hold: a valid token has one SignerInfo, a handful of certificates and
/// signed attributes (unsigned ones only where a CAdES archive time-stamp adds its hash index).
pub(crate) const TOKEN_LIMITS: Limits = Limits {
    certificates: 64,
    revocation_values: 64,
    signers: 8,
    attributes: 64,
    attribute_values: 16,
};
