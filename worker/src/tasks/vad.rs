//! Voice-activity detection with silero VAD (`silero_vad.onnx` as PyPI `silero-vad` ships it):
//! 16 kHz PCM → one speech probability per 32 ms frame ([`Vad::probabilities`]) → speech
//! segments in samples ([`speech_segments`]).
//!
//! It owns the frame protocol of silero's `OnnxWrapper` and the segment rules of its
//! `get_speech_timestamps`, re-implemented here and checked against that package's own function
//! (`worker/tests/vad.rs`, data from `scripts/make_vad_reference.py`). The graph's signature:
//! `input` f32 `[batch, samples]`, `state` f32 `[2, batch, 128]`, `sr` int64 scalar →
//! `output` f32 `[batch, 1]` (the probability), `stateN` (the next state). Audio at other rates
//! is resampled first (`audio.rs`).

use std::collections::HashMap;
use std::ops::Range;

use candle_core::{DType, Device, Tensor};
use wick_shared::DType as WireType;

use crate::engine::Model;
use crate::error::{Result, WickError};

/// The only rate the model is run at here (it also knows 8 kHz, with 256-sample frames).
pub const RATE: usize = 16_000;
/// Samples per frame: one probability each.
pub const FRAME: usize = 512;
/// Samples of the previous frame fed again before each frame (silero's `context_size`).
const CONTEXT: usize = 64;
/// `get_speech_timestamps`' `min_silence_at_max_speech` (ms): only pauses longer than this are
/// candidates for cutting a segment that reached `max_speech_s`.
const MIN_SILENCE_AT_MAX_SPEECH_MS: u32 = 98;

fn bad(message: impl std::fmt::Display) -> WickError {
    WickError::BadTask(message.to_string())
}

fn engine(e: candle_core::Error) -> WickError {
    WickError::Execution {
        node: "vad".into(),
        op_type: "VoiceActivity".into(),
        message: e.to_string(),
    }
}

/// A silero VAD model, checked to have the expected inputs and outputs.
pub struct Vad<'a> {
    model: &'a Model,
    /// `[2, 1, 128]`: the state shape at batch 1 (declared dims, else silero's).
    state_dims: [usize; 3],
    /// What each run asks for, built once.
    wanted: [String; 2],
}

impl<'a> Vad<'a> {
    pub fn new(model: &'a Model) -> Result<Self> {
        let input = |name: &str, dtype: WireType, rank: usize| {
            let i = model
                .inputs()
                .iter()
                .find(|i| i.name == name)
                .ok_or_else(|| bad(format!("not a silero VAD model: it has no input '{name}'")))?;
            if i.dtype.is_some_and(|d| d != dtype) || (!i.dims.is_empty() && i.dims.len() != rank) {
                return Err(bad(format!(
                    "not a silero VAD model: input '{name}' is {:?} {:?}, expected {dtype:?} of rank {rank}",
                    i.dtype, i.dims
                )));
            }
            Ok(i)
        };
        input("input", WireType::Float32, 2)?;
        input("sr", WireType::Int64, 0)?;
        let state = input("state", WireType::Float32, 3)?;
        for name in ["output", "stateN"] {
            if !model.outputs().iter().any(|o| o.name == name) {
                return Err(bad(format!(
                    "not a silero VAD model: it has no output '{name}'"
                )));
            }
        }
        let dim = |i: usize, fallback: usize| {
            state
                .dims
                .get(i)
                .copied()
                .flatten()
                .map_or(fallback, |d| d as usize)
        };
        Ok(Vad {
            model,
            state_dims: [dim(0, 2), 1, dim(2, 128)],
            wanted: ["output".into(), "stateN".into()],
        })
    }

    /// One speech probability per 512-sample frame of 16 kHz mono PCM (the last, partial frame
    /// zero-padded), from a zero state, as silero's `OnnxWrapper` computes them: each run sees
    /// the 64 samples before its frame (zeros before the first) and the state the run before
    /// left.
    pub fn probabilities(&self, pcm16k: &[f32]) -> Result<Vec<f32>> {
        let mut run = self.start()?;
        run.push(pcm16k)?;
        Ok(run.probabilities)
    }

