//! Building and signing X.509 v2 CRLs (RFC 5280 §5) with any [`SigningKey`].
//!
//! Carries the CRL number and authority key identifier (§5.2.1, §5.2.3), nextUpdate (§5.1.2.5),
//! and per entry the reason code (§5.3.1, omitted for `unspecified` as the RFC recommends) and
//! the invalidity date (§5.3.2). A CRL that is one partition of its issuer's (a shard) carries
//! a critical issuingDistributionPoint naming the distribution point it covers (§5.2.5).

use der::asn1::{BitString, Uint};
use der::Encode;
use time::OffsetDateTime;
use x509_cert::certificate::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::DistributionPointName;
use x509_cert::ext::pkix::{CrlNumber, CrlReason};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::clock::{generalized_time, x509_time};
use crate::ext::{authority_key_identifier, extension};
use crate::{oids, CoreError, SigningKey};

/// One revoked certificate as the CRL lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    pub serial: Vec<u8>,
    pub revoked_at: OffsetDateTime,
    pub reason: Option<CrlReason>,
    pub invalidity_date: Option<OffsetDateTime>,
}

/// What a CRL says apart from its entries.
pub struct CrlFields<'a> {
    pub issuer: &'a Name,
    /// The issuing CA's subject key identifier, repeated as the CRL's AKI.
    pub issuer_key_id: &'a [u8],
    /// Monotonically increasing CRL number (RFC 5280 §5.2.3).
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// For a CRL that covers one distribution point (a shard): the URI certificates name in
    /// their CRL distribution point, written as the issuingDistributionPoint's fullName. `None`
    /// for a complete CRL, which lists every revoked certificate of the issuer.
    pub distribution_point: Option<&'a str>,
}

fn entry(e: &RevokedEntry) -> Result<RevokedCert, CoreError> {
    let mut exts: Vec<Extension> = Vec::new();
    if let Some(reason) = e.reason.filter(|r| *r != CrlReason::Unspecified) {
        exts.push(extension(oids::EXT_CRL_REASON, false, &reason)?);
    }
    if let Some(when) = e.invalidity_date {
        exts.push(extension(
            oids::EXT_INVALIDITY_DATE,
            false,
            &generalized_time(when)?,
        )?);
    }
    Ok(RevokedCert {
        serial_number: SerialNumber::new(&e.serial).map_err(CoreError::der)?,
        revocation_date: x509_time(e.revoked_at)?,
        crl_entry_extensions: (!exts.is_empty()).then_some(exts),
    })
}

/// Signs a CRL over `entries`, calling `progress(done, total)` every 65,536 entries.
pub fn sign_crl(
    fields: CrlFields<'_>,
    entries: &[RevokedEntry],
    issuer_key: &dyn SigningKey,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<u8>, CoreError> {
    let mut revoked = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        revoked.push(entry(e)?);
        if i % 65_536 == 65_535 {
            progress(i + 1, entries.len());
        }
    }
    progress(entries.len(), entries.len());
    let number = CrlNumber(Uint::new(&fields.number.to_be_bytes()).map_err(CoreError::der)?);
    let mut extensions = vec![
        authority_key_identifier(fields.issuer_key_id)?,
        extension(oids::EXT_CRL_NUMBER, false, &number)?,
    ];
    if let Some(uri) = fields.distribution_point {
        extensions.push(issuing_distribution_point(uri)?);
    }
    let tbs = TbsCertList {
        version: Version::V2,
        signature: issuer_key.signature_algorithm(),
        issuer: fields.issuer.clone(),
        this_update: x509_time(fields.this_update)?,
        next_update: Some(x509_time(fields.next_update)?),
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(CoreError::der)?;
    let signature = issuer_key.sign(&tbs_der)?;
    let crl = CertificateList {
        signature_algorithm: tbs.signature.clone(),
        tbs_cert_list: tbs,
        signature: BitString::from_bytes(&signature).map_err(CoreError::der)?,
    };
    crl.to_der().map_err(CoreError::der)
}

/// issuingDistributionPoint (RFC 5280 §5.2.5) of a CRL covering the certificates whose CRL
/// distribution point is `uri`: critical, as the RFC requires; its scope is only the point, so
/// end-entity and CA certificates alike, and every reason.
fn issuing_distribution_point(uri: &str) -> Result<Extension, CoreError> {
    let idp = IssuingDistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![crate::ext::uri(uri)?])),
        only_contains_user_certs: false,
        only_contains_ca_certs: false,
        only_some_reasons: None,
        indirect_crl: false,
        only_contains_attribute_certs: false,
    };
    extension(oids::EXT_ISSUING_DISTRIBUTION_POINT, true, &idp)
}

