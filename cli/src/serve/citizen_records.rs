//! The portal's view of the other services' records ([`CitizenRecords`]), over the stores
//! `imza serve` holds: the mobile signature service's sessions of every device registered with
//! the citizen's national id (the personal code `PNOAZ-<national id>`, the serialNumber
//! registration puts in the phone's certificates), and the CA store's certificates whose
//! subject carries the personal code. The portal crate depends on neither store's crate; this
//! is where they meet (see ARCHITECTURE.md, "The citizen portal").

use std::sync::Arc;

use imza_ca::store::CaStore;
use imza_core::cert::serial_hex;
use imza_mobile_sign::protocol::SessionKind;
use imza_mobile_sign::store::MobileStore;
use imza_portal::records::{
    CertificateUse, CitizenCertificate, CitizenRecords, ExpiringCertificate, ExpiringPage,
    ExpiryCursor, UseKind,
};
use imza_store::StoreError;
use time::OffsetDateTime;

/// The personal code's prefix before the national id (ETSI EN 319 412-1 §5.1.3: PNO, AZ).
const PERSONAL_CODE_PREFIX: &str = "PNOAZ-";

/// [`CitizenRecords`] over the mobile signature store and the CA store of one store URL.
pub struct StoreCitizenRecords {
    pub mobile: Arc<dyn MobileStore>,
    pub ca: Arc<dyn CaStore>,
}

