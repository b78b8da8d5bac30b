// Tiled f32 matrix product out[M,N] = alpha · op(A)[M,K] × op(B)[K,N] (+ beta · C), row-major,
// batched. One workgroup computes one TILE×TILE block of one matrix of the output; each step
// stages a TILE×TILE block of A and of B in workgroup memory. Workgroup y counts
// batch × m_tiles + tile row; each operand finds its matrix through its batch strides (0 along
// broadcast dims). TILE is prepended by matmul.rs, so the shader and the dispatch share it.

struct Dims {
    m: u32, k: u32, n: u32, m_tiles: u32,
    trans_a: u32, trans_b: u32, alpha: f32, beta: f32,
    c_row: u32, c_col: u32, has_c: u32, pad: u32,
    batch: vec4<u32>,
    a_batch: vec4<u32>,
    b_batch: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> dims: Dims;

var<workgroup> tile_a: array<array<f32, TILE>, TILE>;
var<workgroup> tile_b: array<array<f32, TILE>, TILE>;

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let batch = group.y / dims.m_tiles;
    let row = (group.y % dims.m_tiles) * TILE + local.y;
    let col = group.x * TILE + local.x;
    // The batch index split into right-aligned coordinates gives each operand's offset.
    var rest = batch;
    var a_off = 0u;
    var b_off = 0u;
    for (var d = 3i; d >= 0i; d--) {
        let at = rest % dims.batch[d];
        rest = rest / dims.batch[d];
        a_off += at * dims.a_batch[d];
        b_off += at * dims.b_batch[d];
    }
    var acc = 0.0;
    let steps = (dims.k + TILE - 1u) / TILE;
    for (var t = 0u; t < steps; t++) {
        // Outside the matrices (sizes not a multiple of TILE) the tiles hold zeros.
        let ka = t * TILE + local.x;
        var va = 0.0;
        if (row < dims.m && ka < dims.k) {
            va = a[a_off + select(row * dims.k + ka, ka * dims.m + row, dims.trans_a != 0u)];
        }
        tile_a[local.y][local.x] = va;
        let kb = t * TILE + local.y;
        var vb = 0.0;
        if (kb < dims.k && col < dims.n) {
            vb = b[b_off + select(kb * dims.n + col, col * dims.k + kb, dims.trans_b != 0u)];
        }
        tile_b[local.y][local.x] = vb;
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            acc += tile_a[local.y][i] * tile_b[i][local.x];
        }
        // The next step overwrites the tiles: everyone must be done reading them.
        workgroupBarrier();
    }
    if (row < dims.m && col < dims.n) {
        var r = dims.alpha * acc;
        if (dims.has_c != 0u) {
            r += dims.beta * c[row * dims.c_row + col * dims.c_col];
        }
        out[batch * dims.m * dims.n + row * dims.n + col] = r;
    }
}
