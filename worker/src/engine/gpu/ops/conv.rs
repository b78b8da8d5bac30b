//! Convolution and pooling on the GPU: Conv (2-D, grouped and depthwise; the fused
//! `wick.fused` ConvAct with its activation after), MaxPool / AveragePool (2-D), and the global
//! poolings. Attributes are read by the CPU ops' own parsers (`ConvAttrs`, `PoolAttrs`), so
//! auto_pad and ceil_mode resolve the same way on both backends.

use wick_gpu::{Conv2dParams, Gpu, Pool2dParams, PoolKind, UnaryOp};

use super::super::{Arg, GpuKernel, Meta, Out, Running};
use super::{device, optional_device, single_output};
use crate::engine::ops::conv::ConvAttrs;
use crate::engine::ops::gemm::Act;
use crate::engine::ops::pool::PoolAttrs;
use crate::engine::ops::{fused, NodeCtx};

struct Conv {
    attrs: ConvAttrs,
    act: Act,
}

impl GpuKernel for Conv {
    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        match xs {
            [Some(x), Some(w), ..] => self.attrs.resolve_2d(x.dims, w.dims).is_some(),
            _ => false,
        }
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let (x, w) = (device(xs, 0)?, device(xs, 1)?);
            let (strides, pads, dilations, groups) = self
                .attrs
                .resolve_2d(x.dims(), w.dims())
                .ok_or_else(|| super::super::Fail::Op("Conv on the GPU is 2-D".into()))?;
            let params = Conv2dParams { strides, pads, dilations, groups };
            let y = gpu.conv2d(x, w, optional_device(xs, 2), &params).await?;
            let y = match self.act {
                Act::None => y,
                Act::Relu => gpu.unary(UnaryOp::Relu, &y).await?,
                Act::Silu => gpu.unary(UnaryOp::Silu, &y).await?,
                Act::Clip(lo, hi) => gpu.unary(UnaryOp::Clip(lo, hi), &y).await?,
            };
            Ok(vec![Out::Device(y)])
        })
    }
}

pub fn conv(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Conv { attrs: ConvAttrs::from_ctx(ctx).ok()?, act: Act::None }))
}

pub fn conv_act(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Conv { attrs: ConvAttrs::from_ctx(ctx).ok()?, act: fused::activation(ctx).ok()? }))
}

struct Pool {
    attrs: PoolAttrs,
    /// `None`: max.
    average: Option<bool>,
}

impl GpuKernel for Pool {
    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(x)] if self.attrs.resolve_2d(x.dims).is_some())
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let x = device(xs, 0)?;
            let (kernel, strides, pads, dilations, ceil_mode) = self
                .attrs
                .resolve_2d(x.dims())
                .ok_or_else(|| super::super::Fail::Op("pooling on the GPU is 2-D".into()))?;
            let kind = match self.average {
                None => PoolKind::Max,
                Some(count_include_pad) => PoolKind::Average { count_include_pad },
            };
            let params = Pool2dParams { kind, kernel, strides, pads, dilations, ceil_mode };
            Ok(vec![Out::Device(gpu.pool2d(x, &params).await?)])
        })
    }
}

/// MaxPool, when its Indices output is unused.
pub fn max_pool(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    if !single_output(ctx) {
        return None;
    }
    Some(Box::new(Pool { attrs: PoolAttrs::from_ctx(ctx).ok()?, average: None }))
}

pub fn average_pool(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    let include_pad = ctx.int("count_include_pad", 0) != 0;
    Some(Box::new(Pool { attrs: PoolAttrs::from_ctx(ctx).ok()?, average: Some(include_pad) }))
}

struct GlobalPool(PoolKind);

impl GpuKernel for GlobalPool {
    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(x)] if x.dims.len() >= 3)
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move { Ok(vec![Out::Device(gpu.global_pool(device(xs, 0)?, self.0).await?)]) })
    }
}

pub fn global_average_pool(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(GlobalPool(PoolKind::Average { count_include_pad: false })))
}

pub fn global_max_pool(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(GlobalPool(PoolKind::Max)))
}
