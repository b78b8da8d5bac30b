//! com.microsoft MatMulNBits (contrib domain, since 1): `Y = A · dequantize(B)ᵀ (+ bias)` with B
//! kept packed. B is [N, K] stored as `bits`-bit values (2, 4, 8) packed little-end-first into
//! uint8 blobs [N, n_blocks, block_size·bits/8], one scale (f32 or f16) per (n, block) and a zero
//! point per (n, block): packed like B, float (GGUF Q4_1 style `-min/scale`), or 2^(bits-1) when
//! absent. `g_idx` (input 4) is refused at build time.
//!
//! Never dequantizes the whole weight. Each (n, block) becomes `w = q·scale + offset` with
//! `offset = -zero_point·scale`, computed once at build time when scales and zero points are
//! initializers (per run otherwise); B itself is read in place from its tensor.
//!
//! - A few rows of A (decode, M = 1; up to `GEMV_ROWS`): a GEMV straight over the packed bytes,
//!   `y[n] = Σ_blocks scale·Σ a·q + Σ_blocks offset·Σ a`, the second sum a dot product with the
//!   per-block sums of A computed once per run (the Q4_1 trick). When a block's blob is a
//!   multiple of 16 bytes (4-bit blocks ≥ 32, 8-bit ≥ 16, 2-bit ≥ 64), 16 bytes are four u32
//!   lanes and value j of each lane is `(w >> bits·j) & mask`, so A is reordered once per run to
//!   match and the kernel is shift, and, convert, multiply, add on four lanes (wasm simd128, or
//!   `[f32; 4]` natively in the same order, so the native tests check the wasm arithmetic), two
//!   rows of A per decoded group of B.
//!   Other layouts (4-bit blocks of 16, 2-bit of 16 and 32) take a scalar loop.
//! - More rows (prefill): [`gemm::sgemm_packed`] with B dequantized panel by panel as the
//!   gemm packs it (`KC × NR` values at a time), so each weight is decoded once per run and
//!   nothing larger than a panel is ever f32.

use std::sync::Arc;

use candle_core::{CpuStorage, DType, Storage, Tensor};

use super::gemm::{self, Act, Bias, Mat, PackB, NR};
use super::{input, Kernel, NodeCtx};
use crate::error::{Result, WickError};

type CResult<T> = candle_core::Result<T>;

/// Rows of A up to which the GEMV runs instead of the gemm over dequantized panels (natively,
/// 4-bit blocks of 32, K = 576: the GEMV ahead at 4 rows, behind at 8).
const GEMV_ROWS: usize = 4;

/// The node's attributes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub(crate) k: usize,
    pub(crate) n: usize,
    pub(crate) bits: usize,
    pub(crate) block: usize,
}

impl Dims {
    pub(crate) fn n_blocks(&self) -> usize {
        self.k.div_ceil(self.block)
    }

    /// Bytes per (n, block).
    fn blob(&self) -> usize {
        self.block * self.bits / 8
    }

    /// Bytes of one row of B.
    fn row_bytes(&self) -> usize {
        self.n_blocks() * self.blob()
    }

    /// Whether blocks are whole groups of 16 bytes (the four-lane kernel).
    fn lanes(&self) -> bool {
        self.blob().is_multiple_of(16)
    }

    fn mask(&self) -> u32 {
        (1u32 << self.bits) - 1
    }
}

/// Per (n, block), row-major [N, n_blocks]: `w = q·scale + offset`.
struct Params {
    scale: Vec<f32>,
    offset: Vec<f32>,
}

/// The scales and zero points as [`Params`], checking their sizes.
fn params(d: Dims, scales: &Tensor, zp: Option<&Tensor>) -> CResult<Params> {
    let nb = d.n_blocks();
    let scale = scales.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    if scale.len() != d.n * nb {
        candle_core::bail!("MatMulNBits: {} scales for N={} and {nb} blocks", scale.len(), d.n)
    }
    let zps: Vec<f32> = match zp {
        None => vec![(1u32 << (d.bits - 1)) as f32; d.n * nb],
        Some(z) if z.dtype() == DType::U8 => {
            let bytes = z.flatten_all()?.to_vec1::<u8>()?;
            let (per_byte, row) = (8 / d.bits, (nb * d.bits).div_ceil(8));
            if bytes.len() != d.n * row {
                candle_core::bail!("MatMulNBits: {} packed zero points for N={}, {nb} blocks", bytes.len(), d.n)
            }
            let at = |r: usize, b: usize| ((bytes[r * row + b / per_byte] as u32 >> ((b % per_byte) * d.bits)) & d.mask()) as f32;
            (0..d.n).flat_map(|r| (0..nb).map(move |b| (r, b))).map(|(r, b)| at(r, b)).collect()
        }
        Some(z) if z.dtype().is_float() => {
            let v = z.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            if v.len() != d.n * nb {
                candle_core::bail!("MatMulNBits: {} float zero points for N={}, {nb} blocks", v.len(), d.n)
            }
            v
        }
        Some(z) => candle_core::bail!("MatMulNBits: zero points of dtype {:?}", z.dtype()),
    };
    let offset = zps.iter().zip(&scale).map(|(z, s)| -z * s).collect();
    Ok(Params { scale, offset })
}

