//! New one-page documents per second, shaped like an e-certificate (the portal's
//! `document::render`): two embedded DejaVu subsets, about thirty lines of Azerbaijani and
//! English text, table rules and a QR-sized pattern of ~400 rectangles; on one thread, then on
//! two (the 2-core figure), with streams deflated at zlib's level 6 and at level 1 (the
//! builder's default). The target is ≥ 200 signed documents/s end to end on 2 cores,
//! so rendering should stay well under 1–2 ms a document.
//!
//! `cargo bench -p imza-pdf --bench new_document`

// Benchmark code: a failed set-up panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use flate2::Compression;
use imza_pdf::{DocumentBuilder, DocumentInfo, FontProgram, PageSize, Rect};

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static DEJAVU_SANS_BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

const LINES: [&str; 14] = [
    "Azərbaycan Respublikasının Daxili İşlər Nazirliyi",
    "Yaşayış yeri haqqında arayış",
    "Certificate of residence",
    "Bu arayış Əliyeva Gülşən İlqar qızı (FİN: 5ZK3Q8M) barədə verilir və aşağıdakı",
    "This certificate is issued in respect of Əliyeva Gülşən İlqar qızı (personal code 5ZK3Q8M)",
    "Soyadı, adı, atasının adı",
    "Surname, name, patronymic",
    "Bakı şəhəri, Nəsimi rayonu, Şərifzadə küçəsi 12, mənzil 34",
    "Qeydiyyat tarixi 01.09.2014 Registered since",
    "Verilmə vaxtı / Date of issue 01.03.2025 14:05 (Bakı vaxtı / Baku time, UTC+04:00)",
    "Arayışın nömrəsi / Reference 7QKD-M2XH-9TAV",
    "Sənədin həqiqiliyini yoxlayın / Check this document: https://portal.gov.az/d/7QKD-M2XH-9TAV",
    "Bu sənəd elektron möhürlə möhürlənmişdir (ETSI PAdES). Çap edilmiş nüsxənin həqiqiliyi",
    "This document is sealed electronically (ETSI PAdES). The printed copy is checked through",
];

fn document(regular: &FontProgram, bold: &FontProgram, compression: Compression) -> Vec<u8> {
    let mut builder = DocumentBuilder::new();
    builder.set_compression(compression);
    let sans = builder.add_font(regular);
    let sans_bold = builder.add_font(bold);
    let mut page = builder.page(PageSize::A4);
    let mut y = 780.0;
    for round in 0..2 {
        for (i, line) in LINES.iter().enumerate() {
            let font = if (i + round) % 3 == 0 {
                sans_bold
            } else {
                sans
            };
            page.text(font, 10.0, 56.0, y, line).expect("drawn");
            y -= 13.0;
        }
    }
    for i in 0..8 {
        page.line(
            56.0,
            400.0 - i as f32 * 20.0,
            540.0,
            400.0 - i as f32 * 20.0,
        );
    }
    // A QR code's worth of runs: 33 rows of about 12 runs.
    let mut rects = Vec::new();
    for row in 0..33 {
        for run in 0..12 {
            rects.push(Rect {
                x: 60.0 + ((run * 7 + row * 3) % 33) as f32 * 3.0,
                y: 100.0 + row as f32 * 3.0,
                width: 3.0 * (1 + (run + row) % 3) as f32,
                height: 3.0,
            });
        }
    }
    page.fill_rects(&rects);
    page.finish();
    builder
        .finish(&DocumentInfo {
            title: LINES[1].into(),
            created: time::OffsetDateTime::UNIX_EPOCH,
            language: Some("az".into()),
        })
        .expect("built")
}

/// Documents per second on `threads` threads for about two seconds.
fn rate(threads: usize, compression: Compression) -> f64 {
    let regular = FontProgram::parse(DEJAVU_SANS).expect("DejaVu Sans");
    let bold = FontProgram::parse(DEJAVU_SANS_BOLD).expect("DejaVu Sans Bold");
    let span = Duration::from_secs(2);
    let start = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut count = 0u64;
                    while start.elapsed() < span {
                        std::hint::black_box(document(&regular, &bold, compression));
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let regular = FontProgram::parse(DEJAVU_SANS).expect("DejaVu Sans");
    let bold = FontProgram::parse(DEJAVU_SANS_BOLD).expect("DejaVu Sans Bold");
    let start = Instant::now();
    let parses = 20;
    for _ in 0..parses {
        std::hint::black_box(FontProgram::parse(DEJAVU_SANS).expect("parses"));
    }
    println!(
        "FontProgram::parse (DejaVu Sans, once per process): {:?}",
        start.elapsed() / parses
    );
    for (label, compression) in [
        ("6 everywhere", Compression::default()),
        ("1 everywhere (default)", Compression::fast()),
    ] {
        let size = document(&regular, &bold, compression).len();
        for threads in [1, 2] {
            let per_second = rate(threads, compression);
            report(label, size, threads, per_second);
        }
    }
}

fn report(label: &str, size: usize, threads: usize, per_second: f64) {
    println!(
        "{label}: {size} bytes, {threads} thread(s): {per_second:>5.0} documents/s \
         ({:.3} ms a document per thread)",
        1000.0 * threads as f64 / per_second
    );
}
