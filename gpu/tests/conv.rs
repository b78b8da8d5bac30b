//! The conv-family kernels (conv2d, pooling, MatMulNBits, attention) against plain CPU
//! references computed here with straightforward loops, on the native adapter (lavapipe in CI).
//! No adapter is a failure, not a skip: lavapipe is a declared dependency.

mod common;

use common::{gpu, max_diff, read, upload, values};
use wick_gpu::{
    AttentionParams, Conv2dParams, CoordinateMode, GpuBytes, GpuError, GpuTensor, NearestMode,
    Pool2dParams, PoolKind, ResizeMode, ResizeParams,
};

/// ONNX Conv, one output at a time.
fn cpu_conv(
    x: &[f32],
    [n, c, h, w]: [usize; 4],
    wt: &[f32],
    [m, kh, kw]: [usize; 3],
    bias: Option<&[f32]>,
    p: &Conv2dParams,
) -> (Vec<f32>, [usize; 4]) {
    let cg = c / p.groups;
    let mg = m / p.groups;
    let [s_h, s_w] = p.strides;
    let [d_h, d_w] = p.dilations;
    let [pt, pl, pb, pr] = p.pads;
    let oh = (h + pt + pb - d_h * (kh - 1) - 1) / s_h + 1;
    let ow = (w + pl + pr - d_w * (kw - 1) - 1) / s_w + 1;
    let mut out = vec![0.0f32; n * m * oh * ow];
    for b in 0..n {
        for mo in 0..m {
            let g = mo / mg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |bias| bias[mo]);
                    for ci in 0..cg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * s_h + ky * d_h) as isize - pt as isize;
                                let ix = (ox * s_w + kx * d_w) as isize - pl as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let xi =
                                    ((b * c + g * cg + ci) * h + iy as usize) * w + ix as usize;
                                let wi = ((mo * cg + ci) * kh + ky) * kw + kx;
                                acc += x[xi] * wt[wi];
                            }
                        }
                    }
                    out[((b * m + mo) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    (out, [n, m, oh, ow])
}

#[test]
fn conv2d_matches_the_cpu() {
    let conv = |strides, pads, dilations, groups| Conv2dParams {
        strides,
        pads,
        dilations,
        groups,
    };
    // (x dims, m, kh, kw, params, bias)
    let cases = [
        (
            [1, 3, 7, 9],
            5,
            3,
            3,
            conv([1, 1], [1, 1, 1, 1], [1, 1], 1),
            true,
        ),
        (
            [2, 4, 11, 10],
            6,
            3,
            3,
            conv([2, 2], [1, 1, 1, 1], [1, 1], 1),
            false,
        ),
        (
            [1, 8, 13, 13],
            16,
            1,
            1,
            conv([1, 1], [0; 4], [1, 1], 1),
            true,
        ),
        (
            [1, 6, 15, 12],
            8,
            5,
            5,
            conv([1, 2], [2, 1, 2, 3], [1, 1], 2),
            true,
        ),
        (
            [1, 5, 17, 17],
            7,
            3,
            3,
            conv([1, 1], [2, 2, 2, 2], [2, 2], 1),
            false,
        ),
        (
            [2, 8, 9, 11],
            8,
            3,
            3,
            conv([1, 1], [1, 1, 1, 1], [1, 1], 8),
            true,
        ),
        (
            [1, 16, 14, 14],
            16,
            3,
            3,
            conv([2, 2], [0, 0, 1, 1], [1, 1], 16),
            false,
        ),
        (
            [1, 6, 12, 12],
            12,
            5,
            5,
            conv([1, 1], [2, 2, 2, 2], [2, 2], 6),
            true,
        ),
        (
            [1, 4, 1, 37],
            6,
            1,
            5,
            conv([1, 2], [0, 2, 0, 2], [1, 1], 1),
            true,
        ),
        (
            [1, 32, 28, 28],
            48,
            3,
            3,
            conv([1, 1], [1, 1, 1, 1], [1, 1], 1),
            true,
        ),
        // Pointwise with M and H·W ≥ 24: the blocked MatMul pipeline (bias along rows).
        (
            [3, 64, 7, 7],
            40,
            1,
            1,
            conv([1, 1], [0; 4], [1, 1], 1),
            false,
        ),
        (
            [2, 20, 6, 5],
            30,
            1,
            1,
            conv([1, 1], [0; 4], [2, 2], 1),
            true,
        ),
    ];
    for (i, (xd, m, kh, kw, p, with_bias)) in cases.into_iter().enumerate() {
        let cg = xd[1] / p.groups;
        let x = values(xd.iter().product(), 10 + i as u64);
        let wt = values(m * cg * kh * kw, 20 + i as u64);
        let b = values(m, 30 + i as u64);
        let bias = with_bias.then_some(&b[..]);
        let (want, od) = cpu_conv(&x, xd, &wt, [m, kh, kw], bias, &p);
        let gb = bias.map(|b| upload(&[m], b));
        let out = pollster::block_on(gpu().conv2d(
            &upload(&xd, &x),
            &upload(&[m, cg, kh, kw], &wt),
            gb.as_ref(),
            &p,
        ))
        .expect("conv2d");
        assert_eq!(out.dims(), od);
        let diff = max_diff(&read(&out), &want);
        eprintln!(
            "conv2d {xd:?} m={m} {kh}×{kw} {p:?} bias={with_bias} → {od:?}: max diff {diff:e}"
        );
        assert!(diff <= 1e-4, "conv2d case {i}: max diff {diff}");
    }
}

/// More GEMM tiles than one dispatch dimension holds (65,535 on lavapipe): 64 groups of one
/// output channel each × 1,152 tiles of 64 pixels; they spill over into rows of y.
#[test]
fn conv2d_spills_big_outputs_into_rows() {
    let xd = [1, 128, 72, 1024];
    let p = Conv2dParams {
        groups: 64,
        ..Conv2dParams::default()
    };
    let x = values(xd.iter().product(), 5);
    let wt = values(64 * 2, 6);
    let (want, od) = cpu_conv(&x, xd, &wt, [64, 1, 1], None, &p);
    let out =
        pollster::block_on(gpu().conv2d(&upload(&xd, &x), &upload(&[64, 2, 1, 1], &wt), None, &p))
            .expect("conv2d");
    assert_eq!(out.dims(), od);
    let diff = max_diff(&read(&out), &want);
    eprintln!("conv2d {xd:?} 1×1 groups 64 → {od:?}: max diff {diff:e}");
    assert!(diff <= 1e-4, "conv2d big: max diff {diff}");
}

#[test]
fn conv2d_rejects_bad_shapes() {
    let x = upload(&[1, 4, 5, 5], &values(100, 1));
    let p = Conv2dParams::default();
    // Weights for 3 input channels on a 4-channel input.
    let w = upload(&[2, 3, 3, 3], &values(54, 2));
    let err = pollster::block_on(gpu().conv2d(&x, &w, None, &p)).err();
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
    // A 7×7 kernel on a 5×5 input without pads.
    let w = upload(&[2, 4, 7, 7], &values(392, 2));
    let err = pollster::block_on(gpu().conv2d(&x, &w, None, &p)).err();
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
    // groups = 3 does not divide 4 channels.
    let w = upload(&[3, 1, 1, 1], &values(3, 2));
    let p = Conv2dParams { groups: 3, ..p };
    let err = pollster::block_on(gpu().conv2d(&x, &w, None, &p)).err();
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
}

/// ONNX MaxPool / AveragePool on one plane at a time, the output size by ONNX's formula.
fn cpu_pool(x: &[f32], [n, c, h, w]: [usize; 4], p: &Pool2dParams) -> (Vec<f32>, [usize; 4]) {
    let size = |i: usize, len: usize| {
        let room = len + p.pads[i] + p.pads[i + 2] - p.dilations[i] * (p.kernel[i] - 1) - 1;
        let s = p.strides[i];
        let mut out = if p.ceil_mode {
            room.div_ceil(s)
        } else {
            room / s
        } + 1;
        if p.ceil_mode && (out - 1) * s >= len + p.pads[i] {
            out -= 1;
        }
        out
    };
    let (oh, ow) = (size(0, h), size(1, w));
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut sum, mut count, mut padded) = (f32::MIN, 0.0f32, 0, 0);
                for ky in 0..p.kernel[0] {
                    for kx in 0..p.kernel[1] {
                        let iy =
                            (oy * p.strides[0] + ky * p.dilations[0]) as isize - p.pads[0] as isize;
                        let ix =
                            (ox * p.strides[1] + kx * p.dilations[1]) as isize - p.pads[1] as isize;
                        if iy < (h + p.pads[2]) as isize && ix < (w + p.pads[3]) as isize {
                            padded += 1;
                        }
                        if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                            let v = x[(plane * h + iy as usize) * w + ix as usize];
                            best = best.max(v);
                            sum += v;
                            count += 1;
                        }
                    }
                }
                out.push(match p.kind {
                    PoolKind::Max => best,
                    PoolKind::Average {
                        count_include_pad: false,
                    } => sum / count as f32,
                    PoolKind::Average {
                        count_include_pad: true,
                    } => sum / padded as f32,
                });
            }
        }
    }
    (out, [n, c, oh, ow])
}

