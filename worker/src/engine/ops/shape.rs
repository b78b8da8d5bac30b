//! Shape and layout ops. Spec: Identity, Constant (value, value_float(s), value_int(s)),
//! Reshape (opset 5+, shape as input; 0 copies a dim unless `allowzero`, -1 infers),
//! Flatten, Transpose, Squeeze / Unsqueeze (axes as attribute before opset 13, as input from
//! 13), Concat, Shape (with `start` / `end` from opset 15).

use candle_core::{Device, Tensor};

use super::{axis, input, int_values, Kernel, NodeCtx};
use crate::engine::tensor::from_proto;
use crate::error::{Result, WickError};

pub fn identity(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| Ok(vec![input(xs, 0)?.clone()])))
}

pub fn constant(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let dev = &Device::Cpu;
    let wrap = |e: candle_core::Error| WickError::invalid(format!("Constant: {e}"));
    let value = if let Some(t) = ctx.tensor_attr("value") {
        from_proto(t)?
    } else if let Some(v) = ctx.node.attribute.iter().find(|a| a.name == "value_float") {
        Tensor::new(v.f, dev).map_err(wrap)?
    } else if let Some(v) = ctx.node.attribute.iter().find(|a| a.name == "value_floats") {
        Tensor::new(v.floats.as_slice(), dev).map_err(wrap)?
    } else if let Some(v) = ctx.node.attribute.iter().find(|a| a.name == "value_int") {
        Tensor::new(v.i, dev).map_err(wrap)?
    } else if let Some(v) = ctx.ints("value_ints") {
        Tensor::new(v.as_slice(), dev).map_err(wrap)?
    } else {
        return Err(ctx.unsupported("no value, value_float(s) or value_int(s) attribute"));
    };
    Ok(Box::new(move |_: &[Option<&Tensor>]| Ok(vec![value.clone()])))
}

/// ONNX Reshape's target dims for an input of `dims`.
fn reshape_dims(dims: &[usize], spec: &[i64], allow_zero: bool) -> candle_core::Result<Vec<usize>> {
    let numel: usize = dims.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &s) in spec.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allow_zero => out.push(
                *dims.get(i).ok_or_else(|| candle_core::Error::Msg(format!("shape {spec:?}: no dim {i} to copy")))?,
            ),
            s if s >= 0 => out.push(s as usize),
            _ => candle_core::bail!("bad reshape target {spec:?}"),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !numel.is_multiple_of(known) {
            candle_core::bail!("cannot reshape {dims:?} to {spec:?}")
        }
        out[i] = numel / known;
    }
    Ok(out)
}

pub fn reshape(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let allow_zero = ctx.int("allowzero", 0) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let dims = reshape_dims(x.dims(), &int_values(input(xs, 1)?)?, allow_zero)?;
        Ok(vec![x.reshape(dims)?])
    }))
}

pub fn flatten(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 1);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        // axis may equal rank here (everything in the outer dim).
        let k = if a == x.rank() as i64 { x.rank() } else { axis(a, x.rank())? };
        let outer: usize = x.dims()[..k].iter().product();
        Ok(vec![x.reshape((outer, x.elem_count() / outer.max(1)))?])
    }))
}

pub fn transpose(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let perm = ctx.ints("perm");
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let perm: Vec<usize> = match &perm {
            Some(p) => p.iter().map(|&a| axis(a, x.rank())).collect::<candle_core::Result<_>>()?,
            None => (0..x.rank()).rev().collect(),
        };
        Ok(vec![x.permute(perm)?.contiguous()?])
    }))
}

fn squeeze_with(x: &Tensor, axes: Option<Vec<i64>>) -> candle_core::Result<Tensor> {
    let rank = x.rank();
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&a| axis(a, rank)).collect::<candle_core::Result<_>>()?,
        None => (0..rank).filter(|&d| x.dims()[d] == 1).collect(),
    };
    let dims: Vec<usize> =
        x.dims().iter().enumerate().filter(|(d, _)| !axes.contains(d)).map(|(_, &n)| n).collect();
    x.reshape(dims)
}

fn unsqueeze_with(x: &Tensor, axes: &[i64]) -> candle_core::Result<Tensor> {
    let rank = x.rank() + axes.len();
    let mut axes: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<candle_core::Result<_>>()?;
    axes.sort_unstable();
    let mut dims = x.dims().to_vec();
    for a in axes {
        dims.insert(a, 1);
    }
    x.reshape(dims)
}

pub fn squeeze_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let axes = ctx.ints("axes");
    Ok(Box::new(move |xs: &[Option<&Tensor>]| Ok(vec![squeeze_with(input(xs, 0)?, axes.clone())?])))
}

pub fn squeeze_input(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let axes = xs.get(1).copied().flatten().map(int_values).transpose()?;
        Ok(vec![squeeze_with(input(xs, 0)?, axes)?])
    }))
}

pub fn unsqueeze_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let axes = ctx.ints("axes").ok_or_else(|| ctx.unsupported("missing axes"))?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| Ok(vec![unsqueeze_with(input(xs, 0)?, &axes)?])))
}

pub fn unsqueeze_input(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        Ok(vec![unsqueeze_with(input(xs, 0)?, &int_values(input(xs, 1)?)?)?])
    }))
}

pub fn concat(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 0);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let parts: Vec<&Tensor> = xs.iter().flatten().copied().collect();
        let first = parts.first().ok_or_else(|| candle_core::Error::Msg("Concat of nothing".into()))?;
        Ok(vec![Tensor::cat(&parts, axis(a, first.rank())?)?])
    }))
}

pub fn shape(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let start = ctx.int("start", 0);
    let end = ctx.ints("end").is_some().then(|| ctx.int("end", 0));
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let r = x.rank() as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
        let dims: Vec<i64> = x.dims()[s..e.max(s)].iter().map(|&d| d as i64).collect();
        Ok(vec![Tensor::new(dims.as_slice(), x.device())?])
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_copies_zeros_and_infers_minus_one() {
        assert_eq!(reshape_dims(&[2, 3, 4], &[0, -1], false).unwrap(), vec![2, 12]);
        assert_eq!(reshape_dims(&[2, 3, 4], &[-1, 4], false).unwrap(), vec![6, 4]);
        assert!(reshape_dims(&[2, 3], &[4, -1], false).is_err());
    }
}
