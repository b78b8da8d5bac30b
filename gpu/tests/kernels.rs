//! Each kernel against a plain CPU reference computed here, on the native adapter (lavapipe in
//! CI). No adapter is a failure, not a skip: lavapipe is a declared dependency (`cargo xtask
//! tools` installs mesa-vulkan-drivers).

mod common;

use common::{gpu, max_diff, upload, values};
use wick_gpu::kernels::binary::broadcast_shape;
use wick_gpu::{BinaryOp, GpuError};

fn cpu_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    c
}

#[test]
fn matmul_matches_the_cpu() {
    for (m, k, n) in [
        (1, 1, 1),
        (17, 33, 9),
        (16, 16, 16),
        (5, 1, 7),
        (31, 47, 65),
        (128, 256, 64),
    ] {
        let a = values(m * k, 1);
        let b = values(k * n, 2);
        let c = pollster::block_on(gpu().matmul(&upload(&[m, k], &a), &upload(&[k, n], &b)))
            .expect("matmul");
        assert_eq!(c.dims(), [m, n]);
        let got = c.read_blocking(gpu()).expect("read-back");
        let diff = max_diff(&got, &cpu_matmul(&a, &b, m, k, n));
        eprintln!("matmul {m}×{k}×{n}: max diff {diff:e}");
        assert!(diff <= 1e-4, "matmul {m}×{k}×{n}: max diff {diff}");
    }
}

#[test]
fn matmul_rejects_mismatched_shapes() {
    let a = upload(&[2, 3], &values(6, 1));
    let b = upload(&[4, 2], &values(8, 2));
    let err = pollster::block_on(gpu().matmul(&a, &b)).err();
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
}

/// numpy broadcasting on the CPU: each output index mapped back to each operand.
fn cpu_binary(op: BinaryOp, a: &[f32], ad: &[usize], b: &[f32], bd: &[usize]) -> Vec<f32> {
    let out = broadcast_shape(ad, bd).expect("broadcastable");
    let len: usize = out.iter().product();
    let offset = |dims: &[usize], index: &[usize]| {
        let skip = out.len() - dims.len();
        dims.iter().enumerate().fold(0, |acc, (d, &size)| {
            acc * size + if size == 1 { 0 } else { index[skip + d] }
        })
    };
    (0..len)
        .map(|mut i| {
            let mut index = vec![0; out.len()];
            for d in (0..out.len()).rev() {
                index[d] = i % out[d];
                i /= out[d];
            }
            op.apply(a[offset(ad, &index)], b[offset(bd, &index)])
        })
        .collect()
}

#[test]
fn binary_ops_broadcast_like_numpy() {
    let cases: [(&[usize], &[usize]); 7] = [
        (&[1], &[1]),
        (&[2, 3, 1, 5], &[3, 4, 1]),
        (&[7, 9], &[7, 9]),
        (&[4, 1], &[1, 6]),
        (&[], &[2, 3]),
        (&[3, 1, 5], &[5]),
        (&[2, 3, 64, 129], &[1, 3, 1, 129]),
    ];
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
        for (ad, bd) in cases {
            let a = values(ad.iter().product(), 3);
            // Divisors away from 0, so Div compares values, not overflows.
            let b: Vec<f32> = values(bd.iter().product(), 4)
                .iter()
                .map(|x| x + x.signum() * 0.5)
                .collect();
            let out = pollster::block_on(gpu().binary(op, &upload(ad, &a), &upload(bd, &b)))
                .expect("binary");
            let want = cpu_binary(op, &a, ad, &b, bd);
            assert_eq!(out.dims(), broadcast_shape(ad, bd).expect("shape"));
            let got = out.read_blocking(gpu()).expect("read-back");
            let diff = max_diff(&got, &want);
            eprintln!("{op:?} {ad:?} {bd:?} → {:?}: max diff {diff:e}", out.dims());
            assert!(diff <= 1e-4, "{op:?} {ad:?} {bd:?}: max diff {diff}");
        }
    }
}

#[test]
fn binary_rejects_shapes_that_do_not_broadcast() {
    let a = upload(&[2, 3], &values(6, 1));
    let b = upload(&[4], &values(4, 2));
    let err = pollster::block_on(gpu().binary(BinaryOp::Add, &a, &b)).err();
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
    let seven = upload(&[1, 1, 1, 1, 1, 1, 2], &values(2, 1));
    let err = pollster::block_on(gpu().binary(BinaryOp::Add, &seven, &seven)).err();
    assert!(matches!(err, Some(GpuError::Shape { .. })), "{err:?}");
}
