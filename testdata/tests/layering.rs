//! No library's unit tests link a second copy of their own crate.
//!
//! A crate's unit tests (`#[cfg(test)]` in its `src/`) are built on a test copy of the crate.
//! If they use a dev-dependency that itself depends on the crate, the test binary holds two
//! copies: the fixture's types are the normal copy's, not the test copy's, and two copies of
//! any global state (a PKCS#11 context, a cache) exist side by side. imza-testdata depends on
//! most of imza, so unit tests use imza-testenv and imza-testpki instead. This test reads the
//! workspace's dependency graph from `cargo metadata` and every crate's `src/`, and names each
//! crate whose sources use a dev-dependency that depends, directly or not, on the crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// One workspace package: its directory and its workspace dependencies by kind.
struct Package {
    dir: PathBuf,
    normal: BTreeSet<String>,
    dev: BTreeSet<String>,
}

fn workspace() -> BTreeMap<String, Package> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let mut normal = BTreeSet::new();
            let mut dev = BTreeSet::new();
            for dep in p["dependencies"].as_array().unwrap() {
                let name = dep["name"].as_str().unwrap().to_string();
                if !names.contains(&name) {
                    continue;
                }
                match dep["kind"].as_str() {
                    None => normal.insert(name),
                    Some("dev") => dev.insert(name),
                    Some(_) => false,
                };
            }
            let manifest = Path::new(p["manifest_path"].as_str().unwrap());
            let package = Package {
                dir: manifest.parent().unwrap().to_path_buf(),
                normal,
                dev,
            };
            (p["name"].as_str().unwrap().to_string(), package)
        })
        .collect()
}

/// Every workspace crate `name` depends on through normal dependencies, `name` not included
/// unless a cycle leads back to it.
fn closure(packages: &BTreeMap<String, Package>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = packages[name].normal.iter().map(String::as_str).collect();
    while let Some(next) = todo.pop() {
        if seen.insert(next.to_string()) {
            todo.extend(packages[next].normal.iter().map(String::as_str));
        }
    }
    seen
}

/// The `.rs` files under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn no_unit_test_uses_a_fixture_that_depends_on_its_own_crate() {
    let packages = workspace();
    let mut offences = Vec::new();
    for (name, package) in &packages {
        let files = sources(&package.dir.join("src"));
        for dev in &package.dev {
            if !closure(&packages, dev).contains(name) {
                continue;
            }
            let ident = dev.replace('-', "_");
            for file in &files {
                let text = std::fs::read_to_string(file).unwrap();
                if text.contains(&format!("{ident}::")) {
                    offences.push(format!(
                        "{} uses {dev}, which depends on {name}",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "unit tests that link a second copy of their crate:\n{}",
        offences.join("\n")
    );
}

/// The check above sees the graph it needs: imza-testdata depends on the crates whose unit
/// tests once used it, and the fixtures they use now depend on none of them.
#[test]
fn the_unit_test_fixtures_sit_below_the_crates_that_use_them() {
    let packages = workspace();
    let testdata = closure(&packages, "imza-testdata");
    for crate_name in ["imza-core", "imza-validation", "imza-mobile-sign"] {
        assert!(testdata.contains(crate_name), "{crate_name}");
    }
    assert_eq!(closure(&packages, "imza-testenv"), BTreeSet::new());
    assert_eq!(
        closure(&packages, "imza-testpki"),
        BTreeSet::from(["imza-core".to_string()])
    );
}
