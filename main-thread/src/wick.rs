//! The `Wick` class: one worker, methods that return Promises.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use wick_shared::{ErrorCode, Request, TaskInput};

use crate::client::{Client, Hooks};
use crate::convert::{self, Options};
use crate::stream::{self, Generation, Transcription};
use crate::pipeline;
use crate::WickError;

thread_local! {
    static DEFAULT_WORKER_URL: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The worker script used when none is given; `wick.js` sets it to `./worker/wick-worker.js`
/// next to itself.
#[wasm_bindgen(js_name = setDefaultWorkerUrl)]
pub fn set_default_worker_url(
    #[wasm_bindgen(unchecked_param_type = "string | URL")] url: JsValue,
) -> Result<(), JsValue> {
    let url = convert::url_string(&url, "the worker URL")?;
    DEFAULT_WORKER_URL.with(|d| *d.borrow_mut() = Some(url));
    Ok(())
}

/// The worker URL given, else the default one.
pub(crate) fn worker_url(given: Option<String>) -> Result<String, WickError> {
    given
        .or_else(|| DEFAULT_WORKER_URL.with(|d| d.borrow().clone()))
        .ok_or_else(|| {
            WickError::wire(
                ErrorCode::BadRequest,
                "no worker URL: pass one, or import Wick from wick.js, which sets the default",
            )
        })
}

/// A promise already rejected with `error`.
pub(crate) fn rejected(error: WickError) -> Promise {
    Promise::reject(&error.to_js())
}

/// Send a request built from the page's arguments, or reject at once if they were bad.
fn send(client: &Client, request: Result<(Request, Hooks), WickError>) -> Promise {
    match request {
        Ok((body, hooks)) => client.request(body, hooks),
        Err(error) => rejected(error),
    }
}

/// A dedicated Web Worker running the Wick engine. Every method returns a Promise settled by
/// the worker's final answer to that request.
#[wasm_bindgen]
pub struct Wick {
    client: Rc<Client>,
}

impl Wick {
    pub(crate) fn new(client: Rc<Client>) -> Wick {
        Wick { client }
    }
}

#[wasm_bindgen]
impl Wick {
    /// Start a worker from `workerUrl` (a module script; default: the one next to `wick.js`)
    /// and check that it speaks this protocol version.
    pub async fn spawn(
        #[wasm_bindgen(js_name = workerUrl, unchecked_optional_param_type = "string | URL")]
        url: Option<JsValue>,
    ) -> Result<Wick, JsValue> {
        let given = url
            .map(|url| convert::url_string(&url, "the worker URL"))
            .transpose()?;
        let client = Client::spawn(&worker_url(given)?)?;
        JsFuture::from(client.handshake()).await?;
        Ok(Wick { client })
    }

    /// Fetch a model and prepare it under the name `model`. `source` is the URL of a `.onnx`
    /// file (relative to the page), of a Hugging Face style folder (ending in `/`: its
    /// `onnx/model.onnx`), or `{manifest: URL}`. Resolves with the ready info once it can run.
    #[wasm_bindgen(unchecked_return_type = "Promise<ReadyInfo>")]
    pub fn load(
        &self,
        model: String,
        #[wasm_bindgen(unchecked_param_type = "ModelSource")] source: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<JsValue>,
    ) -> Promise {
        let request = || -> Result<_, WickError> {
            let options = Options::parse(&options.unwrap_or(JsValue::UNDEFINED))?;
            let hooks = Hooks {
                on_progress: options.on_progress.clone(),
                signal: options.signal.clone(),
                ..Hooks::default()
            };
            let task = options.task;
            Ok((convert::load_request(model, &source, options, task)?, hooks))
        };
        send(&self.client, request())
    }

    /// Run the model on raw tensors `{name: {dtype, dims, data}}`. Resolves with
    /// `{outputs, stats}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<RunResult>")]
    pub fn run(
        &self,
        model: String,
        #[wasm_bindgen(unchecked_param_type = "Record<string, Tensor>")] inputs: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RunOptions")] options: Option<JsValue>,
    ) -> Promise {
        let request = || -> Result<_, WickError> {
            let options = Options::parse(&options.unwrap_or(JsValue::UNDEFINED))?;
            let inputs = convert::tensors(&inputs)?;
            let body = Request::Run {
                model,
                inputs,
                outputs: options.outputs,
            };
            Ok((body, Hooks::cancellable(options.signal)))
        };
        send(&self.client, request())
    }

    /// Recognise the digit drawn in `image` (an ImageData, dark ink on a light background) with
    /// the digits model `model`. Resolves with `{digit, probabilities, stats}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<DigitsResult>")]
    pub fn digits(
        &self,
        model: String,
        #[wasm_bindgen(unchecked_param_type = "ImageData | ImageLike")] image: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RequestOptions")] options: Option<JsValue>,
    ) -> Promise {
        digits(&self.client, model, &image, options)
    }

    /// Generate text with `model` (loaded with `task: "text-generation"`) from `prompt`, a text
    /// or chat messages `[{role, content}]`. The Generation is an async iterator of the pieces
    /// of text as they are generated (`for await (const piece of generation)`) and its `result`
    /// is the Promise of `{text, finish, stats}`; `options.signal` cancels it.
    pub fn generate(
        &self,
        model: String,
        #[wasm_bindgen(unchecked_param_type = "Prompt")] prompt: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateOptions")] options: Option<JsValue>,
    ) -> Generation {
        stream::generate(&self.client, Ok(model), &prompt, options)
    }

    /// Transcribe `audio` with `model` (loaded with `task: "automatic-speech-recognition"`):
    /// see `Pipeline.transcribe` for the audio and options it takes.
    pub fn transcribe(
        &self,
        model: String,
        #[wasm_bindgen(unchecked_param_type = "AudioSource")] audio: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "TranscribeOptions")] options: Option<JsValue>,
    ) -> Transcription {
        crate::audio::transcribe(&self.client, Ok(model), None, audio, options)
    }

    /// Drop the model `model` and free its memory.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn unload(&self, model: String) -> Promise {
        self.client
            .request(Request::Unload { model }, Hooks::default())
    }

    /// The loaded models and the worker's memory: `{models: [{model, backend, weightBytes}],
    /// memory: {wasmBytes, allocatedBytes, peakAllocatedBytes}}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<WorkerStats>")]
    pub fn stats(&self) -> Promise {
        self.client.request(Request::Stats {}, Hooks::default())
    }

    /// The models in the worker's offline cache (the origin private file system), with their
    /// files and sizes.
    #[wasm_bindgen(unchecked_return_type = "Promise<CachedModel[]>")]
    pub fn cached(&self) -> Promise {
        self.client.request(Request::CacheList {}, Hooks::default())
    }

    /// Remove the model loaded from `url` (its `.onnx`, folder or manifest URL) from the offline
    /// cache.
    #[wasm_bindgen(js_name = deleteCached, unchecked_return_type = "Promise<void>")]
    pub fn delete_cached(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL")] url: JsValue,
    ) -> Promise {
        let request = convert::url_string(&url, "the model URL")
            .map(|url| (Request::CacheDelete { url: convert::absolute(&url) }, Hooks::default()));
        send(&self.client, request)
    }

    /// Load `modelUrl` under a fresh name in this worker and wrap it as a pipeline for `task`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Pipeline>")]
    pub fn pipeline(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Task")] task: String,
        #[wasm_bindgen(js_name = modelUrl, unchecked_param_type = "string | URL")]
        model_url: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<JsValue>,
    ) -> Promise {
        let client = self.client.clone();
        future_to_promise(async move {
            let options = options.unwrap_or(JsValue::UNDEFINED);
            pipeline::create(client, &task, &model_url, &options)
                .await
                .map(JsValue::from)
        })
    }

    /// Stop the worker now. Requests in flight reject with an `AbortError` (code `cancelled`);
    /// later requests reject the same way.
    pub fn terminate(&self) {
        self.client.terminate();
    }

    /// What the worker can do, as it said at `hello`.
    #[wasm_bindgen(getter, unchecked_return_type = "Capabilities")]
    pub fn capabilities(&self) -> JsValue {
        self.client
            .hello()
            .and_then(|hello| convert::to_object(&hello.capabilities).ok())
            .unwrap_or(JsValue::UNDEFINED)
    }

    /// The worker's Wick version.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> String {
        self.client
            .hello()
            .map(|hello| hello.version)
            .unwrap_or_default()
    }

    /// The worker script's URL.
    #[wasm_bindgen(getter, js_name = workerUrl)]
    pub fn worker_url(&self) -> String {
        self.client.url().to_string()
    }

    /// False once terminated or crashed.
    #[wasm_bindgen(getter)]
    pub fn running(&self) -> bool {
        self.client.is_running()
    }
}

/// The `task` request for digits; shared by `Wick.digits` and the digits pipeline.
pub(crate) fn digits(
    client: &Client,
    model: String,
    image: &JsValue,
    options: Option<JsValue>,
) -> Promise {
    let request = || -> Result<_, WickError> {
        let options = Options::parse(&options.unwrap_or(JsValue::UNDEFINED))?;
        let image = convert::image(image)?;
        let body = Request::Task {
            model,
            input: TaskInput::Digits { image },
        };
        Ok((body, Hooks::cancellable(options.signal)))
    };
    send(client, request())
}
