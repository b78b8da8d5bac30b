//! Ops defined by index arithmetic. Spec: Gather (opset 1+, negative indices from 11),
//! GatherElements (11+), GatherND (11+, `batch_dims` from 12), Scatter (9–10) /
//! ScatterElements (11+, `reduction` add/mul from 16, max/min from 18), ScatterND (11+,
//! `reduction` from 16/18), OneHot (9+, negative indices from 11), Trilu (14), EyeLike (9),
//! NonZero (9+), Compress (9+, `axis` optional), Unique (11: `sorted`, `axis`, four outputs),
//! ReverseSequence (10), TensorScatter (24: `linear` / `circular` KV-cache writes).
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

/// `wick.split` Gather (engine/split.rs): `Gather(w, idx)` on axis 0 for a `w` cut along that
/// axis into parts — inputs `idx, w₀, w₁, …` — without joining the parts.
pub fn gather_parts(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let idx = input(xs, 0)?;
        let parts = (1..xs.len()).map(|i| input(xs, i)).collect::<R<Vec<_>>>()?;
        let Some(first) = parts.first() else { candle_core::bail!("a split Gather without parts") };
        let mut starts = vec![0usize];
        for p in &parts {
            starts.push(starts[starts.len() - 1] + p.dims().first().copied().unwrap_or(0));
        }
        let total = starts[parts.len()] as i64;
        // Each index as (part, row in it); the rows each part gives, in the order asked.
        let mut picks: Vec<Vec<u32>> = vec![Vec::new(); parts.len()];
        let mut at = Vec::new();
        for i in int_values(idx)? {
            let g = if i < 0 { i + total } else { i };
            if !(0..total).contains(&g) {
                candle_core::bail!("Gather index {i} out of range for {total} rows")
            }
            let p = starts.partition_point(|&s| s as i64 <= g) - 1;
            at.push((p, picks[p].len()));
            picks[p].push((g - starts[p] as i64) as u32);
        }
        let mut dims = idx.dims().to_vec();
        dims.extend(&first.dims()[1..]);
        if at.is_empty() {
            return Ok(vec![Tensor::zeros(dims, first.dtype(), first.device())?]);
        }
        let mut pieces = Vec::new();
        let mut offset = vec![0u32; parts.len()];
        let mut rows = 0u32;
        for (p, locals) in picks.iter().enumerate().filter(|(_, l)| !l.is_empty()) {
            offset[p] = rows;
            rows += locals.len() as u32;
            let ids = Tensor::new(locals.as_slice(), first.device())?;
            pieces.push(parts[p].contiguous()?.index_select(&ids, 0)?);
        }
        let joined = Tensor::cat(&pieces, 0)?;
        let order: Vec<u32> = at.iter().map(|&(p, k)| offset[p] + k as u32).collect();
        let out = if pieces.len() == 1 && order.iter().enumerate().all(|(i, &o)| o == i as u32) {
            joined
        } else {
            joined.index_select(&Tensor::new(order.as_slice(), first.device())?, 0)?
        };
        Ok(vec![out.reshape(dims)?])
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

pub fn compress(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.attr("axis").map(|a| a.i);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, cond) = (input(xs, 0)?, input(xs, 1)?);
        let (x, k) = match a {
            Some(a) => (x.clone(), axis(a, x.rank())?),
            None => (x.flatten_all()?, 0),
        };
        let n = x.dims()[k];
        let cond = int_values(cond)?;
        if cond.len() > n {
            candle_core::bail!("Compress condition has {} entries for a dim of {n}", cond.len())
        }
        let keep: Vec<i64> = (0..cond.len()).filter(|&i| cond[i] != 0).map(|i| i as i64).collect();
        let m = keep.len();
        Ok(vec![x.contiguous()?.index_select(&Tensor::from_vec(keep, m, x.device())?, k)?])
    }))
}

/// Unique's groups of equal rows: each row's group, each group's first row and size, groups
/// in the order asked (ascending rows, or first occurrence).
struct Groups {
    first: Vec<usize>,
    inverse: Vec<i64>,
    counts: Vec<i64>,
}

