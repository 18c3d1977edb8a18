//! Finding a document's signatures: the signature fields (`/FT /Sig`) of the interactive form
//! (ISO 32000-1 §12.7.4.5) whose value is a signature dictionary (§12.8.1) — signatures
//! and document time-stamps — walked through `/Kids` within limits, and the first page.

use std::io::{Read, Seek};

use imza_pdf::{Dictionary, Object, ObjectId, PdfError, PdfFile};

/// Most form fields walked.
const MAX_FIELDS: usize = 10_000;
/// Deepest `/Kids` nesting followed (fields and pages).
const MAX_TREE_DEPTH: usize = 32;

/// What a signature dictionary is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignatureKind {
    /// `/Type /Sig` (or no type): a signature by a person or an organisation.
    Signature,
    /// `/Type /DocTimeStamp`: an RFC 3161 token over the document (PAdES B-LTA).
    DocTimeStamp,
}

/// One signature field with a signature value.
#[derive(Clone, Debug)]
pub(crate) struct SignatureField {
    /// The field's fully qualified name (§12.7.3.2).
    pub name: String,
    /// The signature dictionary: its id when indirect (it should be, §12.8.1).
    pub value: Option<ObjectId>,
    pub dictionary: Dictionary,
    pub kind: SignatureKind,
}

impl SignatureField {
    /// The `/Contents` bytes (the CMS, or the time-stamp token, with its zero padding).
    pub fn contents(&self) -> Option<&[u8]> {
        self.dictionary
            .get("Contents")
            .and_then(Object::as_string)
            .map(|s| s.bytes.as_slice())
    }

    pub fn sub_filter(&self) -> Option<&[u8]> {
        self.dictionary.name("SubFilter")
    }
}

/// The interactive form of `catalog` as of `revision`: its id when indirect, and itself.
pub(crate) fn acro_form<R: Read + Seek>(
    pdf: &mut PdfFile<R>,
    revision: usize,
    catalog: &Dictionary,
) -> Result<Option<(Option<ObjectId>, Dictionary)>, PdfError> {
    let Some(value) = catalog.get("AcroForm") else {
        return Ok(None);
    };
    let id = value.as_reference();
    match pdf.resolve_in(revision, value)? {
        Object::Dictionary(form) => Ok(Some((id, form))),
        Object::Null => Ok(None),
        other => Err(PdfError::Structure(format!(
            "the /AcroForm is a {}, not a dictionary",
            other.kind()
        ))),
    }
}

/// The signature fields of the document as of `revision`, in form order.
pub(crate) fn signature_fields<R: Read + Seek>(
    pdf: &mut PdfFile<R>,
    revision: usize,
) -> Result<Vec<SignatureField>, PdfError> {
    let (_, catalog) = pdf.catalog_in(revision)?;
    let Some((_, form)) = acro_form(pdf, revision, &catalog)? else {
        return Ok(Vec::new());
    };
    let Some(fields) = form.get("Fields") else {
        return Ok(Vec::new());
    };
    let fields = match pdf.resolve_in(revision, fields)? {
        Object::Array(fields) => fields,
        _ => return Err(PdfError::Structure("/Fields is not an array".into())),
    };
    let mut found = Vec::new();
    let mut visited = 0usize;
    let mut stack: Vec<(Object, String, Option<Vec<u8>>, usize)> = fields
        .into_iter()
        .rev()
        .map(|f| (f, String::new(), None, 0))
        .collect();
    while let Some((reference, parent_name, inherited_type, depth)) = stack.pop() {
        visited += 1;
        if visited > MAX_FIELDS || depth > MAX_TREE_DEPTH {
            return Err(PdfError::Limit {
                what: format!(
                    "a form of more than {MAX_FIELDS} fields or nested more than \
                     {MAX_TREE_DEPTH} deep"
                ),
            });
        }
        let Some(field_id) = reference.as_reference() else {
            continue;
        };
        let Object::Dictionary(field) = pdf.object_in(revision, field_id)? else {
            continue;
        };
        let partial = field
            .get("T")
            .and_then(Object::as_string)
            .map(|t| t.to_text());
        let name = match (&partial, parent_name.is_empty()) {
            (Some(t), true) => t.clone(),
            (Some(t), false) => format!("{parent_name}.{t}"),
            (None, _) => parent_name.clone(),
        };
        let field_type = field
            .name("FT")
            .map(<[u8]>::to_vec)
            .or(inherited_type.clone());
        if let Some(kids) = field.get("Kids") {
            if let Object::Array(kids) = pdf.resolve_in(revision, kids)? {
                for kid in kids.into_iter().rev() {
                    stack.push((kid, name.clone(), field_type.clone(), depth + 1));
                }
            }
        }
        if field_type.as_deref() != Some(b"Sig") {
            continue;
        }
        let Some(value) = field.get("V") else {
            continue;
        };
        let value_id = value.as_reference();
        let Object::Dictionary(dictionary) = pdf.resolve_in(revision, value)? else {
            continue;
        };
        let kind = if dictionary.is_type("DocTimeStamp") {
            SignatureKind::DocTimeStamp
        } else {
            SignatureKind::Signature
        };
        found.push(SignatureField {
            name,
            value: value_id,
            dictionary,
            kind,
        });
    }
    Ok(found)
}

/// Page `index` (0 for the first) of the page tree (§7.7.3) as of `revision`, found by the
/// nodes' `/Count`s.
pub(crate) fn page<R: Read + Seek>(
    pdf: &mut PdfFile<R>,
    revision: usize,
    catalog: &Dictionary,
    index: usize,
) -> Result<(ObjectId, Dictionary), PdfError> {
    let no_such_page = || PdfError::Structure(format!("the document has no page {}", index + 1));
    let mut node = catalog
        .get("Pages")
        .and_then(Object::as_reference)
        .ok_or_else(|| PdfError::Structure("the catalog has no /Pages".into()))?;
    let mut left = index;
    for _ in 0..MAX_TREE_DEPTH {
        let Object::Dictionary(dictionary) = pdf.object_in(revision, node)? else {
            return Err(PdfError::Structure(format!(
                "page tree node {node} is not a dictionary"
            )));
        };
        if dictionary.is_type("Page") {
            return match left {
                0 => Ok((node, dictionary)),
                _ => Err(no_such_page()),
            };
        }
        let kids = dictionary.get("Kids").cloned().unwrap_or(Object::Null);
        let kids = pdf.resolve_in(revision, &kids)?;
        let mut next = None;
        for kid in kids.as_array().unwrap_or_default().iter().take(MAX_FIELDS) {
            let Some(id) = kid.as_reference() else {
                continue;
            };
            let Object::Dictionary(child) = pdf.object_in(revision, id)? else {
                continue;
            };
            let count = if child.is_type("Page") {
                1
            } else {
                child
                    .get("Count")
                    .and_then(Object::as_integer)
                    .and_then(|c| usize::try_from(c).ok())
                    .unwrap_or(0)
            };
            if left < count {
                next = Some(id);
                break;
            }
            left -= count;
        }
        node = next.ok_or_else(no_such_page)?;
    }
    Err(PdfError::Limit {
        what: format!("a page tree deeper than {MAX_TREE_DEPTH}"),
    })
}
