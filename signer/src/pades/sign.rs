//! Making PAdES signatures (ETSI EN 319 142-1): each step is one incremental update.
//!
//! - B-B: a signature field and its signature dictionary (SubFilter `ETSI.CAdES.detached`,
//!   `/ByteRange` covering the whole file but `/Contents`, `/M`), the CMS with
//!   signing-certificate-v2 and no signing-time (§6.3); certification adds `/Reference` with
//!   DocMDP and the catalog's `/Perms`.
//! - B-T: the CMS carries a signature time-stamp.
//! - B-LT: a `/DSS` with the certificates, OCSP responses and CRLs validating every signature
//!   and time-stamp, and a `/VRI` entry per signature (§5.4.2).
//! - B-LTA: after the DSS, a document time-stamp (`/DocTimeStamp`, `ETSI.RFC3161`, §5.4.3), and
//!   a last DSS update with the time-stamp's own validation data.
//!
//! The file is read once through a hasher while it is copied (never held in memory); the
//! update itself is small and built in memory, its `/Contents` left as zeros until the
//! signature over everything else is made.

use std::io::{Read, Seek, SeekFrom, Write};

use imza_core::alg::DigestAlgorithm;
use imza_pdf::{Dictionary, IncrementalUpdate, Object, PdfFile, PdfString};
use openssl::hash::Hasher;

use super::fields::{acro_form, page, signature_fields, SignatureKind};
use super::{appearance, dss, DocMdp, PadesOptions, Stamp};
use crate::augment::{raise, AugmentOptions};
use crate::sign::{key_digest, signed_data_over};
use crate::{Credentials, Level, SignerError};

/// Bytes reserved for a document time-stamp token (a token with a TSA chain of RSA-4096
/// certificates takes about 5 kB).
const DOCUMENT_TIMESTAMP_SIZE: usize = 8192;

/// The `/ByteRange` written first and overwritten in place (same width) once known.
const BYTE_RANGE_PLACEHOLDER: &[u8] = b"[0 9999999999 9999999999 9999999999]";

/// Signs the PDF read from `input` into `output` (which must start empty) at
/// `options.level`.
pub fn sign_pdf<R: Read + Seek, F: Read + Write + Seek>(
    input: R,
    output: &mut F,
    credentials: &Credentials,
    options: &PadesOptions<'_>,
) -> Result<(), SignerError> {
    let mut pdf = PdfFile::open(input)?;
    let digest = key_digest(credentials, None)?;
    let algorithm = digest;
    let fields = {
        let last = pdf.last_revision();
        signature_fields(&mut pdf, last)?
    };
    check_may_sign(&mut pdf, &fields, options.certification)?;
    let field_name = options
        .field_name
        .clone()
        .unwrap_or_else(|| free_field_name(&fields, "Signature"));
    if fields.iter().any(|f| f.name == field_name) {
        return Err(SignerError::Usage(format!(
            "the document already has a field named {field_name:?}"
        )));
    }
    let chain_bytes: usize = credentials.chain().iter().map(Vec::len).sum::<usize>()
        + credentials.certificate_der().len();
    // The CMS: its attributes and signature (about 1 kB), the chain, and a time-stamp token
    // with its TSA's certificates; what is not used of /Contents stays zeros in the file.
    let contents_size = options
        .contents_size
        .unwrap_or(3072 + chain_bytes + if options.level >= Level::T { 6144 } else { 0 });
    let mut value = Dictionary::new();
    value.set("Type", Object::name("Sig"));
    value.set("Filter", Object::name("Adobe.PPKLite"));
    value.set("SubFilter", Object::name("ETSI.CAdES.detached"));
    value.set(
        "M",
        PdfString::literal(imza_pdf::date::pdf_date(
            options.signing_time.to_offset(time::UtcOffset::UTC),
        )),
    );
    for (key, text) in [
        ("Name", &options.name),
        ("Reason", &options.reason),
        ("Location", &options.location),
        ("ContactInfo", &options.contact),
    ] {
        if let Some(text) = text {
            value.set(key, PdfString::text(text));
        }
    }
    if let Some(permission) = options.certification {
        value.set("Reference", vec![doc_mdp_reference(permission)]);
    }
    let cms_level = options.level.min(Level::T);
    let augment = options.augment;
    let update = append_signature(
        &mut pdf,
        Some(output as &mut dyn Write),
        value,
        &field_name,
        options.certification,
        options.stamp.as_ref(),
        contents_size,
        algorithm,
        |message_digest| {
            let mut signed_data = signed_data_over(message_digest, credentials, None, None)?;
            raise(&mut signed_data, None, cms_level, &augment)?;
            signed_data.to_der().map_err(SignerError::from)
        },
    )?;
    drop(pdf);
    output.write_all(&update)?;
    extend(output, options.level, &options.augment, false)
}

