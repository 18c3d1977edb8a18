//! Issuing an e-certificate: the citizen's facts from the registry, the statement rendered
//! ([`render`]), certified by the agency's e-seal at PAdES B-LTA with DocMDP P1 (no change
//! allowed after it: only DSS and document time-stamp updates keep it valid), and registered
//! under the reference printed on it — the portal never seals a PDF it did not render itself.

use std::sync::Arc;

use imza_signer::pades::{sign_pdf, DocMdp, PadesOptions};
use imza_signer::{
    AugmentOptions, Credentials, HttpTimestamper, Level, Timestamper, ValidationDataSources,
};
use imza_validation::FetchCache;
use time::OffsetDateTime;

use super::register::{register_as, DocumentError, DocumentReference};
use super::render::{render, RenderError};
use super::{DocumentKind, Fact, Statement};
use crate::registry::{CitizenFacts, CitizenRegistry, RegistryError};
use crate::store::{DocumentRecord, PortalStore};

/// The agency that issues and seals the documents.
pub struct Sealer {
    /// The agency's name as the paper's header shows it.
    pub agency: String,
    /// The e-seal: the `org-seal` certificate, its chain and its key (an HSM's, through
    /// PKCS#11, in a deployment).
    pub credentials: Credentials,
    /// The TSA for the signature time-stamp and the document time-stamps.
    pub timestamper: HttpTimestamper,
    /// The roots the seal's and the TSA's certificates chain to (DER), for the DSS.
    pub trust_anchors: Vec<Vec<u8>>,
    /// OCSP answers and CRLs, fetched once and kept for their validity: each document's DSS
    /// needs the same few.
    pub fetch_cache: Arc<FetchCache>,
    /// The portal's public origin (`https://portal.gov.az`): the QR code leads to
    /// `{origin}/d/{reference}`.
    pub origin: String,
}

/// Why a document was not issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The registry has no record of the citizen.
    #[error("the registry has no record of {0}")]
    UnknownCitizen(String),
    /// The registry has the citizen but not what this kind of document states.
    #[error("the registry holds no {0} for this citizen")]
    NoFacts(&'static str),
    #[error("the registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("no random bytes for a reference: {0}")]
    Reference(String),
    #[error("rendering the document: {0}")]
    Render(#[from] RenderError),
    #[error("sealing the document: {0}")]
    Seal(#[from] imza_signer::SignerError),
    #[error("registering the document: {0}")]
    Register(#[from] DocumentError),
}

impl Sealer {
    /// Certifies `pdf` (DocMDP P1) with the e-seal at B-LTA.
    pub fn seal(&self, pdf: &[u8], now: OffsetDateTime) -> Result<Vec<u8>, IssueError> {
        let sources = ValidationDataSources {
            trust_anchors: self.trust_anchors.clone(),
            certificates: self.credentials.chain().to_vec(),
            fetcher: Arc::new(self.fetch_cache.request()),
            time: now,
        };
        let mut options = PadesOptions::new(now);
        options.level = Level::LTA;
        options.certification = Some(DocMdp::NoChanges);
        options.field_name = Some("Seal".into());
        options.name = Some(self.agency.clone());
        options.reason = Some("Elektron arayış / electronic statement".into());
        options.augment = AugmentOptions {
            timestamper: Some(&self.timestamper as &dyn Timestamper),
            validation: Some(&sources),
            archive_digest: None,
        };
        let mut out = std::io::Cursor::new(Vec::with_capacity(pdf.len() + 64 * 1024));
        sign_pdf(
            std::io::Cursor::new(pdf),
            &mut out,
            &self.credentials,
            &options,
        )?;
        Ok(out.into_inner())
    }
}

/// What a document of `kind` states of a citizen, from the registry's `facts`.
pub fn facts_for(kind: DocumentKind, facts: &CitizenFacts) -> Result<Vec<Fact>, IssueError> {
    Ok(match kind {
        DocumentKind::Residence => vec![
            Fact::residence_address(facts.address.clone()),
            Fact::registered_since(facts.registered_since),
        ],
        DocumentKind::Employment => {
            let employment = facts
                .employer
                .as_ref()
                .ok_or(IssueError::NoFacts("employment"))?;
            vec![
                Fact::employer(employment.organisation.clone()),
                Fact::position(employment.position.clone()),
                Fact::employed_since(employment.since),
            ]
        }
        DocumentKind::PersonalData => vec![
            Fact::birth_date(facts.birth_date),
            Fact::residence_address(facts.address.clone()),
            Fact::citizenship("Azərbaycan Respublikası"),
        ],
    })
}

/// Issues a document of `kind` to the citizen `personal_code` (the session's, never one a
/// form names): render, seal, register. Blocking (the TSA and OCSP are asked over HTTP).
pub fn issue(
    store: &dyn PortalStore,
    registry: &dyn CitizenRegistry,
    sealer: &Sealer,
    personal_code: &str,
    kind: DocumentKind,
    now: OffsetDateTime,
) -> Result<(DocumentRecord, Vec<u8>), IssueError> {
    let facts = registry
        .citizen(personal_code)?
        .ok_or_else(|| IssueError::UnknownCitizen(personal_code.to_string()))?;
    let reference =
        DocumentReference::generate().map_err(|e| IssueError::Reference(e.to_string()))?;
    let statement = Statement {
        agency: sealer.agency.clone(),
        kind,
        citizen_name: facts.name.clone(),
        personal_code: facts.personal_code.clone(),
        facts: facts_for(kind, &facts)?,
        issued_at: now,
        reference: reference.clone(),
        origin: sealer.origin.clone(),
    };
    let rendered = render(&statement)?;
    let sealed = sealer.seal(&rendered, now)?;
    let record = register_as(store, &reference, kind, personal_code, now, &sealed)?;
    Ok((record, sealed))
}
