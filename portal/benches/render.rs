//! E-certificates rendered per second (`document::render`: layout, QR code, two font subsets,
//! the file), on one thread and on two (the 2-core figure). The target is ≥ 200
//! signed documents/s end to end on 2 cores; rendering is one part of it.
//!
//! `cargo bench -p imza-portal --bench render`

// Benchmark code: a failed set-up panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use imza_portal::document::{render, DocumentKind, DocumentReference, Fact, Statement};
use time::macros::{date, datetime};

fn statement() -> Statement {
    Statement {
        agency: "Azərbaycan Respublikasının Daxili İşlər Nazirliyi".into(),
        kind: DocumentKind::Residence,
        citizen_name: "Əliyeva Gülşən İlqar qızı".into(),
        personal_code: "5ZK3Q8M".into(),
        facts: vec![
            Fact::residence_address("Bakı şəhəri, Nəsimi rayonu, Şərifzadə küçəsi 12, mənzil 34"),
            Fact::registered_since(date!(2014 - 09 - 01)),
        ],
        issued_at: datetime!(2025-03-01 10:05:09 UTC),
        reference: DocumentReference::parse("7QKD-M2XH-9TAV").expect("a reference"),
        origin: "https://portal.e-imza.gov.az".into(),
    }
}

fn main() {
    let statement = statement();
    let first = Instant::now();
    let size = render(&statement).expect("renders").len();
    println!(
        "first document (fonts parsed): {:?}, {size} bytes",
        first.elapsed()
    );
    for threads in [1, 2] {
        let span = Duration::from_secs(3);
        let start = Instant::now();
        let total: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut count = 0u64;
                        while start.elapsed() < span {
                            std::hint::black_box(render(&statement).expect("renders"));
                            count += 1;
                        }
                        count
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
        });
        let per_second = total as f64 / start.elapsed().as_secs_f64();
        println!(
            "{threads} thread(s): {per_second:>5.0} documents/s ({:.3} ms a document per thread)",
            1000.0 * threads as f64 / per_second
        );
    }
}
