//! The tools the build and the tests need, checked and installed when missing: the wasm32 rustup
//! target, the nightly toolchain with rust-src (the multi-threaded worker rebuilds std), the
//! wasm-bindgen CLI at the version Cargo.lock pins, Debian packages (`protoc` to build
//! candle-onnx, `chromium` for the browser tests, lavapipe for wick-gpu's native tests) and the
//! npm packages of `tests/`.
//!
//! Every check is silent when the tool is already there; every install says what it installs.

use crate::util::{cargo, find_in_path, output, project_root, run};
use anyhow::{bail, Context, Result};
use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::SystemTime,
};

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// A program (or a driver file) that comes from a Debian package.
#[derive(Clone, Copy)]
pub struct DebTool {
    pub program: &'static str,
    pub package: &'static str,
    /// Not a program but a file: present when `dir` holds a file whose name starts with `program`.
    pub file_in: Option<&'static str>,
}

impl DebTool {
    fn present(&self) -> bool {
        match self.file_in {
            None => find_in_path(self.program).is_some(),
            Some(dir) => fs::read_dir(dir).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(self.program))
            }),
        }
    }
}

/// Builds candle-onnx (its build script compiles onnx.proto).
pub const PROTOC: DebTool = DebTool {
    program: "protoc",
    package: "protobuf-compiler",
    file_in: None,
};
/// Runs the browser tests, headless.
pub const CHROMIUM: DebTool = DebTool {
    program: "chromium",
    package: "chromium",
    file_in: None,
};

/// Speaks the speech-recognition tests' sentences (scripts/make_asr_models.py).
pub const ESPEAK: DebTool = DebTool {
    program: "espeak-ng",
    package: "espeak-ng",
    file_in: None,
};

/// lavapipe, Mesa's software Vulkan driver: the adapter of wick-gpu's native tests (its Vulkan
/// ICD file, `lvp_icd.<arch>.json`, is what the Vulkan loader looks for).
pub const LAVAPIPE: DebTool = DebTool {
    program: "lvp_icd",
    package: "mesa-vulkan-drivers",
    file_in: Some("/usr/share/vulkan/icd.d"),
};

/// Everything `dist` needs. Returns the wasm-bindgen program to run.
pub fn for_build() -> Result<PathBuf> {
    wasm_target()?;
    nightly()?;
    debian(&[PROTOC])?;
    wasm_bindgen()
}

/// Everything `test` needs (build, native tests and browser tests).
pub fn for_test() -> Result<PathBuf> {
    wasm_target()?;
    nightly()?;
    debian(&[PROTOC, LAVAPIPE, CHROMIUM])?;
    let bindgen = wasm_bindgen()?;
    npm_deps()?;
    Ok(bindgen)
}

