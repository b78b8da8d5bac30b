#!/usr/bin/env python3
"""Write a Wick manifest (wick-manifest.json) for a model folder.

The manifest lists the .onnx file and every external-data file it names, with
byte sizes and sha256, relative to the folder; Wick verifies each file against
it as the file streams (PROTOCOL.md, "Manifests").

  python3 scripts/make_manifest.py FOLDER [--model onnx/model.onnx]

Default model: onnx/model.onnx (the Hugging Face layout) if it exists, else
model.onnx. Needs: onnx.
"""

import argparse
import hashlib
import json
import os
import sys

import onnx
from onnx import TensorProto


def external_locations(model_path):
    """The external-data locations a model names, in first-seen order."""
    model = onnx.load(model_path, load_external_data=False)
    seen = []
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            loc = next(e.value for e in t.external_data if e.key == "location")
            if loc not in seen:
                seen.append(loc)
    return seen


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(folder, model="onnx/model.onnx"):
    """The manifest of `folder` as a dict."""
    model_path = os.path.join(folder, model)
    model_dir = os.path.dirname(model)
    paths = [model] + [os.path.join(model_dir, loc).replace(os.sep, "/")
                       for loc in external_locations(model_path)]
    files = []
    for p in paths:
        full = os.path.join(folder, p)
        files.append({"path": p, "size": os.path.getsize(full), "sha256": sha256_of(full)})
    return {"format": "wick-manifest", "version": 1, "model": model, "files": files}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--model")
    args = ap.parse_args()
    model = args.model
    if model is None:
        model = "onnx/model.onnx" if os.path.exists(os.path.join(args.folder, "onnx/model.onnx")) else "model.onnx"
    if not os.path.exists(os.path.join(args.folder, model)):
        sys.exit(f"no {model} in {args.folder}")
    out = os.path.join(args.folder, "wick-manifest.json")
    with open(out, "w") as f:
        json.dump(manifest(args.folder, model), f, indent=2)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
