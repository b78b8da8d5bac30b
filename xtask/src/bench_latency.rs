//! `bench latency`: each model through Wick and through onnxruntime-web 1.30 (npm) in the same
//! headless Chromium, one fresh browser per runtime (`wick-cpu` with 1 thread — its
//! single-threaded worker, on a page that is not cross-origin isolated — and with its pool of
//! every core, `ort-wasm-1t`, and `ort-wasm-mt` with every core, the page being cross-origin
//! isolated), each inside a dedicated
//! worker: 2 warm-ups, then timed runs (at least `--runs`, and for at least 2 s); the median, the minimum, the largest difference between
//! the runtimes' outputs and Wick's ratio to ORT. Plus the vision pipelines end to end (image in
//! → result out, Wick only), the worker's wasm size (raw and gzip) and its cold start.
//!
//! Models: the MNIST CNN (tests/fixtures/digits), EfficientNet-Lite0 and MiniLM (4 sentences)
//! and ddddocr's YOLOX detector (`target/real-models/`, inputs from their `test_data_set_0`), the
//! Whisper tiny.en encoder (`target/asr-models/`, fp32, on one clip's log-mel features), and
//! whatever pipelines `target/vision-models/` holds. `bench/latency.mjs` drives the browsers.

use crate::{
    bench::{machine, revision, today, write_section},
    dist, models, serve,
    util::{output, project_root, run},
    Args,
};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::{
    fs, io,
    path::Path,
    process::{Command, Stdio},
};

/// The configurations bench/latency.mjs runs; `wick-cpu-mt`'s rows say `wick-cpu` with n threads.
const RUNTIMES: [&str; 4] = ["wick-cpu", "wick-cpu-mt", "ort-wasm-1t", "ort-wasm-mt"];
/// The WebGPU configurations, in a browser with an adapter (SwiftShader on a machine without a
/// GPU: CPU-emulated, and labelled so). Left out of `--smoke` runs: emulated GPUs are slow.
const WEBGPU_RUNTIMES: [&str; 2] = ["wick-webgpu", "ort-webgpu"];
/// The raw-model rows: name, case folder under target/real-models (None: the digits fixture).
const MODELS: [(&str, Option<&str>); 4] = [
    ("mnist-cnn", None),
    ("efficientnet-lite0", Some("efficientnet-lite0")),
    ("minilm (4 sentences)", Some("minilm")),
    ("yolox (ddddocr)", Some("ddddocr-det")),
];

