//! The e-certificate routes: a logged-in citizen asks for a document (`POST
//! /portal/documents`), and anyone checks one without logging in — `GET /d/{reference}` (where
//! the QR code leads), `POST /d/{reference}` (the file compared with the register and
//! validated), `GET`/`POST /d` (any signed PDF or `.p7s` validated), and `GET
//! /d/{reference}/status` for organisations' systems (JSON; an API key names the
//! organisation). Every look at a registered document is recorded for its citizen.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, Response, StatusCode};
use imza_http::answer::closing;
use imza_http::{read_body, BodyRefused};
use imza_signer::ValidationReport;
use openssl::sha::sha256;

use super::{
    blocking, failed, field, forbidden, html, json, see_other, session_form, text, work, Portal,
};
use crate::document::{issue, DocumentKind, DocumentReference, IssueError};
use crate::pages::Language;
use crate::store::{CheckChannel, DocumentRecord, DocumentStatus};
use crate::verification::{check_page, document_page, Checked};

/// Largest file checked on the public pages.
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

/// An organisation that checks documents through the API, known by its key's SHA-256.
#[derive(Clone)]
pub struct Checker {
    pub name: String,
    pub key_sha256: [u8; 32],
}

/// `POST /portal/documents` (`csrf`, `kind`): render, seal and register a document for the
/// session's citizen, then back to the cabinet where it is listed.
pub(crate) async fn request(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    language: Language,
    body: Body,
) -> Response<Body> {
    let (fields, session) = match session_form(&portal, &headers, body).await {
        Ok(Some((fields, session))) if session.citizen.is_some() => (fields, session),
        Ok(_) => return forbidden(),
        Err(refused) => return refused,
    };
    let Some(kind) = DocumentKind::parse(field(&fields, "kind")) else {
        return text(StatusCode::BAD_REQUEST, "no such kind of document");
    };
    let (Some(sealer), Some(registry)) = (portal.sealer.clone(), portal.registry.clone()) else {
        return text(
            StatusCode::NOT_FOUND,
            language.pick(
                "Bu portal sənəd vermir.",
                "This portal does not issue documents.",
            ),
        );
    };
    // The citizen is the session's: a form never names whom a document is for.
    let personal_code = session.citizen.map(|c| c.personal_code).unwrap_or_default();
    let worker = Arc::clone(&portal);
    let issued = work(&portal, move || {
        issue(
            worker.store.as_ref(),
            registry.as_ref(),
            &sealer,
            &personal_code,
            kind,
            worker.clock.now(),
        )
    })
    .await;
    match issued {
        Ok(Ok(_)) => see_other(
            match language {
                Language::Aze => "/portal/cabinet#documents",
                Language::Eng => "/portal/cabinet?lang=eng#documents",
            },
            None,
        ),
        Ok(Err(e @ (IssueError::UnknownCitizen(_) | IssueError::NoFacts(_)))) => text(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "{} ({e})",
                language.pick(
                    "Reyestrdə bu sənəd üçün məlumat yoxdur.",
                    "The registry holds nothing this document could state."
                )
            ),
        ),
        Ok(Err(e)) => {
            eprintln!("portal: issuing a document: {e}");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                language.pick(
                    "Sənəd indi verilə bilmədi; bir az sonra yenidən cəhd edin.",
                    "The document could not be issued now; try again shortly.",
                ),
            )
        }
        Err(e) => failed(e),
    }
}

/// The register's record of `reference`, and the agency's name, read within the portal's
/// work; a look at a registered document is recorded as `channel` for `organisation`.
async fn look_up(
    portal: &Arc<Portal>,
    reference: &DocumentReference,
    channel: CheckChannel,
    organisation: Option<String>,
) -> Result<Option<DocumentRecord>, Response<Body>> {
    let worker = Arc::clone(portal);
    let reference = reference.clone();
    blocking(portal, move || {
        let record = worker.store.document(reference.as_str())?;
        if record.is_some() {
            // A check that cannot be recorded still answers: the record is for the citizen's
            // information, the answer is what the checker needs.
            if let Err(e) = worker.record_check(&reference, organisation.as_deref(), channel) {
                eprintln!("portal: recording a check of {reference}: {e}");
            }
        }
        Ok(record)
    })
    .await
    .map_err(failed)
}

fn agency(portal: &Portal) -> String {
    portal
        .sealer
        .as_ref()
        .map(|s| s.agency.clone())
        .unwrap_or_default()
}

/// `GET /d/{reference}`.
pub(crate) async fn document(
    State(portal): State<Arc<Portal>>,
    Path(reference): Path<String>,
    language: Language,
) -> Response<Body> {
    let Ok(reference) = DocumentReference::parse(&reference) else {
        return text(StatusCode::NOT_FOUND, "no such document");
    };
    match look_up(&portal, &reference, CheckChannel::Page, None).await {
        Ok(record) => html(
            if record.is_some() {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            },
            document_page(
                language,
                &reference,
                record.as_ref(),
                &agency(&portal),
                None,
            ),
        ),
        Err(refused) => refused,
    }
}

