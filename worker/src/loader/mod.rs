//! The streaming loader: from an ONNX graph and its external-data files to weight tensors.
//!
//! A load is planned from the parsed graph ([`ExternalPlan::from_graph`]): every initializer with
//! `data_location = EXTERNAL` names a file (`location`), an `offset` and a `length`. Each file is
//! then streamed once, chunk by chunk, through a [`FileRouter`], which copies each byte range of
//! a chunk straight into the allocation of the tensor it belongs to ([`Placement`]). No file is
//! ever held whole. This module is platform-neutral: the web layer feeds it `Uint8Array` chunks
//! from `fetch`, native tests feed it slices of awkward sizes.

mod gpu_placement;
mod pace;
mod placement;
mod route;
mod source;
mod verify;

use std::collections::BTreeMap;

use candle_onnx::onnx::{tensor_proto::DataLocation, GraphProto, TensorProto};

pub use gpu_placement::{GpuPlacement, Placed};
pub use pace::{ProgressThrottle, ReadPacer};
pub use placement::{CpuPlacement, Placement};
pub use route::{Chunk, FileRouter};
pub use source::{Resolve, Sources};
pub use verify::{hex, Expected, Verifier};

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
    // Like onnxruntime: external data lives beside the model, never outside its folder.
    let escapes = location.starts_with('/')
        || location.contains("://")
        || location.split(['/', '\\']).any(|part| part == "..");
    if escapes {
        return Err(bad(format!("external data location '{location}' leaves the model's folder")));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_onnx::onnx::StringStringEntryProto;

    fn graph_with_location(location: &str) -> GraphProto {
        let entry = |k: &str, v: &str| StringStringEntryProto { key: k.into(), value: v.into() };
        GraphProto {
            initializer: vec![TensorProto {
                name: "w".into(),
                data_type: 1,
                dims: vec![2],
                data_location: DataLocation::External as i32,
                external_data: vec![entry("location", location), entry("offset", "8"), entry("length", "8")],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn external_tensors_are_grouped_by_file() {
        let plan = ExternalPlan::from_graph(&graph_with_location("w.bin")).unwrap();
        assert_eq!(plan.files["w.bin"][0].offset, 8);
        assert_eq!(plan.weight_bytes(), 8);
    }

    #[test]
    fn locations_outside_the_model_folder_are_refused() {
        for bad in ["../w.bin", "a/../../w.bin", "/etc/w.bin", "https://elsewhere/w.bin"] {
            let err = ExternalPlan::from_graph(&graph_with_location(bad)).unwrap_err();
            assert!(err.to_string().contains("leaves the model's folder"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_length_that_contradicts_the_dims_is_refused() {
        let mut g = graph_with_location("w.bin");
        g.initializer[0].dims = vec![3];
        assert!(ExternalPlan::from_graph(&g).is_err());
    }
}
