// ONNX Conv with one input channel per group (depthwise; any number of output channels per
// group): one invocation per output element, a direct loop over the kH×kW window.
// WORKGROUP and conv_common.wgsl are prepended by conv.rs, so the shader and the dispatch
// share the workgroup size.

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x + id.y * p.row;
    if (i >= p.len) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let m = (i / (p.ow * p.oh)) % p.m;
    let n = i / (p.ow * p.oh * p.m);
    let ci = m / p.mg; // the group's one input channel
    let y0 = i32(oy * p.stride_h) - i32(p.pad_t);
    let x0 = i32(ox * p.stride_w) - i32(p.pad_l);
    let x_base = (n * p.c + ci) * p.h * p.w;
    let w_base = m * p.kh * p.kw;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = y0 + i32(ky * p.dil_h);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = x0 + i32(kx * p.dil_w);
            if (ix < 0 || ix >= i32(p.w)) { continue; }
            acc += x[x_base + u32(iy) * p.w + u32(ix)] * wt[w_base + ky * p.kw + kx];
        }
    }
    if (p.has_bias != 0u) { acc += bias[m]; }
    out[i] = acc;
}
