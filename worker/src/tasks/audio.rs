//! The audio front end of speech recognition: a WAV file → mono samples ([`decode_wav`], through
//! `hound`) → 16 kHz ([`resample`], rubato's FFT resampler over the whole clip, its delay
//! trimmed) → Whisper's 80-bin log-mel spectrogram ([`log_mel`], the STFT through `realfft`).
//!
//! [`log_mel`] computes what OpenAI whisper's `log_mel_spectrogram` and Hugging Face
//! transformers' `WhisperFeatureExtractor` compute: the clip padded with zeros (or cut) to 30 s,
//! a centred STFT (n_fft 400, hop 160, periodic Hann window, reflect padding of 200 samples each
//! side), the power spectrum |X|², an 80-filter Slaney mel filterbank (0–8000 Hz, librosa's
//! Slaney mel scale and area normalisation), the last frame dropped, log10(max(mel, 1e-10)),
//! clamped to 8 below its maximum, then (x + 4) / 4. Output: [80, 3000] row-major.
//! `worker/tests/audio.rs` holds it to transformers' numbers (`scripts/make_audio_fixture.py`).

use std::io::Cursor;
use std::sync::{Arc, OnceLock};

use realfft::RealFftPlanner;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use crate::error::{Result, WickError};

/// The sample rate Whisper's features are computed at.
pub const SAMPLE_RATE: u32 = 16000;
/// STFT window and FFT length (25 ms).
pub const N_FFT: usize = 400;
/// STFT hop (10 ms).
pub const HOP: usize = 160;
/// Mel bins.
pub const N_MELS: usize = 80;
/// Whisper's window: 30 s of 16 kHz samples.
pub const N_SAMPLES: usize = 30 * SAMPLE_RATE as usize;
/// Frames of a 30 s window (the STFT's last frame is dropped).
pub const N_FRAMES: usize = N_SAMPLES / HOP;

const N_BINS: usize = N_FFT / 2 + 1;

/// A WAV file's samples, channels averaged to mono, as floats in [-1, 1], and its sample rate.
/// Reads PCM integers of 8, 16, 24 or 32 bits and 32-bit floats.
pub fn decode_wav(bytes: &[u8]) -> Result<(Vec<f32>, u32)> {
    let bad = |e: hound::Error| WickError::BadInput(format!("cannot read the WAV file: {e}"));
    let mut reader = hound::WavReader::new(Cursor::new(bytes)).map_err(bad)?;
    let spec = reader.spec();
    let channels = spec.channels as usize;
    if channels == 0 || spec.sample_rate == 0 {
        return Err(WickError::BadInput(format!(
            "the WAV file says it has {channels} channels at {} Hz",
            spec.sample_rate
        )));
    }
    // The header's sample count is not trusted for allocation: a file cannot hold more samples
    // than it has bytes.
    let mut mono = Vec::with_capacity((reader.len() as usize).min(bytes.len()) / channels);
    let mut sum = 0.0f32;
    let mut in_frame = 0;
    let mut push = |s: f32| {
        sum += s;
        in_frame += 1;
        if in_frame == channels {
            mono.push(sum / channels as f32);
            sum = 0.0;
            in_frame = 0;
        }
    };
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            for s in reader.samples::<f32>() {
                push(s.map_err(bad)?);
            }
        }
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            // hound gives 8-bit (unsigned in the file) samples already centred on 0.
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            for s in reader.samples::<i32>() {
                push((s.map_err(bad)? as f64 * scale) as f32);
            }
        }
        (format, bits) => {
            return Err(WickError::BadInput(format!(
                "WAV samples of {bits}-bit {format:?} are not supported (PCM 8/16/24/32-bit or 32-bit float)"
            )))
        }
    }
    Ok((mono, spec.sample_rate))
}

