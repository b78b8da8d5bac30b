//! The dense kernels (reshape, unary, binary's Pow/Max/Min and 6-D, batched MatMul, Gemm,
//! Softmax, LayerNorm/RMSNorm, Gather, Transpose/Slice/Expand/Concat, Reduce, Where) against
//! plain CPU references computed here, on the native adapter (lavapipe in CI).

mod common;

use common::{gpu, read, upload, values};
use wick_gpu::kernels::binary::broadcast_shape;
use wick_gpu::{BinaryOp, Element, GpuError, GpuTensor, ReduceOp, UnaryOp};

fn run<T>(f: impl std::future::Future<Output = Result<T, GpuError>>) -> T {
    pollster::block_on(f).expect("kernel")
}

fn is_shape_error<T>(r: Result<T, GpuError>) -> bool {
    matches!(r, Err(GpuError::Shape { .. }))
}

/// Largest difference, relative to the magnitude where it is above 1; equal infinities and
/// both-NaN agree, any other non-finite mismatch is infinite.
fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            if g == w || (g.is_nan() && w.is_nan()) {
                0.0
            } else if !g.is_finite() || !w.is_finite() {
                f32::INFINITY
            } else {
                (g - w).abs() / w.abs().max(1.0)
            }
        })
        .fold(0.0, f32::max)
}

fn check(what: &str, got: &GpuTensor, want_dims: &[usize], want: &[f32], tolerance: f32) {
    assert_eq!(got.dims(), want_dims, "{what}: dims");
    let diff = max_diff(&read(got), want);
    eprintln!("{what}: max diff {diff:e}");
    assert!(diff <= tolerance, "{what}: max diff {diff}");
}

/// The coordinates of flat index `i` in `dims`.
fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut index = vec![0; dims.len()];
    for d in (0..dims.len()).rev() {
        index[d] = i % dims[d];
        i /= dims[d];
    }
    index
}

/// The flat index of `index` in `dims`, broadcasting: size-1 dims take coordinate 0, and
/// `index` may have more (leading) dims than `dims`.
fn ravel(index: &[usize], dims: &[usize]) -> usize {
    let skip = index.len() - dims.len();
    dims.iter().enumerate().fold(0, |acc, (d, &size)| {
        acc * size + if size == 1 { 0 } else { index[skip + d] }
    })
}

#[test]
fn reshape_shares_the_buffer() {
    let data = values(24, 1);
    let x = upload(&[2, 3, 4], &data);
    let y = x.reshape(vec![6, 4]).expect("reshape");
    assert_eq!(y.dims(), [6, 4]);
    assert_eq!(read(&y), data);
    // A kernel on the reshaped tensor reads the same buffer.
    let z = run(gpu().unary(UnaryOp::Neg, &y.reshape(vec![24]).expect("reshape")));
    let neg: Vec<f32> = data.iter().map(|v| -v).collect();
    check("reshape then neg", &z, &[24], &neg, 0.0);
    assert!(is_shape_error(x.reshape(vec![5, 5])));
}

