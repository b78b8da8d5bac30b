//! [`TensorWriter`]: fills a [`GpuTensor`] from a byte stream cut anywhere — the loader's
//! network chunks — with no host copy of the whole tensor. `queue.write_buffer` takes offsets
//! and sizes in whole 4-byte words, so the unaligned tail of one chunk is held back (at most 3
//! bytes) and written with the front of the next.

use crate::{Gpu, GpuError, GpuTensor};

pub struct TensorWriter {
    tensor: GpuTensor,
    /// Bytes written to the buffer so far (a multiple of 4).
    at: u64,
    /// Bytes received but not yet written: the start of an incomplete word.
    tail: [u8; 4],
    tail_len: usize,
}

impl TensorWriter {
    /// Writes into `tensor` from its first byte.
    pub fn new(tensor: GpuTensor) -> TensorWriter {
        TensorWriter {
            tensor,
            at: 0,
            tail: [0; 4],
            tail_len: 0,
        }
    }

    /// Bytes the tensor holds when full.
    pub fn size(&self) -> u64 {
        (self.tensor.len() * size_of::<f32>()) as u64
    }

    /// Bytes received so far (written or held back).
    pub fn received(&self) -> u64 {
        self.at + self.tail_len as u64
    }

    /// Appends `bytes` (any length) after those received so far.
    pub fn write(&mut self, gpu: &Gpu, mut bytes: &[u8]) -> Result<(), GpuError> {
        if self.received() + bytes.len() as u64 > self.size() {
            return Err(GpuError::shape(
                "write",
                format!(
                    "{} bytes after {} overflow a tensor of {} bytes ({:?})",
                    bytes.len(),
                    self.received(),
                    self.size(),
                    self.tensor.dims()
                ),
            ));
        }
        if self.tail_len > 0 {
            let take = (4 - self.tail_len).min(bytes.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&bytes[..take]);
            self.tail_len += take;
            bytes = &bytes[take..];
            if self.tail_len < 4 {
                return Ok(());
            }
            let word = self.tail;
            self.put(gpu, &word)?;
            self.tail_len = 0;
        }
        let whole = bytes.len() & !3;
        if whole > 0 {
            self.put(gpu, &bytes[..whole])?;
        }
        let rest = &bytes[whole..];
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
        Ok(())
    }

    /// The filled tensor. Every byte must have arrived: f32 data is whole words, so a partial
    /// last word is an error, as is a short stream.
    pub fn finish(self) -> Result<GpuTensor, GpuError> {
        if self.received() != self.size() {
            return Err(GpuError::shape(
                "write",
                format!(
                    "{} of {} bytes received for a tensor of dims {:?}",
                    self.received(),
                    self.size(),
                    self.tensor.dims()
                ),
            ));
        }
        Ok(self.tensor)
    }

    /// One aligned write (its length a multiple of 4) at `at`.
    fn put(&mut self, gpu: &Gpu, bytes: &[u8]) -> Result<(), GpuError> {
        gpu.scoped("write", || {
            gpu.queue.write_buffer(&self.tensor.buffer, self.at, bytes)
        })?;
        self.at += bytes.len() as u64;
        Ok(())
    }
}