/// The rustup target `wasm32-unknown-unknown`.
pub fn wasm_target() -> Result<()> {
    let Some(installed) = output(Command::new("rustup").args(["target", "list", "--installed"]))
    else {
        bail!(
            "cannot run `rustup target list --installed`; install rustup (https://rustup.rs) \
             or add the {WASM_TARGET} target to your toolchain by hand"
        );
    };
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("xtask: installing the Rust target {WASM_TARGET}");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// The nightly toolchain with its rust-src component: the multi-threaded worker is built with
/// `-Z build-std`, since the std rustup ships for wasm32 has no atomics. A fresh machine runs
/// `rustup toolchain install nightly --component rust-src`.
pub fn nightly() -> Result<()> {
    let installed = output(Command::new("rustup").args(["component", "list", "--toolchain", "nightly", "--installed"]));
    if installed.is_some_and(|list| list.lines().any(|line| line.trim().starts_with("rust-src"))) {
        return Ok(());
    }
    if find_in_path("rustup").is_none() {
        bail!(
            "the multi-threaded worker needs the nightly toolchain with rust-src, through rustup \
             (https://rustup.rs): `rustup toolchain install nightly --component rust-src`"
        );
    }
    eprintln!("xtask: installing the nightly toolchain with rust-src (for the multi-threaded worker)");
    run(Command::new("rustup").args(["toolchain", "install", "nightly", "--component", "rust-src"]))
}

/// `cargo` of the nightly toolchain (through rustup), in the repository root; none of the
/// variables the stable cargo that runs xtask set leaks into it.
pub fn nightly_cargo() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo"]).current_dir(project_root());
    for var in ["CARGO", "RUSTC", "RUSTDOC", "RUSTUP_TOOLCHAIN", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    cmd
}

/// The wasm-bindgen CLI at exactly the version of the `wasm-bindgen` crate in Cargo.lock (the two
/// must match, or the generated glue refuses the module). Looks on PATH, then in cargo's bin
/// directory; installs with `cargo install` when neither has that version.
pub fn wasm_bindgen() -> Result<PathBuf> {
    let lock_path = project_root().join("Cargo.lock");
    let lock = fs::read_to_string(&lock_path)
        .with_context(|| format!("cannot read {}", lock_path.display()))?;
    let want = lock_version(&lock, "wasm-bindgen")?;
    let installed = cargo_bin_dir().join("wasm-bindgen");
    let mut found = Vec::new();
    for program in [PathBuf::from("wasm-bindgen"), installed.clone()] {
        match bindgen_version(&program) {
            Some(v) if v == want => return Ok(program),
            Some(v) => found.push(format!("{v} at {}", program.display())),
            None => {}
        }
    }
    let found = if found.is_empty() {
        "none installed".to_string()
    } else {
        found.join(", ")
    };
    eprintln!(
        "xtask: installing wasm-bindgen-cli {want} to match Cargo.lock ({found}); \
         this compiles for a few minutes"
    );
    run(cargo().args(["install", "wasm-bindgen-cli", "--version", &want]))?;
    match bindgen_version(&installed) {
        Some(v) if v == want => Ok(installed),
        other => bail!(
            "installed wasm-bindgen-cli {want} but {} reports {other:?}",
            installed.display()
        ),
    }
}

/// The version of package `name` in a Cargo.lock; an error when it is absent or there are several.
pub fn lock_version(lock: &str, name: &str) -> Result<String> {
    let mut versions = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|line| {
                let value = line
                    .trim()
                    .strip_prefix(key)?
                    .trim_start()
                    .strip_prefix('=')?;
                Some(value.trim().trim_matches('"').to_string())
            })
        };
        if field("name").as_deref() == Some(name) {
            versions.extend(field("version"));
        }
    }
    match versions.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("Cargo.lock has no package {name}"),
        many => bail!(
            "Cargo.lock has several versions of {name}: {}",
            many.join(", ")
        ),
    }
}

/// `wasm-bindgen --version` prints `wasm-bindgen 0.2.130`.
fn bindgen_version(program: &Path) -> Option<String> {
    let out = output(Command::new(program).arg("--version"))?;
    Some(out.split_whitespace().nth(1)?.to_string())
}

