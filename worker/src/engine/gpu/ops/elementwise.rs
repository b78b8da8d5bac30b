//! Elementwise ops on the GPU: the broadcasting binary kernel (Add … Pow, two-input Max/Min)
//! and the unary kernel (activations, math functions, Clip).

use wick_gpu::kernels::binary::{broadcast_shape, MAX_RANK};
use wick_gpu::{BinaryOp, Gpu, UnaryOp};

use super::super::{Arg, Fail, GpuKernel, Meta, Out, Place, Running};
use super::{device, host};
use crate::engine::ops::NodeCtx;

struct Binary(BinaryOp);

impl GpuKernel for Binary {
    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        match xs {
            [Some(a), Some(b)] => {
                a.dims.len() <= MAX_RANK && b.dims.len() <= MAX_RANK && broadcast_shape(a.dims, b.dims).is_some()
            }
            _ => false,
        }
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let y = gpu.binary(self.0, device(xs, 0)?, device(xs, 1)?).await?;
            Ok(vec![Out::Device(y)])
        })
    }
}

fn binary(op: BinaryOp) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Binary(op)))
}

pub fn add(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    binary(BinaryOp::Add)
}
pub fn sub(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    binary(BinaryOp::Sub)
}
pub fn mul(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    binary(BinaryOp::Mul)
}
pub fn div(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    binary(BinaryOp::Div)
}
pub fn pow(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    binary(BinaryOp::Pow)
}
/// Max and Min are variadic; the kernel takes the common two-input form (`accepts`).
pub fn max(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    binary(BinaryOp::Max)
}
pub fn min(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    binary(BinaryOp::Min)
}

struct Unary(UnaryOp);

impl GpuKernel for Unary {
    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(_)])
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move { Ok(vec![Out::Device(gpu.unary(self.0, device(xs, 0)?).await?)]) })
    }
}

fn unary(op: UnaryOp) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Unary(op)))
}

pub fn relu(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Relu)
}
pub fn sigmoid(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Sigmoid)
}
pub fn tanh(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Tanh)
}
pub fn exp(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Exp)
}
pub fn log(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Log)
}
pub fn neg(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Neg)
}
pub fn abs(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Abs)
}
pub fn sqrt(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Sqrt)
}
pub fn reciprocal(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Reciprocal)
}
pub fn floor(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Floor)
}
pub fn ceil(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Ceil)
}
pub fn erf(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Erf)
}
pub fn sin(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Sin)
}
pub fn cos(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Cos)
}
pub fn softplus(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Softplus)
}
pub fn hard_swish(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::HardSwish)
}
pub fn leaky_relu(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::LeakyRelu(ctx.float("alpha", 0.01)))
}
pub fn elu(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Elu(ctx.float("alpha", 1.0)))
}
pub fn hard_sigmoid(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::HardSigmoid(ctx.float("alpha", 0.2), ctx.float("beta", 0.5)))
}
/// Gelu (opset 20): `approximate` "none" (erf) or "tanh"; also the fused `wick.fused` Gelu.
pub fn gelu(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    match ctx.string("approximate", "none").as_str() {
        "none" => unary(UnaryOp::Gelu),
        "tanh" => unary(UnaryOp::GeluTanh),
        _ => None,
    }
}
pub fn silu(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    unary(UnaryOp::Silu)
}

/// Clip: bounds from attributes (before opset 11) or from the optional host inputs 1 and 2.
struct Clip {
    attrs: Option<(f32, f32)>,
}

impl GpuKernel for Clip {
    fn place(&self, input: usize) -> Place {
        Place::data_then_host(input)
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let bound = |i: usize, default: f32| -> Result<f32, Fail> {
                match xs.get(i) {
                    Some(Some(_)) => Ok(host(xs, i)?
                        .flatten_all()?
                        .to_dtype(candle_core::DType::F32)?
                        .to_vec1::<f32>()?
                        .first()
                        .copied()
                        .unwrap_or(default)),
                    _ => Ok(default),
                }
            };
            let (lo, hi) = match self.attrs {
                Some(b) => b,
                None => (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?),
            };
            Ok(vec![Out::Device(gpu.unary(UnaryOp::Clip(lo, hi), device(xs, 0)?).await?)])
        })
    }
}

pub fn clip(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    let attrs = (ctx.opset < 11).then(|| (ctx.float("min", f32::NEG_INFINITY), ctx.float("max", f32::INFINITY)));
    Some(Box::new(Clip { attrs }))
}
