//! ONNX Conv (opsets 1, 11, 22) on `[N,C,H,W]`, f32: strides, pads, dilations, groups, optional
//! bias. The general case is a tiled implicit GEMM (`conv.wgsl`); depthwise convolutions (one
//! input channel per group) take a direct kernel (`conv_depthwise.wgsl`), since a GEMM tile of
//! output channels would be one row deep there (lavapipe, 64 channels 3×3 on 56×56: 21 ms
//! direct, 700 ms through the GEMM). Conv1d is the caller's: pass `H = 1`; so is `auto_pad`,
//! resolved to explicit pads when the model loads.

use super::{check_groups, launch};
use crate::{Gpu, GpuError, GpuTensor};

/// The implicit GEMM's workgroup (16×16 invocations) computes TILE_M output channels × TILE_N
/// output pixels, TILE_M/16 × TILE_N/16 outputs each; the reduction runs TILE_K patch elements
/// at a time. All three are multiples of 16.
pub const TILE_M: u32 = 32;
pub const TILE_N: u32 = 64;
pub const TILE_K: u32 = 16;
/// Invocations per workgroup of the direct kernels, one per output element.
pub const WORKGROUP: u32 = 64;

pub(crate) fn source() -> String {
    format!(
        "const TILE_M: u32 = {TILE_M}u;\nconst TILE_N: u32 = {TILE_N}u;\n\
         const TILE_K: u32 = {TILE_K}u;\n{}{}",
        include_str!("conv_common.wgsl"),
        include_str!("conv.wgsl")
    )
}

pub(crate) fn depthwise_source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}{}",
        include_str!("conv_common.wgsl"),
        include_str!("conv_depthwise.wgsl")
    )
}

/// Conv's attributes, parsed from the node when the model loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// `[stride_h, stride_w]`.
    pub strides: [usize; 2],
    /// ONNX order: `[top, left, bottom, right]` (h_begin, w_begin, h_end, w_end).
    pub pads: [usize; 4],
    /// `[dilation_h, dilation_w]`.
    pub dilations: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            strides: [1, 1],
            pads: [0; 4],
            dilations: [1, 1],
            groups: 1,
        }
    }
}

/// One output size of a sliding window (ONNX Conv / floor-mode pooling), or None when the
/// dilated window is larger than the padded input or a stride or dilation is 0.
pub(crate) fn window_out(
    size: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pads: usize,
) -> Option<usize> {
    if stride == 0 || dilation == 0 || kernel == 0 {
        return None;
    }
    let span = dilation * (kernel - 1) + 1;
    Some((size + pads).checked_sub(span)? / stride + 1)
}

/// Workgroups for `count` independent items, spilling over into rows of y past the limit.
pub(crate) fn groups_2d(gpu: &Gpu, op: &'static str, count: u64) -> Result<(u32, u32), GpuError> {
    let limit = u64::from(gpu.device.limits().max_compute_workgroups_per_dimension);
    let x = check_groups(gpu, op, count.min(limit))?;
    let y = check_groups(gpu, op, count.div_ceil(limit.max(1)))?;
    Ok((x, y))
}

pub(crate) fn fits(op: &'static str, x: usize) -> Result<u32, GpuError> {
    u32::try_from(x).map_err(|_| GpuError::shape(op, format!("{x} is over u32")))
}

/// Shared by both shaders; field order matches `conv.wgsl` and `conv_depthwise.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    m: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_t: u32,
    pad_l: u32,
    dil_h: u32,
    dil_w: u32,
    cg: u32, // input channels per group
    mg: u32, // output channels per group
    m_tiles: u32,
    has_bias: u32,
    len: u32,      // output elements (direct kernel)
    row: u32,      // per row of the dispatch: invocations (direct), workgroups (GEMM)
    px_tiles: u32, // GEMM: tiles of TILE_N output pixels
    pad: [u32; 2],
}

