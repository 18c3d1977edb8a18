//! A visible signature's appearance (ISO 32000-1 §12.7.4.5, §12.5.5): a form XObject the size
//! of the widget — a thin frame and the stamp's lines of text, each shrunk to fit the width —
//! with the font's subset written into the same update.

use imza_pdf::font::{FontObjectIds, FontSubset};
use imza_pdf::{standard_fonts, Compression, Dictionary, IncrementalUpdate, Object, Stream};

use super::Stamp;
use crate::SignerError;

/// Largest font size of a stamp's text, in points.
const MAX_SIZE: f64 = 10.0;
/// Most lines on a stamp.
pub const MAX_LINES: usize = 8;

/// Writes the appearance of `stamp` (its font subset included) into `update`; returns the
/// form XObject's id, for the widget's `/AP /N`.
pub(crate) fn appearance(
    update: &mut IncrementalUpdate,
    stamp: &Stamp,
) -> Result<imza_pdf::ObjectId, SignerError> {
    let [_, _, width, height] = stamp.rect;
    if !(width >= 20.0 && height >= 10.0 && width <= 2000.0 && height <= 2000.0) {
        return Err(SignerError::Usage(
            "a stamp is at least 20 × 10 and at most 2000 × 2000 points".into(),
        ));
    }
    if stamp.lines.is_empty() || stamp.lines.len() > MAX_LINES {
        return Err(SignerError::Usage(format!(
            "a stamp shows 1 to {MAX_LINES} lines"
        )));
    }
    let font_error = |e: imza_pdf::FontError| SignerError::Usage(format!("the stamp's text: {e}"));
    let font = &standard_fonts().map_err(font_error)?.regular;
    let mut subset = FontSubset::new(font);
    let lines = stamp.lines.len() as f64;
    // Lines share the height with a margin; each shrinks further to fit the width.
    let size = (height - 6.0) / (lines * 1.25);
    let size = size.clamp(1.0, MAX_SIZE);
    let mut content = format!(
        "q 0.16 0.29 0.55 RG 1 w 0.5 0.5 {} {} re S Q\nBT 0.1 g\n",
        number(width - 1.0),
        number(height - 1.0)
    );
    for (i, line) in stamp.lines.iter().enumerate() {
        let codes = subset.encode(line).map_err(font_error)?;
        let natural = f64::from(font.text_width(line, size as f32));
        let line_size = if natural > width - 8.0 && natural > 0.0 {
            size * (width - 8.0) / natural
        } else {
            size
        };
        let baseline = height - 3.0 - (i as f64 + 1.0) * size * 1.25 + size * 0.25;
        content.push_str(&format!(
            "/F1 {} Tf 1 0 0 1 4 {} Tm <{}> Tj\n",
            number(line_size),
            number(baseline),
            hex::encode_upper(codes)
        ));
    }
    content.push_str("ET\n");
    let ids = FontObjectIds {
        font: update.allocate(),
        descendant: update.allocate(),
        descriptor: update.allocate(),
        font_file: update.allocate(),
        to_unicode: update.allocate(),
    };
    for (id, object) in subset
        .objects(ids, Compression::fast())
        .map_err(font_error)?
    {
        update.set(id, object);
    }
    let mut fonts = Dictionary::new();
    fonts.set("F1", ids.font);
    let mut resources = Dictionary::new();
    resources.set("Font", fonts);
    let mut form = Dictionary::new();
    form.set("Type", Object::name("XObject"));
    form.set("Subtype", Object::name("Form"));
    form.set(
        "BBox",
        vec![
            Object::Integer(0),
            Object::Integer(0),
            Object::Real(width),
            Object::Real(height),
        ],
    );
    form.set("Resources", resources);
    Ok(update.add(Object::Stream(Stream::new(form, content.into_bytes()))))
}

/// A number in content-stream syntax (two decimals at most).
fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}
