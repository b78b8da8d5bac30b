//! The op registry: one table maps (domain, op_type, since-opset) to a builder, and each op
//! family lives in its own file. A builder reads the node's attributes once, at plan time, into
//! a typed kernel; kernels never see protobuf.
//!
//! Adding an op: write `fn build(ctx: &NodeCtx) -> Result<Box<dyn Kernel>>` in its family file
//! and add one line to [`OPS`].

mod attention;
mod control;
pub(crate) mod conv;
mod elementwise;
pub(crate) mod fast;
pub(crate) mod fused;
pub(crate) mod gemm;
pub(crate) mod simd;
mod index;
mod matmul;
pub(crate) mod nbits;
mod normalization;
pub(crate) mod pool;
mod quantization;
mod recurrent;
mod reduce;
mod resize;
mod sampling;
mod select;
pub(crate) mod shape;
mod signal;

use std::collections::HashMap;

use candle_core::Tensor;
use candle_onnx::onnx::{AttributeProto, NodeProto};

use crate::error::{Result, WickError};

/// A planned operator: inputs in (absent optional inputs are `None`), outputs out.
pub trait Kernel {
    fn run(&self, inputs: &[Option<&Tensor>]) -> candle_core::Result<Vec<Tensor>>;
}

impl<F> Kernel for F
where
    F: Fn(&[Option<&Tensor>]) -> candle_core::Result<Vec<Tensor>>,
{
    fn run(&self, inputs: &[Option<&Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        self(inputs)
    }
}

pub type Build = fn(&NodeCtx) -> Result<Box<dyn Kernel>>;

/// One registry row: the op is available from opset `since` of its domain.
pub struct OpDef {
    pub domain: &'static str,
    pub op_type: &'static str,
    pub since: i64,
    pub build: Build,
}

const fn op(op_type: &'static str, since: i64, build: Build) -> OpDef {
    OpDef { domain: "", op_type, since, build }
}

/// Every operator the engine implements. Where semantics changed between opsets, one row per
/// version; the newest row not newer than the model's opset wins.
pub static OPS: &[OpDef] = &[
    // elementwise.rs
    op("Add", 1, elementwise::add),
    op("Sub", 1, elementwise::sub),
    op("Mul", 1, elementwise::mul),
    op("Div", 1, elementwise::div),
    op("Relu", 1, elementwise::relu),
    op("Sigmoid", 1, elementwise::sigmoid),
    op("Tanh", 1, elementwise::tanh),
    op("Exp", 1, elementwise::exp),
    op("Log", 1, elementwise::log),
    op("Neg", 1, elementwise::neg),
    op("Abs", 1, elementwise::abs),
    op("Sqrt", 1, elementwise::sqrt),
    op("Pow", 1, elementwise::pow),
    op("Mod", 10, elementwise::modulo),
    op("BitShift", 11, elementwise::bit_shift),
    op("Min", 1, elementwise::min),
    op("Max", 1, elementwise::max),
    op("Sum", 1, elementwise::sum),
    op("Mean", 1, elementwise::mean),
    op("Equal", 1, elementwise::equal),
    op("Less", 1, elementwise::less),
    op("LessOrEqual", 12, elementwise::less_or_equal),
    op("Greater", 1, elementwise::greater),
    op("GreaterOrEqual", 12, elementwise::greater_or_equal),
    op("And", 1, elementwise::and),
    op("Or", 1, elementwise::or),
    op("Xor", 1, elementwise::xor),
    op("Not", 1, elementwise::not),
    op("BitwiseAnd", 18, elementwise::bitwise_and),
    op("BitwiseOr", 18, elementwise::bitwise_or),
    op("BitwiseXor", 18, elementwise::bitwise_xor),
    op("BitwiseNot", 18, elementwise::bitwise_not),
    op("IsNaN", 9, elementwise::is_nan),
    op("IsInf", 10, elementwise::is_inf),
    op("Where", 9, elementwise::where_op),
    op("Reciprocal", 1, elementwise::reciprocal),
    op("Floor", 1, elementwise::floor),
    op("Ceil", 1, elementwise::ceil),
    op("Round", 11, elementwise::round),
    op("Sign", 9, elementwise::sign),
    op("Erf", 9, elementwise::erf),
    op("Sin", 7, elementwise::sin),
    op("Cos", 7, elementwise::cos),
    op("Tan", 7, elementwise::tan),
    op("Asin", 7, elementwise::asin),
    op("Acos", 7, elementwise::acos),
    op("Atan", 7, elementwise::atan),
    op("Sinh", 9, elementwise::sinh),
    op("Cosh", 9, elementwise::cosh),
    op("Asinh", 9, elementwise::asinh),
    op("Acosh", 9, elementwise::acosh),
    op("Atanh", 9, elementwise::atanh),
    op("LeakyRelu", 1, elementwise::leaky_relu),
    op("PRelu", 1, elementwise::prelu_legacy),
    op("PRelu", 7, elementwise::prelu),
    op("Shrink", 9, elementwise::shrink),
    op("Swish", 24, elementwise::swish),
    op("Elu", 1, elementwise::elu),
    op("Celu", 12, elementwise::celu),
    op("Selu", 1, elementwise::selu),
    op("ThresholdedRelu", 10, elementwise::thresholded_relu),
    op("HardSigmoid", 1, elementwise::hard_sigmoid),
    op("HardSwish", 14, elementwise::hard_swish),
    op("Softplus", 1, elementwise::softplus),
    op("Softsign", 1, elementwise::softsign),
    op("Mish", 18, elementwise::mish),
    op("Gelu", 20, elementwise::gelu),
    op("Clip", 1, elementwise::clip_attr),
    op("Clip", 11, elementwise::clip),
    op("Cast", 6, elementwise::cast),
    op("CastLike", 15, elementwise::cast_like),
    op("BitCast", 26, elementwise::bit_cast),
    // reduce.rs
    op("ReduceSum", 1, reduce::reduce_sum_attr),
    op("ReduceSum", 13, reduce::reduce_sum),
    op("ReduceMean", 1, reduce::reduce_mean_attr),
    op("ReduceMean", 18, reduce::reduce_mean),
    op("ReduceMax", 1, reduce::reduce_max_attr),
    op("ReduceMax", 18, reduce::reduce_max),
    op("ReduceMin", 1, reduce::reduce_min_attr),
    op("ReduceMin", 18, reduce::reduce_min),
    op("ReduceProd", 1, reduce::reduce_prod_attr),
    op("ReduceProd", 18, reduce::reduce_prod),
    op("ReduceL1", 1, reduce::reduce_l1_attr),
    op("ReduceL1", 18, reduce::reduce_l1),
    op("ReduceL2", 1, reduce::reduce_l2_attr),
    op("ReduceL2", 18, reduce::reduce_l2),
    op("ReduceLogSum", 1, reduce::reduce_log_sum_attr),
    op("ReduceLogSum", 18, reduce::reduce_log_sum),
    op("ReduceLogSumExp", 1, reduce::reduce_log_sum_exp_attr),
    op("ReduceLogSumExp", 18, reduce::reduce_log_sum_exp),
    op("ReduceSumSquare", 1, reduce::reduce_sum_square_attr),
    op("ReduceSumSquare", 18, reduce::reduce_sum_square),
    op("ArgMax", 1, reduce::arg_max),
    op("ArgMin", 1, reduce::arg_min),
    op("CumSum", 11, reduce::cumsum),
    op("CumProd", 26, reduce::cumprod),
    // matmul.rs
    op("MatMul", 1, matmul::matmul),
    op("Gemm", 1, matmul::gemm),
    op("Einsum", 12, matmul::einsum),
    op("Det", 11, matmul::det),
    // conv.rs
    op("Conv", 1, conv::conv),
    op("ConvTranspose", 1, conv::conv_transpose),
    // pool.rs
    op("MaxPool", 1, pool::max_pool),
    op("AveragePool", 1, pool::average_pool),
    op("GlobalAveragePool", 1, pool::global_average_pool),
    op("GlobalMaxPool", 1, pool::global_max_pool),
    op("GlobalLpPool", 1, pool::global_lp_pool),
    op("LpPool", 1, pool::lp_pool),
    op("MaxUnpool", 9, pool::max_unpool),
    // resize.rs
    op("Resize", 10, resize::resize_10),
    op("Resize", 11, resize::resize),
    op("Upsample", 7, resize::upsample_7),
    op("Upsample", 9, resize::upsample),
    // sampling.rs
    op("GridSample", 16, sampling::grid_sample),
    op("AffineGrid", 20, sampling::affine_grid),
    op("CenterCropPad", 18, sampling::center_crop_pad),
    op("Col2Im", 18, sampling::col2im),
    op("RoiAlign", 10, sampling::roi_align_10),
    op("RoiAlign", 16, sampling::roi_align),
    // quantization.rs
    op("QuantizeLinear", 10, quantization::quantize_linear),
    op("DequantizeLinear", 10, quantization::dequantize_linear),
    op("DynamicQuantizeLinear", 11, quantization::dynamic_quantize_linear),
    op("MatMulInteger", 10, quantization::matmul_integer),
    op("ConvInteger", 10, quantization::conv_integer),
    op("QLinearMatMul", 10, quantization::qlinear_matmul),
    op("QLinearConv", 10, quantization::qlinear_conv),
    OpDef { domain: "com.microsoft", op_type: "MatMulNBits", since: 1, build: nbits::matmul_nbits },
    // select.rs
    op("TopK", 1, select::top_k_1),
    op("TopK", 10, select::top_k),
    op("NonMaxSuppression", 10, select::non_max_suppression),
    // normalization.rs
    op("Softmax", 1, normalization::softmax_legacy),
    op("Softmax", 13, normalization::softmax),
    op("LogSoftmax", 1, normalization::log_softmax_legacy),
    op("LogSoftmax", 13, normalization::log_softmax),
    op("Hardmax", 1, normalization::hardmax_legacy),
    op("Hardmax", 13, normalization::hardmax),
    op("BatchNormalization", 1, normalization::batch_norm),
    op("InstanceNormalization", 1, normalization::instance_norm),
    op("LayerNormalization", 17, normalization::layer_norm),
    op("GroupNormalization", 18, normalization::group_norm_18),
    op("GroupNormalization", 21, normalization::group_norm),
    op("RMSNormalization", 23, normalization::rms_norm),
    op("SimplifiedLayerNormalization", 1, normalization::rms_norm),
    OpDef { domain: "com.microsoft", op_type: "SkipSimplifiedLayerNormalization", since: 1, build: normalization::skip_rms_norm },
    op("MeanVarianceNormalization", 9, normalization::mean_variance_norm),
    op("LRN", 1, normalization::lrn),
    op("LpNormalization", 1, normalization::lp_norm),
    // shape.rs
    op("Identity", 1, shape::identity),
    op("Dropout", 1, shape::dropout),
    op("Constant", 1, shape::constant),
    op("Reshape", 5, shape::reshape),
    op("Flatten", 1, shape::flatten),
    op("Transpose", 1, shape::transpose),
    op("Squeeze", 1, shape::squeeze_attr),
    op("Squeeze", 13, shape::squeeze_input),
    op("Unsqueeze", 1, shape::unsqueeze_attr),
    op("Unsqueeze", 13, shape::unsqueeze_input),
    op("Concat", 1, shape::concat),
    op("Shape", 1, shape::shape),
    op("Slice", 1, shape::slice_attr),
    op("Slice", 10, shape::slice_input),
    op("Split", 1, shape::split_attr),
    op("Split", 13, shape::split_input),
    op("Expand", 8, shape::expand),
    op("Tile", 6, shape::tile),
    op("Pad", 1, shape::pad_attr),
    op("Pad", 11, shape::pad_input),
    op("ConstantOfShape", 9, shape::constant_of_shape),
    op("Range", 11, shape::range),
    op("Size", 1, shape::size),
    op("DepthToSpace", 1, shape::depth_to_space),
    op("SpaceToDepth", 1, shape::space_to_depth),
    // index.rs
    op("Gather", 1, index::gather),
    op("GatherElements", 11, index::gather_elements),
    op("GatherND", 11, index::gather_nd),
    op("Scatter", 9, index::scatter_elements),
    op("ScatterElements", 11, index::scatter_elements),
    op("ScatterND", 11, index::scatter_nd),
    op("OneHot", 9, index::one_hot),
    op("Trilu", 14, index::trilu),
    op("EyeLike", 9, index::eye_like),
    op("NonZero", 9, index::non_zero),
    op("Compress", 9, index::compress),
    op("Unique", 11, index::unique),
    op("ReverseSequence", 10, index::reverse_sequence),
    op("TensorScatter", 24, index::tensor_scatter),
    // control.rs
    op("If", 1, control::if_op),
    op("Loop", 1, control::loop_op),
    op("Scan", 8, control::scan_8),
    op("Scan", 9, control::scan),
    // recurrent.rs
    op("RNN", 7, recurrent::rnn),
    op("GRU", 7, recurrent::gru),
    op("LSTM", 7, recurrent::lstm),
    // signal.rs
    op("DFT", 17, signal::dft_17),
    op("DFT", 20, signal::dft_20),
    op("STFT", 17, signal::stft),
    op("HannWindow", 17, signal::hann_window),
    op("HammingWindow", 17, signal::hamming_window),
    op("BlackmanWindow", 17, signal::blackman_window),
    op("MelWeightMatrix", 17, signal::mel_weight_matrix),
    // attention.rs
    op("Attention", 23, attention::attention),
    op("RotaryEmbedding", 23, attention::rotary_embedding),
    OpDef { domain: "com.microsoft", op_type: "RotaryEmbedding", since: 1, build: attention::rotary_embedding_ms },
    op("LinearAttention", 27, attention::linear_attention),
    op("CausalConvWithState", 27, attention::causal_conv_with_state),
    // fused.rs: nodes engine/fuse.rs makes at load, never named by a model.
    // split.rs's readers of a weight cut into parts (engine/split.rs), never named by a model.
    OpDef { domain: crate::engine::split::DOMAIN, op_type: "Gather", since: 1, build: index::gather_parts },
    OpDef { domain: fused::DOMAIN, op_type: "Gelu", since: 1, build: fused::gelu },
    OpDef { domain: fused::DOMAIN, op_type: "Silu", since: 1, build: fused::silu },
    OpDef { domain: fused::DOMAIN, op_type: "MatMulAdd", since: 1, build: fused::matmul_add },
    OpDef { domain: fused::DOMAIN, op_type: "ConvAct", since: 1, build: fused::conv_act },
];

/// The op types the registry knows, for capabilities.
pub fn op_names() -> Vec<String> {
    let mut names: Vec<String> = OPS
        .iter()
        .filter(|o| o.domain != fused::DOMAIN && o.domain != crate::engine::split::DOMAIN)
        .map(|o| if o.domain.is_empty() { o.op_type.to_string() } else { format!("{}:{}", o.domain, o.op_type) })
        .collect();
    names.dedup();
    names
}

/// Build the kernel for a node, choosing the registry row by the model's opset.
pub fn build(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let domain = if ctx.node.domain == "ai.onnx" { "" } else { ctx.node.domain.as_str() };
    OPS.iter()
        .filter(|o| o.domain == domain && o.op_type == ctx.node.op_type && o.since <= ctx.opset)
        .max_by_key(|o| o.since)
        .ok_or_else(|| ctx.unsupported(""))
        .and_then(|o| (o.build)(ctx))
}

/// What a builder sees of a node: its attributes, the opset, and the graph's constants.
pub struct NodeCtx<'a> {
    pub node: &'a NodeProto,
    pub opset: i64,
    /// Every domain's opset, for the plans of subgraphs (control.rs).
    pub opsets: &'a HashMap<String, i64>,
    pub constants: &'a HashMap<String, Tensor>,
    /// The declared ONNX element type of each value the graph declares one for.
    pub types: &'a HashMap<String, i32>,
}

