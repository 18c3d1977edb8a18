//! New PDF documents from scratch (ISO 32000-1): a [`DocumentBuilder`] numbers the objects,
//! takes fonts ([`crate::font`]), images and pages drawn on a [`Page`] (text, lines,
//! rectangles, images; content streams deflated), and writes a complete PDF 1.7 file — header
//! with the binary comment line (§7.5.2), the objects, a classic cross-reference table
//! (§7.5.4), a trailer with /Size, /Root, /Info and /ID (§14.4), `startxref` and `%%EOF`.
//!
//! Coordinates are PDF points (1/72 inch) from the page's lower left corner.

use std::hash::{DefaultHasher, Hasher};
use std::io::Write;

use flate2::Compression;

use crate::date::pdf_date;
use time::OffsetDateTime;

use crate::font::{FontError, FontObjectIds, FontProgram, FontSubset};
use crate::object::{Dictionary, Name, Object, ObjectId, PdfString, Stream};

/// Why a document could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error(transparent)]
    Font(#[from] FontError),
    #[error("no font {0} in this document")]
    UnknownFont(usize),
    #[error("no image {0} in this document")]
    UnknownImage(usize),
    #[error(
        "image of {width}×{height} at {bits} bits per pixel needs {expected} bytes, not {actual}"
    )]
    ImageSize {
        width: u32,
        height: u32,
        bits: u8,
        expected: usize,
        actual: usize,
    },
    #[error("an image has 1 or 8 bits per pixel, not {0}")]
    ImageDepth(u8),
    #[error("a document has at least one page")]
    NoPages,
    #[error("an object could not be written: {0}")]
    Write(String),
}

/// A page size in points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PageSize {
    pub width: f32,
    pub height: f32,
}

impl PageSize {
    /// ISO 216 A4, 210 × 297 mm.
    pub const A4: PageSize = PageSize {
        width: 595.276,
        height: 841.89,
    };
}

/// Millimetres in points.
pub fn mm(millimetres: f32) -> f32 {
    millimetres * 72.0 / 25.4
}

/// A font added to a document, named in its pages' resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FontId(usize);

/// An image added to a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageId(usize);

/// A grayscale raster (§8.9.5, DeviceGray): rows top to bottom, each padded to a whole byte;
/// with 1 bit per pixel 0 is black and 1 white, with 8 bits 0 is black and 255 white.
#[derive(Clone, Debug)]
pub struct GrayImage {
    width: u32,
    height: u32,
    bits: u8,
    pixels: Vec<u8>,
}

impl GrayImage {
    pub fn new(
        width: u32,
        height: u32,
        bits: u8,
        pixels: Vec<u8>,
    ) -> Result<GrayImage, BuildError> {
        if bits != 1 && bits != 8 {
            return Err(BuildError::ImageDepth(bits));
        }
        let row = (width as usize * usize::from(bits)).div_ceil(8);
        let expected = row.saturating_mul(height as usize);
        if pixels.len() != expected || width == 0 || height == 0 {
            return Err(BuildError::ImageSize {
                width,
                height,
                bits,
                expected,
                actual: pixels.len(),
            });
        }
        Ok(GrayImage {
            width,
            height,
            bits,
            pixels,
        })
    }
}

/// A rectangle: lower left corner, width and height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// What the document information dictionary says (§14.3.3).
#[derive(Clone, Debug)]
pub struct DocumentInfo {
    pub title: String,
    pub created: OffsetDateTime,
    /// The natural language of the text (§14.9.2.1, a BCP 47 tag such as `az`), if one.
    pub language: Option<String>,
}

/// The producer every document names.
pub const PRODUCER: &str = "imza";

struct FontEntry<'f> {
    subset: FontSubset<'f>,
    id: ObjectId,
}

