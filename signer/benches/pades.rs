//! PAdES B-LTA verification throughput: a ~100 kB PDF signed at B-LTA by the long-term test
//! PKI (P-256 signer and TSA under a P-256 root and issuing CA, CRLs served on loopback while
//! signing), then verified again and again by one prepared [`SignatureVerifier`] with the
//! network off — the DSS carries everything — on one thread and on two threads sharing the
//! verifier, the way `POST /verify` uses it.
//!
//! Every verification does the whole document's work: the cross-reference sections and
//! revisions read, the signature fields located and their `/ByteRange` checked, the DSS
//! parsed, each later revision analysed for changes, the ~100 kB hashed, the CMS and both
//! document time-stamps verified; what carries over between documents is what a service keeps
//! (validated paths, certificate and CRL signatures already checked). Each verdict is checked:
//! valid, B-LTA.
//!
//! `cargo bench -p imza-signer --bench pades` (release build), or bench/verify.sh. Target:
//! ≥ 500 documents/s on 2 cores.

// Benchmark code: a failed set-up panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration as StdDuration, Instant};

use common::long_term::LongTermPki;
use imza_signer::pades::{sign_pdf, verify_pdf_with, PadesOptions};
use imza_signer::{Level, SignatureVerifier, ValidationReport, VerifyOptions};
use imza_testdata::bench::{measure, Measured};
use imza_testdata::pdf::simple_pdf;
use imza_validation::Certificate;
use time::OffsetDateTime;

/// The document's size before signing.
const DOCUMENT_BYTES: usize = 100_000;
const MEASURE_FOR: StdDuration = StdDuration::from_secs(3);

fn main() {
    let pki = LongTermPki::new();
    let document = document();
    let signed = sign_lta(&pki, &document);
    // From here on the DSS is all there is.
    pki.stop_crl_server();

    let mut options = VerifyOptions::new(
        vec![Certificate::from_der(pki.root.der.clone()).expect("root")],
        OffsetDateTime::now_utc(),
    );
    options.network = false;
    let verifier = SignatureVerifier::new(&options);
    let now = options.time;
    let verify_once = || {
        let report = verify_pdf_with(Cursor::new(black_box(signed.as_slice())), &verifier, now);
        assert_valid_lta(&report);
    };
    verify_once();

    let one = measure(MEASURE_FOR, 50, verify_once);
    // Two threads on one verifier, each measured over the same span.
    let start = Instant::now();
    let two: Vec<Measured> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| measure(MEASURE_FOR, 50, verify_once)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a verifying thread"))
            .collect()
    });
    let two_wall = start.elapsed();

    println!(
        "PAdES B-LTA (P-256) verification, {} byte document ({} signed), network off, \
         one prepared verifier:",
        document.len(),
        signed.len()
    );
    println!(
        "  1 thread:  {}",
        rate(one.per_cpu_second(), one.per_second())
    );
    for (i, m) in two.iter().enumerate() {
        println!(
            "  2 threads, thread {}: {}",
            i + 1,
            rate(m.per_cpu_second(), m.per_second())
        );
    }
    let total_calls: u64 = two.iter().map(|m| m.calls).sum();
    println!(
        "  2 threads, total: {:>7.0} documents/s wall-clock ({total_calls} documents in \
         {:.2} s; target 500)",
        total_calls as f64 / two_wall.as_secs_f64(),
        two_wall.as_secs_f64()
    );
}

/// A PDF of [`DOCUMENT_BYTES`]: two lines of text and a filler stream.
fn document() -> Vec<u8> {
    let lines = ["Yasayis yeri haqqinda arayis", "Reference: 7K3M-9QXD-2F4A"];
    // The filler's /Length and the offsets change the overhead by a digit or two: settle it.
    let mut padding = DOCUMENT_BYTES;
    for _ in 0..3 {
        padding = (padding + DOCUMENT_BYTES).saturating_sub(simple_pdf(&lines, padding).len());
    }
    simple_pdf(&lines, padding)
}

/// `document` signed at B-LTA: the signature, its time-stamp, the DSS with the CRLs and a
/// document time-stamp over them.
fn sign_lta(pki: &LongTermPki, document: &[u8]) -> Vec<u8> {
    let mut options = PadesOptions::new(OffsetDateTime::now_utc());
    options.level = Level::LTA;
    options.augment = pki.options(Level::LTA).augment;
    let mut out = Cursor::new(Vec::new());
    sign_pdf(
        Cursor::new(document),
        &mut out,
        &pki.credentials(),
        &options,
    )
    .expect("a B-LTA PAdES signature");
    out.into_inner()
}

/// Never benchmark a failing path: every verdict must be a valid B-LTA signature.
fn assert_valid_lta(report: &ValidationReport) {
    let signature = report
        .signatures
        .iter()
        .find(|s| s.pdf.as_ref().map(|p| p.kind) == Some("signature"));
    assert!(
        report.valid && signature.and_then(|s| s.level) == Some("B-LTA"),
        "the benchmark document must verify as a valid B-LTA signature: {report:#?}"
    );
}

/// Documents per second of this thread's CPU time (where Linux tells it) and of wall-clock.
fn rate(cpu: Option<f64>, wall: f64) -> String {
    match cpu {
        Some(cpu) => {
            format!("{cpu:>7.0} documents/s per core (CPU time); {wall:>7.0}/s wall-clock")
        }
        None => format!("{wall:>7.0} documents/s wall-clock"),
    }
}
