//! What the cabinet shows of records the portal does not keep itself: "who used my
//! certificates" — every authentication and signature a relying party asked of the citizen's
//! phone through the mobile signature service — and the citizen's certificates as the CA
//! issued them, those expiring within [`EXPIRY_WARNING`] flagged.
//!
//! Those records live in the mobile signature service's store and the CA store: other traits
//! of other crates, over the same store URL. The portal does not reach sideways for them (it
//! depends on neither imza-ca nor imza-mobile-sign); it says what it reads, in
//! [`CitizenRecords`], and `imza serve` — which holds both stores anyway — implements it over
//! them, as the OCSP responder reads certificate status through a trait the CA store
//! implements. Every method is a plain read for one citizen only: the citizen is the one the
//! session belongs to, never a value from the request.

use time::{Duration, OffsetDateTime};

use crate::store::{Event, EventKind, LoginMethod, StoreError};

/// Certificates expiring within this are flagged in the cabinet.
pub const EXPIRY_WARNING: Duration = Duration::days(30);

/// What a relying party asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UseKind {
    Authentication,
    Signature,
}

/// One use of one of the citizen's certificates, asked by a relying party.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateUse {
    pub at: OffsetDateTime,
    /// The relying party's name (`mygov.az`); this portal's own logins say so.
    pub relying_party: String,
    pub kind: UseKind,
    /// What the phone showed the citizen, if the relying party gave a text.
    pub display_text: Option<String>,
    /// The outcome as the service records it (`OK`, `USER_REFUSED`, `TIMEOUT`, … or
    /// `RUNNING`).
    pub result: String,
}

/// One of the citizen's certificates as the CA issued it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CitizenCertificate {
    /// The issuing CA's name in the store, and the serial (upper-case hex).
    pub ca: String,
    pub serial: String,
    /// The profile it was issued under (`citizen-auth`, `device-auth`, …).
    pub profile: String,
    pub not_after: OffsetDateTime,
    pub revoked: bool,
}

impl CitizenCertificate {
    /// Whether the cabinet flags it at `now`: not revoked, not yet expired, and expiring
    /// within [`EXPIRY_WARNING`].
    pub fn expires_soon(&self, now: OffsetDateTime) -> bool {
        !self.revoked && now < self.not_after && self.not_after - now <= EXPIRY_WARNING
    }
}

/// The records of other services the cabinet reads, for one citizen (their personal code,
/// `PNOAZ-5ZK7T2Q`).
pub trait CitizenRecords: Send + Sync {
    /// The requests relying parties made of the citizen's phone certificates, newest first,
    /// at most `limit`.
    fn certificate_uses(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<CertificateUse>, StoreError>;

    /// The certificates issued to the citizen (their subject's serialNumber is the personal
    /// code), soonest to expire first, at most `limit`.
    fn certificates(
        &self,
        personal_code: &str,
        limit: usize,
    ) -> Result<Vec<CitizenCertificate>, StoreError>;

    /// Certificates of every citizen, not revoked, whose notAfter is after `from` and at most
    /// `until`, soonest first, starting after `after`, at most `limit` read: the expiry
    /// notices' work list ([`crate::notices`]), the one read here that is not for one citizen.
    fn certificates_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
        after: Option<&ExpiryCursor>,
        limit: usize,
    ) -> Result<ExpiringPage, StoreError>;
}

/// A citizen's certificate that expires soon, with whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiringCertificate {
    pub personal_code: String,
    pub certificate: CitizenCertificate,
}

/// Where [`CitizenRecords::certificates_expiring`] goes on: after this certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryCursor {
    pub not_after: OffsetDateTime,
    pub ca: String,
    /// Upper-case hex, as [`CitizenCertificate::serial`].
    pub serial: String,
}

/// One page of expiring certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpiringPage {
    pub certificates: Vec<ExpiringCertificate>,
    /// Where the next page starts; `None`: this was the last.
    pub next: Option<ExpiryCursor>,
}

/// The relying party this portal's own logins are listed under.
pub const THIS_PORTAL: &str = "e-gov portal";

/// The citizen's logins to this portal made with a certificate (card, QR, device) from
/// their history, as uses of the certificate, merged with `uses` from the other services,
/// newest first, at most `limit`.
pub fn merge_uses(
    history: &[Event],
    mut uses: Vec<CertificateUse>,
    limit: usize,
) -> Vec<CertificateUse> {
    uses.extend(history.iter().filter_map(|event| {
        let method = event.method?;
        // A phone login is an authentication session of the signature service, listed among
        // `uses` already (under the portal's relying-party name): not twice.
        let with_certificate = matches!(
            method,
            LoginMethod::Card | LoginMethod::Qr | LoginMethod::DeviceCertificate
        );
        (event.kind == EventKind::Login && with_certificate).then(|| CertificateUse {
            at: event.at,
            relying_party: THIS_PORTAL.to_string(),
            kind: UseKind::Authentication,
            display_text: Some(format!("login ({})", method.as_str())),
            result: "OK".to_string(),
        })
    }));
    // Stable: equal times keep the services' order before the portal's own.
    uses.sort_by_key(|u| std::cmp::Reverse(u.at));
    uses.truncate(limit);
    uses
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-07 10:00 UTC);

    fn certificate(days: i64, revoked: bool) -> CitizenCertificate {
        CitizenCertificate {
            ca: "citizens".into(),
            serial: "01".into(),
            profile: "citizen-auth".into(),
            not_after: NOW + Duration::days(days),
            revoked,
        }
    }

    #[test]
    fn certificates_expiring_within_30_days_are_flagged_and_no_others() {
        assert!(certificate(10, false).expires_soon(NOW));
        assert!(certificate(30, false).expires_soon(NOW));
        assert!(!certificate(31, false).expires_soon(NOW));
        assert!(!certificate(300, false).expires_soon(NOW));
        assert!(!certificate(10, true).expires_soon(NOW), "revoked");
        assert!(!certificate(-1, false).expires_soon(NOW), "expired already");
    }

    #[test]
    fn the_portals_own_certificate_logins_join_the_uses_newest_first() {
        let event = |minutes: i64, kind, method| Event {
            at: NOW + Duration::minutes(minutes),
            personal_code: "PNOAZ-5ZK7T2Q".into(),
            kind,
            method,
            detail: String::new(),
        };
        let history = [
            event(3, EventKind::Logout, Some(LoginMethod::Card)),
            event(2, EventKind::Login, Some(LoginMethod::Card)),
            event(1, EventKind::Login, Some(LoginMethod::AccessCode)),
        ];
        let signed = CertificateUse {
            at: NOW + Duration::minutes(5),
            relying_party: "bank.az".into(),
            kind: UseKind::Signature,
            display_text: Some("Loan agreement".into()),
            result: "OK".into(),
        };
        let merged = merge_uses(&history, vec![signed.clone()], 10);
        assert_eq!(merged.len(), 2, "{merged:?}");
        assert_eq!(merged[0], signed);
        assert_eq!(merged[1].relying_party, THIS_PORTAL);
        assert_eq!(merge_uses(&history, vec![signed], 1).len(), 1);
    }
}
