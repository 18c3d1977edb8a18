//! The document security store (ETSI EN 319 142-1 §5.4.2, ISO 32000-2 §12.8.4.3): the
//! certificates, OCSP responses and CRLs that validate every signature and document
//! time-stamp of the document, gathered by validating their certificates now (as B-LT of a
//! CMS signature does), added in an incremental update with a `/VRI` entry per signature.

use std::io::{Read, Seek, SeekFrom, Write};

use imza_core::oids;
use imza_pdf::{Dictionary, IncrementalUpdate, Object, ObjectId, PdfFile, Stream};

use super::fields::{signature_fields, SignatureKind};
use super::{der_prefix, esic_extension};
use crate::attributes::signature_timestamps;
use crate::signed_data::{find_signer_certificate, CmsSignedData, AUGMENTING};
use crate::validation_data::{gather, Evidence, ValidationDataSources};
use crate::SignerError;

/// Most bytes of one DSS entry read back.
const MAX_DSS_ENTRY: usize = 1 << 20;

/// What a document's DSS holds.
#[derive(Debug, Default)]
pub(crate) struct DssContent {
    pub id: Option<ObjectId>,
    pub dictionary: Dictionary,
    pub certificates: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
    pub ocsp_responses: Vec<Vec<u8>>,
}

/// Reads the DSS of `revision`'s catalog (empty when there is none).
pub(crate) fn read_dss<R: Read + Seek>(
    pdf: &mut PdfFile<R>,
    revision: usize,
) -> Result<DssContent, SignerError> {
    let (_, catalog) = pdf.catalog_in(revision)?;
    let Some(value) = catalog.get("DSS") else {
        return Ok(DssContent::default());
    };
    let id = value.as_reference();
    let Object::Dictionary(dictionary) = pdf.resolve_in(revision, value)? else {
        return Ok(DssContent::default());
    };
    let mut content = DssContent {
        id,
        ..DssContent::default()
    };
    for key in ["Certs", "CRLs", "OCSPs"] {
        let Some(list) = dictionary.get(key) else {
            continue;
        };
        let Object::Array(items) = pdf.resolve_in(revision, list)? else {
            continue;
        };
        for item in items.iter().take(10_000) {
            let Object::Stream(stream) = pdf.resolve_in(revision, item)? else {
                continue;
            };
            let Ok(bytes) = pdf.decoded_stream(&stream, MAX_DSS_ENTRY) else {
                continue;
            };
            match key {
                "Certs" => content.certificates.push(bytes),
                "CRLs" => content.crls.push(bytes),
                _ => content.ocsp_responses.push(bytes),
            }
        }
    }
    content.dictionary = dictionary;
    Ok(content)
}

/// Whether the CMS in a signature's `/Contents` carries a signature time-stamp.
pub(crate) fn has_signature_timestamp(contents: &[u8]) -> bool {
    CmsSignedData::read(der_prefix(contents), &AUGMENTING)
        .ok()
        .and_then(|cms| cms.only_signer().ok().cloned())
        .is_some_and(|signer| signer.has_unsigned(oids::ATTR_TIME_STAMP_TOKEN))
}

