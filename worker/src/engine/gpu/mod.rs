//! The WebGPU backend's side of the engine. A [`Plan`]'s steps stay what they are; each step
//! whose op has a WebGPU kernel (`ops/`, the GPU op registry, built with the CPU kernel at plan
//! time) runs on the device when its inputs suit it, every other step on the CPU. Values live
//! on the GPU, on the host, or both; each copy between them is made only when a step needs it,
//! and counted ([`GpuRunStats`]). Weights are uploaded once and stay resident ([`Resident`]).
//!
//! Runs are async: reading a buffer back resolves only when the browser gets control again.
//! A kernel's device error is reported at the next read-back (`Gpu::check`), so it fails the
//! step that reads, naming the kernel; a run holds the device (`Gpu::exclusive`) meanwhile.

pub mod ops;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use candle_core::{DType, Device, Tensor};
use wick_gpu::{Element, Gpu, GpuBytes, GpuError, GpuTensor};
use wick_shared::GpuRunStats;

use super::plan::{Plan, RunOutput};
use crate::error::{Result, WickError};

/// Where a kernel wants input `i`: float data on the device, raw bytes on the device (packed
/// quantized weights, uint8), or small host values it reads on the CPU (shapes, axes, indices).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Device,
    Bytes,
    Host,
}

impl Place {
    /// The usual layout: the data (input 0) on the device, the rest (shapes, axes, sizes,
    /// indices) read on the host.
    pub(crate) fn data_then_host(input: usize) -> Place {
        if input == 0 {
            Place::Device
        } else {
            Place::Host
        }
    }

    /// The other way round: input 0 read on the host (a mask, indices), the rest on the device.
    pub(crate) fn host_then_data(input: usize) -> Place {
        if input == 0 {
            Place::Host
        } else {
            Place::Device
        }
    }
}

/// What a kernel may check of an input before it is chosen: dtype and dims, wherever it lives.
pub(crate) struct Meta<'a> {
    pub dtype: DType,
    pub dims: &'a [usize],
}