/// `f` on B's bytes, read in place when B is a contiguous CPU uint8 tensor, after checking the
/// byte count.
fn with_bytes<R>(d: Dims, b: &Tensor, f: impl FnOnce(&[u8]) -> CResult<R>) -> CResult<R> {
    if b.dtype() != DType::U8 {
        candle_core::bail!("MatMulNBits: B must be uint8, not {:?}", b.dtype())
    }
    if b.elem_count() != d.n * d.row_bytes() {
        candle_core::bail!("MatMulNBits: B has {} bytes for N={} K={} bits={} block_size={}", b.elem_count(), d.n, d.k, d.bits, d.block)
    }
    {
        let (storage, layout) = b.storage_and_layout();
        if let (Some((s, e)), Storage::Cpu(CpuStorage::U8(v))) = (layout.contiguous_offsets(), &*storage) {
            return f(&v[s..e]);
        }
    }
    f(&b.flatten_all()?.to_vec1::<u8>()?)
}

/// One row of A as the GEMV reads it: zero-padded to whole blocks (in the lane order of the
/// four-lane kernel when it runs), and the sum of each block.
struct Row {
    a: Vec<f32>,
    sums: Vec<f32>,
}

impl Row {
    fn new(d: Dims, a: &[f32]) -> Row {
        let (nb, block) = (d.n_blocks(), d.block);
        let mut padded = vec![0f32; nb * block];
        padded[..a.len()].copy_from_slice(a);
        let sums = padded.chunks_exact(block).map(|b| b.iter().sum()).collect();
        if !d.lanes() {
            return Row { a: padded, sums };
        }
        // Group g is 16 bytes, words 4g..4g+4, each holding vpw values; the kernel's vector j
        // holds value j of each of the four words: reordered[g·4·vpw + 4j + l] =
        // padded[(4g + l)·vpw + j].
        let vpw = 32 / d.bits;
        let mut a = vec![0f32; padded.len()];
        for (dst, src) in a.chunks_exact_mut(4 * vpw).zip(padded.chunks_exact(4 * vpw)) {
            for j in 0..vpw {
                for l in 0..4 {
                    dst[4 * j + l] = src[l * vpw + j];
                }
            }
        }
        Row { a, sums }
    }
}

/// `y[r][j] = rows[r] · dequantize(B[j]) (+ bias[j])` for every row r and output j (`y` rows of
/// N). The four-lane kernel takes [`lanes::R`] = 2 rows of A per pass over a row of B, so each
/// 16 bytes of B are decoded once for both.
fn gemv(d: Dims, q: &[u8], p: &Params, rows: &[Row], bias: Option<&[f32]>, y: &mut [f32]) {
    let (n, nb, rb) = (d.n, d.n_blocks(), d.row_bytes());
    let gpb = d.blob() / 16;
    for j in 0..n {
        let (qr, scale, offset) = (&q[j * rb..(j + 1) * rb], &p.scale[j * nb..(j + 1) * nb], &p.offset[j * nb..(j + 1) * nb]);
        for (c, chunk) in rows.chunks(lanes::R).enumerate() {
            let mut dots = [0f32; lanes::R];
            match (d.lanes(), d.bits) {
                (true, 4) => dots = lanes_dots::<4>(qr, chunk, scale, gpb),
                (true, 8) => dots = lanes_dots::<8>(qr, chunk, scale, gpb),
                (true, _) => dots = lanes_dots::<2>(qr, chunk, scale, gpb),
                (false, _) => {
                    for (dot, row) in dots.iter_mut().zip(chunk) {
                        *dot = scalar_row_dot(d, qr, &row.a, scale);
                    }
                }
            }
            for (r, (row, dot)) in chunk.iter().zip(dots).enumerate() {
                let shift: f32 = offset.iter().zip(&row.sums).map(|(o, s)| o * s).sum();
                y[(c * lanes::R + r) * n + j] = dot + shift + bias.map_or(0.0, |b| b[j]);
            }
        }
    }
}

