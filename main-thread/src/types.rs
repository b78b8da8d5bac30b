//! TypeScript declarations of the plain objects the API takes and returns; wasm-bindgen writes
//! them into `wick_main.d.ts`, and the methods refer to them by name. They mirror `wick_shared`
//! (PROTOCOL.md documents the same shapes on the wire).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Element types, named as onnxruntime-web names them. */
export type DType = "float32" | "float16" | "int8" | "uint8" | "int32" | "int64" | "bool";
/** The typed array of each dtype: Float32Array for float32, Uint16Array (raw bits) for float16,
 * Int8Array, Uint8Array (uint8 and bool), Int32Array, BigInt64Array for int64. */
export type TensorData =
  Float32Array | Uint16Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;
/** A dense row-major tensor. On input any typed array (or ArrayBuffer) of the right byte length
 * is accepted and copied; outputs come as the dtype's typed array. */
export interface Tensor { dtype: DType; dims: number[]; data: TensorData | ArrayBuffer | ArrayBufferView }
export type Backend = "cpu" | "webgpu";
/** What a load asks for: `auto` (default) takes WebGPU when a hardware adapter exists, else the
 * CPU, and retries a run on the CPU when the GPU fails; `webgpu` insists (else `gpu_unavailable`). */
export type BackendChoice = "auto" | "webgpu" | "cpu";
/** Where a load places the f32 weights of external data: "gpu" streams them straight into GPU
 * buffers (webgpu backend only); "auto" does so on webgpu above 1 GiB; "host" keeps them in the
 * worker's memory. */
export type WeightsChoice = "auto" | "host" | "gpu";
export type Task =
  | "digits" | "image-classification" | "object-detection" | "feature-extraction" | "text-generation"
  | "automatic-speech-recognition" | "voice-activity-detection";
/** Wire error codes (PROTOCOL.md), plus "cancelled" for requests the caller aborted. */
export type ErrorCode =
  | "protocol_mismatch" | "bad_request" | "unknown_model" | "model_exists" | "fetch_failed"
  | "integrity_failed" | "quota_exceeded" | "storage_failed" | "invalid_model"
  | "unsupported_op" | "bad_input" | "execution_failed" | "bad_task" | "gpu_unavailable"
  | "gpu_out_of_memory" | "gpu_device_lost" | "internal" | "cancelled";
/** How every Wick Promise rejects. `name` is "AbortError" for code "cancelled". */
export interface WickError extends Error {
  name: "WickError" | "AbortError";
  code: ErrorCode;
  /** The file (URL) a loader error is about. */
  file?: string;
  /** The HTTP status of a `fetch_failed`. */
  status?: number;
}
/** Bytes of one file received so far; `total` when the server sent a length. */
export interface Progress { file: string; loaded: number; total?: number }
/** One external-data file named by the model (`path` = its `location`): where it is fetched
 * from (default: beside the model) and what it must be (checked as it streams). */
export interface ExternalFile { path: string; url?: string | URL; size?: number; sha256?: string }
/** A model: the URL of its `.onnx` file, of a Hugging Face style folder (ending in `/`: its
 * `onnx/model.onnx`), or of a manifest listing its files with sizes and sha256 (PROTOCOL.md). */
export type ModelSource = string | URL | { manifest: string | URL };
/** Options of any request: its AbortSignal sends `cancel`; the Promise then rejects with an
 * AbortError unless the worker had already finished. */
