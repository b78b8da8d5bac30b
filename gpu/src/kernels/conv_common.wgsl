// What both Conv pipelines share (conv.rs prepends it): the uniform (conv.rs's Params) and the
// bindings — x [N, C, H, W], the weights [M, C/group, kH, kW], the bias [M] (or a stand-in
// when has_bias is 0), out [N, M, oH, oW].

struct Params {
    n: u32, c: u32, h: u32, w: u32,
    m: u32, oh: u32, ow: u32, kh: u32,
    kw: u32, stride_h: u32, stride_w: u32, pad_t: u32,
    pad_l: u32, dil_h: u32, dil_w: u32, cg: u32,
    mg: u32, m_tiles: u32, has_bias: u32, len: u32,
    row: u32, px_tiles: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
