//! Matching the name a relying party expected against the target certificate (RFC 6125 for
//! DNS names, RFC 5280 §4.2.1.6 for IP addresses and RFC 822 names): the check a TLS client or
//! an e-mail client makes after path validation.
//!
//! Only the subjectAltName extension is read. There is **no fallback to the subject's common
//! name** when a certificate has no subjectAltName (RFC 6125 §6.4.4 allowed it as a legacy
//! practice; RFC 9525 §6.3 and the CA/Browser Forum forbid it): such a certificate matches no
//! peer name.

use std::net::IpAddr;

use der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

use imza_core::oids;

use crate::{Certificate, PurposeProblem, ValidationError};

/// Most subjectAltName entries looked at: a certificate with more is refused rather than
/// scanned (real certificates carry at most a few hundred).
pub const MAX_SAN_ENTRIES: usize = 4096;

/// The name the peer is expected to have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerName {
    /// A DNS host name, matched case-insensitively; a presented `*.` wildcard covers exactly
    /// one left-most label (RFC 6125 §6.4.3).
    Dns(String),
    /// An IPv4 or IPv6 address, matched against iPAddress entries octet by octet.
    Ip(IpAddr),
    /// An e-mail address `local@domain`: the local part is case-sensitive, the domain is not
    /// (RFC 5280 §4.2.1.6, §7.5).
    Email(String),
}

impl std::fmt::Display for PeerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerName::Dns(name) => write!(f, "DNS name {name}"),
            PeerName::Ip(ip) => write!(f, "IP address {ip}"),
            PeerName::Email(address) => write!(f, "e-mail address {address}"),
        }
    }
}

/// Whether `leaf`'s subjectAltName carries `name`. A mismatch, a certificate without
/// subjectAltName and an unusable reference name are [`ValidationError::Purpose`]; a
/// subjectAltName that does not decode is [`ValidationError::Malformed`].
pub fn check_peer_name(leaf: &Certificate, name: &PeerName) -> Result<(), ValidationError> {
    let refuse = |problem: PurposeProblem| ValidationError::Purpose {
        subject: leaf.subject_text(),
        purpose: name.to_string(),
        problem,
    };
    let names = subject_alt_names(leaf)?.ok_or_else(|| refuse(PurposeProblem::NoSubjectAltName))?;
    if names.len() > MAX_SAN_ENTRIES {
        return Err(refuse(PurposeProblem::TooManySubjectAltNames {
            entries: names.len(),
            limit: MAX_SAN_ENTRIES,
        }));
    }
    let bad_reference = |name: &str, kind: &'static str| {
        refuse(PurposeProblem::BadReferenceName {
            name: name.to_string(),
            kind,
        })
    };
    let found = match name {
        PeerName::Dns(reference) => {
            let reference = normalize_reference_dns(reference)
                .ok_or_else(|| bad_reference(reference, "DNS name"))?;
            names.iter().any(|n| match n {
                GeneralName::DnsName(presented) => dns_matches(presented.as_str(), &reference),
                _ => false,
            })
        }
        PeerName::Ip(ip) => {
            let octets: Vec<u8> = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            names.iter().any(|n| match n {
                GeneralName::IpAddress(presented) => presented.as_bytes() == octets.as_slice(),
                _ => false,
            })
        }
        PeerName::Email(reference) => {
            let (local, domain) = reference
                .rsplit_once('@')
                .filter(|(l, d)| !l.is_empty() && !d.is_empty())
                .ok_or_else(|| bad_reference(reference, "e-mail address"))?;
            names.iter().any(|n| match n {
                GeneralName::Rfc822Name(presented) => {
                    email_matches(presented.as_str(), local, domain)
                }
                _ => false,
            })
        }
    };
    if found {
        Ok(())
    } else {
        Err(refuse(PurposeProblem::NoMatchingName {
            presented: describe(&names),
        }))
    }
}

