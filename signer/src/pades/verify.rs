//! Validating the signatures of a PDF: each signature field's `/ByteRange` and `/Contents`
//! checked against the file's bytes and revisions before anything is hashed (universal
//! signature forgery, signature wrapping), the CMS (or RFC 3161 token) verified over the
//! ranges as a stream with the DSS as validation material, and every later revision examined
//! for what it changed (incremental saving, shadow attacks, DocMDP).

use imza_tsa::imprint_algorithm;
use std::io::{Read, Seek};

use imza_core::alg::DigestAlgorithm;
use imza_pdf::{Object, PdfError, PdfFile, XrefEntry};
use imza_tsa::ParsedToken;
use openssl::hash::Hasher;
use time::OffsetDateTime;

use super::changes::{analyze, Modification};
use super::dss::read_dss;
use super::fields::{signature_fields, SignatureField, SignatureKind};
use super::{der_prefix, DocMdp};
use crate::report::{PdfSignatureReport, RevisionChange};
use crate::verify::OuterMaterial;
use crate::{SignatureReport, SignatureVerifier, SubIndication, ValidationReport, VerifyOptions};

/// Most signatures validated in one document.
const MAX_SIGNATURES: usize = 64;

/// Validates every signature and document time-stamp of the PDF read from `input`.
pub fn verify_pdf<R: Read + Seek>(input: R, options: &VerifyOptions) -> ValidationReport {
    verify_pdf_with(input, &SignatureVerifier::new(options), options.time)
}

/// [`verify_pdf`] with a verifier made once (`POST /verify`).
pub fn verify_pdf_with<R: Read + Seek>(
    input: R,
    verifier: &SignatureVerifier,
    now: OffsetDateTime,
) -> ValidationReport {
    match verify_document(input, verifier, now) {
        Ok(report) => report,
        Err(e) => format_failure(now, format!("not a readable PDF: {e}")),
    }
}

fn format_failure(now: OffsetDateTime, why: String) -> ValidationReport {
    let mut report = SignatureReport::new(0);
    report.fail(SubIndication::FORMAT_FAILURE, why);
    ValidationReport::new(now, vec![report])
}

/// Where a signature's structure stands before any cryptography.
struct Located {
    /// [a, b, c, d] of `/ByteRange`.
    ranges: [u64; 4],
    /// The revision (index) the signature covers.
    revision: usize,
}

