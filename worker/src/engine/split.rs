//! Weights wider than one GPU binding, cut at load. A WebGPU kernel binds each operand whole,
//! and a device binds at most `maxStorageBufferBindingSize` bytes (128 MiB by default, 1 GiB on
//! many adapters) — less than a large model's embedding table or LM head. Before the loader
//! plans its streams, [`split_wide_weights`] cuts each such initializer along its first axis into
//! parts that fit and rewrites the nodes that read it into nodes that read the parts:
//!
//! - `MatMul(a, w)`, `w` `[K, N]` cut along K: the products of `a`'s matching column slices
//!   (`Slice` on the last axis, opset ≥ 10) with the parts, summed (`Add`);
//! - `Gemm(a, b)` with `transB = 1`, `b` `[N, K]` cut along N (with a bias `[N]`, cut alike):
//!   the parts' products side by side (`Concat` on axis 1);
//! - `com.microsoft MatMulNBits`, packed weights `[N, blocks, blob]` cut along N with their
//!   scales, zero points and bias: the parts' outputs side by side (`Concat` on the last axis);
//! - `Gather(w, i)` on axis 0 (an embedding table): `wick.split Gather(i, w₀, w₁, …)` reads each
//!   index from the part that holds its row (the CPU kernel in `ops/index.rs`, the GPU one in
//!   `gpu/ops/index.rs`: one gather per part into the same output).
//!
//! A part of an external tensor is a byte range of the same file, so the loader streams each
//! part straight into its own buffer; embedded parts are cut from the proto. A weight some other
//! node reads (or a subgraph, or a graph output) stays whole: the placement then says by name
//! that it is too large.

use std::collections::HashSet;
use std::ops::Range;

use candle_onnx::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataLocation, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto,
};

use super::tensor::{byte_len, dims_of_proto, onnx_type};
use crate::error::Result;

/// The domain of the nodes that read a cut weight's parts; no model names it.
pub const DOMAIN: &str = "wick.split";

/// One weight cut into parts: its name and the parts' names, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    pub weight: String,
    pub parts: Vec<String>,
}

/// Cuts every weight of `model` larger than `limit` bytes whose readers can all read parts, and
/// rewrites those readers. Returns what was cut.
pub fn split_wide_weights(model: &mut ModelProto, limit: u64) -> Result<Vec<Cut>> {
    let default_opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    let Some(graph) = model.graph.as_mut() else { return Ok(Vec::new()) };
    let mut cuts = Vec::new();
    let wide: Vec<usize> = (0..graph.initializer.len())
        .filter(|&i| bytes_of(&graph.initializer[i]).is_some_and(|b| b > limit))
        .collect();
    let mut gone = HashSet::new();
    for i in wide {
        let weight = graph.initializer[i].name.clone();
        let Some(rewrite) = plan_rewrite(graph, &weight, limit, default_opset)? else { continue };
        for (reader, nodes) in rewrite.nodes.into_iter().rev() {
            graph.node.splice(reader..=reader, nodes);
        }
        cuts.push(Cut { weight: weight.clone(), parts: rewrite.parts });
        graph.initializer.extend(rewrite.initializers);
        gone.extend(rewrite.replaced);
    }
    if cuts.is_empty() {
        return Ok(cuts);
    }
    // The cut weights (and their scales, zero points, biases) no node reads any more.
    let read: HashSet<&str> = graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let dropped: HashSet<String> = gone.into_iter().filter(|n: &String| !read.contains(n.as_str())).collect();
    graph.initializer.retain(|t| !dropped.contains(&t.name));
    graph.input.retain(|v| !dropped.contains(&v.name));
    if !model.opset_import.iter().any(|o| o.domain == DOMAIN) {
        model.opset_import.push(OperatorSetIdProto { domain: DOMAIN.into(), version: 1 });
    }
    Ok(cuts)
}

