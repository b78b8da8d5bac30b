//! f32 matrix products for MatMul, Gemm, the fused MatMulAdd and convolutions: `C = A·B (+ a
//! bias per column)`, A and B read through any strides (a transposed operand is never copied
//! first), C row-major. Four-lane vectors ([`V4`]: wasm simd128); a large product is cut into
//! blocks of C that rayon's pool computes at once ([`cut`]), each exactly as one thread would.
//!
//! The shape of it: K is cut in blocks of [`KC`]; for each block, B's columns in panels of
//! [`NR`] = 8 are packed into a small contiguous buffer (zero-padded at the right edge), and
//! every [`MR`]-row strip of A runs the register tile against it: `MR × 8` sums in `2·MR`
//! vectors, each step one broadcast value of A per row times two vectors of B. The first block
//! starts the sums from the bias (or zero), later ones from C. A constant B (a layer's weight)
//! is packed once, at load ([`Packed`]), and its panels read in place; [`sgemm_gather`] reads
//! B's rows in place wherever they lie in one buffer (a stride-1 convolution's padded input),
//! packing nothing.
//!
//! Why not candle's matmul (the `gemm` crate): it has a simd128 kernel too, but it wants
//! contiguous operands (so MatMul copied every transposed input), packs both sides on every
//! call, cannot start from a bias, and measured slower on MiniLM's shapes in V8.

use std::{mem::MaybeUninit, ops::Range};

use rayon::prelude::*;

use super::simd::V4;

/// Rows of A per register tile.
pub const MR: usize = 4;
/// Columns of B per register tile (two vectors).
pub const NR: usize = 8;
/// Depth of a packed block of B: `KC × NR` floats (8 KiB) stay in L1.
pub const KC: usize = 256;

/// A strided matrix: element (i, j) at `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix with `cols` columns.
    #[cfg(test)]
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat { data, rs: cols, cs: 1 }
    }

    /// Whether every element of an `r × c` matrix lies in `data`.
    fn holds(&self, r: usize, c: usize) -> bool {
        r == 0 || c == 0 || (r - 1) * self.rs + (c - 1) * self.cs < self.data.len()
    }
}

/// A bias added to every product: one value per column or one per row.
#[derive(Clone, Copy)]
pub enum Bias<'a> {
    None,
    Cols(&'a [f32]),
    Rows(&'a [f32]),
}

/// An activation applied to the finished sums as they are stored (a fused Conv's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    None,
    Relu,
    /// `min(max(x, lo), hi)`, NaN kept.
    Clip(f32, f32),
    Silu,
}

impl Act {
    #[inline(always)]
    pub fn apply(self, v: V4) -> V4 {
        match self {
            Act::None => v,
            Act::Relu => v.max(V4::splat(0.0)),
            Act::Clip(lo, hi) => v.max(V4::splat(lo)).min(V4::splat(hi)),
            Act::Silu => super::simd::silu(v),
        }
    }

    /// In place over a finished buffer (the paths that do not end in sgemm).
    pub fn apply_all(self, xs: &mut [f32]) {
        if self != Act::None {
            super::simd::map_in_place(xs, |v| self.apply(v));
        }
    }
}

/// The right-hand operand as sgemm reads it: a panel at a time.
pub trait PackB: Sync {
    /// Rows `kb..kb+kc`, columns `j0..j0+cols` into `panel` as `kc` rows of [`NR`], zero past
    /// `cols`.
    fn pack(&self, kb: usize, kc: usize, j0: usize, cols: usize, panel: &mut [f32]);

    /// The panel of rows `kb..` and columns `j0..j0+NR` when it is stored packed already
    /// ([`Packed`]): then sgemm reads it in place instead of calling [`PackB::pack`].
    fn packed(&self, _kb: usize, _j0: usize) -> Option<&[f32]> {
        None
    }
}

/// A right-hand operand packed once (a constant weight, at load): for each panel of [`NR`]
/// columns, all `k` rows of NR values (zero past `n`), so any K block of it is a ready panel.
pub struct Packed {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl Packed {
    /// `b` (`k × n`, any strides) packed panel by panel; `None` when `b` is too short.
    pub fn new(k: usize, n: usize, b: Mat) -> Option<Self> {
        if !b.holds(k, n) {
            return None;
        }
        let mut data = vec![0f32; n.div_ceil(NR) * k * NR];
        for (j0, dst) in (0..n).step_by(NR).zip(data.chunks_exact_mut((k * NR).max(1))) {
            b.pack(0, k, j0, NR.min(n - j0), dst);
        }
        Some(Packed { k, n, data })
    }

