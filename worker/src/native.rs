//! Native helpers (not in the wasm build): load a model from disk through the same streaming
//! router the browser uses, and read ONNX-test-style data (`test_data_set_*/{input,output}_*.pb`).
//! Used by the native tests and by `cargo xtask` tools.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use candle_core::Tensor;
use candle_onnx::onnx::{ModelProto, TensorProto};
use wick_gpu::Gpu;
use prost::Message;

use crate::engine::{parse_model, tensor::from_proto, Model};
use crate::error::{Result, WickError};
use crate::loader::{CpuPlacement, ExternalPlan, FileRouter, GpuPlacement, Placed, Placement};

/// Load `model.onnx` and its external data (relative to its folder), streaming each data file
/// in chunks whose sizes `next_chunk` picks (it gets the file offset so far).
pub fn load_model_chunked(path: &Path, next_chunk: impl FnMut(u64) -> usize) -> Result<Model> {
    let (proto, placed) = stream_model(path, &mut CpuPlacement, None, next_chunk)?;
    Model::build(proto, placed.into_iter().collect())
}

/// [`load_model_chunked`] through a [`GpuPlacement`]: f32 external weights go from the file's
/// chunks straight to `gpu`, the others to the host; weights wider than one of its bindings are
/// cut first (`engine::split`), as the worker does. Device errors of the writes are reported
/// here, before the model is built.
pub fn load_model_on_gpu(path: &Path, gpu: Rc<Gpu>, next_chunk: impl FnMut(u64) -> usize) -> Result<Model> {
    let limit = Some(gpu.max_binding_bytes());
    let (proto, placed) = stream_model(path, &mut GpuPlacement::new(gpu.clone()), limit, next_chunk)?;
    pollster::block_on(gpu.check()).map_err(|e| WickError::Internal(format!("placing the weights: {e}")))?;
    let (mut host, mut device) = (HashMap::new(), HashMap::new());
    for (name, p) in placed {
        match p {
            Placed::Host(t) => drop(host.insert(name, t)),
            Placed::Device(t) => drop(device.insert(name, t)),
        }
    }
    Model::build_placed(proto, host, device)
}

