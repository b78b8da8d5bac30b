//! The envelope and the closed sets of requests (page → worker) and events (worker → page).
//!
//! Every request carries an `id` chosen by the sender; every event carries the `id` of the
//! request it answers. A request gets any number of `progress` (loads) or `token` (generation)
//! events and then exactly one final event: `hello`, `ready`, `output`, `result`, `generated`,
//! `done`, `cancelled` or `error`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Tensor, WireError};

/// `{id, body}`: the one shape of every message in both directions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u32,
    pub body: T,
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// First message: states the page's protocol version; answered by `hello`.
    Hello { protocol: u32 },
    /// Fetch and prepare a model under the name `model`; answered by `progress`… then `ready`.
    /// Exactly one of `url` and `manifest` names the model.
    Load {
        model: String,
        /// URL of the `.onnx` file, absolute or relative to the worker script; or a folder URL
        /// ending in `/` in the Hugging Face layout (`onnx/model.onnx`, or
        /// `onnx/model_{variant}.onnx` with `variant`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// URL of a [`Manifest`] (JSON) listing the model's files with sizes and sha256.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manifest: Option<String>,
        /// With a folder `url`: `onnx/model_{variant}.onnx` instead of `onnx/model.onnx`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        variant: Option<String>,
        /// Where to fetch external-data files, and what they must hash to. A file the model names
        /// that is not listed here is fetched relative to the model (onnxruntime-web's
        /// `externalData` semantics).
        #[serde(default, rename = "externalData", skip_serializing_if = "Vec::is_empty")]
        external_data: Vec<ExternalFile>,
        /// Expected sha256 (hex) of the `.onnx` file itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// Read the files from, and store them in, the worker's offline cache (default true).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<bool>,
        /// The task the model is loaded for: the worker also fetches the files that task reads
        /// beside the model (e.g. `config.json`, `preprocessor_config.json`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<TaskKind>,
        /// Where the model runs (default `auto`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backend: Option<BackendChoice>,
        /// Where the float weights of its external data are placed (default `auto`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<WeightsChoice>,
    },
    /// Run the model on raw tensors; answered by `output`.
    Run {
        model: String,
        inputs: BTreeMap<String, Tensor>,
        /// Output names to return; all graph outputs when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outputs: Option<Vec<String>>,
    },
    /// Run a task (pre-processing → model → post-processing); answered by `result`.
    Task { model: String, input: TaskInput },
    /// Generate text from a prompt with a text-generation model: answered by one `token`
    /// event per decoded piece of text, as soon as it is decoded, then `generated` (or
    /// `cancelled`: a `cancel` stops the loop before the next token).
    Generate {
        model: String,
        prompt: Prompt,
        #[serde(default)]
        options: GenerateOptions,
    },
    /// Transcribe speech with a model loaded for `automatic-speech-recognition`: answered by one
    /// `token` event per piece of text as it is decoded, then `transcribed` (or `cancelled`: a
    /// `cancel` stops decoding before the next token).
    Transcribe {
        model: String,
        audio: AudioInput,
        #[serde(default)]
        options: TranscribeOptions,
    },
    /// Stop request `target`: it ends with `cancelled` (or its own final event if it was
    /// already done); the cancel request itself ends with `done`.
    Cancel { target: u32 },
    /// Drop a model and free its memory; answered by `done`.
    Unload { model: String },
    /// The loaded models and the worker's memory; answered by `stats`.
    Stats {},
    /// The models in the offline cache; answered by `cached`.
    CacheList {},
    /// Remove a model (by the URL it was loaded from) and its files from the offline cache;
    /// answered by `done`, also when nothing was cached under that URL.
    CacheDelete { url: String },
}

/// Where one external-data file named by the model is fetched from, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExternalFile {
    /// The `location` as written in the model.
    pub path: String,
    /// The URL to fetch it from; by default the `location` relative to the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its size in bytes; a different size is an `integrity_failed` error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Its sha256 (hex); checked incrementally as the file streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A model's files with their sizes and hashes: `{"format": "wick-manifest", "version": 1,
/// "model": "onnx/model.onnx", "files": [{"path", "size", "sha256"}]}`. Paths are relative to the
/// manifest's URL; `model` is one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub model: String,
    pub files: Vec<ManifestFile>,
}

