//! A whole transcription: audio of any length → windows of at most 30 s → Whisper, one window
//! after another → the transcript, its timed chunks and the pieces of text streamed on the way.
//!
//! Windows come from [`windows`]: with voice-activity detection, the speech segments it found,
//! joined end to end while they fit in 30 s — the silence between them is never transcribed,
//! and a window's times map back to the audio's through its pieces (a segment longer than a
//! window is cut at its least speech-like frame); without, the audio is cut at its quietest
//! 320 ms near the end of each 30 s. A [`Transcription`] is driven by its
//! caller one token at a time ([`Transcription::step`]), so the worker can post each piece
//! and take a `cancel` between tokens. Per-window decoding is `speech_recognition.rs`'s.

use std::ops::Range;

use wick_shared::{TranscriptChunk, TranscriptionStats};

use super::audio::{self, SAMPLE_RATE};
use super::speech_recognition::{Decoding, Transcriber};
use crate::error::{Result, WickError};

/// Samples in one window (30 s).
const WINDOW: usize = audio::N_SAMPLES;
/// Speech joined into one window stops at this much (24 s): Whisper tends to drop words that
/// run into the very end of its 30 s.
const FILL: usize = 24 * SAMPLE_RATE as usize;
/// A cut without voice-activity detection is searched for in the last this-many samples of a
/// window (10 s): long enough to find a pause between sentences.
const CUT_SEARCH: usize = 10 * SAMPLE_RATE as usize;
/// The stretch whose energy (or speech probability) decides where to cut: 320 ms, longer
/// than the gap between two words, so that the cut falls in a pause between sentences.
const QUIET: usize = SAMPLE_RATE as usize * 32 / 100;

/// The voice-activity settings for transcription: pauses shorter than half a second stay
/// inside speech and each segment keeps 200 ms either side (silero's defaults, made for
/// detection, split sentences at commas and clip soft first words).
pub fn vad_options() -> super::vad::VadOptions {
    super::vad::VadOptions { min_silence_ms: 500, speech_pad_ms: 200, ..Default::default() }
}

/// One window: stretches of the audio (sample ranges, in order) transcribed as one piece of at
/// most 30 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub pieces: Vec<Range<usize>>,
}

impl Window {
    /// Samples in the window.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(Range::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The window's samples, joined.
    fn samples(&self, pcm: &[f32]) -> Vec<f32> {
        self.pieces.iter().flat_map(|r| pcm[r.start.min(pcm.len())..r.end.min(pcm.len())].iter().copied()).collect()
    }

    /// Where in the audio the window's sample `at` is; a position between two pieces is the
    /// next one's start (past the end: the last piece's end).
    pub fn source(&self, at: usize) -> usize {
        self.locate(at, false)
    }

    /// [`Window::source`] of an end: a position between two pieces is the earlier one's end.
    pub fn source_end(&self, at: usize) -> usize {
        self.locate(at, true)
    }

    fn locate(&self, mut at: usize, end: bool) -> usize {
        for piece in &self.pieces {
            if at < piece.len() || (end && at == piece.len()) {
                return piece.start + at;
            }
            at -= piece.len();
        }
        self.pieces.last().map_or(0, |p| p.end)
    }
}

/// What voice-activity detection found: speech segments (sample ranges, sorted) and the
/// per-frame probabilities (`frame` samples each) they came from.
pub struct Speech<'p> {
    pub segments: &'p [Range<usize>],
    pub probabilities: &'p [f32],
    pub frame: usize,
}

/// Where to cut 16 kHz `pcm` into windows of at most 30 s: the `speech` voice-activity
/// detection found, or, without, `pcm` cut at quiet moments.
pub fn windows(pcm: &[f32], speech: Option<Speech>) -> Vec<Window> {
    let Some(Speech { segments, probabilities, frame }) = speech else {
        return cut(0..pcm.len(), |range| quietest(pcm, range)).into_iter().map(|r| Window { pieces: vec![r] }).collect();
    };
    let mut out: Vec<Window> = Vec::new();
    for segment in segments {
        for piece in cut(segment.clone(), |range| least_speech(probabilities, frame, range)) {
            match out.last_mut() {
                Some(last) if last.len() + piece.len() <= FILL => last.pieces.push(piece),
                _ => out.push(Window { pieces: vec![piece] }),
            }
        }
    }
    out
}

