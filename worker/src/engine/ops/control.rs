//! Control flow. Spec: If (1+: `then_branch` / `else_branch`), Loop (1+: trip count `M`,
//! condition, loop-carried values, scan outputs stacked on a new first axis), Scan (9+:
//! `num_scan_inputs`, `scan_input_axes` / `_directions`, `scan_output_axes` / `_directions`;
//! 8: batch axis first, `directions`, full-length `sequence_lens` only).
//! Sequence and optional values (Loop 13+/16+ over sequences) are not supported.
//!
//! Each body is planned once, when the node is built ([`Plan::build_subgraph`]); the values of
//! enclosing scopes it reads arrive as extra node inputs after the declared ones (the plan
//! appends [`free_variables`]) and are bound by name on each run.

use std::collections::HashMap;

use candle_core::{DType, Tensor};

use super::{axis, input, Kernel, NodeCtx};
use crate::engine::plan::{free_variables, graph_free_variables, Plan};
use crate::error::{Result, WickError};

type R<T> = candle_core::Result<T>;

/// A planned subgraph and how to feed it.
struct Body {
    plan: Plan,
    /// The body's declared inputs, in order (iteration number, condition, state, slices…).
    params: Vec<String>,
    /// Outer values the body reads: (position among the node's step inputs, name).
    outer: Vec<(usize, String)>,
}

impl Body {
    fn new(ctx: &NodeCtx, attr: &str) -> Result<Body> {
        let graph = ctx
            .graph(attr)
            .ok_or_else(|| WickError::invalid(format!("{} node '{}' has no '{attr}'", ctx.node.op_type, ctx.node.name)))?;
        let free = graph_free_variables(graph);
        let plan = Plan::build_subgraph(graph, &free, ctx.constants, ctx.opsets)?;
        let node_free = free_variables(ctx.node);
        let outer = free
            .into_iter()
            .filter(|n| plan.takes_input(n))
            .filter_map(|n| Some((ctx.node.input.len() + node_free.iter().position(|f| *f == n)?, n)))
            .collect();
        let params = graph.input.iter().map(|v| v.name.clone()).collect();
        Ok(Body { plan, params, outer })
    }

    /// Run with `args` bound to the declared inputs in order and the outer values from `xs`.
    fn run(&self, xs: &[Option<&Tensor>], args: impl IntoIterator<Item = Tensor>) -> R<Vec<Tensor>> {
        let mut feeds: HashMap<String, Tensor> = self.params.iter().cloned().zip(args).collect();
        for (i, name) in &self.outer {
            feeds.insert(name.clone(), input(xs, *i)?.clone());
        }
        let out = self.plan.run(feeds, None).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok(out.outputs.into_iter().map(|(_, t)| t).collect())
    }
}

/// A boolean scalar's value (any dtype: non-zero is true).
fn truth(t: &Tensor) -> R<bool> {
    let v = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    Ok(v.first().is_some_and(|&x| x != 0.))
}

pub fn if_op(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let then = Body::new(ctx, "then_branch")?;
    let otherwise = Body::new(ctx, "else_branch")?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let branch = if truth(input(xs, 0)?)? { &then } else { &otherwise };
        branch.run(xs, [])
    }))
}

/// Stack per-iteration values on a new axis (`reverse`: last iteration first).
fn stack(mut parts: Vec<Tensor>, dim: usize, reverse: bool) -> R<Tensor> {
    if reverse {
        parts.reverse();
    }
    if parts.is_empty() {
        // Zero iterations: the element shape is unknown; an empty float vector stands in.
        return Tensor::zeros(0, DType::F32, &candle_core::Device::Cpu);
    }
    Tensor::stack(&parts, dim)
}

