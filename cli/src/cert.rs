//! `imza cert verify` (RFC 5280 path validation of one certificate) and `imza cert limbo`
//! (the x509-limbo harness contract), over imza-validation.

use clap::Subcommand;

use crate::output::{CliResult, Failure};

#[derive(Subcommand)]
pub enum CertCommand {
    /// Validate a certificate path (RFC 5280 §6) from LEAF to a trust anchor. Exit 0 valid, 1 invalid.
    Verify,
    /// Run an x509-limbo test suite read from stdin; write the results JSON to stdout.
    Limbo,
}

pub fn run(command: CertCommand) -> CliResult {
    match command {
        CertCommand::Verify | CertCommand::Limbo => {
            Err(Failure::Internal("not implemented yet".into()))
        }
    }
}
