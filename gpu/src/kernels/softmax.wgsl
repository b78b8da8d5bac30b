// Softmax / LogSoftmax along one axis. The tensor is [outer, len, inner]; a row is the `len`
// elements at one (outer, inner), `inner` apart. One workgroup per row: each invocation walks
// every WORKGROUP-th element, then a tree reduction in workgroup memory gives the row's max,
// then its Σ exp(x - max). WORKGROUP (a power of two) is prepended by softmax.rs.

struct Params {
    len: u32,
    inner: u32,
    rows: u32,
    groups_x: u32,
    log: u32,
    pad0: u32, pad1: u32, pad2: u32, // not a vec3: that aligns to 16
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP>;

// Combines `partial` into partial[0] (max when `take_max`, else sum); every invocation calls it.
fn reduce(t: u32, take_max: bool) {
    for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
        workgroupBarrier();
        if (t < half) {
            let o = partial[t + half];
            partial[t] = select(partial[t] + o, max(partial[t], o), take_max);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    // Uniform control flow: a workgroup past the rows returns as a whole.
    let row = group.x + group.y * params.groups_x;
    if (row >= params.rows) { return; }
    let inner = params.inner;
    let base = (row / inner) * params.len * inner + row % inner;
    var m = x[base];
    for (var i = t; i < params.len; i += WORKGROUP) {
        m = max(m, x[base + i * inner]);
    }
    partial[t] = m;
    reduce(t, true);
    m = partial[0];
    // Everyone has read the max before partial is reused.
    workgroupBarrier();
    var s = 0.0;
    for (var i = t; i < params.len; i += WORKGROUP) {
        s += exp(x[base + i * inner] - m);
    }
    partial[t] = s;
    reduce(t, false);
    s = partial[0];
    let log_s = log(s);
    for (var i = t; i < params.len; i += WORKGROUP) {
        let at = base + i * inner;
        let v = x[at] - m;
        out[at] = select(exp(v) / s, v - log_s, params.log != 0u);
    }
}
