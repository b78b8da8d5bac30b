//! ONNX Where: `cond ? x : y` elementwise with numpy broadcasting of all three, up to 6-D
//! (`select.wgsl`). The condition is an f32 tensor, nonzero meaning true (upload a bool mask
//! as 0/1).

use super::binary::{broadcast_shape, strides, MAX_RANK};
use super::{fit, launch, spread};
use crate::{Gpu, GpuError, GpuTensor};

/// Invocations per workgroup, one per output element.
pub const WORKGROUP: u32 = 64;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}{}",
        include_str!("broadcast.wgsl"),
        include_str!("select.wgsl")
    )
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    row: u32,
    pad: [u32; 2],
    // MAX_RANK slots, padded to two vec4s for the uniform's 16-byte array stride.
    dims: [u32; 8],
    c_strides: [u32; 8],
    x_strides: [u32; 8],
    y_strides: [u32; 8],
}

impl Gpu {
    /// `cond ? x : y` elementwise (`cond` nonzero is true), the three broadcast to a common
    /// shape (at most 6-D).
    pub async fn where_select(
        &self,
        cond: &GpuTensor,
        x: &GpuTensor,
        y: &GpuTensor,
    ) -> Result<GpuTensor, GpuError> {
        const OP: &str = "where";
        let shape = broadcast_shape(cond.dims(), x.dims())
            .and_then(|s| broadcast_shape(&s, y.dims()))
            .ok_or_else(|| {
                GpuError::shape(
                    OP,
                    format!(
                        "cannot broadcast {:?}, {:?} and {:?}",
                        cond.dims(),
                        x.dims(),
                        y.dims()
                    ),
                )
            })?;
        if shape.len() > MAX_RANK {
            return Err(GpuError::shape(
                OP,
                format!("{}-D; at most {MAX_RANK}-D", shape.len()),
            ));
        }
        let len: usize = shape.iter().product();
        let (groups_x, groups_y) = spread(self, OP, len.div_ceil(WORKGROUP as usize) as u64)?;
        let mut dims = [1u32; 8];
        for (i, &size) in shape.iter().enumerate() {
            dims[MAX_RANK - shape.len() + i] = fit(OP, size)?;
        }
        let params = Params {
            len: fit(OP, len)?,
            row: groups_x * WORKGROUP,
            pad: [0; 2],
            dims,
            c_strides: strides(cond.dims())?,
            x_strides: strides(x.dims())?,
            y_strides: strides(y.dims())?,
        };
        let out = GpuTensor::output(self, OP, shape)?;
        if len == 0 {
            return Ok(out);
        }
        launch(
            self,
            OP,
            &self.kernels.select,
            &[&cond.buffer, &x.buffer, &y.buffer, &out.buffer],
            &params,
            (groups_x, groups_y),
        )?;
        Ok(out)
    }
}
