//! Whether the target certificate is fit for what the caller asked ([`Purpose`]): its keyUsage
//! (RFC 5280 §4.2.1.3) and extendedKeyUsage (§4.2.1.12), after the path itself is valid.

use der::asn1::ObjectIdentifier;
use imza_core::oids;
use x509_cert::ext::pkix::KeyUsages;

use crate::{Certificate, Purpose, PurposeProblem, ValidationError};

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
    let fail = |problem: PurposeProblem| ValidationError::Purpose {
        subject: cert.subject_text(),
        purpose: purpose_name(purpose).to_string(),
        problem,
    };
    let key_usage = cert.ext.key_usage;
    let eku = cert.ext.extended_key_usage.as_ref();
    // `wanted`: the keyUsage bits any one of which the purpose needs, with their names.
    let key_usage_allows = |wanted: &[(KeyUsages, &'static str)]| {
        if key_usage.is_none_or(|ku| wanted.iter().any(|(w, _)| ku.contains(*w))) {
            Ok(())
        } else {
            Err(fail(PurposeProblem::KeyUsage {
                wanted: wanted.iter().map(|(_, name)| *name).collect(),
            }))
        }
    };
    const DIGITAL_SIGNATURE: (KeyUsages, &str) = (KeyUsages::DigitalSignature, "digitalSignature");
    const SIGNING: &[(KeyUsages, &str)] = &[
        DIGITAL_SIGNATURE,
        (KeyUsages::NonRepudiation, "nonRepudiation"),
    ];
    let eku_lacks = |wanted: &'static str| {
        fail(PurposeProblem::ExtendedKeyUsage {
            present: eku.map(|(list, _)| list.clone()).unwrap_or_default(),
            wanted,
        })
    };
    match purpose {
        Purpose::Any => Ok(()),
        Purpose::Sign => {
            key_usage_allows(SIGNING)?;
            if !eku_allows(cert, purpose) {
                return Err(eku_lacks("a document-signing purpose"));
            }
            Ok(())
        }
        Purpose::Auth | Purpose::Client => {
            key_usage_allows(&[DIGITAL_SIGNATURE])?;
            if !eku_allows(cert, purpose) {
                return Err(eku_lacks("clientAuth"));
            }
            Ok(())
        }
        Purpose::Server => {
            key_usage_allows(&[
                DIGITAL_SIGNATURE,
                (KeyUsages::KeyEncipherment, "keyEncipherment"),
            ])?;
            if !eku_allows(cert, purpose) {
                return Err(eku_lacks("serverAuth"));
            }
            Ok(())
        }
        Purpose::TimeStamping => match eku {
            // RFC 3161 §2.3: the sole EKU, critical.
            Some((list, true)) if list.as_slice() == [oids::KP_TIME_STAMPING] => {
                key_usage_allows(SIGNING)
            }
            Some((list, critical)) => Err(fail(PurposeProblem::TimeStampingUsage {
                present: list.clone(),
                critical: *critical,
            })),
            None => Err(fail(PurposeProblem::NoExtendedKeyUsage {
                wanted: "id-kp-timeStamping",
            })),
        },
        Purpose::OcspSigning => match eku {
            Some((list, _)) if list.contains(&oids::KP_OCSP_SIGNING) => key_usage_allows(SIGNING),
            _ => Err(eku_lacks("id-kp-OCSPSigning")),
        },
    }
}

#[cfg(test)]
mod tests {
    use imza_core::KeyAlgorithm;
    use imza_testpki::TestCa;

    use super::*;

    /// A leaf whose only extension is a keyUsage of `usages`.
    fn leaf_with_key_usage(usages: KeyUsages) -> Certificate {
        let ca = TestCa::root("CN=Purpose Test CA", KeyAlgorithm::EcP256);
        let key = imza_core::key::software::SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let extensions = vec![imza_core::ext::key_usage(usages.into()).unwrap()];
        Certificate::from_der(ca.issue("CN=purpose.example.az", &[0x43], &key, extensions)).unwrap()
    }

    #[test]
    fn a_key_usage_refusal_names_the_bits_the_purpose_wanted() {
        let leaf = leaf_with_key_usage(KeyUsages::KeyAgreement);
        match check_purpose(&leaf, Purpose::Sign) {
            Err(ValidationError::Purpose {
                problem: PurposeProblem::KeyUsage { wanted },
                ..
            }) => assert_eq!(wanted, ["digitalSignature", "nonRepudiation"]),
            other => panic!("expected a keyUsage refusal, got {other:?}"),
        }
        let e = check_purpose(&leaf, Purpose::Client).unwrap_err();
        assert!(
            e.to_string().ends_with("keyUsage lacks digitalSignature"),
            "{e}"
        );
        assert!(check_purpose(&leaf, Purpose::Any).is_ok());
    }
}
