//! The portal's pages as HTML, in Azerbaijani (the default) or English. Every value from a
//! request or the store goes through [`escape`]; no page has inline script or style, so the
//! Content-Security-Policy needs no `unsafe-inline`.

use imza_core::clock::rfc3339;

use time::OffsetDateTime;

use crate::document::DocumentReference;
use crate::records::{CertificateUse, CitizenCertificate, UseKind};
use crate::store::{
    CheckChannel, DocumentCheck, DocumentKind, DocumentRecord, DocumentStatus, Event, EventKind,
    ExpiryNotice, LoginMethod, Session,
};

/// The pages' language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    Aze,
    Eng,
}

impl Language {
    /// `?lang=eng` picks English; anything else is Azerbaijani.
    pub fn from_query(query: Option<&str>) -> Language {
        let english = query.is_some_and(|q| q.split('&').any(|pair| pair == "lang=eng"));
        if english {
            Language::Eng
        } else {
            Language::Aze
        }
    }

    fn code(self) -> &'static str {
        match self {
            Language::Aze => "az",
            Language::Eng => "en",
        }
    }

    /// The query that keeps this language on a link or a form's action: none for
    /// Azerbaijani, the default.
    pub fn query(self) -> &'static str {
        self.pick("", "?lang=eng")
    }

    pub fn pick(self, aze: &'static str, eng: &'static str) -> &'static str {
        match self {
            Language::Aze => aze,
            Language::Eng => eng,
        }
    }
}

/// `text` with the characters HTML gives a meaning to replaced by references.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

pub(crate) fn page(language: Language, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title></head><body>{body}</body></html>\n",
        language.code(),
        escape(title)
    )
}

fn method_name(language: Language, method: LoginMethod) -> &'static str {
    match method {
        LoginMethod::Card => language.pick("şəxsiyyət vəsiqəsi", "ID card"),
        LoginMethod::Phone => language.pick("ASAN İmza", "ASAN signature (phone)"),
        LoginMethod::Qr => language.pick("QR kod", "QR code"),
        LoginMethod::DeviceCertificate => {
            language.pick("mobil autentifikasiya sertifikatı", "device certificate")
        }
        LoginMethod::AccessCode => language.pick("giriş kodu", "access code"),
    }
}

/// The login page: one section per login method (each built beside its routes, with the
/// session's CSRF token), and `message` (an error) above them.
pub fn login(language: Language, sections: &[String], message: Option<&str>) -> String {
    let title = language.pick("Vətəndaş portalına giriş", "Log in to the citizen portal");
    let message = message
        .map(|m| format!("<p role=\"alert\" id=\"message\">{}</p>", escape(m)))
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1>{message}{sections}\
         <p><a href=\"/portal?lang={other_code}\">{other}</a></p>",
        title = escape(title),
        sections = sections.concat(),
        other_code = match language {
            Language::Aze => "eng",
            Language::Eng => "aze",
        },
        other = language.pick("English", "Azərbaycanca"),
    );
    page(language, title, &body)
}

/// What the cabinet shows besides who is logged in.
pub struct CabinetRecords<'a> {
    /// The citizen's history (logins, logouts, services).
    pub history: &'a [Event],
    /// "Who used my certificates".
    pub uses: &'a [CertificateUse],
    /// The citizen's certificates; `None` when the portal has no access to the CA's records.
    pub certificates: Option<&'a [CitizenCertificate]>,
    /// The time the expiry flags are computed at.
    pub now: OffsetDateTime,
    /// "My documents": the documents issued to the citizen, newest first.
    pub documents: &'a [DocumentRecord],
    /// "Who checked my documents".
    pub checks: &'a [DocumentCheck],
    /// "Notices": certificate expiry notices.
    pub notices: &'a [ExpiryNotice],
    /// Whether the portal issues documents (an agency seal is configured): the request
    /// buttons are shown.
    pub issuing: bool,
}

fn kind_name(language: Language, kind: DocumentKind) -> &'static str {
    match language {
        Language::Aze => kind.title_az(),
        Language::Eng => kind.title_en(),
    }
}

/// A stored reference as the paper shows it (`XXXX-XXXX-XXXX`).
fn shown_reference(reference: &str) -> String {
    DocumentReference::parse(reference)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| reference.to_string())
}

/// The buttons that ask for a document, one form each.
fn request_forms(language: Language, csrf_token: &str) -> String {
    DocumentKind::ALL
        .iter()
        .map(|kind| {
            format!(
                "<form method=\"post\" action=\"/portal/documents{}\" class=\"request\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <input type=\"hidden\" name=\"kind\" value=\"{}\">\
                 <button type=\"submit\" id=\"request-{}\">{}: {}</button></form>",
                language.query(),
                escape(csrf_token),
                kind.as_str(),
                kind.as_str(),
                escape(language.pick("Sifariş et", "Request")),
                escape(kind_name(language, *kind)),
            )
        })
        .collect()
}

