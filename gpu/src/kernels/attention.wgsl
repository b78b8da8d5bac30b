// Attention for one query row per workgroup: keys in steps of WORKGROUP (one score per
// invocation), an online softmax — running max m and sum l; on a new max the sum and the
// output accumulator are rescaled by exp(m_old − m_new) — and each invocation owning output
// dims lid, lid + WORKGROUP, … of the accumulator in workgroup memory.
// WORKGROUP and MAX_HEAD_DIM are prepended by attention.rs.

struct Params {
    heads: u32, kv_heads: u32, s: u32, t: u32,
    d: u32, dv: u32, causal: u32, scale: f32,
    rows: u32, row: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// Masked scores: finite (WGSL has no infinity literal) and tested explicitly, never exp'd.
const MASKED: f32 = -3.402823466e+38;

var<workgroup> q_row: array<f32, MAX_HEAD_DIM>;
var<workgroup> acc: array<f32, MAX_HEAD_DIM>;
var<workgroup> score: array<f32, WORKGROUP>;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = group.x + group.y * p.row; // (b · H + h) · S + i
    // No early return: every invocation must reach the barriers.
    let live = r < p.rows;
    let i = r % p.s;
    let bh = r / p.s;
    let hh = bh % p.heads;
    let b = bh / p.heads;
    let kvh = b * p.kv_heads + hh / (p.heads / p.kv_heads);
    let k_base = kvh * p.t * p.d;
    let v_base = kvh * p.t * p.dv;
    // Keys 0..limit are visible.
    var limit = p.t;
    if (p.causal != 0u) { limit = min(p.t, max(p.t + i + 1u, p.s) - p.s); }

    for (var j = lid; j < p.d; j += WORKGROUP) {
        if (live) { q_row[j] = q[r * p.d + j]; }
    }
    for (var j = lid; j < p.dv; j += WORKGROUP) { acc[j] = 0.0; }
    workgroupBarrier();

    var m = MASKED;
    var l = 0.0;
    let steps = (p.t + WORKGROUP - 1u) / WORKGROUP;
    for (var step = 0u; step < steps; step++) {
        let key = step * WORKGROUP + lid;
        var sc = MASKED;
        if (live && key < limit) {
            var dot = 0.0;
            for (var j = 0u; j < p.d; j++) { dot += q_row[j] * k[k_base + key * p.d + j]; }
            sc = dot * p.scale;
        }
        score[lid] = sc;
        workgroupBarrier();
        var m_new = m;
        for (var j = 0u; j < WORKGROUP; j++) { m_new = max(m_new, score[j]); }
        // Everyone has read the raw scores before they become weights.
        workgroupBarrier();
        var weight = 0.0;
        if (sc > MASKED) { weight = exp(sc - m_new); }
        score[lid] = weight;
        workgroupBarrier();
        // 0 until a key is seen (m = MASKED, nothing accumulated yet).
        var corr = 0.0;
        if (m > MASKED) { corr = exp(m - m_new); }
        var sum = 0.0;
        for (var j = 0u; j < WORKGROUP; j++) { sum += score[j]; }
        l = l * corr + sum;
        let first = step * WORKGROUP;
        var count = min(WORKGROUP, p.t - first);
        if (!live) { count = 0u; }
        for (var dd = lid; dd < p.dv; dd += WORKGROUP) {
            var a = acc[dd] * corr;
            for (var j = 0u; j < count; j++) {
                a += score[j] * v[v_base + (first + j) * p.dv + dd];
            }
            acc[dd] = a;
        }
        m = m_new;
        // The next step overwrites the weights.
        workgroupBarrier();
    }
    if (live) {
        var inv = 0.0;
        if (l > 0.0) { inv = 1.0 / l; }
        for (var dd = lid; dd < p.dv; dd += WORKGROUP) { out[r * p.dv + dd] = acc[dd] * inv; }
    }
}
