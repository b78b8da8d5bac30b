// Tiled f32 matrix product C[M,N] = A[M,K] × B[K,N], row-major. One workgroup computes one
// TILE×TILE block of C; each step stages a TILE×TILE block of A and of B in workgroup memory.
// TILE is prepended by matmul.rs, so the shader and the dispatch share it.

struct Dims { m: u32, k: u32, n: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

var<workgroup> tile_a: array<array<f32, TILE>, TILE>;
var<workgroup> tile_b: array<array<f32, TILE>, TILE>;

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let row = group.y * TILE + local.y;
    let col = group.x * TILE + local.x;
    var acc = 0.0;
    let steps = (dims.k + TILE - 1u) / TILE;
    for (var t = 0u; t < steps; t++) {
        // Outside the matrices (sizes not a multiple of TILE) the tiles hold zeros.
        let ka = t * TILE + local.x;
        var va = 0.0;
        if (row < dims.m && ka < dims.k) { va = a[row * dims.k + ka]; }
        tile_a[local.y][local.x] = va;
        let kb = t * TILE + local.y;
        var vb = 0.0;
        if (kb < dims.k && col < dims.n) { vb = b[kb * dims.n + col]; }
        tile_b[local.y][local.x] = vb;
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            acc += tile_a[local.y][i] * tile_b[i][local.x];
        }
        // The next step overwrites the tiles: everyone must be done reading them.
        workgroupBarrier();
    }
    if (row < dims.m && col < dims.n) {
        c[row * dims.n + col] = acc;
    }
}