/// The byte size of an initializer, when its element type has whole bytes.
fn bytes_of(t: &TensorProto) -> Option<u64> {
    if t.dims.len() < 2 || t.data_type == 8 /* STRING */ {
        return None;
    }
    let dims = dims_of_proto(t).ok()?;
    let bytes = byte_len(t.data_type, &dims).ok()?;
    // Packed sub-byte types (int4, float4) would need cutting inside a byte.
    (bytes == dims.iter().product::<usize>() * byte_len(t.data_type, &[1]).ok()?).then_some(bytes as u64)
}

/// What cutting one weight does to the graph.
struct Rewrite {
    parts: Vec<String>,
    /// Per reader (node index, ascending): the nodes replacing it.
    nodes: Vec<(usize, Vec<NodeProto>)>,
    initializers: Vec<TensorProto>,
    /// Initializers the rewritten readers no longer read.
    replaced: Vec<String>,
}

/// How to rewrite every reader of `weight`, or `None` when one of them cannot read parts.
fn plan_rewrite(graph: &GraphProto, weight: &str, limit: u64, opset: i64) -> Result<Option<Rewrite>> {
    let readers: Vec<usize> = (0..graph.node.len()).filter(|&i| graph.node[i].input.iter().any(|x| x == weight)).collect();
    let escapes = graph.output.iter().any(|o| o.name == weight)
        || graph.node.iter().any(|n| n.attribute.iter().any(|a| subgraphs_read(a, weight)));
    if readers.is_empty() || escapes {
        return Ok(None);
    }
    let init = |name: &str| graph.initializer.iter().find(|t| t.name == name && !name.is_empty());
    let Some(w) = init(weight) else { return Ok(None) };
    let dims = dims_of_proto(w)?;
    let bytes = byte_len(w.data_type, &dims)? as u64;
    let row_bytes = (bytes / dims[0].max(1) as u64).max(1);
    // As few parts as fit, of even size: a part of exactly the limit is the largest buffer the
    // device makes, which some (SwiftShader) fail to allocate.
    let mut count = bytes.div_ceil(limit.max(1)).max(1) as usize;
    let mut rows_per_part = dims[0].div_ceil(count).max(1);
    while rows_per_part > 1 && rows_per_part as u64 * row_bytes > limit {
        count += 1;
        rows_per_part = dims[0].div_ceil(count);
    }
    let ranges: Vec<Range<usize>> =
        (0..dims[0]).step_by(rows_per_part).map(|r| r..(r + rows_per_part).min(dims[0])).collect();
    if ranges.len() < 2 {
        return Ok(None);
    }
    let Some(parts) = cut(w, dims[0], &ranges) else { return Ok(None) };
    let part_names: Vec<String> = parts.iter().map(|p| p.name.clone()).collect();
    let mut rewrite =
        Rewrite { parts: part_names.clone(), nodes: Vec::new(), initializers: parts, replaced: vec![weight.to_string()] };
    for r in readers {
        let node = &graph.node[r];
        let f32_weight = w.data_type == onnx_type::FLOAT;
        let nodes = match (node.domain.as_str(), node.op_type.as_str()) {
            // Before opset 10 Slice's axes could not count from the end: A's rank is unknown here.
            ("" | "ai.onnx", "MatMul") if f32_weight && dims.len() == 2 && only_at(node, weight, 1) && opset >= 10 => {
                matmul(node, &part_names, &ranges, &mut rewrite.initializers)
            }
            ("" | "ai.onnx", "Gemm") if f32_weight && dims.len() == 2 && only_at(node, weight, 1) => {
                let Some(nodes) = gemm(node, graph, &part_names, &ranges, &mut rewrite)? else { return Ok(None) };
                nodes
            }
            ("" | "ai.onnx", "Gather") if f32_weight && only_at(node, weight, 0) && int_attr(node, "axis", 0) == 0 => {
                let mut input = vec![node.input[1].clone()];
                input.extend(part_names.iter().cloned());
                vec![NodeProto { domain: DOMAIN.into(), input, ..named(node, "Gather", "") }]
            }
            ("com.microsoft", "MatMulNBits") if only_at(node, weight, 1) && node.input.get(4).is_none_or(|g| g.is_empty()) => {
                let Some(nodes) = matmul_nbits(node, graph, dims[0], &part_names, &ranges, &mut rewrite)? else {
                    return Ok(None);
                };
                nodes
            }
            _ => return Ok(None),
        };
        rewrite.nodes.push((r, nodes));
    }
    Ok(Some(rewrite))
}

