//! `imza store migrate`: moves the embedded store (SQLite) into an empty PostgreSQL database —
//! every table of the CA store, the mobile signature service and the portal, in one
//! transaction (imza-store's `copy`, with the table lists `imza_ca::store::TABLES`,
//! `imza_mobile_sign::store::TABLES` and `imza_portal::store::TABLES`) — and checks the copy's audit chain before it commits and
//! again, as `imza audit verify` does, on the database it committed to.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Subcommand};
use serde_json::json;

use imza_ca::audit::{AuditEntry, ChainVerifier};
use imza_ca::Pki;
use imza_core::clock::SystemClock;
use imza_store::copy::{self, CopyError, Pages, Progress};
use imza_store::sqlite::Durability;
use imza_store::{Create, PostgresUrl, StoreError, StoreUrl};

use crate::ca::{open_pki, Home};
use crate::output::{input, print_json, store_failure, CliResult, Failure};

/// How long the target may take to accept the connection.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// Audit entries read per query when the copy's chain is checked.
const AUDIT_PAGE: i64 = 10_000;
/// Tables of fewer rows than this copy without a progress bar.
const PROGRESS_FROM_ROWS: u64 = 10_000;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy the embedded store into an empty PostgreSQL database.
    ///
    /// Copies everything the store (`--store`, by default sqlite:DATA_DIR/imza.db) holds — CAs,
    /// certificates and revocations, CRLs, OCSP responder and TSA certificates and key
    /// references, public nodes' responder requests, the audit log, and the mobile signature
    /// service's relying parties, phones and sessions — row for row into the database --to names, which must exist and have no
    /// tables (exit 2 otherwise, and nothing is written). The tables are made by the normal
    /// migrations; every value, number and hash is copied unchanged, and PostgreSQL's
    /// sequences continue after the copied numbers.
    ///
    /// One transaction: the copy is committed only when every table holds as many rows as
    /// the source and the audit chain verifies on the copy, so a failure, Ctrl-C or a kill
    /// leaves the database empty and the command can simply be run again. The source is
    /// locked against writers while it is copied (a writer waits, then fails), and is opened
    /// as every command opens it first, so an older schema is brought up to date and a newer
    /// one refused (exit 3).
    ///
    /// Stop every process that writes the store (imza serve, imza ca …) before, and point
    /// them at the database after (IMZA_STORE=postgres://…); keep the SQLite file as a backup.
    /// Keys stay where they are: software keys in DATA_DIR/keys are not in the store.
    Migrate(MigrateArgs),
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The database to copy into: postgres://USER@HOST[:PORT]/DATABASE[?sslmode=require].
    /// Its password comes from PGPASSWORD or a password file (~/.pgpass, PGPASSFILE), or
    /// inside the URL when the URL is in IMZA_STORE_TARGET; a --to that carries a password is
    /// refused, since `ps` shows every process's arguments. Unreachable, or the login refused:
    /// exit 3.
    #[arg(long, env = "IMZA_STORE_TARGET", value_name = "URL")]
    to: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(home: &Home, command: StoreCommand, matches: &ArgMatches) -> CliResult {
    let StoreCommand::Migrate(args) = command;
    let to_on_command_line = matches
        .subcommand_matches("store")
        .and_then(|m| m.subcommand_matches("migrate"))
        .and_then(|m| m.value_source("to"))
        == Some(ValueSource::CommandLine);
    migrate(home, &args, to_on_command_line)
}

