//! `imza serve` over real HTTP on loopback: the CA certificate and CRL at the URLs written into
//! certificates, checked with curl and openssl; health and metrics.

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

    // No CRL yet: the server signs one (number 1); asking again serves the same.
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
