//! Shape ops on the GPU: new dims over the same buffer (Reshape, Flatten, Squeeze, Unsqueeze,
//! Identity: nothing is copied or dispatched); `Shape`, which reads only dims and answers on the
//! host; and the strided copies Transpose, Concat, Slice, Split, Expand. The dims rules are the CPU
//! ops' own (`engine/ops/shape.rs`).

use candle_core::{Device, Tensor};
use wick_gpu::Gpu;

use wick_gpu::kernels::binary::MAX_RANK;

use super::super::{Arg, Fail, GpuKernel, Meta, Out, Place, Running};
use super::{device, host};
use crate::engine::ops::shape::{
    flatten_dims, reshape_dims, shape_values, slice_axis, split_sizes, squeeze_dims, unsqueeze_dims,
};
use crate::engine::ops::{axis, int_values, NodeCtx};

/// How a view op computes its output dims from the input's dims and its host inputs.
enum View {
    Identity,
    Reshape {
        allow_zero: bool,
    },
    Flatten {
        axis: i64,
    },
    /// Axes from the attribute (older opsets) or, when `None`, from input 1.
    Squeeze(Option<Vec<i64>>),
    Unsqueeze(Option<Vec<i64>>),
}

impl GpuKernel for View {
    fn place(&self, input: usize) -> Place {
        Place::data_then_host(input)
    }

    /// Views never touch the values.
    fn takes_f16(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, _gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let x = device(xs, 0)?;
            let ints = |i: usize| -> Result<Option<Vec<i64>>, Fail> {
                match xs.get(i) {
                    Some(Some(_)) => Ok(Some(int_values(host(xs, i)?)?)),
                    _ => Ok(None),
                }
            };
            let dims = match self {
                View::Identity => x.dims().to_vec(),
                View::Reshape { allow_zero } => {
                    let spec = ints(1)?.ok_or_else(|| Fail::Op("missing shape".into()))?;
                    reshape_dims(x.dims(), &spec, *allow_zero)?
                }
                View::Flatten { axis } => flatten_dims(x.dims(), *axis)?,
                View::Squeeze(axes) => squeeze_dims(x.dims(), axes.clone().or(ints(1)?))?,
                View::Unsqueeze(axes) => {
                    let axes = axes.clone().or(ints(1)?).ok_or_else(|| Fail::Op("missing axes".into()))?;
                    unsqueeze_dims(x.dims(), &axes)?
                }
            };
            Ok(vec![Out::Device(x.reshape(dims)?)])
        })
    }
}

pub fn identity(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(View::Identity))
}

pub fn reshape(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(View::Reshape { allow_zero: ctx.int("allowzero", 0) != 0 }))
}

pub fn flatten(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(View::Flatten { axis: ctx.int("axis", 1) }))
}

pub fn squeeze(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    // From opset 13 the axes are an input.
    Some(Box::new(View::Squeeze(if ctx.opset < 13 { Some(ctx.ints("axes")?) } else { None })))
}

pub fn unsqueeze(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(View::Unsqueeze(if ctx.opset < 13 { Some(ctx.ints("axes")?) } else { None })))
}

/// `Shape` of a value on the device: its dims (with `start`/`end`), as a host int64 tensor.
struct ShapeOf {
    start: i64,
    end: Option<i64>,
}

impl GpuKernel for ShapeOf {
    fn run<'a>(&'a self, _gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let kept = shape_values(device(xs, 0)?.dims(), self.start, self.end);
            let n = kept.len();
            Ok(vec![Out::Host(Tensor::from_vec(kept, n, &Device::Cpu)?)])
        })
    }
}

pub fn shape(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(ShapeOf { start: ctx.int("start", 0), end: ctx.attr("end").map(|a| a.i) }))
}

struct Transpose {
    perm: Option<Vec<i64>>,
}

impl GpuKernel for Transpose {
    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(x)] if x.dims.len() <= MAX_RANK)
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let x = device(xs, 0)?;
            let rank = x.dims().len();
            let perm: Vec<usize> = match &self.perm {
                Some(p) => p.iter().map(|&a| axis(a, rank)).collect::<candle_core::Result<_>>()?,
                None => (0..rank).rev().collect(),
            };
            Ok(vec![Out::Device(gpu.transpose(x, &perm).await?)])
        })
    }
}

pub fn transpose(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Transpose { perm: ctx.ints("perm") }))
}

struct Concat {
    axis: i64,
}

impl GpuKernel for Concat {
    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        !xs.is_empty() && xs.iter().all(|m| matches!(m, Some(m) if m.dims.len() <= MAX_RANK))
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let parts = (0..xs.len()).map(|i| device(xs, i)).collect::<Result<Vec<_>, Fail>>()?;
            let k = axis(self.axis, parts[0].dims().len())?;
            Ok(vec![Out::Device(gpu.concat(&parts, k).await?)])
        })
    }
}

