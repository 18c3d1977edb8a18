//! The data directory on disk: what it must look like before imza trusts what is in it, and
//! how it is made.
//!
//! A data directory holds the store (`imza.db`), software CA keys (`keys/`) and profile
//! overrides (`profiles/`): whoever can write in it can swap the store, plant a key or widen a
//! profile. So each of these directories must belong to the user running imza and be writable
//! by nobody else (no group or other write bit). One that is not is **refused**, not fixed:
//! `chmod 700` now would bless whatever another user may already have put there, so the
//! operator checks the contents and tightens the mode. A directory imza creates is mode 0700
//! (the store file itself is created 0600 by [`crate::store::sqlite::SqliteStore`]).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use crate::error::CaError;

/// The SQLite file inside the data directory.
pub const DATABASE_FILE: &str = "imza.db";
/// Software keys, under the data directory.
pub const KEYS_DIR: &str = "keys";
/// Profile overrides, under the data directory.
pub const PROFILES_DIR: &str = "profiles";

/// Mode of every directory imza creates in a data directory.
const PRIVATE_DIR_MODE: u32 = 0o700;
/// Write permission for the group or for others.
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// Checks the data directory of an existing PKI: `NoStore` when it is missing (nothing is
/// created), else as [`check_private_dir`] for it and its `keys/` and `profiles/`. Whether the
/// store itself exists is the store's to say (`imza_store::Create::No`).
pub fn check_existing(data_dir: &Path) -> Result<(), CaError> {
    match std::fs::metadata(data_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CaError::NoStore {
            store: data_dir.display().to_string(),
        }),
        Err(e) => Err(CaError::io(data_dir, e)),
        Ok(_) => {
            check_private_dir(data_dir)?;
            check_subdirs(data_dir)
        }
    }
}

/// Creates the data directory (mode 0700, with any missing parents) if it is missing, else
/// checks it as [`check_private_dir`]; checks `keys/` and `profiles/` if they exist.
pub fn create_or_check(data_dir: &Path) -> Result<(), CaError> {
    if std::fs::symlink_metadata(data_dir).is_err() {
        create_private_dir(data_dir)?;
    }
    check_private_dir(data_dir)?;
    check_subdirs(data_dir)
}

/// Creates `keys/` (0700) under a checked data directory if it is missing.
pub fn ensure_keys_dir(data_dir: &Path) -> Result<(), CaError> {
    let keys = data_dir.join(KEYS_DIR);
    if std::fs::symlink_metadata(&keys).is_err() {
        create_private_dir(&keys)?;
    }
    Ok(())
}

/// Refuses a directory that another user owns or that its group or others may write to: such
/// a directory's contents cannot be trusted (see the module's documentation).
pub fn check_private_dir(path: &Path) -> Result<(), CaError> {
    let meta = std::fs::metadata(path).map_err(|e| CaError::io(path, e))?;
    if !meta.is_dir() {
        return Err(CaError::NotADirectory(path.to_path_buf()));
    }
    let user = rustix::process::geteuid().as_raw();
    if meta.uid() != user {
        return Err(CaError::DirectoryNotOwned {
            path: path.to_path_buf(),
            owner: meta.uid(),
            user,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & WRITABLE_BY_OTHERS != 0 {
        return Err(CaError::DirectoryWritableByOthers {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn check_subdirs(data_dir: &Path) -> Result<(), CaError> {
    for sub in [KEYS_DIR, PROFILES_DIR] {
        let dir = data_dir.join(sub);
        if std::fs::symlink_metadata(&dir).is_ok() {
            check_private_dir(&dir)?;
        }
    }
    Ok(())
}

fn create_private_dir(path: &Path) -> Result<(), CaError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path)
        .map_err(|e| CaError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_missing_directory_is_no_store_and_nothing_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("typo/data");
        assert!(matches!(
            check_existing(&missing),
            Err(CaError::NoStore { store }) if store == missing.display().to_string()
        ));
        assert!(!tmp.path().join("typo").exists());
    }

    #[test]
    fn created_directories_are_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("a/b");
        create_or_check(&data).unwrap();
        ensure_keys_dir(&data).unwrap();
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join(KEYS_DIR)), 0o700);
        std::fs::write(data.join(DATABASE_FILE), b"").unwrap();
        check_existing(&data).unwrap();
    }

    #[test]
    fn a_directory_others_or_the_group_may_write_is_refused_and_left_as_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        create_or_check(&data).unwrap();
        std::fs::write(data.join(DATABASE_FILE), b"").unwrap();
        for loose in [0o777, 0o770, 0o702, 0o1777] {
            chmod(&data, loose);
            for result in [check_existing(&data), create_or_check(&data)] {
                match result {
                    Err(CaError::DirectoryWritableByOthers { mode, .. }) => {
                        assert_eq!(mode, loose)
                    }
                    other => panic!("{loose:o}: {other:?}"),
                }
            }
            assert_eq!(mode(&data), loose);
        }
        // Readable by others is not a reason to refuse: the files that matter are 0600.
        chmod(&data, 0o755);
        check_existing(&data).unwrap();

        let keys = data.join(KEYS_DIR);
        ensure_keys_dir(&data).unwrap();
        chmod(&keys, 0o777);
        assert!(matches!(
            check_existing(&data),
            Err(CaError::DirectoryWritableByOthers { path, .. }) if path == keys
        ));
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("data");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            create_or_check(&file),
            Err(CaError::NotADirectory(_))
        ));
    }
}
