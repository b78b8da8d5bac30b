// Strided copy over an iteration shape right-aligned to 6-D: the flat index is split into
// coordinates, each operand's offset is its base plus their dot product with its strides
// (the source's signed: slices may step backwards; 0 along broadcast dims). One invocation per
// element. WORKGROUP is prepended by layout.rs.

struct Params {
    len: u32,
    row: u32,     // invocations per row of workgroups (dispatch x × WORKGROUP)
    src_offset: u32,
    dst_offset: u32,
    // 6 slots used of 8: uniform arrays need a 16-byte element stride.
    dims: array<vec4<u32>, 2>,
    src_strides: array<vec4<i32>, 2>,
    dst_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x + id.y * params.row;
    if (i >= params.len) { return; }
    var rest = i;
    var src_at = i32(params.src_offset);
    var dst_at = params.dst_offset;
    for (var s = 5i; s >= 0i; s--) {
        let d = u32(s);
        let size = params.dims[d / 4u][d % 4u];
        let at = rest % size;
        rest = rest / size;
        src_at += i32(at) * params.src_strides[d / 4u][d % 4u];
        dst_at += at * params.dst_strides[d / 4u][d % 4u];
    }
    dst[dst_at] = src[u32(src_at)];
}