pub fn concat(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Concat { axis: ctx.int("axis", 0) }))
}

/// Slice: starts / ends / axes / steps from attributes (before opset 10) or host inputs.
struct Slice {
    attrs: Option<(Vec<i64>, Vec<i64>, Option<Vec<i64>>)>,
}

impl GpuKernel for Slice {
    fn place(&self, input: usize) -> Place {
        Place::data_then_host(input)
    }

    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs.first(), Some(Some(x)) if x.dims.len() <= MAX_RANK)
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let x = device(xs, 0)?;
            let ints = |i: usize| -> Result<Option<Vec<i64>>, Fail> {
                match xs.get(i) {
                    Some(Some(_)) => Ok(Some(int_values(host(xs, i)?)?)),
                    _ => Ok(None),
                }
            };
            let (starts, ends, axes, steps) = match &self.attrs {
                Some((s, e, a)) => (s.clone(), e.clone(), a.clone(), None),
                None => (
                    ints(1)?.ok_or_else(|| Fail::Op("missing starts".into()))?,
                    ints(2)?.ok_or_else(|| Fail::Op("missing ends".into()))?,
                    ints(3)?,
                    ints(4)?,
                ),
            };
            if starts.len() != ends.len() {
                return Err(Fail::Op(format!("{} starts but {} ends", starts.len(), ends.len())));
            }
            let rank = x.dims().len();
            let mut ranges: Vec<(usize, isize, usize)> = x.dims().iter().map(|&n| (0, 1, n)).collect();
            let mut seen = vec![false; rank];
            for (i, (&s, &e)) in starts.iter().zip(&ends).enumerate() {
                let k = match &axes {
                    Some(a) => axis(*a.get(i).ok_or_else(|| Fail::Op("fewer axes than starts".into()))?, rank)?,
                    None => i,
                };
                if k >= rank || std::mem::replace(&mut seen[k], true) {
                    return Err(Fail::Op(format!("axis {k} sliced twice or out of range")));
                }
                let step = steps.as_ref().and_then(|st| st.get(i).copied()).unwrap_or(1);
                let (start, count) = slice_axis(x.dims()[k], s, e, step)?;
                ranges[k] = (start.max(0) as usize, step as isize, count);
            }
            Ok(vec![Out::Device(gpu.slice(x, &ranges).await?)])
        })
    }
}

pub fn slice(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    let attrs = match ctx.opset < 10 {
        true => Some((ctx.ints("starts")?, ctx.ints("ends")?, ctx.ints("axes"))),
        false => None,
    };
    Some(Box::new(Slice { attrs }))
}

/// Split: each part a strided copy of its range along the axis. Sizes from the attribute
/// (before opset 13), else host input 1, else equal parts.
struct Split {
    axis: i64,
    parts: usize,
    attr_split: Option<Vec<i64>>,
}

impl GpuKernel for Split {
    fn place(&self, input: usize) -> Place {
        Place::data_then_host(input)
    }

    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs.first(), Some(Some(x)) if x.dims.len() <= MAX_RANK)
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let x = device(xs, 0)?;
            let k = axis(self.axis, x.dims().len())?;
            let explicit = match (&self.attr_split, xs.get(1)) {
                (Some(s), _) => Some(s.clone()),
                (None, Some(Some(_))) => Some(int_values(host(xs, 1)?)?),
                (None, _) => None,
            };
            let mut ranges: Vec<(usize, isize, usize)> = x.dims().iter().map(|&n| (0, 1, n)).collect();
            let mut outs = Vec::new();
            let mut at = 0;
            for size in split_sizes(x.dims()[k], explicit, self.parts)? {
                ranges[k] = (at, 1, size);
                outs.push(Out::Device(gpu.slice(x, &ranges).await?));
                at += size;
            }
            Ok(outs)
        })
    }
}

pub fn split(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Split {
        axis: ctx.int("axis", 0),
        parts: ctx.int("num_outputs", ctx.node.output.len() as i64).max(0) as usize,
        attr_split: if ctx.opset < 13 { ctx.ints("split") } else { None },
    }))
}

struct Expand;

impl GpuKernel for Expand {
    fn place(&self, input: usize) -> Place {
        Place::data_then_host(input)
    }

    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(x), Some(s)] if x.dims.len() <= MAX_RANK && s.dims.iter().product::<usize>() <= MAX_RANK)
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let dims: Vec<usize> = int_values(host(xs, 1)?)?.iter().map(|&d| d.max(0) as usize).collect();
            Ok(vec![Out::Device(gpu.expand(device(xs, 0)?, &dims).await?)])
        })
    }
}

pub fn expand(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Expand))
}
