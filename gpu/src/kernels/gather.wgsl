// Gather along one axis: data is [outer, axis_len, inner], the output [outer, count, inner].
// One invocation per output element. Indices were range-checked on the host. `data` may be one
// part of a tensor cut along the axis (rows lo..hi of it): then only the elements whose index
// falls in it are written, and one dispatch per part fills the output.
// WORKGROUP is prepended by gather.rs.

struct Params {
    len: u32,
    row: u32,
    axis_len: u32,
    inner: u32,
    count: u32,
    lo: u32,
    hi: u32,
    pad0: u32,
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
    let g = indices[j];
    if (g < params.lo || g >= params.hi) { return; }
    out[i] = data[(outer * params.axis_len + g - params.lo) * params.inner + inner];
}
