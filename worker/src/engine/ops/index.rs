//! Ops defined by index arithmetic. Spec: Gather (opset 1+, negative indices from 11),
//! GatherElements (11+), GatherND (11+, `batch_dims` from 12), Scatter (9–10) /
//! ScatterElements (11+, `reduction` add/mul from 16, max/min from 18), ScatterND (11+,
//! `reduction` from 16/18), OneHot (9+, negative indices from 11), Trilu (14), EyeLike (9),
//! NonZero (9+).
//!
//! Index inputs are resolved on the host (negatives counted from the end, bounds checked) into
//! an i64 tensor or flat element offsets; the data movement is candle's (`index_select`,
//! `gather`, `scatter`, `scatter_add`). Candle has no multiplying / max / min scatter, so those
//! reductions apply the offsets on the host in f64.

use candle_core::{DType, Device, Tensor};

use super::{axis, input, int_values, Kernel, NodeCtx};
use crate::engine::tensor::dtype_of_onnx;
use crate::error::Result;

type R<T> = candle_core::Result<T>;

/// One index into a dim of length `n`: negatives count from the end; out of range is an error.
fn resolve(i: i64, n: usize) -> R<usize> {
    let j = if i < 0 { i + n as i64 } else { i };
    if j < 0 || j >= n as i64 {
        candle_core::bail!("index {i} out of range for a dim of {n}")
    }
    Ok(j as usize)
}

/// `idx` with every value resolved against a dim of `n`, as an i64 tensor of the same shape.
fn index_tensor(idx: &Tensor, n: usize) -> R<Tensor> {
    let v = int_values(idx)?.into_iter().map(|i| resolve(i, n).map(|j| j as i64)).collect::<R<Vec<_>>>()?;
    Tensor::from_vec(v, idx.dims(), idx.device())
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * dims[d + 1];
    }
    s
}

pub fn gather(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 0);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, idx) = (input(xs, 0)?, input(xs, 1)?);
        let k = axis(a, x.rank())?;
        let ids = index_tensor(idx, x.dims()[k])?.flatten_all()?;
        let mut dims = x.dims()[..k].to_vec();
        dims.extend(idx.dims());
        dims.extend(&x.dims()[k + 1..]);
        Ok(vec![x.contiguous()?.index_select(&ids, k)?.reshape(dims)?])
    }))
}

pub fn gather_elements(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 0);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, idx) = (input(xs, 0)?, input(xs, 1)?);
        let k = axis(a, x.rank())?;
        Ok(vec![x.contiguous()?.gather(&index_tensor(idx, x.dims()[k])?, k)?])
    }))
}

/// GatherND / ScatterND addressing: `data` seen as rows of `slab` elements, each index tuple
/// (the last dim of `idx`) naming one row, after `batch` leading dims shared by data and idx.
struct NdRows {
    rows: Vec<i64>,
    slab: usize,
    /// `idx`'s dims without the tuple dim, then the slab's dims.
    out_dims: Vec<usize>,
}

fn nd_rows(dims: &[usize], idx: &Tensor, batch: usize) -> R<NdRows> {
    let q = idx.dims();
    let r = *q.last().ok_or_else(|| candle_core::Error::Msg("ND indices must have rank ≥ 1".into()))?;
    if batch >= q.len() || batch + r > dims.len() || q[..batch] != dims[..batch] {
        candle_core::bail!("ND indices {q:?} (batch_dims {batch}) do not fit data {dims:?}")
    }
    let tuple_dims = &dims[batch..batch + r];
    let tuple_strides = strides(tuple_dims);
    let per_batch: usize = tuple_dims.iter().product();
    let tuples = idx.elem_count() / r.max(1);
    let tuples_per_batch = tuples / dims[..batch].iter().product::<usize>().max(1);
    let values = int_values(idx)?;
    let mut rows = Vec::with_capacity(tuples);
    for t in 0..tuples {
        let mut row = (t / tuples_per_batch.max(1)) * per_batch;
        for (j, &v) in values[t * r..(t + 1) * r].iter().enumerate() {
            row += resolve(v, tuple_dims[j])? * tuple_strides[j];
        }
        rows.push(row as i64);
    }
    let mut out_dims = q[..q.len() - 1].to_vec();
    out_dims.extend(&dims[batch + r..]);
    Ok(NdRows { rows, slab: dims[batch + r..].iter().product(), out_dims })
}

