//! Device errors are deferred: a failed call is reported by the next read-back (or
//! `Gpu::check`), never as values, and the device serves on afterwards. Its own test binary:
//! the error must not reach another test's read-back on a shared device.

mod common;

use common::{gpu, max_diff, read, upload, values};
use wick_gpu::{BinaryOp, GpuError};

#[test]
fn a_failed_call_fails_the_next_read_back_and_the_device_serves_on() {
    let gpu = gpu();
    // 65,536 × 65,535 f32 broadcast to 16 GiB: beyond any device's buffer limit.
    let col = upload(&[65_536, 1], &vec![1.0; 65_536]);
    let row = upload(&[1, 65_535], &vec![2.0; 65_535]);
    let huge = pollster::block_on(gpu.binary(BinaryOp::Add, &col, &row))
        .expect("the call itself is recorded; its error comes later");
    let a = values(6, 1);
    let small = upload(&[2, 3], &a);
    let sum = pollster::block_on(gpu.binary(BinaryOp::Add, &small, &small)).expect("add");
    let err = sum.read_blocking(gpu).unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::Validation { op: "binary", .. } | GpuError::OutOfMemory { op: "binary" }
        ),
        "{err:?}"
    );
    // Reported once; what was recorded with the failed call is void (one submission), but
    // the device serves new calls.
    drop((huge, sum));
    let again = pollster::block_on(gpu.binary(BinaryOp::Mul, &small, &small)).expect("mul");
    let squared: Vec<f32> = a.iter().map(|x| x * x).collect();
    assert_eq!(max_diff(&read(&again), &squared), 0.0);
    pollster::block_on(gpu.check()).expect("nothing left to report");
}
