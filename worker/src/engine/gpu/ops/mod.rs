//! The GPU op registry: one table maps (domain, op_type) to a builder of a WebGPU kernel, and
//! each op family lives in its own file, as on the CPU side (`engine/ops`). A builder reads the
//! node's attributes once, like the CPU builder of the same node, and returns `None` where the
//! GPU kernel does not cover them (the step then always runs on the CPU).
//!
//! Adding a GPU op: a `fn(&NodeCtx) -> Option<Box<dyn GpuKernel>>` in its family file and one
//! line in [`GPU_OPS`].

mod conv;
mod elementwise;
mod index;
mod matmul;
mod normalization;
mod reduce;
mod resize;
mod shape;

use wick_gpu::GpuTensor;

use super::{Arg, Fail, GpuKernel};
use crate::engine::ops::{fused, NodeCtx};

pub(crate) type GpuBuild = fn(&NodeCtx) -> Option<Box<dyn GpuKernel>>;

pub(crate) struct GpuOpDef {
    pub domain: &'static str,
    pub op_type: &'static str,
    pub build: GpuBuild,
}

const fn op(op_type: &'static str, build: GpuBuild) -> GpuOpDef {
    GpuOpDef { domain: "", op_type, build }
}

const fn fused_op(op_type: &'static str, build: GpuBuild) -> GpuOpDef {
    GpuOpDef { domain: fused::DOMAIN, op_type, build }
}

/// Every op with a WebGPU kernel. Ops not here run on the CPU, their inputs read back.
pub(crate) static GPU_OPS: &[GpuOpDef] = &[
    // elementwise.rs
    op("Add", elementwise::add),
    op("Sub", elementwise::sub),
    op("Mul", elementwise::mul),
    op("Div", elementwise::div),
    op("Pow", elementwise::pow),
    op("Max", elementwise::max),
    op("Min", elementwise::min),
    op("Relu", elementwise::relu),
    op("Sigmoid", elementwise::sigmoid),
    op("Tanh", elementwise::tanh),
    op("Exp", elementwise::exp),
    op("Log", elementwise::log),
    op("Neg", elementwise::neg),
    op("Abs", elementwise::abs),
    op("Sqrt", elementwise::sqrt),
    op("Reciprocal", elementwise::reciprocal),
    op("Floor", elementwise::floor),
    op("Ceil", elementwise::ceil),
    op("Erf", elementwise::erf),
    op("Sin", elementwise::sin),
    op("Cos", elementwise::cos),
    op("Softplus", elementwise::softplus),
    op("LeakyRelu", elementwise::leaky_relu),
    op("Elu", elementwise::elu),
    op("HardSigmoid", elementwise::hard_sigmoid),
    op("HardSwish", elementwise::hard_swish),
    op("Gelu", elementwise::gelu),
    op("Clip", elementwise::clip),
    fused_op("Gelu", elementwise::gelu),
    fused_op("Silu", elementwise::silu),
    // matmul.rs
    op("MatMul", matmul::matmul),
    op("Gemm", matmul::gemm),
    fused_op("MatMulAdd", matmul::matmul_add),
    GpuOpDef { domain: "com.microsoft", op_type: "MatMulNBits", build: matmul::matmul_nbits },
    // conv.rs
    op("Conv", conv::conv),
    fused_op("ConvAct", conv::conv_act),
    op("MaxPool", conv::max_pool),
    op("AveragePool", conv::average_pool),
    op("GlobalAveragePool", conv::global_average_pool),
    op("GlobalMaxPool", conv::global_max_pool),
    // normalization.rs
    op("Softmax", normalization::softmax),
    op("LogSoftmax", normalization::log_softmax),
    op("LayerNormalization", normalization::layer_norm),
    op("RMSNormalization", normalization::rms_norm),
    op("SimplifiedLayerNormalization", normalization::rms_norm),
    // reduce.rs
    op("ReduceSum", reduce::reduce_sum),
    op("ReduceMean", reduce::reduce_mean),
    op("ReduceMax", reduce::reduce_max),
    op("ReduceMin", reduce::reduce_min),
    op("ReduceProd", reduce::reduce_prod),
    op("ReduceSumSquare", reduce::reduce_sum_square),
    op("ReduceL2", reduce::reduce_l2),
    // resize.rs
    op("Resize", resize::resize),
    // index.rs
    op("Gather", index::gather),
    op("Where", index::where_op),
    GpuOpDef { domain: crate::engine::split::DOMAIN, op_type: "Gather", build: index::gather_parts },
    // shape.rs: views of the same buffer (no kernel runs), Shape, strided copies
    op("Identity", shape::identity),
    op("Reshape", shape::reshape),
    op("Flatten", shape::flatten),
    op("Squeeze", shape::squeeze),
    op("Unsqueeze", shape::unsqueeze),
    op("Shape", shape::shape),
    op("Transpose", shape::transpose),
    op("Concat", shape::concat),
    op("Slice", shape::slice),
    op("Split", shape::split),
    op("Expand", shape::expand),
];

/// The GPU kernel of a node, if the registry has one that covers its attributes.
pub(crate) fn build(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    let domain = if ctx.node.domain == "ai.onnx" { "" } else { ctx.node.domain.as_str() };
    GPU_OPS.iter().find(|o| o.domain == domain && o.op_type == ctx.node.op_type).and_then(|o| (o.build)(ctx))
}

/// The op types with a WebGPU kernel, for capabilities.
pub fn gpu_op_names() -> Vec<&'static str> {
    GPU_OPS.iter().filter(|o| o.domain.is_empty()).map(|o| o.op_type).collect()
}

/// Device input `i`, which the op requires.
pub(crate) fn device<'a>(xs: &'a [Option<Arg<'a>>], i: usize) -> Result<&'a GpuTensor, Fail> {
    match xs.get(i) {
        Some(Some(Arg::Device(t))) => Ok(t),
        _ => Err(Fail::Op(format!("missing input {i}"))),
    }
}

/// Host input `i`, which the op requires.
pub(crate) fn host<'a>(xs: &'a [Option<Arg<'a>>], i: usize) -> Result<&'a candle_core::Tensor, Fail> {
    match xs.get(i) {
        Some(Some(Arg::Host(t))) => Ok(t),
        _ => Err(Fail::Op(format!("missing input {i}"))),
    }
}

/// Optional device input `i`.
pub(crate) fn optional_device<'a>(xs: &'a [Option<Arg<'a>>], i: usize) -> Option<&'a GpuTensor> {
    match xs.get(i) {
        Some(Some(Arg::Device(t))) => Some(t),
        _ => None,
    }
}

/// Whether the node uses only its first output (GPU kernels produce one).
pub(crate) fn single_output(ctx: &NodeCtx) -> bool {
    ctx.node.output.iter().skip(1).all(|o| o.is_empty())
}
