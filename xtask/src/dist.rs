//! `dist` and `site`: the npm-style package of the two wasm crates plus their hand-written JS glue,
//! and the demo site (a copy of `www/` with that package under `wick/`).
//!
//! Dist layout (`target/wick-dist` by default):
//!
//! ```text
//! package.json                  name "wick", the workspace version, main/module wick.js
//! wick.js, wick.d.ts, …         every file of main-thread/js/
//! main/wick_main.js, …          wasm-bindgen --target web output for wick-main-thread
//! worker/wick_worker.js, …      wasm-bindgen --target web output for wick-worker
//! worker/…                      every file of worker/js/
//! worker-mt/wick_worker_mt.js, … the same for the multi-threaded build of wick-worker
//!                               (+ snippets/: wasm-bindgen-rayon's pool worker script)
//! ```
//!
//! The multi-threaded worker is wick-worker with its `threads` feature, built by nightly with
//! std rebuilt for atomics and shared memory (stable's std for wasm32 has neither), in its own
//! target directory (`<target>/wasm-mt`) so that neither build invalidates the other's cache.
//! wick-worker.js picks it on a crossOriginIsolated page.

use crate::{
    tools::{self, WASM_TARGET},
    util::{cargo, copy_tree, project_root, run, target_dir},
};
use anyhow::{bail, Context, Result};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

/// One wasm crate of the package.
struct WasmCrate {
    package: &'static str,
    /// The `[lib] name`, which names the .wasm file.
    lib: &'static str,
    /// Sub-directory of the dist that receives the wasm-bindgen output.
    out: &'static str,
}

const WORKER: WasmCrate = WasmCrate {
    package: "wick-worker",
    lib: "wick_worker",
    out: "worker",
};
const MAIN: WasmCrate = WasmCrate {
    package: "wick-main-thread",
    lib: "wick_main",
    out: "main",
};

/// The multi-threaded worker's sub-directory of the dist and its wasm-bindgen `--out-name`.
const WORKER_MT_OUT: &str = "worker-mt";
const WORKER_MT_NAME: &str = "wick_worker_mt";

/// RUSTFLAGS of the multi-threaded worker. They replace `.cargo/config.toml`'s for wasm32, so
/// they repeat its cfg and simd128. Atomics need bulk memory and mutable globals; the memory is
/// shared and imported (each pool worker instantiates the module over the same memory) and may
/// grow to the 4 GiB wasm32 allows (shared memory must declare its maximum up front); current
/// nightly no longer exports the TLS symbols wasm-bindgen's thread support calls, so they are
/// exported by name.
const MT_RUSTFLAGS: &[&str] = &[
    "--cfg",
    "getrandom_backend=\"wasm_js\"",
    "-C",
    "target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128",
    "-C",
    "link-arg=--shared-memory",
    "-C",
    "link-arg=--import-memory",
    "-C",
    "link-arg=--max-memory=4294967296",
    "-C",
    "link-arg=--export=__wasm_init_tls",
    "-C",
    "link-arg=--export=__tls_size",
    "-C",
    "link-arg=--export=__tls_align",
    "-C",
    "link-arg=--export=__tls_base",
];

/// Hand-written glue: (source directory, destination inside the dist).
const GLUE: [(&str, &str); 2] = [("worker/js", "worker"), ("main-thread/js", "")];
/// Files the package entry points name; main-thread/js/ must provide them.
const ENTRY: [&str; 2] = ["wick.js", "wick.d.ts"];

pub fn default_out() -> PathBuf {
    target_dir().join("wick-dist")
}

