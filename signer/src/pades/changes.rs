//! What a revision changed (the defence against incremental saving and shadow attacks,
//! pdf-insecurity.org): every object a revision defines is compared with what it was before
//! and must be explained by a rule — a DSS, a document time-stamp, a new signature, form
//! filling, an annotation — or it is "other". Nothing is explained by default: an object the
//! rules do not account for (new page content, a replaced font, an overlay, a freed object)
//! makes the revision `other`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek};

use imza_pdf::{Dictionary, Object, ObjectId, PdfError, PdfFile, XrefEntry};

/// Most objects followed when explaining what a new object brings along.
const MAX_WALK: usize = 20_000;
/// Most bytes of XMP metadata read to recognise it.
const MAX_METADATA: usize = 4 << 20;

/// How much a revision changed, in increasing order (pyHanko's and ISO 32000's levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Modification {
    None,
    /// A DSS, a document time-stamp, the ESIC extension, document metadata.
    LtaUpdates,
    /// Form field values and new signatures (ISO 32000-1 Table 254, P2).
    FormFilling,
    /// Annotations added or changed (P3).
    Annotations,
    /// Anything else.
    Other,
}

impl Modification {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Modification::None => "none",
            Modification::LtaUpdates => "lta_updates",
            Modification::FormFilling => "form_filling",
            Modification::Annotations => "annotations",
            Modification::Other => "other",
        }
    }
}

/// What one revision changed.
pub(crate) struct RevisionAnalysis {
    pub level: Modification,
    pub changes: Vec<String>,
}

struct Analyzer<'a, R> {
    pdf: &'a mut PdfFile<R>,
    revision: usize,
    /// The objects this revision defines, with their entries.
    changed: BTreeMap<u32, XrefEntry>,
    explained: BTreeSet<u32>,
    level: Modification,
    changes: Vec<String>,
}

/// Analyses revision `revision` (≥ 1) against the one before.
pub(crate) fn analyze<R: Read + Seek>(
    pdf: &mut PdfFile<R>,
    revision: usize,
) -> Result<RevisionAnalysis, PdfError> {
    let changed = pdf.changed_in(revision);
    let mut analyzer = Analyzer {
        pdf,
        revision,
        changed,
        explained: BTreeSet::new(),
        level: Modification::None,
        changes: Vec::new(),
    };
    analyzer.run()?;
    Ok(RevisionAnalysis {
        level: analyzer.level,
        changes: analyzer.changes,
    })
}