#[test]
fn pool2d_matches_the_cpu() {
    let avg = |count_include_pad| PoolKind::Average { count_include_pad };
    let pool = |kind, kernel, strides, pads, dilations, ceil_mode| Pool2dParams {
        kind,
        kernel,
        strides,
        pads,
        dilations,
        ceil_mode,
    };
    let cases = [
        (
            [1, 3, 8, 8],
            pool(PoolKind::Max, [2, 2], [2, 2], [0; 4], [1, 1], false),
        ),
        (
            [2, 4, 9, 11],
            pool(PoolKind::Max, [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], false),
        ),
        (
            [1, 2, 10, 10],
            pool(PoolKind::Max, [3, 3], [2, 2], [0; 4], [1, 1], true),
        ),
        (
            [1, 2, 11, 9],
            pool(PoolKind::Max, [2, 3], [1, 2], [0, 1, 1, 0], [2, 2], true),
        ),
        (
            [1, 3, 7, 7],
            pool(avg(false), [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], false),
        ),
        (
            [1, 3, 7, 7],
            pool(avg(true), [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], false),
        ),
        (
            [2, 2, 10, 13],
            pool(avg(false), [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], true),
        ),
        (
            [2, 2, 10, 13],
            pool(avg(true), [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], true),
        ),
        (
            [1, 1, 6, 6],
            pool(avg(true), [2, 2], [3, 3], [0; 4], [1, 1], true),
        ),
        (
            [1, 4, 1, 20],
            pool(avg(true), [1, 4], [1, 3], [0, 2, 0, 1], [1, 1], false),
        ),
    ];
    for (i, (xd, p)) in cases.into_iter().enumerate() {
        let x = values(xd.iter().product(), 40 + i as u64);
        let (want, od) = cpu_pool(&x, xd, &p);
        let out = pollster::block_on(gpu().pool2d(&upload(&xd, &x), &p)).expect("pool2d");
        assert_eq!(out.dims(), od, "pool2d case {i}");
        let diff = max_diff(&read(&out), &want);
        eprintln!("pool2d {xd:?} {p:?} → {od:?}: max diff {diff:e}");
        assert!(diff <= 1e-4, "pool2d case {i}: max diff {diff}");
    }
}

