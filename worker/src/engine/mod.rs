//! The engine: an ONNX graph becomes a [`Model`] (weights resolved once into candle tensors, a
//! planned run order with liveness), which then runs any number of times without touching the
//! protobuf again.
//!
//! - `tensor` — TensorProto / wire tensor ↔ candle conversions and host buffers;
//! - `lowbit` — codecs of the float8/float4/e8m0 and packed 4-/2-bit integer element types;
//! - `plan` — graph → topological steps over value slots, with frees after last use;
//! - `ops` — the op registry and one file per op family;
//! - `gpu` — the WebGPU backend's run of a plan (GPU steps, CPU steps, counted transfers) and
//!   its own op registry (`gpu/ops`); `backend` — which backend runs a model, `auto`'s retry.

pub mod backend;
mod fuse;
pub mod split;
pub mod gpu;
#[cfg(test)]
mod latency_probe;
pub mod lowbit;
pub mod ops;
mod plan;
pub mod tensor;

use std::collections::HashMap;

use candle_core::Tensor;
use candle_onnx::onnx::{self, ModelProto};
use prost::Message;
use wick_gpu::GpuTensor;
use wick_shared::ValueInfo;

use crate::error::{Result, WickError};
pub use backend::{Carried, ModelBackend};
pub use gpu::Resident;
pub use plan::{Plan, RunOutput};

/// A loaded, planned model, ready to run.
pub struct Model {
    plan: Plan,
    inputs: Vec<ValueInfo>,
    /// What each graph input must be, checked before a run.
    input_specs: Vec<InputSpec>,
    outputs: Vec<ValueInfo>,
    weight_bytes: u64,
    /// Weights the loader streamed straight to the GPU ([`crate::loader::GpuPlacement`]),
    /// held nowhere else: plan inputs that a GPU run seeds from here.
    device: HashMap<String, GpuTensor>,
}

/// Parse an `.onnx` file's bytes.
pub fn parse_model(bytes: &[u8]) -> Result<ModelProto> {
    let model = ModelProto::decode(bytes)
        .map_err(|e| WickError::invalid(format!("not an ONNX model (protobuf: {e})")))?;
    if model.graph.is_none() {
        return Err(WickError::invalid("the model has no graph"));
    }
    Ok(model)
}

impl Model {
    /// Build from a parsed model plus its external tensors (already placed by the loader).
    /// Consumes the proto: embedded weights are decoded once and the protobuf is dropped.
    pub fn build(model: ModelProto, external: HashMap<String, Tensor>) -> Result<Model> {
        Model::build_placed(model, external, HashMap::new())
    }

    /// [`Model::build`] with some weights only on the GPU (`device`, by initializer name):
    /// they become plan inputs ([`Plan::build_placed`]) and stay with the model.
    pub fn build_placed(
        model: ModelProto,
        external: HashMap<String, Tensor>,
        device: HashMap<String, GpuTensor>,
    ) -> Result<Model> {
        let opsets = opset_map(&model);
        let graph = model.graph.ok_or_else(|| WickError::invalid("the model has no graph"))?;
        let graph_inputs: Vec<&onnx::ValueInfoProto> = graph
            .input
            .iter()
            .filter(|v| !graph.initializer.iter().any(|i| i.name == v.name))
            .collect();
        let inputs = graph_inputs.iter().map(|v| value_info(v)).collect();
        let input_specs = graph_inputs.iter().map(|v| InputSpec::of(v)).collect();
        let outputs = graph.output.iter().map(value_info).collect();
        if let Some(stray) = device.keys().find(|n| !graph.initializer.iter().any(|i| &i.name == *n)) {
            return Err(WickError::Internal(format!("device weight '{stray}' is no initializer")));
        }
        let device_dims = device.iter().map(|(n, t)| (n.clone(), t.dims().to_vec())).collect();
        let plan = Plan::build_placed(graph, external, &device_dims, &opsets)?;
        let weight_bytes = plan.constant_bytes() + device_bytes(&device);
        Ok(Model { plan, inputs, input_specs, outputs, weight_bytes, device })
    }

    /// Bytes of weights the model holds on the host (the plan's constants).
    pub fn host_weight_bytes(&self) -> u64 {
        self.plan.constant_bytes()
    }

    /// Bytes of weights that live only on the GPU.
    pub fn device_weight_bytes(&self) -> u64 {
        device_bytes(&self.device)
    }

    /// Whether the model has weights only on the GPU: it cannot run without that device.
    pub fn has_device_weights(&self) -> bool {
        !self.device.is_empty()
    }

    /// The device-only weights read back, as the host feeds a CPU run needs (`auto`'s retry).
    pub async fn read_device_weights(&self, gpu: &wick_gpu::Gpu) -> Result<HashMap<String, Tensor>> {
        gpu::read_back(gpu, &self.device).await
    }

