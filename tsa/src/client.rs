//! What a client checks of the answer to its own request before keeping it (RFC 3161
//! §2.4.2): the token stamps the imprint that was sent, with the same hash algorithm, repeats
//! the nonce that was sent ("the nonce value MUST be present in the response and equal to
//! the value in the request"), and carries the policy asked for.
//!
//! These checks need no trust anchor, so `imza ts request` makes them on every answer;
//! [`crate::verify_token`] calls this one check when given the request, along with the signature
//! and the certificate path.

use crate::serial::int_hex;
use crate::{ParsedToken, TimeStampRequest, TsaError};

/// Whether `token` answers `request`: same imprint (algorithm and digest), same nonce when
/// one was sent, same policy when one was asked for.
pub fn check_answers_request(
    token: &ParsedToken,
    request: &TimeStampRequest,
) -> Result<(), TsaError> {
    let sent = request.message_imprint();
    let stamped = &token.tst_info().message_imprint;
    // Algorithms compare by OID: absent and NULL parameters mean the same (RFC 5754 §2).
    if sent.hash_algorithm.oid != stamped.hash_algorithm.oid
        || sent.hashed_message != stamped.hashed_message
    {
        return Err(TsaError::ImprintMismatch {
            expected: format!(
                "{} {}",
                sent.hash_algorithm.oid,
                hex::encode(sent.hashed_message.as_bytes())
            ),
            found: format!(
                "{} {}",
                stamped.hash_algorithm.oid,
                hex::encode(stamped.hashed_message.as_bytes())
            ),
        });
    }
    if let Some(nonce) = request.nonce() {
        if token.tst_info().nonce.as_ref() != Some(nonce) {
            return Err(TsaError::NonceMismatch {
                expected: int_hex(nonce),
                found: token.nonce_hex().unwrap_or_else(|| "absent".into()),
            });
        }
    }
    if let Some(policy) = request.policy() {
        if policy != token.policy() {
            return Err(TsaError::PolicyMismatch {
                expected: policy.to_string(),
                found: token.policy(),
            });
        }
    }
    Ok(())
}
