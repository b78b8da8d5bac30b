//! Object detection: an image → labelled boxes in the source image's pixels, highest score
//! first. The model folder's `config.json` names the detector and its settings:
//!
//! - `"detector": "mtcnn"` — a face detector cascade over an image pyramid ([`super::mtcnn`]);
//! - `"detector": "yolox"` — a YOLOX-style head, letterboxed input, anchors decoded on a grid
//!   ([`super::yolox`]).
//!
//! Both take labels from `id2label`. The request's `threshold` and `iou` override the
//! detector's final score threshold and non-maximum-suppression overlap. NMS runs here, on the
//! decoded boxes, with the overlap measure each reference pipeline uses ([`Overlap`]).

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};
use serde::Deserialize;
use wick_shared::{BoundingBox, Detection, TaskInput, TaskOutput};

use super::image::decode;
use super::{mtcnn, yolox, Loaded, Outcome, Running};
use crate::error::{Result, WickError};

pub const FILES: &[&str] = &["config.json"];

/// `config.json`, by its `detector` field.
#[derive(Debug, Deserialize)]
#[serde(tag = "detector", rename_all = "lowercase")]
pub enum Config {
    Mtcnn(mtcnn::Config),
    Yolox(yolox::Config),
}

/// What a request may override.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub threshold: Option<f32>,
    pub iou: Option<f32>,
}

pub fn run(loaded: &Loaded, input: TaskInput) -> Running<'_> {
    Box::pin(answer(loaded, input))
}

async fn answer(loaded: &Loaded, input: TaskInput) -> Result<Outcome> {
    let TaskInput::ObjectDetection { image, threshold, iou } = input else {
        return Err(WickError::BadTask("not an object-detection input".into()));
    };
    for (name, v) in [("threshold", threshold), ("iou", iou)] {
        if v.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            return Err(WickError::BadInput(format!("{name} must be between 0 and 1")));
        }
    }
    let img = decode(&image)?;
    let options = Options { threshold, iou };
    let (objects, peak) = match loaded.json::<Config>("config.json")? {
        Config::Mtcnn(cfg) => mtcnn::detect(loaded, &cfg, &img, options).await?,
        Config::Yolox(cfg) => yolox::detect(loaded, &cfg, &img, options).await?,
    };
    Ok(Outcome { output: TaskOutput::ObjectDetection { objects }, peak_intermediate_bytes: peak })
}

/// A box `[x1, y1, x2, y2]` in source pixels with its score and class, before it is reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub b: [f64; 4],
    pub score: f64,
    pub class: usize,
}

/// How two boxes' overlap is measured by the reference pipelines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Overlap {
    /// Intersection over union on continuous coordinates (torchvision's `nms`).
    Iou,
    /// IoU with inclusive pixel coordinates: widths are `x2 - x1 + 1` (the classic numpy NMS,
    /// ddddocr's).
    IouPlusOne,
    /// Intersection over the smaller box, inclusive coordinates (MTCNN's "Min" NMS).
    MinPlusOne,
}

impl Overlap {
    fn of(self, a: &[f64; 4], b: &[f64; 4]) -> f64 {
        let one = if self == Overlap::Iou { 0.0 } else { 1.0 };
        let w = (a[2].min(b[2]) - a[0].max(b[0]) + one).max(0.0);
        let h = (a[3].min(b[3]) - a[1].max(b[1]) + one).max(0.0);
        let inter = w * h;
        let area = |r: &[f64; 4]| (r[2] - r[0] + one) * (r[3] - r[1] + one);
        match self {
            Overlap::MinPlusOne => inter / area(a).min(area(b)),
            _ => inter / (area(a) + area(b) - inter),
        }
    }
}

/// Non-maximum suppression: indices of the boxes kept, highest score first (ties in input
/// order); a box goes when its overlap with a kept one exceeds `threshold`.
pub fn nms(boxes: &[[f64; 4]], scores: &[f64], threshold: f64, overlap: Overlap) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut keep: Vec<usize> = Vec::new();
    for i in order {
        if keep.iter().all(|&k| overlap.of(&boxes[k], &boxes[i]) <= threshold) {
            keep.push(i);
        }
    }
    keep
}

