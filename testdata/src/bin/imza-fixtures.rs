//! Makes benchmark fixtures:
//!   imza-fixtures csrs COUNT DIR                 COUNT citizen CSRs (P-256, PEM) as DIR/NNNNNNN.csr
//!   imza-fixtures revoked DATA_DIR CA COUNT INDEX   COUNT revoked entries for CA in the store,
//!                                                   and the same serials as an `openssl ca` index
//!   imza-fixtures issued DATA_DIR CA COUNT INDEX    COUNT issued, unrevoked entries for CA in the
//!                                                   store (valid from now for 3 years), and the
//!                                                   same serials as an `openssl ca` index
//!   imza-fixtures population DATA_DIR CA COUNT REVOKED
//!                                                 COUNT entries for CA, REVOKED of them revoked
//!                                                 (spread evenly), each in the CRL shard
//!                                                 `crl_shards::shard_of` gives for the CA's shard
//!                                                 count (none for an unpartitioned CA)
//! The last three write rows straight into the store (`CaStore::insert_certificates` with no audit
//! entries, empty DER): no certificates are signed; the store is something to measure against.

// A benchmark fixture tool: a failed step panics with what failed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use imza_ca::store::{CaStore, CertificateRecord, Revocation};
use rayon::prelude::*;
use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;

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
        Some("population") if args.len() == 6 => population(
            PathBuf::from(&args[2]),
            &args[3],
            args[4].parse().expect("COUNT"),
            args[5].parse().expect("REVOKED"),
        ),
        Some("issued") if args.len() == 6 => issued(
            PathBuf::from(&args[2]),
            &args[3],
            args[4].parse().expect("COUNT"),
            PathBuf::from(&args[5]),
        ),
        _ => {
            eprintln!(
                "usage: imza-fixtures csrs COUNT DIR | revoked DATA_DIR CA COUNT INDEX_FILE \
                 | issued DATA_DIR CA COUNT INDEX_FILE | population DATA_DIR CA COUNT REVOKED"
            );
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

/// Rows per store transaction and per batch of serials held in memory.
const CHUNK: usize = 100_000;

fn open_store(data_dir: &Path) -> imza_ca::store::sqlite::SqliteStore {
    imza_ca::store::sqlite::SqliteStore::open(&data_dir.join(imza_ca::authority::DATABASE_FILE))
        .expect("open store")
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("time")
}

/// A time as an `openssl ca` index writes it (UTCTime form, `YYMMDDHHMMSSZ`).
fn index_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}Z",
        t.format(&time::macros::format_description!(
            "[year repr:last_two][month][day][hour][minute][second]"
        ))
        .expect("format")
    )
}

/// A row for the benchmark store: no DER, subject `benchmark`. The fixture signs nothing and
/// writes the rows with [`CaStore::insert_certificates`] and no audit entries: it builds a
/// store to measure against, not a PKI anyone relies on.
fn row(
    ca: &str,
    serial: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    revocation: Option<Revocation>,
) -> CertificateRecord {
    CertificateRecord {
        ca: ca.to_string(),
        serial,
        subject: "benchmark".into(),
        profile: "benchmark".into(),
        not_before,
        not_after,
        issued_at: not_before,
        der: Vec::new(),
        revocation,
        crl_shard: None,
    }
}

fn random_serials(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| imza_core::cert::random_serial().expect("random serial"))
        .collect()
}

fn revoked(data_dir: PathBuf, ca: &str, count: usize, index: PathBuf) {
    let store = open_store(&data_dir);
    let now = now();
    let mut out = BufWriter::new(File::create(&index).expect("index file"));
    let stamp = index_time(now);
    let expiry = "491231235959Z";
    for chunk_start in (0..count).step_by(CHUNK) {
        let n = (count - chunk_start).min(CHUNK);
        let revocation = Revocation {
            revoked_at: now,
            reason: CrlReason::KeyCompromise,
            invalidity_date: None,
        };
        let rows: Vec<CertificateRecord> = random_serials(n)
            .into_iter()
            .map(|serial| row(ca, serial, now, now, Some(revocation)))
            .collect();
        for r in &rows {
            // openssl ca index: status, expiry, revocation[,reason], serial, file, subject
            writeln!(
                out,
                "R\t{expiry}\t{stamp},keyCompromise\t{}\tunknown\t/CN=benchmark",
                hex::encode_upper(&r.serial)
            )
            .expect("write index");
        }
        store
            .insert_certificates(&rows, &[])
            .expect("insert revoked");
    }
    out.flush().expect("flush");
}

fn issued(data_dir: PathBuf, ca: &str, count: usize, index: PathBuf) {
    let store = open_store(&data_dir);
    let not_before = now();
    let not_after = not_before + time::Duration::days(3 * 365);
    let mut out = BufWriter::new(File::create(&index).expect("index file"));
    let expiry = index_time(not_after);
    for chunk_start in (0..count).step_by(CHUNK) {
        let rows: Vec<CertificateRecord> = random_serials((count - chunk_start).min(CHUNK))
            .into_iter()
            .map(|serial| row(ca, serial, not_before, not_after, None))
            .collect();
        for r in &rows {
            // openssl ca index: status, expiry, (no revocation), serial, file, subject
            writeln!(
                out,
                "V\t{expiry}\t\t{}\tunknown\t/CN=benchmark",
                hex::encode_upper(&r.serial)
            )
            .expect("write index");
        }
        store
            .insert_certificates(&rows, &[])
            .expect("insert issued");
    }
    out.flush().expect("flush");
}

/// COUNT certificates of CA (valid for 3 years from now), every (COUNT / REVOKED)-th revoked,
/// each in its CRL shard as issuance would put it: a national CA's population to sign CRLs
/// over. Progress on stderr every million rows.
fn population(data_dir: PathBuf, ca: &str, count: usize, revoked: usize) {
    let store = open_store(&data_dir);
    let shards = store
        .ca(ca)
        .expect("read CA")
        .expect("CA exists")
        .crl_shards;
    let not_before = now();
    let not_after = not_before + time::Duration::days(3 * 365);
    let every = (count / revoked.max(1)).max(1);
    let revocation = Revocation {
        revoked_at: not_before,
        reason: CrlReason::KeyCompromise,
        invalidity_date: None,
    };
    let mut done_revoked = 0;
    for chunk_start in (0..count).step_by(CHUNK) {
        let rows: Vec<CertificateRecord> = random_serials((count - chunk_start).min(CHUNK))
            .into_iter()
            .enumerate()
            .map(|(i, serial)| {
                let revoke = (chunk_start + i) % every == 0 && done_revoked < revoked;
                done_revoked += usize::from(revoke);
                CertificateRecord {
                    crl_shard: imza_ca::crl_shards::shard_of(&serial, shards),
                    ..row(
                        ca,
                        serial,
                        not_before,
                        not_after,
                        revoke.then_some(revocation),
                    )
                }
            })
            .collect();
        store
            .insert_certificates(&rows, &[])
            .expect("insert population");
        let done = chunk_start + rows.len();
        if done.is_multiple_of(1_000_000) || done == count {
            eprintln!("  {ca}: {done} certificates, {done_revoked} revoked");
        }
    }
}
