//! [`Gpu`]: the adapter, device and queue, and the kernels' pipelines, built once. Every call
//! into the device runs inside error scopes, so a validation error or an out-of-memory becomes a
//! [`GpuError`] instead of wgpu's default uncaptured-error panic.
//!
//! Scopes are pushed and popped around each call at once, but their results are awaited only
//! at the next [`Gpu::check`] — which every read-back makes. In the browser each awaited pop is
//! a round trip to the GPU process; awaiting one per kernel cost ~16 ms a step on SwiftShader.
//! A run that interleaves with others (async) holds [`Gpu::exclusive`] so that the errors a
//! check collects are its own; a load that streams weights checks under it too, so it never
//! takes a run's errors. (A weight write recorded while a run is in flight could still be
//! reported to that run — the run then fails, never silently: writes are bounds-checked by
//! `TensorWriter`, so what remains is device loss, which every caller sees anyway.)

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use crate::kernels::Kernels;
use crate::GpuError;

pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) kernels: Kernels,
    adapter: String,
    /// The device has SHADER_F16 (asked at every step's placement: asked of wgpu once).
    f16: bool,
    /// Why the device was lost, once it is (set by wgpu's device-lost callback).
    lost: Arc<Mutex<Option<String>>>,
    /// Error scopes popped but not yet looked at, oldest first.
    pending: Mutex<Vec<Popped>>,
    /// Kernels recorded since the last submission: one command buffer for many dispatches
    /// (each submission costs the browser an IPC and the driver a batch).
    encoder: Mutex<Option<wgpu::CommandEncoder>>,
    /// Held by a run for its whole length: see [`Gpu::exclusive`].
    turn: futures_util::lock::Mutex<()>,
}

/// A call's popped scopes (out of memory, validation), resolved by the next [`Gpu::check`].
struct Popped {
    op: &'static str,
    scopes: [ScopeResult; 2],
}

/// Natively the results are Send (the device is shared across test threads); on the web nothing
/// is.
#[cfg(not(target_arch = "wasm32"))]
type ScopeResult = Pin<Box<dyn Future<Output = Option<wgpu::Error>> + Send>>;
#[cfg(target_arch = "wasm32")]
type ScopeResult = Pin<Box<dyn Future<Output = Option<wgpu::Error>>>>;

impl Gpu {
    /// Opens the first adapter: WebGPU in the browser, Vulkan natively.
    pub async fn new() -> Result<Gpu, GpuError> {
        Gpu::with_binding_limit(None).await
    }

