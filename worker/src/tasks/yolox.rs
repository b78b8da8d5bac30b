//! YOLOX-style detection heads (one output `[1, anchors, 5 + classes]` of
//! `[cx, cy, log w, log h, objectness, class scores…]` on a grid per stride), prepared and
//! decoded as YOLOX's demo code and ddddocr do it:
//!
//! - letterbox: resize to fit `input_size` keeping the aspect ratio (bilinear, half-pixel
//!   centres, no antialiasing — OpenCV's `INTER_LINEAR`), rounded to 8 bits, padded with
//!   `pad_value` at the bottom and right; channels in `channel_order` (`"bgr"` or `"rgb"`),
//!   values 0..255, NCHW float32;
//! - decode: `cx = (out + grid_x) · stride`, `w = exp(out) · stride`, anchors ordered stride
//!   by stride, row-major; score = objectness × best class score;
//! - keep scores above `threshold`, NMS at `iou` with inclusive-pixel areas (class-agnostic,
//!   as ddddocr's `multiclass_nms_class_agnostic`), boxes scaled back to the source image.

use std::collections::{BTreeMap, HashMap};

use image::RgbImage;
use serde::Deserialize;
use wick_shared::Detection;

use super::object_detection::{detection, nchw, nms, values, Candidate, Options, Overlap};
use super::Loaded;
use crate::error::{Result, WickError};

fn strides() -> Vec<usize> {
    vec![8, 16, 32]
}
fn pad_value() -> u8 {
    114
}
fn bgr() -> String {
    "bgr".into()
}
fn threshold() -> f64 {
    0.1
}
fn iou() -> f64 {
    0.45
}

/// The `config.json` of a YOLOX folder (`"detector": "yolox"`).
#[derive(Debug, Deserialize)]
pub struct Config {
    /// `[height, width]` of the model's input.
    pub input_size: [usize; 2],
    #[serde(default = "strides")]
    pub strides: Vec<usize>,
    #[serde(default = "pad_value")]
    pub pad_value: u8,
    #[serde(default = "bgr")]
    pub channel_order: String,
    #[serde(default = "threshold")]
    pub threshold: f64,
    #[serde(default = "iou")]
    pub iou: f64,
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
}

/// Bilinear taps for one axis: for each output, the two inputs and the second one's weight.
fn taps(n_in: usize, n_out: usize) -> Vec<(usize, usize, f64)> {
    (0..n_out)
        .map(|i| {
            let x = ((i as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).clamp(0.0, (n_in - 1) as f64);
            let lo = x.floor() as usize;
            (lo, (lo + 1).min(n_in - 1), x - lo as f64)
        })
        .collect()
}

/// The letterboxed input `[1, 3, H, W]` and the resize ratio.
pub fn letterbox(img: &RgbImage, cfg: &Config) -> Result<(candle_core::Tensor, f64)> {
    let [ih, iw] = cfg.input_size;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let r = (ih as f64 / h as f64).min(iw as f64 / w as f64);
    let (nh, nw) = (((h as f64 * r) as usize).clamp(1, ih), ((w as f64 * r) as usize).clamp(1, iw));
    let order: [usize; 3] = match cfg.channel_order.as_str() {
        "bgr" => [2, 1, 0],
        "rgb" => [0, 1, 2],
        other => return Err(WickError::BadTask(format!("YOLOX config: channel_order '{other}' is not bgr or rgb"))),
    };
    let (ys, xs) = (taps(h, nh), taps(w, nw));
    let px = |x: usize, y: usize, c: usize| img.get_pixel(x as u32, y as u32).0[c] as f64;
    let plane = ih * iw;
    let mut data = vec![cfg.pad_value as f32; 3 * plane];
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
            for (k, &c) in order.iter().enumerate() {
                // Rows first, then columns, rounded half to even: the reference's numpy order.
                let left = px(x0, y0, c) * (1.0 - fy) + px(x0, y1, c) * fy;
                let right = px(x1, y0, c) * (1.0 - fy) + px(x1, y1, c) * fy;
                let v = (left * (1.0 - fx) + right * fx).round_ties_even().clamp(0.0, 255.0);
                data[k * plane + oy * iw + ox] = v as f32;
            }
        }
    }
    Ok((nchw(data, 1, ih, iw)?, r))
}

