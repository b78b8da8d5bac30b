//! Pooling. Spec: MaxPool (opsets 1–22: `kernel_shape`, `strides`, `pads`, `auto_pad`,
//! `ceil_mode`, `dilations`, `storage_order`, the optional `Indices` output), AveragePool (same,
//! plus `count_include_pad`), LpPool (opsets 1–22: `p`, float in opset 1), MaxUnpool (opsets
//! 9, 11: `output_shape` input), GlobalAveragePool, GlobalMaxPool, GlobalLpPool. Any number of
//! spatial dims.
//!
//! 2-D f32 MaxPool without dilations is two separable passes ([`max_pool_2d_f32`]); other 1-D
//! and 2-D MaxPool / AveragePool without dilations run on candle's 2-D pool kernels;
//! everything else (dilations, 3-D, `Indices`, LpPool) is one windowed reduction on the host,
//! [`pool_host`], which follows the ONNX reference window by window.

use candle_core::{DType, Tensor};

use super::conv::Padding;
use super::{input, int_values, Kernel, NodeCtx};
use crate::error::Result;

#[derive(Debug, Clone)]
pub(crate) struct PoolAttrs {
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    padding: Padding,
    ceil: bool,
}

/// One spatial dim of a pooling: input size, window, explicit pads and output size.
#[derive(Debug, Clone, Copy)]
struct Dim {
    size: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    begin: usize,
    end: usize,
    out: usize,
}

impl Dim {
    /// The taps of window `o`: an input coordinate, or `None` inside the explicit pads. Taps past
    /// the end pad (the partial last window of ceil_mode) are left out.
    fn taps(&self, o: usize) -> Vec<Option<usize>> {
        (0..self.kernel)
            .map(|k| o * self.stride + k * self.dilation)
            .take_while(|&p| p < self.size + self.begin + self.end)
            .map(|p| p.checked_sub(self.begin).filter(|&i| i < self.size))
            .collect()
    }
}

/// A positive per-spatial-dim attribute (`strides`, `dilations`), 1 everywhere when absent.
fn per_dim(ctx: &NodeCtx, name: &str, n: usize) -> Result<Vec<usize>> {
    match ctx.ints(name) {
        None => Ok(vec![1; n]),
        Some(v) if v.len() == n && v.iter().all(|&x| x >= 1) => Ok(v.iter().map(|&x| x as usize).collect()),
        Some(v) => Err(ctx.unsupported(&format!("{name} {v:?} for a {n}-D kernel"))),
    }
}

impl PoolAttrs {
    pub(crate) fn from_ctx(ctx: &NodeCtx) -> Result<Self> {
        let kernel: Vec<usize> = ctx
            .ints("kernel_shape")
            .ok_or_else(|| ctx.unsupported("missing kernel_shape"))?
            .iter()
            .map(|&k| k.max(1) as usize)
            .collect();
        let n = kernel.len();
        Ok(PoolAttrs {
            strides: per_dim(ctx, "strides", n)?,
            dilations: per_dim(ctx, "dilations", n)?,
            kernel,
            padding: Padding::from_ctx(ctx)?,
            ceil: ctx.int("ceil_mode", 0) != 0,
        })
    }

    /// The geometry of each spatial dim for input `x` [N, C, *spatial].
    fn dims(&self, x: &Tensor) -> candle_core::Result<Vec<Dim>> {
        if x.rank() != self.kernel.len() + 2 {
            candle_core::bail!("input rank {} does not match kernel {:?}", x.rank(), self.kernel)
        }
        let sizes = &x.dims()[2..];
        let pads = self.padding.resolve(sizes, &self.kernel, &self.strides, &self.dilations);
        let mut out = Vec::with_capacity(sizes.len());
        for (i, (&size, &(begin, end))) in sizes.iter().zip(&pads).enumerate() {
            let (kernel, stride, dilation) = (self.kernel[i], self.strides[i], self.dilations[i]);
            let reach = (kernel - 1) * dilation + 1;
            let Some(span) = (size + begin + end).checked_sub(reach) else {
                candle_core::bail!("pooling window {reach} exceeds padded size {} of dim {i}", size + begin + end)
            };
            let mut n = span / stride + 1;
            // A partial last window, unless it would start inside the end padding (ONNX / PyTorch).
            if self.ceil && span % stride != 0 && n * stride < size + begin {
                n += 1;
            }
            out.push(Dim { size, kernel, stride, dilation, begin, end, out: n });
        }
        Ok(out)
    }

