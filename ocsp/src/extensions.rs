//! Checks every OCSP extension list gets (RFC 6960 §4.4, RFC 5280 §4.2): bounded in number,
//! no extension twice, and no critical extension imza does not understand; and the nonce
//! (RFC 9654 §2.1).
//!
//! ```text
//! id-pkix-ocsp-nonce  OBJECT IDENTIFIER ::= { id-pkix-ocsp 2 }
//! Nonce ::= OCTET STRING(SIZE(1..128))
//! ```
//! The extnValue of the extension holds the DER of that OCTET STRING.

use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::Decode;
use x509_cert::ext::Extension;

use imza_core::oids;

use crate::OcspError;

/// Most extensions accepted in one list: real requests and responses carry one to three.
pub const MAX_EXTENSIONS: usize = 16;

/// Checks `extensions` found at `location` and returns them (an absent list is empty).
pub(crate) fn check_extensions<'a>(
    extensions: Option<&'a [Extension]>,
    location: &'static str,
    understood: &[ObjectIdentifier],
) -> Result<&'a [Extension], OcspError> {
    let extensions = extensions.unwrap_or_default();
    if extensions.len() > MAX_EXTENSIONS {
        return Err(OcspError::TooManyExtensions {
            location,
            count: extensions.len(),
            limit: MAX_EXTENSIONS,
        });
    }
    for (i, ext) in extensions.iter().enumerate() {
        // At most MAX_EXTENSIONS² comparisons.
        if extensions[..i].iter().any(|e| e.extn_id == ext.extn_id) {
            return Err(OcspError::DuplicateExtension {
                location,
                oid: ext.extn_id,
            });
        }
        if ext.critical && !understood.contains(&ext.extn_id) {
            return Err(OcspError::UnsupportedCriticalExtension {
                location,
                oid: ext.extn_id,
            });
        }
    }
    Ok(extensions)
}

/// The nonce extension among `extensions`, if any, with its value checked to be a DER
/// OCTET STRING of 1 to `max_octets` octets.
pub(crate) fn find_nonce(
    extensions: &[Extension],
    max_octets: usize,
) -> Result<Option<(Vec<u8>, Extension)>, OcspError> {
    let Some(ext) = extensions.iter().find(|e| e.extn_id == oids::OCSP_NONCE) else {
        return Ok(None);
    };
    let value = OctetStringRef::from_der(ext.extn_value.as_bytes())
        .map_err(|e| OcspError::malformed("nonce (RFC 9654 §2.1: an OCTET STRING)", e))?;
    let len = value.as_bytes().len();
    if len == 0 || len > max_octets {
        return Err(OcspError::NonceLength {
            len,
            max: max_octets,
        });
    }
    Ok(Some((value.as_bytes().to_vec(), ext.clone())))
}
