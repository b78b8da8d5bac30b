//! Handwritten digit recognition from a drawing (an RGBA image, e.g. a canvas' ImageData).
//!
//! Pre-processing reproduces how MNIST digits were made, so that a drawing looks like the
//! training data: ink = darkness over white (alpha-composited), cropped to its bounding box,
//! scaled (antialiased) so the longer side is 20 px, and pasted into a 28×28 field with its
//! centre of mass at the centre; values in [0, 1], ink = 1. The model takes `[1, 1, 28, 28]`
//! and returns ten scores (probabilities, or logits that are soft-maxed here).

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use image::{imageops, ImageBuffer, Luma};
use wick_shared::{Image, TaskInput, TaskOutput};

use super::{probabilities, Loaded, Outcome, Running};
use crate::error::{Result, WickError};

pub const SIDE: usize = 28;
const BOX: f32 = 20.0;
/// Darkness below this is paper, not ink (antialiased stroke edges, JPEG noise).
const INK_THRESHOLD: f32 = 0.1;

/// The 28×28 model input for a drawing, row-major.
pub fn preprocess(img: &Image) -> Result<Vec<f32>> {
    let (w, h) = (img.width as usize, img.height as usize);
    if w == 0 || h == 0 || img.data.len() != w * h * 4 {
        return Err(WickError::BadInput(format!(
            "image of {}×{} needs {} RGBA bytes, got {}",
            w,
            h,
            w * h * 4,
            img.data.len()
        )));
    }
    let ink: Vec<f32> = img
        .data
        .chunks_exact(4)
        .map(|p| {
            let lum = (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0;
            (p[3] as f32 / 255.0) * (1.0 - lum)
        })
        .collect();

    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if ink[y * w + x] > INK_THRESHOLD {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
    }
    if x0 > x1 {
        return Err(WickError::BadInput("the drawing is empty: no ink found".into()));
    }
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop = ImageBuffer::<Luma<f32>, Vec<f32>>::from_fn(cw as u32, ch as u32, |x, y| {
        Luma([ink[(y0 + y as usize) * w + x0 + x as usize]])
    });
    let scale = BOX / cw.max(ch) as f32;
    let nw = ((cw as f32 * scale).round() as u32).clamp(1, BOX as u32);
    let nh = ((ch as f32 * scale).round() as u32).clamp(1, BOX as u32);
    let small = imageops::resize(&crop, nw, nh, imageops::FilterType::Triangle);

    let (mut mass, mut mx, mut my) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y, p) in small.enumerate_pixels() {
        let v = p.0[0].clamp(0.0, 1.0);
        mass += v;
        mx += v * x as f32;
        my += v * y as f32;
    }
    let centre = (SIDE as f32 - 1.0) / 2.0;
    let (cx, cy) = if mass > 0.0 { (mx / mass, my / mass) } else { (nw as f32 / 2.0, nh as f32 / 2.0) };
    let ox = ((centre - cx).round() as i64).clamp(0, (SIDE as u32 - nw) as i64) as usize;
    let oy = ((centre - cy).round() as i64).clamp(0, (SIDE as u32 - nh) as i64) as usize;

    let mut out = vec![0.0f32; SIDE * SIDE];
    for (x, y, p) in small.enumerate_pixels() {
        out[(oy + y as usize) * SIDE + ox + x as usize] = p.0[0].clamp(0.0, 1.0);
    }
    Ok(out)
}

pub fn run(loaded: &Loaded, input: TaskInput) -> Running<'_> {
    Box::pin(answer(loaded, input))
}

async fn answer(loaded: &Loaded, input: TaskInput) -> Result<Outcome> {
    let TaskInput::Digits { image } = input else {
        return Err(WickError::BadTask("not a digits input".into()));
    };
    let model = &loaded.model;
    let pixels = preprocess(&image)?;
    let name = model
        .inputs()
        .first()
        .map(|i| i.name.clone())
        .ok_or_else(|| WickError::BadTask("the model has no input".into()))?;
    let x = Tensor::from_vec(pixels, (1, 1, SIDE, SIDE), &Device::Cpu)
        .map_err(|e| WickError::Internal(e.to_string()))?;
    let out = loaded.infer(HashMap::from([(name, x)]), None).await?;
    let scores = out
        .outputs
        .first()
        .and_then(|(_, t)| t.flatten_all().ok())
        .and_then(|t| t.to_dtype(candle_core::DType::F32).ok())
        .and_then(|t| t.to_vec1::<f32>().ok())
        .filter(|v| v.len() == 10)
        .ok_or_else(|| WickError::BadTask("a digits model must output 10 scores".into()))?;
    let probabilities = probabilities(scores);
    let digit = probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i as u8);
    Ok(Outcome {
        output: TaskOutput::Digits { digit, probabilities },
        peak_intermediate_bytes: out.peak_intermediate_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RGBA image of black ink on white, from a darkness function.
    fn drawing(w: u32, h: u32, ink: impl Fn(u32, u32) -> f32) -> Image {
        let mut data = Vec::with_capacity((w * h * 4) as usize);
        for y in 0..h {
            for x in 0..w {
                let v = (255.0 * (1.0 - ink(x, y))).round() as u8;
                data.extend_from_slice(&[v, v, v, 255]);
            }
        }
        Image { width: w, height: h, data }
    }

    #[test]
    fn a_stroke_anywhere_is_scaled_to_20px_and_centred() {
        // A 40×100 px vertical bar in the top-left corner of a 280×280 canvas.
        let img = drawing(280, 280, |x, y| if (10..50).contains(&x) && (5..105).contains(&y) { 1.0 } else { 0.0 });
        let px = preprocess(&img).unwrap();
        let rows: Vec<usize> = (0..SIDE).filter(|&y| (0..SIDE).any(|x| px[y * SIDE + x] > 0.5)).collect();
        let cols: Vec<usize> = (0..SIDE).filter(|&x| (0..SIDE).any(|y| px[y * SIDE + x] > 0.5)).collect();
        assert_eq!(rows.len(), 20, "longer side becomes 20 px");
        assert_eq!(cols.len(), 8, "aspect ratio kept (40/100 × 20)");
        assert_eq!((rows[0], rows[19]), (4, 23), "vertically centred");
        assert_eq!((cols[0], cols[7]), (10, 17), "horizontally centred");
    }

    #[test]
    fn transparent_pixels_are_paper_and_empty_drawings_are_rejected() {
        let img = Image { width: 4, height: 4, data: vec![0; 64] };
        assert!(matches!(preprocess(&img), Err(WickError::BadInput(_))));
        let bad = Image { width: 4, height: 4, data: vec![0; 10] };
        assert!(matches!(preprocess(&bad), Err(WickError::BadInput(_))));
    }

    #[test]
    fn logits_are_softmaxed_and_distributions_kept() {
        let p = probabilities(vec![0.0; 10]);
        assert!(p.iter().all(|&v| (v - 0.1).abs() < 1e-6));
        let d = vec![0.5, 0.5, 0., 0., 0., 0., 0., 0., 0., 0.];
        assert_eq!(probabilities(d.clone()), d);
    }
}
