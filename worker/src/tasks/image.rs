//! Images for the vision tasks. Decoding (PNG, JPEG, WebP) happens here, in the worker, with the
//! `image` crate rather than the browser's `createImageBitmap`: the pixels are then the same
//! natively and in every browser (no colour management or premultiplied alpha in between), so
//! the native tests vouch for what pages get. Pre-processing follows a Hugging Face
//! `preprocessor_config.json`: resize (Pillow's algorithm, [`super::resample`]), centre crop,
//! rescale, normalise, into an NCHW float tensor; [`Transform`] maps its pixels back to the
//! source image's.

use candle_core::{Device, Tensor};
use image::{imageops::FilterType, DynamicImage, RgbImage};
use serde::Deserialize;
use wick_shared::ImageInput;

use super::resample::{self, Filter};
use crate::error::{Result, WickError};

/// The largest image accepted (pixels), so a hostile file cannot ask for gigabytes.
const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// The RGB pixels of an input image (alpha is dropped, as PIL's `convert("RGB")` does).
pub fn decode(input: &ImageInput) -> Result<RgbImage> {
    match input {
        ImageInput::Pixels(img) => {
            let (w, h) = (img.width, img.height);
            if w == 0 || h == 0 || img.data.len() as u64 != w as u64 * h as u64 * 4 {
                return Err(WickError::BadInput(format!(
                    "an image of {w}×{h} needs {} RGBA bytes, got {}",
                    w as u64 * h as u64 * 4,
                    img.data.len()
                )));
            }
            let rgb = img.data.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
            RgbImage::from_raw(w, h, rgb).ok_or_else(|| WickError::Internal("image buffer size".into()))
        }
        ImageInput::Encoded { bytes } => {
            let format = image::guess_format(bytes)
                .map_err(|_| WickError::BadInput("the image is not a PNG, JPEG or WebP file".into()))?;
            let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
            let mut limits = image::Limits::default();
            limits.max_alloc = Some(MAX_PIXELS * 4);
            reader.limits(limits);
            let img = reader.decode().map_err(|e| WickError::BadInput(format!("cannot decode the image: {e}")))?;
            Ok(img.to_rgb8())
        }
    }
}

/// A size as image processors write it.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
pub struct Size {
    pub shortest_edge: Option<u32>,
    pub longest_edge: Option<u32>,
    pub height: Option<u32>,
    pub width: Option<u32>,
}

fn yes() -> bool {
    true
}
fn bilinear() -> u32 {
    2
}
fn one_255th() -> f32 {
    1.0 / 255.0
}

/// The fields of a Hugging Face `preprocessor_config.json` that Wick applies.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageProcessor {
    #[serde(default = "yes")]
    pub do_resize: bool,
    pub size: Option<Size>,
    /// PIL's filter codes: 0 nearest, 1 Lanczos, 2 bilinear, 3 bicubic.
    #[serde(default = "bilinear")]
    pub resample: u32,
    #[serde(default)]
    pub do_center_crop: bool,
    pub crop_size: Option<Size>,
    #[serde(default = "yes")]
    pub do_rescale: bool,
    #[serde(default = "one_255th")]
    pub rescale_factor: f32,
    #[serde(default = "yes")]
    pub do_normalize: bool,
    pub image_mean: Option<Vec<f32>>,
    pub image_std: Option<Vec<f32>>,
}

/// Where the model's input pixels come from: source `x = (x' + left) / scale_x` (same for y).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    pub scale_x: f32,
    pub scale_y: f32,
    pub left: f32,
    pub top: f32,
}

impl Transform {
    /// A point of the model's input, in the source image's pixels.
    pub fn to_source(&self, x: f32, y: f32) -> (f32, f32) {
        ((x + self.left) / self.scale_x, (y + self.top) / self.scale_y)
    }
}

/// The size an image of `(w, h)` is resized to (Hugging Face's rules, sizes truncated).
pub fn resized_size(w: u32, h: u32, size: &Size) -> Result<(u32, u32)> {
    let (wf, hf) = (w as f64, h as f64);
    let out = match (size.height, size.width, size.shortest_edge, size.longest_edge) {
        (Some(h2), Some(w2), _, _) => (w2, h2),
        (_, _, Some(s), longest) => {
            let (short, long) = (wf.min(hf), wf.max(hf));
            let (mut s_new, mut l_new) = (s as f64, (s as f64 * long / short).floor());
            if let Some(max) = longest {
                if l_new > max as f64 {
                    (s_new, l_new) = ((max as f64 * short / long).floor(), max as f64);
                }
            }
            if w <= h { (s_new as u32, l_new as u32) } else { (l_new as u32, s_new as u32) }
        }
        (_, _, None, Some(l)) => {
            let scale = l as f64 / wf.max(hf);
            ((wf * scale).round() as u32, (hf * scale).round() as u32)
        }
        _ => return Err(WickError::BadTask("preprocessor size names no height/width or edge".into())),
    };
    Ok((out.0.max(1), out.1.max(1)))
}