/// Raises the PDF in `file` (read and appended to in place) to `level`: B-T by a document
/// time-stamp when a signature has none, B-LT by a DSS, B-LTA by a DSS and a document
/// time-stamp (again on a B-LTA document: a new one, renewing the protection).
pub fn augment_pdf<F: Read + Write + Seek>(
    file: &mut F,
    level: Level,
    options: &AugmentOptions<'_>,
) -> Result<(), SignerError> {
    if level == Level::B {
        return Err(SignerError::Usage(
            "augmenting raises to T, LT or LTA; B-B is where signing starts".into(),
        ));
    }
    {
        let mut pdf = PdfFile::open(&mut *file)?;
        let fields = {
            let last = pdf.last_revision();
            signature_fields(&mut pdf, last)?
        };
        if !fields.iter().any(|f| f.kind == SignatureKind::Signature) {
            return Err(SignerError::Usage(
                "the document has no signature to augment".into(),
            ));
        }
    }
    extend(file, level, options, true)
}

/// The steps after the signature's own update: a document time-stamp for B-T where a
/// signature lacks a signature time-stamp (`augmenting` only), the DSS for B-LT, and for
/// B-LTA a document time-stamp and a DSS with its validation data.
fn extend<F: Read + Write + Seek>(
    file: &mut F,
    level: Level,
    options: &AugmentOptions<'_>,
    augmenting: bool,
) -> Result<(), SignerError> {
    if augmenting {
        // B-T first: a document time-stamp stands for the signature time-stamps missing.
        let mut pdf = PdfFile::open(&mut *file)?;
        let last = pdf.last_revision();
        let fields = signature_fields(&mut pdf, last)?;
        drop(pdf);
        let stamped = fields.iter().any(|f| f.kind == SignatureKind::DocTimeStamp)
            || fields
                .iter()
                .filter(|f| f.kind == SignatureKind::Signature)
                .all(|f| dss::has_signature_timestamp(f.contents().unwrap_or_default()));
        if !stamped {
            add_document_timestamp(file, options)?;
        }
    }
    let mut validated = Vec::new();
    if level >= Level::LT {
        let sources = options.validation.ok_or_else(|| {
            SignerError::Usage(format!(
                "{level} needs trust anchors to gather validation data with"
            ))
        })?;
        dss::add_dss(file, sources, &mut validated)?;
    }
    if level == Level::LTA {
        add_document_timestamp(file, options)?;
        // The last time-stamp's own validation data, so that the document validates offline
        // now (a later augmentation time-stamps it in turn) — unless its TSA's were added
        // above already.
        if let Some(sources) = options.validation {
            dss::add_dss(file, sources, &mut validated)?;
        }
    }
    Ok(())
}