pub fn gather_nd(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let batch = ctx.int("batch_dims", 0) as usize;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, idx) = (input(xs, 0)?, input(xs, 1)?);
        let nd = nd_rows(x.dims(), idx, batch)?;
        let table = x.reshape((x.elem_count() / nd.slab.max(1), nd.slab))?;
        let n = nd.rows.len();
        let picked = table.index_select(&Tensor::from_vec(nd.rows, n, x.device())?, 0)?;
        Ok(vec![picked.reshape(nd.out_dims)?])
    }))
}

/// How a scatter combines an update with the value already there.
#[derive(Clone, Copy)]
enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

fn reduction(ctx: &NodeCtx) -> Result<Reduction> {
    Ok(match ctx.string("reduction", "none").as_str() {
        "none" => Reduction::None,
        "add" => Reduction::Add,
        "mul" => Reduction::Mul,
        "max" => Reduction::Max,
        "min" => Reduction::Min,
        other => return Err(ctx.unsupported(&format!("reduction '{other}'"))),
    })
}

/// `data` with `updates` (flattened) combined into the elements at flat `offsets`.
fn scatter_flat(data: &Tensor, offsets: Vec<i64>, updates: &Tensor, how: Reduction) -> R<Tensor> {
    let flat = data.flatten_all()?;
    let upd = updates.flatten_all()?;
    if offsets.len() != upd.elem_count() {
        candle_core::bail!("{} updates for {} indices", upd.elem_count(), offsets.len())
    }
    let out = match how {
        Reduction::None | Reduction::Add => {
            let n = offsets.len();
            let ids = Tensor::from_vec(offsets, n, data.device())?;
            if matches!(how, Reduction::None) {
                flat.scatter(&ids, &upd, 0)?
            } else {
                flat.scatter_add(&ids, &upd, 0)?
            }
        }
        _ => {
            let mut d = flat.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            for (&o, u) in offsets.iter().zip(upd.to_dtype(DType::F64)?.to_vec1::<f64>()?) {
                let v = &mut d[o as usize];
                *v = match how {
                    Reduction::Mul => *v * u,
                    Reduction::Max => v.max(u),
                    _ => v.min(u),
                };
            }
            Tensor::from_vec(d, flat.elem_count(), data.device())?.to_dtype(data.dtype())?
        }
    };
    out.reshape(data.dims())
}

/// Flat offsets into `dims` for ScatterElements: each element of `idx` replaces its own
/// coordinate on dim `k`.
fn element_offsets(dims: &[usize], idx: &Tensor, k: usize) -> R<Vec<i64>> {
    let q = idx.dims();
    if q.len() != dims.len() || q.iter().zip(dims).enumerate().any(|(d, (a, b))| d != k && a > b) {
        candle_core::bail!("indices {q:?} do not fit data {dims:?} on axis {k}")
    }
    let (qs, ds) = (strides(q), strides(dims));
    int_values(idx)?
        .into_iter()
        .enumerate()
        .map(|(e, v)| {
            let mut off = resolve(v, dims[k])? * ds[k];
            for d in (0..q.len()).filter(|&d| d != k) {
                off += (e / qs[d]) % q[d] * ds[d];
            }
            Ok(off as i64)
        })
        .collect()
}

pub fn scatter_elements(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", 0);
    let how = reduction(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, idx, upd) = (input(xs, 0)?, input(xs, 1)?, input(xs, 2)?);
        let offsets = element_offsets(x.dims(), idx, axis(a, x.rank())?)?;
        Ok(vec![scatter_flat(x, offsets, upd, how)?])
    }))
}

pub fn scatter_nd(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let how = reduction(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, idx, upd) = (input(xs, 0)?, input(xs, 1)?, input(xs, 2)?);
        let nd = nd_rows(x.dims(), idx, 0)?;
        let slab = nd.slab as i64;
        let offsets = nd.rows.iter().flat_map(|&r| (0..slab).map(move |j| r * slab + j)).collect();
        Ok(vec![scatter_flat(x, offsets, upd, how)?])
    }))
}

