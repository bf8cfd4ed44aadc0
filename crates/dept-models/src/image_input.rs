//! CLIP's image preprocessing, as transformers' (slow, Pillow-based) `CLIPImageProcessor` does it with the settings
//! of a model folder's `preprocessor_config.json`: convert to RGB, resize (the shortest edge to `size.shortest_edge`,
//! the other to `int(shortest_edge · long / short)`, or to `size.height` × `size.width`), center crop (zero-padding
//! an image smaller than the crop, as transformers), rescale by `rescale_factor` (in fp64, then fp32), normalise with
//! `image_mean` / `image_std` (in fp32), channels first.
//!
//! The resize is Pillow's own resampling (`ImagingResample`, Pillow 13), re-implemented here: separable, horizontal
//! pass then vertical, each pass only where the size changes, filter coefficients computed in f64, normalised, turned
//! into 22-bit fixed point, and the result rounded and clipped to uint8 after each pass. Bicubic (a = -0.5, support 2),
//! bilinear, box, Hamming and Lanczos are supported; nearest (`resample` 0) is refused. The `image` crate's own
//! `CatmullRom` filter is not used: it is the same kernel, but computed in floating point without Pillow's fixed-point
//! coefficients and per-pass uint8 rounding, so it is not byte-identical to transformers' pixels; this one is.
//!
//! Decoding is the `image` crate's (PNG, JPEG), not Pillow's. PNGs decode to the same bytes, and the whole pipeline
//! then gives transformers' pixel values bit for bit (tests/clip_parity.rs). JPEG decoders differ: measured on a
//! generated 30×50 picture saved by Pillow at quality 75, the `image` crate's decoder (zune-jpeg) and Pillow's
//! (libjpeg-turbo) differ by up to 18 uint8 levels at sharp chroma edges with 4:2:0 subsampling (a quarter of the
//! values, mean 0.4 level: their chroma upsampling differs), and by at most 2 levels with 4:4:4. From Pillow's decoded
//! pixels our preprocessing is exact. EXIF orientation is not applied, as by Pillow's `Image.open` and transformers.
//! Colour conversion to RGB:
//! RGBA / LA drop alpha and grey is repeated into three channels, as Pillow's `convert("RGB")`; 16-bit images are
//! scaled to 8 bits by the `image` crate (Pillow truncates or clips them instead: rare for CLIP inputs).

use std::path::Path;

use serde_json::Value;
use tch::{Kind, Tensor};

use crate::ModelError;

pub const PREPROCESSOR_CONFIG_FILE: &str = "preprocessor_config.json";

/// OpenAI CLIP's normalisation, transformers' defaults.
pub const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
pub const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// Pillow's resampling filters, with its numbering (`PIL.Image.Resampling`, the `resample` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    Lanczos = 1,
    Bilinear = 2,
    Bicubic = 3,
    Box = 4,
    Hamming = 5,
}

impl Resample {
    fn support(self) -> f64 {
        match self {
            Resample::Box => 0.5,
            Resample::Bilinear | Resample::Hamming => 1.0,
            Resample::Bicubic => 2.0,
            Resample::Lanczos => 3.0,
        }
    }

