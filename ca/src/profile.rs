//! Certificate profiles: what a certificate of each kind contains (ETSI EN 319 412 parts 2, 3
//! and 5; RFC 5280 §4.2; RFC 3161 §2.3; RFC 6960 §4.2.2.2).
//!
//! The built-in profiles live as TOML in `ca/profiles/` (compiled in); a file
//! `DATA_DIR/profiles/NAME.toml` overrides the built-in of the same name or adds a new one.
//! The profile, not the CSR, decides the extensions: a CSR only proposes a subject, a key and
//! subjectAltNames, and those must be allowed here.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use const_oid::ObjectIdentifier;
use flagset::FlagSet;
use regex::Regex;
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::name::Name;

use imza_core::ext::{AltName, QcStatementsSpec};
use imza_core::name::{attribute_keyword, attribute_text};
use imza_core::{oids, KeyAlgorithm};

use crate::error::CaError;

/// The built-in profiles, `(name, TOML)`.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("root-ca", include_str!("../profiles/root-ca.toml")),
    ("sub-ca", include_str!("../profiles/sub-ca.toml")),
    (
        "citizen-auth",
        include_str!("../profiles/citizen-auth.toml"),
    ),
    (
        "citizen-sign",
        include_str!("../profiles/citizen-sign.toml"),
    ),
    ("device-auth", include_str!("../profiles/device-auth.toml")),
    ("org-seal", include_str!("../profiles/org-seal.toml")),
    ("tsa", include_str!("../profiles/tsa.toml")),
    ("ocsp", include_str!("../profiles/ocsp.toml")),
    ("tls-server", include_str!("../profiles/tls-server.toml")),
];

/// Longest profile file read from the data directory.
const MAX_PROFILE_BYTES: u64 = 64 * 1024;

/// A profile as written in TOML.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    pub name: String,
    pub description: String,
    /// Issues a CA certificate (basicConstraints cA=TRUE).
    #[serde(default)]
    pub ca: bool,
    /// pathLenConstraint for a CA profile.
    pub path_len: Option<u8>,
    /// keyUsage bits by RFC 5280 name (`digitalSignature`, `nonRepudiation`, `keyCertSign` ...).
    pub key_usage: Vec<String>,
    /// keyUsage bits added when the subject's key is RSA: a TLS server certificate's
    /// `keyEncipherment` (RFC 5280 §4.2.1.3; CA/Browser Forum TLS BR §7.1.2.7.11), which an EC
    /// key cannot do and must not claim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_usage_rsa: Vec<String>,
    /// extendedKeyUsage purposes by name (`clientAuth`, `timeStamping`, `OCSPSigning` ...) or OID.
    #[serde(default)]
    pub extended_key_usage: Vec<String>,
    #[serde(default)]
    pub extended_key_usage_critical: bool,
    /// certificatePolicies OIDs.
    #[serde(default)]
    pub policies: Vec<String>,
    pub validity_days: u32,
    pub max_validity_days: u32,
    /// `natural` or `legal`: the ETSI semantics identifier of the subject's identifier.
    pub semantics: Option<String>,
    #[serde(default)]
    pub ocsp_no_check: bool,
    #[serde(default = "yes")]
    pub include_crl_distribution_point: bool,
    #[serde(default = "yes")]
    pub include_authority_info_access: bool,
    /// Key types a subject may have; empty means all of imza's.
    #[serde(default)]
    pub allowed_keys: Vec<KeyAlgorithm>,
    pub subject: SubjectRules,
    #[serde(default)]
    pub san: SanRules,
    pub qc: Option<QcRules>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectRules {
    /// Attributes that must be present (by keyword: CN, SN, givenName, serialNumber, O, C ...).
    pub required: Vec<String>,
    /// Attributes that may be present as well.
    #[serde(default)]
    pub optional: Vec<String>,
    /// Regular expressions an attribute's value must match.
    #[serde(default)]
    pub patterns: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SanRules {
    /// subjectAltName kinds allowed: `email`, `dns`, `ip`, `uri`.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// At least one subjectAltName is required.
    #[serde(default)]
    pub required: bool,
}

#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct QcRules {
    #[serde(default)]
    pub compliance: bool,
    #[serde(default)]
    pub sscd: bool,
    /// `esign`, `eseal`, `web`.
    #[serde(default)]
    pub types: Vec<String>,
    /// QcCClegislation country codes.
    #[serde(default)]
    pub legislation: Vec<String>,
    /// PKI disclosure statements: `[{ url = "...", lang = "en" }]`.
    #[serde(default)]
    pub pds: Vec<PdsRule>,
}

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PdsRule {
    pub url: String,
    pub lang: String,
}

