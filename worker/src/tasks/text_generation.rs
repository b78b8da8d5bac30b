//! Text generation: a prompt → tokens, one at a time, from a decoder in the Hugging Face /
//! optimum layout (inputs `input_ids`, `attention_mask`, `position_ids`,
//! `past_key_values.{i}.key|value`; outputs `logits`, `present.{i}.key|value`).
//!
//! A [`Generation`] owns one answer in progress: the prompt is rendered with the model's chat
//! template (`tokenizer_config.json`, Jinja through minijinja) and tokenized (`tokenizer.json`);
//! the first [`Generation::step`] runs the whole prompt (prefill) and each later step feeds only
//! the last token, the keys and values of earlier positions coming from the KV cache the
//! generation keeps (the `present` outputs of one step are the `past` inputs of the next; the
//! prompt is never re-fed; on WebGPU the cache stays on the device, `Loaded::infer_keeping`). Each step picks a token (greedy, or sampled with temperature,
//! top-k and top-p from a seeded generator) and returns the text it completes: whole UTF-8
//! characters only, never a piece of a stop text. The caller drives the loop, so the worker can
//! post each piece and yield between steps (that is where `cancel` gets in).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Deserialize;
use serde_json::Value;
use wick_shared::{FinishReason, GenerateOptions, GenerationStats, Prompt};

use super::Loaded;
use crate::engine::Carried;
use crate::error::{Result, WickError};

pub const FILES: &[&str] = &["tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json"];

/// Tokens generated when the request does not say.
const DEFAULT_MAX_NEW_TOKENS: u32 = 256;

fn bad(message: impl std::fmt::Display) -> WickError {
    WickError::BadTask(message.to_string())
}

fn engine(e: candle_core::Error) -> WickError {
    WickError::Execution { node: "generation".into(), op_type: "TextGeneration".into(), message: e.to_string() }
}

/// The parts of `tokenizer_config.json` generation reads.
#[derive(Deserialize, Default)]
struct TokenizerConfig {
    chat_template: Option<Value>,
    bos_token: Option<Value>,
    eos_token: Option<Value>,
}

/// A special token as tokenizer_config.json writes it: a string or `{"content": …}`.
fn token_text(v: &Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

/// `eos_token_id` as configs write it: a number or a list of numbers.
fn ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| n as u32).into_iter().collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).map(|n| n as u32).collect(),
        _ => Vec::new(),
    }
}

/// Render `messages` with the chat template, an assistant turn opened, as transformers'
/// `apply_chat_template(…, add_generation_prompt=True)` does.
pub fn apply_chat_template(template: &str, messages: &[wick_shared::ChatMessage], bos: &str, eos: &str) -> Result<String> {
    let mut env = minijinja::Environment::new();
    // Hugging Face templates call Python string methods (`.strip()`, `.startswith()`…).
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |message: String| -> std::result::Result<String, minijinja::Error> {
        Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message))
    });
    env.add_template("chat", template).map_err(|e| bad(format!("chat_template: {e}")))?;
    let ctx = minijinja::context! {
        messages => messages.iter().map(|m| minijinja::context! { role => m.role, content => m.content }).collect::<Vec<_>>(),
        add_generation_prompt => true,
        bos_token => bos,
        eos_token => eos,
    };
    let chat = env.get_template("chat").map_err(|e| bad(format!("chat_template: {e}")))?;
    chat.render(ctx).map_err(|e| WickError::BadInput(format!("applying the chat template: {e}")))
}

/// The KV-cache inputs and the outputs that refill them, per layer.
struct CacheSlot {
    input: String,
    output: String,
    dtype: DType,
    /// `[1, kv_heads, 0, head_dim]`: the empty cache of the first step.
    empty: Vec<usize>,
}

/// How the next token is picked.
struct Sampler {
    temperature: f32,
    top_k: usize,
    top_p: f32,
    rng: StdRng,
}