export interface RequestOptions { signal?: AbortSignal }
export interface LoadOptions extends RequestOptions {
  onProgress?: (progress: Progress) => void;
  externalData?: ExternalFile[];
  /** sha256 (hex) of the `.onnx` file. */
  sha256?: string;
  /** With a folder source: load `onnx/model_{variant}.onnx` (e.g. "q4", "fp16"). */
  variant?: string;
  /** Read from and store in the offline cache (default true). */
  cache?: boolean;
  /** `Wick.load` only (a pipeline has its task): the task whose companion files to fetch
   * beside the model, e.g. "text-generation" for `Wick.generate`. */
  task?: Task;
  /** Where the model runs (default "auto"; the ready info says what was chosen and why). */
  backend?: BackendChoice;
  /** Where the float weights go (default "auto"; the ready info's gpuWeightBytes says). */
  weights?: WeightsChoice;
}
export interface RunOptions extends RequestOptions {
  /** Output names to return; all graph outputs when absent. */
  outputs?: string[];
}
export interface PipelineOptions extends LoadOptions {
  /** The worker script; default: worker/wick-worker.js next to wick.js. */
  workerUrl?: string | URL;
  /** automatic-speech-recognition: the URL of a silero VAD `.onnx`, loaded beside the model:
   * silence is then skipped, and audio longer than 30 s is cut in its pauses. */
  vad?: string | URL;
}
/** Name, dtype and shape of a graph input or output; null dims are symbolic. */
export interface ValueInfo { name: string; dtype: DType | null; dims: (number | null)[] }
export interface ReadyInfo {
  model: string;
  backend: Backend;
  /** Why that backend: e.g. "no WebGPU adapter", "the only adapter is a software fallback". */
  backendReason: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  weightBytes: number;
  /** Of weightBytes, those that live only on the GPU (`weights`). */
  gpuWeightBytes: number;
  loadMs: number;
  /** What the offline cache did (absent with `cache: false`). */
  cache?: CacheReport;
}
export interface CacheReport {
  /** Files read from the cache instead of the network. */
  fromCache: number;
  /** Files this load stored. */
  stored: number;
  /** Why nothing was stored (e.g. code "quota_exceeded"); the load itself succeeded. */
  error?: { code: ErrorCode; message: string };
}
export interface WorkerStats {
  models: { model: string; backend: Backend; weightBytes: number }[];
  memory: {
    /** Size of the worker's WebAssembly memory (it never shrinks; freed bytes are reused). */
    wasmBytes: number;
    /** Bytes the worker has allocated now. */
    allocatedBytes: number;
    peakAllocatedBytes: number;
  };
}
export interface CachedFile { url: string; size: number; sha256?: string }
export interface CachedModel { url: string; files: CachedFile[]; bytes: number; storedAt: number }
export interface RunStats {
  runMs: number;
  peakIntermediateBytes: number;
  /** On the WebGPU backend: where the steps ran and what was copied between GPU and CPU. */
  gpu?: GpuRunStats;
}
export interface GpuRunStats {
  gpuSteps: number;
  /** Steps with no WebGPU kernel (or inputs it does not take), run on the CPU. */
  cpuSteps: number;
  cpuOps: string[];
  uploads: number;
  uploadBytes: number;
  downloads: number;
  downloadBytes: number;
  /** The GPU failed and `auto` ran the request on the CPU instead: why. */
  retriedOnCpu?: string;
}
export interface RunResult {
  outputs: Record<string, Tensor & { data: TensorData }>;
  stats: RunStats;
}
export interface DigitsResult { digit: number; probabilities: number[]; stats: RunStats }
/** An image for the vision pipelines: pixels (ImageData or `{width, height, data}`), anything a
 * canvas can draw, an encoded PNG/JPEG/WebP file (Blob, ArrayBuffer, typed array, decoded in the
 * worker), or its URL. */
export type ImageSource =
  | ImageData | ImageLike | ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas
  | HTMLVideoElement | Blob | ArrayBuffer | ArrayBufferView | string | URL;
export interface TaskOptions extends RequestOptions {
  /** image-classification: how many labels (default 5). */
  topK?: number;
  /** object-detection: the lowest score kept (default from the model's config);
   * voice-activity-detection: the speech probability that starts speech (default 0.5). */
  threshold?: number;
  /** object-detection: boxes overlapping more than this (IoU) are merged (default from the model's config). */
  iou?: number;
  /** feature-extraction: "mean" over the tokens (default), "cls" (the first token's), "none" (every token's). */
  pooling?: "mean" | "cls" | "none";
  /** feature-extraction: L2-normalise each embedding (default true), so a dot product is the cosine. */
  normalize?: boolean;
  /** voice-activity-detection: the rate of a Float32Array of samples (default 16000). */
  sampleRate?: number;
}
export interface ScoredLabel { label: string; score: number }
export interface ImageClassificationResult { labels: ScoredLabel[]; stats: RunStats }
export interface Detection {
  label: string;
  score: number;
  /** In the source image's pixels. */
  box: { xmin: number; ymin: number; xmax: number; ymax: number };
}
export interface ObjectDetectionResult { objects: Detection[]; stats: RunStats }
/** `embeddings.data` holds `dims[0]` vectors of `dims[1]` floats, one per text. */
export interface FeatureExtractionResult { embeddings: Tensor & { data: Float32Array }; stats: RunStats }
/** Where speech is, in seconds. */
export interface VoiceActivityResult { segments: { start: number; end: number }[]; stats: RunStats }
export type TaskResult =
  | DigitsResult | ImageClassificationResult | ObjectDetectionResult | FeatureExtractionResult | TranscribeResult
  | VoiceActivityResult;
