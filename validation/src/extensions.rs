//! The certificate extensions path validation reads (RFC 5280 §4.2), decoded once when a
//! certificate is parsed. Which extensions are understood decides which critical ones are
//! "unknown" and reject the certificate (§4.2: a critical extension that is not recognised).

use der::asn1::ObjectIdentifier;
use der::Decode;
use imza_core::oids;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlDistributionPoints,
    ExtendedKeyUsage, FreshestCrl, KeyUsage, KeyUsages, NameConstraints, PolicyConstraints,
    PolicyMappings, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;

/// Most policies, mappings, names and distribution points read from one extension: a bound
/// on untrusted input.
pub(crate) const MAX_ITEMS: usize = 256;

/// What a certificate's extensions say, as validation needs it.
#[derive(Clone, Debug, Default)]
pub(crate) struct CertExtensions {
    pub basic_constraints: Option<BasicConstraints>,
    pub key_usage: Option<der::flagset::FlagSet<KeyUsages>>,
    /// The EKU purposes, and whether the extension is critical.
    pub extended_key_usage: Option<(Vec<ObjectIdentifier>, bool)>,
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
    pub subject_alt_names: Option<Vec<GeneralName>>,
    pub name_constraints: Option<NameConstraints>,
    /// The policy OIDs of certificatePolicies (qualifiers are not kept: RFC 9618 §5).
    pub policies: Option<Vec<ObjectIdentifier>>,
    /// (issuerDomainPolicy, subjectDomainPolicy) pairs.
    pub policy_mappings: Option<Vec<(ObjectIdentifier, ObjectIdentifier)>>,
    pub policy_constraints: Option<PolicyConstraints>,
    pub inhibit_any_policy: Option<u32>,
    pub crl_distribution_points: Option<Vec<DistributionPoint>>,
    pub freshest_crl: Option<Vec<DistributionPoint>>,
    pub ocsp_no_check: bool,
    /// Every extension marked critical, understood or not (for the criticality rules of
    /// RFC 5280 a conforming CA follows).
    pub critical: Vec<ObjectIdentifier>,
    /// Critical extensions this validator does not process.
    pub unknown_critical: Vec<ObjectIdentifier>,
    /// Extensions that do not decode, or appear twice.
    pub errors: Vec<String>,
}

/// Extensions that may be present, critical or not, without making the certificate
/// unusable: the ones processed here, and informational ones that do not restrict use.
const UNDERSTOOD: &[ObjectIdentifier] = &[
    oids::EXT_BASIC_CONSTRAINTS,
    oids::EXT_KEY_USAGE,
    oids::EXT_EXTENDED_KEY_USAGE,
    oids::EXT_SUBJECT_KEY_ID,
    oids::EXT_AUTHORITY_KEY_ID,
    oids::EXT_SUBJECT_ALT_NAME,
    oids::EXT_ISSUER_ALT_NAME,
    oids::EXT_NAME_CONSTRAINTS,
    oids::EXT_CERTIFICATE_POLICIES,
    oids::EXT_POLICY_MAPPINGS,
    oids::EXT_POLICY_CONSTRAINTS,
    oids::EXT_INHIBIT_ANY_POLICY,
    oids::EXT_CRL_DISTRIBUTION_POINTS,
    oids::EXT_FRESHEST_CRL,
    oids::EXT_AUTHORITY_INFO_ACCESS,
    oids::EXT_OCSP_NOCHECK,
    oids::EXT_QC_STATEMENTS,
];

fn decode<'a, T: Decode<'a>>(ext: &'a Extension, what: &str) -> Result<T, String> {
    T::from_der(ext.extn_value.as_bytes()).map_err(|e| format!("{what} extension: {e}"))
}

fn bounded<T>(items: Vec<T>, what: &str) -> Result<Vec<T>, String> {
    if items.len() > MAX_ITEMS {
        Err(format!(
            "{what} extension has {} entries (at most {MAX_ITEMS} read)",
            items.len()
        ))
    } else {
        Ok(items)
    }
}

/// Goes once through the extensions of a certificate or a CRL (`what`: how one is named in
/// messages). RFC 5280 §4.2 allows one instance of each: a repeated one is an error and is
/// not read again. Each other is handed to `read`, whose error joins `errors`. Returns the
/// critical ones not in `understood`.
pub(crate) fn read_extensions(
    extensions: &[Extension],
    what: &str,
    understood: &[ObjectIdentifier],
    errors: &mut Vec<String>,
    mut read: impl FnMut(&Extension) -> Result<(), String>,
) -> Vec<ObjectIdentifier> {
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    let mut unknown_critical = Vec::new();
    for ext in extensions {
        if seen.contains(&ext.extn_id) {
            errors.push(format!("{what} {} appears more than once", ext.extn_id));
            continue;
        }
        seen.push(ext.extn_id);
        if let Err(e) = read(ext) {
            errors.push(e);
        }
        if ext.critical && !understood.contains(&ext.extn_id) {
            unknown_critical.push(ext.extn_id);
        }
    }
    unknown_critical
}