/// One file of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Manifest {
    /// The `format` field of every manifest.
    pub const FORMAT: &'static str = "wick-manifest";
}

/// What to generate from: plain text, fed as it is (no template), or chat messages, rendered
/// with the model's chat template (`tokenizer_config.json`) and an assistant turn opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Chat(Vec<ChatMessage>),
}

/// One chat turn: `role` is `system`, `user` or `assistant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// How to generate. Without `temperature` (or with 0) decoding is greedy; with a temperature the
/// next token is sampled from the softmax of logits / temperature, restricted to the `topK`
/// likeliest and to the smallest set whose probability reaches `topP`, from a generator seeded
/// by `seed` (the same seed gives the same text).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateOptions {
    /// Most tokens to generate (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Texts that end the answer when generated; the answer stops before them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

/// Audio a task reads: mono PCM samples (a Float32Array, values in [-1, 1]) at `sampleRate`
/// Hz, resampled to the model's rate in the worker; or a WAV file's bytes (`{bytes}`: 8-, 16-,
/// 24- or 32-bit integer or float samples; channels are averaged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AudioInput {
    Pcm {
        /// float32 little-endian samples (in JS, any typed array over them: a Float32Array).
        #[serde(with = "serde_bytes")]
        samples: Vec<u8>,
        #[serde(rename = "sampleRate")]
        sample_rate: u32,
    },
    Encoded {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

/// How to transcribe.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscribeOptions {
    /// Chunks timed by the model's timestamp tokens (segments of a few seconds). Without
    /// (default), one chunk per window, timed by the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamps: Option<bool>,
    /// The name of a model loaded for `voice-activity-detection` (silero VAD): only the speech
    /// it finds is transcribed, and audio longer than a window is cut in its pauses. Without
    /// one, long audio is cut at its quietest moments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vad: Option<String>,
    /// Most tokens to decode per window (default: as many as the model allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<u32>,
}

/// A piece of a transcript with its time in the audio, in seconds: `[start, end]`; `end` is
/// null when the model did not close the segment (the window ended mid-sentence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptChunk {
    pub timestamp: (f64, Option<f64>),
    pub text: String,
}

/// Timings of one transcription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptionStats {
    /// Length of the audio.
    pub audio_seconds: f64,
    /// Audio transcribed (after voice-activity detection dropped silence).
    pub speech_seconds: f64,
    /// Windows (of at most 30 s) the audio was cut into.
    pub windows: u32,
    /// Tokens decoded (timestamps included, end-of-text excluded).
    pub tokens: u32,
    /// Decoding the audio and resampling it.
    pub audio_ms: f64,
    /// Voice-activity detection.
    pub vad_ms: f64,
    /// Log-mel features and the encoder, all windows.
    pub encoder_ms: f64,
    /// The decoder's steps, all windows.
    pub decoder_ms: f64,
    pub total_ms: f64,
    /// total_ms / audio length: below 1 is faster than real time.
    pub real_time_factor: f64,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model produced an end-of-sequence token.
    Eos,
    /// A `stop` text was generated.
    Stop,
    /// `maxNewTokens` were generated.
    Length,
}

/// Timings of one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationStats {
    /// Tokens in the (templated) prompt.
    pub prompt_tokens: u32,
    /// Tokens generated (the EOS token included).
    pub generated_tokens: u32,
    /// The prompt's forward pass, to the first token's logits.
    pub prefill_ms: f64,
    /// Prompt tokens per second in the prefill.
    pub prefill_tok_s: f64,
    /// Tokens per second after the first one (one forward pass each, with the KV cache).
    pub decode_tok_s: f64,
}

/// The tasks the worker knows, with their inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "kebab-case")]
pub enum TaskInput {
    /// Handwritten digit recognition from a drawing.
    Digits { image: Image },
    /// The `topK` most likely labels of a photo (default 5).
    ImageClassification {
        image: ImageInput,
        #[serde(default, rename = "topK", skip_serializing_if = "Option::is_none")]
        top_k: Option<u32>,
    },
    /// Labelled boxes in a photo: those scoring at least `threshold`, overlapping ones (IoU
    /// above `iou`) merged by non-maximum suppression. Defaults come from the model's config.
    ObjectDetection {
        image: ImageInput,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iou: Option<f32>,
    },
    /// Embeddings of texts: the model's hidden states pooled per text (default `mean` over the
    /// tokens, then L2-normalised, as sentence-transformers does).
    FeatureExtraction {
        texts: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pooling: Option<Pooling>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        normalize: Option<bool>,
    },
    /// Where speech is in audio: segments of at least 250 ms, split at pauses of 100 ms or
    /// more (silero's `get_speech_timestamps` rules; `threshold` default 0.5).
    VoiceActivityDetection {
        audio: AudioInput,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f32>,
    },
}

