#!/usr/bin/env python3
"""Write the synthetic model of `cargo xtask bench load`: float32 weights as ONNX external data
spread over several shard files, and a graph that is cheap to run but cannot be folded at load.

    python3 scripts/make_big_model.py --out DIR --size-gib 2.5 --shards 5

Writes into DIR (never committed; xtask uses target/bench/load-*/):
  model.onnx        ir_version 8, opset 17 (onnxruntime-web 1.30 rejects newer IR versions):
                    input `ids` int64 [K]; for every weight W_t [ROWS, 1024], Gather(W_t, ids);
                    output `rows` = Concat of those along axis 0, [T * K, 1024]
  weights-<i>.bin   shard i: --per-shard tensors (default 4) back to back (each shard < 2 GB,
                    because onnxruntime-web fetches each external file into one ArrayBuffer —
                    unless --no-ort: then a tensor may outgrow a GPU binding, a file 4 GiB)
  expected.bin      the output for `ids`, float32 little-endian, computed from the pattern
  warmup.onnx       one Identity node: lets onnxruntime-web instantiate its wasm before the
                    measured load, as Wick does when its worker starts
  bench.json        the files and their sizes, weight bytes, ids, shapes (read by bench/load.mjs)

W_t[r, c] = (t + 1) + ((r * 1024 + c) mod 4093) / 4096 for the global tensor index t: exact in
float32, so a chunk routed to the wrong tensor (integer part) or offset (fraction) is visible in
the output. Data is written in 16 MiB blocks, so memory stays small whatever the size.
Needs numpy and onnx.
"""

import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

COLS = 1024
TENSORS_PER_SHARD = 4
K = 8
BLOCK_ROWS = 4096  # 16 MiB of float32 rows per write


def values(t, r0, r1):
    """Rows r0..r1 of tensor t, as float32."""
    flat = np.arange(r0 * COLS, r1 * COLS, dtype=np.int64) % 4093
    return ((t + 1) + flat.astype(np.float64) / 4096).astype(np.float32).reshape(r1 - r0, COLS)


def external(name, rows, location, offset):
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[rows, COLS])
    tensor.data_location = TensorProto.EXTERNAL
    nbytes = rows * COLS * 4
    for key, value in (("location", location), ("offset", offset), ("length", nbytes)):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, str(value)
    return tensor


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--size-gib", type=float, required=True, help="external data, GiB")
    parser.add_argument("--shards", type=int, required=True)
    parser.add_argument("--per-shard", type=int, default=TENSORS_PER_SHARD,
                        help="tensors in each shard file")
    parser.add_argument("--no-ort", action="store_true",
                        help="allow shards of 2 GiB and more (onnxruntime-web cannot load them)")
    args = parser.parse_args()
    per_shard = args.per_shard
    tensors = args.shards * per_shard
    rows = int(args.size_gib * 2**30) // (tensors * COLS * 4)
    if args.shards < 1 or per_shard < 1 or rows < K:
        parser.error("--size-gib too small for that many shards")
    tensor_bytes = rows * COLS * 4
    if per_shard * tensor_bytes >= 2**31 and not args.no_ort:
        parser.error("a shard would reach 2 GiB; use more --shards (or --no-ort)")
    os.makedirs(args.out, exist_ok=True)

    # First, last, middle and neighbouring rows: misplacement at either end of a tensor shows.
    ids = [0, 1, rows // 3, rows // 2, rows // 2 + 1, 2 * rows // 3, rows - 2, rows - 1]
    initializers, nodes, files = [], [], []
    expected = np.empty((tensors * K, COLS), dtype=np.float32)
    for shard in range(args.shards):
        location = f"weights-{shard}.bin"
        with open(os.path.join(args.out, location), "wb") as f:
            for j in range(per_shard):
                t = shard * per_shard + j
                name = f"w{t}"
                initializers.append(external(name, rows, location, j * tensor_bytes))
                nodes.append(helper.make_node("Gather", [name, "ids"], [f"g{t}"], axis=0))
                for r0 in range(0, rows, BLOCK_ROWS):
                    values(t, r0, min(rows, r0 + BLOCK_ROWS)).tofile(f)
                expected[t * K:(t + 1) * K] = np.concatenate([values(t, i, i + 1) for i in ids])
        files.append({"path": location, "bytes": per_shard * tensor_bytes})
    nodes.append(helper.make_node("Concat", [f"g{t}" for t in range(tensors)], ["rows"], axis=0))
    graph = helper.make_graph(
        nodes,
        "bench-load",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [K])],
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, [tensors * K, COLS])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model_path = os.path.join(args.out, "model.onnx")
    onnx.save(model, model_path)
    expected.tofile(os.path.join(args.out, "expected.bin"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    warmup = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "warmup", [x], [y])
    onnx.save(helper.make_model(warmup, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              os.path.join(args.out, "warmup.onnx"))
    manifest = {
        "model": "model.onnx",
        "files": [{"path": "model.onnx", "bytes": os.path.getsize(model_path)}] + files,
        "weightBytes": tensors * tensor_bytes,
        "tensors": tensors,
        "rows": rows,
        "cols": COLS,
        "input": "ids",
        "ids": ids,
        "output": "rows",
    }
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(f"wrote {args.out}: {tensors} tensors [{rows}, {COLS}] in {args.shards} shards, "
          f"{manifest['weightBytes']} weight bytes")


if __name__ == "__main__":
    main()
