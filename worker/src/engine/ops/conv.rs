//! Convolution. Spec: Conv (opsets 1–22), ConvTranspose (opsets 1–22), ConvInteger (opset 10),
//! for 1-D, 2-D and 3-D inputs: `pads` (asymmetric pads become an explicit zero pad),
//! `auto_pad` (NOTSET, VALID, SAME_UPPER, SAME_LOWER), per-dim `strides` and `dilations`,
//! `group`; ConvTranspose also `output_padding` and `output_shape`.
//!
//! 2-D f32 convolutions run on the engine's own kernels: a depthwise one ([`depthwise_2d`]:
//! padded, phase-split planes, each tap one long vector axpy) and, for every other group shape,
//! one [`sgemm_packed`] per image and group whose right operand is the im2col matrix packed
//! panel by panel straight from the input ([`Columns`]), the bias and a fused activation
//! ([`Act`], from a `ConvAct` node) applied in the register tile. Stride-1 convolutions over
//! small planes skip the packing: the input is zero-padded once per image and each im2col row
//! read in place ([`Padded`], [`sgemm_gather`]).
//! Everything else goes through [`conv_nd`]: candle's conv1d/conv2d when strides and dilations
//! are uniform; otherwise the kernel is dilated with zeros and the stride-1 result subsampled.
//! 3-D is a sum over kernel depth of 2-D convs with the depth folded into the batch.
//! ConvTranspose is a stride-1 conv of the zero-upsampled input with the flipped kernel.

use std::mem::MaybeUninit;

use candle_core::Tensor;
use rayon::prelude::*;

use super::gemm::{self, sgemm_gather, sgemm_packed, Act, Bias, Mat, PackB, Reps, NR};
use super::{fast, input, Kernel, NodeCtx};
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
    pub fn resolve(&self, sizes: &[usize], kernel: &[usize], strides: &[usize], dilations: &[usize]) -> Vec<(usize, usize)> {
        let n = sizes.len();
        match self {
            Padding::Explicit(p) if p.len() == 2 * n => (0..n).map(|i| (p[i], p[n + i])).collect(),
            Padding::Explicit(_) | Padding::Valid => vec![(0, 0); n],
            Padding::Same { upper } => (0..n)
                .map(|i| {
                    let out = sizes[i].div_ceil(strides[i]);
                    let span = (kernel[i] - 1) * dilations[i] + 1;
                    let total = ((out - 1) * strides[i] + span).saturating_sub(sizes[i]);
                    let small = total / 2;
                    if *upper { (small, total - small) } else { (total - small, small) }
                })
                .collect(),
        }
    }
}

/// A per-spatial-dim attribute (`strides`, `dilations`), all positive; empty when absent.
fn per_dim(ctx: &NodeCtx, name: &str) -> Result<Vec<usize>> {
    let v = ctx.ints(name).unwrap_or_default();
    if v.iter().any(|&x| x < 1) {
        return Err(ctx.unsupported(&format!("{name} {v:?}")));
    }
    Ok(v.iter().map(|&x| x as usize).collect())
}

/// `v` for `n` spatial dims, 1 everywhere when the attribute was absent.
fn fill(v: &[usize], n: usize) -> candle_core::Result<Vec<usize>> {
    match v.len() {
        0 => Ok(vec![1; n]),
        l if l == n => Ok(v.to_vec()),
        l => candle_core::bail!("attribute has {l} values for {n} spatial dims"),
    }
}

/// Every `step`-th element of `x` along `dim`.
fn subsample(x: &Tensor, dim: usize, step: usize) -> candle_core::Result<Tensor> {
    if step == 1 {
        return Ok(x.clone());
    }
    let idx: Vec<u32> = (0..x.dim(dim)?).step_by(step).map(|i| i as u32).collect();
    x.contiguous()?.index_select(&Tensor::new(idx, x.device())?, dim)
}

/// `x` with `step - 1` zeros inserted between neighbours along `dim` (length `(n-1)·step + 1`).
fn upsample_zeros(x: &Tensor, dim: usize, step: usize) -> candle_core::Result<Tensor> {
    let n = x.dim(dim)?;
    if step == 1 || n == 0 {
        return Ok(x.clone());
    }
    let mut shape = x.dims().to_vec();
    shape[dim] = n * step;
    x.unsqueeze(dim + 1)?.pad_with_zeros(dim + 1, 0, step - 1)?.reshape(shape)?.narrow(dim, 0, (n - 1) * step + 1)
}

/// Pad (positive) or crop (negative) `x` along `dim`.
fn pad_or_crop(x: &Tensor, dim: usize, begin: i64, end: i64) -> candle_core::Result<Tensor> {
    let x = x.pad_with_zeros(dim, begin.max(0) as usize, end.max(0) as usize)?;
    let (cb, ce) = ((-begin).max(0) as usize, (-end).max(0) as usize);
    if cb + ce == 0 {
        return Ok(x);
    }
    let len = x.dim(dim)?;
    if cb + ce > len {
        candle_core::bail!("padding crops more than the {len} elements of dim {dim}")
    }
    x.narrow(dim, cb, len - cb - ce)
}

