//! `bench`: measurements of Wick in headless Chromium, printed as Markdown tables and kept in
//! BENCHMARKS.md, each subcommand between its own `<!-- bench:NAME:start/end -->` markers so that
//! sections written by hand or by other subcommands stay untouched. The numbers never decide a
//! test: only a broken harness (or Wick failing to load) makes the command fail.
//!
//! `bench load` owns the synthetic sharded model (`scripts/make_big_model.py` into
//! `target/bench/load-*/`, remade only when missing or its parameters change), serving it beside
//! the site, onnxruntime-web (`tests/node_modules`) and `bench/`, running `bench/load.mjs` (one
//! fresh Chromium per configuration and run, renderer memory and CPU time from /proc), and
//! turning its rows into the table (each configuration's median run), the goal verdicts and the
//! `--json` line.

use crate::{
    dist, serve,
    util::{cargo, output, project_root, run, target_dir},
    Args,
};
use anyhow::{bail, Context, Result};
use std::{
    collections::HashMap,
    fs, io,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Run in this order, each in its own browser: the floor, Wick, the peer.
const CONFIGS: [&str; 3] = ["raw", "wick-cpu", "ort-wasm"];
/// Asked for by name only (`--configs raw,wick-gpu`): Wick on WebGPU with `weights: "gpu"`, the
/// weights streamed into GPU buffers — SwiftShader here, so minutes for gigabytes, and a model
/// past wasm32's 4 GiB (`--size-gb 4.5 --shards 3`) that the CPU configurations cannot load.
const GPU_CONFIG: &str = "wick-gpu";
const MIB: f64 = (1u64 << 20) as f64;
/// Where the model's folder is served.
const MODEL_PREFIX: &str = "/big/";

/// `bench [load | latency | generation | asr] [options]`; plain `bench` runs `latency`, then
/// `generation`, then `asr`, then `load` (each with its defaults; `--json` applies to all).
pub fn bench(args: &mut Args) -> Result<()> {
    match args.0.front().map(String::as_str) {
        Some("load") => {
            args.0.pop_front();
        }
        Some("latency") => {
            args.0.pop_front();
            return crate::bench_latency::latency(args);
        }
        Some("generation") => {
            args.0.pop_front();
            return crate::bench_generation::generation(args);
        }
        Some("asr") => {
            args.0.pop_front();
            return crate::bench_asr::asr(args);
        }
        Some(other) if !other.starts_with("--") => {
            bail!("unknown bench `{other}`; see `cargo xtask help`")
        }
        _ => {
            let json = args.flag("--json");
            args.done()?;
            let mut latency = Args(
                if json {
                    vec!["--json".to_string()]
                } else {
                    vec![]
                }
                .into(),
            );
            crate::bench_latency::latency(&mut latency)?;
            let mut generation = Args(if json { vec!["--json".to_string()] } else { vec![] }.into());
            crate::bench_generation::generation(&mut generation)?;
            let mut asr = Args(if json { vec!["--json".to_string()] } else { vec![] }.into());
            crate::bench_asr::asr(&mut asr)?;
            let options = LoadOptions {
                json,
                smoke: false,
                size_gib: 2.5,
                shards: 5,
                per_shard: 4,
                runs: 3,
                configs: CONFIGS.iter().map(|c| c.to_string()).collect(),
            };
            return load(&options);
        }
    }
    let options = LoadOptions::parse(args)?;
    args.done()?;
    load(&options)
}

struct LoadOptions {
    json: bool,
    smoke: bool,
    size_gib: f64,
    shards: u32,
    /// Tensors in each shard file (`--per-shard`; 4 by default).
    per_shard: u32,
    /// Runs of each configuration; the table reports the median.
    runs: u32,
    /// The configurations to measure, in this order (by default all of [`CONFIGS`]).
    configs: Vec<String>,
}

impl LoadOptions {
    fn parse(args: &mut Args) -> Result<LoadOptions> {
        let json = args.flag("--json");
        let smoke = args.flag("--smoke");
        let size = args.value("--size-gb")?;
        let shards = args.value("--shards")?;
        let runs = args.value("--runs")?;
        let per_shard = match args.value("--per-shard")? {
            Some(n) => n.parse().ok().filter(|&n: &u32| n > 0).with_context(|| format!("bad --per-shard `{n}`"))?,
            None => 4,
        };
        let configs: Vec<String> = match args.value("--configs")? {
            Some(list) => list.split(',').map(str::to_string).collect(),
            None => CONFIGS.iter().map(|c| c.to_string()).collect(),
        };
        if let Some(bad) = configs
            .iter()
            .find(|c| !CONFIGS.contains(&c.as_str()) && c.as_str() != GPU_CONFIG)
        {
            bail!(
                "unknown configuration `{bad}` in --configs: one of {}, {GPU_CONFIG}",
                CONFIGS.join(", ")
            );
        }
        if smoke && (size.is_some() || shards.is_some()) {
            bail!("--smoke fixes the model (20 MiB in 2 shards); drop --size-gb and --shards");
        }
        let size_gib: f64 = match size {
            Some(s) => s.parse().with_context(|| format!("bad --size-gb `{s}`"))?,
            None if smoke => 0.02,
            None => 2.5,
        };
        let shards = match shards {
            Some(s) => s.parse().with_context(|| format!("bad --shards `{s}`"))?,
            None if smoke => 2,
            None => 5,
        };
        let runs = match runs {
            Some(s) => s.parse().with_context(|| format!("bad --runs `{s}`"))?,
            None if smoke => 1,
            None => 3,
        };
        if !size_gib.is_finite() || size_gib <= 0.0 || shards == 0 || runs == 0 {
            bail!("--size-gb, --shards and --runs must be positive");
        }
        Ok(LoadOptions {
            json,
            smoke,
            size_gib,
            shards,
            per_shard,
            runs,
            configs,
        })
    }
}

fn load(options: &LoadOptions) -> Result<()> {
    let root = project_root();
    // Child xtasks install the tools (chromium, the npm packages) and build the site, so that
    // their progress lines can go to stderr: stdout is kept for the table, or for nothing but
    // the `--json` line.
    for command in ["tools", "site"] {
        run(cargo()
            .args(["xtask", command])
            .stdout(Stdio::from(io::stderr())))?;
    }
    let ort = root.join("tests/node_modules/onnxruntime-web/dist");
    if !ort.join("ort.wasm.min.mjs").is_file() {
        bail!(
            "{} is missing: tests/package.json should name onnxruntime-web",
            ort.display()
        );
    }
    let model = ensure_model(options)?;

    let mounts = vec![
        serve::Mount::new("/", dist::site_dir()),
        serve::Mount::new("/bench/", root.join("bench")),
        serve::Mount::new("/ort/", ort),
        serve::Mount::new(MODEL_PREFIX, &model),
    ];
    let (addr, server) = serve::serve("127.0.0.1:0", mounts)?;
    let rows_file = model.join("results.tsv");
    let _ = fs::remove_file(&rows_file);
    let chromium = crate::util::chromium();
    // A stuck browser must not hang the test suite that runs --smoke (seconds when it works);
    // a full-size load gets room for slow machines.
    let timeout_s = if options.smoke { "120" } else { "1800" };
    let driven = run(Command::new("node")
        .current_dir(&root)
        .arg("bench/load.mjs")
        .args([
            "--base",
            &format!("http://{addr}"),
            "--prefix",
            MODEL_PREFIX,
        ])
        .arg("--dir")
        .arg(&model)
        .arg("--out")
        .arg(&rows_file)
        .args(["--configs", &options.configs.join(",")])
        .args([
            "--runs",
            &options.runs.to_string(),
            "--timeout-s",
            timeout_s,
        ])
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::from(io::stderr())));
    server.stop();
    driven?;

    let text = fs::read_to_string(&rows_file)
        .with_context(|| format!("bench/load.mjs wrote no {}", rows_file.display()))?;
    let report = Report::parse(&text)?;
    let command = if options.smoke {
        "cargo xtask bench load --smoke".to_string()
    } else {
        format!(
            "cargo xtask bench load --size-gb {} --shards {} --per-shard {} --runs {} --configs {}",
            options.size_gib,
            options.shards,
            options.per_shard,
            options.runs,
            options.configs.join(",")
        )
    };
    let markdown = report.markdown(&command);
    if options.json {
        eprint!("{markdown}");
        println!("{}", report.json());
    } else {
        print!("{markdown}");
    }
    // The smoke model says nothing about performance, and a run of some configurations is not
    // the whole table: keep the committed numbers.
    let all = CONFIGS
        .iter()
        .all(|c| options.configs.iter().any(|o| o == c));
    let path = root.join("BENCHMARKS.md");
    if !options.smoke && all {
        write_section(&path, "load", "Load", &markdown)?;
        eprintln!("xtask: wrote the load section of {}", path.display());
    } else if !options.smoke && options.configs.iter().any(|c| c == GPU_CONFIG) {
        write_section(&path, "load-gpu", "Load onto the GPU", &markdown)?;
        eprintln!("xtask: wrote the load-gpu section of {}", path.display());
    }
    for config in options.configs.iter().filter(|c| *c != "ort-wasm") {
        if let Some(error) = report.runs(config).iter().find_map(|r| r.error()) {
            bail!("{config} failed: {error}");
        }
    }
    Ok(())
}

