//! Path validation throughput and hostile-pool cost, on one thread (std::time only):
//!
//! - a 3-certificate chain (root → issuing CA → leaf) with a CRL from each CA, validated
//!   again and again by one validator (revocation required, CRLs parsed once and their
//!   signatures cached): chains/s, for P-256 and RSA-2048, with the leaf parsed in the loop
//!   (as a signer does for each signature) and without;
//! - the same with a fresh validator per validation sharing one `SignatureCache` (the
//!   signer's pattern);
//! - hostile pools: 32 CAs of one name certified by each other (992 certificates) and a ring of
//!   1,000 same-name intermediates: time until `BudgetExceeded`.
//!
//! `cargo bench -p imza-validation --bench validation`

// Benchmark code: a failed set-up panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use imza_testdata::bench::measure;

use common::{
    ca_extensions, cross_signed_mesh, issue, leaf_extensions, p256, Party, Shape, ThreeChain,
};
use imza_core::key::software::SoftwareKey;
use imza_core::{KeyAlgorithm, SigningKey};
use imza_validation::{Certificate, SignatureCache, ValidationError, ValidationOptions, Validator};

/// Runs `f` repeatedly for about `span` (after 100 warm-up calls) and returns calls per
/// second.
fn rate(span: Duration, f: impl FnMut()) -> f64 {
    measure(span, 100, f).per_second()
}

fn chain_throughput(label: &str, chain: &ThreeChain) {
    let options = ValidationOptions::at(time::OffsetDateTime::now_utc());
    let validator = chain.validator();
    let leaf = chain.leaf.certificate();
    validator
        .validate(&leaf, &options)
        .expect("the benchmark chain validates");
    let span = Duration::from_secs(2);
    let parsed = rate(span, || {
        validator.validate(&leaf, &options).expect("valid");
    });
    println!("{label}: {parsed:>9.0} chains/s (leaf parsed once)");
    let leaf_der = chain.leaf.der.clone();
    let with_parse = rate(span, || {
        let leaf = Certificate::from_der(leaf_der.clone()).expect("parses");
        validator.validate(&leaf, &options).expect("valid");
    });
    println!("{label}: {with_parse:>9.0} chains/s (leaf parsed each time)");
    // The signer's pattern: a validator per signature, one shared cache.
    let cache = Arc::new(SignatureCache::default());
    let root = chain.root.certificate();
    let ca = chain.ca.certificate();
    let fresh = rate(span, || {
        let mut v = Validator::new(vec![root.clone()]).with_signature_cache(Arc::clone(&cache));
        v.add_certificate(ca.clone());
        v.add_crl(chain.root_crl.clone());
        v.add_crl(chain.ca_crl.clone());
        v.validate(&leaf, &options).expect("valid");
    });
    println!("{label}: {fresh:>9.0} chains/s (new validator each time, shared cache)");
}

fn time_to_budget(label: &str, validator: &Validator, target: &Certificate) {
    let options = ValidationOptions::at(time::OffsetDateTime::now_utc());
    let mut worst = Duration::ZERO;
    let mut message = String::new();
    for _ in 0..5 {
        // A fresh cache each time: no signature outcome is known in advance.
        let start = Instant::now();
        let outcome = validator.validate(target, &options);
        let elapsed = start.elapsed();
        worst = worst.max(elapsed);
        match outcome {
            Err(e @ ValidationError::BudgetExceeded { .. }) => message = e.to_string(),
            other => panic!("{label}: expected BudgetExceeded, got {other:?}"),
        }
    }
    println!(
        "{label}: BudgetExceeded after {:.1} ms (worst of 5): {message}",
        worst.as_secs_f64() * 1e3
    );
}

fn main() {
    let p256_chain = ThreeChain::new(p256);
    chain_throughput("P-256 3-chain", &p256_chain);
    let rsa_chain = ThreeChain::new(|| {
        Arc::new(SoftwareKey::generate(KeyAlgorithm::Rsa2048).expect("RSA key"))
            as Arc<dyn SigningKey>
    });
    chain_throughput("RSA-2048 3-chain", &rsa_chain);

    let root = issue(
        None,
        "CN=Hostile Root,O=imza,C=AZ",
        p256(),
        Shape::current(&[1], ca_extensions()),
    );
    let (pool, leaf) = cross_signed_mesh(32);
    let mesh_size = pool.len();
    let mut mesh = Validator::new(vec![root.certificate()])
        .with_signature_cache(Arc::new(SignatureCache::new(0)));
    for der in pool {
        mesh.add_certificate(Certificate::from_der(der).expect("parses"));
    }
    time_to_budget(
        &format!("mesh of {mesh_size} cross-signed certificates"),
        &mesh,
        &leaf.certificate(),
    );

    // A ring: intermediate i (key k_i) certified by k_(i+1), all named alike.
    let subject = "CN=Ring CA,O=imza,C=AZ";
    let keys: Vec<Arc<dyn SigningKey>> = (0..1000).map(|_| p256()).collect();
    let mut ring = Validator::new(vec![root.certificate()])
        .with_signature_cache(Arc::new(SignatureCache::new(0)));
    for (i, key) in keys.iter().enumerate() {
        let issuer = Party::unissued(subject, &keys[(i + 1) % keys.len()]);
        let serial = [0x10 | (i >> 8) as u8, i as u8];
        let cert = issue(
            Some(&issuer),
            subject,
            Arc::clone(key),
            Shape::current(&serial, ca_extensions()),
        );
        ring.add_certificate(cert.certificate());
    }
    let first = Party::unissued(subject, &keys[0]);
    let ring_leaf = issue(
        Some(&first),
        "CN=Ring Leaf,O=imza,C=AZ",
        p256(),
        Shape::current(&[0x7f], leaf_extensions()),
    );
    time_to_budget(
        "ring of 1000 same-name intermediates",
        &ring,
        &ring_leaf.certificate(),
    );
}
