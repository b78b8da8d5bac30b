//! Spatial sampling: reading a tensor at computed positions. Spec: GridSample (opsets 16, 20,
//! 22; 2-D and volumetric), AffineGrid (20), CenterCropPad (18), Col2Im (18), RoiAlign (10, 16).
//!
//! Everything here is host-side index arithmetic: inputs are read once into f64 vectors, the
//! output is written once and cast back to the input dtype. GridSample is separable like Resize:
//! each spatial axis of an output point gets a few (index, weight) taps (nearest 1, linear 2,
//! cubic 4, with Resize's cubic kernel), out-of-range indices resolved by the padding mode, and
//! the point's value is the sum over their product.

use candle_core::{DType, Tensor};

use super::resize::cubic;
use super::shape::{pad_axis, PadMode};
use super::{axis, input, int_values, Kernel, NodeCtx};
use crate::error::Result;

type R<T> = candle_core::Result<T>;

fn floats(t: &Tensor) -> R<Vec<f64>> {
    t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()
}

/// A tensor of `dims` from f64 values, in `dtype`.
fn output(data: Vec<f64>, dims: Vec<usize>, like: &Tensor, dtype: DType) -> R<Tensor> {
    Tensor::from_vec(data, dims, like.device())?.to_dtype(dtype)
}

/// Non-negative dims from an integer tensor (image_shape, block_shape, size).
fn dims_of(t: &Tensor, what: &str) -> R<Vec<usize>> {
    let v = int_values(t)?;
    if v.iter().any(|&d| d < 0) {
        candle_core::bail!("{what} has a negative dim: {v:?}")
    }
    Ok(v.into_iter().map(|d| d as usize).collect())
}

/// The multi-index of flat position `i` in `dims` (row-major).
fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for (k, &d) in dims.iter().enumerate().rev() {
        idx[k] = i % d.max(1);
        i /= d.max(1);
    }
    idx
}

