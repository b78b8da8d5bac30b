//! Speech recognition: Whisper log-mel features → token ids → text, greedy, from an encoder and
//! a decoder in optimum's merged layout (the Hugging Face / transformers.js folder:
//! `onnx/encoder_model.onnx`, `onnx/decoder_model_merged.onnx`).
//!
//! The encoder runs once per 30 s window (`input_features` `[1, 80, 3000]` →
//! `last_hidden_state`). The decoder's inputs are `input_ids`, `encoder_hidden_states`,
//! `past_key_values.{i}.decoder|encoder.key|value` and `use_cache_branch`; its outputs `logits`
//! and `present.*`. A [`Decoding`] owns one window in progress: its first [`Decoding::step`] feeds
//! the whole prompt (`decoder_start_token_id`, then the forced ids of `generation_config.json`,
//! or `no_timestamps_token_id`) with `use_cache_branch` false and empty pasts (the decoder
//! computes the cross-attention keys and values from the encoder's states); each later step
//! feeds only the newest token with `use_cache_branch` true and the `present.*` of the step
//! before as the pasts (self-attention grows by one position, the cross-attention ones pass
//! through). Before the argmax, `suppress_tokens` are set to −∞ at every step and
//! `begin_suppress_tokens` at the first generated step, as transformers and CTranslate2 do. It
//! ends at `eos_token_id` (not returned) or when the tokens reach `max_target_positions`. The
//! caller drives the steps, so the worker can post words and take a `cancel` between them.
//!
//! **Timestamps** ([`Transcriber::start_with`] with `timestamps`): the prompt drops
//! `no_timestamps_token_id`, and each step applies Whisper's timestamp rules as CTranslate2's
//! `ApplyTimestampRules` does (OpenAI's `ApplyTimestampRules`, transformers'
//! `WhisperTimeStampLogitsProcessor` are near copies): the ids after `<|notimestamps|>` are
//! `<|0.00|>`, `<|0.02|>`… to the vocabulary's end; `<|notimestamps|>` is suppressed; the first
//! token is a timestamp ≤ `max_initial_timestamp_index` (generation_config; 50 = 1.00 s when
//! absent, as CTranslate2 and OpenAI's transcribe); after a timestamp that follows a timestamp
//! (or opens the window) comes text, after one that follows text a timestamp or the EOS;
//! timestamps never decrease (an equal one may follow); and when the timestamps' summed
//! probability (log-sum-exp) beats every text token's, only timestamps are allowed (the masks
//! and suppressions before it count). [`Transcriber::segments`] cuts such tokens into
//! [`Segment`]s (start, end, trimmed text, seconds from the window's start); text whose closing
//! timestamp the window cut off ends `None`.
//!
//! This module takes FEATURES; the audio front end (PCM → log-mel) is `audio.rs`.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use serde_json::Value;

use super::Loaded;
use crate::engine::Model;
use crate::error::{Result, WickError};

/// The files a speech-recognition load reads beside the models.
pub const FILES: &[&str] = &["tokenizer.json", "config.json", "generation_config.json"];

/// The graphs a load reads from the folder's `onnx/`: the decoder is the loaded model, the
/// encoder one of its [`Loaded::graphs`].
pub const GRAPHS: &[&str] = &["decoder_model_merged", "encoder_model"];

/// The encoder's stem in [`GRAPHS`].
const ENCODER: &str = "encoder_model";

/// Mel bins and frames of one 30 s window, when the encoder does not declare them.
const MELS: usize = 80;
const FRAMES: usize = 3000;

fn bad(message: impl std::fmt::Display) -> WickError {
    WickError::BadTask(message.to_string())
}

fn engine(e: candle_core::Error) -> WickError {
    WickError::Execution { node: "speech-recognition".into(), op_type: "SpeechRecognition".into(), message: e.to_string() }
}

/// The parts of `config.json` decoding reads.
#[derive(Deserialize)]
struct Config {
    d_model: Option<u64>,
    decoder_attention_heads: Option<u64>,
    max_target_positions: Option<u64>,
    decoder_start_token_id: Option<u32>,
    eos_token_id: Option<u32>,
}