    /// Pillow's filter functions, operation for operation.
    fn weight(self, x: f64) -> f64 {
        fn sinc(x: f64) -> f64 {
            if x == 0.0 {
                1.0
            } else {
                let x = x * std::f64::consts::PI;
                x.sin() / x
            }
        }
        match self {
            Resample::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Resample::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Resample::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // Pillow writes the constants as C floats.
                    x.sin() / x * (0.54f32 as f64 + 0.46f32 as f64 * x.cos())
                }
            }
            Resample::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Resample::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `r, g, b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8Image {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Rgb8Image {
    fn at(&self, x: usize, y: usize, c: usize) -> u8 {
        self.pixels[(y * self.width + x) * 3 + c]
    }
}

/// Decodes a PNG or JPEG file and converts it to RGB (see the module documentation for how).
pub fn decode_rgb(path: &Path) -> Result<Rgb8Image, ModelError> {
    let image = decode(path)?;
    Ok(to_rgb(image))
}

fn decode(path: &Path) -> Result<image::DynamicImage, ModelError> {
    let reader = image::ImageReader::open(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    let reader = reader
        .with_guessed_format()
        .map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            cause: source,
        })?;
    reader.decode().map_err(|e| {
        ModelError::Input(format!(
            "{}: not a readable image (PNG and JPEG are supported): {e}",
            path.display()
        ))
    })
}

fn to_rgb(image: image::DynamicImage) -> Rgb8Image {
    let rgb = image.into_rgb8();
    Rgb8Image {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        pixels: rgb.into_raw(),
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis: per output index, the first input index and
/// the 22-bit fixed-point weights.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn coefficients(in_size: usize, out_size: usize, filter: Resample) -> Coefficients {
    // `in1 - in0` is computed in C float, exact for any image size below 2^24.
    let scale = in_size as f32 as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's `(int)` truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let count = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(count) {
            let w = filter.weight(((x + xmin) as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(count) {
            let w = if ww != 0.0 { kx / ww } else { *kx };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            weights[xx * ksize + x] = if w < 0.0 {
                (fixed - 0.5) as i32
            } else {
                (fixed + 0.5) as i32
            };
        }
        bounds.push((xmin, count));
    }
    Coefficients {
        bounds,
        ksize,
        weights,
    }
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize((width, height), resample)` of an RGB image, byte for byte.
pub fn pil_resize(image: &Rgb8Image, width: usize, height: usize, filter: Resample) -> Rgb8Image {
    let mut current = image.clone();
    if width != current.width {
        let co = coefficients(current.width, width, filter);
        let mut out = vec![0u8; width * current.height * 3];
        for y in 0..current.height {
            for (xx, &(xmin, count)) in co.bounds.iter().enumerate() {
                let k = &co.weights[xx * co.ksize..xx * co.ksize + count];
                for c in 0..3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (x, &w) in k.iter().enumerate() {
                        acc += i64::from(current.at(xmin + x, y, c)) * i64::from(w);
                    }
                    out[(y * width + xx) * 3 + c] = clip8(acc);
                }
            }
        }
        current = Rgb8Image {
            width,
            height: current.height,
            pixels: out,
        };
    }
    if height != current.height {
        let co = coefficients(current.height, height, filter);
        let mut out = vec![0u8; current.width * height * 3];
        for (yy, &(ymin, count)) in co.bounds.iter().enumerate() {
            let k = &co.weights[yy * co.ksize..yy * co.ksize + count];
            for x in 0..current.width {
                for c in 0..3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (y, &w) in k.iter().enumerate() {
                        acc += i64::from(current.at(x, ymin + y, c)) * i64::from(w);
                    }
                    out[(yy * current.width + x) * 3 + c] = clip8(acc);
                }
            }
        }
        current = Rgb8Image {
            width: current.width,
            height,
            pixels: out,
        };
    }
    current
}

/// transformers' `center_crop` on uint8 pixels: offsets `(size - crop) // 2`; an image smaller than the crop is
/// first zero-padded to at least the crop's size, centred with `ceil(pad / 2)` before.
fn center_crop(image: &Rgb8Image, crop_height: usize, crop_width: usize) -> Rgb8Image {
    let padded_height = image.height.max(crop_height);
    let padded_width = image.width.max(crop_width);
    let top_pad = (padded_height - image.height).div_ceil(2);
    let left_pad = (padded_width - image.width).div_ceil(2);
    // Python's floor division on a possibly negative difference, shifted by the padding.
    let top = (image.height as i64 - crop_height as i64).div_euclid(2) + top_pad as i64;
    let left = (image.width as i64 - crop_width as i64).div_euclid(2) + left_pad as i64;
    let mut pixels = vec![0u8; crop_height * crop_width * 3];
    for y in 0..crop_height {
        for x in 0..crop_width {
            // Position in the padded image, then in the original.
            let (py, px) = (
                top + y as i64 - top_pad as i64,
                left + x as i64 - left_pad as i64,
            );
            if py >= 0 && px >= 0 && (py as usize) < image.height && (px as usize) < image.width {
                for c in 0..3 {
                    pixels[(y * crop_width + x) * 3 + c] = image.at(px as usize, py as usize, c);
                }
            }
        }
    }
    Rgb8Image {
        width: crop_width,
        height: crop_height,
        pixels,
    }
}

/// The resize target (`size` in `preprocessor_config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeTarget {
    /// The shorter edge to this, the longer one keeping the aspect ratio (rounded down).
    ShortestEdge(usize),
    Exact {
        height: usize,
        width: usize,
    },
}

