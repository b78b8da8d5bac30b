//! Load-time fusions: node chains that exporters emit for one function become one node of the
//! private domain [`DOMAIN`], whose kernel (`ops/fused.rs`) makes one pass over memory instead
//! of one pass and one intermediate tensor per node:
//!
//! - GELU: `Div(x, √2) → Erf → Add(1) → Mul(x) → Mul(0.5)` (or `Mul(x, 1/√2)` first) → `Gelu(x)`;
//! - SiLU: `Sigmoid(x) → Mul(x)` → `Silu(x)`;
//! - a matrix product and its bias: `MatMul(a, W) → Add(b)` with constant 2-D `W` and constant
//!   `b` along the last dim → `MatMulAdd(a, W, b)` (the product accumulates onto the bias);
//! - a convolution and its activation: `Conv → Relu`, `Conv → Clip` (constant bounds), `Conv →
//!   Sigmoid → Mul(conv)` (SiLU) → `ConvAct` with the Conv's attributes plus `activation`
//!   (and `min`/`max`), applied as the results are stored.
//!
//! Before those, a BatchNormalization after a Conv with constant parameters is folded into the
//! Conv's weights and bias (new constants), so that `Conv → BatchNormalization → Clip` ends as
//! one ConvAct.
//!
//! A chain is fused only when nothing else reads its intermediate values: no other node, no
//! subgraph, no graph output. The rewrite runs before ordering, so the plan sees fused nodes
//! like any other.

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use candle_onnx::onnx::{AttributeProto, NodeProto};

use super::ops::fused::DOMAIN;
use super::tensor::from_proto;

/// The nodes of a graph with the chains above fused. `reads` holds what each node reads
/// (inputs, then its subgraphs' free variables), `outputs` the graph's outputs. Constants the
/// rewrite makes (batch norms folded into a Conv's weights) are added to `known`.
pub fn fuse(
    nodes: &[NodeProto],
    reads: &[Vec<String>],
    known: &mut HashMap<String, Tensor>,
    outputs: &[String],
) -> (Vec<NodeProto>, Vec<Vec<String>>) {
    let (folded, made) = fold_batch_norms(nodes, reads, known, outputs);
    let Some((nodes, reads)) = folded else { return fuse_chains(nodes, reads, known, outputs) };
    known.extend(made);
    fuse_chains(&nodes, &reads, known, outputs)
}

/// `Conv(x, W, b) → BatchNormalization(scale, B, mean, var)` with every parameter constant
/// (f32) becomes `Conv(x, W', b')`: W' = W·s per output channel, b' = (b - mean)·s + B, with
/// s = scale / √(var + ε). Returns the rewritten nodes (`None`: nothing to fold) and the new
/// constants.
#[allow(clippy::type_complexity)]
fn fold_batch_norms(
    nodes: &[NodeProto],
    reads: &[Vec<String>],
    known: &HashMap<String, Tensor>,
    outputs: &[String],
) -> (Option<(Vec<NodeProto>, Vec<Vec<String>>)>, Vec<(String, Tensor)>) {
    let g = View::new(nodes, reads, known, outputs);
    let mut made = Vec::new();
    let mut gone = vec![false; nodes.len()];
    let mut replaced: HashMap<usize, (NodeProto, Vec<String>)> = HashMap::new();
    for c in 0..nodes.len() {
        let Some((bn, node, w, b)) = g.conv_batch_norm(c) else { continue };
        if gone[c] || replaced.contains_key(&bn) {
            continue;
        }
        let reads = node.input.clone();
        made.push((node.input[1].clone(), w));
        made.push((node.input[2].clone(), b));
        gone[c] = true;
        replaced.insert(bn, (node, reads));
    }
    if replaced.is_empty() {
        return (None, made);
    }
    let mut out = (Vec::new(), Vec::new());
    for (i, n) in nodes.iter().enumerate() {
        match (gone[i], replaced.remove(&i)) {
            (true, _) => {}
            (false, Some((node, r))) => {
                out.0.push(node);
                out.1.push(r);
            }
            (false, None) => {
                out.0.push(n.clone());
                out.1.push(reads[i].clone());
            }
        }
    }
    (Some(out), made)
}

