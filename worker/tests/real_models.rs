//! Real models against onnxruntime, natively: ONNX-test-style cases that
//! `scripts/make_real_models.py` builds from registry packages (EfficientNet-Lite0 from its
//! packaged weights, all-MiniLM-L6-v2 from its safetensors; silero VAD and ddddocr's YOLOX-style
//! detector exactly as their packages ship them) into a folder named by
//! `WICK_REAL_MODELS`. `cargo xtask test` makes them and runs these; plain `cargo test` lists
//! them as ignored.

use std::path::PathBuf;

use wick_worker::check::{check_case, Tolerance};

fn case(name: &str) {
    let Some(dir) = std::env::var_os("WICK_REAL_MODELS") else {
        panic!("WICK_REAL_MODELS is not set: run `cargo xtask test`, or make the models with scripts/make_real_models.py");
    };
    let report = check_case(&PathBuf::from(dir).join(name), Tolerance::default());
    for o in &report.outputs {
        eprintln!("{name}: {o:?}");
    }
    if let Some(failure) = &report.failure {
        panic!("{name}: {}", failure.reason());
    }
    assert!(!report.outputs.is_empty(), "{name}: no output compared");
}

#[test]
#[ignore = "needs the real models: `cargo xtask test` makes them (WICK_REAL_MODELS)"]
fn efficientnet_lite0_matches_onnxruntime() {
    case("efficientnet-lite0");
}

#[test]
#[ignore = "needs the real models: `cargo xtask test` makes them (WICK_REAL_MODELS)"]
fn minilm_matches_onnxruntime() {
    case("minilm");
}

#[test]
#[ignore = "needs the real models: `cargo xtask test` makes them (WICK_REAL_MODELS)"]
fn silero_vad_as_shipped_matches_onnxruntime() {
    case("silero-vad");
}

#[test]
#[ignore = "needs the real models: `cargo xtask test` makes them (WICK_REAL_MODELS)"]
fn ddddocr_detector_as_shipped_matches_onnxruntime() {
    case("ddddocr-det");
}