impl Gpu {
    /// ONNX Conv: `x` `[N,C,H,W]`, `w` `[M, C/groups, kH, kW]`, `bias` `[M]` → `[N,M,OH,OW]`.
    pub async fn conv2d(
        &self,
        x: &GpuTensor,
        w: &GpuTensor,
        bias: Option<&GpuTensor>,
        p: &Conv2dParams,
    ) -> Result<GpuTensor, GpuError> {
        const OP: &str = "conv2d";
        let (&[n, c, h, wd], &[m, cg, kh, kw]) = (x.dims(), w.dims()) else {
            return Err(GpuError::shape(
                OP,
                format!("needs 4-D x and w, got {:?} and {:?}", x.dims(), w.dims()),
            ));
        };
        let groups = p.groups;
        if groups == 0 || c % groups != 0 || m % groups != 0 || cg != c / groups {
            return Err(GpuError::shape(
                OP,
                format!(
                    "x {:?}, w {:?}: channels do not split into {groups} groups",
                    x.dims(),
                    w.dims()
                ),
            ));
        }
        if let Some(b) = bias {
            if b.dims() != [m] {
                return Err(GpuError::shape(
                    OP,
                    format!("bias {:?}, want [{m}]", b.dims()),
                ));
            }
        }
        let [pt, pl, _, _] = p.pads;
        let out = |size, k, i: usize| {
            window_out(
                size,
                k,
                p.strides[i],
                p.dilations[i],
                p.pads[i] + p.pads[i + 2],
            )
        };
        let (Some(oh), Some(ow)) = (out(h, kh, 0), out(wd, kw, 1)) else {
            return Err(GpuError::shape(
                OP,
                format!(
                    "kernel {kh}×{kw} (dilations {:?}, strides {:?}) does not fit input \
                     {h}×{wd} padded by {:?}",
                    p.dilations, p.strides, p.pads
                ),
            ));
        };
        let len = n * m * oh * ow;
        let mg = m / groups;
        let depthwise = cg == 1;
        let m_tiles = fits(OP, mg)?.div_ceil(TILE_M);
        let params = Params {
            n: fits(OP, n)?,
            c: fits(OP, c)?,
            h: fits(OP, h)?,
            w: fits(OP, wd)?,
            m: fits(OP, m)?,
            oh: fits(OP, oh)?,
            ow: fits(OP, ow)?,
            kh: fits(OP, kh)?,
            kw: fits(OP, kw)?,
            stride_h: fits(OP, p.strides[0])?,
            stride_w: fits(OP, p.strides[1])?,
            pad_t: fits(OP, pt)?,
            pad_l: fits(OP, pl)?,
            dil_h: fits(OP, p.dilations[0])?,
            dil_w: fits(OP, p.dilations[1])?,
            cg: fits(OP, cg)?,
            mg: fits(OP, mg)?,
            m_tiles,
            has_bias: u32::from(bias.is_some()),
            len: fits(OP, len)?,
            row: 0,
            px_tiles: 0,
            pad: [0; 2],
        };
        // Both kernels index x, w and the output with u32.
        fits(OP, n * c * h * wd)?;
        fits(OP, m * cg * kh * kw)?;
        let out = GpuTensor::output(self, OP, vec![n, m, oh, ow])?;
        if len == 0 {
            return Ok(out);
        }
        // A pointwise conv is a matrix product: the register-blocked MatMul pipeline beats the
        // implicit GEMM's per-element patch arithmetic (2–4× on lavapipe).
        let pointwise = kh == 1 && kw == 1 && p.strides == [1, 1] && p.pads == [0; 4];
        if pointwise && groups == 1 && self.pointwise_conv(x, w, bias, &out).await? {
            return Ok(out);
        }
        let (pipeline, groups_xy, params) = if depthwise {
            let (gx, gy) = groups_2d(self, OP, len.div_ceil(WORKGROUP as usize) as u64)?;
            let row = gx
                .checked_mul(WORKGROUP)
                .ok_or_else(|| GpuError::shape(OP, "too many outputs"))?;
            (
                &self.kernels.conv_depthwise,
                (gx, gy),
                Params { row, ..params },
            )
        } else {
            let px_tiles = fits(OP, (n * oh * ow).div_ceil(TILE_N as usize))?;
            // Tiles numbered pixel-tile fastest, spilling over into rows of y past the limit.
            let tiles = u64::from(px_tiles) * u64::from(m_tiles) * groups as u64;
            let (gx, gy) = groups_2d(self, OP, tiles)?;
            let params = Params {
                row: gx,
                px_tiles,
                ..params
            };
            (&self.kernels.conv, (gx, gy), params)
        };
        // Without a bias the binding still needs a buffer: x stands in, never read.
        let bias = bias.map_or(&x.buffer, |b| &b.buffer);
        launch(
            self,
            OP,
            pipeline,
            &[&x.buffer, &w.buffer, bias, &out.buffer],
            &params,
            groups_xy,
        )?;
        Ok(out)
    }
}
