//! [`GpuBytes`]: raw bytes in a storage buffer (quantized weights, packed zero points), with the
//! dims of the byte array. Shaders see it as `array<u32>` and pick byte `i` as bits
//! `8·(i % 4)..` of word `i / 4` (WGSL's host-shareable memory is little-endian); the upload is
//! zero-padded to a multiple of 4 bytes, since a storage binding is whole u32 words.

use crate::{Gpu, GpuError};
use wgpu::util::DeviceExt;

pub struct GpuBytes {
    pub(crate) buffer: wgpu::Buffer,
    dims: Vec<usize>,
}

impl GpuBytes {
    /// Dims of the byte array (their product is the byte count, before padding).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Bytes held, before padding.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `data` (row-major, `dims`) into a new storage buffer, zero-padded to 4 bytes.
    pub async fn upload(gpu: &Gpu, dims: &[usize], data: &[u8]) -> Result<GpuBytes, GpuError> {
        let len: usize = dims.iter().product();
        if data.len() != len {
            return Err(GpuError::shape(
                "upload_bytes",
                format!("{} bytes for dims {dims:?} ({len})", data.len()),
            ));
        }
        // At least one word: a binding may not be empty.
        let mut contents = data.to_vec();
        contents.resize(len.div_ceil(4).max(1) * 4, 0);
        let buffer = gpu.scoped("upload_bytes", || {
            gpu.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("wick bytes"),
                    contents: &contents,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                })
        })?;
        Ok(GpuBytes {
            buffer,
            dims: dims.to_vec(),
        })
    }
}
