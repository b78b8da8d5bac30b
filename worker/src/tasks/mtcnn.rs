//! MTCNN face detection (Zhang et al. 2016), as facenet-pytorch's `detect_face` runs it: one
//! graph holds the three nets side by side (`pnet_input` → `pnet_reg`, `pnet_prob`;
//! `rnet_input` → `rnet_reg`, `rnet_prob`; `onet_input` → `onet_reg`, `onet_prob`), and each
//! stage asks the engine for one net's outputs, which runs only that net.
//!
//! 1. P-Net on an image pyramid (smallest face `min_face_size`, scale step `factor`, each level
//!    area-resampled): every 12×12 window scoring ≥ `thresholds[0]` is a candidate; NMS (IoU 0.5)
//!    per level, then 0.7 over all, regression, squared.
//! 2. R-Net on 24×24 crops: score > `thresholds[1]`, NMS 0.7, regression, squared.
//! 3. O-Net on 48×48 crops: score > `thresholds[2]` (or the request's `threshold`), regression,
//!    then NMS over the smaller box's area at `final_nms` (or the request's `iou`).
//!
//! Pixels are normalised as `(x − 127.5) / 128`. Crops follow facenet-pytorch's `pad`: box
//! corners truncated to integers, clipped to the image; a candidate whose crop is empty is
//! dropped.

use std::collections::{BTreeMap, HashMap};

use image::RgbImage;
use serde::Deserialize;
use wick_shared::Detection;

use super::object_detection::{detection, nchw, nms, values, Candidate, Options, Overlap};
use super::Loaded;
use crate::error::{Result, WickError};

fn min_face() -> f64 {
    20.0
}
fn factor() -> f64 {
    0.709
}
fn thresholds() -> [f64; 3] {
    [0.6, 0.7, 0.7]
}
fn final_nms() -> f64 {
    0.7
}

/// The `config.json` of an MTCNN folder (`"detector": "mtcnn"`).
#[derive(Debug, Deserialize)]
pub struct Config {
    #[serde(default = "min_face")]
    pub min_face_size: f64,
    #[serde(default = "factor")]
    pub factor: f64,
    #[serde(default = "thresholds")]
    pub thresholds: [f64; 3],
    #[serde(default = "final_nms")]
    pub final_nms: f64,
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
}

/// An image as float planes `[3][h][w]`, 0..255.
struct Planes {
    data: Vec<f32>,
    w: usize,
    h: usize,
}

impl Planes {
    fn of(img: &RgbImage) -> Planes {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut data = vec![0f32; 3 * w * h];
        for (i, p) in img.pixels().enumerate() {
            for c in 0..3 {
                data[c * w * h + i] = p.0[c] as f32;
            }
        }
        Planes { data, w, h }
    }

    /// The rectangle `[x0, x1) × [y0, y1)` resized to `ow × oh` by area averaging (torch's
    /// `interpolate(mode="area")`, i.e. adaptive average pooling), then normalised, appended
    /// to `out` as three planes.
    fn area_into(&self, (x0, x1, y0, y1): (usize, usize, usize, usize), ow: usize, oh: usize, out: &mut Vec<f32>) {
        let (cw, ch) = (x1 - x0, y1 - y0);
        let xs = spans(cw, ow);
        let ys = spans(ch, oh);
        let mut rows = vec![0f32; ch * ow];
        for c in 0..3 {
            let plane = &self.data[c * self.w * self.h..(c + 1) * self.w * self.h];
            for y in 0..ch {
                let line = &plane[(y0 + y) * self.w + x0..(y0 + y) * self.w + x1];
                for (o, &(a, b)) in xs.iter().enumerate() {
                    rows[y * ow + o] = line[a..b].iter().sum::<f32>() / (b - a) as f32;
                }
            }
            for &(a, b) in &ys {
                for o in 0..ow {
                    let sum: f32 = (a..b).map(|y| rows[y * ow + o]).sum();
                    out.push((sum / (b - a) as f32 - 127.5) * 0.0078125);
                }
            }
        }
    }
}

