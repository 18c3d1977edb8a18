//! CAdES baseline levels (ETSI EN 319 122-1 §4.4 / §5).

use std::fmt;
use std::str::FromStr;

/// How much a signature carries for its long-term validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// B-B: signed attributes content-type, message-digest, signing-time, signing-certificate-v2.
    B,
    /// B-T: plus a signature time-stamp (RFC 3161 token over the signature value).
    T,
    /// B-LT: plus the certificates and revocation values (OCSP responses, CRLs) to validate it.
    LT,
    /// B-LTA: plus an archive time-stamp (v3) over all of it.
    LTA,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::B => "B-B",
            Level::T => "B-T",
            Level::LT => "B-LT",
            Level::LTA => "B-LTA",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Level {
    type Err = String;

    /// `B`, `T`, `LT`, `LTA`, with or without the `B-` prefix, any case.
    fn from_str(s: &str) -> Result<Level, String> {
        let upper = s.to_ascii_uppercase();
        match upper.strip_prefix("B-").unwrap_or(&upper) {
            "B" => Ok(Level::B),
            "T" => Ok(Level::T),
            "LT" => Ok(Level::LT),
            "LTA" => Ok(Level::LTA),
            _ => Err(format!("unknown level {s:?}: expected B, T, LT or LTA")),
        }
    }
}
