// MatMulNBits, 2-, 4- or 8-bit, one output per workgroup (the decoding step's single row: the
// tiled kernel would leave 15 of its 16 rows idle). Workgroup r · N + n computes c[r, n]; its
// invocations take u32 words of column n in turn — adjacent invocations, adjacent words — each
// word 32/bits consecutive k of one block (block_size ≥ 16), then sum in workgroup memory.
// WORKGROUP (a power of two) is prepended by matmul_nbits.rs.

struct Params { m: u32, k: u32, n: u32, block_size: u32, n_blocks: u32, zp_stride: u32, row: u32, bits: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read> zero_points: array<u32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

var<workgroup> part: array<f32, WORKGROUP>;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let out = group.x + group.y * p.row;
    // No early return: every invocation must reach the barriers.
    let live = out < p.m * p.n;
    let r = out / p.n;
    let col = out % p.n;
    var acc = 0.0;
    if (live) {
        let per_word = 32u / p.bits;
        let mask = (1u << p.bits) - 1u;
        let words = (p.k + per_word - 1u) / per_word; // only words holding some k < K
        let col_words = col * p.n_blocks * p.block_size / per_word;
        for (var w = lid; w < words; w += WORKGROUP) {
            let k0 = w * per_word;
            let block = k0 / p.block_size;
            var zp = f32(1u << (p.bits - 1u));
            if (p.zp_stride != 0u) {
                let z = col * p.zp_stride * (8u / p.bits) + block;
                zp = f32((zero_points[z / per_word] >> ((z % per_word) * p.bits)) & mask);
            }
            let word = b[col_words + w];
            var sum = 0.0;
            for (var j = 0u; j < per_word; j++) {
                let kk = k0 + j;
                if (kk < p.k) {
                    sum += a[r * p.k + kk] * (f32((word >> (j * p.bits)) & mask) - zp);
                }
            }
            acc += sum * scales[col * p.n_blocks + block];
        }
    }
    part[lid] = acc;
    workgroupBarrier();
    for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
        if (lid < half) { part[lid] += part[lid + half]; }
        workgroupBarrier();
    }
    if (live && lid == 0u) { c[out] = part[0]; }
}