/// erf by its Taylor series in f64: exact to ~1e-10 for |x| ≤ 4 (the tests stay inside).
fn erf_series(x: f64) -> f64 {
    if x.abs() > 6.0 {
        return x.signum();
    }
    let (mut term, mut sum) = (x, x);
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

/// The test's reference: UnaryOp::apply, except erf-based ops use the series above rather than
/// the kernel's own approximation.
fn unary_reference(op: UnaryOp, x: f32) -> f32 {
    let v = f64::from(x);
    match op {
        UnaryOp::Erf => erf_series(v) as f32,
        UnaryOp::Gelu => (0.5 * v * (1.0 + erf_series(v / std::f64::consts::SQRT_2))) as f32,
        _ => op.apply(x),
    }
}

#[test]
fn unary_ops_match_the_cpu() {
    let ops = [
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sqrt,
        UnaryOp::Reciprocal,
        UnaryOp::Floor,
        UnaryOp::Ceil,
        UnaryOp::Erf,
        UnaryOp::Gelu,
        UnaryOp::GeluTanh,
        UnaryOp::Silu,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Softplus,
        UnaryOp::LeakyRelu(0.01),
        UnaryOp::Elu(1.5),
        UnaryOp::Clip(-0.5, 2.0),
        UnaryOp::HardSigmoid(0.2, 0.5),
        UnaryOp::HardSwish,
    ];
    let shapes: [&[usize]; 5] = [&[1], &[7], &[33], &[257], &[3, 5, 7]];
    for op in ops {
        for (s, dims) in shapes.iter().enumerate() {
            let len: usize = dims.iter().product();
            let mut x: Vec<f32> = values(len, 10 + s as u64).iter().map(|v| v * 4.0).collect();
            match op {
                // Inside the domain.
                UnaryOp::Log | UnaryOp::Sqrt => x.iter_mut().for_each(|v| *v = v.abs() + 0.01),
                UnaryOp::Reciprocal => x.iter_mut().for_each(|v| *v += v.signum() * 0.5),
                // Periodic ops: no huge arguments (GPU range reduction is loose there).
                UnaryOp::Sin | UnaryOp::Cos => {}
                // Large magnitudes where overflow would show (exp → inf, tanh → NaN).
                _ if len >= 33 => x[..6].copy_from_slice(&[-100.0, 100.0, -30.0, 30.0, -9.5, 12.0]),
                _ => {}
            }
            let want: Vec<f32> = x.iter().map(|&v| unary_reference(op, v)).collect();
            let out = run(gpu().unary(op, &upload(dims, &x)));
            check(&format!("{op:?} {dims:?}"), &out, dims, &want, 1e-5);
        }
    }
    // Empty tensors are fine too.
    let out = run(gpu().unary(UnaryOp::Exp, &upload(&[0, 3], &[])));
    assert_eq!(out.dims(), [0, 3]);
}

/// numpy broadcasting on the CPU: each output index mapped back to each operand.
fn cpu_binary(op: BinaryOp, a: &[f32], ad: &[usize], b: &[f32], bd: &[usize]) -> Vec<f32> {
    let out = broadcast_shape(ad, bd).expect("broadcastable");
    let len: usize = out.iter().product();
    (0..len)
        .map(|i| {
            let index = unravel(i, &out);
            op.apply(a[ravel(&index, ad)], b[ravel(&index, bd)])
        })
        .collect()
}

#[test]
fn pow_max_min_broadcast_up_to_6d() {
    let cases: [(&[usize], &[usize]); 5] = [
        (&[1], &[1]),
        (&[7, 33], &[33]),
        (&[2, 1, 3, 1, 2, 5], &[3, 4, 1, 5]),
        (&[257], &[1]),
        (&[1, 1, 1, 1, 1, 7], &[3, 1, 1, 1, 1, 1]),
    ];
    for op in [BinaryOp::Pow, BinaryOp::Max, BinaryOp::Min, BinaryOp::Add] {
        for (ad, bd) in cases {
            let mut a = values(ad.iter().product(), 5);
            let mut b = values(bd.iter().product(), 6);
            if op == BinaryOp::Pow {
                // Positive bases with any exponent.
                a.iter_mut().for_each(|v| *v = v.abs() * 3.0 + 0.1);
                b.iter_mut().for_each(|v| *v *= 3.0);
            }
            let out = run(gpu().binary(op, &upload(ad, &a), &upload(bd, &b)));
            let want = cpu_binary(op, &a, ad, &b, bd);
            let shape = broadcast_shape(ad, bd).expect("shape");
            check(&format!("{op:?} {ad:?} {bd:?}"), &out, &shape, &want, 1e-5);
        }
    }
    // Negative bases with integral exponents (and 0⁰ = 1).
    let a: Vec<f32> = vec![-2.0, -1.5, -3.0, 0.0, -0.5, 2.0, 0.0];
    let b: Vec<f32> = vec![3.0, 2.0, -1.0, 0.0, 4.0, -2.0, 2.0];
    let out = run(gpu().binary(BinaryOp::Pow, &upload(&[7], &a), &upload(&[7], &b)));
    let want = cpu_binary(BinaryOp::Pow, &a, &[7], &b, &[7]);
    check("Pow negative bases", &out, &[7], &want, 1e-5);
    let seven = upload(&[1, 1, 1, 1, 1, 1, 2], &values(2, 1));
    assert!(is_shape_error(pollster::block_on(gpu().binary(
        BinaryOp::Max,
        &seven,
        &seven
    ))));
}

/// numpy matmul on the CPU, 1-D operands promoted then squeezed.
fn cpu_matmul(a: &[f32], ad: &[usize], b: &[f32], bd: &[usize]) -> (Vec<usize>, Vec<f32>) {
    let a_dims: Vec<usize> = if ad.len() == 1 {
        vec![1, ad[0]]
    } else {
        ad.to_vec()
    };
    let b_dims: Vec<usize> = if bd.len() == 1 {
        vec![bd[0], 1]
    } else {
        bd.to_vec()
    };
    let (a_batch, am) = a_dims.split_at(a_dims.len() - 2);
    let (b_batch, bm) = b_dims.split_at(b_dims.len() - 2);
    let (m, k, n) = (am[0], am[1], bm[1]);
    let batch = broadcast_shape(a_batch, b_batch).expect("batch broadcast");
    let batches: usize = batch.iter().product();
    let mut out = Vec::with_capacity(batches * m * n);
    for z in 0..batches {
        let index = unravel(z, &batch);
        let a_off = ravel(&index, a_batch) * m * k;
        let b_off = ravel(&index, b_batch) * k * n;
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| f64::from(a[a_off + i * k + p]) * f64::from(b[b_off + p * n + j]))
                    .sum();
                out.push(dot as f32);
            }
        }
    }
    let mut dims = batch;
    if ad.len() > 1 {
        dims.push(m);
    }
    if bd.len() > 1 {
        dims.push(n);
    }
    (dims, out)
}

