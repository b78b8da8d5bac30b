//! Voice-activity detection against silero's own pipeline: `scripts/make_vad_reference.py`
//! copies the package's `silero_vad.onnx`, runs onnxruntime frame by frame (the wrapper's
//! context and state protocol) on the espeak-ng clips of the speech-recognition folder and on a
//! clip composed of them with known silences, and records the segments silero's own
//! `get_speech_timestamps_from_probs` makes of those probabilities under several option sets.
//! Wick's probabilities must equal onnxruntime's, its segments silero's, and on the composed
//! clip the segments must cover where each spoken clip is audible. The folder is
//! `WICK_ASR_MODELS/silero-vad` (the script's --asr).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use wick_worker::native::load_model;
use wick_worker::tasks::vad::{speech_segments, Vad, VadOptions, RATE};

/// Largest |Wick − onnxruntime| allowed on a frame's probability (measured: 1.7e-5).
const TOLERANCE: f32 = 5e-5;

fn folder() -> PathBuf {
    let Some(dir) = std::env::var_os("WICK_ASR_MODELS") else {
        panic!(
            "WICK_ASR_MODELS is not set: run `python3 scripts/make_asr_models.py --out DIR` and \
             `python3 scripts/make_vad_reference.py --asr DIR`, and set it to DIR"
        );
    };
    PathBuf::from(dir).join("silero-vad")
}