/// `range` in pieces of at most one window, each cut where `at` says within its last
/// [`CUT_SEARCH`] samples.
fn cut(range: Range<usize>, at: impl Fn(Range<usize>) -> usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = range.start;
    while range.end - start > WINDOW {
        let end = at(start + WINDOW - CUT_SEARCH..start + WINDOW).clamp(start + 1, start + WINDOW);
        out.push(start..end);
        start = end;
    }
    if range.end > start {
        out.push(start..range.end);
    }
    out
}

/// The middle of the quietest [`QUIET`]-sample stretch of `pcm[range]` (by energy).
fn quietest(pcm: &[f32], range: Range<usize>) -> usize {
    let range = range.start.min(pcm.len())..range.end.min(pcm.len());
    let mut best = (f32::INFINITY, range.end);
    let mut at = range.start;
    while at + QUIET <= range.end {
        let energy: f32 = pcm[at..at + QUIET].iter().map(|x| x * x).sum();
        if energy < best.0 {
            best = (energy, at + QUIET / 2);
        }
        at += QUIET / 2;
    }
    best.1
}

/// The middle of the [`QUIET`] stretch of `range` least likely to be speech (the lowest sum of
/// its frames' probabilities).
fn least_speech(probabilities: &[f32], frame: usize, range: Range<usize>) -> usize {
    let span = (QUIET / frame).max(1);
    let first = range.start.div_ceil(frame);
    let last = (range.end / frame).min(probabilities.len());
    (first..last.saturating_sub(span - 1))
        .map(|f| (probabilities[f..f + span].iter().sum::<f32>(), f))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(range.end, |(_, f)| ((f + span / 2) * frame).clamp(range.start, range.end))
}

/// What a transcription decodes besides the audio.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// Chunks timed by the model's timestamp tokens instead of by the windows.
    pub timestamps: bool,
    /// Most tokens per window.
    pub max_new_tokens: Option<usize>,
}

/// One step's outcome.
pub enum Step {
    /// Text decoded since the last step (possibly empty: a token that completes no character,
    /// a timestamp, a window's encoder run).
    Piece(String),
    /// The transcript is complete.
    Finished,
}

/// A transcription in progress.
pub struct Transcription<'t, 'a> {
    t: &'t Transcriber<'a>,
    pcm: Vec<f32>,
    windows: Vec<Window>,
    /// The next window to start.
    next: usize,
    /// The window being decoded and its decoding.
    current: Option<(Window, Decoding<'t, 'a>)>,
    settings: Settings,
    /// The current window's text streamed so far.
    streamed: String,
    /// Token ids from here up are not text (end-of-text, specials, timestamps).
    first_special: u32,
    text: String,
    chunks: Vec<TranscriptChunk>,
    tokens: u32,
    encoder_ms: f64,
    decoder_ms: f64,
}

impl<'t, 'a> Transcription<'t, 'a> {
    /// Transcribe 16 kHz `pcm` cut into `windows` (from [`windows`]).
    pub fn new(t: &'t Transcriber<'a>, pcm: Vec<f32>, windows: Vec<Window>, settings: Settings) -> Result<Self> {
        let tok = super::feature_extraction::tokenizer(t.decoder())?;
        let first_special = tok
            .token_to_id("<|endoftext|>")
            .ok_or_else(|| WickError::BadTask("tokenizer.json has no <|endoftext|> token".into()))?;
        Ok(Transcription {
            t,
            pcm,
            windows,
            next: 0,
            current: None,
            settings,
            streamed: String::new(),
            first_special,
            text: String::new(),
            chunks: Vec::new(),
            tokens: 0,
            encoder_ms: 0.0,
            decoder_ms: 0.0,
        })
    }

