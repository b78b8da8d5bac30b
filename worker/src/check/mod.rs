//! Native only: checking the engine against ONNX-test-style cases (`model.onnx` beside
//! `test_data_set_*/{input,output}_*.pb`), as the `wick-check` binary and `cargo xtask
//! check-model` / `cargo xtask conformance` do.
//!
//! This module owns running one case and saying why it failed: [`check_case`] loads the model
//! through the same streaming loader the browser uses, runs every data set, and compares each
//! output ([`compare`]: tolerance, NaN, dtype and shape rules). A failure is a [`Failure`] that
//! keeps the engine's typed error, names the op types it blames and the cause it is grouped
//! under. [`check_case_guarded`] also turns a panic inside the engine into a failure, so that a
//! run over many cases survives a bug in one op. [`conformance`] runs the official suites.

pub mod cli;
pub mod compare;
pub mod conformance;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Once;

use candle_onnx::onnx::{self, GraphProto};

use crate::engine::{ops::OPS, parse_model, Resident};
use crate::error::WickError;
use crate::native::{data_sets, load_model};
pub use compare::{compare, Diff, Tolerance};

/// What a model's graph holds, read from its protobuf beside the engine's load: the op types
/// to blame for a failure, the domains (for skips), and which inputs or outputs are not tensors.
#[derive(Debug, Default)]
pub struct ModelFacts {
    /// The opset in force per domain ("" is the default domain).
    pub opsets: HashMap<String, i64>,
    /// (domain, op_type) of the main graph's nodes, first appearance order, without repeats.
    pub ops: Vec<(String, String)>,
    /// Every node domain, subgraphs included.
    pub domains: Vec<String>,
    /// The op type that produces each main-graph output.
    pub producers: HashMap<String, String>,
    /// Graph inputs and outputs that are not tensors: (name, "sequence" | "map" | …).
    pub non_tensor_io: Vec<(String, &'static str)>,
}

fn plain_domain(domain: &str) -> &str {
    if domain == "ai.onnx" {
        ""
    } else {
        domain
    }
}

/// An op type as the summaries show it: `Conv`, or `com.microsoft:Gelu` outside the default
/// domain.
pub fn op_label(domain: &str, op_type: &str) -> String {
    match plain_domain(domain) {
        "" => op_type.to_string(),
        d => format!("{d}:{op_type}"),
    }
}

impl ModelFacts {
    pub fn read(model: &Path) -> Result<ModelFacts, WickError> {
        let bytes = std::fs::read(model).map_err(|e| WickError::InvalidModel {
            file: Some(model.display().to_string()),
            message: e.to_string(),
        })?;
        Ok(ModelFacts::of(&parse_model(&bytes)?))
    }

    pub fn of(model: &onnx::ModelProto) -> ModelFacts {
        let mut facts = ModelFacts::default();
        for o in &model.opset_import {
            facts
                .opsets
                .insert(plain_domain(&o.domain).to_string(), o.version);
        }
        facts.opsets.entry(String::new()).or_insert(1);
        let Some(graph) = &model.graph else {
            return facts;
        };
        for node in &graph.node {
            let key = (plain_domain(&node.domain).to_string(), node.op_type.clone());
            if !facts.ops.contains(&key) {
                facts.ops.push(key);
            }
            for out in &node.output {
                facts
                    .producers
                    .insert(out.clone(), op_label(&node.domain, &node.op_type));
            }
        }
        collect_domains(graph, &mut facts.domains);
        for v in graph.input.iter().chain(&graph.output) {
            if let Some(kind) = non_tensor_kind(v) {
                facts.non_tensor_io.push((v.name.clone(), kind));
            }
        }
        facts
    }

