//! Graph → plan: value names become slot indices once, nodes are put in topological order with
//! their kernels built (attributes parsed) up front, and each step lists the slots whose last
//! use it is, so intermediates are freed as soon as nothing needs them.

use std::collections::{HashMap, HashSet, VecDeque};

use candle_core::Tensor;
use candle_onnx::onnx::{GraphProto, NodeProto};

use super::gpu::GpuKernel;
use super::ops::{self, Kernel, NodeCtx};
use super::tensor::from_proto;
use crate::error::{Result, WickError};

pub(super) struct Step {
    pub(super) name: String,
    pub(super) op_type: String,
    pub(super) kernel: Box<dyn Kernel>,
    /// The op's WebGPU kernel, when the GPU registry has one for it (engine/gpu).
    pub(super) gpu: Option<Box<dyn GpuKernel>>,
    pub(super) inputs: Vec<Option<usize>>,
    pub(super) outputs: Vec<Option<usize>>,
    /// Slots to drop after this step (their last use).
    pub(super) free: Vec<usize>,
}

/// The executable form of a graph.
pub struct Plan {
    pub(super) slot_count: usize,
    pub(super) constants: Vec<(usize, Tensor)>,
    pub(super) inputs: Vec<(String, usize)>,
    pub(super) outputs: Vec<(String, usize)>,
    pub(super) steps: Vec<Step>,
    /// Per slot: whether a step produces it (an intermediate), for the live-bytes count.
    pub(super) produced: Vec<bool>,
    /// Per slot: the step that produces it, to find the steps a subset of outputs needs.
    producer: Vec<Option<usize>>,
    folded: usize,
}

/// What one run returns.
#[derive(Debug)]
pub struct RunOutput {
    pub outputs: Vec<(String, Tensor)>,
    /// Most bytes of intermediate tensors alive at once.
    pub peak_intermediate_bytes: u64,
}

fn bytes_of(t: &Tensor) -> u64 {
    (t.elem_count() * t.dtype().size_in_bytes()) as u64
}

impl Plan {
    pub fn build(
        graph: GraphProto,
        external: HashMap<String, Tensor>,
        opsets: &HashMap<String, i64>,
    ) -> Result<Plan> {
        Self::build_placed(graph, external, &HashMap::new(), opsets)
    }

    /// [`Plan::build`] of a model some of whose weights live only on the GPU (`device`: their
    /// names and dims). Those become inputs of the plan that a GPU run seeds from the device
    /// (`Plan::run_gpu_with`), so nothing at load — folding, fusion, packing — needs their
    /// values; a CPU run must be fed them (read back).
    pub fn build_placed(
        graph: GraphProto,
        external: HashMap<String, Tensor>,
        device: &HashMap<String, Vec<usize>>,
        opsets: &HashMap<String, i64>,
    ) -> Result<Plan> {
        Self::build_scoped(&graph, external, device, opsets, &[], &HashMap::new())
    }

    /// The plan of a subgraph (an `If` branch, a `Loop` or `Scan` body). `outer` are the values
    /// of enclosing scopes it reads ([`graph_free_variables`]): those known there at load
    /// (`outer_known`) are constants here too, the others become extra inputs after the
    /// graph's own, fed by the kernel on each run.
    pub(crate) fn build_subgraph(
        graph: &GraphProto,
        outer: &[String],
        outer_known: &HashMap<String, Tensor>,
        opsets: &HashMap<String, i64>,
    ) -> Result<Plan> {
        // An outer device-only weight is not in `outer_known`: it arrives as a step input.
        Self::build_scoped(graph, HashMap::new(), &HashMap::new(), opsets, outer, outer_known)
    }