pub(crate) enum Arg<'a> {
    Device(&'a GpuTensor),
    Bytes(&'a GpuBytes),
    Host(&'a Tensor),
}

pub(crate) enum Out {
    Device(GpuTensor),
    Host(Tensor),
}

/// Why a GPU kernel failed: the device, or the op's own rules (a bad axis, say).
pub(crate) enum Fail {
    Gpu(GpuError),
    Op(String),
}

impl From<GpuError> for Fail {
    fn from(e: GpuError) -> Self {
        Fail::Gpu(e)
    }
}

impl From<candle_core::Error> for Fail {
    fn from(e: candle_core::Error) -> Self {
        Fail::Op(e.to_string())
    }
}

pub(crate) type Running<'a> = Pin<Box<dyn Future<Output = std::result::Result<Vec<Out>, Fail>> + 'a>>;

/// A planned op on the GPU. Attributes are parsed by its builder, once.
pub(crate) trait GpuKernel {
    fn place(&self, _input: usize) -> Place {
        Place::Device
    }

    /// Whether this kernel takes these inputs (by then device inputs are f32 — or f16, see
    /// [`GpuKernel::takes_f16`] — and byte inputs uint8); when not, the step runs on the CPU.
    fn accepts(&self, _inputs: &[Option<Meta>]) -> bool {
        true
    }

    /// Whether its device inputs may all be f16 (on a device with shader-f16): MatMul, Gemm,
    /// and the views that only reshape.
    fn takes_f16(&self) -> bool {
        false
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, inputs: &'a [Option<Arg<'a>>]) -> Running<'a>;
}

/// A model's state on one device: the device and the weights already uploaded to it (by
/// constant slot; f32 tensors, and packed bytes), which stay there for later runs.
pub struct Resident {
    gpu: Rc<Gpu>,
    weights: RefCell<HashMap<usize, Rc<GpuTensor>>>,
    bytes: RefCell<HashMap<usize, Rc<GpuBytes>>>,
}

impl Resident {
    pub fn new(gpu: Rc<Gpu>) -> Resident {
        Resident { gpu, weights: RefCell::new(HashMap::new()), bytes: RefCell::new(HashMap::new()) }
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn shared_gpu(&self) -> Rc<Gpu> {
        self.gpu.clone()
    }

    /// Bytes of weights held on the device.
    pub fn bytes(&self) -> u64 {
        let floats: u64 = self.weights.borrow().values().map(|t| (t.len() * 4) as u64).sum();
        floats + self.bytes.borrow().values().map(|b| b.len() as u64).sum::<u64>()
    }
}

/// A value of the run: on the host, on the device, or both (a copy made for a step is kept
/// until the value is freed, so it is made once).
#[derive(Default)]
struct Value {
    host: Option<Tensor>,
    device: Option<Rc<GpuTensor>>,
    /// uint8 host values' bytes on the device (only ever made from `host`).
    bytes: Option<Rc<GpuBytes>>,
}

impl Value {
    fn meta(&self) -> Option<Meta<'_>> {
        match (&self.host, &self.device) {
            (Some(t), _) => Some(Meta { dtype: t.dtype(), dims: t.dims() }),
            (None, Some(d)) => Some(Meta { dtype: device_dtype(d), dims: d.dims() }),
            (None, None) => None,
        }
    }

    fn bytes(&self) -> u64 {
        match (&self.host, &self.device) {
            (Some(t), _) => (t.elem_count() * t.dtype().size_in_bytes()) as u64,
            (None, Some(d)) => (d.len() * device_dtype(d).size_in_bytes()) as u64,
            (None, None) => 0,
        }
    }
}

/// Device tensors read back as host tensors, by name: a CPU run's feeds for values that lived
/// only on the device (weights placed there, a kept KV cache). Holds the device meanwhile: a
/// read-back's check must not take another run's errors.
pub async fn read_back(gpu: &Gpu, tensors: &HashMap<String, GpuTensor>) -> Result<HashMap<String, Tensor>> {
    let _turn = gpu.exclusive().await;
    let mut feeds = HashMap::new();
    for (name, t) in tensors {
        let values = t.read(gpu).await.map_err(|e| wick_error(e, name, "read-back"))?;
        let host = Tensor::from_vec(values, t.dims(), &Device::Cpu)
            .map_err(|e| WickError::Internal(format!("'{name}' read back: {e}")))?;
        feeds.insert(name.clone(), host);
    }
    Ok(feeds)
}

/// The device error as the protocol's: out of memory and device loss keep their own codes
/// (under `auto` they send the run to the CPU); anything else fails the node.
pub(crate) fn wick_error(e: GpuError, node: &str, op_type: &str) -> WickError {
    match e {
        GpuError::OutOfMemory { .. } => WickError::GpuOutOfMemory(format!("{e} (node '{node}', {op_type})")),
        GpuError::DeviceLost { reason } => WickError::GpuDeviceLost(reason),
        other => WickError::Execution {
            node: node.to_string(),
            op_type: op_type.to_string(),
            message: format!("WebGPU: {other}"),
        },
    }
}

impl Plan {
    /// [`Plan::run`] on the device of `resident`: GPU steps where a kernel takes the inputs,
    /// CPU steps otherwise, and the stats of what ran where and what was copied.
    pub async fn run_gpu(
        &self,
        resident: &Resident,
        feeds: HashMap<String, Tensor>,
        wanted: Option<&[String]>,
    ) -> Result<(RunOutput, GpuRunStats)> {
        let (out, _, stats) = self.run_gpu_with(resident, &HashMap::new(), &HashMap::new(), feeds, wanted, &[]).await?;
        Ok((out, stats))
    }

    /// [`Plan::run_gpu`] of a plan built with device-only weights ([`Plan::build_placed`]):
    /// inputs not fed take their device value from `device` (a CPU step that reads one reads
    /// it back, counted as a download) — weights, or values an earlier run kept there. The
    /// outputs named in `keep` that end on the device are returned as they are, not read back.
    pub async fn run_gpu_with(
        &self,
        resident: &Resident,
        device: &HashMap<String, GpuTensor>,
        carried: &HashMap<String, GpuTensor>,
        mut feeds: HashMap<String, Tensor>,
        wanted: Option<&[String]>,
        keep: &[String],
    ) -> Result<(RunOutput, HashMap<String, GpuTensor>, GpuRunStats)> {
        let gpu = resident.gpu();
        // Kernel errors surface at the next read-back: no other run's calls may come between.
        let _turn = gpu.exclusive().await;
        let mut stats = GpuRunStats::default();
        let mut cpu_ops = BTreeSet::new();
        let mut values: Vec<Value> = (0..self.slot_count).map(|_| Value::default()).collect();
        let constant: HashMap<usize, &Tensor> = self.constants.iter().map(|(s, t)| (*s, t)).collect();
        for (slot, t) in &self.constants {
            values[*slot].host = Some(t.clone());
            values[*slot].device = resident.weights.borrow().get(slot).cloned();
            values[*slot].bytes = resident.bytes.borrow().get(slot).cloned();
        }
        let needed = wanted.map(|w| self.needed(w)).transpose()?;
        for (name, slot) in &self.inputs {
            match (feeds.remove(name), carried.get(name).or_else(|| device.get(name))) {
                (Some(t), _) => values[*slot].host = Some(t),
                (None, Some(d)) => {
                    // A view sharing the buffer: no copy.
                    let view = d.reshape(d.dims().to_vec()).map_err(|e| wick_error(e, name, "input"))?;
                    values[*slot].device = Some(Rc::new(view));
                }
                (None, None) if needed.as_ref().is_some_and(|n| !n.slots[*slot]) => {}
                (None, None) => return Err(WickError::BadInput(format!("missing input '{name}'"))),
            }
        }
        if let Some(extra) = feeds.keys().next() {
            return Err(WickError::BadInput(format!("the model has no input named '{extra}'")));
        }

        let (mut live, mut peak) = (0u64, 0u64);
        for (s, step) in self.steps.iter().enumerate() {
            if needed.as_ref().is_some_and(|n| !n.steps[s]) {
                self.release_values(step, &mut values, &mut live);
                continue;
            }
            let fail = |message: String| WickError::Execution {
                node: step.name.clone(),
                op_type: step.op_type.clone(),
                message,
            };
            let device_error = |e: GpuError| wick_error(e, &step.name, &step.op_type);
            let kernel = step.gpu.as_deref().filter(|k| {
                let metas: Vec<Option<Meta>> = step.inputs.iter().map(|s| s.and_then(|s| values[s].meta())).collect();
                // f32 device inputs; or all of them f16, where the kernel and the device take it.
                let half = k.takes_f16()
                    && gpu.has_f16()
                    && metas.iter().enumerate().all(|(i, m)| {
                        k.place(i) != Place::Device || m.as_ref().is_none_or(|m| m.dtype == DType::F16)
                    });
                let placeable = metas.iter().enumerate().all(|(i, m)| match k.place(i) {
                    Place::Host => true,
                    Place::Device => m.as_ref().is_none_or(|m| m.dtype == DType::F32 || (half && m.dtype == DType::F16)),
                    Place::Bytes => m.as_ref().is_none_or(|m| m.dtype == DType::U8),
                });
                placeable && k.accepts(&metas)
            });
            let results: Vec<Value> = match kernel {
                Some(kernel) => {
                    for (i, slot) in step.inputs.iter().enumerate() {
                        let Some(slot) = *slot else { continue };
                        match kernel.place(i) {
                            Place::Device => {
                                to_device(gpu, &mut values[slot], &mut stats).await.map_err(device_error)?;
                                if constant.contains_key(&slot) {
                                    if let Some(d) = &values[slot].device {
                                        resident.weights.borrow_mut().insert(slot, d.clone());
                                    }
                                }
                            }
                            Place::Bytes => {
                                to_device_bytes(gpu, &mut values[slot], &mut stats).await.map_err(device_error)?;
                                if constant.contains_key(&slot) {
                                    if let Some(b) = &values[slot].bytes {
                                        resident.bytes.borrow_mut().insert(slot, b.clone());
                                    }
                                }
                            }
                            Place::Host => to_host(gpu, &mut values[slot], &mut stats).await.map_err(device_error)?,
                        }
                    }
                    let args: Vec<Option<Arg>> = step
                        .inputs
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            let v = &values[(*s)?];
                            match kernel.place(i) {
                                Place::Device => v.device.as_deref().map(Arg::Device),
                                Place::Bytes => v.bytes.as_deref().map(Arg::Bytes),
                                Place::Host => v.host.as_ref().map(Arg::Host),
                            }
                        })
                        .collect();
                    let outs = kernel.run(gpu, &args).await.map_err(|e| match e {
                        Fail::Gpu(e) => device_error(e),
                        Fail::Op(message) => fail(message),
                    })?;
                    stats.gpu_steps += 1;
                    outs.into_iter()
                        .map(|o| match o {
                            Out::Device(d) => Value { device: Some(Rc::new(d)), ..Value::default() },
                            Out::Host(t) => Value { host: Some(t), ..Value::default() },
                        })
                        .collect()
                }
                None => {
                    for slot in step.inputs.iter().flatten() {
                        to_host(gpu, &mut values[*slot], &mut stats).await.map_err(device_error)?;
                    }
                    let args: Vec<Option<&Tensor>> =
                        step.inputs.iter().map(|s| s.and_then(|s| values[s].host.as_ref())).collect();
                    let outs = step.kernel.run(&args).map_err(|e| fail(e.to_string()))?;
                    stats.cpu_steps += 1;
                    cpu_ops.insert(step.op_type.clone());
                    outs.into_iter().map(|t| Value { host: Some(t), ..Value::default() }).collect()
                }
            };
            if results.len() < step.outputs.iter().flatten().count() {
                return Err(fail(format!("produced {} outputs", results.len())));
            }
            for (slot, v) in step.outputs.iter().zip(results) {
                if let Some(slot) = slot {
                    live += v.bytes();
                    values[*slot] = v;
                }
            }
            peak = peak.max(live);
            self.release_values(step, &mut values, &mut live);
        }

        let mut outputs = Vec::new();
        let mut kept = HashMap::new();
        for (name, slot) in &self.outputs {
            if wanted.is_some_and(|w| !w.contains(name)) {
                continue;
            }
            // Asked to stay on the device (a KV cache for the next run): no read-back.
            if let Some(d) = values[*slot].device.as_deref().filter(|_| keep.contains(name)) {
                kept.insert(name.clone(), d.clone());
                continue;
            }
            to_host(gpu, &mut values[*slot], &mut stats).await.map_err(|e| wick_error(e, name, "output"))?;
            let t = values[*slot]
                .host
                .clone()
                .ok_or_else(|| WickError::Internal(format!("output '{name}' was not computed")))?;
            outputs.push((name.clone(), t));
        }
        if let Some(w) = wanted {
            if let Some(missing) = w.iter().find(|n| !outputs.iter().any(|(o, _)| o == *n) && !kept.contains_key(*n)) {
                return Err(WickError::BadInput(format!("the model has no output named '{missing}'")));
            }
        }
        // Calls whose results were never read back (outputs computed on the CPU) are checked too.
        gpu.check().await.map_err(|e| wick_error(e, "(end of run)", "check"))?;
        stats.cpu_ops = cpu_ops.into_iter().collect();
        Ok((RunOutput { outputs, peak_intermediate_bytes: peak }, kept, stats))
    }

    fn release_values(&self, step: &super::plan::Step, values: &mut [Value], live: &mut u64) {
        for &slot in &step.free {
            let v = std::mem::take(&mut values[slot]);
            if self.produced[slot] {
                *live -= v.bytes();
            }
        }
    }
}