    /// Main-graph op types with no registry row for the model's opset.
    pub fn unsupported_ops(&self) -> Vec<String> {
        self.ops
            .iter()
            .filter(|(domain, op_type)| {
                let opset = self.opsets.get(domain).copied().unwrap_or(1);
                !OPS.iter()
                    .any(|o| o.domain == domain && o.op_type == op_type && o.since <= opset)
            })
            .map(|(d, t)| op_label(d, t))
            .collect()
    }

    /// Every main-graph op type except `Constant`, which no test is about.
    pub fn op_labels(&self) -> Vec<String> {
        let labels: Vec<String> = self
            .ops
            .iter()
            .filter(|(d, t)| !(d.is_empty() && t == "Constant"))
            .map(|(d, t)| op_label(d, t))
            .collect();
        if labels.is_empty() {
            self.ops.iter().map(|(d, t)| op_label(d, t)).collect()
        } else {
            labels
        }
    }
}

fn collect_domains(graph: &GraphProto, domains: &mut Vec<String>) {
    for node in &graph.node {
        let d = plain_domain(&node.domain);
        if !domains.iter().any(|x| x == d) {
            domains.push(d.to_string());
        }
        for attr in &node.attribute {
            for g in attr.g.iter().chain(&attr.graphs) {
                collect_domains(g, domains);
            }
        }
    }
}

fn non_tensor_kind(v: &onnx::ValueInfoProto) -> Option<&'static str> {
    use onnx::type_proto::Value;
    match v.r#type.as_ref()?.value.as_ref()? {
        Value::TensorType(_) => None,
        Value::SequenceType(_) => Some("sequence"),
        Value::MapType(_) => Some("map"),
        Value::OptionalType(_) => Some("optional"),
        Value::SparseTensorType(_) => Some("sparse tensor"),
    }
}

/// The name the ONNX spec gives an element type code.
pub fn onnx_type_name(code: i32) -> String {
    let name = match code {
        1 => "float",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "double",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        17 => "float8e4m3fn",
        18 => "float8e4m3fnuz",
        19 => "float8e5m2",
        20 => "float8e5m2fnuz",
        21 => "uint4",
        22 => "int4",
        23 => "float4e2m1",
        24 => "float8e8m0",
        25 => "uint2",
        26 => "int2",
        _ => return format!("type {code}"),
    };
    name.to_string()
}

/// What runs the cases: the CPU engine (`Model::run`), or the WebGPU backend
/// (`Model::run_gpu`) on one device opened once for the whole run.
#[derive(Clone, Default)]
pub enum Backend {
    #[default]
    Cpu,
    WebGpu(Rc<wick_gpu::Gpu>),
}

impl Backend {
    /// `cpu` or `webgpu` (which opens the device: lavapipe natively).
    pub fn open(name: &str) -> Result<Backend, String> {
        match name {
            "cpu" => Ok(Backend::Cpu),
            "webgpu" => wick_gpu::Gpu::new_blocking()
                .map(|gpu| Backend::WebGpu(Rc::new(gpu)))
                .map_err(|e| format!("--backend webgpu: no device: {e}")),
            other => Err(format!("unknown backend `{other}`; cpu or webgpu")),
        }
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Backend::WebGpu(_))
    }
}

/// Why a case failed. Engine errors keep their type.
#[derive(Debug)]
pub enum Failure {
    /// The model did not load: an unsupported op, or a model the engine finds invalid.
    Load(WickError),
    /// A graph input or output is not a tensor (sequence, map, optional).
    NonTensorIo {
        name: String,
        kind: &'static str,
    },
    /// The test data could not be read (an element type the engine does not store, …).
    Data(WickError),
    NoDataSets,
    /// A run returned an error.
    Run {
        set: String,
        error: WickError,
    },
    /// The run returned a different number of outputs than the data set expects.
    OutputCount {
        set: String,
        got: usize,
        want: usize,
    },
    /// An expected output the run did not return.
    MissingOutput {
        set: String,
        name: String,
    },
    /// An output with the wrong dtype, shape or values; `producer` is the op type that made it.
    Wrong {
        set: String,
        output: String,
        producer: Option<String>,
        diff: Diff,
    },
    /// A panic inside the engine (a bug): its message and location.
    Panic(String),
}

