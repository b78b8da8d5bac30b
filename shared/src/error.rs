//! Errors as they travel on the wire: a stable machine-readable code plus a human message.

use serde::{Deserialize, Serialize};

/// Stable error codes. The string form (snake_case) is part of the protocol: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The peer speaks another protocol version.
    ProtocolMismatch,
    /// The message could not be decoded as a request.
    BadRequest,
    /// `model` names no loaded model.
    UnknownModel,
    /// A model with this name is already loaded or loading.
    ModelExists,
    /// The network request failed, or answered with a non-2xx status (`status` is set).
    FetchFailed,
    /// A file's size or sha256 differs from the one the manifest (or `externalData`) states
    /// (`file` is set). Nothing of it is kept or cached.
    IntegrityFailed,
    /// The offline cache has no room left (the browser's storage quota).
    QuotaExceeded,
    /// The offline cache (the origin private file system) failed or is unavailable.
    StorageFailed,
    /// The file is not a valid ONNX model, or its external data does not match it.
    InvalidModel,
    /// The model uses an operator (or attribute) this engine does not implement.
    UnsupportedOp,
    /// An input is missing, unknown, or has the wrong dtype or shape.
    BadInput,
    /// An operator failed while running.
    ExecutionFailed,
    /// The requested task does not exist or does not fit this model.
    BadTask,
    /// `backend: "webgpu"` was asked for but this worker has no WebGPU adapter or device.
    GpuUnavailable,
    /// The GPU ran out of memory. Under `backend: "auto"` the run is retried on the CPU first.
    GpuOutOfMemory,
    /// The GPU device was lost (driver reset, another tab, `destroy()`). Under `auto` the run
    /// is retried on the CPU and the model stays there.
    GpuDeviceLost,
    /// A bug in Wick. The worker keeps serving, but please report it.
    Internal,
}

impl ErrorCode {
    /// The wire string of this code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ProtocolMismatch => "protocol_mismatch",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownModel => "unknown_model",
            ErrorCode::ModelExists => "model_exists",
            ErrorCode::FetchFailed => "fetch_failed",
            ErrorCode::IntegrityFailed => "integrity_failed",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::StorageFailed => "storage_failed",
            ErrorCode::InvalidModel => "invalid_model",
            ErrorCode::UnsupportedOp => "unsupported_op",
            ErrorCode::BadInput => "bad_input",
            ErrorCode::ExecutionFailed => "execution_failed",
            ErrorCode::BadTask => "bad_task",
            ErrorCode::GpuUnavailable => "gpu_unavailable",
            ErrorCode::GpuOutOfMemory => "gpu_out_of_memory",
            ErrorCode::GpuDeviceLost => "gpu_device_lost",
            ErrorCode::Internal => "internal",
        }
    }
}

/// The body of an `error` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    pub code: ErrorCode,
    pub message: String,
    /// The file (URL) the error is about, for loader errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The HTTP status, for `fetch_failed` answered by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl WireError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        WireError { code, message: message.into(), file: None, status: None }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for WireError {}
