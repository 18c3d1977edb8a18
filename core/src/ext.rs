//! Certificate and CRL extensions (RFC 5280 §4.2, §5.2, §5.3; ETSI EN 319 412-5 QCStatements),
//! built from x509-cert's types where they exist and from derived types quoting the ASN.1
//! where they do not.

use der::asn1::{Ia5String, Null, ObjectIdentifier, OctetString, PrintableString};
use der::{Any, Encode, Sequence};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;

use crate::{oids, CoreError};

/// Wraps a DER-encodable value as an extension.
pub fn extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, CoreError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(CoreError::der)?)
            .map_err(CoreError::der)?,
    })
}

/// Key identifier per RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256 of the
/// subjectPublicKey BIT STRING value (avoids SHA-1, same length as RFC 5280's method 1).
pub fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>, CoreError> {
    use der::Decode;
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|e| CoreError::malformed("public key", e))?;
    Ok(openssl::sha::sha256(spki.subject_public_key.raw_bytes())[..20].to_vec())
}

pub fn subject_key_identifier(key_id: &[u8]) -> Result<Extension, CoreError> {
    let ski = SubjectKeyIdentifier(OctetString::new(key_id).map_err(CoreError::der)?);
    extension(oids::EXT_SUBJECT_KEY_ID, false, &ski)
}

pub fn authority_key_identifier(key_id: &[u8]) -> Result<Extension, CoreError> {
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id).map_err(CoreError::der)?),
        ..Default::default()
    };
    extension(oids::EXT_AUTHORITY_KEY_ID, false, &aki)
}

/// basicConstraints, always critical here (RFC 5280 §4.2.1.9 requires it for CAs; for
/// end entities marking cA=false critical is what ETSI and CA/B profiles expect).
pub fn basic_constraints(ca: bool, path_len: Option<u8>) -> Result<Extension, CoreError> {
    let bc = BasicConstraints {
        ca,
        path_len_constraint: if ca { path_len } else { None },
    };
    extension(oids::EXT_BASIC_CONSTRAINTS, true, &bc)
}

/// keyUsage, critical (RFC 5280 §4.2.1.3: SHOULD be critical).
pub fn key_usage(flags: flagset::FlagSet<KeyUsages>) -> Result<Extension, CoreError> {
    extension(oids::EXT_KEY_USAGE, true, &KeyUsage(flags))
}

pub fn extended_key_usage(
    purposes: &[ObjectIdentifier],
    critical: bool,
) -> Result<Extension, CoreError> {
    extension(
        oids::EXT_EXTENDED_KEY_USAGE,
        critical,
        &ExtendedKeyUsage(purposes.to_vec()),
    )
}

pub fn certificate_policies(policies: &[ObjectIdentifier]) -> Result<Extension, CoreError> {
    let cp = CertificatePolicies(
        policies
            .iter()
            .map(|oid| PolicyInformation {
                policy_identifier: *oid,
                policy_qualifiers: None,
            })
            .collect(),
    );
    extension(oids::EXT_CERTIFICATE_POLICIES, false, &cp)
}

/// A URI general name (CRL distribution points, AIA, issuingDistributionPoint).
pub(crate) fn uri(url: &str) -> Result<GeneralName, CoreError> {
    Ok(GeneralName::UniformResourceIdentifier(
        Ia5String::new(url)
            .map_err(|_| CoreError::malformed("URL", format!("{url:?} is not ASCII")))?,
    ))
}

pub fn crl_distribution_points(url: &str) -> Result<Extension, CoreError> {
    let dp = CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
        reasons: None,
        crl_issuer: None,
    }]);
    extension(oids::EXT_CRL_DISTRIBUTION_POINTS, false, &dp)
}

/// authorityInfoAccess with an OCSP responder and/or the issuer's certificate URL.
pub fn authority_info_access(
    ocsp: Option<&str>,
    ca_issuers: Option<&str>,
) -> Result<Extension, CoreError> {
    let mut descriptions = Vec::new();
    if let Some(url) = ocsp {
        descriptions.push(AccessDescription {
            access_method: oids::AD_OCSP,
            access_location: uri(url)?,
        });
    }
    if let Some(url) = ca_issuers {
        descriptions.push(AccessDescription {
            access_method: oids::AD_CA_ISSUERS,
            access_location: uri(url)?,
        });
    }
    extension(
        oids::EXT_AUTHORITY_INFO_ACCESS,
        false,
        &AuthorityInfoAccessSyntax(descriptions),
    )
}

/// A subjectAltName entry as an operator writes it: `email:a@b.az`, `dns:host.gov.az`,
/// `uri:https://...`, `ip:192.0.2.1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AltName {
    Email(String),
    Dns(String),
    Uri(String),
    Ip(std::net::IpAddr),
}