/// A PDF document under construction.
pub struct DocumentBuilder<'f> {
    /// Object `n` is `objects[n - 1]`; `None` until it is set.
    objects: Vec<Option<Object>>,
    catalog: ObjectId,
    page_tree: ObjectId,
    pages: Vec<ObjectId>,
    fonts: Vec<FontEntry<'f>>,
    images: Vec<ObjectId>,
    compression: Compression,
}

impl Default for DocumentBuilder<'_> {
    fn default() -> Self {
        DocumentBuilder::new()
    }
}

impl<'f> DocumentBuilder<'f> {
    pub fn new() -> DocumentBuilder<'f> {
        let mut builder = DocumentBuilder {
            objects: Vec::new(),
            catalog: ObjectId::new(0, 0),
            page_tree: ObjectId::new(0, 0),
            pages: Vec::new(),
            fonts: Vec::new(),
            images: Vec::new(),
            compression: Compression::fast(),
        };
        builder.catalog = builder.allocate();
        builder.page_tree = builder.allocate();
        builder
    }

    /// How hard streams are deflated: zlib's fastest level by default. Most of a document is
    /// its two font subsets (a DejaVu subset of 70 glyphs is about 25 kB, 10 kB of it the name
    /// table with the font's licence): level 1 deflates one in about 0.18 ms to 16 kB, level 6
    /// in 0.5 ms to 13 kB — a document of 41 kB instead of 33 kB, rendered in about half the
    /// time (`cargo bench -p imza-pdf --bench new_document`).
    pub fn set_compression(&mut self, compression: Compression) {
        self.compression = compression;
    }

    /// A new object number, its object to be [`set`](Self::set) before the document is
    /// finished (one left unset is written as `null`).
    pub fn allocate(&mut self) -> ObjectId {
        self.objects.push(None);
        ObjectId::new(self.objects.len() as u32, 0)
    }

    /// Sets the object of an allocated number (an unknown number is ignored).
    pub fn set(&mut self, id: ObjectId, object: Object) {
        if let Some(slot) = (id.number as usize)
            .checked_sub(1)
            .and_then(|i| self.objects.get_mut(i))
        {
            *slot = Some(object);
        }
    }

    /// Adds an object under a new number.
    pub fn add(&mut self, object: Object) -> ObjectId {
        let id = self.allocate();
        self.set(id, object);
        id
    }

    /// A stream of `data`, deflated, under a new number.
    pub fn add_stream(&mut self, dictionary: Dictionary, data: &[u8]) -> ObjectId {
        let stream = flate_stream(dictionary, data, self.compression);
        self.add(Object::Stream(stream))
    }

    /// Adds a font; only the glyphs the pages draw with it are embedded.
    pub fn add_font(&mut self, program: &'f FontProgram) -> FontId {
        let id = self.allocate();
        self.fonts.push(FontEntry {
            subset: FontSubset::new(program),
            id,
        });
        FontId(self.fonts.len() - 1)
    }

    /// The program of a font added.
    pub fn font(&self, font: FontId) -> Result<&'f FontProgram, BuildError> {
        self.fonts
            .get(font.0)
            .map(|entry| entry.subset.program())
            .ok_or(BuildError::UnknownFont(font.0))
    }

    /// Adds an image XObject (§8.9.5), drawn crisp (no interpolation).
    pub fn add_image(&mut self, image: GrayImage) -> ImageId {
        let mut dictionary = Dictionary::new();
        dictionary.set("Type", Object::name("XObject"));
        dictionary.set("Subtype", Object::name("Image"));
        dictionary.set("Width", Object::Integer(i64::from(image.width)));
        dictionary.set("Height", Object::Integer(i64::from(image.height)));
        dictionary.set("ColorSpace", Object::name("DeviceGray"));
        dictionary.set("BitsPerComponent", Object::Integer(i64::from(image.bits)));
        dictionary.set("Interpolate", Object::Boolean(false));
        let id = self.add_stream(dictionary, &image.pixels);
        self.images.push(id);
        ImageId(self.images.len() - 1)
    }

    /// A new page to draw on; it becomes part of the document at [`Page::finish`].
    pub fn page(&mut self, size: PageSize) -> Page<'_, 'f> {
        Page {
            document: self,
            size,
            content: Vec::new(),
            fonts: Vec::new(),
            images: Vec::new(),
        }
    }

    /// The whole file.
    pub fn finish(mut self, info: &DocumentInfo) -> Result<Vec<u8>, BuildError> {
        if self.pages.is_empty() {
            return Err(BuildError::NoPages);
        }
        let fonts = std::mem::take(&mut self.fonts);
        for entry in &fonts {
            let ids = FontObjectIds {
                font: entry.id,
                descendant: self.allocate(),
                descriptor: self.allocate(),
                font_file: self.allocate(),
                to_unicode: self.allocate(),
            };
            for (id, object) in entry.subset.objects(ids, self.compression)? {
                self.set(id, object);
            }
        }

        let mut page_tree = Dictionary::new();
        page_tree.set("Type", Object::name("Pages"));
        page_tree.set(
            "Kids",
            self.pages
                .iter()
                .map(|&id| Object::Reference(id))
                .collect::<Vec<_>>(),
        );
        page_tree.set("Count", Object::Integer(self.pages.len() as i64));
        self.set(self.page_tree, Object::Dictionary(page_tree));

        let mut catalog = Dictionary::new();
        catalog.set("Type", Object::name("Catalog"));
        catalog.set("Pages", self.page_tree);
        if let Some(language) = &info.language {
            catalog.set("Lang", PdfString::text(language));
        }
        self.set(self.catalog, Object::Dictionary(catalog));

        let mut information = Dictionary::new();
        information.set("Title", PdfString::text(&info.title));
        information.set("Producer", PdfString::text(PRODUCER));
        information.set("CreationDate", PdfString::literal(pdf_date(info.created)));
        let info_id = self.add(Object::Dictionary(information));

        self.write(info_id)
    }

    fn write(self, info_id: ObjectId) -> Result<Vec<u8>, BuildError> {
        let write_error = |e: std::io::Error| BuildError::Write(e.to_string());
        // §7.5.2: a comment of four bytes above 127 marks the file as binary.
        let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::with_capacity(self.objects.len());
        for (i, object) in self.objects.iter().enumerate() {
            offsets.push(out.len());
            writeln!(out, "{} 0 obj", i + 1).map_err(write_error)?;
            match object {
                Some(object) => object.write_to(&mut out).map_err(write_error)?,
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b"\nendobj\n");
        }

        // §14.4: the first identifier of a new file is also its second; derived from its
        // content (which includes the creation time), so it differs between documents.
        let mut id = [0u8; 16];
        for (half, chunk) in id.chunks_mut(8).enumerate() {
            let mut hasher = DefaultHasher::new();
            hasher.write_usize(half);
            hasher.write(&out);
            chunk.copy_from_slice(&hasher.finish().to_be_bytes());
        }

        let xref = out.len();
        let size = self.objects.len() + 1;
        write!(out, "xref\n0 {size}\n0000000000 65535 f\r\n").map_err(write_error)?;
        for offset in offsets {
            // §7.5.4: each entry exactly 20 bytes, its end of line two.
            write!(out, "{offset:010} 00000 n\r\n").map_err(write_error)?;
        }
        let mut trailer = Dictionary::new();
        trailer.set("Size", Object::Integer(size as i64));
        trailer.set("Root", self.catalog);
        trailer.set("Info", info_id);
        trailer.set(
            "ID",
            vec![
                Object::String(PdfString::hex(id.to_vec())),
                Object::String(PdfString::hex(id.to_vec())),
            ],
        );
        out.extend_from_slice(b"trailer\n");
        Object::Dictionary(trailer)
            .write_to(&mut out)
            .map_err(write_error)?;
        write!(out, "\nstartxref\n{xref}\n%%EOF\n").map_err(write_error)?;
        Ok(out)
    }
}

