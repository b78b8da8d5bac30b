//! Resizing. Spec: Resize (opsets 10, 11, 13, 18, 19) and Upsample (opsets 7 and 9, its
//! nearest/linear subset with asymmetric coordinates).
//!
//! One code path for every mode: resizing is separable, so each resized axis gets a table of
//! (first input index, weights) per output index and the tables are applied axis by axis, as the
//! ONNX reference does. Nearest, linear and cubic differ only in the weights
//! ([`Mode::weights`]); antialias widens the linear/cubic kernel by 1/scale when downsampling;
//! indices outside the input are clamped (edge padding) or, with `exclude_outside`, dropped
//! and the weights renormalised; `tf_crop_and_resize` marks output positions outside the ROI for
//! `extrapolation_value`. Values are computed in f64 and cast back to the input dtype.

use candle_core::{DType, Tensor};

use super::{axis, input, int_values, Kernel, NodeCtx};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Resize-10 / Upsample: floor when upsampling, ceil when downsampling (onnxruntime).
    Simple,
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Nearest(Nearest),
    Linear,
    Cubic { a: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Coord {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfCropAndResize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Policy {
    Stretch,
    NotLarger,
    NotSmaller,
}

/// Where the op's inputs are.
#[derive(Debug, Clone)]
enum Inputs {
    /// Upsample-7: scales is an attribute.
    ScalesAttr(Vec<f64>),
    /// Resize-10, Upsample-9: (X, scales).
    Scales,
    /// Resize-11+: (X, roi, scales, sizes).
    RoiScalesSizes,
}

#[derive(Debug, Clone)]
struct Resize {
    mode: Mode,
    coord: Coord,
    antialias: bool,
    exclude_outside: bool,
    extrapolation: f64,
    policy: Policy,
    axes: Option<Vec<i64>>,
    inputs: Inputs,
}

/// One output position along an axis: the input indices from `start` (clamped into range) with
/// their weights, or the extrapolation value.
enum Tap {
    Weights { start: i64, weights: Vec<f64> },
    Extrapolate,
}

impl Mode {
    /// The weights for a point at fraction `ratio` ∈ (0, 1] past input index `base`, and the
    /// offset of the first weight from `base`.
    fn weights(&self, ratio: f64, scale: f64, antialias: bool) -> (i64, Vec<f64>) {
        let (radius, kernel): (f64, Box<dyn Fn(f64) -> f64>) = match *self {
            Mode::Nearest(mode) => {
                let up = ratio == 1.0
                    || match mode {
                        Nearest::RoundPreferFloor => ratio > 0.5,
                        Nearest::RoundPreferCeil => ratio >= 0.5,
                        Nearest::Floor => false,
                        Nearest::Ceil => true,
                        Nearest::Simple => scale < 1.0,
                    };
                return (0, if up { vec![0.0, 1.0] } else { vec![1.0, 0.0] });
            }
            Mode::Linear => (1.0, Box::new(|t: f64| (1.0 - t.abs()).max(0.0))),
            Mode::Cubic { a } => (2.0, Box::new(move |t: f64| cubic(a, t))),
        };
        let s = if antialias { scale.min(1.0) } else { 1.0 };
        let start = (-radius / s).floor() as i64 + 1;
        let mut w: Vec<f64> = (start..1 - start + 1).map(|i| kernel(s * (i as f64 - ratio))).collect();
        if antialias {
            let sum: f64 = w.iter().sum();
            w.iter_mut().for_each(|v| *v /= sum);
        }
        (start, w)
    }
}

/// Keys' cubic convolution kernel with coefficient `a` (also GridSample's, with a = -0.75).
pub(super) fn cubic(a: f64, t: f64) -> f64 {
    let t = t.abs();
    if t <= 1.0 {
        ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    } else if t < 2.0 {
        ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
    } else {
        0.0
    }
}

impl Resize {
    /// The taps of one axis resized from `len` to `out` at `scale`, with this axis's ROI.
    fn taps(&self, len: usize, out: usize, scale: f64, roi: (f64, f64)) -> Vec<Tap> {
        let width = scale * len as f64;
        let lenf = len as f64;
        (0..out)
            .map(|y| {
                let y = y as f64;
                let x = match self.coord {
                    Coord::AlignCorners if width == 1.0 => 0.0,
                    Coord::AlignCorners => y * (lenf - 1.0) / (width - 1.0),
                    Coord::Asymmetric => y / scale,
                    Coord::TfCropAndResize => {
                        let span = (roi.1 - roi.0) * (lenf - 1.0);
                        let x = if width == 1.0 { span / 2.0 } else { y * span / (width - 1.0) };
                        x + roi.0 * (lenf - 1.0)
                    }
                    Coord::PytorchHalfPixel if width == 1.0 => -0.5,
                    Coord::PytorchHalfPixel | Coord::HalfPixel => (y + 0.5) / scale - 0.5,
                    Coord::HalfPixelSymmetric => {
                        let offset = lenf / 2.0 * (1.0 - out as f64 / width);
                        offset + (y + 0.5) / scale - 0.5
                    }
                };
                if self.coord == Coord::TfCropAndResize && (x < 0.0 || x > lenf - 1.0) {
                    return Tap::Extrapolate;
                }
                // The ratio is in (0, 1]: an integer x counts as 1 past the index below it.
                let (base, ratio) = if x == x.floor() { (x as i64 - 1, 1.0) } else { (x.floor() as i64, x - x.floor()) };
                let (offset, mut weights) = self.mode.weights(ratio, scale, self.antialias);
                let start = base + offset;
                if self.exclude_outside {
                    for (j, w) in weights.iter_mut().enumerate() {
                        let i = start + j as i64;
                        if i < 0 || i >= len as i64 {
                            *w = 0.0;
                        }
                    }
                    let sum: f64 = weights.iter().sum();
                    if sum != 0.0 {
                        weights.iter_mut().for_each(|w| *w /= sum);
                    }
                }
                Tap::Weights { start, weights }
            })
            .collect()
    }

    fn run(&self, xs: &[Option<&Tensor>]) -> candle_core::Result<Tensor> {
        let x = input(xs, 0)?;
        let dims = x.dims().to_vec();
        let r = dims.len();
        let present = |i: usize| xs.get(i).copied().flatten().filter(|t| t.elem_count() > 0);
        let floats = |t: &Tensor| t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>();
        let (roi, scales, sizes) = match &self.inputs {
            Inputs::ScalesAttr(s) => (None, Some(s.clone()), None),
            Inputs::Scales => (None, present(1).map(floats).transpose()?, None),
            Inputs::RoiScalesSizes => (
                present(1).map(floats).transpose()?,
                present(2).map(floats).transpose()?,
                present(3).map(int_values).transpose()?,
            ),
        };
        let axes: Vec<usize> = match &self.axes {
            Some(a) => a.iter().map(|&a| axis(a, r)).collect::<candle_core::Result<_>>()?,
            None => (0..r).collect(),
        };
        let n = axes.len();
        for (name, len) in [("scales", scales.as_ref().map(Vec::len)), ("sizes", sizes.as_ref().map(Vec::len))] {
            if len.is_some_and(|l| l != n) {
                candle_core::bail!("Resize {name} has {} values for {n} axes", len.unwrap_or(0))
            }
        }
        // Per resized axis: output size and scale.
        let (out, scale): (Vec<usize>, Vec<f64>) = match (sizes, scales) {
            (Some(sizes), _) => {
                let raw: Vec<f64> = axes.iter().zip(&sizes).map(|(&a, &s)| s as f64 / dims[a] as f64).collect();
                let pick = match self.policy {
                    Policy::Stretch => None,
                    Policy::NotLarger => raw.iter().copied().reduce(f64::min),
                    Policy::NotSmaller => raw.iter().copied().reduce(f64::max),
                };
                match pick {
                    None => (sizes.iter().map(|&s| s.max(0) as usize).collect(), raw),
                    Some(s) => (axes.iter().map(|&a| (s * dims[a] as f64 + 0.5) as usize).collect(), vec![s; n]),
                }
            }
            (None, Some(scales)) => {
                if scales.iter().any(|&s| s <= 0.0) {
                    candle_core::bail!("Resize scales must be positive, got {scales:?}")
                }
                (axes.iter().zip(&scales).map(|(&a, &s)| (s * dims[a] as f64) as usize).collect(), scales)
            }
            (None, None) => candle_core::bail!("Resize needs scales or sizes"),
        };
        let roi_of = |i: usize| match &roi {
            Some(v) if v.len() == 2 * n => (v[i], v[n + i]),
            _ => (0.0, 1.0),
        };
        let mut data = x.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let mut shape = dims.clone();
        for (i, &a) in axes.iter().enumerate() {
            let roi = roi_of(i);
            let identity = (scale[i] - 1.0).abs() < 1e-9 && out[i] == shape[a] && roi == (0.0, 1.0);
            if identity && self.coord != Coord::TfCropAndResize {
                continue;
            }
            let taps = self.taps(shape[a], out[i], scale[i], roi);
            data = apply_axis(&data, &shape, a, &taps, self.extrapolation);
            shape[a] = out[i];
        }
        Tensor::from_vec(data, shape, x.device())?.to_dtype(x.dtype())
    }
}

/// Apply one axis's taps to `data` of `shape`.
fn apply_axis(data: &[f64], shape: &[usize], axis: usize, taps: &[Tap], extrapolation: f64) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let len = shape[axis];
    let mut y = vec![0.0; outer * taps.len() * inner];
    for o in 0..outer {
        let src = &data[o * len * inner..(o + 1) * len * inner];
        for (j, tap) in taps.iter().enumerate() {
            let dst = &mut y[(o * taps.len() + j) * inner..(o * taps.len() + j + 1) * inner];
            match tap {
                Tap::Extrapolate => dst.fill(extrapolation),
                Tap::Weights { start, weights } => {
                    for (k, &w) in weights.iter().enumerate() {
                        if w == 0.0 {
                            continue;
                        }
                        let i = (start + k as i64).clamp(0, len as i64 - 1) as usize;
                        for (d, s) in dst.iter_mut().zip(&src[i * inner..(i + 1) * inner]) {
                            *d += w * s;
                        }
                    }
                }
            }
        }
    }
    y
}

fn kernel(r: Resize) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(move |xs: &[Option<&Tensor>]| Ok(vec![r.run(xs)?])))
}