#[test]
fn matmul_batches_and_broadcasts_like_numpy() {
    // M and N ≥ 24 take the blocked pipeline; a shared B folds A's batches into its rows.
    let cases: [(&[usize], &[usize]); 12] = [
        (&[3, 40, 50], &[50, 70]),
        (&[2, 3, 30, 26], &[3, 26, 45]),
        (&[4, 1, 29, 33], &[1, 5, 33, 25]),
        (&[3, 17, 33], &[3, 33, 9]),
        (&[2, 1, 5, 7], &[4, 7, 6]),
        (&[7], &[7, 5]),
        (&[4, 7], &[7]),
        (&[7], &[7]),
        (&[2, 3, 1, 4, 5], &[5, 2]),
        (&[1, 257, 33], &[33, 1]),
        (&[33], &[2, 33, 17]),
        (&[2, 3, 1, 1, 16, 16], &[1, 3, 2, 16, 16]),
    ];
    for (ad, bd) in cases {
        let a = values(ad.iter().product(), 7);
        let b = values(bd.iter().product(), 8);
        let out = run(gpu().matmul(&upload(ad, &a), &upload(bd, &b)));
        let (dims, want) = cpu_matmul(&a, ad, &b, bd);
        check(&format!("matmul {ad:?} × {bd:?}"), &out, &dims, &want, 1e-5);
    }
    let bad: [(&[usize], &[usize]); 3] =
        [(&[2, 3], &[4, 2]), (&[2, 3, 4], &[3, 4, 5]), (&[], &[2])];
    for (ad, bd) in bad {
        let a = upload(ad, &values(ad.iter().product(), 1));
        let b = upload(bd, &values(bd.iter().product(), 2));
        assert!(
            is_shape_error(pollster::block_on(gpu().matmul(&a, &b))),
            "{ad:?} × {bd:?}"
        );
    }
}

#[test]
fn gemm_transposes_scales_and_adds_c() {
    type Case = (usize, usize, usize, bool, bool, Option<&'static [usize]>);
    let cases: [Case; 9] = [
        (70, 37, 45, true, true, Some(&[45])),
        (50, 19, 64, true, false, Some(&[50, 64])),
        (40, 65, 33, false, true, None),
        (17, 33, 9, false, false, Some(&[9])),
        (7, 5, 3, true, false, Some(&[7, 1])),
        (33, 16, 20, false, true, Some(&[33, 20])),
        (1, 1, 1, true, true, None),
        (5, 7, 3, true, true, Some(&[])),
        (64, 257, 7, true, true, Some(&[1, 7])),
    ];
    let (alpha, beta) = (0.5f32, 2.0f32);
    for (m, k, n, ta, tb, cd) in cases {
        let a_dims = if ta { [k, m] } else { [m, k] };
        let b_dims = if tb { [n, k] } else { [k, n] };
        let a = values(m * k, 9);
        let b = values(k * n, 10);
        let c = cd.map(|cd| (cd, values(cd.iter().product(), 11)));
        let at = |i: usize, p: usize| if ta { a[p * m + i] } else { a[i * k + p] };
        let bt = |p: usize, j: usize| if tb { b[j * k + p] } else { b[p * n + j] };
        let mut want = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| f64::from(at(i, p)) * f64::from(bt(p, j)))
                    .sum();
                let bias = c.as_ref().map_or(0.0, |(cd, c)| c[ravel(&[i, j], cd)]);
                want.push(alpha * dot as f32 + beta * bias);
            }
        }
        let c_tensor = c.as_ref().map(|(cd, c)| upload(cd, c));
        let out = run(gpu().gemm(
            &upload(&a_dims, &a),
            &upload(&b_dims, &b),
            c_tensor.as_ref(),
            alpha,
            beta,
            ta,
            tb,
        ));
        check(
            &format!("gemm {m}×{k}×{n} tA={ta} tB={tb} C={cd:?}"),
            &out,
            &[m, n],
            &want,
            1e-5,
        );
    }
    let a = upload(&[4, 3], &values(12, 1));
    let b = upload(&[3, 5], &values(15, 2));
    let c = upload(&[3, 5], &values(15, 3));
    let r = pollster::block_on(gpu().gemm(&a, &b, Some(&c), 1.0, 1.0, false, false));
    assert!(is_shape_error(r));
    let r = pollster::block_on(gpu().gemm(&a, &b, None, 1.0, 1.0, true, false));
    assert!(is_shape_error(r));
}

