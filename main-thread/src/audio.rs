//! Audio for speech recognition, from whatever the page has: a Float32Array of mono samples
//! (at `options.sampleRate`, default 16 kHz), an AudioBuffer (channels averaged), or a file —
//! a URL, Blob/File, ArrayBuffer or byte array. WAV files go to the worker as they are (its
//! Rust front end decodes and resamples them); other formats (MP3, Ogg, WebM from a
//! MediaRecorder…) are decoded here by the browser's `decodeAudioData`, which only a page has.

use std::rc::Rc;

use js_sys::{Float32Array, Function, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wick_shared::{AudioInput, ErrorCode, Request, TranscribeOptions};

use crate::client::Client;
use crate::convert::{get, Options};
use crate::stream::{Streamed, Transcription};
use crate::vision::{call, file_bytes, js_error, wait};
use crate::WickError;

/// The rate `decodeAudioData` is asked to resample other formats to: Whisper's.
const DECODE_RATE: u32 = 16_000;

fn bad_input(message: impl Into<String>) -> WickError {
    WickError::wire(ErrorCode::BadInput, message)
}

/// Post a `transcribe` request for `model` once the audio is read (or fail, as the returned
/// Transcription says). `vad`: the voice-activity model a pipeline loaded beside it.
pub(crate) fn transcribe(
    client: &Rc<Client>,
    model: Result<String, WickError>,
    vad: Option<String>,
    audio: JsValue,
    options: Option<JsValue>,
) -> Transcription {
    let build = async move {
        let model = model?;
        let options = Options::parse(&options.unwrap_or(JsValue::UNDEFINED))?;
        let audio = input(&audio, options.sample_rate).await?;
        let options_out = TranscribeOptions {
            timestamps: options.timestamps,
            vad: options.vad.or(vad),
            max_new_tokens: options.generate.max_new_tokens,
        };
        Ok((Request::Transcribe { model, audio, options: options_out }, options.signal))
    };
    Transcription(Streamed::start(client, build))
}

/// The audio the page passed, ready for the wire.
pub(crate) async fn input(value: &JsValue, sample_rate: Option<u32>) -> Result<AudioInput, WickError> {
    if let Some(samples) = value.dyn_ref::<Float32Array>() {
        let samples = Uint8Array::new_with_byte_offset_and_length(&samples.buffer(), samples.byte_offset(), samples.byte_length());
        return Ok(AudioInput::Pcm { samples: samples.to_vec(), sample_rate: sample_rate.unwrap_or(DECODE_RATE) });
    }
    if get(value, "getChannelData").is_function() {
        return audio_buffer(value);
    }
    let Some(bytes) = file_bytes(value, "the audio").await? else {
        return Err(bad_input(
            "expected audio: a Float32Array of samples, an AudioBuffer, a Blob/File, bytes or a URL",
        ));
    };
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        return Ok(AudioInput::Encoded { bytes });
    }
    decode(&bytes).await
}

/// An AudioBuffer's channels, averaged.
fn audio_buffer(buffer: &JsValue) -> Result<AudioInput, WickError> {
    let number = |key: &str| get(buffer, key).as_f64().filter(|n| *n > 0.0).ok_or_else(|| bad_input(format!("the AudioBuffer has no {key}")));
    let (channels, rate) = (number("numberOfChannels")? as u32, number("sampleRate")?);
    let mut mix: Vec<f32> = Vec::new();
    for channel in 0..channels {
        let data = call(buffer, "getChannelData", &[channel.into()])?;
        let data: Float32Array = data.dyn_into().map_err(|_| bad_input("getChannelData did not return a Float32Array"))?;
        let data = data.to_vec();
        if mix.is_empty() {
            mix = data;
        } else {
            mix.iter_mut().zip(&data).for_each(|(m, d)| *m += d);
        }
    }
    let scale = 1.0 / channels as f32;
    let samples = mix.iter().flat_map(|x| (x * scale).to_le_bytes()).collect();
    Ok(AudioInput::Pcm { samples, sample_rate: rate as u32 })
}

/// A compressed file decoded (and resampled to 16 kHz) by an OfflineAudioContext.
async fn decode(bytes: &[u8]) -> Result<AudioInput, WickError> {
    let class: Function = Reflect::get(&js_sys::global(), &"OfflineAudioContext".into())
        .ok()
        .and_then(|c| c.dyn_into().ok())
        .ok_or_else(|| bad_input("this audio is not a WAV file, and this context cannot decode other formats (no OfflineAudioContext)"))?;
    let args: js_sys::Array = [JsValue::from(1), JsValue::from(1), JsValue::from(DECODE_RATE)].iter().collect();
    let context = Reflect::construct(&class, &args).map_err(|e| js_error("OfflineAudioContext", e))?;
    let buffer = Uint8Array::from(bytes).buffer();
    let decoded = wait(call(&context, "decodeAudioData", &[buffer.into()])?, "decoding the audio").await?;
    audio_buffer(&decoded)
}
