//! ONNX ReduceSum / ReduceMean / ReduceMax / ReduceMin / ReduceProd / ReduceSumSquare /
//! ReduceL2 over any set of axes (`reduce.wgsl`): one workgroup per output element, the op a
//! uniform, so one pipeline serves all of them.

use super::{contiguous_strides, fit, launch, spread};
use crate::{Gpu, GpuError, GpuTensor};

/// Invocations per workgroup, sharing one output element.
pub const WORKGROUP: u32 = 64;
/// The most dims the input may have.
pub const MAX_RANK: usize = 6;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}",
        include_str!("reduce.wgsl")
    )
}

/// The reduction; its discriminant is the shader's `params.op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ReduceOp {
    Sum = 0,
    Mean = 1,
    Max = 2,
    Min = 3,
    Prod = 4,
    SumSquare = 5,
    L2 = 6,
}

impl ReduceOp {
    /// The value of an empty reduction, where the shader's accumulators start.
    fn identity(self) -> f32 {
        match self {
            ReduceOp::Max => f32::NEG_INFINITY,
            ReduceOp::Min => f32::INFINITY,
            ReduceOp::Prod => 1.0,
            _ => 0.0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    out_len: u32,
    red_len: u32,
    groups_x: u32,
    op: u32,
    identity: f32,
    pad: [u32; 3],
    // The kept and the reduced dims, each right-aligned to MAX_RANK slots (padded to two vec4s
    // for the uniform's 16-byte array stride), with their strides in the input.
    kept_dims: [u32; 8],
    kept_strides: [u32; 8],
    red_dims: [u32; 8],
    red_strides: [u32; 8],
}

/// `dims` and `strides` right-aligned into MAX_RANK slots (1 and 0 before them).
fn slots(
    op: &'static str,
    dims: &[usize],
    strides: &[usize],
) -> Result<([u32; 8], [u32; 8]), GpuError> {
    let (mut d8, mut s8) = ([1u32; 8], [0u32; 8]);
    for (i, (&d, &s)) in dims.iter().zip(strides).enumerate() {
        d8[MAX_RANK - dims.len() + i] = fit(op, d)?;
        s8[MAX_RANK - dims.len() + i] = fit(op, s)?;
    }
    Ok((d8, s8))
}

impl Gpu {
    /// `op` of `x` over `axes` (distinct, each below the rank; empty means all, as ONNX's
    /// default); `keepdims` leaves them as 1s, else they are dropped.
    pub async fn reduce(
        &self,
        op: ReduceOp,
        x: &GpuTensor,
        axes: &[usize],
        keepdims: bool,
    ) -> Result<GpuTensor, GpuError> {
        const OP: &str = "reduce";
        let dims = x.dims();
        if dims.len() > MAX_RANK {
            return Err(GpuError::shape(
                OP,
                format!("{}-D; at most {MAX_RANK}-D", dims.len()),
            ));
        }
        let mut reduced = vec![axes.is_empty(); dims.len()];
        for &axis in axes {
            if axis >= dims.len() || std::mem::replace(&mut reduced[axis], true) {
                return Err(GpuError::shape(OP, format!("axes {axes:?} of {dims:?}")));
            }
        }
        let strides = contiguous_strides(dims);
        let pick = |want: bool| -> (Vec<usize>, Vec<usize>) {
            (0..dims.len())
                .filter(|&d| reduced[d] == want)
                .map(|d| (dims[d], strides[d]))
                .unzip()
        };
        let (kept_dims, kept_strides) = pick(false);
        let (red_dims, red_strides) = pick(true);
        let out_dims: Vec<usize> = (0..dims.len())
            .filter_map(|d| match (reduced[d], keepdims) {
                (false, _) => Some(dims[d]),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect();
        let out_len: usize = kept_dims.iter().product();
        let red_len: usize = red_dims.iter().product();
        let (groups_x, groups_y) = spread(self, OP, out_len as u64)?;
        let (kept_dims, kept_strides) = slots(OP, &kept_dims, &kept_strides)?;
        let (red_dims, red_strides) = slots(OP, &red_dims, &red_strides)?;
        let params = Params {
            out_len: fit(OP, out_len)?,
            red_len: fit(OP, red_len)?,
            groups_x,
            op: op as u32,
            identity: op.identity(),
            pad: [0; 3],
            kept_dims,
            kept_strides,
            red_dims,
            red_strides,
        };
        let out = GpuTensor::output(self, OP, out_dims)?;
        if out_len == 0 {
            return Ok(out);
        }
        launch(
            self,
            OP,
            &self.kernels.reduce,
            &[&x.buffer, &out.buffer],
            &params,
            (groups_x, groups_y),
        )?;
        Ok(out)
    }
}
