//! The ONNX node conformance suite on the WebGPU backend, natively on lavapipe: every case of
//! `node/` whose model uses an op with a WebGPU kernel (`gpu_op_names`) runs through
//! `Model::run_gpu` on one device, compared with the reference outputs as `wick-check
//! conformance --backend webgpu` does. Every GPU case (a step ran on the GPU) must pass unless
//! the CPU backend fails it too, and at least [`MIN_GPU_CASES`] must have run on the GPU.
//!
//! The suite comes from the onnx wheel: `cargo xtask test` fetches it (as `cargo xtask
//! conformance` does) and names its folder in `WICK_ONNX_TESTS`; plain `cargo test` lists this
//! test as ignored.

use std::path::PathBuf;
use std::rc::Rc;

use wick_worker::check::conformance::skip;
use wick_worker::check::{case_dirs, check_case_guarded, Backend, ModelFacts, Tolerance};
use wick_worker::engine::gpu::ops::gpu_op_names;

/// GPU cases measured on the onnx 1.22.0 node suite (lavapipe): 574 (all passing; 1,080 cases
/// ran on the CPU only, 111 skipped). A drop means a kernel stopped taking cases it took.
const MIN_GPU_CASES: usize = 574;

fn node_suite() -> PathBuf {
    let Some(dir) = std::env::var_os("WICK_ONNX_TESTS") else {
        panic!("WICK_ONNX_TESTS is not set: run `cargo xtask test`, or point it at target/onnx-tests/<version>/");
    };
    PathBuf::from(dir).join("node")
}

#[test]
#[ignore = "needs the ONNX backend test data: `cargo xtask test` fetches it (WICK_ONNX_TESTS)"]
fn node_suite_on_the_gpu_matches_the_references() {
    let suite = node_suite();
    let gpu_ops = gpu_op_names();
    let backend = Backend::WebGpu(Rc::new(wick_gpu::Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}"))));
    let tol = Tolerance::default();
    let (mut gpu_passed, mut cpu_only, mut failures) = (0, 0, Vec::new());
    for dir in case_dirs(std::slice::from_ref(&suite)) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(facts) = ModelFacts::read(&dir.join("model.onnx")) else { continue };
        if skip(&name, Some(&facts)).is_some() || !facts.ops.iter().any(|(d, t)| d.is_empty() && gpu_ops.contains(&t.as_str())) {
            continue;
        }
        let report = check_case_guarded(&dir, tol, &backend);
        match (report.gpu, &report.failure) {
            (Some(true), None) => gpu_passed += 1,
            (Some(true), Some(f)) => {
                // A case the CPU backend fails as well is the engine's, not the GPU backend's.
                if check_case_guarded(&dir, tol, &Backend::Cpu).passed() {
                    failures.push(format!("{name}: {}", f.reason()));
                }
            }
            _ => cpu_only += 1,
        }
    }
    eprintln!("node suite on the GPU: {gpu_passed} GPU cases passed, {} failed; {cpu_only} CPU-only", failures.len());
    assert!(failures.is_empty(), "GPU cases that fail where the CPU passes:\n{}", failures.join("\n"));
    assert!(gpu_passed >= MIN_GPU_CASES, "only {gpu_passed} cases ran on the GPU (expected {MIN_GPU_CASES})");
}
