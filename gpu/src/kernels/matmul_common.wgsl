// What both MatMul pipelines share (matmul.rs prepends it): the uniform and the bindings.
// T, the operands' element type, is prepended too: f32, or f16 where the device has shader-f16
// (then the sums are still made in f32).
// out[M,N] = alpha · op(A)[M,K] × op(B)[K,N] (+ beta · C), row-major, batched: workgroup y
// counts batch × m_tiles + tile row; each operand finds its matrix through its batch strides (0
// along broadcast dims).

struct Dims {
    m: u32, k: u32, n: u32, m_tiles: u32,
    trans_a: u32, trans_b: u32, alpha: f32, beta: f32,
    c_row: u32, c_col: u32, has_c: u32, pad: u32,
    batch: vec4<u32>,
    a_batch: vec4<u32>,
    b_batch: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> a: array<T>;
@group(0) @binding(1) var<storage, read> b: array<T>;
@group(0) @binding(2) var<storage, read> c: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
@group(0) @binding(4) var<uniform> dims: Dims;

// Offsets of batch `batch`'s matrices of A and B: the batch index split into right-aligned
// coordinates.
fn batch_offsets(batch: u32) -> vec2<u32> {
    var rest = batch;
    var off = vec2<u32>(0u, 0u);
    for (var d = 3i; d >= 0i; d--) {
        let at = rest % dims.batch[d];
        rest = rest / dims.batch[d];
        off += at * vec2<u32>(dims.a_batch[d], dims.b_batch[d]);
    }
    return off;
}

fn a_at(off: u32, row: u32, kk: u32) -> f32 {
    return f32(a[off + select(row * dims.k + kk, kk * dims.m + row, dims.trans_a != 0u)]);
}

fn b_at(off: u32, kk: u32, col: u32) -> f32 {
    return f32(b[off + select(kk * dims.n + col, col * dims.k + kk, dims.trans_b != 0u)]);
}

// alpha · acc (+ beta · C) into out, when inside the matrix.
fn store(batch: u32, row: u32, col: u32, acc: f32) {
    if (row < dims.m && col < dims.n) {
        var r = dims.alpha * acc;
        if (dims.has_c != 0u) {
            r += dims.beta * f32(c[row * dims.c_row + col * dims.c_col]);
        }
        out[batch * dims.m * dims.n + row * dims.n + col] = T(r);
    }
}
