// ONNX MaxPool / AveragePool: one invocation per output element, a direct loop over its
// (dilated) window. Positions outside x are skipped; for the average, kind 2 also counts those
// inside the pads (but never beyond the padded input: ceil_mode's last window may overhang).
// WORKGROUP is prepended by pool.rs, so the shader and the dispatch share it.

struct Params {
    kind: u32, len: u32, row: u32, h: u32,
    w: u32, oh: u32, ow: u32, kh: u32,
    kw: u32, stride_h: u32, stride_w: u32, pad_t: u32,
    pad_l: u32, pad_b: u32, pad_r: u32, dil_h: u32,
    dil_w: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x + id.y * p.row;
    if (i >= p.len) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let plane = i / (p.ow * p.oh); // n · C + c
    let base = plane * p.h * p.w;
    let y0 = i32(oy * p.stride_h) - i32(p.pad_t);
    let x0 = i32(ox * p.stride_w) - i32(p.pad_l);
    var best = -3.402823466e+38;
    var sum = 0.0;
    var count = 0u;
    var padded = 0u;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = y0 + i32(ky * p.dil_h);
        let in_h = iy >= 0 && iy < i32(p.h);
        let pad_h = iy >= -i32(p.pad_t) && iy < i32(p.h + p.pad_b);
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = x0 + i32(kx * p.dil_w);
            if (pad_h && ix >= -i32(p.pad_l) && ix < i32(p.w + p.pad_r)) { padded++; }
            if (in_h && ix >= 0 && ix < i32(p.w)) {
                let v = x[base + u32(iy) * p.w + u32(ix)];
                best = max(best, v);
                sum += v;
                count++;
            }
        }
    }
    var r = best;
    if (p.kind == 1u) { r = sum / f32(max(count, 1u)); }
    if (p.kind == 2u) { r = sum / f32(max(padded, 1u)); }
    out[i] = r;
}