pub fn loop_op(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let body = Body::new(ctx, "body")?;
    let carried = ctx.node.input.len().saturating_sub(2);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let dev = candle_core::Device::Cpu;
        let max = match xs.first().copied().flatten() {
            Some(m) => Some(super::int_values(m)?.first().copied().unwrap_or(0)),
            None => None,
        };
        let mut cond = match xs.get(1).copied().flatten() {
            Some(c) => truth(c)?,
            None => true,
        };
        let mut state: Vec<Tensor> = (2..2 + carried).map(|i| input(xs, i).cloned()).collect::<R<_>>()?;
        let mut scans: Vec<Vec<Tensor>> = Vec::new();
        let mut i = 0i64;
        while cond && max.is_none_or(|m| i < m) {
            let args = [Tensor::new(i, &dev)?, Tensor::new(u8::from(cond), &dev)?].into_iter().chain(state);
            let mut out = body.run(xs, args)?.into_iter();
            cond = truth(&out.next().ok_or_else(|| candle_core::Error::Msg("Loop body gave no condition".into()))?)?;
            state = out.by_ref().take(carried).collect();
            if state.len() != carried {
                candle_core::bail!("Loop body gave {} of {carried} loop-carried values", state.len())
            }
            push_scans(&mut scans, out);
            i += 1;
        }
        let stacked = scans.into_iter().map(|s| stack(s, 0, false));
        state.into_iter().map(Ok).chain(stacked).collect()
    }))
}

/// Scan's attributes: how many state values, and per scan input / output its axis and
/// whether it runs backwards.
struct ScanSpec {
    n_state: usize,
    in_axes: Vec<i64>,
    in_reverse: Vec<bool>,
    out_axes: Vec<i64>,
    out_reverse: Vec<bool>,
}

impl ScanSpec {
    /// Run `body` over `seqs` (scan inputs, sliced along their axes) from `state`; returns the
    /// final state then the scan outputs.
    fn run(&self, body: &Body, xs: &[Option<&Tensor>], mut state: Vec<Tensor>, seqs: &[&Tensor]) -> R<Vec<Tensor>> {
        let mut axes = Vec::with_capacity(seqs.len());
        for (j, x) in seqs.iter().enumerate() {
            axes.push(axis(self.in_axes.get(j).copied().unwrap_or(0), x.rank())?);
        }
        let steps = seqs.first().zip(axes.first()).map_or(0, |(x, &a)| x.dims()[a]);
        let mut scans: Vec<Vec<Tensor>> = Vec::new();
        for t in 0..steps {
            let slices = seqs.iter().zip(&axes).enumerate().map(|(j, (x, &a))| {
                let at = if self.in_reverse.get(j).copied().unwrap_or(false) { steps - 1 - t } else { t };
                x.narrow(a, at, 1)?.squeeze(a)
            });
            let args = state.iter().cloned().map(Ok).chain(slices).collect::<R<Vec<_>>>()?;
            let mut out = body.run(xs, args)?.into_iter();
            state = out.by_ref().take(self.n_state).collect();
            push_scans(&mut scans, out);
        }
        let mut results = state;
        for (k, parts) in scans.into_iter().enumerate() {
            let rank = parts.first().map_or(0, |p| p.rank()) + 1;
            let a = axis(self.out_axes.get(k).copied().unwrap_or(0), rank)?;
            results.push(stack(parts, a, self.out_reverse.get(k).copied().unwrap_or(false))?);
        }
        Ok(results)
    }
}

/// Append one iteration's scan outputs to their lists.
fn push_scans(scans: &mut Vec<Vec<Tensor>>, outs: impl Iterator<Item = Tensor>) {
    for (k, t) in outs.enumerate() {
        if scans.len() <= k {
            scans.push(Vec::new());
        }
        scans[k].push(t);
    }
}

