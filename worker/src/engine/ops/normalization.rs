//! Normalizations. Spec: Softmax / LogSoftmax / Hardmax — opsets 1–12 coerce the input to 2-D at `axis`
//! (default 1) and normalise each row; opset 13+ normalise along `axis` (default -1).
//! BatchNormalization (inference mode only, opsets 1–15), InstanceNormalization,
//! LayerNormalization (17; Mean / InvStdDev outputs), GroupNormalization (18: scale / bias per
//! group; 21: per channel), RMSNormalization (23), MeanVarianceNormalization (9, 13), LRN,
//! LpNormalization. Statistics are computed in f32 (f64 for f64 inputs), `stash_type`'s default.

use candle_core::{DType, Tensor};

use super::simd::{self, V4};
use super::{axis, fast, input, Kernel, NodeCtx};
use crate::error::Result;

/// Numerically stable softmax (or log-softmax) along `dim`.
pub(super) fn softmax_along(x: &Tensor, dim: usize, log: bool) -> candle_core::Result<Tensor> {
    if dim + 1 == x.rank() {
        if let Some(y) = softmax_last_f32(x, log) {
            return y;
        }
    }
    let shifted = x.broadcast_sub(&x.max_keepdim(dim)?)?;
    let e = shifted.exp()?;
    let sum = e.sum_keepdim(dim)?;
    if log {
        shifted.broadcast_sub(&sum.log()?)
    } else {
        e.broadcast_div(&sum)
    }
}

/// The sum of `xs` in eight running lanes (so that it vectorises).
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    acc.iter().sum::<f32>() + tail
}

/// Softmax over the last dim of a contiguous f32 tensor, one row at a time: max, then e^(x-max)
/// into the output ([`simd::exp`]) summing as it goes, then one scaling pass.
fn softmax_last_f32(x: &Tensor, log: bool) -> Option<R<Tensor>> {
    let n = *x.dims().last()?;
    let v = fast::with_f32(x, |xs| {
        let mut out = vec![0f32; xs.len()];
        for (row, dst) in xs.chunks_exact(n.max(1)).zip(out.chunks_exact_mut(n.max(1))) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let m = V4::splat(max);
            simd::map(row, dst, |v| simd::exp(v.sub(m)));
            let sum = lane_sum(dst, |v| v);
            if log {
                // (x - max) - ln(sum): subtracting max + ln(sum) at once loses digits of x.
                let ln_sum = sum.ln();
                dst.iter_mut().zip(row).for_each(|(d, &v)| *d = (v - max) - ln_sum);
            } else {
                let inv = V4::splat(1.0 / sum);
                simd::map_in_place(dst, |v| v.mul(inv));
            }
        }
        out
    })?;
    Some(Tensor::from_vec(v, x.shape(), x.device()))
}

/// `f(x, dim)` along a row axis: which axis and how depends on the opset.
type AlongAxis = fn(&Tensor, usize) -> candle_core::Result<Tensor>;

/// Opsets 1–12: the input is coerced to 2-D at `axis` (default 1) and each row is normalised.
fn legacy(ctx: &NodeCtx, f: AlongAxis) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 1);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let k = axis(a, x.rank())?;
        let rows: usize = x.dims()[..k].iter().product();
        let flat = x.reshape((rows, x.elem_count() / rows.max(1)))?;
        Ok(vec![f(&flat, 1)?.reshape(x.dims())?])
    }))
}

/// Opset 13+: along `axis` (default -1).
fn modern(ctx: &NodeCtx, f: AlongAxis) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", -1);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        Ok(vec![f(x, axis(a, x.rank())?)?])
    }))
}

/// 1 at the first maximum along `dim`, 0 elsewhere.
fn hardmax_along(x: &Tensor, dim: usize) -> candle_core::Result<Tensor> {
    let first = x.argmax_keepdim(dim)?;
    let positions = Tensor::arange(0u32, x.dim(dim)? as u32, x.device())?;
    let mut shape = vec![1; x.rank()];
    shape[dim] = x.dim(dim)?;
    positions.reshape(shape)?.broadcast_eq(&first)?.to_dtype(x.dtype())
}

