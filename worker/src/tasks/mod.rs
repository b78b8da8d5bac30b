//! Tasks: pre-processing → model → post-processing, one file per task, listed in [`TASKS`].
//! A task turns what a page has (an image, audio, text) into tensors and the model's tensors
//! into what the page wants (a label, boxes, text). A task may read files that come with the
//! model (`config.json`, `preprocessor_config.json`, …): its row names them, and a load for
//! that task fetches them beside the model into [`Loaded::files`].

pub mod audio;
mod digits;
pub mod feature_extraction;
pub mod image;
pub mod image_classification;
pub mod mtcnn;
pub mod object_detection;
mod resample;
pub mod speech_recognition;
pub mod text_generation;
pub mod transcription;
pub mod vad;
pub mod yolox;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use wick_shared::{TaskInput, TaskKind, TaskOutput};

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use candle_core::Tensor;
use wick_shared::GpuRunStats;

use crate::engine::{Carried, Model, ModelBackend, RunOutput};
use crate::error::{Result, WickError};

/// One registry row: a task, the files it reads beside the model, and its function.
pub struct TaskDef {
    pub kind: TaskKind,
    /// Names of the files the task reads, relative to the model's folder (for a Hugging Face
    /// folder, its root).
    pub files: &'static [&'static str],
    /// The graphs a load from a folder (or manifest) reads, by file stem in its `onnx/`: the
    /// first becomes [`Loaded::model`], the others [`Loaded::graphs`]. Empty: `model` alone.
    pub graphs: &'static [&'static str],
    pub run: for<'a> fn(&'a Loaded, TaskInput) -> Running<'a>,
}

/// A task's run: async, because on the WebGPU backend reading results back waits for the
/// browser ([`Loaded::infer`]).
pub type Running<'a> = Pin<Box<dyn Future<Output = Result<Outcome>> + 'a>>;

/// A task's answer plus the engine's run statistics.
pub struct Outcome {
    pub output: TaskOutput,
    pub peak_intermediate_bytes: u64,
}

pub static TASKS: &[TaskDef] = &[
    TaskDef { kind: TaskKind::Digits, files: &[], graphs: &[], run: digits::run },
    TaskDef {
        kind: TaskKind::ImageClassification,
        files: image_classification::FILES,
        graphs: &[],
        run: image_classification::run,
    },
    TaskDef { kind: TaskKind::ObjectDetection, files: object_detection::FILES, graphs: &[], run: object_detection::run },
    TaskDef {
        kind: TaskKind::FeatureExtraction,
        files: feature_extraction::FILES,
        graphs: &[],
        run: feature_extraction::run,
    },
    TaskDef { kind: TaskKind::TextGeneration, files: text_generation::FILES, graphs: &[], run: streamed },
    TaskDef {
        kind: TaskKind::AutomaticSpeechRecognition,
        files: speech_recognition::FILES,
        graphs: speech_recognition::GRAPHS,
        run: streamed,
    },
    TaskDef { kind: TaskKind::VoiceActivityDetection, files: &[], graphs: &[], run: vad::run },
];

/// Generation and transcription are requests of their own (`generate`, `transcribe`: streamed),
/// not `task`s.
fn streamed(_: &Loaded, _: TaskInput) -> Running<'_> {
    Box::pin(async { Err(WickError::BadTask("this model answers `generate` or `transcribe` requests, not `task`".into())) })
}

/// A loaded model as tasks see it: the planned graph(s) and the files that came with it.
pub struct Loaded {
    pub model: Model,
    /// The task's other graphs, by file stem (speech recognition: `encoder_model`).
    pub graphs: BTreeMap<String, Model>,
    /// File name → bytes, as named by the task's row.
    pub files: BTreeMap<String, Vec<u8>>,
    /// `tokenizer.json`, parsed on first use (text tasks).
    pub tokenizer: std::cell::OnceCell<tokenizers::Tokenizer>,
    /// Where [`Loaded::infer`] runs `model` (the CPU unless the load chose WebGPU).
    pub backend: ModelBackend,
    /// The GPU stats of the `infer` calls since [`Loaded::take_gpu_stats`], summed.
    gpu_stats: RefCell<Option<GpuRunStats>>,
}

impl Loaded {
    pub fn new(model: Model) -> Self {
        Loaded {
            model,
            graphs: BTreeMap::new(),
            files: BTreeMap::new(),
            tokenizer: std::cell::OnceCell::new(),
            backend: ModelBackend::cpu("the CPU is the default backend"),
            gpu_stats: RefCell::new(None),
        }
    }

    /// Runs `model` on its backend (see [`Model::run`] for `wanted`). The tasks' one way to run
    /// their main graph, so that a WebGPU load runs them on the GPU.
    pub async fn infer(&self, feeds: HashMap<String, Tensor>, wanted: Option<&[String]>) -> Result<RunOutput> {
        let (out, _) = self.infer_keeping(feeds, Carried::new(), wanted, &[]).await?;
        Ok(out)
    }

