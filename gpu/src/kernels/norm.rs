//! ONNX LayerNormalization (opset 17) and SimplifiedLayerNormalization / RMSNormalization
//! (opset 23) in `norm.wgsl`: one workgroup per row of the normalized dims; a flag in the
//! uniform picks RMS (no mean, no bias).

use super::{fit, launch, spread};
use crate::{Gpu, GpuError, GpuTensor};

/// Invocations per workgroup, sharing one row.
pub const WORKGROUP: u32 = 64;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}",
        include_str!("norm.wgsl")
    )
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    /// Elements per row: the product of the dims from the axis on.
    len: u32,
    rows: u32,
    groups_x: u32,
    epsilon: f32,
    /// Scale and bias repeat every `*_len` elements of a row (they broadcast from the right).
    scale_len: u32,
    bias_len: u32,
    has_bias: u32,
    rms: u32,
}

impl Gpu {
    /// LayerNormalization: each row of dims `axis..` of `x` normalized to mean 0, variance 1,
    /// then `· scale + bias`. `scale` and `bias` broadcast to those dims from the right (their
    /// dims, leading 1s dropped, are a suffix of them).
    pub async fn layer_norm(
        &self,
        x: &GpuTensor,
        scale: &GpuTensor,
        bias: Option<&GpuTensor>,
        axis: usize,
        epsilon: f32,
    ) -> Result<GpuTensor, GpuError> {
        self.norm("layer_norm", x, scale, bias, axis, epsilon, false)
            .await
    }

    /// RMS normalization: each row of dims `axis..` of `x` divided by `sqrt(mean(x²) + ε)`,
    /// then `· scale` (broadcast as in [`Gpu::layer_norm`]).
    pub async fn rms_norm(
        &self,
        x: &GpuTensor,
        scale: &GpuTensor,
        axis: usize,
        epsilon: f32,
    ) -> Result<GpuTensor, GpuError> {
        self.norm("rms_norm", x, scale, None, axis, epsilon, true)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn norm(
        &self,
        op: &'static str,
        x: &GpuTensor,
        scale: &GpuTensor,
        bias: Option<&GpuTensor>,
        axis: usize,
        epsilon: f32,
        rms: bool,
    ) -> Result<GpuTensor, GpuError> {
        let dims = x.dims();
        if axis >= dims.len() {
            return Err(GpuError::shape(
                op,
                format!("axis {axis} of {}-D {dims:?}", dims.len()),
            ));
        }
        let normalized = &dims[axis..];
        let len: usize = normalized.iter().product();
        let rows: usize = dims[..axis].iter().product();
        let repeat = |what: &str, t: &GpuTensor| {
            let trimmed: Vec<usize> = t.dims().iter().copied().skip_while(|&d| d == 1).collect();
            if normalized.ends_with(&trimmed) {
                Ok(t.len())
            } else {
                Err(GpuError::shape(
                    op,
                    format!("{what} {:?} does not broadcast to {normalized:?}", t.dims()),
                ))
            }
        };
        let scale_len = repeat("scale", scale)?;
        let bias_len = bias.map_or(Ok(1), |b| repeat("bias", b))?;
        let (groups_x, groups_y) = spread(self, op, rows as u64)?;
        let params = Params {
            len: fit(op, len)?,
            rows: fit(op, rows)?,
            groups_x,
            epsilon,
            scale_len: fit(op, scale_len)?,
            bias_len: fit(op, bias_len)?,
            has_bias: u32::from(bias.is_some()),
            rms: u32::from(rms),
        };
        let out = GpuTensor::output(self, op, dims.to_vec())?;
        if out.is_empty() {
            return Ok(out);
        }
        // Without a bias the binding still needs a buffer; the shader never reads it.
        let bias = bias.map_or(&scale.buffer, |b| &b.buffer);
        launch(
            self,
            op,
            &self.kernels.norm,
            &[&x.buffer, &scale.buffer, bias, &out.buffer],
            &params,
            (groups_x, groups_y),
        )?;
        Ok(out)
    }
}