    /// Rows (depth) and columns of the packed matrix.
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }
}

impl PackB for Packed {
    fn pack(&self, kb: usize, kc: usize, j0: usize, _cols: usize, panel: &mut [f32]) {
        panel[..kc * NR].copy_from_slice(&self.data[(j0 / NR * self.k + kb) * NR..][..kc * NR]);
    }

    fn packed(&self, kb: usize, j0: usize) -> Option<&[f32]> {
        Some(&self.data[(j0 / NR * self.k + kb) * NR..])
    }
}

impl PackB for Mat<'_> {
    fn pack(&self, kb: usize, kc: usize, j0: usize, cols: usize, panel: &mut [f32]) {
        for (p, dst) in panel.chunks_exact_mut(NR).take(kc).enumerate() {
            let row = (kb + p) * self.rs + j0 * self.cs;
            if self.cs == 1 && cols == NR {
                dst.copy_from_slice(&self.data[row..row + NR]);
            } else {
                for (jj, d) in dst.iter_mut().enumerate() {
                    *d = if jj < cols { self.data[row + jj * self.cs] } else { 0.0 };
                }
            }
        }
    }
}

/// `c[i·ldc + j] = Σ_p a(i, p) · b(p, j) + bias[j]` for an `m × n` result with depth `k`.
///
/// # Panics
/// If an operand is too short for its shape and strides, or `bias` is not `n` long.
pub fn sgemm(m: usize, n: usize, k: usize, a: Mat, b: Mat, bias: Option<&[f32]>, c: &mut [f32], ldc: usize) {
    assert!(b.holds(k, n), "sgemm: operand too short");
    sgemm_packed(m, n, k, a, &b, bias.map_or(Bias::None, Bias::Cols), Act::None, c, ldc)
}

/// [`sgemm`] with any [`PackB`] (which must answer for `k × n`), a row or column bias, and an
/// activation on the results.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_packed(m: usize, n: usize, k: usize, a: Mat, b: &impl PackB, bias: Bias, act: Act, c: &mut [f32], ldc: usize) {
    assert!(a.holds(m, k), "sgemm: operand too short");
    assert!(m == 0 || n == 0 || (m - 1) * ldc + n <= c.len(), "sgemm: output too short");
    match bias {
        Bias::Cols(b) => assert_eq!(b.len(), n, "sgemm: bias length"),
        Bias::Rows(b) => assert_eq!(b.len(), m, "sgemm: bias length"),
        Bias::None => {}
    }
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            let row = &mut c[i * ldc..i * ldc + n];
            match bias {
                Bias::Cols(b) => row.copy_from_slice(b),
                Bias::Rows(b) => row.fill(b[i]),
                Bias::None => row.fill(0.0),
            }
            act.apply_all(row);
        }
        return;
    }
    let out = Out(c.as_mut_ptr());
    // SAFETY (both calls): the asserts above bound every index a block touches (see
    // `packed_block`), and the blocks of a cut are disjoint rectangles of C.
    match cut(1, m, n, k) {
        None => unsafe { packed_block(0..m, 0..n, k, a, b, bias, act, out, ldc) },
        Some(cut) => cut.tasks(1, m, n).for_each(|(_, rows, cols)| unsafe {
            packed_block(rows, cols, k, a, b, bias, act, out, ldc)
        }),
    }
}

