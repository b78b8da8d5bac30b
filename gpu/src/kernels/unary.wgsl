// Elementwise unary op, one invocation per element. The op code and its two attributes come in
// the uniform (UnaryOp::code in unary.rs). WORKGROUP is prepended by unary.rs.

struct Params {
    op: u32,
    len: u32,     // elements
    row: u32,     // invocations per row of workgroups (dispatch x × WORKGROUP)
    pad: u32,
    alpha: f32,
    beta: f32,
    pad2: vec2<u32>,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

// WGSL has no erf: Abramowitz & Stegun 7.1.26, absolute error under 1.5e-7.
fn erf(v: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(v));
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
        + t * (-1.453152027 + t * 1.061405429))));
    return sign(v) * (1.0 - poly * exp(-v * v));
}

// Some drivers compute tanh through exp(2x), which overflows to inf/inf = NaN for large |x|;
// past |x| = 10 tanh is ±1 in f32 anyway.
fn safe_tanh(v: f32) -> f32 {
    return tanh(clamp(v, -10.0, 10.0));
}

fn sigmoid(v: f32) -> f32 {
    return 1.0 / (1.0 + exp(-v));
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x + id.y * params.row;
    if (i >= params.len) { return; }
    let v = x[i];
    let alpha = params.alpha;
    let beta = params.beta;
    var r = 0.0;
    switch params.op {
        case 0u: { r = max(v, 0.0); }
        case 1u: { r = sigmoid(v); }
        case 2u: { r = safe_tanh(v); }
        case 3u: { r = exp(v); }
        case 4u: { r = log(v); }
        case 5u: { r = -v; }
        case 6u: { r = abs(v); }
        case 7u: { r = sqrt(v); }
        case 8u: { r = 1.0 / v; }
        case 9u: { r = floor(v); }
        case 10u: { r = ceil(v); }
        case 11u: { r = erf(v); }
        case 12u: { r = 0.5 * v * (1.0 + erf(v * 0.70710678118654752)); }
        case 13u: {
            r = 0.5 * v * (1.0 + safe_tanh(0.79788456080286536 * (v + 0.044715 * v * v * v)));
        }
        case 14u: { r = v * sigmoid(v); }
        case 15u: { r = sin(v); }
        case 16u: { r = cos(v); }
        // max(v, 0) + log(1 + e^-|v|): no overflow for large v.
        case 17u: { r = max(v, 0.0) + log(1.0 + exp(-abs(v))); }
        case 18u: { r = select(v, alpha * v, v < 0.0); }
        case 19u: { r = select(v, alpha * (exp(v) - 1.0), v < 0.0); }
        case 20u: { r = min(max(v, alpha), beta); }
        case 21u: { r = clamp(alpha * v + beta, 0.0, 1.0); }
        default: { r = v * clamp(v / 6.0 + 0.5, 0.0, 1.0); }
    }
    out[i] = r;
}