#[test]
fn global_pool_matches_the_cpu() {
    let dims: [&[usize]; 4] = [&[1, 3, 7, 7], &[2, 5, 1, 1], &[2, 3, 300], &[1, 2, 3, 4, 5]];
    for (i, xd) in dims.into_iter().enumerate() {
        let x = values(xd.iter().product(), 50 + i as u64);
        let size: usize = xd[2..].iter().product();
        for kind in [
            PoolKind::Max,
            PoolKind::Average {
                count_include_pad: false,
            },
        ] {
            let want: Vec<f32> = x
                .chunks(size)
                .map(|row| match kind {
                    PoolKind::Max => row.iter().copied().fold(f32::MIN, f32::max),
                    PoolKind::Average { .. } => row.iter().sum::<f32>() / size as f32,
                })
                .collect();
            let out =
                pollster::block_on(gpu().global_pool(&upload(xd, &x), kind)).expect("global_pool");
            let mut od = xd.to_vec();
            od[2..].fill(1);
            assert_eq!(out.dims(), od);
            let diff = max_diff(&read(&out), &want);
            eprintln!("global_pool {xd:?} {kind:?}: max diff {diff:e}");
            assert!(diff <= 1e-4, "global_pool {xd:?} {kind:?}: max diff {diff}");
        }
    }
}