    fn build_scoped(
        graph: &GraphProto,
        mut external: HashMap<String, Tensor>,
        device: &HashMap<String, Vec<usize>>,
        opsets: &HashMap<String, i64>,
        outer: &[String],
        outer_known: &HashMap<String, Tensor>,
    ) -> Result<Plan> {
        let mut slots: HashMap<String, usize> = HashMap::new();
        let slot_of = |name: &str, slots: &mut HashMap<String, usize>| {
            let n = slots.len();
            *slots.entry(name.to_string()).or_insert(n)
        };

        // Weights: external ones come placed; embedded ones are decoded here, once. Constants
        // of the enclosing scope are Arc clones.
        let mut constants = Vec::new();
        let mut known: HashMap<String, Tensor> = outer
            .iter()
            .filter_map(|n| Some((n.clone(), outer_known.get(n)?.clone())))
            .collect();
        for init in &graph.initializer {
            let tensor = match external.remove(&init.name) {
                Some(t) => t,
                None if device.contains_key(&init.name) => continue,
                None if init.data_location == 1 => {
                    return Err(WickError::invalid(format!(
                        "external initializer '{}' was not loaded",
                        init.name
                    )))
                }
                None => from_proto(init)?,
            };
            known.insert(init.name.clone(), tensor);
        }

        // Device-only weights are inputs too (after the graph's own; once, whether or not an
        // old IR lists initializers among the graph inputs).
        let device_inputs = graph.initializer.iter().map(|i| &i.name).filter(|n| device.contains_key(*n));
        let mut seen = HashSet::new();
        let inputs: Vec<(String, usize)> = graph
            .input
            .iter()
            .map(|v| &v.name)
            .chain(outer)
            .chain(device_inputs)
            .filter(|name| !known.contains_key(*name) && seen.insert(name.as_str()))
            .map(|name| (name.clone(), slot_of(name, &mut slots)))
            .collect();

        // What each node reads: its inputs, then the outer values its subgraphs read, so that
        // ordering and liveness see those too and the kernel receives them.
        let reads: Vec<Vec<String>> =
            graph.node.iter().map(|n| n.input.iter().cloned().chain(free_variables(n)).collect()).collect();
        // Chains with a one-pass kernel (GELU, SiLU, MatMul + bias, Conv + batch norm +
        // activation) become one node each.
        let graph_outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
        let (nodes, reads) = super::fuse::fuse(&graph.node, &reads, &mut known, &graph_outputs);
        let order = topological_order(&nodes, &reads, &known, &inputs)?;

        // Declared ONNX element types (inputs, outputs, value_info, initializers): ops whose
        // meaning depends on a type that storage does not show (CastLike to int4, say) read it.
        let mut types: HashMap<String, i32> = graph
            .input
            .iter()
            .chain(&graph.output)
            .chain(&graph.value_info)
            .filter_map(|v| Some((v.name.clone(), super::declared_type(v).0?)))
            .collect();
        types.extend(graph.initializer.iter().map(|t| (t.name.clone(), t.data_type)));

        // Values whose declared shape is fully static: `Shape` of them folds to a constant.
        // A device-only weight's dims are known: `Shape` of it folds rather than reading it back.
        let static_dims: HashMap<String, Vec<usize>> = graph
            .input
            .iter()
            .chain(&graph.value_info)
            .filter_map(|v| Some((v.name.clone(), super::declared_type(v).1?.into_iter().collect::<Option<Vec<_>>>()?)))
            .chain(device.iter().map(|(n, d)| (n.clone(), d.clone())))
            .collect();

        // Build every kernel first so that all unsupported ops are reported together. Nodes
        // whose inputs are all known at load (weights, folded shapes) run now, once.
        let mut steps = Vec::with_capacity(order.len());
        let mut unsupported = Vec::new();
        let mut folded = 0;
        for &i in &order {
            let node = &nodes[i];
            let opset = *opsets.get(node_domain(node)).unwrap_or(&1);
            let ctx = NodeCtx { node, opset, opsets, constants: &known, types: &types };
            let built = ops::build(&ctx);
            if let (Ok(kernel), false) = (&built, has_subgraph(node)) {
                if let Some(values) = fold(node, kernel.as_ref(), &known, &static_dims) {
                    known.extend(node.output.iter().cloned().zip(values));
                    folded += 1;
                    continue;
                }
            }
            match built {
                Ok(kernel) => steps.push(Step {
                    name: node.name.clone(),
                    op_type: node.op_type.clone(),
                    kernel,
                    gpu: if has_subgraph(node) { None } else { super::gpu::ops::build(&ctx) },
                    inputs: reads[i].iter().map(|n| (!n.is_empty()).then(|| slot_of(n, &mut slots))).collect(),
                    outputs: node.output.iter().map(|n| (!n.is_empty()).then(|| slot_of(n, &mut slots))).collect(),
                    free: Vec::new(),
                }),
                Err(WickError::UnsupportedOp { domain, op_type, opset, detail }) => {
                    unsupported.push((domain, op_type, opset, detail))
                }
                Err(e) => return Err(e),
            }
        }
        if !unsupported.is_empty() {
            let (domain, op_type, opset, mut detail) = unsupported.remove(0);
            if !unsupported.is_empty() {
                let others: Vec<_> = unsupported.iter().map(|u| u.1.clone()).collect();
                detail.push_str(&format!("; also unsupported: {}", others.join(", ")));
            }
            return Err(WickError::UnsupportedOp { domain, op_type, opset, detail });
        }

        // Graph outputs may be inputs, constants or folded values as well as step outputs.
        let mut outputs = Vec::new();
        for o in &graph.output {
            let produced = slots.contains_key(&o.name) || known.contains_key(&o.name);
            if !produced {
                return Err(WickError::invalid(format!("graph output '{}' is produced by no node", o.name)));
            }
            outputs.push((o.name.clone(), slot_of(&o.name, &mut slots)));
        }
        for (name, tensor) in known {
            if let Some(&slot) = slots.get(&name) {
                constants.push((slot, tensor));
            }
        }

        // Liveness: free each non-constant, non-output slot after its last reader (or right
        // after its producer when nothing reads it).
        let pinned: HashSet<usize> =
            constants.iter().map(|c| c.0).chain(outputs.iter().map(|o| o.1)).collect();
        let mut last_use: HashMap<usize, usize> = HashMap::new();
        for (s, step) in steps.iter().enumerate() {
            for slot in step.inputs.iter().chain(&step.outputs).flatten() {
                last_use.insert(*slot, s);
            }
        }
        for (&slot, &s) in &last_use {
            if !pinned.contains(&slot) {
                steps[s].free.push(slot);
            }
        }

        let mut produced = vec![false; slots.len()];
        let mut producer = vec![None; slots.len()];
        for (s, step) in steps.iter().enumerate() {
            for slot in step.outputs.iter().flatten() {
                produced[*slot] = true;
                producer[*slot] = Some(s);
            }
        }
        Ok(Plan { slot_count: slots.len(), constants, inputs, outputs, steps, produced, producer, folded })
    }