/// `target/bench/load-<size>/` with the model for these options, made when missing or when its
/// parameters or the generator changed since it was made.
fn ensure_model(options: &LoadOptions) -> Result<PathBuf> {
    let root = project_root();
    let label = if options.smoke {
        "smoke".to_string()
    } else {
        format!("{}gib", options.size_gib)
    };
    let dir = target_dir().join("bench").join(format!("load-{label}"));
    let script = root.join("scripts/make_big_model.py");
    let stamp = dir.join("params.txt");
    // Without onnxruntime-web in the run, shards may reach 2 GiB (it cannot load those).
    let no_ort = !options.configs.iter().any(|c| c == "ort-wasm");
    let params = format!(
        "size_gib={} shards={} per_shard={} no_ort={no_ort}\n",
        options.size_gib, options.shards, options.per_shard
    );
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let current = fs::read_to_string(&stamp).is_ok_and(|s| s == params)
        && modified(&stamp) >= modified(&script);
    if current {
        return Ok(dir);
    }
    python_deps()?;
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    eprintln!(
        "xtask: making the bench model ({label}, {} shards)",
        options.shards
    );
    run(Command::new("python3")
        .arg(&script)
        .arg("--out")
        .arg(&dir)
        .args(["--size-gib", &options.size_gib.to_string()])
        .args(["--shards", &options.shards.to_string()])
        .args(["--per-shard", &options.per_shard.to_string()])
        .args(if no_ort { &["--no-ort"][..] } else { &[] })
        .stdout(Stdio::from(io::stderr())))?;
    fs::write(&stamp, params).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(dir)
}