fn mode(ctx: &NodeCtx, nearest: Nearest) -> Result<Mode> {
    Ok(match ctx.string("mode", "nearest").as_str() {
        "nearest" => Mode::Nearest(nearest),
        "linear" | "bilinear" | "trilinear" => Mode::Linear,
        "cubic" | "bicubic" => Mode::Cubic { a: ctx.float("cubic_coeff_a", -0.75) as f64 },
        other => return Err(ctx.unsupported(&format!("mode {other}"))),
    })
}

/// Resize-10: (X, scales), asymmetric coordinates, nearest or linear.
pub fn resize_10(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    upsample_like(ctx, Inputs::Scales)
}

/// Resize-11 and later.
pub fn resize(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let nearest = match ctx.string("nearest_mode", "round_prefer_floor").as_str() {
        "round_prefer_floor" => Nearest::RoundPreferFloor,
        "round_prefer_ceil" => Nearest::RoundPreferCeil,
        "floor" => Nearest::Floor,
        "ceil" => Nearest::Ceil,
        other => return Err(ctx.unsupported(&format!("nearest_mode {other}"))),
    };
    let coord = match ctx.string("coordinate_transformation_mode", "half_pixel").as_str() {
        "half_pixel" => Coord::HalfPixel,
        "half_pixel_symmetric" => Coord::HalfPixelSymmetric,
        "pytorch_half_pixel" => Coord::PytorchHalfPixel,
        "align_corners" => Coord::AlignCorners,
        "asymmetric" => Coord::Asymmetric,
        "tf_crop_and_resize" => Coord::TfCropAndResize,
        other => return Err(ctx.unsupported(&format!("coordinate_transformation_mode {other}"))),
    };
    let policy = match ctx.string("keep_aspect_ratio_policy", "stretch").as_str() {
        "stretch" => Policy::Stretch,
        "not_larger" => Policy::NotLarger,
        "not_smaller" => Policy::NotSmaller,
        other => return Err(ctx.unsupported(&format!("keep_aspect_ratio_policy {other}"))),
    };
    kernel(Resize {
        mode: mode(ctx, nearest)?,
        coord,
        antialias: ctx.int("antialias", 0) != 0,
        exclude_outside: ctx.int("exclude_outside", 0) != 0,
        extrapolation: ctx.float("extrapolation_value", 0.0) as f64,
        policy,
        axes: ctx.ints("axes"),
        inputs: Inputs::RoiScalesSizes,
    })
}