impl NodeCtx<'_> {
    /// The declared ONNX element type of input `i`, when the graph declares it.
    pub fn input_type(&self, i: usize) -> Option<i32> {
        self.node.input.get(i).and_then(|n| self.types.get(n)).copied()
    }

    pub fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }

    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).map_or(default, |a| a.f)
    }

    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    /// A list-of-strings attribute (e.g. RNN activations); empty when absent.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.attr(name)
            .map(|a| a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
            .unwrap_or_default()
    }

    /// A list-of-floats attribute; empty when absent.
    pub fn float_list(&self, name: &str) -> Vec<f32> {
        self.attr(name).map(|a| a.floats.clone()).unwrap_or_default()
    }

    /// A graph attribute (If branches, Loop and Scan bodies).
    pub fn graph(&self, name: &str) -> Option<&candle_onnx::onnx::GraphProto> {
        self.attr(name).and_then(|a| a.g.as_ref())
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.attr(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
            .unwrap_or_else(|| default.to_string())
    }

    pub fn tensor_attr(&self, name: &str) -> Option<&candle_onnx::onnx::TensorProto> {
        self.attr(name).and_then(|a| a.t.as_ref())
    }

    /// The value of input `i` if it is a graph constant (an initializer).
    pub fn constant_input(&self, i: usize) -> Option<&Tensor> {
        self.node.input.get(i).and_then(|n| self.constants.get(n))
    }

    /// An `unsupported_op` error for this node, with a detail (e.g. an attribute value).
    pub fn unsupported(&self, detail: &str) -> WickError {
        WickError::UnsupportedOp {
            domain: self.node.domain.clone(),
            op_type: self.node.op_type.clone(),
            opset: self.opset,
            detail: if detail.is_empty() { String::new() } else { format!(": {detail}") },
        }
    }
}

