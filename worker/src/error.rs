//! The worker's error type. Every variant maps to one stable wire code (`wick_shared::ErrorCode`)
//! at the boundary; inside the worker errors keep their structure.

use wick_shared::{ErrorCode, WireError};

#[derive(Debug, thiserror::Error)]
pub enum WickError {
    #[error("the page speaks protocol {requested}; this worker speaks {spoken}")]
    ProtocolMismatch { requested: u32, spoken: u32 },

    #[error("fetching {file} failed: {message}")]
    Fetch { file: String, status: Option<u16>, message: String },

    #[error("{file}: {message}")]
    Integrity { file: String, message: String },

    #[error("the offline cache is full: {0}")]
    QuotaExceeded(String),

    #[error("offline cache: {0}")]
    Storage(String),

    #[error("invalid model: {message}")]
    InvalidModel { file: Option<String>, message: String },

    #[error("operator {op_type} (domain '{domain}', opset {opset}) is not supported{detail}")]
    UnsupportedOp { domain: String, op_type: String, opset: i64, detail: String },

    #[error("node '{node}' ({op_type}): {message}")]
    Execution { node: String, op_type: String, message: String },

    #[error("bad request: {0}")]
    BadRequest(String),

    #[error("bad input: {0}")]
    BadInput(String),

    #[error("no model named '{0}' is loaded")]
    UnknownModel(String),

    #[error("a model named '{0}' is already loaded or loading")]
    ModelExists(String),

    #[error("task: {0}")]
    BadTask(String),

    #[error("WebGPU is unavailable: {0}")]
    GpuUnavailable(String),

    #[error("out of GPU memory: {0}")]
    GpuOutOfMemory(String),

    #[error("the GPU device was lost: {0}")]
    GpuDeviceLost(String),

    /// A weight bound for the GPU that one storage binding cannot hold. Splitting a weight
    /// across buffers is not implemented yet.
    #[error(
        "weight '{tensor}' ({bytes} bytes) exceeds the GPU's largest storage binding ({limit} \
         bytes); splitting a weight across buffers is not implemented yet, load with \
         `weights: \"host\"`"
    )]
    GpuWeightTooLarge { tensor: String, bytes: u64, limit: u64 },

    #[error("cancelled")]
    Cancelled,

    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = WickError> = std::result::Result<T, E>;

impl WickError {
    /// A failure of the GPU itself, after which `auto` runs the request on the CPU.
    pub fn is_gpu_failure(&self) -> bool {
        matches!(self, WickError::GpuOutOfMemory(_) | WickError::GpuDeviceLost(_))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        WickError::InvalidModel { file: None, message: message.into() }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            WickError::ProtocolMismatch { .. } => ErrorCode::ProtocolMismatch,
            WickError::Fetch { .. } => ErrorCode::FetchFailed,
            WickError::Integrity { .. } => ErrorCode::IntegrityFailed,
            WickError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            WickError::Storage(_) => ErrorCode::StorageFailed,
            WickError::InvalidModel { .. } => ErrorCode::InvalidModel,
            WickError::UnsupportedOp { .. } => ErrorCode::UnsupportedOp,
            WickError::Execution { .. } => ErrorCode::ExecutionFailed,
            WickError::BadRequest(_) => ErrorCode::BadRequest,
            WickError::BadInput(_) => ErrorCode::BadInput,
            WickError::UnknownModel(_) => ErrorCode::UnknownModel,
            WickError::ModelExists(_) => ErrorCode::ModelExists,
            WickError::BadTask(_) => ErrorCode::BadTask,
            WickError::GpuUnavailable(_) => ErrorCode::GpuUnavailable,
            // It does not fit the device: the nearest stable code.
            WickError::GpuOutOfMemory(_) | WickError::GpuWeightTooLarge { .. } => ErrorCode::GpuOutOfMemory,
            WickError::GpuDeviceLost(_) => ErrorCode::GpuDeviceLost,
            WickError::Cancelled | WickError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The wire form: code, message, and the file / status when there is one.
    pub fn to_wire(&self) -> WireError {
        let mut wire = WireError::new(self.code(), self.to_string());
        match self {
            WickError::Fetch { file, status, .. } => {
                wire.file = Some(file.clone());
                wire.status = *status;
            }
            WickError::InvalidModel { file, .. } => wire.file = file.clone(),
            WickError::Integrity { file, .. } => wire.file = Some(file.clone()),
            _ => {}
        }
        wire
    }
}
