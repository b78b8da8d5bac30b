//! Sentence embeddings against an independent reference: `scripts/make_text_models.py` writes
//! all-MiniLM-L6-v2 as a Hugging Face folder (onnx/, tokenizer.json) with, per sentence, the
//! token ids of Hugging Face's Python `tokenizers` and the embedding onnxruntime's hidden states
//! give after numpy's mean pooling and L2 normalisation. Wick's feature-extraction task must give
//! the same ids, embeddings (≤ 1e-4) and cosine similarities (≤ 1e-4). The folder is named by
//! `WICK_TEXT_MODELS`; `cargo xtask test` makes it (plain `cargo test` lists these as ignored).

use std::path::PathBuf;

use serde_json::Value;
use wick_shared::{Pooling, TaskInput, TaskKind, TaskOutput};
use wick_worker::native::load_for_task;
use wick_worker::tasks::{self, feature_extraction};

fn folder() -> PathBuf {
    let Some(dir) = std::env::var_os("WICK_TEXT_MODELS") else {
        panic!("WICK_TEXT_MODELS is not set: run `cargo xtask test`, or scripts/make_text_models.py");
    };
    PathBuf::from(dir).join("all-minilm-l6-v2")
}

#[test]
#[ignore = "needs the text models: `cargo xtask test` makes them (WICK_TEXT_MODELS)"]
fn minilm_embeddings_match_onnxruntime_and_numpy() {
    let dir = folder();
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let sentences = reference["sentences"].as_array().unwrap();
    let texts: Vec<String> = sentences.iter().map(|s| s["text"].as_str().unwrap().to_string()).collect();
    let loaded = load_for_task(&dir, TaskKind::FeatureExtraction).unwrap();

    let tok = feature_extraction::tokenizer(&loaded).unwrap();
    for s in sentences {
        let enc = tok.encode(s["text"].as_str().unwrap(), true).unwrap();
        let want: Vec<u32> = s["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(enc.get_ids(), want.as_slice(), "token ids of {:?}", s["text"]);
    }

    let input = TaskInput::FeatureExtraction { texts: texts.clone(), pooling: Some(Pooling::Mean), normalize: Some(true) };
    let TaskOutput::FeatureExtraction { embeddings } = pollster::block_on(tasks::run(&loaded, input)).unwrap().output else {
        panic!("not embeddings")
    };
    let dims = embeddings.dims.clone();
    assert_eq!(dims, vec![texts.len(), 384]);
    let values: Vec<f32> = embeddings.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let row = |i: usize| &values[i * 384..(i + 1) * 384];
    let mut worst = 0f32;
    for (i, s) in sentences.iter().enumerate() {
        for (got, want) in row(i).iter().zip(s["embedding"].as_array().unwrap()) {
            worst = worst.max((got - want.as_f64().unwrap() as f32).abs());
        }
    }
    let mut worst_cos = 0f32;
    for i in 0..texts.len() {
        for j in 0..texts.len() {
            let cos: f32 = row(i).iter().zip(row(j)).map(|(a, b)| a * b).sum();
            worst_cos = worst_cos.max((cos - reference["cosine"][i][j].as_f64().unwrap() as f32).abs());
        }
    }
    eprintln!("embeddings: max |wick - reference| = {worst:.2e}; cosine similarities: {worst_cos:.2e}");
    assert!(worst <= 1e-4, "embeddings differ by {worst}");
    assert!(worst_cos <= 1e-4, "cosine similarities differ by {worst_cos}");
}