/// The parts of `generation_config.json` decoding reads.
#[derive(Deserialize, Default)]
struct GenerationConfig {
    decoder_start_token_id: Option<u32>,
    eos_token_id: Option<Value>,
    no_timestamps_token_id: Option<u32>,
    /// `[[position, id]…]`; an id may be null (a multilingual model's language, left to detect).
    forced_decoder_ids: Option<Vec<(usize, Option<u32>)>>,
    suppress_tokens: Option<Vec<u32>>,
    begin_suppress_tokens: Option<Vec<u32>>,
    max_length: Option<u64>,
    max_initial_timestamp_index: Option<u32>,
}

/// A past input of the decoder and the output that refills it.
struct CacheSlot {
    input: String,
    output: String,
    dtype: DType,
    /// `[1, heads, 0, head_dim]`: the empty past of the first step.
    empty: Vec<usize>,
}

/// A loaded Whisper — the encoder, the decoder with its companion files — and the decoding
/// rules read from them. Cheap to make: it borrows the graphs.
pub struct Transcriber<'a> {
    encoder: &'a Model,
    decoder: &'a Loaded,
    encoder_input: String,
    encoder_dtype: DType,
    mels: usize,
    frames: usize,
    cache: Vec<CacheSlot>,
    prompt: Vec<u32>,
    eos: Vec<u32>,
    suppress: Vec<u32>,
    begin_suppress: Vec<u32>,
    max_tokens: usize,
    /// Where the timestamp tokens are; `None` without `no_timestamps_token_id`.
    timestamps: Option<Timestamps>,
}

/// `eos_token_id` as configs write it: a number or a list of numbers.
fn ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| n as u32).into_iter().collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).map(|n| n as u32).collect(),
        _ => Vec::new(),
    }
}

impl<'a> Transcriber<'a> {
    /// Check the two graphs and read the decoding rules: `loaded` is the decoder, with the
    /// encoder among its graphs and [`FILES`] among its files.
    pub fn new(loaded: &'a Loaded) -> Result<Self> {
        let (encoder, decoder) = (loaded.graph(ENCODER)?, loaded);
        let config: Config = decoder.json("config.json")?;
        let generation: GenerationConfig = decoder.json("generation_config.json")?;

        let encoder_input = encoder
            .inputs()
            .iter()
            .find(|i| i.name == "input_features")
            .or_else(|| encoder.inputs().first())
            .ok_or_else(|| bad("the encoder has no input"))?;
        let declared = |i: usize, fallback: usize| encoder_input.dims.get(i).copied().flatten().map_or(fallback, |d| d as usize);
        let (mels, frames) = (declared(1, MELS), declared(2, FRAMES));
        let encoder_dtype = if encoder_input.dtype == Some(wick_shared::DType::Float16) { DType::F16 } else { DType::F32 };
        let encoder_input = encoder_input.name.clone();

        let names: Vec<&str> = decoder.model.inputs().iter().map(|i| i.name.as_str()).collect();
        for needed in ["input_ids", "encoder_hidden_states"] {
            if !names.contains(&needed) {
                return Err(bad(format!("not a Whisper decoder: it has no {needed} input")));
            }
        }
        if !decoder.model.outputs().iter().any(|o| o.name == "logits") {
            return Err(bad("not a Whisper decoder: it has no logits output"));
        }
        let heads = config.decoder_attention_heads;
        let head_dim = config.d_model.zip(heads).map(|(d, h)| d / h.max(1));
        let mut cache = Vec::new();
        for input in decoder.model.inputs() {
            let Some(rest) = input.name.strip_prefix("past_key_values.") else { continue };
            // Declared dims win; the config fills symbolic ones.
            let dim = |i: usize, fallback: Option<u64>| input.dims.get(i).copied().flatten().or(fallback);
            let (Some(h), Some(hd)) = (dim(1, heads), dim(3, head_dim)) else {
                return Err(bad(format!("cannot tell the shape of {}: config.json has no decoder_attention_heads / d_model", input.name)));
            };
            let output = format!("present.{rest}");
            if !decoder.model.outputs().iter().any(|o| o.name == output) {
                return Err(bad(format!("the decoder takes {} but has no output {output}", input.name)));
            }
            let dtype = if input.dtype == Some(wick_shared::DType::Float16) { DType::F16 } else { DType::F32 };
            cache.push(CacheSlot { input: input.name.clone(), output, dtype, empty: vec![1, h as usize, 0, hd as usize] });
        }

        let start = generation
            .decoder_start_token_id
            .or(config.decoder_start_token_id)
            .ok_or_else(|| bad("generation_config.json has no decoder_start_token_id"))?;
        // The prompt: the start token, then the forced ids by position (language, task,
        // no-timestamps), or the no-timestamps token alone.
        let mut forced = generation.forced_decoder_ids.clone().unwrap_or_default();
        forced.sort_by_key(|&(position, _)| position);
        let mut prompt = vec![start];
        prompt.extend(forced.iter().filter_map(|&(_, id)| id));
        if prompt.len() == 1 {
            prompt.extend(generation.no_timestamps_token_id);
        }
        let mut eos = ids(generation.eos_token_id.as_ref());
        if eos.is_empty() {
            eos.extend(config.eos_token_id);
        }
        if eos.is_empty() {
            return Err(bad("neither generation_config.json nor config.json has an eos_token_id"));
        }
        let max_tokens = config
            .max_target_positions
            .or(generation.max_length)
            .ok_or_else(|| bad("config.json has no max_target_positions"))? as usize;
        if max_tokens <= prompt.len() {
            return Err(bad(format!("max_target_positions {max_tokens} leaves no room after the {}-token prompt", prompt.len())));
        }
        Ok(Transcriber {
            encoder,
            decoder,
            encoder_input,
            encoder_dtype,
            mels,
            frames,
            cache,
            prompt,
            eos,
            suppress: generation.suppress_tokens.unwrap_or_default(),
            begin_suppress: generation.begin_suppress_tokens.unwrap_or_default(),
            max_tokens,
            timestamps: generation.no_timestamps_token_id.map(|no_timestamps| Timestamps {
                no_timestamps,
                max_initial: generation.max_initial_timestamp_index.unwrap_or(MAX_INITIAL_TIMESTAMP_INDEX),
            }),
        })
    }