/// `body` and the spec; `first` is where the states start among the node's inputs.
fn scan_parts(ctx: &NodeCtx, first: usize, input_directions: &str) -> Result<(Body, ScanSpec)> {
    let body = Body::new(ctx, "body")?;
    let n_scan = ctx.int("num_scan_inputs", 0).max(0) as usize;
    let n_state = ctx
        .node
        .input
        .len()
        .checked_sub(n_scan + first)
        .ok_or_else(|| ctx.unsupported("num_scan_inputs exceeds the inputs"))?;
    let reverse = |name: &str| ctx.ints(name).unwrap_or_default().iter().map(|&d| d == 1).collect();
    let spec = ScanSpec {
        n_state,
        in_axes: ctx.ints("scan_input_axes").unwrap_or_default(),
        in_reverse: reverse(input_directions),
        out_axes: ctx.ints("scan_output_axes").unwrap_or_default(),
        out_reverse: reverse("scan_output_directions"),
    };
    Ok((body, spec))
}

/// Scan 9+: inputs are the initial states then the scan inputs.
pub fn scan(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (body, spec) = scan_parts(ctx, 0, "scan_input_directions")?;
    let n_inputs = ctx.node.input.len(); // the outer values the body reads come after these
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let state = (0..spec.n_state).map(|i| input(xs, i).cloned()).collect::<R<_>>()?;
        let seqs = (spec.n_state..n_inputs).map(|i| input(xs, i)).collect::<R<Vec<_>>>()?;
        spec.run(&body, xs, state, &seqs)
    }))
}