    pub fn inputs(&self) -> &[ValueInfo] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[ValueInfo] {
        &self.outputs
    }

    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Run on named inputs; returns every graph output (or those in `wanted`: then only the
    /// nodes they depend on run, and only the inputs those read must be given).
    pub fn run(&self, inputs: HashMap<String, Tensor>, wanted: Option<&[String]>) -> Result<RunOutput> {
        self.run_observed(inputs, wanted, &mut |_| {})
    }

    /// [`Model::run`] with a hook before each step (its op type) and after the last (`None`).
    pub fn run_observed(
        &self,
        inputs: HashMap<String, Tensor>,
        wanted: Option<&[String]>,
        observe: &mut dyn FnMut(Option<&str>),
    ) -> Result<RunOutput> {
        if let Some(name) = self.device.keys().find(|n| !inputs.contains_key(*n)) {
            return Err(WickError::Internal(format!(
                "weight '{name}' lives only on the GPU: a CPU run must be fed it, read back"
            )));
        }
        for spec in &self.input_specs {
            if let Some(t) = inputs.get(&spec.name) {
                spec.check(t)?;
            }
        }
        self.plan.run_observed(inputs, wanted, observe)
    }
}

impl Model {
    /// [`Model::run`] on the WebGPU backend: the steps with a GPU kernel run on `resident`'s
    /// device (where the model's weights stay once uploaded), the others on the CPU.
    pub async fn run_gpu(
        &self,
        resident: &Resident,
        inputs: HashMap<String, Tensor>,
        wanted: Option<&[String]>,
    ) -> Result<(RunOutput, wick_shared::GpuRunStats)> {
        let (out, _, stats) = self.run_gpu_keeping(resident, inputs, HashMap::new(), wanted, &[]).await?;
        Ok((out, stats))
    }

    /// [`Model::run_gpu`] that takes some inputs from the device (`carried`: values an earlier
    /// run kept there) and leaves the outputs named in `keep` there when they end on the device
    /// (returned apart, never read back): a KV cache stays on the GPU from step to step.
    pub async fn run_gpu_keeping(
        &self,
        resident: &Resident,
        inputs: HashMap<String, Tensor>,
        carried: HashMap<String, GpuTensor>,
        wanted: Option<&[String]>,
        keep: &[String],
    ) -> Result<(RunOutput, HashMap<String, GpuTensor>, wick_shared::GpuRunStats)> {
        for spec in &self.input_specs {
            if let Some(t) = inputs.get(&spec.name) {
                spec.check(t)?;
            }
        }
        self.plan.run_gpu_with(resident, &self.device, &carried, inputs, wanted, keep).await
    }

    /// Steps that have a WebGPU kernel (each still runs on the CPU when its kernel declines the
    /// inputs of a run).
    pub fn gpu_kernel_steps(&self) -> usize {
        self.plan.steps.iter().filter(|s| s.gpu.is_some()).count()
    }
}

fn device_bytes(device: &HashMap<String, GpuTensor>) -> u64 {
    device.values().map(|t| (t.len() * 4) as u64).sum()
}

/// The opset version in force per domain ("" is the default ONNX domain).
fn opset_map(model: &ModelProto) -> HashMap<String, i64> {
    let mut map: HashMap<String, i64> = model
        .opset_import
        .iter()
        .map(|o| {
            let domain = if o.domain == "ai.onnx" { String::new() } else { o.domain.clone() };
            (domain, o.version)
        })
        .collect();
    map.entry(String::new()).or_insert(1);
    map
}

/// A value's declared ONNX element type and dims (`None` dims are symbolic; `None` for the
/// whole shape when the graph gives none).
fn declared_type(v: &onnx::ValueInfoProto) -> (Option<i32>, Option<Vec<Option<usize>>>) {
    use onnx::tensor_shape_proto::dimension::Value as Dim;
    use onnx::type_proto::Value as Type;
    let Some(Type::TensorType(tensor)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return (None, None);
    };
    let dims = tensor.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match d.value {
                Some(Dim::DimValue(n)) if n >= 0 => Some(n as usize),
                _ => None,
            })
            .collect()
    });
    (Some(tensor.elem_type), dims)
}

fn value_info(v: &onnx::ValueInfoProto) -> ValueInfo {
    let (elem_type, dims) = declared_type(v);
    ValueInfo {
        name: v.name.clone(),
        dtype: elem_type.and_then(tensor::wire_dtype_of_onnx),
        dims: dims.unwrap_or_default().into_iter().map(|d| d.map(|n| n as u64)).collect(),
    }
}

/// The dtype and (partly symbolic) shape a graph input declares.
struct InputSpec {
    name: String,
    dtype: Option<candle_core::DType>,
    /// `None` when the graph gives no shape; `None` dims are symbolic.
    dims: Option<Vec<Option<usize>>>,
}

impl InputSpec {
    fn of(v: &onnx::ValueInfoProto) -> Self {
        let (elem_type, dims) = declared_type(v);
        InputSpec {
            name: v.name.clone(),
            dtype: elem_type.and_then(|t| tensor::dtype_of_onnx(t).ok()),
            dims,
        }
    }

    /// A clear `bad_input` error now rather than a failure deep inside an op.
    fn check(&self, t: &Tensor) -> Result<()> {
        if let Some(dtype) = self.dtype {
            if t.dtype() != dtype {
                return Err(WickError::BadInput(format!(
                    "input '{}' must be {dtype:?}, got {:?}",
                    self.name,
                    t.dtype()
                )));
            }
        }
        if let Some(dims) = &self.dims {
            let fits = dims.len() == t.rank()
                && dims.iter().zip(t.dims()).all(|(want, got)| want.is_none_or(|w| w == *got));
            if !fits {
                let shown: Vec<String> =
                    dims.iter().map(|d| d.map_or("?".into(), |n| n.to_string())).collect();
                return Err(WickError::BadInput(format!(
                    "input '{}' must have shape [{}], got {:?}",
                    self.name,
                    shown.join(", "),
                    t.dims()
                )));
            }
        }
        Ok(())
    }
}
