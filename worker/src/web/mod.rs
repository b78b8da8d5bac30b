//! The worker's side of the protocol (wasm32 only): the message loop, one async task per
//! request, the table of loaded models, and cancellation. Every request ends with exactly one
//! final event; failures become typed `error` events and the loop keeps serving.

mod alloc;
mod cache;
mod fetch;
mod gpu;
mod load;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use js_sys::{Array, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{AbortController, DedicatedWorkerGlobalScope, MessageEvent};
use wick_shared::{
    js::{from_js, to_js},
    AudioInput, Backend, BackendChoice, WeightsChoice, Capabilities, TaskKind, Envelope, Event, GenerateOptions, MemoryStats, ModelStats, Prompt, Request,
    RunStats, TaskInput, Tensor, TranscribeOptions, PROTOCOL_VERSION,
};

use crate::engine::{tensor, ModelBackend, Resident};
use crate::tasks::speech_recognition::Transcriber;
use crate::tasks::text_generation::{Generation, Step};
use crate::tasks::transcription::{self, Speech, Transcription};
use crate::tasks::vad::{self, Vad};
use crate::tasks::Loaded;
use crate::error::{Result, WickError};
use load::LoadSpec;
use wick_gpu::Gpu;

/// `initThreadPool(n)` for wick-worker.js (the `threads` build only): starts rayon's pool of `n`
/// Web Workers sharing this module's memory; the engine's kernels then run on it.
// Exported by wasm-bindgen wherever it is declared; this `use` only makes this crate link it.
#[cfg(feature = "threads")]
#[allow(unused_imports)]
pub use wasm_bindgen_rayon::init_thread_pool;

enum Slot {
    /// Being loaded by request `id`.
    Loading(u32),
    Ready(Rc<Loaded>),
}

#[derive(Default)]
struct State {
    models: HashMap<String, Slot>,
    /// Abort handles of the requests that can be cancelled while in flight.
    inflight: HashMap<u32, AbortController>,
}

type MessageHandler = Closure<dyn FnMut(MessageEvent)>;

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
    static ON_MESSAGE: RefCell<Option<MessageHandler>> = const { RefCell::new(None) };
    /// The WebGPU device, opened by the first load that runs on it and shared by all models.
    static DEVICE: RefCell<Option<Rc<Gpu>>> = const { RefCell::new(None) };
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn now_ms() -> f64 {
    scope().performance().map_or_else(js_sys::Date::now, |p| p.now())
}

/// Post one event for request `id`, transferring its tensors' buffers.
fn post(id: u32, body: Event) {
    let sent = to_js(&Envelope { id, body }).and_then(|(msg, transfer)| {
        scope()
            .post_message_with_transfer(&msg, &transfer)
            .map_err(|e| wick_shared::WireError::new(wick_shared::ErrorCode::Internal, format!("{e:?}")))
    });
    if let Err(e) = sent {
        web_sys::console::error_1(&format!("wick worker: cannot post event {id}: {e}").into());
    }
}

/// Entry point, called by `wick-worker.js` once the module is instantiated, with the messages
/// that arrived while it was loading and the Promise of the WebGPU adapter it asked for.
#[wasm_bindgen]
pub fn start(pending: Array, adapter: JsValue) {
    gpu::requested(adapter);
    std::panic::set_hook(Box::new(|info| {
        // A panic is a bug; the module cannot continue after it. Tell the page (id 0 is the
        // worker itself) so it can fail pending requests and start a new worker.
        let msg = js_sys::Object::new();
        let body = js_sys::Object::new();
        let _ = Reflect::set(&body, &"type".into(), &"error".into());
        let _ = Reflect::set(&body, &"code".into(), &"internal".into());
        let _ = Reflect::set(&body, &"message".into(), &format!("worker panicked: {info}").into());
        let _ = Reflect::set(&msg, &"id".into(), &0.into());
        let _ = Reflect::set(&msg, &"body".into(), &body);
        let _ = scope().post_message(&msg);
    }));
    let handler = Closure::<dyn FnMut(MessageEvent)>::new(|e: MessageEvent| on_message(e.data()));
    scope().set_onmessage(Some(handler.as_ref().unchecked_ref()));
    ON_MESSAGE.with(|h| *h.borrow_mut() = Some(handler));
    for msg in pending.iter() {
        on_message(msg);
    }
}

fn on_message(data: JsValue) {
    let id = Reflect::get(&data, &"id".into()).ok().and_then(|v| v.as_f64()).map_or(0, |v| v as u32);
    match from_js::<Envelope<Request>>(data) {
        Ok(env) => spawn_local(handle(env)),
        Err(e) => post(id, Event::Error(e)),
    }
}

async fn handle(env: Envelope<Request>) {
    let id = env.id;
    let result = match env.body {
        Request::Hello { protocol } => hello(protocol).await,
        Request::Load { model, url, manifest, variant, external_data, sha256, cache, task, backend, weights } => {
            // `weights` is resolved against the backend once that is chosen (`load`).
            let spec = LoadSpec {
                url,
                manifest,
                variant,
                external_data,
                sha256,
                cache: cache.unwrap_or(true),
                task,
                weights: load::Weights::Host,
                bind_limit: None,
            };
            load(id, model, spec, backend.unwrap_or_default(), weights.unwrap_or_default()).await
        }
        Request::Run { model, inputs, outputs } => run(&model, inputs, outputs).await,
        Request::Task { model, input } => task(&model, input).await,
        Request::Generate { model, prompt, options } => generate(id, &model, prompt, options).await,
        Request::Transcribe { model, audio, options } => transcribe(id, &model, audio, options).await,
        Request::Cancel { target } => Ok(cancel(target)),
        Request::Unload { model } => unload(&model),
        Request::Stats {} => Ok(stats()),
        Request::CacheList {} => cache_list().await,
        Request::CacheDelete { url } => cache_delete(&url).await,
    };
    let event = match result {
        Ok(event) => event,
        Err(WickError::Cancelled) => Event::Cancelled {},
        Err(e) => Event::Error(e.to_wire()),
    };
    post(id, event);
}

async fn hello(protocol: u32) -> Result<Event> {
    if protocol != PROTOCOL_VERSION {
        return Err(WickError::ProtocolMismatch { requested: protocol, spoken: PROTOCOL_VERSION });
    }
    Ok(Event::Hello {
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_string(),
        capabilities: Capabilities {
            backends: vec![Backend::Cpu, Backend::Webgpu],
            tasks: crate::tasks::kinds(),
            ops: crate::engine::ops::op_names(),
            gpu_ops: crate::engine::gpu::ops::gpu_op_names().into_iter().map(String::from).collect(),
            simd: cfg!(target_feature = "simd128"),
            // rayon's pool: the Web Workers of the `threads` build; 1 in the single-threaded
            // build (or if the pool did not start), where every job runs on this thread.
            threads: rayon::current_num_threads() as u32,
            gpu: gpu::adapter().await,
        },
    })
}

fn model(name: &str) -> Result<Rc<Loaded>> {
    STATE.with(|s| match s.borrow().models.get(name) {
        Some(Slot::Ready(m)) => Ok(m.clone()),
        _ => Err(WickError::UnknownModel(name.to_string())),
    })
}

/// The worker's WebGPU device, opened on first use (and again after a loss).
async fn device() -> Result<Rc<Gpu>> {
    if let Some(gpu) = DEVICE.with(|d| d.borrow().clone()).filter(|g| g.lost().is_none()) {
        return Ok(gpu);
    }
    let gpu = Rc::new(Gpu::new().await.map_err(|e| WickError::GpuUnavailable(e.to_string()))?);
    DEVICE.with(|d| *d.borrow_mut() = Some(gpu.clone()));
    Ok(gpu)
}

/// Tasks whose models run on the CPU whatever the backend (their step loops call the model
/// directly): `webgpu` is refused for them.
fn cpu_only(task: Option<TaskKind>) -> bool {
    matches!(task, Some(TaskKind::AutomaticSpeechRecognition | TaskKind::VoiceActivityDetection))
}

/// Tasks that run on WebGPU when asked but that `auto` leaves on the CPU: generation (its KV
/// cache stays on the device, but no hardware GPU has yet measured it faster than the CPU).
fn cpu_preferred(task: Option<TaskKind>) -> bool {
    matches!(task, Some(TaskKind::TextGeneration))
}

/// The adapter as the browser describes it (wgpu's own info has no name on the web).
fn adapter_name(adapter: &wick_shared::GpuAdapter) -> String {
    let parts = [adapter.vendor.as_str(), adapter.architecture.as_str(), adapter.description.as_str()];
    let name = parts.iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ");
    if name.is_empty() { "an unnamed adapter".to_string() } else { name }
}

/// Picks the backend for a load and says why.
async fn choose(choice: BackendChoice, task: Option<TaskKind>) -> Result<ModelBackend> {
    let adapter = gpu::adapter().await;
    let task_name = || task.map_or(String::new(), |t| serde_json::to_string(&t).unwrap_or_default());
    match choice {
        BackendChoice::Cpu => Ok(ModelBackend::cpu("backend \"cpu\" was asked for")),
        BackendChoice::Webgpu => {
            let Some(adapter) = adapter else {
                return Err(WickError::GpuUnavailable("this worker's navigator.gpu offers no adapter".into()));
            };
            if cpu_only(task) {
                return Err(WickError::GpuUnavailable(format!("the {} task runs on the CPU backend in this version", task_name())));
            }
            let gpu = device().await?;
            let reason = format!("backend \"webgpu\" was asked for ({})", adapter_name(&adapter));
            Ok(ModelBackend::gpu(Resident::new(gpu), false, reason))
        }
        BackendChoice::Auto => {
            let Some(adapter) = adapter else {
                return Ok(ModelBackend::cpu("no WebGPU adapter"));
            };
            if adapter.is_fallback_adapter {
                return Ok(ModelBackend::cpu(format!(
                    "the only WebGPU adapter is a software fallback ({}): the CPU backend is faster",
                    adapter_name(&adapter)
                )));
            }
            if cpu_only(task) || cpu_preferred(task) {
                return Ok(ModelBackend::cpu(format!("the {} task runs on the CPU backend in this version", task_name())));
            }
            match device().await {
                Ok(gpu) => {
                    let reason = format!("a WebGPU adapter is available ({})", adapter_name(&adapter));
                    Ok(ModelBackend::gpu(Resident::new(gpu), true, reason))
                }
                Err(e) => Ok(ModelBackend::cpu(format!("no WebGPU device: {e}"))),
            }
        }
    }
}

async fn load(id: u32, name: String, mut spec: LoadSpec, choice: BackendChoice, weights: WeightsChoice) -> Result<Event> {
    let controller = AbortController::new().map_err(|e| WickError::Internal(format!("{e:?}")))?;
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.models.contains_key(&name) {
            return Err(WickError::ModelExists(name.clone()));
        }
        s.models.insert(name.clone(), Slot::Loading(id));
        s.inflight.insert(id, controller.clone());
        Ok(())
    })?;
    let started = now_ms();
    let task = spec.task;
    // The backend first: weights bound for the GPU stream straight to its device.
    let chosen = choose(choice, task).await.and_then(|b| Ok((load::Weights::of(weights, &b)?, b)));
    let result = match chosen {
        Ok((weights, backend)) => {
            spec.weights = weights;
            spec.bind_limit = backend.device().map(|gpu| gpu.max_binding_bytes());
            load::load(id, spec, &controller.signal()).await.and_then(|(mut m, c)| {
                Rc::get_mut(&mut m).ok_or_else(|| WickError::Internal("the new model is shared".into()))?.backend = backend;
                Ok((m, c))
            })
        }
        Err(e) => Err(e),
    };
    let cancelled = controller.signal().aborted();
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.inflight.remove(&id);
        let still_wanted = matches!(s.models.get(&name), Some(Slot::Loading(l)) if *l == id);
        match &result {
            Ok((m, _)) if still_wanted && !cancelled => {
                s.models.insert(name.clone(), Slot::Ready(m.clone()));
            }
            _ if still_wanted => {
                s.models.remove(&name);
            }
            _ => {}
        }
    });
    if cancelled {
        return Err(WickError::Cancelled);
    }
    let (loaded, cache) = result?;
    let model = &loaded.model;
    Ok(Event::Ready {
        model: name,
        backend: loaded.backend.backend(),
        backend_reason: loaded.backend.reason(),
        inputs: model.inputs().to_vec(),
        outputs: model.outputs().to_vec(),
        weight_bytes: loaded.weight_bytes(),
        gpu_weight_bytes: loaded.gpu_weight_bytes(),
        load_ms: now_ms() - started,
        cache,
    })
}

