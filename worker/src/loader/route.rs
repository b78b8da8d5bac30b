//! Routing one file's byte stream into its tensors.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::{ExternalTensor, Placement};
use crate::error::{Result, WickError};

/// A chunk of a streamed file. The web layer implements it for `Uint8Array`, so bytes are copied
/// from the JS chunk straight into the tensor's memory with no intermediate buffer.
///
/// # Safety
/// `copy_to` initialises every byte of `dst`: tensor buffers are not zeroed, and are taken as
/// filled once every byte was copied to them.
pub unsafe trait Chunk {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copy `self[range]` into `dst` (`dst.len() == range.len()`), which may be uninitialised
    /// (a tensor's buffer is not zeroed first).
    fn copy_to(&self, range: Range<usize>, dst: &mut [MaybeUninit<u8>]);
}

// SAFETY: `write_copy_of_slice` writes all of `dst` (it panics on a length mismatch).
unsafe impl Chunk for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn copy_to(&self, range: Range<usize>, dst: &mut [MaybeUninit<u8>]) {
        dst.write_copy_of_slice(&self[range]);
    }
}

/// Streams one external-data file into the tensors it holds. Every tensor's destination is
/// allocated when the router is made, before any byte arrives: a CPU buffer is not zeroed, so
/// its pages are only touched as bytes land (the resident memory grows with the stream all the
/// same), and allocating in a fixed order keeps the heap's layout independent of network timing.
/// A tensor is handed over as soon as its last byte has arrived.
pub struct FileRouter<P: Placement> {
    file: String,
    /// Sorted by offset.
    tensors: Vec<ExternalTensor>,
    dests: Vec<Option<P::Dest>>,
    done: Vec<(String, P::Output)>,
    /// Index of the first tensor that may still receive bytes.
    first: usize,
    /// Bytes of the file consumed so far.
    pos: u64,
}

impl<P: Placement> FileRouter<P> {
    pub fn new(file: impl Into<String>, mut tensors: Vec<ExternalTensor>, placement: &mut P) -> Result<Self> {
        tensors.sort_by_key(|t| (t.offset, t.length));
        let mut router = FileRouter {
            file: file.into(),
            dests: tensors.iter().map(|_| None).collect(),
            tensors,
            done: Vec::new(),
            first: 0,
            pos: 0,
        };
        for i in 0..router.tensors.len() {
            let dest = placement.alloc(&router.tensors[i])?;
            if router.tensors[i].length == 0 {
                // Empty tensors receive no bytes: complete them now.
                let t = placement.finish(dest, &router.tensors[i])?;
                router.done.push((router.tensors[i].name.clone(), t));
            } else {
                router.dests[i] = Some(dest);
            }
        }
        Ok(router)
    }

    /// Route the next chunk of the file.
    pub fn feed<C: Chunk + ?Sized>(&mut self, chunk: &C, placement: &mut P) -> Result<()> {
        let start = self.pos;
        let end = start + chunk.len() as u64;
        let mut i = self.first;
        while i < self.tensors.len() && self.tensors[i].offset < end {
            let t = &self.tensors[i];
            let t_end = t.offset + t.length;
            if t.length > 0 && t_end > start {
                let (a, b) = (start.max(t.offset), end.min(t_end));
                if let Some(dest) = self.dests[i].as_mut() {
                    let at = (a - t.offset) as usize;
                    placement.write(dest, at, chunk, (a - start) as usize..(b - start) as usize)?;
                }
                if b == t_end {
                    if let Some(dest) = self.dests[i].take() {
                        let tensor = placement.finish(dest, t)?;
                        self.done.push((t.name.clone(), tensor));
                    }
                }
            }
            i += 1;
        }
        while self.first < self.tensors.len() {
            let t = &self.tensors[self.first];
            if t.offset + t.length > end {
                break;
            }
            self.first += 1;
        }
        self.pos = end;
        Ok(())
    }

    /// End of stream: every tensor must be complete.
    pub fn finish(self) -> Result<Vec<(String, P::Output)>> {
        if let Some(t) = self.tensors.iter().find(|t| t.offset + t.length > self.pos) {
            return Err(WickError::InvalidModel {
                file: Some(self.file.clone()),
                message: format!(
                    "{} ends at byte {}, but tensor '{}' needs bytes {}..{}",
                    self.file,
                    self.pos,
                    t.name,
                    t.offset,
                    t.offset + t.length
                ),
            });
        }
        Ok(self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;
    use crate::engine::tensor::onnx_type;
    use crate::loader::CpuPlacement;

    /// A file of `len` bytes whose byte i is a function of i, and tensors laid out with gaps,
    /// a tensor starting at byte 0, adjacent tensors, and one that ends at the end of the file.
    fn fixture() -> (Vec<u8>, Vec<ExternalTensor>) {
        let file: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 256) as u8).collect();
        let t = |name: &str, onnx_type, dims: Vec<usize>, offset: u64| {
            let numel: usize = dims.iter().product();
            let size = if onnx_type == onnx_type::INT64 { 8 } else { 4 };
            ExternalTensor { name: name.into(), onnx_type, dims, offset, length: (numel * size) as u64 }
        };
        let tensors = vec![
            t("b", onnx_type::FLOAT, vec![3, 5], 100), // 100..160, after a gap
            t("a", onnx_type::FLOAT, vec![4], 0),      // 0..16
            t("c", onnx_type::INT64, vec![2], 160),    // 160..176, adjacent to b
            t("d", onnx_type::FLOAT, vec![2, 2, 3], 952), // 952..1000, the file's end
            t("e", onnx_type::FLOAT, vec![0], 500),    // empty
        ];
        (file, tensors)
    }

