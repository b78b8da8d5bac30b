//! Elementwise Add / Sub / Mul / Div / Pow / Max / Min with numpy broadcasting, up to 6-D
//! (`binary.wgsl`). The op is a uniform, so one pipeline serves all of them.

use super::{check_groups, launch};
use crate::{Gpu, GpuError, GpuTensor};

/// Invocations per workgroup, one per output element.
pub const WORKGROUP: u32 = 64;
/// The most dims an operand may have.
pub const MAX_RANK: usize = 6;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}{}",
        include_str!("broadcast.wgsl"),
        include_str!("binary.wgsl")
    )
}

/// The op; its discriminant is the shader's `params.op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum BinaryOp {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
    /// ONNX Pow: a negative base with an integral exponent keeps its sign rule.
    Pow = 4,
    Max = 5,
    Min = 6,
}

impl BinaryOp {
    /// The same op on the CPU, the reference the kernel is tested against.
    pub fn apply(self, x: f32, y: f32) -> f32 {
        match self {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
            BinaryOp::Pow => x.powf(y),
            BinaryOp::Max => x.max(y),
            BinaryOp::Min => x.min(y),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    op: u32,
    len: u32,
    row: u32,
    pad: u32,
    // MAX_RANK slots, padded to two vec4s for the uniform's 16-byte array stride.
    dims: [u32; 8],
    a_strides: [u32; 8],
    b_strides: [u32; 8],
}

/// numpy's broadcast of two shapes: right-aligned, each pair equal or one of them 1.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Row-major strides of `shape` right-aligned to MAX_RANK, 0 along broadcast (size-1) dims.
pub(crate) fn strides(shape: &[usize]) -> Result<[u32; 8], GpuError> {
    let mut strides = [0u32; 8];
    let mut stride = 1usize;
    for (i, &size) in shape.iter().enumerate().rev() {
        let slot = MAX_RANK - shape.len() + i;
        if size != 1 {
            strides[slot] = u32::try_from(stride)
                .map_err(|_| GpuError::shape("binary", "tensor over u32 elements"))?;
        }
        stride *= size;
    }
    Ok(strides)
}

impl Gpu {
    /// `op(a, b)` elementwise, `a` and `b` broadcast to a common shape (at most 6-D).
    pub async fn binary(
        &self,
        op: BinaryOp,
        a: &GpuTensor,
        b: &GpuTensor,
    ) -> Result<GpuTensor, GpuError> {
        const OP: &str = "binary";
        let shape = broadcast_shape(a.dims(), b.dims()).ok_or_else(|| {
            GpuError::shape(
                OP,
                format!("cannot broadcast {:?} with {:?}", a.dims(), b.dims()),
            )
        })?;
        if shape.len() > MAX_RANK {
            return Err(GpuError::shape(
                OP,
                format!("{}-D; at most {MAX_RANK}-D", shape.len()),
            ));
        }
        let len: usize = shape.iter().product();
        let too_big = || GpuError::shape(OP, "tensor over u32 elements");
        let mut dims = [1u32; 8];
        for (i, &size) in shape.iter().enumerate() {
            dims[MAX_RANK - shape.len() + i] = u32::try_from(size).map_err(|_| too_big())?;
        }
        // More groups than one dimension allows spill into rows of y.
        let groups = len.div_ceil(WORKGROUP as usize) as u64;
        let limit = u64::from(self.device.limits().max_compute_workgroups_per_dimension);
        let groups_x = check_groups(self, OP, groups.min(limit))?;
        let groups_y = check_groups(self, OP, groups.div_ceil(limit.max(1)))?;
        let params = Params {
            op: op as u32,
            len: u32::try_from(len).map_err(|_| too_big())?,
            row: groups_x.checked_mul(WORKGROUP).ok_or_else(too_big)?,
            pad: 0,
            dims,
            a_strides: strides(a.dims())?,
            b_strides: strides(b.dims())?,
        };
        let out = GpuTensor::output(self, OP, shape)?;
        if len == 0 {
            return Ok(out);
        }
        launch(
            self,
            OP,
            &self.kernels.binary,
            &[&a.buffer, &b.buffer, &out.buffer],
            &params,
            (groups_x, groups_y),
        )?;
        Ok(out)
    }
}