/// Where `cargo install` puts binaries.
fn cargo_bin_dir() -> PathBuf {
    let root = env::var_os("CARGO_INSTALL_ROOT")
        .or_else(|| env::var_os("CARGO_HOME"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    root.join("bin")
}

/// Debian packages providing `tools`, installed with apt-get when running as root.
pub fn debian(tools: &[DebTool]) -> Result<()> {
    let missing: Vec<DebTool> = tools.iter().copied().filter(|t| !t.present()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    let programs: Vec<&str> = missing.iter().map(|t| t.program).collect();
    let apt = format!("apt-get install -y {}", packages.join(" "));
    let root = output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0");
    if !root || find_in_path("apt-get").is_none() {
        bail!(
            "missing {}: install the Debian package(s) {} (`sudo {apt}`), \
             or your system's equivalent",
            programs.join(", "),
            packages.join(", ")
        );
    }
    eprintln!(
        "xtask: installing {} with apt-get (for {})",
        packages.join(" "),
        programs.join(", ")
    );
    static UPDATED: AtomicBool = AtomicBool::new(false);
    if !UPDATED.swap(true, Ordering::SeqCst) {
        run(Command::new("apt-get").args(["update", "-q"]))?;
    }
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q"])
        .args(&packages))?;
    for tool in &missing {
        if !tool.present() {
            bail!(
                "installed {} but `{}` is still not there",
                tool.package,
                tool.program
            );
        }
    }
    Ok(())
}

/// The npm packages of `tests/`: `npm ci` (or `npm install` without a lock file) when
/// `tests/node_modules` is missing or older than `package.json` / `package-lock.json`.
pub fn npm_deps() -> Result<()> {
    let tests = project_root().join("tests");
    let manifest = tests.join("package.json");
    if !manifest.exists() {
        return Ok(());
    }
    node()?;
    let lock = tests.join("package-lock.json");
    let modules = tests.join("node_modules");
    let newest_input = [&manifest, &lock]
        .into_iter()
        .filter_map(|p| mtime(p))
        .max();
    let fresh = match (mtime(&modules), newest_input) {
        (Some(installed), Some(input)) => installed >= input,
        (installed, _) => installed.is_some(),
    };
    if fresh {
        return Ok(());
    }
    let verb = if lock.exists() { "ci" } else { "install" };
    eprintln!("xtask: installing the npm packages of tests/ (npm {verb})");
    run(Command::new("npm")
        .current_dir(&tests)
        .args([verb, "--no-audit", "--no-fund"]))?;
    // npm may write package-lock.json after node_modules; stamp node_modules so the next run
    // sees it as up to date.
    fs::File::open(&modules)
        .and_then(|dir| dir.set_modified(SystemTime::now()))
        .with_context(|| format!("cannot touch {}", modules.display()))
}

/// `node` ≥ 20 and `npm` on PATH (the browser tests use Node's built-in test runner).
pub fn node() -> Result<()> {
    const HOW: &str = "install Node.js 20 or newer (https://nodejs.org, or the NodeSource \
                       Debian packages) so that `node` and `npm` are on PATH";
    if find_in_path("npm").is_none() {
        bail!("npm is missing: {HOW}");
    }
    let Some(version) = output(Command::new("node").arg("--version")) else {
        bail!("node is missing: {HOW}");
    };
    let major = version.trim().trim_start_matches('v').split('.').next();
    match major.and_then(|m| m.parse::<u32>().ok()) {
        Some(m) if m >= 20 => Ok(()),
        _ => bail!("node {} is too old: {HOW}", version.trim()),
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::{lock_version, DebTool};

    const LOCK: &str = r#"
[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "wasm-bindgen-macro",
]

[[package]]
name = "wasm-bindgen-macro"
version = "0.2.131"
"#;

    #[test]
    fn finds_the_locked_version() {
        assert_eq!(lock_version(LOCK, "wasm-bindgen").unwrap(), "0.2.130");
        assert_eq!(lock_version(LOCK, "wasm-bindgen-macro").unwrap(), "0.2.131");
    }

    #[test]
    fn absent_or_ambiguous_is_an_error() {
        assert!(lock_version(LOCK, "serde").is_err());
        let twice = format!("{LOCK}\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.99\"\n");
        assert!(lock_version(&twice, "wasm-bindgen").is_err());
    }

    #[test]
    fn a_driver_file_is_found_by_its_name_prefix() {
        let dir = std::env::temp_dir().join(format!("wick-xtask-icd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir_str: &'static str = Box::leak(dir.to_string_lossy().into_owned().into_boxed_str());
        let tool = DebTool {
            program: "lvp_icd",
            package: "mesa-vulkan-drivers",
            file_in: Some(dir_str),
        };
        assert!(!tool.present());
        std::fs::write(dir.join("lvp_icd.x86_64.json"), "{}").unwrap();
        assert!(tool.present());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
