//! [`GpuTensor`]: a storage buffer of f32 (or, for the kernels that take them, f16) values and
//! its dims; upload from a slice, read back with `map_async` (a future that the browser
//! resolves; natively a poll drives it).

use crate::{Gpu, GpuError};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use wgpu::util::DeviceExt;

/// A clone shares the buffer (a handle, as wgpu's own): no copy is made.
#[derive(Clone)]
pub struct GpuTensor {
    pub(crate) buffer: wgpu::Buffer,
    dims: Vec<usize>,
    element: Element,
}

/// What a [`GpuTensor`]'s buffer holds. Every kernel takes f32; MatMul and Gemm also f16 (on a
/// device with shader-f16, [`Gpu::has_f16`]), which the callers check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    F32,
    F16,
}

impl Element {
    fn size(self) -> usize {
        match self {
            Element::F32 => 4,
            Element::F16 => 2,
        }
    }
}

/// A buffer's size for `len` elements: at least one element, a multiple of 4 bytes (what a
/// storage binding must be).
fn buffer_size(len: usize, element: Element) -> u64 {
    ((len.max(1) * element.size()).next_multiple_of(4)) as u64
}

impl GpuTensor {
    pub fn element(&self) -> Element {
        self.element
    }

    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same values seen with other `dims` (same count): no copy, the new tensor shares the
    /// buffer (`wgpu::Buffer` clones are reference counted).
    pub fn reshape(&self, dims: Vec<usize>) -> Result<GpuTensor, GpuError> {
        let len = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if len != Some(self.len()) {
            return Err(GpuError::shape(
                "reshape",
                format!("{:?} ({}) to {dims:?}", self.dims, self.len()),
            ));
        }
        Ok(GpuTensor {
            buffer: self.buffer.clone(),
            dims,
            element: self.element,
        })
    }

    /// Copies f16 values (`bits`, IEEE binary16, row-major `dims`) into a new storage buffer.
    pub async fn upload_f16(
        gpu: &Gpu,
        dims: &[usize],
        bits: &[u16],
    ) -> Result<GpuTensor, GpuError> {
        let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
        GpuTensor::from_bytes(gpu, dims, bits.len(), &bytes, Element::F16)
    }

    /// Copies `data` (row-major, `dims`) into a new storage buffer.
    pub async fn upload(gpu: &Gpu, dims: &[usize], data: &[f32]) -> Result<GpuTensor, GpuError> {
        GpuTensor::from_bytes(
            gpu,
            dims,
            data.len(),
            bytemuck::cast_slice(data),
            Element::F32,
        )
    }

    /// A buffer holding `bytes`: `len` values of `element` for `dims`, padded to the buffer's
    /// size (a binding may not be empty: an empty tensor still owns one value).
    fn from_bytes(
        gpu: &Gpu,
        dims: &[usize],
        len: usize,
        bytes: &[u8],
        element: Element,
    ) -> Result<GpuTensor, GpuError> {
        let want: usize = dims.iter().product();
        if len != want {
            return Err(GpuError::shape(
                "upload",
                format!("{len} values for dims {dims:?} ({want})"),
            ));
        }
        // Copied only when padding is needed (an empty tensor, an odd count of f16).
        let size = buffer_size(len, element) as usize;
        let padded;
        let contents = if bytes.len() == size {
            bytes
        } else {
            padded = [bytes, &vec![0; size - bytes.len()]].concat();
            &padded
        };
        let buffer = gpu.scoped("upload", || {
            gpu.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("wick tensor"),
                    contents,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                })
        })?;
        Ok(GpuTensor {
            buffer,
            dims: dims.to_vec(),
            element,
        })
    }

    /// An f32 tensor of `dims` whose values are to be written ([`crate::TensorWriter`]): the
    /// loader streams weights into it. Refused with [`GpuError::TooLargeToBind`] when a kernel
    /// could not bind it whole (the device's `maxStorageBufferBindingSize`).
    pub fn empty(gpu: &Gpu, dims: &[usize]) -> Result<GpuTensor, GpuError> {
        let bytes = dims
            .iter()
            .try_fold(size_of::<f32>() as u64, |n, &d| n.checked_mul(d as u64))
            .unwrap_or(u64::MAX);
        let limit = gpu.max_binding_bytes();
        if bytes > limit {
            return Err(GpuError::TooLargeToBind { bytes, limit });
        }
        GpuTensor::output(gpu, "empty", dims.to_vec())
    }

    /// An uninitialised f32 output of `dims`.
    pub(crate) fn output(
        gpu: &Gpu,
        op: &'static str,
        dims: Vec<usize>,
    ) -> Result<GpuTensor, GpuError> {
        GpuTensor::output_of(gpu, op, dims, Element::F32)
    }

    /// An uninitialised output of `dims` holding `element`s.
    pub(crate) fn output_of(
        gpu: &Gpu,
        op: &'static str,
        dims: Vec<usize>,
        element: Element,
    ) -> Result<GpuTensor, GpuError> {
        let len: usize = dims.iter().product();
        let size = buffer_size(len, element);
        let buffer = gpu.scoped(op, || {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(op),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuTensor {
            buffer,
            dims,
            element,
        })
    }

    /// Reads the values back: a copy into a mappable staging buffer, then `map_async`. Checks
    /// the device first ([`Gpu::check`]): values that a failed call wrote are never returned.
    pub async fn read(&self, gpu: &Gpu) -> Result<Vec<f32>, GpuError> {
        let size = buffer_size(self.len(), self.element);
        let staging = gpu.scoped("read-back", || {
            let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wick read-back"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            // After the kernels recorded so far, in the same submission.
            gpu.record(|encoder| encoder.copy_buffer_to_buffer(&self.buffer, 0, &staging, 0, size));
            gpu.submit();
            staging
        })?;
        let (sender, receiver) = oneshot();
        staging.map_async(wgpu::MapMode::Read, .., move |result| sender.send(result));
        // Natively nothing else drives the device; on the web the browser does (never block it).
        #[cfg(not(target_arch = "wasm32"))]
        gpu.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Map {
                reason: e.to_string(),
            })?;
        let mapped = receiver.await;
        // The calls' errors before the mapping's: a failed kernel explains a failed copy.
        gpu.check().await?;
        mapped.map_err(|e| GpuError::Map {
            reason: e.to_string(),
        })?;
        let values = {
            let view = staging.get_mapped_range(..).map_err(|e| GpuError::Map {
                reason: e.to_string(),
            })?;
            // The mapped bytes need not be 4-aligned in host memory: collect, don't cast.
            match self.element {
                Element::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(&view),
                Element::F16 => view
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
            }
        };
        staging.unmap();
        Ok(values[..self.len()].to_vec())
    }

    /// [`GpuTensor::read`], blocking: for native callers and tests (never on the web).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(&self, gpu: &Gpu) -> Result<Vec<f32>, GpuError> {
        pollster::block_on(self.read(gpu))
    }
}

/// A one-value channel whose receiver is a future: `map_async` reports through a callback.
fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    (Sender(slot.clone()), Receiver(slot))
}

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct Sender<T>(Arc<Mutex<Slot<T>>>);
struct Receiver<T>(Arc<Mutex<Slot<T>>>);

impl<T> Sender<T> {
    fn send(self, value: T) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.value = Some(value);
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
