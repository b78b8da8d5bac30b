//! Image classification: an image → the `topK` most likely labels with their probabilities.
//! Reads `preprocessor_config.json` (how to prepare the image, see [`super::image`]) and
//! `config.json` (`id2label`), as in a Hugging Face model folder.

use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;
use serde::Deserialize;
use wick_shared::{ScoredLabel, TaskInput, TaskOutput};

use super::image::{decode, ImageProcessor};
use super::{probabilities, Loaded, Outcome, Running};
use crate::error::{Result, WickError};

pub const FILES: &[&str] = &["config.json", "preprocessor_config.json"];
const DEFAULT_TOP_K: u32 = 5;

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    id2label: BTreeMap<String, String>,
}

pub fn run(loaded: &Loaded, input: TaskInput) -> Running<'_> {
    Box::pin(answer(loaded, input))
}

async fn answer(loaded: &Loaded, input: TaskInput) -> Result<Outcome> {
    let TaskInput::ImageClassification { image, top_k } = input else {
        return Err(WickError::BadTask("not an image-classification input".into()));
    };
    let processor: ImageProcessor = loaded.json("preprocessor_config.json")?;
    let (x, _) = processor.prepare(&decode(&image)?)?;
    let (labels, peak) = classify(loaded, x, top_k.unwrap_or(DEFAULT_TOP_K)).await?;
    Ok(Outcome { output: TaskOutput::ImageClassification { labels }, peak_intermediate_bytes: peak })
}

/// The `k` best labels for a prepared input tensor, and the run's peak intermediate bytes.
pub async fn classify(loaded: &Loaded, x: Tensor, k: u32) -> Result<(Vec<ScoredLabel>, u64)> {
    let config: Config = loaded.json("config.json")?;
    let name = loaded
        .model
        .inputs()
        .first()
        .map(|i| i.name.clone())
        .ok_or_else(|| WickError::BadTask("the model has no input".into()))?;
    let out = loaded.infer(HashMap::from([(name, x)]), None).await?;
    let scores = out
        .outputs
        .first()
        .and_then(|(_, t)| t.flatten_all().ok())
        .and_then(|t| t.to_dtype(candle_core::DType::F32).ok())
        .and_then(|t| t.to_vec1::<f32>().ok())
        .ok_or_else(|| WickError::BadTask("a classifier must output one row of scores".into()))?;
    let p = probabilities(scores);
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    let labels = order
        .into_iter()
        .take(k as usize)
        .map(|i| ScoredLabel {
            label: config.id2label.get(&i.to_string()).cloned().unwrap_or_else(|| format!("LABEL_{i}")),
            score: p[i],
        })
        .collect();
    Ok((labels, out.peak_intermediate_bytes))
}
