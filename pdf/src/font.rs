//! TrueType fonts for new documents (ISO 32000-1 §9.6.4, §9.7, §9.10.3): a [`FontProgram`] is
//! read once — its Unicode cmap, advance widths and descriptor metrics — and shared; each
//! document keeps a [`FontSubset`] of the glyphs it draws and embeds only those, as a Type0
//! font with Identity-H encoding over a CIDFontType2, its widths in /W and a /ToUnicode CMap,
//! so that text can be extracted and searched.
//!
//! The subset is made by the `subsetter` crate, which renumbers glyphs densely from 0
//! (.notdef) in the order they are first used: the codes in the content stream are those new
//! glyph ids, and with `/CIDToGIDMap /Identity` a code is its CID is its glyph.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};

use flate2::Compression;

use crate::build::flate_stream;
use crate::object::{Dictionary, Name, Object, ObjectId, PdfString};

/// Why a font could not be read or embedded.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FontError {
    #[error("not a font ttf-parser can read: {0}")]
    Malformed(String),
    #[error("the font has no TrueType outlines (glyf table); only TrueType fonts are embedded")]
    NotTrueType,
    #[error("the font has no Unicode cmap")]
    NoUnicodeCmap,
    #[error("the font {font} has no glyph for {character:?} (U+{code:04X})", code = *character as u32)]
    MissingGlyph { font: String, character: char },
    #[error("the font {font} could not be subset: {reason}")]
    Subset { font: String, reason: String },
}

/// A TrueType font read once: what laying out text and embedding subsets need, and the font
/// file itself.
pub struct FontProgram {
    data: Cow<'static, [u8]>,
    postscript_name: String,
    glyphs: HashMap<char, u16>,
    /// Advance widths in font units, by glyph id.
    advances: Vec<u16>,
    units_per_em: u16,
    ascent: i16,
    descent: i16,
    cap_height: i16,
    bounding_box: [i16; 4],
    italic_angle: f32,
    bold: bool,
}

impl std::fmt::Debug for FontProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FontProgram")
            .field("postscript_name", &self.postscript_name)
            .field("glyphs", &self.advances.len())
            .finish()
    }
}

impl FontProgram {
    /// Reads a TrueType font (`.ttf`, the first face of a collection).
    pub fn parse(data: impl Into<Cow<'static, [u8]>>) -> Result<FontProgram, FontError> {
        let data = data.into();
        let face =
            ttf_parser::Face::parse(&data, 0).map_err(|e| FontError::Malformed(e.to_string()))?;
        if face.tables().glyf.is_none() {
            return Err(FontError::NotTrueType);
        }
        let cmap = face.tables().cmap.ok_or(FontError::NoUnicodeCmap)?;
        let mut glyphs = HashMap::new();
        for subtable in cmap.subtables.into_iter().filter(|s| s.is_unicode()) {
            subtable.codepoints(|code| {
                if let (Some(character), Some(glyph)) =
                    (char::from_u32(code), subtable.glyph_index(code))
                {
                    glyphs.entry(character).or_insert(glyph.0);
                }
            });
        }
        if glyphs.is_empty() {
            return Err(FontError::NoUnicodeCmap);
        }
        let advances = (0..face.number_of_glyphs())
            .map(|glyph| {
                face.glyph_hor_advance(ttf_parser::GlyphId(glyph))
                    .unwrap_or(0)
            })
            .collect();
        let postscript_name = face
            .names()
            .into_iter()
            .filter(|name| name.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .find_map(|name| name.to_string())
            .map(|name| {
                // §9.6.4 / §9.9: a font name is a PDF name; keep it to plain ASCII.
                name.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect::<String>()
            })
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "Font".to_string());
        let bbox = face.global_bounding_box();
        Ok(FontProgram {
            postscript_name,
            glyphs,
            advances,
            units_per_em: face.units_per_em().max(1),
            ascent: face.ascender(),
            descent: face.descender(),
            cap_height: face.capital_height().unwrap_or(face.ascender()),
            bounding_box: [bbox.x_min, bbox.y_min, bbox.x_max, bbox.y_max],
            italic_angle: face.italic_angle(),
            bold: face.is_bold(),
            data,
        })
    }

    /// The font's PostScript name (`DejaVuSans-Bold`).
    pub fn postscript_name(&self) -> &str {
        &self.postscript_name
    }

    /// The glyph that shows `character`, if the font has one.
    pub fn glyph(&self, character: char) -> Option<u16> {
        self.glyphs.get(&character).copied()
    }

    /// Whether every character of `text` has a glyph.
    pub fn covers(&self, text: &str) -> bool {
        text.chars().all(|c| self.glyphs.contains_key(&c))
    }

