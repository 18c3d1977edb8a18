//! The data directory: a command that needs a store refuses a directory without one (a
//! mistyped `--data-dir` must not pass for an empty PKI) and creates nothing; a store imza
//! creates is readable by its user only; a directory another user owns, or that its group or
//! others may write to, is refused and left as it is.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs imza with `--data-dir DATA ARGS`; insists on exit 2 and a one-line message that
/// contains `reason`; returns the message.
fn refused(data_dir: &Path, args: &[&str], reason: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_imza"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("CARD_PIN", "123456")
        .env("PHONE_PIN", "24680")
        .output()
        .expect("run imza");
    let said = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "imza {args:?} in {}: {said}",
        data_dir.display()
    );
    assert_eq!(
        said.trim_end().lines().count(),
        1,
        "one line expected: {said}"
    );
    assert!(
        said.contains(reason),
        "imza {args:?}: {said:?} should say {reason:?}"
    );
    said
}

#[test]
fn every_store_command_refuses_a_missing_data_dir_and_creates_nothing() {
    let pki = TestPki::new();
    let (csr, out, csr_dir) = (pki.path("a.csr"), pki.path("out"), pki.path("csrs"));
    std::fs::write(&csr, b"not read").unwrap();
    std::fs::create_dir(&csr_dir).unwrap();
    std::fs::write(csr_dir.join("b.csr"), b"not read").unwrap();
    let missing = pki.path("typo/imza-data");
    for args in store_commands(
        out.to_str().unwrap(),
        csr.to_str().unwrap(),
        csr_dir.to_str().unwrap(),
    ) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let said = refused(&missing, &args, "no imza store at");
        assert!(said.contains(missing.to_str().unwrap()), "{said}");
        assert!(
            said.contains("--data-dir") && said.contains("imza ca init"),
            "{said}"
        );
        assert!(
            !pki.path("typo").exists(),
            "imza {args:?} created the directory"
        );
        assert!(!out.exists(), "imza {args:?} wrote {}", out.display());
    }
}

#[test]
fn a_data_dir_without_a_store_is_refused_too_and_stays_empty() {
    let pki = TestPki::new();
    let empty = pki.data_dir();
    std::fs::create_dir(&empty).unwrap();
    chmod(&empty, 0o700);
    for args in [
        vec!["audit", "verify"],
        vec!["ca", "list"],
        init_citizens_args(&[]),
        vec!["serve", "--listen", "127.0.0.1:0"],
    ] {
        refused(&empty, &args, "no imza store at");
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "{args:?}");
    }
    // A root's `ca init` is what creates a store.
    pki.ok(&init_root_args(&[]));
    assert!(pki.ok(&["audit", "verify"]).contains("intact"));
}

/// The store and its WAL files are the user's only (0600), while `imza serve` has them open
/// and after; the directories imza creates are 0700, keys 0600.
#[test]
fn a_created_store_is_private_to_its_user() {
    let pki = TestPki::with_root_and_citizens();
    let data = pki.data_dir();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("keys")), 0o700);
    assert_eq!(mode(&data.join("keys/root.key.pem")), 0o600);
    assert_eq!(mode(&data.join("imza.db")), 0o600);
    let _server = Server::start(&pki);
    for name in ["imza.db", "imza.db-wal", "imza.db-shm"] {
        let path = data.join(name);
        assert!(path.exists(), "{name} while imza serve runs");
        assert_eq!(mode(&path), 0o600, "{name}");
    }
}

#[test]
fn a_data_dir_others_or_the_group_may_write_is_refused_and_left_as_it_is() {
    let pki = TestPki::new();
    let data = pki.data_dir();
    std::fs::create_dir(&data).unwrap();
    for loose in [0o777, 0o775, 0o1777] {
        chmod(&data, loose);
        let said = refused(
            &data,
            &init_root_args(&[]),
            "writable by its group or by others",
        );
        assert!(said.contains("chmod 700"), "{said}");
        assert_eq!(mode(&data), loose, "the mode was changed");
        assert_eq!(
            std::fs::read_dir(&data).unwrap().count(),
            0,
            "files were created"
        );
    }

    // A store made in a private directory, whose directory is opened up later.
    chmod(&data, 0o700);
    pki.ok(&init_root_args(&[]));
    let before = pki.snapshot();
    chmod(&data, 0o777);
    refused(
        &data,
        &["audit", "verify"],
        "writable by its group or by others",
    );
    refused(
        &data,
        &init_citizens_args(&[]),
        "writable by its group or by others",
    );
    assert_eq!(mode(&data), 0o777);
    chmod(&data, 0o700);
    assert_eq!(pki.snapshot(), before);

    // The key directory and the profile overrides are held to the same rule.
    let keys = data.join("keys");
    chmod(&keys, 0o770);
    let said = refused(&data, &["ca", "list"], "writable by its group or by others");
    assert!(said.contains(keys.to_str().unwrap()), "{said}");
    chmod(&keys, 0o700);
    let profiles = data.join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    chmod(&profiles, 0o757);
    refused(&data, &["ca", "list"], "writable by its group or by others");
    chmod(&profiles, 0o700);
    pki.ok(&["ca", "list"]);
}

/// A directory that belongs to another user is refused, not taken over. As root the test
/// hands a fresh directory to `nobody` (65534); otherwise a root-owned directory serves.
#[test]
fn a_data_dir_of_another_user_is_refused() {
    let pki = TestPki::new();
    let running_as_root = stdout(&run("id", &["-u"])).trim() == "0";
    let foreign = if running_as_root {
        let dir = pki.data_dir();
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o700);
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
        dir
    } else {
        Path::new("/usr").to_path_buf()
    };
    let owner = std::fs::metadata(&foreign).unwrap().uid();
    let said = refused(&foreign, &init_root_args(&[]), "belongs to user id");
    assert!(said.contains(&owner.to_string()), "{said}");
    if running_as_root {
        assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 0);
        assert_eq!(mode(&foreign), 0o700);
    }
}
