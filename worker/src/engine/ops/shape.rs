//! Shape and layout ops. Spec: Identity, Constant (value, value_float(s), value_int(s)),
//! Reshape (opset 5+, shape as input; 0 copies a dim unless `allowzero`, -1 infers),
//! Flatten, Transpose, Squeeze / Unsqueeze (axes as attribute before opset 13, as input from
//! 13), Concat, Shape (with `start` / `end` from opset 15), Slice (attributes before opset 10,
//! inputs with `axes` / `steps` from 10), Split (`split` attribute before 13, input from 13,
//! `num_outputs` from 18), Expand (8), Tile (6), Pad (`pads` / `value` attributes before 11,
//! inputs from 11, `axes` input from 18; modes constant / reflect / edge, wrap from 19),
//! ConstantOfShape (9), Range (11), Size, DepthToSpace (DCR, CRD from 11), SpaceToDepth.

use candle_core::{DType, Device, Shape, Tensor};

use super::{axis, input, int_values, Kernel, NodeCtx};
use crate::engine::tensor::from_proto;
use crate::error::{Result, WickError};

pub fn identity(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        Ok(vec![input(xs, 0)?.clone()])
    }))
}

/// Dropout at inference: the data passes through and the optional mask keeps everything.
/// Training mode (opset 12+ input 2 true, or `is_test` 0 before opset 7) is random: refused.
pub fn dropout(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    if ctx.opset < 7 && ctx.int("is_test", 0) == 0 {
        return Err(ctx.unsupported("training mode (is_test = 0)"));
    }
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        if let Some(training) = xs.get(2).copied().flatten() {
            let ratio = xs.get(1).copied().flatten().map_or(Ok(0.5), |r| {
                r.flatten_all()?
                    .to_dtype(candle_core::DType::F32)?
                    .to_vec1::<f32>()
                    .map(|v| v.first().copied().unwrap_or(0.5))
            })?;
            if int_values(training)?.first().is_some_and(|&t| t != 0) && ratio > 0.0 {
                candle_core::bail!("training-mode Dropout is random; Wick runs inference only")
            }
        }
        let mask = Tensor::ones(x.shape(), candle_core::DType::U8, x.device())?;
        Ok(vec![x.clone(), mask])
    }))
}

pub fn constant(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let dev = &Device::Cpu;
    let wrap = |e: candle_core::Error| WickError::invalid(format!("Constant: {e}"));
    let value = if let Some(t) = ctx.tensor_attr("value") {
        from_proto(t)?
    } else if let Some(v) = ctx.node.attribute.iter().find(|a| a.name == "value_float") {
        Tensor::new(v.f, dev).map_err(wrap)?
    } else if let Some(v) = ctx.node.attribute.iter().find(|a| a.name == "value_floats") {
        Tensor::new(v.floats.as_slice(), dev).map_err(wrap)?
    } else if let Some(v) = ctx.node.attribute.iter().find(|a| a.name == "value_int") {
        Tensor::new(v.i, dev).map_err(wrap)?
    } else if let Some(v) = ctx.ints("value_ints") {
        Tensor::new(v.as_slice(), dev).map_err(wrap)?
    } else {
        return Err(ctx.unsupported("no value, value_float(s) or value_int(s) attribute"));
    };
    Ok(Box::new(move |_: &[Option<&Tensor>]| {
        Ok(vec![value.clone()])
    }))
}

/// ONNX Reshape's target dims for an input of `dims`.
pub(crate) fn reshape_dims(dims: &[usize], spec: &[i64], allow_zero: bool) -> candle_core::Result<Vec<usize>> {
    let numel: usize = dims.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &s) in spec.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allow_zero => out.push(*dims.get(i).ok_or_else(|| {
                candle_core::Error::Msg(format!("shape {spec:?}: no dim {i} to copy"))
            })?),
            s if s >= 0 => out.push(s as usize),
            _ => candle_core::bail!("bad reshape target {spec:?}"),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !numel.is_multiple_of(known) {
            candle_core::bail!("cannot reshape {dims:?} to {spec:?}")
        }
        out[i] = numel / known;
    }
    Ok(out)
}

