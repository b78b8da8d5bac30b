// LayerNormalization / RMS normalization of contiguous rows of `len` elements. One workgroup
// per row: each invocation walks every WORKGROUP-th element and a tree reduction in workgroup
// memory combines them — the mean first, then Σ (x - mean)² (two passes: no cancellation of
// E[x²] - E[x]²). For RMS the mean is taken as 0. WORKGROUP (a power of two) is prepended by
// norm.rs.

struct Params {
    len: u32,
    rows: u32,
    groups_x: u32,
    epsilon: f32,
    scale_len: u32,
    bias_len: u32,
    has_bias: u32,
    rms: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> scale: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP>;

// The sum of every invocation's `v`; every invocation calls it and gets the total.
fn total(t: u32, v: f32) -> f32 {
    partial[t] = v;
    for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
        workgroupBarrier();
        if (t < half) { partial[t] += partial[t + half]; }
    }
    workgroupBarrier();
    let s = partial[0];
    // Everyone has read the total before partial is reused.
    workgroupBarrier();
    return s;
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    // Uniform control flow: a workgroup past the rows returns as a whole.
    let row = group.x + group.y * params.groups_x;
    if (row >= params.rows) { return; }
    let base = row * params.len;
    let n = f32(params.len);
    var mean = 0.0;
    if (params.rms == 0u) {
        var s = 0.0;
        for (var i = t; i < params.len; i += WORKGROUP) { s += x[base + i]; }
        mean = total(t, s) / n;
    }
    var q = 0.0;
    for (var i = t; i < params.len; i += WORKGROUP) {
        let d = x[base + i] - mean;
        q += d * d;
    }
    // 1/sqrt, not inverseSqrt: the latter may be a rough estimate on some GPUs.
    let inv = 1.0 / sqrt(total(t, q) / n + params.epsilon);
    for (var i = t; i < params.len; i += WORKGROUP) {
        var r = (x[base + i] - mean) * inv * scale[i % params.scale_len];
        if (params.has_bias != 0u) { r += bias[i % params.bias_len]; }
        out[base + i] = r;
    }
}