/// How token embeddings become one embedding per text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean over the text's tokens (padding excluded).
    Mean,
    /// The first token's (`[CLS]`).
    Cls,
    /// No pooling: every token's embedding, `[texts, tokens, dims]` (padded positions zero).
    None,
}

/// Task names, as listed in capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    Digits,
    ImageClassification,
    ObjectDetection,
    FeatureExtraction,
    /// Loaded for `generate` requests (not `task`).
    TextGeneration,
    /// Loaded for `transcribe` requests (not `task`): from a folder with
    /// `onnx/encoder_model.onnx` and `onnx/decoder_model_merged.onnx` (Whisper).
    AutomaticSpeechRecognition,
    /// Speech segments in audio (silero VAD); also what `transcribe`'s `vad` option names.
    VoiceActivityDetection,
}

/// Task results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "kebab-case")]
pub enum TaskOutput {
    Digits { digit: u8, probabilities: Vec<f32> },
    /// Most likely first.
    ImageClassification { labels: Vec<ScoredLabel> },
    /// Highest score first; boxes in the source image's pixels.
    ObjectDetection { objects: Vec<Detection> },
    /// `[texts, dims]` float32 (`[texts, tokens, dims]` without pooling).
    FeatureExtraction { embeddings: Tensor },
    /// Speech segments in order, in seconds.
    VoiceActivityDetection { segments: Vec<SpeechSegment> },
}

/// A stretch of speech, in seconds from the start of the audio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeechSegment {
    pub start: f64,
    pub end: f64,
}

/// A label and its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredLabel {
    pub label: String,
    pub score: f32,
}

/// One detected object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub label: String,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: BoundingBox,
}

/// A box in pixels of the source image: `(xmin, ymin)` top left, `(xmax, ymax)` bottom right.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub xmin: f32,
    pub ymin: f32,
    pub xmax: f32,
    pub ymax: f32,
}

/// An image a task reads: RGBA pixels (an ImageData, or `{width, height, data}`), or an encoded
/// file (`{bytes}`: PNG, JPEG or WebP, recognised by its content) decoded in the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageInput {
    Pixels(Image),
    Encoded {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

/// An RGBA image, as in the DOM's ImageData (`data` may be a Uint8ClampedArray).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Answer to `hello`.
    Hello { protocol: u32, version: String, capabilities: Capabilities },
    /// Bytes of `file` received so far; `total` when the server sent a length.
    Progress {
        file: String,
        loaded: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// The model is loaded and planned.
    Ready {
        model: String,
        backend: Backend,
        /// Why this backend runs the model (e.g. `no WebGPU adapter`).
        #[serde(rename = "backendReason")]
        backend_reason: String,
        inputs: Vec<ValueInfo>,
        outputs: Vec<ValueInfo>,
        /// Bytes of weights held by the model.
        #[serde(rename = "weightBytes")]
        weight_bytes: u64,
        /// Of those, the bytes that live only on the GPU (streamed there by `weights`).
        #[serde(default, rename = "gpuWeightBytes")]
        gpu_weight_bytes: u64,
        #[serde(rename = "loadMs")]
        load_ms: f64,
        /// What the offline cache did; absent when the load did not use it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheReport>,
    },
    /// Answer to `run`.
    Output { outputs: BTreeMap<String, Tensor>, stats: RunStats },
    /// Answer to `task`.
    Result { result: TaskOutput, stats: RunStats },
    /// A piece of generated or transcribed text (valid UTF-8, possibly several tokens' worth or
    /// part of a word), posted as soon as it is decoded; not final.
    Token { text: String },
    /// Answer to `generate`: the whole answer (without the prompt, the EOS token or the stop
    /// text), why it ended, and timings.
    Generated { text: String, finish: FinishReason, stats: GenerationStats },
    /// Answer to `transcribe`: the whole transcript and its timed chunks.
    Transcribed { text: String, chunks: Vec<TranscriptChunk>, stats: TranscriptionStats },
    /// Answer to `stats`.
    Stats { models: Vec<ModelStats>, memory: MemoryStats },
    /// Answer to `cache_list`.
    Cached { models: Vec<CachedModel> },
    /// Final event of requests with nothing to return (`cancel`, `unload`, `cache_delete`).
    Done {},
    /// The request was cancelled before it finished.
    Cancelled {},
    /// The request failed; the worker keeps serving.
    Error(WireError),
}

impl Event {
    /// Whether this event ends its request.
    pub fn is_final(&self) -> bool {
        !matches!(self, Event::Progress { .. } | Event::Token { .. })
    }
}

/// What this worker can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    pub backends: Vec<Backend>,
    pub tasks: Vec<TaskKind>,
    /// ONNX operator types the engine implements (default domain unless prefixed `domain:`).
    pub ops: Vec<String>,
    /// The op types with a WebGPU kernel (the others run on the CPU on the `webgpu` backend).
    #[serde(rename = "gpuOps", default)]
    pub gpu_ops: Vec<String>,
    pub simd: bool,
    pub threads: u32,
    /// The WebGPU adapter this worker's `navigator.gpu` offers; absent when there is none
    /// (no WebGPU, or `requestAdapter()` gave null). Models run on the CPU in this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuAdapter>,
}

