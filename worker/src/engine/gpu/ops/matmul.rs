//! Matrix products on the GPU: MatMul (numpy batching) and Gemm — f32, or f16 on a device with
//! shader-f16 —, the fused MatMul + bias
//! (`wick.fused` MatMulAdd), and com.microsoft MatMulNBits (2/4/8-bit B kept packed on the device).

use wick_gpu::kernels::binary::{broadcast_shape, MAX_RANK};
use wick_gpu::{BinaryOp, Gpu};

use super::super::{Arg, Fail, GpuKernel, Meta, Out, Place, Running};
use super::{device, optional_device};
use crate::engine::ops::NodeCtx;

/// The tiled kernel takes at most 4 batch dims.
const MAX_MATMUL_RANK: usize = 6;

struct MatMul {
    /// MatMulAdd: the third input is added (broadcast) to the product.
    bias: bool,
}

impl GpuKernel for MatMul {
    /// The product takes f16; the bias's Add does not.
    fn takes_f16(&self) -> bool {
        !self.bias
    }

    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        let (Some(Some(a)), Some(Some(b))) = (xs.first(), xs.get(1)) else {
            return false;
        };
        let ranks = (1..=MAX_MATMUL_RANK).contains(&a.dims.len()) && (1..=MAX_MATMUL_RANK).contains(&b.dims.len());
        let bias = !self.bias
            || matches!(xs.get(2), Some(Some(c)) if c.dims.len() <= MAX_RANK && c.dims.len() <= a.dims.len().max(b.dims.len()));
        ranks && bias
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let y = gpu.matmul(device(xs, 0)?, device(xs, 1)?).await?;
            let y = match self.bias {
                true => {
                    let c = device(xs, 2)?;
                    if y.dims().len() > MAX_RANK || broadcast_shape(y.dims(), c.dims()).is_none() {
                        return Err(super::super::Fail::Op(format!("bias {:?} for {:?}", c.dims(), y.dims())));
                    }
                    gpu.binary(BinaryOp::Add, &y, c).await?
                }
                false => y,
            };
            Ok(vec![Out::Device(y)])
        })
    }
}

pub fn matmul(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(MatMul { bias: false }))
}

pub fn matmul_add(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(MatMul { bias: true }))
}

struct Gemm {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
}

impl GpuKernel for Gemm {
    fn takes_f16(&self) -> bool {
        true
    }

    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(a), Some(b), ..] if a.dims.len() == 2 && b.dims.len() == 2)
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let c = match xs.get(2) {
                Some(Some(_)) => Some(device(xs, 2)?),
                _ => None,
            };
            let y =
                gpu.gemm(device(xs, 0)?, device(xs, 1)?, c, self.alpha, self.beta, self.trans_a, self.trans_b).await?;
            Ok(vec![Out::Device(y)])
        })
    }
}

pub fn gemm(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Gemm {
        alpha: ctx.float("alpha", 1.0),
        beta: ctx.float("beta", 1.0),
        trans_a: ctx.int("transA", 0) != 0,
        trans_b: ctx.int("transB", 0) != 0,
    }))
}

/// MatMulNBits with 2-, 4- or 8-bit B, f32 scales and packed (uint8) or no zero points: B and
/// the zero points go to the device as bytes, once (they are weights), and are unpacked in the
/// tile. Other forms (float or f16 parameters, g_idx) fail `accepts` or the build: the CPU runs
/// them.
struct MatMulNBits {
    k: usize,
    n: usize,
    bits: usize,
    block: usize,
}

impl GpuKernel for MatMulNBits {
    fn place(&self, input: usize) -> Place {
        match input {
            1 | 3 => Place::Bytes,
            _ => Place::Device,
        }
    }

    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(a), Some(_), Some(_), ..] if a.dims.last() == Some(&self.k))
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let b = match xs.get(1) {
                Some(Some(Arg::Bytes(b))) => b,
                _ => return Err(Fail::Op("missing input 1".into())),
            };
            let zero_points = match xs.get(3) {
                Some(Some(Arg::Bytes(z))) => Some(*z),
                _ => None,
            };
            let y = gpu
                .matmul_nbits(device(xs, 0)?, b, device(xs, 2)?, zero_points, self.k, self.n, self.bits, self.block)
                .await?;
            let y = match optional_device(xs, 5) {
                Some(bias) if bias.dims() == [self.n] => gpu.binary(BinaryOp::Add, &y, bias).await?,
                Some(bias) => return Err(Fail::Op(format!("bias {:?}: want [{}]", bias.dims(), self.n))),
                None => y,
            };
            Ok(vec![Out::Device(y)])
        })
    }
}

