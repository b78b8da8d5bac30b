#!/usr/bin/env python3
"""Make the voice-activity-detection (silero VAD) folder and its reference data (not committed).

Reads the espeak-ng clips that scripts/make_asr_models.py made (ASR/whisper-tiny.en/audio/:
16 kHz float32 PCM `*.pcm16k.f32.bin`, listed in its reference.json) and writes ASR/silero-vad/:

  onnx/model.onnx                 PyPI silero-vad's silero_vad/data/silero_vad.onnx, as shipped
  audio/composed.pcm16k.f32.bin   the clips COMPOSED below: 16 kHz float32 PCM, > 40 s
  audio/composed.wav              the same as a 16 kHz mono 16-bit WAV (for listening, and for
                                  a future WAV-in test)
  reference.json                  per clip and for the composed one: onnxruntime's speech
                                  probability per 512-sample frame, and the segments silero's own
                                  get_speech_timestamps_from_probs makes of them under each of
                                  OPTION_SETS; for the composed one also the ground-truth speech
                                  intervals

The frame protocol is the one of silero_vad's OnnxWrapper (utils_vad.py; read as text, never
imported: it needs torch) at 16 kHz, batch 1: the audio is cut into 512-sample frames, the last
one zero-padded; before the first frame the state ([2, 1, 128]) and a 64-sample context are
zeros; each run feeds `input` = the previous 64 samples of context followed by the frame ([1,
576]), `state`, and `sr` = 16000 (int64 scalar), and keeps `output` ([1, 1], the probability)
and `stateN` (the next state); the context becomes the last 64 samples of that input. Every
clip starts from zeros (as get_speech_timestamps does: reset_states). onnxruntime runs with one
thread, as the wrapper sets it.

silero's get_speech_timestamps_from_probs is pure Python over a list of floats; it is taken
from the package's utils_vad.py by its syntax tree and run alone (the module itself imports
torch), so the segments are the package's own, not a re-implementation.

The composed clip: silence, then COMPOSED's clips each followed by silence (GAPS_S, seconds),
all with seeded Gaussian noise of standard deviation NOISE (-80 dBFS: near-silence, never
digital zero). Ground truth per spoken clip: its audible speech runs from the first to the
last sample whose |x| exceeds AUDIBLE (-40 dBFS) in the clip as espeak made it — espeak's own
leading (< 51 ms) and trailing (~0.4 s) near-silence is thus excluded — offset by where the
clip was placed. The noise (100 standard deviations below AUDIBLE) never reaches AUDIBLE.

Run from the repository root (a few seconds), after make_asr_models.py:

    pip install numpy onnxruntime
    pip install --no-deps silero-vad==6.2.3     # the .onnx only; its Python code needs torch
    python3 scripts/make_vad_reference.py [--asr DIR]     # default target/asr-models
"""
import argparse
import ast
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import time
import wave

import numpy as np
import onnxruntime as ort

RATE = 16000
FRAME = 512
CONTEXT = 64
# Spoken clips in the order they are placed (fox twice: the composed clip passes 40 s).
COMPOSED = ["fox", "browser", "stella", "weather", "apple", "fox"]
# Silence before the first clip, then after each clip (seconds).
GAPS_S = [2.0, 3.0, 1.5, 2.5, 2.0, 3.0, 2.5]
NOISE = 1e-4
AUDIBLE = 0.01
SEED = 20261128
# Option sets (VadOptions' names; None = no limit) whose segments silero's own
# get_speech_timestamps_from_probs computes on onnxruntime's probabilities.
OPTION_SETS = [
    {},  # silero's defaults
    {"min_silence_ms": 300, "speech_pad_ms": 100},
    {"min_silence_ms": 300, "max_speech_s": 4.0},
    {"max_speech_s": 1.0},
    {"threshold": 0.3, "min_speech_ms": 500, "speech_pad_ms": 0},
    {"threshold": 0.8, "min_silence_ms": 50, "speech_pad_ms": 200},
]
SILERO_NAMES = {"threshold": "threshold", "min_speech_ms": "min_speech_duration_ms",
                "min_silence_ms": "min_silence_duration_ms", "speech_pad_ms": "speech_pad_ms",
                "max_speech_s": "max_speech_duration_s"}


def silero_onnx():
    """The path and version of the package's model file, found without importing the package."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("silero-vad is not installed: pip install --no-deps silero-vad==6.2.3")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "silero_vad.onnx")
    return path, "silero-vad==" + importlib.metadata.version("silero-vad"), os.path.dirname(os.path.dirname(path))


def silero_segments_fn(package_dir):
    """silero's get_speech_timestamps_from_probs, taken from utils_vad.py's source: the module
    imports torch at the top, but this one function is plain Python over a list of floats."""
    path = os.path.join(package_dir, "utils_vad.py")
    tree = ast.parse(open(path).read(), path)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_speech_timestamps_from_probs"]
    assert len(fns) == 1, "utils_vad.py has no get_speech_timestamps_from_probs"
    scope = {"List": list}
    exec(compile(ast.Module(body=fns, type_ignores=[]), path, "exec"), scope)
    return scope["get_speech_timestamps_from_probs"]


def segments(fn, probs, samples):
    """silero's segments [start, end) in samples for each of OPTION_SETS."""
    out = []
    for options in OPTION_SETS:
        kwargs = {SILERO_NAMES[k]: (float("inf") if v is None else v) for k, v in options.items()}
        got = fn(probs, sampling_rate=RATE, audio_length_samples=samples, **kwargs)
        out.append({"options": options, "segments": [[s["start"], s["end"]] for s in got]})
    return out