fn verify_document<R: Read + Seek>(
    input: R,
    verifier: &SignatureVerifier,
    now: OffsetDateTime,
) -> Result<ValidationReport, PdfError> {
    let mut pdf = PdfFile::open(input)?;
    let last = pdf.last_revision();
    let fields = signature_fields(&mut pdf, last)?;
    if fields.is_empty() {
        return Ok(format_failure(now, "the PDF carries no signature".into()));
    }
    let dss = read_dss(&mut pdf, last).unwrap_or_default();
    let outer = OuterMaterial {
        certificates: dss.certificates,
        crls: dss.crls,
        ocsp_responses: dss.ocsp_responses,
        poe: None,
    };
    let certification = certification(&mut pdf)?;

    // What each revision after the first changed, analysed once.
    let mut analyses = Vec::new();
    for revision in 1..=last {
        let analysis = analyze(&mut pdf, revision)?;
        analyses.push(RevisionChange {
            revision: revision + 1,
            kind: analysis.level.name(),
            allowed: analysis.level != Modification::Other,
            changes: analysis.changes,
        });
    }
    let levels: Vec<Modification> = analyses
        .iter()
        .map(|a| match a.kind {
            "lta_updates" => Modification::LtaUpdates,
            "form_filling" => Modification::FormFilling,
            "annotations" => Modification::Annotations,
            "other" => Modification::Other,
            _ => Modification::None,
        })
        .collect();

    // Document time-stamps first: a valid one is a proof of existence for what it covers.
    let mut order: Vec<usize> = (0..fields.len().min(MAX_SIGNATURES)).collect();
    order.sort_by_key(|i| (fields[*i].kind != SignatureKind::DocTimeStamp, *i));
    let mut timestamp_poe: Vec<(usize, OffsetDateTime)> = Vec::new();
    let mut reports: Vec<(usize, SignatureReport)> = Vec::new();
    for i in order {
        let field = &fields[i];
        let mut report = SignatureReport::new(i);
        report.detached = true;
        let mut pdf_report = PdfSignatureReport {
            field: field.name.clone(),
            kind: match field.kind {
                SignatureKind::Signature => "signature",
                SignatureKind::DocTimeStamp => "document_timestamp",
            },
            sub_filter: field
                .sub_filter()
                .map(|s| String::from_utf8_lossy(s).into_owned()),
            revision: 0,
            covers_whole_document: false,
            certification: certification
                .filter(|(value, _)| Some(*value) == field.value)
                .map(|(_, p)| p as u8),
            modification: Modification::None.name(),
            later_revisions: Vec::new(),
            finding: None,
        };
        let located = match locate(&mut pdf, field) {
            Ok(located) => located,
            Err((finding, why)) => {
                pdf_report.finding = Some(finding);
                report.fail(SubIndication::FORMAT_FAILURE, why);
                report.pdf = Some(pdf_report);
                reports.push((i, report));
                continue;
            }
        };
        pdf_report.revision = located.revision + 1;
        pdf_report.covers_whole_document = located.revision == last;
        let contents = der_prefix(field.contents().unwrap_or_default()).to_vec();
        let mut report_body = match field.kind {
            SignatureKind::DocTimeStamp => {
                match document_timestamp(&mut pdf, verifier, &contents, &located, now, &outer) {
                    Ok(report) => report,
                    Err(e) => {
                        let mut report = SignatureReport::new(i);
                        report.fail(SubIndication::FORMAT_FAILURE, e.to_string());
                        report
                    }
                }
            }
            SignatureKind::Signature => {
                let sub_filter = field.sub_filter().unwrap_or_default();
                if sub_filter != b"ETSI.CAdES.detached" && sub_filter != b"adbe.pkcs7.detached" {
                    pdf_report.finding = Some("unsupported_sub_filter");
                    report.fail(
                        SubIndication::FORMAT_FAILURE,
                        format!(
                            "SubFilter /{} is not supported (ETSI.CAdES.detached and \
                             adbe.pkcs7.detached are)",
                            String::from_utf8_lossy(sub_filter)
                        ),
                    );
                    report.pdf = Some(pdf_report);
                    reports.push((i, report));
                    continue;
                }
                let mut signature_outer = outer.clone();
                signature_outer.poe = timestamp_poe
                    .iter()
                    .filter(|(revision, _)| *revision >= located.revision)
                    .map(|(_, t)| *t)
                    .min();
                let mut ranges = RangeReader::new(&mut pdf, located.ranges);
                match verifier.verify_streamed(&contents, &mut ranges, now, &signature_outer) {
                    Ok(mut cms) => match cms.signatures.len() {
                        1 => cms.signatures.remove(0),
                        n => {
                            let mut report = SignatureReport::new(i);
                            report.fail(
                                SubIndication::FORMAT_FAILURE,
                                format!("a PDF signature holds {n} SignerInfos, not one"),
                            );
                            report
                        }
                    },
                    Err(e) => {
                        let mut report = SignatureReport::new(i);
                        report.fail(
                            SubIndication::FORMAT_FAILURE,
                            format!("reading the signed ranges: {e}"),
                        );
                        report
                    }
                }
            }
        };
        report_body.index = i;
        report_body.detached = true;
        if let Some(time) = field
            .dictionary
            .get("M")
            .and_then(Object::as_string)
            .and_then(|m| imza_pdf::date::parse_pdf_date(&m.to_text()))
        {
            if report_body.claimed_signing_time.is_none() && field.kind == SignatureKind::Signature
            {
                // PAdES claims the time in /M, not in a signing-time attribute (EN 319 142-1
                // §6.3): the CMS check's note about the missing attribute does not apply.
                report_body.claimed_signing_time = Some(time);
                report_body
                    .warnings
                    .retain(|w| !w.starts_with("no signing-time attribute"));
            }
        }
        if field.kind == SignatureKind::DocTimeStamp {
            if let (Some(time), None) = (report_body.poe_time, report_body.sub_indication) {
                timestamp_poe.push((located.revision, time));
            }
        }
        if field.kind == SignatureKind::Signature {
            report_body.level = Some(pades_level(
                report_body.level,
                !outer.crls.is_empty() || !outer.ocsp_responses.is_empty(),
                fields
                    .iter()
                    .filter(|f| f.kind == SignatureKind::DocTimeStamp)
                    .count(),
            ));
        }

        // What came after the signed revision.
        let permitted = match certification.map(|(_, p)| p) {
            Some(DocMdp::NoChanges) => Modification::LtaUpdates,
            Some(DocMdp::FormFilling) | None => Modification::FormFilling,
            Some(DocMdp::Annotations) => Modification::Annotations,
        };
        let mut worst = Modification::None;
        for (index, analysis) in analyses.iter().enumerate().skip(located.revision) {
            let level = levels[index];
            worst = worst.max(level);
            let mut change = analysis.clone();
            change.allowed = level <= permitted;
            pdf_report.later_revisions.push(change);
        }
        pdf_report.modification = worst.name();
        if worst == Modification::Other {
            pdf_report.finding = Some("changed_after_signing");
            let what: Vec<String> = pdf_report
                .later_revisions
                .iter()
                .filter(|r| r.kind == "other")
                .map(|r| format!("revision {}: {}", r.revision, r.changes.join("; ")))
                .collect();
            report_body.fail(
                SubIndication::HASH_FAILURE,
                format!(
                    "the document was changed after this signature in ways no signature \
                     allows ({})",
                    what.join(" | ")
                ),
            );
        } else if worst > permitted {
            pdf_report.finding = Some("changes_beyond_permissions");
            report_body.fail(
                SubIndication::SIG_CONSTRAINTS_FAILURE,
                format!(
                    "later revisions made {} changes, beyond what {} allows",
                    worst.name(),
                    match certification.map(|(_, p)| p) {
                        Some(p) => format!("the certification (DocMDP P{})", p as u8),
                        None => "an approval signature".into(),
                    }
                ),
            );
        }
        report_body.pdf = Some(pdf_report);
        reports.push((i, report_body));
    }
    reports.sort_by_key(|(i, _)| *i);
    Ok(ValidationReport::new(
        now,
        reports.into_iter().map(|(_, r)| r).collect(),
    ))
}