/// Labels by class index, as a Hugging Face config writes them.
pub fn label(id2label: &BTreeMap<String, String>, class: usize) -> String {
    id2label.get(&class.to_string()).cloned().unwrap_or_else(|| format!("LABEL_{class}"))
}

/// The reported detection: the box clipped to the image.
pub fn detection(c: &Candidate, id2label: &BTreeMap<String, String>, width: u32, height: u32) -> Detection {
    let clip = |v: f64, hi: u32| v.clamp(0.0, hi as f64) as f32;
    Detection {
        label: label(id2label, c.class),
        score: c.score as f32,
        bbox: BoundingBox {
            xmin: clip(c.b[0], width),
            ymin: clip(c.b[1], height),
            xmax: clip(c.b[2], width),
            ymax: clip(c.b[3], height),
        },
    }
}

/// A model output as f32 values and its dims.
pub fn values(t: &Tensor, what: &str) -> Result<(Vec<f32>, Vec<usize>)> {
    let dims = t.dims().to_vec();
    let v = t
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| WickError::BadTask(format!("{what}: {e}")))?;
    Ok((v, dims))
}

/// An NCHW float32 tensor from planar data.
pub fn nchw(data: Vec<f32>, n: usize, h: usize, w: usize) -> Result<Tensor> {
    Tensor::from_vec(data, (n, 3, h, w), &candle_core::Device::Cpu).map_err(|e| WickError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nms_measures_overlap_as_each_reference_does() {
        // Two 10×10 boxes shifted by 5 px: IoU 50/150; with +1 pixels 66/176; over the smaller 66/121.
        let boxes = [[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [40.0, 40.0, 50.0, 50.0]];
        let scores = [0.8, 0.9, 0.1];
        assert_eq!(nms(&boxes, &scores, 0.35, Overlap::Iou), vec![1, 0, 2], "0.333 ≤ 0.35 keeps both");
        assert_eq!(nms(&boxes, &scores, 0.35, Overlap::IouPlusOne), vec![1, 2], "0.375 > 0.35");
        assert_eq!(nms(&boxes, &scores, 0.4, Overlap::IouPlusOne), vec![1, 0, 2]);
        assert_eq!(nms(&boxes, &scores, 0.5, Overlap::MinPlusOne), vec![1, 2], "0.55 > 0.5");
        assert!((Overlap::Iou.of(&boxes[0], &boxes[1]) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn detections_are_clipped_and_labelled() {
        let id2label = BTreeMap::from([("0".to_string(), "face".to_string())]);
        let c = Candidate { b: [-3.5, 2.0, 120.0, 40.0], score: 0.75, class: 0 };
        let d = detection(&c, &id2label, 100, 50);
        assert_eq!((d.label.as_str(), d.score), ("face", 0.75));
        assert_eq!(d.bbox, BoundingBox { xmin: 0.0, ymin: 2.0, xmax: 100.0, ymax: 40.0 });
        assert_eq!(label(&id2label, 3), "LABEL_3");
    }

    #[test]
    fn options_out_of_range_are_bad_input() {
        let loaded = Loaded::new(crate::engine::Model::build(empty_model(), Default::default()).unwrap());
        let image = wick_shared::ImageInput::Pixels(wick_shared::Image { width: 1, height: 1, data: vec![0; 4] });
        let input = TaskInput::ObjectDetection { image, threshold: Some(1.5), iou: None };
        assert!(matches!(pollster::block_on(run(&loaded, input)), Err(WickError::BadInput(m)) if m.contains("threshold")));
    }

    fn empty_model() -> candle_onnx::onnx::ModelProto {
        use candle_onnx::onnx::{GraphProto, OperatorSetIdProto};
        candle_onnx::onnx::ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
            graph: Some(GraphProto::default()),
            ..Default::default()
        }
    }
}