pub fn softmax_legacy(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    legacy(ctx, |x, d| softmax_along(x, d, false))
}
pub fn softmax(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    modern(ctx, |x, d| softmax_along(x, d, false))
}
pub fn log_softmax_legacy(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    legacy(ctx, |x, d| softmax_along(x, d, true))
}
pub fn log_softmax(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    modern(ctx, |x, d| softmax_along(x, d, true))
}
pub fn hardmax_legacy(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    legacy(ctx, hardmax_along)
}
pub fn hardmax(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    modern(ctx, hardmax_along)
}

type R<T> = candle_core::Result<T>;

/// The dtype statistics are computed in: f64 stays f64, anything else is f32 (`stash_type` 1).
fn stats_dtype(x: &Tensor) -> DType {
    if x.dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// `x - mean` and the (biased) variance over `dims`, both kept, in the statistics dtype.
fn moments(x: &Tensor, dims: &[usize]) -> R<(Tensor, Tensor, Tensor)> {
    let x = x.to_dtype(stats_dtype(x))?;
    let mean = x.mean_keepdim(dims)?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(dims)?;
    Ok((centered, mean, var))
}

/// `(x - mean) / sqrt(var + eps)` over `dims`, with the mean and `1 / sqrt(var + eps)`.
fn standardize(x: &Tensor, dims: &[usize], eps: f64) -> R<(Tensor, Tensor, Tensor)> {
    let (centered, mean, var) = moments(x, dims)?;
    let inv_std = (var + eps)?.sqrt()?.recip()?;
    Ok((centered.broadcast_mul(&inv_std)?, mean, inv_std))
}

/// `y * scale + bias` (numpy broadcasting; absent parts skipped), cast to `dtype`.
fn scale_shift(y: &Tensor, scale: Option<&Tensor>, bias: Option<&Tensor>, dtype: DType) -> R<Tensor> {
    let mut y = y.clone();
    if let Some(s) = scale {
        y = y.broadcast_mul(&s.to_dtype(y.dtype())?)?;
    }
    if let Some(b) = bias {
        y = y.broadcast_add(&b.to_dtype(y.dtype())?)?;
    }
    y.to_dtype(dtype)
}

/// A per-channel parameter (`[C]`) seen as `[1, C, 1, …]` for an input of `rank`; a parameter
/// with as many elements as one sample (BatchNormalization's `spatial = 0`) as `[1, …dims]`.
fn per_channel(p: &Tensor, dims: &[usize]) -> R<Tensor> {
    let mut shape = vec![1; dims.len()];
    if p.elem_count() == dims.get(1).copied().unwrap_or(1) {
        shape[1.min(dims.len() - 1)] = p.elem_count();
    } else {
        shape[1..].copy_from_slice(&dims[1..]);
    }
    p.reshape(shape)
}

/// The dims from `axis` to the end (LayerNormalization, RMSNormalization).
fn trailing(a: i64, rank: usize) -> R<Vec<usize>> {
    Ok((axis(a, rank)?..rank).collect())
}

/// BatchNormalization in inference mode, every opset: opsets before 9 (`spatial` = 0 gives
/// per-element statistics) and 15's mixed parameter dtypes are handled by the parameter shape and
/// a cast; `training_mode` (14+) and the running-statistics outputs are not supported.
pub fn batch_norm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    if ctx.int("training_mode", 0) != 0 || ctx.node.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(ctx.unsupported("training mode"));
    }
    let eps = ctx.float("epsilon", 1e-5) as f64;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        if let Some(y) = batch_norm_f32(x, xs, eps) {
            return Ok(vec![y?]);
        }
        let param = |i| -> R<Tensor> { per_channel(&input(xs, i)?.to_dtype(stats_dtype(x))?, x.dims()) };
        let inv_std = (param(4)? + eps)?.sqrt()?.recip()?;
        let y = x.to_dtype(stats_dtype(x))?.broadcast_sub(&param(3)?)?.broadcast_mul(&inv_std)?;
        Ok(vec![scale_shift(&y, Some(&param(1)?), Some(&param(2)?), x.dtype())?])
    }))
}