impl CitizenRecords for StoreCitizenRecords {
    fn certificate_uses(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<CertificateUse>, StoreError> {
        // A citizen without a national id in this form has no phone registered here.
        let Some(national_id) = personal_code.strip_prefix(PERSONAL_CODE_PREFIX) else {
            return Ok(Vec::new());
        };
        Ok(self
            .mobile
            .sessions_of_national_id(national_id, limit)?
            .into_iter()
            .map(|session| CertificateUse {
                at: session.created_at,
                relying_party: session.relying_party,
                kind: match session.kind {
                    SessionKind::Authentication => UseKind::Authentication,
                    SessionKind::Signature => UseKind::Signature,
                },
                display_text: session.display_text,
                result: session
                    .completion
                    .map_or("RUNNING", |c| c.result.name())
                    .to_string(),
            })
            .collect())
    }

    fn certificates(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<CitizenCertificate>, StoreError> {
        Ok(self
            .ca
            .certificates_of_subject_serial_number(personal_code, limit)?
            .into_iter()
            .map(|c| CitizenCertificate {
                serial: serial_hex(&c.serial),
                ca: c.ca,
                profile: c.profile,
                not_after: c.not_after,
                revoked: c.revocation.is_some(),
            })
            .collect())
    }

    fn certificates_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
        after: Option<&ExpiryCursor>,
        limit: usize,
    ) -> Result<ExpiringPage, StoreError> {
        let serial = after
            .map(|c| hex::decode(&c.serial))
            .transpose()
            .map_err(|_| StoreError::Invalid("a cursor's serial is not hex".into()))?;
        let cursor = after
            .zip(serial.as_deref())
            .map(|(c, serial)| imza_ca::store::ExpiryCursor {
                not_after: c.not_after,
                ca: &c.ca,
                serial,
            });
        let found = self.ca.certificates_expiring(from, until, cursor, limit)?;
        // A full page: more may follow, after its last row (whoever's it is).
        let next = (found.len() >= limit.max(1))
            .then(|| found.last())
            .flatten()
            .map(|last| ExpiryCursor {
                not_after: last.not_after,
                ca: last.ca.clone(),
                serial: serial_hex(&last.serial),
            });
        let certificates = found
            .into_iter()
            .filter_map(|c| {
                let personal_code = imza_ca::store::subject_serial_number_of(&c)?;
                Some(ExpiringCertificate {
                    personal_code,
                    certificate: CitizenCertificate {
                        serial: serial_hex(&c.serial),
                        ca: c.ca,
                        profile: c.profile,
                        not_after: c.not_after,
                        revoked: c.revocation.is_some(),
                    },
                })
            })
            .collect();
        Ok(ExpiringPage { certificates, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use imza_ca::audit::AuditEvent;
    use imza_ca::keyref::KeyReference;
    use imza_ca::store::{CaRecord, CertificateRecord};
    use imza_core::alg::DigestAlgorithm;
    use imza_mobile_sign::protocol::{Language as PhoneLanguage, SessionResult};
    use imza_mobile_sign::store::{
        Device, RegisteredCertificate, SessionCompletion, SessionRecord,
    };
    use imza_portal::pages::{self, CabinetRecords, Language};
    use imza_portal::records::merge_uses;
    use imza_portal::store::{LoginMethod, Session, SessionCitizen};
    use time::{Duration, OffsetDateTime};

    /// Two citizens' records in one SQLite store, read back through the portal's view.
    #[test]
    fn the_cabinet_lists_the_citizens_own_certificate_uses_and_flags_what_expires_soon() {
        let dir = tempfile::tempdir().unwrap();
        let url = imza_store::StoreUrl::sqlite(&dir.path().join("imza.db"));
        let ca: Arc<dyn CaStore> =
            Arc::from(imza_ca::store::open(&url, imza_store::Create::IfMissing).unwrap());
        let mobile = imza_mobile_sign::store::open(&url).unwrap();
        let now = OffsetDateTime::now_utc();

        // Two relying parties; Günay's phone and Rəşad's.
        for party in ["mygov.az", "bank.az"] {
            mobile.insert_relying_party(party, &[0; 32], now).unwrap();
        }
        let phone = |id: &str, number: &str, national_id: &str| Device {
            device_id: id.into(),
            phone_number: number.into(),
            national_id: national_id.into(),
            auth: RegisteredCertificate {
                ca: "mobile".into(),
                der: vec![0x30, 0],
            },
            sign: RegisteredCertificate {
                ca: "mobile".into(),
                der: vec![0x30, 0],
            },
            registered_at: now,
        };
        mobile
            .insert_device(&phone("gunay", "+994501234567", "5ZK7T2Q"), &[1; 32])
            .unwrap();
        mobile
            .insert_device(&phone("rashad", "+994507654321", "3HQ8M1X"), &[2; 32])
            .unwrap();
        let session =
            |id: &str, party: &str, device: &str, kind, text: &str, minutes| SessionRecord {
                session_id: id.into(),
                relying_party: party.into(),
                device_id: Some(device.into()),
                kind,
                hash: vec![7; 32],
                hash_type: DigestAlgorithm::Sha256,
                display_text: Some(text.into()),
                language: PhoneLanguage::Aze,
                created_at: now - Duration::minutes(minutes),
                expires_at: now + Duration::minutes(5),
                delivered_at: None,
                completion: None,
            };
        mobile
            .insert_session(&session(
                "s1",
                "mygov.az",
                "gunay",
                SessionKind::Signature,
                "Arayış imzalanması",
                3,
            ))
            .unwrap();
        mobile
            .complete_session(
                "s1",
                &SessionCompletion::without_signature(SessionResult::Ok, now),
            )
            .unwrap();
        mobile
            .insert_session(&session(
                "s2",
                "bank.az",
                "gunay",
                SessionKind::Authentication,
                "Bank login",
                2,
            ))
            .unwrap();
        mobile
            .insert_session(&session(
                "s3",
                "bank.az",
                "rashad",
                SessionKind::Signature,
                "Rəşad's loan",
                1,
            ))
            .unwrap();

        // The CA: Günay's certificates expiring in 10 and 300 days; Rəşad's in 5.
        let audit = |action: &str| AuditEvent {
            at: now,
            action: action.into(),
            ca: "citizens".into(),
            details: serde_json::json!({}),
        };
        ca.create_ca(
            &CaRecord {
                name: "citizens".into(),
                parent: None,
                certificate: vec![0x30, 0],
                key: KeyReference::File {
                    path: "keys/citizens.key.pem".into(),
                },
                base_url: "http://pki.example".into(),
                created_at: now,
                crl_shards: 0,
            },
            None,
            &audit("ca-init"),
        )
        .unwrap();
        let cert = |serial: u8, subject: &str, profile: &str, days: i64| CertificateRecord {
            ca: "citizens".into(),
            serial: vec![serial],
            subject: subject.into(),
            profile: profile.into(),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(days),
            issued_at: now,
            der: vec![0x30, serial],
            revocation: None,
            crl_shard: None,
        };
        let certificates = [
            cert(
                1,
                "C=AZ,serialNumber=PNOAZ-5ZK7T2Q,CN=Günay",
                "device-auth",
                10,
            ),
            cert(
                2,
                "C=AZ,serialNumber=PNOAZ-5ZK7T2Q,CN=Günay",
                "citizen-auth",
                300,
            ),
            cert(
                3,
                "C=AZ,serialNumber=PNOAZ-3HQ8M1X,CN=Rəşad",
                "citizen-auth",
                5,
            ),
        ];
        let audits: Vec<_> = certificates.iter().map(|_| audit("issue")).collect();
        ca.insert_certificates(&certificates, &audits).unwrap();

        let records = StoreCitizenRecords { mobile, ca };
        let uses = records.certificate_uses("PNOAZ-5ZK7T2Q", 100).unwrap();
        let mine = records.certificates("PNOAZ-5ZK7T2Q", 100).unwrap();
        assert_eq!(uses.len(), 2, "{uses:?}");
        assert_eq!(
            (
                uses[0].relying_party.as_str(),
                uses[0].kind,
                uses[0].result.as_str()
            ),
            ("bank.az", UseKind::Authentication, "RUNNING")
        );
        assert_eq!(
            (
                uses[1].relying_party.as_str(),
                uses[1].kind,
                uses[1].result.as_str()
            ),
            ("mygov.az", UseKind::Signature, "OK")
        );
        assert_eq!(mine.len(), 2);
        assert!(records
            .certificate_uses("nonsense", 100)
            .unwrap()
            .is_empty());

        // The page: both uses, both certificates, the one in 10 days flagged and not the
        // other, nothing of Rəşad's.
        let session = Session {
            id_sha256: [1; 32],
            csrf_sha256: [2; 32],
            created_at: now,
            last_seen_at: now,
            expires_at: now + Duration::hours(8),
            citizen: Some(SessionCitizen {
                personal_code: "PNOAZ-5ZK7T2Q".into(),
                name: "Günay".into(),
                method: LoginMethod::DeviceCertificate,
            }),
            ended_at: None,
        };
        let uses = merge_uses(&[], uses, 100);
        let page = pages::cabinet(
            Language::Eng,
            &session,
            "csrf",
            &CabinetRecords {
                history: &[],
                uses: &uses,
                certificates: Some(&mine),
                now,
                documents: &[],
                checks: &[],
                notices: &[],
                issuing: false,
            },
        );
        let section = |id: &str| {
            page.split(&format!("<table id=\"{id}\">"))
                .nth(1)
                .and_then(|rest| rest.split("</table>").next())
                .unwrap_or_else(|| panic!("no table {id}: {page}"))
                .to_string()
        };
        let used = section("certificate-uses");
        assert!(
            used.contains("<td>bank.az</td><td>authentication</td><td>Bank login</td>"),
            "{used}"
        );
        assert!(
            used.contains(
                "<td>mygov.az</td><td>signature</td><td>Arayış imzalanması</td><td>OK</td>"
            ),
            "{used}"
        );
        let listed = section("certificates");
        assert_eq!(listed.matches("<tr").count(), 2, "{listed}");
        assert_eq!(listed.matches("class=\"expiring\"").count(), 1, "{listed}");
        assert!(
            listed.contains("<tr class=\"expiring\"><td>device-auth</td>")
                && listed.contains("expires within 30 days"),
            "{listed}"
        );
        assert!(listed.contains("<tr><td>citizen-auth</td>"), "{listed}");
        assert!(
            !page.contains("Rəşad") && !page.contains("03</td>"),
            "{page}"
        );
    }
}