/// numpy and onnx for the generator (onnx at the version the other scripts use).
fn python_deps() -> Result<()> {
    if output(Command::new("python3").arg("--version")).is_none() {
        bail!(
            "the bench model needs python3 with pip (Debian: apt-get install python3 python3-pip)"
        );
    }
    if output(Command::new("python3").args(["-c", "import numpy, onnx"])).is_some() {
        return Ok(());
    }
    eprintln!("xtask: installing numpy, onnx (PyPI) for the bench model");
    run(Command::new("python3")
        .args(["-m", "pip", "install", "-q", "numpy", "onnx==1.22.0"])
        .stdout(Stdio::from(io::stderr())))
}

/// One line of bench/load.mjs's output: tab-separated `key=value` pairs.
struct Row(HashMap<String, String>);

impl Row {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn num(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse().ok()
    }

    /// Why the load failed; `None` when it finished.
    fn error(&self) -> Option<&str> {
        (self.get("ok") != Some("1")).then(|| self.get("error").unwrap_or("no result"))
    }

    /// Bytes the load rose over the baseline, when it finished.
    fn peak_over(&self) -> Option<f64> {
        self.error()
            .is_none()
            .then(|| self.num("peakOver"))
            .flatten()
    }
}

struct Report {
    meta: Row,
    rows: Vec<Row>,
    weight_bytes: f64,
    total_bytes: f64,
}