/// Convolution of `x` [N, C, *spatial] with `w` [M, C/groups, *kernel] for 1 to 3 spatial dims.
pub fn conv_nd(
    x: &Tensor,
    w: &Tensor,
    pads: &[(usize, usize)],
    strides: &[usize],
    dilations: &[usize],
    groups: usize,
) -> candle_core::Result<Tensor> {
    let spatial = x.rank().saturating_sub(2);
    if !(1..=3).contains(&spatial) || w.rank() != x.rank() {
        candle_core::bail!("Conv supports 1-D to 3-D inputs, got x {:?} w {:?}", x.dims(), w.dims())
    }
    if spatial == 2 {
        if let Some(y) = pointwise_2d(x, w, pads, strides, groups).or_else(|| depthwise_2d(x, w, pads, strides, dilations, groups)) {
            return y;
        }
    }
    // Non-uniform dilations: dilate the kernel itself with zeros.
    let (w, dilations) = if dilations.iter().all(|&d| d == dilations[0]) {
        (w.clone(), dilations.to_vec())
    } else {
        let mut w = w.clone();
        for (i, &d) in dilations.iter().enumerate() {
            w = upsample_zeros(&w, 2 + i, d)?;
        }
        (w, vec![1; spatial])
    };
    let uniform_stride = strides.iter().all(|&s| s == strides[0]);
    let symmetric = pads.iter().all(|&(b, e)| b == e && b == pads[0].0);
    let (x, pad) = if symmetric && spatial < 3 {
        (x.clone(), pads[0].0)
    } else {
        let mut x = x.clone();
        for (i, &(b, e)) in pads.iter().enumerate() {
            x = x.pad_with_zeros(2 + i, b, e)?;
        }
        (x, 0)
    };
    let stride = if uniform_stride { strides[0] } else { 1 };
    let d = dilations[0];
    let mut y = match spatial {
        1 => x.conv1d(&w, pad, stride, d, groups)?,
        2 => x.conv2d(&w, pad, stride, d, groups)?,
        _ => {
            // Sum over kernel depth of 2-D convs, the output depth folded into the batch.
            let (n, c, depth) = (x.dim(0)?, x.dim(1)?, x.dim(2)?);
            let kd = w.dim(2)?;
            let span = (kd - 1) * d + 1;
            if depth < span {
                candle_core::bail!("Conv kernel depth {span} exceeds padded input depth {depth}")
            }
            let out_d = (depth - span) / stride + 1;
            let mut acc: Option<Tensor> = None;
            for k in 0..kd {
                let xs = subsample(&x.narrow(2, k * d, (out_d - 1) * stride + 1)?, 2, stride)?;
                let (h, wd) = (xs.dim(3)?, xs.dim(4)?);
                let xs = xs.permute((0, 2, 1, 3, 4))?.reshape((n * out_d, c, h, wd))?;
                let wk = w.narrow(2, k, 1)?.squeeze(2)?.contiguous()?;
                let ys = xs.conv2d(&wk, 0, stride, d, groups)?;
                let (m, ho, wo) = (ys.dim(1)?, ys.dim(2)?, ys.dim(3)?);
                let ys = ys.reshape((n, out_d, m, ho, wo))?.permute((0, 2, 1, 3, 4))?;
                acc = Some(match acc {
                    None => ys,
                    Some(a) => (a + ys)?,
                });
            }
            acc.ok_or_else(|| candle_core::Error::Msg("Conv kernel has depth 0".into()))?
        }
    };
    if !uniform_stride {
        for (i, &s) in strides.iter().enumerate() {
            y = subsample(&y, 2 + i, s)?;
        }
    }
    Ok(y)
}

/// A 1×1 convolution with unit strides and no padding is a matrix product: `W [M, C] · X [C, H·W]`
/// per image, with no im2col copy.
fn pointwise_2d(
    x: &Tensor,
    w: &Tensor,
    pads: &[(usize, usize)],
    strides: &[usize],
    groups: usize,
) -> Option<candle_core::Result<Tensor>> {
    let (n, c, h, wd) = x.dims4().ok()?;
    let (m, c_w, kh, kw) = w.dims4().ok()?;
    if (kh, kw, groups, c_w) != (1, 1, 1, c) || strides.iter().any(|&s| s != 1) || pads.iter().any(|&p| p != (0, 0)) {
        return None;
    }
    let run = || {
        let w = w.reshape((m, c))?;
        let x = x.reshape((n, c, h * wd))?;
        let ys = (0..n).map(|b| w.matmul(&x.get(b)?)).collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::stack(&ys, 0)?.reshape((n, m, h, wd))
    };
    Some(run())
}

/// Floats of output a depthwise block sums at once (16 KiB).
const FLAT_BLOCK: usize = 4096;

