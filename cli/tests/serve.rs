//! `imza serve` over real HTTP on loopback: the CA certificate and CRL at the URLs written into
//! certificates, checked with curl and openssl; health and metrics.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn serves_ca_certificates_and_crls_at_the_certificate_urls() {
    let pki = TestPki::with_root_and_citizens();
    let server = Server::start(&pki);
    assert_eq!(server.get("/health"), (200, b"ok\n".to_vec()));

    let (status, der) = server.get("/ca/citizens.crt");
    assert_eq!(status, 200);
    let cert = pki.path("served.der");
    std::fs::write(&cert, &der).unwrap();
    let subject = openssl_show("x509", &cert, true, &["-subject", "-nameopt", "utf8"]);
    assert!(subject.contains("CN=AZ Citizens CA"), "{subject}");

    // No CRL yet: the server (all roles, so the ca role too) signed one (number 1) as it
    // started; asking again serves the same.
    let (status, first) = server.get("/crl/citizens.crl");
    assert_eq!(status, 200);
    assert_eq!(server.get("/crl/citizens.crl").1, first);
    // After a revocation and `imza ca crl`, the served CRL is the new one and lists the serial.
    pki.issue_citizen("citizen-sign", "c");
    let serial = pki.serials("citizens").pop().unwrap();
    pki.revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    pki.crl("citizens", &pki.path("cli.crl"));
    let (_, second) = server.get("/crl/citizens.crl");
    let crl = pki.path("served.crl");
    std::fs::write(&crl, &second).unwrap();
    let text = openssl_show("crl", &crl, true, &["-text"]);
    let number = openssl_show("crl", &crl, true, &["-crlnumber"]);
    assert_eq!(number.trim(), "crlNumber=0x02");
    assert!(text.contains(&serial), "{text}");

    assert_eq!(server.get("/crl/nope.crl").0, 404);
    assert_eq!(server.get("/ca/nope.crt").0, 404);
    assert_eq!(server.get("/no/such/path").0, 404);

    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("imza_http_requests_total{endpoint=\"GET /crl/{file}\",status=\"200\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imza_http_requests_total{endpoint=\"GET /crl/{file}\",status=\"404\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imza_http_request_duration_seconds_count{endpoint=\"GET /ca/{file}\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imza_http_requests_total{endpoint=\"unmatched\",status=\"404\"} 1"),
        "{metrics}"
    );
    // What the connection server did, and each service's refusals.
    assert!(metrics.contains("imza_http_connections_open "), "{metrics}");
    assert!(
        metrics.contains("imza_http_connection_events_total{event=\"accepted\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imza_work_refused_total{service=\"OCSP\"} 0"),
        "{metrics}"
    );
}

/// `--roles public`: a node facing the internet, in a data directory without any CA key, on
/// the CA node's store. It serves the CA certificates and the CRLs the CA side stored, and a GET
/// never signs — with no CRL stored it says so (the server before roles signed one here).
/// The CA node (`--roles ca`) then publishes the missing CRLs as it starts.
#[test]
fn a_public_node_serves_stored_crls_and_never_signs_with_a_ca_key() {
    let pki = TestPki::with_root_and_citizens();
    let store = format!("sqlite:{}", pki.data_dir().join("imza.db").display());
    let public_dir = pki.path("public-node");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_imza"));
    command.arg("--data-dir").arg(&public_dir).args([
        "--store", &store, "serve", "--roles", "public", "--listen", &listen,
    ]);
    let public = Server::spawn(command, &listen);

    assert_eq!(public.get("/health").0, 200);
    assert_eq!(public.get("/ca/citizens.crt").0, 200);
    let (status, body) = public.get("/crl/citizens.crl");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("has been published yet"));
    // Its only keys are the responder keys it made for itself (certified by the CA side).
    let keys: Vec<String> = std::fs::read_dir(public_dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("ocsp-")), "{keys:?}");
    let crls = |pki: &TestPki| pki.snapshot().matches("INSERT INTO crls").count();
    assert_eq!(crls(&pki), 0, "a GET signed a CRL");

    // The CA node signs what is due as it starts; the public node then serves it.
    let _ca_node = Server::start_with(&pki, &["--roles", "ca"]);
    assert_eq!(crls(&pki), 2, "root and citizens");
    let (status, der) = public.get("/crl/citizens.crl");
    assert_eq!(status, 200);
    let crl = pki.path("public.crl");
    std::fs::write(&crl, &der).unwrap();
    let number = openssl_show("crl", &crl, true, &["-crlnumber"]);
    assert_eq!(number.trim(), "crlNumber=0x01");
    // A public node does not answer what its roles leave out.
    let mut ca_only = std::process::Command::new(env!("CARGO_BIN_EXE_imza"));
    let ca_listen = format!("127.0.0.1:{}", free_port());
    ca_only
        .arg("--data-dir")
        .arg(pki.data_dir())
        .args(["serve", "--roles", "ca", "--listen", &ca_listen]);
    let ca_node = Server::spawn(ca_only, &ca_listen);
    assert_eq!(ca_node.get("/crl/citizens.crl").0, 404);
    assert_eq!(ca_node.get("/health").0, 200);
}