    /// A run over audio given piece by piece ([`Frames::push`]), so that a caller can stop
    /// between pieces; the same probabilities as [`Vad::probabilities`] of the pieces joined.
    pub fn start(&self) -> Result<Frames<'_, 'a>> {
        let cpu = &Device::Cpu;
        Ok(Frames {
            vad: self,
            sr: Tensor::new(RATE as i64, cpu).map_err(engine)?,
            state: Tensor::zeros(self.state_dims.as_slice(), DType::F32, cpu).map_err(engine)?,
            window: [0f32; CONTEXT + FRAME],
            probabilities: Vec::new(),
        })
    }
}

/// A voice-activity run in progress.
pub struct Frames<'v, 'a> {
    vad: &'v Vad<'a>,
    sr: Tensor,
    state: Tensor,
    /// Context then frame; the context of the next run is this buffer's tail.
    window: [f32; CONTEXT + FRAME],
    /// One per frame so far.
    pub probabilities: Vec<f32>,
}

impl Frames<'_, '_> {
    /// The probabilities of the next frames of `pcm16k`; every piece but the last must be a
    /// whole number of frames.
    pub fn push(&mut self, pcm16k: &[f32]) -> Result<()> {
        let cpu = &Device::Cpu;
        let wanted = &self.vad.wanted;
        self.probabilities.reserve(pcm16k.len().div_ceil(FRAME));
        for frame in pcm16k.chunks(FRAME) {
            let window = &mut self.window;
            window.copy_within(FRAME.., 0);
            window[CONTEXT..CONTEXT + frame.len()].copy_from_slice(frame);
            window[CONTEXT + frame.len()..].fill(0.0);
            let state = std::mem::replace(&mut self.state, self.sr.clone());
            let feeds = HashMap::from([
                ("input".to_string(), Tensor::from_slice(&window[..], (1, CONTEXT + FRAME), cpu).map_err(engine)?),
                ("state".to_string(), state),
                ("sr".to_string(), self.sr.clone()),
            ]);
            let (mut p, mut next) = (None, None);
            for (name, t) in self.vad.model.run(feeds, Some(wanted))?.outputs {
                if name == wanted[0] {
                    p = Some(t);
                } else if name == wanted[1] {
                    next = Some(t);
                }
            }
            let (Some(p), Some(next)) = (p, next) else {
                return Err(bad("the model did not produce output and stateN"));
            };
            let p = p.flatten_all().and_then(|p| p.to_dtype(DType::F32)).and_then(|p| p.to_vec1::<f32>()).map_err(engine)?;
            self.probabilities.push(*p.first().ok_or_else(|| bad("the model's output is empty"))?);
            self.state = next;
        }
        Ok(())
    }
}

/// The `voice-activity-detection` task: audio → speech segments in seconds.
pub fn run(loaded: &super::Loaded, input: wick_shared::TaskInput) -> super::Running<'_> {
    // The frames run one after another with their state: on the CPU backend.
    Box::pin(async move { segments(loaded, input) })
}

fn segments(loaded: &super::Loaded, input: wick_shared::TaskInput) -> Result<super::Outcome> {
    let wick_shared::TaskInput::VoiceActivityDetection { audio, threshold } = input else {
        return Err(bad("not a voice-activity-detection input"));
    };
    let mut options = VadOptions::default();
    if let Some(t) = threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(WickError::BadInput(format!("threshold must be in [0, 1], not {t}")));
        }
        options.threshold = f64::from(t);
    }
    let pcm = super::audio::pcm16k(&audio)?;
    let probabilities = Vad::new(&loaded.model)?.probabilities(&pcm)?;
    let seconds = |s: usize| s as f64 / RATE as f64;
    let segments = speech_segments(&probabilities, pcm.len(), &options)
        .into_iter()
        .map(|r| wick_shared::SpeechSegment { start: seconds(r.start), end: seconds(r.end) })
        .collect();
    Ok(super::Outcome { output: wick_shared::TaskOutput::VoiceActivityDetection { segments }, peak_intermediate_bytes: 0 })
}

