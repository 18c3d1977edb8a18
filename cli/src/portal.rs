//! `imza portal`: the citizen portal's administration: the one-time access codes a service
//! centre gives a citizen who has no card or phone at hand, and the register of documents the
//! portal issued (show one, withdraw one).

use clap::Subcommand;
use serde_json::json;

use imza_core::clock::rfc3339;
use imza_portal::access_code::{issue, personal_code_of, AccessCodeError, AccessCodePolicy};
use imza_portal::document::{self, DocumentError, DocumentReference};
use imza_portal::store::{DocumentRecord, DocumentStatus};
use time::Duration;

use crate::ca::{open_pki, Home};
use crate::output::{print_json, store_failure, CliResult, Failure};

#[derive(Subcommand)]
pub enum PortalCommand {
    /// One-time access codes for logging in to the portal.
    #[command(subcommand)]
    Code(CodeCommand),
    /// The register of documents (signed e-certificates) the portal issued.
    #[command(subcommand)]
    Document(DocumentCommand),
}

#[derive(Subcommand)]
pub enum DocumentCommand {
    /// Show a document's record: what it states, to whom, when, the SHA-256 of its PDF, and
    /// whether it is valid or withdrawn (when, why).
    Show {
        /// The reference printed on the document (XXXX-XXXX-XXXX; case and dashes do not
        /// matter).
        reference: String,
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a valid document: from now on its check says "withdrawn" with the reason.
    /// An unknown reference or a document withdrawn already is refused and nothing changes.
    Withdraw {
        /// The reference printed on the document.
        reference: String,
        /// Why (required; one line, at most 500 characters): the citizen and anyone checking
        /// the document see it.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
}

fn document_failure(e: DocumentError) -> Failure {
    match e {
        DocumentError::Store(e) => store_failure(e),
        other => Failure::Input(other.to_string()),
    }
}

fn print_document(document: &DocumentRecord, json_out: bool) -> CliResult {
    let reference = DocumentReference::parse(&document.reference)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| document.reference.clone());
    let (status, withdrawn_at, reason) = match &document.status {
        DocumentStatus::Valid => ("valid", None, None),
        DocumentStatus::Withdrawn { at, reason } => {
            ("withdrawn", Some(rfc3339(*at)), Some(reason.as_str()))
        }
    };
    if json_out {
        return print_json(&json!({
            "reference": reference,
            "kind": document.kind.as_str(),
            "issued_to": document.issued_to,
            "issued_at": rfc3339(document.issued_at),
            "pdf_sha256": hex::encode(document.pdf_sha256),
            "status": status,
            "withdrawn_at": withdrawn_at,
            "withdrawal_reason": reason,
        }));
    }
    println!("reference   {reference}");
    println!("kind        {}", document.kind.as_str());
    println!("issued to   {}", document.issued_to);
    println!("issued at   {}", rfc3339(document.issued_at));
    println!("pdf sha256  {}", hex::encode(document.pdf_sha256));
    match (withdrawn_at, reason) {
        (Some(at), Some(reason)) => println!("status      withdrawn at {at}: {reason}"),
        _ => println!("status      valid"),
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum CodeCommand {
    /// Issue a one-time access code for the citizen with this national id (FİN), to hand to
    /// them at the service centre. It is printed once and kept only as a slow hash (scrypt);
    /// it replaces a code the citizen had, is used once, expires after --valid-hours, and five
    /// wrong tries lock the citizen out for 15 minutes.
    Issue {
        /// The citizen's national id (FİN): 7 characters, A-Z and 0-9.
        #[arg(long)]
        national_id: String,
        /// Hours the code may be used (1 to 168).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=168))]
        valid_hours: u32,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(home: &Home, command: PortalCommand) -> CliResult {
    match command {
        PortalCommand::Document(DocumentCommand::Show {
            reference,
            json: json_out,
        }) => {
            let reference =
                DocumentReference::parse(&reference).map_err(|e| Failure::Input(e.to_string()))?;
            open_pki(home)?;
            let store = imza_portal::store::open(&home.store).map_err(store_failure)?;
            match store.document(reference.as_str()).map_err(store_failure)? {
                Some(document) => print_document(&document, json_out),
                None => Err(Failure::Input(
                    DocumentError::Unknown(reference).to_string(),
                )),
            }
        }
        PortalCommand::Document(DocumentCommand::Withdraw {
            reference,
            reason,
            json: json_out,
        }) => {
            let reference =
                DocumentReference::parse(&reference).map_err(|e| Failure::Input(e.to_string()))?;
            let pki = open_pki(home)?;
            let store = imza_portal::store::open(&home.store).map_err(store_failure)?;
            let withdrawn = document::withdraw(store.as_ref(), &reference, &reason, pki.now())
                .map_err(document_failure)?;
            if !json_out {
                println!("withdrew document {reference}");
            }
            print_document(&withdrawn, json_out)
        }
        PortalCommand::Code(CodeCommand::Issue {
            national_id,
            valid_hours,
            json: json_out,
        }) => {
            // Bad input is refused before the store is opened: nothing is made for it.
            personal_code_of(&national_id).map_err(|e| Failure::Input(e.to_string()))?;
            // The CA store must exist; the portal's tables are made in it if missing.
            let pki = open_pki(home)?;
            let store = imza_portal::store::open(&home.store).map_err(store_failure)?;
            let policy = AccessCodePolicy {
                lifetime: Duration::hours(i64::from(valid_hours)),
                ..AccessCodePolicy::default()
            };
            let issued =
                issue(store.as_ref(), &national_id, pki.now(), &policy).map_err(|e| match e {
                    AccessCodeError::Store(e) => store_failure(e),
                    other => Failure::Input(other.to_string()),
                })?;
            let expires = rfc3339(issued.expires_at);
            if json_out {
                return print_json(&json!({
                    "personal_code": issued.personal_code,
                    "code": issued.code,
                    "expires_at": expires,
                }));
            }
            println!("access code for {}: {}", issued.personal_code, issued.code);
            println!("valid until {expires}, once; five wrong tries lock it for 15 minutes");
            Ok(())
        }
    }
}
