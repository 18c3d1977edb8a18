//! Signed e-certificates ("e-arayış", issue 16): a citizen logged in to the portal asks for an
//! official statement — of residence, of employment, of personal data — the portal renders it
//! as a one-page PDF ([`render`]), an agency seals it (PAdES, an incremental update on top of
//! this PDF), and anyone checks it through the QR code on the paper, which leads to
//! `{origin}/d/{reference}`.
//!
//! This module is what goes on the paper — the [`DocumentKind`], the [`Statement`] with its
//! [`Fact`]s — and the register of issued documents (`register`: the [`DocumentReference`]
//! that names one, registration, withdrawal, the log of checks).

mod issue;
mod register;
mod render;

use time::{Date, OffsetDateTime, UtcOffset};

pub use issue::{facts_for, issue, IssueError, Sealer};
pub use register::{
    record_check, register, register_as, withdraw, DocumentError, DocumentReference, NotAReference,
    MAX_ORGANISATION_CHARS, MAX_PDF_BYTES, MAX_REASON_CHARS, REFERENCE_CHARS,
};
pub use render::{render, RenderError, SEAL_AREA};

pub use crate::store::DocumentKind;

impl DocumentKind {
    pub const ALL: [DocumentKind; 3] = [
        DocumentKind::Residence,
        DocumentKind::Employment,
        DocumentKind::PersonalData,
    ];

    /// The title on the paper, in Azerbaijani.
    pub fn title_az(self) -> &'static str {
        match self {
            DocumentKind::Residence => "Yaşayış yeri haqqında arayış",
            DocumentKind::Employment => "İş yerinə dair arayış",
            DocumentKind::PersonalData => "Vətəndaşa aid fərdi məlumatlar üzrə arayış",
        }
    }

    /// The title's English translation.
    pub fn title_en(self) -> &'static str {
        match self {
            DocumentKind::Residence => "Certificate of residence",
            DocumentKind::Employment => "Certificate of employment",
            DocumentKind::PersonalData => "Certificate of personal data",
        }
    }
}

/// One line of a statement's table: what is stated (in Azerbaijani, and its English
/// translation) and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub label_az: String,
    pub label_en: String,
    pub value: String,
}

impl Fact {
    pub fn new(label_az: &str, label_en: &str, value: impl Into<String>) -> Fact {
        Fact {
            label_az: label_az.to_string(),
            label_en: label_en.to_string(),
            value: value.into(),
        }
    }

    pub fn residence_address(address: impl Into<String>) -> Fact {
        Fact::new("Yaşayış ünvanı", "Residence address", address)
    }

    pub fn registered_since(date: Date) -> Fact {
        Fact::new("Qeydiyyat tarixi", "Registered since", format_date(date))
    }

    pub fn employer(employer: impl Into<String>) -> Fact {
        Fact::new("İşəgötürən", "Employer", employer)
    }

    pub fn position(position: impl Into<String>) -> Fact {
        Fact::new("Vəzifəsi", "Position", position)
    }

    pub fn employed_since(date: Date) -> Fact {
        Fact::new("İşə qəbul tarixi", "Employed since", format_date(date))
    }

    pub fn birth_date(date: Date) -> Fact {
        Fact::new("Doğum tarixi", "Date of birth", format_date(date))
    }

    pub fn birth_place(place: impl Into<String>) -> Fact {
        Fact::new("Doğum yeri", "Place of birth", place)
    }

    pub fn citizenship(citizenship: impl Into<String>) -> Fact {
        Fact::new("Vətəndaşlığı", "Citizenship", citizenship)
    }
}

/// What goes on the paper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The issuing agency, as it names itself (the header).
    pub agency: String,
    pub kind: DocumentKind,
    /// The citizen's full name: surname, name, patronymic.
    pub citizen_name: String,
    /// The citizen's personal identification code (FİN), always the session's.
    pub personal_code: String,
    pub facts: Vec<Fact>,
    pub issued_at: OffsetDateTime,
    pub reference: DocumentReference,
    /// The portal's origin (`https://portal.gov.az`), where the QR code leads.
    pub origin: String,
}

impl Statement {
    /// Where anyone checks this document: `{origin}/d/{reference}`.
    pub fn verification_url(&self) -> String {
        verification_url(&self.origin, &self.reference)
    }
}

/// `{origin}/d/{reference}`, the page that checks the document of `reference`.
pub fn verification_url(origin: &str, reference: &DocumentReference) -> String {
    format!("{}/d/{reference}", origin.trim_end_matches('/'))
}

/// Azerbaijan's time (Asia/Baku): UTC+04:00 all year since 2016, when summer time ended.
pub const BAKU: UtcOffset = time::macros::offset!(+4);

/// A date as the paper shows it: `dd.mm.yyyy`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:02}.{:02}.{:04}",
        date.day(),
        u8::from(date.month()),
        date.year()
    )
}

/// A time as the paper shows it, in Baku: `dd.mm.yyyy HH:MM`.
pub fn format_baku_time(time: OffsetDateTime) -> String {
    let baku = time.to_offset(BAKU);
    format!(
        "{} {:02}:{:02}",
        format_date(baku.date()),
        baku.hour(),
        baku.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verification_url_is_under_the_origin() {
        let reference = DocumentReference::parse("ABCD-EFGH-JKMN").unwrap();
        assert_eq!(
            verification_url("https://portal.gov.az/", &reference),
            "https://portal.gov.az/d/ABCD-EFGH-JKMN"
        );
    }

    #[test]
    fn times_are_shown_in_baku() {
        let utc = time::macros::datetime!(2025-12-31 21:30:59 UTC);
        assert_eq!(format_baku_time(utc), "01.01.2026 01:30");
        assert_eq!(
            format_date(time::macros::date!(2001 - 02 - 03)),
            "03.02.2001"
        );
    }

    #[test]
    fn kinds_have_both_titles_and_a_name() {
        for kind in DocumentKind::ALL {
            assert!(!kind.title_az().is_empty() && !kind.title_en().is_empty());
            assert_eq!(DocumentKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(DocumentKind::parse("diploma"), None);
    }
}