/// "My documents" (each with its download link, and the request buttons), "Who checked my
/// documents" and "Notices".
fn document_sections(language: Language, csrf_token: &str, records: &CabinetRecords<'_>) -> String {
    let documents: String = records
        .documents
        .iter()
        .map(|d| {
            let reference = shown_reference(&d.reference);
            let status = match &d.status {
                DocumentStatus::Valid => language.pick("qüvvədədir", "valid").to_string(),
                DocumentStatus::Withdrawn { at, reason } => format!(
                    "{} {} ({})",
                    language.pick("geri götürülüb", "withdrawn"),
                    rfc3339(*at),
                    reason
                ),
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td><a href=\"/portal/documents/{}\">{}</a></td></tr>",
                escape(&rfc3339(d.issued_at)),
                escape(kind_name(language, d.kind)),
                escape(&reference),
                escape(&status),
                escape(&d.reference),
                escape(language.pick("Yüklə (PDF)", "Download (PDF)")),
            )
        })
        .collect();
    let checks: String = records
        .checks
        .iter()
        .map(|c| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&rfc3339(c.checked_at)),
                escape(&shown_reference(&c.reference)),
                escape(
                    c.organisation
                        .as_deref()
                        .unwrap_or(language.pick("müəyyən edilməyib", "not identified"))
                ),
                escape(match c.channel {
                    CheckChannel::Page => language.pick("yoxlama səhifəsi", "verification page"),
                    CheckChannel::Upload => language.pick("fayl yüklənməsi", "file upload"),
                    CheckChannel::Api => language.pick("API", "API"),
                }),
            )
        })
        .collect();
    let notices: String = records
        .notices
        .iter()
        .map(|n| {
            let text = match language {
                Language::Aze => format!(
                    "\"{}\" sertifikatınızın ({}) müddəti {} gün ərzində bitir: {}",
                    n.profile,
                    n.certificate,
                    n.threshold_days,
                    rfc3339(n.not_after)
                ),
                Language::Eng => format!(
                    "Your \"{}\" certificate ({}) expires within {} days: {}",
                    n.profile,
                    n.certificate,
                    n.threshold_days,
                    rfc3339(n.not_after)
                ),
            };
            let mailed = match &n.emailed_to {
                Some(to) => format!(
                    "{} {to}",
                    language.pick("e-poçtla göndərilib:", "e-mailed to")
                ),
                None => String::new(),
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&rfc3339(n.claimed_at)),
                escape(&text),
                escape(&mailed),
            )
        })
        .collect();
    let requests = if records.issuing {
        request_forms(language, csrf_token)
    } else {
        String::new()
    };
    format!(
        "<h2>{}</h2>{requests}<table id=\"documents\"><tbody>{documents}</tbody></table>\
         <h2>{}</h2><table id=\"document-checks\"><tbody>{checks}</tbody></table>\
         <h2>{}</h2><table id=\"notices\"><tbody>{notices}</tbody></table>",
        escape(language.pick("Sənədlərim", "My documents")),
        escape(language.pick("Sənədlərimi kim yoxlayıb", "Who checked my documents")),
        escape(language.pick("Bildirişlər", "Notices")),
    )
}

/// The "who used my certificates" table and the certificates table, expiring ones flagged.
fn certificate_sections(language: Language, records: &CabinetRecords<'_>) -> String {
    let uses: String = records
        .uses
        .iter()
        .map(|u| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&rfc3339(u.at)),
                escape(&u.relying_party),
                escape(match u.kind {
                    UseKind::Authentication => language.pick("autentifikasiya", "authentication"),
                    UseKind::Signature => language.pick("imza", "signature"),
                }),
                escape(u.display_text.as_deref().unwrap_or("")),
                escape(&u.result),
            )
        })
        .collect();
    let certificates = records.certificates.map(|certificates| {
        let rows: String = certificates
            .iter()
            .map(|c| {
                let soon = c.expires_soon(records.now);
                let status = if c.revoked {
                    language.pick("ləğv edilib", "revoked")
                } else if c.not_after <= records.now {
                    language.pick("müddəti bitib", "expired")
                } else if soon {
                    language.pick("30 gün ərzində bitir", "expires within 30 days")
                } else {
                    language.pick("qüvvədədir", "valid")
                };
                format!(
                    "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    if soon { " class=\"expiring\"" } else { "" },
                    escape(&c.profile),
                    escape(&c.ca),
                    escape(&c.serial),
                    escape(&rfc3339(c.not_after)),
                    escape(status),
                )
            })
            .collect();
        format!(
            "<h2>{}</h2><table id=\"certificates\"><tbody>{rows}</tbody></table>",
            escape(language.pick("Sertifikatlarım", "My certificates"))
        )
    });
    format!(
        "<h2>{title}</h2><table id=\"certificate-uses\"><tbody>{uses}</tbody></table>{certificates}",
        title = escape(language.pick(
            "Sertifikatlarımdan kim istifadə edib",
            "Who used my certificates"
        )),
        certificates = certificates.unwrap_or_default(),
    )
}