def probabilities(sess, pcm):
    """One speech probability per 512-sample frame, with OnnxWrapper's context and state."""
    frames = -(-len(pcm) // FRAME)
    padded = np.zeros(frames * FRAME, np.float32)
    padded[: len(pcm)] = pcm
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros(CONTEXT, np.float32)
    sr = np.array(RATE, np.int64)
    probs = []
    for i in range(frames):
        x = np.concatenate([context, padded[i * FRAME:(i + 1) * FRAME]])[None, :]
        out, state = sess.run(None, {"input": x, "state": state, "sr": sr})
        assert out.shape == (1, 1) and state.shape == (2, 1, 128), (out.shape, state.shape)
        probs.append(float(out[0, 0]))
        context = x[0, -CONTEXT:]
    return probs


def audible(pcm):
    """First and one-past-last sample with |x| > AUDIBLE."""
    loud = np.nonzero(np.abs(pcm) > AUDIBLE)[0]
    assert len(loud), "a silent clip"
    return int(loud[0]), int(loud[-1]) + 1


def write_wav(path, pcm):
    s16 = np.round(np.clip(pcm, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(s16.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--asr", default="target/asr-models", help="make_asr_models.py's --out")
    args = ap.parse_args()
    started = time.time()
    whisper = os.path.join(args.asr, "whisper-tiny.en")
    asr_ref = os.path.join(whisper, "reference.json")
    if not os.path.isfile(asr_ref):
        sys.exit(f"{asr_ref} is missing: run scripts/make_asr_models.py --out {args.asr} first")
    out = os.path.join(args.asr, "silero-vad")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "onnx"))
    os.makedirs(os.path.join(out, "audio"))

    src, package, package_dir = silero_onnx()
    silero = silero_segments_fn(package_dir)
    model = os.path.join(out, "onnx", "model.onnx")
    shutil.copyfile(src, model)  # as shipped, byte for byte
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])

    clips = {}
    cases = []
    for case in json.load(open(asr_ref))["cases"]:
        rel = case["pcm16k"]["file"]
        name = os.path.basename(rel).split(".")[0]
        pcm = np.fromfile(os.path.join(whisper, rel), np.float32)
        assert pcm.shape == tuple(case["pcm16k"]["shape"]), (rel, pcm.shape)
        clips[name] = pcm
        t0 = time.time()
        probs = probabilities(sess, pcm)
        cases.append({
            "name": name,
            "pcm": "../whisper-tiny.en/" + rel,
            "samples": len(pcm),
            "probs": probs,
            "silero_segments": segments(silero, probs, len(pcm)),
            "ort_seconds": round(time.time() - t0, 3),
        })
        print(f"{name}: {len(pcm) / RATE:.2f} s, {len(probs)} frames, "
              f"{sum(p >= 0.5 for p in probs)} at >= 0.5")

    assert len(GAPS_S) == len(COMPOSED) + 1
    rng = np.random.default_rng(SEED)
    parts, speech, at = [], [], 0
    for i, gap in enumerate(GAPS_S):
        silence = np.zeros(int(round(gap * RATE)), np.float32)
        parts.append(silence)
        at += len(silence)
        if i == len(COMPOSED):
            break
        name = COMPOSED[i]
        pcm = clips[name]
        a, b = audible(pcm)
        speech.append({"clip": name, "placed": [at, at + len(pcm)], "start": at + a, "end": at + b})
        parts.append(pcm)
        at += len(pcm)
    composed = np.concatenate(parts)
    composed = (composed + NOISE * rng.standard_normal(len(composed))).astype(np.float32)
    assert len(composed) > 40 * RATE, len(composed)
    composed.tofile(os.path.join(out, "audio", "composed.pcm16k.f32.bin"))
    write_wav(os.path.join(out, "audio", "composed.wav"), composed)
    probs = probabilities(sess, composed)
    print(f"composed: {len(composed) / RATE:.2f} s, {len(probs)} frames; speech "
          + ", ".join(f"{s['clip']} {s['start'] / RATE:.2f}-{s['end'] / RATE:.2f} s" for s in speech))

    reference = {
        "model": {"file": "onnx/model.onnx", "source": package + " silero_vad/data/silero_vad.onnx",
                  "copied_as_shipped": open(src, "rb").read() == open(model, "rb").read()},
        "onnxruntime": ort.__version__,
        "rate": RATE,
        "frame": FRAME,
        "context": CONTEXT,
        "protocol": "per clip from zero state and zero context; input = 64 samples of context + "
                    "512 of the frame (last frame zero-padded), sr = 16000; one thread",
        "cases": cases,
        "composed": {
            "pcm": "audio/composed.pcm16k.f32.bin",
            "wav": "audio/composed.wav",
            "samples": len(composed),
            "clips": COMPOSED,
            "gaps_s": GAPS_S,
            "noise_std": NOISE,
            "seed": SEED,
            "audible": AUDIBLE,
            "truth": "per clip: first to one-past-last sample with |x| > audible in the clip as "
                     "espeak made it, offset by where it was placed",
            "speech": speech,
            "probs": probs,
            "silero_segments": segments(silero, probs, len(composed)),
        },
        "seconds": round(time.time() - started, 2),
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
    print(f"wrote {out} in {reference['seconds']} s")


if __name__ == "__main__":
    main()
