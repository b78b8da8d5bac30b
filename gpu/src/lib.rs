//! Wick's WebGPU backend, first brick: f32 compute kernels on `wgpu` (WebGPU in the browser,
//! Vulkan natively — lavapipe in `cargo test`). Not yet wired into the worker.
//!
//! - `error.rs` owns [`GpuError`], the crate's one error enum.
//! - `device.rs` owns [`Gpu`]: adapter, device, queue, the pipelines built once, error scopes.
//! - `tensor.rs` owns [`GpuTensor`]: a storage buffer + dims, upload and async read-back.
//! - `bytes.rs` owns [`GpuBytes`]: raw bytes (quantized weights), padded to 4, read as u32 words.
//! - `kernels/` owns one compute pipeline per kernel, each with its WGSL beside it.

mod bytes;
mod device;
mod error;
pub mod kernels;
mod tensor;

pub use bytes::GpuBytes;
pub use device::Gpu;
pub use error::GpuError;
pub use kernels::attention::AttentionParams;
pub use kernels::binary::BinaryOp;
pub use kernels::conv::Conv2dParams;
pub use kernels::pool::{Pool2dParams, PoolKind};
pub use kernels::resize::{CoordinateMode, NearestMode, ResizeMode, ResizeParams};
pub use tensor::GpuTensor;
