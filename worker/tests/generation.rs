//! Text generation against independent references: `scripts/make_textgen_models.py` converts
//! SmolLM2-135M-Instruct's GGUF (and a tiny random model in the same layout) into Hugging Face
//! folders and records, for a chat prompt, the token ids Hugging Face's templating and
//! tokenizer give, and onnxruntime's greedy continuation with the KV cache, which the script
//! checked against a numpy forward pass reading the GGUF directly. Wick's generation loop must
//! give the same prompt ids, the same first logits (≤ 1e-3) and the same tokens. The folder is
//! named by `WICK_TEXTGEN_MODELS`; `cargo xtask test` makes it.

use std::path::PathBuf;
use std::rc::Rc;

use serde_json::Value;
use wick_shared::{ChatMessage, FinishReason, GenerateOptions, Prompt, TaskKind};
use wick_gpu::Gpu;
use wick_worker::engine::{ModelBackend, Resident};
use wick_worker::native::{load_variant_for_task, load_variant_on_gpu};
use wick_worker::tasks::text_generation::{Generation, Step};

fn folder(name: &str) -> PathBuf {
    let Some(dir) = std::env::var_os("WICK_TEXTGEN_MODELS") else {
        panic!("WICK_TEXTGEN_MODELS is not set: run `cargo xtask test`, or scripts/make_textgen_models.py");
    };
    PathBuf::from(dir).join(name)
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn clock() -> f64 {
    std::time::UNIX_EPOCH.elapsed().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Greedy generation of `name`'s `variant` on the reference prompt, compared with onnxruntime;
/// on the CPU backend, or on WebGPU (lavapipe natively).
fn greedy_matches_onnxruntime(name: &str, variant: &str) {
    greedy_on(name, variant, On::Cpu);
}

/// Where a test generates.
#[derive(Clone, Copy, PartialEq)]
enum On {
    Cpu,
    /// WebGPU, the weights loaded to the host and uploaded at the first step.
    Gpu,
    /// WebGPU on a device binding at most this many bytes, the f32 weights streamed to it.
    GpuPlaced(u64),
}

fn greedy_on(name: &str, variant: &str, on: On) {
    let webgpu = on != On::Cpu;
    let dir = folder(name);
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let want = &reference["variants"][variant];
    let file_variant = want["file"].as_str().unwrap().strip_prefix("onnx/model_").map(|f| f.trim_end_matches(".onnx"));
    let loaded = match on {
        On::Cpu => load_variant_for_task(&dir, file_variant, TaskKind::TextGeneration).unwrap(),
        On::Gpu => {
            let mut loaded = load_variant_for_task(&dir, file_variant, TaskKind::TextGeneration).unwrap();
            let gpu = Rc::new(Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}")));
            loaded.backend = ModelBackend::gpu(Resident::new(gpu), false, "the test asks for it");
            loaded
        }
        On::GpuPlaced(max_binding) => {
            let gpu = pollster::block_on(Gpu::with_binding_limit(Some(max_binding))).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(gpu.max_binding_bytes(), max_binding);
            load_variant_on_gpu(&dir, file_variant, TaskKind::TextGeneration, Rc::new(gpu)).unwrap()
        }
    };
    let messages: Vec<ChatMessage> = serde_json::from_value(reference["messages"].clone()).unwrap();
    let max = reference["max_new_tokens"].as_u64().unwrap() as u32;
    let options = GenerateOptions { max_new_tokens: Some(max), ..Default::default() };
    let mut g = Generation::new(&loaded, &Prompt::Chat(messages), &options, 0).unwrap();
    assert_eq!(g.prompt_tokens(), ids(&reference["prompt_ids"]).as_slice(), "{name}: prompt ids (template + tokenizer)");

    let mut streamed = String::new();
    let mut first = true;
    let finish = loop {
        match pollster::block_on(g.step(&clock)).unwrap() {
            Step::Token { text, .. } => streamed.push_str(&text),
            Step::Finished { reason, text } => {
                streamed.push_str(&text);
                break reason;
            }
        }
        if first {
            let got = &g.last_logits()[..32];
            let want: Vec<f32> = want["prompt_last_logits_first"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(diff <= 1e-3, "{name} {variant}: first logits differ by {diff}");
            first = false;
        }
    };
    let want_ids = ids(&want["greedy_ids"]);
    assert_eq!(g.generated_tokens(), want_ids.as_slice(), "{name} {variant}: greedy continuation");
    let eos = reference["eos_token_id"].as_u64().unwrap() as u32;
    let want_finish = if want_ids.last() == Some(&eos) { FinishReason::Eos } else { FinishReason::Length };
    assert_eq!(finish, want_finish);
    assert_eq!(streamed, g.text(), "the streamed pieces add up to the answer");
    assert_eq!(g.text(), want["greedy_text"].as_str().unwrap());
    let stats = g.stats();
    eprintln!("{name} {variant}: {:?} — prefill {:.0} ms, decode {:.1} tok/s", g.text(), stats.prefill_ms, stats.decode_tok_s);
    if webgpu {
        let gpu = loaded.take_gpu_stats().expect("GPU stats");
        eprintln!("{name} {variant} on WebGPU: {gpu:?}");
        assert!(gpu.gpu_steps > gpu.cpu_steps, "most steps on the GPU: {gpu:?}");
        // The KV cache stays on the device: a step reads back its logits and nothing else.
        assert!(gpu.downloads as usize <= g.generated_tokens().len(), "{gpu:?}");
        assert!(!gpu.cpu_ops.iter().any(|op| op == "MatMulNBits" || op == "MatMul"), "{:?}", gpu.cpu_ops);
        if let On::GpuPlaced(max_binding) = on {
            // The table (wider than one binding) is on the device, in parts, read there.
            assert!(loaded.model.device_weight_bytes() >= 49_152 * 64 * 4 && 49_152 * 64 * 4 > max_binding);
            assert!(!gpu.cpu_ops.iter().any(|op| op == "Gather" || op == "Gemm"), "{:?}", gpu.cpu_ops);
        }
    }
}

#[test]
#[ignore = "needs the text-generation models: `cargo xtask test` makes them (WICK_TEXTGEN_MODELS)"]
fn tiny_q4_greedy_matches_onnxruntime() {
    greedy_matches_onnxruntime("tiny-llama-random", "q4");
}

/// onnxruntime's MatMulNBits layout (uint8 zero points), which the GPU kernel unpacks: every
/// product on the device, the KV cache read back and sent again each step.
#[test]
#[ignore = "needs the text-generation models: `cargo xtask test` makes them (WICK_TEXTGEN_MODELS)"]
fn tiny_ortq4_greedy_on_webgpu_matches_onnxruntime() {
    greedy_on("tiny-llama-random-ortq4", "q4", On::Gpu);
}

/// The fp32 model's tied embedding table (49,152 × 64 f32, 12.6 MB: the Gather of the tokens
/// and the LM head's Gemm read it) on a device that binds at most 8 MiB: cut at load into two
/// parts (`engine::split`), each streamed into its own buffer, the Gather reading both and the
/// LM head's product made per part — onnxruntime's greedy tokens still.
#[test]
#[ignore = "needs the text-generation models: `cargo xtask test` makes them (WICK_TEXTGEN_MODELS)"]
fn tiny_fp32_on_webgpu_with_its_embedding_cut_to_the_device_bindings_matches_onnxruntime() {
    greedy_on("tiny-llama-random", "fp32", On::GpuPlaced(8 << 20));
}

#[test]
#[ignore = "needs the text-generation models: `cargo xtask test` makes them (WICK_TEXTGEN_MODELS)"]
fn tiny_fp32_greedy_matches_onnxruntime() {
    greedy_matches_onnxruntime("tiny-llama-random", "fp32");
}

#[test]
#[ignore = "needs the text-generation models: `cargo xtask test` makes them (WICK_TEXTGEN_MODELS)"]
fn smollm2_q4_answers_like_onnxruntime() {
    greedy_matches_onnxruntime("smollm2-135m-instruct", "q4");
}

#[test]
#[ignore = "needs the text-generation models: `cargo xtask test` makes them (WICK_TEXTGEN_MODELS)"]
fn stop_texts_end_the_answer_before_them_and_sampling_is_seeded() {
    let dir = folder("tiny-llama-random");
    let loaded = load_variant_for_task(&dir, Some("q4"), TaskKind::TextGeneration).unwrap();
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let greedy = reference["variants"]["q4"]["greedy_text"].as_str().unwrap().to_string();
    let run = |options: GenerateOptions| {
        let mut g = Generation::new(&loaded, &Prompt::Text(reference["prompt"].as_str().unwrap().into()), &options, 1).unwrap();
        let mut streamed = String::new();
        loop {
            match pollster::block_on(g.step(&clock)).unwrap() {
                Step::Token { text, .. } => streamed.push_str(&text),
                Step::Finished { reason, text } => return (streamed + &text, reason, g.text().to_string()),
            }
        }
    };
    // A stop text from the middle of the greedy answer: the answer ends just before it, and no
    // part of it was ever streamed.
    let chars: Vec<char> = greedy.chars().collect();
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 3].iter().collect();
    let (streamed, reason, text) = run(GenerateOptions { max_new_tokens: Some(32), stop: vec![stop.clone()], ..Default::default() });
    assert_eq!(reason, FinishReason::Stop);
    assert_eq!(text, greedy[..greedy.find(&stop).unwrap()]);
    assert_eq!(streamed, text);
    // Length limit.
    let (_, reason, _) = run(GenerateOptions { max_new_tokens: Some(3), ..Default::default() });
    assert_eq!(reason, FinishReason::Length);
    // Sampling: the same seed, the same text; another seed, (almost surely) another.
    let sampled = |seed| run(GenerateOptions { max_new_tokens: Some(12), temperature: Some(1.5), top_k: Some(50), top_p: Some(0.95), seed: Some(seed), ..Default::default() }).2;
    assert_eq!(sampled(5), sampled(5));
    assert_ne!(sampled(5), sampled(6));
}