impl ImageProcessor {
    /// The model input for `img`: `[1, 3, H, W]` float32, and where its pixels come from.
    pub fn prepare(&self, img: &RgbImage) -> Result<(Tensor, Transform)> {
        let (w0, h0) = img.dimensions();
        let mut t = Transform { scale_x: 1.0, scale_y: 1.0, left: 0.0, top: 0.0 };
        let mut img = std::borrow::Cow::Borrowed(img);
        if self.do_resize {
            let size = self.size.ok_or_else(|| WickError::BadTask("do_resize without a size".into()))?;
            let (w, h) = resized_size(w0, h0, &size)?;
            if (w, h) != (w0, h0) {
                img = std::borrow::Cow::Owned(match Filter::from_pil(self.resample) {
                    Some(f) => resample::resize(&img, w, h, f),
                    None => DynamicImage::ImageRgb8(img.into_owned()).resize_exact(w, h, FilterType::Nearest).to_rgb8(),
                });
            }
            (t.scale_x, t.scale_y) = (w as f32 / w0 as f32, h as f32 / h0 as f32);
        }
        let (w, h) = img.dimensions();
        let (mut cw, mut ch, mut left, mut top) = (w, h, 0u32, 0u32);
        if self.do_center_crop {
            let crop = self.crop_size.ok_or_else(|| WickError::BadTask("do_center_crop without a crop_size".into()))?;
            let (Some(ch2), Some(cw2)) = (crop.height, crop.width) else {
                return Err(WickError::BadTask("crop_size needs height and width".into()));
            };
            if cw2 > w || ch2 > h {
                return Err(WickError::BadInput(format!("a {w}×{h} image is smaller than the {cw2}×{ch2} crop")));
            }
            (cw, ch, left, top) = (cw2, ch2, (w - cw2) / 2, (h - ch2) / 2);
            (t.left, t.top) = (left as f32, top as f32);
        }
        let mean = self.image_mean.clone().unwrap_or_else(|| vec![0.0; 3]);
        let std = self.image_std.clone().unwrap_or_else(|| vec![1.0; 3]);
        if mean.len() != 3 || std.len() != 3 || std.contains(&0.0) {
            return Err(WickError::BadTask("image_mean and image_std need 3 non-zero values".into()));
        }
        let rescale = if self.do_rescale { self.rescale_factor } else { 1.0 };
        let plane = (cw * ch) as usize;
        let mut data = vec![0f32; 3 * plane];
        for y in 0..ch {
            for x in 0..cw {
                let p = img.get_pixel(left + x, top + y).0;
                for c in 0..3 {
                    let mut v = p[c] as f32 * rescale;
                    if self.do_normalize {
                        v = (v - mean[c]) / std[c];
                    }
                    data[c * plane + (y * cw + x) as usize] = v;
                }
            }
        }
        let tensor = Tensor::from_vec(data, (1, 3, ch as usize, cw as usize), &Device::Cpu)
            .map_err(|e| WickError::Internal(e.to_string()))?;
        Ok((tensor, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_shared::Image;

    #[test]
    fn shortest_edge_keeps_the_aspect_ratio_and_truncates() {
        let s = Size { shortest_edge: Some(256), ..Default::default() };
        assert_eq!(resized_size(451, 300, &s).unwrap(), (384, 256)); // 256 * 451 / 300 = 384.85
        assert_eq!(resized_size(300, 451, &s).unwrap(), (256, 384));
        let fixed = Size { height: Some(224), width: Some(200), ..Default::default() };
        assert_eq!(resized_size(10, 10, &fixed).unwrap(), (200, 224));
    }

    #[test]
    fn pixels_are_checked_and_alpha_dropped() {
        let img = Image { width: 2, height: 1, data: vec![10, 20, 30, 0, 40, 50, 60, 255] };
        let rgb = decode(&ImageInput::Pixels(img.clone())).unwrap();
        assert_eq!(rgb.into_raw(), [10, 20, 30, 40, 50, 60]);
        let short = Image { data: vec![0; 7], ..img };
        assert!(matches!(decode(&ImageInput::Pixels(short)), Err(WickError::BadInput(_))));
        let junk = ImageInput::Encoded { bytes: b"not an image".to_vec() };
        assert!(matches!(decode(&junk), Err(WickError::BadInput(_))));
    }

    #[test]
    fn crop_rescale_normalise_into_nchw() {
        let img = RgbImage::from_fn(4, 4, |x, y| image::Rgb([(10 * x + y) as u8, 100, 200]));
        let p = ImageProcessor {
            do_resize: false,
            size: None,
            resample: 2,
            do_center_crop: true,
            crop_size: Some(Size { height: Some(2), width: Some(2), ..Default::default() }),
            do_rescale: true,
            rescale_factor: 0.5,
            do_normalize: true,
            image_mean: Some(vec![0.0, 50.0, 0.0]),
            image_std: Some(vec![1.0, 1.0, 2.0]),
        };
        let (t, tr) = p.prepare(&img).unwrap();
        assert_eq!(t.dims(), [1, 3, 2, 2]);
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Red of (1,1), (2,1), (1,2), (2,2) halved; green 100/2 - 50; blue 200/2/2.
        assert_eq!(v, [5.5, 10.5, 6.0, 11.0, 0.0, 0.0, 0.0, 0.0, 50.0, 50.0, 50.0, 50.0]);
        assert_eq!(tr.to_source(0.0, 0.0), (1.0, 1.0));
    }
}
