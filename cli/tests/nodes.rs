//! Several nodes on one PostgreSQL store, as a national deployment runs: one CA node
//! (`--roles ca`, beside the CA keys) and two public nodes (`--roles public`) in data
//! directories of their own that never hold a CA key. Checked with `openssl ocsp`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// `imza serve` of a node: `data_dir`, the PKI's PostgreSQL store, `args`.
fn node(pki: &TestPki, data_dir: &Path, args: &[&str]) -> Server {
    let pg = pki.postgres.as_ref().expect("a PostgreSQL store");
    let listen = format!("127.0.0.1:{}", free_port());
    // Through a shell that keeps the node's messages beside its data directory.
    let log = data_dir.with_extension("log");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("exec \"$0\" \"$@\" 2>>'{}'", log.display()))
        .arg(env!("CARGO_BIN_EXE_imza"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", &listen])
        .args(args)
        .env("IMZA_STORE", pg.url())
        .env("PGPASSWORD", pg.cluster.password());
    Server::spawn(command, &listen)
}

/// What `openssl ocsp` says of `cert` asking `server` (stdout and stderr).
fn ocsp(server: &Server, issuer: &Path, root: &Path, cert: &Path, extra: &[&str]) -> String {
    let url = format!("{}/ocsp", server.base);
    let mut args = vec![
        "ocsp",
        "-issuer",
        issuer.to_str().unwrap(),
        "-cert",
        cert.to_str().unwrap(),
        "-url",
        &url,
        "-CAfile",
        root.to_str().unwrap(),
        "-no_nonce",
    ];
    args.extend_from_slice(extra);
    let out = run("openssl", &args);
    format!("{}{}", stdout(&out), stderr(&out))
}

/// Key files under a data directory.
fn key_files(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("keys"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn two_public_nodes_answer_with_their_own_responders_and_see_a_revocation_within_a_second() {
    let pki = TestPki::on_postgres();
    pki.ok(&init_root_args(&[
        "--key",
        "ec-p384",
        "--base-url",
        BASE_URL,
    ]));
    pki.ok(&init_citizens_args(&[]));
    let cert = pki.issue_citizen("citizen-sign", "gunay");
    let serial = pki.serials("citizens").pop().expect("one certificate");
    let (issuer, root) = (pki.ca_pem("citizens"), pki.ca_pem("root"));
    let config = pki.path("serve.toml");
    std::fs::write(&config, "check_interval_seconds = 1\n").unwrap();
    let config = config.to_str().unwrap();

    let _ca_node = node(
        &pki,
        &pki.data_dir(),
        &["--roles", "ca", "--config", config],
    );
    let dirs: Vec<PathBuf> = ["pub1", "pub2"].iter().map(|n| pki.path(n)).collect();
    let public: Vec<Server> = ["pub1", "pub2"]
        .iter()
        .zip(&dirs)
        .map(|(name, dir)| {
            node(
                &pki,
                dir,
                &["--roles", "public", "--node", name, "--config", config],
            )
        })
        .collect();

    // Each public node files a request, the CA node certifies it, the node picks it up.
    let started = Instant::now();
    for (server, name) in public.iter().zip(["pub1", "pub2"]) {
        loop {
            let said = ocsp(server, &issuer, &root, &cert, &["-resp_text"]);
            if said.contains(": good") {
                assert!(
                    said.contains(&format!("OCSP Responder citizens {name}")),
                    "{name} answers with its own responder: {said}"
                );
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{name} never answered good: {said}\n{}\nCA node:\n{}",
                std::fs::read_to_string(pki.path(name).with_extension("log")).unwrap_or_default(),
                std::fs::read_to_string(pki.data_dir().with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    println!(
        "both public nodes certified and answering after {:?}",
        started.elapsed()
    );

    // A revocation on the CA side: both public nodes say revoked within a second.
    pki.revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    let revoked = Instant::now();
    for server in &public {
        loop {
            let said = ocsp(server, &issuer, &root, &cert, &[]);
            if said.contains(": revoked") {
                break;
            }
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "not revoked after 1 s on {}: {said}",
                server.base
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    println!("revoked on both public nodes after {:?}", revoked.elapsed());

    // The public nodes hold their responder keys only, no CA key; their GETs of the CRL
    // serve what the CA node stored and sign nothing.
    for dir in &dirs {
        // One responder key per CA it answers for, made here; the CA keys are on the CA node.
        let keys = key_files(dir);
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys[0].starts_with("ocsp-citizens-"), "{keys:?}");
        assert!(keys[1].starts_with("ocsp-root-"), "{keys:?}");
        for ca_key in key_files(&pki.data_dir())
            .iter()
            .filter(|k| !k.starts_with("ocsp-"))
        {
            assert!(!keys.contains(ca_key), "{ca_key} on a public node");
        }
    }
    let pg = pki.postgres.as_ref().unwrap();
    let crls = || pg.cluster.psql(&pg.database, "SELECT count(*) FROM crls");
    let before = crls();
    for server in &public {
        assert_eq!(server.get("/crl/citizens.crl").0, 200);
        assert_eq!(server.get("/health").0, 200);
    }
    assert_eq!(crls(), before);
}

/// Without a running CA node, a public node's requests wait; `imza ocsp certify` on the CA
/// side (as an operator with an HSM PIN would run it) certifies them, and the node answers.
#[test]
fn imza_ocsp_certify_answers_a_public_node_by_hand() {
    let pki = TestPki::on_postgres();
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_citizens_args(&[]));
    let cert = pki.issue_citizen("citizen-auth", "aysel");
    let (issuer, root) = (pki.ca_pem("citizens"), pki.ca_pem("root"));
    let config = pki.path("serve.toml");
    std::fs::write(&config, "check_interval_seconds = 1\n").unwrap();
    let public = node(
        &pki,
        &pki.path("pub3"),
        &[
            "--roles",
            "public",
            "--node",
            "pub3",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let said = ocsp(&public, &issuer, &root, &cert, &[]);
    assert!(said.contains("unauthorized"), "{said}");

    let certified = pki.ok(&["ocsp", "certify"]);
    assert_eq!(certified.matches(": certified").count(), 2, "{certified}");
    assert!(certified.contains("node pub3"), "{certified}");
    assert_eq!(pki.ok(&["ocsp", "certify"]).trim(), "no open requests");
    let list = pki.ok(&["ocsp", "list", "--json"]);
    assert!(
        list.contains("\"node\":\"pub3\"") || list.contains("\"node\": \"pub3\""),
        "{list}"
    );

    let started = Instant::now();
    loop {
        let said = ocsp(&public, &issuer, &root, &cert, &[]);
        if said.contains(": good") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{said}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
