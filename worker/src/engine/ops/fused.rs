//! Kernels of the private domain [`DOMAIN`]: the nodes `engine/fuse.rs` makes at load from
//! chains of standard ops. Each computes what its chain computes, in one pass for f32 and
//! through the chain's own candle ops for other dtypes.
//!
//! - `Gelu(x)`: `x · (1 + erf(x / √2)) · 0.5`;
//! - `Silu(x)`: `x · sigmoid(x)`;
//! - `MatMulAdd(a, w, b)`: `a @ w + b` (`w` 2-D, `b` along the last dim);
//! - `ConvAct(x, w, b)`: Conv (its own attributes) then `activation` — `relu`, `silu` or `clip`
//!   (`min`, `max`) — applied as the product's sums are stored.

use candle_core::Tensor;

use super::gemm::Act;
use super::simd;
use super::{fast, input, Kernel, NodeCtx};
use crate::error::Result;

/// The domain of fused nodes; no model names it.
pub const DOMAIN: &str = "wick.fused";

pub fn gelu(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        Ok(vec![match fast::map_v(x, simd::gelu) {
            Some(y) => y?,
            None => x.gelu_erf()?,
        }])
    }))
}

pub fn silu(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        Ok(vec![match fast::map_v(x, simd::silu) {
            Some(y) => y?,
            None => x.mul(&(x.neg()?.exp()? + 1.0)?.recip()?)?,
        }])
    }))
}

pub fn conv_act(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    super::conv::conv_act(ctx, activation(ctx)?)
}

/// A ConvAct node's `activation` (with Clip's `min` / `max`).
pub(crate) fn activation(ctx: &NodeCtx) -> Result<Act> {
    Ok(match ctx.string("activation", "").as_str() {
        "relu" => Act::Relu,
        "silu" => Act::Silu,
        "clip" => Act::Clip(ctx.float("min", f32::NEG_INFINITY), ctx.float("max", f32::INFINITY)),
        other => return Err(ctx.unsupported(&format!("activation {other:?}"))),
    })
}

pub fn matmul_add(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let (a, w, b) = (input(xs, 0)?, input(xs, 1)?, input(xs, 2)?);
        // The product's sums start from the bias when the result keeps a's rank (rank ≥ 2).
        if a.rank() >= 2 && b.rank() <= a.rank() {
            if let Some(y) = fast::with_f32(b, |bias| super::matmul::matmul_f32(a, w, Some(bias))).flatten() {
                return Ok(vec![y?]);
            }
        }
        let y = super::matmul::matmul_tensors(a, w)?;
        Ok(vec![fast::zip(&y, b, |p, q| p + q).unwrap_or_else(|| y.broadcast_add(b))?])
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::DOMAIN;

    fn fused(op: &str, inputs: usize) -> candle_onnx::onnx::NodeProto {
        let mut n = node(op, inputs, vec![]);
        n.domain = DOMAIN.into();
        n
    }

    #[test]
    fn fused_kernels_match_their_chains() {
        let x = t(&[5], &[-3.0, -0.5, 0.0, 0.7, 4.0]);
        let gelu = build(&fused("Gelu", 1), 1).run(&[Some(&x)]).unwrap().remove(0);
        let want = x.gelu_erf().unwrap();
        assert_close(&values(&gelu), &values(&want), 1e-6);
        let silu = build(&fused("Silu", 1), 1).run(&[Some(&x)]).unwrap().remove(0);
        let want: Vec<f32> = values(&x).iter().map(|v| v / (1.0 + (-v).exp())).collect();
        assert_close(&values(&silu), &want, 1e-6);

        let a = t(&[2, 1, 2], &[1., 2., 3., 4.]);
        let w = t(&[2, 3], &[1., 0., 1., 0., 1., 1.]);
        let b = t(&[3], &[0.5, -0.5, 0.0]);
        let y = build(&fused("MatMulAdd", 3), 1).run(&[Some(&a), Some(&w), Some(&b)]).unwrap().remove(0);
        assert_eq!(y.dims(), &[2, 1, 3]);
        assert_close(&values(&y), &[1.5, 1.5, 3., 3.5, 3.5, 7.], 1e-6);
    }
}
