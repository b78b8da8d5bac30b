//! The WebGPU probe: which adapter `navigator.gpu.requestAdapter()` gives this worker, with its
//! info, features and limits, read once and reported in `hello`'s capabilities. The bootstrap
//! (`wick-worker.js`) asks for the adapter while the module compiles and hands the Promise to
//! [`requested`]; the first `hello` reads it. Read through `Reflect`, not web-sys's WebGPU bindings, which need
//! `--cfg web_sys_unstable_apis` for the whole build.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wick_shared::GpuAdapter;

/// The limits WebGPU defines (GPUSupportedLimits keeps them as getters, which `Object.keys`
/// does not list).
const LIMITS: &[&str] = &[
    "maxTextureDimension1D",
    "maxTextureDimension2D",
    "maxTextureDimension3D",
    "maxTextureArrayLayers",
    "maxBindGroups",
    "maxBindGroupsPlusVertexBuffers",
    "maxBindingsPerBindGroup",
    "maxDynamicUniformBuffersPerPipelineLayout",
    "maxDynamicStorageBuffersPerPipelineLayout",
    "maxSampledTexturesPerShaderStage",
    "maxSamplersPerShaderStage",
    "maxStorageBuffersPerShaderStage",
    "maxStorageTexturesPerShaderStage",
    "maxUniformBuffersPerShaderStage",
    "maxUniformBufferBindingSize",
    "maxStorageBufferBindingSize",
    "minUniformBufferOffsetAlignment",
    "minStorageBufferOffsetAlignment",
    "maxVertexBuffers",
    "maxBufferSize",
    "maxVertexAttributes",
    "maxVertexBufferArrayStride",
    "maxInterStageShaderVariables",
    "maxColorAttachments",
    "maxColorAttachmentBytesPerSample",
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
    "maxComputeWorkgroupSizeX",
    "maxComputeWorkgroupSizeY",
    "maxComputeWorkgroupSizeZ",
    "maxComputeWorkgroupsPerDimension",
];

thread_local! {
    static PROBED: OnceCell<Option<GpuAdapter>> = const { OnceCell::new() };
    /// The bootstrap's `requestAdapter()` Promise, until the probe takes it.
    static REQUESTED: std::cell::RefCell<Option<Promise>> = const { std::cell::RefCell::new(None) };
}

/// The adapter request the bootstrap started (a Promise of a GPUAdapter or null).
pub fn requested(adapter: JsValue) {
    if let Ok(promise) = adapter.dyn_into::<Promise>() {
        REQUESTED.with(|r| *r.borrow_mut() = Some(promise));
    }
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The adapter, probed on the first call.
pub async fn adapter() -> Option<GpuAdapter> {
    if let Some(known) = PROBED.with(|p| p.get().cloned()) {
        return known;
    }
    let found = probe().await;
    PROBED.with(|p| p.get_or_init(|| found.clone()).clone())
}

async fn probe() -> Option<GpuAdapter> {
    let promise = match REQUESTED.with(|r| r.borrow_mut().take()) {
        Some(promise) => promise,
        None => {
            let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
            let request: Function = get(&gpu, "requestAdapter").dyn_into().ok()?;
            request.call0(&gpu).ok()?.dyn_into().ok()?
        }
    };
    let adapter = JsFuture::from(promise).await.ok().filter(JsValue::is_object)?;
    let info = get(&adapter, "info");
    let text = |key: &str| get(&info, key).as_string().unwrap_or_default();
    let is_fallback_adapter = get(&info, "isFallbackAdapter")
        .as_bool()
        .or_else(|| get(&adapter, "isFallbackAdapter").as_bool())
        .unwrap_or(false);
    let mut features: Vec<String> = Array::from(&get(&adapter, "features")).iter().filter_map(|f| f.as_string()).collect();
    features.sort();
    let limits_of = get(&adapter, "limits");
    let limits = LIMITS.iter().filter_map(|&name| Some((name.to_string(), get(&limits_of, name).as_f64()?))).collect::<BTreeMap<_, _>>();
    Some(GpuAdapter {
        vendor: text("vendor"),
        architecture: text("architecture"),
        device: text("device"),
        description: text("description"),
        is_fallback_adapter,
        features,
        limits,
    })
}
