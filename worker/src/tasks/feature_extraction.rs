//! Feature extraction: texts → embeddings. The texts are tokenized with the model's
//! `tokenizer.json` (Hugging Face's `tokenizers`, compiled into the worker), padded to the
//! longest and truncated as the tokenizer says; the encoder's first output (`last_hidden_state`,
//! `[texts, tokens, dims]`) is pooled per text — the mean over its real tokens (default), its
//! first token, or none — and L2-normalised unless `normalize` is false.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer};
use wick_shared::{Pooling, TaskInput, TaskOutput};

use super::{Loaded, Outcome, Running};
use crate::engine::tensor;
use crate::error::{Result, WickError};

pub const FILES: &[&str] = &["tokenizer.json"];

fn bad(message: impl std::fmt::Display) -> WickError {
    WickError::BadTask(message.to_string())
}

/// The model's tokenizer, parsed once: padding to the batch's longest text (whatever the file
/// says: a fixed length would only add work), its own truncation kept.
pub fn tokenizer(loaded: &Loaded) -> Result<&Tokenizer> {
    if let Some(t) = loaded.tokenizer.get() {
        return Ok(t);
    }
    let bytes = loaded.files.get("tokenizer.json").ok_or_else(|| bad("the model was loaded without its tokenizer.json"))?;
    let mut t = Tokenizer::from_bytes(bytes).map_err(|e| bad(format!("tokenizer.json: {e}")))?;
    let (pad_id, pad_token) = t.get_padding().map_or((0, "[PAD]".to_string()), |p| (p.pad_id, p.pad_token.clone()));
    t.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, pad_id, pad_token, ..Default::default() }));
    Ok(loaded.tokenizer.get_or_init(|| t))
}

pub fn run(loaded: &Loaded, input: TaskInput) -> Running<'_> {
    Box::pin(answer(loaded, input))
}

async fn answer(loaded: &Loaded, input: TaskInput) -> Result<Outcome> {
    let TaskInput::FeatureExtraction { texts, pooling, normalize } = input else {
        return Err(bad("not a feature-extraction input"));
    };
    if texts.is_empty() {
        return Err(WickError::BadInput("no texts to embed".into()));
    }
    let tok = tokenizer(loaded)?;
    let encodings = tok.encode_batch(texts, true).map_err(|e| WickError::BadInput(format!("tokenizing: {e}")))?;
    let (n, len) = (encodings.len(), encodings.first().map_or(0, |e| e.len()));
    let column = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
        let v: Vec<i64> = encodings.iter().flat_map(|e| f(e).iter().map(|&x| x as i64)).collect();
        Tensor::from_vec(v, (n, len), &Device::Cpu).map_err(|e| WickError::Internal(e.to_string()))
    };
    let mask = column(&|e| e.get_attention_mask())?;
    let mut feeds = HashMap::new();
    for input in loaded.model.inputs() {
        let value = match input.name.as_str() {
            "input_ids" => column(&|e| e.get_ids())?,
            "attention_mask" => mask.clone(),
            "token_type_ids" => column(&|e| e.get_type_ids())?,
            other => return Err(bad(format!("the model's input '{other}' is not one a text encoder takes"))),
        };
        feeds.insert(input.name.clone(), value);
    }
    let out = loaded.infer(feeds, None).await?;
    let hidden = out.outputs.first().map(|(_, t)| t.clone()).ok_or_else(|| bad("the model has no output"))?;
    let embeddings = pool(&hidden, &mask, pooling.unwrap_or(Pooling::Mean), normalize.unwrap_or(true))
        .map_err(|e| WickError::Execution { node: "pooling".into(), op_type: "FeatureExtraction".into(), message: e.to_string() })?;
    Ok(Outcome {
        output: TaskOutput::FeatureExtraction { embeddings: tensor::to_wire(&embeddings, None)? },
        peak_intermediate_bytes: out.peak_intermediate_bytes,
    })
}

/// Token embeddings `[n, tokens, dims]` → one per text (or all, zeroed at padding), normalised.
pub fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling, normalize: bool) -> candle_core::Result<Tensor> {
    let hidden = hidden.to_dtype(candle_core::DType::F32)?;
    if hidden.rank() != 3 {
        candle_core::bail!("expected [texts, tokens, dims] hidden states, got {:?}", hidden.dims());
    }
    let m = mask.to_dtype(candle_core::DType::F32)?.unsqueeze(2)?;
    let pooled = match pooling {
        Pooling::Mean => hidden.broadcast_mul(&m)?.sum(1)?.broadcast_div(&m.sum(1)?.clamp(1e-9, f64::MAX)?)?,
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
        Pooling::None => hidden.broadcast_mul(&m)?,
    };
    if !normalize {
        return Ok(pooled);
    }
    let last = pooled.rank() - 1;
    let norm = pooled.sqr()?.sum_keepdim(last)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    pooled.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pooling_skips_padding_and_normalises() {
        // Two texts of 2 tokens (the second padded after 1), 2 dims.
        let h = Tensor::from_vec(vec![1f32, 0., 3., 4., 0., 2., 9., 9.], (2, 2, 2), &Device::Cpu).unwrap();
        let mask = Tensor::from_vec(vec![1i64, 1, 1, 0], (2, 2), &Device::Cpu).unwrap();
        let mean = pool(&h, &mask, Pooling::Mean, false).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(mean, [[2.0, 2.0], [0.0, 2.0]]);
        let unit = pool(&h, &mask, Pooling::Mean, true).unwrap().to_vec2::<f32>().unwrap();
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!((unit[0][0] - s).abs() < 1e-6 && (unit[1][1] - 1.0).abs() < 1e-6, "{unit:?}");
        let cls = pool(&h, &mask, Pooling::Cls, false).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(cls, [[1.0, 0.0], [0.0, 2.0]]);
    }
}