    /// Steps left to run (nodes minus those folded at load).
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// Nodes computed once at load because their inputs were known.
    pub fn folded_count(&self) -> usize {
        self.folded
    }

    /// Bytes held by the plan's constants (weights).
    pub fn constant_bytes(&self) -> u64 {
        self.constants.iter().map(|(_, t)| bytes_of(t)).sum()
    }

    /// Whether `name` is one of the values a run must be fed.
    pub(crate) fn takes_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|(n, _)| n == name)
    }

    pub fn run(&self, feeds: HashMap<String, Tensor>, wanted: Option<&[String]>) -> Result<RunOutput> {
        self.run_observed(feeds, wanted, &mut |_| {})
    }

    /// [`Plan::run`], calling `observe` with each step's op type just before the step runs and
    /// with `None` after the last one (a profiler times the gaps between calls).
    pub fn run_observed(
        &self,
        mut feeds: HashMap<String, Tensor>,
        wanted: Option<&[String]>,
        observe: &mut dyn FnMut(Option<&str>),
    ) -> Result<RunOutput> {
        let mut values: Vec<Option<Tensor>> = vec![None; self.slot_count];
        for (slot, t) in &self.constants {
            values[*slot] = Some(t.clone()); // an Arc clone: weights are never copied
        }
        // With `wanted`, only the steps those outputs depend on run, and only the inputs they
        // read must be fed (a graph holding several nets runs one of them).
        let needed = wanted.map(|w| self.needed(w)).transpose()?;
        for (name, slot) in &self.inputs {
            match feeds.remove(name) {
                Some(t) => values[*slot] = Some(t),
                None if needed.as_ref().is_some_and(|n| !n.slots[*slot]) => {}
                None => return Err(WickError::BadInput(format!("missing input '{name}'"))),
            }
        }
        if let Some(extra) = feeds.keys().next() {
            return Err(WickError::BadInput(format!("the model has no input named '{extra}'")));
        }

        let (mut live, mut peak) = (0u64, 0u64);
        for (s, step) in self.steps.iter().enumerate() {
            if needed.as_ref().is_some_and(|n| !n.steps[s]) {
                // Skipped; what it would have freed (nothing later reads it) goes now.
                self.release(step, &mut values, &mut live);
                continue;
            }
            observe(Some(&step.op_type));
            let args: Vec<Option<&Tensor>> =
                step.inputs.iter().map(|s| s.and_then(|s| values[s].as_ref())).collect();
            let fail = |message: String| WickError::Execution {
                node: step.name.clone(),
                op_type: step.op_type.clone(),
                message,
            };
            let results = step.kernel.run(&args).map_err(|e| fail(e.to_string()))?;
            if results.len() < step.outputs.iter().flatten().count() {
                return Err(fail(format!("produced {} outputs", results.len())));
            }
            for (slot, t) in step.outputs.iter().zip(results) {
                if let Some(slot) = slot {
                    live += bytes_of(&t);
                    values[*slot] = Some(t);
                }
            }
            peak = peak.max(live);
            self.release(step, &mut values, &mut live);
        }

        observe(None);
        let mut outputs = Vec::new();
        for (name, slot) in &self.outputs {
            if wanted.is_some_and(|w| !w.contains(name)) {
                continue;
            }
            // A clone (an Arc), not a take: two outputs may name one value.
            let t = values[*slot].clone().ok_or_else(|| {
                WickError::Internal(format!("output '{name}' was not computed"))
            })?;
            outputs.push((name.clone(), t));
        }
        if let Some(w) = wanted {
            if let Some(missing) = w.iter().find(|n| !outputs.iter().any(|(o, _)| o == *n)) {
                return Err(WickError::BadInput(format!("the model has no output named '{missing}'")));
            }
        }
        Ok(RunOutput { outputs, peak_intermediate_bytes: peak })
    }

    /// Drop the values whose last use is `step`.
    fn release(&self, step: &Step, values: &mut [Option<Tensor>], live: &mut u64) {
        for &slot in &step.free {
            let t = values[slot].take();
            // Inputs are freed after their last use too, but were never counted as live.
            if let (Some(t), true) = (t, self.produced[slot]) {
                *live -= bytes_of(&t);
            }
        }
    }

    /// The steps and slots that the outputs `wanted` depend on, walking back from them through
    /// each step's inputs.
    pub(super) fn needed(&self, wanted: &[String]) -> Result<Needed> {
        let mut needed = Needed { steps: vec![false; self.steps.len()], slots: vec![false; self.slot_count] };
        let mut stack = Vec::with_capacity(wanted.len());
        for name in wanted {
            let (_, slot) = self
                .outputs
                .iter()
                .find(|(o, _)| o == name)
                .ok_or_else(|| WickError::BadInput(format!("the model has no output named '{name}'")))?;
            stack.push(*slot);
        }
        while let Some(slot) = stack.pop() {
            if std::mem::replace(&mut needed.slots[slot], true) {
                continue;
            }
            if let Some(s) = self.producer[slot] {
                if !std::mem::replace(&mut needed.steps[s], true) {
                    stack.extend(self.steps[s].inputs.iter().flatten());
                }
            }
        }
        Ok(needed)
    }
}

