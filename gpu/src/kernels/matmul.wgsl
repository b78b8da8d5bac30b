// Tiled f32 matrix product for small matrices: one workgroup computes one TILE×TILE block of
// one matrix of the output, one element per invocation; each step stages a TILE×TILE block of
// A and of B in workgroup memory. TILE and matmul_common.wgsl are prepended by matmul.rs.

var<workgroup> tile_a: array<array<f32, TILE>, TILE>;
var<workgroup> tile_b: array<array<f32, TILE>, TILE>;

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let batch = group.y / dims.m_tiles;
    let row = (group.y % dims.m_tiles) * TILE + local.y;
    let col = group.x * TILE + local.x;
    let off = batch_offsets(batch);
    var acc = 0.0;
    let steps = (dims.k + TILE - 1u) / TILE;
    for (var t = 0u; t < steps; t++) {
        // Outside the matrices (sizes not a multiple of TILE) the tiles hold zeros.
        let ka = t * TILE + local.x;
        var va = 0.0;
        if (row < dims.m && ka < dims.k) {
            va = a_at(off.x, row, ka);
        }
        tile_a[local.y][local.x] = va;
        let kb = t * TILE + local.y;
        var vb = 0.0;
        if (kb < dims.k && col < dims.n) {
            vb = b_at(off.y, kb, col);
        }
        tile_b[local.y][local.x] = vb;
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            acc += tile_a[local.y][i] * tile_b[i][local.x];
        }
        // The next step overwrites the tiles: everyone must be done reading them.
        workgroupBarrier();
    }
    store(batch, row, col, acc);
}
