//! Image resizing exactly as Pillow does it (`Image.resize` on 8-bit images): separable
//! convolution with the filter widened by the scale when shrinking (antialiasing), fixed-point
//! weights with 22 fractional bits, a horizontal pass rounded to 8 bits, then a vertical one.
//! Hugging Face image processors resize with Pillow, so matching it bit for bit means a model
//! sees the pixels it was evaluated with — on an ambiguous photo, one level of difference can
//! reorder the top classes.

use image::RgbImage;

/// Pillow's resampling filters (its codes in `preprocessor_config.json`'s `resample`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Lanczos,
    Bilinear,
    Bicubic,
    Box,
    Hamming,
}

impl Filter {
    /// Pillow's code (1 Lanczos, 2 bilinear, 3 bicubic, 4 box, 5 Hamming); 0 (nearest) is not
    /// a convolution and has no filter.
    pub fn from_pil(code: u32) -> Option<Filter> {
        Some(match code {
            1 => Filter::Lanczos,
            2 => Filter::Bilinear,
            3 => Filter::Bicubic,
            4 => Filter::Box,
            5 => Filter::Hamming,
            _ => return None,
        })
    }

    fn support(self) -> f64 {
        match self {
            Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let sinc = |x: f64| if x == 0.0 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
        match self {
            Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => (1.0 - x.abs()).max(0.0),
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    sinc(x) * (0.54 + 0.46 * (std::f64::consts::PI * x).cos())
                }
            }
            Filter::Bicubic => {
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
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output pixel: the first input pixel and the fixed-point weights of the run.
fn coefficients(in_size: u32, out_size: u32, filter: Filter) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // Pillow truncates toward zero here (C casts).
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax).map(|x| filter.weight((x as f64 - center + 0.5) * ss)).collect();
            let total: f64 = w.iter().sum();
            let fixed = w
                .iter()
                .map(|&k| {
                    let k = if total != 0.0 { k / total } else { k };
                    let r = if k < 0.0 { -0.5 } else { 0.5 };
                    (k * (1u32 << PRECISION_BITS) as f64 + r) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// `img` resized to `w × h` with `filter`, as Pillow's `Image.resize` does.
pub fn resize(img: &RgbImage, w: u32, h: u32, filter: Filter) -> RgbImage {
    let (w0, h0) = img.dimensions();
    let src = img.as_raw();
    let round = 1i64 << (PRECISION_BITS - 1);
    // Horizontal pass (Pillow skips a pass whose size does not change).
    let mid: Vec<u8> = if w != w0 {
        let cx = coefficients(w0, w, filter);
        let mut out = vec![0u8; (w * h0 * 3) as usize];
        for y in 0..h0 as usize {
            let row = &src[y * w0 as usize * 3..(y + 1) * w0 as usize * 3];
            for (x, (xmin, k)) in cx.iter().enumerate() {
                for c in 0..3 {
                    let mut ss = round;
                    for (i, &kk) in k.iter().enumerate() {
                        ss += row[(xmin + i) * 3 + c] as i64 * kk as i64;
                    }
                    out[(y * w as usize + x) * 3 + c] = clip8(ss);
                }
            }
        }
        out
    } else {
        src.clone()
    };
    let out: Vec<u8> = if h != h0 {
        let cy = coefficients(h0, h, filter);
        let stride = w as usize * 3;
        let mut out = vec![0u8; stride * h as usize];
        for (y, (ymin, k)) in cy.iter().enumerate() {
            for i in 0..stride {
                let mut ss = round;
                for (j, &kk) in k.iter().enumerate() {
                    ss += mid[(ymin + j) * stride + i] as i64 * kk as i64;
                }
                out[y * stride + i] = clip8(ss);
            }
        }
        out
    } else {
        mid
    };
    RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_of_each_output_pixel_sum_to_one_in_fixed_point() {
        for (n_in, n_out) in [(10, 3), (3, 10), (451, 256), (256, 451)] {
            for filter in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos, Filter::Box, Filter::Hamming] {
                for (_, k) in coefficients(n_in, n_out, filter) {
                    let sum: i64 = k.iter().map(|&v| v as i64).sum();
                    assert!((sum - (1 << PRECISION_BITS)).abs() <= k.len() as i64, "{filter:?} {n_in}->{n_out}");
                }
            }
        }
    }

    #[test]
    fn a_flat_image_stays_flat_and_sizes_are_kept() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([12, 200, 99]));
        let out = resize(&img, 11, 50, Filter::Bicubic);
        assert_eq!(out.dimensions(), (11, 50));
        assert!(out.pixels().all(|p| p.0 == [12, 200, 99]));
    }

    #[test]
    fn halving_with_bilinear_averages_like_pillow() {
        // Pillow 13: Image.frombytes("RGB", (4, 1), bytes([0,0,0, 100,100,100, 200,200,200,
        //   40,40,40])).resize((2, 1), Image.BILINEAR) → [(71,71,71), (117,117,117)]: support
        //   2 px, weights (3, 3, 1)/7 and (1, 3, 3)/7.
        let px = [0u8, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40];
        let img = RgbImage::from_raw(4, 1, px.to_vec()).unwrap();
        let out = resize(&img, 2, 1, Filter::Bilinear);
        assert_eq!(out.as_raw(), &[71, 71, 71, 117, 117, 117]);
    }
}
