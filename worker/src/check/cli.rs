//! The `wick-check` command line (`worker/src/bin/wick-check.rs` only calls [`main`]):
//!
//! ```text
//! wick-check check [--backend cpu|webgpu] [--rel R] [--abs A] DIR...
//! wick-check conformance --data DIR [--backend cpu|webgpu] [--suite S|all] [--filter SUBSTR]
//!                        [--rel R] [--abs A] [--list-failures FILE] [--write-md FILE]
//! ```
//!
//! The last line printed is always `N passed, M failed`; the exit status is 1 when anything
//! failed, 2 on a usage error.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::conformance::{self, MdContext, SuiteRun, SUITES};
use super::{case_dirs, check_case_guarded, Backend, Tolerance, CAN_CATCH_PANICS};

const USAGE: &str = "\
Usage: wick-check check [--backend cpu|webgpu] [--rel R] [--abs A] DIR...
       wick-check profile DIR...
       wick-check conformance --data DIR [--suite node|pytorch-converted|pytorch-operator|simple|all]
                              [--backend cpu|webgpu] [--filter SUBSTR] [--rel R] [--abs A]
                              [--list-failures FILE] [--write-md FILE]

check        runs each ONNX-test-style folder (model.onnx + test_data_set_*/{input,output}_*.pb;
             a folder without model.onnx stands for the cases inside it) and prints, per output,
             the max abs and max rel difference.
profile      runs each folder's first data set 3 times after a warm-up and prints the time per
             op type (the engine's hot spots, natively).
conformance  runs the ONNX backend test suite(s) under DIR (onnx/backend/test/data): one line
             per test, the op types that fail most, the skip count, then the totals.

--backend    cpu (default): the CPU engine. webgpu: each case through Model::run_gpu on one
             WebGPU device opened for the whole run (natively: Vulkan, lavapipe in tests); steps
             with a GPU kernel run on it, others on the CPU. Each line then says `[gpu]` (a step
             ran on the GPU) or `[cpu only]`, and the totals count GPU and CPU-only cases apart.

A float element passes when |got-want| <= R*|want|, or, for |want| < 1, |got-want| <= A
(default R = A = 1e-4; float16 / bfloat16 outputs use at least 2^-10 / 2^-7, their own precision);
NaN equals NaN; other dtypes compare exactly; dtypes and shapes must match.
The last line is `N passed, M failed`; exit status 1 when anything failed, 2 on a usage error.
";

/// The `wick-check` binary: `args` without the program name.
pub fn main(args: Vec<String>) -> ExitCode {
    // candle attaches a backtrace to its errors when RUST_BACKTRACE is set; a reason is one line.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("wick-check: {message}");
            ExitCode::from(2)
        }
    }
}

/// Options shared by both commands, plus the positional arguments.
#[derive(Default)]
struct Opts {
    tol: Tolerance,
    backend: Option<String>,
    data: Option<PathBuf>,
    suite: Option<String>,
    filter: Option<String>,
    list_failures: Option<PathBuf>,
    write_md: Option<PathBuf>,
    paths: Vec<PathBuf>,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut opts = Opts::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or(format!("{name} needs a value"))
        };
        let number = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{name}: `{v}` is not a number"))
        };
        match name {
            "--rel" => opts.tol.rel = number(value()?)?,
            "--abs" => opts.tol.abs = number(value()?)?,
            "--data" => opts.data = Some(value()?.into()),
            "--backend" => opts.backend = Some(value()?),
            "--suite" => opts.suite = Some(value()?),
            "--filter" => opts.filter = Some(value()?),
            "--list-failures" => opts.list_failures = Some(value()?.into()),
            "--write-md" => opts.write_md = Some(value()?.into()),
            "-h" | "--help" => return Err(USAGE.trim_end().to_string()),
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option {flag}\n\n{USAGE}"))
            }
            path => opts.paths.push(path.into()),
        }
    }
    Ok(opts)
}

fn run(args: Vec<String>) -> Result<bool, String> {
    let Some((command, rest)) = args.split_first() else {
        return Err(USAGE.trim_end().to_string());
    };
    let opts = parse(rest)?;
    if !CAN_CATCH_PANICS {
        eprintln!(
            "wick-check: built with panic = \"abort\": a panic in the engine ends the run; \
             `cargo xtask check-model` / `conformance` build it with panics unwinding"
        );
    }
    let io = |e: io::Error| e.to_string();
    let backend = || Backend::open(opts.backend.as_deref().unwrap_or("cpu"));
    match command.as_str() {
        "check" => {
            if opts.paths.is_empty() {
                return Err(format!("check needs at least one DIR\n\n{USAGE}"));
            }
            let unused = [
                opts.data.is_some(),
                opts.suite.is_some(),
                opts.filter.is_some(),
            ];
            if unused.iter().any(|&u| u) || opts.list_failures.is_some() || opts.write_md.is_some()
            {
                return Err("check takes only --backend, --rel, --abs and folders".into());
            }
            check(&opts.paths, opts.tol, &backend()?).map_err(io)
        }
        "conformance" => {
            let backend = backend()?;
            conformance(opts, &backend).map_err(io)
        }
        "profile" => profile(&opts.paths).map(|()| true),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(true)
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    }
}