/// Appends a document time-stamp (ETSI EN 319 142-1 §5.4.3) to `file`.
pub(crate) fn add_document_timestamp<F: Read + Write + Seek>(
    file: &mut F,
    options: &AugmentOptions<'_>,
) -> Result<(), SignerError> {
    let tsa = options.timestamper.ok_or_else(|| {
        SignerError::Usage(
            "a document time-stamp needs a time-stamping authority (--tsa URL)".into(),
        )
    })?;
    let update = {
        let mut pdf = PdfFile::open(&mut *file)?;
        let fields = {
            let last = pdf.last_revision();
            signature_fields(&mut pdf, last)?
        };
        // No DocMDP check: P1 forbids changes, yet a document time-stamp with its DSS is
        // what EN 319 142-1 §5.4 adds to any document (DSS and document time-stamps are not
        // changes, ISO 32000-2 §12.8.2.2.2).
        let name = free_field_name(&fields, "DocTimeStamp");
        let mut value = Dictionary::new();
        value.set("Type", Object::name("DocTimeStamp"));
        value.set("Filter", Object::name("Adobe.PPKLite"));
        value.set("SubFilter", Object::name("ETSI.RFC3161"));
        append_signature(
            &mut pdf,
            None,
            value,
            &name,
            None,
            None,
            DOCUMENT_TIMESTAMP_SIZE,
            DigestAlgorithm::Sha256,
            |digest| {
                Ok(tsa
                    .timestamp(digest, DigestAlgorithm::Sha256)?
                    .der()
                    .to_vec())
            },
        )?
    };
    file.seek(SeekFrom::End(0))?;
    file.write_all(&update)?;
    Ok(())
}

/// Refuses a signature where the document's certification forbids one (§12.8.2.2: P1) and a
/// certification where the document is signed already (a certification comes first).
fn check_may_sign<R: Read + Seek>(
    pdf: &mut PdfFile<R>,
    fields: &[super::fields::SignatureField],
    certification: Option<DocMdp>,
) -> Result<(), SignerError> {
    if certification.is_some() && !fields.is_empty() {
        return Err(SignerError::Usage(
            "a certification signature must be the document's first signature".into(),
        ));
    }
    if let Some(DocMdp::NoChanges) = super::verify::doc_mdp_of(pdf)? {
        return Err(SignerError::Usage(
            "the document is certified with no changes allowed (DocMDP P1): another \
             signature would invalidate the certification"
                .into(),
        ));
    }
    Ok(())
}

/// `Signature1`, `Signature2`, …: the first not yet a field name.
fn free_field_name(fields: &[super::fields::SignatureField], stem: &str) -> String {
    (1..)
        .map(|n| format!("{stem}{n}"))
        .find(|name| fields.iter().all(|f| &f.name != name))
        .unwrap_or_else(|| stem.to_string())
}

/// The signature reference dictionary of a certification (§12.8.1 Table 253, §12.8.2.2).
fn doc_mdp_reference(permission: DocMdp) -> Object {
    let mut params = Dictionary::new();
    params.set("Type", Object::name("TransformParams"));
    params.set("P", Object::Integer(permission as i64));
    params.set("V", Object::name("1.2"));
    let mut reference = Dictionary::new();
    reference.set("Type", Object::name("SigRef"));
    reference.set("TransformMethod", Object::name("DocMDP"));
    reference.set("TransformParams", params);
    Object::Dictionary(reference)
}