    /// A 2-D pooling of input dims `x_dims` as `(kernel, strides, pads [top, left, bottom,
    /// right], dilations, ceil_mode)`, auto_pad resolved; `None` for other ranks.
    #[allow(clippy::type_complexity)]
    pub(crate) fn resolve_2d(&self, x_dims: &[usize]) -> Option<([usize; 2], [usize; 2], [usize; 4], [usize; 2], bool)> {
        let (&[kh, kw], &[_, _, h, w]) = (self.kernel.as_slice(), x_dims) else { return None };
        let pads = self.padding.resolve(&[h, w], &self.kernel, &self.strides, &self.dilations);
        Some((
            [kh, kw],
            [self.strides[0], self.strides[1]],
            [pads[0].0, pads[1].0, pads[0].1, pads[1].1],
            [self.dilations[0], self.dilations[1]],
            self.ceil,
        ))
    }

    /// Whether candle's 2-D pool kernels can run this pooling.
    fn candle_fits(&self) -> bool {
        self.kernel.len() <= 2 && self.dilations.iter().all(|&d| d == 1)
    }
}

/// `dst[o] = max(dst[o], src[o·stride + k - begin])` for one tap `k` of every window `o` whose
/// tap lands in `src` (taps in the pads, or past them in ceil_mode's last window, skip).
fn max_tap(dst: &mut [f32], src: &[f32], d: &Dim, k: usize) {
    for (o, v) in dst.iter_mut().enumerate() {
        let p = o * d.stride + k;
        if p >= d.size + d.begin + d.end {
            break;
        }
        if let Some(&x) = p.checked_sub(d.begin).and_then(|i| src.get(i)) {
            if x > *v || x.is_nan() {
                *v = x;
            }
        }
    }
}

/// 2-D MaxPool of a contiguous f32 tensor without dilations, as two separable passes — the
/// max over each window's columns, then over its rows — so a k×k window costs 2k, not k².
fn max_pool_2d_f32(x: &Tensor, dims: &[Dim]) -> Option<candle_core::Result<Tensor>> {
    let (n, c, h, w) = x.dims4().ok()?;
    let [dy, dx] = dims else { return None };
    if dy.dilation != 1 || dx.dilation != 1 {
        return None;
    }
    let (oh, ow) = (dy.out, dx.out);
    let halves = [dy, dx].iter().all(|d| d.kernel == 2 && d.stride == 2 && d.begin == 0 && d.end == 0 && d.out == d.size / 2);
    if halves {
        return max_pool_2x2(x, (n * c, h, w));
    }
    let out = super::fast::with_f32(x, |xs| {
        let mut out = vec![f32::NEG_INFINITY; n * c * oh * ow];
        let mut rows = vec![f32::NEG_INFINITY; h * ow];
        for (src, dst) in xs.chunks_exact((h * w).max(1)).zip(out.chunks_exact_mut((oh * ow).max(1))) {
            rows.fill(f32::NEG_INFINITY);
            for (row, r) in src.chunks_exact(w.max(1)).zip(rows.chunks_exact_mut(ow.max(1))) {
                (0..dx.kernel).for_each(|k| max_tap(r, row, dx, k));
            }
            for (oy, o) in dst.chunks_exact_mut(ow.max(1)).enumerate() {
                for k in 0..dy.kernel {
                    let p = oy * dy.stride + k;
                    if p >= dy.size + dy.begin + dy.end {
                        break;
                    }
                    if let Some(iy) = p.checked_sub(dy.begin).filter(|&i| i < h) {
                        for (v, &r) in o.iter_mut().zip(&rows[iy * ow..(iy + 1) * ow]) {
                            if r > *v || r.is_nan() {
                                *v = r;
                            }
                        }
                    }
                }
            }
        }
        out
    })?;
    Some(Tensor::from_vec(out, (n, c, oh, ow), x.device()))
}