/// Group the `n` rows of `keys` (row-major, `len` keys a row) by equality.
fn group_rows<T: PartialOrd>(keys: &[T], n: usize, len: usize, sorted: bool) -> Groups {
    let row = |i: usize| &keys[i * len..(i + 1) * len];
    let cmp = |a: &usize, b: &usize| {
        row(*a).iter().zip(row(*b)).find_map(|(x, y)| match x.partial_cmp(y) {
            Some(std::cmp::Ordering::Equal) | None => None,
            o => o,
        })
        .unwrap_or(std::cmp::Ordering::Equal)
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(cmp); // stable: the first row of each run is its first occurrence
    let mut g = Groups { first: vec![], inverse: vec![0; n], counts: vec![] };
    for (j, &i) in order.iter().enumerate() {
        if j == 0 || cmp(&order[j - 1], &i).is_ne() {
            g.first.push(i);
            g.counts.push(0);
        }
        *g.counts.last_mut().expect("a group was opened") += 1;
        g.inverse[i] = g.first.len() as i64 - 1;
    }
    if !sorted {
        let mut by_first: Vec<usize> = (0..g.first.len()).collect();
        by_first.sort_by_key(|&j| g.first[j]);
        let mut rank = vec![0i64; by_first.len()];
        by_first.iter().enumerate().for_each(|(r, &j)| rank[j] = r as i64);
        g.inverse.iter_mut().for_each(|v| *v = rank[*v as usize]);
        g.first = by_first.iter().map(|&j| g.first[j]).collect();
        g.counts = by_first.iter().map(|&j| g.counts[j]).collect();
    }
    g
}

pub fn unique(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.attr("axis").map(|a| a.i);
    let sorted = ctx.int("sorted", 1) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let (x, k) = match a {
            Some(a) => (x.clone(), axis(a, x.rank())?),
            None => (x.flatten_all()?, 0),
        };
        let n = x.dims()[k];
        let len = x.elem_count().checked_div(n).unwrap_or(0);
        let rows = x.transpose(0, k)?.contiguous()?;
        let g = if x.dtype().is_float() {
            group_rows(&rows.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?, n, len, sorted)
        } else {
            group_rows(&int_values(&rows)?, n, len, sorted)
        };
        let dev = x.device();
        let first: Vec<i64> = g.first.iter().map(|&i| i as i64).collect();
        let m = first.len();
        let first = Tensor::from_vec(first, m, dev)?;
        let y = x.contiguous()?.index_select(&first, k)?;
        Ok(vec![y, first, Tensor::from_vec(g.inverse, n, dev)?, Tensor::from_vec(g.counts, m, dev)?])
    }))
}

pub fn reverse_sequence(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (ba, ta) = (ctx.int("batch_axis", 1), ctx.int("time_axis", 0));
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, lens) = (input(xs, 0)?, int_values(input(xs, 1)?)?);
        let (b, t) = (axis(ba, x.rank())?, axis(ta, x.rank())?);
        let (nb, nt) = (x.dims()[b], x.dims()[t]);
        if lens.len() != nb {
            candle_core::bail!("{} sequence lengths for a batch of {nb}", lens.len())
        }
        // The time index each output element reads: reversed within the sequence's length.
        let mut src = vec![0i64; nb * nt];
        for (bi, &l) in lens.iter().enumerate() {
            let l = l.clamp(0, nt as i64);
            for ti in 0..nt as i64 {
                let at = if b < t { bi * nt + ti as usize } else { ti as usize * nb + bi };
                src[at] = if ti < l { l - 1 - ti } else { ti };
            }
        }
        let mut dims = vec![1; x.rank()];
        (dims[b], dims[t]) = (nb, nt);
        let src = Tensor::from_vec(src, dims, x.device())?.broadcast_as(x.shape())?.contiguous()?;
        Ok(vec![x.contiguous()?.gather(&src, t)?])
    }))
}