/// transformers' `CLIPImageProcessor` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipImageProcessor {
    pub do_resize: bool,
    pub size: ResizeTarget,
    pub resample: Resample,
    pub do_center_crop: bool,
    /// `(height, width)`.
    pub crop_size: (usize, usize),
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
    /// Always honoured for RGB inputs; with `false`, a non-RGB image is refused (transformers would give it a
    /// different number of channels, which no CLIP tower takes).
    pub do_convert_rgb: bool,
}

impl Default for ClipImageProcessor {
    /// transformers' defaults (OpenAI CLIP at 224).
    fn default() -> Self {
        ClipImageProcessor {
            do_resize: true,
            size: ResizeTarget::ShortestEdge(224),
            resample: Resample::Bicubic,
            do_center_crop: true,
            crop_size: (224, 224),
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: OPENAI_CLIP_MEAN,
            image_std: OPENAI_CLIP_STD,
            do_convert_rgb: true,
        }
    }
}

/// The keys of a `preprocessor_config.json` value, each read with its rule and its message; `path` names the file
/// in messages.
struct ProcessorFields<'a> {
    path: &'a Path,
    value: &'a Value,
}

impl ProcessorFields<'_> {
    fn bad(&self, message: String) -> ModelError {
        ModelError::Config {
            path: self.path.to_path_buf(),
            message,
        }
    }

    /// The value at `key`, `None` where it is absent or `null` (both mean "the default").
    fn get(&self, key: &str) -> Option<&Value> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    /// `image_processor_type` and the older `feature_extractor_type`, where given, must name CLIP's.
    fn check_processor_type(&self) -> Result<(), ModelError> {
        for key in ["image_processor_type", "feature_extractor_type"] {
            if let Some(kind) = self.value.get(key).and_then(Value::as_str) {
                if !kind.contains("CLIP") {
                    return Err(self.bad(format!(
                        "`{key}` is {kind:?}: only CLIP's image processor (CLIPImageProcessor) is implemented"
                    )));
                }
            }
        }
        Ok(())
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, ModelError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.bad(format!("`{key}` must be true or false, found {other}"))),
        }
    }

    fn positive(&self, key: &str, v: &Value) -> Result<usize, ModelError> {
        v.as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| self.bad(format!("`{key}` must be a positive integer, found {v}")))
    }

    /// `size` (an integer is the shortest edge, as transformers' `get_size_dict(int, default_to_square=False)`),
    /// made square by `use_square_size`.
    fn size(&self, default: ResizeTarget) -> Result<ResizeTarget, ModelError> {
        let size = match self.get("size") {
            None => default,
            Some(v @ Value::Number(_)) => ResizeTarget::ShortestEdge(self.positive("size", v)?),
            Some(Value::Object(map)) => self.size_object(map)?,
            Some(other) => {
                return Err(self.bad(format!(
                    "`size` must be an integer or an object, found {other}"
                )))
            }
        };
        let square = self.value.get("use_square_size").and_then(Value::as_bool) == Some(true);
        Ok(match size {
            ResizeTarget::ShortestEdge(edge) if square => ResizeTarget::Exact {
                height: edge,
                width: edge,
            },
            other => other,
        })
    }

    fn size_object(
        &self,
        map: &serde_json::Map<String, Value>,
    ) -> Result<ResizeTarget, ModelError> {
        if let Some(edge) = map.get("shortest_edge") {
            // CLIP's resize reads `shortest_edge` only (a `longest_edge` beside it is ignored).
            Ok(ResizeTarget::ShortestEdge(
                self.positive("size.shortest_edge", edge)?,
            ))
        } else if let (Some(h), Some(w)) = (map.get("height"), map.get("width")) {
            Ok(ResizeTarget::Exact {
                height: self.positive("size.height", h)?,
                width: self.positive("size.width", w)?,
            })
        } else {
            Err(self.bad(format!(
                "`size` must hold `shortest_edge`, or `height` and `width`, found {}",
                Value::Object(map.clone())
            )))
        }
    }

    /// `crop_size` as `(height, width)`; an integer is a square.
    fn crop_size(&self, default: (usize, usize)) -> Result<(usize, usize), ModelError> {
        match self.get("crop_size") {
            None => Ok(default),
            Some(v @ Value::Number(_)) => {
                let n = self.positive("crop_size", v)?;
                Ok((n, n))
            }
            Some(Value::Object(map)) => match (map.get("height"), map.get("width")) {
                (Some(h), Some(w)) => Ok((
                    self.positive("crop_size.height", h)?,
                    self.positive("crop_size.width", w)?,
                )),
                _ => Err(self.bad(format!(
                    "`crop_size` must hold `height` and `width`, found {}",
                    Value::Object(map.clone())
                ))),
            },
            Some(other) => Err(self.bad(format!(
                "`crop_size` must be an integer or an object, found {other}"
            ))),
        }
    }

    /// `resample`, Pillow's filter number; nearest (0) is refused, as only the convolution filters are implemented.
    fn resample(&self, default: Resample) -> Result<Resample, ModelError> {
        let Some(v) = self.get("resample") else {
            return Ok(default);
        };
        match v.as_u64() {
            Some(1) => Ok(Resample::Lanczos),
            Some(2) => Ok(Resample::Bilinear),
            Some(3) => Ok(Resample::Bicubic),
            Some(4) => Ok(Resample::Box),
            Some(5) => Ok(Resample::Hamming),
            Some(0) => Err(self.bad(
                "`resample` 0 (nearest) is not implemented: only Pillow's convolution filters are \
                 (1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)"
                    .into(),
            )),
            _ => Err(self.bad(format!(
                "`resample` must be a Pillow filter number (1 lanczos, 2 bilinear, 3 bicubic, 4 box, \
                 5 hamming), found {v}"
            ))),
        }
    }

    fn rescale_factor(&self, default: f64) -> Result<f64, ModelError> {
        match self.get("rescale_factor") {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| self.bad(format!("`rescale_factor` must be a number, found {v}"))),
        }
    }

    /// A number for every RGB channel, or a list of 3 (`image_mean`, `image_std`).
    fn per_channel(&self, key: &str, default: [f64; 3]) -> Result<[f64; 3], ModelError> {
        let wrong = |v: &Value| {
            self.bad(format!(
                "`{key}` must be a number or a list of 3 numbers (one per RGB channel), found {v}"
            ))
        };
        match self.get(key) {
            None => Ok(default),
            Some(v @ Value::Number(_)) => {
                let x = v.as_f64().ok_or_else(|| wrong(v))?;
                Ok([x; 3])
            }
            Some(v @ Value::Array(items)) if items.len() == 3 => {
                let mut out = [0.0; 3];
                for (o, item) in out.iter_mut().zip(items) {
                    *o = item.as_f64().ok_or_else(|| wrong(v))?;
                }
                Ok(out)
            }
            Some(v) => Err(wrong(v)),
        }
    }
}