    /// The decoder prompt every window starts with.
    pub fn prompt(&self) -> &[u32] {
        &self.prompt
    }

    /// The decoder with its companion files (tokenizer, configs).
    pub fn decoder(&self) -> &Loaded {
        self.decoder
    }

    /// Run the encoder on one window's log-mel features (`[mels, frames]`, row-major) and get
    /// ready to decode without timestamps; nothing is decoded yet.
    pub fn start(&self, features: &[f32]) -> Result<Decoding<'_, 'a>> {
        self.start_with(features, false)
    }

    /// [`Transcriber::start`], with timestamp tokens predicted when `timestamps` (the module
    /// doc's rules; [`Transcriber::segments`] reads them).
    pub fn start_with(&self, features: &[f32], timestamps: bool) -> Result<Decoding<'_, 'a>> {
        let rules = match (timestamps, self.timestamps) {
            (false, _) => None,
            (true, Some(rules)) => Some(rules),
            (true, None) => return Err(bad("generation_config.json has no no_timestamps_token_id: this model cannot predict timestamps")),
        };
        let prompt: Vec<u32> = match rules {
            Some(r) => self.prompt.iter().copied().filter(|&id| id != r.no_timestamps).collect(),
            None => self.prompt.clone(),
        };
        if features.len() != self.mels * self.frames {
            return Err(WickError::BadInput(format!(
                "expected {}×{} log-mel features, got {} values",
                self.mels,
                self.frames,
                features.len()
            )));
        }
        let input = Tensor::from_slice(features, (1, self.mels, self.frames), &Device::Cpu)
            .and_then(|t| t.to_dtype(self.encoder_dtype))
            .map_err(engine)?;
        let out = self.encoder.run(HashMap::from([(self.encoder_input.clone(), input)]), None)?;
        let hidden = out.outputs.into_iter().next().map(|(_, t)| t).ok_or_else(|| bad("the encoder has no output"))?;
        let past = self
            .cache
            .iter()
            .map(|c| Tensor::zeros(c.empty.as_slice(), c.dtype, &Device::Cpu).map_err(engine))
            .collect::<Result<Vec<_>>>()?;
        Ok(Decoding { t: self, hidden, past, begin: prompt.len(), tokens: prompt, timestamps: rules, finished: false })
    }