/// Rows `rows` and columns `cols` of [`sgemm_packed`]'s product: the same tiles, in the same
/// order, as the whole product runs them (so a cut product is bit-identical).
///
/// # Safety
/// [`sgemm_packed`]'s asserts must hold for the whole product; `rows` ⊆ `0..m` and `cols` ⊆
/// `0..n`, their starts multiples of [`MR`] and [`NR`]; no other thread touches this block of C.
#[allow(clippy::too_many_arguments)]
unsafe fn packed_block(rows: Range<usize>, cols: Range<usize>, k: usize, a: Mat, b: &impl PackB, bias: Bias, act: Act, c: Out, ldc: usize) {
    let mut panel = vec![0f32; if b.packed(0, 0).is_some() { 0 } else { KC.min(k) * NR }];
    let mut edge = [0f32; NR];
    for kb in (0..k).step_by(KC) {
        let kc = KC.min(k - kb);
        for j0 in cols.clone().step_by(NR) {
            let width = NR.min(cols.end - j0);
            let bp = match b.packed(kb, j0) {
                Some(ready) => {
                    assert!(ready.len() >= kc * NR, "sgemm: packed operand too short");
                    ready.as_ptr()
                }
                None => {
                    b.pack(kb, kc, j0, width, &mut panel);
                    panel.as_ptr()
                }
            };
            if let (0, Bias::Cols(bias)) = (kb, bias) {
                edge = [0.0; NR];
                edge[..width].copy_from_slice(&bias[j0..j0 + width]);
            }
            let mut i0 = rows.start;
            while i0 < rows.end {
                let height = MR.min(rows.end - i0);
                let init = match (kb, bias) {
                    (1.., _) => Init::C,
                    (0, Bias::Cols(_)) => Init::Bias(&edge),
                    (0, Bias::Rows(b)) => Init::Rows(&b[i0..i0 + height]),
                    (0, Bias::None) => Init::Zero,
                };
                // SAFETY: the caller's bounds: rows i0..i0+height < m and depth kb..kb+kc ≤ k
                // of A, the packed panel holds kc·NR values, and C's rows i0.. have `width` ≤
                // n - j0 values from j0.
                let at = a.data.as_ptr().add(i0 * a.rs + kb * a.cs);
                let ct = c.0.add(i0 * ldc + j0);
                let act = if kb + kc == k { act } else { Act::None };
                let t = Tile { kc, a: at, ars: a.rs, acs: a.cs, b: Panel(bp), c: ct, ldc, cols: width, act };
                run_tile(&t, height, init);
                i0 += height;
            }
        }
    }
}

/// `c[i·ldc + j] = Σ_p a(i, p) · b[offs[p] + j] (+ bias)`, then `act`, for an `m × n` result
/// with depth `offs.len()`: B's rows lie anywhere in `b`, each contiguous, and are read in
/// place (no packing). A stride-1 convolution's im2col matrix is this over its padded input.
/// `reps` repeats the product with B and C moved along (one output row of a convolution per
/// repetition, so that they are cut across threads together).
/// C may start uninitialised: every `c[r·reps.c + i·ldc + j]` (r < reps.count, i < m, j < n)
/// is written, nothing else touched, nothing read.
///
/// # Panics
/// If an operand is too short: `b` must hold `n` rounded up to [`NR`] values from every offset
/// (plus each repetition's step).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_gather(m: usize, n: usize, a: Mat, b: &[f32], offs: &[usize], reps: Reps, bias: Bias, act: Act, c: &mut [MaybeUninit<f32>], ldc: usize) {
    let k = offs.len();
    let last = reps.count.saturating_sub(1);
    assert!(a.holds(m, k), "sgemm: operand too short");
    assert!(m == 0 || n == 0 || reps.count == 0 || last * reps.c + (m - 1) * ldc + n <= c.len(), "sgemm: output too short");
    assert!(n == 0 || reps.count == 0 || offs.iter().all(|&o| last * reps.b + o + n.next_multiple_of(NR) <= b.len()), "sgemm: operand too short");
    match bias {
        Bias::Cols(b) => assert_eq!(b.len(), n, "sgemm: bias length"),
        Bias::Rows(b) => assert_eq!(b.len(), m, "sgemm: bias length"),
        Bias::None => {}
    }
    let out = Out(c.as_mut_ptr().cast::<f32>());
    let run = |r: usize, rows: Range<usize>, cols: Range<usize>| {
        // SAFETY: the asserts above bound every index of every repetition (see `gather_block`),
        // and the blocks of a cut are disjoint rectangles of C.
        unsafe { gather_block(rows, cols, a, b.as_ptr().add(r * reps.b), offs, bias, act, out.add(r * reps.c), ldc) }
    };
    match cut(reps.count, m, n, k) {
        None => (0..reps.count).for_each(|r| run(r, 0..m, 0..n)),
        Some(cut) => cut.tasks(reps.count, m, n).for_each(|(r, rows, cols)| run(r, rows, cols)),
    }
}