/// A WebGPU adapter as the worker sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuAdapter {
    /// `GPUAdapterInfo`'s fields (empty strings where the browser hides them).
    pub vendor: String,
    pub architecture: String,
    pub device: String,
    pub description: String,
    /// A software or otherwise limited adapter (SwiftShader is one).
    pub is_fallback_adapter: bool,
    /// The optional features it supports (`shader-f16`, `timestamp-query`, …), sorted.
    pub features: Vec<String>,
    /// Its limits by WebGPU name (`maxStorageBufferBindingSize`, `maxBufferSize`, …).
    pub limits: BTreeMap<String, f64>,
}

/// Where a model's tensors live and its ops run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    /// WebGPU kernels; ops without one run on the CPU with explicit transfers
    /// ([`GpuRunStats`]).
    Webgpu,
}

/// The backend a load asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// WebGPU when a hardware adapter exists and the task can use it, else the CPU; `ready`
    /// says which and why, and a run that fails on the GPU (device lost, out of memory) is
    /// retried on the CPU.
    #[default]
    Auto,
    /// WebGPU, or a `gpu_unavailable` error; GPU failures are errors, not retried.
    Webgpu,
    Cpu,
}

/// Where a load places the f32 weights of the model's external data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightsChoice {
    /// `gpu` when the model runs on WebGPU and its external weights exceed
    /// [`AUTO_GPU_WEIGHTS_BYTES`], else `host` (weights on the host keep `auto`'s CPU retry
    /// cheap).
    #[default]
    Auto,
    /// In the worker's memory, as candle tensors (uploaded to the GPU at the first run there).
    Host,
    /// Streamed from the network straight into GPU buffers, never held in wasm memory: needs
    /// the `webgpu` backend (with `cpu` the load is a `bad_request`). Other types (int64
    /// shapes, f16, quantized bytes) stay on the host.
    Gpu,
}

/// `weights: "auto"` streams to the GPU above this many bytes of external weights (1 GiB).
pub const AUTO_GPU_WEIGHTS_BYTES: u64 = 1 << 30;

/// What the offline cache did during one load.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CacheReport {
    /// Files read from the cache instead of the network.
    #[serde(rename = "fromCache")]
    pub from_cache: u32,
    /// Files stored in the cache by this load.
    pub stored: u32,
    /// Why the files could not be stored (e.g. `quota_exceeded`); the load itself succeeded
    /// and the cache holds no part of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

/// One loaded model, in `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    pub model: String,
    pub backend: Backend,
    #[serde(rename = "weightBytes")]
    pub weight_bytes: u64,
}

/// The worker's memory, in `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Size of the WebAssembly memory (it grows, never shrinks; freed bytes are reused).
    #[serde(rename = "wasmBytes")]
    pub wasm_bytes: u64,
    /// Bytes currently allocated by the worker (weights, buffers, tables).
    #[serde(rename = "allocatedBytes")]
    pub allocated_bytes: u64,
    /// The most bytes ever allocated at once.
    #[serde(rename = "peakAllocatedBytes")]
    pub peak_allocated_bytes: u64,
}

