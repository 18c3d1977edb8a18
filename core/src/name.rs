//! Distinguished names: parsing the RFC 4514 string form operators type
//! (`CN=AZ Root CA,O=...,C=AZ`) into an X.501 `Name` with the string types RFC 5280 and
//! ETSI EN 319 412 expect, and printing a `Name` back the same way.
//!
//! The string form lists the most specific RDN first (RFC 4514 §2.1), so the encoded
//! RDNSequence is the reverse. Country and serialNumber are PrintableString (RFC 5280
//! appendix A), domainComponent and emailAddress IA5String, everything else UTF8String
//! (RFC 5280 §4.1.2.6), so Azerbaijani letters (ə ğ ı ö ş ü ç İ) survive.

use der::asn1::{Any, Ia5StringRef, ObjectIdentifier, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::{oids, CoreError};

/// Longest distinguished-name string accepted, and most RDNs: bounds on untrusted input.
const MAX_DN_LEN: usize = 4096;
const MAX_RDNS: usize = 32;

/// How an attribute is spelled and encoded.
struct AttributeKind {
    keywords: &'static [&'static str],
    oid: ObjectIdentifier,
    encoding: StringEncoding,
    /// Upper bound on characters (RFC 5280 appendix A `ub-*`).
    max_chars: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StringEncoding {
    Utf8,
    Printable,
    Ia5,
}

const ATTRIBUTES: &[AttributeKind] = &[
    attr(
        &["CN", "commonName"],
        oids::AT_COMMON_NAME,
        StringEncoding::Utf8,
        64,
    ),
    attr(
        &["SN", "surname"],
        oids::AT_SURNAME,
        StringEncoding::Utf8,
        32768,
    ),
    attr(
        &["serialNumber"],
        oids::AT_SERIAL_NUMBER,
        StringEncoding::Printable,
        64,
    ),
    attr(
        &["C", "countryName"],
        oids::AT_COUNTRY,
        StringEncoding::Printable,
        2,
    ),
    attr(
        &["L", "localityName"],
        oids::AT_LOCALITY,
        StringEncoding::Utf8,
        128,
    ),
    attr(
        &["ST", "stateOrProvinceName"],
        oids::AT_STATE,
        StringEncoding::Utf8,
        128,
    ),
    attr(
        &["street", "streetAddress"],
        oids::AT_STREET,
        StringEncoding::Utf8,
        128,
    ),
    attr(
        &["O", "organizationName"],
        oids::AT_ORGANIZATION,
        StringEncoding::Utf8,
        64,
    ),
    attr(
        &["OU", "organizationalUnitName"],
        oids::AT_ORGANIZATIONAL_UNIT,
        StringEncoding::Utf8,
        64,
    ),
    attr(&["title"], oids::AT_TITLE, StringEncoding::Utf8, 64),
    attr(
        &["givenName", "GN"],
        oids::AT_GIVEN_NAME,
        StringEncoding::Utf8,
        32768,
    ),
    attr(
        &["pseudonym"],
        oids::AT_PSEUDONYM,
        StringEncoding::Utf8,
        128,
    ),
    attr(
        &["organizationIdentifier"],
        oids::AT_ORGANIZATION_IDENTIFIER,
        StringEncoding::Utf8,
        128,
    ),
    attr(
        &["DC", "domainComponent"],
        oids::AT_DOMAIN_COMPONENT,
        StringEncoding::Ia5,
        63,
    ),
    attr(
        &["emailAddress", "E"],
        oids::AT_EMAIL_ADDRESS,
        StringEncoding::Ia5,
        255,
    ),
];

const fn attr(
    keywords: &'static [&'static str],
    oid: ObjectIdentifier,
    encoding: StringEncoding,
    max_chars: usize,
) -> AttributeKind {
    AttributeKind {
        keywords,
        oid,
        encoding,
        max_chars,
    }
}