/// Adaptive pooling windows: output `i` averages inputs `[floor(i·n/m), ceil((i+1)·n/m))`.
fn spans(n: usize, m: usize) -> Vec<(usize, usize)> {
    (0..m).map(|i| (i * n / m, ((i + 1) * n).div_ceil(m))).collect()
}

/// P-Net's input for one pyramid level: the image area-resampled to `⌊size · scale + 1⌋`.
fn level(planes: &Planes, scale: f64) -> Result<candle_core::Tensor> {
    let (w, h) = (planes.w, planes.h);
    let (oh, ow) = ((h as f64 * scale + 1.0) as usize, (w as f64 * scale + 1.0) as usize);
    let mut x = Vec::with_capacity(3 * oh * ow);
    planes.area_into((0, w, 0, h), ow, oh, &mut x);
    nchw(x, 1, oh, ow)
}

/// P-Net's input at the pyramid's first (largest) level, for the parity tests.
pub fn first_level(img: &RgbImage, cfg: &Config) -> Result<Option<candle_core::Tensor>> {
    let planes = Planes::of(img);
    scales(planes.w, planes.h, cfg).first().map(|&s| level(&planes, s)).transpose()
}

/// The pyramid's scales: the first maps `min_face_size` to P-Net's 12 px window.
fn scales(w: usize, h: usize, cfg: &Config) -> Vec<f64> {
    let m = 12.0 / cfg.min_face_size;
    let (mut minl, mut scale, mut out) = (w.min(h) as f64 * m, m, Vec::new());
    while minl >= 12.0 {
        out.push(scale);
        scale *= cfg.factor;
        minl *= cfg.factor;
    }
    out
}

/// A candidate with its box regression (`reg`, relative to the box size).
#[derive(Clone, Copy)]
struct Cand {
    b: [f64; 4],
    score: f64,
    reg: [f64; 4],
}

fn pick(cands: &[Cand], threshold: f64, overlap: Overlap) -> Vec<Cand> {
    let boxes: Vec<[f64; 4]> = cands.iter().map(|c| c.b).collect();
    let scores: Vec<f64> = cands.iter().map(|c| c.score).collect();
    nms(&boxes, &scores, threshold, overlap).into_iter().map(|i| cands[i]).collect()
}

/// Make the box a square on its centre, side = its longer side.
fn square(b: [f64; 4]) -> [f64; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let l = w.max(h);
    let (x1, y1) = (b[0] + w * 0.5 - l * 0.5, b[1] + h * 0.5 - l * 0.5);
    [x1, y1, x1 + l, y1 + l]
}

/// Apply a refinement net's regression (inclusive pixel sizes).
fn regress(b: [f64; 4], reg: [f64; 4]) -> [f64; 4] {
    let (w, h) = (b[2] - b[0] + 1.0, b[3] - b[1] + 1.0);
    [b[0] + reg[0] * w, b[1] + reg[1] * h, b[2] + reg[2] * w, b[3] + reg[3] * h]
}

/// The candidates' crops resized to `size`, as one NCHW batch; candidates with an empty crop
/// are dropped from `cands`.
fn crops(img: &Planes, cands: &mut Vec<Cand>, size: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(cands.len() * 3 * size * size);
    cands.retain(|c| {
        let t = |v: f64| v.trunc() as i64;
        let (x, y) = (t(c.b[0]).max(1), t(c.b[1]).max(1));
        let (ex, ey) = (t(c.b[2]).min(img.w as i64), t(c.b[3]).min(img.h as i64));
        if ey < y || ex < x {
            return false;
        }
        img.area_into(((x - 1) as usize, ex as usize, (y - 1) as usize, ey as usize), size, size, &mut out);
        true
    });
    out
}

/// An output's values and dims.
type Values = (Vec<f32>, Vec<usize>);