impl Sampler {
    fn new(o: &GenerateOptions, seed: u64) -> Result<Self> {
        let temperature = o.temperature.unwrap_or(0.0);
        let top_p = o.top_p.unwrap_or(1.0);
        if !(temperature >= 0.0 && temperature.is_finite()) || !(top_p > 0.0 && top_p <= 1.0) {
            return Err(WickError::BadInput(format!(
                "temperature must be ≥ 0 and topP in (0, 1]; got {temperature} and {top_p}"
            )));
        }
        let top_k = o.top_k.map_or(0, |k| k as usize);
        Ok(Sampler { temperature, top_k, top_p, rng: StdRng::seed_from_u64(o.seed.unwrap_or(seed)) })
    }

    fn pick(&mut self, logits: &[f32]) -> u32 {
        let argmax = || logits.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as u32;
        if self.temperature == 0.0 || self.top_k == 1 {
            return argmax();
        }
        // Candidates by logit, best first; keep the top k.
        let mut order: Vec<u32> = (0..logits.len() as u32).filter(|&i| !logits[i as usize].is_nan()).collect();
        order.sort_unstable_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
        if self.top_k > 0 {
            order.truncate(self.top_k);
        }
        let Some(&best) = order.first() else { return argmax() };
        let top = logits[best as usize];
        let mut probs: Vec<f32> = order.iter().map(|&i| ((logits[i as usize] - top) / self.temperature).exp()).collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        // Nucleus: the smallest prefix whose probability reaches top_p.
        let mut mass = 0.0;
        let keep = probs.iter().position(|&p| {
            mass += p;
            mass >= self.top_p
        });
        let keep = keep.map_or(probs.len(), |i| i + 1);
        let (order, probs) = (&order[..keep], &probs[..keep]);
        let mut r = self.rng.random::<f32>() * probs.iter().sum::<f32>();
        for (&id, &p) in order.iter().zip(probs) {
            r -= p;
            if r <= 0.0 {
                return id;
            }
        }
        order[keep - 1]
    }
}

/// What one step produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A token was generated; `text` is what it completed (may be empty: part of a character,
    /// or held back while it could be the start of a stop text).
    Token { id: u32, text: String },
    /// Generation ended; `text` is what was still held back and belongs to the answer.
    Finished { reason: FinishReason, text: String },
}

/// One answer in progress.
pub struct Generation<'a> {
    loaded: &'a Loaded,
    tokenizer: &'a tokenizers::Tokenizer,
    cache: Vec<CacheSlot>,
    /// The KV cache on the host, by slot (the CPU backend; on WebGPU only before the first step
    /// and for values that ended on the host).
    past: Vec<Option<Tensor>>,
    /// The KV cache that WebGPU steps left on the device, by input name: never read back.
    past_on_device: Carried,
    has_position_ids: bool,
    logits_name: String,
    /// Prompt and generated tokens so far.
    tokens: Vec<u32>,
    prompt_len: usize,
    eos: Vec<u32>,
    stop: Vec<String>,
    max_new: usize,
    sampler: Sampler,
    /// The answer's text so far, and how much of it has been handed out.
    text: String,
    emitted: usize,
    finished: Option<FinishReason>,
    /// The last step's next-token logits.
    logits: Vec<f32>,
    prefill_ms: f64,
    decode_ms: f64,
}