#[test]
fn pools_reject_bad_shapes() {
    let x = upload(&[1, 1, 3, 3], &values(9, 1));
    let p = Pool2dParams {
        kind: PoolKind::Max,
        kernel: [5, 5],
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        ceil_mode: false,
    };
    let err = pollster::block_on(gpu().pool2d(&x, &p)).err();
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
    let flat = upload(&[3, 3], &values(9, 1));
    let err = pollster::block_on(gpu().global_pool(&flat, PoolKind::Max)).err();
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
}

/// Quantized weights for MatMulNBits in ONNX's layout, with the f32 values they stand for.
struct Quantized {
    b: Vec<u8>,
    scales: Vec<f32>,
    zero_points: Option<Vec<u8>>,
}

fn quantize_fixture(k: usize, n: usize, block: usize, with_zp: bool, seed: u64) -> Quantized {
    let n_blocks = k.div_ceil(block);
    let nibbles: Vec<u8> = values(n * n_blocks * block, seed)
        .iter()
        .map(|v| ((v + 1.0) * 8.0) as u8 & 15)
        .collect();
    let b = nibbles.chunks(2).map(|p| p[0] | (p[1] << 4)).collect();
    let scales = values(n * n_blocks, seed + 1)
        .iter()
        .map(|v| v * 0.1)
        .collect();
    let zero_points = with_zp.then(|| {
        let stride = n_blocks.div_ceil(2);
        let zp = values(n * stride * 2, seed + 2);
        (0..n * stride)
            .map(|i| {
                (((zp[2 * i] + 1.0) * 8.0) as u8 & 15)
                    | ((((zp[2 * i + 1] + 1.0) * 8.0) as u8 & 15) << 4)
            })
            .collect()
    });
    Quantized {
        b,
        scales,
        zero_points,
    }
}

/// MatMulNBits by its rules: W(k, n) = (q − zp) · scale, low nibble first, zp 8 when absent.
fn cpu_matmul_nbits(
    a: &[f32],
    q: &Quantized,
    m: usize,
    k: usize,
    n: usize,
    block: usize,
) -> Vec<f32> {
    let n_blocks = k.div_ceil(block);
    let nibble = |bytes: &[u8], i: usize| (bytes[i / 2] >> (4 * (i % 2))) & 15;
    let mut out = vec![0.0f32; m * n];
    for col in 0..n {
        let weight: Vec<f32> = (0..k)
            .map(|kk| {
                let blk = kk / block;
                let zp = q
                    .zero_points
                    .as_ref()
                    .map_or(8, |z| nibble(&z[col * n_blocks.div_ceil(2)..], blk));
                let qv = nibble(&q.b[col * n_blocks * block / 2..], kk);
                (f32::from(qv) - f32::from(zp)) * q.scales[col * n_blocks + blk]
            })
            .collect();
        for row in 0..m {
            out[row * n + col] = (0..k).map(|kk| a[row * k + kk] * weight[kk]).sum();
        }
    }
    out
}