pub fn reshape(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let allow_zero = ctx.int("allowzero", 0) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let dims = reshape_dims(x.dims(), &int_values(input(xs, 1)?)?, allow_zero)?;
        Ok(vec![x.reshape(dims)?])
    }))
}

pub fn flatten(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 1);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        Ok(vec![x.reshape(flatten_dims(x.dims(), a)?)?])
    }))
}

/// Flatten's output dims: `[prod(dims[..axis]), prod(dims[axis..])]`.
pub(crate) fn flatten_dims(dims: &[usize], a: i64) -> candle_core::Result<Vec<usize>> {
    // axis may equal rank here (everything in the outer dim).
    let k = if a == dims.len() as i64 { dims.len() } else { axis(a, dims.len())? };
    let outer: usize = dims[..k].iter().product();
    Ok(vec![outer, dims.iter().product::<usize>() / outer.max(1)])
}

pub fn transpose(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let perm = ctx.ints("perm");
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let perm: Vec<usize> = match &perm {
            Some(p) => p
                .iter()
                .map(|&a| axis(a, x.rank()))
                .collect::<candle_core::Result<_>>()?,
            None => (0..x.rank()).rev().collect(),
        };
        Ok(vec![x.permute(perm)?.contiguous()?])
    }))
}

fn squeeze_with(x: &Tensor, axes: Option<Vec<i64>>) -> candle_core::Result<Tensor> {
    x.reshape(squeeze_dims(x.dims(), axes)?)
}

/// Squeeze's output dims: `axes` removed, or every 1 when there are none.
pub(crate) fn squeeze_dims(dims: &[usize], axes: Option<Vec<i64>>) -> candle_core::Result<Vec<usize>> {
    let rank = dims.len();
    let axes: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&a| axis(a, rank))
            .collect::<candle_core::Result<_>>()?,
        None => (0..rank).filter(|&d| dims[d] == 1).collect(),
    };
    Ok(dims
        .iter()
        .enumerate()
        .filter(|(d, _)| !axes.contains(d))
        .map(|(_, &n)| n)
        .collect())
}

fn unsqueeze_with(x: &Tensor, axes: &[i64]) -> candle_core::Result<Tensor> {
    x.reshape(unsqueeze_dims(x.dims(), axes)?)
}

/// Unsqueeze's output dims: a 1 inserted at each of `axes` (of the output's rank).
pub(crate) fn unsqueeze_dims(dims: &[usize], axes: &[i64]) -> candle_core::Result<Vec<usize>> {
    let rank = dims.len() + axes.len();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| axis(a, rank))
        .collect::<candle_core::Result<_>>()?;
    axes.sort_unstable();
    let mut dims = dims.to_vec();
    for a in axes {
        dims.insert(a, 1);
    }
    Ok(dims)
}

pub fn squeeze_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let axes = ctx.ints("axes");
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        Ok(vec![squeeze_with(input(xs, 0)?, axes.clone())?])
    }))
}

pub fn squeeze_input(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let axes = xs.get(1).copied().flatten().map(int_values).transpose()?;
        Ok(vec![squeeze_with(input(xs, 0)?, axes)?])
    }))
}

pub fn unsqueeze_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let axes = ctx
        .ints("axes")
        .ok_or_else(|| ctx.unsupported("missing axes"))?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        Ok(vec![unsqueeze_with(input(xs, 0)?, &axes)?])
    }))
}

pub fn unsqueeze_input(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        Ok(vec![unsqueeze_with(
            input(xs, 0)?,
            &int_values(input(xs, 1)?)?,
        )?])
    }))
}

pub fn concat(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 0);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let parts: Vec<&Tensor> = xs.iter().flatten().copied().collect();
        let first = parts
            .first()
            .ok_or_else(|| candle_core::Error::Msg("Concat of nothing".into()))?;
        Ok(vec![Tensor::cat(&parts, axis(a, first.rank())?)?])
    }))
}

pub fn shape(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let start = ctx.int("start", 0);
    let end = ctx.ints("end").is_some().then(|| ctx.int("end", 0));
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        Ok(vec![Tensor::new(shape_values(x.dims(), start, end).as_slice(), x.device())?])
    }))
}