/// The hostile-load limits hold on a node of public roles as on the single node: a request
/// head that never ends is cut off at the header timeout, an OCSP body over the limit is
/// refused unread, and what the node does not serve is 404.
#[test]
fn a_public_node_keeps_the_servers_limits() {
    use std::io::{Read, Write};
    let pki = TestPki::with_root_and_citizens();
    let store = format!("sqlite:{}", pki.data_dir().join("imza.db").display());
    let config = pki.path("serve.toml");
    std::fs::write(&config, "[server]\nheader_timeout_seconds = 1\n").unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_imza"));
    command
        .arg("--data-dir")
        .arg(pki.path("public-node"))
        .args([
            "--store", &store, "serve", "--roles", "ocsp", "--listen", &listen,
        ]);
    command.arg("--config").arg(&config);
    let public = Server::spawn(command, &listen);

    let mut slow = std::net::TcpStream::connect(&listen).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(5),
        "an endless head was kept {waited:?}"
    );

    let big = vec![0x30; 64 * 1024 + 1];
    let refused = public.post("/ocsp", "application/ocsp-request", &big);
    assert_eq!(
        refused.status,
        413,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(public.get("/tsa").0, 404);
    assert_eq!(public.get("/crl/citizens.crl").0, 404);
    assert_eq!(public.get("/health").0, 200);
}

