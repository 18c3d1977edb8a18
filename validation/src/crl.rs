//! Certificate revocation lists (RFC 5280 §5) as revocation checking (§6.3) uses them: parsed
//! once, with the extensions that decide a CRL's scope (issuing distribution point, delta CRL
//! indicator, CRL number) decoded and the entries indexed by serial number, so checking a
//! certificate against a large CRL is one hash lookup.

use std::collections::HashMap;
use std::sync::Arc;

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use imza_core::oids;
use time::OffsetDateTime;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BaseCrlNumber, CrlNumber, CrlReason, FreshestCrl,
};
use x509_cert::ext::Extension;

use crate::extensions::read_extensions;
use crate::name::NameKey;
use crate::signature::{tbs_range_and_hash, Signed};
use crate::ValidationError;

/// One parsed CRL.
#[derive(Clone, Debug)]
pub struct Crl {
    der: Arc<Vec<u8>>,
    crl: CertificateList,
    tbs: std::ops::Range<usize>,
    tbs_hash: [u8; 32],
    pub(crate) issuer_key: NameKey,
    pub(crate) this_update: OffsetDateTime,
    pub(crate) next_update: Option<OffsetDateTime>,
    /// cRLNumber, big-endian without leading zeros.
    pub(crate) number: Option<Vec<u8>>,
    /// Whether cRLNumber is marked critical (§5.2.3: it is a non-critical extension).
    pub(crate) number_critical: bool,
    /// deltaCRLIndicator's BaseCRLNumber: present on delta CRLs only.
    pub(crate) delta_base: Option<Vec<u8>>,
    pub(crate) idp: Option<IssuingDistributionPoint>,
    /// The IDP extension's DER, to compare scopes (§6.3.3 (c)(2)).
    pub(crate) idp_der: Option<Vec<u8>>,
    pub(crate) authority_key_id: Option<Vec<u8>>,
    pub(crate) has_freshest_crl: bool,
    /// Critical CRL extensions not understood: the CRL must not be used (§5.2).
    pub(crate) unknown_critical: Vec<ObjectIdentifier>,
    /// Extensions or entries that do not decode.
    pub(crate) errors: Vec<String>,
    entries: Vec<CrlEntry>,
    by_serial: HashMap<Vec<u8>, Vec<usize>>,
    /// The first critical entry extension not understood, if any entry has one.
    unknown_critical_entry: Option<ObjectIdentifier>,
}

/// One revokedCertificates entry, with its entry extensions read.
#[derive(Clone, Debug)]
pub(crate) struct CrlEntry {
    /// The issuer of the revoked certificate: the CRL issuer, or for an indirect CRL the
    /// name the certificateIssuer entry extensions set (§5.3.3).
    pub issuer: NameKey,
    pub revoked_at: OffsetDateTime,
    pub reason: Option<CrlReason>,
    /// Critical entry extensions not understood.
    pub unknown_critical: Vec<ObjectIdentifier>,
}

/// Entry extensions understood (§5.3): reasonCode, holdInstructionCode, invalidityDate,
/// certificateIssuer.
const HOLD_INSTRUCTION_CODE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.23");

/// CRL extensions understood (§5.2), critical or not.
const UNDERSTOOD: &[ObjectIdentifier] = &[
    oids::EXT_AUTHORITY_KEY_ID,
    oids::EXT_ISSUER_ALT_NAME,
    oids::EXT_CRL_NUMBER,
    oids::EXT_DELTA_CRL_INDICATOR,
    oids::EXT_ISSUING_DISTRIBUTION_POINT,
    oids::EXT_FRESHEST_CRL,
    oids::EXT_AUTHORITY_INFO_ACCESS,
];

fn trimmed(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default().to_vec()
}

