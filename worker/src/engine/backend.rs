//! Which backend runs a loaded model, and the `auto` rule for GPU failures: a run that fails
//! on the GPU because of the GPU (out of memory, device lost) is run again on the CPU; after a
//! device loss the model stays on the CPU. Explicit `webgpu` models report such errors. A model
//! with device-only weights (`Model::has_device_weights`) retries only while the device lives
//! (reading its weights back); after a loss it fails with `GpuDeviceLost`: load it again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use candle_core::Tensor;
use wick_shared::{Backend, GpuRunStats};

use super::{Model, Resident, RunOutput};
use crate::error::{Result, WickError};

pub struct ModelBackend {
    /// The device state while the model runs on WebGPU; `None` on the CPU.
    resident: RefCell<Option<Rc<Resident>>>,
    /// Chosen by `auto`: GPU failures fall back to the CPU.
    auto: bool,
    reason: RefCell<String>,
}

impl ModelBackend {
    pub fn cpu(reason: impl Into<String>) -> ModelBackend {
        ModelBackend { resident: RefCell::new(None), auto: false, reason: RefCell::new(reason.into()) }
    }

    pub fn gpu(resident: Resident, auto: bool, reason: impl Into<String>) -> ModelBackend {
        ModelBackend { resident: RefCell::new(Some(Rc::new(resident))), auto, reason: RefCell::new(reason.into()) }
    }

    pub fn backend(&self) -> Backend {
        if self.resident.borrow().is_some() {
            Backend::Webgpu
        } else {
            Backend::Cpu
        }
    }

    /// The device while the model runs on WebGPU: a load streams weights straight to it.
    pub fn device(&self) -> Option<Rc<wick_gpu::Gpu>> {
        self.resident.borrow().as_ref().map(|r| r.shared_gpu())
    }

    /// Why the model runs where it does.
    pub fn reason(&self) -> String {
        self.reason.borrow().clone()
    }

    /// Runs `model` on this backend; GPU stats when it ran (or tried to run) on the GPU.
    pub async fn run(
        &self,
        model: &Model,
        feeds: HashMap<String, Tensor>,
        wanted: Option<&[String]>,
    ) -> Result<(RunOutput, Option<GpuRunStats>)> {
        let (out, _, stats) = self.run_keeping(model, feeds, Carried::new(), wanted, &[]).await?;
        Ok((out, stats))
    }

    /// [`ModelBackend::run`] with values carried from run to run (a KV cache): `carried` are
    /// inputs an earlier run left on the device, and on WebGPU the outputs named in `keep` stay
    /// there too (returned apart, not read back). On the CPU nothing is kept.
    pub async fn run_keeping(
        &self,
        model: &Model,
        feeds: HashMap<String, Tensor>,
        carried: Carried,
        wanted: Option<&[String]>,
        keep: &[String],
    ) -> Result<(RunOutput, Carried, Option<GpuRunStats>)> {
        let resident = self.resident.borrow().clone();
        let Some(resident) = resident else {
            if model.has_device_weights() {
                // Only after a device loss moved the model here: its weights went with it.
                return Err(lost_weights(&self.reason()));
            }
            if !carried.is_empty() {
                return Err(lost_values(&self.reason()));
            }
            return Ok((model.run(feeds, wanted)?, Carried::new(), None));
        };
        // Tensors clone as Arcs, GPU tensors as handles: the CPU retry's inputs cost nothing.
        let retry = self.auto.then(|| (feeds.clone(), carried.clone()));
        match (model.run_gpu_keeping(&resident, feeds, carried, wanted, keep).await, retry) {
            (Ok((out, kept, stats)), _) => Ok((out, kept, Some(stats))),
            (Err(e), Some((mut feeds, carried))) if e.is_gpu_failure() => {
                if let WickError::GpuDeviceLost(why) = &e {
                    // Its buffers are gone with the device: the model lives on the CPU now.
                    *self.resident.borrow_mut() = None;
                    *self.reason.borrow_mut() = format!("moved to the CPU after a WebGPU failure: {e}");
                    if model.has_device_weights() {
                        return Err(lost_weights(why));
                    }
                    if !carried.is_empty() {
                        return Err(lost_values(why));
                    }
                }
                // The device is alive (out of memory): the CPU run reads back what lives only
                // there. Any failure of the read-back is the run's error, never a wrong answer.
                if model.has_device_weights() {
                    feeds.extend(model.read_device_weights(resident.gpu()).await?);
                }
                feeds.extend(super::gpu::read_back(resident.gpu(), &carried).await?);
                let out = model.run(feeds, wanted)?;
                let stats = GpuRunStats { retried_on_cpu: Some(e.to_string()), ..GpuRunStats::default() };
                Ok((out, Carried::new(), Some(stats)))
            }
            (Err(WickError::GpuDeviceLost(why)), None) if model.has_device_weights() => Err(lost_weights(&why)),
            (Err(e), _) => Err(e),
        }
    }
}

/// Values a run left on the device for the next, by input name.
pub type Carried = HashMap<String, wick_gpu::GpuTensor>;

/// Values a run kept on a device that is gone (a KV cache): the request cannot go on.
fn lost_values(why: &str) -> WickError {
    WickError::GpuDeviceLost(format!("{why}; the values this request kept on that GPU (its KV cache) are gone"))
}

/// A model whose weights lived only on a device that is gone.
fn lost_weights(why: &str) -> WickError {
    WickError::GpuDeviceLost(format!(
        "{why}; the model's weights lived only on that GPU (weights: \"gpu\"), so it must be \
         loaded again"
    ))
}
