//! Certificate expiry notices: "your certificate expires in at most 60 / 30 / 7 days", in the
//! cabinet and, when the citizen registry knows an e-mail address, by mail.
//!
//! The rules, all here above the store: a certificate is noticed at the smallest threshold
//! that applies now (found first with 5 days left, it gets the 7-day notice only); a revoked
//! certificate gets none (the records list none); and none after a renewal — when the citizen
//! has a newer certificate of the same profile, not revoked, whose notAfter is later.
//!
//! Each (certificate, threshold) is sent once, across restarts and nodes on one database: the
//! round claims it in the store ([`PortalStore::claim_notice`], insert if absent) before
//! mailing and marks it sent after. A sender that dies between the two leaves a claim that
//! another node takes over after [`CLAIM_LEASE`]; so a crash right after the mail went out
//! may send it twice, never zero times once the claim exists (at-least-once, as any mailer
//! that cannot enlist the SMTP server in its transaction).

use time::{Duration, OffsetDateTime};

use imza_core::clock::rfc3339;

use crate::records::{CitizenRecords, ExpiringCertificate, ExpiryCursor};
use crate::registry::CitizenRegistry;
use crate::store::{ExpiryNotice, PortalStore, StoreError};

/// The thresholds, in days, smallest first.
pub const THRESHOLDS_DAYS: [u32; 3] = [7, 30, 60];
/// A claim not marked sent after this may be taken over by another sender.
pub const CLAIM_LEASE: Duration = Duration::minutes(10);
/// How often `imza serve` runs a round by default.
pub const NOTICE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// Certificates read per page, and pages per round: a round looks at no more than this many
/// (the rest wait for the next round, soonest first).
const PAGE: usize = 500;
const MAX_PAGES: usize = 200;
/// A citizen's certificates read to see whether one was renewed.
const RENEWAL_LOOKUP: usize = 100;

/// The smallest threshold within which `not_after` falls at `now`; `None` when it is further
/// off than the largest, or past.
pub fn threshold(now: OffsetDateTime, not_after: OffsetDateTime) -> Option<u32> {
    if not_after <= now {
        return None;
    }
    THRESHOLDS_DAYS
        .into_iter()
        .find(|days| not_after - now <= Duration::days(i64::from(*days)))
}

/// A notice by mail: one recipient, a subject and a plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Sends mail (`imza serve` implements it over SMTP). Blocking; an error is for the
/// operator's log, never containing credentials.
pub trait Mailer: Send + Sync {
    fn send(&self, mail: &NoticeMail) -> Result<(), MailError>;
}

/// The mailer's own error (lettre's, for `imza serve`), kept as the source.
pub type MailCause = Box<dyn std::error::Error + Send + Sync>;

/// Why a mail was not sent. A failed notice is tried again after [`CLAIM_LEASE`] whatever
/// the reason; `permanent` tells the operator when that will not help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The recipient's address is not one the mailer can send to.
    #[error("the address {address:?}: {source}")]
    Address {
        address: String,
        #[source]
        source: MailCause,
    },
    /// The message could not be built.
    #[error("the message: {0}")]
    Message(#[source] MailCause),
    /// The mail server could not be reached or did not take the message; `permanent`: it
    /// refused it for good (an SMTP 5xx answer), not for now (4xx, no connection).
    #[error("SMTP{}: {source}", if *permanent { " (refused for good)" } else { "" })]
    Transport {
        permanent: bool,
        #[source]
        source: MailCause,
    },
}

impl MailError {
    /// Whether sending the same mail again will fail the same way.
    pub fn is_permanent(&self) -> bool {
        match self {
            MailError::Address { .. } | MailError::Message(_) => true,
            MailError::Transport { permanent, .. } => *permanent,
        }
    }
}