    fn route(file: &[u8], tensors: &[ExternalTensor], sizes: &mut dyn FnMut(usize) -> usize) -> Vec<(String, Tensor)> {
        let mut placement = CpuPlacement;
        let mut router = FileRouter::new("w.bin", tensors.to_vec(), &mut placement).unwrap();
        let mut pos = 0;
        while pos < file.len() {
            let n = sizes(pos).min(file.len() - pos);
            router.feed(&file[pos..pos + n], &mut placement).unwrap();
            pos += n;
        }
        router.finish().unwrap()
    }

    fn bytes_of(t: &Tensor) -> Vec<u8> {
        let flat = t.flatten_all().unwrap();
        match t.dtype() {
            candle_core::DType::F32 => bytemuck::cast_slice(&flat.to_vec1::<f32>().unwrap()).to_vec(),
            candle_core::DType::I64 => bytemuck::cast_slice(&flat.to_vec1::<i64>().unwrap()).to_vec(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn check(sizes: &mut dyn FnMut(usize) -> usize) {
        let (file, tensors) = fixture();
        let got = route(&file, &tensors, sizes);
        assert_eq!(got.len(), tensors.len());
        for spec in &tensors {
            let (_, t) = got.iter().find(|(n, _)| *n == spec.name).expect("tensor placed");
            assert_eq!(t.dims(), spec.dims.as_slice(), "{}", spec.name);
            let want = &file[spec.offset as usize..(spec.offset + spec.length) as usize];
            assert_eq!(bytes_of(t), want, "bytes of {}", spec.name);
        }
    }

    #[test]
    fn one_byte_chunks() {
        check(&mut |_| 1);
    }

    #[test]
    fn prime_sized_chunks() {
        for p in [2, 3, 7, 13, 61, 997, 4099] {
            check(&mut |_| p);
        }
        let primes = [5, 11, 2, 17, 3, 29];
        let mut i = 0;
        check(&mut |_| {
            i += 1;
            primes[i % primes.len()]
        });
    }

    #[test]
    fn chunks_ending_exactly_at_tensor_edges() {
        let edges = [16usize, 100, 160, 176, 500, 952, 1000];
        check(&mut |pos| edges.iter().find(|&&e| e > pos).unwrap() - pos);
    }

    #[test]
    fn whole_file_in_one_chunk() {
        check(&mut |_| usize::MAX);
    }

    #[test]
    fn a_truncated_file_names_the_tensor_it_cuts() {
        let (file, tensors) = fixture();
        let mut placement = CpuPlacement;
        let mut router = FileRouter::new("w.bin", tensors, &mut placement).unwrap();
        router.feed(&file[..970], &mut placement).unwrap();
        let err = router.finish().unwrap_err().to_string();
        assert!(err.contains("w.bin") && err.contains("'d'") && err.contains("970"), "{err}");
    }

    /// `len` bytes that are never materialised: stands for the part of a huge file before the
    /// tensors a test cares about.
    struct Gap(usize);

    // SAFETY: `fill` writes all of `dst`.
    unsafe impl Chunk for Gap {
        fn len(&self) -> usize {
            self.0
        }
        fn copy_to(&self, _: std::ops::Range<usize>, dst: &mut [MaybeUninit<u8>]) {
            dst.fill(MaybeUninit::new(0xAA));
        }
    }

    #[test]
    fn offsets_past_4_gib_are_routed() {
        // A shard larger than wasm32's address space: offsets are u64 end to end.
        let far = 5_000_000_000u64;
        let t = |name: &str, offset| ExternalTensor {
            name: name.into(),
            onnx_type: crate::engine::tensor::onnx_type::FLOAT,
            dims: vec![2],
            offset,
            length: 8,
        };
        let mut placement = CpuPlacement;
        let mut router = FileRouter::new("huge.bin", vec![t("near", 0), t("far", far)], &mut placement).unwrap();
        let head = 1.5f32.to_le_bytes().repeat(2);
        router.feed(&head[..], &mut placement).unwrap();
        let mut pos = 8u64;
        while pos < far {
            let n = (far - pos).min(1 << 30) as usize;
            router.feed(&Gap(n), &mut placement).unwrap();
            pos += n as u64;
        }
        let tail = [(-2.0f32).to_le_bytes(), 3.0f32.to_le_bytes()].concat();
        router.feed(&tail[..], &mut placement).unwrap();
        let got = router.finish().unwrap();
        let value = |name: &str| got.iter().find(|(n, _)| n == name).unwrap().1.to_vec1::<f32>().unwrap();
        assert_eq!(value("near"), [1.5, 1.5]);
        assert_eq!(value("far"), [-2.0, 3.0]);
    }
}