    /// Greedy-decode one window: the generated token ids, without the prompt and the EOS.
    pub fn decode(&self, features: &[f32]) -> Result<Vec<u32>> {
        let mut d = self.start(features)?;
        while d.step()?.is_some() {}
        Ok(d.generated().to_vec())
    }

    /// The text of `tokens`, special and timestamp tokens skipped, surrounding spaces trimmed.
    pub fn text(&self, tokens: &[u32]) -> Result<String> {
        let tok = super::feature_extraction::tokenizer(self.decoder)?;
        // Timestamp ids may be plain added tokens (`<|1.23|>`) in a tokenizer.json: drop them here.
        let first = self.timestamps.map_or(u32::MAX, |t| t.first());
        let text: Vec<u32> = tokens.iter().copied().filter(|&id| id < first).collect();
        let text = tok.decode(&text, true).map_err(|e| bad(format!("decoding tokens: {e}")))?;
        Ok(text.trim().to_string())
    }

    /// Cut a window's tokens, decoded with timestamps, into segments: a timestamp opens a
    /// segment, the next one closes it (two in a row close one and open the next), the text
    /// tokens between are its [`Transcriber::text`]. A closing timestamp with no text before it
    /// opens the segment instead; text with no opening timestamp starts where the last segment
    /// ended (0 at first); text still open at the end has `end: None`; a timestamp still open
    /// with no text after it gives no segment.
    pub fn segments(&self, tokens: &[u32]) -> Result<Vec<Segment>> {
        let t = self.timestamps.ok_or_else(|| bad("generation_config.json has no no_timestamps_token_id: no timestamps"))?;
        let mut segments = Vec::new();
        let (mut start, mut text, mut last_end) = (None, Vec::new(), 0.0);
        for &id in tokens {
            let Some(time) = t.seconds(id) else {
                start.get_or_insert(last_end);
                text.push(id);
                continue;
            };
            match start {
                Some(start) if !text.is_empty() => {
                    segments.push(Segment { start, end: Some(time), text: self.text(&text)? });
                    text.clear();
                    last_end = time;
                }
                _ => {
                    start = Some(time);
                    continue;
                }
            }
            start = None;
        }
        if let (Some(start), false) = (start, text.is_empty()) {
            segments.push(Segment { start, end: None, text: self.text(&text)? });
        }
        Ok(segments)
    }
}

/// `max_initial_timestamp_index` when generation_config.json has none: 1.00 s, CTranslate2's
/// and OpenAI's default.
const MAX_INITIAL_TIMESTAMP_INDEX: u32 = 50;

/// Timestamp tokens per second (each one 0.02 s after the one before).
const TIMESTAMPS_PER_SECOND: f32 = 50.0;

/// Where Whisper's timestamp tokens are and how the first may be placed.
#[derive(Clone, Copy)]
struct Timestamps {
    /// `<|notimestamps|>`; `<|0.00|>` is the id after it, the others follow to the vocabulary's end.
    no_timestamps: u32,
    /// The first generated timestamp is at most `<|0.00|>` + this.
    max_initial: u32,
}

impl Timestamps {
    /// `<|0.00|>`.
    fn first(self) -> u32 {
        self.no_timestamps + 1
    }

    /// Seconds from the window's start of a timestamp token; `None` for any other token.
    fn seconds(self, id: u32) -> Option<f32> {
        id.checked_sub(self.first()).map(|n| n as f32 / TIMESTAMPS_PER_SECOND)
    }