/// Run one net: feed `input`, fetch `outputs`; also returns the run's peak bytes.
async fn net(loaded: &Loaded, input: &str, x: candle_core::Tensor, outputs: &[&str]) -> Result<(Vec<Values>, u64)> {
    let wanted: Vec<String> = outputs.iter().map(|s| s.to_string()).collect();
    let out = loaded.infer(HashMap::from([(input.to_string(), x)]), Some(&wanted)).await?;
    let mut got = Vec::new();
    for name in outputs {
        let t = out.outputs.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        let t = t.ok_or_else(|| WickError::BadTask(format!("MTCNN model: no output '{name}'")))?;
        got.push(values(t, name)?);
    }
    Ok((got, out.peak_intermediate_bytes))
}

/// Check a refinement net's outputs: `[n, 4]` regression and `[n, 2]` probabilities.
fn rows(out: &[Values], n: usize, what: &str) -> Result<()> {
    if out[0].1 != [n, 4] || out[1].1 != [n, 2] {
        return Err(WickError::BadTask(format!("{what} outputs {:?} and {:?}, expected [{n}, 4] and [{n}, 2]", out[0].1, out[1].1)));
    }
    Ok(())
}

pub async fn detect(loaded: &Loaded, cfg: &Config, img: &RgbImage, options: Options) -> Result<(Vec<Detection>, u64)> {
    if !(cfg.factor > 0.0 && cfg.factor < 1.0 && cfg.min_face_size >= 12.0) {
        return Err(WickError::BadTask("MTCNN config: factor must be in (0, 1) and min_face_size at least 12".into()));
    }
    let planes = Planes::of(img);
    let (w, h) = (planes.w, planes.h);
    let [t1, t2, t3] = cfg.thresholds;
    let t3 = options.threshold.map_or(t3, f64::from);
    let final_nms = options.iou.map_or(cfg.final_nms, f64::from);
    let mut peak = 0;

    // Stage 1: P-Net over the pyramid.
    let mut cands: Vec<Cand> = Vec::new();
    for scale in scales(w, h, cfg) {
        let (out, p) = net(loaded, "pnet_input", level(&planes, scale)?, &["pnet_reg", "pnet_prob"]).await?;
        peak = peak.max(p);
        let [(reg, rd), (prob, pd)] = &out[..] else { unreachable!("two outputs asked") };
        let (gh, gw) = match (rd.as_slice(), pd.as_slice()) {
            ([1, 4, gh, gw], [1, 2, gh2, gw2]) if (gh, gw) == (gh2, gw2) => (*gh, *gw),
            _ => return Err(WickError::BadTask(format!("P-Net outputs {rd:?} and {pd:?}"))),
        };
        let plane = gh * gw;
        let mut level = Vec::new();
        for y in 0..gh {
            for x in 0..gw {
                let score = prob[plane + y * gw + x] as f64;
                if score < t1 {
                    continue;
                }
                let (xf, yf) = (x as f64, y as f64);
                let b = [
                    ((2.0 * xf + 1.0) / scale).floor(),
                    ((2.0 * yf + 1.0) / scale).floor(),
                    ((2.0 * xf + 12.0) / scale).floor(),
                    ((2.0 * yf + 12.0) / scale).floor(),
                ];
                let reg = std::array::from_fn(|k| reg[k * plane + y * gw + x] as f64);
                level.push(Cand { b, score, reg });
            }
        }
        cands.extend(pick(&level, 0.5, Overlap::Iou));
    }
    let mut cands: Vec<Cand> = pick(&cands, 0.7, Overlap::Iou)
        .into_iter()
        .map(|c| {
            let (rw, rh) = (c.b[2] - c.b[0], c.b[3] - c.b[1]);
            let b = [c.b[0] + c.reg[0] * rw, c.b[1] + c.reg[1] * rh, c.b[2] + c.reg[2] * rw, c.b[3] + c.reg[3] * rh];
            Cand { b: square(b), ..c }
        })
        .collect();

    // Stage 2: R-Net on 24×24 crops.
    let x = crops(&planes, &mut cands, 24);
    if !cands.is_empty() {
        let n = cands.len();
        let (out, p) = net(loaded, "rnet_input", nchw(x, n, 24, 24)?, &["rnet_reg", "rnet_prob"]).await?;
        peak = peak.max(p);
        rows(&out, n, "R-Net")?;
        let kept: Vec<Cand> = (0..n)
            .filter(|&i| out[1].0[2 * i + 1] as f64 > t2)
            .map(|i| Cand {
                b: cands[i].b,
                score: out[1].0[2 * i + 1] as f64,
                reg: std::array::from_fn(|k| out[0].0[4 * i + k] as f64),
            })
            .collect();
        cands = pick(&kept, 0.7, Overlap::Iou).into_iter().map(|c| Cand { b: square(regress(c.b, c.reg)), ..c }).collect();
    }

    // Stage 3: O-Net on 48×48 crops.
    let x = crops(&planes, &mut cands, 48);
    let mut faces = Vec::new();
    if !cands.is_empty() {
        let n = cands.len();
        let (out, p) = net(loaded, "onet_input", nchw(x, n, 48, 48)?, &["onet_reg", "onet_prob"]).await?;
        peak = peak.max(p);
        rows(&out, n, "O-Net")?;
        let kept: Vec<Cand> = (0..n)
            .filter(|&i| out[1].0[2 * i + 1] as f64 > t3)
            .map(|i| {
                let reg = std::array::from_fn(|k| out[0].0[4 * i + k] as f64);
                Cand { b: regress(cands[i].b, reg), score: out[1].0[2 * i + 1] as f64, reg }
            })
            .collect();
        faces = pick(&kept, final_nms, Overlap::MinPlusOne);
    }
    let objects = faces
        .iter()
        .map(|c| detection(&Candidate { b: c.b, score: c.score, class: 0 }, &cfg.id2label, w as u32, h as u32))
        .map(|mut d| {
            if cfg.id2label.is_empty() {
                d.label = "face".into();
            }
            d
        })
        .collect();
    Ok((objects, peak))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_spans_follow_adaptive_pooling() {
        assert_eq!(spans(5, 2), vec![(0, 3), (2, 5)]);
        assert_eq!(spans(4, 2), vec![(0, 2), (2, 4)]);
        assert_eq!(spans(2, 3), vec![(0, 1), (0, 2), (1, 2)]);
    }

    #[test]
    fn pyramid_of_a_512_px_image() {
        let cfg = Config { min_face_size: 20.0, factor: 0.709, thresholds: thresholds(), final_nms: 0.7, id2label: BTreeMap::new() };
        let s = scales(512, 512, &cfg);
        assert_eq!(s.len(), 10);
        assert_eq!(s[0], 0.6);
        assert_eq!((512.0 * s[9] + 1.0) as usize, 14);
    }

    #[test]
    fn area_resample_averages_and_normalises() {
        let img = RgbImage::from_fn(4, 2, |x, y| image::Rgb([(x * 10 + y * 100) as u8, 0, 255]));
        let planes = Planes::of(&img);
        let mut out = Vec::new();
        planes.area_into((1, 3, 0, 2), 1, 1, &mut out);
        let n = |v: f32| (v - 127.5) * 0.0078125;
        assert_eq!(out, vec![n(65.0), n(0.0), n(255.0)]); // mean of 10, 20, 110, 120
    }

    #[test]
    fn squares_and_regression() {
        assert_eq!(square([0.0, 0.0, 10.0, 20.0]), [-5.0, 0.0, 15.0, 20.0]);
        assert_eq!(regress([0.0, 0.0, 9.0, 9.0], [0.1, -0.1, 0.0, 0.5]), [1.0, -1.0, 9.0, 14.0]);
    }
}
