//! Elementwise ops with numpy broadcasting (ONNX Add/Sub/Mul/Div from opset 7 broadcast
//! implicitly; older `broadcast`/`axis` attributes are not supported) and unary activations.
//! Spec: https://onnx.ai/onnx/operators/ (Add, Sub, Mul, Div, Relu, Sigmoid, Tanh, Exp, Log,
//! Neg, Abs, Sqrt), all opsets.

use candle_core::{Result as CResult, Tensor};

use super::{input, Kernel, NodeCtx};
use crate::error::Result;

fn binary(ctx: &NodeCtx, f: fn(&Tensor, &Tensor) -> CResult<Tensor>) -> Result<Box<dyn Kernel>> {
    if ctx.opset < 7 && ctx.int("broadcast", 0) != 0 && ctx.ints("axis").is_some() {
        return Err(ctx.unsupported("legacy broadcast with axis"));
    }
    Ok(Box::new(move |xs: &[Option<&Tensor>]| Ok(vec![f(input(xs, 0)?, input(xs, 1)?)?])))
}

fn unary(f: fn(&Tensor) -> CResult<Tensor>) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(move |xs: &[Option<&Tensor>]| Ok(vec![f(input(xs, 0)?)?])))
}

pub fn add(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_add)
}
pub fn sub(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_sub)
}
pub fn mul(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_mul)
}
pub fn div(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_div)
}
pub fn relu(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(Tensor::relu)
}
pub fn sigmoid(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    // 1 / (1 + e^-x), written with candle's primitives so it works for every float dtype.
    unary(|x| (x.neg()?.exp()? + 1.0)?.recip())
}
pub fn tanh(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(Tensor::tanh)
}
pub fn exp(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(Tensor::exp)
}
pub fn log(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(Tensor::log)
}
pub fn neg(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(Tensor::neg)
}
pub fn abs(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(Tensor::abs)
}
pub fn sqrt(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(Tensor::sqrt)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;

    #[test]
    fn add_broadcasts_numpy_style() {
        let k = build(&node("Add", 2, vec![]), 13);
        let a = t(&[2, 1], &[1., 2.]);
        let b = t(&[3], &[10., 20., 30.]);
        let y = k.run(&[Some(&a), Some(&b)]).unwrap();
        assert_eq!(y[0].dims(), &[2, 3]);
        assert_close(&values(&y[0]), &[11., 21., 31., 12., 22., 32.], 0.0);
    }

    #[test]
    fn relu_and_sigmoid_match_their_definitions() {
        let x = t(&[4], &[-2., -0.5, 0., 3.]);
        let y = build(&node("Relu", 1, vec![]), 13).run(&[Some(&x)]).unwrap();
        assert_close(&values(&y[0]), &[0., 0., 0., 3.], 0.0);
        let y = build(&node("Sigmoid", 1, vec![]), 13).run(&[Some(&x)]).unwrap();
        let want: Vec<f32> = [-2f32, -0.5, 0., 3.].iter().map(|v| 1. / (1. + (-v).exp())).collect();
        assert_close(&values(&y[0]), &want, 1e-6);
    }
}