/// The entries of `leaf`'s subjectAltName, `None` when it has none.
fn subject_alt_names(leaf: &Certificate) -> Result<Option<Vec<GeneralName>>, ValidationError> {
    let mut found = leaf
        .inner()
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oids::EXT_SUBJECT_ALT_NAME);
    let Some(extension) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(ValidationError::malformed(
            "subjectAltName",
            "the extension appears more than once (RFC 5280 §4.2)",
        ));
    }
    let san = SubjectAltName::from_der(extension.extn_value.as_bytes())
        .map_err(|e| ValidationError::malformed("subjectAltName", e))?;
    Ok(Some(san.0))
}

/// The reference name lower-cased, without one trailing dot (an absolute name); `None` when
/// it is not a plausible host name (empty labels, non-ASCII, a wildcard, longer than 253).
fn normalize_reference_dns(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 || !name.is_ascii() {
        return None;
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !name.split('.').all(valid_label) {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// RFC 6125 §6.4: a presented dNSName matches the (normalized) reference when equal ignoring
/// ASCII case, or when it is `*.` followed by at least two labels and the reference is one
/// label followed by those labels. A `*` anywhere else, partial-label wildcards (`f*.example`)
/// and wildcards directly over a top-level domain (`*.com`) never match.
fn dns_matches(presented: &str, reference: &str) -> bool {
    let presented = presented.strip_suffix('.').unwrap_or(presented);
    if presented.is_empty() || !presented.is_ascii() {
        return false;
    }
    match presented.strip_prefix("*.") {
        Some(rest) => {
            if rest.contains('*')
                || rest.split('.').count() < 2
                || rest.split('.').any(str::is_empty)
            {
                return false;
            }
            match reference.split_once('.') {
                Some((first, reference_rest)) => {
                    !first.is_empty() && reference_rest.eq_ignore_ascii_case(rest)
                }
                None => false,
            }
        }
        None => !presented.contains('*') && presented.eq_ignore_ascii_case(reference),
    }
}

/// An rfc822Name `local@domain` matches when the local parts are equal and the domains are
/// equal ignoring ASCII case. Entries without `@` (a whole-domain form only name constraints
/// use) match no address.
fn email_matches(presented: &str, local: &str, domain: &str) -> bool {
    match presented.rsplit_once('@') {
        Some((p_local, p_domain)) => p_local == local && p_domain.eq_ignore_ascii_case(domain),
        None => false,
    }
}

/// A short list of the DNS, IP and e-mail names present, for the mismatch message.
fn describe(names: &[GeneralName]) -> String {
    let shown: Vec<String> = names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DnsName(s) => Some(format!("DNS:{}", s.as_str())),
            GeneralName::Rfc822Name(s) => Some(format!("email:{}", s.as_str())),
            GeneralName::IpAddress(o) => Some(match o.as_bytes().len() {
                4 => <[u8; 4]>::try_from(o.as_bytes())
                    .map(|b| format!("IP:{}", IpAddr::from(b)))
                    .unwrap_or_default(),
                16 => <[u8; 16]>::try_from(o.as_bytes())
                    .map(|b| format!("IP:{}", IpAddr::from(b)))
                    .unwrap_or_default(),
                _ => format!("IP:{}", hex::encode(o.as_bytes())),
            }),
            _ => None,
        })
        .take(8)
        .collect();
    if shown.is_empty() {
        "no DNS, IP or e-mail name".into()
    } else if shown.len() < names.len().min(9) {
        format!("{}, …", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imza_core::ext::{subject_alt_name, AltName};
    use imza_core::KeyAlgorithm;
    use imza_testpki::{leaf_extensions, TestCa};

    fn leaf_with(names: &[&str]) -> Certificate {
        let ca = TestCa::root("CN=Peer Name Test CA", KeyAlgorithm::EcP256);
        let mut extensions = leaf_extensions();
        if !names.is_empty() {
            let alt: Vec<AltName> = names.iter().map(|n| n.parse().unwrap()).collect();
            extensions.push(subject_alt_name(&alt, false).unwrap());
        }
        let key = imza_core::key::software::SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        Certificate::from_der(ca.issue("CN=host.example.az", &[0x42], &key, extensions)).unwrap()
    }

    fn dns(name: &str) -> PeerName {
        PeerName::Dns(name.into())
    }

    #[test]
    fn dns_names_match_case_insensitively_and_with_a_trailing_dot() {
        let leaf = leaf_with(&["dns:www.example.az", "dns:mail.example.az"]);
        assert!(check_peer_name(&leaf, &dns("www.example.az")).is_ok());
        assert!(check_peer_name(&leaf, &dns("WWW.Example.AZ")).is_ok());
        assert!(check_peer_name(&leaf, &dns("mail.example.az.")).is_ok());
        match check_peer_name(&leaf, &dns("ftp.example.az")) {
            Err(ValidationError::Purpose {
                problem: PurposeProblem::NoMatchingName { presented },
                ..
            }) => assert!(presented.contains("DNS:www.example.az"), "{presented}"),
            other => panic!("expected no matching name, got {other:?}"),
        }
    }

    #[test]
    fn a_wildcard_covers_exactly_one_left_most_label() {
        let leaf = leaf_with(&["dns:*.example.az"]);
        assert!(check_peer_name(&leaf, &dns("www.example.az")).is_ok());
        assert!(check_peer_name(&leaf, &dns("a.b.example.az")).is_err());
        assert!(check_peer_name(&leaf, &dns("example.az")).is_err());
        assert!(check_peer_name(&leaf, &dns("wwwexample.az")).is_err());
    }

    #[test]
    fn wildcards_over_a_tld_or_inside_a_label_never_match() {
        assert!(!dns_matches("*.az", "example.az"));
        assert!(!dns_matches("w*.example.az", "www.example.az"));
        assert!(!dns_matches("www.*.az", "www.example.az"));
        assert!(!dns_matches("*.*.example.az", "a.b.example.az"));
        assert!(!dns_matches("*", "localhost"));
        assert!(dns_matches("*.Example.AZ", "x.example.az"));
    }

    #[test]
    fn a_reference_name_with_a_wildcard_or_empty_label_is_refused() {
        let leaf = leaf_with(&["dns:*.example.az"]);
        for bad in ["*.example.az", "a..example.az", "", "émail.az"] {
            let err = check_peer_name(&leaf, &dns(bad)).unwrap_err();
            assert!(
                err.to_string().contains("not a valid DNS name"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn ip_addresses_match_octets_of_their_own_family() {
        let leaf = leaf_with(&["ip:192.0.2.7", "ip:2001:db8::1"]);
        assert!(check_peer_name(&leaf, &PeerName::Ip("192.0.2.7".parse().unwrap())).is_ok());
        assert!(check_peer_name(&leaf, &PeerName::Ip("2001:db8::1".parse().unwrap())).is_ok());
        assert!(check_peer_name(&leaf, &PeerName::Ip("192.0.2.8".parse().unwrap())).is_err());
        assert!(
            check_peer_name(&leaf, &PeerName::Ip("::ffff:192.0.2.7".parse().unwrap())).is_err()
        );
        // An IP address is not matched against a dNSName spelling it.
        let leaf = leaf_with(&["dns:192.0.2.7"]);
        assert!(check_peer_name(&leaf, &PeerName::Ip("192.0.2.7".parse().unwrap())).is_err());
    }

    #[test]
    fn email_local_parts_are_case_sensitive_and_domains_are_not() {
        let leaf = leaf_with(&["email:Gunay@Example.az"]);
        let email = |s: &str| PeerName::Email(s.into());
        assert!(check_peer_name(&leaf, &email("Gunay@example.AZ")).is_ok());
        assert!(check_peer_name(&leaf, &email("gunay@example.az")).is_err());
        assert!(check_peer_name(&leaf, &email("Gunay@other.az")).is_err());
        assert!(check_peer_name(&leaf, &email("no-at-sign")).is_err());
    }

    #[test]
    fn no_subject_alt_name_means_no_match_even_when_the_cn_matches() {
        let leaf = leaf_with(&[]);
        let err = check_peer_name(&leaf, &dns("host.example.az")).unwrap_err();
        assert!(
            matches!(
                err,
                ValidationError::Purpose {
                    problem: PurposeProblem::NoSubjectAltName,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("no subjectAltName"), "{err}");
    }

    #[test]
    fn names_of_another_kind_do_not_match() {
        let leaf = leaf_with(&["email:host@example.az"]);
        assert!(check_peer_name(&leaf, &dns("example.az")).is_err());
    }
}