/// `data` as f16 on the device (values rounded to f16 first: the reference uses the same).
fn upload_f16(dims: &[usize], data: &[f32]) -> GpuTensor {
    let bits: Vec<u16> = data
        .iter()
        .map(|&v| half::f16::from_f32(v).to_bits())
        .collect();
    pollster::block_on(GpuTensor::upload_f16(gpu(), dims, &bits)).expect("upload f16")
}

fn round_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}

/// On a device with shader-f16 (lavapipe has it), MatMul and Gemm take f16 operands and give
/// f16 results (sums in f32): within 1e-2 of the product of the same f16 values in f32 — both
/// pipelines, batches, broadcasting, transposes, C. Mixed f32 and f16 operands are refused.
#[test]
fn matmul_and_gemm_in_f16() {
    assert!(gpu().has_f16(), "{} offers no shader-f16", gpu().adapter());
    let cases: [(&[usize], &[usize]); 4] = [
        (&[3, 40, 50], &[50, 70]),
        (&[2, 1, 5, 7], &[4, 7, 6]),
        (&[4, 7], &[7]),
        (&[2, 3, 30, 26], &[3, 26, 45]),
    ];
    for (ad, bd) in cases {
        let a = round_f16(&values(ad.iter().product(), 7));
        let b = round_f16(&values(bd.iter().product(), 8));
        let out = run(gpu().matmul(&upload_f16(ad, &a), &upload_f16(bd, &b)));
        assert_eq!(out.element(), Element::F16);
        let (dims, want) = cpu_matmul(&a, ad, &b, bd);
        check(
            &format!("f16 matmul {ad:?} × {bd:?}"),
            &out,
            &dims,
            &want,
            1e-2,
        );
    }
    for (m, k, n, ta, tb) in [(70, 37, 45, true, true), (17, 33, 9, false, false)] {
        let a_dims = if ta { [k, m] } else { [m, k] };
        let b_dims = if tb { [n, k] } else { [k, n] };
        let (a, b, c) = (
            round_f16(&values(m * k, 9)),
            round_f16(&values(k * n, 10)),
            round_f16(&values(n, 11)),
        );
        let at = |i: usize, p: usize| if ta { a[p * m + i] } else { a[i * k + p] };
        let bt = |p: usize, j: usize| if tb { b[j * k + p] } else { b[p * n + j] };
        let want: Vec<f32> = (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                let dot: f32 = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
                0.5 * dot + 2.0 * c[j]
            })
            .collect();
        let c_tensor = upload_f16(&[n], &c);
        let out = run(gpu().gemm(
            &upload_f16(&a_dims, &a),
            &upload_f16(&b_dims, &b),
            Some(&c_tensor),
            0.5,
            2.0,
            ta,
            tb,
        ));
        check(
            &format!("f16 gemm {m}×{k}×{n} tA={ta} tB={tb}"),
            &out,
            &[m, n],
            &want,
            1e-2,
        );
    }
    let mixed = pollster::block_on(
        gpu().matmul(&upload_f16(&[2, 3], &[0.5; 6]), &upload(&[3, 2], &[0.5; 6])),
    );
    assert!(is_shape_error(mixed));
}

/// Softmax (or its log) along `axis` on the CPU, in f64.
fn cpu_softmax(x: &[f32], dims: &[usize], axis: usize, log: bool) -> Vec<f32> {
    let len = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();
    let mut out = vec![0.0; x.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| o * len * inner + j * inner + i;
            let m = (0..len)
                .map(|j| f64::from(x[at(j)]))
                .fold(f64::MIN, f64::max);
            let s: f64 = (0..len).map(|j| (f64::from(x[at(j)]) - m).exp()).sum();
            for j in 0..len {
                let v = f64::from(x[at(j)]) - m;
                out[at(j)] = if log { v - s.ln() } else { v.exp() / s } as f32;
            }
        }
    }
    out
}

