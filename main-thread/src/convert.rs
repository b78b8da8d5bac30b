//! The page-facing JS values: options and inputs read from JS, replies shaped for JS.
//!
//! Wire envelopes go through `wick_shared::js` only (in `client`); this module reads what the
//! caller passed without changing it (an ImageData or typed array is copied, never detached) and
//! turns final events into the objects the Promises resolve with.

use std::collections::BTreeMap;

use js_sys::{Array, ArrayBuffer, Function, Object, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{AbortSignal, Url};
use wick_shared::{
    BackendChoice, ChatMessage, DType, ErrorCode, Event, ExternalFile, GenerateOptions, Image, Pooling, Prompt, Request, WeightsChoice,
    TaskKind, Tensor,
};

use crate::{inputs, WickError};

/// `obj[key]`, or undefined when `obj` is not an object or the getter throws.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn set(obj: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

/// `value` unless it is undefined or null.
fn present(value: JsValue) -> Option<JsValue> {
    (!value.is_undefined() && !value.is_null()).then_some(value)
}

fn bad_request(message: impl Into<String>) -> WickError {
    WickError::wire(ErrorCode::BadRequest, message)
}

fn bad_input(message: impl Into<String>) -> WickError {
    WickError::wire(ErrorCode::BadInput, message)
}

/// A URL given as a string or a `URL` object.
pub fn url_string(value: &JsValue, what: &str) -> Result<String, WickError> {
    if let Some(url) = value.as_string() {
        return Ok(url);
    }
    if let Some(url) = value.dyn_ref::<Url>() {
        return Ok(url.href());
    }
    Err(bad_request(format!("{what} must be a string or a URL")))
}

/// `url` resolved against the page (`document.baseURI`, else `location.href`), so that a model
/// URL means what it means to `fetch` on the page. The worker would resolve a relative URL
/// against its own script instead.
pub fn absolute(url: &str) -> String {
    let global = js_sys::global();
    let base = get(&get(&global, "document"), "baseURI")
        .as_string()
        .or_else(|| get(&get(&global, "location"), "href").as_string());
    base.and_then(|base| Url::new_with_base(url, &base).ok())
        .map(|u| u.href())
        .unwrap_or_else(|| url.to_string())
}

/// Every option any method takes; each method uses the ones that concern it.
#[derive(Default)]
pub struct Options {
    pub signal: Option<AbortSignal>,
    pub on_progress: Option<Function>,
    pub external_data: Vec<ExternalFile>,
    pub sha256: Option<String>,
    pub variant: Option<String>,
    pub cache: Option<bool>,
    pub top_k: Option<u32>,
    pub threshold: Option<f32>,
    pub iou: Option<f32>,
    pub pooling: Option<Pooling>,
    pub normalize: Option<bool>,
    pub outputs: Option<Vec<String>>,
    pub worker_url: Option<String>,
    /// The task a low-level `load` prepares the model for (the companion files it fetches).
    pub task: Option<TaskKind>,
    /// `generate`'s options (`topK` is the field above); their ranges are the worker's to check.
    pub generate: GenerateOptions,
    /// `transcribe`: the rate of a Float32Array of samples (default 16000).
    pub sample_rate: Option<u32>,
    /// `transcribe`: chunks timed by the model's timestamp tokens.
    pub timestamps: Option<bool>,
    /// A pipeline's voice-activity model URL; `Wick.transcribe`'s voice-activity model name.
    pub vad: Option<String>,
    /// Where the model runs: `auto` (default), `webgpu` or `cpu`.
    pub backend: Option<BackendChoice>,
    pub weights: Option<WeightsChoice>,
}

impl Options {
    pub fn parse(options: &JsValue) -> Result<Options, WickError> {
        let Some(options) = present(options.clone()) else {
            return Ok(Options::default());
        };
        if !options.is_object() {
            return Err(bad_request("options must be an object"));
        }
        let mut parsed = Options::default();
        if let Some(signal) = present(get(&options, "signal")) {
            let signal = signal
                .dyn_into::<AbortSignal>()
                .map_err(|_| bad_request("options.signal must be an AbortSignal"))?;
            parsed.signal = Some(signal);
        }
        if let Some(callback) = present(get(&options, "onProgress")) {
            let callback = callback
                .dyn_into::<Function>()
                .map_err(|_| bad_request("options.onProgress must be a function"))?;
            parsed.on_progress = Some(callback);
        }
        if let Some(files) = present(get(&options, "externalData")) {
            let files = files.dyn_into::<Array>().map_err(|_| {
                bad_request("options.externalData must be an array of {path, url?, size?, sha256?}")
            })?;
            for file in files.iter() {
                let path = get(&file, "path")
                    .as_string()
                    .ok_or_else(|| bad_request("options.externalData[].path must be a string"))?;
                let url = present(get(&file, "url"))
                    .map(|url| url_string(&url, "options.externalData[].url").map(|u| absolute(&u)))
                    .transpose()?;
                let size = present(get(&file, "size"))
                    .map(|size| {
                        size.as_f64()
                            .filter(|n| *n >= 0.0 && n.fract() == 0.0)
                            .map(|n| n as u64)
                            .ok_or_else(|| bad_request("options.externalData[].size must be a byte count"))
                    })
                    .transpose()?;
                let sha256 = string_option(&file, "sha256", "options.externalData[].sha256")?;
                parsed.external_data.push(ExternalFile { path, url, size, sha256 });
            }
        }
        parsed.sha256 = string_option(&options, "sha256", "options.sha256")?;
        parsed.variant = string_option(&options, "variant", "options.variant")?;
        if let Some(cache) = present(get(&options, "cache")) {
            parsed.cache = Some(cache.as_bool().ok_or_else(|| bad_request("options.cache must be a boolean"))?);
        }
        let number = |key: &str, what: &str, ok: fn(f64) -> bool| {
            present(get(&options, key))
                .map(|v| v.as_f64().filter(|n| ok(*n)).ok_or_else(|| bad_request(format!("options.{key} must be {what}"))))
                .transpose()
        };
        parsed.top_k = number("topK", "a whole number ≥ 1", |n| n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64)?
            .map(|n| n as u32);
        parsed.threshold = number("threshold", "a number in [0, 1]", |n| (0.0..=1.0).contains(&n))?.map(|n| n as f32);
        parsed.iou = number("iou", "a number in [0, 1]", |n| (0.0..=1.0).contains(&n))?.map(|n| n as f32);
        if let Some(pooling) = present(get(&options, "pooling")) {
            let pooling = serde_wasm_bindgen::from_value::<Pooling>(pooling)
                .map_err(|_| bad_request("options.pooling must be \"mean\", \"cls\" or \"none\""))?;
            parsed.pooling = Some(pooling);
        }
        parsed.sample_rate = number("sampleRate", "a whole number of Hz ≥ 1", |n| n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64)?
            .map(|n| n as u32);
        if let Some(timestamps) = present(get(&options, "timestamps")) {
            parsed.timestamps = Some(timestamps.as_bool().ok_or_else(|| bad_request("options.timestamps must be a boolean"))?);
        }
        if let Some(vad) = present(get(&options, "vad")) {
            parsed.vad = Some(url_string(&vad, "options.vad")?);
        }
        if let Some(backend) = present(get(&options, "backend")) {
            let backend = serde_wasm_bindgen::from_value::<BackendChoice>(backend)
                .map_err(|_| bad_request("options.backend must be \"auto\", \"webgpu\" or \"cpu\""))?;
            parsed.backend = Some(backend);
        }
        if let Some(weights) = present(get(&options, "weights")) {
            let weights = serde_wasm_bindgen::from_value::<WeightsChoice>(weights)
                .map_err(|_| bad_request("options.weights must be \"auto\", \"host\" or \"gpu\""))?;
            parsed.weights = Some(weights);
        }
        if let Some(normalize) = present(get(&options, "normalize")) {
            parsed.normalize = Some(normalize.as_bool().ok_or_else(|| bad_request("options.normalize must be a boolean"))?);
        }
        if let Some(outputs) = present(get(&options, "outputs")) {
            let outputs = outputs
                .dyn_into::<Array>()
                .map_err(|_| bad_request("options.outputs must be an array of output names"))?;
            let names = outputs
                .iter()
                .map(|name| name.as_string())
                .collect::<Option<Vec<_>>>();
            parsed.outputs =
                Some(names.ok_or_else(|| bad_request("options.outputs must hold strings"))?);
        }
        if let Some(url) = present(get(&options, "workerUrl")) {
            parsed.worker_url = Some(url_string(&url, "options.workerUrl")?);
        }
        if let Some(task) = present(get(&options, "task")) {
            let task = serde_wasm_bindgen::from_value::<TaskKind>(task.clone()).map_err(|_| {
                WickError::wire(ErrorCode::BadTask, format!("options.task: unknown task {task:?}"))
            })?;
            parsed.task = Some(task);
        }
        fn whole(n: f64) -> bool {
            n >= 0.0 && n.fract() == 0.0 && n <= (1u64 << 53) as f64
        }
        parsed.generate = GenerateOptions {
            max_new_tokens: number("maxNewTokens", "a whole number ≥ 1", |n| whole(n) && n >= 1.0 && n <= u32::MAX as f64)?
                .map(|n| n as u32),
            temperature: number("temperature", "a number", |_| true)?.map(|n| n as f32),
            top_k: parsed.top_k,
            top_p: number("topP", "a number", |_| true)?.map(|n| n as f32),
            seed: number("seed", "a whole number ≥ 0", whole)?.map(|n| n as u64),
            stop: match present(get(&options, "stop")) {
                None => vec![],
                Some(stop) => stop
                    .as_string()
                    .map(|s| vec![s])
                    .or_else(|| {
                        stop.dyn_ref::<Array>()
                            .and_then(|a| a.iter().map(|s| s.as_string()).collect::<Option<Vec<_>>>())
                    })
                    .ok_or_else(|| bad_request("options.stop must be a string or an array of strings"))?,
            },
        };
        Ok(parsed)
    }
}

/// `obj[key]` as a string, if present.
fn string_option(obj: &JsValue, key: &str, what: &str) -> Result<Option<String>, WickError> {
    present(get(obj, key))
        .map(|v| v.as_string().ok_or_else(|| bad_request(format!("{what} must be a string"))))
        .transpose()
}

/// The `load` request for a model source: a URL (of a `.onnx` file, or of a Hugging Face style
/// folder when it ends in `/`) or `{manifest: URL}`, with the load options.
pub fn load_request(
    model: String,
    source: &JsValue,
    options: Options,
    task: Option<TaskKind>,
) -> Result<Request, WickError> {
    let manifest = present(get(source, "manifest"));
    let (url, manifest) = match manifest {
        Some(m) if !source.is_string() => (None, Some(absolute(&url_string(&m, "source.manifest")?))),
        _ => (Some(absolute(&url_string(source, "the model URL (or {manifest})")?)), None),
    };
    Ok(Request::Load {
        model,
        url,
        manifest,
        variant: options.variant,
        external_data: options.external_data,
        sha256: options.sha256,
        cache: options.cache,
        task,
        backend: options.backend,
        weights: options.weights,
    })
}

/// A text or an array of texts.
pub fn texts(value: &JsValue) -> Result<Vec<String>, WickError> {
    if let Some(text) = value.as_string() {
        return Ok(vec![text]);
    }
    let texts = value
        .dyn_ref::<Array>()
        .and_then(|a| a.iter().map(|t| t.as_string()).collect::<Option<Vec<_>>>())
        .ok_or_else(|| bad_input("expected a string or an array of strings"))?;
    if texts.is_empty() {
        return Err(bad_input("no texts to embed"));
    }
    Ok(texts)
}

/// A prompt: a text (fed as it is) or chat messages `[{role, content}]` (rendered with the
/// model's chat template).
pub fn prompt(value: &JsValue) -> Result<Prompt, WickError> {
    if let Some(text) = value.as_string() {
        return Ok(Prompt::Text(text));
    }
    let what = "the prompt must be a string or an array of {role, content} messages";
    let messages = value.dyn_ref::<Array>().ok_or_else(|| bad_input(what))?;
    let messages = messages
        .iter()
        .map(|m| {
            let field = |key| get(&m, key).as_string();
            Some(ChatMessage { role: field("role")?, content: field("content")? })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad_input(format!("{what} (each with string role and content)")))?;
    if messages.is_empty() {
        return Err(bad_input("the prompt has no messages"));
    }
    Ok(Prompt::Chat(messages))
}

/// A copy of the bytes of an ArrayBuffer, typed array or DataView.
pub fn bytes_of(value: &JsValue) -> Option<Vec<u8>> {
    if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        return Some(Uint8Array::new(buffer).to_vec());
    }
    if ArrayBuffer::is_view(value) {
        let buffer = get(value, "buffer");
        let offset = get(value, "byteOffset").as_f64()? as u32;
        let length = get(value, "byteLength").as_f64()? as u32;
        return Some(Uint8Array::new_with_byte_offset_and_length(&buffer, offset, length).to_vec());
    }
    None
}

/// `{name: {dtype, dims, data}}` as wire tensors.
pub fn tensors(inputs: &JsValue) -> Result<BTreeMap<String, Tensor>, WickError> {
    let Some(object) = inputs
        .dyn_ref::<Object>()
        .filter(|_| !Array::is_array(inputs))
    else {
        return Err(bad_input(
            "inputs must be an object {name: {dtype, dims, data}}",
        ));
    };
    let mut tensors = BTreeMap::new();
    for key in Object::keys(object).iter() {
        let Some(name) = key.as_string() else {
            continue;
        };
        let value = get(inputs, &name);
        let dtype = get(&value, "dtype")
            .as_string()
            .and_then(|d| serde_wasm_bindgen::from_value::<DType>(JsValue::from_str(&d)).ok())
            .ok_or_else(|| {
                bad_input(format!(
                    "input `{name}`: dtype must be one of float32, float16, int8, uint8, int32, \
                     int64, bool"
                ))
            })?;
        let dims = get(&value, "dims")
            .dyn_into::<Array>()
            .ok()
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_f64())
                    .collect::<Option<Vec<f64>>>()
            })
            .ok_or_else(|| {
                bad_input(format!("input `{name}`: dims must be an array of numbers"))
            })?;
        let data = bytes_of(&get(&value, "data")).ok_or_else(|| {
            bad_input(format!(
                "input `{name}`: data must be a {}",
                dtype.typed_array_name()
            ))
        })?;
        tensors.insert(name.clone(), inputs::tensor(&name, dtype, &dims, data)?);
    }
    Ok(tensors)
}

