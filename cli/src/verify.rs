//! `imza verify`: validate a CMS / CAdES signature and print the validation report
//! (ETSI TS 119 102-2 indications). Exit 0 only when TOTAL_PASSED.

use clap::Args;

use crate::output::{CliResult, Failure};

#[derive(Args)]
pub struct VerifyArgs {}

pub fn run(_args: VerifyArgs) -> CliResult {
    Err(Failure::Internal("not implemented yet".into()))
}