/// The notice's mail, in Azerbaijani and English.
pub fn notice_mail(to: &str, name: &str, notice: &ExpiryNotice) -> NoticeMail {
    let date = rfc3339(notice.not_after);
    let (ca, serial) = notice
        .certificate
        .split_once(':')
        .unwrap_or(("", &notice.certificate));
    let days = notice.threshold_days;
    NoticeMail {
        to: to.to_string(),
        subject: format!(
            "Sertifikatınızın müddəti {days} gün ərzində bitir / Your certificate expires within {days} days"
        ),
        body: format!(
            "Hörmətli {name},\n\n\
             \"{profile}\" sertifikatınızın (seriya nömrəsi {serial}, {ca}) müddəti {date} \
             tarixində bitir: {days} gündən az qalıb. Sertifikatı vaxtında yeniləyin: ASAN \
             Xidmət mərkəzində və ya vətəndaş portalında.\n\n\
             Dear {name},\n\n\
             your \"{profile}\" certificate (serial {serial}, {ca}) expires on {date}, within \
             {days} days. Please renew it in time, at a service centre or through the citizen \
             portal.\n",
            profile = notice.profile,
        ),
    }
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoticeRound {
    /// Certificates read that expire within the largest threshold.
    pub found: usize,
    /// Notices this round claimed (new, or taken over after the lease).
    pub claimed: usize,
    /// Of those, mailed.
    pub mailed: usize,
    /// Of those, shown in the cabinet only (no address, or no mailer).
    pub cabinet_only: usize,
    /// Of those, whose mail failed (tried again after the lease).
    pub failed: usize,
}

/// What a round reads and sends with.
pub struct NoticeSources<'a> {
    pub store: &'a dyn PortalStore,
    pub records: &'a dyn CitizenRecords,
    pub registry: Option<&'a dyn CitizenRegistry>,
    pub mailer: Option<&'a dyn Mailer>,
}