/// The commonest MaxPool (2×2, stride 2, no pads, floor) in one pass over each pair of rows;
/// NaN wins, as in the general path.
fn max_pool_2x2(x: &Tensor, (planes, h, w): (usize, usize, usize)) -> Option<candle_core::Result<Tensor>> {
    let (oh, ow) = (h / 2, w / 2);
    let pick = |a: f32, b: f32| if b > a || b.is_nan() { b } else { a };
    let out = super::fast::with_f32(x, |xs| {
        let mut out = Vec::with_capacity(planes * oh * ow);
        for plane in xs.chunks_exact((h * w).max(1)).take(planes) {
            for oy in 0..oh {
                let (r0, r1) = (&plane[2 * oy * w..][..2 * ow], &plane[(2 * oy + 1) * w..][..2 * ow]);
                out.extend(r0.chunks_exact(2).zip(r1.chunks_exact(2)).map(|(a, b)| pick(pick(a[0], a[1]), pick(b[0], b[1]))));
            }
        }
        out
    })?;
    let dims: Vec<usize> = x.dims().iter().take(2).copied().chain([oh, ow]).collect();
    Some(Tensor::from_vec(out, dims, x.device()))
}

/// Per dim for the candle path: (begin pad, end pad, extra end pad for ceil_mode's last window).
fn candle_pads(dims: &[Dim]) -> Vec<(usize, usize, usize)> {
    dims.iter()
        .map(|d| (d.begin, d.end, ((d.out - 1) * d.stride + d.kernel).saturating_sub(d.size + d.begin + d.end)))
        .collect()
}

/// Calls `f` with every multi-index below `sizes`, in row-major order.
fn for_each_index(sizes: &[usize], mut f: impl FnMut(&[usize])) {
    if sizes.contains(&0) {
        return;
    }
    let mut idx = vec![0; sizes.len()];
    loop {
        f(&idx);
        let Some(d) = (0..sizes.len()).rev().find(|&d| idx[d] + 1 < sizes[d]) else {
            return;
        };
        idx[d] += 1;
        idx[d + 1..].iter_mut().for_each(|i| *i = 0);
    }
}

/// Row-major strides of `sizes`; reversed order gives column-major ones.
fn strides_of(sizes: &[usize], column_major: bool) -> Vec<usize> {
    let mut strides = vec![0; sizes.len()];
    let mut acc = 1;
    let order: Vec<usize> = if column_major { (0..sizes.len()).collect() } else { (0..sizes.len()).rev().collect() };
    for d in order {
        strides[d] = acc;
        acc *= sizes[d];
    }
    strides
}

/// What a window reduces to.
#[derive(Debug, Clone, Copy)]
enum Reduce {
    /// The largest element; its index flattened over the whole input, spatial dims row-major
    /// (storage_order 0) or column-major (1).
    Max { column_major: bool },
    /// The mean over the real elements, and over the explicit pads when `include_pad`.
    Avg { include_pad: bool },
    /// (Σ |x|^p)^(1/p) over the window.
    Lp(f64),
}

