//! `bench asr`: speech recognition through Wick and through transformers.js (npm
//! `@huggingface/transformers`, its automatic-speech-recognition pipeline on onnxruntime-web's
//! wasm backend, 1 thread) in the same headless Chromium, one fresh browser per runtime and
//! variant, each in a dedicated worker, on the same Whisper tiny.en folder
//! (`target/asr-models/whisper-tiny.en/`, served locally) in both variants (fp32, q4). Every
//! espeak-ng clip of the folder's `reference.json`, fed as its 16 kHz samples, after one untimed
//! transcription: time from the call to the text, the real-time factor (time / audio seconds) and
//! the word error rate against the sentence spoken.
//!
//! A runtime that cannot load a variant or transcribe gets rows saying why; the numbers never
//! fail the command. `--smoke` (part of `cargo xtask test`) runs Wick alone, q4, on the shortest
//! clip, and fails unless the text is non-empty.

use crate::{
    bench::{machine, revision, today, write_section},
    dist, models, serve,
    util::{project_root, run, target_dir},
    Args,
};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::{
    fs, io,
    process::{Command, Stdio},
};

const MODEL: &str = "whisper-tiny.en";
/// The clip warmed up on (short), and the smoke run's.
const SHORT_CLIP: &str = "fox";

pub fn asr(args: &mut Args) -> Result<()> {
    let json = args.flag("--json");
    let smoke = args.flag("--smoke");
    let runs = crate::bench::runs_arg(args, 1)?;
    args.done()?;
    let root = project_root();
    crate::bench::build_site()?;
    let models = models::asr_models()?;
    if !smoke {
        crate::bench::install_peers()?;
    }
    let folder = models.join(MODEL);
    let reference: Value = serde_json::from_str(
        &fs::read_to_string(folder.join("reference.json")).with_context(|| format!("cannot read {}/reference.json", folder.display()))?,
    )?;
    let url = |file: &str| format!("/asr-models/{MODEL}/{file}");
    let mut clips = Vec::new();
    for case in reference["cases"].as_array().context("reference.json has no cases")? {
        let (Some(wav), Some(pcm), Some(samples), Some(sentence)) = (
            case["wav"].as_str(),
            case["pcm16k"]["file"].as_str(),
            case["pcm16k"]["shape"][0].as_f64(),
            case["sentence"].as_str(),
        ) else {
            bail!("reference.json: a case without wav, pcm16k or sentence: {case}");
        };
        let clip = wav.rsplit('/').next().unwrap_or(wav).trim_end_matches(".wav");
        if smoke && clip != SHORT_CLIP {
            continue;
        }
        clips.push(json!({"clip": clip, "pcm": url(pcm), "audio_s": samples / 16000.0, "sentence": sentence}));
    }
    let warmup = clips
        .iter()
        .find(|c| c["clip"] == SHORT_CLIP)
        .map(|c| c["pcm"].clone())
        .with_context(|| format!("reference.json has no {SHORT_CLIP}.wav case"))?;
    let spec = json!({
        "model": MODEL,
        "root": "/asr-models/",
        "folder": format!("/asr-models/{MODEL}/"),
        "warmup": warmup,
        "clips": clips,
    });

    let work = target_dir().join("bench/asr");
    fs::create_dir_all(&work)?;
    let spec_file = work.join("spec.json");
    fs::write(&spec_file, serde_json::to_string_pretty(&spec)?)?;
    let rows_file = work.join("rows.jsonl");
    let _ = fs::remove_file(&rows_file);
    let mounts = vec![
        serve::Mount::new("/", dist::site_dir()),
        serve::Mount::new("/bench/", root.join("bench")),
        serve::Mount::new("/bench-deps/", root.join("bench/node_modules")),
        serve::Mount::new("/asr-models/", models),
    ];
    let (addr, server) = serve::serve("127.0.0.1:0", mounts)?;
    let driven = run(Command::new("node")
        .current_dir(&root)
        .arg("bench/asr.mjs")
        .args(["--base", &format!("http://{addr}")])
        .args(["--runtimes", if smoke { "wick-cpu" } else { "wick-cpu,transformers.js" }])
        .args(["--variants", if smoke { "q4" } else { "fp32,q4" }])
        .args(["--runs", &runs.to_string()])
        .args(["--timeout-s", if smoke { "300" } else { "900" }])
        .arg("--spec")
        .arg(&spec_file)
        .arg("--out")
        .arg(&rows_file)
        .env("CHROMIUM", crate::util::chromium())
        .stdout(Stdio::from(io::stderr())));
    server.stop();
    driven?;

    let rows = crate::bench::read_rows(&rows_file, "asr.mjs")?;
    let command = if smoke { "cargo xtask bench asr --smoke".to_string() } else { format!("cargo xtask bench asr --runs {runs}") };
    let markdown = markdown(&rows, &command);
    if json {
        eprint!("{markdown}");
        for row in &rows {
            let pick = |k: &str| row.get(k).cloned().unwrap_or(Value::Null);
            let mut line = json!({"model": pick("model"), "runtime": pick("runtime"), "variant": pick("variant"), "clip": pick("clip"),
                                  "audio_s": pick("audio_s"), "ms": pick("ms"), "rtf": pick("rtf"), "wer": pick("wer")});
            if let Some(error) = row.get("error") {
                line["error"] = error.clone();
            }
            println!("{line}");
        }
    } else {
        print!("{markdown}");
    }
    if smoke {
        // The smoke run's own assertion: Wick transcribed the clip to some text.
        let Some(row) = rows.iter().find(|r| r["runtime"] == "wick-cpu") else { bail!("bench/asr.mjs wrote no wick-cpu row") };
        if let Some(error) = row.get("error") {
            bail!("wick-cpu failed on {}: {}", row["clip"], error.as_str().unwrap_or("?"));
        }
        if row["text"].as_str().is_none_or(|t| t.trim().is_empty()) {
            bail!("wick-cpu transcribed {} to no text", row["clip"]);
        }
    } else {
        let path = root.join("BENCHMARKS.md");
        write_section(&path, "asr", "Speech recognition", &markdown)?;
        eprintln!("xtask: wrote the asr section of {}", path.display());
    }
    Ok(())
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64().map_or_else(|| "—".into(), |x| format!("{x:.digits$}"))
}