/// Reason names as operators type them (RFC 5280 §5.3.1 spelling).
pub fn parse_reason(name: &str) -> Result<CrlReason, CoreError> {
    REASONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            CoreError::malformed(
                "revocation reason",
                format!(
                    "{name:?}; expected one of {}",
                    REASONS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

pub fn reason_name(reason: CrlReason) -> &'static str {
    REASONS
        .iter()
        .find(|(_, r)| *r == reason)
        .map(|(n, _)| *n)
        .unwrap_or("unspecified")
}

/// The numeric code stored and shown for a reason (RFC 5280 §5.3.1).
pub fn reason_code(reason: CrlReason) -> u32 {
    reason as u32
}

pub fn reason_from_code(code: u32) -> Option<CrlReason> {
    REASONS.iter().map(|(_, r)| *r).find(|r| *r as u32 == code)
}

const REASONS: &[(&str, CrlReason)] = &[
    ("unspecified", CrlReason::Unspecified),
    ("keyCompromise", CrlReason::KeyCompromise),
    ("caCompromise", CrlReason::CaCompromise),
    ("affiliationChanged", CrlReason::AffiliationChanged),
    ("superseded", CrlReason::Superseded),
    ("cessationOfOperation", CrlReason::CessationOfOperation),
    ("certificateHold", CrlReason::CertificateHold),
    ("privilegeWithdrawn", CrlReason::PrivilegeWithdrawn),
];

#[cfg(test)]
mod tests {
    use der::Decode;
    use time::macros::datetime;
    use x509_cert::ext::pkix::name::GeneralName;

    use super::*;
    use crate::key::software::SoftwareKey;
    use crate::KeyAlgorithm;

    fn signed(distribution_point: Option<&str>) -> CertificateList {
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let issuer = crate::name::parse_dn("CN=Citizens,C=AZ").unwrap();
        let at = datetime!(2025-03-01 12:00:00 UTC);
        let der = sign_crl(
            CrlFields {
                issuer: &issuer,
                issuer_key_id: &[1, 2, 3],
                number: 7,
                this_update: at,
                next_update: at + time::Duration::days(1),
                distribution_point,
            },
            &[],
            &key,
            &mut |_, _| {},
        )
        .unwrap();
        CertificateList::from_der(&der).unwrap()
    }

    fn idp(crl: &CertificateList) -> Option<(bool, IssuingDistributionPoint)> {
        crl.tbs_cert_list
            .crl_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == oids::EXT_ISSUING_DISTRIBUTION_POINT)
            .map(|e| {
                (
                    e.critical,
                    IssuingDistributionPoint::from_der(e.extn_value.as_bytes()).unwrap(),
                )
            })
    }

    #[test]
    fn a_shard_crl_names_exactly_its_distribution_point_in_a_critical_idp() {
        let url = "http://pki.example/crl/citizens/7.crl";
        let (critical, idp) = idp(&signed(Some(url))).unwrap();
        assert!(critical);
        let Some(DistributionPointName::FullName(names)) = idp.distribution_point else {
            panic!("no fullName: {idp:?}");
        };
        assert!(
            matches!(names.as_slice(), [GeneralName::UniformResourceIdentifier(u)] if u.as_str() == url)
        );
        assert!(
            !idp.only_contains_user_certs
                && !idp.only_contains_ca_certs
                && !idp.only_contains_attribute_certs
                && !idp.indirect_crl
                && idp.only_some_reasons.is_none()
        );
    }

    #[test]
    fn a_complete_crl_has_no_idp() {
        assert!(idp(&signed(None)).is_none());
    }
}