/// Compares two unsigned big-endian numbers without leading zeros.
pub(crate) fn cmp_number(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Crl {
    pub fn from_der(der: impl Into<Vec<u8>>) -> Result<Crl, ValidationError> {
        let der = der.into();
        let crl = CertificateList::from_der(&der).or_else(|e| {
            crate::legacy_time::clamp_pre_1970_times(&der)
                .and_then(|copy| CertificateList::from_der(&copy).ok())
                .ok_or_else(|| ValidationError::malformed("CRL", e))
        })?;
        let (tbs, tbs_hash) =
            tbs_range_and_hash(&der).map_err(|e| ValidationError::malformed("CRL", e))?;
        let list = &crl.tbs_cert_list;
        let issuer_key = NameKey::new(&list.issuer);
        let mut parsed = Crl {
            issuer_key: issuer_key.clone(),
            this_update: imza_core::clock::from_x509_time(&list.this_update),
            next_update: list
                .next_update
                .as_ref()
                .map(imza_core::clock::from_x509_time),
            number: None,
            number_critical: false,
            delta_base: None,
            idp: None,
            idp_der: None,
            authority_key_id: None,
            has_freshest_crl: false,
            unknown_critical: Vec::new(),
            errors: Vec::new(),
            entries: Vec::new(),
            by_serial: HashMap::new(),
            unknown_critical_entry: None,
            tbs,
            tbs_hash,
            der: Arc::new(Vec::new()),
            crl: CertificateList {
                tbs_cert_list: x509_cert::crl::TbsCertList {
                    revoked_certificates: None,
                    crl_extensions: None,
                    ..crl.tbs_cert_list.clone()
                },
                signature_algorithm: crl.signature_algorithm.clone(),
                signature: crl.signature.clone(),
            },
        };
        let mut errors = Vec::new();
        parsed.unknown_critical = read_extensions(
            list.crl_extensions.as_deref().unwrap_or_default(),
            "CRL extension",
            UNDERSTOOD,
            &mut errors,
            |ext| parsed.read_extension(ext),
        );
        parsed.errors = errors;
        let indirect = parsed.idp.as_ref().is_some_and(|idp| idp.indirect_crl);
        let mut current_issuer = issuer_key;
        for revoked in list.revoked_certificates.as_deref().unwrap_or_default() {
            let mut entry = CrlEntry {
                issuer: current_issuer.clone(),
                revoked_at: imza_core::clock::from_x509_time(&revoked.revocation_date),
                reason: None,
                unknown_critical: Vec::new(),
            };
            for ext in revoked.crl_entry_extensions.as_deref().unwrap_or_default() {
                match ext.extn_id {
                    oids::EXT_CRL_REASON => match CrlReason::from_der(ext.extn_value.as_bytes()) {
                        Ok(reason) => entry.reason = Some(reason),
                        Err(e) => parsed.errors.push(format!("CRL entry reasonCode: {e}")),
                    },
                    oids::EXT_CERTIFICATE_ISSUER if indirect => {
                        match Vec::<GeneralName>::from_der(ext.extn_value.as_bytes()) {
                            Ok(names) => match names.iter().find_map(|n| match n {
                                GeneralName::DirectoryName(name) => Some(NameKey::new(name)),
                                _ => None,
                            }) {
                                Some(name) => {
                                    current_issuer = name.clone();
                                    entry.issuer = name;
                                }
                                None => parsed.errors.push(
                                    "CRL entry certificateIssuer has no directoryName".into(),
                                ),
                            },
                            Err(e) => parsed
                                .errors
                                .push(format!("CRL entry certificateIssuer: {e}")),
                        }
                    }
                    oids::EXT_INVALIDITY_DATE | HOLD_INSTRUCTION_CODE => {}
                    other if ext.critical => entry.unknown_critical.push(other),
                    _ => {}
                }
            }
            if parsed.unknown_critical_entry.is_none() {
                parsed.unknown_critical_entry = entry.unknown_critical.first().copied();
            }
            let index = parsed.entries.len();
            parsed
                .by_serial
                .entry(revoked.serial_number.as_bytes().to_vec())
                .or_default()
                .push(index);
            parsed.entries.push(entry);
        }
        parsed.der = Arc::new(der);
        parsed.crl = crl;
        Ok(parsed)
    }

    fn read_extension(&mut self, ext: &Extension) -> Result<(), String> {
        let value = ext.extn_value.as_bytes();
        match ext.extn_id {
            oids::EXT_CRL_NUMBER => {
                let n = CrlNumber::from_der(value).map_err(|e| format!("cRLNumber: {e}"))?;
                self.number = Some(trimmed(n.0.as_bytes()));
                self.number_critical = ext.critical;
            }
            oids::EXT_DELTA_CRL_INDICATOR => {
                let n = BaseCrlNumber::from_der(value)
                    .map_err(|e| format!("deltaCRLIndicator: {e}"))?;
                self.delta_base = Some(trimmed(n.0.as_bytes()));
            }
            oids::EXT_ISSUING_DISTRIBUTION_POINT => {
                let idp = IssuingDistributionPoint::from_der(value)
                    .map_err(|e| format!("issuingDistributionPoint: {e}"))?;
                self.idp_der = Some(idp.to_der().unwrap_or_else(|_| value.to_vec()));
                self.idp = Some(idp);
            }
            oids::EXT_AUTHORITY_KEY_ID => {
                let aki = AuthorityKeyIdentifier::from_der(value)
                    .map_err(|e| format!("authorityKeyIdentifier: {e}"))?;
                self.authority_key_id = aki.key_identifier.map(|k| k.as_bytes().to_vec());
            }
            oids::EXT_FRESHEST_CRL => {
                FreshestCrl::from_der(value).map_err(|e| format!("freshestCRL: {e}"))?;
                self.has_freshest_crl = true;
            }
            _ => {}
        }
        Ok(())
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn inner(&self) -> &CertificateList {
        &self.crl
    }

    /// The issuer as one RFC 4514-style line.
    pub fn issuer_text(&self) -> String {
        imza_core::name::format_dn(&self.crl.tbs_cert_list.issuer)
    }

    /// Whether this is a delta CRL (deltaCRLIndicator, §5.2.4).
    pub fn is_delta(&self) -> bool {
        self.delta_base.is_some()
    }

    pub fn this_update(&self) -> OffsetDateTime {
        self.this_update
    }

    pub fn next_update(&self) -> Option<OffsetDateTime> {
        self.next_update
    }

    pub(crate) fn shared_der(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.der)
    }

    /// The entry for the certificate with `serial` issued by `issuer`, if listed.
    pub(crate) fn entry(&self, serial: &[u8], issuer: &NameKey) -> Option<&CrlEntry> {
        self.by_serial
            .get(serial)?
            .iter()
            .filter_map(|&i| self.entries.get(i))
            .find(|e| &e.issuer == issuer)
    }

    /// Whether any entry carries a critical extension this validator does not understand.
    pub(crate) fn has_unknown_critical_entry_extension(&self) -> Option<ObjectIdentifier> {
        self.unknown_critical_entry
    }
}

impl Signed for Crl {
    fn signature_algorithm(&self) -> &spki::AlgorithmIdentifierOwned {
        &self.crl.signature_algorithm
    }

    fn tbs_bytes(&self) -> &[u8] {
        self.der.get(self.tbs.clone()).unwrap_or_default()
    }

    fn tbs_hash(&self) -> &[u8; 32] {
        &self.tbs_hash
    }

    fn signature_bytes(&self) -> &[u8] {
        self.crl.signature.raw_bytes()
    }
}

/// Every CRL in `bytes`: one DER CRL, or any number of PEM `X509 CRL` blocks.
pub fn read_crls(bytes: &[u8]) -> Result<Vec<Crl>, ValidationError> {
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let text =
            std::str::from_utf8(bytes).map_err(|e| ValidationError::malformed("PEM CRLs", e))?;
        let blocks = imza_core::pem::all_blocks(text, "CRL")
            .map_err(|e| ValidationError::malformed("PEM CRLs", e))?;
        blocks
            .into_iter()
            .filter(|(label, _)| label == "X509 CRL")
            .map(|(_, der)| Crl::from_der(der))
            .collect()
    } else {
        Ok(vec![Crl::from_der(bytes.to_vec())?])
    }
}