/// Shape's output: `dims[start..end]`, negative bounds from the end, clamped.
pub(crate) fn shape_values(dims: &[usize], start: i64, end: Option<i64>) -> Vec<i64> {
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    dims[s..e.max(s)].iter().map(|&d| d as i64).collect()
}

type R<T> = candle_core::Result<T>;

/// The single value of a scalar (or one-element) tensor, as f64.
fn scalar(t: &Tensor) -> R<f64> {
    let v = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    v.first()
        .copied()
        .ok_or_else(|| candle_core::Error::Msg("expected a scalar, got an empty tensor".into()))
}

/// An optional input's integer values.
pub(crate) fn opt_ints(xs: &[Option<&Tensor>], i: usize) -> R<Option<Vec<i64>>> {
    xs.get(i).copied().flatten().map(int_values).transpose()
}

/// Dim `k` of `x` at the positions `ids` (candle's index_select wants a contiguous source).
fn select(x: &Tensor, k: usize, ids: Vec<i64>) -> R<Tensor> {
    let n = ids.len();
    x.contiguous()?
        .index_select(&Tensor::from_vec(ids, n, x.device())?, k)
}

/// Dim `k` of `x` at positions `start, start + step, …` (`count` of them); numpy clamping of
/// `start` / `end` is done by the caller.
fn take_strided(x: &Tensor, k: usize, start: i64, step: i64, count: usize) -> R<Tensor> {
    if step == 1 {
        return x.narrow(k, start as usize, count);
    }
    select(x, k, (0..count as i64).map(|j| start + j * step).collect())
}

/// ONNX Slice: per listed axis, numpy-style `start:end:step` with negative positions counted
/// from the end and out-of-range ones (e.g. INT64_MAX) clamped.
fn slice_with(
    x: &Tensor,
    starts: &[i64],
    ends: &[i64],
    axes: Option<Vec<i64>>,
    steps: Option<Vec<i64>>,
) -> R<Tensor> {
    if starts.len() != ends.len() {
        candle_core::bail!("Slice: {} starts but {} ends", starts.len(), ends.len())
    }
    let mut y = x.clone();
    for (i, (&s, &e)) in starts.iter().zip(ends).enumerate() {
        let k = match &axes {
            Some(a) => axis(a[i], x.rank())?,
            None => i,
        };
        let step = steps.as_ref().map_or(1, |s| s[i]);
        let (start, count) = slice_axis(x.dims()[k], s, e, step)?;
        y = take_strided(&y, k, start, step, count)?;
    }
    Ok(y)
}

/// One axis of a Slice over a dim of `n`: the first index taken and how many, from ONNX's
/// start / end (negative from the end, clamped) and step (not 0; negative walks back).
pub(crate) fn slice_axis(n: usize, s: i64, e: i64, step: i64) -> R<(i64, usize)> {
    let n = n as i64;
    let at = |v: i64, lo: i64, hi: i64| (if v < 0 { v.saturating_add(n) } else { v }).max(lo).min(hi);
    Ok(match step {
        0 => candle_core::bail!("Slice: step 0"),
        st if st > 0 => {
            let (b, e) = (at(s, 0, n), at(e, 0, n));
            (b, ((e - b).max(0) as u64).div_ceil(st as u64) as usize)
        }
        st => {
            let (b, e) = (at(s, 0, n - 1), at(e, -1, n - 1));
            (b, ((b - e).max(0) as u64).div_ceil(st.unsigned_abs()) as usize)
        }
    })
}

pub fn slice_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let starts = ctx
        .ints("starts")
        .ok_or_else(|| ctx.unsupported("missing starts"))?;
    let ends = ctx
        .ints("ends")
        .ok_or_else(|| ctx.unsupported("missing ends"))?;
    let axes = ctx.ints("axes");
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        Ok(vec![slice_with(
            input(xs, 0)?,
            &starts,
            &ends,
            axes.clone(),
            None,
        )?])
    }))
}

pub fn slice_input(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let (starts, ends) = (int_values(input(xs, 1)?)?, int_values(input(xs, 2)?)?);
        Ok(vec![slice_with(
            input(xs, 0)?,
            &starts,
            &ends,
            opt_ints(xs, 3)?,
            opt_ints(xs, 4)?,
        )?])
    }))
}

