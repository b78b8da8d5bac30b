//! Reductions. Spec: https://onnx.ai/onnx/operators/, covering
//! - ReduceSum: `axes` attribute in opsets 1–12, optional input from 13;
//! - ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceLogSum,
//!   ReduceLogSumExp, ReduceSumSquare: `axes` attribute in opsets 1–17, optional input from 18;
//! - all of them: `keepdims` (default 1), `noop_with_empty_axes` (once `axes` is an input; then
//!   the elementwise part still applies, as the reference does: ReduceSumSquare squares); a
//!   reduction over an empty axis gives the op's identity (0, 1, ±inf);
//! - ArgMax, ArgMin (1+; `axis`, `keepdims`, `select_last_index` from 12), int64 indices;
//! - CumSum (11+) and CumProd (26+): `axis` input, `exclusive`, `reverse`.
//!
//! Everything runs on candle's kernels in the input dtype; ReduceProd and CumSum fold slices
//! along the axis, so integers stay exact. Integer ReduceL2/LogSum/LogSumExp go through f64
//! (candle has no integer sqrt/log/exp) and are cast back.

use candle_core::{DType, Result as CResult, Tensor};

use super::{axis, input, int_values, Kernel, NodeCtx};
use crate::error::Result;

#[derive(Clone, Copy)]
enum Reduce {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSum,
    LogSumExp,
    SumSquare,
}

impl Reduce {
    /// The reduction over `dims` (sorted, unique, none empty), keeping them as size 1.
    fn keepdim(self, x: &Tensor, dims: &[usize]) -> CResult<Tensor> {
        match self {
            Reduce::Sum => x.sum_keepdim(dims),
            Reduce::Mean => {
                let n: usize = dims.iter().map(|&d| x.dims()[d]).product();
                let s = x.sum_keepdim(dims)?;
                s.broadcast_div(&Tensor::new(n as f64, x.device())?.to_dtype(s.dtype())?)
            }
            Reduce::Max => fold(x, dims, |t, d| t.max_keepdim(d)),
            Reduce::Min => fold(x, dims, |t, d| t.min_keepdim(d)),
            Reduce::Prod => fold(x, dims, prod_keepdim),
            Reduce::L1 => x.abs()?.sum_keepdim(dims),
            Reduce::L2 => x.mul(x)?.sum_keepdim(dims)?.sqrt(),
            Reduce::LogSum => x.sum_keepdim(dims)?.log(),
            Reduce::LogSumExp => {
                let m = fold(x, dims, |t, d| t.max_keepdim(d))?;
                x.broadcast_sub(&m)?.exp()?.sum_keepdim(dims)?.log()?.add(&m)
            }
            Reduce::SumSquare => x.mul(x)?.sum_keepdim(dims),
        }
    }

    fn needs_float(self) -> bool {
        matches!(self, Reduce::L2 | Reduce::LogSum | Reduce::LogSumExp)
    }

    /// The value of a reduction over nothing, where candle's kernels cannot give it.
    fn identity(self) -> Option<f64> {
        match self {
            Reduce::Max | Reduce::LogSumExp => Some(f64::NEG_INFINITY),
            Reduce::Min => Some(f64::INFINITY),
            Reduce::Prod => Some(1.0),
            _ => None,
        }
    }
}

/// A single-axis keepdim reduction applied over each of `dims` in turn.
fn fold(x: &Tensor, dims: &[usize], f: impl Fn(&Tensor, usize) -> CResult<Tensor>) -> CResult<Tensor> {
    dims.iter().try_fold(x.clone(), |acc, &d| f(&acc, d))
}

fn prod_keepdim(x: &Tensor, d: usize) -> CResult<Tensor> {
    (1..x.dim(d)?).try_fold(x.narrow(d, 0, 1)?, |acc, i| acc.mul(&x.narrow(d, i, 1)?))
}

/// A reduce node's attributes, parsed once.
#[derive(Clone, Copy)]
struct ReduceConfig {
    kind: Reduce,
    keepdims: bool,
    noop_with_empty_axes: bool,
}

impl ReduceConfig {
    fn new(ctx: &NodeCtx, kind: Reduce) -> Self {
        ReduceConfig {
            kind,
            keepdims: ctx.int("keepdims", 1) != 0,
            noop_with_empty_axes: ctx.int("noop_with_empty_axes", 0) != 0,
        }
    }

