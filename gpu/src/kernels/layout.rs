//! Data movement without arithmetic — ONNX Transpose, Slice, Expand and Concat — as one strided
//! copy (`layout.wgsl`): walk an iteration shape (up to 6-D), read at `src_offset + Σ cᵢ·sᵢ`
//! (signed strides: negative steps, 0 where broadcast), write at `dst_offset + Σ cᵢ·dᵢ`.
//! Reshape needs no kernel: [`GpuTensor::reshape`] shares the buffer.

use super::{contiguous_strides, fit, launch, spread};
use crate::kernels::binary::broadcast_shape;
use crate::{Gpu, GpuError, GpuTensor};

/// Invocations per workgroup, one per copied element.
pub const WORKGROUP: u32 = 64;
/// The most dims a tensor may have here.
pub const MAX_RANK: usize = 6;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}",
        include_str!("layout.wgsl")
    )
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    row: u32,
    src_offset: u32,
    dst_offset: u32,
    // MAX_RANK slots right-aligned, padded to two vec4s for the uniform's 16-byte array stride.
    dims: [u32; 8],
    src_strides: [i32; 8],
    dst_strides: [u32; 8],
}

/// One strided copy: iterate `dims`, reading `src` and writing `dst` at these offsets/strides.
struct Strided<'a> {
    dims: &'a [usize],
    src_offset: usize,
    src_strides: &'a [isize],
    dst_offset: usize,
    dst_strides: &'a [usize],
}

impl Gpu {
    async fn strided_copy(
        &self,
        op: &'static str,
        src: &GpuTensor,
        dst: &GpuTensor,
        copy: Strided<'_>,
    ) -> Result<(), GpuError> {
        let rank = copy.dims.len();
        if rank > MAX_RANK {
            return Err(GpuError::shape(
                op,
                format!("{rank}-D; at most {MAX_RANK}-D"),
            ));
        }
        let len: usize = copy.dims.iter().product();
        if len == 0 {
            return Ok(());
        }
        let (groups_x, groups_y) = spread(self, op, len.div_ceil(WORKGROUP as usize) as u64)?;
        let mut params = Params {
            len: fit(op, len)?,
            row: groups_x * WORKGROUP,
            src_offset: fit(op, copy.src_offset)?,
            dst_offset: fit(op, copy.dst_offset)?,
            dims: [1; 8],
            src_strides: [0; 8],
            dst_strides: [0; 8],
        };
        for d in 0..rank {
            let slot = MAX_RANK - rank + d;
            params.dims[slot] = fit(op, copy.dims[d])?;
            params.src_strides[slot] = i32::try_from(copy.src_strides[d])
                .map_err(|_| GpuError::shape(op, "stride over i32"))?;
            params.dst_strides[slot] = fit(op, copy.dst_strides[d])?;
        }
        launch(
            self,
            op,
            &self.kernels.layout,
            &[&src.buffer, &dst.buffer],
            &params,
            (groups_x, groups_y),
        )
    }

    /// ONNX Transpose: output dim `i` is input dim `perm[i]`.
    pub async fn transpose(&self, x: &GpuTensor, perm: &[usize]) -> Result<GpuTensor, GpuError> {
        const OP: &str = "transpose";
        let dims = x.dims();
        let mut seen = vec![false; dims.len()];
        let valid = perm.len() == dims.len()
            && perm
                .iter()
                .all(|&p| p < dims.len() && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(GpuError::shape(
                OP,
                format!("perm {perm:?} for {}-D {dims:?}", dims.len()),
            ));
        }
        let strides = contiguous_strides(dims);
        let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        let src_strides: Vec<isize> = perm.iter().map(|&p| strides[p] as isize).collect();
        let out = GpuTensor::output(self, OP, out_dims.clone())?;
        let copy = Strided {
            dims: &out_dims,
            src_offset: 0,
            src_strides: &src_strides,
            dst_offset: 0,
            dst_strides: &contiguous_strides(&out_dims),
        };
        self.strided_copy(OP, x, &out, copy).await?;
        Ok(out)
    }