/// How [`sgemm_gather`] repeats its product: `count` times, B's rows `b` values and C `c`
/// values further each time.
#[derive(Clone, Copy)]
pub struct Reps {
    pub count: usize,
    pub b: usize,
    pub c: usize,
}

impl Reps {
    #[cfg(test)]
    pub const ONCE: Reps = Reps { count: 1, b: 0, c: 0 };
}

/// Rows `rows` and columns `cols` of one [`sgemm_gather`] product, B's rows from `b`.
///
/// # Safety
/// `a` holds `rows.end × offs.len()`; `b` is readable `n` rounded up to [`NR`] values from
/// every offset; `c` writable at `i·ldc + j` in the block; no other thread writes there.
#[allow(clippy::too_many_arguments)]
unsafe fn gather_block(rows: Range<usize>, cols: Range<usize>, a: Mat, b: *const f32, offs: &[usize], bias: Bias, act: Act, c: Out, ldc: usize) {
    let k = offs.len();
    let mut edge = [0f32; NR];
    for j0 in cols.clone().step_by(NR) {
        let width = NR.min(cols.end - j0);
        if let Bias::Cols(bias) = bias {
            edge = [0.0; NR];
            edge[..width].copy_from_slice(&bias[j0..j0 + width]);
        }
        let mut i0 = rows.start;
        while i0 < rows.end {
            let height = MR.min(rows.end - i0);
            let init = match bias {
                Bias::Cols(_) => Init::Bias(&edge),
                Bias::Rows(b) => Init::Rows(&b[i0..i0 + height]),
                Bias::None => Init::Zero,
            };
            // SAFETY: the caller's bounds: rows i0..i0+height and depth < k of A, NR values from
            // every offset + j0 of B, and C's rows i0.. have `width` values from j0 (only
            // written: the init is never `Init::C`).
            let g = Gather { base: b.add(j0), offs: offs.as_ptr() };
            let ct = c.0.add(i0 * ldc + j0);
            let t = Tile { kc: k, a: a.data.as_ptr().add(i0 * a.rs), ars: a.rs, acs: a.cs, b: g, c: ct, ldc, cols: width, act };
            run_tile(&t, height, init);
            i0 += height;
        }
    }
}

/// Multiply-adds below which a product stays on the calling thread: waking the pool costs
/// tens of microseconds in a browser, about what 2^18 of them take on one core.
const PAR_MIN: usize = 1 << 18;
/// Multiply-adds a task should have at least (fewer, larger tasks when the product is small).
const TASK_MIN: usize = 1 << 16;

/// C shared by the tasks of one product, each writing only its own block.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: the tasks of a cut write disjoint blocks of C (see `Cut`), and the product returns
// only once every task is done.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// `count` values further (a method, so that closures capture the whole `Out`, not the
    /// pointer inside it).
    ///
    /// # Safety
    /// As `pointer::add`.
    unsafe fn add(self, count: usize) -> Out {
        Out(self.0.add(count))
    }
}

/// How a product (repeated `count` times) is cut across the thread pool: repetitions per
/// task, then rows (a multiple of [`MR`]) and columns (a multiple of [`NR`], so every task
/// packs whole panels) of each.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cut {
    reps: usize,
    rows: usize,
    cols: usize,
}

/// Whether `work` multiply-adds are worth sharing across the pool (callers that run many small
/// products, one per batch, share them out whole).
pub fn worth_sharing(work: usize) -> bool {
    work >= PAR_MIN && rayon::current_num_threads() > 1
}

/// `None` when the work is too small to share or there is one thread (the single-threaded
/// wasm build: then rayon is never entered).
fn cut(count: usize, m: usize, n: usize, k: usize) -> Option<Cut> {
    let work = count.saturating_mul(m).saturating_mul(n).saturating_mul(k);
    if work < PAR_MIN {
        return None;
    }
    plan_cut(count, m, n, work, rayon::current_num_threads())
}