fn upload_bytes(dims: &[usize], data: &[u8]) -> GpuBytes {
    pollster::block_on(GpuBytes::upload(gpu(), dims, data)).expect("upload bytes")
}

#[test]
fn matmul_nbits_matches_the_cpu() {
    // (a dims, k, n, block_size, zero points); one row takes the one-output-per-workgroup
    // kernel, more rows the tiled one.
    let cases: [(&[usize], usize, usize, usize, bool); 10] = [
        (&[1, 40], 40, 5, 16, true),
        (&[1, 1000], 1000, 65, 32, true),
        (&[1, 40], 40, 7, 16, false),
        (&[3, 40], 40, 7, 16, true),
        (&[1, 64], 64, 33, 32, true),
        (&[2, 5, 128], 128, 17, 32, false),
        (&[1, 1, 256], 256, 19, 64, true),
        (&[20, 256], 256, 45, 128, true),
        (&[17, 128], 128, 1, 16, true),
        (&[4, 64], 64, 31, 16, false),
    ];
    for (i, (ad, k, n, block, with_zp)) in cases.into_iter().enumerate() {
        let m: usize = ad[..ad.len() - 1].iter().product();
        let a = values(m * k, 60 + i as u64);
        let q = quantize_fixture(k, n, block, with_zp, 70 + 3 * i as u64);
        let n_blocks = k.div_ceil(block);
        let want = cpu_matmul_nbits(&a, &q, m, k, n, block);
        let zp = q
            .zero_points
            .as_ref()
            .map(|z| upload_bytes(&[n, n_blocks.div_ceil(2)], z));
        let out = pollster::block_on(gpu().matmul_nbits(
            &upload(ad, &a),
            &upload_bytes(&[n, n_blocks, block / 2], &q.b),
            &upload(&[n * n_blocks], &q.scales),
            zp.as_ref(),
            k,
            n,
            4,
            block,
        ))
        .expect("matmul_nbits");
        let mut od = ad.to_vec();
        *od.last_mut().expect("rank ≥ 1") = n;
        assert_eq!(out.dims(), od);
        let diff = max_diff(&read(&out), &want);
        eprintln!("matmul_nbits {ad:?} k={k} n={n} block={block} zp={with_zp}: max diff {diff:e}");
        assert!(diff <= 1e-4, "matmul_nbits case {i}: max diff {diff}");
    }
}

#[test]
fn matmul_nbits_rejects_bad_shapes() {
    let (k, n, block) = (64, 3, 32);
    let q = quantize_fixture(k, n, block, false, 1);
    let a = upload(&[2, k], &values(2 * k, 2));
    let b = upload_bytes(&[n, 2, block / 2], &q.b);
    let scales = upload(&[n * 2], &q.scales);
    let run = |a: &GpuTensor, k, bits| {
        pollster::block_on(gpu().matmul_nbits(a, &b, &scales, None, k, n, bits, block)).err()
    };
    // 3 bits: not supported.
    let err = run(&a, k, 3);
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
    // a's last dim is not K.
    let short = upload(&[2, 63], &values(126, 2));
    let err = run(&short, k, 4);
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
    // K = 96 needs 3 blocks per column; b holds 2.
    let long = upload(&[2, 96], &values(192, 2));
    let err = run(&long, 96, 4);
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
}