/// A depthwise convolution (each input channel convolved with its own `M / C` filters) on f32,
/// directly: candle splits grouped convolutions into one convolution per group, which for
/// thousands of single-channel groups costs far more than the arithmetic.
fn depthwise_2d(
    x: &Tensor,
    w: &Tensor,
    pads: &[(usize, usize)],
    strides: &[usize],
    dilations: &[usize],
    groups: usize,
) -> Option<candle_core::Result<Tensor>> {
    let (n, c, h, wd) = x.dims4().ok()?;
    let (m, one, kh, kw) = w.dims4().ok()?;
    if one != 1 || groups != c || c == 0 || m % c != 0 || pads.len() != 2 || strides.len() != 2 || dilations.len() != 2 {
        return None;
    }
    let mult = m / c;
    let ((pt, pb), (pl, pr)) = (pads[0], pads[1]);
    let (sh, sw, dh, dw) = (strides[0].max(1), strides[1].max(1), dilations[0].max(1), dilations[1].max(1));
    let (span_h, span_w) = ((kh - 1) * dh + 1, (kw - 1) * dw + 1);
    if h + pt + pb < span_h || wd + pl + pr < span_w {
        return None; // candle reports the error
    }
    let (oh, ow) = ((h + pt + pb - span_h) / sh + 1, (wd + pl + pr - span_w) / sw + 1);
    // Each input plane is zero-padded once and split by phase: padded pixel (r·sh + a, i·sw + b)
    // goes to phase (a, b) at (r, i). Then every tap reads, for all output pixels, one run of a
    // single phase plane laid out like the output with `pwp` columns (those past `ow` are
    // scratch): each tap is one long axpy the compiler vectorises, even for 7×7 planes.
    let (ph_rows, pw) = (h + pt + pb, wd + pl + pr);
    let (prow, pwp) = (ph_rows.div_ceil(sh), pw.div_ceil(sw));
    // Slack past the last row: the scratch columns of the last output row read beyond it.
    let phase_len = (prow + 1) * pwp + kw * dw;
    let out = fast::with_f32(x, |xs| {
        fast::with_f32(w, |ws| {
            let mut out = vec![0f32; n * m * oh * ow];
            let mut phased = vec![0f32; sh * sw * phase_len];
            let mut acc = vec![0f32; oh * pwp];
            let mut filled = usize::MAX;
            for (plane, dst) in out.chunks_mut(oh * ow).enumerate() {
                let (b, oc) = (plane / m, plane % m);
                let ic = b * c + oc / mult;
                if filled != ic {
                    let src = &xs[ic * h * wd..][..h * wd];
                    phased.fill(0.0);
                    for (y, row) in src.chunks_exact(wd).enumerate() {
                        let (a, r) = ((y + pt) % sh, (y + pt) / sh);
                        for ph in 0..sw {
                            // Padded columns i·sw + ph that hold input column i·sw + ph - pl.
                            let first = pl.saturating_sub(ph).div_ceil(sw);
                            let dst = &mut phased[(a * sw + ph) * phase_len + r * pwp..][..pwp];
                            if sw == 1 {
                                dst[first..first + wd].copy_from_slice(row);
                                continue;
                            }
                            for (d, &v) in dst[first..].iter_mut().zip(row[first * sw + ph - pl..].iter().step_by(sw)) {
                                *d = v;
                            }
                        }
                    }
                    filled = ic;
                }
                let k = &ws[oc * kh * kw..][..kh * kw];
                // Blocks of output rows whose sums stay in L1.
                let block = (FLAT_BLOCK / pwp).max(1);
                for (b0, dst) in (0..oh).step_by(block).zip(dst.chunks_mut(block * ow)) {
                    let rows = block.min(oh - b0);
                    let acc = &mut acc[..rows * pwp];
                    acc.fill(0.0);
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let (row, col) = (ky * dh, kx * dw);
                            let phase = &phased[((row % sh) * sw + col % sw) * phase_len..][..phase_len];
                            let at = (b0 + row / sh) * pwp + col / sw;
                            let wv = k[ky * kw + kx];
                            for (a, &v) in acc.iter_mut().zip(&phase[at..at + rows * pwp]) {
                                *a += wv * v;
                            }
                        }
                    }
                    for (row, a) in dst.chunks_exact_mut(ow).zip(acc.chunks_exact(pwp)) {
                        row.copy_from_slice(&a[..ow]);
                    }
                }
            }
            out
        })
    })??;
    Some(Tensor::from_vec(out, (n, m, oh, ow), &candle_core::Device::Cpu))
}

/// Where a 2-D convolution's windows fall: input and kernel sizes, strides, dilations, the
/// begin pads, and the output size.
struct Geometry {
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 2],
    out: [usize; 2],
}

impl Geometry {
    fn new(input: [usize; 2], kernel: [usize; 2], s: &[usize], d: &[usize], pads: &[(usize, usize)]) -> Option<Self> {
        let mut out = [0; 2];
        for i in 0..2 {
            let span = (kernel[i].checked_sub(1)?) * d[i] + 1;
            let padded = input[i] + pads[i].0 + pads[i].1;
            if padded < span {
                return None; // candle reports the error
            }
            out[i] = (padded - span) / s[i] + 1;
        }
        Some(Geometry { input, kernel, stride: [s[0], s[1]], dilation: [d[0], d[1]], pad: [pads[0].0, pads[1].0], out })
    }