/// A CA whose CRL is partitioned: the `ca` role signs every shard as it starts, and each
/// certificate's CRL distribution point serves the CRL of its own shard, whose IDP names that
/// very URL; the CA's unpartitioned URL and shards it does not have are 404.
#[test]
fn a_partitioned_cas_shard_crls_are_served_where_its_certificates_point() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let pki = TestPki::with_root_at(&base);
    pki.ok(&init_citizens_args(&["--crl-shards", "4"]));
    let certs: Vec<std::path::PathBuf> = (0..6)
        .map(|i| pki.issue_citizen("citizen-auth", &format!("c{i}")))
        .collect();
    let server = Server::start_on(&pki, port, &[]);
    let crls = pki.snapshot().matches("INSERT INTO crls").count();
    assert_eq!(crls, 5, "root's CRL and the 4 shards'");

    for cert in &certs {
        let cdp = openssl_show("x509", cert, false, &["-ext", "crlDistributionPoints"]);
        let url = cdp
            .lines()
            .find_map(|l| l.trim().strip_prefix("URI:"))
            .unwrap_or_else(|| panic!("no CDP: {cdp}"))
            .to_string();
        let path = url.strip_prefix(&base).unwrap();
        assert!(path.starts_with("/crl/citizens/"), "{path}");
        let (status, der) = server.get(path);
        assert_eq!(status, 200, "{path}");
        let file = pki.path("served.crl");
        std::fs::write(&file, &der).unwrap();
        let text = openssl_show("crl", &file, true, &["-text"]);
        assert!(
            text.contains("Issuing Distribution Point: critical"),
            "{text}"
        );
        assert!(text.contains(&format!("URI:{url}")), "{text}");
    }

    // After a revocation and `imza ca crl`, the revoked certificate's shard lists it.
    let serial = openssl_show("x509", &certs[0], false, &["-serial"]);
    let serial = serial.trim().trim_start_matches("serial=");
    pki.revoke("citizens", serial, &[]);
    pki.crl("citizens", &pki.path("shards"));
    let cdp = openssl_show("x509", &certs[0], false, &["-ext", "crlDistributionPoints"]);
    let path = cdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("URI:"))
        .and_then(|u| u.strip_prefix(&base))
        .unwrap()
        .to_string();
    let (_, der) = server.get(&path);
    let file = pki.path("served.crl");
    std::fs::write(&file, &der).unwrap();
    assert!(openssl_show("crl", &file, true, &["-text"]).contains(serial));

    let (status, body) = server.get("/crl/citizens.crl");
    assert_eq!(status, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("/crl/citizens/3.crl"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(server.get("/crl/citizens/4.crl").0, 404);
    assert_eq!(server.get("/crl/citizens/x.crl").0, 404);
    assert_eq!(server.get("/crl/citizens/-1.crl").0, 404);
    assert_eq!(server.get("/crl/root/0.crl").0, 404);
    assert_eq!(server.get("/crl/nope/0.crl").0, 404);
    assert_eq!(server.get("/crl/root.crl").0, 200);

    // Every shard's CRL is fresh: a CA node starting now signs none (nor the root's).
    let before = pki.snapshot().matches("INSERT INTO crls").count();
    let ca_node = Server::start_with(&pki, &["--roles", "ca"]);
    assert_eq!(pki.snapshot().matches("INSERT INTO crls").count(), before);
    drop(ca_node);
    // One shard without a CRL (a run that stopped part way, say): the next run signs them all.
    let db = pki.data_dir().join("imza.db");
    run(
        "sqlite3",
        &[db.to_str().unwrap(), "DELETE FROM crls WHERE shard = 2"],
    );
    let left = pki.snapshot().matches("INSERT INTO crls").count();
    assert_eq!(left, before - 2, "shard 2 had two CRLs");
    let _ca_node = Server::start_with(&pki, &["--roles", "ca"]);
    assert_eq!(pki.snapshot().matches("INSERT INTO crls").count(), left + 4);
}

/// The portal over HTTPS with a certificate imza's own CA issued under the tls-server profile:
/// curl trusting only the PKI's root gets the login page and logs in with an access code; the
/// portal is not served over plain HTTP on a non-loopback address, and a key file others can
/// read is refused.
#[test]
fn the_portal_is_served_over_https_with_a_tls_server_certificate_from_the_pki() {
    let pki = TestPki::with_root_and_citizens();
    let (key, csr, cert) = (
        pki.path("tls.key"),
        pki.path("tls.csr"),
        pki.path("tls.pem"),
    );
    let sh = |args: &[&str]| {
        let out = run("openssl", args);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    sh(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key.to_str().unwrap(),
    ]);
    sh(&[
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=127.0.0.1/O=Test State/C=AZ",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-out",
        csr.to_str().unwrap(),
    ]);
    pki.issue("citizens", "tls-server", &csr, &cert, &[]);
    let chain = pki.path("chain.pem");
    let mut pem = std::fs::read(&cert).unwrap();
    pem.extend(std::fs::read(pki.ca_pem("citizens")).unwrap());
    std::fs::write(&chain, pem).unwrap();
    let root = pki.ca_pem("root");

    // A key others can read: refused, exit 2.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let tls_args = [
        "--tls-cert",
        chain.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let said = pki.exits(
        &[&["serve", "--listen", &listen][..], &tls_args].concat(),
        &[],
        2,
    );
    assert!(said.contains("chmod 600"), "{said}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_imza"));
    command
        .arg("--data-dir")
        .arg(pki.data_dir())
        .args(["serve", "--listen", &listen])
        .args(tls_args);
    let _server = Server::spawn(command, &listen);
    let base = format!("https://{listen}");
    let jar = pki.path("cookies.txt");
    let curl = |extra: &[&str]| {
        let mut args = vec![
            "-s",
            "--max-time",
            "10",
            "--cacert",
            root.to_str().unwrap(),
            "-c",
            jar.to_str().unwrap(),
            "-b",
            jar.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        stdout(&run("curl", &args))
    };
    let page = curl(&[&format!("{base}/portal")]);
    assert!(page.contains("Giriş kodu ilə"), "{page}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the CSRF token")
        .to_string();
    let code: serde_json::Value = serde_json::from_str(&pki.ok(&[
        "portal",
        "code",
        "issue",
        "--national-id",
        "5ZK7T2Q",
        "--json",
    ]))
    .unwrap();
    let code = code["code"].as_str().unwrap();
    let cabinet = curl(&[
        "-L",
        "--data",
        &format!("csrf={csrf}&national_id=5ZK7T2Q&code={code}"),
        &format!("{base}/portal/login/code"),
    ]);
    assert!(
        cabinet.contains("<span id=\"personal-code\">PNOAZ-5ZK7T2Q</span>"),
        "{cabinet}"
    );
    // The other services answer over the same HTTPS.
    assert_eq!(
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}/health")
        ]),
        "200"
    );
}