/// The PAdES baseline level a signature's document shows (EN 319 142-1 §6): B-T with a
/// signature time-stamp or a document time-stamp standing for it, B-LT with validation data in
/// the DSS (or the CMS) as well, B-LTA with a document time-stamp over that (beyond the one
/// standing for the signature time-stamp).
fn pades_level(
    cms_level: Option<&'static str>,
    dss_revocation: bool,
    doc_timestamps: usize,
) -> &'static str {
    let cms_t = matches!(cms_level, Some("B-T" | "B-LT" | "B-LTA"));
    let cms_lt = matches!(cms_level, Some("B-LT" | "B-LTA"));
    let archive_timestamps = if cms_t {
        doc_timestamps
    } else {
        doc_timestamps.saturating_sub(1)
    };
    if !cms_t && doc_timestamps == 0 {
        "B-B"
    } else if !(cms_lt || dss_revocation) {
        "B-T"
    } else if archive_timestamps == 0 && cms_level != Some("B-LTA") {
        "B-LT"
    } else {
        "B-LTA"
    }
}

/// Checks `/ByteRange` and `/Contents` against the file (ISO 32000-1 §12.8.1; the universal
/// signature forgery and signature wrapping defences): four non-negative integers, the first
/// range from 0, the gap exactly this dictionary's hex `/Contents` string, the end at the end
/// of a revision, the signature dictionary in that revision and not replaced after it.
fn locate<R: Read + Seek>(
    pdf: &mut PdfFile<R>,
    field: &SignatureField,
) -> Result<Located, (&'static str, String)> {
    let malformed = |why: &str| ("byte_range_malformed", why.to_string());
    let ranges = field
        .dictionary
        .get("ByteRange")
        .and_then(Object::as_array)
        .ok_or_else(|| malformed("the signature has no /ByteRange array"))?;
    let ranges: Vec<u64> = ranges
        .iter()
        .map(|n| n.as_integer().and_then(|n| u64::try_from(n).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| malformed("/ByteRange holds something other than non-negative integers"))?;
    let [a, b, c, d] = ranges[..] else {
        return Err(malformed("/ByteRange is not two ranges (four numbers)"));
    };
    if a != 0 || b == 0 || c <= b || c.checked_add(d).is_none_or(|end| end > pdf.len()) {
        return Err(malformed(
            "/ByteRange does not cover the file from its start in two ranges around a gap",
        ));
    }
    let contents = field
        .dictionary
        .get("Contents")
        .and_then(Object::as_string)
        .filter(|s| !s.bytes.is_empty() && s.hex)
        .ok_or_else(|| {
            (
                "contents_malformed",
                "the signature has no /Contents hex string, or an empty one".to_string(),
            )
        })?;
    // The gap holds `<hex>` and nothing else, and that is this dictionary's /Contents.
    let gap_len = c - b;
    if gap_len != 2 * contents.bytes.len() as u64 + 2 {
        return Err((
            "contents_not_in_gap",
            "the /ByteRange gap is not exactly the signature's /Contents".into(),
        ));
    }
    let gap = pdf
        .read_at(b, gap_len as usize)
        .map_err(|e| ("contents_not_in_gap", e.to_string()))?;
    let inside = &gap[1..gap.len() - 1];
    let decoded = imza_pdf::decode_hex(inside);
    if gap.first() != Some(&b'<')
        || gap.last() != Some(&b'>')
        || decoded.as_deref() != Some(contents.bytes.as_slice())
    {
        return Err((
            "contents_not_in_gap",
            "the bytes the /ByteRange leaves out are not this signature's /Contents".into(),
        ));
    }
    // The signature dictionary itself is where the gap is: its object spans it.
    let value = field.value.ok_or_else(|| {
        (
            "contents_not_in_gap",
            "the signature dictionary is not an indirect object".to_string(),
        )
    })?;
    let end = c + d;
    let revision = pdf
        .revisions()
        .iter()
        .position(|r| r.end == end || r.eof_end == end)
        .ok_or_else(|| {
            (
                "not_at_revision_end",
                format!("the signed bytes end at {end}, which is not the end of a revision"),
            )
        })?;
    let now = pdf.entry_in(pdf.last_revision(), value.number);
    match (pdf.entry_in(revision, value.number), now) {
        (
            Some(XrefEntry::InUse { offset, .. }),
            Some(XrefEntry::InUse {
                offset: now_offset, ..
            }),
        ) if offset == now_offset => {
            if offset >= b {
                return Err((
                    "contents_not_in_gap",
                    "the signature dictionary starts after its /Contents gap".into(),
                ));
            }
        }
        (Some(_), _) => {
            return Err((
                "signature_dictionary_replaced",
                "the signature dictionary was replaced after the revision it signs".into(),
            ))
        }
        (None, _) => {
            return Err((
                "not_at_revision_end",
                "the signature dictionary is not in the revision it signs".into(),
            ))
        }
    }
    Ok(Located {
        ranges: [a, b, c, d],
        revision,
    })
}

/// Verifies a document time-stamp over its ranges.
fn document_timestamp<R: Read + Seek>(
    pdf: &mut PdfFile<R>,
    verifier: &SignatureVerifier,
    token_der: &[u8],
    located: &Located,
    now: OffsetDateTime,
    outer: &OuterMaterial,
) -> Result<SignatureReport, PdfError> {
    let algorithm = ParsedToken::from_der(token_der)
        .ok()
        .and_then(|t| imprint_algorithm(&t.tst_info().message_imprint.hash_algorithm).ok())
        .unwrap_or(DigestAlgorithm::Sha256);
    let mut hasher = Hasher::new(algorithm.message_digest())
        .map_err(|e| PdfError::Io(std::io::Error::other(e)))?;
    let mut sink = HashSink(&mut hasher);
    let [a, b, c, d] = located.ranges;
    pdf.copy_range(a, b - a, &mut sink)?;
    pdf.copy_range(c, d, &mut sink)?;
    let hashed = hasher
        .finish()
        .map_err(|e| PdfError::Io(std::io::Error::other(e)))?;
    let mut report = verifier.verify_document_timestamp(token_der, &hashed, now, outer);
    report.level = None;
    Ok(report)
}

struct HashSink<'a>(&'a mut Hasher);

