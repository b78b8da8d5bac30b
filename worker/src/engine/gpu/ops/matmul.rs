//! Matrix products on the GPU: MatMul (numpy batching), Gemm, and the fused MatMul + bias
//! (`wick.fused` MatMulAdd).

use wick_gpu::kernels::binary::{broadcast_shape, MAX_RANK};
use wick_gpu::{BinaryOp, Gpu};

use super::super::{Arg, GpuKernel, Meta, Out, Running};
use super::device;
use crate::engine::ops::NodeCtx;

/// The tiled kernel takes at most 4 batch dims.
const MAX_MATMUL_RANK: usize = 6;

struct MatMul {
    /// MatMulAdd: the third input is added (broadcast) to the product.
    bias: bool,
}

impl GpuKernel for MatMul {
    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        let (Some(Some(a)), Some(Some(b))) = (xs.first(), xs.get(1)) else {
            return false;
        };
        let ranks = (1..=MAX_MATMUL_RANK).contains(&a.dims.len()) && (1..=MAX_MATMUL_RANK).contains(&b.dims.len());
        let bias = !self.bias
            || matches!(xs.get(2), Some(Some(c)) if c.dims.len() <= MAX_RANK && c.dims.len() <= a.dims.len().max(b.dims.len()));
        ranks && bias
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let y = gpu.matmul(device(xs, 0)?, device(xs, 1)?).await?;
            let y = match self.bias {
                true => {
                    let c = device(xs, 2)?;
                    if y.dims().len() > MAX_RANK || broadcast_shape(y.dims(), c.dims()).is_none() {
                        return Err(super::super::Fail::Op(format!("bias {:?} for {:?}", c.dims(), y.dims())));
                    }
                    gpu.binary(BinaryOp::Add, &y, c).await?
                }
                false => y,
            };
            Ok(vec![Out::Device(y)])
        })
    }
}

pub fn matmul(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(MatMul { bias: false }))
}

pub fn matmul_add(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(MatMul { bias: true }))
}

struct Gemm {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
}

impl GpuKernel for Gemm {
    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(a), Some(b), ..] if a.dims.len() == 2 && b.dims.len() == 2)
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let c = match xs.get(2) {
                Some(Some(_)) => Some(device(xs, 2)?),
                _ => None,
            };
            let y =
                gpu.gemm(device(xs, 0)?, device(xs, 1)?, c, self.alpha, self.beta, self.trans_a, self.trans_b).await?;
            Ok(vec![Out::Device(y)])
        })
    }
}

pub fn gemm(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Gemm {
        alpha: ctx.float("alpha", 1.0),
        beta: ctx.float("beta", 1.0),
        trans_a: ctx.int("transA", 0) != 0,
        trans_b: ctx.int("transB", 0) != 0,
    }))
}