/// A checked profile, ready to issue with.
#[derive(Clone, Debug)]
pub struct Profile {
    pub spec: ProfileSpec,
    /// Where it came from: `built-in` or the override file's path.
    pub source: String,
    /// keyUsage bits for every key type.
    pub key_usage: FlagSet<KeyUsages>,
    /// keyUsage bits added for an RSA key (see [`ProfileSpec::key_usage_rsa`]).
    pub key_usage_rsa: FlagSet<KeyUsages>,
    pub extended_key_usage: Vec<ObjectIdentifier>,
    pub policies: Vec<ObjectIdentifier>,
    pub qc_statements: QcStatementsSpec,
    required: Vec<ObjectIdentifier>,
    allowed: Vec<ObjectIdentifier>,
    patterns: Vec<(ObjectIdentifier, String, Regex)>,
}

const KEY_USAGE_NAMES: &[(&str, KeyUsages)] = &[
    ("digitalSignature", KeyUsages::DigitalSignature),
    ("nonRepudiation", KeyUsages::NonRepudiation),
    ("contentCommitment", KeyUsages::NonRepudiation),
    ("keyEncipherment", KeyUsages::KeyEncipherment),
    ("dataEncipherment", KeyUsages::DataEncipherment),
    ("keyAgreement", KeyUsages::KeyAgreement),
    ("keyCertSign", KeyUsages::KeyCertSign),
    ("cRLSign", KeyUsages::CRLSign),
];

const EKU_NAMES: &[(&str, ObjectIdentifier)] = &[
    ("serverAuth", oids::KP_SERVER_AUTH),
    ("clientAuth", oids::KP_CLIENT_AUTH),
    ("codeSigning", oids::KP_CODE_SIGNING),
    ("emailProtection", oids::KP_EMAIL_PROTECTION),
    ("timeStamping", oids::KP_TIME_STAMPING),
    ("OCSPSigning", oids::KP_OCSP_SIGNING),
];

/// Subject attribute keywords a profile may name (see `imza_core::name`).
fn attribute_oid(keyword: &str) -> Option<ObjectIdentifier> {
    imza_core::name::attribute(keyword, "AZ")
        .ok()
        .map(|ava| ava.oid)
        .or_else(|| keyword.parse().ok())
}