async fn run(name: &str, inputs: BTreeMap<String, Tensor>, wanted: Option<Vec<String>>) -> Result<Event> {
    let loaded = model(name)?;
    let model = &loaded.model;
    let feeds = inputs
        .iter()
        .map(|(k, t)| Ok((k.clone(), tensor::from_wire(k, t)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    let started = now_ms();
    let (out, gpu) = loaded.backend.run(model, feeds, wanted.as_deref()).await?;
    let run_ms = now_ms() - started;
    let mut outputs = BTreeMap::new();
    for (name, t) in &out.outputs {
        let declared = model.outputs().iter().find(|o| &o.name == name).and_then(|o| o.dtype);
        outputs.insert(name.clone(), tensor::to_wire(t, declared)?);
    }
    Ok(Event::Output {
        outputs,
        stats: RunStats { run_ms, peak_intermediate_bytes: out.peak_intermediate_bytes, gpu },
    })
}

async fn task(name: &str, input: TaskInput) -> Result<Event> {
    let model = model(name)?;
    let started = now_ms();
    model.take_gpu_stats();
    let outcome = crate::tasks::run(&model, input).await?;
    Ok(Event::Result {
        result: outcome.output,
        stats: RunStats { run_ms: now_ms() - started, peak_intermediate_bytes: outcome.peak_intermediate_bytes, gpu: model.take_gpu_stats() },
    })
}

/// The generation loop: one `token` event per step that completed some text.
async fn generate(id: u32, name: &str, prompt: Prompt, options: GenerateOptions) -> Result<Event> {
    let loaded = model(name)?;
    let seed = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
    let mut generation = Generation::new(&loaded, &prompt, &options, seed)?;
    let inflight = Inflight::new(id)?;
    let mut finish = None;
    stream(id, &inflight, async || match generation.step(&now_ms).await? {
        Step::Token { text, .. } => Ok((text, false)),
        Step::Finished { reason, text } => {
            finish = Some(reason);
            Ok((text, true))
        }
    })
    .await?;
    let finish = finish.ok_or_else(|| WickError::Internal("generation ended without a reason".into()))?;
    Ok(Event::Generated { text: generation.text().to_string(), finish, stats: generation.stats() })
}

/// Audio voice-activity detection reads between two checks for a `cancel` (10 s).
const VAD_PIECE: usize = 10 * vad::RATE / vad::FRAME * vad::FRAME;

/// The transcription loop: the audio to 16 kHz PCM, voice-activity detection when asked (in
/// pieces, taking a `cancel` between them), then one `token` event per step that decoded some
/// text.
async fn transcribe(id: u32, name: &str, audio: AudioInput, options: TranscribeOptions) -> Result<Event> {
    let started = now_ms();
    let loaded = model(name)?;
    let transcriber = Transcriber::new(&loaded)?;
    let inflight = Inflight::new(id)?;
    let pcm = crate::tasks::audio::pcm16k(&audio)?;
    let audio_ms = now_ms() - started;
    let windows = match &options.vad {
        Some(name) => {
            let vad_model = model(name)?;
            let vad = Vad::new(&vad_model.model)?;
            let mut frames = vad.start()?;
            for piece in pcm.chunks(VAD_PIECE) {
                inflight.check()?;
                frames.push(piece)?;
                yield_now().await;
            }
            let probabilities = frames.probabilities;
            let speech = vad::speech_segments(&probabilities, pcm.len(), &transcription::vad_options());
            transcription::windows(&pcm, Some(Speech { segments: &speech, probabilities: &probabilities, frame: vad::FRAME }))
        }
        None => transcription::windows(&pcm, None),
    };
    let vad_ms = now_ms() - started - audio_ms;
    let settings = transcription::Settings {
        timestamps: options.timestamps.unwrap_or(false),
        max_new_tokens: options.max_new_tokens.map(|n| n as usize),
    };
    let mut job = Transcription::new(&transcriber, pcm, windows, settings)?;
    stream(id, &inflight, async || match job.step(&now_ms)? {
        transcription::Step::Piece(text) => Ok((text, false)),
        transcription::Step::Finished => Ok((String::new(), true)),
    })
    .await?;
    let mut stats = job.stats();
    stats.audio_ms = audio_ms;
    stats.vad_ms = vad_ms;
    stats.total_ms = now_ms() - started;
    stats.real_time_factor = if stats.audio_seconds > 0.0 { stats.total_ms / 1000.0 / stats.audio_seconds } else { 0.0 };
    Ok(Event::Transcribed { text: job.text().to_string(), chunks: job.chunks().to_vec(), stats })
}

/// A request that a `cancel` can stop while it runs: its abort handle is listed while this
/// lives.
struct Inflight {
    id: u32,
    controller: AbortController,
}

impl Inflight {
    fn new(id: u32) -> Result<Self> {
        let controller = AbortController::new().map_err(|e| WickError::Internal(format!("{e:?}")))?;
        STATE.with(|s| s.borrow_mut().inflight.insert(id, controller.clone()));
        Ok(Inflight { id, controller })
    }

    /// `Cancelled` once a `cancel` came for this request.
    fn check(&self) -> Result<()> {
        if self.controller.signal().aborted() { Err(WickError::Cancelled) } else { Ok(()) }
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        STATE.with(|s| s.borrow_mut().inflight.remove(&self.id));
    }
}

/// Drive a streamed request: `step` until it says it is done, posting each non-empty piece of
/// text as a `token` event, with a yield to the event loop between steps so that a `cancel`
/// (or any other request) is handled within one step.
async fn stream(id: u32, inflight: &Inflight, mut step: impl AsyncFnMut() -> Result<(String, bool)>) -> Result<()> {
    loop {
        inflight.check()?;
        let (text, done) = step().await?;
        if !text.is_empty() {
            post(id, Event::Token { text });
        }
        if done {
            return Ok(());
        }
        yield_now().await;
    }
}

/// Let the event loop run (queued messages included) before continuing: a message through a
/// fresh MessageChannel, which, unlike a chain of zero timeouts, is never clamped to 4 ms.
async fn yield_now() {
    let Ok(channel) = web_sys::MessageChannel::new() else { return };
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        channel.port1().set_onmessage(Some(&resolve));
    });
    if channel.port2().post_message(&JsValue::NULL).is_ok() {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    channel.port1().set_onmessage(None);
}

/// Abort request `target` if it is still in flight; the cancel itself always ends with `done`.
fn cancel(target: u32) -> Event {
    if let Some(c) = STATE.with(|s| s.borrow().inflight.get(&target).cloned()) {
        c.abort();
    }
    Event::Done {}
}

fn unload(name: &str) -> Result<Event> {
    let removed = STATE.with(|s| s.borrow_mut().models.remove(name));
    match removed {
        Some(Slot::Loading(id)) => {
            cancel(id);
            Ok(Event::Done {})
        }
        Some(Slot::Ready(_)) => Ok(Event::Done {}),
        None => Err(WickError::UnknownModel(name.to_string())),
    }
}

/// The loaded models and the worker's memory.
fn stats() -> Event {
    let models = STATE.with(|s| {
        let s = s.borrow();
        let mut models: Vec<ModelStats> = s
            .models
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Ready(m) => Some(ModelStats { model: name.clone(), backend: m.backend.backend(), weight_bytes: m.weight_bytes() }),
                Slot::Loading(_) => None,
            })
            .collect();
        models.sort_by(|a, b| a.model.cmp(&b.model));
        models
    });
    let wasm_bytes = wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as u64;
    let (allocated_bytes, peak_allocated_bytes) = alloc::allocated();
    Event::Stats { models, memory: MemoryStats { wasm_bytes, allocated_bytes, peak_allocated_bytes } }
}

async fn cache_list() -> Result<Event> {
    let models = cache::Cache::open().await?.list().await?;
    Ok(Event::Cached { models })
}

async fn cache_delete(url: &str) -> Result<Event> {
    let url = fetch::resolve(url, None)?;
    cache::Cache::open().await?.delete(&url).await?;
    Ok(Event::Done {})
}
