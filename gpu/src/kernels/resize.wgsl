// ONNX Resize over H and W: one invocation per output element. The output coordinate maps to
// the input by the coordinate mode; nearest rounds it by nearest_mode and clamps, linear
// clamps it to the input and blends the 2×2 neighbours.
// WORKGROUP is prepended by resize.rs, so the shader and the dispatch share it.

struct Params {
    len: u32, row: u32, h: u32, w: u32,
    oh: u32, ow: u32, mode: u32, nearest: u32,
    half_pixel: u32, scale_h: f32, scale_w: f32, pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn to_input(o: u32, scale: f32) -> f32 {
    if (p.half_pixel != 0u) { return (f32(o) + 0.5) / scale - 0.5; }
    return f32(o) / scale;
}

fn nearest(v: f32, size: u32) -> u32 {
    var r = 0.0;
    switch p.nearest {
        case 0u: { r = select(round(v), floor(v), fract(v) == 0.5); }
        case 1u: { r = select(round(v), ceil(v), fract(v) == 0.5); }
        case 2u: { r = floor(v); }
        default: { r = ceil(v); }
    }
    return u32(clamp(r, 0.0, f32(size - 1u)));
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x + id.y * p.row;
    if (i >= p.len) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let base = (i / (p.ow * p.oh)) * p.h * p.w;
    let sy = to_input(oy, p.scale_h);
    let sx = to_input(ox, p.scale_w);
    if (p.mode == 0u) {
        out[i] = x[base + nearest(sy, p.h) * p.w + nearest(sx, p.w)];
        return;
    }
    let cy = clamp(sy, 0.0, f32(p.h - 1u));
    let cx = clamp(sx, 0.0, f32(p.w - 1u));
    let y0 = u32(floor(cy));
    let x0 = u32(floor(cx));
    let y1 = min(y0 + 1u, p.h - 1u);
    let x1 = min(x0 + 1u, p.w - 1u);
    let fy = cy - f32(y0);
    let fx = cx - f32(x0);
    let top = mix(x[base + y0 * p.w + x0], x[base + y0 * p.w + x1], fx);
    let bottom = mix(x[base + y1 * p.w + x0], x[base + y1 * p.w + x1], fx);
    out[i] = mix(top, bottom, fy);
}
