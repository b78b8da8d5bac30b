//! com.microsoft MatMulNBits (2-, 4- or 8-bit): `a` `[…, K]` f32 × a block-quantized `[K, N]`
//! weight stored transposed as `b` `[N, n_blocks, block_size·bits/8]` bytes, → `[…, N]`. Weight
//! (k, n) is `(q − zp) · scale`: q the k-th value of column n (low bits first), scale
//! `scales[n·n_blocks + k / block_size]`, zp the same-indexed value of `zero_points`
//! `[N, ceil(n_blocks·bits/8)]`, or 2^(bits−1) without them. Tiled like `matmul.wgsl`, the
//! weight tile dequantized as it is staged (`matmul_nbits.wgsl`); a single row (a decoding step)
//! takes one workgroup per output instead (`matmul_nbits_gemv.wgsl`). The f32 weight never
//! exists.

use super::conv::{fits, groups_2d};
use super::{check_groups, launch};
use crate::{Gpu, GpuBytes, GpuError, GpuTensor};

/// The workgroup is TILE×TILE invocations, one per output of a block of rows × columns.
pub const TILE: u32 = 16;

/// Invocations per workgroup of the one-row kernel (`matmul_nbits_gemv.wgsl`).
pub const GEMV_WORKGROUP: u32 = 64;

pub(crate) fn gemv_source() -> String {
    format!(
        "const WORKGROUP: u32 = {GEMV_WORKGROUP}u;\n{}",
        include_str!("matmul_nbits_gemv.wgsl")
    )
}

pub(crate) fn source() -> String {
    format!(
        "const TILE: u32 = {TILE}u;\n{}",
        include_str!("matmul_nbits.wgsl")
    )
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    k: u32,
    n: u32,
    block_size: u32,
    n_blocks: u32,
    zp_stride: u32, // bytes per row of zero points; 0 when absent (zp = 2^(bits−1))
    row: u32,       // gemv: workgroups per row of the dispatch
    bits: u32,
}

impl Gpu {
    /// MatMulNBits with `bits` 2, 4 or 8 (others are a shape error); `block_size` a power of
    /// two ≥ 16, `n_blocks = ceil(k / block_size)`; the last block's padding is never read.
    #[allow(clippy::too_many_arguments)] // the op's own inputs and attributes, one each
    pub async fn matmul_nbits(
        &self,
        a: &GpuTensor,
        b: &GpuBytes,
        scales: &GpuTensor,
        zero_points: Option<&GpuBytes>,
        k: usize,
        n: usize,
        bits: usize,
        block_size: usize,
    ) -> Result<GpuTensor, GpuError> {
        const OP: &str = "matmul_nbits";
        if ![2, 4, 8].contains(&bits) {
            return Err(GpuError::shape(
                OP,
                format!("bits = {bits}; 2, 4 or 8 are supported"),
            ));
        }
        if block_size < 16 || !block_size.is_power_of_two() {
            return Err(GpuError::shape(
                OP,
                format!("block_size = {block_size}; want a power of two ≥ 16"),
            ));
        }
        let Some((&ka, batch)) = a.dims().split_last() else {
            return Err(GpuError::shape(OP, "a is a scalar"));
        };
        if ka != k {
            return Err(GpuError::shape(
                OP,
                format!("a {:?}: last dim is not K = {k}", a.dims()),
            ));
        }
        let n_blocks = k.div_ceil(block_size);
        let blob = block_size * bits / 8;
        if b.len() != n * n_blocks * blob {
            return Err(GpuError::shape(
                OP,
                format!(
                    "b {:?}: want {n}·{n_blocks}·{blob} bytes ([N, n_blocks, block_size·bits/8])",
                    b.dims()
                ),
            ));
        }
        if scales.len() != n * n_blocks {
            return Err(GpuError::shape(
                OP,
                format!("scales {:?}: want {} values", scales.dims(), n * n_blocks),
            ));
        }
        let zp_stride = (n_blocks * bits).div_ceil(8);
        if let Some(zp) = zero_points {
            if zp.len() != n * zp_stride {
                return Err(GpuError::shape(
                    OP,
                    format!("zero_points {:?}: want {} bytes", zp.dims(), n * zp_stride),
                ));
            }
        }
        let m: usize = batch.iter().product();
        fits(OP, m * k)?;
        fits(OP, m * n)?;
        let params = Params {
            m: fits(OP, m)?,
            k: fits(OP, k)?,
            n: fits(OP, n)?,
            block_size: fits(OP, block_size)?,
            n_blocks: fits(OP, n_blocks)?,
            zp_stride: if zero_points.is_some() {
                fits(OP, zp_stride)?
            } else {
                0
            },
            row: 0,
            bits: bits as u32,
        };
        let mut dims = batch.to_vec();
        dims.push(n);
        let out = GpuTensor::output(self, OP, dims)?;
        if m == 0 || n == 0 {
            return Ok(out);
        }
        // One row (a decoding step): one workgroup per output; otherwise TILE×TILE tiles.
        let (pipeline, groups, params) = if m == 1 {
            let (gx, gy) = groups_2d(self, OP, n as u64)?;
            let params = Params { row: gx, ..params };
            (&self.kernels.matmul_nbits_gemv, (gx, gy), params)
        } else {
            let gx = check_groups(self, OP, u64::from(params.n.div_ceil(TILE)))?;
            let gy = check_groups(self, OP, u64::from(params.m.div_ceil(TILE)))?;
            (&self.kernels.matmul_nbits, (gx, gy), params)
        };
        // Without zero points the binding still needs a buffer: b stands in, never read.
        let zp = zero_points.map_or(&b.buffer, |z| &z.buffer);
        launch(
            self,
            OP,
            pipeline,
            &[&a.buffer, &b.buffer, &scales.buffer, zp, &out.buffer],
            &params,
            groups,
        )?;
        Ok(out)
    }
}