    /// A glyph's advance in thousandths of the font size (the unit of /W, §9.7.4.3).
    fn advance_per_mille(&self, glyph: u16) -> f32 {
        let advance = self.advances.get(usize::from(glyph)).copied().unwrap_or(0);
        f32::from(advance) * 1000.0 / f32::from(self.units_per_em)
    }

    /// The width of `text` set in this font at `size` points, without kerning (as it is
    /// drawn). A character the font lacks counts as .notdef.
    pub fn text_width(&self, text: &str, size: f32) -> f32 {
        let per_mille: f32 = text
            .chars()
            .map(|c| self.advance_per_mille(self.glyph(c).unwrap_or(0)))
            .sum();
        per_mille * size / 1000.0
    }

    /// How far the tallest glyphs rise above the baseline at `size`.
    pub fn ascent(&self, size: f32) -> f32 {
        self.to_points(self.ascent, size)
    }

    /// How far glyphs go below the baseline at `size` (a negative number).
    pub fn descent(&self, size: f32) -> f32 {
        self.to_points(self.descent, size)
    }

    fn to_points(&self, units: i16, size: f32) -> f32 {
        f32::from(units) * size / f32::from(self.units_per_em)
    }

    fn per_mille(&self, units: i16) -> i64 {
        (i64::from(units) * 1000) / i64::from(self.units_per_em)
    }

