//! Where the portal learns facts about a citizen that no certificate carries: the registered
//! address, the employer, the e-mail address for notices — what a residence or employment
//! statement ("e-arayış") says and where an expiry notice goes.
//!
//! [`CitizenRegistry`] is the one question the portal asks. A national deployment answers it
//! from the population and employment registries: an HTTP client of those registries (with its
//! own timeouts, authentication and caching) implementing the same trait, handed to the portal
//! by `imza serve` in place of [`TomlCitizenRegistry`]. The portal never depends on where the
//! facts come from. [`TomlCitizenRegistry`] reads a small file of demo citizens
//! (`[portal] citizens = "citizens.toml"`; `imza demo` writes [`DEMO_CITIZENS`]):
//!
//! ```toml
//! [[citizen]]
//! personal_code = "PNOAZ-5ZK7T2Q"
//! name = "Əliyev Günay Şəmsi oğlu"
//! birth_date = "1990-04-12"
//! address = "Bakı şəhəri, Nəsimi rayonu, Şəmsi Bədəlbəyli küçəsi 12, mənzil 5"
//! registered_since = "2015-09-01"
//! email = "gunay.aliyeva@mygov.az"          # optional: no e-mail, notices in the cabinet only
//! [citizen.employer]                          # optional
//! organisation = "ASAN Xidmət"
//! position = "baş mütəxəssis"
//! since = "2019-02-01"
//! ```

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The demo's citizens (`portal/assets/demo-citizens.toml`): the two people `imza demo` issues
/// certificates to, by their personal codes, as the registries would know them. `imza demo`
/// writes it as `citizens.toml`; the e-certificate tests and benchmarks read it too.
pub const DEMO_CITIZENS: &str = include_str!("../assets/demo-citizens.toml");

use time::macros::format_description;
use time::Date;

/// Largest citizens file read: a demo's, not a population's (that is a registry's service).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most citizens in one file.
pub const MAX_CITIZENS: usize = 10_000;
/// Longest text field (name, address, organisation, position, e-mail) in characters.
pub const MAX_FIELD_CHARS: usize = 512;

/// What the registries say about one citizen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CitizenFacts {
    /// `PNOAZ-5ZK7T2Q`: the serialNumber of the citizen's certificates.
    pub personal_code: String,
    /// Full name, in Azerbaijani letters.
    pub name: String,
    pub birth_date: Date,
    /// The registered residence address.
    pub address: String,
    /// Registered at that address since.
    pub registered_since: Date,
    pub employer: Option<Employment>,
    /// Where notices are mailed; `None`: in the cabinet only.
    pub email: Option<String>,
}

/// The citizen's current employment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Employment {
    pub organisation: String,
    pub position: String,
    pub since: Date,
}

/// Why the registry gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read the citizens file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the citizens file {path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("the citizens file {path}: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: CitizensFileError,
    },
    /// The registry could not be asked now (a remote registry's outage); try again later.
    #[error("the citizen registry is unavailable: {0}")]
    Unavailable(String),
}

