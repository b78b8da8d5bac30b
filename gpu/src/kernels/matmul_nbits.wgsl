// MatMulNBits, 2-, 4- or 8-bit: C[M,N] = A[M,K] × W[K,N], W(k, n) = (q − zp) · scale
// dequantized while the tile is staged. b holds column n's K values contiguously (block by
// block, low bits first), so value n · n_blocks · block_size + k; zero points are packed the
// same way, zp_stride bytes a column (default 2^(bits−1)). One workgroup computes one TILE×TILE
// block of C. TILE is prepended by matmul_nbits.rs.

struct Params { m: u32, k: u32, n: u32, block_size: u32, n_blocks: u32, zp_stride: u32, row: u32, bits: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read> zero_points: array<u32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

var<workgroup> tile_a: array<array<f32, TILE>, TILE>;
var<workgroup> tile_b: array<array<f32, TILE>, TILE>;

/// Value `i` of a packed array, from the u32 `word` that holds it: low bits first.
fn value(i: u32, word: u32) -> u32 {
    let per_word = 32u / p.bits;
    return (word >> ((i % per_word) * p.bits)) & ((1u << p.bits) - 1u);
}

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let row = group.y * TILE + local.y;
    let col = group.x * TILE + local.x;
    var acc = 0.0;
    let steps = (p.k + TILE - 1u) / TILE;
    for (var t = 0u; t < steps; t++) {
        let ka = t * TILE + local.x;
        var va = 0.0;
        if (row < p.m && ka < p.k) { va = a[row * p.k + ka]; }
        tile_a[local.y][local.x] = va;
        let kb = t * TILE + local.y;
        var vb = 0.0;
        if (kb < p.k && col < p.n) {
            let block = kb / p.block_size;
            let q = col * p.n_blocks * p.block_size + kb;
            let per_word = 32u / p.bits;
            var zp = 1u << (p.bits - 1u);
            if (p.zp_stride != 0u) {
                let z = col * p.zp_stride * (8u / p.bits) + block;
                zp = value(z, zero_points[z / per_word]);
            }
            let scale = scales[col * p.n_blocks + block];
            vb = (f32(value(q, b[q / per_word])) - f32(zp)) * scale;
        }
        tile_b[local.y][local.x] = vb;
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            acc += tile_a[local.y][i] * tile_b[i][local.x];
        }
        // The next step overwrites the tiles: everyone must be done reading them.
        workgroupBarrier();
    }
    if (row < p.m && col < p.n) {
        c[row * p.n + col] = acc;
    }
}