/// Input `i`, which the op requires.
pub fn input<'a>(xs: &[Option<&'a Tensor>], i: usize) -> candle_core::Result<&'a Tensor> {
    xs.get(i).copied().flatten().ok_or_else(|| candle_core::Error::Msg(format!("missing input {i}")))
}

/// A possibly negative ONNX axis, resolved against `rank`.
pub fn axis(a: i64, rank: usize) -> candle_core::Result<usize> {
    let r = rank as i64;
    if a < -r || a >= r.max(1) {
        candle_core::bail!("axis {a} out of range for rank {rank}")
    }
    Ok(if a < 0 { (a + r) as usize } else { a as usize })
}

/// A 1-D integer tensor's values (shapes, axes), whatever its integer dtype.
pub fn int_values(t: &Tensor) -> candle_core::Result<Vec<i64>> {
    t.flatten_all()?.to_dtype(candle_core::DType::I64)?.to_vec1::<i64>()
}

#[cfg(test)]
pub(crate) mod test_util {
    use candle_core::{Device, Tensor};
    use candle_onnx::onnx::{AttributeProto, NodeProto};
    use std::collections::HashMap;

    use super::{Kernel, NodeCtx};

    pub fn node(op_type: &str, n_inputs: usize, attrs: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op_type.into(),
            input: (0..n_inputs).map(|i| format!("x{i}")).collect(),
            output: vec!["y".into()],
            attribute: attrs,
            ..Default::default()
        }
    }

    pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto { name: name.into(), ints: v.to_vec(), r#type: 7, ..Default::default() }
    }

    pub fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto { name: name.into(), i: v, r#type: 2, ..Default::default() }
    }

    pub fn float(name: &str, v: f32) -> AttributeProto {
        AttributeProto { name: name.into(), f: v, r#type: 1, ..Default::default() }
    }

    pub fn string(name: &str, v: &str) -> AttributeProto {
        AttributeProto { name: name.into(), s: v.as_bytes().to_vec(), r#type: 3, ..Default::default() }
    }

    pub fn build(node: &NodeProto, opset: i64) -> Box<dyn Kernel> {
        let (constants, opsets) = (HashMap::new(), HashMap::from([(String::new(), opset)]));
        let ctx = NodeCtx { node, opset, opsets: &opsets, constants: &constants, types: &HashMap::new() };
        super::build(&ctx).expect("op builds")
    }

    pub fn t(dims: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(v.to_vec(), dims, &Device::Cpu).unwrap()
    }

    pub fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    pub fn assert_close(got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len(), "length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w}");
        }
    }
}
