//! Placement: where an external tensor's bytes end up. The CPU placement allocates a typed host
//! buffer that becomes the candle tensor's storage; a GPU backend implements the same trait to
//! write chunks straight into GPU buffers, so its weights never pass through wasm memory.

use candle_core::Tensor;

use super::ExternalTensor;
use crate::engine::tensor::HostBuffer;
use crate::error::Result;

/// Allocates destinations for external tensors and turns filled ones into tensors.
pub trait Placement {
    /// One tensor's destination while its bytes stream in.
    type Dest;
    fn alloc(&mut self, tensor: &ExternalTensor) -> Result<Self::Dest>;
    /// Copy `src[range]` of a chunk to `dest` starting at byte `at` of the tensor.
    fn write<C: super::Chunk + ?Sized>(
        &mut self,
        dest: &mut Self::Dest,
        at: usize,
        chunk: &C,
        range: std::ops::Range<usize>,
    );
    fn finish(&mut self, dest: Self::Dest, tensor: &ExternalTensor) -> Result<Tensor>;
}

/// Weights in wasm linear memory (or native memory), as candle CPU tensors.
#[derive(Debug, Default)]
pub struct CpuPlacement;

impl Placement for CpuPlacement {
    type Dest = HostBuffer;

    fn alloc(&mut self, tensor: &ExternalTensor) -> Result<HostBuffer> {
        let numel = tensor.dims.iter().product();
        HostBuffer::for_onnx(tensor.onnx_type, numel)
    }

    fn write<C: super::Chunk + ?Sized>(
        &mut self,
        dest: &mut HostBuffer,
        at: usize,
        chunk: &C,
        range: std::ops::Range<usize>,
    ) {
        let len = range.len();
        chunk.copy_to(range, &mut dest.bytes_mut()[at..at + len]);
    }

    fn finish(&mut self, dest: HostBuffer, tensor: &ExternalTensor) -> Result<Tensor> {
        dest.into_tensor(&tensor.dims)
    }
}