/// A page being drawn: its content stream and the resources it uses.
pub struct Page<'d, 'f> {
    document: &'d mut DocumentBuilder<'f>,
    size: PageSize,
    content: Vec<u8>,
    fonts: Vec<FontId>,
    images: Vec<ImageId>,
}

impl<'f> Page<'_, 'f> {
    pub fn size(&self) -> PageSize {
        self.size
    }

    /// The program of a font of the document, to measure text with.
    pub fn font(&self, font: FontId) -> Result<&'f FontProgram, BuildError> {
        self.document.font(font)
    }

    /// The width of `text` in `font` at `size`.
    pub fn text_width(&self, font: FontId, size: f32, text: &str) -> Result<f32, BuildError> {
        Ok(self.font(font)?.text_width(text, size))
    }

    /// Draws `text` with its baseline starting at (`x`, `y`), in the fill colour.
    pub fn text(
        &mut self,
        font: FontId,
        size: f32,
        x: f32,
        y: f32,
        text: &str,
    ) -> Result<(), BuildError> {
        let entry = self
            .document
            .fonts
            .get_mut(font.0)
            .ok_or(BuildError::UnknownFont(font.0))?;
        let codes = entry.subset.encode(text)?;
        if !self.fonts.contains(&font) {
            self.fonts.push(font);
        }
        write!(self.content, "BT\n/F{} ", font.0).map_err(|e| BuildError::Write(e.to_string()))?;
        self.push(&[size]);
        self.content.extend_from_slice(b"Tf\n1 0 0 1 ");
        self.push(&[x, y]);
        self.content.extend_from_slice(b"Tm\n");
        Object::String(PdfString::hex(codes))
            .write_to(&mut self.content)
            .map_err(|e| BuildError::Write(e.to_string()))?;
        self.content.extend_from_slice(b" Tj\nET\n");
        Ok(())
    }

    /// Draws `text` centred on `center_x`.
    pub fn text_centered(
        &mut self,
        font: FontId,
        size: f32,
        center_x: f32,
        y: f32,
        text: &str,
    ) -> Result<(), BuildError> {
        let width = self.text_width(font, size, text)?;
        self.text(font, size, center_x - width / 2.0, y, text)
    }

    /// Draws `text` ending at `right_x`.
    pub fn text_right(
        &mut self,
        font: FontId,
        size: f32,
        right_x: f32,
        y: f32,
        text: &str,
    ) -> Result<(), BuildError> {
        let width = self.text_width(font, size, text)?;
        self.text(font, size, right_x - width, y, text)
    }

    /// The fill colour (text, filled shapes) as a gray level, 0 black to 1 white.
    pub fn set_fill_gray(&mut self, gray: f32) {
        self.push(&[gray.clamp(0.0, 1.0)]);
        self.content.extend_from_slice(b"g\n");
    }

    /// The stroke colour (lines, outlines) as a gray level.
    pub fn set_stroke_gray(&mut self, gray: f32) {
        self.push(&[gray.clamp(0.0, 1.0)]);
        self.content.extend_from_slice(b"G\n");
    }

    pub fn set_line_width(&mut self, width: f32) {
        self.push(&[width.max(0.0)]);
        self.content.extend_from_slice(b"w\n");
    }

    /// A straight line, stroked.
    pub fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32) {
        self.push(&[x1, y1]);
        self.content.extend_from_slice(b"m\n");
        self.push(&[x2, y2]);
        self.content.extend_from_slice(b"l\nS\n");
    }

    /// A rectangle's outline, stroked.
    pub fn stroke_rect(&mut self, rect: Rect) {
        self.push(&[rect.x, rect.y, rect.width, rect.height]);
        self.content.extend_from_slice(b"re\nS\n");
    }

    /// Rectangles filled as one path, so that touching ones leave no seam between them when
    /// rendered with anti-aliasing (a QR code's modules).
    pub fn fill_rects(&mut self, rects: &[Rect]) {
        if rects.is_empty() {
            return;
        }
        for rect in rects {
            self.push(&[rect.x, rect.y, rect.width, rect.height]);
            self.content.extend_from_slice(b"re\n");
        }
        self.content.extend_from_slice(b"f\n");
    }

    /// Draws an image of the document into `rect`.
    pub fn image(&mut self, image: ImageId, rect: Rect) -> Result<(), BuildError> {
        if image.0 >= self.document.images.len() {
            return Err(BuildError::UnknownImage(image.0));
        }
        if !self.images.contains(&image) {
            self.images.push(image);
        }
        self.content.extend_from_slice(b"q\n");
        self.push(&[rect.width, 0.0, 0.0, rect.height, rect.x, rect.y]);
        write!(self.content, "cm\n/Im{} Do\nQ\n", image.0)
            .map_err(|e| BuildError::Write(e.to_string()))
    }

    /// Operands, each followed by a space: at most three decimals, no exponent (§7.3.3).
    fn push(&mut self, numbers: &[f32]) {
        for &number in numbers {
            let number = if number.is_finite() { number } else { 0.0 };
            let text = format!("{number:.3}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            self.content
                .extend_from_slice(if text == "-0" { b"0" } else { text.as_bytes() });
            self.content.push(b' ');
        }
    }

    /// Adds the page to its document.
    pub fn finish(self) -> ObjectId {
        let Page {
            document,
            size,
            content,
            fonts,
            images,
        } = self;
        let contents = document.add_stream(Dictionary::new(), &content);

        let mut font_resources = Dictionary::new();
        for font in &fonts {
            if let Some(entry) = document.fonts.get(font.0) {
                font_resources.set(&format!("F{}", font.0), entry.id);
            }
        }
        let mut image_resources = Dictionary::new();
        for image in &images {
            if let Some(&id) = document.images.get(image.0) {
                image_resources.set(&format!("Im{}", image.0), id);
            }
        }
        let mut resources = Dictionary::new();
        if !font_resources.is_empty() {
            resources.set("Font", font_resources);
        }
        if !image_resources.is_empty() {
            resources.set("XObject", image_resources);
        }

        let mut page = Dictionary::new();
        page.set("Type", Object::name("Page"));
        page.set("Parent", document.page_tree);
        page.set(
            "MediaBox",
            vec![
                Object::Integer(0),
                Object::Integer(0),
                Object::Real(f64::from(size.width)),
                Object::Real(f64::from(size.height)),
            ],
        );
        page.set("Resources", resources);
        page.set("Contents", contents);
        let id = document.add(Object::Dictionary(page));
        document.pages.push(id);
        id
    }
}