/// Pool `x` [N, C, *spatial] window by window on the host. Returns the pooled tensor and, for
/// [`Reduce::Max`], the Indices output (I64).
fn pool_host(x: &Tensor, dims: &[Dim], reduce: Reduce) -> candle_core::Result<(Tensor, Tensor)> {
    let (n, c) = (x.dim(0)?, x.dim(1)?);
    let sizes: Vec<usize> = dims.iter().map(|d| d.size).collect();
    let outs: Vec<usize> = dims.iter().map(|d| d.out).collect();
    let plane: usize = sizes.iter().product();
    let (row, col) = (strides_of(&sizes, false), strides_of(&sizes, true));
    let xs = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    // Per dim, per output position: its taps.
    let taps: Vec<Vec<Vec<Option<usize>>>> = dims.iter().map(|d| (0..d.out).map(|o| d.taps(o)).collect()).collect();
    let mut ys = Vec::with_capacity(n * c * outs.iter().product::<usize>());
    let mut idx = Vec::with_capacity(ys.capacity());
    for p in 0..n * c {
        let base = p * plane;
        for_each_index(&outs, |o| {
            let window: Vec<&[Option<usize>]> = o.iter().enumerate().map(|(d, &i)| taps[d][i].as_slice()).collect();
            let lens: Vec<usize> = window.iter().map(|w| w.len()).collect();
            let (mut acc, mut count, mut best) = (0.0f64, 0usize, None::<(f64, usize)>);
            for_each_index(&lens, |k| {
                let coords: Option<Vec<usize>> = k.iter().enumerate().map(|(d, &j)| window[d][j]).collect();
                let Some(coords) = coords else {
                    count += usize::from(matches!(reduce, Reduce::Avg { include_pad: true }));
                    return;
                };
                let flat: usize = coords.iter().zip(&row).map(|(a, s)| a * s).sum();
                let v = xs[base + flat];
                count += 1;
                match reduce {
                    Reduce::Max { column_major } => {
                        if best.is_none_or(|(b, _)| v > b) {
                            let at =
                                if column_major { coords.iter().zip(&col).map(|(a, s)| a * s).sum() } else { flat };
                            best = Some((v, base + at));
                        }
                    }
                    Reduce::Avg { .. } => acc += v,
                    Reduce::Lp(q) => acc += v.abs().powf(q),
                }
            });
            let (y, i) = match reduce {
                Reduce::Max { .. } => best.map_or((0.0, -1), |(v, i)| (v, i as i64)),
                Reduce::Avg { .. } => (acc / count.max(1) as f64, -1),
                Reduce::Lp(q) => (acc.powf(1.0 / q), -1),
            };
            ys.push(y);
            idx.push(i);
        });
    }
    let mut shape = vec![n, c];
    shape.extend_from_slice(&outs);
    let y = Tensor::from_vec(ys, shape.clone(), x.device())?.to_dtype(x.dtype())?;
    Ok((y, Tensor::from_vec(idx, shape, x.device())?))
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

fn from_4d(y: Tensor, rank: usize) -> candle_core::Result<Tensor> {
    if rank == 3 {
        y.squeeze(2)
    } else {
        Ok(y)
    }
}

fn kernel_2d(a: &PoolAttrs) -> ((usize, usize), (usize, usize)) {
    if a.kernel.len() == 1 {
        ((1, a.kernel[0]), (1, a.strides[0]))
    } else {
        ((a.kernel[0], a.kernel[1]), (a.strides[0], a.strides[1]))
    }
}

/// Whether the node asks for its second output.
fn wants_output(ctx: &NodeCtx, i: usize) -> bool {
    ctx.node.output.get(i).is_some_and(|o| !o.is_empty())
}

pub fn max_pool(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let attrs = PoolAttrs::from_ctx(ctx)?;
    let indices = wants_output(ctx, 1);
    let column_major = ctx.int("storage_order", 0) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let dims = attrs.dims(x)?;
        if indices || !attrs.candle_fits() {
            let (y, i) = pool_host(x, &dims, Reduce::Max { column_major })?;
            return Ok(if indices { vec![y, i] } else { vec![y] });
        }
        if let Some(y) = max_pool_2d_f32(x, &dims) {
            return Ok(vec![y?]);
        }
        let mut p = x.clone();
        for (i, (b, e, extra)) in candle_pads(&dims).into_iter().enumerate() {
            p = pad_with(&p, 2 + i, b, e + extra, f64::NEG_INFINITY)?;
        }
        let (k, s) = kernel_2d(&attrs);
        Ok(vec![from_4d(as_4d(&p)?.max_pool2d_with_stride(k, s)?, x.rank())?])
    }))
}

pub fn average_pool(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let attrs = PoolAttrs::from_ctx(ctx)?;
    let include_pad = ctx.int("count_include_pad", 0) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let dims = attrs.dims(x)?;
        if !attrs.candle_fits() {
            return Ok(vec![pool_host(x, &dims, Reduce::Avg { include_pad })?.0]);
        }
        let pads = candle_pads(&dims);
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
        Ok(vec![from_4d(y, x.rank())?])
    }))
}

/// LpPool's `p`: a float in opset 1, an int from opset 2.
fn p_attr(ctx: &NodeCtx) -> f64 {
    const FLOAT: i32 = 1;
    ctx.attr("p").map_or(2.0, |a| if a.r#type == FLOAT { f64::from(a.f) } else { a.i as f64 })
}

pub fn lp_pool(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let attrs = PoolAttrs::from_ctx(ctx)?;
    let p = p_attr(ctx);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        Ok(vec![pool_host(x, &attrs.dims(x)?, Reduce::Lp(p))?.0])
    }))
}