/// The four-lane kernel on a chunk of one or two rows of A (the second dot 0 for one).
fn lanes_dots<const BITS: u32>(q: &[u8], rows: &[Row], scale: &[f32], gpb: usize) -> [f32; lanes::R] {
    match rows {
        [r0, r1] => lanes::rows_dot::<BITS, 2>(q, [&r0.a, &r1.a], scale, gpb),
        [r0, ..] => [lanes::rows_dot::<BITS, 1>(q, [&r0.a], scale, gpb)[0], 0.0],
        [] => [0.0; lanes::R],
    }
}

/// `Σ_blocks scale · Σ a·q` over one row of B in any layout, A in natural order.
fn scalar_row_dot(d: Dims, q: &[u8], a: &[f32], scale: &[f32]) -> f32 {
    let (vpw, mask) = (32 / d.bits, d.mask());
    let mut acc = 0f32;
    for ((bytes, a), &s) in q.chunks_exact(d.blob()).zip(a.chunks_exact(d.block)).zip(scale) {
        let mut t = 0f32;
        for (w, a) in bytes.chunks_exact(4).zip(a.chunks_exact(vpw)) {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            for (j, &x) in a.iter().enumerate() {
                t += x * ((w >> (d.bits * j)) & mask) as f32;
            }
        }
        acc += s * t;
    }
    acc
}

/// The four-lane GEMV: for each of `R` rows of A, `Σ_blocks scale · Σ a·q` over one row of B,
/// read 16 bytes (four u32 lanes) at a time and decoded once for all R rows; each `a` in the
/// lane order of [`Row`], `gpb` groups of 16 bytes per block. Both versions compute the same
/// operations in the same order (no fused multiply-add).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use core::arch::wasm32::*;

    /// Rows of A per pass ([`super::lanes_dots`] takes one or two): two gained a third per row
    /// in V8 on the 49152 × 576 logits, four lost some of it again (natively two are even).
    pub const R: usize = 2;

    #[inline(never)]
    pub fn rows_dot<const BITS: u32, const N: usize>(q: &[u8], a: [&[f32]; N], scale: &[f32], gpb: usize) -> [f32; N] {
        let vpw = (32 / BITS) as usize;
        let groups = scale.len() * gpb;
        assert!(q.len() >= groups * 16 && a.iter().all(|a| a.len() >= groups * 4 * vpw), "rows_dot: operand too short");
        let mask = u32x4_splat((1u32 << BITS) - 1);
        let zero = f32x4_splat(0.0);
        let mut acc = [zero; N];
        let mut qp = q.as_ptr();
        let mut ap: [*const f32; N] = std::array::from_fn(|r| a[r].as_ptr());
        for &s in scale {
            let mut t = [zero; N];
            for _ in 0..gpb {
                // SAFETY: `groups` groups of 16 bytes of q and of 4·vpw floats of each a are in
                // bounds (asserted above); v128_load allows any alignment.
                unsafe {
                    let w = v128_load(qp as *const v128);
                    for j in 0..vpw {
                        let v = f32x4_convert_i32x4(v128_and(u32x4_shr(w, BITS * j as u32), mask));
                        for (t, ap) in t.iter_mut().zip(&ap) {
                            *t = f32x4_add(*t, f32x4_mul(v128_load(ap.add(4 * j) as *const v128), v));
                        }
                    }
                    qp = qp.add(16);
                    ap.iter_mut().for_each(|p| *p = p.add(4 * vpw));
                }
            }
            for (acc, t) in acc.iter_mut().zip(t) {
                *acc = f32x4_add(*acc, f32x4_mul(f32x4_splat(s), t));
            }
        }
        acc.map(|v| f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v))
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod lanes {
    /// Rows of A per pass ([`super::lanes_dots`] takes one or two): two gained a third per row
    /// in V8 on the 49152 × 576 logits, four lost some of it again (natively two are even).
    pub const R: usize = 2;

    #[inline(never)]
    pub fn rows_dot<const BITS: u32, const N: usize>(q: &[u8], a: [&[f32]; N], scale: &[f32], gpb: usize) -> [f32; N] {
        let vpw = (32 / BITS) as usize;
        let groups = scale.len() * gpb;
        assert!(q.len() >= groups * 16 && a.iter().all(|a| a.len() >= groups * 4 * vpw), "rows_dot: operand too short");
        let mask = (1u32 << BITS) - 1;
        let mut acc = [[0f32; 4]; N];
        let mut g = 0;
        for &s in scale {
            let mut t = [[0f32; 4]; N];
            for _ in 0..gpb {
                let qg = &q[16 * g..16 * g + 16];
                let w: [u32; 4] = std::array::from_fn(|l| u32::from_le_bytes([qg[4 * l], qg[4 * l + 1], qg[4 * l + 2], qg[4 * l + 3]]));
                for j in 0..vpw {
                    let v: [f32; 4] = std::array::from_fn(|l| ((w[l] >> (BITS as usize * j)) & mask) as f32);
                    for (t, a) in t.iter_mut().zip(&a) {
                        let a = &a[g * 4 * vpw + 4 * j..g * 4 * vpw + 4 * j + 4];
                        for l in 0..4 {
                            t[l] += a[l] * v[l];
                        }
                    }
                }
                g += 1;
            }
            for (acc, t) in acc.iter_mut().zip(t) {
                for l in 0..4 {
                    acc[l] += s * t[l];
                }
            }
        }
        acc.map(|v| v[0] + v[1] + v[2] + v[3])
    }
}

