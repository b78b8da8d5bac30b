//! Pooling. Spec: MaxPool (opsets 1–22: `kernel_shape`, `strides`, `pads`, `auto_pad`,
//! `ceil_mode`; dilations must be 1), AveragePool (same, plus `count_include_pad`),
//! GlobalAveragePool, GlobalMaxPool. 1-D and 2-D inputs.

use candle_core::{DType, Tensor};

use super::conv::Padding;
use super::{input, Kernel, NodeCtx};
use crate::error::Result;

#[derive(Debug, Clone)]
struct PoolAttrs {
    kernel: Vec<usize>,
    strides: Vec<usize>,
    padding: Padding,
    ceil: bool,
}

impl PoolAttrs {
    fn from_ctx(ctx: &NodeCtx) -> Result<Self> {
        let kernel: Vec<usize> = ctx
            .ints("kernel_shape")
            .ok_or_else(|| ctx.unsupported("missing kernel_shape"))?
            .iter()
            .map(|&k| k.max(1) as usize)
            .collect();
        let strides = ctx
            .ints("strides")
            .map(|s| s.iter().map(|&v| v.max(1) as usize).collect())
            .unwrap_or_else(|| vec![1; kernel.len()]);
        if ctx.ints("dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return Err(ctx.unsupported("dilations other than 1"));
        }
        if !(1..=2).contains(&kernel.len()) || strides.len() != kernel.len() {
            return Err(ctx.unsupported("only 1-D and 2-D pooling"));
        }
        Ok(PoolAttrs { kernel, strides, padding: Padding::from_ctx(ctx)?, ceil: ctx.int("ceil_mode", 0) != 0 })
    }

    /// Per spatial dim: (explicit begin pad, explicit end pad, extra end pad for ceil_mode).
    fn pads(&self, sizes: &[usize]) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for (i, &size) in sizes.iter().enumerate() {
            let resolved = match &self.padding {
                Padding::Same { .. } => self.padding.resolve(&sizes[i..=i], &self.kernel[i..=i], &self.strides[i..=i], &[1])[0],
                Padding::Explicit(p) if p.len() == 2 * sizes.len() => (p[i], p[sizes.len() + i]),
                _ => (0, 0),
            };
            let (b, e) = resolved;
            let (k, s) = (self.kernel[i], self.strides[i]);
            let span = (size + b + e).saturating_sub(k);
            let mut extra = 0;
            if self.ceil && span % s != 0 {
                let mut windows = span.div_ceil(s) + 1;
                // A last window that starts inside the end padding is dropped (ONNX / PyTorch).
                if (windows - 1) * s >= size + b {
                    windows -= 1;
                }
                extra = ((windows - 1) * s + k).saturating_sub(size + b + e);
            }
            out.push((b, e, extra));
        }
        out
    }
}

/// Pad `x` along `dim` with `value` (candle only pads with zeros or edge values).
fn pad_with(x: &Tensor, dim: usize, left: usize, right: usize, value: f64) -> candle_core::Result<Tensor> {
    if left == 0 && right == 0 {
        return Ok(x.clone());
    }
    let mut parts = Vec::with_capacity(3);
    let mut shape = x.dims().to_vec();
    if left > 0 {
        shape[dim] = left;
        parts.push(Tensor::full(value, shape.clone(), x.device())?.to_dtype(x.dtype())?);
    }
    parts.push(x.clone());
    if right > 0 {
        shape[dim] = right;
        parts.push(Tensor::full(value, shape, x.device())?.to_dtype(x.dtype())?);
    }
    Tensor::cat(&parts, dim)
}

/// Run a 2-D candle pool on a 1-D or 2-D input by viewing 1-D as height 1.
fn as_4d(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.rank() == 3 { x.unsqueeze(2) } else { Ok(x.clone()) }
}

fn kernel_2d(a: &PoolAttrs) -> ((usize, usize), (usize, usize)) {
    if a.kernel.len() == 1 {
        ((1, a.kernel[0]), (1, a.strides[0]))
    } else {
        ((a.kernel[0], a.kernel[1]), (a.strides[0], a.strides[1]))
    }
}