    /// ONNX Slice, normalized by the caller: one `(start, step, len)` per dim — output dim `i`
    /// takes `len` elements from `start`, `step` apart (negative: backwards).
    pub async fn slice(
        &self,
        x: &GpuTensor,
        ranges: &[(usize, isize, usize)],
    ) -> Result<GpuTensor, GpuError> {
        const OP: &str = "slice";
        let dims = x.dims();
        let bad = || GpuError::shape(OP, format!("ranges {ranges:?} for {dims:?}"));
        if ranges.len() != dims.len() {
            return Err(bad());
        }
        let strides = contiguous_strides(dims);
        let mut src_offset = 0usize;
        let mut src_strides = Vec::with_capacity(dims.len());
        for (d, &(start, step, len)) in ranges.iter().enumerate() {
            if len > 0 {
                // The first and last element taken must both lie inside the dim.
                let last = (len as isize - 1)
                    .checked_mul(step)
                    .and_then(|span| (start as isize).checked_add(span))
                    .ok_or_else(bad)?;
                if start >= dims[d] || last < 0 || last as usize >= dims[d] {
                    return Err(bad());
                }
            }
            src_offset += start.min(dims[d].saturating_sub(1)) * strides[d];
            src_strides.push(step * strides[d] as isize);
        }
        let out_dims: Vec<usize> = ranges.iter().map(|r| r.2).collect();
        let out = GpuTensor::output(self, OP, out_dims.clone())?;
        let copy = Strided {
            dims: &out_dims,
            src_offset,
            src_strides: &src_strides,
            dst_offset: 0,
            dst_strides: &contiguous_strides(&out_dims),
        };
        self.strided_copy(OP, x, &out, copy).await?;
        Ok(out)
    }

    /// ONNX Expand: `x` broadcast with `dims` (numpy rules, both ways: the output is their
    /// broadcast shape).
    pub async fn expand(&self, x: &GpuTensor, dims: &[usize]) -> Result<GpuTensor, GpuError> {
        const OP: &str = "expand";
        let out_dims = broadcast_shape(x.dims(), dims).ok_or_else(|| {
            GpuError::shape(OP, format!("cannot broadcast {:?} to {dims:?}", x.dims()))
        })?;
        let strides = contiguous_strides(x.dims());
        let skip = out_dims.len() - x.dims().len();
        let src_strides: Vec<isize> = (0..out_dims.len())
            .map(|d| match d.checked_sub(skip) {
                Some(j) if x.dims()[j] != 1 => strides[j] as isize,
                _ => 0,
            })
            .collect();
        let out = GpuTensor::output(self, OP, out_dims.clone())?;
        let copy = Strided {
            dims: &out_dims,
            src_offset: 0,
            src_strides: &src_strides,
            dst_offset: 0,
            dst_strides: &contiguous_strides(&out_dims),
        };
        self.strided_copy(OP, x, &out, copy).await?;
        Ok(out)
    }

    /// ONNX Concat along `axis`: the inputs' other dims must agree.
    pub async fn concat(&self, xs: &[&GpuTensor], axis: usize) -> Result<GpuTensor, GpuError> {
        const OP: &str = "concat";
        let Some(first) = xs.first() else {
            return Err(GpuError::shape(OP, "no inputs"));
        };
        let rank = first.dims().len();
        let agree = |x: &&GpuTensor| {
            x.dims().len() == rank && (0..rank).all(|d| d == axis || x.dims()[d] == first.dims()[d])
        };
        if axis >= rank || !xs.iter().all(agree) {
            let all: Vec<&[usize]> = xs.iter().map(|x| x.dims()).collect();
            return Err(GpuError::shape(
                OP,
                format!("cannot concatenate {all:?} along axis {axis}"),
            ));
        }
        let mut out_dims = first.dims().to_vec();
        out_dims[axis] = xs.iter().map(|x| x.dims()[axis]).sum();
        let out = GpuTensor::output(self, OP, out_dims.clone())?;
        let dst_strides = contiguous_strides(&out_dims);
        let mut at = 0;
        for x in xs {
            let src_strides: Vec<isize> = contiguous_strides(x.dims())
                .iter()
                .map(|&s| s as isize)
                .collect();
            let copy = Strided {
                dims: x.dims(),
                src_offset: 0,
                src_strides: &src_strides,
                dst_offset: at * dst_strides[axis],
                dst_strides: &dst_strides,
            };
            self.strided_copy(OP, x, &out, copy).await?;
            at += x.dims()[axis];
        }
        Ok(out)
    }
}
