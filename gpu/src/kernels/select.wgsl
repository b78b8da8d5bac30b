// Where: out = cond != 0 ? x : y, numpy broadcasting over shapes right-aligned to 6-D
// (broadcast.wgsl). WORKGROUP and broadcast.wgsl are prepended by select.rs.

struct Params {
    len: u32,
    row: u32,     // invocations per row of workgroups (dispatch x × WORKGROUP)
    pad0: u32,
    pad1: u32,
    // 6 slots used of 8: uniform arrays need a 16-byte element stride.
    dims: array<vec4<u32>, 2>,
    c_strides: array<vec4<u32>, 2>,
    x_strides: array<vec4<u32>, 2>,
    y_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> cond: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x + id.y * params.row;
    if (i >= params.len) { return; }
    let off = broadcast_offsets(i, params.dims, params.c_strides, params.x_strides, params.y_strides);
    out[i] = select(y[off.z], x[off.y], cond[off.x] != 0.0);
}
