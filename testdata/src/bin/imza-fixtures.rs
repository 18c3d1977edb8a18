//! Makes benchmark fixtures:
//!   imza-fixtures csrs COUNT DIR                 COUNT citizen CSRs (P-256, PEM) as DIR/NNNNNNN.csr
//!   imza-fixtures revoked DATA_DIR CA COUNT INDEX   COUNT revoked entries for CA in the store,
//!                                                   and the same serials as an `openssl ca` index
//! The second writes straight into the SQLite store through a method that exists only for this
//! benchmark fixture (no certificates are signed, no audit entries are made).

use std::io::Write;
use std::path::PathBuf;

use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("csrs") if args.len() == 4 => {
            csrs(args[2].parse().expect("COUNT"), PathBuf::from(&args[3]))
        }
        Some("revoked") if args.len() == 6 => revoked(
            PathBuf::from(&args[2]),
            &args[3],
            args[4].parse().expect("COUNT"),
            PathBuf::from(&args[5]),
        ),
        _ => {
            eprintln!("usage: imza-fixtures csrs COUNT DIR | revoked DATA_DIR CA COUNT INDEX_FILE");
            std::process::exit(2);
        }
    }
}

fn csrs(count: usize, dir: PathBuf) {
    std::fs::create_dir_all(&dir).expect("create dir");
    (0..count).into_par_iter().for_each(|i| {
        let key = imza_testdata::csr::p256_key();
        let subject = imza_testdata::csr::citizen_subject(i);
        let pairs: Vec<(&str, &str)> = subject.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let der = imza_testdata::csr::csr_der(&key, &pairs);
        let pem = imza_core::pem::encode(imza_core::pem::CERTIFICATE_REQUEST, &der).expect("PEM");
        std::fs::write(dir.join(format!("{i:07}.csr")), pem).expect("write CSR");
    });
}

fn revoked(data_dir: PathBuf, ca: &str, count: usize, index: PathBuf) {
    use imza_ca::store::sqlite::SqliteStore;
    use x509_cert::ext::pkix::CrlReason;
    let store =
        SqliteStore::open(&data_dir.join(imza_ca::authority::DATABASE_FILE)).expect("open store");
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("time");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&index).expect("index file"));
    let stamp = format!(
        "{}Z",
        now.format(&time::macros::format_description!(
            "[year repr:last_two][month][day][hour][minute][second]"
        ))
        .expect("format")
    );
    let expiry = "491231235959Z";
    for chunk_start in (0..count).step_by(100_000) {
        let n = (count - chunk_start).min(100_000);
        let entries: Vec<(Vec<u8>, time::OffsetDateTime, CrlReason)> = (0..n)
            .map(|_| {
                let serial = imza_core::cert::random_serial().expect("random serial");
                (serial, now, CrlReason::KeyCompromise)
            })
            .collect();
        for (serial, _, _) in &entries {
            // openssl ca index: status, expiry, revocation[,reason], serial, file, subject
            writeln!(
                out,
                "R\t{expiry}\t{stamp},keyCompromise\t{}\tunknown\t/CN=benchmark",
                hex::encode_upper(serial)
            )
            .expect("write index");
        }
        store
            .insert_revoked_for_benchmark(ca, &entries)
            .expect("insert revoked");
    }
    out.flush().expect("flush");
}
