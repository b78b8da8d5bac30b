//! The WebGPU backend against the CPU backend and onnxruntime, natively on lavapipe (Vulkan):
//! whole models run with `Model::run_gpu` — GPU kernels where the GPU registry has them, CPU
//! steps with counted transfers elsewhere — must give onnxruntime's outputs (tests/fixtures, made
//! by scripts/make_fixtures.py) and the CPU backend's; a lost device fails `webgpu` models with
//! `gpu_device_lost` and sends `auto` models to the CPU. No adapter is a failure, not a skip.

use std::collections::HashMap;
use std::path::Path;

use wick_shared::Backend;
use wick_worker::engine::{Model, ModelBackend, Resident};
use wick_worker::error::WickError;
use wick_worker::native::{data_sets, load_model};

mod common;

use common::{fixtures, gpu, max_diff, values};

/// Every data set of the case on the GPU: onnxruntime's outputs within 1e-4, the CPU
/// backend's too; returns the stats of the last run.
fn check_case(model: &Model, resident: &Resident, case: &Path) -> wick_shared::GpuRunStats {
    let mut last = None;
    for set in data_sets(case).unwrap() {
        let inputs: HashMap<_, _> = set.inputs.into_iter().collect();
        let cpu = model.run(inputs.clone(), None).unwrap();
        let (out, stats) = pollster::block_on(model.run_gpu(resident, inputs, None)).unwrap();
        for (((name, got), (_, want)), (_, on_cpu)) in
            out.outputs.iter().zip(&set.outputs).zip(&cpu.outputs)
        {
            assert_eq!(got.dims(), want.dims(), "{name}");
            let d = max_diff(&values(got), &values(want));
            assert!(
                d <= 1e-4,
                "{name} in {}: max diff {d} from onnxruntime",
                set.dir.display()
            );
            let c = max_diff(&values(got), &values(on_cpu));
            assert!(c <= 1e-4, "{name}: max diff {c} from the CPU backend");
            eprintln!(
                "{}: {name} max diff {d:e} (onnxruntime), {c:e} (CPU)",
                set.dir.display()
            );
        }
        last = Some(stats);
    }
    last.expect("data sets")
}

#[test]
fn digits_model_on_the_gpu_matches_onnxruntime_and_the_cpu() {
    let case = fixtures().join("digits");
    let model = load_model(&case.join("model.onnx")).unwrap();
    let resident = Resident::new(gpu());
    let stats = check_case(&model, &resident, &case);
    eprintln!("{stats:?}");
    assert!(stats.gpu_steps > 0, "{stats:?}");
    // Weights went up at the first run and stay: later runs upload only the input.
    assert!(resident.bytes() > 0);
    assert!(stats.uploads <= 1, "{stats:?}");
}

#[test]
fn a_lost_device_fails_webgpu_models_and_moves_auto_models_to_the_cpu() {
    let case = fixtures().join("digits");
    let model = load_model(&case.join("model.onnx")).unwrap();
    let set = data_sets(&case).unwrap().remove(0);
    let inputs: HashMap<_, _> = set.inputs.into_iter().collect();
    let want = values(&set.outputs[0].1);

    let gpu = gpu();
    let explicit = ModelBackend::gpu(Resident::new(gpu.clone()), false, "asked");
    let auto = ModelBackend::gpu(Resident::new(gpu.clone()), true, "auto");
    for backend in [&explicit, &auto] {
        let (out, stats) = pollster::block_on(backend.run(&model, inputs.clone(), None)).unwrap();
        assert!(max_diff(&values(&out.outputs[0].1), &want) <= 1e-4);
        assert!(stats.is_some_and(|s| s.gpu_steps > 0 && s.retried_on_cpu.is_none()));
    }

    gpu.destroy();
    let err = pollster::block_on(explicit.run(&model, inputs.clone(), None)).unwrap_err();
    assert!(matches!(err, WickError::GpuDeviceLost(_)), "{err}");
    assert_eq!(explicit.backend(), Backend::Webgpu);

    let (out, stats) = pollster::block_on(auto.run(&model, inputs.clone(), None)).unwrap();
    assert!(max_diff(&values(&out.outputs[0].1), &want) <= 1e-4);
    let stats = stats.unwrap();
    assert!(
        stats
            .retried_on_cpu
            .as_deref()
            .is_some_and(|r| r.contains("lost")),
        "{stats:?}"
    );
    assert_eq!(auto.backend(), Backend::Cpu);
    assert!(
        auto.reason().contains("moved to the CPU"),
        "{}",
        auto.reason()
    );
    // And it keeps serving, on the CPU, without GPU stats.
    let (out, stats) = pollster::block_on(auto.run(&model, inputs, None)).unwrap();
    assert!(max_diff(&values(&out.outputs[0].1), &want) <= 1e-4);
    assert!(stats.is_none());
}