pub fn latency(args: &mut Args) -> Result<()> {
    let json = args.flag("--json");
    let smoke = args.flag("--smoke");
    // Without the Whisper encoder row, whose models take minutes to make on a fresh machine.
    let no_asr = args.flag("--no-asr");
    let runs = crate::bench::runs_arg(args, if smoke { 2 } else { 10 })?;
    // `--runtimes a,b`: only these configurations, printed but not written to BENCHMARKS.md
    // (whose table holds them all).
    let only: Option<Vec<String>> = args.value("--runtimes")?.map(|r| r.split(',').map(str::to_string).collect());
    args.done()?;
    if let Some(bad) = only.iter().flatten().find(|r| !RUNTIMES.contains(&r.as_str()) && !WEBGPU_RUNTIMES.contains(&r.as_str())) {
        bail!("unknown runtime `{bad}`: one of {}", [&RUNTIMES[..], &WEBGPU_RUNTIMES[..]].concat().join(", "));
    }
    let root = project_root();
    crate::bench::build_site()?;
    let ort = root.join("tests/node_modules/onnxruntime-web/dist");
    if !ort.join("ort.wasm.min.mjs").is_file() {
        bail!("{} is missing: tests/package.json should name onnxruntime-web", ort.display());
    }
    let real = models::ensure(&["efficientnet-lite0", "minilm", "ddddocr-det"])?;
    let vision = models::vision_models()?;
    let mut specs = Vec::new();
    for (name, case) in MODELS {
        // The smoke run checks the harness on the smallest model only.
        if smoke && case.is_some() {
            continue;
        }
        let (dir, prefix) = match case {
            Some(case) => (real.join(case), format!("/real-models/{case}/")),
            None => (root.join("tests/fixtures/digits"), "/fixtures/digits/".to_string()),
        };
        let external: Vec<String> = ["model.onnx_data"].iter().filter(|f| dir.join(f).is_file()).map(|f| f.to_string()).collect();
        let set = dir.join("test_data_set_0");
        let mut inputs: Vec<String> = fs::read_dir(&set)
            .with_context(|| format!("{} has no test_data_set_0", dir.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|f| f.starts_with("input_"))
            .collect();
        inputs.sort_by_key(|f| f.trim_start_matches("input_").trim_end_matches(".pb").parse::<u32>().unwrap_or(0));
        specs.push(json!({
            "name": name,
            "model": format!("{prefix}model.onnx"),
            "externalData": external,
            "inputs": inputs.iter().map(|f| format!("{prefix}test_data_set_0/{f}")).collect::<Vec<_>>(),
        }));
    }
    // Whisper tiny.en's encoder (fp32, its external data beside it) on one real window of
    // features: fox.wav's log-mel, [1, 80, 3000] float32, read raw.
    let asr = if smoke || no_asr { None } else { Some(models::asr_models()?) };
    if asr.is_some() {
        let folder = "/asr-models/whisper-tiny.en/";
        specs.push(json!({
            "name": "whisper-tiny.en encoder (fp32, one 30 s window)",
            "model": format!("{folder}onnx/encoder_model.onnx"),
            "externalData": ["encoder_model.onnx_data"],
            "inputs": [{"name": "input_features", "dtype": "float32", "dims": [1, 80, 3000], "url": format!("{folder}audio/fox.mel.f32.bin")}],
            "slowOnEmulatedGpu": true,
        }));
    }
    // The vision pipelines end to end: the photo's file bytes in, labels or boxes out.
    let pipelines = [
        ("image-classification (EfficientNet-Lite0), chelsea.png → top 5", "image-classification", "efficientnet-lite0", "chelsea.png"),
        ("object-detection (MTCNN), astronaut.png → faces", "object-detection", "mtcnn", "astronaut.png"),
        ("object-detection (YOLOX, ddddocr), page.png → boxes", "object-detection", "yolox-ddddocr", "page.png"),
    ];
    for (name, task, folder, image) in pipelines {
        if !smoke && vision.join(folder).join("config.json").is_file() {
            specs.push(json!({
                "name": name,
                "task": task,
                "folder": format!("/vision-models/{folder}/"),
                "image": format!("/vision-models/{folder}/images/{image}"),
            }));
        }
    }

    let work = crate::util::target_dir().join("bench/latency");
    fs::create_dir_all(&work)?;
    let specs_file = work.join("models.json");
    fs::write(&specs_file, serde_json::to_string_pretty(&specs)?)?;
    let rows_file = work.join("rows.jsonl");
    let _ = fs::remove_file(&rows_file);
    let mut mounts = vec![
        serve::Mount::new("/", dist::site_dir()),
        serve::Mount::new("/bench/", root.join("bench")),
        serve::Mount::new("/ort/", ort.clone()),
        serve::Mount::new("/fixtures/", root.join("tests/fixtures")),
        serve::Mount::new("/real-models/", real),
        serve::Mount::new("/vision-models/", vision),
    ];
    if let Some(asr) = asr {
        mounts.push(serve::Mount::new("/asr-models/", asr));
    }
    let (addr, server) = serve::serve("127.0.0.1:0", mounts)?;
    let chromium = crate::util::chromium();
    let mut runtimes = RUNTIMES.to_vec();
    if !smoke {
        runtimes.extend(WEBGPU_RUNTIMES);
    }
    if let Some(only) = &only {
        runtimes.retain(|r| only.iter().any(|o| o == r));
    }
    let driven = run(Command::new("node")
        .current_dir(&root)
        .arg("bench/latency.mjs")
        .args(["--base", &format!("http://{addr}"), "--runtimes", &runtimes.join(","), "--runs", &runs.to_string()])
        .args(["--min-s", if smoke { "0" } else { "2" }])
        .args(["--timeout-s", if smoke { "120" } else { "900" }])
        .arg("--models")
        .arg(&specs_file)
        .arg("--out")
        .arg(&rows_file)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::from(io::stderr())));
    server.stop();
    driven?;

    let lines = crate::bench::read_rows(&rows_file, "latency.mjs")?;
    let wasm = dist::site_dir().join("wick/worker/wick_worker_bg.wasm");
    let wasm_mt = dist::site_dir().join("wick/worker-mt/wick_worker_mt_bg.wasm");
    let ort_wasm = ort.join("ort-wasm-simd-threaded.wasm");
    let command = if smoke {
        "cargo xtask bench latency --smoke".to_string()
    } else {
        format!("cargo xtask bench latency --runs {runs}{}", if no_asr { " --no-asr" } else { "" })
    };
    let markdown = markdown(&lines, &command, &[("Wick worker", &wasm), ("Wick worker, multi-threaded", &wasm_mt), ("onnxruntime-web 1.30 (ort-wasm-simd-threaded)", &ort_wasm)]);
    if json {
        eprint!("{markdown}");
        for row in lines.iter().filter(|l| l.get("model").is_some()) {
            let pick = |k: &str| row.get(k).cloned().unwrap_or(Value::Null);
            println!(
                "{}",
                json!({"model": pick("model"), "runtime": pick("runtime"), "threads": pick("threads"),
                       "median_ms": pick("median_ms"), "min_ms": pick("min_ms"), "max_abs_diff": pick("max_abs_diff"),
                       "inner_median_ms": pick("inner_median_ms")})
            );
        }
    } else {
        print!("{markdown}");
    }
    if !smoke && only.is_none() {
        let path = root.join("BENCHMARKS.md");
        write_section(&path, "latency", "Latency", &markdown)?;
        eprintln!("xtask: wrote the latency section of {}", path.display());
    }
    // Only a broken harness fails the command: a Wick row that could not run is one.
    if let Some(bad) = lines.iter().find(|l| l["runtime"] == "wick-cpu" && l.get("error").is_some()) {
        bail!("wick-cpu failed on {}: {}", bad["model"], bad["error"]);
    }
    Ok(())
}