/// What a run for some of the outputs computes: per step whether it runs, per slot whether a
/// value is read (so an input slot must be fed).
pub(super) struct Needed {
    pub(super) steps: Vec<bool>,
    pub(super) slots: Vec<bool>,
}

/// Folded outputs larger than this stay computed at run time (they would pin memory).
const MAX_FOLDED_BYTES: u64 = 1 << 20;
/// Nodes reading a constant larger than this are not even tried at load (see `fold`).
const MAX_FOLDED_INPUT_BYTES: u64 = 64 << 20;

/// Run `node` at load if every input is known: a constant, or (for `Shape`) a value whose
/// declared shape is static. Returns its outputs, or `None` to leave it in the plan.
fn fold(
    node: &NodeProto,
    kernel: &dyn Kernel,
    known: &HashMap<String, Tensor>,
    static_dims: &HashMap<String, Vec<usize>>,
) -> Option<Vec<Tensor>> {
    let mut proxies = Vec::new();
    for name in &node.input {
        if name.is_empty() || known.contains_key(name) {
            continue;
        }
        let dims = static_dims.get(name).filter(|_| node.op_type == "Shape" && node.domain.is_empty())?;
        // A zero-strided view of the right dims: Shape reads only the dims, nothing is allocated.
        let proxy = Tensor::zeros((), candle_core::DType::U8, &candle_core::Device::Cpu)
            .and_then(|t| t.broadcast_as(dims.as_slice()))
            .ok()?;
        proxies.push((name.as_str(), proxy));
    }
    // A node over a large weight (Cast of f16 weights to f32, say) is left to run time without
    // trying: its output would be as large, and computing it only to drop it costs the load a
    // transient copy of the weight. Shape reads only dims.
    let large = node.input.iter().filter_map(|n| known.get(n)).any(|t| bytes_of(t) > MAX_FOLDED_INPUT_BYTES);
    if large && !(node.op_type == "Shape" && node.domain.is_empty()) {
        return None;
    }
    let args: Vec<Option<&Tensor>> = node
        .input
        .iter()
        .map(|n| known.get(n).or_else(|| proxies.iter().find(|p| p.0 == n).map(|p| &p.1)))
        .collect();
    let values = kernel.run(&args).ok()?;
    let small = values.iter().map(bytes_of).sum::<u64>() <= MAX_FOLDED_BYTES;
    (small && values.len() == node.output.len()).then_some(values)
}