/// One model in the offline cache, in `cached`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedModel {
    /// The URL it was loaded from (the `.onnx` file or the manifest).
    pub url: String,
    pub files: Vec<CachedFile>,
    /// Sum of the files' sizes.
    pub bytes: u64,
    /// When it was stored (ms since the Unix epoch).
    #[serde(rename = "storedAt")]
    pub stored_at: f64,
}

/// One file in the offline cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedFile {
    pub url: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Name, dtype and shape of a graph input or output; `null` dims are symbolic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueInfo {
    pub name: String,
    pub dtype: Option<crate::DType>,
    pub dims: Vec<Option<u64>>,
}

/// Timing and memory of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStats {
    #[serde(rename = "runMs")]
    pub run_ms: f64,
    /// Peak bytes of intermediate tensors alive at once (weights and inputs excluded).
    #[serde(rename = "peakIntermediateBytes")]
    pub peak_intermediate_bytes: u64,
    /// How the run used the GPU; absent on the CPU backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuRunStats>,
}

/// Where the steps of a WebGPU run ran, and what crossed between GPU and CPU memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuRunStats {
    /// Steps run by a WebGPU kernel.
    pub gpu_steps: u32,
    /// Steps run on the CPU: ops with no WebGPU kernel (or inputs it does not take, such as
    /// integer tensors), their inputs read back from the GPU as needed.
    pub cpu_steps: u32,
    /// The op types of the CPU steps, each once, sorted.
    pub cpu_ops: Vec<String>,
    /// Tensors copied CPU → GPU during the run (weights are uploaded once, at the first run,
    /// and counted there).
    pub uploads: u32,
    pub upload_bytes: u64,
    /// Tensors read back GPU → CPU (for CPU steps and the outputs).
    pub downloads: u32,
    pub download_bytes: u64,
    /// The run failed on the GPU and was run again on the CPU (`auto` only): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_on_cpu: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_shape_is_tagged_by_type() {
        let req: Envelope<Request> = serde_json::from_str(
            r#"{"id":7,"body":{"type":"load","model":"d","url":"m.onnx",
                "externalData":[{"path":"w.bin","url":"/x/w.bin"}]}}"#,
        )
        .unwrap();
        assert_eq!(req.id, 7);
        assert_eq!(
            req.body,
            Request::Load {
                model: "d".into(),
                url: Some("m.onnx".into()),
                manifest: None,
                variant: None,
                external_data: vec![ExternalFile {
                    path: "w.bin".into(),
                    url: Some("/x/w.bin".into()),
                    ..Default::default()
                }],
                sha256: None,
                cache: None,
                task: None,
                backend: None,
                weights: None,
            }
        );
    }

    #[test]
    fn error_event_flattens_code_and_message() {
        let ev = Envelope {
            id: 3,
            body: Event::Error(WireError {
                code: crate::ErrorCode::FetchFailed,
                message: "404".into(),
                file: Some("a.bin".into()),
                status: Some(404),
            }),
        };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id":3,"body":{"type":"error","code":"fetch_failed",
                "message":"404","file":"a.bin","status":404}})
        );
    }

    #[test]
    fn task_input_is_tagged_by_task() {
        let req: Request = serde_json::from_str(
            r#"{"type":"task","model":"d","input":{"task":"digits",
                "image":{"width":1,"height":1,"data":[0,0,0,255]}}}"#,
        )
        .unwrap();
        assert!(matches!(req, Request::Task { input: TaskInput::Digits { .. }, .. }));
    }

    #[test]
    fn an_image_is_pixels_or_an_encoded_file() {
        let pixels: TaskInput = serde_json::from_str(
            r#"{"task":"image-classification","topK":3,
                "image":{"width":1,"height":1,"data":[0,0,0,255]}}"#,
        )
        .unwrap();
        assert!(matches!(
            pixels,
            TaskInput::ImageClassification { image: ImageInput::Pixels(_), top_k: Some(3) }
        ));
        let encoded: TaskInput =
            serde_json::from_str(r#"{"task":"object-detection","image":{"bytes":[137,80,78,71]}}"#).unwrap();
        assert!(matches!(encoded, TaskInput::ObjectDetection { image: ImageInput::Encoded { .. }, .. }));
    }
}
