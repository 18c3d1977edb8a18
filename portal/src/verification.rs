//! The public verification pages of the e-certificates, in plain words (Azerbaijani and
//! English): `/d/{reference}`, where the QR code on the paper leads — the document's kind,
//! issuer, issue time, status and SHA-256, and a form to drop the PDF to compare — and `/d`,
//! where any signed PDF or `.p7s` is checked. Nothing of the citizen is shown beyond what the
//! paper itself prints; not even that: the register's record has no name.

use base64ct::{Base64, Encoding};
use imza_core::clock::rfc3339;
use imza_signer::{Indication, SignatureReport, SubIndication, ValidationReport};

use crate::document::DocumentReference;
use crate::pages::{escape, page, Language};
use crate::store::{DocumentRecord, DocumentStatus};

/// What an uploaded file turned out to be, against the register's record.
pub struct Checked<'a> {
    pub file_name: &'a str,
    pub sha256: [u8; 32],
    pub report: &'a ValidationReport,
}

/// The verdict in one line: valid, or not and why (EN 319 102-1's sub-indications in words).
pub fn verdict(language: Language, report: &ValidationReport) -> String {
    if report.valid {
        return language
            .pick(
                "Etibarlıdır: imza düzgündür və sənəd imzalandıqdan sonra dəyişdirilməyib.",
                "Valid: the signature is correct and the document has not been changed since it \
                 was signed.",
            )
            .to_string();
    }
    let failing = report
        .signatures
        .iter()
        .find(|s| s.indication != Indication::TotalPassed);
    let why = failing
        .and_then(|s| s.sub_indication)
        .map(|sub| reason(language, sub))
        .unwrap_or_else(|| language.pick("imza tapılmadı", "no signature was found"));
    format!("{} {why}", language.pick("Etibarsızdır:", "Not valid:"))
}

fn reason(language: Language, sub: SubIndication) -> &'static str {
    use SubIndication::*;
    match sub {
        HASH_FAILURE => language.pick(
            "sənəd imzalandıqdan sonra dəyişdirilib.",
            "the document was changed after it was signed.",
        ),
        FORMAT_FAILURE => language.pick(
            "fayl imzalanmış sənəd deyil, ya da imzanın quruluşu saxtadır.",
            "the file is not a signed document, or its signature structure is forged.",
        ),
        SIG_CRYPTO_FAILURE => language.pick(
            "imzanın dəyəri imzalayanın açarına uyğun gəlmir.",
            "the signature value does not match the signer's key.",
        ),
        REVOKED | REVOKED_NO_POE | REVOKED_CA_NO_POE => language.pick(
            "imzalayanın sertifikatı ləğv edilib.",
            "the signer's certificate has been revoked.",
        ),
        NO_CERTIFICATE_CHAIN_FOUND | NO_SIGNING_CERTIFICATE_FOUND => language.pick(
            "imzalayan etibarlı bir təşkilat kimi tanınmır.",
            "the signer is not recognised as a trusted authority.",
        ),
        SIG_CONSTRAINTS_FAILURE => language.pick(
            "sənədə imzalayanın icazə vermədiyi dəyişikliklər edilib.",
            "changes were made that the signer did not permit.",
        ),
        OUT_OF_BOUNDS_NO_POE | NOT_YET_VALID => language.pick(
            "imza sertifikatın qüvvədə olduğu müddətdə verildiyi sübut olunmur.",
            "nothing proves the signature was made while the certificate was valid.",
        ),
        SIGNED_DATA_NOT_FOUND => language.pick(
            "imzalanmış məzmun verilməyib.",
            "the signed content was not given.",
        ),
        _ => language.pick(
            "imza təsdiq edilə bilmədi.",
            "the signature could not be confirmed.",
        ),
    }
}