/// Whether a node carries subgraphs (If, Loop, Scan). Such nodes are never folded at load: their
/// bodies may read outer values that only exist at run time.
fn has_subgraph(node: &NodeProto) -> bool {
    node.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty())
}

/// The values of enclosing scopes that `node`'s subgraphs read, first use first.
pub(crate) fn free_variables(node: &NodeProto) -> Vec<String> {
    let mut free = Vec::new();
    for graph in node.attribute.iter().flat_map(|a| a.g.iter().chain(&a.graphs)) {
        for name in graph_free_variables(graph) {
            if !free.contains(&name) {
                free.push(name);
            }
        }
    }
    free
}

/// The names `graph` reads (nested subgraphs included) that it neither declares as inputs or
/// initializers nor produces: values of the enclosing scopes, bound by name.
pub(crate) fn graph_free_variables(graph: &GraphProto) -> Vec<String> {
    let defined: HashSet<&str> = graph
        .input
        .iter()
        .map(|v| v.name.as_str())
        .chain(graph.initializer.iter().map(|t| t.name.as_str()))
        .chain(graph.node.iter().flat_map(|n| n.output.iter().map(String::as_str)))
        .chain([""])
        .collect();
    let reads = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned().chain(free_variables(n)))
        .chain(graph.output.iter().map(|o| o.name.clone()));
    let mut free: Vec<String> = Vec::new();
    for name in reads {
        if !defined.contains(name.as_str()) && !free.contains(&name) {
            free.push(name);
        }
    }
    free
}

