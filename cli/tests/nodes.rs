//! Several nodes on one PostgreSQL store, as a national deployment runs: one CA node
//! (`--roles ca`, beside the CA keys) and two public nodes (`--roles public`) in data
//! directories of their own that never hold a CA key. Checked with `openssl ocsp`.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// `imza serve` of a node: `data_dir`, the PKI's PostgreSQL store, `args`.
fn node(pki: &TestPki, data_dir: &Path, args: &[&str]) -> Server {
    node_with_env(pki, data_dir, args, &[])
}

/// [`node`] with more environment variables.
fn node_with_env(pki: &TestPki, data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
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
        .env("PGPASSWORD", pg.cluster.password())
        .envs(env.iter().copied());
    Server::spawn(command, &listen)
}

/// What `openssl ocsp` says of `cert` asking `server` (stdout and stderr).
fn ocsp(server: &Server, issuer: &Path, root: &Path, cert: &Path, extra: &[&str]) -> String {
    common::openssl_ocsp(&server.base, issuer, root, cert, extra)
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
    let pki = TestPki::on_postgres_with_root_and_citizens();
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

/// A public node whose responder keys are on a PKCS#11 token (SoftHSM2) rather than files:
/// the key is made on the token, the CA side certifies it like any other, the node answers
/// with it, and the node's data directory holds no key at all.
#[test]
fn a_public_node_keeps_its_responder_key_in_an_hsm() {
    use imza_testdata::softhsm::SoftHsm;
    let hsm = SoftHsm::new();
    hsm.init_token("Node pub4", "12345678", "4321");
    let module = hsm.module_path().to_str().unwrap().to_owned();
    let conf = hsm.conf_path().to_str().unwrap().to_owned();
    let pki = TestPki::on_postgres();
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_citizens_args(&[]));
    let cert = pki.issue_citizen("citizen-auth", "leyla");
    let (issuer, root) = (pki.ca_pem("citizens"), pki.ca_pem("root"));
    let config = pki.path("serve-hsm.toml");
    std::fs::write(
        &config,
        format!(
            "check_interval_seconds = 1\n[node]\npkcs11_module = \"{module}\"\n\
             pkcs11_token = \"Node pub4\"\npkcs11_pin_env = \"NODE_PIN\"\n"
        ),
    )
    .unwrap();
    let data_dir = pki.path("pub4");
    let public = node_with_env(
        &pki,
        &data_dir,
        &[
            "--roles",
            "public",
            "--node",
            "pub4",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("SOFTHSM2_CONF", &conf), ("NODE_PIN", "4321")],
    );
    let certified = pki.ok(&["ocsp", "certify"]);
    assert_eq!(certified.matches(": certified").count(), 2, "{certified}");

    let started = Instant::now();
    loop {
        let said = ocsp(&public, &issuer, &root, &cert, &["-resp_text"]);
        if said.contains(": good") {
            assert!(said.contains("Response verify OK"), "{said}");
            assert!(said.contains("OCSP Responder citizens pub4"), "{said}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{said}\n{}",
            std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(key_files(&data_dir), Vec::<String>::new());
    let objects = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--module",
            &module,
            "--token-label",
            "Node pub4",
            "--login",
            "--pin",
            "4321",
            "--list-objects",
            "--type",
            "privkey",
        ])
        .output()
        .expect("pkcs11-tool");
    let objects = stdout(&objects);
    assert_eq!(
        objects.matches("imza-ocsp-").count(),
        2,
        "one responder key per CA on the token: {objects}"
    );
    assert_eq!(objects.matches("never extractable").count(), 2, "{objects}");
}

/// A public node stamps time with a key of its own for the CA side's TSA unit: it files a
/// request, the CA node certifies it with the unit's CA and policy, and openssl verifies the
/// node's tokens; the CA node's own unit key never leaves the CA node.
#[test]
fn a_public_node_stamps_with_its_own_key_for_the_tsa_unit() {
    let pki = TestPki::on_postgres();
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_citizens_args(&[]));
    pki.ok(&["tsa", "init", "--ca", "citizens"]);
    let (issuer, root) = (pki.ca_pem("citizens"), pki.ca_pem("root"));
    let config = pki.path("serve.toml");
    std::fs::write(&config, "check_interval_seconds = 1\n").unwrap();
    let config = config.to_str().unwrap();
    let _ca_node = node(
        &pki,
        &pki.data_dir(),
        &["--roles", "ca", "--config", config],
    );
    let data_dir = pki.path("pub5");
    let public = node(
        &pki,
        &data_dir,
        &["--roles", "public", "--node", "pub5", "--config", config],
    );

    let data = pki.path("arayis.txt");
    std::fs::write(&data, "Arayış: verilir ki, ...\n").unwrap();
    let query = pki.path("q.tsq");
    let made = run(
        "openssl",
        &[
            "ts",
            "-query",
            "-data",
            data.to_str().unwrap(),
            "-sha256",
            "-cert",
            "-out",
            query.to_str().unwrap(),
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let query_der = std::fs::read(&query).unwrap();
    // Until the CA node has certified the node's key, the TSA there answers "rejection".
    let response = pki.path("r.tsr");
    let started = Instant::now();
    loop {
        let reply = public.post("/tsa", "application/timestamp-query", &query_der);
        std::fs::write(&response, &reply.body).unwrap();
        let shown = stdout(&run(
            "openssl",
            &["ts", "-reply", "-in", response.to_str().unwrap(), "-text"],
        ));
        if reply.status == 200 && shown.contains("Status: Granted") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no stamp from pub5 ({}): {shown}\n{}",
            reply.status,
            std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let verified = run(
        "openssl",
        &[
            "ts",
            "-verify",
            "-in",
            response.to_str().unwrap(),
            "-data",
            data.to_str().unwrap(),
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            issuer.to_str().unwrap(),
        ],
    );
    let text = format!("{}{}", stdout(&verified), stderr(&verified));
    assert!(text.contains("Verification: OK"), "{text}");
    // The token names the node's own unit certificate, and the node holds only its own keys.
    let token = pki.path("token.p7s");
    run(
        "openssl",
        &[
            "ts",
            "-reply",
            "-in",
            response.to_str().unwrap(),
            "-token_out",
            "-out",
            token.to_str().unwrap(),
        ],
    );
    let certs = stdout(&run(
        "openssl",
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            token.to_str().unwrap(),
            "-print_certs",
            "-noout",
        ],
    ));
    assert!(certs.contains("Time-Stamping Unit tsa pub5"), "{certs}");
    let keys = key_files(&data_dir);
    assert!(
        keys.iter().any(|k| k.starts_with("tsa-tsa-pub5-")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .all(|k| k.starts_with("tsa-tsa-pub5-") || k.starts_with("ocsp-")),
        "{keys:?}"
    );
    let list = pki.ok(&["tsa", "list"]);
    assert!(list.contains("node=pub5"), "{list}");
}

/// PostgreSQL stopped and started under OCSP load (a cluster of this test's own): `/health`
/// says 503 while it is away, the answers already signed keep being served, and the node
/// recovers by itself — a revocation after the restart is answered within a second.
#[test]
fn a_database_restart_under_ocsp_load_keeps_signed_answers_and_recovers_without_a_restart() {
    // Stopped by its watchdog when this test process ends.
    let cluster: &'static imza_testdata::postgres::PgCluster =
        Box::leak(Box::new(imza_testdata::postgres::PgCluster::start()));
    let pki = TestPki::on_cluster(cluster);
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_citizens_args(&[]));
    let cert = pki.issue_citizen("citizen-sign", "rashad");
    let serial = pki.serials("citizens").pop().unwrap();
    let (issuer, root) = (pki.ca_pem("citizens"), pki.ca_pem("root"));
    let config = pki.path("serve.toml");
    std::fs::write(&config, "check_interval_seconds = 1\n").unwrap();
    let server = node(
        &pki,
        &pki.data_dir(),
        &["--config", config.to_str().unwrap()],
    );
    // A nonce-less request, answered once so that the answer is cached.
    let request_file = pki.path("good.req");
    let made = run(
        "openssl",
        &[
            "ocsp",
            "-issuer",
            issuer.to_str().unwrap(),
            "-cert",
            cert.to_str().unwrap(),
            "-no_nonce",
            "-reqout",
            request_file.to_str().unwrap(),
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let request = std::fs::read(&request_file).unwrap();
    let ask = || server.post("/ocsp", "application/ocsp-request", &request);
    let signed = ask();
    assert_eq!(signed.status, 200);
    assert_eq!(ask().body, signed.body, "served from the cache");

    // Load while the database goes away and comes back.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (answered, failed) = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let (mut answered, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let reply = ask();
                if reply.status == 200 && reply.body == signed.body {
                    answered += 1;
                } else {
                    failed += 1;
                }
            }
            (answered, failed)
        });
        cluster.stop_server();
        let down = Instant::now();
        loop {
            if server.get("/health").0 == 503 {
                break;
            }
            assert!(
                down.elapsed() < Duration::from_secs(10),
                "/health never said 503"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Still answered from what was signed before, while the database is away.
        for _ in 0..5 {
            let reply = ask();
            assert_eq!(reply.status, 200);
            assert_eq!(reply.body, signed.body);
        }
        std::thread::sleep(Duration::from_secs(2));
        cluster.start_server();
        let up = Instant::now();
        loop {
            if server.get("/health").0 == 200 {
                break;
            }
            assert!(
                up.elapsed() < Duration::from_secs(20),
                "/health never came back"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        println!(
            "healthy again {:?} after the database restarted",
            up.elapsed()
        );
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        load.join().unwrap()
    });
    println!("during the outage: {answered} cached answers served, {failed} other replies");
    assert!(answered > 0);
    assert_eq!(
        failed, 0,
        "every request was answered from the signed answers"
    );

    // Recovered without a restart: a revocation now is answered within a second.
    pki.revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    let revoked = Instant::now();
    loop {
        let said = ocsp(&server, &issuer, &root, &cert, &[]);
        if said.contains(": revoked") {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "not revoked within 1 s after the restart: {said}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A mobile signature across nodes on one PostgreSQL store: the relying party asks node A, the
/// phone (registered with node B's address) answers node B, and the result is read on node C —
/// checked by openssl against the certificate the session returns.
#[test]
fn a_mobile_signature_session_spans_three_nodes() {
    use base64ct::{Base64, Encoding};

    let pki = TestPki::on_postgres();
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_mobile_args());
    let added: serde_json::Value =
        serde_json::from_str(&pki.ok(&["mobile", "rp", "add", "--name", "mygov.az"])).unwrap();
    let api_key = added["apiKey"].as_str().unwrap().to_string();
    let nodes: Vec<Server> = ["mss-a", "mss-b", "mss-c"]
        .iter()
        .map(|name| node(&pki, &pki.path(name), &["--roles", "mss", "--node", name]))
        .collect();
    let phone_dir = pki.path("phone");
    let phone = Phone {
        number: "+994501234567",
        national_id: "1AB2C3D",
        given_name: "Aysel",
        surname: "Məmmədova",
    };
    let env = [("PHONE_PIN", "24680")];
    pki.register_phone(&phone, &nodes[1].base, &phone_dir, &env, &[]);
    // The phone, on node B.
    let mut phone = Command::new(env!("CARGO_BIN_EXE_imza"))
        .arg("--data-dir")
        .arg(pki.data_dir())
        .args(["phone", "run", "--phone", "+994501234567", "--phone-dir"])
        .arg(&phone_dir)
        .args(["--approve", "--count", "1", "--pin-env", "PHONE_PIN"])
        .env("PHONE_PIN", "24680")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // The relying party, on node A.
    let document = b"e-arayis: across three nodes\n";
    let digest = openssl::sha::sha256(document);
    let body = serde_json::json!({
        "phoneNumber": "+994501234567",
        "nationalIdentityNumber": "1AB2C3D",
        "hash": Base64::encode_string(&digest),
        "hashType": "SHA256",
        "language": "ENG",
    });
    let authorization = format!(
        "Authorization: Basic {}",
        Base64::encode_string(format!("mygov.az:{api_key}").as_bytes())
    );
    let body_file = pki.path("session.json");
    std::fs::write(&body_file, body.to_string()).unwrap();
    let created = nodes[0].request(
        "POST",
        "/mss/v1/signature",
        &[&authorization, "Content-Type: application/json"],
        Some(&body_file),
    );
    assert_eq!(
        created.status,
        200,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let session: serde_json::Value = serde_json::from_slice(&created.body).unwrap();
    let id = session["sessionId"].as_str().unwrap();

    // The result, on node C.
    let status = nodes[2].request(
        "GET",
        &format!("/mss/v1/session/{id}?timeoutMs=20000"),
        &[&authorization],
        None,
    );
    assert_eq!(
        status.status,
        200,
        "{}",
        String::from_utf8_lossy(&status.body)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(status["state"], "COMPLETE", "{status}");
    assert_eq!(status["result"], "OK", "{status}");
    assert!(phone.wait().unwrap().success());

    // openssl checks the signature over the digest with the returned certificate's key.
    let cert_der = Base64::decode_vec(status["cert"].as_str().unwrap()).unwrap();
    let signature = Base64::decode_vec(status["signature"]["value"].as_str().unwrap()).unwrap();
    let cert = openssl::x509::X509::from_der(&cert_der).unwrap();
    std::fs::write(pki.path("signer.pem"), cert.to_pem().unwrap()).unwrap();
    std::fs::write(pki.path("sig.der"), &signature).unwrap();
    std::fs::write(pki.path("digest.bin"), digest).unwrap();
    let checked = run(
        "openssl",
        &[
            "pkeyutl",
            "-verify",
            "-certin",
            "-inkey",
            pki.path("signer.pem").to_str().unwrap(),
            "-in",
            pki.path("digest.bin").to_str().unwrap(),
            "-sigfile",
            pki.path("sig.der").to_str().unwrap(),
        ],
    );
    assert!(
        stdout(&checked).contains("Signature Verified Successfully"),
        "{}{}",
        stdout(&checked),
        stderr(&checked)
    );
}