/// Whether `node` reads `weight` as input `at` and nowhere else.
fn only_at(node: &NodeProto, weight: &str, at: usize) -> bool {
    node.input.iter().enumerate().all(|(i, x)| (x == weight) == (i == at))
}

/// Whether a subgraph in `a` (If, Loop, Scan bodies) names `weight`.
fn subgraphs_read(a: &AttributeProto, weight: &str) -> bool {
    a.g.iter().chain(&a.graphs).any(|g| {
        g.node.iter().any(|n| n.input.iter().any(|x| x == weight) || n.attribute.iter().any(|a| subgraphs_read(a, weight)))
    })
}

fn int_attr(node: &NodeProto, name: &str, default: i64) -> i64 {
    node.attribute.iter().find(|a| a.name == name).map_or(default, |a| a.i)
}

/// A node standing for part of `node`: its attributes, a derived name and outputs.
fn named(node: &NodeProto, op_type: &str, suffix: &str) -> NodeProto {
    NodeProto {
        op_type: op_type.into(),
        domain: String::new(),
        name: format!("{}{suffix}", node.name),
        input: Vec::new(),
        output: if suffix.is_empty() { node.output.clone() } else { vec![format!("{}{suffix}", node.output[0])] },
        attribute: node.attribute.clone(),
        ..Default::default()
    }
}

/// An int64 constant `[v]` named `name`.
fn int64_initializer(name: String, v: i64) -> TensorProto {
    TensorProto { name, dims: vec![1], data_type: onnx_type::INT64, int64_data: vec![v], ..Default::default() }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i: v, r#type: AttributeType::Int as i32, ..Default::default() }
}

/// `a @ w` = Σᵢ `a[…, kᵢ] @ wᵢ`.
fn matmul(node: &NodeProto, parts: &[String], ranges: &[Range<usize>], consts: &mut Vec<TensorProto>) -> Vec<NodeProto> {
    let out = &node.output[0];
    let mut nodes = Vec::new();
    for (i, (part, k)) in parts.iter().zip(ranges).enumerate() {
        let mut slice = named(node, "Slice", &format!("::split{i}.a"));
        slice.attribute.clear();
        slice.input = vec![node.input[0].clone()];
        for (what, v) in [("starts", k.start as i64), ("ends", k.end as i64), ("axes", -1)] {
            let name = format!("{out}::split{i}.{what}");
            consts.push(int64_initializer(name.clone(), v));
            slice.input.push(name);
        }
        let mut product = named(node, "MatMul", &format!("::split{i}"));
        product.input = vec![slice.output[0].clone(), part.clone()];
        nodes.push(slice);
        nodes.push(product);
    }
    let mut sum = format!("{out}::split0");
    for i in 1..parts.len() {
        let last = i + 1 == parts.len();
        let suffix = if last { String::new() } else { format!("::split.sum{i}") };
        let mut add = named(node, "Add", &suffix);
        add.attribute.clear();
        add.input = vec![sum, format!("{out}::split{i}")];
        sum = add.output[0].clone();
        nodes.push(add);
    }
    nodes
}

