//! Object detection against an independent reference: `scripts/make_detection_models.py` writes
//! facenet-pytorch's MTCNN (three nets in one graph) and ddddocr's YOLOX detector as Hugging
//! Face folders with photos, and runs each photo through a numpy + onnxruntime pipeline that
//! follows facenet-pytorch's `detect_face` and ddddocr's own post-processing
//! (`reference.json`, `test_data_set_*`). Here Wick's pre-processing, model and
//! post-processing (tasks/object_detection.rs, mtcnn.rs, yolox.rs) must agree with it: the
//! same boxes within 2 px, the same labels. The folder is named by `WICK_VISION_MODELS`;
//! `cargo xtask test` makes it and runs these (plain `cargo test` lists them as ignored).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use wick_shared::{Detection, ImageInput, TaskInput, TaskKind, TaskOutput};
use wick_worker::native::{data_sets, load_for_task};
use wick_worker::tasks::{self, image::decode, mtcnn, yolox};

const MAX_PX: f32 = 2.0;

fn folder(name: &str) -> PathBuf {
    let Some(dir) = std::env::var_os("WICK_VISION_MODELS") else {
        panic!("WICK_VISION_MODELS is not set: run `cargo xtask test`, or scripts/make_detection_models.py");
    };
    PathBuf::from(dir).join(name)
}