#[test]
fn softmax_along_any_axis() {
    let cases: [(&[usize], usize); 7] = [
        (&[1], 0),
        (&[7], 0),
        (&[3, 257], 1),
        (&[4, 33, 5], 1),
        (&[2, 3, 4], 0),
        (&[5, 1000], 1),
        (&[2, 1, 7], 1),
    ];
    for (dims, axis) in cases {
        // Large logits: without the max subtracted exp would overflow.
        let x: Vec<f32> = values(dims.iter().product(), 12)
            .iter()
            .map(|v| v * 20.0 + 80.0)
            .collect();
        let xt = upload(dims, &x);
        let out = run(gpu().softmax(&xt, axis));
        let want = cpu_softmax(&x, dims, axis, false);
        check(
            &format!("softmax {dims:?} axis {axis}"),
            &out,
            dims,
            &want,
            1e-5,
        );
        let out = run(gpu().log_softmax(&xt, axis));
        let want = cpu_softmax(&x, dims, axis, true);
        check(
            &format!("log_softmax {dims:?} axis {axis}"),
            &out,
            dims,
            &want,
            1e-4,
        );
    }
    let x = upload(&[2, 3, 4], &values(24, 1));
    assert!(is_shape_error(pollster::block_on(gpu().softmax(&x, 3))));
}

/// LayerNorm (or RMS norm) over dims `axis..` on the CPU, in f64.
fn cpu_norm(
    x: &[f32],
    dims: &[usize],
    axis: usize,
    scale: &[f32],
    bias: Option<&[f32]>,
    epsilon: f32,
    rms: bool,
) -> Vec<f32> {
    let len: usize = dims[axis..].iter().product();
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(len) {
        let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        let mean = if rms {
            0.0
        } else {
            row.iter().sum::<f64>() / len as f64
        };
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / len as f64;
        let inv = 1.0 / (var + f64::from(epsilon)).sqrt();
        for (i, v) in row.iter().enumerate() {
            let s = f64::from(scale[i % scale.len()]);
            let b = bias.map_or(0.0, |b| f64::from(b[i % b.len()]));
            out.push(((v - mean) * inv * s + b) as f32);
        }
    }
    out
}

#[test]
fn layer_norm_and_rms_norm_match_the_cpu() {
    type Case = (
        &'static [usize],
        usize,
        &'static [usize],
        Option<&'static [usize]>,
    );
    let cases: [Case; 5] = [
        (&[7, 33], 1, &[33], Some(&[33])),
        (&[2, 3, 257], 2, &[257], None),
        (&[4, 5, 6], 1, &[5, 6], Some(&[6])),
        (&[3, 7], 0, &[1, 7], Some(&[3, 7])),
        (&[1], 0, &[1], Some(&[1])),
    ];
    let epsilon = 1e-5;
    for (dims, axis, sd, bd) in cases {
        let x: Vec<f32> = values(dims.iter().product(), 13)
            .iter()
            .map(|v| v * 3.0 + 1.0)
            .collect();
        let scale = values(sd.iter().product(), 14);
        let bias = bd.map(|bd| values(bd.iter().product(), 15));
        let xt = upload(dims, &x);
        let st = upload(sd, &scale);
        let bt = bd.zip(bias.as_ref()).map(|(bd, b)| upload(bd, b));
        let out = run(gpu().layer_norm(&xt, &st, bt.as_ref(), axis, epsilon));
        let want = cpu_norm(&x, dims, axis, &scale, bias.as_deref(), epsilon, false);
        check(
            &format!("layer_norm {dims:?} axis {axis}"),
            &out,
            dims,
            &want,
            1e-4,
        );
        let out = run(gpu().rms_norm(&xt, &st, axis, epsilon));
        let want = cpu_norm(&x, dims, axis, &scale, None, epsilon, true);
        check(
            &format!("rms_norm {dims:?} axis {axis}"),
            &out,
            dims,
            &want,
            1e-4,
        );
    }
    let x = upload(&[4, 5, 6], &values(120, 1));
    let scale = upload(&[5], &values(5, 2));
    assert!(is_shape_error(pollster::block_on(
        gpu().layer_norm(&x, &scale, None, 1, 1e-5)
    )));
    assert!(is_shape_error(pollster::block_on(
        gpu().rms_norm(&x, &scale, 3, 1e-5)
    )));
}