/// `POST /d/{reference}`: the uploaded file compared with the register and validated.
pub(crate) async fn document_upload(
    State(portal): State<Arc<Portal>>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    language: Language,
    body: Body,
) -> Response<Body> {
    let Ok(reference) = DocumentReference::parse(&reference) else {
        return closing(text(StatusCode::NOT_FOUND, "no such document"));
    };
    let (name, sha, report) = match checked_upload(&portal, &headers, body).await {
        Ok(checked) => checked,
        Err(refused) => return refused,
    };
    let record = match look_up(&portal, &reference, CheckChannel::Upload, None).await {
        Ok(record) => record,
        Err(refused) => return refused,
    };
    let checked = Checked {
        file_name: &name,
        sha256: sha,
        report: &report,
    };
    html(
        StatusCode::OK,
        document_page(
            language,
            &reference,
            record.as_ref(),
            &agency(&portal),
            Some(&checked),
        ),
    )
}

/// `GET /d`.
pub(crate) async fn check(language: Language) -> Response<Body> {
    html(StatusCode::OK, check_page(language, None, None))
}

/// `POST /d`: any signed PDF or `.p7s` validated.
pub(crate) async fn check_upload(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    language: Language,
    body: Body,
) -> Response<Body> {
    let (name, sha, report) = match checked_upload(&portal, &headers, body).await {
        Ok(checked) => checked,
        Err(refused) => return refused,
    };
    let checked = Checked {
        file_name: &name,
        sha256: sha,
        report: &report,
    };
    html(StatusCode::OK, check_page(language, Some(&checked), None))
}

/// `GET /d/{reference}/status`: the register's record as JSON; `Authorization: Bearer KEY`
/// names the checking organisation (an unknown key is refused).
pub(crate) async fn status(
    State(portal): State<Arc<Portal>>,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Response<Body> {
    let organisation = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            let digest = sha256(key.as_bytes());
            // Every configured key is compared, each in constant time.
            let found = portal
                .checkers
                .iter()
                .filter(|c| openssl::memcmp::eq(&c.key_sha256, &digest))
                .map(|c| c.name.clone())
                .next_back();
            match found {
                Some(name) => Some(name),
                None => {
                    return json(
                        StatusCode::UNAUTHORIZED,
                        &serde_json::json!({ "error": "unknown API key" }),
                    )
                }
            }
        }
    };
    let Ok(reference) = DocumentReference::parse(&reference) else {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "no such document" }),
        );
    };
    let record = match look_up(&portal, &reference, CheckChannel::Api, organisation).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            return json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": "no such document" }),
            )
        }
        Err(refused) => return refused,
    };
    let (status, withdrawn_at, reason) = match &record.status {
        DocumentStatus::Valid => ("valid", None, None),
        DocumentStatus::Withdrawn { at, reason } => (
            "withdrawn",
            Some(imza_core::clock::rfc3339(*at)),
            Some(reason.clone()),
        ),
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "reference": reference.to_string(),
            "kind": record.kind.as_str(),
            "issuer": agency(&portal),
            "issued_at": imza_core::clock::rfc3339(record.issued_at),
            "status": status,
            "withdrawn_at": withdrawn_at,
            "withdrawal_reason": reason,
            "sha256": hex::encode(record.pdf_sha256),
        }),
    )
}

/// The uploaded file's name and SHA-256, and its validation report.
async fn checked_upload(
    portal: &Arc<Portal>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, [u8; 32], ValidationReport), Response<Body>> {
    let (name, bytes) = uploaded_file(headers, body).await?;
    let sha = sha256(&bytes);
    let report = validate(portal, bytes).await?;
    Ok((name, sha, report))
}

/// Validates an uploaded PDF (its PAdES signatures) or CMS signature within the portal's
/// work.
async fn validate(
    portal: &Arc<Portal>,
    bytes: Vec<u8>,
) -> Result<ValidationReport, Response<Body>> {
    let Some(verifier) = portal.verifier.clone() else {
        return Err(text(
            StatusCode::NOT_FOUND,
            "this portal does not validate documents",
        ));
    };
    let now = portal.clock.now();
    work(portal, move || {
        if imza_pdf::is_pdf(&bytes) {
            imza_signer::pades::verify_pdf_with(std::io::Cursor::new(bytes), &verifier, now)
        } else {
            verifier.verify(&bytes, None, now)
        }
    })
    .await
    .map_err(failed)
}

/// The file of a `multipart/form-data` upload (RFC 7578): its name and bytes.
async fn uploaded_file(
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, Vec<u8>), Response<Body>> {
    let bad = |message: &str| closing(text(StatusCode::BAD_REQUEST, message));
    let boundary = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or_else(|| {
            closing(text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the file as multipart/form-data",
            ))
        })?;
    let body = read_body(body, headers, MAX_UPLOAD_BYTES + 64 * 1024, None)
        .await
        .map_err(|e| match e {
            BodyRefused::TooLarge { limit } => closing(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("a file checked here is at most {limit} bytes"),
            )),
            _ => bad("the upload could not be read"),
        })?;
    let bytes = body.bytes;
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() != Some("file") {
            continue;
        }
        let name: String = field
            .file_name()
            .unwrap_or("document")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let data = field
            .bytes()
            .await
            .map_err(|_| bad("the upload is malformed"))?;
        if data.is_empty() {
            return Err(bad("the file is empty"));
        }
        return Ok((name, data.to_vec()));
    }
    Err(bad("the upload has no file"))
}
