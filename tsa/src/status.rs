//! The status half of a `TimeStampResp` (RFC 3161 §2.4.2), which reuses CMP's `PKIStatusInfo`
//! (RFC 4210 §5.2.3).
//!
//! These are written here rather than taken from the `cmpv2` crate that `x509-tsp` uses: its
//! 0.2 `PKIFailureInfo` flag set treats bit numbers as masks (and gives badRequest and badTime
//! the same value), so it encodes and decodes the wrong bits.

use std::fmt;

use cms::content_info::ContentInfo;
use der::asn1::BitString;
use der::{Enumerated, Sequence};

/// ```text
/// PKIStatus ::= INTEGER {
///    granted                (0),
///    grantedWithMods        (1),
///    rejection              (2),
///    waiting                (3),
///    revocationWarning      (4),
///    revocationNotification (5) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[asn1(type = "INTEGER")]
#[repr(u8)]
pub enum PkiStatus {
    Granted = 0,
    GrantedWithMods = 1,
    Rejection = 2,
    Waiting = 3,
    RevocationWarning = 4,
    RevocationNotification = 5,
}

impl PkiStatus {
    /// RFC 3161 §2.4.2: only `granted` and `grantedWithMods` carry a token.
    pub fn is_granted(self) -> bool {
        matches!(self, PkiStatus::Granted | PkiStatus::GrantedWithMods)
    }

    pub fn name(self) -> &'static str {
        match self {
            PkiStatus::Granted => "granted",
            PkiStatus::GrantedWithMods => "grantedWithMods",
            PkiStatus::Rejection => "rejection",
            PkiStatus::Waiting => "waiting",
            PkiStatus::RevocationWarning => "revocationWarning",
            PkiStatus::RevocationNotification => "revocationNotification",
        }
    }
}

impl fmt::Display for PkiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `PKIFailureInfo` bits RFC 3161 §2.4.2 defines for a TSA:
///
/// ```text
/// PKIFailureInfo ::= BIT STRING {
///     badAlg               (0),  -- unrecognized or unsupported Algorithm Identifier
///     badRequest           (2),  -- transaction not permitted or supported
///     badDataFormat        (5),  -- the data submitted has the wrong format
///     timeNotAvailable    (14),  -- the TSA's time source is not available
///     unacceptedPolicy    (15),  -- the requested TSA policy is not supported by the TSA
///     unacceptedExtension (16),  -- the requested extension is not supported by the TSA
///     addInfoNotAvailable (17),  -- the additional information requested could not be
///                                -- understood or is not available
///     systemFailure       (25)   -- the request cannot be handled due to system failure }
/// ```
///
/// Other bits (CMP defines more) read back as `Other(bit)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureInfo {
    BadAlg,
    BadRequest,
    BadDataFormat,
    TimeNotAvailable,
    UnacceptedPolicy,
    UnacceptedExtension,
    AddInfoNotAvailable,
    SystemFailure,
    Other(u16),
}

/// Bits beyond this are not read from a response's failInfo (CMP's highest is 26).
const MAX_FAILURE_BIT: usize = 63;

impl FailureInfo {
    pub fn bit(self) -> u16 {
        match self {
            FailureInfo::BadAlg => 0,
            FailureInfo::BadRequest => 2,
            FailureInfo::BadDataFormat => 5,
            FailureInfo::TimeNotAvailable => 14,
            FailureInfo::UnacceptedPolicy => 15,
            FailureInfo::UnacceptedExtension => 16,
            FailureInfo::AddInfoNotAvailable => 17,
            FailureInfo::SystemFailure => 25,
            FailureInfo::Other(bit) => bit,
        }
    }

    pub fn from_bit(bit: u16) -> FailureInfo {
        match bit {
            0 => FailureInfo::BadAlg,
            2 => FailureInfo::BadRequest,
            5 => FailureInfo::BadDataFormat,
            14 => FailureInfo::TimeNotAvailable,
            15 => FailureInfo::UnacceptedPolicy,
            16 => FailureInfo::UnacceptedExtension,
            17 => FailureInfo::AddInfoNotAvailable,
            25 => FailureInfo::SystemFailure,
            other => FailureInfo::Other(other),
        }
    }