/** One chat turn. */
export interface ChatMessage { role: "system" | "user" | "assistant" | (string & {}); content: string }
/** A text, fed to the model as it is, or chat messages, rendered with the model's chat template
 * (tokenizer_config.json) with the assistant's turn opened. */
export type Prompt = string | ChatMessage[];
export interface GenerateOptions extends RequestOptions {
  /** Most tokens to generate (default 256). */
  maxNewTokens?: number;
  /** 0 or absent: greedy decoding; above 0: sample from softmax(logits / temperature). */
  temperature?: number;
  /** Sample among the topK likeliest tokens only. */
  topK?: number;
  /** Sample among the smallest set of tokens whose probability reaches topP (in (0, 1]). */
  topP?: number;
  /** Seed of the sampler: the same seed gives the same text (default: random). */
  seed?: number;
  /** Texts that end the answer when generated; the answer stops before them. */
  stop?: string | string[];
}
/** Why generation ended: an end-of-sequence token, a stop text, or maxNewTokens reached. */
export type FinishReason = "eos" | "stop" | "length";
export interface GenerationStats {
  /** Tokens in the (templated) prompt. */
  promptTokens: number;
  /** Tokens generated (the end-of-sequence token included). */
  generatedTokens: number;
  /** The prompt's forward pass, to the first token. */
  prefillMs: number;
  prefillTokS: number;
  /** Tokens per second after the first one. */
  decodeTokS: number;
}
/** The whole answer (without the prompt, the end-of-sequence token or the stop text). */
export interface GenerateResult { text: string; finish: FinishReason; stats: GenerationStats }
/** A Generation is an async iterator of the pieces of text as they are generated. */
export interface Generation { [Symbol.asyncIterator](): Generation }
/** Audio for speech recognition: mono samples (Float32Array, at `sampleRate`), an AudioBuffer,
 * or a file — WAV, or any format the browser decodes — as a Blob, bytes or a URL. */
export type AudioSource = Float32Array | AudioBuffer | Blob | ArrayBuffer | ArrayBufferView | string | URL;
export interface TranscribeOptions extends RequestOptions {
  /** The rate of a Float32Array of samples (default 16000). */
  sampleRate?: number;
  /** Chunks timed by the model's timestamp tokens (segments of a few seconds) instead of by
   * its windows of up to 30 s. */
  timestamps?: boolean;
  /** Most tokens to decode per 30 s window. */
  maxNewTokens?: number;
  /** `Wick.transcribe` only: the name of a model loaded for "voice-activity-detection". */
  vad?: string;
}
/** A piece of the transcript and its time in the audio, in seconds; `end` is null when the
 * model left the segment open. */
export interface TranscriptChunk { timestamp: [number, number | null]; text: string }
export interface TranscriptionStats {
  audioSeconds: number;
  /** Audio transcribed, after voice-activity detection dropped silence. */
  speechSeconds: number;
  /** Windows of at most 30 s. */
  windows: number;
  tokens: number;
  audioMs: number;
  vadMs: number;
  encoderMs: number;
  decoderMs: number;
  totalMs: number;
  /** totalMs / audio length: below 1 is faster than real time. */
  realTimeFactor: number;
}
export interface TranscribeResult { text: string; chunks: TranscriptChunk[]; stats: TranscriptionStats }
/** A Transcription is an async iterator of the pieces of text as they are decoded. */
export interface Transcription { [Symbol.asyncIterator](): Transcription }
export interface Capabilities {
  backends: Backend[];
  tasks: Task[];
  ops: string[];
  /** The op types with a WebGPU kernel. */
  gpuOps: string[];
  simd: boolean;
  threads: number;
  /** The WebGPU adapter the worker's `navigator.gpu` offers; absent without one. */
  gpu?: GpuAdapter;
}
export interface GpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software or otherwise limited adapter (SwiftShader is one). */
  isFallbackAdapter: boolean;
  /** Optional features, e.g. "shader-f16", sorted. */
  features: string[];
  /** Limits by WebGPU name, e.g. maxStorageBufferBindingSize. */
  limits: Record<string, number>;
}
/** Anything shaped like an ImageData: RGBA bytes, row by row. */
export interface ImageLike { width: number; height: number; data: Uint8ClampedArray | Uint8Array }
"#;