impl ClipImageProcessor {
    /// The settings of `<dir>/preprocessor_config.json`, or transformers' defaults where the file is absent.
    pub fn from_model_dir(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(PREPROCESSOR_CONFIG_FILE);
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            cause: source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: path.clone(),
            message: format!("not valid JSON: {e}"),
        })?;
        Self::from_json(&path, &value)
    }

    /// Parses a `preprocessor_config.json` value; `path` is only used in messages. Keys left out take
    /// transformers' defaults.
    pub fn from_json(path: &Path, value: &Value) -> Result<Self, ModelError> {
        let fields = ProcessorFields { path, value };
        if !value.is_object() {
            return Err(fields.bad("expected a JSON object".into()));
        }
        fields.check_processor_type()?;
        let defaults = Self::default();
        let do_resize = fields.flag("do_resize", defaults.do_resize)?;
        let do_center_crop = fields.flag("do_center_crop", defaults.do_center_crop)?;
        let do_rescale = fields.flag("do_rescale", defaults.do_rescale)?;
        let do_normalize = fields.flag("do_normalize", defaults.do_normalize)?;
        let do_convert_rgb = fields.flag("do_convert_rgb", defaults.do_convert_rgb)?;
        let size = fields.size(defaults.size)?;
        let crop_size = fields.crop_size(defaults.crop_size)?;
        let resample = fields.resample(defaults.resample)?;
        let rescale_factor = fields.rescale_factor(defaults.rescale_factor)?;
        let image_mean = fields.per_channel("image_mean", defaults.image_mean)?;
        let image_std = fields.per_channel("image_std", defaults.image_std)?;
        if do_normalize && image_std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
            return Err(fields.bad(format!(
                "`image_std` must be non-zero numbers, found {image_std:?}"
            )));
        }
        Ok(ClipImageProcessor {
            do_resize,
            size,
            resample,
            do_center_crop,
            crop_size,
            do_rescale,
            rescale_factor,
            do_normalize,
            image_mean,
            image_std,
            do_convert_rgb,
        })
    }

    /// The `[height, width]` of [`ClipImageProcessor::preprocess`]'s output for an image of this size.
    pub fn output_size(&self, height: usize, width: usize) -> (usize, usize) {
        let (h, w) = self.resized_size(height, width);
        if self.do_center_crop {
            self.crop_size
        } else {
            (h, w)
        }
    }

    /// transformers' `get_resize_output_image_size`.
    fn resized_size(&self, height: usize, width: usize) -> (usize, usize) {
        if !self.do_resize {
            return (height, width);
        }
        match self.size {
            ResizeTarget::Exact { height, width } => (height, width),
            ResizeTarget::ShortestEdge(edge) => {
                let (short, long) = if width <= height {
                    (width, height)
                } else {
                    (height, width)
                };
                // `int(size * long / short)`: an exact integer product, one float division, truncation.
                let new_long = ((edge * long) as f64 / short as f64) as usize;
                if width <= height {
                    (new_long, edge)
                } else {
                    (edge, new_long)
                }
            }
        }
    }

    /// The uint8 image after resize and center crop (before rescaling and normalisation).
    pub fn resize_and_crop(&self, image: &Rgb8Image) -> Rgb8Image {
        let (h, w) = self.resized_size(image.height, image.width);
        let resized = if (h, w) == (image.height, image.width) {
            image.clone()
        } else {
            pil_resize(image, w, h, self.resample)
        };
        if self.do_center_crop {
            center_crop(&resized, self.crop_size.0, self.crop_size.1)
        } else {
            resized
        }
    }

    /// An RGB image → `[3, H, W]` fp32 pixel values.
    pub fn preprocess_rgb(&self, image: &Rgb8Image) -> Result<Tensor, ModelError> {
        if image.width == 0 || image.height == 0 {
            return Err(ModelError::Input(format!(
                "an image of {}x{} pixels cannot be preprocessed",
                image.width, image.height
            )));
        }
        let cropped = self.resize_and_crop(image);
        let (h, w) = (cropped.height, cropped.width);
        let mut values = vec![0f32; 3 * h * w];
        for c in 0..3 {
            // numpy: `mean`/`std` as fp32 arrays, `(image - mean) / std` in fp32.
            let (mean, std) = (self.image_mean[c] as f32, self.image_std[c] as f32);
            for y in 0..h {
                for x in 0..w {
                    let v = cropped.at(x, y, c);
                    let mut f = if self.do_rescale {
                        // `image.astype(float64) * scale`, then `.astype(float32)`.
                        (f64::from(v) * self.rescale_factor) as f32
                    } else {
                        f32::from(v)
                    };
                    if self.do_normalize {
                        f = (f - mean) / std;
                    }
                    values[(c * h + y) * w + x] = f;
                }
            }
        }
        Ok(Tensor::from_slice(&values).view([3, h as i64, w as i64]))
    }

    /// Reads a PNG or JPEG file → `[3, H, W]` fp32 pixel values. An unreadable or unsupported file is an error
    /// naming it.
    pub fn preprocess(&self, path: &Path) -> Result<Tensor, ModelError> {
        let image = decode(path)?;
        if !self.do_convert_rgb && image.color() != image::ColorType::Rgb8 {
            return Err(ModelError::Input(format!(
                "{}: the image is {:?}, not 8-bit RGB, and `do_convert_rgb` is false",
                path.display(),
                image.color()
            )));
        }
        self.preprocess_rgb(&to_rgb(image))
            .map_err(|e| ModelError::Input(format!("{}: {e}", path.display())))
    }

    /// Several files → `[n, 3, H, W]`; they must come out the same size (always so with a center crop).
    pub fn preprocess_batch<P: AsRef<Path>>(&self, paths: &[P]) -> Result<Tensor, ModelError> {
        if paths.is_empty() {
            return Err(ModelError::Input("no images to preprocess".into()));
        }
        let mut tensors = Vec::with_capacity(paths.len());
        for path in paths {
            let t = self.preprocess(path.as_ref())?;
            if let Some(first) = tensors.first().map(Tensor::size) {
                if t.size() != first {
                    return Err(ModelError::Input(format!(
                        "{}: preprocessed to {:?}, the first image to {first:?}; a batch needs one size (set \
                         `do_center_crop`)",
                        path.as_ref().display(),
                        t.size()
                    )));
                }
            }
            tensors.push(t);
        }
        Ok(Tensor::stack(&tensors, 0).to_kind(Kind::Float))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: usize, height: usize) -> Rgb8Image {
        let mut pixels = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                pixels.extend([
                    (x * 37 % 256) as u8,
                    (y * 11 % 256) as u8,
                    ((x ^ y) * 29 % 256) as u8,
                ]);
            }
        }
        Rgb8Image {
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn clip_preprocess_sizes_follow_transformers() {
        let p = ClipImageProcessor::default();
        // int(224 * 50 / 30) = 373.
        assert_eq!(p.resized_size(50, 30), (373, 224));
        assert_eq!(p.resized_size(37, 45), (224, 272));
        assert_eq!(p.output_size(37, 45), (224, 224));
        let out = p.preprocess_rgb(&gradient(45, 37)).unwrap();
        assert_eq!(out.size(), [3, 224, 224]);
    }

    #[test]
    fn clip_pil_resize_keeps_constant_images_and_weights_sum_to_one() {
        let flat = Rgb8Image {
            width: 7,
            height: 5,
            pixels: vec![200; 7 * 5 * 3],
        };
        for filter in [
            Resample::Bicubic,
            Resample::Bilinear,
            Resample::Lanczos,
            Resample::Box,
            Resample::Hamming,
        ] {
            for (w, h) in [(3, 2), (16, 11), (7, 9)] {
                let out = pil_resize(&flat, w, h, filter);
                assert!(out.pixels.iter().all(|&v| v == 200), "{filter:?} {w}x{h}");
            }
        }
    }

    #[test]
    fn clip_center_crop_pads_small_images_with_zeros() {
        let image = gradient(3, 2);
        let crop = center_crop(&image, 4, 5);
        // Padded by ceil(2/2) = 1 on the left, ceil(2/2) = 1 on top.
        assert_eq!(crop.at(0, 0, 0), 0);
        assert_eq!(crop.at(1, 1, 0), image.at(0, 0, 0));
        assert_eq!(crop.at(3, 2, 2), image.at(2, 1, 2));
        assert_eq!(crop.at(4, 3, 1), 0);
    }

    #[test]
    fn clip_preprocessor_config_keys() {
        let path = Path::new("preprocessor_config.json");
        let p = ClipImageProcessor::from_json(
            path,
            &serde_json::json!({"size": 32, "crop_size": 30, "image_mean": 0.5, "resample": 2}),
        )
        .unwrap();
        assert_eq!(p.size, ResizeTarget::ShortestEdge(32));
        assert_eq!(p.crop_size, (30, 30));
        assert_eq!(p.image_mean, [0.5; 3]);
        assert_eq!(p.resample, Resample::Bilinear);
        let e = ClipImageProcessor::from_json(path, &serde_json::json!({"resample": 0}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`resample` 0 (nearest)"), "{e}");
        let e = ClipImageProcessor::from_json(
            path,
            &serde_json::json!({"image_processor_type": "SiglipImageProcessor"}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("SiglipImageProcessor"), "{e}");
        let e = ClipImageProcessor::from_json(path, &serde_json::json!({"image_std": [1, 2]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`image_std`"), "{e}");
    }

    #[test]
    fn clip_rgba_drops_alpha_as_pillow_convert() {
        // Pillow's convert("RGB") of RGBA keeps r, g, b and drops alpha (no compositing).
        let rgba =
            image::RgbaImage::from_raw(2, 1, vec![10, 20, 30, 0, 200, 100, 50, 128]).unwrap();
        let rgb = to_rgb(image::DynamicImage::ImageRgba8(rgba));
        assert_eq!(rgb.pixels, [10, 20, 30, 200, 100, 50]);
        let grey = image::GrayImage::from_raw(1, 1, vec![77]).unwrap();
        assert_eq!(
            to_rgb(image::DynamicImage::ImageLuma8(grey)).pixels,
            [77, 77, 77]
        );
    }
}
