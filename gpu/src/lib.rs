//! Wick's WebGPU backend: f32 compute kernels on `wgpu` (WebGPU in the browser, Vulkan
//! natively — lavapipe in `cargo test`). The worker's engine drives it (`engine/gpu/`).
//!
//! - `error.rs` owns [`GpuError`], the crate's one error enum.
//! - `device.rs` owns [`Gpu`]: adapter, device, queue, the pipelines built once, error scopes
//!   (checked together at read-backs).
//! - `tensor.rs` owns [`GpuTensor`]: a storage buffer + dims, upload and async read-back.
//! - `kernels/` owns one compute pipeline per kernel, each with its WGSL beside it: `matmul`
//!   (batched MatMul, Gemm), `binary` (Add/Sub/Mul/Div/Pow/Max/Min, broadcast to 6-D), `unary`
//!   ([`UnaryOp`]: activations and elementwise math), `softmax` (Softmax, LogSoftmax), `norm`
//!   (LayerNormalization, RMS norm), `gather`, `layout` (Transpose, Slice, Expand, Concat as
//!   one strided copy; Reshape is [`GpuTensor::reshape`], no copy), `reduce` ([`ReduceOp`]),
//!   `select` (Where), `conv` (Conv 2-D, depthwise on its own pipeline), `pool` (Max/Average,
//!   global), `matmul_nbits` (4-bit MatMulNBits), `attention` (SDPA with GQA and a KV cache),
//!   `resize` (nearest, bilinear).
//! - `write.rs` owns [`TensorWriter`]: a tensor filled from a byte stream cut anywhere
//!   (unaligned tails carried to the next write), for weights streamed straight to the device.
//! - `bytes.rs` owns [`GpuBytes`]: raw bytes (quantized weights), padded to 4, read as u32 words.

mod bytes;
mod device;
mod error;
pub mod kernels;
mod tensor;
mod write;

pub use bytes::GpuBytes;
pub use device::{Gpu, Turn};
pub use error::GpuError;
pub use kernels::attention::AttentionParams;
pub use kernels::binary::BinaryOp;
pub use kernels::conv::Conv2dParams;
pub use kernels::pool::{Pool2dParams, PoolKind};
pub use kernels::reduce::ReduceOp;
pub use kernels::resize::{CoordinateMode, NearestMode, ResizeMode, ResizeParams};
pub use kernels::unary::UnaryOp;
pub use tensor::{Element, GpuTensor};
pub use write::TensorWriter;