    /// 1×1 windows, unit strides, no padding: the input planes are the columns already.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.pad == [0, 0]
    }
}

/// Input planes (of one image and group) up to this many floats, padded, take the direct path.
const DIRECT_MAX: usize = 16 * 1024;

/// The direct path of a stride-1 convolution over small planes: the input is zero-padded once
/// per image, and then row `(c, ky, kx)` of the im2col matrix, for one output row, is a run of
/// the padded plane at a fixed offset, which [`sgemm_gather`] reads in place: nothing is packed.
#[derive(Clone)]
struct Padded<'a> {
    geo: &'a Geometry,
    /// Padded rows and columns.
    rows: usize,
    cols: usize,
    /// The padded planes, then [`NR`] floats of slack (a ragged tile reads a full NR).
    buf: Vec<f32>,
    /// Each im2col row's offset into `buf`, for output row 0.
    offs: Vec<usize>,
}

impl<'a> Padded<'a> {
    /// `None` unless the convolution has unit strides and its `channels` padded planes are small.
    fn new(geo: &'a Geometry, channels: usize) -> Option<Self> {
        let ([h, w], [kh, kw], [dh, dw], [pt, pl]) = (geo.input, geo.kernel, geo.dilation, geo.pad);
        // The end pads: what the output size needs past the input (at least none).
        let rows = (geo.out[0] + (kh - 1) * dh).max(h + pt);
        let cols = (geo.out[1] + (kw - 1) * dw).max(w + pl);
        if geo.stride != [1, 1] || geo.is_pointwise() || channels * rows * cols > DIRECT_MAX {
            return None;
        }
        let mut offs = Vec::with_capacity(channels * kh * kw);
        for ch in 0..channels {
            for ky in 0..kh {
                for kx in 0..kw {
                    offs.push((ch * rows + ky * dh) * cols + kx * dw);
                }
            }
        }
        Some(Padded { geo, rows, cols, buf: vec![0f32; channels * rows * cols + NR], offs })
    }

    /// Copy one image's `channels` planes in (the pad stays zero: only the interior is written).
    fn fill(&mut self, src: &[f32]) {
        let ([h, w], [pt, pl]) = (self.geo.input, self.geo.pad);
        for (plane, dst) in src.chunks_exact(h * w).zip(self.buf.chunks_exact_mut(self.rows * self.cols)) {
            for (row, d) in plane.chunks_exact(w).zip(dst[pt * self.cols..].chunks_exact_mut(self.cols)) {
                d[pl..pl + w].copy_from_slice(row);
            }
        }
    }

    /// `dst` [m, oh·ow] = `a` [m, C·kh·kw] · im2col + `bias` per row, then `act`: every value
    /// of `dst` is written.
    fn conv(&self, m: usize, a: Mat, bias: &[f32], act: Act, dst: &mut [std::mem::MaybeUninit<f32>]) {
        let [oh, ow] = self.geo.out;
        // Output row oy reads the padded plane `oy` rows further down: one product repeated.
        let reps = Reps { count: oh, b: self.cols, c: ow };
        sgemm_gather(m, ow, a, &self.buf, &self.offs, reps, Bias::Rows(bias), act, dst, oh * ow);
    }
}

/// The im2col matrix of one image's channels (`C·kh·kw` rows, one column per output position)
/// never stored whole: sgemm packs it panel by panel straight from the input.
struct Columns<'a> {
    x: &'a [f32],
    geo: &'a Geometry,
}

impl PackB for Columns<'_> {
    fn pack(&self, kb: usize, kc: usize, j0: usize, cols: usize, panel: &mut [f32]) {
        let g = self.geo;
        let ([h, w], [kh, kw], [sh, sw], [dh, dw], [pt, pl], ow) =
            (g.input, g.kernel, g.stride, g.dilation, g.pad, g.out[1]);
        // Each column's window origin in the input (wrapping below 0: then out of range).
        let mut ys = [usize::MAX; NR];
        let mut xs = [usize::MAX; NR];
        let (mut oy, mut ox) = (j0 / ow, j0 % ow);
        for jj in 0..cols {
            ys[jj] = (oy * sh).wrapping_sub(pt);
            xs[jj] = (ox * sw).wrapping_sub(pl);
            ox += 1;
            if ox == ow {
                (oy, ox) = (oy + 1, 0);
            }
        }
        // The panel's columns lie on one output row: a row of input, maybe contiguous.
        let one_row = cols == NR && j0 % ow + NR <= ow;
        let (mut ch, mut ky, mut kx) = (kb / (kh * kw), kb / kw % kh, kb % kw);
        for dst in panel.chunks_exact_mut(NR).take(kc) {
            let plane = &self.x[ch * h * w..][..h * w];
            let (dy, dx) = (ky * dh, kx * dw);
            let iy0 = ys[0].wrapping_add(dy);
            let ix0 = xs[0].wrapping_add(dx);
            if one_row && sw == 1 && iy0 < h && ix0 < w && ix0 + NR <= w {
                dst.copy_from_slice(&plane[iy0 * w + ix0..][..NR]);
            } else if one_row && iy0 >= h {
                dst.fill(0.0);
            } else {
                for (jj, d) in dst.iter_mut().enumerate() {
                    let (iy, ix) = (ys[jj].wrapping_add(dy), xs[jj].wrapping_add(dx));
                    *d = if jj < cols && iy < h && ix < w { plane[iy * w + ix] } else { 0.0 };
                }
            }
            kx += 1;
            if kx == kw {
                kx = 0;
                ky += 1;
                if ky == kh {
                    (ky, ch) = (0, ch + 1);
                }
            }
        }
    }
}