/// `[h, w]` i64 tensor of `col - row`: diagonals of a matrix are its level sets.
fn diagonal_offsets(h: usize, w: usize, dev: &Device) -> R<Tensor> {
    let cols = Tensor::arange(0i64, w as i64, dev)?.reshape((1, w))?;
    let rows = Tensor::arange(0i64, h as i64, dev)?.reshape((h, 1))?;
    cols.broadcast_sub(&rows)
}

pub fn trilu(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let upper = ctx.int("upper", 1) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let k = xs.get(1).copied().flatten().map(int_values).transpose()?.and_then(|v| v.first().copied());
        let k = k.unwrap_or(0) as f64;
        let (h, w) = match x.dims() {
            [.., h, w] => (*h, *w),
            d => candle_core::bail!("Trilu needs rank ≥ 2, got {d:?}"),
        };
        let diag = diagonal_offsets(h, w, x.device())?;
        let keep = if upper { diag.ge(k)? } else { diag.le(k)? };
        Ok(vec![keep.broadcast_as(x.shape())?.where_cond(x, &x.zeros_like()?)?])
    }))
}

pub fn eye_like(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let k = ctx.int("k", 0) as f64;
    let dtype = ctx.node.attribute.iter().find(|a| a.name == "dtype").map(|a| dtype_of_onnx(a.i as i32)).transpose()?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let (h, w) = x.dims2()?;
        let eye = diagonal_offsets(h, w, x.device())?.eq(k)?;
        Ok(vec![eye.to_dtype(dtype.unwrap_or(x.dtype()))?])
    }))
}

pub fn one_hot(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", -1);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (idx, depth, values) = (input(xs, 0)?, input(xs, 1)?, input(xs, 2)?);
        let depth = *int_values(depth)?.first().ok_or_else(|| candle_core::Error::Msg("empty depth".into()))?;
        let k = axis(a, idx.rank() + 1)?;
        // Negative indices count from the end; out of range ones give an all-off row.
        let ids: Vec<i64> = int_values(idx)?.into_iter().map(|i| if i < 0 { i + depth } else { i }).collect();
        let ids = Tensor::from_vec(ids, idx.dims(), idx.device())?.unsqueeze(k)?;
        let mut along = vec![1; idx.rank() + 1];
        along[k] = depth.max(0) as usize;
        let hot = ids.broadcast_eq(&Tensor::arange(0i64, depth.max(0), idx.device())?.reshape(along)?)?;
        let values = values.flatten_all()?;
        let (off, on) = (values.get(0)?.broadcast_as(hot.shape())?, values.get(1)?.broadcast_as(hot.shape())?);
        Ok(vec![hot.where_cond(&on, &off)?])
    }))
}

