//! Matrix products. Spec: MatMul (numpy matmul semantics, opsets 1–13), Gemm (opsets 1–13:
//! `Y = alpha·A'·B' + beta·C`, C broadcast to [M, N]).

use candle_core::Tensor;

use super::{input, Kernel, NodeCtx};
use crate::error::Result;

/// numpy matmul: 1-D operands are promoted to matrices and the added dim removed again;
/// batch dims broadcast.
pub fn matmul_tensors(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let (a1, b1) = (a.rank() == 1, b.rank() == 1);
    let a = if a1 { a.unsqueeze(0)? } else { a.clone() };
    let b = if b1 { b.unsqueeze(1)? } else { b.clone() };
    let mut y = if a.rank() == 2 && b.rank() == 2 {
        a.contiguous()?.matmul(&b.contiguous()?)?
    } else {
        a.contiguous()?.broadcast_matmul(&b.contiguous()?)?
    };
    if b1 {
        y = y.squeeze(y.rank() - 1)?;
    }
    if a1 {
        y = y.squeeze(y.rank() - if b1 { 1 } else { 2 })?;
    }
    Ok(y)
}

pub fn matmul(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| Ok(vec![matmul_tensors(input(xs, 0)?, input(xs, 1)?)?])))
}

pub fn gemm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let alpha = ctx.float("alpha", 1.0) as f64;
    let beta = ctx.float("beta", 1.0) as f64;
    let trans_a = ctx.int("transA", 0) != 0;
    let trans_b = ctx.int("transB", 0) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let a = input(xs, 0)?;
        let b = input(xs, 1)?;
        let a = if trans_a { a.t()? } else { a.clone() };
        let b = if trans_b { b.t()? } else { b.clone() };
        let mut y = a.contiguous()?.matmul(&b.contiguous()?)?;
        if alpha != 1.0 {
            y = y.affine(alpha, 0.0)?;
        }
        if let Some(c) = xs.get(2).copied().flatten() {
            let c = if beta != 1.0 { c.affine(beta, 0.0)? } else { c.clone() };
            y = y.broadcast_add(&c)?;
        }
        Ok(vec![y])
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;

    #[test]
    fn gemm_with_trans_b_alpha_beta_and_bias() {
        let mut n = node("Gemm", 3, vec![int("transB", 1)]);
        n.attribute.push(candle_onnx::onnx::AttributeProto {
            name: "alpha".into(), f: 2.0, r#type: 1, ..Default::default()
        });
        let k = build(&n, 13);
        let a = t(&[1, 2], &[1., 2.]);
        let b = t(&[3, 2], &[1., 0., 0., 1., 1., 1.]); // B' = [[1,0,1],[0,1,1]]
        let c = t(&[3], &[0.5, 0.5, 0.5]);
        let y = k.run(&[Some(&a), Some(&b), Some(&c)]).unwrap();
        // A·B' = [1, 2, 3]; ·2 = [2, 4, 6]; + 0.5
        assert_close(&values(&y[0]), &[2.5, 4.5, 6.5], 1e-6);
    }

    #[test]
    fn matmul_promotes_vectors_like_numpy() {
        let k = build(&node("MatMul", 2, vec![]), 13);
        let v = t(&[2], &[1., 2.]);
        let m = t(&[2, 2], &[1., 2., 3., 4.]);
        let y = k.run(&[Some(&v), Some(&m)]).unwrap();
        assert_eq!(y[0].dims(), &[2]);
        assert_close(&values(&y[0]), &[7., 10.], 0.0);
        let y = k.run(&[Some(&m), Some(&v)]).unwrap();
        assert_eq!(y[0].dims(), &[2]);
        assert_close(&values(&y[0]), &[5., 11.], 0.0);
    }
}
