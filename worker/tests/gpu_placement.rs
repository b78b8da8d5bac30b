//! Weights streamed straight to the GPU (`loader::GpuPlacement`), natively on lavapipe: f32
//! external weights go from the file's chunks into device buffers and nowhere else; the model
//! runs on the GPU like the CPU backend does; a CPU step that reads such a weight reads it back;
//! after a device loss, `auto` refuses with `gpu_device_lost` instead of running without them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_onnx::onnx::{
    self, tensor_proto::DataLocation, type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TypeProto, ValueInfoProto,
};
use prost::Message;
use wick_worker::engine::{ModelBackend, Resident};
use wick_worker::error::WickError;
use wick_worker::native::{data_sets, load_model, load_model_on_gpu};

mod common;

use common::{fixtures, gpu, max_diff, values};

#[test]
fn a_sharded_model_streamed_to_the_gpu_runs_like_onnxruntime_and_the_cpu() {
    let case = fixtures().join("digits-2shards");
    let path = case.join("model.onnx");
    let on_cpu = load_model(&path).unwrap();
    let g = gpu();
    // Odd chunk sizes: weights' words are cut across chunks.
    let sizes = [4097usize, 1, 3, 7, 65_537];
    let mut i = 0;
    let model = load_model_on_gpu(&path, g.clone(), |_| {
        i += 1;
        sizes[i % sizes.len()]
    })
    .unwrap();
    eprintln!(
        "host weights {} B, device weights {} B (CPU model: {} B)",
        model.host_weight_bytes(),
        model.device_weight_bytes(),
        on_cpu.weight_bytes()
    );
    // Every weight is on exactly one side; the f32 ones (all but shapes) only on the device.
    assert_eq!(model.host_weight_bytes() + model.device_weight_bytes(), on_cpu.weight_bytes());
    assert!(model.device_weight_bytes() > 400_000, "the f32 weights went to the device");
    assert!(model.host_weight_bytes() < 1_000, "only small non-f32 values stay on the host");

    let resident = Resident::new(g.clone());
    for set in data_sets(&case).unwrap() {
        let inputs: HashMap<_, _> = set.inputs.into_iter().collect();
        let cpu = on_cpu.run(inputs.clone(), None).unwrap();
        let (out, stats) = pollster::block_on(model.run_gpu(&resident, inputs, None)).unwrap();
        eprintln!("{stats:?}");
        assert!(stats.gpu_steps > 0, "{stats:?}");
        // Device weights are never uploaded: only the image goes up.
        assert!(stats.uploads <= 1, "{stats:?}");
        for (((name, got), (_, want)), (_, c)) in out.outputs.iter().zip(&set.outputs).zip(&cpu.outputs) {
            let d = max_diff(&values(got), &values(want));
            let dc = max_diff(&values(got), &values(c));
            eprintln!("{name}: max diff {d:e} (onnxruntime), {dc:e} (CPU)");
            assert!(d <= 1e-4 && dc <= 1e-4, "{name}: {d} from onnxruntime, {dc} from the CPU");
        }
    }
}

/// W (f32 [2, 3]) at byte 3 of `w.bin` — not word-aligned in the file — and a shape (int64)
/// after it. Y = MatMul(X, W) runs on the GPU; Z = Sign(W) has no GPU kernel, so it reads W
/// back; R = Reshape(W, shape).
const W: [f32; 6] = [1.5, -2.0, 0.0, 0.25, -0.5, 3.0];