/// B as the gemm's right-hand operand, `K × N`: element (p, j) = `dequantize(B)[j][p]`, decoded
/// straight into each packed panel.
struct Dequant<'a> {
    d: Dims,
    q: &'a [u8],
    p: &'a Params,
}

impl PackB for Dequant<'_> {
    fn pack(&self, kb: usize, kc: usize, j0: usize, cols: usize, panel: &mut [f32]) {
        match self.d.bits {
            4 => self.pack_bits::<4>(kb, kc, j0, cols, panel),
            8 => self.pack_bits::<8>(kb, kc, j0, cols, panel),
            _ => self.pack_bits::<2>(kb, kc, j0, cols, panel),
        }
    }
}

impl Dequant<'_> {
    /// Depth by depth, the [`NR`] rows of B side by side: one contiguous row of the panel per
    /// depth. Columns past `cols` read row `j0` with scale and offset 0 (zeros).
    fn pack_bits<const BITS: usize>(&self, kb: usize, kc: usize, j0: usize, cols: usize, panel: &mut [f32]) {
        let Dequant { d, q, p } = *self;
        let (nb, rb, blob, block) = (d.n_blocks(), d.row_bytes(), d.blob(), d.block);
        let (per_byte, mask) = (8 / BITS, (1u32 << BITS) - 1);
        let rows: [&[u8]; NR] = std::array::from_fn(|jj| {
            let j = j0 + if jj < cols { jj } else { 0 };
            &q[j * rb..(j + 1) * rb]
        });
        let mut kk = kb;
        while kk < kb + kc {
            let (blk, start) = (kk / block, kk % block);
            let end = block.min(start + kb + kc - kk);
            let param = |v: &[f32], jj: usize| if jj < cols { v[(j0 + jj) * nb + blk] } else { 0.0 };
            let scale: [f32; NR] = std::array::from_fn(|jj| param(&p.scale, jj));
            let offset: [f32; NR] = std::array::from_fn(|jj| param(&p.offset, jj));
            let bytes: [&[u8]; NR] = std::array::from_fn(|jj| &rows[jj][blk * blob..(blk + 1) * blob]);
            let out = &mut panel[(kk - kb) * NR..(kk - kb + end - start) * NR];
            for (i, out) in (start..end).zip(out.chunks_exact_mut(NR)) {
                let shift = (i % per_byte) * BITS;
                for jj in 0..NR {
                    let v = (bytes[jj][i / per_byte] as u32 >> shift) & mask;
                    out[jj] = v as f32 * scale[jj] + offset[jj];
                }
            }
            kk += end - start;
        }
    }
}

