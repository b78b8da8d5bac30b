// ONNX GlobalMaxPool / GlobalAveragePool: one workgroup per (n, c) row of `size` spatial
// values; each invocation folds a strided part of the row, then a tree in workgroup memory.
// WORKGROUP (a power of two) is prepended by pool.rs, so the shader and the dispatch share it.

struct Params { kind: u32, rows: u32, size: u32, row: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> part: array<f32, WORKGROUP>;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = group.x + group.y * p.row;
    // No early return: every invocation must reach the barriers.
    let live = r < p.rows;
    var acc = 0.0;
    if (p.kind == 0u) { acc = -3.402823466e+38; }
    if (live) {
        let base = r * p.size;
        for (var j = lid; j < p.size; j += WORKGROUP) {
            let v = x[base + j];
            if (p.kind == 0u) { acc = max(acc, v); } else { acc += v; }
        }
    }
    part[lid] = acc;
    workgroupBarrier();
    for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            if (p.kind == 0u) {
                part[lid] = max(part[lid], part[lid + half]);
            } else {
                part[lid] += part[lid + half];
            }
        }
        workgroupBarrier();
    }
    if (live && lid == 0u) {
        var v = part[0];
        if (p.kind != 0u) { v /= f32(p.size); }
        out[r] = v;
    }
}