/// One round at `now`: every citizen certificate expiring within the largest threshold (at
/// most `PAGE × MAX_PAGES` of them), each noticed by the rules above.
pub fn run_round(
    sources: &NoticeSources<'_>,
    now: OffsetDateTime,
) -> Result<NoticeRound, StoreError> {
    let until = now + Duration::days(i64::from(THRESHOLDS_DAYS[THRESHOLDS_DAYS.len() - 1]));
    let mut round = NoticeRound::default();
    let mut after: Option<ExpiryCursor> = None;
    for _ in 0..MAX_PAGES {
        let page = sources
            .records
            .certificates_expiring(now, until, after.as_ref(), PAGE)?;
        for expiring in &page.certificates {
            round.found += 1;
            notice_one(sources, expiring, now, &mut round)?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(round)
}

fn notice_one(
    sources: &NoticeSources<'_>,
    expiring: &ExpiringCertificate,
    now: OffsetDateTime,
    round: &mut NoticeRound,
) -> Result<(), StoreError> {
    let certificate = &expiring.certificate;
    let Some(threshold_days) = threshold(now, certificate.not_after) else {
        return Ok(());
    };
    if certificate.revoked {
        return Ok(());
    }
    let renewed = sources
        .records
        .certificates(&expiring.personal_code, RENEWAL_LOOKUP)?
        .into_iter()
        .any(|other| {
            other.profile == certificate.profile
                && !other.revoked
                && other.not_after > certificate.not_after
                && (other.ca != certificate.ca || other.serial != certificate.serial)
        });
    if renewed {
        return Ok(());
    }
    let notice = ExpiryNotice {
        certificate: format!("{}:{}", certificate.ca, certificate.serial),
        threshold_days,
        personal_code: expiring.personal_code.clone(),
        profile: certificate.profile.clone(),
        not_after: certificate.not_after,
        claimed_at: now,
        sent_at: None,
        emailed_to: None,
    };
    if !sources.store.claim_notice(&notice, CLAIM_LEASE)? {
        return Ok(());
    }
    round.claimed += 1;
    let facts = match sources.registry {
        Some(registry) => match registry.citizen(&expiring.personal_code) {
            Ok(facts) => facts,
            Err(e) => {
                // Tried again after the lease, by this node or another.
                eprintln!("portal: notices: {e}");
                round.failed += 1;
                return Ok(());
            }
        },
        None => None,
    };
    let address = facts.as_ref().and_then(|f| f.email.clone());
    let emailed_to = match (address, sources.mailer) {
        (Some(to), Some(mailer)) => {
            let name = facts
                .as_ref()
                .map_or(expiring.personal_code.as_str(), |f| f.name.as_str());
            if let Err(e) = mailer.send(&notice_mail(&to, name, &notice)) {
                eprintln!(
                    "portal: notices: mail to {} about {} failed (tried again in {} minutes): {e}",
                    expiring.personal_code,
                    notice.certificate,
                    CLAIM_LEASE.whole_minutes()
                );
                round.failed += 1;
                return Ok(());
            }
            round.mailed += 1;
            Some(to)
        }
        _ => {
            round.cabinet_only += 1;
            None
        }
    };
    sources.store.mark_notice_sent(
        &notice.certificate,
        threshold_days,
        now,
        emailed_to.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use time::macros::datetime;

    use crate::records::{CertificateUse, CitizenCertificate, ExpiringPage};
    use crate::registry::{TomlCitizenRegistry, DEMO_CITIZENS};
    use crate::store::SqlitePortalStore;

    const NOW: OffsetDateTime = datetime!(2026-12-07 10:00 UTC);

    #[test]
    fn the_smallest_threshold_that_applies_is_the_one() {
        let at = |days: i64| NOW + Duration::days(days);
        assert_eq!(threshold(NOW, at(61)), None);
        assert_eq!(threshold(NOW, at(60)), Some(60));
        assert_eq!(threshold(NOW, at(31)), Some(60));
        assert_eq!(threshold(NOW, at(30)), Some(30));
        assert_eq!(threshold(NOW, at(8)), Some(30));
        assert_eq!(threshold(NOW, at(5)), Some(7));
        assert_eq!(threshold(NOW, NOW), None);
        assert_eq!(threshold(NOW, at(-1)), None);
    }

    /// The CA's records as a list.
    struct Records(Vec<(String, CitizenCertificate)>);

    impl CitizenRecords for Records {
        fn certificate_uses(&self, _: &str, _: usize) -> Result<Vec<CertificateUse>, StoreError> {
            Ok(Vec::new())
        }

        fn certificates(
            &self,
            personal_code: &str,
            limit: usize,
        ) -> Result<Vec<CitizenCertificate>, StoreError> {
            Ok(self
                .0
                .iter()
                .filter(|(p, _)| p == personal_code)
                .map(|(_, c)| c.clone())
                .take(limit)
                .collect())
        }

        fn certificates_expiring(
            &self,
            from: OffsetDateTime,
            until: OffsetDateTime,
            after: Option<&ExpiryCursor>,
            _: usize,
        ) -> Result<ExpiringPage, StoreError> {
            assert!(after.is_none(), "one page here");
            Ok(ExpiringPage {
                certificates: self
                    .0
                    .iter()
                    .filter(|(_, c)| !c.revoked && c.not_after > from && c.not_after <= until)
                    .map(|(p, c)| ExpiringCertificate {
                        personal_code: p.clone(),
                        certificate: c.clone(),
                    })
                    .collect(),
                next: None,
            })
        }
    }

    #[derive(Default)]
    struct Outbox(Mutex<Vec<NoticeMail>>);

    impl Mailer for Outbox {
        fn send(&self, mail: &NoticeMail) -> Result<(), MailError> {
            self.0.lock().unwrap().push(mail.clone());
            Ok(())
        }
    }

    fn certificate(serial: &str, profile: &str, days: i64) -> CitizenCertificate {
        CitizenCertificate {
            ca: "citizens".into(),
            serial: serial.into(),
            profile: profile.into(),
            not_after: NOW + Duration::days(days),
            revoked: false,
        }
    }

    #[test]
    fn each_notice_goes_once_at_its_threshold_and_none_after_a_renewal_or_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap();
        let registry = TomlCitizenRegistry::parse(DEMO_CITIZENS).unwrap();
        let gunay = "PNOAZ-5ZK7T2Q".to_string();
        let rashad = "PNOAZ-3HQ8M1X".to_string();
        let revoked = CitizenCertificate {
            revoked: true,
            ..certificate("03", "citizen-auth", 10)
        };
        let records = Records(vec![
            (gunay.clone(), certificate("01", "citizen-sign", 5)),
            // Renewed: a newer citizen-auth certificate runs to day 700.
            (gunay.clone(), certificate("02", "citizen-auth", 20)),
            (gunay.clone(), certificate("04", "citizen-auth", 700)),
            (gunay.clone(), revoked),
            // No e-mail known: the cabinet only.
            (rashad.clone(), certificate("05", "citizen-sign", 45)),
        ]);
        let outbox = Outbox::default();
        let sources = NoticeSources {
            store: &store,
            records: &records,
            registry: Some(&registry),
            mailer: Some(&outbox),
        };
        let round = run_round(&sources, NOW).unwrap();
        assert_eq!(
            (
                round.claimed,
                round.mailed,
                round.cabinet_only,
                round.failed
            ),
            (2, 1, 1, 0),
            "{round:?}"
        );
        let sent = outbox.0.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "gunay.aliyeva@mygov.az");
        assert!(sent[0].subject.contains("7 gün") && sent[0].subject.contains("7 days"));
        assert!(
            sent[0].body.contains("Hörmətli Əliyev Günay Şəmsi oğlu")
                && sent[0].body.contains("citizen-sign")
        );
        let notices = store.notices_of(&gunay, 10).unwrap();
        assert_eq!(notices.len(), 1, "only the 7-day notice: {notices:?}");
        assert_eq!(notices[0].threshold_days, 7);
        assert_eq!(store.notices_of(&rashad, 10).unwrap()[0].threshold_days, 60);

        // Again, and again an hour later: nothing more.
        for later in [NOW, NOW + Duration::hours(1)] {
            let round = run_round(&sources, later).unwrap();
            assert_eq!(round.claimed, 0, "{round:?}");
        }
        assert_eq!(outbox.0.lock().unwrap().len(), 1);
        // Rəşad's certificate reaches 30 days: its 30-day notice, once.
        let round = run_round(&sources, NOW + Duration::days(16)).unwrap();
        assert_eq!(round.claimed, 1, "{round:?}");
        assert_eq!(store.notices_of(&rashad, 10).unwrap()[0].threshold_days, 30);
    }

    /// Refuses the first mail (an SMTP server's 4xx: for now), then sends.
    #[derive(Default)]
    struct RefusesOnce {
        refused: Mutex<bool>,
        outbox: Outbox,
    }

    impl Mailer for RefusesOnce {
        fn send(&self, mail: &NoticeMail) -> Result<(), MailError> {
            let mut refused = self.refused.lock().unwrap();
            if !*refused {
                *refused = true;
                return Err(MailError::Transport {
                    permanent: false,
                    source: "451 4.3.0 try again later".into(),
                });
            }
            self.outbox.send(mail)
        }
    }

    #[test]
    fn a_failed_mail_keeps_its_claim_and_goes_after_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap();
        let registry = TomlCitizenRegistry::parse(DEMO_CITIZENS).unwrap();
        let records = Records(vec![(
            "PNOAZ-5ZK7T2Q".to_string(),
            certificate("01", "citizen-sign", 5),
        )]);
        let mailer = RefusesOnce::default();
        let sources = NoticeSources {
            store: &store,
            records: &records,
            registry: Some(&registry),
            mailer: Some(&mailer),
        };
        let round = run_round(&sources, NOW).unwrap();
        assert_eq!((round.claimed, round.mailed, round.failed), (1, 0, 1));
        // Within the lease nobody takes it; after it, it goes.
        let round = run_round(&sources, NOW + Duration::minutes(1)).unwrap();
        assert_eq!(round.claimed, 0, "{round:?}");
        let after = NOW + CLAIM_LEASE + Duration::minutes(1);
        let round = run_round(&sources, after).unwrap();
        assert_eq!((round.claimed, round.mailed, round.failed), (1, 1, 0));
        assert_eq!(mailer.outbox.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_mail_error_says_whether_trying_again_can_help() {
        let later = MailError::Transport {
            permanent: false,
            source: "451 4.3.0 try again later".into(),
        };
        assert!(!later.is_permanent());
        assert_eq!(later.to_string(), "SMTP: 451 4.3.0 try again later");
        let never = MailError::Transport {
            permanent: true,
            source: "550 5.1.1 no such user".into(),
        };
        assert!(never.is_permanent());
        assert_eq!(
            never.to_string(),
            "SMTP (refused for good): 550 5.1.1 no such user"
        );
        assert_eq!(
            std::error::Error::source(&never).map(ToString::to_string),
            Some("550 5.1.1 no such user".to_string())
        );
    }
}