impl CertExtensions {
    /// Whether the extension `oid` is present and marked critical.
    pub fn is_critical(&self, oid: ObjectIdentifier) -> bool {
        self.critical.contains(&oid)
    }

    pub fn decode(extensions: Option<&[Extension]>) -> CertExtensions {
        let mut out = CertExtensions::default();
        let mut errors = Vec::new();
        out.unknown_critical = read_extensions(
            extensions.unwrap_or_default(),
            "extension",
            UNDERSTOOD,
            &mut errors,
            |ext| out.read(ext),
        );
        out.errors = errors;
        out
    }

    fn read(&mut self, ext: &Extension) -> Result<(), String> {
        if ext.critical {
            self.critical.push(ext.extn_id);
        }
        match ext.extn_id {
            oids::EXT_BASIC_CONSTRAINTS => {
                self.basic_constraints = Some(decode(ext, "basicConstraints")?)
            }
            oids::EXT_KEY_USAGE => {
                self.key_usage = Some(decode::<KeyUsage>(ext, "keyUsage")?.0);
            }
            oids::EXT_EXTENDED_KEY_USAGE => {
                let eku: ExtendedKeyUsage = decode(ext, "extendedKeyUsage")?;
                self.extended_key_usage = Some((bounded(eku.0, "extendedKeyUsage")?, ext.critical));
            }
            oids::EXT_SUBJECT_KEY_ID => {
                let ski: SubjectKeyIdentifier = decode(ext, "subjectKeyIdentifier")?;
                self.subject_key_id = Some(ski.0.as_bytes().to_vec());
            }
            oids::EXT_AUTHORITY_KEY_ID => {
                let aki: AuthorityKeyIdentifier = decode(ext, "authorityKeyIdentifier")?;
                self.authority_key_id = aki.key_identifier.map(|k| k.as_bytes().to_vec());
            }
            oids::EXT_SUBJECT_ALT_NAME => {
                let san: SubjectAltName = decode(ext, "subjectAltName")?;
                self.subject_alt_names = Some(bounded(san.0, "subjectAltName")?);
            }
            oids::EXT_NAME_CONSTRAINTS => {
                let nc: NameConstraints = decode(ext, "nameConstraints")?;
                let count = nc.permitted_subtrees.as_ref().map_or(0, Vec::len)
                    + nc.excluded_subtrees.as_ref().map_or(0, Vec::len);
                if count > MAX_ITEMS {
                    return Err(format!(
                        "nameConstraints extension has {count} subtrees (at most {MAX_ITEMS} read)"
                    ));
                }
                self.name_constraints = Some(nc);
            }
            oids::EXT_CERTIFICATE_POLICIES => {
                let policies: CertificatePolicies = decode(ext, "certificatePolicies")?;
                let mut list: Vec<ObjectIdentifier> = Vec::new();
                for info in bounded(policies.0, "certificatePolicies")? {
                    // §4.2.1.4: a policy OID appears at most once.
                    if list.contains(&info.policy_identifier) {
                        return Err(format!(
                            "certificatePolicies extension lists {} twice",
                            info.policy_identifier
                        ));
                    }
                    list.push(info.policy_identifier);
                }
                self.policies = Some(list);
            }
            oids::EXT_POLICY_MAPPINGS => {
                let mappings: PolicyMappings = decode(ext, "policyMappings")?;
                self.policy_mappings = Some(
                    bounded(mappings.0, "policyMappings")?
                        .into_iter()
                        .map(|m| (m.issuer_domain_policy, m.subject_domain_policy))
                        .collect(),
                );
            }
            oids::EXT_POLICY_CONSTRAINTS => {
                let pc: PolicyConstraints = decode(ext, "policyConstraints")?;
                // §4.2.1.11: conforming CAs MUST NOT issue an empty policyConstraints.
                if pc.require_explicit_policy.is_none() && pc.inhibit_policy_mapping.is_none() {
                    return Err("policyConstraints extension is empty".into());
                }
                self.policy_constraints = Some(pc);
            }
            oids::EXT_INHIBIT_ANY_POLICY => {
                self.inhibit_any_policy = Some(decode::<u32>(ext, "inhibitAnyPolicy")?);
            }
            oids::EXT_CRL_DISTRIBUTION_POINTS => {
                let dps: CrlDistributionPoints = decode(ext, "cRLDistributionPoints")?;
                self.crl_distribution_points = Some(bounded(dps.0, "cRLDistributionPoints")?);
            }
            oids::EXT_FRESHEST_CRL => {
                let dps: FreshestCrl = decode(ext, "freshestCRL")?;
                self.freshest_crl = Some(bounded(dps.0, "freshestCRL")?);
            }
            oids::EXT_OCSP_NOCHECK => self.ocsp_no_check = true,
            _ => {}
        }
        Ok(())
    }
}
