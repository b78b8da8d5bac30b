//! The streaming loader: from an ONNX graph and its external-data files to weight tensors.
//!
//! A load is planned from the parsed graph ([`ExternalPlan::from_graph`]): every initializer with
//! `data_location = EXTERNAL` names a file (`location`), an `offset` and a `length`. Each file is
//! then streamed once, chunk by chunk, through a [`FileRouter`], which copies each byte range of
//! a chunk straight into the allocation of the tensor it belongs to ([`Placement`]). No file is
//! ever held whole. This module is platform-neutral: the web layer feeds it `Uint8Array` chunks
//! from `fetch`, native tests feed it slices of awkward sizes.

mod placement;
mod route;

use std::collections::BTreeMap;

use candle_onnx::onnx::{tensor_proto::DataLocation, GraphProto, TensorProto};

pub use placement::{CpuPlacement, Placement};
pub use route::{Chunk, FileRouter};

use crate::engine::tensor::{byte_len, dims_of_proto, dtype_of_onnx};
use crate::error::{Result, WickError};

/// One external tensor: where its bytes are and what it becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalTensor {
    pub name: String,
    pub onnx_type: i32,
    pub dims: Vec<usize>,
    pub offset: u64,
    pub length: u64,
}

/// The external tensors of a model, grouped by the file (`location`) that holds them.
#[derive(Debug, Default)]
pub struct ExternalPlan {
    pub files: BTreeMap<String, Vec<ExternalTensor>>,
}

impl ExternalPlan {
    /// Collect the external initializers of `graph` and check their offsets and lengths.
    pub fn from_graph(graph: &GraphProto) -> Result<Self> {
        let mut plan = ExternalPlan::default();
        for init in &graph.initializer {
            if init.data_location != DataLocation::External as i32 {
                continue;
            }
            let (location, tensor) = external_tensor(init)?;
            plan.files.entry(location).or_default().push(tensor);
        }
        Ok(plan)
    }

    /// Total bytes of weights the plan will place.
    pub fn weight_bytes(&self) -> u64 {
        self.files.values().flatten().map(|t| t.length).sum()
    }
}

fn external_tensor(init: &TensorProto) -> Result<(String, ExternalTensor)> {
    let bad = |m: String| WickError::invalid(format!("initializer '{}': {m}", init.name));
    let (mut location, mut offset, mut length) = (None, 0u64, None);
    for entry in &init.external_data {
        let number = || entry.value.parse::<u64>().map_err(|_| bad(format!("bad {}", entry.key)));
        match entry.key.as_str() {
            "location" => location = Some(entry.value.clone()),
            "offset" => offset = number()?,
            "length" => length = Some(number()?),
            _ => {} // checksum and others: not needed to place the bytes
        }
    }
    let location = location.ok_or_else(|| bad("external data without a location".into()))?;
    dtype_of_onnx(init.data_type)?;
    let dims = dims_of_proto(init)?;
    let expected = byte_len(init.data_type, &dims)? as u64;
    let length = length.unwrap_or(expected);
    if length != expected {
        return Err(bad(format!("length {length} but dims {dims:?} need {expected} bytes")));
    }
    let tensor = ExternalTensor {
        name: init.name.clone(),
        onnx_type: init.data_type,
        dims,
        offset,
        length,
    };
    Ok((location, tensor))
}

/// Rate limiter for progress events: at most one per `interval_ms`, plus the last one.
#[derive(Debug)]
pub struct ProgressThrottle {
    interval_ms: f64,
    last_ms: Option<f64>,
}

impl ProgressThrottle {
    pub fn new(interval_ms: f64) -> Self {
        ProgressThrottle { interval_ms, last_ms: None }
    }

    /// Whether to emit now; `finished` always emits.
    pub fn should_emit(&mut self, now_ms: f64, finished: bool) -> bool {
        let due = match self.last_ms {
            None => true,
            Some(last) => now_ms - last >= self.interval_ms,
        };
        if due || finished {
            self.last_ms = Some(now_ms);
        }
        due || finished
    }
}
