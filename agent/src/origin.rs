//! Who may ask the agent anything: the web origins on its allow-list (the browser's `Origin`
//! header, RFC 6454 §7, which page script cannot set), through a `Host` naming the agent's own
//! loopback address (DNS rebinding: a hostile name resolving to 127.0.0.1 still carries its
//! own name in `Host`).

use std::fmt;
use std::net::SocketAddr;

/// Longest origin accepted on the allow-list, and longest shown in a log line.
pub const MAX_ORIGIN_CHARS: usize = 255;

/// Why an origin cannot go on the allow-list.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{given:?} is not a web origin: expected https://host[:port] (http:// only for loopback \
     development), with no path, query, user or trailing slash"
)]
pub struct BadOrigin {
    pub given: String,
}

/// The exact origins the agent answers (compared as strings, byte for byte: `Origin` is
/// already serialized by the browser, lower-case host, default port omitted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    origins: Vec<String>,
}

impl AllowList {
    /// The allow-list of `origins`, each a serialized origin (RFC 6454 §6.2): an `https`
    /// origin, or an `http` one on a loopback host for development.
    pub fn new<I, S>(origins: I) -> Result<AllowList, BadOrigin>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = AllowList::default();
        for origin in origins {
            let origin = origin.as_ref();
            check_serialized_origin(origin)?;
            if !list.origins.iter().any(|o| o == origin) {
                list.origins.push(origin.to_string());
            }
        }
        Ok(list)
    }

    /// `origin` itself when it is on the list.
    pub fn allows<'a>(&self, origin: &'a str) -> Option<&'a str> {
        self.origins.iter().any(|o| o == origin).then_some(origin)
    }

    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.origins.iter().map(String::as_str)
    }
}

fn check_serialized_origin(origin: &str) -> Result<(), BadOrigin> {
    let bad = || BadOrigin {
        given: shown(origin).to_string(),
    };
    let (scheme, rest) = origin.split_once("://").ok_or_else(bad)?;
    let (host, port) = if rest.starts_with('[') {
        // An IPv6 literal: the port, if any, follows the closing bracket.
        let close = rest.find(']').ok_or_else(bad)?;
        match &rest[close + 1..] {
            "" => (&rest[..=close], None),
            after => (
                &rest[..=close],
                Some(after.strip_prefix(':').ok_or_else(bad)?),
            ),
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p)
                if p != 0 && !port.starts_with('0') && port.bytes().all(|b| b.is_ascii_digit()) => {
            }
            _ => return Err(bad()),
        }
    }
    let host_ok = !host.is_empty()
        && origin.len() <= MAX_ORIGIN_CHARS
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.[]:".contains(&b));
    let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
    match scheme {
        "https" if host_ok => Ok(()),
        "http" if host_ok && loopback => Ok(()),
        _ => Err(bad()),
    }
}

/// `text` cut to what a log line shows, with control characters made visible by `{:?}`.
pub fn shown(text: &str) -> &str {
    match text.char_indices().nth(MAX_ORIGIN_CHARS) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// The `Host` values that name the agent listening on `address`: its IP literal with the
/// port, and `localhost` with the port.
#[derive(Clone, Debug)]
pub struct LoopbackHosts {
    accepted: Vec<String>,
}

impl LoopbackHosts {
    pub fn of(address: SocketAddr) -> LoopbackHosts {
        LoopbackHosts {
            accepted: vec![address.to_string(), format!("localhost:{}", address.port())],
        }
    }

    pub fn accepts(&self, host: &str) -> bool {
        self.accepted.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

impl fmt::Display for LoopbackHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.accepted.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_serialized_origins_go_on_the_list() {
        let list = AllowList::new([
            "https://portal.gov.az",
            "https://127.0.0.1:8443",
            "http://127.0.0.1:8080",
            "http://localhost:3000",
            "https://[::1]:8443",
        ])
        .unwrap();
        assert_eq!(
            list.allows("https://portal.gov.az"),
            Some("https://portal.gov.az")
        );
        for refused in [
            "https://portal.gov.az/",
            "https://portal.gov.az/login",
            "https://user@portal.gov.az",
            "http://portal.gov.az",
            "https://PORTAL.gov.az",
            "https://portal.gov.az:0",
            "https://portal.gov.az:08443",
            "https://portal.gov.az:99999",
            "portal.gov.az",
            "null",
            "*",
            "",
        ] {
            assert!(AllowList::new([refused]).is_err(), "{refused}");
        }
    }

    #[test]
    fn allowed_means_exactly_equal() {
        let list = AllowList::new(["https://portal.gov.az"]).unwrap();
        for other in [
            "https://portal.gov.az.evil.example",
            "https://evil-portal.gov.az",
            "https://portal.gov.az:443",
            "http://portal.gov.az",
            "https://portal.gov.a",
            "null",
        ] {
            assert_eq!(list.allows(other), None, "{other}");
        }
    }

    #[test]
    fn host_must_name_the_agent_itself() {
        let hosts = LoopbackHosts::of("127.0.0.1:24843".parse().unwrap());
        assert!(hosts.accepts("127.0.0.1:24843"));
        assert!(hosts.accepts("localhost:24843"));
        for refused in [
            "evil.example:24843",
            "127.0.0.1",
            "127.0.0.1:80",
            "localhost",
            "127.0.0.2:24843",
        ] {
            assert!(!hosts.accepts(refused), "{refused}");
        }
    }
}