impl Failure {
    /// A short kind, for the per-op summary: unsupported, load, data, error, wrong, panic.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Load(WickError::UnsupportedOp { .. }) => "unsupported",
            Failure::Load(_) => "load",
            Failure::NonTensorIo { .. } | Failure::Data(_) | Failure::NoDataSets => "data",
            Failure::Run { .. } => "error",
            Failure::OutputCount { .. } | Failure::MissingOutput { .. } | Failure::Wrong { .. } => {
                "wrong"
            }
            Failure::Panic(_) => "panic",
        }
    }

    /// The whole reason, on one line.
    pub fn reason(&self) -> String {
        let text = match self {
            Failure::Load(e) => e.to_string(),
            Failure::NonTensorIo { name, kind } => {
                let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                format!("'{name}' is {article} {kind}; the engine runs tensors only")
            }
            Failure::Data(e) => format!("test data: {e}"),
            Failure::NoDataSets => "no test_data_set_* folder".to_string(),
            Failure::Run { set, error } => format!("{set}: {error}"),
            Failure::OutputCount { set, got, want } => {
                format!("{set}: the run returned {got} outputs, the data set has {want}")
            }
            Failure::MissingOutput { set, name } => format!("{set}: no output named '{name}'"),
            Failure::Wrong {
                set,
                output,
                producer,
                diff,
            } => {
                let by = producer
                    .as_ref()
                    .map(|p| format!(" (from {p})"))
                    .unwrap_or_default();
                format!("{set}: output '{output}'{by}: {diff}")
            }
            Failure::Panic(message) => format!("panic: {message}"),
        };
        one_line(&text)
    }

    /// The cause a failure is grouped under in CONFORMANCE.md: what a fix would address.
    pub fn cause(&self) -> String {
        match self {
            Failure::Load(WickError::UnsupportedOp {
                domain,
                op_type,
                detail,
                ..
            }) => {
                // Drop the plan's "; also unsupported: …" list: each op has its own group.
                let detail = detail.split("; also unsupported").next().unwrap_or("");
                match detail.strip_prefix(": ") {
                    Some(d) if !d.is_empty() => {
                        format!("unsupported variant of {}: {d}", op_label(domain, op_type))
                    }
                    _ => format!("unsupported op {}", op_label(domain, op_type)),
                }
            }
            Failure::Load(e) => format!("load: {}", one_line(&e.to_string())),
            Failure::NonTensorIo { kind, .. } => format!("{kind} input or output"),
            Failure::Data(e) => {
                let message = e.to_string();
                let code = message
                    .strip_prefix("invalid model: tensor element type ")
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|n| n.parse::<i32>().ok());
                match code {
                    Some(code) => format!("test data of element type {}", onnx_type_name(code)),
                    None => "test data unreadable".to_string(),
                }
            }
            Failure::NoDataSets => "no test data".to_string(),
            Failure::Run {
                error: WickError::Execution { op_type, .. },
                ..
            } => {
                format!("execution error in {op_type}")
            }
            Failure::Run { error, .. } => format!("run rejected ({})", error.code().as_str()),
            Failure::OutputCount { .. } | Failure::MissingOutput { .. } => {
                "wrong number of outputs".to_string()
            }
            Failure::Wrong { producer, diff, .. } => format!(
                "wrong {} from {}",
                diff.kind(),
                producer.as_deref().unwrap_or("a graph input")
            ),
            Failure::Panic(_) => "panic in the engine".to_string(),
        }
    }

    /// The op types this failure counts against in the per-op summary.
    pub fn blamed_ops(&self, facts: Option<&ModelFacts>) -> Vec<String> {
        let all = || facts.map(ModelFacts::op_labels).unwrap_or_default();
        let mut ops = match self {
            Failure::Load(WickError::UnsupportedOp {
                domain, op_type, ..
            }) => {
                let mut ops = vec![op_label(domain, op_type)];
                for op in facts.map(ModelFacts::unsupported_ops).unwrap_or_default() {
                    if !ops.contains(&op) {
                        ops.push(op);
                    }
                }
                ops
            }
            Failure::Run {
                error: WickError::Execution { op_type, .. },
                ..
            } => vec![op_type.clone()],
            Failure::Wrong {
                producer: Some(p), ..
            } => vec![p.clone()],
            _ => all(),
        };
        if ops.is_empty() {
            ops.push("(no op)".to_string());
        }
        ops
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One output of one data set, as compared.
#[derive(Debug)]
pub struct OutputReport {
    pub set: String,
    pub name: String,
    pub diff: Diff,
}

/// The outcome of one case.
#[derive(Debug)]
pub struct CaseReport {
    pub name: String,
    pub dir: PathBuf,
    /// `None` when the model could not even be parsed.
    pub facts: Option<ModelFacts>,
    /// Every output compared, failing or not.
    pub outputs: Vec<OutputReport>,
    /// The first failure; `None` when the case passed.
    pub failure: Option<Failure>,
    /// On the WebGPU backend: whether it is a GPU case — a step ran on the GPU in some data
    /// set (or, when a run failed with an error, the model has a step with a GPU kernel).
    /// `None` on the CPU backend.
    pub gpu: Option<bool>,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    pub fn blamed_ops(&self) -> Vec<String> {
        self.failure
            .as_ref()
            .map(|f| f.blamed_ops(self.facts.as_ref()))
            .unwrap_or_default()
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Load the case's `model.onnx`, run every data set, compare every output.
pub fn check_case(dir: &Path, tol: Tolerance) -> CaseReport {
    check_case_on(dir, tol, &Backend::Cpu)
}

/// [`check_case`] on `backend`.
pub fn check_case_on(dir: &Path, tol: Tolerance, backend: &Backend) -> CaseReport {
    let mut report = CaseReport {
        name: file_name(dir),
        dir: dir.to_path_buf(),
        facts: None,
        outputs: Vec::new(),
        failure: None,
        gpu: backend.is_gpu().then_some(false),
    };
    report.failure = run_case(dir, tol, backend, &mut report).err();
    report
}

// The large error is the point: it is the case's outcome, made once per case.
#[allow(clippy::result_large_err)]
fn run_case(dir: &Path, tol: Tolerance, backend: &Backend, report: &mut CaseReport) -> Result<(), Failure> {
    let model_path = dir.join("model.onnx");
    let facts = ModelFacts::read(&model_path).map_err(Failure::Load)?;
    let model = load_model(&model_path);
    let non_tensor = facts.non_tensor_io.first().cloned();
    report.facts = Some(facts);
    let model = model.map_err(Failure::Load)?;
    if let Some((name, kind)) = non_tensor {
        return Err(Failure::NonTensorIo { name, kind });
    }
    let sets = data_sets(dir).map_err(Failure::Data)?;
    if sets.is_empty() {
        return Err(Failure::NoDataSets);
    }
    // One device for the whole run; the model's weights stay on it across its data sets.
    let resident = match backend {
        Backend::Cpu => None,
        Backend::WebGpu(gpu) => Some(Resident::new(gpu.clone())),
    };
    let mut first_wrong = None;
    for set in sets {
        let set_name = file_name(&set.dir);
        let inputs = set
            .inputs
            .into_iter()
            .enumerate()
            .map(
                |(i, (name, t))| match (name.is_empty(), model.inputs().get(i)) {
                    (true, Some(info)) => (info.name.clone(), t),
                    _ => (name, t),
                },
            )
            .collect();
        let run = match &resident {
            None => model.run(inputs, None),
            Some(resident) => pollster::block_on(model.run_gpu(resident, inputs, None)).map(|(run, stats)| {
                if stats.gpu_steps > 0 {
                    report.gpu = Some(true);
                }
                run
            }),
        };
        let run = run.map_err(|error| {
            if resident.is_some() && model.gpu_kernel_steps() > 0 {
                report.gpu = Some(true);
            }
            Failure::Run {
                set: set_name.clone(),
                error,
            }
        })?;
        if run.outputs.len() != set.outputs.len() {
            return Err(Failure::OutputCount {
                set: set_name,
                got: run.outputs.len(),
                want: set.outputs.len(),
            });
        }
        for (i, (want_name, want)) in set.outputs.iter().enumerate() {
            let got = if want_name.is_empty() {
                run.outputs.get(i)
            } else {
                run.outputs.iter().find(|(n, _)| n == want_name)
            };
            let Some((name, got)) = got else {
                return Err(Failure::MissingOutput {
                    set: set_name,
                    name: want_name.clone(),
                });
            };
            let diff = compare(got, want, tol).map_err(|e| Failure::Run {
                set: set_name.clone(),
                error: WickError::Internal(format!("reading output '{name}': {e}")),
            })?;
            if !diff.passed() && first_wrong.is_none() {
                let producer = report
                    .facts
                    .as_ref()
                    .and_then(|f| f.producers.get(name))
                    .cloned();
                first_wrong = Some(Failure::Wrong {
                    set: set_name.clone(),
                    output: name.clone(),
                    producer,
                    diff: diff.clone(),
                });
            }
            report.outputs.push(OutputReport {
                set: set_name.clone(),
                name: name.clone(),
                diff,
            });
        }
    }
    first_wrong.map_or(Ok(()), Err)
}

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Whether a panic can be caught: binaries built with `panic = "abort"` (the release profile)
/// stop at the first panic instead.
pub const CAN_CATCH_PANICS: bool = cfg!(panic = "unwind");

/// Run `f`, turning a panic into `Err(message at location)`. While `f` runs, the panic is not
/// printed; panics elsewhere still go to the previous hook.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                return previous(info);
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_string());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()));
            PANIC_MESSAGE
                .with(|m| *m.borrow_mut() = Some(format!("{message}{}", at.unwrap_or_default())));
        }));
    });
    let was = GUARDED.with(|g| g.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    result.map_err(|_| {
        PANIC_MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "(no message)".to_string())
    })
}

