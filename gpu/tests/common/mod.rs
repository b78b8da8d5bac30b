//! What the kernel tests share: one device per test binary, deterministic inputs, upload and
//! read-back, and the comparison.
#![allow(dead_code)] // each test file uses its own subset

use std::sync::OnceLock;
use wick_gpu::{Gpu, GpuTensor};

/// One device per test binary: opening one is the slow part on lavapipe.
pub fn gpu() -> &'static Gpu {
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
pub fn values(len: usize, seed: u64) -> Vec<f32> {
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

pub fn upload(dims: &[usize], data: &[f32]) -> GpuTensor {
    pollster::block_on(GpuTensor::upload(gpu(), dims, data)).expect("upload")
}

pub fn read(t: &GpuTensor) -> Vec<f32> {
    t.read_blocking(gpu()).expect("read-back")
}

/// Largest difference, relative to the magnitude where it is above 1.
pub fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .fold(0.0, f32::max)
}
