//! `imza ts`: the RFC 3161 client (request a timestamp over HTTP, verify a token).

use clap::Subcommand;

use crate::output::{CliResult, Failure};

#[derive(Subcommand)]
pub enum TsCommand {
    /// Not written yet.
    Request,
}

pub fn run(_command: TsCommand) -> CliResult {
    Err(Failure::Internal("imza ts is not written yet".into()))
}