/// A stream of `data` deflated (§7.4.4) at `compression`, or as is in the unlikely case that
/// deflating fails.
pub(crate) fn flate_stream(
    mut dictionary: Dictionary,
    data: &[u8],
    compression: Compression,
) -> Stream {
    let mut encoder =
        flate2::write::ZlibEncoder::new(Vec::with_capacity(data.len() / 2 + 64), compression);
    match encoder.write_all(data).and_then(|()| encoder.finish()) {
        Ok(compressed) => {
            dictionary.set("Filter", Object::Name(Name::new("FlateDecode")));
            Stream::new(dictionary, compressed)
        }
        Err(_) => Stream::new(dictionary, data.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::font::FontProgram;

    static DEJAVU_SANS: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

    fn info() -> DocumentInfo {
        DocumentInfo {
            title: "Yaşayış yeri haqqında arayış".into(),
            created: time::macros::datetime!(2025-03-01 14:05:09 +04:00),
            language: Some("az".into()),
        }
    }

    fn document(font: &FontProgram) -> Vec<u8> {
        let mut builder = DocumentBuilder::new();
        let sans = builder.add_font(font);
        let image =
            builder.add_image(GrayImage::new(2, 2, 1, vec![0b0100_0000, 0b1000_0000]).unwrap());
        let mut page = builder.page(PageSize::A4);
        page.text(sans, 12.0, 72.0, 700.0, "Şəki (əƏ)").unwrap();
        page.line(72.0, 690.0, 300.0, 690.0);
        page.fill_rects(&[Rect {
            x: 72.0,
            y: 600.0,
            width: 10.0,
            height: 10.0,
        }]);
        page.image(
            image,
            Rect {
                x: 100.0,
                y: 600.0,
                width: 20.0,
                height: 20.0,
            },
        )
        .unwrap();
        page.finish();
        builder.finish(&info()).unwrap()
    }

    #[test]
    fn the_cross_reference_table_points_at_each_object() {
        let font = FontProgram::parse(DEJAVU_SANS).unwrap();
        let file = document(&font);
        assert!(file.starts_with(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n"));
        assert!(file.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(&file);
        let startxref: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|tail| tail.lines().next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(file[startxref..].starts_with(b"xref\n0 "));
        let table = String::from_utf8_lossy(&file[startxref..]);
        let mut lines = table.split('\n').skip(1);
        let count: usize = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let entries = &file[startxref + 5 + format!("0 {count}\n").len()..];
        assert_eq!(&entries[..20], b"0000000000 65535 f\r\n");
        for number in 1..count {
            let entry = &entries[number * 20..number * 20 + 20];
            assert_eq!(&entry[10..], b" 00000 n\r\n");
            let offset: usize = std::str::from_utf8(&entry[..10]).unwrap().parse().unwrap();
            assert!(file[offset..].starts_with(format!("{number} 0 obj\n").as_bytes()));
        }
        assert!(text.contains(&format!("trailer\n<</Size {count}/Root 1 0 R/Info ")));
        assert!(text.contains("/CreationDate (D:20250301140509+04'00')"));
        assert!(text.contains("/Producer (imza)"));
    }

    #[test]
    fn documents_differ_in_their_ids() {
        let font = FontProgram::parse(DEJAVU_SANS).unwrap();
        let id = |file: &[u8]| {
            let text = String::from_utf8_lossy(file).into_owned();
            text[text.find("/ID [").unwrap()..]
                .lines()
                .next()
                .unwrap()
                .to_string()
        };
        let first = document(&font);
        let mut builder = DocumentBuilder::new();
        let sans = builder.add_font(&font);
        let mut page = builder.page(PageSize::A4);
        page.text(sans, 12.0, 72.0, 700.0, "Gəncə").unwrap();
        page.finish();
        let second = builder.finish(&info()).unwrap();
        assert_ne!(id(&first), id(&second));
        assert_eq!(
            id(&first),
            id(&document(&font)),
            "the same content, the same id"
        );
    }

    #[test]
    fn refusals() {
        let font = FontProgram::parse(DEJAVU_SANS).unwrap();
        assert_eq!(
            DocumentBuilder::new().finish(&info()),
            Err(BuildError::NoPages)
        );
        assert!(matches!(
            GrayImage::new(9, 2, 1, vec![0; 2]),
            Err(BuildError::ImageSize { expected: 4, .. })
        ));
        assert_eq!(
            GrayImage::new(1, 1, 4, vec![0]).unwrap_err(),
            BuildError::ImageDepth(4)
        );
        let mut builder = DocumentBuilder::new();
        let sans = builder.add_font(&font);
        let mut page = builder.page(PageSize::A4);
        assert!(matches!(
            page.text(sans, 12.0, 0.0, 0.0, "\u{e000}"),
            Err(BuildError::Font(FontError::MissingGlyph { .. }))
        ));
        assert_eq!(
            page.text(FontId(7), 12.0, 0.0, 0.0, "a"),
            Err(BuildError::UnknownFont(7))
        );
    }

    #[test]
    fn numbers_in_content_have_no_exponent() {
        let mut builder = DocumentBuilder::new();
        let mut page = builder.page(PageSize::A4);
        page.line(1e-9, -0.0001, 1234567.0, f32::NAN);
        assert_eq!(page.content, b"0 0 m\n1234567 0 l\nS\n");
    }
}
