//! `check-model` and `conformance`: build the `wick-check` binary (worker/src/bin/wick-check.rs)
//! and run it with the caller's arguments and working directory, passing its exit status on.
//! `conformance` first makes sure the ONNX backend test data is in `target/onnx-tests/<onnx
//! version>/`, taken from the onnx wheel on PyPI (the test data is never committed).
//!
//! The binary is built with the `conformance` profile, defined here on cargo's command line: the
//! release profile's optimisation, but `panic = "unwind"` (the release profile aborts on panic,
//! which suits the wasm bundle but would let one engine bug end a run of 1,700 cases) and no LTO
//! (a faster build). Its own profile also gives it its own folder, `target/conformance/`, so it
//! never rebuilds what `--release` built or the reverse.

use crate::{
    tools::{self, PROTOC},
    util::{cargo, find_in_path, run, target_dir},
};
use anyhow::{bail, Context, Result};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

/// The onnx release whose `onnx/backend/test/data/` is the suite.
pub const ONNX_VERSION: &str = "1.22.0";

/// The suites kept from the wheel.
const SUITES: [&str; 4] = ["node", "pytorch-converted", "pytorch-operator", "simple"];

const PROFILE: &str = "conformance";
const PROFILE_CONFIG: [&str; 4] = [
    "profile.conformance.inherits=\"release\"",
    "profile.conformance.panic=\"unwind\"",
    "profile.conformance.lto=false",
    "profile.conformance.codegen-units=16",
];

/// `cargo xtask check-model DIR...`: `wick-check check DIR...`.
pub fn check_model(args: Vec<String>) -> Result<()> {
    if args.is_empty() {
        bail!("check-model needs at least one DIR; see `cargo xtask help`");
    }
    let checker = build_checker()?;
    run_checker(Command::new(checker).arg("check").args(args))
}

/// `cargo xtask conformance [...]`: the test data, then `wick-check conformance --data DIR ...`.
pub fn conformance(wheel: Option<PathBuf>, args: Vec<String>) -> Result<()> {
    let data = test_data(wheel.as_deref())?;
    let checker = build_checker()?;
    run_checker(
        Command::new(checker)
            .arg("conformance")
            .arg("--data")
            .arg(&data)
            .args(args),
    )
}

/// Builds `wick-check` with the `conformance` profile; returns its path.
fn build_checker() -> Result<PathBuf> {
    tools::debian(&[PROTOC])?;
    let mut cmd = cargo();
    cmd.args(["build", "--profile", PROFILE]);
    for setting in PROFILE_CONFIG {
        cmd.args(["--config", setting]);
    }
    run(cmd.args(["-p", "wick-worker", "--bin", "wick-check"]))?;
    Ok(target_dir().join(PROFILE).join("wick-check"))
}

/// Runs the checker in the caller's directory; its non-zero exit status becomes ours.
fn run_checker(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {}", cmd.get_program().to_string_lossy()))?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

/// `target/onnx-tests/<version>/{node,pytorch-converted,pytorch-operator,simple}`, fetched and
/// unpacked when missing. The suites are unpacked into a scratch folder and renamed into place
/// last, so an interrupted fetch leaves nothing that looks complete.
pub fn test_data(wheel: Option<&Path>) -> Result<PathBuf> {
    let root = target_dir().join("onnx-tests");
    let dest = root.join(ONNX_VERSION);
    if SUITES.iter().all(|s| dest.join(s).is_dir()) {
        return Ok(dest);
    }
    let scratch = root.join(format!(".{ONNX_VERSION}.partial-{}", std::process::id()));
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let result = fetch_into(wheel, &scratch, &dest);
    let _ = fs::remove_dir_all(&scratch);
    result?;
    eprintln!("xtask: ONNX backend test data in {}", dest.display());
    Ok(dest)
}

fn fetch_into(wheel: Option<&Path>, scratch: &Path, dest: &Path) -> Result<()> {
    let wheel = match wheel {
        Some(w) => w.to_path_buf(),
        None => download_wheel(&scratch.join("wheel"))?,
    };
    let unpacked = scratch.join("unpacked");
    unzip_test_data(&wheel, &unpacked)?;
    let data = unpacked.join("onnx/backend/test/data");
    let staged = scratch.join("data");
    fs::create_dir_all(&staged)?;
    for suite in SUITES {
        let from = data.join(suite);
        if !from.is_dir() {
            bail!(
                "{} holds no onnx/backend/test/data/{suite}/",
                wheel.display()
            );
        }
        fs::rename(&from, staged.join(suite))?;
    }
    if dest.exists() {
        fs::remove_dir_all(dest).with_context(|| format!("cannot replace {}", dest.display()))?;
    }
    fs::rename(&staged, dest)
        .with_context(|| format!("cannot move the test data to {}", dest.display()))
}

/// What to do without python3 and pip.
fn without_pip(problem: &str) -> String {
    format!(
        "{problem}: the ONNX test data comes from the onnx {ONNX_VERSION} wheel on PyPI, fetched \
         with `python3 -m pip download`. Install Python 3 with pip (Debian: python3-pip), or \
         download any onnx-{ONNX_VERSION}-*.whl from https://pypi.org/project/onnx/{ONNX_VERSION}/#files \
         and pass it with `cargo xtask conformance --wheel FILE`"
    )
}

/// `python3 -m pip download --no-deps --only-binary=:all: onnx==<version> -d <dir>`; returns
/// the wheel. Any platform's wheel will do: the test data is the same in all of them.
fn download_wheel(dir: &Path) -> Result<PathBuf> {
    if find_in_path("python3").is_none() {
        bail!(without_pip("python3 is not on PATH"));
    }
    let pip = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !pip {
        bail!(without_pip("python3 has no pip"));
    }
    eprintln!("xtask: downloading the onnx {ONNX_VERSION} wheel for its backend test data");
    run(Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .arg(format!("onnx=={ONNX_VERSION}"))
        .arg("-d")
        .arg(dir))
    .with_context(|| without_pip("pip could not download the wheel"))?;
    let mut wheels: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    match wheels.pop() {
        Some(w) => Ok(w),
        None => bail!("pip downloaded no .whl into {}", dir.display()),
    }
}

/// Unpacks the wheel's `onnx/backend/test/data/` into `to`: with `unzip` when it is on PATH
/// (only that folder), else with Python's zipfile module (the whole wheel).
fn unzip_test_data(wheel: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    if find_in_path("unzip").is_some() {
        return run(Command::new("unzip")
            .args(["-q", "-o"])
            .arg(wheel)
            .arg("onnx/backend/test/data/*")
            .arg("-d")
            .arg(to));
    }
    if find_in_path("python3").is_some() {
        return run(Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(wheel)
            .arg(to));
    }
    bail!(
        "cannot unpack {}: install `unzip` (Debian: unzip) or Python 3",
        wheel.display()
    )
}
