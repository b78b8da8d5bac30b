//! `pipeline(task, modelUrl, options)`: a model loaded for one task, behind `run(input)`.
//!
//! Pipelines made by the free function share one worker per worker URL (spawned on first use,
//! spawned again if it was terminated or crashed); `Wick.pipeline` uses that Wick's worker.
//! Each pipeline loads its model under a fresh name, and unloads it when disposed or freed.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_futures::future_to_promise;
use wick_shared::{ErrorCode, Request, TaskInput, TaskKind};

use crate::client::{Client, Hooks};
use crate::convert::{self, Options};
use crate::stream::{self, Generation, Transcription};
use crate::vision;
use crate::wick::{self, rejected, Wick};
use crate::WickError;

thread_local! {
    /// The shared worker of each worker URL.
    static SHARED: RefCell<HashMap<String, Rc<Client>>> = RefCell::new(HashMap::new());
}

/// Load `modelUrl` for `task` ("digits") in the shared worker and resolve with a Pipeline.
/// Options: `onProgress`, `externalData`, `signal` as for `Wick.load`, plus `workerUrl`.
#[wasm_bindgen(js_name = pipeline)]
pub async fn pipeline(
    #[wasm_bindgen(unchecked_param_type = "Task")] task: String,
    #[wasm_bindgen(js_name = modelUrl, unchecked_param_type = "string | URL")] model_url: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "PipelineOptions")] options: Option<JsValue>,
) -> Result<Pipeline, JsValue> {
    let options = options.unwrap_or(JsValue::UNDEFINED);
    let url = wick::worker_url(Options::parse(&options)?.worker_url)?;
    let client = shared(&url)?;
    if let Err(e) = JsFuture::from(client.handshake()).await {
        // Forget a worker that never answered hello, so that the next call starts a new one.
        SHARED.with(|s| {
            let mut shared = s.borrow_mut();
            if shared.get(&url).is_some_and(|c| Rc::ptr_eq(c, &client)) {
                shared.remove(&url);
            }
        });
        client.terminate();
        return Err(e);
    }
    create(client, &task, &model_url, &options).await
}

/// The running shared worker for `url`, started if needed.
fn shared(url: &str) -> Result<Rc<Client>, WickError> {
    let running = SHARED.with(|s| s.borrow().get(url).filter(|c| c.is_running()).cloned());
    if let Some(client) = running {
        return Ok(client);
    }
    let client = Client::spawn(url)?;
    SHARED.with(|s| s.borrow_mut().insert(url.to_string(), client.clone()));
    Ok(client)
}

/// Load the model for `task` in `client`'s worker.
pub(crate) async fn create(
    client: Rc<Client>,
    task: &str,
    model_url: &JsValue,
    options: &JsValue,
) -> Result<Pipeline, JsValue> {
    JsFuture::from(client.handshake()).await?;
    let task = parse_task(&client, task)?;
    let options = Options::parse(options)?;
    let model = client.model_name(&task_name(task));
    let hooks = Hooks {
        on_progress: options.on_progress.clone(),
        signal: options.signal.clone(),
        ..Hooks::default()
    };
    // Speech recognition with voice-activity detection: its model is loaded beside, under the
    // pipeline's name, and unloaded with it.
    let vad = match (task, &options.vad) {
        (TaskKind::AutomaticSpeechRecognition, Some(url)) => Some((format!("{model}/vad"), url.clone())),
        _ => None,
    };
    let cache = options.cache;
    let body = convert::load_request(model.clone(), model_url, options, Some(task))?;
    let info = JsFuture::from(client.request(body, hooks.clone())).await?;
    let pipeline = Pipeline {
        client: client.clone(),
        task,
        model,
        vad: vad.as_ref().map(|(name, _)| name.clone()),
        info,
        disposed: Cell::new(false),
    };
    if let Some((name, url)) = vad {
        let vad_options = Options { cache, ..Options::default() };
        let body = convert::load_request(name, &JsValue::from_str(&url), vad_options, Some(TaskKind::VoiceActivityDetection))?;
        // A failed load drops `pipeline`, which unloads the model loaded above.
        JsFuture::from(client.request(body, hooks)).await?;
    }
    Ok(pipeline)
}