fn profile(paths: &[PathBuf]) -> Result<(), String> {
    use std::time::Instant;
    const RUNS: u32 = 3;
    for dir in paths {
        let model = crate::native::load_model(&dir.join("model.onnx")).map_err(|e| e.to_string())?;
        let sets = crate::native::data_sets(dir).map_err(|e| e.to_string())?;
        let set = sets.first().ok_or_else(|| format!("{}: no test_data_set_*", dir.display()))?;
        let feeds = || set.inputs.iter().cloned().collect::<std::collections::HashMap<_, _>>();
        model.run(feeds(), None).map_err(|e| e.to_string())?; // warm-up
        let mut per_op: std::collections::BTreeMap<String, (f64, u32)> = Default::default();
        let started = Instant::now();
        for _ in 0..RUNS {
            let mut current: Option<(String, Instant)> = None;
            model
                .run_observed(feeds(), None, &mut |op| {
                    let now = Instant::now();
                    if let Some((name, t0)) = current.take() {
                        let e = per_op.entry(name).or_default();
                        e.0 += (now - t0).as_secs_f64() * 1e3;
                        e.1 += 1;
                    }
                    current = op.map(|op| (op.to_string(), now));
                })
                .map_err(|e| e.to_string())?;
        }
        let total = started.elapsed().as_secs_f64() * 1e3 / RUNS as f64;
        println!("{}: {total:.2} ms per run", dir.display());
        let mut rows: Vec<_> = per_op.into_iter().collect();
        rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        for (op, (ms, n)) in rows {
            println!("  {:>9.2} ms {:>5.1}%  {op} ×{}", ms / RUNS as f64, 100.0 * ms / RUNS as f64 / total, n / RUNS);
        }
    }
    Ok(())
}

fn check(paths: &[PathBuf], tol: Tolerance, backend: &Backend) -> io::Result<bool> {
    let mut out = io::stdout().lock();
    let (mut passed, mut failed) = (0, 0);
    let mut gpu = [0; 2]; // GPU cases passed, failed
    for dir in case_dirs(paths) {
        let report = check_case_guarded(&dir, tol, backend);
        writeln!(out, "{}", dir.display())?;
        for o in &report.outputs {
            let mark = if o.diff.passed() { "ok  " } else { "FAIL" };
            writeln!(out, "  {mark} {}/{}: {}", o.set, o.name, o.diff)?;
        }
        let name = match report.gpu {
            None => report.name.clone(),
            Some(true) => format!("{} [gpu]", report.name),
            Some(false) => format!("{} [cpu only]", report.name),
        };
        if report.gpu == Some(true) {
            gpu[usize::from(report.failure.is_some())] += 1;
        }
        match &report.failure {
            None => {
                passed += 1;
                writeln!(out, "PASS {name}")?;
            }
            Some(f) => {
                failed += 1;
                writeln!(out, "FAIL {name}: {}", f.reason())?;
            }
        }
        out.flush()?;
    }
    if backend.is_gpu() {
        let cpu_only = passed + failed - gpu[0] - gpu[1];
        writeln!(out, "GPU cases: {} passed, {} failed; CPU-only cases: {cpu_only}", gpu[0], gpu[1])?;
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(failed == 0)
}

fn conformance(opts: Opts, backend: &Backend) -> io::Result<bool> {
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    if !opts.paths.is_empty() {
        return Err(bad(format!(
            "conformance takes no folders (got {})",
            opts.paths[0].display()
        )));
    }
    let data = opts
        .data
        .ok_or_else(|| bad("conformance needs --data DIR".into()))?;
    let suite = opts.suite.unwrap_or_else(|| "node".into());
    let suites: Vec<&str> = match suite.as_str() {
        "all" => SUITES.to_vec(),
        s if SUITES.contains(&s) => vec![s],
        s => {
            return Err(bad(format!(
                "unknown suite `{s}`; one of {}, all",
                SUITES.join(", ")
            )))
        }
    };
    let mut out = io::stdout().lock();
    let mut runs: Vec<SuiteRun> = Vec::new();
    for s in &suites {
        if suites.len() > 1 {
            writeln!(out, "== {s}")?;
        }
        let run = conformance::run_suite(&data, s, opts.filter.as_deref(), opts.tol, backend, &mut out)?;
        eprintln!(
            "wick-check: {s}: {} tests in {:.1} s ({} passed, {} failed, {} skipped)",
            run.results.len(),
            run.seconds,
            run.passed(),
            run.failed(),
            run.skipped()
        );
        runs.push(run);
    }
    if let Some(file) = &opts.list_failures {
        write_file(file, &conformance::failure_list(&runs))?;
    }
    if let Some(file) = &opts.write_md {
        let mut command = format!("cargo xtask conformance --suite {suite}");
        if backend.is_gpu() {
            command.push_str(" --backend webgpu");
        }
        if let Some(f) = &opts.filter {
            command.push_str(&format!(" --filter {f}"));
        }
        command.push_str(&format!(" --write-md {}", file.display()));
        let version = data
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ctx = MdContext {
            onnx_version: &version,
            command: &command,
            tol: opts.tol,
        };
        write_file(file, &conformance::markdown(&runs, &ctx))?;
    }
    conformance::print_op_summary(&runs, 30, &mut out)?;
    let sum = |f: fn(&SuiteRun) -> usize| runs.iter().map(f).sum::<usize>();
    let (passed, failed, skipped) = (
        sum(SuiteRun::passed),
        sum(SuiteRun::failed),
        sum(SuiteRun::skipped),
    );
    writeln!(out, "{skipped} skipped")?;
    if backend.is_gpu() {
        let n = runs.iter().map(SuiteRun::gpu_counts).fold([0; 4], |a, b| std::array::from_fn(|i| a[i] + b[i]));
        writeln!(out, "GPU cases: {} passed, {} failed", n[0], n[1])?;
        writeln!(out, "CPU-only cases: {} ({} passed, {} failed)", n[2] + n[3], n[2], n[3])?;
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(failed == 0)
}

fn write_file(path: &Path, text: &str) -> io::Result<()> {
    std::fs::write(path, text)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))?;
    eprintln!("wick-check: wrote {}", path.display());
    Ok(())
}
