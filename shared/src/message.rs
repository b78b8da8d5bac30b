//! The envelope and the closed sets of requests (page → worker) and events (worker → page).
//!
//! Every request carries an `id` chosen by the sender; every event carries the `id` of the
//! request it answers. A request gets any number of `progress` events and then exactly one final
//! event: `hello`, `ready`, `output`, `result`, `done`, `cancelled` or `error`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Tensor, WireError};

/// `{id, body}`: the one shape of every message in both directions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u32,
    pub body: T,
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// First message: states the page's protocol version; answered by `hello`.
    Hello { protocol: u32 },
    /// Fetch and prepare a model under the name `model`; answered by `progress`… then `ready`.
    Load {
        model: String,
        /// URL of the `.onnx` file, absolute or relative to the worker script.
        url: String,
        /// Where to fetch external-data files. A file the model names that is not listed here is
        /// fetched relative to `url` (onnxruntime-web's `externalData` semantics).
        #[serde(default, rename = "externalData", skip_serializing_if = "Vec::is_empty")]
        external_data: Vec<ExternalFile>,
    },
    /// Run the model on raw tensors; answered by `output`.
    Run {
        model: String,
        inputs: BTreeMap<String, Tensor>,
        /// Output names to return; all graph outputs when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outputs: Option<Vec<String>>,
    },
    /// Run a task (pre-processing → model → post-processing); answered by `result`.
    Task { model: String, input: TaskInput },
    /// Stop request `target`: it ends with `cancelled` (or its own final event if it was
    /// already done); the cancel request itself ends with `done`.
    Cancel { target: u32 },
    /// Drop a model and free its memory; answered by `done`.
    Unload { model: String },
}

/// Where one external-data file named by the model is fetched from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalFile {
    /// The `location` as written in the model.
    pub path: String,
    /// The URL to fetch it from.
    pub url: String,
}

/// The tasks the worker knows, with their inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "kebab-case")]
pub enum TaskInput {
    /// Handwritten digit recognition from a drawing.
    Digits { image: Image },
}

/// Task names, as listed in capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    Digits,
}

/// Task results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "kebab-case")]
pub enum TaskOutput {
    Digits { digit: u8, probabilities: Vec<f32> },
}

/// An RGBA image, as in the DOM's ImageData (`data` may be a Uint8ClampedArray).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Answer to `hello`.
    Hello { protocol: u32, version: String, capabilities: Capabilities },
    /// Bytes of `file` received so far; `total` when the server sent a length.
    Progress {
        file: String,
        loaded: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// The model is loaded and planned.
    Ready {
        model: String,
        backend: Backend,
        inputs: Vec<ValueInfo>,
        outputs: Vec<ValueInfo>,
        /// Bytes of weights held by the model.
        #[serde(rename = "weightBytes")]
        weight_bytes: u64,
        #[serde(rename = "loadMs")]
        load_ms: f64,
    },
    /// Answer to `run`.
    Output { outputs: BTreeMap<String, Tensor>, stats: RunStats },
    /// Answer to `task`.
    Result { result: TaskOutput, stats: RunStats },
    /// Final event of requests with nothing to return (`cancel`, `unload`).
    Done {},
    /// The request was cancelled before it finished.
    Cancelled {},
    /// The request failed; the worker keeps serving.
    Error(WireError),
}

impl Event {
    /// Whether this event ends its request.
    pub fn is_final(&self) -> bool {
        !matches!(self, Event::Progress { .. })
    }
}

/// What this worker can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    pub backends: Vec<Backend>,
    pub tasks: Vec<TaskKind>,
    /// ONNX operator types the engine implements (default domain unless prefixed `domain:`).
    pub ops: Vec<String>,
    pub simd: bool,
    pub threads: u32,
}

/// Where a model's tensors live and its ops run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
}

/// Name, dtype and shape of a graph input or output; `null` dims are symbolic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueInfo {
    pub name: String,
    pub dtype: Option<crate::DType>,
    pub dims: Vec<Option<u64>>,
}

/// Timing and memory of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStats {
    #[serde(rename = "runMs")]
    pub run_ms: f64,
    /// Peak bytes of intermediate tensors alive at once (weights and inputs excluded).
    #[serde(rename = "peakIntermediateBytes")]
    pub peak_intermediate_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_shape_is_tagged_by_type() {
        let req: Envelope<Request> = serde_json::from_str(
            r#"{"id":7,"body":{"type":"load","model":"d","url":"m.onnx",
                "externalData":[{"path":"w.bin","url":"/x/w.bin"}]}}"#,
        )
        .unwrap();
        assert_eq!(req.id, 7);
        assert_eq!(
            req.body,
            Request::Load {
                model: "d".into(),
                url: "m.onnx".into(),
                external_data: vec![ExternalFile { path: "w.bin".into(), url: "/x/w.bin".into() }],
            }
        );
    }

    #[test]
    fn error_event_flattens_code_and_message() {
        let ev = Envelope {
            id: 3,
            body: Event::Error(WireError {
                code: crate::ErrorCode::FetchFailed,
                message: "404".into(),
                file: Some("a.bin".into()),
                status: Some(404),
            }),
        };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id":3,"body":{"type":"error","code":"fetch_failed",
                "message":"404","file":"a.bin","status":404}})
        );
    }

    #[test]
    fn task_input_is_tagged_by_task() {
        let req: Request = serde_json::from_str(
            r#"{"type":"task","model":"d","input":{"task":"digits",
                "image":{"width":1,"height":1,"data":[0,0,0,255]}}}"#,
        )
        .unwrap();
        assert!(matches!(req, Request::Task { input: TaskInput::Digits { .. }, .. }));
    }
}