/// MaxUnpool: scatter `X` to the flat positions `I` of a zero tensor of the shape MaxPool's
/// input had, then pad it with zeros to `output_shape` when given.
pub fn max_unpool(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let attrs = PoolAttrs::from_ctx(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, i) = (input(xs, 0)?, input(xs, 1)?);
        let n = attrs.kernel.len();
        if x.rank() != n + 2 || i.dims() != x.dims() {
            candle_core::bail!("MaxUnpool: X {:?}, I {:?}, kernel {:?}", x.dims(), i.dims(), attrs.kernel)
        }
        let pads = attrs.padding.resolve(&x.dims()[2..], &attrs.kernel, &attrs.strides, &attrs.dilations);
        let mut shape = x.dims()[..2].to_vec();
        for (d, &(b, e)) in pads.iter().enumerate() {
            let full = (x.dim(2 + d)? - 1) * attrs.strides[d] + attrs.kernel[d];
            shape.push(full.saturating_sub(b + e));
        }
        let mut y = vec![0f64; shape.iter().product()];
        let values = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        for (v, at) in values.into_iter().zip(int_values(i)?) {
            match usize::try_from(at).ok().and_then(|at| y.get_mut(at)) {
                Some(slot) => *slot = v,
                None => {
                    candle_core::bail!("MaxUnpool: index {at} outside an output of shape {shape:?}")
                }
            }
        }
        let mut y = Tensor::from_vec(y, shape.clone(), x.device())?.to_dtype(x.dtype())?;
        if let Some(out) = xs.get(2).copied().flatten() {
            let out = int_values(out)?;
            if out.len() != shape.len() {
                candle_core::bail!("MaxUnpool: output_shape {out:?} for a rank-{} output", shape.len())
            }
            for (d, (&want, &have)) in out.iter().zip(&shape).enumerate() {
                match usize::try_from(want).ok().and_then(|w| w.checked_sub(have)) {
                    Some(extra) => y = y.pad_with_zeros(d, 0, extra)?,
                    None => {
                        candle_core::bail!("MaxUnpool: output_shape {out:?} smaller than {shape:?}")
                    }
                }
            }
        }
        Ok(vec![y])
    }))
}

/// A global pooling: `f` reduces every spatial dim (2..) to 1 in turn.
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