/// Add a per-channel bias `b` (shape [M]) to `y` [N, M, …].
fn add_bias(y: Tensor, b: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match b {
        None => Ok(y),
        Some(b) => {
            let mut shape = vec![1usize; y.rank()];
            shape[1] = b.elem_count();
            let b = b.reshape(shape)?;
            fast::zip(&y, &b, |v, c| v + c).unwrap_or_else(|| y.broadcast_add(&b))
        }
    }
}

/// The attributes Conv, ConvInteger and QLinearConv share.
#[derive(Debug, Clone)]
pub struct ConvAttrs {
    strides: Vec<usize>,
    dilations: Vec<usize>,
    groups: usize,
    padding: Padding,
}

impl ConvAttrs {
    pub fn from_ctx(ctx: &NodeCtx) -> Result<Self> {
        Ok(ConvAttrs {
            strides: per_dim(ctx, "strides")?,
            dilations: per_dim(ctx, "dilations")?,
            groups: ctx.int("group", 1).max(1) as usize,
            padding: Padding::from_ctx(ctx)?,
        })
    }

    /// A 2-D convolution of input dims `x` by weight dims `w` as `(strides, pads [top, left,
    /// bottom, right], dilations, groups)`, auto_pad resolved; `None` for other ranks.
    pub(crate) fn resolve_2d(&self, x: &[usize], w: &[usize]) -> Option<([usize; 2], [usize; 4], [usize; 2], usize)> {
        let (&[_, _, h, wd], &[_, _, kh, kw]) = (x, w) else { return None };
        let strides = fill(&self.strides, 2).ok()?;
        let dilations = fill(&self.dilations, 2).ok()?;
        let pads = self.padding.resolve(&[h, wd], &[kh, kw], &strides, &dilations);
        Some(([strides[0], strides[1]], [pads[0].0, pads[1].0, pads[0].1, pads[1].1], [dilations[0], dilations[1]], self.groups))
    }

    /// A 2-D f32 convolution (not depthwise: [`depthwise_2d`] is faster there) as one matrix
    /// product per image and group, the bias starting the sums; `None` when it does not apply.
    fn gemm_2d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, act: Act) -> Option<candle_core::Result<Tensor>> {
        let (n, c, h, wd) = x.dims4().ok()?;
        let (m, cg, kh, kw) = w.dims4().ok()?;
        let g = self.groups;
        if cg == 1 && g == c || g == 0 || c != cg * g || m % g != 0 || b.is_some_and(|b| b.elem_count() != m) {
            return None;
        }
        let strides = fill(&self.strides, 2).ok()?;
        let dilations = fill(&self.dilations, 2).ok()?;
        let pads = self.padding.resolve(&[h, wd], &[kh, kw], &strides, &dilations);
        let geo = Geometry::new([h, wd], [kh, kw], &strides, &dilations, &pads)?;
        let (oh, ow) = (geo.out[0], geo.out[1]);
        let (p, mg, depth) = (oh * ow, m / g, cg * kh * kw);
        let zeros;
        let bias = match b {
            Some(b) => b.contiguous().ok()?,
            None => {
                zeros = Tensor::zeros(m, candle_core::DType::F32, &candle_core::Device::Cpu).ok()?;
                zeros
            }
        };
        let padded = Padded::new(&geo, cg);
        let out = fast::with_f32(x, |xs| {
            fast::with_f32(w, |ws| {
                fast::with_f32(&bias, |bs| {
                    // One product per image and group (plane); a batch or many groups of small
                    // products are shared out plane by plane (each product cuts itself when large).
                    let share = n * g > 1 && gemm::worth_sharing(n * m * p * depth);
                    if let Some(padded) = padded {
                        let direct = |padded: &mut Padded, (plane, dst): (usize, &mut [MaybeUninit<f32>])| {
                            let (img, grp) = (plane / g, plane % g);
                            padded.fill(&xs[(img * c + grp * cg) * h * wd..][..cg * h * wd]);
                            let a = Mat { data: &ws[grp * mg * depth..][..mg * depth], rs: depth, cs: 1 };
                            padded.conv(mg, a, &bs[grp * mg..][..mg], act, dst);
                        };
                        // Not zero-filled first: the direct path writes every output value.
                        let mut out = Vec::with_capacity(n * m * p);
                        let planes = &mut out.spare_capacity_mut()[..n * m * p];
                        if share {
                            planes.par_chunks_exact_mut(mg * p).enumerate().for_each_init(|| padded.clone(), direct);
                        } else {
                            let mut padded = padded;
                            planes.chunks_exact_mut(mg * p).enumerate().for_each(|job| direct(&mut padded, job));
                        }
                        // SAFETY: each plane's `conv` wrote all its mg·oh·ow values (every output
                        // row of every channel), and the planes tile the n·m·p values.
                        unsafe { out.set_len(n * m * p) };
                        return out;
                    }
                    let packed = |(plane, dst): (usize, &mut [f32])| {
                        let (img, grp) = (plane / g, plane % g);
                        let src = &xs[(img * c + grp * cg) * h * wd..][..cg * h * wd];
                        let a = Mat { data: &ws[grp * mg * depth..][..mg * depth], rs: depth, cs: 1 };
                        let bias = Bias::Rows(&bs[grp * mg..][..mg]);
                        if geo.is_pointwise() {
                            sgemm_packed(mg, p, depth, a, &Mat { data: src, rs: p, cs: 1 }, bias, act, dst, p);
                        } else {
                            sgemm_packed(mg, p, depth, a, &Columns { x: src, geo: &geo }, bias, act, dst, p);
                        }
                    };
                    let mut out = vec![0f32; n * m * p];
                    if share {
                        out.par_chunks_exact_mut(mg * p).enumerate().for_each(packed);
                    } else {
                        out.chunks_exact_mut(mg * p).enumerate().for_each(packed);
                    }
                    out
                })
            })
        })???;
        Some(Tensor::from_vec(out, (n, m, oh, ow), &candle_core::Device::Cpu))
    }

    /// Convolve with these attributes (no bias).
    pub fn apply(&self, x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.rank().saturating_sub(2);
        let strides = fill(&self.strides, n)?;
        let dilations = fill(&self.dilations, n)?;
        let kernel = w.dims().get(2..).unwrap_or_default();
        if kernel.len() != n {
            candle_core::bail!("Conv weight {:?} does not match input {:?}", w.dims(), x.dims())
        }
        let pads = self.padding.resolve(&x.dims()[2..], kernel, &strides, &dilations);
        conv_nd(x, w, &pads, &strides, &dilations, self.groups)
    }
}