/// Attention by its definition, two passes per row (max, then weights).
fn cpu_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    [b, h, s, d]: [usize; 4],
    [hkv, t, dv]: [usize; 3],
    p: &AttentionParams,
) -> Vec<f32> {
    let mut out = vec![0.0f32; b * h * s * dv];
    for bi in 0..b {
        for hi in 0..h {
            let kv = bi * hkv + hi / (h / hkv);
            for i in 0..s {
                let row = &q[((bi * h + hi) * s + i) * d..][..d];
                let visible = if p.causal {
                    (t + i + 1).saturating_sub(s).min(t)
                } else {
                    t
                };
                let scores: Vec<f32> = (0..visible)
                    .map(|j| {
                        let key = &k[(kv * t + j) * d..][..d];
                        row.iter().zip(key).map(|(x, y)| x * y).sum::<f32>() * p.scale
                    })
                    .collect();
                let max = scores.iter().copied().fold(f32::MIN, f32::max);
                let weights: Vec<f32> = scores.iter().map(|sc| (sc - max).exp()).collect();
                let total: f32 = weights.iter().sum();
                for e in 0..dv {
                    out[((bi * h + hi) * s + i) * dv + e] = weights
                        .iter()
                        .enumerate()
                        .map(|(j, w)| w * v[(kv * t + j) * dv + e])
                        .sum::<f32>()
                        / total;
                }
            }
        }
    }
    out
}

#[test]
fn attention_matches_the_cpu() {
    // (b, h, s, d, hkv, t, dv, causal)
    let cases = [
        (1, 2, 1, 16, 2, 9, 16, true), // one decoding step over a 9-position cache
        (1, 4, 1, 32, 2, 9, 32, false), // GQA decoding
        (2, 2, 9, 16, 2, 9, 16, true), // causal prefill
        (1, 2, 9, 8, 2, 9, 8, false),  // non-causal prefill
        (1, 4, 7, 64, 2, 7, 64, true), // GQA prefill
        (1, 4, 5, 24, 1, 150, 40, true), // cache longer than a step, Dv ≠ D, MQA
        (2, 3, 70, 20, 3, 70, 12, false),
    ];
    for (i, (b, h, s, d, hkv, t, dv, causal)) in cases.into_iter().enumerate() {
        let p = AttentionParams {
            scale: 1.0 / (d as f32).sqrt(),
            causal,
        };
        let q = values(b * h * s * d, 80 + i as u64);
        let k = values(b * hkv * t * d, 90 + i as u64);
        let v = values(b * hkv * t * dv, 100 + i as u64);
        let want = cpu_attention(&q, &k, &v, [b, h, s, d], [hkv, t, dv], &p);
        let out = pollster::block_on(gpu().attention(
            &upload(&[b, h, s, d], &q),
            &upload(&[b, hkv, t, d], &k),
            &upload(&[b, hkv, t, dv], &v),
            &p,
        ))
        .expect("attention");
        assert_eq!(out.dims(), [b, h, s, dv]);
        let diff = max_diff(&read(&out), &want);
        eprintln!("attention b={b} h={h} s={s} d={d} hkv={hkv} t={t} dv={dv} causal={causal}: max diff {diff:e}");
        assert!(diff <= 1e-4, "attention case {i}: max diff {diff}");
    }
}

#[test]
fn attention_rejects_bad_shapes() {
    let p = AttentionParams {
        scale: 1.0,
        causal: false,
    };
    let q = upload(&[1, 3, 2, 8], &values(48, 1));
    // 3 query heads over 2 KV heads.
    let k = upload(&[1, 2, 4, 8], &values(64, 2));
    let v = upload(&[1, 2, 4, 8], &values(64, 3));
    let err = pollster::block_on(gpu().attention(&q, &k, &v, &p)).err();
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
}