    /// `text` broken into lines no wider than `max_width` at `size`: greedily at spaces, and
    /// inside a word only when the word alone is wider than the line. Runs of white space
    /// become one space; an empty text gives no lines.
    pub fn wrap(&self, text: &str, size: f32, max_width: f32) -> Vec<String> {
        let space = self.text_width(" ", size);
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut line_width = 0.0;
        for word in text.split_whitespace() {
            let word_width = self.text_width(word, size);
            if !line.is_empty() && line_width + space + word_width <= max_width {
                line.push(' ');
                line.push_str(word);
                line_width += space + word_width;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if word_width <= max_width {
                line.push_str(word);
                line_width = word_width;
                continue;
            }
            // A word wider than the line: as many characters as fit on each line (at least
            // one, so that this ends).
            line_width = 0.0;
            for character in word.chars() {
                let width =
                    self.advance_per_mille(self.glyph(character).unwrap_or(0)) * size / 1000.0;
                if !line.is_empty() && line_width + width > max_width {
                    lines.push(std::mem::take(&mut line));
                    line_width = 0.0;
                }
                line.push(character);
                line_width += width;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }
}

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static DEJAVU_SANS_BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

/// The fonts imza writes documents and signature stamps in: DejaVu Sans and DejaVu Sans Bold
/// (vendored in `pdf/assets/fonts/` with their licence; every Azerbaijani letter), parsed on
/// first use and kept for the process.
pub struct StandardFonts {
    pub regular: FontProgram,
    pub bold: FontProgram,
}

/// [`StandardFonts`], read once.
pub fn standard_fonts() -> Result<&'static StandardFonts, FontError> {
    static FONTS: std::sync::OnceLock<Result<StandardFonts, FontError>> =
        std::sync::OnceLock::new();
    FONTS
        .get_or_init(|| {
            Ok(StandardFonts {
                regular: FontProgram::parse(DEJAVU_SANS)?,
                bold: FontProgram::parse(DEJAVU_SANS_BOLD)?,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The glyphs of one font a document uses, numbered as they will be in its embedded subset.
pub struct FontSubset<'f> {
    program: &'f FontProgram,
    remapper: subsetter::GlyphRemapper,
    /// The text each new glyph id stands for, for /ToUnicode (index = new id).
    unicode: Vec<Option<char>>,
}

/// The object ids a subset's five objects are written under.
#[derive(Clone, Copy, Debug)]
pub struct FontObjectIds {
    /// The Type0 font the pages' resources name.
    pub font: ObjectId,
    pub descendant: ObjectId,
    pub descriptor: ObjectId,
    pub font_file: ObjectId,
    pub to_unicode: ObjectId,
}

impl<'f> FontSubset<'f> {
    pub fn new(program: &'f FontProgram) -> FontSubset<'f> {
        FontSubset {
            program,
            remapper: subsetter::GlyphRemapper::new(),
            unicode: vec![None],
        }
    }

    pub fn program(&self) -> &'f FontProgram {
        self.program
    }

    /// `text` as the codes of a show-text operator: two bytes per character, each the new id
    /// of its glyph (Identity-H). Every glyph is added to the subset.
    pub fn encode(&mut self, text: &str) -> Result<Vec<u8>, FontError> {
        let mut codes = Vec::with_capacity(text.len() * 2);
        for character in text.chars() {
            let glyph = self
                .program
                .glyph(character)
                .ok_or_else(|| FontError::MissingGlyph {
                    font: self.program.postscript_name.clone(),
                    character,
                })?;
            // A font has fewer than 65,536 glyphs, so the remapper (which counts in u16)
            // cannot overflow on the ids of its cmap.
            let new = self.remapper.remap(glyph);
            let slot = usize::from(new);
            if self.unicode.len() <= slot {
                self.unicode.resize(slot + 1, None);
            }
            self.unicode[slot].get_or_insert(character);
            codes.extend_from_slice(&new.to_be_bytes());
        }
        Ok(codes)
    }

    /// The subset's font name: a tag of six capitals naming the glyph set, `+`, the
    /// PostScript name (§9.6.4).
    fn subset_name(&self) -> String {
        let mut hasher = DefaultHasher::new();
        for glyph in self.remapper.remapped_gids() {
            hasher.write_u16(glyph);
        }
        hasher.write(self.program.postscript_name.as_bytes());
        let mut hash = hasher.finish();
        let mut tag = String::with_capacity(7 + self.program.postscript_name.len());
        for _ in 0..6 {
            tag.push(char::from(b'A' + (hash % 26) as u8));
            hash /= 26;
        }
        tag.push('+');
        tag.push_str(&self.program.postscript_name);
        tag
    }

    /// The embedded subset's objects, to be written under `ids`, their streams deflated at
    /// `compression`.
    pub fn objects(
        &self,
        ids: FontObjectIds,
        compression: Compression,
    ) -> Result<Vec<(ObjectId, Object)>, FontError> {
        let program = self.program;
        let font_file =
            subsetter::subset(&program.data, 0, &self.remapper).map_err(|e| FontError::Subset {
                font: program.postscript_name.clone(),
                reason: e.to_string(),
            })?;
        let base_font = Name::new(&self.subset_name());

        let mut file = Dictionary::new();
        file.set("Length1", Object::Integer(font_file.len() as i64));
        let file = flate_stream(file, &font_file, compression);

        // §9.8.2: Symbolic (bit 3), since glyphs are reached by CID and not by a standard
        // Latin encoding; ForceBold for a bold face.
        let mut flags = 1 << 2;
        if program.bold {
            flags |= 1 << 18;
        }
        let mut descriptor = Dictionary::new();
        descriptor.set("Type", Object::name("FontDescriptor"));
        descriptor.set("FontName", base_font.clone());
        descriptor.set("Flags", Object::Integer(flags));
        descriptor.set(
            "FontBBox",
            program
                .bounding_box
                .iter()
                .map(|&v| Object::Integer(program.per_mille(v)))
                .collect::<Vec<_>>(),
        );
        descriptor.set("ItalicAngle", Object::Real(f64::from(program.italic_angle)));
        descriptor.set("Ascent", Object::Integer(program.per_mille(program.ascent)));
        descriptor.set(
            "Descent",
            Object::Integer(program.per_mille(program.descent)),
        );
        descriptor.set(
            "CapHeight",
            Object::Integer(program.per_mille(program.cap_height)),
        );
        // No font file records the stem width; these are the usual estimates.
        descriptor.set(
            "StemV",
            Object::Integer(if program.bold { 140 } else { 80 }),
        );
        descriptor.set("FontFile2", ids.font_file);

        // §9.7.4.3: one run of widths from CID 0, in the subset's order.
        let widths: Vec<Object> = self
            .remapper
            .remapped_gids()
            .map(|glyph| Object::Integer(program.advance_per_mille(glyph).round() as i64))
            .collect();
        let mut system_info = Dictionary::new();
        system_info.set("Registry", PdfString::literal("Adobe"));
        system_info.set("Ordering", PdfString::literal("Identity"));
        system_info.set("Supplement", Object::Integer(0));
        let mut descendant = Dictionary::new();
        descendant.set("Type", Object::name("Font"));
        descendant.set("Subtype", Object::name("CIDFontType2"));
        descendant.set("BaseFont", base_font.clone());
        descendant.set("CIDSystemInfo", system_info);
        descendant.set("FontDescriptor", ids.descriptor);
        descendant.set("W", vec![Object::Integer(0), Object::Array(widths)]);
        descendant.set("CIDToGIDMap", Object::name("Identity"));

        let to_unicode = flate_stream(Dictionary::new(), &self.to_unicode_cmap(), compression);

        let mut font = Dictionary::new();
        font.set("Type", Object::name("Font"));
        font.set("Subtype", Object::name("Type0"));
        font.set("BaseFont", base_font);
        font.set("Encoding", Object::name("Identity-H"));
        font.set("DescendantFonts", vec![Object::Reference(ids.descendant)]);
        font.set("ToUnicode", ids.to_unicode);

        Ok(vec![
            (ids.font, Object::Dictionary(font)),
            (ids.descendant, Object::Dictionary(descendant)),
            (ids.descriptor, Object::Dictionary(descriptor)),
            (ids.font_file, Object::Stream(file)),
            (ids.to_unicode, Object::Stream(to_unicode)),
        ])
    }

    /// The /ToUnicode CMap (§9.10.3; Adobe technical note 5411): each code, the character
    /// whose glyph it is, in UTF-16BE.
    fn to_unicode_cmap(&self) -> Vec<u8> {
        let mappings: Vec<(usize, char)> = self
            .unicode
            .iter()
            .enumerate()
            .filter_map(|(code, character)| character.map(|c| (code, c)))
            .collect();
        let mut cmap = String::from(
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
             /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
             /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
             1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
        );
        // At most 100 mappings per block (technical note 5014, limits).
        for block in mappings.chunks(100) {
            cmap.push_str(&format!("{} beginbfchar\n", block.len()));
            for (code, character) in block {
                cmap.push_str(&format!("<{code:04X}> <"));
                let mut units = [0u16; 2];
                for unit in character.encode_utf16(&mut units) {
                    cmap.push_str(&format!("{unit:04X}"));
                }
                cmap.push_str(">\n");
            }
            cmap.push_str("endbfchar\n");
        }
        cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
        cmap.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The portal's vendored DejaVu Sans (see pdf/assets/fonts/LICENSE).
    pub(crate) static DEJAVU_SANS: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

    #[test]
    fn azerbaijani_letters_have_glyphs() {
        let font = FontProgram::parse(DEJAVU_SANS).unwrap();
        assert_eq!(font.postscript_name(), "DejaVuSans");
        assert!(font.covers("əƏğĞıİşŞçÇöÖüÜ"));
        assert!(!font.covers("\u{e000}"));
    }

    #[test]
    fn widths_scale_with_size_and_wrap_respects_the_width() {
        let font = FontProgram::parse(DEJAVU_SANS).unwrap();
        let width = font.text_width("Yaşayış yeri", 10.0);
        assert!((font.text_width("Yaşayış yeri", 20.0) - 2.0 * width).abs() < 1e-3);
        let text = "Bu arayış Azərbaycan Respublikasının vətəndaşı üçün verilir";
        let lines = font.wrap(text, 10.0, 120.0);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| font.text_width(l, 10.0) <= 120.0));
        assert_eq!(lines.join(" "), text);
        // A word wider than the line is broken, and nothing is lost.
        let long = "ə".repeat(200);
        let lines = font.wrap(&long, 10.0, 50.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), long);
        assert!(font.wrap("  \n ", 10.0, 50.0).is_empty());
    }

    #[test]
    fn codes_are_dense_new_glyph_ids_and_map_back_to_text() {
        let font = FontProgram::parse(DEJAVU_SANS).unwrap();
        let mut subset = FontSubset::new(&font);
        assert_eq!(subset.encode("əİə").unwrap(), vec![0, 1, 0, 2, 0, 1]);
        assert_eq!(
            subset.encode("\u{e000}"),
            Err(FontError::MissingGlyph {
                font: "DejaVuSans".into(),
                character: '\u{e000}'
            })
        );
        let cmap = String::from_utf8(subset.to_unicode_cmap()).unwrap();
        assert!(cmap.contains("2 beginbfchar\n<0001> <0259>\n<0002> <0130>\n"));
        let name = subset.subset_name();
        assert!(name.ends_with("+DejaVuSans") && name[..6].bytes().all(|b| b.is_ascii_uppercase()));
    }

    #[test]
    fn a_subset_is_small() {
        let font = FontProgram::parse(DEJAVU_SANS).unwrap();
        let mut subset = FontSubset::new(&font);
        subset
            .encode("Yaşayış yeri haqqında arayış ƏĞİŞÇÖÜ 0123456789")
            .unwrap();
        let id = |n| ObjectId::new(n, 0);
        let ids = FontObjectIds {
            font: id(1),
            descendant: id(2),
            descriptor: id(3),
            font_file: id(4),
            to_unicode: id(5),
        };
        let objects = subset.objects(ids, Compression::none()).unwrap();
        let Object::Stream(file) = &objects[3].1 else {
            panic!("no font file stream");
        };
        let length = file
            .dictionary
            .get("Length1")
            .unwrap()
            .as_integer()
            .unwrap();
        assert!(length < 40_000, "subset of {length} bytes");
    }
}
