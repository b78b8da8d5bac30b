//! The conv-family kernels (conv2d, pooling, MatMulNBits, attention) against plain CPU
//! references computed here with straightforward loops, on the native adapter (lavapipe in CI).
//! No adapter is a failure, not a skip: lavapipe is a declared dependency.

use std::sync::OnceLock;
use wick_gpu::{Conv2dParams, Gpu, GpuError, GpuTensor};

/// One device for the whole file: opening one is the slow part on lavapipe.
fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new_blocking() {
        Ok(gpu) => {
            eprintln!("adapter: {}", gpu.adapter());
            gpu
        }
        Err(e) => panic!("{e}"),
    })
}

/// Deterministic values in [-1, 1), different per seed.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn upload(dims: &[usize], data: &[f32]) -> GpuTensor {
    pollster::block_on(GpuTensor::upload(gpu(), dims, data)).expect("upload")
}

/// Largest difference, relative to the magnitude where it is above 1.
fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .fold(0.0, f32::max)
}

fn read(t: &GpuTensor) -> Vec<f32> {
    t.read_blocking(gpu()).expect("read-back")
}

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
        (
            [3, 64, 7, 7],
            40,
            1,
            1,
            conv([1, 1], [0; 4], [1, 1], 1),
            false,
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
