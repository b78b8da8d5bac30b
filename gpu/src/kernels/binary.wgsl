// Elementwise binary op with numpy broadcasting over shapes right-aligned to 6-D
// (broadcast.wgsl). One invocation per output element. WORKGROUP and broadcast.wgsl are
// prepended by binary.rs, so the shader and the dispatch share the workgroup size.

struct Params {
    op: u32,      // 0 Add, 1 Sub, 2 Mul, 3 Div, 4 Pow, 5 Max, 6 Min (BinaryOp's discriminants)
    len: u32,     // output elements
    row: u32,     // invocations per row of workgroups (dispatch x × WORKGROUP)
    pad: u32,
    // 6 slots used of 8: uniform arrays need a 16-byte element stride.
    dims: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// WGSL's pow is undefined for a negative base; ONNX (like C's pow) gives the sign of the base
// for odd integral exponents, NaN for fractional ones, and x^0 = 1 always.
fn onnx_pow(x: f32, y: f32) -> f32 {
    if (y == 0.0) { return 1.0; }
    if (x >= 0.0) { return pow(x, y); }
    if (floor(y) != y) { return pow(x, y); } // NaN: log2 of a negative
    let m = pow(-x, y);
    return select(m, -m, abs(y % 2.0) == 1.0);
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x + id.y * params.row;
    if (i >= params.len) { return; }
    let off = broadcast_offsets(i, params.dims, params.a_strides, params.b_strides, params.b_strides);
    let x = a[off.x];
    let y = b[off.y];
    var r = 0.0;
    switch params.op {
        case 0u: { r = x + y; }
        case 1u: { r = x - y; }
        case 2u: { r = x * y; }
        case 3u: { r = x / y; }
        case 4u: { r = onnx_pow(x, y); }
        case 5u: { r = max(x, y); }
        default: { r = min(x, y); }
    }
    out[i] = r;
}