#[test]
fn gather_takes_indices_along_an_axis() {
    type Case = (&'static [usize], &'static [i64], &'static [usize], usize);
    let cases: [Case; 5] = [
        (&[5, 7], &[0, -1, 2], &[3], 0),
        (&[3, 4, 5], &[1, -4, 3, 0], &[2, 2], 1),
        (&[7], &[-2], &[], 0),
        (&[2, 33, 3], &[2, 0, 1, 1, -1, -3], &[6], 2),
        (&[257, 2], &[256, 0, 128], &[3, 1], 0),
    ];
    for (dims, indices, idims, axis) in cases {
        let x = values(dims.iter().product(), 16);
        let out = run(gpu().gather(&upload(dims, &x), indices, idims, axis));
        let out_dims: Vec<usize> = [&dims[..axis], idims, &dims[axis + 1..]].concat();
        let want: Vec<f32> = (0..out_dims.iter().product())
            .map(|i| {
                let index = unravel(i, &out_dims);
                let j = ravel(&index[axis..axis + idims.len()], idims);
                let k = indices[j].rem_euclid(dims[axis] as i64) as usize;
                let src: Vec<usize> = [&index[..axis], &[k], &index[axis + idims.len()..]].concat();
                x[ravel(&src, dims)]
            })
            .collect();
        check(
            &format!("gather {dims:?} {indices:?} axis {axis}"),
            &out,
            &out_dims,
            &want,
            0.0,
        );
        // The same data cut along the axis into parts of at most 2 rows (a weight wider than
        // one binding), each part bound alone.
        let outer: usize = dims[..axis].iter().product();
        let inner: usize = dims[axis + 1..].iter().product();
        let parts: Vec<GpuTensor> = (0..dims[axis])
            .step_by(2)
            .map(|r0| {
                let rows = (dims[axis] - r0).min(2);
                let part: Vec<f32> = (0..outer)
                    .flat_map(|o| {
                        let at = (o * dims[axis] + r0) * inner;
                        x[at..at + rows * inner].to_vec()
                    })
                    .collect();
                let part_dims: Vec<usize> = [&dims[..axis], &[rows], &dims[axis + 1..]].concat();
                upload(&part_dims, &part)
            })
            .collect();
        let refs: Vec<&GpuTensor> = parts.iter().collect();
        let out = run(gpu().gather_parts(&refs, indices, idims, axis));
        check(
            &format!(
                "gather from {} parts {dims:?} {indices:?} axis {axis}",
                parts.len()
            ),
            &out,
            &out_dims,
            &want,
            0.0,
        );
    }
    let x = upload(&[5, 2], &values(10, 1));
    for bad in [5i64, -6] {
        assert!(is_shape_error(pollster::block_on(gpu().gather(
            &x,
            &[bad],
            &[1],
            0
        ))));
    }
    assert!(is_shape_error(pollster::block_on(gpu().gather(
        &x,
        &[0, 1],
        &[3],
        0
    ))));
}

#[test]
fn transpose_up_to_6d() {
    let cases: [(&[usize], &[usize]); 4] = [
        (&[2, 3, 4], &[2, 0, 1]),
        (&[1, 7, 33], &[0, 2, 1]),
        (&[2, 3, 1, 4, 5, 2], &[5, 3, 1, 0, 2, 4]),
        (&[257], &[0]),
    ];
    for (dims, perm) in cases {
        let x = values(dims.iter().product(), 17);
        let out = run(gpu().transpose(&upload(dims, &x), perm));
        let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        let want: Vec<f32> = (0..x.len())
            .map(|i| {
                let o = unravel(i, &out_dims);
                let mut src = vec![0; dims.len()];
                for (d, &p) in perm.iter().enumerate() {
                    src[p] = o[d];
                }
                x[ravel(&src, dims)]
            })
            .collect();
        check(
            &format!("transpose {dims:?} {perm:?}"),
            &out,
            &out_dims,
            &want,
            0.0,
        );
    }
    let x = upload(&[2, 3, 4], &values(24, 1));
    assert!(is_shape_error(pollster::block_on(
        gpu().transpose(&x, &[0, 0, 1])
    )));
    assert!(is_shape_error(pollster::block_on(
        gpu().transpose(&x, &[1, 0])
    )));
}

#[test]
fn slice_with_steps_both_ways() {
    type Case = (&'static [usize], &'static [(usize, isize, usize)]);
    let cases: [Case; 4] = [
        (&[7, 33], &[(1, 2, 3), (32, -3, 11)]),
        (&[5], &[(4, -1, 5)]),
        (&[2, 3, 4], &[(0, 1, 2), (2, -1, 2), (1, 2, 2)]),
        (&[3, 4], &[(1, 1, 0), (0, 1, 4)]),
    ];
    for (dims, ranges) in cases {
        let x = values(dims.iter().product(), 18);
        let out = run(gpu().slice(&upload(dims, &x), ranges));
        let out_dims: Vec<usize> = ranges.iter().map(|r| r.2).collect();
        let want: Vec<f32> = (0..out_dims.iter().product())
            .map(|i| {
                let o = unravel(i, &out_dims);
                let src: Vec<usize> = o
                    .iter()
                    .zip(ranges)
                    .map(|(&c, &(start, step, _))| (start as isize + c as isize * step) as usize)
                    .collect();
                x[ravel(&src, dims)]
            })
            .collect();
        check(
            &format!("slice {dims:?} {ranges:?}"),
            &out,
            &out_dims,
            &want,
            0.0,
        );
    }
    let x = upload(&[5], &values(5, 1));
    for bad in [[(5usize, 1isize, 1usize)], [(0, 1, 6)], [(1, -1, 3)]] {
        assert!(
            is_shape_error(pollster::block_on(gpu().slice(&x, &bad))),
            "{bad:?}"
        );
    }
}

#[test]
fn expand_broadcasts_like_numpy() {
    let cases: [(&[usize], &[usize]); 4] = [
        (&[3, 1], &[2, 3, 4]),
        (&[1], &[257]),
        (&[4], &[2, 1, 4]),
        (&[2, 1, 7], &[3, 1]),
    ];
    for (dims, to) in cases {
        let x = values(dims.iter().product(), 19);
        let out = run(gpu().expand(&upload(dims, &x), to));
        let out_dims = broadcast_shape(dims, to).expect("broadcast");
        let want: Vec<f32> = (0..out_dims.iter().product())
            .map(|i| x[ravel(&unravel(i, &out_dims), dims)])
            .collect();
        check(
            &format!("expand {dims:?} to {to:?}"),
            &out,
            &out_dims,
            &want,
            0.0,
        );
    }
    let x = upload(&[3], &values(3, 1));
    assert!(is_shape_error(pollster::block_on(gpu().expand(&x, &[4]))));
}

#[test]
fn concat_along_any_axis() {
    type Case = (&'static [&'static [usize]], usize);
    let cases: [Case; 4] = [
        (&[&[2, 3], &[2, 5], &[2, 1]], 1),
        (&[&[1, 4], &[3, 4]], 0),
        (&[&[2, 3, 7], &[2, 1, 7], &[2, 0, 7], &[2, 33, 7]], 1),
        (&[&[257]], 0),
    ];
    for (shapes, axis) in cases {
        let data: Vec<Vec<f32>> = shapes
            .iter()
            .enumerate()
            .map(|(s, d)| values(d.iter().product(), 20 + s as u64))
            .collect();
        let tensors: Vec<GpuTensor> = shapes
            .iter()
            .zip(&data)
            .map(|(d, x)| upload(d, x))
            .collect();
        let refs: Vec<&GpuTensor> = tensors.iter().collect();
        let out = run(gpu().concat(&refs, axis));
        let mut out_dims = shapes[0].to_vec();
        out_dims[axis] = shapes.iter().map(|d| d[axis]).sum();
        let want: Vec<f32> = (0..out_dims.iter().product())
            .map(|i| {
                let mut index = unravel(i, &out_dims);
                let mut s = 0;
                while index[axis] >= shapes[s][axis] {
                    index[axis] -= shapes[s][axis];
                    s += 1;
                }
                data[s][ravel(&index, shapes[s])]
            })
            .collect();
        check(
            &format!("concat {shapes:?} axis {axis}"),
            &out,
            &out_dims,
            &want,
            0.0,
        );
    }
    let a = upload(&[2, 3], &values(6, 1));
    let b = upload(&[3, 3], &values(9, 2));
    assert!(is_shape_error(pollster::block_on(
        gpu().concat(&[&a, &b], 1)
    )));
    assert!(is_shape_error(pollster::block_on(
        gpu().concat(&[&a, &b], 2)
    )));
    assert!(is_shape_error(pollster::block_on(gpu().concat(&[], 0))));
}

