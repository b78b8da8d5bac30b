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
    /// The rows of the whole axis this part holds.
    lo: u32,
    hi: u32,
    pad: u32,
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
        self.gather_parts(&[data], indices, indices_dims, axis)
            .await
    }

    /// [`Gpu::gather`] from a tensor cut along `axis` into `parts` (in order; equal dims but
    /// along the axis): each part is bound alone, so the whole may exceed one binding.
    pub async fn gather_parts(
        &self,
        parts: &[&GpuTensor],
        indices: &[i64],
        indices_dims: &[usize],
        axis: usize,
    ) -> Result<GpuTensor, GpuError> {
        const OP: &str = "gather";
        let Some(first) = parts.first() else {
            return Err(GpuError::shape(OP, "no data".to_string()));
        };
        let dims = first.dims();
        if axis >= dims.len() {
            return Err(GpuError::shape(
                OP,
                format!("axis {axis} of {}-D {dims:?}", dims.len()),
            ));
        }
        let mut starts = vec![0usize];
        for p in parts {
            let d = p.dims();
            if d.len() != dims.len()
                || d[..axis] != dims[..axis]
                || d[axis + 1..] != dims[axis + 1..]
            {
                return Err(GpuError::shape(
                    OP,
                    format!("part {d:?} does not match {dims:?} but along axis {axis}"),
                ));
            }
            starts.push(starts[starts.len() - 1] + d[axis]);
        }
        let axis_len = starts[parts.len()];
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
                        format!("index {i} out of range for axis {axis} of length {axis_len}"),
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
        for (p, part) in parts.iter().enumerate() {
            let (lo, hi) = (starts[p], starts[p + 1]);
            // A part no index falls in has nothing to write.
            if parts.len() > 1 && !wrapped.iter().any(|&j| (lo..hi).contains(&(j as usize))) {
                continue;
            }
            let params = Params {
                len: fit(OP, len)?,
                row: groups_x * WORKGROUP,
                axis_len: fit(OP, hi - lo)?,
                inner: fit(OP, dims[axis + 1..].iter().product())?,
                count: fit(OP, count)?,
                lo: fit(OP, lo)?,
                hi: fit(OP, hi)?,
                pad: 0,
            };
            launch(
                self,
                OP,
                &self.kernels.gather,
                &[&part.buffer, &indices, &out.buffer],
                &params,
                (groups_x, groups_y),
            )?;
        }
        Ok(out)
    }
}
