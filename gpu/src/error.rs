//! The crate's error enum: every failure of the device, a kernel or a shape.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GpuError {
    /// No adapter: no WebGPU in this browser, or natively no Vulkan driver.
    #[error(
        "no GPU adapter found ({reason}); natively Wick's GPU tests need a Vulkan driver — \
         install lavapipe with `apt-get install -y mesa-vulkan-drivers` (or `cargo xtask tools`)"
    )]
    NoAdapter { reason: String },
    #[error("the adapter {adapter} refused a device: {reason}")]
    RequestDevice { adapter: String, reason: String },
    /// The device is gone (driver reset, `destroy()`, the browser reclaimed it); every later
    /// call fails the same way. A new [`Gpu`](crate::Gpu) may work.
    #[error("the GPU device was lost ({reason})")]
    DeviceLost { reason: String },
    #[error("out of GPU memory during {op}")]
    OutOfMemory { op: &'static str },
    #[error("GPU validation error during {op}: {message}")]
    Validation { op: &'static str, message: String },
    #[error("GPU internal error during {op}: {message}")]
    Internal { op: &'static str, message: String },
    #[error("mapping a buffer for read-back failed: {reason}")]
    Map { reason: String },
    #[error("{op}: {message}")]
    Shape { op: &'static str, message: String },
    /// A tensor larger than one storage binding may be (`maxStorageBufferBindingSize`).
    #[error("{bytes} bytes exceed the device's largest storage binding ({limit} bytes)")]
    TooLargeToBind { bytes: u64, limit: u64 },
    #[error("{op}: {workgroups} workgroups exceed the dispatch limit {limit}")]
    TooLarge {
        op: &'static str,
        workgroups: u64,
        limit: u32,
    },
}

impl GpuError {
    pub(crate) fn shape(op: &'static str, message: impl Into<String>) -> Self {
        GpuError::Shape {
            op,
            message: message.into(),
        }
    }

    pub(crate) fn from_wgpu(op: &'static str, error: wgpu::Error) -> Self {
        match error {
            wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemory { op },
            wgpu::Error::Validation { description, .. } => GpuError::Validation {
                op,
                message: description,
            },
            wgpu::Error::Internal { description, .. } => GpuError::Internal {
                op,
                message: description,
            },
        }
    }
}
