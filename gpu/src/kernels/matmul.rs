//! ONNX MatMul (numpy semantics: batch dims broadcast, 1-D operands promoted then squeezed) and
//! Gemm (`alpha·op(A)·op(B) + beta·C`), f32 — or f16 where the device has shader-f16 (f16
//! operands and output, f32 sums: the same WGSL with another element type) — tiled in workgroup
//! memory (`matmul.wgsl`) or register-blocked (`matmul_blocked.wgsl`).

use super::{check_groups, contiguous_strides, fit, launch};
use crate::kernels::binary::broadcast_shape;
use crate::{Element, Gpu, GpuError, GpuTensor};

/// The element type every operand shares (mixed f32 and f16 is refused).
fn same_element(
    op: &'static str,
    a: &GpuTensor,
    b: &GpuTensor,
    c: Option<&GpuTensor>,
) -> Result<Element, GpuError> {
    let e = a.element();
    if b.element() != e || c.is_some_and(|c| c.element() != e) {
        return Err(GpuError::shape(
            op,
            "operands of mixed element types (f32 and f16)",
        ));
    }
    Ok(e)
}

/// The small-matrix pipeline's workgroup: TILE×TILE invocations, one per element of a block.
pub const TILE: u32 = 16;
/// The blocked pipeline's workgroup: THREADS×THREADS invocations, 4×4 elements each, so a
/// BLOCK×BLOCK block; KT is the reduction step staged in workgroup memory.
pub const THREADS: u32 = 8;
pub const BLOCK: u32 = 4 * THREADS;
pub const KT: u32 = 16;
/// Matrices with M and N both at least this take the blocked pipeline: below, most of its
/// 32×32 block would be padding (attention's per-head products over a few tokens).
pub const BLOCKED_FROM: u32 = 24;
/// The most batch dims a MatMul operand may have (so 6-D operands at most).
pub const MAX_BATCH_RANK: usize = 4;

/// The operands' element type in WGSL: f32, or f16 (needs the device's shader-f16).
fn element(f16: bool) -> &'static str {
    if f16 {
        "enable f16;\nalias T = f16;\n"
    } else {
        "alias T = f32;\n"
    }
}

pub(crate) fn source(f16: bool) -> String {
    format!(
        "{}const TILE: u32 = {TILE}u;\n{}{}",
        element(f16),
        include_str!("matmul_common.wgsl"),
        include_str!("matmul.wgsl")
    )
}

pub(crate) fn blocked_source(f16: bool) -> String {
    format!(
        "{}const THREADS: u32 = {THREADS}u;\nconst BLOCK: u32 = {BLOCK}u;\nconst KT: u32 = {KT}u;\n{}{}",
        element(f16),
        include_str!("matmul_common.wgsl"),
        include_str!("matmul_blocked.wgsl")
    )
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    m: u32,
    k: u32,
    n: u32,
    /// Workgroup rows per matrix: y = batch × m_tiles + tile row (set by `run_matmul`).
    m_tiles: u32,
    trans_a: u32,
    trans_b: u32,
    alpha: f32,
    beta: f32,
    /// C's strides along M and N (0 where broadcast); `has_c` 0 means no C.
    c_row: u32,
    c_col: u32,
    has_c: u32,
    pad: u32,
    /// The output's batch dims right-aligned to MAX_BATCH_RANK, and each operand's strides
    /// along them (0 where broadcast).
    batch: [u32; 4],
    a_batch: [u32; 4],
    b_batch: [u32; 4],
}

/// Strides of an operand's batch dims `dims` right-aligned to MAX_BATCH_RANK, in elements,
/// 0 along size-1 dims; one matrix is `matrix` elements.
fn batch_strides(dims: &[usize], matrix: usize) -> Result<[u32; 4], GpuError> {
    let mut strides = [0u32; 4];
    let mut stride = matrix;
    for (i, &size) in dims.iter().enumerate().rev() {
        if size != 1 {
            strides[MAX_BATCH_RANK - dims.len() + i] = fit("matmul", stride)?;
        }
        stride *= size;
    }
    Ok(strides)
}

