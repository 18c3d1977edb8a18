//! Name constraints (RFC 5280 §4.2.1.10, §6.1.3 (b)-(c), §6.1.4 (g)): the permitted and
//! excluded subtrees CAs on the path impose on the names of the certificates below them —
//! directoryName, rfc822Name (also the emailAddress attribute of a subject DN), dNSName,
//! uniformResourceIdentifier and iPAddress.
//!
//! Instead of intersecting permitted subtrees, each CA's permitted set is kept as one layer and
//! a name must fall within every layer that constrains its name form: the same test, without
//! computing intersections of subtrees.
//!
//! A wildcard dNSName (`*.example.com`) is checked as the set of names it stands for: it is
//! permitted only when all of them are, and refused when any of them is excluded (excluding
//! `a.example.com` excludes `*.example.com`). An rfc822Name that is not a mailbox cannot be
//! placed inside or outside a subtree, so it is refused whenever rfc822Name constraints apply.

use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::NameConstraints;

use crate::name::NameKey;
use crate::{Certificate, NameConstraintViolation};

/// Most layers and subtrees kept: bounded by the path length and the extension size
/// limits, stated here as well for clarity.
const MAX_SUBTREES: usize = 4096;

#[derive(Clone, Debug, Default)]
pub(crate) struct NameConstraintState {
    permitted: Vec<Vec<GeneralSubtree>>,
    excluded: Vec<GeneralSubtree>,
}

/// A name of the certificate under test, in the form constraints are compared with.
enum Subject<'a> {
    General(&'a GeneralName),
    /// The emailAddress attribute of the subject DN, checked as an rfc822Name.
    Email(String),
}