fn kind_by_keyword(keyword: &str) -> Option<&'static AttributeKind> {
    ATTRIBUTES
        .iter()
        .find(|a| a.keywords.iter().any(|k| k.eq_ignore_ascii_case(keyword)))
}

fn kind_by_oid(oid: &ObjectIdentifier) -> Option<&'static AttributeKind> {
    ATTRIBUTES.iter().find(|a| &a.oid == oid)
}

/// The short keyword for an attribute type (`CN`, `serialNumber`, ...), or its dotted OID.
pub fn attribute_keyword(oid: &ObjectIdentifier) -> String {
    kind_by_oid(oid)
        .map(|k| k.keywords[0].to_string())
        .unwrap_or_else(|| oid.to_string())
}

/// Parses an RFC 4514 distinguished name string into a `Name`.
pub fn parse_dn(input: &str) -> Result<Name, CoreError> {
    let fail = |reason: String| CoreError::InvalidName {
        input: input.chars().take(200).collect(),
        reason,
    };
    if input.len() > MAX_DN_LEN {
        return Err(fail(format!("longer than {MAX_DN_LEN} bytes")));
    }
    if input.trim().is_empty() {
        return Err(fail("empty name".into()));
    }
    let mut rdns = Vec::new();
    for rdn_text in split_unescaped(input, ',') {
        if rdns.len() == MAX_RDNS {
            return Err(fail(format!("more than {MAX_RDNS} attributes")));
        }
        let mut set = SetOfVec::new();
        for ava_text in split_unescaped(&rdn_text, '+') {
            let (key, value) = ava_text
                .split_once('=')
                .ok_or_else(|| fail(format!("{:?} is not TYPE=value", ava_text.trim())))?;
            let ava =
                attribute(key.trim(), &unescape(value.trim()).map_err(&fail)?).map_err(&fail)?;
            set.insert(ava)
                .map_err(|e| fail(format!("repeated attribute in one RDN ({e})")))?;
        }
        rdns.push(RelativeDistinguishedName(set));
    }
    rdns.reverse();
    Ok(RdnSequence(rdns))
}

/// Builds one attribute with the encoding its type calls for.
pub fn attribute(keyword: &str, value: &str) -> Result<AttributeTypeAndValue, String> {
    let (oid, kind) = match kind_by_keyword(keyword) {
        Some(k) => (k.oid, Some(k)),
        None => (
            keyword
                .parse::<ObjectIdentifier>()
                .map_err(|_| format!("unknown attribute type {keyword:?}"))?,
            None,
        ),
    };
    if value.is_empty() {
        return Err(format!("{keyword} is empty"));
    }
    let encoding = kind.map_or(StringEncoding::Utf8, |k| k.encoding);
    if let Some(k) = kind {
        let chars = value.chars().count();
        if chars > k.max_chars {
            return Err(format!(
                "{keyword} is {chars} characters, at most {} allowed",
                k.max_chars
            ));
        }
        if k.oid == oids::AT_COUNTRY
            && !(chars == 2 && value.chars().all(|c| c.is_ascii_uppercase()))
        {
            return Err(format!(
                "country {value:?} must be two capital letters (ISO 3166)"
            ));
        }
    }
    let any = match encoding {
        StringEncoding::Utf8 => Any::from(Utf8StringRef::new(value).map_err(|e| e.to_string())?),
        StringEncoding::Printable => Any::from(
            PrintableStringRef::new(value)
                .map_err(|_| format!("{keyword} {value:?} must use only PrintableString characters (A-Z a-z 0-9 space '()+,-./:=?)"))?,
        ),
        StringEncoding::Ia5 => Any::from(
            Ia5StringRef::new(value).map_err(|_| format!("{keyword} {value:?} must be ASCII"))?,
        ),
    };
    Ok(AttributeTypeAndValue { oid, value: any })
}

/// Splits on `sep` where it is not escaped with a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
            continue;
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

