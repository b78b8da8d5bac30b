//! Normalizations. Spec: Softmax / LogSoftmax — opsets 1–12 coerce the input to 2-D at `axis`
//! (default 1) and normalise each row; opset 13+ normalise along `axis` (default -1).

use candle_core::Tensor;

use super::{axis, input, Kernel, NodeCtx};
use crate::error::Result;

/// Numerically stable softmax (or log-softmax) along `dim`.
fn softmax_along(x: &Tensor, dim: usize, log: bool) -> candle_core::Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(dim)?)?;
    let e = shifted.exp()?;
    let sum = e.sum_keepdim(dim)?;
    if log {
        shifted.broadcast_sub(&sum.log()?)
    } else {
        e.broadcast_div(&sum)
    }
}

fn legacy(ctx: &NodeCtx, log: bool) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 1);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let k = axis(a, x.rank())?;
        let rows: usize = x.dims()[..k].iter().product();
        let flat = x.reshape((rows, x.elem_count() / rows.max(1)))?;
        Ok(vec![softmax_along(&flat, 1, log)?.reshape(x.dims())?])
    }))
}

fn modern(ctx: &NodeCtx, log: bool) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", -1);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let k = axis(a, x.rank())?;
        Ok(vec![softmax_along(x, k, log)?])
    }))
}

pub fn softmax_legacy(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    legacy(ctx, false)
}
pub fn softmax(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    modern(ctx, false)
}
pub fn log_softmax_legacy(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    legacy(ctx, true)
}
pub fn log_softmax(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    modern(ctx, true)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;

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
}