impl NameConstraintState {
    /// §6.1.4 (g): adds certificate i's constraints.
    pub fn add(&mut self, constraints: &NameConstraints) -> Result<(), String> {
        for subtree in constraints
            .permitted_subtrees
            .iter()
            .flatten()
            .chain(constraints.excluded_subtrees.iter().flatten())
        {
            // §4.2.1.10: minimum MUST be zero and maximum MUST be absent.
            if subtree.minimum != 0 || subtree.maximum.is_some() {
                return Err(
                    "nameConstraints subtree with minimum or maximum (not allowed by RFC 5280 §4.2.1.10)"
                        .into(),
                );
            }
        }
        if let Some(permitted) = &constraints.permitted_subtrees {
            self.permitted.push(permitted.clone());
        }
        if let Some(excluded) = &constraints.excluded_subtrees {
            self.excluded.extend(excluded.iter().cloned());
        }
        let total: usize = self.permitted.iter().map(Vec::len).sum::<usize>() + self.excluded.len();
        if total > MAX_SUBTREES {
            return Err(format!(
                "more than {MAX_SUBTREES} name-constraint subtrees on the path"
            ));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.permitted.is_empty() && self.excluded.is_empty()
    }

    /// §6.1.3 (b)-(c): the subject DN, its emailAddress attributes and every subjectAltName
    /// of `cert` must be within the permitted subtrees and outside the excluded ones.
    pub fn check(&self, cert: &Certificate) -> Result<(), NameConstraintViolation> {
        if self.is_empty() {
            return Ok(());
        }
        let subject = cert.subject();
        let subject_key = cert.subject_key();
        if !subject_key.is_empty() {
            let directory_name = GeneralName::DirectoryName(subject.clone());
            self.check_name(&Subject::General(&directory_name), Some(subject_key))?;
            for email in
                imza_core::name::attribute_values(subject, imza_core::oids::AT_EMAIL_ADDRESS)
            {
                self.check_name(&Subject::Email(email), None)?;
            }
        }
        for name in cert.ext.subject_alt_names.iter().flatten() {
            self.check_name(&Subject::General(name), None)?;
        }
        Ok(())
    }

    fn check_name(
        &self,
        name: &Subject<'_>,
        dn_key: Option<&NameKey>,
    ) -> Result<(), NameConstraintViolation> {
        let form = form_of(name);
        let of_form = |s: &&GeneralSubtree| form_of_general(&s.base) == form;
        if let Some(address) = email_address(name) {
            let constrained = self.permitted.iter().flatten().any(|s| of_form(&s))
                || self.excluded.iter().any(|s| of_form(&s));
            if constrained && !is_mailbox(address) {
                return Err(NameConstraintViolation::MalformedEmail {
                    address: address.to_string(),
                });
            }
        }
        for layer in &self.permitted {
            let mut same_form = layer.iter().filter(of_form);
            let mut constrained = false;
            let mut within = false;
            for subtree in same_form.by_ref() {
                constrained = true;
                if matches(name, dn_key, &subtree.base)? {
                    within = true;
                    break;
                }
            }
            if constrained && !within {
                return Err(NameConstraintViolation::NotPermitted {
                    name: describe(name),
                });
            }
        }
        for subtree in self.excluded.iter().filter(of_form) {
            if matches(name, dn_key, &subtree.base)? {
                return Err(NameConstraintViolation::Excluded {
                    name: describe(name),
                });
            }
            if let (Subject::General(GeneralName::DnsName(n)), GeneralName::DnsName(excluded)) =
                (name, &subtree.base)
            {
                if wildcard_meets(n.as_str(), excluded.as_str()) {
                    return Err(NameConstraintViolation::WildcardExcluded {
                        name: n.to_string(),
                        excluded: excluded.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The address of an rfc822Name or a subject emailAddress.
fn email_address<'a>(name: &'a Subject<'_>) -> Option<&'a str> {
    match name {
        Subject::Email(address) => Some(address),
        Subject::General(GeneralName::Rfc822Name(address)) => Some(address.as_str()),
        Subject::General(_) => None,
    }
}

/// Whether `address` is a Mailbox (RFC 5321 §4.1.2, which RFC 5280 §4.2.1.6 refers to):
/// a dot-atom or quoted-string local part, `@`, and a domain of LDH labels or an address
/// literal in brackets.
fn is_mailbox(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let local_ok = match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        Some(quoted) => quoted.bytes().all(|b| (b' '..=b'~').contains(&b)),
        None => {
            !local.is_empty()
                && local.split('.').all(|atom| {
                    !atom.is_empty()
                        && atom.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
                        })
                })
        }
    };
    let domain_ok = if domain.starts_with('[') {
        domain.len() > 2 && domain.ends_with(']')
    } else {
        !domain.is_empty()
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    local_ok && domain_ok
}

/// Whether the wildcard dNSName `name` (`*.example.com`: any one label, then example.com)
/// stands for a name within the excluded subtree `constraint` that the literal comparison
/// does not see: a constraint of exactly one label more than the wildcard's base
/// (`a.example.com`). Constraints at or above the base already match the literal name, and
/// deeper ones (`b.a.example.com`, `.a.example.com`) hold no name of the wildcard's set.
fn wildcard_meets(name: &str, constraint: &str) -> bool {
    let Some(base) = name.trim_end_matches('.').strip_prefix("*.") else {
        return false;
    };
    let constraint = constraint.trim_end_matches('.');
    match constraint.split_once('.') {
        Some((label, rest)) => !label.is_empty() && label != "*" && rest.eq_ignore_ascii_case(base),
        None => false,
    }
}

fn form_of_general(name: &GeneralName) -> u8 {
    match name {
        GeneralName::OtherName(_) => 0,
        GeneralName::Rfc822Name(_) => 1,
        GeneralName::DnsName(_) => 2,
        GeneralName::DirectoryName(_) => 4,
        GeneralName::EdiPartyName(_) => 5,
        GeneralName::UniformResourceIdentifier(_) => 6,
        GeneralName::IpAddress(_) => 7,
        GeneralName::RegisteredId(_) => 8,
    }
}

fn form_of(name: &Subject<'_>) -> u8 {
    match name {
        Subject::General(g) => form_of_general(g),
        Subject::Email(_) => 1,
    }
}

fn describe(name: &Subject<'_>) -> String {
    match name {
        Subject::Email(e) => format!("subject emailAddress {e}"),
        Subject::General(GeneralName::DirectoryName(n)) => {
            format!("directoryName {}", imza_core::name::format_dn(n))
        }
        Subject::General(g) => match imza_core::ext::AltName::from_general_name(g) {
            Some(alt) => alt.to_string(),
            None => format!("a name of form [{}]", form_of_general(g)),
        },
    }
}

/// Whether `name` lies within the subtree `base` (both of the same form).
fn matches(
    name: &Subject<'_>,
    dn_key: Option<&NameKey>,
    base: &GeneralName,
) -> Result<bool, NameConstraintViolation> {
    Ok(match (name, base) {
        (Subject::General(GeneralName::DirectoryName(n)), GeneralName::DirectoryName(b)) => {
            let key = dn_key.cloned().unwrap_or_else(|| NameKey::new(n));
            key.is_within(&NameKey::new(b))
        }
        (Subject::General(GeneralName::Rfc822Name(n)), GeneralName::Rfc822Name(b)) => {
            email_matches(n.as_str(), b.as_str())
        }
        (Subject::Email(n), GeneralName::Rfc822Name(b)) => email_matches(n, b.as_str()),
        (Subject::General(GeneralName::DnsName(n)), GeneralName::DnsName(b)) => {
            dns_matches(n.as_str(), b.as_str())
        }
        (
            Subject::General(GeneralName::UniformResourceIdentifier(n)),
            GeneralName::UniformResourceIdentifier(b),
        ) => match uri_host(n.as_str()) {
            Some(host) => host_matches(host, b.as_str()),
            // §4.2.1.10: a URI without a host cannot be checked against the constraint.
            None => false,
        },
        (Subject::General(GeneralName::IpAddress(n)), GeneralName::IpAddress(b)) => {
            ip_matches(n.as_bytes(), b.as_bytes())?
        }
        (Subject::General(_), _) => {
            return Err(NameConstraintViolation::Unevaluable {
                form: match base {
                    GeneralName::OtherName(_) => "otherName",
                    GeneralName::EdiPartyName(_) => "ediPartyName",
                    GeneralName::RegisteredId(_) => "registeredID",
                    _ => "these",
                },
            })
        }
        (Subject::Email(_), _) => false,
    })
}

fn email_matches(address: &str, constraint: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    if constraint.contains('@') {
        // A particular mailbox: the local part exactly, the host case-insensitively.
        return match constraint.rsplit_once('@') {
            Some((c_local, c_domain)) => local == c_local && domain.eq_ignore_ascii_case(c_domain),
            None => false,
        };
    }
    host_matches(domain, constraint)
}

/// rfc822Name and URI host constraints: ".example.com" is any host below example.com,
/// "example.com" is that host only.
fn host_matches(host: &str, constraint: &str) -> bool {
    let host = host.trim_end_matches('.');
    if constraint.starts_with('.') {
        host.len() > constraint.len()
            && host
                .get(host.len() - constraint.len()..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(constraint))
    } else {
        host.eq_ignore_ascii_case(constraint.trim_end_matches('.'))
    }
}

/// dNSName: the constraint plus zero or more labels on the left (§4.2.1.10); a leading dot,
/// common in practice, asks for at least one more label.
fn dns_matches(name: &str, constraint: &str) -> bool {
    let name = name.trim_end_matches('.');
    let constraint = constraint.trim_end_matches('.');
    if constraint.is_empty() {
        return true;
    }
    if constraint.starts_with('.') {
        return host_matches(name, constraint);
    }
    if name.eq_ignore_ascii_case(constraint) {
        return true;
    }
    name.len() > constraint.len() + 1
        && name
            .get(name.len() - constraint.len() - 1..)
            .is_some_and(|tail| {
                tail.starts_with('.')
                    && tail
                        .get(1..)
                        .is_some_and(|t| t.eq_ignore_ascii_case(constraint))
            })
}

/// The host of `scheme://[userinfo@]host[:port]/...`, without brackets for IPv6.
fn uri_host(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

fn ip_matches(address: &[u8], constraint: &[u8]) -> Result<bool, NameConstraintViolation> {
    if constraint.len() != 8 && constraint.len() != 32 {
        return Err(NameConstraintViolation::BadIpConstraint {
            octets: constraint.len(),
        });
    }
    if address.len() * 2 != constraint.len() {
        return Ok(false);
    }
    let (net, mask) = constraint.split_at(address.len());
    Ok(address
        .iter()
        .zip(net)
        .zip(mask)
        .all(|((a, n), m)| a & m == n & m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_constraints_add_labels_on_the_left_only() {
        assert!(dns_matches("testcertificates.gov", "testcertificates.gov"));
        assert!(dns_matches(
            "www.TestCertificates.gov",
            "testcertificates.gov"
        ));
        assert!(!dns_matches(
            "wwwtestcertificates.gov",
            "testcertificates.gov"
        ));
        assert!(!dns_matches(
            "testcertificates.gov",
            ".testcertificates.gov"
        ));
        assert!(dns_matches(
            "a.testcertificates.gov",
            ".testcertificates.gov"
        ));
    }

    #[test]
    fn email_constraints_mailbox_host_and_domain() {
        assert!(email_matches(
            "Test30EE@testcertificates.gov",
            "testcertificates.gov"
        ));
        assert!(!email_matches(
            "a@mail.testcertificates.gov",
            "testcertificates.gov"
        ));
        assert!(email_matches(
            "a@mail.testcertificates.gov",
            ".testcertificates.gov"
        ));
        assert!(email_matches("root@example.com", "root@EXAMPLE.com"));
        assert!(!email_matches("other@example.com", "root@example.com"));
    }

    #[test]
    fn a_wildcard_meets_an_excluded_name_one_label_below_its_base() {
        assert!(wildcard_meets("*.example.com", "a.example.com"));
        assert!(wildcard_meets("*.Example.com.", "A.EXAMPLE.COM"));
        // At or above the base, the literal comparison already refuses it.
        assert!(!wildcard_meets("*.example.com", "example.com"));
        // Deeper names are not among the names the wildcard stands for.
        assert!(!wildcard_meets("*.example.com", "b.a.example.com"));
        assert!(!wildcard_meets("*.example.com", ".a.example.com"));
        assert!(!wildcard_meets("*.example.com", "a.example.org"));
        assert!(!wildcard_meets("www.example.com", "a.example.com"));
    }

    #[test]
    fn mailboxes_are_local_part_at_domain() {
        for good in [
            "user@example.com",
            "first.last+tag@mail.example.com",
            "\"quoted user\"@example.com",
            "root@[192.0.2.1]",
        ] {
            assert!(is_mailbox(good), "{good}");
        }
        for bad in [
            "",
            "user",
            "@example.com",
            "user@",
            "a b@example.com",
            "a@b@example.com",
            "user@exa mple.com",
            "user@.example.com",
            "user@-example.com",
            "first..last@example.com",
        ] {
            assert!(!is_mailbox(bad), "{bad}");
        }
    }

    #[test]
    fn uri_hosts_and_ip_ranges() {
        assert_eq!(
            uri_host("http://user@host.example:80/x"),
            Some("host.example")
        );
        assert_eq!(uri_host("http://[::1]:443/"), Some("::1"));
        assert_eq!(uri_host("urn:isbn:123"), None);
        assert!(host_matches(
            "host.testcertificates.gov",
            ".testcertificates.gov"
        ));
        assert!(!host_matches(
            "testcertificates.gov",
            ".testcertificates.gov"
        ));
        assert!(ip_matches(&[192, 168, 1, 7], &[192, 168, 0, 0, 255, 255, 0, 0]).unwrap());
        assert!(!ip_matches(&[10, 0, 0, 1], &[192, 168, 0, 0, 255, 255, 0, 0]).unwrap());
        assert!(ip_matches(&[1; 16], &[192, 168, 0, 0, 255, 255, 0, 0]).is_ok_and(|m| !m));
    }
}