/// One signature's facts: who, when, what level, and what came after it.
fn signature_rows(language: Language, s: &SignatureReport) -> String {
    let mut rows = Vec::new();
    let kind = match s.pdf.as_ref().map(|p| p.kind) {
        Some("document_timestamp") => language.pick("Sənəd zaman damğası", "Document time-stamp"),
        _ => language.pick("İmza", "Signature"),
    };
    let state = match s.sub_indication {
        None => s.indication.name().to_string(),
        Some(sub) => format!("{} / {}", s.indication.name(), sub.name()),
    };
    rows.push((kind, state));
    if let Some(signer) = &s.signer {
        rows.push((
            language.pick("İmzalayan", "Signed by"),
            signer
                .common_name
                .clone()
                .unwrap_or_else(|| signer.subject.clone()),
        ));
    }
    if let Some(tsa) = s.timestamps.first().and_then(|t| t.tsa.clone()) {
        rows.push((language.pick("Zaman damğası", "Time-stamped by"), tsa));
    }
    if let Some(poe) = s.poe_time {
        rows.push((language.pick("Vaxt", "Time"), rfc3339(poe)));
    }
    if let Some(level) = s.level {
        rows.push((language.pick("Səviyyə", "Level"), level.to_string()));
    }
    if let Some(pdf) = &s.pdf {
        if let Some(p) = pdf.certification {
            rows.push((
                language.pick("Təsdiq", "Certification"),
                format!("DocMDP P{p}"),
            ));
        }
        for later in &pdf.later_revisions {
            rows.push((
                language.pick("Sonrakı dəyişiklik", "Later change"),
                format!(
                    "{} {}: {}{}",
                    language.pick("redaksiya", "revision"),
                    later.revision,
                    later.changes.join("; "),
                    if later.allowed {
                        ""
                    } else {
                        language.pick(" — icazəsiz", " — not allowed")
                    }
                ),
            ));
        }
    }
    for error in &s.errors {
        rows.push((language.pick("Səbəb", "Reason"), error.clone()));
    }
    rows.iter()
        .map(|(label, value)| {
            format!(
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(label),
                escape(value)
            )
        })
        .collect()
}

/// The validation report in words, with the JSON report to download.
fn report_section(language: Language, checked: &Checked<'_>) -> String {
    let report = checked.report;
    let json = serde_json::to_vec_pretty(report).unwrap_or_default();
    let signatures: String = report
        .signatures
        .iter()
        .map(|s| {
            format!(
                "<table class=\"signature\"><tbody>{}</tbody></table>",
                signature_rows(language, s)
            )
        })
        .collect();
    format!(
        "<section id=\"report\"><h2>{title}</h2>\
         <p id=\"verdict\" class=\"{class}\">{verdict}</p>\
         <p>{file_label}: <span id=\"file-name\">{file}</span>, SHA-256 \
         <code id=\"file-sha256\">{sha}</code></p>{signatures}\
         <p><a id=\"download-report\" download=\"imza-report.json\" \
         href=\"data:application/json;base64,{json}\">{download}</a></p></section>",
        title = escape(language.pick("Yoxlamanın nəticəsi", "Validation result")),
        class = if report.valid { "valid" } else { "invalid" },
        verdict = escape(&verdict(language, report)),
        file_label = escape(language.pick("Fayl", "File")),
        file = escape(checked.file_name),
        sha = hex::encode(checked.sha256),
        json = Base64::encode_string(&json),
        download = escape(language.pick("Hesabatı yüklə (JSON)", "Download the report (JSON)")),
    )
}

fn upload_form(language: Language, action: &str) -> String {
    format!(
        "<form id=\"upload\" method=\"post\" enctype=\"multipart/form-data\" action=\"{action}{query}\">\
         <label>{label} <input type=\"file\" name=\"file\" accept=\".pdf,.p7s,application/pdf\" \
         required></label> <button type=\"submit\">{check}</button></form>",
        action = escape(action),
        query = language.query(),
        label = escape(language.pick(
            "Sənədi (PDF) və ya imzanı (.p7s) seçin:",
            "Choose the document (PDF) or signature (.p7s):"
        )),
        check = escape(language.pick("Yoxla", "Check")),
    )
}

