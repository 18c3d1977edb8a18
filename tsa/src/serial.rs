//! Where TSTInfo serial numbers come from (RFC 3161 §2.4.2: "unique for each TimeStampToken
//! issued by a given TSA", even across restarts, and at most 160 bits).
//!
//! [`RandomSerials`] draws 128 random bits per token: no state to persist or share between
//! instances, and a collision is as likely as guessing a 128-bit key (after 2^40 tokens the
//! chance of any repeat is about 2^-48).

use crate::{SystemFault, TsaError};

/// Hands out serial numbers for tokens.
pub trait SerialNumberSource: Send + Sync {
    /// The next serial as unsigned big-endian octets: 1 to 20 octets, not all zero.
    fn next_serial(&self) -> Result<Vec<u8>, TsaError>;
}

/// [`imza_core::cert::random_serial`]: 16 random octets, positive, always 16 octets encoded.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomSerials;

impl SerialNumberSource for RandomSerials {
    fn next_serial(&self) -> Result<Vec<u8>, TsaError> {
        imza_core::cert::random_serial().map_err(|e| {
            TsaError::SystemFailure(SystemFault::Randomness {
                purpose: "serial number",
                source: Box::new(e),
            })
        })
    }
}

/// Makes a positive DER INTEGER out of unsigned big-endian octets (adding a 0x00 octet when the
/// top bit is set, dropping redundant leading zeros).
pub fn positive_int(unsigned: &[u8]) -> Result<der::asn1::Int, TsaError> {
    let start = unsigned
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(unsigned.len());
    let digits = &unsigned[start..];
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    der::asn1::Int::new(&content).map_err(|e| TsaError::der("INTEGER", e))
}

/// Checks and converts a source's serial to the INTEGER put in TSTInfo.
pub(crate) fn serial_int(unsigned: &[u8]) -> Result<der::asn1::Int, TsaError> {
    let significant = unsigned.iter().skip_while(|b| **b == 0).count();
    if significant == 0 || significant > 20 {
        return Err(TsaError::BadSerialNumber {
            significant_octets: significant,
        });
    }
    positive_int(unsigned)
}

/// The value of a DER INTEGER as unsigned big-endian octets, `None` when it is negative.
pub fn unsigned_value(int: &der::asn1::Int) -> Option<Vec<u8>> {
    let bytes = int.as_bytes();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Some(bytes[start..].to_vec())
}

/// Upper-case hex with a `0x` prefix, `-` for negative values (two's complement read back).
pub fn int_hex(int: &der::asn1::Int) -> String {
    match unsigned_value(int) {
        Some(v) if v.is_empty() => "0x00".into(),
        Some(v) => format!("0x{}", hex::encode_upper(v)),
        None => {
            // Negate the two's complement value: invert and add one.
            let mut magnitude: Vec<u8> = int.as_bytes().iter().map(|b| !b).collect();
            for byte in magnitude.iter_mut().rev() {
                let (sum, carry) = byte.overflowing_add(1);
                *byte = sum;
                if !carry {
                    break;
                }
            }
            let start = magnitude.iter().position(|b| *b != 0).unwrap_or(0);
            format!("-0x{}", hex::encode_upper(&magnitude[start..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn random_serials_are_positive_sixteen_octets_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let serial = RandomSerials.next_serial().unwrap();
            let int = serial_int(&serial).unwrap();
            assert_eq!(int.to_der().unwrap().len(), 18);
            assert!(unsigned_value(&int).is_some());
            assert!(seen.insert(serial));
        }
    }

    #[test]
    fn integers_convert_both_ways() {
        let int = positive_int(&[0x00, 0x9b, 0x01]).unwrap();
        assert_eq!(int.to_der().unwrap(), [0x02, 0x03, 0x00, 0x9b, 0x01]);
        assert_eq!(unsigned_value(&int).unwrap(), [0x9b, 0x01]);
        assert_eq!(int_hex(&int), "0x9B01");
        let negative = der::asn1::Int::from_der(&[0x02, 0x04, 0xde, 0xad, 0xbe, 0xef]).unwrap();
        assert_eq!(unsigned_value(&negative), None);
        assert_eq!(int_hex(&negative), "-0x21524111");
        assert!(matches!(
            serial_int(&[0, 0]),
            Err(TsaError::BadSerialNumber {
                significant_octets: 0
            })
        ));
        assert!(matches!(
            serial_int(&[0, 0, 1, 2]),
            Ok(int) if int.as_bytes() == [1, 2]
        ));
        assert!(matches!(
            serial_int(&[1; 21]),
            Err(TsaError::BadSerialNumber {
                significant_octets: 21
            })
        ));
    }
}
