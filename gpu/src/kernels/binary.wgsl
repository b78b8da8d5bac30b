// Elementwise binary op with numpy broadcasting over shapes right-aligned to 4-D. One
// invocation per output element: its index is split into 4 coordinates, and each operand's
// offset is the dot product with that operand's strides (0 along a broadcast dim).
// WORKGROUP is prepended by binary.rs, so the shader and the dispatch share it.

struct Params {
    op: u32,      // 0 Add, 1 Sub, 2 Mul, 3 Div (BinaryOp's discriminants)
    len: u32,     // output elements
    row: u32,     // invocations per row of workgroups (dispatch x × WORKGROUP)
    pad: u32,
    dims: vec4<u32>,
    a_strides: vec4<u32>,
    b_strides: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x + id.y * params.row;
    if (i >= params.len) { return; }
    var rest = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = 3i; d >= 0i; d--) {
        let size = params.dims[d];
        let at = rest % size;
        rest = rest / size;
        ia += at * params.a_strides[d];
        ib += at * params.b_strides[d];
    }
    let x = a[ia];
    let y = b[ib];
    var r = 0.0;
    switch params.op {
        case 0u: { r = x + y; }
        case 1u: { r = x - y; }
        case 2u: { r = x * y; }
        default: { r = x / y; }
    }
    out[i] = r;
}