/// A reduction on the CPU, in f64.
fn cpu_reduce(op: ReduceOp, x: &[f32], dims: &[usize], axes: &[usize]) -> Vec<f32> {
    let reduced = |d: usize| axes.is_empty() || axes.contains(&d);
    let out_dims: Vec<usize> = (0..dims.len())
        .map(|d| if reduced(d) { 1 } else { dims[d] })
        .collect();
    let out_len: usize = out_dims.iter().product();
    let count = x.len() / out_len.max(1);
    let init = match op {
        ReduceOp::Max => f64::NEG_INFINITY,
        ReduceOp::Min => f64::INFINITY,
        ReduceOp::Prod => 1.0,
        _ => 0.0,
    };
    let mut acc = vec![init; out_len];
    for (i, &v) in x.iter().enumerate() {
        let o = ravel(&unravel(i, dims), &out_dims);
        let v = f64::from(v);
        acc[o] = match op {
            ReduceOp::Max => acc[o].max(v),
            ReduceOp::Min => acc[o].min(v),
            ReduceOp::Prod => acc[o] * v,
            ReduceOp::SumSquare | ReduceOp::L2 => acc[o] + v * v,
            ReduceOp::Sum | ReduceOp::Mean => acc[o] + v,
        };
    }
    acc.iter()
        .map(|&a| match op {
            ReduceOp::Mean => (a / count as f64) as f32,
            ReduceOp::L2 => a.sqrt() as f32,
            _ => a as f32,
        })
        .collect()
}

