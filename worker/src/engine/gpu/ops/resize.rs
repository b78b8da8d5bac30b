//! Resize on the GPU (opset 11 on): `[N,C,H,W]` over H and W, nearest (each `nearest_mode`) or
//! linear, `half_pixel` or `asymmetric` coordinates — what `wick_gpu`'s kernel covers. Other
//! attributes (cubic, align_corners, antialias, aspect-ratio policies, axes) build no GPU
//! kernel, and scaling N or C is refused at run time: those run on the CPU.

use candle_core::DType;
use wick_gpu::{CoordinateMode, Gpu, NearestMode, ResizeMode, ResizeParams};

use super::super::{Arg, Fail, GpuKernel, Meta, Out, Place, Running};
use super::{device, host};
use crate::engine::ops::{int_values, NodeCtx};

struct Resize {
    mode: ResizeMode,
    coordinate: CoordinateMode,
}

impl GpuKernel for Resize {
    fn place(&self, input: usize) -> Place {
        Place::data_then_host(input)
    }

    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs.first(), Some(Some(x)) if x.dims.len() == 4)
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let x = device(xs, 0)?;
            let &[n, c, h, w] = x.dims() else {
                return Err(Fail::Op(format!("Resize of {:?} on the GPU: 4-D only", x.dims())));
            };
            let given = |i: usize| matches!(xs.get(i), Some(Some(_)));
            // Inputs: X, roi (unused by these coordinate modes), scales, sizes.
            let (sizes, scales) = if given(3) {
                let s = int_values(host(xs, 3)?)?;
                let [sn, sc, oh, ow] = s[..] else {
                    return Err(Fail::Op(format!("Resize sizes {s:?} for 4-D input")));
                };
                if (sn, sc) != (n as i64, c as i64) || oh < 0 || ow < 0 {
                    return Err(Fail::Op(format!("Resize sizes {s:?}: the GPU kernel scales H and W only")));
                }
                ([oh as usize, ow as usize], None)
            } else if given(2) {
                let s: Vec<f32> = host(xs, 2)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
                let [1.0, 1.0, sh, sw] = s[..] else {
                    return Err(Fail::Op(format!("Resize scales {s:?}: the GPU kernel scales H and W only")));
                };
                if sh <= 0.0 || sw <= 0.0 {
                    return Err(Fail::Op(format!("Resize scales must be positive, got {s:?}")));
                }
                // ONNX's output size: floor(scale · input), as the CPU op computes it.
                let out = |scale: f32, len: usize| (f64::from(scale) * len as f64) as usize;
                ([out(sh, h), out(sw, w)], Some([sh, sw]))
            } else {
                return Err(Fail::Op("Resize needs scales or sizes".into()));
            };
            let p = ResizeParams { mode: self.mode, coordinate: self.coordinate, sizes, scales };
            Ok(vec![Out::Device(gpu.resize(x, &p).await?)])
        })
    }
}

pub fn resize(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    if ctx.opset < 11
        || ctx.int("antialias", 0) != 0
        || ctx.attr("axes").is_some()
        || ctx.string("keep_aspect_ratio_policy", "stretch") != "stretch"
    {
        return None;
    }
    let nearest = match ctx.string("nearest_mode", "round_prefer_floor").as_str() {
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        _ => return None,
    };
    let mode = match ctx.string("mode", "nearest").as_str() {
        "nearest" => ResizeMode::Nearest(nearest),
        "linear" | "bilinear" => ResizeMode::Linear,
        _ => return None,
    };
    let coordinate = match ctx.string("coordinate_transformation_mode", "half_pixel").as_str() {
        "half_pixel" => CoordinateMode::HalfPixel,
        "asymmetric" => CoordinateMode::Asymmetric,
        _ => return None,
    };
    Some(Box::new(Resize { mode, coordinate }))
}