pub fn matmul_nbits(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    let (k, n, bits, block) = (ctx.int("K", 0), ctx.int("N", 0), ctx.int("bits", 4), ctx.int("block_size", 0));
    // g_idx (input 4) reorders blocks: the CPU kernel refuses it too.
    let g_idx = ctx.node.input.get(4).is_some_and(|s| !s.is_empty());
    let block_ok = block >= 16 && (block as u64).is_power_of_two();
    if ![2, 4, 8].contains(&bits) || !block_ok || k <= 0 || n <= 0 || g_idx {
        return None;
    }
    Some(Box::new(MatMulNBits { k: k as usize, n: n as usize, bits: bits as usize, block: block as usize }))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::collections::HashMap;
    use std::rc::Rc;

    use candle_core::Tensor;
    use candle_onnx::onnx::{attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, NodeProto};
    use candle_onnx::onnx::{OperatorSetIdProto, TensorProto, ValueInfoProto};

    use crate::engine::ops::nbits::tests::cases;
    use crate::engine::{Model, Resident};

    fn int(name: &str, i: usize) -> AttributeProto {
        AttributeProto { name: name.into(), i: i as i64, r#type: AttributeType::Int as i32, ..Default::default() }
    }

    /// `a → MatMulNBits(b, scales, zero points?, bias?) → y`, the weights as initializers.
    fn model(c: &crate::engine::ops::nbits::tests::Case) -> Model {
        let names = ["a", "b", "scales", "zero_points", "", "bias"];
        let input: Vec<String> =
            names.iter().zip(&c.inputs).map(|(n, t)| if t.is_some() { n.to_string() } else { String::new() }).collect();
        let node = NodeProto {
            op_type: "MatMulNBits".into(),
            domain: "com.microsoft".into(),
            input,
            output: vec!["y".into()],
            attribute: vec![int("K", c.d.k), int("N", c.d.n), int("bits", c.d.bits), int("block_size", c.d.block)],
            ..Default::default()
        };
        let weights: HashMap<String, Tensor> =
            names.iter().zip(&c.inputs).skip(1).filter_map(|(n, t)| Some((n.to_string(), t.clone()?))).collect();
        let graph = GraphProto {
            node: vec![node],
            input: vec![ValueInfoProto { name: "a".into(), ..Default::default() }],
            output: vec![ValueInfoProto { name: "y".into(), ..Default::default() }],
            // Their values come as `external` tensors, as from the loader.
            initializer: weights.keys().map(|n| TensorProto { name: n.clone(), ..Default::default() }).collect(),
            ..Default::default()
        };
        let opset = |domain: &str, version| OperatorSetIdProto { domain: domain.into(), version };
        let proto = ModelProto {
            ir_version: 8,
            opset_import: vec![opset("", 13), opset("com.microsoft", 1)],
            graph: Some(graph),
            ..Default::default()
        };
        Model::build(proto, weights).expect("the model builds")
    }

    /// Every case of the fixture (onnxruntime's outputs; 2, 4 and 8 bits) with blocks of ≥ 16, f32
    /// scales and packed or no zero points runs on the GPU, its packed weights uploaded once;
    /// float zero points stay on the CPU (the kernel unpacks bytes only), with the same result.
    #[test]
    fn matmul_nbits_on_the_gpu_matches_onnxruntime() {
        let gpu = Rc::new(wick_gpu::Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}")));
        let mut on_gpu = 0;
        for c in cases().iter().filter(|c| c.d.block >= 16 && c.d.block.is_power_of_two()) {
            let what = format!("bits {} block {} K {} N {} M {}", c.d.bits, c.d.block, c.d.k, c.d.n, c.m);
            let model = model(c);
            let resident = Resident::new(gpu.clone());
            let float_zp = c.inputs[3].as_ref().is_some_and(|z| z.dtype() == candle_core::DType::F32);
            for run in 0..2 {
                let feeds = HashMap::from([("a".to_string(), c.inputs[0].clone().expect("a"))]);
                let (out, stats) = pollster::block_on(model.run_gpu(&resident, feeds, None)).expect(&what);
                let got = out.outputs[0].1.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("f32");
                for (i, (g, w)) in got.iter().zip(&c.want).enumerate() {
                    assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{what}: element {i}: got {g}, want {w}");
                }
                assert_eq!(got.len(), c.want.len(), "{what}");
                if float_zp {
                    assert_eq!((stats.gpu_steps, stats.cpu_steps), (0, 1), "{what}");
                } else {
                    assert_eq!((stats.gpu_steps, stats.cpu_steps), (1, 0), "{what}");
                    // The second run uploads only A: the packed weights stayed on the device.
                    if run == 1 {
                        assert_eq!(stats.uploads, 1, "{what}");
                    }
                    on_gpu += usize::from(run == 0);
                }
            }
        }
        // The fixture holds 13 such cases: 2, 4 and 8 bits, blocks 16 to 64, M 1 to 4, with and
        // without zero points and bias.
        assert!(on_gpu >= 13, "only {on_gpu} cases ran on the GPU");
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod f16_tests {
    use std::collections::HashMap;
    use std::rc::Rc;

    use candle_core::{DType, Device, Tensor};
    use candle_onnx::onnx::{attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, NodeProto};
    use candle_onnx::onnx::{OperatorSetIdProto, ValueInfoProto};

    use crate::engine::{Model, Resident};

    fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: output.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    }

    fn f16(dims: &[usize], seed: u32) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).and_then(|t| t.to_dtype(DType::F16)).unwrap()
    }

    /// An f16 model — MatMul (batched, blocked pipeline), a reshape, Gemm with transB and a bias —
    /// on a device with shader-f16: the products run on the GPU in f16, the values stay f16 on
    /// the device between them, and the output is the CPU backend's within 1e-2.
    #[test]
    fn an_f16_model_multiplies_on_the_gpu_like_the_cpu() {
        let gpu = Rc::new(wick_gpu::Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}")));
        assert!(gpu.has_f16(), "lavapipe offers shader-f16");
        let weights = HashMap::from([
            ("w".to_string(), f16(&[64, 48], 1)),
            ("w2".to_string(), f16(&[10, 48], 2)),
            ("b2".to_string(), f16(&[10], 3)),
            ("shape".to_string(), Tensor::new(&[-1i64, 48], &Device::Cpu).unwrap()),
        ]);
        let trans_b = AttributeProto { name: "transB".into(), i: 1, r#type: AttributeType::Int as i32, ..Default::default() };
        let graph = GraphProto {
            node: vec![
                node("MatMul", &["x", "w"], "h", vec![]),
                node("Reshape", &["h", "shape"], "flat", vec![]),
                node("Gemm", &["flat", "w2", "b2"], "y", vec![trans_b]),
            ],
            input: vec![ValueInfoProto { name: "x".into(), ..Default::default() }],
            output: vec![ValueInfoProto { name: "y".into(), ..Default::default() }],
            initializer: weights.keys().map(|n| candle_onnx::onnx::TensorProto { name: n.clone(), ..Default::default() }).collect(),
            ..Default::default()
        };
        let proto = ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
            graph: Some(graph),
            ..Default::default()
        };
        let model = Model::build(proto, weights).unwrap();
        let feeds = HashMap::from([("x".to_string(), f16(&[2, 30, 64], 4))]);
        let cpu = model.run(feeds.clone(), None).unwrap().outputs.remove(0).1;
        let (mut out, stats) = pollster::block_on(model.run_gpu(&Resident::new(gpu), feeds, None)).unwrap();
        let on_gpu = out.outputs.remove(0).1;
        assert_eq!((on_gpu.dtype(), on_gpu.dims()), (DType::F16, cpu.dims()));
        assert_eq!((stats.gpu_steps, stats.cpu_steps), (3, 0), "{stats:?}");
        // x and the weights go up as f16: two bytes a value.
        assert_eq!(stats.upload_bytes, 2 * (2 * 30 * 64 + 64 * 48 + 10 * 48 + 10), "{stats:?}");
        let (a, b) = (on_gpu.to_dtype(DType::F32).unwrap(), cpu.to_dtype(DType::F32).unwrap());
        let diff = (a - &b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(diff <= 1e-2 * scale.max(1.0), "{diff} (values up to {scale})");
    }
}