    /// The RFC's name for the bit (`badAlg`, `timeNotAvailable`, ...).
    pub fn name(self) -> String {
        match self {
            FailureInfo::BadAlg => "badAlg".into(),
            FailureInfo::BadRequest => "badRequest".into(),
            FailureInfo::BadDataFormat => "badDataFormat".into(),
            FailureInfo::TimeNotAvailable => "timeNotAvailable".into(),
            FailureInfo::UnacceptedPolicy => "unacceptedPolicy".into(),
            FailureInfo::UnacceptedExtension => "unacceptedExtension".into(),
            FailureInfo::AddInfoNotAvailable => "addInfoNotAvailable".into(),
            FailureInfo::SystemFailure => "systemFailure".into(),
            FailureInfo::Other(bit) => format!("failure bit {bit}"),
        }
    }

    /// The DER named-bit-list encoding of this one bit (X.690 §11.2.2: trailing zero bits
    /// removed, so the string ends at the set bit).
    pub fn to_bit_string(self) -> der::Result<BitString> {
        let bit = usize::from(self.bit());
        let mut bytes = vec![0u8; bit / 8 + 1];
        bytes[bit / 8] = 0x80 >> (bit % 8);
        BitString::new((7 - bit % 8) as u8, bytes)
    }

    /// Every bit set in a failInfo BIT STRING, in order (at most the first 64 bits are read).
    pub fn all_in(bits: &BitString) -> Vec<FailureInfo> {
        bits.bits()
            .take(MAX_FAILURE_BIT + 1)
            .enumerate()
            .filter(|(_, set)| *set)
            .map(|(i, _)| FailureInfo::from_bit(i as u16))
            .collect()
    }
}

impl fmt::Display for FailureInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// ```text
/// PKIStatusInfo ::= SEQUENCE {
///     status        PKIStatus,
///     statusString  PKIFreeText     OPTIONAL,
///     failInfo      PKIFailureInfo  OPTIONAL  }
///
/// PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PkiStatusInfo {
    pub status: PkiStatus,
    #[asn1(optional = "true")]
    pub status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    pub fail_info: Option<BitString>,
}

/// ```text
/// TimeStampResp ::= SEQUENCE  {
///     status                  PKIStatusInfo,
///     timeStampToken          TimeStampToken     OPTIONAL  }
///
/// TimeStampToken ::= ContentInfo
///     -- contentType is id-signedData ([CMS])
///     -- content is SignedData ([CMS])
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct TimeStampResp {
    pub status: PkiStatusInfo,
    #[asn1(optional = "true")]
    pub time_stamp_token: Option<ContentInfo>,
}

/// `TimeStampResp { status { rejection, failInfo { systemFailure } } }`, the answer of last
/// resort when even encoding a refusal fails.
pub const SYSTEM_FAILURE_RESPONSE: [u8; 14] = [
    0x30, 0x0c, 0x30, 0x0a, 0x02, 0x01, 0x02, 0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40,
];

/// A refusal: status rejection, the failure bit and (optionally) a text for the requester.
pub fn rejection(failure: FailureInfo, text: Option<&str>) -> der::Result<TimeStampResp> {
    Ok(TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Rejection,
            status_string: text.map(|t| vec![t.to_string()]),
            fail_info: Some(failure.to_bit_string()?),
        },
        time_stamp_token: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn failure_bits_encode_as_der_named_bit_lists() {
        // badAlg is bit 0: one octet, 7 unused bits, 0x80.
        assert_eq!(
            FailureInfo::BadAlg
                .to_bit_string()
                .unwrap()
                .to_der()
                .unwrap(),
            [0x03, 0x02, 0x07, 0x80]
        );
        // timeNotAvailable is bit 14: two octets, 1 unused bit.
        assert_eq!(
            FailureInfo::TimeNotAvailable
                .to_bit_string()
                .unwrap()
                .to_der()
                .unwrap(),
            [0x03, 0x03, 0x01, 0x00, 0x02]
        );
        for f in [
            FailureInfo::BadAlg,
            FailureInfo::BadRequest,
            FailureInfo::BadDataFormat,
            FailureInfo::TimeNotAvailable,
            FailureInfo::UnacceptedPolicy,
            FailureInfo::UnacceptedExtension,
            FailureInfo::AddInfoNotAvailable,
            FailureInfo::SystemFailure,
        ] {
            assert_eq!(FailureInfo::all_in(&f.to_bit_string().unwrap()), vec![f]);
        }
    }

    #[test]
    fn last_resort_response_is_the_encoded_system_failure() {
        let resp = rejection(FailureInfo::SystemFailure, None).unwrap();
        assert_eq!(resp.to_der().unwrap(), SYSTEM_FAILURE_RESPONSE);
        let back = TimeStampResp::from_der(&SYSTEM_FAILURE_RESPONSE).unwrap();
        assert_eq!(back.status.status, PkiStatus::Rejection);
    }
}