fn migrate(home: &Home, args: &MigrateArgs, to_on_command_line: bool) -> CliResult {
    let started = Instant::now();
    let target = target_url(&args.to, to_on_command_line)?;
    let StoreUrl::Sqlite(source_path) = &home.store else {
        return Err(input(format!(
            "the store to migrate from is {}: imza store migrate copies the embedded store \
             (--store sqlite:PATH, by default sqlite:DATA_DIR/imza.db) into PostgreSQL",
            home.store
        )));
    };
    // The target first: an unreachable database stops the command before the source is
    // touched.
    let mut client = imza_store::postgres::connect(&target, CONNECT_WAIT).map_err(store_failure)?;
    // Opened as every command opens them: a missing store is refused, an older schema brought
    // up to date, a newer one refused; the mobile signature and portal tables are made if
    // missing.
    drop(open_pki(home)?);
    drop(crate::mobile::open_mobile_store(home)?);
    drop(imza_portal::store::open(&home.store).map_err(store_failure)?);
    let mut source = imza_store::sqlite::open(source_path, Create::No, Durability::Full)
        .map_err(store_failure)?;

    let sets = [
        &imza_ca::store::TABLES,
        &imza_mobile_sign::store::TABLES,
        &imza_portal::store::TABLES,
    ];
    let mut bar: Option<(String, indicatif::ProgressBar)> = None;
    let mut show = |p: Progress<'_>| {
        if p.total < PROGRESS_FROM_ROWS {
            return;
        }
        if bar.as_ref().is_none_or(|(table, _)| table != p.table) {
            if let Some((_, done)) = bar.take() {
                done.finish_and_clear();
            }
            bar = Some((
                p.table.to_string(),
                crate::output::progress(p.total, p.table),
            ));
        }
        if let Some((_, b)) = &bar {
            b.set_position(p.copied);
        }
    };
    let mut chain = None;
    let copied = copy::copy(
        &mut source,
        &mut client,
        &sets,
        Pages::default(),
        &mut show,
        |tx| {
            chain = Some(verify_chain(tx)?);
            Ok::<(), Failure>(())
        },
    )?;
    if let Some((_, b)) = bar.take() {
        b.finish_and_clear();
    }
    drop(source);
    let copied_at = started.elapsed();
    let (entries, head) = chain.unwrap_or_default();

    // What `imza audit verify` on the new store says.
    let target_store = StoreUrl::Postgres(Box::new(target.clone()));
    let pki = Pki::open(&home.data_dir, &target_store, Arc::new(SystemClock))?;
    let audit = pki.verify_audit()?;
    // More entries only if something wrote to the new store since the commit.
    if audit.entries < entries || (audit.entries == entries && audit.head != head) {
        return Err(Failure::Internal(format!(
            "the copy was committed to {target} with {entries} audit entries (head {head}), \
             but the database now holds {} (head {})",
            audit.entries, audit.head
        )));
    }
    let took = started.elapsed();

    if args.json {
        return print_json(&json!({
            "from": home.store.to_string(),
            "to": target.to_string(),
            "tables": copied.iter().map(|c| json!({ "table": c.table, "rows": c.rows })).collect::<Vec<_>>(),
            "audit": { "ok": true, "entries": audit.entries, "head": audit.head },
            "seconds": took.as_secs_f64(),
            "copy_seconds": copied_at.as_secs_f64(),
        }));
    }
    println!(
        "copied {} into {target} in {:.2} s (one transaction):",
        home.store,
        copied_at.as_secs_f64()
    );
    for c in &copied {
        println!("  {:<24} {:>10} rows", c.table, c.rows);
    }
    println!(
        "audit log intact on {target}: {} entries, head {} ({:.2} s in all)",
        audit.entries,
        audit.head,
        took.as_secs_f64()
    );
    println!(
        "point every imza at it: IMZA_STORE={target}; keep {} as a backup",
        home.store
    );
    Ok(())
}

/// `--to`: a postgres:// URL, without a password when it came from the command line.
fn target_url(text: &str, on_command_line: bool) -> Result<PostgresUrl, Failure> {
    let url = text
        .parse::<StoreUrl>()
        .map_err(|e| input(format!("--to: {e}")))?;
    if on_command_line && url.has_password() {
        return Err(input(
            "--to: the URL carries a password, which `ps` would show to every user; put the \
             URL in IMZA_STORE_TARGET, or the password in PGPASSWORD or a password file \
             (~/.pgpass, PGPASSFILE), and leave it out of --to",
        ));
    }
    match url {
        StoreUrl::Postgres(url) => Ok(*url),
        StoreUrl::Sqlite(_) => Err(input(format!(
            "--to {url}: imza store migrate copies into a PostgreSQL database \
             (postgres://USER@HOST/DATABASE)"
        ))),
    }
}

/// The audit chain as the transaction holds it, checked entry by entry as `imza audit verify`
/// checks it (ChainVerifier): (entries, head hash). A broken chain is a verdict (exit 1) and
/// nothing is committed.
fn verify_chain(tx: &mut copy::Transaction<'_>) -> Result<(u64, String), Failure> {
    let mut verifier = ChainVerifier::default();
    loop {
        let after = i64::try_from(verifier.count()).unwrap_or(i64::MAX);
        let rows = tx
            .query(
                "SELECT seq, at, action, ca, details, prev_hash, hash FROM audit \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &AUDIT_PAGE],
            )
            .map_err(|e| store_failure(imza_store::postgres::error(e)))?;
        for row in &rows {
            let unreadable = |e| store_failure(StoreError::Corrupt(format!("an audit entry: {e}")));
            let seq: i64 = row.try_get(0).map_err(unreadable)?;
            let entry = AuditEntry {
                seq: u64::try_from(seq).unwrap_or(0),
                at: row.try_get(1).map_err(unreadable)?,
                action: row.try_get(2).map_err(unreadable)?,
                ca: row.try_get(3).map_err(unreadable)?,
                details: row.try_get(4).map_err(unreadable)?,
                prev_hash: row.try_get(5).map_err(unreadable)?,
                hash: row.try_get(6).map_err(unreadable)?,
            };
            verifier.check(&entry).map_err(|b| {
                Failure::Verdict(format!(
                    "{b}: the store's audit chain does not verify, so it was not copied; \
                     nothing was written"
                ))
            })?;
        }
        if (rows.len() as i64) < AUDIT_PAGE {
            return Ok((verifier.count(), verifier.head().to_string()));
        }
    }
}

impl From<CopyError> for Failure {
    fn from(e: CopyError) -> Failure {
        match e {
            CopyError::Store(e) => store_failure(e),
            // A database with tables in it, or a source with a table imza does not know: the
            // operator's to look at.
            CopyError::TargetNotEmpty { .. } => Failure::Input(e.to_string()),
            CopyError::UnknownTable {
                engine: "SQLite", ..
            } => Failure::Input(e.to_string()),
            other => Failure::Internal(other.to_string()),
        }
    }
}