/// Appends a DSS update to `file` covering every signature and document time-stamp in it
/// that has no `/VRI` entry yet; nothing when every one has. `validated` holds the
/// certificates whose validation data an earlier DSS of the same run already added (a document
/// time-stamp by the TSA that made the signature time-stamp needs nothing more); those
/// validated here are added to it.
pub(crate) fn add_dss<F: Read + Write + Seek>(
    file: &mut F,
    sources: &ValidationDataSources,
    validated: &mut Vec<Vec<u8>>,
) -> Result<(), SignerError> {
    let update = {
        let mut pdf = PdfFile::open(&mut *file)?;
        let revision = pdf.last_revision();
        let fields = signature_fields(&mut pdf, revision)?;
        let existing = read_dss(&mut pdf, revision)?;
        let mut evidence: Vec<Evidence> = existing
            .crls
            .iter()
            .cloned()
            .map(Evidence::Crl)
            .chain(existing.ocsp_responses.iter().cloned().map(Evidence::Ocsp))
            .collect();

        // Per signature: whose certificates need validation data, and the certificates its
        // CMS carries.
        let mut per_signature = Vec::new();
        let mut pool = existing.certificates.clone();
        let covered = match existing.dictionary.get("VRI") {
            Some(value) => match pdf.resolve_in(revision, value)? {
                Object::Dictionary(vri) => vri,
                _ => Dictionary::new(),
            },
            None => Dictionary::new(),
        };
        for field in &fields {
            let Some(contents) = field.contents() else {
                continue;
            };
            // A signature the DSS already has a VRI entry for is covered.
            if covered.contains(&hex::encode_upper(openssl::sha::sha1(contents))) {
                continue;
            }
            let der = der_prefix(contents);
            let cms = CmsSignedData::read(der, &AUGMENTING)?;
            let mut tokens = Vec::new();
            let mut targets = Vec::new();
            pool.extend(cms.x509_certificates().into_iter().map(<[u8]>::to_vec));
            match field.kind {
                SignatureKind::Signature => {
                    let signer = cms.only_signer()?;
                    let (cert, _) = find_signer_certificate(signer, pool.iter().map(Vec::as_slice))
                        .ok_or_else(|| {
                            SignerError::Usage(format!(
                                "the certificate of signature {:?} is not in it",
                                field.name
                            ))
                        })?;
                    targets.push((format!("the signer of {:?}", field.name), cert.to_vec()));
                    for token in signature_timestamps(signer)? {
                        tokens.push(token.der().to_vec());
                    }
                }
                SignatureKind::DocTimeStamp => tokens.push(der.to_vec()),
            }
            for token in tokens {
                let token = CmsSignedData::read(&token, &AUGMENTING)?;
                let token_certs: Vec<Vec<u8>> = token
                    .x509_certificates()
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect();
                pool.extend(token_certs.iter().cloned());
                let signer = token.only_signer()?;
                if let Some((cert, _)) =
                    find_signer_certificate(signer, pool.iter().map(Vec::as_slice))
                {
                    targets.push((format!("the TSA of {:?}", field.name), cert.to_vec()));
                }
            }
            targets.retain(|(_, der)| !validated.contains(der));
            if !targets.is_empty() {
                per_signature.push((openssl::sha::sha1(contents), targets));
            }
        }

        if per_signature.is_empty() {
            return Ok(());
        }
        let mut update = IncrementalUpdate::new(&mut pdf)?;
        let mut certs = Stored::new(existing.dictionary.get("Certs"), existing.certificates);
        let mut crls = Stored::new(existing.dictionary.get("CRLs"), existing.crls);
        let mut ocsps = Stored::new(existing.dictionary.get("OCSPs"), existing.ocsp_responses);
        let mut vri = match existing.dictionary.get("VRI") {
            Some(value) => match pdf.resolve_in(revision, value)? {
                Object::Dictionary(vri) => vri,
                _ => Dictionary::new(),
            },
            None => Dictionary::new(),
        };
        for (key, targets) in per_signature {
            let gathered = gather(&targets, &pool, evidence.clone(), sources)?;
            validated.extend(targets.into_iter().map(|(_, der)| der));
            let mut entry = Dictionary::new();
            let cert_refs: Vec<Object> = gathered
                .certificates
                .iter()
                .map(|der| certs.reference(der, &mut update).into())
                .collect();
            let mut cert_refs = cert_refs;
            let (mut crl_refs, mut ocsp_refs) = (Vec::new(), Vec::new());
            for item in &gathered.revocation {
                // A delegated OCSP responder's certificate goes in the DSS too: validators
                // that want proof of existence for it find it there.
                if let Evidence::Ocsp(der) = item {
                    for responder in imza_core::ocsp::response_certificates(der) {
                        let reference: Object = certs.reference(&responder, &mut update).into();
                        if !cert_refs.contains(&reference) {
                            cert_refs.push(reference);
                        }
                    }
                }
                match item {
                    Evidence::Crl(der) => crl_refs.push(crls.reference(der, &mut update).into()),
                    Evidence::Ocsp(der) => ocsp_refs.push(ocsps.reference(der, &mut update).into()),
                }
                if !evidence.contains(item) {
                    evidence.push(item.clone());
                }
            }
            entry.set("Cert", cert_refs);
            if !crl_refs.is_empty() {
                entry.set("CRL", crl_refs);
            }
            if !ocsp_refs.is_empty() {
                entry.set("OCSP", ocsp_refs);
            }
            vri.set(&hex::encode_upper(key), entry);
        }
        let mut dss = Dictionary::new();
        dss.set("Type", Object::name("DSS"));
        dss.set("Certs", certs.refs);
        if !crls.refs.is_empty() {
            dss.set("CRLs", crls.refs);
        }
        if !ocsps.refs.is_empty() {
            dss.set("OCSPs", ocsps.refs);
        }
        dss.set("VRI", vri);
        let (catalog_id, mut catalog) = pdf.catalog()?;
        match existing.id {
            Some(id) => update.set(id, dss),
            None => {
                let id = update.add(dss);
                catalog.set("DSS", id);
                if !catalog.contains("Extensions") {
                    catalog.set("Extensions", esic_extension());
                }
                update.set(catalog_id, catalog);
            }
        }
        update.write()?.bytes
    };
    file.seek(SeekFrom::End(0))?;
    file.write_all(&update)?;
    Ok(())
}

/// One DSS array: the references already there, and new streams added once each.
struct Stored {
    refs: Vec<Object>,
    known: Vec<(Vec<u8>, Object)>,
}

impl Stored {
    fn new(existing: Option<&Object>, bytes: Vec<Vec<u8>>) -> Stored {
        let refs: Vec<Object> = existing
            .and_then(Object::as_array)
            .map(<[Object]>::to_vec)
            .unwrap_or_default();
        // The stored bytes were read in array order, skipping unreadable entries: pair them
        // only when every entry was read.
        let known = if refs.len() == bytes.len() {
            bytes.into_iter().zip(refs.iter().cloned()).collect()
        } else {
            Vec::new()
        };
        Stored { refs, known }
    }

    fn reference(&mut self, der: &[u8], update: &mut IncrementalUpdate) -> ObjectId {
        if let Some(id) = self
            .known
            .iter()
            .find(|(bytes, _)| bytes == der)
            .and_then(|(_, r)| r.as_reference())
        {
            return id;
        }
        let id = update.add(Object::Stream(Stream::new(Dictionary::new(), der.to_vec())));
        self.refs.push(id.into());
        self.known.push((der.to_vec(), id.into()));
        id
    }
}
