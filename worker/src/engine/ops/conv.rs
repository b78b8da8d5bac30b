//! Convolution. Spec: Conv (opsets 1–22) for 1-D and 2-D inputs: `pads` (asymmetric pads are
//! applied as an explicit zero pad), `auto_pad` (NOTSET, VALID, SAME_UPPER, SAME_LOWER),
//! `dilations`, `group`. Strides and dilations must be equal across spatial dims (candle's
//! conv takes one value); other cases are refused when the plan is built.

use candle_core::Tensor;

use super::{input, Kernel, NodeCtx};
use crate::error::Result;

/// How padding is decided.
#[derive(Debug, Clone)]
pub enum Padding {
    /// Explicit `[begin_0, begin_1, …, end_0, end_1, …]`.
    Explicit(Vec<usize>),
    /// SAME_UPPER (extra pad at the end) or SAME_LOWER (at the beginning).
    Same { upper: bool },
    Valid,
}

impl Padding {
    pub fn from_ctx(ctx: &NodeCtx) -> Result<Self> {
        match ctx.string("auto_pad", "NOTSET").as_str() {
            "NOTSET" => {
                let pads = ctx.ints("pads").unwrap_or_default();
                if pads.iter().any(|&p| p < 0) {
                    return Err(ctx.unsupported("negative pads"));
                }
                Ok(Padding::Explicit(pads.iter().map(|&p| p as usize).collect()))
            }
            "VALID" => Ok(Padding::Valid),
            "SAME_UPPER" => Ok(Padding::Same { upper: true }),
            "SAME_LOWER" => Ok(Padding::Same { upper: false }),
            other => Err(ctx.unsupported(&format!("auto_pad {other}"))),
        }
    }

    /// (begin, end) pad per spatial dim for an input of `sizes` and windows of `kernel`.
    pub fn resolve(&self, sizes: &[usize], kernel: &[usize], stride: usize, dilation: usize) -> Vec<(usize, usize)> {
        let n = sizes.len();
        match self {
            Padding::Explicit(p) if p.len() == 2 * n => (0..n).map(|i| (p[i], p[n + i])).collect(),
            Padding::Explicit(_) | Padding::Valid => vec![(0, 0); n],
            Padding::Same { upper } => (0..n)
                .map(|i| {
                    let out = sizes[i].div_ceil(stride);
                    let span = (kernel[i] - 1) * dilation + 1;
                    let total = ((out - 1) * stride + span).saturating_sub(sizes[i]);
                    let small = total / 2;
                    if *upper { (small, total - small) } else { (total - small, small) }
                })
                .collect(),
        }
    }
}

/// The single value of a per-dim attribute that candle needs uniform.
fn uniform(ctx: &NodeCtx, name: &str) -> Result<usize> {
    let v = ctx.ints(name).unwrap_or_default();
    match v.first() {
        None => Ok(1),
        Some(&first) if first > 0 && v.iter().all(|&x| x == first) => Ok(first as usize),
        Some(_) => Err(ctx.unsupported(&format!("{name} {v:?} (must be equal across dims)"))),
    }
}

pub fn conv(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let stride = uniform(ctx, "strides")?;
    let dilation = uniform(ctx, "dilations")?;
    let groups = ctx.int("group", 1).max(1) as usize;
    let padding = Padding::from_ctx(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let w = input(xs, 1)?;
        let spatial = x.rank().saturating_sub(2);
        if !(1..=2).contains(&spatial) || w.rank() != x.rank() {
            candle_core::bail!("Conv supports 1-D and 2-D inputs, got x {:?} w {:?}", x.dims(), w.dims())
        }
        let pads = padding.resolve(&x.dims()[2..], &w.dims()[2..], stride, dilation);
        let symmetric = pads.iter().all(|&(b, e)| b == e && b == pads[0].0);
        let (x, pad) = if symmetric {
            (x.clone(), pads[0].0)
        } else {
            let mut x = x.clone();
            for (i, &(b, e)) in pads.iter().enumerate() {
                x = x.pad_with_zeros(2 + i, b, e)?;
            }
            (x, 0)
        };
        let mut y = if spatial == 1 {
            x.conv1d(w, pad, stride, dilation, groups)?
        } else {
            x.conv2d(w, pad, stride, dilation, groups)?
        };
        if let Some(b) = xs.get(2).copied().flatten() {
            let mut shape = vec![1usize; y.rank()];
            shape[1] = b.elem_count();
            y = y.broadcast_add(&b.reshape(shape)?)?;
        }
        Ok(vec![y])
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;

    #[test]
    fn conv_with_asymmetric_pads_matches_hand_computation() {
        // 1×1×3×3 input, 1×1×2×2 ones kernel, pads: top 1, left 0, bottom 0, right 1.
        let n = node("Conv", 2, vec![ints("pads", &[1, 0, 0, 1])]);
        let k = build(&n, 13);
        let x = t(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        let w = t(&[1, 1, 2, 2], &[1., 1., 1., 1.]);
        let y = k.run(&[Some(&x), Some(&w)]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 3, 3]);
        // Padded rows: [0 0 0 0],[1 2 3 0],[4 5 6 0],[7 8 9 0]; 2×2 window sums.
        assert_close(&values(&y[0]), &[3., 5., 3., 12., 16., 9., 24., 28., 15.], 0.0);
    }

    #[test]
    fn unequal_strides_are_refused_at_plan_time() {
        let n = node("Conv", 2, vec![ints("strides", &[1, 2])]);
        let constants = std::collections::HashMap::new();
        let ctx = super::super::NodeCtx { node: &n, opset: 13, constants: &constants };
        assert!(matches!(
            super::super::build(&ctx),
            Err(crate::error::WickError::UnsupportedOp { .. })
        ));
    }
}
