//! The portal's certificate expiry notices through `imza serve`, mailed to a real SMTP server
//! (aiosmtpd, `imza_testdata::smtp`): one mail per (certificate, threshold) to the address the
//! citizens file gives, in Azerbaijani and English — once, across a restart and across two
//! nodes on one PostgreSQL — and none for a certificate renewed since.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use imza_testdata::smtp::SmtpSink;

const GUNAY_MAIL: &str = "gunay.aliyeva@mygov.az";

/// How long a test waits for a mail that should come (rounds run every second).
const PATIENCE: Duration = Duration::from_secs(30);
/// How long a test keeps watching for a mail that should not come: several rounds.
const ROUNDS: Duration = Duration::from_secs(4);

/// A PKI with the citizens CA and Günay's `profile` certificate valid for `days`.
fn issue_for_days(pki: &TestPki, profile: &str, name: &str, days: &str) {
    let csr = pki.csr(name, CITIZEN);
    let out = pki.path(&format!("{name}.pem"));
    pki.issue("citizens", profile, &csr, &out, &["--validity-days", days]);
}

/// `serve.toml` and `citizens.toml` for a portal mailing notices through `sink` every second.
fn portal_config(pki: &TestPki, sink: &SmtpSink) -> PathBuf {
    std::fs::write(
        pki.path("citizens.toml"),
        format!(
            "[[citizen]]\npersonal_code = \"PNOAZ-5ZK7T2Q\"\nname = \"Əliyev Günay Şəmsi oğlu\"\n\
             birth_date = \"1990-04-12\"\naddress = \"Bakı şəhəri, Nəsimi rayonu\"\n\
             registered_since = \"2015-09-01\"\nemail = \"{GUNAY_MAIL}\"\n"
        ),
    )
    .unwrap();
    let config = pki.path("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[portal]\ncitizens = \"citizens.toml\"\nnotice_interval_seconds = 1\n\
             [portal.mail]\nhost = \"127.0.0.1\"\nport = {}\n\
             from = \"imza portal <noreply@mygov.az>\"\n",
            sink.port()
        ),
    )
    .unwrap();
    config
}

/// A received message read by Python's `email` package (not by anything imza used to write
/// it): To, the decoded Subject, and the decoded text body.
fn read_mail(raw: &str, dir: &Path) -> (String, String, String) {
    let file = dir.join("message.eml");
    std::fs::write(&file, raw).unwrap();
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let out = Command::new(python)
        .arg("-c")
        .arg(
            "import email, email.header, sys\n\
             m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n\
             subject = str(email.header.make_header(email.header.decode_header(m['Subject'])))\n\
             body = m.get_payload(decode=True).decode(m.get_content_charset() or 'utf-8')\n\
             sys.stdout.write(m['To'] + '\\n' + subject + '\\n' + body)",
        )
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut parts = text.splitn(3, '\n');
    let (to, subject, body) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    (to, subject, body)
}

fn assert_the_thirty_day_notice(pki: &TestPki, raw: &str, profile: &str) {
    let (to, subject, body) = read_mail(raw, &pki.data_dir());
    assert_eq!(to, GUNAY_MAIL);
    assert!(
        subject.contains("30 gün ərzində bitir") && subject.contains("expires within 30 days"),
        "{subject}"
    );
    assert!(
        body.contains("Hörmətli Əliyev Günay Şəmsi oğlu")
            && body.contains(&format!("\"{profile}\" sertifikatınızın"))
            && body.contains(&format!("your \"{profile}\" certificate")),
        "{body}"
    );
}

#[test]
fn one_notice_reaches_the_citizen_once_and_not_again_after_a_restart() {
    let pki = TestPki::with_root_and_citizens();
    issue_for_days(&pki, "citizen-sign", "expiring", "20");
    let sink = SmtpSink::start();
    let config = portal_config(&pki, &sink);
    let args = ["--roles", "portal", "--config", config.to_str().unwrap()];
    let server = Server::start_with(&pki, &args);
    let received = sink.wait_for(1, PATIENCE);
    assert_eq!(received.len(), 1, "one notice");
    assert_the_thirty_day_notice(&pki, &received[0], "citizen-sign");
    assert_eq!(
        sink.wait_for(2, ROUNDS).len(),
        1,
        "not again in later rounds"
    );
    drop(server);

    let _restarted = Server::start_with(&pki, &args);
    assert_eq!(
        sink.wait_for(2, ROUNDS).len(),
        1,
        "not again after a restart"
    );
}

#[test]
fn a_renewed_certificate_gets_no_notice() {
    let pki = TestPki::with_root_and_citizens();
    // citizen-sign: expiring, but renewed by a later one; citizen-auth: expiring, not renewed.
    issue_for_days(&pki, "citizen-sign", "old-sign", "20");
    issue_for_days(&pki, "citizen-sign", "new-sign", "700");
    issue_for_days(&pki, "citizen-auth", "auth", "20");
    let sink = SmtpSink::start();
    let config = portal_config(&pki, &sink);
    let _server = Server::start_with(
        &pki,
        &["--roles", "portal", "--config", config.to_str().unwrap()],
    );
    let received = sink.wait_for(1, PATIENCE);
    assert_eq!(received.len(), 1);
    assert_the_thirty_day_notice(&pki, &received[0], "citizen-auth");
    assert_eq!(sink.wait_for(2, ROUNDS).len(), 1, "none for citizen-sign");
}

#[test]
fn two_nodes_on_one_postgresql_send_each_notice_once() {
    let pki = TestPki::on_postgres();
    pki.ok(&init_root_args(&[]));
    pki.ok(&init_citizens_args(&[]));
    issue_for_days(&pki, "citizen-sign", "expiring", "20");
    let sink = SmtpSink::start();
    let config = portal_config(&pki, &sink);
    let pg = pki.postgres.as_ref().unwrap();
    let nodes: Vec<Server> = ["node1", "node2"]
        .iter()
        .map(|name| {
            let listen = format!("127.0.0.1:{}", free_port());
            let mut command = Command::new(env!("CARGO_BIN_EXE_imza"));
            command
                .arg("--data-dir")
                .arg(pki.path(name))
                .args([
                    "serve", "--listen", &listen, "--roles", "portal", "--config",
                ])
                .arg(&config)
                .env("IMZA_STORE", pg.url())
                .env("PGPASSWORD", pg.cluster.password());
            Server::spawn(command, &listen)
        })
        .collect();
    let received = sink.wait_for(1, PATIENCE);
    assert_eq!(received.len(), 1);
    assert_the_thirty_day_notice(&pki, &received[0], "citizen-sign");
    assert_eq!(sink.wait_for(2, ROUNDS).len(), 1, "one node sent it");
    drop(nodes);
}