fn tiny_model(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut data = vec![0xEEu8; 3];
    data.extend(W.iter().flat_map(|v| v.to_le_bytes()));
    data.extend([3i64, 2].iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(dir.join("w.bin"), &data).unwrap();
    let entry = |k: &str, v: String| StringStringEntryProto { key: k.into(), value: v };
    let external = |name: &str, data_type: i32, dims: Vec<i64>, offset: usize, length: usize| TensorProto {
        name: name.into(),
        data_type,
        dims,
        data_location: DataLocation::External as i32,
        external_data: vec![
            entry("location", "w.bin".into()),
            entry("offset", offset.to_string()),
            entry("length", length.to_string()),
        ],
        ..Default::default()
    };
    let value = |name: &str, dims: &[i64]| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(onnx::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| onnx::tensor_shape_proto::Dimension {
                            value: Some(onnx::tensor_shape_proto::dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = |op: &str, inputs: &[&str], output: &str| NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
        graph: Some(GraphProto {
            name: "tiny".into(),
            node: vec![node("MatMul", &["X", "W"], "Y"), node("Sign", &["W"], "Z"), node("Reshape", &["W", "shape"], "R")],
            initializer: vec![external("W", 1, vec![2, 3], 3, 24), external("shape", 7, vec![2], 27, 16)],
            input: vec![value("X", &[1, 2])],
            output: vec![value("Y", &[1, 3]), value("Z", &[2, 3]), value("R", &[3, 2])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = dir.join("model.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wick-gpu-placement-{}-{name}", std::process::id()))
}

#[test]
fn a_cpu_step_reads_a_device_weight_back_and_the_weights_are_only_on_the_device() {
    let path = tiny_model(&scratch("readback"));
    let g = gpu();
    let model = load_model_on_gpu(&path, g.clone(), |_| 5).unwrap();
    assert_eq!(model.device_weight_bytes(), 24);
    assert_eq!(model.host_weight_bytes(), 16, "only the int64 shape is on the host");
    // A CPU run cannot run without them.
    let x = Tensor::from_vec(vec![2.0f32, -1.0], (1, 2), &Device::Cpu).unwrap();
    let feeds = HashMap::from([("X".to_string(), x)]);
    assert!(model.run(feeds.clone(), None).is_err());

    let (out, stats) = pollster::block_on(model.run_gpu(&Resident::new(g.clone()), feeds.clone(), None)).unwrap();
    let get = |name: &str| values(&out.outputs.iter().find(|(n, _)| n == name).unwrap().1);
    // By hand: [2, -1] · [[1.5, -2, 0], [0.25, -0.5, 3]].
    assert_eq!(get("Y"), [2.75, -3.5, -3.0]);
    assert_eq!(get("Z"), [1.0, -1.0, 0.0, 1.0, -1.0, 1.0]);
    assert_eq!(get("R"), W);
    assert!(stats.cpu_ops.contains(&"Sign".to_string()), "{stats:?}");
    // W read back once for Sign (its 24 bytes), counted as a download.
    assert!(stats.downloads >= 1 && stats.download_bytes >= 24, "{stats:?}");

    // `auto`'s retry path: the weights read back from the live device are the file's bytes.
    let back = pollster::block_on(model.read_device_weights(&g)).unwrap();
    assert_eq!(values(&back["W"]), W);
    let mut fed = feeds.clone();
    fed.extend(back);
    let cpu = model.run(fed, None).unwrap();
    assert_eq!(values(&cpu.outputs[0].1), [2.75, -3.5, -3.0]);
}

#[test]
fn after_a_device_loss_auto_refuses_a_model_whose_weights_were_on_it() {
    let path = tiny_model(&scratch("lost"));
    let g = gpu();
    let model = load_model_on_gpu(&path, g.clone(), |_| 64).unwrap();
    let auto = ModelBackend::gpu(Resident::new(g.clone()), true, "auto");
    let x = Tensor::from_vec(vec![1.0f32, 1.0], (1, 2), &Device::Cpu).unwrap();
    let feeds = HashMap::from([("X".to_string(), x)]);
    let (out, _) = pollster::block_on(auto.run(&model, feeds.clone(), None)).unwrap();
    assert_eq!(values(&out.outputs[0].1), [1.75, -2.5, 3.0]);

    g.destroy();
    for attempt in 0..2 {
        let err = pollster::block_on(auto.run(&model, feeds.clone(), None)).unwrap_err();
        assert!(matches!(err, WickError::GpuDeviceLost(_)), "{err}");
        assert!(err.to_string().contains("loaded again"), "attempt {attempt}: {err}");
    }
}

#[test]
fn a_model_with_embedded_weights_only_is_unchanged() {
    let case = fixtures().join("digits");
    let model = load_model_on_gpu(&case.join("model.onnx"), gpu(), |_| 1 << 16).unwrap();
    assert!(!model.has_device_weights());
}

#[test]
fn a_weight_past_one_storage_binding_is_refused_by_name_and_shapes_stay_on_the_host() {
    use wick_worker::loader::{ExternalTensor, GpuPlacement, Placed, Placement};
    let g = gpu();
    let mut placement = GpuPlacement::new(g.clone());
    let limit = g.max_binding_bytes();
    let numel = (limit / 4 + 1) as usize;
    let huge = ExternalTensor { name: "lm_head".into(), onnx_type: 1, dims: vec![numel], offset: 0, length: numel as u64 * 4 };
    match placement.alloc(&huge) {
        Err(WickError::GpuWeightTooLarge { tensor, bytes, limit: l }) => {
            assert_eq!((tensor.as_str(), bytes, l), ("lm_head", numel as u64 * 4, limit));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("allocated past the binding limit"),
    }
    // An int64 tensor goes to the host, whole.
    let shape = ExternalTensor { name: "shape".into(), onnx_type: 7, dims: vec![2], offset: 0, length: 16 };
    let mut dest = placement.alloc(&shape).unwrap();
    let bytes: Vec<u8> = [4i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
    placement.write(&mut dest, 0, &bytes[..], 0..16).unwrap();
    match placement.finish(dest, &shape).unwrap() {
        Placed::Host(t) => assert_eq!(t.to_vec1::<i64>().unwrap(), [4, -1]),
        Placed::Device(_) => panic!("an int64 tensor went to the device"),
    }
}