pub fn tensor_scatter(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ctx.int("axis", -2);
    let circular = match ctx.string("mode", "linear").as_str() {
        "linear" => false,
        "circular" => true,
        other => return Err(ctx.unsupported(&format!("mode '{other}'"))),
    };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (cache, upd) = (input(xs, 0)?, input(xs, 1)?);
        let k = axis(a, cache.rank())?;
        let (cd, ud) = (cache.dims(), upd.dims());
        if cd.len() != ud.len() || (0..cd.len()).any(|d| if d == k { ud[d] > cd[d] } else { ud[d] != cd[d] }) {
            candle_core::bail!("TensorScatter update {ud:?} does not fit cache {cd:?} on axis {k}")
        }
        let (max_len, len) = (cd[k], ud[k]);
        let prefix: usize = cd[..k].iter().product();
        let inner: usize = cd[k + 1..].iter().product();
        let batch = cd.first().copied().unwrap_or(1);
        let starts = match xs.get(2).copied().flatten() {
            Some(w) => int_values(w)?,
            None => vec![0; batch],
        };
        let mut offsets = Vec::with_capacity(upd.elem_count());
        for p in 0..prefix {
            let start = *starts.get(p / (prefix / batch.max(1)).max(1)).unwrap_or(&0);
            for s in 0..len as i64 {
                let mut at = start + s;
                if circular {
                    at = at.rem_euclid(max_len as i64);
                } else if at < 0 || at >= max_len as i64 {
                    candle_core::bail!("TensorScatter writes position {at} of {max_len}")
                }
                let base = (p * max_len + at as usize) * inner;
                offsets.extend((base..base + inner).map(|o| o as i64));
            }
        }
        Ok(vec![scatter_flat(cache, offsets, upd, Reduction::None)?])
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

    #[test]
    fn compress_keeps_rows_where_condition_holds() {
        let x = t(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
        let cond = Tensor::new(&[0u8, 1, 1], &Device::Cpu).unwrap();
        let y = run(&node("Compress", 2, vec![int("axis", 0)]), 11, &[&x, &cond]);
        assert_close(&values(&y[0]), &[3., 4., 5., 6.], 0.);
        // No axis: the flattened input; a short condition keeps only its own prefix.
        let y = run(&node("Compress", 2, vec![]), 11, &[&x, &cond]);
        assert_close(&values(&y[0]), &[2., 3.], 0.);
    }

    #[test]
    fn unique_sorted_and_in_first_occurrence_order() {
        let x = t(&[6], &[2., 1., 1., 3., 4., 3.]);
        let mut n = node("Unique", 1, vec![int("sorted", 0)]);
        let y = run(&n, 11, &[&x]);
        assert_close(&values(&y[0]), &[2., 1., 3., 4.], 0.);
        assert_eq!(y[1].to_vec1::<i64>().unwrap(), [0, 1, 3, 4]);
        assert_eq!(y[2].to_vec1::<i64>().unwrap(), [0, 1, 1, 2, 3, 2]);
        assert_eq!(y[3].to_vec1::<i64>().unwrap(), [1, 2, 2, 1]);
        n.attribute = vec![int("axis", 0)];
        let rows = t(&[3, 2], &[1., 0., 0., 1., 1., 0.]);
        let y = run(&n, 11, &[&rows]);
        assert_close(&values(&y[0]), &[0., 1., 1., 0.], 0.);
        assert_eq!(y[2].to_vec1::<i64>().unwrap(), [1, 0, 1]);
        assert_eq!(y[3].to_vec1::<i64>().unwrap(), [1, 2]);
    }

    #[test]
    fn reverse_sequence_reverses_each_prefix() {
        // time_axis 0, batch_axis 1: columns are sequences of lengths 3 and 1.
        let x = t(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
        let y = run(&node("ReverseSequence", 2, vec![]), 10, &[&x, &ids(&[2], &[3, 1])]);
        assert_close(&values(&y[0]), &[5., 2., 3., 4., 1., 6.], 0.);
    }

    #[test]
    fn tensor_scatter_writes_at_each_batch_index() {
        let cache = t(&[2, 3, 1], &[0.; 6]);
        let upd = t(&[2, 2, 1], &[1., 2., 3., 4.]);
        let y = run(&node("TensorScatter", 3, vec![int("axis", 1)]), 24, &[&cache, &upd, &ids(&[2], &[1, 0])]);
        assert_close(&values(&y[0]), &[0., 1., 2., 3., 4., 0.], 0.);
        let circ = node("TensorScatter", 3, vec![int("axis", 1), string("mode", "circular")]);
        let y = run(&circ, 24, &[&cache, &upd, &ids(&[2], &[2, 0])]);
        assert_close(&values(&y[0]), &[2., 0., 1., 3., 4., 0.], 0.);
    }
}