fn node_domain(node: &NodeProto) -> &str {
    if node.domain == "ai.onnx" { "" } else { &node.domain }
}

/// Kahn's algorithm over the nodes; ONNX asks for sorted graphs but exporters do not always
/// deliver them.
fn topological_order(
    nodes: &[NodeProto],
    reads: &[Vec<String>],
    known: &HashMap<String, Tensor>,
    inputs: &[(String, usize)],
) -> Result<Vec<usize>> {
    let mut available: HashSet<&str> =
        known.keys().map(String::as_str).chain(inputs.iter().map(|i| i.0.as_str())).collect();
    available.insert("");
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.output {
            producer.insert(o.as_str(), i);
        }
    }
    let mut missing = vec![0usize; nodes.len()];
    let mut readers: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for inp in &reads[i] {
            if available.contains(inp.as_str()) {
                continue;
            }
            match producer.get(inp.as_str()) {
                Some(&p) => {
                    missing[i] += 1;
                    readers.entry(p).or_default().push(i);
                }
                None => {
                    return Err(WickError::invalid(format!(
                        "node '{}' ({}) reads '{inp}', which nothing produces",
                        n.name, n.op_type
                    )))
                }
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..nodes.len()).filter(|&i| missing[i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &r in readers.get(&i).map(Vec::as_slice).unwrap_or(&[]) {
            missing[r] -= 1;
            if missing[r] == 0 {
                ready.push_back(r);
            }
        }
    }
    if order.len() != nodes.len() {
        return Err(WickError::invalid("the graph has a cycle"));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_onnx::onnx::{
        tensor_shape_proto::{dimension::Value as Dim, Dimension},
        type_proto, AttributeProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };

    fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
        let shape = TensorShapeProto {
            dim: dims.iter().map(|&d| Dimension { value: Some(Dim::DimValue(d)), ..Default::default() }).collect(),
        };
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: 1, shape: Some(shape) })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    }

    fn int_attr(name: &str, i: i64) -> AttributeProto {
        AttributeProto { name: name.into(), i, r#type: 2, ..Default::default() }
    }

    #[test]
    fn shape_subgraphs_on_static_shapes_fold_at_load() {
        // y = Reshape(x, Concat(Shape(x)[0:1], [-1])) — the usual exporter idiom for Flatten.
        let graph = GraphProto {
            input: vec![value("x", &[2, 3, 4])],
            output: vec![value("y", &[2, 12])],
            node: vec![
                node("Shape", &["x"], "s", vec![int_attr("start", 0), int_attr("end", 1)]),
                node("Constant", &[], "m", vec![AttributeProto {
                    name: "value_ints".into(), ints: vec![-1], r#type: 7, ..Default::default()
                }]),
                node("Concat", &["s", "m"], "target", vec![int_attr("axis", 0)]),
                node("Reshape", &["x", "target"], "y", vec![]),
            ],
            ..Default::default()
        };
        let opsets = HashMap::from([(String::new(), 15)]);
        let plan = Plan::build(graph, HashMap::new(), &opsets).unwrap();
        assert_eq!((plan.folded_count(), plan.step_count()), (3, 1), "only Reshape runs");
        let x = Tensor::arange(0f32, 24., &candle_core::Device::Cpu).unwrap().reshape((2, 3, 4)).unwrap();
        let out = plan.run(HashMap::from([("x".to_string(), x)]), None).unwrap();
        assert_eq!(out.outputs[0].1.dims(), &[2, 12]);
    }

    #[test]
    fn a_folded_value_can_be_a_graph_output() {
        let graph = GraphProto {
            input: vec![value("x", &[2, 3])],
            output: vec![value("s", &[2])],
            node: vec![node("Shape", &["x"], "s", vec![])],
            ..Default::default()
        };
        let plan = Plan::build(graph, HashMap::new(), &HashMap::from([(String::new(), 13)])).unwrap();
        let x = Tensor::zeros((2, 3), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let out = plan.run(HashMap::from([("x".to_string(), x)]), None).unwrap();
        assert_eq!(out.outputs[0].1.to_vec1::<i64>().unwrap(), vec![2, 3]);
    }

    #[test]
    fn wanted_outputs_run_only_their_steps_and_need_only_their_inputs() {
        // Two nets side by side plus one that joins them: a = Relu(x); b = Neg(y); c = Add(a, b).
        let graph = GraphProto {
            input: vec![value("x", &[2]), value("y", &[2])],
            output: vec![value("a", &[2]), value("b", &[2]), value("c", &[2])],
            node: vec![
                node("Relu", &["x"], "a", vec![]),
                node("Neg", &["y"], "b", vec![]),
                node("Add", &["a", "b"], "c", vec![]),
            ],
            ..Default::default()
        };
        let plan = Plan::build(graph, HashMap::new(), &HashMap::from([(String::new(), 13)])).unwrap();
        let t = |v: [f32; 2]| Tensor::new(&v, &candle_core::Device::Cpu).unwrap();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        let out = plan.run(HashMap::from([("x".to_string(), t([-1., 2.]))]), Some(&names(&["a"]))).unwrap();
        assert_eq!(out.outputs.len(), 1);
        assert_eq!(out.outputs[0].1.to_vec1::<f32>().unwrap(), vec![0., 2.]);
        assert_eq!(out.peak_intermediate_bytes, 8, "Neg and Add did not run");

        let out = plan.run(HashMap::from([("y".to_string(), t([1., 5.]))]), Some(&names(&["b"]))).unwrap();
        assert_eq!(out.outputs[0].1.to_vec1::<f32>().unwrap(), vec![-1., -5.]);

        // c reads both nets: both inputs are required. Without `wanted`, everything is.
        let only_x = || HashMap::from([("x".to_string(), t([1., 1.]))]);
        assert!(matches!(plan.run(only_x(), Some(&names(&["c"]))), Err(WickError::BadInput(m)) if m.contains("'y'")));
        assert!(matches!(plan.run(only_x(), None), Err(WickError::BadInput(_))));
        let both = HashMap::from([("x".to_string(), t([1., 1.])), ("y".to_string(), t([3., 0.]))]);
        let out = plan.run(both, Some(&names(&["c"]))).unwrap();
        assert_eq!(out.outputs[0].1.to_vec1::<f32>().unwrap(), vec![-2., 1.]);
        // An unknown output is named; a feed for an input the wanted outputs do not read is accepted.
        assert!(matches!(plan.run(only_x(), Some(&names(&["z"]))), Err(WickError::BadInput(m)) if m.contains("'z'")));
        let both = HashMap::from([("x".to_string(), t([1., 1.])), ("y".to_string(), t([3., 0.]))]);
        assert_eq!(plan.run(both, Some(&names(&["a"]))).unwrap().outputs.len(), 1);
    }

    #[test]
    fn intermediates_are_freed_after_their_last_use() {
        // a = Relu(x); b = Neg(a); y = Abs(b): at most two 4-float intermediates live at once.
        let graph = GraphProto {
            input: vec![value("x", &[4])],
            output: vec![value("y", &[4])],
            node: vec![node("Relu", &["x"], "a", vec![]), node("Neg", &["a"], "b", vec![]), node("Abs", &["b"], "y", vec![])],
            ..Default::default()
        };
        let plan = Plan::build(graph, HashMap::new(), &HashMap::from([(String::new(), 13)])).unwrap();
        let x = Tensor::new(&[1f32, -2., 3., -4.], &candle_core::Device::Cpu).unwrap();
        let out = plan.run(HashMap::from([("x".to_string(), x)]), None).unwrap();
        assert_eq!(out.peak_intermediate_bytes, 32, "a is dropped once b exists");
        assert_eq!(out.outputs[0].1.to_vec1::<f32>().unwrap(), vec![1., 0., 3., 0.]);
    }
}