/// The candle dtype a device tensor's values read back as.
fn device_dtype(d: &GpuTensor) -> DType {
    match d.element() {
        Element::F32 => DType::F32,
        Element::F16 => DType::F16,
    }
}

/// Makes sure the value has a device copy (f32 or f16: the caller checked), uploading it if not.
async fn to_device(gpu: &Gpu, v: &mut Value, stats: &mut GpuRunStats) -> std::result::Result<(), GpuError> {
    if v.device.is_some() {
        return Ok(());
    }
    let Some(t) = &v.host else { return Ok(()) };
    if t.dtype() == DType::F16 {
        let bits: Vec<u16> = t
            .flatten_all()
            .and_then(|f| f.to_vec1::<half::f16>())
            .map_err(|e| GpuError::Shape { op: "upload", message: e.to_string() })?
            .iter()
            .map(|h| h.to_bits())
            .collect();
        let d = GpuTensor::upload_f16(gpu, t.dims(), &bits).await?;
        stats.uploads += 1;
        stats.upload_bytes += (bits.len() * 2) as u64;
        v.device = Some(Rc::new(d));
        return Ok(());
    }
    let data: Vec<f32> = t
        .flatten_all()
        .and_then(|f| f.to_vec1())
        .map_err(|e| GpuError::Shape { op: "upload", message: e.to_string() })?;
    let d = GpuTensor::upload(gpu, t.dims(), &data).await?;
    stats.uploads += 1;
    stats.upload_bytes += (data.len() * 4) as u64;
    v.device = Some(Rc::new(d));
    Ok(())
}