pub fn global_lp_pool(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let p = p_attr(ctx);
    let sum = global(|t, d| t.sum_keepdim(d))?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?.abs()?.powf(p)?;
        Ok(vec![sum.run(&[Some(&x)])?.remove(0).powf(1.0 / p)?])
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use candle_onnx::onnx::AttributeProto;

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
    fn max_pool_2x2_drops_the_odd_edge_and_keeps_nan() {
        let n = node("MaxPool", 1, vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])]);
        let mut v: Vec<f32> = (1..=30).map(|v| v as f32).collect();
        v[15] = f32::NAN; // row 0 of the second plane, column 0
        let y = build(&n, 12).run(&[Some(&t(&[1, 2, 3, 5], &v))]).unwrap();
        assert_eq!(y[0].dims(), &[1, 2, 1, 2]);
        let got = values(&y[0]);
        assert_eq!(&got[..2], &[7., 9.]);
        assert!(got[2].is_nan());
        assert_eq!(got[3], 24.);
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

    /// A node with its outputs named `outputs`.
    fn node_out(op: &str, inputs: usize, outputs: &[&str], attrs: Vec<AttributeProto>) -> candle_onnx::onnx::NodeProto {
        let mut n = node(op, inputs, attrs);
        n.output = outputs.iter().map(|o| o.to_string()).collect();
        n
    }

    #[test]
    fn max_pool_with_dilations_spreads_the_window() {
        let n = node("MaxPool", 1, vec![ints("kernel_shape", &[2, 2]), ints("dilations", &[2, 2])]);
        let y = build(&n, 12).run(&[Some(&x4())]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 2, 2]);
        assert_close(&values(&y[0]), &[11., 12., 15., 16.], 0.0);
    }

    #[test]
    fn max_pool_indices_follow_storage_order() {
        let x = t(&[1, 1, 2, 3], &[1., 5., 2., 4., 3., 6.]);
        for (order, want) in [(0, [1, 5]), (1, [2, 5])] {
            let n =
                node_out("MaxPool", 1, &["y", "i"], vec![ints("kernel_shape", &[2, 2]), int("storage_order", order)]);
            let y = build(&n, 12).run(&[Some(&x)]).unwrap();
            assert_close(&values(&y[0]), &[5., 6.], 0.0);
            assert_eq!(y[1].flatten_all().unwrap().to_vec1::<i64>().unwrap(), want);
        }
    }

    #[test]
    fn average_pool_3d_with_pads_counts_only_real_elements() {
        let x = t(&[1, 1, 2, 2, 2], &(1..=8).map(|v| v as f32).collect::<Vec<_>>());
        let n = node("AveragePool", 1, vec![ints("kernel_shape", &[2, 2, 2])]);
        assert_close(&values(&build(&n, 19).run(&[Some(&x)]).unwrap()[0]), &[4.5], 1e-6);
        let n = node(
            "AveragePool",
            1,
            vec![ints("kernel_shape", &[2, 2, 2]), ints("strides", &[2, 2, 2]), ints("pads", &[1; 6])],
        );
        let y = build(&n, 19).run(&[Some(&x)]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 2, 2, 2]);
        assert_close(&values(&y[0]), &(1..=8).map(|v| v as f32).collect::<Vec<_>>(), 1e-6);
    }

    #[test]
    fn host_max_pool_matches_the_candle_path() {
        // Asking for Indices sends MaxPool to the host path; the same node without runs on candle.
        let attrs = || {
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 0, 0, 1]),
                int("ceil_mode", 1),
            ]
        };
        let x = t(&[1, 1, 4, 4], &[3., 1., 4., 1., 5., 9., 2., 6., 5., 3., 5., 8., 9., 7., 9., 3.]);
        let fast = build(&node("MaxPool", 1, attrs()), 12).run(&[Some(&x)]).unwrap();
        let host = build(&node_out("MaxPool", 1, &["y", "i"], attrs()), 12).run(&[Some(&x)]).unwrap();
        assert_eq!(fast[0].dims(), host[0].dims());
        assert_close(&values(&fast[0]), &values(&host[0]), 0.0);
    }

    #[test]
    fn lp_pool_reads_p_as_float_in_opset_1_and_int_after() {
        let x = t(&[1, 1, 3], &[3., -4., 0.]);
        let n = node("LpPool", 1, vec![ints("kernel_shape", &[2]), int("p", 2)]);
        assert_close(&values(&build(&n, 18).run(&[Some(&x)]).unwrap()[0]), &[5., 4.], 1e-6);
        let n = node("LpPool", 1, vec![ints("kernel_shape", &[2]), float("p", 1.0)]);
        assert_close(&values(&build(&n, 1).run(&[Some(&x)]).unwrap()[0]), &[7., 4.], 1e-6);
    }

    #[test]
    fn global_lp_pool_is_the_p_norm_of_each_plane() {
        let y = build(&node("GlobalLpPool", 1, vec![]), 2).run(&[Some(&t(&[1, 1, 2], &[3., 4.]))]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 1]);
        assert_close(&values(&y[0]), &[5.], 1e-6);
    }

    #[test]
    fn max_unpool_scatters_and_pads_to_output_shape() {
        let x = t(&[1, 1, 2], &[5., 6.]);
        let i = candle_core::Tensor::new(&[[[1i64, 2]]], &candle_core::Device::Cpu).unwrap();
        let shape = candle_core::Tensor::new(&[1i64, 1, 5], &candle_core::Device::Cpu).unwrap();
        let n = node("MaxUnpool", 3, vec![ints("kernel_shape", &[2]), ints("strides", &[2])]);
        let k = build(&n, 11);
        assert_close(&values(&k.run(&[Some(&x), Some(&i)]).unwrap()[0]), &[0., 5., 6., 0.], 0.0);
        assert_close(&values(&k.run(&[Some(&x), Some(&i), Some(&shape)]).unwrap()[0]), &[0., 5., 6., 0., 0.], 0.0);
    }
}