/// Part sizes for Split of a dim of `n`: the explicit list, or `parts` parts of
/// `ceil(n / parts)` with a smaller last one (opset 18's rule; equal parts before it). Shared
/// with the GPU op.
pub(crate) fn split_sizes(n: usize, explicit: Option<Vec<i64>>, parts: usize) -> R<Vec<usize>> {
    let sizes: Vec<usize> = match explicit {
        Some(v) => v.iter().map(|&s| s.max(0) as usize).collect(),
        None => {
            let each = n.div_ceil(parts.max(1));
            (0..parts)
                .map(|p| each.min(n.saturating_sub(p * each)))
                .collect()
        }
    };
    if sizes.iter().sum::<usize>() != n {
        candle_core::bail!("Split sizes {sizes:?} do not add up to {n}")
    }
    Ok(sizes)
}

/// Split on attribute `axis`, with sizes from `attr_split`, else input 1, else equal parts.
fn split_kernel(ctx: &NodeCtx, attr_split: Option<Vec<i64>>) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 0);
    let parts = ctx.int("num_outputs", ctx.node.output.len() as i64) as usize;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let k = axis(a, x.rank())?;
        let explicit = match &attr_split {
            Some(s) => Some(s.clone()),
            None => opt_ints(xs, 1)?,
        };
        let mut at = 0;
        let mut out = Vec::new();
        for size in split_sizes(x.dims()[k], explicit, parts)? {
            out.push(x.narrow(k, at, size)?);
            at += size;
        }
        Ok(out)
    }))
}

/// Split before opset 13: sizes in the `split` attribute (opset 1 also allowed an input).
pub fn split_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    split_kernel(ctx, ctx.ints("split"))
}

/// Split from opset 13: sizes as input 1; from 18 `num_outputs` may leave a smaller last part.
pub fn split_input(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    split_kernel(ctx, None)
}

pub fn expand(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let dims: Vec<usize> = int_values(input(xs, 1)?)?
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        let out = x
            .shape()
            .broadcast_shape_binary_op(&Shape::from(dims), "Expand")?;
        Ok(vec![x.broadcast_as(out)?.contiguous()?])
    }))
}

pub fn tile(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let reps: Vec<usize> = int_values(input(xs, 1)?)?
            .iter()
            .map(|&r| r.max(0) as usize)
            .collect();
        if reps.len() != x.rank() {
            candle_core::bail!("Tile: {} repeats for rank {}", reps.len(), x.rank())
        }
        Ok(vec![x.repeat(reps)?])
    }))
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum PadMode {
    Constant,
    Reflect,
    Edge,
    Wrap,
}

fn pad_mode(ctx: &NodeCtx) -> Result<PadMode> {
    Ok(match ctx.string("mode", "constant").as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" => PadMode::Wrap,
        other => return Err(ctx.unsupported(&format!("mode '{other}'"))),
    })
}

/// Pad (or, for negative amounts, crop) dim `k` by `before` / `after`.
pub(super) fn pad_axis(x: &Tensor, k: usize, before: i64, after: i64, mode: PadMode, value: f64) -> R<Tensor> {
    let n = x.dims()[k] as i64;
    let (crop_b, crop_a) = ((-before).max(0), (-after).max(0));
    let x = x.narrow(k, crop_b as usize, (n - crop_b - crop_a).max(0) as usize)?;
    let (before, after, n) = (before.max(0), after.max(0), n - crop_b - crop_a);
    if before == 0 && after == 0 {
        return Ok(x);
    }
    if mode == PadMode::Constant {
        let block = |len: i64| -> R<Tensor> {
            let mut dims = x.dims().to_vec();
            dims[k] = len as usize;
            Tensor::zeros(dims, x.dtype(), x.device())?.affine(1., value)
        };
        return Tensor::cat(&[&block(before)?, &x, &block(after)?], k);
    }
    if n == 0 {
        candle_core::bail!("Pad: cannot {mode:?}-pad an empty dim")
    }
    // Every output position maps to a source position on the dim.
    let src = |i: i64| match mode {
        PadMode::Edge => i.clamp(0, n - 1),
        PadMode::Wrap => i.rem_euclid(n),
        _ if n == 1 => 0,
        _ => {
            let m = i.rem_euclid(2 * (n - 1));
            if m < n {
                m
            } else {
                2 * (n - 1) - m
            }
        }
    };
    select(&x, k, (-before..n + after).map(src).collect())
}