/// Makes sure a uint8 host value has a device copy of its bytes, uploading them if not.
async fn to_device_bytes(gpu: &Gpu, v: &mut Value, stats: &mut GpuRunStats) -> std::result::Result<(), GpuError> {
    if v.bytes.is_some() {
        return Ok(());
    }
    let Some(t) = &v.host else { return Ok(()) };
    let data: Vec<u8> = t
        .flatten_all()
        .and_then(|f| f.to_vec1())
        .map_err(|e| GpuError::Shape { op: "upload_bytes", message: e.to_string() })?;
    let b = GpuBytes::upload(gpu, t.dims(), &data).await?;
    stats.uploads += 1;
    stats.upload_bytes += data.len() as u64;
    v.bytes = Some(Rc::new(b));
    Ok(())
}

/// Makes sure the value has a host copy, reading it back if not.
async fn to_host(gpu: &Gpu, v: &mut Value, stats: &mut GpuRunStats) -> std::result::Result<(), GpuError> {
    if v.host.is_some() {
        return Ok(());
    }
    let Some(d) = &v.device else { return Ok(()) };
    let data = d.read(gpu).await?;
    let dtype = device_dtype(d);
    stats.downloads += 1;
    stats.download_bytes += (data.len() * dtype.size_in_bytes()) as u64;
    let t = Tensor::from_vec(data, d.dims(), &Device::Cpu)
        .and_then(|t| t.to_dtype(dtype))
        .map_err(|e| GpuError::Shape { op: "read-back", message: e.to_string() })?;
    v.host = Some(t);
    Ok(())
}