/// The cabinet: who is logged in and how, their history, who used their certificates, and
/// their certificates.
pub fn cabinet(
    language: Language,
    session: &Session,
    csrf_token: &str,
    records: &CabinetRecords<'_>,
) -> String {
    let history = records.history;
    let title = language.pick("Şəxsi kabinet", "Personal cabinet");
    let Some(citizen) = &session.citizen else {
        return page(language, title, "");
    };
    let rows: String = history
        .iter()
        .map(|event| {
            let what = match event.kind {
                EventKind::Login => language.pick("Giriş", "Login"),
                EventKind::Logout => language.pick("Çıxış", "Logout"),
                EventKind::Service => language.pick("Xidmət", "Service"),
            };
            let how = event
                .method
                .map(|m| method_name(language, m))
                .unwrap_or_default();
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&rfc3339(event.at)),
                escape(what),
                escape(how),
                escape(&event.detail)
            )
        })
        .collect();
    let body = format!(
        "<h1>{title}</h1>\
         <p id=\"citizen\"><span id=\"name\">{name}</span> · <span id=\"personal-code\">{code}</span></p>\
         <p id=\"method\">{method_label}: {method}</p>\
         <h2>{history_title}</h2><table id=\"history\"><tbody>{rows}</tbody></table>{certificates}{documents}\
         <form method=\"post\" action=\"/portal/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">{logout}</button></form>",
        title = escape(title),
        name = escape(&citizen.name),
        code = escape(&citizen.personal_code),
        method_label = language.pick("Giriş üsulu", "Logged in with"),
        method = escape(method_name(language, citizen.method)),
        history_title = language.pick("Əməliyyatlar tarixçəsi", "Operations history"),
        certificates = certificate_sections(language, records),
        documents = document_sections(language, csrf_token, records),
        csrf = escape(csrf_token),
        logout = language.pick("Çıxış", "Log out"),
    );
    page(language, title, &body)
}

/// What a waiting page shows the citizen while the phone answers.
pub enum Waiting<'a> {
    /// The phone login: the verification code the phone shows too.
    Phone { verification_code: &'a str },
    /// The QR login: the QR code's image, at this URL (made anew every second).
    Qr { image_url: &'a str },
}

/// The waiting page of the phone and QR logins: `/portal/assets/wait.js` polls
/// `/portal/login/wait` with the session's CSRF token and goes on to the cabinet.
pub fn waiting(language: Language, csrf_token: &str, what: Waiting<'_>) -> String {
    let title = language.pick("Telefonla təsdiq gözlənilir", "Waiting for your phone");
    let (method, shown) = match what {
        Waiting::Phone { verification_code } => (
            "phone",
            format!(
                "<p>{explain}</p><p id=\"verification-code\">{code}</p>",
                explain = escape(language.pick(
                    "Telefonunuzda eyni yoxlama kodunu gördükdə PIN kodu daxil edin:",
                    "Enter your PIN on the phone once it shows the same verification code:",
                )),
                code = escape(verification_code),
            ),
        ),
        Waiting::Qr { image_url } => (
            "qr",
            format!(
                "<p>{explain}</p><img id=\"qr\" src=\"{src}\" alt=\"{alt}\">",
                explain = escape(language.pick(
                    "QR kodu telefonunuzdakı imza tətbiqi ilə skan edin:",
                    "Scan the QR code with the imza app on your phone:",
                )),
                src = escape(image_url),
                alt = escape(language.pick("Giriş üçün QR kod", "QR code to log in")),
            ),
        ),
    };
    let body = format!(
        "<h1>{title}</h1><main id=\"wait\" data-method=\"{method}\" data-csrf=\"{csrf}\">{shown}\
         <p id=\"status\" role=\"status\">{waiting}</p>\
         <noscript>{noscript}</noscript>\
         <p><a href=\"/portal\">{back}</a></p></main>\
         <script src=\"/portal/assets/wait.js\"></script>",
        title = escape(title),
        csrf = escape(csrf_token),
        waiting = escape(language.pick("Gözlənilir…", "Waiting…")),
        noscript = escape(language.pick(
            "Bu səhifə JavaScript tələb edir.",
            "This page needs JavaScript.",
        )),
        back = escape(language.pick("Başqa üsulla daxil olun", "Log in another way")),
    );
    page(language, title, &body)
}