/// f32 with per-channel statistics: `scale / sqrt(var + eps)` and the shift folded first (C
/// values), then one pass over x.
fn batch_norm_f32(x: &Tensor, xs: &[Option<&Tensor>], eps: f64) -> Option<R<Tensor>> {
    let c = *x.dims().get(1)?;
    let param = |i: usize| -> Option<Vec<f64>> {
        let p = xs.get(i).copied().flatten()?;
        (p.elem_count() == c).then(|| p.to_dtype(DType::F64).ok()?.flatten_all().ok()?.to_vec1::<f64>().ok())?
    };
    if x.dtype() != DType::F32 {
        return None;
    }
    let (scale, bias, mean, var) = (param(1)?, param(2)?, param(3)?, param(4)?);
    let a: Vec<f64> = scale.iter().zip(&var).map(|(s, v)| s / (v + eps).sqrt()).collect();
    let shift: Vec<f32> = bias.iter().zip(&mean).zip(&a).map(|((b, m), a)| (b - m * a) as f32).collect();
    let a: Vec<f32> = a.into_iter().map(|a| a as f32).collect();
    fast::channel_affine(x, &a, &shift)
}

/// LayerNormalization (17): over the dims from `axis`; outputs Y, Mean, InvStdDev.
pub fn layer_norm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (a, eps) = (ctx.int("axis", -1), ctx.float("epsilon", 1e-5) as f64);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let from = axis(a, x.rank())?;
        if let Some(out) = layer_norm_f32(x, from, xs.get(1).copied().flatten(), xs.get(2).copied().flatten(), eps as f32) {
            return out;
        }
        let (y, mean, inv_std) = standardize(x, &trailing(a, x.rank())?, eps)?;
        let bias = xs.get(2).copied().flatten();
        Ok(vec![scale_shift(&y, Some(input(xs, 1)?), bias, x.dtype())?, mean, inv_std])
    }))
}

/// LayerNormalization of a contiguous f32 tensor over the dims from `from`, with scale and bias
/// (if any) of one row's size: per row, the mean, the variance of the centred values, then one
/// pass writing `(x - mean) · inv_std · scale + bias`.
fn layer_norm_f32(x: &Tensor, from: usize, scale: Option<&Tensor>, bias: Option<&Tensor>, eps: f32) -> Option<R<Vec<Tensor>>> {
    let n: usize = x.dims()[from..].iter().product();
    let row_param = |p: Option<&Tensor>, fill: f32| -> Option<Vec<f32>> {
        match p {
            None => Some(vec![fill; n]),
            Some(p) if p.elem_count() == n => fast::with_f32(p, |v| v.to_vec()),
            Some(_) => None,
        }
    };
    let (g, b) = (row_param(scale, 1.0)?, row_param(bias, 0.0)?);
    if n == 0 {
        return None;
    }
    let (y, stats) = fast::with_f32(x, |xs| {
        let mut y = vec![0f32; xs.len()];
        let mut stats = Vec::with_capacity(2 * xs.len() / n);
        for (row, dst) in xs.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
            let mean = lane_sum(row, |v| v) / n as f32;
            let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for (((d, &v), &g), &b) in dst.iter_mut().zip(row).zip(&g).zip(&b) {
                *d = (v - mean) * inv * g + b;
            }
            stats.push((mean, inv));
        }
        (y, stats)
    })?;
    let mut stat_dims = x.dims().to_vec();
    stat_dims[from..].iter_mut().for_each(|d| *d = 1);
    let (mean, inv): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
    let dev = x.device();
    Some((|| {
        Ok(vec![
            Tensor::from_vec(y, x.shape(), dev)?,
            Tensor::from_vec(mean, stat_dims.as_slice(), dev)?,
            Tensor::from_vec(inv, stat_dims.as_slice(), dev)?,
        ])
    })())
}

/// `x / sqrt(mean(x²) + eps)` over `dims` (in the statistics dtype) and the `1 / sqrt(…)`.
fn rms(x: &Tensor, dims: &[usize], eps: f64) -> R<(Tensor, Tensor)> {
    let xf = x.to_dtype(stats_dtype(x))?;
    let inv = (xf.sqr()?.mean_keepdim(dims)? + eps)?.sqrt()?.recip()?;
    Ok((xf.broadcast_mul(&inv)?, inv))
}