impl Gpu {
    /// numpy's matmul: `a` `[..., M, K]` × `b` `[..., K, N]` → `[..., M, N]`, the batch dims
    /// broadcast (at most 4 of them). A 1-D `a` is `[1, K]` and a 1-D `b` is `[K, 1]`, that dim
    /// then dropped from the output.
    pub async fn matmul(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor, GpuError> {
        const OP: &str = "matmul";
        let bad = || {
            GpuError::shape(
                OP,
                format!("cannot multiply {:?} × {:?}", a.dims(), b.dims()),
            )
        };
        let (ad, bd) = (a.dims(), b.dims());
        if ad.is_empty() || bd.is_empty() {
            return Err(bad());
        }
        // Promote 1-D operands to matrices; remember to drop the promoted dim.
        let a_dims: Vec<usize> = if ad.len() == 1 {
            vec![1, ad[0]]
        } else {
            ad.to_vec()
        };
        let b_dims: Vec<usize> = if bd.len() == 1 {
            vec![bd[0], 1]
        } else {
            bd.to_vec()
        };
        let (a_batch, a_mat) = a_dims.split_at(a_dims.len() - 2);
        let (b_batch, b_mat) = b_dims.split_at(b_dims.len() - 2);
        let (m, k, n) = (a_mat[0], a_mat[1], b_mat[1]);
        if b_mat[0] != k {
            return Err(bad());
        }
        let batch = broadcast_shape(a_batch, b_batch).ok_or_else(bad)?;
        if batch.len() > MAX_BATCH_RANK {
            return Err(GpuError::shape(
                OP,
                format!("{} batch dims; at most {MAX_BATCH_RANK}", batch.len()),
            ));
        }
        let mut out_dims = batch.clone();
        if ad.len() > 1 {
            out_dims.push(m);
        }
        if bd.len() > 1 {
            out_dims.push(n);
        }
        let mut batch_dims = [1u32; 4];
        for (i, &size) in batch.iter().enumerate() {
            batch_dims[MAX_BATCH_RANK - batch.len() + i] = fit(OP, size)?;
        }
        let dims = Dims {
            m: fit(OP, m)?,
            k: fit(OP, k)?,
            n: fit(OP, n)?,
            m_tiles: 0,
            trans_a: 0,
            trans_b: 0,
            alpha: 1.0,
            beta: 0.0,
            c_row: 0,
            c_col: 0,
            has_c: 0,
            pad: 0,
            batch: batch_dims,
            a_batch: batch_strides(a_batch, m * k)?,
            b_batch: batch_strides(b_batch, k * n)?,
        };
        let batches: usize = batch.iter().product();
        let out = GpuTensor::output_of(self, OP, out_dims, same_element(OP, a, b, None)?)?;
        self.run_matmul(OP, dims, batches, a, b, None, &out).await?;
        Ok(out)
    }

    /// ONNX Gemm: `alpha · op(a) · op(b) + beta · c`, `op` transposing when `trans_*` is set;
    /// `a`, `b` 2-D, `c` (if any) unidirectionally broadcast to `[M, N]`.
    #[allow(clippy::too_many_arguments)]
    pub async fn gemm(
        &self,
        a: &GpuTensor,
        b: &GpuTensor,
        c: Option<&GpuTensor>,
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
    ) -> Result<GpuTensor, GpuError> {
        const OP: &str = "gemm";
        let (&[a0, a1], &[b0, b1]) = (a.dims(), b.dims()) else {
            return Err(GpuError::shape(
                OP,
                format!("needs 2-D A and B, got {:?} × {:?}", a.dims(), b.dims()),
            ));
        };
        let (m, k) = if trans_a { (a1, a0) } else { (a0, a1) };
        let (kb, n) = if trans_b { (b1, b0) } else { (b0, b1) };
        if k != kb {
            return Err(GpuError::shape(
                OP,
                format!(
                    "inner dims differ: {:?}{} × {:?}{}",
                    a.dims(),
                    if trans_a { "ᵀ" } else { "" },
                    b.dims(),
                    if trans_b { "ᵀ" } else { "" }
                ),
            ));
        }
        // C broadcasts to [M, N]: right-aligned, each dim equal or 1.
        let (c_row, c_col) = match c {
            None => (0, 0),
            Some(c) => {
                let cd = c.dims();
                let fits =
                    cd.len() <= 2 && broadcast_shape(cd, &[m, n]).is_some_and(|s| s == [m, n]);
                if !fits {
                    return Err(GpuError::shape(
                        OP,
                        format!("C {cd:?} does not broadcast to [{m}, {n}]"),
                    ));
                }
                let strides = contiguous_strides(cd);
                let along = |back: usize| {
                    cd.len()
                        .checked_sub(back)
                        .filter(|&d| cd[d] != 1)
                        .map_or(0, |d| strides[d])
                };
                (fit(OP, along(2))?, fit(OP, along(1))?)
            }
        };
        let dims = Dims {
            m: fit(OP, m)?,
            k: fit(OP, k)?,
            n: fit(OP, n)?,
            m_tiles: 0,
            trans_a: u32::from(trans_a),
            trans_b: u32::from(trans_b),
            alpha,
            beta,
            c_row,
            c_col,
            has_c: u32::from(c.is_some()),
            pad: 0,
            batch: [1; 4],
            a_batch: [0; 4],
            b_batch: [0; 4],
        };
        let out = GpuTensor::output_of(self, OP, vec![m, n], same_element(OP, a, b, c)?)?;
        self.run_matmul(OP, dims, 1, a, b, c, &out).await?;
        Ok(out)
    }

    /// A pointwise convolution (1×1 kernel, stride 1, no padding, one group) as the product
    /// `w [M, C] × x[i] [C, H·W] (+ bias [M] along rows)` for each image `i` into `out`
    /// `[N, M, H, W]`, when the blocked pipeline takes it (M and H·W at least BLOCKED_FROM):
    /// returns false, having done nothing, when it does not.
    pub(crate) async fn pointwise_conv(
        &self,
        x: &GpuTensor,
        w: &GpuTensor,
        bias: Option<&GpuTensor>,
        out: &GpuTensor,
    ) -> Result<bool, GpuError> {
        const OP: &str = "conv2d";
        let (&[n, c, h, wd], &[m, ..]) = (x.dims(), w.dims()) else {
            return Ok(false);
        };
        let pixels = h * wd;
        if m < BLOCKED_FROM as usize || pixels < BLOCKED_FROM as usize {
            return Ok(false);
        }
        let dims = Dims {
            m: fit(OP, m)?,
            k: fit(OP, c)?,
            n: fit(OP, pixels)?,
            m_tiles: 0,
            trans_a: 0,
            trans_b: 0,
            alpha: 1.0,
            beta: 1.0,
            // The bias is C broadcast along each row.
            c_row: 1,
            c_col: 0,
            has_c: u32::from(bias.is_some()),
            pad: 0,
            batch: [1, 1, 1, fit(OP, n)?],
            a_batch: [0; 4],
            b_batch: batch_strides(&[n], c * pixels)?,
        };
        self.run_matmul(OP, dims, n, w, x, bias, out).await?;
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_matmul(
        &self,
        op: &'static str,
        mut dims: Dims,
        mut batches: usize,
        a: &GpuTensor,
        b: &GpuTensor,
        c: Option<&GpuTensor>,
        out: &GpuTensor,
    ) -> Result<(), GpuError> {
        if out.is_empty() {
            return Ok(());
        }
        // One B for every batch and A's matrices back to back (MatMul of activations by a
        // weight): the batches are one taller matrix, so its blocks are full.
        let a_contiguous = (0..MAX_BATCH_RANK)
            .rev()
            .try_fold(dims.m * dims.k, |stride, d| {
                (dims.batch[d] == 1 || dims.a_batch[d] == stride).then(|| stride * dims.batch[d])
            });
        if batches > 1 && dims.b_batch == [0; 4] && dims.trans_a == 0 && a_contiguous.is_some() {
            dims.m = fit(op, dims.m as usize * batches)?;
            dims.batch = [1; 4];
            dims.a_batch = [0; 4];
            batches = 1;
        }
        let [small, blocked] = match same_element(op, a, b, c)? {
            Element::F32 => [&self.kernels.matmul, &self.kernels.matmul_blocked],
            Element::F16 => match &self.kernels.matmul_f16 {
                Some([small, blocked]) => [small, blocked],
                None => {
                    return Err(GpuError::shape(
                        op,
                        "f16 operands, but the device has no shader-f16",
                    ))
                }
            },
        };
        let (pipeline, block) = if dims.m >= BLOCKED_FROM && dims.n >= BLOCKED_FROM {
            (blocked, BLOCK)
        } else {
            (small, TILE)
        };
        dims.m_tiles = dims.m.div_ceil(block);
        let groups_x = check_groups(self, op, u64::from(dims.n.div_ceil(block)))?;
        let groups_y = check_groups(self, op, u64::from(dims.m_tiles) * batches as u64)?;
        // Without C the binding still needs a buffer; the shader never reads it.
        let c = c.map_or(&a.buffer, |c| &c.buffer);
        launch(
            self,
            op,
            pipeline,
            &[&a.buffer, &b.buffer, c, &out.buffer],
            &dims,
            (groups_x, groups_y),
        )
    }
}
