//! Reductions on the GPU: Sum, Mean, Max, Min, Prod, SumSquare, L2 over any axes.

use wick_gpu::{Gpu, ReduceOp};

use super::super::{Arg, Fail, GpuKernel, Out, Place, Running};
use super::{device, host};
use crate::engine::ops::{axis, int_values, NodeCtx};

struct Reduce {
    op: ReduceOp,
    /// From the attribute (older opsets); `None`: from the optional host input 1.
    axes: Option<Vec<i64>>,
    keepdims: bool,
    noop_with_empty_axes: bool,
}

impl GpuKernel for Reduce {
    fn place(&self, input: usize) -> Place {
        Place::data_then_host(input)
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let x = device(xs, 0)?;
            let given = match (&self.axes, xs.get(1)) {
                (Some(a), _) => a.clone(),
                (None, Some(Some(_))) => int_values(host(xs, 1)?)?,
                (None, _) => Vec::new(),
            };
            if given.is_empty() && self.noop_with_empty_axes {
                return Ok(vec![Out::Device(x.reshape(x.dims().to_vec())?)]);
            }
            let axes = given.iter().map(|&a| axis(a, x.dims().len())).collect::<candle_core::Result<Vec<_>>>()?;
            Ok::<_, Fail>(vec![Out::Device(gpu.reduce(self.op, x, &axes, self.keepdims).await?)])
        })
    }
}

/// `since_input`: the opset from which the axes are an input rather than an attribute.
fn reduce(ctx: &NodeCtx, op: ReduceOp, since_input: i64) -> Option<Box<dyn GpuKernel>> {
    let axes = if ctx.opset < since_input { Some(ctx.ints("axes").unwrap_or_default()) } else { None };
    Some(Box::new(Reduce {
        op,
        axes,
        keepdims: ctx.int("keepdims", 1) != 0,
        noop_with_empty_axes: ctx.int("noop_with_empty_axes", 0) != 0,
    }))
}

pub fn reduce_sum(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    reduce(ctx, ReduceOp::Sum, 13)
}
pub fn reduce_mean(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    reduce(ctx, ReduceOp::Mean, 18)
}
pub fn reduce_max(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    reduce(ctx, ReduceOp::Max, 18)
}
pub fn reduce_min(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    reduce(ctx, ReduceOp::Min, 18)
}
pub fn reduce_prod(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    reduce(ctx, ReduceOp::Prod, 18)
}
pub fn reduce_sum_square(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    reduce(ctx, ReduceOp::SumSquare, 18)
}
pub fn reduce_l2(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    reduce(ctx, ReduceOp::L2, 18)
}