/// Reflect `x` by the nearer border until it lies in [lo, hi] (PyTorch's reflect_coordinates).
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    let (dx, from_lo) = if x < lo {
        (lo - x, true)
    } else if x > hi {
        (x - hi, false)
    } else {
        return x;
    };
    let n = (dx / range).trunc();
    let r = dx - n * range;
    if (n as i64 % 2 == 0) == from_lo {
        lo + r
    } else {
        hi - r
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Interp {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

#[derive(Debug, Clone, Copy)]
struct GridSample {
    interp: Interp,
    padding: Padding,
    align_corners: bool,
}

impl GridSample {
    /// The taps along an axis of `len` for normalised coordinate `g`: (index, weight), where
    /// `None` is a zero-padded position.
    fn taps(&self, g: f64, len: usize) -> Vec<(Option<usize>, f64)> {
        let n = len as f64;
        let (lo, hi) = if self.align_corners { (0.0, n - 1.0) } else { (-0.5, n - 0.5) };
        let mut x = if self.align_corners { (g + 1.0) / 2.0 * (n - 1.0) } else { ((g + 1.0) * n - 1.0) / 2.0 };
        if self.interp == Interp::Nearest {
            // Round half to even, as PyTorch does.
            x = x.round_ties_even();
        }
        if x < lo || x > hi {
            match self.padding {
                Padding::Border => x = x.clamp(0.0, n - 1.0),
                Padding::Reflection => x = reflect(x, lo, hi),
                Padding::Zeros => {}
            }
        }
        let last = len as i64 - 1;
        let at = |i: i64| match self.padding {
            Padding::Zeros => (0..=last).contains(&i).then_some(i as usize),
            Padding::Border => Some(i.clamp(0, last) as usize),
            Padding::Reflection => Some((reflect(i as f64, lo, hi).trunc() as i64).clamp(0, last) as usize),
        };
        let x0 = x.floor();
        let t = x - x0;
        let x0 = x0 as i64;
        match self.interp {
            Interp::Nearest => vec![(at(x.trunc() as i64), 1.0)],
            Interp::Linear => vec![(at(x0), 1.0 - t), (at(x0 + 1), t)],
            Interp::Cubic => (-1..=2).map(|k| (at(x0 + k), cubic(-0.75, t - k as f64))).collect(),
        }
    }

    fn run(&self, x: &Tensor, grid: &Tensor) -> R<Tensor> {
        let (xd, gd) = (x.dims(), grid.dims());
        let r = xd.len().saturating_sub(2);
        if r == 0 || gd.len() != r + 2 || gd[0] != xd[0] || gd[r + 1] != r {
            candle_core::bail!("GridSample: X {xd:?} and grid {gd:?} do not match")
        }
        let (batch, channels, spatial) = (xd[0], xd[1], &xd[2..]);
        let plane: usize = spatial.iter().product();
        let points: usize = gd[1..=r].iter().product();
        let (xv, gv) = (floats(x)?, floats(grid)?);
        let mut y = vec![0.0; batch * channels * points];
        for b in 0..batch {
            for p in 0..points {
                let g = &gv[(b * points + p) * r..(b * points + p + 1) * r];
                // The grid lists coordinates innermost axis first (x, y, z).
                let mut combo: Vec<(usize, f64)> = vec![(0, 1.0)];
                for (k, &len) in spatial.iter().enumerate() {
                    let taps = self.taps(g[r - 1 - k], len);
                    combo = combo
                        .iter()
                        .flat_map(|&(off, w)| taps.iter().filter_map(move |&(i, tw)| i.map(|i| (off * len + i, w * tw))))
                        .collect();
                }
                for c in 0..channels {
                    let src = &xv[(b * channels + c) * plane..(b * channels + c + 1) * plane];
                    y[(b * channels + c) * points + p] = combo.iter().map(|&(i, w)| w * src[i]).sum();
                }
            }
        }
        let mut dims = vec![batch, channels];
        dims.extend_from_slice(&gd[1..=r]);
        output(y, dims, x, x.dtype())
    }
}

/// GridSample-16 (bilinear/nearest/bicubic) and 20+ (linear/nearest/cubic, N-D).
pub fn grid_sample(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let interp = match ctx.string("mode", "linear").as_str() {
        "nearest" => Interp::Nearest,
        "linear" | "bilinear" => Interp::Linear,
        "cubic" | "bicubic" => Interp::Cubic,
        other => return Err(ctx.unsupported(&format!("mode {other}"))),
    };
    let padding = match ctx.string("padding_mode", "zeros").as_str() {
        "zeros" => Padding::Zeros,
        "border" => Padding::Border,
        "reflection" => Padding::Reflection,
        other => return Err(ctx.unsupported(&format!("padding_mode {other}"))),
    };
    let gs = GridSample { interp, padding, align_corners: ctx.int("align_corners", 0) != 0 };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| Ok(vec![gs.run(input(xs, 0)?, input(xs, 1)?)?])))
}

/// AffineGrid-20: theta (N, r, r+1) applied to the normalised base grid of `size` (N, C, *S).
pub fn affine_grid(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let align_corners = ctx.int("align_corners", 0) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let theta = input(xs, 0)?;
        let size = dims_of(input(xs, 1)?, "AffineGrid size")?;
        let r = size.len().saturating_sub(2);
        let batch = size.first().copied().unwrap_or(0);
        if !(r == 2 || r == 3) || theta.dims() != [batch, r, r + 1] {
            candle_core::bail!("AffineGrid: theta {:?} does not fit size {size:?}", theta.dims())
        }
        let spatial = &size[2..];
        let base = |i: usize, n: usize| match (align_corners, n) {
            (true, 1) => -1.0,
            (true, _) => -1.0 + 2.0 * i as f64 / (n - 1) as f64,
            (false, _) => -1.0 + (2 * i + 1) as f64 / n as f64,
        };
        let th = floats(theta)?;
        let points: usize = spatial.iter().product();
        let mut y = Vec::with_capacity(batch * points * r);
        for b in 0..batch {
            let m = &th[b * r * (r + 1)..(b + 1) * r * (r + 1)];
            for p in 0..points {
                let idx = unravel(p, spatial);
                // Homogeneous (x, y[, z], 1): x runs along the last axis.
                let mut h: Vec<f64> = (0..r).map(|j| base(idx[r - 1 - j], spatial[r - 1 - j])).collect();
                h.push(1.0);
                y.extend((0..r).map(|row| (0..=r).map(|j| m[row * (r + 1) + j] * h[j]).sum::<f64>()));
            }
        }
        let mut dims = vec![batch];
        dims.extend_from_slice(spatial);
        dims.push(r);
        Ok(vec![output(y, dims, theta, theta.dtype())?])
    }))
}