/// Parses the graph at `path`, cuts the weights wider than `split` bytes, and streams its
/// external-data files through `placement`.
fn stream_model<P: Placement>(
    path: &Path,
    placement: &mut P,
    split: Option<u64>,
    mut next_chunk: impl FnMut(u64) -> usize,
) -> Result<(ModelProto, Vec<(String, P::Output)>)> {
    let io = |p: &Path, e: std::io::Error| WickError::Fetch {
        file: p.display().to_string(),
        status: None,
        message: e.to_string(),
    };
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let mut proto = parse_model(&bytes)?;
    drop(bytes);
    if let Some(limit) = split {
        crate::engine::split::split_wide_weights(&mut proto, limit)?;
    }
    let plan = ExternalPlan::from_graph(proto.graph.as_ref().expect("parse_model checks the graph"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut placed = Vec::new();
    for (location, tensors) in plan.files {
        let file_path = dir.join(&location);
        let mut router = FileRouter::new(location.clone(), tensors, placement)?;
        let mut file = File::open(&file_path).map_err(|e| io(&file_path, e))?;
        let mut buf = Vec::new();
        let mut pos = 0u64;
        loop {
            buf.resize(next_chunk(pos).max(1), 0);
            let n = file.read(&mut buf).map_err(|e| io(&file_path, e))?;
            if n == 0 {
                break;
            }
            router.feed(&buf[..n], placement)?;
            pos += n as u64;
        }
        placed.extend(router.finish()?);
    }
    Ok((proto, placed))
}

/// Load a model with 64 KiB chunks.
pub fn load_model(path: &Path) -> Result<Model> {
    load_model_chunked(path, |_| 64 * 1024)
}

/// Load a Hugging Face-style model folder for `task` as the worker does: `onnx/model.onnx` (or
/// `model.onnx` at the root) and the companion files the task's row names, from the root.
pub fn load_for_task(folder: &Path, task: wick_shared::TaskKind) -> Result<crate::tasks::Loaded> {
    load_variant_for_task(folder, None, task)
}

/// [`load_for_task`] of `onnx/model_{variant}.onnx` (e.g. `q4`) when `variant` is given.
pub fn load_variant_for_task(folder: &Path, variant: Option<&str>, task: wick_shared::TaskKind) -> Result<crate::tasks::Loaded> {
    let file = variant.map_or("model.onnx".to_string(), |v| format!("model_{v}.onnx"));
    let hf = folder.join("onnx").join(file);
    let model = load_model(&if hf.is_file() { hf } else { folder.join("model.onnx") })?;
    with_files(crate::tasks::Loaded::new(model), folder, crate::tasks::files_for(task)?)
}

/// [`load_variant_for_task`] with its f32 weights streamed to `gpu` ([`load_model_on_gpu`]),
/// on the WebGPU backend.
pub fn load_variant_on_gpu(folder: &Path, variant: Option<&str>, task: wick_shared::TaskKind, gpu: Rc<Gpu>) -> Result<crate::tasks::Loaded> {
    let file = variant.map_or("model.onnx".to_string(), |v| format!("model_{v}.onnx"));
    let hf = folder.join("onnx").join(file);
    let model = load_model_on_gpu(&if hf.is_file() { hf } else { folder.join("model.onnx") }, gpu.clone(), |_| 64 * 1024)?;
    let mut loaded = crate::tasks::Loaded::new(model);
    loaded.backend = crate::engine::ModelBackend::gpu(crate::engine::Resident::new(gpu), false, "asked for");
    with_files(loaded, folder, crate::tasks::files_for(task)?)
}

/// `loaded` with the companion files `names` read from `folder`.
fn with_files(mut loaded: crate::tasks::Loaded, folder: &Path, names: &[&str]) -> Result<crate::tasks::Loaded> {
    for name in names {
        let path = folder.join(name);
        let bytes = std::fs::read(&path).map_err(|e| WickError::Fetch {
            file: path.display().to_string(),
            status: None,
            message: e.to_string(),
        })?;
        loaded.files.insert(name.to_string(), bytes);
    }
    Ok(loaded)
}

/// Load a Whisper folder (Hugging Face / transformers.js layout) for speech recognition:
/// `onnx/encoder_model{_variant}.onnx`, and `onnx/decoder_model_merged{_variant}.onnx` with the
/// companion files of [`crate::tasks::speech_recognition::FILES`] (tokenizer, configs).
pub fn load_asr_folder(folder: &Path, variant: Option<&str>) -> Result<crate::tasks::Loaded> {
    let suffix = variant.map_or(String::new(), |v| format!("_{v}"));
    let onnx = folder.join("onnx");
    let graph = |stem: &str| load_model(&onnx.join(format!("{stem}{suffix}.onnx")));
    let task = Some(wick_shared::TaskKind::AutomaticSpeechRecognition);
    let (main, others) = crate::tasks::graphs_for(task)?.split_first().ok_or_else(|| WickError::invalid("no graphs"))?;
    let mut loaded = crate::tasks::Loaded::new(graph(main)?);
    for stem in others {
        loaded.graphs.insert(stem.to_string(), graph(stem)?);
    }
    with_files(loaded, folder, crate::tasks::speech_recognition::FILES)
}

/// Read one serialized TensorProto (`input_0.pb`).
pub fn read_tensor(path: &Path) -> Result<(String, Tensor)> {
    let bytes = std::fs::read(path).map_err(|e| WickError::invalid(format!("{}: {e}", path.display())))?;
    let proto = TensorProto::decode(bytes.as_slice())
        .map_err(|e| WickError::invalid(format!("{}: {e}", path.display())))?;
    Ok((proto.name.clone(), from_proto(&proto)?))
}

/// One ONNX-test data set: named inputs and expected outputs, in file order.
pub struct DataSet {
    pub dir: PathBuf,
    pub inputs: Vec<(String, Tensor)>,
    pub outputs: Vec<(String, Tensor)>,
}

/// Every `test_data_set_*` folder of a test case directory, sorted.
pub fn data_sets(case: &Path) -> Result<Vec<DataSet>> {
    let read_dir = |p: &Path| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| WickError::invalid(format!("{}: {e}", p.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    let numbered = |files: &[PathBuf], prefix: &str| -> Result<Vec<(String, Tensor)>> {
        let mut picked: Vec<(usize, &PathBuf)> = files
            .iter()
            .filter_map(|f| {
                let name = f.file_name()?.to_str()?;
                let n = name.strip_prefix(prefix)?.strip_suffix(".pb")?.parse().ok()?;
                Some((n, f))
            })
            .collect();
        picked.sort();
        picked.into_iter().map(|(_, f)| read_tensor(f)).collect()
    };
    let mut sets = Vec::new();
    for dir in read_dir(case)? {
        let is_set = dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("test_data_set_"));
        if !is_set || !dir.is_dir() {
            continue;
        }
        let files = read_dir(&dir)?;
        sets.push(DataSet { inputs: numbered(&files, "input_")?, outputs: numbered(&files, "output_")?, dir });
    }
    Ok(sets)
}
