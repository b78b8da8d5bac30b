//! MatMul `[M,K] × [K,N] → [M,N]`, f32, tiled in workgroup memory (`matmul.wgsl`).

use super::{check_groups, dispatch, uniform};
use crate::{Gpu, GpuError, GpuTensor};

/// The workgroup is TILE×TILE invocations, one per element of a block of C.
pub const TILE: u32 = 16;

pub(crate) fn source() -> String {
    format!(
        "const TILE: u32 = {TILE}u;\n{}",
        include_str!("matmul.wgsl")
    )
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    m: u32,
    k: u32,
    n: u32,
    pad: u32,
}

impl Gpu {
    /// `a` `[M,K]` × `b` `[K,N]`.
    pub async fn matmul(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor, GpuError> {
        const OP: &str = "matmul";
        let (&[m, k], &[kb, n]) = (a.dims(), b.dims()) else {
            return Err(GpuError::shape(
                OP,
                format!("needs 2-D operands, got {:?} × {:?}", a.dims(), b.dims()),
            ));
        };
        if k != kb {
            return Err(GpuError::shape(
                OP,
                format!("inner dims differ: {:?} × {:?}", a.dims(), b.dims()),
            ));
        }
        let fits = |x: usize| u32::try_from(x).map_err(|_| GpuError::shape(OP, "dim over u32"));
        let dims = Dims {
            m: fits(m)?,
            k: fits(k)?,
            n: fits(n)?,
            pad: 0,
        };
        let groups_x = check_groups(self, OP, u64::from(dims.n.div_ceil(TILE)))?;
        let groups_y = check_groups(self, OP, u64::from(dims.m.div_ceil(TILE)))?;
        let c = GpuTensor::output(self, OP, vec![m, n]).await?;
        self.scoped(OP, || {
            let params = uniform(self, &dims);
            dispatch(
                self,
                &self.kernels.matmul,
                &[&a.buffer, &b.buffer, &c.buffer, &params],
                (groups_x, groups_y),
            );
        })
        .await?;
        Ok(c)
    }
}