/// `/d/{reference}`: what the register says of the document, and the comparison with an
/// uploaded file when there is one. `record` `None`: no such document.
pub fn document_page(
    language: Language,
    reference: &DocumentReference,
    record: Option<&DocumentRecord>,
    agency: &str,
    checked: Option<&Checked<'_>>,
) -> String {
    let title = language.pick("Sənədin yoxlanılması", "Document check");
    let Some(record) = record else {
        let body = format!(
            "<h1>{}</h1><p id=\"status\" class=\"invalid\">{} {}</p>",
            escape(title),
            escape(language.pick(
                "Bu nömrə ilə sənəd verilməyib:",
                "No document was issued under this reference:"
            )),
            escape(&reference.to_string())
        );
        return page(language, title, &body);
    };
    let status = match &record.status {
        DocumentStatus::Valid => ("valid", language.pick("Qüvvədədir", "Valid").to_string()),
        DocumentStatus::Withdrawn { at, reason } => (
            "withdrawn",
            format!(
                "{} {}: {reason}",
                language.pick("Geri götürülüb", "Withdrawn"),
                rfc3339(*at)
            ),
        ),
    };
    let kind_title = match language {
        Language::Aze => record.kind.title_az(),
        Language::Eng => record.kind.title_en(),
    };
    let comparison = checked
        .map(|checked| {
            let same = checked.sha256 == record.pdf_sha256;
            let line = if same {
                language.pick(
                    "Bu fayl qeydiyyatdakı sənədin eynisidir (SHA-256 uyğundur).",
                    "This file is the very document that was registered (the SHA-256 matches).",
                )
            } else {
                language.pick(
                    "Bu fayl qeydiyyatdakı sənəd deyil (SHA-256 fərqlidir).",
                    "This file is not the registered document (its SHA-256 differs).",
                )
            };
            format!(
                "<p id=\"comparison\" class=\"{}\">{}</p>{}",
                if same { "same" } else { "different" },
                escape(line),
                report_section(language, checked)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1>\
         <table id=\"document\"><tbody>\
         <tr><th>{kind_label}</th><td id=\"kind\">{kind}</td></tr>\
         <tr><th>{reference_label}</th><td id=\"reference\">{reference}</td></tr>\
         <tr><th>{issuer_label}</th><td id=\"issuer\">{issuer}</td></tr>\
         <tr><th>{issued_label}</th><td id=\"issued-at\">{issued}</td></tr>\
         <tr><th>{status_label}</th><td id=\"status\" class=\"{status_class}\">{status}</td></tr>\
         <tr><th>SHA-256</th><td><code id=\"sha256\">{sha}</code></td></tr>\
         </tbody></table>\
         <p>{invite}</p>{form}{comparison}",
        title = escape(title),
        kind_label = escape(language.pick("Sənəd", "Document")),
        kind = escape(kind_title),
        reference_label = escape(language.pick("Nömrə", "Reference")),
        reference = escape(&reference.to_string()),
        issuer_label = escape(language.pick("Verən", "Issued by")),
        issuer = escape(agency),
        issued_label = escape(language.pick("Verilmə vaxtı", "Issued at")),
        issued = escape(&rfc3339(record.issued_at)),
        status_label = escape(language.pick("Vəziyyət", "Status")),
        status_class = status.0,
        status = escape(&status.1),
        sha = hex::encode(record.pdf_sha256),
        invite = escape(language.pick(
            "Əlinizdəki faylın bu sənəd olduğunu yoxlamaq üçün onu buraya yükləyin.",
            "To check that the file you were given is this document, upload it here."
        )),
        form = upload_form(language, &format!("/d/{reference}")),
    );
    page(language, title, &body)
}

/// `/d`: check any signed PDF or `.p7s`.
pub fn check_page(
    language: Language,
    checked: Option<&Checked<'_>>,
    message: Option<&str>,
) -> String {
    let title = language.pick("İmzalanmış sənədin yoxlanılması", "Check a signed document");
    let body = format!(
        "<h1>{}</h1>{}{}{}",
        escape(title),
        message
            .map(|m| format!("<p id=\"message\">{}</p>", escape(m)))
            .unwrap_or_default(),
        upload_form(language, "/d"),
        checked
            .map(|c| report_section(language, c))
            .unwrap_or_default()
    );
    page(language, title, &body)
}