#[test]
fn the_portal_is_not_served_over_plain_http_beyond_loopback() {
    let pki = TestPki::with_root_and_citizens();
    let listen = format!("0.0.0.0:{}", free_port());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_imza"));
    command.arg("--data-dir").arg(pki.data_dir()).args([
        "serve",
        "--listen",
        &listen,
        "--roles",
        "portal,publish",
    ]);
    let port = listen.rsplit(':').next().unwrap().to_string();
    let server = Server::spawn(command, &format!("127.0.0.1:{port}"));
    assert_eq!(server.get("/portal").0, 404);
    assert_eq!(server.get("/ca/root.crt").0, 200);
    // On loopback, plain HTTP is there for development.
    let local = Server::start_with(&pki, &["--roles", "portal"]);
    assert_eq!(local.get("/portal").0, 200);
}

/// The device-certificate login over real HTTPS from `imza serve`: curl presents a device
/// certificate issued by imza (profile device-auth) and reaches the cabinet; an expired one
/// and, after `imza ca revoke`, a revoked one are refused with the reason; no certificate, and
/// the ID card's authentication certificate (another policy), are refused too. OCSP comes
/// from a second `imza serve` on plain loopback HTTP, the URL in the certificates' AIA.
#[test]
fn a_device_certificate_logs_in_over_https_and_an_expired_or_revoked_one_is_refused() {
    use std::sync::Arc;

    use imza_ca::{InitCa, IssueOptions, IssueRequest, Pki};
    use imza_core::clock::FixedClock;
    use imza_core::key::software::SoftwareKey;
    use imza_core::key::{KeyAlgorithm, SigningKey};
    use imza_core::name::parse_dn;
    use time::{Duration, OffsetDateTime};

    let ocsp_port = free_port();
    let base_url = format!("http://127.0.0.1:{ocsp_port}");
    let pki = TestPki::new();
    let data_dir = pki.data_dir();
    let store = Pki::default_store(&data_dir);
    const SUBJECT: &str =
        "CN=Əliyev Günay Şəmsi oğlu,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-5ZK7T2Q,C=AZ";
    // The CAs are made three days ago (imza's library with its clock set back), so that a
    // device certificate issued two days ago for one day is expired now: the CLI cannot make
    // one, rightly.
    let past = OffsetDateTime::now_utc() - Duration::days(3);
    {
        let then = Pki::open_or_create(&data_dir, &store, Arc::new(FixedClock(past))).unwrap();
        for (name, subject, parent, algorithm) in [
            ("root", ROOT_SUBJECT, None, KeyAlgorithm::EcP384),
            (
                "citizens",
                CITIZENS_SUBJECT,
                Some("root"),
                KeyAlgorithm::EcP256,
            ),
        ] {
            then.init_ca(InitCa {
                algorithm,
                base_url: parent.is_none().then(|| base_url.clone()),
                ..InitCa::new(name, subject, parent)
            })
            .unwrap();
        }
    }
    let expired_key = pki.path("expired.key");
    let expired_cert = pki.path("expired.pem");
    {
        let then = Pki::open(
            &data_dir,
            &store,
            Arc::new(FixedClock(past + Duration::days(1))),
        )
        .unwrap();
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let profile = then.profiles().get("device-auth").unwrap();
        let issued = then
            .authority("citizens", None)
            .unwrap()
            .issue(
                &[IssueRequest {
                    subject: parse_dn(SUBJECT).unwrap(),
                    public_key: key.public_key_der().unwrap(),
                    key_algorithm: KeyAlgorithm::EcP256,
                    alt_names: Vec::new(),
                    asks_for_ca: false,
                }],
                &IssueOptions {
                    profile,
                    validity_days: Some(1),
                    backdate: Duration::ZERO,
                },
            )
            .unwrap()
            .remove(0);
        key.save_pem(&expired_key).unwrap();
        std::fs::write(
            &expired_cert,
            imza_core::pem::encode(imza_core::pem::CERTIFICATE, &issued.der).unwrap(),
        )
        .unwrap();
    }

    // Now, through the CLI: the portal's TLS certificate, a good device certificate, one to be
    // revoked, and the ID card's authentication certificate of the same citizen.
    let device = |name: &str, profile: &str| {
        let key = imza_testdata::csr::p256_key();
        let key_path = pki.path(&format!("{name}.key"));
        std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let csr = pki.path(&format!("{name}.csr"));
        std::fs::write(&csr, imza_testdata::csr::csr_der(&key, CITIZEN)).unwrap();
        let cert = pki.path(&format!("{name}.pem"));
        pki.issue("citizens", profile, &csr, &cert, &[]);
        (cert, key_path)
    };
    let good = device("good", "device-auth");
    let lost = device("lost", "device-auth");
    let card = device("card", "citizen-auth");
    let root = pki.ca_pem("root");

    // The PKI's services (OCSP) at the certificates' URL; the portal over HTTPS.
    let _services = Server::start_on(&pki, ocsp_port, &[]);
    let portal = Server::portal_asking_for_device_certificates(&pki);
    let base = portal.base.clone();

    // One browser: a cookie jar of its own; with `certificate`, every connection presents it.
    let login = |jar: &str, certificate: Option<&(std::path::PathBuf, std::path::PathBuf)>| {
        let jar = pki.path(jar);
        let curl = |extra: &[&str]| {
            let mut args = vec![
                "-s".to_string(),
                "--max-time".into(),
                "20".into(),
                "--cacert".into(),
                root.to_str().unwrap().into(),
                "-c".into(),
                jar.to_str().unwrap().into(),
                "-b".into(),
                jar.to_str().unwrap().into(),
            ];
            if let Some((cert, key)) = certificate {
                args.extend([
                    "--cert".into(),
                    cert.to_str().unwrap().into(),
                    "--key".into(),
                    key.to_str().unwrap().into(),
                ]);
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            stdout(&run("curl", &args))
        };
        let page = curl(&[&format!("{base}/portal?lang=eng")]);
        assert!(page.contains("/portal/login/device"), "{page}");
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the CSRF token")
            .to_string();
        curl(&[
            "-L",
            "-w",
            "\n%{http_code}",
            "--data",
            &format!("csrf={csrf}"),
            &format!("{base}/portal/login/device?lang=eng"),
        ])
    };

    let cabinet = login("good.txt", Some(&good));
    assert!(cabinet.ends_with("\n200"), "{cabinet}");
    assert!(
        cabinet.contains("<span id=\"name\">Əliyev Günay Şəmsi oğlu</span>")
            && cabinet.contains("<span id=\"personal-code\">PNOAZ-5ZK7T2Q</span>")
            && cabinet.contains("Giriş üsulu: mobil autentifikasiya sertifikatı"),
        "{cabinet}"
    );
    // The cabinet reads the CA store: the citizen's four certificates, the expired one said
    // so, none flagged as expiring soon (all have a year or more).
    let listed = cabinet
        .split("<table id=\"certificates\">")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("the certificates table")
        .to_string();
    assert_eq!(listed.matches("<tr").count(), 4, "{listed}");
    assert_eq!(
        listed.matches("<td>device-auth</td>").count(),
        3,
        "{listed}"
    );
    assert!(listed.contains("müddəti bitib"), "{listed}");
    assert!(!listed.contains("expiring"), "{listed}");
    // Who used the certificates: this login, by the portal itself.
    assert!(
        cabinet.contains("<td>e-gov portal</td><td>autentifikasiya</td><td>login (device-certificate)</td><td>OK</td>"),
        "{cabinet}"
    );

    let expired = login("expired.txt", Some(&(expired_cert, expired_key)));
    assert!(expired.ends_with("\n401"), "{expired}");
    assert!(expired.contains("not valid now"), "{expired}");

    let none = login("none.txt", None);
    assert!(none.ends_with("\n401"), "{none}");
    assert!(
        none.contains("no device certificate was presented"),
        "{none}"
    );

    let card = login("card.txt", Some(&card));
    assert!(card.ends_with("\n401"), "{card}");
    assert!(card.contains("not accepted for this login"), "{card}");

    // Good before the revocation, refused with the reason after it (the OCSP responder's
    // cache follows the store within a second or so).
    assert!(login("lost-1.txt", Some(&lost)).ends_with("\n200"));
    let serial = openssl_show("x509", &lost.0, false, &["-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    pki.revoke("citizens", &serial, &["--reason", "keyCompromise"]);
    let mut refused = String::new();
    for attempt in 0..20 {
        refused = login(&format!("lost-r{attempt}.txt"), Some(&lost));
        if !refused.ends_with("\n200") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(refused.ends_with("\n401"), "{refused}");
    assert!(refused.contains("revoked"), "{refused}");
}
