#!/usr/bin/env python3
"""Write worker/tests/fixtures/matmul_nbits.bin: com.microsoft MatMulNBits cases with
onnxruntime's outputs, the reference of quantization.rs's `matmul_nbits_matches_onnxruntime`.

Each case is a one-node model (A [M, K] f32, B uint8 [N, n_blocks, blob] and f32 scales as
initializers, zero points absent / packed uint8 / f32, optional bias [N]) run by onnxruntime's
CPUExecutionProvider (accuracy_level 0: f32 arithmetic). Where onnxruntime refuses a case
(float zero points with some bit widths), the output comes from numpy with the com.microsoft
formula Y = A · ((q - zero_point) · scale)ᵀ + bias, in f64, and the case says so.

Format, all little-endian: b"NBIT", u32 case count, then per case u32 bits, block, K, N, M,
zero-point kind (0 absent, 1 uint8, 2 f32), has-bias, reference (0 onnxruntime, 1 numpy);
then A f32[M·K], B u8[N·n_blocks·blob], scales f32[N·n_blocks], zero points (u8[N·ceil(
n_blocks·bits/8)] or f32[N·n_blocks]), bias f32[N] if present, Y f32[M·N].

Run from the repository root: python3 scripts/make_nbits_fixture.py (numpy, onnx, onnxruntime).
"""

import struct
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
import onnxruntime as ort

OUT = Path(__file__).resolve().parent.parent / "worker" / "tests" / "fixtures" / "matmul_nbits.bin"


def unpack(packed, bits, count):
    """Values `bits` wide packed little-end-first in each byte, the first `count`."""
    per = 8 // bits
    vals = [(b >> (bits * i)) & ((1 << bits) - 1) for b in packed for i in range(per)]
    return np.array(vals[:count], dtype=np.float64)


def reference(a, b, scales, zp, zp_kind, bias, bits, block, k, n):
    nb = (k + block - 1) // block
    blob = block * bits // 8
    w = np.zeros((n, k))
    zrow = (nb * bits + 7) // 8
    for r in range(n):
        if zp_kind == 1:
            zs = unpack(zp[r * zrow:(r + 1) * zrow], bits, nb)
        for j in range(nb):
            q = unpack(b[r, j], bits, block)
            z = {0: 2 ** (bits - 1), 1: zs[j] if zp_kind == 1 else 0, 2: zp[r * nb + j] if zp_kind == 2 else 0}[zp_kind]
            vals = (q - z) * scales[r * nb + j]
            take = min(block, k - j * block)
            w[r, j * block:j * block + take] = vals[:take]
    y = a.astype(np.float64) @ w.T
    if bias is not None:
        y = y + bias
    return y.astype(np.float32)


def case(rng, bits, block, k, n, m, zp_kind, with_bias):
    nb = (k + block - 1) // block
    blob = block * bits // 8
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.integers(0, 256, (n, nb, blob), dtype=np.uint8)
    scales = rng.uniform(0.01, 0.1, n * nb).astype(np.float32)
    zrow = (nb * bits + 7) // 8
    zp = None
    if zp_kind == 1:
        zp = rng.integers(0, 256, n * zrow, dtype=np.uint8)
    elif zp_kind == 2:
        # GGUF Q4_1 style: zero point = -min / scale, fractional.
        zp = rng.uniform(0, 2 ** bits - 1, n * nb).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) if with_bias else None

    inits = [
        helper.make_tensor("B", TensorProto.UINT8, b.shape, b.tobytes(), raw=True),
        helper.make_tensor("scales", TensorProto.FLOAT, scales.shape, scales.tobytes(), raw=True),
    ]
    inputs = ["A", "B", "scales"]
    if zp is not None:
        dt = TensorProto.UINT8 if zp_kind == 1 else TensorProto.FLOAT
        inits.append(helper.make_tensor("zp", dt, zp.shape, zp.tobytes(), raw=True))
        inputs.append("zp")
    else:
        inputs.append("")
    inputs.append("")  # g_idx
    if bias is not None:
        inits.append(helper.make_tensor("bias", TensorProto.FLOAT, bias.shape, bias.tobytes(), raw=True))
        inputs.append("bias")
    while inputs[-1] == "":
        inputs.pop()
    node = helper.make_node("MatMulNBits", inputs, ["Y"], domain="com.microsoft",
                            K=k, N=n, bits=bits, block_size=block, accuracy_level=0)
    graph = helper.make_graph([node], "nbits", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 10
    want = reference(a, b, scales, zp, zp_kind, bias, bits, block, k, n)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        y = sess.run(None, {"A": a})[0]
        source = 0
        # onnxruntime and the f64 formula must agree, or the case is wrong.
        assert np.allclose(y, want, rtol=1e-4, atol=1e-4), (bits, block, k, n, m, zp_kind, np.abs(y - want).max())
    except Exception as e:  # noqa: BLE001 - onnxruntime refuses some combinations
        if isinstance(e, AssertionError):
            raise
        print(f"  onnxruntime refused bits={bits} block={block} zp_kind={zp_kind}: {str(e).splitlines()[0][:120]}")
        y, source = want, 1
    out = struct.pack("<8I", bits, block, k, n, m, zp_kind, int(with_bias), source)
    out += a.tobytes() + b.tobytes() + scales.tobytes()
    if zp is not None:
        out += zp.tobytes()
    if bias is not None:
        out += bias.tobytes()
    out += y.astype(np.float32).tobytes()
    return out, source


def main():
    rng = np.random.default_rng(7)
    shapes = [(64, 5, 1), (96, 40, 3), (96, 5, 3), (64, 40, 1), (80, 7, 2)]
    cases = []
    i = 0
    for bits in (4, 8, 2):
        for block in (16, 32):
            for zp_kind in (0, 1, 2):
                k, n, m = shapes[i % len(shapes)]
                cases.append(case(rng, bits, block, k, n, m, zp_kind, with_bias=i % 2 == 1))
                i += 1
    # K not a multiple of the block (a padded last block), 4-bit blocks of 64.
    cases.append(case(rng, 4, 32, 80, 9, 1, 2, True))
    cases.append(case(rng, 4, 64, 96, 6, 4, 1, False))
    data = b"NBIT" + struct.pack("<I", len(cases)) + b"".join(c for c, _ in cases)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(data)
    by_ort = sum(1 for _, s in cases if s == 0)
    print(f"wrote {OUT} ({len(data)} bytes): {len(cases)} cases, {by_ort} from onnxruntime, {len(cases) - by_ort} from numpy")


if __name__ == "__main__":
    main()