/// ONNX Pad: `pads` is `[begin_0, …, begin_k, end_0, …, end_k]` over `axes` (all by default).
fn pad_with(
    x: &Tensor,
    pads: &[i64],
    axes: Option<Vec<i64>>,
    mode: PadMode,
    value: f64,
) -> R<Tensor> {
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&a| axis(a, x.rank())).collect::<R<_>>()?,
        None => (0..x.rank()).collect(),
    };
    if pads.len() != 2 * axes.len() {
        candle_core::bail!("Pad: {} pads for {} axes", pads.len(), axes.len())
    }
    let mut y = x.clone();
    for (i, &k) in axes.iter().enumerate() {
        y = pad_axis(&y, k, pads[i], pads[i + axes.len()], mode, value)?;
    }
    Ok(y)
}

/// Pad before opset 11: `pads` (`paddings` in opset 1) and `value` are attributes.
pub fn pad_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let pads = ctx
        .ints("pads")
        .or_else(|| ctx.ints("paddings"))
        .ok_or_else(|| ctx.unsupported("missing pads"))?;
    let (mode, value) = (pad_mode(ctx)?, ctx.float("value", 0.) as f64);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        Ok(vec![pad_with(input(xs, 0)?, &pads, None, mode, value)?])
    }))
}

/// Pad from opset 11: `pads` and `constant_value` are inputs; from 18 an `axes` input too.
pub fn pad_input(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let mode = pad_mode(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let value = xs
            .get(2)
            .copied()
            .flatten()
            .map(scalar)
            .transpose()?
            .unwrap_or(0.);
        let pads = int_values(input(xs, 1)?)?;
        Ok(vec![pad_with(
            input(xs, 0)?,
            &pads,
            opt_ints(xs, 3)?,
            mode,
            value,
        )?])
    }))
}

pub fn constant_of_shape(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let value = match ctx.tensor_attr("value") {
        Some(t) => from_proto(t)?,
        None => Tensor::new(0f32, &Device::Cpu)
            .map_err(|e| WickError::invalid(format!("ConstantOfShape: {e}")))?,
    };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let dims: Vec<usize> = int_values(input(xs, 0)?)?
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        Ok(vec![value.reshape(())?.broadcast_as(dims)?.contiguous()?])
    }))
}

pub fn range(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let start = input(xs, 0)?;
        let (s, limit, delta) = (
            scalar(start)?,
            scalar(input(xs, 1)?)?,
            scalar(input(xs, 2)?)?,
        );
        let n = ((limit - s) / delta).ceil().max(0.) as i64;
        Ok(vec![Tensor::arange(0i64, n, start.device())?
            .to_dtype(start.dtype())?
            .affine(delta, s)?])
    }))
}

pub fn size(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        Ok(vec![Tensor::new(x.elem_count() as i64, x.device())?])
    }))
}

/// Moves between depth and space: view `x` as `mid`, permute by `perm`, view as `out`.
fn regroup(x: &Tensor, mid: [usize; 6], perm: [usize; 6], out: [usize; 4]) -> R<Tensor> {
    x.reshape(mid.as_slice())?
        .permute(perm.as_slice())?
        .contiguous()?
        .reshape(out.as_slice())
}

pub fn depth_to_space(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let b = ctx.int("blocksize", 0).max(1) as usize;
    let crd = match ctx.string("mode", "DCR").as_str() {
        "DCR" => false,
        "CRD" => true,
        other => return Err(ctx.unsupported(&format!("mode '{other}'"))),
    };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (n, c, h, w) = input(xs, 0)?.dims4()?;
        let (c2, out) = (c / (b * b), [n, c / (b * b), h * b, w * b]);
        if crd {
            regroup(input(xs, 0)?, [n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3], out)
        } else {
            regroup(input(xs, 0)?, [n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2], out)
        }
        .map(|y| vec![y])
    }))
}