pub fn conv(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    conv_act(ctx, Act::None)
}

/// Conv followed by `act` (the fused `ConvAct` node; [`Act::None`] for Conv itself).
pub fn conv_act(ctx: &NodeCtx, act: Act) -> Result<Box<dyn Kernel>> {
    let attrs = ConvAttrs::from_ctx(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, w, b) = (input(xs, 0)?, input(xs, 1)?, xs.get(2).copied().flatten());
        if let Some(y) = attrs.gemm_2d(x, w, b, act) {
            return Ok(vec![y?]);
        }
        let y = add_bias(attrs.apply(x, w)?, b)?;
        if act == Act::None {
            return Ok(vec![y]);
        }
        Ok(vec![match fast::map_v(&y, |v| act.apply(v)) {
            Some(y) => y?,
            None => match act {
                Act::Relu => y.relu()?,
                Act::Clip(lo, hi) => y.maximum(lo as f64)?.minimum(hi as f64)?,
                Act::Silu => y.silu()?,
                Act::None => y,
            },
        }])
    }))
}

struct ConvTransposeAttrs {
    conv: ConvAttrs,
    output_padding: Vec<usize>,
    output_shape: Option<Vec<usize>>,
}

pub fn conv_transpose(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = ConvTransposeAttrs {
        conv: ConvAttrs::from_ctx(ctx)?,
        output_padding: ctx.ints("output_padding").unwrap_or_default().iter().map(|&v| v.max(0) as usize).collect(),
        output_shape: ctx.ints("output_shape").map(|v| v.iter().map(|&s| s.max(0) as usize).collect()),
    };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let y = conv_transpose_apply(&a, input(xs, 0)?, input(xs, 1)?)?;
        Ok(vec![add_bias(y, xs.get(2).copied().flatten())?])
    }))
}

