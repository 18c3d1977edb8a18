//! Signed e-certificates ("e-arayış", issue 16): a citizen logged in to the portal asks for an
//! official statement — of residence, of employment, of personal data — the portal renders it
//! as a one-page PDF ([`render`]), an agency seals it (PAdES, an incremental update on top of
//! this PDF), and anyone checks it through the QR code on the paper, which leads to
//! `{origin}/d/{reference}`.
//!
//! This module is what goes on the paper: the [`DocumentKind`], the [`Statement`] with its
//! [`Fact`]s, the [`Reference`] that names one issued document.

mod render;

use time::{Date, OffsetDateTime, UtcOffset};

pub use render::{render, RenderError, SEAL_AREA};

/// The kinds of statement the portal issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    Residence,
    Employment,
    PersonalData,
}

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

    /// The kind's name in URLs and records.
    pub fn slug(self) -> &'static str {
        match self {
            DocumentKind::Residence => "residence",
            DocumentKind::Employment => "employment",
            DocumentKind::PersonalData => "personal-data",
        }
    }

    pub fn from_slug(slug: &str) -> Option<DocumentKind> {
        DocumentKind::ALL
            .into_iter()
            .find(|kind| kind.slug() == slug)
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
    pub reference: Reference,
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
pub fn verification_url(origin: &str, reference: &Reference) -> String {
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

/// The name of one issued document, `XXXX-XXXX-XXXX`: twelve characters of Crockford's
/// base32 (60 random bits), printed on the paper and in its QR code, and typed by hand when
/// the QR code cannot be read — so reading one forgives case and the look-alikes O (0), I and
/// L (1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference(String);

/// Characters in a reference, without its hyphens.
const REFERENCE_CHARACTERS: usize = 12;

/// Why a reference was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error(
        "a document reference is XXXX-XXXX-XXXX: 12 characters of 0-9 and A-Z without I, L, O, U"
    )]
    Malformed,
    #[error("no random bytes for a reference: {0}")]
    Random(String),
}

impl Reference {
    /// A new random reference.
    pub fn generate() -> Result<Reference, ReferenceError> {
        let mut bytes = [0u8; REFERENCE_CHARACTERS];
        openssl::rand::rand_bytes(&mut bytes).map_err(|e| ReferenceError::Random(e.to_string()))?;
        let characters: Vec<u8> = bytes
            .iter()
            .map(|b| crate::access_code::ALPHABET[usize::from(b & 31)])
            .collect();
        Ok(Reference::from_characters(&characters))
    }

    /// Reads a reference as printed or typed.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let groups: Vec<&str> = text.trim().split('-').collect();
        if groups.len() != 3 || groups.iter().any(|group| group.len() != 4) {
            return Err(ReferenceError::Malformed);
        }
        let mut characters = Vec::with_capacity(REFERENCE_CHARACTERS);
        for byte in groups.concat().bytes() {
            let byte = match byte.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                other => other,
            };
            if !crate::access_code::ALPHABET.contains(&byte) {
                return Err(ReferenceError::Malformed);
            }
            characters.push(byte);
        }
        Ok(Reference::from_characters(&characters))
    }

    fn from_characters(characters: &[u8]) -> Reference {
        let mut text = String::with_capacity(REFERENCE_CHARACTERS + 2);
        for (i, &c) in characters.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                text.push('-');
            }
            text.push(char::from(c));
        }
        Reference(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_three_groups_of_four_and_forgive_typing() {
        let reference = Reference::generate().unwrap();
        let text = reference.to_string();
        assert_eq!(text.len(), 14);
        assert_eq!(&text[4..5], "-");
        assert_eq!(&text[9..10], "-");
        assert_eq!(Reference::parse(&text).unwrap(), reference);
        assert_ne!(Reference::generate().unwrap(), reference);
        assert_eq!(
            Reference::parse(" a1b2-ol9z-0000 ").unwrap().as_str(),
            "A1B2-019Z-0000"
        );
        for bad in [
            "",
            "A1B2-C3D4",
            "A1B2C3D4E5F6",
            "A1B2-C3D4-E5FU",
            "A1B2-C3D4-E5F6-",
        ] {
            assert_eq!(
                Reference::parse(bad),
                Err(ReferenceError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_verification_url_is_under_the_origin() {
        let reference = Reference::parse("ABCD-EFGH-JKMN").unwrap();
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
    fn kinds_have_both_titles_and_a_slug() {
        for kind in DocumentKind::ALL {
            assert!(!kind.title_az().is_empty() && !kind.title_en().is_empty());
            assert_eq!(DocumentKind::from_slug(kind.slug()), Some(kind));
        }
        assert_eq!(DocumentKind::from_slug("diploma"), None);
    }
}