impl AltName {
    pub fn kind(&self) -> &'static str {
        match self {
            AltName::Email(_) => "email",
            AltName::Dns(_) => "dns",
            AltName::Uri(_) => "uri",
            AltName::Ip(_) => "ip",
        }
    }

    fn general_name(&self) -> Result<GeneralName, CoreError> {
        let ia5 = |s: &str| {
            Ia5String::new(s)
                .map_err(|_| CoreError::malformed("subjectAltName", format!("{s:?} is not ASCII")))
        };
        Ok(match self {
            AltName::Email(s) => GeneralName::Rfc822Name(ia5(s)?),
            AltName::Dns(s) => GeneralName::DnsName(ia5(s)?),
            AltName::Uri(s) => GeneralName::UniformResourceIdentifier(ia5(s)?),
            AltName::Ip(ip) => {
                let bytes = match ip {
                    std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                    std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                GeneralName::IpAddress(OctetString::new(bytes).map_err(CoreError::der)?)
            }
        })
    }

    /// Reads the SAN forms imza writes; other GeneralName kinds give `None`.
    pub fn from_general_name(name: &GeneralName) -> Option<AltName> {
        match name {
            GeneralName::Rfc822Name(s) => Some(AltName::Email(s.to_string())),
            GeneralName::DnsName(s) => Some(AltName::Dns(s.to_string())),
            GeneralName::UniformResourceIdentifier(s) => Some(AltName::Uri(s.to_string())),
            GeneralName::IpAddress(o) => match o.as_bytes().len() {
                4 => <[u8; 4]>::try_from(o.as_bytes())
                    .ok()
                    .map(|b| AltName::Ip(b.into())),
                16 => <[u8; 16]>::try_from(o.as_bytes())
                    .ok()
                    .map(|b| AltName::Ip(b.into())),
                _ => None,
            },
            _ => None,
        }
    }
}

impl std::fmt::Display for AltName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AltName::Email(s) | AltName::Dns(s) | AltName::Uri(s) => {
                write!(f, "{}:{s}", self.kind())
            }
            AltName::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}

impl std::str::FromStr for AltName {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| CoreError::malformed("subjectAltName", format!("{s:?}: {reason}"));
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| bad("expected KIND:VALUE, e.g. email:ad@mygov.az"))?;
        let value = value.trim();
        if value.is_empty() || value.len() > 253 || !value.is_ascii() {
            return Err(bad("value must be 1 to 253 ASCII characters"));
        }
        match kind.to_ascii_lowercase().as_str() {
            "email" if value.contains('@') => Ok(AltName::Email(value.into())),
            "email" => Err(bad("an email address needs an @")),
            "dns"
                if value.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
                }) =>
            {
                Ok(AltName::Dns(value.to_ascii_lowercase()))
            }
            "dns" => Err(bad("not a DNS name")),
            "uri" => Ok(AltName::Uri(value.into())),
            "ip" => value
                .parse()
                .map(AltName::Ip)
                .map_err(|_| bad("not an IP address")),
            _ => Err(bad("kind must be email, dns, uri or ip")),
        }
    }
}

pub fn subject_alt_name(names: &[AltName], critical: bool) -> Result<Extension, CoreError> {
    let general: Result<Vec<_>, _> = names.iter().map(AltName::general_name).collect();
    extension(
        oids::EXT_SUBJECT_ALT_NAME,
        critical,
        &SubjectAltName(general?),
    )
}

/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): the extension value is NULL.
pub fn ocsp_no_check() -> Result<Extension, CoreError> {
    extension(oids::EXT_OCSP_NOCHECK, false, &Null)
}

/// ```text
/// QCStatement ::= SEQUENCE {
///     statementId   QC-STATEMENT.&id({SupportedStatements}),
///     statementInfo QC-STATEMENT.&Type({SupportedStatements}{@statementId}) OPTIONAL }
/// ```
/// (RFC 3739 §3.2.6; `QCStatements ::= SEQUENCE OF QCStatement`.)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct QcStatement {
    pub statement_id: ObjectIdentifier,
    pub statement_info: Option<Any>,
}

/// ```text
/// SemanticsInformation ::= SEQUENCE {
///     semanticsIdentifier        OBJECT IDENTIFIER OPTIONAL,
///     nameRegistrationAuthorities NameRegistrationAuthorities OPTIONAL }
/// ```
/// (RFC 3739 §3.2.6.1.)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SemanticsInformation {
    pub semantics_identifier: Option<ObjectIdentifier>,
}

/// ```text
/// PdsLocation ::= SEQUENCE { url IA5String, language PrintableString (SIZE(2)) }
/// ```
/// (ETSI EN 319 412-5 §4.3.4; `PdsLocations ::= SEQUENCE SIZE (1..MAX) OF PdsLocation`.)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PdsLocation {
    pub url: Ia5String,
    pub language: PrintableString,
}