/// `y = a · dequantize(B)ᵀ (+ bias)` for the `m` rows of `a` (K each) into `y` (N each), by the
/// GEMV or by the gemm over dequantized panels.
fn product(d: Dims, q: &[u8], p: &Params, a: &[f32], bias: Option<&[f32]>, by_gemv: bool, y: &mut [f32]) {
    let m = a.len() / d.k;
    if m == 0 {
        return;
    }
    if by_gemv {
        let rows: Vec<Row> = a.chunks_exact(d.k).map(|a| Row::new(d, a)).collect();
        gemv(d, q, p, &rows, bias, y);
    } else {
        let bias = bias.map_or(Bias::None, Bias::Cols);
        gemm::sgemm_packed(m, d.n, d.k, Mat { data: a, rs: d.k, cs: 1 }, &Dequant { d, q, p }, bias, Act::None, y, d.n);
    }
}

/// The kernel: B, and the scales and zero points as [`Params`], when they are initializers.
struct MatMulNBits {
    d: Dims,
    b: Option<Tensor>,
    params: Option<Arc<Params>>,
}

impl MatMulNBits {
    fn run(&self, xs: &[Option<&Tensor>]) -> CResult<Tensor> {
        let d = self.d;
        let a = input(xs, 0)?;
        let dims = a.dims();
        if dims.last() != Some(&d.k) {
            candle_core::bail!("MatMulNBits: A has shape {dims:?}, its last dimension must be K={}", d.k)
        }
        let params = match &self.params {
            Some(p) => p.clone(),
            None => Arc::new(params(d, input(xs, 2)?, xs.get(3).copied().flatten())?),
        };
        let bias = match xs.get(5).copied().flatten() {
            Some(b) => {
                let v = b.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                if v.len() != d.n {
                    candle_core::bail!("MatMulNBits: bias has {} values for N={}", v.len(), d.n)
                }
                Some(v)
            }
            None => None,
        };
        let av = a.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let m = av.len() / d.k;
        let mut y = vec![0f32; m * d.n];
        let b = match &self.b {
            Some(b) => b,
            None => input(xs, 1)?,
        };
        with_bytes(d, b, |q| {
            product(d, q, &params, &av, bias.as_deref(), m <= GEMV_ROWS, &mut y);
            Ok(())
        })?;
        let mut out = dims.to_vec();
        *out.last_mut().expect("rank checked") = d.n;
        Tensor::from_vec(y, out, a.device())?.to_dtype(a.dtype())
    }
}

impl Kernel for MatMulNBits {
    fn run(&self, xs: &[Option<&Tensor>]) -> CResult<Vec<Tensor>> {
        Ok(vec![MatMulNBits::run(self, xs)?])
    }
}