fn task_name(task: TaskKind) -> String {
    serde_wasm_bindgen::to_value(&task)
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// `task` if this worker knows it.
fn parse_task(client: &Client, task: &str) -> Result<TaskKind, WickError> {
    let known: Vec<TaskKind> = client
        .hello()
        .map(|h| h.capabilities.tasks)
        .unwrap_or_default();
    let names = known
        .iter()
        .map(|&t| task_name(t))
        .collect::<Vec<_>>()
        .join(", ");
    serde_wasm_bindgen::from_value::<TaskKind>(JsValue::from_str(task))
        .ok()
        .filter(|t| known.contains(t))
        .ok_or_else(|| {
            WickError::wire(
                ErrorCode::BadTask,
                format!("unknown task `{task}`; this worker knows: {names}"),
            )
        })
}

/// A model loaded for one task.
#[wasm_bindgen]
pub struct Pipeline {
    client: Rc<Client>,
    task: TaskKind,
    model: String,
    /// The voice-activity model loaded with a speech-recognition pipeline.
    vad: Option<String>,
    info: JsValue,
    disposed: Cell<bool>,
}

#[wasm_bindgen]
impl Pipeline {
    /// Run the task on `input`:
    /// - "digits": an ImageData of the drawing → `{digit, probabilities, stats}`;
    /// - "image-classification": an image (ImageData, ImageBitmap, <img>, <canvas>, Blob, bytes
    ///   or URL) → `{labels: [{label, score}], stats}`, options `topK` (default 5);
    /// - "object-detection": an image → `{objects: [{label, score, box: {xmin, ymin, xmax,
    ///   ymax}}], stats}` in the image's pixels, options `threshold` and `iou`;
    /// - "feature-extraction": a text or texts → `{embeddings: Tensor [texts, dims], stats}`,
    ///   options `pooling` ("mean" default, "cls", "none") and `normalize` (default true);
    /// - "automatic-speech-recognition": audio → `{text, chunks, stats}` (see `transcribe`);
    /// - "voice-activity-detection": audio (as for `transcribe`) → `{segments: [{start, end}],
    ///   stats}` in seconds, option `threshold` (default 0.5).
    #[wasm_bindgen(unchecked_return_type = "Promise<TaskResult>")]
    pub fn run(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageSource | AudioSource | string | string[]")] input: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "TaskOptions")] options: Option<JsValue>,
    ) -> Promise {
        if self.disposed.get() {
            return rejected(WickError::wire(
                ErrorCode::UnknownModel,
                format!("the pipeline `{}` was disposed", self.model),
            ));
        }
        match self.task {
            TaskKind::Digits => wick::digits(&self.client, self.model.clone(), &input, options),
            TaskKind::TextGeneration => rejected(WickError::wire(
                ErrorCode::BadTask,
                "a text-generation pipeline generates: call generate(prompt, options)",
            )),
            TaskKind::AutomaticSpeechRecognition => self.transcribe(input, options).result(),
            kind => {
                let (client, model) = (self.client.clone(), self.model.clone());
                future_to_promise(async move {
                    let request = async {
                        let options = Options::parse(&options.unwrap_or(JsValue::UNDEFINED))?;
                        let input = match kind {
                            TaskKind::FeatureExtraction => TaskInput::FeatureExtraction {
                                texts: convert::texts(&input)?,
                                pooling: options.pooling,
                                normalize: options.normalize,
                            },
                            TaskKind::VoiceActivityDetection => TaskInput::VoiceActivityDetection {
                                audio: crate::audio::input(&input, options.sample_rate).await?,
                                threshold: options.threshold,
                            },
                            TaskKind::ObjectDetection => TaskInput::ObjectDetection {
                                image: vision::image(&input).await?,
                                threshold: options.threshold,
                                iou: options.iou,
                            },
                            _ => TaskInput::ImageClassification { image: vision::image(&input).await?, top_k: options.top_k },
                        };
                        Ok::<_, WickError>((Request::Task { model, input }, Hooks::cancellable(options.signal)))
                    };
                    match request.await {
                        Ok((body, hooks)) => JsFuture::from(client.request(body, hooks)).await,
                        Err(e) => Err(e.to_js()),
                    }
                })
            }
        }
    }

    /// "text-generation": generate an answer to `prompt`, a text (fed as it is) or chat
    /// messages `[{role, content}]` (rendered with the model's chat template). The Generation is
    /// an async iterator of the pieces of text as they are generated (`for await (const piece
    /// of generation)`), and its `result` is the Promise of `{text, finish, stats}`. Options
    /// `maxNewTokens` (default 256), `temperature` (0 or absent: greedy), `topK`, `topP`, `seed`,
    /// `stop` (texts that end the answer), `signal` (cancels: the iteration ends, `result`
    /// rejects with an AbortError).
    pub fn generate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Prompt")] prompt: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateOptions")] options: Option<JsValue>,
    ) -> Generation {
        let model = self.model_for(TaskKind::TextGeneration, "generate()");
        stream::generate(&self.client, model, &prompt, options)
    }

    /// "automatic-speech-recognition": transcribe `audio` — a Float32Array of mono samples (at
    /// `options.sampleRate`, default 16000), an AudioBuffer, or a file (URL, Blob/File, bytes:
    /// WAV, or any format the browser decodes). The Transcription is an async iterator of the
    /// pieces of text as they are decoded, and its `result` the Promise of `{text, chunks:
    /// [{timestamp: [start, end], text}], stats}`. Options `timestamps` (chunks timed by the
    /// model's timestamp tokens instead of by its 30 s windows), `maxNewTokens` (per window),
    /// `signal`. With the pipeline's `vad` model, silence is skipped and long audio is cut in
    /// its pauses.
    pub fn transcribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "AudioSource")] audio: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "TranscribeOptions")] options: Option<JsValue>,
    ) -> Transcription {
        let model = self.model_for(TaskKind::AutomaticSpeechRecognition, "transcribe()");
        crate::audio::transcribe(&self.client, model, self.vad.clone(), audio, options)
    }

    /// Unload the model. The pipeline cannot run afterwards.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn dispose(&self) -> Promise {
        if self.disposed.replace(true) {
            return Promise::resolve(&JsValue::UNDEFINED);
        }
        if let Some(vad) = &self.vad {
            self.client.post(Request::Unload { model: vad.clone() });
        }
        self.client.request(
            Request::Unload {
                model: self.model.clone(),
            },
            Hooks::default(),
        )
    }

    #[wasm_bindgen(getter, unchecked_return_type = "Task")]
    pub fn task(&self) -> String {
        task_name(self.task)
    }

    /// The name the model is loaded under in the worker.
    #[wasm_bindgen(getter)]
    pub fn model(&self) -> String {
        self.model.clone()
    }

    /// Where the model runs ("cpu" or "webgpu").
    #[wasm_bindgen(getter, unchecked_return_type = "Backend")]
    pub fn backend(&self) -> JsValue {
        convert::get(&self.info, "backend")
    }

    /// The ready info of the load: inputs, outputs, backend, weightBytes, loadMs.
    #[wasm_bindgen(getter, unchecked_return_type = "ReadyInfo")]
    pub fn info(&self) -> JsValue {
        self.info.clone()
    }

    /// The Wick whose worker runs this pipeline.
    #[wasm_bindgen(getter)]
    pub fn wick(&self) -> Wick {
        Wick::new(self.client.clone())
    }
}

impl Pipeline {
    /// The model's name for `method`, which only pipelines of `task` have; an error once
    /// disposed or for another task.
    fn model_for(&self, task: TaskKind, method: &str) -> Result<String, WickError> {
        if self.disposed.get() {
            return Err(WickError::wire(ErrorCode::UnknownModel, format!("the pipeline `{}` was disposed", self.model)));
        }
        if self.task != task {
            return Err(WickError::wire(
                ErrorCode::BadTask,
                format!("{method} is for {} pipelines, not {}", task_name(task), task_name(self.task)),
            ));
        }
        Ok(self.model.clone())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if !self.disposed.replace(true) {
            for model in std::iter::once(&self.model).chain(&self.vad) {
                self.client.post(Request::Unload { model: model.clone() });
            }
        }
    }
}