/// What is wrong with a citizens file's text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CitizensFileError {
    /// The bytes are not UTF-8 from byte `source.valid_up_to()` on.
    #[error("not UTF-8 text: {0}")]
    NotUtf8(#[source] std::str::Utf8Error),
    /// Not TOML, or not the file's shape (an unknown or missing key).
    #[error("{0}")]
    Toml(#[source] toml::de::Error),
    #[error("more than {limit} citizens")]
    TooMany { limit: usize },
    /// The `index`-th entry (from 1), listed under `personal_code`, has a wrong field.
    #[error("citizen {index} ({personal_code}): {problem}")]
    Entry {
        index: usize,
        personal_code: String,
        #[source]
        problem: FieldProblem,
    },
    #[error("citizen {personal_code} is listed twice")]
    ListedTwice { personal_code: String },
}

/// What is wrong with one field of a citizen's entry (`field` as the file names it:
/// `birth_date`, `employer.since`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldProblem {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is longer than {max_chars} characters")]
    TooLong {
        field: &'static str,
        max_chars: usize,
    },
    #[error("{field} has a control character")]
    ControlCharacter { field: &'static str },
    #[error("{field} {text:?} is not a date (YYYY-MM-DD)")]
    NotADate { field: &'static str, text: String },
    #[error("email {text:?} is not a mail address")]
    NotAMailAddress { text: String },
    #[error("personal_code {text:?} is not a personal code (PNOAZ-…)")]
    NotAPersonalCode { text: String },
}

/// The facts the portal reads about a citizen. Implementations answer for the citizen asked
/// and no one else; `Ok(None)`: the registry knows no such citizen.
pub trait CitizenRegistry: Send + Sync {
    fn citizen(&self, personal_code: &str) -> Result<Option<CitizenFacts>, RegistryError>;
}

/// Demo citizens from a TOML file, read once at start.
#[derive(Debug)]
pub struct TomlCitizenRegistry {
    citizens: HashMap<String, CitizenFacts>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    citizen: Vec<Entry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    personal_code: String,
    name: String,
    birth_date: String,
    address: String,
    registered_since: String,
    email: Option<String>,
    employer: Option<EmployerEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EmployerEntry {
    organisation: String,
    position: String,
    since: String,
}

impl TomlCitizenRegistry {
    /// Reads the file at `path` (at most [`MAX_FILE_BYTES`], [`MAX_CITIZENS`] entries).
    pub fn load(path: &Path) -> Result<TomlCitizenRegistry, RegistryError> {
        let read = |source| RegistryError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(RegistryError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_FILE_BYTES,
            });
        }
        let invalid = |source| RegistryError::Invalid {
            path: path.to_path_buf(),
            source,
        };
        let text =
            std::str::from_utf8(&bytes).map_err(|e| invalid(CitizensFileError::NotUtf8(e)))?;
        TomlCitizenRegistry::parse(text).map_err(invalid)
    }

    /// The citizens of a file's text; the error says which entry is wrong and why.
    pub fn parse(text: &str) -> Result<TomlCitizenRegistry, CitizensFileError> {
        let file: File = toml::from_str(text).map_err(CitizensFileError::Toml)?;
        if file.citizen.len() > MAX_CITIZENS {
            return Err(CitizensFileError::TooMany {
                limit: MAX_CITIZENS,
            });
        }
        let mut citizens = HashMap::new();
        for (n, entry) in file.citizen.into_iter().enumerate() {
            let code = entry.personal_code.clone();
            let facts = entry
                .into_facts()
                .map_err(|problem| CitizensFileError::Entry {
                    index: n + 1,
                    personal_code: code.clone(),
                    problem,
                })?;
            if citizens.insert(code.clone(), facts).is_some() {
                return Err(CitizensFileError::ListedTwice {
                    personal_code: code,
                });
            }
        }
        Ok(TomlCitizenRegistry { citizens })
    }

    pub fn len(&self) -> usize {
        self.citizens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.citizens.is_empty()
    }
}

impl CitizenRegistry for TomlCitizenRegistry {
    fn citizen(&self, personal_code: &str) -> Result<Option<CitizenFacts>, RegistryError> {
        Ok(self.citizens.get(personal_code).cloned())
    }
}

fn date(text: &str, field: &'static str) -> Result<Date, FieldProblem> {
    Date::parse(text, format_description!("[year]-[month]-[day]")).map_err(|_| {
        FieldProblem::NotADate {
            field,
            text: text.to_string(),
        }
    })
}

fn field(text: String, field: &'static str) -> Result<String, FieldProblem> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(FieldProblem::Empty { field });
    }
    if trimmed.chars().count() > MAX_FIELD_CHARS {
        return Err(FieldProblem::TooLong {
            field,
            max_chars: MAX_FIELD_CHARS,
        });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldProblem::ControlCharacter { field });
    }
    Ok(trimmed.to_string())
}

/// A plausible mail address: one `@` with text on both sides, no spaces. The mailer checks
/// it fully; this keeps header-breaking text out of the records.
fn email(text: String) -> Result<String, FieldProblem> {
    let text = field(text, "email")?;
    match text.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !text.chars().any(char::is_whitespace) =>
        {
            Ok(text)
        }
        _ => Err(FieldProblem::NotAMailAddress { text }),
    }
}