impl std::io::Write for HashSink<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.update(data).map_err(std::io::Error::other)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The two signed ranges read as one stream.
struct RangeReader<'a, R> {
    pdf: &'a mut PdfFile<R>,
    pieces: [(u64, u64); 2],
    piece: usize,
    done: u64,
}

impl<'a, R: Read + Seek> RangeReader<'a, R> {
    fn new(pdf: &'a mut PdfFile<R>, [a, b, c, d]: [u64; 4]) -> Self {
        RangeReader {
            pdf,
            pieces: [(a, b - a), (c, d)],
            piece: 0,
            done: 0,
        }
    }
}

impl<R: Read + Seek> Read for RangeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.piece < 2 {
            let (start, len) = self.pieces[self.piece];
            if self.done >= len {
                self.piece += 1;
                self.done = 0;
                continue;
            }
            let want = (len - self.done).min(buf.len() as u64) as usize;
            let data = self
                .pdf
                .read_at(start + self.done, want)
                .map_err(std::io::Error::other)?;
            if data.is_empty() {
                return Err(std::io::Error::other(
                    "the file ended inside a signed range",
                ));
            }
            buf[..data.len()].copy_from_slice(&data);
            self.done += data.len() as u64;
            return Ok(data.len());
        }
        Ok(0)
    }
}

