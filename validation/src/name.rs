//! Distinguished-name comparison (RFC 5280 §7.1): two names match when they have the same
//! RDNs in the same order, each RDN the same set of attributes, and each attribute value the
//! same after RFC 4518 string preparation (case folded, insignificant spaces removed), whatever
//! string type (PrintableString, UTF8String, BMPString, ...) carries it.
//!
//! A name is turned into a [`NameKey`] once; keys compare and hash cheaply, so the pool and
//! the CRLs are indexed by them.

use der::asn1::Any;
use der::{Encode, Tag, Tagged};
use x509_cert::name::Name;

/// A name in comparable form: one prepared byte string per RDN, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NameKey {
    rdns: Vec<Vec<u8>>,
}

impl NameKey {
    pub fn new(name: &Name) -> NameKey {
        let rdns = name
            .0
            .iter()
            .map(|rdn| {
                let mut attributes: Vec<Vec<u8>> = rdn
                    .0
                    .iter()
                    .map(|atv| {
                        let mut out = Vec::new();
                        let oid = atv.oid.as_bytes();
                        push_len_prefixed(&mut out, oid);
                        push_len_prefixed(&mut out, &prepared_value(&atv.value));
                        out
                    })
                    .collect();
                // An RDN is a SET: the order of its attributes does not matter.
                attributes.sort();
                let mut rdn_key = Vec::new();
                for attribute in attributes {
                    push_len_prefixed(&mut rdn_key, &attribute);
                }
                rdn_key
            })
            .collect();
        NameKey { rdns }
    }

    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }

    /// Whether `self` is `other` or lies below it in the directory tree (`other`'s RDNs are a
    /// prefix of ours): the directoryName name-constraint test of RFC 5280 §4.2.1.10.
    pub fn is_within(&self, other: &NameKey) -> bool {
        self.rdns.starts_with(&other.rdns)
    }
}

fn push_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The value as compared: a marker byte, then the prepared string for directory strings, or
/// the whole DER (tag and value) for anything else (binary comparison, §7.1).
fn prepared_value(value: &Any) -> Vec<u8> {
    match directory_string(value) {
        Some(text) => {
            let mut out = vec![b's'];
            out.extend_from_slice(prepare(&text).as_bytes());
            out
        }
        None => {
            let mut out = vec![b'b'];
            out.extend_from_slice(&value.to_der().unwrap_or_else(|_| value.value().to_vec()));
            out
        }
    }
}

/// The text of a string-typed attribute value, whatever its ASN.1 string type.
pub(crate) fn directory_string(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(bytes).ok().map(str::to_string),
        // T.61 in practice carries Latin-1.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .filter_map(|pair| <[u8; 2]>::try_from(pair).ok())
                .map(u16::from_be_bytes)
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 4518 in the parts that matter for real names: case folded, leading and trailing
/// spaces dropped, inner runs of white space collapsed to one space.
fn prepare(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use imza_core::name::parse_dn;

    #[test]
    fn names_match_across_case_and_spacing() {
        let a = parse_dn("CN=Good  CA,O=Test Certificates 2011,C=US").unwrap();
        let b = parse_dn("CN=good ca,O= TEST   certificates 2011 ,C=US").unwrap();
        assert_eq!(NameKey::new(&a), NameKey::new(&b));
        let c = parse_dn("CN=Good CA2,O=Test Certificates 2011,C=US").unwrap();
        assert_ne!(NameKey::new(&a), NameKey::new(&c));
    }

    #[test]
    fn rdn_order_matters_and_prefix_is_within() {
        let a = parse_dn("CN=x,O=o,C=US").unwrap();
        let b = parse_dn("O=o,CN=x,C=US").unwrap();
        assert_ne!(NameKey::new(&a), NameKey::new(&b));
        let parent = parse_dn("O=o,C=US").unwrap();
        assert!(NameKey::new(&a).is_within(&NameKey::new(&parent)));
        assert!(!NameKey::new(&parent).is_within(&NameKey::new(&a)));
    }
}