/// Scan 8: a batch axis 0 on every input and output, an optional `sequence_lens` first (only
/// full-length sequences are supported), `directions` for the scan inputs.
pub fn scan_8(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (body, spec) = scan_parts(ctx, 1, "directions")?;
    let n_inputs = ctx.node.input.len();
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let state = (1..1 + spec.n_state).map(|i| input(xs, i)).collect::<R<Vec<_>>>()?;
        let seqs = (1 + spec.n_state..n_inputs).map(|i| input(xs, i)).collect::<R<Vec<_>>>()?;
        let Some(first) = seqs.first() else { candle_core::bail!("Scan has no scan input") };
        let (batch, steps) = (first.dim(0)?, first.dim(1)?);
        if let Some(lens) = xs.first().copied().flatten() {
            if super::int_values(lens)?.iter().any(|&l| l != steps as i64) {
                candle_core::bail!("Scan 8 with sequences shorter than the scan axis is not supported")
            }
        }
        let mut per_batch: Vec<Vec<Tensor>> = Vec::new();
        for b in 0..batch {
            let state = state.iter().map(|s| s.get(b)).collect::<R<_>>()?;
            let seqs = seqs.iter().map(|x| x.get(b)).collect::<R<Vec<_>>>()?;
            push_scans(&mut per_batch, spec.run(&body, xs, state, &seqs.iter().collect::<Vec<_>>())?.into_iter());
        }
        per_batch.into_iter().map(|parts| Tensor::stack(&parts, 0)).collect()
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};
    use candle_onnx::onnx::{
        type_proto, AttributeProto, GraphProto, NodeProto, TypeProto, ValueInfoProto,
    };

    use crate::engine::plan::Plan;

    fn value(name: &str, elem_type: i32) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type, shape: None })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute,
            ..Default::default()
        }
    }

    fn graph_attr(name: &str, g: GraphProto) -> AttributeProto {
        AttributeProto { name: name.into(), g: Some(g), r#type: 5, ..Default::default() }
    }

    fn run(graph: GraphProto, feeds: Vec<(&str, Tensor)>) -> Vec<Tensor> {
        let plan = Plan::build(graph, HashMap::new(), &HashMap::from([(String::new(), 16)])).unwrap();
        let feeds = feeds.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
        plan.run(feeds, None).unwrap().outputs.into_iter().map(|o| o.1).collect()
    }

    #[test]
    fn if_runs_the_chosen_branch_which_reads_outer_values() {
        // y = If(c) then (x + x) else (-x), x computed outside the branches.
        let then = GraphProto {
            node: vec![node("Add", &["x", "x"], &["t"], vec![])],
            output: vec![value("t", 1)],
            ..Default::default()
        };
        let otherwise = GraphProto {
            node: vec![node("Neg", &["x"], &["e"], vec![])],
            output: vec![value("e", 1)],
            ..Default::default()
        };
        let graph = GraphProto {
            input: vec![value("c", 9), value("a", 1)],
            output: vec![value("y", 1)],
            node: vec![
                node("If", &["c"], &["y"], vec![graph_attr("then_branch", then), graph_attr("else_branch", otherwise)]),
                node("Relu", &["a"], &["x"], vec![]), // after its reader: the plan orders them
            ],
            ..Default::default()
        };
        let a = Tensor::new(&[1f32, -2., 3.], &Device::Cpu).unwrap();
        for (c, want) in [(1u8, vec![2f32, 0., 6.]), (0, vec![-1., 0., -3.])] {
            let c = Tensor::new(&[c], &Device::Cpu).unwrap();
            let y = run(graph.clone(), vec![("c", c), ("a", a.clone())]);
            assert_eq!(y[0].to_vec1::<f32>().unwrap(), want);
        }
    }

    #[test]
    fn loop_sums_carries_and_stacks() {
        // for i in 0..M: s = s + step  (step from the outer scope); scan out: s after each.
        let body = GraphProto {
            input: vec![value("i", 7), value("cond_in", 9), value("s_in", 1)],
            output: vec![value("cond_in", 9), value("s_out", 1), value("s_copy", 1)],
            node: vec![
                node("Add", &["s_in", "step"], &["s_out"], vec![]),
                node("Identity", &["s_out"], &["s_copy"], vec![]),
            ],
            ..Default::default()
        };
        let graph = GraphProto {
            input: vec![value("m", 7), value("s0", 1), value("step", 1)],
            output: vec![value("s", 1), value("all", 1)],
            node: vec![node("Loop", &["m", "", "s0"], &["s", "all"], vec![graph_attr("body", body)])],
            ..Default::default()
        };
        let dev = Device::Cpu;
        let out = run(graph, vec![
            ("m", Tensor::new(3i64, &dev).unwrap()),
            ("s0", Tensor::new(&[0f32, 10.], &dev).unwrap()),
            ("step", Tensor::new(&[1f32, 2.], &dev).unwrap()),
        ]);
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![3., 16.]);
        assert_eq!(out[1].to_vec2::<f32>().unwrap(), vec![vec![1., 12.], vec![2., 14.], vec![3., 16.]]);
    }

    #[test]
    fn scan_runs_backwards_and_accumulates() {
        // Cumulative sum of rows, scanning from the last row: state + row per step.
        let body = GraphProto {
            input: vec![value("acc", 1), value("row", 1)],
            output: vec![value("next", 1), value("seen", 1)],
            node: vec![
                node("Add", &["acc", "row"], &["next"], vec![]),
                node("Identity", &["next"], &["seen"], vec![]),
            ],
            ..Default::default()
        };
        let ints = |name: &str, v: &[i64]| AttributeProto { name: name.into(), ints: v.to_vec(), r#type: 7, ..Default::default() };
        let int = AttributeProto { name: "num_scan_inputs".into(), i: 1, r#type: 2, ..Default::default() };
        let graph = GraphProto {
            input: vec![value("init", 1), value("xs", 1)],
            output: vec![value("total", 1), value("partial", 1)],
            node: vec![node("Scan", &["init", "xs"], &["total", "partial"], vec![
                graph_attr("body", body),
                int,
                ints("scan_input_directions", &[1]),
            ])],
            ..Default::default()
        };
        let dev = Device::Cpu;
        let xs = Tensor::new(&[[1f32, 2.], [3., 4.], [5., 6.]], &dev).unwrap();
        let out = run(graph, vec![("init", Tensor::zeros(2, candle_core::DType::F32, &dev).unwrap()), ("xs", xs)]);
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![9., 12.]);
        assert_eq!(out[1].to_vec2::<f32>().unwrap(), vec![vec![5., 6.], vec![8., 10.], vec![9., 12.]]);
    }
}
