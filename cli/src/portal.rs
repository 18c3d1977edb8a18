//! `imza portal`: the citizen portal's administration. For now the one-time access codes a
//! service centre gives a citizen who has no card or phone at hand.

use clap::Subcommand;
use serde_json::json;

use imza_core::clock::rfc3339;
use imza_portal::access_code::{issue, personal_code_of, AccessCodeError, AccessCodePolicy};
use time::Duration;

use crate::ca::{open_pki, Home};
use crate::output::{print_json, store_failure, CliResult, Failure};

#[derive(Subcommand)]
pub enum PortalCommand {
    /// One-time access codes for logging in to the portal.
    #[command(subcommand)]
    Code(CodeCommand),
}

#[derive(Subcommand)]
pub enum CodeCommand {
    /// Issue a one-time access code for the citizen with this national id (FİN), to hand to
    /// them at the service centre. It is printed once and kept only as a slow hash (scrypt);
    /// it replaces a code the citizen had, is used once, expires after --valid-hours, and five
    /// wrong tries lock the citizen out for 15 minutes.
    Issue {
        /// The citizen's national id (FİN): 7 characters, A-Z and 0-9.
        #[arg(long)]
        national_id: String,
        /// Hours the code may be used (1 to 168).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=168))]
        valid_hours: u32,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(home: &Home, command: PortalCommand) -> CliResult {
    match command {
        PortalCommand::Code(CodeCommand::Issue {
            national_id,
            valid_hours,
            json: json_out,
        }) => {
            // Bad input is refused before the store is opened: nothing is made for it.
            personal_code_of(&national_id).map_err(|e| Failure::Input(e.to_string()))?;
            // The CA store must exist; the portal's tables are made in it if missing.
            let pki = open_pki(home)?;
            let store = imza_portal::store::open(&home.store).map_err(store_failure)?;
            let policy = AccessCodePolicy {
                lifetime: Duration::hours(i64::from(valid_hours)),
                ..AccessCodePolicy::default()
            };
            let issued =
                issue(store.as_ref(), &national_id, pki.now(), &policy).map_err(|e| match e {
                    AccessCodeError::Store(e) => store_failure(e),
                    other => Failure::Input(other.to_string()),
                })?;
            let expires = rfc3339(issued.expires_at);
            if json_out {
                return print_json(&json!({
                    "personal_code": issued.personal_code,
                    "code": issued.code,
                    "expires_at": expires,
                }));
            }
            println!("access code for {}: {}", issued.personal_code, issued.code);
            println!("valid until {expires}, once; five wrong tries lock it for 15 minutes");
            Ok(())
        }
    }
}