    /// Mask `logits` (suppressions already applied) by the timestamp rules, given the tokens
    /// generated so far (see the module doc; CTranslate2's `ApplyTimestampRules`).
    fn apply(self, logits: &mut [f32], generated: &[u32], eot: u32) -> Result<()> {
        let first = self.first() as usize;
        if first >= logits.len() {
            return Err(bad(format!("the vocabulary ({} ids) has no timestamp tokens after <|notimestamps|> {}", logits.len(), self.no_timestamps)));
        }
        let mask = |logits: &mut [f32], range: std::ops::Range<usize>| {
            let end = range.end.min(logits.len());
            logits[range.start.min(end)..end].fill(f32::NEG_INFINITY);
        };
        mask(logits, self.no_timestamps as usize..self.no_timestamps as usize + 1);
        let is_timestamp = |id: u32| id as usize >= first;
        let Some((&last, before)) = generated.split_last() else {
            // The first token: a timestamp, at most max_initial.
            mask(logits, 0..first);
            mask(logits, first + self.max_initial as usize + 1..logits.len());
            return Ok(());
        };
        let mut weigh = true;
        if is_timestamp(last) {
            if before.last().is_none_or(|&p| is_timestamp(p)) {
                // A segment has just opened: text comes next.
                mask(logits, first..logits.len());
                weigh = false;
            } else {
                // A segment has just closed: a timestamp (the next one's start) or the end.
                mask(logits, 0..eot as usize);
            }
        }
        if let Some(&latest) = generated.iter().rev().find(|&&id| is_timestamp(id)) {
            mask(logits, first..latest as usize);
        }
        if weigh {
            let (text, stamps) = logits.split_at(first);
            let max_text = text.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
            let max_stamp = stamps.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
            if max_stamp > f64::NEG_INFINITY {
                let sum: f64 = stamps.iter().map(|&v| (v as f64 - max_stamp).exp()).sum();
                if max_stamp + sum.ln() > max_text {
                    mask(logits, 0..first);
                }
            }
        }
        Ok(())
    }
}

/// A stretch of speech between two timestamp tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Seconds from the window's start.
    pub start: f32,
    /// `None` when the window ended before the segment's closing timestamp.
    pub end: Option<f32>,
    /// The segment's text, special tokens skipped, trimmed.
    pub text: String,
}

/// One window being decoded.
pub struct Decoding<'t, 'a> {
    t: &'t Transcriber<'a>,
    /// The encoder's output, `[1, positions, d_model]`.
    hidden: Tensor,
    /// The decoder's pasts, in the order of `t.cache`.
    past: Vec<Tensor>,
    /// Prompt and generated tokens so far (never the EOS).
    tokens: Vec<u32>,
    /// The prompt's length: where the generated tokens begin.
    begin: usize,
    /// The timestamp rules, when predicting timestamps.
    timestamps: Option<Timestamps>,
    finished: bool,
}

impl Decoding<'_, '_> {
    /// The generated token ids so far.
    pub fn generated(&self) -> &[u32] {
        &self.tokens[self.begin..]
    }

