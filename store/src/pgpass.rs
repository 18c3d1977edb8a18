//! Where a PostgreSQL password comes from when the URL has none — libpq's conventions, so an
//! operator's existing set-up works and the password never sits on a command line: the
//! `PGPASSWORD` environment variable, else the password file (`PGPASSFILE`, else
//! `~/.pgpass`: lines of `host:port:database:user:password`, `*` a wildcard, `\` escaping
//! `:` and `\`; ignored, as libpq does, when others may read it). The user defaults to
//! `PGUSER`, else the login name.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A password file larger than this is not read (a password file is a few lines).
const MAX_PASSFILE_BYTES: u64 = 1 << 20;

/// Fills in the user and password `config` lacks. Returns a note for the operator when a
/// password file was skipped (readable by others), as libpq warns.
pub(crate) fn complete(config: &mut postgres::Config) -> Option<String> {
    if config.get_user().is_none() {
        if let Some(user) = ["PGUSER", "USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        {
            config.user(&user);
        }
    }
    if config.get_password().is_some() {
        return None;
    }
    if let Some(password) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
        config.password(password.as_encoded_bytes());
        return None;
    }
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_PASSFILE_BYTES {
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Some(format!(
            "password file {} is not used: others may read it (chmod 0600 it)",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        config.get_dbname().unwrap_or(""),
        config.get_user().unwrap_or(""),
    ];
    if let Some(password) = find(&text, wanted) {
        config.password(password);
    }
    None
}

/// The password of the first line whose four fields match `wanted`.
fn find(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .find_map(|line| {
            let fields = split(line);
            if fields.len() != 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want);
            matches.then(|| fields[4].clone())
        })
}

/// Splits a password-file line at unescaped `:`, undoing `\:` and `\\`.
fn split(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    field.push(next);
                }
            }
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    db.example:5432:other:imza:wrong\n\
                    db.example:5432:pki:imza:pa\\:ss\\\\word\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            find(text, ["db.example", "5432", "pki", "imza"]).as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            find(text, ["10.0.0.1", "5433", "pki", "ops"]).as_deref(),
            Some("fallback")
        );
        assert_eq!(find("a:b:c\n", ["a", "b", "c", "d"]), None);
    }

    #[test]
    fn a_password_may_hold_colons_after_the_fourth_field() {
        assert_eq!(
            find("h:1:d:u:a:b:c", ["h", "1", "d", "u"]).as_deref(),
            Some("a:b:c")
        );
    }
}