fn conv_transpose_apply(a: &ConvTransposeAttrs, x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let n = x.rank().saturating_sub(2);
    if w.rank() != x.rank() || n == 0 {
        candle_core::bail!("ConvTranspose weight {:?} does not match input {:?}", w.dims(), x.dims())
    }
    let strides = fill(&a.conv.strides, n)?;
    let dilations = fill(&a.conv.dilations, n)?;
    let out_pad = if a.output_padding.is_empty() { vec![0; n] } else { fill(&a.output_padding, n)? };
    let g = a.conv.groups;
    let (cin, cout_g) = (w.dim(0)?, w.dim(1)?);
    if cin % g != 0 {
        candle_core::bail!("ConvTranspose weight {:?} does not split into {g} groups", w.dims())
    }
    let in_sizes = &x.dims()[2..];
    let kernel = &w.dims()[2..];
    // (begin, end) pads per dim, as the ONNX reference resolves them.
    let full = |i: usize| (strides[i] * (in_sizes[i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1) as i64;
    let pads: Vec<(i64, i64)> = match (&a.conv.padding, &a.output_shape) {
        (Padding::Same { upper }, shape) => (0..n)
            .map(|i| {
                let out = shape.as_ref().map_or(in_sizes[i] * strides[i], |s| s[s.len() - n + i]) as i64;
                let total = full(i) - out;
                let half = total.div_euclid(2);
                if *upper { (half, total - half) } else { (total - half, half) }
            })
            .collect(),
        (p, shape) => {
            let explicit: Vec<(i64, i64)> = match p {
                Padding::Explicit(v) if v.len() == 2 * n => (0..n).map(|i| (v[i] as i64, v[n + i] as i64)).collect(),
                _ => vec![(0, 0); n],
            };
            match shape {
                Some(s) => (0..n).map(|i| (explicit[i].0, full(i) - s[s.len() - n + i] as i64 - explicit[i].0)).collect(),
                None => explicit,
            }
        }
    };
    // The equivalent conv: zero-upsampled input, padded by span - 1 - pad, flipped kernel with
    // in/out channels swapped per group.
    let mut xu = x.clone();
    for i in 0..n {
        let span = ((kernel[i] - 1) * dilations[i]) as i64;
        xu = upsample_zeros(&xu, 2 + i, strides[i])?;
        xu = pad_or_crop(&xu, 2 + i, span - pads[i].0, span - pads[i].1 + out_pad[i] as i64)?;
    }
    let mut wshape = vec![g, cin / g, cout_g];
    wshape.extend_from_slice(kernel);
    let mut wt_shape = vec![g * cout_g, cin / g];
    wt_shape.extend_from_slice(kernel);
    let wt = w.reshape(wshape)?.transpose(1, 2)?.contiguous()?.reshape(wt_shape)?;
    let wt = wt.flip(&(2..2 + n).collect::<Vec<_>>())?.contiguous()?;
    conv_nd(&xu, &wt, &vec![(0, 0); n], &vec![1; n], &dilations, g)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::{depthwise_2d, pointwise_2d};
    use candle_core::Tensor;

    fn iota(dims: &[usize], from: f32) -> candle_core::Tensor {
        let n: usize = dims.iter().product();
        t(dims, &(0..n).map(|v| v as f32 + from).collect::<Vec<_>>())
    }

    #[test]
    fn conv_with_asymmetric_pads_matches_hand_computation() {
        // 1×1×3×3 input, 1×1×2×2 ones kernel, pads: top 1, left 0, bottom 0, right 1.
        let n = node("Conv", 2, vec![ints("pads", &[1, 0, 0, 1])]);
        let k = build(&n, 13);
        let x = iota(&[1, 1, 3, 3], 1.);
        let w = t(&[1, 1, 2, 2], &[1., 1., 1., 1.]);
        let y = k.run(&[Some(&x), Some(&w)]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 3, 3]);
        // Padded rows: [0 0 0 0],[1 2 3 0],[4 5 6 0],[7 8 9 0]; 2×2 window sums.
        assert_close(&values(&y[0]), &[3., 5., 3., 12., 16., 9., 24., 28., 15.], 0.0);
    }

    #[test]
    fn gemm_convs_match_candles() {
        // (c, m, groups, h, w, kernel, strides, dilations, pads) — odd sizes cross the 8-wide
        // panels and the output rows.
        let cases: &[(usize, usize, usize, usize, usize, [usize; 2], [usize; 2], [usize; 2], [usize; 4])] = &[
            (3, 5, 1, 9, 11, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
            (4, 6, 2, 10, 13, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1]),
            (2, 3, 1, 12, 7, [1, 1], [1, 1], [1, 1], [0, 0, 0, 0]),
            (2, 4, 1, 8, 8, [1, 1], [2, 2], [1, 1], [0, 0, 0, 0]),
            (3, 2, 1, 9, 20, [3, 2], [1, 2], [2, 1], [2, 0, 1, 1]),
            // Unit strides over small planes: the direct path (padded once, read in place),
            // with the MNIST CNN's shapes, dilations, asymmetric pads and groups.
            (1, 8, 1, 28, 28, [5, 5], [1, 1], [1, 1], [2, 2, 2, 2]),
            (8, 16, 1, 14, 14, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
            (4, 6, 2, 10, 13, [3, 2], [1, 1], [2, 2], [2, 0, 1, 3]),
            (3, 5, 1, 6, 5, [2, 4], [1, 1], [1, 1], [0, 0, 0, 0]),
        ];
        for &(c, m, g, h, w, k, s, d, p) in cases {
            let x = t(&[2, c, h, w], &(0..2 * c * h * w).map(|v| ((v * 37) % 23) as f32 - 11.).collect::<Vec<_>>());
            let wt = t(&[m, c / g, k[0], k[1]], &(0..m * c / g * k[0] * k[1]).map(|v| ((v * 11) % 7) as f32 - 3.).collect::<Vec<_>>());
            let b = t(&[m], &(0..m).map(|v| v as f32 * 0.5).collect::<Vec<_>>());
            let attrs = vec![
                ints("strides", &s.map(|v| v as i64)),
                ints("dilations", &d.map(|v| v as i64)),
                ints("pads", &p.map(|v| v as i64)),
                int("group", g as i64),
            ];
            let y = build(&node("Conv", 3, attrs), 13).run(&[Some(&x), Some(&wt), Some(&b)]).unwrap().remove(0);
            let want = x.pad_with_zeros(2, p[0], p[2]).unwrap().pad_with_zeros(3, p[1], p[3]).unwrap();
            let want = if s[0] == s[1] && d[0] == d[1] {
                want.conv2d(&wt, 0, s[0], d[0], g).unwrap()
            } else {
                // Unequal strides/dilations: through the generic path.
                super::conv_nd(&x, &wt, &[(p[0], p[2]), (p[1], p[3])], &s, &d, g).unwrap()
            };
            let want = want.broadcast_add(&b.reshape((1, m, 1, 1)).unwrap()).unwrap();
            assert_eq!(y.dims(), want.dims(), "{c} {m} {g} {h} {w}");
            assert_close(&values(&y), &values(&want), 1e-3);
        }
    }

    #[test]
    fn conv_with_unequal_strides_subsamples_each_dim() {
        let n = node("Conv", 2, vec![ints("strides", &[2, 3])]);
        let y = build(&n, 13).run(&[Some(&iota(&[1, 1, 3, 4], 0.)), Some(&t(&[1, 1, 1, 1], &[1.]))]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 2, 2]);
        assert_close(&values(&y[0]), &[0., 3., 8., 11.], 0.0);
    }

    #[test]
    fn conv_with_unequal_dilations_spreads_the_kernel() {
        let n = node("Conv", 2, vec![ints("dilations", &[2, 1])]);
        let w = t(&[1, 1, 2, 2], &[1., 1., 1., 1.]);
        let y = build(&n, 13).run(&[Some(&iota(&[1, 1, 3, 3], 1.)), Some(&w)]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 1, 2]);
        assert_close(&values(&y[0]), &[18., 22.], 0.0);
    }

    #[test]
    fn conv_3d_sums_cubic_windows() {
        let n = node("Conv", 2, vec![]);
        let w = t(&[1, 1, 2, 2, 2], &[1.; 8]);
        let y = build(&n, 13).run(&[Some(&iota(&[1, 1, 3, 3, 3], 0.)), Some(&w)]).unwrap();
        assert_eq!(y[0].dims(), &[1, 1, 2, 2, 2]);
        assert_close(&values(&y[0]), &[52., 60., 76., 84., 124., 132., 148., 156.], 0.0);
    }

    #[test]
    fn conv_transpose_1d_with_stride_and_pads() {
        let x = t(&[1, 1, 3], &[1., 2., 3.]);
        let w = t(&[1, 1, 3], &[1., 1., 1.]);
        let y = build(&node("ConvTranspose", 2, vec![ints("strides", &[2])]), 13).run(&[Some(&x), Some(&w)]).unwrap();
        assert_close(&values(&y[0]), &[1., 1., 3., 2., 5., 3., 3.], 0.0);
        let n = node("ConvTranspose", 2, vec![ints("strides", &[2]), ints("pads", &[1, 1])]);
        let y = build(&n, 13).run(&[Some(&x), Some(&w)]).unwrap();
        assert_close(&values(&y[0]), &[1., 3., 2., 5., 3.], 0.0);
    }

    /// Deterministic values in [-1, 1).
    fn noise(dims: &[usize], seed: u32) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n as u32).map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 2000) as f32 / 1000.0 - 1.0).collect();
        Tensor::from_vec(v, dims, &candle_core::Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn depthwise_fast_path_matches_candles_grouped_conv() {
        // (kernel, pads, stride, dilation, channel multiplier)
        for (k, p, s, d, mult) in [(3, (1, 1), 1, 1, 1), (3, (0, 1), 2, 1, 1), (5, (2, 2), 2, 1, 2), (3, (2, 2), 1, 2, 1), (3, (0, 0), 3, 1, 1)] {
            let (c, h, w) = (4, 9, 11);
            let x = noise(&[2, c, h, w], 7);
            let wt = noise(&[c * mult, 1, k, k], 11);
            let pads = [p, p];
            let got = depthwise_2d(&x, &wt, &pads, &[s, s], &[d, d], c).unwrap().unwrap();
            let padded = x.pad_with_zeros(2, p.0, p.1).unwrap().pad_with_zeros(3, p.0, p.1).unwrap();
            let want = padded.conv2d(&wt, 0, s, d, c).unwrap();
            assert!(max_diff(&got, &want) < 1e-5, "k{k} p{p:?} s{s} d{d} m{mult}");
        }
    }

    #[test]
    fn pointwise_fast_path_matches_candles_conv() {
        let x = noise(&[2, 6, 5, 7], 3);
        let wt = noise(&[4, 6, 1, 1], 5);
        let got = pointwise_2d(&x, &wt, &[(0, 0), (0, 0)], &[1, 1], 1).unwrap().unwrap();
        let want = x.conv2d(&wt, 0, 1, 1, 1).unwrap();
        assert!(max_diff(&got, &want) < 1e-5);
        assert!(pointwise_2d(&x, &wt, &[(1, 1), (1, 1)], &[1, 1], 1).is_none(), "padding is not pointwise");
    }
}