/// `pcm` at `from_rate` resampled to `to_rate` (Whisper wants [`SAMPLE_RATE`]): the whole clip
/// through rubato's FFT resampler, its delay trimmed so that output sample i is the signal at
/// time i / to_rate, with round(len · to_rate / from_rate) samples.
pub fn resample(pcm: &[f32], from_rate: u32, to_rate: u32) -> Result<Vec<f32>> {
    if from_rate == 0 || to_rate == 0 {
        return Err(WickError::BadInput(format!("cannot resample from {from_rate} Hz to {to_rate} Hz")));
    }
    if from_rate == to_rate || pcm.is_empty() {
        return Ok(pcm.to_vec());
    }
    let out_len = (pcm.len() as f64 * to_rate as f64 / from_rate as f64).round() as usize;
    let mut resampler = fft_resampler(from_rate, to_rate)?;
    let input = InterleavedSlice::new(pcm, 1, pcm.len())
        .map_err(|e| WickError::BadInput(format!("resampling: {e}")))?;
    let out = resampler
        .process_all(&input, pcm.len(), None)
        .map_err(|e| WickError::BadInput(format!("resampling: {e}")))?;
    let mut out = out.take_data();
    // rubato gives ceil(len · ratio) samples: one more than the rounded length at most.
    out.resize(out_len, 0.0);
    Ok(out)
}

/// rubato's synchronous FFT resampler between two integer rates. Its FFT block is a whole,
/// even number of the smallest blocks the rates allow (in/gcd → out/gcd), about 2048 input
/// samples: long enough to put the anti-aliasing cutoff close to the lower Nyquist frequency,
/// and even so that the delay (half the output block) is a whole number of output samples.
fn fft_resampler(from_rate: u32, to_rate: u32) -> Result<Fft<f32>> {
    let gcd = gcd(from_rate as usize, to_rate as usize);
    let min_in = from_rate as usize / gcd;
    let blocks = 2048usize.div_ceil(min_in).max(2).next_multiple_of(2);
    Fft::<f32>::new_custom(
        from_rate as usize,
        to_rate as usize,
        blocks * min_in,
        1,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Input,
    )
    .map_err(|e| WickError::BadInput(format!("cannot resample from {from_rate} Hz to {to_rate} Hz: {e}")))
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A task's audio as 16 kHz mono PCM: float32 samples at any rate, or a WAV file.
pub fn pcm16k(audio: &wick_shared::AudioInput) -> Result<Vec<f32>> {
    let (pcm, rate) = match audio {
        wick_shared::AudioInput::Pcm { samples, sample_rate } => {
            if samples.len() % 4 != 0 {
                return Err(WickError::BadInput(format!("audio samples must be float32: {} bytes is not a multiple of 4", samples.len())));
            }
            let pcm: Vec<f32> = samples.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (pcm, *sample_rate)
        }
        wick_shared::AudioInput::Encoded { bytes } => decode_wav(bytes)?,
    };
    if pcm.is_empty() {
        return Err(WickError::BadInput("the audio has no samples".into()));
    }
    if pcm.iter().any(|x| !x.is_finite()) {
        return Err(WickError::BadInput("the audio has samples that are not finite numbers".into()));
    }
    resample(&pcm, rate, SAMPLE_RATE)
}

/// Whisper's log-mel spectrogram of 16 kHz `pcm`, padded with zeros (or cut) to 30 s:
/// ([`N_MELS`] × [`N_FRAMES`] values, bin-major, [`N_FRAMES`]).
pub fn log_mel(pcm: &[f32]) -> (Vec<f32>, usize) {
    spectrogram(pcm, N_SAMPLES)
}

/// [`log_mel`] with the clip padded or cut to `n_samples` instead of 30 s (a caller windowing
/// longer audio passes each window with `N_SAMPLES`, or a shorter length for shorter features):
/// n_samples / [`HOP`] frames. The reflect padding needs `n_samples` > [`N_FFT`] / 2.
pub fn log_mel_with(pcm: &[f32], n_samples: usize) -> Result<(Vec<f32>, usize)> {
    if n_samples <= N_FFT / 2 {
        return Err(WickError::BadInput(format!(
            "a log-mel spectrogram needs more than {} samples, not {n_samples}",
            N_FFT / 2
        )));
    }
    Ok(spectrogram(pcm, n_samples))
}

/// The spectrogram over `pcm` padded or cut to `n_samples` (> N_FFT / 2).
fn spectrogram(pcm: &[f32], n_samples: usize) -> (Vec<f32>, usize) {
    let len = n_samples;
    let sample = |i: usize| pcm.get(i).copied().unwrap_or(0.0);
    // Centred frames: the clip reflect-padded by N_FFT / 2 on each side (numpy's "reflect":
    // the edge sample is not repeated).
    let pad = N_FFT / 2;
    let padded: Vec<f32> = (0..len + 2 * pad)
        .map(|j| {
            let i = j as isize - pad as isize;
            let i = if i < 0 {
                -i as usize
            } else if i as usize >= len {
                2 * (len - 1) - i as usize
            } else {
                i as usize
            };
            sample(i)
        })
        .collect();
    // The STFT has 1 + len / HOP frames; whisper drops the last one.
    let n_frames = len / HOP;
    let window = hann();
    let fb = filterbank();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
    let mut frame = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let mut power = vec![0f32; N_BINS];
    let mut mel = vec![0f32; N_MELS * n_frames];
    for t in 0..n_frames {
        let start = t * HOP;
        for ((x, &s), &w) in frame.iter_mut().zip(&padded[start..start + N_FFT]).zip(window.iter()) {
            *x = s * w;
        }
        fft.process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
            .expect("buffers come from the plan itself");
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.norm_sqr();
        }
        for (m, f) in fb.iter().enumerate() {
            let e: f32 = f.weights.iter().zip(&power[f.first..]).map(|(w, p)| w * p).sum();
            mel[m * n_frames + t] = e.max(1e-10).log10();
        }
    }
    let max = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for x in &mut mel {
        *x = (x.max(max - 8.0) + 4.0) / 4.0;
    }
    (mel, n_frames)
}

