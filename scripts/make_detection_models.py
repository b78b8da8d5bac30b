#!/usr/bin/env python3
"""Make the object-detection models, their photos and reference boxes (not committed).

Two Hugging Face-style folders under OUT (default target/vision-models/), each

  OUT/<name>/config.json          the detector and its settings (read by the worker's
                                  tasks/object_detection.rs: "detector": "mtcnn" | "yolox")
  OUT/<name>/onnx/model.onnx      (+ model.onnx_data: external weights)
  OUT/<name>/images/*.png         the photos the tests and the demo page feed
  OUT/<name>/reference.json       per photo, the boxes of an independent reference
                                  pipeline written here (numpy + onnxruntime)
  OUT/<name>/test_data_set_<i>/   model inputs and onnxruntime's outputs (ONNX-test style, plus
                                  about.json): per photo for yolox-ddddocr (the letterboxed
                                  input); for mtcnn, astronaut.png's first pyramid level through
                                  P-Net and the R-Net and O-Net batches

  mtcnn          facenet-pytorch's MTCNN face detector: pnet.pt, rnet.pt, onet.pt (legacy
                 torch.save files, read here without torch) written as ONE graph at opset 17
                 holding the three nets side by side, with separate inputs and outputs
                 (pnet_input -> pnet_reg, pnet_prob; rnet_input -> rnet_reg, rnet_prob;
                 onet_input -> onet_reg, onet_landmarks, onet_prob). A run asks for one net's
                 outputs and feeds only that net's input. The reference cascade follows
                 facenet_pytorch/models/utils/detect_face.py (image pyramid with min face 20
                 and factor 0.709, area resampling, thresholds 0.6/0.7/0.7, torchvision NMS
                 0.5 per scale then 0.7, box regression, squaring, the "Min" NMS at the end).
                 Photos: scikit-image's astronaut.png (one face) and coffee.png (none).
  yolox-ddddocr  ddddocr's common_det.onnx as shipped (a YOLOX head: 3549 anchors of
                 [cx, cy, w, h, objectness, class] at strides 8/16/32). The reference follows
                 ddddocr/core/detection_engine.py: letterbox to 416x416 (aspect kept, pad 114
                 at the bottom/right, BGR, 0..255), decode, score = objectness * class > 0.1,
                 NMS at IoU 0.45 with ddddocr's +1 pixel areas; boxes are kept as floats
                 (ddddocr truncates them to ints) and clipped to the image.
                 Photos: scikit-image's page.png (a scanned page) and letters.png, drawn here
                 with Pillow's default font (five coloured glyphs on a plain background,
                 like a click captcha).

Boxes everywhere are {xmin, ymin, xmax, ymax} in the source image's pixels, clipped to it.
One deviation from facenet-pytorch, kept in the worker too: a candidate whose crop is empty
after clipping is dropped (facenet-pytorch would skip its crop and misalign the rest).

Run from the repository root:
  pip install numpy onnx==1.22.0 onnxruntime pillow
  pip install --no-deps facenet-pytorch==2.6.0 ddddocr==1.6.1 scikit-image==0.26.0
  python3 scripts/make_detection_models.py [--out DIR] [--only mtcnn yolox-ddddocr]
"""

import argparse
import collections
import json
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_real_models as mrm  # noqa: E402  (package_file, read_png_rgb, read_torch_legacy, Graph, ...)

DEFAULT_OUT = os.path.join(mrm.ROOT, "target", "vision-models")
DATA_FILE = "model.onnx_data"


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # deterministic, and kind to a shared machine
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def save_model(model, folder):
    """folder/onnx/model.onnx + model.onnx_data (initializers of 1 KB or more external)."""
    os.makedirs(os.path.join(folder, "onnx"), exist_ok=True)
    path = os.path.join(folder, "onnx", "model.onnx")
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=DATA_FILE, size_threshold=1024)
    onnx.checker.check_model(path, full_check=True)
    return path


