//! The engine against onnxruntime: each ONNX-test-style case under `tests/fixtures/` holds
//! inputs and the outputs onnxruntime produced (scripts/make_fixtures.py). Every model is loaded
//! through the streaming router from disk, as the browser loads it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use wick_worker::engine::Model;
use wick_worker::native::{data_sets, load_model, load_model_chunked};

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Run every data set of `case_dir` on `model`; returns the max abs difference seen.
fn check_against_reference(model: &Model, case_dir: &Path) -> f32 {
    let sets = data_sets(case_dir).expect("reference data readable");
    assert!(!sets.is_empty(), "no test_data_set_* in {}", case_dir.display());
    let mut worst = 0f32;
    for set in sets {
        let inputs: HashMap<_, _> = set.inputs.into_iter().collect();
        let out = model.run(inputs, None).expect("model runs");
        assert_eq!(out.outputs.len(), set.outputs.len(), "{}", set.dir.display());
        for ((name, got), (ref_name, want)) in out.outputs.iter().zip(&set.outputs) {
            assert_eq!(name, ref_name);
            assert_eq!(got.dims(), want.dims(), "{name} in {}", set.dir.display());
            let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (g, w) in got.iter().zip(&want) {
                let d = (g - w).abs();
                assert!(d <= TOLERANCE, "{name} in {}: {g} vs onnxruntime {w}", set.dir.display());
                worst = worst.max(d);
            }
        }
    }
    worst
}

#[test]
fn digits_model_with_embedded_weights_matches_onnxruntime() {
    let case = fixtures().join("digits");
    let model = load_model(&case.join("model.onnx")).unwrap();
    let worst = check_against_reference(&model, &case);
    eprintln!("digits (embedded): max abs diff {worst:e}");
}

#[test]
fn demo_model_with_external_data_matches_onnxruntime() {
    // The committed demo model holds the same weights as external data.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../www/models/digits/model.onnx");
    let model = load_model(&path).unwrap();
    check_against_reference(&model, &fixtures().join("digits"));
}

#[test]
fn two_shard_model_matches_onnxruntime_whatever_the_chunking() {
    let case = fixtures().join("digits-2shards");
    for chunk in [1usize, 7, 4099, 1 << 20] {
        let model = load_model_chunked(&case.join("model.onnx"), |_| chunk).unwrap();
        check_against_reference(&model, &case);
    }
}

#[test]
fn a_second_run_reuses_the_planned_weights() {
    let case = fixtures().join("digits");
    let model = load_model(&case.join("model.onnx")).unwrap();
    let a = check_against_reference(&model, &case);
    let b = check_against_reference(&model, &case);
    assert_eq!(a, b, "runs are deterministic");
}

#[test]
fn a_corrupt_model_is_a_typed_error() {
    let err = load_model(&fixtures().join("corrupt.onnx")).err().expect("corrupt model rejected");
    assert_eq!(err.code(), wick_shared::ErrorCode::InvalidModel, "{err}");
}

#[test]
fn a_missing_shard_is_a_typed_error_naming_the_file() {
    let err = load_model(&fixtures().join("missing-shard/model.onnx")).err().expect("rejected");
    assert_eq!(err.code(), wick_shared::ErrorCode::FetchFailed, "{err}");
    assert!(err.to_string().contains("absent.bin"), "{err}");
}
