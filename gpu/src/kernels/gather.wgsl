// Gather along one axis: data is [outer, axis_len, inner], the output [outer, count, inner].
// One invocation per output element. Indices were range-checked on the host.
// WORKGROUP is prepended by gather.rs.

struct Params {
    len: u32,
    row: u32,
    axis_len: u32,
    inner: u32,
    count: u32,
    pad0: u32, pad1: u32, pad2: u32, // not a vec3: that aligns to 16
}

@group(0) @binding(0) var<storage, read> data: array<f32>;
@group(0) @binding(1) var<storage, read> indices: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x + id.y * params.row;
    if (i >= params.len) { return; }
    let inner = i % params.inner;
    let j = (i / params.inner) % params.count;
    let outer = i / (params.inner * params.count);
    out[i] = data[(outer * params.axis_len + indices[j]) * params.inner + inner];
}