impl Profile {
    /// Checks a spec and compiles its names, OIDs and patterns.
    pub fn compile(spec: ProfileSpec, source: impl Into<String>) -> Result<Profile, CaError> {
        let source = source.into();
        let bad = |reason: String| CaError::InvalidProfile {
            name: spec.name.clone(),
            reason,
        };
        let usages = |names: &[String]| {
            let mut usages = FlagSet::<KeyUsages>::default();
            for name in names {
                let (_, flag) = KEY_USAGE_NAMES
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .ok_or_else(|| bad(format!("unknown key usage {name:?}")))?;
                usages |= *flag;
            }
            Ok::<_, CaError>(usages)
        };
        let key_usage = usages(&spec.key_usage)?;
        if key_usage.is_empty() {
            return Err(bad("key_usage must name at least one usage".into()));
        }
        let key_usage_rsa = usages(&spec.key_usage_rsa)?;
        if key_usage_rsa.contains(KeyUsages::KeyCertSign)
            || key_usage_rsa.contains(KeyUsages::CRLSign)
        {
            return Err(bad(
                "keyCertSign and cRLSign belong in key_usage, not key_usage_rsa".into(),
            ));
        }
        if spec.ca != key_usage.contains(KeyUsages::KeyCertSign) {
            return Err(bad(
                "keyCertSign goes with ca = true and only with it".into()
            ));
        }
        let extended_key_usage = spec
            .extended_key_usage
            .iter()
            .map(|name| {
                EKU_NAMES
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, oid)| *oid)
                    .or_else(|| name.parse().ok())
                    .ok_or_else(|| bad(format!("unknown extended key usage {name:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let policies = spec
            .policies
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|_| bad(format!("policy {p:?} is not an OID")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if spec.validity_days == 0 || spec.validity_days > spec.max_validity_days {
            return Err(bad(
                "validity_days must be between 1 and max_validity_days".into()
            ));
        }
        let keyword = |k: &String| {
            attribute_oid(k).ok_or_else(|| bad(format!("unknown subject attribute {k:?}")))
        };
        let required = spec
            .subject
            .required
            .iter()
            .map(keyword)
            .collect::<Result<Vec<_>, _>>()?;
        let mut allowed = required.clone();
        for k in &spec.subject.optional {
            allowed.push(keyword(k)?);
        }
        let mut patterns = Vec::new();
        for (k, pattern) in &spec.subject.patterns {
            let regex = Regex::new(pattern).map_err(|e| bad(format!("pattern for {k}: {e}")))?;
            patterns.push((keyword(k)?, pattern.clone(), regex));
        }
        for kind in &spec.san.allowed {
            if !["email", "dns", "ip", "uri"].contains(&kind.as_str()) {
                return Err(bad(format!("unknown subjectAltName kind {kind:?}")));
            }
        }
        let qc_statements = match &spec.qc {
            None => QcStatementsSpec::default(),
            Some(qc) => QcStatementsSpec {
                compliance: qc.compliance,
                sscd: qc.sscd,
                qc_types: qc
                    .types
                    .iter()
                    .map(|t| match t.as_str() {
                        "esign" => Ok(oids::QCS_ETSI_TYPE_ESIGN),
                        "eseal" => Ok(oids::QCS_ETSI_TYPE_ESEAL),
                        "web" => Ok(oids::QCS_ETSI_TYPE_WEB),
                        other => Err(bad(format!("unknown QcType {other:?}"))),
                    })
                    .collect::<Result<_, _>>()?,
                cc_legislation: qc.legislation.clone(),
                pds: qc
                    .pds
                    .iter()
                    .map(|p| (p.url.clone(), p.lang.clone()))
                    .collect(),
                semantics_identifier: None,
            },
        };
        let semantics_identifier = match spec.semantics.as_deref() {
            None => None,
            Some("natural") => Some(oids::ETSI_SEMANTICS_NATURAL),
            Some("legal") => Some(oids::ETSI_SEMANTICS_LEGAL),
            Some(other) => {
                return Err(bad(format!(
                    "semantics must be natural or legal, not {other:?}"
                )))
            }
        };
        Ok(Profile {
            qc_statements: QcStatementsSpec {
                semantics_identifier,
                ..qc_statements
            },
            spec,
            source,
            key_usage,
            key_usage_rsa,
            extended_key_usage,
            policies,
            required,
            allowed,
            patterns,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The profile as TOML, for `imza profile show`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.spec).unwrap_or_default()
    }

    /// Refuses a subject that lacks a required attribute, has one the profile does not allow,
    /// or whose value does not match the profile's pattern.
    pub fn check_subject(&self, subject: &Name) -> Result<(), CaError> {
        let violation = |reason: String| CaError::ProfileViolation {
            profile: self.spec.name.clone(),
            reason,
        };
        let attributes: Vec<_> = subject.0.iter().flat_map(|rdn| rdn.0.iter()).collect();
        if attributes.is_empty() && !self.spec.san.required {
            return Err(violation("the subject is empty".into()));
        }
        for oid in &self.required {
            if !attributes.iter().any(|a| a.oid == *oid) {
                return Err(violation(format!(
                    "the subject must contain {}",
                    attribute_keyword(oid)
                )));
            }
        }
        for ava in &attributes {
            if !self.allowed.contains(&ava.oid) {
                return Err(violation(format!(
                    "the subject may not contain {} (allowed: {})",
                    attribute_keyword(&ava.oid),
                    self.allowed
                        .iter()
                        .map(attribute_keyword)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if attributes.iter().filter(|a| a.oid == ava.oid).count() > 1 {
                return Err(violation(format!(
                    "{} appears more than once",
                    attribute_keyword(&ava.oid)
                )));
            }
            let text = attribute_text(&ava.value).ok_or_else(|| {
                violation(format!("{} is not a string", attribute_keyword(&ava.oid)))
            })?;
            for (oid, pattern, regex) in &self.patterns {
                if *oid == ava.oid && !regex.is_match(&text) {
                    return Err(violation(format!(
                        "{}={text:?} does not match {pattern}",
                        attribute_keyword(oid)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Refuses subjectAltNames of kinds the profile does not allow.
    pub fn check_alt_names(&self, names: &[AltName]) -> Result<(), CaError> {
        let violation = |reason: String| CaError::ProfileViolation {
            profile: self.spec.name.clone(),
            reason,
        };
        for name in names {
            if !self.spec.san.allowed.iter().any(|k| k == name.kind()) {
                return Err(violation(format!(
                    "subjectAltName {name} is not allowed (allowed kinds: {})",
                    if self.spec.san.allowed.is_empty() {
                        "none".to_string()
                    } else {
                        self.spec.san.allowed.join(", ")
                    }
                )));
            }
        }
        if self.spec.san.required && names.is_empty() {
            return Err(violation(
                "at least one subjectAltName is required (--san)".into(),
            ));
        }
        if names.len() > 100 {
            return Err(violation("more than 100 subjectAltNames".into()));
        }
        Ok(())
    }

    /// The keyUsage bits of a certificate for a subject key of this type.
    pub fn key_usage_for(&self, algorithm: KeyAlgorithm) -> FlagSet<KeyUsages> {
        if algorithm.is_ec() {
            self.key_usage
        } else {
            self.key_usage | self.key_usage_rsa
        }
    }

    /// Refuses a key type the profile does not allow.
    pub fn check_key(&self, algorithm: KeyAlgorithm) -> Result<(), CaError> {
        if self.spec.allowed_keys.is_empty() || self.spec.allowed_keys.contains(&algorithm) {
            Ok(())
        } else {
            Err(CaError::ProfileViolation {
                profile: self.spec.name.clone(),
                reason: format!("key type {algorithm} is not allowed"),
            })
        }
    }

    /// The validity to issue with: the profile's default or the operator's, within its maximum.
    pub fn validity_days(&self, requested: Option<u32>) -> Result<u32, CaError> {
        match requested {
            None => Ok(self.spec.validity_days),
            Some(0) => Err(CaError::ProfileViolation {
                profile: self.spec.name.clone(),
                reason: "validity must be at least one day".into(),
            }),
            Some(d) if d > self.spec.max_validity_days => Err(CaError::ProfileViolation {
                profile: self.spec.name.clone(),
                reason: format!(
                    "validity {d} days exceeds the profile's maximum of {}",
                    self.spec.max_validity_days
                ),
            }),
            Some(d) => Ok(d),
        }
    }
}

/// The profiles available in a data directory: built-ins, overridden by `profiles/*.toml`.
#[derive(Clone, Debug)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Profile>,
}

impl ProfileSet {
    /// Only the built-in profiles.
    pub fn built_in() -> Result<ProfileSet, CaError> {
        let mut profiles = BTreeMap::new();
        for (name, text) in BUILT_IN {
            let spec: ProfileSpec = toml::from_str(text).map_err(|e| CaError::InvalidProfile {
                name: name.to_string(),
                reason: e.to_string(),
            })?;
            profiles.insert(name.to_string(), Profile::compile(spec, "built-in")?);
        }
        Ok(ProfileSet { profiles })
    }

    /// Built-ins plus every `*.toml` in `dir` (if it exists); a file's `name` must match its stem.
    pub fn load(dir: &Path) -> Result<ProfileSet, CaError> {
        let mut set = ProfileSet::built_in()?;
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(set),
            Err(e) => return Err(CaError::io(dir, e)),
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let bad = |reason: String| CaError::InvalidProfile {
                name: stem.clone(),
                reason: format!("{}: {reason}", path.display()),
            };
            // Read no further than the limit: the size a file claims is not trusted (a FIFO
            // or a device named *.toml has none).
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .and_then(|file| file.take(MAX_PROFILE_BYTES + 1).read_to_end(&mut bytes))
                .map_err(|e| CaError::io(&path, e))?;
            if bytes.len() as u64 > MAX_PROFILE_BYTES {
                return Err(bad(format!("larger than {MAX_PROFILE_BYTES} bytes")));
            }
            let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
            let spec: ProfileSpec = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
            if spec.name != stem {
                return Err(bad(format!(
                    "its name {:?} differs from the file name",
                    spec.name
                )));
            }
            let profile = Profile::compile(spec, path.display().to_string())?;
            set.profiles.insert(stem, profile);
        }
        Ok(set)
    }

    pub fn get(&self, name: &str) -> Result<&Profile, CaError> {
        self.profiles
            .get(name)
            .ok_or_else(|| CaError::UnknownProfile {
                name: name.to_string(),
                available: self.profiles.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imza_core::name::parse_dn;

    #[test]
    fn every_built_in_profile_compiles() {
        let set = ProfileSet::built_in().unwrap();
        for name in [
            "sub-ca",
            "citizen-auth",
            "citizen-sign",
            "device-auth",
            "org-seal",
            "tsa",
            "ocsp",
            "tls-server",
        ] {
            set.get(name).unwrap();
        }
        assert!(matches!(
            set.get("nope"),
            Err(CaError::UnknownProfile { .. })
        ));
    }

    #[test]
    fn only_an_rsa_tls_server_key_gets_key_encipherment_and_client_auth_keys_never_do() {
        let set = ProfileSet::built_in().unwrap();
        let tls = set.get("tls-server").unwrap();
        let rsa = tls.key_usage_for(KeyAlgorithm::Rsa2048);
        assert!(rsa.contains(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment));
        let ec = tls.key_usage_for(KeyAlgorithm::EcP256);
        assert_eq!(ec, FlagSet::from(KeyUsages::DigitalSignature));
        // TLS client authentication signs; it never needs keyEncipherment (RFC 5246 §7.4.8).
        for name in ["citizen-auth", "device-auth"] {
            let usage = set.get(name).unwrap().key_usage_for(KeyAlgorithm::Rsa2048);
            assert_eq!(usage, FlagSet::from(KeyUsages::DigitalSignature), "{name}");
        }
    }

    #[test]
    fn a_device_certificate_and_an_id_cards_authentication_certificate_share_no_policy() {
        // The portal tells the two logins apart by policy alone.
        let set = ProfileSet::built_in().unwrap();
        let device = &set.get("device-auth").unwrap().policies;
        let card = &set.get("citizen-auth").unwrap().policies;
        assert!(!device.is_empty() && !card.is_empty());
        assert!(
            device.iter().all(|p| !card.contains(p)),
            "{device:?} {card:?}"
        );
    }

    #[test]
    fn citizen_subject_rules_are_enforced() {
        let set = ProfileSet::built_in().unwrap();
        let p = set.get("citizen-sign").unwrap();
        let good =
            parse_dn("CN=Əliyev Günay,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-1AB2C3D,C=AZ")
                .unwrap();
        p.check_subject(&good).unwrap();
        for bad in [
            "CN=Əliyev Günay,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-1AB2,C=AZ",
            "CN=Əliyev Günay,givenName=Günay,SN=Əliyev,C=AZ",
            "CN=Əliyev Günay,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-1AB2C3D,O=X,C=AZ",
            "CN=Əliyev Günay,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-1AB2C3D,C=TR",
        ] {
            assert!(p.check_subject(&parse_dn(bad).unwrap()).is_err(), "{bad}");
        }
        assert!(p.check_alt_names(&["dns:x.az".parse().unwrap()]).is_err());
        p.check_alt_names(&["email:g@mygov.az".parse().unwrap()])
            .unwrap();
    }

    #[test]
    fn override_file_replaces_built_in_and_must_match_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let text = BUILT_IN
            .iter()
            .find(|(n, _)| *n == "tls-server")
            .unwrap()
            .1
            .replace("\nvalidity_days = 397\n", "\nvalidity_days = 90\n");
        std::fs::write(dir.path().join("tls-server.toml"), text).unwrap();
        let set = ProfileSet::load(dir.path()).unwrap();
        let overridden = &set.get("tls-server").unwrap().spec;
        assert_eq!(overridden.validity_days, 90);
        assert_eq!(
            overridden.max_validity_days, 397,
            "only the default changed"
        );
        assert!(set
            .get("tls-server")
            .unwrap()
            .source
            .ends_with("tls-server.toml"));

        std::fs::write(dir.path().join("other.toml"), "name = \"x\"").unwrap();
        assert!(ProfileSet::load(dir.path()).is_err());
    }
}
