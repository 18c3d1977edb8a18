//! CAdES B-T verification throughput, one thread: P-256 signatures with a signature
//! time-stamp (P-256 TSA), both certificates under one P-256 root with a CRL, verified by one
//! prepared [`SignatureVerifier`] — the way `POST /verify` and batch checks use it.
//!
//! The headline figure is a stream of 64 distinct signatures, each stamped at its own time
//! and verified at a moving "now": every verification does the full work on the signature
//! (CMS parsing, message digest, signature value, the token's signature and imprint) and
//! validates both certificate paths at new times; what carries over is what a service keeps
//! (parsed certificates and CRLs, certificate and CRL signatures already checked). Also
//! reported: the same signature again (its paths cached), a new verifier per signature with
//! shared signature checks, and a cold figure with nothing cached.
//!
//! `cargo bench -p imza-signer --bench verify` (release build). Target: ≥ 3,000 signatures/s
//! for the stream.

// Benchmark code: a failed set-up panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use common::{DatedTsa, LocalTsa};
use imza_core::ext;
use imza_core::key::software::SoftwareKey;
use imza_core::KeyAlgorithm;
use imza_signer::{
    sign, verify, Credentials, Level, SignOptions, SignatureVerifier, VerifyOptions,
};
use imza_testdata::bench::measure;
use imza_testdata::pki::{tsa_extensions, TestCa};
use imza_validation::{Certificate, Crl, SignatureCache};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::KeyUsages;

const DOCUMENT: &[u8] = b"A 1 KiB document stands in for any: only its hash is signed.";
const MEASURE_FOR: StdDuration = StdDuration::from_secs(3);

/// Verifications per second of wall-clock time and, where Linux tells, of this thread's CPU
/// time: the per-core figure, which other processes on a shared machine do not lower.
struct Rate {
    wall: f64,
    cpu: Option<f64>,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cpu {
            Some(cpu) => write!(
                f,
                "{cpu:>7.0} signatures/s per core (CPU time); {:>7.0}/s wall-clock",
                self.wall
            ),
            None => write!(f, "{:>7.0} signatures/s wall-clock", self.wall),
        }
    }
}

/// Runs `verify_once` for [`MEASURE_FOR`] of wall-clock time, after 50 warm-up calls (the
/// first validation fills the caches).
fn rate(verify_once: impl FnMut()) -> Rate {
    let measured = measure(MEASURE_FOR, 50, verify_once);
    Rate {
        wall: measured.per_second(),
        cpu: measured.per_cpu_second(),
    }
}

fn main() {
    let root = TestCa::root("CN=Bench Root,O=imza,C=AZ", KeyAlgorithm::EcP256);
    let signer_key = SoftwareKey::generate(KeyAlgorithm::EcP256).expect("signer key");
    let signer_der = root.issue(
        "CN=Bench Signer,serialNumber=PNOAZ-0000001,C=AZ",
        &[0x20, 0x01],
        &signer_key,
        vec![
            ext::key_usage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation)
                .expect("keyUsage"),
        ],
    );
    let tsa = root.issue_service(
        "CN=Bench TSA,O=imza,C=AZ",
        &[0x30, 0x01],
        KeyAlgorithm::EcP256,
        tsa_extensions(),
    );
    let now = OffsetDateTime::now_utc();
    let crl = root.crl(&[], now - Duration::minutes(1), now + Duration::days(1));
    let authority = imza_testdata::tsa::authority(&tsa.der, tsa.key.clone());
    let timestamper = LocalTsa(authority);
    let credentials =
        Credentials::new(Box::new(signer_key), signer_der, Vec::new()).expect("credentials");
    let mut sign_options = SignOptions::new(now);
    sign_options.level = Level::T;
    sign_options.augment.timestamper = Some(&timestamper);
    let signature = sign(DOCUMENT, &credentials, &sign_options).expect("a B-T signature");

    let mut options = VerifyOptions::new(
        vec![Certificate::from_der(root.der.clone()).expect("root")],
        now + Duration::seconds(10),
    );
    options.extra_crls = vec![Crl::from_der(crl).expect("CRL")];
    let report = verify(&signature, Some(DOCUMENT), &options);
    let first = report.signatures.first().expect("a signature entry");
    assert!(
        report.valid && first.level == Some("B-T") && first.timestamps.iter().all(|t| t.valid),
        "the benchmark signature must be a valid B-T signature: {report:#?}"
    );

    let verifier = Arc::new(SignatureVerifier::new(&options));
    let warm = rate(|| {
        let report = verifier.verify(black_box(&signature), Some(DOCUMENT), options.time);
        assert!(report.valid);
    });
    // `--warm-only` (after `--`) skips the cold run, for profiling the prepared path alone.
    if std::env::args().any(|a| a == "--warm-only") {
        println!("prepared verifier (cached paths): {warm}");
        return;
    }
    let cold = rate(|| {
        let report = verify(black_box(&signature), Some(DOCUMENT), &options);
        assert!(report.valid);
    });
    // Paths validated afresh for every signature (as for signatures of different times),
    // the certificate and CRL signatures checked once and then looked up.
    let mut shared = options.clone();
    shared.signature_cache = Some(Arc::new(SignatureCache::default()));
    let fresh_paths = rate(|| {
        let report = verify(black_box(&signature), Some(DOCUMENT), &shared);
        assert!(report.valid);
    });
    // A stream of distinct signatures, as `POST /verify` sees them: 64 documents signed by
    // the same signer, each stamped at its own second, verified round robin by the prepared
    // verifier at a "now" that moves on every call. Neither the signer's path (validated at
    // each token's time) nor the TSA's (validated at "now") is ever the same validation
    // twice; what is shared is what a service shares: parsed certificates, CRLs and the
    // certificate and CRL signatures already checked.
    let stream: Vec<(Vec<u8>, Vec<u8>)> = (0..64u8)
        .map(|i| {
            let document = [DOCUMENT, &[i]].concat();
            let dated = DatedTsa {
                authority: &timestamper.0,
                at: now - Duration::seconds(i64::from(i) + 1),
            };
            let mut o = SignOptions::new(now);
            o.level = Level::T;
            o.augment.timestamper = Some(&dated);
            (
                sign(&document, &credentials, &o).expect("a B-T signature"),
                document,
            )
        })
        .collect();
    let next = std::cell::Cell::new(0usize);
    let distinct = rate(|| {
        let i = next.get();
        next.set(i + 1);
        let (signature, document) = &stream[i % stream.len()];
        let at = options.time + Duration::microseconds(i as i64);
        let report = verifier.verify(black_box(signature), Some(document), at);
        assert!(report.valid);
    });
    println!(
        "CAdES B-T (P-256) verification, 1 thread, {} byte signature:",
        signature.len()
    );
    println!("  distinct signatures, prepared verifier: {distinct} (target 3,000)");
    println!("  one signature again, cached paths:      {warm}");
    println!("  paths validated, shared sig cache:      {fresh_paths}");
    println!("  new verifier, nothing cached:           {cold}");
}
