//! ONNX Softmax and LogSoftmax (opset 13: along one axis) in `softmax.wgsl`: one workgroup per
//! row along the axis, max subtracted first; a flag in the uniform picks the log form.

use super::{fit, launch, spread};
use crate::{Gpu, GpuError, GpuTensor};

/// Invocations per workgroup, sharing one row.
pub const WORKGROUP: u32 = 64;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}",
        include_str!("softmax.wgsl")
    )
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    /// Elements along the axis.
    len: u32,
    /// Product of the dims after the axis: the stride between a row's elements.
    inner: u32,
    rows: u32,
    /// Workgroups per dispatch row (x).
    groups_x: u32,
    log: u32,
    pad: [u32; 3],
}

impl Gpu {
    /// Softmax of `x` along `axis`.
    pub async fn softmax(&self, x: &GpuTensor, axis: usize) -> Result<GpuTensor, GpuError> {
        self.softmax_kernel("softmax", x, axis, false).await
    }

    /// LogSoftmax of `x` along `axis`: `x - max - log Σ exp(x - max)`, no log of a rounded 0.
    pub async fn log_softmax(&self, x: &GpuTensor, axis: usize) -> Result<GpuTensor, GpuError> {
        self.softmax_kernel("log_softmax", x, axis, true).await
    }

    async fn softmax_kernel(
        &self,
        op: &'static str,
        x: &GpuTensor,
        axis: usize,
        log: bool,
    ) -> Result<GpuTensor, GpuError> {
        let dims = x.dims();
        let Some(&len) = dims.get(axis) else {
            return Err(GpuError::shape(
                op,
                format!("axis {axis} of {}-D {dims:?}", dims.len()),
            ));
        };
        let inner: usize = dims[axis + 1..].iter().product();
        let outer: usize = dims[..axis].iter().product();
        let rows = outer * inner;
        let (groups_x, groups_y) = spread(self, op, rows as u64)?;
        let params = Params {
            len: fit(op, len)?,
            inner: fit(op, inner)?,
            rows: fit(op, rows)?,
            groups_x,
            log: u32::from(log),
            pad: [0; 3],
        };
        let out = GpuTensor::output(self, op, dims.to_vec())?;
        if out.is_empty() {
            return Ok(out);
        }
        launch(
            self,
            op,
            &self.kernels.softmax,
            &[&x.buffer, &out.buffer],
            &params,
            (groups_x, groups_y),
        )?;
        Ok(out)
    }
}
