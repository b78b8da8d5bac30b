//! Softmax, LayerNormalization and RMS normalisation on the GPU.

use wick_gpu::Gpu;

use super::super::{Arg, Fail, GpuKernel, Meta, Out, Running};
use super::{device, optional_device, single_output};
use crate::engine::ops::{axis, NodeCtx};

struct Softmax {
    axis: i64,
    log: bool,
    /// Before opset 13 the input is seen as 2-D, `[prod(dims[..axis]), prod(dims[axis..])]`.
    legacy: bool,
}

impl GpuKernel for Softmax {
    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(x)] if !x.dims.is_empty())
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let x = device(xs, 0)?;
            let k = axis(self.axis, x.dims().len())?;
            let (view, k) = match self.legacy {
                true => {
                    let rows: usize = x.dims()[..k].iter().product();
                    (x.reshape(vec![rows, x.len() / rows.max(1)])?, 1)
                }
                false => (x.reshape(x.dims().to_vec())?, k),
            };
            let y = match self.log {
                true => gpu.log_softmax(&view, k).await?,
                false => gpu.softmax(&view, k).await?,
            };
            Ok(vec![Out::Device(y.reshape(x.dims().to_vec())?)])
        })
    }
}

fn softmax_kernel(ctx: &NodeCtx, log: bool) -> Option<Box<dyn GpuKernel>> {
    let legacy = ctx.opset < 13;
    Some(Box::new(Softmax { axis: ctx.int("axis", if legacy { 1 } else { -1 }), log, legacy }))
}

pub fn softmax(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    softmax_kernel(ctx, false)
}

pub fn log_softmax(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    softmax_kernel(ctx, true)
}

struct Norm {
    axis: i64,
    epsilon: f32,
    rms: bool,
}

impl GpuKernel for Norm {
    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let (x, scale) = (device(xs, 0)?, device(xs, 1)?);
            let k = axis(self.axis, x.dims().len())?;
            let y = match self.rms {
                true => gpu.rms_norm(x, scale, k, self.epsilon).await?,
                false => gpu.layer_norm(x, scale, optional_device(xs, 2), k, self.epsilon).await?,
            };
            Ok::<_, Fail>(vec![Out::Device(y)])
        })
    }
}

/// LayerNormalization; only when its Mean and InvStdDev outputs are unused.
pub fn layer_norm(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    single_output(ctx).then(|| -> Box<dyn GpuKernel> {
        Box::new(Norm { axis: ctx.int("axis", -1), epsilon: ctx.float("epsilon", 1e-5), rms: false })
    })
}

/// RMSNormalization / SimplifiedLayerNormalization; only when the InvStdDev output is unused.
pub fn rms_norm(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    single_output(ctx).then(|| -> Box<dyn GpuKernel> {
        Box::new(Norm { axis: ctx.int("axis", -1), epsilon: ctx.float("epsilon", 1e-5), rms: true })
    })
}
