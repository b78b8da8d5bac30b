//! [`GpuPlacement`]: external f32 tensors stream from the chunks straight into GPU buffers
//! ([`wick_gpu::TensorWriter`]); wasm memory holds one chunk at a time, never the weight. Every
//! other type (int64 shapes, f16, quantized bytes) goes to the host as with [`CpuPlacement`]:
//! the GPU kernels read only f32, and small host values are what CPU steps and load-time
//! folding need.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::rc::Rc;

use candle_core::Tensor;
use wick_gpu::{Gpu, GpuError, GpuTensor, TensorWriter};

use super::placement::Filling;
use super::{Chunk, CpuPlacement, ExternalTensor, Placement};
use crate::engine::tensor::onnx_type;
use crate::error::{Result, WickError};

/// A placed external tensor: on the host, or only on the device.
pub enum Placed {
    Host(Tensor),
    Device(GpuTensor),
}

pub struct GpuPlacement {
    gpu: Rc<Gpu>,
    /// One chunk's bytes on their way to the queue (`write_buffer` takes a host slice).
    scratch: Vec<u8>,
}

pub enum GpuDest {
    Host(Filling),
    Device(TensorWriter),
}

impl GpuPlacement {
    pub fn new(gpu: Rc<Gpu>) -> GpuPlacement {
        GpuPlacement { gpu, scratch: Vec::new() }
    }
}

/// A device error while placing `tensor`, as the protocol's.
fn place_error(e: GpuError, tensor: &str) -> WickError {
    match e {
        GpuError::TooLargeToBind { bytes, limit } => {
            WickError::GpuWeightTooLarge { tensor: tensor.to_string(), bytes, limit }
        }
        GpuError::OutOfMemory { .. } => WickError::GpuOutOfMemory(format!("placing weight '{tensor}': {e}")),
        GpuError::DeviceLost { reason } => WickError::GpuDeviceLost(reason),
        other => WickError::Internal(format!("placing weight '{tensor}' on the GPU: {other}")),
    }
}

impl Placement for GpuPlacement {
    type Dest = GpuDest;
    type Output = Placed;

    fn alloc(&mut self, tensor: &ExternalTensor) -> Result<GpuDest> {
        if tensor.onnx_type != onnx_type::FLOAT {
            return CpuPlacement.alloc(tensor).map(GpuDest::Host);
        }
        // One buffer per weight: weights wider than one binding were cut into parts before the
        // load planned its streams (`engine::split`); one still here has a reader that cannot
        // read parts, and is refused by name.
        let t = GpuTensor::empty(&self.gpu, &tensor.dims).map_err(|e| place_error(e, &tensor.name))?;
        Ok(GpuDest::Device(TensorWriter::new(t)))
    }

    fn write<C: Chunk + ?Sized>(&mut self, dest: &mut GpuDest, at: usize, chunk: &C, range: Range<usize>) -> Result<()> {
        let writer = match dest {
            GpuDest::Host(filling) => return CpuPlacement.write(filling, at, chunk, range),
            GpuDest::Device(writer) => writer,
        };
        if at as u64 != writer.received() {
            return Err(WickError::Internal(format!(
                "a weight's bytes arrived out of order ({at} after {})",
                writer.received()
            )));
        }
        let len = range.len();
        self.scratch.clear();
        self.scratch.reserve(len);
        let room: &mut [MaybeUninit<u8>] = &mut self.scratch.spare_capacity_mut()[..len];
        chunk.copy_to(range, room);
        // SAFETY: `Chunk::copy_to` initialises every byte of `room`, the first `len` of the spare
        // capacity.
        unsafe { self.scratch.set_len(len) };
        writer.write(&self.gpu, &self.scratch).map_err(|e| WickError::Internal(format!("streaming a weight: {e}")))
    }

    fn finish(&mut self, dest: GpuDest, tensor: &ExternalTensor) -> Result<Placed> {
        match dest {
            GpuDest::Host(filling) => CpuPlacement.finish(filling, tensor).map(Placed::Host),
            GpuDest::Device(writer) => writer.finish().map(Placed::Device).map_err(|e| place_error(e, &tensor.name)),
        }
    }
}
