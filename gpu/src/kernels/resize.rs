//! ONNX Resize (opsets 11–19) over the last two dims of `[N,C,H,W]`, f32: nearest (each
//! `nearest_mode`) or bilinear, with the `asymmetric` and `half_pixel` coordinate
//! transformations (`resize.wgsl`, one invocation per output). Other modes (cubic,
//! align_corners, pytorch_half_pixel, tf_crop_and_resize), antialias, and scaling N or C are
//! not covered here.

use super::conv::{fits, groups_2d};
use super::launch;
use crate::{Gpu, GpuError, GpuTensor};

/// Invocations per workgroup, one per output element.
pub const WORKGROUP: u32 = 64;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}",
        include_str!("resize.wgsl")
    )
}

/// `mode`; nearest carries its `nearest_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    Nearest(NearestMode),
    Linear,
}

/// ONNX `nearest_mode`: how a fractional source coordinate picks a pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NearestMode {
    /// ONNX's default: round, halves down.
    #[default]
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// ONNX `coordinate_transformation_mode` (the two covered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordinateMode {
    /// `x_in = x_out / scale`.
    Asymmetric,
    /// `x_in = (x_out + 0.5) / scale − 0.5`.
    HalfPixel,
}

/// Resize's attributes and its `sizes` / `scales` input, for the H and W dims.
#[derive(Clone, Debug, PartialEq)]
pub struct ResizeParams {
    pub mode: ResizeMode,
    pub coordinate: CoordinateMode,
    /// Output `[OH, OW]`.
    pub sizes: [usize; 2],
    /// The model's `scales` for H and W when it gave them (ONNX then maps coordinates with
    /// them, not with `sizes / input`); None when it gave `sizes`.
    pub scales: Option<[f32; 2]>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    row: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    mode: u32,       // 0 nearest, 1 linear
    nearest: u32,    // NearestMode: 0 round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil
    half_pixel: u32, // 0 asymmetric, 1 half_pixel
    scale_h: f32,
    scale_w: f32,
    pad: u32,
}

impl Gpu {
    /// ONNX Resize of `x` `[N,C,H,W]` to `[N,C,OH,OW]`.
    pub async fn resize(&self, x: &GpuTensor, p: &ResizeParams) -> Result<GpuTensor, GpuError> {
        const OP: &str = "resize";
        let &[n, c, h, w] = x.dims() else {
            return Err(GpuError::shape(
                OP,
                format!("needs 4-D x, got {:?}", x.dims()),
            ));
        };
        let [oh, ow] = p.sizes;
        let [scale_h, scale_w] = p
            .scales
            .unwrap_or([oh as f32 / h.max(1) as f32, ow as f32 / w.max(1) as f32]);
        if h == 0 || w == 0 || !(scale_h > 0.0 && scale_w > 0.0) {
            return Err(GpuError::shape(
                OP,
                format!(
                    "cannot resize {:?} to {:?} (scales {:?})",
                    x.dims(),
                    p.sizes,
                    p.scales
                ),
            ));
        }
        let len = n * c * oh * ow;
        fits(OP, n * c * h * w)?;
        let (gx, gy) = groups_2d(self, OP, len.div_ceil(WORKGROUP as usize) as u64)?;
        let (mode, nearest) = match p.mode {
            ResizeMode::Nearest(m) => (0, m as u32),
            ResizeMode::Linear => (1, 0),
        };
        let params = Params {
            len: fits(OP, len)?,
            row: gx
                .checked_mul(WORKGROUP)
                .ok_or_else(|| GpuError::shape(OP, "too many outputs"))?,
            h: fits(OP, h)?,
            w: fits(OP, w)?,
            oh: fits(OP, oh)?,
            ow: fits(OP, ow)?,
            mode,
            nearest,
            half_pixel: u32::from(p.coordinate == CoordinateMode::HalfPixel),
            scale_h,
            scale_w,
            pad: 0,
        };
        let out = GpuTensor::output(self, OP, vec![n, c, oh, ow])?;
        if len == 0 {
            return Ok(out);
        }
        launch(
            self,
            OP,
            &self.kernels.resize,
            &[&x.buffer, &out.buffer],
            &params,
            (gx, gy),
        )?;
        Ok(out)
    }
}
