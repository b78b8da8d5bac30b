// numpy broadcasting over shapes right-aligned to 6-D, shared by binary.wgsl and select.wgsl
// (their .rs files prepend it): output element `i`'s index split into 6 coordinates, and each
// operand's offset the dot product with its strides (0 along a broadcast dim). Up to three
// operands; uniform arrays hold 6 slots of 8 (a 16-byte element stride).

fn broadcast_offsets(
    i: u32,
    dims: array<vec4<u32>, 2>,
    s0: array<vec4<u32>, 2>,
    s1: array<vec4<u32>, 2>,
    s2: array<vec4<u32>, 2>,
) -> vec3<u32> {
    var rest = i;
    var off = vec3<u32>(0u, 0u, 0u);
    for (var s = 5i; s >= 0i; s--) {
        let d = u32(s);
        let size = dims[d / 4u][d % 4u];
        let at = rest % size;
        rest = rest / size;
        off += at * vec3<u32>(s0[d / 4u][d % 4u], s1[d / 4u][d % 4u], s2[d / 4u][d % 4u]);
    }
    return off;
}