pub fn space_to_depth(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let b = ctx.int("blocksize", 0).max(1) as usize;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (n, c, h, w) = input(xs, 0)?.dims4()?;
        let y = regroup(
            input(xs, 0)?,
            [n, c, h / b, b, w / b, b],
            [0, 3, 5, 1, 2, 4],
            [n, c * b * b, h / b, w / b],
        )?;
        Ok(vec![y])
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_copies_zeros_and_infers_minus_one() {
        assert_eq!(
            reshape_dims(&[2, 3, 4], &[0, -1], false).unwrap(),
            vec![2, 12]
        );
        assert_eq!(
            reshape_dims(&[2, 3, 4], &[-1, 4], false).unwrap(),
            vec![6, 4]
        );
        assert!(reshape_dims(&[2, 3], &[4, -1], false).is_err());
    }

    use super::super::test_util::{self as tu, assert_close, t, values};

    fn ids(v: &[i64]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    fn run(n: &candle_onnx::onnx::NodeProto, opset: i64, xs: &[Option<&Tensor>]) -> Vec<Tensor> {
        tu::build(n, opset).run(xs).unwrap()
    }

    #[test]
    fn slice_negative_steps_and_huge_ends() {
        let x = t(&[2, 4], &[1., 2., 3., 4., 5., 6., 7., 8.]);
        let n = tu::node("Slice", 5, vec![]);
        // x[:, ::-2] with ends = INT64_MIN (clamped to "before the start").
        let y = run(
            &n,
            13,
            &[
                Some(&x),
                Some(&ids(&[-1])),
                Some(&ids(&[i64::MIN])),
                Some(&ids(&[1])),
                Some(&ids(&[-2])),
            ],
        );
        assert_close(&values(&y[0]), &[4., 2., 8., 6.], 0.);
        // x[1:INT64_MAX, 1:3], axes defaulted.
        let y = run(
            &n,
            13,
            &[
                Some(&x),
                Some(&ids(&[1, 1])),
                Some(&ids(&[i64::MAX, 3])),
                None,
                None,
            ],
        );
        assert_eq!(y[0].dims(), &[1, 2]);
        assert_close(&values(&y[0]), &[6., 7.], 0.);
        // A strided slice of a non-contiguous (transposed) input.
        let y = run(
            &n,
            13,
            &[
                Some(&x.t().unwrap()),
                Some(&ids(&[0])),
                Some(&ids(&[4])),
                None,
                Some(&ids(&[2])),
            ],
        );
        assert_close(&values(&y[0]), &[1., 5., 3., 7.], 0.);
        // Opset 1: the same slice from attributes.
        let n = tu::node(
            "Slice",
            1,
            vec![
                tu::ints("starts", &[1]),
                tu::ints("ends", &[3]),
                tu::ints("axes", &[-1]),
            ],
        );
        assert_close(&values(&run(&n, 1, &[Some(&x)])[0]), &[2., 3., 6., 7.], 0.);
    }

    #[test]
    fn split_sizes_from_attribute_input_or_output_count() {
        let x = t(&[5], &[1., 2., 3., 4., 5.]);
        let mut n = tu::node("Split", 1, vec![tu::ints("split", &[2, 3])]);
        n.output = vec!["a".into(), "b".into()];
        let y = run(&n, 11, &[Some(&x)]);
        assert_close(&values(&y[1]), &[3., 4., 5.], 0.);
        // Opset 13: the sizes are an input; the attribute is no longer read.
        n.input.push("split".into());
        let y = run(&n, 13, &[Some(&x), Some(&ids(&[4, 1]))]);
        assert_close(&values(&y[0]), &[1., 2., 3., 4.], 0.);
        // Opset 18: num_outputs = 2 over 5 gives 3 + 2.
        let mut n = tu::node("Split", 1, vec![tu::int("num_outputs", 2)]);
        n.output = vec!["a".into(), "b".into()];
        let y = run(&n, 18, &[Some(&x)]);
        assert_eq!((y[0].dims(), y[1].dims()), (&[3][..], &[2][..]));
    }

    #[test]
    fn pad_modes_and_negative_pads() {
        let x = t(&[1, 3], &[1., 2., 3.]);
        let pad = |mode: &str, pads: &[i64], value: Option<&Tensor>| {
            let n = tu::node("Pad", 3, vec![tu::string("mode", mode)]);
            values(&run(&n, 11, &[Some(&x), Some(&ids(pads)), value])[0])
        };
        let nine = t(&[], &[9.]);
        assert_close(
            &pad("constant", &[0, 1, 0, 2], Some(&nine)),
            &[9., 1., 2., 3., 9., 9.],
            0.,
        );
        assert_close(
            &pad("reflect", &[0, 2, 0, 2], None),
            &[3., 2., 1., 2., 3., 2., 1.],
            0.,
        );
        assert_close(&pad("edge", &[0, 1, 0, 1], None), &[1., 1., 2., 3., 3.], 0.);
        assert_close(&pad("constant", &[0, -1, 0, 1], None), &[2., 3., 0.], 0.);
        // Opset 2: pads and value are attributes.
        let n = tu::node(
            "Pad",
            1,
            vec![tu::ints("pads", &[0, 1, 0, 0]), tu::float("value", 7.)],
        );
        assert_close(&values(&run(&n, 2, &[Some(&x)])[0]), &[7., 1., 2., 3.], 0.);
    }

    #[test]
    fn expand_tile_and_generators() {
        let x = t(&[2, 1], &[1., 2.]);
        let y = run(
            &tu::node("Expand", 2, vec![]),
            13,
            &[Some(&x), Some(&ids(&[2, 1, 3]))],
        );
        assert_eq!(y[0].dims(), &[2, 2, 3]);
        let y = run(
            &tu::node("Tile", 2, vec![]),
            13,
            &[Some(&x), Some(&ids(&[2, 2]))],
        );
        assert_close(&values(&y[0]), &[1., 1., 2., 2., 1., 1., 2., 2.], 0.);
        let y = run(
            &tu::node("ConstantOfShape", 1, vec![]),
            13,
            &[Some(&ids(&[2, 0]))],
        );
        assert_eq!(y[0].dims(), &[2, 0]);
        let y = run(
            &tu::node("Range", 3, vec![]),
            13,
            &[Some(&ids(&[10])), Some(&ids(&[4])), Some(&ids(&[-3]))],
        );
        assert_eq!(y[0].to_vec1::<i64>().unwrap(), vec![10, 7]);
        let y = run(&tu::node("Size", 1, vec![]), 13, &[Some(&x)]);
        assert_eq!(y[0].to_scalar::<i64>().unwrap(), 2);
    }

    #[test]
    fn depth_to_space_modes_and_space_to_depth_inverse() {
        let x = t(&[1, 4, 1, 1], &[1., 2., 3., 4.]);
        let d2s = |mode: &str| {
            tu::node(
                "DepthToSpace",
                1,
                vec![tu::int("blocksize", 2), tu::string("mode", mode)],
            )
        };
        let y = run(&d2s("DCR"), 13, &[Some(&x)]);
        assert_eq!(y[0].dims(), &[1, 1, 2, 2]);
        assert_close(&values(&y[0]), &[1., 2., 3., 4.], 0.);
        // 8 channels: DCR takes the block from the outer channel index, CRD from the inner one.
        let x = t(&[1, 8, 1, 1], &[0., 1., 2., 3., 4., 5., 6., 7.]);
        assert_close(
            &values(&run(&d2s("DCR"), 13, &[Some(&x)])[0]),
            &[0., 2., 4., 6., 1., 3., 5., 7.],
            0.,
        );
        assert_close(
            &values(&run(&d2s("CRD"), 13, &[Some(&x)])[0]),
            &[0., 1., 2., 3., 4., 5., 6., 7.],
            0.,
        );
        let s2d = tu::node("SpaceToDepth", 1, vec![tu::int("blocksize", 2)]);
        let back = run(&s2d, 13, &[Some(&run(&d2s("DCR"), 13, &[Some(&x)])[0])]);
        assert_close(&values(&back[0]), &values(&x), 0.);
    }
}
