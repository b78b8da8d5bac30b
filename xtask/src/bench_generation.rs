//! `bench generation`: text generation through Wick and through transformers.js (npm
//! `@huggingface/transformers`, its text-generation pipeline on onnxruntime-web's wasm backend)
//! in the same headless Chromium, one fresh browser per runtime and model, each in a dedicated
//! worker, on the same converted folders (`target/textgen-models/`, served locally; the q4
//! variant). Greedy decoding of one chat prompt: prefill tokens/s and decode tokens/s (medians
//! of the timed runs, after a warm-up), and whether both runtimes wrote the same answer.
//!
//! transformers.js and its onnxruntime-web come from `bench/package.json`, installed here into
//! `bench/node_modules` (`npm ci --ignore-scripts`: the Node-only native parts are never built).
//! `--smoke` (part of `cargo xtask test`) runs Wick alone on the tiny model, once.

use crate::{
    dist, models, serve,
    util::{project_root, run},
    Args,
};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::{
    fs, io,
    process::{Command, Stdio},
};

/// (row name, folder under target/textgen-models). The exact folder carries the GGUF's weights
/// bit for bit (float zero points, 8-bit lm_head), which onnxruntime runs on slow generic
/// kernels; the ortq4 folder is requantized into the layout its fast kernels take (uint8 zero
/// points, 4-bit lm_head), so the peer is also measured at its best.
const MODELS: [(&str, &str); 3] = [
    ("SmolLM2-135M q4, exact GGUF weights", "smollm2-135m-instruct"),
    ("SmolLM2-135M q4, onnxruntime's fast layout", "smollm2-135m-instruct-ortq4"),
    ("tiny-llama-random q4 (CI model)", "tiny-llama-random"),
];

pub fn generation(args: &mut Args) -> Result<()> {
    let json = args.flag("--json");
    let smoke = args.flag("--smoke");
    let runs = crate::bench::runs_arg(args, if smoke { 1 } else { 3 })?;
    args.done()?;
    let root = project_root();
    crate::bench::build_site()?;
    let textgen = models::textgen_models()?;
    let runtimes = if smoke { "wick-cpu" } else { "wick-cpu,transformers-js-wasm" };
    if !smoke {
        crate::bench::install_peers()?;
    }
    let specs: Vec<Value> = MODELS
        .iter()
        .filter(|(_, folder)| if smoke { *folder == "tiny-llama-random" } else { !folder.starts_with("tiny") })
        .map(|(name, folder)| json!({"name": name, "root": "/textgen-models/", "model": folder, "variant": "q4"}))
        .collect();

    let work = crate::util::target_dir().join("bench/generation");
    fs::create_dir_all(&work)?;
    let rows_file = work.join("rows.jsonl");
    let _ = fs::remove_file(&rows_file);
    let mounts = vec![
        serve::Mount::new("/", dist::site_dir()),
        serve::Mount::new("/bench/", root.join("bench")),
        serve::Mount::new("/bench-deps/", root.join("bench/node_modules")),
        serve::Mount::new("/textgen-models/", textgen),
    ];
    let (addr, server) = serve::serve("127.0.0.1:0", mounts)?;
    let chromium = crate::util::chromium();
    let driven = run(Command::new("node")
        .current_dir(&root)
        .arg("bench/generation.mjs")
        .args(["--base", &format!("http://{addr}"), "--runtimes", runtimes, "--runs", &runs.to_string()])
        .args(["--max-new-tokens", if smoke { "8" } else { "64" }])
        .args(["--timeout-s", if smoke { "120" } else { "900" }])
        .arg("--models")
        .arg(serde_json::to_string(&specs)?)
        .arg("--out")
        .arg(&rows_file)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::from(io::stderr())));
    server.stop();
    driven?;

    let rows = crate::bench::read_rows(&rows_file, "generation.mjs")?;
    let command = if smoke { "cargo xtask bench generation --smoke".to_string() } else { format!("cargo xtask bench generation --runs {runs}") };
    let markdown = markdown(&rows, &command);
    if json {
        eprint!("{markdown}");
        for row in &rows {
            let pick = |k: &str| row.get(k).cloned().unwrap_or(Value::Null);
            println!(
                "{}",
                json!({"model": pick("model"), "runtime": pick("runtime"), "threads": pick("threads"),
                       "prefill_tok_s": pick("prefill_tok_s"), "decode_tok_s": pick("decode_tok_s")})
            );
        }
    } else {
        print!("{markdown}");
    }
    if !smoke {
        let path = root.join("BENCHMARKS.md");
        crate::bench::write_section(&path, "generation", "Text generation", &markdown)?;
        eprintln!("xtask: wrote the generation section of {}", path.display());
    }
    if let Some(bad) = rows.iter().find(|r| r["runtime"] == "wick-cpu" && r.get("error").is_some()) {
        bail!("wick-cpu failed on {}: {}", bad["model"], bad["error"]);
    }
    Ok(())
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64().map_or_else(|| "—".into(), |x| format!("{x:.digits$}"))
}