/// The periodic Hann window of length N_FFT (torch.hann_window, numpy's hanning(N + 1)[:-1]).
fn hann() -> Arc<[f32]> {
    static HANN: OnceLock<Arc<[f32]>> = OnceLock::new();
    HANN.get_or_init(|| {
        (0..N_FFT)
            .map(|n| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32)
            .collect()
    })
    .clone()
}

/// One mel filter: its weights over the FFT bins first.., the rest being zero.
pub struct MelFilter {
    pub first: usize,
    pub weights: Vec<f32>,
}

/// The 80 Slaney mel filters over the 201 bins of a 400-point FFT at 16 kHz, 0–8000 Hz, as
/// librosa.filters.mel (htk=False, norm="slaney") and transformers' `mel_filter_bank(norm=
/// "slaney", mel_scale="slaney")` make them; computed once, in f64.
pub fn filterbank() -> &'static [MelFilter] {
    static FB: OnceLock<Vec<MelFilter>> = OnceLock::new();
    FB.get_or_init(|| {
        let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE as f64 / 2.0));
        let edges: Vec<f64> = (0..N_MELS + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
            .collect();
        let bin_hz = |k: usize| k as f64 * SAMPLE_RATE as f64 / N_FFT as f64;
        (0..N_MELS)
            .map(|m| {
                let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
                let norm = 2.0 / (right - left);
                let w: Vec<f64> = (0..N_BINS)
                    .map(|k| {
                        let f = bin_hz(k);
                        let up = (f - left) / (centre - left);
                        let down = (right - f) / (right - centre);
                        up.min(down).max(0.0) * norm
                    })
                    .collect();
                let first = w.iter().position(|&x| x > 0.0).unwrap_or(0);
                let last = w.iter().rposition(|&x| x > 0.0).unwrap_or(0);
                let weights = if last >= first { w[first..=last].iter().map(|&x| x as f32).collect() } else { vec![] };
                MelFilter { first, weights }
            })
            .collect()
    })
}

/// Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        mel * F_SP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(spec: hound::WavSpec, write: impl FnOnce(&mut hound::WavWriter<&mut Cursor<Vec<u8>>>)) -> Vec<u8> {
        let mut cur = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
            write(&mut w);
            w.finalize().unwrap();
        }
        cur.into_inner()
    }

    #[test]
    fn stereo_16bit_is_averaged() {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let bytes = wav_bytes(spec, |w| {
            for (l, r) in [(16384i16, 0i16), (-32768, -16384), (100, 300)] {
                w.write_sample(l).unwrap();
                w.write_sample(r).unwrap();
            }
        });
        let (pcm, rate) = decode_wav(&bytes).unwrap();
        assert_eq!(rate, 8000);
        assert_eq!(pcm, vec![0.25, -0.75, 200.0 / 32768.0]);
    }

    #[test]
    fn eight_bit_and_24_bit_and_float() {
        let int = |bits| hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        };
        let bytes = wav_bytes(int(8), |w| {
            for s in [-128i8, 0, 64, 127] {
                w.write_sample(s).unwrap();
            }
        });
        assert_eq!(decode_wav(&bytes).unwrap().0, vec![-1.0, 0.0, 0.5, 127.0 / 128.0]);
        let bytes = wav_bytes(int(24), |w| {
            for s in [-(1i32 << 23), 1 << 22] {
                w.write_sample(s).unwrap();
            }
        });
        assert_eq!(decode_wav(&bytes).unwrap().0, vec![-1.0, 0.5]);
        let float = hound::WavSpec {
            channels: 3,
            sample_rate: 44100,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let bytes = wav_bytes(float, |w| {
            for s in [0.5f32, -0.25, 0.75, 1.0, 1.0, 1.0] {
                w.write_sample(s).unwrap();
            }
        });
        let (pcm, rate) = decode_wav(&bytes).unwrap();
        assert_eq!(rate, 44100);
        assert_eq!(pcm, vec![1.0 / 3.0, 1.0]);
    }

    #[test]
    fn bad_bytes_are_bad_input() {
        let good = wav_bytes(
            hound::WavSpec { channels: 1, sample_rate: 16000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int },
            |w| {
                for s in 0..100i16 {
                    w.write_sample(s).unwrap();
                }
            },
        );
        for bad in [&b""[..], b"RIFF", b"not a wav file at all, just some bytes", &good[..30], &good[..good.len() - 1]] {
            assert!(matches!(decode_wav(bad), Err(WickError::BadInput(_))), "{} bytes", bad.len());
        }
        // A header claiming far more data than the file holds.
        let mut lying = good.clone();
        let data = lying.windows(4).position(|w| w == b"data").unwrap();
        lying[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_wav(&lying).is_err());
    }

    #[test]
    fn resample_keeps_time_and_length() {
        // A 440 Hz tone at 22050 Hz → 16 kHz: output sample i is the tone at i / 16000 s.
        for (from, n) in [(22050u32, 22050usize), (44100, 30001), (48000, 12345), (8000, 7999)] {
            let tone = |t: f64| (2.0 * std::f64::consts::PI * 440.0 * t).sin() as f32 * 0.5;
            let pcm: Vec<f32> = (0..n).map(|i| tone(i as f64 / from as f64)).collect();
            let out = resample(&pcm, from, 16000).unwrap();
            let want = (n as f64 * 16000.0 / from as f64).round() as usize;
            assert_eq!(out.len(), want, "{from} Hz");
            // Away from the clip's edges (where the filter sees the zeros outside it).
            let edge = 400;
            let err = (edge..want - edge)
                .map(|i| (out[i] - tone(i as f64 / 16000.0)).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 1e-3, "{from} Hz: max error {err}");
        }
        assert_eq!(resample(&[0.1, 0.2], 16000, 16000).unwrap(), vec![0.1, 0.2]);
        assert!(matches!(resample(&[0.1], 0, 16000), Err(WickError::BadInput(_))));
    }

    #[test]
    fn filterbank_shape_and_values() {
        let fb = filterbank();
        assert_eq!(fb.len(), N_MELS);
        // Below 1 kHz the Slaney scale is linear: 80 filters over 0..=hz_to_mel(8000) = 45.25 mel.
        assert!((hz_to_mel(8000.0) - 45.245640471924965).abs() < 1e-12);
        assert!((mel_to_hz(hz_to_mel(1234.5)) - 1234.5).abs() < 1e-9);
        // Filter 0 spans 0–74.5 Hz (centre 37.2 Hz): of the bins (40 Hz apart), only bin 1.
        assert_eq!((fb[0].first, fb[0].weights.len()), (1, 1));
        assert!(fb.iter().all(|f| f.first + f.weights.len() <= N_BINS && !f.weights.is_empty()));
    }

    #[test]
    fn silence_and_lengths() {
        let (mel, frames) = log_mel(&[]);
        assert_eq!((mel.len(), frames), (N_MELS * N_FRAMES, N_FRAMES));
        // All -10 → clamped to itself → (-10 + 4) / 4.
        assert!(mel.iter().all(|&x| x == -1.5));
        let (mel, frames) = log_mel_with(&[0.5; 1000], 16000).unwrap();
        assert_eq!((mel.len(), frames), (N_MELS * 100, 100));
        assert!(log_mel_with(&[0.5; 10], 200).is_err());
        assert!(log_mel_with(&[0.5; 10], 201).is_ok());
    }
}