    fn run(&self, x: &Tensor, axes: &[i64]) -> CResult<Tensor> {
        let mut dims: Vec<usize> = if axes.is_empty() && !self.noop_with_empty_axes {
            (0..x.rank()).collect()
        } else {
            axes.iter().map(|&a| axis(a, x.rank())).collect::<CResult<_>>()?
        };
        dims.sort_unstable();
        dims.dedup();
        let kept: Vec<usize> =
            x.dims().iter().enumerate().map(|(i, &n)| if dims.contains(&i) { 1 } else { n }).collect();
        let y = match self.kind.identity() {
            Some(v) if dims.iter().any(|&d| x.dims()[d] == 0) => {
                Tensor::full(v, kept.as_slice(), x.device())?.to_dtype(x.dtype())?
            }
            // candle's sqrt/log/exp have no integer kernels: integer L2, LogSum and
            // LogSumExp go through f64 and back.
            _ if self.kind.needs_float() && !x.dtype().is_float() => {
                self.kind.keepdim(&x.to_dtype(DType::F64)?, &dims)?.to_dtype(x.dtype())?
            }
            _ => self.kind.keepdim(x, &dims)?,
        };
        if self.keepdims {
            return Ok(y);
        }
        let squeezed: Vec<usize> =
            kept.iter().enumerate().filter(|(i, _)| !dims.contains(i)).map(|(_, &n)| n).collect();
        y.reshape(squeezed)
    }
}

/// Axes from the `axes` attribute (absent: all).
fn reduce_attr(ctx: &NodeCtx, kind: Reduce) -> Result<Box<dyn Kernel>> {
    let (cfg, axes) = (ReduceConfig::new(ctx, kind), ctx.ints("axes").unwrap_or_default());
    Ok(Box::new(move |xs: &[Option<&Tensor>]| Ok(vec![cfg.run(input(xs, 0)?, &axes)?])))
}

/// Axes from the optional second input.
fn reduce_input(ctx: &NodeCtx, kind: Reduce) -> Result<Box<dyn Kernel>> {
    let cfg = ReduceConfig::new(ctx, kind);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let axes = match xs.get(1).copied().flatten() {
            Some(a) => int_values(a)?,
            None => Vec::new(),
        };
        Ok(vec![cfg.run(input(xs, 0)?, &axes)?])
    }))
}

pub fn reduce_sum_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_attr(ctx, Reduce::Sum)
}
pub fn reduce_sum(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_input(ctx, Reduce::Sum)
}
pub fn reduce_mean_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_attr(ctx, Reduce::Mean)
}
pub fn reduce_mean(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_input(ctx, Reduce::Mean)
}
pub fn reduce_max_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_attr(ctx, Reduce::Max)
}
pub fn reduce_max(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_input(ctx, Reduce::Max)
}
pub fn reduce_min_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_attr(ctx, Reduce::Min)
}
pub fn reduce_min(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_input(ctx, Reduce::Min)
}
pub fn reduce_prod_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_attr(ctx, Reduce::Prod)
}
pub fn reduce_prod(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_input(ctx, Reduce::Prod)
}
pub fn reduce_l1_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_attr(ctx, Reduce::L1)
}
pub fn reduce_l1(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_input(ctx, Reduce::L1)
}
pub fn reduce_l2_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_attr(ctx, Reduce::L2)
}
pub fn reduce_l2(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_input(ctx, Reduce::L2)
}
pub fn reduce_log_sum_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_attr(ctx, Reduce::LogSum)
}
pub fn reduce_log_sum(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_input(ctx, Reduce::LogSum)
}
pub fn reduce_log_sum_exp_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_attr(ctx, Reduce::LogSumExp)
}
pub fn reduce_log_sum_exp(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_input(ctx, Reduce::LogSumExp)
}
pub fn reduce_sum_square_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_attr(ctx, Reduce::SumSquare)
}
pub fn reduce_sum_square(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    reduce_input(ctx, Reduce::SumSquare)
}

// ---- ArgMax / ArgMin -------------------------------------------------------------------------

/// The index of the max (or min) along `axis`, int64; ties give the first index, or the last
/// with `select_last_index` (found on the flipped axis).
fn arg(ctx: &NodeCtx, max: bool) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 0);
    let keepdims = ctx.int("keepdims", 1) != 0;
    let last = ctx.int("select_last_index", 0) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let d = axis(a, x.rank())?;
        let src = if last { x.flip(&[d])? } else { x.clone() };
        let i = if max { src.argmax_keepdim(d)? } else { src.argmin_keepdim(d)? };
        let mut i = i.to_dtype(DType::I64)?;
        if last {
            i = Tensor::new(x.dim(d)? as i64 - 1, x.device())?.broadcast_sub(&i)?;
        }
        Ok(vec![if keepdims { i } else { i.squeeze(d)? }])
    }))
}

