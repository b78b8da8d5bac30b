//! ONNX Gather (opset 13) along one axis, f32 data, indices from the host (`gather.wgsl`).
//! Indices are checked and made non-negative here, then uploaded as u32.

use super::{fit, launch, spread};
use crate::{Gpu, GpuError, GpuTensor};
use wgpu::util::DeviceExt;

/// Invocations per workgroup, one per output element.
pub const WORKGROUP: u32 = 64;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}",
        include_str!("gather.wgsl")
    )
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    row: u32,
    /// Size of `data` along the axis, and the product of the dims after it.
    axis_len: u32,
    inner: u32,
    count: u32,
    pad: [u32; 3],
}

impl Gpu {
    /// `data` gathered along `axis` at `indices` (dims `indices_dims`, negative counting from
    /// the end): the output is `data.dims[..axis] ++ indices_dims ++ data.dims[axis + 1..]`.
    pub async fn gather(
        &self,
        data: &GpuTensor,
        indices: &[i64],
        indices_dims: &[usize],
        axis: usize,
    ) -> Result<GpuTensor, GpuError> {
        const OP: &str = "gather";
        let dims = data.dims();
        let Some(&axis_len) = dims.get(axis) else {
            return Err(GpuError::shape(
                OP,
                format!("axis {axis} of {}-D {dims:?}", dims.len()),
            ));
        };
        let count: usize = indices_dims.iter().product();
        if indices.len() != count {
            return Err(GpuError::shape(
                OP,
                format!("{} indices for dims {indices_dims:?}", indices.len()),
            ));
        }
        let wrapped = indices
            .iter()
            .map(|&i| {
                let j = if i < 0 { i + axis_len as i64 } else { i };
                if (0..axis_len as i64).contains(&j) {
                    Ok(j as u32)
                } else {
                    Err(GpuError::shape(
                        OP,
                        format!("index {i} out of range for axis {axis} of {dims:?}"),
                    ))
                }
            })
            .collect::<Result<Vec<u32>, GpuError>>()?;
        let out_dims: Vec<usize> = dims[..axis]
            .iter()
            .chain(indices_dims)
            .chain(&dims[axis + 1..])
            .copied()
            .collect();
        let len: usize = out_dims.iter().product();
        let (groups_x, groups_y) = spread(self, OP, len.div_ceil(WORKGROUP as usize) as u64)?;
        let params = Params {
            len: fit(OP, len)?,
            row: groups_x * WORKGROUP,
            axis_len: fit(OP, axis_len)?,
            inner: fit(OP, dims[axis + 1..].iter().product())?,
            count: fit(OP, count)?,
            pad: [0; 3],
        };
        let out = GpuTensor::output(self, OP, out_dims)?;
        if len == 0 {
            return Ok(out);
        }
        let indices = self.scoped(OP, || {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("gather indices"),
                    contents: bytemuck::cast_slice(&wrapped),
                    usage: wgpu::BufferUsages::STORAGE,
                })
        })?;
        launch(
            self,
            OP,
            &self.kernels.gather,
            &[&data.buffer, &indices, &out.buffer],
            &params,
            (groups_x, groups_y),
        )?;
        Ok(out)
    }
}
