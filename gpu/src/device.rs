//! [`Gpu`]: the adapter, device and queue, and the kernels' pipelines, built once. Every call
//! into the device runs inside error scopes, so a validation error or an out-of-memory becomes a
//! [`GpuError`] instead of wgpu's default uncaptured-error panic.

use std::sync::{Arc, Mutex, PoisonError};

use crate::kernels::Kernels;
use crate::GpuError;

pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) kernels: Kernels,
    adapter: String,
    /// Why the device was lost, once it is (set by wgpu's device-lost callback).
    lost: Arc<Mutex<Option<String>>>,
}

impl Gpu {
    /// Opens the first adapter: WebGPU in the browser, Vulkan natively.
    pub async fn new() -> Result<Gpu, GpuError> {
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
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wick"),
                // The adapter's own limits: compute wants its largest buffers.
                required_limits: adapter.limits(),
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
        let kernels = scoped(&device, "building the pipelines", || Kernels::new(&device)).await?;
        Ok(Gpu {
            device,
            queue,
            kernels,
            adapter: name,
            lost,
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

    /// Runs `f` inside out-of-memory and validation error scopes.
    pub(crate) async fn scoped<T>(
        &self,
        op: &'static str,
        f: impl FnOnce() -> T,
    ) -> Result<T, GpuError> {
        if let Some(lost) = self.lost() {
            return Err(lost);
        }
        let value = scoped(&self.device, op, f).await;
        // A loss during the call shows as whatever error the call met: report the loss.
        match self.lost() {
            Some(lost) => Err(lost),
            None => value,
        }
    }
}

async fn scoped<T>(
    device: &wgpu::Device,
    op: &'static str,
    f: impl FnOnce() -> T,
) -> Result<T, GpuError> {
    let memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let value = f();
    // Scopes pop innermost first; both pops take effect now, the futures only report.
    let validation = validation.pop();
    let memory = memory.pop();
    if let Some(error) = memory.await {
        return Err(GpuError::from_wgpu(op, error));
    }
    if let Some(error) = validation.await {
        return Err(GpuError::from_wgpu(op, error));
    }
    Ok(value)
}