pub fn arg_max(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    arg(ctx, true)
}
pub fn arg_min(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    arg(ctx, false)
}

// ---- CumSum ----------------------------------------------------------------------------------

/// A running fold along the `axis` input: CumSum (+, from 0) and CumProd (×, from 1), with
/// `exclusive` and `reverse`.
fn cumulative(
    ctx: &NodeCtx,
    identity: fn(&Tensor) -> candle_core::Result<Tensor>,
    step: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
) -> Result<Box<dyn Kernel>> {
    let exclusive = ctx.int("exclusive", 0) != 0;
    let reverse = ctx.int("reverse", 0) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let a = int_values(input(xs, 1)?)?;
        let d = axis(*a.first().ok_or_else(|| candle_core::Error::Msg("empty axis".into()))?, x.rank())?;
        let n = x.dim(d)?;
        if n == 0 {
            return Ok(vec![x.clone()]);
        }
        let src = if reverse { x.flip(&[d])? } else { x.clone() };
        let mut acc = identity(&src.narrow(d, 0, 1)?)?;
        let mut parts = Vec::with_capacity(n);
        for i in 0..n {
            let next = step(&acc, &src.narrow(d, i, 1)?)?;
            parts.push(if exclusive { acc } else { next.clone() });
            acc = next;
        }
        let y = Tensor::cat(&parts, d)?;
        Ok(vec![if reverse { y.flip(&[d])? } else { y }])
    }))
}

pub fn cumsum(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    cumulative(ctx, Tensor::zeros_like, Tensor::add)
}