/// CenterCropPad-18: crop or zero-pad each listed axis to `shape`, centred (extra on the end).
pub fn center_crop_pad(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let axes = ctx.ints("axes");
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let shape = int_values(input(xs, 1)?)?;
        let axes: Vec<usize> = match &axes {
            Some(a) => a.iter().map(|&a| axis(a, x.rank())).collect::<R<_>>()?,
            None => (0..x.rank()).collect(),
        };
        if shape.len() != axes.len() {
            candle_core::bail!("CenterCropPad: {} sizes for {} axes", shape.len(), axes.len())
        }
        let mut y = x.clone();
        for (&k, &s) in axes.iter().zip(&shape) {
            // Negative amounts crop; integer division truncates toward zero on both sides.
            let d = s - x.dims()[k] as i64;
            y = pad_axis(&y, k, d / 2, d - d / 2, PadMode::Constant, 0.0)?;
        }
        Ok(vec![y])
    }))
}

/// Col2Im-18: sum the columns (N, C·∏block, L) back into images (N, C, *image_shape).
pub fn col2im(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (dilations, pads, strides) = (ctx.ints("dilations"), ctx.ints("pads"), ctx.ints("strides"));
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let image = dims_of(input(xs, 1)?, "Col2Im image_shape")?;
        let block = dims_of(input(xs, 2)?, "Col2Im block_shape")?;
        let r = image.len();
        let per_axis = |v: &Option<Vec<i64>>, n: usize, default: i64| v.clone().unwrap_or_else(|| vec![default; n]);
        let (dil, pad, stride) = (per_axis(&dilations, r, 1), per_axis(&pads, 2 * r, 0), per_axis(&strides, r, 1));
        let kernel: usize = block.iter().product();
        if block.len() != r || dil.len() != r || pad.len() != 2 * r || stride.len() != r || x.rank() != 3 {
            candle_core::bail!("Col2Im: inconsistent ranks for input {:?}, image {image:?}, block {block:?}", x.dims())
        }
        let (batch, cols, len) = (x.dims()[0], x.dims()[1], x.dims()[2]);
        if kernel == 0 || cols % kernel != 0 {
            candle_core::bail!("Col2Im: {cols} columns are not a multiple of the block size {kernel}")
        }
        // Blocks along each axis.
        let blocks: Vec<usize> = (0..r)
            .map(|i| {
                let span = image[i] as i64 + pad[i] + pad[i + r] - dil[i] * (block[i] as i64 - 1) - 1;
                (span / stride[i] + 1).max(0) as usize
            })
            .collect();
        if blocks.iter().product::<usize>() != len {
            candle_core::bail!("Col2Im: {len} blocks given, {blocks:?} expected")
        }
        let channels = cols / kernel;
        let plane: usize = image.iter().product();
        let xv = floats(x)?;
        let mut y = vec![0.0; batch * channels * plane];
        for k in 0..kernel {
            let off = unravel(k, &block);
            for l in 0..len {
                let b = unravel(l, &blocks);
                let mut flat = 0usize;
                let inside = (0..r).all(|i| {
                    let at = b[i] as i64 * stride[i] - pad[i] + off[i] as i64 * dil[i];
                    flat = flat * image[i] + at.max(0) as usize;
                    (0..image[i] as i64).contains(&at)
                });
                if !inside {
                    continue;
                }
                for n in 0..batch {
                    for c in 0..channels {
                        y[(n * channels + c) * plane + flat] += xv[(n * cols + c * kernel + k) * len + l];
                    }
                }
            }
        }
        let mut dims = vec![batch, channels];
        dims.extend_from_slice(&image);
        Ok(vec![output(y, dims, x, x.dtype())?])
    }))
}