    /// [`Gpu::new`] whose device binds at most `max_binding` bytes per buffer (when below the
    /// adapter's limit): how tests meet, on any adapter, the limit a large model meets on a
    /// real one.
    pub async fn with_binding_limit(max_binding: Option<u64>) -> Result<Gpu, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        // Natively only Vulkan is compiled in; say so, so that no other back end is probed.
        desc.backends = if cfg!(target_arch = "wasm32") {
            wgpu::Backends::BROWSER_WEBGPU
        } else {
            wgpu::Backends::VULKAN
        };
        let instance = wgpu::Instance::new(desc);
        let mut options = wgpu::RequestAdapterOptions::default();
        let adapter = match instance.request_adapter(&options).await {
            Ok(adapter) => adapter,
            // lavapipe is a CPU device: some drivers only offer it as the fallback adapter.
            Err(_) => {
                options.force_fallback_adapter = true;
                instance
                    .request_adapter(&options)
                    .await
                    .map_err(|e| GpuError::NoAdapter {
                        reason: e.to_string(),
                    })?
            }
        };
        let info = adapter.get_info();
        let name = format!("{} ({:?})", info.name, info.backend);
        // The adapter's own limits: compute wants its largest buffers.
        let mut limits = adapter.limits();
        if let Some(cap) = max_binding {
            limits.max_storage_buffer_binding_size =
                limits.max_storage_buffer_binding_size.min(cap);
        }
        // f16 MatMul where the adapter offers it.
        let required_features = adapter.features() & wgpu::Features::SHADER_F16;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wick"),
                required_features,
                required_limits: limits,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice {
                adapter: name.clone(),
                reason: e.to_string(),
            })?;
        let lost = Arc::new(Mutex::new(None));
        let on_lost = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            *on_lost.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(format!("{reason:?}: {message}"));
        });
        let popped = push_pop(&device, "building the pipelines", || Kernels::new(&device));
        let kernels = popped.0;
        report(popped.1).await?;
        let f16 = device.features().contains(wgpu::Features::SHADER_F16);
        Ok(Gpu {
            f16,
            device,
            queue,
            kernels,
            adapter: name,
            lost,
            pending: Mutex::new(Vec::new()),
            encoder: Mutex::new(None),
            turn: futures_util::lock::Mutex::new(()),
        })
    }

    /// The device-lost error, once the device is gone.
    pub fn lost(&self) -> Option<GpuError> {
        let reason = self
            .lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        Some(GpuError::DeviceLost { reason })
    }

    /// Destroys the device: its buffers are freed at once and every later call fails with
    /// [`GpuError::DeviceLost`] (what a driver reset does too).
    pub fn destroy(&self) {
        self.device.destroy();
        // wgpu reports the loss through the callback; say it here too, whatever the timing.
        let mut lost = self.lost.lock().unwrap_or_else(PoisonError::into_inner);
        lost.get_or_insert_with(|| "Destroyed: destroy() was called".to_string());
    }

    /// [`Gpu::new`], blocking: for native callers and tests (never on the web).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Gpu, GpuError> {
        pollster::block_on(Gpu::new())
    }

    /// The adapter's name and back end, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`.
    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    /// Whether the device takes f16 operands in MatMul and Gemm (the adapter's shader-f16).
    pub fn has_f16(&self) -> bool {
        self.f16
    }

    /// The largest buffer a kernel can bind whole: `maxStorageBufferBindingSize`, capped by
    /// `maxBufferSize`.
    pub fn max_binding_bytes(&self) -> u64 {
        let limits = self.device.limits();
        limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
    }

    /// Runs `f` inside out-of-memory and validation error scopes; what they catch is reported
    /// by the next [`Gpu::check`].
    pub(crate) fn scoped<T>(&self, op: &'static str, f: impl FnOnce() -> T) -> Result<T, GpuError> {
        if let Some(lost) = self.lost() {
            return Err(lost);
        }
        let (value, popped) = push_pop(&self.device, op, f);
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(popped);
        Ok(value)
    }

    /// Records commands into the open encoder (opened if none is).
    pub(crate) fn record(&self, f: impl FnOnce(&mut wgpu::CommandEncoder)) {
        let mut open = self.encoder.lock().unwrap_or_else(PoisonError::into_inner);
        let encoder = open.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor::default())
        });
        f(encoder);
    }

    /// Submits what was recorded; called inside the caller's error scopes.
    pub(crate) fn submit(&self) {
        // Under the lock: what another thread records next must reach the queue after this.
        let mut open = self.encoder.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(encoder) = open.take() {
            self.queue.submit([encoder.finish()]);
        }
    }

    /// Submits the recorded kernels and returns the first error any call since the last check
    /// met (all of them are awaited together: one round trip), or the device loss. Read-backs
    /// check before they return values. After an error, every output of those calls is
    /// undefined — an invalid command in a submission voids the whole submission.
    pub async fn check(&self) -> Result<(), GpuError> {
        if self.lost().is_none() {
            self.scoped("submit", || self.submit())?;
        }
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let mut first = None;
        for popped in pending {
            // Await every scope, even after an error: each result must be consumed once.
            if let Err(e) = report(popped).await {
                first.get_or_insert(e);
            }
        }
        // A loss during the calls shows as whatever error they met: report the loss.
        if let Some(lost) = self.lost() {
            return Err(lost);
        }
        first.map_or(Ok(()), Err)
    }

    /// The device to oneself until the guard drops. A run that awaits (read-backs) between its
    /// calls holds it, so that no other run's calls, and so errors, land between them.
    pub async fn exclusive(&self) -> Turn<'_> {
        Turn(self.turn.lock().await)
    }
}

/// [`Gpu::exclusive`]'s guard.
#[must_use = "the device is one's own only while the guard lives"]
pub struct Turn<'a>(#[allow(dead_code)] futures_util::lock::MutexGuard<'a, ()>);

/// Pushes the scopes, runs `f`, pops them (innermost first): popping takes effect now, the
/// results only report later.
fn push_pop<T>(device: &wgpu::Device, op: &'static str, f: impl FnOnce() -> T) -> (T, Popped) {
    let memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let value = f();
    let validation: ScopeResult = Box::pin(validation.pop());
    let memory: ScopeResult = Box::pin(memory.pop());
    (
        value,
        Popped {
            op,
            scopes: [memory, validation],
        },
    )
}

/// Out of memory first: a failed allocation makes later uses invalid too.
async fn report(popped: Popped) -> Result<(), GpuError> {
    let [memory, validation] = popped.scopes;
    let (memory, validation) = (memory.await, validation.await);
    match memory.or(validation) {
        Some(error) => Err(GpuError::from_wgpu(popped.op, error)),
        None => Ok(()),
    }
}
