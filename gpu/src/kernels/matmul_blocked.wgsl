// Register-blocked f32 matrix product for larger matrices: a workgroup of THREADS×THREADS
// invocations computes a BLOCK×BLOCK block of the output (BLOCK = 4·THREADS), each invocation a
// 4×4 patch held in four vec4 accumulators. Each step stages KT columns of A's block and KT rows
// of B's (both k-major in vec4s, so an invocation reads its 4 rows or 4 columns as one vec4) —
// 8 workgroup reads per 16 multiply-adds, where the one-per-invocation kernel makes 2 per 1.
// THREADS, BLOCK, KT and matmul_common.wgsl are prepended by matmul.rs.

const LOADS: u32 = BLOCK * KT / (THREADS * THREADS);

var<workgroup> tile_a: array<vec4<f32>, KT * BLOCK / 4u>;
var<workgroup> tile_b: array<vec4<f32>, KT * BLOCK / 4u>;

@compute @workgroup_size(THREADS, THREADS)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let batch = group.y / dims.m_tiles;
    let row0 = (group.y % dims.m_tiles) * BLOCK;
    let col0 = group.x * BLOCK;
    let off = batch_offsets(batch);
    var acc: array<vec4<f32>, 4>;
    let steps = (dims.k + KT - 1u) / KT;
    for (var t = 0u; t < steps; t++) {
        let k0 = t * KT;
        // Each invocation stages LOADS elements of each tile, consecutive invocations reading
        // consecutive addresses of the operand's memory layout. Outside: zeros.
        for (var e = 0u; e < LOADS; e++) {
            let i = li + e * THREADS * THREADS;
            // A's block, [KT][BLOCK] k-major.
            var r = i / KT;
            var kk = i % KT;
            if (dims.trans_a != 0u) {
                kk = i / BLOCK;
                r = i % BLOCK;
            }
            var va = 0.0;
            if (row0 + r < dims.m && k0 + kk < dims.k) {
                va = a_at(off.x, row0 + r, k0 + kk);
            }
            tile_a[kk * (BLOCK / 4u) + r / 4u][r % 4u] = va;
            // B's block, [KT][BLOCK].
            var kb = i / BLOCK;
            var cb = i % BLOCK;
            if (dims.trans_b != 0u) {
                cb = i / KT;
                kb = i % KT;
            }
            var vb = 0.0;
            if (k0 + kb < dims.k && col0 + cb < dims.n) {
                vb = b_at(off.y, k0 + kb, col0 + cb);
            }
            tile_b[kb * (BLOCK / 4u) + cb / 4u][cb % 4u] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KT; kk++) {
            let av = tile_a[kk * (BLOCK / 4u) + local.y];
            let bv = tile_b[kk * (BLOCK / 4u) + local.x];
            acc[0] += av.x * bv;
            acc[1] += av.y * bv;
            acc[2] += av.z * bv;
            acc[3] += av.w * bv;
        }
        // The next step overwrites the tiles: everyone must be done reading them.
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + 4u * local.y + i;
        for (var j = 0u; j < 4u; j++) {
            store(batch, row, col0 + 4u * local.x + j, acc[i][j]);
        }
    }
}