impl<'a> Generation<'a> {
    /// Template and tokenize `prompt`; nothing runs yet. `seed` is used unless the options
    /// carry one.
    pub fn new(loaded: &'a Loaded, prompt: &Prompt, options: &GenerateOptions, seed: u64) -> Result<Self> {
        let tokenizer = super::feature_extraction::tokenizer(loaded)?;
        let tc: TokenizerConfig = loaded.json("tokenizer_config.json")?;
        let config: Value = loaded.json("config.json")?;
        let generation: Value = loaded.json("generation_config.json")?;
        let text = match prompt {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(messages) => {
                let template = match &tc.chat_template {
                    Some(Value::String(t)) => t.clone(),
                    _ => return Err(bad("tokenizer_config.json has no chat_template: send the prompt as text")),
                };
                apply_chat_template(&template, messages, &token_text(&tc.bos_token), &token_text(&tc.eos_token))?
            }
        };
        // The template wrote the special tokens itself; a text prompt is taken as it is.
        let encoding = tokenizer.encode(text.as_str(), false).map_err(|e| WickError::BadInput(format!("tokenizing: {e}")))?;
        let tokens = encoding.get_ids().to_vec();
        if tokens.is_empty() {
            return Err(WickError::BadInput("the prompt is empty".into()));
        }
        let mut eos = ids(generation.get("eos_token_id"));
        if eos.is_empty() {
            eos = ids(config.get("eos_token_id"));
        }
        if let Some(id) = tokenizer.token_to_id(&token_text(&tc.eos_token)) {
            if !eos.contains(&id) {
                eos.push(id);
            }
        }

        let model = &loaded.model;
        let (heads, hidden) = (config["num_attention_heads"].as_u64(), config["hidden_size"].as_u64());
        let kv_heads = config["num_key_value_heads"].as_u64().or(heads);
        let head_dim = config["head_dim"].as_u64().or(hidden.zip(heads).map(|(h, n)| h / n.max(1)));
        let mut cache = Vec::new();
        for input in model.inputs() {
            let Some(rest) = input.name.strip_prefix("past_key_values.") else { continue };
            // Declared dims win; the config fills symbolic ones.
            let dim = |i: usize, fallback: Option<u64>| input.dims.get(i).copied().flatten().or(fallback);
            let (Some(kvh), Some(hd)) = (dim(1, kv_heads), dim(3, head_dim)) else {
                return Err(bad(format!("cannot tell the shape of {}: config.json has no num_key_value_heads / head_dim", input.name)));
            };
            let output = format!("present.{rest}");
            if !model.outputs().iter().any(|o| o.name == output) {
                return Err(bad(format!("the model takes {} but has no output {output}", input.name)));
            }
            let dtype = if input.dtype == Some(wick_shared::DType::Float16) { DType::F16 } else { DType::F32 };
            cache.push(CacheSlot { input: input.name.clone(), output, dtype, empty: vec![1, kvh as usize, 0, hd as usize] });
        }
        let names: Vec<&str> = model.inputs().iter().map(|i| i.name.as_str()).collect();
        if !names.contains(&"input_ids") {
            return Err(bad("not a decoder: the model has no input_ids input"));
        }
        let logits_name = model
            .outputs()
            .iter()
            .find(|o| o.name == "logits")
            .or_else(|| model.outputs().first())
            .map(|o| o.name.clone())
            .ok_or_else(|| bad("the model has no output"))?;
        let past = cache
            .iter()
            .map(|c| Tensor::zeros(c.empty.as_slice(), c.dtype, &Device::Cpu).map(Some).map_err(engine))
            .collect::<Result<Vec<_>>>()?;
        let max_new = options.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS) as usize;
        Ok(Generation {
            loaded,
            tokenizer,
            cache,
            past,
            past_on_device: Carried::new(),
            has_position_ids: names.contains(&"position_ids"),
            logits_name,
            prompt_len: tokens.len(),
            tokens,
            eos,
            stop: options.stop.iter().filter(|s| !s.is_empty()).cloned().collect(),
            max_new,
            sampler: Sampler::new(options, seed)?,
            text: String::new(),
            emitted: 0,
            finished: None,
            logits: Vec::new(),
            prefill_ms: 0.0,
            decode_ms: 0.0,
        })
    }

    /// The prompt's token ids.
    pub fn prompt_tokens(&self) -> &[u32] {
        &self.tokens[..self.prompt_len]
    }

    /// The generated token ids so far (an EOS token included).
    pub fn generated_tokens(&self) -> &[u32] {
        &self.tokens[self.prompt_len..]
    }

    /// The next-token logits of the last step (after the first: the prompt's last position).
    pub fn last_logits(&self) -> &[f32] {
        &self.logits
    }

    /// The answer so far (without a stop text).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The forward pass over `new` tokens at the end of `self.tokens`: the last position's logits.
    async fn forward(&mut self, new: usize) -> Result<Vec<f32>> {
        let total = self.tokens.len();
        let past_len = total - new;
        let cpu = &Device::Cpu;
        let t = |v: Vec<i64>| Tensor::from_vec(v, (1, new), cpu).map_err(engine);
        let mut feeds = HashMap::new();
        feeds.insert("input_ids".to_string(), t(self.tokens[past_len..].iter().map(|&x| x as i64).collect())?);
        feeds.insert(
            "attention_mask".to_string(),
            Tensor::from_vec(vec![1i64; total], (1, total), cpu).map_err(engine)?,
        );
        if self.has_position_ids {
            feeds.insert("position_ids".to_string(), t((past_len as i64..total as i64).collect())?);
        }
        for (slot, past) in self.cache.iter().zip(&self.past) {
            if let Some(past) = past {
                feeds.insert(slot.input.clone(), past.clone());
            }
        }
        let mut wanted = vec![self.logits_name.clone()];
        wanted.extend(self.cache.iter().map(|c| c.output.clone()));
        // On the model's backend; with WebGPU the cache stays on the device from step to step.
        let keep: Vec<String> = self.cache.iter().map(|c| c.output.clone()).collect();
        let carried = std::mem::take(&mut self.past_on_device);
        let (out, mut kept) = self.loaded.infer_keeping(feeds, carried, Some(&wanted), &keep).await?;
        let mut out: HashMap<String, Tensor> = out.outputs.into_iter().collect();
        for (slot, past) in self.cache.iter().zip(self.past.iter_mut()) {
            *past = None;
            match kept.remove(&slot.output) {
                Some(on_device) => drop(self.past_on_device.insert(slot.input.clone(), on_device)),
                None => {
                    let host = out.remove(&slot.output).ok_or_else(|| bad(format!("the model did not produce {}", slot.output)))?;
                    *past = Some(host);
                }
            }
        }
        let logits = out.remove(&self.logits_name).ok_or_else(|| bad("the model did not produce logits"))?;
        let vocab = *logits.dims().last().unwrap_or(&0);
        let last = logits
            .to_dtype(DType::F32)
            .and_then(|l| l.flatten_all())
            .and_then(|l| l.narrow(0, l.elem_count() - vocab, vocab))
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(engine)?;
        Ok(last)
    }

    /// Generate one token (the first call runs the prompt), or say why generation ended.
    pub async fn step(&mut self, now_ms: &dyn Fn() -> f64) -> Result<Step> {
        if let Some(reason) = self.finished {
            return Ok(Step::Finished { reason, text: String::new() });
        }
        if self.tokens.len() - self.prompt_len >= self.max_new {
            return Ok(self.finish(FinishReason::Length));
        }
        let first = self.tokens.len() == self.prompt_len;
        let started = now_ms();
        let logits = self.forward(if first { self.prompt_len } else { 1 }).await?;
        let id = self.sampler.pick(&logits);
        self.logits = logits;
        let took = now_ms() - started;
        if first {
            self.prefill_ms = took;
        } else {
            self.decode_ms += took;
        }
        self.tokens.push(id);
        if self.eos.contains(&id) {
            return Ok(self.finish(FinishReason::Eos));
        }
        let decoded = self
            .tokenizer
            .decode(&self.tokens[self.prompt_len..], true)
            .map_err(|e| WickError::Internal(format!("decoding: {e}")))?;
        self.text = decoded;
        if let Some(at) = self.stop.iter().filter_map(|s| self.text.find(s.as_str())).min() {
            self.text.truncate(at);
            return Ok(self.finish(FinishReason::Stop));
        }
        Ok(Step::Token { id, text: self.release(false) })
    }

    /// The text not yet handed out that is safe to hand out: whole characters, and (unless
    /// `all`) nothing that could still grow into a stop text.
    fn release(&mut self, all: bool) -> String {
        let mut end = self.text.len();
        if !all {
            // An incomplete byte sequence decodes to U+FFFD at the end: wait for its rest.
            end = self.text.trim_end_matches('\u{FFFD}').len();
            for stop in &self.stop {
                for cut in (1..stop.len()).rev() {
                    if stop.is_char_boundary(cut) && self.text[..end].ends_with(&stop[..cut]) {
                        end = end.min(self.text.len() - cut);
                        break;
                    }
                }
            }
        }
        if end <= self.emitted || !self.text.is_char_boundary(end) || !self.text.is_char_boundary(self.emitted) {
            return String::new();
        }
        let piece = self.text[self.emitted..end].to_string();
        self.emitted = end;
        piece
    }

    fn finish(&mut self, reason: FinishReason) -> Step {
        self.finished = Some(reason);
        Step::Finished { reason, text: self.release(true) }
    }

    /// Counts and timings so far.
    pub fn stats(&self) -> GenerationStats {
        let generated = self.tokens.len() - self.prompt_len;
        let rate = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1000.0 / ms } else { 0.0 };
        GenerationStats {
            prompt_tokens: self.prompt_len as u32,
            generated_tokens: generated as u32,
            prefill_ms: self.prefill_ms,
            prefill_tok_s: rate(self.prompt_len, self.prefill_ms),
            decode_tok_s: rate(generated.saturating_sub(1), self.decode_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(temperature: f32, top_k: u32, top_p: f32, seed: u64) -> Sampler {
        let o = GenerateOptions { temperature: Some(temperature), top_k: Some(top_k), top_p: Some(top_p), ..Default::default() };
        Sampler::new(&o, seed).unwrap()
    }

    #[test]
    fn greedy_takes_the_first_largest_logit() {
        let mut s = sampler(0.0, 0, 1.0, 0);
        assert_eq!(s.pick(&[0.5, 2.0, 2.0, -1.0]), 1);
    }

    #[test]
    fn top_k_and_top_p_restrict_the_draw() {
        let logits = [1.0, 3.0, 2.9, -5.0, 0.0];
        // Top 2 only: never anything but 1 or 2.
        let mut s = sampler(1.0, 2, 1.0, 7);
        assert!((0..200).all(|_| matches!(s.pick(&logits), 1 | 2)));
        // A tiny nucleus keeps the best token alone.
        let mut s = sampler(1.0, 0, 0.01, 7);
        assert!((0..50).all(|_| s.pick(&logits) == 1));
        // The same seed gives the same draws; a high temperature reaches the tail.
        let draws = |seed| {
            let mut s = sampler(5.0, 0, 1.0, seed);
            (0..300).map(|_| s.pick(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        assert!(draws(3).contains(&3));
    }

    #[test]
    fn bad_sampling_options_are_rejected() {
        let o = GenerateOptions { temperature: Some(-1.0), ..Default::default() };
        assert!(matches!(Sampler::new(&o, 0), Err(WickError::BadInput(_))));
        let o = GenerateOptions { top_p: Some(0.0), ..Default::default() };
        assert!(matches!(Sampler::new(&o, 0), Err(WickError::BadInput(_))));
    }

    #[test]
    fn chat_template_renders_like_transformers() {
        // SmolLM2's template (tokenizer_config.json), expected text from transformers' rendering.
        let template = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
        let messages = [wick_shared::ChatMessage { role: "user".into(), content: "What is the capital of France?".into() }];
        let text = apply_chat_template(template, &messages, "", "<|im_end|>").unwrap();
        assert_eq!(text, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n");
        let failing = "{{ raise_exception('roles must alternate') }}";
        assert!(matches!(apply_chat_template(failing, &messages, "", ""), Err(WickError::BadInput(m)) if m.contains("alternate")));
    }
}
