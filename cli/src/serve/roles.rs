//! What one `imza serve` process runs (`--roles`): the public roles a node facing the
//! internet runs, and the `ca` role that only the CA node, beside its keys, runs.
//!
//! | role      | what                                                        | CA key |
//! |-----------|-------------------------------------------------------------|--------|
//! | `ocsp`    | `/ocsp` with this node's delegated responders               | never  |
//! | `tsa`     | `/tsa` with the configured time-stamping unit               | never  |
//! | `verify`  | `/verify`                                                   | never  |
//! | `mss`     | `/mss/v1`, the mobile signature service                     | never  |
//! | `publish` | `/ca/NAME.crt` and the CRLs the CA side stored, `/crl/NAME.crl` | never  |
//! | `portal`  | `/portal`, the citizen portal (HTTPS, or plain HTTP on loopback only) | never  |
//! | `ca`      | signs CRLs into the store on a schedule; certifies and renews delegated responders | yes |
//!
//! A process without `ca` opens its PKI with [`imza_ca::Pki::without_ca_keys`]: nothing in it
//! can sign with a CA key, whatever a request asks — a GET of a stale CRL serves the stored
//! one, never signs a new one.

use std::fmt;
use std::str::FromStr;

/// One role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Ocsp,
    Tsa,
    Verify,
    Mss,
    Publish,
    Ca,
    Portal,
}

impl Role {
    const ALL: [Role; 7] = [
        Role::Ocsp,
        Role::Tsa,
        Role::Verify,
        Role::Mss,
        Role::Publish,
        Role::Ca,
        Role::Portal,
    ];

    fn name(self) -> &'static str {
        match self {
            Role::Ocsp => "ocsp",
            Role::Tsa => "tsa",
            Role::Verify => "verify",
            Role::Mss => "mss",
            Role::Publish => "publish",
            Role::Ca => "ca",
            Role::Portal => "portal",
        }
    }
}

/// The roles of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    /// Everything, in one process: the embedded single node and the demo.
    const ALL_BITS: Roles = Roles(0b111_1111);

    /// The roles a public node runs: all but `ca`.
    pub fn public() -> Roles {
        Roles(Roles::ALL_BITS.0 & !Roles::bit(Role::Ca))
    }

    fn bit(role: Role) -> u8 {
        1 << (role as u8)
    }

    pub fn has(self, role: Role) -> bool {
        self.0 & Roles::bit(role) != 0
    }
}

impl FromStr for Roles {
    type Err = String;

    /// `all`, `public`, or a comma-separated list of role names.
    fn from_str(text: &str) -> Result<Roles, String> {
        let mut roles = 0u8;
        for word in text.split(',').map(str::trim) {
            roles |= match word {
                "all" => Roles::ALL_BITS.0,
                "public" => Roles::public().0,
                other => match Role::ALL.iter().find(|r| r.name() == other) {
                    Some(role) => Roles::bit(*role),
                    None => {
                        return Err(format!(
                            "unknown role {other:?}: use all, public, or a list of \
                             ocsp, tsa, verify, mss, publish, portal, ca"
                        ))
                    }
                },
            };
        }
        Ok(Roles(roles))
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Role::ALL
            .iter()
            .filter(|r| self.has(**r))
            .map(|r| r.name())
            .collect();
        f.write_str(&names.join(","))
    }
}

/// This machine's name as a node name (`a-z`, `0-9`, `-`, at most 64): the default of
/// `--node` on a public node.
pub fn host_node_name() -> String {
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().to_ascii_lowercase();
    let name: String = host
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            _ => '-',
        })
        .take(64)
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "node".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_names_lists_and_groups() {
        assert_eq!("all".parse::<Roles>().unwrap(), Roles::ALL_BITS);
        let public: Roles = "public".parse().unwrap();
        assert!(!public.has(Role::Ca) && public.has(Role::Ocsp) && public.has(Role::Publish));
        let some: Roles = "ocsp, publish".parse().unwrap();
        assert_eq!(some.to_string(), "ocsp,publish");
        assert!("ocsp,cta".parse::<Roles>().unwrap_err().contains("cta"));
        assert_eq!(
            Roles::ALL_BITS.to_string(),
            "ocsp,tsa,verify,mss,publish,ca,portal"
        );
        assert!(public.has(Role::Portal));
    }
}