impl<R: Read + Seek> Analyzer<'_, R> {
    fn note(&mut self, level: Modification, change: impl Into<String>) {
        self.level = self.level.max(level);
        let change = change.into();
        if self.changes.len() < 50 && !self.changes.contains(&change) {
            self.changes.push(change);
        }
    }

    fn id_now(&self, number: u32) -> ObjectId {
        match self.changed.get(&number) {
            Some(XrefEntry::InUse { generation, .. }) => ObjectId::new(number, *generation),
            _ => ObjectId::new(number, 0),
        }
    }

    fn now(&mut self, id: ObjectId) -> Result<Object, PdfError> {
        self.pdf.object_in(self.revision, id)
    }

    fn before(&mut self, number: u32) -> Result<Object, PdfError> {
        match self.pdf.entry_in(self.revision - 1, number) {
            Some(XrefEntry::InUse { generation, .. }) => self
                .pdf
                .object_in(self.revision - 1, ObjectId::new(number, generation)),
            Some(XrefEntry::Compressed { .. }) => self
                .pdf
                .object_in(self.revision - 1, ObjectId::new(number, 0)),
            _ => Ok(Object::Null),
        }
    }

    fn is_new(&self, number: u32) -> bool {
        matches!(
            self.pdf.entry_in(self.revision - 1, number),
            None | Some(XrefEntry::Free)
        ) && self.changed.contains_key(&number)
    }

    fn is_changed(&self, number: u32) -> bool {
        self.changed.contains_key(&number)
    }

    fn run(&mut self) -> Result<(), PdfError> {
        // Cross-reference and object streams are containers, not content.
        let numbers: Vec<u32> = self.changed.keys().copied().collect();
        for number in &numbers {
            if let Some(XrefEntry::Free) = self.changed.get(number) {
                if !matches!(self.before(*number)?, Object::Null) {
                    self.note(Modification::Other, format!("object {number} was deleted"));
                }
                self.explained.insert(*number);
                continue;
            }
            let id = self.id_now(*number);
            if let Object::Stream(stream) = self.now(id)? {
                if self.is_new(*number)
                    && (stream.dictionary.is_type("XRef") || stream.dictionary.is_type("ObjStm"))
                {
                    self.explained.insert(*number);
                }
            }
        }
        self.catalog()?;
        self.dss_in_place()?;
        self.info()?;
        self.metadata()?;
        self.pages()?;
        self.fields()?;
        // Whatever no rule explained, with what the object was to the pages before.
        let mut roles: Option<BTreeMap<u32, String>> = None;
        for number in numbers {
            if self.explained.contains(&number) {
                continue;
            }
            let id = self.id_now(number);
            let what = describe(&self.now(id)?);
            let change = if self.is_new(number) {
                format!("object {number} ({what}) was added")
            } else {
                if roles.is_none() {
                    roles = Some(self.page_roles()?);
                }
                match roles.as_ref().and_then(|r| r.get(&number)) {
                    Some(role) => format!("object {number} ({what}, {role}) was changed"),
                    None => format!("object {number} ({what}) was changed"),
                }
            };
            self.note(Modification::Other, change);
        }
        Ok(())
    }

    /// What the objects were to the pages of the revision before (page content, a font, an
    /// XObject of page object N), for saying what a change touched; the page tree walked
    /// within [`MAX_WALK`] nodes.
    fn page_roles(&mut self) -> Result<BTreeMap<u32, String>, PdfError> {
        let before = self.revision - 1;
        let mut roles = BTreeMap::new();
        let (_, catalog) = self.pdf.catalog_in(before)?;
        let mut stack: Vec<Object> = catalog.get("Pages").cloned().into_iter().collect();
        let mut walked = 0usize;
        while let Some(node) = stack.pop() {
            walked += 1;
            if walked > MAX_WALK {
                break;
            }
            let Some(node_id) = node.as_reference() else {
                continue;
            };
            let Object::Dictionary(node) = self.pdf.object_in(before, node_id)? else {
                continue;
            };
            if !node.is_type("Page") {
                roles
                    .entry(node_id.number)
                    .or_insert_with(|| "a node of the page tree".to_string());
                if let Some(kids) = node.get("Kids") {
                    if let Object::Array(kids) = self.pdf.resolve_in(before, kids)? {
                        stack.extend(kids.into_iter().take(MAX_WALK));
                    }
                }
                continue;
            }
            let page = node_id.number;
            let mut name = |object: &Object, role: String| {
                if let Some(id) = object.as_reference() {
                    roles.entry(id.number).or_insert(role);
                }
            };
            match node.get("Contents") {
                Some(Object::Array(parts)) => {
                    for part in parts.iter().take(MAX_WALK) {
                        name(part, format!("page content of page object {page}"));
                    }
                }
                Some(contents) => name(contents, format!("page content of page object {page}")),
                None => {}
            }
            let Some(resources) = node.get("Resources").cloned() else {
                continue;
            };
            name(&resources, format!("the resources of page object {page}"));
            let resources = self.pdf.resolve_in(before, &resources)?;
            for (kind, role) in [("Font", "font"), ("XObject", "XObject")] {
                let Some(entries) = resources.as_dictionary().and_then(|r| r.get(kind)) else {
                    continue;
                };
                let entries = self.pdf.resolve_in(before, entries)?;
                for (key, value) in entries.as_dictionary().into_iter().flat_map(|d| d.iter()) {
                    let key = String::from_utf8_lossy(key.as_bytes());
                    if let Some(id) = value.as_reference() {
                        roles
                            .entry(id.number)
                            .or_insert_with(|| format!("{role} /{key} of page object {page}"));
                    }
                }
            }
        }
        Ok(roles)
    }

    /// The catalog: a DSS, the ESIC extension, the form; nothing else may change.
    fn catalog(&mut self) -> Result<(), PdfError> {
        let (id, catalog) = self.pdf.catalog_in(self.revision)?;
        let (before_id, before) = self.pdf.catalog_in(self.revision - 1)?;
        if id != before_id {
            self.note(Modification::Other, "the document catalog was replaced");
            return Ok(());
        }
        if !self.is_changed(id.number) {
            return Ok(());
        }
        self.explained.insert(id.number);
        for key in changed_keys(&before, &catalog) {
            match key.as_str() {
                "DSS" => match catalog.get("DSS").cloned() {
                    Some(Object::Reference(dss)) if self.is_new(dss.number) => {
                        self.explained.insert(dss.number);
                        self.dss(dss)?;
                    }
                    Some(Object::Reference(_)) => {}
                    Some(dss @ Object::Dictionary(_)) => {
                        self.note(Modification::LtaUpdates, "a document security store (DSS)");
                        self.explain_new(&dss)?;
                    }
                    _ => self.note(Modification::Other, "the DSS was removed"),
                },
                "Extensions" => self.note(Modification::LtaUpdates, "the ETSI extension declared"),
                // §7.7.2: the version the file claims and whether it is tagged; neither is
                // content (pyHanko's CatalogModificationRule allows both too).
                "Version" | "MarkInfo" => self.note(
                    Modification::LtaUpdates,
                    format!("the catalog's /{key} was updated"),
                ),
                // The XMP stream, judged in metadata().
                "Metadata" => {}
                "AcroForm" => {
                    // A form that is new or held in the catalog itself.
                    if let Some(value) = catalog.get("AcroForm").cloned() {
                        match value {
                            Object::Reference(form) if self.is_new(form.number) => {
                                self.explained.insert(form.number);
                                let form = self.now(form)?;
                                self.form_fields(None, form.as_dictionary())?;
                            }
                            Object::Dictionary(form) => {
                                let old = before.get("AcroForm").cloned();
                                let old = match old {
                                    Some(old) => self.pdf.resolve_in(self.revision - 1, &old)?,
                                    None => Object::Null,
                                };
                                self.form_fields(old.as_dictionary(), Some(&form))?;
                            }
                            _ => self.note(Modification::Other, "the form was replaced"),
                        }
                    }
                }
                other => self.note(
                    Modification::Other,
                    format!("the catalog's /{other} was changed"),
                ),
            }
        }
        Ok(())
    }

    /// A new DSS dictionary: only its own keys, and what it references new.
    fn dss(&mut self, id: ObjectId) -> Result<(), PdfError> {
        let dss = self.now(id)?;
        let Some(dictionary) = dss.as_dictionary() else {
            self.note(Modification::Other, "the DSS is not a dictionary");
            return Ok(());
        };
        let foreign: Vec<String> = dictionary
            .iter()
            .map(|(key, _)| String::from_utf8_lossy(key.as_bytes()).into_owned())
            .filter(|key| !matches!(key.as_str(), "Type" | "Certs" | "OCSPs" | "CRLs" | "VRI"))
            .collect();
        if !foreign.is_empty() {
            self.note(
                Modification::Other,
                format!("the DSS carries /{}", foreign.join(", /")),
            );
        }
        self.note(Modification::LtaUpdates, "a document security store (DSS)");
        self.explain_new(&dss)
    }

    /// The DSS rewritten in place, its catalog entry unchanged (pyHanko's `ltvfix` and
    /// `ltaupdate` do so; EN 319 142-1 §5.4.2 lets a DSS grow): the DSS holds only DSS
    /// entries, and every old object it changes was part of the DSS before (its arrays, its
    /// VRI dictionary and entries) — an object that was something else does not become
    /// validation data by being pointed at.
    fn dss_in_place(&mut self) -> Result<(), PdfError> {
        let (_, catalog) = self.pdf.catalog_in(self.revision)?;
        let Some(id) = catalog.get("DSS").and_then(Object::as_reference) else {
            return Ok(());
        };
        let (_, before) = self.pdf.catalog_in(self.revision - 1)?;
        let was_dss = before
            .get("DSS")
            .and_then(Object::as_reference)
            .is_some_and(|old| old == id);
        if !was_dss || !self.is_changed(id.number) || self.explained.contains(&id.number) {
            return Ok(());
        }
        let Object::Dictionary(dss) = self.now(id)? else {
            return Ok(());
        };
        if let Some((key, _)) = dss.iter().find(|(key, _)| {
            !matches!(
                key.as_bytes(),
                b"Type" | b"VRI" | b"Certs" | b"CRLs" | b"OCSPs"
            )
        }) {
            let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
            self.note(
                Modification::Other,
                format!("the document security store was given /{key}"),
            );
            return Ok(());
        }
        let old_parts = self.dss_parts(self.revision - 1, id)?;
        let new_parts = self.dss_parts(self.revision, id)?;
        self.explained.insert(id.number);
        self.note(
            Modification::LtaUpdates,
            "the document security store (DSS) was updated",
        );
        for number in new_parts {
            if self.is_changed(number)
                && !self.is_new(number)
                && old_parts.contains(&number)
                && self.explained.insert(number)
            {
                let part = self.now(self.id_now(number))?;
                self.explain_new(&part)?;
            }
        }
        self.explain_new(&Object::Dictionary(dss))
    }

    /// The object numbers of a DSS's containers as of `revision`: the DSS, its `/Certs`,
    /// `/CRLs`, `/OCSPs` arrays, its `/VRI` dictionary, each VRI entry and the arrays in it.
    fn dss_parts(&mut self, revision: usize, id: ObjectId) -> Result<BTreeSet<u32>, PdfError> {
        let mut parts = BTreeSet::from([id.number]);
        let Object::Dictionary(dss) = self.pdf.object_in(revision, id)? else {
            return Ok(parts);
        };
        let mut containers: Vec<(Object, u8)> = dss.iter().map(|(_, v)| (v.clone(), 0)).collect();
        let mut walked = 0usize;
        while let Some((object, depth)) = containers.pop() {
            walked += 1;
            if walked > MAX_WALK {
                return Err(PdfError::Limit {
                    what: format!("a DSS of more than {MAX_WALK} entries"),
                });
            }
            let object = match object {
                Object::Reference(reference) => {
                    parts.insert(reference.number);
                    self.pdf.object_in(revision, reference)?
                }
                direct => direct,
            };
            // The VRI dictionary (depth 0) and its entries (depth 1) hold containers; the
            // arrays hold the DER streams themselves, which are not containers.
            if let (Object::Dictionary(d), 0 | 1) = (&object, depth) {
                containers.extend(d.iter().map(|(_, v)| (v.clone(), depth + 1)));
            }
        }
        Ok(parts)
    }

    /// The document information dictionary: metadata, not content.
    fn info(&mut self) -> Result<(), PdfError> {
        let info = self
            .pdf
            .trailer_in(self.revision)
            .and_then(|t| t.get("Info"))
            .and_then(Object::as_reference);
        if let Some(info) = info {
            if self.is_changed(info.number) && !self.explained.contains(&info.number) {
                if let Object::Dictionary(_) = self.now(info)? {
                    self.explained.insert(info.number);
                    self.note(
                        Modification::LtaUpdates,
                        "the document information (metadata) was updated",
                    );
                }
            }
        }
        Ok(())
    }

    /// The catalog's XMP metadata stream (§14.3.2), new or rewritten in place: metadata, not
    /// content, when it is an XMP packet (with no DTD, whose entities could pull in other
    /// data) and its object was the metadata stream before or is new — an object that was
    /// something else (a font, page content) does not become "metadata" by being pointed at.
    fn metadata(&mut self) -> Result<(), PdfError> {
        let (_, catalog) = self.pdf.catalog_in(self.revision)?;
        let Some(value) = catalog.get("Metadata") else {
            return Ok(());
        };
        let Some(id) = value.as_reference() else {
            self.note(
                Modification::Other,
                "the catalog's /Metadata is not a stream",
            );
            return Ok(());
        };
        let (_, before) = self.pdf.catalog_in(self.revision - 1)?;
        let was_metadata = before
            .get("Metadata")
            .and_then(Object::as_reference)
            .is_some_and(|old| old.number == id.number);
        if !self.is_changed(id.number) || self.explained.contains(&id.number) {
            return Ok(());
        }
        if !(was_metadata || self.is_new(id.number)) {
            // Left unexplained: reported with what it is.
            return Ok(());
        }
        let Object::Stream(stream) = self.now(id)? else {
            return Ok(());
        };
        let xmp = stream.dictionary.is_type("Metadata")
            && stream.dictionary.name("Subtype") == Some(b"XML")
            && self
                .pdf
                .decoded_stream(&stream, MAX_METADATA)
                .is_ok_and(|xml| {
                    let has = |needle: &[u8]| xml.windows(needle.len()).any(|w| w == needle);
                    has(b"xmpmeta") && !has(b"<!DOCTYPE") && !has(b"<!ENTITY")
                });
        if xmp {
            self.explained.insert(id.number);
            self.note(
                Modification::LtaUpdates,
                "the XMP metadata of the document was updated",
            );
        }
        Ok(())
    }

    /// Page objects and annotation arrays: only annotations added.
    fn pages(&mut self) -> Result<(), PdfError> {
        let numbers: Vec<u32> = self.changed.keys().copied().collect();
        for number in numbers {
            if self.explained.contains(&number) || self.is_new(number) {
                continue;
            }
            let id = self.id_now(number);
            let Object::Dictionary(page) = self.now(id)? else {
                continue;
            };
            if !page.is_type("Page") {
                continue;
            }
            let Object::Dictionary(before) = self.before(number)? else {
                continue;
            };
            self.explained.insert(number);
            for key in changed_keys(&before, &page) {
                if key != "Annots" {
                    self.note(
                        Modification::Other,
                        format!("page object {number}: /{key} was changed"),
                    );
                    continue;
                }
                let old = match before.get("Annots") {
                    Some(o) => self.pdf.resolve_in(self.revision - 1, o)?,
                    None => Object::Null,
                };
                let new = match page.get("Annots") {
                    Some(Object::Reference(annots)) => {
                        self.explained.insert(annots.number);
                        self.now(*annots)?
                    }
                    Some(o) => o.clone(),
                    None => Object::Null,
                };
                self.added_annotations(number, old.as_array(), new.as_array())?;
            }
            // An /Annots array object changed without the page changing.
        }
        // Annotation arrays held as their own objects.
        let numbers: Vec<u32> = self.changed.keys().copied().collect();
        for number in numbers {
            if self.explained.contains(&number) || self.is_new(number) {
                continue;
            }
            let id = self.id_now(number);
            let (Object::Array(new), Object::Array(old)) = (self.now(id)?, self.before(number)?)
            else {
                continue;
            };
            if self.is_annotation_list(&old)? || self.is_annotation_list(&new)? {
                self.explained.insert(number);
                self.added_annotations(number, Some(&old), Some(&new))?;
            }
        }
        Ok(())
    }

    fn is_annotation_list(&mut self, items: &[Object]) -> Result<bool, PdfError> {
        for item in items.iter().take(4) {
            if let Some(id) = item.as_reference() {
                if let Object::Dictionary(d) = self.now(id)? {
                    if d.contains("Subtype") && d.contains("Rect") {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// `new` must keep every entry of `old`; what it adds is a signature widget (explained
    /// with its field) or an annotation.
    fn added_annotations(
        &mut self,
        page: u32,
        old: Option<&[Object]>,
        new: Option<&[Object]>,
    ) -> Result<(), PdfError> {
        let old = old.unwrap_or_default();
        let new = new.unwrap_or_default();
        if old.iter().any(|o| !new.contains(o)) {
            self.note(
                Modification::Other,
                format!("annotations of page object {page} were removed"),
            );
        }
        for added in new.iter().filter(|n| !old.contains(n)) {
            let Some(id) = added.as_reference() else {
                self.note(Modification::Annotations, "a direct annotation was added");
                continue;
            };
            let Object::Dictionary(annotation) = self.now(id)? else {
                continue;
            };
            let widget_of_signature = annotation.name("Subtype") == Some(b"Widget")
                && (annotation.name("FT") == Some(b"Sig")
                    || self.parent_is_signature(&annotation)?);
            if widget_of_signature {
                // Explained with its field (fields()); an orphan widget stays unexplained.
                continue;
            }
            if self.is_new(id.number) {
                self.explained.insert(id.number);
                self.explain_appearance(&annotation)?;
            }
            let subtype = annotation
                .name("Subtype")
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .unwrap_or_default();
            self.note(
                Modification::Annotations,
                format!("a {subtype} annotation was added"),
            );
        }
        Ok(())
    }

    fn parent_is_signature(&mut self, annotation: &Dictionary) -> Result<bool, PdfError> {
        match annotation.get("Parent").and_then(Object::as_reference) {
            Some(parent) => Ok(
                matches!(self.now(parent)?, Object::Dictionary(d) if d.name("FT") == Some(b"Sig")),
            ),
            None => Ok(false),
        }
    }

    /// The form (indirect, changed) and field objects.
    fn fields(&mut self) -> Result<(), PdfError> {
        let (_, catalog) = self.pdf.catalog_in(self.revision)?;
        if let Some(Object::Reference(form_id)) = catalog.get("AcroForm") {
            let form_id = *form_id;
            if self.is_changed(form_id.number) && !self.explained.contains(&form_id.number) {
                self.explained.insert(form_id.number);
                let new = self.now(form_id)?;
                let old = self.before(form_id.number)?;
                self.form_fields(old.as_dictionary(), new.as_dictionary())?;
            }
        }
        // Existing fields whose value changed: a signature into an empty signature field, or
        // form filling.
        let numbers: Vec<u32> = self.changed.keys().copied().collect();
        for number in numbers {
            if self.explained.contains(&number) || self.is_new(number) {
                continue;
            }
            let id = self.id_now(number);
            let Object::Dictionary(field) = self.now(id)? else {
                continue;
            };
            let Object::Dictionary(before) = self.before(number)? else {
                continue;
            };
            if !(field.contains("FT") || field.contains("T") || field.contains("Parent")) {
                continue;
            }
            self.explained.insert(number);
            self.changed_field(number, &before, &field)?;
        }
        Ok(())
    }

    /// The form dictionary: `/Fields` may only grow (with new fields), `/SigFlags`, `/DA` and
    /// `/DR` may change.
    fn form_fields(
        &mut self,
        old: Option<&Dictionary>,
        new: Option<&Dictionary>,
    ) -> Result<(), PdfError> {
        let empty = Dictionary::new();
        let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
        for key in changed_keys(old, new) {
            match key.as_str() {
                "Fields" => {
                    let old_fields = match old.get("Fields") {
                        Some(o) => self.pdf.resolve_in(self.revision - 1, o)?,
                        None => Object::Null,
                    };
                    let new_fields = match new.get("Fields") {
                        Some(Object::Reference(id)) => {
                            self.explained.insert(id.number);
                            self.now(*id)?
                        }
                        Some(o) => o.clone(),
                        None => Object::Null,
                    };
                    self.added_fields(old_fields.as_array(), new_fields.as_array())?;
                }
                "SigFlags" | "DA" | "DR" | "NeedAppearances" => {
                    if let Some(dr) = new.get("DR").cloned() {
                        self.explain_new(&dr)?;
                    }
                }
                other => self.note(
                    Modification::Other,
                    format!("the form's /{other} was changed"),
                ),
            }
        }
        // /Fields as its own object, changed while the form dictionary stayed.
        if let Some(Object::Reference(id)) = new.get("Fields") {
            let id = *id;
            if self.is_changed(id.number) && !self.explained.contains(&id.number) {
                self.explained.insert(id.number);
                let old_fields = self.before(id.number)?;
                let new_fields = self.now(id)?;
                self.added_fields(old_fields.as_array(), new_fields.as_array())?;
            }
        }
        Ok(())
    }

    fn added_fields(
        &mut self,
        old: Option<&[Object]>,
        new: Option<&[Object]>,
    ) -> Result<(), PdfError> {
        let old = old.unwrap_or_default();
        let new = new.unwrap_or_default();
        if old.iter().any(|o| !new.contains(o)) {
            self.note(Modification::Other, "form fields were removed");
        }
        for added in new.iter().filter(|n| !old.contains(n)) {
            let Some(id) = added.as_reference() else {
                self.note(Modification::Other, "a direct form field was added");
                continue;
            };
            if !self.is_new(id.number) {
                // An existing object moved into the form: judged as a change if it changed.
                continue;
            }
            let Object::Dictionary(field) = self.now(id)? else {
                self.note(
                    Modification::Other,
                    format!("form field {} is not a dictionary", id.number),
                );
                continue;
            };
            self.explained.insert(id.number);
            self.new_field(&field)?;
        }
        Ok(())
    }

    /// A new field: a signature field (with its value, widget and appearance) is a signature
    /// or a document time-stamp; any other new field is not form filling.
    fn new_field(&mut self, field: &Dictionary) -> Result<(), PdfError> {
        if field.name("FT") != Some(b"Sig") {
            self.note(
                Modification::Other,
                "a form field other than a signature was added",
            );
            return Ok(());
        }
        self.signature_value(field)?;
        self.explain_appearance(field)?;
        if let Some(Object::Array(kids)) = field.get("Kids").cloned() {
            for kid in kids.iter().take(100) {
                if let Some(id) = kid.as_reference().filter(|id| self.is_new(id.number)) {
                    self.explained.insert(id.number);
                    if let Object::Dictionary(widget) = self.now(id)? {
                        self.explain_appearance(&widget)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A signature field's `/V`, new in this revision.
    fn signature_value(&mut self, field: &Dictionary) -> Result<(), PdfError> {
        match field.get("V") {
            Some(Object::Reference(value)) if self.is_new(value.number) => {
                self.explained.insert(value.number);
                let value = self.now(*value)?;
                let timestamp = value
                    .as_dictionary()
                    .is_some_and(|v| v.is_type("DocTimeStamp"));
                if timestamp {
                    self.note(Modification::LtaUpdates, "a document time-stamp");
                } else {
                    self.note(Modification::FormFilling, "a signature");
                }
            }
            None => self.note(Modification::FormFilling, "an empty signature field"),
            Some(_) => self.note(
                Modification::Other,
                "a signature field whose value is not a new signature",
            ),
        }
        Ok(())
    }

    /// An existing field changed: an empty signature field signed, or a value filled in.
    fn changed_field(
        &mut self,
        number: u32,
        before: &Dictionary,
        field: &Dictionary,
    ) -> Result<(), PdfError> {
        let is_signature = field.name("FT") == Some(b"Sig");
        for key in changed_keys(before, field) {
            match key.as_str() {
                "V" if is_signature && !before.contains("V") => self.signature_value(field)?,
                "V" | "AS" if !is_signature => self.note(
                    Modification::FormFilling,
                    format!("form field {number} filled in"),
                ),
                "AP" => {
                    self.explain_appearance(field)?;
                    self.note(
                        Modification::FormFilling,
                        format!("the appearance of field {number} was updated"),
                    );
                }
                other => self.note(
                    Modification::Other,
                    format!("form field {number}: /{other} was changed"),
                ),
            }
        }
        Ok(())
    }

    /// The new objects of a widget's appearance streams and their resources.
    fn explain_appearance(&mut self, widget: &Dictionary) -> Result<(), PdfError> {
        if let Some(ap) = widget.get("AP").cloned() {
            self.explain_new(&ap)?;
        }
        Ok(())
    }

    /// Marks the new objects reachable from `root` (through new objects only) as explained.
    fn explain_new(&mut self, root: &Object) -> Result<(), PdfError> {
        let mut stack = vec![root.clone()];
        let mut walked = 0usize;
        while let Some(object) = stack.pop() {
            walked += 1;
            if walked > MAX_WALK {
                return Err(PdfError::Limit {
                    what: format!("more than {MAX_WALK} objects in one revision's additions"),
                });
            }
            match object {
                Object::Reference(id)
                    if self.is_new(id.number) && self.explained.insert(id.number) =>
                {
                    stack.push(self.now(id)?);
                }
                Object::Array(items) => stack.extend(items),
                Object::Dictionary(d) => stack.extend(d.iter().map(|(_, v)| v.clone())),
                Object::Stream(s) => stack.extend(s.dictionary.iter().map(|(_, v)| v.clone())),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The keys whose values differ between `old` and `new` (added, removed or changed).
fn changed_keys(old: &Dictionary, new: &Dictionary) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (key, value) in new.iter() {
        if old.get(&String::from_utf8_lossy(key.as_bytes())) != Some(value) {
            keys.push(String::from_utf8_lossy(key.as_bytes()).into_owned());
        }
    }
    for (key, _) in old.iter() {
        let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
        if new.get(&key).is_none() && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// An object in a few words: its /Type and /Subtype, or its kind.
fn describe(object: &Object) -> String {
    match object.as_dictionary() {
        Some(d) => {
            let name = |key| d.name(key).map(|n| String::from_utf8_lossy(n).into_owned());
            match (name("Type"), name("Subtype")) {
                (Some(t), Some(s)) => format!("{t}/{s}"),
                (Some(t), None) => t,
                (None, Some(s)) => s,
                (None, None) => object.kind().to_string(),
            }
        }
        None => object.kind().to_string(),
    }
}