pub fn non_zero(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let set = x.ne(&x.zeros_like()?)?.flatten_all()?.to_vec1::<u8>()?;
        let (dims, st) = (x.dims(), &strides(x.dims()));
        let hits: Vec<usize> = set.iter().enumerate().filter(|(_, &b)| b != 0).map(|(e, _)| e).collect();
        let coord = |d: usize| hits.iter().map(move |&e| ((e / st[d]) % dims[d]) as i64);
        let coords: Vec<i64> = (0..dims.len()).flat_map(coord).collect();
        Ok(vec![Tensor::from_vec(coords, (dims.len(), hits.len()), x.device())?])
    }))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::super::test_util::*;

    fn ids(dims: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_vec(v.to_vec(), dims, &Device::Cpu).unwrap()
    }

    fn run(n: &candle_onnx::onnx::NodeProto, opset: i64, xs: &[&Tensor]) -> Vec<Tensor> {
        let args: Vec<Option<&Tensor>> = xs.iter().map(|&t| Some(t)).collect();
        build(n, opset).run(&args).unwrap()
    }

    #[test]
    fn gather_counts_negative_indices_from_the_end() {
        let x = t(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
        let y = run(&node("Gather", 2, vec![]), 13, &[&x, &ids(&[2, 1], &[-1, 0])]);
        assert_eq!(y[0].dims(), &[2, 1, 2]);
        assert_close(&values(&y[0]), &[5., 6., 1., 2.], 0.);
        let y = run(&node("Gather", 2, vec![int("axis", 1)]), 13, &[&x, &ids(&[], &[1])]);
        assert_eq!(y[0].dims(), &[3]);
        assert_close(&values(&y[0]), &[2., 4., 6.], 0.);
    }

    #[test]
    fn gather_elements_and_nd() {
        let x = t(&[2, 2], &[1., 2., 3., 4.]);
        let y = run(&node("GatherElements", 2, vec![int("axis", 1)]), 13, &[&x, &ids(&[2, 2], &[0, 0, 1, 0])]);
        assert_close(&values(&y[0]), &[1., 1., 4., 3.], 0.);
        let y = run(&node("GatherND", 2, vec![]), 13, &[&x, &ids(&[2, 1], &[1, 0])]);
        assert_close(&values(&y[0]), &[3., 4., 1., 2.], 0.);
        // batch_dims = 1: row b picks element idx[b] of data[b].
        let y = run(&node("GatherND", 2, vec![int("batch_dims", 1)]), 13, &[&x, &ids(&[2, 1], &[1, 0])]);
        assert_eq!(y[0].dims(), &[2]);
        assert_close(&values(&y[0]), &[2., 3.], 0.);
    }

    #[test]
    fn scatter_elements_reductions() {
        let x = t(&[1, 5], &[1., 2., 3., 4., 5.]);
        let (i, u) = (ids(&[1, 2], &[1, 1]), t(&[1, 2], &[1.1, 2.1]));
        let add = node("ScatterElements", 3, vec![int("axis", 1), string("reduction", "add")]);
        assert_close(&values(&run(&add, 16, &[&x, &i, &u])[0]), &[1., 5.2, 3., 4., 5.], 1e-6);
        let mul = node("ScatterElements", 3, vec![int("axis", 1), string("reduction", "mul")]);
        assert_close(&values(&run(&mul, 16, &[&x, &i, &u])[0]), &[1., 4.62, 3., 4., 5.], 1e-5);
        let set = node("ScatterElements", 3, vec![int("axis", 1)]);
        let y = run(&set, 13, &[&x, &ids(&[1, 2], &[1, -2]), &u]);
        assert_close(&values(&y[0]), &[1., 1.1, 3., 2.1, 5.], 0.);
    }

    #[test]
    fn scatter_nd_replaces_slabs() {
        let x = t(&[3, 2], &[0.; 6]);
        let y = run(&node("ScatterND", 3, vec![]), 13, &[&x, &ids(&[2, 1], &[2, 0]), &t(&[2, 2], &[1., 2., 3., 4.])]);
        assert_close(&values(&y[0]), &[3., 4., 0., 0., 1., 2.], 0.);
    }

    #[test]
    fn masks_trilu_eye_like_one_hot() {
        let x = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let y = run(&node("Trilu", 1, vec![]), 14, &[&x]);
        assert_close(&values(&y[0]), &[1., 2., 3., 0., 5., 6.], 0.);
        let y = run(&node("Trilu", 2, vec![int("upper", 0)]), 14, &[&x, &ids(&[], &[-1])]);
        assert_close(&values(&y[0]), &[0., 0., 0., 4., 0., 0.], 0.);
        let y = run(&node("EyeLike", 1, vec![int("k", 1)]), 9, &[&x]);
        assert_close(&values(&y[0]), &[0., 1., 0., 0., 0., 1.], 0.);
        let y = run(&node("OneHot", 3, vec![int("axis", 0)]), 11, &[&ids(&[2], &[-1, 5]), &ids(&[], &[3]), &t(&[2], &[0., 1.])]);
        assert_eq!(y[0].dims(), &[3, 2]);
        assert_close(&values(&y[0]), &[0., 0., 0., 0., 1., 0.], 0.);
    }

    #[test]
    fn non_zero_lists_coordinates_per_dim() {
        let y = run(&node("NonZero", 1, vec![]), 13, &[&t(&[2, 2], &[1., 0., 0., 3.])]);
        assert_eq!(y[0].to_vec2::<i64>().unwrap(), vec![vec![0, 1], vec![0, 1]]);
    }
}
