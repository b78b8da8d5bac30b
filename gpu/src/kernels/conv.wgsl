// ONNX Conv as an implicit GEMM, per group g: out[m, pixel] = Σ_k w[m, k] · patch[k, pixel],
// k running over (input channel of g, ky, kx) and pixel over (n, oy, ox). The patch matrix is
// never built: each step stages a TILE×TILE block of weights and one of input patches, gathered
// from x with the pads as zeros, in workgroup memory.
// Workgroup tile number (x + y · row) = (g · m_tiles + channel tile) · px_tiles + pixel tile;
// local (x, y) = (pixel, channel).
// TILE is prepended by conv.rs, so the shader and the dispatch share it.

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

var<workgroup> tile_w: array<array<f32, TILE>, TILE>; // [channel][k]
var<workgroup> tile_x: array<array<f32, TILE>, TILE>; // [k][pixel]

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    // Workgroups past the last tile (the dispatch's last row) have nothing to do.
    let tile = group.x + group.y * p.row;
    if (tile >= p.px_tiles * p.m_tiles * (p.m / p.mg)) { return; }
    let px_tile = tile % p.px_tiles;
    let g = tile / p.px_tiles / p.m_tiles;
    let m_in_g = (tile / p.px_tiles % p.m_tiles) * TILE + local.y;
    let m = g * p.mg + m_in_g;
    let pixels = p.n * p.oh * p.ow;
    let kk = p.kh * p.kw;
    let k_len = p.cg * kk;

    // The pixel this invocation stages patch values for (column local.x of tile_x)...
    let col = px_tile * TILE + local.x;
    let n = col / (p.oh * p.ow);
    let oyx = col % (p.oh * p.ow);
    let y0 = i32((oyx / p.ow) * p.stride_h) - i32(p.pad_t);
    let x0 = i32((oyx % p.ow) * p.stride_w) - i32(p.pad_l);
    let x_base = (n * p.c + g * p.cg) * p.h * p.w;

    var acc = 0.0;
    let steps = (k_len + TILE - 1u) / TILE;
    for (var t = 0u; t < steps; t++) {
        // Weights [M, cg, kh, kw]: row m is contiguous over k.
        let kc = t * TILE + local.x;
        var vw = 0.0;
        if (m_in_g < p.mg && kc < k_len) { vw = wt[m * k_len + kc]; }
        tile_w[local.y][local.x] = vw;
        // Patch element k = t·TILE + local.y of pixel col; zero outside x (pads) or past the ends.
        let k = t * TILE + local.y;
        var vx = 0.0;
        if (col < pixels && k < k_len) {
            let ci = k / kk;
            let r = k % kk;
            let iy = y0 + i32((r / p.kw) * p.dil_h);
            let ix = x0 + i32((r % p.kw) * p.dil_w);
            if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
                vx = x[x_base + (ci * p.h + u32(iy)) * p.w + u32(ix)];
            }
        }
        tile_x[local.y][local.x] = vx;
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            acc += tile_w[local.y][i] * tile_x[i][local.x];
        }
        // The next step overwrites the tiles: everyone must be done reading them.
        workgroupBarrier();
    }
    if (m_in_g < p.mg && col < pixels) {
        if (p.has_bias != 0u) { acc += bias[m]; }
        out[(n * p.m + m) * p.oh * p.ow + oyx] = acc;
    }
}
