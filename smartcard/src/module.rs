//! Which PKCS#11 module to load: `--pkcs11-module`, else `IMZA_PKCS11_MODULE`, else OpenSC's
//! `opensc-pkcs11.so` where the distribution puts it. A vendor's card middleware or SoftHSM2 is
//! chosen the same way.

use std::path::{Path, PathBuf};

use crate::CardError;

/// The environment variable naming the PKCS#11 module when no flag does.
pub const MODULE_ENV: &str = "IMZA_PKCS11_MODULE";

/// Where Linux distributions and macOS install OpenSC's PKCS#11 module.
pub const OPENSC_MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/lib/pkcs11/opensc-pkcs11.so",
    "/usr/local/lib/opensc-pkcs11.so",
    "/Library/OpenSC/lib/opensc-pkcs11.so",
];

/// The module to load: `explicit` (the flag, or the environment variable when the CLI maps it)
/// if given, else `IMZA_PKCS11_MODULE`, else the first OpenSC module found. A path that does not
/// exist is an error naming it, not a `dlopen` failure later.
pub fn resolve_module(explicit: Option<&Path>) -> Result<PathBuf, CardError> {
    let from_env = std::env::var_os(MODULE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(path) = explicit.map(Path::to_path_buf).or(from_env) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(CardError::ModuleNotFound(format!(
                "PKCS#11 module {} does not exist",
                path.display()
            )))
        };
    }
    OPENSC_MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CardError::ModuleNotFound(format!(
                "OpenSC's PKCS#11 module (opensc-pkcs11.so) is not installed in any of {}; \
                 install OpenSC (Debian: `apt install opensc-pkcs11`) or name your card's module \
                 with --pkcs11-module or {MODULE_ENV}",
                OPENSC_MODULE_CANDIDATES.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_module_must_exist() {
        let err = resolve_module(Some(Path::new("/nonexistent/vendor-pkcs11.so"))).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/vendor-pkcs11.so"),
            "{err}"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(resolve_module(Some(file.path())).unwrap(), file.path());
    }
}