pub fn max_pool(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let attrs = PoolAttrs::from_ctx(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        if x.rank() != attrs.kernel.len() + 2 {
            candle_core::bail!("input rank {} does not match kernel {:?}", x.rank(), attrs.kernel)
        }
        let mut p = x.clone();
        for (i, (b, e, extra)) in attrs.pads(&x.dims()[2..]).into_iter().enumerate() {
            p = pad_with(&p, 2 + i, b, e + extra, f64::NEG_INFINITY)?;
        }
        let (k, s) = kernel_2d(&attrs);
        let y = as_4d(&p)?.max_pool2d_with_stride(k, s)?;
        Ok(vec![if x.rank() == 3 { y.squeeze(2)? } else { y }])
    }))
}

pub fn average_pool(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let attrs = PoolAttrs::from_ctx(ctx)?;
    let include_pad = ctx.int("count_include_pad", 0) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        if x.rank() != attrs.kernel.len() + 2 {
            candle_core::bail!("input rank {} does not match kernel {:?}", x.rank(), attrs.kernel)
        }
        let pads = attrs.pads(&x.dims()[2..]);
        let (k, s) = kernel_2d(&attrs);
        let mut p = x.clone();
        for (i, &(b, e, extra)) in pads.iter().enumerate() {
            p = p.pad_with_zeros(2 + i, b, e + extra)?;
        }
        let mut y = as_4d(&p)?.avg_pool2d_with_stride(k, s)?;
        if pads.iter().any(|&(b, e, extra)| b + e + extra > 0) {
            // Divide by the share of each window that counts: the mean of a mask that is 1 on
            // real elements (and on explicit pads when count_include_pad) and 0 elsewhere.
            let mut mask = Tensor::ones(&x.dims()[2..], DType::F32, x.device())?;
            for (i, &(b, e, extra)) in pads.iter().enumerate() {
                let fill = if include_pad { 1.0 } else { 0.0 };
                mask = pad_with(&mask, i, b, e, fill)?.pad_with_zeros(i, 0, extra)?;
            }
            let mask = mask.unsqueeze(0)?.unsqueeze(0)?;
            let share = as_4d(&mask)?.avg_pool2d_with_stride(k, s)?.to_dtype(y.dtype())?;
            y = y.broadcast_div(&share)?;
        }
        Ok(vec![if x.rank() == 3 { y.squeeze(2)? } else { y }])
    }))
}

/// Reduce every spatial dim (2..) to 1 with `f`.
fn global(f: fn(&Tensor, usize) -> candle_core::Result<Tensor>) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        (2..x.rank()).try_fold(x.clone(), |y, d| f(&y, d)).map(|y| vec![y])
    }))
}

pub fn global_average_pool(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    global(|t, d| t.mean_keepdim(d))
}

pub fn global_max_pool(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    global(|t, d| t.max_keepdim(d))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;

    fn x4() -> candle_core::Tensor {
        t(&[1, 1, 4, 4], &(1..=16).map(|v| v as f32).collect::<Vec<_>>())
    }

    #[test]
    fn max_pool_with_pads_uses_negative_infinity() {
        let n = node("MaxPool", 1, vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])]);
        let x = t(&[1, 1, 2, 2], &[-1., -2., -3., -4.]);
        let y = build(&n, 12).run(&[Some(&x)]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 2, 2]);
        assert_close(&values(&y[0]), &[-1., -2., -3., -4.], 0.0);
    }

    #[test]
    fn max_pool_ceil_mode_adds_a_partial_window() {
        let n = node("MaxPool", 1, vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2]), int("ceil_mode", 1)]);
        let y = build(&n, 12).run(&[Some(&x4())]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 2, 2]);
        assert_close(&values(&y[0]), &[11., 12., 15., 16.], 0.0);
    }

    #[test]
    fn average_pool_excludes_pads_by_default() {
        let n = node("AveragePool", 1, vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])]);
        let y = build(&n, 12).run(&[Some(&x4())]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 3, 3]);
        // Corner windows hold one real element; edges two; the centre four.
        assert_close(&values(&y[0]), &[1., 2.5, 4., 7., 8.5, 10., 13., 14.5, 16.], 1e-5);
    }
}
