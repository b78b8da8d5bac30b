// Reduction over a set of axes. The input's dims are split into kept and reduced ones; one
// workgroup per output element (a point in the kept dims) walks every WORKGROUP-th point of the
// reduced dims, then a tree reduction in workgroup memory combines the partial results.
// WORKGROUP (a power of two) is prepended by reduce.rs.

struct Params {
    out_len: u32,
    red_len: u32,
    groups_x: u32,
    op: u32,        // 0 Sum, 1 Mean, 2 Max, 3 Min, 4 Prod, 5 SumSquare, 6 L2 (ReduceOp)
    identity: f32,  // where accumulators start (±inf can't be written as a WGSL constant)
    pad0: u32, pad1: u32, pad2: u32, // not a vec3: that aligns to 16
    kept_dims: array<vec4<u32>, 2>,
    kept_strides: array<vec4<u32>, 2>,
    red_dims: array<vec4<u32>, 2>,
    red_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP>;

fn combine(a: f32, b: f32) -> f32 {
    switch params.op {
        case 2u: { return max(a, b); }
        case 3u: { return min(a, b); }
        case 4u: { return a * b; }
        default: { return a + b; }
    }
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    // Uniform control flow: a workgroup past the outputs returns as a whole.
    let o = group.x + group.y * params.groups_x;
    if (o >= params.out_len) { return; }
    var rest = o;
    var base = 0u;
    for (var s = 5i; s >= 0i; s--) {
        let d = u32(s);
        let size = params.kept_dims[d / 4u][d % 4u];
        base += (rest % size) * params.kept_strides[d / 4u][d % 4u];
        rest = rest / size;
    }
    let square = params.op == 5u || params.op == 6u;
    var acc = params.identity;
    for (var r = t; r < params.red_len; r += WORKGROUP) {
        var left = r;
        var at = base;
        for (var s = 5i; s >= 0i; s--) {
            let d = u32(s);
            let size = params.red_dims[d / 4u][d % 4u];
            at += (left % size) * params.red_strides[d / 4u][d % 4u];
            left = left / size;
        }
        let v = x[at];
        acc = combine(acc, select(v, v * v, square));
    }
    partial[t] = acc;
    for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
        workgroupBarrier();
        if (t < half) { partial[t] = combine(partial[t], partial[t + half]); }
    }
    if (t == 0u) {
        var r = partial[0];
        if (params.op == 1u) { r /= f32(params.red_len); }
        if (params.op == 6u) { r = sqrt(r); }
        out[o] = r;
    }
}