/// ONNX Resize's reference rules (onnx/backend/test/case/node/resize.py), H and W only.
fn cpu_resize(x: &[f32], [n, c, h, w]: [usize; 4], p: &ResizeParams) -> Vec<f32> {
    let [oh, ow] = p.sizes;
    let [sh, sw] = p
        .scales
        .unwrap_or([oh as f32 / h as f32, ow as f32 / w as f32]);
    let to_input = |o: usize, scale: f32| match p.coordinate {
        CoordinateMode::Asymmetric => o as f32 / scale,
        CoordinateMode::HalfPixel => (o as f32 + 0.5) / scale - 0.5,
    };
    let pick = |v: f32, size: usize, mode: NearestMode| {
        let half = v - v.floor() == 0.5;
        let r = match mode {
            NearestMode::RoundPreferFloor if half => v.floor(),
            NearestMode::RoundPreferCeil if half => v.ceil(),
            NearestMode::RoundPreferFloor | NearestMode::RoundPreferCeil => v.round(),
            NearestMode::Floor => v.floor(),
            NearestMode::Ceil => v.ceil(),
        };
        r.clamp(0.0, (size - 1) as f32) as usize
    };
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in x.chunks(h * w).take(n * c) {
        for oy in 0..oh {
            for ox in 0..ow {
                let (sy, sx) = (to_input(oy, sh), to_input(ox, sw));
                out.push(match p.mode {
                    ResizeMode::Nearest(m) => plane[pick(sy, h, m) * w + pick(sx, w, m)],
                    ResizeMode::Linear => {
                        let cy = sy.clamp(0.0, (h - 1) as f32);
                        let cx = sx.clamp(0.0, (w - 1) as f32);
                        let (y0, x0) = (cy.floor() as usize, cx.floor() as usize);
                        let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
                        let (fy, fx) = (cy - y0 as f32, cx - x0 as f32);
                        let at = |y: usize, x: usize| plane[y * w + x];
                        let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                        let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                        top * (1.0 - fy) + bottom * fy
                    }
                });
            }
        }
    }
    out
}

#[test]
fn resize_matches_the_cpu() {
    let nearest = ResizeMode::Nearest;
    let resize = |mode, coordinate, sizes, scales| ResizeParams {
        mode,
        coordinate,
        sizes,
        scales,
    };
    let cases = [
        (
            [1, 2, 4, 5],
            resize(
                nearest(NearestMode::RoundPreferFloor),
                CoordinateMode::Asymmetric,
                [8, 10],
                None,
            ),
        ),
        (
            [1, 2, 4, 5],
            resize(
                nearest(NearestMode::Floor),
                CoordinateMode::Asymmetric,
                [8, 10],
                Some([2.0, 2.0]),
            ),
        ),
        (
            [2, 3, 7, 6],
            resize(
                nearest(NearestMode::RoundPreferCeil),
                CoordinateMode::HalfPixel,
                [14, 9],
                None,
            ),
        ),
        (
            [1, 1, 9, 9],
            resize(
                nearest(NearestMode::Ceil),
                CoordinateMode::HalfPixel,
                [4, 5],
                None,
            ),
        ),
        (
            [1, 3, 5, 4],
            resize(ResizeMode::Linear, CoordinateMode::HalfPixel, [10, 8], None),
        ),
        (
            [1, 3, 5, 4],
            resize(
                ResizeMode::Linear,
                CoordinateMode::Asymmetric,
                [11, 7],
                None,
            ),
        ),
        (
            [2, 2, 16, 12],
            resize(ResizeMode::Linear, CoordinateMode::HalfPixel, [6, 5], None),
        ),
        (
            [1, 2, 3, 3],
            resize(
                ResizeMode::Linear,
                CoordinateMode::HalfPixel,
                [7, 7],
                Some([2.5, 2.5]),
            ),
        ),
    ];
    for (i, (xd, p)) in cases.into_iter().enumerate() {
        let x = values(xd.iter().product(), 110 + i as u64);
        let want = cpu_resize(&x, xd, &p);
        let out = pollster::block_on(gpu().resize(&upload(&xd, &x), &p)).expect("resize");
        assert_eq!(out.dims(), [xd[0], xd[1], p.sizes[0], p.sizes[1]]);
        let diff = max_diff(&read(&out), &want);
        eprintln!("resize {xd:?} {p:?}: max diff {diff:e}");
        assert!(diff <= 1e-4, "resize case {i}: max diff {diff}");
    }
}

#[test]
fn resize_rejects_bad_shapes() {
    let p = ResizeParams {
        mode: ResizeMode::Linear,
        coordinate: CoordinateMode::HalfPixel,
        sizes: [4, 4],
        scales: None,
    };
    let x = upload(&[2, 2, 2], &values(8, 1));
    let err = pollster::block_on(gpu().resize(&x, &p)).err();
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
}
