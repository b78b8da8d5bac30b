//! `test`: the native tests (`cargo test --workspace`), then the browser tests: the site is built
//! and served on a free port, and Node's test runner runs every `{tests,main-thread/tests}/**/*.test.mjs` against it
//! (`WICK_BASE_URL`, `CHROMIUM`, and the folders of the models made here, `WICK_REAL_MODELS`,
//! `WICK_SHARDED_MODEL`, `WICK_VISION_MODELS`, `WICK_TEXT_MODELS`, `WICK_TEXTGEN_MODELS` and
//! `WICK_ASR_MODELS` — served at `/vision-models/`, `/text-models/`, `/textgen-models/` and
//! `/asr-models/` — in its environment; the native tests get the same folders, and
//! `WICK_ONNX_TESTS`, the ONNX backend test data of `cargo xtask conformance`). Both parts run
//! even if the first fails; the
//! summary at the end says which failed.

use crate::{
    dist, models, serve,
    tools::{self, LAVAPIPE, PROTOC},
    util::{cargo, describe, project_root, run},
};
use anyhow::{bail, Result};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

pub fn test(native: bool, browser: bool) -> Result<()> {
    if browser {
        tools::for_test()?;
    } else {
        tools::debian(&[PROTOC, LAVAPIPE])?;
    }
    let mut results = Vec::new();
    if native {
        // The ignored tests are the real-model parity cases: they need the models made here.
        let real = models::ensure(models::NATIVE_CASES)?;
        let vision = models::vision_models()?;
        let text = models::text_models()?;
        let textgen = models::textgen_models()?;
        let asr = models::asr_models()?;
        let onnx_tests = crate::conformance::test_data(None)?;
        let mut cmd = cargo();
        cmd.args(["test", "--workspace", "--", "--include-ignored"])
            .env("WICK_REAL_MODELS", &real)
            .env("WICK_VISION_MODELS", &vision)
            .env("WICK_TEXT_MODELS", &text)
            .env("WICK_TEXTGEN_MODELS", &textgen)
            .env("WICK_ASR_MODELS", &asr)
            .env("WICK_ONNX_TESTS", &onnx_tests);
        results.push((
            format!("native  ({})", describe(&cmd)),
            run(&mut cmd).map(|()| String::new()),
        ));
    }
    if browser {
        results.push((
            "browser (node --test {tests,main-thread/tests}/**/*.test.mjs)".to_string(),
            browser_tests(),
        ));
        // The benchmarks never decide a test, but their harness must work: a short run of each.
        for bench in ["latency", "generation", "asr", "load"] {
            let mut cmd = cargo();
            cmd.args(["xtask", "bench", bench, "--smoke"]);
            results.push((format!("bench   ({})", describe(&cmd)), run(&mut cmd).map(|()| String::new())));
        }
    }
    eprintln!("\n== xtask test summary ==");
    let mut failed = 0;
    for (name, result) in &results {
        match result {
            Ok(note) => eprintln!("  ok      {name}{note}"),
            Err(err) => {
                failed += 1;
                eprintln!("  FAILED  {name}: {err:#}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} test parts failed", results.len());
    }
    Ok(())
}

/// Builds the site, serves it with the test fixtures, runs Node's test runner against it.
/// Returns a note for the summary.
fn browser_tests() -> Result<String> {
    let root = project_root();
    let site = dist::site()?;
    // The Playwright suite, plus the main-thread crate's own browser tests (against a mock worker).
    let mut files = test_files(&root.join("tests"))?;
    files.extend(test_files(&root.join("main-thread/tests"))?);
    if files.is_empty() {
        return Ok(" — no {tests,main-thread/tests}/**/*.test.mjs yet, only the site was built".into());
    }
    let real = models::ensure(models::BROWSER_CASES)?;
    let sharded = models::sharded_test_model()?;
    let vision = models::vision_models()?;
    let text = models::text_models()?;
    let textgen = models::textgen_models()?;
    let asr = models::asr_models()?;
    let mounts = vec![
        serve::Mount::new("/", site),
        serve::Mount::new("/fixtures/", root.join("tests/fixtures")),
        serve::Mount::new("/real-models/", real.clone()),
        serve::Mount::new("/vision-models/", vision.clone()),
        serve::Mount::new("/text-models/", text.clone()),
        serve::Mount::new("/textgen-models/", textgen.clone()),
        serve::Mount::new("/asr-models/", asr.clone()),
    ];
    let (addr, server) = serve::serve("127.0.0.1:0", mounts)?;
    let base = format!("http://{addr}");
    let chromium = crate::util::chromium();
    eprintln!("xtask: serving target/site at {base} (fixtures at {base}/fixtures/)");
    let result = run(Command::new("node")
        .current_dir(&root)
        .args(["--test", "--test-concurrency=1"])
        .args(files.iter().map(|f| f.strip_prefix(&root).unwrap_or(f)))
        .env("WICK_BASE_URL", &base)
        .env("WICK_REAL_MODELS", &real)
        .env("WICK_SHARDED_MODEL", &sharded)
        .env("WICK_VISION_MODELS", &vision)
        .env("WICK_TEXT_MODELS", &text)
        .env("WICK_TEXTGEN_MODELS", &textgen)
        .env("WICK_ASR_MODELS", &asr)
        .env("CHROMIUM", &chromium));
    server.stop();
    let plural = if files.len() == 1 { "" } else { "s" };
    result.map(|()| format!(" — {} file{plural}", files.len()))
}

/// `*.test.mjs` under `dir`, outside `node_modules`, sorted. Listed explicitly rather than
/// handing `tests/` to node, whose directory handling differs between versions.
fn test_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(files);
    };
    for entry in entries {
        let entry = entry?;
        let (path, name) = (entry.path(), entry.file_name());
        if entry.file_type()?.is_dir() {
            if name != "node_modules" && !name.to_string_lossy().starts_with('.') {
                files.extend(test_files(&path)?);
            }
        } else if name.to_string_lossy().ends_with(".test.mjs") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
