//! Tensors on the wire: `{dtype, dims, data}`. In JS, `data` is the typed array that matches
//! `dtype` (Float32Array for float32, BigInt64Array for int64, …) and its buffer is transferred;
//! in Rust it is the raw little-endian bytes.

use serde::{Deserialize, Serialize};

/// Element types, named as onnxruntime-web names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Float32,
    Float16,
    Int8,
    Uint8,
    Int32,
    Int64,
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Float32 | DType::Int32 => 4,
            DType::Float16 => 2,
            DType::Int8 | DType::Uint8 | DType::Bool => 1,
            DType::Int64 => 8,
        }
    }

    /// The JS typed array constructor that views this dtype's data.
    pub fn typed_array_name(self) -> &'static str {
        match self {
            DType::Float32 => "Float32Array",
            DType::Float16 => "Uint16Array",
            DType::Int8 => "Int8Array",
            DType::Uint8 | DType::Bool => "Uint8Array",
            DType::Int32 => "Int32Array",
            DType::Int64 => "BigInt64Array",
        }
    }
}

/// A dense tensor: little-endian bytes in row-major order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    pub dtype: DType,
    pub dims: Vec<usize>,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl Tensor {
    /// Number of elements the dims describe.
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether `data` holds exactly `numel * dtype.size()` bytes.
    pub fn is_consistent(&self) -> bool {
        self.numel().checked_mul(self.dtype.size()) == Some(self.data.len())
    }
}