/// Builds the update that adds an invisible signature field `name` with signature dictionary
/// `value` (its `/ByteRange` and `/Contents` filled here), hashes the file (copying it to
/// `copy_to` on the way when given) and the update around `/Contents` with `algorithm`, and
/// fills `/Contents` with what `make_contents` returns for that digest. Returns the update's
/// bytes, to be appended to the file.
#[allow(clippy::too_many_arguments)]
fn append_signature<R: Read + Seek>(
    pdf: &mut PdfFile<R>,
    copy_to: Option<&mut dyn Write>,
    mut value: Dictionary,
    name: &str,
    certification: Option<DocMdp>,
    stamp: Option<&Stamp>,
    contents_size: usize,
    algorithm: DigestAlgorithm,
    make_contents: impl FnOnce(&[u8]) -> Result<Vec<u8>, SignerError>,
) -> Result<Vec<u8>, SignerError> {
    let revision = pdf.last_revision();
    let (catalog_id, mut catalog) = pdf.catalog()?;
    let page_index = stamp.map_or(0, |s| s.page.saturating_sub(1));
    let (page_id, mut page) = page(pdf, revision, &catalog, page_index)?;
    let mut update = IncrementalUpdate::new(pdf)?;
    let value_id = update.allocate();
    let field_id = update.allocate();

    value.set(
        "ByteRange",
        vec![
            Object::Integer(0),
            Object::Integer(9_999_999_999),
            Object::Integer(9_999_999_999),
            Object::Integer(9_999_999_999),
        ],
    );
    value.set("Contents", PdfString::hex(vec![0u8; contents_size]));
    update.set(value_id, value);

    // A merged field and widget annotation (§12.7.4.5), flags Print and Locked (§12.5.3):
    // invisible (a zero rectangle), or the stamp's box with its appearance.
    let mut field = Dictionary::new();
    field.set("FT", Object::name("Sig"));
    field.set("T", PdfString::text(name));
    field.set("V", value_id);
    field.set("Type", Object::name("Annot"));
    field.set("Subtype", Object::name("Widget"));
    match stamp {
        None => field.set(
            "Rect",
            vec![0i64.into(), 0i64.into(), 0i64.into(), 0i64.into()],
        ),
        Some(stamp) => {
            let [x, y, width, height] = stamp.rect;
            field.set(
                "Rect",
                vec![
                    Object::Real(x),
                    Object::Real(y),
                    Object::Real(x + width),
                    Object::Real(y + height),
                ],
            );
            let normal = appearance(&mut update, stamp)?;
            let mut ap = Dictionary::new();
            ap.set("N", normal);
            field.set("AP", ap);
        }
    }
    field.set("F", Object::Integer(132));
    field.set("P", page_id);
    update.set(field_id, field);

    // The page lists the widget among its annotations.
    match page.get("Annots").cloned() {
        Some(Object::Reference(annots_id)) => {
            let mut annots = array_of(pdf.object(annots_id)?, "/Annots")?;
            annots.push(field_id.into());
            update.set(annots_id, annots);
        }
        Some(Object::Array(mut annots)) => {
            annots.push(field_id.into());
            page.set("Annots", annots);
            update.set(page_id, page);
        }
        _ => {
            page.set("Annots", vec![Object::from(field_id)]);
            update.set(page_id, page);
        }
    }

    // The form lists the field; SigFlags 3: signatures exist, append only (§12.7.2).
    let mut catalog_changed = false;
    match acro_form(pdf, revision, &catalog)? {
        Some((form_id, mut form)) => {
            match form.get("Fields").cloned() {
                Some(Object::Reference(fields_id)) => {
                    let mut fields = array_of(pdf.object(fields_id)?, "/Fields")?;
                    fields.push(field_id.into());
                    update.set(fields_id, fields);
                }
                Some(Object::Array(mut fields)) => {
                    fields.push(field_id.into());
                    form.set("Fields", fields);
                }
                _ => form.set("Fields", vec![Object::from(field_id)]),
            }
            form.set("SigFlags", Object::Integer(3));
            match form_id {
                Some(form_id) => update.set(form_id, form),
                None => {
                    catalog.set("AcroForm", form);
                    catalog_changed = true;
                }
            }
        }
        None => {
            let mut form = Dictionary::new();
            form.set("Fields", vec![Object::from(field_id)]);
            form.set("SigFlags", Object::Integer(3));
            let form_id = update.add(form);
            catalog.set("AcroForm", form_id);
            catalog_changed = true;
        }
    }
    if !catalog.contains("Extensions") {
        // ETSI EN 319 142-1 §5.4.2 / ISO 32000-2: the ETSI extension the ETSI SubFilters and
        // the DSS belong to, declared for PDF 1.7 readers.
        catalog.set("Extensions", super::esic_extension());
        catalog_changed = true;
    }
    if certification.is_some() {
        let mut perms = Dictionary::new();
        perms.set("DocMDP", value_id);
        catalog.set("Perms", perms);
        catalog_changed = true;
    }
    if catalog_changed {
        update.set(catalog_id, catalog);
    }

    let base = pdf.len();
    let written = update.write()?;
    let mut bytes = written.bytes;
    let (byte_range_at, contents_at, contents_end) = locate_placeholders(
        &bytes,
        written.offsets.get(&value_id).copied(),
        contents_size,
    )?;
    let start = base + contents_at as u64;
    let end = base + contents_end as u64;
    let total = base + bytes.len() as u64;
    let byte_range = format!("[0 {start} {end} {}]", total - end);
    let slot = &mut bytes[byte_range_at..byte_range_at + BYTE_RANGE_PLACEHOLDER.len()];
    slot.fill(b' ');
    slot[..byte_range.len() - 1].copy_from_slice(&byte_range.as_bytes()[..byte_range.len() - 1]);
    slot[BYTE_RANGE_PLACEHOLDER.len() - 1] = b']';

    let mut hasher = Hasher::new(algorithm.message_digest())
        .map_err(|e| SignerError::Usage(format!("hashing: {e}")))?;
    {
        let mut sink = HashingWriter {
            hasher: &mut hasher,
            copy: copy_to,
        };
        pdf.copy_range(0, base, &mut sink)?;
    }
    let update_hash = |hasher: &mut Hasher, data: &[u8]| {
        hasher
            .update(data)
            .map_err(|e| SignerError::Usage(format!("hashing: {e}")))
    };
    update_hash(&mut hasher, &bytes[..contents_at])?;
    update_hash(&mut hasher, &bytes[contents_end..])?;
    let digest = hasher
        .finish()
        .map_err(|e| SignerError::Usage(format!("hashing: {e}")))?;
    let contents = make_contents(&digest)?;
    if contents.len() > contents_size {
        return Err(SignerError::Usage(format!(
            "the signature takes {} bytes, more than the {contents_size} reserved for it in \
             /Contents: reserve more (contents size)",
            contents.len()
        )));
    }
    let hex = hex::encode_upper(&contents);
    bytes[contents_at + 1..contents_at + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    Ok(bytes)
}

/// Where, in the written update, the `/ByteRange` placeholder starts and the `/Contents` hex
/// string starts (its `<`) and ends (after its `>`), searched within the signature dictionary
/// written at `value_offset`.
fn locate_placeholders(
    bytes: &[u8],
    value_offset: Option<usize>,
    contents_size: usize,
) -> Result<(usize, usize, usize), SignerError> {
    let not_found = || SignerError::Usage("the signature placeholders were not written".into());
    let from = value_offset.ok_or_else(not_found)?;
    let find = |needle: &[u8]| {
        bytes[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| from + p)
    };
    let byte_range_at = find(&[b"/ByteRange ", BYTE_RANGE_PLACEHOLDER].concat())
        .ok_or_else(not_found)?
        + b"/ByteRange ".len();
    let contents_at = find(b"/Contents <").ok_or_else(not_found)? + b"/Contents ".len();
    let contents_end = contents_at + 2 * contents_size + 2;
    if bytes.get(contents_end - 1) != Some(&b'>') {
        return Err(not_found());
    }
    Ok((byte_range_at, contents_at, contents_end))
}

fn array_of(object: Object, what: &str) -> Result<Vec<Object>, SignerError> {
    match object {
        Object::Array(items) => Ok(items),
        other => Err(SignerError::Pdf(imza_pdf::PdfError::Structure(format!(
            "{what} is a {}, not an array",
            other.kind()
        )))),
    }
}

/// Hashes what passes through, and copies it on when asked.
struct HashingWriter<'h, 'c> {
    hasher: &'h mut Hasher,
    copy: Option<&'c mut dyn Write>,
}

impl Write for HashingWriter<'_, '_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Some(copy) = &mut self.copy {
            copy.write_all(data)?;
        }
        self.hasher.update(data).map_err(std::io::Error::other)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.copy {
            Some(copy) => copy.flush(),
            None => Ok(()),
        }
    }
}