fn fuse_chains(
    nodes: &[NodeProto],
    reads: &[Vec<String>],
    known: &HashMap<String, Tensor>,
    outputs: &[String],
) -> (Vec<NodeProto>, Vec<Vec<String>>) {
    let g = View::new(nodes, reads, known, outputs);
    let mut gone = vec![false; nodes.len()];
    let mut replaced: HashMap<usize, NodeProto> = HashMap::new();
    for i in 0..nodes.len() {
        let Some((chain, node)) =
            g.gelu(i).or_else(|| g.conv_act(i)).or_else(|| g.silu(i)).or_else(|| g.matmul_add(i))
        else {
            continue;
        };
        if chain.iter().any(|&c| gone[c] || replaced.contains_key(&c)) {
            continue;
        }
        let (&last, rest) = chain.split_last().expect("a chain has nodes");
        rest.iter().for_each(|&c| gone[c] = true);
        replaced.insert(last, node);
    }
    if replaced.is_empty() {
        return (nodes.to_vec(), reads.to_vec());
    }
    let mut out = (Vec::with_capacity(nodes.len()), Vec::with_capacity(nodes.len()));
    for (i, n) in nodes.iter().enumerate() {
        if gone[i] {
            continue;
        }
        match replaced.remove(&i) {
            Some(f) => {
                out.1.push(f.input.clone());
                out.0.push(f);
            }
            None => {
                out.0.push(n.clone());
                out.1.push(reads[i].clone());
            }
        }
    }
    out
}

/// Who produces and who reads each value.
struct View<'a> {
    nodes: &'a [NodeProto],
    known: &'a HashMap<String, Tensor>,
    producer: HashMap<&'a str, usize>,
    /// Readers per value; a graph output counts as a reader that is no node (`usize::MAX`).
    readers: HashMap<&'a str, Vec<usize>>,
}

