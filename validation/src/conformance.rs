//! What RFC 5280 requires of a conforming CA, checked on the certificates (§4.1.2.2, §4.2.1)
//! and CRLs (§5.2.3) it signed. The RFC binds the issuer; a strict verifier refuses what a
//! conforming CA could not have issued, as pyca cryptography and rustls-webpki do
//! ([`crate::Strictness::require_rfc5280_conformance`]).

use imza_core::oids;
use x509_cert::ext::pkix::KeyUsages;

use crate::{Certificate, Crl, CrlViolation, Rfc5280Violation};

/// The first rule `cert` breaks. `self_signed`: its own key verifies its signature (§3.2: such
/// a certificate may omit the authority key identifier).
pub(crate) fn check_certificate(
    cert: &Certificate,
    self_signed: bool,
) -> Result<(), Rfc5280Violation> {
    let ext = &cert.ext;
    // §4.1.2.2: "The serial number MUST be a positive integer" (two's complement octets).
    let serial = cert.serial();
    if serial.first().is_none_or(|b| b & 0x80 != 0) || serial.iter().all(|&b| b == 0) {
        return Err(Rfc5280Violation::NonPositiveSerial {
            serial: serial.to_vec(),
        });
    }
    // §4.2.1.1: keyIdentifier MUST be in all certificates but self-signed ones.
    if !self_signed && cert.authority_key_id().is_none() {
        return Err(Rfc5280Violation::MissingAuthorityKeyIdentifier);
    }
    // §4.2.1.2: MUST appear in all conforming CA certificates (cA TRUE).
    if cert.is_ca() && cert.subject_key_id().is_none() {
        return Err(Rfc5280Violation::MissingSubjectKeyIdentifier);
    }
    // §4.2.1.1, §4.2.1.2, §4.2.2.1: "Conforming CAs MUST mark this extension as non-critical."
    for extension in [
        oids::EXT_AUTHORITY_KEY_ID,
        oids::EXT_SUBJECT_KEY_ID,
        oids::EXT_AUTHORITY_INFO_ACCESS,
    ] {
        if ext.is_critical(extension) {
            return Err(Rfc5280Violation::MustNotBeCritical { extension });
        }
    }
    // §4.2.1.11: "Conforming CAs MUST mark this extension as critical."
    if ext.policy_constraints.is_some() && !ext.is_critical(oids::EXT_POLICY_CONSTRAINTS) {
        return Err(Rfc5280Violation::NonCriticalPolicyConstraints);
    }
    // §4.2.1.6: with an empty subject, the SAN MUST be critical.
    if cert.subject_key().is_empty()
        && ext.subject_alt_names.is_some()
        && !ext.is_critical(oids::EXT_SUBJECT_ALT_NAME)
    {
        return Err(Rfc5280Violation::NonCriticalSanWithEmptySubject);
    }
    // §4.2.1.12: KeyPurposeId SIZE (1..MAX).
    if ext
        .extended_key_usage
        .as_ref()
        .is_some_and(|(list, _)| list.is_empty())
    {
        return Err(Rfc5280Violation::EmptyExtendedKeyUsage);
    }
    // §4.2.1.10: "MUST be used only in a CA certificate".
    if ext.name_constraints.is_some() && !cert.is_ca() {
        return Err(Rfc5280Violation::NameConstraintsInEndEntity);
    }
    // §4.2.1.3: "If the keyCertSign bit is asserted, then the cA bit in the basic
    // constraints extension MUST also be asserted."
    if ext
        .key_usage
        .is_some_and(|ku| ku.contains(KeyUsages::KeyCertSign))
        && !cert.is_ca()
    {
        return Err(Rfc5280Violation::KeyCertSignWithoutCa);
    }
    Ok(())
}

/// The first rule of §5.2.3 `crl` breaks: "conforming CRL issuers MUST include" the CRL
/// number, "a non-critical CRL extension".
pub(crate) fn check_crl(crl: &Crl) -> Result<(), CrlViolation> {
    if crl.number.is_none() {
        return Err(CrlViolation::MissingCrlNumber);
    }
    if crl.number_critical {
        return Err(CrlViolation::CriticalCrlNumber);
    }
    Ok(())
}