/// Removes RFC 4514 §2.4 escapes: `\,` style and `\XX` hex pairs (UTF-8 bytes).
fn unescape(s: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(s.len());
    let raw = s.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            let next = raw.get(i + 1).ok_or("trailing backslash")?;
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) if next.is_ascii_hexdigit() => {
                    bytes.push(b);
                    i += 3;
                }
                _ => {
                    bytes.push(*next);
                    i += 2;
                }
            }
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).map_err(|_| "escaped bytes are not UTF-8".to_string())
}

/// The text of an attribute value, for display and for profile checks.
pub fn attribute_text(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(bytes).ok().map(str::to_string)
        }
        Tag::TeletexString => Some(bytes.iter().map(|&b| b as char).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// Prints a `Name` in RFC 4514 form, most specific RDN first, values left in UTF-8.
pub fn format_dn(name: &Name) -> String {
    let mut out = String::new();
    for (i, rdn) in name.0.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, ava) in rdn.0.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            out.push_str(&attribute_keyword(&ava.oid));
            out.push('=');
            match attribute_text(&ava.value) {
                Some(text) => escape_into(&text, &mut out),
                None => {
                    out.push('#');
                    out.push_str(&hex::encode(
                        der::Encode::to_der(&ava.value).unwrap_or_default(),
                    ));
                }
            }
        }
    }
    out
}

fn escape_into(text: &str, out: &mut String) {
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

/// All values of one attribute type in a name, in encoded order.
pub fn attribute_values(name: &Name, oid: ObjectIdentifier) -> Vec<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|ava| ava.oid == oid)
        .filter_map(|ava| attribute_text(&ava.value))
        .collect()
}

/// How a natural person's certificate names them: the commonName, else givenName and
/// surname, else either one; `None` when the subject has none of these.
pub fn person_name(name: &Name) -> Option<String> {
    let first = |oid| attribute_values(name, oid).into_iter().next();
    match (
        first(oids::AT_COMMON_NAME),
        first(oids::AT_GIVEN_NAME),
        first(oids::AT_SURNAME),
    ) {
        (Some(cn), _, _) => Some(cn),
        (None, Some(given), Some(surname)) => Some(format!("{given} {surname}")),
        (None, given, surname) => given.or(surname),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn azerbaijani_letters_round_trip_as_utf8string() {
        let dn = "CN=Əliyev Günay Şəmsi oğlu,serialNumber=PNOAZ-1A2B3C4,C=AZ";
        let name = parse_dn(dn).unwrap();
        let der = name.to_der().unwrap();
        let back = Name::from_der(&der).unwrap();
        assert_eq!(format_dn(&back), dn);
        let cn = back.0.last().unwrap().0.get(0).unwrap();
        assert_eq!(cn.value.tag(), Tag::Utf8String);
        let country = back.0.first().unwrap().0.get(0).unwrap();
        assert_eq!(country.value.tag(), Tag::PrintableString);
    }

    #[test]
    fn escapes_and_multi_valued_rdns_parse() {
        let name = parse_dn(r"CN=Doe\, John+serialNumber=X1,O=A\2CB,C=AZ").unwrap();
        assert_eq!(name.0.len(), 3);
        assert_eq!(name.0[2].0.len(), 2);
        assert_eq!(attribute_values(&name, oids::AT_ORGANIZATION), vec!["A,B"]);
        assert_eq!(
            attribute_values(&name, oids::AT_COMMON_NAME),
            vec!["Doe, John"]
        );
    }

    #[test]
    fn bad_names_are_refused_with_a_reason() {
        for bad in [
            "",
            "CN",
            "XX=1",
            "C=Azerbaijan",
            "C=az",
            "serialNumber=PNO_Ə",
            "CN=",
        ] {
            assert!(parse_dn(bad).is_err(), "{bad} should fail");
        }
        let long = format!("CN={}", "a".repeat(65));
        let err = parse_dn(&long).unwrap_err().to_string();
        assert!(err.contains("at most 64"), "{err}");
    }
}