fn reference(dir: &Path) -> Value {
    let path = dir.join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/make_vad_reference.py)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn pcm(dir: &Path, case: &Value) -> Vec<f32> {
    let bytes = std::fs::read(dir.join(case["pcm"].as_str().unwrap())).unwrap();
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(v.len() as u64, case["samples"].as_u64().unwrap());
    v
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn options(v: &Value) -> VadOptions {
    let d = VadOptions::default();
    let ms = |key: &str, default: u32| v.get(key).map_or(default, |x| x.as_u64().unwrap() as u32);
    VadOptions {
        threshold: v
            .get("threshold")
            .map_or(d.threshold, |x| x.as_f64().unwrap()),
        min_speech_ms: ms("min_speech_ms", d.min_speech_ms),
        min_silence_ms: ms("min_silence_ms", d.min_silence_ms),
        speech_pad_ms: ms("speech_pad_ms", d.speech_pad_ms),
        max_speech_s: v
            .get("max_speech_s")
            .map_or(d.max_speech_s, |x| x.as_f64().unwrap_or(f64::INFINITY)),
    }
}

/// Every clip and the composed one: Wick's probabilities against onnxruntime's, Wick's
/// segments of onnxruntime's probabilities against silero's.
#[test]
#[ignore = "needs the VAD reference: python3 scripts/make_vad_reference.py --asr DIR, then WICK_ASR_MODELS=DIR"]
fn probabilities_equal_onnxruntime_and_segments_equal_silero() {
    let dir = folder();
    let reference = reference(&dir);
    let model = load_model(&dir.join(reference["model"]["file"].as_str().unwrap())).unwrap();
    let vad = Vad::new(&model).unwrap();
    let mut cases: Vec<&Value> = reference["cases"].as_array().unwrap().iter().collect();
    cases.push(&reference["composed"]);
    let (mut worst, mut seconds, mut audio) = (0f32, 0f64, 0f64);
    for case in cases {
        let name = case
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("composed");
        let samples = pcm(&dir, case);
        let started = Instant::now();
        let got = vad.probabilities(&samples).unwrap();
        let took = started.elapsed().as_secs_f64();
        // Given piece by piece (as the worker does, to take a cancel between pieces): the same.
        let mut run = vad.start().unwrap();
        for piece in samples.chunks(3 * 512) {
            run.push(piece).unwrap();
        }
        assert_eq!(run.probabilities, got, "{name}: pieces of 3 frames");
        let want = floats(&case["probs"]);
        assert_eq!(got.len(), want.len(), "{name}: frames");
        let (at, diff) = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .enumerate()
            .fold((0, 0f32), |m, (i, d)| if d > m.1 { (i, d) } else { m });
        let length = samples.len() as f64 / RATE as f64;
        eprintln!(
            "{name}: {} frames, max |wick − ort| {diff:.2e} (frame {at}: {} vs {}), {:.1} ms per second of audio",
            got.len(),
            got[at],
            want[at],
            took * 1000.0 / length
        );
        assert!(
            diff <= TOLERANCE,
            "{name}: frame {at}: wick {} vs onnxruntime {}",
            got[at],
            want[at]
        );
        worst = worst.max(diff);
        seconds += took;
        audio += length;

        for set in case["silero_segments"].as_array().unwrap() {
            let o = options(&set["options"]);
            let expected: Vec<Range<usize>> = set["segments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s[0].as_u64().unwrap() as usize..s[1].as_u64().unwrap() as usize)
                .collect();
            assert_eq!(
                speech_segments(&want, samples.len(), &o),
                expected,
                "{name}: segments under {o:?}"
            );
        }
    }
    eprintln!(
        "all: max |wick − ort| {worst:.2e}; probabilities take {:.1} ms per second of audio",
        seconds * 1000.0 / audio
    );
}

/// The composed clip through Wick alone: one segment per spoken clip, covering where it is
/// audible and not reaching far into the silences around it.
#[test]
#[ignore = "needs the VAD reference: python3 scripts/make_vad_reference.py --asr DIR, then WICK_ASR_MODELS=DIR"]
fn segments_cover_each_spoken_clip_of_the_composed_audio() {
    let dir = folder();
    let reference = reference(&dir);
    let composed = &reference["composed"];
    let model = load_model(&dir.join(reference["model"]["file"].as_str().unwrap())).unwrap();
    let samples = pcm(&dir, composed);
    let probs = Vad::new(&model).unwrap().probabilities(&samples).unwrap();
    // silero's 100 ms minimum silence splits espeak's sentences at their word and comma pauses
    // (up to ~190 ms; silero's own function does the same, see the test above); 300 ms keeps a
    // sentence whole. A 100 ms pad covers the onset the 32 ms frames miss.
    let o = VadOptions {
        min_silence_ms: 300,
        speech_pad_ms: 100,
        ..VadOptions::default()
    };
    let pad = o.speech_pad_ms as usize * RATE / 1000;
    // How far past the padded truth a segment may reach: the probability decays over a frame
    // or two after the audible end, and ends fall on 32 ms frame boundaries.
    let slack = 120 * RATE / 1000;
    let segments = speech_segments(&probs, samples.len(), &o);
    let truth: Vec<(String, Range<usize>)> = composed["speech"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let at = |k: &str| s[k].as_u64().unwrap() as usize;
            (
                s["clip"].as_str().unwrap().to_string(),
                at("start")..at("end"),
            )
        })
        .collect();
    let ms = |n: usize| n as f64 * 1000.0 / RATE as f64;
    for (i, s) in segments.iter().enumerate() {
        let matching = truth.get(i).map_or("none".to_string(), |(name, t)| {
            format!(
                "{name} {:.3}–{:.3} s (segment starts {:.0} ms before, ends {:.0} ms after)",
                ms(t.start) / 1000.0,
                ms(t.end) / 1000.0,
                ms(t.start) - ms(s.start),
                ms(s.end) - ms(t.end)
            )
        });
        eprintln!(
            "segment {:.3}–{:.3} s; audible {matching}",
            ms(s.start) / 1000.0,
            ms(s.end) / 1000.0
        );
    }
    assert_eq!(
        segments.len(),
        truth.len(),
        "one segment per spoken clip: {segments:?} vs {truth:?}"
    );
    for (s, (name, t)) in segments.iter().zip(&truth) {
        assert!(
            s.start <= t.start && s.end >= t.end,
            "{name}: segment {s:?} does not cover the audible {t:?}"
        );
        assert!(
            t.start - s.start <= pad + slack && s.end - t.end <= pad + slack,
            "{name}: segment {s:?} reaches more than {} ms beyond the audible {t:?}",
            ms(pad + slack)
        );
    }
}