/// `Gemm(a, b, c)`, `transB = 1`: the parts' Gemms side by side, each with its slice of a
/// per-column bias.
fn gemm(node: &NodeProto, graph: &GraphProto, parts: &[String], ranges: &[Range<usize>], rewrite: &mut Rewrite) -> Result<Option<Vec<NodeProto>>> {
    if int_attr(node, "transB", 0) != 1 {
        return Ok(None);
    }
    let n: usize = ranges.last().map_or(0, |r| r.end);
    let bias = match node.input.get(2).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match graph.initializer.iter().find(|t| &t.name == c) {
            Some(t) if t.dims == [n as i64] => match cut(t, n, ranges) {
                Some(parts) => Some((c.clone(), parts)),
                None => return Ok(None),
            },
            _ => return Ok(None), // a bias broadcast otherwise would need cutting by column
        },
    };
    let mut nodes = Vec::new();
    let mut pieces = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let mut g = named(node, "Gemm", &format!("::split{i}"));
        g.input = vec![node.input[0].clone(), part.clone()];
        if let Some((_, biases)) = &bias {
            g.input.push(biases[i].name.clone());
        }
        pieces.push(g.output[0].clone());
        nodes.push(g);
    }
    if let Some((name, biases)) = bias {
        rewrite.initializers.extend(biases);
        rewrite.replaced.push(name);
    }
    let mut concat = named(node, "Concat", "");
    concat.attribute = vec![int("axis", 1)];
    concat.input = pieces;
    nodes.push(concat);
    Ok(Some(nodes))
}

/// MatMulNBits with its packed weights cut along N: each part with its rows of the scales, zero
/// points and bias, the outputs side by side.
fn matmul_nbits(
    node: &NodeProto,
    graph: &GraphProto,
    n: usize,
    parts: &[String],
    ranges: &[Range<usize>],
    rewrite: &mut Rewrite,
) -> Result<Option<Vec<NodeProto>>> {
    // Inputs: a, b, scales, zero_points, g_idx (refused above), bias — each present one cut alike.
    let mut companions: Vec<Option<Vec<String>>> = vec![None; node.input.len()];
    for at in [2, 3, 5] {
        let Some(name) = node.input.get(at).filter(|x| !x.is_empty()) else { continue };
        let Some(t) = graph.initializer.iter().find(|t| &t.name == name) else { return Ok(None) };
        let Some(cut_parts) = cut(t, n, ranges) else { return Ok(None) };
        companions[at] = Some(cut_parts.iter().map(|p| p.name.clone()).collect());
        rewrite.initializers.extend(cut_parts);
        rewrite.replaced.push(name.clone());
    }
    let mut nodes = Vec::new();
    let mut pieces = Vec::new();
    for (i, (part, rows)) in parts.iter().zip(ranges).enumerate() {
        let mut m = named(node, "MatMulNBits", &format!("::split{i}"));
        m.domain = node.domain.clone();
        for a in &mut m.attribute {
            if a.name == "N" {
                a.i = rows.len() as i64;
            }
        }
        m.input = node
            .input
            .iter()
            .enumerate()
            .map(|(at, x)| match (at, &companions[at]) {
                (1, _) => part.clone(),
                (_, Some(names)) => names[i].clone(),
                _ => x.clone(),
            })
            .collect();
        pieces.push(m.output[0].clone());
        nodes.push(m);
    }
    let mut concat = named(node, "Concat", "");
    concat.attribute = vec![int("axis", -1)];
    concat.input = pieces;
    nodes.push(concat);
    Ok(Some(nodes))
}