/// [`check_case_on`], with a panic reported as [`Failure::Panic`].
pub fn check_case_guarded(dir: &Path, tol: Tolerance, backend: &Backend) -> CaseReport {
    catch_panic(|| check_case_on(dir, tol, backend)).unwrap_or_else(|message| CaseReport {
        name: file_name(dir),
        dir: dir.to_path_buf(),
        facts: ModelFacts::read(&dir.join("model.onnx")).ok(),
        outputs: Vec::new(),
        failure: Some(Failure::Panic(one_line(&message))),
        gpu: backend.is_gpu().then_some(true),
    })
}

/// The case folders among `paths`: a folder with a `model.onnx` is a case; any other folder
/// stands for the case folders directly inside it (a suite), sorted.
pub fn case_dirs(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut cases = Vec::new();
    for p in paths {
        if p.join("model.onnx").is_file() || !p.is_dir() {
            cases.push(p.clone());
            continue;
        }
        let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        inside.retain(|d| d.join("model.onnx").is_file());
        inside.sort();
        if inside.is_empty() {
            cases.push(p.clone()); // Reported as a case without model.onnx.
        }
        cases.extend(inside);
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_onnx::onnx::{
        ModelProto, NodeProto, OperatorSetIdProto, TensorProto, ValueInfoProto,
    };
    use prost::Message;

    /// A fresh, empty folder for one test's case.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wick-check-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn floats(name: &str, v: &[f32]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: vec![v.len() as i64],
            data_type: 1,
            float_data: v.to_vec(),
            ..Default::default()
        }
    }

    /// `x → op → y`, one data set with input `x` and expected `y`.
    fn write_case(dir: &Path, op_type: &str, x: TensorProto, y: TensorProto) {
        let value = |name: &str| ValueInfoProto {
            name: name.into(),
            ..Default::default()
        };
        let node = NodeProto {
            op_type: op_type.into(),
            input: vec!["x".into()],
            output: vec!["y".into()],
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(GraphProto {
                node: vec![node],
                input: vec![value("x")],
                output: vec![value("y")],
                ..Default::default()
            }),
            ..Default::default()
        };
        std::fs::write(dir.join("model.onnx"), model.encode_to_vec()).unwrap();
        let set = dir.join("test_data_set_0");
        std::fs::create_dir_all(&set).unwrap();
        std::fs::write(set.join("input_0.pb"), x.encode_to_vec()).unwrap();
        std::fs::write(set.join("output_0.pb"), y.encode_to_vec()).unwrap();
    }

    #[test]
    fn a_passing_case_reports_each_output() {
        let dir = scratch("pass");
        write_case(
            &dir,
            "Identity",
            floats("x", &[1.0, f32::NAN]),
            floats("y", &[1.00005, f32::NAN]),
        );
        let report = check_case(&dir, Tolerance::default());
        assert!(report.passed(), "{:?}", report.failure.map(|f| f.reason()));
        assert_eq!(report.outputs.len(), 1);
        assert_eq!(
            (
                report.outputs[0].set.as_str(),
                report.outputs[0].name.as_str()
            ),
            ("test_data_set_0", "y")
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_wrong_value_blames_the_op_that_produced_it() {
        let dir = scratch("wrong");
        write_case(
            &dir,
            "Identity",
            floats("x", &[1.0, 2.0]),
            floats("y", &[1.0, 2.1]),
        );
        let report = check_case(&dir, Tolerance::default());
        let failure = report.failure.as_ref().expect("fails");
        assert_eq!(failure.kind(), "wrong");
        assert_eq!(failure.cause(), "wrong values from Identity");
        assert_eq!(report.blamed_ops(), vec!["Identity".to_string()]);
        assert!(
            failure
                .reason()
                .starts_with("test_data_set_0: output 'y' (from Identity): max abs"),
            "{}",
            failure.reason()
        );
        // A looser tolerance passes it.
        assert!(check_case(&dir, Tolerance { rel: 0.1, abs: 0.1 }).passed());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_wrong_dtype_or_shape_fails() {
        let dir = scratch("dtype");
        let mut y = floats("y", &[1.0, 2.0]);
        (y.data_type, y.float_data, y.double_data) = (11, vec![], vec![1.0, 2.0]);
        write_case(&dir, "Identity", floats("x", &[1.0, 2.0]), y);
        let failure = check_case(&dir, Tolerance::default())
            .failure
            .expect("fails");
        assert_eq!(failure.cause(), "wrong dtype from Identity");

        let dir2 = scratch("shape");
        let mut y = floats("y", &[1.0, 2.0]);
        y.dims = vec![1, 2];
        write_case(&dir2, "Identity", floats("x", &[1.0, 2.0]), y);
        let failure = check_case(&dir2, Tolerance::default())
            .failure
            .expect("fails");
        assert_eq!(failure.cause(), "wrong shape from Identity");
        for d in [dir, dir2] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn an_unsupported_op_is_a_load_failure_with_the_typed_error() {
        let dir = scratch("unsupported");
        write_case(&dir, "Frobnicate", floats("x", &[1.0]), floats("y", &[1.0]));
        let report = check_case(&dir, Tolerance::default());
        let failure = report.failure.as_ref().expect("fails");
        assert!(
            matches!(failure, Failure::Load(WickError::UnsupportedOp { op_type, .. }) if op_type == "Frobnicate")
        );
        assert_eq!(failure.kind(), "unsupported");
        assert_eq!(failure.cause(), "unsupported op Frobnicate");
        assert_eq!(
            failure.reason(),
            "operator Frobnicate (domain '', opset 13) is not supported"
        );
        assert_eq!(report.blamed_ops(), vec!["Frobnicate".to_string()]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_invalid_or_missing_model_is_a_load_failure() {
        let dir = scratch("corrupt");
        std::fs::write(dir.join("model.onnx"), b"\xff\xff not protobuf").unwrap();
        let failure = check_case(&dir, Tolerance::default())
            .failure
            .expect("fails");
        assert!(
            matches!(&failure, Failure::Load(e) if e.code() == wick_shared::ErrorCode::InvalidModel),
            "{failure:?}"
        );
        let missing = check_case(&dir.join("absent"), Tolerance::default())
            .failure
            .expect("fails");
        assert_eq!(missing.kind(), "load");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn unreadable_test_data_names_the_element_type() {
        let dir = scratch("complex");
        let mut x = floats("x", &[1.0, 0.0]);
        x.data_type = 14; // complex64: two floats per element, which the engine does not store
        x.dims = vec![1];
        write_case(&dir, "Identity", x.clone(), x);
        let failure = check_case(&dir, Tolerance::default())
            .failure
            .expect("fails");
        assert_eq!(failure.kind(), "data");
        assert_eq!(failure.cause(), "test data of element type complex64");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn unsupported_variants_and_extra_ops_are_grouped_by_the_first() {
        let failure = Failure::Load(WickError::UnsupportedOp {
            domain: "com.microsoft".into(),
            op_type: "Gelu".into(),
            opset: 1,
            detail: ": approximate=tanh; also unsupported: Foo".into(),
        });
        assert_eq!(
            failure.cause(),
            "unsupported variant of com.microsoft:Gelu: approximate=tanh"
        );
        let plain = Failure::Load(WickError::UnsupportedOp {
            domain: String::new(),
            op_type: "Frob".into(),
            opset: 7,
            detail: "; also unsupported: Zap".into(),
        });
        assert_eq!(plain.cause(), "unsupported op Frob");
        let facts = ModelFacts {
            ops: vec![
                ("".into(), "Frob".into()),
                ("".into(), "Relu".into()),
                ("".into(), "Zap".into()),
            ],
            opsets: [(String::new(), 7)].into(),
            ..ModelFacts::default()
        };
        assert_eq!(
            plain.blamed_ops(Some(&facts)),
            vec!["Frob".to_string(), "Zap".to_string()]
        );
    }

    #[test]
    fn a_panic_becomes_a_message_with_its_location() {
        let message = catch_panic(|| -> i32 { panic!("boom {}", 42) }).unwrap_err();
        assert!(
            message.starts_with("boom 42 at ") && message.contains("mod.rs"),
            "{message}"
        );
        assert_eq!(catch_panic(|| 7), Ok(7));
        let failure = Failure::Panic(message);
        assert_eq!(
            (failure.kind(), failure.cause().as_str()),
            ("panic", "panic in the engine")
        );
    }

    #[test]
    fn a_folder_without_model_stands_for_the_cases_inside() {
        let dir = scratch("suite");
        for case in ["test_b", "test_a"] {
            std::fs::create_dir_all(dir.join(case)).unwrap();
            write_case(
                &dir.join(case),
                "Identity",
                floats("x", &[1.0]),
                floats("y", &[1.0]),
            );
        }
        std::fs::create_dir_all(dir.join("not_a_case")).unwrap();
        let cases = case_dirs(std::slice::from_ref(&dir));
        assert_eq!(cases, vec![dir.join("test_a"), dir.join("test_b")]);
        assert_eq!(case_dirs(&[dir.join("test_a")]), vec![dir.join("test_a")]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