/// About four tasks per thread (so a slow one does not hold the rest up), each of at least
/// [`TASK_MIN`]: repetitions are cut first, then columns (each task then packs only its own
/// panels of B), then rows.
fn plan_cut(count: usize, m: usize, n: usize, work: usize, threads: usize) -> Option<Cut> {
    let tasks = (work / TASK_MIN).min(threads * 4);
    if threads < 2 || tasks < 2 {
        return None;
    }
    let rb = count.min(tasks);
    let left = tasks.div_ceil(rb);
    let (panels, strips) = (n.div_ceil(NR), m.div_ceil(MR));
    let nb = panels.min(left);
    let mb = strips.min(left.div_ceil(nb));
    Some(Cut {
        reps: count.div_ceil(rb),
        rows: strips.div_ceil(mb) * MR,
        cols: panels.div_ceil(nb) * NR,
    })
}

impl Cut {
    /// Every task as (repetition, rows, columns), in parallel.
    fn tasks(self, count: usize, m: usize, n: usize) -> impl ParallelIterator<Item = (usize, Range<usize>, Range<usize>)> {
        let (rb, mb, nb) = (count.div_ceil(self.reps), m.div_ceil(self.rows), n.div_ceil(self.cols));
        (0..rb * mb * nb).into_par_iter().flat_map_iter(move |t| {
            let (r, i, j) = (t / (mb * nb), t / nb % mb, t % nb);
            let rows = i * self.rows..(m.min((i + 1) * self.rows));
            let cols = j * self.cols..(n.min((j + 1) * self.cols));
            (r * self.reps..count.min((r + 1) * self.reps)).map(move |r| (r, rows.clone(), cols.clone()))
        })
    }
}

/// Runs tile `t` of `rows` rows; a tile of at most 4 columns (a ragged right edge) computes
/// one vector per row instead of two.
///
/// # Safety
/// As [`Tile::run`].
#[inline(always)]
unsafe fn run_tile<B: BRows>(t: &Tile<B>, rows: usize, init: Init) {
    match (rows, t.cols <= 4) {
        (4, false) => t.run::<4>(init),
        (3, false) => t.run::<3>(init),
        (2, false) => t.run::<2>(init),
        (_, false) => t.run::<1>(init),
        (4, true) => t.run_half::<4>(init),
        (3, true) => t.run_half::<3>(init),
        (2, true) => t.run_half::<2>(init),
        (_, true) => t.run_half::<1>(init),
    }
}