/// `t` cut into `ranges` of its `rows` rows (a row = `t`'s elements / `rows`: `t` may be `[rows,
/// …]` or flat). `None` when its data cannot be cut here (strings, sub-byte types, segments).
fn cut(t: &TensorProto, rows: usize, ranges: &[Range<usize>]) -> Option<Vec<TensorProto>> {
    let dims = dims_of_proto(t).ok()?;
    let elems: usize = dims.iter().product();
    if rows == 0 || !elems.is_multiple_of(rows) || t.segment.is_some() {
        return None;
    }
    let per_row = elems / rows;
    let elem_bytes = byte_len(t.data_type, &[1]).ok()?;
    if byte_len(t.data_type, &dims).ok()? != elems * elem_bytes {
        return None;
    }
    let row_bytes = (per_row * elem_bytes) as u64;
    let external = t.data_location == DataLocation::External as i32;
    let base_offset = if external {
        t.external_data.iter().find(|e| e.key == "offset").map_or(Some(0), |e| e.value.parse::<u64>().ok())?
    } else {
        0
    };
    let mut parts = Vec::new();
    for (i, r) in ranges.iter().enumerate() {
        let mut p = TensorProto {
            name: format!("{}::part{i}", t.name),
            data_type: t.data_type,
            dims: if dims.first() == Some(&rows) {
                std::iter::once(r.len() as i64).chain(t.dims[1..].iter().copied()).collect()
            } else if dims.len() == 1 {
                vec![(r.len() * per_row) as i64]
            } else {
                return None;
            },
            data_location: t.data_location,
            ..Default::default()
        };
        let (e0, e1) = (r.start * per_row, r.end * per_row);
        if external {
            p.external_data = t
                .external_data
                .iter()
                .filter(|e| e.key != "offset" && e.key != "length" && e.key != "checksum")
                .cloned()
                .collect();
            let entry = |key: &str, v: u64| candle_onnx::onnx::StringStringEntryProto { key: key.into(), value: v.to_string() };
            p.external_data.push(entry("offset", base_offset + r.start as u64 * row_bytes));
            p.external_data.push(entry("length", r.len() as u64 * row_bytes));
        } else if !t.raw_data.is_empty() {
            p.raw_data = t.raw_data.get(e0 * elem_bytes..e1 * elem_bytes)?.to_vec();
        } else if !t.float_data.is_empty() {
            p.float_data = t.float_data.get(e0..e1)?.to_vec();
        } else if !t.int32_data.is_empty() {
            p.int32_data = t.int32_data.get(e0..e1)?.to_vec();
        } else if !t.int64_data.is_empty() {
            p.int64_data = t.int64_data.get(e0..e1)?.to_vec();
        } else if !t.double_data.is_empty() {
            p.double_data = t.double_data.get(e0..e1)?.to_vec();
        } else if !t.uint64_data.is_empty() {
            p.uint64_data = t.uint64_data.get(e0..e1)?.to_vec();
        } else {
            return None;
        }
        parts.push(p);
    }
    Some(parts)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::collections::HashMap;
    use std::rc::Rc;

    use candle_core::{DType, Device, Tensor};
    use candle_onnx::onnx::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, ValueInfoProto};

    use super::*;
    use crate::engine::ops::nbits::tests::cases;
    use crate::engine::{Model, Resident};
    use crate::loader::ExternalPlan;

    /// `t` embedded as raw little-endian bytes (f32 or u8).
    fn raw(name: &str, t: &Tensor) -> TensorProto {
        let (data_type, raw_data) = match t.dtype() {
            DType::F32 => (onnx_type::FLOAT, t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect()),
            DType::U8 => (onnx_type::UINT8, t.flatten_all().unwrap().to_vec1::<u8>().unwrap()),
            other => panic!("{other:?}"),
        };
        TensorProto { name: name.into(), dims: t.dims().iter().map(|&d| d as i64).collect(), data_type, raw_data, ..Default::default() }
    }

    fn node(op_type: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op_type.into(),
            name: output.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    }

    fn model(node: Vec<NodeProto>, initializer: Vec<TensorProto>, inputs: &[&str], outputs: &[&str]) -> ModelProto {
        let info = |n: &&str| ValueInfoProto { name: n.to_string(), ..Default::default() };
        let opset = |domain: &str, version| OperatorSetIdProto { domain: domain.into(), version };
        ModelProto {
            ir_version: 8,
            opset_import: vec![opset("", 13), opset("com.microsoft", 1)],
            graph: Some(GraphProto {
                node,
                initializer,
                input: inputs.iter().map(info).collect(),
                output: outputs.iter().map(info).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn run(proto: ModelProto, feeds: &HashMap<String, Tensor>) -> Vec<Vec<f32>> {
        let model = Model::build(proto, HashMap::new()).unwrap();
        let out = model.run(feeds.clone(), None).unwrap();
        out.outputs.iter().map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    }

    fn close(got: &[Vec<f32>], want: &[Vec<f32>], what: &str) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.len(), w.len(), "{what}");
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what}: element {i}: {a} vs {b}");
            }
        }
    }

    fn random(dims: &[usize], seed: u64) -> Tensor {
        let n: usize = dims.iter().product();
        let mut s = seed;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    /// A tied embedding table `e` [10, 8] (Gather, and a Gemm with transB — with and without a
    /// bias) and a MatMul weight `w` [8, 6], every one wider than 96 bytes.
    fn tied() -> (ModelProto, HashMap<String, Tensor>) {
        let ids = Tensor::from_vec(vec![0i64, 9, -1, 3, 3, 5], (2, 3), &Device::Cpu).unwrap();
        let feeds = HashMap::from([
            ("ids".to_string(), ids),
            ("h".to_string(), random(&[3, 8], 1)),
            ("x".to_string(), random(&[2, 3, 8], 2)),
        ]);
        let t_b = || vec![int("transB", 1)];
        let nodes = vec![
            node("Gather", &["e", "ids"], "emb", vec![]),
            node("Gemm", &["h", "e"], "logits", t_b()),
            node("Gemm", &["h", "e", "c"], "biased", [t_b(), vec![AttributeProto { name: "alpha".into(), f: 0.5, r#type: AttributeType::Float as i32, ..Default::default() }]].concat()),
            node("MatMul", &["x", "w"], "y", vec![]),
        ];
        let inits = vec![raw("e", &random(&[10, 8], 3)), raw("c", &random(&[10], 4)), raw("w", &random(&[8, 6], 5))];
        (model(nodes, inits, &["ids", "h", "x"], &["emb", "logits", "biased", "y"]), feeds)
    }

    #[test]
    fn matmul_gemm_and_gather_read_the_parts_as_they_read_the_whole() {
        let (whole, feeds) = tied();
        let mut cut_model = whole.clone();
        let cuts = split_wide_weights(&mut cut_model, 96).unwrap();
        let parts = |w: &str| cuts.iter().find(|c| c.weight == w).map(|c| c.parts.len());
        // e: 32-byte rows, 3 a part → 3 + 3 + 3 + 1 rows; w: 24-byte rows, 4 a part.
        assert_eq!((parts("e"), parts("w"), parts("c")), (Some(4), Some(2), None), "{cuts:?}");
        let graph = cut_model.graph.as_ref().unwrap();
        for gone in ["e", "w", "c"] {
            assert!(!graph.initializer.iter().any(|t| t.name == gone), "{gone} is no initializer any more");
            assert!(!graph.node.iter().any(|n| n.input.iter().any(|x| x == gone)), "no node reads {gone}");
        }
        assert!(graph.initializer.iter().all(|t| bytes_of(t).is_none_or(|b| b <= 96)));
        let want = run(whole, &feeds);
        close(&run(cut_model.clone(), &feeds), &want, "CPU");

        // On the GPU: the split Gather, the Gemms and the MatMul's slices and sum, each part bound
        // alone.
        let gpu = Rc::new(wick_gpu::Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}")));
        let model = Model::build(cut_model, HashMap::new()).unwrap();
        let resident = Resident::new(gpu);
        let (out, stats) = pollster::block_on(model.run_gpu(&resident, feeds.clone(), None)).unwrap();
        let got: Vec<Vec<f32>> = out.outputs.iter().map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect();
        close(&got, &want, "GPU");
        assert!(stats.cpu_ops.is_empty(), "every step on the GPU: {stats:?}");
    }

    #[test]
    fn a_weight_another_op_reads_stays_whole() {
        let (mut proto, _) = tied();
        let graph = proto.graph.as_mut().unwrap();
        graph.node.push(node("Add", &["e", "e"], "twice", vec![]));
        let cuts = split_wide_weights(&mut proto, 96).unwrap();
        assert_eq!(cuts.iter().map(|c| c.weight.as_str()).collect::<Vec<_>>(), ["w"]);
        assert!(proto.graph.unwrap().initializer.iter().any(|t| t.name == "e"));
    }

    /// Every case of onnxruntime's MatMulNBits fixture with N ≥ 2, its packed weights cut along N
    /// into parts of at most a third of it: onnxruntime's outputs, on the CPU and on the GPU.
    #[test]
    fn matmul_nbits_parts_match_onnxruntime() {
        let gpu = Rc::new(wick_gpu::Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}")));
        let mut checked = 0;
        for c in cases().iter().filter(|c| c.d.n >= 2) {
            let what = format!("bits {} block {} K {} N {} M {}", c.d.bits, c.d.block, c.d.k, c.d.n, c.m);
            let names = ["a", "b", "scales", "zero_points", "", "bias"];
            let input: Vec<&str> = names.iter().zip(&c.inputs).map(|(n, t)| if t.is_some() { *n } else { "" }).collect();
            let attrs = vec![int("K", c.d.k as i64), int("N", c.d.n as i64), int("bits", c.d.bits as i64), int("block_size", c.d.block as i64)];
            let mut n = node("MatMulNBits", &input, "y", attrs);
            n.domain = "com.microsoft".into();
            let inits = names.iter().zip(&c.inputs).skip(1).filter_map(|(name, t)| Some(raw(name, t.as_ref()?))).collect();
            let mut proto = model(vec![n], inits, &["a"], &["y"]);
            let b = c.inputs[1].as_ref().unwrap();
            let limit = (b.elem_count() / c.d.n * (c.d.n / 3).max(1)) as u64;
            let cuts = split_wide_weights(&mut proto, limit).unwrap();
            assert!(cuts.len() == 1 && cuts[0].parts.len() >= 2, "{what}: {cuts:?}");
            let feeds = HashMap::from([("a".to_string(), c.inputs[0].clone().unwrap())]);
            let model = Model::build(proto, HashMap::new()).unwrap();
            let cpu = model.run(feeds.clone(), None).unwrap().outputs[0].1.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let resident = Resident::new(gpu.clone());
            let (out, _) = pollster::block_on(model.run_gpu(&resident, feeds, None)).expect(&what);
            let on_gpu = out.outputs[0].1.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for got in [&cpu, &on_gpu] {
                assert_eq!(got.len(), c.want.len(), "{what}");
                for (i, (g, w)) in got.iter().zip(&c.want).enumerate() {
                    assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{what}: element {i}: got {g}, want {w}");
                }
            }
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} cases");
    }

    #[test]
    fn external_parts_are_byte_ranges_of_the_same_file() {
        let entry = |k: &str, v: &str| candle_onnx::onnx::StringStringEntryProto { key: k.into(), value: v.into() };
        let t = TensorProto {
            name: "w".into(),
            dims: vec![10, 4],
            data_type: onnx_type::FLOAT,
            data_location: DataLocation::External as i32,
            external_data: vec![entry("location", "w.bin"), entry("offset", "100"), entry("length", "160"), entry("checksum", "x")],
            ..Default::default()
        };
        let parts = cut(&t, 10, &[0..3, 3..10]).unwrap();
        let graph = GraphProto { initializer: parts, ..Default::default() };
        let plan = ExternalPlan::from_graph(&graph).unwrap();
        let placed: Vec<(String, Vec<usize>, u64, u64)> =
            plan.files["w.bin"].iter().map(|t| (t.name.clone(), t.dims.clone(), t.offset, t.length)).collect();
        assert_eq!(placed, [("w::part0".into(), vec![3, 4], 100, 48), ("w::part1".into(), vec![7, 4], 148, 112)]);
        assert!(graph.initializer.iter().all(|p| !p.external_data.iter().any(|e| e.key == "checksum")));
    }
}
