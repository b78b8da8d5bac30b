//! Wick's wire protocol, defined once.
//!
//! Everything that crosses `postMessage` between the page (or the `main-thread` crate) and the
//! worker lives here: the [`Envelope`], the closed [`Request`] and [`Event`] enums, tensors
//! ([`Tensor`], [`DType`]) and errors ([`WireError`], [`ErrorCode`]). PROTOCOL.md documents the
//! same types for plain-JS users. This crate never knows about ONNX, candle or the DOM; the `js`
//! feature adds only the JsValue conversion that moves typed arrays without copying them twice.

mod error;
mod message;
mod tensor;

#[cfg(feature = "js")]
pub mod js;

pub use error::{ErrorCode, WireError};
pub use message::{
    AudioInput, Backend, BackendChoice, BoundingBox, CacheReport, CachedFile, CachedModel, Capabilities, ChatMessage,
    Detection, Envelope, Event, ExternalFile, FinishReason, GenerateOptions, GenerationStats, GpuAdapter, GpuRunStats,
    Image, ImageInput, Manifest, ManifestFile, MemoryStats, ModelStats, Pooling, Prompt, Request,
    RunStats, ScoredLabel, SpeechSegment, TaskInput, TaskKind, TaskOutput, TranscribeOptions, TranscriptChunk,
    TranscriptionStats, ValueInfo, WeightsChoice, AUTO_GPU_WEIGHTS_BYTES,
};
pub use tensor::{DType, Tensor};

/// The protocol version exchanged at `hello`. Bump it on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;