impl Entry {
    fn into_facts(self) -> Result<CitizenFacts, FieldProblem> {
        let personal_code = field(self.personal_code, "personal_code")?;
        if !personal_code.starts_with("PNO") || personal_code.len() > 64 {
            return Err(FieldProblem::NotAPersonalCode {
                text: personal_code,
            });
        }
        Ok(CitizenFacts {
            personal_code,
            name: field(self.name, "name")?,
            birth_date: date(&self.birth_date, "birth_date")?,
            address: field(self.address, "address")?,
            registered_since: date(&self.registered_since, "registered_since")?,
            employer: self
                .employer
                .map(|e| {
                    Ok::<_, FieldProblem>(Employment {
                        organisation: field(e.organisation, "employer.organisation")?,
                        position: field(e.position, "employer.position")?,
                        since: date(&e.since, "employer.since")?,
                    })
                })
                .transpose()?,
            email: self.email.map(email).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_citizens_file_reads_back_with_azerbaijani_letters_and_optional_parts() {
        let registry = TomlCitizenRegistry::parse(DEMO_CITIZENS).unwrap();
        assert_eq!(registry.len(), 2);
        let gunay = registry.citizen("PNOAZ-5ZK7T2Q").unwrap().unwrap();
        assert_eq!(gunay.name, "Əliyev Günay Şəmsi oğlu");
        assert_eq!(gunay.birth_date, date!(1990 - 04 - 12));
        assert_eq!(gunay.email.as_deref(), Some("gunay.aliyeva@mygov.az"));
        assert_eq!(gunay.employer.unwrap().position, "baş mütəxəssis");
        let rashad = registry.citizen("PNOAZ-3HQ8M1X").unwrap().unwrap();
        assert!(rashad.email.is_none() && rashad.employer.is_some());
        assert!(registry.citizen("PNOAZ-0000000").unwrap().is_none());
        let without_employer = &DEMO_CITIZENS[..DEMO_CITIZENS.find("[citizen.employer]").unwrap()];
        let registry = TomlCitizenRegistry::parse(without_employer).unwrap();
        assert!(registry
            .citizen("PNOAZ-5ZK7T2Q")
            .unwrap()
            .unwrap()
            .employer
            .is_none());
    }

    #[test]
    fn a_wrong_entry_is_refused_saying_which_and_why() {
        let bad_date = DEMO_CITIZENS.replace("1990-04-12", "12.04.1990");
        let e = TomlCitizenRegistry::parse(&bad_date).unwrap_err();
        match &e {
            CitizensFileError::Entry {
                index: 1,
                personal_code,
                problem: FieldProblem::NotADate { field, text },
            } => {
                assert_eq!(personal_code, "PNOAZ-5ZK7T2Q");
                assert_eq!((*field, text.as_str()), ("birth_date", "12.04.1990"));
            }
            other => panic!("expected the wrong birth_date, got {other:?}"),
        }
        assert!(
            e.to_string().contains("PNOAZ-5ZK7T2Q") && e.to_string().contains("birth_date"),
            "{e}"
        );
        let bad_mail = DEMO_CITIZENS.replace("gunay.aliyeva@mygov.az", "gunay\\r\\nBcc: x@y.az");
        let e = TomlCitizenRegistry::parse(&bad_mail).unwrap_err();
        assert!(
            matches!(
                std::error::Error::source(&e).and_then(|p| p.downcast_ref::<FieldProblem>()),
                Some(FieldProblem::ControlCharacter { field: "email" })
            ),
            "{e:?}"
        );
        let twice = format!(
            "{DEMO_CITIZENS}{}",
            &DEMO_CITIZENS[..DEMO_CITIZENS.find("[citizen.employer]").unwrap()]
        );
        let e = TomlCitizenRegistry::parse(&twice).unwrap_err();
        assert!(
            matches!(&e, CitizensFileError::ListedTwice { personal_code } if personal_code == "PNOAZ-5ZK7T2Q"),
            "{e:?}"
        );
        assert!(e.to_string().contains("twice"), "{e}");
        let unknown_key = TomlCitizenRegistry::parse("[[citizen]]\nsurname = \"x\"\n").unwrap_err();
        let toml = std::error::Error::source(&unknown_key)
            .and_then(|t| t.downcast_ref::<toml::de::Error>())
            .unwrap();
        assert!(toml.message().contains("surname"), "{toml}");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("citizens.toml");
        std::fs::write(&path, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            TomlCitizenRegistry::load(&path),
            Err(RegistryError::TooLarge { .. })
        ));
        assert!(matches!(
            TomlCitizenRegistry::load(&dir.path().join("missing.toml")),
            Err(RegistryError::Read { .. })
        ));
        std::fs::write(&path, [b"# ok\n".as_slice(), &[0xff, 0xfe]].concat()).unwrap();
        assert!(matches!(
            TomlCitizenRegistry::load(&path),
            Err(RegistryError::Invalid {
                source: CitizensFileError::NotUtf8(e),
                ..
            }) if e.valid_up_to() == 5
        ));
        std::fs::write(&path, DEMO_CITIZENS).unwrap();
        assert_eq!(TomlCitizenRegistry::load(&path).unwrap().len(), 2);
    }
}
