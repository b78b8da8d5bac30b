//! ONNX MaxPool / AveragePool (opsets 1–22) on `[N,C,H,W]`, f32, with pads, strides,
//! dilations, ceil_mode and count_include_pad (`pool.wgsl`, one invocation per output), and
//! GlobalMaxPool / GlobalAveragePool over every spatial dim of `[N,C,…]`
//! (`global_pool.wgsl`, one workgroup per (n, c) reducing in workgroup memory).

use super::conv::{fits, groups_2d};
use super::launch;
use crate::{Gpu, GpuError, GpuTensor};

/// Invocations per workgroup: one per output (pool2d), or the reduction's width (global_pool).
pub const WORKGROUP: u32 = 64;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}",
        include_str!("pool.wgsl")
    )
}

pub(crate) fn global_source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}",
        include_str!("global_pool.wgsl")
    )
}

/// Which pool; Global* pools take the same kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    /// With `count_include_pad`, the divisor counts the pads inside the window too (never
    /// beyond the padded input, as in ONNX Runtime).
    Average {
        count_include_pad: bool,
    },
}

/// MaxPool / AveragePool attributes, parsed when the model loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    pub kind: PoolKind,
    /// `[kH, kW]`.
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// ONNX order: `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    /// Round the output size up; a window that would start in the right/bottom pad is dropped.
    pub ceil_mode: bool,
}

/// One output size of a pooling window under ONNX's rules, None when the window does not fit.
fn pool_out(size: usize, p: &Pool2dParams, i: usize) -> Option<usize> {
    let (k, s, d) = (p.kernel[i], p.strides[i], p.dilations[i]);
    let (begin, end) = (p.pads[i], p.pads[i + 2]);
    if k == 0 || s == 0 || d == 0 {
        return None;
    }
    let room = (size + begin + end).checked_sub(d * (k - 1) + 1)?;
    let mut out = if p.ceil_mode {
        room.div_ceil(s)
    } else {
        room / s
    } + 1;
    // ceil_mode's extra window must start inside the input or the left pad.
    if p.ceil_mode && (out - 1) * s >= size + begin {
        out -= 1;
    }
    Some(out)
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    kind: u32, // 0 max, 1 average, 2 average counting pads
    len: u32,
    row: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_t: u32,
    pad_l: u32,
    pad_b: u32,
    pad_r: u32,
    dil_h: u32,
    dil_w: u32,
    pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GlobalParams {
    kind: u32, // 0 max, 1 average
    rows: u32,
    size: u32, // spatial elements per row
    row: u32,  // workgroups per row of the dispatch
}

impl Gpu {
    /// ONNX MaxPool / AveragePool: `x` `[N,C,H,W]` → `[N,C,OH,OW]`.
    pub async fn pool2d(&self, x: &GpuTensor, p: &Pool2dParams) -> Result<GpuTensor, GpuError> {
        const OP: &str = "pool2d";
        let &[n, c, h, w] = x.dims() else {
            return Err(GpuError::shape(
                OP,
                format!("needs 4-D x, got {:?}", x.dims()),
            ));
        };
        let (Some(oh), Some(ow)) = (pool_out(h, p, 0), pool_out(w, p, 1)) else {
            return Err(GpuError::shape(
                OP,
                format!("window {p:?} does not fit input {h}×{w}"),
            ));
        };
        let len = n * c * oh * ow;
        fits(OP, n * c * h * w)?;
        let (gx, gy) = groups_2d(self, OP, len.div_ceil(WORKGROUP as usize) as u64)?;
        let params = Params {
            kind: match p.kind {
                PoolKind::Max => 0,
                PoolKind::Average {
                    count_include_pad: false,
                } => 1,
                PoolKind::Average {
                    count_include_pad: true,
                } => 2,
            },
            len: fits(OP, len)?,
            row: gx
                .checked_mul(WORKGROUP)
                .ok_or_else(|| GpuError::shape(OP, "too many outputs"))?,
            h: fits(OP, h)?,
            w: fits(OP, w)?,
            oh: fits(OP, oh)?,
            ow: fits(OP, ow)?,
            kh: fits(OP, p.kernel[0])?,
            kw: fits(OP, p.kernel[1])?,
            stride_h: fits(OP, p.strides[0])?,
            stride_w: fits(OP, p.strides[1])?,
            pad_t: fits(OP, p.pads[0])?,
            pad_l: fits(OP, p.pads[1])?,
            pad_b: fits(OP, p.pads[2])?,
            pad_r: fits(OP, p.pads[3])?,
            dil_h: fits(OP, p.dilations[0])?,
            dil_w: fits(OP, p.dilations[1])?,
            pad: [0; 3],
        };
        let out = GpuTensor::output(self, OP, vec![n, c, oh, ow])?;
        if len == 0 {
            return Ok(out);
        }
        launch(
            self,
            OP,
            &self.kernels.pool,
            &[&x.buffer, &out.buffer],
            &params,
            (gx, gy),
        )?;
        Ok(out)
    }

    /// ONNX GlobalMaxPool / GlobalAveragePool: `x` `[N,C,d1,…]` (rank ≥ 3) → `[N,C,1,…]`.
    /// `count_include_pad` has no meaning here (no pads) and is ignored.
    pub async fn global_pool(&self, x: &GpuTensor, kind: PoolKind) -> Result<GpuTensor, GpuError> {
        const OP: &str = "global_pool";
        let dims = x.dims();
        if dims.len() < 3 {
            return Err(GpuError::shape(
                OP,
                format!("needs [N,C,spatial…], got {dims:?}"),
            ));
        }
        let rows = dims[0] * dims[1];
        let size: usize = dims[2..].iter().product();
        if size == 0 {
            return Err(GpuError::shape(
                OP,
                format!("no spatial elements in {dims:?}"),
            ));
        }
        fits(OP, rows * size)?;
        let mut out_dims = dims.to_vec();
        out_dims[2..].fill(1);
        let out = GpuTensor::output(self, OP, out_dims)?;
        if rows == 0 {
            return Ok(out);
        }
        let (gx, gy) = groups_2d(self, OP, rows as u64)?;
        let params = GlobalParams {
            kind: u32::from(matches!(kind, PoolKind::Average { .. })),
            rows: fits(OP, rows)?,
            size: fits(OP, size)?,
            row: gx,
        };
        launch(
            self,
            OP,
            &self.kernels.global_pool,
            &[&x.buffer, &out.buffer],
            &params,
            (gx, gy),
        )?;
        Ok(out)
    }
}
