//! Where a store lives, as a URL: `sqlite:PATH` (the embedded engine; `sqlite:///abs/path`
//! is accepted too) or `postgres://[user[:password]@]host[:port]/database[?options]` (also
//! `postgresql://`, libpq's key=value options such as `sslmode=require` in the query).
//!
//! A URL is shown only redacted: its [`Display`](std::fmt::Display) has no password, and
//! errors about a URL never quote it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A parsed store location.
#[derive(Clone)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    Postgres(Box<PostgresUrl>),
}

/// A `postgres://` location: the client configuration, and the URL as it may be shown.
#[derive(Clone)]
pub struct PostgresUrl {
    pub(crate) config: postgres::Config,
    shown: String,
}

/// Why a text is not a store URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error(
        "unknown store scheme {0:?}: use sqlite:PATH (the embedded store) or postgres://HOST/DATABASE"
    )]
    UnknownScheme(String),
    #[error("sqlite: needs a file path (sqlite:/var/lib/imza/imza.db)")]
    EmptyPath,
    #[error("not a valid postgres:// URL: {0}")]
    Postgres(String),
}

impl StoreUrl {
    /// The embedded store in `path`.
    pub fn sqlite(path: &Path) -> StoreUrl {
        StoreUrl::Sqlite(path.to_path_buf())
    }

    /// Whether the URL itself carries a password (which a command line would show in `ps`).
    pub fn has_password(&self) -> bool {
        match self {
            StoreUrl::Sqlite(_) => false,
            StoreUrl::Postgres(p) => p.config.get_password().is_some(),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self {
            StoreUrl::Sqlite(_) => "sqlite",
            StoreUrl::Postgres(_) => "postgres",
        }
    }
}

impl FromStr for StoreUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<StoreUrl, UrlError> {
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(UrlError::UnknownScheme(String::new()));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                // sqlite:///abs → /abs; sqlite://rel is taken as written after the slashes.
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(UrlError::EmptyPath);
                }
                Ok(StoreUrl::Sqlite(PathBuf::from(path)))
            }
            "postgres" | "postgresql" => {
                PostgresUrl::parse(text).map(|p| StoreUrl::Postgres(Box::new(p)))
            }
            // Only the scheme is quoted: whatever follows might be a password.
            other => Err(UrlError::UnknownScheme(
                other.chars().take(32).collect::<String>(),
            )),
        }
    }
}

impl PostgresUrl {
    fn parse(text: &str) -> Result<PostgresUrl, UrlError> {
        let password = url_password(text);
        let config = postgres::Config::from_str(text).map_err(|e| {
            let mut message = e.to_string();
            if let Some(p) = password.filter(|p| !p.is_empty()) {
                message = message.replace(p, "***");
            }
            UrlError::Postgres(message)
        })?;
        if config.get_hosts().is_empty() {
            return Err(UrlError::Postgres(
                "no host (postgres://HOST[:PORT]/DATABASE)".into(),
            ));
        }
        if config.get_dbname().is_none_or(str::is_empty) {
            return Err(UrlError::Postgres(
                "no database name (postgres://HOST[:PORT]/DATABASE)".into(),
            ));
        }
        let shown = show(&config);
        Ok(PostgresUrl { config, shown })
    }

    /// The database name.
    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or("")
    }

    /// A copy of this URL naming another database on the same server (for tests and
    /// `imza store migrate`).
    pub fn with_database(&self, name: &str) -> PostgresUrl {
        let mut config = self.config.clone();
        config.dbname(name);
        let shown = show(&config);
        PostgresUrl { config, shown }
    }

    /// This URL with `password` set (from an environment variable or a password file).
    pub fn with_password(&self, password: &[u8]) -> PostgresUrl {
        let mut config = self.config.clone();
        config.password(password);
        PostgresUrl {
            config,
            shown: self.shown.clone(),
        }
    }
}

/// The text between `user:` and `@` of a URL, to keep it out of parse errors.
fn url_password(text: &str) -> Option<&str> {
    let rest = text.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1)
}

/// `postgres://user@host:port/db`, without password or options.
fn show(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let port = config
        .get_ports()
        .first()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    format!(
        "postgres://{user}{host}{port}/{}",
        config.get_dbname().unwrap_or("")
    )
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Postgres(p) => f.write_str(&p.shown),
        }
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Debug is the redacted form too: a URL in a `{:?}` must not leak its password.
impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StoreUrl, UrlError> {
        text.parse()
    }

    #[test]
    fn sqlite_urls_name_a_path() {
        for (text, path) in [
            ("sqlite:imza.db", "imza.db"),
            ("sqlite:/var/lib/imza/imza.db", "/var/lib/imza/imza.db"),
            ("sqlite:///var/lib/imza/imza.db", "/var/lib/imza/imza.db"),
            ("SQLite:data/x.db", "data/x.db"),
        ] {
            match parse(text) {
                Ok(StoreUrl::Sqlite(p)) => assert_eq!(p, PathBuf::from(path), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(parse("sqlite:").err(), Some(UrlError::EmptyPath));
    }

    #[test]
    fn postgres_urls_are_shown_without_their_password() {
        let url = parse("postgres://imza:s3cret-pw@db.example:5433/pki?sslmode=require").unwrap();
        assert!(url.has_password());
        assert_eq!(url.engine(), "postgres");
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(
            shown.contains("postgres://imza@db.example:5433/pki"),
            "{shown}"
        );
        let bare = parse("postgresql://imza@127.0.0.1/pki").unwrap();
        assert!(!bare.has_password());
    }

    #[test]
    fn unknown_schemes_and_bad_postgres_urls_are_refused_without_echoing_secrets() {
        assert_eq!(
            parse("mysql://root:hunter2@x/y").err(),
            Some(UrlError::UnknownScheme("mysql".into()))
        );
        assert!(matches!(parse("imza.db"), Err(UrlError::UnknownScheme(_))));
        for bad in [
            "postgres://imza:hunter2@host:notaport/db",
            "postgres://imza:hunter2@/db",
            "postgres://imza:hunter2@host",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(matches!(e, UrlError::Postgres(_)), "{bad}: {e:?}");
            assert!(!e.to_string().contains("hunter2"), "{bad}: {e}");
        }
    }
}