    /// Decode the next token (running the next window's encoder first when one starts); `now`
    /// reads a millisecond clock for the stats.
    pub fn step(&mut self, now: &dyn Fn() -> f64) -> Result<Step> {
        let Some((window, decoding)) = self.current.as_mut() else {
            let Some(window) = self.windows.get(self.next).cloned() else { return Ok(Step::Finished) };
            self.next += 1;
            let started = now();
            let (features, _) = audio::log_mel(&window.samples(&self.pcm));
            let decoding = self.t.start_with(&features, self.settings.timestamps)?;
            self.encoder_ms += now() - started;
            self.current = Some((window, decoding));
            self.streamed.clear();
            return Ok(Step::Piece(String::new()));
        };
        let started = now();
        let limit = self.settings.max_new_tokens.is_some_and(|n| decoding.generated().len() >= n);
        let token = if limit { None } else { decoding.step()? };
        let (window, generated) = (window.clone(), decoding.generated().to_vec());
        self.decoder_ms += now() - started;
        let text = self.window_text(&generated)?;
        if token.is_some() {
            self.tokens += 1;
            // Hold back a piece that ends inside a character (the tokenizer's U+FFFD) until the
            // next token completes it.
            if text.ends_with('\u{FFFD}') {
                return Ok(Step::Piece(String::new()));
            }
            let piece = self.piece(&text);
            return Ok(Step::Piece(piece));
        }
        // The window ended: its chunks, timed by its segments or by the window itself.
        let piece = self.piece(&text);
        let rate = f64::from(SAMPLE_RATE);
        // Seconds in the window → seconds in the audio.
        let sample = |t: f64| (t * rate).round().max(0.0) as usize;
        let start_at = |t: f64| window.source(sample(t)) as f64 / rate;
        let end_at = |t: f64| window.source_end(sample(t)) as f64 / rate;
        let end = window.len() as f64 / rate;
        if self.settings.timestamps {
            for segment in self.t.segments(&generated)? {
                // A segment the window cut off ends with the window.
                let timestamp = (start_at(f64::from(segment.start)), Some(end_at(segment.end.map_or(end, f64::from))));
                self.chunks.push(TranscriptChunk { timestamp, text: segment.text });
            }
        } else if !text.trim().is_empty() {
            self.chunks.push(TranscriptChunk { timestamp: (start_at(0.0), Some(end_at(end))), text: text.trim().to_string() });
        }
        self.current = None;
        Ok(Step::Piece(piece))
    }

    /// The text of this window's tokens that was not streamed yet; a window's first piece
    /// starts with a space when text came before it.
    fn piece(&mut self, text: &str) -> String {
        let new = text.get(self.streamed.len()..).unwrap_or("").to_string();
        if new.is_empty() {
            return new;
        }
        let piece = if self.streamed.is_empty() {
            let new = new.trim_start();
            if self.text.is_empty() || new.is_empty() { new.to_string() } else { format!(" {new}") }
        } else {
            new.clone()
        };
        self.streamed.push_str(&new);
        self.text.push_str(&piece);
        piece
    }

    /// A window's text so far, untrimmed (so that it only grows as tokens come).
    fn window_text(&self, tokens: &[u32]) -> Result<String> {
        let text: Vec<u32> = tokens.iter().copied().filter(|&id| id < self.first_special).collect();
        let tok = super::feature_extraction::tokenizer(self.t.decoder())?;
        tok.decode(&text, true).map_err(|e| WickError::BadTask(format!("decoding tokens: {e}")))
    }

    /// The transcript so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The timed chunks so far.
    pub fn chunks(&self) -> &[TranscriptChunk] {
        &self.chunks
    }

