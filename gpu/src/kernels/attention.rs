//! Scaled dot-product attention, `softmax(scale · Q·Kᵀ + mask) · V`, with grouped-query heads
//! and an optional causal mask that accounts for a KV cache (`attention.wgsl`). One workgroup
//! per (batch, head, query row); keys are taken WORKGROUP at a time with an online softmax
//! (running max and sum), so the scores never exist in memory and T is unbounded.

use super::conv::{fits, groups_2d};
use super::launch;
use crate::{Gpu, GpuError, GpuTensor};

/// Invocations per workgroup: keys scored per step, and the stride over output dims.
pub const WORKGROUP: u32 = 64;
/// The largest head dim (of Q·K and of V): the query row and the output row live in
/// workgroup memory.
pub const MAX_HEAD_DIM: usize = 512;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\nconst MAX_HEAD_DIM: u32 = {MAX_HEAD_DIM}u;\n{}",
        include_str!("attention.wgsl")
    )
}

/// Attention's attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionParams {
    /// Multiplies Q·Kᵀ (typically `1/√D`).
    pub scale: f32,
    /// Query `i` (0-based among the S queries) attends keys `0..=T−S+i`: the first `T−S` keys
    /// are the KV cache's past positions.
    pub causal: bool,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    heads: u32,
    kv_heads: u32,
    s: u32,
    t: u32,
    d: u32,
    dv: u32,
    causal: u32,
    scale: f32,
    rows: u32, // B · H · S
    row: u32,  // workgroups per row of the dispatch
    pad: [u32; 2],
}

impl Gpu {
    /// `q` `[B,H,S,D]`, `k` `[B,Hkv,T,D]`, `v` `[B,Hkv,T,Dv]` → `[B,H,S,Dv]`; `H` a multiple of
    /// `Hkv` (head h reads KV head `h / (H/Hkv)`). A row whose keys are all masked is 0.
    pub async fn attention(
        &self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        p: &AttentionParams,
    ) -> Result<GpuTensor, GpuError> {
        const OP: &str = "attention";
        let (&[b, h, s, d], &[bk, hkv, t, dk], &[bv, hv, tv, dv]) = (q.dims(), k.dims(), v.dims())
        else {
            return Err(GpuError::shape(
                OP,
                format!(
                    "needs 4-D q, k, v; got {:?}, {:?}, {:?}",
                    q.dims(),
                    k.dims(),
                    v.dims()
                ),
            ));
        };
        if bk != b || bv != b || hv != hkv || tv != t || dk != d || hkv == 0 || h % hkv != 0 {
            return Err(GpuError::shape(
                OP,
                format!(
                    "q {:?}, k {:?}, v {:?}: want [B,H,S,D], [B,Hkv,T,D], [B,Hkv,T,Dv] with \
                     H a multiple of Hkv",
                    q.dims(),
                    k.dims(),
                    v.dims()
                ),
            ));
        }
        if d > MAX_HEAD_DIM || dv > MAX_HEAD_DIM {
            return Err(GpuError::shape(
                OP,
                format!("head dims {d}, {dv}: at most {MAX_HEAD_DIM}"),
            ));
        }
        let rows = b * h * s;
        fits(OP, q.len().max(k.len()).max(v.len()).max(rows * dv))?;
        let out = GpuTensor::output(self, OP, vec![b, h, s, dv])?;
        if rows == 0 || dv == 0 {
            return Ok(out);
        }
        let (gx, gy) = groups_2d(self, OP, rows as u64)?;
        let params = Params {
            heads: fits(OP, h)?,
            kv_heads: fits(OP, hkv)?,
            s: fits(OP, s)?,
            t: fits(OP, t)?,
            d: fits(OP, d)?,
            dv: fits(OP, dv)?,
            causal: u32::from(p.causal),
            scale: p.scale,
            rows: fits(OP, rows)?,
            row: gx,
            pad: [0; 2],
        };
        launch(
            self,
            OP,
            &self.kernels.attention,
            &[&q.buffer, &k.buffer, &v.buffer, &out.buffer],
            &params,
            (gx, gy),
        )?;
        Ok(out)
    }
}