/// What the qcStatements extension of a profile says (ETSI EN 319 412-5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QcStatementsSpec {
    /// id-etsi-qcs-QcCompliance: issued as a qualified certificate.
    pub compliance: bool,
    /// id-etsi-qcs-QcSSCD: the private key lives in a qualified signature creation device.
    pub sscd: bool,
    /// id-etsi-qcs-QcType: esign / eseal / web.
    pub qc_types: Vec<ObjectIdentifier>,
    /// id-etsi-qcs-QcCClegislation: countries whose law the qualified status follows
    /// (for qualified certificates outside the EU, ETSI EN 319 412-5 §4.2.4).
    pub cc_legislation: Vec<String>,
    /// id-etsi-qcs-QcPDS: PKI disclosure statement URL and language.
    pub pds: Vec<(String, String)>,
    /// id-qcs-pkixQCSyntax-v2 with a semantics identifier (ETSI EN 319 412-1 §5.1).
    pub semantics_identifier: Option<ObjectIdentifier>,
}

impl QcStatementsSpec {
    pub fn is_empty(&self) -> bool {
        *self == QcStatementsSpec::default()
    }

    /// The non-critical qcStatements extension (RFC 3739 §3.2.6).
    pub fn extension(&self) -> Result<Extension, CoreError> {
        let mut statements = Vec::new();
        if let Some(id) = self.semantics_identifier {
            let info = SemanticsInformation {
                semantics_identifier: Some(id),
            };
            statements.push(QcStatement {
                statement_id: oids::QCS_PKIX_SEMANTICS_V2,
                statement_info: Some(to_any(&info)?),
            });
        }
        if self.compliance {
            statements.push(QcStatement {
                statement_id: oids::QCS_ETSI_COMPLIANCE,
                statement_info: None,
            });
        }
        if self.sscd {
            statements.push(QcStatement {
                statement_id: oids::QCS_ETSI_SSCD,
                statement_info: None,
            });
        }
        if !self.qc_types.is_empty() {
            statements.push(QcStatement {
                statement_id: oids::QCS_ETSI_TYPE,
                statement_info: Some(to_any(&self.qc_types)?),
            });
        }
        if !self.pds.is_empty() {
            let locations: Result<Vec<PdsLocation>, CoreError> = self
                .pds
                .iter()
                .map(|(url, lang)| {
                    Ok(PdsLocation {
                        url: Ia5String::new(url).map_err(CoreError::der)?,
                        language: PrintableString::new(lang).map_err(CoreError::der)?,
                    })
                })
                .collect();
            statements.push(QcStatement {
                statement_id: oids::QCS_ETSI_PDS,
                statement_info: Some(to_any(&locations?)?),
            });
        }
        if !self.cc_legislation.is_empty() {
            let countries: Result<Vec<PrintableString>, CoreError> = self
                .cc_legislation
                .iter()
                .map(|c| PrintableString::new(c).map_err(CoreError::der))
                .collect();
            statements.push(QcStatement {
                statement_id: oids::QCS_ETSI_CC_LEGISLATION,
                statement_info: Some(to_any(&countries?)?),
            });
        }
        extension(oids::EXT_QC_STATEMENTS, false, &statements)
    }
}

fn to_any(value: &impl Encode) -> Result<Any, CoreError> {
    use der::Decode;
    Any::from_der(&value.to_der().map_err(CoreError::der)?).map_err(CoreError::der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_names_parse_and_print() {
        for s in [
            "email:ali@mygov.az",
            "dns:e-gov.az",
            "ip:127.0.0.1",
            "uri:https://e-gov.az/x",
        ] {
            assert_eq!(s.parse::<AltName>().unwrap().to_string(), s);
        }
        for bad in [
            "email:nobody",
            "dns:bad host",
            "ip:300.1.1.1",
            "fax:123",
            "dns:",
        ] {
            assert!(bad.parse::<AltName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn qc_statements_encode_in_order() {
        let spec = QcStatementsSpec {
            compliance: true,
            sscd: true,
            qc_types: vec![oids::QCS_ETSI_TYPE_ESIGN],
            ..Default::default()
        };
        let ext = spec.extension().unwrap();
        assert_eq!(ext.extn_id, oids::EXT_QC_STATEMENTS);
        assert!(!ext.critical);
        // SEQUENCE { SEQ{compliance}, SEQ{sscd}, SEQ{type, SEQ{esign}} }
        let der = ext.extn_value.as_bytes();
        assert_eq!(der[0], 0x30);
        assert!(der
            .windows(7)
            .any(|w| w == [0x06, 0x06, 0x04, 0x00, 0x8e, 0x46, 0x01]));
    }
}