/// At most `n` characters of `text`, with `…` when cut, safe inside a table cell.
fn excerpt(text: &str, n: usize) -> String {
    let mut out: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        out.push('…');
    }
    out.replace('|', "\\|")
}

fn markdown(rows: &[Value], command: &str) -> String {
    let chromium = rows.iter().find_map(|r| r["chromium"].as_str()).unwrap_or("unknown");
    let mut md = format!(
        "`{command}` on {}, Wick at {}: {}; Chromium {chromium}. Whisper tiny.en \
         (`target/asr-models/{MODEL}/`: encoder + merged decoder, fp32 and q4 = 4-bit MatMulNBits) \
         on espeak-ng clips fed as 16 kHz float32 samples; each runtime and variant in a fresh \
         headless Chromium, in a dedicated worker, 1 thread (transformers.js: its \
         automatic-speech-recognition pipeline on onnxruntime-web's wasm backend, `chunk_length_s: \
         30` past 30 s), one untimed transcription of a short clip, then each clip (`runs`: how \
         many times; the median). `ms`: from the call in the page to the text; RTF = ms / audio \
         ms (below 1: faster than real time); WER: word error rate against the sentence spoken \
         (lower case, punctuation dropped). `Wick / peer`: Wick's ms over transformers.js's on that \
         clip and variant. Wick's stats: time in the encoder and in the decoder, tokens decoded, \
         windows (of at most 30 s) the audio was cut into.\n\n",
        today(),
        revision(),
        machine()
    );
    md.push_str("| clip | seconds | runtime | variant | runs | ms | RTF | WER | Wick / peer | Wick's stats | text |\n");
    md.push_str("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n");
    // Clip by clip (in the reference's order), each variant's runtimes together.
    let mut clips: Vec<&str> = Vec::new();
    for clip in rows.iter().filter_map(|r| r["clip"].as_str()) {
        if !clips.contains(&clip) {
            clips.push(clip);
        }
    }
    for clip in clips {
        for variant in ["fp32", "q4"] {
            for row in rows.iter().filter(|r| r["clip"] == clip && r["variant"] == variant) {
                let runtime = row["runtime"].as_str().unwrap_or("?");
                let head = format!("| {clip} | {} | {runtime} | {variant} |", num(&row["audio_s"], 1));
                if let Some(e) = row.get("error") {
                    md.push_str(&format!("{head} failed: {} | | | | | | |\n", excerpt(e.as_str().unwrap_or("?"), 200)));
                    continue;
                }
                let wick = rows.iter().find(|r| r["clip"] == clip && r["variant"] == variant && r["runtime"] == "wick-cpu" && r.get("error").is_none());
                let ratio = match (wick, runtime) {
                    (Some(w), "transformers.js") => match (w["ms"].as_f64(), row["ms"].as_f64()) {
                        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                        _ => "—".into(),
                    },
                    _ => "—".into(),
                };
                let stats = &row["stats"];
                let stats = if stats.is_object() {
                    let windows = stats["windows"].as_u64().unwrap_or(0);
                    format!(
                        "enc {} ms, dec {} ms, {} tokens, {windows} window{}",
                        num(&stats["encoderMs"], 0),
                        num(&stats["decoderMs"], 0),
                        stats["tokens"],
                        if windows == 1 { "" } else { "s" }
                    )
                } else {
                    "—".into()
                };
                md.push_str(&format!(
                    "{head} {} | {} | {} | {} | {ratio} | {stats} | {} |\n",
                    row["runs"],
                    num(&row["ms"], 0),
                    num(&row["rtf"], 3),
                    num(&row["wer"], 3),
                    excerpt(row["text"].as_str().unwrap_or(""), 60),
                ));
            }
        }
    }
    // Load times, once per session.
    let mut loads = Vec::new();
    for row in rows {
        let key = format!("{} {}", row["runtime"].as_str().unwrap_or("?"), row["variant"].as_str().unwrap_or("?"));
        if let Some(ms) = row["load_ms"].as_f64() {
            if !loads.iter().any(|(k, _)| *k == key) {
                loads.push((key, ms));
            }
        }
    }
    if !loads.is_empty() {
        let loads: Vec<String> = loads.iter().map(|(k, ms)| format!("{k} {ms:.0} ms")).collect();
        md.push_str(&format!("\nLoad (the page's call until ready, served locally, no cache): {}.\n", loads.join("; ")));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the table, measured or failed, has the header's cells.
    #[test]
    fn table_rows_have_the_header_cells() {
        let rows = [
            json!({"runtime": "wick-cpu", "variant": "q4", "clip": "fox", "audio_s": 3.9, "runs": 1, "ms": 900.0, "rtf": 0.23, "wer": 0.0,
                   "text": "The quick | brown fox.", "stats": {"encoderMs": 500.0, "decoderMs": 400.0, "tokens": 10, "windows": 1}, "load_ms": 300.0}),
            json!({"runtime": "transformers.js", "variant": "q4", "clip": "fox", "audio_s": 3.9, "runs": 1, "ms": 1800.0, "rtf": 0.46, "wer": 0.0, "text": "The quick brown fox."}),
            json!({"runtime": "transformers.js", "variant": "fp32", "clip": "fox", "audio_s": 3.9, "error": "not available: a | b"}),
        ];
        let md = markdown(&rows, "cargo xtask bench asr");
        let cells = |line: &str| line.replace("\\|", "").matches('|').count();
        let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(table.len(), 5, "{md}");
        assert!(table.iter().all(|l| cells(l) == cells(table[0])), "{md}");
        assert!(md.contains("| 0.50× |"), "{md}");
        assert!(md.contains("wick-cpu q4 300 ms"), "{md}");
    }
}