/// How probabilities become segments; the defaults are `get_speech_timestamps`'.
#[derive(Clone, Debug, PartialEq)]
pub struct VadOptions {
    /// A frame at or above this starts (or continues) speech; speech ends only below
    /// `threshold − 0.15` (at least 0.01). f64: silero compares Python floats.
    pub threshold: f64,
    /// Segments this short or shorter are dropped (before padding).
    pub min_speech_ms: u32,
    /// A pause must last this long to end a segment.
    pub min_silence_ms: u32,
    /// Each segment is widened by this much each side (half the gap when neighbours are closer).
    pub speech_pad_ms: u32,
    /// Longer segments are cut at their longest pause over 98 ms, or where the limit is reached
    /// when there is none. `f64::INFINITY`: no limit.
    pub max_speech_s: f64,
}

impl Default for VadOptions {
    fn default() -> Self {
        VadOptions {
            threshold: 0.5,
            min_speech_ms: 250,
            min_silence_ms: 100,
            speech_pad_ms: 30,
            max_speech_s: f64::INFINITY,
        }
    }
}

/// Samples at 16 kHz in `ms` milliseconds (exact: 16 per ms).
fn samples(ms: u32) -> usize {
    ms as usize * (RATE / 1000)
}

/// The speech segments (sample ranges at 16 kHz, padded, clamped to `total_samples`) of audio
/// whose frame probabilities are `probs`, by the rules of silero's `get_speech_timestamps`
/// (with its `use_max_poss_sil_at_max_speech`).
pub fn speech_segments(probs: &[f32], total_samples: usize, o: &VadOptions) -> Vec<Range<usize>> {
    let neg_threshold = (o.threshold - 0.15).max(0.01);
    let min_speech = samples(o.min_speech_ms);
    let min_silence = samples(o.min_silence_ms);
    let pad = samples(o.speech_pad_ms);
    let min_pause_at_max = samples(MIN_SILENCE_AT_MAX_SPEECH_MS);
    // A segment reaching this is cut; room is left for a frame and both pads.
    let max_speech = RATE as f64 * o.max_speech_s - FRAME as f64 - 2.0 * pad as f64;

    let mut segments: Vec<Range<usize>> = Vec::new();
    let mut triggered = false;
    let mut start = 0;
    // Where the current pause began; `None` outside a pause.
    let mut pause: Option<usize> = None;
    // Pauses longer than `min_pause_at_max` inside the current segment: (start, length).
    let mut pauses: Vec<(usize, usize)> = Vec::new();
    for (i, &p) in probs.iter().enumerate() {
        let (p, at) = (p as f64, i * FRAME);
        if p >= o.threshold {
            if let Some(began) = pause.take() {
                if at - began > min_pause_at_max {
                    pauses.push((began, at - began));
                }
            }
            if !triggered {
                triggered = true;
                start = at;
                continue;
            }
        }
        if triggered && (at - start) as f64 > max_speech {
            // The longest pause (the first of equals), else right here.
            let longest = pauses
                .iter()
                .fold(None, |best: Option<(usize, usize)>, &(s, len)| match best {
                    Some((_, l)) if l >= len => best,
                    _ => Some((s, len)),
                });
            pause = None;
            pauses.clear();
            match longest {
                // Speech came back after that pause, so the next segment starts where it ended.
                Some((s, len)) => {
                    segments.push(start..s);
                    start = s + len;
                }
                None => {
                    segments.push(start..at);
                    triggered = false;
                    continue;
                }
            }
        }
        if triggered && p < neg_threshold {
            let began = *pause.get_or_insert(at);
            if at - began < min_silence {
                continue;
            }
            if began - start > min_speech {
                segments.push(start..began);
            }
            triggered = false;
            pause = None;
            pauses.clear();
        }
    }
    if triggered && total_samples.saturating_sub(start) > min_speech {
        segments.push(start..total_samples);
    }

    // Pad each side; neighbours closer than two pads share the gap between them.
    let n = segments.len();
    for i in 0..n {
        if i == 0 {
            segments[0].start = segments[0].start.saturating_sub(pad);
        }
        if i + 1 < n {
            let gap = segments[i + 1].start.saturating_sub(segments[i].end);
            let (widen_end, widen_next) = if gap < 2 * pad {
                (gap / 2, gap / 2)
            } else {
                (pad, pad)
            };
            segments[i].end += widen_end;
            segments[i + 1].start = segments[i + 1].start.saturating_sub(widen_next);
        } else {
            segments[i].end += pad;
        }
    }
    for s in &mut segments {
        s.end = s.end.min(total_samples);
        s.start = s.start.min(s.end);
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame probabilities from runs of (count, probability).
    fn runs(spec: &[(usize, f32)]) -> Vec<f32> {
        spec.iter()
            .flat_map(|&(n, p)| std::iter::repeat_n(p, n))
            .collect()
    }

    fn segments(spec: &[(usize, f32)], o: &VadOptions) -> Vec<Range<usize>> {
        let probs = runs(spec);
        speech_segments(&probs, probs.len() * FRAME, o)
    }

    #[test]
    fn short_speech_is_dropped_and_kept_speech_padded() {
        // Defaults: min speech 4000 samples, min silence 1600, pad 480. Speech at frames 10..20
        // (5120..10240) ends at its first quiet frame once 4 quiet frames (2048 ≥ 1600) have
        // passed; the 5 frames at 40..45 (2560 samples) are too short.
        let got = segments(
            &[(10, 0.0), (10, 0.9), (20, 0.0), (5, 0.9), (15, 0.0)],
            &VadOptions::default(),
        );
        assert_eq!(got, vec![4640..10720]);
        assert!(segments(&[], &VadOptions::default()).is_empty());
    }

    #[test]
    fn between_the_thresholds_speech_goes_on() {
        // 0.4 is below 0.5 (no start) but not below 0.35 (no end): speech 5..25, quiet from 25.
        let got = segments(
            &[(5, 0.0), (10, 0.9), (10, 0.4), (10, 0.0)],
            &VadOptions::default(),
        );
        assert_eq!(got, vec![2080..13280]);
    }

    #[test]
    fn pauses_shorter_than_min_silence_merge() {
        // 4 quiet frames: the fourth is only 1536 samples in (< 1600) when speech returns.
        let merged = segments(
            &[(10, 0.0), (10, 0.9), (4, 0.0), (10, 0.9), (16, 0.0)],
            &VadOptions::default(),
        );
        assert_eq!(merged, vec![4640..17888]);
        // 5 quiet frames end the first segment at 10240; the next starts at frame 25 (12800).
        let spec = [(10, 0.0), (10, 0.9), (5, 0.0), (10, 0.9), (15, 0.0)];
        assert_eq!(
            segments(&spec, &VadOptions::default()),
            vec![4640..10720, 12320..18400]
        );
        // With 100 ms pads (1600) the 2560-sample gap is under two pads: each side takes half.
        let wide = VadOptions {
            speech_pad_ms: 100,
            ..VadOptions::default()
        };
        assert_eq!(segments(&spec, &wide), vec![3520..11520, 11520..19520]);
    }

    #[test]
    fn max_speech_cuts_at_the_longest_pause_or_at_the_limit() {
        // 1 s, no pad: a segment is cut once it is over 16000 − 512 = 15488 samples long.
        let o = VadOptions {
            max_speech_s: 1.0,
            speech_pad_ms: 0,
            ..VadOptions::default()
        };
        // No pause: cut at frame 31 (15872); speech restarts at the next frame and runs to the end.
        assert_eq!(segments(&[(40, 0.9)], &o), vec![0..15872, 16384..20480]);
        // With min silence 300 ms neither pause ends speech; the 4-frame one (2048 > 1568) is a
        // candidate, the 3-frame one (1536) is not. The cut at frame 31 ends the first segment
        // where that pause began (5120) and starts the next where it ended (7168).
        let o = VadOptions {
            min_silence_ms: 300,
            ..o
        };
        let spec = [(10, 0.9), (4, 0.0), (6, 0.9), (3, 0.0), (18, 0.9)];
        assert_eq!(segments(&spec, &o), vec![0..5120, 7168..20992]);
    }
}