/// RMSNormalization (23) and onnxruntime's SimplifiedLayerNormalization (its Llama exports):
/// `x / sqrt(mean(x²) + eps) * scale` over the dims from `axis`; the second output (Simplified
/// only) is the inverse standard deviation.
pub fn rms_norm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (a, eps) = (ctx.int("axis", -1), ctx.float("epsilon", 1e-5) as f64);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let (y, inv) = rms(x, &trailing(a, x.rank())?, eps)?;
        Ok(vec![scale_shift(&y, Some(input(xs, 1)?), None, x.dtype())?, inv])
    }))
}

/// com.microsoft SkipSimplifiedLayerNormalization: `s = input + skip (+ bias)`, then RMS
/// normalisation of `s` over the last dim times `gamma`. Outputs: Y, (mean: unused, zeros),
/// inverse std, and `s`.
pub fn skip_rms_norm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let eps = ctx.float("epsilon", 1e-5) as f64;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let mut sum = x.broadcast_add(input(xs, 1)?)?;
        if let Some(bias) = xs.get(3).copied().flatten() {
            sum = sum.broadcast_add(bias)?;
        }
        let (y, inv) = rms(&sum, &[sum.rank() - 1], eps)?;
        let y = scale_shift(&y, Some(input(xs, 2)?), None, x.dtype())?;
        Ok(vec![y, inv.zeros_like()?, inv, sum])
    }))
}

/// InstanceNormalization: per sample and channel over the spatial dims.
pub fn instance_norm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let eps = ctx.float("epsilon", 1e-5) as f64;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let (y, _, _) = standardize(x, &(2..x.rank()).collect::<Vec<_>>(), eps)?;
        let (scale, bias) = (per_channel(input(xs, 1)?, x.dims())?, per_channel(input(xs, 2)?, x.dims())?);
        Ok(vec![scale_shift(&y, Some(&scale), Some(&bias), x.dtype())?])
    }))
}

/// GroupNormalization: statistics per sample and group of channels; `per_group` parameters
/// (`[num_groups]`, opset 18) or per channel (`[C]`, opset 21).
fn group_norm_kernel(ctx: &NodeCtx, per_group: bool) -> Result<Box<dyn Kernel>> {
    let eps = ctx.float("epsilon", 1e-5) as f64;
    let groups = ctx.int("num_groups", 0);
    if groups <= 0 {
        return Err(ctx.unsupported("num_groups must be positive"));
    }
    let g = groups as usize;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let (n, c) = (x.dims()[0], x.dims().get(1).copied().unwrap_or(1));
        let (y, _, _) = standardize(&x.reshape((n, g, x.elem_count() / (n * g).max(1)))?, &[2], eps)?;
        let param = |i| -> R<Tensor> {
            let p = input(xs, i)?;
            let p = if per_group { p.reshape((g, 1))?.broadcast_as((g, c / g))?.flatten_all()? } else { p.clone() };
            per_channel(&p, x.dims())
        };
        Ok(vec![scale_shift(&y.reshape(x.dims())?, Some(&param(1)?), Some(&param(2)?), x.dtype())?])
    }))
}

pub fn group_norm_18(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    group_norm_kernel(ctx, true)
}
pub fn group_norm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    group_norm_kernel(ctx, false)
}

/// MeanVarianceNormalization: `(x - mean) / (sqrt(var) + 1e-9)` over `axes` (default 0, 2, 3),
/// as the spec's function body computes it.
pub fn mean_variance_norm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let axes = ctx.ints("axes").unwrap_or_else(|| vec![0, 2, 3]);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let dims = axes.iter().map(|&a| axis(a, x.rank())).collect::<R<Vec<_>>>()?;
        let (centered, _, var) = moments(x, &dims)?;
        Ok(vec![centered.broadcast_div(&(var.sqrt()? + 1e-9)?)?.to_dtype(x.dtype())?])
    }))
}

