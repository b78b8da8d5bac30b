//! What the GPU integration tests share (tests/gpu.rs, tests/gpu_placement.rs): the fixtures
//! folder, a fresh device, and the comparison.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::rc::Rc;

use candle_core::Tensor;
use wick_gpu::Gpu;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// A device of its own (lavapipe natively); no adapter is a failure, not a skip.
pub fn gpu() -> Rc<Gpu> {
    Rc::new(Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}")))
}

pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
