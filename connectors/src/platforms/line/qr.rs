//! QR codes of a text (pure): SVG for screens and print, PNG for whatever
//! cannot show SVG. Error correction M (15 %), LINE's own choice for its
//! add-friend codes, and the standard quiet zone of 4 modules, which
//! scanners need to find the code on a busy page.

use qrcode::render::{Canvas, Pixel, svg};
use qrcode::types::Color;
use qrcode::{EcLevel, QrCode};

/// SVG user units per module: about 330 px wide for an add-friend URL.
const SVG_MODULE: u32 = 8;
/// PNG pixels per module: about 410 px, sharp when printed at 3-4 cm.
pub const PNG_MODULE: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum QrRenderError {
    #[error("cannot encode the text as a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("cannot write the QR code as PNG: {0}")]
    Png(#[from] png::EncodingError),
}

fn encode(text: &str) -> Result<QrCode, QrRenderError> {
    Ok(QrCode::with_error_correction_level(
        text.as_bytes(),
        EcLevel::M,
    )?)
}

/// The QR code of `text` as a standalone SVG document, black on white.
pub fn render_svg(text: &str) -> Result<String, QrRenderError> {
    Ok(encode(text)?
        .render::<svg::Color<'_>>()
        .module_dimensions(SVG_MODULE, SVG_MODULE)
        .quiet_zone(true)
        .build())
}

/// The QR code of `text` as an 8-bit greyscale PNG, black on white.
pub fn render_png(text: &str) -> Result<Vec<u8>, QrRenderError> {
    let image = encode(text)?
        .render::<Grey>()
        .module_dimensions(PNG_MODULE, PNG_MODULE)
        .quiet_zone(true)
        .build();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&image.pixels)?;
    writer.finish()?;
    Ok(out)
}

/// A greyscale pixel value, so qrcode's renderer (quiet zone, module
/// size) draws into a plain buffer without the `image` crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grey(u8);

/// Rows of `width` greyscale bytes, top to bottom.
#[derive(Debug)]
struct GreyImage {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

struct GreyCanvas {
    image: GreyImage,
    dark: u8,
}

impl Pixel for Grey {
    type Image = GreyImage;
    type Canvas = GreyCanvas;

    fn default_color(color: Color) -> Self {
        Grey(color.select(0, 255))
    }
}

impl Canvas for GreyCanvas {
    type Pixel = Grey;
    type Image = GreyImage;

    fn new(width: u32, height: u32, dark: Grey, light: Grey) -> Self {
        GreyCanvas {
            image: GreyImage {
                width,
                height,
                pixels: vec![light.0; width as usize * height as usize],
            },
            dark: dark.0,
        }
    }

    fn draw_dark_pixel(&mut self, x: u32, y: u32) {
        let index = y as usize * self.image.width as usize + x as usize;
        if let Some(pixel) = self.image.pixels.get_mut(index) {
            *pixel = self.dark;
        }
    }

    fn into_image(self) -> GreyImage {
        self.image
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const URL: &str = "https://line.me/R/ti/p/%40123abcde";

    /// Reads a QR code back from greyscale rows, as a phone camera would.
    pub(crate) fn decode_grey(width: usize, height: usize, pixels: &[u8]) -> Vec<String> {
        let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            pixels[y * width + x]
        });
        prepared
            .detect_grids()
            .into_iter()
            .map(|grid| grid.decode().expect("the QR code decodes").1)
            .collect()
    }

    pub(crate) fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<String>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut buffer = vec![0; reader.output_buffer_size().expect("a sane size")];
        let frame = reader.next_frame(&mut buffer).expect("a PNG frame");
        assert_eq!(frame.color_type, png::ColorType::Grayscale);
        assert_eq!(frame.bit_depth, png::BitDepth::Eight);
        let texts = decode_grey(
            frame.width as usize,
            frame.height as usize,
            &buffer[..frame.buffer_size()],
        );
        (frame.width, frame.height, texts)
    }

    /// Rasterises qrcode's SVG: a white rect, then one path of
    /// `M{x} {y}h{w}v{h}H{x}V{y}` rectangles for the dark modules.
    pub(crate) fn rasterise_svg(svg: &str) -> (usize, usize, Vec<u8>) {
        let attribute = |name: &str| -> usize {
            let start = svg.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
            let end = start + svg[start..].find('"').expect("closing quote");
            svg[start..end].parse().expect("a number")
        };
        let (width, height) = (attribute("width"), attribute("height"));
        let mut pixels = vec![255u8; width * height];
        let path_start = svg.find(" d=\"").expect("a path") + 4;
        let path = &svg[path_start..path_start + svg[path_start..].find('"').expect("end")];
        for rect in path.split('M').filter(|r| !r.is_empty()) {
            let numbers: Vec<usize> = rect
                .split(|c: char| c.is_ascii_alphabetic() || c == ' ')
                .filter(|n| !n.is_empty())
                .map(|n| n.parse().expect("a number"))
                .collect();
            let [x, y, w, h, ..] = numbers[..] else {
                panic!("unexpected path segment {rect:?}");
            };
            for row in y..y + h {
                pixels[row * width + x..row * width + x + w].fill(0);
            }
        }
        (width, height, pixels)
    }

    #[test]
    fn png_decodes_back_to_the_url() {
        let png = render_png(URL).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let (width, height, texts) = decode_png(&png);
        assert_eq!(texts, vec![URL.to_owned()]);
        assert_eq!(width, height);
        // Whole modules, with a quiet zone of 4 on each side.
        let modules = width / PNG_MODULE;
        assert_eq!(modules * PNG_MODULE, width);
        let code = encode(URL).unwrap();
        assert_eq!(modules as usize, code.width() + 8);
    }

    #[test]
    fn svg_decodes_back_to_the_url() {
        let svg = render_svg(URL).unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        let (width, height, pixels) = rasterise_svg(&svg);
        assert_eq!(decode_grey(width, height, &pixels), vec![URL.to_owned()]);
    }

    #[test]
    fn different_texts_give_different_codes_and_medium_correction() {
        let other = "https://line.me/R/ti/p/%40999zzzzz";
        let (_, _, texts) = decode_png(&render_png(other).unwrap());
        assert_eq!(texts, vec![other.to_owned()]);
        assert_ne!(render_svg(URL).unwrap(), render_svg(other).unwrap());
        assert_eq!(encode(URL).unwrap().error_correction_level(), EcLevel::M);
    }

    #[test]
    fn text_beyond_qr_capacity_is_an_error_not_a_panic() {
        let long = "x".repeat(4000);
        assert!(matches!(render_svg(&long), Err(QrRenderError::Encode(_))));
        assert!(matches!(render_png(&long), Err(QrRenderError::Encode(_))));
    }
}
