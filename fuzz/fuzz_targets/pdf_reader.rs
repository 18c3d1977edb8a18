//! A PDF as imza-pdf's reader opens one (the PAdES verifier and signer read every PDF through
//! it): the revisions and cross-reference sections, the trailer and catalog of each revision,
//! every object each revision changed, resolved, and its stream decoded within a bound.
#![no_main]

use std::io::Cursor;

use imza_pdf::{Object, ObjectId, PdfFile, XrefEntry};

/// Objects read per input: enough to walk a small document, bounded so one input stays fast.
const MAX_OBJECTS: usize = 256;

/// The most decoded stream bytes taken from one stream.
const STREAM_LIMIT: usize = 1 << 20;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imza_pdf::is_pdf(data);
    let Ok(mut pdf) = PdfFile::open(Cursor::new(data)) else {
        return;
    };
    let _ = pdf.sections();
    let _ = pdf.newest_section();
    let mut read = 0;
    for revision in 0..=pdf.last_revision() {
        let _ = pdf.trailer_in(revision);
        let _ = pdf.catalog_in(revision);
        for (number, _) in pdf.changed_in(revision) {
            if read == MAX_OBJECTS {
                return;
            }
            read += 1;
            let generation = match pdf.entry_in(revision, number) {
                Some(XrefEntry::InUse { generation, .. }) => generation,
                Some(XrefEntry::Compressed { .. }) => 0,
                Some(XrefEntry::Free) | None => continue,
            };
            let id = ObjectId::new(number, generation);
            let Ok(object) = pdf.object_in(revision, id) else {
                continue;
            };
            let _ = pdf.resolve_in(revision, &object);
            if let Object::Stream(stream) = &object {
                let _ = pdf.raw_stream_data(stream, STREAM_LIMIT);
                let _ = pdf.decoded_stream(stream, STREAM_LIMIT);
            }
        }
    }
});