pub fn cumprod(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    cumulative(ctx, Tensor::ones_like, Tensor::mul)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::super::test_util::*;

    fn i64s(v: &[i64]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    fn ints_of(t: &Tensor) -> Vec<i64> {
        t.flatten_all().unwrap().to_dtype(DType::I64).unwrap().to_vec1::<i64>().unwrap()
    }

    fn x23() -> Tensor {
        t(&[2, 3], &[1., -2., 3., 4., 5., -6.])
    }

    #[test]
    fn reduce_sum_axes_are_an_attribute_before_opset_13_and_an_input_after() {
        let x = x23();
        let y = build(&node("ReduceSum", 1, vec![ints("axes", &[1]), int("keepdims", 0)]), 11)
            .run(&[Some(&x)])
            .unwrap();
        assert_eq!(y[0].dims(), &[2]);
        assert_close(&values(&y[0]), &[2., 3.], 0.0);
        let axes = i64s(&[-1]);
        let k = build(&node("ReduceSum", 2, vec![]), 13);
        let y = k.run(&[Some(&x), Some(&axes)]).unwrap();
        assert_eq!(y[0].dims(), &[2, 1]);
        assert_close(&values(&y[0]), &[2., 3.], 0.0);
        // No axes: all of them; with noop_with_empty_axes: the input unchanged.
        let y = k.run(&[Some(&x), None]).unwrap();
        assert_eq!((y[0].dims(), values(&y[0])), (&[1usize, 1][..], vec![5.]));
        let k = build(&node("ReduceSum", 2, vec![int("noop_with_empty_axes", 1)]), 13);
        let y = k.run(&[Some(&x), Some(&i64s(&[]))]).unwrap();
        assert_eq!(values(&y[0]), values(&x));
    }

    #[test]
    fn each_reduction_matches_its_definition() {
        let x = x23();
        let axes = i64s(&[0]);
        let run = |op: &str, opset: i64| {
            let k = build(&node(op, 2, vec![int("keepdims", 0)]), opset);
            values(&k.run(&[Some(&x), Some(&axes)]).unwrap()[0])
        };
        let ln = f32::ln;
        assert_close(&run("ReduceMean", 18), &[2.5, 1.5, -1.5], 1e-6);
        assert_close(&run("ReduceMax", 18), &[4., 5., 3.], 0.0);
        assert_close(&run("ReduceMin", 18), &[1., -2., -6.], 0.0);
        assert_close(&run("ReduceProd", 18), &[4., -10., -18.], 0.0);
        assert_close(&run("ReduceL1", 18), &[5., 7., 9.], 0.0);
        assert_close(&run("ReduceL2", 18), &[17f32.sqrt(), 29f32.sqrt(), 45f32.sqrt()], 1e-6);
        assert_close(&run("ReduceSumSquare", 18), &[17., 29., 45.], 0.0);
        assert_close(&run("ReduceLogSum", 18)[..2], &[ln(5.), ln(3.)], 1e-6);
        let lse = |a: f32, b: f32| (a.exp() + b.exp()).ln();
        assert_close(&run("ReduceLogSumExp", 18), &[lse(1., 4.), lse(-2., 5.), lse(3., -6.)], 1e-5);
        // Before opset 18 the axes are an attribute.
        let k = build(&node("ReduceMax", 1, vec![ints("axes", &[1, 0])]), 13);
        let y = k.run(&[Some(&x)]).unwrap();
        assert_eq!((y[0].dims(), values(&y[0])), (&[1usize, 1][..], vec![5.]));
    }

    #[test]
    fn reductions_keep_integers_and_fill_empty_axes_with_the_identity() {
        let x = Tensor::new(&[[2i64, 3], [4, 5]], &Device::Cpu).unwrap();
        let k = build(&node("ReduceProd", 1, vec![ints("axes", &[1]), int("keepdims", 0)]), 13);
        let y = k.run(&[Some(&x)]).unwrap();
        assert_eq!((y[0].dtype(), ints_of(&y[0])), (DType::I64, vec![6, 20]));
        let k = build(&node("ReduceL2", 1, vec![ints("axes", &[1]), int("keepdims", 0)]), 13);
        let y = k.run(&[Some(&Tensor::new(&[[3i64, 4], [6, 8]], &Device::Cpu).unwrap())]).unwrap();
        assert_eq!((y[0].dtype(), ints_of(&y[0])), (DType::I64, vec![5, 10]));
        let empty = Tensor::zeros((2, 0), DType::F32, &Device::Cpu).unwrap();
        let axes = i64s(&[1]);
        for (op, want) in [("ReduceMax", f32::NEG_INFINITY), ("ReduceProd", 1.), ("ReduceSum", 0.)] {
            let y = build(&node(op, 2, vec![]), 18).run(&[Some(&empty), Some(&axes)]).unwrap();
            assert_eq!((y[0].dims(), values(&y[0])), (&[2usize, 1][..], vec![want, want]));
        }
    }

    #[test]
    fn arg_max_and_min_pick_first_or_last_ties() {
        let x = t(&[2, 3], &[1., 3., 3., 2., 0., 0.]);
        let y = build(&node("ArgMax", 1, vec![int("axis", 1)]), 13).run(&[Some(&x)]).unwrap();
        assert_eq!((y[0].dtype(), y[0].dims(), ints_of(&y[0])), (DType::I64, &[2usize, 1][..], vec![1, 0]));
        let n = node("ArgMax", 1, vec![int("axis", -1), int("keepdims", 0), int("select_last_index", 1)]);
        let y = build(&n, 13).run(&[Some(&x)]).unwrap();
        assert_eq!((y[0].dims(), ints_of(&y[0])), (&[2usize][..], vec![2, 0]));
        let n = node("ArgMin", 1, vec![int("axis", 1), int("select_last_index", 1)]);
        assert_eq!(ints_of(&build(&n, 13).run(&[Some(&x)]).unwrap()[0]), vec![0, 2]);
    }

    #[test]
    fn cumsum_exclusive_and_reverse() {
        let x = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let a = i64s(&[1]).squeeze(0).unwrap();
        let run = |excl: i64, rev: i64| {
            let n = node("CumSum", 2, vec![int("exclusive", excl), int("reverse", rev)]);
            values(&build(&n, 14).run(&[Some(&x), Some(&a)]).unwrap()[0])
        };
        assert_eq!(run(0, 0), vec![1., 3., 6., 4., 9., 15.]);
        assert_eq!(run(1, 0), vec![0., 1., 3., 0., 4., 9.]);
        assert_eq!(run(0, 1), vec![6., 5., 3., 15., 11., 6.]);
        assert_eq!(run(1, 1), vec![5., 3., 0., 11., 6., 0.]);
        let xi = i64s(&[1, 2, 3]);
        let y = build(&node("CumSum", 2, vec![]), 14).run(&[Some(&xi), Some(&i64s(&[0]))]).unwrap();
        assert_eq!((y[0].dtype(), ints_of(&y[0])), (DType::I64, vec![1, 3, 6]));
    }
}
