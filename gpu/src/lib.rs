//! Wick's WebGPU backend, first brick: f32 compute kernels on `wgpu` (WebGPU in the browser,
//! Vulkan natively — lavapipe in `cargo test`). Not yet wired into the worker.
//!
//! - `error.rs` owns [`GpuError`], the crate's one error enum.
//! - `device.rs` owns [`Gpu`]: adapter, device, queue, the pipelines built once, error scopes.
//! - `tensor.rs` owns [`GpuTensor`]: a storage buffer + dims, upload and async read-back.
//! - `kernels/` owns one compute pipeline per kernel, each with its WGSL beside it: `matmul`
//!   (batched MatMul, Gemm), `binary` (Add/Sub/Mul/Div/Pow/Max/Min, broadcast to 6-D), `unary`
//!   ([`UnaryOp`]: activations and elementwise math), `softmax` (Softmax, LogSoftmax), `norm`
//!   (LayerNormalization, RMS norm), `gather`, `layout` (Transpose, Slice, Expand, Concat as
//!   one strided copy; Reshape is [`GpuTensor::reshape`], no copy), `reduce` ([`ReduceOp`]),
//!   `select` (Where).

mod device;
mod error;
pub mod kernels;
mod tensor;

pub use device::Gpu;
pub use error::GpuError;
pub use kernels::binary::BinaryOp;
pub use kernels::reduce::ReduceOp;
pub use kernels::unary::UnaryOp;
pub use tensor::GpuTensor;