/// An ImageData, or any `{width, height, data}` with RGBA bytes.
pub fn image(value: &JsValue) -> Result<Image, WickError> {
    if !value.is_object() {
        return Err(bad_input(
            "expected an ImageData (canvas.getContext('2d').getImageData(…))",
        ));
    }
    let number = |key| get(value, key).as_f64().unwrap_or(f64::NAN);
    let data = bytes_of(&get(value, "data"))
        .ok_or_else(|| bad_input("image.data must be a Uint8ClampedArray of RGBA bytes"))?;
    inputs::image(number("width"), number("height"), data)
}

/// A plain JS object for `value` (tensor data as typed arrays).
pub fn to_object<T: Serialize>(value: &T) -> Result<JsValue, WickError> {
    wick_shared::js::to_js(value)
        .map(|(object, _)| object)
        .map_err(WickError::Wire)
}

/// The `onProgress` argument: `{file, loaded, total}` (`total` absent when unknown).
pub fn progress(file: &str, loaded: u64, total: Option<u64>) -> JsValue {
    let object: JsValue = Object::new().into();
    set(&object, "file", &file.into());
    set(&object, "loaded", &(loaded as f64).into());
    if let Some(total) = total {
        set(&object, "total", &(total as f64).into());
    }
    object
}

/// [`reply`] for a final event still in its JS form (`body` of type `kind`): the same shape,
/// made by moving fields rather than decoding and re-encoding the event.
pub fn reply_raw(kind: &str, body: &JsValue) -> Result<JsValue, WickError> {
    let object = body.unchecked_ref::<Object>();
    match kind {
        "result" => {
            let result = get(body, "result");
            if !result.is_object() {
                return Err(WickError::wire(ErrorCode::Internal, "a result event without its result"));
            }
            let _ = Reflect::delete_property(result.unchecked_ref::<Object>(), &"task".into());
            set(&result, "stats", &get(body, "stats"));
            Ok(result)
        }
        "cached" => Ok(get(body, "models")),
        _ => {
            let _ = Reflect::delete_property(object, &"type".into());
            Ok(body.clone())
        }
    }
}

/// What a request's Promise resolves with, from its (already settled) final event:
/// `ready` → the ready info, `output` → `{outputs, stats}`, `result` → the task's fields plus
/// `stats` (`{digit, probabilities, stats}`), `generated` → `{text, finish, stats}`,
/// `transcribed` → `{text, chunks, stats}`, anything
/// else → undefined.
pub fn reply(event: &Event) -> Result<JsValue, WickError> {
    match event {
        Event::Ready { .. }
        | Event::Output { .. }
        | Event::Stats { .. }
        | Event::Generated { .. }
        | Event::Transcribed { .. } => {
            let object = to_object(event)?;
            let _ = Reflect::delete_property(object.unchecked_ref::<Object>(), &"type".into());
            Ok(object)
        }
        Event::Result { result, stats } => {
            let object = to_object(result)?;
            let _ = Reflect::delete_property(object.unchecked_ref::<Object>(), &"task".into());
            set(&object, "stats", &to_object(stats)?);
            Ok(object)
        }
        Event::Cached { models } => to_object(models),
        _ => Ok(JsValue::UNDEFINED),
    }
}