impl Report {
    fn parse(text: &str) -> Result<Report> {
        let mut rows: Vec<Row> = text
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                Row(line
                    .split('\t')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect())
            })
            .collect();
        if rows.first().and_then(|r| r.get("row")) != Some("meta") {
            bail!("bench/load.mjs's results do not start with its meta row");
        }
        let meta = rows.remove(0);
        let (Some(weight_bytes), Some(total_bytes)) =
            (meta.num("weightBytes"), meta.num("totalBytes"))
        else {
            bail!("bench/load.mjs's meta row lacks weightBytes or totalBytes");
        };
        Ok(Report {
            meta,
            rows,
            weight_bytes,
            total_bytes,
        })
    }

    /// Every run of `config`, in the order run.
    fn runs(&self, config: &str) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.get("row") == Some(config))
            .collect()
    }

    /// The runs of `config` that finished.
    fn finished(&self, config: &str) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.get("row") == Some(config) && r.error().is_none())
            .collect()
    }

    /// The finished run of `config` with the median load time (of an even count, the slower of
    /// the two in the middle).
    fn median_run(&self, config: &str) -> Option<&Row> {
        let mut runs = self.finished(config);
        runs.retain(|r| r.num("ms").is_some());
        runs.sort_by(|a, b| {
            a.num("ms")
                .partial_cmp(&b.num("ms"))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        runs.get(runs.len() / 2).copied()
    }

    /// The finished run of `config` whose memory rose most.
    fn peak_run(&self, config: &str) -> Option<&Row> {
        self.finished(config)
            .into_iter()
            .filter(|r| r.peak_over().is_some())
            .max_by(|a, b| {
                a.peak_over()
                    .partial_cmp(&b.peak_over())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
    }

    /// Megabytes (10^6) per second over every file, the graph included, of the median run.
    fn throughput(&self, config: &str) -> Option<f64> {
        Some(self.total_bytes / 1e6 / (self.median_run(config)?.num("ms")? / 1e3))
    }

    /// The highest peak of `config` over the weight bytes.
    fn peak_ratio(&self, config: &str) -> Option<f64> {
        Some(self.peak_run(config)?.peak_over()? / self.weight_bytes)
    }

    fn json(&self) -> String {
        let num = |x: Option<f64>| x.map_or("null".to_string(), |x| format!("{x:.4}"));
        let throughput = self
            .throughput("wick-cpu")
            .zip(self.throughput("raw"))
            .map(|(wick, raw)| wick / raw);
        format!(
            "{{\"peak_over_weights\": {}, \"throughput_over_raw\": {}, \"ort_peak_over_weights\": {}}}",
            num(self.peak_ratio("wick-cpu")),
            num(throughput),
            num(self.peak_ratio("ort-wasm")),
        )
    }

    /// The configurations measured, in the order first run.
    fn configs(&self) -> Vec<&str> {
        let mut configs: Vec<&str> = Vec::new();
        for config in self.rows.iter().filter_map(|r| r.get("row")) {
            if !configs.contains(&config) {
                configs.push(config);
            }
        }
        configs
    }

    fn markdown(&self, command: &str) -> String {
        let meta = |key| self.meta.get(key).unwrap_or("?");
        let mut md = format!(
            "`{command}` on {}, Wick at {}: {}; Chromium {}.\n\n\
             Model: {} float32 tensors of [{}, {}] in {} shard files: {:.0} weight bytes \
             ({:.2} GiB), {:.0} bytes with the graph.\n\n\
             | configuration | bytes | load ms | MB/s | renderer CPU s | network CPU s | peak MiB | \
             over baseline MiB | sampled over baseline MiB | peak / weights | GPU process over \
             baseline MiB | max abs diff vs ORT | vs expected |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
            today(),
            revision(),
            machine(),
            meta("chromium"),
            meta("tensors"),
            meta("rows"),
            meta("cols"),
            self.meta.num("files").map_or(0.0, |n| n - 1.0),
            self.weight_bytes,
            self.weight_bytes / (MIB * 1024.0),
            self.total_bytes,
        );
        let configs = self.configs();
        for &config in &configs {
            let (Some(median), Some(peak)) = (self.median_run(config), self.peak_run(config))
            else {
                let runs = self.runs(config);
                let error = runs.iter().find_map(|r| r.error()).unwrap_or("no result");
                let error = error.replace('|', "\\|");
                md += &format!("| {config} | failed: {error} | | | | | | | | | | | |\n");
                continue;
            };
            let mib = |key| {
                peak.num(key)
                    .map_or("?".into(), |b| format!("{:.0}", b / MIB))
            };
            let seconds = |key| median.num(key).map_or("?".into(), |s| format!("{s:.2}"));
            // The worst difference of any run.
            let diff = |key| {
                let diffs: Vec<f64> = self
                    .finished(config)
                    .iter()
                    .filter_map(|r| r.num(key))
                    .collect();
                match diffs.iter().copied().reduce(f64::max) {
                    Some(0.0) => "0".to_string(),
                    Some(d) => format!("{d:.1e}"),
                    None => "—".to_string(),
                }
            };
            md += &format!(
                "| {config} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {:.3} | {} | {} | {} |\n",
                self.total_bytes,
                median.num("ms").unwrap_or(f64::NAN),
                self.throughput(config).unwrap_or(f64::NAN),
                seconds("cpuRenderer"),
                seconds("cpuNetwork"),
                mib("peakAbs"),
                mib("peakOver"),
                mib("sampledOver"),
                self.peak_ratio(config).unwrap_or(f64::NAN),
                mib("gpuOver"),
                diff("diffOrt"),
                diff("diffExpected"),
            );
        }
        md += "\n";
        let runs = configs
            .iter()
            .map(|c| self.runs(c).len())
            .max()
            .unwrap_or(0);
        if runs > 1 {
            let each: Vec<String> = configs
                .iter()
                .map(|&config| {
                    let ms: Vec<String> = self
                        .runs(config)
                        .iter()
                        .map(|r| match (r.error(), r.num("ms")) {
                            (None, Some(ms)) => format!("{ms:.0}"),
                            _ => "failed".to_string(),
                        })
                        .collect();
                    format!("{config} {}", ms.join(", "))
                })
                .collect();
            md += &format!(
                "{runs} runs of each configuration, taking turns. Load time, MB/s and CPU are the \
                 median run's; the memory columns are the run that rose most; the differences \
                 the largest of any run. Load ms of each run: {}.\n\n",
                each.join("; ")
            );
        }
        if self.rows.iter().any(|r| r.get("hwmReset") == Some("0")) {
            md += "VmHWM could not be reset at the baseline here (no write access to \
                   /proc/PID/clear_refs): peaks include the setup.\n\n";
        }
        md + &self.verdicts()
    }

    fn verdicts(&self) -> String {
        let mut out = String::new();
        if let Some(gpu) = self.peak_run(GPU_CONFIG) {
            let on_device = gpu.num("gpuWeightBytes").unwrap_or(0.0);
            let peak = gpu.peak_over().unwrap_or(f64::NAN);
            out += &format!(
                "- {GPU_CONFIG}: backend {} ({}), {:.0} of the {:.0} weight bytes on the device; \
                 the renderer rose {:.0} MiB ({:.3} × the weights): the weights never passed \
                 through wasm memory: **{}**.\n",
                gpu.get("backend").unwrap_or("?"),
                gpu.get("adapter").unwrap_or("?"),
                on_device,
                self.weight_bytes,
                peak / MIB,
                peak / self.weight_bytes,
                verdict(on_device >= self.weight_bytes && peak < 0.1 * self.weight_bytes + 64.0 * MIB)
            );
        }
        if self.runs("wick-cpu").is_empty() {
            return out;
        }
        let limit = 1.1 * self.weight_bytes + 64.0 * MIB;
        match self.peak_run("wick-cpu").and_then(Row::peak_over) {
            Some(peak) => {
                out += &format!(
                    "- Peak: wick-cpu rose {:.0} MiB over its baseline; goal ≤ 1.1 × weights + \
                     64 MiB = {:.0} MiB: **{}**.\n",
                    peak / MIB,
                    limit / MIB,
                    verdict(peak <= limit)
                );
            }
            None => out += "- Peak: no wick-cpu result.\n",
        }
        match (self.throughput("wick-cpu"), self.throughput("raw")) {
            (Some(wick), Some(raw)) => {
                out += &format!(
                    "- Throughput: wick-cpu {wick:.0} MB/s = {:.2} × raw {raw:.0} MB/s; goal ≥ 0.9 × \
                     raw: **{}**.\n",
                    wick / raw,
                    verdict(wick >= 0.9 * raw)
                );
            }
            _ => out += "- Throughput: no wick-cpu or raw result.\n",
        }
        out
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "missed"
    }
}

/// `2 × Intel(R) Xeon(R) …, 23.4 GiB RAM`, from /proc.
pub(crate) fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim())
        })
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_kib: f64 = meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0);
    format!(
        "{cores} × {cpu}, {:.1} GiB RAM",
        ram_kib / (1024.0 * 1024.0)
    )
}