fn upsample_like(ctx: &NodeCtx, inputs: Inputs) -> Result<Box<dyn Kernel>> {
    let mode = mode(ctx, Nearest::Simple)?;
    if matches!(mode, Mode::Cubic { .. }) {
        return Err(ctx.unsupported("cubic mode before Resize-11"));
    }
    kernel(Resize {
        mode,
        coord: Coord::Asymmetric,
        antialias: false,
        exclude_outside: false,
        extrapolation: 0.0,
        policy: Policy::Stretch,
        axes: None,
        inputs,
    })
}

/// Upsample-7: `scales` attribute.
pub fn upsample_7(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let scales = ctx.node.attribute.iter().find(|a| a.name == "scales").map(|a| a.floats.clone());
    let scales = scales.ok_or_else(|| ctx.unsupported("missing scales"))?;
    upsample_like(ctx, Inputs::ScalesAttr(scales.iter().map(|&s| s as f64).collect()))
}

/// Upsample-9: `scales` input.
pub fn upsample(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    upsample_like(ctx, Inputs::Scales)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;

    fn resize(attrs: Vec<candle_onnx::onnx::AttributeProto>, x: &candle_core::Tensor, scales: &[f32]) -> Vec<f32> {
        let s = t(&[scales.len()], scales);
        let y = build(&node("Resize", 3, attrs), 13).run(&[Some(x), None, Some(&s)]).unwrap();
        values(&y[0])
    }

    #[test]
    fn nearest_asymmetric_floor_repeats_pixels() {
        let x = t(&[1, 1, 2, 2], &[1., 2., 3., 4.]);
        let attrs = vec![string("coordinate_transformation_mode", "asymmetric"), string("nearest_mode", "floor")];
        let y = resize(attrs, &x, &[1., 1., 2., 2.]);
        assert_eq!(y, vec![1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]);
    }

    #[test]
    fn linear_half_pixel_interpolates_and_clamps_at_edges() {
        // 1-D [0, 4] upsampled ×2: x = (y + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25.
        let x = t(&[1, 2], &[0., 4.]);
        let y = resize(vec![string("mode", "linear")], &x, &[1., 2.]);
        assert_close(&y, &[0., 1., 3., 4.], 1e-6);
    }

    #[test]
    fn cubic_align_corners_keeps_the_corners() {
        let x = t(&[1, 4], &[0., 1., 4., 9.]);
        let attrs = vec![string("mode", "cubic"), string("coordinate_transformation_mode", "align_corners")];
        let y = resize(attrs, &x, &[1., 1.75]);
        assert_eq!(y.len(), 7);
        assert_close(&[y[0], y[6]], &[0., 9.], 1e-6);
        // x = 0.5 between 0 and 1 with neighbours 0 (edge), 0, 1, 4: weights (a = -0.75)
        // [-0.09375, 0.59375, 0.59375, -0.09375] → 0.59375 - 0.375.
        assert_close(&[y[1]], &[0.59375 - 0.375], 1e-6);
    }

    #[test]
    fn tf_crop_and_resize_extrapolates_outside_the_roi() {
        let x = t(&[1, 3], &[1., 2., 3.]);
        let roi = t(&[4], &[0., 0.5, 1., 1.5]);
        let sizes = candle_core::Tensor::new(&[1i64, 3], &candle_core::Device::Cpu).unwrap();
        let attrs = vec![string("mode", "linear"), string("coordinate_transformation_mode", "tf_crop_and_resize"), float("extrapolation_value", -1.)];
        let y = build(&node("Resize", 4, attrs), 13).run(&[Some(&x), Some(&roi), None, Some(&sizes)]).unwrap();
        // Axis 1 from 0.5·2 = 1 to 1.5·2 = 3: x = 1, 2, 3 (outside).
        assert_close(&values(&y[0]), &[2., 3., -1.], 1e-6);
    }
}