fn json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn flat(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// The worst coordinate difference between two boxes.
fn px_diff(d: &Detection, r: &Value) -> f32 {
    let b = &r["box"];
    let c = |k: &str| b[k].as_f64().unwrap() as f32;
    [(d.bbox.xmin, c("xmin")), (d.bbox.ymin, c("ymin")), (d.bbox.xmax, c("xmax")), (d.bbox.ymax, c("ymax"))]
        .iter()
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Each model input of the data sets through Wick (only the outputs the set holds, so MTCNN's
/// sets run one net each): outputs within `tol` of onnxruntime's.
fn model_parity(dir: &Path, tol: f32) {
    let loaded = load_for_task(dir, TaskKind::ObjectDetection).unwrap();
    for set in data_sets(dir).unwrap() {
        let feeds: HashMap<_, _> = set.inputs.iter().cloned().collect();
        let wanted: Vec<String> = set.outputs.iter().map(|(n, _)| n.clone()).collect();
        let out = loaded.model.run(feeds, Some(&wanted)).unwrap();
        for ((name, want), (got_name, got)) in set.outputs.iter().zip(&out.outputs) {
            assert_eq!(name, got_name);
            assert_eq!(got.dims(), want.dims(), "{name}");
            let diff = max_abs_diff(&flat(got), &flat(want));
            eprintln!("{}: {name} {:?} max |wick - onnxruntime| = {diff:.2e}", set.dir.display(), want.dims());
            assert!(diff <= tol, "{name}: {diff}");
        }
    }
}

/// Every photo of the reference end to end (encoded bytes in, boxes out): the same number of
/// objects with the same labels, each box within 2 px of its reference (matched one to one).
fn boxes_match_reference(name: &str) -> Vec<(String, Vec<Detection>)> {
    let dir = folder(name);
    let loaded = load_for_task(&dir, TaskKind::ObjectDetection).unwrap();
    let reference = json(dir.join("reference.json"));
    let mut all = Vec::new();
    for r in reference["images"].as_array().unwrap() {
        let file = r["file"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let input = TaskInput::ObjectDetection { image: ImageInput::Encoded { bytes }, threshold: None, iou: None };
        let t0 = Instant::now();
        let TaskOutput::ObjectDetection { objects } = pollster::block_on(tasks::run(&loaded, input)).unwrap().output else {
            panic!("not a detection output")
        };
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let want = r["objects"].as_array().unwrap();
        let (mut worst_px, mut worst_score) = (0f32, 0f32);
        let mut free: Vec<&Value> = want.iter().collect();
        for d in &objects {
            let (i, diff) = free
                .iter()
                .enumerate()
                .filter(|(_, w)| w["label"] == d.label.as_str())
                .map(|(i, w)| (i, px_diff(d, w)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or_else(|| panic!("{name} {file}: {d:?} has no reference box left"));
            assert!(diff <= MAX_PX, "{name} {file}: {d:?} is {diff} px from {}", free[i]);
            worst_score = worst_score.max((d.score - free[i]["score"].as_f64().unwrap() as f32).abs());
            worst_px = worst_px.max(diff);
            free.remove(i);
        }
        eprintln!(
            "{name} {file}: {} objects (reference {}), max box diff {worst_px:.3} px, max score diff {worst_score:.2e}, {ms:.0} ms (debug build)",
            objects.len(),
            want.len()
        );
        assert!(free.is_empty(), "{name} {file}: reference boxes not found: {free:?}");
        assert!(worst_score < 1e-3, "{name} {file}: scores differ by {worst_score}");
        all.push((file.to_string(), objects));
    }
    all
}

#[test]
#[ignore = "needs the vision models: `cargo xtask test` makes them (WICK_VISION_MODELS)"]
fn mtcnn_nets_match_onnxruntime_each_run_alone() {
    model_parity(&folder("mtcnn"), 1e-4);
}

#[test]
#[ignore = "needs the vision models: `cargo xtask test` makes them (WICK_VISION_MODELS)"]
fn mtcnn_pyramid_level_matches_the_reference_preprocessing() {
    let dir = folder("mtcnn");
    let cfg: mtcnn::Config = serde_json::from_value(json(dir.join("config.json"))).unwrap();
    let set = data_sets(&dir).unwrap().into_iter().find(|s| s.inputs[0].0 == "pnet_input").unwrap();
    let about = json(set.dir.join("about.json"));
    let bytes = std::fs::read(dir.join(about["image"].as_str().unwrap())).unwrap();
    let x = mtcnn::first_level(&decode(&ImageInput::Encoded { bytes }).unwrap(), &cfg).unwrap().unwrap();
    assert_eq!(x.dims(), set.inputs[0].1.dims());
    let diff = max_abs_diff(&flat(&x), &flat(&set.inputs[0].1));
    eprintln!("mtcnn first pyramid level {:?}: max |wick - numpy| = {diff:.2e}", x.dims());
    assert!(diff <= 1e-4, "{diff}");
}

#[test]
#[ignore = "needs the vision models: `cargo xtask test` makes them (WICK_VISION_MODELS)"]
fn mtcnn_finds_the_astronauts_face_as_the_reference_does() {
    let results = boxes_match_reference("mtcnn");
    let (_, faces) = results.iter().find(|(f, _)| f.ends_with("astronaut.png")).unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let face = &faces[0];
    assert_eq!(face.label, "face");
    assert!(face.score > 0.99);
    // Eileen Collins' face, top left of the 512×512 photo.
    let b = face.bbox;
    assert!(b.xmin > 140.0 && b.xmax < 290.0 && b.ymin > 20.0 && b.ymax < 180.0, "{b:?}");
    let (_, none) = results.iter().find(|(f, _)| f.ends_with("coffee.png")).unwrap();
    assert!(none.is_empty(), "no face in a cup of coffee: {none:?}");
}

#[test]
#[ignore = "needs the vision models: `cargo xtask test` makes them (WICK_VISION_MODELS)"]
fn yolox_letterbox_matches_the_reference_preprocessing() {
    let dir = folder("yolox-ddddocr");
    let cfg: yolox::Config = serde_json::from_value(json(dir.join("config.json"))).unwrap();
    for set in data_sets(&dir).unwrap() {
        let about = json(set.dir.join("about.json"));
        let bytes = std::fs::read(dir.join(about["image"].as_str().unwrap())).unwrap();
        let (x, _) = yolox::letterbox(&decode(&ImageInput::Encoded { bytes }).unwrap(), &cfg).unwrap();
        let (got, want) = (flat(&x), flat(&set.inputs[0].1));
        let diff = max_abs_diff(&got, &want);
        let off = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        eprintln!("{}: letterbox max |wick - numpy| = {diff} levels ({off} of {} values differ)", about["image"], got.len());
        assert!(diff <= 1.0, "{diff}");
    }
}

#[test]
#[ignore = "needs the vision models: `cargo xtask test` makes them (WICK_VISION_MODELS)"]
fn yolox_head_matches_onnxruntime() {
    model_parity(&folder("yolox-ddddocr"), 1e-3);
}

#[test]
#[ignore = "needs the vision models: `cargo xtask test` makes them (WICK_VISION_MODELS)"]
fn yolox_boxes_match_ddddocrs_postprocessing() {
    let results = boxes_match_reference("yolox-ddddocr");
    let (_, letters) = results.iter().find(|(f, _)| f.ends_with("letters.png")).unwrap();
    assert_eq!(letters.len(), 6, "W, K, 7, Q, a, p: {letters:?}");
}