#[derive(Debug, Clone, Copy)]
struct RoiAlign {
    max: bool,
    half_pixel: bool,
    out_h: usize,
    out_w: usize,
    sampling_ratio: i64,
    spatial_scale: f64,
}

impl RoiAlign {
    /// The bilinear corners (flat position, weight) of one sample point; all-zero outside.
    fn corners(y: f64, x: f64, h: usize, w: usize) -> [(usize, f64); 4] {
        let (hf, wf) = (h as f64, w as f64);
        if y < -1.0 || y > hf || x < -1.0 || x > wf {
            return [(0, 0.0); 4];
        }
        let low_high = |v: f64, n: usize| {
            let v = v.max(0.0);
            let low = v as usize;
            if low >= n - 1 {
                (n - 1, n - 1, (n - 1) as f64)
            } else {
                (low, low + 1, v)
            }
        };
        let (y0, y1, y) = low_high(y, h);
        let (x0, x1, x) = low_high(x, w);
        let (ly, lx) = (y - y0 as f64, x - x0 as f64);
        let (hy, hx) = (1.0 - ly, 1.0 - lx);
        [(y0 * w + x0, hy * hx), (y0 * w + x1, hy * lx), (y1 * w + x0, ly * hx), (y1 * w + x1, ly * lx)]
    }

    fn run(&self, x: &Tensor, rois: &Tensor, batch_indices: &Tensor) -> R<Tensor> {
        let &[batch, channels, h, w] = x.dims() else {
            candle_core::bail!("RoiAlign: X must be 4-D, got {:?}", x.dims())
        };
        let idx = int_values(batch_indices)?;
        let n_rois = idx.len();
        if rois.dims() != [n_rois, 4] {
            candle_core::bail!("RoiAlign: rois {:?} for {n_rois} batch indices", rois.dims())
        }
        let (xv, rv) = (floats(x)?, floats(rois)?);
        let (ph, pw) = (self.out_h, self.out_w);
        let plane = h * w;
        let mut y = vec![0.0; n_rois * channels * ph * pw];
        if plane == 0 {
            return output(y, vec![n_rois, channels, ph, pw], x, x.dtype());
        }
        let offset = if self.half_pixel { 0.5 } else { 0.0 };
        for (n, &bi) in idx.iter().enumerate() {
            if bi < 0 || bi as usize >= batch {
                candle_core::bail!("RoiAlign: batch index {bi} out of range for batch {batch}")
            }
            let roi: Vec<f64> = rv[n * 4..n * 4 + 4].iter().map(|v| v * self.spatial_scale - offset).collect();
            let (start_w, start_h) = (roi[0], roi[1]);
            let (mut roi_w, mut roi_h) = (roi[2] - roi[0], roi[3] - roi[1]);
            if !self.half_pixel {
                (roi_w, roi_h) = (roi_w.max(1.0), roi_h.max(1.0));
            }
            let (bin_h, bin_w) = (roi_h / ph as f64, roi_w / pw as f64);
            let grid = |extent: f64, bins: usize| match self.sampling_ratio {
                s if s > 0 => s as usize,
                _ => (extent / bins as f64).ceil().max(0.0) as usize,
            };
            let (gh, gw) = (grid(roi_h, ph), grid(roi_w, pw));
            let count = (gh * gw).max(1) as f64;
            // Per output cell, its sample points' corners (shared by every channel).
            let cells: Vec<Vec<[(usize, f64); 4]>> = (0..ph * pw)
                .map(|cell| {
                    let (py, px) = ((cell / pw) as f64, (cell % pw) as f64);
                    (0..gh * gw)
                        .map(|s| {
                            let yy = start_h + py * bin_h + ((s / gw) as f64 + 0.5) * bin_h / gh as f64;
                            let xx = start_w + px * bin_w + ((s % gw) as f64 + 0.5) * bin_w / gw as f64;
                            Self::corners(yy, xx, h, w)
                        })
                        .collect()
                })
                .collect();
            for c in 0..channels {
                let src = &xv[(bi as usize * channels + c) * plane..(bi as usize * channels + c + 1) * plane];
                for (cell, samples) in cells.iter().enumerate() {
                    let vals = samples.iter().map(|corners| {
                        let v = corners.iter().map(|&(i, wt)| wt * src[i]);
                        if self.max {
                            v.fold(f64::NEG_INFINITY, f64::max)
                        } else {
                            v.sum::<f64>()
                        }
                    });
                    y[(n * channels + c) * ph * pw + cell] = if self.max {
                        vals.reduce(f64::max).unwrap_or(0.0)
                    } else {
                        vals.sum::<f64>() / count
                    };
                }
            }
        }
        output(y, vec![n_rois, channels, ph, pw], x, x.dtype())
    }
}

