//! PEM (RFC 7468) and DER input: files an operator hands imza may be either.

use der::pem::LineEnding;

use crate::CoreError;

pub const CERTIFICATE: &str = "CERTIFICATE";
pub const CERTIFICATE_REQUEST: &str = "CERTIFICATE REQUEST";
pub const X509_CRL: &str = "X509 CRL";

/// Largest PEM/DER object accepted from a file: a bound on untrusted input.
pub const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;

/// PEM text for `der` under `label`.
pub fn encode(label: &str, der: &[u8]) -> Result<String, CoreError> {
    der::pem::encode_string(label, LineEnding::LF, der)
        .map_err(|e| CoreError::Encoding(e.to_string()))
}

/// Accepts PEM with one of `labels` (the first such block) or raw DER (starting with a SEQUENCE).
pub fn decode_pem_or_der(
    input: &[u8],
    labels: &[&str],
    what: &'static str,
) -> Result<Vec<u8>, CoreError> {
    if input.len() > MAX_OBJECT_BYTES {
        return Err(CoreError::malformed(
            what,
            format!("larger than {MAX_OBJECT_BYTES} bytes"),
        ));
    }
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    let text = std::str::from_utf8(input)
        .map_err(|_| CoreError::malformed(what, "neither PEM text nor DER"))?;
    let blocks = all_blocks(text, what)?;
    if blocks.is_empty() {
        return Err(CoreError::malformed(what, "neither PEM text nor DER"));
    }
    blocks
        .into_iter()
        .find(|(label, _)| labels.contains(&label.as_str()))
        .map(|(_, der)| der)
        .ok_or_else(|| {
            CoreError::malformed(
                what,
                format!("no PEM block labelled {}", labels.join(" or ")),
            )
        })
}

/// Every PEM block in `text` as (label, DER), in order.
pub fn all_blocks(text: &str, what: &'static str) -> Result<Vec<(String, Vec<u8>)>, CoreError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block = &rest[start..];
        let label_end = block[BEGIN.len()..]
            .find("-----")
            .ok_or_else(|| CoreError::malformed(what, "unterminated PEM header"))?;
        let label = &block[BEGIN.len()..BEGIN.len() + label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block.find(&end_marker).ok_or_else(|| {
            CoreError::malformed(what, format!("PEM block {label} has no END line"))
        })?;
        let pem = &block[..end + end_marker.len()];
        let (label, der) = der::pem::decode_vec(pem.as_bytes())
            .map_err(|e| CoreError::malformed(what, format!("bad PEM: {e}")))?;
        out.push((label.to_string(), der));
        rest = &block[end + end_marker.len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_and_der_both_decode() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let pem = encode(CERTIFICATE, &der).unwrap();
        assert_eq!(
            decode_pem_or_der(pem.as_bytes(), &[CERTIFICATE], "certificate").unwrap(),
            der
        );
        assert_eq!(
            decode_pem_or_der(&der, &[CERTIFICATE], "certificate").unwrap(),
            der
        );
        assert!(decode_pem_or_der(b"garbage", &[CERTIFICATE], "certificate").is_err());
        assert!(decode_pem_or_der(pem.as_bytes(), &[X509_CRL], "CRL").is_err());
    }
}
