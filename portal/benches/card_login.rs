//! Card logins validated per second: Web eID tokens (P-256, `web-eid:1.1`) from 64 different
//! cards, each checked in full — parsed, certificate checks, the path to the CA with OCSP
//! required (answers from the process's fetch cache after each card's first login, as a portal
//! keeps them), the signature over the origin and nonce — on one thread, then on two threads
//! sharing one `CardLogin` (the 2-core figure). Target: ≥ 1,000 logins/s on 2 cores.
//!
//! `cargo bench -p imza-portal --bench card_login`

// Benchmark code: a failed set-up panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use imza_core::clock::SystemClock;
use imza_core::ext;
use imza_core::KeyAlgorithm;
use imza_http::HttpClient;
use imza_ocsp::CertStatusInfo;
use imza_portal::card::CardLogin;
use imza_portal::webeid::{ChallengeNonce, TokenAlgorithm};
use imza_testdata::bench::measure;
use imza_testdata::ocsp::OcspResponder;
use imza_validation::{AuthenticationTrust, Certificate, FetchCache, FetchCacheConfig};
use time::OffsetDateTime;

const CARDS: usize = 64;

fn main() {
    let ca = ca();
    let ocsp = OcspResponder::for_ca(&ca);
    let logins: Vec<(Vec<u8>, ChallengeNonce)> = (0..CARDS)
        .map(|_| {
            let mut extensions = card_auth();
            extensions.push(ext::authority_info_access(Some(&ocsp.url), None).unwrap());
            let card = card(&ca, KeyAlgorithm::EcP256, extensions);
            let serial = Certificate::from_der(card.certificate.clone())
                .unwrap()
                .serial()
                .to_vec();
            ocsp.statuses.set(&serial, CertStatusInfo::Good);
            let nonce = ChallengeNonce::generate(OffsetDateTime::now_utc()).unwrap();
            (
                token(&card, TokenAlgorithm::Es256, ORIGIN, &nonce, "web-eid:1.1"),
                nonce,
            )
        })
        .collect();
    let trust = AuthenticationTrust::new(
        vec![Certificate::from_der(ca.der.clone()).unwrap()],
        Box::new(HttpClient::default()),
        Arc::new(SystemClock),
    );
    let cache = Arc::new(FetchCache::new(
        FetchCacheConfig::default(),
        Arc::new(SystemClock),
    ));
    let portal = Arc::new(
        CardLogin::new(ORIGIN, vec![CARD_AUTH], trust, Arc::new(SystemClock))
            .unwrap()
            .with_fetch_cache(Arc::clone(&cache)),
    );
    // Every card logs in once: its OCSP answer is fetched and kept.
    for (token, nonce) in &logins {
        portal
            .login(token, nonce)
            .expect("the benchmark's logins succeed");
    }

    let span = Duration::from_secs(3);
    let mut next = 0;
    let one = measure(span, 100, || {
        let (token, nonce) = &logins[next % CARDS];
        next += 1;
        portal.login(token, nonce).expect("login");
    });
    println!(
        "card logins, one thread: {:>7.0}/s wall, {:>7.0}/s per CPU second",
        one.per_second(),
        one.per_cpu_second().unwrap_or(f64::NAN)
    );

    let threads = 2;
    let started = Instant::now();
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (portal, logins) = (Arc::clone(&portal), &logins);
                scope.spawn(move || {
                    let mut done = 0u64;
                    while started.elapsed() < span {
                        let (token, nonce) = &logins[(t * 31 + done as usize) % CARDS];
                        portal.login(token, nonce).expect("login");
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: u64 = counts.iter().sum();
    println!(
        "card logins, {threads} threads: {:>7.0}/s (target ≥ 1,000/s on 2 cores)",
        total as f64 / started.elapsed().as_secs_f64()
    );
    let stats = cache.stats();
    println!(
        "OCSP fetches: {} outbound, {} from the cache",
        stats.outbound, stats.hits
    );
}
