//! Image classification against an independent reference: `scripts/make_vision_models.py` writes
//! EfficientNet-Lite0 as a Hugging Face folder (config.json with the ImageNet labels,
//! preprocessor_config.json, onnx/) with scikit-image's photos, each preprocessed by Pillow +
//! numpy and classified by onnxruntime. Here Wick's own pre-processing (tasks/image.rs), model
//! and post-processing must agree with that. The folder is named by `WICK_VISION_MODELS`;
//! `cargo xtask test` makes it and runs these (plain `cargo test` lists them as ignored).

use std::path::PathBuf;

use image::RgbImage;
use serde_json::Value;
use wick_shared::{ImageInput, TaskInput, TaskKind, TaskOutput};
use wick_worker::native::{data_sets, load_for_task};
use wick_worker::tasks::{self, image::ImageProcessor};

fn folder() -> PathBuf {
    let Some(dir) = std::env::var_os("WICK_VISION_MODELS") else {
        panic!("WICK_VISION_MODELS is not set: run `cargo xtask test`, or scripts/make_vision_models.py");
    };
    PathBuf::from(dir).join("efficientnet-lite0")
}

fn reference() -> Vec<Value> {
    let text = std::fs::read_to_string(folder().join("reference.json")).expect("reference.json");
    let v: Value = serde_json::from_str(&text).expect("reference.json is JSON");
    v["results"].as_array().expect("results").clone()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn labels(out: &TaskOutput) -> Vec<String> {
    match out {
        TaskOutput::ImageClassification { labels } => labels.iter().map(|l| l.label.clone()).collect(),
        other => panic!("not a classification: {other:?}"),
    }
}

#[test]
#[ignore = "needs the vision models: `cargo xtask test` makes them (WICK_VISION_MODELS)"]
fn preprocessing_matches_pillow_within_1e_2() {
    let dir = folder();
    let processor: ImageProcessor =
        serde_json::from_slice(&std::fs::read(dir.join("preprocessor_config.json")).unwrap()).unwrap();
    let sets = data_sets(&dir).unwrap();
    for r in reference() {
        let photo = r["file"].as_str().unwrap().trim_start_matches("images/");
        let (w, h) = (r["width"].as_u64().unwrap() as u32, r["height"].as_u64().unwrap() as u32);
        // The same decoded pixels (Pillow's), so this compares resize, crop and normalisation.
        let rgb = std::fs::read(dir.join("reference").join(format!("{photo}.rgb"))).unwrap();
        let img = RgbImage::from_raw(w, h, rgb.clone()).unwrap();
        let (x, _) = processor.prepare(&img).unwrap();
        let set = sets.iter().find(|s| s.dir.ends_with(r["test_data_set"].as_str().unwrap())).unwrap();
        let want = set.inputs[0].1.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let diff = max_abs_diff(&got, &want);
        // Decoding: Wick's decoder on the file's bytes against Pillow's pixels.
        let bytes = std::fs::read(dir.join(r["file"].as_str().unwrap())).unwrap();
        let decoded = tasks::image::decode(&ImageInput::Encoded { bytes }).unwrap();
        let decode_diff = decoded.as_raw().iter().zip(&rgb).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        eprintln!("{photo}: preprocessing max |wick - pillow| = {diff:.5}; decoding max |Δ| = {decode_diff} levels");
        assert!(diff <= 1e-2, "{photo}: preprocessing differs by {diff}");
        if photo.ends_with(".png") {
            assert_eq!(decode_diff, 0, "{photo}: PNG decoding is exact");
        }
    }
}

#[test]
#[ignore = "needs the vision models: `cargo xtask test` makes them (WICK_VISION_MODELS)"]
fn top5_equals_onnxruntime_on_the_same_inputs_and_end_to_end() {
    let dir = folder();
    let loaded = load_for_task(&dir, TaskKind::ImageClassification).unwrap();
    let sets = data_sets(&dir).unwrap();
    for r in reference() {
        let photo = r["file"].as_str().unwrap();
        let want: Vec<String> = r["top5"].as_array().unwrap().iter().map(|l| l["label"].as_str().unwrap().to_string()).collect();
        let scores: Vec<f32> = r["top5"].as_array().unwrap().iter().map(|l| l["score"].as_f64().unwrap() as f32).collect();
        // The same input tensor as onnxruntime's: model and post-processing.
        let set = sets.iter().find(|s| s.dir.ends_with(r["test_data_set"].as_str().unwrap())).unwrap();
        let (top, _) = pollster::block_on(tasks::image_classification::classify(&loaded, set.inputs[0].1.clone(), 5)).unwrap();
        let got: Vec<String> = top.iter().map(|l| l.label.clone()).collect();
        assert_eq!(got, want, "{photo}: top-5 on onnxruntime's input");
        let got_scores: Vec<f32> = top.iter().map(|l| l.score).collect();
        assert!(max_abs_diff(&got_scores, &scores) <= 1e-4, "{photo}: {got_scores:?} vs {scores:?}");
        // End to end from the file's bytes: Wick's decoder and pre-processing.
        let bytes = std::fs::read(dir.join(photo)).unwrap();
        let input = TaskInput::ImageClassification { image: ImageInput::Encoded { bytes }, top_k: Some(5) };
        let out = pollster::block_on(tasks::run(&loaded, input)).unwrap().output;
        eprintln!("{photo}: top-1 {:?}; top-5 {:?}", labels(&out)[0], labels(&out));
        assert_eq!(labels(&out), want, "{photo}: top-5 end to end");
    }
}