fn markdown(rows: &[Value], command: &str) -> String {
    let chromium = rows.iter().find_map(|r| r["chromium"].as_str()).unwrap_or("unknown");
    let mut md = format!(
        "`{command}` on {}, Wick at {}: {}; Chromium {chromium}. Each runtime in a fresh headless \
         Chromium, in a dedicated worker, 1 thread, on the same converted folder (q4: 4-bit \
         MatMulNBits; see the rows for the two layouts), greedy, up to 64 new tokens of an answer to \
         one chat prompt; a warm-up, then the timed runs (medians). Timed inside each worker: \
         prefill = the prompt's pass to the first token; decode = the tokens after the first over \
         the time they took. `same text`: whether the answer equals Wick's.\n\n",
        crate::bench::today(),
        crate::bench::revision(),
        crate::bench::machine()
    );
    md.push_str("| model | runtime | threads | runs | prompt tokens | new tokens | prefill ms | prefill tok/s | decode tok/s | decode Wick / peer | same text | load ms |\n");
    md.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n");
    for row in rows {
        let (model, runtime) = (row["model"].as_str().unwrap_or("?"), row["runtime"].as_str().unwrap_or("?"));
        if let Some(e) = row.get("error") {
            md.push_str(&format!("| {model} | {runtime} | | failed: {} | | | | | | | | |\n", e.as_str().unwrap_or("?").replace('|', "\\|")));
            continue;
        }
        let wick = rows.iter().find(|r| r["model"] == row["model"] && r["runtime"] == "wick-cpu" && r.get("error").is_none());
        let (ratio, same) = match (wick, runtime) {
            (_, "wick-cpu") | (None, _) => ("—".to_string(), "—".to_string()),
            (Some(w), _) => (
                match (w["decode_tok_s"].as_f64(), row["decode_tok_s"].as_f64()) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                    _ => "—".into(),
                },
                if w["text"] == row["text"] { "yes".into() } else { "no".into() },
            ),
        };
        md.push_str(&format!(
            "| {model} | {runtime} | {} | {} | {} | {} | {} | {} | {} | {ratio} | {same} | {} |\n",
            row["threads"],
            row["runs"],
            row["prompt_tokens"],
            row["generated_tokens"],
            num(&row["prefill_ms"], 0),
            num(&row["prefill_tok_s"], 1),
            num(&row["decode_tok_s"], 1),
            num(&row["load_ms"], 0),
        ));
    }
    if let Some(text) = rows.iter().find(|r| r["runtime"] == "wick-cpu").and_then(|r| r["text"].as_str()) {
        md.push_str(&format!("\nWick's answer (first model): {:?}\n", text.chars().take(300).collect::<String>()));
    }
    md
}