/// The certification of the document: its signature dictionary's id and DocMDP permission
/// (catalog `/Perms /DocMDP`, §12.8.2.2; `/P` 2 when absent).
fn certification<R: Read + Seek>(
    pdf: &mut PdfFile<R>,
) -> Result<Option<(imza_pdf::ObjectId, DocMdp)>, PdfError> {
    let (_, catalog) = pdf.catalog()?;
    let Some(perms) = catalog.get("Perms") else {
        return Ok(None);
    };
    let perms = pdf.resolve(perms)?;
    let Some(value) = perms
        .as_dictionary()
        .and_then(|p| p.get("DocMDP"))
        .and_then(Object::as_reference)
    else {
        return Ok(None);
    };
    let signature = pdf.object(value)?;
    let references = signature
        .as_dictionary()
        .and_then(|s| s.get("Reference"))
        .cloned()
        .unwrap_or(Object::Null);
    let references = pdf.resolve(&references)?;
    let mut permission = DocMdp::FormFilling;
    for reference in references.as_array().unwrap_or_default() {
        let reference = pdf.resolve(reference)?;
        let Some(reference) = reference.as_dictionary() else {
            continue;
        };
        if reference.name("TransformMethod") != Some(b"DocMDP") {
            continue;
        }
        let params = reference
            .get("TransformParams")
            .cloned()
            .unwrap_or(Object::Null);
        let params = pdf.resolve(&params)?;
        if let Some(p) = params
            .as_dictionary()
            .and_then(|p| p.get("P"))
            .and_then(Object::as_integer)
        {
            permission = DocMdp::from_p(p).unwrap_or(DocMdp::FormFilling);
        }
    }
    Ok(Some((value, permission)))
}

/// The document's DocMDP permission, when it is certified.
pub(crate) fn doc_mdp_of<R: Read + Seek>(pdf: &mut PdfFile<R>) -> Result<Option<DocMdp>, PdfError> {
    Ok(certification(pdf)?.map(|(_, p)| p))
}
