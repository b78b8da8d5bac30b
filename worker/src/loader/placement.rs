//! Placement: where an external tensor's bytes end up. The CPU placement allocates a typed host
//! buffer that becomes the candle tensor's storage; the GPU placement (`gpu_placement.rs`)
//! writes f32 chunks straight into GPU buffers, so those weights never sit in wasm memory.

use candle_core::Tensor;

use super::ExternalTensor;
use crate::engine::tensor::HostBuffer;
use crate::error::{Result, WickError};

/// Allocates destinations for external tensors and turns filled ones into tensors.
pub trait Placement {
    /// One tensor's destination while its bytes stream in.
    type Dest;
    /// A filled tensor: a candle tensor, or one that lives on the GPU.
    type Output;
    fn alloc(&mut self, tensor: &ExternalTensor) -> Result<Self::Dest>;
    /// Copy `src[range]` of a chunk to `dest` starting at byte `at` of the tensor. The router
    /// writes each tensor front to back, every byte once.
    fn write<C: super::Chunk + ?Sized>(
        &mut self,
        dest: &mut Self::Dest,
        at: usize,
        chunk: &C,
        range: std::ops::Range<usize>,
    ) -> Result<()>;
    fn finish(&mut self, dest: Self::Dest, tensor: &ExternalTensor) -> Result<Self::Output>;
}

/// Weights in wasm linear memory (or native memory), as candle CPU tensors.
#[derive(Debug, Default)]
pub struct CpuPlacement;

/// A CPU tensor's buffer while its bytes stream in: allocated, not zeroed, written front to
/// back (the router hands each tensor its bytes in file order, each once).
#[derive(Debug)]
pub struct Filling {
    buffer: HostBuffer,
    /// Bytes written so far, all at the front.
    filled: usize,
    /// A write did not continue where the last one ended (a router bug): the tensor is refused.
    out_of_order: bool,
}

impl Placement for CpuPlacement {
    type Dest = Filling;
    type Output = Tensor;

    fn alloc(&mut self, tensor: &ExternalTensor) -> Result<Filling> {
        let numel = tensor.dims.iter().product();
        // Not zeroed: every byte is written before the tensor is made (checked by `finish`).
        let mut buffer = HostBuffer::unfilled_for_onnx(tensor.onnx_type, numel)?;
        let room = buffer.spare_bytes_mut().len();
        if room as u64 != tensor.length {
            return Err(WickError::Internal(format!(
                "tensor '{}': {room} bytes allocated for {} bytes of data",
                tensor.name, tensor.length
            )));
        }
        Ok(Filling { buffer, filled: 0, out_of_order: false })
    }

    fn write<C: super::Chunk + ?Sized>(
        &mut self,
        dest: &mut Filling,
        at: usize,
        chunk: &C,
        range: std::ops::Range<usize>,
    ) -> Result<()> {
        if at != dest.filled {
            // Reported by `finish`, which names the tensor.
            dest.out_of_order = true;
            return Ok(());
        }
        let len = range.len();
        chunk.copy_to(range, &mut dest.buffer.spare_bytes_mut()[at..at + len]);
        dest.filled += len;
        Ok(())
    }

    fn finish(&mut self, mut dest: Filling, tensor: &ExternalTensor) -> Result<Tensor> {
        if dest.out_of_order || dest.filled as u64 != tensor.length {
            return Err(WickError::Internal(format!(
                "tensor '{}': {} of {} bytes written in order",
                tensor.name, dest.filled, tensor.length
            )));
        }
        // SAFETY: `filled` bytes were written at the front of the room, and `alloc` made the
        // room exactly `tensor.length` bytes long.
        unsafe { dest.buffer.assume_filled() };
        dest.buffer.into_tensor(&tensor.dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tensor::onnx_type;

    fn spec(onnx_type: i32, dims: Vec<usize>, length: u64) -> ExternalTensor {
        ExternalTensor { name: "w".into(), onnx_type, dims, offset: 0, length }
    }

    #[test]
    fn a_tensor_written_front_to_back_is_made_from_its_bytes() {
        let bytes: Vec<u8> = [1.5f32, -2.0, 3.25].iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = spec(onnx_type::FLOAT, vec![3], 12);
        let mut p = CpuPlacement;
        let mut dest = p.alloc(&t).unwrap();
        p.write(&mut dest, 0, &bytes[..], 0..5).unwrap();
        p.write(&mut dest, 5, &bytes[..], 5..12).unwrap();
        assert_eq!(p.finish(dest, &t).unwrap().to_vec1::<f32>().unwrap(), [1.5, -2.0, 3.25]);
        // A type candle lacks goes through the raw bytes too: int8 is stored as i16.
        let t = spec(onnx_type::INT8, vec![2], 2);
        let mut dest = p.alloc(&t).unwrap();
        p.write(&mut dest, 0, &[0xFFu8, 7][..], 0..2).unwrap();
        assert_eq!(p.finish(dest, &t).unwrap().to_vec1::<i16>().unwrap(), [-1, 7]);
    }

    #[test]
    fn a_tensor_not_written_whole_and_in_order_is_refused() {
        let bytes = [0u8; 8];
        let t = spec(onnx_type::FLOAT, vec![2], 8);
        let mut p = CpuPlacement;
        let mut short = p.alloc(&t).unwrap();
        p.write(&mut short, 0, &bytes[..], 0..4).unwrap();
        assert!(p.finish(short, &t).is_err());
        let mut gap = p.alloc(&t).unwrap();
        p.write(&mut gap, 4, &bytes[..], 4..8).unwrap();
        p.write(&mut gap, 0, &bytes[..], 0..4).unwrap();
        assert!(p.finish(gap, &t).is_err());
    }
}