pub fn matmul_nbits(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let d = Dims {
        k: ctx.int("K", 0).max(0) as usize,
        n: ctx.int("N", 0).max(0) as usize,
        bits: ctx.int("bits", 4).max(0) as usize,
        block: ctx.int("block_size", 0).max(0) as usize,
    };
    if ![2, 4, 8].contains(&d.bits) || d.block < 16 || !d.block.is_power_of_two() || d.k == 0 || d.n == 0 {
        return Err(ctx.unsupported(&format!("bits {} block_size {} K {} N {}", d.bits, d.block, d.k, d.n)));
    }
    let named = |i: usize| ctx.node.input.get(i).is_some_and(|s| !s.is_empty());
    if named(4) {
        return Err(ctx.unsupported("g_idx"));
    }
    let invalid = |e: candle_core::Error| WickError::InvalidModel { file: None, message: format!("node '{}': {e}", ctx.node.name) };
    let b = ctx.constant_input(1).cloned();
    if let Some(b) = &b {
        with_bytes(d, b, |_| Ok(())).map_err(invalid)?;
    }
    let zp = if named(3) { ctx.constant_input(3).map(Some) } else { Some(None) };
    let params = match (ctx.constant_input(2), zp) {
        (Some(s), Some(z)) => Some(Arc::new(params(d, s, z).map_err(invalid)?)),
        _ => None,
    };
    Ok(Box::new(MatMulNBits { d, b, params }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::test_util::*;
    use super::*;
    use candle_core::Device;
    use candle_onnx::onnx::NodeProto;
    use std::collections::HashMap;
    #[cfg(not(debug_assertions))]
    use std::time::Instant;

    fn nbits_node(d: Dims, n_inputs: usize) -> NodeProto {
        let mut n = node(
            "MatMulNBits",
            n_inputs,
            vec![int("K", d.k as i64), int("N", d.n as i64), int("bits", d.bits as i64), int("block_size", d.block as i64)],
        );
        n.domain = "com.microsoft".into();
        n
    }

    /// One fixture case: the inputs by position (absent ones `None`) and onnxruntime's output.
    pub(crate) struct Case {
        pub(crate) d: Dims,
        pub(crate) m: usize,
        pub(crate) inputs: Vec<Option<Tensor>>,
        pub(crate) want: Vec<f32>,
        pub(crate) numpy: bool,
    }

    /// worker/tests/fixtures/matmul_nbits.bin, written by scripts/make_nbits_fixture.py (also
    /// the GPU op's reference: engine/gpu/ops/matmul.rs).
    pub(crate) fn cases() -> Vec<Case> {
        let data: &[u8] = include_bytes!("../../../tests/fixtures/matmul_nbits.bin");
        assert_eq!(&data[..4], b"NBIT");
        let mut at = 4;
        let mut take = |len: usize| {
            let s = &data[at..at + len];
            at += len;
            s
        };
        let u32s = |s: &[u8]| s.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize).collect::<Vec<_>>();
        let f32s = |s: &[u8]| s.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<_>>();
        let count = u32s(take(4))[0];
        let dev = Device::Cpu;
        (0..count)
            .map(|_| {
                let h = u32s(take(32));
                let (bits, block, k, n, m, zp_kind, has_bias, numpy) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6] == 1, h[7] == 1);
                let d = Dims { k, n, bits, block };
                let nb = d.n_blocks();
                let a = Tensor::from_vec(f32s(take(m * k * 4)), (m, k), &dev).unwrap();
                let b = Tensor::from_vec(take(n * nb * d.blob()).to_vec(), (n, nb, d.blob()), &dev).unwrap();
                let scales = Tensor::from_vec(f32s(take(n * nb * 4)), n * nb, &dev).unwrap();
                let zp = match zp_kind {
                    1 => Some(Tensor::from_vec(take(n * (nb * bits).div_ceil(8)).to_vec(), n * (nb * bits).div_ceil(8), &dev).unwrap()),
                    2 => Some(Tensor::from_vec(f32s(take(n * nb * 4)), n * nb, &dev).unwrap()),
                    _ => None,
                };
                let bias = has_bias.then(|| Tensor::from_vec(f32s(take(n * 4)), n, &dev).unwrap());
                let want = f32s(take(m * n * 4));
                Case { d, m, inputs: vec![Some(a), Some(b), Some(scales), zp, None, bias], want, numpy }
            })
            .collect()
    }

    fn close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{what}: element {i}: got {g}, want {w}");
        }
    }

    /// The kernel built with B, scales and zero points as initializers (repacked at build time)
    /// or as run-time inputs.
    fn kernel(d: Dims, inputs: &[Option<Tensor>], constant: bool) -> Box<dyn Kernel> {
        let mut n = nbits_node(d, 6);
        for (i, name) in n.input.iter_mut().enumerate() {
            if inputs[i].is_none() {
                name.clear();
            }
        }
        let constants: HashMap<String, Tensor> = if constant {
            (1..4).filter_map(|i| inputs[i].clone().map(|t| (format!("x{i}"), t))).collect()
        } else {
            HashMap::new()
        };
        let opsets = HashMap::from([("com.microsoft".to_string(), 1)]);
        let ctx = NodeCtx { node: &n, opset: 1, opsets: &opsets, constants: &constants, types: &HashMap::new() };
        super::super::build(&ctx).expect("MatMulNBits builds")
    }

    #[test]
    fn matmul_nbits_matches_onnxruntime() {
        let cases = cases();
        assert!(cases.len() >= 20 && cases.iter().filter(|c| !c.numpy).count() >= 18);
        for c in &cases {
            let what = format!("bits {} block {} K {} N {} M {}", c.d.bits, c.d.block, c.d.k, c.d.n, c.m);
            let refs: Vec<Option<&Tensor>> = c.inputs.iter().map(Option::as_ref).collect();
            for constant in [true, false] {
                let y = kernel(c.d, &c.inputs, constant).run(&refs).unwrap();
                assert_eq!(y[0].dims(), &[c.m, c.d.n]);
                close(&values(&y[0]), &c.want, &format!("{what}, constant {constant}"));
            }
            // A of rank 3: [2, M, K] (the case's rows twice) → [2, M, N].
            let a = Tensor::stack(&[refs[0].unwrap(), refs[0].unwrap()], 0).unwrap();
            let mut refs3 = refs.clone();
            refs3[0] = Some(&a);
            let y = kernel(c.d, &c.inputs, true).run(&refs3).unwrap();
            assert_eq!(y[0].dims(), &[2, c.m, c.d.n]);
            close(&values(&y[0]), &[c.want.clone(), c.want.clone()].concat(), &format!("{what}, rank 3"));
            // The rows repeated five times (pairs of rows in the GEMV and a single one) through
            // the GEMV and through the gemm over dequantized panels, both whatever GEMV_ROWS says.
            let a5 = values(refs[0].unwrap()).repeat(5);
            let want5 = c.want.repeat(5);
            let p = params(c.d, refs[2].unwrap(), refs[3]).unwrap();
            let bias = refs[5].map(values);
            with_bytes(c.d, refs[1].unwrap(), |q| {
                for by_gemv in [true, false] {
                    let mut y = vec![f32::NAN; 5 * c.m * c.d.n];
                    product(c.d, q, &p, &a5, bias.as_deref(), by_gemv, &mut y);
                    close(&y, &want5, &format!("{what}, 5M rows, by_gemv {by_gemv}"));
                }
                Ok(())
            })
            .unwrap();
        }
    }

    #[test]
    fn matmul_nbits_f16_scales_and_typed_errors() {
        let c = cases().into_iter().find(|c| c.d.bits == 4 && c.d.block == 32 && !c.numpy).unwrap();
        let mut inputs = c.inputs.clone();
        // f16 scales: the product with the scales rounded to f16.
        let s16 = inputs[2].as_ref().unwrap().to_dtype(DType::F16).unwrap();
        let s32 = s16.to_dtype(DType::F32).unwrap();
        inputs[2] = Some(s32);
        let refs: Vec<Option<&Tensor>> = inputs.iter().map(Option::as_ref).collect();
        let want = values(&kernel(c.d, &inputs, false).run(&refs).unwrap()[0]);
        inputs[2] = Some(s16);
        let refs: Vec<Option<&Tensor>> = inputs.iter().map(Option::as_ref).collect();
        close(&values(&kernel(c.d, &inputs, true).run(&refs).unwrap()[0]), &want, "f16 scales");
        // A whose last dimension is not K, B with a byte missing, too few scales: errors.
        let bad_a = Tensor::zeros((1, c.d.k + 1), DType::F32, &Device::Cpu).unwrap();
        let mut r = refs.clone();
        r[0] = Some(&bad_a);
        assert!(kernel(c.d, &inputs, true).run(&r).is_err());
        let short_b = Tensor::zeros(c.d.n * c.d.row_bytes() - 1, DType::U8, &Device::Cpu).unwrap();
        let mut r = refs.clone();
        r[1] = Some(&short_b);
        assert!(kernel(c.d, &inputs, false).run(&r).is_err());
        let n = nbits_node(c.d, 3);
        let constants = HashMap::from([("x1".to_string(), short_b)]);
        let opsets = HashMap::new();
        let ctx = NodeCtx { node: &n, opset: 1, opsets: &opsets, constants: &constants, types: &HashMap::new() };
        assert!(matches!(matmul_nbits(&ctx), Err(WickError::InvalidModel { .. })));
        let few = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        let mut r = refs.clone();
        r[2] = Some(&few);
        assert!(kernel(c.d, &inputs, false).run(&r).is_err());
        // g_idx is refused when the model loads.
        let n = nbits_node(c.d, 5);
        let ctx = NodeCtx { node: &n, opset: 1, opsets: &opsets, constants: &HashMap::new(), types: &HashMap::new() };
        assert!(matches!(matmul_nbits(&ctx), Err(WickError::UnsupportedOp { .. })));
    }

    /// The old path (quantization.rs before this kernel, verbatim but for the signature), for
    /// the benchmark: B dequantized whole to [N, K] f32 on every run, then a matmul.
    // Timing only: built with --release tests, so `--include-ignored` in debug never runs it.
    #[cfg(not(debug_assertions))]
    fn old_dequantize(d: Dims, b: &Tensor, scales: &Tensor, zp: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let Dims { k, n, bits, block } = d;
        let n_blocks = k.div_ceil(block);
        let blob = block * bits / 8;
        let per_byte = 8 / bits;
        let mask = (1u8 << bits) - 1;
        let packed = b.flatten_all()?.to_vec1::<u8>()?;
        let scales = scales.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let nibble = |bytes: &[u8], i: usize| ((bytes[i / per_byte] >> ((i % per_byte) * bits)) & mask) as f32;
        let default = (1u32 << (bits - 1)) as f32;
        let zps: Vec<f32> = match zp {
            None => vec![default; n * n_blocks],
            Some(z) if z.dtype() == DType::U8 => {
                let bytes = z.flatten_all()?.to_vec1::<u8>()?;
                let row = n_blocks.div_ceil(per_byte);
                (0..n).flat_map(|r| (0..n_blocks).map(move |b| (r, b))).map(|(r, b)| nibble(&bytes[r * row..(r + 1) * row], b)).collect()
            }
            Some(z) => z.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?,
        };
        let mut w = vec![0f32; n * k];
        for r in 0..n {
            for blk in 0..n_blocks {
                let bytes = &packed[(r * n_blocks + blk) * blob..(r * n_blocks + blk + 1) * blob];
                let (s, z) = (scales[r * n_blocks + blk], zps[r * n_blocks + blk]);
                for j in 0..block.min(k - blk * block) {
                    w[r * k + blk * block + j] = (nibble(bytes, j) - z) * s;
                }
            }
        }
        Tensor::from_vec(w, (n, k), b.device())
    }

    /// `cargo test -p wick-worker --release --lib nbits::tests::bench -- --ignored --nocapture`
    #[cfg(not(debug_assertions))]
    #[test]
    #[ignore = "a timing, not a check"]
    fn bench_matmul_nbits_decode() {
        for (n, k) in [(1536, 576), (576, 1536), (49152, 576)] {
            let d = Dims { k, n, bits: 4, block: 32 };
            let nb = d.n_blocks();
            let dev = Device::Cpu;
            let q: Vec<u8> = (0..n * d.row_bytes()).map(|i| (i as u32).wrapping_mul(2654435761).rotate_right(13) as u8).collect();
            let scales: Vec<f32> = (0..n * nb).map(|i| 0.01 + (i % 7) as f32 * 0.003).collect();
            let zps: Vec<f32> = (0..n * nb).map(|i| (i % 16) as f32 * 0.9).collect();
            let inputs = vec![
                None,
                Some(Tensor::from_vec(q, (n, nb, d.blob()), &dev).unwrap()),
                Some(Tensor::from_vec(scales, n * nb, &dev).unwrap()),
                Some(Tensor::from_vec(zps, n * nb, &dev).unwrap()),
                None,
                None,
            ];
            let k_ = kernel(d, &inputs, true);
            let p = params(d, inputs[2].as_ref().unwrap(), inputs[3].as_ref()).unwrap();
            for m in [1usize, 2, 4, 8, 16, 32] {
                let a = Tensor::from_vec((0..m * k).map(|i| ((i % 13) as f32 - 6.0) * 0.1).collect::<Vec<f32>>(), (m, k), &dev).unwrap();
                let mut refs: Vec<Option<&Tensor>> = inputs.iter().map(Option::as_ref).collect();
                refs[0] = Some(&a);
                let time = |f: &mut dyn FnMut() -> Tensor| {
                    let mut best = f64::MAX;
                    let mut out = None;
                    for _ in 0..5 {
                        let t = Instant::now();
                        out = Some(f());
                        best = best.min(t.elapsed().as_secs_f64() * 1e3);
                    }
                    (best, out.unwrap())
                };
                let (new_ms, y) = time(&mut || k_.run(&refs).unwrap().remove(0));
                let (old_ms, y_old) = time(&mut || {
                    let w = old_dequantize(d, refs[1].unwrap(), refs[2].unwrap(), refs[3]).unwrap();
                    super::super::matmul::matmul_tensors(&a, &w.t().unwrap()).unwrap()
                });
                close(&values(&y), &values(&y_old), "bench");
                let av = values(&a);
                let path = |by_gemv: bool| {
                    let mut y = vec![0f32; m * n];
                    time(&mut || {
                        with_bytes(d, refs[1].unwrap(), |q| {
                            product(d, q, &p, &av, None, by_gemv, &mut y);
                            Ok(())
                        })
                        .unwrap();
                        a.clone()
                    })
                    .0
                };
                let (gemv_ms, gemm_ms) = (path(true), path(false));
                println!(
                    "MatMulNBits 4-bit block 32, M={m} K={k} N={n}: kernel {new_ms:.2} ms (GEMV {gemv_ms:.2}, panel gemm {gemm_ms:.2}), \
                     dequantize + matmul {old_ms:.2} ms"
                );
            }
        }
    }
}
