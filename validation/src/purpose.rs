//! Whether the target certificate is fit for what the caller asked ([`Purpose`]): its keyUsage
//! (RFC 5280 §4.2.1.3) and extendedKeyUsage (§4.2.1.12), after the path itself is valid.

use der::asn1::ObjectIdentifier;
use imza_core::oids;
use x509_cert::ext::pkix::KeyUsages;

use crate::{Certificate, Purpose, ValidationError};

/// id-kp-documentSigning (RFC 9336 §3.1).
const KP_DOCUMENT_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.36");

/// The extendedKeyUsage purposes of which any one (or anyExtendedKeyUsage) lets a
/// certificate be used for `purpose`; empty for [`Purpose::Any`].
pub(crate) fn key_purposes(purpose: Purpose) -> &'static [ObjectIdentifier] {
    match purpose {
        Purpose::Any => &[],
        Purpose::Sign => &[oids::KP_EMAIL_PROTECTION, KP_DOCUMENT_SIGNING],
        Purpose::Auth | Purpose::Client => &[oids::KP_CLIENT_AUTH],
        Purpose::Server => &[oids::KP_SERVER_AUTH],
        Purpose::TimeStamping => &[oids::KP_TIME_STAMPING],
        Purpose::OcspSigning => &[oids::KP_OCSP_SIGNING],
    }
}

/// Whether the extendedKeyUsage of `cert` (none: any use) allows `purpose`.
pub(crate) fn eku_allows(cert: &Certificate, purpose: Purpose) -> bool {
    let wanted = key_purposes(purpose);
    wanted.is_empty()
        || cert
            .ext
            .extended_key_usage
            .as_ref()
            .is_none_or(|(list, _)| {
                list.iter()
                    .any(|p| *p == oids::KP_ANY || wanted.contains(p))
            })
}

pub(crate) fn purpose_name(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Any => "any purpose",
        Purpose::Sign => "electronic signatures",
        Purpose::Auth => "authentication",
        Purpose::Server => "TLS server authentication",
        Purpose::Client => "TLS client authentication",
        Purpose::TimeStamping => "time-stamping",
        Purpose::OcspSigning => "OCSP signing",
    }
}

pub(crate) fn check_purpose(cert: &Certificate, purpose: Purpose) -> Result<(), ValidationError> {
    let fail = |detail: String| ValidationError::Purpose {
        subject: cert.subject_text(),
        purpose: purpose_name(purpose).to_string(),
        detail,
    };
    let key_usage = cert.ext.key_usage;
    let eku = cert.ext.extended_key_usage.as_ref();
    let key_usage_allows = |wanted: &[KeyUsages]| -> bool {
        key_usage.is_none_or(|ku| wanted.iter().any(|w| ku.contains(*w)))
    };
    let eku_text = || {
        eku.map(|(list, _)| {
            list.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    match purpose {
        Purpose::Any => Ok(()),
        Purpose::Sign => {
            if !key_usage_allows(&[KeyUsages::DigitalSignature, KeyUsages::NonRepudiation]) {
                return Err(fail(
                    "keyUsage has neither digitalSignature nor nonRepudiation".into(),
                ));
            }
            if !eku_allows(cert, purpose) {
                return Err(fail(format!(
                    "extendedKeyUsage ({}) excludes signing documents",
                    eku_text()
                )));
            }
            Ok(())
        }
        Purpose::Auth | Purpose::Client => {
            if !key_usage_allows(&[KeyUsages::DigitalSignature]) {
                return Err(fail("keyUsage lacks digitalSignature".into()));
            }
            if !eku_allows(cert, purpose) {
                return Err(fail(format!(
                    "extendedKeyUsage ({}) lacks clientAuth",
                    eku_text()
                )));
            }
            Ok(())
        }
        Purpose::Server => {
            if !key_usage_allows(&[KeyUsages::DigitalSignature, KeyUsages::KeyEncipherment]) {
                return Err(fail(
                    "keyUsage has neither digitalSignature nor keyEncipherment".into(),
                ));
            }
            if !eku_allows(cert, purpose) {
                return Err(fail(format!(
                    "extendedKeyUsage ({}) lacks serverAuth",
                    eku_text()
                )));
            }
            Ok(())
        }
        Purpose::TimeStamping => match eku {
            // RFC 3161 §2.3: the sole EKU, critical.
            Some((list, true)) if list.as_slice() == [oids::KP_TIME_STAMPING] => {
                if key_usage_allows(&[KeyUsages::DigitalSignature, KeyUsages::NonRepudiation]) {
                    Ok(())
                } else {
                    Err(fail(
                        "keyUsage has neither digitalSignature nor nonRepudiation".into(),
                    ))
                }
            }
            Some((list, critical)) => Err(fail(format!(
                "extendedKeyUsage must be exactly id-kp-timeStamping and critical (RFC 3161 §2.3); it is {}{}",
                list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                if *critical { "" } else { ", not critical" }
            ))),
            None => Err(fail("no extendedKeyUsage id-kp-timeStamping".into())),
        },
        Purpose::OcspSigning => match eku {
            Some((list, _)) if list.contains(&oids::KP_OCSP_SIGNING) => {
                if key_usage_allows(&[KeyUsages::DigitalSignature, KeyUsages::NonRepudiation]) {
                    Ok(())
                } else {
                    Err(fail(
                        "keyUsage has neither digitalSignature nor nonRepudiation".into(),
                    ))
                }
            }
            _ => Err(fail(format!(
                "extendedKeyUsage ({}) lacks id-kp-OCSPSigning",
                eku_text()
            ))),
        },
    }
}