/// The commit measured, `-dirty` when the working tree differs from it.
pub(crate) fn revision() -> String {
    let mut git = Command::new("git");
    git.current_dir(project_root())
        .args(["describe", "--always", "--dirty"]);
    output(&mut git).map_or_else(|| "an unknown commit".into(), |r| r.trim().to_string())
}

pub(crate) fn today() -> String {
    output(Command::new("date").args(["-u", "+%Y-%m-%d"]))
        .map_or_else(|| "today".into(), |d| d.trim().to_string())
}

/// Replaces what lies between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` in
/// `path`; appends a `## TITLE` section with those markers when they are absent.
pub(crate) fn write_section(path: &Path, name: &str, title: &str, body: &str) -> Result<()> {
    let start = format!("<!-- bench:{name}:start -->\n");
    let end = format!("<!-- bench:{name}:end -->");
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => "# Benchmarks\n".to_string(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let new = match (text.find(&start), text.find(&end)) {
        (Some(s), Some(e)) if s < e => {
            format!("{}{start}{body}{}", &text[..s], &text[e..])
        }
        (None, None) => format!("{}\n## {title}\n\n{start}{body}{end}\n", text.trim_end()),
        _ => bail!(
            "{} has a broken {name} section: one marker without the other",
            path.display()
        ),
    };
    fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))
}

