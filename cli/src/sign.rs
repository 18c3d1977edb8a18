//! `imza sign`: CMS / CAdES signatures (B-B to B-LTA) with a key file, PKCS#12 or PKCS#11
//! key, and `imza sign --augment` to raise an existing signature's level.

use clap::Args;

use crate::output::{CliResult, Failure};

#[derive(Args)]
pub struct SignArgs {}

pub fn run(_args: SignArgs) -> CliResult {
    Err(Failure::Internal("not implemented yet".into()))
}