    /// Timings; the caller fills in what happened before this transcription began.
    pub fn stats(&self) -> TranscriptionStats {
        TranscriptionStats {
            audio_seconds: self.pcm.len() as f64 / f64::from(SAMPLE_RATE),
            speech_seconds: self.windows.iter().map(Window::len).sum::<usize>() as f64 / f64::from(SAMPLE_RATE),
            windows: self.windows.len() as u32,
            tokens: self.tokens,
            audio_ms: 0.0,
            vad_ms: 0.0,
            encoder_ms: self.encoder_ms,
            decoder_ms: self.decoder_ms,
            total_ms: 0.0,
            real_time_factor: 0.0,
        }
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // one-piece windows are what these tests describe
mod tests {
    use super::*;

    const S: usize = SAMPLE_RATE as usize;

    #[test]
    fn short_audio_is_one_window() {
        let pcm = vec![0.1; 12 * S];
        assert_eq!(windows(&pcm, None), vec![Window { pieces: vec![0..12 * S] }]);
    }

    #[test]
    fn long_audio_is_cut_at_its_quietest_moment() {
        // 70 s of tone with silences at 25 s and 50 s: the cuts land in them.
        let mut pcm: Vec<f32> = (0..70 * S).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        for start in [25 * S, 50 * S] {
            pcm[start..start + S / 2].fill(0.0);
        }
        let w: Vec<Range<usize>> = windows(&pcm, None).into_iter().map(|w| w.pieces[0].clone()).collect();
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|r| r.len() <= WINDOW));
        assert!((25 * S..25 * S + S / 2).contains(&w[0].end), "{w:?}");
        assert!((50 * S..50 * S + S / 2).contains(&w[1].end), "{w:?}");
        assert_eq!((w[0].end, w[1].end, w[2].end), (w[1].start, w[2].start, 70 * S));
    }

    #[test]
    fn speech_segments_are_grouped_into_windows_and_silence_is_skipped() {
        let frame = 512;
        let probabilities = vec![0.9f32; 100 * S / frame];
        let segments = [S..10 * S, 12 * S..20 * S, 29 * S..35 * S, 60 * S..61 * S];
        // 9 + 8 + 6 s of speech fit one window; then 1 s more fits too (24 s: FILL), joined.
        let w = windows(&[], Some(Speech { segments: &segments, probabilities: &probabilities, frame }));
        assert_eq!(w, vec![Window { pieces: segments.to_vec() }]);
        assert_eq!(w[0].len(), 24 * S);
        // Window times map back: 9 s into the window is 12 s into the audio (1–10 s, then 12–20 s).
        assert_eq!((w[0].source(0), w[0].source(9 * S), w[0].source(17 * S), w[0].source(24 * S)), (S, 12 * S, 29 * S, 61 * S));
        assert_eq!((w[0].source_end(9 * S), w[0].source_end(24 * S)), (10 * S, 61 * S));
        // 18 s segments do not share a window; 18 + 5 s do.
        let long = [0..18 * S, 25 * S..43 * S, 50 * S..55 * S];
        let w = windows(&[], Some(Speech { segments: &long, probabilities: &probabilities, frame }));
        assert_eq!(w, vec![Window { pieces: vec![0..18 * S] }, Window { pieces: vec![25 * S..43 * S, 50 * S..55 * S] }]);
    }

    #[test]
    fn a_segment_longer_than_a_window_is_cut_in_a_pause_not_between_two_words() {
        let frame = 512;
        let mut probabilities = vec![0.9f32; 80 * S / frame];
        // Pauses of 12 frames (384 ms) at 26 s and 48 s; a lone frame at 0 (a gap between two
        // words) at 24 s and 46 s.
        let (pause1, pause2) = (26 * S / frame, 48 * S / frame);
        for p in [pause1, pause2] {
            probabilities[p..p + 12].fill(0.1);
        }
        probabilities[24 * S / frame] = 0.0;
        probabilities[46 * S / frame] = 0.0;
        let w: Vec<Vec<Range<usize>>> =
            windows(&[], Some(Speech { segments: &[0..70 * S], probabilities: &probabilities, frame })).into_iter().map(|w| w.pieces).collect();
        // Cut in the middle of the first 10 frames (320 ms) of each pause; 26–48 s (22 s) cannot
        // take the last piece (22 s) along.
        let (cut1, cut2) = ((pause1 + 5) * frame, (pause2 + 5) * frame);
        assert_eq!(w, vec![vec![0..cut1], vec![cut1..cut2], vec![cut2..70 * S]]);
    }
}