pub async fn detect(loaded: &Loaded, cfg: &Config, img: &RgbImage, options: Options) -> Result<(Vec<Detection>, u64)> {
    let [ih, iw] = cfg.input_size;
    if ih == 0 || iw == 0 || cfg.strides.is_empty() || cfg.strides.contains(&0) {
        return Err(WickError::BadTask("YOLOX config: input_size and strides must be positive".into()));
    }
    let (x, r) = letterbox(img, cfg)?;
    let input = loaded.model.inputs().first().map(|i| i.name.clone());
    let input = input.ok_or_else(|| WickError::BadTask("the model has no input".into()))?;
    let out = loaded.infer(HashMap::from([(input, x)]), None).await?;
    let first = out.outputs.first().ok_or_else(|| WickError::BadTask("the model has no output".into()))?;
    let (y, dims) = values(&first.1, "YOLOX output")?;

    let anchors: usize = cfg.strides.iter().map(|s| (ih / s) * (iw / s)).sum();
    let (n, row) = match dims.as_slice() {
        [1, n, row] | [n, row] if *row > 5 => (*n, *row),
        _ => return Err(WickError::BadTask(format!("a YOLOX head outputs [1, anchors, 5 + classes], not {dims:?}"))),
    };
    if n != anchors {
        return Err(WickError::BadTask(format!("the model has {n} anchors; input_size and strides give {anchors}")));
    }
    let threshold = options.threshold.map_or(cfg.threshold, f64::from);
    let iou = options.iou.map_or(cfg.iou, f64::from);

    let mut cands = Vec::new();
    let mut a = 0;
    for &s in &cfg.strides {
        for gy in 0..ih / s {
            for gx in 0..iw / s {
                let o = &y[a * row..(a + 1) * row];
                a += 1;
                let obj = o[4] as f64;
                let (class, best) = o[5..]
                    .iter()
                    .enumerate()
                    .map(|(c, &p)| (c, obj * p as f64))
                    .fold((0, f64::NEG_INFINITY), |m, v| if v.1 > m.1 { v } else { m });
                if best <= threshold {
                    continue;
                }
                let s = s as f64;
                let (cx, cy) = ((o[0] as f64 + gx as f64) * s, (o[1] as f64 + gy as f64) * s);
                let (bw, bh) = ((o[2] as f64).exp() * s, (o[3] as f64).exp() * s);
                let b = [(cx - bw / 2.0) / r, (cy - bh / 2.0) / r, (cx + bw / 2.0) / r, (cy + bh / 2.0) / r];
                cands.push(Candidate { b, score: best, class });
            }
        }
    }
    let boxes: Vec<[f64; 4]> = cands.iter().map(|c| c.b).collect();
    let scores: Vec<f64> = cands.iter().map(|c| c.score).collect();
    let objects = nms(&boxes, &scores, iou, Overlap::IouPlusOne)
        .into_iter()
        .map(|i| detection(&cands[i], &cfg.id2label, img.width(), img.height()))
        .collect();
    Ok((objects, out.peak_intermediate_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_pixel_taps_clamp_at_the_edges() {
        // 4 → 2: centres at 1.5 and 3.5 of the input's pixel grid (0.5 between 1 and 2, …).
        assert_eq!(taps(4, 2), vec![(0, 1, 0.5), (2, 3, 0.5)]);
        // 2 → 4: the first output clamps to input 0.
        assert_eq!(taps(2, 4), vec![(0, 1, 0.0), (0, 1, 0.25), (0, 1, 0.75), (1, 1, 0.0)]);
    }

    #[test]
    fn letterbox_keeps_the_aspect_ratio_pads_and_swaps_to_bgr() {
        let cfg: Config = serde_json::from_str(r#"{"input_size": [4, 4]}"#).unwrap();
        let img = RgbImage::from_fn(4, 2, |_, _| image::Rgb([10, 20, 30]));
        let (t, r) = letterbox(&img, &cfg).unwrap();
        assert_eq!((t.dims(), r), (&[1, 3, 4, 4][..], 1.0));
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(&v[0..8], &[30.0; 8], "blue first, image rows");
        assert_eq!(&v[8..16], &[114.0; 8], "padding below");
        assert_eq!(v[16], 20.0);
    }
}