fn roi_align_with(ctx: &NodeCtx, default_coords: &str) -> Result<Box<dyn Kernel>> {
    let max = match ctx.string("mode", "avg").as_str() {
        "avg" => false,
        "max" => true,
        other => return Err(ctx.unsupported(&format!("mode {other}"))),
    };
    let half_pixel = match ctx.string("coordinate_transformation_mode", default_coords).as_str() {
        "half_pixel" => true,
        "output_half_pixel" => false,
        other => return Err(ctx.unsupported(&format!("coordinate_transformation_mode {other}"))),
    };
    let ra = RoiAlign {
        max,
        half_pixel,
        out_h: ctx.int("output_height", 1).max(1) as usize,
        out_w: ctx.int("output_width", 1).max(1) as usize,
        sampling_ratio: ctx.int("sampling_ratio", 0),
        spatial_scale: ctx.float("spatial_scale", 1.0) as f64,
    };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| Ok(vec![ra.run(input(xs, 0)?, input(xs, 1)?, input(xs, 2)?)?])))
}

/// RoiAlign-10: output_half_pixel coordinates (no attribute).
pub fn roi_align_10(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    roi_align_with(ctx, "output_half_pixel")
}

/// RoiAlign-16: `coordinate_transformation_mode`, half_pixel by default.
pub fn roi_align(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    roi_align_with(ctx, "half_pixel")
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use candle_core::{Device, Tensor};

    fn ints(v: &[i64]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    #[test]
    fn reflect_folds_back_and_forth() {
        assert_eq!(super::reflect(-1.0, 0.0, 3.0), 1.0);
        assert_eq!(super::reflect(4.0, 0.0, 3.0), 2.0);
        assert_eq!(super::reflect(7.0, 0.0, 3.0), 1.0);
        assert!((super::reflect(-0.75, -0.5, 2.5) + 0.25).abs() < 1e-12);
    }

    #[test]
    fn grid_sample_bilinear_and_nearest_with_padding() {
        // 1×1×2×2 image [[1, 2], [3, 4]]; align_corners: (-1,-1) is pixel (0,0), (1,1) is (1,1).
        let x = t(&[1, 1, 2, 2], &[1., 2., 3., 4.]);
        let grid = t(&[1, 1, 3, 2], &[-1., -1., 0., 0., 1., -1.]);
        let run = |attrs| values(&build(&node("GridSample", 2, attrs), 20).run(&[Some(&x), Some(&grid)]).unwrap()[0]);
        assert_close(&run(vec![int("align_corners", 1)]), &[1., 2.5, 2.], 1e-6);
        // Without align_corners, (-1, -1) is the corner of pixel (0,0): x = y = -0.5; zeros
        // padding blends in three zeros, border clamps to the pixel.
        assert_close(&run(vec![]), &[0.25, 2.5, 0.5], 1e-6);
        assert_close(&run(vec![string("padding_mode", "border")]), &[1., 2.5, 2.], 1e-6);
        // Nearest rounds half to even: 0.5 → 0.
        assert_close(&run(vec![string("mode", "nearest"), int("align_corners", 1)]), &[1., 1., 2.], 1e-6);
    }

    #[test]
    fn grid_sample_cubic_reproduces_pixels_on_the_grid() {
        let x = t(&[1, 1, 1, 4], &[0., 1., 4., 9.]);
        let grid = t(&[1, 1, 2, 2], &[-1., 0., 1. / 3., 0.]);
        let node = node("GridSample", 2, vec![string("mode", "cubic"), int("align_corners", 1), string("padding_mode", "border")]);
        let y = build(&node, 20).run(&[Some(&x), Some(&grid)]).unwrap();
        assert_close(&values(&y[0]), &[0., 4.], 1e-6);
    }

    #[test]
    fn affine_grid_identity_is_the_base_grid() {
        let theta = t(&[1, 2, 3], &[1., 0., 0., 0., 1., 0.]);
        let y = build(&node("AffineGrid", 2, vec![]), 20).run(&[Some(&theta), Some(&ints(&[1, 1, 2, 2]))]).unwrap();
        assert_eq!(y[0].dims(), &[1, 2, 2, 2]);
        assert_close(&values(&y[0]), &[-0.5, -0.5, 0.5, -0.5, -0.5, 0.5, 0.5, 0.5], 1e-6);
        let y = build(&node("AffineGrid", 2, vec![int("align_corners", 1)]), 20)
            .run(&[Some(&theta), Some(&ints(&[1, 1, 1, 3]))])
            .unwrap();
        assert_close(&values(&y[0]), &[-1., -1., 0., -1., 1., -1.], 1e-6);
    }

    #[test]
    fn center_crop_pad_crops_and_pads_centred() {
        let x = t(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
        let y = build(&node("CenterCropPad", 2, vec![]), 18).run(&[Some(&x), Some(&ints(&[1, 4]))]).unwrap();
        assert_eq!(values(&y[0]), vec![0., 3., 4., 0.]);
        let y = build(&node("CenterCropPad", 2, vec![super::super::test_util::ints("axes", &[-1])]), 18)
            .run(&[Some(&x), Some(&ints(&[1]))])
            .unwrap();
        assert_eq!(values(&y[0]), vec![1., 3., 5.]);
    }

    #[test]
    fn col2im_sums_overlapping_blocks() {
        // A 1×3 image from two 1×2 blocks at stride 1: block 0 is [1 2], block 1 is [10 20].
        let x = t(&[1, 2, 2], &[1., 10., 2., 20.]);
        let y = build(&node("Col2Im", 3, vec![]), 18)
            .run(&[Some(&x), Some(&ints(&[1, 3])), Some(&ints(&[1, 2]))])
            .unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 1, 3]);
        assert_eq!(values(&y[0]), vec![1., 12., 20.]);
    }

    #[test]
    fn roi_align_averages_bilinear_samples() {
        // 1×1×2×2 [[0, 1], [2, 3]], one ROI over the whole image, one 1×1 bin, 1 sample at
        // the centre (half_pixel: roi -0.5..1.5, centre 0.5, 0.5) → 1.5.
        let x = t(&[1, 1, 2, 2], &[0., 1., 2., 3.]);
        let rois = t(&[1, 4], &[0., 0., 2., 2.]);
        let attrs = vec![int("sampling_ratio", 1)];
        let y = build(&node("RoiAlign", 3, attrs), 16).run(&[Some(&x), Some(&rois), Some(&ints(&[0]))]).unwrap();
        assert_close(&values(&y[0]), &[1.5], 1e-6);
        // Max mode takes the largest weighted corner: 0.25·3.
        let attrs = vec![int("sampling_ratio", 1), string("mode", "max")];
        let y = build(&node("RoiAlign", 3, attrs), 16).run(&[Some(&x), Some(&rois), Some(&ints(&[0]))]).unwrap();
        assert_close(&values(&y[0]), &[0.75], 1e-6);
    }
}