/// Builds the package into `out` (replaced if it holds an earlier dist).
pub fn dist(out: &Path) -> Result<()> {
    let root = project_root();
    for (dir, _) in GLUE {
        if !root.join(dir).is_dir() {
            bail!(
                "{dir}/ is missing: it holds the hand-written JS glue that dist copies next to \
                 the wasm-bindgen output"
            );
        }
    }
    for file in ENTRY {
        if !root.join("main-thread/js").join(file).is_file() {
            bail!("main-thread/js/{file} is missing: the package's entry point needs it");
        }
    }
    let bindgen = tools::for_build()?;
    prepare(out)?;
    for krate in [&WORKER, &MAIN] {
        run(cargo().args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "-p",
            krate.package,
        ]))?;
    }
    let mt_target = target_dir().join("wasm-mt");
    run(tools::nightly_cargo()
        .env("CARGO_TARGET_DIR", &mt_target)
        .env("CARGO_ENCODED_RUSTFLAGS", MT_RUSTFLAGS.join("\x1f"))
        .args(["build", "--release", "--target", WASM_TARGET, "-p", WORKER.package])
        .args(["--features", "threads", "-Z", "build-std=panic_abort,std"]))?;
    let release = target_dir().join(WASM_TARGET).join("release");
    for krate in [&WORKER, &MAIN] {
        run(Command::new(&bindgen)
            .args(["--target", "web", "--out-dir"])
            .arg(out.join(krate.out))
            .arg(release.join(format!("{}.wasm", krate.lib))))?;
    }
    run(Command::new(&bindgen)
        .args(["--target", "web", "--out-name", WORKER_MT_NAME, "--out-dir"])
        .arg(out.join(WORKER_MT_OUT))
        .arg(mt_target.join(WASM_TARGET).join("release").join(format!("{}.wasm", WORKER.lib))))?;
    for (dir, dest) in GLUE {
        copy_tree(&root.join(dir), &out.join(dest))
            .with_context(|| format!("copying the glue of {dir}/"))?;
    }
    write_package_json(out)?;
    println!("dist: {}", out.display());
    let wasms = [&WORKER, &MAIN].map(|k| format!("{}/{}_bg.wasm", k.out, k.lib));
    for wasm in wasms.into_iter().chain([format!("{WORKER_MT_OUT}/{WORKER_MT_NAME}_bg.wasm")]) {
        let size = fs::metadata(out.join(&wasm))
            .with_context(|| format!("no {wasm}"))?
            .len();
        println!("  {wasm:<34} {:>10} bytes ({})", size, human(size));
    }
    Ok(())
}

/// Rebuilds `target/site/`: a fresh copy of `www/` with the dist under `wick/`.
pub fn site() -> Result<PathBuf> {
    let root = project_root();
    let www = root.join("www");
    if !www.is_dir() {
        bail!("www/ is missing: it holds the demo page");
    }
    if www.join("wick").exists() {
        bail!("www/wick is reserved: the site puts the dist there");
    }
    let out = default_out();
    dist(&out)?;
    let site = site_dir();
    if site.exists() {
        fs::remove_dir_all(&site).with_context(|| format!("cannot remove {}", site.display()))?;
    }
    copy_tree(&www, &site)?;
    copy_tree(&out, &site.join("wick"))?;
    println!("site: {}", site.display());
    Ok(site)
}

pub fn site_dir() -> PathBuf {
    target_dir().join("site")
}

/// Empties `out`, refusing to delete a directory outside cargo's target directory that does not
/// look like an earlier dist.
fn prepare(out: &Path) -> Result<()> {
    if out.exists() {
        let empty = fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        let ours = out.starts_with(target_dir())
            || fs::read_to_string(out.join("package.json"))
                .is_ok_and(|json| json.contains("\"name\": \"wick\""));
        if !empty && !ours {
            bail!(
                "refusing to replace {}: it is not empty and not a wick dist",
                out.display()
            );
        }
        fs::remove_dir_all(out).with_context(|| format!("cannot remove {}", out.display()))?;
    }
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))
}

fn write_package_json(out: &Path) -> Result<()> {
    let mut files: Vec<String> = fs::read_dir(out)?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    files.sort();
    let files: Vec<String> = files.iter().map(|f| json_string(f)).collect();
    let json = format!(
        "{{\n  \"name\": \"wick\",\n  \"version\": {},\n  \"license\": {},\n  \
         \"type\": \"module\",\n  \"main\": \"wick.js\",\n  \"module\": \"wick.js\",\n  \
         \"types\": \"wick.d.ts\",\n  \"files\": [{}]\n}}\n",
        json_string(env!("CARGO_PKG_VERSION")),
        json_string(env!("CARGO_PKG_LICENSE")),
        files.join(", ")
    );
    fs::write(out.join("package.json"), json).context("cannot write package.json")
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}