/// `--runs N` (a positive count), else `default`.
/// The rows a Node driver (`bench/{driver}`) wrote to `file`, one JSON object per line.
pub(crate) fn read_rows(file: &Path, driver: &str) -> Result<Vec<serde_json::Value>> {
    let text = fs::read_to_string(file).with_context(|| format!("bench/{driver} wrote no {}", file.display()))?;
    Ok(text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?)
}

pub(crate) fn runs_arg(args: &mut Args, default: u32) -> Result<u32> {
    match args.value("--runs")? {
        Some(n) => n.parse().ok().filter(|&n: &u32| n > 0).with_context(|| format!("bad --runs `{n}`")),
        None => Ok(default),
    }
}

/// The benchmarks' peers (`bench/package.json`: transformers.js and its onnxruntime-web) in
/// `bench/node_modules`, installed when missing (`npm ci --ignore-scripts`: the Node-only native
/// parts are never built).
pub(crate) fn install_peers() -> Result<()> {
    let root = project_root();
    if !root.join("bench/node_modules/@huggingface/transformers/dist/transformers.js").is_file() {
        eprintln!("xtask: installing the benchmark's peers (bench/package.json: @huggingface/transformers)");
        run(Command::new("npm").current_dir(root.join("bench")).args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"]))?;
    }
    Ok(())
}

/// The build tools, then the site (wasm bundle) the benchmark pages load.
pub(crate) fn build_site() -> Result<()> {
    for command in ["tools", "site"] {
        run(cargo().args(["xtask", command]).stdout(Stdio::from(io::stderr())))?;
    }
    Ok(())
}