#[test]
fn reduce_over_any_axes() {
    let ops = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::Prod,
        ReduceOp::SumSquare,
        ReduceOp::L2,
    ];
    let cases: [(&[usize], &[usize]); 6] = [
        (&[7, 33], &[1]),
        (&[4, 5, 6], &[0, 2]),
        (&[257], &[]),
        (&[2, 3, 4, 5], &[1]),
        (&[3, 1000], &[1]),
        (&[2, 1, 3, 1, 2, 7], &[5, 0, 3]),
    ];
    for op in ops {
        for (dims, axes) in cases {
            let mut x = values(dims.iter().product(), 21);
            if op == ReduceOp::Prod {
                // Near 1, so that long products neither vanish nor blow up.
                x.iter_mut().for_each(|v| *v = 1.0 + *v * 0.01);
            }
            let xt = upload(dims, &x);
            let want = cpu_reduce(op, &x, dims, axes);
            for keepdims in [true, false] {
                let out = run(gpu().reduce(op, &xt, axes, keepdims));
                let out_dims: Vec<usize> = (0..dims.len())
                    .filter_map(|d| match (axes.is_empty() || axes.contains(&d), keepdims) {
                        (false, _) => Some(dims[d]),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect();
                let what = format!("{op:?} {dims:?} axes {axes:?} keepdims {keepdims}");
                check(&what, &out, &out_dims, &want, 1e-4);
            }
        }
    }
    let x = upload(&[2, 3], &values(6, 1));
    assert!(is_shape_error(pollster::block_on(gpu().reduce(
        ReduceOp::Sum,
        &x,
        &[1, 1],
        true
    ))));
    assert!(is_shape_error(pollster::block_on(gpu().reduce(
        ReduceOp::Sum,
        &x,
        &[2],
        true
    ))));
}

#[test]
fn where_selects_with_broadcasting() {
    type Case = (&'static [usize], &'static [usize], &'static [usize]);
    let cases: [Case; 5] = [
        (&[7], &[7], &[7]),
        (&[33, 1], &[1, 9], &[]),
        (&[2, 1, 3, 1, 2, 5], &[3, 4, 1, 5], &[5]),
        (&[1], &[257], &[257]),
        (&[3, 5, 7], &[1, 7], &[3, 1, 1]),
    ];
    for (cd, xd, yd) in cases {
        // A 0/1 mask, as an uploaded bool tensor would be.
        let c: Vec<f32> = values(cd.iter().product(), 22)
            .iter()
            .map(|&v| f32::from(u8::from(v > 0.0)))
            .collect();
        let x = values(xd.iter().product(), 23);
        let y = values(yd.iter().product(), 24);
        let out = run(gpu().where_select(&upload(cd, &c), &upload(xd, &x), &upload(yd, &y)));
        let shape = broadcast_shape(cd, xd)
            .and_then(|s| broadcast_shape(&s, yd))
            .expect("broadcast");
        let want: Vec<f32> = (0..shape.iter().product())
            .map(|i| {
                let index = unravel(i, &shape);
                if c[ravel(&index, cd)] != 0.0 {
                    x[ravel(&index, xd)]
                } else {
                    y[ravel(&index, yd)]
                }
            })
            .collect();
        check(
            &format!("where {cd:?} {xd:?} {yd:?}"),
            &out,
            &shape,
            &want,
            0.0,
        );
    }
    let c = upload(&[2, 3], &[1.0; 6]);
    let x = upload(&[4], &values(4, 1));
    assert!(is_shape_error(pollster::block_on(
        gpu().where_select(&c, &x, &x)
    )));
}