impl<'a> View<'a> {
    fn new(nodes: &'a [NodeProto], reads: &'a [Vec<String>], known: &'a HashMap<String, Tensor>, outputs: &'a [String]) -> Self {
        let mut producer = HashMap::new();
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            n.output.iter().for_each(|o| {
                producer.insert(o.as_str(), i);
            });
            reads[i].iter().for_each(|r| readers.entry(r.as_str()).or_default().push(i));
        }
        outputs.iter().for_each(|o| readers.entry(o.as_str()).or_default().push(usize::MAX));
        View { nodes, known, producer, readers }
    }

    /// The node `i` if it is a plain ONNX `op` with one output (`None` for a graph output's
    /// reader mark).
    fn op(&self, i: usize, op: &str) -> Option<&'a NodeProto> {
        let n = self.nodes.get(i)?;
        (n.op_type == op && (n.domain.is_empty() || n.domain == "ai.onnx") && n.output.len() == 1).then_some(n)
    }

    /// The one node reading `value`, if exactly one node (and no graph output) does, once.
    fn sole_reader(&self, value: &str) -> Option<usize> {
        match self.readers.get(value)?.as_slice() {
            &[r] if r != usize::MAX => Some(r),
            _ => None,
        }
    }

    /// The value of a constant with one element, as f32: an initializer or a `Constant` node.
    fn scalar(&self, name: &str) -> Option<f32> {
        let t = match self.known.get(name) {
            Some(t) => t.clone(),
            None => {
                let c = self.op(*self.producer.get(name)?, "Constant")?;
                let a = c.attribute.first().filter(|_| c.attribute.len() == 1)?;
                match a.name.as_str() {
                    "value_float" => return Some(a.f),
                    "value" => from_proto(a.t.as_ref()?).ok()?,
                    _ => return None,
                }
            }
        };
        if t.elem_count() != 1 || !t.dtype().is_float() {
            return None;
        }
        t.flatten_all().ok()?.to_dtype(DType::F32).ok()?.to_vec1::<f32>().ok()?.first().copied()
    }

    fn is_scalar(&self, name: &str, want: f32) -> bool {
        self.scalar(name).is_some_and(|v| (v - want).abs() <= 1e-6 * want.abs().max(1.0))
    }

    /// The binary node `i`'s other input than `this`, if one of its two inputs is `this`.
    fn other<'n>(n: &'n NodeProto, this: &str) -> Option<&'n str> {
        match n.input.as_slice() {
            [a, b] if a == this => Some(b),
            [a, b] if b == this => Some(a),
            _ => None,
        }
    }

    /// The fused node replacing a chain: its inputs, the last node's output and name.
    fn fused(op_type: &str, inputs: &[&str], last: &NodeProto) -> NodeProto {
        NodeProto {
            op_type: op_type.into(),
            domain: DOMAIN.into(),
            name: last.name.clone(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: last.output.clone(),
            ..Default::default()
        }
    }

    /// GELU from its Erf node `e`.
    fn gelu(&self, e: usize) -> Option<(Vec<usize>, NodeProto)> {
        let erf = self.op(e, "Erf")?;
        let d = *self.producer.get(erf.input.first()?.as_str())?;
        let x = if let Some(div) = self.op(d, "Div") {
            (div.input.len() == 2 && self.is_scalar(&div.input[1], std::f32::consts::SQRT_2)).then(|| div.input[0].as_str())?
        } else {
            let mul = self.op(d, "Mul")?;
            match mul.input.as_slice() {
                [a, b] if self.is_scalar(b, std::f32::consts::FRAC_1_SQRT_2) => a.as_str(),
                [a, b] if self.is_scalar(a, std::f32::consts::FRAC_1_SQRT_2) => b.as_str(),
                _ => return None,
            }
        };
        (self.sole_reader(&erf.input[0])? == e).then_some(())?;
        let a = self.sole_reader(&erf.output[0])?;
        let add = self.op(a, "Add")?;
        self.is_scalar(Self::other(add, &erf.output[0])?, 1.0).then_some(())?;
        let m1 = self.sole_reader(&add.output[0])?;
        (Self::other(self.op(m1, "Mul")?, &add.output[0])? == x).then_some(())?;
        let m2 = self.sole_reader(&self.nodes[m1].output[0])?;
        let half = self.op(m2, "Mul")?;
        self.is_scalar(Self::other(half, &self.nodes[m1].output[0])?, 0.5).then_some(())?;
        Some((vec![d, e, a, m1, m2], Self::fused("Gelu", &[x], half)))
    }

    /// SiLU from its Sigmoid node `s`.
    fn silu(&self, s: usize) -> Option<(Vec<usize>, NodeProto)> {
        let sig = self.op(s, "Sigmoid")?;
        let x = sig.input.first()?;
        let m = self.sole_reader(&sig.output[0])?;
        let mul = self.op(m, "Mul")?;
        (Self::other(mul, &sig.output[0])? == x).then_some(())?;
        Some((vec![s, m], Self::fused("Silu", &[x], mul)))
    }

    /// A constant f32 tensor's values.
    fn values(&self, name: &str) -> Option<Vec<f32>> {
        let t = self.known.get(name).filter(|t| t.dtype() == DType::F32)?;
        t.flatten_all().ok()?.to_vec1::<f32>().ok()
    }

    /// A Conv with constant weights (and bias) whose output only an inference-mode
    /// BatchNormalization with constant parameters reads: that node's index, the Conv that
    /// replaces both, and its new weights and bias.
    fn conv_batch_norm(&self, c: usize) -> Option<(usize, NodeProto, Tensor, Tensor)> {
        let conv = self.op(c, "Conv")?;
        let w = self.known.get(conv.input.get(1)?.as_str()).filter(|w| w.dtype() == DType::F32 && w.rank() >= 3)?;
        let m = w.dims()[0];
        let bias = match conv.input.get(2).filter(|b| !b.is_empty()) {
            Some(b) => self.values(b).filter(|v| v.len() == m)?,
            None => vec![0.0; m],
        };
        let b = self.sole_reader(&conv.output[0])?;
        let bn = self.op(b, "BatchNormalization")?;
        let training = bn.attribute.iter().any(|a| a.name == "training_mode" && a.i != 0);
        if training || bn.input.len() != 5 || bn.input[0] != conv.output[0] {
            return None;
        }
        let eps = bn.attribute.iter().find(|a| a.name == "epsilon").map_or(1e-5, |a| a.f) as f64;
        let p: Vec<Vec<f32>> = bn.input[1..].iter().map(|n| self.values(n).filter(|v| v.len() == m)).collect::<Option<_>>()?;
        let (scale, shift, mean, var) = (&p[0], &p[1], &p[2], &p[3]);
        let s: Vec<f64> = (0..m).map(|i| scale[i] as f64 / (var[i] as f64 + eps).sqrt()).collect();
        let per = w.elem_count() / m.max(1);
        let wv = w.flatten_all().ok()?.to_vec1::<f32>().ok()?;
        let w2: Vec<f32> = wv.iter().enumerate().map(|(i, &v)| (v as f64 * s[i / per.max(1)]) as f32).collect();
        let b2: Vec<f32> = (0..m).map(|i| ((bias[i] as f64 - mean[i] as f64) * s[i] + shift[i] as f64) as f32).collect();
        let dev = w.device();
        let (w2, b2) = (Tensor::from_vec(w2, w.dims(), dev).ok()?, Tensor::from_vec(b2, m, dev).ok()?);
        let mut node = conv.clone();
        let out = &bn.output[0];
        node.input = vec![conv.input[0].clone(), format!("{out}::wick.fused.w"), format!("{out}::wick.fused.b")];
        node.output = vec![out.clone()];
        node.name = bn.name.clone();
        Some((b, node, w2, b2))
    }

    /// A Conv and the activation that alone reads it.
    fn conv_act(&self, c: usize) -> Option<(Vec<usize>, NodeProto)> {
        let conv = self.op(c, "Conv")?;
        let out = conv.output[0].as_str();
        let readers = self.readers.get(out)?;
        let str_attr = |name: &str, v: &str| AttributeProto { name: name.into(), s: v.into(), r#type: 3, ..Default::default() };
        let float_attr = |name: &str, f: f32| AttributeProto { name: name.into(), f, r#type: 1, ..Default::default() };
        let (chain, last, attrs) = match readers.as_slice() {
            &[r] if self.op(r, "Relu").is_some() => (vec![c, r], r, vec![str_attr("activation", "relu")]),
            &[r] if self.op(r, "Clip").is_some() => {
                let clip = &self.nodes[r];
                let bound = |i: usize, attr: &str, default: f32| -> Option<f32> {
                    match clip.input.get(i).filter(|n| !n.is_empty()) {
                        Some(n) => self.scalar(n),
                        None => Some(clip.attribute.iter().find(|a| a.name == attr).map_or(default, |a| a.f)),
                    }
                };
                let (lo, hi) = (bound(1, "min", f32::NEG_INFINITY)?, bound(2, "max", f32::INFINITY)?);
                (vec![c, r], r, vec![str_attr("activation", "clip"), float_attr("min", lo), float_attr("max", hi)])
            }
            &[a, b] if a != usize::MAX && b != usize::MAX => {
                let (s, m) = if self.op(a, "Sigmoid").is_some() { (a, b) } else { (b, a) };
                let sig = self.op(s, "Sigmoid")?;
                (self.sole_reader(&sig.output[0])? == m).then_some(())?;
                (Self::other(self.op(m, "Mul")?, &sig.output[0])? == out).then_some(())?;
                (vec![c, s, m], m, vec![str_attr("activation", "silu")])
            }
            _ => return None,
        };
        let inputs: Vec<&str> = conv.input.iter().map(String::as_str).collect();
        let mut node = Self::fused("ConvAct", &inputs, &self.nodes[last]);
        node.attribute = conv.attribute.iter().cloned().chain(attrs).collect();
        Some((chain, node))
    }

    /// A MatMul by a constant matrix and the Add of a constant bias along its last dim.
    fn matmul_add(&self, m: usize) -> Option<(Vec<usize>, NodeProto)> {
        let mm = self.op(m, "MatMul")?;
        let [a, w] = mm.input.as_slice() else { return None };
        let wt = self.known.get(w.as_str()).filter(|t| t.rank() == 2 && t.dtype() == DType::F32)?;
        let n = wt.dims()[1];
        let s = self.sole_reader(&mm.output[0])?;
        let add = self.op(s, "Add")?;
        let bias = Self::other(add, &mm.output[0])?;
        let b = self.known.get(bias).filter(|b| b.dtype() == DType::F32)?;
        // The bias must broadcast along the last dim only, and not widen the product's rank.
        let along_last = b.dims().last() == Some(&n) && b.dims().iter().rev().skip(1).all(|&d| d == 1);
        (along_last && b.rank() <= 2).then_some(())?;
        Some((vec![m, s], Self::fused("MatMulAdd", &[a, w, bias], add)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: output.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    fn run(nodes: &[NodeProto], known: &HashMap<String, Tensor>, outputs: &[&str]) -> Vec<NodeProto> {
        let reads: Vec<Vec<String>> = nodes.iter().map(|n| n.input.clone()).collect();
        let outputs: Vec<String> = outputs.iter().map(|s| s.to_string()).collect();
        fuse(nodes, &reads, &mut known.clone(), &outputs).0
    }

    #[test]
    fn batch_norms_fold_into_the_conv_before_it() {
        let t = |v: &[f32]| Tensor::new(v, &Device::Cpu).unwrap();
        let mut known: HashMap<String, Tensor> = [
            ("w", Tensor::new(&[[[[1f32]]], [[[2.]]]], &Device::Cpu).unwrap()),
            ("b", t(&[0.5, 0.0])),
            ("scale", t(&[2.0, 1.0])),
            ("shift", t(&[1.0, -1.0])),
            ("mean", t(&[0.5, 1.0])),
            ("var", t(&[3.0, 0.0])),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        let mut bn = node("BatchNormalization", &["c", "scale", "shift", "mean", "var"], "y");
        bn.attribute.push(AttributeProto { name: "epsilon".into(), f: 1.0, r#type: 1, ..Default::default() });
        let nodes = [node("Conv", &["x", "w", "b"], "c"), bn, node("Relu", &["y"], "z")];
        let reads: Vec<Vec<String>> = nodes.iter().map(|n| n.input.clone()).collect();
        let (out, _) = fuse(&nodes, &reads, &mut known, &["z".to_string()]);
        // Folded, then the Relu joins: one ConvAct reading the new constants.
        assert_eq!((out.len(), out[0].op_type.as_str()), (1, "ConvAct"));
        let w = known[&out[0].input[1]].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = known[&out[0].input[2]].to_vec1::<f32>().unwrap();
        // s = scale / sqrt(var + 1) = [1, 1]; w' = w·s; b' = (b - mean)·s + shift.
        assert_eq!(w, vec![1.0, 2.0]);
        assert_eq!(b, vec![1.0, -2.0]);
    }

    fn scalars(pairs: &[(&str, f32)]) -> HashMap<String, Tensor> {
        pairs.iter().map(|(n, v)| (n.to_string(), Tensor::new(*v, &Device::Cpu).unwrap())).collect()
    }

    fn gelu_chain() -> Vec<NodeProto> {
        vec![
            node("Div", &["x", "sqrt2"], "d"),
            node("Erf", &["d"], "e"),
            node("Add", &["e", "one"], "a"),
            node("Mul", &["x", "a"], "m"),
            node("Mul", &["m", "half"], "y"),
        ]
    }

    #[test]
    fn gelu_and_silu_chains_become_one_node() {
        let known = scalars(&[("sqrt2", std::f32::consts::SQRT_2), ("one", 1.0), ("half", 0.5)]);
        let out = run(&gelu_chain(), &known, &["y"]);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].op_type.as_str(), out[0].domain.as_str()), ("Gelu", DOMAIN));
        assert_eq!((out[0].input.clone(), out[0].output.clone()), (vec!["x".to_string()], vec!["y".to_string()]));

        let silu = [node("Sigmoid", &["x"], "s"), node("Mul", &["s", "x"], "y")];
        let out = run(&silu, &known, &["y"]);
        assert_eq!((out.len(), out[0].op_type.as_str()), (1, "Silu"));
    }

    #[test]
    fn convs_take_their_activation() {
        let mut conv = node("Conv", &["x", "w", "b"], "c");
        conv.attribute.push(AttributeProto { name: "group".into(), i: 2, r#type: 2, ..Default::default() });
        let silu = [conv.clone(), node("Sigmoid", &["c"], "s"), node("Mul", &["c", "s"], "y")];
        let out = run(&silu, &HashMap::new(), &["y"]);
        assert_eq!((out.len(), out[0].op_type.as_str(), out[0].output[0].as_str()), (1, "ConvAct", "y"));
        assert_eq!(out[0].input, vec!["x", "w", "b"]);
        let names: Vec<&str> = out[0].attribute.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["group", "activation"]);
        let known = scalars(&[("lo", 0.0), ("hi", 6.0)]);
        let clip = [conv.clone(), node("Clip", &["c", "lo", "hi"], "y")];
        let out = run(&clip, &known, &["y"]);
        assert_eq!(out[0].attribute.iter().find(|a| a.name == "max").map(|a| a.f), Some(6.0));
        // The conv output also read elsewhere, or itself the graph output: no fusion.
        let relu = [conv.clone(), node("Relu", &["c"], "y")];
        assert_eq!(run(&relu, &known, &["y", "c"]).len(), 2);
        assert_eq!(run(&[conv], &known, &["c"]).len(), 1);
    }

    #[test]
    fn chains_whose_intermediates_are_read_elsewhere_stay() {
        let known = scalars(&[("sqrt2", std::f32::consts::SQRT_2), ("one", 1.0), ("half", 0.5)]);
        // The Erf output is also a graph output.
        assert_eq!(run(&gelu_chain(), &known, &["y", "e"]).len(), 5);
        // A wrong constant.
        let wrong = scalars(&[("sqrt2", 1.5), ("one", 1.0), ("half", 0.5)]);
        assert_eq!(run(&gelu_chain(), &wrong, &["y"]).len(), 5);
        // The sigmoid is read twice.
        let silu = [node("Sigmoid", &["x"], "s"), node("Mul", &["s", "x"], "y"), node("Neg", &["s"], "z")];
        assert_eq!(run(&silu, &HashMap::new(), &["y", "z"]).len(), 3);
    }

    #[test]
    fn matmul_and_bias_fuse_only_for_constant_weights_and_a_last_dim_bias() {
        let mut known = HashMap::new();
        known.insert("w".to_string(), Tensor::zeros((4, 3), DType::F32, &Device::Cpu).unwrap());
        known.insert("b".to_string(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
        known.insert("col".to_string(), Tensor::zeros((2, 1), DType::F32, &Device::Cpu).unwrap());
        let chain = [node("MatMul", &["x", "w"], "p"), node("Add", &["b", "p"], "y")];
        let out = run(&chain, &known, &["y"]);
        assert_eq!((out.len(), out[0].op_type.as_str()), (1, "MatMulAdd"));
        assert_eq!(out[0].input, vec!["x", "w", "b"]);
        let col = [node("MatMul", &["x", "w"], "p"), node("Add", &["p", "col"], "y")];
        assert_eq!(run(&col, &known, &["y"]).len(), 2);
        let dynamic = [node("MatMul", &["x", "v"], "p"), node("Add", &["p", "b"], "y")];
        assert_eq!(run(&dynamic, &known, &["y"]).len(), 2);
    }
}