def skimage_photo(folder, name):
    """Copy scikit-image's data/<name> into folder/images/ byte for byte; (rel path, RGB, dist)."""
    src, dist = mrm.package_file("scikit-image", "skimage", "data", name)
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    rel = f"images/{name}"
    shutil.copyfile(src, os.path.join(folder, rel))
    return rel, read_rgb(src), dist


def read_rgb(path):
    """uint8 [H, W, 3] (a grey PNG's value in all three channels, alpha dropped), as the
    worker's image crate decodes it. PNG is lossless: Pillow and the worker see the same pixels."""
    from PIL import Image
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def box(x1, y1, x2, y2, w, h):
    c = lambda v, hi: round(float(min(max(v, 0.0), hi)), 3)
    return {"xmin": c(x1, w), "ymin": c(y1, h), "xmax": c(x2, w), "ymax": c(y2, h)}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------
# MTCNN: the three nets in one graph

def mtcnn_graph(nets):
    g = mrm.Graph("mtcnn")

    def conv(x, w, name, out=None):
        wt = w[name + ".weight"]
        k = wt.shape[-1]
        return g.op("Conv", [x, g.init(name + ".weight", wt), g.init(name + ".bias", w[name + ".bias"])],
                    name=out, kernel_shape=[k, k], strides=[1, 1], pads=[0, 0, 0, 0])

    def prelu(x, w, name, spatial):
        slope = w[name + ".weight"]
        return g.op("PRelu", [x, g.init(name + ".weight", slope.reshape(-1, 1, 1) if spatial else slope)])

    def pool(x, k, s):  # torch MaxPool2d(k, s, ceil_mode=True)
        return g.op("MaxPool", [x], kernel_shape=[k, k], strides=[s, s], ceil_mode=1)

    def dense(x, w, name, out=None):
        return g.op("Gemm", [x, g.init(name + ".weight", w[name + ".weight"]),
                             g.init(name + ".bias", w[name + ".bias"])], name=out, transB=1)

    def flatten_whc(x):  # torch: x.permute(0, 3, 2, 1).contiguous().view(n, -1)
        return g.op("Flatten", [g.op("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)

    # Initializer names carry the net's name: "pnet.conv1.weight", ...
    p, r, o = ({f"{net}.{k}": v for k, v in nets[net].items()} for net in ("pnet", "rnet", "onet"))

    x = conv("pnet_input", p, "pnet.conv1")
    x = pool(prelu(x, p, "pnet.prelu1", True), 2, 2)
    x = prelu(conv(x, p, "pnet.conv2"), p, "pnet.prelu2", True)
    x = prelu(conv(x, p, "pnet.conv3"), p, "pnet.prelu3", True)
    g.op("Softmax", [conv(x, p, "pnet.conv4_1")], name="pnet_prob", axis=1)
    conv(x, p, "pnet.conv4_2", out="pnet_reg")

    x = pool(prelu(conv("rnet_input", r, "rnet.conv1"), r, "rnet.prelu1", True), 3, 2)
    x = pool(prelu(conv(x, r, "rnet.conv2"), r, "rnet.prelu2", True), 3, 2)
    x = prelu(conv(x, r, "rnet.conv3"), r, "rnet.prelu3", True)
    x = prelu(dense(flatten_whc(x), r, "rnet.dense4"), r, "rnet.prelu4", False)
    g.op("Softmax", [dense(x, r, "rnet.dense5_1")], name="rnet_prob", axis=1)
    dense(x, r, "rnet.dense5_2", out="rnet_reg")

    x = pool(prelu(conv("onet_input", o, "onet.conv1"), o, "onet.prelu1", True), 3, 2)
    x = pool(prelu(conv(x, o, "onet.conv2"), o, "onet.prelu2", True), 3, 2)
    x = pool(prelu(conv(x, o, "onet.conv3"), o, "onet.prelu3", True), 2, 2)
    x = prelu(conv(x, o, "onet.conv4"), o, "onet.prelu4", True)
    x = prelu(dense(flatten_whc(x), o, "onet.dense5"), o, "onet.prelu5", False)
    g.op("Softmax", [dense(x, o, "onet.dense6_1")], name="onet_prob", axis=1)
    dense(x, o, "onet.dense6_2", out="onet_reg")
    dense(x, o, "onet.dense6_3", out="onet_landmarks")

    f = TensorProto.FLOAT
    vi = helper.make_tensor_value_info
    inputs = [vi("pnet_input", f, [1, 3, "height", "width"]),
              vi("rnet_input", f, ["rnet_batch", 3, 24, 24]),
              vi("onet_input", f, ["onet_batch", 3, 48, 48])]
    outputs = [vi("pnet_reg", f, [1, 4, "pnet_h", "pnet_w"]), vi("pnet_prob", f, [1, 2, "pnet_h", "pnet_w"]),
               vi("rnet_reg", f, ["rnet_batch", 4]), vi("rnet_prob", f, ["rnet_batch", 2]),
               vi("onet_reg", f, ["onet_batch", 4]), vi("onet_landmarks", f, ["onet_batch", 10]),
               vi("onet_prob", f, ["onet_batch", 2])]
    return g.model(inputs, outputs, "facenet-pytorch MTCNN: pnet, rnet and onet side by side")


def area_matrix(n_in, n_out):
    """torch interpolate(mode="area") = adaptive average pooling along one axis, as a matrix."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        a, b = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    return m


def area_resize(img, oh, ow):
    """float [C, H, W] -> [C, oh, ow] (separable: every output is a rectangle's mean)."""
    _, h, w = img.shape
    return area_matrix(h, oh) @ img @ area_matrix(w, ow).T


def nms_torchvision(b, s, thr):
    """torchvision.ops.nms: stable descending order, IoU without +1, drop IoU > thr."""
    order = np.argsort(-s, kind="stable")
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep, dead = [], np.zeros(len(s), bool)
    for i in order:
        if dead[i]:
            continue
        keep.append(i)
        ww = np.maximum(np.minimum(b[i, 2], b[:, 2]) - np.maximum(b[i, 0], b[:, 0]), 0)
        hh = np.maximum(np.minimum(b[i, 3], b[:, 3]) - np.maximum(b[i, 1], b[:, 1]), 0)
        inter = ww * hh
        dead |= inter / (area[i] + area - inter) > thr
    return np.array(keep, np.int64)


def nms_min(b, s, thr):
    """facenet-pytorch's nms_numpy(..., 'Min'): +1 areas, overlap over the smaller area."""
    x1, y1, x2, y2 = b.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = np.argsort(s), []
    while order.size > 0:
        i, rest = order[-1], order[:-1]
        keep.append(i)
        ww = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        hh = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[ww * hh / np.minimum(area[i], area[rest]) <= thr]
    return np.array(keep, np.int64)


def rerec(b):
    h, w = b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]
    l = np.maximum(w, h)
    b[:, 0] += w * 0.5 - l * 0.5
    b[:, 1] += h * 0.5 - l * 0.5
    b[:, 2:4] = b[:, 0:2] + l[:, None]
    return b


def bbreg(b, reg):
    w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    b[:, :4] += reg * np.stack([w, h, w, h], 1)
    return b


def crops(img, b, size):
    """facenet-pytorch's pad() + crop + area resize to size x size, normalised. Candidates
    whose clipped crop is empty are dropped: returns (batch, kept mask)."""
    _, h, w = img.shape
    t = np.trunc(b[:, :4]).astype(np.int64)
    x, y = np.maximum(t[:, 0], 1), np.maximum(t[:, 1], 1)
    ex, ey = np.minimum(t[:, 2], w), np.minimum(t[:, 3], h)
    keep = (ey > y - 1) & (ex > x - 1)
    out = [area_resize(img[:, y[k] - 1:ey[k], x[k] - 1:ex[k]], size, size) for k in np.nonzero(keep)[0]]
    batch = (np.stack(out) - 127.5) * 0.0078125 if out else np.zeros((0, 3, size, size))
    return batch.astype(np.float32), keep


def mtcnn_reference(sess, rgb, cfg, record=None):
    """facenet-pytorch's detect_face for one image: [(x1, y1, x2, y2, score)], stage counts.
    With `record` (a list), appends each net's first run as (feeds, outputs) for the parity tests."""
    img = rgb.transpose(2, 0, 1).astype(np.float32).astype(np.float64)
    _, h, w = img.shape
    dummy = {"pnet_input": np.zeros((1, 3, 12, 12), np.float32),
             "rnet_input": np.zeros((1, 3, 24, 24), np.float32),
             "onet_input": np.zeros((1, 3, 48, 48), np.float32)}

    def run(names, **feeds):  # onnxruntime needs every graph input: the other nets get a dummy
        feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
        outs = sess.run(names, {**dummy, **feeds})
        net = names[0].split("_")[0]
        if record is not None and not any(net == r[0] for r in record):
            record.append((net, feeds, dict(zip(names, outs))))
        return outs

    t1, t2, t3 = cfg["thresholds"]
    m = 12.0 / cfg["min_face_size"]
    minl, scale, scales = min(h, w) * m, m, []
    while minl >= 12:
        scales.append(scale)
        scale *= cfg["factor"]
        minl *= cfg["factor"]

    cands = []
    for scale in scales:
        oh, ow = int(h * scale + 1), int(w * scale + 1)
        x = (area_resize(img, oh, ow) - 127.5) * 0.0078125
        reg, prob = run(["pnet_reg", "pnet_prob"], pnet_input=x[None])
        p = prob[0, 1].astype(np.float64)
        ys, xs = np.nonzero(p >= t1)
        if len(ys) == 0:
            continue
        bb = np.stack([xs, ys], 1).astype(np.float64)
        q1, q2 = np.floor((2 * bb + 1) / scale), np.floor((2 * bb + 12) / scale)
        b = np.concatenate([q1, q2, p[ys, xs][:, None], reg[0][:, ys, xs].T.astype(np.float64)], 1)
        cands.append(b[nms_torchvision(b[:, :4], b[:, 4], 0.5)])
    stages = {"pnet": 0, "rnet": 0, "onet": 0}
    if not cands:
        return [], stages
    b = np.concatenate(cands)
    b = b[nms_torchvision(b[:, :4], b[:, 4], 0.7)]
    rw, rh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    b = np.stack([b[:, 0] + b[:, 5] * rw, b[:, 1] + b[:, 6] * rh,
                  b[:, 2] + b[:, 7] * rw, b[:, 3] + b[:, 8] * rh, b[:, 4]], 1)
    b = rerec(b)
    stages["pnet"] = len(b)

    batch, keep = crops(img, b, 24)
    b = b[keep]
    if len(b):
        reg, prob = run(["rnet_reg", "rnet_prob"], rnet_input=batch)
        s = prob[:, 1].astype(np.float64)
        ok = s > t2
        b = np.concatenate([b[ok, :4], s[ok, None]], 1)
        reg = reg[ok].astype(np.float64)
        pick = nms_torchvision(b[:, :4], b[:, 4], 0.7)
        b = rerec(bbreg(b[pick], reg[pick]))
    stages["rnet"] = len(b)

    if len(b):
        batch, keep = crops(img, b, 48)
        b = b[keep]
    if len(b):
        reg, _, prob = run(["onet_reg", "onet_landmarks", "onet_prob"], onet_input=batch)
        s = prob[:, 1].astype(np.float64)
        ok = s > t3
        b = np.concatenate([b[ok, :4], s[ok, None]], 1)
        b = bbreg(b, reg[ok].astype(np.float64))
        b = b[nms_min(b[:, :4], b[:, 4], cfg["final_nms"])]
    stages["onet"] = len(b)
    return [tuple(r) for r in b], stages


def make_mtcnn(out_dir):
    name = "mtcnn"
    folder = fresh(out_dir, name)
    nets, dist = {}, None
    for net in ("pnet", "rnet", "onet"):
        path, dist = mrm.package_file("facenet-pytorch", "facenet_pytorch", "data", f"{net}.pt")
        nets[net] = mrm.read_torch_legacy(path)
    model_path = save_model(mtcnn_graph(nets), folder)
    cfg = collections.OrderedDict(
        detector="mtcnn", min_face_size=20, factor=0.709, thresholds=[0.6, 0.7, 0.7],
        final_nms=0.7, id2label={"0": "face"},
        source={"package": dist, "files": ["facenet_pytorch/data/pnet.pt", "rnet.pt", "onet.pt"]})
    write_json(os.path.join(folder, "config.json"), cfg)

    sess = session(model_path)
    images = []
    for photo in ("astronaut.png", "coffee.png"):
        rel, rgb, img_dist = skimage_photo(folder, photo)
        record = [] if photo == "astronaut.png" else None
        faces, stages = mtcnn_reference(sess, rgb, cfg, record)
        for i, (net, feeds, outs) in enumerate(record or []):
            # astronaut.png: the first pyramid level through P-Net, the R-Net and O-Net batches.
            write_data_set(folder, i, feeds, outs, {"image": rel, "net": net})
        h, w = rgb.shape[:2]
        objects = [{"label": "face", "score": round(float(s), 6), "box": box(x1, y1, x2, y2, w, h)}
                   for x1, y1, x2, y2, s in faces]
        images.append({"file": rel, "source": img_dist, "width": w, "height": h,
                       "candidates": stages, "objects": objects})
        print(f"   {photo}: candidates after pnet/rnet/onet {stages}; "
              + "; ".join(f"face {o['score']:.4f} {o['box']}" for o in objects))
    faces = images[0]["objects"]
    # astronaut.png: Eileen Collins' face is near the top left, x ~ 160..260, y ~ 40..160.
    assert len(faces) == 1 and faces[0]["score"] > 0.99, faces
    bx = faces[0]["box"]
    assert 140 < bx["xmin"] < 200 and 220 < bx["xmax"] < 290 and 20 < bx["ymin"] < 90 and 120 < bx["ymax"] < 180, bx
    assert images[1]["objects"] == [], images[1]
    return finish(folder, name, model_path, images, dist)


# ----------------------------------------------------------------------------
# YOLOX (ddddocr)

def letters_png(folder):
    """A click-captcha-like picture: five glyphs in colours on a beige background (Pillow)."""
    from PIL import Image, ImageDraw, ImageFont
    img = Image.new("RGB", (400, 240), (235, 225, 200))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=48)
    for x, y, text, colour in [(30, 30, "W", (200, 30, 30)), (170, 60, "K", (30, 90, 200)),
                               (300, 40, "7", (20, 140, 40)), (80, 150, "Q", (120, 40, 160)),
                               (250, 150, "ap", (0, 0, 0))]:
        draw.text((x, y), text, fill=colour, font=font)
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    rel = "images/letters.png"
    img.save(os.path.join(folder, rel))
    import PIL
    return rel, read_rgb(os.path.join(folder, rel)), f"drawn with pillow=={PIL.__version__}"


def nms_plus_one(b, s, thr):
    """ddddocr's DetectionEngine.nms: +1 pixel areas, keep IoU <= thr."""
    x1, y1, x2, y2 = b.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = s.argsort()[::-1], []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        ww = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        hh = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        inter = ww * hh
        order = order[np.where(inter / (areas[i] + areas[order[1:]] - inter) <= thr)[0] + 1]
    return np.array(keep, np.int64)


def yolox_reference(sess, rgb, cfg, record):
    ih, iw = cfg["input_size"]
    h, w = rgb.shape[:2]
    r = min(ih / h, iw / w)
    nh, nw = int(h * r), int(w * r)
    resized = np.clip(np.round(mrm.resize_bilinear(rgb[:, :, ::-1], nh, nw)), 0, 255).astype(np.uint8)
    padded = np.full((ih, iw, 3), cfg["pad_value"], np.uint8)
    padded[:nh, :nw] = resized
    x = np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32)[None]
    (y,) = sess.run(None, {"images": x})
    record.append(({"images": x}, {sess.get_outputs()[0].name: y}))
    y = y[0].astype(np.float64)
    grids, strides = [], []
    for s in cfg["strides"]:
        xv, yv = np.meshgrid(np.arange(iw // s), np.arange(ih // s))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((len(grids[-1]), 1), s))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    xy, wh = (y[:, :2] + grid) * stride, np.exp(y[:, 2:4]) * stride
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1) / r
    scores = y[:, 4:5] * y[:, 5:]
    cls = scores.argmax(1)
    best = scores[np.arange(len(cls)), cls]
    ok = best > cfg["threshold"]
    boxes, best, cls = boxes[ok], best[ok], cls[ok]
    keep = nms_plus_one(boxes, best, cfg["iou"])
    return [(*boxes[k], best[k], int(cls[k])) for k in keep]


def make_yolox(out_dir):
    name = "yolox-ddddocr"
    folder = fresh(out_dir, name)
    src, dist = mrm.package_file("ddddocr", "ddddocr", "common_det.onnx")
    os.makedirs(os.path.join(folder, "onnx"))
    model_path = os.path.join(folder, "onnx", "model.onnx")
    shutil.copyfile(src, model_path)  # as shipped, byte for byte
    cfg = collections.OrderedDict(
        detector="yolox", input_size=[416, 416], strides=[8, 16, 32], pad_value=114,
        channel_order="bgr", threshold=0.1, iou=0.45, id2label={"0": "text"},
        source={"package": dist, "file": "ddddocr/common_det.onnx", "modified": False})
    write_json(os.path.join(folder, "config.json"), cfg)

    sess = session(model_path)
    images = []
    for i, (rel, rgb, img_dist) in enumerate((skimage_photo(folder, "page.png"), letters_png(folder))):
        h, w = rgb.shape[:2]
        record = []
        dets = yolox_reference(sess, rgb, cfg, record)
        write_data_set(folder, i, *record[0], {"image": rel})
        objects = [{"label": cfg["id2label"][str(c)], "score": round(float(s), 6),
                    "box": box(x1, y1, x2, y2, w, h)} for x1, y1, x2, y2, s, c in dets]
        images.append({"file": rel, "source": img_dist, "width": w, "height": h, "objects": objects})
        print(f"   {rel}: {len(objects)} boxes, best {objects[0]['score'] if objects else None}")
    assert len(images[1]["objects"]) == 6, images[1]["objects"]  # W K 7 Q and a, p
    assert len(images[0]["objects"]) > 20, len(images[0]["objects"])
    return finish(folder, name, model_path, images, dist)


# ----------------------------------------------------------------------------

def write_data_set(folder, i, feeds, outs, about):
    """folder/test_data_set_<i>/input_*.pb, output_*.pb (+ about.json: which photo, which net)."""
    d = os.path.join(folder, f"test_data_set_{i}")
    os.makedirs(d)
    for prefix, values in (("input", feeds), ("output", outs)):
        for k, (name, v) in enumerate(values.items()):
            with open(os.path.join(d, f"{prefix}_{k}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(np.ascontiguousarray(v), name=name).SerializeToString())
    write_json(os.path.join(d, "about.json"), about)


def fresh(out_dir, name):
    d = os.path.join(out_dir, name)
    if os.path.isdir(d):
        shutil.rmtree(d)  # onnx appends to an existing external-data file
    os.makedirs(d)
    return d


def finish(folder, name, model_path, images, dist):
    model = onnx.load(model_path, load_external_data=False)
    ref = {
        "generator": "scripts/make_detection_models.py",
        "reference": f"numpy {np.__version__} + onnxruntime {ort.__version__} CPUExecutionProvider",
        "model": name,
        "source": dist,
        "ir_version": model.ir_version,
        "opset": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "images": images,
    }
    write_json(os.path.join(folder, "reference.json"), ref)
    print(f"== {name}  ({dist}): ir_version {model.ir_version}, opset {ref['opset']}, "
          f"ops {' '.join(mrm.op_types(model))}")
    return ref


MODELS = collections.OrderedDict([("mtcnn", make_mtcnn), ("yolox-ddddocr", make_yolox)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default target/vision-models/)")
    ap.add_argument("--only", nargs="+", choices=list(MODELS), help="make only these models")
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")
    for name, make in MODELS.items():
        if not args.only or name in args.only:
            make(out_dir)


if __name__ == "__main__":
    main()