    /// [`Loaded::infer`] carrying values from step to step ([`ModelBackend::run_keeping`]): on
    /// WebGPU the outputs named in `keep` stay on the device, to be `carried` into the next.
    pub async fn infer_keeping(
        &self,
        feeds: HashMap<String, Tensor>,
        carried: Carried,
        wanted: Option<&[String]>,
        keep: &[String],
    ) -> Result<(RunOutput, Carried)> {
        let (out, kept, gpu) = self.backend.run_keeping(&self.model, feeds, carried, wanted, keep).await?;
        self.add_gpu_stats(gpu);
        Ok((out, kept))
    }

    fn add_gpu_stats(&self, gpu: Option<GpuRunStats>) {
        if let Some(gpu) = gpu {
            let mut sum = self.gpu_stats.borrow_mut();
            let sum = sum.get_or_insert_with(GpuRunStats::default);
            sum.gpu_steps += gpu.gpu_steps;
            sum.cpu_steps += gpu.cpu_steps;
            for op in gpu.cpu_ops {
                if let Err(at) = sum.cpu_ops.binary_search(&op) {
                    sum.cpu_ops.insert(at, op);
                }
            }
            sum.uploads += gpu.uploads;
            sum.upload_bytes += gpu.upload_bytes;
            sum.downloads += gpu.downloads;
            sum.download_bytes += gpu.download_bytes;
            sum.retried_on_cpu = sum.retried_on_cpu.take().or(gpu.retried_on_cpu);
        }
    }

    /// The GPU stats summed since the last call (`None` when nothing ran on the GPU backend).
    pub fn take_gpu_stats(&self) -> Option<GpuRunStats> {
        self.gpu_stats.borrow_mut().take()
    }

    /// The other graph `name`.
    pub fn graph(&self, name: &str) -> Result<&Model> {
        self.graphs
            .get(name)
            .ok_or_else(|| WickError::BadTask(format!("the model was loaded without its {name} graph: load it for this task")))
    }

    /// Bytes of weights held by all the graphs.
    pub fn weight_bytes(&self) -> u64 {
        self.model.weight_bytes() + self.graphs.values().map(Model::weight_bytes).sum::<u64>()
    }

    /// Of [`Loaded::weight_bytes`], those that live only on the GPU.
    pub fn gpu_weight_bytes(&self) -> u64 {
        self.model.device_weight_bytes() + self.graphs.values().map(Model::device_weight_bytes).sum::<u64>()
    }

    /// The file `name`, parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let bytes = self.files.get(name).ok_or_else(|| {
            WickError::BadTask(format!("the model was loaded without its {name}: load it for this task"))
        })?;
        serde_json::from_slice(bytes).map_err(|e| WickError::BadTask(format!("{name}: {e}")))
    }
}

/// The kind of a task input.
pub fn kind_of(input: &TaskInput) -> TaskKind {
    match input {
        TaskInput::Digits { .. } => TaskKind::Digits,
        TaskInput::ImageClassification { .. } => TaskKind::ImageClassification,
        TaskInput::ObjectDetection { .. } => TaskKind::ObjectDetection,
        TaskInput::FeatureExtraction { .. } => TaskKind::FeatureExtraction,
        TaskInput::VoiceActivityDetection { .. } => TaskKind::VoiceActivityDetection,
    }
}

fn def(kind: TaskKind) -> Result<&'static TaskDef> {
    TASKS
        .iter()
        .find(|t| t.kind == kind)
        .ok_or_else(|| WickError::BadTask(format!("task {kind:?} is not available")))
}

pub async fn run(model: &Loaded, input: TaskInput) -> Result<Outcome> {
    (def(kind_of(&input))?.run)(model, input).await
}

/// The files a load for `task` fetches beside the model.
pub fn files_for(task: TaskKind) -> Result<&'static [&'static str]> {
    Ok(def(task)?.files)
}

/// The graphs (file stems) a load for `task` reads from a folder: the main one first.
pub fn graphs_for(task: Option<TaskKind>) -> Result<&'static [&'static str]> {
    let graphs = match task {
        Some(task) => def(task)?.graphs,
        None => &[],
    };
    Ok(if graphs.is_empty() { &["model"] } else { graphs })
}

/// Probabilities from a model's scores: kept if they already are a distribution, else soft-maxed.
pub fn probabilities(scores: Vec<f32>) -> Vec<f32> {
    let sum: f32 = scores.iter().sum();
    if scores.iter().all(|&p| (0.0..=1.0).contains(&p)) && (sum - 1.0).abs() < 1e-3 {
        return scores;
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / total).collect()
}

pub fn kinds() -> Vec<TaskKind> {
    TASKS.iter().map(|t| t.kind).collect()
}
