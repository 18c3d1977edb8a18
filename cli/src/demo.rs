pub fn run(_d: &std::path::Path) -> crate::output::CliResult {
    Ok(())
}