/// Where a tile's sums start.
#[derive(Clone, Copy)]
enum Init<'a> {
    Zero,
    Bias(&'a [f32; NR]),
    /// One value per row of the tile.
    Rows(&'a [f32]),
    C,
}

/// Where a tile reads row `p` of its B block: [`NR`] contiguous values.
trait BRows: Copy {
    /// # Safety
    /// `p` must be below the tile's depth, whose rows the caller made readable.
    unsafe fn row(self, p: usize) -> *const f32;
}

/// A packed panel: row `p` at `p · NR`.
#[derive(Clone, Copy)]
struct Panel(*const f32);

impl BRows for Panel {
    #[inline(always)]
    unsafe fn row(self, p: usize) -> *const f32 {
        self.0.add(p * NR)
    }
}

/// Rows anywhere in one buffer: row `p` at `base + offs[p]` (the im2col rows of a stride-1
/// convolution, read from the padded input in place).
#[derive(Clone, Copy)]
struct Gather {
    base: *const f32,
    offs: *const usize,
}

impl BRows for Gather {
    #[inline(always)]
    unsafe fn row(self, p: usize) -> *const f32 {
        self.base.add(*self.offs.add(p))
    }
}

/// One register tile: up to MR rows of A from `a`, B's rows from `b`, `cols` columns of C.
struct Tile<B: BRows> {
    kc: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    b: B,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    /// Applied as the sums are stored (the last K block only).
    act: Act,
}

impl<B: BRows> Tile<B> {
    /// [`Tile::run`] for `cols` ≤ 4: the first vector of each row only (the same sums, in the
    /// same order, lane for lane).
    ///
    /// # Safety
    /// As [`Tile::run`]; B's rows need only 4 readable values.
    #[inline(always)]
    unsafe fn run_half<const R: usize>(&self, init: Init) {
        let mut acc = [V4::splat(0.0); R];
        let mut edge = [0f32; 4];
        match init {
            Init::Zero => {}
            Init::Bias(bias) => acc = [V4::load(&bias[..4]); R],
            Init::Rows(rows) => {
                for (acc, &v) in acc.iter_mut().zip(rows) {
                    *acc = V4::splat(v);
                }
            }
            Init::C => {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = self.c.add(r * self.ldc);
                    edge[..self.cols].copy_from_slice(std::slice::from_raw_parts(row, self.cols));
                    *acc = V4::load(&edge);
                }
            }
        }
        let mut a = self.a;
        for p in 0..self.kc {
            let b0 = V4::load_ptr(self.b.row(p));
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = acc.add(V4::splat(*a.add(r * self.ars)).mul(b0));
            }
            a = a.add(self.acs);
        }
        for (r, acc) in acc.iter().enumerate() {
            let row = self.c.add(r * self.ldc);
            let v = self.act.apply(*acc);
            if self.cols == 4 {
                v.store_ptr(row);
            } else {
                v.store(&mut edge);
                std::ptr::copy_nonoverlapping(edge.as_ptr(), row, self.cols);
            }
        }
    }

    /// # Safety
    /// `a` must be readable at `r·ars + p·acs` for r < R, p < kc; `b`'s rows p < kc; `c`
    /// writable (and readable, for [`Init::C`]) at `r·ldc + j` for r < R, j < cols.
    #[inline(always)]
    unsafe fn run<const R: usize>(&self, init: Init) {
        let zero = V4::splat(0.0);
        let mut acc = [[zero; 2]; R];
        let mut edge = [0f32; NR];
        match init {
            Init::Zero => {}
            Init::Bias(bias) => {
                let (b0, b1) = (V4::load(&bias[..4]), V4::load(&bias[4..]));
                acc.iter_mut().for_each(|r| *r = [b0, b1]);
            }
            Init::Rows(rows) => {
                for (acc, &v) in acc.iter_mut().zip(rows) {
                    *acc = [V4::splat(v); 2];
                }
            }
            Init::C => {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = self.c.add(r * self.ldc);
                    if self.cols == NR {
                        *acc = [V4::load_ptr(row), V4::load_ptr(row.add(4))];
                    } else {
                        edge[..self.cols].copy_from_slice(std::slice::from_raw_parts(row, self.cols));
                        *acc = [V4::load(&edge[..4]), V4::load(&edge[4..])];
                    }
                }
            }
        }
        let mut a = self.a;
        for p in 0..self.kc {
            let b = self.b.row(p);
            let (b0, b1) = (V4::load_ptr(b), V4::load_ptr(b.add(4)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = V4::splat(*a.add(r * self.ars));
                acc[0] = acc[0].add(x.mul(b0));
                acc[1] = acc[1].add(x.mul(b1));
            }
            a = a.add(self.acs);
        }
        if self.act != Act::None {
            for acc in acc.iter_mut() {
                *acc = [self.act.apply(acc[0]), self.act.apply(acc[1])];
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let row = self.c.add(r * self.ldc);
            if self.cols == NR {
                acc[0].store_ptr(row);
                acc[1].store_ptr(row.add(4));
            } else {
                acc[0].store(&mut edge[..4]);
                acc[1].store(&mut edge[4..]);
                std::ptr::copy_nonoverlapping(edge.as_ptr(), row, self.cols);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: Mat, b: Mat, bias: Option<&[f32]>) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|p| a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64).sum();
                c[i * n + j] = s as f32 + bias.map_or(0.0, |b| b[j]);
            }
        }
        c
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 201) as f32 / 100.0 - 1.0).collect()
    }

    #[test]
    fn matches_the_naive_product_for_ragged_shapes_strides_and_bias() {
        for &(m, n, k) in &[(1, 1, 1), (5, 9, 3), (4, 8, 256), (7, 17, 300), (13, 3, 600), (2, 33, 1)] {
            let (av, bv) = (values(m * k, 1), values(k * n, 2));
            let bias = values(n, 3);
            // A row-major, B row-major.
            let (a, b) = (Mat::rows(&av, k), Mat::rows(&bv, n));
            let mut c = vec![f32::NAN; m * n];
            sgemm(m, n, k, a, b, Some(&bias), &mut c, n);
            let want = naive(m, n, k, a, b, Some(&bias));
            for (g, w) in c.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4 * (1.0 + w.abs()), "{m}×{n}×{k}: {g} vs {w}");
            }
            // Both transposed (column-major), no bias, into a wider C.
            let (a, b) = (Mat { data: &av, rs: 1, cs: m }, Mat { data: &bv, rs: 1, cs: k });
            let mut c = vec![f32::NAN; m * (n + 2)];
            sgemm(m, n, k, a, b, None, &mut c, n + 2);
            let want = naive(m, n, k, a, b, None);
            for i in 0..m {
                for j in 0..n {
                    let (g, w) = (c[i * (n + 2) + j], want[i * n + j]);
                    assert!((g - w).abs() < 1e-4 * (1.0 + w.abs()), "{m}×{n}×{k}ᵀ: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn row_bias_starts_each_row() {
        let (m, n, k) = (6, 11, 5);
        let (av, bv, bias) = (values(m * k, 4), values(k * n, 5), values(m, 6));
        let mut c = vec![0f32; m * n];
        sgemm_packed(m, n, k, Mat::rows(&av, k), &Mat::rows(&bv, n), Bias::Rows(&bias), Act::Relu, &mut c, n);
        let want = naive(m, n, k, Mat::rows(&av, k), Mat::rows(&bv, n), None);
        for (i, (g, w)) in c.iter().zip(&want).enumerate() {
            assert!((g - (w + bias[i / n]).max(0.0)).abs() < 1e-5);
        }
    }

    #[test]
    fn packed_operand_matches_packing_on_each_call() {
        for &(m, n, k) in &[(3, 17, 300), (8, 128, 784), (1, 5, 2)] {
            let (av, bv, bias) = (values(m * k, 7), values(k * n, 8), values(n, 9));
            // B transposed (a weight read with transB).
            let b = Mat { data: &bv, rs: 1, cs: k };
            let packed = Packed::new(k, n, b).unwrap();
            let (mut got, mut want) = (vec![0f32; m * n], vec![0f32; m * n]);
            sgemm_packed(m, n, k, Mat::rows(&av, k), &packed, Bias::Cols(&bias), Act::Relu, &mut got, n);
            sgemm_packed(m, n, k, Mat::rows(&av, k), &b, Bias::Cols(&bias), Act::Relu, &mut want, n);
            assert_eq!(got, want, "{m}×{n}×{k}");
        }
        assert!(Packed::new(4, 4, Mat::rows(&[0.0; 15], 4)).is_none(), "too short");
    }

    #[test]
    fn gather_reads_rows_at_their_offsets() {
        // B's row p is b[offs[p]..][..n]: rows overlap and come in any order.
        let (m, n) = (7, 19);
        let b = values(120, 10);
        let offs = [5, 0, 60, 3, 44, 77, 12];
        let k = offs.len();
        let (av, bias) = (values(m * k, 11), values(m, 12));
        let rows: Vec<f32> = offs.iter().flat_map(|&o| b[o..o + n].to_vec()).collect();
        let want = naive(m, n, k, Mat::rows(&av, k), Mat::rows(&rows, n), None);
        let mut c = vec![MaybeUninit::new(f32::NAN); m * (n + 3)];
        sgemm_gather(m, n, Mat::rows(&av, k), &b, &offs, Reps::ONCE, Bias::Rows(&bias), Act::None, &mut c, n + 3);
        // SAFETY: every element was initialised above (NaN) and the written ones are f32s.
        let c: Vec<f32> = c.into_iter().map(|v| unsafe { v.assume_init() }).collect();
        for i in 0..m {
            for j in 0..n {
                let (g, w) = (c[i * (n + 3) + j], want[i * n + j] + bias[i]);
                assert!((g - w).abs() < 1e-5, "({i}, {j}): {g} vs {w}");
            }
            assert!(c[i * (n + 3) + n].is_nan(), "nothing written past n");
        }
    }

    /// `f` on a pool of `threads` threads (a cut depends on the pool it runs in).
    fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
    }

    #[test]
    fn a_cut_product_is_bit_identical_to_one_thread() {
        // Ragged in every direction, deeper than one K block; B packed per call and at load.
        let (m, n, k) = (45, 203, 300);
        let (av, bv, bias) = (values(m * k, 13), values(k * n, 14), values(n, 15));
        let (a, b) = (Mat::rows(&av, k), Mat::rows(&bv, n));
        let packed = Packed::new(k, n, b).unwrap();
        let run = |threads| {
            on_threads(threads, || {
                assert_eq!(cut(1, m, n, k).is_some(), threads > 1);
                let (mut c, mut p) = (vec![0f32; m * n], vec![0f32; m * n]);
                sgemm_packed(m, n, k, a, &b, Bias::Cols(&bias), Act::Silu, &mut c, n);
                sgemm_packed(m, n, k, a, &packed, Bias::Cols(&bias), Act::Silu, &mut p, n);
                (c, p)
            })
        };
        let (one, many) = (run(1), run(4));
        assert_eq!(one, many);
        assert_eq!(one.0, one.1);
    }

    #[test]
    fn a_cut_gather_is_bit_identical_to_one_thread() {
        // A 3×3 stride-1 convolution over a 40×40 plane (padded to 42×42): 40 repetitions, one per
        // output row, each B shifted one padded row down.
        let (ch, side, m) = (6, 42, 20);
        let plane = values(ch * side * side + NR, 16);
        let offs: Vec<usize> = (0..ch).flat_map(|c| (0..3).flat_map(move |y| (0..3).map(move |x| (c * side + y) * side + x))).collect();
        let k = offs.len();
        let (av, bias) = (values(m * k, 17), values(m, 18));
        let reps = Reps { count: 40, b: side, c: 40 };
        let run = |threads| {
            on_threads(threads, || {
                let mut c = vec![MaybeUninit::new(f32::NAN); m * 40 * 40];
                sgemm_gather(m, 40, Mat::rows(&av, k), &plane, &offs, reps, Bias::Rows(&bias), Act::Relu, &mut c, 1600);
                // SAFETY: every element was initialised above and is an f32.
                c.into_iter().map(|v| unsafe { v.assume_init() }).collect::<Vec<f32>>()
            })
        };
        let one = run(1);
        assert!(one.iter().all(|v| !v.is_nan()), "every value written");
        assert_eq!(one, run(3));
        // Output row 7 is the unrepeated product over B moved 7 rows down.
        let mut row = vec![MaybeUninit::new(0f32); m * 1600];
        sgemm_gather(m, 40, Mat::rows(&av, k), &plane[7 * side..], &offs, Reps::ONCE, Bias::Rows(&bias), Act::Relu, &mut row[7 * 40..], 1600);
        for i in 0..m {
            // SAFETY: written just above.
            let got: Vec<f32> = row[i * 1600 + 280..][..40].iter().map(|v| unsafe { v.assume_init() }).collect();
            assert_eq!(got, one[i * 1600 + 280..][..40]);
        }
    }

    #[test]
    fn cuts_share_the_work_in_aligned_blocks() {
        // Too little work or one thread: no cut.
        assert_eq!(plan_cut(1, 8, 8, 1 << 12, 8), None);
        assert_eq!(plan_cut(1, 512, 512, 1 << 30, 1), None);
        // Columns first, in whole panels; rows in whole strips.
        let c = plan_cut(1, 64, 1000, 64 * 1000 * 256, 4).unwrap();
        assert_eq!((c.reps, c.rows % MR, c.cols % NR), (1, 0, 0));
        assert_eq!((c.rows, c.cols), (64, 64));
        // Repetitions first.
        let c = plan_cut(100, 16, 16, 100 * 16 * 16 * 256, 2).unwrap();
        assert_eq!((c.reps, c.rows, c.cols), (13, 16, 16));
        // Every task of a cut, taken together, covers C once.
        let (m, n) = (45, 203);
        let c = plan_cut(3, m, n, 3 * m * n * 300, 4).unwrap();
        let mut seen = vec![0u8; 3 * m * n];
        for (r, rows, cols) in c.tasks(3, m, n).collect::<Vec<_>>() {
            for i in rows {
                for j in cols.clone() {
                    seen[(r * m + i) * n + j] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
    }

    #[test]
    fn zero_depth_gives_the_bias() {
        let mut c = vec![1f32; 6];
        sgemm(2, 3, 0, Mat::rows(&[], 0), Mat::rows(&[], 3), Some(&[1., 2., 3.]), &mut c, 3);
        assert_eq!(c, vec![1., 2., 3., 1., 2., 3.]);
    }
}