/// Bytes of `path`, raw and gzip -9.
fn sizes(path: &Path) -> Option<(u64, u64)> {
    let raw = fs::metadata(path).ok()?.len();
    let gz = output(Command::new("sh").arg("-c").arg(format!("gzip -9 -c '{}' | wc -c", path.display())))?;
    Some((raw, gz.trim().parse().ok()?))
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or_else(|| "—".into(), |x| if x < 10.0 { format!("{x:.2}") } else { format!("{x:.1}") })
}

fn markdown(lines: &[Value], command: &str, wasm: &[(&str, &Path)]) -> String {
    let chromium = lines.iter().find(|l| l["row"] == "meta").and_then(|l| l["chromium"].as_str()).unwrap_or("unknown");
    let mut md = format!(
        "`{command}` on {}, Wick at {}: {}; Chromium {chromium}. Each runtime in a fresh headless \
         Chromium, in a dedicated worker; 2 warm-ups, then the timed runs (at least that many, and \
         for at least 2 s, so that fast models are timed in the code V8 tiers up to, as a page \
         that runs them repeatedly gets; `runs` says how many), each timed in the page \
         around the round trip to the worker (postMessage both ways, the inputs and outputs \
         converted: what a page waits for), and inside the worker around the run itself (Wick's \
         `stats.runMs`; onnxruntime-web's `session.run`). `max |Δ|`: largest difference from \
         single-threaded Wick's output (Wick's rows: from ort-wasm-1t's). `Wick / ORT`: Wick's \
         median over that row's at the same thread count (1 with 1, the pool with every core) or \
         on the same backend (WebGPU with WebGPU), round trip and inside. The WebGPU rows run in a \
         browser with `--enable-unsafe-webgpu`; on a machine without a GPU its adapter is \
         SwiftShader, which emulates the GPU on the CPU: those rows measure the backends' overheads, \
         not GPU speed, and take 1 warm-up and 3 runs, without the Whisper encoder.\n\n",
        today(),
        revision(),
        machine()
    );
    md.push_str("| model | runtime | threads | runs | median ms | min ms | inside median ms | max \\|Δ\\| | Wick / ORT | inside Wick / ORT | load ms |\n");
    md.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for row in lines.iter().filter(|l| l.get("model").is_some()) {
        let diff = match row.get("max_abs_diff") {
            Some(Value::Number(n)) => format!("{:.2e}", n.as_f64().unwrap_or(0.0)),
            Some(Value::Null) | None => "—".into(),
            Some(other) => other.to_string(),
        };
        // A WebGPU row names its adapter; an emulated one (SwiftShader) says so.
        let runtime = match row["adapter"].as_str() {
            Some(a) if a.contains("swiftshader") => format!("{} (SwiftShader: CPU-emulated)", row["runtime"].as_str().unwrap_or("?")),
            Some(a) => format!("{} ({a})", row["runtime"].as_str().unwrap_or("?")),
            None => row["runtime"].as_str().unwrap_or("?").to_string(),
        };
        let ratio = row["ratio"].as_f64().map_or_else(|| "—".into(), |r| format!("{r:.2}×"));
        let inner_ratio = row["inner_ratio"].as_f64().map_or_else(|| "—".into(), |r| format!("{r:.2}×"));
        match row.get("error") {
            Some(e) => md.push_str(&format!("| {} | {runtime} | {} | | failed: {} | | | | | | |\n", row["model"].as_str().unwrap_or("?"), row["threads"], e.as_str().unwrap_or("?").replace('|', "\\|"))),
            None => md.push_str(&format!(
                "| {} | {runtime} | {} | {} | {} | {} | {} | {diff} | {ratio} | {inner_ratio} | {} |\n",
                row["model"].as_str().unwrap_or("?"),
                row["threads"],
                row["runs"],
                ms(&row["median_ms"]),
                ms(&row["min_ms"]),
                ms(&row["inner_median_ms"]),
                ms(&row["load_ms"]),
            )),
        }
    }
    md.push_str("\nCold start (worker spawn → the first model ready, in the page):");
    for l in lines.iter().filter(|l| l["row"] == "runtime") {
        md.push_str(&format!(
            " {} ({} thread{}) {} ms ({} ms to spawn, then {});",
            l["runtime"].as_str().unwrap_or("?"),
            l["threads"],
            if l["threads"] == 1 { "" } else { "s" },
            ms(&l["cold_ms"]),
            ms(&l["spawn_ms"]),
            l["cold_model"].as_str().unwrap_or("?")
        ));
    }
    md.push_str("\n\nWasm size:");
    for (name, path) in wasm {
        if let Some((raw, gz)) = sizes(path) {
            md.push_str(&format!(" {name} {:.2} MiB ({:.2} MiB gzip);", raw as f64 / 1048576.0, gz as f64 / 1048576.0));
        }
    }
    md.push('\n');
    md
}
