// ONNX Conv as an implicit GEMM, per group g: out[m, pixel] = Σ_k w[m, k] · patch[k, pixel],
// k running over (input channel of g, ky, kx) and pixel over (n, oy, ox). The patch matrix is
// never built: each step stages a TILE_K × TILE_M block of weights and a TILE_K × TILE_N block of
// input patches, gathered from x with the pads as zeros, in workgroup memory.
// A workgroup of 16×16 invocations computes TILE_M channels × TILE_N pixels; invocation
// (lx, ly) owns channels ly + 16·i and pixels lx + 16·j, so each staged value read from
// workgroup memory feeds several multiply-adds.
// Workgroup tile number (x + y · row) = (g · m_tiles + channel tile) · px_tiles + pixel tile.
// TILE_M, TILE_N, TILE_K (multiples of 16) and conv_common.wgsl are prepended by conv.rs.

const WM: u32 = TILE_M / 16u; // channels per invocation
const WN: u32 = TILE_N / 16u; // pixels per invocation

var<workgroup> tile_w: array<array<f32, TILE_M>, TILE_K>; // [k][channel]
var<workgroup> tile_x: array<array<f32, TILE_N>, TILE_K>; // [k][pixel]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // Workgroups past the last tile (the dispatch's last row) have nothing to do.
    let tile = group.x + group.y * p.row;
    if (tile >= p.px_tiles * p.m_tiles * (p.m / p.mg)) { return; }
    let px0 = (tile % p.px_tiles) * TILE_N;
    let g = tile / p.px_tiles / p.m_tiles;
    let m0 = (tile / p.px_tiles % p.m_tiles) * TILE_M; // first channel within the group
    let pixels = p.n * p.oh * p.ow;
    let plane = p.oh * p.ow;
    let kk = p.kh * p.kw;
    let k_len = p.cg * kk;

    var acc: array<array<f32, WN>, WM>;
    let steps = (k_len + TILE_K - 1u) / TILE_K;
    for (var t = 0u; t < steps; t++) {
        let k0 = t * TILE_K;
        // Weights [M, cg, kh, kw]: row m is contiguous over k, so adjacent invocations take
        // adjacent k.
        for (var e = lid; e < TILE_M * TILE_K; e += 256u) {
            let mi = e / TILE_K;
            let ki = e % TILE_K;
            var v = 0.0;
            if (m0 + mi < p.mg && k0 + ki < k_len) {
                v = wt[(g * p.mg + m0 + mi) * k_len + k0 + ki];
            }
            tile_w[ki][mi] = v;
        }
        // Patches: adjacent invocations take adjacent pixels (mostly adjacent x).
        for (var e = lid; e < TILE_N * TILE_K; e += 256u) {
            let pi = e % TILE_N;
            let ki = e / TILE_N;
            let col = px0 + pi;
            let k = k0 + ki;
            var v = 0.0;
            if (col < pixels && k < k_len) {
                let n = col / plane;
                let oyx = col % plane;
                let ci = k / kk;
                let r = k % kk;
                let iy = i32((oyx / p.ow) * p.stride_h + (r / p.kw) * p.dil_h) - i32(p.pad_t);
                let ix = i32((oyx % p.ow) * p.stride_w + (r % p.kw) * p.dil_w) - i32(p.pad_l);
                if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
                    v = x[((n * p.c + g * p.cg + ci) * p.h + u32(iy)) * p.w + u32(ix)];
                }
            }
            tile_x[ki][pi] = v;
        }
        workgroupBarrier();
        for (var ki = 0u; ki < TILE_K; ki++) {
            var xs: array<f32, WN>;
            for (var j = 0u; j < WN; j++) { xs[j] = tile_x[ki][local.x + 16u * j]; }
            for (var i = 0u; i < WM; i++) {
                let wv = tile_w[ki][local.y + 16u * i];
                for (var j = 0u; j < WN; j++) { acc[i][j] += wv * xs[j]; }
            }
        }
        // The next step overwrites the tiles: everyone must be done reading them.
        workgroupBarrier();
    }
    for (var i = 0u; i < WM; i++) {
        let mi = m0 + local.y + 16u * i;
        if (mi >= p.mg) { continue; }
        let m = g * p.mg + mi;
        var b = 0.0;
        if (p.has_bias != 0u) { b = bias[m]; }
        for (var j = 0u; j < WN; j++) {
            let col = px0 + local.x + 16u * j;
            if (col < pixels) {
                out[((col / plane) * p.m + m) * plane + col % plane] = acc[i][j] + b;
            }
        }
    }
}