    /// Decode the next token; `None` once the window has ended (EOS, or no position left).
    pub fn step(&mut self) -> Result<Option<u32>> {
        if self.finished || self.tokens.len() >= self.t.max_tokens {
            self.finished = true;
            return Ok(None);
        }
        let first = self.tokens.len() == self.begin;
        let mut logits = self.forward(first)?;
        for &id in self.t.suppress.iter().chain(if first { &self.t.begin_suppress[..] } else { &[] }) {
            if let Some(l) = logits.get_mut(id as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
        if let Some(rules) = self.timestamps {
            rules.apply(&mut logits, &self.tokens[self.begin..], self.t.eos[0])?;
        }
        // The first largest, as numpy's argmax.
        let (best, _) = logits.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        let best = best as u32;
        if self.t.eos.contains(&best) {
            self.finished = true;
            return Ok(None);
        }
        self.tokens.push(best);
        Ok(Some(best))
    }

    /// One decoder run: the prompt on the first step, else the newest token; the last
    /// position's logits.
    fn forward(&mut self, first: bool) -> Result<Vec<f32>> {
        let cpu = &Device::Cpu;
        let new: Vec<i64> =
            if first { self.tokens.iter().map(|&x| x as i64).collect() } else { vec![*self.tokens.last().unwrap_or(&0) as i64] };
        let n = new.len();
        let mut feeds = HashMap::new();
        feeds.insert("input_ids".to_string(), Tensor::from_vec(new, (1, n), cpu).map_err(engine)?);
        feeds.insert("encoder_hidden_states".to_string(), self.hidden.clone());
        let model = &self.t.decoder.model;
        if model.inputs().iter().any(|i| i.name == "use_cache_branch") {
            feeds.insert("use_cache_branch".to_string(), Tensor::from_vec(vec![u8::from(!first)], 1, cpu).map_err(engine)?);
        }
        for (slot, past) in self.t.cache.iter().zip(&self.past) {
            feeds.insert(slot.input.clone(), past.clone());
        }
        let mut wanted = vec!["logits".to_string()];
        wanted.extend(self.t.cache.iter().map(|c| c.output.clone()));
        let mut out: HashMap<String, Tensor> = model.run(feeds, Some(&wanted))?.outputs.into_iter().collect();
        for (slot, past) in self.t.cache.iter().zip(self.past.iter_mut()) {
            *past = out.remove(&slot.output).ok_or_else(|| bad(format!("the decoder did not produce {}", slot.output)))?;
        }
        let logits = out.remove("logits").ok_or_else(|| bad("the decoder did not produce logits"))?;
        let vocab = *logits.dims().last().unwrap_or(&0);
        if vocab == 0 {
            return Err(bad("the decoder's logits are empty"));
        }
        logits
            .to_dtype(DType::F32)
            .and_then(|l| l.flatten_all())
            .and_then(|l| l.narrow(0, l.elem_count() - vocab, vocab))
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamps;

    const EOT: u32 = 2;
    /// Ids 0..2 text, 2 EOT, 3 `<|notimestamps|>`, 4.. timestamps (0.00, 0.02, …, 0.10).
    const RULES: Timestamps = Timestamps { no_timestamps: 3, max_initial: 2 };

    /// The ids left allowed after the rules, given these logits and tokens so far.
    fn allowed(logits: &[f32], generated: &[u32]) -> Vec<usize> {
        let mut l = logits.to_vec();
        RULES.apply(&mut l, generated, EOT).unwrap();
        l.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, _)| i).collect()
    }

    #[test]
    fn timestamp_rules() {
        let flat = [0.0f32; 10];
        // First token: a timestamp ≤ max_initial (4, 5, 6).
        assert_eq!(allowed(&flat, &[]), [4, 5, 6]);
        // After the opening timestamp: text (or EOT and the prompt's specials), never a timestamp
        // nor <|notimestamps|>.
        assert_eq!(allowed(&flat, &[5]), [0, 1, 2]);
        // After text, timestamps (not below the last one) compete with text; flat logits: the
        // timestamps' summed probability wins.
        assert_eq!(allowed(&flat, &[5, 0]), [5, 6, 7, 8, 9]);
        // … unless one text token is likelier than all timestamps together.
        let mut text_wins = flat;
        text_wins[1] = 3.0;
        assert_eq!(allowed(&text_wins, &[5, 0]), [0, 1, 2, 5, 6, 7, 8, 9]);
        // After text then a timestamp: a timestamp (the next segment's start, ≥ it) or the EOT,
        // which here is likelier than the timestamps together.
        let mut eot_wins = flat;
        eot_wins[EOT as usize] = 3.0;
        assert_eq!(allowed(&eot_wins, &[5, 0, 7]), [2, 7, 8, 9]);
        assert_eq!(allowed(&flat, &[5, 0, 7]), [7, 8, 9]);
        // After two timestamps in a row: text.
        assert_eq!(allowed(&flat, &[5, 0, 7, 7]), [0, 1, 2]);
    }

    #[test]
    fn timestamp_seconds() {
        assert_eq!(RULES.seconds(3), None);
        assert_eq!(RULES.seconds(4), Some(0.0));
        assert_eq!(RULES.seconds(4 + 1500), Some(30.0));
        assert_eq!(RULES.seconds(4 + 176), Some(3.52));
    }
}