/// LRN: `x / (bias + alpha / size * Σ x²)^beta`, the sum over `size` neighbouring channels.
pub fn lrn(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let size = ctx.int("size", 0);
    if size <= 0 {
        return Err(ctx.unsupported("size must be positive"));
    }
    let size = size as usize;
    let (alpha, beta, bias) = (ctx.float("alpha", 1e-4) as f64, ctx.float("beta", 0.75) as f64, ctx.float("bias", 1.) as f64);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let xf = x.to_dtype(stats_dtype(x))?;
        let c = xf.dim(1)?;
        let before = (size - 1) / 2;
        let sq = xf.sqr()?.pad_with_zeros(1, before, size - 1 - before)?;
        let mut sum = sq.narrow(1, 0, c)?;
        for i in 1..size {
            sum = (sum + sq.narrow(1, i, c)?)?;
        }
        Ok(vec![(xf / sum.affine(alpha / size as f64, bias)?.powf(beta)?)?.to_dtype(x.dtype())?])
    }))
}

/// LpNormalization: `x / ‖x‖_p` along `axis` (p 1 or 2); a zero norm gives zeros.
pub fn lp_norm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (a, p) = (ctx.int("axis", -1), ctx.int("p", 2));
    if p != 1 && p != 2 {
        return Err(ctx.unsupported(&format!("p = {p}")));
    }
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let k = axis(a, x.rank())?;
        let norm = if p == 1 { x.abs()?.sum_keepdim(k)? } else { x.sqr()?.sum_keepdim(k)?.sqrt()? };
        let safe = norm.eq(0.)?.where_cond(&norm.ones_like()?, &norm)?;
        Ok(vec![x.broadcast_div(&safe)?])
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;

    #[test]
    fn skip_simplified_layer_norm_adds_then_normalises() {
        let mut n = node("SkipSimplifiedLayerNormalization", 3, vec![]);
        n.domain = "com.microsoft".into();
        let k = build(&n, 1);
        let (x, skip, gamma) = (t(&[1, 2], &[1., 2.]), t(&[1, 2], &[2., 2.]), t(&[2], &[1., 2.]));
        let y = k.run(&[Some(&x), Some(&skip), Some(&gamma)]).unwrap();
        // s = [3, 4]; rms = sqrt((9 + 16) / 2) = sqrt(12.5); y = s / rms * gamma.
        let r = (12.5f32 + 1e-5).sqrt();
        assert_close(&values(&y[0]), &[3. / r, 8. / r], 1e-6);
        assert_close(&values(&y[3]), &[3., 4.], 0.0);
    }

    #[test]
    fn softmax_axis_semantics_differ_by_opset() {
        let x = t(&[2, 2], &[1., 2., 3., 4.]);
        let n = node("Softmax", 1, vec![int("axis", 0)]);
        // opset 13: along axis 0 (columns).
        let y = build(&n, 13).run(&[Some(&x)]).unwrap();
        let c = 1. / (1. + (2f32).exp());
        assert_close(&values(&y[0]), &[c, c, 1. - c, 1. - c], 1e-6);
        // opset 11: coerced to 2-D at axis 0 → one row of 4.
        let y = build(&n, 11).run(&[Some(&x)]).unwrap();
        let s: f32 = [1f32, 2., 3., 4.].iter().map(|v| v.exp()).sum();
        let want: Vec<f32> = [1f32, 2., 3., 4.].iter().map(|v| v.exp() / s).collect();
        assert_close(&values(&y[0]), &want, 1e-6);
    }

    fn run(n: &candle_onnx::onnx::NodeProto, opset: i64, xs: &[&candle_core::Tensor]) -> Vec<candle_core::Tensor> {
        let args: Vec<Option<&candle_core::Tensor>> = xs.iter().map(|&x| Some(x)).collect();
        build(n, opset).run(&args).unwrap()
    }

    #[test]
    fn layer_norm_axis_picks_the_normalised_dims() {
        let x = t(&[2, 2], &[1., 3., 2., 6.]);
        let (one, zero) = (t(&[2], &[1., 1.]), t(&[2], &[0., 0.]));
        let y = run(&node("LayerNormalization", 3, vec![float("epsilon", 0.)]), 17, &[&x, &one, &zero]);
        assert_close(&values(&y[0]), &[-1., 1., -1., 1.], 1e-5);
        assert_close(&values(&y[1]), &[2., 4.], 1e-6);
        assert_close(&values(&y[2]), &[1., 0.5], 1e-6);
        // axis 0: one mean (3) and variance (3.5) over all four; scale [2, 2] broadcasts.
        let n = node("LayerNormalization", 2, vec![int("axis", 0), float("epsilon", 0.)]);
        let y = run(&n, 17, &[&x, &t(&[2, 2], &[1., 1., 1., 2.])]);
        let s = 3.5f32.sqrt();
        assert_close(&values(&y[0]), &[-2. / s, 0., -1. / s, 6. / s], 1e-5);
    }

    #[test]
    fn batch_and_instance_norm_use_per_channel_parameters() {
        let x = t(&[1, 2, 2], &[1., 3., 2., 6.]);
        let (scale, bias) = (t(&[2], &[1., 2.]), t(&[2], &[0., 1.]));
        let n = node("BatchNormalization", 5, vec![float("epsilon", 0.)]);
        let y = run(&n, 15, &[&x, &scale, &bias, &t(&[2], &[1., 2.]), &t(&[2], &[4., 16.])]);
        assert_close(&values(&y[0]), &[0., 1., 1., 3.], 1e-6);
        let n = node("InstanceNormalization", 3, vec![float("epsilon", 0.)]);
        let y = run(&n, 6, &[&x, &scale, &bias]);
        assert_close(&values(&y[0]), &[-1., 1., -1., 3.], 1e-5);
    }

    #[test]
    fn group_norm_parameters_per_group_at_18_per_channel_at_21() {
        let x = t(&[1, 2, 2], &[1., 3., 2., 6.]);
        let n = node("GroupNormalization", 3, vec![int("num_groups", 1), float("epsilon", 0.)]);
        // One group of 1, 3, 2, 6: mean 3, std sqrt(3.5).
        let z: Vec<f32> = [1f32, 3., 2., 6.].iter().map(|v| (v - 3.) / 3.5f32.sqrt()).collect();
        let y = run(&n, 18, &[&x, &t(&[1], &[2.]), &t(&[1], &[1.])]);
        assert_close(&values(&y[0]), &z.iter().map(|v| 2. * v + 1.).collect::<Vec<_>>(), 1e-5);
        let y = run(&n, 21, &[&x, &t(&[2], &[1., 2.]), &t(&[2], &[0., 1.])]);
        assert_close(&values(&y[0]), &[z[0], z[1], 2. * z[2] + 1., 2. * z[3] + 1.], 1e-5);
    }

    #[test]
    fn rms_mvn_lrn_and_lp() {
        let x = t(&[1, 2, 1, 1], &[3., 4.]);
        let y = run(&node("RMSNormalization", 2, vec![int("axis", 1), float("epsilon", 0.)]), 23, &[&x, &t(&[1], &[2.])]);
        let rms = 12.5f32.sqrt();
        assert_close(&values(&y[0]), &[6. / rms, 8. / rms], 1e-5);
        let y = run(&node("MeanVarianceNormalization", 1, vec![ints("axes", &[1])]), 13, &[&x]);
        assert_close(&values(&y[0]), &[-1., 1.], 1e-5);
        let n = node("LRN", 1, vec![int("size", 3), float("alpha", 3.), float("beta", 1.), float("bias", 1.)]);
        // Both channels see 3² + 4² = 25 → x / (1 + 25).
        assert_close(&values(&run(&n, 13, &[&x])[0]), &[3. / 26., 4. / 26.], 1e-6);
        let y = run(&node("LpNormalization", 1, vec![int("axis", 1)]), 13, &[&x]);
        assert_close(&values(&y[0]), &[0.6, 0.8], 1e-6);
        let y = run(&node("LpNormalization", 1, vec![int("axis", 1), int("p", 1)]), 13, &[&t(&[1, 2], &[0., 0.])]);
        assert_close(&values(&y[0]), &[0., 0.], 0.);
    }
}
